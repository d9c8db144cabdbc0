#include "rtree.h"

#include <stdlib.h>
#include <string.h>

#include "filter.h"

/* Lists this short are sorted by insertion, longer ones by heapsort. */
#define RTREE_SMALL_SORT 16
/* Levels this long are kept in the table itself, so a lookup reads one place. */
#define RTREE_INLINE 16

/* What rtree_add() learns of a filter, kept until rtree_finish(). */
#define RTREE_F_HASH 1          /* it ends in '#' */
#define RTREE_F_CONT 2

/*
 * Filters (indices into rtree.lists) that end at a node, ascending.  Every
 * entry before `nc` has `cont`; the one at `nc` is the first without
 * (nc == n when there is none), and nothing after it can ever be returned
 * by a match.
 */
struct rtree_list {
	uint32_t off;
	uint32_t n;
	uint32_t nc;
};

/*
 * A node of the tree: the filters whose levels so far lead here.  Literal
 * children live in the shared hash table, the '+' child here.
 */
struct rtree_node {
	uint32_t plus;              /* RTREE_NONE: no '+' child */
	uint32_t n_lit;             /* literal children in the table */
	struct rtree_list end;      /* filters that end at this node */
	struct rtree_list hash;     /* filters that go on with a last level '#' */
};

/* One literal edge of the tree, keyed by (parent, level text). */
struct rtree_slot {
	uint32_t hash;
	uint32_t parent;
	uint32_t child;             /* 0: a free slot (the root is nobody's child) */
	uint32_t len;
	union {
		uint64_t in[2];         /* len <= RTREE_INLINE: the text, zero-padded */
		const char *out;        /* longer: inside a filter */
	} text;
};

/* A pending step of a walk: node reached, next level of the input at `pos`. */
struct rtree_frame {
	uint32_t node;
	uint32_t depth;             /* levels taken to reach it */
	size_t pos;
};

/* A level, found and hashed once: of the topic being matched, or of a filter. */
struct rtree_level {
	size_t off;                 /* > the topic's length: there is no such level */
	size_t len;
	uint64_t hash;
	uint64_t w[2];              /* len <= RTREE_INLINE: the text, zero-padded */
};

struct rtree {
	size_t cap;                 /* filters rtree_new() made room for */
	size_t n;                   /* filters added */
	struct rtree_node *nodes;
	size_t n_nodes;
	size_t cap_nodes;
	struct rtree_slot *slots;
	size_t slot_mask;           /* slots hold slot_mask + 1 entries */
	size_t n_slots;             /* in use */
	uint32_t *lists;            /* n entries, each filter once */
	uint32_t *scratch;          /* n entries: what a walk collects */
	struct rtree_frame *stack;  /* max_depth + 2 frames */
	struct rtree_level *levels; /* max_depth + 2 */
	size_t max_depth;
	uint32_t *at;               /* while building: the node each filter ends at */
	unsigned char *flags;       /* while building: RTREE_F_* of each filter */
};

/* ------------------------------------------------------------------------ */
/* Building */

/*
 * Hashes the level s[0..n) into l (hash and, when short, its text as two
 * zero-padded words, so that a lookup compares words, not bytes).
 */
static void rtree__level_hash(const char *s, size_t n, struct rtree_level *l)
{
	uint64_t h = 0x9E3779B97F4A7C15ull ^ n, w;

	l->len = n;
	if (n <= RTREE_INLINE) {
		unsigned char b[RTREE_INLINE] = { 0 };

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
static uint32_t rtree__edge_hash(uint64_t level_hash, uint32_t parent)
{
	uint64_t h = (level_hash ^ ((uint64_t)parent * 0x9E3779B97F4A7C15ull)) * 0xFF51AFD7ED558CCDull;

	return (uint32_t)(h >> 32);
}

/* The literal child of `parent` for level `lv` (text at `text`), or RTREE_NONE. */
static uint32_t rtree__child(const struct rtree *t, uint32_t parent, const char *text,
                             const struct rtree_level *lv)
{
	uint32_t h = rtree__edge_hash(lv->hash, parent);

	for (size_t i = h & t->slot_mask;; i = (i + 1) & t->slot_mask) {
		const struct rtree_slot *s = &t->slots[i];

		if (s->child == 0)
			return RTREE_NONE;
		if (s->hash != h || s->parent != parent || s->len != lv->len)
			continue;
		if (lv->len <= RTREE_INLINE ? s->text.in[0] == lv->w[0] && s->text.in[1] == lv->w[1] :
		    memcmp(s->text.out, text, lv->len) == 0)
			return s->child;
	}
}

/* A new node; RTREE_NONE when memory ran out. */
static uint32_t rtree__new_node(struct rtree *t)
{
	if (t->n_nodes == t->cap_nodes) {
		size_t cap = t->cap_nodes * 2;
		struct rtree_node *nodes;

		if (cap >= RTREE_NONE)
			return RTREE_NONE;
		nodes = realloc(t->nodes, cap * sizeof(*nodes));
		if (nodes == NULL)
			return RTREE_NONE;
		t->nodes = nodes;
		t->cap_nodes = cap;
	}
	memset(&t->nodes[t->n_nodes], 0, sizeof(t->nodes[0]));
	t->nodes[t->n_nodes].plus = RTREE_NONE;
	return (uint32_t)t->n_nodes++;
}

/* Doubles the table once it is half full.  Returns 0 or -1. */
static int rtree__grow_slots(struct rtree *t)
{
	size_t cap = (t->slot_mask + 1) * 2;
	struct rtree_slot *slots;

	if ((t->n_slots + 1) * 2 <= t->slot_mask + 1)
		return 0;
	slots = calloc(cap, sizeof(*slots));
	if (slots == NULL)
		return -1;
	for (size_t i = 0; i <= t->slot_mask; i++) {
		const struct rtree_slot *s = &t->slots[i];
		size_t j;

		if (s->child == 0)
			continue;
		for (j = s->hash & (cap - 1); slots[j].child != 0; j = (j + 1) & (cap - 1))
			;
		slots[j] = *s;
	}
	free(t->slots);
	t->slots = slots;
	t->slot_mask = cap - 1;
	return 0;
}

/* The literal child `lv` of `parent`, made if missing; RTREE_NONE on no memory. */
static uint32_t rtree__add_child(struct rtree *t, uint32_t parent, const char *lv, size_t n)
{
	struct rtree_level l;
	uint32_t h, child;
	struct rtree_slot *s;
	size_t i;

	rtree__level_hash(lv, n, &l);
	h = rtree__edge_hash(l.hash, parent);
	child = rtree__child(t, parent, lv, &l);
	if (child != RTREE_NONE)
		return child;
	if (n > UINT32_MAX || rtree__grow_slots(t) < 0 || (child = rtree__new_node(t)) == RTREE_NONE)
		return RTREE_NONE;
	for (i = h & t->slot_mask; t->slots[i].child != 0; i = (i + 1) & t->slot_mask)
		;
	s = &t->slots[i];
	s->hash = h;
	s->parent = parent;
	s->child = child;
	s->len = (uint32_t)n;
	if (n <= RTREE_INLINE)
		memcpy(s->text.in, l.w, sizeof(l.w));
	else
		s->text.out = lv;
	t->n_slots++;
	t->nodes[parent].n_lit++;
	return child;
}

struct rtree *rtree_new(size_t n)
{
	struct rtree *t = calloc(1, sizeof(*t));

	if (t == NULL || n >= RTREE_MAX)
		goto fail;
	t->cap = n;
	t->cap_nodes = 64;
	t->nodes = malloc(t->cap_nodes * sizeof(*t->nodes));
	t->slot_mask = 63;
	t->slots = calloc(t->slot_mask + 1, sizeof(*t->slots));
	t->lists = calloc(n + 1, sizeof(*t->lists));
	t->scratch = calloc(n + 1, sizeof(*t->scratch));
	t->at = calloc(n + 1, sizeof(*t->at));
	t->flags = calloc(n + 1, sizeof(*t->flags));
	if (t->nodes == NULL || t->slots == NULL || t->lists == NULL || t->scratch == NULL ||
	    t->at == NULL || t->flags == NULL || rtree__new_node(t) != 0)
		goto fail;
	return t;
fail:
	rtree_free(t);
	return NULL;
}

/* Walks the filter's levels down from the root, making the nodes it lacks. */
int rtree_add(struct rtree *t, const char *filter, bool cont)
{
	size_t len = strlen(filter), depth = 0;
	uint32_t v = 0;
	bool hash = false;

	if (t->n >= t->cap)
		return -1;
	for (size_t p = 0, n;;) {
		const char *lv;

		if (!filter_level(filter, len, &p, &lv, &n))
			break;
		if (filter_is(lv, n, '#')) {
			hash = true;
			break;
		}
		if (!filter_is(lv, n, '+')) {
			v = rtree__add_child(t, v, lv, n);
		} else if (t->nodes[v].plus != RTREE_NONE) {
			v = t->nodes[v].plus;
		} else {
			uint32_t c = rtree__new_node(t);

			if (c != RTREE_NONE)
				t->nodes[v].plus = c;
			v = c;
		}
		if (v == RTREE_NONE)
			return -1;
		depth++;
	}
	t->at[t->n] = v;
	t->flags[t->n] = (unsigned char)((hash ? RTREE_F_HASH : 0) | (cont ? RTREE_F_CONT : 0));
	t->n++;
	if (depth > t->max_depth)
		t->max_depth = depth;
	if (hash)
		t->nodes[v].hash.n++;
	else
		t->nodes[v].end.n++;
	return 0;
}

/* Fills the per-node lists, each in the order the filters were added. */
int rtree_finish(struct rtree *t)
{
	uint32_t off = 0;

	for (size_t v = 0; v < t->n_nodes; v++) {
		struct rtree_node *nd = &t->nodes[v];

		nd->end.off = off;
		off += nd->end.n;
		nd->hash.off = off;
		off += nd->hash.n;
		nd->end.n = nd->hash.n = 0;
	}
	for (size_t i = 0; i < t->n; i++) {
		struct rtree_node *nd = &t->nodes[t->at[i]];
		struct rtree_list *l = t->flags[i] & RTREE_F_HASH ? &nd->hash : &nd->end;

		t->lists[l->off + l->n] = (uint32_t)i;
		l->n++;
	}
	for (size_t v = 0; v < t->n_nodes; v++) {
		struct rtree_list *ls[2] = { &t->nodes[v].end, &t->nodes[v].hash };

		for (size_t k = 0; k < 2; k++) {
			struct rtree_list *l = ls[k];

			for (l->nc = 0; l->nc < l->n; l->nc++) {
				if (!(t->flags[t->lists[l->off + l->nc]] & RTREE_F_CONT))
					break;
			}
		}
	}
	free(t->at);
	free(t->flags);
	t->at = NULL;
	t->flags = NULL;
	t->stack = calloc(t->max_depth + 2, sizeof(*t->stack));
	t->levels = calloc(t->max_depth + 2, sizeof(*t->levels));
	if (t->stack == NULL || t->levels == NULL)
		return -1;
	return 0;
}

void rtree_free(struct rtree *t)
{
	if (t == NULL)
		return;
	free(t->nodes);
	free(t->slots);
	free(t->lists);
	free(t->scratch);
	free(t->stack);
	free(t->levels);
	free(t->at);
	free(t->flags);
	free(t);
}

/* ------------------------------------------------------------------------ */
/* Matching */

/*
 * Takes from list `l` what can still be returned: entries up to the first
 * without `cont`, and none past *best, the smallest such entry seen.
 */
static void rtree__take(const struct rtree *t, const struct rtree_list *l, uint32_t *best,
                        size_t *m)
{
	const uint32_t *e = t->lists + l->off;
	uint32_t take = l->nc < l->n ? l->nc + 1 : l->n;

	for (uint32_t k = 0; k < take && e[k] <= *best; k++)
		t->scratch[(*m)++] = e[k];
	if (l->nc < l->n && e[l->nc] < *best)
		*best = e[l->nc];
}

static void rtree__sift(uint32_t *a, size_t root, size_t n)
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
static void rtree__sort(uint32_t *a, size_t n)
{
	if (n <= RTREE_SMALL_SORT) {
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
		rtree__sift(a, i, n);
	for (size_t i = n; i-- > 1;) {
		uint32_t t = a[0];

		a[0] = a[i];
		a[i] = t;
		rtree__sift(a, 0, i);
	}
}

/*
 * Level d of the topic, found and hashed on first use in this match (a
 * walk reaches depth d only through depth d - 1, so levels are found in
 * order; *known counts them).  NULL when the topic has only d levels.
 */
static const struct rtree_level *rtree__topic_level(const struct rtree *t, const char *topic,
                                                    size_t tlen, size_t d, size_t *known)
{
	struct rtree_level *lv = t->levels;

	while (*known <= d) {
		struct rtree_level *l = &lv[*known];
		size_t end = l->off;

		if (l->off > tlen)
			return NULL;
		/* Levels are short: a plain loop beats a call to memchr(). */
		while (end < tlen && topic[end] != '/')
			end++;
		rtree__level_hash(topic + l->off, end - l->off, l);
		lv[*known + 1].off = l->off + l->len + 1;
		(*known)++;
	}
	return &lv[d];
}

/*
 * A depth-first walk over the literal and '+' branches, level by level.
 * Each node is reached by one path only, so each filter is collected at
 * most once and the scratch (n entries) and the stack (one pending frame
 * per depth, plus one) cannot overflow.
 */
size_t rtree_match(const struct rtree *t, const char *topic, size_t tlen, const uint32_t **ids)
{
	struct rtree_frame *stack = t->stack;
	uint32_t best = RTREE_NONE;
	size_t sp = 0, m = 0, keep = 0, known = 0;
	bool dollar;

	*ids = t->scratch;
	if (t->n == 0 || tlen == 0)
		return 0;
	dollar = topic[0] == '$';
	t->levels[0].off = 0;
	stack[sp++] = (struct rtree_frame){ 0, 0, 0 };
	while (sp > 0) {
		struct rtree_frame f = stack[--sp];
		const struct rtree_node *nd = &t->nodes[f.node];
		bool root_dollar = f.node == 0 && dollar;
		const struct rtree_level *lv;

		if (!root_dollar)
			rtree__take(t, &nd->hash, &best, &m);
		if (nd->end.n == 0 && nd->n_lit == 0 && nd->plus == RTREE_NONE)
			continue;
		lv = rtree__topic_level(t, topic, tlen, f.depth, &known);
		if (lv == NULL) {
			rtree__take(t, &nd->end, &best, &m);
			continue;
		}
		if (nd->n_lit > 0) {
			uint32_t c = rtree__child(t, f.node, topic + lv->off, lv);

			if (c != RTREE_NONE) {
				/* Read while the '+' branch, pushed next, is walked first. */
				__builtin_prefetch(&t->nodes[c]);
				stack[sp++] = (struct rtree_frame){ c, f.depth + 1, 0 };
			}
		}
		if (nd->plus != RTREE_NONE && !root_dollar)
			stack[sp++] = (struct rtree_frame){ nd->plus, f.depth + 1, 0 };
	}
	for (size_t k = 0; k < m; k++) {
		if (t->scratch[k] <= best)
			t->scratch[keep++] = t->scratch[k];
	}
	rtree__sort(t->scratch, keep);
	return keep;
}

/*
 * The walk of rtree_match(), with a '+' of `filter` following only '+'
 * branches and a '#' taking only '#' lists.
 */
bool rtree_walk_covering(const struct rtree *t, const char *filter, rtree_visit_fn *visit,
                         void *ctx)
{
	struct rtree_frame *stack = t->stack;
	size_t sp = 0, flen = strlen(filter);
	bool dollar = filter[0] == '$';

	stack[sp++] = (struct rtree_frame){ 0, 0, 0 };
	while (sp > 0) {
		struct rtree_frame f = stack[--sp];
		const struct rtree_node *nd = &t->nodes[f.node];
		const struct rtree_list *pl;
		bool root_dollar = f.node == 0 && dollar;
		const char *lv;
		size_t n;

		if (!root_dollar && nd->hash.n > 0 &&
		    visit(ctx, t->lists + nd->hash.off, nd->hash.n, nd->hash.nc))
			return true;
		if (!filter_level(filter, flen, &f.pos, &lv, &n)) {
			if (nd->end.n > 0 && visit(ctx, t->lists + nd->end.off, nd->end.n, nd->end.nc))
				return true;
			continue;
		}
		if (filter_is(lv, n, '#')) {
			if (filter_hash_needs_level(filter) && nd->plus != RTREE_NONE) {
				pl = &t->nodes[nd->plus].hash;
				if (pl->n > 0 && visit(ctx, t->lists + pl->off, pl->n, pl->nc))
					return true;
			}
			continue;
		}
		if (!filter_is(lv, n, '+') && nd->n_lit > 0) {
			struct rtree_level l;
			uint32_t c;

			rtree__level_hash(lv, n, &l);
			c = rtree__child(t, f.node, lv, &l);

			if (c != RTREE_NONE)
				stack[sp++] = (struct rtree_frame){ c, f.depth + 1, f.pos };
		}
		if (nd->plus != RTREE_NONE && !root_dollar)
			stack[sp++] = (struct rtree_frame){ nd->plus, f.depth + 1, f.pos };
	}
	return false;
}
