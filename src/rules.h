/*
 * rules: the mapping rules, compiled.  Pure: no I/O except rules_print().
 *
 * A rule matches an MQTT topic filter and says where a matching message
 * goes: an exchange, a routing key built from a template, static headers,
 * a delivery-mode override, or nowhere (drop).  Rules are ordered; the
 * first match wins, unless it says `continue`, in which case later rules
 * are tried too (one message, several copies).
 *
 * The filters are compiled into a tree over topic levels, so matching a
 * topic costs time in proportion to its number of levels (and to the rules
 * that do match), not to the number of rules.
 *
 * Routing key templates hold literal text and placeholders:
 *   {1}, {2}, ...  the topic level matched by the 1st, 2nd, ... '+'
 *   {#}            the levels matched by the trailing '#', joined by '.'
 *                  (empty when '#' matched the parent level itself)
 *   {topic}        the whole topic, after strip_prefix, translated
 *   {{ and }}      a literal '{' and '}'
 * Levels are translated as the default translation translates them (a '.'
 * inside a level becomes bridge.dot_replacement).  key_prefix, literal,
 * goes before the result.  Without a template the key is the default
 * translation of the topic after strip_prefix.
 *
 * A match of the form "$share/GROUP/FILTER" (an MQTT 5 shared
 * subscription) subscribes as written and matches topics against FILTER.
 */
#ifndef BRIDGE_RULES_H
#define BRIDGE_RULES_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>

#include "field.h"     /* struct rules_field */
#include "rkey.h"      /* struct rule_part, struct rkey_rule */
#include "topic.h"

/* One rule as the configuration gives it.  rules_compile() copies what it keeps. */
struct rule_spec {
	int line;                   /* of the rule in the file, for messages */
	const char *name;           /* NULL: none; names the rule's metrics and messages */
	const char *match;          /* MQTT topic filter; required */
	const char *exchange;       /* NULL: the main exchange (amqp.exchange) */
	const char *routing_key;    /* template; NULL: the default translation */
	const char *strip_prefix;   /* NULL: none; a prefix every matching topic starts with */
	const char *key_prefix;     /* NULL: none; literal text put before the key */
	bool drop;                  /* discard matching messages (counted) */
	bool cont;                  /* `continue`: later rules may match too */
	enum rule_persist persistent;
	const struct rules_field *headers;
	size_t n_headers;
};

/* A compiled rule.  Read-only for users of the module. */
struct rule {
	size_t index;               /* 1-based position in the list */
	int line;
	char *name;                 /* NULL: none */
	char *match;                /* as written: what is subscribed to */
	const char *filter;         /* inside `match`: without a "$share/GROUP/" prefix */
	char *exchange;             /* NULL: the main exchange */
	size_t exchange_len;
	char *routing_key;          /* the template as written; NULL: default translation */
	struct rule_part *parts;    /* the template compiled; n_parts 0 without one */
	size_t n_parts;
	char *strip_prefix;         /* NULL: none */
	size_t strip_len;
	char *key_prefix;           /* NULL: none */
	size_t key_prefix_len;
	bool drop;
	bool cont;
	enum rule_persist persistent;
	struct rules_field *headers; /* owned copies */
	size_t n_headers;
	unsigned n_plus;            /* '+' levels in the filter */
	bool has_hash;              /* the filter ends in '#' */
	struct rkey_rule key;       /* the fields above that rules_key() reads, gathered once */
};

struct rules;

/*
 * Reports a problem in the rule starting at `line` (0 when no line
 * applies).  `msg` is a sentence that starts with "rule N (match 'F'): ",
 * without a trailing period; the caller adds the file name.
 */
typedef void rules_report_fn(void *arg, int line, const char *msg);

/*
 * Compiles `n` rules.  Every error found is passed to `error` (not just the
 * first), and every warning to `warning` (may be NULL): a rule that can never
 * match because an earlier rule without `continue` matches every topic it
 * does ("shadowed"), and a rule that overlaps none of `subscribe` (when
 * n_subscribe > 0: explicit subscriptions).
 *
 * Errors: a match that is not a valid filter; a template with an unclosed
 * '{', a stray '}', an unknown placeholder, {0}, {N} past the filter's '+'
 * count, {#} without a trailing '#'; a strip_prefix that not every topic the
 * filter accepts starts with (it must be a prefix of the filter's text
 * before its first wildcard); drop together with continue, exchange,
 * routing_key, key_prefix, strip_prefix, persistent or headers; an exchange
 * longer than 255 bytes; a key_prefix or a template's literal text that
 * alone exceeds 255 bytes; a header name that is empty or over 255 bytes,
 * or given twice in one rule; a name two rules share.
 *
 * Returns the compiled set (empty, not NULL, for n == 0), or NULL when any
 * error was reported or memory ran out.
 */
struct rules *rules_compile(const struct rule_spec *specs, size_t n, const char *dot_replacement,
                            const char *const *subscribe, size_t n_subscribe,
                            rules_report_fn *error, rules_report_fn *warning, void *arg);

void rules_free(struct rules *rs);

size_t rules_count(const struct rules *rs);
const struct rule *rules_at(const struct rules *rs, size_t i);   /* 0-based */

/* An upper bound on what rules_match() returns for any topic. */
size_t rules_max_matches(const struct rules *rs);

/*
 * The rules that apply to `topic` (a topic name, `tlen` bytes), in order:
 * every matching rule up to and including the first matching one without
 * `continue`.  Writes at most `max` to `out` and returns how many it
 * wrote; 0 when none matches.  Not reentrant (it uses scratch memory held
 * in `rs`), and never allocates.
 */
size_t rules_match(const struct rules *rs, const char *topic, size_t tlen,
                   const struct rule **out, size_t max);

/*
 * The routing key for `topic` under rule `r` (which must match it), or the
 * default translation when `r` is NULL.  `key` holds TOPIC_KEY_MAX + 1
 * bytes.  Returns TOPIC_OK, or TOPIC_ERR_TOO_LONG when the key would pass
 * 255 bytes (`key` is then empty and *klen the length it would have had),
 * or another topic_result for a topic that is not a valid name.
 */
enum topic_result rules_key(const struct rule *r, const char *topic, size_t tlen,
                            const char *dot_replacement, char key[TOPIC_KEY_MAX + 1],
                            size_t *klen);

/*
 * The filters to subscribe to when none are configured: the `match` of
 * every rule without `drop`, in rule order, without duplicates, and
 * without a filter that another one in the set covers (same "$share/GROUP/"
 * prefix, or none, on both).  Fills *out with a malloc'ed array of pointers
 * into `rs` (the caller frees the array only) and returns its length.
 * Returns (size_t)-1 when memory ran out.
 */
size_t rules_subscriptions(const struct rules *rs, const char ***out);

/* Whether the topic name matches the filter (plain MQTT semantics, no "$share/"). */
bool rules_filter_matches(const char *filter, const char *topic, size_t tlen);

/* Whether every topic name `b` matches is matched by `a` (both plain, valid filters). */
bool rules_filter_covers(const char *a, const char *b);

/* Whether some topic name matches both filters. */
bool rules_filters_overlap(const char *a, const char *b);

/*
 * Writes the compiled rules, one block per rule, for -t: index, line,
 * match, then what it does (drop, exchange or "(main exchange)", the key
 * template or "(default translation)", prefixes, delivery mode, headers,
 * continue).
 */
void rules_print(const struct rules *rs, FILE *out);

#endif
