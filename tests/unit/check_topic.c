#include "topic.h"

#include <check.h>
#include <stdlib.h>
#include <string.h>

/* A key buffer followed by a guard that no translation may touch. */
struct guarded {
	char out[TOPIC_KEY_MAX + 1];
	unsigned char guard[16];
};

static void guard_set(struct guarded *g)
{
	memset(g->out, 'Z', sizeof(g->out));
	memset(g->guard, 0xA5, sizeof(g->guard));
}

static void guard_check(const struct guarded *g)
{
	for (size_t i = 0; i < sizeof(g->guard); i++)
		ck_assert_msg(g->guard[i] == 0xA5, "byte %zu past the key buffer was written", i);
}

/* Runs topic_name_to_key and insists on TOPIC_OK and exactly `want`. */
static void name_ok(const char *topic, const char *repl, const char *want)
{
	struct guarded g;
	size_t n = 9999;
	enum topic_result r;

	guard_set(&g);
	r = topic_name_to_key(topic, strlen(topic), repl, g.out, &n);
	ck_assert_msg(r == TOPIC_OK, "\"%s\" (repl \"%s\"): %s", topic, repl, topic_strerror(r));
	ck_assert_str_eq(g.out, want);
	ck_assert_uint_eq(n, strlen(want));
	guard_check(&g);
}

/* Runs topic_name_to_key on len bytes and insists on error `want`. */
static void name_err(const char *topic, size_t len, const char *repl, enum topic_result want)
{
	struct guarded g;
	size_t n = 9999;
	enum topic_result r;

	guard_set(&g);
	r = topic_name_to_key(topic, len, repl, g.out, &n);
	ck_assert_msg(r == want, "\"%.*s\": got \"%s\", want \"%s\"", (int)len, topic,
	              topic_strerror(r), topic_strerror(want));
	ck_assert_str_eq(g.out, "");
	ck_assert_uint_eq(n, 0);
	guard_check(&g);
}

static void filter_ok(const char *filter, const char *repl, const char *want)
{
	struct guarded g;
	size_t n = 9999;
	enum topic_result r;

	guard_set(&g);
	r = topic_filter_to_key(filter, repl, g.out, &n);
	ck_assert_msg(r == TOPIC_OK, "\"%s\" (repl \"%s\"): %s", filter, repl, topic_strerror(r));
	ck_assert_str_eq(g.out, want);
	ck_assert_uint_eq(n, strlen(want));
	guard_check(&g);
}

static void filter_err(const char *filter, const char *repl, enum topic_result want)
{
	struct guarded g;
	size_t n = 9999;
	enum topic_result r;

	guard_set(&g);
	r = topic_filter_to_key(filter, repl, g.out, &n);
	ck_assert_msg(r == want, "\"%s\" (repl \"%s\"): got \"%s\", want \"%s\"", filter, repl,
	              topic_strerror(r), topic_strerror(want));
	ck_assert_str_eq(g.out, "");
	ck_assert_uint_eq(n, 0);
	guard_check(&g);
}

static void check_is(const char *filter, enum topic_result want)
{
	enum topic_result r = topic_filter_check(filter);

	ck_assert_msg(r == want, "\"%s\": got \"%s\", want \"%s\"", filter, topic_strerror(r),
	              topic_strerror(want));
}

/* Key to name (is_filter 0) or to filter (1) into a large buffer. */
static enum topic_result reverse(int is_filter, const char *key, char *out, size_t outsz)
{
	return is_filter ? topic_key_to_filter(key, out, outsz) : topic_key_to_name(key, out, outsz);
}

static void reverse_ok(int is_filter, const char *key, const char *want)
{
	char out[512];
	enum topic_result r;

	memset(out, 'Z', sizeof(out));
	r = reverse(is_filter, key, out, sizeof(out));
	ck_assert_msg(r == TOPIC_OK, "\"%s\": %s", key, topic_strerror(r));
	ck_assert_str_eq(out, want);
}

static void reverse_err(int is_filter, const char *key, enum topic_result want)
{
	char out[512];
	enum topic_result r;

	memset(out, 'Z', sizeof(out));
	r = reverse(is_filter, key, out, sizeof(out));
	ck_assert_msg(r == want, "\"%s\": got \"%s\", want \"%s\"", key, topic_strerror(r),
	              topic_strerror(want));
	ck_assert_str_eq(out, "");
}

/* A NUL-terminated run of n copies of c in buf (which holds n + 1 bytes). */
static char *fill(char *buf, char c, size_t n)
{
	memset(buf, c, n);
	buf[n] = '\0';
	return buf;
}

START_TEST(test_name_levels)
{
	name_ok("a", ".", "a");
	name_ok("a/b/c", ".", "a.b.c");
	name_ok("sensors/kitchen/temperature", ".", "sensors.kitchen.temperature");
}
END_TEST

START_TEST(test_name_empty_levels)
{
	name_ok("a//b", ".", "a..b");
	name_ok("/a", ".", ".a");
	name_ok("a/", ".", "a.");
	name_ok("/", ".", ".");
	name_ok("//", ".", "..");
	name_ok("/a/", ".", ".a.");
}
END_TEST

START_TEST(test_name_sys)
{
	name_ok("$SYS/broker/uptime", ".", "$SYS.broker.uptime");
	name_ok("$SYS/x", "_", "$SYS.x");
	name_ok("$SYS", ".", "$SYS");
}
END_TEST

START_TEST(test_name_dots)
{
	/* "." keeps dots, as RabbitMQ's plugin does. */
	name_ok("a.b/c", ".", "a.b.c");
	name_ok("a.b/c", "_", "a_b.c");
	name_ok("a.b/c", "", "ab.c");
	name_ok("a..b", "_", "a__b");
	name_ok(".", "_", "_");
	name_ok(".", "", "");
	name_ok("v1.2/x.y", "%2E", "v1%2E2.x%2Ey");
	/* U+00B7 MIDDLE DOT, two bytes. */
	name_ok("a.b/c", "\xc2\xb7", "a\xc2\xb7" "b.c");
	/* U+2024 ONE DOT LEADER, three bytes. */
	name_ok("x.y", "\xe2\x80\xa4", "x\xe2\x80\xa4y");
	name_ok("a.b", "12345678", "a12345678b");
}
END_TEST

START_TEST(test_name_utf8)
{
	name_ok("temp\xc3\xa9rature/\xc2\xb0" "C/\xe6\x97\xa5\xe6\x9c\xac",
	        ".", "temp\xc3\xa9rature.\xc2\xb0" "C.\xe6\x97\xa5\xe6\x9c\xac");
	name_ok("\xf0\x9f\x8c\xa1/x", "_", "\xf0\x9f\x8c\xa1.x");
	/* Bytes are not UTF-8 checked: they pass through. */
	name_ok("\xff\xfe/\x80", ".", "\xff\xfe.\x80");
}
END_TEST

START_TEST(test_name_not_terminated)
{
	struct guarded g;
	size_t n = 0;

	guard_set(&g);
	ck_assert_int_eq(topic_name_to_key("a/b+#junk", 3, ".", g.out, &n), TOPIC_OK);
	ck_assert_str_eq(g.out, "a.b");
	ck_assert_uint_eq(n, 3);
	guard_check(&g);
	/* outlen is optional. */
	ck_assert_int_eq(topic_name_to_key("x/y", 3, ".", g.out, NULL), TOPIC_OK);
	ck_assert_str_eq(g.out, "x.y");
}
END_TEST

START_TEST(test_name_length)
{
	char topic[70000];
	char want[TOPIC_KEY_MAX + 1];

	/* Exactly 255 bytes fits and fills out[0..254] plus the NUL. */
	fill(topic, 'a', 255);
	topic[100] = '/';
	fill(want, 'a', 255);
	want[100] = '.';
	name_ok(topic, ".", want);

	fill(topic, 'a', 256);
	name_err(topic, 256, ".", TOPIC_ERR_TOO_LONG);

	/* 255 bytes with one dot: 255 with a one-byte replacement, 256 with two. */
	fill(topic, 'a', 255);
	topic[10] = '.';
	fill(want, 'a', 255);
	want[10] = '_';
	name_ok(topic, "_", want);
	name_err(topic, 255, "__", TOPIC_ERR_TOO_LONG);
	fill(topic, 'a', 253);
	topic[10] = '.';
	name_ok(topic, "", fill(want, 'a', 252));

	/* Growth from many dots: 100 dots of 3 bytes each. */
	fill(topic, '.', 100);
	name_err(topic, 100, "%2E", TOPIC_ERR_TOO_LONG);
	fill(topic, '.', 85);
	name_ok(topic, "%2E", "%2E%2E%2E%2E%2E%2E%2E%2E%2E%2E%2E%2E%2E%2E%2E%2E%2E%2E%2E%2E"
	                     "%2E%2E%2E%2E%2E%2E%2E%2E%2E%2E%2E%2E%2E%2E%2E%2E%2E%2E%2E%2E"
	                     "%2E%2E%2E%2E%2E%2E%2E%2E%2E%2E%2E%2E%2E%2E%2E%2E%2E%2E%2E%2E"
	                     "%2E%2E%2E%2E%2E%2E%2E%2E%2E%2E%2E%2E%2E%2E%2E%2E%2E%2E%2E%2E"
	                     "%2E%2E%2E%2E%2E");

	/* The largest MQTT topic name. */
	fill(topic, 'a', TOPIC_MQTT_MAX);
	name_err(topic, TOPIC_MQTT_MAX, ".", TOPIC_ERR_TOO_LONG);
}
END_TEST

START_TEST(test_name_empty)
{
	name_err("", 0, ".", TOPIC_ERR_EMPTY);
	name_err("abc", 0, ".", TOPIC_ERR_EMPTY);
}
END_TEST

START_TEST(test_name_nul)
{
	name_err("a\0b", 3, ".", TOPIC_ERR_NUL);
	name_err("\0", 1, ".", TOPIC_ERR_NUL);
	name_err("a/b\0", 4, ".", TOPIC_ERR_NUL);
}
END_TEST

START_TEST(test_name_wildcards)
{
	name_err("+", 1, ".", TOPIC_ERR_WILDCARD);
	name_err("#", 1, ".", TOPIC_ERR_WILDCARD);
	name_err("a/+/b", 5, ".", TOPIC_ERR_WILDCARD);
	name_err("a/#", 3, ".", TOPIC_ERR_WILDCARD);
	name_err("a+b", 3, ".", TOPIC_ERR_WILDCARD);
	name_err("a#b", 3, ".", TOPIC_ERR_WILDCARD);
	/* '*' is an ordinary character in a topic name. */
	name_ok("a/*/b", ".", "a.*.b");
}
END_TEST

START_TEST(test_name_error_precedence)
{
	char topic[400];

	/* A malformed name is reported as malformed even when also too long. */
	fill(topic, 'a', 300);
	topic[299] = '+';
	name_err(topic, 300, ".", TOPIC_ERR_WILDCARD);
	topic[299] = '\0';
	name_err(topic, 300, ".", TOPIC_ERR_NUL);
}
END_TEST

START_TEST(test_filter_check_valid)
{
	static const char *const valid[] = {
		"#", "+", "a", "a/b/c", "a/#", "a/+", "+/b", "a/+/b", "+/+", "+/#",
		"/", "//", "/+", "+/", "/#", "a//b", "sport/tennis/#", "$SYS/#",
		"$SYS/broker/+", "a*b", "*", "a.b/c", "\xc3\xa9t\xc3\xa9/+",
		"$share/g/a", "$share/g/#", "$share/g/+/x", "$share/grp.1/a//b",
		"$share/g//", "$share/g/$share/h/x",
		"$share", "$shared/x", "a/$share/g/x", "$SHARE/x",
	};

	for (size_t i = 0; i < sizeof(valid) / sizeof(valid[0]); i++)
		check_is(valid[i], TOPIC_OK);
}
END_TEST

START_TEST(test_filter_check_invalid)
{
	static const char *const bad[] = {
		"a#", "#a", "a/b#", "a/#/b", "#/", "#/a", "##", "a/##",
		"a+", "+a", "a/+b/c", "a/b+", "++", "+#", "#+", "+/a+/b",
	};

	for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++)
		check_is(bad[i], TOPIC_ERR_BAD_FILTER);
	check_is("", TOPIC_ERR_EMPTY);
}
END_TEST

START_TEST(test_filter_check_share)
{
	static const char *const bad[] = {
		"$share/", "$share/g", "$share//a", "$share/g/", "$share/+/a",
		"$share/g+/a", "$share/#/a", "$share/#", "$share/+", "$share/g/a#",
		"$share/g/#/a", "$share/g/a+",
	};

	for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++)
		check_is(bad[i], TOPIC_ERR_BAD_FILTER);
}
END_TEST

START_TEST(test_filter_check_length)
{
	char *f = malloc(TOPIC_MQTT_MAX + 2);

	ck_assert_ptr_nonnull(f);
	fill(f, 'a', TOPIC_MQTT_MAX);
	f[TOPIC_MQTT_MAX - 1] = '#';
	f[TOPIC_MQTT_MAX - 2] = '/';
	check_is(f, TOPIC_OK);
	fill(f, 'a', TOPIC_MQTT_MAX + 1);
	check_is(f, TOPIC_ERR_TOO_LONG);
	free(f);
}
END_TEST

START_TEST(test_filter_to_key)
{
	filter_ok("a", ".", "a");
	filter_ok("a/b/c", ".", "a.b.c");
	filter_ok("+", ".", "*");
	filter_ok("#", ".", "#");
	filter_ok("a/+/b", ".", "a.*.b");
	filter_ok("a/#", ".", "a.#");
	filter_ok("+/+/#", ".", "*.*.#");
	filter_ok("/+/", ".", ".*.");
	filter_ok("a//#", ".", "a..#");
	filter_ok("/", ".", ".");
	filter_ok("$SYS/#", ".", "$SYS.#");
	filter_ok("$share", ".", "$share");
	filter_ok("a*b/+", ".", "a*b.*");
	filter_ok("**", ".", "**");
	filter_ok("a.b/+", ".", "a.b.*");
	filter_ok("a.b/+", "_", "a_b.*");
	filter_ok("a.b/+", "", "ab.*");
	filter_ok("a.b/#", "\xc2\xb7", "a\xc2\xb7" "b.#");
	filter_ok("caf\xc3\xa9/+", ".", "caf\xc3\xa9.*");
	/* A '*' that is only part of a word stays literal in AMQP. */
	filter_ok("a.*b/+", ".", "a.*b.*");
	filter_ok("*.", "_", "*_");
}
END_TEST

START_TEST(test_filter_ambiguous)
{
	filter_err("*", ".", TOPIC_ERR_AMBIGUOUS);
	filter_err("a/*", ".", TOPIC_ERR_AMBIGUOUS);
	filter_err("a/*/b", ".", TOPIC_ERR_AMBIGUOUS);
	filter_err("*/#", "_", TOPIC_ERR_AMBIGUOUS);
	/* Words cut out by a kept dot read as wildcards too. */
	filter_err("a.*", ".", TOPIC_ERR_AMBIGUOUS);
	filter_err("*.a/b", ".", TOPIC_ERR_AMBIGUOUS);
	filter_err("x/a.*.b", ".", TOPIC_ERR_AMBIGUOUS);
	/* ...or by a dot that vanishes, or by the replacement itself. */
	filter_err("*.", "", TOPIC_ERR_AMBIGUOUS);
	filter_err(".*", "", TOPIC_ERR_AMBIGUOUS);
	filter_err(".", "*", TOPIC_ERR_AMBIGUOUS);
	filter_err("a/.", "#", TOPIC_ERR_AMBIGUOUS);
	/* With another replacement the same levels are plain words. */
	filter_ok("a.*", "_", "a_*");
	filter_ok("x/a.*.b", "_", "x.a_*_b");
	/* '#' inside a level is a misplaced wildcard before anything else. */
	filter_err("a.#", ".", TOPIC_ERR_BAD_FILTER);
}
END_TEST

START_TEST(test_filter_to_key_errors)
{
	filter_err("", ".", TOPIC_ERR_EMPTY);
	filter_err("a/#/b", ".", TOPIC_ERR_BAD_FILTER);
	filter_err("a+", ".", TOPIC_ERR_BAD_FILTER);
	filter_err("a/b#", ".", TOPIC_ERR_BAD_FILTER);
	/* A shared subscription names who receives; it has no binding key. */
	filter_err("$share/g/a/#", ".", TOPIC_ERR_BAD_FILTER);
	filter_err("$share/g/+", ".", TOPIC_ERR_BAD_FILTER);
	filter_err("$share/g", ".", TOPIC_ERR_BAD_FILTER);
}
END_TEST

START_TEST(test_filter_to_key_length)
{
	char f[400], want[TOPIC_KEY_MAX + 1];

	fill(f, 'a', 253);
	memcpy(f + 251, "/#", 2);
	fill(want, 'a', 253);
	memcpy(want + 251, ".#", 2);
	filter_ok(f, ".", want);
	filter_ok(f, "_", want);

	fill(f, 'a', 256);
	filter_err(f, ".", TOPIC_ERR_TOO_LONG);
	fill(f, 'a', 256);
	memcpy(f + 254, "/+", 2);
	filter_err(f, ".", TOPIC_ERR_TOO_LONG);

	/* 255 bytes with one dot: fits with "_", grows to 256 with "__". */
	fill(f, 'a', 255);
	memcpy(f + 253, "/+", 2);
	f[100] = '.';
	fill(want, 'a', 255);
	memcpy(want + 253, ".*", 2);
	want[100] = '_';
	filter_ok(f, "_", want);
	filter_err(f, "__", TOPIC_ERR_TOO_LONG);

	/* An ambiguous level is reported even past the length limit. */
	fill(f, 'a', 300);
	memcpy(f + 298, "/*", 2);
	filter_err(f, ".", TOPIC_ERR_AMBIGUOUS);
}
END_TEST

START_TEST(test_key_to_name)
{
	reverse_ok(0, "a", "a");
	reverse_ok(0, "a.b.c", "a/b/c");
	reverse_ok(0, "a..b", "a//b");
	reverse_ok(0, ".a", "/a");
	reverse_ok(0, "a.", "a/");
	reverse_ok(0, ".", "/");
	reverse_ok(0, "$SYS.broker.uptime", "$SYS/broker/uptime");
	reverse_ok(0, "caf\xc3\xa9.\xe6\x97\xa5", "caf\xc3\xa9/\xe6\x97\xa5");
	reverse_ok(0, "a*b.**", "a*b/**");
	reverse_ok(0, "a_b.c", "a_b/c");
	/* '*' is an ordinary character of a topic name, even as a whole level. */
	reverse_ok(0, "*", "*");
	reverse_ok(0, "a.*", "a/*");
	reverse_ok(0, "*.a", "*/a");
	reverse_ok(0, "a.*.b", "a/*/b");
	reverse_ok(0, "*.*", "*/*");

	reverse_err(0, "", TOPIC_ERR_EMPTY);
	reverse_err(0, "#", TOPIC_ERR_WILDCARD);
	reverse_err(0, "a.#", TOPIC_ERR_WILDCARD);
	reverse_err(0, "a.#.b", TOPIC_ERR_WILDCARD);
	reverse_err(0, "a#b", TOPIC_ERR_WILDCARD);
	reverse_err(0, "a+b", TOPIC_ERR_WILDCARD);
	reverse_err(0, "+", TOPIC_ERR_WILDCARD);
	reverse_err(0, "a.+.b", TOPIC_ERR_WILDCARD);
	reverse_err(0, "*.#", TOPIC_ERR_WILDCARD);
	reverse_err(0, "*.+", TOPIC_ERR_WILDCARD);
}
END_TEST

START_TEST(test_key_to_filter)
{
	reverse_ok(1, "a.b.c", "a/b/c");
	reverse_ok(1, "*", "+");
	reverse_ok(1, "#", "#");
	reverse_ok(1, "a.*.b", "a/+/b");
	reverse_ok(1, "a.#", "a/#");
	reverse_ok(1, "*.*.#", "+/+/#");
	reverse_ok(1, ".*.", "/+/");
	reverse_ok(1, "a..#", "a//#");
	reverse_ok(1, "$SYS.#", "$SYS/#");
	reverse_ok(1, "$share", "$share");
	/* '*' inside a longer word is literal. */
	reverse_ok(1, "a*.*b.**", "a*/*b/**");

	reverse_err(1, "", TOPIC_ERR_EMPTY);
	reverse_err(1, "#.a", TOPIC_ERR_BAD_FILTER);
	reverse_err(1, "a.#.b", TOPIC_ERR_BAD_FILTER);
	reverse_err(1, "#.#", TOPIC_ERR_BAD_FILTER);
	reverse_err(1, "a#", TOPIC_ERR_BAD_FILTER);
	reverse_err(1, "a.b#", TOPIC_ERR_BAD_FILTER);
	reverse_err(1, "a+b", TOPIC_ERR_BAD_FILTER);
	reverse_err(1, "a.+b", TOPIC_ERR_BAD_FILTER);
	/* A literal '+' word would read as an MQTT wildcard. */
	reverse_err(1, "+", TOPIC_ERR_AMBIGUOUS);
	reverse_err(1, "a.+.b", TOPIC_ERR_AMBIGUOUS);
	/* It would come out as a shared subscription. */
	reverse_err(1, "$share.g.a", TOPIC_ERR_BAD_FILTER);
	reverse_err(1, "$share.g", TOPIC_ERR_BAD_FILTER);
}
END_TEST

START_TEST(test_key_outsz)
{
	char out[8];

	memset(out, 'Z', sizeof(out));
	ck_assert_int_eq(topic_key_to_name("a.b.c", out, 6), TOPIC_OK);
	ck_assert_str_eq(out, "a/b/c");
	ck_assert_int_eq(out[6], 'Z');

	memset(out, 'Z', sizeof(out));
	ck_assert_int_eq(topic_key_to_name("a.b.c", out, 5), TOPIC_ERR_TOO_LONG);
	ck_assert_str_eq(out, "");
	ck_assert_int_eq(out[5], 'Z');

	memset(out, 'Z', sizeof(out));
	ck_assert_int_eq(topic_key_to_filter("a.*.*", out, 6), TOPIC_OK);
	ck_assert_str_eq(out, "a/+/+");
	ck_assert_int_eq(out[6], 'Z');

	memset(out, 'Z', sizeof(out));
	ck_assert_int_eq(topic_key_to_filter("a.*.*", out, 5), TOPIC_ERR_TOO_LONG);
	ck_assert_str_eq(out, "");
	ck_assert_int_eq(out[5], 'Z');

	/* outsz 0: nothing may be written. */
	memset(out, 'Z', sizeof(out));
	ck_assert_int_eq(topic_key_to_name("a", out, 0), TOPIC_ERR_TOO_LONG);
	ck_assert_int_eq(topic_key_to_filter("a", out, 0), TOPIC_ERR_TOO_LONG);
	ck_assert_int_eq(topic_key_to_name("", out, 0), TOPIC_ERR_EMPTY);
	ck_assert_int_eq(out[0], 'Z');

	/* outsz 1 holds only the NUL. */
	ck_assert_int_eq(topic_key_to_name("a", out, 1), TOPIC_ERR_TOO_LONG);
	ck_assert_int_eq(out[0], '\0');
	ck_assert_int_eq(out[1], 'Z');
	ck_assert_int_eq(topic_key_to_filter("*", out, 2), TOPIC_OK);
	ck_assert_str_eq(out, "+");
}
END_TEST

START_TEST(test_key_too_long_for_mqtt)
{
	size_t n = (size_t)TOPIC_MQTT_MAX + 1;
	char *key = malloc(n + 1);
	char *out = malloc(n + 1);

	ck_assert_ptr_nonnull(key);
	ck_assert_ptr_nonnull(out);
	fill(key, 'a', n);
	ck_assert_int_eq(topic_key_to_name(key, out, n + 1), TOPIC_ERR_TOO_LONG);
	ck_assert_int_eq(topic_key_to_filter(key, out, n + 1), TOPIC_ERR_TOO_LONG);
	key[n - 1] = '\0';
	ck_assert_int_eq(topic_key_to_name(key, out, n + 1), TOPIC_OK);
	ck_assert_uint_eq(strlen(out), TOPIC_MQTT_MAX);
	free(key);
	free(out);
}
END_TEST

START_TEST(test_round_trip_names)
{
	static const char *const names[] = {
		"a", "a/b/c", "a//b", "/a", "a/", "/", "$SYS/broker/load/1min",
		"caf\xc3\xa9/\xe6\x97\xa5\xe6\x9c\xac", "a*b/c", "x y/z", "a/*", "*", "*/a/*",
	};
	char key[TOPIC_KEY_MAX + 1], back[TOPIC_KEY_MAX + 1];
	size_t n;

	for (size_t i = 0; i < sizeof(names) / sizeof(names[0]); i++) {
		ck_assert_int_eq(topic_name_to_key(names[i], strlen(names[i]), ".", key, &n), TOPIC_OK);
		ck_assert_int_eq(topic_key_to_name(key, back, sizeof(back)), TOPIC_OK);
		ck_assert_str_eq(back, names[i]);
	}
	/* Replaced dots do not come back: the replacement is kept as is. */
	ck_assert_int_eq(topic_name_to_key("a.b/c", 5, "_", key, &n), TOPIC_OK);
	ck_assert_int_eq(topic_key_to_name(key, back, sizeof(back)), TOPIC_OK);
	ck_assert_str_eq(back, "a_b/c");
	/* A level "*" is a word "*" of the routing key and comes back. */
	ck_assert_int_eq(topic_name_to_key("a/*", 3, ".", key, &n), TOPIC_OK);
	ck_assert_str_eq(key, "a.*");
	ck_assert_int_eq(topic_key_to_name(key, back, sizeof(back)), TOPIC_OK);
	ck_assert_str_eq(back, "a/*");
	/* Kept dots come back as separators. */
	ck_assert_int_eq(topic_name_to_key("a.b/c", 5, ".", key, &n), TOPIC_OK);
	ck_assert_int_eq(topic_key_to_name(key, back, sizeof(back)), TOPIC_OK);
	ck_assert_str_eq(back, "a/b/c");
}
END_TEST

START_TEST(test_round_trip_filters)
{
	static const char *const filters[] = {
		"#", "+", "a", "a/b", "a/+/b", "a/#", "+/+/#", "/+/", "a//#", "/",
		"$SYS/#", "caf\xc3\xa9/+", "a*b/+", "**/#",
	};
	char key[TOPIC_KEY_MAX + 1], back[TOPIC_KEY_MAX + 1], again[TOPIC_KEY_MAX + 1];
	size_t n;

	for (size_t i = 0; i < sizeof(filters) / sizeof(filters[0]); i++) {
		ck_assert_int_eq(topic_filter_to_key(filters[i], ".", key, &n), TOPIC_OK);
		ck_assert_int_eq(topic_key_to_filter(key, back, sizeof(back)), TOPIC_OK);
		ck_assert_str_eq(back, filters[i]);
		ck_assert_int_eq(topic_filter_check(back), TOPIC_OK);
		ck_assert_int_eq(topic_filter_to_key(back, ".", again, &n), TOPIC_OK);
		ck_assert_str_eq(again, key);
	}
}
END_TEST

START_TEST(test_strerror)
{
	static const enum topic_result all[] = {
		TOPIC_OK, TOPIC_ERR_EMPTY, TOPIC_ERR_WILDCARD, TOPIC_ERR_BAD_FILTER,
		TOPIC_ERR_AMBIGUOUS, TOPIC_ERR_NUL, TOPIC_ERR_TOO_LONG,
	};
	size_t count = sizeof(all) / sizeof(all[0]);

	for (size_t i = 0; i < count; i++) {
		const char *s = topic_strerror(all[i]);

		ck_assert_ptr_nonnull(s);
		ck_assert_uint_gt(strlen(s), 0);
		for (size_t j = 0; j < i; j++)
			ck_assert_str_ne(s, topic_strerror(all[j]));
	}
	ck_assert_ptr_nonnull(strstr(topic_strerror(TOPIC_ERR_TOO_LONG), "255 bytes"));
	ck_assert_ptr_nonnull(strstr(topic_strerror(TOPIC_ERR_NUL), "NUL"));
	ck_assert_str_eq(topic_strerror((enum topic_result)99), "unknown topic error");
}
END_TEST

/* The unchecked, unbounded form used for template parts and header values. */
START_TEST(test_translate)
{
	char out[TOPIC_KEY_MAX + 1], big[600], small[4];
	size_t n;

	/* Same bytes as topic_name_to_key() for a valid name. */
	ck_assert_uint_eq(topic_translate("a.b/c//d", 8, "_", out, sizeof(out)), 8);
	ck_assert_mem_eq(out, "a_b.c..d", 8);
	ck_assert_uint_eq(topic_translate("x.y", 3, "%2E", out, sizeof(out)), 5);
	ck_assert_mem_eq(out, "x%2Ey", 5);
	/* No check: wildcards and NUL pass through. */
	ck_assert_uint_eq(topic_translate("a/+/#\0", 6, ".", out, sizeof(out)), 6);
	ck_assert_mem_eq(out, "a.+.#\0", 6);
	/* The length needed, without writing, and past 255 bytes. */
	ck_assert_uint_eq(topic_translate("a/b.c", 5, "--", NULL, 0), 6);
	memset(big, 'x', sizeof(big));
	ck_assert_uint_eq(topic_translate(big, sizeof(big), ".", NULL, 0), sizeof(big));
	/* What fits is written, nothing past `cap`. */
	memset(small, '*', sizeof(small));
	n = topic_translate("ab/cd", 5, ".", small, 3);
	ck_assert_uint_eq(n, 5);
	ck_assert_mem_eq(small, "ab.*", 4);
}
END_TEST

static Suite *topic_suite(void)
{
	Suite *s = suite_create("topic");
	struct {
		const char *name;
		const TTest *test;
	} cases[] = {
		{ "name_levels", test_name_levels },
		{ "name_empty_levels", test_name_empty_levels },
		{ "name_sys", test_name_sys },
		{ "name_dots", test_name_dots },
		{ "name_utf8", test_name_utf8 },
		{ "name_not_terminated", test_name_not_terminated },
		{ "name_length", test_name_length },
		{ "name_empty", test_name_empty },
		{ "name_nul", test_name_nul },
		{ "name_wildcards", test_name_wildcards },
		{ "name_error_precedence", test_name_error_precedence },
		{ "translate", test_translate },
		{ "filter_check_valid", test_filter_check_valid },
		{ "filter_check_invalid", test_filter_check_invalid },
		{ "filter_check_share", test_filter_check_share },
		{ "filter_check_length", test_filter_check_length },
		{ "filter_to_key", test_filter_to_key },
		{ "filter_ambiguous", test_filter_ambiguous },
		{ "filter_to_key_errors", test_filter_to_key_errors },
		{ "filter_to_key_length", test_filter_to_key_length },
		{ "key_to_name", test_key_to_name },
		{ "key_to_filter", test_key_to_filter },
		{ "key_outsz", test_key_outsz },
		{ "key_too_long_for_mqtt", test_key_too_long_for_mqtt },
		{ "round_trip_names", test_round_trip_names },
		{ "round_trip_filters", test_round_trip_filters },
		{ "strerror", test_strerror },
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
	SRunner *sr = srunner_create(topic_suite());
	int failed;

	srunner_run_all(sr, CK_NORMAL);
	failed = srunner_ntests_failed(sr);
	srunner_free(sr);
	return failed != 0 ? EXIT_FAILURE : EXIT_SUCCESS;
}
