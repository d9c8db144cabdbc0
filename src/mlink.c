#include "mlink.h"

#include <errno.h>
#include <limits.h>
#include <netdb.h>
#include <stdarg.h>
#include <poll.h>
#include <stddef.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

#include <mqtt_protocol.h>
#include <openssl/ssl.h>
#include <openssl/x509.h>

#include "closer.h"
#include "filter.h"
#include "log.h"
#include "resolve.h"
#include "mclient.h"

/* A connection that stayed up this long starts its next backoff from the minimum. */
#define MLINK_STABLE_MS 10000
#define MLINK_MISC_MS 1000
/* How often a wanted connection re-checks whether it may connect. */
#define MLINK_GATE_POLL_MS 100
/* How long a clean close waits for the broker to close its side. */
#define MLINK_LINGER_MS 2000
/* How often a name lookup in progress is asked for its answer. */
#define MLINK_RESOLVE_POLL_MS 10

static const char *const state_names[] = {
	"down", "resolving", "connecting", "subscribing", "active", "draining",
};

const char *mlink_state_name(enum mlink_state s)
{
	return state_names[s];
}

static void mlink_set_state(struct mlink *m, enum mlink_state s)
{
	if (m->state == s)
		return;
	log_debug("mqtt: %s -> %s", state_names[m->state], state_names[s]);
	m->state = s;
}

/*
 * A message about the connection to the current broker; in JSON it
 * carries `event` ("connected", "lost" or "connect_failed"), `side` and
 * `node`, so that collectors need not parse the text.
 */
static void mlink_event(const struct mlink *m, enum log_level level, const char *event,
                        const char *fmt, ...) LOG_PRINTF(4, 5);
static void mlink_event(const struct mlink *m, enum log_level level, const char *event,
                        const char *fmt, ...)
{
	const struct log_field f[] = {
		LOG_STR("event", event),
		LOG_STR("side", "mqtt"),
		LOG_STR("node", mlink_node(m)->name),
	};
	va_list ap;

	va_start(ap, fmt);
	log_vkv(level, f, LOG_NFIELDS(f), fmt, ap);
	va_end(ap);
}

bool mlink_connected(const struct mlink *m)
{
	return m->state != ML_DOWN || closer_active(&m->linger);
}

/* The TLS handshake of the current connection has not completed yet. */
static bool mlink_handshaking(const struct mlink *m)
{
	return m->cfg->tls && m->state == ML_CONNECTING && mclient_handshaking(m->mosq);
}

static bool mlink_ssl_pending(const struct mlink *m)
{
	return m->cfg->tls && mclient_ssl_pending(m->mosq);
}

/* A request could not be queued: the connection can no longer be trusted. */
static void mlink_break(struct mlink *m)
{
	if (m->state != ML_DOWN)
		m->broken = true;
}

/*
 * Sends SUBSCRIBE (kind MSUBS_SUB / MSUBS_INITIAL) or UNSUBSCRIBE
 * (MSUBS_UNSUB) for `filters`, which it takes over in every case, and
 * remembers the request until the broker answers it.  Returns 0 or -1.
 */
static int mlink_request(struct mlink *m, int kind, char **filters, size_t n, int options)
{
	int mid, rc;

	if (!filters || msubs_req_reserve(&m->subs) != 0) {
		if (filters)
			msubs_strv_free(filters, n);
		return -1;
	}
	if (kind == MSUBS_UNSUB)
		rc = mosquitto_unsubscribe_multiple(m->mosq, &mid, (int)n, filters, NULL);
	else
		rc = mosquitto_subscribe_multiple(m->mosq, &mid, (int)n, filters, 1, options, NULL);
	if (rc != MOSQ_ERR_SUCCESS) {
		log_error("mqtt: cannot %s: %s", kind == MSUBS_UNSUB ? "unsubscribe" : "subscribe",
		          mosquitto_strerror(rc));
		msubs_strv_free(filters, n);
		return -1;
	}
	msubs_req_add(&m->subs, mid, kind, filters, n);
	return 0;
}

/*
 * SUBSCRIBE for `filters` (taken over in every case), as mlink_request().
 * With MQTT 5 each filter carries No Local, so that the broker never sends
 * the bridge the downlink's own messages; MQTT 5 forbids it on a shared
 * subscription, so those go in a request of their own, without it (the
 * configuration check guards them as it does MQTT 3.1.1).
 */
static int mlink_subscribe(struct mlink *m, int kind, char **filters, size_t n)
{
	char **own, **shared;
	size_t n_shared = 0, k = 0, j = 0;

	if (!filters || m->cfg->protocol != MQTT_PROTOCOL_5)
		return mlink_request(m, kind, filters, n, 0);
	for (size_t i = 0; i < n; i++)
		n_shared += filter_unshared(filters[i]) != filters[i];
	if (n_shared == 0 || n_shared == n)
		return mlink_request(m, kind, filters, n, n_shared ? 0 : MQTT_SUB_OPT_NO_LOCAL);
	own = calloc(n - n_shared, sizeof(*own));
	shared = calloc(n_shared, sizeof(*shared));
	if (!own || !shared) {
		free(own);
		free(shared);
		msubs_strv_free(filters, n);
		return -1;
	}
	for (size_t i = 0; i < n; i++) {
		if (filter_unshared(filters[i]) != filters[i])
			shared[j++] = filters[i];
		else
			own[k++] = filters[i];
	}
	free(filters);
	if (mlink_request(m, kind, own, k, MQTT_SUB_OPT_NO_LOCAL) != 0) {
		msubs_strv_free(shared, j);
		return -1;
	}
	return mlink_request(m, kind == MSUBS_INITIAL ? MSUBS_SUB : kind, shared, j, 0);
}

const char *mlink_fail_name(enum mlink_fail f)
{
	static const char *const names[ML_FAIL_N] = {
		"connect", "refused", "lost", "dropped", "error",
	};

	return names[f];
}

const struct endpoint *mlink_node(const struct mlink *m)
{
	return &m->cfg->hosts[m->fo.cur];
}

/* How a connection (or an attempt) ended. */
enum ml_end {
	ML_END_CLEAN,   /* closed on purpose, nothing lost: reconnect at once when wanted */
	ML_END_LOCAL,   /* a local failure: the same address after the backoff delay */
	/*
	 * Dropped by the bridge (mlink_drop()): RabbitMQ failed or refused.
	 * The same address as soon as the bridge allows a connection, which
	 * it does once the AMQP channel is back: AMQP's backoff paces it.
	 */
	ML_END_GATE,
	ML_END_BROKER,  /* the broker failed, refused or lost it: the next address */
};

static void mlink_lose(struct mlink *m, const char *why, enum ml_end how);

static void mlink_schedule(struct mlink *m, enum ml_end how, bool lost, bool stable)
{
	uint32_t delay = 0;

	if (!m->wanted)
		return;
	if (how == ML_END_LOCAL || (how == ML_END_BROKER && failover_failed(&m->fo, lost, stable))) {
		delay = backoff_next(&m->backoff);
		log_info("mqtt: reconnecting to %s in %u ms", mlink_node(m)->name, delay);
	} else if (how == ML_END_BROKER) {
		log_info("mqtt: trying %s next", mlink_node(m)->name);
	}
	m->gate_wait = false;
	loop_timer_arm(m->loop, &m->retry_timer, delay);
}

/*
 * The one place a connection ends.  Whatever libmosquitto still has queued
 * (PUBACKs of unconfirmed messages) is discarded by the next
 * mosquitto_reconnect_async(), which runs packet__cleanup_all() before it
 * connects.
 */
static void mlink_went_down(struct mlink *m, enum ml_end how)
{
	bool lost = m->state == ML_SUBSCRIBING || m->state == ML_ACTIVE || m->state == ML_DRAINING;
	/* Up since the attempt began, CONNACK and all. */
	bool stable = lost && loop_now_ms() - m->up_since_ms >= MLINK_STABLE_MS;

	if (m->state == ML_DOWN)
		return;
	if (how == ML_END_GATE || (how == ML_END_LOCAL && m->dropping))
		m->fails[ML_FAIL_DROPPED]++;
	else if (how == ML_END_LOCAL)
		m->fails[ML_FAIL_ERROR]++;
	else if (how == ML_END_BROKER)
		m->fails[lost ? ML_FAIL_LOST : m->refused ? ML_FAIL_REFUSED : ML_FAIL_CONNECT]++;
	m->refused = m->dropping = false;
	if (how != ML_END_CLEAN && stable)
		backoff_reset(&m->backoff);
	m->broken = false;
	m->read_budget = 0;
	/* Unanswered requests: the next connection subscribes and unsubscribes anew. */
	msubs_reqs_clear(&m->subs);
	resolve_abandon(&m->resolve);
	homing_stop(&m->homing);
	loop_timer_disarm(m->loop, &m->resolve_timer);
	if (m->fd >= 0)
		loop_fd_del(m->loop, m->fd);
	m->fd = -1;
	/* Closed cleanly: the duplicate kept at DISCONNECT lingers (see linger.h). */
	if (m->disconnect_fd >= 0) {
		if (how != ML_END_CLEAN)
			close(m->disconnect_fd);
		else
			closer_begin(&m->linger, m->disconnect_fd);
		m->disconnect_fd = -1;
	}
	loop_timer_disarm(m->loop, &m->misc_timer);
	loop_timer_disarm(m->loop, &m->connect_timer);
	mlink_set_state(m, ML_DOWN);
	if (m->h.down)
		m->h.down(m->arg);
	mlink_schedule(m, how, lost, stable);
}



/* Connected before to the address in use with this client id (the first 64 addresses). */
static bool mlink_had_session(const struct mlink *m)
{
	return m->fo.cur < 64 && (m->had_session & (UINT64_C(1) << m->fo.cur));
}

static void on_connect(struct mosquitto *mosq, void *arg, int rc, int flags,
                       const mosquitto_property *props)
{
	struct mlink *m = arg;
	bool session_present = flags & 1;
	char where[FAILOVER_WHERE_MAX];

	(void)mosq;
	if (rc != 0) {
		m->refused = true;
		/* libmosquitto closes the connection after this; on_disconnect follows. */
		mlink_event(m, LOG_LVL_ERROR, "connect_failed", "mqtt: %s refused the connection%s%s%s: %s",
		            mlink_node(m)->name, m->cfg->username ? " for user '" : "",
		            m->cfg->username ? m->cfg->username : "", m->cfg->username ? "'" : "",
		            m->cfg->protocol == MQTT_PROTOCOL_5 ? mosquitto_reason_string(rc)
		                                                 : mosquitto_connack_string(rc));
		return;
	}
	loop_timer_disarm(m->loop, &m->connect_timer);
	mclient_tls_connected(m->mosq);
	m->connects++;
	m->max_packet = 0;
	if (props)
		mosquitto_property_read_int32(props, MQTT_PROP_MAXIMUM_PACKET_SIZE, &m->max_packet, false);
	mlink_event(m, LOG_LVL_INFO, "connected", "mqtt: connected to %s as '%s' (session %s%s)",
	            mlink_node(m)->name, m->cfg->client_id, session_present ? "resumed" : "new",
	            failover_where(&m->fo, where, sizeof(where), "; ", ""));
	if (mlink_had_session(m) && !session_present)
		log_warn("mqtt: %s kept no session for client id '%s'; messages published "
		         "while the bridge was disconnected were not queued for it (check the "
		         "broker's persistence and session expiry)", mlink_node(m)->name,
		         m->cfg->client_id);
	if (m->fo.cur < 64)
		m->had_session |= UINT64_C(1) << m->fo.cur;
	failover_connected(&m->fo);
	msubs_reqs_clear(&m->subs);
	if (mlink_subscribe(m, MSUBS_INITIAL, msubs_strv_dup(m->subs.subs, m->subs.n_subs),
	                    m->subs.n_subs) != 0) {
		mlink_break(m);
		return;
	}
	if (m->subs.n_unsubs > 0) {
		for (size_t i = 0; i < m->subs.n_unsubs; i++)
			log_info("mqtt: unsubscribing from '%s' (no longer configured)", m->subs.unsubs[i]);
		if (mlink_request(m, MSUBS_UNSUB, msubs_strv_dup(m->subs.unsubs, m->subs.n_unsubs),
		                  m->subs.n_unsubs, 0) != 0) {
			mlink_break(m);
			return;
		}
	}
	mlink_set_state(m, ML_SUBSCRIBING);
}

static void on_subscribe(struct mosquitto *mosq, void *arg, int mid, int qos_count,
                         const int *granted)
{
	struct mlink *m = arg;
	struct msubs_req r;
	int ok = 0;

	(void)mosq;
	if (!msubs_req_take(&m->subs, mid, &r))
		return;
	ok = mclient_log_granted(r.filters, r.n, r.kind == MSUBS_SUB, qos_count, granted);
	msubs_strv_free(r.filters, r.n);
	if (r.kind != MSUBS_INITIAL || m->state != ML_SUBSCRIBING)
		return;
	mlink_set_state(m, ML_ACTIVE);
	log_info("mqtt: subscribed to %d of %zu filter(s)", ok, r.n);
	if (failover_on_standby(&m->fo))
		homing_start(&m->homing, &m->cfg->hosts[0],
		             failover_retry_ms(&m->fo, m->cfg->primary_retry),
		             (unsigned)m->cfg->connect_timeout * 1000u);
	if (m->h.up)
		m->h.up(m->arg);
}

static void on_unsubscribe(struct mosquitto *mosq, void *arg, int mid)
{
	struct mlink *m = arg;
	struct msubs_req r;

	(void)mosq;
	if (!msubs_req_take(&m->subs, mid, &r))
		return;
	for (size_t i = 0; i < r.n; i++)
		log_info("mqtt: unsubscribed from '%s'", r.filters[i]);
	/* The session holds them no more (unless configured again meanwhile). */
	msubs_unsubscribed(&m->subs, r.filters, r.n);
	msubs_strv_free(r.filters, r.n);
}

static bool mlink_reading(const struct mlink *m)
{
	return m->state == ML_CONNECTING || m->state == ML_SUBSCRIBING || m->state == ML_ACTIVE;
}

/* More messages may be read: the session is up and the bridge allows more. */
static bool mlink_may_read(const struct mlink *m)
{
	return mlink_reading(m) && m->read_budget > 0 && !m->broken;
}

static void on_message(struct mosquitto *mosq, void *arg, const struct mosquitto_message *msg,
                       const mosquitto_property *props)
{
	struct mlink *m = arg;

	(void)mosq;
	if (m->read_budget > 0)
		m->read_budget--;
	m->h.message(m->arg, msg, props, mclient_dup(msg));
	/*
	 * The packet was handled: what errno holds now is not the socket's
	 * (mlink_read()).  With TLS, mosquitto_loop_read() goes on through
	 * every packet OpenSSL holds decrypted unless errno says EAGAIN: so it
	 * says so once the bridge may take no more (the cap, or one message at
	 * a time while a failure is probed), and the rest waits in OpenSSL
	 * for mlink_prepare().
	 */
	errno = mlink_may_read(m) ? 0 : EAGAIN;
}

static void on_publish(struct mosquitto *mosq, void *arg, int mid, int reason,
                       const mosquitto_property *props)
{
	struct mlink *m = arg;

	(void)mosq;
	(void)props;
	if (m->state != ML_DOWN && m->h.published)
		m->h.published(m->arg, mid, reason);
}

int mlink_publish(struct mlink *m, const char *topic, const void *payload, size_t len, int qos,
                  bool retain, const mosquitto_property *props, int *mid)
{
	int rc;

	if (m->state != ML_ACTIVE || m->broken)
		return MOSQ_ERR_NO_CONN;
	if (len > INT_MAX)
		return MOSQ_ERR_PAYLOAD_SIZE;
	m->renew = true;
	m->queued_publishes++;
	rc = mosquitto_publish_v5(m->mosq, mid, topic, (int)len, payload, qos, retain,
	                          m->cfg->protocol == MQTT_PROTOCOL_5 ? props : NULL);
	return rc;
}

static void on_disconnect(struct mosquitto *mosq, void *arg, int rc)
{
	struct mlink *m = arg;

	(void)mosq;
	if (m->state == ML_DOWN)
		return;
	mclient_log_disconnect(m->mosq, m->cfg, mlink_node(m)->name, rc, m->state == ML_CONNECTING);
	mlink_went_down(m, rc != 0 ? ML_END_BROKER : ML_END_CLEAN);
}

/*
 * Reads packets while bytes are waiting and the forwarder may take more.
 * mosquitto_loop_read() handles one packet per call (with TLS, every
 * packet OpenSSL holds decrypted, at most a record's worth, while the
 * bridge may take them) and returns success both after a packet and when
 * the socket ran dry; it leaves errno at EAGAIN in the second case, or
 * when the forwarder may take no more (see on_message(), which clears
 * what the callbacks left otherwise).  The socket running dry ends
 * the pass, at the cost of one read that finds nothing; OpenSSL's
 * decrypted bytes, which poll() cannot see, do not.
 */
static void mlink_read(struct mlink *m)
{
	bool dry;

	do {
		int rc;

		errno = 0;
		rc = mosquitto_loop_read(m->mosq, 1);
		if (rc != MOSQ_ERR_SUCCESS || m->state == ML_DOWN)
			return;
		dry = errno == EAGAIN || errno == EWOULDBLOCK;
	} while (mlink_may_read(m) && (!dry || mlink_ssl_pending(m)));
}

/* A connection attempt that ended before CONNECT could be sent. */
static void mlink_attempt_failed(struct mlink *m, const char *what, const char *why)
{
	mlink_event(m, LOG_LVL_ERROR, "connect_failed", "mqtt: %s %s failed: %s", what,
	            mlink_node(m)->name, why);
	if (m->fd >= 0)
		shutdown(m->fd, SHUT_RDWR);
	mlink_went_down(m, ML_END_BROKER);
}

/*
 * Advances the TLS handshake.  libmosquitto runs SSL_connect() from
 * mosquitto_loop_read() while the handshake is incomplete (and
 * mosquitto_loop_write() writes nothing until then), so the handshake needs
 * no gate: no PUBACK can be queued before CONNACK.
 */
static void mlink_handshake(struct mlink *m, short revents)
{
	const char *what = NULL;
	char why[320];

	if (mclient_handshake(m->mosq, m->fd, revents, &what, why, sizeof(why)) == 0) {
		if (m->state != ML_DOWN && !mlink_handshaking(m))
			log_debug("mqtt: TLS handshake with %s done (%s)", mlink_node(m)->name,
			          SSL_get_version(mosquitto_ssl_get(m->mosq)));
		return;
	}
	if (m->state != ML_DOWN)
		mlink_attempt_failed(m, what, why);
}

static void mlink_on_fd(void *arg, int fd, short revents)
{
	struct mlink *m = arg;

	(void)fd;
	if (m->state == ML_DOWN)
		return;
	if (mlink_handshaking(m)) {
		mlink_handshake(m, revents);
		return;
	}
	if ((revents & (POLLERR | POLLHUP)) && !(revents & POLLIN)) {
		mlink_lose(m, "socket error", ML_END_BROKER);
		return;
	}
	if (revents & POLLIN) {
		if (mlink_may_read(m))
			mlink_read(m);
		else if (revents & (POLLERR | POLLHUP))
			mlink_lose(m, "connection closed while draining", ML_END_BROKER);
	}
	/* POLLOUT: mlink_prepare() flushes when the gate is open. */
}

static void mlink_on_misc(void *arg)
{
	struct mlink *m = arg;

	if (m->state == ML_DOWN)
		return;
	/* Keepalive: queues PINGREQ, or closes a connection whose broker went silent. */
	mosquitto_loop_misc(m->mosq);
	if (m->state != ML_DOWN)
		loop_timer_arm(m->loop, &m->misc_timer, MLINK_MISC_MS);
}

/* Connects to `addr` (the broker's address, or its name for TLS; see mlink_on_resolved()). */
static void mlink_connect(struct mlink *m, const char *addr)
{
	char why[320];
	int rc;

	mclient_tls_attempt(m->mosq, m->cfg->tls);
	rc = mosquitto_connect_async(m->mosq, addr, mlink_node(m)->port, m->cfg->keepalive);
	if (rc != MOSQ_ERR_SUCCESS) {
		mlink_event(m, LOG_LVL_WARNING, "connect_failed", "mqtt: cannot connect to %s: %s",
		            mlink_node(m)->name,
		            rc == MOSQ_ERR_ERRNO ? strerror(errno)
		            : rc == MOSQ_ERR_TLS ? mclient_tls_reason(m->mosq, m->cfg->tls, why, sizeof(why))
		            : mosquitto_strerror(rc));
		mlink_went_down(m, ML_END_BROKER);
		return;
	}
	m->fd = mosquitto_socket(m->mosq);
	if (m->fd < 0 || loop_fd_add(m->loop, m->fd, POLLIN | POLLOUT, mlink_on_fd, m) != 0) {
		log_error("mqtt: no usable socket after connect");
		m->fd = -1;
		mlink_went_down(m, ML_END_LOCAL);
		return;
	}
	m->broken = false;
	mlink_set_state(m, ML_CONNECTING);
	m->h.connecting(m->arg);
	loop_timer_arm(m->loop, &m->misc_timer, MLINK_MISC_MS);
}

/*
 * The lookup answered.  libmosquitto would look the name up again, holding
 * the loop, so it gets the address, one of the broker's per attempt in
 * turn; with TLS it needs the name, which it verifies the certificate
 * against, and looks it up itself (answered at once where the lookup just
 * made is cached, as by nscd or systemd-resolved).
 */
static void mlink_on_resolved(struct mlink *m, const struct addrinfo *list)
{
	char addr[NI_MAXHOST];

	mclient_address(list, m->attempts++, m->cfg->tls, mlink_node(m)->host, addr, sizeof(addr));
	resolve_abandon(&m->resolve);
	mlink_connect(m, addr);
}

static void mlink_on_resolve_poll(void *arg)
{
	struct mlink *m = arg;
	struct addrinfo *list;
	char err[256];
	int rc;

	if (m->state != ML_RESOLVING)
		return;
	rc = resolve_poll(&m->resolve, &list, err, sizeof(err));
	if (rc == 0) {
		loop_timer_arm(m->loop, &m->resolve_timer, MLINK_RESOLVE_POLL_MS);
	} else if (rc < 0) {
		mlink_attempt_failed(m, "connecting to", err);
	} else if (!m->wanted || !m->connect_ok) {
		/* Not allowed any more (AMQP went down meanwhile): the next attempt looks it up anew. */
		mlink_went_down(m, ML_END_CLEAN);
	} else {
		mlink_on_resolved(m, list);
	}
}

/* An attempt: the broker's name is looked up first, without blocking (resolve.h). */
static void mlink_attempt(struct mlink *m)
{
	char err[256];

	if (resolve_start(&m->resolve, mlink_node(m)->host, mlink_node(m)->port, err,
	                  sizeof(err)) != 0) {
		mlink_event(m, LOG_LVL_ERROR, "connect_failed", "mqtt: connecting to %s failed: %s",
		            mlink_node(m)->name, err);
		m->fails[ML_FAIL_CONNECT]++;
		mlink_schedule(m, ML_END_BROKER, false, false);
		return;
	}
	m->up_since_ms = loop_now_ms();
	mlink_set_state(m, ML_RESOLVING);
	/* mqtt.connect_timeout: the lookup, TCP, TLS and CONNACK together. */
	loop_timer_arm(m->loop, &m->connect_timer, (uint64_t)m->cfg->connect_timeout * 1000u);
	mlink_on_resolve_poll(m);
}

/* No CONNACK within mqtt.connect_timeout (TCP connect and TLS handshake included). */
static void mlink_on_connect_timeout(void *arg)
{
	struct mlink *m = arg;
	char why[128];

	if (m->state == ML_RESOLVING) {
		snprintf(why, sizeof(why), "no address for the name within %d s (mqtt.connect_timeout)",
		         m->cfg->connect_timeout);
		mlink_attempt_failed(m, "connecting to", why);
		return;
	}
	if (m->state != ML_CONNECTING)
		return;
	snprintf(why, sizeof(why), "no CONNACK within %d s (mqtt.connect_timeout)",
	         m->cfg->connect_timeout);
	mlink_attempt_failed(m, mlink_handshaking(m) ? "TLS handshake with" : "connecting to", why);
}

static int mlink_client_new(struct mlink *m);

static void mlink_on_retry(void *arg)
{
	struct mlink *m = arg;

	if (!m->wanted || m->state != ML_DOWN)
		return;
	/* A new connection would take the session over before the old one closed. */
	if (closer_active(&m->linger) || !m->connect_ok) {
		loop_timer_arm(m->loop, &m->retry_timer, MLINK_GATE_POLL_MS);
		m->gate_wait = !m->connect_ok;
		return;
	}
	/* Outside libmosquitto's callbacks: the old client may go. */
	if (m->renew) {
		mosquitto_destroy(m->mosq);
		if (mlink_client_new(m) != 0) {
			m->mosq = NULL;
			m->renew = true;
			mlink_schedule(m, ML_END_LOCAL, false, false);
			return;
		}
	}
	mlink_attempt(m);
}

/* Creates the libmosquitto client for m->cfg.  Returns 0, or -1 after logging why. */
static int mlink_client_new(struct mlink *m)
{
	m->mosq = mclient_new(m->cfg, m);
	if (!m->mosq)
		return -1;
	mosquitto_connect_v5_callback_set(m->mosq, on_connect);
	mosquitto_subscribe_callback_set(m->mosq, on_subscribe);
	mosquitto_unsubscribe_callback_set(m->mosq, on_unsubscribe);
	mosquitto_message_v5_callback_set(m->mosq, on_message);
	mosquitto_disconnect_callback_set(m->mosq, on_disconnect);
	mosquitto_publish_v5_callback_set(m->mosq, on_publish);
	m->renew = false;
	return 0;
}

/* Subscribed on another address than the first: homing.h checks the first meanwhile. */
static bool mlink_away(void *arg)
{
	struct mlink *m = arg;

	return m->state == ML_ACTIVE && failover_on_standby(&m->fo);
}

static void mlink_on_home(void *arg)
{
	struct mlink *m = arg;

	if (m->h.primary_back)
		m->h.primary_back(m->arg);
}

int mlink_init(struct mlink *m, const struct mqtt_settings *cfg, const struct bridge_settings *bs,
               struct loop *loop, const struct mlink_handlers *h, void *arg)
{
	memset(m, 0, sizeof(*m));
	m->cfg = cfg;
	m->loop = loop;
	m->h = *h;
	m->arg = arg;
	m->fd = -1;
	m->disconnect_fd = -1;
	backoff_init(&m->backoff, (uint32_t)bs->reconnect_min_ms, (uint32_t)bs->reconnect_max_ms,
	             (uint64_t)getpid() * 40503u ^ loop_now_ms());
	closer_init(&m->linger, loop, MLINK_LINGER_MS, "mqtt");
	failover_init(&m->fo, cfg->n_hosts, (enum failover_order)cfg->hosts_order);
	homing_init(&m->homing, loop, "mqtt", mlink_away, mlink_on_home, m);
	loop_timer_init(&m->retry_timer, mlink_on_retry, m);
	loop_timer_init(&m->misc_timer, mlink_on_misc, m);
	loop_timer_init(&m->connect_timer, mlink_on_connect_timeout, m);
	loop_timer_init(&m->resolve_timer, mlink_on_resolve_poll, m);
	resolve_init(&m->resolve);
	if (msubs_init(&m->subs, cfg->subscribe, cfg->n_subscribe) != 0) {
		log_error("mqtt: out of memory");
		return -1;
	}
	mclient_dup_known();
	return mlink_client_new(m);
}

int mlink_set_subscriptions(struct mlink *m, char *const *filters, size_t n)
{
	bool live = m->state == ML_SUBSCRIBING || m->state == ML_ACTIVE;
	char **added, **removed;
	size_t n_added, n_removed;

	if (msubs_set(&m->subs, filters, n, &added, &n_added, &removed, &n_removed) != 0) {
		log_error("mqtt: out of memory while changing the subscriptions");
		return -1;
	}
	for (size_t i = 0; i < n_added; i++)
		log_info("mqtt: subscribing to '%s'%s", added[i], live ? "" : " on the next connection");
	for (size_t i = 0; i < n_removed; i++)
		log_info("mqtt: unsubscribing from '%s'%s", removed[i],
		         live ? "" : " on the next connection");
	/* Subscribe first: a filter replaced by an overlapping one never leaves a gap. */
	if (live && n_added > 0 && mlink_subscribe(m, MSUBS_SUB, added, n_added) != 0)
		mlink_break(m);
	else if (!live || n_added == 0)
		msubs_strv_free(added, n_added);
	if (live && n_removed > 0 && mlink_request(m, MSUBS_UNSUB, removed, n_removed, 0) != 0)
		mlink_break(m);
	else if (!live || n_removed == 0)
		msubs_strv_free(removed, n_removed);
	return 0;
}

/* The same brokers in the same order, tried the same way. */
static bool same_brokers(const struct mqtt_settings *x, const struct mqtt_settings *y)
{
	return x->hosts_order == y->hosts_order
	       && endpoint_lists_same(x->hosts, x->n_hosts, y->hosts, y->n_hosts);
}

void mlink_to_primary(struct mlink *m)
{
	failover_to_primary(&m->fo);
}

int mlink_reconfigure(struct mlink *m, const struct mqtt_settings *cfg,
                      const struct bridge_settings *bs)
{
	bool same_session = strcmp(cfg->client_id, m->cfg->client_id) == 0 &&
	                    same_brokers(cfg, m->cfg);

	if (m->state != ML_DOWN)
		return -1;
	if (m->mosq)
		mosquitto_destroy(m->mosq);
	m->mosq = NULL;
	if (!same_session) {
		/* Another session: the old one's subscriptions are not ours to remove. */
		msubs_forget_unsubs(&m->subs);
		m->had_session = 0;
		failover_init(&m->fo, cfg->n_hosts, (enum failover_order)cfg->hosts_order);
	}
	m->cfg = cfg;
	backoff_init(&m->backoff, (uint32_t)bs->reconnect_min_ms, (uint32_t)bs->reconnect_max_ms,
	             (uint64_t)getpid() * 40503u ^ loop_now_ms());
	if (mlink_set_subscriptions(m, cfg->subscribe, cfg->n_subscribe) != 0)
		return -1;
	return mlink_client_new(m);
}

void mlink_fini(struct mlink *m)
{
	resolve_fini(&m->resolve);
	loop_timer_disarm(m->loop, &m->resolve_timer);
	closer_end(&m->linger);
	if (m->disconnect_fd >= 0)
		close(m->disconnect_fd);
	m->disconnect_fd = -1;
	loop_timer_disarm(m->loop, &m->retry_timer);
	loop_timer_disarm(m->loop, &m->misc_timer);
	loop_timer_disarm(m->loop, &m->connect_timer);
	homing_fini(&m->homing);
	if (m->fd >= 0)
		loop_fd_del(m->loop, m->fd);
	m->fd = -1;
	if (m->mosq)
		mosquitto_destroy(m->mosq);
	m->mosq = NULL;
	msubs_fini(&m->subs);
}

void mlink_start(struct mlink *m)
{
	m->wanted = true;
	if (m->state == ML_DOWN && !m->retry_timer.armed) {
		m->gate_wait = false;
		loop_timer_arm(m->loop, &m->retry_timer, 0);
	}
}

void mlink_stop(struct mlink *m)
{
	m->wanted = false;
	loop_timer_disarm(m->loop, &m->retry_timer);
	/* Nothing was sent yet: a lookup in progress just ends. */
	if (m->state == ML_RESOLVING)
		mlink_went_down(m, ML_END_CLEAN);
}

void mlink_drain(struct mlink *m)
{
	if (m->state == ML_DOWN || m->state == ML_DRAINING)
		return;
	if (m->state == ML_RESOLVING) {
		mlink_went_down(m, ML_END_CLEAN);
		return;
	}
	/*
	 * Before CONNACK nothing was read and no PUBACK is queued: nothing can
	 * be lost, and a broker that never answered would only be waited for.
	 */
	if (m->state == ML_CONNECTING) {
		log_info("mqtt: abandoning the connection attempt to %s", mlink_node(m)->name);
		if (m->fd >= 0)
			shutdown(m->fd, SHUT_RDWR);
		mlink_went_down(m, ML_END_CLEAN);
		return;
	}
	log_info("mqtt: draining: no new messages are read; disconnecting once the %s are "
	         "confirmed", "messages in flight");
	mlink_set_state(m, ML_DRAINING);
	m->disconnect_sent = false;
}

void mlink_allow(struct mlink *m, uint64_t read, bool flush, bool connect)
{
	m->read_budget = read;
	m->flush_ok = flush;
	m->connect_ok = connect;
	/* Waiting only for the gate (the AMQP channel), not for a backoff delay: go now. */
	if (connect && m->gate_wait && m->retry_timer.armed) {
		m->gate_wait = false;
		loop_timer_arm(m->loop, &m->retry_timer, 0);
	}
}

/* Closes the connection now, writing nothing queued; `how` says whose failure it was. */
static void mlink_lose(struct mlink *m, const char *why, enum ml_end how)
{
	if (m->state == ML_DOWN)
		return;
	log_warn("mqtt: dropping the connection without acknowledging what it read since the "
	         "last flush: %s", why);
	/*
	 * Nothing may be written after this point: shutting the socket down makes
	 * the queued PUBACKs unsendable, and the broker sees the connection end.
	 */
	if (m->fd >= 0)
		shutdown(m->fd, SHUT_RDWR);
	mlink_went_down(m, how);
}

void mlink_drop(struct mlink *m, const char *why)
{
	/* Paced by the gate only while it holds connections back; otherwise by the backoff. */
	m->dropping = true;
	mlink_lose(m, why, m->connect_ok ? ML_END_LOCAL : ML_END_GATE);
	m->dropping = false;
}

void mlink_prepare(struct mlink *m)
{
	short events = 0;
	bool flush_ok;

	if (m->state == ML_DOWN || m->state == ML_RESOLVING)
		return;
	if (mlink_handshaking(m)) {
		loop_fd_events(m->loop, m->fd,
		               POLLIN | (SSL_want_write(mosquitto_ssl_get(m->mosq)) ? POLLOUT : 0));
		return;
	}
	if (m->broken) {
		mlink_lose(m, "a subscription request could not be queued", ML_END_LOCAL);
		return;
	}
	flush_ok = m->flush_ok;
	if (flush_ok && m->state == ML_DRAINING && !m->disconnect_sent) {
		/* libmosquitto closes its socket once DISCONNECT is written; keep it open. */
		m->disconnect_fd = dup(m->fd);
		/* Queued behind the PUBACKs, so it leaves after all of them. */
		mosquitto_disconnect(m->mosq);
		m->disconnect_sent = true;
	}
	if (flush_ok) {
		/* Everything read so far is confirmed (QoS 0 messages queue no PUBACK). */
		uint64_t n = m->h.flushed(m->arg);
		/* Not behind DISCONNECT: the socket closes under libmosquitto then. */
		bool cork = (n > 1 || m->queued_publishes > 1) && m->state != ML_DRAINING;

		if (n > 0)
			backoff_reset(&m->backoff);
		if (mosquitto_want_write(m->mosq)) {
			/* libmosquitto writes each PUBACK alone: held back, they leave together. */
			if (cork)
				mclient_cork(m->fd, true);
			mosquitto_loop_write(m->mosq, 1);
			if (m->state == ML_DOWN)
				return;
			if (cork)
				mclient_cork(m->fd, false);
		}
		m->queued_publishes = 0;
	}
	if (mlink_may_read(m) && mlink_ssl_pending(m)) {
		mlink_read(m);
		if (m->state == ML_DOWN)
			return;
		flush_ok = m->flush_ok;
	}
	if (mlink_may_read(m))
		events |= POLLIN;
	if (flush_ok && mosquitto_want_write(m->mosq))
		events |= POLLOUT;
	loop_fd_events(m->loop, m->fd, events);
}
