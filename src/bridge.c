#include "bridge.h"

#include <errno.h>
#include <inttypes.h>
#include <malloc.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "forward.h"
#include "log.h"
#include "procstat.h"
#include "scrape.h"

static const char *const state_names[] = { "running", "restarting", "draining", "done" };

const char *bridge_state_name(enum bridge_state s)
{
	return state_names[s];
}

/* The one place the bridge's lifecycle changes. */
static void br_enter(struct bridge *b, enum bridge_state s, const char *why)
{
	if (b->state == s)
		return;
	log_info("bridge: %s -> %s (%s)", state_names[b->state], state_names[s], why);
	b->state = s;
	/*
	 * Outside RUNNING MQTT does not reconnect, and nothing new is read
	 * once the downlink has its PUBACKs: they come on the same socket as
	 * new messages, which are forwarded as usual meanwhile (gate.h).
	 */
	gate_hold(&b->gate, s != BR_RUNNING);
	if (s == BR_DONE)
		b->loop.stop = true;
}

/*
 * Publishes are queued and written by the loop, never waited for; reading
 * from MQTT pauses while a batch's worth waits because RabbitMQ stopped
 * reading, which bounds that queue (by a batch and one message more).
 */
static bool br_send_room(const struct bridge *b)
{
	return !alink_backlogged(&b->amqp);
}

/*
 * Asks the gate and tells MQTT what it may do.  `settle` also carries out
 * a drop or a close; inside a library callback (a message being read) only
 * the allowances change, and the rest waits for the next poll.
 */
static void br_decide(struct bridge *b, bool settle)
{
	struct gate_decision d;

	gate_decide(&b->gate, br_send_room(b), &d);
	if (settle && d.drop) {
		/* What the gate allows now decides how the dropped link comes back. */
		mlink_allow(&b->mqtt, 0, false, d.connect);
		mlink_drop(&b->mqtt, b->fw.drop_why[0] ? b->fw.drop_why : "a message could not be forwarded");
		b->fw.drop_why[0] = '\0';
		gate_decide(&b->gate, br_send_room(b), &d);
	} else if (settle && d.close) {
		mlink_drain(&b->mqtt);
	}
	mlink_allow(&b->mqtt, d.read, d.flush, d.connect);
}

/*
 * Tells the service manager which sides are up, as the links' states say
 * (each link changes its state before calling its handler).  Once
 * draining, the STOPPING=1 status stays.
 */
static void br_status(struct bridge *b)
{
	/* The addresses in use, or tried next. */
	const char *mc = mlink_node(&b->mqtt)->name, *ac = alink_node(&b->amqp)->name;
	bool mqtt_up = b->mqtt.state == ML_ACTIVE;
	const char *mq = mqtt_up ? "up" : "down";

	if (b->state == BR_DRAINING || b->state == BR_DONE)
		return;
	if (b->amqp.state != AL_READY && b->amqp.state != AL_BLOCKED)
		notify_status(&b->notify, "waiting for RabbitMQ: MQTT %s %s, AMQP %s down", mc, mq, ac);
	else if (b->amqp.state == AL_BLOCKED)
		notify_status(&b->notify, "paused: RabbitMQ blocked publishing: MQTT %s %s, "
		              "AMQP %s blocked", mc, mq, ac);
	else if (!mqtt_up)
		notify_status(&b->notify, "waiting for MQTT: MQTT %s down, AMQP %s up", mc, ac);
	else
		notify_status(&b->notify, "forwarding: MQTT %s up, AMQP %s up", mc, ac);
}

static void br_on_amqp_up(void *arg)
{
	struct bridge *b = arg;

	br_status(b);
	b->stats.amqp_connects++;
	gate_amqp_up(&b->gate);
}

static void br_on_amqp_down(void *arg)
{
	struct bridge *b = arg;
	size_t n = gate_outstanding(&b->gate);

	fw_judge_failure(&b->fw);
	br_status(b);
	snprintf(b->fw.drop_why, sizeof(b->fw.drop_why), "the AMQP connection failed with %zu message(s) "
	         "unconfirmed", n);
	/* The MQTT connection is dropped (or closed, with nothing in doubt) before the next poll. */
	gate_amqp_down(&b->gate);
}

/*
 * A link on a standby address found the first one answering again: the
 * way back is a restart (bridge.h), the one a reload takes, so nothing in
 * flight is lost or acknowledged twice; a restart under way takes it
 * along.  Draining, the bridge is about to stop.
 */
static void br_on_primary_back(struct bridge *b, bool *flag, const char *why)
{
	if (b->state != BR_RUNNING && b->state != BR_RESTARTING)
		return;
	if (!*flag)
		log_info("bridge: %s: moving back to it once the messages in flight are confirmed",
		         why);
	*flag = true;
	br_enter(b, BR_RESTARTING, why);
}

static void br_on_amqp_primary_back(void *arg)
{
	struct bridge *b = arg;

	br_on_primary_back(b, &b->primary_amqp, "the first RabbitMQ address answers again");
}

static void br_on_mqtt_primary_back(void *arg)
{
	struct bridge *b = arg;

	br_on_primary_back(b, &b->primary_mqtt, "the first MQTT address answers again");
}

static void br_on_blocked(void *arg, bool blocked)
{
	struct bridge *b = arg;

	br_status(b);
	gate_amqp_blocked(&b->gate, blocked);
}

/* A message was read: the gate's allowances change at once, the rest waits. */
static void br_on_message(void *arg, const struct mosquitto_message *msg,
                          const mosquitto_property *mprops, bool dup)
{
	struct bridge *b = arg;

	fw_on_message(&b->fw, msg, mprops, dup);
	alink_write(&b->amqp, true);
	br_decide(b, false);
}

static void br_on_ack(void *arg, uint64_t tag, bool multiple)
{
	struct bridge *b = arg;

	fw_on_ack(&b->fw, tag, multiple);
}

static void br_on_nack(void *arg, uint64_t tag, bool multiple)
{
	struct bridge *b = arg;

	fw_on_nack(&b->fw, tag, multiple);
}

static void br_on_returned(void *arg, const struct alink_return *r)
{
	struct bridge *b = arg;

	fw_on_returned(&b->fw, r);
}

static void br_on_delivery(void *arg, const struct acons_delivery *dv)
{
	struct bridge *b = arg;

	dlink_on_delivery(&b->dl, dv);
}

static void br_on_consuming(void *arg)
{
	struct bridge *b = arg;

	dlink_on_consuming(&b->dl);
}

static void br_on_consumer_closed(void *arg, const char *why, bool queue_gone)
{
	struct bridge *b = arg;

	dlink_on_closed(&b->dl, why, queue_gone);
}

static void br_on_published(void *arg, int mid, int reason)
{
	struct bridge *b = arg;

	dlink_on_published(&b->dl, mid, reason);
}

static void br_on_mqtt_connecting(void *arg)
{
	struct bridge *b = arg;

	gate_mqtt_up(&b->gate);
	b->fw.drop_why[0] = '\0';
}

/* PUBACKs are going out: the cap counts from zero again, so reading may resume at once. */
static uint64_t br_on_mqtt_flushed(void *arg)
{
	struct bridge *b = arg;
	uint64_t n = gate_flushed(&b->gate);

	stats_flushed_at(&b->stats, loop_time_us());
	br_decide(b, false);
	return n;
}

static void br_on_mqtt_up(void *arg)
{
	struct bridge *b = arg;

	log_info("bridge: forwarding");
	br_status(b);
}

static void br_on_mqtt_down(void *arg)
{
	struct bridge *b = arg;
	uint64_t n = gate_mqtt_down(&b->gate);

	stats_unread(&b->stats);
	if (n > 0)
		log_info("bridge: the MQTT broker will redeliver the %" PRIu64 " message(s) read "
		         "since the last flush", n);
	br_status(b);
}

bool bridge_ready(const struct bridge *b, char *why, size_t size)
{
	const struct ctrack_entry *head = ctrack_head(&b->gate.track);
	uint64_t age_us = head ? loop_time_us() - head->sent_us : 0;
	size_t len = 0;

#define WHY(...)                                                                        \
	len += (size_t)snprintf(why + len, len < size ? size - len : 0, "not ready: " __VA_ARGS__)
	why[0] = '\0';
	if (b->state == BR_DRAINING || b->state == BR_DONE)
		WHY("draining: the bridge is stopping\n");
	else if (b->state == BR_RESTARTING)
		WHY("restarting: reconnecting once the messages in flight are confirmed\n");
	if (b->amqp.state == AL_BLOCKED)
		WHY("RabbitMQ %s blocks publishing (connection.blocked)\n", alink_node(&b->amqp)->name);
	else if (b->amqp.state != AL_READY)
		WHY("RabbitMQ %s is down\n", alink_node(&b->amqp)->name);
	if (b->mqtt.state != ML_ACTIVE)
		WHY("MQTT %s is down\n", mlink_node(&b->mqtt)->name);
	if (age_us > BRIDGE_STALL_MS * 1000u && b->amqp.state == AL_READY)
		WHY("RabbitMQ has not confirmed a publish made %" PRIu64 " ms ago (%zu waiting)\n",
		    age_us / 1000u, gate_outstanding(&b->gate));
#undef WHY
	return len == 0;
}

static void br_reply_text(struct http_reply *r, unsigned status, const char *text)
{
	r->status = status;
	r->body = (char *)text;
	r->len = strlen(text);
	r->owned = false;
}

/* The answers of the HTTP endpoint (http.h): GET or HEAD on three paths. */
static void br_http_route(void *arg, const char *method, const char *path, struct http_reply *r)
{
	struct bridge *b = arg;
	static char why[1024];
	bool known = strcmp(path, "/metrics") == 0 || strcmp(path, "/healthz") == 0 ||
	             strcmp(path, "/readyz") == 0;

	if (!known) {
		br_reply_text(r, 404, "not found: the paths are /metrics, /healthz and /readyz\n");
	} else if (strcmp(method, "GET") != 0 && strcmp(method, "HEAD") != 0) {
		br_reply_text(r, 405, "method not allowed: GET or HEAD\n");
		r->allow = "GET, HEAD";
	} else if (strcmp(path, "/healthz") == 0) {
		/* Answered from the loop: it turns. */
		br_reply_text(r, 200, "ok\n");
	} else if (strcmp(path, "/readyz") == 0) {
		if (bridge_ready(b, why, sizeof(why)))
			br_reply_text(r, 200, "ready\n");
		else
			br_reply_text(r, 503, why);
	} else {
		struct scrape_view v = {
			.stats = &b->stats, .gate = &b->gate, .mqtt = &b->mqtt, .amqp = &b->amqp,
			.dl = &b->dl,
			.ready = bridge_ready(b, why, sizeof(why)),
			.inflight_max = (uint64_t)b->cfg->mqtt.inflight_max,
		};
		struct expo e;

		expo_init(&e);
		scrape_write(&v, &e);
		r->body = expo_take(&e, &r->len);
		if (!r->body) {
			br_reply_text(r, 500, "out of memory\n");
			return;
		}
		r->owned = true;
		r->status = 200;
		r->content_type = "text/plain; version=0.0.4; charset=utf-8";
	}
}

/* Connections after the first. */
static uint64_t reconnects(uint64_t connects)
{
	return connects > 0 ? connects - 1 : 0;
}

/* The JSON fields are the text's counters, under the same names, as numbers. */
void bridge_log_stats(const struct bridge *b)
{
	const struct stats *s = &b->stats;
	uint64_t mqtt_reconnects = reconnects(b->mqtt.connects);
	uint64_t amqp_reconnects = reconnects(s->amqp_connects);
	const char *mqtt_node = mlink_node(&b->mqtt)->name, *amqp_node = alink_node(&b->amqp)->name;
	struct dlink_counts dl;
	uint64_t dl_rejected = 0;

	dlink_totals(&b->dl, &dl);
	for (int i = 0; i < DL_REJ_N; i++)
		dl_rejected += dl.rejected[i];
	const struct log_field f[] = {
		LOG_U64("received", s->received),
		LOG_U64("redelivered", b->gate.redelivered),
		LOG_U64("forwarded", stats_forwarded(s)),
		LOG_U64("dead_lettered", s->dead_lettered),
		LOG_U64("dropped", stats_dropped(s)),
		LOG_U64("nacked", s->nacked),
		LOG_U64("mqtt_reconnects", mqtt_reconnects),
		LOG_U64("amqp_reconnects", amqp_reconnects),
		LOG_STR("mqtt_node", mqtt_node),
		LOG_STR("amqp_node", amqp_node),
		LOG_U64("down_received", dl.received),
		LOG_U64("down_published", dl.published),
		LOG_U64("down_rejected", dl_rejected),
		LOG_U64("down_requeued", dl.requeued),
	};

	log_kv(LOG_LVL_INFO, f, LOG_NFIELDS(f), "stats: received=%" PRIu64 " redelivered=%" PRIu64
	       " forwarded=%" PRIu64 " dead_lettered=%" PRIu64 " dropped=%" PRIu64 " nacked=%" PRIu64
	       " mqtt_reconnects=%" PRIu64 " amqp_reconnects=%" PRIu64 " mqtt_node=%s amqp_node=%s"
	       " down_received=%" PRIu64 " down_published=%" PRIu64 " down_rejected=%" PRIu64
	       " down_requeued=%" PRIu64,
	       s->received, b->gate.redelivered, stats_forwarded(s), s->dead_lettered, stats_dropped(s),
	       s->nacked, mqtt_reconnects, amqp_reconnects, mqtt_node, amqp_node, dl.received,
	       dl.published, dl_rejected, dl.requeued);
}

/*
 * Ends the run.  `graceful` closes AMQP with its handshakes; after a drain
 * timeout RabbitMQ is not answering, and waiting for it would only delay
 * the exit.
 */
static void br_finish(struct bridge *b, bool graceful, const char *why)
{
	if (b->state == BR_DONE)
		return;
	loop_timer_disarm(&b->loop, &b->drain_timer);
	alink_stop(&b->amqp, graceful);
	br_enter(b, BR_DONE, why);
}

static void br_on_drain_timeout(void *arg)
{
	struct bridge *b = arg;

	log_warn("bridge: drain timeout after %d s: %zu message(s) still unconfirmed, which the MQTT "
	         "broker will redeliver; %zu downlink message(s) without a PUBACK, which go back to "
	         "their queues", b->cfg->bridge.drain_timeout, gate_outstanding(&b->gate),
	         b->dl.in_flight);
	mlink_drop(&b->mqtt, "drain timeout");
	br_finish(b, false, "drain timeout");
}

static void br_apply_logging(struct bridge *b)
{
	if (!b->log_level_forced)
		log_set_level(b->cfg->bridge.log_level);
	log_set_target(b->cfg->bridge.log_target);
	log_set_format(b->cfg->bridge.log_format);
}

static double br_wall_clock(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_REALTIME, &ts);
	return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

static void br_reload_done(struct bridge *b, bool ok)
{
	if (ok) {
		b->stats.reloads++;
		b->stats.last_reload_s = br_wall_clock();
	} else {
		b->stats.reload_failures++;
	}
	b->stats.last_reload_ok = ok;
}

/*
 * Serves `want` ("ADDRESS:PORT", NULL for nothing) unless it is served
 * already.  When the new address cannot be listened on, perhaps because
 * the old one holds its port ("0.0.0.0:P" after "127.0.0.1:P"), the old
 * listener makes way and the new one is tried again; if that fails too,
 * the old one comes back.  Returns 0, or -1 with the reason in `err`.
 */
static int br_http_serve(struct bridge *b, const char *want, char err[HTTP_ERR_MAX])
{
	char before[sizeof(b->http.addr)], again[HTTP_ERR_MAX];

	snprintf(before, sizeof(before), "%s", b->http.addr);
	if (strcmp(want ? want : "", before) == 0)
		return 0;
	if (!want) {
		http_stop(&b->http);
		log_info("http: stopped serving on %s (bridge.http_listen is gone)", before);
		return 0;
	}
	if (http_start(&b->http, want, err) != 0) {
		if (!before[0])
			return -1;
		http_stop(&b->http);
		if (http_start(&b->http, want, again) != 0) {
			if (http_start(&b->http, before, again) != 0)
				log_error("http: cannot serve on %s again either: %s", before, again);
			return -1;
		}
	}
	log_info("http: serving /metrics, /healthz and /readyz on %s", want);
	return 0;
}

/*
 * SIGHUP.  Loads the file anew; on any error logs every one and keeps the
 * configuration in force.  Otherwise the new rules take over from the next
 * message read (messages in flight keep their copies and confirms),
 * subscriptions change by difference, and a side whose settings changed is
 * drained and then reconnected by br_restart().
 */
static void br_reload(struct bridge *b)
{
	/* In JSON, every reload's end carries `event`, and `errors` when the file was read. */
	static const struct log_field oom[] = { LOG_STR("event", "reload_failed") };
	char err[HTTP_ERR_MAX];
	struct bridge_config *old = b->cfg, *cfg;
	struct config_errors errs;
	unsigned diff;

	if (b->state == BR_RESTARTING) {
		log_info("bridge: reload requested; it follows the reconnect of the previous reload");
		b->reload_pending = true;
		return;
	}
	log_info("bridge: reloading %s", old->path);
	cfg = calloc(1, sizeof(*cfg));
	if (!cfg) {
		log_kv(LOG_LVL_ERROR, oom, LOG_NFIELDS(oom), "bridge: reload failed: out of memory; "
		       "still running on the previous configuration");
		br_reload_done(b, false);
		return;
	}
	config_errors_init(&errs);
	if (config_load(old->path, cfg, &errs) != 0) {
		const struct log_field f[] = {
			LOG_STR("event", "reload_failed"),
			LOG_U64("errors", errs.n),
		};

		for (size_t i = 0; i < errs.n; i++)
			log_error("%s", errs.msg[i]);
		log_kv(LOG_LVL_ERROR, f, LOG_NFIELDS(f), "bridge: reload failed: %zu error(s) in %s; "
		       "still running on the previous configuration", errs.n, old->path);
		config_errors_free(&errs);
		free(cfg);
		br_reload_done(b, false);
		return;
	}
	config_errors_free(&errs);
	for (size_t i = 0; i < cfg->n_warnings; i++)
		log_warn("%s", cfg->warnings[i]);
	diff = config_diff(old, cfg);
	/* First what can fail, so that a reload takes effect whole or not at all. */
	if (br_http_serve(b, cfg->bridge.http_listen, err) != 0) {
		log_kv(LOG_LVL_ERROR, oom, LOG_NFIELDS(oom), "bridge: reload failed: http: %s; still "
		       "running on the previous configuration", err);
		config_free(cfg);
		free(cfg);
		br_reload_done(b, false);
		return;
	}
	if (fw_configure(&b->fw, cfg) != 0) {
		log_kv(LOG_LVL_ERROR, oom, LOG_NFIELDS(oom), "bridge: reload failed: out of memory; "
		       "still running on the previous configuration");
		if (br_http_serve(b, old->bridge.http_listen, err) != 0)
			log_error("http: %s", err);
		config_free(cfg);
		free(cfg);
		br_reload_done(b, false);
		return;
	}
	b->cfg = cfg;
	br_reload_done(b, true);
	gate_configure(&b->gate, (uint64_t)cfg->mqtt.inflight_max,
	               (unsigned)cfg->bridge.poison_failures);
	br_apply_logging(b);
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
		/* The same downlink (it is part of what AMQP sets up): only the pointers move. */
		dlink_configure(&b->dl, cfg);
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
			{ CFG_DIFF_AMQP, "amqp settings, topology or downlink changed: reconnecting AMQP "
			                 "once the messages in flight are confirmed" },
		};
		const struct log_field f[] = {
			LOG_STR("event", "reloaded"),
			LOG_U64("errors", 0),
		};
		char what[512] = "nothing changed";
		size_t len = 0;

		for (size_t i = 0; i < sizeof(changes) / sizeof(changes[0]); i++)
			if (diff & changes[i].flag)
				len += (size_t)snprintf(what + len, len < sizeof(what) ? sizeof(what) - len : 0,
				                        "%s%s", len ? "; " : "", changes[i].what);
		log_kv(LOG_LVL_INFO, f, LOG_NFIELDS(f), "bridge: reloaded %s: %s", cfg->path, what);
	}
	if (b->restart_mqtt || b->restart_amqp) {
		/* A link still points into the old configuration until it restarts. */
		b->retired = old;
		br_enter(b, BR_RESTARTING, "connection settings changed");
	} else {
		config_free(old);
		free(old);
	}
	/* As at start-up: parsing leaves freed holes that glibc would keep. */
	malloc_trim(0);
}

/*
 * Completes a restart once MQTT is closed and nothing is in flight: a
 * reload's reconnects (from then on no link uses the retired
 * configuration), and a link's return to its first address.
 */
static void br_restart(struct bridge *b)
{
	bool amqp = b->restart_amqp || b->primary_amqp;

	if (mlink_connected(&b->mqtt) || !gate_idle(&b->gate))
		return;
	if (b->restart_amqp) {
		alink_set_config(&b->amqp, &b->cfg->amqp);
		alink_set_topology(&b->amqp, &b->cfg->topology, b->cfg->check_exchanges,
		                   b->cfg->n_check_exchanges);
	}
	/* The consumer channel is closed: the new downlink may differ. */
	if (dlink_configure(&b->dl, b->cfg) != 0)
		fatal("bridge: out of memory for the reloaded downlink");
	if (b->restart_mqtt) {
		if (mlink_reconfigure(&b->mqtt, &b->cfg->mqtt, &b->cfg->bridge) != 0)
			fatal("bridge: cannot set up the MQTT client with the reloaded settings");
	} else {
		b->mqtt.cfg = &b->cfg->mqtt;
	}
	if (b->primary_amqp)
		alink_to_primary(&b->amqp);
	if (b->primary_mqtt)
		mlink_to_primary(&b->mqtt);
	if (b->retired != NULL) {
		config_free(b->retired);
		free(b->retired);
		b->retired = NULL;
	}
	br_enter(b, BR_RUNNING, b->restart_mqtt || b->restart_amqp
	                        ? "reconnecting with the reloaded settings"
	                        : "reconnecting to the first address");
	b->restart_mqtt = b->primary_mqtt = false;
	if (amqp) {
		b->restart_amqp = b->primary_amqp = false;
		log_info("bridge: reconnecting to RabbitMQ at %s", alink_node(&b->amqp)->name);
		/* MQTT connects again once the new channel is READY. */
		alink_restart(&b->amqp);
	}
	if (b->reload_pending) {
		b->reload_pending = false;
		br_reload(b);
	}
}

/* SIGTERM / SIGINT: drain; a second one stops at once. */
static void br_stop(struct bridge *b)
{
	char status[NOTIFY_STATUS_MAX];

	if (b->state == BR_DRAINING) {
		log_warn("bridge: second signal: stopping now");
		mlink_drop(&b->mqtt, "stopping now");
		br_finish(b, false, "second signal");
		return;
	}
	snprintf(status, sizeof(status), "stopping: waiting up to %d s for %zu unconfirmed "
	         "message(s)", b->cfg->bridge.drain_timeout, gate_outstanding(&b->gate));
	notify_stopping(&b->notify, status);
	log_info("bridge: shutting down: waiting up to %d s for %zu unconfirmed message(s)",
	         b->cfg->bridge.drain_timeout, gate_outstanding(&b->gate));
	br_enter(b, BR_DRAINING, "signal");
	mlink_stop(&b->mqtt);
	loop_timer_arm(&b->loop, &b->drain_timer, (uint64_t)b->cfg->bridge.drain_timeout * 1000u);
}

static void br_on_signal(void *arg, int signo)
{
	struct bridge *b = arg;

	switch (signo) {
	case SIGTERM:
	case SIGINT:
		br_stop(b);
		break;
	case SIGUSR1:
		bridge_log_stats(b);
		break;
	case SIGHUP:
		if (b->state == BR_RUNNING || b->state == BR_RESTARTING)
			br_reload(b);
		break;
	default:
		break;
	}
}

/* Before every poll: act on what the gate says, then let the lifecycle advance. */
static bool br_prepare(void *arg)
{
	struct bridge *b = arg;

	/* Confirms may sit in rabbitmq-c's buffer where poll() cannot see them. */
	if (alink_pending(&b->amqp))
		alink_read(&b->amqp);
	/* The downlink follows the links' states; a stop waits for its PUBACKs. */
	dlink_update(&b->dl, b->state == BR_RUNNING, b->cfg->bridge.drain_timeout);
	if (dlink_take_redeclare(&b->dl) && b->state == BR_RUNNING) {
		log_info("bridge: a downlink queue the topology declares is gone: reconnecting to "
		         "RabbitMQ to declare it again, once the messages in flight are confirmed");
		b->restart_amqp = true;
		br_enter(b, BR_RESTARTING, "a downlink queue is gone");
	}
	gate_downlink_busy(&b->gate, dlink_busy(&b->dl));
	/* The pass is over: what it published (and acknowledged) leaves in one write. */
	alink_write(&b->amqp, false);
	br_decide(b, true);
	mlink_prepare(&b->mqtt);
	/* Messages OpenSSL held decrypted are read there, and publish too. */
	alink_write(&b->amqp, false);
	if (b->state == BR_RESTARTING)
		br_restart(b);
	if (b->state == BR_DRAINING && !mlink_connected(&b->mqtt)) {
		br_finish(b, gate_outstanding(&b->gate) == 0, "drained");
		return false;
	}
	return alink_pending(&b->amqp);
}

int bridge_init(struct bridge *b, struct bridge_config *cfg)
{
	char err[HTTP_ERR_MAX];
	static const int signals[] = { SIGTERM, SIGINT, SIGHUP, SIGUSR1, 0 };
	const struct mlink_handlers mh = {
		.message = br_on_message,
		.connecting = br_on_mqtt_connecting,
		.flushed = br_on_mqtt_flushed,
		.up = br_on_mqtt_up,
		.down = br_on_mqtt_down,
		.primary_back = br_on_mqtt_primary_back,
		.published = br_on_published,
	};
	const struct alink_handlers ah = {
		.up = br_on_amqp_up,
		.down = br_on_amqp_down,
		.blocked = br_on_blocked,
		.ack = br_on_ack,
		.nack = br_on_nack,
		.returned = br_on_returned,
		.primary_back = br_on_amqp_primary_back,
		.consumer = {
			.deliver = br_on_delivery,
			.consuming = br_on_consuming,
			.closed = br_on_consumer_closed,
		},
	};

	memset(b, 0, sizeof(*b));
	b->cfg = cfg;
	procstat_init();
	stats_init(&b->stats);
	b->stats.last_reload_s = br_wall_clock();
	if (fw_init(&b->fw, cfg, &b->gate, &b->amqp, &b->stats) != 0) {
		log_error("bridge: out of memory");
		return -1;
	}
	if (loop_init(&b->loop, signals, br_on_signal, b) != 0) {
		log_error("bridge: cannot set up signal handling: %s", strerror(errno));
		goto fail_scratch;
	}
	loop_set_prepare(&b->loop, br_prepare, b);
	loop_timer_init(&b->drain_timer, br_on_drain_timeout, b);
	if (gate_init(&b->gate, (uint64_t)cfg->mqtt.inflight_max,
	              (unsigned)cfg->bridge.poison_failures) != 0) {
		log_error("bridge: out of memory");
		goto fail_loop;
	}
	if (alink_init(&b->amqp, &cfg->amqp, &cfg->bridge, &b->loop, &ah, b) != 0)
		goto fail_gate;
	alink_set_topology(&b->amqp, &cfg->topology, cfg->check_exchanges, cfg->n_check_exchanges);
	if (mlink_init(&b->mqtt, &cfg->mqtt, &cfg->bridge, &b->loop, &mh, b) != 0)
		goto fail_amqp;
	if (dlink_init(&b->dl, cfg, &b->amqp, &b->mqtt, &b->loop) != 0) {
		log_error("bridge: out of memory");
		goto fail_mqtt;
	}
	http_init(&b->http, &b->loop, br_http_route, b);
	if (br_http_serve(b, cfg->bridge.http_listen, err) != 0) {
		log_error("http: %s", err);
		goto fail_dl;
	}
	return 0;

fail_dl:
	dlink_fini(&b->dl);
fail_mqtt:
	mlink_fini(&b->mqtt);
fail_amqp:
	alink_fini(&b->amqp);
fail_gate:
	gate_fini(&b->gate);
fail_loop:
	loop_fini(&b->loop);
fail_scratch:
	fw_fini(&b->fw);
	stats_fini(&b->stats);
	b->cfg = NULL;
	return -1;
}

int bridge_run(struct bridge *b)
{
	log_info("bridge: starting: MQTT %s%s -> AMQP %s%s exchange '%s'",
	         b->cfg->mqtt.hosts[0].name, b->cfg->mqtt.n_hosts > 1 ? " (first of a list)" : "",
	         b->cfg->amqp.hosts[0].name, b->cfg->amqp.n_hosts > 1 ? " (first of a list)" : "",
	         b->cfg->amqp.exchange);
	/* Ready once configured: brokers that are down are waited for, not an error. */
	notify_init(&b->notify, &b->loop);
	notify_ready(&b->notify);
	br_status(b);
	alink_start(&b->amqp);
	/* MQTT connects whenever the gate allows it (the AMQP channel is ready). */
	mlink_start(&b->mqtt);
	while (b->state != BR_DONE)
		loop_run_once(&b->loop);
	/* A graceful AMQP close awaits close-ok in the loop (ALINK_CLOSE_MS at most). */
	for (b->loop.stop = false; alink_closing(&b->amqp);)
		loop_run_once(&b->loop);
	notify_fini(&b->notify);
	bridge_log_stats(b);
	log_info("bridge: stopped");
	return 0;
}

void bridge_fini(struct bridge *b)
{
	http_stop(&b->http);
	dlink_fini(&b->dl);
	mlink_fini(&b->mqtt);
	alink_fini(&b->amqp);
	gate_fini(&b->gate);
	loop_fini(&b->loop);
	fw_fini(&b->fw);
	stats_fini(&b->stats);
	if (b->retired) {
		config_free(b->retired);
		free(b->retired);
	}
	config_free(b->cfg);
	free(b->cfg);
	b->cfg = b->retired = NULL;
}
