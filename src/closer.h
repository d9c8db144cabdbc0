/*
 * closer: a clean close of a TCP connection whose peer may still send.
 *
 * Closing a socket whose receive queue holds data (a broker that keeps
 * sending) makes the kernel send RST, and the peer then discards what it
 * had received and not yet processed: for MQTT, the last PUBACKs and the
 * DISCONNECT.  So the socket is half-closed and read (and what arrives
 * thrown away) until the peer closes its side, or `ms` pass.
 */
#ifndef BRIDGE_CLOSER_H
#define BRIDGE_CLOSER_H

#include <stdbool.h>

#include "loop.h"

struct closer {
	struct loop *loop;
	int fd;                     /* -1 when idle */
	unsigned ms;
	const char *who;            /* for the log: "mqtt" */
	struct loop_timer timer;
};

void closer_init(struct closer *l, struct loop *loop, unsigned ms, const char *who);
/* Takes over `fd` (non-blocking): half-closes it and reads until EOF or the timeout. */
void closer_begin(struct closer *l, int fd);
/* Closes at once whatever is lingering. */
void closer_end(struct closer *l);

static inline bool closer_active(const struct closer *l)
{
	return l->fd >= 0;
}

#endif
