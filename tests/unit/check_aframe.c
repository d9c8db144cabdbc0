#define _GNU_SOURCE /* memmem() */
#include "aframe.h"

#include <check.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

#define CHANNEL 1
#define FRAME_MAX 4096

static uint32_t get32(const unsigned char *p)
{
	return (uint32_t)p[0] << 24 | (uint32_t)p[1] << 16 | (uint32_t)p[2] << 8 | p[3];
}

static uint16_t get16(const unsigned char *p)
{
	return (uint16_t)(p[0] << 8 | p[1]);
}

/*
 * A reader of the frame stream: each frame must be well formed (type,
 * channel, size within frame_max, end octet).
 */
struct stream {
	const unsigned char *p;
	size_t len;
};

static const unsigned char *next_frame(struct stream *s, unsigned type, size_t *size)
{
	const unsigned char *f = s->p;

	ck_assert_uint_ge(s->len, 8);
	ck_assert_uint_eq(f[0], type);
	ck_assert_uint_eq(get16(f + 1), CHANNEL);
	*size = get32(f + 3);
	ck_assert_uint_le(*size + 8, FRAME_MAX);
	ck_assert_uint_ge(s->len, *size + 8);
	ck_assert_uint_eq(f[7 + *size], 0xCE);
	s->p += *size + 8;
	s->len -= *size + 8;
	return f + 7;
}

/* Reads one publish off the stream and checks it is what was queued. */
static void expect_publish(struct stream *s, const char *exchange, const char *key,
                           const char *content_type, const unsigned char *body, size_t len)
{
	amqp_pool_t pool;
	amqp_basic_publish_t *m;
	amqp_basic_properties_t *props;
	size_t size, have = 0;
	const unsigned char *f;
	void *decoded;

	init_amqp_pool(&pool, 4096);
	f = next_frame(s, AMQP_FRAME_METHOD, &size);
	ck_assert_uint_eq(get32(f), AMQP_BASIC_PUBLISH_METHOD);
	ck_assert_int_eq(amqp_decode_method(AMQP_BASIC_PUBLISH_METHOD, &pool,
	                                    (amqp_bytes_t){ size - 4, (void *)(f + 4) }, &decoded), 0);
	m = decoded;
	ck_assert_uint_eq(m->exchange.len, strlen(exchange));
	ck_assert(memcmp(m->exchange.bytes, exchange, m->exchange.len) == 0);
	ck_assert_uint_eq(m->routing_key.len, strlen(key));
	ck_assert(memcmp(m->routing_key.bytes, key, m->routing_key.len) == 0);
	ck_assert(m->mandatory && !m->immediate);

	f = next_frame(s, AMQP_FRAME_HEADER, &size);
	ck_assert_uint_eq(get16(f), AMQP_BASIC_CLASS);
	ck_assert_uint_eq(get16(f + 2), 0);
	ck_assert_uint_eq(((uint64_t)get32(f + 4) << 32) | get32(f + 8), len);
	ck_assert_int_eq(amqp_decode_properties(AMQP_BASIC_CLASS, &pool,
	                                        (amqp_bytes_t){ size - 12, (void *)(f + 12) },
	                                        &decoded), 0);
	props = decoded;
	ck_assert(props->_flags & AMQP_BASIC_DELIVERY_MODE_FLAG);
	ck_assert_uint_eq(props->delivery_mode, 2);
	ck_assert(props->_flags & AMQP_BASIC_CONTENT_TYPE_FLAG);
	ck_assert_uint_eq(props->content_type.len, strlen(content_type));
	ck_assert(memcmp(props->content_type.bytes, content_type, props->content_type.len) == 0);

	while (have < len) {
		f = next_frame(s, AMQP_FRAME_BODY, &size);
		ck_assert_uint_gt(size, 0);
		ck_assert_uint_le(have + size, len);
		ck_assert(memcmp(f, body + have, size) == 0);
		have += size;
	}
	empty_amqp_pool(&pool);
}

static amqp_basic_properties_t props_of(const char *content_type)
{
	amqp_basic_properties_t p;

	memset(&p, 0, sizeof(p));
	p._flags = AMQP_BASIC_DELIVERY_MODE_FLAG | AMQP_BASIC_CONTENT_TYPE_FLAG;
	p.delivery_mode = 2;
	p.content_type = amqp_cstring_bytes(content_type);
	return p;
}

static unsigned char *body_of(size_t len, unsigned seed)
{
	unsigned char *b = malloc(len ? len : 1);

	ck_assert_ptr_nonnull(b);
	for (size_t i = 0; i < len; i++)
		b[i] = (unsigned char)(i * 31 + seed);
	return b;
}

static int publish(struct aframe *o, const char *exchange, const char *key,
                   const amqp_basic_properties_t *p, const unsigned char *body, size_t len)
{
	return aframe_publish(o, CHANNEL, amqp_cstring_bytes(exchange), amqp_cstring_bytes(key), p,
	                      (amqp_bytes_t){ len, (void *)body }, FRAME_MAX);
}

/* Bodies of no frame, one, exactly one full frame, and several with a short last one. */
START_TEST(test_publish_frames)
{
	static const size_t lens[] = { 0, 1, FRAME_MAX - 8, FRAME_MAX - 7, 3 * (FRAME_MAX - 8) + 1 };
	amqp_basic_properties_t p = props_of("text/plain");
	struct aframe o;
	struct stream s;
	unsigned char *bodies[5];

	aframe_init(&o);
	for (size_t i = 0; i < 5; i++) {
		bodies[i] = body_of(lens[i], (unsigned)i);
		ck_assert_int_eq(publish(&o, "telemetry", "sensors.room1", &p, bodies[i], lens[i]), 0);
	}
	s.p = o.buf + o.off;
	s.len = aframe_unwritten(&o);
	for (size_t i = 0; i < 5; i++)
		expect_publish(&s, "telemetry", "sensors.room1", "text/plain", bodies[i], lens[i]);
	ck_assert_uint_eq(s.len, 0);
	for (size_t i = 0; i < 5; i++)
		free(bodies[i]);
	aframe_free(&o);
}
END_TEST

/* Properties that do not fit one frame: refused, and what was queued before stays whole. */
START_TEST(test_publish_too_big)
{
	amqp_basic_properties_t p = props_of("a/b");
	amqp_basic_properties_t big = props_of("a/b");
	amqp_table_entry_t e[2];
	char *text = malloc(FRAME_MAX);
	unsigned char body[10] = "0123456789";
	struct aframe o;
	struct stream s;
	size_t before;

	ck_assert_ptr_nonnull(text);
	memset(text, 'x', FRAME_MAX);
	for (int i = 0; i < 2; i++) {
		e[i].key = amqp_cstring_bytes(i ? "h2" : "h1");
		e[i].value.kind = AMQP_FIELD_KIND_UTF8;
		e[i].value.value.bytes = (amqp_bytes_t){ FRAME_MAX / 2, text };
	}
	big._flags |= AMQP_BASIC_HEADERS_FLAG;
	big.headers.num_entries = 2;
	big.headers.entries = e;
	aframe_init(&o);
	ck_assert_int_eq(publish(&o, "x", "k1", &p, body, sizeof(body)), 0);
	before = aframe_unwritten(&o);
	ck_assert_int_eq(publish(&o, "x", "k2", &big, body, sizeof(body)), AMQP_STATUS_TABLE_TOO_BIG);
	ck_assert_uint_eq(aframe_unwritten(&o), before);
	ck_assert_int_eq(publish(&o, "x", "k3", &p, body, sizeof(body)), 0);
	s.p = o.buf + o.off;
	s.len = aframe_unwritten(&o);
	expect_publish(&s, "x", "k1", "a/b", body, sizeof(body));
	expect_publish(&s, "x", "k3", "a/b", body, sizeof(body));
	ck_assert_uint_eq(s.len, 0);
	free(text);
	aframe_free(&o);
}
END_TEST

/*
 * A socket that takes a little at a time while more is queued: what the
 * peer reads is every frame, whole and in order, and the buffer does not
 * grow without bound.
 */
START_TEST(test_partial_writes)
{
	enum { MESSAGES = 400 };
	amqp_basic_properties_t p = props_of("application/octet-stream");
	unsigned char *body = body_of(3000, 7);
	size_t cap = 1 << 20, got = 0, peak = 0, partial = 0;
	unsigned char *in = malloc(cap);
	int sv[2], sndbuf = 4096;
	struct aframe o;
	struct stream s;
	char err[256];

	ck_assert_ptr_nonnull(in);
	ck_assert_int_eq(socketpair(AF_UNIX, SOCK_STREAM, 0, sv), 0);
	ck_assert_int_eq(setsockopt(sv[0], SOL_SOCKET, SO_SNDBUF, &sndbuf, sizeof(sndbuf)), 0);
	fcntl(sv[1], F_SETFL, O_NONBLOCK);
	aframe_init(&o);
	ssize_t n;

	for (int i = 0; i < MESSAGES || aframe_pending(&o);) {
		if (i < MESSAGES && aframe_unwritten(&o) < 32768) {
			char key[16];

			snprintf(key, sizeof(key), "k%d", i);
			ck_assert_int_eq(publish(&o, "ex", key, &p, body, 100 + (size_t)i * 7), 0);
			i++;
		}
		if (aframe_unwritten(&o) > peak)
			peak = aframe_unwritten(&o);
		ck_assert_int_eq(aframe_flush(&o, sv[0], NULL, err, sizeof(err)), 0);
		if (aframe_pending(&o))
			partial++;
		/* A slow reader: the socket's buffers fill up. */
		n = read(sv[1], in + got, cap - got < 2048 ? cap - got : 2048);
		if (n > 0)
			got += (size_t)n;
	}
	while ((n = read(sv[1], in + got, cap - got)) > 0)
		got += (size_t)n;
	ck_assert_uint_le(o.cap, 65536 + 4096);
	s.p = in;
	s.len = got;
	for (int i = 0; i < MESSAGES; i++) {
		char key[16];

		snprintf(key, sizeof(key), "k%d", i);
		expect_publish(&s, "ex", key, "application/octet-stream", body, 100 + (size_t)i * 7);
	}
	ck_assert_uint_eq(s.len, 0);
	/* The socket did take only part, many times. */
	ck_assert_uint_gt(partial, 10);
	ck_assert_uint_gt(peak, 0);
	close(sv[0]);
	close(sv[1]);
	free(in);
	free(body);
	aframe_free(&o);
}
END_TEST

/* A buffer grown for one large message is given back once it is written. */
START_TEST(test_large_buffer_given_back)
{
	amqp_basic_properties_t p = props_of("a/b");
	size_t len = 1 << 20;
	unsigned char *body = body_of(len, 3);
	unsigned char *sink = malloc(len * 2);
	int sv[2];
	struct aframe o;
	char err[256];
	size_t got = 0;

	ck_assert_ptr_nonnull(sink);
	ck_assert_int_eq(socketpair(AF_UNIX, SOCK_STREAM, 0, sv), 0);
	fcntl(sv[1], F_SETFL, O_NONBLOCK);
	aframe_init(&o);
	ck_assert_int_eq(publish(&o, "ex", "k", &p, body, len), 0);
	ck_assert_uint_gt(o.cap, len);
	while (aframe_pending(&o)) {
		ssize_t n;

		ck_assert_int_eq(aframe_flush(&o, sv[0], NULL, err, sizeof(err)), 0);
		while ((n = read(sv[1], sink + got, len * 2 - got)) > 0)
			got += (size_t)n;
	}
	ck_assert_uint_eq(o.cap, 0);
	ck_assert_ptr_null(o.buf);
	close(sv[0]);
	close(sv[1]);
	free(sink);
	free(body);
	aframe_free(&o);
}
END_TEST

/* Whether `needle` occurs anywhere in the `n` bytes at `p`. */
static bool holds(const unsigned char *p, size_t n, const char *needle)
{
	return memmem(p, n, needle, strlen(needle)) != NULL;
}

/*
 * connection.start-ok, written, is wiped from the buffer and the scratch
 * frame when the set-up ends with a heartbeat still queued: the heartbeat
 * stays, whole.
 */
START_TEST(test_wipe_written)
{
	static const unsigned char heartbeat[8] = { 8, 0, 0, 0, 0, 0, 0, 0xCE };
	static const char response[] = "\0user\0pw-s3cret-pw";
	amqp_connection_start_ok_t ok = { 0 };
	unsigned char got[64];
	struct aframe o;
	char err[256];
	int sv[2];

	ok.mechanism = amqp_cstring_bytes("PLAIN");
	ok.response.bytes = (void *)response;
	ok.response.len = sizeof(response) - 1;
	ok.locale = amqp_cstring_bytes("en_US");
	ok.client_properties = amqp_empty_table;
	ck_assert_int_eq(socketpair(AF_UNIX, SOCK_STREAM, 0, sv), 0);
	aframe_init(&o);
	ck_assert_int_eq(aframe_method(&o, 0, AMQP_CONNECTION_START_OK_METHOD, &ok, 4096), 0);
	ck_assert(holds(o.buf, o.cap, "s3cret"));
	ck_assert_int_eq(aframe_flush(&o, sv[0], NULL, err, sizeof(err)), 0);
	ck_assert(!aframe_pending(&o));
	fcntl(sv[1], F_SETFL, O_NONBLOCK);
	while (read(sv[1], got, sizeof(got)) > 0)
		;
	ck_assert_int_eq(aframe_bytes(&o, heartbeat, sizeof(heartbeat)), 0);
	aframe_wipe_written(&o);
	ck_assert(!holds(o.buf, o.cap, "s3cret"));
	ck_assert(!holds(o.scratch, o.scratch_cap, "s3cret"));
	ck_assert_uint_eq(aframe_unwritten(&o), sizeof(heartbeat));
	ck_assert_int_eq(aframe_flush(&o, sv[0], NULL, err, sizeof(err)), 0);
	close(sv[0]);
	ck_assert_int_eq(read(sv[1], got, sizeof(got)), (ssize_t)sizeof(heartbeat));
	ck_assert_mem_eq(got, heartbeat, sizeof(heartbeat));
	close(sv[1]);
	aframe_free(&o);
}
END_TEST

int main(void)
{
	Suite *s = suite_create("aframe");
	TCase *tc = tcase_create("core");
	SRunner *sr;
	int failed;

	tcase_add_test(tc, test_publish_frames);
	tcase_add_test(tc, test_publish_too_big);
	tcase_add_test(tc, test_partial_writes);
	tcase_add_test(tc, test_large_buffer_given_back);
	tcase_add_test(tc, test_wipe_written);
	suite_add_tcase(s, tc);
	sr = srunner_create(s);
	srunner_run_all(sr, CK_NORMAL);
	failed = srunner_ntests_failed(sr);
	srunner_free(sr);
	return failed == 0 ? EXIT_SUCCESS : EXIT_FAILURE;
}
