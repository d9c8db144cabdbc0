#include "mclient.h"

#include <errno.h>
#include <fcntl.h>
#include <netdb.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <poll.h>
#include <stddef.h>
#include <stdio.h>
#include <string.h>
#include <time.h>
#include <sys/ioctl.h>
#include <sys/socket.h>
#include <unistd.h>

#include <mqtt_protocol.h>
#include <openssl/ssl.h>
#include <openssl/x509.h>

#include "log.h"

/*
 * The first error libmosquitto logged during the current connection
 * attempt: its TLS failures are only logged, never returned.  File scope
 * because the log callback has no other place, and a process has one link.
 */
static char tls_why[256];

void mclient_on_log(struct mosquitto *mosq, void *arg, int level, const char *str)
{
	const char *p;

	(void)mosq;
	(void)arg;
	if (level != MOSQ_LOG_ERR || tls_why[0] != '\0')
		return;
	if (strstr(str, "host name verification failed") != NULL)
		snprintf(tls_why, sizeof(tls_why), "the certificate does not match the host name");
	else if (strncmp(str, "OpenSSL Error", 13) == 0 && (p = strrchr(str, ':')) != NULL)
		snprintf(tls_why, sizeof(tls_why), "%s", p + 1);
	else if (strncmp(str, "Error: ", 7) == 0)
		snprintf(tls_why, sizeof(tls_why), "%s", str + 7);
	else
		snprintf(tls_why, sizeof(tls_why), "%s", str);
}

void mclient_tls_attempt(struct mosquitto *mosq, bool tls)
{
	tls_why[0] = '\0';
	mosquitto_log_callback_set(mosq, tls ? mclient_on_log : NULL);
}

void mclient_tls_connected(struct mosquitto *mosq)
{
	mosquitto_log_callback_set(mosq, NULL);
}

bool mclient_tls_logged(void)
{
	return tls_why[0] != '\0';
}

const char *mclient_tls_reason(struct mosquitto *mosq, bool tls, char *buf, size_t size)
{
	SSL *ssl = tls ? mosquitto_ssl_get(mosq) : NULL;
	long verify = ssl != NULL ? SSL_get_verify_result(ssl) : X509_V_OK;

	if (tls_why[0] != '\0' && strstr(tls_why, "host name") != NULL)
		snprintf(buf, size, "%s", tls_why);
	else if (verify != X509_V_OK)
		snprintf(buf, size, "certificate verify failed: %s", X509_verify_cert_error_string(verify));
	else if (tls_why[0] != '\0')
		snprintf(buf, size, "%s", tls_why);
	else
		snprintf(buf, size, "TLS error");
	return buf;
}

/*
 * libmosquitto hands on_message the `msg` member of its own message record,
 * which also holds the PUBLISH's DUP flag and nothing public reads it.  The
 * record's layout is the same from 1.6 to 2.0.20 (lib/mosquitto_internal.h,
 * struct mosquitto_message_all) and differs in 2.1, which shares the
 * library's soname: the library in use, not only the headers built
 * against, must be 1.6 or 2.0 (checked once, mclient_dup_known); otherwise
 * the flag is reported as unset.  t15 checks it on a real redelivery.
 */
struct mclient_message_all {
	void *next;
	void *prev;
	mosquitto_property *properties;
	time_t timestamp;
	int state;
	bool dup;
	struct mosquitto_message msg;
};

#if (LIBMOSQUITTO_MAJOR == 2 && LIBMOSQUITTO_MINOR == 0) || \
    (LIBMOSQUITTO_MAJOR == 1 && LIBMOSQUITTO_MINOR == 6)
#define MCLIENT_DUP_MIRROR 1
#endif

bool mclient_dup_known(void)
{
#ifdef MCLIENT_DUP_MIRROR
	static int known = -1;
	int major = 0, minor = 0, revision = 0;

	if (known < 0) {
		mosquitto_lib_version(&major, &minor, &revision);
		known = (major == 2 && minor == 0) || (major == 1 && minor == 6);
		if (!known)
			log_warn("mqtt: libmosquitto %d.%d.%d: the DUP flag of received messages is not "
			         "known (header x-mqtt-dup is always false)", major, minor, revision);
	}
	return known == 1;
#else
	return false;
#endif
}

bool mclient_dup(const struct mosquitto_message *msg)
{
#ifdef MCLIENT_DUP_MIRROR
	const struct mclient_message_all *all;

	if (!mclient_dup_known())
		return false;
	all = (const void *)((const char *)msg - offsetof(struct mclient_message_all, msg));
	return all->dup;
#else
	(void)msg;
	return false;
#endif
}

/*
 * Why libmosquitto closed the connection, in the operator's terms (2.0.11
 * has no text for some codes, and "Unknown error" helps nobody).
 */
const char *mclient_reason(int rc, int keepalive, char *buf, size_t size)
{
	switch (rc) {
	case MOSQ_ERR_KEEPALIVE:
		snprintf(buf, size, "keepalive timeout: the broker answered nothing within %d s "
		         "(mqtt.keepalive)", keepalive);
		break;
	case MOSQ_ERR_CONN_LOST:
		snprintf(buf, size, "the broker closed the connection");
		break;
	case MOSQ_ERR_PROTOCOL:
	case MOSQ_ERR_MALFORMED_PACKET:
		snprintf(buf, size, "protocol error: %s", mosquitto_strerror(rc));
		break;
	case MOSQ_ERR_ERRNO:
		snprintf(buf, size, "%s", errno != 0 ? strerror(errno) : "system error");
		break;
	default:
		snprintf(buf, size, "%s (libmosquitto error %d)", mosquitto_strerror(rc), rc);
		break;
	}
	return buf;
}

/*
 * MQTT 5 only: libmosquitto sends CONNECT properties only when they were
 * given to mosquitto_connect_bind_v5(), which connects blocking.  It stores
 * them before validating its other arguments, so a call with an invalid
 * keepalive stores the properties without connecting, and every later
 * mosquitto_connect_async() / reconnect sends them.
 */
static int mclient_connect_props(struct mosquitto *mosq, const struct mqtt_settings *c)
{
	mosquitto_property *props = NULL;
	int rc;

	rc = mosquitto_property_add_int32(&props, MQTT_PROP_SESSION_EXPIRY_INTERVAL,
	                                  (uint32_t)c->session_expiry);
	if (rc != MOSQ_ERR_SUCCESS)
		return -1;
	rc = mosquitto_connect_bind_v5(mosq, c->host, c->port, 1, NULL, props);
	mosquitto_property_free_all(&props);
	return rc == MOSQ_ERR_INVAL ? 0 : -1;
}

/* TLS as configured; the files were checked when the configuration was loaded. */
static int mclient_tls(struct mosquitto *mosq, const struct mqtt_settings *c)
{
	int rc;

	rc = mosquitto_tls_set(mosq, c->tls_ca_file, c->tls_ca_dir, c->tls_cert_file,
	                       c->tls_key_file, NULL);
	if (rc == MOSQ_ERR_SUCCESS)
		rc = mosquitto_tls_opts_set(mosq, c->tls_insecure ? SSL_VERIFY_NONE : SSL_VERIFY_PEER,
		                            c->tls_version, NULL);
	if (rc == MOSQ_ERR_SUCCESS)
		rc = mosquitto_tls_insecure_set(mosq, c->tls_insecure);
	if (rc != MOSQ_ERR_SUCCESS) {
		log_error("mqtt: cannot set up TLS: %s",
		          rc == MOSQ_ERR_ERRNO ? strerror(errno) : mosquitto_strerror(rc));
		return -1;
	}
	return 0;
}

/*
 * libmosquitto writes a byte to an internal socket pair for every packet
 * it queues, to wake a thread of its own (mosquitto_loop_start()) that the
 * bridge never runs.  Nothing reads the pair, so once it is full every
 * PUBACK costs a write that fails.  Its two descriptors follow the
 * connection's at the start of struct mosquitto (lib/mosquitto_internal.h,
 * the same from 1.6 to 2.0.20).  Where they are found, and are a connected
 * pair of non-blocking Unix stream sockets, they are closed and marked
 * unused, and libmosquitto skips the write from then on (packet__queue()).
 * With any other layout nothing changes.  Returns whether the pair was
 * closed.
 */
static bool mclient_close_wakeup_pair(struct mosquitto *mosq)
{
#ifdef MCLIENT_DUP_MIRROR
	int *fds = (int *)(void *)mosq;
	const char probe = 0;
	int n = -1;

	if (!mclient_dup_known() || fds[0] != -1 || mosquitto_socket(mosq) != -1)
		return false;
	for (int i = 1; i <= 2; i++) {
		int v = 0;
		socklen_t len = sizeof(v);

		if (fds[i] < 0 || getsockopt(fds[i], SOL_SOCKET, SO_DOMAIN, &v, &len) != 0 ||
		    v != AF_UNIX)
			return false;
		len = sizeof(v);
		if (getsockopt(fds[i], SOL_SOCKET, SO_TYPE, &v, &len) != 0 || v != SOCK_STREAM)
			return false;
		/* libmosquitto makes both ends non-blocking (net__socketpair()). */
		v = fcntl(fds[i], F_GETFL);
		if (v < 0 || !(v & O_NONBLOCK))
			return false;
	}
	/* A byte written to the second must wait in the first. */
	if (fds[1] == fds[2] || ioctl(fds[1], FIONREAD, &n) != 0 || n != 0 ||
	    write(fds[2], &probe, 1) != 1 || ioctl(fds[1], FIONREAD, &n) != 0 || n != 1)
		return false;
	close(fds[1]);
	close(fds[2]);
	fds[1] = fds[2] = -1;
	return true;
#else
	(void)mosq;
	return false;
#endif
}

struct mosquitto *mclient_new(const struct mqtt_settings *cfg, void *userdata)
{
	struct mosquitto *mosq;

	/* clean_session false: the broker keeps the session and its unacknowledged messages. */
	mosq = mosquitto_new(cfg->client_id, false, userdata);
	if (!mosq) {
		log_error("mqtt: cannot create the client: %s", strerror(errno));
		return NULL;
	}
	/* Queued packets are written only by mosquitto_loop_write(): the gate. */
	mosquitto_threaded_set(mosq, true);
	if (!mclient_close_wakeup_pair(mosq))
		log_debug("mqtt: libmosquitto's wake-up socket pair stays open (unknown layout)");
	/* A PUBACK leaves at once; those of one flush leave together (mclient_cork()). */
	mosquitto_int_option(mosq, MOSQ_OPT_TCP_NODELAY, 1);
	/*
	 * The downlink's messages in flight are bounded by its queues'
	 * prefetch, not by libmosquitto's default of 20; an MQTT 5 broker's
	 * Receive Maximum, from CONNACK, still applies.
	 */
	mosquitto_int_option(mosq, MOSQ_OPT_SEND_MAXIMUM, 65535);
	if (cfg->protocol == MQTT_PROTOCOL_5) {
		mosquitto_int_option(mosq, MOSQ_OPT_PROTOCOL_VERSION, MQTT_PROTOCOL_V5);
		/* The broker then holds at most inflight_max unacknowledged messages for us. */
		mosquitto_int_option(mosq, MOSQ_OPT_RECEIVE_MAXIMUM, cfg->inflight_max);
		if (mclient_connect_props(mosq, cfg) != 0) {
			log_error("mqtt: cannot set the session expiry interval");
			goto fail;
		}
	}
	if (cfg->username &&
	    mosquitto_username_pw_set(mosq, cfg->username, cfg->password) != MOSQ_ERR_SUCCESS) {
		log_error("mqtt: cannot set the username");
		goto fail;
	}
	if (cfg->tls && mclient_tls(mosq, cfg) != 0)
		goto fail;
	return mosq;

fail:
	mosquitto_destroy(mosq);
	return NULL;
}

bool mclient_handshaking(struct mosquitto *mosq)
{
	SSL *ssl = mosquitto_ssl_get(mosq);

	return ssl != NULL && !SSL_is_init_finished(ssl);
}

bool mclient_ssl_pending(struct mosquitto *mosq)
{
	SSL *ssl = mosquitto_ssl_get(mosq);

	return ssl != NULL && SSL_pending(ssl) > 0;
}

int mclient_handshake(struct mosquitto *mosq, int fd, short revents, const char **what,
                      char *why, size_t size)
{
	int rc, err = 0;
	socklen_t len = sizeof(err);

	errno = 0;
	rc = mosquitto_loop_read(mosq, 1);
	*what = "TLS handshake with";
	if (rc != MOSQ_ERR_SUCCESS) {
		mclient_tls_reason(mosq, true, why, size);
		return -1;
	}
	if (!mclient_handshaking(mosq))
		return 0;
	/* OpenSSL reports a socket error or EOF as "try again": look for ourselves. */
	if (getsockopt(fd, SOL_SOCKET, SO_ERROR, &err, &len) == 0 && err != 0) {
		*what = "connecting to";
		snprintf(why, size, "%s", strerror(err));
		return -1;
	}
	if (revents & (POLLERR | POLLHUP)) {
		snprintf(why, size, "the connection was closed");
		return -1;
	}
	if (revents & POLLIN) {
		char c;
		ssize_t n = recv(fd, &c, 1, MSG_PEEK | MSG_DONTWAIT);

		if (n == 0) {
			snprintf(why, size, "the server closed the connection (is it a TLS port?)");
			return -1;
		}
		if (n < 0 && errno != EAGAIN && errno != EWOULDBLOCK && errno != EINTR) {
			snprintf(why, size, "%s", strerror(errno));
			return -1;
		}
	}
	return 0;
}

void mclient_log_disconnect(struct mosquitto *mosq, const struct mqtt_settings *c,
                            const char *node, int rc, bool before_connack)
{
	const struct log_field f[] = {
		LOG_STR("event", before_connack ? "connect_failed" : "lost"),
		LOG_STR("side", "mqtt"),
		LOG_STR("node", node),
	};
	char why[320];

	if (rc == 0) {
		log_info("mqtt: disconnected from %s", node);
	} else if (c->tls && mclient_tls_logged()) {
		/* TLS 1.3 refuses a client certificate only after the handshake. */
		log_kv(LOG_LVL_WARNING, f, LOG_NFIELDS(f), "mqtt: connection to %s lost: TLS: %s", node,
		       mclient_tls_reason(mosq, c->tls, why, sizeof(why)));
	} else if (c->tls && before_connack) {
		/*
		 * With TLS 1.3 a broker checks the client certificate after the
		 * handshake and may just close the connection, leaving no reason.
		 */
		log_kv(LOG_LVL_WARNING, f, LOG_NFIELDS(f), "mqtt: connection to %s closed before "
		       "CONNACK (%s): the broker may have refused the TLS client certificate "
		       "(tls_cert_file, tls_key_file)", node,
		       mclient_reason(rc, c->keepalive, why, sizeof(why)));
	} else {
		log_kv(LOG_LVL_WARNING, f, LOG_NFIELDS(f), "mqtt: connection to %s %s: %s", node,
		       before_connack ? "closed before CONNACK" : "lost",
		       mclient_reason(rc, c->keepalive, why, sizeof(why)));
	}
}

int mclient_log_granted(char *const *filters, size_t n, bool each, int qos_count,
                        const int *granted)
{
	int ok = 0;

	for (int i = 0; i < qos_count && i < (int)n; i++) {
		if (granted[i] >= 0x80) {
			log_error("mqtt: the broker refused the subscription to '%s' (reason %d)",
			          filters[i], granted[i]);
		} else if (granted[i] == 0) {
			log_warn("mqtt: the broker granted only QoS 0 for '%s': its messages are not "
			         "redelivered if the bridge fails", filters[i]);
			ok++;
		} else {
			ok++;
			if (each)
				log_info("mqtt: subscribed to '%s'", filters[i]);
		}
	}
	return ok;
}

const char *mclient_address(const struct addrinfo *list, uint64_t attempt, bool tls,
                            const char *host, char *buf, size_t size)
{
	const struct addrinfo *ai = list;
	size_t n = 0;

	for (const struct addrinfo *p = list; p; p = p->ai_next)
		n++;
	for (size_t i = 0; ai && n > 0 && i < (size_t)(attempt % n); i++)
		ai = ai->ai_next;
	if (tls || !ai ||
	    getnameinfo(ai->ai_addr, ai->ai_addrlen, buf, (socklen_t)size, NULL, 0, NI_NUMERICHOST) != 0)
		snprintf(buf, size, "%s", host);
	return buf;
}

void mclient_cork(int fd, bool on)
{
	int v = on;

	setsockopt(fd, IPPROTO_TCP, TCP_CORK, &v, sizeof(v));
}
