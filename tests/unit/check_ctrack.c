#include "ctrack.h"

#include <check.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* ctrack_init() rounds the span up to a power of two, and to this at least. */
#define RING_MIN 16

static uint64_t hash_of(const char *key)
{
	return ctrack_key_hash("ex", 2, key, strlen(key));
}

/* Publishes one message with routing key `key` and the MQTT topic `topic`. */
static uint64_t add(struct ctrack *t, const char *key, const char *topic)
{
	return ctrack_add(t, hash_of(key), topic, strlen(topic), false);
}

/* Publishes n messages with distinct topics "t<tag>", all with routing key "k". */
static void add_n(struct ctrack *t, unsigned n)
{
	for (unsigned i = 0; i < n; i++) {
		uint64_t want = t->next;
		char topic[32];

		snprintf(topic, sizeof(topic), "t%llu", (unsigned long long)want);
		ck_assert_uint_eq(add(t, "k", topic), want);
	}
}

static void assert_counts(const struct ctrack_counts *c, uint64_t forwarded,
                          uint64_t dead_lettered, uint64_t dropped, uint64_t nacked)
{
	ck_assert_uint_eq(c->forwarded, forwarded);
	ck_assert_uint_eq(c->dead_lettered, dead_lettered);
	ck_assert_uint_eq(c->dropped, dropped);
	ck_assert_uint_eq(c->nacked, nacked);
}

static void assert_state(const struct ctrack *t, size_t outstanding, uint64_t span)
{
	ck_assert_uint_eq(ctrack_outstanding(t), outstanding);
	ck_assert_uint_eq(ctrack_span(t), span);
}

START_TEST(test_tags)
{
	struct ctrack t;

	ck_assert_int_eq(ctrack_init(&t, 0), 0);
	assert_state(&t, 0, 0);
	ck_assert(ctrack_has_room(&t));
	for (uint64_t tag = 1; tag <= 10; tag++) {
		ck_assert_uint_eq(add(&t, "k", "a/b"), tag);
		assert_state(&t, tag, tag);
	}
	ctrack_fini(&t);
}
END_TEST

START_TEST(test_init_size)
{
	struct ctrack t;

	/* Room for at least `span` tags, never less than the minimum ring. */
	ck_assert_int_eq(ctrack_init(&t, 1), 0);
	add_n(&t, RING_MIN);
	ck_assert(!ctrack_has_room(&t));
	ctrack_fini(&t);

	ck_assert_int_eq(ctrack_init(&t, 100), 0);
	add_n(&t, 100);
	ck_assert(ctrack_has_room(&t));
	ctrack_fini(&t);

	ck_assert_int_eq(ctrack_init(&t, 2 * 1000 + 2), 0);
	add_n(&t, 2002);
	ck_assert(ctrack_has_room(&t));
	ctrack_fini(&t);

	/* fini twice is harmless. */
	ctrack_fini(&t);
}
END_TEST

START_TEST(test_ack_in_order)
{
	struct ctrack t;
	struct ctrack_counts c = { 0 };

	ck_assert_int_eq(ctrack_init(&t, 16), 0);
	add_n(&t, 5);
	for (uint64_t tag = 1; tag <= 5; tag++) {
		ck_assert_int_eq(ctrack_ack(&t, tag, false, &c), 1);
		assert_state(&t, 5 - tag, 5 - tag);
	}
	assert_counts(&c, 5, 0, 0, 0);
	/* Tags go on from where they were. */
	ck_assert_uint_eq(add(&t, "k", "x"), 6);
	assert_state(&t, 1, 1);
	ctrack_fini(&t);
}
END_TEST

START_TEST(test_ack_out_of_order)
{
	struct ctrack t;
	struct ctrack_counts c = { 0 };

	ck_assert_int_eq(ctrack_init(&t, 16), 0);
	add_n(&t, 5);
	/* The span shrinks only when the lowest unsettled tag settles. */
	ck_assert_int_eq(ctrack_ack(&t, 3, false, &c), 1);
	assert_state(&t, 4, 5);
	ck_assert_int_eq(ctrack_ack(&t, 2, false, &c), 1);
	assert_state(&t, 3, 5);
	ck_assert_int_eq(ctrack_ack(&t, 5, false, &c), 1);
	assert_state(&t, 2, 5);
	ck_assert_int_eq(ctrack_ack(&t, 1, false, &c), 1);
	/* 1, 2, 3 leave together; 4 is now the low end. */
	assert_state(&t, 1, 2);
	ck_assert_int_eq(ctrack_ack(&t, 4, false, &c), 1);
	assert_state(&t, 0, 0);
	assert_counts(&c, 5, 0, 0, 0);
	ctrack_fini(&t);
}
END_TEST

START_TEST(test_ack_multiple)
{
	struct ctrack t;
	struct ctrack_counts c = { 0 };

	ck_assert_int_eq(ctrack_init(&t, 16), 0);
	add_n(&t, 6);
	ck_assert_int_eq(ctrack_ack(&t, 4, true, &c), 4);
	assert_state(&t, 2, 2);
	assert_counts(&c, 4, 0, 0, 0);
	/* `multiple` on the lowest outstanding tag settles just that one. */
	ck_assert_int_eq(ctrack_ack(&t, 5, true, &c), 1);
	assert_state(&t, 1, 1);
	ck_assert_int_eq(ctrack_ack(&t, 6, true, &c), 1);
	assert_state(&t, 0, 0);
	assert_counts(&c, 6, 0, 0, 0);
	ctrack_fini(&t);
}
END_TEST

START_TEST(test_ack_multiple_settled_tag)
{
	struct ctrack t;
	struct ctrack_counts c = { 0 };

	ck_assert_int_eq(ctrack_init(&t, 16), 0);
	add_n(&t, 5);
	/* The tag of a `multiple` ack may itself be settled already. */
	ck_assert_int_eq(ctrack_ack(&t, 3, false, &c), 1);
	ck_assert_int_eq(ctrack_ack(&t, 3, true, &c), 2);
	assert_state(&t, 2, 2);
	assert_counts(&c, 3, 0, 0, 0);
	/* A `multiple` that covers only tags settled one by one settles nothing. */
	ck_assert_int_eq(ctrack_ack(&t, 3, true, &c), 0);
	ck_assert_int_eq(ctrack_ack(&t, 1, true, &c), 0);
	ck_assert_int_eq(ctrack_nack(&t, 2, true, &c), 0);
	assert_state(&t, 2, 2);
	assert_counts(&c, 3, 0, 0, 0);
	/* The same when the covered tags are settled but not yet at the low end. */
	ck_assert_int_eq(ctrack_ack(&t, 5, false, &c), 1);
	assert_state(&t, 1, 2);
	ck_assert_int_eq(ctrack_ack(&t, 5, true, &c), 1);
	assert_state(&t, 0, 0);
	assert_counts(&c, 5, 0, 0, 0);
	ck_assert_int_eq(ctrack_ack(&t, 5, true, &c), 0);
	ctrack_fini(&t);
}
END_TEST

START_TEST(test_ack_multiple_holes)
{
	struct ctrack t;
	struct ctrack_counts c = { 0 };

	ck_assert_int_eq(ctrack_init(&t, 16), 0);
	add_n(&t, 10);
	ck_assert_int_eq(ctrack_ack(&t, 2, false, &c), 1);
	ck_assert_int_eq(ctrack_nack(&t, 4, false, &c), 1);
	ck_assert_int_eq(ctrack_ack(&t, 5, false, &c), 1);
	ck_assert_int_eq(ctrack_ack(&t, 9, false, &c), 1);
	assert_state(&t, 6, 10);
	/* Settles 1, 3, 6, 7 and leaves the ones settled before as they were. */
	ck_assert_int_eq(ctrack_ack(&t, 7, true, &c), 4);
	assert_counts(&c, 7, 0, 0, 1);
	assert_state(&t, 2, 3);
	/* 8 and 10 are left; 9 in between is settled. */
	ck_assert_int_eq(ctrack_nack(&t, 10, true, &c), 2);
	assert_counts(&c, 7, 0, 0, 3);
	assert_state(&t, 0, 0);
	ctrack_fini(&t);
}
END_TEST

START_TEST(test_nack)
{
	struct ctrack t;
	struct ctrack_counts c = { 0 };

	ck_assert_int_eq(ctrack_init(&t, 16), 0);
	add_n(&t, 6);
	ck_assert_int_eq(ctrack_nack(&t, 2, false, &c), 1);
	assert_counts(&c, 0, 0, 0, 1);
	assert_state(&t, 5, 6);
	ck_assert_int_eq(ctrack_nack(&t, 1, false, &c), 1);
	assert_counts(&c, 0, 0, 0, 2);
	assert_state(&t, 4, 4);
	ck_assert_int_eq(ctrack_nack(&t, 5, true, &c), 3);
	assert_counts(&c, 0, 0, 0, 5);
	assert_state(&t, 1, 1);
	/* A nacked tag is settled: neither an ack nor a nack may follow. */
	ck_assert_int_eq(ctrack_ack(&t, 5, false, &c), -1);
	ck_assert_int_eq(ctrack_nack(&t, 5, false, &c), -1);
	assert_counts(&c, 0, 0, 0, 5);
	assert_state(&t, 1, 1);
	ctrack_fini(&t);
}
END_TEST

START_TEST(test_mixed)
{
	struct ctrack t;
	struct ctrack_counts c = { 0 };

	ck_assert_int_eq(ctrack_init(&t, 16), 0);
	add_n(&t, 8);
	ck_assert_int_eq(ctrack_ack(&t, 2, true, &c), 2);
	ck_assert_int_eq(ctrack_nack(&t, 4, false, &c), 1);
	ck_assert_int_eq(ctrack_ack(&t, 6, false, &c), 1);
	/* 3 and 5; 4 was nacked alone before. */
	ck_assert_int_eq(ctrack_nack(&t, 5, true, &c), 2);
	assert_counts(&c, 3, 0, 0, 3);
	assert_state(&t, 2, 2);
	ck_assert_int_eq(ctrack_ack(&t, 8, true, &c), 2);
	assert_counts(&c, 5, 0, 0, 3);
	assert_state(&t, 0, 0);
	ctrack_fini(&t);
}
END_TEST

/* Every way of naming an unknown tag fails and changes nothing. */
static void assert_unknown(struct ctrack *t, uint64_t tag, bool multiple)
{
	struct ctrack_counts c = { 0 };
	size_t outstanding = ctrack_outstanding(t);
	uint64_t span = ctrack_span(t), next = t->next;

	ck_assert_int_eq(ctrack_ack(t, tag, multiple, &c), -1);
	ck_assert_int_eq(ctrack_nack(t, tag, multiple, &c), -1);
	assert_counts(&c, 0, 0, 0, 0);
	assert_state(t, outstanding, span);
	ck_assert_uint_eq(t->next, next);
}

START_TEST(test_unknown_tags)
{
	struct ctrack t;
	struct ctrack_counts c = { 0 };

	ck_assert_int_eq(ctrack_init(&t, 16), 0);
	/* Nothing published yet. */
	assert_unknown(&t, 0, false);
	assert_unknown(&t, 0, true);
	assert_unknown(&t, 1, false);
	assert_unknown(&t, 1, true);

	add_n(&t, 5);
	assert_unknown(&t, 0, false);
	assert_unknown(&t, 0, true);
	assert_unknown(&t, 6, false);
	assert_unknown(&t, 6, true);
	assert_unknown(&t, 1000, true);
	assert_unknown(&t, UINT64_MAX, false);
	assert_unknown(&t, UINT64_MAX, true);

	/* Settled one by one: above the low end, then below it. */
	ck_assert_int_eq(ctrack_ack(&t, 3, false, &c), 1);
	assert_unknown(&t, 3, false);
	ck_assert_int_eq(ctrack_ack(&t, 1, false, &c), 1);
	assert_unknown(&t, 1, false);
	ck_assert_int_eq(ctrack_ack(&t, 2, true, &c), 1);
	assert_unknown(&t, 2, false);
	assert_unknown(&t, 3, false);
	assert_counts(&c, 3, 0, 0, 0);
	assert_state(&t, 2, 2);

	/* The ring is not confused by a tag a whole ring size ahead. */
	assert_unknown(&t, 4 + RING_MIN, false);
	assert_unknown(&t, 4 + RING_MIN, true);
	ctrack_fini(&t);
}
END_TEST

START_TEST(test_fates)
{
	struct ctrack t;
	struct ctrack_counts c = { 0 };
	struct ctrack_entry *e;

	ck_assert_int_eq(ctrack_init(&t, 16), 0);
	/* 1: forwarded; 2: a dead-letter copy; 3 and 4: returned. */
	ck_assert_uint_eq(ctrack_add(&t, hash_of("a"), "t/1", 3, false), 1);
	ck_assert_uint_eq(ctrack_add(&t, hash_of("b"), "t/2", 3, true), 2);
	ck_assert_uint_eq(ctrack_add(&t, hash_of("c"), "t/3", 3, false), 3);
	ck_assert_uint_eq(ctrack_add(&t, hash_of("d"), "t/4", 3, false), 4);
	ck_assert_uint_eq(ctrack_add(&t, hash_of("e"), "t/5", 3, true), 5);

	e = ctrack_find_return(&t, hash_of("c"));
	ck_assert_ptr_nonnull(e);
	ck_assert_str_eq(e->topic, "t/3");
	ck_assert_uint_eq(e->fate, CT_FATE_FORWARDED);
	ck_assert(!e->deadletter);
	e->fate = CT_FATE_DROPPED;

	e = ctrack_find_return(&t, hash_of("d"));
	ck_assert_ptr_nonnull(e);
	ck_assert_str_eq(e->topic, "t/4");
	e->fate = CT_FATE_NONE;

	e = ctrack_find_return(&t, hash_of("b"));
	ck_assert_ptr_nonnull(e);
	ck_assert_str_eq(e->topic, "t/2");
	ck_assert_uint_eq(e->fate, CT_FATE_DEADLETTERED);
	ck_assert(e->deadletter);

	ck_assert_int_eq(ctrack_ack(&t, 1, false, &c), 1);
	assert_counts(&c, 1, 0, 0, 0);
	ck_assert_int_eq(ctrack_ack(&t, 2, false, &c), 1);
	assert_counts(&c, 1, 1, 0, 0);
	ck_assert_int_eq(ctrack_ack(&t, 3, false, &c), 1);
	assert_counts(&c, 1, 1, 1, 0);
	/* CT_FATE_NONE counts nothing, but still settles. */
	ck_assert_int_eq(ctrack_ack(&t, 4, false, &c), 1);
	assert_counts(&c, 1, 1, 1, 0);
	assert_state(&t, 1, 1);
	/* A nacked dead-letter copy counts as nacked, whatever its fate. */
	ck_assert_int_eq(ctrack_nack(&t, 5, false, &c), 1);
	assert_counts(&c, 1, 1, 1, 1);
	assert_state(&t, 0, 0);
	ctrack_fini(&t);
}
END_TEST

START_TEST(test_fates_multiple)
{
	struct ctrack t;
	struct ctrack_counts c = { 0 };
	struct ctrack_entry *e;

	ck_assert_int_eq(ctrack_init(&t, 16), 0);
	ck_assert_uint_eq(ctrack_add(&t, hash_of("a"), "t", 1, false), 1);
	ck_assert_uint_eq(ctrack_add(&t, hash_of("a"), "t", 1, true), 2);
	ck_assert_uint_eq(ctrack_add(&t, hash_of("a"), "t", 1, false), 3);
	ck_assert_uint_eq(ctrack_add(&t, hash_of("a"), "t", 1, false), 4);
	e = ctrack_find_return(&t, hash_of("a"));
	e->fate = CT_FATE_NONE;
	e = ctrack_find_return(&t, hash_of("a"));
	e->fate = CT_FATE_DROPPED;
	/* One `multiple` ack counts each entry by its own fate. */
	ck_assert_int_eq(ctrack_ack(&t, 4, true, &c), 4);
	assert_counts(&c, 2, 0, 1, 0);
	assert_state(&t, 0, 0);
	ctrack_fini(&t);
}
END_TEST

START_TEST(test_find_return)
{
	struct ctrack t;
	struct ctrack_counts c = { 0 };
	struct ctrack_entry *e;

	ck_assert_int_eq(ctrack_init(&t, 16), 0);
	/* Nothing outstanding. */
	ck_assert_ptr_null(ctrack_find_return(&t, hash_of("a")));

	ck_assert_uint_eq(add(&t, "a", "a/1"), 1);
	ck_assert_uint_eq(add(&t, "b", "b/2"), 2);
	ck_assert_uint_eq(add(&t, "a", "a/3"), 3);
	ck_assert_uint_eq(add(&t, "a", "a/4"), 4);
	ck_assert_uint_eq(add(&t, "a", "a/5"), 5);
	ck_assert_uint_eq(add(&t, "b", "b/6"), 6);

	/* The oldest unreturned one first, then the next. */
	e = ctrack_find_return(&t, hash_of("a"));
	ck_assert_ptr_nonnull(e);
	ck_assert_str_eq(e->topic, "a/1");
	ck_assert(e->returned);
	e = ctrack_find_return(&t, hash_of("a"));
	ck_assert_ptr_nonnull(e);
	ck_assert_str_eq(e->topic, "a/3");
	ck_assert(e->returned);

	/* Settled entries are skipped. */
	ck_assert_int_eq(ctrack_ack(&t, 4, false, &c), 1);
	e = ctrack_find_return(&t, hash_of("a"));
	ck_assert_ptr_nonnull(e);
	ck_assert_str_eq(e->topic, "a/5");
	ck_assert_ptr_null(ctrack_find_return(&t, hash_of("a")));

	/* Another key, and a key nothing was published with. */
	e = ctrack_find_return(&t, hash_of("b"));
	ck_assert_ptr_nonnull(e);
	ck_assert_str_eq(e->topic, "b/2");
	ck_assert_int_eq(ctrack_ack(&t, 2, true, &c), 2);
	e = ctrack_find_return(&t, hash_of("b"));
	ck_assert_ptr_nonnull(e);
	ck_assert_str_eq(e->topic, "b/6");
	ck_assert_ptr_null(ctrack_find_return(&t, hash_of("b")));
	ck_assert_ptr_null(ctrack_find_return(&t, hash_of("c")));
	ck_assert_ptr_null(ctrack_find_return(&t, ctrack_key_hash("", 0, "a", 1)));

	/* A returned entry still settles, and only once. */
	assert_state(&t, 3, 4);
	ck_assert_int_eq(ctrack_ack(&t, 6, true, &c), 3);
	assert_counts(&c, 6, 0, 0, 0);
	assert_state(&t, 0, 0);
	ck_assert_ptr_null(ctrack_find_return(&t, hash_of("a")));
	ck_assert_ptr_null(ctrack_find_return(&t, hash_of("b")));

	/* A later publish with the same key is found again. */
	ck_assert_uint_eq(add(&t, "a", "a/7"), 7);
	e = ctrack_find_return(&t, hash_of("a"));
	ck_assert_ptr_nonnull(e);
	ck_assert_str_eq(e->topic, "a/7");
	ctrack_fini(&t);
}
END_TEST

START_TEST(test_topic_copy)
{
	struct ctrack t;
	struct ctrack_counts c = { 0 };
	struct ctrack_entry *e;
	char buf[] = "sensors/roomXXXX";

	ck_assert_int_eq(ctrack_init(&t, 16), 0);
	/* Only topic_len bytes are taken, and they are copied. */
	ck_assert_uint_eq(ctrack_add(&t, hash_of("a"), buf, 12, false), 1);
	memset(buf, '!', sizeof(buf) - 1);
	ck_assert_uint_eq(ctrack_add(&t, hash_of("b"), "", 0, false), 2);
	ck_assert_uint_eq(ctrack_add(&t, hash_of("c"), "x", 1, false), 3);
	ck_assert_uint_eq(ctrack_add(&t, hash_of("d"), "y", 1, false), 4);

	e = ctrack_find_return(&t, hash_of("a"));
	ck_assert_ptr_nonnull(e);
	ck_assert_ptr_ne(e->topic, buf);
	ck_assert_str_eq(e->topic, "sensors/room");
	e = ctrack_find_return(&t, hash_of("b"));
	ck_assert_ptr_nonnull(e);
	ck_assert_str_eq(e->topic, "");

	/* Settled entries let go of their topics (LSan checks); the others keep theirs. */
	ck_assert_int_eq(ctrack_ack(&t, 1, false, &c), 1);
	ck_assert_int_eq(ctrack_nack(&t, 3, false, &c), 1);
	e = ctrack_find_return(&t, hash_of("d"));
	ck_assert_ptr_nonnull(e);
	ck_assert_str_eq(e->topic, "y");
	/* 2 and 4 are still outstanding: fini frees their topics. */
	assert_state(&t, 2, 3);
	ctrack_fini(&t);
}
END_TEST

START_TEST(test_ring_full)
{
	struct ctrack t;
	struct ctrack_counts c = { 0 };

	ck_assert_int_eq(ctrack_init(&t, RING_MIN), 0);
	add_n(&t, RING_MIN);
	assert_state(&t, RING_MIN, RING_MIN);
	ck_assert(!ctrack_has_room(&t));
	ck_assert_uint_eq(add(&t, "k", "full"), 0);
	ck_assert_uint_eq(add(&t, "k", "full"), 0);
	assert_state(&t, RING_MIN, RING_MIN);
	ck_assert_uint_eq(t.next, RING_MIN + 1);

	/* Settling above the low end frees nothing. */
	ck_assert_int_eq(ctrack_ack(&t, RING_MIN, false, &c), 1);
	ck_assert_int_eq(ctrack_ack(&t, 2, false, &c), 1);
	ck_assert(!ctrack_has_room(&t));
	ck_assert_uint_eq(add(&t, "k", "full"), 0);
	assert_state(&t, RING_MIN - 2, RING_MIN);

	/* Settling the low end frees it and the settled tag after it. */
	ck_assert_int_eq(ctrack_ack(&t, 1, false, &c), 1);
	ck_assert(ctrack_has_room(&t));
	assert_state(&t, RING_MIN - 3, RING_MIN - 2);
	ck_assert_uint_eq(add(&t, "k", "w1"), RING_MIN + 1);
	ck_assert_uint_eq(add(&t, "k", "w2"), RING_MIN + 2);
	ck_assert(!ctrack_has_room(&t));
	ck_assert_uint_eq(add(&t, "k", "full"), 0);

	/* The new tags share slots with settled ones and are resolved as themselves. */
	ck_assert_ptr_null(ctrack_find_return(&t, hash_of("nothing")));
	ck_assert_int_eq(ctrack_ack(&t, RING_MIN + 2, true, &c), RING_MIN - 1);
	assert_counts(&c, RING_MIN + 2, 0, 0, 0);
	assert_state(&t, 0, 0);
	ck_assert(ctrack_has_room(&t));
	ctrack_fini(&t);
}
END_TEST

/* Growing a wrapped ring keeps every entry resolvable as itself. */
START_TEST(test_reserve)
{
	struct ctrack t;
	struct ctrack_counts c = { 0 };
	struct ctrack_entry *e;

	ck_assert_int_eq(ctrack_init(&t, RING_MIN), 0);
	add_n(&t, RING_MIN);
	/* Settle the first half so the live tags wrap around the ring's end. */
	ck_assert_int_eq(ctrack_ack(&t, RING_MIN / 2, true, &c), RING_MIN / 2);
	add_n(&t, RING_MIN / 2);
	ck_assert(!ctrack_has_room(&t));
	ck_assert_int_eq(ctrack_reserve(&t, RING_MIN / 2), 0);  /* already big enough */
	ck_assert_uint_eq(t.mask + 1, RING_MIN);
	ck_assert_int_eq(ctrack_reserve(&t, 3 * RING_MIN), 0);
	ck_assert_uint_eq(t.mask + 1, 4 * RING_MIN);
	assert_state(&t, RING_MIN, RING_MIN);
	ck_assert(ctrack_has_room(&t));
	add_n(&t, 2 * RING_MIN);
	assert_state(&t, 3 * RING_MIN, 3 * RING_MIN);

	/* A return still finds the oldest entry; its topic moved with it. */
	e = ctrack_find_return(&t, hash_of("k"));
	ck_assert_ptr_nonnull(e);
	ck_assert_str_eq(e->topic, "t9");
	for (uint64_t tag = RING_MIN / 2 + 1; tag < t.next; tag++) {
		char topic[32];

		snprintf(topic, sizeof(topic), "t%llu", (unsigned long long)tag);
		ck_assert_str_eq(t.ring[tag & t.mask].topic, topic);
	}
	ck_assert_int_eq(ctrack_ack(&t, t.next - 1, true, &c), 3 * RING_MIN);
	assert_state(&t, 0, 0);
	ctrack_fini(&t);
}
END_TEST

/* A small linear congruential generator: the long runs are reproducible. */
static uint32_t rnd(uint64_t *s)
{
	*s = *s * 6364136223846793005ull + 1442695040888963407ull;
	return (uint32_t)(*s >> 33);
}

START_TEST(test_wrap_around_in_order)
{
	struct ctrack t;
	struct ctrack_counts c = { 0 };
	const uint64_t total = 100000;
	uint64_t acked = 0;

	/*
	 * Always a few outstanding, so the window keeps sliding over the ring;
	 * the ring fills up between the `multiple` acks.
	 */
	ck_assert_int_eq(ctrack_init(&t, RING_MIN), 0);
	for (uint64_t tag = 1; tag <= total; tag++) {
		char topic[32];
		struct ctrack_entry *e;

		snprintf(topic, sizeof(topic), "w/%llu", (unsigned long long)tag);
		ck_assert_uint_eq(add(&t, topic, topic), tag);
		if (tag % 4 == 0) {
			e = ctrack_find_return(&t, hash_of(topic));
			ck_assert_ptr_nonnull(e);
			ck_assert_str_eq(e->topic, topic);
			e->fate = CT_FATE_DROPPED;
		}
		if (!ctrack_has_room(&t)) {
			ck_assert_int_eq(ctrack_ack(&t, acked + 1, false, &c), 1);
			acked++;
		}
		if (tag % 20 == 0 && tag - 5 > acked) {
			ck_assert_int_eq(ctrack_ack(&t, tag - 5, true, &c), (int)(tag - 5 - acked));
			acked = tag - 5;
		}
		ck_assert_uint_eq(ctrack_outstanding(&t), tag - acked);
		ck_assert_uint_eq(ctrack_span(&t), tag - acked);
	}
	ck_assert_int_eq(ctrack_ack(&t, total, true, &c), (int)(total - acked));
	assert_counts(&c, total - total / 4, 0, total / 4, 0);
	assert_state(&t, 0, 0);
	ctrack_fini(&t);
}
END_TEST

enum { M_UNPUBLISHED, M_OUTSTANDING, M_SETTLED };

/* What the tracker should hold, tag by tag. */
struct model {
	unsigned char *state;
	unsigned char *fate;
	bool *returned;
	uint64_t low, next;
	size_t outstanding;
	struct ctrack_counts counts;
	uint64_t uncounted;     /* acked with CT_FATE_NONE */
};

static void model_advance(struct model *m)
{
	while (m->low < m->next && m->state[m->low] == M_SETTLED)
		m->low++;
}

static int model_resolve(struct model *m, uint64_t tag, bool multiple, bool ack)
{
	uint64_t from = multiple ? m->low : tag;
	int n = 0;

	if (tag == 0 || tag >= m->next)
		return -1;
	if (!multiple && m->state[tag] != M_OUTSTANDING)
		return -1;
	for (uint64_t i = from; i <= tag; i++) {
		if (m->state[i] != M_OUTSTANDING)
			continue;
		m->state[i] = M_SETTLED;
		m->outstanding--;
		n++;
		if (!ack)
			m->counts.nacked++;
		else if (m->fate[i] == CT_FATE_FORWARDED)
			m->counts.forwarded++;
		else if (m->fate[i] == CT_FATE_DEADLETTERED)
			m->counts.dead_lettered++;
		else if (m->fate[i] == CT_FATE_DROPPED)
			m->counts.dropped++;
		else
			m->uncounted++;
	}
	model_advance(m);
	return n;
}

static uint64_t key_of(uint64_t tag)
{
	char key[8];

	snprintf(key, sizeof(key), "k%u", (unsigned)(tag % 5));
	return hash_of(key);
}

static void topic_of(uint64_t tag, char *buf, size_t size)
{
	snprintf(buf, size, "r/%llu", (unsigned long long)tag);
}

/*
 * Random publishes, acks, nacks (single and multiple, in and out of order),
 * returns and bad tags over many thousands of tags on a small ring, checked
 * step by step against a plain array of every tag's state.
 */
START_TEST(test_wrap_around_random)
{
	const uint64_t total = 50000;
	struct ctrack t;
	struct ctrack_counts c = { 0 };
	struct model m = { 0 };
	uint64_t seed = 12345;
	unsigned long steps = 0;

	m.state = calloc(total + 2, 1);
	m.fate = calloc(total + 2, 1);
	m.returned = calloc(total + 2, sizeof(bool));
	ck_assert(m.state && m.fate && m.returned);
	m.low = m.next = 1;
	ck_assert_int_eq(ctrack_init(&t, RING_MIN), 0);

	while (m.next <= total || m.outstanding > 0) {
		uint32_t op = rnd(&seed) % 16;
		uint64_t span = m.next - m.low;
		char topic[32];

		ck_assert_uint_lt(++steps, 50ul * total);
		if (op < 6 && m.next <= total) {
			bool dl = rnd(&seed) % 3 == 0;
			uint64_t tag;

			topic_of(m.next, topic, sizeof(topic));
			tag = ctrack_add(&t, key_of(m.next), topic, strlen(topic), dl);
			if (span >= RING_MIN) {
				ck_assert_uint_eq(tag, 0);
			} else {
				ck_assert_uint_eq(tag, m.next);
				m.state[tag] = M_OUTSTANDING;
				m.fate[tag] = dl ? CT_FATE_DEADLETTERED : CT_FATE_FORWARDED;
				m.outstanding++;
				m.next++;
			}
		} else if (op < 10) {
			/* A single confirm of a tag in or just below the window. */
			uint64_t tag = m.low + rnd(&seed) % (span + 1);
			bool ack = op != 9;

			if (tag > 2 && rnd(&seed) % 4 == 0)
				tag -= 2;
			ck_assert_int_eq((ack ? ctrack_ack : ctrack_nack)(&t, tag, false, &c),
			                 model_resolve(&m, tag, false, ack));
		} else if (op < 12 || m.next > total) {
			uint64_t tag = m.low + rnd(&seed) % (span + 1);
			bool ack = op != 11;

			if (tag > 1 && rnd(&seed) % 8 == 0)
				tag--;
			ck_assert_int_eq((ack ? ctrack_ack : ctrack_nack)(&t, tag, true, &c),
			                 model_resolve(&m, tag, true, ack));
		} else if (op < 14) {
			uint64_t key = key_of(rnd(&seed) % 6);
			uint64_t want = 0;
			struct ctrack_entry *e;

			for (uint64_t i = m.low; i < m.next && !want; i++) {
				if (m.state[i] == M_OUTSTANDING && !m.returned[i] && key_of(i) == key)
					want = i;
			}
			e = ctrack_find_return(&t, key);
			if (!want) {
				ck_assert_ptr_null(e);
				continue;
			}
			ck_assert_ptr_nonnull(e);
			topic_of(want, topic, sizeof(topic));
			ck_assert_str_eq(e->topic, topic);
			ck_assert(e->deadletter == (m.fate[want] == CT_FATE_DEADLETTERED));
			m.returned[want] = true;
			m.fate[want] = e->deadletter || want % 2 ? CT_FATE_DROPPED : CT_FATE_NONE;
			e->fate = m.fate[want];
		} else {
			uint64_t tag = op == 14 ? m.next + rnd(&seed) % 3 : 0;

			ck_assert_int_eq(ctrack_ack(&t, tag, rnd(&seed) % 2, &c), -1);
			ck_assert_int_eq(ctrack_nack(&t, tag, rnd(&seed) % 2, &c), -1);
		}
		ck_assert_uint_eq(ctrack_outstanding(&t), m.outstanding);
		ck_assert_uint_eq(ctrack_span(&t), m.next - m.low);
		ck_assert(ctrack_has_room(&t) == (m.next - m.low < RING_MIN));
	}
	assert_counts(&c, m.counts.forwarded, m.counts.dead_lettered, m.counts.dropped,
	              m.counts.nacked);
	/* Every tag settled exactly once. */
	ck_assert_uint_eq(c.forwarded + c.dead_lettered + c.dropped + c.nacked + m.uncounted, total);
	/* Every kind of outcome happened, so the run did cover them. */
	ck_assert_uint_gt(c.forwarded, 0);
	ck_assert_uint_gt(c.dead_lettered, 0);
	ck_assert_uint_gt(c.dropped, 0);
	ck_assert_uint_gt(c.nacked, 0);
	ck_assert_uint_gt(m.uncounted, 0);
	ctrack_fini(&t);
	free(m.state);
	free(m.fate);
	free(m.returned);
}
END_TEST

START_TEST(test_reset)
{
	struct ctrack t;
	struct ctrack_counts c = { 0 };

	ck_assert_int_eq(ctrack_init(&t, RING_MIN), 0);
	add_n(&t, 10);
	ck_assert_int_eq(ctrack_ack(&t, 3, true, &c), 3);
	ck_assert_int_eq(ctrack_ack(&t, 7, false, &c), 1);
	ck_assert_ptr_nonnull(ctrack_find_return(&t, hash_of("k")));
	assert_state(&t, 6, 7);

	/* Outstanding entries are forgotten (their topics freed), tags restart. */
	ctrack_reset(&t);
	assert_state(&t, 0, 0);
	ck_assert(ctrack_has_room(&t));
	ck_assert_ptr_null(ctrack_find_return(&t, hash_of("k")));
	assert_unknown(&t, 1, false);
	assert_unknown(&t, 5, true);
	ck_assert_uint_eq(add(&t, "k", "again"), 1);
	ck_assert_uint_eq(add(&t, "k", "again"), 2);
	assert_state(&t, 2, 2);
	/* Nothing of before the reset lingers in the reused slots. */
	ck_assert_str_eq(ctrack_find_return(&t, hash_of("k"))->topic, "again");
	ck_assert_int_eq(ctrack_ack(&t, 2, true, &c), 2);
	assert_counts(&c, 6, 0, 0, 0);

	/* The whole ring is free again. */
	ctrack_reset(&t);
	add_n(&t, RING_MIN);
	ck_assert(!ctrack_has_room(&t));
	ctrack_reset(&t);
	ck_assert_uint_eq(add(&t, "k", "x"), 1);
	ctrack_fini(&t);
}
END_TEST

START_TEST(test_key_hash)
{
	/* Exchange and key are kept apart. */
	ck_assert_uint_ne(ctrack_key_hash("ab", 2, "c", 1), ctrack_key_hash("a", 1, "bc", 2));
	ck_assert_uint_ne(ctrack_key_hash("", 0, "abc", 3), ctrack_key_hash("abc", 3, "", 0));
	ck_assert_uint_ne(ctrack_key_hash("x", 1, "", 0), ctrack_key_hash("", 0, "x", 1));
	ck_assert_uint_ne(ctrack_key_hash("amq.topic", 9, "a.b", 3),
	                  ctrack_key_hash("amq.topic", 9, "a.c", 3));
	ck_assert_uint_ne(ctrack_key_hash("ex1", 3, "a", 1), ctrack_key_hash("ex2", 3, "a", 1));
	/* The same input, the same hash; only the given lengths count. */
	ck_assert_uint_eq(ctrack_key_hash("amq.topic", 9, "a.b", 3),
	                  ctrack_key_hash("amq.topic", 9, "a.b", 3));
	ck_assert_uint_eq(ctrack_key_hash("amq.topicXX", 9, "a.bYY", 3),
	                  ctrack_key_hash("amq.topic", 9, "a.b", 3));
	/* Embedded NUL bytes are data like any other. */
	ck_assert_uint_ne(ctrack_key_hash("a\0b", 3, "c", 1), ctrack_key_hash("a", 1, "c", 1));
}
END_TEST

/*
 * A slot keeps a small topic buffer for its next tag, gives a large one
 * back once settled, and the topics stay right across a ring that grows.
 */
START_TEST(test_topic_buffers)
{
	struct ctrack t;
	struct ctrack_counts c = { 0 };
	char long_topic[300];
	uint64_t tag;

	memset(long_topic, 'x', sizeof(long_topic));
	ck_assert_int_eq(ctrack_init(&t, 16), 0);
	tag = ctrack_add(&t, hash_of("a"), "short/topic", 11, false);
	ck_assert_int_eq(ctrack_ack(&t, tag, false, &c), 1);
	/* The next tag that lands in the same slot reuses its buffer. */
	ck_assert_ptr_nonnull(t.ring[tag & t.mask].topic);
	ck_assert_uint_ge(t.ring[tag & t.mask].topic_cap, 12);
	tag = ctrack_add(&t, hash_of("a"), long_topic, sizeof(long_topic), false);
	ck_assert_uint_eq(strlen(ctrack_get(&t, tag)->topic), sizeof(long_topic));
	ck_assert_int_eq(ctrack_ack(&t, tag, false, &c), 1);
	ck_assert_ptr_null(t.ring[tag & t.mask].topic);
	ck_assert_uint_eq(t.ring[tag & t.mask].topic_cap, 0);
	/* Outstanding tags keep their topics while the ring grows under them. */
	add_n(&t, 10);
	ck_assert_int_eq(ctrack_reserve(&t, 64), 0);
	add_n(&t, 40);
	for (uint64_t g = t.low; g < t.next; g++) {
		char want[32];

		snprintf(want, sizeof(want), "t%llu", (unsigned long long)g);
		ck_assert_str_eq(ctrack_get(&t, g)->topic, want);
	}
	ck_assert_int_eq(ctrack_ack(&t, t.next - 1, true, &c), 50);
	add_n(&t, 60);
	ctrack_fini(&t);
}
END_TEST

/* The head is the oldest outstanding entry; get finds outstanding tags only. */
START_TEST(test_head_get)
{
	struct ctrack t;
	struct ctrack_counts c = { 0 };

	ck_assert_int_eq(ctrack_init(&t, 16), 0);
	ck_assert_ptr_null(ctrack_head(&t));
	ck_assert_uint_eq(ctrack_add(&t, 1, "a", 1, false), 1);
	ck_assert_uint_eq(ctrack_add(&t, 2, "b", 1, false), 2);
	ck_assert_uint_eq(ctrack_add(&t, 3, "c", 1, false), 3);
	ctrack_get(&t, 1)->fp = 11;
	ctrack_get(&t, 2)->fp = 22;
	ctrack_get(&t, 3)->fp = 33;
	ck_assert_uint_eq(ctrack_head(&t)->fp, 11);
	/* Out of order: 2 settles first; the head stays 1, then moves past 2 to 3. */
	ck_assert_int_eq(ctrack_ack(&t, 2, false, &c), 1);
	ck_assert_ptr_null(ctrack_get(&t, 2));
	ck_assert_uint_eq(ctrack_head(&t)->fp, 11);
	ck_assert_int_eq(ctrack_ack(&t, 1, false, &c), 1);
	ck_assert_uint_eq(ctrack_head(&t)->fp, 33);
	ck_assert_str_eq(ctrack_head(&t)->topic, "c");
	ck_assert_ptr_null(ctrack_get(&t, 0));
	ck_assert_ptr_null(ctrack_get(&t, 4));
	ck_assert_int_eq(ctrack_nack(&t, 3, false, &c), 1);
	ck_assert_ptr_null(ctrack_head(&t));
	ctrack_fini(&t);
}
END_TEST

/* A message's fingerprint: its topic and payload, every byte, never 0. */
START_TEST(test_fingerprint)
{
	char a[100], b[100];
	uint64_t fa;

	for (size_t i = 0; i < sizeof(a); i++)
		a[i] = (char)(i * 7);
	memcpy(b, a, sizeof(a));
	fa = ctrack_fingerprint("t/x", 3, a, sizeof(a));
	ck_assert_uint_ne(fa, 0);
	ck_assert_uint_eq(fa, ctrack_fingerprint("t/x", 3, b, sizeof(b)));
	/* Any byte of the payload, at any place, and the tail shorter than a word. */
	for (size_t i = 0; i < sizeof(a); i++) {
		b[i] ^= 1;
		ck_assert_uint_ne(fa, ctrack_fingerprint("t/x", 3, b, sizeof(b)));
		b[i] ^= 1;
	}
	ck_assert_uint_ne(fa, ctrack_fingerprint("t/y", 3, a, sizeof(a)));
	ck_assert_uint_ne(fa, ctrack_fingerprint("t/x", 3, a, sizeof(a) - 1));
	/* Topic and payload are kept apart. */
	ck_assert_uint_ne(ctrack_fingerprint("ab", 2, "c", 1), ctrack_fingerprint("a", 1, "bc", 2));
	ck_assert_uint_ne(ctrack_fingerprint("a", 1, "", 0), ctrack_fingerprint("a", 1, "\0", 1));
	ck_assert_uint_ne(ctrack_fingerprint("", 0, "", 0), 0);
	/* What is added counts, and the same addition gives the same result. */
	ck_assert_uint_ne(ctrack_fingerprint_add(fa, 1), ctrack_fingerprint_add(fa, 2));
	ck_assert_uint_ne(ctrack_fingerprint_add(fa, 1), fa);
	ck_assert_uint_eq(ctrack_fingerprint_add(fa, 7), ctrack_fingerprint_add(fa, 7));
	ck_assert_uint_ne(ctrack_fingerprint_add(0, 0), 0);
}
END_TEST

static Suite *ctrack_suite(void)
{
	Suite *s = suite_create("ctrack");
	struct {
		const char *name;
		const TTest *test;
	} cases[] = {
		{ "tags", test_tags },
		{ "init_size", test_init_size },
		{ "ack_in_order", test_ack_in_order },
		{ "ack_out_of_order", test_ack_out_of_order },
		{ "ack_multiple", test_ack_multiple },
		{ "ack_multiple_settled_tag", test_ack_multiple_settled_tag },
		{ "ack_multiple_holes", test_ack_multiple_holes },
		{ "nack", test_nack },
		{ "mixed", test_mixed },
		{ "unknown_tags", test_unknown_tags },
		{ "fates", test_fates },
		{ "fates_multiple", test_fates_multiple },
		{ "find_return", test_find_return },
		{ "topic_copy", test_topic_copy },
		{ "ring_full", test_ring_full },
		{ "reserve", test_reserve },
		{ "wrap_around_in_order", test_wrap_around_in_order },
		{ "wrap_around_random", test_wrap_around_random },
		{ "reset", test_reset },
		{ "key_hash", test_key_hash },
		{ "topic_buffers", test_topic_buffers },
		{ "head_get", test_head_get },
		{ "fingerprint", test_fingerprint },
	};

	for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
		TCase *tc = tcase_create(cases[i].name);

		/* The random run is long under the sanitizers. */
		tcase_set_timeout(tc, 60);
		tcase_add_test(tc, cases[i].test);
		suite_add_tcase(s, tc);
	}
	return s;
}

int main(void)
{
	SRunner *sr = srunner_create(ctrack_suite());
	int failed;

	srunner_run_all(sr, CK_NORMAL);
	failed = srunner_ntests_failed(sr);
	srunner_free(sr);
	return failed != 0 ? EXIT_FAILURE : EXIT_SUCCESS;
}
