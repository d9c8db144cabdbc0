#include "endpoint.h"

#include <arpa/inet.h>
#include <netinet/in.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

/* The digits of a port, 1..65535, and nothing else. */
static bool parse_port(const char *s, int *port)
{
	long v = 0;

	if (*s == '\0' || strlen(s) > 5)
		return false;
	for (; *s != '\0'; s++) {
		if (*s < '0' || *s > '9')
			return false;
		v = v * 10 + (*s - '0');
	}
	if (v < 1 || v > 65535)
		return false;
	*port = (int)v;
	return true;
}

const char *endpoint_parse(const char *text, char host[ENDPOINT_HOST_MAX + 1], int *port)
{
	const char *end, *colon;
	size_t len;

	*port = 0;
	host[0] = '\0';
	if (*text == '\0')
		return "must not be empty";
	for (const char *p = text; *p != '\0'; p++)
		if ((unsigned char)*p <= ' ' || *p == 0x7f || *p == '/' || *p == '@')
			return "must be \"host\" or \"host:port\", without spaces, '/' or '@'";
	if (text[0] == '[') {
		end = strchr(text, ']');
		if (end == NULL)
			return "has '[' without ']': write an IPv6 address as \"[::1]\" or \"[::1]:port\"";
		len = (size_t)(end - text - 1);
		if (len == 0 || memchr(text + 1, ':', len) == NULL)
			return "must hold an IPv6 address between '[' and ']'";
		if (end[1] != '\0' && (end[1] != ':' || !parse_port(end + 2, port)))
			return "must end with ']' or with ']:' and a port from 1 to 65535";
		text++;
	} else {
		colon = strchr(text, ':');
		if (colon != NULL && strchr(colon + 1, ':') != NULL)
			return "holds more than one ':': write an IPv6 address in brackets, "
			       "\"[::1]:port\"";
		len = colon != NULL ? (size_t)(colon - text) : strlen(text);
		if (len == 0)
			return "must name a host before ':'";
		if (colon != NULL && !parse_port(colon + 1, port))
			return "must have a port from 1 to 65535 after ':'";
	}
	if (len > ENDPOINT_HOST_MAX)
		return "has a host name longer than 253 bytes";
	memcpy(host, text, len);
	host[len] = '\0';
	return NULL;
}

int endpoint_name(struct endpoint *ep)
{
	bool v6 = strchr(ep->host, ':') != NULL;
	size_t size = strlen(ep->host) + 9;
	char *name = malloc(size);

	if (name == NULL)
		return -1;
	snprintf(name, size, v6 ? "[%s]:%d" : "%s:%d", ep->host, ep->port);
	free(ep->name);
	ep->name = name;
	return 0;
}

bool endpoint_same(const struct endpoint *a, const struct endpoint *b)
{
	return a->port == b->port && strcasecmp(a->host, b->host) == 0;
}

bool endpoint_lists_same(const struct endpoint *a, size_t na, const struct endpoint *b,
                         size_t nb)
{
	if (na != nb)
		return false;
	for (size_t i = 0; i < na; i++)
		if (!endpoint_same(&a[i], &b[i]))
			return false;
	return true;
}

void endpoint_free(struct endpoint *vec, size_t n)
{
	for (size_t i = 0; i < n && vec != NULL; i++) {
		free(vec[i].host);
		free(vec[i].name);
	}
	free(vec);
}

const char *endpoint_listen(const char *text, struct sockaddr_storage *ss, socklen_t *len)
{
	char host[ENDPOINT_HOST_MAX + 1];
	int port;
	const char *bad = endpoint_parse(text, host, &port);

	memset(ss, 0, sizeof(*ss));
	if (bad)
		return bad;
	if (port == 0)
		return "must end with ':' and a port: \"127.0.0.1:9464\", \"[::1]:9464\"";
	if (text[0] == '[') {
		struct sockaddr_in6 *a = (struct sockaddr_in6 *)ss;

		if (inet_pton(AF_INET6, host, &a->sin6_addr) != 1)
			return "must hold a numeric IPv6 address between '[' and ']' (names are not "
			       "looked up)";
		a->sin6_family = AF_INET6;
		a->sin6_port = htons((uint16_t)port);
		*len = sizeof(*a);
	} else {
		struct sockaddr_in *a = (struct sockaddr_in *)ss;

		if (inet_pton(AF_INET, host, &a->sin_addr) != 1)
			return "must give a numeric IPv4 address, or an IPv6 one in brackets (names are "
			       "not looked up)";
		a->sin_family = AF_INET;
		a->sin_port = htons((uint16_t)port);
		*len = sizeof(*a);
	}
	return NULL;
}
