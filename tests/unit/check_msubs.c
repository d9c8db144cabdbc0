#include "msubs.h"

#include <check.h>
#include <stdlib.h>
#include <string.h>

static bool has(char *const *v, size_t n, const char *s)
{
	for (size_t i = 0; i < n; i++)
		if (strcmp(v[i], s) == 0)
			return true;
	return false;
}

/* A change by difference: what was added, what removed, and what the next connection unsubscribes. */
START_TEST(test_set)
{
	char *a[] = { "a/#", "b/+" }, *b[] = { "b/+", "c" };
	char **added, **removed;
	size_t na, nr;
	struct msubs s;

	ck_assert_int_eq(msubs_init(&s, a, 2), 0);
	ck_assert_int_eq(msubs_set(&s, b, 2, &added, &na, &removed, &nr), 0);
	ck_assert_uint_eq(na, 1);
	ck_assert_str_eq(added[0], "c");
	ck_assert_uint_eq(nr, 1);
	ck_assert_str_eq(removed[0], "a/#");
	ck_assert_uint_eq(s.n_subs, 2);
	ck_assert(has(s.subs, s.n_subs, "c"));
	ck_assert(!has(s.subs, s.n_subs, "a/#"));
	ck_assert_uint_eq(s.n_unsubs, 1);
	ck_assert_str_eq(s.unsubs[0], "a/#");
	msubs_strv_free(added, na);
	msubs_strv_free(removed, nr);

	/* Configured again before any connection unsubscribed it: nothing to unsubscribe. */
	ck_assert_int_eq(msubs_set(&s, a, 2, &added, &na, &removed, &nr), 0);
	ck_assert_uint_eq(s.n_unsubs, 1);
	ck_assert_str_eq(s.unsubs[0], "c");
	msubs_strv_free(added, na);
	msubs_strv_free(removed, nr);

	/* The broker confirmed it. */
	msubs_unsubscribed(&s, (char *[]){ "c" }, 1);
	ck_assert_uint_eq(s.n_unsubs, 0);
	msubs_fini(&s);
}
END_TEST

/* Requests are matched by message id; a lost connection forgets them. */
START_TEST(test_requests)
{
	char *f[] = { "x" };
	struct msubs s;
	struct msubs_req r;

	ck_assert_int_eq(msubs_init(&s, f, 1), 0);
	for (int mid = 1; mid <= 10; mid++) {
		ck_assert_int_eq(msubs_req_reserve(&s), 0);
		msubs_req_add(&s, mid, mid == 1 ? MSUBS_INITIAL : MSUBS_SUB, msubs_strv_dup(f, 1), 1);
	}
	ck_assert(msubs_req_take(&s, 1, &r));
	ck_assert_int_eq(r.kind, MSUBS_INITIAL);
	msubs_strv_free(r.filters, r.n);
	ck_assert(!msubs_req_take(&s, 1, &r));
	ck_assert(msubs_req_take(&s, 7, &r));
	ck_assert_int_eq(r.mid, 7);
	msubs_strv_free(r.filters, r.n);
	msubs_reqs_clear(&s);
	ck_assert(!msubs_req_take(&s, 5, &r));
	msubs_fini(&s);
}
END_TEST

START_TEST(test_forget)
{
	char *a[] = { "a" };
	char **added, **removed;
	size_t na, nr;
	struct msubs s;

	ck_assert_int_eq(msubs_init(&s, a, 1), 0);
	ck_assert_int_eq(msubs_set(&s, NULL, 0, &added, &na, &removed, &nr), 0);
	ck_assert_uint_eq(s.n_unsubs, 1);
	msubs_strv_free(added, na);
	msubs_strv_free(removed, nr);
	msubs_forget_unsubs(&s);
	ck_assert_uint_eq(s.n_unsubs, 0);
	msubs_fini(&s);
}
END_TEST

int main(void)
{
	Suite *s = suite_create("msubs");
	TCase *tc = tcase_create("bookkeeping");
	SRunner *sr;
	int failed;

	tcase_add_test(tc, test_set);
	tcase_add_test(tc, test_requests);
	tcase_add_test(tc, test_forget);
	suite_add_tcase(s, tc);
	sr = srunner_create(s);
	srunner_run_all(sr, CK_NORMAL);
	failed = srunner_ntests_failed(sr);
	srunner_free(sr);
	return failed == 0 ? EXIT_SUCCESS : EXIT_FAILURE;
}
