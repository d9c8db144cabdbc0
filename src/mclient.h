/*
 * mclient: what the MQTT side needs from libmosquitto beyond its public
 * calls: the client configured as the bridge needs it, the DUP flag of a
 * received message, and libmosquitto's failures in the operator's terms.
 */
#ifndef BRIDGE_MCLIENT_H
#define BRIDGE_MCLIENT_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include <mosquitto.h>

struct addrinfo;

#include "settings.h"

/*
 * A client for `cfg` in threaded mode (queued packets are written only by
 * mosquitto_loop_write()), with its protocol, session expiry, receive
 * maximum, credentials and TLS set; no callbacks.  NULL after logging
 * why.
 */
struct mosquitto *mclient_new(const struct mqtt_settings *cfg, void *userdata);

/* libmosquitto's log callback: keeps the first TLS error of an attempt. */
void mclient_on_log(struct mosquitto *mosq, void *arg, int level, const char *str);
/*
 * A new attempt: forgets the TLS error kept, and with `tls` listens to
 * libmosquitto's log (mclient_on_log) until mclient_tls_connected().
 * libmosquitto formats a log line for every packet while anyone listens,
 * two per message forwarded, and only TLS failures, up to CONNACK, are
 * read from it.
 */
void mclient_tls_attempt(struct mosquitto *mosq, bool tls);
/* CONNACK came: libmosquitto's log is not listened to any more. */
void mclient_tls_connected(struct mosquitto *mosq);
/* Whether the current attempt logged a TLS error. */
bool mclient_tls_logged(void);
/* Why the TLS layer failed, in the operator's terms. */
const char *mclient_tls_reason(struct mosquitto *mosq, bool tls, char *buf, size_t size);

/* Whether a TLS handshake is under way and not complete. */
bool mclient_handshaking(struct mosquitto *mosq);
/* Whether OpenSSL holds decrypted bytes: poll() cannot see them. */
bool mclient_ssl_pending(struct mosquitto *mosq);
/*
 * One step of the TLS handshake on `fd` after poll() said `revents`.
 * Returns 0 (in progress, or done), or -1 with *what ("TLS handshake
 * with", "connecting to") and `why` saying what failed.
 */
int mclient_handshake(struct mosquitto *mosq, int fd, short revents, const char **what,
                      char *why, size_t size);

/* Whether the DUP flag can be read with the library in use (logs once when not). */
bool mclient_dup_known(void);
/* The DUP flag of a message on_message received (false when not known). */
bool mclient_dup(const struct mosquitto_message *msg);

/*
 * TCP_CORK on the connection `fd`: while on, what is written is held back
 * until full segments can leave; turning it off sends the rest at once.
 */
void mclient_cork(int fd, bool on);

/*
 * Logs why the connection ended (rc as on_disconnect has it; 0 for a clean
 * close), in the operator's terms.
 */
void mclient_log_disconnect(struct mosquitto *mosq, const struct mqtt_settings *c,
                            const char *node, int rc, bool before_connack);

/*
 * Logs what a SUBACK granted each of `filters` (`each`: also the filters
 * granted QoS 1); returns how many were granted.
 */
int mclient_log_granted(char *const *filters, size_t n, bool each, int qos_count,
                        const int *granted);

/*
 * What libmosquitto is to connect to: address `attempt` (modulo their
 * number) of `list`, numeric, so that it looks nothing up itself; with TLS
 * the name `host`, which it verifies the certificate against (it then
 * looks the name up again).
 */
const char *mclient_address(const struct addrinfo *list, uint64_t attempt, bool tls,
                            const char *host, char *buf, size_t size);

/* Why libmosquitto closed the connection (rc), in the operator's terms. */
const char *mclient_reason(int rc, int keepalive, char *buf, size_t size);

#endif
