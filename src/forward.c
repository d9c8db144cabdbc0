#include "forward.h"

#include <inttypes.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "log.h"
#include "topic.h"

#define WARN_WINDOW_MS 1000

static const char *const HDR_REASON = "x-bridge-reason";
static const char *const HDR_DETAIL = "x-bridge-detail";
static const char *const HDR_TOPIC = "x-mqtt-topic";
static const char *const HDR_EXCHANGE = "x-original-exchange";
static const char *const HDR_KEY = "x-original-routing-key";

void fw_warn(struct forward *f, const char *fmt, ...)
{
	uint64_t now = loop_now_ms();
	char line[1024];
	va_list ap;

	if (now - f->warn_window_ms < WARN_WINDOW_MS && f->warn_window_ms != 0) {
		f->warn_suppressed++;
		return;
	}
	va_start(ap, fmt);
	vsnprintf(line, sizeof(line), fmt, ap);
	va_end(ap);
	if (f->warn_suppressed)
		log_warn("%s (and %" PRIu64 " similar in the last second)", line, f->warn_suppressed);
	else
		log_warn("%s", line);
	f->warn_window_ms = now;
	f->warn_suppressed = 0;
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

static void fw_set_entry(amqp_table_entry_t *e, const char *key, const char *val, size_t len)
{
	props_entry_text(e, key, strlen(key), val, len);
}

/* The AMQP settings the channel was opened with (the old ones until a reload's restart). */
static const struct amqp_settings *fw_amqp_cfg(const struct forward *f)
{
	return f->amqp->cfg;
}

/* What ctrack_add() does not take: the fingerprint, the time, the counter an ack adds to. */
static void fw_tracked(struct forward *f, uint64_t tag, uint64_t fp, uint32_t counter)
{
	struct ctrack_entry *e = ctrack_get(&f->gate->track, tag);

	e->fp = fp;
	e->sent_us = loop_time_us();
	e->counter = counter;
}

/*
 * Publishes a copy of a message that cannot reach `exchange` to the
 * dead-letter exchange, with headers naming why.  Returns 0, or -1 when
 * the AMQP link failed (the MQTT connection is then poisoned).
 */
static int fw_dead_letter(struct forward *f, uint64_t fp, const char *topic, size_t tlen,
                          const char *exchange, size_t exlen, const char *key, size_t klen,
                          const char *reason, const char *detail, bool persistent,
                          const void *body, size_t len)
{
	const char *dlx = fw_amqp_cfg(f)->dead_letter_exchange;
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
	if (props_encoded_size(&props) > alink_frame_max(f->amqp) - PROPS_HEADER_OVERHEAD) {
		struct fw_excerpt x;

		stats_drop(f->stats, STATS_DROP_UNDELIVERABLE);
		fw_warn(f, "bridge: dropped an undeliverable message (%s: %s) on '%s': its dead-letter "
		        "headers do not fit RabbitMQ's frame of %zu bytes", reason, detail,
		        fw_excerpt(&x, topic, tlen), alink_frame_max(f->amqp));
		return 0;
	}
	if (ctrack_reserve(&f->gate->track, (size_t)ctrack_span(&f->gate->track) + 1) != 0) {
		log_error("bridge: out of memory");
		gate_poison(f->gate);
		return -1;
	}
	if (alink_publish(f->amqp, dlx, dlx_len, key, klen, &props, body, len, &tag) != 0) {
		gate_poison(f->gate);
		return -1;
	}
	if (ctrack_add(&f->gate->track, ctrack_key_hash(dlx, dlx_len, key, klen), topic, tlen,
	               true) != tag) {
		log_error("bridge: confirm bookkeeping lost track of delivery tag %" PRIu64, tag);
		alink_fail(f->amqp, "internal error in confirm bookkeeping");
		return -1;
	}
	fw_tracked(f, tag, fp, (uint32_t)stats_dead_index(reason));
	return 0;
}

/*
 * The largest body RabbitMQ takes: amqp.max_message_size, or RabbitMQ's own
 * limit once a refusal told it and it is lower (then *brokers is set).
 */
static int64_t fw_max_body(const struct forward *f, bool *brokers)
{
	int64_t max = fw_amqp_cfg(f)->max_message_size;
	bool learnt = f->broker_max_size > 0 && f->broker_max_size < max;

	if (brokers)
		*brokers = learnt;
	return learnt ? f->broker_max_size : max;
}

/*
 * A copy refused before publishing: dead-letter it or, without a
 * dead-letter exchange (or with `drop`), drop and count it.  The log line
 * leads with the reason and its sizes; a long topic is cut, never them.
 * Returns -1 when the AMQP link failed.
 */
static int fw_undeliverable(struct forward *f, uint64_t fp, const struct mosquitto_message *msg,
                            size_t tlen, const char *exchange, size_t exlen, const char *key,
                            size_t klen, const char *reason, const char *detail, bool drop)
{
	const char *dlx = fw_amqp_cfg(f)->dead_letter_exchange;
	/* A body over the limit would be refused on the dead-letter exchange too. */
	bool keep_body = (int64_t)msg->payloadlen <= fw_max_body(f, NULL);
	struct fw_excerpt x;

	if (dlx && !drop) {
		fw_warn(f, "bridge: undeliverable message (%s: %s) on '%s': sending it to dead-letter "
		        "exchange '%s'", reason, detail, fw_excerpt(&x, msg->topic, tlen), dlx);
		return fw_dead_letter(f, fp, msg->topic, tlen, exchange, exlen, key, klen, reason,
		                      detail, msg->qos > 0, keep_body ? msg->payload : NULL,
		                      keep_body ? (size_t)msg->payloadlen : 0);
	}
	stats_drop(f->stats, STATS_DROP_UNDELIVERABLE);
	fw_warn(f, "bridge: dropped an undeliverable message (%s: %s) on '%s': %s", reason, detail,
	        fw_excerpt(&x, msg->topic, tlen),
	        dlx ? "its dead-letter copy failed as well" : "no dead-letter exchange is configured");
	return 0;
}

/*
 * Publishes one copy of `msg` as route.h says.  The copy's fingerprint is the
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
static int fw_forward(struct forward *f, const struct mosquitto_message *msg,
                      const mosquitto_property *mprops, bool dup, uint64_t msg_fp, size_t tlen,
                      const struct route_copy *c)
{
	const struct amqp_settings *ac = fw_amqp_cfg(f);
	const struct bridge_settings *bs = &f->cfg->bridge;
	const char *exchange = c->exchange;
	size_t exlen = c->exchange_len;
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

	route_props_input(&in, bs, c, msg, tlen, mprops, dup);
	tr = route_key(c, bs, msg->topic, tlen, key, &klen);
	if (tr != TOPIC_OK && tr != TOPIC_ERR_TOO_LONG) {
		snprintf(detail, sizeof(detail), "%s", topic_strerror(tr));
		return fw_undeliverable(f, msg_fp, msg, tlen, exchange, exlen, NULL, 0, "invalid-topic",
		                        detail, false);
	}
	if (props_build(&f->props, &in, &props) != 0) {
		log_error("bridge: out of memory");
		gate_poison(f->gate);
		return -1;
	}
	kh = ctrack_key_hash(exchange, exlen, key, tr == TOPIC_OK ? klen : 0);
	/* 0 with the guard off: nothing is fingerprinted then. */
	fp = msg_fp ? ctrack_fingerprint_add(ctrack_fingerprint_add(msg_fp, props_hash(&props)), kh)
	            : 0;
	verdict = guard_verdict(&f->gate->guard, fp);
	if (verdict != GUARD_FORWARD) {
		struct fw_excerpt x;

		if (!f->gate->guard.logged)
			log_error("bridge: the message on '%s' (%d bytes) was at the head of %u AMQP "
			          "failures in a row (bridge.poison_failures = %d; the last: %s); %s",
			          fw_excerpt(&x, msg->topic, tlen), msg->payloadlen, f->gate->guard.failures,
			          bs->poison_failures, f->gate->guard.why,
			          verdict == GUARD_DROP ? "its dead-letter copy failed as often: dropping it"
			          : ac->dead_letter_exchange ? "setting it aside as poison"
			          : "dropping it as poison: no dead-letter exchange is configured");
		f->gate->guard.logged = true;
		return fw_undeliverable(f, fp, msg, tlen, exchange, exlen, tr == TOPIC_OK ? key : NULL,
		                        tr == TOPIC_OK ? klen : 0, "poison", f->gate->guard.why,
		                        verdict == GUARD_DROP);
	}
	lim.frame_max = alink_frame_max(f->amqp);
	lim.max_body = fw_max_body(f, &lim.brokers_max_body);
	/* rabbitmq-c would send the method frame and then fail on the content header. */
	reason = props_check(&lim, klen, (uint64_t)msg->payloadlen, &props, detail, sizeof(detail));
	if (reason)
		return fw_undeliverable(f, fp, msg, tlen, exchange, exlen, tr == TOPIC_OK ? key : NULL,
		                        tr == TOPIC_OK ? klen : 0, reason, detail, false);
	f->publishing_fp = fp;
	rc = alink_publish(f->amqp, exchange, exlen, key, klen, &props, msg->payload,
	                   (size_t)msg->payloadlen, &tag);
	f->publishing_fp = 0;
	if (rc != 0) {
		gate_poison(f->gate);
		return -1;
	}
	if (ctrack_add(&f->gate->track, kh, msg->topic, tlen, false) != tag) {
		log_error("bridge: confirm bookkeeping lost track of delivery tag %" PRIu64, tag);
		gate_poison(f->gate);
		alink_fail(f->amqp, "internal error in confirm bookkeeping");
		return -1;
	}
	fw_tracked(f, tag, fp, c->rule ? f->rule_counter[c->rule->index - 1] : f->main_counter);
	return 0;
}

/*
 * What rule `r` (NULL: no rule matched) did with a message: counted as the
 * rule's match, and logged at level debug; in JSON with `action`, `topic`,
 * and `rule` (its position), `rule_line` and `rule_name` when a rule
 * decided.  Without debug, nothing more is done per message.
 */
static void fw_decided(struct forward *fw, const struct rule *r, bool drop, const char *topic)
{
	if (r)
		fw->stats->rules[r->index - 1].matches++;
	if (log_get_level() < LOG_LVL_DEBUG)
		return;
	const struct log_field f[] = {
		LOG_STR("action", drop ? "drop" : "forward"),
		LOG_STR("topic", topic),
		LOG_U64("rule", r ? r->index : 0),
		LOG_I64("rule_line", r ? r->line : 0),
		/* As the metrics label it: null without a name. */
		LOG_STR("rule_name", r ? r->name : NULL),
	};

	/* Without a rule, the first two only. */
	if (r == NULL)
		log_kv(LOG_LVL_DEBUG, f, 2, "bridge: dropped the message on '%s': no rule matches it",
		       topic);
	else
		log_kv(LOG_LVL_DEBUG, f, LOG_NFIELDS(f), "bridge: rule %zu (line %d) %s the message "
		       "on '%s'", r->index, r->line, drop ? "drops" : "forwards", topic);
}

/*
 * Every rule that applies gets its copy, in rule order; a drop rule (or the
 * unmatched default "drop") ends the message, counted as dropped when no
 * copy was sent.
 */
void fw_on_message(void *arg, const struct mosquitto_message *msg,
                   const mosquitto_property *mprops, bool dup)
{
	struct forward *f = arg;
	struct route *rt = &f->route;
	size_t tlen = strlen(msg->topic);
	uint64_t fp;

	gate_read(f->gate);
	/* Its PUBACK can never leave now: the connection is dropped before the next poll. */
	if (f->gate->poisoned)
		return;
	f->stats->received++;
	/* A QoS 0 message has no PUBACK to hold. */
	if (msg->qos > 0)
		stats_read_at(f->stats, loop_time_us());
	route_message(rt, f->cfg, msg->topic, tlen);
	/* Room for each copy and, should it be returned, its dead-letter copy. */
	if (ctrack_reserve(&f->gate->track, (size_t)ctrack_span(&f->gate->track) + 2 * rt->n + 2) != 0) {
		log_error("bridge: out of memory");
		gate_poison(f->gate);
		return;
	}
	/* The poison guard's fingerprint, only when the guard is on (it hashes the payload). */
	fp = f->gate->guard.threshold == 0 || rt->n == 0 ? 0
	     : ctrack_fingerprint(msg->topic, tlen, msg->payload, (size_t)msg->payloadlen);
	for (size_t i = 0; i < rt->n; i++) {
		struct route_copy c;

		route_copy(rt, f->cfg, i, &c);
		if (c.rule)
			fw_decided(f, c.rule, false, msg->topic);
		if (fw_forward(f, msg, mprops, dup, fp, tlen, &c) != 0)
			return;
	}
	if (rt->end != ROUTE_COPIES)
		fw_decided(f, rt->end == ROUTE_DROP_RULE ? rt->drop : NULL, true, msg->topic);
	if (rt->end != ROUTE_COPIES && rt->n == 0)
		stats_drop(f->stats, rt->end == ROUTE_DROP_RULE ? STATS_DROP_RULE : STATS_DROP_UNMATCHED);
}

static void fw_add_counts(struct forward *f, const struct ctrack_counts *c)
{
	/* Forwarded copies are counted by exchange, in fw_settled(). */
	f->stats->dead_lettered += c->dead_lettered;
	f->stats->drops[STATS_DROP_UNDELIVERABLE] += c->dropped;
	f->stats->nacked += c->nacked;
}

/* Each copy confirmed: its exchange's or reason's counter, and how long the confirm took. */
static void fw_settled(void *arg, const struct ctrack_entry *e, bool ack)
{
	struct stats *s = arg;

	if (!ack)
		return;
	if (e->fate == CT_FATE_FORWARDED)
		s->ex[e->counter].forwarded++;
	else if (e->fate == CT_FATE_DEADLETTERED && e->counter < STATS_DEAD_N)
		s->dead[e->counter]++;
	hist_observe_us(&s->confirm, loop_time_us() - e->sent_us);
}

void fw_on_ack(void *arg, uint64_t tag, bool multiple)
{
	struct forward *f = arg;
	struct ctrack_counts c = { .each = fw_settled, .arg = f->stats };

	if (gate_ack(f->gate, tag, multiple, &c) < 0) {
		log_error("amqp: basic.ack for unknown delivery tag %" PRIu64, tag);
		alink_fail(f->amqp, "protocol error: confirm for an unknown delivery tag");
		return;
	}
	fw_add_counts(f, &c);
}

void fw_on_nack(void *arg, uint64_t tag, bool multiple)
{
	struct forward *f = arg;
	struct ctrack_counts c = { 0 };
	int n = gate_nack(f->gate, tag, multiple, &c);

	if (n < 0) {
		log_error("amqp: basic.nack for unknown delivery tag %" PRIu64, tag);
		alink_fail(f->amqp, "protocol error: nack for an unknown delivery tag");
		return;
	}
	fw_add_counts(f, &c);
	fw_warn(f, "amqp: RabbitMQ refused %d message(s) (basic.nack, e.g. a full queue with "
	        "reject-publish, or a quorum queue whose leader was lost); the MQTT broker will "
	        "redeliver them once the bridge has reconnected", n);
	/* What the channel refuses it may go on refusing (alink_reopen()). */
	alink_reopen(f->amqp, "RabbitMQ refused a message (basic.nack): reconnecting for a new "
	             "channel");
	/* After the down handler, which words it as a failure. */
	snprintf(f->drop_why, sizeof(f->drop_why), "RabbitMQ refused a message");
}

void fw_on_returned(void *arg, const struct alink_return *r)
{
	struct forward *f = arg;
	const char *dlx = fw_amqp_cfg(f)->dead_letter_exchange;
	struct ctrack_entry *e;
	struct fw_excerpt x;
	char detail[320];

	e = ctrack_find_return(&f->gate->track, ctrack_key_hash(r->exchange, r->exchange_len,
	                                                  r->routing_key, r->routing_key_len));
	if (!e) {
		log_warn("amqp: a returned message (exchange '%s', routing key '%s') matches no "
		         "message in flight", r->exchange, r->routing_key);
		return;
	}
	if (e->deadletter || !dlx) {
		e->fate = CT_FATE_DROPPED;
		fw_warn(f, "bridge: dropped an undeliverable message (unroutable: %d %s on exchange "
		        "'%s') on '%s'%s", r->reply_code, r->reply_text, r->exchange,
		        fw_excerpt(&x, e->topic, strlen(e->topic)),
		        dlx ? "" : ": no dead-letter exchange is configured");
		return;
	}
	/* The dead-letter copy counts once it is confirmed; the original counts nothing. */
	e->fate = CT_FATE_NONE;
	snprintf(detail, sizeof(detail), "%d %s", r->reply_code, r->reply_text);
	fw_warn(f, "bridge: undeliverable message (unroutable: %s on exchange '%s') on '%s': "
	        "sending it to dead-letter exchange '%s'", detail, r->exchange,
	        fw_excerpt(&x, e->topic, strlen(e->topic)), dlx);
	fw_dead_letter(f, e->fp, e->topic, strlen(e->topic), r->exchange, r->exchange_len,
	               r->routing_key, r->routing_key_len, "unroutable", detail,
	               r->delivery_mode == 2, r->body, r->body_len);
}

/*
 * A 406 that gives a message's size and RabbitMQ's max_message_size
 * ("message size 2000000 is larger than configured max size 1000000"): the
 * limit is learnt, and the redelivered message is then dead-lettered as
 * too-large before it is published again.  Returns whether `why` was one.
 */
static bool fw_learn_size_limit(struct forward *f, const struct alink_failure *why)
{
	long long size, max;

	if (why->cause != AL_CAUSE_CHANNEL_CLOSED || why->code != 406 ||
	    !guard_size_refusal(why->text, &size, &max))
		return false;
	/* Nothing new (a limit already known): the poison guard judges it like any 406. */
	if (max >= fw_max_body(f, NULL))
		return false;
	f->broker_max_size = max;
	log_warn("bridge: RabbitMQ refused a message of %lld bytes: its max_message_size is %lld, "
	         "below amqp.max_message_size (%" PRId64 "); larger messages are dead-lettered as "
	         "too-large from now on (set amqp.max_message_size to RabbitMQ's limit; a reload "
	         "forgets the learnt one)", size, max, fw_amqp_cfg(f)->max_message_size);
	return true;
}

/*
 * The poison guard's count, on an AMQP failure with messages in flight.
 * Called before the confirm bookkeeping is reset.  After a counted failure
 * the redelivered batch is forwarded one at a time, and beyond it twice
 * mqtt.inflight_max more: the broker may first deliver again messages read
 * before the batch whose PUBACKs it had not read when the connection went.
 */
void fw_judge_failure(struct forward *f)
{
	const struct alink_failure *why = &f->amqp->failure;
	const struct ctrack_entry *head = ctrack_head(&f->gate->track);
	uint64_t fp = why->cause == AL_CAUSE_PUBLISH && f->publishing_fp ? f->publishing_fp
	              : head ? head->fp : 0;
	const char *topic = head && fp == head->fp ? head->topic : NULL;
	bool counts;
	struct fw_excerpt x;

	counts = fp != 0 && !fw_learn_size_limit(f, why) &&
	         guard_names_message(why->cause == AL_CAUSE_CHANNEL_CLOSED ||
	                             why->cause == AL_CAUSE_CONNECTION_CLOSED,
	                             why->code, why->text, why->cause == AL_CAUSE_PUBLISH);
	if (!guard_on_failure(&f->gate->guard, fp, counts, why->text, f->gate->unflushed,
	                      2 * (uint64_t)f->cfg->mqtt.inflight_max))
		return;
	log_warn("bridge: the AMQP failure named a message; %s%s%s is the suspect (%u of %u "
	         "failures in a row before it is set aside as poison); forwarding the next %"
	         PRIu64 " message(s) one at a time", topic ? "the message on '" : "the message being "
	         "published", topic ? fw_excerpt(&x, topic, strlen(topic)) : "", topic ? "'" : "",
	         f->gate->guard.failures, f->gate->guard.threshold, f->gate->guard.probe_left);
}

int fw_init(struct forward *f, const struct bridge_config *cfg, struct gate *gate,
            struct alink *amqp, struct stats *stats)
{
	memset(f, 0, sizeof(*f));
	f->cfg = cfg;
	f->gate = gate;
	f->amqp = amqp;
	f->stats = stats;
	props_init(&f->props);
	route_init(&f->route);
	if (fw_configure(f, cfg) != 0) {
		fw_fini(f);
		return -1;
	}
	return 0;
}

void fw_fini(struct forward *f)
{
	props_fini(&f->props);
	route_fini(&f->route);
	free(f->rule_counter);
	f->rule_counter = NULL;
}

/*
 * The counters `cfg` names: the exchanges' (kept from every configuration
 * since the start), the rules' (carried over by label) and the read times'
 * room.  Returns 0, or -1 when memory ran out (what is counted is as before).
 */
static int fw_counters(struct forward *f, const struct bridge_config *cfg)
{
	size_t n = rules_count(cfg->rules);
	uint32_t *rc = calloc(n ? n : 1, sizeof(*rc));
	int mx = stats_exchange(f->stats, cfg->amqp.exchange);

	if (!rc || mx < 0)
		goto oom;
	for (size_t i = 0; i < n; i++) {
		const struct rule *r = rules_at(cfg->rules, i);
		int x = stats_exchange(f->stats, r->exchange ? r->exchange : cfg->amqp.exchange);

		if (x < 0)
			goto oom;
		rc[i] = (uint32_t)x;
	}
	if (stats_holdq_reserve(f->stats, (uint64_t)cfg->mqtt.inflight_max) != 0 ||
	    stats_set_rules(f->stats, cfg->rules) != 0)
		goto oom;
	free(f->rule_counter);
	f->rule_counter = rc;
	f->main_counter = (uint32_t)mx;
	return 0;
oom:
	free(rc);
	return -1;
}

int fw_configure(struct forward *f, const struct bridge_config *cfg)
{
	if (route_reserve(&f->route, cfg->rules) != 0 || fw_counters(f, cfg) != 0)
		return -1;
	f->cfg = cfg;
	/* RabbitMQ's limit may have been raised meanwhile; it is learnt again if not. */
	f->broker_max_size = 0;
	return 0;
}
