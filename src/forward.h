/*
 * forward: the bridge itself.  Owns the loop, both links and the confirm
 * tracker, and holds every policy that connects them:
 *
 *  - the gate: PUBACKs are written only while no message read on the MQTT
 *    connection is unconfirmed (ctrack_outstanding() == 0);
 *  - the cap: MQTT is read only while fewer than mqtt.inflight_max
 *    messages are unconfirmed;
 *  - MQTT is connected only while the AMQP channel is READY (not blocked);
 *  - a nack, or an AMQP failure with messages unconfirmed, drops the MQTT
 *    connection without flushing, so the broker redelivers;
 *  - a message that can never be delivered goes to the dead-letter
 *    exchange, or is dropped and counted, and then acknowledged: one whose
 *    routing key, body or properties RabbitMQ could not take is never
 *    published, one RabbitMQ refuses by closing the channel over its size
 *    is known by its size from then on, and one at the head of
 *    bridge.poison_failures consecutive AMQP failures that name a message
 *    (the poison guard) is set aside as `poison`;
 *  - each message goes where the rules say: one copy per matching rule
 *    (several with `continue`), dropped and counted, or by the unmatched
 *    default; its PUBACK waits for every copy's confirm like any other;
 *  - SIGTERM drains: stop reading, wait (bounded) for confirms, flush,
 *    disconnect both sides;
 *  - SIGHUP reloads: a file that fails to load changes nothing; otherwise
 *    the new rules apply from the next message read, subscriptions change
 *    by difference, and a side whose connection settings changed is
 *    drained (nothing in flight is lost or acknowledged twice) and
 *    reconnected with them;
 *  - the service manager hears about it (notify): READY=1 when the loop
 *    starts, a STATUS= line whenever a side goes up or down, STOPPING=1 on
 *    SIGTERM, and WATCHDOG=1 from a loop timer while the loop turns.
 */
#ifndef BRIDGE_FORWARD_H
#define BRIDGE_FORWARD_H

#include <stdbool.h>
#include <stdint.h>

#include "alink.h"
#include "config.h"
#include "ctrack.h"
#include "guard.h"
#include "loop.h"
#include "mlink.h"
#include "notify.h"
#include "props.h"
#include "rules.h"
#include "stats.h"

struct bridge {
	struct bridge_config *cfg;    /* owned: the configuration in force */
	/*
	 * Owned: the configuration before a reload, while a link restarting
	 * with the new settings may still use the old ones.
	 */
	struct bridge_config *retired;
	bool restart_mqtt;            /* reload: reconnect MQTT once drained */
	bool restart_amqp;            /* reload: reconnect AMQP once drained */
	bool reload_pending;          /* SIGHUP during a restart: reload after it */
	bool log_level_forced;        /* -v: reloads keep the debug level */
	struct loop loop;
	struct mlink mqtt;
	struct alink amqp;
	struct ctrack track;
	struct stats stats;
	struct notify notify;
	const struct rule **matches;  /* scratch for rules_match() */
	size_t matches_cap;
	struct props_buf props;

	bool stopping;
	bool done;
	struct loop_timer drain_timer;
	uint64_t warn_window_ms;      /* rate limit for per-message warnings */
	uint64_t warn_suppressed;

	/*
	 * RabbitMQ's own max_message_size, once a refusal told it and it is
	 * below amqp.max_message_size; 0 while unknown.  A reload forgets it.
	 */
	int64_t broker_max_size;
	struct guard guard;           /* the poison guard (see guard.h) */
	uint64_t publishing_fp;       /* the copy whose publish is under way, 0 outside */
};

/*
 * Sets everything up without connecting.  On success takes over `cfg`
 * (allocated with malloc and loaded by config_load(); bridge_fini() frees
 * it); on failure the caller keeps it.  Returns 0, or -1 after logging why.
 */
int bridge_init(struct bridge *b, struct bridge_config *cfg);

/*
 * Runs until a SIGTERM/SIGINT drain completes, telling the service manager
 * (if any) that it is ready first.  Returns the exit status.
 */
int bridge_run(struct bridge *b);

void bridge_fini(struct bridge *b);

/*
 * What props_build() needs for one copy of `msg` (topic `tlen` bytes) under
 * rule `r` (NULL: the unmatched default); --route shows the same.
 */
void bridge_props_input(struct props_input *in, const struct bridge_settings *bs,
                        const struct rule *r, const struct mosquitto_message *msg, size_t tlen,
                        const mosquitto_property *mprops, bool dup);

/* Logs the counters as one "stats: ..." line. */
void bridge_log_stats(const struct bridge *b);

#endif
