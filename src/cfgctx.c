#include "cfgctx.h"

#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>


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

static void warn_v(struct loader *ld, const char *file, unsigned line, const char *fmt,
                   va_list ap)
{
	struct bridge_config *cfg = ld->cfg;
	char text[1024];

	vsnprintf(text, sizeof(text), fmt, ap);
	if (cfgerr_append(&cfg->warnings, &cfg->n_warnings, &ld->cap_warnings, file, line, text) != 0)
		load_oom(ld);
}

void load_warn_at(struct loader *ld, const char *file, unsigned line, const char *fmt, ...)
{
	va_list ap;

	va_start(ap, fmt);
	warn_v(ld, file, line, fmt, ap);
	va_end(ap);
}

void load_warn(struct loader *ld, const config_setting_t *s, const char *fmt, ...)
{
	const char *file;
	unsigned line;
	va_list ap;

	load_where(ld, s, &file, &line);
	va_start(ap, fmt);
	warn_v(ld, file, line, fmt, ap);
	va_end(ap);
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

