/*
 * cfgctx: one config_load() in progress: its state, where a setting is
 * written, and the errors and warnings it reports.  Shared by the parts of
 * the loader; nothing outside them includes it.
 */
#ifndef BRIDGE_CFGCTX_H
#define BRIDGE_CFGCTX_H

#include <libconfig.h>
#include <stdbool.h>
#include <stddef.h>

#include "cfgerr.h"
#include "cfgsrc.h"
#include "schema.h"

/* A rule's position, for messages about it; sorted by line to be looked up. */
struct rule_pos {
	int line;
	size_t index;
	const char *file;
};

/* A setting of a group as the file gives it. */
struct found {
	const config_setting_t *s;  /* NULL when the file does not give it */
	bool bad;                   /* given but refused, or missing though required */
};

struct loader {
	const char *path;
	bool check;                 /* config_check(): unseen credentials are warnings */
	struct cfgerr ce;
	struct cfgsrc src;
	struct bridge_config *cfg;  /* being filled */
	const config_setting_t *top[N_SECTIONS];   /* each group and the rules list; NULL: absent */
	const config_setting_t *topology;          /* the `topology` group; NULL: absent */
	struct found found[N_GROUP_SECTIONS][SCHEMA_ROWS_MAX];
	bool rules_broken;          /* the rules could not be read or compiled */
	struct rule_pos *rule_pos;  /* each rule's file and line, sorted by line */
	size_t n_rule_pos;
	size_t cap_warnings;        /* of the config's warnings array */
};

/* Where setting `s` is written; a setting libconfig gave no line borrows its parent's. */
void load_where(const struct loader *ld, const config_setting_t *s, const char **file,
                unsigned *line);

/* Reports a problem with setting `s`, at its file and line. */
void load_error(struct loader *ld, const config_setting_t *s, const char *fmt, ...)
	LOG_PRINTF(3, 4);

/* Adds a warning to the configuration: "file:line: text" ("file: text" when line is 0). */
void load_warn_at(struct loader *ld, const char *file, unsigned line, const char *fmt, ...)
	LOG_PRINTF(4, 5);

/* The same, at setting `s`. */
void load_warn(struct loader *ld, const config_setting_t *s, const char *fmt, ...)
	LOG_PRINTF(3, 4);

void load_oom(struct loader *ld);

/* Replaces the string at *slot by a copy of `value` (reporting when memory runs out). */
void load_string_into(struct loader *ld, char **slot, const char *value);

/* "mqtt.port": a group's setting as messages name it. */
void load_full_name(char *buf, size_t size, enum section_id g, int row);

/*
 * Row `name` of group `g` as the file gives it.  Names are the schema's;
 * one that is not there is a broken invariant.
 */
struct found *load_found(struct loader *ld, enum section_id g, const char *name);

/* Whether row `name` of group `g` holds a value: its default, or one the file gave and passed. */
bool load_usable(struct loader *ld, enum section_id g, const char *name);

/*
 * Fills `hint` with " (did you mean 'x'?)" for an unknown `name` inside
 * section `sec` (NULL: at the top level), or with "" when nothing fits.
 */
void load_suggest(char *hint, size_t size, const char *name, const struct section *sec);

#define ROW_BIT(i) (1u << (i))

#endif
