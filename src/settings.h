/*
 * settings: what each group of the configuration holds once loaded: the
 * two sides' connection settings, the bridge's own and the topology.  The
 * links need only this, not the whole configuration (config.h) nor the
 * rules.
 */
#ifndef BRIDGE_SETTINGS_H
#define BRIDGE_SETTINGS_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "endpoint.h"
#include "field.h"
#include "log.h"

#define MQTT_PROTOCOL_311 4
#define MQTT_PROTOCOL_5 5

/*
 * The settings, as loaded.  Ranges, lengths, defaults and accepted values
 * are declared once, in schema.c, and documented in
 * mqtt-amqp-bridge.conf(5); the comments here say only what a field holds.
 */
struct mqtt_settings {
	char *host;                 /* NULL when the file gives `hosts` */
	int port;
	/*
	 * The brokers, in the order they are tried: `hosts` as given (an
	 * entry without a port takes `port`), or `host` and `port` as the one
	 * entry.  Never empty once loaded.
	 */
	struct endpoint *hosts;
	size_t n_hosts;
	bool hosts_given;           /* the file gives `hosts` rather than `host` */
	int hosts_order;            /* enum failover_order */
	int primary_retry;          /* seconds between checks that the first address is back */
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
	char *host;                 /* NULL when the file gives `hosts` */
	int port;
	/*
	 * The brokers, in the order they are tried: `hosts` as given (an
	 * entry without a port takes `port`), or `host` and `port` as the one
	 * entry.  Never empty once loaded.
	 */
	struct endpoint *hosts;
	size_t n_hosts;
	bool hosts_given;           /* the file gives `hosts` rather than `host` */
	int hosts_order;            /* enum failover_order */
	int primary_retry;          /* seconds between checks that the first address is back */
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
	enum log_format log_format;
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
	char *http_listen;          /* "ADDRESS:PORT" of /metrics, /healthz, /readyz; NULL: off */
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

/*
 * The downlink's messages in flight at most, the prefetches of all entries
 * together: each holds an MQTT packet identifier (65,535 in all) until its
 * PUBACK, with room to spare for the subscriptions' own.
 */
#define DOWNLINK_PREFETCH_TOTAL 32768

/*
 * One element of the optional `downlink` list: a queue consumed and
 * published to MQTT (dlmap.h says how a delivery becomes a message).
 */
struct downlink_entry {
	int line;
	char *queue;
	char *topic;                /* the topic template; NULL: the routing key translated back */
	int prefetch;               /* deliveries of the queue unacknowledged at most */
	int qos;                    /* 0 or 1 */
	int retain;                 /* enum dlmap_retain */
	bool allow_echo;            /* an uplink subscription may match its topics (MQTT 3.1.1) */
};

#endif
