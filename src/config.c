#include "config.h"

#include <inttypes.h>
#include <libconfig.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "cfgsrc.h"
#include "props.h"
#include "secret.h"
#include "topic.h"

/* AMQP 0-9-1 short strings (exchange and vhost names) carry at most 255 bytes. */
#define SHORTSTR_MAX 255
/* MQTT strings are length-prefixed with 16 bits. */
#define MQTT_STR_MAX 65535

enum kind {
	K_STRING,
	K_INT,          /* stored as int */
	K_INT64,        /* stored as int64_t */
	K_BOOL,
	K_FILTERS,      /* list or array of MQTT topic filters */
	K_PROTOCOL,     /* "3.1.1" or "5", stored as int */
	K_LOG_LEVEL,    /* stored as enum log_level */
	K_LOG_TARGET,   /* stored as enum log_target */
	K_UNMATCHED,    /* stored as enum unmatched_policy */
};

#define F_REQUIRED 0x1u
#define F_NONEMPTY 0x2u
#define F_SECRET   0x4u /* config_print shows only whether it is set */
#define F_MQTT5    0x8u /* config_print shows it only for MQTT 5 */
#define F_TLS      0x10u /* only allowed with the group's tls = true */

enum group_id { G_MQTT, G_AMQP, G_BRIDGE, N_GROUPS };

static const struct group_def {
	const char *name;
	bool required;
} groups[N_GROUPS] = {
	[G_MQTT] = { "mqtt", true },
	[G_AMQP] = { "amqp", true },
	[G_BRIDGE] = { "bridge", false },
};

enum field_id {
	MQTT_HOST, MQTT_PORT, MQTT_CLIENT_ID, MQTT_USERNAME, MQTT_PASSWORD,
	MQTT_PASSWORD_FILE, MQTT_PASSWORD_CREDENTIAL, MQTT_TLS, MQTT_TLS_CA_FILE, MQTT_TLS_CA_DIR,
	MQTT_TLS_CERT_FILE, MQTT_TLS_KEY_FILE, MQTT_TLS_VERSION, MQTT_TLS_INSECURE,
	MQTT_KEEPALIVE, MQTT_CONNECT_TIMEOUT, MQTT_PROTOCOL, MQTT_SESSION_EXPIRY, MQTT_INFLIGHT_MAX,
	MQTT_SUBSCRIBE,
	AMQP_HOST, AMQP_PORT, AMQP_VHOST, AMQP_USERNAME, AMQP_PASSWORD,
	AMQP_PASSWORD_FILE, AMQP_PASSWORD_CREDENTIAL, AMQP_TLS, AMQP_TLS_CA_FILE,
	AMQP_TLS_CERT_FILE, AMQP_TLS_KEY_FILE, AMQP_TLS_VERSION, AMQP_TLS_INSECURE,
	AMQP_HEARTBEAT, AMQP_CONNECT_TIMEOUT, AMQP_EXCHANGE, AMQP_EXCHANGE_TYPE,
	AMQP_DECLARE_EXCHANGE, AMQP_DEAD_LETTER_EXCHANGE, AMQP_MAX_MESSAGE_SIZE,
	BRIDGE_LOG_LEVEL, BRIDGE_LOG_TARGET, BRIDGE_DOT_REPLACEMENT, BRIDGE_RECONNECT_MIN_MS,
	BRIDGE_RECONNECT_MAX_MS, BRIDGE_DRAIN_TIMEOUT, BRIDGE_UNMATCHED, BRIDGE_TOPIC_HEADER,
	BRIDGE_RETAIN_HEADER, BRIDGE_PLUGIN_HEADERS, BRIDGE_POISON_FAILURES,
	N_FIELDS
};

/*
 * An extra rule for a string value: returns NULL when `value` is acceptable,
 * otherwise the end of a sentence that starts with the setting's name.
 */
typedef const char *string_rule(const char *value);

struct field {
	enum group_id group;
	const char *name;
	enum kind kind;
	unsigned flags;
	size_t off;                 /* where the value lives in struct bridge_config */
	size_t off_count;           /* K_FILTERS: where the count lives */
	int64_t min, max;           /* numbers: the range; strings: max bytes (0: any) */
	int64_t def;                /* default of a number, bool, protocol or level */
	const char *def_str;        /* default of a string, NULL for none */
	const char *const *choices; /* strings: the accepted values, NULL-terminated */
	string_rule *rule;
};

static const char *const exchange_types[] = { "topic", "direct", "fanout", "headers", NULL };
static const char *const level_names[] = { "error", "warning", "info", "debug", NULL };
/* Indexed by enum log_target. */
static const char *const target_names[] = { "stderr", "syslog", NULL };
static const char *const tls_versions[] = { "tlsv1.2", "tlsv1.3", NULL };
/* Indexed by enum unmatched_policy. */
static const char *const unmatched_names[] = { "forward", "drop", NULL };
static const char *const plugin_header_names[] = { "3.10", "3.12", "none", NULL };
static const char *dot_replacement_rule(const char *value);
static const char *credential_rule(const char *value);

#define AT(member) offsetof(struct bridge_config, member)
#define STRING(g, n, fl, member, maxlen, dflt, ch, rl)                           \
	{ .group = (g), .name = (n), .kind = K_STRING, .flags = (fl), .off = AT(member), \
	  .max = (maxlen), .def_str = (dflt), .choices = (ch), .rule = (rl) }
#define NUMBER(g, n, k, fl, member, lo, hi, dflt)                                  \
	{ .group = (g), .name = (n), .kind = (k), .flags = (fl), .off = AT(member),      \
	  .min = (lo), .max = (hi), .def = (dflt) }
#define OTHER(g, n, k, fl, member, dflt)                                           \
	{ .group = (g), .name = (n), .kind = (k), .flags = (fl), .off = AT(member),      \
	  .def = (dflt) }

/* The settings, their limits and their defaults, as config.h states them. */
static const struct field fields[N_FIELDS] = {
	[MQTT_HOST] = STRING(G_MQTT, "host", F_REQUIRED | F_NONEMPTY, mqtt.host, 0, NULL, NULL, NULL),
	[MQTT_PORT] = NUMBER(G_MQTT, "port", K_INT, 0, mqtt.port, 1, 65535, 1883),
	[MQTT_CLIENT_ID] = STRING(G_MQTT, "client_id", F_NONEMPTY, mqtt.client_id, MQTT_STR_MAX,
	                          "mqtt-amqp-bridge", NULL, NULL),
	[MQTT_USERNAME] = STRING(G_MQTT, "username", F_NONEMPTY, mqtt.username, MQTT_STR_MAX,
	                         NULL, NULL, NULL),
	[MQTT_PASSWORD] = STRING(G_MQTT, "password", F_SECRET, mqtt.password, MQTT_STR_MAX,
	                         NULL, NULL, NULL),
	[MQTT_PASSWORD_FILE] = STRING(G_MQTT, "password_file", F_NONEMPTY, mqtt.password_file, 0,
	                              NULL, NULL, NULL),
	[MQTT_PASSWORD_CREDENTIAL] = STRING(G_MQTT, "password_credential", F_NONEMPTY,
	                                    mqtt.password_credential, 0, NULL, NULL, credential_rule),
	[MQTT_TLS] = OTHER(G_MQTT, "tls", K_BOOL, 0, mqtt.tls, false),
	[MQTT_TLS_CA_FILE] = STRING(G_MQTT, "tls_ca_file", F_NONEMPTY | F_TLS, mqtt.tls_ca_file, 0,
	                            NULL, NULL, NULL),
	[MQTT_TLS_CA_DIR] = STRING(G_MQTT, "tls_ca_dir", F_NONEMPTY | F_TLS, mqtt.tls_ca_dir, 0,
	                           NULL, NULL, NULL),
	[MQTT_TLS_CERT_FILE] = STRING(G_MQTT, "tls_cert_file", F_NONEMPTY | F_TLS, mqtt.tls_cert_file, 0,
	                              NULL, NULL, NULL),
	[MQTT_TLS_KEY_FILE] = STRING(G_MQTT, "tls_key_file", F_NONEMPTY | F_TLS, mqtt.tls_key_file, 0,
	                             NULL, NULL, NULL),
	[MQTT_TLS_VERSION] = STRING(G_MQTT, "tls_version", F_TLS, mqtt.tls_version, 0, "tlsv1.2",
	                            tls_versions, NULL),
	[MQTT_TLS_INSECURE] = OTHER(G_MQTT, "tls_insecure", K_BOOL, F_TLS, mqtt.tls_insecure, false),
	[MQTT_KEEPALIVE] = NUMBER(G_MQTT, "keepalive", K_INT, 0, mqtt.keepalive, 5, 65535, 60),
	[MQTT_CONNECT_TIMEOUT] = NUMBER(G_MQTT, "connect_timeout", K_INT, 0, mqtt.connect_timeout,
	                                1, 300, 10),
	[MQTT_PROTOCOL] = OTHER(G_MQTT, "protocol", K_PROTOCOL, 0, mqtt.protocol, MQTT_PROTOCOL_311),
	[MQTT_SESSION_EXPIRY] = NUMBER(G_MQTT, "session_expiry", K_INT64, F_MQTT5, mqtt.session_expiry,
	                               1, 4294967295LL, 86400),
	[MQTT_INFLIGHT_MAX] = NUMBER(G_MQTT, "inflight_max", K_INT, 0, mqtt.inflight_max, 1, 65535, 1000),
	/* Not required: the rules' filters stand in for it (load_subscriptions()). */
	[MQTT_SUBSCRIBE] = { .group = G_MQTT, .name = "subscribe", .kind = K_FILTERS,
	                     .off = AT(mqtt.subscribe),
	                     .off_count = AT(mqtt.n_subscribe) },

	[AMQP_HOST] = STRING(G_AMQP, "host", F_REQUIRED | F_NONEMPTY, amqp.host, 0, NULL, NULL, NULL),
	[AMQP_PORT] = NUMBER(G_AMQP, "port", K_INT, 0, amqp.port, 1, 65535, 5672),
	[AMQP_VHOST] = STRING(G_AMQP, "vhost", F_NONEMPTY, amqp.vhost, SHORTSTR_MAX, "/", NULL, NULL),
	[AMQP_USERNAME] = STRING(G_AMQP, "username", F_NONEMPTY, amqp.username, 0, "guest", NULL, NULL),
	[AMQP_PASSWORD] = STRING(G_AMQP, "password", F_SECRET, amqp.password, 0, "guest", NULL, NULL),
	[AMQP_PASSWORD_FILE] = STRING(G_AMQP, "password_file", F_NONEMPTY, amqp.password_file, 0,
	                              NULL, NULL, NULL),
	[AMQP_PASSWORD_CREDENTIAL] = STRING(G_AMQP, "password_credential", F_NONEMPTY,
	                                    amqp.password_credential, 0, NULL, NULL, credential_rule),
	[AMQP_TLS] = OTHER(G_AMQP, "tls", K_BOOL, 0, amqp.tls, false),
	[AMQP_TLS_CA_FILE] = STRING(G_AMQP, "tls_ca_file", F_NONEMPTY | F_TLS, amqp.tls_ca_file, 0,
	                            NULL, NULL, NULL),
	[AMQP_TLS_CERT_FILE] = STRING(G_AMQP, "tls_cert_file", F_NONEMPTY | F_TLS, amqp.tls_cert_file, 0,
	                              NULL, NULL, NULL),
	[AMQP_TLS_KEY_FILE] = STRING(G_AMQP, "tls_key_file", F_NONEMPTY | F_TLS, amqp.tls_key_file, 0,
	                             NULL, NULL, NULL),
	[AMQP_TLS_VERSION] = STRING(G_AMQP, "tls_version", F_TLS, amqp.tls_version, 0, "tlsv1.2",
	                            tls_versions, NULL),
	[AMQP_TLS_INSECURE] = OTHER(G_AMQP, "tls_insecure", K_BOOL, F_TLS, amqp.tls_insecure, false),
	[AMQP_HEARTBEAT] = NUMBER(G_AMQP, "heartbeat", K_INT, 0, amqp.heartbeat, 1, 3600, 30),
	[AMQP_CONNECT_TIMEOUT] = NUMBER(G_AMQP, "connect_timeout", K_INT, 0, amqp.connect_timeout,
	                                1, 300, 10),
	[AMQP_EXCHANGE] = STRING(G_AMQP, "exchange", F_NONEMPTY, amqp.exchange, SHORTSTR_MAX,
	                         "amq.topic", NULL, NULL),
	[AMQP_EXCHANGE_TYPE] = STRING(G_AMQP, "exchange_type", 0, amqp.exchange_type, 0,
	                              "topic", exchange_types, NULL),
	[AMQP_DECLARE_EXCHANGE] = OTHER(G_AMQP, "declare_exchange", K_BOOL, 0, amqp.declare_exchange, true),
	[AMQP_DEAD_LETTER_EXCHANGE] = STRING(G_AMQP, "dead_letter_exchange", F_NONEMPTY,
	                                     amqp.dead_letter_exchange, SHORTSTR_MAX, NULL, NULL, NULL),
	[AMQP_MAX_MESSAGE_SIZE] = NUMBER(G_AMQP, "max_message_size", K_INT64, 0, amqp.max_message_size,
	                                 1, 536870912, 134217728),

	[BRIDGE_LOG_LEVEL] = OTHER(G_BRIDGE, "log_level", K_LOG_LEVEL, 0, bridge.log_level, LOG_LVL_INFO),
	[BRIDGE_LOG_TARGET] = OTHER(G_BRIDGE, "log_target", K_LOG_TARGET, 0, bridge.log_target,
	                            LOG_TARGET_STDERR),
	[BRIDGE_DOT_REPLACEMENT] = STRING(G_BRIDGE, "dot_replacement", 0, bridge.dot_replacement, 8,
	                                  ".", NULL, dot_replacement_rule),
	[BRIDGE_RECONNECT_MIN_MS] = NUMBER(G_BRIDGE, "reconnect_min_ms", K_INT, 0, bridge.reconnect_min_ms,
	                                   10, 60000, 500),
	[BRIDGE_RECONNECT_MAX_MS] = NUMBER(G_BRIDGE, "reconnect_max_ms", K_INT, 0, bridge.reconnect_max_ms,
	                                   10, 600000, 30000),
	[BRIDGE_DRAIN_TIMEOUT] = NUMBER(G_BRIDGE, "drain_timeout", K_INT, 0, bridge.drain_timeout,
	                                0, 3600, 10),
	[BRIDGE_UNMATCHED] = OTHER(G_BRIDGE, "unmatched", K_UNMATCHED, 0, bridge.unmatched,
	                           UNMATCHED_FORWARD),
	[BRIDGE_TOPIC_HEADER] = OTHER(G_BRIDGE, "topic_header", K_BOOL, 0, bridge.topic_header, false),
	[BRIDGE_RETAIN_HEADER] = OTHER(G_BRIDGE, "retain_header", K_BOOL, 0, bridge.retain_header, false),
	[BRIDGE_PLUGIN_HEADERS] = STRING(G_BRIDGE, "plugin_headers", 0, bridge.plugin_headers, 0,
	                                 "3.10", plugin_header_names, NULL),
	[BRIDGE_POISON_FAILURES] = NUMBER(G_BRIDGE, "poison_failures", K_INT, 0, bridge.poison_failures,
	                                  0, 100, 3),
};

/* A rule's position, for messages about it; sorted by line to be looked up. */
struct rule_pos {
	int line;
	size_t index;
	const char *file;
};

/* State of one config_load() call. */
struct loader {
	const char *path;
	struct cfgerr ce;
	struct cfgsrc src;
	const config_setting_t *group[N_GROUPS];
	const config_setting_t *rules_list;     /* the top-level `rules`, NULL when absent */
	const config_setting_t *topology;       /* the top-level `topology`, NULL when absent */
	bool rules_broken;          /* the rules could not be read or compiled */
	struct rule_pos *rule_pos;  /* each rule's file and line, sorted by line */
	size_t n_rule_pos;
	const config_setting_t *found[N_FIELDS];
	bool bad[N_FIELDS];         /* present but rejected */
	size_t cap_warnings;        /* of the config's warnings array */
};

/* A setting's place in struct bridge_config. */

static void *field_ptr(struct bridge_config *cfg, size_t off)
{
	return (char *)cfg + off;
}

static const void *field_cptr(const struct bridge_config *cfg, size_t off)
{
	return (const char *)cfg + off;
}

/*
 * Where setting `s` is written.  A setting libconfig gave no line borrows
 * the line of its parent.
 */
static void where(const struct loader *ld, const config_setting_t *s, const char **file,
                  unsigned *line)
{
	const config_setting_t *p = s;

	*file = NULL;
	*line = 0;
	while (p != NULL && (*line = config_setting_source_line(p)) == 0)
		p = config_setting_parent(p);
	if (p != NULL)
		*file = config_setting_source_file(p);
	if (*file == NULL)
		*file = ld->path;
	if (*line == 0)
		*line = 1;
}

/* Reports a problem with setting `s`. */
static void at_setting(struct loader *ld, const config_setting_t *s, const char *fmt, ...)
	LOG_PRINTF(3, 4);
static void at_setting(struct loader *ld, const config_setting_t *s, const char *fmt, ...)
{
	const char *file;
	unsigned line;
	char msg[1024];
	va_list ap;

	where(ld, s, &file, &line);
	va_start(ap, fmt);
	vsnprintf(msg, sizeof(msg), fmt, ap);
	va_end(ap);
	cfgerr_report(&ld->ce, file, line, "%s", msg);
}

static void out_of_memory(struct loader *ld)
{
	cfgerr_oom(&ld->ce);
}

/* Names */

static void full_name(char *buf, size_t size, enum field_id id)
{
	snprintf(buf, size, "%s.%s", groups[fields[id].group].name, fields[id].name);
}

/*
 * Fills `hint` with " (did you mean 'x'?)" for an unknown `name` inside
 * group `g` (N_GROUPS: at the top level), or with "" when nothing fits.
 * Tried in order: a near miss among the group's own settings, then the one
 * group that has a setting of exactly that name, then (top level) a near
 * miss among the group names.
 */
static void suggest(char *hint, size_t size, const char *name, enum group_id g)
{
	char guess[64];
	int n_exact = 0;

	hint[0] = '\0';
	if (g != N_GROUPS) {
		for (int i = 0; i < N_FIELDS; i++) {
			if (fields[i].group == g && cfgerr_near(name, fields[i].name)) {
				full_name(guess, sizeof(guess), (enum field_id)i);
				snprintf(hint, size, " (did you mean '%s'?)", guess);
				return;
			}
		}
	}
	for (int i = 0; i < N_FIELDS; i++) {
		if (fields[i].group != g && strcmp(name, fields[i].name) == 0) {
			full_name(guess, sizeof(guess), (enum field_id)i);
			n_exact++;
		}
	}
	if (n_exact == 1) {
		snprintf(hint, size, " (did you mean '%s'?)", guess);
		return;
	}
	if (g == N_GROUPS) {
		static const char *const others[] = { "rules", "topology" };

		for (int i = 0; i < N_GROUPS; i++) {
			if (cfgerr_near(name, groups[i].name)) {
				snprintf(hint, size, " (did you mean '%s'?)", groups[i].name);
				return;
			}
		}
		for (size_t i = 0; i < sizeof(others) / sizeof(others[0]); i++) {
			if (cfgerr_near(name, others[i])) {
				snprintf(hint, size, " (did you mean '%s'?)", others[i]);
				return;
			}
		}
	}
}

/* Settings */

static void type_error(struct loader *ld, const config_setting_t *s, const char *full,
                       const char *what)
{
	at_setting(ld, s, "'%s' must be %s", full, what);
}

static bool string_of(struct loader *ld, const config_setting_t *s, const char *full,
                      const char **out)
{
	if (config_setting_type(s) != CONFIG_TYPE_STRING) {
		type_error(ld, s, full, "a string (in double quotes)");
		return false;
	}
	*out = config_setting_get_string(s);
	return true;
}

static void replace_string(struct loader *ld, char **slot, const char *value)
{
	char *copy = strdup(value);

	if (copy == NULL) {
		out_of_memory(ld);
		return;
	}
	free(*slot);
	*slot = copy;
}

static bool in_choices(const char *const *choices, const char *value)
{
	for (size_t i = 0; choices[i] != NULL; i++)
		if (strcmp(choices[i], value) == 0)
			return true;
	return false;
}

static void list_choices(char *buf, size_t size, const char *const *choices)
{
	size_t used = 0;

	buf[0] = '\0';
	for (size_t i = 0; choices[i] != NULL && used < size; i++)
		used += (size_t)snprintf(buf + used, size - used, "%s%s", i ? ", " : "", choices[i]);
}

static bool load_string(struct loader *ld, const struct field *f, const config_setting_t *s,
                        const char *full, struct bridge_config *cfg)
{
	const char *v, *why;
	size_t len;

	if (!string_of(ld, s, full, &v))
		return false;
	len = strlen(v);
	if (len == 0 && (f->flags & F_NONEMPTY)) {
		at_setting(ld, s, "'%s' must not be empty", full);
		return false;
	}
	if (f->max > 0 && len > (size_t)f->max) {
		at_setting(ld, s, "'%s' must be at most %" PRId64 " bytes long (it has %zu)",
		           full, f->max, len);
		return false;
	}
	if (f->choices != NULL && !in_choices(f->choices, v)) {
		char list[128];

		list_choices(list, sizeof(list), f->choices);
		at_setting(ld, s, "'%s' must be one of %s (not \"%s\")", full, list, v);
		return false;
	}
	if (f->rule != NULL && (why = f->rule(v)) != NULL) {
		at_setting(ld, s, "'%s' %s", full, why);
		return false;
	}
	replace_string(ld, field_ptr(cfg, f->off), v);
	return true;
}

/*
 * The integer setting `s` as written in the file.  Returns INT_EXACT with
 * *v set; INT_BEYOND when the literal lies outside int64_t (lit->text then
 * holds it); INT_NONE when `s` is not an integer at all.
 */
enum int_read { INT_EXACT, INT_BEYOND, INT_NONE };

static enum int_read read_int(struct loader *ld, const config_setting_t *s, int64_t *v,
                              struct cfgint *lit)
{
	int64_t stored;

	switch (config_setting_type(s)) {
	case CONFIG_TYPE_INT:
		stored = config_setting_get_int(s);
		break;
	case CONFIG_TYPE_INT64:
		stored = config_setting_get_int64(s);
		break;
	default:
		return INT_NONE;
	}
	*v = stored;
	if (cfgsrc_number(&ld->src, config_setting_source_file(s), config_setting_name(s),
	                  config_setting_source_line(s), stored, lit)
	    && !cfgint_value(lit, v))
		return INT_BEYOND;
	return INT_EXACT;
}

static bool load_number(struct loader *ld, const struct field *f, const config_setting_t *s,
                        const char *full, struct bridge_config *cfg)
{
	struct cfgint lit;
	enum int_read got;
	int64_t v = 0;
	bool exact;

	got = read_int(ld, s, &v, &lit);
	if (got == INT_NONE) {
		type_error(ld, s, full, "an integer");
		return false;
	}
	exact = got == INT_EXACT;
	if (!exact || v < f->min || v > f->max) {
		if (exact)
			at_setting(ld, s, "'%s' must be between %" PRId64 " and %" PRId64 " (not %" PRId64 ")",
			           full, f->min, f->max, v);
		else
			at_setting(ld, s, "'%s' must be between %" PRId64 " and %" PRId64 " (not %s)",
			           full, f->min, f->max, lit.text);
		return false;
	}
	if (f->kind == K_INT64)
		*(int64_t *)field_ptr(cfg, f->off) = v;
	else
		*(int *)field_ptr(cfg, f->off) = (int)v;
	return true;
}

static bool load_bool(struct loader *ld, const struct field *f, const config_setting_t *s,
                      const char *full, struct bridge_config *cfg)
{
	if (config_setting_type(s) != CONFIG_TYPE_BOOL) {
		type_error(ld, s, full, "true or false");
		return false;
	}
	*(bool *)field_ptr(cfg, f->off) = config_setting_get_bool(s) != 0;
	return true;
}

static bool load_protocol(struct loader *ld, const struct field *f, const config_setting_t *s,
                          const char *full, struct bridge_config *cfg)
{
	const char *v;
	int proto;

	if (config_setting_type(s) != CONFIG_TYPE_STRING) {
		type_error(ld, s, full, "\"3.1.1\" or \"5\" (a string, in double quotes)");
		return false;
	}
	v = config_setting_get_string(s);
	if (strcmp(v, "3.1.1") == 0) {
		proto = MQTT_PROTOCOL_311;
	} else if (strcmp(v, "5") == 0) {
		proto = MQTT_PROTOCOL_5;
	} else {
		at_setting(ld, s, "'%s' must be \"3.1.1\" or \"5\" (not \"%s\")", full, v);
		return false;
	}
	*(int *)field_ptr(cfg, f->off) = proto;
	return true;
}

static bool load_log_level(struct loader *ld, const struct field *f, const config_setting_t *s,
                           const char *full, struct bridge_config *cfg)
{
	enum log_level level;
	const char *v;

	if (!string_of(ld, s, full, &v))
		return false;
	if (log_level_parse(v, &level) != 0) {
		char list[128];

		list_choices(list, sizeof(list), level_names);
		at_setting(ld, s, "'%s' must be one of %s (not \"%s\")", full, list, v);
		return false;
	}
	*(enum log_level *)field_ptr(cfg, f->off) = level;
	return true;
}

/* A string stored as the index of its name: K_LOG_TARGET or K_UNMATCHED. */
static bool load_named(struct loader *ld, const struct field *f, const config_setting_t *s,
                       const char *full, struct bridge_config *cfg)
{
	const char *const *names = f->kind == K_LOG_TARGET ? target_names : unmatched_names;
	const char *v;

	if (!string_of(ld, s, full, &v))
		return false;
	for (int i = 0; names[i] != NULL; i++) {
		if (strcmp(v, names[i]) != 0)
			continue;
		if (f->kind == K_LOG_TARGET)
			*(enum log_target *)field_ptr(cfg, f->off) = (enum log_target)i;
		else
			*(enum unmatched_policy *)field_ptr(cfg, f->off) = (enum unmatched_policy)i;
		return true;
	}
	{
		char list[128];

		list_choices(list, sizeof(list), names);
		at_setting(ld, s, "'%s' must be one of %s (not \"%s\")", full, list, v);
	}
	return false;
}

static bool load_filters(struct loader *ld, const struct field *f, const config_setting_t *s,
                         const char *full, struct bridge_config *cfg)
{
	int type = config_setting_type(s);
	int n = config_setting_length(s);
	char **vec;
	size_t count = 0;
	bool ok = true;

	if (type != CONFIG_TYPE_ARRAY && type != CONFIG_TYPE_LIST) {
		type_error(ld, s, full, "a list of topic filters, e.g. [\"sensors/#\"]");
		return false;
	}
	if (n == 0) {
		at_setting(ld, s, "'%s' must name at least one topic filter", full);
		return false;
	}
	for (int i = 0; i < n; i++) {
		const config_setting_t *e = config_setting_get_elem(s, (unsigned)i);
		enum topic_result r;

		if (config_setting_type(e) != CONFIG_TYPE_STRING) {
			at_setting(ld, e, "'%s[%d]' must be a string (in double quotes)", full, i);
			ok = false;
			continue;
		}
		r = topic_filter_check(config_setting_get_string(e));
		if (r != TOPIC_OK) {
			at_setting(ld, e, "'%s[%d]' is not a valid MQTT topic filter (\"%.200s\": %s)",
			           full, i, config_setting_get_string(e), topic_strerror(r));
			ok = false;
		}
	}
	if (!ok)
		return false;
	vec = calloc((size_t)n, sizeof(*vec));
	if (vec == NULL) {
		out_of_memory(ld);
		return false;
	}
	for (; count < (size_t)n; count++) {
		vec[count] = strdup(config_setting_get_string(config_setting_get_elem(s, (unsigned)count)));
		if (vec[count] == NULL) {
			while (count > 0)
				free(vec[--count]);
			free(vec);
			out_of_memory(ld);
			return false;
		}
	}
	*(char ***)field_ptr(cfg, f->off) = vec;
	*(size_t *)field_ptr(cfg, f->off_count) = count;
	return true;
}

static bool load_field(struct loader *ld, enum field_id id, const config_setting_t *s,
                       struct bridge_config *cfg)
{
	const struct field *f = &fields[id];
	char full[64];

	full_name(full, sizeof(full), id);
	switch (f->kind) {
	case K_STRING:
		return load_string(ld, f, s, full, cfg);
	case K_INT:
	case K_INT64:
		return load_number(ld, f, s, full, cfg);
	case K_BOOL:
		return load_bool(ld, f, s, full, cfg);
	case K_FILTERS:
		return load_filters(ld, f, s, full, cfg);
	case K_PROTOCOL:
		return load_protocol(ld, f, s, full, cfg);
	case K_LOG_LEVEL:
		return load_log_level(ld, f, s, full, cfg);
	case K_LOG_TARGET:
	case K_UNMATCHED:
		return load_named(ld, f, s, full, cfg);
	}
	return false;
}

static const char *dot_replacement_rule(const char *value)
{
	if (strpbrk(value, "/+#*") != NULL)
		return "must not contain '/', '+', '#' or '*'";
	/* Any other text with a '.' would split one MQTT level into several AMQP words. */
	if (strchr(value, '.') != NULL && strcmp(value, ".") != 0)
		return "must be \".\" or contain no '.'";
	return NULL;
}

static const char *credential_rule(const char *value)
{
	if (strchr(value, '/') != NULL || strcmp(value, ".") == 0 || strcmp(value, "..") == 0)
		return "must be the name of a credential, without '/'";
	return NULL;
}

static void set_defaults(struct loader *ld, struct bridge_config *cfg)
{
	for (int i = 0; i < N_FIELDS; i++) {
		const struct field *f = &fields[i];

		switch (f->kind) {
		case K_STRING:
			if (f->def_str != NULL)
				replace_string(ld, field_ptr(cfg, f->off), f->def_str);
			break;
		case K_INT:
		case K_PROTOCOL:
			*(int *)field_ptr(cfg, f->off) = (int)f->def;
			break;
		case K_INT64:
			*(int64_t *)field_ptr(cfg, f->off) = f->def;
			break;
		case K_BOOL:
			*(bool *)field_ptr(cfg, f->off) = f->def != 0;
			break;
		case K_LOG_LEVEL:
			*(enum log_level *)field_ptr(cfg, f->off) = (enum log_level)f->def;
			break;
		case K_LOG_TARGET:
			*(enum log_target *)field_ptr(cfg, f->off) = (enum log_target)f->def;
			break;
		case K_UNMATCHED:
			*(enum unmatched_policy *)field_ptr(cfg, f->off) = (enum unmatched_policy)f->def;
			break;
		case K_FILTERS:
			break;
		}
	}
}

/* Sorts the top-level settings into groups; reports unknown names. */
static void scan_root(struct loader *ld, const config_setting_t *root)
{
	int n = config_setting_length(root);

	for (int i = 0; i < n; i++) {
		const config_setting_t *s = config_setting_get_elem(root, (unsigned)i);
		const char *name = config_setting_name(s);
		int g;

		if (strcmp(name, "rules") == 0) {
			ld->rules_list = s;
			continue;
		}
		if (strcmp(name, "topology") == 0) {
			ld->topology = s;
			continue;
		}
		for (g = 0; g < N_GROUPS; g++)
			if (strcmp(name, groups[g].name) == 0)
				break;
		if (g == N_GROUPS) {
			char hint[96];

			suggest(hint, sizeof(hint), name, N_GROUPS);
			at_setting(ld, s, "unknown setting '%s'%s", name, hint);
		} else if (config_setting_type(s) != CONFIG_TYPE_GROUP) {
			at_setting(ld, s, "'%s' must be a group: %s = { ... };", name, name);
		} else {
			ld->group[g] = s;
		}
	}
	for (int g = 0; g < N_GROUPS; g++) {
		if (groups[g].required && config_setting_get_member(root, groups[g].name) == NULL)
			cfgerr_report(&ld->ce, ld->path, 1, "missing required group '%s'", groups[g].name);
	}
}

/* Matches a group's members to fields; reports unknown names. */
static void scan_group(struct loader *ld, enum group_id g)
{
	const config_setting_t *grp = ld->group[g];
	int n = config_setting_length(grp);

	for (int i = 0; i < n; i++) {
		const config_setting_t *s = config_setting_get_elem(grp, (unsigned)i);
		const char *name = config_setting_name(s);
		int id;

		for (id = 0; id < N_FIELDS; id++)
			if (fields[id].group == g && strcmp(name, fields[id].name) == 0)
				break;
		if (id == N_FIELDS) {
			char hint[96];

			suggest(hint, sizeof(hint), name, g);
			at_setting(ld, s, "unknown setting '%s.%s'%s", groups[g].name, name, hint);
		} else {
			ld->found[id] = s;
		}
	}
}

static bool usable(const struct loader *ld, enum field_id id)
{
	return !ld->bad[id];
}

/* Secrets and TLS files */

/* The settings of one side that name secrets and TLS files. */
struct side {
	enum group_id group;
	enum field_id username, password, password_file, password_credential;
	enum field_id tls, ca_file, ca_dir, cert_file, key_file, insecure;
	bool has_ca_dir;
	size_t secret_max;          /* bytes a password may have, 0: any */
};

static const struct side sides[] = {
	{ G_MQTT, MQTT_USERNAME, MQTT_PASSWORD, MQTT_PASSWORD_FILE, MQTT_PASSWORD_CREDENTIAL,
	  MQTT_TLS, MQTT_TLS_CA_FILE, MQTT_TLS_CA_DIR, MQTT_TLS_CERT_FILE, MQTT_TLS_KEY_FILE,
	  MQTT_TLS_INSECURE, true, MQTT_STR_MAX },
	{ G_AMQP, AMQP_USERNAME, AMQP_PASSWORD, AMQP_PASSWORD_FILE, AMQP_PASSWORD_CREDENTIAL,
	  AMQP_TLS, AMQP_TLS_CA_FILE, AMQP_TLS_CA_FILE, AMQP_TLS_CERT_FILE, AMQP_TLS_KEY_FILE,
	  AMQP_TLS_INSECURE, false, 0 },
};

static char *str_field(struct bridge_config *cfg, enum field_id id)
{
	return *(char **)field_ptr(cfg, fields[id].off);
}

static bool bool_field(const struct bridge_config *cfg, enum field_id id)
{
	return *(const bool *)field_cptr(cfg, fields[id].off);
}

/* Appends a warning: "file:line: text" ("file: text" when line is 0). */
static void warn_at(struct loader *ld, struct bridge_config *cfg, const char *file, unsigned line,
                    const char *fmt, ...) LOG_PRINTF(5, 6);
static void warn_at(struct loader *ld, struct bridge_config *cfg, const char *file, unsigned line,
                    const char *fmt, ...)
{
	char text[1024];
	va_list ap;

	va_start(ap, fmt);
	vsnprintf(text, sizeof(text), fmt, ap);
	va_end(ap);
	if (cfgerr_append(&cfg->warnings, &cfg->n_warnings, &ld->cap_warnings, file, line, text) != 0)
		out_of_memory(ld);
}

/* Warns when the file at `path`, which holds a secret, is readable by any user. */
static void warn_if_public(struct loader *ld, struct bridge_config *cfg, const config_setting_t *s,
                           const char *what, const char *path)
{
	const char *file;
	unsigned line, mode;

	if (!secret_public(path, &mode))
		return;
	where(ld, s, &file, &line);
	warn_at(ld, cfg, file, line, "%s %s is readable by every user (mode %04o); "
	        "chmod o-r it", what, path, mode);
}

/* Loads the password named by password_file or password_credential into place. */
static void load_secret(struct loader *ld, struct bridge_config *cfg, const struct side *sd,
                        enum field_id id)
{
	const config_setting_t *s = ld->found[id];
	const char *value = str_field(cfg, id), *why, *kind;
	char full[64], path[4096], *secret;
	int err;

	full_name(full, sizeof(full), id);
	if (id == sd->password_credential) {
		if (!secret_credential_path(value, path, sizeof(path))) {
			at_setting(ld, s, "'%s' needs $CREDENTIALS_DIRECTORY, which is not set "
			           "(systemd sets it for LoadCredential= and SetCredential=)", full);
			return;
		}
	} else {
		snprintf(path, sizeof(path), "%s", value);
		warn_if_public(ld, cfg, s, "the password file", path);
	}
	why = secret_read_line(path, sd->secret_max, &secret, &err, &kind);
	if (secret == NULL) {
		if (why != NULL)
			at_setting(ld, s, "'%s' names %s, which %s", full, path, why);
		else if (kind != NULL)
			at_setting(ld, s, "'%s' names %s, which is %s, not a regular file", full, path,
			           kind);
		else
			at_setting(ld, s, "'%s' cannot be read (%s): %s", full, path, strerror(err));
		return;
	}
	free(*(char **)field_ptr(cfg, fields[sd->password].off));
	*(char **)field_ptr(cfg, fields[sd->password].off) = secret;
}

/* At most one source of the password, and a username to go with it. */
static void check_secrets(struct loader *ld, struct bridge_config *cfg, const struct side *sd)
{
	const enum field_id ids[] = { sd->password, sd->password_file, sd->password_credential };
	enum field_id first = N_FIELDS;
	bool ok = true;
	char full[64], other[64];

	for (size_t i = 0; i < sizeof(ids) / sizeof(ids[0]); i++) {
		if (ld->found[ids[i]] == NULL)
			continue;
		if (ld->bad[ids[i]])
			ok = false;
		if (first == N_FIELDS) {
			first = ids[i];
			continue;
		}
		full_name(full, sizeof(full), ids[i]);
		full_name(other, sizeof(other), first);
		at_setting(ld, ld->found[ids[i]], "'%s' cannot be combined with '%s': give the "
		           "password one way only", full, other);
		ok = false;
	}
	if (first == N_FIELDS)
		return;
	/* amqp.username has a default; mqtt.username has none. */
	if (ld->found[sd->username] == NULL && fields[sd->username].def_str == NULL) {
		full_name(full, sizeof(full), first);
		full_name(other, sizeof(other), sd->username);
		at_setting(ld, ld->found[first], "'%s' is set but '%s' is not", full, other);
		ok = false;
	}
	if (!ok)
		return;
	if (first == sd->password) {
		const char *file;
		unsigned line, mode;

		where(ld, ld->found[first], &file, &line);
		if (secret_public(file, &mode)) {
			full_name(full, sizeof(full), first);
			warn_at(ld, cfg, file, line, "'%s' is in a file readable by every user "
			        "(mode %04o); chmod o-r it, or use password_file or "
			        "password_credential", full, mode);
		}
		return;
	}
	load_secret(ld, cfg, sd, first);
}

static void check_tls_file(struct loader *ld, struct bridge_config *cfg, enum field_id id, bool dir)
{
	const char *path = str_field(cfg, id), *kind;
	char full[64];
	int err;

	if (path == NULL || ld->found[id] == NULL || ld->bad[id])
		return;
	full_name(full, sizeof(full), id);
	err = secret_check(path, dir, &kind);
	if (err > 0)
		at_setting(ld, ld->found[id], "'%s' cannot be read (%s): %s", full, path, strerror(err));
	else if (err < 0)
		at_setting(ld, ld->found[id], "'%s' names %s, which is %s, not a %s", full, path, kind,
		           dir ? "directory" : "regular file");
}

/* The TLS settings of a side with tls = true: pairs, defaults and files. */
static void check_tls(struct loader *ld, struct bridge_config *cfg, const struct side *sd)
{
	const config_setting_t *tls = ld->found[sd->tls];
	char full[64], other[64];
	const char *kind;
	int err;

	if (tls == NULL || ld->bad[sd->tls] || !bool_field(cfg, sd->tls))
		return;
	if ((ld->found[sd->cert_file] == NULL) != (ld->found[sd->key_file] == NULL)) {
		enum field_id set = ld->found[sd->cert_file] ? sd->cert_file : sd->key_file;
		enum field_id unset = set == sd->cert_file ? sd->key_file : sd->cert_file;

		full_name(full, sizeof(full), set);
		full_name(other, sizeof(other), unset);
		at_setting(ld, ld->found[set], "'%s' is set but '%s' is not: they come together",
		           full, other);
	}
	if (ld->found[sd->ca_file] == NULL && (!sd->has_ca_dir || ld->found[sd->ca_dir] == NULL)) {
		/* The system's trust store. */
		enum field_id id = sd->has_ca_dir ? sd->ca_dir : sd->ca_file;
		const char *def = sd->has_ca_dir ? MQTT_DEFAULT_CA_DIR : AMQP_DEFAULT_CA_FILE;

		replace_string(ld, field_ptr(cfg, fields[id].off), def);
		full_name(full, sizeof(full), id);
		err = secret_check(def, sd->has_ca_dir, &kind);
		if (err > 0)
			at_setting(ld, tls, "'%s' is not set and its default %s cannot be read: %s",
			           full, def, strerror(err));
		else if (err < 0)
			at_setting(ld, tls, "'%s' is not set and its default %s is %s, not a %s", full,
			           def, kind, sd->has_ca_dir ? "directory" : "regular file");
	}
	check_tls_file(ld, cfg, sd->ca_file, false);
	if (sd->has_ca_dir)
		check_tls_file(ld, cfg, sd->ca_dir, true);
	check_tls_file(ld, cfg, sd->cert_file, false);
	check_tls_file(ld, cfg, sd->key_file, false);
	if (ld->found[sd->key_file] != NULL && !ld->bad[sd->key_file])
		warn_if_public(ld, cfg, ld->found[sd->key_file], "the private key file",
		               str_field(cfg, sd->key_file));
	if (bool_field(cfg, sd->insecure)) {
		const char *file;
		unsigned line;

		where(ld, ld->found[sd->insecure], &file, &line);
		full_name(full, sizeof(full), sd->insecure);
		warn_at(ld, cfg, file, line, "'%s' is true: the %s broker's certificate and host "
		        "name are not verified", full, groups[sd->group].name);
	}
}

/* TLS settings are refused while the group's tls is false. */
static void check_tls_only(struct loader *ld, const struct bridge_config *cfg)
{
	for (size_t i = 0; i < sizeof(sides) / sizeof(sides[0]); i++) {
		const struct side *sd = &sides[i];

		if (ld->bad[sd->tls] || bool_field(cfg, sd->tls))
			continue;
		for (int id = 0; id < N_FIELDS; id++) {
			char full[64];

			if (fields[id].group != sd->group || !(fields[id].flags & F_TLS)
			    || ld->found[id] == NULL)
				continue;
			full_name(full, sizeof(full), (enum field_id)id);
			at_setting(ld, ld->found[id], "'%s' only applies with %s.tls = true", full,
			           groups[sd->group].name);
			ld->bad[id] = true;
		}
	}
}

/* Reads the password files and credentials and checks the TLS files. */
static void load_files(struct loader *ld, struct bridge_config *cfg)
{
	for (size_t i = 0; i < sizeof(sides) / sizeof(sides[0]); i++) {
		check_secrets(ld, cfg, &sides[i]);
		check_tls(ld, cfg, &sides[i]);
	}
}

/* Rules that involve more than one setting. */
static void check_relations(struct loader *ld, struct bridge_config *cfg)
{
	const config_setting_t *s;

	check_tls_only(ld, cfg);

	if ((s = ld->found[MQTT_SESSION_EXPIRY]) != NULL && usable(ld, MQTT_PROTOCOL)
	    && cfg->mqtt.protocol != MQTT_PROTOCOL_5)
		at_setting(ld, s, "'mqtt.session_expiry' is only meaningful for MQTT 5 "
		           "(mqtt.protocol = \"5\")");

	if (usable(ld, BRIDGE_RECONNECT_MIN_MS) && usable(ld, BRIDGE_RECONNECT_MAX_MS)
	    && cfg->bridge.reconnect_max_ms < cfg->bridge.reconnect_min_ms) {
		s = ld->found[BRIDGE_RECONNECT_MAX_MS];
		if (s == NULL)
			s = ld->found[BRIDGE_RECONNECT_MIN_MS];
		at_setting(ld, s, "'bridge.reconnect_max_ms' (%d) must not be less than "
		           "'bridge.reconnect_min_ms' (%d)",
		           cfg->bridge.reconnect_max_ms, cfg->bridge.reconnect_min_ms);
	}

	if ((s = ld->found[AMQP_DEAD_LETTER_EXCHANGE]) != NULL && usable(ld, AMQP_DEAD_LETTER_EXCHANGE)
	    && usable(ld, AMQP_EXCHANGE) && cfg->amqp.dead_letter_exchange != NULL
	    && cfg->amqp.exchange != NULL && strcmp(cfg->amqp.dead_letter_exchange, cfg->amqp.exchange) == 0)
		at_setting(ld, s, "'amqp.dead_letter_exchange' must differ from 'amqp.exchange'");
}

/* Lists of groups: the rules and the topology */

/*
 * What a setting inside an element of a list of groups holds.  Each list
 * has one table of these; the parser, config_free(), config_print(),
 * config_diff() and config_setting_at() all walk it, so they cannot drift
 * apart.
 */
enum item_kind {
	I_STRING,       /* char *, copied; in a borrowing list, const char * into the tree */
	I_BOOL,
	I_PERSIST,      /* true or false, stored as enum rule_persist */
	I_FIELDS,       /* a group of string, integer and bool values: struct rules_field *, count */
};

struct item {
	const char *name;
	enum item_kind kind;
	unsigned flags;             /* F_REQUIRED, F_NONEMPTY */
	size_t off;                 /* in the element's struct */
	size_t off_count;           /* I_FIELDS: where the count lives */
	size_t max;                 /* I_STRING: bytes at most, 0 for any */
	bool def;                   /* I_BOOL: the default */
	const char *def_str;        /* I_STRING, copying lists only: the default, NULL for none */
	const char *const *choices; /* I_STRING: the accepted values, NULL-terminated */
	const char *label;          /* I_FIELDS: what one of its values is called in messages */
};

#define ITEM_STRING(T, n, fl, member, mx, dflt, ch)                                      \
	{ .name = (n), .kind = I_STRING, .flags = (fl), .off = offsetof(T, member), .max = (mx), \
	  .def_str = (dflt), .choices = (ch) }
#define ITEM_BOOL(T, n, member, dflt) \
	{ .name = (n), .kind = I_BOOL, .off = offsetof(T, member), .def = (dflt) }
#define ITEM_FIELDS(T, n, member, count, lbl)                                                \
	{ .name = (n), .kind = I_FIELDS, .off = offsetof(T, member), .off_count = offsetof(T, count), \
	  .label = (lbl) }

enum rule_item {
	RI_MATCH, RI_EXCHANGE, RI_ROUTING_KEY, RI_STRIP_PREFIX, RI_KEY_PREFIX, RI_PERSISTENT,
	RI_HEADERS, RI_CONTINUE, RI_DROP, N_RULE_ITEMS
};

/* What the rules module does not check itself (filters, templates, lengths) is checked here. */
static const struct item rule_items[N_RULE_ITEMS] = {
	[RI_MATCH] = ITEM_STRING(struct rule_spec, "match", F_REQUIRED, match, 0, NULL, NULL),
	[RI_EXCHANGE] = ITEM_STRING(struct rule_spec, "exchange", 0, exchange, 0, NULL, NULL),
	[RI_ROUTING_KEY] = ITEM_STRING(struct rule_spec, "routing_key", 0, routing_key, 0, NULL, NULL),
	[RI_STRIP_PREFIX] = ITEM_STRING(struct rule_spec, "strip_prefix", 0, strip_prefix, 0, NULL, NULL),
	[RI_KEY_PREFIX] = ITEM_STRING(struct rule_spec, "key_prefix", 0, key_prefix, 0, NULL, NULL),
	[RI_PERSISTENT] = { .name = "persistent", .kind = I_PERSIST,
	                    .off = offsetof(struct rule_spec, persistent) },
	[RI_HEADERS] = ITEM_FIELDS(struct rule_spec, "headers", headers, n_headers, "header"),
	[RI_CONTINUE] = ITEM_BOOL(struct rule_spec, "continue", cont, false),
	[RI_DROP] = ITEM_BOOL(struct rule_spec, "drop", drop, false),
};

enum exchange_item {
	XI_NAME, XI_TYPE, XI_DURABLE, XI_AUTO_DELETE, XI_INTERNAL, XI_ALTERNATE, XI_ARGUMENTS,
	N_EXCHANGE_ITEMS
};

static const struct item exchange_items[N_EXCHANGE_ITEMS] = {
	[XI_NAME] = ITEM_STRING(struct topo_exchange, "name", F_REQUIRED | F_NONEMPTY, name,
	                        SHORTSTR_MAX, NULL, NULL),
	[XI_TYPE] = ITEM_STRING(struct topo_exchange, "type", 0, type, 0, "topic", exchange_types),
	[XI_DURABLE] = ITEM_BOOL(struct topo_exchange, "durable", durable, true),
	[XI_AUTO_DELETE] = ITEM_BOOL(struct topo_exchange, "auto_delete", auto_delete, false),
	[XI_INTERNAL] = ITEM_BOOL(struct topo_exchange, "internal", internal, false),
	[XI_ALTERNATE] = ITEM_STRING(struct topo_exchange, "alternate_exchange", F_NONEMPTY,
	                             alternate_exchange, SHORTSTR_MAX, NULL, NULL),
	[XI_ARGUMENTS] = ITEM_FIELDS(struct topo_exchange, "arguments", arguments, n_arguments,
	                             "argument"),
};

enum queue_item { QI_NAME, QI_DURABLE, QI_AUTO_DELETE, QI_EXCLUSIVE, QI_ARGUMENTS, N_QUEUE_ITEMS };

static const struct item queue_items[N_QUEUE_ITEMS] = {
	[QI_NAME] = ITEM_STRING(struct topo_queue, "name", F_REQUIRED | F_NONEMPTY, name,
	                        SHORTSTR_MAX, NULL, NULL),
	[QI_DURABLE] = ITEM_BOOL(struct topo_queue, "durable", durable, true),
	[QI_AUTO_DELETE] = ITEM_BOOL(struct topo_queue, "auto_delete", auto_delete, false),
	[QI_EXCLUSIVE] = ITEM_BOOL(struct topo_queue, "exclusive", exclusive, false),
	[QI_ARGUMENTS] = ITEM_FIELDS(struct topo_queue, "arguments", arguments, n_arguments, "argument"),
};

enum binding_item { BI_EXCHANGE, BI_QUEUE, BI_MATCH, BI_KEY, N_BINDING_ITEMS };

/* A binding's `key` may be "": AMQP allows it (a direct exchange's empty key). */
static const struct item binding_items[N_BINDING_ITEMS] = {
	[BI_EXCHANGE] = ITEM_STRING(struct topo_binding, "exchange", F_REQUIRED | F_NONEMPTY, exchange,
	                            SHORTSTR_MAX, NULL, NULL),
	[BI_QUEUE] = ITEM_STRING(struct topo_binding, "queue", F_REQUIRED | F_NONEMPTY, queue,
	                         SHORTSTR_MAX, NULL, NULL),
	[BI_MATCH] = ITEM_STRING(struct topo_binding, "match", 0, match, 0, NULL, NULL),
	[BI_KEY] = ITEM_STRING(struct topo_binding, "key", 0, key, SHORTSTR_MAX, NULL, NULL),
};

/* The lists of groups, in the order config_setting_at() gives their settings. */
enum list_id { L_RULES, L_EXCHANGES, L_QUEUES, L_BINDINGS, N_LISTS };

struct list_def {
	const char *group;          /* its name in config_setting_at(): "rules", "topology.queues" */
	const char *what;           /* an element in messages: "rule", "topology queue" */
	const struct item *items;
	size_t n_items;
	size_t size;                /* of the element's struct */
	size_t off_line;            /* where its int line lives */
	bool borrow;                /* strings point into the libconfig tree */
	size_t off_vec, off_n;      /* topology lists: the array and its length in bridge_config */
};

static const struct list_def lists[N_LISTS] = {
	[L_RULES] = { "rules", "rule", rule_items, N_RULE_ITEMS, sizeof(struct rule_spec),
	              offsetof(struct rule_spec, line), true, 0, 0 },
	[L_EXCHANGES] = { "topology.exchanges", "topology exchange", exchange_items, N_EXCHANGE_ITEMS,
	                  sizeof(struct topo_exchange), offsetof(struct topo_exchange, line), false,
	                  AT(topology.exchanges), AT(topology.n_exchanges) },
	[L_QUEUES] = { "topology.queues", "topology queue", queue_items, N_QUEUE_ITEMS,
	               sizeof(struct topo_queue), offsetof(struct topo_queue, line), false,
	               AT(topology.queues), AT(topology.n_queues) },
	[L_BINDINGS] = { "topology.bindings", "topology binding", binding_items, N_BINDING_ITEMS,
	                 sizeof(struct topo_binding), offsetof(struct topo_binding, line), false,
	                 AT(topology.bindings), AT(topology.n_bindings) },
};

/* An element's bad-item mask has one bit per item. */
_Static_assert(N_RULE_ITEMS <= 32 && N_EXCHANGE_ITEMS <= 32 && N_QUEUE_ITEMS <= 32
               && N_BINDING_ITEMS <= 32, "items must fit a mask");
#define ITEM_BIT(i) (1u << (i))

#define TOPOLOGY_PREFIX "topology."

static void *elem_at(const struct list_def *l, void *vec, size_t i)
{
	return (char *)vec + i * l->size;
}

static const void *elem_cat(const struct list_def *l, const void *vec, size_t i)
{
	return (const char *)vec + i * l->size;
}

static void free_fields(struct rules_field *vec, size_t n)
{
	for (size_t i = 0; i < n; i++) {
		free(vec[i].name);
		free(vec[i].s);
	}
	free(vec);
}

/* Frees what an element of list `l` owns; the element itself stays. */
static void free_element(const struct list_def *l, void *obj)
{
	for (size_t i = 0; i < l->n_items; i++) {
		const struct item *it = &l->items[i];
		char *slot = (char *)obj + it->off;

		if (it->kind == I_STRING && !l->borrow) {
			free(*(char **)slot);
			*(char **)slot = NULL;
		} else if (it->kind == I_FIELDS) {
			free_fields(*(struct rules_field **)slot, *(size_t *)((char *)obj + it->off_count));
			*(struct rules_field **)slot = NULL;
			*(size_t *)((char *)obj + it->off_count) = 0;
		}
	}
}

static void free_elements(const struct list_def *l, void *vec, size_t n)
{
	for (size_t i = 0; i < n && vec != NULL; i++)
		free_element(l, elem_at(l, vec, i));
	free(vec);
}

/*
 * Reads the group `s`, setting `it` of element `pre` ("rule 3"), into a
 * fresh array of named values.  Values may be strings, integers (64 bits,
 * as written) or booleans; names at most 255 bytes (AMQP field-table keys
 * are short strings).  Returns false after reporting every bad value.
 */
static bool load_fields(struct loader *ld, const struct item *it, const config_setting_t *s,
                        const char *pre, struct rules_field **out, size_t *n_out)
{
	struct rules_field *vec;
	size_t count = 0;
	bool ok = true;
	int n;

	if (config_setting_type(s) != CONFIG_TYPE_GROUP) {
		at_setting(ld, s, "%s: '%s' must be a group: %s = { name = value; ... };", pre,
		           it->name, it->name);
		return false;
	}
	n = config_setting_length(s);
	if (n == 0)
		return true;
	vec = calloc((size_t)n, sizeof(*vec));
	if (vec == NULL) {
		out_of_memory(ld);
		return false;
	}
	for (int i = 0; i < n; i++) {
		const config_setting_t *e = config_setting_get_elem(s, (unsigned)i);
		const char *name = config_setting_name(e);
		struct rules_field *f = &vec[count];
		struct cfgint lit;

		if (strlen(name) > SHORTSTR_MAX) {
			at_setting(ld, e, "%s: the name of %s '%.32s...' must be at most %d bytes long "
			           "(it has %zu)", pre, it->label, name, SHORTSTR_MAX, strlen(name));
			ok = false;
			continue;
		}
		switch (config_setting_type(e)) {
		case CONFIG_TYPE_STRING:
			f->kind = RV_STRING;
			f->s = strdup(config_setting_get_string(e));
			if (f->s == NULL) {
				out_of_memory(ld);
				ok = false;
				continue;
			}
			break;
		case CONFIG_TYPE_INT:
		case CONFIG_TYPE_INT64:
			f->kind = RV_INT;
			if (read_int(ld, e, &f->i, &lit) != INT_EXACT) {
				at_setting(ld, e, "%s: %s '%s' must be between %" PRId64 " and %" PRId64
				           " (not %s)", pre, it->label, name, INT64_MIN, INT64_MAX, lit.text);
				ok = false;
				continue;
			}
			break;
		case CONFIG_TYPE_BOOL:
			f->kind = RV_BOOL;
			f->b = config_setting_get_bool(e) != 0;
			break;
		default:
			at_setting(ld, e, "%s: %s '%s' must be a string, an integer, true or false", pre,
			           it->label, name);
			ok = false;
			continue;
		}
		f->name = strdup(name);
		count++;
		if (f->name == NULL) {
			out_of_memory(ld);
			ok = false;
		}
	}
	if (!ok) {
		free_fields(vec, count);
		return false;
	}
	*out = vec;
	*n_out = count;
	return true;
}

/* Reads setting `s` of an element into place as item `it` says; false after reporting. */
static bool load_item(struct loader *ld, const struct list_def *l, const struct item *it,
                      const config_setting_t *s, const char *pre, void *obj)
{
	char *slot = (char *)obj + it->off;
	const char *v;
	size_t len;

	switch (it->kind) {
	case I_STRING:
		if (config_setting_type(s) != CONFIG_TYPE_STRING) {
			at_setting(ld, s, "%s: '%s' must be a string (in double quotes)", pre, it->name);
			return false;
		}
		v = config_setting_get_string(s);
		len = strlen(v);
		if (len == 0 && (it->flags & F_NONEMPTY)) {
			at_setting(ld, s, "%s: '%s' must not be empty", pre, it->name);
			return false;
		}
		if (it->max > 0 && len > it->max) {
			at_setting(ld, s, "%s: '%s' must be at most %zu bytes long (it has %zu)", pre,
			           it->name, it->max, len);
			return false;
		}
		if (it->choices != NULL && !in_choices(it->choices, v)) {
			char list[128];

			list_choices(list, sizeof(list), it->choices);
			at_setting(ld, s, "%s: '%s' must be one of %s (not \"%s\")", pre, it->name, list, v);
			return false;
		}
		if (l->borrow)
			*(const char **)slot = v;
		else
			replace_string(ld, (char **)slot, v);
		return true;
	case I_BOOL:
	case I_PERSIST:
		if (config_setting_type(s) != CONFIG_TYPE_BOOL) {
			at_setting(ld, s, "%s: '%s' must be true or false", pre, it->name);
			return false;
		}
		if (it->kind == I_BOOL)
			*(bool *)slot = config_setting_get_bool(s) != 0;
		else
			*(enum rule_persist *)slot = config_setting_get_bool(s) ? RULE_PERSIST_YES
			                                                        : RULE_PERSIST_NO;
		return true;
	case I_FIELDS:
		return load_fields(ld, it, s, pre, (struct rules_field **)slot,
		                   (size_t *)((char *)obj + it->off_count));
	}
	return false;
}

/* " (did you mean 'x'?)" for an unknown setting of an element, or "". */
static void suggest_item(char *hint, size_t size, const char *name, const struct list_def *l)
{
	hint[0] = '\0';
	for (size_t i = 0; i < l->n_items; i++) {
		if (cfgerr_near(name, l->items[i].name)) {
			snprintf(hint, size, " (did you mean '%s'?)", l->items[i].name);
			return;
		}
	}
}

/*
 * Reads element `index` (0-based) of list `l`, the setting `e`, into `obj`
 * (zeroed): defaults first, then what the file gives.  Returns the mask of
 * items that are missing though required or were refused (every bit when
 * `e` is not a group); each such problem has been reported.
 */
static unsigned load_element(struct loader *ld, const struct list_def *l,
                             const config_setting_t *e, size_t index, void *obj)
{
	unsigned bad = 0, seen = 0;
	const char *file;
	unsigned line;
	char pre[64];
	int n;

	snprintf(pre, sizeof(pre), "%s %zu", l->what, index + 1);
	where(ld, e, &file, &line);
	*(int *)((char *)obj + l->off_line) = (int)line;
	if (config_setting_type(e) != CONFIG_TYPE_GROUP) {
		at_setting(ld, e, "%s must be a group: { %s = ...; ... }", pre, l->items[0].name);
		return ~0u;
	}
	for (size_t i = 0; i < l->n_items; i++) {
		const struct item *it = &l->items[i];

		if (it->kind == I_BOOL)
			*(bool *)((char *)obj + it->off) = it->def;
		else if (it->kind == I_STRING && it->def_str != NULL && !l->borrow)
			replace_string(ld, (char **)((char *)obj + it->off), it->def_str);
	}
	n = config_setting_length(e);
	for (int k = 0; k < n; k++) {
		const config_setting_t *s = config_setting_get_elem(e, (unsigned)k);
		const char *name = config_setting_name(s);
		size_t i;

		for (i = 0; i < l->n_items && strcmp(name, l->items[i].name) != 0; i++)
			;
		if (i == l->n_items) {
			char hint[96];

			suggest_item(hint, sizeof(hint), name, l);
			at_setting(ld, s, "%s: unknown setting '%s'%s", pre, name, hint);
			continue;
		}
		seen |= ITEM_BIT(i);
		if (!load_item(ld, l, &l->items[i], s, pre, obj))
			bad |= ITEM_BIT(i);
	}
	for (size_t i = 0; i < l->n_items; i++) {
		if ((l->items[i].flags & F_REQUIRED) && !(seen & ITEM_BIT(i))) {
			at_setting(ld, e, "%s: missing required setting '%s'", pre, l->items[i].name);
			bad |= ITEM_BIT(i);
		}
	}
	return bad;
}

/*
 * Reads the list of groups `s` (NULL when absent), named `full`, into a
 * fresh array of elements of list `l` (*vec_out, NULL for none) and a mask
 * of bad items per element (*bad_out).  Returns the element count, which
 * is also the array's length; (size_t)-1 when `s` is not a list at all.
 * An empty array, [], is taken for an empty list.
 */
static size_t load_list(struct loader *ld, const struct list_def *l, const config_setting_t *s,
                        const char *full, void **vec_out, unsigned **bad_out)
{
	void *vec;
	unsigned *bad;
	int type, n;

	*vec_out = NULL;
	*bad_out = NULL;
	if (s == NULL)
		return 0;
	type = config_setting_type(s);
	n = config_setting_length(s);
	if (type != CONFIG_TYPE_LIST && !(type == CONFIG_TYPE_ARRAY && n == 0)) {
		at_setting(ld, s, "'%s' must be a list of groups: %s = ( { %s = ...; ... }, ... );",
		           full, config_setting_name(s), l->items[0].name);
		return (size_t)-1;
	}
	if (n == 0)
		return 0;
	vec = calloc((size_t)n, l->size);
	bad = calloc((size_t)n, sizeof(*bad));
	if (vec == NULL || bad == NULL) {
		free(vec);
		free(bad);
		out_of_memory(ld);
		return (size_t)-1;
	}
	for (int i = 0; i < n; i++)
		bad[i] = load_element(ld, l, config_setting_get_elem(s, (unsigned)i), (size_t)i,
		                      elem_at(l, vec, (size_t)i));
	*vec_out = vec;
	*bad_out = bad;
	return (size_t)n;
}

/* The setting `name` of element `e`, or `e` itself when it has none: where to point. */
static const config_setting_t *member_or(const config_setting_t *e, const char *name)
{
	const config_setting_t *m = config_setting_get_member(e, name);

	return m != NULL ? m : e;
}

/* The rules */

/* Passed to rules_compile() for its reports. */
struct rules_ctx {
	struct loader *ld;
	struct bridge_config *cfg;
};

static int rule_pos_cmp(const void *a, const void *b)
{
	const struct rule_pos *x = a, *y = b;

	if (x->line != y->line)
		return x->line < y->line ? -1 : 1;
	return x->index < y->index ? -1 : x->index > y->index;
}

/*
 * The file holding the rule that starts at `line` (@include can move rules
 * elsewhere): of the rules on that line, the first.  A binary search, as
 * every rule may have a message.
 */
static const char *rule_file(const struct loader *ld, int line)
{
	size_t lo = 0, hi = ld->n_rule_pos;

	while (lo < hi) {
		size_t mid = lo + (hi - lo) / 2;

		if (ld->rule_pos[mid].line < line)
			lo = mid + 1;
		else
			hi = mid;
	}
	if (lo < ld->n_rule_pos && ld->rule_pos[lo].line == line)
		return ld->rule_pos[lo].file;
	return ld->path;
}

static void rules_error(void *arg, int line, const char *msg)
{
	struct rules_ctx *c = arg;

	cfgerr_report(&c->ld->ce, rule_file(c->ld, line), line > 0 ? (unsigned)line : 0, "%s", msg);
}

static void rules_warning(void *arg, int line, const char *msg)
{
	struct rules_ctx *c = arg;

	warn_at(c->ld, c->cfg, rule_file(c->ld, line), line > 0 ? (unsigned)line : 0, "%s", msg);
}

/*
 * A rule's static headers go on every message it forwards, and a
 * message's properties must fit in one AMQP frame (rabbitmq-c sends the
 * content header as one frame): a rule whose headers alone leave no room
 * for what every message also carries could never forward anything.
 * Every message carries the property flags and a delivery mode, and the
 * headers bridge.topic_header and bridge.retain_header add, when set (the
 * topic at its shortest, one byte), unless the rule names them itself.
 */
static void check_header_room(struct loader *ld, const struct bridge_config *cfg,
                              const struct rule_spec *spec, size_t index, const char *file)
{
	const size_t room = PROPS_FRAME_MAX - PROPS_HEADER_OVERHEAD;
	struct rules_field added[] = {
		{ .name = PROPS_HDR_TOPIC, .kind = RV_STRING, .s = "t" },
		{ .name = PROPS_HDR_RETAIN, .kind = RV_BOOL },
	};
	bool adds[] = { cfg->bridge.topic_header, cfg->bridge.retain_header };
	size_t size, other = 2 + 1;     /* property flags, delivery mode */

	if (spec->drop || spec->n_headers == 0)
		return;
	size = props_fields_size(spec->headers, spec->n_headers);
	if (size == SIZE_MAX)           /* a name over 255 bytes: the rules module reports it */
		return;
	for (size_t k = 0; k < sizeof(added) / sizeof(added[0]); k++) {
		bool named = false;

		for (size_t j = 0; j < spec->n_headers && adds[k] && !named; j++)
			named = strcmp(spec->headers[j].name, added[k].name) == 0;
		if (adds[k] && !named)
			other += props_fields_size(&added[k], 1) - 4;
	}
	/* The plugin's headers replace any of their names: a signed byte and a bool. */
	switch (props_plugin_of(cfg->bridge.plugin_headers)) {
	case PROPS_PLUGIN_310:
		other += 1 + strlen(PROPS_HDR_DUP) + 1 + 1;
		/* fall through */
	case PROPS_PLUGIN_312:
		other += 1 + strlen(PROPS_HDR_QOS) + 1 + 1;
		break;
	case PROPS_PLUGIN_NONE:
		break;
	}
	if (size > room - other)
		cfgerr_report(&ld->ce, file, (unsigned)spec->line, "rule %zu (match '%s'): its headers take %zu bytes "
		       "encoded; a message's properties must fit in %zu bytes (one AMQP frame), which "
		       "leaves at most %zu for the headers", index + 1, spec->match, size, room,
		       room - other);
}

/*
 * Reads and compiles the `rules` list into cfg->rules (an empty set when
 * there is none; NULL when it cannot be compiled).  A rule whose `match` is
 * missing or refused stands in as a plain "#" rule so that the others are
 * still compiled and every error in them reported; any other refused
 * setting is left out of its rule for the same reason.  Explicit
 * subscriptions go to rules_compile() for its overlap warning.
 */
static void load_rules(struct loader *ld, struct bridge_config *cfg)
{
	const struct list_def *l = &lists[L_RULES];
	const char *const *subscribe = NULL;
	struct rule_spec *specs;
	size_t n, n_subscribe = 0;
	struct rules_ctx ctx;
	unsigned before, *bad;
	void *vec;

	n = load_list(ld, l, ld->rules_list, "rules", &vec, &bad);
	if (n == (size_t)-1) {
		ld->rules_broken = true;
		return;
	}
	specs = vec;
	if (n > 0) {
		ld->rule_pos = calloc(n, sizeof(*ld->rule_pos));
		if (ld->rule_pos == NULL) {
			out_of_memory(ld);
			ld->rules_broken = true;
			goto done;
		}
		ld->n_rule_pos = n;
	}
	for (size_t i = 0; i < n; i++) {
		struct rule_pos *pos = &ld->rule_pos[i];
		unsigned line;

		where(ld, config_setting_get_elem(ld->rules_list, (unsigned)i), &pos->file, &line);
		pos->line = (int)line;
		pos->index = i;
		if (bad[i] & ITEM_BIT(RI_MATCH)) {
			free_element(l, &specs[i]);
			memset(&specs[i], 0, sizeof(specs[i]));
			specs[i].line = (int)line;
			specs[i].match = "#";
		}
		if (!(bad[i] & ITEM_BIT(RI_HEADERS)))
			check_header_room(ld, cfg, &specs[i], i, pos->file);
	}
	if (n > 0)
		qsort(ld->rule_pos, n, sizeof(*ld->rule_pos), rule_pos_cmp);
	if (ld->found[MQTT_SUBSCRIBE] != NULL && usable(ld, MQTT_SUBSCRIBE)) {
		subscribe = (const char *const *)cfg->mqtt.subscribe;
		n_subscribe = cfg->mqtt.n_subscribe;
	}
	ctx = (struct rules_ctx){ ld, cfg };
	before = ld->ce.n_failed;
	cfg->rules = rules_compile(specs, n, cfg->bridge.dot_replacement, subscribe, n_subscribe,
	                           rules_error, rules_warning, &ctx);
	if (cfg->rules == NULL && ld->ce.n_failed == before)
		out_of_memory(ld);
	if (cfg->rules == NULL)
		ld->rules_broken = true;
done:
	free_elements(l, specs, n);
	free(bad);
}

/*
 * mqtt.subscribe when the file gives none: the rules' filters.  Recorded
 * either way in subscribe_explicit.
 */
static void load_subscriptions(struct loader *ld, struct bridge_config *cfg)
{
	const char **subs = NULL;
	char **vec;
	size_t n;

	if (ld->found[MQTT_SUBSCRIBE] != NULL) {
		cfg->mqtt.subscribe_explicit = true;
		return;
	}
	/* Without the mqtt group or with broken rules, that is reported already. */
	if (ld->group[G_MQTT] == NULL || ld->rules_broken || cfg->rules == NULL)
		return;
	n = rules_subscriptions(cfg->rules, &subs);
	if (n == (size_t)-1) {
		out_of_memory(ld);
		return;
	}
	if (n == 0) {
		free(subs);
		at_setting(ld, ld->group[G_MQTT], "'mqtt.subscribe' is not set and no rule gives a "
		           "filter to subscribe to");
		return;
	}
	vec = calloc(n, sizeof(*vec));
	if (vec == NULL) {
		free(subs);
		out_of_memory(ld);
		return;
	}
	for (size_t i = 0; i < n; i++) {
		vec[i] = strdup(subs[i]);
		if (vec[i] == NULL) {
			while (i > 0)
				free(vec[--i]);
			free(vec);
			free(subs);
			out_of_memory(ld);
			return;
		}
	}
	free(subs);
	cfg->mqtt.subscribe = vec;
	cfg->mqtt.n_subscribe = n;
}

/* The topology */

static bool reserved_name(const char *name)
{
	return strncmp(name, "amq.", 4) == 0;
}

/* A name and the index of what it names, to sort by name. */
struct named {
	const char *name;
	size_t index;
};

static int named_cmp(const void *a, const void *b)
{
	const struct named *x = a, *y = b;
	int c = strcmp(x->name, y->name);

	if (c != 0)
		return c;
	return x->index < y->index ? -1 : x->index > y->index;
}

/*
 * For each of the `n` items of `stride` bytes at `items`, whose name is the
 * string pointer at `name_off` (left out where `bad` has `bit`: a name
 * already refused), the index of the first earlier item of the same name,
 * or SIZE_MAX: what comparing each with every earlier one finds, by
 * sorting instead, so that tens of thousands of names take no noticeable
 * time.  Returns a malloc'ed array of n, or NULL after reporting that
 * memory ran out.
 */
static size_t *first_same_name(struct loader *ld, const void *items, size_t n, size_t stride,
                               size_t name_off, const unsigned *bad, unsigned bit)
{
	struct named *v = malloc((n > 0 ? n : 1) * sizeof(*v));
	size_t *first = malloc((n > 0 ? n : 1) * sizeof(*first));
	size_t nv = 0;

	if (v == NULL || first == NULL) {
		free(v);
		free(first);
		out_of_memory(ld);
		return NULL;
	}
	for (size_t i = 0; i < n; i++) {
		first[i] = SIZE_MAX;
		if (!(bad[i] & bit))
			v[nv++] = (struct named){
				*(char *const *)((const char *)items + i * stride + name_off), i };
	}
	if (nv > 0)
		qsort(v, nv, sizeof(*v), named_cmp);
	for (size_t i = 1, run = 0; i < nv; i++) {
		if (strcmp(v[i].name, v[run].name) == 0)
			first[v[i].index] = v[run].index;
		else
			run = i;
	}
	free(v);
	return first;
}

static const struct rules_field *find_field(const struct rules_field *vec, size_t n,
                                            const char *name)
{
	for (size_t i = 0; i < n; i++)
		if (strcmp(vec[i].name, name) == 0)
			return &vec[i];
	return NULL;
}

/*
 * Exchanges: names not reserved, not given twice, and not one the bridge
 * declares itself.  With amqp.declare_exchange = true the bridge declares
 * amqp.exchange (with amqp.exchange_type) and amqp.dead_letter_exchange
 * (topic); declaring either here too could only disagree with that, and
 * RabbitMQ closes the channel on a declaration that differs.  With
 * declare_exchange = false the topology is the place to declare them.
 */
static void check_topo_exchanges(struct loader *ld, const struct bridge_config *cfg,
                                 const config_setting_t *list, const unsigned *bad)
{
	const struct topology *t = &cfg->topology;
	bool declares = usable(ld, AMQP_DECLARE_EXCHANGE) && cfg->amqp.declare_exchange;
	size_t *first;

	if (t->n_exchanges == 0)
		return;
	first = first_same_name(ld, t->exchanges, t->n_exchanges, sizeof(*t->exchanges),
	                        offsetof(struct topo_exchange, name), bad, ITEM_BIT(XI_NAME));
	if (first == NULL)
		return;
	for (size_t i = 0; i < t->n_exchanges; i++) {
		const struct topo_exchange *x = &t->exchanges[i];
		const config_setting_t *e = config_setting_get_elem(list, (unsigned)i);
		const config_setting_t *name = member_or(e, "name");
		size_t j = first[i];

		if (bad[i] & ITEM_BIT(XI_NAME))
			continue;
		if (reserved_name(x->name)) {
			at_setting(ld, name, "topology exchange %zu: 'name' must not start with \"amq.\" "
			           "(the broker reserves those names)", i + 1);
			continue;
		}
		if (j != SIZE_MAX)
			at_setting(ld, name, "topology exchange %zu: exchange '%s' is already declared "
			           "by topology exchange %zu (line %d)", i + 1, x->name, j + 1,
			           t->exchanges[j].line);
		if (declares && usable(ld, AMQP_EXCHANGE) && strcmp(x->name, cfg->amqp.exchange) == 0)
			at_setting(ld, name, "topology exchange %zu: '%s' is amqp.exchange, which the bridge "
			           "declares itself while amqp.declare_exchange is true; declare it in one "
			           "place only (set amqp.declare_exchange = false to declare it here)",
			           i + 1, x->name);
		if (declares && usable(ld, AMQP_DEAD_LETTER_EXCHANGE) && cfg->amqp.dead_letter_exchange
		    && strcmp(x->name, cfg->amqp.dead_letter_exchange) == 0)
			at_setting(ld, name, "topology exchange %zu: '%s' is amqp.dead_letter_exchange, "
			           "which the bridge declares itself while amqp.declare_exchange is true; "
			           "declare it in one place only (set amqp.declare_exchange = false to "
			           "declare it here)", i + 1, x->name);
		if (!declares && x->internal && usable(ld, AMQP_EXCHANGE)
		    && strcmp(x->name, cfg->amqp.exchange) == 0)
			at_setting(ld, member_or(e, "internal"), "topology exchange %zu: '%s' is "
			           "amqp.exchange, where the bridge publishes, so it cannot be internal",
			           i + 1, x->name);
		if (x->alternate_exchange != NULL
		    && find_field(x->arguments, x->n_arguments, "alternate-exchange") != NULL)
			at_setting(ld, member_or(e, "alternate_exchange"), "topology exchange %zu: "
			           "'alternate_exchange' and argument 'alternate-exchange' cannot both be "
			           "given", i + 1);
	}
	free(first);
}

static void check_topo_queues(struct loader *ld, const struct bridge_config *cfg,
                              const config_setting_t *list, const unsigned *bad)
{
	const struct topology *t = &cfg->topology;
	size_t *first;

	if (t->n_queues == 0)
		return;
	first = first_same_name(ld, t->queues, t->n_queues, sizeof(*t->queues),
	                        offsetof(struct topo_queue, name), bad, ITEM_BIT(QI_NAME));
	if (first == NULL)
		return;
	for (size_t i = 0; i < t->n_queues; i++) {
		const struct topo_queue *q = &t->queues[i];
		const config_setting_t *name = member_or(config_setting_get_elem(list, (unsigned)i), "name");
		size_t j = first[i];

		if (bad[i] & ITEM_BIT(QI_NAME))
			continue;
		if (reserved_name(q->name)) {
			at_setting(ld, name, "topology queue %zu: 'name' must not start with \"amq.\" "
			           "(the broker reserves those names)", i + 1);
			continue;
		}
		if (j != SIZE_MAX)
			at_setting(ld, name, "topology queue %zu: queue '%s' is already declared by "
			           "topology queue %zu (line %d)", i + 1, q->name, j + 1, t->queues[j].line);
	}
	free(first);
}

/*
 * Bindings: exactly one of `match` (an MQTT filter, translated as the
 * bridge translates topics, so that the binding catches what the filter
 * would) and `key` (taken as written).  Fills in `key` from `match`.
 */
static void check_topo_bindings(struct loader *ld, struct bridge_config *cfg,
                                const config_setting_t *list, const unsigned *bad)
{
	struct topology *t = &cfg->topology;

	for (size_t i = 0; i < t->n_bindings; i++) {
		struct topo_binding *b = &t->bindings[i];
		const config_setting_t *e = config_setting_get_elem(list, (unsigned)i);
		const config_setting_t *m = config_setting_get_member(e, "match");
		const config_setting_t *k = config_setting_get_member(e, "key");
		char key[TOPIC_KEY_MAX + 1];
		enum topic_result r;
		size_t klen;

		if (config_setting_type(e) != CONFIG_TYPE_GROUP
		    || (bad[i] & (ITEM_BIT(BI_MATCH) | ITEM_BIT(BI_KEY))))
			continue;
		if (m == NULL && k == NULL) {
			at_setting(ld, e, "topology binding %zu: needs 'match' (an MQTT topic filter) or "
			           "'key' (a binding key)", i + 1);
			continue;
		}
		if (m != NULL && k != NULL) {
			at_setting(ld, k, "topology binding %zu: 'match' and 'key' cannot both be given",
			           i + 1);
			continue;
		}
		if (m == NULL)
			continue;
		if (strncmp(b->match, "$share/", 7) == 0) {
			at_setting(ld, m, "topology binding %zu: 'match' must be a plain MQTT topic filter, "
			           "not a shared subscription (\"%.200s\")", i + 1, b->match);
			continue;
		}
		r = topic_filter_check(b->match);
		if (r == TOPIC_OK)
			r = topic_filter_to_key(b->match, cfg->bridge.dot_replacement, key, &klen);
		if (r != TOPIC_OK) {
			at_setting(ld, m, "topology binding %zu: 'match' is not a valid MQTT topic filter "
			           "for a binding (\"%.200s\": %s)", i + 1, b->match, topic_strerror(r));
			continue;
		}
		replace_string(ld, &b->key, key);
	}
}

/* Reads the optional `topology` group into cfg->topology and checks it. */
static void load_topology(struct loader *ld, struct bridge_config *cfg)
{
	const config_setting_t *topo = ld->topology, *part[N_LISTS] = { NULL };
	unsigned *bad[N_LISTS] = { NULL };
	int n;

	if (topo == NULL)
		return;
	if (config_setting_type(topo) != CONFIG_TYPE_GROUP) {
		at_setting(ld, topo, "'topology' must be a group: topology = { exchanges = ( ... ); "
		           "queues = ( ... ); bindings = ( ... ); };");
		return;
	}
	n = config_setting_length(topo);
	for (int k = 0; k < n; k++) {
		const config_setting_t *s = config_setting_get_elem(topo, (unsigned)k);
		const char *name = config_setting_name(s);
		const char *guess = NULL;
		int id;

		for (id = L_EXCHANGES; id < N_LISTS; id++) {
			const char *part_name = lists[id].group + strlen(TOPOLOGY_PREFIX);

			if (strcmp(name, part_name) == 0)
				break;
			if (guess == NULL && cfgerr_near(name, part_name))
				guess = lists[id].group;
		}
		if (id < N_LISTS) {
			part[id] = s;
			continue;
		}
		if (guess != NULL)
			at_setting(ld, s, "unknown setting 'topology.%s' (did you mean '%s'?)", name, guess);
		else
			at_setting(ld, s, "unknown setting 'topology.%s'", name);
	}
	for (int id = L_EXCHANGES; id < N_LISTS; id++) {
		const struct list_def *l = &lists[id];
		void *vec;
		size_t count = load_list(ld, l, part[id], l->group, &vec, &bad[id]);

		if (count == (size_t)-1)
			count = 0;
		*(void **)field_ptr(cfg, l->off_vec) = vec;
		*(size_t *)field_ptr(cfg, l->off_n) = count;
	}
	check_topo_exchanges(ld, cfg, part[L_EXCHANGES], bad[L_EXCHANGES]);
	check_topo_queues(ld, cfg, part[L_QUEUES], bad[L_QUEUES]);
	check_topo_bindings(ld, cfg, part[L_BINDINGS], bad[L_BINDINGS]);
	for (int id = 0; id < N_LISTS; id++)
		free(bad[id]);
}

/*
 * cfg->check_exchanges: what the rules publish to that nothing declares,
 * each once, in rule order.  A rule may not publish to an exchange the
 * topology makes internal: RabbitMQ refuses every such publish.  Sorted
 * names stand in for a search of the topology and of the list so far for
 * each rule, so that many rules and exchanges take n log n time.
 */
static void find_check_exchanges(struct loader *ld, struct bridge_config *cfg)
{
	const struct topology *t = &cfg->topology;
	size_t n = cfg->rules != NULL ? rules_count(cfg->rules) : 0;
	struct named *decl = NULL, *used = NULL;
	size_t n_decl = 0, n_used = 0, n_check = 0;
	bool *check = NULL;

	if (n == 0)
		return;
	decl = malloc((t->n_exchanges > 0 ? t->n_exchanges : 1) * sizeof(*decl));
	used = malloc(n * sizeof(*used));
	check = calloc(n, sizeof(*check));
	if (decl == NULL || used == NULL || check == NULL)
		goto oom;
	for (size_t i = 0; i < t->n_exchanges; i++)
		if (t->exchanges[i].name != NULL)
			decl[n_decl++] = (struct named){ t->exchanges[i].name, i };
	if (n_decl > 0)
		qsort(decl, n_decl, sizeof(*decl), named_cmp);
	for (size_t i = 0; i < n; i++) {
		const struct rule *r = rules_at(cfg->rules, i);
		size_t lo = 0, hi = n_decl;

		if (r->drop || r->exchange == NULL || r->exchange[0] == '\0')
			continue;
		if (cfg->amqp.exchange != NULL && strcmp(r->exchange, cfg->amqp.exchange) == 0)
			continue;
		/* The first declaration of that name, as the lowest index sorts first. */
		while (lo < hi) {
			size_t mid = lo + (hi - lo) / 2;

			if (strcmp(decl[mid].name, r->exchange) < 0)
				lo = mid + 1;
			else
				hi = mid;
		}
		if (lo < n_decl && strcmp(decl[lo].name, r->exchange) == 0) {
			const struct topo_exchange *x = &t->exchanges[decl[lo].index];

			if (x->internal)
				cfgerr_report(&ld->ce, rule_file(ld, r->line), (unsigned)r->line, "rule %zu (match '%s'): "
				       "exchange '%s' is internal (topology exchange %zu, line %d): nothing can "
				       "publish to it", r->index, r->match, r->exchange, decl[lo].index + 1,
				       x->line);
			continue;
		}
		used[n_used++] = (struct named){ r->exchange, i };
	}
	/* Of the rules that publish to one name, the first puts it on the list. */
	if (n_used > 0)
		qsort(used, n_used, sizeof(*used), named_cmp);
	for (size_t i = 0; i < n_used; i++) {
		if (i == 0 || strcmp(used[i].name, used[i - 1].name) != 0) {
			check[used[i].index] = true;
			n_check++;
		}
	}
	if (n_check > 0) {
		cfg->check_exchanges = calloc(n_check, sizeof(*cfg->check_exchanges));
		if (cfg->check_exchanges == NULL)
			goto oom;
	}
	for (size_t i = 0; i < n && cfg->n_check_exchanges < n_check; i++) {
		char *copy;

		if (!check[i])
			continue;
		copy = strdup(rules_at(cfg->rules, i)->exchange);
		if (copy == NULL)
			goto oom;
		cfg->check_exchanges[cfg->n_check_exchanges++] = copy;
	}
	goto done;
oom:
	out_of_memory(ld);
done:
	free(decl);
	free(used);
	free(check);
}

/* What the rules, the topology and the flat settings say about each other. */
static void check_mapping(struct loader *ld, struct bridge_config *cfg)
{
	const config_setting_t *s = ld->found[BRIDGE_UNMATCHED];

	find_check_exchanges(ld, cfg);
	if (s != NULL && usable(ld, BRIDGE_UNMATCHED) && cfg->bridge.unmatched == UNMATCHED_DROP
	    && cfg->rules != NULL && rules_count(cfg->rules) == 0) {
		const char *file;
		unsigned line;

		where(ld, s, &file, &line);
		warn_at(ld, cfg, file, line, "'bridge.unmatched' is \"drop\" and there are no rules: "
		        "every message will be dropped");
	}
}

static void parse_error(struct loader *ld, const config_t *lc)
{
	const char *file = config_error_file(lc);
	const char *text = config_error_text(lc);
	unsigned line;

	if (config_error_type(lc) == CONFIG_ERR_FILE_IO) {
		cfgerr_report(&ld->ce, ld->path, 0, "cannot read: %s", text ? text : "I/O error");
		return;
	}
	if (file == NULL)
		file = ld->path;
	line = config_error_line(lc) > 0 ? (unsigned)config_error_line(lc) : 1;
	if (text == NULL || strcmp(text, "syntax error") == 0)
		cfgerr_report(&ld->ce, file, line, "syntax error");
	else
		cfgerr_report(&ld->ce, file, line, "syntax error: %s", text);
}

/* Reads every setting into `work`, which holds the defaults. */
static void load_all(struct loader *ld, const config_t *lc, struct bridge_config *work)
{
	scan_root(ld, config_root_setting(lc));
	for (int g = 0; g < N_GROUPS; g++)
		if (ld->group[g] != NULL)
			scan_group(ld, (enum group_id)g);
	for (int id = 0; id < N_FIELDS; id++) {
		const struct field *f = &fields[id];

		if (ld->found[id] != NULL) {
			ld->bad[id] = !load_field(ld, (enum field_id)id, ld->found[id], work);
		} else if ((f->flags & F_REQUIRED) && ld->group[f->group] != NULL) {
			char full[64];

			full_name(full, sizeof(full), (enum field_id)id);
			at_setting(ld, ld->group[f->group], "missing required setting '%s'", full);
			ld->bad[id] = true;
		}
	}
	check_relations(ld, work);
	load_files(ld, work);
	load_rules(ld, work);
	load_subscriptions(ld, work);
	load_topology(ld, work);
	check_mapping(ld, work);
}

int config_load(const char *path, struct bridge_config *cfg, struct config_errors *errs)
{
	struct loader ld;
	struct bridge_config work;
	config_t lc;

	memset(&ld, 0, sizeof(ld));
	memset(&work, 0, sizeof(work));
	memset(cfg, 0, sizeof(*cfg));
	ld.path = path;
	cfgerr_init(&ld.ce, path, errs);

	if (cfgsrc_read(&ld.src, &ld.ce, path)) {
		/*
		 * The text checked above, not the file again: libconfig reads
		 * only the includes itself, which were checked too.
		 */
		config_init(&lc);
		if (config_read_string(&lc, cfgsrc_text(&ld.src)) != CONFIG_TRUE) {
			parse_error(&ld, &lc);
		} else {
			set_defaults(&ld, &work);
			replace_string(&ld, &work.path, path);
			load_all(&ld, &lc, &work);
		}
		config_destroy(&lc);
	}

	cfgerr_fini(&ld.ce);
	free(ld.rule_pos);
	cfgsrc_free(&ld.src);
	if (ld.ce.n_failed > 0) {
		config_free(&work);
		return -1;
	}
	*cfg = work;
	return 0;
}

void config_free(struct bridge_config *cfg)
{
	for (int i = 0; i < N_FIELDS; i++) {
		const struct field *f = &fields[i];

		if (f->kind == K_STRING) {
			char **slot = field_ptr(cfg, f->off);

			free(*slot);
		} else if (f->kind == K_FILTERS) {
			char **vec = *(char ***)field_ptr(cfg, f->off);
			size_t n = *(size_t *)field_ptr(cfg, f->off_count);

			for (size_t j = 0; j < n; j++)
				free(vec[j]);
			free(vec);
		}
	}
	if (cfg->rules != NULL)
		rules_free(cfg->rules);
	for (int id = L_EXCHANGES; id < N_LISTS; id++) {
		const struct list_def *l = &lists[id];

		free_elements(l, *(void **)field_ptr(cfg, l->off_vec), *(size_t *)field_ptr(cfg, l->off_n));
	}
	for (size_t i = 0; i < cfg->n_check_exchanges; i++)
		free(cfg->check_exchanges[i]);
	free(cfg->check_exchanges);
	for (size_t i = 0; i < cfg->n_warnings; i++)
		free(cfg->warnings[i]);
	free(cfg->warnings);
	free(cfg->path);
	memset(cfg, 0, sizeof(*cfg));
}

/* Printing */

static void print_quoted(FILE *out, const char *s)
{
	fputc('"', out);
	for (; *s != '\0'; s++) {
		unsigned char c = (unsigned char)*s;

		if (c == '"' || c == '\\')
			fprintf(out, "\\%c", c);
		else if (c < 0x20 || c == 0x7f)
			fprintf(out, "\\x%02x", c);
		else
			fputc(c, out);
	}
	fputc('"', out);
}

static void print_fields(FILE *out, const struct rules_field *vec, size_t n)
{
	fputs("{ ", out);
	for (size_t i = 0; i < n; i++) {
		fprintf(out, "%s = ", vec[i].name);
		switch (vec[i].kind) {
		case RV_STRING:
			print_quoted(out, vec[i].s);
			break;
		case RV_INT:
			fprintf(out, "%" PRId64, vec[i].i);
			break;
		case RV_BOOL:
			fputs(vec[i].b ? "true" : "false", out);
			break;
		}
		fputs("; ", out);
	}
	fputc('}', out);
}

/* One line per declared exchange, queue and binding, from the lists' tables. */
static void print_topology(const struct bridge_config *cfg, FILE *out)
{
	for (int id = L_EXCHANGES; id < N_LISTS; id++) {
		const struct list_def *l = &lists[id];
		const void *vec = *(void *const *)field_cptr(cfg, l->off_vec);
		size_t n = *(const size_t *)field_cptr(cfg, l->off_n);

		for (size_t i = 0; i < n; i++) {
			const char *obj = elem_cat(l, vec, i);

			fprintf(out, "%s %zu (line %d):", l->what, i + 1, *(const int *)(obj + l->off_line));
			for (size_t k = 0; k < l->n_items; k++) {
				const struct item *it = &l->items[k];
				const char *slot = obj + it->off;

				fprintf(out, " %s = ", it->name);
				switch (it->kind) {
				case I_STRING:
					if (*(char *const *)slot == NULL)
						fputs("(unset)", out);
					else
						print_quoted(out, *(char *const *)slot);
					break;
				case I_BOOL:
					fputs(*(const bool *)slot ? "true" : "false", out);
					break;
				case I_PERSIST:
					break;
				case I_FIELDS:
					print_fields(out, *(struct rules_field *const *)slot,
					             *(const size_t *)(obj + it->off_count));
					break;
				}
				fputc(';', out);
			}
			fputc('\n', out);
		}
	}
}

void config_print(const struct bridge_config *cfg, FILE *out)
{
	if (cfg->path != NULL)
		fprintf(out, "# configuration from %s\n", cfg->path);
	for (int i = 0; i < N_FIELDS; i++) {
		const struct field *f = &fields[i];
		char full[64];

		full_name(full, sizeof(full), (enum field_id)i);
		fprintf(out, "%s = ", full);
		if ((f->flags & F_MQTT5) && cfg->mqtt.protocol != MQTT_PROTOCOL_5) {
			fputs("(MQTT 5 only)\n", out);
			continue;
		}
		switch (f->kind) {
		case K_STRING: {
			const char *v = *(char *const *)field_cptr(cfg, f->off);

			if (v == NULL)
				fputs("(unset)", out);
			else if (f->flags & F_SECRET)
				fputs("(set)", out);
			else
				print_quoted(out, v);
			break;
		}
		case K_INT:
			fprintf(out, "%d", *(const int *)field_cptr(cfg, f->off));
			break;
		case K_INT64:
			fprintf(out, "%" PRId64, *(const int64_t *)field_cptr(cfg, f->off));
			break;
		case K_BOOL:
			fputs(*(const bool *)field_cptr(cfg, f->off) ? "true" : "false", out);
			break;
		case K_PROTOCOL:
			fputs(*(const int *)field_cptr(cfg, f->off) == MQTT_PROTOCOL_5 ? "\"5\"" : "\"3.1.1\"",
			      out);
			break;
		case K_LOG_LEVEL: {
			enum log_level level = *(const enum log_level *)field_cptr(cfg, f->off);

			print_quoted(out, level <= LOG_LVL_DEBUG ? level_names[level] : "?");
			break;
		}
		case K_LOG_TARGET: {
			enum log_target t = *(const enum log_target *)field_cptr(cfg, f->off);

			print_quoted(out, t <= LOG_TARGET_SYSLOG ? target_names[t] : "?");
			break;
		}
		case K_UNMATCHED: {
			enum unmatched_policy u = *(const enum unmatched_policy *)field_cptr(cfg, f->off);

			print_quoted(out, u <= UNMATCHED_DROP ? unmatched_names[u] : "?");
			break;
		}
		case K_FILTERS: {
			char *const *vec = *(char **const *)field_cptr(cfg, f->off);
			size_t n = *(const size_t *)field_cptr(cfg, f->off_count);

			fputc('[', out);
			for (size_t j = 0; j < n; j++) {
				if (j > 0)
					fputs(", ", out);
				print_quoted(out, vec[j]);
			}
			fputc(']', out);
			if (i == MQTT_SUBSCRIBE)
				fputs(cfg->mqtt.subscribe_explicit ? "\n# mqtt.subscribe: as the file gives it"
				                                   : "\n# mqtt.subscribe: not set; the filters "
				                                     "of the rules", out);
			break;
		}
		}
		fputc('\n', out);
	}
	print_topology(cfg, out);
	if (cfg->rules != NULL) {
		fprintf(out, "# rules: %zu\n", rules_count(cfg->rules));
		rules_print(cfg->rules, out);
	}
	if (cfg->n_check_exchanges > 0) {
		fputs("# exchanges the rules publish to, checked on connect:", out);
		for (size_t i = 0; i < cfg->n_check_exchanges; i++) {
			fputc(' ', out);
			print_quoted(out, cfg->check_exchanges[i]);
		}
		fputc('\n', out);
	}
}

bool config_setting_at(size_t i, const char **group, const char **name)
{
	if (i < N_FIELDS) {
		*group = groups[fields[i].group].name;
		*name = fields[i].name;
		return true;
	}
	i -= N_FIELDS;
	for (int id = 0; id < N_LISTS; id++) {
		if (i < lists[id].n_items) {
			*group = lists[id].group;
			*name = lists[id].items[i].name;
			return true;
		}
		i -= lists[id].n_items;
	}
	return false;
}

/* Comparing */

static bool same_string(const char *a, const char *b)
{
	return a == NULL ? b == NULL : b != NULL && strcmp(a, b) == 0;
}

static bool same_fields(const struct rules_field *a, size_t na, const struct rules_field *b,
                        size_t nb)
{
	if (na != nb)
		return false;
	for (size_t i = 0; i < na; i++) {
		if (strcmp(a[i].name, b[i].name) != 0 || a[i].kind != b[i].kind)
			return false;
		if ((a[i].kind == RV_STRING && strcmp(a[i].s, b[i].s) != 0)
		    || (a[i].kind == RV_INT && a[i].i != b[i].i)
		    || (a[i].kind == RV_BOOL && a[i].b != b[i].b))
			return false;
	}
	return true;
}

static bool same_field(const struct bridge_config *a, const struct bridge_config *b,
                       const struct field *f)
{
	const void *pa = field_cptr(a, f->off), *pb = field_cptr(b, f->off);

	switch (f->kind) {
	case K_STRING:
		return same_string(*(char *const *)pa, *(char *const *)pb);
	case K_INT:
	case K_PROTOCOL:
		return *(const int *)pa == *(const int *)pb;
	case K_INT64:
		return *(const int64_t *)pa == *(const int64_t *)pb;
	case K_BOOL:
		return *(const bool *)pa == *(const bool *)pb;
	case K_LOG_LEVEL:
		return *(const enum log_level *)pa == *(const enum log_level *)pb;
	case K_LOG_TARGET:
		return *(const enum log_target *)pa == *(const enum log_target *)pb;
	case K_UNMATCHED:
		return *(const enum unmatched_policy *)pa == *(const enum unmatched_policy *)pb;
	case K_FILTERS:
		break;
	}
	return true;
}

static int str_cmp(const void *a, const void *b)
{
	return strcmp(*(char *const *)a, *(char *const *)b);
}

/*
 * A sorted copy of the `n` strings of `v` without repeats (*n_out of
 * them), or NULL when memory ran out.
 */
static char **sorted_set(char *const *v, size_t n, size_t *n_out)
{
	char **copy = malloc((n > 0 ? n : 1) * sizeof(*copy));
	size_t k = 0;

	if (copy == NULL)
		return NULL;
	if (n > 0) {
		memcpy(copy, v, n * sizeof(*copy));
		qsort(copy, n, sizeof(*copy), str_cmp);
	}
	for (size_t i = 0; i < n; i++)
		if (k == 0 || strcmp(copy[k - 1], copy[i]) != 0)
			copy[k++] = copy[i];
	*n_out = k;
	return copy;
}

/*
 * Whether `a` and `b` hold the same strings, whatever their order and
 * repeats: order does not matter to a subscription.  Sorted, as a reload
 * compares them in the event loop and lists may be long.  Memory running
 * out counts as a difference: the reload then does more, never less.
 */
static bool same_set(char *const *a, size_t na, char *const *b, size_t nb)
{
	size_t ka, kb;
	char **sa = sorted_set(a, na, &ka), **sb = sorted_set(b, nb, &kb);
	bool same = sa != NULL && sb != NULL && ka == kb;

	for (size_t i = 0; same && i < ka; i++)
		same = strcmp(sa[i], sb[i]) == 0;
	free(sa);
	free(sb);
	return same;
}

/* Two topology elements of list `l`, their lines aside: a moved line declares nothing new. */
static bool same_element(const struct list_def *l, const char *a, const char *b)
{
	for (size_t k = 0; k < l->n_items; k++) {
		const struct item *it = &l->items[k];
		const char *pa = a + it->off, *pb = b + it->off;

		switch (it->kind) {
		case I_STRING:
			if (!same_string(*(char *const *)pa, *(char *const *)pb))
				return false;
			break;
		case I_BOOL:
			if (*(const bool *)pa != *(const bool *)pb)
				return false;
			break;
		case I_PERSIST:
			if (*(const enum rule_persist *)pa != *(const enum rule_persist *)pb)
				return false;
			break;
		case I_FIELDS:
			if (!same_fields(*(struct rules_field *const *)pa, *(const size_t *)(a + it->off_count),
			                 *(struct rules_field *const *)pb, *(const size_t *)(b + it->off_count)))
				return false;
			break;
		}
	}
	return true;
}

static bool same_topology(const struct bridge_config *a, const struct bridge_config *b)
{
	for (int id = L_EXCHANGES; id < N_LISTS; id++) {
		const struct list_def *l = &lists[id];
		const void *va = *(void *const *)field_cptr(a, l->off_vec);
		const void *vb = *(void *const *)field_cptr(b, l->off_vec);
		size_t n = *(const size_t *)field_cptr(a, l->off_n);

		if (n != *(const size_t *)field_cptr(b, l->off_n))
			return false;
		for (size_t i = 0; i < n; i++)
			if (!same_element(l, elem_cat(l, va, i), elem_cat(l, vb, i)))
				return false;
	}
	return true;
}

/*
 * Two compiled rules lists.  A rule's line counts: the log names the rule
 * that fired by its line, which must be the line of the file now loaded.
 */
static bool same_rules(const struct rules *a, const struct rules *b)
{
	size_t n = a != NULL ? rules_count(a) : 0;

	if (n != (b != NULL ? rules_count(b) : 0))
		return false;
	for (size_t i = 0; i < n; i++) {
		const struct rule *x = rules_at(a, i), *y = rules_at(b, i);

		if (x->line != y->line || strcmp(x->match, y->match) != 0
		    || !same_string(x->exchange, y->exchange) || !same_string(x->routing_key, y->routing_key)
		    || !same_string(x->strip_prefix, y->strip_prefix)
		    || !same_string(x->key_prefix, y->key_prefix) || x->drop != y->drop
		    || x->cont != y->cont || x->persistent != y->persistent
		    || !same_fields(x->headers, x->n_headers, y->headers, y->n_headers))
			return false;
	}
	return true;
}

unsigned config_diff(const struct bridge_config *a, const struct bridge_config *b)
{
	static const unsigned group_flag[N_GROUPS] = {
		[G_MQTT] = CFG_DIFF_MQTT, [G_AMQP] = CFG_DIFF_AMQP, [G_BRIDGE] = CFG_DIFF_BRIDGE,
	};
	unsigned diff = 0;

	for (int i = 0; i < N_FIELDS; i++)
		if (fields[i].kind != K_FILTERS && !same_field(a, b, &fields[i]))
			diff |= group_flag[fields[i].group];
	if (!same_set(a->mqtt.subscribe, a->mqtt.n_subscribe, b->mqtt.subscribe, b->mqtt.n_subscribe))
		diff |= CFG_DIFF_SUBSCRIBE;
	if (!same_topology(a, b)
	    || !same_set(a->check_exchanges, a->n_check_exchanges, b->check_exchanges,
	                 b->n_check_exchanges))
		diff |= CFG_DIFF_AMQP;
	if (!same_rules(a->rules, b->rules))
		diff |= CFG_DIFF_RULES;
	return diff;
}
