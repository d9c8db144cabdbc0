/*
 * check_docs: the reference documentation keeps step with the parser.
 *
 * For every setting config_setting_at() lists, mqtt-amqp-bridge.conf(5)
 * must document it exactly once, the sample configuration must mention it
 * inside its block, and the README's settings tables must list it once;
 * none of the three may name a setting the parser does not accept.
 *
 * A setting's group is a top-level group ("mqtt") or a path of nested
 * blocks ("topology.exchanges": the groups of the list `exchanges` inside
 * the group `topology`; "rules": the groups of the list `rules`).  Its full
 * name is GROUP.NAME: "mqtt.port", "rules.match",
 * "topology.exchanges.name".
 *
 * How the man page marks a setting: in section SETTINGS, under a
 * subsection titled "The TOP group" or "The TOP list", where TOP is the
 * first part of the setting's group, a tag item whose first word is the
 * setting's full name:
 *
 *     .Ss The mqtt group
 *     .Bl -tag -width Ds
 *     .It Cm mqtt.port Pq integer , default 1883
 *     ...
 *     .Ss The rules list
 *     .Bl -tag -width Ds
 *     .It Cm rules.match Pq string , required
 *     ...
 *     .Ss The topology group
 *     .Bl -tag -width Ds
 *     .It Cm topology.exchanges.name Pq string , required
 *
 * The whole word is compared, so "mqtt.password_file" does not document
 * "mqtt.password".
 *
 * What the man page says of a setting must agree with its row in the
 * schema (schema.h), which is where the parser takes it from:
 *   - the type in the Pq: "string", "integer", "boolean", "list of
 *     strings" or "group";
 *   - "required" exactly for the required settings;
 *   - the default in the Pq, written as "default 1883", "default true" or
 *     "default Qq text" (a quoted string or choice), exactly when the
 *     schema has a default value; a setting without one may only describe
 *     its absence ("default unset", "default none", "default: from the QoS");
 *   - in the item's text: an integer's range "MIN to MAX" (or "from
 *     .Cm OTHER to MAX" when it must not be below another setting), a
 *     string's length "1 to N bytes" (not empty) or "at most N bytes",
 *     every accepted value as ".Qq VALUE", the store a CA setting falls
 *     back to as ".Pa PATH", and the setting it must differ from or come
 *     with as ".Cm GROUP.NAME".  Text is read as a reader sees it, lines
 *     joined and macro names dropped, so "1 to" may end a line.
 *
 * How the sample mentions a setting: a line "NAME =", possibly commented
 * out with "#", directly inside the block of its group: "GROUP = { ... };"
 * for a top-level group, an element "{ ... }" of "rules = ( ... );" for
 * the rules, an element of "exchanges = ( ... )" inside
 * "topology = { ... };" for topology.exchanges.  A block's opening brace
 * or parenthesis may also start the line after "NAME =".  Lines inside
 * blocks that are not groups of settings (a rule's `headers`, a queue's
 * `arguments`) name headers and arguments, not settings, and are not
 * checked.
 *
 * A setting the sample shows commented out, "# NAME = VALUE;", is one the
 * sample leaves at its default, and VALUE must be that default as the
 * schema has it: "# port = 1883;", "# protocol = \"3.1.1\";".  A setting
 * without a default shows an example there instead ("# username =
 * \"bridge\";") and is not checked; a setting that is not commented out
 * is the sample's own choice.
 *
 * How the README lists a setting: a row of a Markdown table whose header
 * has the columns "group", "setting", "default" and "range / values":
 *
 *     | group    | setting                | default            | range / values |
 *     |----------|------------------------|--------------------|----------------|
 *     | `mqtt`   | `host`                 | (required)         |                |
 *     |          | `port`                 | 1883               | 1..65535       |
 *     |          | `username`, `password` | unset              | ...            |
 *     | `amqp`   | `tls`, `tls_version`   | as for `mqtt`      | ...            |
 *     | `topology` | `exchanges`          | none               | ...            |
 *
 * An empty group cell continues the group above.  The settings of a list
 * of groups may be summed up by one row naming the list.  What a row says
 * must agree with the schema as assert_readme_agrees() describes.
 */
#include "config.h"

#include <check.h>
#include <ctype.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "schema.h"

#ifndef MAN5_PATH
#error "MAN5_PATH must name man/mqtt-amqp-bridge.conf.5"
#endif
#ifndef SAMPLE_CONF_PATH
#error "SAMPLE_CONF_PATH must name etc/mqtt-amqp-bridge.conf"
#endif
#ifndef README_PATH
#error "README_PATH must name README"
#endif

#define NAME_MAX_LEN 64

/* A file as lines, without their newlines. */
struct text {
	char **line;
	size_t n;
};

static void text_free(struct text *t)
{
	for (size_t i = 0; i < t->n; i++)
		free(t->line[i]);
	free(t->line);
	t->line = NULL;
	t->n = 0;
}

/* Splits `buf` into lines; the test fails on allocation failure. */
static void text_split(struct text *t, const char *buf)
{
	size_t cap = 0;

	t->line = NULL;
	t->n = 0;
	while (*buf != '\0') {
		size_t len = strcspn(buf, "\n");

		if (t->n == cap) {
			cap = cap ? cap * 2 : 64;
			t->line = realloc(t->line, cap * sizeof(*t->line));
			ck_assert_ptr_nonnull(t->line);
		}
		t->line[t->n] = strndup(buf, len);
		ck_assert_ptr_nonnull(t->line[t->n]);
		t->n++;
		buf += len;
		if (*buf == '\n')
			buf++;
	}
}

/* Reads the file at `path`; the test fails when it cannot be read. */
static void text_load(struct text *t, const char *path)
{
	FILE *fp = fopen(path, "r");
	char *buf = NULL;
	size_t len = 0;

	ck_assert_msg(fp != NULL, "cannot open %s", path);
	{
		FILE *mem = open_memstream(&buf, &len);
		char chunk[4096];
		size_t got;

		ck_assert_ptr_nonnull(mem);
		while ((got = fread(chunk, 1, sizeof(chunk), fp)) > 0)
			fwrite(chunk, 1, got, mem);
		ck_assert_msg(!ferror(fp), "cannot read %s", path);
		fclose(mem);
	}
	fclose(fp);
	text_split(t, buf);
	free(buf);
}

static size_t n_settings(void)
{
	const char *group, *name;
	size_t n = 0;

	while (config_setting_at(n, &group, &name))
		n++;
	return n;
}

static bool is_setting(const char *full)
{
	const char *group, *name;
	char want[NAME_MAX_LEN];

	for (size_t i = 0; config_setting_at(i, &group, &name); i++) {
		snprintf(want, sizeof(want), "%s.%s", group, name);
		if (strcmp(want, full) == 0)
			return true;
	}
	return false;
}

/*
 * Whether `path` ("" for the top level, "topology", "topology.exchanges")
 * is the group of some setting or a block that encloses one.
 */
static bool is_settings_block(const char *path)
{
	const char *group, *name;
	size_t len = strlen(path);

	if (len == 0)
		return true;
	for (size_t i = 0; config_setting_at(i, &group, &name); i++)
		if (strncmp(group, path, len) == 0 && (group[len] == '\0' || group[len] == '.'))
			return true;
	return false;
}

/* The first part of a setting's group: "topology" for "topology.exchanges". */
static void top_of(const char *group, char *out, size_t outsz)
{
	size_t len = strcspn(group, ".");

	if (len >= outsz)
		len = outsz - 1;
	memcpy(out, group, len);
	out[len] = '\0';
}

/* The man page */

/* One setting the man page documents. */
struct man_item {
	char full[NAME_MAX_LEN];   /* "mqtt.port" */
	char under[NAME_MAX_LEN];  /* TOP of the enclosing ".Ss The TOP group" or "... list", or "" */
	size_t line;               /* 1-based */
};

struct man_items {
	struct man_item *item;
	size_t n;
};

/*
 * Copies the word at `p` (up to a blank or the end) to `out`; returns
 * false when it is empty or does not fit.
 */
static bool word_at(const char *p, char *out, size_t outsz)
{
	size_t len = strcspn(p, " \t");

	if (len == 0 || len >= outsz)
		return false;
	memcpy(out, p, len);
	out[len] = '\0';
	return true;
}

/* TOP when `title` (the text after ".Ss ") is "The TOP group" or "The TOP list", else "". */
static void subsection_group(const char *title, char *out, size_t outsz)
{
	const char *p = title;
	size_t len;

	out[0] = '\0';
	if (strncmp(p, "The ", 4) != 0)
		return;
	p += 4;
	len = strcspn(p, " \t");
	if (len == 0 || len >= outsz)
		return;
	if (strcmp(p + len, " group") != 0 && strcmp(p + len, " list") != 0)
		return;
	memcpy(out, p, len);
	out[len] = '\0';
}

/* Collects the ".It Cm NAME" items of section SETTINGS. */
static void man_scan(const struct text *t, struct man_items *items)
{
	bool in_settings = false;
	char under[NAME_MAX_LEN] = "";

	items->item = calloc(t->n + 1, sizeof(*items->item));
	ck_assert_ptr_nonnull(items->item);
	items->n = 0;
	for (size_t i = 0; i < t->n; i++) {
		const char *l = t->line[i];

		if (strncmp(l, ".Sh ", 4) == 0) {
			in_settings = strcmp(l + 4, "SETTINGS") == 0;
			under[0] = '\0';
		} else if (strncmp(l, ".Ss ", 4) == 0) {
			subsection_group(l + 4, under, sizeof(under));
		} else if (in_settings && strncmp(l, ".It Cm ", 7) == 0) {
			struct man_item *it = &items->item[items->n];
			const char *p = l + 7;

			while (*p == ' ' || *p == '\t')
				p++;
			if (!word_at(p, it->full, sizeof(it->full)))
				continue;
			strcpy(it->under, under);
			it->line = i + 1;
			items->n++;
		}
	}
}

/*
 * Asserts that `items` document GROUP.NAME exactly once, under the
 * subsection of the first part of GROUP.
 */
static void assert_man_documents(const struct man_items *items, const char *what,
                                 const char *group, const char *name)
{
	char full[NAME_MAX_LEN], top[NAME_MAX_LEN];
	const struct man_item *found = NULL;
	size_t count = 0;

	snprintf(full, sizeof(full), "%s.%s", group, name);
	top_of(group, top, sizeof(top));
	for (size_t i = 0; i < items->n; i++) {
		if (strcmp(items->item[i].full, full) == 0) {
			found = &items->item[i];
			count++;
		}
	}
	ck_assert_msg(count > 0, "%s does not document setting '%s' (expected \".It Cm %s\" under "
	              "\".Ss The %s group\" or \".Ss The %s list\" in section SETTINGS)",
	              what, full, full, top, top);
	ck_assert_msg(count == 1, "%s documents setting '%s' %zu times", what, full, count);
	ck_assert_msg(strcmp(found->under, top) == 0,
	              "%s:%zu: setting '%s' is documented outside \".Ss The %s group\" (or list)",
	              what, found->line, full, top);
}

/* The sample configuration */

/* One "NAME =" line of the sample, with the path of the blocks it is in. */
struct conf_mention {
	char group[NAME_MAX_LEN];  /* "mqtt", "rules", "topology.exchanges"; "" at the top */
	char name[NAME_MAX_LEN];
	size_t line;               /* 1-based */
	bool commented;            /* "# NAME =" */
	const char *value;         /* what follows the '=', in the scanned text */
};

struct conf_mentions {
	struct conf_mention *m;
	size_t n;
};

/*
 * When `p` starts with an identifier followed by optional blanks and '=',
 * copies the identifier to `name` and returns what follows the '=';
 * otherwise returns NULL.
 */
static const char *assignment(const char *p, char *name, size_t namesz)
{
	size_t len = 0;

	if (!isalpha((unsigned char)p[0]) && p[0] != '_')
		return NULL;
	while (isalnum((unsigned char)p[len]) || p[len] == '_' || p[len] == '-')
		len++;
	if (len >= namesz)
		return NULL;
	memcpy(name, p, len);
	name[len] = '\0';
	p += len;
	while (*p == ' ' || *p == '\t')
		p++;
	return *p == '=' ? p + 1 : NULL;
}

/*
 * The blocks open at a point of the sample, outermost first: a group
 * "{ }", a list "( )" or an array "[ ]", named by the setting it is the
 * value of, or "" for an element of a list.
 */
#define CONF_DEPTH_MAX 16

struct conf_blocks {
	struct {
		char name[NAME_MAX_LEN];
		char close;
	} b[CONF_DEPTH_MAX];
	size_t n;
};

/* The names of the named blocks in `bl`, joined by '.'. */
static void conf_path(const struct conf_blocks *bl, char *out, size_t outsz)
{
	size_t len = 0;

	out[0] = '\0';
	for (size_t i = 0; i < bl->n; i++) {
		int w;

		if (bl->b[i].name[0] == '\0')
			continue;
		w = snprintf(out + len, outsz - len, "%s%s", len > 0 ? "." : "", bl->b[i].name);
		ck_assert_msg(w >= 0 && (size_t)w < outsz - len, "%s: block path too long",
		              SAMPLE_CONF_PATH);
		len += (size_t)w;
	}
}

/*
 * Opens and closes the blocks of the code in `p` (ignoring strings and
 * comments).  The first block opened on the line is named `name` (may be
 * ""); the others are elements.
 */
static void conf_brackets(struct conf_blocks *bl, const char *p, const char *name, size_t lineno)
{
	bool in_string = false, named = false;

	for (; *p != '\0'; p++) {
		const char *open = strchr("{([", *p);

		if (in_string) {
			if (*p == '\\' && p[1] != '\0')
				p++;
			else if (*p == '"')
				in_string = false;
		} else if (*p == '"') {
			in_string = true;
		} else if (*p == '#' || (p[0] == '/' && p[1] == '/')) {
			break;
		} else if (open != NULL) {
			ck_assert_msg(bl->n < CONF_DEPTH_MAX, "%s:%zu: blocks nested too deeply",
			              SAMPLE_CONF_PATH, lineno);
			strcpy(bl->b[bl->n].name, named ? "" : name);
			bl->b[bl->n].close = "})]"[open - "{(["];
			bl->n++;
			named = true;
		} else if (*p == '}' || *p == ')' || *p == ']') {
			ck_assert_msg(bl->n > 0 && bl->b[bl->n - 1].close == *p, "%s:%zu: unbalanced '%c'",
			              SAMPLE_CONF_PATH, lineno, *p);
			bl->n--;
		}
	}
}

/*
 * Collects the settings the sample mentions: "NAME =" or "# NAME =" at the
 * start of a line, with the path of the named blocks it is in.  A block
 * takes the name of the assignment it starts the value of, on the same line
 * or (with nothing else after the '=') on the next line.
 */
static void conf_scan(const struct text *t, struct conf_mentions *out)
{
	struct conf_blocks bl = { .n = 0 };
	char pending[NAME_MAX_LEN] = "";

	out->m = calloc(t->n + 1, sizeof(*out->m));
	ck_assert_ptr_nonnull(out->m);
	out->n = 0;
	for (size_t i = 0; i < t->n; i++) {
		const char *p = t->line[i];
		const char *rest;
		char name[NAME_MAX_LEN];
		bool comment = false;

		while (*p == ' ' || *p == '\t')
			p++;
		if (*p == '#') {
			comment = true;
			p++;
			while (*p == ' ' || *p == '\t')
				p++;
		}
		rest = assignment(p, name, sizeof(name));
		if (rest != NULL) {
			struct conf_mention *m = &out->m[out->n++];

			conf_path(&bl, m->group, sizeof(m->group));
			strcpy(m->name, name);
			m->line = i + 1;
			m->commented = comment;
			m->value = rest;
		}
		if (comment || *p == '\0')
			continue;
		if (rest != NULL) {
			while (*rest == ' ' || *rest == '\t')
				rest++;
			conf_brackets(&bl, rest, name, i + 1);
			strcpy(pending, *rest == '\0' ? name : "");
		} else {
			conf_brackets(&bl, p, pending, i + 1);
			pending[0] = '\0';
		}
	}
	ck_assert_msg(bl.n == 0, "%s: block '%c' left open at the end", SAMPLE_CONF_PATH,
	              bl.n > 0 ? bl.b[bl.n - 1].close : ' ');
}

static bool conf_mentions(const struct conf_mentions *c, const char *group, const char *name)
{
	for (size_t i = 0; i < c->n; i++)
		if (strcmp(c->m[i].group, group) == 0 && strcmp(c->m[i].name, name) == 0)
			return true;
	return false;
}

/*
 * Reads the value of a one-line assignment, `p` being what follows its
 * '=': a string in double quotes (copied without them, escapes undone,
 * `quoted` set) or a bare word such as an integer or a boolean (copied as
 * written), then ';' or ',' and at most a comment.  Returns false for
 * anything else: a list, a group, a value that goes on past the line.
 */
static bool conf_scalar(const char *p, char *out, size_t outsz, bool *quoted)
{
	size_t len = 0;

	while (*p == ' ' || *p == '\t')
		p++;
	*quoted = *p == '"';
	if (*quoted) {
		for (p++; *p != '"'; p++) {
			if (*p == '\0' || len + 1 >= outsz)
				return false;
			if (*p == '\\' && p[1] != '\0')
				p++;
			out[len++] = *p;
		}
		p++;
	} else {
		while (isalnum((unsigned char)*p) || *p == '-' || *p == '+' || *p == '.') {
			if (len + 1 >= outsz)
				return false;
			out[len++] = *p++;
		}
		if (len == 0)
			return false;
	}
	out[len] = '\0';
	while (*p == ' ' || *p == '\t')
		p++;
	if (*p != ';' && *p != ',')
		return false;
	for (p++; *p == ' ' || *p == '\t'; p++)
		;
	return *p == '\0' || *p == '#' || (p[0] == '/' && p[1] == '/');
}

/* The README's settings tables */

/* One setting a settings table of the README lists, with its row's cells as they apply to it. */
struct readme_entry {
	char full[NAME_MAX_LEN];   /* "mqtt.port"; "topology.exchanges" for a list */
	char def[128];             /* its default: the row's default cell, or its part of it */
	char range[256];           /* the row's "range / values" cell */
	size_t line;               /* 1-based */
};

struct readme_entries {
	struct readme_entry *e;
	size_t n;
};

#define README_COLS_MAX 8

/* `s` without the blanks around it. */
static char *trim(char *s)
{
	char *end;

	while (*s == ' ' || *s == '\t')
		s++;
	end = s + strlen(s);
	while (end > s && (end[-1] == ' ' || end[-1] == '\t'))
		*--end = '\0';
	return s;
}

/*
 * Splits the table row `l` ("| a | b |") into trimmed cells, kept in
 * `buf`; returns their number, 0 when `l` is not a table row.
 */
static size_t table_cells(const char *l, char *buf, size_t bufsz, char *cell[README_COLS_MAX])
{
	size_t n = 0;
	char *p, *bar;

	if (l[0] != '|')
		return 0;
	ck_assert_msg(strlen(l) < bufsz, "%s: table row too long: %s", README_PATH, l);
	strcpy(buf, l + 1);
	for (p = buf; (bar = strchr(p, '|')) != NULL && n < README_COLS_MAX; p = bar + 1) {
		*bar = '\0';
		cell[n++] = trim(p);
	}
	return n;
}

/* The index of the cell titled `title` (or, with `prefix`, starting with it), or -1. */
static int column(char *const cell[], size_t n, const char *title, bool prefix)
{
	size_t len = prefix ? strlen(title) : strlen(title) + 1;

	for (size_t i = 0; i < n; i++)
		if (strncmp(cell[i], title, len) == 0)
			return (int)i;
	return -1;
}

/*
 * Copies the name in backquotes that `p` starts with ("`port`") to `out`;
 * returns what follows it, or NULL when `p` does not start with one.
 */
static const char *backquoted(const char *p, char *out, size_t outsz)
{
	const char *end;

	if (*p != '`' || (end = strchr(p + 1, '`')) == NULL || end == p + 1
	    || (size_t)(end - p - 1) >= outsz)
		return NULL;
	memcpy(out, p + 1, (size_t)(end - p - 1));
	out[end - p - 1] = '\0';
	return end + 1;
}

/* The number of parts of `cell` separated by ", ". */
static size_t n_parts(const char *cell)
{
	size_t n = 1;

	for (const char *p = strstr(cell, ", "); p != NULL; p = strstr(p + 2, ", "))
		n++;
	return n;
}

/* Copies part `k` (0-based) of `cell`, parts separated by ", ", to `out`. */
static void part_of(const char *cell, size_t k, char *out, size_t outsz)
{
	const char *p = cell, *end;

	for (; k > 0; k--)
		p = strstr(p, ", ") + 2;
	end = strstr(p, ", ");
	snprintf(out, outsz, "%.*s", end != NULL ? (int)(end - p) : (int)strlen(p), p);
}

/*
 * Copies the names of a setting cell, "`NAME`" or "`NAME`, `NAME`...", to
 * `names`; returns their number.  The test fails on a cell written
 * otherwise, `line` naming it.
 */
static size_t setting_names(const char *cell, char names[SCHEMA_ROWS_MAX][NAME_MAX_LEN],
                            size_t line)
{
	size_t n = 0;

	for (const char *p = cell; ; p += 2) {
		ck_assert_msg(n < SCHEMA_ROWS_MAX, "%s:%zu: too many settings in a row", README_PATH,
		              line);
		p = backquoted(p, names[n++], NAME_MAX_LEN);
		ck_assert_msg(p != NULL && (*p == '\0' || strncmp(p, ", ", 2) == 0), "%s:%zu: the "
		              "settings are not written \"`NAME`, `NAME`\": \"%s\"", README_PATH, line,
		              cell);
		if (*p == '\0')
			return n;
	}
}

/* Adds GROUP.NAME, listed on `line` with `def` and `range`, to `out`. */
static void readme_add(struct readme_entries *out, size_t *cap, const char *group,
                       const char *name, const char *def, const char *range, size_t line)
{
	struct readme_entry *e;
	int w;

	if (out->n == *cap) {
		*cap = *cap ? *cap * 2 : 64;
		out->e = realloc(out->e, *cap * sizeof(*out->e));
		ck_assert_ptr_nonnull(out->e);
	}
	e = &out->e[out->n++];
	w = snprintf(e->full, sizeof(e->full), "%s.%s", group, name);
	ck_assert_msg(w > 0 && (size_t)w < sizeof(e->full), "%s:%zu: name too long", README_PATH,
	              line);
	ck_assert_msg(strlen(def) < sizeof(e->def) && strlen(range) < sizeof(e->range),
	              "%s:%zu: cell too long", README_PATH, line);
	strcpy(e->def, def);
	strcpy(e->range, range);
	e->line = line;
}

/*
 * Collects the settings the settings tables of the README list: the
 * tables whose header has the columns "group", "setting", "default" and
 * "range / values".  A row's group cell is "`GROUP`" or empty (the group
 * of the row above); its setting cell is "`NAME`" or "`NAME`, `NAME`...".
 * When its default cell has as many parts separated by ", " as the row
 * has settings ("`guest`, `guest`"), each setting takes its own part;
 * otherwise each takes the whole cell.
 */
static void readme_scan(const struct text *t, struct readme_entries *out)
{
	int c_group = -1, c_name = -1, c_def = -1, c_range = -1;
	char group[NAME_MAX_LEN] = "";
	size_t cap = 0;

	out->e = NULL;
	out->n = 0;
	for (size_t i = 0; i < t->n; i++) {
		char buf[1024], *cell[README_COLS_MAX], names[SCHEMA_ROWS_MAX][NAME_MAX_LEN];
		size_t n = table_cells(t->line[i], buf, sizeof(buf), cell), n_names;
		const char *p;

		if (n == 0) {
			c_group = -1;       /* the end of a table */
			continue;
		}
		if (column(cell, n, "group", false) >= 0 && column(cell, n, "setting", false) >= 0) {
			c_group = column(cell, n, "group", false);
			c_name = column(cell, n, "setting", false);
			c_def = column(cell, n, "default", false);
			c_range = column(cell, n, "range", true);
			ck_assert_msg(c_def >= 0 && c_range >= 0, "%s:%zu: a settings table without a "
			              "\"default\" or \"range / values\" column", README_PATH, i + 1);
			group[0] = '\0';
			continue;
		}
		if (c_group < 0 || cell[0][0] == '-')
			continue;       /* another table, or the line under the header */
		ck_assert_msg((size_t)c_group < n && (size_t)c_name < n && (size_t)c_def < n
		              && (size_t)c_range < n, "%s:%zu: a row with too few cells", README_PATH,
		              i + 1);
		if (cell[c_group][0] != '\0') {
			p = backquoted(cell[c_group], group, sizeof(group));
			ck_assert_msg(p != NULL && *p == '\0', "%s:%zu: the group is not written "
			              "\"`GROUP`\": \"%s\"", README_PATH, i + 1, cell[c_group]);
		}
		ck_assert_msg(group[0] != '\0', "%s:%zu: a row without a group", README_PATH, i + 1);
		n_names = setting_names(cell[c_name], names, i + 1);
		for (size_t k = 0; k < n_names; k++) {
			char def[sizeof(out->e->def)];

			if (n_names > 1 && n_parts(cell[c_def]) == n_names)
				part_of(cell[c_def], k, def, sizeof(def));
			else
				snprintf(def, sizeof(def), "%s", cell[c_def]);
			readme_add(out, &cap, group, names[k], def, cell[c_range], i + 1);
		}
	}
}

/* Tests */

/*
 * The files under test, read by a checked fixture so that they are freed
 * even when an assertion ends a test early.
 */
static struct text man_text, conf_text, readme_text;
static struct man_items man_items;
static struct conf_mentions conf_mentions_found;
static struct readme_entries readme_entries;

static void docs_setup(void)
{
	text_load(&man_text, MAN5_PATH);
	man_scan(&man_text, &man_items);
	text_load(&conf_text, SAMPLE_CONF_PATH);
	conf_scan(&conf_text, &conf_mentions_found);
	text_load(&readme_text, README_PATH);
	readme_scan(&readme_text, &readme_entries);
}

static void docs_teardown(void)
{
	free(man_items.item);
	man_items.item = NULL;
	man_items.n = 0;
	free(conf_mentions_found.m);
	conf_mentions_found.m = NULL;
	conf_mentions_found.n = 0;
	free(readme_entries.e);
	readme_entries.e = NULL;
	readme_entries.n = 0;
	text_free(&man_text);
	text_free(&conf_text);
	text_free(&readme_text);
}

/* Run once per setting: `_i` is its index in config_setting_at(). */
START_TEST(test_man_documents_setting)
{
	const char *group, *name;

	ck_assert(config_setting_at((size_t)_i, &group, &name));
	assert_man_documents(&man_items, MAN5_PATH, group, name);
}
END_TEST

START_TEST(test_man_documents_only_settings)
{
	ck_assert_msg(man_items.n > 0, "%s documents no settings at all", MAN5_PATH);
	for (size_t i = 0; i < man_items.n; i++)
		ck_assert_msg(is_setting(man_items.item[i].full),
		              "%s:%zu: documents '%s', which the parser does not accept",
		              MAN5_PATH, man_items.item[i].line, man_items.item[i].full);
}
END_TEST

/* Run once per setting: `_i` is its index in config_setting_at(). */
START_TEST(test_sample_mentions_setting)
{
	const char *group, *name;

	ck_assert(config_setting_at((size_t)_i, &group, &name));
	ck_assert_msg(conf_mentions(&conf_mentions_found, group, name),
	              "%s does not mention setting '%s.%s' (expected a line \"%s =\" or "
	              "\"# %s =\" directly inside the block %s)",
	              SAMPLE_CONF_PATH, group, name, name, name, group);
}
END_TEST

/* Whether `name` is spelt as settings are: lower-case letters, digits and '_'. */
static bool setting_like(const char *name)
{
	return islower((unsigned char)name[0])
	       && strspn(name, "abcdefghijklmnopqrstuvwxyz0123456789_") == strlen(name);
}

/*
 * A line "NAME =" in a block of settings, with NAME spelt like a setting,
 * names a setting or a block of them: a misspelt or retired setting, even
 * commented out, is caught.  (Prose such as "LoadCredential= in the unit"
 * is not spelt like a setting.)
 */
START_TEST(test_sample_mentions_only_settings)
{
	ck_assert_msg(conf_mentions_found.n > 0, "%s mentions no settings at all", SAMPLE_CONF_PATH);
	for (size_t i = 0; i < conf_mentions_found.n; i++) {
		const struct conf_mention *m = &conf_mentions_found.m[i];
		char full[2 * NAME_MAX_LEN];

		if (!is_settings_block(m->group) || !setting_like(m->name))
			continue;
		snprintf(full, sizeof(full), "%s%s%s", m->group, m->group[0] ? "." : "", m->name);
		ck_assert_msg(is_setting(full) || is_settings_block(full),
		              "%s:%zu: mentions '%s', which the parser does not accept",
		              SAMPLE_CONF_PATH, m->line, full);
	}
}
END_TEST

/* The schema against the man page */

/*
 * What the man page says of one setting, from its item: the ".It Cm NAME
 * Pq TYPE , default X" line and the text up to the next item of the same
 * list.  `prose` is that text as a reader sees it: macro names dropped,
 * "\&" removed, lines joined by blanks.
 */
struct man_says {
	char type[32];             /* "integer", "list of strings" */
	bool required;
	bool has_default;          /* the Pq gives a default in any form */
	char literal[NAME_MAX_LEN]; /* a default value as written: "1883", "true", or the Qq
	                               argument; "" when the default is prose ("unset", "none") */
	bool quoted;               /* `literal` came from Qq */
	char *prose;               /* malloc'ed */
	char *raw;                 /* the item's lines as written, joined by '\n'; malloc'ed */
};

static void man_says_free(struct man_says *ms)
{
	free(ms->prose);
	free(ms->raw);
	ms->prose = ms->raw = NULL;
}

/* Appends `s` (`len` bytes) to a growing string. */
static void append(char **buf, size_t *len, const char *s, size_t n)
{
	char *grown = realloc(*buf, *len + n + 1);

	ck_assert_ptr_nonnull(grown);
	memcpy(grown + *len, s, n);
	*len += n;
	grown[*len] = '\0';
	*buf = grown;
}

/* `s` without the roff escape "\&", which only keeps a '.' from starting a request. */
static void unescape(char *s)
{
	char *o = s;

	for (const char *p = s; *p != '\0'; p++) {
		if (p[0] == '\\' && p[1] == '&')
			p++;
		else
			*o++ = *p;
	}
	*o = '\0';
}

/*
 * Reads the Pq arguments after ".It Cm NAME " in `line`: "Pq integer ,
 * default 1883", "Pq string , required", "Pq string".
 */
static void parse_pq(const char *line, struct man_says *ms)
{
	const char *p = strstr(line, " Pq ");
	char args[256], *part, *save = NULL;
	bool first = true;

	ck_assert_msg(p != NULL, "no Pq in \"%s\"", line);
	snprintf(args, sizeof(args), "%s", p + 4);
	for (part = strtok_r(args, ",", &save); part != NULL; part = strtok_r(NULL, ",", &save)) {
		char *end = part + strlen(part);

		while (*part == ' ')
			part++;
		while (end > part && end[-1] == ' ')
			*--end = '\0';
		if (first) {
			snprintf(ms->type, sizeof(ms->type), "%s", part);
			first = false;
		} else if (strcmp(part, "required") == 0) {
			ms->required = true;
		} else if (strncmp(part, "default", 7) == 0) {
			const char *v = part + 7;

			ms->has_default = true;
			if (strncmp(v, " Qq ", 4) == 0) {
				snprintf(ms->literal, sizeof(ms->literal), "%s", v + 4);
				unescape(ms->literal);
				ms->quoted = true;
			} else if (*v == ' ' && (strspn(v + 1, "-0123456789") == strlen(v + 1)
			                         || strcmp(v + 1, "true") == 0
			                         || strcmp(v + 1, "false") == 0)) {
				snprintf(ms->literal, sizeof(ms->literal), "%s", v + 1);
			}
		}
	}
}

/*
 * What the man page `t` says of the setting documented by the item at line
 * `at` (1-based).  The item's text runs to the next ".It" or ".El" of its
 * own list; lists nested in it are part of it.
 */
static void man_read_item(const struct text *t, size_t at, struct man_says *ms)
{
	size_t plen = 0, rlen = 0;
	int depth = 0;

	memset(ms, 0, sizeof(*ms));
	parse_pq(t->line[at - 1], ms);
	append(&ms->prose, &plen, "", 0);
	append(&ms->raw, &rlen, "", 0);
	for (size_t i = at; i < t->n; i++) {
		const char *l = t->line[i];

		if (strncmp(l, ".Bl", 3) == 0)
			depth++;
		else if (strncmp(l, ".El", 3) == 0 && depth-- == 0)
			break;
		else if ((strncmp(l, ".It", 3) == 0 && depth == 0) || strncmp(l, ".Ss", 3) == 0
		         || strncmp(l, ".Sh", 3) == 0)
			break;
		append(&ms->raw, &rlen, l, strlen(l));
		append(&ms->raw, &rlen, "\n", 1);
		if (l[0] == '.')
			l += strcspn(l, " \t");     /* the macro's name */
		while (*l == ' ' || *l == '\t')
			l++;
		append(&ms->prose, &plen, l, strlen(l));
		append(&ms->prose, &plen, " ", 1);
	}
	unescape(ms->prose);
}

/* Whether `text` holds `phrase` with no digit right before or after it. */
static bool says(const char *text, const char *phrase)
{
	size_t len = strlen(phrase);

	for (const char *p = strstr(text, phrase); p != NULL; p = strstr(p + 1, phrase)) {
		bool digit_before = p > text && isdigit((unsigned char)p[-1]);
		bool digit_after = isdigit((unsigned char)p[len]);

		if (!digit_before && !digit_after)
			return true;
	}
	return false;
}

/* Whether `raw` has the roff request or argument "MACRO ARG" for a whole ARG. */
static bool says_macro(const char *raw, const char *macro, const char *arg)
{
	char want[NAME_MAX_LEN * 2];
	size_t len;

	len = (size_t)snprintf(want, sizeof(want), "%s %s", macro, arg);
	for (const char *p = strstr(raw, want); p != NULL; p = strstr(p + 1, want))
		if (p[len] == '\0' || p[len] == ' ' || p[len] == '\n')
			return true;
	return false;
}

/* The i-th setting of the schema, in config_setting_at()'s order. */
static void schema_row(size_t i, const struct section **sec, const struct setting **row)
{
	for (int s = 0; s < N_SECTIONS; s++) {
		if (i < schema[s].n) {
			*sec = &schema[s];
			*row = &schema[s].rows[i];
			return;
		}
		i -= schema[s].n;
	}
	ck_abort_msg("no setting %zu in the schema", i);
}

static const char *type_word(enum schema_kind kind)
{
	switch (kind) {
	case SK_STRING:
	case SK_CHOICE:
		return "string";
	case SK_INT:
	case SK_INT64:
		return "integer";
	case SK_BOOL:
	case SK_PERSIST:
		return "boolean";
	case SK_FILTERS:
	case SK_HOSTS:
		return "list of strings";
	case SK_FIELDS:
		return "group";
	}
	return "?";
}

/*
 * The default the schema gives row `r`, as the man page must write it
 * (`quoted`: with Qq); "" when the setting has none to state.
 */
static void schema_default(const struct setting *r, char *buf, size_t size, bool *quoted)
{
	*quoted = false;
	buf[0] = '\0';
	if (r->flags & SF_REQUIRED)
		return;
	switch (r->kind) {
	case SK_STRING:
		if (r->def_str != NULL) {
			snprintf(buf, size, "%s", r->def_str);
			*quoted = true;
		}
		break;
	case SK_INT:
	case SK_INT64:
		snprintf(buf, size, "%lld", (long long)r->def);
		break;
	case SK_BOOL:
		snprintf(buf, size, "%s", r->def ? "true" : "false");
		break;
	case SK_CHOICE:
		for (size_t i = 0; r->choices[i] != NULL; i++)
			if ((r->values != NULL ? r->values[i] : (int)i) == (int)r->def)
				snprintf(buf, size, "%s", r->choices[i]);
		*quoted = true;
		break;
	case SK_PERSIST:
	case SK_FILTERS:
	case SK_FIELDS:
	case SK_HOSTS:
		break;
	}
}

/*
 * Asserts that the man page item `ms` of setting `full` agrees with its
 * row: type, required or default, range or length, accepted values, and
 * the settings it is bound to.  `what` names the page in messages.
 */
static void assert_man_agrees(const char *what, const char *full, const struct section *sec,
                              const struct setting *r, const struct man_says *ms)
{
	char def[NAME_MAX_LEN], phrase[160];
	bool quoted;

	ck_assert_msg(strcmp(ms->type, type_word(r->kind)) == 0,
	              "%s: %s is a %s, not a%s %s", what, full, type_word(r->kind),
	              strchr("aeiou", ms->type[0]) ? "n" : "", ms->type);
	ck_assert_msg(ms->required == ((r->flags & SF_REQUIRED) != 0),
	              "%s: %s is %srequired", what, full, (r->flags & SF_REQUIRED) ? "" : "not ");
	schema_default(r, def, sizeof(def), &quoted);
	if (def[0] != '\0')
		ck_assert_msg(strcmp(ms->literal, def) == 0 && ms->quoted == quoted,
		              "%s: the default of %s is %s%s, not \"%s\" (expected \"default %s%s\" "
		              "in its Pq)", what, full, quoted ? "Qq " : "", def,
		              ms->has_default ? ms->literal : "(none stated)", quoted ? "Qq " : "", def);
	else
		ck_assert_msg(ms->literal[0] == '\0', "%s: %s has no default value, but the page "
		              "gives it \"%s\"", what, full, ms->literal);

	if (r->kind == SK_INT || r->kind == SK_INT64) {
		if (r->at_least != NULL)
			snprintf(phrase, sizeof(phrase), "from %s.%s to %lld", sec->name, r->at_least,
			         (long long)r->max);
		else
			snprintf(phrase, sizeof(phrase), "%lld to %lld", (long long)r->min,
			         (long long)r->max);
		ck_assert_msg(says(ms->prose, phrase), "%s: %s does not state its range \"%s\"", what,
		              full, phrase);
	}
	if (r->kind == SK_STRING && r->max > 0) {
		if (r->flags & SF_NONEMPTY)
			snprintf(phrase, sizeof(phrase), "1 to %lld bytes", (long long)r->max);
		else
			snprintf(phrase, sizeof(phrase), "at most %lld bytes", (long long)r->max);
		ck_assert_msg(says(ms->prose, phrase), "%s: %s does not state its length \"%s\"", what,
		              full, phrase);
	}
	for (size_t i = 0; r->choices != NULL && r->choices[i] != NULL; i++)
		ck_assert_msg(says_macro(ms->raw, "Qq", r->choices[i]),
		              "%s: %s does not name its value \"%s\" (as \"Qq %s\")", what, full,
		              r->choices[i], r->choices[i]);
	if (r->tls_default != NULL)
		ck_assert_msg(says_macro(ms->raw, "Pa", r->tls_default),
		              "%s: %s does not name the store used without it, \"Pa %s\"", what, full,
		              r->tls_default);
	if (r->differs != NULL || r->comes_with != NULL || r->instead != NULL) {
		snprintf(phrase, sizeof(phrase), "%s.%s", sec->name,
		         r->differs != NULL ? r->differs
		         : r->comes_with != NULL ? r->comes_with : r->instead);
		ck_assert_msg(says_macro(ms->raw, "Cm", phrase), "%s: %s does not name %s, which it "
		              "is bound to", what, full, phrase);
	}
	if (r->flags & SF_MQTT5)
		ck_assert_msg(says(ms->prose, "MQTT 5"), "%s: %s does not say it is for MQTT 5",
		              what, full);
}

/* Run once per setting: `_i` is its index in config_setting_at(). */
START_TEST(test_man_agrees_with_schema)
{
	const struct section *sec;
	const struct setting *r;
	const struct man_item *found = NULL;
	struct man_says ms;
	char full[NAME_MAX_LEN], where[NAME_MAX_LEN + 16];

	schema_row((size_t)_i, &sec, &r);
	snprintf(full, sizeof(full), "%s.%s", sec->name, r->name);
	for (size_t i = 0; i < man_items.n && found == NULL; i++)
		if (strcmp(man_items.item[i].full, full) == 0)
			found = &man_items.item[i];
	ck_assert_msg(found != NULL, "%s does not document setting '%s'", MAN5_PATH, full);
	man_read_item(&man_text, found->line, &ms);
	snprintf(where, sizeof(where), "%s:%zu", "mqtt-amqp-bridge.conf.5", found->line);
	assert_man_agrees(where, full, sec, r, &ms);
	man_says_free(&ms);
}
END_TEST

/* The schema against the README */

/* Whether `cell` states a value ("`text`", a number, true or false) rather than words. */
static bool states_value(const char *cell)
{
	size_t word = strspn(cell, "abcdefghijklmnopqrstuvwxyz");

	return cell[0] == '`' || cell[0] == '-' || isdigit((unsigned char)cell[0])
	       || (word == 4 && strncmp(cell, "true", 4) == 0)
	       || (word == 5 && strncmp(cell, "false", 5) == 0);
}

/*
 * The group GROUP of a default cell "as for `GROUP`", which says the
 * setting is as the one of the same name in GROUP; NULL for another cell.
 */
static const struct section *as_for(const char *cell)
{
	char group[NAME_MAX_LEN];
	const char *p;

	if (strncmp(cell, "as for ", 7) != 0)
		return NULL;
	p = backquoted(cell + 7, group, sizeof(group));
	if (p == NULL || *p != '\0')
		return NULL;
	for (int s = 0; s < N_SECTIONS; s++)
		if (strcmp(schema[s].name, group) == 0)
			return &schema[s];
	return NULL;
}

/* Whether rows `a` and `b` accept the same values and have the same default. */
static bool same_setting(const struct setting *a, const struct setting *b)
{
	char da[NAME_MAX_LEN], db[NAME_MAX_LEN];
	bool qa, qb;
	size_t i = 0;

	schema_default(a, da, sizeof(da), &qa);
	schema_default(b, db, sizeof(db), &qb);
	if (a->kind != b->kind || (a->flags & SF_REQUIRED) != (b->flags & SF_REQUIRED)
	    || strcmp(da, db) != 0 || qa != qb || a->min != b->min || a->max != b->max)
		return false;
	if ((a->choices == NULL) != (b->choices == NULL))
		return false;
	for (; a->choices != NULL && a->choices[i] != NULL; i++)
		if (b->choices[i] == NULL || strcmp(a->choices[i], b->choices[i]) != 0)
			return false;
	return a->choices == NULL || b->choices[i] == NULL;
}

/* Whether `cell` is `value` written as "`value`" or "`"value"`". */
static bool written_as(const char *cell, const char *value)
{
	size_t len = strlen(value);

	if (cell[0] != '`')
		return false;
	cell++;
	if (cell[0] == '"' && strncmp(cell + 1, value, len) == 0
	    && strcmp(cell + 1 + len, "\"`") == 0)
		return true;
	return strncmp(cell, value, len) == 0 && strcmp(cell + len, "`") == 0;
}

/* Whether `cell` names `value` as "`value`" or "`"value"`". */
static bool names_value(const char *cell, const char *value)
{
	char plain[NAME_MAX_LEN + 2], quoted[NAME_MAX_LEN + 4];

	snprintf(plain, sizeof(plain), "`%s`", value);
	snprintf(quoted, sizeof(quoted), "`\"%s\"`", value);
	return strstr(cell, plain) != NULL || strstr(cell, quoted) != NULL;
}

/*
 * Asserts that the README entry `e` of setting `full` agrees with its row:
 * "(required)" exactly for a required setting; its default as the schema
 * gives it (a number or a boolean as it is, text as "`text`" or
 * "`"text"`"), or, without one, words that state no value ("unset",
 * "none", "the rules' filters"), or "as for `GROUP`" when the setting of
 * that name in GROUP is the same; in the "range / values" cell, an
 * integer's range "MIN..MAX" (or "`OTHER`..MAX"), every accepted value,
 * the CA store it falls back to, and a string's length where it gives
 * one ("at most N bytes").  The row an "as for" refers to states the
 * range and the values for both.
 */
static void assert_readme_agrees(const struct readme_entry *e, const char *full,
                                 const struct section *sec, const struct setting *r)
{
	const struct section *other = as_for(e->def);
	char def[NAME_MAX_LEN], want[NAME_MAX_LEN * 2];
	const char *at_most;
	bool quoted;

	schema_default(r, def, sizeof(def), &quoted);
	if (r->flags & SF_REQUIRED) {
		ck_assert_msg(strcmp(e->def, "(required)") == 0, "%s:%zu: %s is required, but its "
		              "default is \"%s\", not \"(required)\"", README_PATH, e->line, full,
		              e->def);
	} else if (other != NULL) {
		int o = schema_find(other, r->name);

		ck_assert_msg(o >= 0 && other != sec && same_setting(r, &other->rows[o]),
		              "%s:%zu: %s is \"%s\", but %s.%s %s", README_PATH, e->line, full, e->def,
		              other->name, r->name, other == sec ? "is itself"
		              : o < 0 ? "does not exist" : "differs in its values or its default");
	} else if (def[0] == '\0') {
		ck_assert_msg(e->def[0] != '\0' && !states_value(e->def)
		              && strcmp(e->def, "(required)") != 0, "%s:%zu: %s has no default value "
		              "and is not required, but the table gives it \"%s\" (expected words "
		              "such as \"unset\" or \"none\")", README_PATH, e->line, full, e->def);
	} else if (quoted) {
		ck_assert_msg(written_as(e->def, def), "%s:%zu: the default of %s is \"%s\", not %s "
		              "(expected \"`%s`\" or \"`\\\"%s\\\"`\")", README_PATH, e->line, full, def,
		              e->def, def, def);
	} else {
		ck_assert_msg(strcmp(e->def, def) == 0, "%s:%zu: the default of %s is %s, not %s",
		              README_PATH, e->line, full, def, e->def);
	}

	if (other == NULL && (r->kind == SK_INT || r->kind == SK_INT64)) {
		if (r->at_least != NULL)
			snprintf(want, sizeof(want), "`%s`..%lld", r->at_least, (long long)r->max);
		else
			snprintf(want, sizeof(want), "%lld..%lld", (long long)r->min, (long long)r->max);
		ck_assert_msg(says(e->range, want), "%s:%zu: %s does not give its range \"%s\" (it "
		              "says \"%s\")", README_PATH, e->line, full, want, e->range);
	}
	for (size_t i = 0; other == NULL && r->choices != NULL && r->choices[i] != NULL; i++)
		ck_assert_msg(names_value(e->range, r->choices[i]), "%s:%zu: %s does not name its "
		              "value \"%s\" (as \"`%s`\")", README_PATH, e->line, full, r->choices[i],
		              r->choices[i]);
	if (r->tls_default != NULL)
		ck_assert_msg(names_value(e->range, r->tls_default), "%s:%zu: %s does not name the "
		              "store used without it, \"`%s`\"", README_PATH, e->line, full,
		              r->tls_default);
	at_most = strstr(e->range, "at most ");
	if (at_most != NULL && isdigit((unsigned char)at_most[8])) {
		long long n = strtoll(at_most + 8, NULL, 10);

		ck_assert_msg(r->kind == SK_STRING, "%s:%zu: %s is not a string, but the table "
		              "gives it a length", README_PATH, e->line, full);
		ck_assert_msg(n == r->max, "%s:%zu: %s is at most %lld bytes (0: any length), not "
		              "%lld", README_PATH, e->line, full, (long long)r->max, n);
	}
}

/* Run once per setting: `_i` is its index in config_setting_at(). */
START_TEST(test_readme_agrees_with_schema)
{
	const struct section *sec;
	const struct setting *r;
	const struct readme_entry *found = NULL;
	char full[NAME_MAX_LEN];
	size_t count = 0;

	schema_row((size_t)_i, &sec, &r);
	snprintf(full, sizeof(full), "%s.%s", sec->name, r->name);
	for (size_t i = 0; i < readme_entries.n; i++) {
		if (strcmp(readme_entries.e[i].full, full) == 0) {
			found = &readme_entries.e[i];
			count++;
		}
	}
	/* A list's settings may be summed up by a row of the list's own name. */
	for (size_t i = 0; count == 0 && sec->list && i < readme_entries.n; i++)
		if (strcmp(readme_entries.e[i].full, sec->name) == 0)
			return;
	ck_assert_msg(count > 0, "%s does not list setting '%s' in a settings table (expected a "
	              "row with \"`%s`\" in the group `%s`)", README_PATH, full, r->name, sec->name);
	ck_assert_msg(count == 1, "%s lists setting '%s' %zu times", README_PATH, full, count);
	assert_readme_agrees(found, full, sec, r);
}
END_TEST

START_TEST(test_readme_lists_only_settings)
{
	ck_assert_msg(readme_entries.n > 0, "%s has no settings table", README_PATH);
	for (size_t i = 0; i < readme_entries.n; i++)
		ck_assert_msg(is_setting(readme_entries.e[i].full)
		              || is_settings_block(readme_entries.e[i].full),
		              "%s:%zu: lists '%s', which the parser does not accept", README_PATH,
		              readme_entries.e[i].line, readme_entries.e[i].full);
}
END_TEST

/*
 * Run once per setting: `_i` is its index in config_setting_at().  A
 * setting the sample shows commented out is one the sample leaves at its
 * default, so the line must show the default the parser applies.  A
 * setting without a default shows an example instead, and is not checked.
 */
START_TEST(test_sample_shows_defaults)
{
	const struct section *sec;
	const struct setting *r;
	char def[NAME_MAX_LEN], value[NAME_MAX_LEN];
	bool quoted, value_quoted;

	schema_row((size_t)_i, &sec, &r);
	schema_default(r, def, sizeof(def), &quoted);
	if (def[0] == '\0')
		return;
	for (size_t i = 0; i < conf_mentions_found.n; i++) {
		const struct conf_mention *m = &conf_mentions_found.m[i];

		if (!m->commented || strcmp(m->group, sec->name) != 0 || strcmp(m->name, r->name) != 0)
			continue;
		ck_assert_msg(conf_scalar(m->value, value, sizeof(value), &value_quoted),
		              "%s:%zu: %s.%s is commented out, which shows its default, but not as "
		              "\"# %s = VALUE;\"", SAMPLE_CONF_PATH, m->line, sec->name, r->name,
		              r->name);
		ck_assert_msg(strcmp(value, def) == 0 && value_quoted == quoted,
		              "%s:%zu: %s.%s is commented out, which shows its default, %s%s%s, not "
		              "%s%s%s", SAMPLE_CONF_PATH, m->line, sec->name, r->name,
		              quoted ? "\"" : "", def, quoted ? "\"" : "", value_quoted ? "\"" : "",
		              value, value_quoted ? "\"" : "");
	}
}
END_TEST

/* The item reader and the phrase matchers themselves. */
START_TEST(test_man_item_is_read)
{
	static const char page[] =
		".Bl -tag -width Ds\n"
		".It Cm g.port Pq integer , default 1883\n"
		"TCP port, 1 to\n"
		".Cm g.other\n"
		"65535.\n"
		".Bl -tag -width Ds\n"
		".It Li {1}\n"
		"A nested item is part of the text.\n"
		".El\n"
		"After the nested list: still\n"
		".Qq tlsv1.2 ,\n"
		".Qq tlsv1.3 .\n"
		".It Cm g.name Pq string , default Qq \\&.\n"
		"At most 8 bytes; 11 to 655350.\n"
		".It Cm g.list Pq list of strings , default from the rules\n"
		".It Cm g.host Pq string , required\n"
		".El\n"
		"Not part of any item.\n";
	struct text t;
	struct man_says ms;

	text_split(&t, page);
	man_read_item(&t, 2, &ms);
	ck_assert_str_eq(ms.type, "integer");
	ck_assert(!ms.required && ms.has_default && !ms.quoted);
	ck_assert_str_eq(ms.literal, "1883");
	ck_assert(says(ms.prose, "1 to g.other 65535"));
	ck_assert(!says(ms.prose, "1 to 65535"));
	ck_assert(says(ms.prose, "A nested item is part of the text."));
	ck_assert(says(ms.prose, "After the nested list"));
	ck_assert(says_macro(ms.raw, "Qq", "tlsv1.2"));
	ck_assert(says_macro(ms.raw, "Qq", "tlsv1.3"));
	ck_assert(!says_macro(ms.raw, "Qq", "tlsv1"));
	ck_assert(!says_macro(ms.raw, "Cm", "g"));
	ck_assert_ptr_null(strstr(ms.raw, "g.name"));
	man_says_free(&ms);

	man_read_item(&t, 13, &ms);
	ck_assert_str_eq(ms.type, "string");
	ck_assert(ms.quoted);
	ck_assert_str_eq(ms.literal, ".");
	ck_assert(says(ms.prose, "At most 8 bytes"));
	/* Digits around a number are part of another number. */
	ck_assert(!says(ms.prose, "1 to 65535"));
	ck_assert(says(ms.prose, "11 to 655350"));
	man_says_free(&ms);

	man_read_item(&t, 15, &ms);
	ck_assert_str_eq(ms.type, "list of strings");
	ck_assert(ms.has_default);
	ck_assert_str_eq(ms.literal, "");
	man_says_free(&ms);

	man_read_item(&t, 16, &ms);
	ck_assert(ms.required && !ms.has_default);
	ck_assert_str_eq(ms.prose, "");
	man_says_free(&ms);
	text_free(&t);
}
END_TEST

/* How a row's default is to be written, for each kind of row. */
START_TEST(test_schema_defaults_as_stated)
{
	static const char *const names[] = { "3.1.1", "5", NULL };
	static const int values[] = { 4, 5 };
	static const char *const levels[] = { "error", "info", NULL };
	const struct {
		struct setting row;
		const char *want;
		bool quoted;
	} cases[] = {
		{ { .kind = SK_INT, .def = 1883 }, "1883", false },
		{ { .kind = SK_INT64, .def = -5 }, "-5", false },
		{ { .kind = SK_BOOL, .def = true }, "true", false },
		{ { .kind = SK_BOOL, .def = false }, "false", false },
		{ { .kind = SK_CHOICE, .def = 4, .choices = names, .values = values }, "3.1.1", true },
		{ { .kind = SK_CHOICE, .def = 1, .choices = levels }, "info", true },
		{ { .kind = SK_STRING, .def_str = "guest" }, "guest", true },
		{ { .kind = SK_STRING }, "", false },
		{ { .kind = SK_STRING, .flags = SF_REQUIRED, .def_str = "x" }, "", false },
		{ { .kind = SK_INT, .flags = SF_REQUIRED, .def = 1 }, "", false },
		{ { .kind = SK_PERSIST }, "", false },
		{ { .kind = SK_FILTERS }, "", false },
		{ { .kind = SK_FIELDS }, "", false },
	};
	char def[NAME_MAX_LEN];
	bool quoted;

	for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
		schema_default(&cases[i].row, def, sizeof(def), &quoted);
		ck_assert_msg(strcmp(def, cases[i].want) == 0 && quoted == cases[i].quoted,
		              "case %zu: \"%s\"%s, wanted \"%s\"%s", i, def, quoted ? " quoted" : "",
		              cases[i].want, cases[i].quoted ? " quoted" : "");
	}
}
END_TEST

/* The scanners themselves: whole words, the right block, the right section. */
START_TEST(test_man_scan_is_exact)
{
	static const char page[] =
		".Sh DESCRIPTION\n"
		".Bl -tag -width Ds\n"
		".It Cm amqp.port\n"
		".El\n"
		".Sh SETTINGS\n"
		".Ss The mqtt group\n"
		".Bl -tag -width Ds\n"
		".It Cm mqtt.password_file Pq string\n"
		".It Cm mqtt.port\n"
		".It Cm mqtt.host Pq string , required\n"
		".El\n"
		".Ss The amqp group\n"
		".Bl -tag -width Ds\n"
		".It Cm mqtt.keepalive Pq integer\n"
		".El\n"
		".Ss The rules list\n"
		".Bl -tag -width Ds\n"
		".It Cm rules.match Pq string\n"
		".El\n"
		".Ss The topology group\n"
		".Bl -tag -width Ds\n"
		".It Cm topology.exchanges.name Pq string\n"
		".El\n"
		".Ss The rules of thumb\n"
		".Bl -tag -width Ds\n"
		".It Cm rules.drop\n"
		".El\n"
		".Sh EXAMPLES\n"
		".Bl -tag -width Ds\n"
		".It Cm rules.exchange\n"
		".El\n";
	struct text t;
	struct man_items items;

	text_split(&t, page);
	man_scan(&t, &items);
	ck_assert_uint_eq(items.n, 7);
	ck_assert_str_eq(items.item[0].full, "mqtt.password_file");
	ck_assert_str_eq(items.item[0].under, "mqtt");
	ck_assert_str_eq(items.item[1].full, "mqtt.port");
	ck_assert_str_eq(items.item[2].full, "mqtt.host");
	ck_assert_str_eq(items.item[3].full, "mqtt.keepalive");
	ck_assert_str_eq(items.item[3].under, "amqp");
	ck_assert_str_eq(items.item[4].full, "rules.match");
	ck_assert_str_eq(items.item[4].under, "rules");
	ck_assert_str_eq(items.item[5].full, "topology.exchanges.name");
	ck_assert_str_eq(items.item[5].under, "topology");
	/* A subsection that is not "The TOP group" or "The TOP list" belongs to none. */
	ck_assert_str_eq(items.item[6].full, "rules.drop");
	ck_assert_str_eq(items.item[6].under, "");
	ck_assert_uint_eq(items.item[6].line, 26);
	for (size_t i = 0; i < items.n; i++) {
		ck_assert_str_ne(items.item[i].full, "mqtt.password");
		ck_assert_str_ne(items.item[i].full, "amqp.port");
		ck_assert_str_ne(items.item[i].full, "rules.exchange");
	}
	free(items.item);
	text_free(&t);
}
END_TEST

START_TEST(test_conf_scan_is_exact)
{
	static const char conf[] =
		"# host = \"outside any group\";\n"
		"mqtt = {\n"
		"\t# Credentials: password_file = or username.\n"
		"\thost = \"a\";\n"
		"\t# port = 1883;\n"
		"\t#keepalive=60;\n"
		"\tsubscribe = [ \"a/#\", \"b/{\" ];\n"
		"\tnested = {\n"
		"\t\tinner = 1;\n"
		"\t};\n"
		"};\n"
		"amqp = { host = \"b\"; };\n"
		"bridge =\n"
		"\n"
		"{\n"
		"\tlog_level = \"info\";\n"
		"};\n"
		"rules = (\n"
		"\t{\n"
		"\t\tmatch = \"a/(#\";\n"
		"\t\theaders = { kind = \"x\"; };\n"
		"\t\t# drop = true;\n"
		"\t},\n"
		"\t{ exchange = \"e\";\n"
		"\t\theaders =\n"
		"\t\t{\n"
		"\t\t\tkind = \"y\";\n"
		"\t\t};\n"
		"\t\tcontinue = true; # ) ]\n"
		"\t}\n"
		");\n"
		"topology = {\n"
		"\texchanges = ( {\n"
		"\t\tname = \"t\";\n"
		"\t\targuments = {\n"
		"\t\t\tx-max-length = 10;\n"
		"\t\t};\n"
		"\t} );\n"
		"\tqueues = (\n"
		"\t\t{\n"
		"\t\t\tname = \"q\";\n"
		"\t\t}\n"
		"\t);\n"
		"\t# bindings = ();\n"
		"};\n";
	struct text t;
	struct conf_mentions c;

	text_split(&t, conf);
	conf_scan(&t, &c);
	ck_assert(conf_mentions(&c, "mqtt", "host"));
	ck_assert(conf_mentions(&c, "mqtt", "port"));
	ck_assert(conf_mentions(&c, "mqtt", "keepalive"));
	ck_assert(conf_mentions(&c, "mqtt", "subscribe"));
	ck_assert(conf_mentions(&c, "mqtt", "nested"));
	ck_assert(conf_mentions(&c, "mqtt.nested", "inner"));
	ck_assert(!conf_mentions(&c, "mqtt", "inner"));
	ck_assert(!conf_mentions(&c, "mqtt", "password_file"));
	ck_assert(!conf_mentions(&c, "amqp", "port"));
	/* A one-line block: its settings are not at the start of a line. */
	ck_assert(!conf_mentions(&c, "amqp", "host"));
	ck_assert(conf_mentions(&c, "", "host"));
	ck_assert(conf_mentions(&c, "", "amqp"));
	ck_assert(conf_mentions(&c, "bridge", "log_level"));
	/* The elements of a list: their settings belong to the list's name. */
	ck_assert(conf_mentions(&c, "", "rules"));
	ck_assert(conf_mentions(&c, "rules", "match"));
	ck_assert(conf_mentions(&c, "rules", "headers"));
	ck_assert(conf_mentions(&c, "rules", "drop"));
	ck_assert(!conf_mentions(&c, "rules", "kind"));
	ck_assert(conf_mentions(&c, "rules.headers", "kind"));
	/* After "{ exchange =" on one line: not at the start of the line. */
	ck_assert(!conf_mentions(&c, "rules", "exchange"));
	ck_assert(conf_mentions(&c, "rules", "continue"));
	ck_assert(conf_mentions(&c, "topology", "exchanges"));
	ck_assert(conf_mentions(&c, "topology.exchanges", "name"));
	ck_assert(conf_mentions(&c, "topology.exchanges", "arguments"));
	ck_assert(conf_mentions(&c, "topology.exchanges.arguments", "x-max-length"));
	ck_assert(conf_mentions(&c, "topology.queues", "name"));
	ck_assert(conf_mentions(&c, "topology", "bindings"));
	ck_assert(!conf_mentions(&c, "topology", "name"));
	ck_assert(!conf_mentions(&c, "", "name"));
	ck_assert_uint_eq(c.m[c.n - 1].line, 44);
	free(c.m);
	text_free(&t);
}
END_TEST

/* One-line values: strings unescaped, bare words as written, nothing that goes on. */
START_TEST(test_conf_scalar_is_exact)
{
	const struct {
		const char *text;
		bool ok;
		const char *value;
		bool quoted;
	} cases[] = {
		{ " 1883;", true, "1883", false },
		{ "86400L;  # with the suffix", true, "86400L", false },
		{ " false ;", true, "false", false },
		{ " \"3.1.1\";", true, "3.1.1", true },
		{ " \"a\\\"b\\\\\";", true, "a\"b\\", true },
		{ " \"\",", true, "", true },
		{ " \"x\"; // comment", true, "x", true },
		{ " 1883", false, NULL, false },
		{ " 1883; port = 1;", false, NULL, false },
		{ " \"unterminated;", false, NULL, false },
		{ " [ \"a/#\" ];", false, NULL, false },
		{ " { };", false, NULL, false },
		{ "", false, NULL, false },
		{ " ;", false, NULL, false },
	};
	char value[NAME_MAX_LEN];
	bool quoted;

	for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
		bool ok = conf_scalar(cases[i].text, value, sizeof(value), &quoted);

		ck_assert_msg(ok == cases[i].ok, "case %zu: \"%s\" %s", i, cases[i].text,
		              ok ? "read" : "not read");
		if (ok)
			ck_assert_msg(strcmp(value, cases[i].value) == 0 && quoted == cases[i].quoted,
			              "case %zu: \"%s\"%s", i, value, quoted ? " quoted" : "");
	}
}
END_TEST

START_TEST(test_readme_scan_is_exact)
{
	static const char readme[] =
		"| MQTT | AMQP |\n"
		"|------|------|\n"
		"| `a/b` | `a.b` |\n"
		"\n"
		"| group    | setting    | default   | range / values |\n"
		"|----------|------------|-----------|----------------|\n"
		"| `mqtt`   | `port`     | 1883      | 1..65535       |\n"
		"|          | `username`, `password` | `guest`, `guest` | |\n"
		"|          | `tls_ca_file`, `tls_ca_dir` | none, here, or there | CA |\n"
		"| `topology` | `exchanges` | none   | lists          |\n"
		"\n"
		"| `amqp`   | `host`     | (required) |               |\n";
	struct text t;
	struct readme_entries r;

	text_split(&t, readme);
	readme_scan(&t, &r);
	/* Neither the other table nor a row after the settings table ended. */
	ck_assert_uint_eq(r.n, 6);
	ck_assert_str_eq(r.e[0].full, "mqtt.port");
	ck_assert_str_eq(r.e[0].def, "1883");
	ck_assert_str_eq(r.e[0].range, "1..65535");
	ck_assert_uint_eq(r.e[0].line, 7);
	/* As many parts as settings: one each. */
	ck_assert_str_eq(r.e[1].full, "mqtt.username");
	ck_assert_str_eq(r.e[1].def, "`guest`");
	ck_assert_str_eq(r.e[2].full, "mqtt.password");
	ck_assert_str_eq(r.e[2].def, "`guest`");
	ck_assert_str_eq(r.e[2].range, "");
	/* Otherwise the whole cell, commas and all. */
	ck_assert_str_eq(r.e[3].full, "mqtt.tls_ca_file");
	ck_assert_str_eq(r.e[3].def, "none, here, or there");
	ck_assert_str_eq(r.e[4].def, "none, here, or there");
	ck_assert_str_eq(r.e[5].full, "topology.exchanges");
	free(r.e);
	text_free(&t);
}
END_TEST

/* What a default cell states, and which groups an "as for" names. */
START_TEST(test_readme_cells_are_read)
{
	ck_assert(states_value("`guest`"));
	ck_assert(states_value("1883"));
	ck_assert(states_value("-1"));
	ck_assert(states_value("true"));
	ck_assert(states_value("false"));
	ck_assert(!states_value("unset"));
	ck_assert(!states_value("none"));
	ck_assert(!states_value("the rules' filters"));
	ck_assert(!states_value("trueness"));
	ck_assert(!states_value("from `amqp.exchange`"));
	ck_assert(written_as("`tlsv1.2`", "tlsv1.2"));
	ck_assert(written_as("`\"3.1.1\"`", "3.1.1"));
	ck_assert(!written_as("`tlsv1.2` or so", "tlsv1.2"));
	ck_assert(!written_as("`tlsv1.2x`", "tlsv1.2"));
	ck_assert(!written_as("\"3.1.1\"", "3.1.1"));
	ck_assert(names_value("`topic`, `direct`", "direct"));
	ck_assert(!names_value("`topic`, `directly`", "direct"));
	ck_assert_ptr_eq(as_for("as for `mqtt`"), &schema[S_MQTT]);
	ck_assert_ptr_null(as_for("as for `mqtt` mostly"));
	ck_assert_ptr_null(as_for("as for `nowhere`"));
	ck_assert_ptr_null(as_for("unset"));
	ck_assert(same_setting(&schema[S_MQTT].rows[schema_find(&schema[S_MQTT], "tls_version")],
	                       &schema[S_AMQP].rows[schema_find(&schema[S_AMQP], "tls_version")]));
	ck_assert(!same_setting(&schema[S_MQTT].rows[schema_find(&schema[S_MQTT], "port")],
	                        &schema[S_AMQP].rows[schema_find(&schema[S_AMQP], "port")]));
}
END_TEST

/*
 * What "documented exactly once" rests on: config_setting_at() names each
 * setting once, with a name that fits, no dots in it, and a group of
 * non-empty dotted parts.
 */
START_TEST(test_settings_are_well_formed)
{
	const char *group, *name, *g2, *n2;
	size_t n = n_settings();

	ck_assert_uint_gt(n, 0);
	for (size_t i = 0; i < n; i++) {
		char full[NAME_MAX_LEN];
		int w;

		ck_assert(config_setting_at(i, &group, &name));
		w = snprintf(full, sizeof(full), "%s.%s", group, name);
		ck_assert_msg(w > 0 && (size_t)w < sizeof(full), "setting name too long: %s.%s",
		              group, name);
		ck_assert_msg(group[0] != '\0' && group[0] != '.' && strstr(group, "..") == NULL
		              && group[strlen(group) - 1] != '.',
		              "setting '%s' has a malformed group", full);
		ck_assert_msg(name[0] != '\0' && strchr(name, '.') == NULL,
		              "setting '%s' has an empty or dotted name", full);
		for (size_t j = 0; j < i; j++) {
			ck_assert(config_setting_at(j, &g2, &n2));
			ck_assert_msg(strcmp(group, g2) != 0 || strcmp(name, n2) != 0,
			              "setting '%s' is listed twice", full);
		}
	}
}
END_TEST

static Suite *docs_suite(void)
{
	Suite *s = suite_create("docs");
	int n = (int)n_settings();
	TCase *tc;

	tc = tcase_create("scanners");
	tcase_add_test(tc, test_man_scan_is_exact);
	tcase_add_test(tc, test_conf_scan_is_exact);
	tcase_add_test(tc, test_settings_are_well_formed);
	tcase_add_test(tc, test_man_item_is_read);
	tcase_add_test(tc, test_schema_defaults_as_stated);
	tcase_add_test(tc, test_conf_scalar_is_exact);
	tcase_add_test(tc, test_readme_scan_is_exact);
	tcase_add_test(tc, test_readme_cells_are_read);
	suite_add_tcase(s, tc);

	tc = tcase_create("man5_agrees_with_schema");
	tcase_add_checked_fixture(tc, docs_setup, docs_teardown);
	tcase_add_loop_test(tc, test_man_agrees_with_schema, 0, n);
	suite_add_tcase(s, tc);

	tc = tcase_create("man5_documents_every_setting");
	tcase_add_checked_fixture(tc, docs_setup, docs_teardown);
	tcase_add_loop_test(tc, test_man_documents_setting, 0, n);
	suite_add_tcase(s, tc);

	tc = tcase_create("man5_documents_only_settings");
	tcase_add_checked_fixture(tc, docs_setup, docs_teardown);
	tcase_add_test(tc, test_man_documents_only_settings);
	suite_add_tcase(s, tc);

	tc = tcase_create("sample_mentions_every_setting");
	tcase_add_checked_fixture(tc, docs_setup, docs_teardown);
	tcase_add_loop_test(tc, test_sample_mentions_setting, 0, n);
	suite_add_tcase(s, tc);

	tc = tcase_create("sample_mentions_only_settings");
	tcase_add_checked_fixture(tc, docs_setup, docs_teardown);
	tcase_add_test(tc, test_sample_mentions_only_settings);
	suite_add_tcase(s, tc);

	tc = tcase_create("sample_shows_defaults");
	tcase_add_checked_fixture(tc, docs_setup, docs_teardown);
	tcase_add_loop_test(tc, test_sample_shows_defaults, 0, n);
	suite_add_tcase(s, tc);

	tc = tcase_create("readme_agrees_with_schema");
	tcase_add_checked_fixture(tc, docs_setup, docs_teardown);
	tcase_add_loop_test(tc, test_readme_agrees_with_schema, 0, n);
	suite_add_tcase(s, tc);

	tc = tcase_create("readme_lists_only_settings");
	tcase_add_checked_fixture(tc, docs_setup, docs_teardown);
	tcase_add_test(tc, test_readme_lists_only_settings);
	suite_add_tcase(s, tc);
	return s;
}

int main(void)
{
	SRunner *sr = srunner_create(docs_suite());
	int failed;

	srunner_run_all(sr, CK_NORMAL);
	failed = srunner_ntests_failed(sr);
	srunner_free(sr);
	return failed == 0 ? EXIT_SUCCESS : EXIT_FAILURE;
}
