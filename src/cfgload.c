#include "cfgload.h"

#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "cfgread.h"

void load_where(const struct loader *ld, const config_setting_t *s, const char **file,
                unsigned *line)
{
	const config_setting_t *p = s;

	*file = NULL;
	*line = 0;
	while (p != NULL && (*line = config_setting_source_line(p)) == 0)
		p = config_setting_parent(p);
	if (p != NULL)
		*file = config_setting_source_file(p);
	if (*file == NULL)
		*file = ld->path;
	if (*line == 0)
		*line = 1;
}

void load_error(struct loader *ld, const config_setting_t *s, const char *fmt, ...)
{
	const char *file;
	unsigned line;
	char msg[1024];
	va_list ap;

	load_where(ld, s, &file, &line);
	va_start(ap, fmt);
	vsnprintf(msg, sizeof(msg), fmt, ap);
	va_end(ap);
	cfgerr_report(&ld->ce, file, line, "%s", msg);
}

void load_oom(struct loader *ld)
{
	cfgerr_oom(&ld->ce);
}

static void warn_text(struct loader *ld, const char *file, unsigned line, const char *text)
{
	struct bridge_config *cfg = ld->cfg;

	if (cfgerr_append(&cfg->warnings, &cfg->n_warnings, &ld->cap_warnings, file, line, text) != 0)
		load_oom(ld);
}

void load_warn_at(struct loader *ld, const char *file, unsigned line, const char *fmt, ...)
{
	char text[1024];
	va_list ap;

	va_start(ap, fmt);
	vsnprintf(text, sizeof(text), fmt, ap);
	va_end(ap);
	warn_text(ld, file, line, text);
}

void load_warn(struct loader *ld, const config_setting_t *s, const char *fmt, ...)
{
	const char *file;
	unsigned line;
	char text[1024];
	va_list ap;

	load_where(ld, s, &file, &line);
	va_start(ap, fmt);
	vsnprintf(text, sizeof(text), fmt, ap);
	va_end(ap);
	warn_text(ld, file, line, text);
}

void load_string_into(struct loader *ld, char **slot, const char *value)
{
	char *copy = strdup(value);

	if (copy == NULL) {
		load_oom(ld);
		return;
	}
	free(*slot);
	*slot = copy;
}

void load_full_name(char *buf, size_t size, enum section_id g, int row)
{
	snprintf(buf, size, "%s.%s", schema[g].name, schema[g].rows[row].name);
}

struct found *load_found(struct loader *ld, enum section_id g, const char *name)
{
	int row = schema_find(&schema[g], name);

	if (row < 0)
		fatal("config: no setting %s.%s in the schema", schema[g].name, name);
	return &ld->found[g][row];
}

bool load_usable(struct loader *ld, enum section_id g, const char *name)
{
	return !load_found(ld, g, name)->bad;
}

/* Names */

/*
 * Fills `hint` with " (did you mean 'x'?)" for an unknown `name` inside
 * section `sec` (NULL: at the top level), or with "" when nothing fits.
 * Tried in order: a near miss among the section's own settings; in a
 * group or at the top level, the one group that has a setting of exactly
 * that name; at the top level, a near miss among the groups and lists.
 */
void load_suggest(char *hint, size_t size, const char *name, const struct section *sec)
{
	char guess[64];
	int n_exact = 0;

	hint[0] = '\0';
	for (size_t i = 0; sec != NULL && i < sec->n; i++) {
		if (cfgerr_near(name, sec->rows[i].name)) {
			if (sec->list)
				snprintf(hint, size, " (did you mean '%s'?)", sec->rows[i].name);
			else
				snprintf(hint, size, " (did you mean '%s.%s'?)", sec->name, sec->rows[i].name);
			return;
		}
	}
	if (sec != NULL && sec->list)
		return;
	for (int g = 0; g < N_GROUP_SECTIONS; g++) {
		int row = &schema[g] != sec ? schema_find(&schema[g], name) : -1;

		if (row >= 0) {
			load_full_name(guess, sizeof(guess), (enum section_id)g, row);
			n_exact++;
		}
	}
	if (n_exact == 1) {
		snprintf(hint, size, " (did you mean '%s'?)", guess);
		return;
	}
	if (sec == NULL) {
		static const char *const others[] = { "rules", "topology" };

		for (int g = 0; g < N_GROUP_SECTIONS; g++) {
			if (cfgerr_near(name, schema[g].name)) {
				snprintf(hint, size, " (did you mean '%s'?)", schema[g].name);
				return;
			}
		}
		for (size_t i = 0; i < sizeof(others) / sizeof(others[0]); i++) {
			if (cfgerr_near(name, others[i])) {
				snprintf(hint, size, " (did you mean '%s'?)", others[i]);
				return;
			}
		}
	}
}

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
				load_error(ld, ld->top[g], "missing required setting '%s'", full);
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
