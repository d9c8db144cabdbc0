#include "rules.h"

#include <stdarg.h>
#include <stdlib.h>
#include <string.h>

#include "filter.h"
#include "rkey.h"
#include "rtree.h"

/* Longest message handed to a report callback, NUL included. */
#define RULES_MSG_MAX 1024

struct rules {
	struct rule *rules;
	size_t n;
	size_t n_cont;
	struct rtree *tree;         /* rule i is filter i of the tree */
};

/* ------------------------------------------------------------------------ */
/* Reports */

struct rules_rep {
	rules_report_fn *fn;
	void *arg;
	size_t index;               /* 1-based */
	int line;
	const char *match;          /* NULL: the rule has none */
	unsigned count;             /* reports made for this rule */
};

static void rules__say(struct rules_rep *rep, const char *fmt, ...)
	__attribute__((format(printf, 2, 3)));

/* Sends "rule N (match 'F'): " and the formatted text to the callback. */
static void rules__say(struct rules_rep *rep, const char *fmt, ...)
{
	char msg[RULES_MSG_MAX];
	va_list ap;
	int n;

	rep->count++;
	if (rep->fn == NULL)
		return;
	if (rep->match != NULL)
		n = snprintf(msg, sizeof(msg), "rule %zu (match '%.*s%s'): ", rep->index,
		             TOPIC_SHOW(rep->match));
	else
		n = snprintf(msg, sizeof(msg), "rule %zu (no match): ", rep->index);
	if (n < 0 || (size_t)n >= sizeof(msg))
		n = 0;
	va_start(ap, fmt);
	vsnprintf(msg + n, sizeof(msg) - (size_t)n, fmt, ap);
	va_end(ap);
	rep->fn(rep->arg, rep->line, msg);
}

/* ------------------------------------------------------------------------ */
/* Validation and copies */

/*
 * Checks a match and sets r->filter, r->n_plus and r->has_hash.  Returns
 * true when it is a valid (possibly shared) filter.
 */
static bool rules__check_match(struct rule *r, struct rules_rep *rep)
{
	const char *f = r->match;
	enum topic_result tr;

	if (strncmp(f, FILTER_SHARE_PREFIX, FILTER_SHARE_PREFIX_LEN) == 0) {
		const char *group = f + FILTER_SHARE_PREFIX_LEN;
		size_t glen = strcspn(group, "/");

		if (group[glen] != '/') {
			rules__say(rep, "a shared subscription reads \"$share/GROUP/FILTER\"");
			return false;
		}
		if (glen == 0 || memchr(group, '+', glen) != NULL || memchr(group, '#', glen) != NULL) {
			rules__say(rep, "the share group must be non-empty and free of '+' and '#'");
			return false;
		}
		f = group + glen + 1;
		if (*f == '\0') {
			rules__say(rep, "a shared subscription needs a filter after its group");
			return false;
		}
	}
	r->filter = f;
	tr = topic_filter_check(f);
	if (tr != TOPIC_OK) {
		rules__say(rep, "not a valid MQTT topic filter: %s", topic_strerror(tr));
		return false;
	}
	for (size_t p = 0, len = strlen(f), n;;) {
		const char *lv;

		if (!filter_level(f, len, &p, &lv, &n))
			break;
		if (filter_is(lv, n, '+'))
			r->n_plus++;
		else if (filter_is(lv, n, '#'))
			r->has_hash = true;
	}
	return true;
}

/* Passes a problem of a template on, in the words of the rule it is in. */
static void rules__template_problem(void *ctx, const char *msg)
{
	rules__say(ctx, "%s", msg);
}

/* Checks strip_prefix against the text of the filter before its first wildcard. */
static void rules__check_strip(const struct rule *r, struct rules_rep *rep)
{
	const char *f = r->filter;
	size_t fixed = 0;

	for (size_t p = 0, len = strlen(f), n;;) {
		const char *lv;

		fixed = p > len ? len : p;
		if (!filter_level(f, len, &p, &lv, &n) || filter_is(lv, n, '+') || filter_is(lv, n, '#'))
			break;
	}
	if (r->strip_len > fixed || memcmp(r->strip_prefix, f, r->strip_len) != 0)
		rules__say(rep, "strip_prefix '%.*s%s' does not start every topic the filter accepts "
		           "(it must be a prefix of '%.*s')", TOPIC_SHOW(r->strip_prefix),
		           fixed > TOPIC_SHOW_MAX ? TOPIC_SHOW_MAX : (int)fixed, f);
}

static void rules__check_drop(const struct rule_spec *s, struct rules_rep *rep)
{
	static const char *const names[] = {
		"continue", "exchange", "routing_key", "key_prefix", "strip_prefix", "persistent",
		"headers",
	};
	bool set[] = {
		s->cont, s->exchange != NULL, s->routing_key != NULL, s->key_prefix != NULL,
		s->strip_prefix != NULL, s->persistent != RULE_PERSIST_QOS, s->n_headers > 0,
	};
	char list[128] = "";
	size_t used = 0;

	for (size_t k = 0; k < sizeof(set) / sizeof(set[0]); k++) {
		if (!set[k])
			continue;
		used += (size_t)snprintf(list + used, sizeof(list) - used, "%s%s", used > 0 ? ", " : "",
		                         names[k]);
	}
	if (used > 0)
		rules__say(rep, "drop excludes every other action, but it also sets %s", list);
}

static char *rules__strdup(const char *s, int *oom)
{
	char *c;

	if (s == NULL)
		return NULL;
	c = strdup(s);
	if (c == NULL)
		*oom = 1;
	return c;
}

/*
 * Copies the headers, reporting empty, over-long and repeated names.
 * Repeats are found through a hash table of the names seen so far, not by
 * comparing each name with every earlier one: a rule may have tens of
 * thousands of headers.  Returns 0, or -1 when memory ran out.
 */
static int rules__headers(struct rule *r, const struct rule_spec *s, struct rules_rep *rep)
{
	size_t cap = 16, mask, *seen;  /* seen: 1 + index of a header, 0 for an empty slot */

	if (s->n_headers == 0)
		return 0;
	while (cap < 2 * s->n_headers)
		cap *= 2;
	mask = cap - 1;
	seen = calloc(cap, sizeof(*seen));
	r->headers = calloc(s->n_headers, sizeof(*r->headers));
	if (r->headers == NULL || seen == NULL) {
		free(seen);
		return -1;
	}
	for (size_t k = 0; k < s->n_headers; k++) {
		const struct rules_field *in = &s->headers[k];
		struct rules_field *h = &r->headers[k];
		const char *name = in->name != NULL ? in->name : "";
		size_t nlen = strlen(name), slot;
		uint64_t hash = 14695981039346656037u;  /* FNV-1a */
		int oom = 0;

		if (nlen == 0)
			rules__say(rep, "header %zu has an empty name", k + 1);
		else if (nlen > TOPIC_KEY_MAX)
			rules__say(rep, "header '%.*s%s' has a name of %zu bytes (at most 255)",
			           TOPIC_SHOW(name), nlen);
		else if (field_is_route_header(name))
			rules__say(rep, "header '%s' is RabbitMQ's list of further routing keys, which "
			           "RabbitMQ refuses as a single value; route with a second rule "
			           "(continue = true) instead", name);
		for (size_t i = 0; i < nlen; i++)
			hash = (hash ^ (unsigned char)name[i]) * 1099511628211u;
		for (slot = (size_t)hash & mask; nlen > 0 && seen[slot] != 0; slot = (slot + 1) & mask) {
			if (strcmp(s->headers[seen[slot] - 1].name, name) == 0) {
				rules__say(rep, "header '%.*s%s' is given twice", TOPIC_SHOW(name));
				break;
			}
		}
		if (nlen > 0 && seen[slot] == 0)
			seen[slot] = k + 1;
		h->name = rules__strdup(name, &oom);
		h->kind = in->kind;
		h->s = in->kind == RV_STRING ? rules__strdup(in->s != NULL ? in->s : "", &oom) : NULL;
		h->i = in->i;
		h->b = in->b;
		r->n_headers = k + 1;
		if (oom) {
			free(seen);
			return -1;
		}
	}
	free(seen);
	return 0;
}

/*
 * Validates spec `s` (rule number index + 1) and copies it into `r`.
 * Returns 0, or -1 when memory ran out.  Problems go to rep (rep->count).
 */
static int rules__spec(struct rule *r, const struct rule_spec *s, size_t index,
                       struct rules_rep *rep)
{
	bool filter_ok = false;
	size_t literal = 0;
	int oom = 0;

	r->index = index + 1;
	r->line = s->line;
	r->drop = s->drop;
	r->cont = s->cont;
	r->persistent = s->persistent;
	r->name = rules__strdup(s->name, &oom);
	r->match = rules__strdup(s->match, &oom);
	r->exchange = rules__strdup(s->exchange, &oom);
	r->routing_key = rules__strdup(s->routing_key, &oom);
	r->strip_prefix = rules__strdup(s->strip_prefix, &oom);
	r->key_prefix = rules__strdup(s->key_prefix, &oom);
	if (oom)
		return -1;
	r->exchange_len = r->exchange != NULL ? strlen(r->exchange) : 0;
	r->strip_len = r->strip_prefix != NULL ? strlen(r->strip_prefix) : 0;
	r->key_prefix_len = r->key_prefix != NULL ? strlen(r->key_prefix) : 0;

	if (r->match == NULL)
		rules__say(rep, "a rule needs a match (an MQTT topic filter)");
	else
		filter_ok = rules__check_match(r, rep);
	if (r->drop)
		rules__check_drop(s, rep);
	if (r->routing_key != NULL) {
		struct rkey_filter kf = { r->n_plus, r->has_hash };

		/* Placeholders are checked against the filter only when it is valid. */
		if (rkey_compile(r->routing_key, filter_ok ? &kf : NULL, rules__template_problem, rep,
		                 &r->parts, &r->n_parts, &literal) < 0)
			return -1;
	}
	if (filter_ok && r->strip_prefix != NULL)
		rules__check_strip(r, rep);
	if (r->exchange_len > TOPIC_KEY_MAX)
		rules__say(rep, "exchange is %zu bytes long (an exchange name holds at most 255)",
		           r->exchange_len);
	if (r->key_prefix_len > TOPIC_KEY_MAX)
		rules__say(rep, "key_prefix is %zu bytes long (a routing key holds at most 255)",
		           r->key_prefix_len);
	if (literal > TOPIC_KEY_MAX)
		rules__say(rep, "routing_key: its literal text alone is %zu bytes (a routing key holds "
		           "at most 255)", literal);
	if (literal <= TOPIC_KEY_MAX && r->key_prefix_len <= TOPIC_KEY_MAX &&
	    literal + r->key_prefix_len > TOPIC_KEY_MAX)
		rules__say(rep, "key_prefix and the routing_key's literal text together are %zu bytes "
		           "(a routing key holds at most 255)", literal + r->key_prefix_len);
	r->key = (struct rkey_rule){ r->filter, r->routing_key != NULL, r->parts, r->n_parts,
	                             r->strip_prefix, r->strip_len, r->key_prefix, r->key_prefix_len };
	return rules__headers(r, s, rep);
}

/* ------------------------------------------------------------------------ */
/* Matching */

size_t rules_match(const struct rules *rs, const char *topic, size_t tlen,
                   const struct rule **out, size_t max)
{
	const uint32_t *ids;
	size_t m, w = 0;

	if (rs->n == 0 || tlen == 0 || max == 0)
		return 0;
	m = rtree_match(rs->tree, topic, tlen, &ids);
	for (size_t k = 0; k < m && w < max; k++)
		out[w++] = &rs->rules[ids[k]];
	return w;
}

bool rules_filter_matches(const char *filter, const char *topic, size_t tlen)
{
	return filter_matches(filter, topic, tlen);
}

bool rules_filter_covers(const char *a, const char *b)
{
	return filter_covers(a, b);
}

bool rules_filters_overlap(const char *a, const char *b)
{
	return filter_overlap(a, b);
}

/* ------------------------------------------------------------------------ */
/* Compiling */

/* The earliest rule without `continue` among those visited. */
static bool rules__visit_shadow(void *ctx, const uint32_t *ids, uint32_t n, uint32_t nc)
{
	uint32_t *best = ctx;

	if (nc < n && ids[nc] < *best)
		*best = ids[nc];
	return false;
}

/* Warns about rules an earlier rule without `continue` hides entirely. */
static void rules__warn_shadowed(const struct rules *rs, rules_report_fn *warning, void *arg)
{
	for (size_t j = 0; j < rs->n; j++) {
		const struct rule *r = &rs->rules[j];
		struct rules_rep rep = { warning, arg, j + 1, r->line, r->match, 0 };
		uint32_t best = RTREE_NONE;
		const struct rule *by;

		rtree_walk_covering(rs->tree, r->filter, rules__visit_shadow, &best);
		if (best >= j)
			continue;
		by = &rs->rules[best];
		rules__say(&rep, "can never match: rule %zu (match '%.*s%s', line %d) matches every topic "
		           "it does and has no continue", by->index, TOPIC_SHOW(by->match), by->line);
	}
}

/* Warns about rules no explicit subscription can bring a message to. */
static void rules__warn_unsubscribed(const struct rules *rs, const char *const *subscribe,
                                     size_t n_subscribe, rules_report_fn *warning, void *arg)
{
	for (size_t j = 0; j < rs->n; j++) {
		const struct rule *r = &rs->rules[j];
		struct rules_rep rep = { warning, arg, j + 1, r->line, r->match, 0 };
		size_t k;

		for (k = 0; k < n_subscribe; k++) {
			if (topic_filter_check(subscribe[k]) == TOPIC_OK &&
			    filter_overlap(filter_unshared(subscribe[k]), r->filter))
				break;
		}
		if (k == n_subscribe)
			rules__say(&rep, "overlaps none of the subscriptions (mqtt.subscribe), so no "
			           "message can reach it");
	}
}

static void rules__free_rule(struct rule *r)
{
	free(r->match);
	free(r->name);
	free(r->exchange);
	free(r->routing_key);
	rkey_free_parts(r->parts, r->n_parts);
	free(r->strip_prefix);
	free(r->key_prefix);
	for (size_t k = 0; k < r->n_headers; k++) {
		free(r->headers[k].name);
		free(r->headers[k].s);
	}
	free(r->headers);
}

void rules_free(struct rules *rs)
{
	if (rs == NULL)
		return;
	for (size_t i = 0; i < rs->n; i++)
		rules__free_rule(&rs->rules[i]);
	free(rs->rules);
	rtree_free(rs->tree);
	free(rs);
}

/*
 * Validates every spec first (all of them, so that every error is
 * reported), then builds the tree; warnings need the tree and so come only
 * for a valid list.
 */
struct rules *rules_compile(const struct rule_spec *specs, size_t n, const char *dot_replacement,
                            const char *const *subscribe, size_t n_subscribe,
                            rules_report_fn *error, rules_report_fn *warning, void *arg)
{
	struct rules *rs = calloc(1, sizeof(*rs));
	unsigned errors = 0;

	/* Keys are built per message with the caller's replacement. */
	(void)dot_replacement;
	if (rs == NULL || n >= RTREE_MAX)
		goto oom;
	rs->rules = calloc(n + 1, sizeof(*rs->rules));
	if (rs->rules == NULL)
		goto oom;
	for (size_t i = 0; i < n; i++) {
		struct rules_rep rep = { error, arg, i + 1, specs[i].line, specs[i].match, 0 };
		int rc = rules__spec(&rs->rules[i], &specs[i], i, &rep);

		rs->n = i + 1;
		if (rc < 0)
			goto oom;
		for (size_t j = 0; specs[i].name && j < i; j++) {
			if (specs[j].name && strcmp(specs[i].name, specs[j].name) == 0) {
				rules__say(&rep, "name '%s' is taken by rule %zu (line %d); each rule's name "
				           "is its own", specs[i].name, j + 1, specs[j].line);
				break;
			}
		}
		errors += rep.count;
		if (specs[i].cont)
			rs->n_cont++;
	}
	if (errors > 0) {
		rules_free(rs);
		return NULL;
	}
	rs->tree = rtree_new(n);
	if (rs->tree == NULL)
		goto oom;
	for (size_t i = 0; i < n; i++) {
		if (rtree_add(rs->tree, rs->rules[i].filter, rs->rules[i].cont) < 0)
			goto oom;
	}
	if (rtree_finish(rs->tree) < 0)
		goto oom;
	if (warning != NULL) {
		rules__warn_shadowed(rs, warning, arg);
		if (n_subscribe > 0)
			rules__warn_unsubscribed(rs, subscribe, n_subscribe, warning, arg);
	}
	return rs;
oom:
	rules_free(rs);
	if (error != NULL)
		error(arg, 0, "out of memory while compiling the rules");
	return NULL;
}

size_t rules_count(const struct rules *rs)
{
	return rs->n;
}

const struct rule *rules_at(const struct rules *rs, size_t i)
{
	return i < rs->n ? &rs->rules[i] : NULL;
}

/* Every rule returned but the last has `continue`. */
size_t rules_max_matches(const struct rules *rs)
{
	return rs->n_cont < rs->n ? rs->n_cont + 1 : rs->n;
}

/* ------------------------------------------------------------------------ */
/* Keys */

enum topic_result rules_key(const struct rule *r, const char *topic, size_t tlen,
                            const char *dot_replacement, char key[TOPIC_KEY_MAX + 1],
                            size_t *klen)
{
	return rkey_build(r != NULL ? &r->key : NULL, topic, tlen, dot_replacement, key, klen);
}

/* ------------------------------------------------------------------------ */
/* Subscriptions */

struct rules_sub_ctx {
	const struct rules *rs;
	size_t j;                   /* the rule whose filter may go */
	bool covered;
};

static bool rules__same_share(const struct rule *a, const struct rule *b)
{
	size_t pa = (size_t)(a->filter - a->match), pb = (size_t)(b->filter - b->match);

	return pa == pb && memcmp(a->match, b->match, pa) == 0;
}

/*
 * Whether a subscribed rule's filter covers rule j's, under the same share
 * prefix: strictly, or equally and earlier (so that of equal filters the
 * first stays).
 */
static bool rules__visit_sub(void *ctx, const uint32_t *ids, uint32_t n, uint32_t nc)
{
	struct rules_sub_ctx *c = ctx;
	const struct rule *rj = &c->rs->rules[c->j];

	(void)nc;
	for (uint32_t k = 0; k < n; k++) {
		uint32_t i = ids[k];
		const struct rule *ri = &c->rs->rules[i];

		if (i == c->j || ri->drop || !rules__same_share(ri, rj))
			continue;
		if (i < c->j || !filter_covers(rj->filter, ri->filter)) {
			c->covered = true;
			return true;
		}
	}
	return false;
}

size_t rules_subscriptions(const struct rules *rs, const char ***out)
{
	const char **subs;
	size_t m = 0;

	*out = NULL;
	if (rs->n == 0)
		return 0;
	subs = malloc(rs->n * sizeof(*subs));
	if (subs == NULL)
		return (size_t)-1;
	for (size_t j = 0; j < rs->n; j++) {
		struct rules_sub_ctx c = { rs, j, false };

		if (rs->rules[j].drop)
			continue;
		rtree_walk_covering(rs->tree, rs->rules[j].filter, rules__visit_sub, &c);
		if (!c.covered)
			subs[m++] = rs->rules[j].match;
	}
	if (m == 0) {
		free(subs);
		return 0;
	}
	*out = subs;
	return m;
}

/* ------------------------------------------------------------------------ */
/* -t */

static void rules__print_value(const struct rules_field *h, FILE *out)
{
	switch (h->kind) {
	case RV_STRING:
		fprintf(out, "\"%s\" (string)", h->s);
		break;
	case RV_INT:
		fprintf(out, "%lld (int)", (long long)h->i);
		break;
	case RV_BOOL:
		fprintf(out, "%s (bool)", h->b ? "true" : "false");
		break;
	}
}

void rules_print(const struct rules *rs, FILE *out)
{
	if (rs->n == 0) {
		fprintf(out, "rules: none (every message takes the default route)\n");
		return;
	}
	for (size_t i = 0; i < rs->n; i++) {
		const struct rule *r = &rs->rules[i];

		fprintf(out, "rule %zu (line %d)\n", r->index, r->line);
		if (r->name)
			fprintf(out, "  name:          %s\n", r->name);
		fprintf(out, "  match:         %s\n", r->match);
		if (r->filter != r->match)
			fprintf(out, "  filter:        %s (shared subscription)\n", r->filter);
		if (r->drop) {
			fprintf(out, "  action:        drop\n");
			continue;
		}
		if (r->exchange == NULL)
			fprintf(out, "  exchange:      (main exchange)\n");
		else if (r->exchange_len == 0)
			fprintf(out, "  exchange:      \"\" (AMQP default exchange)\n");
		else
			fprintf(out, "  exchange:      %s\n", r->exchange);
		if (r->routing_key != NULL)
			fprintf(out, "  routing key:   %s\n", r->routing_key);
		else
			fprintf(out, "  routing key:   (default translation)\n");
		if (r->strip_prefix != NULL)
			fprintf(out, "  strip prefix:  \"%s\"\n", r->strip_prefix);
		if (r->key_prefix != NULL)
			fprintf(out, "  key prefix:    \"%s\"\n", r->key_prefix);
		fprintf(out, "  delivery mode: %s\n",
		        r->persistent == RULE_PERSIST_YES ? "persistent" :
		        r->persistent == RULE_PERSIST_NO ? "transient" :
		        "from QoS (QoS 0 transient, QoS 1 persistent)");
		for (size_t k = 0; k < r->n_headers; k++) {
			fprintf(out, "  header:        %s = ", r->headers[k].name);
			rules__print_value(&r->headers[k], out);
			fputc('\n', out);
		}
		fprintf(out, "  continue:      %s\n", r->cont ? "yes (later rules may match too)" : "no");
	}
}
