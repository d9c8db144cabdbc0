/*
 * hist: a histogram of durations with fixed buckets, for the Prometheus
 * exposition (expo.h).  Observing is a few compares and three additions:
 * no system call and no allocation, so the forwarding path may do it for
 * every message.
 */
#ifndef BRIDGE_HIST_H
#define BRIDGE_HIST_H

#include <stddef.h>
#include <stdint.h>

#define HIST_BOUNDS 14

/* Upper bounds of the buckets, in microseconds (0.5 ms to 10 s); +Inf follows. */
extern const uint64_t hist_bounds_us[HIST_BOUNDS];

struct hist {
	uint64_t bucket[HIST_BOUNDS + 1];   /* per bucket, not cumulative; the last is +Inf */
	uint64_t sum_us;
	uint64_t count;
};

static inline void hist_observe_us(struct hist *h, uint64_t us)
{
	size_t i = 0;

	while (i < HIST_BOUNDS && us > hist_bounds_us[i])
		i++;
	h->bucket[i]++;
	h->sum_us += us;
	h->count++;
}

#endif
