/*
 * scrape: what GET /metrics answers, in the Prometheus text format
 * (expo.h).  The bridge hands over a view of its parts; nothing here
 * changes them.  Allocates only the text, at scrape time.
 */
#ifndef BRIDGE_SCRAPE_H
#define BRIDGE_SCRAPE_H

#include <stdbool.h>
#include <stdint.h>

#include "alink.h"
#include "dlink.h"
#include "expo.h"
#include "gate.h"
#include "mlink.h"
#include "stats.h"

struct scrape_view {
	const struct stats *stats;
	const struct gate *gate;
	const struct mlink *mqtt;
	const struct alink *amqp;
	const struct dlink *dl;
	bool ready;                 /* what /readyz says */
	uint64_t inflight_max;      /* mqtt.inflight_max in force */
};

void scrape_write(const struct scrape_view *v, struct expo *e);

#endif
