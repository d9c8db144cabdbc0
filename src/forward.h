/*
 * forward: the forwarding path.  What happens to each message read from
 * MQTT, and to each confirm, nack and return from RabbitMQ:
 *
 *  - each message goes where route.h says: one copy per matching rule,
 *    dropped and counted, or by the unmatched default; its PUBACK waits for
 *    every copy's confirm like any other;
 *  - a message that can never be delivered goes to the dead-letter
 *    exchange, or is dropped and counted, and then acknowledged: one whose
 *    routing key, body or properties RabbitMQ could not take is never
 *    published, one RabbitMQ refuses by closing the channel over its size
 *    is known by its size from then on, and one at the head of
 *    bridge.poison_failures consecutive AMQP failures that name a message
 *    (the poison guard) is set aside as `poison`;
 *  - a publish that fails poisons the MQTT connection in the gate: the
 *    bridge then drops it unacknowledged.
 */
#ifndef BRIDGE_FORWARD_H
#define BRIDGE_FORWARD_H

#include <stdbool.h>
#include <stdint.h>

#include <mosquitto.h>

#include "alink.h"
#include "config.h"
#include "gate.h"
#include "log.h"
#include "props.h"
#include "route.h"
#include "stats.h"

/* The forwarding path's state; the bridge holds one and points it at the rest. */
struct forward {
	const struct bridge_config *cfg;  /* the configuration in force (kept current on reload) */
	struct gate *gate;
	struct alink *amqp;
	struct stats *stats;
	struct route route;           /* where the message being read goes */
	struct props_buf props;
	char drop_why[160];           /* why the gate wants MQTT dropped */
	uint64_t warn_window_ms;      /* rate limit for per-message warnings */
	uint64_t warn_suppressed;
	/*
	 * RabbitMQ's own max_message_size, once a refusal told it and it is
	 * below amqp.max_message_size; 0 while unknown.  A reload forgets it.
	 */
	int64_t broker_max_size;
	uint64_t publishing_fp;       /* the copy whose publish is under way, 0 outside */
	/* The exchange counters (stats.h) of amqp.exchange and of each rule, by rule index - 1. */
	uint32_t main_counter;
	uint32_t *rule_counter;
};

/* Returns 0, or -1 when memory ran out. */
int fw_init(struct forward *f, const struct bridge_config *cfg, struct gate *gate,
            struct alink *amqp, struct stats *stats);
void fw_fini(struct forward *f);
/* A reload: the new configuration from the next message read.  Returns 0 or -1 (nothing changed). */
int fw_configure(struct forward *f, const struct bridge_config *cfg);

/* The link handlers, with the forward as `arg`. */
void fw_on_message(void *arg, const struct mosquitto_message *msg,
                   const mosquitto_property *mprops, bool dup);
void fw_on_ack(void *arg, uint64_t tag, bool multiple);
void fw_on_nack(void *arg, uint64_t tag, bool multiple);
void fw_on_returned(void *arg, const struct alink_return *r);

/*
 * An AMQP failure with messages in flight: learns RabbitMQ's size limit
 * from a refusal, or counts it for the poison guard.  Call it before the
 * confirm bookkeeping is reset.
 */
void fw_judge_failure(struct forward *f);

/* At most one per-message warning a second; the rest are counted into the next. */
void fw_warn(struct forward *f, const char *fmt, ...) LOG_PRINTF(2, 3);

#endif
