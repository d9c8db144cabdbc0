/*
 * cfgsrc: the configuration files, read before libconfig parses them.
 *
 * The main file and every file its @include lines name (and theirs) are
 * read without blocking and checked first: each must be a regular file,
 * the includes must not form a cycle nor nest too deep, no group may hold
 * so many settings that libconfig takes seconds to read it, and no file
 * may hold a NUL byte.  libconfig then parses the main file's text from
 * here, and cfgsrc_number() finds integers as written in the texts kept
 * (see cfgint.h), so no file is opened twice.
 */
#ifndef BRIDGE_CFGSRC_H
#define BRIDGE_CFGSRC_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <sys/types.h>

#include "cfgerr.h"
#include "cfgint.h"

/* libconfig 1.5 refuses an @include inside this many nested includes. */
#define CFGSRC_INCLUDE_DEPTH_MAX 10

/*
 * libconfig 1.5 looks for a name among all earlier members of its group
 * each time it adds a setting, so reading a group takes time that grows
 * with the square of its size (20,000 members: 4 s, 5,000: 0.2 s).  A
 * file with a larger group is refused, so that no check, and no reload
 * inside the loop, takes long.  Nothing the bridge reads needs a group
 * near this size.
 */
#define CFGSRC_GROUP_MEMBERS_MAX 5000

/* One file read: the main file, or one an @include names. */
struct cfgsrc_file {
	char *name;                 /* as libconfig names it: the path, or the @include string */
	size_t text_of;             /* the entry holding the text (itself, or the same file
	                               under another name) */
	char *text;                 /* NUL-terminated; NULL in an alias */
	size_t len;
	size_t *lines;              /* where each line starts; built on first use */
	size_t n_lines;
	unsigned hint_line;         /* where cfgsrc_number() found the last literal */
	size_t hint;
	dev_t dev;
	ino_t ino;
	bool done;                  /* its includes are checked; false while they are */
};

struct cfgsrc {
	struct cfgerr *ce;
	struct cfgsrc_file *f;      /* the main file first */
	size_t n, cap;
	size_t last;                /* the entry cfgsrc_number() found last */
};

/*
 * Reads `path` and what it includes, reporting every problem to `ce`.
 * Returns whether libconfig may parse it: then cfgsrc_text() is the main
 * file's text.
 */
bool cfgsrc_read(struct cfgsrc *src, struct cfgerr *ce, const char *path);

const char *cfgsrc_text(const struct cfgsrc *src);

/*
 * Finds the literal of the integer setting `name` that libconfig places
 * on `line` of `file` and stored as `stored`: a "name = literal" whose
 * name starts on that line.  The search starts where the last one on the
 * same line ended, so that thousands of integers written on one line are
 * read in linear time; it wraps to the start of the line.  Returns false
 * when there is none (or the file is not one read here).
 */
bool cfgsrc_number(struct cfgsrc *src, const char *file, const char *name, unsigned line,
                   int64_t stored, struct cfgint *lit);

void cfgsrc_free(struct cfgsrc *src);

#endif
