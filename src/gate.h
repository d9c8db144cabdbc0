/*
 * gate: the decisions of ack-after-forward.  Pure: no I/O.  The bridge
 * tells it what happened on either side and, after each event, asks it
 * once what each link may do now (gate_decide()); the links never ask.
 *
 * It owns the confirm tracker and the poison guard:
 *
 *  - flush: queued PUBACKs may be written only while nothing read on the
 *    MQTT connection is unconfirmed, and never once a message read on it
 *    can no longer be confirmed (poisoned);
 *  - the cap: MQTT is read only while fewer than `cap` (mqtt.inflight_max)
 *    messages were read since the last flush, and fewer than 2 x cap
 *    delivery tags are between the oldest unconfirmed and the next;
 *  - connect: a new MQTT connection starts only while the AMQP channel is
 *    ready, nothing is unconfirmed (every unconfirmed message then belongs
 *    to the current connection) and the bridge does not hold MQTT closed;
 *  - drop: a nack, or an AMQP failure with messages unconfirmed or a
 *    poisoned connection, ends the MQTT connection without writing what is
 *    queued, so that the broker redelivers.
 */
#ifndef BRIDGE_GATE_H
#define BRIDGE_GATE_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "ctrack.h"
#include "guard.h"

struct gate {
	struct ctrack track;
	struct guard guard;
	uint64_t cap;               /* mqtt.inflight_max */
	uint64_t unflushed;         /* messages read on the connection since the last flush */
	uint64_t redelivered;       /* messages given back by ending a connection unflushed */
	bool mqtt_up;               /* an MQTT connection exists */
	bool amqp_ready;            /* the channel is open and RabbitMQ does not block it */
	bool hold;                  /* the bridge keeps MQTT from reading and connecting */
	bool poisoned;              /* a message read on the connection cannot be confirmed */
	bool must_drop;             /* the connection must end without a flush */
	/*
	 * The downlink awaits PUBACKs: while held, MQTT keeps reading (the
	 * PUBACKs come on the same socket) and does not close yet.
	 */
	bool downlink_busy;
};

/* What the links may do now. */
struct gate_decision {
	uint64_t read;              /* messages MQTT may read (0: none) */
	bool flush;                 /* queued PUBACKs may be written */
	bool connect;               /* a new MQTT connection may start */
	bool drop;                  /* the MQTT connection must end unacknowledged */
	bool close;                 /* it must end cleanly: no more reads, flush, DISCONNECT */
};

/* Returns 0, or -1 when memory ran out. */
int gate_init(struct gate *g, uint64_t cap, unsigned poison_failures);
void gate_fini(struct gate *g);

/*
 * The answer to every question at once.  `send_room` says whether
 * RabbitMQ's socket takes more (its send queue is short).  Also closes the
 * poison guard's case against a suspect that went through after all.
 */
void gate_decide(struct gate *g, bool send_room, struct gate_decision *d);

/* While held: no reads and no new MQTT connection; flushes continue. */
void gate_hold(struct gate *g, bool hold);

/* Whether the downlink awaits PUBACKs (dlink_busy()): a hold waits for them. */
void gate_downlink_busy(struct gate *g, bool busy);

/* A reload's new cap and poison threshold. */
void gate_configure(struct gate *g, uint64_t cap, unsigned poison_failures);

/* MQTT events. */
void gate_mqtt_up(struct gate *g);
/* The connection is gone: returns how many messages read on it go back unacknowledged. */
uint64_t gate_mqtt_down(struct gate *g);
void gate_read(struct gate *g);
/* Queued PUBACKs were written: returns how many messages that released. */
uint64_t gate_flushed(struct gate *g);
/* A message read cannot be confirmed (its publish failed, memory ran out). */
void gate_poison(struct gate *g);

/* AMQP events.  A channel that goes down puts every unconfirmed publish in doubt. */
void gate_amqp_up(struct gate *g);
void gate_amqp_down(struct gate *g);
void gate_amqp_blocked(struct gate *g, bool blocked);

/*
 * basic.ack / basic.nack: as ctrack_ack() / ctrack_nack(); -1 is a
 * protocol violation.  A nack makes the MQTT connection end unacknowledged.
 */
int gate_ack(struct gate *g, uint64_t tag, bool multiple, struct ctrack_counts *c);
int gate_nack(struct gate *g, uint64_t tag, bool multiple, struct ctrack_counts *c);

/* Whether a side may restart with new settings: MQTT closed and nothing in flight. */
bool gate_idle(const struct gate *g);

static inline size_t gate_outstanding(const struct gate *g)
{
	return ctrack_outstanding(&g->track);
}

#endif
