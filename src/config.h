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

struct mqtt_settings {
	char *host;                 /* required */
	int port;                   /* 1..65535, default 1883 */
	char *client_id;            /* 1..23 bytes recommended, max 65535; default "mqtt-amqp-bridge" */
	char *username;             /* NULL when unset */
	char *password;             /* NULL when unset; needs username.  Also filled from
	                               password_file or password_credential */
	char *password_file;        /* NULL when unset; its first line is the password */
	char *password_credential;  /* NULL when unset; read from $CREDENTIALS_DIRECTORY/NAME */
	bool tls;                   /* default false */
	char *tls_ca_file;          /* NULL when unset */
	char *tls_ca_dir;           /* NULL when unset; "/etc/ssl/certs" with tls and no CA given */
	char *tls_cert_file;        /* NULL when unset; comes with tls_key_file */
	char *tls_key_file;         /* NULL when unset; comes with tls_cert_file */
	char *tls_version;          /* minimum: "tlsv1.2" (default) or "tlsv1.3" */
	bool tls_insecure;          /* no certificate or host name verification, default false */
	int keepalive;              /* seconds, 5..65535, default 60 */
	int connect_timeout;        /* seconds for TCP connect, TLS and CONNACK, 1..300, default 10 */
	int protocol;               /* MQTT_PROTOCOL_311 ("3.1.1") or MQTT_PROTOCOL_5 ("5"), default 3.1.1 */
	int64_t session_expiry;     /* seconds, MQTT 5 only, 1..4294967295, default 86400 */
	int inflight_max;           /* unconfirmed messages at most, 1..65535, default 1000 */
	char **subscribe;           /* topic filters, subscribed at QoS 1; at least one.  When
	                               the file gives none, the rules' filters
	                               (rules_subscriptions()) */
	size_t n_subscribe;
	bool subscribe_explicit;    /* given in the file */
};

struct amqp_settings {
	char *host;                 /* required */
	int port;                   /* 1..65535, default 5672 */
	char *vhost;                /* default "/" */
	char *username;             /* default "guest" */
	char *password;             /* default "guest"; also filled from password_file or
	                               password_credential */
	char *password_file;        /* NULL when unset; its first line is the password */
	char *password_credential;  /* NULL when unset; read from $CREDENTIALS_DIRECTORY/NAME */
	bool tls;                   /* default false */
	char *tls_ca_file;          /* NULL when unset; "/etc/ssl/certs/ca-certificates.crt"
	                               with tls and no CA given */
	char *tls_cert_file;        /* NULL when unset; comes with tls_key_file */
	char *tls_key_file;         /* NULL when unset; comes with tls_cert_file */
	char *tls_version;          /* minimum: "tlsv1.2" (default) or "tlsv1.3" */
	bool tls_insecure;          /* no certificate or host name verification, default false */
	int heartbeat;              /* seconds, 1..3600, default 30 */
	int connect_timeout;        /* seconds for TCP connect + AMQP handshake, 1..300, default 10 */
	char *exchange;             /* default "amq.topic", at most 255 bytes */
	char *exchange_type;        /* "topic", "direct", "fanout" or "headers"; default "topic" */
	bool declare_exchange;      /* declare (durable) on connect, default true; "amq.*" are only checked */
	char *dead_letter_exchange; /* NULL when unset, at most 255 bytes, not amqp.exchange */
	int64_t max_message_size;   /* bytes, 1..536870912, default 134217728 (RabbitMQ's default) */
};

enum unmatched_policy { UNMATCHED_FORWARD = 0, UNMATCHED_DROP };

struct bridge_settings {
	enum log_level log_level;   /* "error" | "warning" | "info" | "debug", default "info" */
	enum log_target log_target; /* "stderr" (default) or "syslog" */
	char *dot_replacement;      /* replaces '.' inside MQTT levels; default "." (kept), at most
	                               8 bytes, no '/', '+', '#', '*'; contains '.' only as exactly "." */
	int reconnect_min_ms;       /* 10..60000, default 500 */
	int reconnect_max_ms;       /* reconnect_min_ms..600000, default 30000 */
	int drain_timeout;          /* seconds to wait for confirms on shutdown, 0..3600, default 10 */
	enum unmatched_policy unmatched; /* "forward" (default) or "drop" */
	bool topic_header;          /* add header x-mqtt-topic (the MQTT topic), default false */
	bool retain_header;         /* add header x-mqtt-retain (bool), default false */
	/*
	 * The headers RabbitMQ's MQTT plugin adds: "3.10" (default: as 3.10 and
	 * 3.11, x-mqtt-publish-qos and x-mqtt-dup), "3.12" (x-mqtt-publish-qos)
	 * or "none" (as 3.13 and later)
	 */
	char *plugin_headers;
	/* AMQP failures with the same message at their head before it is poison, 0..100 (0: never), default 3 */
	int poison_failures;
};

/* The optional `topology` group: what is declared on every AMQP (re)connect. */
struct topo_exchange {
	int line;
	char *name;                 /* 1..255 bytes, not "amq.*" nor "" */
	char *type;                 /* "topic" (default), "direct", "fanout" or "headers" */
	bool durable;               /* default true */
	bool auto_delete;           /* default false */
	bool internal;              /* default false */
	char *alternate_exchange;   /* NULL when unset; sent as argument "alternate-exchange" */
	struct rules_field *arguments;   /* the `arguments` group, in file order */
	size_t n_arguments;
};

struct topo_queue {
	int line;
	char *name;                 /* 1..255 bytes */
	bool durable;               /* default true */
	bool auto_delete;           /* default false */
	bool exclusive;             /* default false */
	struct rules_field *arguments;   /* e.g. x-queue-type = "quorum"; x-max-length = 10000 */
	size_t n_arguments;
};

struct topo_binding {
	int line;
	char *exchange;             /* source exchange, 1..255 bytes */
	char *queue;                /* destination queue, 1..255 bytes */
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
 * "host"); false past the last.  Lets tests keep the documentation in step.
 * First the settings of the groups mqtt, amqp and bridge; then those of an
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
 *   CFG_DIFF_BRIDGE     a bridge setting
 *   CFG_DIFF_RULES      the rules
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
