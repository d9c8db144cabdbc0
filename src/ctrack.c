#include "ctrack.h"

#include <stdlib.h>
#include <string.h>

/*
 * A slot keeps its topic buffer for the tag that reuses it, so that a
 * steady stream allocates nothing; a buffer larger than this is freed once
 * its tag is settled, so a few long topics do not pin memory in every slot.
 */
#define CT_TOPIC_KEEP 256
/* The smallest buffer a slot gets. */
#define CT_TOPIC_MIN 64

int ctrack_init(struct ctrack *t, size_t span)
{
	uint64_t size = 16;

	memset(t, 0, sizeof(*t));
	while (size < span)
		size <<= 1;
	t->ring = calloc((size_t)size, sizeof(*t->ring));
	if (!t->ring)
		return -1;
	t->mask = size - 1;
	t->low = t->next = 1;
	return 0;
}

static struct ctrack_entry *ctrack_slot(struct ctrack *t, uint64_t tag)
{
	return &t->ring[tag & t->mask];
}

int ctrack_reserve(struct ctrack *t, size_t span)
{
	uint64_t size = t->mask + 1;
	struct ctrack_entry *ring;

	if (span <= size)
		return 0;
	while (size < span)
		size <<= 1;
	ring = calloc((size_t)size, sizeof(*ring));
	if (!ring)
		return -1;
	/* Each live tag moves to its slot under the new mask, with its buffer. */
	for (uint64_t tag = t->low; tag < t->next; tag++) {
		ring[tag & (size - 1)] = *ctrack_slot(t, tag);
		ctrack_slot(t, tag)->topic = NULL;
	}
	for (uint64_t i = 0; i <= t->mask; i++)
		free(t->ring[i].topic);
	free(t->ring);
	t->ring = ring;
	t->mask = size - 1;
	return 0;
}

/* Empties a slot; a small buffer stays for the next tag. */
static void ctrack_clear(struct ctrack_entry *e)
{
	char *topic = e->topic;
	size_t cap = e->topic_cap;

	if (cap > CT_TOPIC_KEEP) {
		free(topic);
		topic = NULL;
		cap = 0;
	}
	memset(e, 0, sizeof(*e));
	e->topic = topic;
	e->topic_cap = cap;
}

void ctrack_reset(struct ctrack *t)
{
	for (uint64_t tag = t->low; tag < t->next; tag++)
		ctrack_clear(ctrack_slot(t, tag));
	t->low = t->next = 1;
	t->outstanding = 0;
}

void ctrack_fini(struct ctrack *t)
{
	if (!t->ring)
		return;
	ctrack_reset(t);
	for (uint64_t i = 0; i <= t->mask; i++)
		free(t->ring[i].topic);
	free(t->ring);
	t->ring = NULL;
}

uint64_t ctrack_add(struct ctrack *t, uint64_t key_hash, const char *topic, size_t topic_len,
                    bool deadletter)
{
	struct ctrack_entry *e;

	if (!ctrack_has_room(t))
		return 0;
	e = ctrack_slot(t, t->next);
	if (e->topic_cap < topic_len + 1) {
		size_t cap = topic_len + 1 > CT_TOPIC_MIN ? topic_len + 1 : CT_TOPIC_MIN;
		char *b = malloc(cap);

		if (!b)
			return 0;
		free(e->topic);
		e->topic = b;
		e->topic_cap = cap;
	}
	memcpy(e->topic, topic, topic_len);
	e->topic[topic_len] = '\0';
	e->key_hash = key_hash;
	e->fp = 0;
	e->sent_us = 0;
	e->counter = 0;
	e->fate = deadletter ? CT_FATE_DEADLETTERED : CT_FATE_FORWARDED;
	e->deadletter = deadletter;
	e->returned = false;
	e->settled = false;
	t->outstanding++;
	return t->next++;
}

/* Frees settled entries at the low end so the ring's span shrinks. */
static void ctrack_advance(struct ctrack *t)
{
	while (t->low < t->next && ctrack_slot(t, t->low)->settled) {
		ctrack_clear(ctrack_slot(t, t->low));
		t->low++;
	}
}

static void ctrack_settle(struct ctrack *t, struct ctrack_entry *e, bool ack, struct ctrack_counts *c)
{
	if (ack) {
		switch (e->fate) {
		case CT_FATE_FORWARDED: c->forwarded++; break;
		case CT_FATE_DEADLETTERED: c->dead_lettered++; break;
		case CT_FATE_DROPPED: c->dropped++; break;
		default: break;
		}
	} else {
		c->nacked++;
	}
	if (c->each)
		c->each(c->arg, e, ack);
	if (e->topic_cap > CT_TOPIC_KEEP) {
		free(e->topic);
		e->topic = NULL;
		e->topic_cap = 0;
	}
	e->settled = true;
	t->outstanding--;
}

static int ctrack_resolve(struct ctrack *t, uint64_t tag, bool multiple, bool ack,
                          struct ctrack_counts *c)
{
	int n = 0;

	if (tag >= t->next || tag == 0)
		return -1;
	if (multiple) {
		/* Everything up to `tag` may already be settled one by one. */
		for (uint64_t i = t->low; i <= tag; i++) {
			struct ctrack_entry *e = ctrack_slot(t, i);

			if (!e->settled) {
				ctrack_settle(t, e, ack, c);
				n++;
			}
		}
	} else {
		if (tag < t->low || ctrack_slot(t, tag)->settled)
			return -1;
		ctrack_settle(t, ctrack_slot(t, tag), ack, c);
		n = 1;
	}
	ctrack_advance(t);
	return n;
}

int ctrack_ack(struct ctrack *t, uint64_t tag, bool multiple, struct ctrack_counts *c)
{
	return ctrack_resolve(t, tag, multiple, true, c);
}

int ctrack_nack(struct ctrack *t, uint64_t tag, bool multiple, struct ctrack_counts *c)
{
	return ctrack_resolve(t, tag, multiple, false, c);
}

struct ctrack_entry *ctrack_find_return(struct ctrack *t, uint64_t key_hash)
{
	for (uint64_t tag = t->low; tag < t->next; tag++) {
		struct ctrack_entry *e = ctrack_slot(t, tag);

		if (!e->settled && !e->returned && e->key_hash == key_hash) {
			e->returned = true;
			return e;
		}
	}
	return NULL;
}

uint64_t ctrack_key_hash(const char *exchange, size_t exlen, const char *key, size_t keylen)
{
	uint64_t h = 1469598103934665603ull;

	for (size_t i = 0; i < exlen; i++)
		h = (h ^ (unsigned char)exchange[i]) * 1099511628211ull;
	h = (h ^ 0xffu) * 1099511628211ull;
	for (size_t i = 0; i < keylen; i++)
		h = (h ^ (unsigned char)key[i]) * 1099511628211ull;
	return h;
}

struct ctrack_entry *ctrack_get(struct ctrack *t, uint64_t tag)
{
	struct ctrack_entry *e;

	if (tag < t->low || tag >= t->next)
		return NULL;
	e = ctrack_slot(t, tag);
	return e->settled ? NULL : e;
}

const struct ctrack_entry *ctrack_head(const struct ctrack *t)
{
	for (uint64_t tag = t->low; tag < t->next; tag++) {
		const struct ctrack_entry *e = &t->ring[tag & t->mask];

		if (!e->settled)
			return e;
	}
	return NULL;
}

/* A 64-bit mix (the finaliser of MurmurHash3) so that every input bit moves every output bit. */
static uint64_t ctrack_mix(uint64_t h)
{
	h ^= h >> 33;
	h *= 0xff51afd7ed558ccdull;
	h ^= h >> 33;
	h *= 0xc4ceb9fe1a85ec53ull;
	h ^= h >> 33;
	return h;
}

/* Eight bytes at a time: a payload of many megabytes is hashed at memory speed. */
static uint64_t ctrack_hash_bytes(uint64_t h, const void *data, size_t len)
{
	const unsigned char *p = data;
	uint64_t w;

	for (; len >= 8; p += 8, len -= 8) {
		memcpy(&w, p, 8);
		h = (h ^ ctrack_mix(w)) * 0x9e3779b97f4a7c15ull;
		h = (h << 27) | (h >> 37);
	}
	w = 0;
	if (len > 0)
		memcpy(&w, p, len);
	return ctrack_mix(h ^ ctrack_mix(w ^ ((uint64_t)len << 56)));
}

uint64_t ctrack_fingerprint(const char *topic, size_t topic_len, const void *payload, size_t len)
{
	uint64_t h = ctrack_hash_bytes(0x6d61622d66707631ull ^ topic_len, topic, topic_len);

	h = ctrack_hash_bytes(h ^ (uint64_t)len, payload, len);
	return h ? h : 1;
}

uint64_t ctrack_fingerprint_add(uint64_t fp, uint64_t more)
{
	uint64_t h = ctrack_mix(fp ^ ctrack_mix(more + 0x9e3779b97f4a7c15ull));

	return h ? h : 1;
}
