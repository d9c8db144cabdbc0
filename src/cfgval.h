/*
 * cfgval: loaded values by their rows in the schema: freeing them, printing
 * them for -t, and comparing two configurations for a reload.  Pure apart
 * from writing to the stream it is given.
 */
#ifndef BRIDGE_CFGVAL_H
#define BRIDGE_CFGVAL_H

#include <stdbool.h>
#include <stddef.h>
#include <stdio.h>

#include "schema.h"

/* Frees what the rows of `sec` own in `base` (not `base` itself) and empties their slots. */
void cfgval_free(const struct section *sec, void *base);

/* Frees the `n` elements of list `sec` at `vec`, then the array. */
void cfgval_free_list(const struct section *sec, void *vec, size_t n);

/* `s` in double quotes, with '"', '\' and control characters escaped. */
void cfgval_print_quoted(FILE *out, const char *s);

/*
 * One line per setting of group `g`, "mqtt.port = 1883": secrets as
 * "(set)" or "(unset)", MQTT 5 settings as "(MQTT 5 only)" under 3.1.1,
 * and after a list of filters a comment saying where it came from.
 */
void cfgval_print_group(const struct bridge_config *cfg, enum section_id g, FILE *out);

/*
 * One line per element of topology list `sec`:
 * "topology queue 2 (line 71): name = "q"; durable = true; ...;".
 */
void cfgval_print_list(const struct bridge_config *cfg, const struct section *sec, FILE *out);

/*
 * Whether two elements of list `sec` hold the same values, at the offsets
 * of the compiled element when `kept`, and on the same line when the
 * section says lines count.
 */
bool cfgval_same_element(const struct section *sec, const void *a, const void *b, bool kept);

/*
 * The CFG_DIFF_* bits the differences between two configurations' group
 * `g` set: each changed row's own, or the section's.  A list of filters
 * counts as changed only when it holds other filters: order and repeats
 * do not matter to a subscription.
 */
unsigned cfgval_diff_group(const struct bridge_config *a, const struct bridge_config *b,
                           enum section_id g);

/*
 * Whether `a` and `b` hold the same strings, whatever their order and
 * repeats.  Memory running out counts as a difference: a reload then
 * does more, never less.
 */
bool cfgval_same_set(char *const *a, size_t na, char *const *b, size_t nb);

#endif
