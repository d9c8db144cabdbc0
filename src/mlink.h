/*
 * mlink: the MQTT side.  One libmosquitto client in "threaded" mode, driven
 * by the loop through its socket, so that queued packets (PUBACKs above all)
 * reach the socket only when the bridge allows a flush (mlink_allow()).
 *
 * libmosquitto queues the PUBACK of a QoS 1 message before on_message runs;
 * with mosquitto_threaded_set(true) a queued packet is written only inside
 * mosquitto_loop_write().  Calling that only when every message read on the
 * connection is confirmed by RabbitMQ gives ack-after-forward; dropping the
 * TCP connection without calling it discards the PUBACKs, and the broker
 * redelivers those messages to the persistent session.
 *
 * The broker is one address of mqtt.hosts at a time (failover.h): a failed
 * attempt, a refused CONNECT or a lost connection moves to the next one.
 * On a standby address in "primary" order the link checks every
 * mqtt.primary_retry seconds whether the first address accepts
 * connections again (homing.h) and tells the bridge (primary_back), which
 * drains the link and points it back (mlink_to_primary()).  Each broker
 * keeps its own session of the client id, unless the brokers share
 * sessions.
 *
 * States:
 *   DOWN -> (backoff, and the bridge allows it) -> RESOLVING -> CONNECTING
 *     -> SUBSCRIBING -> ACTIVE
 *   ACTIVE/SUBSCRIBING -> DRAINING (no more reads; flush and DISCONNECT
 *     once the bridge allows a flush) -> DOWN
 *   RESOLVING/CONNECTING -> DOWN at once on a drain: nothing was read
 *   any -> DOWN on a lost connection or mlink_drop() (no flush)
 *   RESOLVING/CONNECTING -> DOWN when no CONNACK came within
 *     mqtt.connect_timeout (the lookup, TCP, TLS and CONNACK together)
 */
#ifndef BRIDGE_MLINK_H
#define BRIDGE_MLINK_H

#include <stdbool.h>
#include <stdint.h>

#include <mosquitto.h>

#include "backoff.h"
#include "failover.h"
#include "settings.h"
#include "closer.h"
#include "loop.h"
#include "homing.h"
#include "msubs.h"
#include "resolve.h"

enum mlink_state {
	ML_DOWN = 0,
	ML_RESOLVING,    /* looking the broker's name up (resolve.h) */
	ML_CONNECTING,   /* TCP connect and CONNECT sent, awaiting CONNACK */
	ML_SUBSCRIBING,  /* SUBSCRIBE sent, awaiting SUBACK; messages may already flow */
	ML_ACTIVE,
	ML_DRAINING,     /* reading stopped; DISCONNECT follows the next flush */
};

struct mlink_handlers {
	/*
	 * A PUBLISH was read, with its MQTT 5 properties (NULL for none) and
	 * its DUP flag (a redelivery).  Its PUBACK is queued and waits for a
	 * flush.
	 */
	void (*message)(void *arg, const struct mosquitto_message *msg,
	                const mosquitto_property *props, bool dup);
	void (*connecting)(void *arg);  /* a connection attempt started: messages may follow */
	/* Every message read so far is released (PUBACKs queued to go); returns how many. */
	uint64_t (*flushed)(void *arg);
	void (*up)(void *arg);          /* subscribed: forwarding */
	void (*down)(void *arg);        /* the connection is gone */
	void (*primary_back)(void *arg); /* on a standby address, the first one answers again */
	/*
	 * A message of mlink_publish() got there: its PUBACK arrived (QoS 1),
	 * with the broker's reason code (MQTT 5; 0 for 3.1.1), or it was
	 * written to the socket (QoS 0, reason 0).
	 */
	void (*published)(void *arg, int mid, int reason);
};


/* How failures are counted (connection_failures_total{side="mqtt",reason}). */
enum mlink_fail {
	ML_FAIL_CONNECT = 0,        /* no connection: name lookup, socket, TLS, time-out */
	ML_FAIL_REFUSED,            /* the broker refused the CONNECT */
	ML_FAIL_LOST,               /* an established connection failed or the broker closed it */
	ML_FAIL_DROPPED,            /* dropped by the bridge: RabbitMQ failed or refused a message */
	ML_FAIL_ERROR,              /* a local error */
	ML_FAIL_N,
};

const char *mlink_fail_name(enum mlink_fail f);

struct mlink {
	enum mlink_state state;
	const struct mqtt_settings *cfg;
	struct loop *loop;
	struct mlink_handlers h;
	void *arg;

	struct mosquitto *mosq;
	int fd;
	bool wanted;              /* keep connecting */
	/* What the bridge allows (mlink_allow()); the link never asks. */
	uint64_t read_budget;     /* messages it may still read */
	bool flush_ok;            /* queued packets may be written */
	bool connect_ok;          /* a new connection may start */
	bool gate_wait;           /* the retry timer polls only for connect_ok */
	bool broken;              /* a request could not be queued: drop, never flush */
	bool disconnect_sent;     /* DRAINING: DISCONNECT is queued behind the PUBACKs */
	int disconnect_fd;        /* a duplicate of the socket from DISCONNECT on, to linger */
	struct closer linger;     /* after a clean close: read until the broker closes */
	uint64_t connects;        /* connections the broker accepted (CONNACK 0) */
	uint64_t fails[ML_FAIL_N]; /* failures by kind, since the start */
	bool refused;             /* the attempt under way got a refusing CONNACK */
	bool dropping;            /* inside mlink_drop(): the bridge ends it */
	uint64_t had_session;     /* bit i: connected before to cfg->hosts[i] with this client id */
	uint64_t up_since_ms;
	struct backoff backoff;
	struct failover fo;       /* which of cfg->hosts is in use or tried next */
	struct homing homing;     /* on a standby: is the first address back? */
	struct loop_timer retry_timer;
	struct loop_timer misc_timer;   /* keepalive */
	struct loop_timer connect_timer; /* mqtt.connect_timeout: lookup, TCP, TLS and CONNACK */
	struct loop_timer resolve_timer; /* polls the lookup in progress */
	struct resolve resolve;
	uint64_t attempts;        /* which of the broker's addresses the next attempt takes */
	struct msubs subs;        /* subscriptions and requests in flight */
	/* What the broker's CONNACK allows (MQTT 5); 0: MQTT's own maximum. */
	uint32_t max_packet;
	/*
	 * The client published (mlink_publish()): create it anew before the
	 * next attempt.  libmosquitto would keep the unacknowledged messages in
	 * flight across a reconnect without sending them again, and count
	 * them against the broker's receive maximum; their senders take them
	 * back themselves.
	 */
	bool renew;
	uint64_t queued_publishes; /* published since the last flush: they leave together */
};

int mlink_init(struct mlink *m, const struct mqtt_settings *cfg, const struct bridge_settings *bs,
               struct loop *loop, const struct mlink_handlers *h, void *arg);
void mlink_fini(struct mlink *m);

/* Keep the session connected: connect now, or after the backoff delay. */
void mlink_start(struct mlink *m);

/* Stop reading; flush and DISCONNECT cleanly as soon as flushing is allowed. */
void mlink_drain(struct mlink *m);

/*
 * Close the connection now without writing anything queued: every message
 * read since the last flush is redelivered by the broker.  Reconnects to
 * the same address as soon as mlink_allow() allows a connection (the
 * bridge drops MQTT when RabbitMQ failed, and allows it again once the
 * channel is back, after AMQP's own backoff), unless mlink_drain() or
 * mlink_stop() said otherwise.
 */
void mlink_drop(struct mlink *m, const char *why);

/* Stop for good: no reconnection (call mlink_drain() or mlink_drop() first). */
void mlink_stop(struct mlink *m);

/*
 * What the link may do from now on: read at most `read` more messages
 * (each message read uses one up), write its queued packets (PUBACKs
 * above all) at the next mlink_prepare(), start a new connection.
 */
void mlink_allow(struct mlink *m, uint64_t read, bool flush, bool connect);

/*
 * Called before each poll: flushes queued packets when allowed, completes
 * a drain, and sets the socket's poll events.
 */
void mlink_prepare(struct mlink *m);

/*
 * Changes the subscriptions to `filters` by difference: when connected,
 * SUBSCRIBE for the added filters and then UNSUBSCRIBE for the removed ones
 * (queued behind the gate like every packet); otherwise the next connection
 * does both.  Returns 0, or -1 when memory ran out (nothing changed).
 */
int mlink_set_subscriptions(struct mlink *m, char *const *filters, size_t n);

/*
 * New settings for a link that is DOWN (after a drain): the client is
 * created anew with them on the next connect.  The subscriptions become
 * cfg->subscribe by difference.  Returns 0, or -1 after logging why.
 */
int mlink_reconfigure(struct mlink *m, const struct mqtt_settings *cfg,
                      const struct bridge_settings *bs);

/* The address in use, or tried next. */
const struct endpoint *mlink_node(const struct mlink *m);

/* The next connection takes the first address (the link is DOWN after a drain). */
void mlink_to_primary(struct mlink *m);

/*
 * Publishes a message: queued behind the gate like every packet, so it
 * leaves at the next flush.  The published handler reports it with *mid.
 * Returns a MOSQ_ERR_* code; MOSQ_ERR_NO_CONN when the session is not
 * ACTIVE.  A message not yet reported when the connection goes is never
 * reported: the caller owns giving it back.
 */
int mlink_publish(struct mlink *m, const char *topic, const void *payload, size_t len, int qos,
                  bool retain, const mosquitto_property *props, int *mid);

/* Whether a connection exists, or a clean close is still completing. */
bool mlink_connected(const struct mlink *m);
const char *mlink_state_name(enum mlink_state s);

#endif
