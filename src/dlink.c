#include "dlink.h"

#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <mqtt_protocol.h>

#include "log.h"

/* The rejection log: this many lines per window, then one line for the rest. */
#define DLINK_LOG_BURST 10
#define DLINK_LOG_WINDOW_MS 10000
/* After RabbitMQ closed the consumer channel (a missing queue): the first retry. */
#define DLINK_RETRY_MIN_MS 1000
#define DLINK_RETRY_MAX_MS 30000

const char *dlink_reject_name(enum dlink_reject r)
{
	static const char *const names[DL_REJ_N] = { "topic", "field", "too_large", "mqtt_refused" };

	return names[r];
}

static enum dlink_reject reject_of(enum dlmap_result r)
{
	switch (r) {
	case DLMAP_ERR_NO_WORD:
	case DLMAP_ERR_NO_HEADER:
	case DLMAP_ERR_HEADER_TYPE:
	case DLMAP_ERR_LEVELS:
		return DL_REJ_FIELD;
	case DLMAP_ERR_TOO_LARGE:
		return DL_REJ_TOO_LARGE;
	default:
		return DL_REJ_TOPIC;
	}
}

/* ------------------------------------------------------------------------ */
/* Messages in flight, by packet identifier */

static size_t slot_of(const struct dlink *d, int mid)
{
	return ((size_t)mid * 2654435761u) & (d->cap - 1);
}

/* Empties the table: at once when nothing is in flight, as each pass asks while MQTT is down. */
static void flights_clear(struct dlink *d)
{
	if (d->in_flight == 0)
		return;
	for (size_t i = 0; i < d->cap; i++)
		d->table[i].mid = -1;
	d->in_flight = 0;
}

/*
 * Packet identifiers are unique among the messages in flight: the
 * configuration keeps the prefetches' sum below the 65,535 identifiers.
 * Returns false, changing nothing, when `mid` is taken all the same: its
 * PUBACK could not be told from the other's.
 */
static bool flight_put(struct dlink *d, int mid, uint64_t gen, uint64_t tag, size_t queue)
{
	size_t i = slot_of(d, mid);

	while (d->table[i].mid != -1 && d->table[i].mid != mid)
		i = (i + 1) & (d->cap - 1);
	if (d->table[i].mid == mid)
		return false;
	d->in_flight++;
	d->table[i] = (struct dlink_flight){ gen, tag, (uint32_t)queue, mid };
	return true;
}

/* Takes the flight of `mid` out of the table; false when there is none. */
static bool flight_take(struct dlink *d, int mid, struct dlink_flight *out)
{
	size_t i = slot_of(d, mid);

	while (d->table[i].mid != mid) {
		if (d->table[i].mid == -1)
			return false;
		i = (i + 1) & (d->cap - 1);
	}
	*out = d->table[i];
	d->table[i].mid = -1;
	d->in_flight--;
	/*
	 * Linear probing: re-seat the rest of the run, so that no lookup stops
	 * short at the hole.  Each lands at or before its old slot.
	 */
	for (size_t j = (i + 1) & (d->cap - 1); d->table[j].mid != -1; ) {
		struct dlink_flight f = d->table[j];

		d->table[j].mid = -1;
		d->in_flight--;
		(void)flight_put(d, f.mid, f.gen, f.tag, f.queue);
		j = (j + 1) & (d->cap - 1);
	}
	return true;
}

/* ------------------------------------------------------------------------ */

static bool dlink_declares_a_queue(const struct dlink *d);

static void dlink_on_retry(void *arg)
{
	struct dlink *d = arg;

	d->failed = false;
	/* A queue the topology declares is gone: declaring it again takes a new AMQP connection. */
	if (d->queue_gone && dlink_declares_a_queue(d))
		d->redeclare = true;
	d->queue_gone = false;
}

/* Whether the topology declares one of the downlink's queues. */
static bool dlink_declares_a_queue(const struct dlink *d)
{
	for (size_t i = 0; i < d->n; i++)
		for (size_t k = 0; k < d->cfg->topology.n_queues; k++)
			if (strcmp(d->cfg->topology.queues[k].name, d->queues[i].name) == 0)
				return true;
	return false;
}

bool dlink_take_redeclare(struct dlink *d)
{
	bool r = d->redeclare;

	d->redeclare = false;
	return r;
}

static void dlink_free_queues(struct dlink *d)
{
	for (size_t i = 0; i < d->n; i++)
		free((char *)d->queues[i].name);
	free(d->queues);
	free(d->counts);
	free(d->table);
	d->queues = NULL;
	d->counts = NULL;
	d->table = NULL;
	d->n = d->cap = d->in_flight = 0;
}

int dlink_configure(struct dlink *d, const struct bridge_config *cfg)
{
	size_t n = cfg->n_downlink, cap = 16, total = 0;
	struct acons_queue *queues;
	struct dlink_counts *counts;
	struct dlink_flight *table;

	if (d->queues != NULL && n == d->n) {
		bool same = true;

		for (size_t i = 0; i < n && same; i++)
			same = strcmp(d->queues[i].name, cfg->downlink[i].queue) == 0
			       && d->queues[i].prefetch == (uint16_t)cfg->downlink[i].prefetch;
		if (same) {
			d->cfg = cfg;
			return 0;
		}
	}
	for (size_t i = 0; i < n; i++)
		total += (size_t)cfg->downlink[i].prefetch;
	while (cap < 2 * total)
		cap *= 2;
	queues = calloc(n ? n : 1, sizeof(*queues));
	counts = calloc(n ? n : 1, sizeof(*counts));
	table = calloc(cap, sizeof(*table));
	if (!queues || !counts || !table) {
		free(queues);
		free(counts);
		free(table);
		return -1;
	}
	for (size_t i = 0; i < n; i++) {
		queues[i].name = strdup(cfg->downlink[i].queue);
		queues[i].prefetch = (uint16_t)cfg->downlink[i].prefetch;
		if (!queues[i].name) {
			for (size_t j = 0; j < i; j++)
				free((char *)queues[j].name);
			free(queues);
			free(counts);
			free(table);
			return -1;
		}
		/* A queue consumed before keeps its counts. */
		for (size_t j = 0; j < d->n; j++)
			if (strcmp(d->queues[j].name, queues[i].name) == 0)
				counts[i] = d->counts[j];
	}
	for (size_t i = 0; i < cap; i++)
		table[i].mid = -1;
	dlink_free_queues(d);
	d->queues = queues;
	d->counts = counts;
	d->table = table;
	d->cap = cap;
	d->n = n;
	d->in_flight = 0;
	d->cfg = cfg;
	return 0;
}

int dlink_init(struct dlink *d, const struct bridge_config *cfg, struct alink *amqp,
               struct mlink *mqtt, struct loop *loop)
{
	memset(d, 0, sizeof(*d));
	d->amqp = amqp;
	d->mqtt = mqtt;
	d->loop = loop;
	d->retry_ms = DLINK_RETRY_MIN_MS;
	loop_timer_init(&d->retry_timer, dlink_on_retry, d);
	d->topic = malloc(DLMAP_TOPIC_MAX + 1);
	if (!d->topic || dlink_configure(d, cfg) != 0) {
		free(d->topic);
		d->topic = NULL;
		return -1;
	}
	return 0;
}

void dlink_fini(struct dlink *d)
{
	loop_timer_disarm(d->loop, &d->retry_timer);
	dlink_free_queues(d);
	free(d->topic);
	d->topic = NULL;
}

static bool amqp_up(const struct dlink *d)
{
	return d->amqp->state == AL_READY || d->amqp->state == AL_BLOCKED;
}

/* Every message in flight goes back to RabbitMQ with the channel: nothing to wait for. */
static void dlink_give_back(struct dlink *d, const char *why)
{
	if (d->in_flight > 0)
		log_info("downlink: %zu message(s) published to MQTT without a PUBACK yet go back to "
		         "RabbitMQ (%s), which delivers them again", d->in_flight, why);
	flights_clear(d);
}

void dlink_update(struct dlink *d, bool run, int drain_s)
{
	enum acons_state cs = d->amqp->cons.state;

	if (d->n == 0)
		return;
	/* What the MQTT broker cannot take is not worth holding in memory. */
	d->amqp->cons.max_body = d->mqtt->max_packet ? d->mqtt->max_packet : DLMAP_PACKET_MAX;
	if (!amqp_up(d)) {
		/* The channel went with the connection. */
		if (d->in_flight > 0)
			dlink_give_back(d, "the AMQP connection is gone");
		d->accepting = false;
		d->stopping = !run;
		return;
	}
	if (d->mqtt->state != ML_ACTIVE) {
		/* While MQTT is down nothing is consumed, and nothing stays unacknowledged. */
		if (cs != AC_CLOSED && cs != AC_CLOSING) {
			dlink_give_back(d, "the MQTT connection is gone");
			alink_consume_close(d->amqp);
		}
		flights_clear(d);
		d->accepting = false;
		return;
	}
	if (run) {
		d->stopping = false;
		d->accepting = true;
		if (cs == AC_CLOSED && !d->failed)
			alink_consume(d->amqp, d->queues, d->n);
		return;
	}
	/* Stopping: no new deliveries; the PUBACKs of those published are awaited. */
	d->accepting = false;
	if (!d->stopping) {
		d->stopping = true;
		d->stop_deadline_ms = loop_now_ms() + (uint64_t)drain_s * 1000u;
		if (cs != AC_CLOSED && cs != AC_CLOSING && d->in_flight > 0)
			log_info("downlink: stopping: no new deliveries; waiting up to %d s for the "
			         "PUBACKs of %zu message(s)", drain_s, d->in_flight);
	}
	if (cs == AC_STARTING || cs == AC_CONSUMING || cs == AC_OPENING)
		alink_consume_cancel(d->amqp);
	cs = d->amqp->cons.state;
	if (cs == AC_CLOSED || cs == AC_CLOSING)
		return;
	if (d->in_flight == 0) {
		alink_consume_close(d->amqp);
	} else if (loop_now_ms() >= d->stop_deadline_ms) {
		log_warn("downlink: no PUBACK for %zu message(s) within %d s (bridge.drain_timeout)",
		         d->in_flight, drain_s);
		dlink_give_back(d, "stopping");
		alink_consume_close(d->amqp);
	}
}

bool dlink_busy(const struct dlink *d)
{
	return d->in_flight > 0 && amqp_up(d) && d->mqtt->state == ML_ACTIVE;
}

static bool dlink_log_allowed(struct dlink *d)
{
	uint64_t now = loop_now_ms();

	if (now - d->log_window_ms >= DLINK_LOG_WINDOW_MS) {
		if (d->log_suppressed > 0)
			log_warn("downlink: %" PRIu64 " more message(s) rejected in the last %d s without "
			         "a line each (see the metrics)", d->log_suppressed,
			         DLINK_LOG_WINDOW_MS / 1000);
		d->log_window_ms = now;
		d->log_lines = 0;
		d->log_suppressed = 0;
	}
	if (d->log_lines < DLINK_LOG_BURST) {
		d->log_lines++;
		return true;
	}
	d->log_suppressed++;
	return false;
}

/* Returns 0 when sent, else nothing went (the delivery's channel is gone). */
static int dlink_settle(struct dlink *d, uint64_t gen, uint64_t tag, enum acons_settle how)
{
	return alink_settle(d->amqp, gen, tag, how);
}

/* Starts the retry timer after a failure, with a growing delay. */
static void dlink_backoff(struct dlink *d)
{
	d->failed = true;
	loop_timer_arm(d->loop, &d->retry_timer, d->retry_ms);
	d->retry_ms = d->retry_ms * 2 > DLINK_RETRY_MAX_MS ? DLINK_RETRY_MAX_MS : d->retry_ms * 2;
}

/*
 * Something no message can help (the MQTT broker's limits, its refusal
 * of the moment): the delivery goes back to its queue, and consuming stops
 * until the retry timer, rather than refuse every message one by one.
 */
static void dlink_pause(struct dlink *d, size_t q, uint64_t gen, uint64_t tag, const char *why)
{
	d->counts[q].requeued++;
	dlink_settle(d, gen, tag, ACONS_REQUEUE);
	if (d->failed)
		return;
	log_error("downlink: %s; consuming again in %u ms", why, d->retry_ms);
	dlink_give_back(d, "the downlink pauses");
	alink_consume_close(d->amqp);
	dlink_backoff(d);
}

/*
 * A routing key for a log line: printable ASCII as it is, every other byte
 * (a key is any bytes) as \xNN, cut at 255 bytes.
 */
static void show_key(amqp_bytes_t key, char *out, size_t size)
{
	const unsigned char *p = key.bytes;
	size_t n = key.len > 255 ? 255 : key.len, len = 0;

	for (size_t i = 0; i < n && len + 5 < size; i++) {
		if (p[i] >= 0x20 && p[i] < 0x7f && p[i] != '\\')
			out[len++] = (char)p[i];
		else
			len += (size_t)snprintf(out + len, size - len, "\\x%02x", p[i]);
	}
	out[len] = '\0';
}

/*
 * A delivery that can never be an MQTT message: to the queue's dead-letter
 * exchange.  `key` is NULL when the delivery is no longer at hand (a
 * refusing PUBACK).
 */
static void dlink_reject(struct dlink *d, size_t q, uint64_t gen, uint64_t tag,
                         const amqp_bytes_t *key, enum dlink_reject why, const char *detail)
{
	char shown[255 * 4 + 1] = "";

	if (dlink_settle(d, gen, tag, ACONS_REJECT) != 0)
		return;
	d->counts[q].rejected[why]++;
	if (dlink_log_allowed(d)) {
		const struct log_field f[] = {
			LOG_STR("event", "downlink_rejected"),
			LOG_STR("queue", d->queues[q].name),
			LOG_STR("reason", dlink_reject_name(why)),
		};

		if (key != NULL)
			show_key(*key, shown, sizeof(shown));
		log_kv(LOG_LVL_WARNING, f, LOG_NFIELDS(f), "downlink: queue '%s': rejected a message%s%s%s "
		       "to the queue's dead-letter exchange: %s", d->queues[q].name,
		       key ? " with routing key '" : "", shown, key ? "'" : "", detail);
	}
}

/* libmosquitto's refusals that are the message's doing, not the connection's. */
static bool refusal_is_message(int rc)
{
	return rc == MOSQ_ERR_OVERSIZE_PACKET || rc == MOSQ_ERR_PAYLOAD_SIZE ||
	       rc == MOSQ_ERR_MALFORMED_UTF8 || rc == MOSQ_ERR_INVAL ||
	       rc == MOSQ_ERR_DUPLICATE_PROPERTY;
}

/*
 * PUBACK reason codes that condemn the message itself (MQTT 5, 3.4.2.1):
 * not authorized, an invalid topic name, too large, a bad payload format.
 * The others (unspecified, implementation specific, packet identifier in
 * use, quota exceeded) may pass: the message goes back to its queue.
 */
static bool puback_condemns(int reason)
{
	return reason == MQTT_RC_NOT_AUTHORIZED || reason == MQTT_RC_TOPIC_NAME_INVALID ||
	       reason == MQTT_RC_PACKET_TOO_LARGE || reason == MQTT_RC_PAYLOAD_FORMAT_INVALID;
}

void dlink_on_delivery(struct dlink *d, const struct acons_delivery *dv)
{
	const struct downlink_entry *e = &d->cfg->downlink[dv->queue];
	const struct dlmap_template *t = &d->cfg->downlink_topics[dv->queue];
	struct dlmap_entry me = { e->topic != NULL ? t : NULL, e->qos, (enum dlmap_retain)e->retain };
	struct dlmap_link ml = { d->mqtt->cfg->protocol == MQTT_PROTOCOL_5, d->mqtt->max_packet };
	struct dlmap_delivery md = { dv->routing_key, dv->props, dv->body_len };
	struct dlink_counts *c = &d->counts[dv->queue];
	struct dlmap_out out;
	char detail[512];
	enum dlmap_result r;
	int mid = 0, rc;

	c->received++;
	c->redelivered += dv->redelivered;
	if (!d->accepting) {
		c->requeued++;
		dlink_settle(d, dv->gen, dv->tag, ACONS_REQUEUE);
		return;
	}
	r = dlmap_map(&me, &ml, &md, d->topic, &out, detail, sizeof(detail));
	if (r == DLMAP_ERR_NOMEM) {
		log_error("downlink: out of memory; the message goes back to its queue");
		c->requeued++;
		dlink_settle(d, dv->gen, dv->tag, ACONS_REQUEUE);
		return;
	}
	if (r == DLMAP_OK && dv->body == NULL && dv->body_len > 0) {
		/* Not kept as too large, though the mapping found room (cannot happen: the sizes agree). */
		r = DLMAP_ERR_TOO_LARGE;
		mosquitto_property_free_all(&out.props);
		snprintf(detail, sizeof(detail), "a body of %zu bytes", dv->body_len);
	}
	if (r != DLMAP_OK) {
		dlink_reject(d, dv->queue, dv->gen, dv->tag, &dv->routing_key, reject_of(r), detail);
		return;
	}
	rc = mlink_publish(d->mqtt, d->topic, dv->body, dv->body_len, out.qos, out.retain, out.props,
	                   &mid);
	mosquitto_property_free_all(&out.props);
	if (rc == MOSQ_ERR_SUCCESS) {
		if (!flight_put(d, mid, dv->gen, dv->tag, dv->queue)) {
			/* Never acknowledge on a PUBACK that may be another message's: start over. */
			log_error("downlink: packet identifier %d is in use by another message in flight; "
			          "dropping the MQTT connection", mid);
			c->requeued++;
			dlink_settle(d, dv->gen, dv->tag, ACONS_REQUEUE);
			mlink_drop(d->mqtt, "a downlink packet identifier was in use twice");
		}
		return;
	}
	if (rc == MOSQ_ERR_QOS_NOT_SUPPORTED) {
		snprintf(detail, sizeof(detail), "the MQTT broker takes QoS 0 at most (its CONNACK's "
		         "Maximum QoS), and downlink entry %zu (line %d) publishes at QoS 1: set its "
		         "qos = 0", dv->queue + 1, e->line);
		dlink_pause(d, dv->queue, dv->gen, dv->tag, detail);
		return;
	}
	if (refusal_is_message(rc)) {
		snprintf(detail, sizeof(detail), "libmosquitto refused to publish it to '%.200s': %s",
		         d->topic, mosquitto_strerror(rc));
		dlink_reject(d, dv->queue, dv->gen, dv->tag, &dv->routing_key, DL_REJ_MQTT_REFUSED,
		             detail);
		return;
	}
	/* The connection is going (or memory ran out): RabbitMQ keeps it. */
	log_debug("downlink: cannot publish to '%s' now: %s", d->topic, mosquitto_strerror(rc));
	c->requeued++;
	dlink_settle(d, dv->gen, dv->tag, ACONS_REQUEUE);
}

void dlink_on_published(struct dlink *d, int mid, int reason)
{
	struct dlink_flight f;

	if (d->n == 0 || !flight_take(d, mid, &f))
		return;
	if (reason >= 0x80) {
		char detail[256];

		snprintf(detail, sizeof(detail), "the MQTT broker refused %s (PUBACK reason code "
		         "0x%02x: %s)", puback_condemns(reason) ? "it" : "a message",
		         (unsigned)reason, mosquitto_reason_string(reason));
		if (puback_condemns(reason))
			dlink_reject(d, f.queue, f.gen, f.tag, NULL, DL_REJ_MQTT_REFUSED, detail);
		else
			dlink_pause(d, f.queue, f.gen, f.tag, detail);
		return;
	}
	if (dlink_settle(d, f.gen, f.tag, ACONS_ACK) == 0)
		d->counts[f.queue].published++;
}

void dlink_on_consuming(struct dlink *d)
{
	char list[1024];
	size_t len = 0;

	d->retry_ms = DLINK_RETRY_MIN_MS;
	list[0] = '\0';
	for (size_t i = 0; i < d->n && len < sizeof(list); i++)
		len += (size_t)snprintf(list + len, sizeof(list) - len, "%s'%s' (prefetch %u)",
		                        i ? ", " : "", d->queues[i].name, d->queues[i].prefetch);
	log_info("downlink: consuming %s", list);
}

void dlink_on_closed(struct dlink *d, const char *why, bool queue_gone)
{
	if (d->in_flight > 0)
		dlink_give_back(d, why ? "RabbitMQ closed the channel" : "the channel closed");
	flights_clear(d);
	if (why == NULL)
		return;
	log_error("downlink: RabbitMQ closed the consumer channel: %s; trying again in %u ms", why,
	          d->retry_ms);
	d->queue_gone = queue_gone;
	dlink_backoff(d);
}

void dlink_totals(const struct dlink *d, struct dlink_counts *t)
{
	memset(t, 0, sizeof(*t));
	for (size_t i = 0; i < d->n; i++) {
		const struct dlink_counts *c = &d->counts[i];

		t->received += c->received;
		t->redelivered += c->redelivered;
		t->published += c->published;
		t->requeued += c->requeued;
		for (int k = 0; k < DL_REJ_N; k++)
			t->rejected[k] += c->rejected[k];
	}
}
