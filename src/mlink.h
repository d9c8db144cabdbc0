/*
 * mlink: the MQTT side.  One libmosquitto client in "threaded" mode, driven
 * by the loop through its socket, so that queued packets (PUBACKs above all)
 * reach the socket only when mlink_flush() lets them.
 *
 * libmosquitto queues the PUBACK of a QoS 1 message before on_message runs;
 * with mosquitto_threaded_set(true) a queued packet is written only inside
 * mosquitto_loop_write().  Calling that only when every message read on the
 * connection is confirmed by RabbitMQ gives ack-after-forward; dropping the
 * TCP connection without calling it discards the PUBACKs, and the broker
 * redelivers those messages to the persistent session.
 *
 * States:
 *   DOWN -> (backoff) -> CONNECTING -> SUBSCRIBING -> ACTIVE
 *   ACTIVE/SUBSCRIBING/CONNECTING -> DRAINING (no more reads; flush and
 *     DISCONNECT once the gate opens) -> DOWN
 *   any -> DOWN on a lost connection or mlink_drop() (no flush)
 *   CONNECTING -> DOWN when no CONNACK came within mqtt.connect_timeout
 */
#ifndef BRIDGE_MLINK_H
#define BRIDGE_MLINK_H

#include <stdbool.h>
#include <stdint.h>

#include <mosquitto.h>

#include "backoff.h"
#include "config.h"
#include "loop.h"

enum mlink_state {
	ML_DOWN = 0,
	ML_CONNECTING,   /* TCP connect and CONNECT sent, awaiting CONNACK */
	ML_SUBSCRIBING,  /* SUBSCRIBE sent, awaiting SUBACK; messages may already flow */
	ML_ACTIVE,
	ML_DRAINING,     /* reading stopped; DISCONNECT follows the next flush */
};

struct mlink_handlers {
	/*
	 * A PUBLISH was read, with its MQTT 5 properties (NULL for none) and
	 * its DUP flag (a redelivery).  Its PUBACK is queued and waits for the
	 * gate.
	 */
	void (*message)(void *arg, const struct mosquitto_message *msg,
	                const mosquitto_property *props, bool dup);
	/* Whether more messages may be read now (cap, AMQP state). */
	bool (*may_read)(void *arg);
	/* Whether queued PUBACKs may be written now: nothing read is unconfirmed. */
	bool (*may_flush)(void *arg);
	/* Whether a (re)connection may start now. */
	bool (*may_connect)(void *arg);
	void (*up)(void *arg);       /* subscribed: forwarding */
	void (*down)(void *arg);     /* the connection is gone */
};

enum { MLINK_SUB_INITIAL, MLINK_SUB, MLINK_UNSUB };

struct mlink {
	enum mlink_state state;
	const struct mqtt_settings *cfg;
	struct loop *loop;
	struct mlink_handlers h;
	void *arg;

	struct mosquitto *mosq;
	int fd;
	bool wanted;              /* keep connecting */
	bool poisoned;            /* a read message can no longer be confirmed: drop, never flush */
	bool disconnect_sent;     /* DRAINING: DISCONNECT is queued behind the PUBACKs */
	int linger_fd;            /* after DISCONNECT: read until the broker closes */
	struct loop_timer linger_timer;
	uint64_t unflushed;       /* messages read since the last flush */
	uint64_t redelivered;     /* messages given back to the broker by dropping the connection */
	uint64_t connects;        /* connections the broker accepted (CONNACK 0) */
	bool had_session;         /* connected before with this client id */
	uint64_t up_since_ms;
	struct backoff backoff;
	struct loop_timer retry_timer;
	struct loop_timer misc_timer;   /* keepalive */
	struct loop_timer connect_timer; /* mqtt.connect_timeout: TCP, TLS and CONNACK */
	/* The filters subscribed to on every connect (owned copies). */
	char **subs;
	size_t n_subs;
	/*
	 * Filters dropped from the configuration while no connection could
	 * unsubscribe them: the persistent session still holds them, so the
	 * next connection unsubscribes them.
	 */
	char **unsubs;
	size_t n_unsubs;
	/* SUBSCRIBE packets awaiting their SUBACK, with the filters they carried. */
	struct mlink_sub_req {
		int mid;
		int kind;             /* MLINK_SUB_INITIAL (ACTIVE follows its SUBACK),
		                         MLINK_SUB or MLINK_UNSUB */
		char **filters;
		size_t n;
	} *reqs;
	size_t n_reqs;
};

int mlink_init(struct mlink *m, const struct mqtt_settings *cfg, const struct bridge_settings *bs,
               struct loop *loop, const struct mlink_handlers *h, void *arg);
void mlink_fini(struct mlink *m);

/* Keep the session connected: connect now, or after the backoff delay. */
void mlink_start(struct mlink *m);

/* Stop reading; flush and DISCONNECT cleanly as soon as the gate opens. */
void mlink_drain(struct mlink *m);

/*
 * Close the connection now without writing anything queued: every message
 * read since the last flush is redelivered by the broker.  Reconnects after
 * a backoff delay unless mlink_drain()/mlink_stop() said otherwise.
 */
void mlink_drop(struct mlink *m, const char *why);

/* Stop for good: no reconnection (call mlink_drain() or mlink_drop() first). */
void mlink_stop(struct mlink *m);

/* Marks the current connection as holding a message that cannot be confirmed. */
void mlink_poison(struct mlink *m);

/*
 * Called before each poll: flushes queued packets when the gate is open,
 * completes a drain, and sets the socket's poll events.
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

/* Whether a connection exists, or a clean close is still completing. */
bool mlink_connected(const struct mlink *m);
const char *mlink_state_name(enum mlink_state s);

#endif
