#include "atls.h"

#include <errno.h>
#include <limits.h>
#include <poll.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <openssl/err.h>
#include <openssl/ssl.h>
#include <openssl/x509.h>
#include <openssl/x509v3.h>

#include "rmqsock.h"

struct atls {
	SSL_CTX *ctx;
	SSL *ssl;
	int fd;
	bool insecure;
	char verify_why[160];        /* the first certificate problem of the handshake */
};

static int atls_verify_cb(int ok, X509_STORE_CTX *ctx)
{
	SSL *ssl = X509_STORE_CTX_get_ex_data(ctx, SSL_get_ex_data_X509_STORE_CTX_idx());
	struct atls *t = ssl ? SSL_get_app_data(ssl) : NULL;

	if (!ok && t && t->verify_why[0] == '\0')
		snprintf(t->verify_why, sizeof(t->verify_why), "%s",
		         X509_verify_cert_error_string(X509_STORE_CTX_get_error(ctx)));
	return ok;
}

/* OpenSSL's reason for the last failure, or `dflt`; clears the queue. */
static const char *atls_reason(char *buf, size_t size, const char *dflt)
{
	unsigned long e = ERR_peek_last_error();
	const char *reason = e ? ERR_reason_error_string(e) : NULL;

	snprintf(buf, size, "%s", reason ? reason : dflt);
	ERR_clear_error();
	return buf;
}

const char *atls_error(int rc, char *buf, size_t size)
{
	unsigned long e = ERR_peek_last_error();
	const char *reason = e != 0 ? ERR_reason_error_string(e) : NULL;

	if (reason != NULL)
		snprintf(buf, size, "%s: %s", amqp_error_string2(rc), reason);
	else
		snprintf(buf, size, "%s", amqp_error_string2(rc));
	ERR_clear_error();
	return buf;
}

/* Maps SSL_get_error() to rabbitmq-c's statuses, as its TLS socket does. */
static ssize_t atls_status(struct atls *t, int res)
{
	switch (SSL_get_error(t->ssl, res)) {
	case SSL_ERROR_WANT_READ:
		return RMQSOCK_NEEDREAD;
	case SSL_ERROR_WANT_WRITE:
		return RMQSOCK_NEEDWRITE;
	case SSL_ERROR_ZERO_RETURN:
		return AMQP_STATUS_CONNECTION_CLOSED;
	default:
		return AMQP_STATUS_SSL_ERROR;
	}
}

static ssize_t atls_send(struct atls *t, const void *buf, size_t len)
{
	int res;

	if (t->fd < 0)
		return AMQP_STATUS_SOCKET_CLOSED;
	if (len > INT_MAX)
		len = INT_MAX;
	ERR_clear_error();
	res = SSL_write(t->ssl, buf, (int)len);
	return res > 0 ? res : atls_status(t, res);
}

ssize_t atls_read(struct atls *t, void *buf, size_t len)
{
	int res;

	if (t->fd < 0)
		return AMQP_STATUS_SOCKET_CLOSED;
	if (len > INT_MAX)
		len = INT_MAX;
	ERR_clear_error();
	res = SSL_read(t->ssl, buf, (int)len);
	return res > 0 ? res : atls_status(t, res);
}

void atls_close(struct atls *t, bool notify)
{
	if (notify && t->fd >= 0)
		SSL_shutdown(t->ssl);
	ERR_clear_error();
	t->fd = -1;
}

struct atls *atls_new(const struct amqp_settings *c, const char *host, char *err, size_t errsz)
{
	struct atls *t = calloc(1, sizeof(*t));
	char why[256];

	if (!t) {
		snprintf(err, errsz, "out of memory for TLS");
		return NULL;
	}
	t->fd = -1;
	t->insecure = c->tls_insecure;
	t->ctx = SSL_CTX_new(TLS_client_method());
	if (!t->ctx) {
		snprintf(err, errsz, "cannot set up TLS: %s", atls_reason(why, sizeof(why), "?"));
		goto fail;
	}
	/* rabbitmq-c's TLS socket modes: partial writes, no automatic retries. */
	SSL_CTX_set_mode(t->ctx, SSL_MODE_ENABLE_PARTIAL_WRITE | SSL_MODE_ACCEPT_MOVING_WRITE_BUFFER);
	SSL_CTX_clear_mode(t->ctx, SSL_MODE_AUTO_RETRY);
	SSL_CTX_set_min_proto_version(t->ctx, strcmp(c->tls_version, "tlsv1.3") == 0
	                                      ? TLS1_3_VERSION : TLS1_2_VERSION);
	if (SSL_CTX_load_verify_locations(t->ctx, c->tls_ca_file, NULL) != 1) {
		snprintf(err, errsz, "cannot load the CA file %s: %s: %s", c->tls_ca_file,
		         amqp_error_string2(AMQP_STATUS_SSL_ERROR),
		         atls_reason(why, sizeof(why), "?"));
		goto fail;
	}
	if (c->tls_cert_file &&
	    (SSL_CTX_use_certificate_chain_file(t->ctx, c->tls_cert_file) != 1 ||
	     SSL_CTX_use_PrivateKey_file(t->ctx, c->tls_key_file, SSL_FILETYPE_PEM) != 1)) {
		snprintf(err, errsz, "cannot load the client certificate %s with key %s: %s: %s",
		         c->tls_cert_file, c->tls_key_file, amqp_error_string2(AMQP_STATUS_SSL_ERROR),
		         atls_reason(why, sizeof(why), "?"));
		goto fail;
	}
	if (!c->tls_insecure) {
		X509_VERIFY_PARAM *param = SSL_CTX_get0_param(t->ctx);

		if (X509_VERIFY_PARAM_set1_ip_asc(param, host) != 1
		    && X509_VERIFY_PARAM_set1_host(param, host, 0) != 1) {
			snprintf(err, errsz, "cannot set the host name to verify");
			goto fail;
		}
	}
	/* Refuse a bad certificate in the handshake itself, and say why. */
	SSL_CTX_set_verify(t->ctx, c->tls_insecure ? SSL_VERIFY_NONE : SSL_VERIFY_PEER,
	                   atls_verify_cb);
	t->ssl = SSL_new(t->ctx);
	if (!t->ssl) {
		snprintf(err, errsz, "cannot set up TLS: %s", atls_reason(why, sizeof(why), "?"));
		goto fail;
	}
	SSL_set_app_data(t->ssl, t);
	/* As rabbitmq-c: the host as the server name (SNI). */
	if (SSL_set_tlsext_host_name(t->ssl, host) != 1) {
		snprintf(err, errsz, "cannot set the TLS server name: %s",
		         atls_reason(why, sizeof(why), "?"));
		goto fail;
	}
	return t;
fail:
	atls_free(t);
	return NULL;
}

void atls_free(struct atls *t)
{
	if (!t)
		return;
	SSL_free(t->ssl);
	SSL_CTX_free(t->ctx);
	ERR_clear_error();
	free(t);
}

int atls_handshake(struct atls *t, int fd, short *events, char *err, size_t errsz)
{
	char why[256];
	int rc;

	if (t->fd < 0) {
		/* A socket BIO that leaves the descriptor open: the connection closes it. */
		if (SSL_set_fd(t->ssl, fd) != 1) {
			snprintf(err, errsz, "TLS handshake failed: %s",
			         atls_reason(why, sizeof(why), "cannot attach the socket"));
			return -1;
		}
		t->fd = fd;
	}
	ERR_clear_error();
	rc = SSL_connect(t->ssl);
	if (rc == 1) {
		if (!t->insecure && SSL_get_verify_result(t->ssl) != X509_V_OK) {
			snprintf(err, errsz, "TLS handshake failed: certificate verify failed: %s",
			         X509_verify_cert_error_string(SSL_get_verify_result(t->ssl)));
			return -1;
		}
		return 1;
	}
	switch (SSL_get_error(t->ssl, rc)) {
	case SSL_ERROR_WANT_READ:
		*events = POLLIN;
		return 0;
	case SSL_ERROR_WANT_WRITE:
		*events = POLLOUT;
		return 0;
	case SSL_ERROR_SYSCALL:
		if (ERR_peek_last_error() == 0) {
			snprintf(err, errsz, "TLS handshake failed: %s",
			         errno ? strerror(errno) : "the broker closed the connection");
			return -1;
		}
		/* fall through */
	default:
		if (t->verify_why[0] != '\0')
			snprintf(err, errsz, "TLS handshake failed: certificate verify failed: %s",
			         t->verify_why);
		else
			snprintf(err, errsz, "TLS handshake failed: %s",
			         atls_reason(why, sizeof(why), "protocol error"));
		ERR_clear_error();
		return -1;
	}
}

ssize_t atls_write(struct atls *t, const void *buf, size_t n, char *err, size_t errsz)
{
	ssize_t rc = atls_send(t, buf, n);

	if (rc > 0)
		return rc;
	if (rc == RMQSOCK_NEEDREAD || rc == RMQSOCK_NEEDWRITE)
		return 0;
	atls_error((int)rc, err, errsz);
	return -1;
}
