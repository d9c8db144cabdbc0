#include "cfgval.h"

#include <inttypes.h>
#include <stdlib.h>
#include <string.h>

/* Freeing */

void cfgval_free(const struct section *sec, void *base)
{
	for (size_t i = 0; i < sec->n; i++) {
		const struct setting *r = &sec->rows[i];
		void *slot = schema_at(base, r->off);

		switch (r->kind) {
		case SK_STRING:
			if (!sec->borrow)
				free(*(char **)slot);
			*(char **)slot = NULL;
			break;
		case SK_FILTERS: {
			char **vec = *(char ***)slot;
			size_t n = *(size_t *)schema_at(base, r->off_count);

			for (size_t j = 0; j < n; j++)
				free(vec[j]);
			free(vec);
			*(char ***)slot = NULL;
			*(size_t *)schema_at(base, r->off_count) = 0;
			break;
		}
		case SK_FIELDS: {
			struct rules_field *vec = *(struct rules_field **)slot;
			size_t n = *(size_t *)schema_at(base, r->off_count);

			for (size_t j = 0; j < n; j++) {
				free(vec[j].name);
				free(vec[j].s);
			}
			free(vec);
			*(struct rules_field **)slot = NULL;
			*(size_t *)schema_at(base, r->off_count) = 0;
			break;
		}
		case SK_HOSTS:
			endpoint_free(*(struct endpoint **)slot, *(size_t *)schema_at(base, r->off_count));
			*(struct endpoint **)slot = NULL;
			*(size_t *)schema_at(base, r->off_count) = 0;
			break;
		case SK_INT:
		case SK_INT64:
		case SK_BOOL:
		case SK_CHOICE:
		case SK_PERSIST:
			break;
		}
	}
}

void cfgval_free_list(const struct section *sec, void *vec, size_t n)
{
	for (size_t i = 0; i < n && vec != NULL; i++)
		cfgval_free(sec, (char *)vec + i * sec->size);
	free(vec);
}

/* Printing */

void cfgval_print_quoted(FILE *out, const char *s)
{
	fputc('"', out);
	for (; *s != '\0'; s++) {
		unsigned char c = (unsigned char)*s;

		if (c == '"' || c == '\\')
			fprintf(out, "\\%c", c);
		else if (c < 0x20 || c == 0x7f)
			fprintf(out, "\\x%02x", c);
		else
			fputc(c, out);
	}
	fputc('"', out);
}

static void print_fields(FILE *out, const struct rules_field *vec, size_t n)
{
	fputs("{ ", out);
	for (size_t i = 0; i < n; i++) {
		fprintf(out, "%s = ", vec[i].name);
		switch (vec[i].kind) {
		case RV_STRING:
			cfgval_print_quoted(out, vec[i].s);
			break;
		case RV_INT:
			fprintf(out, "%" PRId64, vec[i].i);
			break;
		case RV_BOOL:
			fputs(vec[i].b ? "true" : "false", out);
			break;
		}
		fputs("; ", out);
	}
	fputc('}', out);
}

/* The name of the choice stored as `v`, or "?". */
static const char *choice_name(const struct setting *r, int v)
{
	for (size_t i = 0; r->choices[i] != NULL; i++)
		if ((r->values != NULL ? r->values[i] : (int)i) == v)
			return r->choices[i];
	return "?";
}

static void print_value(const struct setting *r, const void *base, FILE *out)
{
	const void *slot = schema_cat(base, r->off);

	switch (r->kind) {
	case SK_STRING: {
		const char *v = *(const char *const *)slot;

		if (v == NULL)
			fputs("(unset)", out);
		else if (r->flags & SF_SECRET)
			fputs("(set)", out);
		else
			cfgval_print_quoted(out, v);
		break;
	}
	case SK_INT:
		fprintf(out, "%d", *(const int *)slot);
		break;
	case SK_INT64:
		fprintf(out, "%" PRId64, *(const int64_t *)slot);
		break;
	case SK_BOOL:
		fputs(*(const bool *)slot ? "true" : "false", out);
		break;
	case SK_CHOICE:
		cfgval_print_quoted(out, choice_name(r, *(const int *)slot));
		break;
	case SK_PERSIST: {
		enum rule_persist p = *(const enum rule_persist *)slot;

		fputs(p == RULE_PERSIST_YES ? "true" : p == RULE_PERSIST_NO ? "false" : "(from the QoS)",
		      out);
		break;
	}
	case SK_FILTERS: {
		char *const *vec = *(char **const *)slot;
		size_t n = *(const size_t *)schema_cat(base, r->off_count);

		fputc('[', out);
		for (size_t j = 0; j < n; j++) {
			if (j > 0)
				fputs(", ", out);
			cfgval_print_quoted(out, vec[j]);
		}
		fputc(']', out);
		break;
	}
	case SK_FIELDS:
		print_fields(out, *(struct rules_field *const *)slot,
		             *(const size_t *)schema_cat(base, r->off_count));
		break;
	case SK_HOSTS: {
		const struct endpoint *vec = *(struct endpoint *const *)slot;
		size_t n = *(const size_t *)schema_cat(base, r->off_count);

		fputc('[', out);
		for (size_t j = 0; j < n; j++) {
			if (j > 0)
				fputs(", ", out);
			cfgval_print_quoted(out, vec[j].name != NULL ? vec[j].name : vec[j].host);
		}
		fputc(']', out);
		break;
	}
	}
}

void cfgval_print_group(const struct bridge_config *cfg, enum section_id g, FILE *out)
{
	const struct section *sec = &schema[g];
	const void *base = schema_cat(cfg, sec->base);

	for (size_t i = 0; i < sec->n; i++) {
		const struct setting *r = &sec->rows[i];

		fprintf(out, "%s.%s = ", sec->name, r->name);
		if ((r->flags & SF_MQTT5) && cfg->mqtt.protocol != MQTT_PROTOCOL_5) {
			fputs("(MQTT 5 only)\n", out);
			continue;
		}
		print_value(r, base, out);
		if (r->kind == SK_FILTERS)
			fprintf(out, "\n# %s.%s: %s", sec->name, r->name,
			        *(const bool *)schema_cat(base, r->off_given)
			                ? "as the file gives it" : "not set; the filters of the rules");
		if (r->kind == SK_HOSTS)
			fprintf(out, "\n# %s.%s: %s", sec->name, r->name,
			        *(const bool *)schema_cat(base, r->off_given)
			                ? "as the file gives it, tried in hosts_order"
			                : "not set; the one broker of host and port");
		fputc('\n', out);
	}
}

void cfgval_print_list(const struct bridge_config *cfg, const struct section *sec, FILE *out)
{
	const char *vec = *(const void *const *)schema_cat(cfg, sec->off_vec);
	size_t n = *(const size_t *)schema_cat(cfg, sec->off_n);

	for (size_t i = 0; i < n; i++) {
		const char *obj = vec + i * sec->size;

		fprintf(out, "%s %zu (line %d):", sec->what, i + 1,
		        *(const int *)schema_cat(obj, sec->off_line));
		for (size_t k = 0; k < sec->n; k++) {
			fprintf(out, " %s = ", sec->rows[k].name);
			print_value(&sec->rows[k], obj, out);
			fputc(';', out);
		}
		fputc('\n', out);
	}
}

/* Comparing */

static bool same_string(const char *a, const char *b)
{
	return a == NULL ? b == NULL : b != NULL && strcmp(a, b) == 0;
}

static bool same_fields(const struct rules_field *a, size_t na, const struct rules_field *b,
                        size_t nb)
{
	if (na != nb)
		return false;
	for (size_t i = 0; i < na; i++) {
		if (strcmp(a[i].name, b[i].name) != 0 || a[i].kind != b[i].kind)
			return false;
		if ((a[i].kind == RV_STRING && strcmp(a[i].s, b[i].s) != 0)
		    || (a[i].kind == RV_INT && a[i].i != b[i].i)
		    || (a[i].kind == RV_BOOL && a[i].b != b[i].b))
			return false;
	}
	return true;
}

static int str_cmp(const void *a, const void *b)
{
	return strcmp(*(char *const *)a, *(char *const *)b);
}

/*
 * A sorted copy of the `n` strings of `v` without repeats (*n_out of
 * them), or NULL when memory ran out.  Sorted, as a reload compares in the
 * event loop and lists may be long.
 */
static char **sorted_set(char *const *v, size_t n, size_t *n_out)
{
	char **copy = malloc((n > 0 ? n : 1) * sizeof(*copy));
	size_t k = 0;

	if (copy == NULL)
		return NULL;
	if (n > 0) {
		memcpy(copy, v, n * sizeof(*copy));
		qsort(copy, n, sizeof(*copy), str_cmp);
	}
	for (size_t i = 0; i < n; i++)
		if (k == 0 || strcmp(copy[k - 1], copy[i]) != 0)
			copy[k++] = copy[i];
	*n_out = k;
	return copy;
}

bool cfgval_same_set(char *const *a, size_t na, char *const *b, size_t nb)
{
	size_t ka, kb;
	char **sa = sorted_set(a, na, &ka), **sb = sorted_set(b, nb, &kb);
	bool same = sa != NULL && sb != NULL && ka == kb;

	for (size_t i = 0; same && i < ka; i++)
		same = strcmp(sa[i], sb[i]) == 0;
	free(sa);
	free(sb);
	return same;
}

/* Whether row `r` holds the same in `a` and `b`, at its compiled offsets when `kept`. */
static bool same_value(const struct setting *r, const void *a, const void *b, bool kept)
{
	size_t off = kept ? r->off_kept : r->off;
	size_t off_count = kept ? r->off_count_kept : r->off_count;
	const void *pa = schema_cat(a, off), *pb = schema_cat(b, off);

	switch (r->kind) {
	case SK_STRING:
		return same_string(*(const char *const *)pa, *(const char *const *)pb);
	case SK_INT:
	case SK_CHOICE:
		return *(const int *)pa == *(const int *)pb;
	case SK_INT64:
		return *(const int64_t *)pa == *(const int64_t *)pb;
	case SK_BOOL:
		return *(const bool *)pa == *(const bool *)pb;
	case SK_PERSIST:
		return *(const enum rule_persist *)pa == *(const enum rule_persist *)pb;
	case SK_FILTERS:
		return cfgval_same_set(*(char **const *)pa, *(const size_t *)schema_cat(a, off_count),
		                       *(char **const *)pb, *(const size_t *)schema_cat(b, off_count));
	case SK_FIELDS:
		return same_fields(*(struct rules_field *const *)pa,
		                   *(const size_t *)schema_cat(a, off_count),
		                   *(struct rules_field *const *)pb,
		                   *(const size_t *)schema_cat(b, off_count));
	case SK_HOSTS:
		return endpoint_lists_same(*(struct endpoint *const *)pa, *(const size_t *)schema_cat(a, off_count),
		                  *(struct endpoint *const *)pb, *(const size_t *)schema_cat(b, off_count));
	}
	return true;
}

bool cfgval_same_element(const struct section *sec, const void *a, const void *b, bool kept)
{
	if (sec->kept_line && *(const int *)schema_cat(a, kept ? sec->off_line_kept : sec->off_line)
	                      != *(const int *)schema_cat(b, kept ? sec->off_line_kept : sec->off_line))
		return false;
	for (size_t k = 0; k < sec->n; k++)
		if (!same_value(&sec->rows[k], a, b, kept))
			return false;
	return true;
}

unsigned cfgval_diff_group(const struct bridge_config *a, const struct bridge_config *b,
                           enum section_id g)
{
	const struct section *sec = &schema[g];
	const void *ba = schema_cat(a, sec->base), *bb = schema_cat(b, sec->base);
	unsigned diff = 0;

	for (size_t i = 0; i < sec->n; i++) {
		/* `host` is compared as the list it becomes (`hosts`): the same broker either way. */
		if (sec->rows[i].instead != NULL)
			continue;
		if (!same_value(&sec->rows[i], ba, bb, false))
			diff |= sec->rows[i].reload != 0 ? sec->rows[i].reload : sec->reload;
	}
	return diff;
}
