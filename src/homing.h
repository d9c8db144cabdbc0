/*
 * homing: a link's way back to its first address.  While the link is
 * connected to another address of its list in "primary" order
 * (failover.h), it checks every so often whether the first accepts TCP
 * connections again (probe.h), and says so through `back`; the bridge
 * then drains the link and points it at the first address.
 */
#ifndef BRIDGE_HOMING_H
#define BRIDGE_HOMING_H

#include <stdbool.h>
#include <stdint.h>

#include "endpoint.h"
#include "loop.h"
#include "probe.h"

struct homing {
	struct loop *loop;
	const char *side;            /* "amqp" or "mqtt", for the log */
	bool (*away)(void *arg);     /* still up on another address than the first */
	void (*back)(void *arg);     /* the first address answers again */
	void *arg;
	/* A copy: a reload frees the configuration the link's list is in. */
	char host[ENDPOINT_HOST_MAX + 1];
	int port;
	char name[ENDPOINT_HOST_MAX + 10];
	uint64_t every_ms;           /* between checks */
	unsigned timeout_ms;         /* for one check */
	struct probe probe;
	struct loop_timer timer;
};

void homing_init(struct homing *h, struct loop *loop, const char *side, bool (*away)(void *arg),
                 void (*back)(void *arg), void *arg);
void homing_fini(struct homing *h);

/*
 * The link is up on another address: check `first` every `every_ms`
 * (each check within `timeout_ms`) until it answers, away() turns false,
 * or homing_stop().  `first` is copied.  After `back` the checks go on,
 * in case the bridge could not act on it (it was restarting already).
 */
void homing_start(struct homing *h, const struct endpoint *first, uint64_t every_ms,
                  unsigned timeout_ms);

/* No more checks (the link went down, or is closing). */
void homing_stop(struct homing *h);

#endif
