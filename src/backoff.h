/*
 * backoff: exponential reconnect delays with jitter.  Pure: the random
 * source is a seeded xorshift generator inside the struct, so tests are
 * repeatable.
 *
 * Attempt n (counting from 0) waits a delay drawn uniformly from
 * [d/2, d] where d = min(max_ms, min_ms * 2^n): never less than half the
 * nominal delay, so a fleet of bridges restarted together spreads out
 * without any of them hammering a broker that is coming back.
 */
#ifndef BRIDGE_BACKOFF_H
#define BRIDGE_BACKOFF_H

#include <stdint.h>

struct backoff {
	uint32_t min_ms;
	uint32_t max_ms;
	uint32_t attempt;
	uint64_t rng;
};

/* min_ms >= 1 and max_ms >= min_ms; seed 0 is replaced by a fixed constant. */
void backoff_init(struct backoff *b, uint32_t min_ms, uint32_t max_ms, uint64_t seed);

/* The delay before the next attempt, in milliseconds; advances the attempt count. */
uint32_t backoff_next(struct backoff *b);

/* After a successful connection: the next failure starts again from min_ms. */
void backoff_reset(struct backoff *b);

#endif
