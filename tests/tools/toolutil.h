/*
 * toolutil: what the test and benchmark tools share besides payloads:
 * strict option parsing, a monotonic clock, and (with rabbitmq-c) a
 * readable description of a failed AMQP RPC.
 */
#ifndef MAB_TOOLUTIL_H
#define MAB_TOOLUTIL_H

#include <stddef.h>

/*
 * Strict integer parsing: the whole string, base 10, within [min, max].
 * Returns 0, or -1 after printing "PROG: OPT: expected ..." to stderr.
 */
int tool_parse_ll(const char *prog, const char *s, long long min, long long max,
                  const char *opt, long long *out);

/*
 * The end of a usage error: prints "try 'PROG --help'" to stderr and
 * returns 2, the tools' exit status for one.
 */
int tool_try_help(const char *prog);

/* Prints "PROG: " and the message to stderr, then as tool_try_help. */
int tool_usage_error(const char *prog, const char *fmt, ...)
	__attribute__((format(printf, 2, 3)));

/* Seconds on the monotonic clock. */
double tool_now_s(void);

#ifdef MAB_WITH_AMQP
#include <amqp.h>

/* Describes a failed RPC in buf; returns buf. */
const char *tool_reply_text(amqp_rpc_reply_t r, char *buf, size_t sz);

/* 0 when the last RPC succeeded; otherwise prints "PROG: WHAT: why" and returns -1. */
int tool_check_rpc(const char *prog, amqp_connection_state_t conn, const char *what);

/*
 * Connects to 127.0.0.1:PORT (10 s limit), logs in to VHOST without
 * heartbeats and opens channel 1.  NULL on failure (reported as PROG).
 */
amqp_connection_state_t tool_amqp_open(const char *prog, int port, const char *vhost,
                                       const char *user, const char *pass);
#endif

#endif
