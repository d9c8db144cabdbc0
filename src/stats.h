/*
 * stats: the forwarding path's counters and histograms.  Logged as one line
 * on SIGUSR1 and at shutdown, and exported at /metrics (scrape.h).
 *
 * Counting a message is an increment, and timing one a histogram
 * observation on the loop's cached clock (loop_time_us()): no system call
 * and no allocation.  What has names (exchanges, rules) is set up when a
 * configuration is loaded, where allocating is allowed: the forwarding
 * path then counts by index.
 */
#ifndef BRIDGE_STATS_H
#define BRIDGE_STATS_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "hist.h"

struct rules;

/* Why a message went nowhere. */
enum stats_drop {
	STATS_DROP_RULE = 0,        /* a drop rule */
	STATS_DROP_UNMATCHED,       /* no rule matched and bridge.unmatched is "drop" */
	STATS_DROP_UNDELIVERABLE,   /* refused or unroutable, and no dead-letter copy went */
	STATS_DROP_N,
};

/* Why a copy went to the dead-letter exchange: its x-bridge-reason header. */
enum stats_dead {
	STATS_DEAD_INVALID_TOPIC = 0,
	STATS_DEAD_TOO_LARGE,
	STATS_DEAD_KEY_TOO_LONG,
	STATS_DEAD_PROPS_TOO_LARGE,
	STATS_DEAD_POISON,
	STATS_DEAD_UNROUTABLE,
	STATS_DEAD_N,
};

struct stats_exchange {
	char *name;
	uint64_t forwarded;
};

struct stats_rule {
	char *label;                /* the rule's name, or "line N" */
	uint64_t matches;
};

/*
 * When each message still unacknowledged to MQTT was read, oldest first,
 * for the hold-time histogram: a ring of `mask + 1` times.
 */
struct stats_holdq {
	uint64_t *at_us;
	uint64_t mask;
	uint64_t head;              /* the oldest */
	uint64_t tail;              /* where the next goes */
};

struct stats {
	uint64_t received;          /* PUBLISH packets read from MQTT (redeliveries: gate.redelivered) */
	uint64_t dead_lettered;     /* confirmed on the dead-letter exchange (all of dead[] and
	                               any reason it does not name) */
	uint64_t nacked;            /* basic.nack received: MQTT dropped so the broker redelivers */
	uint64_t amqp_connects;
	uint64_t drops[STATS_DROP_N];
	uint64_t dead[STATS_DEAD_N];
	/*
	 * Every exchange a configuration named since the start: a counter
	 * never goes away, and a copy in flight keeps its index across a
	 * reload.
	 */
	struct stats_exchange *ex;
	size_t n_ex;
	size_t cap_ex;
	/* The rules in force; a reload carries counts over by label. */
	struct stats_rule *rules;
	size_t n_rules;
	uint64_t reloads;
	uint64_t reload_failures;
	bool last_reload_ok;
	double last_reload_s;       /* wall-clock time of the last successful load */
	struct hist confirm;        /* publish to basic.ack */
	struct hist hold;           /* MQTT read to PUBACK written */
	struct stats_holdq holdq;
};

void stats_init(struct stats *s);
void stats_fini(struct stats *s);

/* The index of `name`'s counter, added when new.  Returns -1 when memory ran out. */
int stats_exchange(struct stats *s, const char *name);

/*
 * The counters of a new rule set, one per rule in order, carried over
 * from the old set where a label is the same.  Returns 0, or -1 when
 * memory ran out (nothing changed).
 */
int stats_set_rules(struct stats *s, const struct rules *rs);

/* The dead-letter reason of an x-bridge-reason value; STATS_DEAD_N when unknown. */
enum stats_dead stats_dead_index(const char *reason);
const char *stats_dead_name(enum stats_dead d);
const char *stats_drop_name(enum stats_drop d);

static inline void stats_drop(struct stats *s, enum stats_drop why)
{
	s->drops[why]++;
}

/* Copies confirmed on the exchange a rule chose: all of ex[]. */
uint64_t stats_forwarded(const struct stats *s);
/* Messages that went nowhere: all of drops[]. */
uint64_t stats_dropped(const struct stats *s);

/* Room for `n` read times (mqtt.inflight_max).  Returns 0, or -1 (nothing changed). */
int stats_holdq_reserve(struct stats *s, uint64_t n);

/* A message was read at `now_us`; a full ring skips it (it is then not timed). */
static inline void stats_read_at(struct stats *s, uint64_t now_us)
{
	struct stats_holdq *q = &s->holdq;

	if (q->at_us && q->tail - q->head <= q->mask)
		q->at_us[q->tail++ & q->mask] = now_us;
}

/* PUBACKs of every message read so far were written at `now_us`. */
void stats_flushed_at(struct stats *s, uint64_t now_us);

/* The connection ended: what was read goes back unacknowledged, and is not timed. */
static inline void stats_unread(struct stats *s)
{
	s->holdq.head = s->holdq.tail;
}

#endif
