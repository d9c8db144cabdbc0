#include "cfgload.h"

#include <stdlib.h>
#include <string.h>

#include "cfgread.h"

/*
 * Matches the members of the group `grp` to the rows of `sec`, reporting
 * unknown names, into found[] (when not NULL) and the mask *seen.  With
 * `base`, each is read as it is matched, in the file's order (an
 * element's way), and the mask of rows refused is returned.
 */
static unsigned scan_members(struct loader *ld, const struct section *sec,
                             const config_setting_t *grp, const char *pre, struct found *found,
                             void *base, unsigned *seen)
{
	int n = config_setting_length(grp);
	unsigned bad = 0;

	*seen = 0;

	for (int k = 0; k < n; k++) {
		const config_setting_t *s = config_setting_get_elem(grp, (unsigned)k);
		const char *name = config_setting_name(s);
		size_t i;

		for (i = 0; i < sec->n && strcmp(name, sec->rows[i].name) != 0; i++)
			;
		if (i == sec->n) {
			char hint[96];

			load_suggest(hint, sizeof(hint), name, sec);
			if (sec->list)
				load_error(ld, s, "%sunknown setting '%s'%s", pre, name, hint);
			else
				load_error(ld, s, "unknown setting '%s.%s'%s", sec->name, name, hint);
			continue;
		}
		*seen |= ROW_BIT(i);
		if (found != NULL)
			found[i].s = s;
		if (base != NULL && !cfgread_value(ld, sec, &sec->rows[i], s, pre, sec->rows[i].name,
		                                   base))
			bad |= ROW_BIT(i);
	}
	return bad;
}

void load_groups(struct loader *ld)
{
	unsigned seen;

	for (int g = 0; g < N_GROUP_SECTIONS; g++)
		if (ld->top[g] != NULL)
			scan_members(ld, &schema[g], ld->top[g], "", ld->found[g], NULL, &seen);
	for (int g = 0; g < N_GROUP_SECTIONS; g++) {
		const struct section *sec = &schema[g];
		void *base = schema_at(ld->cfg, sec->base);

		for (size_t i = 0; i < sec->n; i++) {
			struct found *f = &ld->found[g][i];
			char full[64];

			load_full_name(full, sizeof(full), (enum section_id)g, (int)i);
			if (f->s != NULL) {
				f->bad = !cfgread_value(ld, sec, &sec->rows[i], f->s, "", full, base);
			} else if ((sec->rows[i].flags & SF_REQUIRED) && ld->top[g] != NULL) {
				int o = sec->rows[i].instead != NULL ? schema_find(sec, sec->rows[i].instead)
				                                     : -1;
				char other[64];

				if (o >= 0 && ld->found[g][o].s != NULL)
					continue;
				if (o >= 0) {
					load_full_name(other, sizeof(other), (enum section_id)g, o);
					load_error(ld, ld->top[g], "missing required setting '%s' (or '%s')", full,
					           other);
				} else {
					load_error(ld, ld->top[g], "missing required setting '%s'", full);
				}
				f->bad = true;
			}
		}
	}
}

/* Lists of groups */

/*
 * Reads element `index` (0-based) of list `sec`, the setting `e`, into
 * `obj` (zeroed).  Returns the mask of rows missing though required or
 * refused (every bit when `e` is not a group); each has been reported.
 */
static unsigned load_element(struct loader *ld, const struct section *sec,
                             const config_setting_t *e, size_t index, void *obj)
{
	const char *file;
	unsigned line, bad, seen;
	char pre[64];

	load_where(ld, e, &file, &line);
	*(int *)schema_at(obj, sec->off_line) = (int)line;
	if (config_setting_type(e) != CONFIG_TYPE_GROUP) {
		load_error(ld, e, "%s %zu must be a group: { %s = ...; ... }", sec->what, index + 1,
		           sec->rows[0].name);
		return ~0u;
	}
	snprintf(pre, sizeof(pre), "%s %zu: ", sec->what, index + 1);
	cfgread_defaults(ld, sec, obj);
	bad = scan_members(ld, sec, e, pre, NULL, obj, &seen);
	for (size_t i = 0; i < sec->n; i++) {
		if ((sec->rows[i].flags & SF_REQUIRED) && !(seen & ROW_BIT(i))) {
			load_error(ld, e, "%smissing required setting '%s'", pre, sec->rows[i].name);
			bad |= ROW_BIT(i);
		}
	}
	return bad;
}

size_t load_list(struct loader *ld, const struct section *sec, const config_setting_t *s,
                 void **vec_out, unsigned **bad_out)
{
	void *vec;
	unsigned *bad;
	int type, n;

	*vec_out = NULL;
	*bad_out = NULL;
	if (s == NULL)
		return 0;
	type = config_setting_type(s);
	n = config_setting_length(s);
	if (type != CONFIG_TYPE_LIST && !(type == CONFIG_TYPE_ARRAY && n == 0)) {
		load_error(ld, s, "'%s' must be a list of groups: %s = ( { %s = ...; ... }, ... );",
		           sec->name, config_setting_name(s), sec->rows[0].name);
		return (size_t)-1;
	}
	if (n == 0)
		return 0;
	vec = calloc((size_t)n, sec->size);
	bad = calloc((size_t)n, sizeof(*bad));
	if (vec == NULL || bad == NULL) {
		free(vec);
		free(bad);
		load_oom(ld);
		return (size_t)-1;
	}
	for (int i = 0; i < n; i++)
		bad[i] = load_element(ld, sec, config_setting_get_elem(s, (unsigned)i), (size_t)i,
		                      (char *)vec + (size_t)i * sec->size);
	*vec_out = vec;
	*bad_out = bad;
	return (size_t)n;
}

const config_setting_t *load_member_or(const config_setting_t *e, const char *name)
{
	const config_setting_t *m = config_setting_get_member(e, name);

	return m != NULL ? m : e;
}

/* A binary search, as every rule may have a message. */
const char *load_rule_file(const struct loader *ld, int line)
{
	size_t lo = 0, hi = ld->n_rule_pos;

	while (lo < hi) {
		size_t mid = lo + (hi - lo) / 2;

		if (ld->rule_pos[mid].line < line)
			lo = mid + 1;
		else
			hi = mid;
	}
	if (lo < ld->n_rule_pos && ld->rule_pos[lo].line == line)
		return ld->rule_pos[lo].file;
	return ld->path;
}
