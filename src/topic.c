#include "topic.h"

#include <stdbool.h>
#include <string.h>

#define SHARE_PREFIX "$share/"
#define SHARE_PREFIX_LEN (sizeof(SHARE_PREFIX) - 1)
/* The same prefix as it reads in a binding key. */
#define SHARE_KEY_PREFIX "$share."

/*
 * A bounded writer for keys and topics.  Bytes past `cap` are dropped and
 * remembered as an overflow, so a translation can go on scanning its input
 * for errors that matter more than the length.
 */
struct outbuf {
	char *buf;
	size_t cap;     /* bytes available for text, excluding the NUL */
	size_t len;     /* bytes the full result needs so far */
};

static void out_putc(struct outbuf *o, char c)
{
	if (o->len < o->cap)
		o->buf[o->len] = c;
	o->len++;
}

static void out_puts(struct outbuf *o, const char *s, size_t n)
{
	if (n > 0 && n <= o->cap && o->len <= o->cap - n)
		memcpy(o->buf + o->len, s, n);
	o->len += n;
}

static int out_overflowed(const struct outbuf *o)
{
	return o->len > o->cap;
}

/*
 * Where a word of a binding key stands while it is being written from a
 * literal MQTT level: it reads as an AMQP wildcard only if it ends up as
 * exactly "*" or "#".
 */
enum word_state {
	WORD_EMPTY,
	WORD_STAR,
	WORD_HASH,
	WORD_OTHER,
};

/*
 * Appends one byte of literal text to a binding key.  Returns -1 if the byte
 * is a '.' that closes a word reading as an AMQP wildcard, 0 otherwise.
 */
static int key_put_literal(struct outbuf *o, enum word_state *w, char c)
{
	out_putc(o, c);
	if (c == '.') {
		int wild = *w == WORD_STAR || *w == WORD_HASH;

		*w = WORD_EMPTY;
		return wild ? -1 : 0;
	}
	if (*w == WORD_EMPTY && c == '*')
		*w = WORD_STAR;
	else if (*w == WORD_EMPTY && c == '#')
		*w = WORD_HASH;
	else
		*w = WORD_OTHER;
	return 0;
}

/*
 * Ends the output with a NUL and reports the result.  On an error the output
 * is the empty string and *outlen (if given) is 0; TOPIC_OK is turned into
 * TOPIC_ERR_TOO_LONG if the text overflowed.
 */
static enum topic_result out_finish(struct outbuf *o, enum topic_result r, size_t *outlen)
{
	if (r == TOPIC_OK && out_overflowed(o))
		r = TOPIC_ERR_TOO_LONG;
	if (r != TOPIC_OK) {
		o->buf[0] = '\0';
		o->len = 0;
	} else {
		o->buf[o->len] = '\0';
	}
	if (outlen != NULL)
		*outlen = o->len;
	return r;
}

const char *topic_strerror(enum topic_result r)
{
	switch (r) {
	case TOPIC_OK:
		return "success";
	case TOPIC_ERR_EMPTY:
		return "empty topic, filter or key";
	case TOPIC_ERR_WILDCARD:
		return "wildcard in a topic name";
	case TOPIC_ERR_BAD_FILTER:
		return "misplaced wildcard or malformed filter";
	case TOPIC_ERR_AMBIGUOUS:
		return "level would read as a wildcard after translation";
	case TOPIC_ERR_NUL:
		return "embedded NUL byte";
	case TOPIC_ERR_TOO_LONG:
		return "too long (a routing key holds at most 255 bytes)";
	}
	return "unknown topic error";
}

/*
 * One pass over the name, no allocation.  A NUL or a wildcard anywhere wins
 * over an over-long result (the first such byte decides), so a malformed
 * name is reported as malformed whatever its length.  On an error `out` is
 * the empty string and *outlen is 0.  `outlen` may be NULL.
 */
/*
 * Writes the translation of topic[0..len) to `o`.  With `check`, stops at
 * the first byte a topic name must not hold and returns why; without, every
 * byte is translated (the caller checked the name).
 */
static enum topic_result name_translate(struct outbuf *o, const char *topic, size_t len,
                                        const char *dot_repl, bool check)
{
	size_t repl_len = strlen(dot_repl);

	for (size_t i = 0; i < len; i++) {
		char c = topic[i];

		switch (c) {
		case '\0':
			if (check)
				return TOPIC_ERR_NUL;
			out_putc(o, c);
			break;
		case '+':
		case '#':
			if (check)
				return TOPIC_ERR_WILDCARD;
			out_putc(o, c);
			break;
		case '/':
			out_putc(o, '.');
			break;
		case '.':
			out_puts(o, dot_repl, repl_len);
			break;
		default:
			out_putc(o, c);
			break;
		}
	}
	return TOPIC_OK;
}

enum topic_result topic_name_to_key(const char *topic, size_t len, const char *dot_repl,
                                    char out[TOPIC_KEY_MAX + 1], size_t *outlen)
{
	struct outbuf o = { out, TOPIC_KEY_MAX, 0 };

	if (len == 0)
		return out_finish(&o, TOPIC_ERR_EMPTY, outlen);
	return out_finish(&o, name_translate(&o, topic, len, dot_repl, true), outlen);
}

size_t topic_translate(const char *topic, size_t len, const char *dot_repl, char *out, size_t cap)
{
	struct outbuf o = { out, cap, 0 };

	name_translate(&o, topic, len, dot_repl, false);
	return o.len;
}

/*
 * Checks the level structure of f[0..len): '#' only as the whole last level,
 * '+' only as a whole level.  Returns TOPIC_OK or TOPIC_ERR_BAD_FILTER.
 */
static enum topic_result filter_levels_check(const char *f, size_t len)
{
	size_t level = 0;

	for (size_t i = 0; i < len; i++) {
		if (f[i] == '/') {
			level = i + 1;
			continue;
		}
		if (f[i] != '+' && f[i] != '#')
			continue;
		if (i != level || (i + 1 < len && f[i + 1] != '/'))
			return TOPIC_ERR_BAD_FILTER;
		if (f[i] == '#' && i + 1 != len)
			return TOPIC_ERR_BAD_FILTER;
	}
	return TOPIC_OK;
}

/*
 * Validates a NUL-terminated filter, shared or not.  Sets *len to its length
 * and *off to where the topic filter proper starts (after "$share/group/",
 * or 0).  A share group must be non-empty and free of wildcards, and must be
 * followed by a non-empty filter.
 */
static enum topic_result filter_validate(const char *filter, size_t *len, size_t *off)
{
	size_t n = strnlen(filter, (size_t)TOPIC_MQTT_MAX + 1);
	size_t start = 0;

	*len = n;
	*off = 0;
	if (n == 0)
		return TOPIC_ERR_EMPTY;
	if (n > TOPIC_MQTT_MAX)
		return TOPIC_ERR_TOO_LONG;
	if (n >= SHARE_PREFIX_LEN && memcmp(filter, SHARE_PREFIX, SHARE_PREFIX_LEN) == 0) {
		size_t i = SHARE_PREFIX_LEN;

		while (i < n && filter[i] != '/') {
			if (filter[i] == '+' || filter[i] == '#')
				return TOPIC_ERR_BAD_FILTER;
			i++;
		}
		if (i == SHARE_PREFIX_LEN || i + 1 >= n)
			return TOPIC_ERR_BAD_FILTER;
		start = i + 1;
	}
	*off = start;
	return filter_levels_check(filter + start, n - start);
}

enum topic_result topic_filter_check(const char *filter)
{
	size_t len, off;

	return filter_validate(filter, &len, &off);
}

/*
 * Validates the filter, refuses a "$share/group/" prefix (it names who
 * receives, not what), and translates level by level: '+' to '*', '#' to
 * '#', '/' to '.', '.' to dot_repl.  Any word of the binding key that reads
 * "*" or "#" without coming from an MQTT wildcard -- a level "*", or a
 * literal "*" / "#" cut out by a '.' in the level -- makes the filter
 * TOPIC_ERR_AMBIGUOUS, which wins over TOPIC_ERR_TOO_LONG.  On an error
 * `out` is the empty string and *outlen is 0.  `outlen` may be NULL.
 */
enum topic_result topic_filter_to_key(const char *filter, const char *dot_repl,
                                      char out[TOPIC_KEY_MAX + 1], size_t *outlen)
{
	struct outbuf o = { out, TOPIC_KEY_MAX, 0 };
	size_t repl_len = strlen(dot_repl);
	size_t len, off, i = 0;
	enum topic_result r;

	r = filter_validate(filter, &len, &off);
	if (r == TOPIC_OK && off != 0)
		r = TOPIC_ERR_BAD_FILTER;
	if (r != TOPIC_OK)
		return out_finish(&o, r, outlen);

	for (;;) {
		size_t end = i;

		while (end < len && filter[end] != '/')
			end++;
		if (end - i == 1 && (filter[i] == '+' || filter[i] == '#')) {
			out_putc(&o, filter[i] == '+' ? '*' : '#');
		} else {
			enum word_state w = WORD_EMPTY;
			int bad = 0;

			for (size_t j = i; j < end; j++) {
				if (filter[j] != '.') {
					bad |= key_put_literal(&o, &w, filter[j]);
					continue;
				}
				for (size_t k = 0; k < repl_len; k++)
					bad |= key_put_literal(&o, &w, dot_repl[k]);
			}
			if (bad || w == WORD_STAR || w == WORD_HASH)
				return out_finish(&o, TOPIC_ERR_AMBIGUOUS, outlen);
		}
		if (end == len)
			break;
		out_putc(&o, '.');
		i = end + 1;
	}
	return out_finish(&o, TOPIC_OK, outlen);
}

/*
 * Copies a key into `out` with '.' turned into '/' and, if star_to_plus,
 * every word "*" into '+'.  Text is written while it fits in outsz - 1
 * bytes; the caller detects an overflow from the returned length, which is
 * that of the full result.
 */
static size_t key_copy(const char *key, char *out, size_t outsz, int star_to_plus)
{
	size_t word = 0, n;

	for (n = 0;; n++) {
		char c = key[n];

		if (c == '.' || c == '\0') {
			if (star_to_plus && n - word == 1 && key[word] == '*' && n < outsz)
				out[word] = '+';
			word = n + 1;
		}
		if (c == '\0')
			return n;
		if (n + 1 < outsz)
			out[n] = c == '.' ? '/' : c;
	}
}

/*
 * Ends a reverse translation of `len` bytes: TOPIC_ERR_TOO_LONG if it does
 * not fit in outsz with its NUL or exceeds TOPIC_MQTT_MAX.  On an error the
 * output (when outsz > 0) is the empty string.
 */
static enum topic_result reverse_finish(char *out, size_t outsz, size_t len, enum topic_result r)
{
	if (r == TOPIC_OK && (len >= outsz || len > TOPIC_MQTT_MAX))
		r = TOPIC_ERR_TOO_LONG;
	if (outsz == 0)
		return r;
	out[r == TOPIC_OK ? len : 0] = '\0';
	return r;
}

/*
 * Routing keys are literal, but an MQTT topic name may not carry '+' or '#'
 * at all (TOPIC_ERR_WILDCARD).  '*' is an ordinary character of a topic
 * name, so a word "*" comes back as a level "*".  Dots replaced on the way
 * in cannot be recovered: every '.' becomes '/'.
 */
enum topic_result topic_key_to_name(const char *key, char *out, size_t outsz)
{
	enum topic_result r = TOPIC_OK;
	size_t len;

	if (key[0] == '\0')
		return reverse_finish(out, outsz, 0, TOPIC_ERR_EMPTY);
	if (strpbrk(key, "+#") != NULL)
		r = TOPIC_ERR_WILDCARD;
	len = r == TOPIC_OK ? key_copy(key, out, outsz, 0) : 0;
	return reverse_finish(out, outsz, len, r);
}

/*
 * The word "*" becomes '+' and "#" stays '#', which MQTT allows only as the
 * last level (TOPIC_ERR_BAD_FILTER otherwise).  A '+' or '#' inside a longer
 * word cannot be written in a filter (TOPIC_ERR_BAD_FILTER); a literal word
 * "+" would read as an MQTT wildcard (TOPIC_ERR_AMBIGUOUS).  A key whose
 * first word is "$share" followed by more words would turn into a shared
 * subscription and is refused with TOPIC_ERR_BAD_FILTER.
 */
enum topic_result topic_key_to_filter(const char *key, char *out, size_t outsz)
{
	enum topic_result r = TOPIC_OK;
	size_t word = 0, len = 0;

	if (key[0] == '\0')
		return reverse_finish(out, outsz, 0, TOPIC_ERR_EMPTY);
	if (strncmp(key, SHARE_KEY_PREFIX, SHARE_PREFIX_LEN) == 0)
		return reverse_finish(out, outsz, 0, TOPIC_ERR_BAD_FILTER);
	for (size_t i = 0;; i++) {
		char c = key[i];

		if (c != '.' && c != '\0')
			continue;
		for (size_t j = word; j < i; j++) {
			if (key[j] != '+' && key[j] != '#')
				continue;
			if (i - word != 1)
				r = TOPIC_ERR_BAD_FILTER;
			else if (key[j] == '+')
				r = TOPIC_ERR_AMBIGUOUS;
			else if (c != '\0')
				r = TOPIC_ERR_BAD_FILTER;
		}
		if (r != TOPIC_OK || c == '\0')
			break;
		word = i + 1;
	}
	if (r == TOPIC_OK)
		len = key_copy(key, out, outsz, 1);
	return reverse_finish(out, outsz, len, r);
}

int topic_show_len(const char *s)
{
	size_t n = strnlen(s, TOPIC_SHOW_MAX + 1);

	return (int)(n > TOPIC_SHOW_MAX ? TOPIC_SHOW_MAX : n);
}

const char *topic_show_ellipsis(const char *s)
{
	return strnlen(s, TOPIC_SHOW_MAX + 1) > TOPIC_SHOW_MAX ? "..." : "";
}
