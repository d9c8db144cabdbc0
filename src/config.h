/*
 * config: the libconfig file, loaded into a fresh struct and validated as a
 * whole.  Nothing is applied until config_load() returns 0; on failure every
 * problem found is in `errs`, each as "file:line: message" naming the
 * setting, so an operator fixes the file in one pass.
 */
#ifndef BRIDGE_CONFIG_H
#define BRIDGE_CONFIG_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "cfgerr.h"     /* struct config_errors, config_errors_init(), config_errors_free() */
#include "log.h"
#include "rules.h"

#define MQTT_PROTOCOL_311 4
#define MQTT_PROTOCOL_5 5

/*
 * The settings, as loaded.  Ranges, lengths, defaults and accepted values
 * are declared once, in schema.c, and documented in
 * mqtt-amqp-bridge.conf(5); the comments here say only what a field holds.
 */
struct mqtt_settings {
	char *host;
	int port;
	char *client_id;
	char *username;             /* NULL when unset */
	char *password;             /* NULL when unset; also filled from password_file or
	                               password_credential */
	char *password_file;        /* NULL when unset; its first line is the password */
	char *password_credential;  /* NULL when unset; read from $CREDENTIALS_DIRECTORY/NAME */
	bool tls;
	char *tls_ca_file;          /* NULL when unset */
	char *tls_ca_dir;           /* NULL when unset; the system's store with tls and no CA given */
	char *tls_cert_file;        /* NULL when unset; comes with tls_key_file */
	char *tls_key_file;         /* NULL when unset; comes with tls_cert_file */
	char *tls_version;          /* the lowest accepted: "tlsv1.2" or "tlsv1.3" */
	bool tls_insecure;          /* no certificate or host name verification */
	int keepalive;              /* seconds */
	int connect_timeout;        /* seconds for TCP connect, TLS and CONNACK */
	int protocol;               /* MQTT_PROTOCOL_311 or MQTT_PROTOCOL_5 */
	int64_t session_expiry;     /* seconds, MQTT 5 only */
	int inflight_max;           /* unconfirmed messages at most */
	char **subscribe;           /* topic filters, subscribed at QoS 1; at least one.  When
	                               the file gives none, the rules' filters
	                               (rules_subscriptions()) */
	size_t n_subscribe;
	bool subscribe_explicit;    /* given in the file */
};

struct amqp_settings {
	char *host;
	int port;
	char *vhost;
	char *username;
	char *password;             /* also filled from password_file or password_credential */
	char *password_file;        /* NULL when unset; its first line is the password */
	char *password_credential;  /* NULL when unset; read from $CREDENTIALS_DIRECTORY/NAME */
	bool tls;
	char *tls_ca_file;          /* NULL when unset; the system's store with tls and none given */
	char *tls_cert_file;        /* NULL when unset; comes with tls_key_file */
	char *tls_key_file;         /* NULL when unset; comes with tls_cert_file */
	char *tls_version;          /* the lowest accepted: "tlsv1.2" or "tlsv1.3" */
	bool tls_insecure;          /* no certificate or host name verification */
	int heartbeat;              /* seconds */
	int connect_timeout;        /* seconds for TCP connect + AMQP handshake */
	char *exchange;             /* the main exchange */
	char *exchange_type;        /* "topic", "direct", "fanout" or "headers" */
	bool declare_exchange;      /* declare (durable) on connect; "amq.*" are only checked */
	char *dead_letter_exchange; /* NULL when unset; not amqp.exchange */
	int64_t max_message_size;   /* bytes */
};

enum unmatched_policy { UNMATCHED_FORWARD = 0, UNMATCHED_DROP };

struct bridge_settings {
	enum log_level log_level;
	enum log_target log_target;
	char *dot_replacement;      /* replaces '.' inside MQTT levels ("." keeps them) */
	int reconnect_min_ms;
	int reconnect_max_ms;       /* at least reconnect_min_ms */
	int drain_timeout;          /* seconds to wait for confirms on shutdown */
	enum unmatched_policy unmatched;
	bool topic_header;          /* add header x-mqtt-topic (the MQTT topic) */
	bool retain_header;         /* add header x-mqtt-retain (bool) */
	/*
	 * The headers RabbitMQ's MQTT plugin adds: "3.10" (as 3.10 and 3.11,
	 * x-mqtt-publish-qos and x-mqtt-dup), "3.12" (x-mqtt-publish-qos) or
	 * "none" (as 3.13 and later)
	 */
	char *plugin_headers;
	/* AMQP failures with the same message at their head before it is poison (0: never) */
	int poison_failures;
};

/* The optional `topology` group: what is declared on every AMQP (re)connect. */
struct topo_exchange {
	int line;
	char *name;                 /* not "amq.*" */
	char *type;                 /* "topic", "direct", "fanout" or "headers" */
	bool durable;
	bool auto_delete;
	bool internal;
	char *alternate_exchange;   /* NULL when unset; sent as argument "alternate-exchange" */
	struct rules_field *arguments;   /* the `arguments` group, in file order */
	size_t n_arguments;
};

struct topo_queue {
	int line;
	char *name;
	bool durable;
	bool auto_delete;
	bool exclusive;
	struct rules_field *arguments;   /* e.g. x-queue-type = "quorum"; x-max-length = 10000 */
	size_t n_arguments;
};

struct topo_binding {
	int line;
	char *exchange;             /* source exchange */
	char *queue;                /* destination queue */
	char *match;                /* the MQTT filter as written, NULL when `key` was given */
	char *key;                  /* the binding key: `match` translated, or `key` as written */
};

struct topology {
	struct topo_exchange *exchanges;
	size_t n_exchanges;
	struct topo_queue *queues;
	size_t n_queues;
	struct topo_binding *bindings;
	size_t n_bindings;
};

struct bridge_config {
	char *path;                 /* the file this was loaded from */
	struct mqtt_settings mqtt;
	struct amqp_settings amqp;
	struct bridge_settings bridge;
	struct rules *rules;        /* compiled `rules` list; never NULL after config_load */
	struct topology topology;
	/*
	 * Exchanges the rules publish to that neither are amqp.exchange nor
	 * declared in `topology` nor "" (the default exchange): checked
	 * passively on every connect.  Without duplicates, in rule order.
	 */
	char **check_exchanges;
	size_t n_check_exchanges;
	/*
	 * Things worth an operator's attention that do not stop the bridge (a
	 * secret others may read, verification turned off), each a full
	 * sentence naming the setting; main logs them at start-up and -t
	 * prints them.
	 */
	char **warnings;
	size_t n_warnings;
};

/*
 * The system's trust store, which a side with tls = true and no CA given
 * verifies its broker against: a hashed directory for libmosquitto, a file
 * for rabbitmq-c.  The schema's rows for mqtt.tls_ca_dir and
 * amqp.tls_ca_file fall back to these.
 */
#define MQTT_DEFAULT_CA_DIR "/etc/ssl/certs"
#define AMQP_DEFAULT_CA_FILE "/etc/ssl/certs/ca-certificates.crt"

/*
 * Parses and validates `path` into `cfg` (which need not be initialised).
 * Password files and credentials are read, and the TLS files checked to be
 * readable, now, so that -t finds what start-up would.
 * Returns 0 on success.  Returns -1 when the file cannot be read or parsed or
 * any setting is unknown, of the wrong type, out of range or missing; `errs`
 * then holds every error (it is appended to; the caller frees it), and `cfg`
 * holds nothing that needs freeing.
 */
int config_load(const char *path, struct bridge_config *cfg, struct config_errors *errs);

void config_free(struct bridge_config *cfg);

/*
 * The i-th setting the parser accepts, as its group and name ("mqtt",
 * "host"); false past the last: the rows of the schema (schema.h), in
 * order.  Lets tests keep the documentation in step.  First the settings of the groups mqtt, amqp and bridge; then those of an
 * element of each list of groups, with the list's path as the group:
 * "rules" (match, exchange, routing_key, strip_prefix, key_prefix,
 * persistent, headers, continue, drop), then "topology.exchanges",
 * "topology.queues" and "topology.bindings".  The man page documents
 * these as "rules.match", "topology.exchanges.name" and so on.
 */
bool config_setting_at(size_t i, const char **group, const char **name);

/*
 * What differs between two loaded configurations, for a reload:
 *   CFG_DIFF_MQTT       an mqtt setting other than subscribe (reconnect MQTT)
 *   CFG_DIFF_SUBSCRIBE  the subscription list (resubscribe by difference)
 *   CFG_DIFF_AMQP       an amqp setting, the topology or check_exchanges
 *                       (reconnect AMQP)
 *   CFG_DIFF_BRIDGE     a bridge setting (applied in place)
 *   CFG_DIFF_RULES      the rules (applied in place)
 * Which bit a setting's change sets is declared with the setting, in the
 * schema.
 */
#define CFG_DIFF_MQTT 0x1u
#define CFG_DIFF_SUBSCRIBE 0x2u
#define CFG_DIFF_AMQP 0x4u
#define CFG_DIFF_BRIDGE 0x8u
#define CFG_DIFF_RULES 0x10u
unsigned config_diff(const struct bridge_config *a, const struct bridge_config *b);

/* Writes a human-readable summary (no secrets: "(set)" instead) to `out`, for -t. */
#include <stdio.h>
void config_print(const struct bridge_config *cfg, FILE *out);

#endif
