#include "config.h"
#include "failover.h"

#include <check.h>
#include <dirent.h>
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/un.h>
#include <unistd.h>

#include "props.h"
#include "topic.h"

#ifndef TEST_CONF_DIR
#error "TEST_CONF_DIR must name the directory of the test configuration files"
#endif

#define SAMPLE_CONF TEST_CONF_DIR "/../../../etc/mqtt-amqp-bridge.conf"

static char *conf_path(const char *name)
{
	static char path[512];

	snprintf(path, sizeof(path), "%s/%s", TEST_CONF_DIR, name);
	return path;
}

/* Fills the struct with junk, as config_load() must not need it initialised. */
static void scribble(struct bridge_config *cfg)
{
	memset(cfg, 0xA5, sizeof(*cfg));
}

/* After a failed load the struct must hold nothing: all pointers NULL. */
static void assert_empty(const struct bridge_config *cfg)
{
	ck_assert_ptr_null(cfg->path);
	ck_assert_ptr_null(cfg->mqtt.host);
	ck_assert_ptr_null(cfg->mqtt.client_id);
	ck_assert_ptr_null(cfg->mqtt.subscribe);
	ck_assert_uint_eq(cfg->mqtt.n_subscribe, 0);
	ck_assert_ptr_null(cfg->amqp.host);
	ck_assert_ptr_null(cfg->amqp.vhost);
	ck_assert_ptr_null(cfg->amqp.username);
	ck_assert_ptr_null(cfg->amqp.password);
	ck_assert_ptr_null(cfg->amqp.exchange);
	ck_assert_ptr_null(cfg->amqp.exchange_type);
	ck_assert_ptr_null(cfg->bridge.dot_replacement);
	ck_assert_ptr_null(cfg->rules);
	ck_assert_ptr_null(cfg->topology.exchanges);
	ck_assert_ptr_null(cfg->topology.queues);
	ck_assert_ptr_null(cfg->topology.bindings);
	ck_assert_ptr_null(cfg->downlink);
	ck_assert_ptr_null(cfg->downlink_topics);
	ck_assert_uint_eq(cfg->n_downlink, 0);
	ck_assert_ptr_null(cfg->check_exchanges);
	ck_assert_ptr_null(cfg->warnings);
}

static void dump_errors(const struct config_errors *errs)
{
	for (size_t i = 0; i < errs->n; i++)
		fprintf(stderr, "  got: %s\n", errs->msg[i]);
}

/*
 * Whether `got` is `path` followed by `want`; a `want` ending in "..." only
 * needs to start `got` (for the wording the rules module owns).
 */
static bool message_is(const char *got, const char *path, const char *want)
{
	size_t plen = strlen(path), wlen = strlen(want);

	if (strncmp(got, path, plen) != 0)
		return false;
	got += plen;
	if (wlen >= 3 && strcmp(want + wlen - 3, "...") == 0)
		return strncmp(got, want, wlen - 3) == 0;
	return strcmp(got, want) == 0;
}

/*
 * Loads `path`, insists that it fails with exactly the messages `want`
 * (each the part after the path: ":LINE: message"), in that order.
 */
static void expect_errors(const char *path, const char *const *want, size_t n_want)
{
	struct bridge_config cfg;
	struct config_errors errs;
	char expected[2048];

	config_errors_init(&errs);
	scribble(&cfg);
	ck_assert_int_eq(config_load(path, &cfg, &errs), -1);
	assert_empty(&cfg);
	if (errs.n != n_want)
		dump_errors(&errs);
	ck_assert_uint_eq(errs.n, n_want);
	for (size_t i = 0; i < n_want; i++) {
		snprintf(expected, sizeof(expected), "%s%s", path, want[i]);
		ck_assert_msg(message_is(errs.msg[i], path, want[i]), "got \"%s\", wanted \"%s\"",
		              errs.msg[i], expected);
	}
	config_errors_free(&errs);
	config_free(&cfg);
}

static void expect_error(const char *path, const char *want)
{
	expect_errors(path, &want, 1);
}

/* Loads `path`, which must succeed without a single error. */
static void load_ok(const char *path, struct bridge_config *cfg)
{
	struct config_errors errs;
	int rc;

	config_errors_init(&errs);
	scribble(cfg);
	rc = config_load(path, cfg, &errs);
	if (rc != 0 || errs.n != 0)
		dump_errors(&errs);
	ck_assert_int_eq(rc, 0);
	ck_assert_uint_eq(errs.n, 0);
	config_errors_free(&errs);
}

/* Each of these files holds exactly one error. */
static const struct {
	const char *file;
	const char *msg;
} single[] = {
	{ "bad-unknown-setting.conf", ":5: unknown setting 'mqtt.keepalve' (did you mean 'mqtt.keepalive'?)" },
	{ "bad-unknown-top.conf", ":9: unknown setting 'log_level' (did you mean 'bridge.log_level'?)" },
	{ "bad-unknown-group.conf", ":9: unknown setting 'tls'" },
	{ "bad-group-type.conf", ":9: 'bridge' must be a group: bridge = { ... };" },
	{ "bad-missing-mqtt.conf", ":1: missing required group 'mqtt'" },
	{ "bad-missing-amqp.conf", ":1: missing required group 'amqp'" },
	{ "bad-missing-host.conf", ":2: missing required setting 'mqtt.host' (or 'mqtt.hosts')" },
	{ "bad-missing-amqp-host.conf", ":6: missing required setting 'amqp.host' (or 'amqp.hosts')" },
	{ "bad-hosts-both.conf", ":4: 'mqtt.hosts' and 'mqtt.host' are both given: give one of them" },
	{ "bad-hosts-empty.conf", ":7: 'amqp.hosts' must name at least one broker" },
	{ "bad-hosts-duplicate.conf", ":9: 'amqp.hosts[1]' (rabbit1:5673) repeats 'amqp.hosts[0]'" },
	{ "bad-hosts-port.conf",
	  ":3: 'mqtt.hosts[1]' (\"mqtt2:65536\") must have a port from 1 to 65535 after ':'" },
	{ "bad-missing-subscribe.conf",
	  ":2: 'mqtt.subscribe' is not set and no rule gives a filter to subscribe to" },
	{ "bad-subscribe-empty.conf", ":4: 'mqtt.subscribe' must name at least one topic filter" },
	{ "bad-subscribe-type.conf",
	  ":4: 'mqtt.subscribe' must be a list of topic filters, e.g. [\"sensors/#\"]" },
	{ "bad-subscribe-element.conf", ":5: 'mqtt.subscribe[1]' must be a string (in double quotes)" },
	{ "bad-empty-host.conf", ":3: 'mqtt.host' must not be empty" },
	{ "bad-port-range.conf", ":5: 'mqtt.port' must be between 1 and 65535 (not 70000)" },
	{ "bad-port-type.conf", ":8: 'amqp.port' must be an integer" },
	{ "bad-port-float.conf", ":5: 'mqtt.port' must be an integer" },
	{ "bad-port-overflow.conf", ":5: 'mqtt.port' must be between 1 and 65535 (not 4294968179)" },
	{ "bad-keepalive-range.conf", ":5: 'mqtt.keepalive' must be between 5 and 65535 (not 2)" },
	{ "bad-inflight-range.conf", ":5: 'mqtt.inflight_max' must be between 1 and 65535 (not 0)" },
	{ "bad-protocol.conf", ":5: 'mqtt.protocol' must be \"3.1.1\" or \"5\" (not \"4\")" },
	{ "bad-session-expiry-311.conf",
	  ":5: 'mqtt.session_expiry' is only meaningful for MQTT 5 (mqtt.protocol = \"5\")" },
	{ "bad-session-expiry-range.conf",
	  ":6: 'mqtt.session_expiry' must be between 1 and 4294967295 (not 4294967296)" },
	{ "bad-password-no-username.conf", ":5: 'mqtt.password' is set but 'mqtt.username' is not" },
	{ "bad-username-empty.conf", ":5: 'mqtt.username' must not be empty" },
	{ "bad-vhost-empty.conf", ":8: 'amqp.vhost' must not be empty" },
	{ "bad-heartbeat-range.conf", ":8: 'amqp.heartbeat' must be between 1 and 3600 (not 0)" },
	{ "bad-connect-timeout-range.conf",
	  ":8: 'amqp.connect_timeout' must be between 1 and 300 (not 301)" },
	{ "bad-exchange-long.conf", ":8: 'amqp.exchange' must be at most 255 bytes long (it has 256)" },
	{ "bad-exchange-empty.conf", ":8: 'amqp.exchange' must not be empty" },
	{ "bad-exchange-type.conf",
	  ":9: 'amqp.exchange_type' must be one of topic, direct, fanout, headers (not \"tpoic\")" },
	{ "bad-declare-type.conf", ":8: 'amqp.declare_exchange' must be true or false" },
	{ "bad-dead-letter-long.conf",
	  ":8: 'amqp.dead_letter_exchange' must be at most 255 bytes long (it has 300)" },
	{ "bad-dead-letter-same.conf", ":9: 'amqp.dead_letter_exchange' must differ from 'amqp.exchange'" },
	{ "bad-max-message-size.conf",
	  ":8: 'amqp.max_message_size' must be between 1 and 536870912 (not 536870913)" },
	{ "bad-max-message-size-int64.conf",
	  ":8: 'amqp.max_message_size' must be between 1 and 536870912 (not 1099511627776)" },
	{ "bad-log-level.conf",
	  ":10: 'bridge.log_level' must be one of error, warning, info, debug (not \"verbose\")" },
	{ "bad-dot-replacement.conf",
	  ":10: 'bridge.dot_replacement' must not contain '/', '+', '#' or '*'" },
	{ "bad-dot-replacement-long.conf",
	  ":10: 'bridge.dot_replacement' must be at most 8 bytes long (it has 9)" },
	{ "bad-reconnect-order.conf",
	  ":11: 'bridge.reconnect_max_ms' (1000) must not be less than 'bridge.reconnect_min_ms' (5000)" },
	{ "bad-reconnect-min-range.conf",
	  ":10: 'bridge.reconnect_min_ms' must be between 10 and 60000 (not 5)" },
	{ "bad-drain-timeout-range.conf",
	  ":10: 'bridge.drain_timeout' must be between 0 and 3600 (not -1)" },
	{ "bad-password-combined.conf",
	  ":7: 'mqtt.password_file' cannot be combined with 'mqtt.password': give the password one "
	  "way only" },
	{ "bad-password-file-no-username.conf",
	  ":5: 'mqtt.password_file' is set but 'mqtt.username' is not" },
	{ "bad-credential-name.conf",
	  ":8: 'amqp.password_credential' must be the name of a credential, without '/'" },
	{ "bad-tls-off.conf", ":5: 'mqtt.tls_ca_file' only applies with mqtt.tls = true" },
	{ "bad-amqp-tls-off.conf", ":9: 'amqp.tls_insecure' only applies with amqp.tls = true" },
	{ "bad-tls-version.conf",
	  ":10: 'amqp.tls_version' must be one of tlsv1.2, tlsv1.3 (not \"tlsv1.1\")" },
	{ "bad-tls-cert-no-key.conf",
	  ":7: 'mqtt.tls_cert_file' is set but 'mqtt.tls_key_file' is not: they come together" },
	{ "bad-log-target.conf",
	  ":10: 'bridge.log_target' must be one of stderr, syslog (not \"journal\")" },
	{ "bad-syntax.conf", ":4: syntax error" },
	{ "bad-duplicate.conf", ":6: syntax error: duplicate setting name" },
	{ "bad-unmatched.conf", ":10: 'bridge.unmatched' must be one of forward, drop (not \"discard\")" },
	{ "bad-topic-header-type.conf", ":10: 'bridge.topic_header' must be true or false" },

	{ "bad-rule-unknown.conf", ":14: rule 3: unknown setting 'exchnage' (did you mean 'exchange'?)" },
	{ "bad-rule-no-match.conf", ":10: rule 1: missing required setting 'match'" },
	{ "bad-rule-match-type.conf", ":10: rule 1: 'match' must be a string (in double quotes)" },
	{ "bad-rule-persistent-type.conf", ":12: rule 1: 'persistent' must be true or false" },
	{ "bad-rule-continue-type.conf", ":12: rule 1: 'continue' must be true or false" },
	{ "bad-rule-headers-type.conf",
	  ":12: rule 1: 'headers' must be a group: headers = { name = value; ... };" },
	{ "bad-rule-header-value.conf",
	  ":14: rule 1: header 'rate' must be a string, an integer, true or false" },
	{ "bad-rule-header-int.conf",
	  ":12: rule 1: header 'big' must be between -9223372036854775808 and 9223372036854775807 "
	  "(not 99999999999999999999)" },
	{ "bad-rule-list-type.conf",
	  ":9: 'rules' must be a list of groups: rules = ( { match = ...; ... }, ... );" },
	{ "bad-rule-element.conf", ":11: rule 1 must be a group: { match = ...; ... }" },
	{ "bad-rule-name.conf",
	  ":10: rule 1: 'name' must be printable ASCII, without spaces, quotes or backslashes" },
	{ "bad-rule-name-twice.conf",
	  ":11: rule 2 (match 'sensors/#'): name 'sensors' is taken by rule 1 (line 10); each "
	  "rule's name is its own" },
	{ "bad-http-listen.conf",
	  ":10: 'bridge.http_listen' must give a numeric IPv4 address, or an IPv6 one in brackets "
	  "(names are not looked up)" },
	/* The rules module words these; only the rule and line are ours. */
	{ "bad-rule-filter.conf", ":10: rule 1 (match 'sensors/#/temperature'): ..." },
	{ "bad-rule-template.conf", ":10: rule 1 (match 'sensors/+/temperature'): ..." },
	{ "bad-rule-drop-exchange.conf", ":10: rule 1 (match 'sensors/#'): ..." },
	{ "bad-rule-no-subscribe.conf",
	  ":2: 'mqtt.subscribe' is not set and no rule gives a filter to subscribe to" },
	{ "bad-rule-internal.conf",
	  ":10: rule 1 (match 'sensors/#'): exchange 'inside' is internal (topology exchange 1, "
	  "line 17): nothing can publish to it" },

	{ "bad-topo-type.conf",
	  ":9: 'topology' must be a group: topology = { exchanges = ( ... ); queues = ( ... ); "
	  "bindings = ( ... ); };" },
	{ "bad-topo-unknown.conf",
	  ":10: unknown setting 'topology.exchange' (did you mean 'topology.exchanges'?)" },
	{ "bad-topo-list-type.conf",
	  ":10: 'topology.exchanges' must be a list of groups: exchanges = ( { name = ...; ... }, ... );" },
	{ "bad-topo-exchange-unknown.conf",
	  ":13: topology exchange 1: unknown setting 'durabel' (did you mean 'durable'?)" },
	{ "bad-topo-exchange-no-name.conf", ":12: topology exchange 2: missing required setting 'name'" },
	{ "bad-topo-exchange-empty.conf", ":11: topology exchange 1: 'name' must not be empty" },
	{ "bad-topo-exchange-long.conf",
	  ":11: topology exchange 1: 'name' must be at most 255 bytes long (it has 256)" },
	{ "bad-topo-exchange-amq.conf",
	  ":11: topology exchange 1: 'name' must not start with \"amq.\" (the broker reserves those "
	  "names)" },
	{ "bad-topo-exchange-type.conf",
	  ":13: topology exchange 1: 'type' must be one of topic, direct, fanout, headers (not "
	  "\"tpoic\")" },
	{ "bad-topo-exchange-bool.conf", ":13: topology exchange 1: 'durable' must be true or false" },
	{ "bad-topo-exchange-dup.conf",
	  ":13: topology exchange 3: exchange 'telemetry' is already declared by topology exchange 1 "
	  "(line 11)" },
	{ "bad-topo-exchange-main.conf",
	  ":12: topology exchange 1: 'telemetry' is amqp.exchange, which the bridge declares itself "
	  "while amqp.declare_exchange is true; declare it in one place only (set "
	  "amqp.declare_exchange = false to declare it here)" },
	{ "bad-topo-exchange-dlx.conf",
	  ":12: topology exchange 1: 'unroutable' is amqp.dead_letter_exchange, which the bridge "
	  "declares itself while amqp.declare_exchange is true; declare it in one place only (set "
	  "amqp.declare_exchange = false to declare it here)" },
	{ "bad-topo-internal-main.conf",
	  ":15: topology exchange 1: 'telemetry' is amqp.exchange, where the bridge publishes, so it "
	  "cannot be internal" },
	{ "bad-topo-alternate-both.conf",
	  ":13: topology exchange 1: 'alternate_exchange' and argument 'alternate-exchange' cannot "
	  "both be given" },
	{ "bad-topo-argument-type.conf",
	  ":14: topology queue 1: argument 'x-max-length' must be a string, an integer, true or false" },
	{ "bad-topo-queue-no-name.conf", ":11: topology queue 1: missing required setting 'name'" },
	{ "bad-topo-queue-amq.conf",
	  ":11: topology queue 1: 'name' must not start with \"amq.\" (the broker reserves those "
	  "names)" },
	{ "bad-topo-queue-dup.conf",
	  ":12: topology queue 2: queue 'alarms' is already declared by topology queue 1 (line 11)" },
	{ "bad-topo-binding-neither.conf",
	  ":11: topology binding 1: needs 'match' (an MQTT topic filter) or 'key' (a binding key)" },
	{ "bad-topo-binding-both.conf",
	  ":15: topology binding 1: 'match' and 'key' cannot both be given" },
	{ "bad-topo-binding-share.conf",
	  ":14: topology binding 1: 'match' must be a plain MQTT topic filter, not a shared "
	  "subscription (\"$share/g/alarms/#\")" },
	{ "bad-topo-binding-key-long.conf",
	  ":14: topology binding 1: 'key' must be at most 255 bytes long (it has 256)" },
	{ "bad-topo-binding-no-queue.conf", ":11: topology binding 1: missing required setting 'queue'" },
	{ "bad-topo-binding-unknown.conf", ":15: topology binding 1: unknown setting 'durable'" },	{ "bad-downlink-echo-key.conf",
	  ":11: downlink entry 1: its topics (#) can match the uplink subscription "
	  "'fleet/#': the bridge would forward its own messages back to RabbitMQ; narrow "
	  "the topic or the subscription, use mqtt.protocol = \"5\" (No Local), or set "
	  "allow_echo = true if this is intended" },
	{ "bad-downlink-echo-shared.conf",
	  ":11: downlink entry 1: its topics (devices/+/commands) can match the uplink "
	  "subscription '$share/g/devices/+/commands', a shared subscription (MQTT 5 "
	  "allows no No Local there): the bridge would forward its own messages back to "
	  "RabbitMQ; narrow the topic or the subscription, subscribe without $share, or "
	  "set allow_echo = true if this is intended" },
	{ "bad-downlink-echo.conf",
	  ":11: downlink entry 1: its topics (devices/+/commands) can match the uplink "
	  "subscription 'devices/#': the bridge would forward its own messages back to "
	  "RabbitMQ; narrow the topic or the subscription, use mqtt.protocol = \"5\" (No "
	  "Local), or set allow_echo = true if this is intended" },
	{ "bad-downlink-no-queue.conf",
	  ":11: downlink entry 1: missing required setting 'queue'" },
	{ "bad-downlink-prefetch.conf",
	  ":11: downlink entry 1: 'prefetch' must be between 1 and 32768 (not 0)" },
	{ "bad-downlink-prefetch-total.conf",
	  ":12: downlink entry 2: the entries' prefetch add up to more than 32768: the messages "
	  "in flight on the MQTT connection need a packet identifier each, of 65,535" },
	{ "bad-downlink-qos.conf",
	  ":11: downlink entry 1: 'qos' must be between 0 and 1 (not 2)" },
	{ "bad-downlink-queue-twice.conf",
	  ":12: downlink entry 2: queue 'commands' is already consumed by downlink entry 1 "
	  "(line 11)" },
	{ "bad-downlink-retain.conf",
	  ":11: downlink entry 1: 'retain' must be a string (in double quotes)" },
	{ "bad-downlink-template.conf",
	  ":11: downlink entry 1: topic template 'devices/{id}/commands': unknown "
	  "placeholder '{id}' (known: {1}, {2}, ..., {key}, {header:NAME}; '{{' and '}}' "
	  "for braces)" },
	{ "bad-downlink-type.conf",
	  ":10: 'downlink' must be a list of groups: downlink = ( { queue = ...; ... }, "
	  "... );" },
	{ "bad-downlink-wildcard.conf",
	  ":11: downlink entry 1: topic \"devices/+/commands\": '+' and '#' are wildcards, "
	  "which no topic name may hold" },
};

#define N_SINGLE (sizeof(single) / sizeof(single[0]))

/* Files checked by their own tests below rather than through `single`. */
static const char *const own_tests[] = {
	"bad-subscribe-filter.conf",
	"bad-many.conf",
	"bad-topo-binding-filter.conf",
};

START_TEST(test_single_error)
{
	expect_error(conf_path(single[_i].file), single[_i].msg);
}
END_TEST

START_TEST(test_subscribe_filter)
{
	char want[256];

	snprintf(want, sizeof(want),
	         ":5: 'mqtt.subscribe[1]' is not a valid MQTT topic filter (\"sensors/#/temp\": %s)",
	         topic_strerror(TOPIC_ERR_BAD_FILTER));
	expect_error(conf_path("bad-subscribe-filter.conf"), want);
}
END_TEST

START_TEST(test_binding_filter)
{
	char want[256];

	snprintf(want, sizeof(want), ":14: topology binding 1: 'match' is not a valid MQTT topic filter "
	         "for a binding (\"alarms/#/x\": %s)", topic_strerror(TOPIC_ERR_BAD_FILTER));
	expect_error(conf_path("bad-topo-binding-filter.conf"), want);
}
END_TEST

START_TEST(test_many_errors)
{
	char filter_msg[256];
	const char *want[] = {
		":2: missing required setting 'mqtt.host' (or 'mqtt.hosts')",
		":3: unknown setting 'mqtt.hots' (did you mean 'mqtt.host'?)",
		":4: 'mqtt.port' must be between 1 and 65535 (not 0)",
		":5: 'mqtt.keepalive' must be an integer",
		":7: 'mqtt.session_expiry' is only meaningful for MQTT 5 (mqtt.protocol = \"5\")",
		":8: 'mqtt.password' is set but 'mqtt.username' is not",
		filter_msg,
		":11: missing required setting 'amqp.host' (or 'amqp.hosts')",
		":12: 'amqp.port' must be between 1 and 65535 (not 99999999999)",
		":13: 'amqp.exchange_type' must be one of topic, direct, fanout, headers (not \"fanout \")",
		":14: 'amqp.max_message_size' must be between 1 and 536870912 (not 0)",
		":17: 'bridge.log_level' must be one of error, warning, info, debug (not \"trace\")",
		":18: 'bridge.dot_replacement' must not contain '/', '+', '#' or '*'",
		":20: 'bridge.reconnect_max_ms' (1000) must not be less than 'bridge.reconnect_min_ms' (2000)",
		":21: 'bridge.drain_timeout' must be between 0 and 3600 (not 3601)",
		":23: unknown setting 'extra'",
	};

	snprintf(filter_msg, sizeof(filter_msg),
	         ":9: 'mqtt.subscribe[0]' is not a valid MQTT topic filter (\"a/+b\": %s)",
	         topic_strerror(TOPIC_ERR_BAD_FILTER));
	expect_errors(conf_path("bad-many.conf"), want, sizeof(want) / sizeof(want[0]));
}
END_TEST

/* Every bad-*.conf is exercised by some test, and each fails to load. */
START_TEST(test_all_bad_files_covered)
{
	DIR *dir = opendir(TEST_CONF_DIR);
	struct dirent *d;
	size_t n_bad = 0;

	ck_assert_ptr_nonnull(dir);
	while ((d = readdir(dir)) != NULL) {
		size_t len = strlen(d->d_name);
		bool covered = false;

		if (strncmp(d->d_name, "bad-", 4) != 0 || len < 9
		    || strcmp(d->d_name + len - 5, ".conf") != 0)
			continue;
		n_bad++;
		for (size_t i = 0; i < N_SINGLE && !covered; i++)
			covered = strcmp(single[i].file, d->d_name) == 0;
		for (size_t i = 0; i < sizeof(own_tests) / sizeof(own_tests[0]) && !covered; i++)
			covered = strcmp(own_tests[i], d->d_name) == 0;
		ck_assert_msg(covered, "%s has no test", d->d_name);
	}
	closedir(dir);
	ck_assert_uint_eq(n_bad, N_SINGLE + sizeof(own_tests) / sizeof(own_tests[0]));
}
END_TEST

START_TEST(test_defaults)
{
	struct bridge_config cfg;

	load_ok(conf_path("good-minimal.conf"), &cfg);
	ck_assert_str_eq(cfg.path, conf_path("good-minimal.conf"));
	ck_assert_str_eq(cfg.mqtt.host, "127.0.0.1");
	ck_assert_int_eq(cfg.mqtt.port, 1883);
	ck_assert_str_eq(cfg.mqtt.client_id, "mqtt-amqp-bridge");
	ck_assert_ptr_null(cfg.mqtt.username);
	ck_assert_ptr_null(cfg.mqtt.password);
	ck_assert_int_eq(cfg.mqtt.keepalive, 60);
	ck_assert_int_eq(cfg.mqtt.protocol, MQTT_PROTOCOL_311);
	ck_assert_int_eq(cfg.mqtt.session_expiry, 86400);
	ck_assert_int_eq(cfg.mqtt.inflight_max, 1000);
	ck_assert_uint_eq(cfg.mqtt.n_subscribe, 1);
	ck_assert_str_eq(cfg.mqtt.subscribe[0], "sensors/#");
	ck_assert_ptr_null(cfg.mqtt.password_file);
	ck_assert_ptr_null(cfg.mqtt.password_credential);
	ck_assert(!cfg.mqtt.tls);
	ck_assert_ptr_null(cfg.mqtt.tls_ca_file);
	ck_assert_ptr_null(cfg.mqtt.tls_ca_dir);
	ck_assert_ptr_null(cfg.mqtt.tls_cert_file);
	ck_assert_ptr_null(cfg.mqtt.tls_key_file);
	ck_assert_str_eq(cfg.mqtt.tls_version, "tlsv1.2");
	ck_assert(!cfg.mqtt.tls_insecure);
	ck_assert_ptr_null(cfg.amqp.password_file);
	ck_assert_ptr_null(cfg.amqp.password_credential);
	ck_assert(!cfg.amqp.tls);
	ck_assert_ptr_null(cfg.amqp.tls_ca_file);
	ck_assert_ptr_null(cfg.amqp.tls_cert_file);
	ck_assert_ptr_null(cfg.amqp.tls_key_file);
	ck_assert_str_eq(cfg.amqp.tls_version, "tlsv1.2");
	ck_assert(!cfg.amqp.tls_insecure);
	ck_assert_int_eq(cfg.bridge.log_target, LOG_TARGET_STDERR);
	ck_assert_uint_eq(cfg.n_warnings, 0);

	ck_assert_str_eq(cfg.amqp.host, "127.0.0.1");
	ck_assert_int_eq(cfg.amqp.port, 5672);
	ck_assert_str_eq(cfg.amqp.vhost, "/");
	ck_assert_str_eq(cfg.amqp.username, "guest");
	ck_assert_str_eq(cfg.amqp.password, "guest");
	ck_assert_int_eq(cfg.amqp.heartbeat, 30);
	ck_assert_int_eq(cfg.amqp.connect_timeout, 10);
	ck_assert_str_eq(cfg.amqp.exchange, "amq.topic");
	ck_assert_str_eq(cfg.amqp.exchange_type, "topic");
	ck_assert(cfg.amqp.declare_exchange);
	ck_assert_ptr_null(cfg.amqp.dead_letter_exchange);
	ck_assert_int_eq(cfg.amqp.max_message_size, 134217728);

	ck_assert_int_eq(cfg.bridge.log_level, LOG_LVL_INFO);
	ck_assert_str_eq(cfg.bridge.dot_replacement, ".");
	ck_assert_int_eq(cfg.bridge.reconnect_min_ms, 500);
	ck_assert_int_eq(cfg.bridge.reconnect_max_ms, 30000);
	ck_assert_int_eq(cfg.bridge.drain_timeout, 10);
	ck_assert_int_eq(cfg.bridge.unmatched, UNMATCHED_FORWARD);
	ck_assert(!cfg.bridge.topic_header);
	ck_assert(!cfg.bridge.retain_header);
	ck_assert(cfg.mqtt.subscribe_explicit);

	/* No rules is an empty set, never NULL; no topology, nothing to check. */
	ck_assert_ptr_nonnull(cfg.rules);
	ck_assert_uint_eq(rules_count(cfg.rules), 0);
	ck_assert_uint_eq(cfg.topology.n_exchanges, 0);
	ck_assert_uint_eq(cfg.topology.n_queues, 0);
	ck_assert_uint_eq(cfg.topology.n_bindings, 0);
	ck_assert_ptr_null(cfg.topology.exchanges);
	ck_assert_uint_eq(cfg.n_check_exchanges, 0);
	config_free(&cfg);
}
END_TEST

START_TEST(test_every_setting)
{
	struct bridge_config cfg;

	load_ok(conf_path("good-full.conf"), &cfg);
	ck_assert_str_eq(cfg.mqtt.host, "mqtt.example.net");
	ck_assert_int_eq(cfg.mqtt.port, 8883);
	ck_assert_str_eq(cfg.mqtt.client_id, "bridge-7");
	ck_assert_str_eq(cfg.mqtt.username, "bridge");
	ck_assert_str_eq(cfg.mqtt.password, "mqtt-secret");
	ck_assert_int_eq(cfg.mqtt.keepalive, 120);
	ck_assert_int_eq(cfg.mqtt.protocol, MQTT_PROTOCOL_5);
	/* Written without the L suffix: libconfig alone would read -1. */
	ck_assert_int_eq(cfg.mqtt.session_expiry, 4294967295LL);
	ck_assert_int_eq(cfg.mqtt.inflight_max, 65535);
	ck_assert_uint_eq(cfg.mqtt.n_subscribe, 2);
	ck_assert_str_eq(cfg.mqtt.subscribe[0], "$share/bridges/sensors/+/temp");
	ck_assert_str_eq(cfg.mqtt.subscribe[1], "alarms/#");

	ck_assert_str_eq(cfg.amqp.host, "rabbit.example.net");
	ck_assert_int_eq(cfg.amqp.port, 5671);
	ck_assert_str_eq(cfg.amqp.vhost, "iot");
	ck_assert_str_eq(cfg.amqp.username, "bridge");
	ck_assert_str_eq(cfg.amqp.password, "amqp-secret");
	ck_assert_int_eq(cfg.amqp.heartbeat, 3600);
	ck_assert_int_eq(cfg.amqp.connect_timeout, 1);
	ck_assert_str_eq(cfg.amqp.exchange, "telemetry");
	ck_assert_str_eq(cfg.amqp.exchange_type, "headers");
	ck_assert(!cfg.amqp.declare_exchange);
	ck_assert_str_eq(cfg.amqp.dead_letter_exchange, "telemetry.dlx");
	ck_assert_int_eq(cfg.amqp.max_message_size, 536870912);

	ck_assert_int_eq(cfg.bridge.log_level, LOG_LVL_DEBUG);
	ck_assert_str_eq(cfg.bridge.dot_replacement, "_");
	ck_assert_int_eq(cfg.bridge.reconnect_min_ms, 10);
	ck_assert_int_eq(cfg.bridge.reconnect_max_ms, 600000);
	ck_assert_int_eq(cfg.bridge.drain_timeout, 0);
	config_free(&cfg);
}
END_TEST

START_TEST(test_sample_config)
{
	struct bridge_config cfg;

	load_ok(SAMPLE_CONF, &cfg);
	ck_assert_str_eq(cfg.mqtt.host, "127.0.0.1");
	ck_assert_str_eq(cfg.amqp.host, "127.0.0.1");
	/* The sample leaves subscribe out, and says what its rules subscribe to instead. */
	ck_assert(!cfg.mqtt.subscribe_explicit);
	ck_assert_uint_gt(rules_count(cfg.rules), 0);
	ck_assert_uint_eq(cfg.mqtt.n_subscribe, 2);
	ck_assert_str_eq(cfg.mqtt.subscribe[0], "sensors/#");
	ck_assert_str_eq(cfg.mqtt.subscribe[1], "devices/+/alarm/#");
	ck_assert_uint_eq(cfg.n_warnings, 0);
	ck_assert_str_eq(cfg.amqp.exchange, "telemetry");
	ck_assert_str_eq(cfg.amqp.exchange_type, "topic");
	ck_assert(cfg.amqp.declare_exchange);
	config_free(&cfg);
}
END_TEST

START_TEST(test_missing_file)
{
	char want[512];

	snprintf(want, sizeof(want), ": cannot read: %s", strerror(ENOENT));
	expect_error(conf_path("no-such-file.conf"), want);
}
END_TEST

START_TEST(test_directory)
{
	expect_error(TEST_CONF_DIR, ": cannot read: it is a directory, not a regular file");
}
END_TEST

/* Earlier messages in the list are kept; new ones are appended. */
START_TEST(test_errors_appended)
{
	struct bridge_config cfg;
	struct config_errors errs;
	char want[1024];

	config_errors_init(&errs);
	scribble(&cfg);
	ck_assert_int_eq(config_load(conf_path("bad-port-range.conf"), &cfg, &errs), -1);
	ck_assert_int_eq(config_load(conf_path("bad-missing-mqtt.conf"), &cfg, &errs), -1);
	ck_assert_uint_eq(errs.n, 2);
	snprintf(want, sizeof(want), "%s:1: missing required group 'mqtt'",
	         conf_path("bad-missing-mqtt.conf"));
	ck_assert_str_eq(errs.msg[1], want);
	snprintf(want, sizeof(want), "%s:5: 'mqtt.port' must be between 1 and 65535 (not 70000)",
	         conf_path("bad-port-range.conf"));
	ck_assert_str_eq(errs.msg[0], want);
	/* A good file loads even when the list already holds errors. */
	ck_assert_int_eq(config_load(conf_path("good-minimal.conf"), &cfg, &errs), 0);
	ck_assert_uint_eq(errs.n, 2);
	config_free(&cfg);
	config_errors_free(&errs);
	ck_assert_ptr_null(errs.msg);
	ck_assert_uint_eq(errs.n, 0);
}
END_TEST

START_TEST(test_free_is_safe)
{
	struct bridge_config cfg;
	struct config_errors errs;

	memset(&cfg, 0, sizeof(cfg));
	config_free(&cfg);
	load_ok(conf_path("good-full.conf"), &cfg);
	config_free(&cfg);
	config_free(&cfg);
	assert_empty(&cfg);
	config_errors_init(&errs);
	config_errors_free(&errs);
}
END_TEST

static char *print_to_string(const struct bridge_config *cfg)
{
	char *buf = NULL;
	size_t len = 0;
	FILE *out = open_memstream(&buf, &len);

	ck_assert_ptr_nonnull(out);
	config_print(cfg, out);
	fclose(out);
	return buf;
}

START_TEST(test_print_hides_secrets)
{
	struct bridge_config cfg;
	char *text;

	load_ok(conf_path("good-full.conf"), &cfg);
	text = print_to_string(&cfg);
	ck_assert_ptr_null(strstr(text, "mqtt-secret"));
	ck_assert_ptr_null(strstr(text, "amqp-secret"));
	ck_assert_ptr_nonnull(strstr(text, "\nmqtt.password = (set)\n"));
	ck_assert_ptr_nonnull(strstr(text, "\namqp.password = (set)\n"));
	ck_assert_ptr_nonnull(strstr(text, "\nmqtt.username = \"bridge\"\n"));
	ck_assert_ptr_nonnull(strstr(text, "\nmqtt.protocol = \"5\"\n"));
	ck_assert_ptr_nonnull(strstr(text, "\nmqtt.session_expiry = 4294967295\n"));
	ck_assert_ptr_nonnull(strstr(text,
	        "\nmqtt.subscribe = [\"$share/bridges/sensors/+/temp\", \"alarms/#\"]\n"));
	ck_assert_ptr_nonnull(strstr(text, "\namqp.declare_exchange = false\n"));
	ck_assert_ptr_nonnull(strstr(text, "\nbridge.log_level = \"debug\"\n"));
	free(text);
	config_free(&cfg);

	load_ok(conf_path("good-minimal.conf"), &cfg);
	text = print_to_string(&cfg);
	ck_assert_ptr_null(strstr(text, "amqp.password = \""));
	ck_assert_ptr_nonnull(strstr(text, "\namqp.username = \"guest\"\n"));
	ck_assert_ptr_nonnull(strstr(text, "\namqp.password = (set)\n"));
	ck_assert_ptr_nonnull(strstr(text, "\nmqtt.password = (unset)\n"));
	ck_assert_ptr_nonnull(strstr(text, "\namqp.dead_letter_exchange = (unset)\n"));
	ck_assert_ptr_nonnull(strstr(text, "\nmqtt.session_expiry = (MQTT 5 only)\n"));
	ck_assert_ptr_nonnull(strstr(text, "\nmqtt.password_file = (unset)\n"));
	ck_assert_ptr_nonnull(strstr(text, "\namqp.tls = false\n"));
	ck_assert_ptr_nonnull(strstr(text, "\nbridge.log_target = \"stderr\"\n"));
	free(text);
	config_free(&cfg);
}
END_TEST

/*
 * Configuration files written by the tests to a temporary directory.  The
 * fixture runs in the parent process, so the directory is removed even when
 * a test fails.
 */
static char tmpdir[64];

static void tmp_setup(void)
{
	snprintf(tmpdir, sizeof(tmpdir), "/tmp/check_config.XXXXXX");
	if (mkdtemp(tmpdir) == NULL) {
		perror("mkdtemp");
		exit(EXIT_FAILURE);
	}
}

static void tmp_teardown(void)
{
	const char *names[] = { "t.conf", "t2.conf", "secret", "cred", "ca.pem", "key.pem", "fifo",
	                        "sock", "a.conf", "b.conf" };
	char path[128];

	for (size_t i = 0; i < sizeof(names) / sizeof(names[0]); i++) {
		snprintf(path, sizeof(path), "%s/%s", tmpdir, names[i]);
		unlink(path);
	}
	if (rmdir(tmpdir) != 0)
		perror(tmpdir);
}

/*
 * Writes the minimal configuration plus the lines given and returns its
 * path; line 4 holds the first extra mqtt line.
 */
static const char *write_conf(const char *mqtt_extra, const char *amqp_extra)
{
	static char path[128];
	FILE *fp;

	snprintf(path, sizeof(path), "%s/t.conf", tmpdir);
	fp = fopen(path, "w");
	ck_assert_ptr_nonnull(fp);
	fprintf(fp, "mqtt = {\n\thost = \"127.0.0.1\";\n\tsubscribe = [ \"a/#\" ];\n%s};\n"
	            "amqp = {\n\thost = \"127.0.0.1\";\n%s};\n", mqtt_extra, amqp_extra);
	ck_assert_int_eq(fclose(fp), 0);
	return path;
}

/* Writes `text` as the whole file and returns its path. */
static const char *write_raw(const char *text)
{
	static char path[128];
	FILE *fp;

	snprintf(path, sizeof(path), "%s/t.conf", tmpdir);
	fp = fopen(path, "w");
	ck_assert_ptr_nonnull(fp);
	fputs(text, fp);
	ck_assert_int_eq(fclose(fp), 0);
	return path;
}

START_TEST(test_numbers_in_range)
{
	struct bridge_config cfg;

	load_ok(write_conf("\tport = 0x50;\n\tkeepalive = 65535L;\n\tprotocol = \"5\";\n"
	                   "\tsession_expiry = 1;\n",
	                   "\tport = 65535;\n\tmax_message_size = 536870912;\n"), &cfg);
	ck_assert_int_eq(cfg.mqtt.port, 80);
	ck_assert_int_eq(cfg.mqtt.keepalive, 65535);
	ck_assert_int_eq(cfg.mqtt.session_expiry, 1);
	ck_assert_int_eq(cfg.amqp.port, 65535);
	ck_assert_int_eq(cfg.amqp.max_message_size, 536870912);
	config_free(&cfg);

	/* Not confused by the same name in a comment. */
	load_ok(write_conf("\tport = 80; # port = 4294967376\n", ""), &cfg);
	ck_assert_int_eq(cfg.mqtt.port, 80);
	config_free(&cfg);

	load_ok(write_conf("\tprotocol = \"5\";\n\tsession_expiry = 0xFFFFFFFF;\n", ""), &cfg);
	ck_assert_int_eq(cfg.mqtt.session_expiry, 4294967295LL);
	config_free(&cfg);
}
END_TEST

/* Numbers libconfig 1.5 would silently truncate to 32 bits are refused. */
START_TEST(test_numbers_truncated)
{
	expect_error(write_conf("\tkeepalive = 4294967356;\n", ""),
	             ":4: 'mqtt.keepalive' must be between 5 and 65535 (not 4294967356)");
	expect_error(write_conf("\tport =\n\t\t4294968179;\n", ""),
	             ":4: 'mqtt.port' must be between 1 and 65535 (not 4294968179)");
	expect_error(write_conf("\tport = 0x100000050;\n", ""),
	             ":4: 'mqtt.port' must be between 1 and 65535 (not 4294967376)");
	expect_error(write_conf("\tprotocol = \"5\";\n\tsession_expiry = 4294967296;\n", ""),
	             ":5: 'mqtt.session_expiry' must be between 1 and 4294967295 (not 4294967296)");
	expect_error(write_conf("", "\tconnect_timeout = -4294967286;\n"),
	             ":7: 'amqp.connect_timeout' must be between 1 and 300 (not -4294967286)");
}
END_TEST

START_TEST(test_numbers_beyond_int64)
{
	expect_error(write_conf("\tport = 99999999999999999999;\n", ""),
	             ":4: 'mqtt.port' must be between 1 and 65535 (not 99999999999999999999)");
	expect_error(write_conf("", "\tmax_message_size = 99999999999999999999L;\n"),
	             ":7: 'amqp.max_message_size' must be between 1 and 536870912 (not 99999999999999999999L)");
	expect_error(write_conf("", "\tmax_message_size = -9223372036854775808L;\n"),
	             ":7: 'amqp.max_message_size' must be between 1 and 536870912 (not -9223372036854775808)");
}
END_TEST

START_TEST(test_strings)
{
	struct bridge_config cfg;
	char long_id[70000];

	/* An empty password is a password; a dot replacement may be empty or "." only. */
	load_ok(write_conf("\tusername = \"u\";\n\tpassword = \"\";\n", "\tpassword = \"\";\n"), &cfg);
	ck_assert_str_eq(cfg.mqtt.password, "");
	ck_assert_str_eq(cfg.amqp.password, "");
	config_free(&cfg);

	expect_error(write_conf("", "\texchange = \"amq.direct\";\n\tdead_letter_exchange = \"\";\n"),
	             ":8: 'amqp.dead_letter_exchange' must not be empty");
	expect_error(write_conf("\tclient_id = \"\";\n", ""),
	             ":4: 'mqtt.client_id' must not be empty");
	expect_error(write_conf("", "\tvhost = 127;\n"),
	             ":7: 'amqp.vhost' must be a string (in double quotes)");
	expect_error(write_conf("\tprotocol = 5;\n", ""),
	             ":4: 'mqtt.protocol' must be \"3.1.1\" or \"5\" (a string, in double quotes)");

	memset(long_id, 'c', sizeof(long_id) - 1);
	long_id[65536] = '\0';
	{
		char extra[sizeof(long_id) + 32];

		snprintf(extra, sizeof(extra), "\tclient_id = \"%s\";\n", long_id);
		expect_error(write_conf(extra, ""),
		             ":4: 'mqtt.client_id' must be at most 65535 bytes long (it has 65536)");
	}
}
END_TEST

START_TEST(test_dot_replacement)
{
	struct bridge_config cfg;
	const char *path;
	FILE *fp;

	path = write_conf("", "");
	fp = fopen(path, "a");
	ck_assert_ptr_nonnull(fp);
	fputs("bridge = {\n\tdot_replacement = \"_.\";\n};\n", fp);
	fclose(fp);
	expect_error(path, ":9: 'bridge.dot_replacement' must be \".\" or contain no '.'");

	path = write_raw("mqtt = { host = \"h\"; subscribe = [\"a\"]; };\namqp = { host = \"h\"; };\n"
	                 "bridge = { dot_replacement = \"\"; log_level = \"error\"; };\n");
	load_ok(path, &cfg);
	ck_assert_str_eq(cfg.bridge.dot_replacement, "");
	ck_assert_int_eq(cfg.bridge.log_level, LOG_LVL_ERROR);
	config_free(&cfg);
}
END_TEST

START_TEST(test_reconnect_min_above_default_max)
{
	const char *path = write_conf("", "");
	FILE *fp = fopen(path, "a");

	ck_assert_ptr_nonnull(fp);
	fputs("bridge = {\n\treconnect_min_ms = 40000;\n};\n", fp);
	fclose(fp);
	expect_error(path, ":9: 'bridge.reconnect_max_ms' (30000) must not be less than "
	                   "'bridge.reconnect_min_ms' (40000)");
}
END_TEST

/*
 * Settings the sample shows with an example rather than a default: with
 * tls = false, a second source of the password, or `host` given, they are
 * refused.
 */
static const char *const sample_examples[] = {
	"password_file", "password_credential", "tls_ca_file", "tls_ca_dir", "tls_cert_file",
	"tls_key_file", "tls_version", "tls_insecure", "hosts",
};

/* "\t# name = value;" -> "\tname = value;", for a commented-out setting. */
static bool uncomment(char *line)
{
	char *p = line, *q;

	while (*p == '\t' || *p == ' ')
		p++;
	if (strncmp(p, "# ", 2) != 0)
		return false;
	for (q = p + 2; (*q >= 'a' && *q <= 'z') || *q == '_'; q++)
		;
	if (q == p + 2 || strncmp(q, " = ", 3) != 0 || strstr(q, ";\n") == NULL)
		return false;
	for (size_t i = 0; i < sizeof(sample_examples) / sizeof(sample_examples[0]); i++)
		if (strlen(sample_examples[i]) == (size_t)(q - p - 2)
		    && strncmp(p + 2, sample_examples[i], (size_t)(q - p - 2)) == 0)
			return false;
	memmove(p, p + 2, strlen(p + 2) + 1);
	return true;
}

/*
 * The sample with every commented-out setting enabled: the values it shows
 * are valid and are the defaults, and the one it warns about
 * (session_expiry with MQTT 3.1.1) is refused.
 */
START_TEST(test_sample_commented_defaults)
{
	char path[128], *line = NULL, want[256];
	size_t cap = 0;
	unsigned lineno = 0, expiry_line = 0, n_uncommented = 0;
	FILE *in = fopen(SAMPLE_CONF, "r"), *out;
	struct bridge_config cfg, def;

	ck_assert_ptr_nonnull(in);
	snprintf(path, sizeof(path), "%s/t.conf", tmpdir);
	out = fopen(path, "w");
	ck_assert_ptr_nonnull(out);
	while (getline(&line, &cap, in) > 0) {
		lineno++;
		if (uncomment(line)) {
			n_uncommented++;
			if (strstr(line, "session_expiry") != NULL)
				expiry_line = lineno;
		}
		fputs(line, out);
	}
	free(line);
	fclose(in);
	ck_assert_int_eq(fclose(out), 0);
	ck_assert_uint_ge(n_uncommented, 20);
	ck_assert_uint_ne(expiry_line, 0);

	snprintf(want, sizeof(want),
	         ":%u: 'mqtt.session_expiry' is only meaningful for MQTT 5 (mqtt.protocol = \"5\")",
	         expiry_line);
	expect_error(path, want);

	/* Without that line, it loads and agrees with the built-in defaults. */
	in = fopen(path, "r");
	ck_assert_ptr_nonnull(in);
	snprintf(path, sizeof(path), "%s/t2.conf", tmpdir);
	out = fopen(path, "w");
	ck_assert_ptr_nonnull(out);
	line = NULL;
	lineno = 0;
	while (getline(&line, &cap, in) > 0)
		if (++lineno != expiry_line)
			fputs(line, out);
	free(line);
	fclose(in);
	ck_assert_int_eq(fclose(out), 0);

	load_ok(path, &cfg);
	load_ok(conf_path("good-minimal.conf"), &def);
	ck_assert_int_eq(cfg.mqtt.port, def.mqtt.port);
	ck_assert_str_eq(cfg.mqtt.client_id, def.mqtt.client_id);
	ck_assert_int_eq(cfg.mqtt.keepalive, def.mqtt.keepalive);
	ck_assert_int_eq(cfg.mqtt.protocol, def.mqtt.protocol);
	ck_assert_int_eq(cfg.mqtt.inflight_max, def.mqtt.inflight_max);
	ck_assert_int_eq(cfg.amqp.port, def.amqp.port);
	ck_assert_str_eq(cfg.amqp.vhost, def.amqp.vhost);
	ck_assert_str_eq(cfg.amqp.username, def.amqp.username);
	ck_assert_str_eq(cfg.amqp.password, def.amqp.password);
	ck_assert_int_eq(cfg.amqp.heartbeat, def.amqp.heartbeat);
	ck_assert_int_eq(cfg.amqp.connect_timeout, def.amqp.connect_timeout);
	ck_assert_int_eq(cfg.amqp.max_message_size, def.amqp.max_message_size);
	ck_assert_int_eq(cfg.bridge.log_level, def.bridge.log_level);
	ck_assert_str_eq(cfg.bridge.dot_replacement, def.bridge.dot_replacement);
	ck_assert_int_eq(cfg.bridge.reconnect_min_ms, def.bridge.reconnect_min_ms);
	ck_assert_int_eq(cfg.bridge.reconnect_max_ms, def.bridge.reconnect_max_ms);
	ck_assert_int_eq(cfg.bridge.drain_timeout, def.bridge.drain_timeout);
	ck_assert_int_eq(cfg.bridge.log_target, def.bridge.log_target);
	ck_assert_int_eq(cfg.mqtt.tls, def.mqtt.tls);
	ck_assert_int_eq(cfg.amqp.tls, def.amqp.tls);
	ck_assert_int_eq(cfg.mqtt.hosts_order, def.mqtt.hosts_order);
	ck_assert_int_eq(cfg.mqtt.primary_retry, def.mqtt.primary_retry);
	ck_assert_int_eq(cfg.amqp.hosts_order, def.amqp.hosts_order);
	ck_assert_int_eq(cfg.amqp.primary_retry, def.amqp.primary_retry);
	config_free(&cfg);
	config_free(&def);
}
END_TEST

START_TEST(test_unknown_setting_hints)
{
	const char *want[] = {
		":1: missing required group 'amqp'",
		":4: unknown setting 'mqtt.log_level' (did you mean 'bridge.log_level'?)",
		":5: unknown setting 'mqtt.prot' (did you mean 'mqtt.port'?)",
		":6: unknown setting 'mqtt.verbose'",
		":8: unknown setting 'amqpp' (did you mean 'amqp'?)",
		":9: unknown setting 'host'",
	};
	const char *path = write_raw("mqtt = {\n\thost = \"h\";\n\tsubscribe = [\"a\"];\n"
	                             "\tlog_level = \"debug\";\n\tprot = 1;\n\tverbose = true;\n};\n"
	                             "amqpp = { host = \"h\"; };\nhost = \"h\";\n");

	expect_errors(path, want, sizeof(want) / sizeof(want[0]));
}
END_TEST

/* A rule across settings is not applied to a value already refused. */
START_TEST(test_relations_skip_refused_values)
{
	const char *want[] = {
		":4: 'mqtt.protocol' must be \"3.1.1\" or \"5\" (not \"6\")",
		":11: 'bridge.reconnect_min_ms' must be between 10 and 60000 (not 70000)",
	};
	const char *path = write_conf("\tprotocol = \"6\";\n\tsession_expiry = 60;\n", "");
	FILE *fp = fopen(path, "a");

	ck_assert_ptr_nonnull(fp);
	fputs("bridge = {\n\treconnect_min_ms = 70000;\n\treconnect_max_ms = 1000;\n};\n", fp);
	fclose(fp);
	expect_errors(path, want, 2);
}
END_TEST

/* A file in the temporary directory, with `mode`; returns its path. */
static const char *write_file(const char *name, const char *text, size_t len, mode_t mode)
{
	static char paths[4][128];
	static unsigned next;
	char *path = paths[next++ % 4];
	FILE *fp;

	snprintf(path, 128, "%s/%s", tmpdir, name);
	unlink(path);
	fp = fopen(path, "w");
	ck_assert_ptr_nonnull(fp);
	ck_assert_uint_eq(fwrite(text, 1, len, fp), len);
	ck_assert_int_eq(fclose(fp), 0);
	ck_assert_int_eq(chmod(path, mode), 0);
	return path;
}

/* Loads `path` and insists on exactly the warnings `want` (each after the path). */
static void expect_warnings(const char *path, struct bridge_config *cfg, const char *const *want,
                            size_t n_want)
{
	char expected[1024];

	load_ok(path, cfg);
	if (cfg->n_warnings != n_want)
		for (size_t i = 0; i < cfg->n_warnings; i++)
			fprintf(stderr, "  warning: %s\n", cfg->warnings[i]);
	ck_assert_uint_eq(cfg->n_warnings, n_want);
	for (size_t i = 0; i < n_want; i++) {
		snprintf(expected, sizeof(expected), "%s%s", path, want[i]);
		ck_assert_str_eq(cfg->warnings[i], expected);
	}
}

START_TEST(test_password_file)
{
	struct bridge_config cfg;
	const char *secret, *path;
	char extra[512], want[1024];

	secret = write_file("secret", "s3cret \n# not the password\n", 27, 0600);
	snprintf(extra, sizeof(extra), "\tusername = \"u\";\n\tpassword_file = \"%s\";\n", secret);
	path = write_conf(extra, "");
	chmod(path, 0644);
	expect_warnings(path, &cfg, NULL, 0);
	ck_assert_str_eq(cfg.mqtt.password, "s3cret ");
	ck_assert_str_eq(cfg.mqtt.password_file, secret);
	config_free(&cfg);

	/* No newline at all; amqp needs no username (it defaults to guest). */
	secret = write_file("secret", "pw", 2, 0640);
	snprintf(extra, sizeof(extra), "\tpassword_file = \"%s\";\n", secret);
	load_ok(write_conf("", extra), &cfg);
	ck_assert_str_eq(cfg.amqp.password, "pw");
	ck_assert_str_eq(cfg.amqp.username, "guest");
	ck_assert_uint_eq(cfg.n_warnings, 0);
	config_free(&cfg);

	/* Readable by others: a warning naming the setting's line and the file. */
	secret = write_file("secret", "pw\n", 3, 0644);
	path = write_conf("", extra);
	snprintf(want, sizeof(want), ":7: the password file %s is readable by every user "
	         "(mode 0644); chmod o-r it", secret);
	{
		const char *w[] = { want };

		expect_warnings(path, &cfg, w, 1);
	}
	config_free(&cfg);

	secret = write_file("secret", "\nsecond line\n", 13, 0600);
	snprintf(want, sizeof(want), ":7: 'amqp.password_file' names %s, which is empty (its first "
	         "line is the password)", secret);
	expect_error(write_conf("", extra), want);

	secret = write_file("secret", "", 0, 0600);
	expect_error(write_conf("", extra), want);

	unlink(secret);
	snprintf(want, sizeof(want), ":7: 'amqp.password_file' cannot be read (%s): %s", secret,
	         strerror(ENOENT));
	expect_error(write_conf("", extra), want);

	snprintf(extra, sizeof(extra), "\tpassword_file = \"%s\";\n", tmpdir);
	snprintf(want, sizeof(want), ":7: 'amqp.password_file' names %s, which is a directory, not a "
	         "regular file", tmpdir);
	expect_error(write_conf("", extra), want);

	/* Three ways at once: each extra one is reported. */
	{
		const char *w[] = {
			":8: 'amqp.password_file' cannot be combined with 'amqp.password': give the "
			"password one way only",
			":9: 'amqp.password_credential' cannot be combined with 'amqp.password': give "
			"the password one way only",
		};

		expect_errors(write_conf("", "\tpassword = \"x\";\n\tpassword_file = \"/a\";\n"
		                             "\tpassword_credential = \"b\";\n"), w, 2);
	}
}
END_TEST

START_TEST(test_password_credential)
{
	struct bridge_config cfg;
	char want[512];

	write_file("cred", "from-systemd\n", 13, 0400);
	setenv("CREDENTIALS_DIRECTORY", tmpdir, 1);
	load_ok(write_conf("\tusername = \"u\";\n\tpassword_credential = \"cred\";\n", ""), &cfg);
	ck_assert_str_eq(cfg.mqtt.password, "from-systemd");
	ck_assert_str_eq(cfg.mqtt.password_credential, "cred");
	ck_assert_uint_eq(cfg.n_warnings, 0);
	config_free(&cfg);

	snprintf(want, sizeof(want), ":7: 'amqp.password_credential' cannot be read (%s/nope): %s",
	         tmpdir, strerror(ENOENT));
	expect_error(write_conf("", "\tpassword_credential = \"nope\";\n"), want);

	unsetenv("CREDENTIALS_DIRECTORY");
	expect_error(write_conf("", "\tpassword_credential = \"cred\";\n"),
	             ":7: 'amqp.password_credential' needs $CREDENTIALS_DIRECTORY, which is not set "
	             "(systemd sets it for LoadCredential= and SetCredential=)");
	expect_error(write_conf("\tpassword_credential = \"cred\";\n", ""),
	             ":4: 'mqtt.password_credential' is set but 'mqtt.username' is not");
}
END_TEST

/* The configuration file itself, when it holds a password. */
START_TEST(test_config_file_mode)
{
	struct bridge_config cfg;
	const char *path;
	const char *w[] = {
		":5: 'mqtt.password' is in a file readable by every user (mode 0644); chmod o-r it, "
		"or use password_file or password_credential",
		":9: 'amqp.password' is in a file readable by every user (mode 0644); chmod o-r it, "
		"or use password_file or password_credential",
	};

	path = write_conf("\tusername = \"u\";\n\tpassword = \"p\";\n", "\tpassword = \"q\";\n");
	ck_assert_int_eq(chmod(path, 0644), 0);
	expect_warnings(path, &cfg, w, 2);
	config_free(&cfg);
	ck_assert_int_eq(chmod(path, 0640), 0);
	expect_warnings(path, &cfg, NULL, 0);
	config_free(&cfg);

	/* Without a password setting (amqp's default "guest" is no secret). */
	path = write_conf("", "");
	ck_assert_int_eq(chmod(path, 0644), 0);
	expect_warnings(path, &cfg, NULL, 0);
	config_free(&cfg);
}
END_TEST

START_TEST(test_tls)
{
	struct bridge_config cfg;
	const char *ca, *key, *path;
	char mqtt[1024], amqp[1024], want[1024], want2[1024];
	char *text;

	ca = write_file("ca.pem", "x", 1, 0644);
	key = write_file("key.pem", "k", 1, 0600);
	snprintf(mqtt, sizeof(mqtt), "\ttls = true;\n\ttls_ca_file = \"%s\";\n\ttls_ca_dir = \"%s\";\n"
	         "\ttls_cert_file = \"%s\";\n\ttls_key_file = \"%s\";\n\ttls_version = \"tlsv1.3\";\n",
	         ca, tmpdir, ca, key);
	snprintf(amqp, sizeof(amqp), "\ttls = true;\n\ttls_ca_file = \"%s\";\n\ttls_insecure = true;\n",
	         ca);
	path = write_conf(mqtt, amqp);
	{
		const char *w[] = {
			":15: 'amqp.tls_insecure' is true: the amqp broker's certificate and host name "
			"are not verified",
		};

		expect_warnings(path, &cfg, w, 1);
	}
	ck_assert(cfg.mqtt.tls);
	ck_assert_str_eq(cfg.mqtt.tls_ca_file, ca);
	ck_assert_str_eq(cfg.mqtt.tls_ca_dir, tmpdir);
	ck_assert_str_eq(cfg.mqtt.tls_cert_file, ca);
	ck_assert_str_eq(cfg.mqtt.tls_key_file, key);
	ck_assert_str_eq(cfg.mqtt.tls_version, "tlsv1.3");
	ck_assert(!cfg.mqtt.tls_insecure);
	ck_assert(cfg.amqp.tls);
	ck_assert(cfg.amqp.tls_insecure);
	ck_assert_ptr_null(cfg.amqp.tls_cert_file);
	text = print_to_string(&cfg);
	ck_assert_ptr_nonnull(strstr(text, "\nmqtt.tls = true\n"));
	snprintf(want, sizeof(want), "\nmqtt.tls_key_file = \"%s\"\n", key);
	ck_assert_ptr_nonnull(strstr(text, want));
	ck_assert_ptr_nonnull(strstr(text, "\nmqtt.tls_version = \"tlsv1.3\"\n"));
	ck_assert_ptr_nonnull(strstr(text, "\namqp.tls_insecure = true\n"));
	ck_assert_ptr_nonnull(strstr(text, "\namqp.tls_cert_file = (unset)\n"));
	free(text);
	config_free(&cfg);

	/* A private key others may read. */
	chmod(key, 0644);
	snprintf(want, sizeof(want), ":8: the private key file %s is readable by every user "
	         "(mode 0644); chmod o-r it", key);
	{
		const char *w[] = { want, ":15: 'amqp.tls_insecure' is true: the amqp broker's "
		                          "certificate and host name are not verified" };

		expect_warnings(path, &cfg, w, 2);
	}
	config_free(&cfg);

	/* Files that cannot be read, and a CA directory that is not one. */
	unlink(key);
	snprintf(mqtt, sizeof(mqtt), "\ttls = true;\n\ttls_ca_dir = \"%s\";\n"
	         "\ttls_cert_file = \"%s\";\n\ttls_key_file = \"%s\";\n", ca, ca, key);
	snprintf(want, sizeof(want), ":5: 'mqtt.tls_ca_dir' names %s, which is a regular file, not a "
	         "directory", ca);
	snprintf(want2, sizeof(want2), ":7: 'mqtt.tls_key_file' cannot be read (%s): %s", key,
	         strerror(ENOENT));
	{
		const char *w[] = { want, want2 };

		expect_errors(write_conf(mqtt, ""), w, 2);
	}
	snprintf(amqp, sizeof(amqp), "\ttls = true;\n\ttls_ca_file = \"%s\";\n", tmpdir);
	snprintf(want, sizeof(want), ":8: 'amqp.tls_ca_file' names %s, which is a directory, not a "
	         "regular file", tmpdir);
	expect_error(write_conf("", amqp), want);

	/* Every TLS setting is refused without tls = true, each on its line. */
	{
		const char *w[] = {
			":4: 'mqtt.tls_ca_dir' only applies with mqtt.tls = true",
			":5: 'mqtt.tls_version' only applies with mqtt.tls = true",
			":10: 'amqp.tls_key_file' only applies with amqp.tls = true",
		};

		expect_errors(write_conf("\ttls_ca_dir = \"/\";\n\ttls_version = \"tlsv1.2\";\n",
		                         "\ttls = false;\n\ttls_key_file = \"/\";\n"), w, 3);
	}
	snprintf(mqtt, sizeof(mqtt), "\ttls = true;\n\ttls_ca_file = \"%s\";\n\ttls_key_file = \"%s\";\n",
	         ca, ca);
	expect_error(write_conf(mqtt, ""),
	             ":6: 'mqtt.tls_key_file' is set but 'mqtt.tls_cert_file' is not: they come together");
	expect_error(write_conf("\ttls = \"yes\";\n\ttls_ca_file = \"/dev/null\";\n", ""),
	             ":4: 'mqtt.tls' must be true or false");
	expect_error(write_conf("\ttls = true;\n\ttls_ca_file = \"\";\n", ""),
	             ":5: 'mqtt.tls_ca_file' must not be empty");
}
END_TEST

/* Without a CA, the system's trust store: a directory for mqtt, a file for amqp. */
START_TEST(test_tls_default_ca)
{
	struct bridge_config cfg;
	struct config_errors errs;
	struct stat st;
	const char *path = write_conf("\ttls = true;\n", "\ttls = true;\n");
	int rc;

	config_errors_init(&errs);
	rc = config_load(path, &cfg, &errs);
	if (stat(MQTT_DEFAULT_CA_DIR, &st) == 0 && stat(AMQP_DEFAULT_CA_FILE, &st) == 0) {
		ck_assert_int_eq(rc, 0);
		ck_assert_str_eq(cfg.mqtt.tls_ca_dir, MQTT_DEFAULT_CA_DIR);
		ck_assert_ptr_null(cfg.mqtt.tls_ca_file);
		ck_assert_str_eq(cfg.amqp.tls_ca_file, AMQP_DEFAULT_CA_FILE);
		config_free(&cfg);
	} else {
		ck_assert_int_eq(rc, -1);
		ck_assert_uint_ge(errs.n, 1);
	}
	config_errors_free(&errs);
}
END_TEST

/* A FIFO in the temporary directory; returns its path. */
static const char *make_fifo(void)
{
	static char path[128];

	snprintf(path, sizeof(path), "%s/fifo", tmpdir);
	unlink(path);
	ck_assert_int_eq(mkfifo(path, 0600), 0);
	return path;
}

/* Loads `path`, insists that it fails with exactly the one message `want`, in full. */
static void expect_full_error(const char *path, const char *want)
{
	struct bridge_config cfg;
	struct config_errors errs;

	config_errors_init(&errs);
	scribble(&cfg);
	ck_assert_int_eq(config_load(path, &cfg, &errs), -1);
	assert_empty(&cfg);
	if (errs.n != 1)
		dump_errors(&errs);
	ck_assert_uint_eq(errs.n, 1);
	ck_assert_str_eq(errs.msg[0], want);
	config_errors_free(&errs);
}

/*
 * A file the configuration names that is not a regular file is refused at
 * once, never opened in a way that waits: a FIFO without a writer would
 * hold the load forever (Check's timeout would end this test).
 */
START_TEST(test_not_regular_files)
{
	const char *fifo = make_fifo(), *ca;
	char extra[512], want[1024], want2[1024], sock[sizeof(((struct sockaddr_un *)0)->sun_path)];
	struct sockaddr_un sa = { .sun_family = AF_UNIX };
	int fd;

	snprintf(extra, sizeof(extra), "\tpassword_file = \"%s\";\n", fifo);
	snprintf(want, sizeof(want), ":7: 'amqp.password_file' names %s, which is a FIFO, not a "
	         "regular file", fifo);
	expect_error(write_conf("", extra), want);

	setenv("CREDENTIALS_DIRECTORY", tmpdir, 1);
	snprintf(want, sizeof(want), ":7: 'amqp.password_credential' names %s, which is a FIFO, not "
	         "a regular file", fifo);
	expect_error(write_conf("", "\tpassword_credential = \"fifo\";\n"), want);
	unsetenv("CREDENTIALS_DIRECTORY");

	snprintf(extra, sizeof(extra), "\ttls = true;\n\ttls_ca_file = \"%s\";\n", fifo);
	snprintf(want, sizeof(want), ":5: 'mqtt.tls_ca_file' names %s, which is a FIFO, not a "
	         "regular file", fifo);
	expect_error(write_conf(extra, ""), want);

	snprintf(want, sizeof(want), ":8: 'amqp.tls_ca_file' names %s, which is a FIFO, not a "
	         "regular file", fifo);
	expect_error(write_conf("", extra), want);

	ca = write_file("ca.pem", "x", 1, 0644);
	snprintf(extra, sizeof(extra), "\ttls = true;\n\ttls_ca_file = \"%s\";\n"
	         "\ttls_cert_file = \"%s\";\n\ttls_key_file = \"%s\";\n", ca, fifo, fifo);
	snprintf(want, sizeof(want), ":6: 'mqtt.tls_cert_file' names %s, which is a FIFO, not a "
	         "regular file", fifo);
	snprintf(want2, sizeof(want2), ":7: 'mqtt.tls_key_file' names %s, which is a FIFO, not a "
	         "regular file", fifo);
	{
		const char *w[] = { want, want2 };

		expect_errors(write_conf(extra, ""), w, 2);
	}

	snprintf(extra, sizeof(extra), "\ttls = true;\n\ttls_ca_dir = \"%s\";\n", fifo);
	snprintf(want, sizeof(want), ":5: 'mqtt.tls_ca_dir' names %s, which is a FIFO, not a "
	         "directory", fifo);
	expect_error(write_conf(extra, ""), want);

	/* A device and a socket say what they are too. */
	expect_error(write_conf("\ttls = true;\n\ttls_ca_file = \"/dev/null\";\n", ""),
	             ":5: 'mqtt.tls_ca_file' names /dev/null, which is a character device, not a "
	             "regular file");
	snprintf(sock, sizeof(sock), "%s/sock", tmpdir);
	snprintf(sa.sun_path, sizeof(sa.sun_path), "%s", sock);
	unlink(sock);
	fd = socket(AF_UNIX, SOCK_STREAM, 0);
	ck_assert_int_ge(fd, 0);
	ck_assert_int_eq(bind(fd, (const struct sockaddr *)&sa, sizeof(sa)), 0);
	snprintf(extra, sizeof(extra), "\tpassword_file = \"%s\";\n", sock);
	snprintf(want, sizeof(want), ":7: 'amqp.password_file' names %s, which is a socket, not a "
	         "regular file", sock);
	expect_error(write_conf("", extra), want);
	close(fd);

	/* The configuration file itself. */
	expect_error(fifo, ": cannot read: it is a FIFO, not a regular file");
	expect_error("/dev/null", ": cannot read: it is a character device, not a regular file");
}
END_TEST

/* Writes `text` to `name` in the temporary directory and returns its path. */
static const char *write_named(const char *name, const char *text)
{
	return write_file(name, text, strlen(text), 0600);
}

#define MINIMAL "mqtt = { host = \"127.0.0.1\"; subscribe = [ \"a/#\" ]; };\n" \
                "amqp = { host = \"127.0.0.1\"; };\n"

/*
 * @include: every file named is checked before libconfig opens it, the
 * files it includes too; errors name the file and line of the @include.
 */
START_TEST(test_includes)
{
	const char *fifo = make_fifo(), *a, *t;
	char text[1024], want[1024], apath[128], tpath[128];
	struct bridge_config cfg;

	snprintf(apath, sizeof(apath), "%s/a.conf", tmpdir);
	snprintf(tpath, sizeof(tpath), "%s/t.conf", tmpdir);

	snprintf(text, sizeof(text), "# first\n  @include \"%s\"\n" MINIMAL, fifo);
	snprintf(want, sizeof(want), ":2: @include \"%s\" names a FIFO, not a regular file", fifo);
	expect_error(write_raw(text), want);

	/* One level down, the message names the included file. */
	snprintf(text, sizeof(text), "bridge = {\n\t@include \"%s\"\n};\n", fifo);
	a = write_named("a.conf", text);
	snprintf(text, sizeof(text), "@include \"%s\"\n" MINIMAL, a);
	t = write_raw(text);
	snprintf(want, sizeof(want), "%s:2: @include \"%s\" names a FIFO, not a regular file", a,
	         fifo);
	expect_full_error(t, want);

	/* Not an @include to libconfig: in a comment, in a string, not at a line's start. */
	snprintf(text, sizeof(text), "/*\n@include \"%s\"\n*/\n# @include \"%s\"\n" MINIMAL
	         "bridge = { dot_replacement = \"\n@include \\\"%s\\\"\n\"; };\n", fifo, fifo, fifo);
	snprintf(want, sizeof(want), ":7: 'bridge.dot_replacement' must be at most 8 bytes long "
	         "(it has %zu)", strlen("\n@include \"\"\n") + strlen(fifo));
	expect_error(write_raw(text), want);

	snprintf(text, sizeof(text), "@include \"%s/missing.conf\"\n" MINIMAL, tmpdir);
	snprintf(want, sizeof(want), ":1: @include \"%s/missing.conf\" cannot be read: %s", tmpdir,
	         strerror(ENOENT));
	expect_error(write_raw(text), want);

	snprintf(text, sizeof(text), "@include \"%s\"\n" MINIMAL, tmpdir);
	snprintf(want, sizeof(want), ":1: @include \"%s\" names a directory, not a regular file",
	         tmpdir);
	expect_error(write_raw(text), want);

	/* Cycles: libconfig would go round them to its nesting limit. */
	snprintf(text, sizeof(text), MINIMAL "@include \"%s\"\n", tpath);
	snprintf(want, sizeof(want), ":3: @include \"%s\" names %s, which is being read already: "
	         "the includes form a cycle", tpath, tpath);
	expect_error(write_raw(text), want);

	snprintf(text, sizeof(text), "\n@include \"%s\"\n", tpath);
	write_named("a.conf", text);
	snprintf(text, sizeof(text), "@include \"%s\"\n" MINIMAL, apath);
	t = write_raw(text);
	snprintf(want, sizeof(want), "%s:2: @include \"%s\" names %s, which is being read already: "
	         "the includes form a cycle", apath, tpath, tpath);
	expect_full_error(t, want);

	/*
	 * A good include: read as before, errors in it and after it on the
	 * right file and line, numbers in both read back from their text.
	 */
	write_named("a.conf", "bridge = {\n\treconnect_min_ms = 4294967396;\n};\n");
	snprintf(text, sizeof(text), "mqtt = { host = \"h\"; subscribe = [ \"a/#\" ]; };\n"
	         "@include \"%s\"\n@include \"%s\"\namqp = {\n\thost = \"h\";\n"
	         "\tport = 99999999999;\n};\n", apath, apath);
	t = write_raw(text);
	{
		struct config_errors errs;

		config_errors_init(&errs);
		ck_assert_int_eq(config_load(t, &cfg, &errs), -1);
		/* Included twice: libconfig refuses the second "bridge". */
		ck_assert_uint_eq(errs.n, 1);
		snprintf(want, sizeof(want), "%s:1: syntax error: duplicate setting name", apath);
		ck_assert_str_eq(errs.msg[0], want);
		config_errors_free(&errs);
	}
	snprintf(text, sizeof(text), "mqtt = { host = \"h\"; subscribe = [ \"a/#\" ]; };\n"
	         "@include \"%s\"\namqp = {\n\thost = \"h\";\n\tport = 99999999999;\n};\n", apath);
	t = write_raw(text);
	{
		struct config_errors errs;

		config_errors_init(&errs);
		ck_assert_int_eq(config_load(t, &cfg, &errs), -1);
		if (errs.n != 2)
			dump_errors(&errs);
		ck_assert_uint_eq(errs.n, 2);
		snprintf(want, sizeof(want), "%s:5: 'amqp.port' must be between 1 and 65535 "
		         "(not 99999999999)", t);
		ck_assert_str_eq(errs.msg[0], want);
		snprintf(want, sizeof(want), "%s:2: 'bridge.reconnect_min_ms' must be between 10 and "
		         "60000 (not 4294967396)", apath);
		ck_assert_str_eq(errs.msg[1], want);
		config_errors_free(&errs);
	}
	write_named("a.conf", "bridge = {\n\tlog_level = \"debug\";\n};\n");
	snprintf(text, sizeof(text), "@include \"%s\"\n" MINIMAL, apath);
	load_ok(write_raw(text), &cfg);
	ck_assert_int_eq(cfg.bridge.log_level, LOG_LVL_DEBUG);
	config_free(&cfg);
}
END_TEST

/* libconfig reads the main file from the loader's text, which a NUL byte would cut short. */
START_TEST(test_nul_byte)
{
	static const char text[] = MINIMAL "\0bridge = { log_level = \"verbose\"; };\n";

	expect_error(write_file("t.conf", text, sizeof(text) - 1, 0600),
	             ":3: holds a NUL byte, which a configuration file cannot hold");
}
END_TEST

/* Writes a rule whose one header, h, holds `len` bytes; the rule is on line 4. */
static const char *write_header_rule(size_t len, bool bridge_headers)
{
	static char path[128];
	FILE *fp;

	snprintf(path, sizeof(path), "%s/t.conf", tmpdir);
	fp = fopen(path, "w");
	ck_assert_ptr_nonnull(fp);
	fprintf(fp, MINIMAL "bridge = { topic_header = %s; retain_header = %s; };\n"
	        "rules = ( { match = \"a/#\"; headers = { h = \"",
	        bridge_headers ? "true" : "false", bridge_headers ? "true" : "false");
	for (size_t i = 0; i < len; i++)
		fputc('x', fp);
	fputs("\"; }; } );\n", fp);
	ck_assert_int_eq(fclose(fp), 0);
	return path;
}

/*
 * A rule's headers go on every message it forwards, whose properties must
 * fit in one frame: headers that leave no room are an error at load.
 */
START_TEST(test_header_room)
{
	const size_t room = PROPS_FRAME_MAX - PROPS_HEADER_OVERHEAD;
	/*
	 * Property flags and delivery mode, and the plugin headers of the
	 * default bridge.plugin_headers "3.10" (x-mqtt-publish-qos, a signed
	 * byte, and x-mqtt-dup, a bool); the table's length, the name, kind and
	 * length of h.
	 */
	const size_t fixed = 2 + 1 + (1 + 18 + 1 + 1) + (1 + 10 + 1 + 1), table = 4 + 2 + 1 + 4;
	/* x-mqtt-topic (a long string, at least 1 byte) and x-mqtt-retain (a bool). */
	const size_t bridge = (1 + 12 + 1 + 4 + 1) + (1 + 13 + 1 + 1);
	const size_t edge = room - fixed - table;
	struct bridge_config cfg;
	char want[512];

	load_ok(write_header_rule(edge, false), &cfg);
	ck_assert_uint_eq(props_fields_size(rules_at(cfg.rules, 0)->headers, 1), room - fixed);
	config_free(&cfg);

	snprintf(want, sizeof(want), ":4: rule 1 (match 'a/#'): its headers take %zu bytes encoded; "
	         "a message's properties must fit in %zu bytes (one AMQP frame), which leaves at "
	         "most %zu for the headers", room - fixed + 1, room, room - fixed);
	expect_error(write_header_rule(edge + 1, false), want);

	snprintf(want, sizeof(want), ":4: rule 1 (match 'a/#'): its headers take %zu bytes encoded; "
	         "a message's properties must fit in %zu bytes (one AMQP frame), which leaves at "
	         "most %zu for the headers", (size_t)200000 + table, room, room - fixed);
	expect_error(write_header_rule(200000, false), want);

	/* The headers the bridge adds to every message count too. */
	load_ok(write_header_rule(edge - bridge, true), &cfg);
	config_free(&cfg);
	snprintf(want, sizeof(want), ":4: rule 1 (match 'a/#'): its headers take %zu bytes encoded; "
	         "a message's properties must fit in %zu bytes (one AMQP frame), which leaves at "
	         "most %zu for the headers", room - fixed - bridge + 1, room, room - fixed - bridge);
	expect_error(write_header_rule(edge - bridge + 1, true), want);
}
END_TEST

/* "rules = ( { match = "a/#"; headers = {" and `n` bool headers, one per line. */
static char *group_of(size_t n)
{
	const char *head = MINIMAL "rules = ( { match = \"a/#\";\nheaders = {\n";
	size_t cap = strlen(head) + n * 24 + 32, len;
	char *text = malloc(cap);

	ck_assert_ptr_nonnull(text);
	len = (size_t)snprintf(text, cap, "%s", head);
	for (size_t i = 0; i < n; i++)
		len += (size_t)snprintf(text + len, cap - len, "h%zu = true;\n", i);
	snprintf(text + len, cap - len, "}; } );\n");
	return text;
}

/*
 * libconfig reads a group in quadratic time: a group over 5,000 settings is
 * refused by the scan before it, with the line of its '{'.
 */
START_TEST(test_group_size)
{
	struct bridge_config cfg;
	char *text = group_of(5000);

	load_ok(write_raw(text), &cfg);
	ck_assert_uint_eq(rules_at(cfg.rules, 0)->n_headers, 5000);
	config_free(&cfg);
	free(text);
	text = group_of(5001);
	expect_error(write_raw(text), ":4: a group here holds more than 5000 settings, which "
	             "libconfig takes seconds to read (the time grows with the square of a group's "
	             "size); a group may hold at most 5000");
	free(text);
}
END_TEST

/*
 * Checks that compare names find the same duplicates as before, now by
 * sorting: the later one is reported, naming the first.
 */
START_TEST(test_duplicates_sorted)
{
	const char *w[] = {
		":4: topology exchange 3: exchange 'b' is already declared by topology exchange 2 "
		"(line 4)",
		":4: topology exchange 4: exchange 'b' is already declared by topology exchange 2 "
		"(line 4)",
		":5: topology queue 3: queue 'q' is already declared by topology queue 1 (line 5)",
		":5: topology queue 4: queue 'r' is already declared by topology queue 2 (line 5)",
	};

	expect_errors(write_raw(MINIMAL "topology = {\n"
	                        "exchanges = ( { name = \"c\"; }, { name = \"b\"; }, { name = \"b\"; }, { name = \"b\"; } );\n"
	                        "queues = ( { name = \"q\"; }, { name = \"r\"; }, { name = \"q\"; }, { name = \"r\"; } );\n"
	                        "};\n"), w, 4);
}
END_TEST

START_TEST(test_log_target)
{
	struct bridge_config cfg;
	char *text;

	load_ok(write_raw("mqtt = { host = \"h\"; subscribe = [\"a\"]; };\namqp = { host = \"h\"; };\n"
	                  "bridge = { log_target = \"syslog\"; };\n"), &cfg);
	ck_assert_int_eq(cfg.bridge.log_target, LOG_TARGET_SYSLOG);
	text = print_to_string(&cfg);
	ck_assert_ptr_nonnull(strstr(text, "\nbridge.log_target = \"syslog\"\n"));
	free(text);
	config_free(&cfg);
}
END_TEST

static void assert_field_str(const struct rules_field *f, const char *name, const char *value)
{
	ck_assert_str_eq(f->name, name);
	ck_assert_int_eq(f->kind, RV_STRING);
	ck_assert_str_eq(f->s, value);
}

static void assert_field_int(const struct rules_field *f, const char *name, int64_t value)
{
	ck_assert_str_eq(f->name, name);
	ck_assert_int_eq(f->kind, RV_INT);
	ck_assert_int_eq(f->i, value);
}

static void assert_field_bool(const struct rules_field *f, const char *name, bool value)
{
	ck_assert_str_eq(f->name, name);
	ck_assert_int_eq(f->kind, RV_BOOL);
	ck_assert_int_eq(f->b, value);
}

/* Every setting of good-rules.conf, as loaded. */
START_TEST(test_rules_and_topology)
{
	struct bridge_config cfg;
	const struct rule *r;
	const struct topo_exchange *x;
	const struct topo_queue *q;
	const struct topo_binding *b;

	load_ok(conf_path("good-rules.conf"), &cfg);
	ck_assert_uint_eq(cfg.n_warnings, 0);
	ck_assert_int_eq(cfg.bridge.unmatched, UNMATCHED_DROP);
	ck_assert(cfg.bridge.topic_header);
	ck_assert(cfg.bridge.retain_header);
	ck_assert_str_eq(cfg.bridge.dot_replacement, "_");

	ck_assert_uint_eq(rules_count(cfg.rules), 8);
	r = rules_at(cfg.rules, 0);
	ck_assert_uint_eq(r->index, 1);
	ck_assert_int_eq(r->line, 17);
	ck_assert_str_eq(r->match, "site1/sensors/+/temperature");
	ck_assert_ptr_null(r->exchange);
	ck_assert_str_eq(r->routing_key, "temp.{1}");
	ck_assert_str_eq(r->strip_prefix, "site1/");
	ck_assert_str_eq(r->key_prefix, "plant1.");
	ck_assert_int_eq(r->persistent, RULE_PERSIST_YES);
	ck_assert(r->cont);
	ck_assert(!r->drop);
	ck_assert_uint_eq(r->n_headers, 5);
	assert_field_str(&r->headers[0], "kind", "temperature");
	assert_field_int(&r->headers[1], "sample-rate", 10);
	/* Written without the L suffix: libconfig alone would read 0. */
	assert_field_int(&r->headers[2], "big", 4294967296LL);
	assert_field_int(&r->headers[3], "negative", -5);
	assert_field_bool(&r->headers[4], "calibrated", true);

	r = rules_at(cfg.rules, 1);
	ck_assert_int_eq(r->line, 32);
	ck_assert_str_eq(r->match, "site1/sensors/#");
	ck_assert_str_eq(r->exchange, "archive");
	ck_assert_ptr_null(r->routing_key);
	ck_assert_ptr_null(r->strip_prefix);
	ck_assert_ptr_null(r->key_prefix);
	ck_assert_int_eq(r->persistent, RULE_PERSIST_NO);
	ck_assert(!r->cont);
	ck_assert_uint_eq(r->n_headers, 0);

	r = rules_at(cfg.rules, 2);
	ck_assert_int_eq(r->line, 37);
	ck_assert_str_eq(r->match, "$share/bridges/alarms/#");
	ck_assert_str_eq(r->exchange, "");
	ck_assert_int_eq(r->persistent, RULE_PERSIST_QOS);

	r = rules_at(cfg.rules, 3);
	ck_assert_int_eq(r->line, 41);
	ck_assert_str_eq(r->match, "debug/#");
	ck_assert(r->drop);

	r = rules_at(cfg.rules, 7);
	ck_assert_int_eq(r->line, 48);
	ck_assert_str_eq(r->exchange, "telemetry");
	ck_assert(!r->cont);

	ck_assert_uint_eq(cfg.topology.n_exchanges, 3);
	x = &cfg.topology.exchanges[0];
	ck_assert_int_eq(x->line, 52);
	ck_assert_str_eq(x->name, "telemetry");
	ck_assert_str_eq(x->type, "topic");
	ck_assert(x->durable);
	ck_assert(!x->auto_delete);
	ck_assert(!x->internal);
	ck_assert_ptr_null(x->alternate_exchange);
	ck_assert_uint_eq(x->n_arguments, 0);
	x = &cfg.topology.exchanges[1];
	ck_assert_int_eq(x->line, 59);
	ck_assert_str_eq(x->name, "archive");
	ck_assert_str_eq(x->type, "fanout");
	ck_assert(!x->durable);
	ck_assert(x->auto_delete);
	ck_assert(!x->internal);
	ck_assert_str_eq(x->alternate_exchange, "unrouted");
	ck_assert_uint_eq(x->n_arguments, 1);
	assert_field_str(&x->arguments[0], "x-note", "kept");
	x = &cfg.topology.exchanges[2];
	ck_assert_str_eq(x->name, "unrouted");
	ck_assert_str_eq(x->type, "fanout");
	ck_assert(x->durable);
	ck_assert(x->internal);

	ck_assert_uint_eq(cfg.topology.n_queues, 3);
	q = &cfg.topology.queues[0];
	ck_assert_int_eq(q->line, 70);
	ck_assert_str_eq(q->name, "temperatures");
	ck_assert(q->durable);
	ck_assert(!q->auto_delete);
	ck_assert(!q->exclusive);
	ck_assert_uint_eq(q->n_arguments, 0);
	q = &cfg.topology.queues[1];
	ck_assert_int_eq(q->line, 71);
	ck_assert_str_eq(q->name, "alarms");
	ck_assert_uint_eq(q->n_arguments, 4);
	assert_field_str(&q->arguments[0], "x-queue-type", "quorum");
	assert_field_int(&q->arguments[1], "x-max-length", 100000);
	assert_field_int(&q->arguments[2], "x-max-length-bytes", 8589934592LL);
	assert_field_bool(&q->arguments[3], "x-single-active-consumer", false);
	q = &cfg.topology.queues[2];
	ck_assert_str_eq(q->name, "scratch");
	ck_assert(!q->durable);
	ck_assert(q->auto_delete);
	ck_assert(q->exclusive);

	ck_assert_uint_eq(cfg.topology.n_bindings, 3);
	b = &cfg.topology.bindings[0];
	ck_assert_int_eq(b->line, 86);
	ck_assert_str_eq(b->exchange, "telemetry");
	ck_assert_str_eq(b->queue, "temperatures");
	ck_assert_str_eq(b->match, "sensors/+/temp.c");
	/* Translated as topics are: '+' to '*', and a '.' to bridge.dot_replacement. */
	ck_assert_str_eq(b->key, "sensors.*.temp_c");
	b = &cfg.topology.bindings[1];
	ck_assert_ptr_null(b->match);
	ck_assert_str_eq(b->key, "#");
	b = &cfg.topology.bindings[2];
	ck_assert_str_eq(b->exchange, "archive");
	ck_assert_str_eq(b->queue, "scratch");
	ck_assert_ptr_null(b->match);
	ck_assert_str_eq(b->key, "");
	config_free(&cfg);
}
END_TEST

/* Without mqtt.subscribe: the rules' filters, neither dropped nor covered by another. */
START_TEST(test_subscriptions_from_rules)
{
	const char *want[] = {
		"site1/sensors/#", "$share/bridges/alarms/#", "site2/#", "site3/#", "site4/#", "site5/#",
	};
	struct bridge_config cfg;

	load_ok(conf_path("good-rules.conf"), &cfg);
	ck_assert(!cfg.mqtt.subscribe_explicit);
	ck_assert_uint_eq(cfg.mqtt.n_subscribe, sizeof(want) / sizeof(want[0]));
	for (size_t i = 0; i < sizeof(want) / sizeof(want[0]); i++)
		ck_assert_str_eq(cfg.mqtt.subscribe[i], want[i]);
	config_free(&cfg);

	/* Given in the file, the list is the file's, whatever the rules say. */
	load_ok(write_raw("mqtt = { host = \"h\"; subscribe = [ \"other/#\" ]; };\n"
	                  "amqp = { host = \"h\"; };\n"
	                  "rules = ( { match = \"other/+\"; }, { match = \"other/b\"; exchange = \"e\"; } );\n"),
	        &cfg);
	ck_assert(cfg.mqtt.subscribe_explicit);
	ck_assert_uint_eq(cfg.mqtt.n_subscribe, 1);
	ck_assert_str_eq(cfg.mqtt.subscribe[0], "other/#");
	config_free(&cfg);

	load_ok(write_raw("mqtt = { host = \"h\"; };\namqp = { host = \"h\"; };\n"
	                  "rules = ( { match = \"a/+\"; }, { match = \"b\"; },\n"
	                  "          { match = \"a/#\"; exchange = \"x\"; }, { match = \"b\"; exchange = \"y\"; } );\n"),
	        &cfg);
	ck_assert(!cfg.mqtt.subscribe_explicit);
	ck_assert_uint_eq(cfg.mqtt.n_subscribe, 2);
	ck_assert_str_eq(cfg.mqtt.subscribe[0], "b");
	ck_assert_str_eq(cfg.mqtt.subscribe[1], "a/#");
	config_free(&cfg);

	/* No subscribe and no rules at all. */
	expect_error(write_raw("mqtt = { host = \"h\"; };\namqp = { host = \"h\"; };\nrules = ();\n"),
	             ":1: 'mqtt.subscribe' is not set and no rule gives a filter to subscribe to");
}
END_TEST

START_TEST(test_check_exchanges)
{
	struct bridge_config cfg;

	/* Not amqp.exchange, not declared in topology, not "", once each, in rule order. */
	load_ok(conf_path("good-rules.conf"), &cfg);
	ck_assert_uint_eq(cfg.n_check_exchanges, 2);
	ck_assert_str_eq(cfg.check_exchanges[0], "legacy");
	ck_assert_str_eq(cfg.check_exchanges[1], "amq.direct");
	config_free(&cfg);

	/* A dropping rule publishes nowhere; the main exchange (default amq.topic) is declared. */
	load_ok(write_raw("mqtt = { host = \"h\"; subscribe = [ \"#\" ]; };\namqp = { host = \"h\"; };\n"
	                  "rules = ( { match = \"a\"; exchange = \"amq.topic\"; },\n"
	                  "          { match = \"b\"; drop = true; },\n"
	                  "          { match = \"c\"; exchange = \"x\"; } );\n"), &cfg);
	ck_assert_uint_eq(cfg.n_check_exchanges, 1);
	ck_assert_str_eq(cfg.check_exchanges[0], "x");
	config_free(&cfg);
}
END_TEST

/* The rules module's warnings arrive as "FILE:LINE: ..." with the rule's line. */
START_TEST(test_rule_warnings)
{
	struct bridge_config cfg;
	const char *path;
	const char *text = "mqtt = { host = \"h\"; subscribe = [ \"a/#\" ]; };\n"
	                   "amqp = { host = \"h\"; };\n"
	                   "rules = (\n"
	                   "\t{ match = \"a/#\"; },\n"
	                   "\t{\n"
	                   "\t\tmatch = \"a/b\";\n"
	                   "\t\texchange = \"x\";\n"
	                   "\t}\n"
	                   ");\n";
	char want[512];

	path = write_raw(text);
	load_ok(path, &cfg);
	ck_assert_uint_eq(cfg.n_warnings, 1);
	snprintf(want, sizeof(want), "%s:5: rule 2 (match 'a/b'): ", path);
	ck_assert_msg(strncmp(cfg.warnings[0], want, strlen(want)) == 0, "got %s", cfg.warnings[0]);
	config_free(&cfg);

	/* With continue, the second rule is reachable: no warning. */
	load_ok(write_raw("mqtt = { host = \"h\"; subscribe = [ \"a/#\" ]; };\namqp = { host = \"h\"; };\n"
	                  "rules = ( { match = \"a/#\"; continue = true; },\n"
	                  "          { match = \"a/b\"; exchange = \"x\"; } );\n"), &cfg);
	ck_assert_uint_eq(cfg.n_warnings, 0);
	config_free(&cfg);

	/* A rule outside every explicit subscription is warned about at its line. */
	path = write_raw("mqtt = { host = \"h\"; subscribe = [ \"a/#\" ]; };\namqp = { host = \"h\"; };\n"
	                 "rules = (\n\t{ match = \"a/+\"; },\n\t{ match = \"z/+\"; }\n);\n");
	load_ok(path, &cfg);
	ck_assert_uint_eq(cfg.n_warnings, 1);
	snprintf(want, sizeof(want), "%s:5: rule 2 (match 'z/+'): ", path);
	ck_assert_msg(strncmp(cfg.warnings[0], want, strlen(want)) == 0, "got %s", cfg.warnings[0]);
	config_free(&cfg);

	/* Dropping everything that no rule matches, with no rules, drops everything. */
	{
		const char *w[] = {
			":4: 'bridge.unmatched' is \"drop\" and there are no rules: every message will be dropped",
		};

		expect_warnings(write_raw("mqtt = { host = \"h\"; subscribe = [ \"a/#\" ]; };\n"
		                          "amqp = { host = \"h\"; };\nbridge = {\n"
		                          "\tunmatched = \"drop\";\n};\n"), &cfg, w, 1);
		config_free(&cfg);
	}
}
END_TEST

/*
 * Every error in the rules and the topology is reported, each at its own
 * line, including those the rules module finds in rules other than the
 * ones already refused here.
 */
START_TEST(test_mapping_errors_all)
{
	const char *want[] = {
		":5: rule 1: 'persistent' must be true or false",
		":6: rule 2 (match 'a/+'): ...",
		":8: rule 3: missing required setting 'match'",
		":9: rule 3: unknown setting 'mtach' (did you mean 'match'?)",
		":10: rule 4: header 'h' must be a string, an integer, true or false",
		":11: rule 5 (match 'e/#/f'): ...",
		":15: topology exchange 1: 'type' must be one of topic, direct, fanout, headers (not \"x\")",
		":16: topology exchange 2: 'name' must not start with \"amq.\" (the broker reserves those names)",
		":19: topology queue 1: argument 'x-big' must be between -9223372036854775808 and "
		"9223372036854775807 (not 9223372036854775808)",
		":22: topology binding 1: needs 'match' (an MQTT topic filter) or 'key' (a binding key)",
		":23: topology binding 2: 'exchange' must not be empty",
		":25: unknown setting 'topology.bindigns' (did you mean 'topology.bindings'?)",
	};
	const char *path = write_raw(
		"mqtt = { host = \"h\"; subscribe = [ \"#\" ]; };\n"          /* 1 */
		"amqp = { host = \"h\"; };\n"
		"rules = (\n"
		"\t{ match = \"a/#\"; continue = true;\n"
		"\t  persistent = 1; },\n"                                   /* 5 */
		"\t{ match = \"a/+\";\n"                                  /* rule 2 starts here */
		"\t  routing_key = \"{3}\"; },\n"
		"\t{\n"
		"\t  mtach = \"c\"; },\n"
		"\t{ match = \"d\"; headers = { h = 1.0; }; },\n"            /* 10 */
		"\t{ match = \"e/#/f\"; }\n"
		");\n"
		"topology = {\n"
		"\texchanges = (\n"
		"\t\t{ name = \"t\"; type = \"x\"; },\n"                     /* 15 */
		"\t\t{ name = \"amq.t\"; }\n"
		"\t);\n"
		"\tqueues = (\n"
		"\t\t{ name = \"q\"; arguments = { x-big = 9223372036854775808; }; }\n"
		"\t);\n"                                                     /* 20 */
		"\tbindings = (\n"
		"\t\t{ exchange = \"t\"; queue = \"q\"; },\n"
		"\t\t{ exchange = \"\"; queue = \"q\"; key = \"k\"; }\n"
		"\t);\n"
		"\tbindigns = ();\n"                                         /* 25 */
		"};\n");

	expect_errors(path, want, sizeof(want) / sizeof(want[0]));
}
END_TEST

/* Integers in headers and arguments keep 64 bits, whatever libconfig makes of them. */
START_TEST(test_mapping_numbers)
{
	struct bridge_config cfg;

	load_ok(write_raw("mqtt = { host = \"h\"; subscribe = [ \"#\" ]; };\namqp = { host = \"h\"; };\n"
	                  "rules = ( { match = \"a\"; headers = { h1 = 0x100000000; h2 = -4294967296;\n"
	                  "            h3 = 9223372036854775807; h4 = -9223372036854775808L; h5 = 7; }; } );\n"
	                  "topology = { queues = ( { name = \"q\"; arguments = { x-max-length-bytes = 99999999999; }; } ); };\n"),
	        &cfg);
	{
		const struct rule *r = rules_at(cfg.rules, 0);

		ck_assert_uint_eq(r->n_headers, 5);
		assert_field_int(&r->headers[0], "h1", 4294967296LL);
		assert_field_int(&r->headers[1], "h2", -4294967296LL);
		assert_field_int(&r->headers[2], "h3", INT64_MAX);
		assert_field_int(&r->headers[3], "h4", INT64_MIN);
		assert_field_int(&r->headers[4], "h5", 7);
	}
	assert_field_int(&cfg.topology.queues[0].arguments[0], "x-max-length-bytes", 99999999999LL);
	config_free(&cfg);
}
END_TEST

START_TEST(test_hosts)
{
	struct bridge_config cfg;
	const char *path = write_raw(
		"mqtt = { hosts = [ \"m1\", \"m2:1884\", \"[::1]\" ]; port = 8883;\n"
		"  hosts_order = \"round_robin\"; primary_retry = 7; subscribe = [ \"a/#\" ]; };\n"
		"amqp = { host = \"r1\"; };\n");

	load_ok(path, &cfg);
	ck_assert(cfg.mqtt.hosts_given);
	ck_assert_ptr_null(cfg.mqtt.host);
	ck_assert_uint_eq(cfg.mqtt.n_hosts, 3);
	ck_assert_str_eq(cfg.mqtt.hosts[0].name, "m1:8883");
	ck_assert_str_eq(cfg.mqtt.hosts[1].name, "m2:1884");
	ck_assert_str_eq(cfg.mqtt.hosts[2].host, "::1");
	ck_assert_str_eq(cfg.mqtt.hosts[2].name, "[::1]:8883");
	ck_assert_int_eq(cfg.mqtt.hosts[2].port, 8883);
	ck_assert_int_eq(cfg.mqtt.hosts[0].line, 1);
	ck_assert_int_eq(cfg.mqtt.hosts_order, FAILOVER_ROUND_ROBIN);
	ck_assert_int_eq(cfg.mqtt.primary_retry, 7);
	/* The one-broker form is a list of one. */
	ck_assert(!cfg.amqp.hosts_given);
	ck_assert_uint_eq(cfg.amqp.n_hosts, 1);
	ck_assert_str_eq(cfg.amqp.hosts[0].name, "r1:5672");
	ck_assert_int_eq(cfg.amqp.hosts[0].line, 3);
	ck_assert_int_eq(cfg.amqp.hosts_order, FAILOVER_PRIMARY);
	ck_assert_int_eq(cfg.amqp.primary_retry, 30);
	config_free(&cfg);
}
END_TEST

START_TEST(test_hosts_errors)
{
	/* Each an amqp group on line 2, after an mqtt group that is right. */
	static const struct {
		const char *amqp;
		const char *want[2];
	} cases[] = {
		{ "vhost = \"v\";", { ":2: missing required setting 'amqp.host' (or 'amqp.hosts')" } },
		{ "host = \"r\"; hosts = [ \"r2\" ];",
		  { ":2: 'amqp.hosts' and 'amqp.host' are both given: give one of them" } },
		{ "hosts = [];", { ":2: 'amqp.hosts' must name at least one broker" } },
		{ "hosts = ( \"r\", \"r:0\", 5 );",
		  { ":2: 'amqp.hosts[1]' (\"r:0\") must have a port from 1 to 65535 after ':'",
		    ":2: 'amqp.hosts[2]' must be a string (in double quotes)" } },
		{ "hosts = \"r\";",
		  { ":2: 'amqp.hosts' must be a list of brokers, e.g. [\"broker1:port\", \"broker2\"]" } },
		{ "hosts = [ \"r\", \"R:5672\" ];",
		  { ":2: 'amqp.hosts[1]' (R:5672) repeats 'amqp.hosts[0]'" } },
		/* An entry without a port takes amqp.port: the same broker twice. */
		{ "hosts = [ \"r:5673\", \"r\" ]; port = 5673;",
		  { ":2: 'amqp.hosts[1]' (r:5673) repeats 'amqp.hosts[0]'" } },
		{ "host = \"r:5672\";",
		  { ":2: 'amqp.host' must not give a port: set port, or list \"host:port\" entries in hosts" } },
		{ "host = \"[::1]\";",
		  { ":2: 'amqp.host' must be a host name or address, without spaces, '/', '@' or brackets "
		    "(an IPv6 address is written bare: \"::1\")" } },
		{ "host = \"r\"; hosts_order = \"first\"; primary_retry = 0;",
		  { ":2: 'amqp.hosts_order' must be one of primary, round_robin (not \"first\")",
		    ":2: 'amqp.primary_retry' must be between 1 and 3600 (not 0)" } },
	};
	char text[512];

	for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
		size_t n = cases[i].want[1] != NULL ? 2 : 1;

		snprintf(text, sizeof(text), "mqtt = { host = \"m\"; subscribe = [ \"a/#\" ]; };\n"
		         "amqp = { %s };\n", cases[i].amqp);
		expect_errors(write_raw(text), cases[i].want, n);
	}
}
END_TEST

/* The base for config_diff(): each test changes one thing. */
static const char diff_base[] =
	"mqtt = { host = \"h\"; keepalive = 60; subscribe = [ \"a/#\", \"b/#\" ]; };\n"
	"amqp = { host = \"h\"; heartbeat = 30; declare_exchange = false; exchange = \"main\"; };\n"
	"bridge = { topic_header = false; };\n"
	"rules = ( { match = \"a/+\"; exchange = \"x1\"; routing_key = \"k.{1}\"; } );\n"
	"topology = { queues = ( { name = \"q\"; durable = true; } ); };\n";

/* Loads diff_base with `from` replaced by `to` into `cfg`. */
static void load_variant(struct bridge_config *cfg, const char *from, const char *to)
{
	char text[2048];
	const char *at = strstr(diff_base, from);

	ck_assert_ptr_nonnull(at);
	snprintf(text, sizeof(text), "%.*s%s%s", (int)(at - diff_base), diff_base, to,
	         at + strlen(from));
	load_ok(write_raw(text), cfg);
}

START_TEST(test_diff)
{
	static const struct {
		const char *from, *to;
		unsigned want;
	} cases[] = {
		{ "keepalive = 60", "keepalive = 61", CFG_DIFF_MQTT },
		{ "host = \"h\"; keepalive", "host = \"h2\"; keepalive", CFG_DIFF_MQTT },
		/* The one-broker form and its list are the same broker. */
		{ "host = \"h\"; keepalive", "hosts = [ \"h:1883\" ]; keepalive", 0 },
		{ "host = \"h\"; keepalive", "hosts = [ \"h\", \"h2\" ]; keepalive", CFG_DIFF_MQTT },
		{ "keepalive = 60", "keepalive = 60; hosts_order = \"round_robin\"", CFG_DIFF_MQTT },
		{ "host = \"h\"; heartbeat", "hosts = [ \"H\" ]; heartbeat", 0 },
		{ "host = \"h\"; heartbeat", "hosts = [ \"h2\", \"h\" ]; heartbeat", CFG_DIFF_AMQP },
		{ "heartbeat = 30", "heartbeat = 30; primary_retry = 5", CFG_DIFF_AMQP },
		/* Order alone does not change what is subscribed to. */
		{ "[ \"a/#\", \"b/#\" ]", "[ \"b/#\", \"a/#\" ]", 0 },
		{ "[ \"a/#\", \"b/#\" ]", "[ \"a/#\", \"c/#\" ]", CFG_DIFF_SUBSCRIBE },
		{ "heartbeat = 30", "heartbeat = 31", CFG_DIFF_AMQP },
		{ "durable = true", "durable = false", CFG_DIFF_AMQP },
		{ "name = \"q\";", "name = \"q\"; arguments = { x-max-length = 5; };", CFG_DIFF_AMQP },
		{ "topic_header = false", "topic_header = true", CFG_DIFF_BRIDGE },
		{ "bridge = { topic_header = false; };", "bridge = { dot_replacement = \"_\"; };",
		  CFG_DIFF_BRIDGE },
		{ "\"k.{1}\"", "\"k2.{1}\"", CFG_DIFF_RULES },
		{ "exchange = \"x1\";", "exchange = \"x1\"; headers = { h = 1; };", CFG_DIFF_RULES },
		/* A different exchange to check is an AMQP change as well. */
		{ "\"x1\"", "\"x2\"", CFG_DIFF_RULES | CFG_DIFF_AMQP },
		/* The rule's line is how the log names it. */
		{ "rules = (", "\nrules = (", CFG_DIFF_RULES },
		/* Not the topology's lines: nothing to declare anew. */
		{ "topology = {", "\ntopology = {", 0 },
	};
	struct bridge_config a, b;

	load_variant(&a, "keepalive", "keepalive");
	load_variant(&b, "keepalive", "keepalive");
	ck_assert_uint_eq(config_diff(&a, &b), 0);
	config_free(&b);
	for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
		load_variant(&b, cases[i].from, cases[i].to);
		ck_assert_msg(config_diff(&a, &b) == cases[i].want && config_diff(&b, &a) == cases[i].want,
		              "case %zu (%s -> %s): diff %#x, wanted %#x", i, cases[i].from, cases[i].to,
		              config_diff(&a, &b), cases[i].want);
		config_free(&b);
	}
	config_free(&a);
}
END_TEST

/* The flat settings, then each list's, in their tables' order. */
START_TEST(test_setting_at)
{
	static const char *const want[][2] = {
		{ "bridge", "unmatched" }, { "bridge", "topic_header" }, { "bridge", "retain_header" },
		{ "bridge", "plugin_headers" }, { "bridge", "poison_failures" },
		{ "bridge", "http_listen" },
		{ "rules", "match" }, { "rules", "name" }, { "rules", "exchange" }, { "rules", "routing_key" },
		{ "rules", "strip_prefix" }, { "rules", "key_prefix" }, { "rules", "persistent" },
		{ "rules", "headers" }, { "rules", "continue" }, { "rules", "drop" },
		{ "topology.exchanges", "name" }, { "topology.exchanges", "type" },
		{ "topology.exchanges", "durable" }, { "topology.exchanges", "auto_delete" },
		{ "topology.exchanges", "internal" }, { "topology.exchanges", "alternate_exchange" },
		{ "topology.exchanges", "arguments" },
		{ "topology.queues", "name" }, { "topology.queues", "durable" },
		{ "topology.queues", "auto_delete" }, { "topology.queues", "exclusive" },
		{ "topology.queues", "arguments" },
		{ "topology.bindings", "exchange" }, { "topology.bindings", "queue" },
		{ "topology.bindings", "match" }, { "topology.bindings", "key" },
		{ "downlink", "queue" }, { "downlink", "topic" }, { "downlink", "prefetch" },
		{ "downlink", "qos" }, { "downlink", "retain" }, { "downlink", "allow_echo" },
	};
	const size_t n_want = sizeof(want) / sizeof(want[0]);
	const char *group, *name;
	size_t n = 0, first = 0;

	while (config_setting_at(n, &group, &name)) {
		if (strcmp(group, "mqtt") == 0 && strcmp(name, "host") == 0)
			ck_assert_uint_eq(n, 0);
		if (strcmp(group, "bridge") == 0 && strcmp(name, "unmatched") == 0)
			first = n;
		n++;
	}
	ck_assert_uint_ne(first, 0);
	ck_assert_uint_eq(n, first + n_want);
	for (size_t i = 0; i < n_want; i++) {
		ck_assert(config_setting_at(first + i, &group, &name));
		ck_assert_str_eq(group, want[i][0]);
		ck_assert_str_eq(name, want[i][1]);
	}
	ck_assert(!config_setting_at(n, &group, &name));
}
END_TEST

START_TEST(test_print_mapping)
{
	struct bridge_config cfg;
	char *text;

	load_ok(conf_path("good-rules.conf"), &cfg);
	text = print_to_string(&cfg);
	ck_assert_ptr_nonnull(strstr(text, "\n# mqtt.subscribe: not set; the filters of the rules\n"));
	ck_assert_ptr_nonnull(strstr(text, "\nbridge.unmatched = \"drop\"\n"));
	ck_assert_ptr_nonnull(strstr(text, "\nbridge.topic_header = true\n"));
	ck_assert_ptr_nonnull(strstr(text, "\nbridge.retain_header = true\n"));
	ck_assert_ptr_nonnull(strstr(text,
	        "\ntopology exchange 2 (line 59): name = \"archive\"; type = \"fanout\"; durable = false; "
	        "auto_delete = true; internal = false; alternate_exchange = \"unrouted\"; "
	        "arguments = { x-note = \"kept\"; };\n"));
	ck_assert_ptr_nonnull(strstr(text,
	        "\ntopology queue 2 (line 71): name = \"alarms\"; durable = true; auto_delete = false; "
	        "exclusive = false; arguments = { x-queue-type = \"quorum\"; x-max-length = 100000; "
	        "x-max-length-bytes = 8589934592; x-single-active-consumer = false; };\n"));
	ck_assert_ptr_nonnull(strstr(text,
	        "\ntopology binding 1 (line 86): exchange = \"telemetry\"; queue = \"temperatures\"; "
	        "match = \"sensors/+/temp.c\"; key = \"sensors.*.temp_c\";\n"));
	ck_assert_ptr_nonnull(strstr(text, "\n# rules: 8\n"));
	/* The rules module's own listing follows: every rule's filter is in it. */
	ck_assert_ptr_nonnull(strstr(text, "site1/sensors/+/temperature"));
	ck_assert_ptr_nonnull(strstr(text, "$share/bridges/alarms/#"));
	ck_assert_ptr_nonnull(strstr(text, "site5/#"));
	ck_assert_ptr_nonnull(strstr(text,
	        "\n# exchanges the rules publish to, checked on connect: \"legacy\" \"amq.direct\"\n"));
	free(text);
	config_free(&cfg);

	load_ok(conf_path("good-minimal.conf"), &cfg);
	text = print_to_string(&cfg);
	ck_assert_ptr_nonnull(strstr(text, "\n# mqtt.subscribe: as the file gives it\n"));
	ck_assert_ptr_nonnull(strstr(text, "\n# rules: 0\n"));
	ck_assert_ptr_null(strstr(text, "topology "));
	ck_assert_ptr_null(strstr(text, "checked on connect"));
	free(text);
	config_free(&cfg);
}
END_TEST

/* ------------------------------------------------------------------------ */
/* The downlink */

/* A good list: every value given is kept, every one left out is its default. */
START_TEST(test_downlink_load)
{
	struct bridge_config cfg;
	const struct dlmap_part *p;

	load_ok(write_raw("mqtt = { host = \"h\"; subscribe = [ \"fleet/#\" ]; };\n"
	                  "amqp = { host = \"h\"; };\n"
	                  "downlink = (\n"
	                  "\t{ queue = \"commands\"; topic = \"devices/{1}/commands\"; },\n"
	                  "\t{ queue = \"alerts\"; topic = \"alerts/{header:site}/{key}\"; prefetch = 7;\n"
	                  "\t  qos = 0; retain = \"always\"; allow_echo = true; },\n"
	                  "\t{ queue = \"plain\"; retain = \"never\"; prefetch = 32000; qos = 1;\n"
	                  "\t  allow_echo = true; }\n"
	                  ");\n"),
	        &cfg);
	ck_assert_uint_eq(cfg.n_downlink, 3);
	ck_assert_ptr_nonnull(cfg.downlink);
	ck_assert_ptr_nonnull(cfg.downlink_topics);

	ck_assert_int_eq(cfg.downlink[0].line, 4);
	ck_assert_str_eq(cfg.downlink[0].queue, "commands");
	ck_assert_str_eq(cfg.downlink[0].topic, "devices/{1}/commands");
	ck_assert_int_eq(cfg.downlink[0].prefetch, 100);
	ck_assert_int_eq(cfg.downlink[0].qos, 1);
	ck_assert_int_eq(cfg.downlink[0].retain, DLMAP_RETAIN_HEADER);
	ck_assert(!cfg.downlink[0].allow_echo);

	ck_assert_int_eq(cfg.downlink[1].line, 5);
	ck_assert_str_eq(cfg.downlink[1].queue, "alerts");
	ck_assert_str_eq(cfg.downlink[1].topic, "alerts/{header:site}/{key}");
	ck_assert_int_eq(cfg.downlink[1].prefetch, 7);
	ck_assert_int_eq(cfg.downlink[1].qos, 0);
	ck_assert_int_eq(cfg.downlink[1].retain, DLMAP_RETAIN_YES);
	ck_assert(cfg.downlink[1].allow_echo);

	ck_assert_str_eq(cfg.downlink[2].queue, "plain");
	ck_assert_ptr_null(cfg.downlink[2].topic);
	ck_assert_int_eq(cfg.downlink[2].prefetch, 32000);
	ck_assert_int_eq(cfg.downlink[2].qos, 1);
	ck_assert_int_eq(cfg.downlink[2].retain, DLMAP_RETAIN_NO);
	ck_assert(cfg.downlink[2].allow_echo);

	/* The templates compiled: "devices/", {1}, "/commands". */
	ck_assert_uint_eq(cfg.downlink_topics[0].n_parts, 3);
	p = cfg.downlink_topics[0].parts;
	ck_assert_int_eq(p[0].kind, DP_LITERAL);
	ck_assert_uint_eq(p[0].len, 8);
	ck_assert(memcmp(p[0].text, "devices/", 8) == 0);
	ck_assert_int_eq(p[1].kind, DP_WORD);
	ck_assert_uint_eq(p[1].word, 1);
	ck_assert_int_eq(p[2].kind, DP_LITERAL);
	ck_assert(memcmp(p[2].text, "/commands", 9) == 0);
	/* "alerts/", {header:site}, "/", {key}. */
	ck_assert_uint_eq(cfg.downlink_topics[1].n_parts, 4);
	p = cfg.downlink_topics[1].parts;
	ck_assert_int_eq(p[1].kind, DP_HEADER);
	ck_assert_uint_eq(p[1].len, 4);
	ck_assert(memcmp(p[1].text, "site", 4) == 0);
	ck_assert_int_eq(p[3].kind, DP_KEY);
	/* No template: no parts, the routing key translated back. */
	ck_assert_uint_eq(cfg.downlink_topics[2].n_parts, 0);
	config_free(&cfg);
	assert_empty(&cfg);

	/* No list: nothing allocated. */
	load_ok(write_raw("mqtt = { host = \"h\"; subscribe = [ \"a\" ]; };\namqp = { host = \"h\"; };\n"),
	        &cfg);
	ck_assert_uint_eq(cfg.n_downlink, 0);
	ck_assert_ptr_null(cfg.downlink);
	ck_assert_ptr_null(cfg.downlink_topics);
	config_free(&cfg);
}
END_TEST

/*
 * Topics an uplink subscription can match: fine with MQTT 5 (No Local
 * keeps the bridge's own messages from it), and with MQTT 3.1.1 when the
 * entry says the echo is intended.
 */
START_TEST(test_downlink_echo_allowed)
{
	static const char *const texts[] = {
		"mqtt = { host = \"h\"; protocol = \"5\"; subscribe = [ \"devices/#\" ]; };\n"
		"amqp = { host = \"h\"; };\n"
		"downlink = ( { queue = \"commands\"; topic = \"devices/{1}/commands\"; },\n"
		"             { queue = \"all\"; } );\n",
		"mqtt = { host = \"h\"; protocol = \"3.1.1\"; subscribe = [ \"devices/#\" ]; };\n"
		"amqp = { host = \"h\"; };\n"
		"downlink = ( { queue = \"commands\"; topic = \"devices/{1}/commands\";\n"
		"               allow_echo = true; },\n"
		"             { queue = \"all\"; allow_echo = true; } );\n",
		/* Shared with MQTT 5 is refused (bad-downlink-echo-shared.conf), but allowed here. */
		"mqtt = { host = \"h\"; protocol = \"5\"; subscribe = [ \"$share/g/devices/#\" ]; };\n"
		"amqp = { host = \"h\"; };\n"
		"downlink = ( { queue = \"commands\"; topic = \"devices/{1}/commands\";\n"
		"               allow_echo = true; } );\n",
		/* With MQTT 3.1.1 a topic the subscriptions cannot match needs nothing. */
		"mqtt = { host = \"h\"; protocol = \"3.1.1\"; subscribe = [ \"fleet/#\", \"+/up\" ]; };\n"
		"amqp = { host = \"h\"; };\n"
		"downlink = ( { queue = \"commands\"; topic = \"devices/{1}/down\"; } );\n",
	};

	for (size_t i = 0; i < sizeof(texts) / sizeof(texts[0]); i++) {
		struct bridge_config cfg;

		load_ok(write_raw(texts[i]), &cfg);
		ck_assert_uint_ge(cfg.n_downlink, 1);
		config_free(&cfg);
	}
	/* The same as the second without allow_echo: both entries refused. */
	expect_errors(write_raw("mqtt = { host = \"h\"; protocol = \"3.1.1\"; subscribe = [ \"devices/#\" ]; };\n"
	                        "amqp = { host = \"h\"; };\n"
	                        "downlink = ( { queue = \"commands\"; topic = \"devices/{1}/commands\"; },\n"
	                        "             { queue = \"all\"; } );\n"),
	              (const char *const[]){
	                  ":3: downlink entry 1: its topics (devices/+/commands) can match the uplink "
	                  "subscription 'devices/#'...",
	                  ":4: downlink entry 2: its topics (#) can match the uplink subscription "
	                  "'devices/#'...",
	              }, 2);
}
END_TEST

/* A wildcard in a template is refused wherever it stands, after a {key} too. */
START_TEST(test_downlink_wildcard_after_key)
{
	expect_error(write_raw("mqtt = { host = \"h\"; subscribe = [ \"fleet/#\" ]; };\n"
	                       "amqp = { host = \"h\"; };\n"
	                       "downlink = ( { queue = \"q\"; topic = \"x/{key}/+\"; } );\n"),
	             ":3: downlink entry 1: topic \"x/{key}/+\": '+' and '#' are wildcards, which no "
	             "topic name may hold");
}
END_TEST

/* The base for the downlink's config_diff() cases. */
static const char dl_diff_base[] =
	"mqtt = { host = \"h\"; subscribe = [ \"a/#\" ]; };\n"
	"amqp = { host = \"h\"; };\n"
	"downlink = ( { queue = \"q\"; topic = \"d/{1}\"; prefetch = 10; qos = 1; retain = \"header\"; } );\n";

static void load_dl_variant(struct bridge_config *cfg, const char *from, const char *to)
{
	char text[2048];
	const char *at = strstr(dl_diff_base, from);

	ck_assert_ptr_nonnull(at);
	snprintf(text, sizeof(text), "%.*s%s%s", (int)(at - dl_diff_base), dl_diff_base, to,
	         at + strlen(from));
	load_ok(write_raw(text), cfg);
}

/* Any change to the downlink reopens the consumer channel: an AMQP change, and only that. */
START_TEST(test_downlink_diff)
{
	static const struct {
		const char *from, *to;
		unsigned want;
	} cases[] = {
		{ "queue = \"q\"", "queue = \"q2\"", CFG_DIFF_AMQP },
		{ "\"d/{1}\"", "\"d/{2}\"", CFG_DIFF_AMQP },
		/* No template: "#", which an echo check with MQTT 3.1.1 refuses unless allowed. */
		{ "topic = \"d/{1}\"; ", "allow_echo = true; ", CFG_DIFF_AMQP },
		{ "prefetch = 10", "prefetch = 11", CFG_DIFF_AMQP },
		{ "qos = 1", "qos = 0", CFG_DIFF_AMQP },
		{ "\"header\"", "\"never\"", CFG_DIFF_AMQP },
		{ "retain = \"header\";", "retain = \"header\"; allow_echo = true;", CFG_DIFF_AMQP },
		{ " } );", " }, { queue = \"q2\"; topic = \"e/{1}\"; } );", CFG_DIFF_AMQP },
		/* Defaults written out are the same settings. */
		{ "retain = \"header\";", "retain = \"header\"; allow_echo = false;", 0 },
		/* A moved line declares nothing new. */
		{ "downlink = (", "\ndownlink = (", 0 },
	};
	struct bridge_config a, b;
	char no_downlink[256];

	load_dl_variant(&a, "mqtt", "mqtt");
	load_dl_variant(&b, "mqtt", "mqtt");
	ck_assert_uint_eq(config_diff(&a, &b), 0);
	config_free(&b);
	for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
		load_dl_variant(&b, cases[i].from, cases[i].to);
		ck_assert_msg(config_diff(&a, &b) == cases[i].want && config_diff(&b, &a) == cases[i].want,
		              "case %zu (%s -> %s): diff %#x, wanted %#x", i, cases[i].from, cases[i].to,
		              config_diff(&a, &b), cases[i].want);
		config_free(&b);
	}
	/* The list gone altogether. */
	snprintf(no_downlink, sizeof(no_downlink), "%.*s",
	         (int)(strstr(dl_diff_base, "downlink") - dl_diff_base), dl_diff_base);
	load_ok(write_raw(no_downlink), &b);
	ck_assert_uint_eq(config_diff(&a, &b), CFG_DIFF_AMQP);
	ck_assert_uint_eq(config_diff(&b, &a), CFG_DIFF_AMQP);
	config_free(&b);
	config_free(&a);
}
END_TEST

/* -t lists every downlink entry with all its settings, defaults included. */
START_TEST(test_downlink_print)
{
	struct bridge_config cfg;
	char *text;

	load_ok(write_raw("mqtt = { host = \"h\"; subscribe = [ \"fleet/#\" ]; };\n"
	                  "amqp = { host = \"h\"; };\n"
	                  "downlink = (\n"
	                  "\t{ queue = \"commands\"; topic = \"devices/{1}/commands\"; },\n"
	                  "\t{ queue = \"all\"; prefetch = 5; qos = 0; retain = \"always\"; allow_echo = true; }\n"
	                  ");\n"),
	        &cfg);
	text = print_to_string(&cfg);
	ck_assert_ptr_nonnull(strstr(text,
	        "\ndownlink entry 1 (line 4): queue = \"commands\"; topic = \"devices/{1}/commands\"; "
	        "prefetch = 100; qos = 1; retain = \"header\"; allow_echo = false;\n"));
	ck_assert_ptr_nonnull(strstr(text,
	        "\ndownlink entry 2 (line 5): queue = \"all\"; topic = (unset); prefetch = 5; qos = 0; "
	        "retain = \"always\"; allow_echo = true;\n"));
	ck_assert_ptr_null(strstr(text, "downlink entry 3"));
	free(text);
	config_free(&cfg);

	load_ok(conf_path("good-minimal.conf"), &cfg);
	text = print_to_string(&cfg);
	ck_assert_ptr_null(strstr(text, "downlink"));
	free(text);
	config_free(&cfg);
}
END_TEST

static Suite *config_suite(void)
{
	Suite *s = suite_create("config");
	TCase *tc;
	const struct {
		const char *name;
		const TTest *test;
	} cases[] = {
		{ "subscribe_filter", test_subscribe_filter },
		{ "many_errors", test_many_errors },
		{ "all_bad_files_covered", test_all_bad_files_covered },
		{ "defaults", test_defaults },
		{ "every_setting", test_every_setting },
		{ "sample_config", test_sample_config },
		{ "missing_file", test_missing_file },
		{ "directory", test_directory },
		{ "errors_appended", test_errors_appended },
		{ "free_is_safe", test_free_is_safe },
		{ "print_hides_secrets", test_print_hides_secrets },
		{ "binding_filter", test_binding_filter },
		{ "rules_and_topology", test_rules_and_topology },
		{ "setting_at", test_setting_at },
		{ "print_mapping", test_print_mapping },
	};
	const struct {
		const char *name;
		const TTest *test;
	} tmp_cases[] = {
		{ "numbers_in_range", test_numbers_in_range },
		{ "numbers_truncated", test_numbers_truncated },
		{ "numbers_beyond_int64", test_numbers_beyond_int64 },
		{ "strings", test_strings },
		{ "dot_replacement", test_dot_replacement },
		{ "reconnect_min_above_default_max", test_reconnect_min_above_default_max },
		{ "relations_skip_refused_values", test_relations_skip_refused_values },
		{ "sample_commented_defaults", test_sample_commented_defaults },
		{ "hosts", test_hosts },
		{ "hosts_errors", test_hosts_errors },
		{ "unknown_setting_hints", test_unknown_setting_hints },
		{ "password_file", test_password_file },
		{ "password_credential", test_password_credential },
		{ "config_file_mode", test_config_file_mode },
		{ "tls", test_tls },
		{ "tls_default_ca", test_tls_default_ca },
		{ "not_regular_files", test_not_regular_files },
		{ "includes", test_includes },
		{ "nul_byte", test_nul_byte },
		{ "header_room", test_header_room },
		{ "group_size", test_group_size },
		{ "duplicates_sorted", test_duplicates_sorted },
		{ "log_target", test_log_target },
		{ "subscriptions_from_rules", test_subscriptions_from_rules },
		{ "check_exchanges", test_check_exchanges },
		{ "rule_warnings", test_rule_warnings },
		{ "mapping_errors_all", test_mapping_errors_all },
		{ "mapping_numbers", test_mapping_numbers },
		{ "diff", test_diff },
		{ "downlink_load", test_downlink_load },
		{ "downlink_echo_allowed", test_downlink_echo_allowed },
		{ "downlink_wildcard_after_key", test_downlink_wildcard_after_key },
		{ "downlink_diff", test_downlink_diff },
		{ "downlink_print", test_downlink_print },
	};

	tc = tcase_create("single_error");
	tcase_add_loop_test(tc, test_single_error, 0, (int)N_SINGLE);
	suite_add_tcase(s, tc);
	for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
		tc = tcase_create(cases[i].name);
		tcase_add_test(tc, cases[i].test);
		suite_add_tcase(s, tc);
	}
	for (size_t i = 0; i < sizeof(tmp_cases) / sizeof(tmp_cases[0]); i++) {
		tc = tcase_create(tmp_cases[i].name);
		tcase_add_unchecked_fixture(tc, tmp_setup, tmp_teardown);
		tcase_add_test(tc, tmp_cases[i].test);
		suite_add_tcase(s, tc);
	}
	return s;
}

int main(void)
{
	SRunner *sr = srunner_create(config_suite());
	int failed;

	srunner_run_all(sr, CK_NORMAL);
	failed = srunner_ntests_failed(sr);
	srunner_free(sr);
	return failed != 0 ? EXIT_FAILURE : EXIT_SUCCESS;
}
