#include "asock.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <sys/socket.h>
#include <unistd.h>

#include "atls.h"
#include "rmqsock.h"

/* rabbitmq-c's version numbers of the releases whose socket object rmqsock.h describes. */
#define RMQSOCK_LIB_MIN 0x00080000u     /* 0.8.0 */
#define RMQSOCK_LIB_END 0x00110000u     /* 0.17.0 */

struct asock {
	struct rmqsock_class vt;     /* first: the socket object points here */
	int fd;
	struct atls *tls;            /* NULL: plain TCP */
	struct aframe out;
};

bool rmqsock_supported(char *err, size_t errsz)
{
	uint32_t v = amqp_version_number();

	if (v >= RMQSOCK_LIB_MIN && v < RMQSOCK_LIB_END)
		return true;
	snprintf(err, errsz, "the bridge needs rabbitmq-c 0.8 to 0.16 (its socket interface); this "
	         "is %s", amqp_version());
	return false;
}

/* The socket object `self` is rabbitmq-c's; its table pointer leads to us. */
static struct asock *asock_of(void *self)
{
	return *(struct asock **)self;
}

/* rabbitmq-c's writes join the queue, whole, behind what is there. */
static ssize_t asock_send(void *self, const void *buf, size_t len, int flags)
{
	struct asock *k = asock_of(self);

	(void)flags;
	if (k->fd < 0)
		return AMQP_STATUS_SOCKET_CLOSED;
	if (aframe_bytes(&k->out, buf, len) != 0)
		return AMQP_STATUS_NO_MEMORY;
	return (ssize_t)len;
}

/* As rabbitmq-c's TCP socket, or through the TLS session. */
static ssize_t asock_recv(void *self, void *buf, size_t len, int flags)
{
	struct asock *k = asock_of(self);
	ssize_t n;

	if (k->fd < 0)
		return AMQP_STATUS_SOCKET_CLOSED;
	if (k->tls)
		return atls_read(k->tls, buf, len);
	do
		n = recv(k->fd, buf, len, flags);
	while (n < 0 && errno == EINTR);
	if (n > 0)
		return n;
	if (n == 0)
		return AMQP_STATUS_CONNECTION_CLOSED;
	return errno == EAGAIN || errno == EWOULDBLOCK ? RMQSOCK_NEEDREAD : AMQP_STATUS_SOCKET_ERROR;
}

static int asock_open(void *self, const char *host, int port, const struct timeval *timeout)
{
	(void)self, (void)host, (void)port, (void)timeout;
	return AMQP_STATUS_SOCKET_INUSE;
}

/* Without `force`, TLS sends close_notify if the socket takes it at once. */
static int asock_close(void *self, int force)
{
	struct asock *k = asock_of(self);

	if (k->fd < 0)
		return AMQP_STATUS_SOCKET_CLOSED;
	if (k->tls)
		atls_close(k->tls, force != RMQSOCK_CLOSE_FORCE);
	close(k->fd);
	k->fd = -1;
	return AMQP_STATUS_OK;
}

static int asock_get_sockfd(void *self)
{
	return asock_of(self)->fd;
}

static void asock_destroy(void *self)
{
	struct asock *k = asock_of(self);

	asock_close(self, 0);
	atls_free(k->tls);
	aframe_free(&k->out);
	free(k);
	/* The object itself is rabbitmq-c's TCP socket, allocated with calloc(). */
	free(self);
}

struct asock *asock_attach(amqp_socket_t *sock, int fd, struct atls *tls)
{
	struct asock *k = calloc(1, sizeof(*k));

	if (!k)
		return NULL;
	k->vt.send = asock_send;
	k->vt.recv = asock_recv;
	k->vt.open = asock_open;
	k->vt.close = asock_close;
	k->vt.get_sockfd = asock_get_sockfd;
	k->vt.destroy = asock_destroy;
	k->fd = fd;
	k->tls = tls;
	aframe_init(&k->out);
	*(struct asock **)sock = k;
	return k;
}

struct aframe *asock_out(struct asock *k)
{
	return &k->out;
}

int asock_write(struct asock *k, char *err, size_t errsz)
{
	/* rabbitmq-c closes the socket on a heartbeat timeout; the number may be reused. */
	if (k->fd < 0) {
		snprintf(err, errsz, "%s", amqp_error_string2(AMQP_STATUS_SOCKET_CLOSED));
		return -1;
	}
	return aframe_flush(&k->out, k->fd, k->tls, err, errsz);
}

size_t asock_unwritten(const struct asock *k)
{
	return aframe_unwritten(&k->out);
}
