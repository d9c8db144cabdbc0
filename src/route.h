/*
 * route: where one MQTT message goes.  The forwarding path and --route both
 * ask here, so that what the operator is shown is what the bridge does.
 *
 * A message gets one copy per rule that applies, in rule order; a drop rule
 * (or bridge.unmatched = "drop" when none matches) ends it.  Each copy has
 * an exchange, a routing key and properties, computed on demand.
 */
#ifndef BRIDGE_ROUTE_H
#define BRIDGE_ROUTE_H

#include <stdbool.h>
#include <stddef.h>

#include <mosquitto.h>

#include "config.h"
#include "props.h"
#include "rules.h"
#include "topic.h"

enum route_end {
	ROUTE_COPIES = 0,           /* the copies are all there is */
	ROUTE_DROP_RULE,            /* a drop rule ends the message after the copies */
	ROUTE_DROP_UNMATCHED,       /* no rule matches and bridge.unmatched is "drop" */
};

struct route {
	const struct rule **match;  /* scratch for rules_match() */
	size_t match_cap;
	size_t n;                   /* copies of the message routed last */
	enum route_end end;
	const struct rule *drop;    /* the drop rule (ROUTE_DROP_RULE) */
	bool unmatched;             /* no rule matched: one copy by the default translation */
};

/* Where one copy goes. */
struct route_copy {
	const struct rule *rule;    /* NULL: the default translation to amqp.exchange */
	const char *exchange;
	size_t exchange_len;
};

void route_init(struct route *r);
void route_fini(struct route *r);
/* Makes the scratch fit `rs`.  Returns 0, or -1 when memory ran out (nothing changed). */
int route_reserve(struct route *r, const struct rules *rs);

/* Routes a message on `topic` (`tlen` bytes); sets r->n, r->end, r->drop. */
void route_message(struct route *r, const struct bridge_config *cfg, const char *topic,
                   size_t tlen);

/* Copy `i` (< r->n) of the message routed last. */
void route_copy(const struct route *r, const struct bridge_config *cfg, size_t i,
                struct route_copy *c);

/*
 * The copy's routing key; `key` holds TOPIC_KEY_MAX + 1 bytes.  As
 * rules_key(): TOPIC_OK, TOPIC_ERR_TOO_LONG (the key is still written, for
 * the dead-letter headers) or why the topic gives none.
 */
enum topic_result route_key(const struct route_copy *c, const struct bridge_settings *bs,
                            const char *topic, size_t tlen, char *key, size_t *klen);

/* What props_build() needs for the copy of `msg` (topic `tlen` bytes). */
void route_props_input(struct props_input *in, const struct bridge_settings *bs,
                       const struct route_copy *c, const struct mosquitto_message *msg,
                       size_t tlen, const mosquitto_property *mprops, bool dup);

#endif
