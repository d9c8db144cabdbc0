#include "dlroute.h"

#include <stdlib.h>
#include <string.h>

#include <mqtt_protocol.h>

#include "dlmap.h"
#include "log.h"
#include "topic.h"

/* The word of s[0..n) that starts at `at`: its length (up to the next '.' or the end). */
static size_t word_len(const char *s, size_t n, size_t at)
{
	const char *dot = memchr(s + at, '.', n - at);

	return dot ? (size_t)(dot - (s + at)) : n - at;
}

/*
 * A topic exchange's match of binding key p[0..pn) against routing key
 * k[0..kn), as RabbitMQ does it: words between dots, '*' one word, '#'
 * any number of words, none included; no rule for '$' (that is MQTT's).
 * `pe` and `ke`: whether the pattern and the key still have a word there
 * (an empty key has one empty word).
 */
static bool topic_match(const char *p, size_t pn, size_t pa, bool pe, const char *k, size_t kn,
                        size_t ka, bool ke)
{
	size_t pl, kl;

	if (!pe)
		return !ke;
	pl = word_len(p, pn, pa);
	if (pl == 1 && p[pa] == '#') {
		bool more = pa + pl < pn;

		/* '#' takes no word, or one and stays. */
		if (topic_match(p, pn, pa + pl + 1, more, k, kn, ka, ke))
			return true;
		return ke && topic_match(p, pn, pa, pe, k, kn, ka + word_len(k, kn, ka) + 1,
		                         ka + word_len(k, kn, ka) < kn);
	}
	if (!ke)
		return false;
	kl = word_len(k, kn, ka);
	if (!(pl == 1 && p[pa] == '*') && (pl != kl || memcmp(p + pa, k + ka, pl) != 0))
		return false;
	return topic_match(p, pn, pa + pl + 1, pa + pl < pn, k, kn, ka + kl + 1, ka + kl < kn);
}

/* The type of exchange `name`, as the file declares it or RabbitMQ predeclares it; NULL: unknown. */
static const char *exchange_type(const struct bridge_config *cfg, const char *name)
{
	static const struct {
		const char *name, *type;
	} amq[] = {
		{ "amq.direct", "direct" }, { "amq.fanout", "fanout" }, { "amq.topic", "topic" },
		{ "amq.headers", "headers" }, { "amq.match", "headers" }, { "", "direct" },
	};

	for (size_t i = 0; i < cfg->topology.n_exchanges; i++)
		if (strcmp(cfg->topology.exchanges[i].name, name) == 0)
			return cfg->topology.exchanges[i].type ? cfg->topology.exchanges[i].type : "topic";
	if (strcmp(cfg->amqp.exchange, name) == 0)
		return cfg->amqp.exchange_type;
	for (size_t i = 0; i < sizeof(amq) / sizeof(amq[0]); i++)
		if (strcmp(amq[i].name, name) == 0)
			return amq[i].type;
	return NULL;
}

/* What binding `b` does with routing key `key`, as a phrase. */
static const char *binding_verdict(const struct bridge_config *cfg, const struct topo_binding *b,
                                   const char *key)
{
	const char *type = exchange_type(cfg, b->exchange);
	size_t pn = strlen(b->key), kn = strlen(key);

	if (type == NULL)
		return "the exchange's type is not in the file";
	if (strcmp(type, "fanout") == 0)
		return "takes every key (fanout)";
	if (strcmp(type, "headers") == 0)
		return "matches headers, not keys";
	if (strcmp(type, "direct") == 0)
		return strcmp(b->key, key) == 0 ? "takes the key" : "does not take the key";
	return topic_match(b->key, pn, 0, true, key, kn, 0, true) ? "takes the key"
	                                                          : "does not take the key";
}

static void print_bindings(const struct bridge_config *cfg, const char *queue, const char *key,
                           FILE *out)
{
	size_t n = 0;

	for (size_t i = 0; i < cfg->topology.n_bindings; i++) {
		const struct topo_binding *b = &cfg->topology.bindings[i];

		if (strcmp(b->queue, queue) != 0)
			continue;
		n++;
		fprintf(out, "    topology binding (line %d): exchange '%s', key '%s': %s\n", b->line,
		        b->exchange, b->key, binding_verdict(cfg, b, key));
	}
	if (n == 0)
		fprintf(out, "    (the topology binds nothing to this queue: its bindings are "
		        "RabbitMQ's)\n");
}

static void print_props(const mosquitto_property *p, bool mqtt5, FILE *out)
{
	if (!mqtt5) {
		fprintf(out, "    properties: none (MQTT 3.1.1)\n");
		return;
	}
	if (p == NULL) {
		fprintf(out, "    properties: none\n");
		return;
	}
	for (; p != NULL; p = mosquitto_property_next(p)) {
		char *name = NULL, *value = NULL;
		void *data = NULL;
		uint16_t len = 0;
		uint32_t u32 = 0;

		switch (mosquitto_property_identifier(p)) {
		case MQTT_PROP_CONTENT_TYPE:
			mosquitto_property_read_string(p, MQTT_PROP_CONTENT_TYPE, &value, false);
			fprintf(out, "    content type: '%s'\n", value ? value : "");
			break;
		case MQTT_PROP_RESPONSE_TOPIC:
			mosquitto_property_read_string(p, MQTT_PROP_RESPONSE_TOPIC, &value, false);
			fprintf(out, "    response topic: '%s'\n", value ? value : "");
			break;
		case MQTT_PROP_CORRELATION_DATA:
			mosquitto_property_read_binary(p, MQTT_PROP_CORRELATION_DATA, &data, &len, false);
			fprintf(out, "    correlation data: %u byte(s)\n", len);
			break;
		case MQTT_PROP_MESSAGE_EXPIRY_INTERVAL:
			mosquitto_property_read_int32(p, MQTT_PROP_MESSAGE_EXPIRY_INTERVAL, &u32, false);
			fprintf(out, "    message expiry interval: %u s\n", u32);
			break;
		case MQTT_PROP_USER_PROPERTY:
			mosquitto_property_read_string_pair(p, MQTT_PROP_USER_PROPERTY, &name, &value, false);
			fprintf(out, "    user property: %s = '%s'\n", name ? name : "", value ? value : "");
			break;
		default:
			fprintf(out, "    property %d\n", mosquitto_property_identifier(p));
			break;
		}
		free(name);
		free(value);
		free(data);
	}
}

int dlroute_print(const struct bridge_config *cfg, const char *key, char *const *headers,
                  size_t n_headers, FILE *out)
{
	size_t klen = strlen(key);
	amqp_table_entry_t *entries = NULL;
	amqp_basic_properties_t props = { 0 };
	char *topic;
	int status = 0;

	if (klen > TOPIC_KEY_MAX) {
		log_plain(LOG_LVL_ERROR, "mqtt-amqp-bridge: --downlink-route: the routing key is %zu "
		          "bytes; AMQP allows %d", klen, TOPIC_KEY_MAX);
		return 1;
	}
	if (n_headers > 0 && !(entries = calloc(n_headers, sizeof(*entries))))
		return -1;
	for (size_t i = 0; i < n_headers; i++) {
		const char *eq = strchr(headers[i], '=');

		if (eq == NULL || eq == headers[i]) {
			log_plain(LOG_LVL_ERROR, "mqtt-amqp-bridge: --header '%s': expected NAME=VALUE",
			          headers[i]);
			free(entries);
			return 1;
		}
		entries[i].key.bytes = headers[i];
		entries[i].key.len = (size_t)(eq - headers[i]);
		entries[i].value.kind = AMQP_FIELD_KIND_UTF8;
		entries[i].value.value.bytes = amqp_cstring_bytes(eq + 1);
	}
	if (n_headers > 0) {
		props._flags = AMQP_BASIC_HEADERS_FLAG;
		props.headers.num_entries = (int)n_headers;
		props.headers.entries = entries;
	}
	topic = malloc(DLMAP_TOPIC_MAX + 1);
	if (!topic) {
		free(entries);
		return -1;
	}
	fprintf(out, "routing key '%s'%s:\n", key, n_headers ? " with the headers given" : "");
	if (cfg->n_downlink == 0)
		fprintf(out, "  no downlink entries: nothing is consumed\n");
	for (size_t i = 0; i < cfg->n_downlink; i++) {
		const struct downlink_entry *e = &cfg->downlink[i];
		struct dlmap_entry me = { e->topic ? &cfg->downlink_topics[i] : NULL, e->qos,
		                          (enum dlmap_retain)e->retain };
		struct dlmap_link ml = { cfg->mqtt.protocol == MQTT_PROTOCOL_5, 0 };
		struct dlmap_delivery md = { { klen, (void *)key }, &props, 0 };
		struct dlmap_out o;
		char detail[512];
		enum dlmap_result r;

		fprintf(out, "  downlink entry %zu (line %d): queue '%s'\n", i + 1, e->line, e->queue);
		print_bindings(cfg, e->queue, key, out);
		r = dlmap_map(&me, &ml, &md, topic, &o, detail, sizeof(detail));
		if (r == DLMAP_ERR_NOMEM) {
			status = -1;
			break;
		}
		if (r != DLMAP_OK) {
			fprintf(out, "    => rejected to the queue's dead-letter exchange: %s\n", detail);
			continue;
		}
		fprintf(out, "    => topic '%s', QoS %d, retain %s\n", topic, o.qos,
		        o.retain ? "yes" : "no");
		print_props(o.props, ml.mqtt5, out);
		mosquitto_property_free_all(&o.props);
	}
	free(topic);
	free(entries);
	return status;
}
