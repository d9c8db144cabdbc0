/*
 * dlmap: the MQTT message a RabbitMQ delivery becomes on the way down
 * (queue to MQTT), or the reason it cannot become one.  Pure: no I/O; it
 * allocates only while compiling a template and for the MQTT 5 property
 * list, which libmosquitto's API makes a linked list of its own.
 *
 * Topic.  Without a template the routing key is translated back as
 * RabbitMQ's MQTT plugin does for AMQP publishers: every '.' becomes '/',
 * so "a.b.c" is "a/b/c" and "a..b" is "a//b".  Other bytes pass unchanged:
 * a '/' already in the key stays a level separator ("a/b.c" is "a/b/c"),
 * as in the plugin; a '*' stays '*' (the plugin turns it into '+', which
 * is right for filters but makes a topic name invalid, and the uplink
 * leaves '*' alone, so keeping it lets a topic make the round trip).
 *
 * Templates use the braces of the uplink's routing_key templates
 * (rkey.h), with placeholders over the delivery instead of the topic:
 *   {1}, {2}, ...     the first, second, ... word of the routing key
 *                     (words are separated by '.'; "a..b" has an empty
 *                     second word)
 *   {key}             the whole routing key, translated as above
 *   {header:NAME}     the value of header NAME, a string, as it is; NAME
 *                     is everything up to the next '}' and not empty
 *   {{ and }}         a literal '{' and '}'
 * e.g. "devices/{header:id}/commands" or "devices/{2}/commands" for the
 * key "commands.p7".  {N} and {header:NAME} fill one level each: a value
 * holding '/' is refused rather than let a sender reach a topic outside
 * the template's shape.  A word past the end of the key, a header that is
 * absent, or one whose value is not a string (kind 'S'; raw bytes 'x'
 * are not text, as for the plugin) makes the
 * message poison; so does any topic, templated or not, that is empty,
 * longer than 65,535 bytes, holds '+', '#' or NUL, or is not UTF-8
 * libmosquitto would publish (it refuses control characters too), and a
 * topic starting with '$' that does not come from literal text of the
 * template: '$' topics are the broker's ($SYS, $aws/...), which a sender
 * must not reach by choosing a key, and which no uplink subscription
 * with a wildcard first level would show as an echo.
 *
 * Properties (MQTT 5 only; nothing for MQTT 3.1.1), after the plugin's
 * conversion of AMQP 0-9-1 messages (deps/rabbitmq_mqtt/src/mc_mqtt.erl):
 *   content_type        Content Type, when valid UTF-8
 *   correlation_id      Correlation Data (the bytes); without it, a string
 *                       header x-correlation-id is Correlation Data and
 *                       leaves the headers
 *   header x-reply-to-topic (string)
 *                       Response Topic, translated back like a key; left
 *                       out when that is no valid topic name (MQTT forbids
 *                       wildcards in it); never a user property
 *   expiration (ms)     Message Expiry Interval, in seconds rounded up and
 *                       at least 1: the plugin rounds down, but 0 would let
 *                       a broker such as mosquitto keep the message for
 *                       ever; left out when not a decimal number
 *   other headers       User Properties, in table order: strings when
 *                       valid UTF-8, integers and timestamps in decimal,
 *                       floats as "%.17g" (the plugin writes Erlang's
 *                       scientific form), bool as "true" / "false", void
 *                       as ""; byte arrays, arrays, tables and decimals are
 *                       left out, as are names or values libmosquitto would
 *                       refuse (not UTF-8, over 65,535 bytes)
 *   headers x-mqtt-*    never user properties: they carry the uplink's own
 *                       metadata (x-mqtt-topic, x-mqtt-retain, the plugin's
 *                       x-mqtt-publish-qos and x-mqtt-dup), which a message
 *                       that went up and comes back down should not repeat
 *
 * QoS and retain come from the entry: QoS 0 or 1; retain never, always, or
 * as a bool header x-mqtt-retain says (false when absent or not a bool,
 * which is no reason to refuse a message).  The plugin itself always
 * publishes AMQP messages unretained.
 */
#ifndef BRIDGE_DLMAP_H
#define BRIDGE_DLMAP_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include <amqp.h>
#include <mosquitto.h>

/* MQTT strings are length-prefixed with 16 bits. */
#define DLMAP_TOPIC_MAX 65535
/* The largest MQTT packet: a 4-byte remaining length and the fixed header byte. */
#define DLMAP_PACKET_MAX (268435455u + 5u)

#define DLMAP_HDR_RETAIN "x-mqtt-retain"
#define DLMAP_HDR_REPLY_TO "x-reply-to-topic"
#define DLMAP_HDR_CORRELATION "x-correlation-id"

enum dlmap_result {
	DLMAP_OK = 0,
	DLMAP_ERR_EMPTY,            /* the topic is empty */
	DLMAP_ERR_WILDCARD,         /* '+' or '#' in the topic */
	DLMAP_ERR_NUL,              /* NUL byte in the topic */
	DLMAP_ERR_UTF8,             /* not UTF-8 libmosquitto publishes */
	DLMAP_ERR_TOPIC_TOO_LONG,   /* over DLMAP_TOPIC_MAX bytes */
	DLMAP_ERR_NO_WORD,          /* {N} past the last word of the key */
	DLMAP_ERR_NO_HEADER,        /* {header:NAME} with no such header */
	DLMAP_ERR_HEADER_TYPE,      /* {header:NAME} whose value is not a string */
	DLMAP_ERR_LEVELS,           /* a {N} or {header:NAME} value holding '/' */
	DLMAP_ERR_TOO_LARGE,        /* the PUBLISH exceeds the maximum packet size */
	DLMAP_ERR_DOLLAR,           /* a '$' topic the routing key or a header made */
	DLMAP_ERR_NOMEM,            /* out of memory: not the message's fault */
};

/* A short English phrase for a result, e.g. "wildcard in the topic". */
const char *dlmap_strerror(enum dlmap_result r);

/*
 * Whether a result condemns the message (basic.reject without requeue):
 * every error but DLMAP_ERR_NOMEM.
 */
bool dlmap_is_poison(enum dlmap_result r);

enum dlmap_part_kind { DP_LITERAL, DP_WORD, DP_KEY, DP_HEADER };

struct dlmap_part {
	enum dlmap_part_kind kind;
	char *text;                 /* DP_LITERAL: the text; DP_HEADER: the name */
	size_t len;
	unsigned word;              /* DP_WORD: 1 for {1}, ... */
};

/* A compiled template. */
struct dlmap_template {
	struct dlmap_part *parts;
	size_t n_parts;
};

/* Reports a problem of a template: a sentence without a trailing period. */
typedef void dlmap_report_fn(void *ctx, const char *msg);

/*
 * Compiles `tmpl` into *t, reporting every problem to `report` (not just
 * the first): an unclosed '{', a stray '}', an unknown placeholder, {0},
 * an empty {header:}.  Returns the number of problems (the template is
 * usable only at 0), or -1 when memory ran out.  Whatever it returns, the
 * caller frees *t with dlmap_template_free().
 */
int dlmap_compile(const char *tmpl, dlmap_report_fn *report, void *ctx, struct dlmap_template *t);

void dlmap_template_free(struct dlmap_template *t);

/*
 * The topics template `t` can give, as an MQTT topic filter, for the
 * echo check: a level holding {N} or {header:NAME} is '+', and from a
 * {key} on the rest is '#' (a key fills any number of levels); a NULL
 * template (the routing key translated back) is "#".  Writes it into
 * buf[0..size).  Returns false when it does not fit, or when literal text
 * of the template holds '+' or '#', which no topic name may.
 */
bool dlmap_shape(const struct dlmap_template *t, char *buf, size_t size);

enum dlmap_retain {
	DLMAP_RETAIN_NO = 0,
	DLMAP_RETAIN_YES,
	DLMAP_RETAIN_HEADER,        /* as the bool header x-mqtt-retain says */
};

/* How one downlink entry maps its deliveries; fixed at configuration load. */
struct dlmap_entry {
	const struct dlmap_template *tmpl;  /* NULL: the translated routing key */
	int qos;                    /* 0 or 1 */
	enum dlmap_retain retain;
};

/* What the MQTT connection allows; learnt from its CONNACK. */
struct dlmap_link {
	bool mqtt5;                 /* false: MQTT 3.1.1, no properties */
	uint32_t max_packet;        /* the broker's Maximum Packet Size; 0: MQTT's own */
};

/* One delivery: nothing of it is copied or kept. */
struct dlmap_delivery {
	amqp_bytes_t routing_key;
	const amqp_basic_properties_t *props;  /* NULL: none */
	uint64_t body_len;
};

struct dlmap_out {
	size_t topic_len;           /* the topic is NUL-terminated as well */
	int qos;
	bool retain;
	mosquitto_property *props;  /* MQTT 5 only; free with mosquitto_property_free_all() */
	uint64_t packet_size;       /* bytes of the whole PUBLISH packet */
};

/*
 * Maps delivery `d` under entry `e` for link `l`: writes the topic into
 * `topic` and fills *out.  The size compared with l->max_packet is that
 * of the whole PUBLISH: fixed header, topic, packet identifier, properties
 * and payload.  On an error *out holds no properties, the topic is the
 * empty string, and when `detail` is not NULL it receives a sentence
 * naming what failed (the word, the header, the sizes).
 */
enum dlmap_result dlmap_map(const struct dlmap_entry *e, const struct dlmap_link *l,
                            const struct dlmap_delivery *d, char topic[DLMAP_TOPIC_MAX + 1],
                            struct dlmap_out *out, char *detail, size_t detail_size);

#endif
