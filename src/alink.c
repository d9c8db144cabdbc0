#include "alink.h"

#include <poll.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/time.h>
#include <unistd.h>

#include "aframe.h"
#include "asock.h"
#include "atls.h"
#include "log.h"
#include "props.h"

#define ALINK_CHANNEL ASETUP_CHANNEL
/* A link that stayed up this long starts its next backoff from the minimum. */
#define ALINK_STABLE_MS 10000
#define ALINK_TICK_MS 1000
#define ALINK_CLOSE_MS 2000
/*
 * Publishes are written when the loop's pass ends (alink_write()), or
 * once this much is queued, so that RabbitMQ gets to work on a long pass
 * before it ends and a pass of large messages is not held in memory.
 */
#define ALINK_WRITE_BATCH (64u << 10)

static const char *const state_names[] = { "down", "connecting", "ready", "blocked", "closing" };

const char *alink_state_name(enum alink_state s)
{
	return state_names[s];
}

static void alink_set_state(struct alink *a, enum alink_state s)
{
	if (a->state == s)
		return;
	log_debug("amqp: %s -> %s", state_names[a->state], state_names[s]);
	a->state = s;
}

/*
 * A message about the connection to the current broker; in JSON it
 * carries `event` ("connected", "lost" or "connect_failed"), `side` and
 * `node`, so that collectors need not parse the text.
 */
static void alink_event(const struct alink *a, enum log_level level, const char *event,
                        const char *fmt, ...) LOG_PRINTF(4, 5);
static void alink_event(const struct alink *a, enum log_level level, const char *event,
                        const char *fmt, ...)
{
	const struct log_field f[] = {
		LOG_STR("event", event),
		LOG_STR("side", "amqp"),
		LOG_STR("node", alink_node(a)->name),
	};
	va_list ap;

	va_start(ap, fmt);
	log_vkv(level, f, LOG_NFIELDS(f), fmt, ap);
	va_end(ap);
}

static amqp_bytes_t bytes_of(const char *p, size_t len)
{
	amqp_bytes_t b;

	b.bytes = (void *)p;
	b.len = len;
	return b;
}

const struct endpoint *alink_node(const struct alink *a)
{
	return &a->cfg->hosts[a->fo.cur];
}

static void alink_teardown(struct alink *a)
{
	acons_detach(&a->cons);
	asetup_cancel(&a->setup);
	homing_stop(&a->homing);
	if (a->fd >= 0)
		loop_fd_del(a->loop, a->fd);
	a->fd = -1;
	if (a->conn)
		amqp_destroy_connection(a->conn);
	/* The socket, its queue and TLS session went with the connection. */
	a->conn = NULL;
	a->sock = NULL;
	a->write_full = false;
	loop_timer_disarm(a->loop, &a->tick_timer);
	loop_timer_disarm(a->loop, &a->close_timer);
	free(a->ret_buf);
	free(a->ret_body);
	a->ret_buf = a->ret_body = NULL;
	a->ret_stage = 0;
}

/*
 * After a failure: the next address at once, or the same list again after
 * the backoff delay once a whole pass failed (failover.h).  `move` is false
 * for a failure that is not the broker's address's fault (a channel closed
 * over one message): the same address is tried again after the delay.
 */
static void alink_schedule_retry(struct alink *a, bool move, bool lost, bool stable)
{
	uint32_t delay;

	if (!move || failover_failed(&a->fo, lost, stable)) {
		delay = backoff_next(&a->backoff);
		log_info("amqp: reconnecting to %s in %u ms", alink_node(a)->name, delay);
	} else {
		delay = 0;
		log_info("amqp: trying %s next", alink_node(a)->name);
	}
	loop_timer_arm(a->loop, &a->retry_timer, delay);
}

const char *alink_fail_name(enum alink_fail f)
{
	static const char *const names[AL_FAIL_N] = {
		"connect", "refused", "lost", "closed", "channel_closed", "nack", "error",
	};

	return names[f];
}

static enum alink_fail alink_fail_kind(enum alink_cause cause, bool was_up)
{
	if (!was_up)
		return cause == AL_CAUSE_LINK ? AL_FAIL_CONNECT
		       : cause == AL_CAUSE_PUBLISH ? AL_FAIL_ERROR : AL_FAIL_REFUSED;
	switch (cause) {
	case AL_CAUSE_LINK: return AL_FAIL_LOST;
	case AL_CAUSE_CONNECTION_CLOSED: return AL_FAIL_CLOSED;
	case AL_CAUSE_CHANNEL_CLOSED: return AL_FAIL_CHANNEL;
	case AL_CAUSE_REFUSED: return AL_FAIL_NACK;
	default: return AL_FAIL_ERROR;
	}
}

/* Fails the link, recording why for the down handler. */
static void alink_fail_as(struct alink *a, enum alink_cause cause, int code, const char *why)
{
	bool was_up = a->state == AL_READY || a->state == AL_BLOCKED;
	bool stable = was_up && loop_now_ms() - a->up_since_ms >= ALINK_STABLE_MS;
	/*
	 * A channel closed over a message, a publish that could not be
	 * encoded, a refused message: not the node's fault.
	 */
	bool move = cause == AL_CAUSE_LINK || cause == AL_CAUSE_CONNECTION_CLOSED || !was_up;

	a->fails[alink_fail_kind(cause, was_up)]++;
	a->failure.cause = cause;
	a->failure.code = code;
	snprintf(a->failure.text, sizeof(a->failure.text), "%s", why);
	if (was_up)
		alink_event(a, LOG_LVL_WARNING, "lost", "amqp: connection to %s lost: %s",
		            alink_node(a)->name, why);
	else
		alink_event(a, LOG_LVL_WARNING, "connect_failed", "amqp: cannot connect to %s "
		            "(vhost '%s'): %s", alink_node(a)->name, a->cfg->vhost, why);
	if (stable)
		backoff_reset(&a->backoff);
	alink_teardown(a);
	alink_set_state(a, AL_DOWN);
	if (was_up && a->h.down)
		a->h.down(a->arg);
	if (a->wanted)
		alink_schedule_retry(a, move, was_up, stable);
}

void alink_fail(struct alink *a, const char *why)
{
	alink_fail_as(a, AL_CAUSE_LINK, 0, why);
}

void alink_reopen(struct alink *a, const char *why)
{
	alink_fail_as(a, AL_CAUSE_REFUSED, 0, why);
}

static void alink_connect(struct alink *a);

/* The close handshake is over (or given up): the link is DOWN. */
static void alink_closed(struct alink *a)
{
	alink_teardown(a);
	alink_set_state(a, AL_DOWN);
	if (a->reconnect_after_close && a->wanted) {
		a->reconnect_after_close = false;
		alink_connect(a);
	}
	a->reconnect_after_close = false;
}

/*
 * Writes what is queued, as much as the socket takes; the rest waits for
 * POLLOUT.  Returns -1 when the connection failed: the link is then DOWN
 * (failed, or closed when it was closing).
 */
static int alink_write_out(struct alink *a)
{
	char why[256];

	if (asock_write(a->sock, why, sizeof(why)) != 0) {
		if (a->state == AL_CLOSING) {
			log_debug("amqp: close: %s", why);
			alink_closed(a);
		} else {
			alink_fail(a, why);
		}
		return -1;
	}
	a->write_full = asock_unwritten(a->sock) > 0;
	loop_fd_events(a->loop, a->fd, POLLIN | (a->write_full ? POLLOUT : 0));
	return 0;
}

/*
 * connection.close (it closes the channel too), written without waiting;
 * connection.close-ok is awaited in the loop, for ALINK_CLOSE_MS at most.
 * Returns -1, changing nothing, when the frame cannot be encoded; else 0,
 * with the link CLOSING (or already DOWN if the socket refused the write).
 */
static int alink_begin_close(struct alink *a)
{
	amqp_connection_close_t c = { .reply_code = AMQP_REPLY_SUCCESS, .class_id = 0,
	                              .method_id = 0 };

	c.reply_text = amqp_cstring_bytes("200");
	if (aframe_method(asock_out(a->sock), 0, AMQP_CONNECTION_CLOSE_METHOD, &c,
	                  alink_frame_max(a)) != 0)
		return -1;
	loop_timer_disarm(a->loop, &a->tick_timer);
	alink_set_state(a, AL_CLOSING);
	loop_timer_arm(a->loop, &a->close_timer, ALINK_CLOSE_MS);
	alink_write_out(a);
	return 0;
}

/* Reads during the close handshake; the link closes on close-ok or any failure. */
static void alink_read_closing(struct alink *a)
{
	struct timeval zero = { 0, 0 };
	amqp_frame_t f;

	while (a->state == AL_CLOSING) {
		int rc = amqp_simple_wait_frame_noblock(a->conn, &f, &zero);

		if (rc == AMQP_STATUS_TIMEOUT)
			break;
		if (rc != AMQP_STATUS_OK || (f.frame_type == AMQP_FRAME_METHOD && f.channel == 0 &&
		    (f.payload.method.id == AMQP_CONNECTION_CLOSE_OK_METHOD ||
		     f.payload.method.id == AMQP_CONNECTION_CLOSE_METHOD))) {
			alink_closed(a);
			return;
		}
	}
	/* What rabbitmq-c queued meanwhile (a heartbeat), behind connection.close. */
	if (alink_write_out(a) != 0)
		return;
	amqp_maybe_release_buffers(a->conn);
}

static void alink_on_close_timeout(void *arg)
{
	struct alink *a = arg;

	log_debug("amqp: no connection.close-ok within %d ms", ALINK_CLOSE_MS);
	alink_closed(a);
}

static void alink_on_fd(void *arg, int fd, short revents)
{
	struct alink *a = arg;

	(void)fd;
	if (a->state == AL_CLOSING) {
		alink_read_closing(a);
		return;
	}
	if ((revents & POLLOUT) && alink_write_out(a) != 0)
		return;
	if (revents & (POLLIN | POLLERR | POLLHUP))
		alink_read(a);
}

static void alink_on_tick(void *arg)
{
	struct alink *a = arg;

	/* Reading also sends a heartbeat when one is due and detects a silent broker. */
	alink_read(a);
	if (a->state == AL_READY || a->state == AL_BLOCKED)
		loop_timer_arm(a->loop, &a->tick_timer, ALINK_TICK_MS);
}

static void alink_set_blocked(struct alink *a, bool blocked, const char *why, size_t len)
{
	if (blocked) {
		log_warn("amqp: broker blocked publishing: %.*s", (int)len, why);
		alink_set_state(a, AL_BLOCKED);
	} else {
		log_info("amqp: broker unblocked publishing");
		alink_set_state(a, AL_READY);
	}
	a->h.blocked(a->arg, blocked);
}

/* The set-up's outcome: `err` is NULL when the connection is ready. */
static void alink_on_setup(void *arg, const char *err)
{
	struct alink *a = arg;
	char where[FAILOVER_WHERE_MAX];
	bool blocked;

	if (err) {
		/* RabbitMQ refused it (login, vhost, topology): counted apart from not reaching it. */
		alink_fail_as(a, a->setup.refused ? AL_CAUSE_CONNECTION_CLOSED : AL_CAUSE_LINK, 0, err);
		return;
	}
	a->conn = asetup_take(&a->setup, &a->fd, &a->sock, &blocked);
	a->next_tag = 1;
	acons_attach(&a->cons, asock_out(a->sock), alink_frame_max(a));
	a->up_since_ms = loop_now_ms();
	if (loop_fd_add(a->loop, a->fd, POLLIN, alink_on_fd, a) != 0) {
		alink_fail(a, "too many file descriptors in the event loop");
		return;
	}
	loop_timer_arm(a->loop, &a->tick_timer, ALINK_TICK_MS);
	alink_set_state(a, AL_READY);
	failover_connected(&a->fo);
	alink_event(a, LOG_LVL_INFO, "connected", "amqp: connected to %s vhost '%s', exchange '%s'%s",
	            alink_node(a)->name, a->cfg->vhost, a->cfg->exchange,
	            failover_where(&a->fo, where, sizeof(where), " (", ")"));
	if (failover_on_standby(&a->fo))
		homing_start(&a->homing, &a->cfg->hosts[0],
		             failover_retry_ms(&a->fo, a->cfg->primary_retry),
		             (unsigned)a->cfg->connect_timeout * 1000u);
	if (a->h.up)
		a->h.up(a->arg);
	if (blocked && a->state == AL_READY)
		alink_set_blocked(a, true, a->setup.blocked_why, strlen(a->setup.blocked_why));
}

static void alink_connect(struct alink *a)
{
	alink_set_state(a, AL_CONNECTING);
	asetup_start(&a->setup, a->cfg, alink_node(a), a->topo, a->check, a->n_check);
}

static void alink_on_retry(void *arg)
{
	struct alink *a = arg;

	if (a->wanted && a->state == AL_DOWN)
		alink_connect(a);
}

/* Up on another address than the first: homing.h checks the first meanwhile. */
static bool alink_away(void *arg)
{
	struct alink *a = arg;

	return (a->state == AL_READY || a->state == AL_BLOCKED) && failover_on_standby(&a->fo);
}

static void alink_on_home(void *arg)
{
	struct alink *a = arg;

	if (a->h.primary_back)
		a->h.primary_back(a->arg);
}

int alink_init(struct alink *a, const struct amqp_settings *cfg, const struct bridge_settings *bs,
               struct loop *loop, const struct alink_handlers *h, void *arg)
{
	memset(a, 0, sizeof(*a));
	a->cfg = cfg;
	a->loop = loop;
	a->h = *h;
	a->arg = arg;
	a->fd = -1;
	backoff_init(&a->backoff, (uint32_t)bs->reconnect_min_ms, (uint32_t)bs->reconnect_max_ms,
	             (uint64_t)getpid() * 2654435761u ^ loop_now_ms());
	asetup_init(&a->setup, loop, alink_on_setup, a);
	acons_init(&a->cons, &h->consumer, arg);
	failover_init(&a->fo, cfg->n_hosts, (enum failover_order)cfg->hosts_order);
	homing_init(&a->homing, loop, "amqp", alink_away, alink_on_home, a);
	loop_timer_init(&a->retry_timer, alink_on_retry, a);
	loop_timer_init(&a->tick_timer, alink_on_tick, a);
	loop_timer_init(&a->close_timer, alink_on_close_timeout, a);
	return 0;
}

void alink_fini(struct alink *a)
{
	loop_timer_disarm(a->loop, &a->retry_timer);
	alink_teardown(a);
	acons_fini(&a->cons);
	asetup_fini(&a->setup);
	homing_fini(&a->homing);
}

void alink_start(struct alink *a)
{
	a->wanted = true;
	if (a->state == AL_DOWN && !a->retry_timer.armed)
		alink_connect(a);
}

/*
 * Ends the connection, with the close handshake in the loop when
 * `graceful` (the link is CLOSING until it ends), and otherwise at once (a
 * set-up in progress is abandoned).  Returns whether it was up.
 */
static bool alink_close(struct alink *a, bool graceful)
{
	bool was_up = a->state == AL_READY || a->state == AL_BLOCKED;

	if (a->state == AL_CLOSING) {
		if (!graceful)
			alink_closed(a);
		return false;
	}
	if (was_up && graceful && alink_begin_close(a) == 0)
		return true;
	alink_teardown(a);
	alink_set_state(a, AL_DOWN);
	return was_up;
}

void alink_stop(struct alink *a, bool graceful)
{
	a->wanted = false;
	a->reconnect_after_close = false;
	loop_timer_disarm(a->loop, &a->retry_timer);
	if (alink_close(a, graceful))
		log_info("amqp: disconnected from %s%s", alink_node(a)->name,
		         graceful ? "" : " (without the close handshake)");
}

bool alink_closing(const struct alink *a)
{
	return a->state == AL_CLOSING;
}

/*
 * A set-up in progress holds the settings and the topology it started
 * with, which a reload is about to free: it starts again with the new ones.
 */
static void alink_retarget(struct alink *a)
{
	if (a->state != AL_CONNECTING)
		return;
	log_debug("amqp: set-up restarted with the reloaded settings");
	asetup_cancel(&a->setup);
	alink_connect(a);
}

void alink_set_topology(struct alink *a, const struct topology *t, char *const *check,
                        size_t n_check)
{
	a->topo = t;
	a->check = check;
	a->n_check = check ? n_check : 0;
	alink_retarget(a);
}

/* The same brokers in the same order, tried the same way. */
static bool same_brokers(const struct amqp_settings *x, const struct amqp_settings *y)
{
	return x->hosts_order == y->hosts_order
	       && endpoint_lists_same(x->hosts, x->n_hosts, y->hosts, y->n_hosts);
}

void alink_set_config(struct alink *a, const struct amqp_settings *cfg)
{
	if (!same_brokers(a->cfg, cfg))
		failover_init(&a->fo, cfg->n_hosts, (enum failover_order)cfg->hosts_order);
	a->cfg = cfg;
	alink_retarget(a);
}

void alink_to_primary(struct alink *a)
{
	failover_to_primary(&a->fo);
}

/*
 * The settings may already name another broker (and alink_to_primary()
 * another address), so the message names the one connected to next.  A
 * deliberate reconnect is no failure:
 * the backoff starts over.  The new connection starts once the old one's
 * close handshake is over.
 */
void alink_restart(struct alink *a)
{
	loop_timer_disarm(a->loop, &a->retry_timer);
	a->failure = (struct alink_failure){ .cause = AL_CAUSE_LINK };
	snprintf(a->failure.text, sizeof(a->failure.text), "reconnecting on purpose");
	if (alink_close(a, true)) {
		log_info("amqp: disconnected, to connect to %s", alink_node(a)->name);
		if (a->h.down)
			a->h.down(a->arg);
	}
	backoff_reset(&a->backoff);
	a->wanted = true;
	if (a->state == AL_CLOSING)
		a->reconnect_after_close = true;
	else
		alink_connect(a);
}

size_t alink_frame_max(const struct alink *a)
{
	int n = a->conn && (a->state == AL_READY || a->state == AL_BLOCKED)
	        ? amqp_get_frame_max(a->conn) : 0;

	return n > 0 ? (size_t)n : PROPS_FRAME_MAX;
}

bool alink_backlogged(const struct alink *a)
{
	return a->write_full && asock_unwritten(a->sock) >= ALINK_WRITE_BATCH;
}

void alink_write(struct alink *a, bool batch_only)
{
	if ((a->state != AL_READY && a->state != AL_BLOCKED) || a->write_full)
		return;
	if (batch_only && asock_unwritten(a->sock) < ALINK_WRITE_BATCH)
		return;
	alink_write_out(a);
}

/*
 * With TLS, OpenSSL holds no decrypted bytes behind rabbitmq-c's back:
 * rabbitmq-c reads only once its own buffer is empty, with SSL_read() into
 * its whole 128 KiB buffer, which takes every byte of the current record
 * (at most 16 KiB), and read-ahead is off, so the next record stays in the
 * kernel where poll() sees it.
 */
bool alink_pending(const struct alink *a)
{
	return a->conn && (a->state == AL_READY || a->state == AL_BLOCKED) &&
	       (amqp_data_in_buffer(a->conn) || amqp_frames_enqueued(a->conn));
}

static void alink_deliver_return(struct alink *a)
{
	a->ret.body = a->ret_body;
	a->ret.body_len = a->ret_body_len;
	if (a->h.returned)
		a->h.returned(a->arg, &a->ret);
	free(a->ret_buf);
	free(a->ret_body);
	a->ret_buf = a->ret_body = NULL;
	a->ret_stage = 0;
}

/* Copies a basic.return's fields; its content frames follow. */
static int alink_begin_return(struct alink *a, const amqp_basic_return_t *m)
{
	size_t n = m->reply_text.len + m->exchange.len + m->routing_key.len + 3;
	char *p = malloc(n);

	if (!p)
		return -1;
	a->ret_buf = p;
	a->ret.reply_code = m->reply_code;
	a->ret.reply_text = p;
	memcpy(p, m->reply_text.bytes, m->reply_text.len);
	p += m->reply_text.len;
	*p++ = '\0';
	a->ret.exchange = p;
	a->ret.exchange_len = m->exchange.len;
	memcpy(p, m->exchange.bytes, m->exchange.len);
	p += m->exchange.len;
	*p++ = '\0';
	a->ret.routing_key = p;
	a->ret.routing_key_len = m->routing_key.len;
	memcpy(p, m->routing_key.bytes, m->routing_key.len);
	p += m->routing_key.len;
	*p = '\0';
	a->ret.delivery_mode = 1;
	a->ret_stage = 1;
	return 0;
}

/* Returns -1 after failing the link. */
static int alink_on_method(struct alink *a, const amqp_frame_t *f)
{
	amqp_method_t m = f->payload.method;
	char why[512], scratch[256];

	switch (m.id) {
	case AMQP_BASIC_ACK_METHOD: {
		amqp_basic_ack_t *ack = m.decoded;
		a->h.ack(a->arg, ack->delivery_tag, ack->multiple);
		return 0;
	}
	case AMQP_BASIC_NACK_METHOD: {
		amqp_basic_nack_t *nack = m.decoded;
		a->h.nack(a->arg, nack->delivery_tag, nack->multiple);
		return 0;
	}
	case AMQP_BASIC_RETURN_METHOD:
		if (alink_begin_return(a, m.decoded) != 0) {
			alink_fail(a, "out of memory for a returned message");
			return -1;
		}
		return 0;
	case AMQP_CONNECTION_BLOCKED_METHOD: {
		amqp_connection_blocked_t *b = m.decoded;
		alink_set_blocked(a, true, b->reason.bytes, b->reason.len);
		return 0;
	}
	case AMQP_CONNECTION_UNBLOCKED_METHOD:
		alink_set_blocked(a, false, NULL, 0);
		return 0;
	case AMQP_CHANNEL_CLOSE_METHOD: {
		amqp_channel_close_t *c = m.decoded;
		amqp_channel_close_ok_t ok = { 0 };
		snprintf(why, sizeof(why), "broker closed the channel: %u %.*s", c->reply_code,
		         (int)c->reply_text.len, (char *)c->reply_text.bytes);
		amqp_send_method(a->conn, f->channel, AMQP_CHANNEL_CLOSE_OK_METHOD, &ok);
		/* Polite but not awaited: the connection closes right after. */
		asock_write(a->sock, scratch, sizeof(scratch));
		alink_fail_as(a, AL_CAUSE_CHANNEL_CLOSED, c->reply_code, why);
		return -1;
	}
	case AMQP_CONNECTION_CLOSE_METHOD: {
		amqp_connection_close_t *c = m.decoded;
		amqp_connection_close_ok_t ok = { 0 };
		snprintf(why, sizeof(why), "broker closed the connection: %u %.*s", c->reply_code,
		         (int)c->reply_text.len, (char *)c->reply_text.bytes);
		amqp_send_method(a->conn, 0, AMQP_CONNECTION_CLOSE_OK_METHOD, &ok);
		asock_write(a->sock, scratch, sizeof(scratch));
		alink_fail_as(a, AL_CAUSE_CONNECTION_CLOSED, c->reply_code, why);
		return -1;
	}
	default:
		log_debug("amqp: ignoring method 0x%08x on channel %u", m.id, f->channel);
		return 0;
	}
}

/* Returns -1 after failing the link. */
static int alink_on_frame(struct alink *a, const amqp_frame_t *f)
{
	/* The consumer channel's frames may come between those of a basic.return. */
	if (f->channel == ACONS_CHANNEL) {
		char why[512];

		if (acons_frame(&a->cons, f, why, sizeof(why)) != 0) {
			alink_fail(a, why);
			return -1;
		}
		return 0;
	}
	if (a->ret_stage == 1) {
		if (f->frame_type != AMQP_FRAME_HEADER || f->channel != ALINK_CHANNEL) {
			alink_fail(a, "protocol error: basic.return without a content header");
			return -1;
		}
		const amqp_basic_properties_t *p = f->payload.properties.decoded;
		if (p && (p->_flags & AMQP_BASIC_DELIVERY_MODE_FLAG))
			a->ret.delivery_mode = p->delivery_mode;
		a->ret_body_len = (size_t)f->payload.properties.body_size;
		a->ret_body_have = 0;
		a->ret_body = malloc(a->ret_body_len ? a->ret_body_len : 1);
		if (!a->ret_body) {
			alink_fail(a, "out of memory for a returned message");
			return -1;
		}
		if (a->ret_body_len == 0)
			alink_deliver_return(a);
		else
			a->ret_stage = 2;
		return 0;
	}
	if (a->ret_stage == 2) {
		amqp_bytes_t frag = f->payload.body_fragment;
		if (f->frame_type != AMQP_FRAME_BODY || f->channel != ALINK_CHANNEL ||
		    frag.len > a->ret_body_len - a->ret_body_have) {
			alink_fail(a, "protocol error: malformed content of a returned message");
			return -1;
		}
		memcpy(a->ret_body + a->ret_body_have, frag.bytes, frag.len);
		a->ret_body_have += frag.len;
		if (a->ret_body_have == a->ret_body_len)
			alink_deliver_return(a);
		return 0;
	}
	if (f->frame_type == AMQP_FRAME_METHOD)
		return alink_on_method(a, f);
	log_debug("amqp: ignoring frame of type %u on channel %u", f->frame_type, f->channel);
	return 0;
}

/*
 * Frees what rabbitmq-c decoded, channel by channel: a delivery being
 * assembled points into its channel's memory until its last frame.
 */
static void alink_release(struct alink *a)
{
	if (!a->conn)
		return;
	amqp_maybe_release_buffers_on_channel(a->conn, 0);
	amqp_maybe_release_buffers_on_channel(a->conn, ALINK_CHANNEL);
	if (!acons_assembling(&a->cons))
		amqp_maybe_release_buffers_on_channel(a->conn, ACONS_CHANNEL);
}

void alink_read(struct alink *a)
{
	struct timeval zero = { 0, 0 };
	amqp_frame_t f;

	if (a->state == AL_CLOSING) {
		alink_read_closing(a);
		return;
	}
	while (a->state == AL_READY || a->state == AL_BLOCKED) {
		int rc = amqp_simple_wait_frame_noblock(a->conn, &f, &zero);

		if (rc == AMQP_STATUS_TIMEOUT)
			break;
		if (rc != AMQP_STATUS_OK) {
			char why[256];

			alink_fail(a, atls_error(rc, why, sizeof(why)));
			return;
		}
		if (alink_on_frame(a, &f) != 0)
			return;
	}
	alink_release(a);
}

int alink_publish(struct alink *a, const char *exchange, size_t exlen, const char *key,
                  size_t keylen, const amqp_basic_properties_t *props, const void *body,
                  size_t len, uint64_t *tag)
{
	int rc;

	if (a->state != AL_READY)
		return -1;
	rc = aframe_publish(asock_out(a->sock), ALINK_CHANNEL, bytes_of(exchange, exlen),
	                    bytes_of(key, keylen), props, bytes_of(body, len), alink_frame_max(a));
	if (rc != 0) {
		char why[256];

		snprintf(why, sizeof(why), "publish failed: %s", amqp_error_string2(rc));
		/* Nothing was queued: only a table too large for the frame is the message's. */
		alink_fail_as(a, rc == AMQP_STATUS_TABLE_TOO_BIG ? AL_CAUSE_PUBLISH : AL_CAUSE_LINK, rc,
		              why);
		return -1;
	}
	*tag = a->next_tag++;
	return 0;
}

static bool alink_up(const struct alink *a)
{
	return a->state == AL_READY || a->state == AL_BLOCKED;
}

/* A frame of the consumer channel that could not be encoded: the connection is unusable. */
static int alink_cons_result(struct alink *a, int rc, const char *what)
{
	char why[128];

	if (rc >= 0)
		return rc;
	snprintf(why, sizeof(why), "cannot encode the downlink's %s", what);
	alink_fail(a, why);
	return -1;
}

int alink_consume(struct alink *a, const struct acons_queue *queues, size_t n)
{
	if (!alink_up(a) || a->cons.state != AC_CLOSED)
		return -1;
	return alink_cons_result(a, acons_open(&a->cons, queues, n), "channel.open");
}

int alink_consume_cancel(struct alink *a)
{
	if (!alink_up(a))
		return -1;
	return alink_cons_result(a, acons_cancel(&a->cons), "basic.cancel");
}

int alink_consume_close(struct alink *a)
{
	if (!alink_up(a))
		return -1;
	return alink_cons_result(a, acons_close(&a->cons), "channel.close");
}

int alink_settle(struct alink *a, uint64_t gen, uint64_t tag, enum acons_settle how)
{
	if (!alink_up(a))
		return 1;
	return alink_cons_result(a, acons_settle(&a->cons, gen, tag, how), "basic.ack");
}
