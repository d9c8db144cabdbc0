/*
 * props: the AMQP basic properties of a forwarded message, converted from
 * the MQTT message the way RabbitMQ's MQTT plugin converts them for AMQP
 * 0-9-1 consumers, so a consumer sees the same thing whether a message came
 * through the plugin or through the bridge.  Pure: no I/O.
 *
 *   MQTT                      AMQP 0-9-1
 *   QoS 0 / QoS 1             delivery_mode 1 / 2 (a rule's `persistent`
 *                             overrides it)
 *   Content Type              content_type, when under 256 bytes and ASCII;
 *                             otherwise left out
 *   Correlation Data          correlation_id, when under 256 bytes, valid
 *                             UTF-8 and free of NUL; otherwise header
 *                             x-correlation-id (long string, the bytes)
 *   Response Topic            header x-reply-to-topic, translated to a
 *                             routing key ('/' to '.', '.' inside a level to
 *                             bridge.dot_replacement)
 *   User Property NAME=VALUE  header NAME (long string), for NAME under 256
 *                             bytes and other than CC and BCC (see
 *                             field_is_route_header()); of a NAME given
 *                             twice the first wins
 *   Message Expiry Interval   expiration: the seconds times 1000, in decimal,
 *                             at most ten years (RabbitMQ refuses more)
 *   Payload Format Indicator  not carried (as the plugin)
 *
 * x-correlation-id and x-reply-to-topic replace a user property of the
 * same name (the plugin puts them first, and the first of a name counts).
 * Then come the rule's static headers (replacing any header of the same
 * name so far), then x-mqtt-topic (the original topic) and x-mqtt-retain
 * (bool) when configured, replacing any other.  Headers are sorted by name,
 * bytewise, each name once.  Last come the plugin's x-mqtt-publish-qos and
 * x-mqtt-dup, in the plugin's order, replacing any header of their names.
 */
#ifndef BRIDGE_PROPS_H
#define BRIDGE_PROPS_H

#include <stdbool.h>
#include <stddef.h>

#include <amqp.h>
#include <mosquitto.h>

#include "field.h"

#define PROPS_HDR_TOPIC "x-mqtt-topic"
#define PROPS_HDR_RETAIN "x-mqtt-retain"
#define PROPS_HDR_REPLY_TO "x-reply-to-topic"
#define PROPS_HDR_CORRELATION "x-correlation-id"
#define PROPS_HDR_QOS "x-mqtt-publish-qos"
#define PROPS_HDR_DUP "x-mqtt-dup"

/*
 * The headers RabbitMQ's MQTT plugin puts on every message, by version:
 * 3.10 and 3.11 add x-mqtt-publish-qos (signed 8-bit) and x-mqtt-dup
 * (bool, the PUBLISH's DUP flag) in that order, 3.12 only the first, 3.13
 * and later neither.
 */
enum props_plugin {
	PROPS_PLUGIN_NONE = 0,
	PROPS_PLUGIN_310,
	PROPS_PLUGIN_312,
};

/* bridge.plugin_headers ("3.10", "3.12" or "none"; NULL: none) as an enum props_plugin. */
enum props_plugin props_plugin_of(const char *setting);

/* The frame size the bridge asks RabbitMQ for (RabbitMQ's default frame_max). */
#define PROPS_FRAME_MAX 131072u
/*
 * What a content header frame holds besides the encoded properties: the
 * frame header (7 bytes), class, weight and body size (12) and the frame
 * end (1).  The properties of a message must fit in frame_max minus this;
 * rabbitmq-c encodes the content header into one frame of frame_max bytes.
 */
#define PROPS_HEADER_OVERHEAD 20u

/*
 * Scratch memory reused from message to message; grows as needed.  It also
 * owns the copies libmosquitto's property readers make, until the next
 * props_build() or props_fini().
 */
struct props_buf {
	amqp_table_entry_t *entries;
	amqp_table_entry_t *scratch;  /* for the sort; cap_entries too */
	size_t cap_entries;
	char *text;                 /* translated response topic */
	size_t cap_text;
	char expiration[24];
	void **owned;               /* copies of property values */
	size_t n_owned;
	size_t cap_owned;
};

struct props_input {
	const mosquitto_property *mqtt;  /* the PUBLISH's properties; NULL for none */
	int qos;
	bool retain;
	bool dup;                   /* the PUBLISH's DUP flag */
	enum props_plugin plugin;   /* bridge.plugin_headers */
	const char *topic;          /* the MQTT topic, `topic_len` bytes */
	size_t topic_len;
	enum rule_persist persistent;
	const struct rules_field *headers;  /* a rule's static headers */
	size_t n_headers;
	bool topic_header;          /* bridge.topic_header */
	bool retain_header;         /* bridge.retain_header */
	const char *dot_replacement;
};

void props_init(struct props_buf *pb);
void props_fini(struct props_buf *pb);

/*
 * Fills `out` (its _flags included) for `in`.  Pointers in `out` point
 * into `pb` and `in`, valid until the next call (or props_fini) and as long
 * as `in`'s strings live; the MQTT property list may go at once.  Returns
 * 0, or -1 when memory ran out (`out` is then unusable).
 */
int props_build(struct props_buf *pb, const struct props_input *in, amqp_basic_properties_t *out);

/* A header or argument entry holding `val` as a long string; nothing is copied. */
void props_entry_text(amqp_table_entry_t *e, const char *key, size_t klen, const void *val,
                      size_t vlen);

/*
 * A header or argument entry for a configured value (string, 64-bit
 * integer or bool); it points into `f`.
 */
void props_entry_field(amqp_table_entry_t *e, const struct rules_field *f);

/*
 * Bytes `p` takes encoded in a content header (the property flags
 * included), as rabbitmq-c's amqp_encode_properties() writes them; SIZE_MAX
 * for a property or table value of a kind the bridge never builds.  A
 * message fits a frame of `frame_max` bytes when this is at most
 * frame_max - PROPS_HEADER_OVERHEAD.
 */
size_t props_encoded_size(const amqp_basic_properties_t *p);

/* What RabbitMQ can take of one message. */
struct props_limits {
	size_t frame_max;           /* the negotiated frame size */
	int64_t max_body;           /* the largest body */
	bool brokers_max_body;      /* max_body is RabbitMQ's, learnt, not amqp.max_message_size */
};

/*
 * Whether RabbitMQ could take a message whose routing key needs `klen`
 * bytes, whose body has `body` bytes and whose properties are `p`: NULL
 * when it could, otherwise the reason it is undeliverable
 * ("too-large", "routing-key-too-long", "properties-too-large", checked in
 * that order: a body too large is dead-lettered without it, whatever else)
 * with the sizes involved written to `detail`.
 */
const char *props_check(const struct props_limits *l, size_t klen, uint64_t body,
                        const amqp_basic_properties_t *p, char *detail, size_t size);

/*
 * A 64-bit hash of every property and header of `p`, for the poison guard
 * to tell messages that differ only in their properties apart.
 */
uint64_t props_hash(const amqp_basic_properties_t *p);

/* Bytes a table of the `n` configured fields takes encoded (its length prefix included). */
size_t props_fields_size(const struct rules_field *f, size_t n);

#endif
