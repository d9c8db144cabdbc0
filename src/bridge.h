/*
 * bridge: the daemon itself.  Owns the loop, both links and the gate, and
 * runs the bridge's own lifecycle:
 *
 *   RUNNING     forwarding whenever both sides are up; MQTT is connected
 *               only while the AMQP channel is READY (not blocked)
 *   RESTARTING  a reload changed a side's connection settings, or a side on
 *               a standby address found its first address back: MQTT
 *               drains (nothing in flight is lost or acknowledged twice),
 *               then the side reconnects, and the bridge runs again
 *   DRAINING    SIGTERM: no more reads; waits (bridge.drain_timeout) for
 *               the confirms, flushes, disconnects both sides
 *   DONE        the loop ends
 *
 * Every transition goes through one function that logs it.  After each
 * event the bridge asks the gate (gate.h) once and tells each link what it
 * may do; links report events and never ask.  Nothing is torn down inside
 * a library's callback: a link that must go is dropped before the next
 * poll.
 *
 * SIGHUP reloads: a file that fails to load changes nothing; otherwise the
 * new rules apply from the next message read and subscriptions change by
 * difference.  The service manager hears about it (notify): READY=1 when
 * the loop starts, a STATUS= line whenever a side goes up or down,
 * STOPPING=1 on SIGTERM, and WATCHDOG=1 from a loop timer while the loop
 * turns.  With bridge.http_listen, the loop also serves /metrics (scrape.h),
 * /healthz (200 while the loop turns) and /readyz (bridge_ready()).
 */
#ifndef BRIDGE_BRIDGE_H
#define BRIDGE_BRIDGE_H

#include <stdbool.h>
#include <stdint.h>

#include "alink.h"
#include "config.h"
#include "dlink.h"
#include "forward.h"
#include "gate.h"
#include "http.h"
#include "loop.h"
#include "mlink.h"
#include "notify.h"
#include "stats.h"

enum bridge_state {
	BR_RUNNING = 0,
	BR_RESTARTING,
	BR_DRAINING,
	BR_DONE,
};

struct bridge {
	enum bridge_state state;
	struct bridge_config *cfg;    /* owned: the configuration in force */
	/*
	 * Owned: the configuration before a reload, while a link restarting
	 * with the new settings may still use the old ones.
	 */
	struct bridge_config *retired;
	bool restart_mqtt;            /* RESTARTING: reconnect MQTT with the new settings */
	bool restart_amqp;            /* RESTARTING: reconnect AMQP with the new settings */
	bool primary_mqtt;            /* RESTARTING: MQTT returns to its first address */
	bool primary_amqp;            /* RESTARTING: AMQP returns to its first address */
	bool reload_pending;          /* SIGHUP while RESTARTING: reload after it */
	bool log_level_forced;        /* -v: reloads keep the debug level */
	struct loop loop;
	struct mlink mqtt;
	struct alink amqp;
	struct gate gate;
	struct stats stats;
	struct notify notify;
	struct forward fw;            /* the forwarding path */
	struct dlink dl;              /* the downlink: RabbitMQ to MQTT */
	struct loop_timer drain_timer;
	struct http http;             /* bridge.http_listen: /metrics, /healthz, /readyz */
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
 * Whether the bridge forwards now: running (not draining or restarting),
 * the MQTT session up, the AMQP channel ready and not blocked, and the
 * oldest unconfirmed publish younger than BRIDGE_STALL_MS (a RabbitMQ that
 * stopped answering is noticed while messages flow, long before its
 * heartbeat times out).  Otherwise writes the reasons to `why`, one line
 * each.  /readyz answers this.
 */
#define BRIDGE_STALL_MS 500
bool bridge_ready(const struct bridge *b, char *why, size_t size);

/* Logs the counters as one "stats: ..." line. */
void bridge_log_stats(const struct bridge *b);

const char *bridge_state_name(enum bridge_state s);

#endif
