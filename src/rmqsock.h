/*
 * rmqsock: the layout of rabbitmq-c's socket object, which its public
 * headers do not show (librabbitmq/amqp_socket.h): an object starts with
 * a pointer to a table of six functions, and the negative values below
 * are its private "call again when readable / writable" statuses.  It is
 * the same in every release from 0.8 to 0.16; rmqsock_supported() refuses
 * any other.  asock gives the connection's socket object a table of its
 * own.
 */
#ifndef BRIDGE_RMQSOCK_H
#define BRIDGE_RMQSOCK_H

#include <stdbool.h>
#include <stddef.h>
#include <sys/time.h>
#include <sys/types.h>

struct rmqsock_class {
	ssize_t (*send)(void *self, const void *buf, size_t len, int flags);
	ssize_t (*recv)(void *self, void *buf, size_t len, int flags);
	int (*open)(void *self, const char *host, int port, const struct timeval *timeout);
	int (*close)(void *self, int force);
	int (*get_sockfd)(void *self);
	void (*destroy)(void *self);
};

#define RMQSOCK_NEEDREAD (-0x1301)
#define RMQSOCK_NEEDWRITE (-0x1302)
#define RMQSOCK_CLOSE_FORCE 1

/* Whether the linked rabbitmq-c has this layout; if not, why in `err`. */
bool rmqsock_supported(char *err, size_t errsz);

#endif
