/*
 * endpoint: one broker's address as the configuration writes it, "host" or
 * "host:port" ("[v6]" and "[v6]:port" for an IPv6 literal), and the name
 * logs and status lines give it.  Pure.
 */
#ifndef BRIDGE_ENDPOINT_H
#define BRIDGE_ENDPOINT_H

#include <stdbool.h>
#include <stddef.h>
#include <sys/socket.h>

/* A host name is at most 253 bytes; an IPv6 literal with a zone fits too. */
#define ENDPOINT_HOST_MAX 253

struct endpoint {
	char *host;                 /* a name or an address, without brackets */
	int port;                   /* 1..65535 once loaded; 0 while "the side's port" */
	char *name;                 /* "host:port", "[v6]:port": how messages name it */
	int line;                   /* the line of the entry, or of the one-broker host */
};

/*
 * Splits `text` into `host` (at most ENDPOINT_HOST_MAX bytes, without
 * brackets) and *port (0 when `text` gives none).  Returns NULL, or the
 * end of a sentence that starts with the entry's name ("must ...", "has
 * ...") saying what is wrong.
 */
const char *endpoint_parse(const char *text, char host[ENDPOINT_HOST_MAX + 1], int *port);

/*
 * Fills in ep->name from ep->host and ep->port ("[host]:port" when the
 * host holds a ':').  Returns 0, or -1 when memory ran out.
 */
int endpoint_name(struct endpoint *ep);

/* Whether two endpoints are the same broker as written: the host without regard to case. */
bool endpoint_same(const struct endpoint *a, const struct endpoint *b);

/* Whether two lists hold the same brokers in the same order (the order is the failover order). */
bool endpoint_lists_same(const struct endpoint *a, size_t na, const struct endpoint *b,
                         size_t nb);

/*
 * A listening address: "ADDRESS:PORT" with a numeric IPv4 address, or a
 * bracketed IPv6 one ("127.0.0.1:9464", "[::1]:9464", "0.0.0.0:9464",
 * "[::]:9464"); names are not looked up.  Returns NULL, or the end of a
 * sentence ("must ...") saying what is wrong.
 */
const char *endpoint_listen(const char *text, struct sockaddr_storage *ss, socklen_t *len);

void endpoint_free(struct endpoint *vec, size_t n);

#endif
