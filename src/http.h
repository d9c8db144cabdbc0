/*
 * http: a small HTTP/1.1 server on the bridge's loop, for /metrics,
 * /healthz and /readyz (scrape.h answers them).
 *
 * libmicrohttpd parses the requests; it runs without a thread of its own,
 * driven from the loop through the one epoll descriptor it keeps, and a
 * loop timer for its timeouts.  The listening socket is the bridge's own
 * (so a bind error names the address).  Limits keep slow or hostile
 * clients from holding the loop or memory: HTTP_MAX_CONNS connections,
 * each closed after HTTP_IDLE_S seconds without progress, and
 * HTTP_CONN_MEMORY bytes each for the request (larger headers are refused).
 *
 * Built without libmicrohttpd, http_start() fails; the configuration
 * refuses bridge.http_listen before that.
 */
#ifndef BRIDGE_HTTP_H
#define BRIDGE_HTTP_H

#include <stdbool.h>
#include <stddef.h>

#include "loop.h"

#define HTTP_MAX_CONNS 32
#define HTTP_IDLE_S 10
#define HTTP_CONN_MEMORY 32768
#define HTTP_ERR_MAX 256

/* What a route answers; the server frees `body` when `owned`, and copies it otherwise. */
struct http_reply {
	unsigned status;
	const char *content_type;
	char *body;
	size_t len;
	bool owned;
	const char *allow;          /* an Allow header (405), or NULL */
};

/* Answers `method` on `path` (without the query string). */
typedef void (*http_route_fn)(void *arg, const char *method, const char *path,
                              struct http_reply *r);

struct http {
	struct loop *loop;
	void *daemon;               /* struct MHD_Daemon, NULL while stopped */
	int epfd;
	struct loop_timer timer;
	http_route_fn route;
	void *arg;
	char addr[72];              /* the address served, "" while stopped */
};

void http_init(struct http *h, struct loop *l, http_route_fn route, void *arg);

/*
 * Listens on `listen` (endpoint_listen()).  Returns 0, or -1 with the
 * reason in `err`; a server already running is left as it was.
 */
int http_start(struct http *h, const char *listen, char err[HTTP_ERR_MAX]);

/* Closes the listener and every connection.  Safe when stopped. */
void http_stop(struct http *h);

static inline bool http_running(const struct http *h)
{
	return h->daemon != NULL;
}

#endif
