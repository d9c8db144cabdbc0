/*
 * dlink: the downlink, RabbitMQ to MQTT, acknowledged after the PUBACK.
 *
 * The consumer channel (acons.h) is open only while the bridge runs, the
 * MQTT session is ACTIVE and the AMQP connection is up.  Each delivery is
 * mapped (dlmap.h) and published to MQTT; its delivery tag waits under the
 * message's packet identifier until libmosquitto reports the PUBACK (QoS
 * 1) or the write (QoS 0), and only then goes basic.ack.  So:
 *
 *  - a lost MQTT connection closes the channel, and RabbitMQ requeues
 *    every delivery not acknowledged (the MQTT client is made anew, so
 *    libmosquitto does not hold them either): duplicates, bounded by the
 *    prefetch, never loss;
 *  - a lost AMQP connection requeues them too; PUBACKs that come after it
 *    belong to a channel that is gone and are not sent;
 *  - a delivery that can never become an MQTT message (dlmap.h's poison
 *    reasons, libmosquitto's refusal, a PUBACK reason code of 0x80 or
 *    more) is rejected without requeue: the queue's dead-letter exchange
 *    gets it, once, and the log (rate-limited) and the counters say why;
 *  - stopping (SIGTERM, a reconnect after a reload) cancels the consumers
 *    and waits, for bridge.drain_timeout at most, until every message
 *    published is acknowledged; the MQTT connection closes only after
 *    that (dlink_busy()).
 */
#ifndef BRIDGE_DLINK_H
#define BRIDGE_DLINK_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "alink.h"
#include "config.h"
#include "dlmap.h"
#include "loop.h"
#include "mlink.h"

/* Why a delivery was rejected to the dead-letter exchange. */
enum dlink_reject {
	DL_REJ_TOPIC = 0,           /* the topic is not a valid MQTT topic name */
	DL_REJ_FIELD,               /* a template's word or header is missing or unusable */
	DL_REJ_TOO_LARGE,           /* larger than the MQTT broker's maximum packet size */
	DL_REJ_MQTT_REFUSED,        /* libmosquitto or the broker (PUBACK reason code) refused it */
	DL_REJ_N,
};

const char *dlink_reject_name(enum dlink_reject r);

struct dlink_counts {
	uint64_t received;          /* deliveries, redeliveries included */
	uint64_t redelivered;       /* deliveries RabbitMQ flagged redelivered */
	uint64_t published;         /* acknowledged after the PUBACK (or the write, QoS 0) */
	uint64_t requeued;          /* given back (basic.reject with requeue): stopping */
	uint64_t rejected[DL_REJ_N];
};

struct dlink_flight {
	uint64_t gen, tag;
	uint32_t queue;
	int32_t mid;                /* -1: a free slot */
};

struct dlink {
	struct alink *amqp;
	struct mlink *mqtt;
	struct loop *loop;
	const struct bridge_config *cfg;
	struct acons_queue *queues; /* owned copies of the entries' queue names */
	size_t n;
	struct dlink_counts *counts; /* per entry */
	struct dlink_flight *table; /* open addressing by packet identifier */
	size_t cap;
	size_t in_flight;
	char *topic;                /* DLMAP_TOPIC_MAX + 1 */
	bool accepting;             /* deliveries are published (else given back) */
	bool stopping;              /* the bridge stops or restarts: cancel, wait, close */
	uint64_t stop_deadline_ms;
	bool failed;                /* RabbitMQ closed the channel: wait for retry_timer */
	bool queue_gone;            /* ... because a queue was missing or deleted */
	bool redeclare;             /* the topology must be declared again (dlink_take_redeclare) */
	struct loop_timer retry_timer;
	uint32_t retry_ms;
	/* The rejection log: at most DLINK_LOG_BURST lines per DLINK_LOG_WINDOW_MS. */
	uint64_t log_window_ms;
	unsigned log_lines;
	uint64_t log_suppressed;
};

/* Returns 0, or -1 when memory ran out. */
int dlink_init(struct dlink *d, const struct bridge_config *cfg, struct alink *amqp,
               struct mlink *mqtt, struct loop *loop);
void dlink_fini(struct dlink *d);

/*
 * A configuration whose downlink is the same (a reload that left it
 * alone), or any configuration while nothing is consumed.  Returns 0, or
 * -1 when memory ran out (nothing changed).
 */
int dlink_configure(struct dlink *d, const struct bridge_config *cfg);

/*
 * Called before each poll: opens, cancels or closes the consumer channel
 * as the bridge's state says.  `run`: the bridge runs (not stopping or
 * restarting); `drain_s`: how long a stop waits for PUBACKs.
 */
void dlink_update(struct dlink *d, bool run, int drain_s);

/*
 * Whether messages published to MQTT still await their PUBACK while the
 * bridge stops: the MQTT connection must stay until then.
 */
bool dlink_busy(const struct dlink *d);

/* The handlers alink and mlink call (bridge.c passes them on). */
void dlink_on_delivery(struct dlink *d, const struct acons_delivery *dv);
void dlink_on_consuming(struct dlink *d);
void dlink_on_closed(struct dlink *d, const char *why, bool queue_gone);
void dlink_on_published(struct dlink *d, int mid, int reason);

/*
 * Whether a queue the topology declares went missing (deleted under its
 * consumer): the topology is declared on connect, so the bridge
 * reconnects AMQP.  True once per occurrence, after the retry delay.
 */
bool dlink_take_redeclare(struct dlink *d);

/* Totals over the entries, for the stats line. */
void dlink_totals(const struct dlink *d, struct dlink_counts *t);

#endif
