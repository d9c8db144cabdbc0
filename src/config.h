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
#include "dlmap.h"      /* struct dlmap_template, the downlink's compiled topics */
#include "rules.h"
#include "settings.h"   /* the settings of each group, as loaded */

struct bridge_config {
	char *path;                 /* the file this was loaded from */
	struct mqtt_settings mqtt;
	struct amqp_settings amqp;
	struct bridge_settings bridge;
	struct rules *rules;        /* compiled `rules` list; never NULL after config_load */
	struct topology topology;
	/* The `downlink` list, and each entry's compiled topic (NULL parts: no template). */
	struct downlink_entry *downlink;
	size_t n_downlink;
	struct dlmap_template *downlink_topics;
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
 * readable, now, so that -t finds what start-up would (config_check()).
 * Returns 0 on success.  Returns -1 when the file cannot be read or parsed or
 * any setting is unknown, of the wrong type, out of range or missing; `errs`
 * then holds every error (it is appended to; the caller frees it), and `cfg`
 * holds nothing that needs freeing.
 */
int config_load(const char *path, struct bridge_config *cfg, struct config_errors *errs);

/*
 * The same, for a check (-t, --route) rather than a start: a systemd
 * credential that this process cannot see is not an error but a warning
 * that it was not checked.  systemd hands credentials to the unit's main
 * process, which reads them at start and at each reload; a check run by
 * hand has no $CREDENTIALS_DIRECTORY, and systemd 252 does not give the
 * credentials to ExecReload= in a sandboxed unit.  A credential that can
 * be seen is read as at start.
 */
int config_check(const char *path, struct bridge_config *cfg, struct config_errors *errs);

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
