#include "backoff.h"

#include <check.h>
#include <stdlib.h>

/* The nominal delay of attempt n: min(max, min * 2^n), without overflow. */
static uint32_t nominal(uint32_t min_ms, uint32_t max_ms, uint32_t n)
{
	uint64_t d = min_ms;

	for (uint32_t i = 0; i < n && d < max_ms; i++)
		d *= 2;
	return d > max_ms ? max_ms : (uint32_t)d;
}

/* Asserts that delay lies in [d/2, d] for the nominal d of attempt n. */
static void assert_in_window(uint32_t delay, uint32_t d, uint32_t n)
{
	ck_assert_msg(2 * (uint64_t)delay >= d && delay <= d,
	              "attempt %u: delay %u outside [%u/2, %u]", n, delay, d, d);
}

START_TEST(test_growth)
{
	struct backoff b;

	backoff_init(&b, 100, 10000, 42);
	for (uint32_t n = 0; n < 20; n++)
		assert_in_window(backoff_next(&b), nominal(100, 10000, n), n);
	ck_assert_uint_eq(b.attempt, 20);
	/* The nominal sequence itself: 100, 200, ..., 6400, then the cap. */
	ck_assert_uint_eq(nominal(100, 10000, 6), 6400);
	ck_assert_uint_eq(nominal(100, 10000, 7), 10000);
}
END_TEST

START_TEST(test_window_is_used)
{
	struct backoff b;
	uint32_t lo = UINT32_MAX, hi = 0;

	/* Many draws at the cap spread over the whole of [500, 1000]. */
	backoff_init(&b, 1000, 1000, 7);
	for (int i = 0; i < 10000; i++) {
		uint32_t d = backoff_next(&b);

		assert_in_window(d, 1000, b.attempt - 1);
		if (d < lo)
			lo = d;
		if (d > hi)
			hi = d;
	}
	ck_assert_uint_eq(lo, 500);
	ck_assert_uint_eq(hi, 1000);
}
END_TEST

START_TEST(test_first_delays)
{
	struct backoff b;
	uint32_t d;

	/* With min 1 the first delay is exactly 1: never 0. */
	backoff_init(&b, 1, 1000, 3);
	ck_assert_uint_eq(backoff_next(&b), 1);
	d = backoff_next(&b);
	ck_assert_uint_ge(d, 1);
	ck_assert_uint_le(d, 2);
	d = backoff_next(&b);
	ck_assert_uint_ge(d, 2);
	ck_assert_uint_le(d, 4);
}
END_TEST

START_TEST(test_reset)
{
	struct backoff b;

	backoff_init(&b, 100, 60000, 9);
	for (int i = 0; i < 12; i++)
		backoff_next(&b);
	assert_in_window(backoff_next(&b), 60000, 12);
	backoff_reset(&b);
	ck_assert_uint_eq(b.attempt, 0);
	assert_in_window(backoff_next(&b), 100, 0);
	assert_in_window(backoff_next(&b), 200, 1);
}
END_TEST

START_TEST(test_no_overflow)
{
	struct backoff b;

	backoff_init(&b, 1000, 3600000, 11);
	for (uint32_t n = 0; n < 1000; n++)
		assert_in_window(backoff_next(&b), nominal(1000, 3600000, n), n);

	/* min * 2 already exceeds 32 bits. */
	backoff_init(&b, 0x80000001u, UINT32_MAX, 12);
	assert_in_window(backoff_next(&b), 0x80000001u, 0);
	for (uint32_t n = 1; n < 1000; n++)
		assert_in_window(backoff_next(&b), UINT32_MAX, n);

	/* The attempt count stops at its maximum instead of wrapping. */
	b.attempt = UINT32_MAX - 1;
	assert_in_window(backoff_next(&b), UINT32_MAX, UINT32_MAX - 1);
	assert_in_window(backoff_next(&b), UINT32_MAX, UINT32_MAX);
	ck_assert_uint_eq(b.attempt, UINT32_MAX);
	assert_in_window(backoff_next(&b), UINT32_MAX, UINT32_MAX);
}
END_TEST

START_TEST(test_shift_boundaries)
{
	struct backoff b;

	/* Attempts 31, 32 and 33 straddle the width of the nominal delay. */
	backoff_init(&b, 1, UINT32_MAX, 5);
	for (uint32_t n = 0; n < 40; n++)
		assert_in_window(backoff_next(&b), nominal(1, UINT32_MAX, n), n);
	ck_assert_uint_eq(nominal(1, UINT32_MAX, 31), 0x80000000u);
	ck_assert_uint_eq(nominal(1, UINT32_MAX, 32), UINT32_MAX);
}
END_TEST

START_TEST(test_deterministic)
{
	struct backoff a, b, c;
	int differ = 0;

	backoff_init(&a, 50, 1u << 30, 1234);
	backoff_init(&b, 50, 1u << 30, 1234);
	backoff_init(&c, 50, 1u << 30, 4321);
	for (int i = 0; i < 40; i++) {
		uint32_t da = backoff_next(&a);

		ck_assert_uint_eq(da, backoff_next(&b));
		differ |= da != backoff_next(&c);
	}
	ck_assert_msg(differ, "different seeds gave the same 40 delays");
}
END_TEST

START_TEST(test_seed_zero)
{
	struct backoff a, b;
	uint32_t first, d;
	int varied = 0;

	/* Seed 0 is replaced, so the generator does not stick at zero. */
	backoff_init(&a, 1000, 1000, 0);
	backoff_init(&b, 1000, 1000, 0);
	ck_assert_uint_ne(a.rng, 0);
	first = backoff_next(&a);
	ck_assert_uint_eq(first, backoff_next(&b));
	for (int i = 0; i < 20; i++) {
		d = backoff_next(&a);
		assert_in_window(d, 1000, 0);
		varied |= d != first;
	}
	ck_assert(varied);
}
END_TEST

START_TEST(test_min_equals_max)
{
	struct backoff b;

	backoff_init(&b, 1, 1, 8);
	for (int i = 0; i < 100; i++)
		ck_assert_uint_eq(backoff_next(&b), 1);

	backoff_init(&b, 2, 2, 8);
	for (uint32_t n = 0; n < 100; n++)
		assert_in_window(backoff_next(&b), 2, n);

	backoff_init(&b, 30000, 30000, 8);
	for (uint32_t n = 0; n < 100; n++)
		assert_in_window(backoff_next(&b), 30000, n);
}
END_TEST

START_TEST(test_bad_bounds)
{
	struct backoff b;

	backoff_init(&b, 0, 0, 1);
	ck_assert_uint_eq(b.min_ms, 1);
	ck_assert_uint_eq(b.max_ms, 1);
	ck_assert_uint_eq(backoff_next(&b), 1);

	backoff_init(&b, 500, 100, 1);
	ck_assert_uint_eq(b.min_ms, 500);
	ck_assert_uint_eq(b.max_ms, 500);
	assert_in_window(backoff_next(&b), 500, 0);
	assert_in_window(backoff_next(&b), 500, 1);
}
END_TEST

static Suite *backoff_suite(void)
{
	Suite *s = suite_create("backoff");
	struct {
		const char *name;
		const TTest *test;
	} cases[] = {
		{ "growth", test_growth },
		{ "window_is_used", test_window_is_used },
		{ "first_delays", test_first_delays },
		{ "reset", test_reset },
		{ "no_overflow", test_no_overflow },
		{ "shift_boundaries", test_shift_boundaries },
		{ "deterministic", test_deterministic },
		{ "seed_zero", test_seed_zero },
		{ "min_equals_max", test_min_equals_max },
		{ "bad_bounds", test_bad_bounds },
	};

	for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
		TCase *tc = tcase_create(cases[i].name);

		tcase_add_test(tc, cases[i].test);
		suite_add_tcase(s, tc);
	}
	return s;
}

int main(void)
{
	SRunner *sr = srunner_create(backoff_suite());
	int failed;

	srunner_run_all(sr, CK_NORMAL);
	failed = srunner_ntests_failed(sr);
	srunner_free(sr);
	return failed != 0 ? EXIT_FAILURE : EXIT_SUCCESS;
}
