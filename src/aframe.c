#include "aframe.h"

#include <errno.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>

#include "atls.h"

#define AFRAME_HEADER 7              /* type, channel, payload size */
#define AFRAME_END 0xCE
/* A buffer grown beyond this for a large message is given back once written. */
#define AFRAME_KEEP (256u << 10)

void aframe_init(struct aframe *o)
{
	memset(o, 0, sizeof(*o));
}

/* Zeroed first: connection.start-ok carries the password. */
void aframe_free(struct aframe *o)
{
	if (o->buf)
		explicit_bzero(o->buf, o->cap);
	if (o->scratch)
		explicit_bzero(o->scratch, o->scratch_cap);
	free(o->buf);
	free(o->scratch);
	aframe_init(o);
}

/* Drops the bytes already written from the front of the buffer. */
static void aframe_compact(struct aframe *o)
{
	if (o->off == 0)
		return;
	memmove(o->buf, o->buf + o->off, o->len - o->off);
	o->len -= o->off;
	o->off = 0;
}

/*
 * Replaces the block *p of *cap bytes with one of `new_cap` bytes that starts
 * with its first `keep`.  Not realloc(): the old block may hold
 * connection.start-ok, with the password, and is zeroed before it is freed.
 */
static int aframe_regrow(unsigned char **p, size_t *cap, size_t new_cap, size_t keep)
{
	unsigned char *b = malloc(new_cap);

	if (!b)
		return -1;
	if (*p) {
		memcpy(b, *p, keep);
		explicit_bzero(*p, *cap);
		free(*p);
	}
	*p = b;
	*cap = new_cap;
	return 0;
}

void aframe_wipe_written(struct aframe *o)
{
	aframe_compact(o);
	if (o->buf)
		explicit_bzero(o->buf + o->len, o->cap - o->len);
	if (o->scratch)
		explicit_bzero(o->scratch, o->scratch_cap);
}

/*
 * Room for `n` more bytes at buf + len.  Bytes already written are dropped
 * from the front first, so a buffer the socket drains slowly does not grow.
 */
static int aframe_room(struct aframe *o, size_t n)
{
	if (o->off > 0 && o->off == o->len)
		o->off = o->len = 0;
	if (o->cap - o->len >= n)
		return 0;
	aframe_compact(o);
	if (o->cap - o->len >= n)
		return 0;
	size_t cap = o->cap ? o->cap : 4096;

	while (cap - o->len < n)
		cap *= 2;
	return aframe_regrow(&o->buf, &o->cap, cap, o->len);
}

int aframe_bytes(struct aframe *o, const void *p, size_t n)
{
	if (aframe_room(o, n) != 0)
		return -1;
	memcpy(o->buf + o->len, p, n);
	o->len += n;
	return 0;
}

static void put16(unsigned char *p, uint16_t v)
{
	p[0] = (unsigned char)(v >> 8);
	p[1] = (unsigned char)v;
}

static void put32(unsigned char *p, uint32_t v)
{
	p[0] = (unsigned char)(v >> 24);
	p[1] = (unsigned char)(v >> 16);
	p[2] = (unsigned char)(v >> 8);
	p[3] = (unsigned char)v;
}

/* The frame header of a frame whose payload of `size` bytes follows at p + 7. */
static void aframe_header(unsigned char *p, uint8_t type, uint16_t channel, size_t size)
{
	p[0] = type;
	put16(p + 1, channel);
	put32(p + 3, (uint32_t)size);
}

/* Room for one frame in the scratch buffer: frames of at most `frame_max` bytes. */
static int aframe_scratch(struct aframe *o, size_t frame_max)
{
	/* Nothing in it is kept: it holds one frame while it is encoded. */
	if (o->scratch_cap < frame_max &&
	    aframe_regrow(&o->scratch, &o->scratch_cap, frame_max, 0) != 0)
		return AMQP_STATUS_NO_MEMORY;
	return 0;
}

int aframe_method(struct aframe *o, uint16_t channel, amqp_method_number_t id, void *decoded,
                  size_t frame_max)
{
	amqp_bytes_t args;
	int n;

	if (frame_max < AFRAME_HEADER + 4 + 1 + 8)
		return AMQP_STATUS_INVALID_PARAMETER;
	if (aframe_scratch(o, frame_max) != 0)
		return AMQP_STATUS_NO_MEMORY;
	args.bytes = o->scratch + AFRAME_HEADER + 4;
	args.len = frame_max - AFRAME_HEADER - 4 - 1;
	n = amqp_encode_method(id, decoded, args);
	if (n < 0)
		return n;
	o->scratch[0] = AMQP_FRAME_METHOD;
	put16(o->scratch + 1, channel);
	put32(o->scratch + 3, (uint32_t)n + 4);
	put32(o->scratch + AFRAME_HEADER, id);
	o->scratch[AFRAME_HEADER + 4 + (size_t)n] = AFRAME_END;
	if (aframe_bytes(o, o->scratch, AFRAME_HEADER + 4 + (size_t)n + 1) != 0)
		return AMQP_STATUS_NO_MEMORY;
	return 0;
}

int aframe_publish(struct aframe *o, uint16_t channel, amqp_bytes_t exchange,
                   amqp_bytes_t routing_key, const amqp_basic_properties_t *props,
                   amqp_bytes_t body, size_t frame_max)
{
	amqp_basic_publish_t m = { .ticket = 0, .exchange = exchange, .routing_key = routing_key,
	                           .mandatory = 1, .immediate = 0 };
	/* ticket, two short strings, the bits */
	size_t method = AFRAME_HEADER + 4 + 2 + 1 + exchange.len + 1 + routing_key.len + 1 + 1;
	size_t header, frames, chunk = frame_max - AFRAME_HEADER - 1;
	amqp_bytes_t args;
	unsigned char *p;
	int n, rc;

	if (frame_max < AFRAME_HEADER + 4 + 1 + 8 + 12 || method > frame_max)
		return AMQP_STATUS_INVALID_PARAMETER;
	/* The content header first, in the scratch buffer: only then is its size known. */
	rc = aframe_scratch(o, frame_max);
	if (rc != 0)
		return rc;
	args.bytes = o->scratch + AFRAME_HEADER + 12;
	args.len = frame_max - AFRAME_HEADER - 12 - 1;
	/* rabbitmq-c's codec only reads the properties, whatever its prototype says. */
	n = amqp_encode_properties(AMQP_BASIC_CLASS, (void *)props, args);
	if (n < 0)
		return n;
	header = AFRAME_HEADER + 12 + (size_t)n + 1;
	aframe_header(o->scratch, AMQP_FRAME_HEADER, channel, (size_t)n + 12);
	put16(o->scratch + AFRAME_HEADER, AMQP_BASIC_CLASS);
	put16(o->scratch + AFRAME_HEADER + 2, 0);
	put32(o->scratch + AFRAME_HEADER + 4, (uint32_t)((uint64_t)body.len >> 32));
	put32(o->scratch + AFRAME_HEADER + 8, (uint32_t)body.len);
	o->scratch[header - 1] = AFRAME_END;

	/* Room for every frame at once: growing while copying a large body would copy it twice. */
	frames = (body.len + chunk - 1) / chunk;
	if (body.len > SIZE_MAX - method - header - frames * (AFRAME_HEADER + 1) ||
	    aframe_room(o, method + header + body.len + frames * (AFRAME_HEADER + 1)) != 0)
		return AMQP_STATUS_NO_MEMORY;
	p = o->buf + o->len;
	args.bytes = p + AFRAME_HEADER + 4;
	args.len = method - AFRAME_HEADER - 4 - 1;
	n = amqp_encode_method(AMQP_BASIC_PUBLISH_METHOD, &m, args);
	if (n < 0)
		return n;
	aframe_header(p, AMQP_FRAME_METHOD, channel, (size_t)n + 4);
	put32(p + AFRAME_HEADER, AMQP_BASIC_PUBLISH_METHOD);
	p[AFRAME_HEADER + 4 + (size_t)n] = AFRAME_END;
	p += AFRAME_HEADER + 4 + (size_t)n + 1;
	memcpy(p, o->scratch, header);
	o->len = (size_t)(p + header - o->buf);

	/* The body in frames of at most frame_max bytes. */
	for (size_t done = 0; done < body.len;) {
		size_t k = body.len - done < chunk ? body.len - done : chunk;

		p = o->buf + o->len;
		aframe_header(p, AMQP_FRAME_BODY, channel, k);
		memcpy(p + AFRAME_HEADER, (const unsigned char *)body.bytes + done, k);
		p[AFRAME_HEADER + k] = AFRAME_END;
		o->len += AFRAME_HEADER + k + 1;
		done += k;
	}
	return 0;
}

size_t aframe_unwritten(const struct aframe *o)
{
	return o->len - o->off;
}

bool aframe_pending(const struct aframe *o)
{
	return o->off < o->len;
}

int aframe_flush(struct aframe *o, int fd, struct atls *tls, char *err, size_t errsz)
{
	while (o->off < o->len) {
		size_t n = o->len - o->off;
		ssize_t w;

		if (tls) {
			w = atls_write(tls, o->buf + o->off, n, err, errsz);
			if (w < 0)
				return -1;
		} else {
			w = send(fd, o->buf + o->off, n, MSG_NOSIGNAL | MSG_DONTWAIT);
			if (w < 0 && errno == EINTR)
				continue;
			if (w < 0 && (errno == EAGAIN || errno == EWOULDBLOCK)) {
				w = 0;
			} else if (w < 0) {
				snprintf(err, errsz, "cannot write to the socket: %s", strerror(errno));
				return -1;
			}
		}
		if (w == 0)
			break;
		o->off += (size_t)w;
	}
	if (o->off == o->len) {
		o->off = o->len = 0;
		if (o->cap > AFRAME_KEEP) {
			free(o->buf);
			o->buf = NULL;
			o->cap = 0;
		}
	}
	return 0;
}
