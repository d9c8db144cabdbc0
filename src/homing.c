#include "homing.h"

#include <stdio.h>
#include <string.h>

#include "log.h"

static void homing_on_timer(void *arg)
{
	struct homing *h = arg;

	if (h->away(h->arg))
		probe_start(&h->probe, h->host, h->port, h->timeout_ms);
}

static void homing_on_probe(void *arg, bool ok, const char *why)
{
	struct homing *h = arg;

	if (!h->away(h->arg))
		return;
	/* Again later: still away after `back`, the bridge could not act on it yet. */
	loop_timer_arm(h->loop, &h->timer, h->every_ms);
	if (!ok) {
		log_debug("%s: the first address, %s, is still unreachable: %s", h->side, h->name,
		          why);
		return;
	}
	log_info("%s: %s (the first address) answers again", h->side, h->name);
	h->back(h->arg);
}

void homing_init(struct homing *h, struct loop *loop, const char *side, bool (*away)(void *arg),
                 void (*back)(void *arg), void *arg)
{
	h->loop = loop;
	h->side = side;
	h->away = away;
	h->back = back;
	h->arg = arg;
	h->host[0] = h->name[0] = '\0';
	h->port = 0;
	probe_init(&h->probe, loop, homing_on_probe, h);
	loop_timer_init(&h->timer, homing_on_timer, h);
}

void homing_start(struct homing *h, const struct endpoint *first, uint64_t every_ms,
                  unsigned timeout_ms)
{
	homing_stop(h);
	snprintf(h->host, sizeof(h->host), "%s", first->host);
	snprintf(h->name, sizeof(h->name), "%s", first->name);
	h->port = first->port;
	h->every_ms = every_ms;
	h->timeout_ms = timeout_ms;
	loop_timer_arm(h->loop, &h->timer, every_ms);
}

void homing_stop(struct homing *h)
{
	probe_cancel(&h->probe);
	loop_timer_disarm(h->loop, &h->timer);
}

void homing_fini(struct homing *h)
{
	homing_stop(h);
	probe_fini(&h->probe);
}
