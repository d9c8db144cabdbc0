/*
 * expo: the Prometheus text exposition format (version 0.0.4), written
 * into a growing buffer.  Pure: no I/O.
 *
 * A family starts with expo_family() (its HELP and TYPE lines); its
 * samples follow.  Label values and HELP texts are escaped as the format
 * asks (backslash, double quote in label values, newline).  Memory that
 * runs out marks the buffer failed; expo_take() then returns NULL.
 */
#ifndef BRIDGE_EXPO_H
#define BRIDGE_EXPO_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "hist.h"

struct expo {
	char *buf;
	size_t len;
	size_t cap;
	bool failed;
};

struct expo_label {
	const char *name;
	const char *value;
};

void expo_init(struct expo *e);
void expo_fini(struct expo *e);

/* Hands over the text (NUL-terminated, `*len` bytes; free() it), or NULL when memory ran out. */
char *expo_take(struct expo *e, size_t *len);

/* `type` is "counter", "gauge" or "histogram". */
void expo_family(struct expo *e, const char *name, const char *type, const char *help);

void expo_u64(struct expo *e, const char *name, const struct expo_label *labels, size_t n,
              uint64_t value);
void expo_double(struct expo *e, const char *name, const struct expo_label *labels, size_t n,
                 double value);

/*
 * A histogram of durations as seconds: NAME_bucket{...,le="..."} with
 * cumulative counts, NAME_sum and NAME_count.
 */
void expo_hist(struct expo *e, const char *name, const struct expo_label *labels, size_t n,
               const struct hist *h);

#endif
