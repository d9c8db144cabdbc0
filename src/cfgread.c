#include "cfgread.h"

#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "endpoint.h"
#include "topic.h"

/* AMQP field-table keys are short strings. */
#define FIELD_NAME_MAX 255

/*
 * A setting's name as messages give it: "'mqtt.port'" in a group, "'exchange'"
 * after "rule 3: " in an element.  `pre` is that prefix ("" in a group).
 */
struct shown {
	const char *pre;
	const char *name;
};

static bool in_choices(const char *const *choices, const char *value, size_t *index)
{
	for (size_t i = 0; choices[i] != NULL; i++) {
		if (strcmp(choices[i], value) == 0) {
			*index = i;
			return true;
		}
	}
	return false;
}

static void bad_choice(struct loader *ld, const struct setting *r, const config_setting_t *s,
                       struct shown sh, const char *v)
{
	char list[128];
	size_t used = 0;

	if (r->expect != NULL) {
		load_error(ld, s, "%s'%s' must be %s (not \"%s\")", sh.pre, sh.name, r->expect, v);
		return;
	}
	list[0] = '\0';
	for (size_t i = 0; r->choices[i] != NULL && used < sizeof(list); i++)
		used += (size_t)snprintf(list + used, sizeof(list) - used, "%s%s", i ? ", " : "",
		                         r->choices[i]);
	load_error(ld, s, "%s'%s' must be one of %s (not \"%s\")", sh.pre, sh.name, list, v);
}

/*
 * The integer setting `s` as written in the file.  Returns INT_EXACT with
 * *v set; INT_BEYOND when the literal lies outside int64_t (lit->text then
 * holds it); INT_NONE when `s` is not an integer at all.
 */
enum int_read { INT_EXACT, INT_BEYOND, INT_NONE };

static enum int_read read_int(struct loader *ld, const config_setting_t *s, int64_t *v,
                              struct cfgint *lit)
{
	int64_t stored;

	switch (config_setting_type(s)) {
	case CONFIG_TYPE_INT:
		stored = config_setting_get_int(s);
		break;
	case CONFIG_TYPE_INT64:
		stored = config_setting_get_int64(s);
		break;
	default:
		return INT_NONE;
	}
	*v = stored;
	if (cfgsrc_number(&ld->src, config_setting_source_file(s), config_setting_name(s),
	                  config_setting_source_line(s), stored, lit)
	    && !cfgint_value(lit, v))
		return INT_BEYOND;
	return INT_EXACT;
}

static bool load_number(struct loader *ld, const struct setting *r, const config_setting_t *s,
                        struct shown sh, void *slot)
{
	struct cfgint lit;
	enum int_read got;
	int64_t v = 0;

	got = read_int(ld, s, &v, &lit);
	if (got == INT_NONE) {
		load_error(ld, s, "%s'%s' must be an integer", sh.pre, sh.name);
		return false;
	}
	if (got == INT_BEYOND) {
		load_error(ld, s, "%s'%s' must be between %" PRId64 " and %" PRId64 " (not %s)", sh.pre,
		           sh.name, r->min, r->max, lit.text);
		return false;
	}
	if (v < r->min || v > r->max) {
		load_error(ld, s, "%s'%s' must be between %" PRId64 " and %" PRId64 " (not %" PRId64 ")",
		           sh.pre, sh.name, r->min, r->max, v);
		return false;
	}
	if (r->kind == SK_INT64)
		*(int64_t *)slot = v;
	else
		*(int *)slot = (int)v;
	return true;
}

static bool load_string(struct loader *ld, const struct setting *r, const config_setting_t *s,
                        struct shown sh, void *slot, bool borrow)
{
	const char *v, *why;
	size_t len, index;

	if (config_setting_type(s) != CONFIG_TYPE_STRING) {
		load_error(ld, s, "%s'%s' must be a string (in double quotes)", sh.pre, sh.name);
		return false;
	}
	v = config_setting_get_string(s);
	len = strlen(v);
	if (len == 0 && (r->flags & SF_NONEMPTY)) {
		load_error(ld, s, "%s'%s' must not be empty", sh.pre, sh.name);
		return false;
	}
	if (r->max > 0 && len > (size_t)r->max) {
		load_error(ld, s, "%s'%s' must be at most %" PRId64 " bytes long (it has %zu)", sh.pre,
		           sh.name, r->max, len);
		return false;
	}
	if (r->choices != NULL && !in_choices(r->choices, v, &index)) {
		bad_choice(ld, r, s, sh, v);
		return false;
	}
	if (r->rule != NULL && (why = r->rule(v)) != NULL) {
		load_error(ld, s, "%s'%s' %s", sh.pre, sh.name, why);
		return false;
	}
	if (borrow)
		*(const char **)slot = v;
	else
		load_string_into(ld, slot, v);
	return true;
}

static bool load_choice(struct loader *ld, const struct setting *r, const config_setting_t *s,
                        struct shown sh, void *slot)
{
	const char *v;
	size_t index;

	if (config_setting_type(s) != CONFIG_TYPE_STRING) {
		if (r->expect != NULL)
			load_error(ld, s, "%s'%s' must be %s (a string, in double quotes)", sh.pre, sh.name,
			           r->expect);
		else
			load_error(ld, s, "%s'%s' must be a string (in double quotes)", sh.pre, sh.name);
		return false;
	}
	v = config_setting_get_string(s);
	if (!in_choices(r->choices, v, &index)) {
		bad_choice(ld, r, s, sh, v);
		return false;
	}
	*(int *)slot = r->values != NULL ? r->values[index] : (int)index;
	return true;
}

/*
 * The length of `s`, a non-empty list; -1 after reporting that it is no
 * list ("must be a list of `kinds`") or is empty ("must name at least one
 * `one`").
 */
static int list_length(struct loader *ld, const config_setting_t *s, struct shown sh,
                       const char *kinds, const char *one)
{
	int type = config_setting_type(s);

	if (type != CONFIG_TYPE_ARRAY && type != CONFIG_TYPE_LIST) {
		load_error(ld, s, "%s'%s' must be a list of %s", sh.pre, sh.name, kinds);
		return -1;
	}
	if (config_setting_length(s) == 0) {
		load_error(ld, s, "%s'%s' must name at least one %s", sh.pre, sh.name, one);
		return -1;
	}
	return config_setting_length(s);
}

/* Element `i` of the list `s`, when it is a string; NULL after reporting that it is not. */
static const char *list_string(struct loader *ld, const config_setting_t *s, struct shown sh,
                               int i)
{
	const config_setting_t *e = config_setting_get_elem(s, (unsigned)i);

	if (config_setting_type(e) != CONFIG_TYPE_STRING) {
		load_error(ld, e, "%s'%s[%d]' must be a string (in double quotes)", sh.pre, sh.name, i);
		return NULL;
	}
	return config_setting_get_string(e);
}

static bool load_filters(struct loader *ld, const struct setting *r, const config_setting_t *s,
                         struct shown sh, void *base)
{
	int n = list_length(ld, s, sh, "topic filters, e.g. [\"sensors/#\"]", "topic filter");
	char **vec;
	size_t count = 0;
	bool ok = true;

	if (n < 0)
		return false;
	for (int i = 0; i < n; i++) {
		const config_setting_t *e = config_setting_get_elem(s, (unsigned)i);
		enum topic_result res;

		if (list_string(ld, s, sh, i) == NULL) {
			ok = false;
			continue;
		}
		res = topic_filter_check(config_setting_get_string(e));
		if (res != TOPIC_OK) {
			load_error(ld, e, "%s'%s[%d]' is not a valid MQTT topic filter (\"%.200s\": %s)",
			           sh.pre, sh.name, i, config_setting_get_string(e), topic_strerror(res));
			ok = false;
		}
	}
	if (!ok)
		return false;
	vec = calloc((size_t)n, sizeof(*vec));
	if (vec == NULL) {
		load_oom(ld);
		return false;
	}
	for (; count < (size_t)n; count++) {
		vec[count] = strdup(config_setting_get_string(config_setting_get_elem(s, (unsigned)count)));
		if (vec[count] == NULL) {
			while (count > 0)
				free(vec[--count]);
			free(vec);
			load_oom(ld);
			return false;
		}
	}
	*(char ***)schema_at(base, r->off) = vec;
	*(size_t *)schema_at(base, r->off_count) = count;
	return true;
}

/*
 * Reads a list of brokers, "host" or "host:port", in the file's order; an
 * entry without a port keeps 0 until config_load() gives it the side's
 * `port` (and checks for repeats).  Returns false after reporting every
 * bad entry.
 */
static bool load_hosts(struct loader *ld, const struct setting *r, const config_setting_t *s,
                       struct shown sh, void *base)
{
	int n = list_length(ld, s, sh, "brokers, e.g. [\"broker1:port\", \"broker2\"]", "broker");
	struct endpoint *vec;
	bool ok = true;

	if (n < 0)
		return false;
	vec = calloc((size_t)n, sizeof(*vec));
	if (vec == NULL) {
		load_oom(ld);
		return false;
	}
	for (int i = 0; i < n; i++) {
		const config_setting_t *e = config_setting_get_elem(s, (unsigned)i);
		const char *text = list_string(ld, s, sh, i);
		char host[ENDPOINT_HOST_MAX + 1];
		const char *why, *file;
		unsigned line;

		if (text == NULL) {
			ok = false;
			continue;
		}
		why = endpoint_parse(text, host, &vec[i].port);
		if (why != NULL) {
			load_error(ld, e, "%s'%s[%d]' (\"%.300s\") %s", sh.pre, sh.name, i,
			           text, why);
			ok = false;
			continue;
		}
		load_where(ld, e, &file, &line);
		vec[i].line = (int)line;
		vec[i].host = strdup(host);
		if (vec[i].host == NULL) {
			load_oom(ld);
			ok = false;
		}
	}
	if (!ok) {
		endpoint_free(vec, (size_t)n);
		return false;
	}
	*(struct endpoint **)schema_at(base, r->off) = vec;
	*(size_t *)schema_at(base, r->off_count) = (size_t)n;
	*(bool *)schema_at(base, r->off_given) = true;
	return true;
}

static void free_fields(struct rules_field *vec, size_t n)
{
	for (size_t i = 0; i < n; i++) {
		free(vec[i].name);
		free(vec[i].s);
	}
	free(vec);
}

/*
 * Reads the group `s` into a fresh array of named values: strings,
 * integers (64 bits, as written) or booleans, with names of at most 255
 * bytes.  Returns false after reporting every bad value.
 */
static bool load_fields(struct loader *ld, const struct setting *r, const config_setting_t *s,
                        struct shown sh, void *base)
{
	struct rules_field *vec;
	size_t count = 0;
	bool ok = true;
	int n;

	if (config_setting_type(s) != CONFIG_TYPE_GROUP) {
		load_error(ld, s, "%s'%s' must be a group: %s = { name = value; ... };", sh.pre, sh.name,
		           sh.name);
		return false;
	}
	n = config_setting_length(s);
	if (n == 0)
		return true;
	vec = calloc((size_t)n, sizeof(*vec));
	if (vec == NULL) {
		load_oom(ld);
		return false;
	}
	for (int i = 0; i < n; i++) {
		const config_setting_t *e = config_setting_get_elem(s, (unsigned)i);
		const char *name = config_setting_name(e);
		struct rules_field *f = &vec[count];
		struct cfgint lit;

		if (strlen(name) > FIELD_NAME_MAX) {
			load_error(ld, e, "%sthe name of %s '%.32s...' must be at most %d bytes long "
			           "(it has %zu)", sh.pre, r->label, name, FIELD_NAME_MAX, strlen(name));
			ok = false;
			continue;
		}
		switch (config_setting_type(e)) {
		case CONFIG_TYPE_STRING:
			f->kind = RV_STRING;
			f->s = strdup(config_setting_get_string(e));
			if (f->s == NULL) {
				load_oom(ld);
				ok = false;
				continue;
			}
			break;
		case CONFIG_TYPE_INT:
		case CONFIG_TYPE_INT64:
			f->kind = RV_INT;
			if (read_int(ld, e, &f->i, &lit) != INT_EXACT) {
				load_error(ld, e, "%s%s '%s' must be between %" PRId64 " and %" PRId64
				           " (not %s)", sh.pre, r->label, name, INT64_MIN, INT64_MAX, lit.text);
				ok = false;
				continue;
			}
			break;
		case CONFIG_TYPE_BOOL:
			f->kind = RV_BOOL;
			f->b = config_setting_get_bool(e) != 0;
			break;
		default:
			load_error(ld, e, "%s%s '%s' must be a string, an integer, true or false", sh.pre,
			           r->label, name);
			ok = false;
			continue;
		}
		f->name = strdup(name);
		count++;
		if (f->name == NULL) {
			load_oom(ld);
			ok = false;
		}
	}
	if (!ok) {
		free_fields(vec, count);
		return false;
	}
	*(struct rules_field **)schema_at(base, r->off) = vec;
	*(size_t *)schema_at(base, r->off_count) = count;
	return true;
}

bool cfgread_value(struct loader *ld, const struct section *sec, const struct setting *r,
                   const config_setting_t *s, const char *pre, const char *name, void *base)
{
	struct shown sh = { pre, name };
	void *slot = schema_at(base, r->off);

	switch (r->kind) {
	case SK_STRING:
		return load_string(ld, r, s, sh, slot, sec->borrow);
	case SK_INT:
	case SK_INT64:
		return load_number(ld, r, s, sh, slot);
	case SK_BOOL:
	case SK_PERSIST:
		if (config_setting_type(s) != CONFIG_TYPE_BOOL) {
			load_error(ld, s, "%s'%s' must be true or false", sh.pre, sh.name);
			return false;
		}
		if (r->kind == SK_BOOL)
			*(bool *)slot = config_setting_get_bool(s) != 0;
		else
			*(enum rule_persist *)slot = config_setting_get_bool(s) ? RULE_PERSIST_YES
			                                                        : RULE_PERSIST_NO;
		return true;
	case SK_CHOICE:
		return load_choice(ld, r, s, sh, slot);
	case SK_FILTERS:
		return load_filters(ld, r, s, sh, base);
	case SK_FIELDS:
		return load_fields(ld, r, s, sh, base);
	case SK_HOSTS:
		return load_hosts(ld, r, s, sh, base);
	}
	return false;
}

void cfgread_defaults(struct loader *ld, const struct section *sec, void *base)
{
	for (size_t i = 0; i < sec->n; i++) {
		const struct setting *r = &sec->rows[i];
		void *slot = schema_at(base, r->off);

		switch (r->kind) {
		case SK_STRING:
			/* A borrowing list has no string defaults: nothing would own the copy. */
			if (r->def_str != NULL && !sec->borrow)
				load_string_into(ld, slot, r->def_str);
			break;
		case SK_INT:
		case SK_CHOICE:
			*(int *)slot = (int)r->def;
			break;
		case SK_INT64:
			*(int64_t *)slot = r->def;
			break;
		case SK_BOOL:
			*(bool *)slot = r->def != 0;
			break;
		case SK_PERSIST:
			*(enum rule_persist *)slot = RULE_PERSIST_QOS;
			break;
		case SK_FILTERS:
		case SK_FIELDS:
		case SK_HOSTS:
			break;
		}
	}
}
