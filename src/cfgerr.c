#include "cfgerr.h"

#include <limits.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

void config_errors_init(struct config_errors *errs)
{
	errs->msg = NULL;
	errs->n = 0;
	errs->cap = 0;
}

void config_errors_free(struct config_errors *errs)
{
	for (size_t i = 0; i < errs->n; i++)
		free(errs->msg[i]);
	free(errs->msg);
	config_errors_init(errs);
}

void cfgerr_init(struct cfgerr *ce, const char *path, struct config_errors *errs)
{
	memset(ce, 0, sizeof(*ce));
	ce->path = path;
	ce->errs = errs;
}

/* "file:line: text", or "file: text" when line is 0, freshly allocated; NULL when out of memory. */
static char *format_at(const char *file, unsigned line, const char *text)
{
	int len = line > 0 ? snprintf(NULL, 0, "%s:%u: %s", file, line, text)
	                   : snprintf(NULL, 0, "%s: %s", file, text);
	char *msg;

	if (len < 0 || (msg = malloc((size_t)len + 1)) == NULL)
		return NULL;
	if (line > 0)
		snprintf(msg, (size_t)len + 1, "%s:%u: %s", file, line, text);
	else
		snprintf(msg, (size_t)len + 1, "%s: %s", file, text);
	return msg;
}

int cfgerr_append(char ***vec, size_t *n, size_t *cap, const char *file, unsigned line,
                  const char *text)
{
	char *msg = format_at(file, line, text);

	if (msg == NULL)
		return -1;
	if (*n == *cap) {
		size_t grown_cap = *cap ? *cap * 2 : 8;
		char **grown = realloc(*vec, grown_cap * sizeof(*grown));

		if (grown == NULL) {
			free(msg);
			return -1;
		}
		*vec = grown;
		*cap = grown_cap;
	}
	(*vec)[(*n)++] = msg;
	return 0;
}

void cfgerr_report(struct cfgerr *ce, const char *file, unsigned line, const char *fmt, ...)
{
	struct config_errors *errs = ce->errs;
	char text[1024];
	unsigned rank;
	va_list ap;

	ce->n_failed++;
	va_start(ap, fmt);
	vsnprintf(text, sizeof(text), fmt, ap);
	va_end(ap);
	/* Room for the key first: a message without one could not be put in order. */
	if (ce->n_keys == ce->cap_keys) {
		size_t cap = ce->cap_keys ? ce->cap_keys * 2 : 8;
		struct cfgerr_key *grown = realloc(ce->keys, cap * sizeof(*grown));

		if (grown == NULL)
			return;
		ce->keys = grown;
		ce->cap_keys = cap;
	}
	if (cfgerr_append(&errs->msg, &errs->n, &errs->cap, file, line, text) != 0)
		return;
	for (rank = 0; rank < ce->n_files && strcmp(ce->files[rank], file) != 0; rank++)
		;
	if (rank == ce->n_files && rank < CFGERR_FILES_MAX)
		ce->files[ce->n_files++] = file;
	ce->keys[ce->n_keys] = (struct cfgerr_key){ rank, line, ce->n_keys, errs->msg[errs->n - 1] };
	ce->n_keys++;
}

void cfgerr_oom(struct cfgerr *ce)
{
	cfgerr_report(ce, ce->path, 0, "out of memory");
}

static int key_cmp(const void *a, const void *b)
{
	const struct cfgerr_key *x = a, *y = b;

	if (x->rank != y->rank)
		return x->rank < y->rank ? -1 : 1;
	if (x->line != y->line)
		return x->line < y->line ? -1 : 1;
	return x->seq < y->seq ? -1 : x->seq > y->seq;
}

/*
 * A sort, not insertions as messages come: a file with tens of thousands
 * of errors must not take quadratic time to report.
 */
void cfgerr_fini(struct cfgerr *ce)
{
	if (ce->n_keys > 0) {
		char **msg = ce->errs->msg + ce->errs->n - ce->n_keys;

		qsort(ce->keys, ce->n_keys, sizeof(*ce->keys), key_cmp);
		for (size_t i = 0; i < ce->n_keys; i++)
			msg[i] = ce->keys[i].msg;
	}
	free(ce->keys);
	ce->keys = NULL;
	ce->n_keys = ce->cap_keys = 0;
}

/* Optimal string alignment distance, capped: enough to spot typos. */
static unsigned edit_distance(const char *a, const char *b)
{
	enum { MAXLEN = 32 };
	unsigned d[MAXLEN + 1][MAXLEN + 1];
	size_t la = strlen(a), lb = strlen(b);

	if (la > MAXLEN || lb > MAXLEN)
		return UINT_MAX;
	for (size_t i = 0; i <= la; i++)
		d[i][0] = (unsigned)i;
	for (size_t j = 0; j <= lb; j++)
		d[0][j] = (unsigned)j;
	for (size_t i = 1; i <= la; i++) {
		for (size_t j = 1; j <= lb; j++) {
			unsigned best = d[i - 1][j - 1] + (a[i - 1] != b[j - 1]);

			if (d[i - 1][j] + 1 < best)
				best = d[i - 1][j] + 1;
			if (d[i][j - 1] + 1 < best)
				best = d[i][j - 1] + 1;
			if (i > 1 && j > 1 && a[i - 1] == b[j - 2] && a[i - 2] == b[j - 1]
			    && d[i - 2][j - 2] + 1 < best)
				best = d[i - 2][j - 2] + 1;
			d[i][j] = best;
		}
	}
	return d[la][lb];
}

bool cfgerr_near(const char *typed, const char *known)
{
	unsigned limit = strlen(known) <= 4 ? 1 : 2;

	return edit_distance(typed, known) <= limit;
}
