#include "acons.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "log.h"

static const char *const state_names[] = {
	"closed", "opening", "starting", "consuming", "cancelling", "closing",
};

const char *acons_state_name(enum acons_state s)
{
	return state_names[s];
}

static void acons_set_state(struct acons *c, enum acons_state s)
{
	if (c->state == s)
		return;
	log_debug("amqp: downlink channel %s -> %s", state_names[c->state], state_names[s]);
	c->state = s;
}

void acons_init(struct acons *c, const struct acons_handlers *h, void *arg)
{
	memset(c, 0, sizeof(*c));
	c->h = *h;
	c->arg = arg;
}

static void acons_drop_delivery(struct acons *c)
{
	free(c->body);
	c->body = NULL;
	c->skipping = false;
	c->body_have = 0;
	c->stage = 0;
}

void acons_fini(struct acons *c)
{
	acons_drop_delivery(c);
}

void acons_attach(struct acons *c, struct aframe *out, size_t frame_max)
{
	acons_detach(c);
	c->out = out;
	c->frame_max = frame_max;
}

void acons_detach(struct acons *c)
{
	acons_drop_delivery(c);
	c->out = NULL;
	if (c->state != AC_CLOSED)
		c->gen++;
	acons_set_state(c, AC_CLOSED);
}

bool acons_open_or_opening(const struct acons *c)
{
	return c->state != AC_CLOSED && c->state != AC_CLOSING;
}

static int acons_send(struct acons *c, amqp_method_number_t id, void *m)
{
	return c->out ? aframe_method(c->out, ACONS_CHANNEL, id, m, c->frame_max) : -1;
}

int acons_open(struct acons *c, const struct acons_queue *queues, size_t n)
{
	amqp_channel_open_t open = { .out_of_band = amqp_empty_bytes };

	if (c->state != AC_CLOSED || !c->out || n == 0)
		return -1;
	if (acons_send(c, AMQP_CHANNEL_OPEN_METHOD, &open) != 0)
		return -1;
	c->queues = queues;
	c->n_queues = n;
	c->consume_oks = 0;
	c->gen++;
	acons_set_state(c, AC_OPENING);
	return 0;
}

static void tag_of(size_t i, char *buf, size_t size)
{
	snprintf(buf, size, ACONS_TAG_PREFIX "%zu", i);
}

/* The queue a consumer tag names, or (size_t)-1. */
static size_t queue_of(const struct acons *c, amqp_bytes_t tag)
{
	const size_t plen = sizeof(ACONS_TAG_PREFIX) - 1;
	size_t i = 0;

	if (tag.len <= plen || tag.len > plen + 6 || memcmp(tag.bytes, ACONS_TAG_PREFIX, plen) != 0)
		return (size_t)-1;
	for (size_t k = plen; k < tag.len; k++) {
		char ch = ((const char *)tag.bytes)[k];

		if (ch < '0' || ch > '9')
			return (size_t)-1;
		i = i * 10 + (size_t)(ch - '0');
	}
	return i < c->n_queues ? i : (size_t)-1;
}

/* channel.open-ok: a prefetch and a consumer for every queue, in one go. */
static int acons_start(struct acons *c)
{
	for (size_t i = 0; i < c->n_queues; i++) {
		char tag[64];
		amqp_basic_qos_t qos = { .prefetch_size = 0, .prefetch_count = c->queues[i].prefetch,
		                         .global = 0 };
		amqp_basic_consume_t cons = {
			.ticket = 0, .queue = amqp_cstring_bytes(c->queues[i].name),
			.no_local = 0, .no_ack = 0, .exclusive = 0, .nowait = 0,
			.arguments = amqp_empty_table,
		};

		tag_of(i, tag, sizeof(tag));
		cons.consumer_tag = amqp_cstring_bytes(tag);
		/* Without global, a prefetch applies to each consumer started after it. */
		if (acons_send(c, AMQP_BASIC_QOS_METHOD, &qos) != 0 ||
		    acons_send(c, AMQP_BASIC_CONSUME_METHOD, &cons) != 0)
			return -1;
	}
	acons_set_state(c, AC_STARTING);
	return 0;
}

int acons_cancel(struct acons *c)
{
	/* No consumer yet: closing the channel ends it sooner. */
	if (c->state == AC_OPENING)
		return acons_close(c);
	if (c->state != AC_STARTING && c->state != AC_CONSUMING)
		return 0;
	for (size_t i = 0; i < c->n_queues; i++) {
		char tag[64];
		amqp_basic_cancel_t m = { .nowait = 0 };

		tag_of(i, tag, sizeof(tag));
		m.consumer_tag = amqp_cstring_bytes(tag);
		if (acons_send(c, AMQP_BASIC_CANCEL_METHOD, &m) != 0)
			return -1;
	}
	acons_set_state(c, AC_CANCELLING);
	return 0;
}

int acons_close(struct acons *c)
{
	amqp_channel_close_t m = { .reply_code = AMQP_REPLY_SUCCESS, .class_id = 0, .method_id = 0 };

	if (!acons_open_or_opening(c))
		return 0;
	m.reply_text = amqp_cstring_bytes("downlink stopped");
	if (acons_send(c, AMQP_CHANNEL_CLOSE_METHOD, &m) != 0)
		return -1;
	acons_drop_delivery(c);
	c->close_why[0] = '\0';
	acons_set_state(c, AC_CLOSING);
	return 0;
}

int acons_settle(struct acons *c, uint64_t gen, uint64_t tag, enum acons_settle how)
{
	if (gen != c->gen || !acons_open_or_opening(c) || c->state == AC_OPENING)
		return 1;
	if (how == ACONS_ACK) {
		amqp_basic_ack_t m = { .delivery_tag = tag, .multiple = 0 };

		return acons_send(c, AMQP_BASIC_ACK_METHOD, &m) == 0 ? 0 : -1;
	} else {
		amqp_basic_reject_t m = { .delivery_tag = tag, .requeue = how == ACONS_REQUEUE };

		return acons_send(c, AMQP_BASIC_REJECT_METHOD, &m) == 0 ? 0 : -1;
	}
}

/*
 * The channel is CLOSED, deliveries requeued: the broker ended it (or a
 * consumer; `why` says how, `queue_gone` whether for a missing queue), or
 * the bridge did (`why` NULL).
 */
static void acons_lost(struct acons *c, const char *why, bool queue_gone)
{
	char text[sizeof(c->close_why)];

	snprintf(text, sizeof(text), "%s", why ? why : "");
	c->close_why[0] = '\0';
	acons_drop_delivery(c);
	c->gen++;
	acons_set_state(c, AC_CLOSED);
	if (c->h.closed)
		c->h.closed(c->arg, why ? text : NULL, queue_gone);
}

static void acons_complete(struct acons *c)
{
	c->cur.body = c->body;
	c->cur.body_len = c->body_have;
	/* Deliveries that arrive after the close was sent are requeued by it. */
	if (c->state != AC_CLOSING && c->h.deliver)
		c->h.deliver(c->arg, &c->cur);
	acons_drop_delivery(c);
}

static int acons_method(struct acons *c, const amqp_method_t *m, char *why, size_t why_size)
{
	switch (m->id) {
	case AMQP_CHANNEL_OPEN_OK_METHOD:
		if (c->state == AC_OPENING && acons_start(c) != 0) {
			snprintf(why, why_size, "cannot encode the downlink's basic.consume");
			return -1;
		}
		return 0;
	case AMQP_BASIC_QOS_OK_METHOD:
		return 0;
	case AMQP_BASIC_CONSUME_OK_METHOD:
		if (c->state == AC_STARTING && ++c->consume_oks == c->n_queues) {
			acons_set_state(c, AC_CONSUMING);
			if (c->h.consuming)
				c->h.consuming(c->arg);
		}
		return 0;
	case AMQP_BASIC_CANCEL_OK_METHOD:
		return 0;
	case AMQP_BASIC_DELIVER_METHOD: {
		const amqp_basic_deliver_t *d = m->decoded;
		size_t q = queue_of(c, d->consumer_tag);

		if (q == (size_t)-1) {
			snprintf(why, why_size, "protocol error: a delivery for unknown consumer '%.*s'",
			         (int)d->consumer_tag.len, (const char *)d->consumer_tag.bytes);
			return -1;
		}
		c->cur = (struct acons_delivery){
			.queue = q, .gen = c->gen, .tag = d->delivery_tag,
			.redelivered = d->redelivered, .exchange = d->exchange,
			.routing_key = d->routing_key,
		};
		c->stage = 1;
		return 0;
	}
	case AMQP_BASIC_CANCEL_METHOD: {
		/* RabbitMQ cancels a consumer whose queue was deleted (consumer_cancel_notify). */
		const amqp_basic_cancel_t *k = m->decoded;
		char text[384];
		size_t q = queue_of(c, k->consumer_tag);
		/* Closing or cancelling already: the bridge is stopping the channel anyway. */
		bool stopping = c->state == AC_CLOSING || c->state == AC_CANCELLING;

		snprintf(text, sizeof(text), "RabbitMQ cancelled the consumer of queue '%s' (was it "
		         "deleted?)", q != (size_t)-1 ? c->queues[q].name : "?");
		/* The other queues' consumers go too: the channel starts again whole. */
		if (acons_close(c) != 0) {
			snprintf(why, why_size, "cannot encode channel.close");
			return -1;
		}
		if (!stopping)
			snprintf(c->close_why, sizeof(c->close_why), "%s", text);
		return 0;
	}
	case AMQP_CHANNEL_CLOSE_METHOD: {
		const amqp_channel_close_t *k = m->decoded;
		amqp_channel_close_ok_t ok = { 0 };
		char text[512];

		snprintf(text, sizeof(text), "%u %.*s", k->reply_code, (int)k->reply_text.len,
		         (const char *)k->reply_text.bytes);
		if (acons_send(c, AMQP_CHANNEL_CLOSE_OK_METHOD, &ok) != 0) {
			snprintf(why, why_size, "cannot encode channel.close-ok");
			return -1;
		}
		acons_lost(c, text, k->reply_code == AMQP_NOT_FOUND);
		return 0;
	}
	case AMQP_CHANNEL_CLOSE_OK_METHOD:
		/* Only a cancelled consumer leaves a reason for the close the bridge sent. */
		if (c->state == AC_CLOSING)
			acons_lost(c, c->close_why[0] ? c->close_why : NULL, c->close_why[0] != '\0');
		return 0;
	default:
		log_debug("amqp: ignoring method 0x%08x on the downlink channel", m->id);
		return 0;
	}
}

int acons_frame(struct acons *c, const amqp_frame_t *f, char *why, size_t why_size)
{
	if (c->stage == 1) {
		const amqp_basic_properties_t *p = f->payload.properties.decoded;
		uint64_t size = f->payload.properties.body_size;

		if (f->frame_type != AMQP_FRAME_HEADER) {
			snprintf(why, why_size, "protocol error: basic.deliver without a content header");
			return -1;
		}
		if (size > SIZE_MAX - 1) {
			snprintf(why, why_size, "a delivery of %llu bytes", (unsigned long long)size);
			return -1;
		}
		/* Too large to publish: its frames are read past, never held. */
		c->skipping = c->max_body > 0 && size > c->max_body;
		if (!c->skipping && !(c->body = malloc(size ? (size_t)size : 1))) {
			snprintf(why, why_size, "out of memory for a delivery of %llu bytes",
			         (unsigned long long)size);
			return -1;
		}
		c->cur.props = p;
		c->cur.body_len = (size_t)size;
		c->body_have = 0;
		if (size == 0)
			acons_complete(c);
		else
			c->stage = 2;
		return 0;
	}
	if (c->stage == 2) {
		amqp_bytes_t frag = f->payload.body_fragment;

		if (f->frame_type != AMQP_FRAME_BODY || frag.len > c->cur.body_len - c->body_have) {
			snprintf(why, why_size, "protocol error: malformed content of a delivery");
			return -1;
		}
		if (!c->skipping)
			memcpy(c->body + c->body_have, frag.bytes, frag.len);
		c->body_have += frag.len;
		if (c->body_have == c->cur.body_len)
			acons_complete(c);
		return 0;
	}
	if (f->frame_type == AMQP_FRAME_METHOD)
		return acons_method(c, &f->payload.method, why, why_size);
	log_debug("amqp: ignoring frame of type %u on the downlink channel", f->frame_type);
	return 0;
}
