/*
 * acons: the downlink's consumer channel.  A second channel on the AMQP
 * connection (the first one publishes in confirm mode) that consumes the
 * downlink's queues, each with a prefetch of its own, and acknowledges or
 * rejects each delivery when told.  No I/O: frames it sends are queued on
 * the connection's output (aframe.h), and alink hands it every frame that
 * arrives on its channel.
 *
 * States:
 *   CLOSED -> OPENING (channel.open sent) -> STARTING (basic.qos and
 *   basic.consume sent for every queue) -> CONSUMING (every consume-ok)
 *   CONSUMING/STARTING -> CANCELLING (basic.cancel sent: no new deliveries
 *     once the broker answered; acks and rejects still go)
 *   any open -> CLOSING (channel.close sent: RabbitMQ requeues every
 *     delivery not acknowledged) -> CLOSED on close-ok
 *   any -> CLOSED when the broker closes the channel (a missing queue, an
 *     unknown delivery tag), cancels a consumer (its queue was deleted) or
 *     the connection goes
 *
 * Each opening of the channel starts a generation: delivery tags are the
 * channel's, so an acknowledgement for a delivery of an earlier generation
 * is never sent (RabbitMQ already requeued it when that channel closed).
 */
#ifndef BRIDGE_ACONS_H
#define BRIDGE_ACONS_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include <amqp.h>

#include "aframe.h"

#define ACONS_CHANNEL 2
/* Consumer tags are this prefix and the queue's index in the list. */
#define ACONS_TAG_PREFIX "mqtt-amqp-bridge.downlink."

enum acons_state {
	AC_CLOSED = 0,
	AC_OPENING,
	AC_STARTING,
	AC_CONSUMING,
	AC_CANCELLING,
	AC_CLOSING,
};

struct acons_queue {
	const char *name;
	uint16_t prefetch;
};

/* A delivery, valid only during the callback. */
struct acons_delivery {
	size_t queue;               /* its index in the list given to acons_open() */
	uint64_t gen;               /* the channel's generation */
	uint64_t tag;               /* the delivery tag */
	bool redelivered;
	amqp_bytes_t exchange;
	amqp_bytes_t routing_key;
	const amqp_basic_properties_t *props;
	const void *body;           /* NULL when over acons.max_body (body_len still says how long) */
	size_t body_len;
};

struct acons_handlers {
	void (*deliver)(void *arg, const struct acons_delivery *d);
	/* Every queue has its consumer: deliveries may come. */
	void (*consuming)(void *arg);
	/*
	 * The channel is closed and every delivery not acknowledged is back
	 * in its queue: on the bridge's request (`why` NULL), or by the
	 * broker (`why` says what it said; `queue_gone`: because a queue
	 * does not exist, 404 NOT_FOUND, or was deleted under its consumer).
	 */
	void (*closed)(void *arg, const char *why, bool queue_gone);
};

enum acons_settle { ACONS_ACK, ACONS_REJECT, ACONS_REQUEUE };

struct acons {
	enum acons_state state;
	struct acons_handlers h;
	void *arg;
	struct aframe *out;         /* the connection's output; NULL without one */
	size_t frame_max;
	const struct acons_queue *queues;
	size_t n_queues;
	size_t consume_oks;
	uint64_t gen;
	/* A delivery being assembled from its method, header and body frames. */
	int stage;                  /* 0 none, 1 awaiting the header, 2 the body */
	struct acons_delivery cur;
	char *body;                 /* NULL while skipping */
	size_t body_have;
	bool skipping;              /* over max_body: counted, not kept */
	/*
	 * The largest body worth keeping (0: any): a larger one is handed over
	 * with `body` NULL and its length, for the caller to reject unread.
	 */
	size_t max_body;
	char close_why[384];        /* CLOSING after the broker cancelled a consumer: why */
};

void acons_init(struct acons *c, const struct acons_handlers *h, void *arg);
void acons_fini(struct acons *c);

/* A connection is up: frames go to `out`. */
void acons_attach(struct acons *c, struct aframe *out, size_t frame_max);

/* The connection is gone, and the channel with it (no handler runs). */
void acons_detach(struct acons *c);

/*
 * Opens the channel and consumes `queues` (which must stay valid until the
 * channel is closed).  Returns 0, or -1 when it is not CLOSED, there is no
 * connection or a frame could not be encoded.
 */
int acons_open(struct acons *c, const struct acons_queue *queues, size_t n);

/*
 * Stops new deliveries (basic.cancel; channel.close while the channel is
 * still opening); acknowledgements go on.  Returns 0, or -1 when a frame
 * could not be encoded.
 */
int acons_cancel(struct acons *c);

/*
 * Closes the channel: every delivery not yet acknowledged is requeued.
 * Returns 0 (also when it is closed or closing already), or -1 when the
 * frame could not be encoded.
 */
int acons_close(struct acons *c);

/*
 * Acknowledges (basic.ack), rejects to the dead-letter exchange
 * (basic.reject, requeue false) or gives back (basic.reject, requeue true)
 * delivery `tag` of generation `gen`.  Returns 0 when sent, 1 when the
 * delivery belongs to a channel that is gone (nothing sent), -1 when the
 * frame could not be encoded.
 */
int acons_settle(struct acons *c, uint64_t gen, uint64_t tag, enum acons_settle how);

/*
 * Takes a frame that arrived on ACONS_CHANNEL.  Returns 0, or -1 with a
 * reason in `why` when it breaks the protocol or memory ran out (the
 * connection must go).
 */
int acons_frame(struct acons *c, const amqp_frame_t *f, char *why, size_t why_size);

/* Whether a delivery is half assembled (its frames' memory must stay). */
static inline bool acons_assembling(const struct acons *c)
{
	return c->stage != 0;
}

/* Whether the channel is open or opening (not CLOSED, not CLOSING). */
bool acons_open_or_opening(const struct acons *c);

const char *acons_state_name(enum acons_state s);

#endif
