/*
 * aframe: AMQP frames the bridge writes itself, without waiting.
 *
 * Frames are encoded with rabbitmq-c's codec into a buffer and written
 * when the socket takes them (plain TCP, or TLS through atls), so that a
 * broker that stops reading never holds the loop.  The connection's socket
 * (asock) queues rabbitmq-c's own writes in the same buffer, so the two
 * never interleave.
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
/* Zeroes every byte but the unwritten ones (written frames, the scratch frame). */
void aframe_wipe_written(struct aframe *o);

/*
 * Queues raw bytes (the protocol header, rabbitmq-c's own frames).
 * Returns 0, or -1 when out of memory.
 */
int aframe_bytes(struct aframe *o, const void *p, size_t n);

/*
 * Queues a method frame on `channel`, at most `frame_max` bytes.  Returns 0,
 * or rabbitmq-c's status (< 0) when it cannot be encoded.
 */
int aframe_method(struct aframe *o, uint16_t channel, amqp_method_number_t id, void *decoded,
                  size_t frame_max);

/*
 * Queues basic.publish (mandatory, not immediate) on `channel` with its
 * content header and body frames, each at most `frame_max` bytes.
 * Returns 0, or rabbitmq-c's status (< 0) with nothing queued:
 * AMQP_STATUS_TABLE_TOO_BIG when the properties do not fit one frame.
 */
int aframe_publish(struct aframe *o, uint16_t channel, amqp_bytes_t exchange,
                   amqp_bytes_t routing_key, const amqp_basic_properties_t *props,
                   amqp_bytes_t body, size_t frame_max);

/* Bytes queued and not yet written. */
size_t aframe_unwritten(const struct aframe *o);

/* Whether queued bytes wait for the socket. */
bool aframe_pending(const struct aframe *o);

/*
 * Writes what the socket `fd` (through `tls` when not NULL) takes now.
 * Returns 0 (aframe_pending() tells whether bytes remain), or -1 with
 * `err` filled when the connection failed.
 */
int aframe_flush(struct aframe *o, int fd, struct atls *tls, char *err, size_t errsz);

#endif
