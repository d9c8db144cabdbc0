#include "acons.h"

#include <check.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define FRAME_MAX 4096
#define MAX_SEEN 8

/* ------------------------------------------------------------------------ */
/* What the handlers saw, copied: a delivery is valid only during the callback. */

struct seen_delivery {
	size_t queue;
	uint64_t gen, tag;
	bool redelivered;
	char *exchange, *routing_key;
	const amqp_basic_properties_t *props;
	unsigned char *body;
	size_t body_len;
	bool body_null;              /* handed over without its bytes (over max_body) */
};

struct fx {
	struct acons c;
	struct aframe out;
	size_t rd;                   /* bytes of `out` already read back */
	amqp_pool_t pool;            /* what was read back is decoded here */
	char why[512];
	struct seen_delivery seen[MAX_SEEN];
	int deliveries, consuming, closed;
	char *closed_why;            /* the last closed() reason, NULL for none */
	bool closed_null;            /* the last closed() had `why` NULL */
	bool queue_gone;             /* what the last closed() said of the queue */
	int settle_in_callback;      /* -1: none; else the enum acons_settle to apply */
	int settle_rc;
};

static struct fx fx;

static char *dup_bytes(amqp_bytes_t b)
{
	char *s = malloc(b.len + 1);

	ck_assert_ptr_nonnull(s);
	if (b.len)
		memcpy(s, b.bytes, b.len);
	s[b.len] = '\0';
	return s;
}

static void on_deliver(void *arg, const struct acons_delivery *d)
{
	struct fx *f = arg;
	struct seen_delivery *s;

	ck_assert_ptr_eq(f, &fx);
	ck_assert_int_lt(f->deliveries, MAX_SEEN);
	s = &f->seen[f->deliveries++];
	s->queue = d->queue;
	s->gen = d->gen;
	s->tag = d->tag;
	s->redelivered = d->redelivered;
	s->exchange = dup_bytes(d->exchange);
	s->routing_key = dup_bytes(d->routing_key);
	s->props = d->props;
	s->body_len = d->body_len;
	s->body_null = d->body == NULL;
	s->body = malloc(d->body_len ? d->body_len : 1);
	ck_assert_ptr_nonnull(s->body);
	if (d->body_len && d->body)
		memcpy(s->body, d->body, d->body_len);
	/* dlink settles a poison message from inside the callback. */
	if (f->settle_in_callback >= 0)
		f->settle_rc = acons_settle(&f->c, d->gen, d->tag, (enum acons_settle)f->settle_in_callback);
}

static void on_consuming(void *arg)
{
	struct fx *f = arg;

	f->consuming++;
}

static void on_closed(void *arg, const char *why, bool queue_gone)
{
	struct fx *f = arg;

	f->closed++;
	f->queue_gone = queue_gone;
	free(f->closed_why);
	f->closed_why = why ? strdup(why) : NULL;
	f->closed_null = why == NULL;
	/* The channel is already CLOSED when the handler hears of it. */
	ck_assert_int_eq(f->c.state, AC_CLOSED);
}

static void setup(void)
{
	const struct acons_handlers h = {
		.deliver = on_deliver, .consuming = on_consuming, .closed = on_closed,
	};

	memset(&fx, 0, sizeof(fx));
	fx.settle_in_callback = -1;
	acons_init(&fx.c, &h, &fx);
	aframe_init(&fx.out);
	init_amqp_pool(&fx.pool, 4096);
}

static void teardown(void)
{
	for (int i = 0; i < fx.deliveries; i++) {
		free(fx.seen[i].exchange);
		free(fx.seen[i].routing_key);
		free(fx.seen[i].body);
	}
	free(fx.closed_why);
	acons_fini(&fx.c);
	aframe_free(&fx.out);
	empty_amqp_pool(&fx.pool);
}

/* ------------------------------------------------------------------------ */
/* Reading back what acons wrote, as check_aframe does */

static uint32_t get32(const unsigned char *p)
{
	return (uint32_t)p[0] << 24 | (uint32_t)p[1] << 16 | (uint32_t)p[2] << 8 | p[3];
}

static uint16_t get16(const unsigned char *p)
{
	return (uint16_t)(p[0] << 8 | p[1]);
}

static size_t unread(void)
{
	return aframe_unwritten(&fx.out) - fx.rd;
}

/* The next frame written must be method `id` on the consumer channel: returns it decoded. */
static void *expect_sent(amqp_method_number_t id)
{
	const unsigned char *f = fx.out.buf + fx.out.off + fx.rd;
	size_t size;
	void *decoded;

	ck_assert_uint_ge(unread(), 8);
	ck_assert_uint_eq(f[0], AMQP_FRAME_METHOD);
	ck_assert_uint_eq(get16(f + 1), ACONS_CHANNEL);
	size = get32(f + 3);
	ck_assert_uint_le(size + 8, FRAME_MAX);
	ck_assert_uint_ge(unread(), size + 8);
	ck_assert_uint_eq(f[7 + size], 0xCE);
	ck_assert_msg(get32(f + 7) == id, "sent method 0x%08x, wanted 0x%08x", get32(f + 7), id);
	ck_assert_int_eq(amqp_decode_method(id, &fx.pool, (amqp_bytes_t){ size - 4, (void *)(f + 11) },
	                                    &decoded), 0);
	fx.rd += size + 8;
	return decoded;
}

static void expect_nothing_sent(void)
{
	ck_assert_uint_eq(unread(), 0);
}

static void assert_bytes(amqp_bytes_t b, const char *want)
{
	ck_assert_msg(b.len == strlen(want) && memcmp(b.bytes, want, b.len) == 0,
	              "got '%.*s', wanted '%s'", (int)b.len, (const char *)b.bytes, want);
}

static void expect_qos(uint16_t prefetch)
{
	amqp_basic_qos_t *m = expect_sent(AMQP_BASIC_QOS_METHOD);

	ck_assert_uint_eq(m->prefetch_size, 0);
	ck_assert_uint_eq(m->prefetch_count, prefetch);
	ck_assert(!m->global);
}

static void expect_consume(const char *queue, size_t index)
{
	amqp_basic_consume_t *m = expect_sent(AMQP_BASIC_CONSUME_METHOD);
	char tag[64];

	snprintf(tag, sizeof(tag), "mqtt-amqp-bridge.downlink.%zu", index);
	assert_bytes(m->queue, queue);
	assert_bytes(m->consumer_tag, tag);
	ck_assert(!m->no_ack);
	ck_assert(!m->no_local);
	ck_assert(!m->exclusive);
	ck_assert(!m->nowait);
}

static void expect_channel_close(void)
{
	amqp_channel_close_t *m = expect_sent(AMQP_CHANNEL_CLOSE_METHOD);

	ck_assert_uint_eq(m->reply_code, AMQP_REPLY_SUCCESS);
	ck_assert_uint_eq(m->class_id, 0);
	ck_assert_uint_eq(m->method_id, 0);
}

/* ------------------------------------------------------------------------ */
/* Frames from the broker, as alink hands them over after rabbitmq-c decoded them */

static int feed_method(amqp_method_number_t id, void *decoded)
{
	amqp_frame_t f;

	memset(&f, 0, sizeof(f));
	f.frame_type = AMQP_FRAME_METHOD;
	f.channel = ACONS_CHANNEL;
	f.payload.method.id = id;
	f.payload.method.decoded = decoded;
	fx.why[0] = '\0';
	return acons_frame(&fx.c, &f, fx.why, sizeof(fx.why));
}

static void feed_ok(amqp_method_number_t id)
{
	/* The -ok methods the consumer channel receives carry nothing it reads but tags. */
	amqp_basic_consume_ok_t cons_ok = { .consumer_tag = amqp_cstring_bytes("") };
	amqp_channel_open_ok_t open_ok = { .channel_id = amqp_empty_bytes };
	void *m = NULL;
	amqp_basic_qos_ok_t qos_ok = { .dummy = 0 };
	amqp_channel_close_ok_t close_ok = { .dummy = 0 };

	switch (id) {
	case AMQP_CHANNEL_OPEN_OK_METHOD: m = &open_ok; break;
	case AMQP_BASIC_CONSUME_OK_METHOD: m = &cons_ok; break;
	case AMQP_BASIC_QOS_OK_METHOD: m = &qos_ok; break;
	case AMQP_CHANNEL_CLOSE_OK_METHOD: m = &close_ok; break;
	default: ck_abort_msg("no such -ok method here: 0x%08x", id);
	}
	ck_assert_int_eq(feed_method(id, m), 0);
}

static int feed_deliver(const char *consumer_tag, uint64_t tag, bool redelivered,
                        const char *exchange, const char *key)
{
	amqp_basic_deliver_t m = {
		.consumer_tag = amqp_cstring_bytes(consumer_tag), .delivery_tag = tag,
		.redelivered = redelivered, .exchange = amqp_cstring_bytes(exchange),
		.routing_key = amqp_cstring_bytes(key),
	};

	return feed_method(AMQP_BASIC_DELIVER_METHOD, &m);
}

static int feed_header(uint64_t body_size, amqp_basic_properties_t *p)
{
	amqp_frame_t f;

	memset(&f, 0, sizeof(f));
	f.frame_type = AMQP_FRAME_HEADER;
	f.channel = ACONS_CHANNEL;
	f.payload.properties.class_id = AMQP_BASIC_CLASS;
	f.payload.properties.body_size = body_size;
	f.payload.properties.decoded = p;
	fx.why[0] = '\0';
	return acons_frame(&fx.c, &f, fx.why, sizeof(fx.why));
}

/*
 * A body frame.  Its bytes are copied to a buffer that is scribbled over
 * afterwards: rabbitmq-c reuses the memory of frames, so what acons hands
 * over must be its own copy.
 */
static int feed_body(const void *p, size_t n)
{
	unsigned char *frag = malloc(n ? n : 1);
	amqp_frame_t f;
	int rc;

	ck_assert_ptr_nonnull(frag);
	if (n)
		memcpy(frag, p, n);
	memset(&f, 0, sizeof(f));
	f.frame_type = AMQP_FRAME_BODY;
	f.channel = ACONS_CHANNEL;
	f.payload.body_fragment = (amqp_bytes_t){ n, frag };
	fx.why[0] = '\0';
	rc = acons_frame(&fx.c, &f, fx.why, sizeof(fx.why));
	memset(frag, 0x5A, n);
	free(frag);
	return rc;
}

static void feed_channel_close(uint16_t code, const char *text)
{
	amqp_channel_close_t m = {
		.reply_code = code, .reply_text = amqp_cstring_bytes(text),
		.class_id = AMQP_BASIC_CLASS, .method_id = 20,
	};

	ck_assert_int_eq(feed_method(AMQP_CHANNEL_CLOSE_METHOD, &m), 0);
}

/* ------------------------------------------------------------------------ */
/* Getting to a state */

static const struct acons_queue queues[] = {
	{ "commands", 10 }, { "q-b", 250 }, { "alerts.high", 1 },
};
#define N_QUEUES (sizeof(queues) / sizeof(queues[0]))

static void attach(void)
{
	acons_attach(&fx.c, &fx.out, FRAME_MAX);
}

static void to_opening(void)
{
	amqp_channel_open_t *m;

	attach();
	ck_assert_int_eq(acons_open(&fx.c, queues, N_QUEUES), 0);
	ck_assert_int_eq(fx.c.state, AC_OPENING);
	m = expect_sent(AMQP_CHANNEL_OPEN_METHOD);
	ck_assert_uint_eq(m->out_of_band.len, 0);
	expect_nothing_sent();
}

static void to_starting(void)
{
	to_opening();
	feed_ok(AMQP_CHANNEL_OPEN_OK_METHOD);
	ck_assert_int_eq(fx.c.state, AC_STARTING);
	for (size_t i = 0; i < N_QUEUES; i++) {
		expect_qos(queues[i].prefetch);
		expect_consume(queues[i].name, i);
	}
	expect_nothing_sent();
}

static void to_consuming(void)
{
	int before = fx.consuming;

	to_starting();
	for (size_t i = 0; i < N_QUEUES; i++) {
		feed_ok(AMQP_BASIC_QOS_OK_METHOD);
		feed_ok(AMQP_BASIC_CONSUME_OK_METHOD);
	}
	ck_assert_int_eq(fx.c.state, AC_CONSUMING);
	ck_assert_int_eq(fx.consuming, before + 1);
	expect_nothing_sent();
}

static amqp_basic_properties_t text_props(const char *content_type)
{
	amqp_basic_properties_t p;

	memset(&p, 0, sizeof(p));
	p._flags = AMQP_BASIC_CONTENT_TYPE_FLAG | AMQP_BASIC_DELIVERY_MODE_FLAG;
	p.content_type = amqp_cstring_bytes(content_type);
	p.delivery_mode = 2;
	return p;
}

/* A whole delivery in one body frame. */
static void deliver_whole(size_t queue, uint64_t tag, const char *body)
{
	static amqp_basic_properties_t p;
	char ctag[64];

	p = text_props("text/plain");
	snprintf(ctag, sizeof(ctag), ACONS_TAG_PREFIX "%zu", queue);
	ck_assert_int_eq(feed_deliver(ctag, tag, false, "amq.topic", "k"), 0);
	ck_assert_int_eq(feed_header(strlen(body), &p), 0);
	if (*body)
		ck_assert_int_eq(feed_body(body, strlen(body)), 0);
}

/* ------------------------------------------------------------------------ */
/* Opening */

/* Not without a connection or queues; channel.open on channel 2; only once. */
START_TEST(test_open)
{
	ck_assert_int_eq(fx.c.state, AC_CLOSED);
	ck_assert_str_eq(acons_state_name(AC_CLOSED), "closed");
	ck_assert(!acons_open_or_opening(&fx.c));
	ck_assert_int_eq(acons_open(&fx.c, queues, N_QUEUES), -1);
	attach();
	ck_assert_int_eq(acons_open(&fx.c, queues, 0), -1);
	ck_assert_int_eq(fx.c.state, AC_CLOSED);
	expect_nothing_sent();
	ck_assert_int_eq(acons_open(&fx.c, queues, N_QUEUES), 0);
	ck_assert_int_eq(fx.c.state, AC_OPENING);
	ck_assert_str_eq(acons_state_name(fx.c.state), "opening");
	ck_assert(acons_open_or_opening(&fx.c));
	expect_sent(AMQP_CHANNEL_OPEN_METHOD);
	expect_nothing_sent();
	/* Not again while open. */
	ck_assert_int_eq(acons_open(&fx.c, queues, N_QUEUES), -1);
	expect_nothing_sent();
	ck_assert_int_eq(fx.consuming + fx.closed + fx.deliveries, 0);
}
END_TEST

/* open-ok: a prefetch and a consumer for every queue, in order, in one go. */
START_TEST(test_start)
{
	to_starting();
	ck_assert_str_eq(acons_state_name(fx.c.state), "starting");
	ck_assert_int_eq(fx.consuming, 0);
	/* A second open-ok starts nothing more. */
	feed_ok(AMQP_CHANNEL_OPEN_OK_METHOD);
	expect_nothing_sent();
}
END_TEST

/* CONSUMING once every queue's consume-ok came, and the handler hears of it once. */
START_TEST(test_consuming)
{
	to_starting();
	for (size_t i = 0; i + 1 < N_QUEUES; i++) {
		feed_ok(AMQP_BASIC_QOS_OK_METHOD);
		feed_ok(AMQP_BASIC_CONSUME_OK_METHOD);
		ck_assert_int_eq(fx.c.state, AC_STARTING);
		ck_assert_int_eq(fx.consuming, 0);
	}
	feed_ok(AMQP_BASIC_QOS_OK_METHOD);
	feed_ok(AMQP_BASIC_CONSUME_OK_METHOD);
	ck_assert_int_eq(fx.c.state, AC_CONSUMING);
	ck_assert_str_eq(acons_state_name(fx.c.state), "consuming");
	ck_assert_int_eq(fx.consuming, 1);
	/* A stray consume-ok later changes nothing. */
	feed_ok(AMQP_BASIC_CONSUME_OK_METHOD);
	ck_assert_int_eq(fx.consuming, 1);
	expect_nothing_sent();
}
END_TEST

/* ------------------------------------------------------------------------ */
/* Deliveries */

/*
 * A delivery whose body spans several frames is handed over once, whole and
 * byte for byte, with its queue, tag, redelivered flag, key and properties.
 */
START_TEST(test_delivery_split)
{
	enum { LEN = 3 * FRAME_MAX + 123 };
	static const size_t cuts[] = { FRAME_MAX - 8, FRAME_MAX - 8, 1, FRAME_MAX - 8 };
	amqp_basic_properties_t p = text_props("application/json");
	amqp_table_entry_t h = { .key = amqp_cstring_bytes("id") };
	unsigned char *body = malloc(LEN);
	size_t have = 0;

	ck_assert_ptr_nonnull(body);
	for (size_t i = 0; i < LEN; i++)
		body[i] = (unsigned char)(i * 131 + 7);
	h.value.kind = AMQP_FIELD_KIND_UTF8;
	h.value.value.bytes = amqp_cstring_bytes("p7");
	p._flags |= AMQP_BASIC_HEADERS_FLAG;
	p.headers.num_entries = 1;
	p.headers.entries = &h;

	to_consuming();
	ck_assert_int_eq(feed_deliver(ACONS_TAG_PREFIX "1", 42, true, "cmds", "commands.p7"), 0);
	ck_assert(acons_assembling(&fx.c));
	ck_assert_int_eq(feed_header(LEN, &p), 0);
	ck_assert(acons_assembling(&fx.c));
	for (size_t i = 0; i < sizeof(cuts) / sizeof(cuts[0]); i++) {
		ck_assert_int_eq(feed_body(body + have, cuts[i]), 0);
		have += cuts[i];
		ck_assert_int_eq(fx.deliveries, 0);
		ck_assert(acons_assembling(&fx.c));
	}
	ck_assert_int_eq(feed_body(body + have, LEN - have), 0);
	ck_assert(!acons_assembling(&fx.c));
	ck_assert_int_eq(fx.deliveries, 1);
	ck_assert_uint_eq(fx.seen[0].queue, 1);
	ck_assert_uint_eq(fx.seen[0].gen, fx.c.gen);
	ck_assert_uint_eq(fx.seen[0].tag, 42);
	ck_assert(fx.seen[0].redelivered);
	ck_assert_str_eq(fx.seen[0].exchange, "cmds");
	ck_assert_str_eq(fx.seen[0].routing_key, "commands.p7");
	ck_assert_ptr_eq(fx.seen[0].props, &p);
	assert_bytes(fx.seen[0].props->content_type, "application/json");
	ck_assert_uint_eq(fx.seen[0].props->headers.num_entries, 1);
	ck_assert_uint_eq(fx.seen[0].body_len, LEN);
	ck_assert_mem_eq(fx.seen[0].body, body, LEN);
	/* The next one is a delivery of its own. */
	deliver_whole(2, 43, "next");
	ck_assert_int_eq(fx.deliveries, 2);
	ck_assert_uint_eq(fx.seen[1].queue, 2);
	ck_assert_uint_eq(fx.seen[1].tag, 43);
	ck_assert(!fx.seen[1].redelivered);
	ck_assert_uint_eq(fx.seen[1].body_len, 4);
	ck_assert_mem_eq(fx.seen[1].body, "next", 4);
	expect_nothing_sent();
	free(body);
}
END_TEST

/* A body of no bytes: the content header completes the delivery. */
START_TEST(test_delivery_empty)
{
	amqp_basic_properties_t p = text_props("text/plain");

	to_consuming();
	ck_assert_int_eq(feed_deliver(ACONS_TAG_PREFIX "0", 7, false, "", "k.empty"), 0);
	ck_assert_int_eq(feed_header(0, &p), 0);
	ck_assert(!acons_assembling(&fx.c));
	ck_assert_int_eq(fx.deliveries, 1);
	ck_assert_uint_eq(fx.seen[0].queue, 0);
	ck_assert_uint_eq(fx.seen[0].tag, 7);
	ck_assert_uint_eq(fx.seen[0].body_len, 0);
	ck_assert_str_eq(fx.seen[0].exchange, "");
	ck_assert_str_eq(fx.seen[0].routing_key, "k.empty");
	/* Methods are methods again at once. */
	ck_assert_int_eq(acons_cancel(&fx.c), 0);
	ck_assert_int_eq(fx.c.state, AC_CANCELLING);
}
END_TEST

/*
 * A body over max_body is read past, never held: the delivery comes with
 * its length and no bytes, for the caller to reject; the next one, within
 * the limit, is whole again.
 */
START_TEST(test_delivery_over_max_body)
{
	amqp_basic_properties_t p = text_props("text/plain");
	static const char big[] = "0123456789abcdef0123456789";

	to_consuming();
	fx.c.max_body = 16;
	ck_assert_int_eq(feed_deliver(ACONS_TAG_PREFIX "1", 3, false, "x", "k.big"), 0);
	ck_assert_int_eq(feed_header(sizeof(big) - 1, &p), 0);
	ck_assert_ptr_null(fx.c.body);
	ck_assert_int_eq(feed_body(big, 10), 0);
	ck_assert_int_eq(feed_body(big + 10, sizeof(big) - 1 - 10), 0);
	ck_assert_int_eq(fx.deliveries, 1);
	ck_assert(fx.seen[0].body_null);
	ck_assert_uint_eq(fx.seen[0].body_len, sizeof(big) - 1);
	ck_assert_uint_eq(fx.seen[0].tag, 3);
	ck_assert(!acons_assembling(&fx.c));
	/* Another over the limit, then one within it: whole again. */
	ck_assert_int_eq(feed_deliver(ACONS_TAG_PREFIX "1", 4, false, "x", "k.big"), 0);
	ck_assert_int_eq(feed_header(20, &p), 0);
	ck_assert_int_eq(feed_body(big, 20), 0);
	deliver_whole(0, 5, "0123456789");
	ck_assert_int_eq(fx.deliveries, 3);
	ck_assert(fx.seen[1].body_null);
	ck_assert(!fx.seen[2].body_null);
	ck_assert_mem_eq(fx.seen[2].body, "0123456789", 10);
}
END_TEST

/* A delivery for a consumer tag the channel never gave breaks the protocol. */
START_TEST(test_delivery_unknown_tag)
{
	static const char *const bad[] = {
		"other", ACONS_TAG_PREFIX, ACONS_TAG_PREFIX "3", ACONS_TAG_PREFIX "x",
		ACONS_TAG_PREFIX "1x", ACONS_TAG_PREFIX "-1", "mqtt-amqp-bridge.uplink.0",
		ACONS_TAG_PREFIX "18446744073709551617",
	};

	to_consuming();
	for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
		ck_assert_msg(feed_deliver(bad[i], 1, false, "x", "k") == -1, "tag '%s' taken", bad[i]);
		ck_assert_msg(strstr(fx.why, "unknown consumer") != NULL, "why: %s", fx.why);
		ck_assert(!acons_assembling(&fx.c));
	}
	ck_assert_int_eq(fx.deliveries, 0);
	expect_nothing_sent();
}
END_TEST

/* Content that does not add up breaks the protocol; nothing is handed over. */
START_TEST(test_delivery_malformed)
{
	amqp_basic_properties_t p = text_props("text/plain");
	amqp_basic_cancel_ok_t ok = { .consumer_tag = amqp_cstring_bytes(ACONS_TAG_PREFIX "0") };

	to_consuming();
	/* A body frame that overruns the size the header gave. */
	ck_assert_int_eq(feed_deliver(ACONS_TAG_PREFIX "0", 1, false, "x", "k"), 0);
	ck_assert_int_eq(feed_header(10, &p), 0);
	ck_assert_int_eq(feed_body("123456", 6), 0);
	ck_assert_int_eq(feed_body("78901", 5), -1);
	ck_assert_msg(strstr(fx.why, "malformed content") != NULL, "why: %s", fx.why);
	ck_assert_int_eq(fx.deliveries, 0);
	/* The connection goes now: its detach frees the half delivery. */
	acons_detach(&fx.c);
	ck_assert(!acons_assembling(&fx.c));

	/* A single frame larger than the whole body. */
	to_consuming();
	ck_assert_int_eq(feed_deliver(ACONS_TAG_PREFIX "0", 1, false, "x", "k"), 0);
	ck_assert_int_eq(feed_header(3, &p), 0);
	ck_assert_int_eq(feed_body("1234", 4), -1);
	acons_detach(&fx.c);

	/* A method where the content header belongs. */
	to_consuming();
	ck_assert_int_eq(feed_deliver(ACONS_TAG_PREFIX "0", 1, false, "x", "k"), 0);
	ck_assert_int_eq(feed_method(AMQP_BASIC_CANCEL_OK_METHOD, &ok), -1);
	ck_assert_msg(strstr(fx.why, "without a content header") != NULL, "why: %s", fx.why);
	acons_detach(&fx.c);

	/* A method where the body belongs: left for acons_fini() to free. */
	to_consuming();
	ck_assert_int_eq(feed_deliver(ACONS_TAG_PREFIX "0", 1, false, "x", "k"), 0);
	ck_assert_int_eq(feed_header(3, &p), 0);
	ck_assert_int_eq(feed_method(AMQP_BASIC_CANCEL_OK_METHOD, &ok), -1);
	ck_assert_msg(strstr(fx.why, "malformed content") != NULL, "why: %s", fx.why);
	ck_assert_int_eq(fx.deliveries, 0);
}
END_TEST

/* ------------------------------------------------------------------------ */
/* Settling */

/* basic.ack, basic.reject with and without requeue, each for its own tag. */
START_TEST(test_settle)
{
	amqp_basic_ack_t *ack;
	amqp_basic_reject_t *rej;

	to_consuming();
	ck_assert_int_eq(acons_settle(&fx.c, fx.c.gen, 5, ACONS_ACK), 0);
	ck_assert_int_eq(acons_settle(&fx.c, fx.c.gen, 6, ACONS_REJECT), 0);
	ck_assert_int_eq(acons_settle(&fx.c, fx.c.gen, 0x100000007ull, ACONS_REQUEUE), 0);
	ack = expect_sent(AMQP_BASIC_ACK_METHOD);
	ck_assert_uint_eq(ack->delivery_tag, 5);
	ck_assert(!ack->multiple);
	rej = expect_sent(AMQP_BASIC_REJECT_METHOD);
	ck_assert_uint_eq(rej->delivery_tag, 6);
	ck_assert(!rej->requeue);
	rej = expect_sent(AMQP_BASIC_REJECT_METHOD);
	ck_assert_uint_eq(rej->delivery_tag, 0x100000007ull);
	ck_assert(rej->requeue);
	expect_nothing_sent();
}
END_TEST

/* A delivery of an earlier channel: RabbitMQ requeued it already; nothing is sent. */
START_TEST(test_settle_old_generation)
{
	uint64_t gen;

	to_consuming();
	deliver_whole(0, 1, "x");
	gen = fx.seen[0].gen;
	ck_assert_int_eq(acons_settle(&fx.c, gen - 1, 1, ACONS_ACK), 1);
	ck_assert_int_eq(acons_settle(&fx.c, gen + 1, 1, ACONS_REJECT), 1);
	expect_nothing_sent();
	/* The channel goes and comes back: the old delivery's tag means nothing now. */
	acons_detach(&fx.c);
	ck_assert_uint_ne(fx.c.gen, gen);
	ck_assert_int_eq(acons_settle(&fx.c, gen, 1, ACONS_ACK), 1);
	to_consuming();
	ck_assert_uint_ne(fx.c.gen, gen);
	ck_assert_int_eq(acons_settle(&fx.c, gen, 1, ACONS_ACK), 1);
	ck_assert_int_eq(acons_settle(&fx.c, gen, 1, ACONS_REQUEUE), 1);
	expect_nothing_sent();
	ck_assert_int_eq(acons_settle(&fx.c, fx.c.gen, 1, ACONS_ACK), 0);
	expect_sent(AMQP_BASIC_ACK_METHOD);
	/* Nor while the channel is still opening. */
	acons_detach(&fx.c);
	to_opening();
	ck_assert_int_eq(acons_settle(&fx.c, fx.c.gen, 1, ACONS_ACK), 1);
	expect_nothing_sent();
}
END_TEST

/* A settle from inside the delivery callback goes out at once. */
START_TEST(test_settle_in_callback)
{
	amqp_basic_reject_t *rej;

	to_consuming();
	fx.settle_in_callback = ACONS_REJECT;
	deliver_whole(1, 9, "poison");
	ck_assert_int_eq(fx.deliveries, 1);
	ck_assert_int_eq(fx.settle_rc, 0);
	rej = expect_sent(AMQP_BASIC_REJECT_METHOD);
	ck_assert_uint_eq(rej->delivery_tag, 9);
	ck_assert(!rej->requeue);
	expect_nothing_sent();
}
END_TEST

/* ------------------------------------------------------------------------ */
/* Cancelling and closing */

/* basic.cancel for every queue; deliveries already sent still come and are acknowledged. */
START_TEST(test_cancel)
{
	amqp_basic_cancel_ok_t ok = { .consumer_tag = amqp_cstring_bytes(ACONS_TAG_PREFIX "0") };

	to_consuming();
	ck_assert_int_eq(acons_cancel(&fx.c), 0);
	ck_assert_int_eq(fx.c.state, AC_CANCELLING);
	ck_assert_str_eq(acons_state_name(fx.c.state), "cancelling");
	ck_assert(acons_open_or_opening(&fx.c));
	for (size_t i = 0; i < N_QUEUES; i++) {
		amqp_basic_cancel_t *m = expect_sent(AMQP_BASIC_CANCEL_METHOD);
		char tag[64];

		snprintf(tag, sizeof(tag), "mqtt-amqp-bridge.downlink.%zu", i);
		assert_bytes(m->consumer_tag, tag);
		ck_assert(!m->nowait);
	}
	expect_nothing_sent();
	/* Again: nothing more to cancel. */
	ck_assert_int_eq(acons_cancel(&fx.c), 0);
	expect_nothing_sent();
	deliver_whole(2, 11, "late");
	ck_assert_int_eq(fx.deliveries, 1);
	ck_assert_int_eq(acons_settle(&fx.c, fx.seen[0].gen, 11, ACONS_ACK), 0);
	expect_sent(AMQP_BASIC_ACK_METHOD);
	ck_assert_int_eq(feed_method(AMQP_BASIC_CANCEL_OK_METHOD, &ok), 0);
	ck_assert_int_eq(fx.c.state, AC_CANCELLING);
	ck_assert_int_eq(fx.closed, 0);
	expect_nothing_sent();
}
END_TEST

/* While still STARTING the consumers are cancelled too. */
START_TEST(test_cancel_starting)
{
	to_starting();
	ck_assert_int_eq(acons_cancel(&fx.c), 0);
	ck_assert_int_eq(fx.c.state, AC_CANCELLING);
	for (size_t i = 0; i < N_QUEUES; i++)
		expect_sent(AMQP_BASIC_CANCEL_METHOD);
	expect_nothing_sent();
	/* The consume-oks still on their way make nothing of it. */
	for (size_t i = 0; i < N_QUEUES; i++)
		feed_ok(AMQP_BASIC_CONSUME_OK_METHOD);
	ck_assert_int_eq(fx.c.state, AC_CANCELLING);
	ck_assert_int_eq(fx.consuming, 0);
}
END_TEST

/* Without consumers yet, a cancel closes the channel; a late open-ok starts nothing. */
START_TEST(test_cancel_opening)
{
	to_opening();
	ck_assert_int_eq(acons_cancel(&fx.c), 0);
	ck_assert_int_eq(fx.c.state, AC_CLOSING);
	expect_channel_close();
	expect_nothing_sent();
	feed_ok(AMQP_CHANNEL_OPEN_OK_METHOD);
	expect_nothing_sent();
	ck_assert_int_eq(fx.c.state, AC_CLOSING);
	feed_ok(AMQP_CHANNEL_CLOSE_OK_METHOD);
	ck_assert_int_eq(fx.c.state, AC_CLOSED);
	ck_assert_int_eq(fx.closed, 1);
	ck_assert(fx.closed_null);
	/* Closed: a cancel has nothing to do. */
	ck_assert_int_eq(acons_cancel(&fx.c), 0);
	expect_nothing_sent();
}
END_TEST

/*
 * channel.close: CLOSING; deliveries the broker sent before it saw the
 * close are not handed over (it requeues them); close-ok ends it with
 * closed(NULL) and a new generation.
 */
START_TEST(test_close)
{
	amqp_basic_properties_t p = text_props("text/plain");
	uint64_t gen;

	to_consuming();
	gen = fx.c.gen;
	/* One delivery half read when the close goes. */
	ck_assert_int_eq(feed_deliver(ACONS_TAG_PREFIX "0", 1, false, "x", "k"), 0);
	ck_assert_int_eq(feed_header(8, &p), 0);
	ck_assert_int_eq(feed_body("1234", 4), 0);
	ck_assert_int_eq(acons_close(&fx.c), 0);
	ck_assert_int_eq(fx.c.state, AC_CLOSING);
	ck_assert_str_eq(acons_state_name(fx.c.state), "closing");
	ck_assert(!acons_open_or_opening(&fx.c));
	expect_channel_close();
	expect_nothing_sent();
	/* Its last body frame arrives after the close: ignored, not an error. */
	ck_assert_int_eq(feed_body("5678", 4), 0);
	/* Whole deliveries still arriving are not handed over. */
	deliver_whole(1, 2, "after the close");
	deliver_whole(2, 3, "");
	ck_assert_int_eq(fx.deliveries, 0);
	ck_assert(!acons_assembling(&fx.c));
	/* Nothing is acknowledged on a channel that is closing. */
	ck_assert_int_eq(acons_settle(&fx.c, gen, 2, ACONS_ACK), 1);
	/* A second close, or a cancel, sends nothing. */
	ck_assert_int_eq(acons_close(&fx.c), 0);
	ck_assert_int_eq(acons_cancel(&fx.c), 0);
	expect_nothing_sent();
	ck_assert_int_eq(fx.closed, 0);
	feed_ok(AMQP_CHANNEL_CLOSE_OK_METHOD);
	ck_assert_int_eq(fx.c.state, AC_CLOSED);
	ck_assert_int_eq(fx.closed, 1);
	ck_assert(fx.closed_null);
	ck_assert_uint_gt(fx.c.gen, gen);
	/* A stray close-ok once CLOSED is ignored. */
	feed_ok(AMQP_CHANNEL_CLOSE_OK_METHOD);
	ck_assert_int_eq(fx.closed, 1);
	expect_nothing_sent();
	/* And the channel opens again. */
	ck_assert_int_eq(acons_open(&fx.c, queues, N_QUEUES), 0);
	expect_sent(AMQP_CHANNEL_OPEN_METHOD);
}
END_TEST

/* The broker closes the channel: close-ok, CLOSED, closed("code text"), a new generation. */
START_TEST(test_broker_close)
{
	uint64_t gen;

	to_consuming();
	deliver_whole(0, 1, "x");
	gen = fx.c.gen;
	feed_channel_close(404, "NOT_FOUND - no queue 'commands' in vhost '/'");
	expect_sent(AMQP_CHANNEL_CLOSE_OK_METHOD);
	expect_nothing_sent();
	ck_assert_int_eq(fx.c.state, AC_CLOSED);
	ck_assert_int_eq(fx.closed, 1);
	ck_assert(!fx.closed_null);
	ck_assert_str_eq(fx.closed_why, "404 NOT_FOUND - no queue 'commands' in vhost '/'");
	ck_assert(fx.queue_gone);
	ck_assert_uint_gt(fx.c.gen, gen);
	/* The delivery of that channel is not acknowledged on the next. */
	ck_assert_int_eq(acons_settle(&fx.c, gen, 1, ACONS_ACK), 1);
	expect_nothing_sent();
	to_consuming();
	ck_assert_int_eq(acons_settle(&fx.c, gen, 1, ACONS_ACK), 1);
	expect_nothing_sent();
}
END_TEST

/* The broker closes the channel while the bridge closes it too: one closed(), with its reason. */
START_TEST(test_broker_close_while_closing)
{
	to_consuming();
	ck_assert_int_eq(acons_close(&fx.c), 0);
	expect_channel_close();
	feed_channel_close(406, "PRECONDITION_FAILED - unknown delivery tag 3");
	expect_sent(AMQP_CHANNEL_CLOSE_OK_METHOD);
	ck_assert_int_eq(fx.c.state, AC_CLOSED);
	ck_assert_int_eq(fx.closed, 1);
	ck_assert_str_eq(fx.closed_why, "406 PRECONDITION_FAILED - unknown delivery tag 3");
	ck_assert(!fx.queue_gone);
	/* The close-ok for the bridge's own close comes after: nothing more. */
	feed_ok(AMQP_CHANNEL_CLOSE_OK_METHOD);
	ck_assert_int_eq(fx.closed, 1);
	expect_nothing_sent();
}
END_TEST

/*
 * The broker cancels one consumer (its queue was deleted): the whole
 * channel closes, and closed() names that queue once the close-ok came.
 */
START_TEST(test_broker_cancel)
{
	amqp_basic_cancel_t k = { .consumer_tag = amqp_cstring_bytes(ACONS_TAG_PREFIX "1"),
	                          .nowait = 1 };
	uint64_t gen;

	to_consuming();
	gen = fx.c.gen;
	ck_assert_int_eq(feed_method(AMQP_BASIC_CANCEL_METHOD, &k), 0);
	ck_assert_int_eq(fx.c.state, AC_CLOSING);
	expect_channel_close();
	expect_nothing_sent();
	ck_assert_int_eq(fx.closed, 0);
	feed_ok(AMQP_CHANNEL_CLOSE_OK_METHOD);
	ck_assert_int_eq(fx.c.state, AC_CLOSED);
	ck_assert_int_eq(fx.closed, 1);
	ck_assert(!fx.closed_null);
	ck_assert_msg(strstr(fx.closed_why, "'q-b'") != NULL, "why: %s", fx.closed_why);
	ck_assert(fx.queue_gone);
	ck_assert_uint_gt(fx.c.gen, gen);

	/* That reason does not stick: the next close the bridge asks for is its own. */
	to_consuming();
	ck_assert_int_eq(acons_close(&fx.c), 0);
	expect_channel_close();
	feed_ok(AMQP_CHANNEL_CLOSE_OK_METHOD);
	ck_assert_int_eq(fx.closed, 2);
	ck_assert(fx.closed_null);
}
END_TEST

/* ------------------------------------------------------------------------ */
/* The connection going */

/*
 * Detached half way through a delivery: CLOSED, a new generation, no
 * handler, and the half body freed (the sanitizer build checks that).
 */
START_TEST(test_detach_mid_delivery)
{
	amqp_basic_properties_t p = text_props("text/plain");
	uint64_t gen;

	to_consuming();
	gen = fx.c.gen;
	ck_assert_int_eq(feed_deliver(ACONS_TAG_PREFIX "2", 5, false, "x", "k"), 0);
	ck_assert_int_eq(feed_header(100, &p), 0);
	ck_assert_int_eq(feed_body("0123456789", 10), 0);
	ck_assert(acons_assembling(&fx.c));
	acons_detach(&fx.c);
	ck_assert(!acons_assembling(&fx.c));
	ck_assert_ptr_null(fx.c.body);
	ck_assert_int_eq(fx.c.state, AC_CLOSED);
	ck_assert_uint_gt(fx.c.gen, gen);
	ck_assert_int_eq(fx.closed + fx.deliveries, 0);
	ck_assert_ptr_null(fx.c.out);
	/* No connection: nothing opens, nothing is settled. */
	ck_assert_int_eq(acons_open(&fx.c, queues, N_QUEUES), -1);
	ck_assert_int_eq(acons_settle(&fx.c, fx.c.gen, 5, ACONS_ACK), 1);
	ck_assert_int_eq(acons_close(&fx.c), 0);
	expect_nothing_sent();
	/* A new connection starts from scratch. */
	to_consuming();
	deliver_whole(2, 1, "fresh");
	ck_assert_int_eq(fx.deliveries, 1);
	ck_assert_mem_eq(fx.seen[0].body, "fresh", 5);
}
END_TEST

/* Attaching again drops what the old connection left half done. */
START_TEST(test_reattach_mid_delivery)
{
	amqp_basic_properties_t p = text_props("text/plain");

	to_consuming();
	ck_assert_int_eq(feed_deliver(ACONS_TAG_PREFIX "0", 5, false, "x", "k"), 0);
	ck_assert_int_eq(feed_header(100, &p), 0);
	ck_assert_int_eq(feed_body("0123456789", 10), 0);
	attach();
	ck_assert(!acons_assembling(&fx.c));
	ck_assert_int_eq(fx.c.state, AC_CLOSED);
	ck_assert_int_eq(fx.closed + fx.deliveries, 0);
}
END_TEST

static Suite *acons_suite(void)
{
	Suite *s = suite_create("acons");
	const struct {
		const char *name;
		const TTest *test;
	} cases[] = {
		{ "open", test_open },
		{ "start", test_start },
		{ "consuming", test_consuming },
		{ "delivery_split", test_delivery_split },
		{ "delivery_empty", test_delivery_empty },
		{ "delivery_over_max_body", test_delivery_over_max_body },
		{ "delivery_unknown_tag", test_delivery_unknown_tag },
		{ "delivery_malformed", test_delivery_malformed },
		{ "settle", test_settle },
		{ "settle_old_generation", test_settle_old_generation },
		{ "settle_in_callback", test_settle_in_callback },
		{ "cancel", test_cancel },
		{ "cancel_starting", test_cancel_starting },
		{ "cancel_opening", test_cancel_opening },
		{ "close", test_close },
		{ "broker_close", test_broker_close },
		{ "broker_close_while_closing", test_broker_close_while_closing },
		{ "broker_cancel", test_broker_cancel },
		{ "detach_mid_delivery", test_detach_mid_delivery },
		{ "reattach_mid_delivery", test_reattach_mid_delivery },
	};

	for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
		TCase *tc = tcase_create(cases[i].name);

		tcase_add_checked_fixture(tc, setup, teardown);
		tcase_add_test(tc, cases[i].test);
		suite_add_tcase(s, tc);
	}
	return s;
}

int main(void)
{
	SRunner *sr = srunner_create(acons_suite());
	int failed;

	srunner_run_all(sr, CK_NORMAL);
	failed = srunner_ntests_failed(sr);
	srunner_free(sr);
	return failed == 0 ? EXIT_SUCCESS : EXIT_FAILURE;
}
