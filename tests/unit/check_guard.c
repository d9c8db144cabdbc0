#include "guard.h"

#include <check.h>
#include <stdlib.h>

#define K 3

/* Only replies about what a message carries count; a broker's own trouble never does. */
START_TEST(test_names_message)
{
	ck_assert(guard_names_message(true, 406, "PRECONDITION_FAILED - invalid expiration", false));
	ck_assert(guard_names_message(true, 501, "FRAME_ERROR - type 2", false));
	ck_assert(guard_names_message(true, 502, "SYNTAX_ERROR", false));
	ck_assert(guard_names_message(true, 505, "UNEXPECTED_FRAME", false));
	ck_assert(guard_names_message(true, 403, "ACCESS_REFUSED - cannot publish to internal "
	                              "exchange 'x' in vhost '/'", false));
	ck_assert(guard_names_message(false, 0, "publish failed", true));

	ck_assert(!guard_names_message(true, 403, "ACCESS_REFUSED - access to exchange 'x' in "
	                               "vhost '/' refused for user 'u'", false));
	ck_assert(!guard_names_message(true, 320, "CONNECTION_FORCED - broker forced connection "
	                               "closure with reason 'shutdown'", false));
	ck_assert(!guard_names_message(true, 404, "NOT_FOUND - no exchange 'x'", false));
	ck_assert(!guard_names_message(true, 506, "RESOURCE_ERROR", false));
	ck_assert(!guard_names_message(true, 530, "NOT_ALLOWED", false));
	ck_assert(!guard_names_message(true, 541, "INTERNAL_ERROR", false));
	ck_assert(!guard_names_message(true, 403, NULL, false));
	/* A lost socket or heartbeat. */
	ck_assert(!guard_names_message(false, 0, "connection closed unexpectedly", false));
	ck_assert(!guard_names_message(false, 0, "heartbeat timeout", false));
}
END_TEST

/* K failures in a row with the same head: set aside; 2K: dropped. */
START_TEST(test_threshold)
{
	struct guard g;

	guard_init(&g, K);
	for (unsigned i = 1; i < K; i++) {
		ck_assert(guard_on_failure(&g, 42, true, "406 x", 10, 100));
		ck_assert_int_eq(guard_verdict(&g, 42), GUARD_FORWARD);
	}
	ck_assert(guard_on_failure(&g, 42, true, "406 last", 10, 100));
	ck_assert_uint_eq(g.failures, K);
	ck_assert_str_eq(g.why, "406 last");
	ck_assert_int_eq(guard_verdict(&g, 42), GUARD_SET_ASIDE);
	/* Other messages are never touched. */
	ck_assert_int_eq(guard_verdict(&g, 43), GUARD_FORWARD);
	/* Its dead-letter copy fails as often again. */
	for (unsigned i = 0; i < K - 1; i++) {
		ck_assert(guard_on_failure(&g, 42, true, "406 x", 1, 100));
		ck_assert_int_eq(guard_verdict(&g, 42), GUARD_SET_ASIDE);
	}
	ck_assert(guard_on_failure(&g, 42, true, "406 x", 1, 100));
	ck_assert_int_eq(guard_verdict(&g, 42), GUARD_DROP);
}
END_TEST

/* Another head, a failure that does not count, or the guard off. */
START_TEST(test_not_in_a_row)
{
	struct guard g;

	guard_init(&g, K);
	ck_assert(guard_on_failure(&g, 42, true, "406", 10, 100));
	ck_assert(guard_on_failure(&g, 42, true, "406", 10, 100));
	/* Another head starts over. */
	ck_assert(guard_on_failure(&g, 7, true, "406", 10, 100));
	ck_assert_uint_eq(g.failures, 1);
	ck_assert(guard_on_failure(&g, 42, true, "406", 10, 100));
	ck_assert(guard_on_failure(&g, 42, true, "406", 10, 100));
	ck_assert_int_eq(guard_verdict(&g, 42), GUARD_FORWARD);
	/* Failures that do not count change nothing: RabbitMQ killed meanwhile. */
	ck_assert(!guard_on_failure(&g, 42, false, "connection closed", 10, 100));
	ck_assert(!guard_on_failure(&g, 0, true, "406", 0, 100));
	ck_assert_uint_eq(g.failures, 2);
	ck_assert(guard_on_failure(&g, 42, true, "406", 10, 100));
	ck_assert_int_eq(guard_verdict(&g, 42), GUARD_SET_ASIDE);

	/* Off: nothing is ever counted. */
	guard_init(&g, 0);
	for (int i = 0; i < 10; i++)
		ck_assert(!guard_on_failure(&g, 42, true, "406", 10, 100));
	ck_assert_int_eq(guard_verdict(&g, 42), GUARD_FORWARD);
	ck_assert(!guard_probing(&g));
}
END_TEST

/* A suspect confirmed after all: the count starts over. */
START_TEST(test_settled)
{
	struct guard g;

	guard_init(&g, K);
	ck_assert(guard_on_failure(&g, 42, true, "406", 10, 100));
	ck_assert(guard_on_failure(&g, 42, true, "406", 10, 100));
	/* Not read yet: nothing settles it. */
	guard_on_settled(&g, 0);
	ck_assert_uint_eq(g.failures, 2);
	ck_assert_int_eq(guard_verdict(&g, 42), GUARD_FORWARD);
	/* Read, still unconfirmed. */
	guard_on_settled(&g, 1);
	ck_assert_uint_eq(g.failures, 2);
	guard_on_settled(&g, 0);
	ck_assert_uint_eq(g.failures, 0);
	ck_assert(guard_on_failure(&g, 42, true, "406", 10, 100));
	ck_assert_uint_eq(g.failures, 1);
	/* Read, and then a failure: the failure wins, not a later settling. */
	ck_assert_int_eq(guard_verdict(&g, 42), GUARD_FORWARD);
	ck_assert(guard_on_failure(&g, 42, true, "406", 10, 100));
	guard_on_settled(&g, 0);
	ck_assert_uint_eq(g.failures, 2);
}
END_TEST

/* After a counted failure: the batch and the window, one at a time. */
START_TEST(test_probe_window)
{
	struct guard g;

	guard_init(&g, K);
	ck_assert(!guard_probing(&g));
	ck_assert(!guard_on_failure(&g, 42, false, "heartbeat", 10, 100));
	ck_assert(!guard_probing(&g));
	ck_assert(guard_on_failure(&g, 42, true, "406", 3, 2));
	for (int i = 0; i < 5; i++) {
		ck_assert(guard_probing(&g));
		guard_on_read(&g);
	}
	ck_assert(!guard_probing(&g));
	guard_on_read(&g);
	ck_assert(!guard_probing(&g));
}
END_TEST

START_TEST(test_size_refusal)
{
	long long size = 0, max = 0;

	ck_assert(guard_size_refusal("PRECONDITION_FAILED - message size 2000000 is larger than "
	                             "configured max size 1000000", &size, &max));
	ck_assert_int_eq(size, 2000000);
	ck_assert_int_eq(max, 1000000);
	/* At RabbitMQ's hard limit the text leaves out "configured". */
	ck_assert(guard_size_refusal("broker closed the channel: 406 PRECONDITION_FAILED - message "
	                             "size 600000000 is larger than max size 536870912", &size, &max));
	ck_assert_int_eq(max, 536870912);
	ck_assert(!guard_size_refusal("PRECONDITION_FAILED - invalid expiration", &size, &max));
	ck_assert(!guard_size_refusal("message size x is larger than max size 1", &size, &max));
	ck_assert(!guard_size_refusal("message size 99999999999999999999999 is larger than max "
	                              "size 1", &size, &max));
	ck_assert(!guard_size_refusal(NULL, &size, &max));
}
END_TEST

static Suite *guard_suite(void)
{
	Suite *s = suite_create("guard");
	TCase *tc = tcase_create("poison");

	tcase_add_test(tc, test_names_message);
	tcase_add_test(tc, test_threshold);
	tcase_add_test(tc, test_not_in_a_row);
	tcase_add_test(tc, test_settled);
	tcase_add_test(tc, test_probe_window);
	suite_add_tcase(s, tc);
	tc = tcase_create("size");
	tcase_add_test(tc, test_size_refusal);
	suite_add_tcase(s, tc);
	return s;
}

int main(void)
{
	SRunner *sr = srunner_create(guard_suite());
	int failed;

	srunner_run_all(sr, CK_NORMAL);
	failed = srunner_ntests_failed(sr);
	srunner_free(sr);
	return failed == 0 ? EXIT_SUCCESS : EXIT_FAILURE;
}
