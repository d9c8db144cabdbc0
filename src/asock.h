/*
 * asock: the AMQP connection's socket, from the protocol header on.
 *
 * Everything written on the connection goes through one output buffer:
 * the frames the bridge encodes itself (set-up, publishes, close) and
 * what rabbitmq-c writes on its own (heartbeats, close-ok).  rabbitmq-c's
 * writes are queued, never sent on the spot, so none can land in the
 * middle of a frame that the socket took only in part, and none waits for
 * the socket.  The loop writes the buffer when it chooses, which lets a
 * whole batch of publishes leave in one write.  Reads go straight to the
 * socket, or to the TLS session.
 *
 * It takes the place of the table of rabbitmq-c's TCP socket object
 * (rmqsock.h), and closes and frees the descriptor, the TLS session and
 * itself with the connection (amqp_destroy_connection()).
 */
#ifndef BRIDGE_ASOCK_H
#define BRIDGE_ASOCK_H

#include <stdbool.h>
#include <stddef.h>

#include <amqp.h>

#include "aframe.h"

struct atls;
struct asock;

/*
 * Takes over `sock` (rabbitmq-c's TCP socket object of the connection)
 * with the connected descriptor `fd` and, for TLS, the session `tls`
 * whose handshake is done.  From then on the connection owns `fd`, `tls`
 * and the asock.  Returns NULL when out of memory (nothing taken over).
 */
struct asock *asock_attach(amqp_socket_t *sock, int fd, struct atls *tls);

/* The output buffer: frames queued here leave with asock_write(). */
struct aframe *asock_out(struct asock *k);

/*
 * Writes what the socket takes now.  Returns 0 (asock_unwritten() tells
 * what remains), or -1 with `err` filled when the connection failed.
 */
int asock_write(struct asock *k, char *err, size_t errsz);

/* Bytes queued and not yet written. */
size_t asock_unwritten(const struct asock *k);

#endif
