#include "gate.h"

int gate_init(struct gate *g, uint64_t cap, unsigned poison_failures)
{
	*g = (struct gate){ .cap = cap };
	guard_init(&g->guard, poison_failures);
	/* Each message read may add its own tag and, if returned, a dead-letter copy's. */
	return ctrack_init(&g->track, 2 * (size_t)cap + 2);
}

void gate_fini(struct gate *g)
{
	ctrack_fini(&g->track);
}

/*
 * The cap.  PUBACKs leave only when nothing is unconfirmed, so a crash
 * redelivers everything read since the last flush: reading pauses once
 * `cap` messages were read since then, until RabbitMQ has confirmed them
 * all.  (A window that slid with each confirm would let a steady stream run
 * for thousands of messages without ever reaching a flush.)  After a
 * failure that named a message, one at a time (see guard.h).
 */
static uint64_t gate_read_budget(const struct gate *g, bool send_room)
{
	if (!g->mqtt_up || !g->amqp_ready || (g->hold && !g->downlink_busy) || g->poisoned ||
	    g->must_drop || !send_room)
		return 0;
	if (guard_probing(&g->guard))
		return ctrack_outstanding(&g->track) > 0 ? 0 : 1;
	if (g->unflushed >= g->cap || ctrack_span(&g->track) >= 2 * g->cap)
		return 0;
	return g->cap - g->unflushed;
}

void gate_decide(struct gate *g, bool send_room, struct gate_decision *d)
{
	/* A suspect that went through after all: the failures were not its doing. */
	if (g->amqp_ready)
		guard_on_settled(&g->guard, ctrack_outstanding(&g->track));
	d->drop = g->mqtt_up && (g->must_drop || g->poisoned);
	d->close = g->mqtt_up && !d->drop && (!g->amqp_ready || (g->hold && !g->downlink_busy));
	d->read = d->drop ? 0 : gate_read_budget(g, send_room);
	d->flush = g->mqtt_up && !g->poisoned && !g->must_drop && ctrack_outstanding(&g->track) == 0;
	d->connect = !g->mqtt_up && g->amqp_ready && !g->hold && ctrack_outstanding(&g->track) == 0;
}

void gate_hold(struct gate *g, bool hold)
{
	g->hold = hold;
}

void gate_downlink_busy(struct gate *g, bool busy)
{
	g->downlink_busy = busy;
}

void gate_configure(struct gate *g, uint64_t cap, unsigned poison_failures)
{
	g->cap = cap;
	guard_set_threshold(&g->guard, poison_failures);
}

void gate_mqtt_up(struct gate *g)
{
	g->mqtt_up = true;
	g->unflushed = 0;
	g->poisoned = false;
	g->must_drop = false;
}

uint64_t gate_mqtt_down(struct gate *g)
{
	uint64_t n = g->unflushed;

	if (!g->mqtt_up)
		return 0;
	g->redelivered += n;
	g->unflushed = 0;
	g->mqtt_up = false;
	g->poisoned = false;
	g->must_drop = false;
	return n;
}

void gate_read(struct gate *g)
{
	g->unflushed++;
	/* A message read on a poisoned connection is not forwarded: it comes again. */
	if (!g->poisoned)
		guard_on_read(&g->guard);
}

uint64_t gate_flushed(struct gate *g)
{
	uint64_t n = g->unflushed;

	g->unflushed = 0;
	return n;
}

void gate_poison(struct gate *g)
{
	if (g->mqtt_up)
		g->poisoned = true;
}

void gate_amqp_up(struct gate *g)
{
	ctrack_reset(&g->track);
	g->amqp_ready = true;
}

void gate_amqp_down(struct gate *g)
{
	if (g->mqtt_up && (ctrack_outstanding(&g->track) > 0 || g->poisoned))
		g->must_drop = true;
	/* Every unconfirmed publish is in doubt; the MQTT broker redelivers them. */
	ctrack_reset(&g->track);
	g->amqp_ready = false;
}

void gate_amqp_blocked(struct gate *g, bool blocked)
{
	g->amqp_ready = !blocked;
}

int gate_ack(struct gate *g, uint64_t tag, bool multiple, struct ctrack_counts *c)
{
	return ctrack_ack(&g->track, tag, multiple, c);
}

int gate_nack(struct gate *g, uint64_t tag, bool multiple, struct ctrack_counts *c)
{
	int n = ctrack_nack(&g->track, tag, multiple, c);

	if (n >= 0 && g->mqtt_up)
		g->must_drop = true;
	return n;
}

bool gate_idle(const struct gate *g)
{
	return !g->mqtt_up && ctrack_outstanding(&g->track) == 0;
}
