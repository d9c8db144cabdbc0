#include "rules.h"

#include <check.h>
#include <stdarg.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/*
 * Check's assertions record every check that passes (a write to a pipe
 * each), which dominates loops of many thousand checks; these check
 * quietly and fail the same way.
 */
#define CHECK(cond, ...) do { \
	if (!(cond)) \
		ck_abort_msg(__VA_ARGS__); \
} while (0)

/* ------------------------------------------------------------------------ */
/* Reports */

#define MSGS_MAX 64

struct report {
	int line;
	char *msg;
};

struct msgs {
	struct report err[MSGS_MAX];
	size_t n_err;
	struct report warn[MSGS_MAX];
	size_t n_warn;
};

static void on_report(struct report *list, size_t *n, int line, const char *msg)
{
	ck_assert_msg(*n < MSGS_MAX, "too many reports");
	list[*n].line = line;
	list[*n].msg = strdup(msg);
	ck_assert_ptr_nonnull(list[*n].msg);
	(*n)++;
}

static void on_error(void *arg, int line, const char *msg)
{
	struct msgs *m = arg;

	on_report(m->err, &m->n_err, line, msg);
}

static void on_warning(void *arg, int line, const char *msg)
{
	struct msgs *m = arg;

	on_report(m->warn, &m->n_warn, line, msg);
}

static void msgs_clear(struct msgs *m)
{
	for (size_t i = 0; i < m->n_err; i++)
		free(m->err[i].msg);
	for (size_t i = 0; i < m->n_warn; i++)
		free(m->warn[i].msg);
	memset(m, 0, sizeof(*m));
}

static struct rules *compile_subs(const struct rule_spec *specs, size_t n, const char *const *subs,
                                  size_t n_subs, struct msgs *m)
{
	msgs_clear(m);
	return rules_compile(specs, n, "_", subs, n_subs, on_error, on_warning, m);
}

static struct rules *compile(const struct rule_spec *specs, size_t n, struct msgs *m)
{
	return compile_subs(specs, n, NULL, 0, m);
}

/* Whether some report of the list holds every one of the NULL-ended strings. */
static bool has_report(const struct report *list, size_t n, ...)
{
	for (size_t i = 0; i < n; i++) {
		va_list ap;
		const char *want;
		bool all = true;

		va_start(ap, n);
		while ((want = va_arg(ap, const char *)) != NULL) {
			if (strstr(list[i].msg, want) == NULL)
				all = false;
		}
		va_end(ap);
		if (all)
			return true;
	}
	return false;
}

static void dump(const struct msgs *m)
{
	for (size_t i = 0; i < m->n_err; i++)
		fprintf(stderr, "error (line %d): %s\n", m->err[i].line, m->err[i].msg);
	for (size_t i = 0; i < m->n_warn; i++)
		fprintf(stderr, "warning (line %d): %s\n", m->warn[i].line, m->warn[i].msg);
}

/*
 * Compiles one rule and insists on exactly one error, from its line,
 * containing `prefix` and `problem`.
 */
static void one_error(const struct rule_spec *spec, const char *prefix, const char *problem)
{
	struct msgs m = { 0 };
	struct rules *rs = compile(spec, 1, &m);

	if (m.n_err != 1)
		dump(&m);
	ck_assert_ptr_null(rs);
	ck_assert_uint_eq(m.n_err, 1);
	ck_assert_int_eq(m.err[0].line, spec->line);
	ck_assert_msg(strncmp(m.err[0].msg, prefix, strlen(prefix)) == 0, "'%s' does not start with '%s'",
	              m.err[0].msg, prefix);
	ck_assert_msg(strstr(m.err[0].msg, problem) != NULL, "'%s' does not say '%s'", m.err[0].msg,
	              problem);
	msgs_clear(&m);
}

/* ------------------------------------------------------------------------ */
/* A reference matcher, written the obvious way */

#define REF_LEVELS 64

/* Splits s at '/' into at most REF_LEVELS levels; returns the count. */
static size_t ref_split(const char *s, size_t len, const char *lv[], size_t lvlen[])
{
	size_t n = 0, start = 0;

	for (size_t i = 0; i <= len; i++) {
		if (i == len || s[i] == '/') {
			CHECK(n < REF_LEVELS, "too many levels");
			lv[n] = s + start;
			lvlen[n] = i - start;
			n++;
			start = i + 1;
		}
	}
	return n;
}

/* MQTT 3.1.1 section 4.7 matching of a topic name against a plain filter. */
static bool ref_match(const char *filter, const char *topic)
{
	const char *fl[REF_LEVELS], *tl[REF_LEVELS];
	size_t fn[REF_LEVELS], tn[REF_LEVELS], nf, nt;

	if (topic[0] == '\0')
		return false;
	nf = ref_split(filter, strlen(filter), fl, fn);
	nt = ref_split(topic, strlen(topic), tl, tn);
	if (topic[0] == '$' && (filter[0] == '+' || filter[0] == '#'))
		return false;
	for (size_t i = 0; i < nf; i++) {
		bool plus = fn[i] == 1 && fl[i][0] == '+';

		if (fn[i] == 1 && fl[i][0] == '#')
			return true;
		if (i >= nt)
			return false;
		if (!plus && (fn[i] != tn[i] || memcmp(fl[i], tl[i], fn[i]) != 0))
			return false;
	}
	return nf == nt;
}

static const char *ref_plain(const char *match)
{
	if (strncmp(match, "$share/", 7) == 0)
		return strchr(match + 7, '/') + 1;
	return match;
}

/* The rules that apply, by walking them in order. */
static size_t ref_rules(const struct rule_spec *specs, size_t n, const char *topic, size_t *out)
{
	size_t m = 0;

	for (size_t i = 0; i < n; i++) {
		if (!ref_match(ref_plain(specs[i].match), topic))
			continue;
		out[m++] = i;
		if (!specs[i].cont)
			break;
	}
	return m;
}

/* A deterministic generator (splitmix64). */
static uint64_t prng_state;

static uint64_t prng(void)
{
	uint64_t z = (prng_state += 0x9E3779B97F4A7C15ull);

	z = (z ^ (z >> 30)) * 0xBF58476D1CE4E5B9ull;
	z = (z ^ (z >> 27)) * 0x94D049BB133111EBull;
	return z ^ (z >> 31);
}

static unsigned prng_below(unsigned n)
{
	return (unsigned)(prng() % n);
}

static const char *const alphabet[] = { "a", "b", "c", "$x", "" };

/* A random valid filter of 1-5 levels into buf. */
static void random_filter(char *buf, size_t size)
{
	do {
		unsigned levels = 1 + prng_below(5);
		size_t len = 0;

		buf[0] = '\0';
		for (unsigned k = 0; k < levels; k++) {
			unsigned pick = prng_below(10);
			const char *lv;

			if (pick == 0 && k + 1 == levels)
				lv = "#";
			else if (pick <= 2)
				lv = "+";
			else
				lv = alphabet[prng_below(5)];
			len += (size_t)snprintf(buf + len, size - len, "%s%s", k > 0 ? "/" : "", lv);
		}
	} while (buf[0] == '\0');
}

/* A random valid topic name of 1-6 levels into buf. */
static void random_topic(char *buf, size_t size)
{
	static const char *const words[] = { "a", "b", "c", "$x", "", "d", "$y" };

	do {
		unsigned levels = 1 + prng_below(6);
		size_t len = 0;

		buf[0] = '\0';
		for (unsigned k = 0; k < levels; k++)
			len += (size_t)snprintf(buf + len, size - len, "%s%s", k > 0 ? "/" : "",
			                        words[prng_below(7)]);
	} while (buf[0] == '\0');
}

/* Checks rules_match() against ref_rules() for one topic. */
static void match_vs_ref(const struct rules *rs, const struct rule_spec *specs, size_t n,
                         const char *topic)
{
	const struct rule **got = calloc(n + 1, sizeof(*got));
	size_t *want = calloc(n + 1, sizeof(*want));
	size_t ng, nw;

	CHECK(got != NULL && want != NULL, "out of memory");
	CHECK(rules_max_matches(rs) <= n, "max_matches %zu", rules_max_matches(rs));
	ng = rules_match(rs, topic, strlen(topic), got, n + 1);
	nw = ref_rules(specs, n, topic, want);
	CHECK(ng <= rules_max_matches(rs), "%zu matches, more than max_matches", ng);
	if (ng != nw) {
		for (size_t i = 0; i < n; i++)
			fprintf(stderr, "rule %zu: %s%s\n", i + 1, specs[i].match,
			        specs[i].cont ? " (continue)" : "");
	}
	CHECK(ng == nw, "topic '%s': %zu rules match, the reference says %zu", topic, ng, nw);
	for (size_t k = 0; k < ng; k++)
		CHECK(got[k]->index == want[k] + 1, "topic '%s': match %zu is rule %zu, not %zu",
		              topic, k, got[k]->index, want[k] + 1);
	free(got);
	free(want);
}

/* ------------------------------------------------------------------------ */
/* Compilation */

START_TEST(test_compile_basic)
{
	static const struct rules_field hdr[] = {
		{ .name = "kind", .kind = RV_STRING, .s = "temperature" },
		{ .name = "rate", .kind = RV_INT, .i = -10 },
		{ .name = "ok", .kind = RV_BOOL, .b = true },
	};
	const struct rule_spec specs[] = {
		{ .line = 10, .match = "sensors/+/temperature", .exchange = "telemetry",
		  .routing_key = "temp.{1}", .headers = hdr, .n_headers = 3,
		  .persistent = RULE_PERSIST_YES },
		{ .line = 20, .match = "$share/grp/alarms/#", .exchange = "", .cont = true },
		{ .line = 30, .match = "junk/#", .drop = true },
	};
	struct msgs m = { 0 };
	struct rules *rs = compile(specs, 3, &m);
	const struct rule *r;

	ck_assert_ptr_nonnull(rs);
	ck_assert_uint_eq(m.n_err, 0);
	ck_assert_uint_eq(m.n_warn, 0);
	ck_assert_uint_eq(rules_count(rs), 3);
	r = rules_at(rs, 0);
	ck_assert_uint_eq(r->index, 1);
	ck_assert_int_eq(r->line, 10);
	ck_assert_str_eq(r->match, "sensors/+/temperature");
	ck_assert_str_eq(r->filter, "sensors/+/temperature");
	ck_assert_str_eq(r->exchange, "telemetry");
	ck_assert_uint_eq(r->exchange_len, 9);
	ck_assert_uint_eq(r->n_plus, 1);
	ck_assert(!r->has_hash);
	ck_assert_int_eq(r->persistent, RULE_PERSIST_YES);
	ck_assert_uint_eq(r->n_headers, 3);
	ck_assert_str_eq(r->headers[0].name, "kind");
	ck_assert_str_eq(r->headers[0].s, "temperature");
	ck_assert(r->headers[0].s != hdr[0].s);
	ck_assert_int_eq(r->headers[1].i, -10);
	ck_assert(r->headers[2].b);
	ck_assert_uint_eq(r->n_parts, 2);
	ck_assert_int_eq(r->parts[0].kind, RP_LITERAL);
	ck_assert_str_eq(r->parts[0].text, "temp.");
	ck_assert_int_eq(r->parts[1].kind, RP_LEVEL);
	ck_assert_uint_eq(r->parts[1].level, 1);
	r = rules_at(rs, 1);
	ck_assert_str_eq(r->match, "$share/grp/alarms/#");
	ck_assert_str_eq(r->filter, "alarms/#");
	ck_assert_str_eq(r->exchange, "");
	ck_assert_uint_eq(r->exchange_len, 0);
	ck_assert(r->has_hash);
	ck_assert(r->cont);
	ck_assert_ptr_null(r->routing_key);
	ck_assert_uint_eq(r->n_parts, 0);
	r = rules_at(rs, 2);
	ck_assert(r->drop);
	ck_assert_ptr_null(r->exchange);
	ck_assert_ptr_null(rules_at(rs, 3));
	rules_free(rs);
	msgs_clear(&m);
}
END_TEST

START_TEST(test_compile_empty)
{
	struct msgs m = { 0 };
	struct rules *rs = compile(NULL, 0, &m);
	const struct rule *out[1];
	const char *dummy = "x";
	const char **subs = &dummy;

	ck_assert_ptr_nonnull(rs);
	ck_assert_uint_eq(rules_count(rs), 0);
	ck_assert_uint_eq(rules_max_matches(rs), 0);
	ck_assert_uint_eq(rules_match(rs, "a/b", 3, out, 1), 0);
	ck_assert_uint_eq(rules_subscriptions(rs, &subs), 0);
	ck_assert_ptr_null(subs);
	rules_free(rs);
	rules_free(NULL);
}
END_TEST

START_TEST(test_error_match)
{
	const struct rule_spec bad[] = {
		{ .line = 3, .match = "a/#/b" },
		{ .line = 4, .match = "a+" },
		{ .line = 5, .match = "" },
		{ .line = 6, .match = "$share/g" },
		{ .line = 7, .match = "$share//a" },
		{ .line = 8, .match = "$share/g+/a" },
		{ .line = 9, .match = "$share/g/" },
		{ .line = 10, .match = "$share/g/a/#/b" },
		{ .line = 11, .match = NULL },
	};

	one_error(&bad[0], "rule 1 (match 'a/#/b'): ", "not a valid MQTT topic filter");
	one_error(&bad[1], "rule 1 (match 'a+'): ", "not a valid MQTT topic filter");
	one_error(&bad[2], "rule 1 (match ''): ", "empty");
	one_error(&bad[3], "rule 1 (match '$share/g'): ", "$share/GROUP/FILTER");
	one_error(&bad[4], "rule 1 (match '$share//a'): ", "share group must be non-empty");
	one_error(&bad[5], "rule 1 (match '$share/g+/a'): ", "free of '+' and '#'");
	one_error(&bad[6], "rule 1 (match '$share/g/'): ", "needs a filter after its group");
	one_error(&bad[7], "rule 1 (match '$share/g/a/#/b'): ", "not a valid MQTT topic filter");
	one_error(&bad[8], "rule 1 (no match): ", "needs a match");
}
END_TEST

/* A long match is quoted cut short, so that a message stays readable. */
START_TEST(test_error_long_match_quoted_short)
{
	char f[400];
	struct rule_spec spec = { .line = 1, .match = f };
	struct msgs m = { 0 };

	memset(f, 'x', sizeof(f) - 2);
	f[sizeof(f) - 2] = '+';
	f[sizeof(f) - 1] = '\0';
	ck_assert_ptr_null(compile(&spec, 1, &m));
	ck_assert_uint_eq(m.n_err, 1);
	ck_assert_ptr_nonnull(strstr(m.err[0].msg, "xxx...'): not a valid MQTT topic filter"));
	ck_assert_uint_lt(strlen(m.err[0].msg), 300);
	msgs_clear(&m);
}
END_TEST

START_TEST(test_error_template)
{
	const struct rule_spec bad[] = {
		{ .line = 1, .match = "a/+", .routing_key = "x.{1" },
		{ .line = 2, .match = "a/+", .routing_key = "x}.{1}" },
		{ .line = 3, .match = "a/+", .routing_key = "x.{foo}" },
		{ .line = 4, .match = "a/+", .routing_key = "x.{}" },
		{ .line = 5, .match = "a/+", .routing_key = "x.{0}" },
		{ .line = 6, .match = "a/+/+", .routing_key = "x.{3}" },
		{ .line = 7, .match = "a/+", .routing_key = "x.{#}" },
		{ .line = 8, .match = "a/+", .routing_key = "{Topic}" },
		{ .line = 9, .match = "a/+", .routing_key = "{99999999999999999999}" },
	};

	one_error(&bad[0], "rule 1 (match 'a/+'): routing_key 'x.{1'", "is never closed");
	one_error(&bad[1], "rule 1 (match 'a/+'): routing_key 'x}.{1}'", "stray '}' at offset 1");
	one_error(&bad[2], "rule 1 (match 'a/+'): routing_key 'x.{foo}'", "unknown placeholder '{foo}'");
	one_error(&bad[3], "rule 1 (match 'a/+'): routing_key 'x.{}'", "unknown placeholder '{}'");
	one_error(&bad[4], "rule 1 (match 'a/+'): routing_key: {0}", "count from {1}");
	one_error(&bad[5], "rule 1 (match 'a/+/+'): routing_key: {3}", "has 2 '+' levels");
	one_error(&bad[6], "rule 1 (match 'a/+'): routing_key: {#}", "does not end in '#'");
	one_error(&bad[7], "rule 1 (match 'a/+'): routing_key '{Topic}'", "unknown placeholder");
	one_error(&bad[8], "rule 1 (match 'a/+'): routing_key: {99999999999999999999}",
	          "has 1 '+' level");
}
END_TEST

/* Every problem of one template is reported, not just the first. */
START_TEST(test_error_template_all_reported)
{
	const struct rule_spec spec = { .line = 4, .match = "a/+", .routing_key = "{2}}{x}{#}{1" };
	struct msgs m = { 0 };

	ck_assert_ptr_null(compile(&spec, 1, &m));
	ck_assert_uint_eq(m.n_err, 5);
	ck_assert(has_report(m.err, m.n_err, "{2} but the filter has 1 '+' level", NULL));
	ck_assert(has_report(m.err, m.n_err, "stray '}'", NULL));
	ck_assert(has_report(m.err, m.n_err, "unknown placeholder '{x}'", NULL));
	ck_assert(has_report(m.err, m.n_err, "{#} but", NULL));
	ck_assert(has_report(m.err, m.n_err, "never closed", NULL));
	msgs_clear(&m);
}
END_TEST

START_TEST(test_error_strip_prefix)
{
	const struct rule_spec bad[] = {
		{ .line = 1, .match = "site1/+/t", .strip_prefix = "site1/x" },
		{ .line = 2, .match = "+/t", .strip_prefix = "s" },
		{ .line = 3, .match = "a/b", .strip_prefix = "a/bc" },
		{ .line = 4, .match = "$share/g/s/#", .strip_prefix = "$share/" },
	};
	const struct rule_spec good[] = {
		{ .line = 1, .match = "site1/+/t", .strip_prefix = "site1/" },
		{ .line = 2, .match = "site2/+/t", .strip_prefix = "sit" },
		{ .line = 3, .match = "a/b", .strip_prefix = "a/b" },
		{ .line = 4, .match = "$share/g/s/#", .strip_prefix = "s/" },
		{ .line = 5, .match = "x/#", .strip_prefix = "" },
	};
	struct msgs m = { 0 };
	struct rules *rs;

	one_error(&bad[0], "rule 1 (match 'site1/+/t'): strip_prefix 'site1/x'",
	          "does not start every topic the filter accepts (it must be a prefix of 'site1/')");
	one_error(&bad[1], "rule 1 (match '+/t'): strip_prefix 's'", "prefix of ''");
	one_error(&bad[2], "rule 1 (match 'a/b'): strip_prefix 'a/bc'", "prefix of 'a/b'");
	one_error(&bad[3], "rule 1 (match '$share/g/s/#'): strip_prefix '$share/'", "prefix of 's/'");
	rs = compile(good, 5, &m);
	dump(&m);
	ck_assert_ptr_nonnull(rs);
	rules_free(rs);
	msgs_clear(&m);
}
END_TEST

START_TEST(test_error_drop)
{
	static const struct rules_field hdr[] = { { .name = "k", .kind = RV_BOOL, .b = true } };
	const struct rule_spec all = {
		.line = 7, .match = "a", .drop = true, .cont = true, .exchange = "x", .routing_key = "k",
		.key_prefix = "p", .strip_prefix = "a", .persistent = RULE_PERSIST_NO, .headers = hdr,
		.n_headers = 1,
	};
	const struct rule_spec one = { .line = 8, .match = "a", .drop = true, .exchange = "" };

	one_error(&all, "rule 1 (match 'a'): drop excludes every other action",
	          "continue, exchange, routing_key, key_prefix, strip_prefix, persistent, headers");
	one_error(&one, "rule 1 (match 'a'): drop excludes every other action", "also sets exchange");
}
END_TEST

START_TEST(test_error_lengths)
{
	char s256[257], s200[201], t[300], r60[64];
	struct rule_spec ex = { .line = 1, .match = "a", .exchange = s256 };
	struct rule_spec kp = { .line = 1, .match = "a", .key_prefix = s256 };
	struct rule_spec lit = { .line = 1, .match = "a/+", .routing_key = t };
	struct rule_spec both = { .line = 1, .match = "a/+", .routing_key = r60, .key_prefix = s200 };
	struct rule_spec fits = { .line = 1, .match = "a/+", .key_prefix = s200 };
	struct msgs m = { 0 };
	struct rules *rs;

	memset(s256, 'e', 256);
	s256[256] = '\0';
	memset(s200, 'p', 200);
	s200[200] = '\0';
	/* 254 literal bytes, {{ and }} count as one each: 256. */
	memset(t, 'l', 254);
	strcpy(t + 254, "{{{1}}}");
	/* {1} and 56 literal bytes. */
	strcpy(r60, "{1}");
	memset(r60 + 3, 'r', 56);
	r60[59] = '\0';
	one_error(&ex, "rule 1 (match 'a'): exchange is 256 bytes long", "at most 255");
	one_error(&kp, "rule 1 (match 'a'): key_prefix is 256 bytes long", "at most 255");
	one_error(&lit, "rule 1 (match 'a/+'): routing_key: its literal text alone is 256 bytes",
	          "at most 255");
	s200[199] = '\0';
	rs = compile(&both, 1, &m);
	dump(&m);
	ck_assert_ptr_nonnull(rs);
	rules_free(rs);
	s200[199] = 'p';
	one_error(&both, "rule 1 (match 'a/+'): key_prefix and the routing_key's literal text together "
	          "are 256 bytes", "at most 255");
	rs = compile(&fits, 1, &m);
	ck_assert_ptr_nonnull(rs);
	rules_free(rs);
	msgs_clear(&m);
}
END_TEST

START_TEST(test_error_headers)
{
	char longname[300];
	struct rules_field empty[] = { { .name = "", .kind = RV_INT, .i = 1 } };
	struct rules_field toolong[] = { { .name = longname, .kind = RV_INT, .i = 1 } };
	struct rules_field twice[] = {
		{ .name = "kind", .kind = RV_STRING, .s = "a" },
		{ .name = "other", .kind = RV_BOOL, .b = false },
		{ .name = "kind", .kind = RV_INT, .i = 2 },
	};
	struct rule_spec e = { .line = 2, .match = "a", .headers = empty, .n_headers = 1 };
	struct rule_spec l = { .line = 2, .match = "a", .headers = toolong, .n_headers = 1 };
	struct rule_spec t = { .line = 2, .match = "a", .headers = twice, .n_headers = 3 };

	memset(longname, 'h', 256);
	longname[256] = '\0';
	one_error(&e, "rule 1 (match 'a'): header 1", "has an empty name");
	one_error(&l, "rule 1 (match 'a'): header 'hhh", "has a name of 256 bytes (at most 255)");
	one_error(&t, "rule 1 (match 'a'): header 'kind'", "is given twice");
	{
		struct rules_field cc[] = { { .name = "CC", .kind = RV_STRING, .s = "x.y" } };
		struct rules_field bcc[] = { { .name = "BCC", .kind = RV_STRING, .s = "x.y" } };
		struct rules_field low[] = { { .name = "cc", .kind = RV_STRING, .s = "x.y" } };
		struct rule_spec c = { .line = 2, .match = "a", .headers = cc, .n_headers = 1 };
		struct rule_spec b = { .line = 2, .match = "a", .headers = bcc, .n_headers = 1 };
		struct rule_spec ok = { .line = 2, .match = "a", .headers = low, .n_headers = 1 };
		struct rules *rs;

		one_error(&c, "rule 1 (match 'a'): header 'CC'", "list of further routing keys");
		one_error(&b, "rule 1 (match 'a'): header 'BCC'", "list of further routing keys");
		/* RabbitMQ compares the names exactly. */
		rs = rules_compile(&ok, 1, ".", NULL, 0, NULL, NULL, NULL);
		ck_assert_ptr_nonnull(rs);
		rules_free(rs);
	}
}
END_TEST

/* Every error of every rule is reported, each with its own rule and line. */
START_TEST(test_error_every_one_reported)
{
	const struct rule_spec specs[] = {
		{ .line = 10, .match = "ok/1" },
		{ .line = 11, .match = "a/#/b" },
		{ .line = 12, .match = "ok/2" },
		{ .line = 13, .match = "c/+", .routing_key = "{2}", .drop = true },
		{ .line = 14, .match = "d", .strip_prefix = "e" },
	};
	struct msgs m = { 0 };

	ck_assert_ptr_null(compile(specs, 5, &m));
	ck_assert_uint_eq(m.n_err, 4);
	ck_assert_int_eq(m.err[0].line, 11);
	ck_assert(has_report(m.err, m.n_err, "rule 2 (match 'a/#/b'): not a valid", NULL));
	ck_assert(has_report(m.err, m.n_err, "rule 4 (match 'c/+'): drop excludes", "routing_key", NULL));
	ck_assert(has_report(m.err, m.n_err, "rule 4 (match 'c/+'): routing_key: {2}", NULL));
	ck_assert(has_report(m.err, m.n_err, "rule 5 (match 'd'): strip_prefix 'e'", NULL));
	for (size_t i = 0; i < m.n_err; i++)
		ck_assert_int_eq(m.err[i].line, strncmp(m.err[i].msg, "rule 2 ", 7) == 0 ? 11 :
		                 strncmp(m.err[i].msg, "rule 4 ", 7) == 0 ? 13 : 14);
	ck_assert_uint_eq(m.n_warn, 0);
	msgs_clear(&m);
}
END_TEST

/* ------------------------------------------------------------------------ */
/* Keys */

/* The key of `topic` under a one-rule set built from `spec`, which must match it. */
static enum topic_result key_of(const struct rule_spec *spec, const char *topic, const char *repl,
                                char key[TOPIC_KEY_MAX + 1], size_t *klen)
{
	struct msgs m = { 0 };
	struct rules *rs = compile(spec, 1, &m);
	const struct rule *out[1];
	enum topic_result r;

	dump(&m);
	ck_assert_ptr_nonnull(rs);
	ck_assert_msg(rules_match(rs, topic, strlen(topic), out, 1) == 1, "'%s' does not match '%s'",
	              topic, spec->match);
	r = rules_key(out[0], topic, strlen(topic), repl, key, klen);
	rules_free(rs);
	msgs_clear(&m);
	return r;
}

static void key_is(const char *match, const char *tmpl, const char *strip, const char *kprefix,
                   const char *topic, const char *repl, const char *want)
{
	struct rule_spec spec = { .line = 1, .match = match, .routing_key = tmpl,
	                          .strip_prefix = strip, .key_prefix = kprefix };
	char key[TOPIC_KEY_MAX + 1];
	size_t klen = 9999;
	enum topic_result r = key_of(&spec, topic, repl, key, &klen);

	ck_assert_msg(r == TOPIC_OK, "'%s' under '%s': %s", topic, tmpl ? tmpl : "(none)",
	              topic_strerror(r));
	ck_assert_str_eq(key, want);
	ck_assert_uint_eq(klen, strlen(want));
}

START_TEST(test_key_levels)
{
	key_is("sensors/+/temperature", "temp.{1}", NULL, NULL, "sensors/d1/temperature", ".",
	       "temp.d1");
	key_is("s/+/x/+", "{2}-{1}", NULL, NULL, "s/a/x/b", ".", "b-a");
	key_is("s/+/x/+", "{1}{1}", NULL, NULL, "s/ab/x/b", ".", "abab");
	/* An empty level is an empty placeholder. */
	key_is("s/+/x/+", "[{1}][{2}]", NULL, NULL, "s//x/z", ".", "[][z]");
	key_is("+", "k.{1}", NULL, NULL, "top", ".", "k.top");
}
END_TEST

START_TEST(test_key_tail)
{
	key_is("a/#", "t.{#}", NULL, NULL, "a", ".", "t.");
	key_is("a/#", "t.{#}", NULL, NULL, "a/b", ".", "t.b");
	key_is("a/#", "t.{#}", NULL, NULL, "a/b/c/d", ".", "t.b.c.d");
	key_is("a/#", "t.{#}", NULL, NULL, "a/", ".", "t.");
	key_is("a/#", "t.{#}", NULL, NULL, "a//x", ".", "t..x");
	key_is("#", "{#}", NULL, NULL, "x/y", ".", "x.y");
	key_is("+/+/#", "{2}:{#}:{1}", NULL, NULL, "p/q/r/s", ".", "q:r.s:p");
}
END_TEST

START_TEST(test_key_topic_and_braces)
{
	key_is("a/+", "all.{topic}", NULL, NULL, "a/b", ".", "all.a.b");
	key_is("a/+", "{{{1}}}", NULL, NULL, "a/b", ".", "{b}");
	key_is("a/+", "x{{y}}z", NULL, NULL, "a/b", ".", "x{y}z");
	key_is("a/+", "fixed.key", NULL, NULL, "a/b", ".", "fixed.key");
	key_is("a/+", "", NULL, "pre.", "a/b", ".", "pre.");
	key_is("a/+", NULL, NULL, NULL, "a/b", ".", "a.b");
}
END_TEST

/* Dots inside levels are translated as the default translation does; literal text is not. */
START_TEST(test_key_dot_replacement)
{
	key_is("a/+", "x.{1}", NULL, NULL, "a/v1.2", "_", "x.v1_2");
	key_is("a/+", "x.{1}", NULL, NULL, "a/v1.2", ".", "x.v1.2");
	key_is("a/#", "{#}", NULL, NULL, "a/b.c/d", "%2E", "b%2Ec.d");
	key_is("a/+", "{topic}", NULL, NULL, "a/b.c", "", "a.bc");
	key_is("a.b/+", NULL, NULL, NULL, "a.b/c", "_", "a_b.c");
}
END_TEST

START_TEST(test_key_strip_prefix)
{
	key_is("site1/+/t", NULL, "site1/", NULL, "site1/d/t", ".", "d.t");
	key_is("site1/+/t", "k.{topic}", "site1/", NULL, "site1/d/t", ".", "k.d.t");
	/* Placeholders for levels still count from the whole topic. */
	key_is("site1/+/t", "{1}", "site1/", NULL, "site1/d/t", ".", "d");
	key_is("site1/#", "[{topic}]", "site1/", NULL, "site1/x", ".", "[x]");
	/* '#' matching the parent level: the topic lacks the prefix, nothing is left. */
	key_is("site1/#", "[{topic}]", "site1/", NULL, "site1", ".", "[]");
	key_is("site1/#", NULL, "site1/", "p.", "site1", ".", "p.");
	key_is("a/b", NULL, "a/b", "p", "a/b", ".", "p");
}
END_TEST

START_TEST(test_key_prefix)
{
	key_is("a/+", NULL, NULL, "plant1.", "a/b", ".", "plant1.a.b");
	key_is("a/+", "x.{1}", NULL, "plant1.", "a/b", ".", "plant1.x.b");
	key_is("s/+", "{topic}", "s/", "p.", "s/v.1", "_", "p.v_1");
}
END_TEST

START_TEST(test_key_too_long)
{
	char topic[400], want[300];
	struct rule_spec spec = { .line = 1, .match = "a/+", .routing_key = "{1}", .key_prefix = "pp" };
	char key[TOPIC_KEY_MAX + 1];
	size_t klen = 9999;

	strcpy(topic, "a/");
	memset(topic + 2, 'z', 253);
	topic[255] = '\0';
	/* 2 + 253 = 255: fits exactly. */
	ck_assert_int_eq(key_of(&spec, topic, ".", key, &klen), TOPIC_OK);
	ck_assert_uint_eq(klen, 255);
	memcpy(want, "pp", 2);
	memset(want + 2, 'z', 253);
	want[255] = '\0';
	ck_assert_str_eq(key, want);
	/* One more byte does not. */
	topic[255] = 'z';
	topic[256] = '\0';
	ck_assert_int_eq(key_of(&spec, topic, ".", key, &klen), TOPIC_ERR_TOO_LONG);
	ck_assert_str_eq(key, "");
	/* The length it would have had, for the dead-letter detail. */
	ck_assert_uint_eq(klen, 256);
	/* A replacement that grows the key past 255. */
	spec.key_prefix = NULL;
	memset(topic + 2, '.', 130);
	topic[132] = '\0';
	ck_assert_int_eq(key_of(&spec, topic, "..", key, &klen), TOPIC_ERR_TOO_LONG);
	ck_assert_uint_eq(klen, 260);
	ck_assert_int_eq(key_of(&spec, topic, ".", key, &klen), TOPIC_OK);
	ck_assert_uint_eq(klen, 130);
}
END_TEST

START_TEST(test_key_default_and_bad_topics)
{
	char key[TOPIC_KEY_MAX + 1];
	size_t klen = 9999;
	struct rule_spec spec = { .line = 1, .match = "#", .routing_key = "fixed" };
	struct msgs m = { 0 };
	struct rules *rs = compile(&spec, 1, &m);
	const struct rule *r = rules_at(rs, 0);

	ck_assert_int_eq(rules_key(NULL, "a/b.c", 5, "_", key, &klen), TOPIC_OK);
	ck_assert_str_eq(key, "a.b_c");
	ck_assert_uint_eq(klen, 5);
	ck_assert_int_eq(rules_key(r, "a/+", 3, ".", key, &klen), TOPIC_ERR_WILDCARD);
	ck_assert_str_eq(key, "");
	ck_assert_uint_eq(klen, 0);
	ck_assert_int_eq(rules_key(r, "a\0b", 3, ".", key, &klen), TOPIC_ERR_NUL);
	ck_assert_int_eq(rules_key(r, "", 0, ".", key, NULL), TOPIC_ERR_EMPTY);
	ck_assert_int_eq(rules_key(r, "a/b", 3, ".", key, NULL), TOPIC_OK);
	ck_assert_str_eq(key, "fixed");
	rules_free(rs);
	msgs_clear(&m);
}
END_TEST

/* ------------------------------------------------------------------------ */
/* Warnings */

START_TEST(test_warn_shadowed)
{
	const struct rule_spec specs[] = {
		{ .line = 11, .match = "x/y" },
		{ .line = 14, .match = "a/#" },
		{ .line = 15, .match = "b/+", .cont = true },
		{ .line = 16, .match = "c/+/d" },
		{ .line = 17, .match = "a/b" },
		{ .line = 18, .match = "b/c" },
		{ .line = 19, .match = "c/e/d", .drop = true },
		{ .line = 20, .match = "c/e/#" },
		{ .line = 21, .match = "$share/g/x/y" },
	};
	struct msgs m = { 0 };
	struct rules *rs = compile(specs, 9, &m);

	ck_assert_ptr_nonnull(rs);
	if (m.n_warn != 3)
		dump(&m);
	ck_assert_uint_eq(m.n_warn, 3);
	ck_assert_int_eq(m.warn[0].line, 17);
	ck_assert_str_eq(m.warn[0].msg, "rule 5 (match 'a/b'): can never match: rule 2 (match 'a/#', "
	                 "line 14) matches every topic it does and has no continue");
	ck_assert_int_eq(m.warn[1].line, 19);
	ck_assert(has_report(m.warn, m.n_warn, "rule 7 (match 'c/e/d'): can never match: rule 4 "
	                     "(match 'c/+/d', line 16)", NULL));
	ck_assert(has_report(m.warn, m.n_warn, "rule 9 (match '$share/g/x/y'): can never match: rule 1 "
	                     "(match 'x/y', line 11)", NULL));
	/* Not rule 6 (rule 3 has continue), not rule 8 (c/e is not all of c/e/#). */
	ck_assert(!has_report(m.warn, m.n_warn, "rule 6 ", NULL));
	ck_assert(!has_report(m.warn, m.n_warn, "rule 8 ", NULL));
	rules_free(rs);
	msgs_clear(&m);
}
END_TEST

/* The first rule that hides a later one is named, and subtle covers are found. */
START_TEST(test_warn_shadowed_subtle)
{
	const struct rule_spec specs[] = {
		{ .line = 1, .match = "+/#" },
		{ .line = 2, .match = "#" },
		{ .line = 3, .match = "$SYS/x" },
		{ .line = 4, .match = "$SYS/#" },
		{ .line = 5, .match = "$SYS/x" },
		{ .line = 6, .match = "q" },
	};
	struct msgs m = { 0 };
	struct rules *rs = compile(specs, 6, &m);

	ck_assert_ptr_nonnull(rs);
	if (m.n_warn != 3)
		dump(&m);
	ck_assert_uint_eq(m.n_warn, 3);
	ck_assert(has_report(m.warn, m.n_warn, "rule 2 (match '#'): can never match: rule 1 ", NULL));
	ck_assert(has_report(m.warn, m.n_warn, "rule 5 (match '$SYS/x'): can never match: rule 3 ",
	                     NULL));
	ck_assert(has_report(m.warn, m.n_warn, "rule 6 (match 'q'): can never match: rule 1 ", NULL));
	rules_free(rs);
	msgs_clear(&m);
}
END_TEST

START_TEST(test_warn_unsubscribed)
{
	const struct rule_spec specs[] = {
		{ .line = 1, .match = "fleet/+/t", .cont = true },
		{ .line = 2, .match = "other/#" },
		{ .line = 3, .match = "#", .cont = true },
		{ .line = 4, .match = "$share/g/fleet/x/t" },
		{ .line = 5, .match = "$SYS/#" },
	};
	const char *const subs[] = { "fleet/#", "$share/q/z/+" };
	struct msgs m = { 0 };
	struct rules *rs = compile_subs(specs, 5, subs, 2, &m);

	ck_assert_ptr_nonnull(rs);
	if (m.n_warn != 2)
		dump(&m);
	ck_assert_uint_eq(m.n_warn, 2);
	ck_assert_int_eq(m.warn[0].line, 2);
	ck_assert_str_eq(m.warn[0].msg, "rule 2 (match 'other/#'): overlaps none of the subscriptions "
	                 "(mqtt.subscribe), so no message can reach it");
	ck_assert(has_report(m.warn, m.n_warn, "rule 5 (match '$SYS/#'): overlaps none", NULL));
	rules_free(rs);
	/* Without explicit subscriptions there is nothing to compare with. */
	rs = compile(specs, 5, &m);
	ck_assert_uint_eq(m.n_warn, 0);
	rules_free(rs);
	msgs_clear(&m);
}
END_TEST

/* ------------------------------------------------------------------------ */
/* Filters */

START_TEST(test_filter_matches)
{
	static const struct {
		const char *f, *t;
		bool want;
	} cases[] = {
		{ "a/b", "a/b", true }, { "a/b", "a/c", false }, { "a/b", "a/b/c", false },
		{ "a/+", "a/b", true }, { "a/+", "a", false }, { "a/+", "a/", true },
		{ "a/#", "a", true }, { "a/#", "a/b/c", true }, { "a/#", "ab", false },
		{ "#", "x", true }, { "#", "$SYS/x", false }, { "+/x", "$SYS/x", false },
		{ "$SYS/#", "$SYS/x", true }, { "$SYS/+", "$SYS/x", true }, { "a//b", "a//b", true },
		{ "a/+/b", "a//b", true }, { "+", "/", false }, { "+/+", "/", true }, { "/#", "/", true },
		{ "a/b", "", false },
	};

	for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++)
		ck_assert_msg(rules_filter_matches(cases[i].f, cases[i].t, strlen(cases[i].t)) ==
		              cases[i].want, "'%s' vs '%s'", cases[i].f, cases[i].t);
	/* Not NUL-terminated: only tlen bytes count. */
	ck_assert(rules_filter_matches("a/b", "a/bc", 3));
}
END_TEST

START_TEST(test_filter_covers_cases)
{
	static const struct {
		const char *a, *b;
		bool want;
	} cases[] = {
		{ "a/#", "a/b", true }, { "a/#", "a", true }, { "a/#", "a/+/#", true },
		{ "a/+", "a/#", false }, { "a/+/#", "a/#", false }, { "+/#", "#", true },
		{ "#", "+/#", true }, { "#", "$SYS/a", false }, { "+/a", "$x/a", false },
		{ "$x/#", "$x/a", true }, { "+", "a", true }, { "a", "+", false }, { "a/b", "a/b", true },
		{ "a/b", "a/c", false }, { "+/+", "a/+", true }, { "a/+", "+/+", false },
		{ "+/+/#", "#", false }, { "+", "#", false }, { "a/#", "a/#", true }, { "#", "#", true },
	};

	for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++)
		ck_assert_msg(rules_filter_covers(cases[i].a, cases[i].b) == cases[i].want,
		              "covers('%s', '%s')", cases[i].a, cases[i].b);
}
END_TEST

START_TEST(test_filter_overlap_cases)
{
	static const struct {
		const char *a, *b;
		bool want;
	} cases[] = {
		{ "a/+", "+/b", true }, { "a/+", "b/+", false }, { "a", "a/#", true },
		{ "a", "a/+", false }, { "#", "$SYS/x", false }, { "$SYS/#", "$SYS/x", true },
		{ "+/x", "$SYS/+", false }, { "#", "#", true }, { "a/b/c", "a/+/c", true },
		{ "a/b/c", "a/+", false }, { "+", "+/+", false }, { "+/#", "a", true },
	};

	for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
		ck_assert_msg(rules_filters_overlap(cases[i].a, cases[i].b) == cases[i].want,
		              "overlap('%s', '%s')", cases[i].a, cases[i].b);
		ck_assert_msg(rules_filters_overlap(cases[i].b, cases[i].a) == cases[i].want,
		              "overlap('%s', '%s')", cases[i].b, cases[i].a);
	}
}
END_TEST

/*
 * Every filter of up to three levels over {a, $x, "", +, #} against every
 * topic of up to four levels over {a, $x, "", z, $z}: enough topics to
 * tell covering and overlapping apart exactly (z and $z stand for any
 * level no filter names; a fourth level for any deeper topic).
 */
#define EX_FILTERS 128
#define EX_TOPICS 800

struct exhaustive {
	char filters[EX_FILTERS][16];
	size_t n_filters;
	char topics[EX_TOPICS][16];
	size_t n_topics;
	bool m[EX_FILTERS][EX_TOPICS];
};

static void ex_filters(struct exhaustive *ex, char *buf, size_t len, unsigned level)
{
	static const char *const lv[] = { "a", "$x", "", "+", "#" };

	for (size_t k = 0; k < 5; k++) {
		size_t n = len + (size_t)sprintf(buf + len, "%s%s", level > 0 ? "/" : "", lv[k]);

		if (n > 0) {
			ck_assert_uint_lt(ex->n_filters, EX_FILTERS);
			ck_assert_int_eq(topic_filter_check(buf), TOPIC_OK);
			strcpy(ex->filters[ex->n_filters++], buf);
		}
		if (k != 4 && level < 2)
			ex_filters(ex, buf, n, level + 1);
	}
}

static void ex_topics(struct exhaustive *ex, char *buf, size_t len, unsigned level)
{
	static const char *const lv[] = { "a", "$x", "", "z", "$z" };

	for (size_t k = 0; k < 5; k++) {
		size_t n = len + (size_t)sprintf(buf + len, "%s%s", level > 0 ? "/" : "", lv[k]);

		if (n > 0) {
			ck_assert_uint_lt(ex->n_topics, EX_TOPICS);
			strcpy(ex->topics[ex->n_topics++], buf);
		}
		if (level < 3)
			ex_topics(ex, buf, n, level + 1);
	}
}

static struct exhaustive *ex_build(void)
{
	struct exhaustive *ex = calloc(1, sizeof(*ex));
	char buf[32];

	ck_assert_ptr_nonnull(ex);
	ex_filters(ex, buf, 0, 0);
	ex_topics(ex, buf, 0, 0);
	for (size_t f = 0; f < ex->n_filters; f++) {
		for (size_t t = 0; t < ex->n_topics; t++)
			ex->m[f][t] = ref_match(ex->filters[f], ex->topics[t]);
	}
	return ex;
}

START_TEST(test_filters_exhaustive)
{
	struct exhaustive *ex = ex_build();

	ck_assert_uint_eq(ex->n_filters, 104);
	ck_assert_uint_eq(ex->n_topics, 779);
	for (size_t f = 0; f < ex->n_filters; f++) {
		for (size_t t = 0; t < ex->n_topics; t++)
			CHECK(rules_filter_matches(ex->filters[f], ex->topics[t],
			                                   strlen(ex->topics[t])) == ex->m[f][t],
			              "'%s' vs '%s'", ex->filters[f], ex->topics[t]);
	}
	for (size_t a = 0; a < ex->n_filters; a++) {
		for (size_t b = 0; b < ex->n_filters; b++) {
			bool covers = true, overlap = false;

			for (size_t t = 0; t < ex->n_topics; t++) {
				if (ex->m[b][t] && !ex->m[a][t])
					covers = false;
				if (ex->m[b][t] && ex->m[a][t])
					overlap = true;
			}
			CHECK(rules_filter_covers(ex->filters[a], ex->filters[b]) == covers,
			              "covers('%s', '%s') should be %d", ex->filters[a], ex->filters[b], covers);
			CHECK(rules_filters_overlap(ex->filters[a], ex->filters[b]) == overlap,
			              "overlap('%s', '%s') should be %d", ex->filters[a], ex->filters[b],
			              overlap);
		}
	}
	free(ex);
}
END_TEST

/* The tree's shadow check agrees with rules_filter_covers() on every pair. */
START_TEST(test_shadow_exhaustive)
{
	struct exhaustive *ex = ex_build();
	struct msgs m = { 0 };

	for (size_t a = 0; a < ex->n_filters; a++) {
		for (size_t b = 0; b < ex->n_filters; b++) {
			const struct rule_spec specs[] = {
				{ .line = 1, .match = ex->filters[a] },
				{ .line = 2, .match = ex->filters[b] },
			};
			struct rules *rs = compile(specs, 2, &m);
			bool want = rules_filter_covers(ex->filters[a], ex->filters[b]);

			CHECK(rs != NULL, "'%s' then '%s' do not compile", ex->filters[a], ex->filters[b]);
			CHECK(m.n_warn == (want ? 1 : 0), "'%s' then '%s': %zu warnings",
			              ex->filters[a], ex->filters[b], m.n_warn);
			rules_free(rs);
		}
	}
	msgs_clear(&m);
	free(ex);
}
END_TEST

/* ------------------------------------------------------------------------ */
/* Subscriptions */

static void subs_are(const struct rule_spec *specs, size_t n, const char *const *want, size_t nw)
{
	struct msgs m = { 0 };
	struct rules *rs = compile(specs, n, &m);
	const char **subs = NULL;
	size_t ns;

	ck_assert_ptr_nonnull(rs);
	ns = rules_subscriptions(rs, &subs);
	for (size_t k = 0; k < ns && ns != nw; k++)
		fprintf(stderr, "subscription %zu: %s\n", k, subs[k]);
	ck_assert_uint_eq(ns, nw);
	for (size_t k = 0; k < nw; k++)
		ck_assert_str_eq(subs[k], want[k]);
	free(subs);
	rules_free(rs);
	msgs_clear(&m);
}

START_TEST(test_subscriptions)
{
	const struct rule_spec specs[] = {
		{ .line = 1, .match = "s/+/t", .cont = true },
		{ .line = 2, .match = "junk/#", .drop = true },
		{ .line = 3, .match = "s/a/t" },
		{ .line = 4, .match = "s/+/t" },
		{ .line = 5, .match = "$share/g/s/a/t" },
		{ .line = 6, .match = "$share/g/s/#" },
		{ .line = 7, .match = "$share/h/s/a/t" },
		{ .line = 8, .match = "x/y" },
		{ .line = 9, .match = "junk/a" },
		{ .line = 10, .match = "x/#" },
	};
	const char *const want[] = { "s/+/t", "$share/g/s/#", "$share/h/s/a/t", "junk/a", "x/#" };

	subs_are(specs, 10, want, 5);
}
END_TEST

/* Of filters that cover each other, the first stays. */
START_TEST(test_subscriptions_equivalent)
{
	const struct rule_spec a[] = { { .line = 1, .match = "+/#" }, { .line = 2, .match = "#" } };
	const struct rule_spec b[] = { { .line = 1, .match = "#" }, { .line = 2, .match = "+/#" } };
	const struct rule_spec c[] = {
		{ .line = 1, .match = "$SYS/x" }, { .line = 2, .match = "#" }, { .line = 3, .match = "$SYS/x" },
	};
	const struct rule_spec d[] = { { .line = 1, .match = "gone", .drop = true } };
	const char *const wa[] = { "+/#" };
	const char *const wb[] = { "#" };
	const char *const wc[] = { "$SYS/x", "#" };

	subs_are(a, 2, wa, 1);
	subs_are(b, 2, wb, 1);
	subs_are(c, 3, wc, 2);
	subs_are(d, 1, NULL, 0);
}
END_TEST

/* The promises of rules_subscriptions() on random rule sets. */
START_TEST(test_subscriptions_random)
{
	char filters[12][64];
	struct rule_spec specs[12];
	struct msgs m = { 0 };

	prng_state = 7;
	for (int round = 0; round < 2000; round++) {
		size_t n = 1 + prng_below(12), ns;
		struct rules *rs;
		const char **subs = NULL;

		for (size_t i = 0; i < n; i++) {
			bool share = prng_below(6) == 0;

			strcpy(filters[i], share ? (prng_below(2) ? "$share/g/" : "$share/h/") : "");
			random_filter(filters[i] + strlen(filters[i]), 40);
			specs[i] = (struct rule_spec){ .line = (int)i + 1, .match = filters[i],
			                               .drop = prng_below(5) == 0 };
		}
		rs = compile(specs, n, &m);
		ck_assert_ptr_nonnull(rs);
		ns = rules_subscriptions(rs, &subs);
		ck_assert(ns != (size_t)-1);
		/* Non-drop matches, in rule order, no two alike. */
		for (size_t k = 0, i = 0; k < ns; k++, i++) {
			while (i < n && (specs[i].drop || strcmp(specs[i].match, subs[k]) != 0))
				i++;
			CHECK(i < n, "'%s' is no match of a rule, or out of order", subs[k]);
		}
		/* Every non-drop rule is covered by one of them, same share or none. */
		for (size_t i = 0; i < n; i++) {
			size_t pi = (size_t)(ref_plain(specs[i].match) - specs[i].match);
			size_t k;

			if (specs[i].drop)
				continue;
			for (k = 0; k < ns; k++) {
				size_t pk = (size_t)(ref_plain(subs[k]) - subs[k]);

				if (pk == pi && strncmp(subs[k], specs[i].match, pi) == 0 &&
				    rules_filter_covers(ref_plain(subs[k]), ref_plain(specs[i].match)))
					break;
			}
			CHECK(k < ns, "'%s' is not covered", specs[i].match);
		}
		/* None covers another. */
		for (size_t k = 0; k < ns; k++) {
			for (size_t l = 0; l < ns; l++) {
				size_t pk = (size_t)(ref_plain(subs[k]) - subs[k]);
				size_t pl = (size_t)(ref_plain(subs[l]) - subs[l]);

				if (k == l || pk != pl || strncmp(subs[k], subs[l], pk) != 0)
					continue;
				CHECK(!rules_filter_covers(ref_plain(subs[k]), ref_plain(subs[l])),
				              "'%s' covers '%s'", subs[k], subs[l]);
			}
		}
		free(subs);
		rules_free(rs);
	}
	msgs_clear(&m);
}
END_TEST

/* ------------------------------------------------------------------------ */
/* Matching */

START_TEST(test_match_order_and_continue)
{
	const struct rule_spec specs[] = {
		{ .line = 1, .match = "a/#", .cont = true },
		{ .line = 2, .match = "a/+/c", .cont = true },
		{ .line = 3, .match = "x" },
		{ .line = 4, .match = "a/b/+" },
		{ .line = 5, .match = "a/b/c" },
		{ .line = 6, .match = "#", .cont = true },
	};
	struct msgs m = { 0 };
	struct rules *rs = compile(specs, 6, &m);
	const struct rule *out[8];

	ck_assert_ptr_nonnull(rs);
	ck_assert_uint_eq(rules_max_matches(rs), 4);
	ck_assert_uint_eq(rules_match(rs, "a/b/c", 5, out, 8), 3);
	ck_assert_uint_eq(out[0]->index, 1);
	ck_assert_uint_eq(out[1]->index, 2);
	ck_assert_uint_eq(out[2]->index, 4);
	/* `max` bounds what is written. */
	ck_assert_uint_eq(rules_match(rs, "a/b/c", 5, out, 2), 2);
	ck_assert_uint_eq(out[1]->index, 2);
	ck_assert_uint_eq(rules_match(rs, "a/z/c", 5, out, 8), 3);
	ck_assert_uint_eq(out[2]->index, 6);
	ck_assert_uint_eq(rules_match(rs, "x", 1, out, 8), 1);
	ck_assert_uint_eq(out[0]->index, 3);
	ck_assert_uint_eq(rules_match(rs, "q", 1, out, 8), 1);
	ck_assert_uint_eq(out[0]->index, 6);
	ck_assert_uint_eq(rules_match(rs, "$q", 2, out, 8), 0);
	ck_assert_uint_eq(rules_match(rs, "", 0, out, 8), 0);
	/* Only tlen bytes are the topic. */
	ck_assert_uint_eq(rules_match(rs, "xyz", 1, out, 8), 1);
	ck_assert_uint_eq(out[0]->index, 3);
	rules_free(rs);
	msgs_clear(&m);
}
END_TEST

START_TEST(test_match_dollar_and_empty_levels)
{
	const struct rule_spec specs[] = {
		{ .line = 1, .match = "+/x", .cont = true },
		{ .line = 2, .match = "#", .cont = true },
		{ .line = 3, .match = "$SYS/+", .cont = true },
		{ .line = 4, .match = "a//b", .cont = true },
		{ .line = 5, .match = "a/+/b", .cont = true },
		{ .line = 6, .match = "/#", .cont = true },
		{ .line = 7, .match = "$share/g/$SYS/#", .cont = true },
	};
	struct msgs m = { 0 };
	struct rules *rs = compile(specs, 7, &m);
	const struct rule *out[8];

	ck_assert_ptr_nonnull(rs);
	ck_assert_uint_eq(rules_match(rs, "$SYS/x", 6, out, 8), 2);
	ck_assert_uint_eq(out[0]->index, 3);
	ck_assert_uint_eq(out[1]->index, 7);
	ck_assert_uint_eq(rules_match(rs, "a//b", 4, out, 8), 3);
	ck_assert_uint_eq(out[0]->index, 2);
	ck_assert_uint_eq(out[1]->index, 4);
	ck_assert_uint_eq(out[2]->index, 5);
	ck_assert_uint_eq(rules_match(rs, "/x", 2, out, 8), 3);
	ck_assert_uint_eq(out[0]->index, 1);
	ck_assert_uint_eq(out[1]->index, 2);
	ck_assert_uint_eq(out[2]->index, 6);
	rules_free(rs);
	msgs_clear(&m);
}
END_TEST

/* Thousands of random rule sets and topics against the reference walk. */
START_TEST(test_match_random_vs_reference)
{
	char filters[16][64], topic[64];
	struct rule_spec specs[16];
	struct msgs m = { 0 };
	size_t compared = 0, nonempty = 0;

	prng_state = 42;
	for (int round = 0; round < 3000; round++) {
		size_t n = 1 + prng_below(16);
		struct rules *rs;

		for (size_t i = 0; i < n; i++) {
			strcpy(filters[i], prng_below(10) == 0 ? "$share/g/" : "");
			random_filter(filters[i] + strlen(filters[i]), 40);
			specs[i] = (struct rule_spec){ .line = (int)i + 1, .match = filters[i],
			                               .cont = prng_below(3) == 0 };
		}
		rs = compile(specs, n, &m);
		ck_assert_ptr_nonnull(rs);
		for (int t = 0; t < 30; t++) {
			size_t want[16];

			random_topic(topic, sizeof(topic));
			match_vs_ref(rs, specs, n, topic);
			compared++;
			nonempty += ref_rules(specs, n, topic, want) > 0;
		}
		/* Topics built from the filters match more often. */
		for (size_t i = 0; i < n; i++) {
			size_t len = 0;
			const char *f = ref_plain(filters[i]);

			for (const char *p = f; *p != '\0'; p++) {
				if (*p == '+')
					topic[len++] = "ab$"[prng_below(3)];
				else if (*p == '#')
					len += (size_t)sprintf(topic + len, "%s", prng_below(2) ? "c/d" : "e");
				else
					topic[len++] = *p;
			}
			topic[len] = '\0';
			match_vs_ref(rs, specs, n, topic);
			compared++;
		}
		rules_free(rs);
	}
	msgs_clear(&m);
	ck_assert_uint_gt(compared, 90000);
	/* The random topics are not all misses, or the comparison proves little. */
	ck_assert_uint_gt(nonempty, compared / 10);
}
END_TEST

/* Shadow warnings on random sets agree with rules_filter_covers(). */
START_TEST(test_shadow_random)
{
	char filters[12][64];
	struct rule_spec specs[12];
	struct msgs m = { 0 };

	prng_state = 99;
	for (int round = 0; round < 2000; round++) {
		size_t n = 1 + prng_below(12);
		size_t expected = 0;
		struct rules *rs;

		for (size_t i = 0; i < n; i++) {
			random_filter(filters[i], 40);
			specs[i] = (struct rule_spec){ .line = (int)i + 1, .match = filters[i],
			                               .cont = prng_below(3) == 0 };
		}
		rs = compile(specs, n, &m);
		ck_assert_ptr_nonnull(rs);
		for (size_t j = 0; j < n; j++) {
			char want[64];
			size_t i;

			for (i = 0; i < j; i++) {
				if (!specs[i].cont && rules_filter_covers(filters[i], filters[j]))
					break;
			}
			if (i == j)
				continue;
			expected++;
			snprintf(want, sizeof(want), "rule %zu (match '", j + 1);
			if (!has_report(m.warn, m.n_warn, want, NULL)) {
				for (size_t k = 0; k < n; k++)
					fprintf(stderr, "rule %zu: %s%s\n", k + 1, filters[k],
					        specs[k].cont ? " (continue)" : "");
			}
			CHECK(has_report(m.warn, m.n_warn, want, NULL), "no warning for '%s'", want);
			snprintf(want, sizeof(want), "can never match: rule %zu (", i + 1);
			CHECK(has_report(m.warn, m.n_warn, want, NULL), "rule %zu: no '%s'", j + 1, want);
		}
		ck_assert_uint_eq(m.n_warn, expected);
		rules_free(rs);
	}
	msgs_clear(&m);
}
END_TEST

/* 10,000 rules: the tree stays right, and the large lists are sorted. */
START_TEST(test_match_large)
{
	enum { N = 10000 };
	struct rule_spec *specs = calloc(N, sizeof(*specs));
	char (*filters)[48] = calloc(N, sizeof(*filters));
	struct msgs m = { 0 };
	struct rules *rs;
	char topic[64];

	ck_assert_ptr_nonnull(specs);
	ck_assert_ptr_nonnull(filters);
	for (size_t i = 0; i < N; i++) {
		switch (i % 5) {
		case 0: snprintf(filters[i], 48, "s/d%zu/+/t", i); break;
		case 1: snprintf(filters[i], 48, "s/d%zu/#", i); break;
		case 2: snprintf(filters[i], 48, "+/d%zu/x", i); break;
		case 3: snprintf(filters[i], 48, "s/+/r%zu", i); break;
		default: snprintf(filters[i], 48, "#"); break;
		}
		/* Every "#" but the last has continue: many long lists to sort. */
		specs[i] = (struct rule_spec){ .line = (int)i + 1, .match = filters[i],
		                               .cont = i % 5 == 4 ? i + 1 < N : i % 3 == 0 };
	}
	rs = compile(specs, N, &m);
	ck_assert_ptr_nonnull(rs);
	ck_assert_uint_eq(m.n_err, 0);
	prng_state = 5;
	for (int t = 0; t < 200; t++) {
		unsigned d = prng_below(N + 10);

		switch (prng_below(4)) {
		case 0: snprintf(topic, sizeof(topic), "s/d%u/q/t", d); break;
		case 1: snprintf(topic, sizeof(topic), "s/d%u", d); break;
		case 2: snprintf(topic, sizeof(topic), "z/d%u/x", d); break;
		default: snprintf(topic, sizeof(topic), "s/d%u/r%u", d, prng_below(N)); break;
		}
		match_vs_ref(rs, specs, N, topic);
	}
	for (int t = 0; t < 50; t++) {
		const struct rule **out = calloc(N, sizeof(*out));
		size_t got;

		snprintf(topic, sizeof(topic), "$q/d%u", prng_below(N));
		ck_assert_uint_eq(rules_match(rs, topic, strlen(topic), out, N), 0);
		snprintf(topic, sizeof(topic), "zz/%u", prng_below(N));
		got = rules_match(rs, topic, strlen(topic), out, N);
		ck_assert_uint_eq(got, N / 5);
		for (size_t k = 0; k < got; k++)
			ck_assert_uint_eq(out[k]->index, 5 * k + 5);
		free(out);
	}
	rules_free(rs);
	msgs_clear(&m);
	free(filters);
	free(specs);
}
END_TEST

/* ------------------------------------------------------------------------ */
/* -t */

START_TEST(test_print)
{
	static const struct rules_field hdr[] = {
		{ .name = "kind", .kind = RV_STRING, .s = "temperature" },
		{ .name = "sample-rate", .kind = RV_INT, .i = 10 },
		{ .name = "calibrated", .kind = RV_BOOL, .b = true },
	};
	const struct rule_spec specs[] = {
		{ .line = 12, .match = "sensors/+/temperature", .exchange = "telemetry",
		  .routing_key = "temp.{1}", .strip_prefix = "sensors/", .key_prefix = "plant1.",
		  .persistent = RULE_PERSIST_NO, .headers = hdr, .n_headers = 3, .cont = true },
		{ .line = 20, .match = "junk/#", .drop = true },
		{ .line = 22, .match = "$share/g/a/#", .exchange = "" },
	};
	struct msgs m = { 0 };
	struct rules *rs = compile(specs, 3, &m);
	char *text = NULL;
	size_t size = 0;
	FILE *f = open_memstream(&text, &size);

	ck_assert_ptr_nonnull(rs);
	ck_assert_ptr_nonnull(f);
	rules_print(rs, f);
	fclose(f);
	ck_assert_ptr_nonnull(strstr(text, "rule 1 (line 12)\n  match:         sensors/+/temperature\n"));
	ck_assert_ptr_nonnull(strstr(text, "exchange:      telemetry\n"));
	ck_assert_ptr_nonnull(strstr(text, "routing key:   temp.{1}\n"));
	ck_assert_ptr_nonnull(strstr(text, "strip prefix:  \"sensors/\"\n"));
	ck_assert_ptr_nonnull(strstr(text, "key prefix:    \"plant1.\"\n"));
	ck_assert_ptr_nonnull(strstr(text, "delivery mode: transient\n"));
	ck_assert_ptr_nonnull(strstr(text, "header:        kind = \"temperature\" (string)\n"));
	ck_assert_ptr_nonnull(strstr(text, "header:        sample-rate = 10 (int)\n"));
	ck_assert_ptr_nonnull(strstr(text, "header:        calibrated = true (bool)\n"));
	ck_assert_ptr_nonnull(strstr(text, "continue:      yes"));
	ck_assert_ptr_nonnull(strstr(text, "rule 2 (line 20)\n  match:         junk/#\n  action:        drop\n"));
	ck_assert_ptr_nonnull(strstr(text, "rule 3 (line 22)\n  match:         $share/g/a/#\n"
	                             "  filter:        a/# (shared subscription)\n"
	                             "  exchange:      \"\" (AMQP default exchange)\n"
	                             "  routing key:   (default translation)\n"
	                             "  delivery mode: from QoS"));
	free(text);
	rules_free(rs);
	msgs_clear(&m);
}
END_TEST

static Suite *rules_suite(void)
{
	Suite *s = suite_create("rules");
	const struct {
		const char *name;
		const TTest *test;
		int timeout;
	} cases[] = {
		{ "compile_basic", test_compile_basic, 0 },
		{ "compile_empty", test_compile_empty, 0 },
		{ "error_match", test_error_match, 0 },
		{ "error_long_match_quoted_short", test_error_long_match_quoted_short, 0 },
		{ "error_template", test_error_template, 0 },
		{ "error_template_all_reported", test_error_template_all_reported, 0 },
		{ "error_strip_prefix", test_error_strip_prefix, 0 },
		{ "error_drop", test_error_drop, 0 },
		{ "error_lengths", test_error_lengths, 0 },
		{ "error_headers", test_error_headers, 0 },
		{ "error_every_one_reported", test_error_every_one_reported, 0 },
		{ "key_levels", test_key_levels, 0 },
		{ "key_tail", test_key_tail, 0 },
		{ "key_topic_and_braces", test_key_topic_and_braces, 0 },
		{ "key_dot_replacement", test_key_dot_replacement, 0 },
		{ "key_strip_prefix", test_key_strip_prefix, 0 },
		{ "key_prefix", test_key_prefix, 0 },
		{ "key_too_long", test_key_too_long, 0 },
		{ "key_default_and_bad_topics", test_key_default_and_bad_topics, 0 },
		{ "warn_shadowed", test_warn_shadowed, 0 },
		{ "warn_shadowed_subtle", test_warn_shadowed_subtle, 0 },
		{ "warn_unsubscribed", test_warn_unsubscribed, 0 },
		{ "filter_matches", test_filter_matches, 0 },
		{ "filter_covers_cases", test_filter_covers_cases, 0 },
		{ "filter_overlap_cases", test_filter_overlap_cases, 0 },
		{ "filters_exhaustive", test_filters_exhaustive, 60 },
		{ "shadow_exhaustive", test_shadow_exhaustive, 60 },
		{ "subscriptions", test_subscriptions, 0 },
		{ "subscriptions_equivalent", test_subscriptions_equivalent, 0 },
		{ "subscriptions_random", test_subscriptions_random, 60 },
		{ "match_order_and_continue", test_match_order_and_continue, 0 },
		{ "match_dollar_and_empty_levels", test_match_dollar_and_empty_levels, 0 },
		{ "match_random_vs_reference", test_match_random_vs_reference, 60 },
		{ "shadow_random", test_shadow_random, 60 },
		{ "match_large", test_match_large, 60 },
		{ "print", test_print, 0 },
	};

	for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
		TCase *tc = tcase_create(cases[i].name);

		if (cases[i].timeout > 0)
			tcase_set_timeout(tc, cases[i].timeout);
		tcase_add_test(tc, cases[i].test);
		suite_add_tcase(s, tc);
	}
	return s;
}

int main(void)
{
	SRunner *sr = srunner_create(rules_suite());
	int failed;

	srunner_run_all(sr, CK_NORMAL);
	failed = srunner_ntests_failed(sr);
	srunner_free(sr);
	return failed != 0 ? EXIT_FAILURE : EXIT_SUCCESS;
}
