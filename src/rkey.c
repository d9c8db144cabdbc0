#include "rkey.h"

#include <stdarg.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "filter.h"
#include "tmpl.h"

/* Longest report, NUL included. */
#define RKEY_MSG_MAX 512

/* ------------------------------------------------------------------------ */
/* Compiling */

struct rkey_comp {
	rkey_report_fn *report;
	void *ctx;
	struct rule_part *parts;    /* room for one more than the template's bytes */
	size_t n_parts;
	const char *tmpl;
	const struct rkey_filter *filter;  /* NULL: not checked against one */
};

static void rkey__say(struct rkey_comp *c, const char *fmt, ...)
	__attribute__((format(printf, 2, 3)));

static void rkey__say(struct rkey_comp *c, const char *fmt, ...)
{
	char msg[RKEY_MSG_MAX];
	va_list ap;

	va_start(ap, fmt);
	vsnprintf(msg, sizeof(msg), fmt, ap);
	va_end(ap);
	c->report(c->ctx, msg);
}

/* A run of literal text becomes a part. */
static int rkey__literal(void *ctx, const char *s, size_t n)
{
	struct rkey_comp *c = ctx;
	struct rule_part *p = &c->parts[c->n_parts];

	p->kind = RP_LITERAL;
	p->text = malloc(n + 1);
	if (p->text == NULL)
		return -1;
	memcpy(p->text, s, n);
	p->text[n] = '\0';
	p->len = n;
	c->n_parts++;
	return 0;
}

/* A field: {#}, {topic} or {N}, checked against the rule's filter when known. */
static int rkey__field(void *ctx, const char *in, size_t n)
{
	struct rkey_comp *c = ctx;
	struct rule_part *p = &c->parts[c->n_parts];
	const struct rkey_filter *f = c->filter;
	const char *t = c->tmpl;
	unsigned v;

	if (n == 1 && in[0] == '#') {
		p->kind = RP_TAIL;
		if (f != NULL && !f->has_hash)
			rkey__say(c, "routing_key: {#} but the filter does not end in '#'");
	} else if (n == 5 && memcmp(in, "topic", 5) == 0) {
		p->kind = RP_TOPIC;
	} else if (tmpl_index(in, n, &v)) {
		p->kind = RP_LEVEL;
		p->level = v;
		if (v == 0)
			rkey__say(c, "routing_key: {%.*s}: '+' levels count from {1}", (int)n, in);
		else if (f != NULL && v > f->n_plus)
			rkey__say(c, "routing_key: {%.*s%s} but the filter has %u '+' level%s",
			          n > 20 ? 20 : (int)n, in, n > 20 ? "..." : "",
			          f->n_plus, f->n_plus == 1 ? "" : "s");
	} else {
		rkey__say(c, "routing_key '%.*s%s': unknown placeholder '{%.*s%s}' (known: {1}, {2}, ..., "
		          "{#}, {topic}; '{{' and '}}' for braces)", TOPIC_SHOW(t),
		          n > 40 ? 40 : (int)n, in, n > 40 ? "..." : "");
		return 0;
	}
	c->n_parts++;
	return 0;
}

static void rkey__stray(void *ctx, size_t offset)
{
	struct rkey_comp *c = ctx;

	rkey__say(c, "routing_key '%.*s%s': stray '}' at offset %zu (write '}}' for a brace)",
	          TOPIC_SHOW(c->tmpl), offset);
}

static void rkey__unclosed(void *ctx, size_t offset)
{
	struct rkey_comp *c = ctx;

	rkey__say(c, "routing_key '%.*s%s': the '{' at offset %zu is never closed",
	          TOPIC_SHOW(c->tmpl), offset);
}

static const struct tmpl_ops rkey__ops = { rkey__literal, rkey__field, rkey__stray, rkey__unclosed };

int rkey_compile(const char *tmpl, const struct rkey_filter *f, rkey_report_fn *report,
                 void *ctx, struct rule_part **parts, size_t *n_parts, size_t *literal)
{
	size_t tlen = strlen(tmpl);
	struct rkey_comp c = { report, ctx, calloc(tlen + 1, sizeof(*c.parts)), 0, tmpl, f };
	int rc = -1;

	*literal = 0;
	if (c.parts != NULL)
		rc = tmpl_scan(tmpl, tlen, &rkey__ops, &c);
	for (size_t k = 0; k < c.n_parts; k++) {
		if (c.parts[k].kind == RP_LITERAL)
			*literal += c.parts[k].len;
	}
	*parts = c.parts;
	*n_parts = c.n_parts;
	return rc;
}

void rkey_free_parts(struct rule_part *parts, size_t n_parts)
{
	for (size_t k = 0; k < n_parts; k++)
		free(parts[k].text);
	free(parts);
}

/* ------------------------------------------------------------------------ */
/* Building */

struct rkey_buf {
	char *buf;
	size_t len;
	size_t need;                /* the length of the whole key, written or not */
	bool over;
};

static void rkey__put(struct rkey_buf *k, const char *s, size_t n)
{
	if (n == 0)
		return;
	k->need += n;
	if (k->over || n > TOPIC_KEY_MAX - k->len) {
		k->over = true;
		return;
	}
	memcpy(k->buf + k->len, s, n);
	k->len += n;
}

/* Appends the default translation of t[0..n), part of a checked topic name. */
static void rkey__put_translated(struct rkey_buf *k, const char *t, size_t n, const char *repl)
{
	size_t room, need;

	if (n == 0)
		return;
	if (k->over) {
		k->need += topic_translate(t, n, repl, NULL, 0);
		return;
	}
	room = TOPIC_KEY_MAX - k->len;
	need = topic_translate(t, n, repl, k->buf + k->len, room);
	k->need += need;
	if (need > room)
		k->over = true;
	else
		k->len += need;
}

/*
 * Sets *off and *len to the topic level matched by the `want`th '+' of
 * `filter`, or, for want == 0, to the rest of the topic matched by its
 * '#' (empty when '#' matched the parent level).  The topic matches.
 */
static void rkey__span(const char *filter, const char *topic, size_t tlen, unsigned want,
                       size_t *off, size_t *len)
{
	size_t flen = strlen(filter), fp = 0, tp = 0, fn, tn;
	unsigned plus = 0;
	const char *fl, *tl;

	*off = *len = 0;
	while (filter_level(filter, flen, &fp, &fl, &fn)) {
		if (filter_is(fl, fn, '#')) {
			if (want == 0 && tp <= tlen) {
				*off = tp;
				*len = tlen - tp;
			}
			return;
		}
		if (!filter_level(topic, tlen, &tp, &tl, &tn))
			return;
		if (filter_is(fl, fn, '+') && ++plus == want) {
			*off = (size_t)(tl - topic);
			*len = tn;
			return;
		}
	}
}

/*
 * Builds the key in place; on any error the key is the empty string and
 * *klen 0, as topic.h's translations do.
 */
enum topic_result rkey_build(const struct rkey_rule *r, const char *topic, size_t tlen,
                             const char *dot_replacement, char key[TOPIC_KEY_MAX + 1],
                             size_t *klen)
{
	struct rkey_buf k = { key, 0, 0, false };
	enum topic_result res = TOPIC_OK;
	const char *st = topic;
	size_t stlen = tlen;

	if (r == NULL) {
		res = topic_name_to_key(topic, tlen, dot_replacement, key, klen);
		if (res == TOPIC_ERR_TOO_LONG && klen != NULL)
			*klen = topic_translate(topic, tlen, dot_replacement, NULL, 0);
		return res;
	}
	if (tlen == 0)
		res = TOPIC_ERR_EMPTY;
	for (size_t i = 0; i < tlen && res == TOPIC_OK; i++) {
		if (topic[i] == '\0')
			res = TOPIC_ERR_NUL;
		else if (topic[i] == '+' || topic[i] == '#')
			res = TOPIC_ERR_WILDCARD;
	}
	if (res != TOPIC_OK)
		goto out;
	if (r->strip_prefix != NULL) {
		if (tlen >= r->strip_len && memcmp(topic, r->strip_prefix, r->strip_len) == 0) {
			st = topic + r->strip_len;
			stlen = tlen - r->strip_len;
		} else {
			stlen = 0;
		}
	}
	rkey__put(&k, r->key_prefix, r->key_prefix_len);
	if (!r->templated)
		rkey__put_translated(&k, st, stlen, dot_replacement);
	for (size_t p = 0; p < r->n_parts; p++) {
		const struct rule_part *part = &r->parts[p];
		size_t off, len;

		switch (part->kind) {
		case RP_LITERAL:
			rkey__put(&k, part->text, part->len);
			break;
		case RP_LEVEL:
		case RP_TAIL:
			rkey__span(r->filter, topic, tlen, part->kind == RP_LEVEL ? part->level : 0, &off,
			            &len);
			rkey__put_translated(&k, topic + off, len, dot_replacement);
			break;
		case RP_TOPIC:
			rkey__put_translated(&k, st, stlen, dot_replacement);
			break;
		}
	}
	if (k.over)
		res = TOPIC_ERR_TOO_LONG;
out:
	if (res != TOPIC_OK)
		k.len = 0;
	key[k.len] = '\0';
	if (klen != NULL)
		*klen = res == TOPIC_ERR_TOO_LONG ? k.need : k.len;
	return res;
}
