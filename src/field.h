/*
 * field: a named value, as a rule's static header or a declaration's
 * argument holds it.
 */
#ifndef BRIDGE_FIELD_H
#define BRIDGE_FIELD_H

#include <stdbool.h>
#include <stdint.h>
#include <string.h>

enum rules_value_kind { RV_STRING, RV_INT, RV_BOOL };

struct rules_field {
	char *name;
	enum rules_value_kind kind;
	char *s;                    /* RV_STRING */
	int64_t i;                  /* RV_INT */
	bool b;                     /* RV_BOOL */
};

/* How a rule's copies are published: by QoS, or as the rule says. */
enum rule_persist {
	RULE_PERSIST_QOS = 0,       /* QoS 0 transient, QoS 1 persistent */
	RULE_PERSIST_YES,
	RULE_PERSIST_NO,
};

/*
 * Whether RabbitMQ reads a header of this name as a list of further routing
 * keys ("CC" and "BCC", sender-selected distribution): it closes the
 * channel over a message whose CC or BCC is not an array, so a rule may not
 * set one and a user property of either name is left out.
 */
static inline bool field_is_route_header(const char *name)
{
	return strcmp(name, "CC") == 0 || strcmp(name, "BCC") == 0;
}

#endif
