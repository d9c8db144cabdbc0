/*
 * cfgread: one setting read into place as its row in the schema says: the
 * type, the range or length, the accepted values, the extra rule, and the
 * message naming the setting when any of these fails.  Integers are taken
 * as written (cfgint.h), not as libconfig stored them.
 */
#ifndef BRIDGE_CFGREAD_H
#define BRIDGE_CFGREAD_H

#include <stdbool.h>

#include "cfgctx.h"

/*
 * Reads setting `s` into `base` as row `r` of `sec` says.  Messages name
 * it as `pre` followed by 'name': "rule 3: 'exchange'" in an element,
 * "'mqtt.port'" (pre "") in a group.  Returns false after reporting.
 */
bool cfgread_value(struct loader *ld, const struct section *sec, const struct setting *r,
                   const config_setting_t *s, const char *pre, const char *name, void *base);

/* Sets every row of `sec` in `base` to its default. */
void cfgread_defaults(struct loader *ld, const struct section *sec, void *base);

#endif
