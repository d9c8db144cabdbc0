/*
 * alogin: the client's part of the AMQP connection handshake that says who
 * it is: the SASL mechanism offered and connection.start-ok.
 */
#ifndef BRIDGE_ALOGIN_H
#define BRIDGE_ALOGIN_H

#include <stdbool.h>
#include <stddef.h>

#include <amqp.h>

#include "aframe.h"
#include "settings.h"

/* Whether the space-separated mechanism list of connection.start holds `mech`. */
bool alogin_offered(amqp_bytes_t list, const char *mech);

/*
 * Appends connection.start-ok (PLAIN with c's username and password) to
 * `out`.  Returns 0 or a rabbitmq-c status.
 */
int alogin_start_ok(struct aframe *out, const struct amqp_settings *c, size_t frame_max);

#endif
