#include "backoff.h"

/* Any non-zero state will do; xorshift never leaves zero once there. */
#define BACKOFF_SEED_DEFAULT UINT64_C(0x9E3779B97F4A7C15)

/* xorshift64* (Vigna): full period over non-zero states, good high bits. */
static uint64_t backoff_rand(struct backoff *b)
{
	uint64_t x = b->rng;

	x ^= x >> 12;
	x ^= x << 25;
	x ^= x >> 27;
	b->rng = x;
	return x * UINT64_C(0x2545F4914F6CDD1D);
}

/*
 * The nominal delay of attempt n, min(max_ms, min_ms * 2^n), computed in 64
 * bits with the shift capped so it cannot overflow whatever n is.
 */
static uint32_t backoff_nominal(const struct backoff *b)
{
	uint64_t d;

	if (b->attempt >= 32)
		return b->max_ms;
	d = (uint64_t)b->min_ms << b->attempt;
	return d > b->max_ms ? b->max_ms : (uint32_t)d;
}

/*
 * Out-of-range bounds are repaired rather than trusted: a min_ms of 0
 * becomes 1 and a max_ms below min_ms becomes min_ms.
 */
void backoff_init(struct backoff *b, uint32_t min_ms, uint32_t max_ms, uint64_t seed)
{
	if (min_ms == 0)
		min_ms = 1;
	if (max_ms < min_ms)
		max_ms = min_ms;
	b->min_ms = min_ms;
	b->max_ms = max_ms;
	b->attempt = 0;
	b->rng = seed != 0 ? seed : BACKOFF_SEED_DEFAULT;
}

/*
 * Returns a delay drawn uniformly from [ceil(d/2), d] for the nominal d of
 * the current attempt, so never below half of d and never 0.  The attempt
 * count saturates instead of wrapping back to short delays.
 */
uint32_t backoff_next(struct backoff *b)
{
	uint32_t d = backoff_nominal(b);
	uint32_t lo = d - d / 2;
	uint64_t span = (uint64_t)d - lo + 1;
	/* span <= 2^31 + 1, so the modulo bias of a 64-bit draw is below 2^-32. */
	uint64_t pick = backoff_rand(b) % span;

	if (b->attempt < UINT32_MAX)
		b->attempt++;
	return lo + (uint32_t)pick;
}

void backoff_reset(struct backoff *b)
{
	b->attempt = 0;
}
