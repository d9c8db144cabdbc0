/*
 * filter: the algebra of MQTT topic filters.  Pure: no I/O, no allocation.
 *
 * Whether a filter matches a topic name, covers another filter, or
 * overlaps one; and the level stepping that the rule tree and the key
 * templates share.  Filters here are plain and valid (topic.h checks
 * them): a "$share/GROUP/" prefix is taken off with filter_unshared().
 * The MQTT rule that a first-level wildcard never matches a topic starting
 * with '$' holds throughout.
 */
#ifndef BRIDGE_FILTER_H
#define BRIDGE_FILTER_H

#include <stdbool.h>
#include <stddef.h>
#include <string.h>

#define FILTER_SHARE_PREFIX "$share/"
#define FILTER_SHARE_PREFIX_LEN (sizeof(FILTER_SHARE_PREFIX) - 1)

/*
 * Steps over the level of s[0..n) that starts at *pos: sets *lv and *lvlen
 * to it and moves *pos past its '/'.  Returns false once the last level
 * has been taken (*pos is then n + 1).  An empty string has no level.
 * Inline: building a key steps through levels once per message.
 */
static inline bool filter_level(const char *s, size_t n, size_t *pos, const char **lv,
                                size_t *lvlen)
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

/* Whether the level lv[0..len) is the wildcard `wild` ('+' or '#'). */
static inline bool filter_is(const char *lv, size_t len, char wild)
{
	return len == 1 && lv[0] == wild;
}

/* The filter proper of a valid match: past a "$share/GROUP/" prefix. */
const char *filter_unshared(const char *match);

/*
 * Whether filter `f`, which ends in '#', matches its parent level only with
 * a topic that is not valid: the empty topic, for "#" and "/#".  Then that
 * '#' matches exactly what "+/#" in its place does.
 */
bool filter_hash_needs_level(const char *f);

/* Whether the topic name topic[0..tlen) matches the filter. */
bool filter_matches(const char *filter, const char *topic, size_t tlen);

/* Whether every topic name `b` matches is matched by `a`. */
bool filter_covers(const char *a, const char *b);

/* Whether some topic name matches both filters. */
bool filter_overlap(const char *a, const char *b);

#endif
