#define _GNU_SOURCE
#include "resolve.h"

#include <errno.h>
#include <netdb.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>

struct resolve_req {
	struct gaicb cb;
	struct addrinfo hints;
	struct addrinfo *numeric;    /* the answer for a numeric host */
	char port[8];
	struct resolve_req *next;    /* in the orphan list */
	char host[];
};

static void req_free(struct resolve_req *q)
{
	if (q->numeric)
		freeaddrinfo(q->numeric);
	if (q->cb.ar_result)
		freeaddrinfo(q->cb.ar_result);
	free(q);
}

/* Frees the orphans glibc has finished with. */
static void resolve_reap(struct resolve *r)
{
	struct resolve_req **p = &r->orphans;

	while (*p) {
		struct resolve_req *q = *p;

		if (gai_error(&q->cb) == EAI_INPROGRESS) {
			p = &q->next;
			continue;
		}
		*p = q->next;
		req_free(q);
	}
}

void resolve_init(struct resolve *r)
{
	r->cur = NULL;
	r->orphans = NULL;
}

void resolve_abandon(struct resolve *r)
{
	struct resolve_req *q = r->cur;

	r->cur = NULL;
	if (!q)
		return;
	if (!q->numeric && gai_cancel(&q->cb) == EAI_NOTCANCELED) {
		q->next = r->orphans;
		r->orphans = q;
		return;
	}
	req_free(q);
}

void resolve_fini(struct resolve *r)
{
	resolve_abandon(r);
	resolve_reap(r);
	/*
	 * Lookups still running stay with glibc, which points at them; the
	 * process is ending or the memory is small and bounded by the attempts.
	 */
	r->orphans = NULL;
}

int resolve_start(struct resolve *r, const char *host, int port, char *err, size_t errsz)
{
	size_t len = strlen(host);
	struct resolve_req *q;
	struct gaicb *list[1];
	int rc;

	resolve_abandon(r);
	resolve_reap(r);
	q = calloc(1, sizeof(*q) + len + 1);
	if (!q) {
		snprintf(err, errsz, "out of memory for a name lookup");
		return -1;
	}
	memcpy(q->host, host, len + 1);
	snprintf(q->port, sizeof(q->port), "%d", port);
	q->hints.ai_family = AF_UNSPEC;
	q->hints.ai_socktype = SOCK_STREAM;
	q->hints.ai_protocol = IPPROTO_TCP;

	/* An address needs no lookup, and getaddrinfo() answers it without I/O. */
	q->hints.ai_flags = AI_NUMERICHOST | AI_NUMERICSERV;
	if (getaddrinfo(q->host, q->port, &q->hints, &q->numeric) == 0) {
		r->cur = q;
		return 0;
	}
	q->numeric = NULL;
	q->hints.ai_flags = AI_NUMERICSERV;
	q->cb.ar_name = q->host;
	q->cb.ar_service = q->port;
	q->cb.ar_request = &q->hints;
	list[0] = &q->cb;
	rc = getaddrinfo_a(GAI_NOWAIT, list, 1, NULL);
	if (rc != 0) {
		snprintf(err, errsz, "cannot look up host '%s': %s", host,
		         rc == EAI_SYSTEM ? strerror(errno) : gai_strerror(rc));
		free(q);
		return -1;
	}
	r->cur = q;
	return 0;
}

int resolve_poll(struct resolve *r, struct addrinfo **out, char *err, size_t errsz)
{
	struct resolve_req *q = r->cur;
	int rc;

	if (!q) {
		snprintf(err, errsz, "no name lookup in progress");
		return -1;
	}
	if (q->numeric) {
		*out = q->numeric;
		return 1;
	}
	rc = gai_error(&q->cb);
	if (rc == EAI_INPROGRESS)
		return 0;
	if (rc != 0 || !q->cb.ar_result) {
		snprintf(err, errsz, "cannot resolve host '%s': %s", q->host,
		         rc ? gai_strerror(rc) : "no address");
		return -1;
	}
	*out = q->cb.ar_result;
	return 1;
}
