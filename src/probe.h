/*
 * probe: whether a broker's address accepts TCP connections, asked without
 * blocking the loop.  A link on a standby address asks it of the first
 * address every primary_retry seconds (failover.h); the answer is a TCP
 * handshake, nothing more: the connection is closed at once, before any
 * byte is sent.
 *
 * The name is looked up first (resolve.h), then each of its addresses is
 * tried in turn until one accepts, all under one deadline.
 */
#ifndef BRIDGE_PROBE_H
#define BRIDGE_PROBE_H

#include <stdbool.h>
#include <stddef.h>

#include "loop.h"
#include "resolve.h"

struct addrinfo;

/* `ok`: an address accepted; otherwise `why` says what failed. */
typedef void (*probe_done_fn)(void *arg, bool ok, const char *why);

struct probe {
	struct loop *loop;
	probe_done_fn done;
	void *arg;
	bool running;
	struct resolve resolve;
	const struct addrinfo *addr; /* the address being tried */
	int fd;
	struct loop_timer poll_timer;     /* polls the name lookup */
	struct loop_timer deadline_timer;
	char why[160];
};

void probe_init(struct probe *p, struct loop *loop, probe_done_fn done, void *arg);
void probe_fini(struct probe *p);

/*
 * Starts probing host:port, answering within timeout_ms.  The done
 * handler runs later, from the loop, never from inside this call.  A probe
 * already running is abandoned first.
 */
void probe_start(struct probe *p, const char *host, int port, unsigned timeout_ms);

/* Abandons a probe in progress; its handler will not run. */
void probe_cancel(struct probe *p);

#endif
