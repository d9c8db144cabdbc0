#include "cfgsrc.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "secret.h"

#define GROUP_DEPTH_MAX 64

/* Where next_include() is in a file's text; between includes, outside comments and strings. */
struct inc_scan {
	const char *text;
	size_t len;
	size_t pos;
	unsigned line;
	bool bol;                   /* at the start of a line */
	unsigned depth;             /* of groups: 0 is the file's top level */
	unsigned members[GROUP_DEPTH_MAX];  /* settings in each open group */
	unsigned opened[GROUP_DEPTH_MAX];   /* the line of its '{' */
	unsigned big_line;          /* where the first group too large opens; 0: none */
};

/* Counts a group's members by its '{', '}' and assignments ('=' or ':'). */
static void scan_structure(struct inc_scan *sc, char c)
{
	unsigned d = sc->depth < GROUP_DEPTH_MAX ? sc->depth : GROUP_DEPTH_MAX - 1;

	if (c == '{') {
		sc->depth++;
		d = sc->depth < GROUP_DEPTH_MAX ? sc->depth : GROUP_DEPTH_MAX - 1;
		sc->members[d] = 0;
		sc->opened[d] = sc->line;
	} else if (c == '}') {
		if (sc->depth > 0)
			sc->depth--;
	} else if ((c == '=' || c == ':') && ++sc->members[d] > CFGSRC_GROUP_MEMBERS_MAX &&
	           sc->big_line == 0) {
		sc->big_line = d == 0 ? 1 : sc->opened[d];
	}
}

/*
 * Finds the next @include of a file's text as libconfig 1.5's scanner
 * finds one: a line that starts, outside a comment and a string, with
 * optional blanks, "@include", blanks and a double-quoted name, in which
 * \\ and \" stand for \ and " and any other backslash is dropped.  Returns
 * 1 with the name (malloc'ed) and the line of "@include", 0 at the end, -1
 * when memory ran out.
 */
static int next_include(struct inc_scan *sc, char **name, unsigned *line)
{
	const char *t = sc->text;
	size_t n = sc->len, i = sc->pos;

	while (i < n) {
		if (sc->bol) {
			size_t k = i;

			sc->bol = false;
			while (k < n && (t[k] == ' ' || t[k] == '\t'))
				k++;
			if (n - k > 9 && memcmp(t + k, "@include", 8) == 0
			    && (t[k + 8] == ' ' || t[k + 8] == '\t')) {
				size_t start;
				unsigned at = sc->line;
				char *out, *o;

				for (k += 8; k < n && (t[k] == ' ' || t[k] == '\t'); k++)
					;
				if (k == n || t[k] != '"')
					goto other;
				start = ++k;
				while (k < n && t[k] != '"') {
					if (t[k] == '\\' && k + 1 < n && (t[k + 1] == '"' || t[k + 1] == '\\'))
						k++;
					k++;
				}
				if (k == n)     /* unterminated: libconfig reports it */
					goto other;
				out = o = malloc(k - start + 1);
				if (out == NULL)
					return -1;
				for (size_t j = start; j < k; j++) {
					if (t[j] == '\n')
						sc->line++;
					if (t[j] != '\\') {
						*o++ = t[j];
					} else if (j + 1 < k && (t[j + 1] == '"' || t[j + 1] == '\\')) {
						*o++ = t[j + 1];
						j++;
					}
				}
				*o = '\0';
				sc->pos = k + 1;
				*name = out;
				*line = at;
				return 1;
			}
		}
other:
		if (t[i] == '\n') {
			sc->line++;
			sc->bol = true;
			i++;
		} else if (t[i] == '"') {
			for (i++; i < n && t[i] != '"'; i++) {
				if (t[i] == '\\' && i + 1 < n && (t[i + 1] == '"' || t[i + 1] == '\\'))
					i++;
				else if (t[i] == '\n')
					sc->line++;
			}
			i++;
		} else if (t[i] == '/' && i + 1 < n && t[i + 1] == '*') {
			for (i += 2; i < n && !(t[i] == '*' && i + 1 < n && t[i + 1] == '/'); i++)
				if (t[i] == '\n')
					sc->line++;
			i += 2;
		} else if (t[i] == '#' || (t[i] == '/' && i + 1 < n && t[i + 1] == '/')) {
			while (i < n && t[i] != '\n')
				i++;
		} else {
			scan_structure(sc, t[i]);
			i++;
		}
	}
	sc->pos = n;
	return 0;
}

/* Adds an entry to src->f; returns its index, or (size_t)-1 when memory ran out. */
static size_t add_source(struct cfgsrc *src, const char *name, const struct stat *st)
{
	struct cfgsrc_file *f;

	if (src->n == src->cap) {
		size_t cap = src->cap ? src->cap * 2 : 4;
		struct cfgsrc_file *grown = realloc(src->f, cap * sizeof(*grown));

		if (grown == NULL)
			return (size_t)-1;
		src->f = grown;
		src->cap = cap;
	}
	f = &src->f[src->n];
	memset(f, 0, sizeof(*f));
	f->name = strdup(name);
	if (f->name == NULL)
		return (size_t)-1;
	f->text_of = src->n;
	f->dev = st->st_dev;
	f->ino = st->st_ino;
	return src->n++;
}

/*
 * Reads the file open on `fd` into entry `idx`.  libconfig reads the main
 * file from this text, where a NUL byte would end it early, so one is
 * refused; in any file it is garbage to libconfig anyway.
 */
static bool read_source(struct cfgsrc *src, size_t idx, int fd, const char *file, unsigned line,
                        const char *what)
{
	struct cfgsrc_file *f = &src->f[idx];
	const char *nul;
	int err = secret_read_all(fd, &f->text, &f->len);

	if (err != 0) {
		f->text = NULL;
		cfgerr_report(src->ce, file, line, "%s: %s", what, strerror(err));
		return false;
	}
	if ((nul = memchr(f->text, '\0', f->len)) != NULL) {
		unsigned at = 1;

		for (const char *p = f->text; p < nul; p++)
			at += *p == '\n';
		cfgerr_report(src->ce, f->name, at,
		              "holds a NUL byte, which a configuration file cannot hold");
		return false;
	}
	return true;
}

/*
 * Checks the files that the @include lines of entry `idx` (at include
 * depth `depth`) name, and theirs in turn, before libconfig opens them
 * with a blocking fopen() that the loader cannot hook: each must be a
 * regular file, and no file may include one that is still being read
 * (libconfig would go round the cycle to its nesting limit).  Names are
 * taken as libconfig takes them: relative to the working directory, as
 * config_load() sets no include directory.  A file met again is not read
 * again, so every file is checked once, whatever the includes' shape.
 */
static void check_includes(struct cfgsrc *src, size_t idx, unsigned depth)
{
	struct inc_scan sc = { .text = src->f[idx].text, .len = src->f[idx].len, .line = 1,
	                       .bol = true, .opened = { 1 } };
	const char *file = src->f[idx].name;
	unsigned line;
	char *name;
	int got;

	while ((got = next_include(&sc, &name, &line)) > 0) {
		const char *kind;
		struct stat st;
		size_t k, at;
		int fd;

		if (depth == CFGSRC_INCLUDE_DEPTH_MAX) {
			cfgerr_report(src->ce, file, line, "@include \"%s\": includes nest more than %d deep",
			              name, CFGSRC_INCLUDE_DEPTH_MAX);
			free(name);
			continue;
		}
		fd = secret_open(name, false, &kind, &st);
		if (fd < 0) {
			if (kind != NULL)
				cfgerr_report(src->ce, file, line, "@include \"%s\" names %s, not a regular "
				              "file", name, kind);
			else
				cfgerr_report(src->ce, file, line, "@include \"%s\" cannot be read: %s",
				              name, strerror(errno));
			free(name);
			continue;
		}
		for (k = 0; k < src->n; k++)
			if (src->f[k].text_of == k && src->f[k].dev == st.st_dev
			    && src->f[k].ino == st.st_ino)
				break;
		if (k < src->n && !src->f[k].done) {
			cfgerr_report(src->ce, file, line, "@include \"%s\" names %s, which is being read "
			              "already: the includes form a cycle", name, src->f[k].name);
		} else if (k < src->n) {
			size_t j;

			/* Read already: an alias lets cfgsrc_number() find it under this name. */
			for (j = 0; j < src->n && strcmp(src->f[j].name, name) != 0; j++)
				;
			if (j == src->n) {
				at = add_source(src, name, &st);
				if (at == (size_t)-1)
					cfgerr_oom(src->ce);
				else
					src->f[at].text_of = k;
			}
		} else if ((at = add_source(src, name, &st)) == (size_t)-1) {
			cfgerr_oom(src->ce);
		} else {
			char what[64];

			snprintf(what, sizeof(what), "@include \"%.32s%s\" cannot be read", name,
			         strlen(name) > 32 ? "..." : "");
			if (read_source(src, at, fd, file, line, what))
				check_includes(src, at, depth + 1);
			else
				src->f[at].done = true;
		}
		close(fd);
		free(name);
	}
	if (got < 0)
		cfgerr_oom(src->ce);
	if (sc.big_line != 0)
		cfgerr_report(src->ce, file, sc.big_line, "a group here holds more than %d settings, "
		              "which libconfig takes seconds to read (the time grows with the square of "
		              "a group's size); a group may hold at most %d", CFGSRC_GROUP_MEMBERS_MAX,
		              CFGSRC_GROUP_MEMBERS_MAX);
	src->f[idx].done = true;
}

/* The main file first, opened as a regular file without blocking; then what it includes. */
bool cfgsrc_read(struct cfgsrc *src, struct cfgerr *ce, const char *path)
{
	const char *kind;
	struct stat st;
	size_t idx;
	int fd;

	memset(src, 0, sizeof(*src));
	src->ce = ce;
	fd = secret_open(path, false, &kind, &st);
	if (fd < 0) {
		if (kind != NULL)
			cfgerr_report(ce, path, 0, "cannot read: it is %s, not a regular file", kind);
		else
			cfgerr_report(ce, path, 0, "cannot read: %s", strerror(errno));
		return false;
	}
	idx = add_source(src, path, &st);
	if (idx == (size_t)-1) {
		close(fd);
		cfgerr_oom(ce);
		return false;
	}
	if (!read_source(src, idx, fd, path, 0, "cannot read")) {
		close(fd);
		return false;
	}
	close(fd);
	check_includes(src, idx, 0);
	return ce->n_failed == 0;
}


/*
 * The file `file` among those read before parsing, with its lines indexed
 * (on first use, so that looking up every integer of a large file costs
 * time in proportion to the file); NULL when it is not there.
 */
static struct cfgsrc_file *source_of(struct cfgsrc *src, const char *file)
{
	struct cfgsrc_file *f = NULL;

	if (src->last < src->n && strcmp(src->f[src->last].name, file) == 0) {
		f = &src->f[src->f[src->last].text_of];
	} else {
		for (size_t i = 0; i < src->n; i++) {
			if (strcmp(src->f[i].name, file) == 0) {
				src->last = i;
				f = &src->f[src->f[i].text_of];
				break;
			}
		}
	}
	if (f == NULL || f->text == NULL)
		return NULL;
	if (f->lines == NULL) {
		size_t n = 1;

		for (size_t i = 0; i < f->len; i++)
			n += f->text[i] == '\n';
		f->lines = malloc(n * sizeof(*f->lines));
		if (f->lines == NULL)
			return NULL;
		f->lines[0] = 0;
		f->n_lines = 1;
		for (size_t i = 0; i < f->len; i++)
			if (f->text[i] == '\n')
				f->lines[f->n_lines++] = i + 1;
	}
	return f;
}

bool cfgsrc_number(struct cfgsrc *src, const char *file, const char *name, unsigned line,
                   int64_t stored, struct cfgint *lit)
{
	struct cfgsrc_file *f;
	size_t start, end, from, found;

	/* libconfig names no file for what it read from the main file's text. */
	if (file == NULL)
		file = src->ce->path;
	if (name == NULL || line == 0 || (f = source_of(src, file)) == NULL || line > f->n_lines)
		return false;
	start = f->lines[line - 1];
	end = line < f->n_lines ? f->lines[line] - 1 : f->len;
	from = f->hint_line == line && f->hint > start && f->hint <= end ? f->hint : start;
	found = cfgint_find(f->text, from, end, name, stored, lit);
	if (found == 0 && from > start)
		found = cfgint_find(f->text, start, from, name, stored, lit);
	if (found == 0)
		return false;
	f->hint_line = line;
	f->hint = found;
	return true;
}

const char *cfgsrc_text(const struct cfgsrc *src)
{
	return src->f[0].text;
}

void cfgsrc_free(struct cfgsrc *src)
{
	for (size_t i = 0; i < src->n; i++) {
		free(src->f[i].name);
		free(src->f[i].text);
		free(src->f[i].lines);
	}
	free(src->f);
	memset(src, 0, sizeof(*src));
}
