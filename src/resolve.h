/*
 * resolve: a host name's addresses without blocking the caller.
 *
 * Numeric addresses are converted at once; names go to glibc's
 * getaddrinfo_a(), which resolves them in a thread of its own, and the
 * caller polls for the answer (from a loop timer).  A lookup that is
 * abandoned while glibc still works on it cannot be freed: it is kept
 * aside and freed once glibc is done with it, so that abandoning never
 * waits.
 */
#ifndef BRIDGE_RESOLVE_H
#define BRIDGE_RESOLVE_H

#include <stdbool.h>
#include <stddef.h>

struct addrinfo;
struct resolve_req;

struct resolve {
	struct resolve_req *cur;     /* the lookup in progress or answered, or NULL */
	struct resolve_req *orphans; /* abandoned lookups glibc still holds */
};

void resolve_init(struct resolve *r);

/* Abandons the current lookup; orphans still running are left to glibc. */
void resolve_fini(struct resolve *r);

/*
 * Starts looking up `host` (TCP, any family) for `port`.  Returns 0, or -1
 * with `err` filled.  A numeric host is answered before this returns.
 */
int resolve_start(struct resolve *r, const char *host, int port, char *err, size_t errsz);

/*
 * The answer: 1 with *out set (owned by `r` until the next start, abandon
 * or fini), 0 while the lookup runs, -1 with `err` filled when it failed.
 */
int resolve_poll(struct resolve *r, struct addrinfo **out, char *err, size_t errsz);

/* Forgets the current lookup (answered or not) without waiting. */
void resolve_abandon(struct resolve *r);

#endif
