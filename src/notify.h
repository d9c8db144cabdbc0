/*
 * notify: the service manager's readiness protocol (sd_notify(3)).
 *
 * Tells systemd (or anything listening on $NOTIFY_SOCKET) that the bridge
 * is ready, what it is doing (STATUS=), that it is stopping, and that its
 * loop still turns (WATCHDOG=1, from a loop timer at half of
 * $WATCHDOG_USEC, honouring $WATCHDOG_PID).
 *
 * The datagrams go out through a socket of our own, to a path or an
 * abstract ('@') socket, and never wait: one the receiver cannot take at
 * once is dropped and logged at debug level.  libsystemd's sd_notify() is
 * deliberately not used: its sendmsg() blocks while the receiver's queue is
 * full, which would stall the loop (and with it both brokers' keepalives).
 * With libsystemd (HAVE_LIBSYSTEMD), sd_watchdog_enabled() reads the
 * watchdog settings; without it the same rules are built in.  Without
 * $NOTIFY_SOCKET every call is a no-op, so the daemon runs unchanged
 * outside systemd.
 */
#ifndef BRIDGE_NOTIFY_H
#define BRIDGE_NOTIFY_H

#include <stdbool.h>
#include <stdint.h>
#include <sys/socket.h>
#include <sys/un.h>

#include "log.h"
#include "loop.h"

#define NOTIFY_STATUS_MAX 256

struct notify {
	bool enabled;                /* $NOTIFY_SOCKET is set */
	int fd;                      /* built-in sender's socket, or -1 */
	struct sockaddr_un addr;     /* built-in sender's destination */
	socklen_t addrlen;
	struct loop *loop;
	uint64_t watchdog_ms;        /* WATCHDOG=1 interval; 0: no watchdog */
	struct loop_timer watchdog_timer;
	char status[NOTIFY_STATUS_MAX];   /* the last STATUS= sent */
};

/*
 * Reads the environment and, when a watchdog is requested for this
 * process, arms the timer on `loop`.  Never fails: a notification socket
 * that cannot be used is logged and notification is off.
 */
void notify_init(struct notify *n, struct loop *loop);
void notify_fini(struct notify *n);

/* READY=1 (and a first WATCHDOG=1): the configuration is loaded and the loop runs. */
void notify_ready(struct notify *n);

/* STATUS=<text>, printf-style; sent only when it differs from the last one. */
void notify_status(struct notify *n, const char *fmt, ...) LOG_PRINTF(2, 3);

/* STOPPING=1, with a STATUS= line saying why. */
void notify_stopping(struct notify *n, const char *status);

/*
 * Sends `msg` (newline-separated VAR=value assignments) as one datagram.
 * Returns 1 when sent, 0 when notification is off, -1 when sending failed
 * (logged at debug level).
 */
int notify_send(struct notify *n, const char *msg);

/* Whether a watchdog is active; its ping interval in *interval_ms if so. */
bool notify_watchdog(const struct notify *n, uint64_t *interval_ms);

#endif
