#include "route.h"

#include <stdlib.h>
#include <string.h>

void route_init(struct route *r)
{
	memset(r, 0, sizeof(*r));
}

void route_fini(struct route *r)
{
	free(r->match);
	memset(r, 0, sizeof(*r));
}

int route_reserve(struct route *r, const struct rules *rs)
{
	size_t need = rules_max_matches(rs) + 1;
	const struct rule **m;

	if (need <= r->match_cap)
		return 0;
	m = realloc(r->match, need * sizeof(*m));
	if (!m)
		return -1;
	r->match = m;
	r->match_cap = need;
	return 0;
}

void route_message(struct route *r, const struct bridge_config *cfg, const char *topic,
                   size_t tlen)
{
	size_t n = rules_match(cfg->rules, topic, tlen, r->match, r->match_cap);

	r->drop = NULL;
	r->unmatched = n == 0;
	if (n == 0) {
		r->end = cfg->bridge.unmatched == UNMATCHED_DROP ? ROUTE_DROP_UNMATCHED : ROUTE_COPIES;
		r->n = r->end == ROUTE_COPIES ? 1 : 0;
		return;
	}
	r->end = ROUTE_COPIES;
	for (size_t i = 0; i < n; i++) {
		if (r->match[i]->drop) {
			r->drop = r->match[i];
			r->end = ROUTE_DROP_RULE;
			n = i;
			break;
		}
	}
	r->n = n;
}

void route_copy(const struct route *r, const struct bridge_config *cfg, size_t i,
                struct route_copy *c)
{
	const struct rule *rule = r->unmatched ? NULL : r->match[i];

	c->rule = rule;
	if (rule && rule->exchange) {
		c->exchange = rule->exchange;
		c->exchange_len = rule->exchange_len;
	} else {
		c->exchange = cfg->amqp.exchange;
		c->exchange_len = strlen(cfg->amqp.exchange);
	}
}

enum topic_result route_key(const struct route_copy *c, const struct bridge_settings *bs,
                            const char *topic, size_t tlen, char *key, size_t *klen)
{
	return rules_key(c->rule, topic, tlen, bs->dot_replacement, key, klen);
}

void route_props_input(struct props_input *in, const struct bridge_settings *bs,
                       const struct route_copy *c, const struct mosquitto_message *msg,
                       size_t tlen, const mosquitto_property *mprops, bool dup)
{
	const struct rule *r = c->rule;

	*in = (struct props_input){
		.mqtt = mprops,
		.qos = msg->qos,
		.retain = msg->retain,
		.dup = dup,
		.plugin = props_plugin_of(bs->plugin_headers),
		.topic = msg->topic,
		.topic_len = tlen,
		.persistent = r ? r->persistent : RULE_PERSIST_QOS,
		.headers = r ? r->headers : NULL,
		.n_headers = r ? r->n_headers : 0,
		.topic_header = bs->topic_header,
		.retain_header = bs->retain_header,
		.dot_replacement = bs->dot_replacement,
	};
}
