#include "gate.h"

#include <check.h>
#include <stdlib.h>

#define CAP 4

static struct gate g;
static struct gate_decision d;

static void setup(void)
{
	ck_assert_int_eq(gate_init(&g, CAP, 3), 0);
}

static void teardown(void)
{
	gate_fini(&g);
}

static void decide(void)
{
	gate_decide(&g, true, &d);
}

/* Reads one message and publishes it as one copy; returns its tag. */
static uint64_t read_publish(void)
{
	gate_read(&g);
	return ctrack_add(&g.track, 1, "t", 1, false);
}

/* Both sides up, as after start-up. */
static void both_up(void)
{
	gate_amqp_up(&g);
	decide();
	ck_assert(d.connect);
	gate_mqtt_up(&g);
}

/* MQTT connects only once the channel is ready, and only with nothing unconfirmed. */
START_TEST(test_connect)
{
	decide();
	ck_assert(!d.connect);
	ck_assert_uint_eq(d.read, 0);
	gate_amqp_up(&g);
	decide();
	ck_assert(d.connect);
	gate_amqp_blocked(&g, true);
	decide();
	ck_assert(!d.connect);
	gate_amqp_blocked(&g, false);
	gate_hold(&g, true);
	decide();
	ck_assert(!d.connect);
	gate_hold(&g, false);
	gate_mqtt_up(&g);
	decide();
	ck_assert(!d.connect);
	ck_assert_uint_eq(d.read, CAP);
	ck_assert(d.flush);
}
END_TEST

/* PUBACKs leave only with nothing unconfirmed; an ack opens the gate. */
START_TEST(test_ack)
{
	uint64_t t1, t2;
	struct ctrack_counts c = { 0 };

	both_up();
	t1 = read_publish();
	t2 = read_publish();
	decide();
	ck_assert(!d.flush);
	ck_assert_uint_eq(d.read, CAP - 2);
	ck_assert_int_eq(gate_ack(&g, t1, false, &c), 1);
	decide();
	ck_assert(!d.flush);
	ck_assert_int_eq(gate_ack(&g, t2, false, &c), 1);
	decide();
	ck_assert(d.flush);
	ck_assert_uint_eq(c.forwarded, 2);
	ck_assert_uint_eq(gate_flushed(&g), 2);
	decide();
	ck_assert_uint_eq(d.read, CAP);
	/* An ack of a tag never published is a protocol violation. */
	ck_assert_int_lt(gate_ack(&g, 99, false, &c), 0);
}
END_TEST

START_TEST(test_multiple_ack)
{
	struct ctrack_counts c = { 0 };
	uint64_t last = 0;

	both_up();
	for (int i = 0; i < 3; i++)
		last = read_publish();
	ck_assert_int_eq(gate_ack(&g, last, true, &c), 3);
	decide();
	ck_assert(d.flush);
	ck_assert_uint_eq(c.forwarded, 3);
}
END_TEST

/* The cap: reading pauses after CAP messages until they are confirmed and flushed. */
START_TEST(test_cap)
{
	struct ctrack_counts c = { 0 };
	uint64_t last = 0;

	both_up();
	for (int i = 0; i < CAP; i++) {
		decide();
		ck_assert_uint_eq(d.read, (uint64_t)(CAP - i));
		last = read_publish();
	}
	decide();
	ck_assert_uint_eq(d.read, 0);
	ck_assert(!d.flush);
	gate_ack(&g, last, true, &c);
	decide();
	/* Confirmed, but still unflushed: a crash would redeliver them all. */
	ck_assert_uint_eq(d.read, 0);
	ck_assert(d.flush);
	gate_flushed(&g);
	decide();
	ck_assert_uint_eq(d.read, CAP);
	/* A full send queue toward RabbitMQ pauses reading too. */
	gate_decide(&g, false, &d);
	ck_assert_uint_eq(d.read, 0);
}
END_TEST

/* A nack: the MQTT connection ends without a flush, and the broker redelivers. */
START_TEST(test_nack)
{
	struct ctrack_counts c = { 0 };
	uint64_t t1, t2;

	both_up();
	t1 = read_publish();
	t2 = read_publish();
	ck_assert_int_eq(gate_ack(&g, t1, false, &c), 1);
	ck_assert_int_eq(gate_nack(&g, t2, false, &c), 1);
	ck_assert_uint_eq(c.nacked, 1);
	decide();
	ck_assert(d.drop);
	ck_assert(!d.flush);
	ck_assert_uint_eq(d.read, 0);
	gate_mqtt_down(&g);
	ck_assert_uint_eq(g.redelivered, 2);
	decide();
	ck_assert(!d.drop);
	ck_assert(d.connect);
}
END_TEST

/* A returned copy is settled by its ack like any other; the fate says how it counts. */
START_TEST(test_return)
{
	struct ctrack_counts c = { 0 };
	struct ctrack_entry *e;
	uint64_t t1, t2;

	both_up();
	t1 = read_publish();
	e = ctrack_find_return(&g.track, 1);
	ck_assert_ptr_nonnull(e);
	e->fate = CT_FATE_NONE;
	/* Its dead-letter copy. */
	t2 = ctrack_add(&g.track, 2, "t", 1, true);
	ck_assert_int_eq(gate_ack(&g, t1, false, &c), 1);
	decide();
	ck_assert(!d.flush);
	ck_assert_int_eq(gate_ack(&g, t2, false, &c), 1);
	decide();
	ck_assert(d.flush);
	ck_assert_uint_eq(c.forwarded, 0);
	ck_assert_uint_eq(c.dead_lettered, 1);
}
END_TEST

/* AMQP lost with messages unconfirmed: drop; with none: a clean close. */
START_TEST(test_amqp_loss)
{
	both_up();
	read_publish();
	gate_amqp_down(&g);
	decide();
	ck_assert(d.drop);
	ck_assert(!d.flush);
	ck_assert_uint_eq(gate_outstanding(&g), 0);
	gate_mqtt_down(&g);
	decide();
	ck_assert(!d.connect);
	gate_amqp_up(&g);
	decide();
	ck_assert(d.connect);

	gate_mqtt_up(&g);
	gate_amqp_down(&g);
	decide();
	ck_assert(!d.drop);
	ck_assert(d.close);
	ck_assert(d.flush);
	ck_assert_uint_eq(d.read, 0);
}
END_TEST

/* A publish that failed poisons the connection: never flushed, dropped. */
START_TEST(test_poison)
{
	struct ctrack_counts c = { 0 };
	uint64_t t1;

	both_up();
	t1 = read_publish();
	gate_poison(&g);
	gate_ack(&g, t1, false, &c);
	decide();
	ck_assert(d.drop);
	ck_assert(!d.flush);
	gate_mqtt_down(&g);
	decide();
	ck_assert(!d.drop);
	/* Poison belongs to a connection: without one there is nothing to mark. */
	gate_poison(&g);
	ck_assert(!g.poisoned);
}
END_TEST

/*
 * A reload that changes a side: held, MQTT closes once confirmed, and the
 * side may restart only with MQTT closed and nothing in flight.
 */
START_TEST(test_reload)
{
	struct ctrack_counts c = { 0 };
	uint64_t t1;

	both_up();
	t1 = read_publish();
	gate_hold(&g, true);
	decide();
	ck_assert(d.close);
	ck_assert_uint_eq(d.read, 0);
	ck_assert(!d.flush);
	ck_assert(!gate_idle(&g));
	gate_ack(&g, t1, false, &c);
	decide();
	ck_assert(d.flush);
	gate_flushed(&g);
	gate_mqtt_down(&g);
	ck_assert_uint_eq(g.redelivered, 0);
	ck_assert(gate_idle(&g));
	decide();
	ck_assert(!d.connect);
	gate_configure(&g, 2, 0);
	gate_hold(&g, false);
	decide();
	ck_assert(d.connect);
	gate_mqtt_up(&g);
	decide();
	ck_assert_uint_eq(d.read, 2);
	ck_assert_uint_eq(g.guard.threshold, 0);
}
END_TEST

/* Shutdown: no more reads, flush once confirmed, then nothing reconnects. */
START_TEST(test_shutdown)
{
	struct ctrack_counts c = { 0 };
	uint64_t t1;

	both_up();
	t1 = read_publish();
	gate_hold(&g, true);
	decide();
	ck_assert_uint_eq(d.read, 0);
	ck_assert(!d.flush);
	gate_ack(&g, t1, false, &c);
	decide();
	ck_assert(d.flush);
	ck_assert(d.close);
	gate_flushed(&g);
	gate_mqtt_down(&g);
	decide();
	ck_assert(!d.connect);
	ck_assert(!d.drop);
}
END_TEST

/* After a failure that named a message: one message at a time. */
START_TEST(test_probing)
{
	struct ctrack_counts c = { 0 };
	uint64_t t1;

	both_up();
	ck_assert(guard_on_failure(&g.guard, 42, true, "406 x", 0, 2));
	decide();
	ck_assert_uint_eq(d.read, 1);
	t1 = read_publish();
	decide();
	ck_assert_uint_eq(d.read, 0);
	gate_ack(&g, t1, false, &c);
	decide();
	ck_assert_uint_eq(d.read, 1);
}
END_TEST

/*
 * A hold while the downlink awaits PUBACKs: they come on the MQTT socket,
 * so the connection neither closes nor stops reading until they are in;
 * then the hold closes it as usual.
 */
START_TEST(test_hold_downlink_busy)
{
	both_up();
	gate_hold(&g, true);
	gate_downlink_busy(&g, true);
	decide();
	ck_assert(!d.close);
	ck_assert(!d.drop);
	ck_assert_uint_eq(d.read, CAP);
	ck_assert(d.flush);
	/* A hold still keeps a new connection from starting. */
	ck_assert(!d.connect);
	/* The PUBACKs are in: the hold takes effect. */
	gate_downlink_busy(&g, false);
	decide();
	ck_assert(d.close);
	ck_assert_uint_eq(d.read, 0);
	ck_assert(d.flush);
}
END_TEST

/* Without the downlink a hold closes MQTT and stops its reads at once. */
START_TEST(test_hold_downlink_idle)
{
	both_up();
	gate_downlink_busy(&g, false);
	gate_hold(&g, true);
	decide();
	ck_assert(d.close);
	ck_assert_uint_eq(d.read, 0);
	ck_assert(!d.drop);
}
END_TEST

static bool same_decision(const struct gate_decision *a, const struct gate_decision *b)
{
	return a->read == b->read && a->flush == b->flush && a->connect == b->connect &&
	       a->drop == b->drop && a->close == b->close;
}

/* The decision now with the downlink busy and with it idle: they must agree. */
static void expect_busy_irrelevant(void)
{
	struct gate_decision idle;

	gate_downlink_busy(&g, false);
	decide();
	idle = d;
	gate_downlink_busy(&g, true);
	decide();
	ck_assert(same_decision(&idle, &d));
}

/* Without a hold, a busy downlink changes no decision. */
START_TEST(test_downlink_busy_alone)
{
	/* Neither side up, then AMQP alone: the same connect answer either way. */
	expect_busy_irrelevant();
	gate_amqp_up(&g);
	expect_busy_irrelevant();
	ck_assert(d.connect);
	/* Up and idle: reads, flushes, does not close. */
	gate_mqtt_up(&g);
	expect_busy_irrelevant();
	ck_assert(!d.close);
	ck_assert_uint_eq(d.read, CAP);
	/* A message unconfirmed: no flush either way. */
	read_publish();
	expect_busy_irrelevant();
	ck_assert(!d.flush);
	ck_assert(!d.close);
	/* AMQP lost with it unconfirmed: dropped either way. */
	gate_amqp_down(&g);
	expect_busy_irrelevant();
	ck_assert(d.drop);
	/* AMQP lost with nothing unconfirmed: closed either way. */
	gate_mqtt_down(&g);
	gate_amqp_up(&g);
	gate_mqtt_up(&g);
	gate_amqp_down(&g);
	expect_busy_irrelevant();
	ck_assert(d.close);
	ck_assert_uint_eq(d.read, 0);
}
END_TEST

static Suite *gate_suite(void)
{
	Suite *s = suite_create("gate");
	TCase *tc = tcase_create("decisions");

	tcase_add_checked_fixture(tc, setup, teardown);
	tcase_add_test(tc, test_connect);
	tcase_add_test(tc, test_ack);
	tcase_add_test(tc, test_multiple_ack);
	tcase_add_test(tc, test_cap);
	tcase_add_test(tc, test_nack);
	tcase_add_test(tc, test_return);
	tcase_add_test(tc, test_amqp_loss);
	tcase_add_test(tc, test_poison);
	tcase_add_test(tc, test_reload);
	tcase_add_test(tc, test_shutdown);
	tcase_add_test(tc, test_probing);
	tcase_add_test(tc, test_hold_downlink_busy);
	tcase_add_test(tc, test_hold_downlink_idle);
	tcase_add_test(tc, test_downlink_busy_alone);
	suite_add_tcase(s, tc);
	return s;
}

int main(void)
{
	SRunner *sr = srunner_create(gate_suite());
	int failed;

	srunner_run_all(sr, CK_NORMAL);
	failed = srunner_ntests_failed(sr);
	srunner_free(sr);
	return failed == 0 ? EXIT_SUCCESS : EXIT_FAILURE;
}
