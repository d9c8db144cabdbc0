/*
 * topocheck: what the topology and the rules' exchanges must satisfy
 * beyond each setting's own row: names not reserved nor declared twice,
 * no exchange the bridge declares itself declared again, bindings given
 * by exactly one of `match` and `key` (a match translated into the key),
 * and the exchanges the rules publish to that nothing declares, to be
 * checked on connect.  Sorted names stand in for pairwise comparisons, so
 * that tens of thousands of elements and rules take no noticeable time.
 */
#ifndef BRIDGE_TOPOCHECK_H
#define BRIDGE_TOPOCHECK_H

#include "cfgload.h"

/*
 * Checks the topology just loaded into ld->cfg.  part[S_EXCHANGES] and so
 * on are the lists as the file gives them (NULL when absent), bad[] the
 * masks load_list() gave for them.  Fills in each binding's key from its
 * match.
 */
void topocheck_topology(struct loader *ld, const config_setting_t *const *part,
                        unsigned *const *bad);

/*
 * Fills cfg->check_exchanges: what the rules publish to that nothing
 * declares, each once, in rule order.  A rule may not publish to an
 * exchange the topology makes internal: RabbitMQ refuses every such
 * publish.
 */
void topocheck_publish(struct loader *ld);

#endif
