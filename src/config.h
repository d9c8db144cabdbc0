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

#include "log.h"

#define MQTT_PROTOCOL_311 4
#define MQTT_PROTOCOL_5 5

struct config_errors {
	char **msg;   /* "file:line: message" */
	size_t n;
	size_t cap;
};

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
	int protocol;               /* MQTT_PROTOCOL_311 ("3.1.1") or MQTT_PROTOCOL_5 ("5"), default 3.1.1 */
	int64_t session_expiry;     /* seconds, MQTT 5 only, 1..4294967295, default 86400 */
	int inflight_max;           /* unconfirmed messages at most, 1..65535, default 1000 */
	char **subscribe;           /* topic filters, subscribed at QoS 1; at least one */
	size_t n_subscribe;
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

struct bridge_settings {
	enum log_level log_level;   /* "error" | "warning" | "info" | "debug", default "info" */
	enum log_target log_target; /* "stderr" (default) or "syslog" */
	char *dot_replacement;      /* replaces '.' inside MQTT levels; default "." (kept), at most
	                               8 bytes, no '/', '+', '#', '*'; contains '.' only as exactly "." */
	int reconnect_min_ms;       /* 10..60000, default 500 */
	int reconnect_max_ms;       /* reconnect_min_ms..600000, default 30000 */
	int drain_timeout;          /* seconds to wait for confirms on shutdown, 0..3600, default 10 */
};

struct bridge_config {
	char *path;                 /* the file this was loaded from */
	struct mqtt_settings mqtt;
	struct amqp_settings amqp;
	struct bridge_settings bridge;
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

void config_errors_init(struct config_errors *errs);
void config_errors_free(struct config_errors *errs);

/*
 * The i-th setting the parser accepts, as its group and name ("mqtt",
 * "host"); false past the last.  Lets tests keep the documentation in step.
 */
bool config_setting_at(size_t i, const char **group, const char **name);

/* Writes a human-readable summary (no secrets: "(set)" instead) to `out`, for -t. */
#include <stdio.h>
void config_print(const struct bridge_config *cfg, FILE *out);

#endif
