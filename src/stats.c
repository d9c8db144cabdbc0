#include "stats.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "rules.h"

static const char *const dead_names[STATS_DEAD_N] = {
	[STATS_DEAD_INVALID_TOPIC] = "invalid-topic",
	[STATS_DEAD_TOO_LARGE] = "too-large",
	[STATS_DEAD_KEY_TOO_LONG] = "routing-key-too-long",
	[STATS_DEAD_PROPS_TOO_LARGE] = "properties-too-large",
	[STATS_DEAD_POISON] = "poison",
	[STATS_DEAD_UNROUTABLE] = "unroutable",
};

static const char *const drop_names[STATS_DROP_N] = {
	[STATS_DROP_RULE] = "drop_rule",
	[STATS_DROP_UNMATCHED] = "unmatched",
	[STATS_DROP_UNDELIVERABLE] = "undeliverable",
};

const char *stats_dead_name(enum stats_dead d)
{
	return dead_names[d];
}

const char *stats_drop_name(enum stats_drop d)
{
	return drop_names[d];
}

enum stats_dead stats_dead_index(const char *reason)
{
	for (int i = 0; i < STATS_DEAD_N; i++)
		if (strcmp(reason, dead_names[i]) == 0)
			return (enum stats_dead)i;
	return STATS_DEAD_N;
}

uint64_t stats_forwarded(const struct stats *s)
{
	uint64_t n = 0;

	for (size_t i = 0; i < s->n_ex; i++)
		n += s->ex[i].forwarded;
	return n;
}

uint64_t stats_dropped(const struct stats *s)
{
	uint64_t n = 0;

	for (int i = 0; i < STATS_DROP_N; i++)
		n += s->drops[i];
	return n;
}

void stats_init(struct stats *s)
{
	memset(s, 0, sizeof(*s));
	s->last_reload_ok = true;
}

static void stats_free_rules(struct stats_rule *r, size_t n)
{
	for (size_t i = 0; i < n; i++)
		free(r[i].label);
	free(r);
}

void stats_fini(struct stats *s)
{
	for (size_t i = 0; i < s->n_ex; i++)
		free(s->ex[i].name);
	free(s->ex);
	stats_free_rules(s->rules, s->n_rules);
	free(s->holdq.at_us);
	memset(s, 0, sizeof(*s));
}

int stats_exchange(struct stats *s, const char *name)
{
	for (size_t i = 0; i < s->n_ex; i++)
		if (strcmp(s->ex[i].name, name) == 0)
			return (int)i;
	if (s->n_ex == s->cap_ex) {
		size_t cap = s->cap_ex ? 2 * s->cap_ex : 8;
		struct stats_exchange *ex = realloc(s->ex, cap * sizeof(*ex));

		if (!ex)
			return -1;
		s->ex = ex;
		s->cap_ex = cap;
	}
	s->ex[s->n_ex].name = strdup(name);
	if (!s->ex[s->n_ex].name)
		return -1;
	s->ex[s->n_ex].forwarded = 0;
	return (int)s->n_ex++;
}

int stats_set_rules(struct stats *s, const struct rules *rs)
{
	size_t n = rules_count(rs);
	struct stats_rule *r = calloc(n ? n : 1, sizeof(*r));

	if (!r)
		return -1;
	for (size_t i = 0; i < n; i++) {
		const struct rule *rule = rules_at(rs, i);
		char line[64];

		snprintf(line, sizeof(line), "line %d", rule->line);
		/* Two rules written on one line: the second says which it is. */
		for (size_t j = 0; !rule->name && j < i; j++)
			if (strcmp(r[j].label, line) == 0)
				snprintf(line, sizeof(line), "line %d, rule %zu", rule->line, i + 1);
		r[i].label = strdup(rule->name ? rule->name : line);
		if (!r[i].label) {
			stats_free_rules(r, n);
			return -1;
		}
		/* The same label is the same rule: its count goes on. */
		for (size_t j = 0; j < s->n_rules; j++) {
			if (strcmp(s->rules[j].label, r[i].label) == 0) {
				r[i].matches = s->rules[j].matches;
				break;
			}
		}
	}
	stats_free_rules(s->rules, s->n_rules);
	s->rules = r;
	s->n_rules = n;
	return 0;
}

int stats_holdq_reserve(struct stats *s, uint64_t n)
{
	struct stats_holdq *q = &s->holdq;
	uint64_t size = 16, *at;

	while (size < n)
		size *= 2;
	if (q->at_us && size <= q->mask + 1)
		return 0;
	at = calloc(size, sizeof(*at));
	if (!at)
		return -1;
	/* Kept in order: the oldest first. */
	for (uint64_t i = 0; q->at_us && q->head + i < q->tail; i++)
		at[i] = q->at_us[(q->head + i) & q->mask];
	q->tail -= q->head;
	q->head = 0;
	free(q->at_us);
	q->at_us = at;
	q->mask = size - 1;
	return 0;
}

void stats_flushed_at(struct stats *s, uint64_t now_us)
{
	struct stats_holdq *q = &s->holdq;

	for (; q->head < q->tail; q->head++) {
		uint64_t at = q->at_us[q->head & q->mask];

		hist_observe_us(&s->hold, now_us > at ? now_us - at : 0);
	}
}
