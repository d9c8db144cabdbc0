#include "rules.h"

#include <stdarg.h>
#include <stdlib.h>
#include <string.h>

#define RULES_NONE UINT32_MAX
/* Longest message handed to a report callback, NUL included. */
#define RULES_MSG_MAX 1024
/* Bytes of a filter, template or name quoted in a message before "...". */
#define RULES_SHOW_MAX 100
#define SHARE_PREFIX "$share/"
#define SHARE_PREFIX_LEN (sizeof(SHARE_PREFIX) - 1)
/* Lists this short are sorted by insertion, longer ones by heapsort. */
#define RULES_SMALL_SORT 16

/*
 * Rules (0-based indices into rules.lists) whose filter ends at a node,
 * ascending.  Every entry before `nc` has `continue`; the one at `nc` is
 * the first without (nc == n when there is none), and nothing after it can
 * ever be returned by a match.
 */
struct rules_list {
	uint32_t off;
	uint32_t n;
	uint32_t nc;
};

/*
 * A node of the filter tree: the filters whose levels so far lead here.
 * Literal children live in the shared hash table, the '+' child here.
 */
struct rules_node {
	uint32_t plus;              /* RULES_NONE: no '+' child */
	uint32_t n_lit;             /* literal children in the table */
	struct rules_list end;      /* filters that end at this node */
	struct rules_list hash;     /* filters that go on with a last level '#' */
};

/* Levels this long are kept in the table itself, so a lookup reads one place. */
#define RULES_INLINE 16

/* One literal edge of the tree, keyed by (parent, level text). */
struct rules_slot {
	uint32_t hash;
	uint32_t parent;
	uint32_t child;             /* 0: a free slot (the root is nobody's child) */
	uint32_t len;
	union {
		uint64_t in[2];         /* len <= RULES_INLINE: the text, zero-padded */
		const char *out;        /* longer: inside a rule's filter */
	} text;
};

/* A pending step of a walk: node reached, next level of the input at `pos`. */
struct rules_frame {
	uint32_t node;
	uint32_t depth;             /* levels taken to reach it */
	size_t pos;
};

/* A level, found and hashed once: of the topic being matched, or of a filter. */
struct rules_level {
	size_t off;                 /* > the topic's length: there is no such level */
	size_t len;
	uint64_t hash;
	uint64_t w[2];              /* len <= RULES_INLINE: the text, zero-padded */
};

struct rules {
	struct rule *rules;
	size_t n;
	size_t n_cont;
	struct rules_node *nodes;
	size_t n_nodes;
	size_t cap_nodes;
	struct rules_slot *slots;
	size_t slot_mask;           /* slots hold slot_mask + 1 entries */
	size_t n_slots;             /* in use */
	uint32_t *lists;            /* n entries, each rule once */
	uint32_t *scratch;          /* n entries: what a walk collects */
	struct rules_frame *stack;  /* max_depth + 2 frames */
	struct rules_level *levels; /* max_depth + 2 */
	size_t max_depth;
};

/* ------------------------------------------------------------------------ */
/* Levels */

/*
 * Steps over the level of s[0..n) that starts at *pos: sets *lv and *lvlen
 * to it and moves *pos past its '/'.  Returns false once the last level
 * has been taken (*pos is then n + 1).  An empty string has no level.
 */
static bool rules__level(const char *s, size_t n, size_t *pos, const char **lv, size_t *lvlen)
{
	const char *slash;

	if (*pos > n || n == 0)
		return false;
	*lv = s + *pos;
	slash = memchr(*lv, '/', n - *pos);
	*lvlen = slash != NULL ? (size_t)(slash - *lv) : n - *pos;
	*pos += *lvlen + 1;
	return true;
}

static bool rules__is(const char *lv, size_t len, char wild)
{
	return len == 1 && lv[0] == wild;
}

/* The filter proper of a valid match: past a "$share/GROUP/" prefix. */
static const char *rules__filter_of(const char *match)
{
	if (strncmp(match, SHARE_PREFIX, SHARE_PREFIX_LEN) == 0) {
		const char *slash = strchr(match + SHARE_PREFIX_LEN, '/');

		if (slash != NULL)
			return slash + 1;
	}
	return match;
}

/*
 * The MQTT rule that a topic starting with '$' is not matched by a filter
 * whose first level is a wildcard is checked at level 0 only, through
 * `first_dollar` (the topic, or the covered filter, starts with '$').
 */
bool rules_filter_matches(const char *filter, const char *topic, size_t tlen)
{
	size_t flen = strlen(filter), fp = 0, tp = 0;
	bool dollar = tlen > 0 && topic[0] == '$';

	if (tlen == 0 || flen == 0)
		return false;
	for (size_t k = 0;; k++) {
		const char *fl, *tl;
		size_t fn, tn;

		if (!rules__level(filter, flen, &fp, &fl, &fn))
			return !rules__level(topic, tlen, &tp, &tl, &tn);
		if (rules__is(fl, fn, '#'))
			return !(k == 0 && dollar);
		if (!rules__level(topic, tlen, &tp, &tl, &tn))
			return false;
		if (rules__is(fl, fn, '+')) {
			if (k == 0 && dollar)
				return false;
			continue;
		}
		if (fn != tn || memcmp(fl, tl, fn) != 0)
			return false;
	}
}

/*
 * Whether filter `f`, which ends in '#', matches its parent level only with
 * a topic that is not valid: the empty topic, for "#" and "/#".  Then that
 * '#' matches exactly what "+/#" in its place does.
 */
static bool rules__hash_needs_level(const char *f)
{
	return strcmp(f, "#") == 0 || strcmp(f, "/#") == 0;
}

/*
 * Level by level: a '#' in `a` takes whatever is left of `b`; a '+' in `a`
 * takes a literal or a '+'; a literal only the same literal.  A '#' in `b`
 * needs a '#' in `a` at the same place, or "+/#" where the '#' of `b`
 * cannot match its parent level (rules__hash_needs_level()).  A `b`
 * starting with '$' matches only '$' topics, which a first-level wildcard
 * of `a` never does.
 */
bool rules_filter_covers(const char *a, const char *b)
{
	size_t alen = strlen(a), blen = strlen(b), ap = 0, bp = 0;
	bool b_dollar = b[0] == '$';

	for (size_t k = 0;; k++) {
		const char *al, *bl;
		size_t an, bn;
		bool has_a = rules__level(a, alen, &ap, &al, &an);
		bool has_b = rules__level(b, blen, &bp, &bl, &bn);

		if (has_a && rules__is(al, an, '#'))
			return !(k == 0 && b_dollar);
		if (!has_a)
			return !has_b;
		if (!has_b)
			return false;
		if (rules__is(bl, bn, '#'))
			return rules__hash_needs_level(b) && rules__is(al, an, '+') && ap < alen &&
			       strcmp(a + ap, "#") == 0;
		if (rules__is(al, an, '+')) {
			if (k == 0 && b_dollar)
				return false;
			continue;
		}
		if (rules__is(bl, bn, '+'))
			return false;
		if (an != bn || memcmp(al, bl, an) != 0)
			return false;
	}
}

/*
 * Some topic matches both: levels agree pairwise (a wildcard agrees with
 * anything but, at the first level, a literal starting with '$'), and
 * where one filter ends the other either ends too or goes on with '#' --
 * unless the topic both would then match is the empty one: a single
 * level, empty in one of the filters.
 */
bool rules_filters_overlap(const char *a, const char *b)
{
	size_t alen = strlen(a), blen = strlen(b), ap = 0, bp = 0;
	bool a_dollar = a[0] == '$', b_dollar = b[0] == '$';

	for (size_t k = 0;; k++) {
		const char *al, *bl;
		size_t an, bn;
		bool has_a = rules__level(a, alen, &ap, &al, &an);
		bool has_b = rules__level(b, blen, &bp, &bl, &bn);

		if (has_a && rules__is(al, an, '#') && has_b)
			return !(k == 0 && b_dollar);
		if (has_b && rules__is(bl, bn, '#') && has_a)
			return !(k == 0 && a_dollar);
		if (has_a != has_b) {
			bool hash = has_a ? rules__is(al, an, '#') : rules__is(bl, bn, '#');

			return hash && !(k == 1 && (a[0] == '/' || b[0] == '/'));
		}
		if (!has_a)
			return true;
		if (rules__is(al, an, '+')) {
			if (k == 0 && b_dollar)
				return false;
			continue;
		}
		if (rules__is(bl, bn, '+')) {
			if (k == 0 && a_dollar)
				return false;
			continue;
		}
		if (an != bn || memcmp(al, bl, an) != 0)
			return false;
	}
}

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

static int rules__show_len(const char *s)
{
	size_t n = strnlen(s, RULES_SHOW_MAX + 1);

	return (int)(n > RULES_SHOW_MAX ? RULES_SHOW_MAX : n);
}

static const char *rules__ellipsis(const char *s)
{
	return strnlen(s, RULES_SHOW_MAX + 1) > RULES_SHOW_MAX ? "..." : "";
}

/* Arguments for "%.*s%s": a string quoted in a message, cut short if long. */
#define RULES_SHOW(s) rules__show_len(s), (s), rules__ellipsis(s)

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
		             RULES_SHOW(rep->match));
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

	if (strncmp(f, SHARE_PREFIX, SHARE_PREFIX_LEN) == 0) {
		const char *group = f + SHARE_PREFIX_LEN;
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

		if (!rules__level(f, len, &p, &lv, &n))
			break;
		if (rules__is(lv, n, '+'))
			r->n_plus++;
		else if (rules__is(lv, n, '#'))
			r->has_hash = true;
	}
	return true;
}

/* Appends a literal part made of buf[0..*len) and empties the buffer. */
static int rules__flush_literal(struct rule *r, char *buf, size_t *len)
{
	struct rule_part *p;

	if (*len == 0)
		return 0;
	p = &r->parts[r->n_parts];
	p->kind = RP_LITERAL;
	p->text = malloc(*len + 1);
	if (p->text == NULL)
		return -1;
	memcpy(p->text, buf, *len);
	p->text[*len] = '\0';
	p->len = *len;
	r->n_parts++;
	*len = 0;
	return 0;
}

/*
 * Compiles r->routing_key into r->parts, reporting every problem of the
 * template.  Placeholders are checked against the filter only when it is
 * valid (`filter_ok`).  Sets *literal to the bytes of literal text.
 * Returns 0, or -1 when memory ran out.
 */
static int rules__template(struct rule *r, bool filter_ok, struct rules_rep *rep, size_t *literal)
{
	const char *t = r->routing_key;
	size_t tlen = strlen(t), blen = 0;
	char *buf;
	int rc = 0;

	*literal = 0;
	r->parts = calloc(tlen + 1, sizeof(*r->parts));
	buf = malloc(tlen + 1);
	if (r->parts == NULL || buf == NULL) {
		free(buf);
		return -1;
	}
	for (size_t i = 0; i < tlen && rc == 0;) {
		const char *close;
		size_t clen;
		struct rule_part *p;

		if (t[i] == '}') {
			if (t[i + 1] != '}')
				rules__say(rep, "routing_key '%.*s%s': stray '}' at offset %zu (write '}}' for a brace)",
				           RULES_SHOW(t), i);
			else
				buf[blen++] = '}';
			i += t[i + 1] == '}' ? 2 : 1;
			continue;
		}
		if (t[i] != '{') {
			buf[blen++] = t[i++];
			continue;
		}
		if (t[i + 1] == '{') {
			buf[blen++] = '{';
			i += 2;
			continue;
		}
		close = strchr(t + i + 1, '}');
		if (close == NULL) {
			rules__say(rep, "routing_key '%.*s%s': the '{' at offset %zu is never closed",
			           RULES_SHOW(t), i);
			break;
		}
		clen = (size_t)(close - (t + i + 1));
		rc = rules__flush_literal(r, buf, &blen);
		p = &r->parts[r->n_parts];
		if (clen == 1 && t[i + 1] == '#') {
			p->kind = RP_TAIL;
			if (filter_ok && !r->has_hash)
				rules__say(rep, "routing_key: {#} but the filter does not end in '#'");
		} else if (clen == 5 && memcmp(t + i + 1, "topic", 5) == 0) {
			p->kind = RP_TOPIC;
		} else if (clen > 0 && strspn(t + i + 1, "0123456789") == clen) {
			unsigned long v = 0;

			for (size_t k = 0; k < clen && v <= UINT32_MAX; k++)
				v = v * 10 + (unsigned long)(t[i + 1 + k] - '0');
			p->kind = RP_LEVEL;
			p->level = v > UINT32_MAX ? UINT32_MAX : (unsigned)v;
			if (v == 0)
				rules__say(rep, "routing_key: {%.*s}: '+' levels count from {1}", (int)clen,
				           t + i + 1);
			else if (filter_ok && v > r->n_plus)
				rules__say(rep, "routing_key: {%.*s%s} but the filter has %u '+' level%s",
				           clen > 20 ? 20 : (int)clen, t + i + 1, clen > 20 ? "..." : "",
				           r->n_plus, r->n_plus == 1 ? "" : "s");
		} else {
			rules__say(rep, "routing_key '%.*s%s': unknown placeholder '{%.*s%s}' (known: {1}, {2}, ..., "
			           "{#}, {topic}; '{{' and '}}' for braces)", RULES_SHOW(t),
			           clen > 40 ? 40 : (int)clen, t + i + 1, clen > 40 ? "..." : "");
			i += clen + 2;
			continue;
		}
		r->n_parts++;
		i += clen + 2;
	}
	if (rc == 0)
		rc = rules__flush_literal(r, buf, &blen);
	for (size_t k = 0; k < r->n_parts; k++) {
		if (r->parts[k].kind == RP_LITERAL)
			*literal += r->parts[k].len;
	}
	free(buf);
	return rc;
}

/* Checks strip_prefix against the text of the filter before its first wildcard. */
static void rules__check_strip(const struct rule *r, struct rules_rep *rep)
{
	const char *f = r->filter;
	size_t fixed = 0;

	for (size_t p = 0, len = strlen(f), n;;) {
		const char *lv;

		fixed = p > len ? len : p;
		if (!rules__level(f, len, &p, &lv, &n) || rules__is(lv, n, '+') || rules__is(lv, n, '#'))
			break;
	}
	if (r->strip_len > fixed || memcmp(r->strip_prefix, f, r->strip_len) != 0)
		rules__say(rep, "strip_prefix '%.*s%s' does not start every topic the filter accepts "
		           "(it must be a prefix of '%.*s')", RULES_SHOW(r->strip_prefix),
		           fixed > RULES_SHOW_MAX ? RULES_SHOW_MAX : (int)fixed, f);
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
bool rules_is_route_header(const char *name)
{
	return strcmp(name, "CC") == 0 || strcmp(name, "BCC") == 0;
}

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
			           RULES_SHOW(name), nlen);
		else if (rules_is_route_header(name))
			rules__say(rep, "header '%s' is RabbitMQ's list of further routing keys, which "
			           "RabbitMQ refuses as a single value; route with a second rule "
			           "(continue = true) instead", name);
		for (size_t i = 0; i < nlen; i++)
			hash = (hash ^ (unsigned char)name[i]) * 1099511628211u;
		for (slot = (size_t)hash & mask; nlen > 0 && seen[slot] != 0; slot = (slot + 1) & mask) {
			if (strcmp(s->headers[seen[slot] - 1].name, name) == 0) {
				rules__say(rep, "header '%.*s%s' is given twice", RULES_SHOW(name));
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
	if (r->routing_key != NULL && rules__template(r, filter_ok, rep, &literal) < 0)
		return -1;
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
	return rules__headers(r, s, rep);
}

/* ------------------------------------------------------------------------ */
/* The tree */

/*
 * Hashes the level s[0..n) into l (hash and, when short, its text as two
 * zero-padded words, so that a lookup compares words, not bytes).
 */
static void rules__level_hash(const char *s, size_t n, struct rules_level *l)
{
	uint64_t h = 0x9E3779B97F4A7C15ull ^ n, w;

	l->len = n;
	if (n <= RULES_INLINE) {
		unsigned char b[RULES_INLINE] = { 0 };

		for (size_t i = 0; i < n; i++)
			b[i] = (unsigned char)s[i];
		memcpy(l->w, b, sizeof(b));
		h = (h ^ l->w[0]) * 0xFF51AFD7ED558CCDull;
		h = (h ^ (h >> 29) ^ l->w[1]) * 0xC4CEB9FE1A85EC53ull;
		l->hash = h ^ (h >> 29);
		return;
	}
	for (; n >= 8; s += 8, n -= 8) {
		memcpy(&w, s, 8);
		h = (h ^ w) * 0xFF51AFD7ED558CCDull;
		h ^= h >> 29;
	}
	for (w = 0; n > 0; s++, n--)
		w = w << 8 | (unsigned char)*s;
	h = (h ^ w) * 0xC4CEB9FE1A85EC53ull;
	l->hash = h ^ (h >> 29);
}

/* The hash of an edge: a level's hash under a parent node. */
static uint32_t rules__edge_hash(uint64_t level_hash, uint32_t parent)
{
	uint64_t h = (level_hash ^ ((uint64_t)parent * 0x9E3779B97F4A7C15ull)) * 0xFF51AFD7ED558CCDull;

	return (uint32_t)(h >> 32);
}

/* The literal child of `parent` for level `lv` (text at `text`), or RULES_NONE. */
static uint32_t rules__child(const struct rules *rs, uint32_t parent, const char *text,
                             const struct rules_level *lv)
{
	uint32_t h = rules__edge_hash(lv->hash, parent);

	for (size_t i = h & rs->slot_mask;; i = (i + 1) & rs->slot_mask) {
		const struct rules_slot *s = &rs->slots[i];

		if (s->child == 0)
			return RULES_NONE;
		if (s->hash != h || s->parent != parent || s->len != lv->len)
			continue;
		if (lv->len <= RULES_INLINE ? s->text.in[0] == lv->w[0] && s->text.in[1] == lv->w[1] :
		    memcmp(s->text.out, text, lv->len) == 0)
			return s->child;
	}
}

/* A new node; RULES_NONE when memory ran out. */
static uint32_t rules__new_node(struct rules *rs)
{
	if (rs->n_nodes == rs->cap_nodes) {
		size_t cap = rs->cap_nodes * 2;
		struct rules_node *nodes;

		if (cap >= RULES_NONE)
			return RULES_NONE;
		nodes = realloc(rs->nodes, cap * sizeof(*nodes));
		if (nodes == NULL)
			return RULES_NONE;
		rs->nodes = nodes;
		rs->cap_nodes = cap;
	}
	memset(&rs->nodes[rs->n_nodes], 0, sizeof(rs->nodes[0]));
	rs->nodes[rs->n_nodes].plus = RULES_NONE;
	return (uint32_t)rs->n_nodes++;
}

/* Doubles the table once it is half full.  Returns 0 or -1. */
static int rules__grow_slots(struct rules *rs)
{
	size_t cap = (rs->slot_mask + 1) * 2;
	struct rules_slot *slots;

	if ((rs->n_slots + 1) * 2 <= rs->slot_mask + 1)
		return 0;
	slots = calloc(cap, sizeof(*slots));
	if (slots == NULL)
		return -1;
	for (size_t i = 0; i <= rs->slot_mask; i++) {
		const struct rules_slot *s = &rs->slots[i];
		size_t j;

		if (s->child == 0)
			continue;
		for (j = s->hash & (cap - 1); slots[j].child != 0; j = (j + 1) & (cap - 1))
			;
		slots[j] = *s;
	}
	free(rs->slots);
	rs->slots = slots;
	rs->slot_mask = cap - 1;
	return 0;
}

/* The literal child `lv` of `parent`, made if missing; RULES_NONE on no memory. */
static uint32_t rules__add_child(struct rules *rs, uint32_t parent, const char *lv, size_t n)
{
	struct rules_level l;
	uint32_t h, child;
	struct rules_slot *s;
	size_t i;

	rules__level_hash(lv, n, &l);
	h = rules__edge_hash(l.hash, parent);
	child = rules__child(rs, parent, lv, &l);
	if (child != RULES_NONE)
		return child;
	if (n > UINT32_MAX || rules__grow_slots(rs) < 0 || (child = rules__new_node(rs)) == RULES_NONE)
		return RULES_NONE;
	for (i = h & rs->slot_mask; rs->slots[i].child != 0; i = (i + 1) & rs->slot_mask)
		;
	s = &rs->slots[i];
	s->hash = h;
	s->parent = parent;
	s->child = child;
	s->len = (uint32_t)n;
	if (n <= RULES_INLINE)
		memcpy(s->text.in, l.w, sizeof(l.w));
	else
		s->text.out = lv;
	rs->n_slots++;
	rs->nodes[parent].n_lit++;
	return child;
}

/*
 * Puts every filter into the tree and fills the per-node lists, each in
 * rule order.  Returns 0, or -1 when memory ran out.
 */
static int rules__build(struct rules *rs)
{
	uint32_t *at = calloc(rs->n + 1, sizeof(*at));
	uint32_t off = 0;

	rs->cap_nodes = 64;
	rs->nodes = malloc(rs->cap_nodes * sizeof(*rs->nodes));
	rs->slot_mask = 63;
	rs->slots = calloc(rs->slot_mask + 1, sizeof(*rs->slots));
	rs->lists = calloc(rs->n + 1, sizeof(*rs->lists));
	rs->scratch = calloc(rs->n + 1, sizeof(*rs->scratch));
	if (at == NULL || rs->nodes == NULL || rs->slots == NULL || rs->lists == NULL ||
	    rs->scratch == NULL || rules__new_node(rs) != 0)
		goto fail;

	for (size_t i = 0; i < rs->n; i++) {
		const char *f = rs->rules[i].filter;
		size_t len = strlen(f), depth = 0;
		uint32_t v = 0;

		for (size_t p = 0, n;;) {
			const char *lv;

			if (!rules__level(f, len, &p, &lv, &n) || rules__is(lv, n, '#'))
				break;
			if (!rules__is(lv, n, '+')) {
				v = rules__add_child(rs, v, lv, n);
			} else if (rs->nodes[v].plus != RULES_NONE) {
				v = rs->nodes[v].plus;
			} else {
				uint32_t c = rules__new_node(rs);

				if (c != RULES_NONE)
					rs->nodes[v].plus = c;
				v = c;
			}
			if (v == RULES_NONE)
				goto fail;
			depth++;
		}
		at[i] = v;
		if (depth > rs->max_depth)
			rs->max_depth = depth;
		if (rs->rules[i].has_hash)
			rs->nodes[v].hash.n++;
		else
			rs->nodes[v].end.n++;
	}

	for (size_t v = 0; v < rs->n_nodes; v++) {
		struct rules_node *nd = &rs->nodes[v];

		nd->end.off = off;
		off += nd->end.n;
		nd->hash.off = off;
		off += nd->hash.n;
		nd->end.n = nd->hash.n = 0;
	}
	for (size_t i = 0; i < rs->n; i++) {
		struct rules_list *l = rs->rules[i].has_hash ? &rs->nodes[at[i]].hash : &rs->nodes[at[i]].end;

		rs->lists[l->off + l->n] = (uint32_t)i;
		l->n++;
	}
	for (size_t v = 0; v < rs->n_nodes; v++) {
		struct rules_list *ls[2] = { &rs->nodes[v].end, &rs->nodes[v].hash };

		for (size_t k = 0; k < 2; k++) {
			struct rules_list *l = ls[k];

			for (l->nc = 0; l->nc < l->n; l->nc++) {
				if (!rs->rules[rs->lists[l->off + l->nc]].cont)
					break;
			}
		}
	}
	rs->stack = calloc(rs->max_depth + 2, sizeof(*rs->stack));
	rs->levels = calloc(rs->max_depth + 2, sizeof(*rs->levels));
	if (rs->stack == NULL || rs->levels == NULL)
		goto fail;
	free(at);
	return 0;
fail:
	free(at);
	return -1;
}

/* ------------------------------------------------------------------------ */
/* Matching */

/*
 * Takes from list `l` what can still be returned: entries up to the first
 * without `continue`, and none past *best, the smallest such entry seen.
 */
static void rules__take(const struct rules *rs, const struct rules_list *l, uint32_t *best,
                        size_t *m)
{
	const uint32_t *e = rs->lists + l->off;
	uint32_t take = l->nc < l->n ? l->nc + 1 : l->n;

	for (uint32_t k = 0; k < take && e[k] <= *best; k++)
		rs->scratch[(*m)++] = e[k];
	if (l->nc < l->n && e[l->nc] < *best)
		*best = e[l->nc];
}

static void rules__sift(uint32_t *a, size_t root, size_t n)
{
	for (;;) {
		size_t c = 2 * root + 1;
		uint32_t t;

		if (c >= n)
			return;
		if (c + 1 < n && a[c + 1] > a[c])
			c++;
		if (a[root] >= a[c])
			return;
		t = a[root];
		a[root] = a[c];
		a[c] = t;
		root = c;
	}
}

/* Sorts in place without allocating: insertion sort when short, else heapsort. */
static void rules__sort(uint32_t *a, size_t n)
{
	if (n <= RULES_SMALL_SORT) {
		for (size_t i = 1; i < n; i++) {
			uint32_t x = a[i];
			size_t j = i;

			for (; j > 0 && a[j - 1] > x; j--)
				a[j] = a[j - 1];
			a[j] = x;
		}
		return;
	}
	for (size_t i = n / 2; i-- > 0;)
		rules__sift(a, i, n);
	for (size_t i = n; i-- > 1;) {
		uint32_t t = a[0];

		a[0] = a[i];
		a[i] = t;
		rules__sift(a, 0, i);
	}
}

/*
 * Level d of the topic, found and hashed on first use in this match (a
 * walk reaches depth d only through depth d - 1, so levels are found in
 * order; *known counts them).  NULL when the topic has only d levels.
 */
static const struct rules_level *rules__topic_level(const struct rules *rs, const char *topic,
                                                    size_t tlen, size_t d, size_t *known)
{
	struct rules_level *lv = rs->levels;

	while (*known <= d) {
		struct rules_level *l = &lv[*known];
		size_t end = l->off;

		if (l->off > tlen)
			return NULL;
		/* Levels are short: a plain loop beats a call to memchr(). */
		while (end < tlen && topic[end] != '/')
			end++;
		rules__level_hash(topic + l->off, end - l->off, l);
		lv[*known + 1].off = l->off + l->len + 1;
		(*known)++;
	}
	return &lv[d];
}

/*
 * A depth-first walk over the literal and '+' branches, level by level.
 * Each node is reached by one path only, so each rule is collected at most
 * once and the scratch (n entries) and the stack (one pending frame per
 * depth, plus one) cannot overflow.
 */
size_t rules_match(const struct rules *rs, const char *topic, size_t tlen,
                   const struct rule **out, size_t max)
{
	struct rules_frame *stack = rs->stack;
	uint32_t best = RULES_NONE;
	size_t sp = 0, m = 0, w = 0, keep = 0, known = 0;
	bool dollar;

	if (rs->n == 0 || tlen == 0 || max == 0)
		return 0;
	dollar = topic[0] == '$';
	rs->levels[0].off = 0;
	stack[sp++] = (struct rules_frame){ 0, 0, 0 };
	while (sp > 0) {
		struct rules_frame f = stack[--sp];
		const struct rules_node *nd = &rs->nodes[f.node];
		bool root_dollar = f.node == 0 && dollar;
		const struct rules_level *lv;

		if (!root_dollar)
			rules__take(rs, &nd->hash, &best, &m);
		if (nd->end.n == 0 && nd->n_lit == 0 && nd->plus == RULES_NONE)
			continue;
		lv = rules__topic_level(rs, topic, tlen, f.depth, &known);
		if (lv == NULL) {
			rules__take(rs, &nd->end, &best, &m);
			continue;
		}
		if (nd->n_lit > 0) {
			uint32_t c = rules__child(rs, f.node, topic + lv->off, lv);

			if (c != RULES_NONE) {
				/* Read while the '+' branch, pushed next, is walked first. */
				__builtin_prefetch(&rs->nodes[c]);
				stack[sp++] = (struct rules_frame){ c, f.depth + 1, 0 };
			}
		}
		if (nd->plus != RULES_NONE && !root_dollar)
			stack[sp++] = (struct rules_frame){ nd->plus, f.depth + 1, 0 };
	}
	for (size_t k = 0; k < m; k++) {
		if (rs->scratch[k] <= best)
			rs->scratch[keep++] = rs->scratch[k];
	}
	rules__sort(rs->scratch, keep);
	for (size_t k = 0; k < keep && w < max; k++)
		out[w++] = &rs->rules[rs->scratch[k]];
	return w;
}

/* Called with each list of rules whose filters cover the one walked; true stops the walk. */
typedef bool rules_visit_fn(void *ctx, const struct rules *rs, const struct rules_list *l);

/*
 * Visits the lists of every rule whose filter covers `filter` (a valid
 * plain filter) in the sense of rules_filter_covers(): the walk of
 * rules_match(), with a '+' of `filter` following only '+' branches and a
 * '#' taking only '#' lists.  Returns true when `visit` stopped it.
 */
static bool rules__walk_covering(const struct rules *rs, const char *filter, rules_visit_fn *visit,
                                 void *ctx)
{
	struct rules_frame *stack = rs->stack;
	size_t sp = 0, flen = strlen(filter);
	bool dollar = filter[0] == '$';

	stack[sp++] = (struct rules_frame){ 0, 0, 0 };
	while (sp > 0) {
		struct rules_frame f = stack[--sp];
		const struct rules_node *nd = &rs->nodes[f.node];
		bool root_dollar = f.node == 0 && dollar;
		const char *lv;
		size_t n;

		if (!root_dollar && nd->hash.n > 0 && visit(ctx, rs, &nd->hash))
			return true;
		if (!rules__level(filter, flen, &f.pos, &lv, &n)) {
			if (nd->end.n > 0 && visit(ctx, rs, &nd->end))
				return true;
			continue;
		}
		if (rules__is(lv, n, '#')) {
			if (rules__hash_needs_level(filter) && nd->plus != RULES_NONE &&
			    rs->nodes[nd->plus].hash.n > 0 &&
			    visit(ctx, rs, &rs->nodes[nd->plus].hash))
				return true;
			continue;
		}
		if (!rules__is(lv, n, '+') && nd->n_lit > 0) {
			struct rules_level l;
			uint32_t c;

			rules__level_hash(lv, n, &l);
			c = rules__child(rs, f.node, lv, &l);

			if (c != RULES_NONE)
				stack[sp++] = (struct rules_frame){ c, f.depth + 1, f.pos };
		}
		if (nd->plus != RULES_NONE && !root_dollar)
			stack[sp++] = (struct rules_frame){ nd->plus, f.depth + 1, f.pos };
	}
	return false;
}

/* The earliest rule without `continue` among those visited. */
static bool rules__visit_shadow(void *ctx, const struct rules *rs, const struct rules_list *l)
{
	uint32_t *best = ctx;

	if (l->nc < l->n && rs->lists[l->off + l->nc] < *best)
		*best = rs->lists[l->off + l->nc];
	return false;
}

/* Warns about rules an earlier rule without `continue` hides entirely. */
static void rules__warn_shadowed(const struct rules *rs, rules_report_fn *warning, void *arg)
{
	for (size_t j = 0; j < rs->n; j++) {
		const struct rule *r = &rs->rules[j];
		struct rules_rep rep = { warning, arg, j + 1, r->line, r->match, 0 };
		uint32_t best = RULES_NONE;
		const struct rule *by;

		rules__walk_covering(rs, r->filter, rules__visit_shadow, &best);
		if (best >= j)
			continue;
		by = &rs->rules[best];
		rules__say(&rep, "can never match: rule %zu (match '%.*s%s', line %d) matches every topic "
		           "it does and has no continue", by->index, RULES_SHOW(by->match), by->line);
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
			    rules_filters_overlap(rules__filter_of(subscribe[k]), r->filter))
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
	free(r->exchange);
	free(r->routing_key);
	for (size_t k = 0; k < r->n_parts; k++)
		free(r->parts[k].text);
	free(r->parts);
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
	free(rs->nodes);
	free(rs->slots);
	free(rs->lists);
	free(rs->scratch);
	free(rs->stack);
	free(rs->levels);
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
	if (rs == NULL || n >= RULES_NONE / 2)
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
		errors += rep.count;
		if (specs[i].cont)
			rs->n_cont++;
	}
	if (errors > 0) {
		rules_free(rs);
		return NULL;
	}
	if (rules__build(rs) < 0)
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

struct rules_key_buf {
	char *buf;
	size_t len;
	size_t need;                /* the length of the whole key, written or not */
	bool over;
};

static void rules__put(struct rules_key_buf *k, const char *s, size_t n)
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
static void rules__put_translated(struct rules_key_buf *k, const char *t, size_t n, const char *repl)
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
static void rules__span(const char *filter, const char *topic, size_t tlen, unsigned want,
                        size_t *off, size_t *len)
{
	size_t flen = strlen(filter), fp = 0, tp = 0, fn, tn;
	unsigned plus = 0;
	const char *fl, *tl;

	*off = *len = 0;
	while (rules__level(filter, flen, &fp, &fl, &fn)) {
		if (rules__is(fl, fn, '#')) {
			if (want == 0 && tp <= tlen) {
				*off = tp;
				*len = tlen - tp;
			}
			return;
		}
		if (!rules__level(topic, tlen, &tp, &tl, &tn))
			return;
		if (rules__is(fl, fn, '+') && ++plus == want) {
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
enum topic_result rules_key(const struct rule *r, const char *topic, size_t tlen,
                            const char *dot_replacement, char key[TOPIC_KEY_MAX + 1],
                            size_t *klen)
{
	struct rules_key_buf k = { key, 0, 0, false };
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
	rules__put(&k, r->key_prefix, r->key_prefix_len);
	if (r->routing_key == NULL)
		rules__put_translated(&k, st, stlen, dot_replacement);
	for (size_t p = 0; p < r->n_parts; p++) {
		const struct rule_part *part = &r->parts[p];
		size_t off, len;

		switch (part->kind) {
		case RP_LITERAL:
			rules__put(&k, part->text, part->len);
			break;
		case RP_LEVEL:
		case RP_TAIL:
			rules__span(r->filter, topic, tlen, part->kind == RP_LEVEL ? part->level : 0, &off,
			            &len);
			rules__put_translated(&k, topic + off, len, dot_replacement);
			break;
		case RP_TOPIC:
			rules__put_translated(&k, st, stlen, dot_replacement);
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

/* ------------------------------------------------------------------------ */
/* Subscriptions */

struct rules_sub_ctx {
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
static bool rules__visit_sub(void *ctx, const struct rules *rs, const struct rules_list *l)
{
	struct rules_sub_ctx *c = ctx;
	const struct rule *rj = &rs->rules[c->j];

	for (uint32_t k = 0; k < l->n; k++) {
		uint32_t i = rs->lists[l->off + k];
		const struct rule *ri = &rs->rules[i];

		if (i == c->j || ri->drop || !rules__same_share(ri, rj))
			continue;
		if (i < c->j || !rules_filter_covers(rj->filter, ri->filter)) {
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
		struct rules_sub_ctx c = { j, false };

		if (rs->rules[j].drop)
			continue;
		rules__walk_covering(rs, rs->rules[j].filter, rules__visit_sub, &c);
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
