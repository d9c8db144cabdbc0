#include "forward.h"

#include <errno.h>
#include <inttypes.h>
#include <malloc.h>
#include <stdarg.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "log.h"
#include "topic.h"

#define WARN_WINDOW_MS 1000
/*
 * rabbitmq-c's basic.publish waits (up to the heartbeat timeout) when the
 * socket's send buffer is full, which happens when RabbitMQ stops reading.
 * Reading from MQTT therefore pauses while more than FW_SEND_QUEUE_MAX bytes
 * sit unacknowledged in that socket, so the next publish always finds room
 * (a lone message larger than the kernel's send buffer still may not).  The
 * ioctl is skipped while so little is unconfirmed that the queue cannot be
 * that long: FW_FRAME_OVERHEAD bounds the framing one message adds.
 */
#define FW_SEND_QUEUE_MAX (64u << 10)
#define FW_FRAME_OVERHEAD 512u

static const char *const HDR_REASON = "x-bridge-reason";
static const char *const HDR_DETAIL = "x-bridge-detail";
static const char *const HDR_TOPIC = "x-mqtt-topic";
static const char *const HDR_EXCHANGE = "x-original-exchange";
static const char *const HDR_KEY = "x-original-routing-key";

/* At most one per-message warning a second; the rest are counted into the next. */
static void fw_warn(struct bridge *b, const char *fmt, ...) LOG_PRINTF(2, 3);
static void fw_warn(struct bridge *b, const char *fmt, ...)
{
	uint64_t now = loop_now_ms();
	char line[1024];
	va_list ap;

	if (now - b->warn_window_ms < WARN_WINDOW_MS && b->warn_window_ms != 0) {
		b->warn_suppressed++;
		return;
	}
	va_start(ap, fmt);
	vsnprintf(line, sizeof(line), fmt, ap);
	va_end(ap);
	if (b->warn_suppressed)
		log_warn("%s (and %" PRIu64 " similar in the last second)", line, b->warn_suppressed);
	else
		log_warn("%s", line);
	b->warn_window_ms = now;
	b->warn_suppressed = 0;
}

/*
 * A topic for a log line: whole when short, otherwise its start and its
 * length, so that what follows it in the line (the reason) is never cut.
 */
#define FW_TOPIC_SHOWN 160
struct fw_excerpt {
	char text[FW_TOPIC_SHOWN + 40];
};

static const char *fw_excerpt(struct fw_excerpt *x, const char *topic, size_t tlen)
{
	if (tlen <= FW_TOPIC_SHOWN)
		snprintf(x->text, sizeof(x->text), "%.*s", (int)tlen, topic);
	else
		snprintf(x->text, sizeof(x->text), "%.*s... (%zu bytes)", FW_TOPIC_SHOWN, topic, tlen);
	return x->text;
}

static bool fw_amqp_ready(const struct bridge *b)
{
	return b->amqp.state == AL_READY;
}

/* Whether RabbitMQ's kernel takes what the bridge writes (see FW_SEND_QUEUE_MAX). */
static bool fw_amqp_draining(const struct bridge *b)
{
	uint64_t bound = ctrack_outstanding_bytes(&b->track) +
	                 (uint64_t)ctrack_outstanding(&b->track) * FW_FRAME_OVERHEAD;

	return bound < FW_SEND_QUEUE_MAX || alink_send_queue(&b->amqp) < FW_SEND_QUEUE_MAX;
}

/*
 * The cap.  PUBACKs leave only when nothing is unconfirmed, so a crash
 * redelivers everything read since the last flush: reading pauses once
 * inflight_max messages were read since then, until RabbitMQ has confirmed
 * them all.  (A window that slid with each confirm would let a steady
 * stream run for thousands of messages without ever reaching a flush.)
 */
static bool fw_may_read(void *arg)
{
	struct bridge *b = arg;
	uint64_t cap = (uint64_t)b->cfg->mqtt.inflight_max;

	/* After a failure that named a message, one at a time (see fw_judge_failure()). */
	if (guard_probing(&b->guard) && ctrack_outstanding(&b->track) > 0)
		return false;
	return !b->stopping && fw_amqp_ready(b) && b->mqtt.unflushed < cap &&
	       ctrack_span(&b->track) < 2 * cap && fw_amqp_draining(b);
}

/* The gate of ack-after-forward. */
static bool fw_may_flush(void *arg)
{
	struct bridge *b = arg;

	return ctrack_outstanding(&b->track) == 0;
}

/*
 * A new MQTT connection starts only with nothing in flight, so that every
 * unconfirmed message belongs to the current connection.
 */
static bool fw_may_connect(void *arg)
{
	struct bridge *b = arg;

	return !b->stopping && !b->restart_mqtt && !b->restart_amqp && fw_amqp_ready(b) &&
	       ctrack_outstanding(&b->track) == 0;
}

static void fw_set_entry(amqp_table_entry_t *e, const char *key, const char *val, size_t len)
{
	props_entry_text(e, key, strlen(key), val, len);
}

/* The AMQP settings the channel was opened with (the old ones until a reload's restart). */
static const struct amqp_settings *fw_amqp_cfg(const struct bridge *b)
{
	return b->amqp.cfg;
}

/*
 * Publishes a copy of a message that cannot reach `exchange` to the
 * dead-letter exchange, with headers naming why.  Returns 0, or -1 when
 * the AMQP link failed (the MQTT connection is then poisoned).
 */
static int fw_dead_letter(struct bridge *b, uint64_t fp, const char *topic, size_t tlen,
                          const char *exchange, size_t exlen, const char *key, size_t klen,
                          const char *reason, const char *detail, bool persistent,
                          const void *body, size_t len)
{
	const char *dlx = fw_amqp_cfg(b)->dead_letter_exchange;
	size_t dlx_len = strlen(dlx);
	amqp_basic_properties_t props;
	amqp_table_entry_t entries[5];
	uint64_t tag;
	int n = 0;

	/* Sorted by name, as RabbitMQ keeps header tables. */
	fw_set_entry(&entries[n++], HDR_DETAIL, detail, strlen(detail));
	fw_set_entry(&entries[n++], HDR_REASON, reason, strlen(reason));
	fw_set_entry(&entries[n++], HDR_TOPIC, topic, tlen);
	fw_set_entry(&entries[n++], HDR_EXCHANGE, exchange, exlen);
	if (key)
		fw_set_entry(&entries[n++], HDR_KEY, key, klen);
	memset(&props, 0, sizeof(props));
	props._flags = AMQP_BASIC_DELIVERY_MODE_FLAG | AMQP_BASIC_HEADERS_FLAG;
	props.delivery_mode = persistent ? 2 : 1;
	props.headers.num_entries = n;
	props.headers.entries = entries;
	if (!key) {
		key = "";
		klen = 0;
	}
	/* Only with a frame far below RabbitMQ's default could a 64 KiB topic not fit. */
	if (props_encoded_size(&props) > alink_frame_max(&b->amqp) - PROPS_HEADER_OVERHEAD) {
		struct fw_excerpt x;

		b->stats.dropped++;
		fw_warn(b, "bridge: dropped an undeliverable message (%s: %s) on '%s': its dead-letter "
		        "headers do not fit RabbitMQ's frame of %zu bytes", reason, detail,
		        fw_excerpt(&x, topic, tlen), alink_frame_max(&b->amqp));
		return 0;
	}
	if (ctrack_reserve(&b->track, (size_t)ctrack_span(&b->track) + 1) != 0) {
		log_error("bridge: out of memory");
		mlink_poison(&b->mqtt);
		return -1;
	}
	if (alink_publish(&b->amqp, dlx, dlx_len, key, klen, &props, body, len, &tag) != 0) {
		mlink_poison(&b->mqtt);
		return -1;
	}
	if (ctrack_add(&b->track, ctrack_key_hash(dlx, dlx_len, key, klen), topic, tlen, len,
	               true) != tag) {
		log_error("bridge: confirm bookkeeping lost track of delivery tag %" PRIu64, tag);
		alink_fail(&b->amqp, "internal error in confirm bookkeeping");
		return -1;
	}
	ctrack_get(&b->track, tag)->fp = fp;
	return 0;
}

/*
 * The largest body RabbitMQ takes: amqp.max_message_size, or RabbitMQ's own
 * limit once a refusal told it and it is lower (then *brokers is set).
 */
static int64_t fw_max_body(const struct bridge *b, bool *brokers)
{
	int64_t max = fw_amqp_cfg(b)->max_message_size;
	bool learnt = b->broker_max_size > 0 && b->broker_max_size < max;

	if (brokers)
		*brokers = learnt;
	return learnt ? b->broker_max_size : max;
}

/*
 * A copy refused before publishing: dead-letter it or, without a
 * dead-letter exchange (or with `drop`), drop and count it.  The log line
 * leads with the reason and its sizes; a long topic is cut, never them.
 * Returns -1 when the AMQP link failed.
 */
static int fw_undeliverable(struct bridge *b, uint64_t fp, const struct mosquitto_message *msg,
                            size_t tlen, const char *exchange, size_t exlen, const char *key,
                            size_t klen, const char *reason, const char *detail, bool drop)
{
	const char *dlx = fw_amqp_cfg(b)->dead_letter_exchange;
	/* A body over the limit would be refused on the dead-letter exchange too. */
	bool keep_body = (int64_t)msg->payloadlen <= fw_max_body(b, NULL);
	struct fw_excerpt x;

	if (dlx && !drop) {
		fw_warn(b, "bridge: undeliverable message (%s: %s) on '%s': sending it to dead-letter "
		        "exchange '%s'", reason, detail, fw_excerpt(&x, msg->topic, tlen), dlx);
		return fw_dead_letter(b, fp, msg->topic, tlen, exchange, exlen, key, klen, reason,
		                      detail, msg->qos > 0, keep_body ? msg->payload : NULL,
		                      keep_body ? (size_t)msg->payloadlen : 0);
	}
	b->stats.dropped++;
	fw_warn(b, "bridge: dropped an undeliverable message (%s: %s) on '%s': %s", reason, detail,
	        fw_excerpt(&x, msg->topic, tlen),
	        dlx ? "its dead-letter copy failed as well" : "no dead-letter exchange is configured");
	return 0;
}

void bridge_props_input(struct props_input *in, const struct bridge_settings *bs,
                        const struct rule *r, const struct mosquitto_message *msg, size_t tlen,
                        const mosquitto_property *mprops, bool dup)
{
	*in = (struct props_input){
		.mqtt = mprops,
		.qos = msg->qos,
		.retain = msg->retain,
		.dup = dup,
		.plugin = props_plugin_of(bs->plugin_headers),
		.topic = msg->topic,
		.topic_len = tlen,
		.persistent = r ? r->persistent : RULE_PERSIST_QOS,
		.headers = r ? r->headers : NULL,
		.n_headers = r ? r->n_headers : 0,
		.topic_header = bs->topic_header,
		.retain_header = bs->retain_header,
		.dot_replacement = bs->dot_replacement,
	};
}

/*
 * Publishes one copy of `msg` as rule `r` says (NULL: the default
 * translation to the main exchange).  The copy's fingerprint is the
 * message's (`msg_fp`: topic and payload; 0 with the guard off) with its
 * exchange, routing key and properties, so that the poison guard tells
 * copies and messages with other properties apart.  What RabbitMQ could not take is found here,
 * before anything is sent: a body over the limit (amqp.max_message_size,
 * or RabbitMQ's own once a refusal told it), a routing key over 255 bytes,
 * properties that do not fit one frame; and a copy the poison guard set
 * aside.  Returns 0, or -1 when the AMQP link failed or memory ran out
 * (the MQTT connection is then poisoned: the message's PUBACK must never
 * leave).
 */
static int fw_forward(struct bridge *b, const struct mosquitto_message *msg,
                      const mosquitto_property *mprops, bool dup, uint64_t msg_fp, size_t tlen,
                      const struct rule *r)
{
	const struct amqp_settings *ac = fw_amqp_cfg(b);
	const struct bridge_settings *bs = &b->cfg->bridge;
	const char *exchange = r && r->exchange ? r->exchange : ac->exchange;
	size_t exlen = r && r->exchange ? r->exchange_len : strlen(ac->exchange);
	char key[TOPIC_KEY_MAX + 1], detail[200];
	struct props_input in;
	amqp_basic_properties_t props;
	enum topic_result tr;
	struct props_limits lim;
	enum guard_verdict verdict;
	const char *reason;
	size_t klen;
	uint64_t tag, fp, kh;
	int rc;

	bridge_props_input(&in, bs, r, msg, tlen, mprops, dup);
	tr = rules_key(r, msg->topic, tlen, bs->dot_replacement, key, &klen);
	if (tr != TOPIC_OK && tr != TOPIC_ERR_TOO_LONG) {
		snprintf(detail, sizeof(detail), "%s", topic_strerror(tr));
		return fw_undeliverable(b, msg_fp, msg, tlen, exchange, exlen, NULL, 0, "invalid-topic",
		                        detail, false);
	}
	if (props_build(&b->props, &in, &props) != 0) {
		log_error("bridge: out of memory");
		mlink_poison(&b->mqtt);
		return -1;
	}
	kh = ctrack_key_hash(exchange, exlen, key, tr == TOPIC_OK ? klen : 0);
	/* 0 with the guard off: nothing is fingerprinted then. */
	fp = msg_fp ? ctrack_fingerprint_add(ctrack_fingerprint_add(msg_fp, props_hash(&props)), kh)
	            : 0;
	verdict = guard_verdict(&b->guard, fp);
	if (verdict != GUARD_FORWARD) {
		struct fw_excerpt x;

		if (!b->guard.logged)
			log_error("bridge: the message on '%s' (%d bytes) was at the head of %u AMQP "
			          "failures in a row (bridge.poison_failures = %d; the last: %s); %s",
			          fw_excerpt(&x, msg->topic, tlen), msg->payloadlen, b->guard.failures,
			          bs->poison_failures, b->guard.why,
			          verdict == GUARD_DROP ? "its dead-letter copy failed as often: dropping it"
			          : ac->dead_letter_exchange ? "setting it aside as poison"
			          : "dropping it as poison: no dead-letter exchange is configured");
		b->guard.logged = true;
		return fw_undeliverable(b, fp, msg, tlen, exchange, exlen, tr == TOPIC_OK ? key : NULL,
		                        tr == TOPIC_OK ? klen : 0, "poison", b->guard.why,
		                        verdict == GUARD_DROP);
	}
	lim.frame_max = alink_frame_max(&b->amqp);
	lim.max_body = fw_max_body(b, &lim.brokers_max_body);
	/* rabbitmq-c would send the method frame and then fail on the content header. */
	reason = props_check(&lim, klen, (uint64_t)msg->payloadlen, &props, detail, sizeof(detail));
	if (reason)
		return fw_undeliverable(b, fp, msg, tlen, exchange, exlen, tr == TOPIC_OK ? key : NULL,
		                        tr == TOPIC_OK ? klen : 0, reason, detail, false);
	b->publishing_fp = fp;
	rc = alink_publish(&b->amqp, exchange, exlen, key, klen, &props, msg->payload,
	                   (size_t)msg->payloadlen, &tag);
	b->publishing_fp = 0;
	if (rc != 0) {
		mlink_poison(&b->mqtt);
		return -1;
	}
	if (ctrack_add(&b->track, kh, msg->topic, tlen, (size_t)msg->payloadlen, false) != tag) {
		log_error("bridge: confirm bookkeeping lost track of delivery tag %" PRIu64, tag);
		mlink_poison(&b->mqtt);
		alink_fail(&b->amqp, "internal error in confirm bookkeeping");
		return -1;
	}
	ctrack_get(&b->track, tag)->fp = fp;
	return 0;
}

/*
 * Every rule that applies gets its copy, in rule order; a drop rule (or the
 * unmatched default "drop") ends the message, counted as dropped when no
 * copy was sent.
 */
static void fw_on_message(void *arg, const struct mosquitto_message *msg,
                          const mosquitto_property *mprops, bool dup)
{
	struct bridge *b = arg;
	size_t tlen = strlen(msg->topic), n, copies = 0;
	/* The poison guard's fingerprint, only when the guard is on (it hashes the payload). */
	uint64_t fp = b->guard.threshold == 0 ? 0
	              : ctrack_fingerprint(msg->topic, tlen, msg->payload, (size_t)msg->payloadlen);

	b->stats.received++;
	guard_on_read(&b->guard);
	n = rules_match(b->cfg->rules, msg->topic, tlen, b->matches, b->matches_cap);
	/* Room for each copy and, should it be returned, its dead-letter copy. */
	if (ctrack_reserve(&b->track, (size_t)ctrack_span(&b->track) + 2 * n + 2) != 0) {
		log_error("bridge: out of memory");
		mlink_poison(&b->mqtt);
		return;
	}
	if (n == 0) {
		if (b->cfg->bridge.unmatched == UNMATCHED_DROP) {
			b->stats.dropped++;
			log_debug("bridge: dropped the message on '%s': no rule matches it", msg->topic);
			return;
		}
		fw_forward(b, msg, mprops, dup, fp, tlen, NULL);
		return;
	}
	for (size_t i = 0; i < n; i++) {
		const struct rule *r = b->matches[i];

		if (r->drop) {
			if (copies == 0)
				b->stats.dropped++;
			log_debug("bridge: rule %zu (line %d) drops the message on '%s'", r->index,
			          r->line, msg->topic);
			return;
		}
		log_debug("bridge: rule %zu (line %d) forwards the message on '%s'", r->index, r->line,
		          msg->topic);
		if (fw_forward(b, msg, mprops, dup, fp, tlen, r) != 0)
			return;
		copies++;
	}
}

static void fw_add_counts(struct bridge *b, const struct ctrack_counts *c)
{
	b->stats.forwarded += c->forwarded;
	b->stats.dead_lettered += c->dead_lettered;
	b->stats.dropped += c->dropped;
	b->stats.nacked += c->nacked;
}

static void fw_on_ack(void *arg, uint64_t tag, bool multiple)
{
	struct bridge *b = arg;
	struct ctrack_counts c = { 0 };

	if (ctrack_ack(&b->track, tag, multiple, &c) < 0) {
		log_error("amqp: basic.ack for unknown delivery tag %" PRIu64, tag);
		alink_fail(&b->amqp, "protocol error: confirm for an unknown delivery tag");
		return;
	}
	fw_add_counts(b, &c);
}

static void fw_on_nack(void *arg, uint64_t tag, bool multiple)
{
	struct bridge *b = arg;
	struct ctrack_counts c = { 0 };
	int n = ctrack_nack(&b->track, tag, multiple, &c);

	if (n < 0) {
		log_error("amqp: basic.nack for unknown delivery tag %" PRIu64, tag);
		alink_fail(&b->amqp, "protocol error: nack for an unknown delivery tag");
		return;
	}
	fw_add_counts(b, &c);
	fw_warn(b, "amqp: RabbitMQ refused %d message(s) (basic.nack, e.g. a full queue with "
	        "reject-publish); the MQTT broker will redeliver them", n);
	mlink_drop(&b->mqtt, "RabbitMQ refused a message");
}

static void fw_on_returned(void *arg, const struct alink_return *r)
{
	struct bridge *b = arg;
	const char *dlx = fw_amqp_cfg(b)->dead_letter_exchange;
	struct ctrack_entry *e;
	struct fw_excerpt x;
	char detail[320];

	e = ctrack_find_return(&b->track, ctrack_key_hash(r->exchange, r->exchange_len,
	                                                  r->routing_key, r->routing_key_len));
	if (!e) {
		log_warn("amqp: a returned message (exchange '%s', routing key '%s') matches no "
		         "message in flight", r->exchange, r->routing_key);
		return;
	}
	if (e->deadletter || !dlx) {
		e->fate = CT_FATE_DROPPED;
		fw_warn(b, "bridge: dropped an undeliverable message (unroutable: %d %s on exchange "
		        "'%s') on '%s'%s", r->reply_code, r->reply_text, r->exchange,
		        fw_excerpt(&x, e->topic, strlen(e->topic)),
		        dlx ? "" : ": no dead-letter exchange is configured");
		return;
	}
	/* The dead-letter copy counts once it is confirmed; the original counts nothing. */
	e->fate = CT_FATE_NONE;
	snprintf(detail, sizeof(detail), "%d %s", r->reply_code, r->reply_text);
	fw_warn(b, "bridge: undeliverable message (unroutable: %s on exchange '%s') on '%s': "
	        "sending it to dead-letter exchange '%s'", detail, r->exchange,
	        fw_excerpt(&x, e->topic, strlen(e->topic)), dlx);
	fw_dead_letter(b, e->fp, e->topic, strlen(e->topic), r->exchange, r->exchange_len,
	               r->routing_key, r->routing_key_len, "unroutable", detail,
	               r->delivery_mode == 2, r->body, r->body_len);
}

/*
 * Tells the service manager which sides are up, as the links' states say
 * (each link changes its state before calling its handler).  Once
 * stopping, the STOPPING=1 status stays.
 */
static void fw_status(struct bridge *b)
{
	const struct mqtt_settings *mc = &b->cfg->mqtt;
	const struct amqp_settings *ac = &b->cfg->amqp;
	bool mqtt_up = b->mqtt.state == ML_ACTIVE;
	const char *mq = mqtt_up ? "up" : "down";

	if (b->stopping)
		return;
	if (b->amqp.state != AL_READY && b->amqp.state != AL_BLOCKED)
		notify_status(&b->notify, "waiting for RabbitMQ: MQTT %s:%d %s, AMQP %s:%d down",
		              mc->host, mc->port, mq, ac->host, ac->port);
	else if (b->amqp.state == AL_BLOCKED)
		notify_status(&b->notify, "paused: RabbitMQ blocked publishing: MQTT %s:%d %s, "
		              "AMQP %s:%d blocked", mc->host, mc->port, mq, ac->host, ac->port);
	else if (!mqtt_up)
		notify_status(&b->notify, "waiting for MQTT: MQTT %s:%d down, AMQP %s:%d up",
		              mc->host, mc->port, ac->host, ac->port);
	else
		notify_status(&b->notify, "forwarding: MQTT %s:%d up, AMQP %s:%d up",
		              mc->host, mc->port, ac->host, ac->port);
}

static void fw_on_amqp_up(void *arg)
{
	struct bridge *b = arg;

	fw_status(b);
	b->stats.amqp_connects++;
	ctrack_reset(&b->track);
	if (!b->stopping)
		mlink_start(&b->mqtt);
}

/*
 * A 406 that gives a message's size and RabbitMQ's max_message_size
 * ("message size 2000000 is larger than configured max size 1000000"): the
 * limit is learnt, and the redelivered message is then dead-lettered as
 * too-large before it is published again.  Returns whether `f` was one.
 */
static bool fw_learn_size_limit(struct bridge *b, const struct alink_failure *f)
{
	long long size, max;

	if (f->cause != AL_CAUSE_CHANNEL_CLOSED || f->code != 406 ||
	    !guard_size_refusal(f->text, &size, &max))
		return false;
	/* Nothing new (a limit already known): the poison guard judges it like any 406. */
	if (max >= fw_max_body(b, NULL))
		return false;
	b->broker_max_size = max;
	log_warn("bridge: RabbitMQ refused a message of %lld bytes: its max_message_size is %lld, "
	         "below amqp.max_message_size (%" PRId64 "); larger messages are dead-lettered as "
	         "too-large from now on (set amqp.max_message_size to RabbitMQ's limit; a reload "
	         "forgets the learnt one)", size, max, fw_amqp_cfg(b)->max_message_size);
	return true;
}

/*
 * The poison guard's count, on an AMQP failure with messages in flight.
 * Called before the confirm bookkeeping is reset.  After a counted failure
 * the redelivered batch is forwarded one at a time, and beyond it twice
 * mqtt.inflight_max more: the broker may first deliver again messages read
 * before the batch whose PUBACKs it had not read when the connection went.
 */
static void fw_judge_failure(struct bridge *b)
{
	const struct alink_failure *f = &b->amqp.failure;
	const struct ctrack_entry *head = ctrack_head(&b->track);
	uint64_t fp = f->cause == AL_CAUSE_PUBLISH && b->publishing_fp ? b->publishing_fp
	              : head ? head->fp : 0;
	const char *topic = head && fp == head->fp ? head->topic : NULL;
	bool counts;
	struct fw_excerpt x;

	counts = fp != 0 && !fw_learn_size_limit(b, f) &&
	         guard_names_message(f->cause == AL_CAUSE_CHANNEL_CLOSED ||
	                             f->cause == AL_CAUSE_CONNECTION_CLOSED,
	                             f->code, f->text, f->cause == AL_CAUSE_PUBLISH);
	if (!guard_on_failure(&b->guard, fp, counts, f->text, b->mqtt.unflushed,
	                      2 * (uint64_t)b->cfg->mqtt.inflight_max))
		return;
	log_warn("bridge: the AMQP failure named a message; %s%s%s is the suspect (%u of %u "
	         "failures in a row before it is set aside as poison); forwarding the next %"
	         PRIu64 " message(s) one at a time", topic ? "the message on '" : "the message being "
	         "published", topic ? fw_excerpt(&x, topic, strlen(topic)) : "", topic ? "'" : "",
	         b->guard.failures, b->guard.threshold, b->guard.probe_left);
}

static void fw_on_amqp_down(void *arg)
{
	struct bridge *b = arg;
	size_t n = ctrack_outstanding(&b->track);

	fw_judge_failure(b);
	fw_status(b);
	if (mlink_connected(&b->mqtt)) {
		if (n > 0 || b->mqtt.poisoned) {
			char why[128];

			snprintf(why, sizeof(why), "the AMQP connection failed with %zu message(s) "
			         "unconfirmed", n);
			mlink_drop(&b->mqtt, why);
		} else {
			mlink_drain(&b->mqtt);
		}
	}
	/* Every unconfirmed publish is in doubt; the MQTT broker redelivers them. */
	ctrack_reset(&b->track);
}

static void fw_on_blocked(void *arg, bool blocked)
{
	struct bridge *b = arg;

	fw_status(b);
	if (blocked)
		mlink_drain(&b->mqtt);
	else if (!b->stopping)
		mlink_start(&b->mqtt);
}

static void fw_on_mqtt_up(void *arg)
{
	struct bridge *b = arg;

	log_info("bridge: forwarding");
	fw_status(b);
}

static void fw_on_mqtt_down(void *arg)
{
	fw_status(arg);
}

/* Connections after the first. */
static uint64_t reconnects(uint64_t connects)
{
	return connects > 0 ? connects - 1 : 0;
}

void bridge_log_stats(const struct bridge *b)
{
	const struct stats *s = &b->stats;

	log_info("stats: received=%" PRIu64 " redelivered=%" PRIu64 " forwarded=%" PRIu64
	         " dead_lettered=%" PRIu64 " dropped=%" PRIu64 " nacked=%" PRIu64
	         " mqtt_reconnects=%" PRIu64 " amqp_reconnects=%" PRIu64,
	         s->received, b->mqtt.redelivered, s->forwarded, s->dead_lettered, s->dropped,
	         s->nacked, reconnects(b->mqtt.connects), reconnects(s->amqp_connects));
}

/*
 * Ends the run.  `graceful` closes AMQP with its handshakes; after a drain
 * timeout RabbitMQ is not answering, and waiting for it would only delay
 * the exit.
 */
static void fw_finish(struct bridge *b, bool graceful)
{
	if (b->done)
		return;
	loop_timer_disarm(&b->loop, &b->drain_timer);
	alink_stop(&b->amqp, graceful);
	b->done = true;
	b->loop.stop = true;
}

static void fw_on_drain_timeout(void *arg)
{
	struct bridge *b = arg;

	log_warn("bridge: drain timeout after %d s: %zu message(s) still unconfirmed; the MQTT "
	         "broker will redeliver them", b->cfg->bridge.drain_timeout,
	         ctrack_outstanding(&b->track));
	mlink_drop(&b->mqtt, "drain timeout");
	fw_finish(b, false);
}

/* Makes rules_match()'s scratch fit `rs`.  Returns 0 or -1. */
static int fw_size_matches(struct bridge *b, const struct rules *rs)
{
	size_t need = rules_max_matches(rs) + 1;
	const struct rule **m;

	if (need <= b->matches_cap)
		return 0;
	m = realloc(b->matches, need * sizeof(*m));
	if (!m)
		return -1;
	b->matches = m;
	b->matches_cap = need;
	return 0;
}

static void fw_apply_logging(struct bridge *b)
{
	if (!b->log_level_forced)
		log_set_level(b->cfg->bridge.log_level);
	log_set_target(b->cfg->bridge.log_target);
}

/*
 * SIGHUP.  Loads the file anew; on any error logs every one and keeps the
 * configuration in force.  Otherwise the new rules take over from the next
 * message read (messages in flight keep their copies and confirms),
 * subscriptions change by difference, and a side whose settings changed is
 * drained and then reconnected by fw_restart().
 */
static void fw_reload(struct bridge *b)
{
	struct bridge_config *old = b->cfg, *cfg;
	struct config_errors errs;
	unsigned diff;

	if (b->restart_mqtt || b->restart_amqp) {
		log_info("bridge: reload requested; it follows the reconnect of the previous reload");
		b->reload_pending = true;
		return;
	}
	log_info("bridge: reloading %s", old->path);
	cfg = calloc(1, sizeof(*cfg));
	if (!cfg) {
		log_error("bridge: reload failed: out of memory; still running on the previous "
		          "configuration");
		return;
	}
	config_errors_init(&errs);
	if (config_load(old->path, cfg, &errs) != 0) {
		for (size_t i = 0; i < errs.n; i++)
			log_error("%s", errs.msg[i]);
		log_error("bridge: reload failed: %zu error(s) in %s; still running on the previous "
		          "configuration", errs.n, old->path);
		config_errors_free(&errs);
		free(cfg);
		return;
	}
	config_errors_free(&errs);
	for (size_t i = 0; i < cfg->n_warnings; i++)
		log_warn("%s", cfg->warnings[i]);
	diff = config_diff(old, cfg);
	if (fw_size_matches(b, cfg->rules) != 0) {
		log_error("bridge: reload failed: out of memory; still running on the previous "
		          "configuration");
		config_free(cfg);
		free(cfg);
		return;
	}
	b->cfg = cfg;
	/* RabbitMQ's limit may have been raised meanwhile; it is learnt again if not. */
	b->broker_max_size = 0;
	guard_set_threshold(&b->guard, (unsigned)cfg->bridge.poison_failures);
	fw_apply_logging(b);
	if (diff & CFG_DIFF_MQTT) {
		b->restart_mqtt = true;
	} else {
		/* Equal settings: the link may use the new copy at once. */
		b->mqtt.cfg = &cfg->mqtt;
		if ((diff & CFG_DIFF_SUBSCRIBE) &&
		    mlink_set_subscriptions(&b->mqtt, cfg->mqtt.subscribe, cfg->mqtt.n_subscribe) != 0)
			mlink_drop(&b->mqtt, "out of memory while changing the subscriptions");
	}
	if (diff & CFG_DIFF_AMQP) {
		b->restart_amqp = true;
	} else {
		alink_set_config(&b->amqp, &cfg->amqp);
		alink_set_topology(&b->amqp, &cfg->topology, cfg->check_exchanges,
		                   cfg->n_check_exchanges);
	}
	{
		static const struct {
			unsigned flag;
			const char *what;
		} changes[] = {
			{ CFG_DIFF_RULES, "rules changed" },
			{ CFG_DIFF_SUBSCRIBE, "subscriptions changed" },
			{ CFG_DIFF_BRIDGE, "bridge settings changed" },
			{ CFG_DIFF_MQTT, "mqtt settings changed: reconnecting MQTT" },
			{ CFG_DIFF_AMQP, "amqp settings or topology changed: reconnecting AMQP once the "
			                 "messages in flight are confirmed" },
		};
		char what[512] = "nothing changed";
		size_t len = 0;

		for (size_t i = 0; i < sizeof(changes) / sizeof(changes[0]); i++)
			if (diff & changes[i].flag)
				len += (size_t)snprintf(what + len, len < sizeof(what) ? sizeof(what) - len : 0,
				                        "%s%s", len ? "; " : "", changes[i].what);
		log_info("bridge: reloaded %s: %s", cfg->path, what);
	}
	if (b->restart_mqtt || b->restart_amqp) {
		/* A link still points into the old configuration until it restarts. */
		b->retired = old;
		mlink_drain(&b->mqtt);
	} else {
		config_free(old);
		free(old);
	}
	/* As at start-up: parsing leaves freed holes that glibc would keep. */
	malloc_trim(0);
}

/*
 * Completes a reload's reconnects once MQTT is closed and nothing is in
 * flight: from then on no link uses the retired configuration.
 */
static void fw_restart(struct bridge *b)
{
	if (!b->restart_mqtt && !b->restart_amqp)
		return;
	if (b->stopping || mlink_connected(&b->mqtt) || ctrack_outstanding(&b->track) > 0)
		return;
	if (b->restart_amqp) {
		alink_set_config(&b->amqp, &b->cfg->amqp);
		alink_set_topology(&b->amqp, &b->cfg->topology, b->cfg->check_exchanges,
		                   b->cfg->n_check_exchanges);
	}
	if (b->restart_mqtt) {
		if (mlink_reconfigure(&b->mqtt, &b->cfg->mqtt, &b->cfg->bridge) != 0)
			fatal("bridge: cannot set up the MQTT client with the reloaded settings");
	} else {
		b->mqtt.cfg = &b->cfg->mqtt;
	}
	b->restart_mqtt = false;
	config_free(b->retired);
	free(b->retired);
	b->retired = NULL;
	if (b->restart_amqp) {
		b->restart_amqp = false;
		log_info("bridge: reconnecting to RabbitMQ with the reloaded settings");
		/* Its up handler starts MQTT again. */
		alink_restart(&b->amqp);
	} else {
		mlink_start(&b->mqtt);
	}
	if (b->reload_pending) {
		b->reload_pending = false;
		fw_reload(b);
	}
}

static void fw_on_signal(void *arg, int signo)
{
	struct bridge *b = arg;
	char status[NOTIFY_STATUS_MAX];

	switch (signo) {
	case SIGTERM:
	case SIGINT:
		if (b->stopping) {
			log_warn("bridge: second signal: stopping now");
			mlink_drop(&b->mqtt, "stopping now");
			fw_finish(b, false);
			return;
		}
		b->stopping = true;
		snprintf(status, sizeof(status), "stopping: waiting up to %d s for %zu unconfirmed "
		         "message(s)", b->cfg->bridge.drain_timeout, ctrack_outstanding(&b->track));
		notify_stopping(&b->notify, status);
		log_info("bridge: shutting down: waiting up to %d s for %zu unconfirmed message(s)",
		         b->cfg->bridge.drain_timeout, ctrack_outstanding(&b->track));
		mlink_stop(&b->mqtt);
		mlink_drain(&b->mqtt);
		loop_timer_arm(&b->loop, &b->drain_timer, (uint64_t)b->cfg->bridge.drain_timeout * 1000u);
		break;
	case SIGUSR1:
		bridge_log_stats(b);
		break;
	case SIGHUP:
		if (!b->stopping)
			fw_reload(b);
		break;
	default:
		break;
	}
}

static bool fw_prepare(void *arg)
{
	struct bridge *b = arg;

	/* Confirms may sit in rabbitmq-c's buffer where poll() cannot see them. */
	if (alink_pending(&b->amqp))
		alink_read(&b->amqp);
	/* A suspect that went through after all: the failures were not its doing. */
	if (fw_amqp_ready(b))
		guard_on_settled(&b->guard, ctrack_outstanding(&b->track));
	mlink_prepare(&b->mqtt);
	fw_restart(b);
	if (b->stopping && !mlink_connected(&b->mqtt)) {
		fw_finish(b, ctrack_outstanding(&b->track) == 0);
		return false;
	}
	return alink_pending(&b->amqp);
}

int bridge_init(struct bridge *b, struct bridge_config *cfg)
{
	static const int signals[] = { SIGTERM, SIGINT, SIGHUP, SIGUSR1, 0 };
	const struct mlink_handlers mh = {
		.message = fw_on_message,
		.may_read = fw_may_read,
		.may_flush = fw_may_flush,
		.may_connect = fw_may_connect,
		.up = fw_on_mqtt_up,
		.down = fw_on_mqtt_down,
	};
	const struct alink_handlers ah = {
		.up = fw_on_amqp_up,
		.down = fw_on_amqp_down,
		.blocked = fw_on_blocked,
		.ack = fw_on_ack,
		.nack = fw_on_nack,
		.returned = fw_on_returned,
	};

	memset(b, 0, sizeof(*b));
	b->cfg = cfg;
	guard_init(&b->guard, (unsigned)cfg->bridge.poison_failures);
	props_init(&b->props);
	if (fw_size_matches(b, cfg->rules) != 0) {
		log_error("bridge: out of memory");
		goto fail_scratch;
	}
	if (loop_init(&b->loop, signals, fw_on_signal, b) != 0) {
		log_error("bridge: cannot set up signal handling: %s", strerror(errno));
		goto fail_scratch;
	}
	loop_set_prepare(&b->loop, fw_prepare, b);
	loop_timer_init(&b->drain_timer, fw_on_drain_timeout, b);
	/* Each message read may add its own tag and, if returned, a dead-letter copy's. */
	if (ctrack_init(&b->track, 2 * (size_t)cfg->mqtt.inflight_max + 2) != 0) {
		log_error("bridge: out of memory");
		goto fail_loop;
	}
	if (alink_init(&b->amqp, &cfg->amqp, &cfg->bridge, &b->loop, &ah, b) != 0)
		goto fail_track;
	alink_set_topology(&b->amqp, &cfg->topology, cfg->check_exchanges, cfg->n_check_exchanges);
	if (mlink_init(&b->mqtt, &cfg->mqtt, &cfg->bridge, &b->loop, &mh, b) != 0)
		goto fail_amqp;
	return 0;

fail_amqp:
	alink_fini(&b->amqp);
fail_track:
	ctrack_fini(&b->track);
fail_loop:
	loop_fini(&b->loop);
fail_scratch:
	free(b->matches);
	props_fini(&b->props);
	b->cfg = NULL;
	return -1;
}

int bridge_run(struct bridge *b)
{
	log_info("bridge: starting: MQTT %s:%d -> AMQP %s:%d exchange '%s'", b->cfg->mqtt.host,
	         b->cfg->mqtt.port, b->cfg->amqp.host, b->cfg->amqp.port, b->cfg->amqp.exchange);
	/* Ready once configured: brokers that are down are waited for, not an error. */
	notify_init(&b->notify, &b->loop);
	notify_ready(&b->notify);
	fw_status(b);
	alink_start(&b->amqp);
	while (!b->done)
		loop_run_once(&b->loop);
	notify_fini(&b->notify);
	bridge_log_stats(b);
	log_info("bridge: stopped");
	return 0;
}

void bridge_fini(struct bridge *b)
{
	mlink_fini(&b->mqtt);
	alink_fini(&b->amqp);
	ctrack_fini(&b->track);
	loop_fini(&b->loop);
	props_fini(&b->props);
	free(b->matches);
	b->matches = NULL;
	if (b->retired) {
		config_free(b->retired);
		free(b->retired);
	}
	config_free(b->cfg);
	free(b->cfg);
	b->cfg = b->retired = NULL;
}
