#include "asetup.h"

#include <errno.h>
#include <netdb.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <poll.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

#include <amqp_tcp_socket.h>

#include "alogin.h"
#include "asock.h"
#include "atls.h"
#include "log.h"
#include "props.h"
#include "rmqsock.h"

/* Frames before connection.tune are at most the protocol's minimum. */
#define AS_FRAME_MIN 4096
/* Declarations sent ahead of their answers. */
#define AS_WINDOW 16
#define AS_LOOKUP_POLL_MS 10
/* rabbitmq-c's pseudo frame for a protocol header the broker sends back. */
#define AS_PROTOCOL_HEADER 'A'

static const char *const state_names[] = {
	"idle", "resolving", "connecting", "tls", "start", "tune", "open", "channel", "confirm",
	"declare",
};

const char *asetup_state_name(enum asetup_state st)
{
	return state_names[st];
}

static void as_enter(struct asetup *s, enum asetup_state st)
{
	log_debug("amqp: set-up %s -> %s", state_names[s->state], state_names[st]);
	s->state = st;
}

/* Closes everything the attempt holds; no handler runs. */
static void as_teardown(struct asetup *s)
{
	if (s->fd_added)
		loop_fd_del(s->loop, s->fd);
	s->fd_added = false;
	loop_timer_disarm(s->loop, &s->deadline_timer);
	loop_timer_disarm(s->loop, &s->lookup_timer);
	resolve_abandon(&s->resolve);
	s->addr = NULL;
	/* Once attached, the socket object owns the descriptor, the TLS session and the queue. */
	if (s->tls && !s->asock)
		atls_free(s->tls);
	s->tls = NULL;
	if (s->conn)
		amqp_destroy_connection(s->conn);
	s->conn = NULL;
	s->sock = NULL;
	s->asock = NULL;
	s->out = NULL;
	s->fd = -1;
	adecl_fini(&s->decl);
	s->state = AS_IDLE;
}

/* Ends the attempt with `fmt` as the reason. */
static void as_fail(struct asetup *s, const char *fmt, ...) LOG_PRINTF(2, 3);
static void as_fail(struct asetup *s, const char *fmt, ...)
{
	char why[sizeof(s->err)];
	va_list ap;

	/* Through a copy: s->err itself may be an argument. */
	va_start(ap, fmt);
	vsnprintf(why, sizeof(why), fmt, ap);
	va_end(ap);
	memcpy(s->err, why, sizeof(s->err));
	log_debug("amqp: set-up failed in state %s", state_names[s->state]);
	as_teardown(s);
	s->done(s->arg, s->err);
}

static void as_on_fd(void *arg, int fd, short revents);

static void as_watch(struct asetup *s, short events)
{
	if (!s->fd_added) {
		if (loop_fd_add(s->loop, s->fd, events, as_on_fd, s) != 0)
			return;
		s->fd_added = true;
	}
	loop_fd_events(s->loop, s->fd, events);
}

/* ------------------------------------------------------------------------
 * Declarations, a few in flight: RabbitMQ answers them in order, and once
 * it closes the channel over one it ignores those after it.
 */

/* Sends declarations while fewer than AS_WINDOW await their answers. */
static int as_send_steps(struct asetup *s)
{
	while (s->sent < s->decl.n_steps && s->sent - s->acked < AS_WINDOW) {
		int rc = adecl_encode(&s->decl, s->sent, s->out, ASETUP_CHANNEL, s->frame_max);

		if (rc != 0) {
			adecl_failure(&s->decl, s->sent, amqp_error_string2(rc), amqp_error_string2(rc), 0,
			              s->err, sizeof(s->err));
			as_fail(s, "%s", s->err);
			return -1;
		}
		s->sent++;
	}
	return 0;
}

static int as_begin_declare(struct asetup *s)
{
	if (adecl_init(&s->decl, s->cfg, s->topo, s->check, s->n_check) != 0) {
		as_fail(s, "out of memory for the topology");
		return -1;
	}
	s->sent = s->acked = 0;
	as_enter(s, AS_DECLARE);
	return as_send_steps(s);
}

/* The connection is ready: hands it to the done handler. */
static void as_succeed(struct asetup *s)
{
	adecl_log_done(&s->decl);
	adecl_fini(&s->decl);
	if (s->fd_added)
		loop_fd_del(s->loop, s->fd);
	s->fd_added = false;
	loop_timer_disarm(s->loop, &s->deadline_timer);
	/* What was written held connection.start-ok, with the password. */
	if (!aframe_pending(s->out))
		aframe_free(s->out);
	else
		aframe_wipe_written(s->out);
	as_enter(s, AS_IDLE);
	s->done(s->arg, NULL);
}

/* ------------------------------------------------------------------------
 * The handshake.
 */

/* Negotiates as rabbitmq-c's login does; sends tune-ok and connection.open. */
static int as_on_tune(struct asetup *s, const amqp_connection_tune_t *t)
{
	amqp_connection_tune_ok_t ok;
	amqp_connection_open_t open;
	uint32_t frame_max = PROPS_FRAME_MAX;
	int heartbeat = s->cfg->heartbeat, rc;

	ok.channel_max = t->channel_max != 0 ? t->channel_max : UINT16_MAX;
	if (t->frame_max != 0 && t->frame_max < frame_max)
		frame_max = t->frame_max;
	if (t->heartbeat != 0 && t->heartbeat < heartbeat)
		heartbeat = t->heartbeat;
	rc = amqp_tune_connection(s->conn, ok.channel_max, (int)frame_max, heartbeat);
	if (rc != AMQP_STATUS_OK)
		return rc;
	s->frame_max = frame_max;
	ok.frame_max = frame_max;
	ok.heartbeat = (uint16_t)heartbeat;
	rc = aframe_method(s->out, 0, AMQP_CONNECTION_TUNE_OK_METHOD, &ok, s->frame_max);
	if (rc != 0)
		return rc;
	open.virtual_host = amqp_cstring_bytes(s->cfg->vhost);
	open.capabilities = amqp_empty_bytes;
	open.insist = 1;
	return aframe_method(s->out, 0, AMQP_CONNECTION_OPEN_METHOD, &open, s->frame_max);
}

/*
 * Fails the set-up over a failure `full` of the current step (`text` and
 * `code` as for as_fail_step()).
 */
static void as_fail_here(struct asetup *s, const char *full, const char *text, int code)
{
	switch (s->state) {
	case AS_CHANNEL:
		as_fail(s, "channel.open failed: %s", full);
		break;
	case AS_CONFIRM:
		as_fail(s, "confirm.select failed: %s", full);
		break;
	case AS_DECLARE:
		adecl_failure(&s->decl, s->acked, full, text, code, s->err, sizeof(s->err));
		as_fail(s, "%s", s->err);
		break;
	default:
		as_fail(s, "login as '%s' failed: %s", s->cfg->username, full);
		break;
	}
}

/*
 * A read or write on the connection failed: `why`, from rabbitmq-c's
 * status `rc` (0 for a write of ours).
 */
static void as_fail_io(struct asetup *s, int rc, const char *why)
{
	/* TLS 1.3 refuses a client certificate after the handshake, during login. */
	if (s->tls && (rc == AMQP_STATUS_SSL_ERROR || rc == 0) && s->state <= AS_OPEN) {
		s->refused = true;
		as_fail(s, "TLS connection closed during login (%s): the broker may have refused the "
		        "client certificate (tls_cert_file, tls_key_file)", why);
	} else {
		as_fail_here(s, why, why, 0);
	}
}

/* Fails unless `rc` (from encoding a reply) is 0.  Returns rc. */
static int as_check(struct asetup *s, int rc)
{
	if (rc != 0)
		as_fail_here(s, amqp_error_string2(rc), amqp_error_string2(rc), 0);
	return rc;
}

/* Returns 0 to go on reading, -1 when the set-up ended (failed or done). */
static int as_on_method(struct asetup *s, amqp_channel_t ch, amqp_method_t m)
{
	char full[512], text[400];

	if (ch == 0 && m.id == AMQP_CONNECTION_CLOSE_METHOD) {
		amqp_connection_close_t *c = m.decoded;
		amqp_connection_close_ok_t ok = { 0 };

		snprintf(full, sizeof(full), "broker closed the connection: %u %.*s", c->reply_code,
		         (int)c->reply_text.len, (char *)c->reply_text.bytes);
		/* Polite but not awaited: the socket closes right after. */
		if (aframe_method(s->out, 0, AMQP_CONNECTION_CLOSE_OK_METHOD, &ok, s->frame_max) == 0)
			asock_write(s->asock, text, sizeof(text));
		/* RabbitMQ's answer, as a reset or an EOF is not. */
		s->refused = true;
		as_fail_here(s, full, full, 0);
		return -1;
	}
	if (ch == ASETUP_CHANNEL && m.id == AMQP_CHANNEL_CLOSE_METHOD) {
		amqp_channel_close_t *c = m.decoded;

		snprintf(full, sizeof(full), "broker closed the channel: %u %.*s", c->reply_code,
		         (int)c->reply_text.len, (char *)c->reply_text.bytes);
		snprintf(text, sizeof(text), "%.*s", (int)c->reply_text.len, (char *)c->reply_text.bytes);
		s->refused = true;
		as_fail_here(s, full, text, c->reply_code);
		return -1;
	}
	if (ch == 0 && m.id == AMQP_CONNECTION_BLOCKED_METHOD) {
		amqp_connection_blocked_t *b = m.decoded;

		s->blocked = true;
		snprintf(s->blocked_why, sizeof(s->blocked_why), "%.*s", (int)b->reason.len,
		         (char *)b->reason.bytes);
		return 0;
	}
	if (ch == 0 && m.id == AMQP_CONNECTION_UNBLOCKED_METHOD) {
		s->blocked = false;
		return 0;
	}

	switch (s->state) {
	case AS_START:
		if (ch == 0 && m.id == AMQP_CONNECTION_START_METHOD) {
			amqp_connection_start_t *st = m.decoded;

			if (st->version_major != AMQP_PROTOCOL_VERSION_MAJOR ||
			    st->version_minor != AMQP_PROTOCOL_VERSION_MINOR) {
				as_fail_here(s, amqp_error_string2(AMQP_STATUS_INCOMPATIBLE_AMQP_VERSION),
				             "", 0);
				return -1;
			}
			if (!alogin_offered(st->mechanisms, "PLAIN")) {
				as_fail_here(s, amqp_error_string2(AMQP_STATUS_BROKER_UNSUPPORTED_SASL_METHOD),
				             "", 0);
				return -1;
			}
			if (as_check(s, alogin_start_ok(s->out, s->cfg, s->frame_max)) != 0)
				return -1;
			as_enter(s, AS_TUNE);
			return 0;
		}
		break;
	case AS_TUNE:
		if (ch == 0 && m.id == AMQP_CONNECTION_TUNE_METHOD) {
			if (as_check(s, as_on_tune(s, m.decoded)) != 0)
				return -1;
			as_enter(s, AS_OPEN);
			return 0;
		}
		break;
	case AS_OPEN:
		if (ch == 0 && m.id == AMQP_CONNECTION_OPEN_OK_METHOD) {
			amqp_channel_open_t open = { .out_of_band = amqp_empty_bytes };

			if (as_check(s, aframe_method(s->out, ASETUP_CHANNEL, AMQP_CHANNEL_OPEN_METHOD,
			                              &open, s->frame_max)) != 0)
				return -1;
			as_enter(s, AS_CHANNEL);
			return 0;
		}
		break;
	case AS_CHANNEL:
		if (ch == ASETUP_CHANNEL && m.id == AMQP_CHANNEL_OPEN_OK_METHOD) {
			amqp_confirm_select_t sel = { .nowait = 0 };

			if (as_check(s, aframe_method(s->out, ASETUP_CHANNEL,
			                              AMQP_CONFIRM_SELECT_METHOD, &sel, s->frame_max)) != 0)
				return -1;
			as_enter(s, AS_CONFIRM);
			return 0;
		}
		break;
	case AS_CONFIRM:
		if (ch == ASETUP_CHANNEL && m.id == AMQP_CONFIRM_SELECT_OK_METHOD)
			return as_begin_declare(s);
		break;
	case AS_DECLARE:
		if (ch == ASETUP_CHANNEL && s->acked < s->sent &&
		    m.id == adecl_reply(&s->decl, s->acked)) {
			s->acked++;
			if (s->acked == s->decl.n_steps) {
				as_succeed(s);
				return -1;
			}
			return as_send_steps(s);
		}
		break;
	default:
		break;
	}
	snprintf(full, sizeof(full), "unexpected method 0x%08x on channel %u", m.id, ch);
	as_fail_here(s, full, full, 0);
	return -1;
}

static int as_on_frame(struct asetup *s, const amqp_frame_t *f)
{
	if (f->frame_type == AMQP_FRAME_METHOD)
		return as_on_method(s, f->channel, f->payload.method);
	if (f->frame_type == AS_PROTOCOL_HEADER) {
		/* The broker's answer to a protocol it does not speak. */
		char why[128];

		snprintf(why, sizeof(why), "%s (the broker offers AMQP %u-%u)",
		         amqp_error_string2(AMQP_STATUS_INCOMPATIBLE_AMQP_VERSION),
		         f->payload.protocol_header.protocol_version_major,
		         f->payload.protocol_header.protocol_version_minor);
		as_fail_here(s, why, why, 0);
		return -1;
	}
	log_debug("amqp: set-up ignores a frame of type %u on channel %u", f->frame_type,
	          f->channel);
	return 0;
}

/*
 * Writes what is queued, then reads and answers every frame that arrived.
 * Reading waits while our bytes are queued: a broker that stops reading
 * is not answered ever more, into a queue that would only grow.
 */
static void as_io(struct asetup *s)
{
	struct timeval zero = { 0, 0 };
	char why[256];
	amqp_frame_t f;

	if (asock_write(s->asock, why, sizeof(why)) != 0) {
		as_fail_io(s, 0, why);
		return;
	}
	while (!aframe_pending(s->out)) {
		int rc = amqp_simple_wait_frame_noblock(s->conn, &f, &zero);

		if (rc == AMQP_STATUS_TIMEOUT)
			break;
		if (rc != AMQP_STATUS_OK) {
			as_fail_io(s, rc, atls_error(rc, why, sizeof(why)));
			return;
		}
		if (as_on_frame(s, &f) != 0)
			return;
		if (asock_write(s->asock, why, sizeof(why)) != 0) {
			as_fail_io(s, 0, why);
			return;
		}
	}
	amqp_maybe_release_buffers(s->conn);
	as_watch(s, POLLIN | (aframe_pending(s->out) ? POLLOUT : 0));
}

/* TCP (and TLS) are up: the AMQP protocol header opens the handshake. */
static void as_begin_amqp(struct asetup *s)
{
	static const unsigned char header[8] = { 'A', 'M', 'Q', 'P', 0, AMQP_PROTOCOL_VERSION_MAJOR,
	                                         AMQP_PROTOCOL_VERSION_MINOR,
	                                         AMQP_PROTOCOL_VERSION_REVISION };

	s->asock = asock_attach(s->sock, s->fd, s->tls);
	if (!s->asock) {
		as_fail(s, "out of memory");
		return;
	}
	s->out = asock_out(s->asock);
	if (aframe_bytes(s->out, header, sizeof(header)) != 0) {
		as_fail(s, "out of memory");
		return;
	}
	as_enter(s, AS_START);
	as_io(s);
}

static void as_tls_step(struct asetup *s)
{
	short events = POLLIN;
	int rc = atls_handshake(s->tls, s->fd, &events, s->err, sizeof(s->err));

	if (rc < 0) {
		as_fail(s, "%s", s->err);
		return;
	}
	if (rc == 0) {
		as_watch(s, events);
		return;
	}
	as_begin_amqp(s);
}

static void as_connected(struct asetup *s)
{
	if (!s->cfg->tls) {
		as_begin_amqp(s);
		return;
	}
	s->tls = atls_new(s->cfg, s->node->host, s->err, sizeof(s->err));
	if (!s->tls) {
		as_fail(s, "%s", s->err);
		return;
	}
	as_enter(s, AS_TLS);
	as_tls_step(s);
}

/* Gives up the socket of the address that failed. */
static void as_drop_socket(struct asetup *s)
{
	if (s->fd_added)
		loop_fd_del(s->loop, s->fd);
	s->fd_added = false;
	amqp_tcp_socket_set_sockfd(s->sock, -1);
	if (s->fd >= 0)
		close(s->fd);
	s->fd = -1;
}

/* Connects to s->addr or, when it fails at once, the addresses after it. */
static void as_connect_next(struct asetup *s)
{
	static const int one = 1;

	for (; s->addr; s->addr = s->addr->ai_next) {
		const struct addrinfo *ai = s->addr;
		int fd = socket(ai->ai_family, ai->ai_socktype | SOCK_NONBLOCK | SOCK_CLOEXEC,
		                ai->ai_protocol);

		if (fd < 0) {
			snprintf(s->last_connect_error, sizeof(s->last_connect_error), "%s",
			         strerror(errno));
			continue;
		}
		/* As rabbitmq-c: no Nagle, TCP keepalives. */
		setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof(one));
		setsockopt(fd, SOL_SOCKET, SO_KEEPALIVE, &one, sizeof(one));
		s->fd = fd;
		amqp_tcp_socket_set_sockfd(s->sock, fd);
		if (connect(fd, ai->ai_addr, ai->ai_addrlen) == 0) {
			as_connected(s);
			return;
		}
		if (errno == EINPROGRESS) {
			as_watch(s, POLLOUT);
			if (!s->fd_added)
				as_fail(s, "too many file descriptors in the event loop");
			return;
		}
		snprintf(s->last_connect_error, sizeof(s->last_connect_error), "%s", strerror(errno));
		as_drop_socket(s);
	}
	as_fail(s, "TCP connect failed: %s", s->last_connect_error);
}

static void as_on_fd(void *arg, int fd, short revents)
{
	struct asetup *s = arg;

	(void)fd;
	switch (s->state) {
	case AS_CONNECTING: {
		int e = 0;
		socklen_t len = sizeof(e);

		if (getsockopt(s->fd, SOL_SOCKET, SO_ERROR, &e, &len) != 0)
			e = errno;
		if (e == 0 && (revents & POLLOUT)) {
			as_connected(s);
			return;
		}
		if (e == 0)
			return;
		snprintf(s->last_connect_error, sizeof(s->last_connect_error), "%s", strerror(e));
		as_drop_socket(s);
		s->addr = s->addr->ai_next;
		as_connect_next(s);
		return;
	}
	case AS_TLS:
		as_tls_step(s);
		return;
	case AS_IDLE:
	case AS_RESOLVING:
		return;
	default:
		as_io(s);
		return;
	}
}

static void as_on_lookup(void *arg)
{
	struct asetup *s = arg;
	struct addrinfo *list;
	int rc = resolve_poll(&s->resolve, &list, s->err, sizeof(s->err));

	if (rc == 0) {
		loop_timer_arm(s->loop, &s->lookup_timer, AS_LOOKUP_POLL_MS);
		return;
	}
	if (rc < 0) {
		as_fail(s, "%s", s->err);
		return;
	}
	as_enter(s, AS_CONNECTING);
	s->addr = list;
	snprintf(s->last_connect_error, sizeof(s->last_connect_error), "no address");
	as_connect_next(s);
}

static void as_on_deadline(void *arg)
{
	static const char *const waiting_for[] = {
		[AS_RESOLVING] = "the host name's addresses",
		[AS_CONNECTING] = "the TCP connection",
		[AS_TLS] = "the TLS handshake",
		[AS_START] = "connection.start",
		[AS_TUNE] = "connection.tune",
		[AS_OPEN] = "connection.open-ok",
		[AS_CHANNEL] = "channel.open-ok",
		[AS_CONFIRM] = "confirm.select-ok",
		[AS_DECLARE] = "the declarations",
	};
	struct asetup *s = arg;

	if (s->state == AS_DECLARE)
		as_fail(s, "set-up timed out after %d s (amqp.connect_timeout): %zu of %zu "
		        "declaration(s) answered", s->cfg->connect_timeout, s->acked, s->decl.n_steps);
	else
		as_fail(s, "set-up timed out after %d s (amqp.connect_timeout) waiting for %s",
		        s->cfg->connect_timeout, waiting_for[s->state]);
}

void asetup_init(struct asetup *s, struct loop *loop, asetup_done_fn done, void *arg)
{
	memset(s, 0, sizeof(*s));
	s->loop = loop;
	s->done = done;
	s->arg = arg;
	s->fd = -1;
	resolve_init(&s->resolve);
	loop_timer_init(&s->deadline_timer, as_on_deadline, s);
	loop_timer_init(&s->lookup_timer, as_on_lookup, s);
}

void asetup_fini(struct asetup *s)
{
	as_teardown(s);
	resolve_fini(&s->resolve);
}

void asetup_cancel(struct asetup *s)
{
	if (s->state != AS_IDLE)
		log_debug("amqp: set-up abandoned in state %s", state_names[s->state]);
	as_teardown(s);
}

void asetup_start(struct asetup *s, const struct amqp_settings *cfg,
                  const struct endpoint *node, const struct topology *t, char *const *check,
                  size_t n_check)
{
	as_teardown(s);
	s->cfg = cfg;
	s->node = node;
	s->topo = t;
	s->check = check;
	s->n_check = check ? n_check : 0;
	s->blocked = false;
	s->blocked_why[0] = '\0';
	s->refused = false;
	s->frame_max = AS_FRAME_MIN;
	as_enter(s, AS_RESOLVING);
	loop_timer_arm(s->loop, &s->deadline_timer, (uint64_t)cfg->connect_timeout * 1000u);
	if (!rmqsock_supported(s->err, sizeof(s->err))) {
		as_fail(s, "%s", s->err);
		return;
	}
	s->conn = amqp_new_connection();
	s->sock = s->conn ? amqp_tcp_socket_new(s->conn) : NULL;
	if (!s->sock) {
		as_fail(s, "out of memory");
		return;
	}
	if (resolve_start(&s->resolve, node->host, node->port, s->err, sizeof(s->err)) != 0) {
		as_fail(s, "%s", s->err);
		return;
	}
	as_on_lookup(s);
}

amqp_connection_state_t asetup_take(struct asetup *s, int *fd, struct asock **sock,
                                    bool *blocked)
{
	amqp_connection_state_t conn = s->conn;

	*fd = s->fd;
	*sock = s->asock;
	*blocked = s->blocked;
	s->conn = NULL;
	s->sock = NULL;
	s->asock = NULL;
	s->out = NULL;
	s->tls = NULL;
	s->fd = -1;
	resolve_abandon(&s->resolve);
	return conn;
}
