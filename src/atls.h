/*
 * atls: TLS for the AMQP connection over a socket the loop owns.
 *
 * rabbitmq-c's own TLS socket resolves, connects and runs the whole TLS
 * handshake inside one blocking call, so the bridge does the handshake
 * itself, without waiting, on its non-blocking socket, and then gives the
 * TLS session to rabbitmq-c as the connection's socket: from then on every
 * read and write rabbitmq-c makes goes through SSL_read() and SSL_write()
 * here, with the same modes rabbitmq-c's TLS socket uses.
 *
 * Handing over relies on the layout of rabbitmq-c's socket object (a
 * pointer to a table of six functions), which its public headers do not
 * show; it is the same in every release from 0.8 to 0.16, and
 * atls_supported() refuses any other.
 *
 * Verification is as before: the CA file, an optional client certificate
 * and key, the minimum TLS version, and OpenSSL's own check of the host
 * name or IP address (rabbitmq-c 0.11 compares the host only with DNS
 * names), all skipped with tls_insecure.
 */
#ifndef BRIDGE_ATLS_H
#define BRIDGE_ATLS_H

#include <stdbool.h>
#include <stddef.h>
#include <sys/types.h>

#include <amqp.h>

#include "settings.h"

struct atls;

/* Whether the linked rabbitmq-c can take our TLS session; if not, why in `err`. */
bool atls_supported(char *err, size_t errsz);

/*
 * A TLS client for `c` (CA file, client certificate, version, host check),
 * not yet connected.  Returns NULL with `err` filled.
 */
struct atls *atls_new(const struct amqp_settings *c, char *err, size_t errsz);

/* Frees a session that was never handed to rabbitmq-c (atls_attach). */
void atls_free(struct atls *t);

/*
 * Advances the handshake over the connected socket `fd` (not closed here).
 * Returns 1 when it is complete and verified, 0 while it waits for the
 * socket (*events says for what: POLLIN or POLLOUT), -1 with `err` filled.
 */
int atls_handshake(struct atls *t, int fd, short *events, char *err, size_t errsz);

/*
 * Makes the session the connection's socket: `sock` is the TCP socket
 * object rabbitmq-c made for the connection (amqp_tcp_socket_new), holding
 * the same descriptor.  From now on the connection owns `t` and frees it
 * with itself.
 */
void atls_attach(struct atls *t, amqp_socket_t *sock);

/*
 * Writes up to `n` bytes without waiting.  Returns the number written, 0
 * when the socket cannot take any now, or -1 with `err` filled.
 */
ssize_t atls_write(struct atls *t, const void *buf, size_t n, char *err, size_t errsz);

/*
 * rabbitmq-c's status `rc` from a read or write on the session, with
 * OpenSSL's reason when it has one.
 */
const char *atls_error(int rc, char *buf, size_t size);

#endif
