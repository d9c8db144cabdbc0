#include "cfgauth.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "secret.h"

/* The sides: the groups with credentials and TLS. */
static const enum section_id sides[] = { S_MQTT, S_AMQP };

#define N_SIDES (sizeof(sides) / sizeof(sides[0]))

static char **str_at(struct loader *ld, enum section_id g, int row)
{
	return schema_at(schema_at(ld->cfg, schema[g].base), schema[g].rows[row].off);
}

static bool bool_at(struct loader *ld, enum section_id g, int row)
{
	return *(const bool *)schema_at(schema_at(ld->cfg, schema[g].base), schema[g].rows[row].off);
}

/* The first row of group `g` with any of `flags`, from row `from` on; -1 when none is left. */
static int next_row(enum section_id g, unsigned flags, int from)
{
	for (int i = from; i < (int)schema[g].n; i++)
		if (schema[g].rows[i].flags & flags)
			return i;
	return -1;
}

#define EACH_ROW(i, g, flags) \
	for (int i = next_row(g, flags, 0); i >= 0; i = next_row(g, flags, i + 1))

void cfgauth_tls_only(struct loader *ld)
{
	for (size_t k = 0; k < N_SIDES; k++) {
		enum section_id g = sides[k];
		int tls = schema_find(&schema[g], "tls");

		if (ld->found[g][tls].bad || bool_at(ld, g, tls))
			continue;
		EACH_ROW(i, g, SF_TLS) {
			char full[64];

			if (ld->found[g][i].s == NULL)
				continue;
			load_full_name(full, sizeof(full), g, i);
			load_error(ld, ld->found[g][i].s, "'%s' only applies with %s.tls = true", full,
			           schema[g].name);
			ld->found[g][i].bad = true;
		}
	}
}

/* Warns when the file at `path`, which holds a secret, is readable by every user. */
static void warn_if_public(struct loader *ld, const config_setting_t *s, const char *what,
                           const char *path)
{
	unsigned mode;

	if (secret_public(path, &mode))
		load_warn(ld, s, "%s %s is readable by every user (mode %04o); chmod o-r it", what, path,
		          mode);
}

/*
 * For a check: warns that credential `path` (`full` names it) was not
 * read, as this process cannot see it (err: why), instead of failing.
 */
static void warn_unseen(struct loader *ld, const config_setting_t *s, const char *full,
                        const char *path, int err)
{
	load_warn(ld, s, "'%s' not checked: %s cannot be seen here (%s); systemd gives the "
	          "unit's credentials to the bridge, which reads them at start and at each reload",
	          full, path, strerror(err));
}

/* Loads the password that row `src` (password_file or password_credential) names into place. */
static void load_secret(struct loader *ld, enum section_id g, int src)
{
	const config_setting_t *s = ld->found[g][src].s;
	const char *value = *str_at(ld, g, src), *why, *kind;
	int target = next_row(g, SF_SECRET, 0);
	char full[64], path[4096], *secret;
	int err;

	load_full_name(full, sizeof(full), g, src);
	if (schema[g].rows[src].flags & SF_PASS_CRED) {
		if (!secret_credential_path(value, path, sizeof(path))) {
			if (ld->check)
				load_warn(ld, s, "'%s' not checked: $CREDENTIALS_DIRECTORY is not set "
				          "(systemd sets it for the unit, whose bridge reads the "
				          "credential at start)", full);
			else
				load_error(ld, s, "'%s' needs $CREDENTIALS_DIRECTORY, which is not set "
				           "(systemd sets it for LoadCredential= and SetCredential=)",
				           full);
			return;
		}
	} else {
		snprintf(path, sizeof(path), "%s", value);
		warn_if_public(ld, s, "the password file", path);
	}
	why = secret_read_line(path, (size_t)schema[g].rows[target].max, &secret, &err, &kind);
	if (secret == NULL) {
		int unseen;

		if (ld->check && why == NULL && kind == NULL && secret_credential_unseen(path, &unseen))
			warn_unseen(ld, s, full, path, unseen);
		else if (why != NULL)
			load_error(ld, s, "'%s' names %s, which %s", full, path, why);
		else if (kind != NULL)
			load_error(ld, s, "'%s' names %s, which is %s, not a regular file", full, path, kind);
		else
			load_error(ld, s, "'%s' cannot be read (%s): %s", full, path, strerror(err));
		return;
	}
	free(*str_at(ld, g, target));
	*str_at(ld, g, target) = secret;
}

/* At most one source of the password, and what it needs (a username) with it. */
static void check_secrets(struct loader *ld, enum section_id g)
{
	const unsigned sources = SF_SECRET | SF_PASS_FILE | SF_PASS_CRED;
	char full[64], other[64];
	bool ok = true;
	int first = -1, needs;

	EACH_ROW(i, g, sources) {
		if (ld->found[g][i].s == NULL)
			continue;
		if (ld->found[g][i].bad)
			ok = false;
		if (first < 0) {
			first = i;
			continue;
		}
		load_full_name(full, sizeof(full), g, i);
		load_full_name(other, sizeof(other), g, first);
		load_error(ld, ld->found[g][i].s, "'%s' cannot be combined with '%s': give the "
		           "password one way only", full, other);
		ok = false;
	}
	if (first < 0)
		return;
	/* A default (amqp.username) stands in for what the file does not give. */
	needs = schema[g].rows[first].needs != NULL
	                ? schema_find(&schema[g], schema[g].rows[first].needs) : -1;
	if (needs >= 0 && ld->found[g][needs].s == NULL && schema[g].rows[needs].def_str == NULL) {
		load_full_name(full, sizeof(full), g, first);
		load_full_name(other, sizeof(other), g, needs);
		load_error(ld, ld->found[g][first].s, "'%s' is set but '%s' is not", full, other);
		ok = false;
	}
	if (!ok)
		return;
	if (schema[g].rows[first].flags & SF_SECRET) {
		const char *file;
		unsigned line, mode;

		load_where(ld, ld->found[g][first].s, &file, &line);
		if (secret_public(file, &mode)) {
			load_full_name(full, sizeof(full), g, first);
			load_warn_at(ld, file, line, "'%s' is in a file readable by every user (mode %04o); "
			             "chmod o-r it, or use password_file or password_credential", full, mode);
		}
		return;
	}
	load_secret(ld, g, first);
}

static const char *what_dir(bool dir)
{
	return dir ? "directory" : "regular file";
}

/* With tls = true: pairs, the CA store's default, the files, and warnings. */
static void check_tls(struct loader *ld, enum section_id g)
{
	int tls = schema_find(&schema[g], "tls"), ca = -1;
	const config_setting_t *tls_s = ld->found[g][tls].s;
	char full[64], other[64];
	const char *kind;
	int err, unseen;

	if (tls_s == NULL || ld->found[g][tls].bad || !bool_at(ld, g, tls))
		return;
	for (int i = 0; i < (int)schema[g].n; i++) {
		int with = schema[g].rows[i].comes_with != NULL
		                   ? schema_find(&schema[g], schema[g].rows[i].comes_with) : -1;

		if (with < 0 || ld->found[g][i].s == NULL || ld->found[g][with].s != NULL)
			continue;
		load_full_name(full, sizeof(full), g, i);
		load_full_name(other, sizeof(other), g, with);
		load_error(ld, ld->found[g][i].s, "'%s' is set but '%s' is not: they come together",
		           full, other);
	}
	EACH_ROW(i, g, SF_CA) {
		if (ld->found[g][i].s != NULL)
			ca = -2;
		else if (ca == -1 && schema[g].rows[i].tls_default != NULL)
			ca = i;
	}
	if (ca >= 0) {
		/* No CA given: the system's trust store. */
		const char *def = schema[g].rows[ca].tls_default;
		bool dir = (schema[g].rows[ca].flags & SF_DIR) != 0;

		load_string_into(ld, str_at(ld, g, ca), def);
		load_full_name(full, sizeof(full), g, ca);
		err = secret_check(def, dir, &kind);
		if (err > 0)
			load_error(ld, tls_s, "'%s' is not set and its default %s cannot be read: %s", full,
			           def, strerror(err));
		else if (err < 0)
			load_error(ld, tls_s, "'%s' is not set and its default %s is %s, not a %s", full,
			           def, kind, what_dir(dir));
	}
	EACH_ROW(i, g, SF_FILE | SF_DIR) {
		const char *path = *str_at(ld, g, i);
		bool dir = (schema[g].rows[i].flags & SF_DIR) != 0;

		if (path == NULL || ld->found[g][i].s == NULL || ld->found[g][i].bad)
			continue;
		load_full_name(full, sizeof(full), g, i);
		err = secret_check(path, dir, &kind);
		if (err > 0 && ld->check && secret_credential_unseen(path, &unseen))
			warn_unseen(ld, ld->found[g][i].s, full, path, unseen);
		else if (err > 0)
			load_error(ld, ld->found[g][i].s, "'%s' cannot be read (%s): %s", full, path,
			           strerror(err));
		else if (err < 0)
			load_error(ld, ld->found[g][i].s, "'%s' names %s, which is %s, not a %s", full,
			           path, kind, what_dir(dir));
	}
	EACH_ROW(i, g, SF_PRIVATE)
		if (ld->found[g][i].s != NULL && !ld->found[g][i].bad)
			warn_if_public(ld, ld->found[g][i].s, "the private key file", *str_at(ld, g, i));
	EACH_ROW(i, g, SF_INSECURE) {
		if (!bool_at(ld, g, i))
			continue;
		load_full_name(full, sizeof(full), g, i);
		load_warn(ld, ld->found[g][i].s, "'%s' is true: the %s broker's certificate and host "
		          "name are not verified", full, schema[g].name);
	}
}

void cfgauth_load(struct loader *ld)
{
	for (size_t k = 0; k < N_SIDES; k++) {
		check_secrets(ld, sides[k]);
		check_tls(ld, sides[k]);
	}
}
