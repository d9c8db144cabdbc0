/*
 * topic: translation between MQTT topic names / filters and AMQP 0-9-1
 * routing keys / binding keys.  Pure: no I/O, no allocation.
 *
 * The convention is RabbitMQ's MQTT plugin: the level separator '/' becomes
 * the word separator '.', and in filters the single-level wildcard '+'
 * becomes '*' while the multi-level wildcard '#' stays '#'.  A literal '.'
 * inside an MQTT level is ambiguous under that convention; every '.' in the
 * MQTT text is replaced by `dot_repl` (pass "." to keep dots as RabbitMQ's
 * plugin does, which makes "a.b/c" and "a/b/c" the same key).
 *
 * AMQP short strings carry at most 255 bytes, so every key is bounded by
 * TOPIC_KEY_MAX; callers pass an output buffer of TOPIC_KEY_MAX + 1 bytes and
 * get a NUL-terminated key back.
 */
#ifndef BRIDGE_TOPIC_H
#define BRIDGE_TOPIC_H

#include <stddef.h>

#define TOPIC_KEY_MAX 255
/* MQTT strings are length-prefixed with 16 bits. */
#define TOPIC_MQTT_MAX 65535

enum topic_result {
	TOPIC_OK = 0,
	TOPIC_ERR_EMPTY,        /* zero-length topic, filter or key */
	TOPIC_ERR_WILDCARD,     /* '+' or '#' in a topic name */
	TOPIC_ERR_BAD_FILTER,   /* misplaced '+' / '#' in a filter or '*' / '#' in a binding key */
	/*
	 * A word of the binding key that would read as an AMQP wildcard ('*' or
	 * '#') without coming from '+' or '#'.
	 */
	TOPIC_ERR_AMBIGUOUS,
	TOPIC_ERR_NUL,          /* embedded NUL byte */
	/*
	 * The result exceeds TOPIC_KEY_MAX, or does not fit with its NUL in the
	 * outsz of topic_key_to_name() / topic_key_to_filter(), or an MQTT string
	 * exceeds TOPIC_MQTT_MAX.
	 */
	TOPIC_ERR_TOO_LONG,
};

/* Bytes of a topic, filter or template quoted in a message before "...". */
#define TOPIC_SHOW_MAX 100

/* Arguments for "%.*s%s": `s` quoted in a message, cut after TOPIC_SHOW_MAX bytes. */
#define TOPIC_SHOW(s) topic_show_len(s), (s), topic_show_ellipsis(s)
int topic_show_len(const char *s);
const char *topic_show_ellipsis(const char *s);

/* A short English phrase for a result, e.g. "routing key longer than 255 bytes". */
const char *topic_strerror(enum topic_result r);

/*
 * MQTT topic name (as received in a PUBLISH, `len` bytes, not necessarily
 * NUL-terminated) to routing key.  On success writes the key and its length
 * (*outlen) and returns TOPIC_OK.  Bytes other than '/' and '.' (UTF-8
 * included) pass through unchanged; empty levels stay empty words.
 */
enum topic_result topic_name_to_key(const char *topic, size_t len, const char *dot_repl,
                                    char out[TOPIC_KEY_MAX + 1], size_t *outlen);

/*
 * The same translation without any check or bound, for text already known
 * to be a valid topic name (or part of one): writes as much as fits into
 * out[0..cap) (`out` may be NULL when cap is 0), adds no NUL, and returns
 * the length the whole translation needs.
 */
size_t topic_translate(const char *topic, size_t len, const char *dot_repl, char *out, size_t cap);

/* MQTT topic filter (NUL-terminated) to binding key. */
enum topic_result topic_filter_to_key(const char *filter, const char *dot_repl,
                                      char out[TOPIC_KEY_MAX + 1], size_t *outlen);

/* Routing key back to an MQTT topic name ('.' to '/'); `out` holds outsz bytes. */
enum topic_result topic_key_to_name(const char *key, char *out, size_t outsz);

/* Binding key back to an MQTT topic filter ('*' to '+', '#' stays, '.' to '/'). */
enum topic_result topic_key_to_filter(const char *key, char *out, size_t outsz);

/* Validates an MQTT topic filter per MQTT 3.1.1 section 4.7. */
enum topic_result topic_filter_check(const char *filter);

#endif
