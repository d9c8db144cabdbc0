/*
 * aframe: AMQP frames the bridge writes itself, without waiting.
 *
 * Methods are encoded with rabbitmq-c's codec into a buffer and written
 * when the socket takes them (plain TCP, or TLS through atls), so that a
 * broker that stops reading never holds the loop.  Only used while
 * rabbitmq-c has no write of its own under way (set-up and close), so the
 * two never interleave.
 */
#ifndef BRIDGE_AFRAME_H
#define BRIDGE_AFRAME_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include <amqp.h>

struct atls;

struct aframe {
	unsigned char *buf;          /* bytes not yet written start at buf + off */
	size_t off, len, cap;
	unsigned char *scratch;      /* one frame being encoded */
	size_t scratch_cap;
};

void aframe_init(struct aframe *o);
/* Drops what is unwritten and frees the buffers. */
void aframe_free(struct aframe *o);

/* Queues raw bytes (the protocol header).  Returns 0, or -1 when out of memory. */
int aframe_bytes(struct aframe *o, const void *p, size_t n);

/*
 * Queues a method frame on `channel`, at most `frame_max` bytes.  Returns 0,
 * or rabbitmq-c's status (< 0) when it cannot be encoded.
 */
int aframe_method(struct aframe *o, uint16_t channel, amqp_method_number_t id, void *decoded,
                  size_t frame_max);

/* Whether queued bytes wait for the socket. */
bool aframe_pending(const struct aframe *o);

/*
 * Writes what the socket `fd` (through `tls` when not NULL) takes now.
 * Returns 0 (aframe_pending() tells whether bytes remain), or -1 with
 * `err` filled when the connection failed.
 */
int aframe_flush(struct aframe *o, int fd, struct atls *tls, char *err, size_t errsz);

#endif
