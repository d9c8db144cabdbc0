#include "endpoint.h"
#include "expo.h"
#include "stats.h"

#include <check.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* The text written so far (the buffer stays with `e`). */
static const char *text(struct expo *e)
{
	return e->buf ? e->buf : "";
}

START_TEST(test_counter_and_gauge)
{
	struct expo e;
	struct expo_label l[2] = { { "side", "mqtt" }, { "reason", "lost" } };

	expo_init(&e);
	expo_family(&e, "x_total", "counter", "What it counts.");
	expo_u64(&e, "x_total", NULL, 0, 18446744073709551615u);
	expo_u64(&e, "x_total", l, 2, 7);
	expo_family(&e, "g", "gauge", "A gauge.");
	expo_double(&e, "g", NULL, 0, 0.1);
	expo_double(&e, "g", NULL, 0, 1765130000.123);
	expo_double(&e, "g", NULL, 0, 3);
	ck_assert_str_eq(text(&e),
	                 "# HELP x_total What it counts.\n"
	                 "# TYPE x_total counter\n"
	                 "x_total 18446744073709551615\n"
	                 "x_total{side=\"mqtt\",reason=\"lost\"} 7\n"
	                 "# HELP g A gauge.\n"
	                 "# TYPE g gauge\n"
	                 "g 0.1\n"
	                 "g 1765130000.123\n"
	                 "g 3\n");
	expo_fini(&e);
}
END_TEST

START_TEST(test_escaping)
{
	struct expo e;
	struct expo_label l = { "exchange", "a\\b\"c\nd" };

	expo_init(&e);
	expo_family(&e, "m", "counter", "Back\\slash, \"quotes\" and\nnewline.");
	expo_u64(&e, "m", &l, 1, 1);
	/* HELP escapes backslash and newline but not quotes; label values all three. */
	ck_assert_str_eq(text(&e),
	                 "# HELP m Back\\\\slash, \"quotes\" and\\nnewline.\n"
	                 "# TYPE m counter\n"
	                 "m{exchange=\"a\\\\b\\\"c\\nd\"} 1\n");
	expo_fini(&e);
}
END_TEST

START_TEST(test_invalid_utf8)
{
	struct expo e;
	/* Latin-1 "café", a stray continuation byte, and valid UTF-8 kept as it is. */
	struct expo_label l[3] = { { "a", "caf\xe9" }, { "b", "x\x80y" }, { "c", "caf\xc3\xa9" } };

	expo_init(&e);
	expo_u64(&e, "m", l, 3, 1);
	ck_assert_str_eq(text(&e), "m{a=\"caf\xef\xbf\xbd\",b=\"x\xef\xbf\xbdy\",c=\"caf\xc3\xa9\"} 1\n");
	expo_fini(&e);
}
END_TEST

START_TEST(test_histogram)
{
	struct expo e;
	struct hist h;
	struct expo_label l = { "side", "amqp" };
	const char *t;

	memset(&h, 0, sizeof(h));
	hist_observe_us(&h, 0);          /* le 0.0005 */
	hist_observe_us(&h, 500);        /* le 0.0005: the bound is inclusive */
	hist_observe_us(&h, 501);        /* le 0.001 */
	hist_observe_us(&h, 2500000);    /* le 2.5 */
	hist_observe_us(&h, 60000000);   /* +Inf only */
	ck_assert_uint_eq(h.count, 5);
	expo_init(&e);
	expo_hist(&e, "lat_seconds", &l, 1, &h);
	t = text(&e);
	ck_assert_ptr_nonnull(strstr(t, "lat_seconds_bucket{side=\"amqp\",le=\"0.0005\"} 2\n"));
	ck_assert_ptr_nonnull(strstr(t, "lat_seconds_bucket{side=\"amqp\",le=\"0.001\"} 3\n"));
	ck_assert_ptr_nonnull(strstr(t, "lat_seconds_bucket{side=\"amqp\",le=\"1\"} 3\n"));
	ck_assert_ptr_nonnull(strstr(t, "lat_seconds_bucket{side=\"amqp\",le=\"2.5\"} 4\n"));
	ck_assert_ptr_nonnull(strstr(t, "lat_seconds_bucket{side=\"amqp\",le=\"10\"} 4\n"));
	ck_assert_ptr_nonnull(strstr(t, "lat_seconds_bucket{side=\"amqp\",le=\"+Inf\"} 5\n"));
	/* The sum is exact: 62,501,001 µs. */
	ck_assert_ptr_nonnull(strstr(t, "lat_seconds_sum{side=\"amqp\"} 62.501001\n"));
	ck_assert_ptr_nonnull(strstr(t, "lat_seconds_count{side=\"amqp\"} 5\n"));
	/* Buckets in order, each once: 15 lines, then sum and count. */
	ck_assert_uint_eq(e.len, strlen(t));
	{
		int lines = 0;

		for (const char *p = t; *p; p++)
			lines += *p == '\n';
		ck_assert_int_eq(lines, HIST_BOUNDS + 1 + 2);
	}
	expo_fini(&e);
}
END_TEST

START_TEST(test_take)
{
	struct expo e;
	size_t len = 0;
	char *b;

	expo_init(&e);
	for (int i = 0; i < 2000; i++)
		expo_u64(&e, "a_rather_long_metric_name_to_grow_the_buffer", NULL, 0, (uint64_t)i);
	b = expo_take(&e, &len);
	ck_assert_ptr_nonnull(b);
	ck_assert_uint_eq(len, strlen(b));
	ck_assert_ptr_null(e.buf);
	free(b);
	/* Nothing written: nothing to take. */
	expo_init(&e);
	ck_assert_ptr_null(expo_take(&e, &len));
}
END_TEST

START_TEST(test_stats_exchanges)
{
	struct stats s;

	stats_init(&s);
	ck_assert_int_eq(stats_exchange(&s, "telemetry"), 0);
	ck_assert_int_eq(stats_exchange(&s, "alerts"), 1);
	ck_assert_int_eq(stats_exchange(&s, "telemetry"), 0);
	for (int i = 0; i < 20; i++) {
		char name[16];

		snprintf(name, sizeof(name), "x%d", i);
		ck_assert_int_eq(stats_exchange(&s, name), i + 2);
	}
	ck_assert_str_eq(s.ex[1].name, "alerts");
	ck_assert_int_eq(stats_dead_index("unroutable"), STATS_DEAD_UNROUTABLE);
	ck_assert_int_eq(stats_dead_index("nonsense"), STATS_DEAD_N);
	ck_assert_str_eq(stats_dead_name(STATS_DEAD_KEY_TOO_LONG), "routing-key-too-long");
	stats_drop(&s, STATS_DROP_UNMATCHED);
	ck_assert_uint_eq(stats_dropped(&s), 1);
	stats_drop(&s, STATS_DROP_UNDELIVERABLE);
	ck_assert_uint_eq(stats_dropped(&s), 2);
	s.ex[0].forwarded = 2;
	s.ex[21].forwarded = 3;
	ck_assert_uint_eq(stats_forwarded(&s), 5);
	ck_assert_uint_eq(s.drops[STATS_DROP_UNMATCHED], 1);
	stats_fini(&s);
}
END_TEST

START_TEST(test_stats_hold)
{
	struct stats s;

	stats_init(&s);
	ck_assert_int_eq(stats_holdq_reserve(&s, 20), 0);
	ck_assert_uint_eq(s.holdq.mask + 1, 32);
	stats_read_at(&s, 1000);
	stats_read_at(&s, 2000);
	stats_flushed_at(&s, 3000);
	ck_assert_uint_eq(s.hold.count, 2);
	ck_assert_uint_eq(s.hold.sum_us, 2000 + 1000);
	/* Read, then the connection went: not timed. */
	stats_read_at(&s, 4000);
	stats_unread(&s);
	stats_flushed_at(&s, 5000);
	ck_assert_uint_eq(s.hold.count, 2);
	/* Growing keeps the times waiting, oldest first. */
	for (uint64_t i = 0; i < 30; i++)
		stats_read_at(&s, 10000 + i);
	ck_assert_int_eq(stats_holdq_reserve(&s, 100), 0);
	ck_assert_uint_eq(s.holdq.mask + 1, 128);
	stats_flushed_at(&s, 20000);
	ck_assert_uint_eq(s.hold.count, 32);
	ck_assert_uint_eq(s.hold.sum_us, 3000 + 30 * 10000 - (29 * 30 / 2));
	/* A full ring skips what does not fit, and times the rest. */
	for (uint64_t i = 0; i < 200; i++)
		stats_read_at(&s, 30000);
	stats_flushed_at(&s, 30000);
	ck_assert_uint_eq(s.hold.count, 32 + 128);
	stats_fini(&s);
}
END_TEST

START_TEST(test_listen_addresses)
{
	struct sockaddr_storage ss;
	socklen_t len;

	ck_assert_ptr_null(endpoint_listen("127.0.0.1:9464", &ss, &len));
	ck_assert_int_eq(ss.ss_family, AF_INET);
	ck_assert_ptr_null(endpoint_listen("[::1]:9464", &ss, &len));
	ck_assert_int_eq(ss.ss_family, AF_INET6);
	ck_assert_ptr_null(endpoint_listen("0.0.0.0:1", &ss, &len));
	ck_assert_ptr_null(endpoint_listen("[::]:65535", &ss, &len));
	/* No port, a name, a bad port, IPv6 without brackets, an empty host. */
	ck_assert_ptr_nonnull(endpoint_listen("127.0.0.1", &ss, &len));
	ck_assert_ptr_nonnull(endpoint_listen("localhost:9464", &ss, &len));
	ck_assert_ptr_nonnull(endpoint_listen("127.0.0.1:0", &ss, &len));
	ck_assert_ptr_nonnull(endpoint_listen("127.0.0.1:65536", &ss, &len));
	ck_assert_ptr_nonnull(endpoint_listen("::1:9464", &ss, &len));
	ck_assert_ptr_nonnull(endpoint_listen(":9464", &ss, &len));
	ck_assert_ptr_nonnull(endpoint_listen("[fe80::zz]:9464", &ss, &len));
}
END_TEST

static Suite *expo_suite(void)
{
	Suite *s = suite_create("expo");
	TCase *tc = tcase_create("core");

	tcase_add_test(tc, test_counter_and_gauge);
	tcase_add_test(tc, test_escaping);
	tcase_add_test(tc, test_invalid_utf8);
	tcase_add_test(tc, test_histogram);
	tcase_add_test(tc, test_take);
	tcase_add_test(tc, test_stats_exchanges);
	tcase_add_test(tc, test_stats_hold);
	tcase_add_test(tc, test_listen_addresses);
	suite_add_tcase(s, tc);
	return s;
}

int main(void)
{
	SRunner *sr = srunner_create(expo_suite());
	int failed;

	srunner_run_all(sr, CK_NORMAL);
	failed = srunner_ntests_failed(sr);
	srunner_free(sr);
	return failed == 0 ? EXIT_SUCCESS : EXIT_FAILURE;
}
