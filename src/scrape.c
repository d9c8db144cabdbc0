#include "scrape.h"

#include <stddef.h>

#include "procstat.h"

#define NS "mqtt_amqp_bridge_"

static void counter(struct expo *e, const char *name, const char *help, uint64_t v)
{
	expo_family(e, name, "counter", help);
	expo_u64(e, name, NULL, 0, v);
}

static void gauge(struct expo *e, const char *name, const char *help, double v)
{
	expo_family(e, name, "gauge", help);
	expo_double(e, name, NULL, 0, v);
}

static void scrape_messages(const struct scrape_view *v, struct expo *e)
{
	const struct stats *s = v->stats;

	counter(e, NS "messages_received_total", "PUBLISH packets read from MQTT, redeliveries "
	        "included.", s->received);
	counter(e, NS "messages_redelivered_total", "Messages handed back to the MQTT broker "
	        "unacknowledged, which it delivers again.", v->gate->redelivered);
	expo_family(e, NS "messages_forwarded_total", "counter", "Copies RabbitMQ confirmed, by "
	            "the exchange they were published to.");
	for (size_t i = 0; i < s->n_ex; i++) {
		struct expo_label l = { "exchange", s->ex[i].name };

		expo_u64(e, NS "messages_forwarded_total", &l, 1, s->ex[i].forwarded);
	}
	counter(e, NS "messages_nacked_total", "Copies RabbitMQ refused with basic.nack (the MQTT "
	        "broker delivers them again).", s->nacked);
	expo_family(e, NS "messages_dead_lettered_total", "counter", "Copies confirmed on the "
	            "dead-letter exchange, by their x-bridge-reason.");
	for (int i = 0; i < STATS_DEAD_N; i++) {
		struct expo_label l = { "reason", stats_dead_name((enum stats_dead)i) };

		expo_u64(e, NS "messages_dead_lettered_total", &l, 1, s->dead[i]);
	}
	expo_family(e, NS "messages_dropped_total", "counter", "Messages that went nowhere: a drop "
	            "rule, no rule matching with bridge.unmatched = drop, or undeliverable without "
	            "a dead-letter copy.");
	for (int i = 0; i < STATS_DROP_N; i++) {
		struct expo_label l = { "reason", stats_drop_name((enum stats_drop)i) };

		expo_u64(e, NS "messages_dropped_total", &l, 1, s->drops[i]);
	}
	expo_family(e, NS "rule_matches_total", "counter", "Messages each rule matched, by the "
	            "rule's name or its line.");
	for (size_t i = 0; i < s->n_rules; i++) {
		struct expo_label l = { "rule", s->rules[i].label };

		expo_u64(e, NS "rule_matches_total", &l, 1, s->rules[i].matches);
	}
}

static void scrape_links(const struct scrape_view *v, struct expo *e)
{
	const struct mlink *m = v->mqtt;
	const struct alink *a = v->amqp;
	struct expo_label l[2] = { { "side", "mqtt" }, { "reason", NULL } };

	expo_family(e, NS "connections_total", "counter", "Connections that came up: the broker "
	            "accepted the CONNECT (mqtt), the channel was ready (amqp).");
	expo_u64(e, NS "connections_total", l, 1, m->connects);
	l[0].value = "amqp";
	expo_u64(e, NS "connections_total", l, 1, v->stats->amqp_connects);
	expo_family(e, NS "connection_failures_total", "counter", "Connections that failed or "
	            "ended other than on purpose, by side and reason.");
	l[0].value = "mqtt";
	for (int i = 0; i < ML_FAIL_N; i++) {
		l[1].value = mlink_fail_name((enum mlink_fail)i);
		expo_u64(e, NS "connection_failures_total", l, 2, m->fails[i]);
	}
	l[0].value = "amqp";
	for (int i = 0; i < AL_FAIL_N; i++) {
		l[1].value = alink_fail_name((enum alink_fail)i);
		expo_u64(e, NS "connection_failures_total", l, 2, a->fails[i]);
	}
	expo_family(e, NS "up", "gauge", "1 while the side is connected (MQTT subscribed, the AMQP "
	            "channel open), with the broker address in use or tried next.");
	l[0].value = "mqtt";
	l[1] = (struct expo_label){ "node", mlink_node(m)->name };
	expo_u64(e, NS "up", l, 2, m->state == ML_ACTIVE);
	l[0].value = "amqp";
	l[1].value = alink_node(a)->name;
	expo_u64(e, NS "up", l, 2, a->state == AL_READY || a->state == AL_BLOCKED);
	gauge(e, NS "ready", "1 while forwarding, as /readyz answers 200.", v->ready);
	gauge(e, NS "amqp_blocked", "1 while RabbitMQ blocks publishing (connection.blocked).",
	      a->state == AL_BLOCKED);
}

static void scrape_flow(const struct scrape_view *v, struct expo *e)
{
	const struct stats *s = v->stats;
	struct expo_label l = { "version", PACKAGE_VERSION };

	gauge(e, NS "publishes_in_flight", "AMQP publishes awaiting RabbitMQ's confirm.",
	      (double)gate_outstanding(v->gate));
	gauge(e, NS "pubacks_unflushed", "Messages read from MQTT whose PUBACK is not written yet.",
	      (double)v->gate->unflushed);
	gauge(e, NS "in_flight_limit", "mqtt.inflight_max: at most this many messages are read "
	      "before their PUBACKs are written.", (double)v->inflight_max);
	expo_family(e, NS "confirm_latency_seconds", "histogram", "Time from a publish to "
	            "RabbitMQ's basic.ack.");
	expo_hist(e, NS "confirm_latency_seconds", NULL, 0, &s->confirm);
	expo_family(e, NS "puback_hold_seconds", "histogram", "Time from reading an MQTT message "
	            "to writing its PUBACK.");
	expo_hist(e, NS "puback_hold_seconds", NULL, 0, &s->hold);
	counter(e, NS "reloads_total", "Reloads (SIGHUP) that took effect.", s->reloads);
	counter(e, NS "reload_failures_total", "Reloads refused: the file had errors.",
	        s->reload_failures);
	gauge(e, NS "last_reload_success", "1 when the last reload took effect (or none was "
	      "asked for), 0 when it was refused.", s->last_reload_ok);
	gauge(e, NS "last_reload_success_timestamp_seconds", "When the configuration in force "
	      "was loaded, in seconds since the epoch.", s->last_reload_s);
	expo_family(e, NS "build_info", "gauge", "1, with the version as a label.");
	expo_u64(e, NS "build_info", &l, 1, 1);
}

static void scrape_process(struct expo *e)
{
	struct procstat p;

	procstat_read(&p);
	expo_family(e, "process_cpu_seconds_total", "counter", "User and system CPU time spent, in "
	            "seconds.");
	expo_double(e, "process_cpu_seconds_total", NULL, 0, p.cpu_s);
	gauge(e, "process_resident_memory_bytes", "Resident memory size in bytes.",
	      (double)p.rss_bytes);
	gauge(e, "process_virtual_memory_bytes", "Virtual memory size in bytes.",
	      (double)p.vsize_bytes);
	if (p.open_fds >= 0)
		gauge(e, "process_open_fds", "Open file descriptors.", (double)p.open_fds);
	if (p.max_fds > 0)
		gauge(e, "process_max_fds", "The limit of open file descriptors.", (double)p.max_fds);
	gauge(e, "process_start_time_seconds", "Start time of the process since the epoch, in "
	      "seconds.", procstat_start_time());
}

/* The downlink, by queue: nothing without a `downlink` list. */
static void scrape_downlink(const struct scrape_view *v, struct expo *e)
{
	const struct dlink *d = v->dl;
	static const struct {
		const char *name, *help;
		size_t off;
	} fam[] = {
		{ NS "downlink_received_total", "Deliveries from the queue, redeliveries included.",
		  offsetof(struct dlink_counts, received) },
		{ NS "downlink_redelivered_total", "Deliveries RabbitMQ flagged as redelivered.",
		  offsetof(struct dlink_counts, redelivered) },
		{ NS "downlink_published_total", "Messages the MQTT broker acknowledged (QoS 1) or "
		  "that were written (QoS 0), then acknowledged to RabbitMQ.",
		  offsetof(struct dlink_counts, published) },
		{ NS "downlink_requeued_total", "Deliveries given back to the queue unpublished: the "
		  "bridge was stopping, the MQTT connection going, or the MQTT broker refused for a "
		  "reason of the moment.", offsetof(struct dlink_counts, requeued) },
	};
	struct expo_label l[2] = { { "queue", NULL }, { "reason", NULL } };

	if (d == NULL || d->n == 0)
		return;
	for (size_t k = 0; k < sizeof(fam) / sizeof(fam[0]); k++) {
		expo_family(e, fam[k].name, "counter", fam[k].help);
		for (size_t i = 0; i < d->n; i++) {
			l[0].value = d->queues[i].name;
			expo_u64(e, fam[k].name, l, 1,
			         *(const uint64_t *)((const char *)&d->counts[i] + fam[k].off));
		}
	}
	expo_family(e, NS "downlink_rejected_total", "counter", "Deliveries rejected to the "
	            "queue's dead-letter exchange, by reason.");
	for (size_t i = 0; i < d->n; i++) {
		l[0].value = d->queues[i].name;
		for (int r = 0; r < DL_REJ_N; r++) {
			l[1].value = dlink_reject_name((enum dlink_reject)r);
			expo_u64(e, NS "downlink_rejected_total", l, 2, d->counts[i].rejected[r]);
		}
	}
	gauge(e, NS "downlink_in_flight", "Messages published to MQTT awaiting their PUBACK.",
	      (double)d->in_flight);
	gauge(e, NS "downlink_consuming", "1 while the downlink's consumers are registered on "
	      "every queue; 0 while MQTT or AMQP is down, the bridge stops, or RabbitMQ closed the "
	      "channel (a missing queue).", v->amqp->cons.state == AC_CONSUMING);
}

void scrape_write(const struct scrape_view *v, struct expo *e)
{
	scrape_messages(v, e);
	scrape_downlink(v, e);
	scrape_links(v, e);
	scrape_flow(v, e);
	scrape_process(e);
}
