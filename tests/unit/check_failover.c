#include "endpoint.h"
#include "failover.h"

#include <check.h>
#include <stdlib.h>
#include <string.h>

/* Addresses as the configuration writes them */

START_TEST(test_parse_good)
{
	static const struct {
		const char *text, *host;
		int port;
	} cases[] = {
		{ "rabbit1", "rabbit1", 0 },
		{ "rabbit1:5673", "rabbit1", 5673 },
		{ "127.0.0.1:1", "127.0.0.1", 1 },
		{ "127.0.0.1:65535", "127.0.0.1", 65535 },
		{ "[::1]", "::1", 0 },
		{ "[::1]:5672", "::1", 5672 },
		{ "[fe80::1%eth0]:1883", "fe80::1%eth0", 1883 },
		{ "a.b-c.example", "a.b-c.example", 0 },
	};

	for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
		char host[ENDPOINT_HOST_MAX + 1];
		int port = -1;
		const char *why = endpoint_parse(cases[i].text, host, &port);

		ck_assert_msg(why == NULL, "\"%s\": %s", cases[i].text, why);
		ck_assert_str_eq(host, cases[i].host);
		ck_assert_int_eq(port, cases[i].port);
	}
}
END_TEST

START_TEST(test_parse_bad)
{
	static const struct {
		const char *text, *why;
	} cases[] = {
		{ "", "must not be empty" },
		{ ":5672", "must name a host before ':'" },
		{ "h:", "must have a port from 1 to 65535 after ':'" },
		{ "h:0", "must have a port from 1 to 65535 after ':'" },
		{ "h:65536", "must have a port from 1 to 65535 after ':'" },
		{ "h:123456", "must have a port from 1 to 65535 after ':'" },
		{ "h:+80", "must have a port from 1 to 65535 after ':'" },
		{ "h:80x", "must have a port from 1 to 65535 after ':'" },
		{ "::1", "holds more than one ':'" },
		{ "h:1:2", "holds more than one ':'" },
		{ "[::1", "has '[' without ']'" },
		{ "[]:80", "must hold an IPv6 address between '[' and ']'" },
		{ "[host]:80", "must hold an IPv6 address between '[' and ']'" },
		{ "[::1]80", "must end with ']' or with ']:' and a port" },
		{ "[::1]:0", "must end with ']' or with ']:' and a port" },
		{ "a b", "without spaces, '/' or '@'" },
		{ "amqp://h", "without spaces, '/' or '@'" },
		{ "user@h", "without spaces, '/' or '@'" },
	};

	for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
		char host[ENDPOINT_HOST_MAX + 1];
		int port;
		const char *why = endpoint_parse(cases[i].text, host, &port);

		ck_assert_msg(why != NULL, "\"%s\" was accepted", cases[i].text);
		ck_assert_msg(strstr(why, cases[i].why) != NULL, "\"%s\": \"%s\", wanted \"%s\"",
		              cases[i].text, why, cases[i].why);
	}
}
END_TEST

START_TEST(test_parse_long_host)
{
	char text[300], host[ENDPOINT_HOST_MAX + 1];
	int port;

	memset(text, 'a', ENDPOINT_HOST_MAX);
	strcpy(text + ENDPOINT_HOST_MAX, ":80");
	ck_assert_ptr_null(endpoint_parse(text, host, &port));
	ck_assert_uint_eq(strlen(host), ENDPOINT_HOST_MAX);
	memset(text, 'a', ENDPOINT_HOST_MAX + 1);
	strcpy(text + ENDPOINT_HOST_MAX + 1, ":80");
	ck_assert_ptr_nonnull(endpoint_parse(text, host, &port));
}
END_TEST

START_TEST(test_name_and_same)
{
	struct endpoint a = { .host = strdup("Rabbit1"), .port = 5672 };
	struct endpoint b = { .host = strdup("rabbit1"), .port = 5672 };
	struct endpoint c = { .host = strdup("::1"), .port = 5673 };

	ck_assert_int_eq(endpoint_name(&a), 0);
	ck_assert_int_eq(endpoint_name(&c), 0);
	ck_assert_str_eq(a.name, "Rabbit1:5672");
	ck_assert_str_eq(c.name, "[::1]:5673");
	ck_assert(endpoint_same(&a, &b));
	b.port = 5673;
	ck_assert(!endpoint_same(&a, &b));
	free(a.host), free(a.name), free(b.host), free(c.host), free(c.name);
}
END_TEST

/* Which address each attempt takes */

START_TEST(test_one_address)
{
	struct failover f;

	failover_init(&f, 1, FAILOVER_PRIMARY);
	/* Every failure is a whole pass: the backoff applies, as without lists. */
	ck_assert(failover_failed(&f, false, false));
	ck_assert(failover_failed(&f, true, true));
	ck_assert(failover_failed(&f, true, false));
	ck_assert_uint_eq(f.cur, 0);
	ck_assert(!failover_on_standby(&f));
}
END_TEST

START_TEST(test_pass_primary)
{
	struct failover f;

	failover_init(&f, 3, FAILOVER_PRIMARY);
	ck_assert(!failover_failed(&f, false, false));
	ck_assert_uint_eq(f.cur, 1);
	ck_assert(failover_on_standby(&f));
	ck_assert(!failover_failed(&f, false, false));
	ck_assert_uint_eq(f.cur, 2);
	/* The third failure in a row ends the pass; the next one starts at the first. */
	ck_assert(failover_failed(&f, false, false));
	ck_assert_uint_eq(f.cur, 0);
	ck_assert(!failover_on_standby(&f));
	ck_assert(!failover_failed(&f, false, false));
	ck_assert_uint_eq(f.cur, 1);
}
END_TEST

START_TEST(test_pass_round_robin)
{
	struct failover f;

	failover_init(&f, 3, FAILOVER_ROUND_ROBIN);
	ck_assert(!failover_failed(&f, false, false));
	ck_assert(!failover_failed(&f, false, false));
	ck_assert_uint_eq(f.cur, 2);
	ck_assert(!failover_on_standby(&f));
	/* A new pass goes on round the list. */
	ck_assert(failover_failed(&f, false, false));
	ck_assert_uint_eq(f.cur, 0);
	ck_assert(!failover_failed(&f, false, false));
	ck_assert(!failover_failed(&f, false, false));
	ck_assert(failover_failed(&f, false, false));
	ck_assert_uint_eq(f.cur, 0);
	/* A stable connection lost: the next address at once. */
	f.cur = 1;
	ck_assert(!failover_failed(&f, true, true));
	ck_assert_uint_eq(f.cur, 2);
}
END_TEST

START_TEST(test_stable_loss_starts_a_pass)
{
	struct failover f;

	failover_init(&f, 2, FAILOVER_PRIMARY);
	/* The first fails, the second connects and stays up, then is lost. */
	ck_assert(!failover_failed(&f, false, false));
	ck_assert_uint_eq(f.cur, 1);
	ck_assert(!failover_failed(&f, true, true));
	ck_assert_uint_eq(f.cur, 0);
	/* A connection lost soon after it came up counts as a failure of the pass. */
	ck_assert(failover_failed(&f, true, false));
	ck_assert_uint_eq(f.cur, 0);
}
END_TEST

START_TEST(test_flapping_cluster_backs_off)
{
	struct failover f;
	int passes = 0;

	/* Every node accepts the connection and drops it at once: a pass ends every third loss. */
	failover_init(&f, 3, FAILOVER_ROUND_ROBIN);
	for (int i = 0; i < 9; i++)
		passes += failover_failed(&f, true, false);
	ck_assert_int_eq(passes, 3);
}
END_TEST

START_TEST(test_to_primary)
{
	struct failover f;

	failover_init(&f, 3, FAILOVER_PRIMARY);
	ck_assert(!failover_failed(&f, false, false));
	ck_assert(failover_on_standby(&f));
	failover_to_primary(&f);
	ck_assert_uint_eq(f.cur, 0);
	ck_assert_uint_eq(f.failed, 0);
	ck_assert(!failover_on_standby(&f));
}
END_TEST

START_TEST(test_failed_return_backs_off)
{
	struct failover f;

	failover_init(&f, 2, FAILOVER_PRIMARY);
	ck_assert(!failover_failed(&f, false, false));
	failover_connected(&f);
	ck_assert_uint_eq(failover_retry_ms(&f, 30), 30000);
	/* Back to the first, which refuses: the next check waits twice as long. */
	for (uint64_t want = 60000; want <= 3600000; want *= 2) {
		failover_to_primary(&f);
		ck_assert(!failover_failed(&f, false, false));
		ck_assert_uint_eq(f.cur, 1);
		failover_connected(&f);
		ck_assert_uint_eq(failover_retry_ms(&f, 30), want > 3600000 ? 3600000 : want);
	}
	/* Capped at an hour. */
	failover_to_primary(&f);
	ck_assert(!failover_failed(&f, false, false));
	failover_connected(&f);
	ck_assert_uint_eq(failover_retry_ms(&f, 30), 3600000);
	/* A return that holds sets it back. */
	failover_to_primary(&f);
	failover_connected(&f);
	ck_assert_uint_eq(f.cur, 0);
	ck_assert_uint_eq(failover_retry_ms(&f, 30), 30000);
	/* An ordinary failure on the standby changes nothing. */
	f.cur = 1;
	ck_assert(!failover_failed(&f, true, true));
	ck_assert_uint_eq(failover_retry_ms(&f, 30), 30000);
}
END_TEST

START_TEST(test_where)
{
	struct failover f;
	char buf[FAILOVER_WHERE_MAX];

	failover_init(&f, 1, FAILOVER_PRIMARY);
	ck_assert_str_eq(failover_where(&f, buf, sizeof(buf), " (", ")"), "");
	failover_init(&f, 3, FAILOVER_PRIMARY);
	ck_assert(!failover_failed(&f, false, false));
	ck_assert_str_eq(failover_where(&f, buf, sizeof(buf), " (", ")"), " (address 2 of 3)");
	ck_assert_str_eq(failover_where(&f, buf, sizeof(buf), "; ", ""), "; address 2 of 3");
}
END_TEST

static Suite *failover_suite(void)
{
	Suite *s = suite_create("failover");
	const struct {
		const char *name;
		const TTest *test;
	} cases[] = {
		{ "parse_good", test_parse_good },
		{ "parse_bad", test_parse_bad },
		{ "parse_long_host", test_parse_long_host },
		{ "name_and_same", test_name_and_same },
		{ "one_address", test_one_address },
		{ "pass_primary", test_pass_primary },
		{ "pass_round_robin", test_pass_round_robin },
		{ "stable_loss_starts_a_pass", test_stable_loss_starts_a_pass },
		{ "flapping_cluster_backs_off", test_flapping_cluster_backs_off },
		{ "to_primary", test_to_primary },
		{ "failed_return_backs_off", test_failed_return_backs_off },
		{ "where", test_where },
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
	SRunner *sr = srunner_create(failover_suite());
	int failed;

	srunner_run_all(sr, CK_NORMAL);
	failed = srunner_ntests_failed(sr);
	srunner_free(sr);
	return failed != 0 ? EXIT_FAILURE : EXIT_SUCCESS;
}
