/*
 * guard: what an AMQP failure says about the messages in flight.  Pure: no
 * I/O; the bridge tells it what happened and asks it what to do.
 *
 * The poison guard.  A failure that may be a message's doing (RabbitMQ
 * closed the channel or the connection with a reply about what a message
 * carries, or rabbitmq-c could not encode a publish: guard_names_message())
 * counts against the copy at the head of those in flight, known by its
 * fingerprint.  `threshold` such failures in a row with the same head make
 * that copy poison: the bridge sets it aside (dead-letters it) when it is
 * read again, or drops it once its dead-letter copy failed as often.  The
 * count starts over when the suspect is confirmed after all.  After each
 * counted failure the bridge forwards a window of messages one at a time,
 * so that the head of the next failure is the message that caused it.
 *
 * RabbitMQ's size refusals.  A channel closed with "406 PRECONDITION_FAILED
 * - message size N is larger than [configured] max size M" names
 * RabbitMQ's own limit; guard_size_refusal() reads it.
 */
#ifndef BRIDGE_GUARD_H
#define BRIDGE_GUARD_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

enum guard_verdict {
	GUARD_FORWARD = 0,          /* not poison */
	GUARD_SET_ASIDE,            /* poison: dead-letter it (or drop it without a DLX) */
	GUARD_DROP,                 /* even its dead-letter copy failed as often: drop it */
};

struct guard {
	unsigned threshold;         /* bridge.poison_failures; 0: the guard is off */
	uint64_t suspect_fp;        /* the head of the last counted failures */
	unsigned failures;          /* counted failures in a row with it at the head */
	bool suspect_read;          /* read since the last failure */
	bool logged;                /* its verdict was logged */
	char why[512];              /* the last counted failure's reason */
	uint64_t probe_left;        /* messages still to forward one at a time */
};

void guard_init(struct guard *g, unsigned threshold);

/* A reload: the new threshold applies from the next failure on. */
void guard_set_threshold(struct guard *g, unsigned threshold);

/*
 * Whether a failure may have been caused by a message.  `closed` says
 * RabbitMQ closed the channel or the connection with reply `code` and
 * `text`; `encoding` that rabbitmq-c could not encode a publish.  Only 406,
 * 501, 502, 505 and a 403 over an internal exchange count; a lost socket,
 * a shutdown (320), a missing exchange (404), permissions (403), limits
 * (506, 530) and internal errors (541) never do.
 */
bool guard_names_message(bool closed, int code, const char *text, bool encoding);

/*
 * A failure with messages in flight: `fp` is the fingerprint of the copy
 * at their head (or being published), `counts` what guard_names_message()
 * said, `why` the reason, `batch` the messages read since the last flush
 * and `window` the messages the MQTT broker may deliver again before them.
 * Returns whether the failure was counted.
 */
bool guard_on_failure(struct guard *g, uint64_t fp, bool counts, const char *why, uint64_t batch,
                      uint64_t window);

/* A message was read: one less to forward one at a time. */
void guard_on_read(struct guard *g);

/* Whether messages are forwarded one at a time now. */
static inline bool guard_probing(const struct guard *g)
{
	return g->probe_left > 0;
}

/*
 * A copy with fingerprint `fp` is about to be published: what to do with
 * it.  Remembers that the suspect was read.
 */
enum guard_verdict guard_verdict(struct guard *g, uint64_t fp);

/*
 * Nothing is unconfirmed any more (`outstanding` == 0 and the link is up):
 * a suspect read since the last failure went through after all, and the
 * count starts over.
 */
void guard_on_settled(struct guard *g, size_t outstanding);

/*
 * Reads a size refusal from a 406's reply text into *size and *max.
 * Returns false for any other text.
 */
bool guard_size_refusal(const char *text, long long *size, long long *max);

#endif
