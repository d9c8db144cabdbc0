#include "logjson.h"

#include <check.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* 2026-12-07T18:49:00.123Z */
#define T_SEC 1796669340
#define T_NSEC 123456789L

static const char HEAD[] = "{\"time\":\"2026-12-07T18:49:00.123Z\",\"level\":\"info\",";

/*
 * A strict checker for what logjson writes: one object of string keys and
 * string, integer or null values, nothing after it, strings of valid
 * UTF-8 without raw control characters and with only JSON's escapes.
 * Returns NULL when `s` is such an object, otherwise where it goes wrong.
 */
static const char *bad_string(const char **p)
{
	const unsigned char *s = (const unsigned char *)*p;

	if (*s++ != '"')
		return (const char *)s - 1;
	while (*s != '"') {
		if (*s < 0x20)
			return (const char *)s;
		if (*s == '\\') {
			s++;
			if (*s == 'u') {
				for (int i = 1; i <= 4; i++)
					if (!strchr("0123456789abcdefABCDEF", s[i]) || s[i] == '\0')
						return (const char *)s;
				s += 5;
			} else if (*s != '\0' && strchr("\"\\/bfnrt", *s)) {
				s++;
			} else {
				return (const char *)s;
			}
		} else if (*s < 0x80) {
			s++;
		} else {
			/* Lead and continuation bytes; test_invalid_utf8 checks the exact ranges. */
			size_t n = *s >= 0xf0 ? 4 : *s >= 0xe0 ? 3 : 2;

			if (*s < 0xc2 || *s > 0xf4)
				return (const char *)s;
			for (size_t i = 1; i < n; i++)
				if ((s[i] & 0xc0) != 0x80)
					return (const char *)s;
			s += n;
		}
	}
	*p = (const char *)s + 1;
	return NULL;
}

static const char *bad_object(const char *s)
{
	const char *err;

	if (*s++ != '{')
		return s - 1;
	for (bool first = true; *s != '}'; first = false) {
		if (!first && *s++ != ',')
			return s - 1;
		if ((err = bad_string(&s)) != NULL)
			return err;
		if (*s++ != ':')
			return s - 1;
		if (*s == '"') {
			if ((err = bad_string(&s)) != NULL)
				return err;
		} else if (strncmp(s, "null", 4) == 0 || strncmp(s, "true", 4) == 0) {
			s += 4;
		} else {
			const char *d = s + (*s == '-');

			if (*d < '0' || *d > '9')
				return s;
			while (*d >= '0' && *d <= '9')
				d++;
			s = d;
		}
	}
	return s[1] == '\0' ? NULL : s + 1;
}

static void assert_valid(const char *out, size_t len, size_t size)
{
	const char *err = bad_object(out);

	ck_assert_msg(err == NULL, "not valid JSON at byte %td: %s", err - out, out);
	ck_assert_uint_eq(len, strlen(out));
	ck_assert_uint_lt(len, size);
}

/* The object for `text` and `fields`, checked to be valid; returns it (static). */
static const char *fmt(const char *text, bool cut, const struct log_field *f, size_t n)
{
	static char out[4096];
	struct logjson_msg m = {
		.time = { .tv_sec = T_SEC, .tv_nsec = T_NSEC },
		.level = "info",
		.text = text,
		.cut = cut,
		.fields = f,
		.n_fields = n,
	};
	size_t len = logjson_format(out, sizeof(out), &m);

	assert_valid(out, len, sizeof(out));
	return out;
}

/* `rest` as what follows the head: module, message and fields. */
static void assert_line(const char *text, const char *rest)
{
	char want[1024];

	snprintf(want, sizeof(want), "%s%s", HEAD, rest);
	ck_assert_str_eq(fmt(text, false, NULL, 0), want);
}

START_TEST(test_line)
{
	struct logjson_msg m = {
		.time = { .tv_sec = 946684800, .tv_nsec = 999999999 },
		.level = "warning",
		.text = "amqp: broker blocked publishing",
	};
	char out[256];

	assert_line("mqtt: connected to 127.0.0.1:1883",
	            "\"module\":\"mqtt\",\"message\":\"connected to 127.0.0.1:1883\"}");
	/* UTC, milliseconds truncated, never rounded up into the next second. */
	logjson_format(out, sizeof(out), &m);
	ck_assert_str_eq(out, "{\"time\":\"2000-01-01T00:00:00.999Z\",\"level\":\"warning\","
	                 "\"module\":\"amqp\",\"message\":\"broker blocked publishing\"}");
}
END_TEST

START_TEST(test_module)
{
	ck_assert_uint_eq(logjson_module("bridge: forwarding"), 6);
	ck_assert_uint_eq(logjson_module("a1_b: x"), 4);
	ck_assert_uint_eq(logjson_module("abcdefghijklmnop: x"), 16);
	/* Not a module: too long, capitals, a path, a file:line, no space after the colon. */
	ck_assert_uint_eq(logjson_module("abcdefghijklmnopq: x"), 0);
	ck_assert_uint_eq(logjson_module("Bridge: x"), 0);
	ck_assert_uint_eq(logjson_module("1bridge: x"), 0);
	ck_assert_uint_eq(logjson_module("/etc/b.conf:3: bad"), 0);
	ck_assert_uint_eq(logjson_module("bridge:3: bad"), 0);
	ck_assert_uint_eq(logjson_module("bridge:"), 0);
	ck_assert_uint_eq(logjson_module(""), 0);
	assert_line("/etc/b.conf:3: bad", "\"module\":\"main\",\"message\":\"/etc/b.conf:3: bad\"}");
	assert_line("mqtt: ", "\"module\":\"mqtt\",\"message\":\"\"}");
	assert_line("", "\"module\":\"main\",\"message\":\"\"}");
}
END_TEST

START_TEST(test_escape)
{
	assert_line("bridge: \"q\" \\ /", "\"module\":\"bridge\",\"message\":\"\\\"q\\\" \\\\ /\"}");
	assert_line("bridge: a\nb\tc\rd\x01\x1f\x7f",
	            "\"module\":\"bridge\",\"message\":\"a\\u000ab\\u0009c\\u000dd\\u0001\\u001f\x7f\"}");
	/* Valid UTF-8 stays as it is: 2, 3 and 4 bytes, and the last code point. */
	assert_line("bridge: \xc3\xa9 \xe2\x82\xac \xf0\x9f\x98\x80 \xf4\x8f\xbf\xbf",
	            "\"module\":\"bridge\",\"message\":\"\xc3\xa9 \xe2\x82\xac \xf0\x9f\x98\x80 "
	            "\xf4\x8f\xbf\xbf\"}");
}
END_TEST

START_TEST(test_invalid_utf8)
{
	/* Each byte that belongs to no valid sequence becomes one U+FFFD. */
	assert_line("bridge: \x80|\xff|\xc0\xaf|\xed\xa0\x80|\xf4\x90\x80\x80|\xe2\x82|\xc3",
	            "\"module\":\"bridge\",\"message\":\"\\ufffd|\\ufffd|\\ufffd\\ufffd|"
	            "\\ufffd\\ufffd\\ufffd|\\ufffd\\ufffd\\ufffd\\ufffd|\\ufffd\\ufffd|\\ufffd\"}");
	/* Overlong 3- and 4-byte forms. */
	assert_line("bridge: \xe0\x80\xaf\xf0\x80\x80\xaf",
	            "\"module\":\"bridge\",\"message\":\"\\ufffd\\ufffd\\ufffd"
	            "\\ufffd\\ufffd\\ufffd\\ufffd\"}");
}
END_TEST

START_TEST(test_fields)
{
	const struct log_field f[] = {
		LOG_STR("node", "127.0.0.1:5672"),
		LOG_U64("forwarded", UINT64_MAX),
		LOG_I64("delta", INT64_MIN),
		LOG_STR("topic", "a\"b\x02\xff"),
		LOG_STR("gone", NULL),
	};
	char want[1024];

	snprintf(want, sizeof(want), "%s\"module\":\"stats\",\"message\":\"x=1\",\"node\":"
	         "\"127.0.0.1:5672\",\"forwarded\":18446744073709551615,"
	         "\"delta\":-9223372036854775808,\"topic\":\"a\\\"b\\u0002\\ufffd\",\"gone\":null}",
	         HEAD);
	ck_assert_str_eq(fmt("stats: x=1", false, f, LOG_NFIELDS(f)), want);
}
END_TEST

/* A text cut by its caller: a sequence it split is left out, and the object says so. */
START_TEST(test_cut_text)
{
	assert_line("bridge: ok", "\"module\":\"bridge\",\"message\":\"ok\"}");
	ck_assert_str_eq(fmt("bridge: ab\xe2\x82", true, NULL, 0),
	                 "{\"time\":\"2026-12-07T18:49:00.123Z\",\"level\":\"info\",\"module\":"
	                 "\"bridge\",\"message\":\"ab\",\"truncated\":true}");
	/* Not the end of a sequence that could have been whole: replaced as usual. */
	ck_assert_str_eq(fmt("bridge: ab\xe2\x41", true, NULL, 0),
	                 "{\"time\":\"2026-12-07T18:49:00.123Z\",\"level\":\"info\",\"module\":"
	                 "\"bridge\",\"message\":\"ab\\ufffdA\",\"truncated\":true}");
}
END_TEST

/*
 * Every buffer size from the smallest up, with a text and fields that
 * need escaping: always one closed, valid object, never past the buffer;
 * `truncated` whenever something was left out, and not once there is
 * room to spare (a few bytes stay kept for it).
 */
START_TEST(test_small_buffers)
{
	const struct log_field f[] = {
		LOG_STR("side", "mqtt"),
		LOG_U64("received", 1234567),
		LOG_STR("topic", "fleet/\"7\"/\x01\xc3\xa9\xf0\x9f\x98\x80/\xfe"),
		LOG_I64("n", -5),
	};
	char text[600];
	size_t full;
	char *out;

	for (size_t i = 0; i + 1 < sizeof(text); i++)
		text[i] = "mqtt: \"\\\x01\xe2\x82\xac\xff ab"[i < 6 ? i : 6 + i % 10];
	text[sizeof(text) - 1] = '\0';
	out = malloc(8192);
	ck_assert_ptr_nonnull(out);
	{
		struct logjson_msg m = { .level = "debug", .text = text, .fields = f, .n_fields = 4 };

		full = logjson_format(out, 8192, &m);
		assert_valid(out, full, 8192);
		ck_assert_ptr_null(strstr(out, "truncated"));
		for (size_t size = LOGJSON_MIN; size <= full + 40; size++) {
			char *buf = malloc(size);
			size_t len;

			ck_assert_ptr_nonnull(buf);
			len = logjson_format(buf, size, &m);
			assert_valid(buf, len, size);
			if (size <= full)
				ck_assert_ptr_nonnull(strstr(buf, ",\"truncated\":true}"));
			else if (size > full + 32)
				ck_assert_str_eq(buf, out);
			free(buf);
		}
	}
	free(out);
}
END_TEST

/* Random bytes for a text: the object is valid whatever they are. */
START_TEST(test_random_bytes)
{
	uint64_t x = 88172645463325252ull;
	char text[300], out[LOGJSON_MIN + 200];

	for (int round = 0; round < 20000; round++) {
		size_t n = (size_t)(round % (int)sizeof(text));
		struct logjson_msg m = { .level = "error", .text = text, .cut = round & 1 };
		size_t len;

		for (size_t i = 0; i < n; i++) {
			x ^= x << 13;
			x ^= x >> 7;
			x ^= x << 17;
			text[i] = (char)(x % 255 + 1);
		}
		text[n] = '\0';
		len = logjson_format(out, LOGJSON_MIN + (size_t)round % 200, &m);
		assert_valid(out, len, LOGJSON_MIN + (size_t)round % 200);
	}
}
END_TEST

static Suite *logjson_suite(void)
{
	Suite *s = suite_create("logjson");
	TCase *tc;

	tc = tcase_create("line");
	tcase_add_test(tc, test_line);
	tcase_add_test(tc, test_module);
	suite_add_tcase(s, tc);
	tc = tcase_create("escape");
	tcase_add_test(tc, test_escape);
	tcase_add_test(tc, test_invalid_utf8);
	suite_add_tcase(s, tc);
	tc = tcase_create("fields");
	tcase_add_test(tc, test_fields);
	suite_add_tcase(s, tc);
	tc = tcase_create("cut");
	tcase_add_test(tc, test_cut_text);
	tcase_add_test(tc, test_small_buffers);
	tcase_add_test(tc, test_random_bytes);
	suite_add_tcase(s, tc);
	return s;
}

int main(void)
{
	SRunner *sr = srunner_create(logjson_suite());
	int failed;

	srunner_run_all(sr, CK_NORMAL);
	failed = srunner_ntests_failed(sr);
	srunner_free(sr);
	return failed == 0 ? EXIT_SUCCESS : EXIT_FAILURE;
}
