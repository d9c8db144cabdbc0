/*
 * mqtt-amqp-bridge: forwards MQTT messages to an AMQP 0-9-1 exchange and
 * acknowledges each one to the MQTT broker only after RabbitMQ confirmed it.
 */
#include <getopt.h>
#include <malloc.h>
#include <inttypes.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <mosquitto.h>

#include "config.h"
#include "bridge.h"
#include "log.h"
#include "props.h"
#include "dlroute.h"
#include "route.h"
#include "rules.h"
#include "topic.h"

#define DEFAULT_CONFIG SYSCONFDIR "/mqtt-amqp-bridge/mqtt-amqp-bridge.conf"

static void usage(FILE *out)
{
	fprintf(out,
	        "Usage: mqtt-amqp-bridge [-c FILE] [-t [-q]] [-r TOPIC]...\n"
	        "                        [-d ROUTING_KEY [-H NAME=VALUE]...]... [-v] [-V] [-h]\n"
	        "Forward MQTT messages to an AMQP 0-9-1 exchange, acknowledging each one\n"
	        "to the MQTT broker only after RabbitMQ has confirmed it.\n"
	        "\n"
	        "  -c, --config FILE  configuration file (default " DEFAULT_CONFIG ")\n"
	        "  -t, --test         check the configuration, print it and exit\n"
	        "  -q, --quiet        with -t, print only errors and warnings (systemctl\n"
	        "                     reload runs this before it signals the bridge)\n"
	        "  -r, --route TOPIC  print where a message on TOPIC would go, without\n"
	        "                     connecting, and exit (may be repeated)\n"
	        "  -d, --downlink-route ROUTING_KEY\n"
	        "                     print what each downlink entry would publish to MQTT\n"
	        "                     for a delivery with ROUTING_KEY, and exit (may be\n"
	        "                     repeated)\n"
	        "  -H, --header NAME=VALUE\n"
	        "                     with -d, a string header of the delivery (may be\n"
	        "                     repeated)\n"
	        "  -v, --verbose      log debug messages (overrides bridge.log_level)\n"
	        "  -V, --version      print the version and exit\n"
	        "  -h, --help         print this help and exit\n");
}

static void print_value(const amqp_field_value_t *v, FILE *out)
{
	switch (v->kind) {
	case AMQP_FIELD_KIND_UTF8:
	case AMQP_FIELD_KIND_BYTES:
		fprintf(out, "\"%.*s\"", (int)v->value.bytes.len, (const char *)v->value.bytes.bytes);
		break;
	case AMQP_FIELD_KIND_I64:
		fprintf(out, "%" PRId64, v->value.i64);
		break;
	case AMQP_FIELD_KIND_BOOLEAN:
		fputs(v->value.boolean ? "true" : "false", out);
		break;
	default:
		fputs("(value)", out);
		break;
	}
}

/*
 * One copy of a message on `topic`: exchange, routing key, delivery mode
 * and headers, as the bridge would build them for a QoS 1 message without
 * MQTT 5 properties.
 */
static void print_copy(const struct bridge_config *cfg, const struct route_copy *c,
                       const char *topic, struct props_buf *pb, FILE *out)
{
	const struct bridge_settings *bs = &cfg->bridge;
	/* A QoS 1 message without properties; the topic is only read. */
	const struct mosquitto_message msg = { .topic = (char *)topic, .qos = 1 };
	struct props_input in;
	char key[TOPIC_KEY_MAX + 1];
	amqp_basic_properties_t p;
	enum topic_result tr;
	size_t klen;

	route_props_input(&in, bs, c, &msg, strlen(topic), NULL, false);
	fprintf(out, "    exchange: '%.*s'%s\n", (int)c->exchange_len, c->exchange,
	        c->exchange_len == 0 ? " (the default exchange)" : "");
	tr = route_key(c, bs, topic, in.topic_len, key, &klen);
	if (tr == TOPIC_OK)
		fprintf(out, "    routing key: '%s'\n", key);
	else
		fprintf(out, "    routing key: none: %s; the message is %s\n", topic_strerror(tr),
		        cfg->amqp.dead_letter_exchange ? "dead-lettered" : "dropped");
	fprintf(out, "    delivery mode: %s\n",
	        in.persistent == RULE_PERSIST_YES  ? "2 (persistent, set by the rule)"
	        : in.persistent == RULE_PERSIST_NO ? "1 (transient, set by the rule)"
	                                           : "2 for QoS 1, 1 for QoS 0");
	if (props_build(pb, &in, &p) != 0) {
		fprintf(out, "    headers: (out of memory)\n");
		return;
	}
	if (!(p._flags & AMQP_BASIC_HEADERS_FLAG) || p.headers.num_entries == 0) {
		fprintf(out, "    headers: none (MQTT 5 properties would add theirs)\n");
		return;
	}
	fprintf(out, "    headers (MQTT 5 properties would add theirs):\n");
	for (int i = 0; i < p.headers.num_entries; i++) {
		const amqp_table_entry_t *e = &p.headers.entries[i];

		fprintf(out, "      %.*s = ", (int)e->key.len, (const char *)e->key.bytes);
		print_value(&e->value, out);
		fputc('\n', out);
	}
}

static void print_rule(const struct rule *r, FILE *out)
{
	fprintf(out, "  rule %zu (line %d, match '%s')%s%s\n", r->index, r->line, r->match,
	        r->drop ? ": drop" : "", r->cont ? ", continue" : "");
}

/*
 * --route: where a message on `topic` goes, asked of the same routing
 * function as the forwarding path.  Returns 0, or 1 for a topic that is not
 * valid.
 */
static int print_route(const struct bridge_config *cfg, const char *topic, FILE *out)
{
	size_t tlen = strlen(topic);
	char key[TOPIC_KEY_MAX + 1];
	struct props_buf pb;
	struct route rt;
	enum topic_result tr;
	size_t klen;

	tr = topic_name_to_key(topic, tlen, ".", key, &klen);
	if (tr == TOPIC_ERR_EMPTY || tr == TOPIC_ERR_WILDCARD || tr == TOPIC_ERR_NUL) {
		log_plain(LOG_LVL_ERROR, "mqtt-amqp-bridge: --route '%s': not a topic name: %s",
		          topic, topic_strerror(tr));
		return 1;
	}
	route_init(&rt);
	if (route_reserve(&rt, cfg->rules) != 0) {
		log_plain(LOG_LVL_ERROR, "mqtt-amqp-bridge: out of memory");
		return 1;
	}
	props_init(&pb);
	route_message(&rt, cfg, topic, tlen);
	fprintf(out, "topic '%s':\n", topic);
	if (rt.end == ROUTE_DROP_UNMATCHED)
		fprintf(out, "  no rule matches: dropped (bridge.unmatched = \"drop\")\n");
	else if (rt.unmatched)
		fprintf(out, "  no rule matches: forwarded with the default translation "
		        "(bridge.unmatched = \"forward\")\n");
	for (size_t i = 0; i < rt.n; i++) {
		struct route_copy c;

		route_copy(&rt, cfg, i, &c);
		if (c.rule)
			print_rule(c.rule, out);
		print_copy(cfg, &c, topic, &pb, out);
	}
	if (rt.drop)
		print_rule(rt.drop, out);
	if (!rt.unmatched)
		fprintf(out, "  => %zu cop%s%s\n", rt.n, rt.n == 1 ? "y" : "ies",
		        rt.n == 0 ? ": dropped" : "");
	props_fini(&pb);
	route_fini(&rt);
	return 0;
}

int main(int argc, char **argv)
{
	static const struct option longopts[] = {
		{ "config", required_argument, NULL, 'c' },
		{ "test", no_argument, NULL, 't' },
		{ "route", required_argument, NULL, 'r' },
		{ "downlink-route", required_argument, NULL, 'd' },
		{ "header", required_argument, NULL, 'H' },
		{ "quiet", no_argument, NULL, 'q' },
		{ "verbose", no_argument, NULL, 'v' },
		{ "version", no_argument, NULL, 'V' },
		{ "help", no_argument, NULL, 'h' },
		{ NULL, 0, NULL, 0 },
	};
	const char *path = DEFAULT_CONFIG;
	bool test = false, quiet = false, verbose = false, check;
	struct config_errors errs;
	struct bridge_config *cfg;
	struct bridge bridge;
	const char **routes, **dl_routes;
	char **headers;
	size_t n_routes = 0, n_dl_routes = 0, n_headers = 0;
	int opt, status;

	/* Each list holds at most every argument. */
	routes = calloc((size_t)argc * 3, sizeof(*routes));
	if (!routes) {
		log_plain(LOG_LVL_ERROR, "mqtt-amqp-bridge: out of memory");
		return 1;
	}
	dl_routes = routes + argc;
	headers = (char **)(routes + 2 * argc);
	while ((opt = getopt_long(argc, argv, "c:tqr:d:H:vVh", longopts, NULL)) != -1) {
		switch (opt) {
		case 'c': path = optarg; break;
		case 't': test = true; break;
		case 'q': quiet = true; break;
		case 'r': routes[n_routes++] = optarg; break;
		case 'd': dl_routes[n_dl_routes++] = optarg; break;
		case 'H': headers[n_headers++] = optarg; break;
		case 'v': verbose = true; break;
		case 'V':
			printf("mqtt-amqp-bridge %s\n", PACKAGE_VERSION);
			free(routes);
			return 0;
		case 'h':
			usage(stdout);
			free(routes);
			return 0;
		default:
			usage(stderr);
			free(routes);
			return 2;
		}
	}
	if (optind < argc) {
		log_plain(LOG_LVL_ERROR, "mqtt-amqp-bridge: unexpected argument '%s'", argv[optind]);
		usage(stderr);
		free(routes);
		return 2;
	}

	if (n_headers > 0 && n_dl_routes == 0) {
		log_plain(LOG_LVL_ERROR, "mqtt-amqp-bridge: -H only applies to -d");
		usage(stderr);
		free(routes);
		return 2;
	}
	if (quiet && !test) {
		log_plain(LOG_LVL_ERROR, "mqtt-amqp-bridge: -q only applies to -t");
		usage(stderr);
		free(routes);
		return 2;
	}

	cfg = calloc(1, sizeof(*cfg));
	if (!cfg) {
		log_plain(LOG_LVL_ERROR, "mqtt-amqp-bridge: out of memory");
		free(routes);
		return 1;
	}
	config_errors_init(&errs);
	check = test || n_routes > 0 || n_dl_routes > 0;
	if ((check ? config_check : config_load)(path, cfg, &errs) != 0) {
		for (size_t i = 0; i < errs.n; i++)
			log_plain(LOG_LVL_ERROR, "%s", errs.msg[i]);
		log_plain(LOG_LVL_ERROR, "mqtt-amqp-bridge: %zu error(s) in %s", errs.n, path);
		config_errors_free(&errs);
		free(cfg);
		free(routes);
		return 1;
	}
	config_errors_free(&errs);
	if (check) {
		status = 0;
		for (size_t i = 0; i < cfg->n_warnings; i++)
			log_plain(LOG_LVL_WARNING, "warning: %s", cfg->warnings[i]);
		if (test && !quiet) {
			config_print(cfg, stdout);
			printf("configuration ok: %s\n", path);
		}
		for (size_t i = 0; i < n_routes; i++)
			if (print_route(cfg, routes[i], stdout) != 0)
				status = 2;
		for (size_t i = 0; i < n_dl_routes; i++) {
			int rc = dlroute_print(cfg, dl_routes[i], headers, n_headers, stdout);

			if (rc < 0)
				log_plain(LOG_LVL_ERROR, "mqtt-amqp-bridge: out of memory");
			if (rc != 0)
				status = rc < 0 ? 1 : 2;
		}
		config_free(cfg);
		free(cfg);
		free(routes);
		return status;
	}
	free(routes);
	/*
	 * Parsing a large file leaves the heap with freed holes that glibc
	 * keeps; give them back, since the daemon never needs them again
	 * (10,000 rules: 14 MiB resident instead of 19).
	 */
	malloc_trim(0);

	log_init(verbose ? LOG_LVL_DEBUG : cfg->bridge.log_level);
	log_set_target(cfg->bridge.log_target);
	log_set_format(cfg->bridge.log_format);
	for (size_t i = 0; i < cfg->n_warnings; i++)
		log_warn("%s", cfg->warnings[i]);
	/* A peer closing a socket must surface as an error return, not kill the process. */
	signal(SIGPIPE, SIG_IGN);
	mosquitto_lib_init();
	if (bridge_init(&bridge, cfg) != 0) {
		mosquitto_lib_cleanup();
		log_fini();
		config_free(cfg);
		free(cfg);
		return 1;
	}
	bridge.log_level_forced = verbose;
	status = bridge_run(&bridge);
	bridge_fini(&bridge);
	mosquitto_lib_cleanup();
	log_fini();
	return status;
}
