#include "dlmap.h"

#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <mqtt_protocol.h>

#include "tmpl.h"

/* Longest report, NUL included. */
#define DLMAP_MSG_MAX 512
/* Bytes of a name or value quoted in a detail before "...". */
#define DLMAP_SHOW_MAX 60
/* Header values up to this size are made C strings on the stack. */
#define DLMAP_STACK_STR 512
#define DLMAP_HDR_MQTT_PREFIX "x-mqtt-"

const char *dlmap_strerror(enum dlmap_result r)
{
	switch (r) {
	case DLMAP_OK:
		return "success";
	case DLMAP_ERR_EMPTY:
		return "empty topic";
	case DLMAP_ERR_WILDCARD:
		return "wildcard in the topic";
	case DLMAP_ERR_NUL:
		return "NUL byte in the topic";
	case DLMAP_ERR_UTF8:
		return "topic is not valid UTF-8 or holds control characters";
	case DLMAP_ERR_TOPIC_TOO_LONG:
		return "topic longer than 65535 bytes";
	case DLMAP_ERR_NO_WORD:
		return "template word past the end of the routing key";
	case DLMAP_ERR_NO_HEADER:
		return "template header absent";
	case DLMAP_ERR_HEADER_TYPE:
		return "template header is not a string";
	case DLMAP_ERR_LEVELS:
		return "template value spans topic levels";
	case DLMAP_ERR_TOO_LARGE:
		return "message larger than the broker's maximum packet size";
	case DLMAP_ERR_DOLLAR:
		return "a '$' topic made from the routing key or a header";
	case DLMAP_ERR_NOMEM:
		return "out of memory";
	}
	return "unknown mapping error";
}

bool dlmap_is_poison(enum dlmap_result r)
{
	return r != DLMAP_OK && r != DLMAP_ERR_NOMEM;
}

/* ------------------------------------------------------------------------ */
/* Compiling */

struct dlmap_comp {
	dlmap_report_fn *report;
	void *ctx;
	struct dlmap_template *t;
	const char *tmpl;
	int problems;
};

static void dlmap__say(struct dlmap_comp *c, const char *fmt, ...)
	__attribute__((format(printf, 2, 3)));

static void dlmap__say(struct dlmap_comp *c, const char *fmt, ...)
{
	char msg[DLMAP_MSG_MAX];
	va_list ap;

	va_start(ap, fmt);
	vsnprintf(msg, sizeof(msg), fmt, ap);
	va_end(ap);
	c->problems++;
	if (c->report != NULL)
		c->report(c->ctx, msg);
}

/* Appends a part holding a copy of s[0..len); 0, or -1 when memory ran out. */
static int dlmap__add_part(struct dlmap_comp *c, enum dlmap_part_kind kind, const char *s,
                           size_t len)
{
	struct dlmap_part *p = &c->t->parts[c->t->n_parts];

	p->kind = kind;
	p->len = len;
	p->word = 0;
	p->text = malloc(len + 1);
	if (p->text == NULL)
		return -1;
	memcpy(p->text, s, len);
	p->text[len] = '\0';
	c->t->n_parts++;
	return 0;
}

static int dlmap__literal(void *ctx, const char *s, size_t n)
{
	return dlmap__add_part(ctx, DP_LITERAL, s, n);
}

/* Compiles the field between braces, in[0..n); 0, or -1 when memory ran out. */
static int dlmap__field(void *ctx, const char *in, size_t n)
{
	static const char hdr[] = "header:";
	const size_t hlen = sizeof(hdr) - 1;
	struct dlmap_comp *c = ctx;
	const char *tmpl = c->tmpl;
	unsigned v;

	if (n == 3 && memcmp(in, "key", 3) == 0)
		return dlmap__add_part(c, DP_KEY, "", 0);
	if (n >= hlen && memcmp(in, hdr, hlen) == 0) {
		if (n == hlen) {
			dlmap__say(c, "topic template '%.*s': {header:} names no header",
			           DLMAP_SHOW_MAX, tmpl);
			return 0;
		}
		return dlmap__add_part(c, DP_HEADER, in + hlen, n - hlen);
	}
	if (tmpl_index(in, n, &v)) {
		if (v == 0) {
			dlmap__say(c, "topic template '%.*s': {%.*s}: words count from {1}",
			           DLMAP_SHOW_MAX, tmpl, n > 20 ? 20 : (int)n, in);
			return 0;
		}
		if (dlmap__add_part(c, DP_WORD, "", 0) != 0)
			return -1;
		/* Past any key's word count (saturated): it can only ever be missing. */
		c->t->parts[c->t->n_parts - 1].word = v;
		return 0;
	}
	dlmap__say(c, "topic template '%.*s': unknown placeholder '{%.*s%s}' (known: {1}, {2}, ..., "
	           "{key}, {header:NAME}; '{{' and '}}' for braces)", DLMAP_SHOW_MAX, tmpl,
	           n > 40 ? 40 : (int)n, in, n > 40 ? "..." : "");
	return 0;
}

static void dlmap__stray(void *ctx, size_t offset)
{
	struct dlmap_comp *c = ctx;

	dlmap__say(c, "topic template '%.*s': stray '}' at offset %zu (write '}}' for a brace)",
	           DLMAP_SHOW_MAX, c->tmpl, offset);
}

static void dlmap__unclosed(void *ctx, size_t offset)
{
	struct dlmap_comp *c = ctx;

	dlmap__say(c, "topic template '%.*s': the '{' at offset %zu is never closed",
	           DLMAP_SHOW_MAX, c->tmpl, offset);
}

static const struct tmpl_ops dlmap__ops = {
	dlmap__literal, dlmap__field, dlmap__stray, dlmap__unclosed,
};

int dlmap_compile(const char *tmpl, dlmap_report_fn *report, void *ctx, struct dlmap_template *t)
{
	size_t tlen = strlen(tmpl);
	struct dlmap_comp c = { report, ctx, t, tmpl, 0 };

	/* No template has more parts than bytes, plus one. */
	t->n_parts = 0;
	t->parts = calloc(tlen + 1, sizeof(*t->parts));
	if (t->parts == NULL || tmpl_scan(tmpl, tlen, &dlmap__ops, &c) != 0)
		return -1;
	return c.problems;
}

void dlmap_template_free(struct dlmap_template *t)
{
	if (t->parts != NULL) {
		for (size_t k = 0; k < t->n_parts; k++)
			free(t->parts[k].text);
	}
	free(t->parts);
	t->parts = NULL;
	t->n_parts = 0;
}

/* ------------------------------------------------------------------------ */
/* The topic */

/*
 * A bounded writer: bytes past DLMAP_TOPIC_MAX are counted, not written,
 * and the bytes that make a topic invalid are noted wherever they fall.
 */
struct dlmap_tbuf {
	char *buf;
	size_t len;                 /* bytes the whole topic needs */
	bool nul, wild;
};

static void dlmap__put(struct dlmap_tbuf *b, const char *s, size_t n, bool translate)
{
	for (size_t i = 0; i < n; i++) {
		char ch = translate && s[i] == '.' ? '/' : s[i];

		if (ch == '\0')
			b->nul = true;
		else if (ch == '+' || ch == '#')
			b->wild = true;
		if (b->len < DLMAP_TOPIC_MAX)
			b->buf[b->len] = ch;
		b->len++;
	}
}

/*
 * Whether t[0..n) is a topic name libmosquitto publishes, in the order a
 * reader would want the reason: emptiness, NUL, wildcards, length, UTF-8.
 */
static enum dlmap_result dlmap__check_topic(const struct dlmap_tbuf *b)
{
	if (b->len == 0)
		return DLMAP_ERR_EMPTY;
	if (b->nul)
		return DLMAP_ERR_NUL;
	if (b->wild)
		return DLMAP_ERR_WILDCARD;
	if (b->len > DLMAP_TOPIC_MAX)
		return DLMAP_ERR_TOPIC_TOO_LONG;
	if (mosquitto_validate_utf8(b->buf, (int)b->len) != MOSQ_ERR_SUCCESS)
		return DLMAP_ERR_UTF8;
	return DLMAP_OK;
}

/* The `want`th word (from 1) of key[0..klen), or false when it has fewer. */
static bool dlmap__word(const char *key, size_t klen, unsigned want, size_t *off, size_t *len)
{
	size_t start = 0;
	unsigned word = 1;

	for (size_t i = 0; i <= klen; i++) {
		if (i < klen && key[i] != '.')
			continue;
		if (word == want) {
			*off = start;
			*len = i - start;
			return true;
		}
		word++;
		start = i + 1;
	}
	return false;
}

/* The first header named name[0..nlen), or NULL. */
static const amqp_field_value_t *dlmap__header(const amqp_basic_properties_t *p, const char *name,
                                               size_t nlen)
{
	if (p == NULL || !(p->_flags & AMQP_BASIC_HEADERS_FLAG))
		return NULL;
	for (int k = 0; k < p->headers.num_entries; k++) {
		const amqp_table_entry_t *e = &p->headers.entries[k];

		if (e->key.len == nlen && (nlen == 0 || memcmp(e->key.bytes, name, nlen) == 0))
			return &e->value;
	}
	return NULL;
}

static void dlmap__detail(char *detail, size_t size, const char *fmt, ...)
	__attribute__((format(printf, 3, 4)));

static void dlmap__detail(char *detail, size_t size, const char *fmt, ...)
{
	va_list ap;

	if (detail == NULL || size == 0)
		return;
	va_start(ap, fmt);
	vsnprintf(detail, size, fmt, ap);
	va_end(ap);
}

static int dlmap__show(size_t len)
{
	return len > DLMAP_SHOW_MAX ? DLMAP_SHOW_MAX : (int)len;
}

/* Appends the value of a {N} or {header:NAME} part: one level, untranslated. */
static enum dlmap_result dlmap__put_level(struct dlmap_tbuf *b, const char *s, size_t n)
{
	if (n > 0 && memchr(s, '/', n) != NULL)
		return DLMAP_ERR_LEVELS;
	dlmap__put(b, s, n, false);
	return DLMAP_OK;
}

static enum dlmap_result dlmap__build_topic(const struct dlmap_template *t,
                                            const struct dlmap_delivery *d,
                                            struct dlmap_tbuf *b, char *detail, size_t dsize)
{
	const char *key = d->routing_key.bytes;
	size_t klen = d->routing_key.len;

	if (t == NULL) {
		dlmap__put(b, key, klen, true);
		return DLMAP_OK;
	}
	for (size_t k = 0; k < t->n_parts; k++) {
		const struct dlmap_part *p = &t->parts[k];
		const amqp_field_value_t *v;
		size_t off, len;

		switch (p->kind) {
		case DP_LITERAL:
			dlmap__put(b, p->text, p->len, false);
			break;
		case DP_KEY:
			dlmap__put(b, key, klen, true);
			break;
		case DP_WORD:
			if (!dlmap__word(key, klen, p->word, &off, &len)) {
				dlmap__detail(detail, dsize, "{%u} but the routing key '%.*s%s' has fewer words",
				              p->word, dlmap__show(klen), key, klen > DLMAP_SHOW_MAX ? "..." : "");
				return DLMAP_ERR_NO_WORD;
			}
			if (dlmap__put_level(b, key + off, len) != DLMAP_OK) {
				dlmap__detail(detail, dsize, "{%u} is '%.*s%s', which holds '/'", p->word,
				              dlmap__show(len), key + off, len > DLMAP_SHOW_MAX ? "..." : "");
				return DLMAP_ERR_LEVELS;
			}
			break;
		case DP_HEADER:
			v = dlmap__header(d->props, p->text, p->len);
			if (v == NULL) {
				dlmap__detail(detail, dsize, "no header '%.*s%s'", dlmap__show(p->len), p->text,
				              p->len > DLMAP_SHOW_MAX ? "..." : "");
				return DLMAP_ERR_NO_HEADER;
			}
			if (v->kind != AMQP_FIELD_KIND_UTF8) {
				dlmap__detail(detail, dsize, "header '%.*s%s' is of kind '%c', not a string",
				              dlmap__show(p->len), p->text, p->len > DLMAP_SHOW_MAX ? "..." : "",
				              (char)v->kind);
				return DLMAP_ERR_HEADER_TYPE;
			}
			if (dlmap__put_level(b, v->value.bytes.bytes, v->value.bytes.len) != DLMAP_OK) {
				dlmap__detail(detail, dsize, "header '%.*s%s' holds '/'", dlmap__show(p->len),
				              p->text, p->len > DLMAP_SHOW_MAX ? "..." : "");
				return DLMAP_ERR_LEVELS;
			}
			break;
		}
	}
	return DLMAP_OK;
}

/* ------------------------------------------------------------------------ */
/* Properties */

/* Bytes of MQTT's variable byte integer for `v`. */
static uint64_t dlmap__varint_len(uint64_t v)
{
	return v < 128 ? 1 : v < 16384 ? 2 : v < 2097152 ? 3 : 4;
}

/* Whether s[0..n) is a string libmosquitto puts in a property. */
static bool dlmap__mqtt_string(const void *s, size_t n)
{
	return n <= DLMAP_TOPIC_MAX && mosquitto_validate_utf8(s, (int)n) == MOSQ_ERR_SUCCESS;
}

struct dlmap_props {
	mosquitto_property *list;
	uint64_t size;              /* bytes the encoded properties take */
	bool nomem;
};

/* Notes libmosquitto's answer; anything but running out of memory leaves the property out. */
static void dlmap__added(struct dlmap_props *pp, int rc, uint64_t size)
{
	if (rc == MOSQ_ERR_SUCCESS)
		pp->size += size;
	else if (rc == MOSQ_ERR_NOMEM)
		pp->nomem = true;
}

/* Copies s[0..n) into a C string, '.' turned into '/' when `translate`. */
static void dlmap__cstr(char *to, const void *s, size_t n, bool translate)
{
	if (n > 0)
		memcpy(to, s, n);
	to[n] = '\0';
	for (size_t i = 0; translate && i < n; i++) {
		if (to[i] == '.')
			to[i] = '/';
	}
}

/*
 * Adds a string property or pair from byte ranges, which libmosquitto
 * wants as C strings: short ones are copied to the stack, only long ones
 * to the heap.  `name` NULL: a single string, translated from routing key
 * form when `translate`.
 */
static void dlmap__add_str(struct dlmap_props *pp, int id, const void *name, size_t nlen,
                           const void *val, size_t vlen, bool translate)
{
	char nbuf[DLMAP_STACK_STR], vbuf[DLMAP_STACK_STR];
	char *n = nbuf, *v = vbuf;
	int rc = MOSQ_ERR_NOMEM;

	if (name != NULL && nlen >= sizeof(nbuf))
		n = malloc(nlen + 1);
	if (vlen >= sizeof(vbuf))
		v = malloc(vlen + 1);
	if (n != NULL && v != NULL) {
		dlmap__cstr(v, val, vlen, translate);
		if (name != NULL) {
			dlmap__cstr(n, name, nlen, false);
			rc = mosquitto_property_add_string_pair(&pp->list, id, n, v);
		} else {
			rc = mosquitto_property_add_string(&pp->list, id, v);
		}
	}
	dlmap__added(pp, rc, 1 + 2 + vlen + (name != NULL ? 2 + nlen : 0));
	if (n != nbuf)
		free(n);
	if (v != vbuf)
		free(v);
}

/*
 * The Message Expiry Interval for an AMQP expiration of decimal
 * milliseconds: seconds rounded up, at least 1, at most UINT32_MAX.
 * False when `e` is not a plain decimal number (RabbitMQ refuses such a
 * message at publishing, so this is only prudence).
 */
static bool dlmap__expiry(amqp_bytes_t e, uint32_t *secs)
{
	const char *s = e.bytes;
	uint64_t ms = 0;

	if (e.len == 0)
		return false;
	for (size_t i = 0; i < e.len; i++) {
		if (s[i] < '0' || s[i] > '9')
			return false;
		if (ms <= (uint64_t)UINT32_MAX * 1000)
			ms = ms * 10 + (uint64_t)(s[i] - '0');
	}
	if (ms > (uint64_t)UINT32_MAX * 1000)
		*secs = UINT32_MAX;
	else
		*secs = ms == 0 ? 1 : (uint32_t)((ms + 999) / 1000);
	return true;
}

/*
 * Whether x-reply-to-topic translates into a valid topic name.  Turning
 * '.' into '/' changes neither its length nor its UTF-8, so the value is
 * checked as it is.
 */
static bool dlmap__reply_topic_ok(const amqp_field_value_t *v)
{
	const char *s = v->value.bytes.bytes;
	size_t n = v->value.bytes.len;

	if (v->kind != AMQP_FIELD_KIND_UTF8 || n == 0 || n > DLMAP_TOPIC_MAX)
		return false;
	if (memchr(s, '+', n) != NULL || memchr(s, '#', n) != NULL)
		return false;
	/* libmosquitto's check refuses NUL as a control character. */
	return mosquitto_validate_utf8(s, (int)n) == MOSQ_ERR_SUCCESS;
}

static bool dlmap__key_is(amqp_bytes_t k, const char *name)
{
	size_t n = strlen(name);

	return k.len == n && memcmp(k.bytes, name, n) == 0;
}

static bool dlmap__key_has_prefix(amqp_bytes_t k, const char *prefix)
{
	size_t n = strlen(prefix);

	return k.len >= n && memcmp(k.bytes, prefix, n) == 0;
}

/*
 * A header's value as a user property's text, the plugin's way; false for
 * the kinds it leaves out.  Numbers are written to `num`.
 */
static bool dlmap__user_value(const amqp_field_value_t *v, char *num, size_t size,
                              const void **val, size_t *vlen)
{
	int n = -1;

	switch (v->kind) {
	case AMQP_FIELD_KIND_UTF8:
		*val = v->value.bytes.bytes;
		*vlen = v->value.bytes.len;
		return true;
	case AMQP_FIELD_KIND_VOID:
		*val = "";
		*vlen = 0;
		return true;
	case AMQP_FIELD_KIND_BOOLEAN:
		*val = v->value.boolean ? "true" : "false";
		*vlen = strlen(*val);
		return true;
	case AMQP_FIELD_KIND_I8:
		n = snprintf(num, size, "%d", (int)v->value.i8);
		break;
	case AMQP_FIELD_KIND_U8:
		n = snprintf(num, size, "%u", (unsigned)v->value.u8);
		break;
	case AMQP_FIELD_KIND_I16:
		n = snprintf(num, size, "%d", (int)v->value.i16);
		break;
	case AMQP_FIELD_KIND_U16:
		n = snprintf(num, size, "%u", (unsigned)v->value.u16);
		break;
	case AMQP_FIELD_KIND_I32:
		n = snprintf(num, size, "%ld", (long)v->value.i32);
		break;
	case AMQP_FIELD_KIND_U32:
		n = snprintf(num, size, "%lu", (unsigned long)v->value.u32);
		break;
	case AMQP_FIELD_KIND_I64:
		n = snprintf(num, size, "%lld", (long long)v->value.i64);
		break;
	case AMQP_FIELD_KIND_U64:
	case AMQP_FIELD_KIND_TIMESTAMP:
		n = snprintf(num, size, "%llu", (unsigned long long)v->value.u64);
		break;
	case AMQP_FIELD_KIND_F32:
		n = snprintf(num, size, "%.9g", (double)v->value.f32);
		break;
	case AMQP_FIELD_KIND_F64:
		n = snprintf(num, size, "%.17g", v->value.f64);
		break;
	default:
		return false;
	}
	if (n < 0 || (size_t)n >= size)
		return false;
	*val = num;
	*vlen = (size_t)n;
	return true;
}

/* Converts `p` into pp's list, in the order of dlmap.h's table. */
static void dlmap__props(struct dlmap_props *pp, const amqp_basic_properties_t *p)
{
	bool corr_from_header = false;
	uint32_t secs;

	if (p == NULL)
		return;
	if ((p->_flags & AMQP_BASIC_CONTENT_TYPE_FLAG) &&
	    dlmap__mqtt_string(p->content_type.bytes, p->content_type.len))
		dlmap__add_str(pp, MQTT_PROP_CONTENT_TYPE, NULL, 0, p->content_type.bytes,
		               p->content_type.len, false);
	if (p->_flags & AMQP_BASIC_CORRELATION_ID_FLAG) {
		dlmap__added(pp, mosquitto_property_add_binary(&pp->list, MQTT_PROP_CORRELATION_DATA,
		                                               p->correlation_id.bytes,
		                                               (uint16_t)p->correlation_id.len),
		             1 + 2 + p->correlation_id.len);
	} else {
		const amqp_field_value_t *v = dlmap__header(p, DLMAP_HDR_CORRELATION,
		                                            strlen(DLMAP_HDR_CORRELATION));

		if (v != NULL && v->kind == AMQP_FIELD_KIND_UTF8) {
			/* A header too long for Correlation Data is still consumed: it was meant as one. */
			corr_from_header = true;
			if (v->value.bytes.len <= DLMAP_TOPIC_MAX)
				dlmap__added(pp, mosquitto_property_add_binary(&pp->list,
				                                               MQTT_PROP_CORRELATION_DATA,
				                                               v->value.bytes.bytes,
				                                               (uint16_t)v->value.bytes.len),
				             1 + 2 + v->value.bytes.len);
		}
	}
	if ((p->_flags & AMQP_BASIC_EXPIRATION_FLAG) && dlmap__expiry(p->expiration, &secs))
		dlmap__added(pp, mosquitto_property_add_int32(&pp->list,
		                                              MQTT_PROP_MESSAGE_EXPIRY_INTERVAL, secs),
		             1 + 4);
	if (!(p->_flags & AMQP_BASIC_HEADERS_FLAG))
		return;
	for (int k = 0; k < p->headers.num_entries && !pp->nomem; k++) {
		const amqp_table_entry_t *e = &p->headers.entries[k];
		char num[48];
		const void *val;
		size_t vlen;

		if (dlmap__key_has_prefix(e->key, DLMAP_HDR_MQTT_PREFIX))
			continue;
		if (dlmap__key_is(e->key, DLMAP_HDR_REPLY_TO)) {
			if (dlmap__reply_topic_ok(&e->value))
				dlmap__add_str(pp, MQTT_PROP_RESPONSE_TOPIC, NULL, 0, e->value.value.bytes.bytes,
				               e->value.value.bytes.len, true);
			continue;
		}
		if (corr_from_header && dlmap__key_is(e->key, DLMAP_HDR_CORRELATION))
			continue;
		if (!dlmap__mqtt_string(e->key.bytes, e->key.len) ||
		    !dlmap__user_value(&e->value, num, sizeof(num), &val, &vlen) ||
		    !dlmap__mqtt_string(val, vlen))
			continue;
		dlmap__add_str(pp, MQTT_PROP_USER_PROPERTY, e->key.bytes, e->key.len, val, vlen, false);
	}
}

/* ------------------------------------------------------------------------ */
/* The message */

static bool dlmap__retain(const struct dlmap_entry *e, const amqp_basic_properties_t *p)
{
	const amqp_field_value_t *v;

	switch (e->retain) {
	case DLMAP_RETAIN_NO:
		return false;
	case DLMAP_RETAIN_YES:
		return true;
	case DLMAP_RETAIN_HEADER:
		v = dlmap__header(p, DLMAP_HDR_RETAIN, strlen(DLMAP_HDR_RETAIN));
		return v != NULL && v->kind == AMQP_FIELD_KIND_BOOLEAN && v->value.boolean;
	}
	return false;
}

enum dlmap_result dlmap_map(const struct dlmap_entry *e, const struct dlmap_link *l,
                            const struct dlmap_delivery *d, char topic[DLMAP_TOPIC_MAX + 1],
                            struct dlmap_out *out, char *detail, size_t detail_size)
{
	struct dlmap_tbuf tb = { topic, 0, false, false };
	struct dlmap_props pp = { NULL, 0, false };
	enum dlmap_result r;
	uint64_t rem, max;

	memset(out, 0, sizeof(*out));
	if (detail != NULL && detail_size > 0)
		detail[0] = '\0';
	r = dlmap__build_topic(e->tmpl, d, &tb, detail, detail_size);
	if (r == DLMAP_OK) {
		r = dlmap__check_topic(&tb);
		/* A '$' first byte is the template's own only when its literal text begins with it. */
		if (r == DLMAP_OK && tb.buf[0] == '$' &&
		    !(e->tmpl != NULL && e->tmpl->n_parts > 0 && e->tmpl->parts[0].kind == DP_LITERAL &&
		      e->tmpl->parts[0].len > 0 && e->tmpl->parts[0].text[0] == '$'))
			r = DLMAP_ERR_DOLLAR;
		if (r == DLMAP_ERR_TOPIC_TOO_LONG)
			dlmap__detail(detail, detail_size, "the topic needs %zu bytes", tb.len);
		else if (r != DLMAP_OK)
			dlmap__detail(detail, detail_size, "%s", dlmap_strerror(r));
	}
	if (r != DLMAP_OK)
		goto fail;
	out->topic_len = tb.len;
	topic[tb.len] = '\0';
	out->qos = e->qos > 0 ? 1 : 0;
	out->retain = dlmap__retain(e, d->props);

	if (l->mqtt5) {
		dlmap__props(&pp, d->props);
		if (pp.nomem) {
			r = DLMAP_ERR_NOMEM;
			goto fail;
		}
	}
	/* Topic, packet identifier, properties and their length, payload. */
	rem = 2 + tb.len + (out->qos > 0 ? 2 : 0) + d->body_len;
	if (l->mqtt5)
		rem += dlmap__varint_len(pp.size) + pp.size;
	out->packet_size = 1 + dlmap__varint_len(rem) + rem;
	max = l->max_packet == 0 ? DLMAP_PACKET_MAX : l->max_packet;
	if (rem > 268435455u || out->packet_size > max) {
		r = DLMAP_ERR_TOO_LARGE;
		dlmap__detail(detail, detail_size, "the PUBLISH takes %llu bytes (a payload of %llu), "
		              "the broker takes at most %llu", (unsigned long long)out->packet_size,
		              (unsigned long long)d->body_len, (unsigned long long)max);
		goto fail;
	}
	out->props = pp.list;
	return DLMAP_OK;

fail:
	mosquitto_property_free_all(&pp.list);
	topic[0] = '\0';
	out->topic_len = 0;
	out->props = NULL;
	return r;
}

/* ------------------------------------------------------------------------ */
/* The shape of a template */

struct dlmap_sbuf {
	char *buf;
	size_t size, len, level;    /* `level`: where the current level starts */
	bool ok;
};

static void dlmap__sput(struct dlmap_sbuf *s, char ch)
{
	if (s->len + 1 < s->size)
		s->buf[s->len++] = ch;
	else
		s->ok = false;
}

/* Replaces the current level with `wild`. */
static void dlmap__swild(struct dlmap_sbuf *s, char wild)
{
	s->len = s->level;
	dlmap__sput(s, wild);
}

bool dlmap_shape(const struct dlmap_template *t, char *buf, size_t size)
{
	struct dlmap_sbuf s = { buf, size, 0, 0, size > 1 };
	bool wild = false;

	if (t == NULL) {
		snprintf(buf, size, "#");
		return size > 1;
	}
	for (size_t k = 0; k < t->n_parts && s.ok; k++) {
		const struct dlmap_part *p = &t->parts[k];

		if (p->kind == DP_KEY) {
			/* Any number of levels from here on; the literal text after it still counts. */
			for (size_t j = k + 1; j < t->n_parts; j++)
				if (t->parts[j].kind == DP_LITERAL &&
				    (memchr(t->parts[j].text, '+', t->parts[j].len) != NULL ||
				     memchr(t->parts[j].text, '#', t->parts[j].len) != NULL))
					return false;
			dlmap__swild(&s, '#');
			wild = false;
			break;
		}
		if (p->kind != DP_LITERAL) {
			wild = true;
			continue;
		}
		for (size_t i = 0; i < p->len; i++) {
			char ch = p->text[i];

			if (ch == '+' || ch == '#')
				return false;
			if (ch == '/') {
				if (wild)
					dlmap__swild(&s, '+');
				wild = false;
				dlmap__sput(&s, '/');
				s.level = s.len;
			} else if (!wild) {
				dlmap__sput(&s, ch);
			}
		}
	}
	if (wild)
		dlmap__swild(&s, '+');
	if (!s.ok || s.len == 0)
		return false;
	buf[s.len] = '\0';
	return true;
}
