/*
 * alink: the AMQP 0-9-1 side.  One connection, one channel in confirm mode,
 * driven through its socket by the loop.
 *
 * States:  DOWN -> (backoff timer) -> CONNECTING -> READY <-> BLOCKED
 *          READY/BLOCKED -> CLOSING -> DOWN on a graceful stop or restart
 *          any -> DOWN on a socket error, a missed heartbeat, a channel or
 *          connection close from the broker, or a protocol violation.
 *
 * The broker is one address of amqp.hosts at a time (failover.h): a failed
 * set-up or a lost connection moves to the next one.  On a standby address
 * in "primary" order, the link checks every amqp.primary_retry seconds
 * whether the first address accepts connections again (homing.h) and tells
 * the bridge (the primary_back handler), which drains and restarts it.
 *
 * CONNECTING is asetup's state machine (name lookup, TCP, TLS, handshake,
 * login, channel.open, confirm.select, declarations), advanced by the loop
 * under one deadline, amqp.connect_timeout; the MQTT side is not connected
 * meanwhile.  Once READY, nothing blocks: frames are read only when the
 * socket is readable or rabbitmq-c holds buffered data, and publishes
 * never wait for confirms.  CLOSING awaits connection.close-ok in the loop,
 * for ALINK_CLOSE_MS at most.
 *
 * A second channel, opened on request once READY, consumes the downlink's
 * queues (acons.h); it goes with the connection.
 */
#ifndef BRIDGE_ALINK_H
#define BRIDGE_ALINK_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include <amqp.h>

#include "acons.h"
#include "asetup.h"
#include "backoff.h"
#include "failover.h"
#include "settings.h"
#include "homing.h"
#include "loop.h"

enum alink_state {
	AL_DOWN = 0,
	AL_CONNECTING,
	AL_READY,
	AL_BLOCKED,
	AL_CLOSING,
};

/* A basic.return with its content, valid only during the callback. */
struct alink_return {
	int reply_code;
	const char *reply_text;
	const char *exchange;
	size_t exchange_len;
	const char *routing_key;
	size_t routing_key_len;
	uint8_t delivery_mode;
	const void *body;
	size_t body_len;
};

/* Why the link last went down, for the down handler to judge. */
enum alink_cause {
	AL_CAUSE_LINK = 0,          /* socket, heartbeat, TLS or a local error */
	AL_CAUSE_CHANNEL_CLOSED,    /* RabbitMQ closed the channel (channel.close) */
	AL_CAUSE_CONNECTION_CLOSED, /* RabbitMQ closed the connection (connection.close) */
	AL_CAUSE_PUBLISH,           /* rabbitmq-c could not encode a publish */
	AL_CAUSE_REFUSED,           /* RabbitMQ refused a message (basic.nack): a new channel */
};

/* How failures are counted (connection_failures_total{side="amqp",reason}). */
enum alink_fail {
	AL_FAIL_CONNECT = 0,        /* no connection: socket, TLS, time-out */
	AL_FAIL_REFUSED,            /* RabbitMQ closed it while setting up: login, vhost, topology */
	AL_FAIL_LOST,               /* an established connection failed: socket, heartbeat, TLS */
	AL_FAIL_CLOSED,             /* RabbitMQ closed an established connection */
	AL_FAIL_CHANNEL,            /* RabbitMQ closed the channel over a message */
	AL_FAIL_NACK,               /* a basic.nack: a new channel */
	AL_FAIL_ERROR,              /* a publish rabbitmq-c could not encode */
	AL_FAIL_N,
};

const char *alink_fail_name(enum alink_fail f);

struct alink_failure {
	enum alink_cause cause;
	int code;                   /* the reply code of a close, or rabbitmq-c's status */
	char text[512];             /* the reason as logged */
};

struct alink_handlers {
	void (*up)(void *arg);                   /* READY: publishing may start */
	void (*down)(void *arg);                 /* every unconfirmed publish is in doubt */
	void (*blocked)(void *arg, bool blocked);
	void (*ack)(void *arg, uint64_t tag, bool multiple);
	void (*nack)(void *arg, uint64_t tag, bool multiple);
	void (*returned)(void *arg, const struct alink_return *r);
	/* On a standby address, the first one accepts connections again. */
	void (*primary_back)(void *arg);
	/* The downlink's consumer channel (acons.h). */
	struct acons_handlers consumer;
};

struct asock;

struct alink {
	enum alink_state state;
	const struct amqp_settings *cfg;
	struct loop *loop;
	struct alink_handlers h;
	void *arg;
	/* What alink_set_topology() set: declared on every connect. */
	const struct topology *topo;
	char *const *check;
	size_t n_check;

	struct asetup setup;         /* CONNECTING */
	struct acons cons;           /* the downlink's consumer channel */
	amqp_connection_state_t conn;
	int fd;
	struct asock *sock;          /* conn's socket: every write is queued there (asock.h) */
	bool write_full;             /* the socket took only part: the rest waits for POLLOUT */
	struct loop_timer close_timer;
	bool reconnect_after_close;  /* alink_restart() waits for the close */
	uint64_t next_tag;           /* delivery tag of the next publish */
	struct alink_failure failure; /* why it last went down (valid in the down handler) */
	uint64_t up_since_ms;
	bool wanted;                 /* reconnect after a failure */
	uint64_t fails[AL_FAIL_N];   /* failures by kind, since the start */
	struct backoff backoff;
	struct failover fo;          /* which of cfg->hosts is in use or tried next */
	struct homing homing;        /* on a standby: is the first address back? */
	struct loop_timer retry_timer;
	struct loop_timer tick_timer;   /* heartbeats and heartbeat timeouts */

	/* A basic.return being assembled from its method, header and body frames. */
	int ret_stage;               /* 0 none, 1 awaiting header, 2 awaiting body */
	struct alink_return ret;
	char *ret_buf;               /* owns the strings and body of `ret` */
	size_t ret_body_len;
	size_t ret_body_have;
	char *ret_body;
};

int alink_init(struct alink *a, const struct amqp_settings *cfg, const struct bridge_settings *bs,
               struct loop *loop, const struct alink_handlers *h, void *arg);
void alink_fini(struct alink *a);

/* Connects now (and keeps reconnecting with backoff until alink_stop). */
void alink_start(struct alink *a);

/*
 * Stays down from now on.  With `graceful`, starts the close handshake
 * (connection.close, which closes the channel too): the link is CLOSING
 * until connection.close-ok arrives or ALINK_CLOSE_MS pass, which needs the
 * loop to keep turning (see alink_closing()); alink_fini() cuts it short.
 * Otherwise (a broker that stopped answering) just closes the socket.  A
 * set-up in progress is abandoned either way.
 */
void alink_stop(struct alink *a, bool graceful);

/* Whether a graceful close still awaits the broker (the loop must turn). */
bool alink_closing(const struct alink *a);

/* Drops the connection as failed and reconnects after a backoff delay. */
void alink_fail(struct alink *a, const char *why);

/*
 * RabbitMQ refused a message (basic.nack): the connection is dropped and
 * made again to the same address after the backoff delay, so that the
 * next publishes go through a new channel.  A channel can keep refusing
 * everything: RabbitMQ 3.10's quorum-queue client asks the leader it
 * first knew for each publish and nacks every one, for the channel's
 * life, once that leader's node is gone.  No message is blamed for it.
 */
void alink_reopen(struct alink *a, const char *why);

/*
 * The frame size negotiated with RabbitMQ (PROPS_FRAME_MAX while down): a
 * message's content header must fit in it (see props_encoded_size()).
 */
size_t alink_frame_max(const struct alink *a);

/* Whether rabbitmq-c holds received bytes that poll() cannot see. */
bool alink_pending(const struct alink *a);

/*
 * Whether a batch's worth (ALINK_WRITE_BATCH) or more waits because the
 * socket would not take it: RabbitMQ stopped reading.  Publishing more
 * only grows the queue then.
 */
bool alink_backlogged(const struct alink *a);

/*
 * Writes the publishes queued since the last write, and whatever
 * rabbitmq-c queued (heartbeats), in as few writes as the socket allows:
 * at the end of each pass of the loop, or with `batch_only` only once a
 * batch's worth is queued (see ALINK_WRITE_BATCH).  Nothing is written
 * while the socket is full: POLLOUT resumes it.  The link may fail here.
 */
void alink_write(struct alink *a, bool batch_only);

/* Processes every complete frame already received; never waits. */
void alink_read(struct alink *a);

/*
 * basic.publish with mandatory set.  `props` carries every property,
 * delivery mode and headers included (see props.h).  The frames are
 * queued, not written (alink_write()).  On success returns 0 and the
 * delivery tag the confirm will carry in *tag.  Returns -1 when the link
 * is not READY or the frames could not be encoded (the link is then DOWN
 * and the down handler has run).
 */
int alink_publish(struct alink *a, const char *exchange, size_t exlen, const char *key,
                  size_t keylen, const amqp_basic_properties_t *props, const void *body,
                  size_t len, uint64_t *tag);

/*
 * What to declare on every connect, after the main and dead-letter
 * exchanges: the topology's exchanges, then its queues, then its bindings,
 * then a passive check of each of `check` (exchanges the rules publish to).
 * A failure fails the connection attempt with an error that names the
 * declaration and its line ("topology exchange 'x' (line 12): ...", "exchange
 * 'x', used by a rule, does not exist"); the link retries with backoff.
 * Takes effect at the next connect (a set-up in progress starts again);
 * the pointers must stay valid until replaced.  NULL / 0 declare nothing
 * more.
 */
void alink_set_topology(struct alink *a, const struct topology *t, char *const *check,
                        size_t n_check);

/*
 * Replaces the settings (same lifetime rule); takes effect at the next
 * connect, or at once for a set-up in progress, which starts again (it
 * must not keep the old settings, which the caller may free).  The
 * address in use stays the same when the broker list did.
 */
void alink_set_config(struct alink *a, const struct amqp_settings *cfg);

/* The address in use, or tried next. */
const struct endpoint *alink_node(const struct alink *a);

/* The next connection takes the first address (before alink_restart()). */
void alink_to_primary(struct alink *a);

/*
 * Closes the connection gracefully (as alink_stop(a, true)) and, once it
 * is closed, connects again with the settings and topology now set.  The down handler
 * runs when the old connection goes, the up handler when the new one is
 * READY.  Call it only with nothing unconfirmed.
 */
void alink_restart(struct alink *a);

/*
 * The downlink's consumer channel: opens it and consumes `queues` (valid
 * until it is closed), stops new deliveries, closes it (every delivery not
 * acknowledged goes back to its queue), and acknowledges or rejects a
 * delivery (acons.h).  The frames are queued, not written.  A frame that
 * cannot be encoded fails the link.  Return 0, or -1 when the link or the
 * channel is not in a state to do it.
 */
int alink_consume(struct alink *a, const struct acons_queue *queues, size_t n);
int alink_consume_cancel(struct alink *a);
int alink_consume_close(struct alink *a);
/* As acons_settle(): 1 when the delivery's channel is gone. */
int alink_settle(struct alink *a, uint64_t gen, uint64_t tag, enum acons_settle how);

const char *alink_state_name(enum alink_state s);

#endif
