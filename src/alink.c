#include "alink.h"

#include <errno.h>
#include <poll.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/ioctl.h>
#include <sys/time.h>
#include <unistd.h>

#include <amqp_ssl_socket.h>
#include <amqp_tcp_socket.h>
#include <linux/sockios.h>
#include <openssl/err.h>
#include <openssl/ssl.h>
#include <openssl/x509.h>

#include "log.h"
#include "props.h"

#define ALINK_CHANNEL 1
/* A link that stayed up this long starts its next backoff from the minimum. */
#define ALINK_STABLE_MS 10000
#define ALINK_TICK_MS 1000
#define ALINK_CLOSE_MS 2000

static const char *const state_names[] = { "down", "connecting", "ready", "blocked" };

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
 * The first certificate problem OpenSSL found in the current handshake.
 * File scope because the verify callback has no other place, and a process
 * has one link.
 */
static char verify_why[160];

static int alink_verify_cb(int ok, X509_STORE_CTX *ctx)
{
	if (!ok && verify_why[0] == '\0')
		snprintf(verify_why, sizeof(verify_why), "%s",
		         X509_verify_cert_error_string(X509_STORE_CTX_get_error(ctx)));
	return ok;
}

/* A rabbitmq-c status, with OpenSSL's reason when it has one. */
static const char *lib_error(int status, char *buf, size_t size)
{
	unsigned long e = ERR_peek_last_error();
	const char *reason = e != 0 ? ERR_reason_error_string(e) : NULL;

	if (reason != NULL)
		snprintf(buf, size, "%s: %s", amqp_error_string2(status), reason);
	else
		snprintf(buf, size, "%s", amqp_error_string2(status));
	ERR_clear_error();
	return buf;
}

static amqp_bytes_t bytes_of(const char *p, size_t len)
{
	amqp_bytes_t b;

	b.bytes = (void *)p;
	b.len = len;
	return b;
}

/* Describes a failed rabbitmq-c RPC in the operator's terms. */
static void describe_reply(amqp_rpc_reply_t r, char *buf, size_t bufsz)
{
	switch (r.reply_type) {
	case AMQP_RESPONSE_NORMAL:
		snprintf(buf, bufsz, "no error");
		break;
	case AMQP_RESPONSE_NONE:
		snprintf(buf, bufsz, "missing RPC reply");
		break;
	case AMQP_RESPONSE_LIBRARY_EXCEPTION:
		lib_error(r.library_error, buf, bufsz);
		break;
	case AMQP_RESPONSE_SERVER_EXCEPTION:
		if (r.reply.id == AMQP_CONNECTION_CLOSE_METHOD) {
			amqp_connection_close_t *m = r.reply.decoded;
			snprintf(buf, bufsz, "broker closed the connection: %u %.*s", m->reply_code,
			         (int)m->reply_text.len, (char *)m->reply_text.bytes);
		} else if (r.reply.id == AMQP_CHANNEL_CLOSE_METHOD) {
			amqp_channel_close_t *m = r.reply.decoded;
			snprintf(buf, bufsz, "broker closed the channel: %u %.*s", m->reply_code,
			         (int)m->reply_text.len, (char *)m->reply_text.bytes);
		} else {
			snprintf(buf, bufsz, "unexpected method 0x%08x", r.reply.id);
		}
		break;
	}
}

static void alink_teardown(struct alink *a)
{
	if (a->fd >= 0)
		loop_fd_del(a->loop, a->fd);
	a->fd = -1;
	if (a->conn)
		amqp_destroy_connection(a->conn);
	a->conn = NULL;
	loop_timer_disarm(a->loop, &a->tick_timer);
	free(a->ret_buf);
	free(a->ret_body);
	a->ret_buf = a->ret_body = NULL;
	a->ret_stage = 0;
}

static void alink_schedule_retry(struct alink *a)
{
	uint32_t delay = backoff_next(&a->backoff);

	log_info("amqp: reconnecting to %s:%d in %u ms", a->cfg->host, a->cfg->port, delay);
	loop_timer_arm(a->loop, &a->retry_timer, delay);
}

/* Fails the link, recording why for the down handler. */
static void alink_fail_as(struct alink *a, enum alink_cause cause, int code, const char *why)
{
	bool was_up = a->state == AL_READY || a->state == AL_BLOCKED;

	a->failure.cause = cause;
	a->failure.code = code;
	snprintf(a->failure.text, sizeof(a->failure.text), "%s", why);
	if (was_up)
		log_warn("amqp: connection to %s:%d lost: %s", a->cfg->host, a->cfg->port, why);
	else
		log_warn("amqp: cannot connect to %s:%d (vhost '%s'): %s", a->cfg->host,
		         a->cfg->port, a->cfg->vhost, why);
	if (was_up && loop_now_ms() - a->up_since_ms >= ALINK_STABLE_MS)
		backoff_reset(&a->backoff);
	alink_teardown(a);
	alink_set_state(a, AL_DOWN);
	if (was_up && a->h.down)
		a->h.down(a->arg);
	if (a->wanted)
		alink_schedule_retry(a);
}

void alink_fail(struct alink *a, const char *why)
{
	alink_fail_as(a, AL_CAUSE_LINK, 0, why);
}

/* Declares (or, passively, checks) one exchange; fills `err` on failure. */
static int alink_declare(struct alink *a, const char *name, const char *type, bool declare,
                         char *err, size_t errsz)
{
	/* RabbitMQ reserves "amq." names: they exist and may only be checked. */
	bool passive = !declare || strncmp(name, "amq.", 4) == 0;
	char why[512];

	amqp_exchange_declare(a->conn, ALINK_CHANNEL, amqp_cstring_bytes(name),
	                      amqp_cstring_bytes(type), passive, 1, 0, 0, amqp_empty_table);
	amqp_rpc_reply_t r = amqp_get_rpc_reply(a->conn);
	if (r.reply_type == AMQP_RESPONSE_NORMAL)
		return 0;
	describe_reply(r, why, sizeof(why));
	if (passive)
		snprintf(err, errsz, "exchange '%s' cannot be used (%s)%s", name, why,
		         declare ? "" : "; create it or set amqp.declare_exchange = true");
	else
		snprintf(err, errsz, "declaring %s exchange '%s' failed (%s)", type, name, why);
	return -1;
}

/*
 * Why a declaration failed: the broker's own text ("PRECONDITION_FAILED -
 * inequivalent arg ...") when it closed the channel over it, otherwise
 * describe_reply().  Returns the channel.close reply code, or 0.
 */
static int alink_reply_reason(amqp_rpc_reply_t r, char *buf, size_t bufsz)
{
	if (r.reply_type == AMQP_RESPONSE_SERVER_EXCEPTION && r.reply.id == AMQP_CHANNEL_CLOSE_METHOD) {
		amqp_channel_close_t *m = r.reply.decoded;

		snprintf(buf, bufsz, "%.*s", (int)m->reply_text.len, (char *)m->reply_text.bytes);
		return m->reply_code;
	}
	describe_reply(r, buf, bufsz);
	return 0;
}

/*
 * The `n` configured arguments as a table over `entries` (room for n + 1),
 * preceded by "alternate-exchange" when `ae` is not NULL.
 */
static amqp_table_t alink_table(amqp_table_entry_t *entries, const struct rules_field *f, size_t n,
                                const char *ae)
{
	amqp_table_t t;
	int k = 0;

	if (ae)
		props_entry_text(&entries[k++], "alternate-exchange", strlen("alternate-exchange"), ae,
		                 strlen(ae));
	for (size_t i = 0; i < n; i++)
		props_entry_field(&entries[k++], &f[i]);
	t.num_entries = k;
	t.entries = entries;
	return t;
}

/*
 * Declares the topology's exchanges, queues and bindings, in that order,
 * then checks passively that every exchange the rules publish to exists.
 * Each RPC is bounded by the connection's RPC timeout (connect_timeout).
 * Returns 0, or -1 with `err` naming the declaration and its line.
 */
static int alink_declare_topology(struct alink *a, char *err, size_t errsz)
{
	const struct topology *t = a->topo;
	amqp_table_entry_t *entries = NULL;
	amqp_rpc_reply_t r;
	size_t max_args = 0, nx = 0, nq = 0, nb = 0, nc = 0;
	char why[512];

	if (t) {
		for (size_t i = 0; i < t->n_exchanges; i++)
			if (t->exchanges[i].n_arguments > max_args)
				max_args = t->exchanges[i].n_arguments;
		for (size_t i = 0; i < t->n_queues; i++)
			if (t->queues[i].n_arguments > max_args)
				max_args = t->queues[i].n_arguments;
		entries = calloc(max_args + 1, sizeof(*entries));
		if (!entries) {
			snprintf(err, errsz, "out of memory for the topology");
			return -1;
		}
		for (; nx < t->n_exchanges; nx++) {
			const struct topo_exchange *e = &t->exchanges[nx];

			amqp_exchange_declare(a->conn, ALINK_CHANNEL, amqp_cstring_bytes(e->name),
			                      amqp_cstring_bytes(e->type ? e->type : "topic"), 0,
			                      e->durable, e->auto_delete, e->internal,
			                      alink_table(entries, e->arguments, e->n_arguments,
			                                  e->alternate_exchange));
			r = amqp_get_rpc_reply(a->conn);
			if (r.reply_type != AMQP_RESPONSE_NORMAL) {
				alink_reply_reason(r, why, sizeof(why));
				snprintf(err, errsz, "topology exchange '%s' (line %d): %s", e->name,
				         e->line, why);
				goto fail;
			}
		}
		for (; nq < t->n_queues; nq++) {
			const struct topo_queue *q = &t->queues[nq];

			amqp_queue_declare(a->conn, ALINK_CHANNEL, amqp_cstring_bytes(q->name), 0,
			                   q->durable, q->exclusive, q->auto_delete,
			                   alink_table(entries, q->arguments, q->n_arguments, NULL));
			r = amqp_get_rpc_reply(a->conn);
			if (r.reply_type != AMQP_RESPONSE_NORMAL) {
				alink_reply_reason(r, why, sizeof(why));
				snprintf(err, errsz, "topology queue '%s' (line %d): %s", q->name,
				         q->line, why);
				goto fail;
			}
		}
		for (; nb < t->n_bindings; nb++) {
			const struct topo_binding *b = &t->bindings[nb];

			amqp_queue_bind(a->conn, ALINK_CHANNEL, amqp_cstring_bytes(b->queue),
			                amqp_cstring_bytes(b->exchange), amqp_cstring_bytes(b->key),
			                amqp_empty_table);
			r = amqp_get_rpc_reply(a->conn);
			if (r.reply_type != AMQP_RESPONSE_NORMAL) {
				alink_reply_reason(r, why, sizeof(why));
				snprintf(err, errsz, "topology binding of queue '%s' to exchange '%s' "
				         "with key '%s' (line %d): %s", b->queue, b->exchange, b->key,
				         b->line, why);
				goto fail;
			}
		}
		free(entries);
		entries = NULL;
	}
	for (; nc < a->n_check; nc++) {
		const char *name = a->check[nc];

		/* Passive: the type and flags are not compared. */
		amqp_exchange_declare(a->conn, ALINK_CHANNEL, amqp_cstring_bytes(name),
		                      amqp_cstring_bytes("topic"), 1, 0, 0, 0, amqp_empty_table);
		r = amqp_get_rpc_reply(a->conn);
		if (r.reply_type != AMQP_RESPONSE_NORMAL) {
			if (alink_reply_reason(r, why, sizeof(why)) == AMQP_NOT_FOUND)
				snprintf(err, errsz, "exchange '%s' used by a rule does not exist (%s); "
				         "declare it under topology.exchanges or create it", name, why);
			else
				snprintf(err, errsz, "exchange '%s' used by a rule cannot be used (%s)",
				         name, why);
			return -1;
		}
	}
	if (nx + nq + nb + nc > 0)
		log_info("amqp: declared %zu exchange(s), %zu queue(s), %zu binding(s); "
		         "checked %zu exchange(s)", nx, nq, nb, nc);
	return 0;
fail:
	free(entries);
	return -1;
}

/*
 * Makes the connection's socket: TCP, or TLS as configured (the files were
 * checked when the configuration was loaded).  Returns NULL with `err` filled.
 */
static amqp_socket_t *alink_socket(struct alink *a, char *err, size_t errsz)
{
	const struct amqp_settings *c = a->cfg;
	amqp_socket_t *sock;
	SSL_CTX *ctx;
	char why[256];
	int rc;

	if (!c->tls) {
		sock = amqp_tcp_socket_new(a->conn);
		if (!sock)
			snprintf(err, errsz, "cannot create a socket");
		return sock;
	}
	sock = amqp_ssl_socket_new(a->conn);
	if (!sock) {
		snprintf(err, errsz, "cannot create a TLS socket");
		return NULL;
	}
	ctx = amqp_ssl_socket_get_context(sock);
	/* rabbitmq-c 0.11 knows no TLS 1.3 for amqp_ssl_socket_set_ssl_versions(). */
	SSL_CTX_set_min_proto_version(ctx, strcmp(c->tls_version, "tlsv1.3") == 0 ? TLS1_3_VERSION
	                                                                        : TLS1_2_VERSION);
	rc = amqp_ssl_socket_set_cacert(sock, c->tls_ca_file);
	if (rc != AMQP_STATUS_OK) {
		snprintf(err, errsz, "cannot load the CA file %s: %s", c->tls_ca_file,
		         lib_error(rc, why, sizeof(why)));
		return NULL;
	}
	if (c->tls_cert_file) {
		rc = amqp_ssl_socket_set_key(sock, c->tls_cert_file, c->tls_key_file);
		if (rc != AMQP_STATUS_OK) {
			snprintf(err, errsz, "cannot load the client certificate %s with key %s: %s",
			         c->tls_cert_file, c->tls_key_file, lib_error(rc, why, sizeof(why)));
			return NULL;
		}
	}
	amqp_ssl_socket_set_verify_peer(sock, !c->tls_insecure);
	/*
	 * OpenSSL checks the name, not rabbitmq-c: rabbitmq-c 0.11 compares the
	 * host only with DNS names, so "127.0.0.1" never matches an IP address
	 * in subjectAltName.
	 */
	amqp_ssl_socket_set_verify_hostname(sock, 0);
	if (!c->tls_insecure) {
		X509_VERIFY_PARAM *param = SSL_CTX_get0_param(ctx);

		if (X509_VERIFY_PARAM_set1_ip_asc(param, c->host) != 1
		    && X509_VERIFY_PARAM_set1_host(param, c->host, 0) != 1) {
			snprintf(err, errsz, "cannot set the host name to verify");
			return NULL;
		}
	}
	/* Refuse a bad certificate in the handshake itself, and say why. */
	SSL_CTX_set_verify(ctx, c->tls_insecure ? SSL_VERIFY_NONE : SSL_VERIFY_PEER, alink_verify_cb);
	verify_why[0] = '\0';
	return sock;
}

/* Why amqp_socket_open_noblock() failed. */
static void alink_open_error(const struct alink *a, int rc, char *err, size_t errsz)
{
	char why[256];

	if (!a->cfg->tls) {
		snprintf(err, errsz, "%s", amqp_error_string2(rc));
		return;
	}
	switch (rc) {
	case AMQP_STATUS_SSL_HOSTNAME_VERIFY_FAILED:
		snprintf(err, errsz, "TLS handshake failed: the certificate does not match the host name");
		break;
	case AMQP_STATUS_SSL_PEER_VERIFY_FAILED:
	case AMQP_STATUS_SSL_CONNECTION_FAILED:
	case AMQP_STATUS_SSL_ERROR:
		if (verify_why[0] != '\0')
			snprintf(err, errsz, "TLS handshake failed: certificate verify failed: %s",
			         verify_why);
		else
			snprintf(err, errsz, "TLS handshake failed: %s", lib_error(rc, why, sizeof(why)));
		break;
	default:
		snprintf(err, errsz, "%s", amqp_error_string2(rc));
		break;
	}
	ERR_clear_error();
}

/*
 * Opens the connection, logs in, opens the channel in confirm mode and
 * declares the exchanges.  Each step is bounded by amqp.connect_timeout.
 * Returns 0, or -1 with `err` filled (the connection is then torn down by
 * the caller).
 */
static int alink_open(struct alink *a, char *err, size_t errsz)
{
	const struct amqp_settings *c = a->cfg;
	struct timeval tv = { .tv_sec = c->connect_timeout, .tv_usec = 0 };
	amqp_socket_t *sock;
	amqp_table_entry_t caps[3], props[2];
	amqp_table_t caps_table, props_table;
	amqp_rpc_reply_t r;
	char why[512];
	int rc;

	a->conn = amqp_new_connection();
	if (!a->conn) {
		snprintf(err, errsz, "out of memory");
		return -1;
	}
	sock = alink_socket(a, err, errsz);
	if (!sock)
		return -1;
	rc = amqp_socket_open_noblock(sock, c->host, c->port, &tv);
	if (rc != AMQP_STATUS_OK) {
		alink_open_error(a, rc, err, errsz);
		return -1;
	}
	amqp_set_handshake_timeout(a->conn, &tv);
	amqp_set_rpc_timeout(a->conn, &tv);

	/* Without announcing it, RabbitMQ never sends connection.blocked. */
	caps[0].key = amqp_cstring_bytes("connection.blocked");
	caps[0].value.kind = AMQP_FIELD_KIND_BOOLEAN;
	caps[0].value.value.boolean = 1;
	caps[1].key = amqp_cstring_bytes("publisher_confirms");
	caps[1].value.kind = AMQP_FIELD_KIND_BOOLEAN;
	caps[1].value.value.boolean = 1;
	caps[2].key = amqp_cstring_bytes("authentication_failure_close");
	caps[2].value.kind = AMQP_FIELD_KIND_BOOLEAN;
	caps[2].value.value.boolean = 1;
	caps_table.num_entries = 3;
	caps_table.entries = caps;
	props[0].key = amqp_cstring_bytes("capabilities");
	props[0].value.kind = AMQP_FIELD_KIND_TABLE;
	props[0].value.value.table = caps_table;
	props[1].key = amqp_cstring_bytes("connection_name");
	props[1].value.kind = AMQP_FIELD_KIND_UTF8;
	props[1].value.value.bytes = amqp_cstring_bytes(PACKAGE_NAME);
	props_table.num_entries = 2;
	props_table.entries = props;

	r = amqp_login_with_properties(a->conn, c->vhost, 0, PROPS_FRAME_MAX, c->heartbeat,
	                               &props_table, AMQP_SASL_METHOD_PLAIN, c->username,
	                               c->password);
	if (r.reply_type != AMQP_RESPONSE_NORMAL) {
		describe_reply(r, why, sizeof(why));
		/* TLS 1.3 refuses a client certificate after the handshake, during login. */
		if (c->tls && r.reply_type == AMQP_RESPONSE_LIBRARY_EXCEPTION &&
		    r.library_error == AMQP_STATUS_SSL_ERROR)
			snprintf(err, errsz, "TLS connection closed during login (%s): the broker may "
			         "have refused the client certificate (tls_cert_file, tls_key_file)", why);
		else
			snprintf(err, errsz, "login as '%s' failed: %s", c->username, why);
		return -1;
	}
	amqp_channel_open(a->conn, ALINK_CHANNEL);
	r = amqp_get_rpc_reply(a->conn);
	if (r.reply_type != AMQP_RESPONSE_NORMAL) {
		describe_reply(r, why, sizeof(why));
		snprintf(err, errsz, "channel.open failed: %s", why);
		return -1;
	}
	amqp_confirm_select(a->conn, ALINK_CHANNEL);
	r = amqp_get_rpc_reply(a->conn);
	if (r.reply_type != AMQP_RESPONSE_NORMAL) {
		describe_reply(r, why, sizeof(why));
		snprintf(err, errsz, "confirm.select failed: %s", why);
		return -1;
	}
	if (alink_declare(a, c->exchange, c->exchange_type, c->declare_exchange, err, errsz) != 0)
		return -1;
	if (c->dead_letter_exchange &&
	    alink_declare(a, c->dead_letter_exchange, "topic", c->declare_exchange, err, errsz) != 0)
		return -1;
	return alink_declare_topology(a, err, errsz);
}

static void alink_on_fd(void *arg, int fd, short revents)
{
	struct alink *a = arg;

	(void)fd;
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

static void alink_connect(struct alink *a)
{
	char err[768];

	alink_set_state(a, AL_CONNECTING);
	if (alink_open(a, err, sizeof(err)) != 0) {
		alink_fail(a, err);
		return;
	}
	a->fd = amqp_get_sockfd(a->conn);
	a->next_tag = 1;
	a->up_since_ms = loop_now_ms();
	if (loop_fd_add(a->loop, a->fd, POLLIN, alink_on_fd, a) != 0) {
		alink_fail(a, "too many file descriptors in the event loop");
		return;
	}
	loop_timer_arm(a->loop, &a->tick_timer, ALINK_TICK_MS);
	alink_set_state(a, AL_READY);
	log_info("amqp: connected to %s:%d vhost '%s', exchange '%s'", a->cfg->host, a->cfg->port,
	         a->cfg->vhost, a->cfg->exchange);
	if (a->h.up)
		a->h.up(a->arg);
}

static void alink_on_retry(void *arg)
{
	struct alink *a = arg;

	if (a->wanted && a->state == AL_DOWN)
		alink_connect(a);
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
	loop_timer_init(&a->retry_timer, alink_on_retry, a);
	loop_timer_init(&a->tick_timer, alink_on_tick, a);
	return 0;
}

void alink_fini(struct alink *a)
{
	loop_timer_disarm(a->loop, &a->retry_timer);
	alink_teardown(a);
}

void alink_start(struct alink *a)
{
	a->wanted = true;
	if (a->state == AL_DOWN && !a->retry_timer.armed)
		alink_connect(a);
}

/*
 * Ends the connection, with the close handshakes (each bounded by
 * ALINK_CLOSE_MS) when `graceful`, and leaves the link DOWN.  Returns
 * whether it was up.
 */
static bool alink_close(struct alink *a, bool graceful)
{
	bool was_up = a->state == AL_READY || a->state == AL_BLOCKED;

	if (was_up && graceful) {
		struct timeval tv = { ALINK_CLOSE_MS / 1000, (ALINK_CLOSE_MS % 1000) * 1000 };

		amqp_set_rpc_timeout(a->conn, &tv);
		amqp_channel_close(a->conn, ALINK_CHANNEL, AMQP_REPLY_SUCCESS);
		amqp_connection_close(a->conn, AMQP_REPLY_SUCCESS);
	}
	alink_teardown(a);
	alink_set_state(a, AL_DOWN);
	return was_up;
}

void alink_stop(struct alink *a, bool graceful)
{
	a->wanted = false;
	loop_timer_disarm(a->loop, &a->retry_timer);
	if (alink_close(a, graceful))
		log_info("amqp: disconnected from %s:%d%s", a->cfg->host, a->cfg->port,
		         graceful ? "" : " (without the close handshake)");
}

void alink_set_topology(struct alink *a, const struct topology *t, char *const *check,
                        size_t n_check)
{
	a->topo = t;
	a->check = check;
	a->n_check = check ? n_check : 0;
}

void alink_set_config(struct alink *a, const struct amqp_settings *cfg)
{
	a->cfg = cfg;
}

/*
 * The settings may already name another broker, so the message about the
 * old connection does not name one.  A deliberate reconnect is no failure:
 * the backoff starts over.
 */
void alink_restart(struct alink *a)
{
	loop_timer_disarm(a->loop, &a->retry_timer);
	a->failure = (struct alink_failure){ .cause = AL_CAUSE_LINK };
	snprintf(a->failure.text, sizeof(a->failure.text), "reconnecting with new settings");
	if (alink_close(a, true)) {
		log_info("amqp: disconnected to apply new settings");
		if (a->h.down)
			a->h.down(a->arg);
	}
	backoff_reset(&a->backoff);
	a->wanted = true;
	alink_connect(a);
}

size_t alink_frame_max(const struct alink *a)
{
	int n = a->conn && (a->state == AL_READY || a->state == AL_BLOCKED)
	        ? amqp_get_frame_max(a->conn) : 0;

	return n > 0 ? (size_t)n : PROPS_FRAME_MAX;
}

size_t alink_send_queue(const struct alink *a)
{
	int n = 0;

	if (a->fd < 0 || ioctl(a->fd, SIOCOUTQ, &n) != 0 || n < 0)
		return 0;
	return (size_t)n;
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
	char why[512];

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
		log_warn("amqp: broker blocked publishing: %.*s", (int)b->reason.len,
		         (char *)b->reason.bytes);
		alink_set_state(a, AL_BLOCKED);
		a->h.blocked(a->arg, true);
		return 0;
	}
	case AMQP_CONNECTION_UNBLOCKED_METHOD:
		log_info("amqp: broker unblocked publishing");
		alink_set_state(a, AL_READY);
		a->h.blocked(a->arg, false);
		return 0;
	case AMQP_CHANNEL_CLOSE_METHOD: {
		amqp_channel_close_t *c = m.decoded;
		amqp_channel_close_ok_t ok = { 0 };
		snprintf(why, sizeof(why), "broker closed the channel: %u %.*s", c->reply_code,
		         (int)c->reply_text.len, (char *)c->reply_text.bytes);
		amqp_send_method(a->conn, f->channel, AMQP_CHANNEL_CLOSE_OK_METHOD, &ok);
		alink_fail_as(a, AL_CAUSE_CHANNEL_CLOSED, c->reply_code, why);
		return -1;
	}
	case AMQP_CONNECTION_CLOSE_METHOD: {
		amqp_connection_close_t *c = m.decoded;
		amqp_connection_close_ok_t ok = { 0 };
		snprintf(why, sizeof(why), "broker closed the connection: %u %.*s", c->reply_code,
		         (int)c->reply_text.len, (char *)c->reply_text.bytes);
		amqp_send_method(a->conn, 0, AMQP_CONNECTION_CLOSE_OK_METHOD, &ok);
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

void alink_read(struct alink *a)
{
	struct timeval zero = { 0, 0 };
	amqp_frame_t f;

	while (a->state == AL_READY || a->state == AL_BLOCKED) {
		int rc = amqp_simple_wait_frame_noblock(a->conn, &f, &zero);

		if (rc == AMQP_STATUS_TIMEOUT)
			break;
		if (rc != AMQP_STATUS_OK) {
			char why[256];

			alink_fail(a, lib_error(rc, why, sizeof(why)));
			return;
		}
		if (alink_on_frame(a, &f) != 0)
			return;
	}
	if (a->conn)
		amqp_maybe_release_buffers(a->conn);
}

int alink_publish(struct alink *a, const char *exchange, size_t exlen, const char *key,
                  size_t keylen, const amqp_basic_properties_t *props, const void *body,
                  size_t len, uint64_t *tag)
{
	int rc;

	if (a->state != AL_READY)
		return -1;
	rc = amqp_basic_publish(a->conn, ALINK_CHANNEL, bytes_of(exchange, exlen),
	                        bytes_of(key, keylen), 1, 0, props, bytes_of(body, len));
	if (rc != AMQP_STATUS_OK) {
		char why[256];

		snprintf(why, sizeof(why), "publish failed: %s", amqp_error_string2(rc));
		/*
		 * Only a table too large for the frame is the message's for sure: the
		 * other errors may come from the frames rabbitmq-c reads first.
		 */
		alink_fail_as(a, rc == AMQP_STATUS_TABLE_TOO_BIG ? AL_CAUSE_PUBLISH : AL_CAUSE_LINK, rc,
		              why);
		return -1;
	}
	*tag = a->next_tag++;
	return 0;
}
