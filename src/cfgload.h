/*
 * cfgload: reading groups and list elements into place by walking their
 * rows in the schema.  Shared by the parts of the loader (config.c,
 * topocheck.c); nothing outside them includes it.
 */
#ifndef BRIDGE_CFGLOAD_H
#define BRIDGE_CFGLOAD_H

#include <libconfig.h>
#include <stddef.h>

#include "cfgctx.h"

/*
 * Reads the groups mqtt, amqp and bridge (those of ld->top[] that are
 * there) into the config, over the defaults: unknown names first, then
 * each row in order, with the missing required ones.
 */
void load_groups(struct loader *ld);

/*
 * Reads the list of groups `s` (NULL when absent), of section `sec`, into
 * a fresh array of elements (*vec_out, NULL for none), each set to its
 * defaults and then to what the file gives, and a mask of rows refused or
 * missing though required per element (*bad_out; every bit when the
 * element is not a group).  Returns the element count; (size_t)-1 when
 * `s` is not a list at all.  An empty array, [], is an empty list.
 */
size_t load_list(struct loader *ld, const struct section *sec, const config_setting_t *s,
                 void **vec_out, unsigned **bad_out);

/*
 * The file holding the rule that starts at `line` (@include can move rules
 * elsewhere): of the rules on that line, the first; the main file when
 * none is known.
 */
const char *load_rule_file(const struct loader *ld, int line);

/* The setting `name` of element `e`, or `e` itself when it has none: where to point. */
const config_setting_t *load_member_or(const config_setting_t *e, const char *name);

#endif
