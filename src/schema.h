/*
 * schema: every setting the configuration accepts, declared once.
 *
 * A setting is a row: its name, its kind, flags, where its value lives,
 * its range or length, its default, the values it accepts, how it relates
 * to another setting, and what a change of it means to a running bridge.
 * Rows come in sections: the groups mqtt, amqp and bridge, and the lists
 * of groups rules, topology.exchanges, topology.queues,
 * topology.bindings and downlink, whose rows describe one element.  Loading, the
 * defaults, the checks, -t, the reload diff, config_free() and the
 * documentation test are walks over these rows.
 */
#ifndef BRIDGE_SCHEMA_H
#define BRIDGE_SCHEMA_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "config.h"

enum schema_kind {
	SK_STRING,      /* char *; in a borrowing list, const char * into the libconfig tree */
	SK_INT,         /* int */
	SK_INT64,       /* int64_t */
	SK_BOOL,        /* bool */
	SK_CHOICE,      /* one of `choices`, written as a string, stored as an int (or an enum) */
	SK_PERSIST,     /* true or false, stored as enum rule_persist; unset: from the QoS */
	SK_FILTERS,     /* a list of MQTT topic filters: char **, the count at off_count */
	SK_FIELDS,      /* a group of named strings, integers and booleans: struct rules_field *,
	                   the count at off_count */
	SK_HOSTS,       /* a list of "host" or "host:port": struct endpoint *, the count at
	                   off_count; off_given: a bool set when the file gives the list */
};

#define SF_REQUIRED   0x1u
#define SF_NONEMPTY   0x2u
#define SF_SECRET     0x4u   /* -t shows only whether it is set; the side's password */
#define SF_MQTT5      0x8u   /* only with mqtt.protocol = "5"; -t says so otherwise */
#define SF_TLS        0x10u  /* only with the group's tls = true */
#define SF_FILE       0x20u  /* names a file that must be readable at load */
#define SF_DIR        0x40u  /* names a directory that must be readable at load */
#define SF_PRIVATE    0x80u  /* names a private key file: a warning when every user may read it */
#define SF_PASS_FILE  0x100u /* the side's password is the first line of the file it names */
#define SF_PASS_CRED  0x200u /* the side's password is the systemd credential it names */
#define SF_INSECURE   0x400u /* true turns verification off: a warning */
#define SF_CA         0x800u /* names the certificate authorities that verify the broker */

/*
 * An extra check of a string: NULL when `value` is acceptable, otherwise
 * the end of a sentence that starts with the setting's name.
 */
typedef const char *schema_rule(const char *value);

struct setting {
	const char *name;
	enum schema_kind kind;
	unsigned flags;
	size_t off;                 /* in the section's struct */
	size_t off_count;           /* SK_FILTERS, SK_FIELDS: where the count lives */
	size_t off_kept;            /* where the compiled element keeps it (struct rule for a
	                               rule; the same as `off` elsewhere) */
	size_t off_count_kept;
	size_t off_given;           /* SK_FILTERS, SK_HOSTS: a bool set when the file gives the list */
	int64_t min, max;           /* numbers: the range; strings: at most max bytes (0: any) */
	int64_t def;                /* numbers, SK_BOOL, SK_CHOICE (the stored value): default */
	const char *def_str;        /* SK_STRING: default, NULL for none */
	const char *const *choices; /* SK_STRING, SK_CHOICE: the accepted values, NULL-terminated */
	const int *values;          /* SK_CHOICE: each choice's stored value; NULL: its index */
	const char *expect;         /* SK_CHOICE: how messages name the accepted values; NULL:
	                               "one of a, b" */
	schema_rule *rule;          /* SK_STRING */
	const char *label;          /* SK_FIELDS: what one value is called in messages */
	const char *at_least;       /* numbers: a setting of the section it must not be below */
	const char *differs;        /* strings: a setting of the section it must differ from */
	const char *needs;          /* a setting of the section that must be set with it, unless
	                               that one has a default */
	const char *comes_with;     /* with tls = true: set together with this one or neither */
	const char *instead;        /* a setting of the section that takes this one's place:
	                               the file gives one of the two (SF_REQUIRED: one is
	                               needed), never both */
	const char *tls_default;    /* with tls = true and no CA given: the system's CA store */
	unsigned reload;            /* CFG_DIFF_* a change sets; 0: the section's */
};

enum section_id {
	S_MQTT, S_AMQP, S_BRIDGE,                   /* the groups */
	S_RULES, S_EXCHANGES, S_QUEUES, S_BINDINGS, /* the lists of groups */
	S_DOWNLINK,
	N_SECTIONS
};
#define N_GROUP_SECTIONS (S_BRIDGE + 1)

/* A section has at most this many rows: the loader keeps a bit per row. */
#define SCHEMA_ROWS_MAX 32

struct section {
	const char *name;           /* "mqtt"; a list by its path: "rules", "topology.queues" */
	const struct setting *rows;
	size_t n;
	unsigned reload;            /* the CFG_DIFF_* bit a change sets */
	bool list;                  /* a list of groups, else a group */
	bool required;              /* a group the file must have */
	size_t base;                /* a group: where its struct lives in struct bridge_config */
	/* Lists only: */
	const char *what;           /* an element in messages: "rule", "topology queue" */
	size_t size;                /* of an element's struct */
	size_t off_line;            /* where the element's int line lives */
	bool borrow;                /* strings point into the libconfig tree: rules_compile()
	                               copies what it keeps */
	bool kept_line;             /* the diff compares lines too (the log names rules by line) */
	size_t off_line_kept;       /* the compiled element's int line */
	size_t off_vec, off_n;      /* topology lists: the array and its length in bridge_config */
};

extern const struct section schema[N_SECTIONS];

/* The row of `sec` called `name`, or -1. */
int schema_find(const struct section *sec, const char *name);

/* The value at `off` of `base`. */
static inline void *schema_at(void *base, size_t off)
{
	return (char *)base + off;
}

static inline const void *schema_cat(const void *base, size_t off)
{
	return (const char *)base + off;
}

#endif
