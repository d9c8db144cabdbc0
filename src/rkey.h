/*
 * rkey: routing key templates.  Compiles a template such as "temp.{1}"
 * into parts, and builds the key of a topic from them.  Pure: no I/O;
 * allocates only while compiling.
 *
 * The placeholders, and how levels are translated, are described in
 * rules.h, whose struct rule holds the compiled parts.
 */
#ifndef BRIDGE_RKEY_H
#define BRIDGE_RKEY_H

#include <stdbool.h>
#include <stddef.h>

#include "topic.h"

/*
 * One part of a compiled template.  The names are those rules.h has always
 * shown its users in struct rule, so they keep its spelling.
 */
enum rule_part_kind { RP_LITERAL, RP_LEVEL, RP_TAIL, RP_TOPIC };

struct rule_part {
	enum rule_part_kind kind;
	char *text;                 /* RP_LITERAL: the text, braces unescaped */
	size_t len;                 /* RP_LITERAL: its length */
	unsigned level;             /* RP_LEVEL: 1 for {1}, ... */
};

/* What a template is checked against: the filter its rule matches. */
struct rkey_filter {
	unsigned n_plus;            /* '+' levels */
	bool has_hash;              /* it ends in '#' */
};

/* Reports a problem of a template: a sentence without a trailing period. */
typedef void rkey_report_fn(void *ctx, const char *msg);

/*
 * Compiles template `tmpl` into *parts (malloc'ed, *n_parts of them),
 * reporting every problem to `report` (not just the first): an unclosed
 * '{', a stray '}', an unknown placeholder, {0}; and, when `f` is not NULL,
 * {N} past the filter's '+' count and {#} without a trailing '#'.  Sets
 * *literal to the bytes of literal text.  Whatever it returns, the caller
 * frees *parts with rkey_free_parts().  Returns 0, or -1 when memory ran
 * out.
 */
int rkey_compile(const char *tmpl, const struct rkey_filter *f, rkey_report_fn *report,
                 void *ctx, struct rule_part **parts, size_t *n_parts, size_t *literal);

void rkey_free_parts(struct rule_part *parts, size_t n_parts);

/*
 * How a rule builds its keys: a view of fields of its struct rule, filled
 * once when the rule is compiled so that a key costs no copying.
 */
struct rkey_rule {
	const char *filter;         /* plain, valid, matching every topic given */
	bool templated;             /* false: the default translation of the topic */
	const struct rule_part *parts;
	size_t n_parts;
	const char *strip_prefix;   /* NULL: none */
	size_t strip_len;
	const char *key_prefix;     /* NULL: none */
	size_t key_prefix_len;
};

/*
 * The routing key for `topic` under `r`, or the default translation when
 * `r` is NULL; the contract of rules_key() in rules.h.
 */
enum topic_result rkey_build(const struct rkey_rule *r, const char *topic, size_t tlen,
                             const char *dot_replacement, char key[TOPIC_KEY_MAX + 1],
                             size_t *klen);

#endif
