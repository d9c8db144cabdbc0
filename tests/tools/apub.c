/* ppoll(), to wait for confirms with a sub-millisecond limit in --rate mode. */
#define _GNU_SOURCE
#include "apub.h"

#include <inttypes.h>
#include <poll.h>
#include <stdio.h>
#include <stdlib.h>
#include <sys/time.h>
#include <time.h>

#include "toolutil.h"

int apub_init(struct apub *p, const char *prog, amqp_connection_state_t conn, uint64_t count,
              const struct apub_ops *ops, void *arg)
{
	struct timeval tv = { .tv_sec = 10 };

	*p = (struct apub){ .conn = conn, .prog = prog, .ops = ops, .arg = arg, .count = count };
	/* One bit per delivery tag, 1..count. */
	p->seen = calloc((size_t)(count / 8 + 1), 1);
	if (!p->seen) {
		fprintf(stderr, "%s: out of memory\n", prog);
		goto fail;
	}
	amqp_set_rpc_timeout(conn, &tv);
	amqp_confirm_select(conn, APUB_CHANNEL);
	if (tool_check_rpc(prog, conn, "confirm.select") != 0)
		goto fail;
	return 0;
fail:
	apub_fini(p, false);
	return -1;
}

void apub_fini(struct apub *p, bool polite)
{
	if (p->conn) {
		if (polite) {
			amqp_channel_close(p->conn, APUB_CHANNEL, AMQP_REPLY_SUCCESS);
			amqp_connection_close(p->conn, AMQP_REPLY_SUCCESS);
		}
		amqp_destroy_connection(p->conn);
		p->conn = NULL;
	}
	free(p->seen);
	p->seen = NULL;
}

static bool is_seen(const struct apub *p, uint64_t tag)
{
	return p->seen[tag >> 3] & (1u << (tag & 7));
}

/* Marks one tag acked or nacked (once). */
static void mark(struct apub *p, uint64_t tag, bool ack)
{
	if (is_seen(p, tag))
		return;
	p->seen[tag >> 3] |= (unsigned char)(1u << (tag & 7));
	p->done++;
	if (ack) {
		p->acked++;
	} else {
		if (p->ops->nacked)
			p->ops->nacked(p->arg, tag - 1, p->nacked);
		p->nacked++;
	}
}

/*
 * Settles `tag` (and every smaller open tag with `multiple`).  Returns -1
 * on a confirm for a tag never published, or a second single confirm for
 * one tag.
 */
static int settle(struct apub *p, uint64_t tag, bool multiple, bool ack)
{
	if (tag == 0 || tag > p->published) {
		fprintf(stderr, "%s: confirm for delivery tag %" PRIu64 " (published %" PRIu64
			", settled %" PRIu64 ")\n", p->prog, tag, p->published, p->settled);
		return -1;
	}
	if (multiple) {
		for (uint64_t t = p->settled + 1; t <= tag; t++)
			mark(p, t, ack);
	} else {
		if (tag <= p->settled || is_seen(p, tag)) {
			fprintf(stderr, "%s: second confirm for delivery tag %" PRIu64 "\n", p->prog, tag);
			return -1;
		}
		mark(p, tag, ack);
	}
	while (p->settled < p->published && is_seen(p, p->settled + 1))
		p->settled++;
	return 0;
}

/* Handles one frame; returns -1 on a broker or protocol error (reported). */
static int on_frame(struct apub *p, const amqp_frame_t *f)
{
	if (f->frame_type != AMQP_FRAME_METHOD)
		return 0;       /* the content of a basic.return */
	switch (f->payload.method.id) {
	case AMQP_BASIC_ACK_METHOD: {
		const amqp_basic_ack_t *m = f->payload.method.decoded;

		return settle(p, m->delivery_tag, m->multiple, true);
	}
	case AMQP_BASIC_NACK_METHOD: {
		const amqp_basic_nack_t *m = f->payload.method.decoded;

		return settle(p, m->delivery_tag, m->multiple, false);
	}
	case AMQP_BASIC_RETURN_METHOD:
		if (p->ops->returned)
			p->ops->returned(p->arg, f->payload.method.decoded, p->returned);
		p->returned++;
		return 0;
	case AMQP_CONNECTION_BLOCKED_METHOD:
		fprintf(stderr, "%s: broker blocked publishing\n", p->prog);
		return 0;
	case AMQP_CONNECTION_UNBLOCKED_METHOD:
		fprintf(stderr, "%s: broker unblocked publishing\n", p->prog);
		return 0;
	case AMQP_CHANNEL_CLOSE_METHOD: {
		const amqp_channel_close_t *m = f->payload.method.decoded;

		fprintf(stderr, "%s: broker closed the channel: %u %.*s\n", p->prog, m->reply_code,
			(int)m->reply_text.len, (const char *)m->reply_text.bytes);
		return -1;
	}
	case AMQP_CONNECTION_CLOSE_METHOD: {
		const amqp_connection_close_t *m = f->payload.method.decoded;

		fprintf(stderr, "%s: broker closed the connection: %u %.*s\n", p->prog, m->reply_code,
			(int)m->reply_text.len, (const char *)m->reply_text.bytes);
		return -1;
	}
	default:
		return 0;
	}
}

/*
 * Handles every frame that can be had without waiting: those rabbitmq-c
 * already holds and those the kernel has received.  Returns -1 on error.
 */
static int read_ready(struct apub *p)
{
	struct timeval zero = { 0, 0 };
	amqp_frame_t f;

	for (;;) {
		int rc = amqp_simple_wait_frame_noblock(p->conn, &f, &zero);

		if (rc == AMQP_STATUS_TIMEOUT)
			break;
		if (rc != AMQP_STATUS_OK) {
			fprintf(stderr, "%s: reading confirms: %s\n", p->prog, amqp_error_string2(rc));
			return -1;
		}
		if (on_frame(p, &f) != 0)
			return -1;
	}
	amqp_maybe_release_buffers(p->conn);
	return 0;
}

/*
 * True when a frame can be read now without blocking, waiting up to
 * timeout_ns for one.  Over TLS too, poll() sees every record not yet
 * read: OpenSSL reads no further ahead than the record it decrypts.
 */
static bool readable(const struct apub *p, int fd, uint64_t timeout_ns)
{
	struct pollfd pfd = { .fd = fd, .events = POLLIN };
	struct timespec ts = { .tv_sec = (time_t)(timeout_ns / 1000000000u),
			       .tv_nsec = (long)(timeout_ns % 1000000000u) };

	if (amqp_data_in_buffer(p->conn) || amqp_frames_enqueued(p->conn))
		return true;
	return ppoll(&pfd, 1, &ts, NULL) > 0;
}

/*
 * Waits up to timeout_ns for a frame, then handles all that are ready.
 * Returns -1 on error (reported).
 */
static int wait_and_read(struct apub *p, int fd, uint64_t timeout_ns)
{
	return readable(p, fd, timeout_ns) ? read_ready(p) : 0;
}

enum apub_status apub_run(struct apub *p, uint64_t window, uint64_t rate, double timeout)
{
	int fd = amqp_get_sockfd(p->conn);
	/* Nanoseconds between two messages with a rate. */
	uint64_t step_ns = rate > 0 ? 1000000000u / rate : 0;
	double t0 = tool_now_s(), deadline = t0 + timeout;

	while (p->settled < p->count) {
		if (tool_now_s() >= deadline)
			return APUB_TIMED_OUT;
		if (p->published < p->count && p->published - p->done < window) {
			if (step_ns) {
				/* Not yet this message's turn: read confirms meanwhile. */
				double due = t0 + (double)(p->published * step_ns) / 1e9;
				double left = due - tool_now_s();

				if (left > 0) {
					uint64_t wait_ns = left > 0.1 ? 100000000u : (uint64_t)(left * 1e9);

					if (wait_and_read(p, fd, wait_ns) != 0)
						return APUB_FAILED;
					continue;
				}
			}
			if (p->ops->publish(p->arg, p, p->published) != 0)
				return APUB_FAILED;
			p->published++;
			if (wait_and_read(p, fd, 0) != 0)
				return APUB_FAILED;
			continue;
		}
		/* The window is full (or everything is out): wait for confirms. */
		if (wait_and_read(p, fd, 100000000u) != 0)
			return APUB_FAILED;
	}
	/* A basic.return comes before the ack of its message: none is pending. */
	return APUB_DONE;
}

int apub_publish(struct apub *p, uint64_t seq, const char *exchange, const char *key,
                 const amqp_basic_properties_t *props, amqp_bytes_t body)
{
	int rc = amqp_basic_publish(p->conn, APUB_CHANNEL, amqp_cstring_bytes(exchange),
	                            amqp_cstring_bytes(key), 1, 0, props, body);

	if (rc != AMQP_STATUS_OK) {
		fprintf(stderr, "%s: publish seq %" PRIu64 ": %s\n", p->prog, seq, amqp_error_string2(rc));
		return -1;
	}
	return 0;
}
