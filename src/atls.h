/*
 * atls: TLS for the AMQP connection over a socket the loop owns.
 *
 * rabbitmq-c's own TLS socket resolves, connects and runs the whole TLS
 * handshake inside one blocking call, so the bridge does the handshake
 * itself, without waiting, on its non-blocking socket; the connection's
 * socket (asock) then reads and writes through the session here, with the
 * same modes rabbitmq-c's TLS socket uses.
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

/*
 * A TLS client for `c` (CA file, client certificate, version) to `host`,
 * the name (or address) its certificate must match and the server name it
 * is asked for; not yet connected.  Returns NULL with `err` filled.
 */
struct atls *atls_new(const struct amqp_settings *c, const char *host, char *err, size_t errsz);

/* Frees the session (the descriptor is not closed here). */
void atls_free(struct atls *t);

/*
 * Advances the handshake over the connected socket `fd` (not closed here).
 * Returns 1 when it is complete and verified, 0 while it waits for the
 * socket (*events says for what: POLLIN or POLLOUT), -1 with `err` filled.
 */
int atls_handshake(struct atls *t, int fd, short *events, char *err, size_t errsz);

/*
 * Reads up to `len` decrypted bytes.  Returns the number read, or
 * rabbitmq-c's status: RMQSOCK_NEEDREAD / RMQSOCK_NEEDWRITE (rmqsock.h)
 * when the socket must be ready first, or an error.
 */
ssize_t atls_read(struct atls *t, void *buf, size_t len);

/*
 * Ends the session: with `notify`, sends close_notify if the socket takes
 * it at once.  Nothing is read or written after (the descriptor, closed by
 * its owner, may be reused).
 */
void atls_close(struct atls *t, bool notify);

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
