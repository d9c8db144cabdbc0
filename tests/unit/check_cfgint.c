/*
 * check_cfgint: integers as the configuration file writes them, and the
 * value libconfig stores for each, which is how the loader recognises a
 * literal in the file's text.  The stored values are checked against the
 * libconfig this is built with, so a libconfig that reads integers
 * differently fails here before it misleads the loader.
 */
#include "cfgint.h"

#include <check.h>
#include <libconfig.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

START_TEST(test_parse)
{
	struct cfgint lit;
	int64_t v;

	ck_assert(cfgint_parse("80;", &lit));
	ck_assert(!lit.hex && !lit.neg && !lit.suffix && !lit.overflow);
	ck_assert(cfgint_value(&lit, &v));
	ck_assert_int_eq(v, 80);
	ck_assert_str_eq(lit.text, "80");

	ck_assert(cfgint_parse("0x1F ", &lit));
	ck_assert(lit.hex);
	ck_assert(cfgint_value(&lit, &v));
	ck_assert_int_eq(v, 31);
	ck_assert_str_eq(lit.text, "0x1F");

	ck_assert(cfgint_parse("-42L;", &lit));
	ck_assert(lit.neg && lit.suffix);
	ck_assert(cfgint_value(&lit, &v));
	ck_assert_int_eq(v, -42);
	ck_assert_str_eq(lit.text, "-42L");

	ck_assert(cfgint_parse("+7", &lit));
	ck_assert(cfgint_value(&lit, &v));
	ck_assert_int_eq(v, 7);
}
END_TEST

/* What is not an integer literal: floats, names, a bare sign or prefix. */
START_TEST(test_parse_refuses)
{
	static const char *const not_int[] = { "1.5", "1e3", "2E1", "12abc", "3_", "-", "x1",
	                                       "\"1\"", "", "0x", "-0x5" };
	struct cfgint lit;

	for (size_t i = 0; i < sizeof(not_int) / sizeof(not_int[0]); i++)
		ck_assert_msg(!cfgint_parse(not_int[i], &lit), "took \"%s\" for an integer", not_int[i]);
}
END_TEST

/* The edges of int64_t, and the text of a literal too long to quote whole. */
START_TEST(test_value_range)
{
	struct cfgint lit;
	int64_t v;

	ck_assert(cfgint_parse("9223372036854775807", &lit));
	ck_assert(cfgint_value(&lit, &v));
	ck_assert_int_eq(v, INT64_MAX);
	ck_assert(cfgint_parse("9223372036854775808", &lit));
	ck_assert(!cfgint_value(&lit, &v));
	ck_assert(cfgint_parse("-9223372036854775808", &lit));
	ck_assert(cfgint_value(&lit, &v));
	ck_assert_int_eq(v, INT64_MIN);
	ck_assert(cfgint_parse("-9223372036854775809", &lit));
	ck_assert(!cfgint_value(&lit, &v));
	ck_assert(cfgint_parse("99999999999999999999", &lit));
	ck_assert(lit.overflow);
	ck_assert(!cfgint_value(&lit, &v));
	ck_assert_str_eq(lit.text, "99999999999999999999");

	ck_assert(cfgint_parse("123456789012345678901234567890123456789012345", &lit));
	ck_assert_uint_eq(strlen(lit.text), sizeof(lit.text) - 1);
	ck_assert_str_eq(lit.text + strlen(lit.text) - 3, "...");
	ck_assert_int_eq(strncmp(lit.text, "123456789012345678901234567890123", 33), 0);
}
END_TEST

/*
 * Literals libconfig truncates to 32 bits, saturates, or keeps: for each,
 * cfgint_as_libconfig() must give what libconfig itself stores.
 */
static const char *const literals[] = {
	"80", "0x50", "-5", "+7", "0", "2147483647", "2147483648", "-2147483648", "-2147483649",
	"4294967296", "4294968179", "99999999999", "-4294967286", "0x80000000", "0xFFFFFFFF",
	"0x100000050", "0x1FFFFFFFF", "99999999999999999999", "-99999999999999999999",
	"86400L", "4294967296L", "9223372036854775807L", "9223372036854775808L",
	"99999999999999999999L", "-9223372036854775808L", "-9223372036854775809L",
	"0xFFFFFFFFFFFFFFFFL", "0x1FFFFFFFFFFFFFFFFL", "0x7FFFFFFFFFFFFFFFL",
};

START_TEST(test_as_libconfig)
{
	const char *text = literals[_i];
	char doc[128];
	struct cfgint lit;
	config_setting_t *s;
	config_t lc;
	int64_t stored;

	ck_assert(cfgint_parse(text, &lit));
	snprintf(doc, sizeof(doc), "v = %s;", text);
	config_init(&lc);
	ck_assert_msg(config_read_string(&lc, doc) == CONFIG_TRUE, "libconfig cannot read \"%s\"",
	              doc);
	s = config_lookup(&lc, "v");
	ck_assert_ptr_nonnull(s);
	switch (config_setting_type(s)) {
	case CONFIG_TYPE_INT:
		stored = config_setting_get_int(s);
		break;
	case CONFIG_TYPE_INT64:
		stored = config_setting_get_int64(s);
		break;
	default:
		ck_abort_msg("libconfig reads \"%s\" as no integer", text);
		stored = 0;
	}
	config_destroy(&lc);
	ck_assert_msg(cfgint_as_libconfig(&lit) == stored,
	              "%s: libconfig stores %lld, cfgint_as_libconfig() says %lld", text,
	              (long long)stored, (long long)cfgint_as_libconfig(&lit));
}
END_TEST

/* Finding "name = literal" in a line of text by the value libconfig stored. */
START_TEST(test_find)
{
	static const char line[] = "port = 80; # port = 4294967376\n";
	static const char line2[] = "xport = 5; port_x = 5; port\t:\n\t0x100000050L, port = 5";
	static const char line3[] = "port = 4294967376;";
	struct cfgint lit;
	size_t at;

	/* The stored value picks the literal: not the one in the comment. */
	at = cfgint_find(line, 0, strlen(line), "port", 80, &lit);
	ck_assert_uint_eq(at, 8);
	ck_assert_str_eq(lit.text, "80");
	/*
	 * 4294967376 is stored as 80 too: past the first, the search finds the
	 * next, which is why the loader resumes where the last one ended.
	 */
	at = cfgint_find(line, 8, strlen(line), "port", 80, &lit);
	ck_assert_str_eq(lit.text, "4294967376");
	ck_assert_uint_eq(at, strlen("port = 80; # port = 4"));
	at = cfgint_find(line3, 0, strlen(line3), "port", 80, &lit);
	ck_assert_uint_eq(at, 8);
	ck_assert_str_eq(lit.text, "4294967376");
	/* Whole names only, ':' as well as '=', blanks and newlines around it. */
	at = cfgint_find(line2, 0, strlen(line2), "port", 0x100000050LL, &lit);
	ck_assert_uint_ne(at, 0);
	ck_assert_str_eq(lit.text, "0x100000050L");
	at = cfgint_find(line2, 0, strlen(line2), "port", 5, &lit);
	ck_assert_uint_eq(at, strlen(line2));
	/* Names that start within the range given; nothing when no literal stores as the value. */
	ck_assert_uint_eq(cfgint_find(line, 1, 12, "port", 80, &lit), 0);
	ck_assert_uint_eq(cfgint_find(line, 0, strlen(line), "port", 81, &lit), 0);
	ck_assert_uint_eq(cfgint_find(line, 0, strlen(line), "keepalive", 80, &lit), 0);
}
END_TEST

static Suite *cfgint_suite(void)
{
	Suite *s = suite_create("cfgint");
	TCase *tc;

	tc = tcase_create("parse");
	tcase_add_test(tc, test_parse);
	tcase_add_test(tc, test_parse_refuses);
	tcase_add_test(tc, test_value_range);
	suite_add_tcase(s, tc);

	tc = tcase_create("as_libconfig");
	tcase_add_loop_test(tc, test_as_libconfig, 0, (int)(sizeof(literals) / sizeof(literals[0])));
	suite_add_tcase(s, tc);

	tc = tcase_create("find");
	tcase_add_test(tc, test_find);
	suite_add_tcase(s, tc);
	return s;
}

int main(void)
{
	SRunner *sr = srunner_create(cfgint_suite());
	int failed;

	srunner_run_all(sr, CK_NORMAL);
	failed = srunner_ntests_failed(sr);
	srunner_free(sr);
	return failed == 0 ? EXIT_SUCCESS : EXIT_FAILURE;
}
