#include "failover.h"

#include <stdio.h>

void failover_init(struct failover *f, size_t n, enum failover_order order)
{
	f->n = n > 0 ? n : 1;
	f->order = order;
	f->cur = 0;
	f->failed = 0;
	f->returning = false;
	f->retry_scale = 1;
}

bool failover_failed(struct failover *f, bool lost, bool stable)
{
	if (f->returning && f->retry_scale < FAILOVER_RETRY_MAX_S)
		f->retry_scale *= 2;
	f->returning = false;
	if (lost && stable)
		f->failed = 0;
	f->failed++;
	if (f->failed >= f->n) {
		f->failed = 0;
		f->cur = f->order == FAILOVER_PRIMARY ? 0 : (f->cur + 1) % f->n;
		return true;
	}
	f->cur = (f->cur + 1) % f->n;
	return false;
}

bool failover_on_standby(const struct failover *f)
{
	return f->order == FAILOVER_PRIMARY && f->cur != 0;
}

void failover_to_primary(struct failover *f)
{
	f->cur = 0;
	f->failed = 0;
	f->returning = true;
}

void failover_connected(struct failover *f)
{
	if (f->cur == 0)
		f->retry_scale = 1;
	f->returning = false;
}

uint64_t failover_retry_ms(const struct failover *f, int primary_retry_s)
{
	uint64_t s = (uint64_t)primary_retry_s * f->retry_scale;

	return (s < FAILOVER_RETRY_MAX_S ? s : FAILOVER_RETRY_MAX_S) * 1000u;
}

const char *failover_where(const struct failover *f, char *buf, size_t size, const char *pre,
                           const char *post)
{
	if (f->n > 1)
		snprintf(buf, size, "%saddress %zu of %zu%s", pre, f->cur + 1, f->n, post);
	else if (size > 0)
		buf[0] = '\0';
	return buf;
}
