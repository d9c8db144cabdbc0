#include "filter.h"

#include <string.h>

const char *filter_unshared(const char *match)
{
	if (strncmp(match, FILTER_SHARE_PREFIX, FILTER_SHARE_PREFIX_LEN) == 0) {
		const char *slash = strchr(match + FILTER_SHARE_PREFIX_LEN, '/');

		if (slash != NULL)
			return slash + 1;
	}
	return match;
}

bool filter_hash_needs_level(const char *f)
{
	return strcmp(f, "#") == 0 || strcmp(f, "/#") == 0;
}

/*
 * The '$' rule is checked at level 0 only, through `dollar` (the topic
 * starts with '$').
 */
bool filter_matches(const char *filter, const char *topic, size_t tlen)
{
	size_t flen = strlen(filter), fp = 0, tp = 0;
	bool dollar = tlen > 0 && topic[0] == '$';

	if (tlen == 0 || flen == 0)
		return false;
	for (size_t k = 0;; k++) {
		const char *fl, *tl;
		size_t fn, tn;

		if (!filter_level(filter, flen, &fp, &fl, &fn))
			return !filter_level(topic, tlen, &tp, &tl, &tn);
		if (filter_is(fl, fn, '#'))
			return !(k == 0 && dollar);
		if (!filter_level(topic, tlen, &tp, &tl, &tn))
			return false;
		if (filter_is(fl, fn, '+')) {
			if (k == 0 && dollar)
				return false;
			continue;
		}
		if (fn != tn || memcmp(fl, tl, fn) != 0)
			return false;
	}
}

/*
 * Level by level: a '#' in `a` takes whatever is left of `b`; a '+' in `a`
 * takes a literal or a '+'; a literal only the same literal.  A '#' in `b`
 * needs a '#' in `a` at the same place, or "+/#" where the '#' of `b`
 * cannot match its parent level (filter_hash_needs_level()).  A `b`
 * starting with '$' matches only '$' topics, which a first-level wildcard
 * of `a` never does.
 */
bool filter_covers(const char *a, const char *b)
{
	size_t alen = strlen(a), blen = strlen(b), ap = 0, bp = 0;
	bool b_dollar = b[0] == '$';

	for (size_t k = 0;; k++) {
		const char *al, *bl;
		size_t an, bn;
		bool has_a = filter_level(a, alen, &ap, &al, &an);
		bool has_b = filter_level(b, blen, &bp, &bl, &bn);

		if (has_a && filter_is(al, an, '#'))
			return !(k == 0 && b_dollar);
		if (!has_a)
			return !has_b;
		if (!has_b)
			return false;
		if (filter_is(bl, bn, '#'))
			return filter_hash_needs_level(b) && filter_is(al, an, '+') && ap < alen &&
			       strcmp(a + ap, "#") == 0;
		if (filter_is(al, an, '+')) {
			if (k == 0 && b_dollar)
				return false;
			continue;
		}
		if (filter_is(bl, bn, '+'))
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
bool filter_overlap(const char *a, const char *b)
{
	size_t alen = strlen(a), blen = strlen(b), ap = 0, bp = 0;
	bool a_dollar = a[0] == '$', b_dollar = b[0] == '$';

	for (size_t k = 0;; k++) {
		const char *al, *bl;
		size_t an, bn;
		bool has_a = filter_level(a, alen, &ap, &al, &an);
		bool has_b = filter_level(b, blen, &bp, &bl, &bn);

		if (has_a && filter_is(al, an, '#') && has_b)
			return !(k == 0 && b_dollar);
		if (has_b && filter_is(bl, bn, '#') && has_a)
			return !(k == 0 && a_dollar);
		if (has_a != has_b) {
			bool hash = has_a ? filter_is(al, an, '#') : filter_is(bl, bn, '#');

			return hash && !(k == 1 && (a[0] == '/' || b[0] == '/'));
		}
		if (!has_a)
			return true;
		if (filter_is(al, an, '+')) {
			if (k == 0 && b_dollar)
				return false;
			continue;
		}
		if (filter_is(bl, bn, '+')) {
			if (k == 0 && a_dollar)
				return false;
			continue;
		}
		if (an != bn || memcmp(al, bl, an) != 0)
			return false;
	}
}
