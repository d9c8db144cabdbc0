#include "http.h"

#include <errno.h>
#include <netinet/in.h>
#include <poll.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#ifdef HAVE_MICROHTTPD
#include <microhttpd.h>
#endif

#include "endpoint.h"
#include "log.h"

void http_init(struct http *h, struct loop *l, http_route_fn route, void *arg)
{
	memset(h, 0, sizeof(*h));
	h->loop = l;
	h->epfd = -1;
	h->route = route;
	h->arg = arg;
}

#ifdef HAVE_MICROHTTPD

/* libmicrohttpd's own messages are about single connections: debug only. */
static void http_log(void *arg, const char *fmt, va_list ap) __attribute__((format(printf, 2, 0)));
static void http_log(void *arg, const char *fmt, va_list ap)
{
	char line[256];
	size_t n;

	(void)arg;
	vsnprintf(line, sizeof(line), fmt, ap);
	n = strlen(line);
	while (n > 0 && line[n - 1] == '\n')
		line[--n] = '\0';
	log_debug("http: %s", line);
}

static bool http_has_body(struct MHD_Connection *c)
{
	const char *len = MHD_lookup_connection_value(c, MHD_HEADER_KIND,
	                                              MHD_HTTP_HEADER_CONTENT_LENGTH);

	return (len && strcmp(len, "0") != 0) ||
	       MHD_lookup_connection_value(c, MHD_HEADER_KIND, MHD_HTTP_HEADER_TRANSFER_ENCODING);
}

/*
 * Called once the headers are in, then again (GET, HEAD) once the request
 * is complete: answering then keeps the connection alive for the next
 * request.  Any other method is answered at once, which also refuses its
 * body: libmicrohttpd then closes the connection instead of reading it.
 */
static enum MHD_Result http_answer(void *cls, struct MHD_Connection *c, const char *url,
                                   const char *method, const char *version,
                                   const char *upload_data, size_t *upload_size, void **state)
{
	static int seen;
	struct http *h = cls;
	struct http_reply r = { .status = 500, .content_type = "text/plain; charset=utf-8" };
	struct MHD_Response *resp;
	enum MHD_Result rc;
	bool bodiless = strcmp(method, "GET") == 0 || strcmp(method, "HEAD") == 0;

	(void)version;
	(void)upload_data;
	(void)upload_size;
	if (bodiless && *state == NULL && http_has_body(c)) {
		/* Refused before the body is read: the connection closes after the answer. */
		r.status = 400;
		r.body = (char *)"bad request: GET and HEAD take no body\n";
		r.len = strlen(r.body);
	} else if (bodiless && *state == NULL) {
		*state = &seen;
		return MHD_YES;
	} else {
		h->route(h->arg, method, url, &r);
	}
	/*
	 * A body that is not handed over is copied: a slow client may still be
	 * sent it after the route has written the next answer into the same place.
	 */
	resp = MHD_create_response_from_buffer(r.len, r.body, r.owned ? MHD_RESPMEM_MUST_FREE
	                                                              : MHD_RESPMEM_MUST_COPY);
	if (!resp) {
		if (r.owned)
			free(r.body);
		return MHD_NO;
	}
	MHD_add_response_header(resp, MHD_HTTP_HEADER_CONTENT_TYPE, r.content_type);
	MHD_add_response_header(resp, MHD_HTTP_HEADER_CACHE_CONTROL, "no-store");
	if (r.allow)
		MHD_add_response_header(resp, MHD_HTTP_HEADER_ALLOW, r.allow);
	rc = MHD_queue_response(c, r.status, resp);
	MHD_destroy_response(resp);
	return rc;
}

/*
 * At the limit, a new connection is refused (closed) at once.  Left to
 * libmicrohttpd's own limit, the listener would leave its epoll set and
 * come back only at a later MHD_run(), which nothing may call.
 */
static enum MHD_Result http_accept(void *cls, const struct sockaddr *addr, socklen_t len)
{
	struct http *h = cls;
	const union MHD_DaemonInfo *info;

	(void)addr;
	(void)len;
	if (!h->daemon)
		return MHD_YES;
	info = MHD_get_daemon_info(h->daemon, MHD_DAEMON_INFO_CURRENT_CONNECTIONS);
	if (info && info->num_connections >= HTTP_MAX_CONNS) {
		log_debug("http: refusing a connection: %d are open", HTTP_MAX_CONNS);
		return MHD_NO;
	}
	return MHD_YES;
}

/* Runs libmicrohttpd's due work, then sleeps until its next timeout. */
static void http_run(struct http *h)
{
	MHD_UNSIGNED_LONG_LONG ms;

	MHD_run(h->daemon);
	if (MHD_get_timeout(h->daemon, &ms) == MHD_YES)
		loop_timer_arm(h->loop, &h->timer, ms);
	else
		loop_timer_disarm(h->loop, &h->timer);
}

static void http_on_ready(void *arg, int fd, short revents)
{
	(void)fd;
	(void)revents;
	http_run(arg);
}

static void http_on_timer(void *arg)
{
	http_run(arg);
}

static int http_listen_on(const char *addr, char *err)
{
	struct sockaddr_storage ss;
	socklen_t len;
	const char *bad = endpoint_listen(addr, &ss, &len);
	int fd, one = 1;

	if (bad) {
		snprintf(err, HTTP_ERR_MAX, "'%s' %s", addr, bad);
		return -1;
	}
	fd = socket(ss.ss_family, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
	if (fd < 0) {
		snprintf(err, HTTP_ERR_MAX, "cannot open a socket for %s: %s", addr, strerror(errno));
		return -1;
	}
	setsockopt(fd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof(one));
	/* "[::]" is IPv6 only: "0.0.0.0" is the way to say IPv4. */
	if (ss.ss_family == AF_INET6)
		setsockopt(fd, IPPROTO_IPV6, IPV6_V6ONLY, &one, sizeof(one));
	if (bind(fd, (struct sockaddr *)&ss, len) != 0 || listen(fd, 64) != 0) {
		snprintf(err, HTTP_ERR_MAX, "cannot listen on %s: %s", addr, strerror(errno));
		close(fd);
		return -1;
	}
	return fd;
}

int http_start(struct http *h, const char *listen, char err[HTTP_ERR_MAX])
{
	const union MHD_DaemonInfo *info;
	struct MHD_Daemon *d;
	int fd = http_listen_on(listen, err);

	if (fd < 0)
		return -1;
	/* Its own limit, above ours (http_accept()), is never reached. */
	d = MHD_start_daemon(MHD_USE_EPOLL | MHD_USE_ERROR_LOG, 0, http_accept, h, http_answer, h,
	                     MHD_OPTION_LISTEN_SOCKET, fd,
	                     MHD_OPTION_CONNECTION_LIMIT, (unsigned)(2 * HTTP_MAX_CONNS),
	                     MHD_OPTION_CONNECTION_TIMEOUT, (unsigned)HTTP_IDLE_S,
	                     MHD_OPTION_CONNECTION_MEMORY_LIMIT, (size_t)HTTP_CONN_MEMORY,
	                     MHD_OPTION_EXTERNAL_LOGGER, http_log, NULL,
	                     MHD_OPTION_END);
	if (!d) {
		snprintf(err, HTTP_ERR_MAX, "cannot start the HTTP server on %s", listen);
		close(fd);
		return -1;
	}
	info = MHD_get_daemon_info(d, MHD_DAEMON_INFO_EPOLL_FD);
	if (!info || info->epoll_fd < 0) {
		snprintf(err, HTTP_ERR_MAX, "the HTTP server on %s has no epoll descriptor", listen);
		MHD_stop_daemon(d);
		return -1;
	}
	http_stop(h);
	if (loop_fd_add(h->loop, info->epoll_fd, POLLIN, http_on_ready, h) != 0) {
		snprintf(err, HTTP_ERR_MAX, "the loop has no room for the HTTP server's descriptor");
		MHD_stop_daemon(d);
		return -1;
	}
	h->daemon = d;
	h->epfd = info->epoll_fd;
	snprintf(h->addr, sizeof(h->addr), "%s", listen);
	loop_timer_init(&h->timer, http_on_timer, h);
	http_run(h);
	return 0;
}

void http_stop(struct http *h)
{
	if (!h->daemon)
		return;
	loop_fd_del(h->loop, h->epfd);
	loop_timer_disarm(h->loop, &h->timer);
	/* Closes the listening socket and every connection. */
	MHD_stop_daemon(h->daemon);
	h->daemon = NULL;
	h->epfd = -1;
	h->addr[0] = '\0';
}

#else /* !HAVE_MICROHTTPD */

int http_start(struct http *h, const char *listen, char err[HTTP_ERR_MAX])
{
	(void)h;
	snprintf(err, HTTP_ERR_MAX, "cannot serve %s: this build has no HTTP support "
	         "(configured without libmicrohttpd)", listen);
	return -1;
}

void http_stop(struct http *h)
{
	(void)h;
}

#endif
