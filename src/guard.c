#include "guard.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

void guard_init(struct guard *g, unsigned threshold)
{
	memset(g, 0, sizeof(*g));
	g->threshold = threshold;
}

void guard_set_threshold(struct guard *g, unsigned threshold)
{
	g->threshold = threshold;
}

/*
 * RabbitMQ's replies about what a message carries: 406 PRECONDITION_FAILED
 * (its size, expiration, CC or BCC, user_id), 501 FRAME_ERROR, 502
 * SYNTAX_ERROR and 505 UNEXPECTED_FRAME (its framing), and 403 for an
 * internal exchange, which nothing may publish to.  What time or an
 * operator mends, and 541 INTERNAL_ERROR, which a broker's own trouble
 * gives as well, leave a message waiting: it must never be set aside for
 * them.
 */
bool guard_names_message(bool closed, int code, const char *text, bool encoding)
{
	if (encoding)
		return true;
	if (!closed)
		return false;
	switch (code) {
	case 406:
	case 501:
	case 502:
	case 505:
		return true;
	case 403:
		return text != NULL && strstr(text, "internal exchange") != NULL;
	default:
		return false;
	}
}

bool guard_on_failure(struct guard *g, uint64_t fp, bool counts, const char *why, uint64_t batch,
                      uint64_t window)
{
	g->suspect_read = false;
	if (fp == 0 || !counts || g->threshold == 0)
		return false;
	if (g->failures > 0 && fp == g->suspect_fp) {
		g->failures++;
	} else {
		g->suspect_fp = fp;
		g->failures = 1;
		g->logged = false;
	}
	snprintf(g->why, sizeof(g->why), "%s", why ? why : "");
	g->probe_left = batch + window;
	return true;
}

void guard_on_read(struct guard *g)
{
	if (g->probe_left > 0)
		g->probe_left--;
}

enum guard_verdict guard_verdict(struct guard *g, uint64_t fp)
{
	if (g->failures == 0 || fp != g->suspect_fp)
		return GUARD_FORWARD;
	g->suspect_read = true;
	if (g->threshold == 0 || g->failures < g->threshold)
		return GUARD_FORWARD;
	return g->failures >= 2 * g->threshold ? GUARD_DROP : GUARD_SET_ASIDE;
}

void guard_on_settled(struct guard *g, size_t outstanding)
{
	if (g->suspect_read && outstanding == 0) {
		g->suspect_read = false;
		g->failures = 0;
	}
}

/* The decimal number right after `prefix` in `text`, or -1. */
static long long guard_number_after(const char *text, const char *prefix)
{
	const char *p = strstr(text, prefix);
	char *end;
	long long n;

	if (p == NULL)
		return -1;
	p += strlen(prefix);
	errno = 0;
	n = strtoll(p, &end, 10);
	if (errno != 0 || end == p || n <= 0)
		return -1;
	return n;
}

bool guard_size_refusal(const char *text, long long *size, long long *max)
{
	const char *p = text != NULL ? strstr(text, "message size ") : NULL;

	if (p == NULL)
		return false;
	*size = guard_number_after(p, "message size ");
	*max = guard_number_after(p, "max size ");
	return *size > 0 && *max > 0;
}
