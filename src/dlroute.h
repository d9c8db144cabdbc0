/*
 * dlroute: --downlink-route, the downlink's side of --route.  For a
 * routing key (and headers given as NAME=VALUE strings), prints for each
 * downlink entry whether its queue's bindings in the topology take the
 * key, and the MQTT message the entry would publish (topic, QoS, retain,
 * MQTT 5 properties), or why the message would be rejected to the queue's
 * dead-letter exchange.  It asks dlmap, as the running bridge does.
 */
#ifndef BRIDGE_DLROUTE_H
#define BRIDGE_DLROUTE_H

#include <stddef.h>
#include <stdio.h>

#include "config.h"

/*
 * Returns 0, 1 for an argument that is not usable (a key over 255 bytes,
 * a header without '='), or -1 when memory ran out.
 */
int dlroute_print(const struct bridge_config *cfg, const char *key, char *const *headers,
                  size_t n_headers, FILE *out);

#endif
