#include "toolutil.h"

#include <errno.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <time.h>

#ifdef MAB_WITH_AMQP
#include <amqp_tcp_socket.h>
#include <sys/time.h>
#endif

int tool_parse_ll(const char *prog, const char *s, long long min, long long max,
                  const char *opt, long long *out)
{
	char *end;
	long long v;

	errno = 0;
	v = strtoll(s, &end, 10);
	if (errno != 0 || end == s || *end != '\0' || v < min || v > max) {
		fprintf(stderr, "%s: %s: expected an integer in [%lld, %lld], got '%s'\n", prog, opt,
		        min, max, s);
		return -1;
	}
	*out = v;
	return 0;
}

int tool_try_help(const char *prog)
{
	fprintf(stderr, "try '%s --help'\n", prog);
	return 2;
}

int tool_usage_error(const char *prog, const char *fmt, ...)
{
	va_list ap;

	fprintf(stderr, "%s: ", prog);
	va_start(ap, fmt);
	vfprintf(stderr, fmt, ap);
	va_end(ap);
	fputc('\n', stderr);
	return tool_try_help(prog);
}

double tool_now_s(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

#ifdef MAB_WITH_AMQP
const char *tool_reply_text(amqp_rpc_reply_t r, char *buf, size_t sz)
{
	switch (r.reply_type) {
	case AMQP_RESPONSE_NORMAL:
		snprintf(buf, sz, "ok");
		break;
	case AMQP_RESPONSE_NONE:
		snprintf(buf, sz, "missing RPC reply");
		break;
	case AMQP_RESPONSE_LIBRARY_EXCEPTION:
		snprintf(buf, sz, "%s", amqp_error_string2(r.library_error));
		break;
	case AMQP_RESPONSE_SERVER_EXCEPTION:
		if (r.reply.id == AMQP_CONNECTION_CLOSE_METHOD) {
			amqp_connection_close_t *m = r.reply.decoded;

			snprintf(buf, sz, "connection closed: %u %.*s", m->reply_code,
			         (int)m->reply_text.len, (const char *)m->reply_text.bytes);
		} else if (r.reply.id == AMQP_CHANNEL_CLOSE_METHOD) {
			amqp_channel_close_t *m = r.reply.decoded;

			snprintf(buf, sz, "channel closed: %u %.*s", m->reply_code,
			         (int)m->reply_text.len, (const char *)m->reply_text.bytes);
		} else {
			snprintf(buf, sz, "server method 0x%08x", r.reply.id);
		}
		break;
	}
	return buf;
}

int tool_check_rpc(const char *prog, amqp_connection_state_t conn, const char *what)
{
	amqp_rpc_reply_t r = amqp_get_rpc_reply(conn);
	char buf[512];

	if (r.reply_type == AMQP_RESPONSE_NORMAL)
		return 0;
	fprintf(stderr, "%s: %s: %s\n", prog, what, tool_reply_text(r, buf, sizeof(buf)));
	return -1;
}

amqp_connection_state_t tool_amqp_open(const char *prog, int port, const char *vhost,
                                       const char *user, const char *pass)
{
	amqp_connection_state_t conn = amqp_new_connection();
	struct timeval tv = { .tv_sec = 10 };
	amqp_socket_t *sock;
	amqp_rpc_reply_t r;
	char buf[512];
	int rc;

	if (!conn) {
		fprintf(stderr, "%s: out of memory\n", prog);
		return NULL;
	}
	sock = amqp_tcp_socket_new(conn);
	if (!sock) {
		fprintf(stderr, "%s: cannot create a socket\n", prog);
		goto fail;
	}
	rc = amqp_socket_open_noblock(sock, "127.0.0.1", port, &tv);
	if (rc != AMQP_STATUS_OK) {
		fprintf(stderr, "%s: connect to 127.0.0.1:%d: %s\n", prog, port, amqp_error_string2(rc));
		goto fail;
	}
	r = amqp_login(conn, vhost, 0, 131072, 0, AMQP_SASL_METHOD_PLAIN, user, pass);
	if (r.reply_type != AMQP_RESPONSE_NORMAL) {
		fprintf(stderr, "%s: login to vhost '%s': %s\n", prog, vhost,
		        tool_reply_text(r, buf, sizeof(buf)));
		goto fail;
	}
	amqp_channel_open(conn, 1);
	if (tool_check_rpc(prog, conn, "channel.open") != 0)
		goto fail;
	return conn;
fail:
	amqp_destroy_connection(conn);
	return NULL;
}
#endif
