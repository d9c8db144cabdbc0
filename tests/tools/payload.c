/*
 * payload: deterministic test messages (see payload.h for the layout).
 */
#include "payload.h"

#include <string.h>

#define STAMP_FLAG 0x80000000U

/* splitmix64: a small, well-mixed generator; the state is the seed. */
static uint64_t mix_next(uint64_t *state)
{
	uint64_t z = (*state += 0x9e3779b97f4a7c15ULL);

	z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9ULL;
	z = (z ^ (z >> 27)) * 0x94d049bb133111ebULL;
	return z ^ (z >> 31);
}

/* Produces the body bytes (offset 16 onwards) for one sequence number. */
struct body_gen {
	uint64_t state;
	unsigned char perm[256];
	size_t pos;             /* body offset of the next byte */
	uint64_t word;          /* unread random bytes, low byte first */
	int left;               /* bytes left in word */
};

static void body_init(struct body_gen *g, uint64_t seq)
{
	g->state = seq ^ 0x6d61622d70617931ULL;
	for (int i = 0; i < 256; i++)
		g->perm[i] = (unsigned char)i;
	for (int i = 255; i > 0; i--) {
		int j = (int)(mix_next(&g->state) % (uint64_t)(i + 1));
		unsigned char t = g->perm[i];

		g->perm[i] = g->perm[j];
		g->perm[j] = t;
	}
	g->pos = 0;
	g->left = 0;
}

static unsigned char body_next(struct body_gen *g)
{
	unsigned char c;

	if (g->pos < 256) {
		c = g->perm[g->pos];
	} else {
		if (g->left == 0) {
			g->word = mix_next(&g->state);
			g->left = 8;
		}
		c = (unsigned char)(g->word & 0xff);
		g->word >>= 8;
		g->left--;
	}
	g->pos++;
	return c;
}

static void put_le(unsigned char *p, uint64_t v, int n)
{
	for (int i = 0; i < n; i++)
		p[i] = (unsigned char)(v >> (8 * i));
}

static uint64_t get_le(const unsigned char *p, int n)
{
	uint64_t v = 0;

	for (int i = n - 1; i >= 0; i--)
		v = (v << 8) | p[i];
	return v;
}

void payload_make(uint64_t seq, size_t size, unsigned char *buf)
{
	struct body_gen g;

	put_le(buf, seq, 8);
	put_le(buf + 8, (uint32_t)size, 4);
	put_le(buf + 12, PAYLOAD_MAGIC, 4);
	body_init(&g, seq);
	for (size_t i = PAYLOAD_MIN; i < size; i++)
		buf[i] = body_next(&g);
}

int payload_stamp(unsigned char *buf, size_t size, uint64_t ns)
{
	if (size < PAYLOAD_MIN_STAMPED)
		return -1;
	put_le(buf + 8, (uint32_t)size | STAMP_FLAG, 4);
	put_le(buf + 16, ns, 8);
	return 0;
}

int payload_check(const unsigned char *buf, size_t len, uint64_t *seq, uint64_t *stamp_ns)
{
	struct body_gen g;
	uint32_t sz;
	size_t i = PAYLOAD_MIN;
	int stamped;

	if (seq)
		*seq = UINT64_MAX;
	if (stamp_ns)
		*stamp_ns = 0;
	if (len < PAYLOAD_MIN || get_le(buf + 12, 4) != PAYLOAD_MAGIC)
		return -1;
	if (seq)
		*seq = get_le(buf, 8);
	sz = (uint32_t)get_le(buf + 8, 4);
	stamped = (sz & STAMP_FLAG) != 0;
	sz &= ~STAMP_FLAG;
	if (sz != len || (stamped && len < PAYLOAD_MIN_STAMPED))
		return -1;
	body_init(&g, get_le(buf, 8));
	if (stamped) {
		if (stamp_ns)
			*stamp_ns = get_le(buf + 16, 8);
		for (; i < PAYLOAD_MIN_STAMPED; i++)
			(void)body_next(&g);
	}
	for (; i < len; i++)
		if (buf[i] != body_next(&g))
			return -1;
	return 0;
}

size_t payload_size_for(uint64_t seq, size_t min, size_t max, uint64_t big_every, size_t big)
{
	uint64_t st = seq ^ 0x73697a6573697a65ULL;

	if (big_every != 0 && seq % big_every == 0)
		return big;
	if (max <= min)
		return min;
	return min + (size_t)(mix_next(&st) % (uint64_t)(max - min + 1));
}

int payload_topic_check(const char *pattern)
{
	int conversions = 0;

	for (const char *p = pattern; *p; p++) {
		if (*p != '%')
			continue;
		p++;
		if (*p == '%')
			continue;
		if ((*p != 'd' && *p != 'u') || ++conversions > 1)
			return -1;
	}
	return 0;
}

int payload_topic(const char *pattern, uint64_t ntopics, uint64_t seq, char *out, size_t outsz)
{
	size_t n = 0;
	char num[24];

	for (const char *p = pattern; *p; p++) {
		const char *src = p;
		size_t len = 1;

		if (*p == '%') {
			p++;
			if (*p == '%') {
				src = p;
			} else if (*p == 'd' || *p == 'u') {
				uint64_t v = ntopics ? seq % ntopics : seq;
				int k = sizeof(num);

				do {
					num[--k] = (char)('0' + v % 10);
					v /= 10;
				} while (v);
				src = num + k;
				len = sizeof(num) - (size_t)k;
			} else {
				return -1;
			}
		}
		if (n + len >= outsz)
			return -1;
		memcpy(out + n, src, len);
		n += len;
	}
	out[n] = '\0';
	return (int)n;
}

void payload_key(char *topic)
{
	for (char *p = topic; *p; p++)
		if (*p == '/')
			*p = '.';
}
