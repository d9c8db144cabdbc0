#include "logjson.h"

#include <inttypes.h>
#include <stdint.h>
#include <stdio.h>
#include <string.h>

#include "utf8.h"

static const char TRUNCATED[] = ",\"truncated\":true";

/*
 * The end of the object is never refused: the quote that closes a string
 * that was cut, TRUNCATED, the brace and the NUL.
 */
#define JW_KEEP (1 + sizeof(TRUNCATED) - 1 + 1 + 1)

/* A writer that refuses, whole, whatever would eat into the room kept for the end. */
struct jw {
	char *buf;
	size_t len;
	size_t limit;               /* the buffer's size less JW_KEEP */
	bool cut;                   /* something was refused */
};

/* A string closed past the limit leaves no room at all. */
static size_t jw_room(const struct jw *j)
{
	return j->len < j->limit ? j->limit - j->len : 0;
}

static bool jw_put(struct jw *j, const char *s, size_t n)
{
	if (j->cut || n > jw_room(j)) {
		j->cut = true;
		return false;
	}
	memcpy(j->buf + j->len, s, n);
	j->len += n;
	return true;
}

/* Past the limit, into the kept room: only for the end of the object. */
static void jw_end(struct jw *j, const char *s, size_t n)
{
	memcpy(j->buf + j->len, s, n);
	j->len += n;
}

/* True if `s` (`n` bytes) is the start of a sequence that would be valid with more bytes. */
static bool utf8_partial(const unsigned char *s, size_t n)
{
	size_t want = s[0] >= 0xf0 ? 4 : s[0] >= 0xe0 ? 3 : 2;

	if (s[0] < 0xc2 || s[0] >= 0xf5 || n >= want)
		return false;
	for (size_t i = 1; i < n; i++)
		if ((s[i] & 0xc0) != 0x80)
			return false;
	return true;
}

/*
 * Escapes `n` bytes of `s` into the string being written, one character
 * at a time, until one does not fit.  `cut`: the text was cut in front
 * of the caller, so a partial sequence at its very end is the cut's
 * doing and is left out rather than replaced.
 */
static void jw_text(struct jw *j, const char *s, size_t n, bool cut)
{
	static const char hex[] = "0123456789abcdef";
	const unsigned char *u = (const unsigned char *)s;

	for (size_t i = 0; i < n;) {
		char esc[8];
		const char *out = esc;
		size_t len = utf8_len(u + i, n - i), olen;

		if (len == 0 && cut && utf8_partial(u + i, n - i))
			return;
		if (len == 0) {
			out = "\\ufffd";
			olen = 6;
			len = 1;
		} else if (u[i] == '"' || u[i] == '\\') {
			esc[0] = '\\';
			esc[1] = (char)u[i];
			olen = 2;
		} else if (u[i] < 0x20) {
			memcpy(esc, "\\u00", 4);
			esc[4] = hex[u[i] >> 4];
			esc[5] = hex[u[i] & 0xf];
			olen = 6;
		} else {
			out = s + i;
			olen = len;
		}
		if (!jw_put(j, out, olen))
			return;
		i += len;
	}
}

/*
 * `,"key":` and `value` (a number's digits, "null", or the opening quote
 * of a string), all or nothing, so that the object never ends on a key.
 */
static bool jw_key(struct jw *j, const char *key, const char *value)
{
	size_t klen = strlen(key), vlen = strlen(value);

	if (j->cut || klen + vlen + 4 > jw_room(j)) {
		j->cut = true;
		return false;
	}
	jw_put(j, ",\"", 2);
	jw_put(j, key, klen);
	jw_put(j, "\":", 2);
	jw_put(j, value, vlen);
	return true;
}

static void jw_field(struct jw *j, const struct log_field *f)
{
	char num[24];

	switch (f->kind) {
	case LOG_KIND_STR:
		if (f->v.s == NULL) {
			jw_key(j, f->key, "null");
		} else if (jw_key(j, f->key, "\"")) {
			jw_text(j, f->v.s, strlen(f->v.s), false);
			jw_end(j, "\"", 1);
		}
		break;
	case LOG_KIND_U64:
		snprintf(num, sizeof(num), "%" PRIu64, f->v.u);
		jw_key(j, f->key, num);
		break;
	case LOG_KIND_I64:
		snprintf(num, sizeof(num), "%" PRId64, f->v.i);
		jw_key(j, f->key, num);
		break;
	}
}

size_t logjson_module(const char *text)
{
	size_t i = 0;

	if (text[0] < 'a' || text[0] > 'z')
		return 0;
	while (i < LOGJSON_MODULE_MAX && ((text[i] >= 'a' && text[i] <= 'z') ||
	                                  (text[i] >= '0' && text[i] <= '9') || text[i] == '_'))
		i++;
	return text[i] == ':' && text[i + 1] == ' ' ? i : 0;
}

size_t logjson_format(char *buf, size_t size, const struct logjson_msg *m)
{
	struct jw j = { .buf = buf, .limit = size - JW_KEEP };
	size_t mlen = logjson_module(m->text);
	const char *text = mlen > 0 ? m->text + mlen + 2 : m->text;
	char stamp[32];
	struct tm tm;
	int head;

	gmtime_r(&m->time.tv_sec, &tm);
	strftime(stamp, sizeof(stamp), "%Y-%m-%dT%H:%M:%S", &tm);
	/* LOGJSON_MIN has room for this whatever the year, level and module. */
	head = snprintf(buf, size, "{\"time\":\"%s.%03ldZ\",\"level\":\"%s\",\"module\":\"%.*s\","
	                "\"message\":\"", stamp, m->time.tv_nsec / 1000000, m->level,
	                mlen > 0 ? (int)mlen : 4, mlen > 0 ? m->text : "main");
	j.len = (size_t)head;
	jw_text(&j, text, strlen(text), m->cut);
	jw_end(&j, "\"", 1);
	for (size_t i = 0; i < m->n_fields; i++)
		jw_field(&j, &m->fields[i]);
	if (j.cut || m->cut)
		jw_end(&j, TRUNCATED, sizeof(TRUNCATED) - 1);
	jw_end(&j, "}", 2);
	return j.len - 1;
}
