#include "schema.h"

#include <string.h>

#include "endpoint.h"
#include "dlmap.h"
#include "failover.h"

/* AMQP 0-9-1 short strings (exchange, queue and vhost names) carry at most 255 bytes. */
#define SHORTSTR_MAX 255
/* MQTT strings are length-prefixed with 16 bits. */
#define MQTT_STR_MAX 65535

static const char *const exchange_types[] = { "topic", "direct", "fanout", "headers", NULL };
static const char *const tls_versions[] = { "tlsv1.2", "tlsv1.3", NULL };
static const char *const plugin_header_names[] = { "3.10", "3.12", "none", NULL };
static const char *const protocol_names[] = { "3.1.1", "5", NULL };
static const int protocol_values[] = { MQTT_PROTOCOL_311, MQTT_PROTOCOL_5 };
/* Indexed by enum log_level, enum log_target, enum log_format and enum unmatched_policy. */
static const char *const level_names[] = { "error", "warning", "info", "debug", NULL };
static const char *const target_names[] = { "stderr", "syslog", NULL };
static const char *const format_names[] = { "text", "json", NULL };
static const char *const unmatched_names[] = { "forward", "drop", NULL };
/* Indexed by enum failover_order. */
static const char *const order_names[] = { "primary", "round_robin", NULL };

_Static_assert(sizeof(enum log_level) == sizeof(int) && sizeof(enum log_target) == sizeof(int)
               && sizeof(enum log_format) == sizeof(int)
               && sizeof(enum failover_order) == sizeof(int)
               && sizeof(enum unmatched_policy) == sizeof(int)
               && sizeof(enum rule_persist) == sizeof(int)
               && sizeof(enum dlmap_retain) == sizeof(int),
               "SK_CHOICE values are stored as int");

static const char *dot_replacement_rule(const char *value)
{
	if (strpbrk(value, "/+#*") != NULL)
		return "must not contain '/', '+', '#' or '*'";
	/* Any other text with a '.' would split one MQTT level into several AMQP words. */
	if (strchr(value, '.') != NULL && strcmp(value, ".") != 0)
		return "must be \".\" or contain no '.'";
	return NULL;
}

static const char *http_listen_rule(const char *value)
{
	struct sockaddr_storage ss;
	socklen_t len;
	const char *bad = endpoint_listen(value, &ss, &len);

	if (bad)
		return bad;
#ifndef HAVE_MICROHTTPD
	return "is set, but this build has no HTTP support (it was configured without "
	       "libmicrohttpd): remove the setting, or rebuild with libmicrohttpd-dev installed";
#else
	return NULL;
#endif
}

/* A rule's name labels its metrics: printable ASCII, nothing to escape. */
static const char *rule_name_rule(const char *value)
{
	for (const unsigned char *p = (const unsigned char *)value; *p; p++)
		if (*p < 0x21 || *p >= 0x7f || *p == '"' || *p == '\\')
			return "must be printable ASCII, without spaces, quotes or backslashes";
	return NULL;
}

/* `host` is one name or address; a port or brackets belong to `port` and `hosts`. */
static const char *host_rule(const char *value)
{
	const char *colon = strchr(value, ':');

	if (strpbrk(value, " \t/@[]") != NULL)
		return "must be a host name or address, without spaces, '/', '@' or brackets "
		       "(an IPv6 address is written bare: \"::1\")";
	if (colon != NULL && strchr(colon + 1, ':') == NULL)
		return "must not give a port: set port, or list \"host:port\" entries in hosts";
	return NULL;
}

static const char *credential_rule(const char *value)
{
	if (strchr(value, '/') != NULL || strcmp(value, ".") == 0 || strcmp(value, "..") == 0)
		return "must be the name of a credential, without '/'";
	return NULL;
}

/* Where a row's value lives in ROWS_OF, the struct of the table being declared. */
#define ON(m) .off = offsetof(ROWS_OF, m), .off_kept = offsetof(ROWS_OF, m)
#define ON_N(m, n) ON(m), .off_count = offsetof(ROWS_OF, n), .off_count_kept = offsetof(ROWS_OF, n)

/*
 * Credentials and TLS: the same settings on both sides, declared once and
 * placed in each side's table.  STR_MAX bounds the username and the
 * password (MQTT strings carry 16-bit lengths; AMQP's PLAIN response has
 * no such bound); USER and PASSWORD are their defaults; CA_FILE is the
 * store tls_ca_file falls back to; CA_DIR() is the tls_ca_dir row where the
 * side's TLS library takes a hashed directory (libmosquitto does,
 * rabbitmq-c does not), else nothing.
 */
#define AUTH_TLS(STR_MAX, USER, PASSWORD, CA_FILE, CA_DIR)                                     \
	{ .name = "username", .kind = SK_STRING, .flags = SF_NONEMPTY, ON(username),            \
	  .max = (STR_MAX), .def_str = (USER) },                                                 \
	{ .name = "password", .kind = SK_STRING, .flags = SF_SECRET, ON(password),              \
	  .max = (STR_MAX), .def_str = (PASSWORD), .needs = "username" },                       \
	{ .name = "password_file", .kind = SK_STRING, .flags = SF_NONEMPTY | SF_PASS_FILE,      \
	  ON(password_file), .needs = "username" },                                              \
	{ .name = "password_credential", .kind = SK_STRING, .flags = SF_NONEMPTY | SF_PASS_CRED, \
	  ON(password_credential), .rule = credential_rule, .needs = "username" },              \
	{ .name = "tls", .kind = SK_BOOL, ON(tls), .def = false },                               \
	{ .name = "tls_ca_file", .kind = SK_STRING,                                              \
	  .flags = SF_NONEMPTY | SF_TLS | SF_FILE | SF_CA, ON(tls_ca_file),                      \
	  .tls_default = (CA_FILE) },                                                            \
	CA_DIR()                                                                                 \
	{ .name = "tls_cert_file", .kind = SK_STRING, .flags = SF_NONEMPTY | SF_TLS | SF_FILE,  \
	  ON(tls_cert_file), .comes_with = "tls_key_file" },                                     \
	{ .name = "tls_key_file", .kind = SK_STRING,                                             \
	  .flags = SF_NONEMPTY | SF_TLS | SF_FILE | SF_PRIVATE, ON(tls_key_file),                \
	  .comes_with = "tls_cert_file" },                                                       \
	{ .name = "tls_version", .kind = SK_STRING, .flags = SF_TLS, ON(tls_version),           \
	  .def_str = "tlsv1.2", .choices = tls_versions },                                       \
	{ .name = "tls_insecure", .kind = SK_BOOL, .flags = SF_TLS | SF_INSECURE,               \
	  ON(tls_insecure), .def = false }

#define MQTT_CA_DIR()                                                                          \
	{ .name = "tls_ca_dir", .kind = SK_STRING, .flags = SF_NONEMPTY | SF_TLS | SF_DIR | SF_CA, \
	  ON(tls_ca_dir), .tls_default = MQTT_DEFAULT_CA_DIR },
#define NO_CA_DIR()

/*
 * Where a side's broker is: one `host` (and `port`), or a list `hosts`
 * tried in `hosts_order` (failover.h).  PORT is the side's default port.
 */
#define BROKER_ROWS(PORT)                                                                   \
	{ .name = "host", .kind = SK_STRING, .flags = SF_REQUIRED | SF_NONEMPTY, ON(host),    \
	  .max = ENDPOINT_HOST_MAX, .instead = "hosts", .rule = host_rule },                   \
	{ .name = "port", .kind = SK_INT, ON(port), .min = 1, .max = 65535, .def = (PORT) },  \
	{ .name = "hosts", .kind = SK_HOSTS, ON_N(hosts, n_hosts),                             \
	  .off_given = offsetof(ROWS_OF, hosts_given) },                                       \
	{ .name = "hosts_order", .kind = SK_CHOICE, ON(hosts_order), .def = FAILOVER_PRIMARY, \
	  .choices = order_names },                                                            \
	{ .name = "primary_retry", .kind = SK_INT, ON(primary_retry), .min = 1, .max = 3600,  \
	  .def = 30 }

#define ROWS_OF struct mqtt_settings
static const struct setting mqtt_rows[] = {
	BROKER_ROWS(1883),
	{ .name = "client_id", .kind = SK_STRING, .flags = SF_NONEMPTY, ON(client_id),
	  .max = MQTT_STR_MAX, .def_str = "mqtt-amqp-bridge" },
	AUTH_TLS(MQTT_STR_MAX, NULL, NULL, NULL, MQTT_CA_DIR),
	{ .name = "keepalive", .kind = SK_INT, ON(keepalive), .min = 5, .max = 65535, .def = 60 },
	{ .name = "connect_timeout", .kind = SK_INT, ON(connect_timeout), .min = 1, .max = 300,
	  .def = 10 },
	{ .name = "protocol", .kind = SK_CHOICE, ON(protocol), .def = MQTT_PROTOCOL_311,
	  .choices = protocol_names, .values = protocol_values, .expect = "\"3.1.1\" or \"5\"" },
	{ .name = "session_expiry", .kind = SK_INT64, .flags = SF_MQTT5, ON(session_expiry),
	  .min = 1, .max = 4294967295LL, .def = 86400 },
	{ .name = "inflight_max", .kind = SK_INT, ON(inflight_max), .min = 1, .max = 65535,
	  .def = 1000 },
	/* Not required: the rules' filters stand in for it.  A new list resubscribes only. */
	{ .name = "subscribe", .kind = SK_FILTERS, ON_N(subscribe, n_subscribe),
	  .off_given = offsetof(ROWS_OF, subscribe_explicit), .reload = CFG_DIFF_SUBSCRIBE },
};
#undef ROWS_OF

#define ROWS_OF struct amqp_settings
static const struct setting amqp_rows[] = {
	BROKER_ROWS(5672),
	{ .name = "vhost", .kind = SK_STRING, .flags = SF_NONEMPTY, ON(vhost), .max = SHORTSTR_MAX,
	  .def_str = "/" },
	AUTH_TLS(0, "guest", "guest", AMQP_DEFAULT_CA_FILE, NO_CA_DIR),
	{ .name = "heartbeat", .kind = SK_INT, ON(heartbeat), .min = 1, .max = 3600, .def = 30 },
	{ .name = "connect_timeout", .kind = SK_INT, ON(connect_timeout), .min = 1, .max = 300,
	  .def = 10 },
	{ .name = "exchange", .kind = SK_STRING, .flags = SF_NONEMPTY, ON(exchange),
	  .max = SHORTSTR_MAX, .def_str = "amq.topic" },
	{ .name = "exchange_type", .kind = SK_STRING, ON(exchange_type), .def_str = "topic",
	  .choices = exchange_types },
	/* "amq.*" exchanges are only ever checked. */
	{ .name = "declare_exchange", .kind = SK_BOOL, ON(declare_exchange), .def = true },
	{ .name = "dead_letter_exchange", .kind = SK_STRING, .flags = SF_NONEMPTY,
	  ON(dead_letter_exchange), .max = SHORTSTR_MAX, .differs = "exchange" },
	/* The default is RabbitMQ 3.x's own limit. */
	{ .name = "max_message_size", .kind = SK_INT64, ON(max_message_size), .min = 1,
	  .max = 536870912, .def = 134217728 },
};
#undef ROWS_OF

#define ROWS_OF struct bridge_settings
static const struct setting bridge_rows[] = {
	{ .name = "log_level", .kind = SK_CHOICE, ON(log_level), .def = LOG_LVL_INFO,
	  .choices = level_names },
	{ .name = "log_target", .kind = SK_CHOICE, ON(log_target), .def = LOG_TARGET_STDERR,
	  .choices = target_names },
	{ .name = "log_format", .kind = SK_CHOICE, ON(log_format), .def = LOG_FORMAT_TEXT,
	  .choices = format_names },
	{ .name = "dot_replacement", .kind = SK_STRING, ON(dot_replacement), .max = 8,
	  .def_str = ".", .rule = dot_replacement_rule },
	{ .name = "reconnect_min_ms", .kind = SK_INT, ON(reconnect_min_ms), .min = 10,
	  .max = 60000, .def = 500 },
	{ .name = "reconnect_max_ms", .kind = SK_INT, ON(reconnect_max_ms), .min = 10,
	  .max = 600000, .def = 30000, .at_least = "reconnect_min_ms" },
	{ .name = "drain_timeout", .kind = SK_INT, ON(drain_timeout), .min = 0, .max = 3600,
	  .def = 10 },
	{ .name = "unmatched", .kind = SK_CHOICE, ON(unmatched), .def = UNMATCHED_FORWARD,
	  .choices = unmatched_names },
	{ .name = "topic_header", .kind = SK_BOOL, ON(topic_header), .def = false },
	{ .name = "retain_header", .kind = SK_BOOL, ON(retain_header), .def = false },
	{ .name = "plugin_headers", .kind = SK_STRING, ON(plugin_headers), .def_str = "3.10",
	  .choices = plugin_header_names },
	{ .name = "poison_failures", .kind = SK_INT, ON(poison_failures), .min = 0, .max = 100,
	  .def = 3 },
	{ .name = "http_listen", .kind = SK_STRING, .flags = SF_NONEMPTY, ON(http_listen),
	  .max = 64, .rule = http_listen_rule },
};
#undef ROWS_OF

/*
 * A rule is read into a struct rule_spec and kept compiled as a struct
 * rule; the diff compares the compiled rules, so each row says where both
 * hold it.  What the rules module checks itself (filters, templates, the
 * lengths of names and keys) is not repeated here.
 */
#define RULE_ON(m) .off = offsetof(struct rule_spec, m), .off_kept = offsetof(struct rule, m)
#define SAME_SIZE(m) (sizeof(((struct rule_spec *)0)->m) == sizeof(((struct rule *)0)->m))
_Static_assert(SAME_SIZE(name) && SAME_SIZE(match) && SAME_SIZE(exchange) && SAME_SIZE(routing_key)
               && SAME_SIZE(strip_prefix) && SAME_SIZE(key_prefix) && SAME_SIZE(persistent)
               && SAME_SIZE(headers) && SAME_SIZE(n_headers) && SAME_SIZE(cont)
               && SAME_SIZE(drop), "a rule's fields keep their types when compiled");

static const struct setting rule_rows[] = {
	{ .name = "match", .kind = SK_STRING, .flags = SF_REQUIRED, RULE_ON(match) },
	{ .name = "name", .kind = SK_STRING, .flags = SF_NONEMPTY, RULE_ON(name), .max = 64,
	  .rule = rule_name_rule },
	{ .name = "exchange", .kind = SK_STRING, RULE_ON(exchange) },
	{ .name = "routing_key", .kind = SK_STRING, RULE_ON(routing_key) },
	{ .name = "strip_prefix", .kind = SK_STRING, RULE_ON(strip_prefix) },
	{ .name = "key_prefix", .kind = SK_STRING, RULE_ON(key_prefix) },
	{ .name = "persistent", .kind = SK_PERSIST, RULE_ON(persistent) },
	{ .name = "headers", .kind = SK_FIELDS, RULE_ON(headers),
	  .off_count = offsetof(struct rule_spec, n_headers),
	  .off_count_kept = offsetof(struct rule, n_headers), .label = "header" },
	{ .name = "continue", .kind = SK_BOOL, RULE_ON(cont), .def = false },
	{ .name = "drop", .kind = SK_BOOL, RULE_ON(drop), .def = false },
};

#define ROWS_OF struct topo_exchange
static const struct setting exchange_rows[] = {
	{ .name = "name", .kind = SK_STRING, .flags = SF_REQUIRED | SF_NONEMPTY, ON(name),
	  .max = SHORTSTR_MAX },
	{ .name = "type", .kind = SK_STRING, ON(type), .def_str = "topic",
	  .choices = exchange_types },
	{ .name = "durable", .kind = SK_BOOL, ON(durable), .def = true },
	{ .name = "auto_delete", .kind = SK_BOOL, ON(auto_delete), .def = false },
	{ .name = "internal", .kind = SK_BOOL, ON(internal), .def = false },
	{ .name = "alternate_exchange", .kind = SK_STRING, .flags = SF_NONEMPTY,
	  ON(alternate_exchange), .max = SHORTSTR_MAX },
	{ .name = "arguments", .kind = SK_FIELDS, ON_N(arguments, n_arguments), .label = "argument" },
};
#undef ROWS_OF

#define ROWS_OF struct topo_queue
static const struct setting queue_rows[] = {
	{ .name = "name", .kind = SK_STRING, .flags = SF_REQUIRED | SF_NONEMPTY, ON(name),
	  .max = SHORTSTR_MAX },
	{ .name = "durable", .kind = SK_BOOL, ON(durable), .def = true },
	{ .name = "auto_delete", .kind = SK_BOOL, ON(auto_delete), .def = false },
	{ .name = "exclusive", .kind = SK_BOOL, ON(exclusive), .def = false },
	{ .name = "arguments", .kind = SK_FIELDS, ON_N(arguments, n_arguments), .label = "argument" },
};
#undef ROWS_OF

/* A binding's `key` may be "": AMQP allows it (a direct exchange's empty key). */
#define ROWS_OF struct topo_binding
static const struct setting binding_rows[] = {
	{ .name = "exchange", .kind = SK_STRING, .flags = SF_REQUIRED | SF_NONEMPTY, ON(exchange),
	  .max = SHORTSTR_MAX },
	{ .name = "queue", .kind = SK_STRING, .flags = SF_REQUIRED | SF_NONEMPTY, ON(queue),
	  .max = SHORTSTR_MAX },
	{ .name = "match", .kind = SK_STRING, ON(match) },
	{ .name = "key", .kind = SK_STRING, ON(key), .max = SHORTSTR_MAX },
};
#undef ROWS_OF

/* Indexed by enum dlmap_retain. */
static const char *const retain_names[] = { "never", "always", "header", NULL };

#define ROWS_OF struct downlink_entry
static const struct setting downlink_rows[] = {
	{ .name = "queue", .kind = SK_STRING, .flags = SF_REQUIRED | SF_NONEMPTY, ON(queue),
	  .max = SHORTSTR_MAX },
	{ .name = "topic", .kind = SK_STRING, .flags = SF_NONEMPTY, ON(topic), .max = MQTT_STR_MAX },
	{ .name = "prefetch", .kind = SK_INT, ON(prefetch), .min = 1, .max = DOWNLINK_PREFETCH_TOTAL,
	  .def = 100 },
	{ .name = "qos", .kind = SK_INT, ON(qos), .min = 0, .max = 1, .def = 1 },
	{ .name = "retain", .kind = SK_CHOICE, ON(retain), .def = DLMAP_RETAIN_HEADER,
	  .choices = retain_names },
	{ .name = "allow_echo", .kind = SK_BOOL, ON(allow_echo), .def = false },
};
#undef ROWS_OF

#define ROWS(v) .rows = (v), .n = sizeof(v) / sizeof((v)[0])
#define GROUP(m) .base = offsetof(struct bridge_config, m)
#define LIST(T, vec, n) .list = true, .size = sizeof(T), .off_line = offsetof(T, line), \
	.off_vec = offsetof(struct bridge_config, vec), .off_n = offsetof(struct bridge_config, n)

/*
 * In the order -t prints them and config_setting_at() lists them.  A
 * change to mqtt reconnects MQTT, to amqp or the topology reconnects AMQP;
 * the bridge settings and the rules apply in place.
 */
const struct section schema[N_SECTIONS] = {
	[S_MQTT] = { .name = "mqtt", ROWS(mqtt_rows), .reload = CFG_DIFF_MQTT, .required = true,
	             GROUP(mqtt) },
	[S_AMQP] = { .name = "amqp", ROWS(amqp_rows), .reload = CFG_DIFF_AMQP, .required = true,
	             GROUP(amqp) },
	[S_BRIDGE] = { .name = "bridge", ROWS(bridge_rows), .reload = CFG_DIFF_BRIDGE,
	               GROUP(bridge) },
	[S_RULES] = { .name = "rules", ROWS(rule_rows), .reload = CFG_DIFF_RULES, .list = true,
	              .what = "rule", .size = sizeof(struct rule_spec),
	              .off_line = offsetof(struct rule_spec, line), .borrow = true,
	              .kept_line = true, .off_line_kept = offsetof(struct rule, line) },
	[S_EXCHANGES] = { .name = "topology.exchanges", ROWS(exchange_rows),
	                  .reload = CFG_DIFF_AMQP, .what = "topology exchange",
	                  LIST(struct topo_exchange, topology.exchanges, topology.n_exchanges) },
	[S_QUEUES] = { .name = "topology.queues", ROWS(queue_rows), .reload = CFG_DIFF_AMQP,
	               .what = "topology queue",
	               LIST(struct topo_queue, topology.queues, topology.n_queues) },
	[S_BINDINGS] = { .name = "topology.bindings", ROWS(binding_rows), .reload = CFG_DIFF_AMQP,
	                 .what = "topology binding",
	                 LIST(struct topo_binding, topology.bindings, topology.n_bindings) },
	/* A change reconnects AMQP, which opens the consumer channel anew. */
	[S_DOWNLINK] = { .name = "downlink", ROWS(downlink_rows), .reload = CFG_DIFF_AMQP,
	                 .what = "downlink entry",
	                 LIST(struct downlink_entry, downlink, n_downlink) },
};

#define FITS(v) (sizeof(v) / sizeof((v)[0]) <= SCHEMA_ROWS_MAX)
_Static_assert(FITS(mqtt_rows) && FITS(amqp_rows) && FITS(bridge_rows) && FITS(rule_rows)
               && FITS(exchange_rows) && FITS(queue_rows) && FITS(binding_rows)
               && FITS(downlink_rows),
               "a section's rows must fit the loader's masks");

int schema_find(const struct section *sec, const char *name)
{
	for (size_t i = 0; i < sec->n; i++)
		if (strcmp(sec->rows[i].name, name) == 0)
			return (int)i;
	return -1;
}

bool config_setting_at(size_t i, const char **group, const char **name)
{
	for (int s = 0; s < N_SECTIONS; s++) {
		if (i < schema[s].n) {
			*group = schema[s].name;
			*name = schema[s].rows[i].name;
			return true;
		}
		i -= schema[s].n;
	}
	return false;
}
