#include "props.h"

#include <check.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <mqtt_protocol.h>

/* One conversion: the inputs, the scratch buffer and the result. */
struct fx {
	mosquitto_property *mqtt;
	struct props_input in;
	struct props_buf pb;
	amqp_basic_properties_t out;
};

static void fx_init(struct fx *f)
{
	memset(f, 0, sizeof(*f));
	f->in.qos = 1;
	f->in.topic = "site/sensor.1/temp";
	f->in.topic_len = strlen(f->in.topic);
	f->in.persistent = RULE_PERSIST_QOS;
	f->in.dot_replacement = ".";
	props_init(&f->pb);
}

/*
 * Converts, then frees the MQTT property list at once: nothing in the
 * result may point into it (ASan would see a use after free).
 */
static void fx_build(struct fx *f)
{
	f->in.mqtt = f->mqtt;
	ck_assert_int_eq(props_build(&f->pb, &f->in, &f->out), 0);
	mosquitto_property_free_all(&f->mqtt);
	f->in.mqtt = NULL;
}

static void fx_fini(struct fx *f)
{
	mosquitto_property_free_all(&f->mqtt);
	props_fini(&f->pb);
}

static void add_string(struct fx *f, int id, const char *v)
{
	ck_assert_int_eq(mosquitto_property_add_string(&f->mqtt, id, v), MOSQ_ERR_SUCCESS);
}

static void add_user(struct fx *f, const char *name, const char *value)
{
	ck_assert_int_eq(mosquitto_property_add_string_pair(&f->mqtt, MQTT_PROP_USER_PROPERTY, name,
	                                                    value), MOSQ_ERR_SUCCESS);
}

static void add_corr(struct fx *f, const void *v, size_t len)
{
	ck_assert_int_eq(mosquitto_property_add_binary(&f->mqtt, MQTT_PROP_CORRELATION_DATA, v,
	                                               (uint16_t)len), MOSQ_ERR_SUCCESS);
}

static char *filled(size_t len, char c)
{
	char *s = malloc(len + 1);

	ck_assert_ptr_nonnull(s);
	memset(s, c, len);
	s[len] = '\0';
	return s;
}

static bool bytes_eq(amqp_bytes_t b, const void *want, size_t len)
{
	return b.len == len && (len == 0 || memcmp(b.bytes, want, len) == 0);
}

/* Every header name, in order, joined by ','; checks sortedness and uniqueness. */
static const char *header_names(const amqp_basic_properties_t *p)
{
	static char buf[4096];
	size_t o = 0;

	buf[0] = '\0';
	if (!(p->_flags & AMQP_BASIC_HEADERS_FLAG))
		return buf;
	ck_assert_int_gt(p->headers.num_entries, 0);
	for (int i = 0; i < p->headers.num_entries; i++) {
		amqp_bytes_t k = p->headers.entries[i].key;

		if (i > 0) {
			amqp_bytes_t prev = p->headers.entries[i - 1].key;
			size_t n = prev.len < k.len ? prev.len : k.len;
			int c = memcmp(prev.bytes, k.bytes, n);

			ck_assert_msg(c < 0 || (c == 0 && prev.len < k.len),
			              "headers %d and %d not sorted and unique", i - 1, i);
		}
		ck_assert_uint_lt(o + k.len + 2, sizeof(buf));
		if (i > 0)
			buf[o++] = ',';
		memcpy(buf + o, k.bytes, k.len);
		o += k.len;
		buf[o] = '\0';
	}
	return buf;
}

static const amqp_field_value_t *header(const amqp_basic_properties_t *p, const char *name)
{
	if (!(p->_flags & AMQP_BASIC_HEADERS_FLAG))
		return NULL;
	for (int i = 0; i < p->headers.num_entries; i++)
		if (bytes_eq(p->headers.entries[i].key, name, strlen(name)))
			return &p->headers.entries[i].value;
	return NULL;
}

/* Insists on a long-string header `name` holding `len` bytes `want`. */
static void header_str(const amqp_basic_properties_t *p, const char *name, const void *want,
                       size_t len)
{
	const amqp_field_value_t *v = header(p, name);

	ck_assert_msg(v != NULL, "no header %s", name);
	ck_assert_int_eq(v->kind, AMQP_FIELD_KIND_UTF8);
	ck_assert_msg(bytes_eq(v->value.bytes, want, len), "header %s: got '%.*s'", name,
	              (int)v->value.bytes.len, (char *)v->value.bytes.bytes);
}

START_TEST(test_no_properties)
{
	struct fx f;

	fx_init(&f);
	f.in.qos = 0;
	fx_build(&f);
	ck_assert_uint_eq(f.out._flags, AMQP_BASIC_DELIVERY_MODE_FLAG);
	ck_assert_uint_eq(f.out.delivery_mode, 1);
	f.in.qos = 1;
	fx_build(&f);
	ck_assert_uint_eq(f.out._flags, AMQP_BASIC_DELIVERY_MODE_FLAG);
	ck_assert_uint_eq(f.out.delivery_mode, 2);
	fx_fini(&f);
}
END_TEST

START_TEST(test_persistent_override)
{
	struct fx f;

	fx_init(&f);
	f.in.qos = 0;
	f.in.persistent = RULE_PERSIST_YES;
	fx_build(&f);
	ck_assert_uint_eq(f.out.delivery_mode, 2);
	f.in.qos = 1;
	f.in.persistent = RULE_PERSIST_NO;
	fx_build(&f);
	ck_assert_uint_eq(f.out.delivery_mode, 1);
	ck_assert(f.out._flags & AMQP_BASIC_DELIVERY_MODE_FLAG);
	fx_fini(&f);
}
END_TEST

START_TEST(test_content_type)
{
	struct fx f;
	char *s255 = filled(255, 'c'), *s256 = filled(256, 'c');

	fx_init(&f);
	add_string(&f, MQTT_PROP_CONTENT_TYPE, "application/json");
	fx_build(&f);
	ck_assert(f.out._flags & AMQP_BASIC_CONTENT_TYPE_FLAG);
	ck_assert(bytes_eq(f.out.content_type, "application/json", 16));
	ck_assert_str_eq(header_names(&f.out), "");

	add_string(&f, MQTT_PROP_CONTENT_TYPE, s255);
	fx_build(&f);
	ck_assert(f.out._flags & AMQP_BASIC_CONTENT_TYPE_FLAG);
	ck_assert(bytes_eq(f.out.content_type, s255, 255));

	add_string(&f, MQTT_PROP_CONTENT_TYPE, s256);
	fx_build(&f);
	ck_assert(!(f.out._flags & AMQP_BASIC_CONTENT_TYPE_FLAG));
	ck_assert_str_eq(header_names(&f.out), "");

	add_string(&f, MQTT_PROP_CONTENT_TYPE, "text/plain; charset=\xc3\xa9");
	fx_build(&f);
	ck_assert(!(f.out._flags & AMQP_BASIC_CONTENT_TYPE_FLAG));
	ck_assert_uint_eq(f.out._flags, AMQP_BASIC_DELIVERY_MODE_FLAG);
	free(s255);
	free(s256);
	fx_fini(&f);
}
END_TEST

/* Correlation data that is a valid short string becomes correlation_id. */
static void corr_as_id(const void *data, size_t len)
{
	struct fx f;

	fx_init(&f);
	add_corr(&f, data, len);
	fx_build(&f);
	ck_assert_msg(f.out._flags & AMQP_BASIC_CORRELATION_ID_FLAG, "%zu bytes: no correlation_id",
	              len);
	ck_assert(bytes_eq(f.out.correlation_id, data, len));
	ck_assert_str_eq(header_names(&f.out), "");
	fx_fini(&f);
}

/* Anything else goes to header x-correlation-id, byte for byte. */
static void corr_as_header(const void *data, size_t len)
{
	struct fx f;

	fx_init(&f);
	add_corr(&f, data, len);
	fx_build(&f);
	ck_assert_msg(!(f.out._flags & AMQP_BASIC_CORRELATION_ID_FLAG),
	              "%zu bytes: unexpected correlation_id", len);
	ck_assert_str_eq(header_names(&f.out), PROPS_HDR_CORRELATION);
	header_str(&f.out, PROPS_HDR_CORRELATION, data, len);
	fx_fini(&f);
}

START_TEST(test_correlation)
{
	char *s255 = filled(255, 'x'), *s256 = filled(256, 'x');

	corr_as_id("req-42", 6);
	corr_as_id("", 0);
	corr_as_id(s255, 255);
	/* 2-, 3- and 4-byte sequences: é € U+1F600 */
	corr_as_id("\xc3\xa9\xe2\x82\xac\xf0\x9f\x98\x80", 9);
	corr_as_id("\xf4\x8f\xbf\xbf", 4);   /* U+10FFFF */

	corr_as_header(s256, 256);
	corr_as_header("a\0b", 3);
	corr_as_header("\xff", 1);
	corr_as_header("\xc0\x80", 2);          /* overlong NUL */
	corr_as_header("\xe0\x80\xaf", 3);      /* overlong '/' */
	corr_as_header("\xed\xa0\x80", 3);      /* surrogate */
	corr_as_header("\xf4\x90\x80\x80", 4);  /* past U+10FFFF */
	corr_as_header("ab\xe2\x82", 4);        /* truncated */
	corr_as_header("\x80" "abc", 4);        /* stray continuation byte */
	corr_as_header("\xc3" "a", 2);          /* missing continuation byte */
	free(s255);
	free(s256);
}
END_TEST

START_TEST(test_response_topic)
{
	struct fx f;
	char *big = filled(1000, 'r');

	fx_init(&f);
	add_string(&f, MQTT_PROP_RESPONSE_TOPIC, "reply/to/v1.2/me");
	fx_build(&f);
	ck_assert_str_eq(header_names(&f.out), PROPS_HDR_REPLY_TO);
	header_str(&f.out, PROPS_HDR_REPLY_TO, "reply.to.v1.2.me", 16);

	f.in.dot_replacement = "__";
	add_string(&f, MQTT_PROP_RESPONSE_TOPIC, "reply/to/v1.2/me");
	fx_build(&f);
	header_str(&f.out, PROPS_HDR_REPLY_TO, "reply.to.v1__2.me", 17);

	/* A header value is a long string: no 255-byte limit. */
	for (size_t i = 1; i < 1000; i += 10)
		big[i] = '/';
	big[500] = '.';
	add_string(&f, MQTT_PROP_RESPONSE_TOPIC, big);
	fx_build(&f);
	for (size_t i = 1; i < 1000; i += 10)
		big[i] = '.';
	{
		char *want = malloc(1002);

		ck_assert_ptr_nonnull(want);
		memcpy(want, big, 500);
		memcpy(want + 500, "__", 2);
		memcpy(want + 502, big + 501, 499);
		header_str(&f.out, PROPS_HDR_REPLY_TO, want, 1001);
		free(want);
	}
	free(big);
	fx_fini(&f);
}
END_TEST

START_TEST(test_user_properties)
{
	struct fx f;
	char *n255 = filled(255, 'n'), *n256 = filled(256, 'm');
	char want[512];

	fx_init(&f);
	add_user(&f, "zone", "north");
	add_user(&f, "dup", "first");
	add_user(&f, "Alpha", "A");
	add_user(&f, "dup", "second");
	add_user(&f, n256, "dropped");
	add_user(&f, n255, "kept");
	add_user(&f, "empty", "");
	fx_build(&f);
	snprintf(want, sizeof(want), "Alpha,dup,empty,%s,zone", n255);
	ck_assert_str_eq(header_names(&f.out), want);
	ck_assert_ptr_null(header(&f.out, n256));
	header_str(&f.out, n255, "kept", 4);
	header_str(&f.out, "dup", "first", 5);
	header_str(&f.out, "zone", "north", 5);
	header_str(&f.out, "Alpha", "A", 1);
	header_str(&f.out, "empty", "", 0);
	ck_assert_uint_eq(f.out._flags, AMQP_BASIC_DELIVERY_MODE_FLAG | AMQP_BASIC_HEADERS_FLAG);

	/* RabbitMQ's CC and BCC must be arrays: user properties of those names are left out. */
	add_user(&f, "CC", "x.y");
	add_user(&f, "BCC", "x.y");
	add_user(&f, "cc", "kept");
	fx_build(&f);
	ck_assert_str_eq(header_names(&f.out), "cc");
	ck_assert(field_is_route_header("CC") && field_is_route_header("BCC"));
	ck_assert(!field_is_route_header("cc") && !field_is_route_header("CCX"));

	/* Only a dropped name: no headers at all. */
	add_user(&f, n256, "dropped");
	fx_build(&f);
	ck_assert_uint_eq(f.out._flags, AMQP_BASIC_DELIVERY_MODE_FLAG);
	free(n255);
	free(n256);
	fx_fini(&f);
}
END_TEST

START_TEST(test_expiry)
{
	struct fx f;

	fx_init(&f);
	ck_assert_int_eq(mosquitto_property_add_int32(&f.mqtt, MQTT_PROP_MESSAGE_EXPIRY_INTERVAL, 60),
	                 MOSQ_ERR_SUCCESS);
	fx_build(&f);
	ck_assert(f.out._flags & AMQP_BASIC_EXPIRATION_FLAG);
	ck_assert(bytes_eq(f.out.expiration, "60000", 5));

	/* RabbitMQ closes the channel over more than ten years: capped there. */
	ck_assert_int_eq(mosquitto_property_add_int32(&f.mqtt, MQTT_PROP_MESSAGE_EXPIRY_INTERVAL,
	                                              315360000u), MOSQ_ERR_SUCCESS);
	fx_build(&f);
	ck_assert(bytes_eq(f.out.expiration, "315360000000", 12));
	ck_assert_int_eq(mosquitto_property_add_int32(&f.mqtt, MQTT_PROP_MESSAGE_EXPIRY_INTERVAL,
	                                              315360001u), MOSQ_ERR_SUCCESS);
	fx_build(&f);
	ck_assert(bytes_eq(f.out.expiration, "315360000000", 12));
	ck_assert_int_eq(mosquitto_property_add_int32(&f.mqtt, MQTT_PROP_MESSAGE_EXPIRY_INTERVAL,
	                                              4294967295u), MOSQ_ERR_SUCCESS);
	fx_build(&f);
	ck_assert(bytes_eq(f.out.expiration, "315360000000", 12));

	ck_assert_int_eq(mosquitto_property_add_int32(&f.mqtt, MQTT_PROP_MESSAGE_EXPIRY_INTERVAL, 0),
	                 MOSQ_ERR_SUCCESS);
	fx_build(&f);
	ck_assert(f.out._flags & AMQP_BASIC_EXPIRATION_FLAG);
	ck_assert(bytes_eq(f.out.expiration, "0", 1));
	fx_fini(&f);
}
END_TEST

START_TEST(test_payload_format_not_carried)
{
	struct fx f;

	fx_init(&f);
	ck_assert_int_eq(mosquitto_property_add_byte(&f.mqtt, MQTT_PROP_PAYLOAD_FORMAT_INDICATOR, 1),
	                 MOSQ_ERR_SUCCESS);
	fx_build(&f);
	ck_assert_uint_eq(f.out._flags, AMQP_BASIC_DELIVERY_MODE_FLAG);
	fx_fini(&f);
}
END_TEST

START_TEST(test_rule_headers)
{
	struct fx f;
	struct rules_field h[3] = {
		{ .name = "kind", .kind = RV_STRING, .s = "temperature" },
		{ .name = "sample-rate", .kind = RV_INT, .i = -9000000000LL },
		{ .name = "calibrated", .kind = RV_BOOL, .b = true },
	};
	const amqp_field_value_t *v;

	fx_init(&f);
	add_user(&f, "kind", "from-mqtt");
	add_user(&f, "other", "o");
	f.in.headers = h;
	f.in.n_headers = 3;
	fx_build(&f);
	ck_assert_str_eq(header_names(&f.out), "calibrated,kind,other,sample-rate");
	header_str(&f.out, "kind", "temperature", 11);
	header_str(&f.out, "other", "o", 1);
	v = header(&f.out, "sample-rate");
	ck_assert_int_eq(v->kind, AMQP_FIELD_KIND_I64);
	ck_assert_int_eq(v->value.i64, -9000000000LL);
	v = header(&f.out, "calibrated");
	ck_assert_int_eq(v->kind, AMQP_FIELD_KIND_BOOLEAN);
	ck_assert_int_eq(v->value.boolean, 1);

	h[2].b = false;
	fx_build(&f);
	ck_assert_str_eq(header_names(&f.out), "calibrated,kind,sample-rate");
	ck_assert_int_eq(header(&f.out, "calibrated")->value.boolean, 0);
	fx_fini(&f);
}
END_TEST

START_TEST(test_topic_retain_headers)
{
	struct fx f;
	struct rules_field h[1] = {
		{ .name = PROPS_HDR_RETAIN, .kind = RV_STRING, .s = "rule" },
	};
	const amqp_field_value_t *v;

	fx_init(&f);
	f.in.topic_header = true;
	f.in.retain_header = true;
	f.in.retain = true;
	add_user(&f, PROPS_HDR_TOPIC, "spoofed");
	f.in.headers = h;
	f.in.n_headers = 1;
	fx_build(&f);
	ck_assert_str_eq(header_names(&f.out), PROPS_HDR_RETAIN "," PROPS_HDR_TOPIC);
	header_str(&f.out, PROPS_HDR_TOPIC, "site/sensor.1/temp", 18);
	v = header(&f.out, PROPS_HDR_RETAIN);
	ck_assert_int_eq(v->kind, AMQP_FIELD_KIND_BOOLEAN);
	ck_assert_int_eq(v->value.boolean, 1);

	f.in.retain = false;
	f.in.topic_header = false;
	f.in.n_headers = 0;
	fx_build(&f);
	ck_assert_str_eq(header_names(&f.out), PROPS_HDR_RETAIN);
	ck_assert_int_eq(header(&f.out, PROPS_HDR_RETAIN)->value.boolean, 0);

	/* Not asked for: a user property of that name stays as it came. */
	f.in.retain_header = false;
	add_user(&f, PROPS_HDR_TOPIC, "as-sent");
	fx_build(&f);
	header_str(&f.out, PROPS_HDR_TOPIC, "as-sent", 7);
	fx_fini(&f);
}
END_TEST

/* Headers made of MQTT properties take precedence over user properties. */
START_TEST(test_derived_over_user)
{
	struct fx f;

	fx_init(&f);
	add_user(&f, PROPS_HDR_REPLY_TO, "user");
	add_user(&f, PROPS_HDR_CORRELATION, "user");
	add_string(&f, MQTT_PROP_RESPONSE_TOPIC, "a/b");
	add_corr(&f, "\xff\xfe", 2);
	fx_build(&f);
	ck_assert_str_eq(header_names(&f.out), PROPS_HDR_CORRELATION "," PROPS_HDR_REPLY_TO);
	header_str(&f.out, PROPS_HDR_REPLY_TO, "a.b", 3);
	header_str(&f.out, PROPS_HDR_CORRELATION, "\xff\xfe", 2);
	fx_fini(&f);
}
END_TEST

START_TEST(test_sorting)
{
	struct fx f;
	char name[16], want[4096];
	size_t o = 0;

	fx_init(&f);
	add_user(&f, "b", "1");
	add_user(&f, "ab", "1");
	add_user(&f, "a", "1");
	add_user(&f, "B", "1");
	add_user(&f, "\xc3\xa9", "1");
	add_user(&f, "a-", "1");
	add_user(&f, "_", "1");
	fx_build(&f);
	/* Bytewise: 'B' 0x42 < '_' 0x5f < 'a' < "a-" < "ab" < 'b' < 0xc3. */
	ck_assert_str_eq(header_names(&f.out), "B,_,a,a-,ab,b,\xc3\xa9");

	/* Many names, given in reverse and each twice: sorted, the first of each kept. */
	for (int i = 299; i >= 0; i--) {
		snprintf(name, sizeof(name), "h%03d", i);
		add_user(&f, name, "first");
	}
	for (int i = 0; i < 300; i++) {
		snprintf(name, sizeof(name), "h%03d", i);
		add_user(&f, name, "second");
	}
	fx_build(&f);
	for (int i = 0; i < 300; i++)
		o += (size_t)snprintf(want + o, sizeof(want) - o, "%sh%03d", i ? "," : "", i);
	ck_assert_str_eq(header_names(&f.out), want);
	for (int i = 0; i < 300; i++) {
		snprintf(name, sizeof(name), "h%03d", i);
		header_str(&f.out, name, "first", 5);
	}
	fx_fini(&f);
}
END_TEST

START_TEST(test_everything)
{
	struct fx f;
	struct rules_field h[1] = { { .name = "src", .kind = RV_STRING, .s = "bridge" } };

	fx_init(&f);
	f.in.qos = 0;
	f.in.persistent = RULE_PERSIST_YES;
	f.in.dot_replacement = "_";
	f.in.headers = h;
	f.in.n_headers = 1;
	f.in.topic_header = true;
	add_string(&f, MQTT_PROP_CONTENT_TYPE, "text/plain");
	add_corr(&f, "c-1", 3);
	add_string(&f, MQTT_PROP_RESPONSE_TOPIC, "r/x.y");
	ck_assert_int_eq(mosquitto_property_add_int32(&f.mqtt, MQTT_PROP_MESSAGE_EXPIRY_INTERVAL, 5),
	                 MOSQ_ERR_SUCCESS);
	ck_assert_int_eq(mosquitto_property_add_byte(&f.mqtt, MQTT_PROP_PAYLOAD_FORMAT_INDICATOR, 1),
	                 MOSQ_ERR_SUCCESS);
	add_user(&f, "u", "v");
	fx_build(&f);
	ck_assert_uint_eq(f.out._flags, AMQP_BASIC_DELIVERY_MODE_FLAG |
	                  AMQP_BASIC_CONTENT_TYPE_FLAG | AMQP_BASIC_CORRELATION_ID_FLAG |
	                  AMQP_BASIC_EXPIRATION_FLAG | AMQP_BASIC_HEADERS_FLAG);
	ck_assert_uint_eq(f.out.delivery_mode, 2);
	ck_assert(bytes_eq(f.out.content_type, "text/plain", 10));
	ck_assert(bytes_eq(f.out.correlation_id, "c-1", 3));
	ck_assert(bytes_eq(f.out.expiration, "5000", 4));
	ck_assert_str_eq(header_names(&f.out), "src,u,x-mqtt-topic,x-reply-to-topic");
	header_str(&f.out, PROPS_HDR_REPLY_TO, "r.x_y", 5);
	header_str(&f.out, "u", "v", 1);
	header_str(&f.out, "src", "bridge", 6);

	/* The next message, without properties, inherits nothing. */
	f.in.n_headers = 0;
	f.in.topic_header = false;
	f.in.persistent = RULE_PERSIST_QOS;
	fx_build(&f);
	ck_assert_uint_eq(f.out._flags, AMQP_BASIC_DELIVERY_MODE_FLAG);
	ck_assert_uint_eq(f.out.delivery_mode, 1);
	fx_fini(&f);
}
END_TEST

/* The plugin's headers: last, in its order (QoS then DUP), replacing any of their names. */
START_TEST(test_plugin_headers)
{
	struct fx f;
	const amqp_field_value_t *v;
	int n;

	fx_init(&f);
	ck_assert_int_eq(props_plugin_of("3.10"), PROPS_PLUGIN_310);
	ck_assert_int_eq(props_plugin_of("3.12"), PROPS_PLUGIN_312);
	ck_assert_int_eq(props_plugin_of("none"), PROPS_PLUGIN_NONE);
	ck_assert_int_eq(props_plugin_of(NULL), PROPS_PLUGIN_NONE);

	f.in.plugin = PROPS_PLUGIN_310;
	f.in.dup = true;
	add_user(&f, "a", "1");
	add_user(&f, PROPS_HDR_DUP, "from a user property");
	fx_build(&f);
	n = f.out.headers.num_entries;
	ck_assert_int_eq(n, 3);
	ck_assert(bytes_eq(f.out.headers.entries[0].key, "a", 1));
	ck_assert(bytes_eq(f.out.headers.entries[1].key, PROPS_HDR_QOS, strlen(PROPS_HDR_QOS)));
	ck_assert_int_eq(f.out.headers.entries[1].value.kind, AMQP_FIELD_KIND_I8);
	ck_assert_int_eq(f.out.headers.entries[1].value.value.i8, 1);
	ck_assert(bytes_eq(f.out.headers.entries[2].key, PROPS_HDR_DUP, strlen(PROPS_HDR_DUP)));
	ck_assert_int_eq(f.out.headers.entries[2].value.kind, AMQP_FIELD_KIND_BOOLEAN);
	ck_assert(f.out.headers.entries[2].value.value.boolean);

	/* 3.12: the QoS only, 0 for a QoS 0 message; nothing else makes a table. */
	f.in.plugin = PROPS_PLUGIN_312;
	f.in.qos = 0;
	f.in.dup = false;
	fx_build(&f);
	ck_assert_uint_eq(f.out._flags, AMQP_BASIC_DELIVERY_MODE_FLAG | AMQP_BASIC_HEADERS_FLAG);
	ck_assert_int_eq(f.out.headers.num_entries, 1);
	v = header(&f.out, PROPS_HDR_QOS);
	ck_assert_ptr_nonnull(v);
	ck_assert_int_eq(v->value.i8, 0);

	f.in.plugin = PROPS_PLUGIN_NONE;
	fx_build(&f);
	ck_assert_uint_eq(f.out._flags, AMQP_BASIC_DELIVERY_MODE_FLAG);
	fx_fini(&f);
}
END_TEST

/* Messages that differ only in a property or header hash apart. */
START_TEST(test_hash)
{
	struct fx f;
	uint64_t plain, with_user, other_value, qos0;

	fx_init(&f);
	fx_build(&f);
	plain = props_hash(&f.out);
	fx_build(&f);
	ck_assert_uint_eq(props_hash(&f.out), plain);
	add_user(&f, "k", "v");
	fx_build(&f);
	with_user = props_hash(&f.out);
	add_user(&f, "k", "w");
	fx_build(&f);
	other_value = props_hash(&f.out);
	f.in.qos = 0;
	fx_build(&f);
	qos0 = props_hash(&f.out);
	ck_assert_uint_ne(plain, with_user);
	ck_assert_uint_ne(with_user, other_value);
	ck_assert_uint_ne(plain, qos0);
	fx_fini(&f);
}
END_TEST

/* rabbitmq-c's own encoding of `p` into `room` bytes: its length, or a negative error. */
static int encode(amqp_basic_properties_t *p, size_t room)
{
	static char buf[PROPS_FRAME_MAX];
	amqp_bytes_t b = { room, buf };

	ck_assert_uint_le(room, sizeof(buf));
	return amqp_encode_properties(AMQP_BASIC_CLASS, p, b);
}

/* props_encoded_size() agrees with rabbitmq-c for every kind of property the bridge builds. */
START_TEST(test_encoded_size)
{
	struct fx f;
	struct rules_field h[3] = {
		{ .name = "s", .kind = RV_STRING, .s = "text" },
		{ .name = "i", .kind = RV_INT, .i = -7 },
		{ .name = "b", .kind = RV_BOOL, .b = true },
	};
	char *big = filled(300, 'c');
	int n;

	fx_init(&f);
	fx_build(&f);
	ck_assert_int_eq(encode(&f.out, PROPS_FRAME_MAX), (int)props_encoded_size(&f.out));
	ck_assert_uint_eq(props_encoded_size(&f.out), 3);

	f.in.plugin = PROPS_PLUGIN_310;
	f.in.headers = h;
	f.in.n_headers = 3;
	f.in.topic_header = true;
	f.in.retain_header = true;
	add_string(&f, MQTT_PROP_CONTENT_TYPE, "application/json");
	add_corr(&f, big, 300);
	add_string(&f, MQTT_PROP_RESPONSE_TOPIC, "r/x.y");
	ck_assert_int_eq(mosquitto_property_add_int32(&f.mqtt, MQTT_PROP_MESSAGE_EXPIRY_INTERVAL,
	                                              4294967295u), MOSQ_ERR_SUCCESS);
	add_user(&f, "u", "v");
	fx_build(&f);
	n = encode(&f.out, PROPS_FRAME_MAX);
	ck_assert_int_gt(n, 300);
	ck_assert_uint_eq(props_encoded_size(&f.out), (size_t)n);
	/* The table of the rule's headers alone, as config_load() checks it. */
	ck_assert_uint_eq(props_fields_size(h, 3), 4 + (2 + 1 + 4 + 4) + (2 + 1 + 8) + (2 + 1 + 1));
	free(big);
	fx_fini(&f);
}
END_TEST

/*
 * The edges: a key of 255 bytes, a body at the limit, and properties that
 * fill the frame exactly pass; one byte more of any does not.  At the
 * frame's edge rabbitmq-c itself encodes the one and refuses the other.
 */
START_TEST(test_check_edges)
{
	const struct props_limits lim = { .frame_max = PROPS_FRAME_MAX, .max_body = 1000 };
	const struct props_limits learnt = { .frame_max = 4096, .max_body = 500,
	                                     .brokers_max_body = true };
	const size_t room = PROPS_FRAME_MAX - PROPS_HEADER_OVERHEAD;
	amqp_basic_properties_t p;
	amqp_table_entry_t e;
	char detail[200];
	/* Flags (2), table length (4), key "k" (2), kind (1), string length (4). */
	size_t fixed = 2 + 4 + 2 + 1 + 4;
	char *v = filled(room - fixed + 1, 'v');

	memset(&p, 0, sizeof(p));
	p._flags = AMQP_BASIC_HEADERS_FLAG;
	p.headers.num_entries = 1;
	p.headers.entries = &e;
	props_entry_text(&e, "k", 1, v, room - fixed);
	ck_assert_uint_eq(props_encoded_size(&p), room);
	ck_assert_ptr_null(props_check(&lim, 255, 1000, &p, detail, sizeof(detail)));
	ck_assert_int_eq(encode(&p, room), (int)room);

	ck_assert_str_eq(props_check(&lim, 256, 1000, &p, detail, sizeof(detail)),
	                 "routing-key-too-long");
	ck_assert_str_eq(detail, "routing key of 256 bytes; AMQP allows 255");
	ck_assert_str_eq(props_check(&lim, 255, 1001, &p, detail, sizeof(detail)), "too-large");
	ck_assert_str_eq(detail, "body of 1001 bytes; amqp.max_message_size is 1000");
	/* A body too large comes first: its dead-letter copy must go without it. */
	ck_assert_str_eq(props_check(&lim, 256, 1001, &p, detail, sizeof(detail)), "too-large");
	ck_assert_str_eq(props_check(&learnt, 1, 501, &p, detail, sizeof(detail)), "too-large");
	ck_assert_str_eq(detail, "body of 501 bytes; RabbitMQ's max_message_size is 500");

	props_entry_text(&e, "k", 1, v, room - fixed + 1);
	ck_assert_uint_eq(props_encoded_size(&p), room + 1);
	ck_assert_str_eq(props_check(&lim, 255, 1000, &p, detail, sizeof(detail)),
	                 "properties-too-large");
	ck_assert_str_eq(detail, "properties of 131053 bytes encoded; a frame of 131072 bytes "
	                 "holds 131052");
	ck_assert_int_lt(encode(&p, room), 0);
	/* A smaller frame negotiated: the same check against it. */
	props_entry_text(&e, "k", 1, v, 4096 - PROPS_HEADER_OVERHEAD - fixed + 1);
	ck_assert_str_eq(props_check(&learnt, 1, 1, &p, detail, sizeof(detail)),
	                 "properties-too-large");
	props_entry_text(&e, "k", 1, v, 4096 - PROPS_HEADER_OVERHEAD - fixed);
	ck_assert_ptr_null(props_check(&learnt, 1, 1, &p, detail, sizeof(detail)));
	free(v);
}
END_TEST

static Suite *props_suite(void)
{
	Suite *s = suite_create("props");
	TCase *tc;

	tc = tcase_create("delivery_mode");
	tcase_add_test(tc, test_no_properties);
	tcase_add_test(tc, test_persistent_override);
	suite_add_tcase(s, tc);

	tc = tcase_create("properties");
	tcase_add_test(tc, test_content_type);
	tcase_add_test(tc, test_correlation);
	tcase_add_test(tc, test_response_topic);
	tcase_add_test(tc, test_expiry);
	tcase_add_test(tc, test_payload_format_not_carried);
	suite_add_tcase(s, tc);

	tc = tcase_create("headers");
	tcase_add_test(tc, test_user_properties);
	tcase_add_test(tc, test_rule_headers);
	tcase_add_test(tc, test_topic_retain_headers);
	tcase_add_test(tc, test_derived_over_user);
	tcase_add_test(tc, test_sorting);
	suite_add_tcase(s, tc);

	tc = tcase_create("combined");
	tcase_add_test(tc, test_everything);
	tcase_add_test(tc, test_plugin_headers);
	suite_add_tcase(s, tc);

	tc = tcase_create("limits");
	tcase_add_test(tc, test_encoded_size);
	tcase_add_test(tc, test_check_edges);
	tcase_add_test(tc, test_hash);
	suite_add_tcase(s, tc);
	return s;
}

int main(void)
{
	SRunner *sr = srunner_create(props_suite());
	int failed;

	srunner_run_all(sr, CK_NORMAL);
	failed = srunner_ntests_failed(sr);
	srunner_free(sr);
	return failed == 0 ? EXIT_SUCCESS : EXIT_FAILURE;
}
