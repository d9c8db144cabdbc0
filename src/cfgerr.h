/*
 * cfgerr: the errors and warnings of one configuration load, and the
 * "did you mean" hints for a misspelt name.  Knows nothing of libconfig
 * nor of the settings: callers name the file and the line.
 */
#ifndef BRIDGE_CFGERR_H
#define BRIDGE_CFGERR_H

#include <stdbool.h>
#include <stddef.h>

#include "log.h"        /* LOG_PRINTF */

/* What config_load() hands back: every problem as "file:line: message". */
struct config_errors {
	char **msg;
	size_t n;
	size_t cap;
};

void config_errors_init(struct config_errors *errs);
void config_errors_free(struct config_errors *errs);

/* A message's place, to put the list in file order at the end. */
struct cfgerr_key {
	unsigned rank;              /* of its file, by first mention */
	unsigned line;
	size_t seq;                 /* keeps messages at one place in the order they came */
	char *msg;
};

#define CFGERR_FILES_MAX 16

/* The reports of one load, appended to the caller's `errs`. */
struct cfgerr {
	const char *path;           /* the main file: where a message without a file points */
	struct config_errors *errs;
	unsigned n_failed;          /* errors found, whether or not recording them succeeded */
	struct cfgerr_key *keys;    /* one for each message this load appended */
	size_t n_keys, cap_keys;
	const char *files[CFGERR_FILES_MAX];
	unsigned n_files;
};

void cfgerr_init(struct cfgerr *ce, const char *path, struct config_errors *errs);

/*
 * Puts this load's messages in file order, then line order, keeping the
 * order they came in at one place, and frees what sorting needed.
 */
void cfgerr_fini(struct cfgerr *ce);

/*
 * Records "file:line: message" ("file: message" when line is 0).  An
 * allocation failure loses the message but it still counts, so the load
 * fails all the same.
 */
void cfgerr_report(struct cfgerr *ce, const char *file, unsigned line, const char *fmt, ...)
	LOG_PRINTF(4, 5);

void cfgerr_oom(struct cfgerr *ce);

/*
 * A list of sentences that grows by doubling, such as the configuration's
 * warnings: appends "file:line: text" ("file: text" when line is 0).
 * Returns 0, or -1 when memory ran out (the list is unchanged).
 */
int cfgerr_append(char ***vec, size_t *n, size_t *cap, const char *file, unsigned line,
                  const char *text);

/*
 * Whether `typed` is a likely misspelling of `known`: at most one edit
 * (insertion, deletion, substitution or swap of neighbours) away from a
 * name of up to 4 bytes, at most two from a longer one.
 */
bool cfgerr_near(const char *typed, const char *known);

#endif
