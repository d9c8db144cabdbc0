/*
 * ctrack: bookkeeping of publisher confirms on one AMQP channel.  Pure: no
 * I/O.
 *
 * Every basic.publish on a channel in confirm mode gets the next delivery
 * tag (1, 2, 3, ...).  The tracker records, per outstanding tag, what a
 * confirm of it will count as (its fate) and the MQTT topic it came from,
 * and resolves basic.ack / basic.nack with or without the `multiple` flag.
 * RabbitMQ sends basic.return for an unroutable mandatory message before
 * that message's basic.ack; ctrack_find_return() finds which outstanding
 * message a return belongs to.
 *
 * The gate of ack-after-forward is ctrack_outstanding() == 0.
 */
#ifndef BRIDGE_CTRACK_H
#define BRIDGE_CTRACK_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

enum ctrack_fate {
	CT_FATE_NONE = 0,       /* counted elsewhere (its dead-letter copy counts) */
	CT_FATE_FORWARDED,
	CT_FATE_DEADLETTERED,
	CT_FATE_DROPPED,
};

struct ctrack_entry {
	uint64_t key_hash;      /* of exchange and routing key, to match returns */
	uint64_t fp;            /* the MQTT message's fingerprint (ctrack_fingerprint()) */
	char *topic;            /* the MQTT topic, owned; the buffer stays with the slot */
	size_t topic_cap;       /* its size (kept for the slot's next tag when small) */
	uint64_t sent_us;       /* when it was published (loop_time_us()), for the confirm latency */
	uint32_t counter;       /* the exchange counter (stats.h) an ack adds to; a dead-letter
	                           copy: its reason (enum stats_dead) */
	unsigned char fate;
	bool deadletter;        /* a copy sent to the dead-letter exchange */
	bool returned;
	bool settled;
};

struct ctrack_counts {
	uint64_t forwarded;
	uint64_t dead_lettered;
	uint64_t dropped;
	uint64_t nacked;
	/* When set, called with each entry settled (before it is cleared). */
	void (*each)(void *arg, const struct ctrack_entry *e, bool ack);
	void *arg;
};

struct ctrack {
	struct ctrack_entry *ring;
	uint64_t mask;          /* ring size - 1; the size is a power of two */
	uint64_t low;           /* lowest tag not yet settled */
	uint64_t next;          /* tag the next publish gets */
	size_t outstanding;
};

/* Room for at least `span` tags between the oldest unsettled and the newest. */
int ctrack_init(struct ctrack *t, size_t span);
void ctrack_fini(struct ctrack *t);

/*
 * Grows the ring, keeping every outstanding entry, so that it holds at
 * least `span` tags.  Returns 0, or -1 when memory ran out (nothing changed).
 */
int ctrack_reserve(struct ctrack *t, size_t span);

/* A new channel: forgets every outstanding tag; the next publish is tag 1. */
void ctrack_reset(struct ctrack *t);

/* Tags currently between the oldest unsettled and the next (what the ring holds). */
static inline uint64_t ctrack_span(const struct ctrack *t)
{
	return t->next - t->low;
}

static inline size_t ctrack_outstanding(const struct ctrack *t)
{
	return t->outstanding;
}

/* Whether one more publish fits in the ring. */
static inline bool ctrack_has_room(const struct ctrack *t)
{
	return ctrack_span(t) <= t->mask;
}

/*
 * Records the publish that got tag `t->next`, from the MQTT topic `topic`.
 * Returns that tag, or 0 when the ring is full or memory ran out (the caller
 * must not have published).
 */
uint64_t ctrack_add(struct ctrack *t, uint64_t key_hash, const char *topic, size_t topic_len,
                    bool deadletter);

/*
 * basic.ack / basic.nack.  Settles `tag` (and with `multiple` every smaller
 * outstanding tag), adding what they count as to `c`: an ack by fate, a nack
 * as nacked.  Returns the number settled (0 for a `multiple` that covers
 * only tags already settled one by one), or -1 when `tag` was never
 * published or, without `multiple`, is already settled: a protocol
 * violation.
 */
int ctrack_ack(struct ctrack *t, uint64_t tag, bool multiple, struct ctrack_counts *c);
int ctrack_nack(struct ctrack *t, uint64_t tag, bool multiple, struct ctrack_counts *c);

/*
 * basic.return: the oldest outstanding, not yet returned entry whose
 * exchange and routing key hash to `key_hash`; marks it returned.  NULL when
 * none matches.  The caller sets its fate (CT_FATE_NONE when a dead-letter
 * copy takes over the counting, CT_FATE_DROPPED otherwise).
 */
struct ctrack_entry *ctrack_find_return(struct ctrack *t, uint64_t key_hash);

/*
 * The outstanding entry of `tag`, to fill in what ctrack_add() does not
 * take (its fingerprint); NULL when `tag` is not outstanding.
 */
struct ctrack_entry *ctrack_get(struct ctrack *t, uint64_t tag);

/* The oldest outstanding entry (the head of what a failure puts in doubt), or NULL. */
const struct ctrack_entry *ctrack_head(const struct ctrack *t);

/*
 * What tells one MQTT message from another across redeliveries: a 64-bit
 * hash of its topic and payload.  Never 0.
 */
uint64_t ctrack_fingerprint(const char *topic, size_t topic_len, const void *payload, size_t len);

/* A fingerprint that also holds `more` (another hash); never 0. */
uint64_t ctrack_fingerprint_add(uint64_t fp, uint64_t more);

/* FNV-1a over the exchange name, a separator and the routing key. */
uint64_t ctrack_key_hash(const char *exchange, size_t exlen, const char *key, size_t keylen);

#endif
