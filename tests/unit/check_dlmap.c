#include "dlmap.h"

#include <check.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <mqtt_protocol.h>

#define MAX_HEADERS 16

/* One delivery, its properties and headers, and the result of mapping it. */
struct fx {
	amqp_basic_properties_t props;
	amqp_table_entry_t headers[MAX_HEADERS];
	struct dlmap_template tmpl;
	bool has_tmpl;
	struct dlmap_entry entry;
	struct dlmap_link link;
	struct dlmap_delivery d;
	char *topic;
	struct dlmap_out out;
	char detail[256];
	int reports;
};

static void fx_init(struct fx *f, const char *key)
{
	memset(f, 0, sizeof(*f));
	f->entry.qos = 1;
	f->link.mqtt5 = true;
	f->d.routing_key = amqp_cstring_bytes(key);
	f->d.props = &f->props;
	f->d.body_len = 10;
	f->topic = malloc(DLMAP_TOPIC_MAX + 1);
	ck_assert_ptr_nonnull(f->topic);
}

static void fx_fini(struct fx *f)
{
	mosquitto_property_free_all(&f->out.props);
	if (f->has_tmpl)
		dlmap_template_free(&f->tmpl);
	free(f->topic);
}

static void count_report(void *ctx, const char *msg)
{
	struct fx *f = ctx;

	ck_assert_ptr_nonnull(msg);
	f->reports++;
}

static void fx_template(struct fx *f, const char *tmpl)
{
	ck_assert_int_eq(dlmap_compile(tmpl, count_report, f, &f->tmpl), 0);
	ck_assert_int_eq(f->reports, 0);
	f->has_tmpl = true;
	f->entry.tmpl = &f->tmpl;
}

static enum dlmap_result fx_map(struct fx *f)
{
	return dlmap_map(&f->entry, &f->link, &f->d, f->topic, &f->out, f->detail,
	                 sizeof(f->detail));
}

static amqp_table_entry_t *fx_header(struct fx *f, const char *name)
{
	amqp_table_entry_t *e;

	ck_assert_int_lt(f->props.headers.num_entries, MAX_HEADERS);
	f->props._flags |= AMQP_BASIC_HEADERS_FLAG;
	f->props.headers.entries = f->headers;
	e = &f->headers[f->props.headers.num_entries++];
	e->key = amqp_cstring_bytes(name);
	return e;
}

static void fx_header_str(struct fx *f, const char *name, const char *value)
{
	amqp_table_entry_t *e = fx_header(f, name);

	e->value.kind = AMQP_FIELD_KIND_UTF8;
	e->value.value.bytes = amqp_cstring_bytes(value);
}

static void fx_header_bool(struct fx *f, const char *name, bool value)
{
	amqp_table_entry_t *e = fx_header(f, name);

	e->value.kind = AMQP_FIELD_KIND_BOOLEAN;
	e->value.value.boolean = value;
}

static void fx_header_i64(struct fx *f, const char *name, int64_t value)
{
	amqp_table_entry_t *e = fx_header(f, name);

	e->value.kind = AMQP_FIELD_KIND_I64;
	e->value.value.i64 = value;
}

/* Maps, expecting success and the topic `want`. */
static void expect_topic(struct fx *f, const char *want)
{
	enum dlmap_result r = fx_map(f);

	ck_assert_msg(r == DLMAP_OK, "%s: %s", dlmap_strerror(r), f->detail);
	ck_assert_str_eq(f->topic, want);
	ck_assert_uint_eq(f->out.topic_len, strlen(want));
}

static void expect_poison(struct fx *f, enum dlmap_result want)
{
	enum dlmap_result r = fx_map(f);

	ck_assert_msg(r == want, "got %s, want %s", dlmap_strerror(r), dlmap_strerror(want));
	ck_assert(dlmap_is_poison(r));
	ck_assert_str_eq(f->topic, "");
	ck_assert_ptr_null(f->out.props);
	ck_assert_uint_gt(strlen(f->detail), 0);
}

/* The number of properties with identifier `id`. */
static int count_props(const mosquitto_property *p, int id)
{
	int n = 0;

	for (; p != NULL; p = mosquitto_property_next(p)) {
		if (mosquitto_property_identifier(p) == id)
			n++;
	}
	return n;
}

/* The value of the user property `name`, or NULL; the caller frees it. */
static char *user_prop(const mosquitto_property *p, const char *name)
{
	for (; p != NULL; p = mosquitto_property_next(p)) {
		char *n = NULL, *v = NULL;

		if (mosquitto_property_identifier(p) != MQTT_PROP_USER_PROPERTY)
			continue;
		ck_assert(mosquitto_property_read_string_pair(p, MQTT_PROP_USER_PROPERTY, &n, &v, false)
		          != NULL);
		if (strcmp(n, name) == 0) {
			free(n);
			return v;
		}
		free(n);
		free(v);
	}
	return NULL;
}

static void expect_user(const mosquitto_property *p, const char *name, const char *want)
{
	char *v = user_prop(p, name);

	if (want == NULL) {
		ck_assert_msg(v == NULL, "user property %s should be absent, is '%s'", name, v);
		return;
	}
	ck_assert_msg(v != NULL, "user property %s absent", name);
	ck_assert_str_eq(v, want);
	free(v);
}

static char *read_string_prop(const mosquitto_property *p, int id)
{
	char *v = NULL;

	if (mosquitto_property_read_string(p, id, &v, false) == NULL)
		return NULL;
	return v;
}

/* ------------------------------------------------------------------------ */
/* Default translation */

START_TEST(test_plain)
{
	struct fx f;

	fx_init(&f, "a.b.c");
	expect_topic(&f, "a/b/c");
	ck_assert_int_eq(f.out.qos, 1);
	ck_assert(!f.out.retain);
	ck_assert_ptr_null(f.out.props);
	fx_fini(&f);
}
END_TEST

START_TEST(test_empty_words)
{
	static const char *cases[][2] = {
		{ "a..b", "a//b" }, { ".a", "/a" }, { "a.", "a/" }, { ".", "/" }, { "single", "single" },
	};

	for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
		struct fx f;

		fx_init(&f, cases[i][0]);
		expect_topic(&f, cases[i][1]);
		fx_fini(&f);
	}
}
END_TEST

/* As the plugin: a '/' in the key is a level separator already; '*' stays. */
START_TEST(test_slash_and_star)
{
	struct fx f;

	fx_init(&f, "a/b.c");
	expect_topic(&f, "a/b/c");
	fx_fini(&f);
	fx_init(&f, "a.*.c");
	expect_topic(&f, "a/*/c");
	fx_fini(&f);
	fx_init(&f, "caf\xc3\xa9.t");
	expect_topic(&f, "caf\xc3\xa9/t");
	fx_fini(&f);
}
END_TEST

/* A '$' topic only from the template's own literal text, never from a key or a header. */
START_TEST(test_dollar)
{
	struct fx f;

	fx_init(&f, "$SYS.broker");
	expect_poison(&f, DLMAP_ERR_DOLLAR);
	fx_fini(&f);
	fx_init(&f, "$aws.things.t1");
	fx_template(&f, "{1}/things/{3}");
	expect_poison(&f, DLMAP_ERR_DOLLAR);
	fx_fini(&f);
	fx_init(&f, "t1");
	fx_template(&f, "{header:id}/x");
	fx_header_str(&f, "id", "$share");
	expect_poison(&f, DLMAP_ERR_DOLLAR);
	fx_fini(&f);
	fx_init(&f, "t1");
	fx_template(&f, "$aws/things/{1}/shadow");
	expect_topic(&f, "$aws/things/t1/shadow");
	fx_fini(&f);
	/* Not at the start: an ordinary byte. */
	fx_init(&f, "a.$b");
	expect_topic(&f, "a/$b");
	fx_fini(&f);
	ck_assert(dlmap_is_poison(DLMAP_ERR_DOLLAR));
}
END_TEST

START_TEST(test_plain_poison)
{
	struct fx f;

	fx_init(&f, "");
	expect_poison(&f, DLMAP_ERR_EMPTY);
	fx_fini(&f);
	fx_init(&f, "a.+.c");
	expect_poison(&f, DLMAP_ERR_WILDCARD);
	fx_fini(&f);
	fx_init(&f, "a.#");
	expect_poison(&f, DLMAP_ERR_WILDCARD);
	fx_fini(&f);
	fx_init(&f, "a");
	f.d.routing_key = (amqp_bytes_t){ 3, "a\0b" };
	expect_poison(&f, DLMAP_ERR_NUL);
	fx_fini(&f);
	fx_init(&f, "a.\xff");
	expect_poison(&f, DLMAP_ERR_UTF8);
	fx_fini(&f);
	/* libmosquitto refuses control characters in a topic. */
	fx_init(&f, "a.\x01");
	expect_poison(&f, DLMAP_ERR_UTF8);
	fx_fini(&f);
}
END_TEST

/* ------------------------------------------------------------------------ */
/* Templates */

START_TEST(test_template_words)
{
	struct fx f;

	fx_init(&f, "commands.p7.reboot");
	fx_template(&f, "devices/{2}/commands/{3}");
	expect_topic(&f, "devices/p7/commands/reboot");
	fx_fini(&f);

	/* An empty word is an empty level. */
	fx_init(&f, "commands..x");
	fx_template(&f, "d/{2}/{3}");
	expect_topic(&f, "d//x");
	fx_fini(&f);

	fx_init(&f, "commands.p7");
	fx_template(&f, "{{{2}}}/{key}/{1}");
	expect_topic(&f, "{p7}/commands/p7/commands");
	fx_fini(&f);
}
END_TEST

START_TEST(test_template_headers)
{
	struct fx f;

	fx_init(&f, "commands");
	fx_header_str(&f, "id", "p7");
	fx_header_str(&f, "site", "lab.2");
	fx_template(&f, "devices/{header:id}/commands");
	expect_topic(&f, "devices/p7/commands");
	fx_fini(&f);

	/* A header's text is used as it is: its dots are no separators. */
	fx_init(&f, "commands");
	fx_header_str(&f, "site", "lab.2");
	fx_template(&f, "{header:site}/{1}");
	expect_topic(&f, "lab.2/commands");
	fx_fini(&f);

	/* Header names may hold what braces do not close. */
	fx_init(&f, "k");
	fx_header_str(&f, "x-device id:{1", "v");
	fx_template(&f, "t/{header:x-device id:{1}");
	expect_topic(&f, "t/v");
	fx_fini(&f);
}
END_TEST

START_TEST(test_template_missing)
{
	struct fx f;

	fx_init(&f, "commands.p7");
	fx_template(&f, "devices/{3}");
	expect_poison(&f, DLMAP_ERR_NO_WORD);
	ck_assert_ptr_nonnull(strstr(f.detail, "{3}"));
	fx_fini(&f);

	fx_init(&f, "commands");
	fx_template(&f, "devices/{header:id}");
	expect_poison(&f, DLMAP_ERR_NO_HEADER);
	ck_assert_ptr_nonnull(strstr(f.detail, "'id'"));
	fx_fini(&f);

	/* Headers present but not the one asked for. */
	fx_init(&f, "commands");
	fx_header_str(&f, "idx", "p7");
	fx_template(&f, "devices/{header:id}");
	expect_poison(&f, DLMAP_ERR_NO_HEADER);
	fx_fini(&f);

	fx_init(&f, "commands");
	f.d.props = NULL;
	fx_template(&f, "devices/{header:id}");
	expect_poison(&f, DLMAP_ERR_NO_HEADER);
	fx_fini(&f);

	fx_init(&f, "commands");
	fx_header_i64(&f, "id", 7);
	fx_template(&f, "devices/{header:id}");
	expect_poison(&f, DLMAP_ERR_HEADER_TYPE);
	fx_fini(&f);

	fx_init(&f, "commands");
	fx_header_bool(&f, "id", true);
	fx_template(&f, "devices/{header:id}");
	expect_poison(&f, DLMAP_ERR_HEADER_TYPE);
	fx_fini(&f);
}
END_TEST

START_TEST(test_template_poison_values)
{
	struct fx f;

	fx_init(&f, "c");
	fx_header_str(&f, "id", "a+b");
	fx_template(&f, "d/{header:id}");
	expect_poison(&f, DLMAP_ERR_WILDCARD);
	fx_fini(&f);

	fx_init(&f, "c");
	fx_header_str(&f, "id", "#");
	fx_template(&f, "d/{header:id}");
	expect_poison(&f, DLMAP_ERR_WILDCARD);
	fx_fini(&f);

	fx_init(&f, "c");
	fx_header(&f, "id")->value = (amqp_field_value_t){ .kind = AMQP_FIELD_KIND_UTF8,
		.value.bytes = { 3, "a\0b" } };
	fx_template(&f, "d/{header:id}");
	expect_poison(&f, DLMAP_ERR_NUL);
	fx_fini(&f);

	fx_init(&f, "c");
	fx_header_str(&f, "id", "a/b");
	fx_template(&f, "d/{header:id}");
	expect_poison(&f, DLMAP_ERR_LEVELS);
	fx_fini(&f);

	fx_init(&f, "c.a/b");
	fx_template(&f, "d/{2}");
	expect_poison(&f, DLMAP_ERR_LEVELS);
	fx_fini(&f);

	/* {key} may span levels, as the default translation does. */
	fx_init(&f, "c.a/b");
	fx_template(&f, "d/{key}");
	expect_topic(&f, "d/c/a/b");
	fx_fini(&f);

	/* A template that comes out empty. */
	fx_init(&f, "c");
	fx_header_str(&f, "id", "");
	fx_template(&f, "{header:id}");
	expect_poison(&f, DLMAP_ERR_EMPTY);
	fx_fini(&f);

	fx_init(&f, "c.+");
	fx_template(&f, "d/{2}");
	expect_poison(&f, DLMAP_ERR_WILDCARD);
	fx_fini(&f);
}
END_TEST

START_TEST(test_topic_length)
{
	struct fx f;
	char *v = malloc(DLMAP_TOPIC_MAX + 2);

	ck_assert_ptr_nonnull(v);
	/* "d/" and 65,533 bytes: exactly the limit. */
	memset(v, 'x', DLMAP_TOPIC_MAX - 2);
	v[DLMAP_TOPIC_MAX - 2] = '\0';
	fx_init(&f, "c");
	fx_header_str(&f, "id", v);
	fx_template(&f, "d/{header:id}");
	ck_assert_int_eq(fx_map(&f), DLMAP_OK);
	ck_assert_uint_eq(f.out.topic_len, DLMAP_TOPIC_MAX);
	ck_assert_uint_eq(strlen(f.topic), DLMAP_TOPIC_MAX);
	fx_fini(&f);

	memset(v, 'x', DLMAP_TOPIC_MAX - 1);
	v[DLMAP_TOPIC_MAX - 1] = '\0';
	fx_init(&f, "c");
	fx_header_str(&f, "id", v);
	fx_template(&f, "d/{header:id}");
	expect_poison(&f, DLMAP_ERR_TOPIC_TOO_LONG);
	ck_assert_ptr_nonnull(strstr(f.detail, "65536"));
	fx_fini(&f);

	/* A wildcard past the limit still names the real fault. */
	v[DLMAP_TOPIC_MAX - 2] = '+';
	fx_init(&f, "c");
	fx_header_str(&f, "id", v);
	fx_template(&f, "d/{header:id}");
	expect_poison(&f, DLMAP_ERR_WILDCARD);
	fx_fini(&f);
	free(v);
}
END_TEST

START_TEST(test_compile_errors)
{
	static const struct {
		const char *tmpl;
		int problems;
	} cases[] = {
		{ "d/{1", 1 }, { "d/}", 1 }, { "d/{0}", 1 }, { "d/{header:}", 1 },
		{ "d/{topic}", 1 }, { "d/{#}", 1 }, { "{}", 1 }, { "{x}/{0}/}", 3 },
		{ "d/{{}}", 0 }, { "{key}", 0 }, { "plain/topic", 0 }, { "", 0 },
	};

	for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
		struct fx f;
		int rc;

		fx_init(&f, "k");
		rc = dlmap_compile(cases[i].tmpl, count_report, &f, &f.tmpl);
		ck_assert_msg(rc == cases[i].problems, "%s: %d problems", cases[i].tmpl, rc);
		ck_assert_int_eq(f.reports, cases[i].problems);
		dlmap_template_free(&f.tmpl);
		fx_fini(&f);
	}
}
END_TEST

/* A word number too large for any key compiles, and is always missing. */
START_TEST(test_compile_huge_word)
{
	struct fx f;

	fx_init(&f, "a.b");
	fx_template(&f, "d/{99999999999999999999}");
	expect_poison(&f, DLMAP_ERR_NO_WORD);
	fx_fini(&f);
}
END_TEST

/* ------------------------------------------------------------------------ */
/* QoS and retain */

START_TEST(test_qos)
{
	struct fx f;

	fx_init(&f, "a");
	f.entry.qos = 0;
	expect_topic(&f, "a");
	ck_assert_int_eq(f.out.qos, 0);
	fx_fini(&f);
	fx_init(&f, "a");
	expect_topic(&f, "a");
	ck_assert_int_eq(f.out.qos, 1);
	fx_fini(&f);
}
END_TEST

START_TEST(test_retain)
{
	struct fx f;

	fx_init(&f, "a");
	f.entry.retain = DLMAP_RETAIN_YES;
	expect_topic(&f, "a");
	ck_assert(f.out.retain);
	fx_fini(&f);

	/* The header counts only when the entry says so. */
	fx_init(&f, "a");
	fx_header_bool(&f, DLMAP_HDR_RETAIN, true);
	expect_topic(&f, "a");
	ck_assert(!f.out.retain);
	fx_fini(&f);

	fx_init(&f, "a");
	f.entry.retain = DLMAP_RETAIN_HEADER;
	fx_header_bool(&f, DLMAP_HDR_RETAIN, true);
	expect_topic(&f, "a");
	ck_assert(f.out.retain);
	fx_fini(&f);

	fx_init(&f, "a");
	f.entry.retain = DLMAP_RETAIN_HEADER;
	fx_header_bool(&f, DLMAP_HDR_RETAIN, false);
	expect_topic(&f, "a");
	ck_assert(!f.out.retain);
	fx_fini(&f);

	/* Absent or not a bool: not retained, and not poison. */
	fx_init(&f, "a");
	f.entry.retain = DLMAP_RETAIN_HEADER;
	expect_topic(&f, "a");
	ck_assert(!f.out.retain);
	fx_fini(&f);

	fx_init(&f, "a");
	f.entry.retain = DLMAP_RETAIN_HEADER;
	fx_header_str(&f, DLMAP_HDR_RETAIN, "true");
	expect_topic(&f, "a");
	ck_assert(!f.out.retain);
	fx_fini(&f);

	fx_init(&f, "a");
	f.entry.retain = DLMAP_RETAIN_HEADER;
	fx_header_i64(&f, DLMAP_HDR_RETAIN, 1);
	expect_topic(&f, "a");
	ck_assert(!f.out.retain);
	fx_fini(&f);
}
END_TEST

/* ------------------------------------------------------------------------ */
/* Properties */

START_TEST(test_content_type)
{
	struct fx f;
	char *v;

	fx_init(&f, "a");
	f.props._flags = AMQP_BASIC_CONTENT_TYPE_FLAG;
	f.props.content_type = amqp_cstring_bytes("application/json");
	expect_topic(&f, "a");
	v = read_string_prop(f.out.props, MQTT_PROP_CONTENT_TYPE);
	ck_assert_ptr_nonnull(v);
	ck_assert_str_eq(v, "application/json");
	free(v);
	fx_fini(&f);

	fx_init(&f, "a");
	f.props._flags = AMQP_BASIC_CONTENT_TYPE_FLAG;
	f.props.content_type = amqp_cstring_bytes("bad\xff");
	expect_topic(&f, "a");
	ck_assert_int_eq(count_props(f.out.props, MQTT_PROP_CONTENT_TYPE), 0);
	fx_fini(&f);
}
END_TEST

static void expect_corr(const mosquitto_property *p, const char *want, size_t len)
{
	void *v = NULL;
	uint16_t vlen = 0;

	ck_assert_int_eq(count_props(p, MQTT_PROP_CORRELATION_DATA), 1);
	ck_assert(mosquitto_property_read_binary(p, MQTT_PROP_CORRELATION_DATA, &v, &vlen, false)
	          != NULL);
	ck_assert_uint_eq(vlen, len);
	ck_assert(memcmp(v, want, len) == 0);
	free(v);
}

START_TEST(test_correlation)
{
	struct fx f;

	/* correlation_id wins; an x-correlation-id header is then an ordinary header. */
	fx_init(&f, "a");
	f.props._flags = AMQP_BASIC_CORRELATION_ID_FLAG;
	f.props.correlation_id = amqp_cstring_bytes("req-1");
	fx_header_str(&f, DLMAP_HDR_CORRELATION, "other");
	expect_topic(&f, "a");
	expect_corr(f.out.props, "req-1", 5);
	expect_user(f.out.props, DLMAP_HDR_CORRELATION, "other");
	fx_fini(&f);

	/* Without it, the header is the correlation data, bytes and all. */
	fx_init(&f, "a");
	fx_header(&f, DLMAP_HDR_CORRELATION)->value = (amqp_field_value_t){
		.kind = AMQP_FIELD_KIND_UTF8, .value.bytes = { 3, "\x00\xff\x01" } };
	expect_topic(&f, "a");
	expect_corr(f.out.props, "\x00\xff\x01", 3);
	expect_user(f.out.props, DLMAP_HDR_CORRELATION, NULL);
	fx_fini(&f);

	/* A non-string x-correlation-id is no correlation data. */
	fx_init(&f, "a");
	fx_header_i64(&f, DLMAP_HDR_CORRELATION, 42);
	expect_topic(&f, "a");
	ck_assert_int_eq(count_props(f.out.props, MQTT_PROP_CORRELATION_DATA), 0);
	expect_user(f.out.props, DLMAP_HDR_CORRELATION, "42");
	fx_fini(&f);
}
END_TEST

START_TEST(test_response_topic)
{
	struct fx f;
	char *v;

	fx_init(&f, "a");
	fx_header_str(&f, DLMAP_HDR_REPLY_TO, "replies.client.7");
	expect_topic(&f, "a");
	v = read_string_prop(f.out.props, MQTT_PROP_RESPONSE_TOPIC);
	ck_assert_ptr_nonnull(v);
	ck_assert_str_eq(v, "replies/client/7");
	free(v);
	expect_user(f.out.props, DLMAP_HDR_REPLY_TO, NULL);
	fx_fini(&f);

	/* Not a valid topic name, or not a string: left out altogether. */
	static const char *bad[] = { "replies.+", "r.#", "", "r.\xff" };

	for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
		fx_init(&f, "a");
		fx_header_str(&f, DLMAP_HDR_REPLY_TO, bad[i]);
		expect_topic(&f, "a");
		ck_assert_int_eq(count_props(f.out.props, MQTT_PROP_RESPONSE_TOPIC), 0);
		expect_user(f.out.props, DLMAP_HDR_REPLY_TO, NULL);
		fx_fini(&f);
	}
	fx_init(&f, "a");
	fx_header_bool(&f, DLMAP_HDR_REPLY_TO, true);
	expect_topic(&f, "a");
	ck_assert_ptr_null(f.out.props);
	fx_fini(&f);
}
END_TEST

static uint32_t expiry_of(const char *expiration)
{
	struct fx f;
	uint32_t v = 0;
	const mosquitto_property *p;

	fx_init(&f, "a");
	f.props._flags = AMQP_BASIC_EXPIRATION_FLAG;
	f.props.expiration = amqp_cstring_bytes(expiration);
	expect_topic(&f, "a");
	p = mosquitto_property_read_int32(f.out.props, MQTT_PROP_MESSAGE_EXPIRY_INTERVAL, &v, false);
	if (p == NULL)
		v = 0;
	fx_fini(&f);
	return v;
}

START_TEST(test_expiry)
{
	ck_assert_uint_eq(expiry_of("60000"), 60);
	ck_assert_uint_eq(expiry_of("60001"), 61);
	ck_assert_uint_eq(expiry_of("999"), 1);
	ck_assert_uint_eq(expiry_of("1"), 1);
	ck_assert_uint_eq(expiry_of("0"), 1);
	ck_assert_uint_eq(expiry_of("4294967295000"), UINT32_MAX);
	ck_assert_uint_eq(expiry_of("99999999999999999999999"), UINT32_MAX);
	/* Not a decimal number: no expiry (0 stands for absent here). */
	ck_assert_uint_eq(expiry_of(""), 0);
	ck_assert_uint_eq(expiry_of("-1"), 0);
	ck_assert_uint_eq(expiry_of("1.5"), 0);
	ck_assert_uint_eq(expiry_of(" 10"), 0);
}
END_TEST

START_TEST(test_user_properties)
{
	struct fx f;
	amqp_table_entry_t *e;

	fx_init(&f, "a");
	fx_header_str(&f, "s", "text");
	fx_header_bool(&f, "b", false);
	fx_header_i64(&f, "i", -12);
	e = fx_header(&f, "u8");
	e->value.kind = AMQP_FIELD_KIND_U8;
	e->value.value.u8 = 255;
	e = fx_header(&f, "i16");
	e->value.kind = AMQP_FIELD_KIND_I16;
	e->value.value.i16 = -300;
	e = fx_header(&f, "u32");
	e->value.kind = AMQP_FIELD_KIND_U32;
	e->value.value.u32 = 4000000000u;
	e = fx_header(&f, "ts");
	e->value.kind = AMQP_FIELD_KIND_TIMESTAMP;
	e->value.value.u64 = 1700000000;
	e = fx_header(&f, "d");
	e->value.kind = AMQP_FIELD_KIND_F64;
	e->value.value.f64 = 1.5;
	e = fx_header(&f, "v");
	e->value.kind = AMQP_FIELD_KIND_VOID;
	e = fx_header(&f, "raw");
	e->value.kind = AMQP_FIELD_KIND_BYTES;
	e->value.value.bytes = amqp_cstring_bytes("xyz");
	e = fx_header(&f, "arr");
	e->value.kind = AMQP_FIELD_KIND_ARRAY;
	e = fx_header(&f, "tab");
	e->value.kind = AMQP_FIELD_KIND_TABLE;
	e = fx_header(&f, "dec");
	e->value.kind = AMQP_FIELD_KIND_DECIMAL;
	fx_header_str(&f, "bad", "a\xff");
	fx_header_str(&f, "ctl", "a\x01");
	expect_topic(&f, "a");
	expect_user(f.out.props, "s", "text");
	expect_user(f.out.props, "b", "false");
	expect_user(f.out.props, "i", "-12");
	expect_user(f.out.props, "u8", "255");
	expect_user(f.out.props, "i16", "-300");
	expect_user(f.out.props, "u32", "4000000000");
	expect_user(f.out.props, "ts", "1700000000");
	expect_user(f.out.props, "d", "1.5");
	expect_user(f.out.props, "v", "");
	expect_user(f.out.props, "raw", NULL);
	expect_user(f.out.props, "arr", NULL);
	expect_user(f.out.props, "tab", NULL);
	expect_user(f.out.props, "dec", NULL);
	expect_user(f.out.props, "bad", NULL);
	expect_user(f.out.props, "ctl", NULL);
	ck_assert_int_eq(count_props(f.out.props, MQTT_PROP_USER_PROPERTY), 9);
	fx_fini(&f);
}
END_TEST

/* Table order is kept: MQTT user properties are ordered. */
START_TEST(test_user_property_order)
{
	struct fx f;
	const char *want[] = { "z", "a", "m" };
	int k = 0;

	fx_init(&f, "a");
	fx_header_str(&f, "z", "1");
	fx_header_str(&f, "a", "2");
	fx_header_str(&f, "m", "3");
	expect_topic(&f, "a");
	for (const mosquitto_property *p = f.out.props; p != NULL; p = mosquitto_property_next(p)) {
		char *n = NULL, *v = NULL;

		ck_assert(mosquitto_property_read_string_pair(p, MQTT_PROP_USER_PROPERTY, &n, &v, false)
		          != NULL);
		ck_assert_int_lt(k, 3);
		ck_assert_str_eq(n, want[k++]);
		free(n);
		free(v);
	}
	ck_assert_int_eq(k, 3);
	fx_fini(&f);
}
END_TEST

START_TEST(test_dropped_headers)
{
	struct fx f;

	fx_init(&f, "a");
	f.entry.retain = DLMAP_RETAIN_HEADER;
	fx_header_str(&f, "x-mqtt-topic", "a/b");
	fx_header_bool(&f, "x-mqtt-retain", true);
	fx_header_i64(&f, "x-mqtt-publish-qos", 1);
	fx_header_bool(&f, "x-mqtt-dup", false);
	fx_header_str(&f, "x-reply-to-topic", "r");
	fx_header_str(&f, "x-other", "kept");
	expect_topic(&f, "a");
	ck_assert(f.out.retain);
	ck_assert_int_eq(count_props(f.out.props, MQTT_PROP_USER_PROPERTY), 1);
	expect_user(f.out.props, "x-other", "kept");
	ck_assert_int_eq(count_props(f.out.props, MQTT_PROP_RESPONSE_TOPIC), 1);
	fx_fini(&f);
}
END_TEST

/* Long header values go through the heap copy; a value over 65,535 bytes is left out. */
START_TEST(test_long_values)
{
	struct fx f;
	char *v = malloc(70000);
	char *got;

	ck_assert_ptr_nonnull(v);
	memset(v, 'v', 1000);
	v[1000] = '\0';
	fx_init(&f, "a");
	fx_header_str(&f, "long", v);
	memset(v + 1001, 'w', 68000);
	v[69001] = '\0';
	fx_header_str(&f, "huge", v + 1001);
	expect_topic(&f, "a");
	got = user_prop(f.out.props, "long");
	ck_assert_ptr_nonnull(got);
	ck_assert_uint_eq(strlen(got), 1000);
	free(got);
	expect_user(f.out.props, "huge", NULL);
	fx_fini(&f);
	free(v);
}
END_TEST

START_TEST(test_mqtt311_no_properties)
{
	struct fx f;

	fx_init(&f, "a.b");
	f.link.mqtt5 = false;
	f.props._flags = AMQP_BASIC_CONTENT_TYPE_FLAG | AMQP_BASIC_CORRELATION_ID_FLAG |
	                 AMQP_BASIC_EXPIRATION_FLAG;
	f.props.content_type = amqp_cstring_bytes("text/plain");
	f.props.correlation_id = amqp_cstring_bytes("c");
	f.props.expiration = amqp_cstring_bytes("1000");
	fx_header_str(&f, "h", "v");
	fx_header_str(&f, DLMAP_HDR_REPLY_TO, "r");
	expect_topic(&f, "a/b");
	ck_assert_ptr_null(f.out.props);
	/* Fixed header 2, topic 2 + 3, packet id 2, payload 10. */
	ck_assert_uint_eq(f.out.packet_size, 2 + 5 + 2 + 10);
	fx_fini(&f);
}
END_TEST

/* ------------------------------------------------------------------------ */
/* Packet size */

START_TEST(test_packet_size)
{
	struct fx f;

	/* MQTT 5, no properties: a 1-byte property length. */
	fx_init(&f, "a.b");
	expect_topic(&f, "a/b");
	ck_assert_uint_eq(f.out.packet_size, 2 + 5 + 2 + 1 + 10);
	fx_fini(&f);

	fx_init(&f, "a.b");
	f.entry.qos = 0;
	expect_topic(&f, "a/b");
	ck_assert_uint_eq(f.out.packet_size, 2 + 5 + 1 + 10);
	fx_fini(&f);

	/* Content type 1+2+4, user property 1+2+1+2+1, expiry 1+4. */
	fx_init(&f, "a.b");
	f.props._flags = AMQP_BASIC_CONTENT_TYPE_FLAG | AMQP_BASIC_EXPIRATION_FLAG;
	f.props.content_type = amqp_cstring_bytes("text");
	f.props.expiration = amqp_cstring_bytes("5000");
	fx_header_str(&f, "h", "v");
	expect_topic(&f, "a/b");
	ck_assert_uint_eq(f.out.packet_size, 2 + 5 + 2 + 1 + 7 + 7 + 5 + 10);
	fx_fini(&f);

	/* A remaining length of 128 takes two bytes. */
	fx_init(&f, "a.b");
	f.entry.qos = 0;
	f.d.body_len = 128 - 5 - 1;
	expect_topic(&f, "a/b");
	ck_assert_uint_eq(f.out.packet_size, 1 + 2 + 128);
	fx_fini(&f);
}
END_TEST

START_TEST(test_too_large)
{
	struct fx f;

	fx_init(&f, "a.b");
	f.link.max_packet = 2 + 5 + 2 + 1 + 10;
	expect_topic(&f, "a/b");
	fx_fini(&f);

	fx_init(&f, "a.b");
	f.link.max_packet = 2 + 5 + 2 + 1 + 10 - 1;
	expect_poison(&f, DLMAP_ERR_TOO_LARGE);
	fx_fini(&f);

	/* The properties count: a header tips it over. */
	fx_init(&f, "a.b");
	f.link.max_packet = 2 + 5 + 2 + 1 + 10;
	fx_header_str(&f, "h", "v");
	expect_poison(&f, DLMAP_ERR_TOO_LARGE);
	fx_fini(&f);

	/* ...but not on MQTT 3.1.1, which carries none. */
	fx_init(&f, "a.b");
	f.link.mqtt5 = false;
	f.link.max_packet = 2 + 5 + 2 + 10;
	fx_header_str(&f, "h", "v");
	expect_topic(&f, "a/b");
	fx_fini(&f);

	/* No broker maximum: MQTT's own. */
	fx_init(&f, "a");
	f.d.body_len = 268435455u;
	expect_poison(&f, DLMAP_ERR_TOO_LARGE);
	fx_fini(&f);
	fx_init(&f, "a");
	f.d.body_len = 268435455u - 2 - 1 - 2 - 1;
	expect_topic(&f, "a");
	ck_assert_uint_eq(f.out.packet_size, DLMAP_PACKET_MAX);
	fx_fini(&f);
}
END_TEST

/* ------------------------------------------------------------------------ */
/* The shape of a template (the echo check's topic filter) */

/* The shape of `tmpl` in a buffer of `size` bytes; NULL when dlmap_shape() refuses. */
static const char *shape_of(const char *tmpl, size_t size)
{
	static char buf[256];
	struct dlmap_template t;
	struct fx f;
	bool ok;

	ck_assert_uint_le(size, sizeof(buf));
	fx_init(&f, "k");
	ck_assert_int_eq(dlmap_compile(tmpl, count_report, &f, &t), 0);
	ck_assert_int_eq(f.reports, 0);
	memset(buf, '@', sizeof(buf));
	ok = dlmap_shape(&t, buf, size);
	dlmap_template_free(&t);
	fx_fini(&f);
	if (ok)
		ck_assert_uint_lt(strlen(buf), size);
	return ok ? buf : NULL;
}

static void expect_shape(const char *tmpl, const char *want)
{
	const char *got = shape_of(tmpl, 256);

	ck_assert_msg(got != NULL, "\"%s\": refused, wanted \"%s\"", tmpl, want);
	ck_assert_msg(strcmp(got, want) == 0, "\"%s\": \"%s\", wanted \"%s\"", tmpl, got, want);
}

static void expect_no_shape(const char *tmpl)
{
	const char *got = shape_of(tmpl, 256);

	ck_assert_msg(got == NULL, "\"%s\": shape \"%s\", wanted a refusal", tmpl, got);
}

/* No template: the routing key translated back can give any topic. */
START_TEST(test_shape_no_template)
{
	char buf[8];

	memset(buf, '@', sizeof(buf));
	ck_assert(dlmap_shape(NULL, buf, sizeof(buf)));
	ck_assert_str_eq(buf, "#");
	ck_assert(dlmap_shape(NULL, buf, 2));
	ck_assert_str_eq(buf, "#");
	ck_assert(!dlmap_shape(NULL, buf, 1));
	ck_assert(!dlmap_shape(NULL, buf, 0));
}
END_TEST

/* A level with {N} or {header:NAME} in it is '+'; from {key} on, '#'. */
START_TEST(test_shape_levels)
{
	expect_shape("devices/{1}/commands", "devices/+/commands");
	expect_shape("a/x{1}y/b", "a/+/b");
	expect_shape("a/{1}{2}/b", "a/+/b");
	expect_shape("a/{1}", "a/+");
	expect_shape("{1}/{2}", "+/+");
	expect_shape("{header:id}", "+");
	expect_shape("d/{header:id}/x{header:kind}", "d/+/+");
	expect_shape("a/{key}/c", "a/#");
	expect_shape("a/x{key}", "a/#");
	expect_shape("{key}", "#");
	expect_shape("{key}/c", "#");
	expect_shape("plain/topic", "plain/topic");
	/* Empty levels stay levels. */
	expect_shape("a//{1}/", "a//+/");
	expect_shape("/{1}", "/+");
}
END_TEST

/* Literal braces are literal text: they stay, one each. */
START_TEST(test_shape_braces)
{
	expect_shape("{{x}}", "{x}");
	expect_shape("d/{{}}/{1}", "d/{}/+");
	expect_shape("a/{{{1}}}/b", "a/+/b");
}
END_TEST

/* A wildcard in the literal text: no topic name may hold it. */
START_TEST(test_shape_wildcards)
{
	expect_no_shape("devices/+/commands");
	expect_no_shape("a/#");
	expect_no_shape("a/b+");
	expect_no_shape("+");
	expect_no_shape("#");
	expect_no_shape("{1}/#");
	expect_no_shape("x{1}+/y");
	/* Also after a {key}: every topic the template gives would hold it. */
	expect_no_shape("a/{key}/+");
	expect_no_shape("{key}#");
	expect_no_shape("a/{key}/{1}/b#c");
}
END_TEST

/* A buffer too small for the shape and its NUL: refused, never overrun. */
START_TEST(test_shape_small_buffer)
{
	/* "devices/+/commands" is 18 bytes. */
	ck_assert_ptr_null(shape_of("devices/{1}/commands", 18));
	ck_assert_ptr_nonnull(shape_of("devices/{1}/commands", 19));
	ck_assert_str_eq(shape_of("devices/{1}/commands", 19), "devices/+/commands");
	ck_assert_ptr_null(shape_of("plain", 5));
	ck_assert_ptr_nonnull(shape_of("plain", 6));
	ck_assert_ptr_null(shape_of("{1}", 1));
	ck_assert_ptr_nonnull(shape_of("{1}", 2));
	ck_assert_ptr_null(shape_of("a/{key}", 3));
	ck_assert_ptr_nonnull(shape_of("a/{key}", 4));
	ck_assert_ptr_null(shape_of("x", 0));
}
END_TEST

START_TEST(test_strerror)
{
	for (int r = DLMAP_OK; r <= DLMAP_ERR_NOMEM; r++) {
		ck_assert_ptr_nonnull(dlmap_strerror(r));
		ck_assert_str_ne(dlmap_strerror(r), "unknown mapping error");
	}
	ck_assert(!dlmap_is_poison(DLMAP_OK));
	ck_assert(!dlmap_is_poison(DLMAP_ERR_NOMEM));
	ck_assert(dlmap_is_poison(DLMAP_ERR_TOO_LARGE));
}
END_TEST

static Suite *dlmap_suite(void)
{
	Suite *s = suite_create("dlmap");
	const struct {
		const char *name;
		const TTest *test;
	} cases[] = {
		{ "plain", test_plain },
		{ "empty_words", test_empty_words },
		{ "slash_and_star", test_slash_and_star },
		{ "plain_poison", test_plain_poison },
		{ "template_words", test_template_words },
		{ "template_headers", test_template_headers },
		{ "template_missing", test_template_missing },
		{ "template_poison_values", test_template_poison_values },
		{ "topic_length", test_topic_length },
		{ "compile_errors", test_compile_errors },
		{ "compile_huge_word", test_compile_huge_word },
		{ "qos", test_qos },
		{ "retain", test_retain },
		{ "content_type", test_content_type },
		{ "correlation", test_correlation },
		{ "response_topic", test_response_topic },
		{ "expiry", test_expiry },
		{ "user_properties", test_user_properties },
		{ "user_property_order", test_user_property_order },
		{ "dropped_headers", test_dropped_headers },
		{ "long_values", test_long_values },
		{ "mqtt311_no_properties", test_mqtt311_no_properties },
		{ "packet_size", test_packet_size },
		{ "too_large", test_too_large },
		{ "shape_no_template", test_shape_no_template },
		{ "shape_levels", test_shape_levels },
		{ "shape_braces", test_shape_braces },
		{ "shape_wildcards", test_shape_wildcards },
		{ "shape_small_buffer", test_shape_small_buffer },
		{ "strerror", test_strerror },
		{ "dollar", test_dollar },
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
	SRunner *sr = srunner_create(dlmap_suite());
	int failed;

	srunner_run_all(sr, CK_NORMAL);
	failed = srunner_ntests_failed(sr);
	srunner_free(sr);
	return failed != 0 ? EXIT_FAILURE : EXIT_SUCCESS;
}
