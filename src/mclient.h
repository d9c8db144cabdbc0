/*
 * mclient: what the MQTT side needs from libmosquitto beyond its public
 * calls: the client configured as the bridge needs it, the DUP flag of a
 * received message, and libmosquitto's failures in the operator's terms.
 */
#ifndef BRIDGE_MCLIENT_H
#define BRIDGE_MCLIENT_H

#include <stdbool.h>
#include <stddef.h>

#include <mosquitto.h>

#include "settings.h"

/*
 * A client for `cfg` in threaded mode (queued packets are written only by
 * mosquitto_loop_write()), with its protocol, session expiry, receive
 * maximum, credentials and TLS set; no callbacks but the log's.  NULL
 * after logging why.
 */
struct mosquitto *mclient_new(const struct mqtt_settings *cfg, void *userdata);

/* libmosquitto's log callback: keeps the first TLS error of an attempt. */
void mclient_on_log(struct mosquitto *mosq, void *arg, int level, const char *str);
/* A new attempt: forgets the TLS error kept. */
void mclient_tls_forget(void);
/* Whether the current attempt logged a TLS error. */
bool mclient_tls_logged(void);
/* Why the TLS layer failed, in the operator's terms. */
const char *mclient_tls_reason(struct mosquitto *mosq, bool tls, char *buf, size_t size);

/* Whether the DUP flag can be read with the library in use (logs once when not). */
bool mclient_dup_known(void);
/* The DUP flag of a message on_message received (false when not known). */
bool mclient_dup(const struct mosquitto_message *msg);

/* Why libmosquitto closed the connection (rc), in the operator's terms. */
const char *mclient_reason(int rc, int keepalive, char *buf, size_t size);

#endif
