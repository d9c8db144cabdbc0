/*
 * field: a named value, as a rule's static header or a declaration's
 * argument holds it.
 */
#ifndef BRIDGE_FIELD_H
#define BRIDGE_FIELD_H

#include <stdbool.h>
#include <stdint.h>

enum rules_value_kind { RV_STRING, RV_INT, RV_BOOL };

struct rules_field {
	char *name;
	enum rules_value_kind kind;
	char *s;                    /* RV_STRING */
	int64_t i;                  /* RV_INT */
	bool b;                     /* RV_BOOL */
};

#endif
