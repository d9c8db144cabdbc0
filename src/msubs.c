#include "msubs.h"

#include <stdlib.h>
#include <string.h>

void msubs_strv_free(char **v, size_t n)
{
	for (size_t i = 0; i < n; i++)
		free(v[i]);
	free(v);
}

char **msubs_strv_dup(char *const *v, size_t n)
{
	char **copy = calloc(n ? n : 1, sizeof(*copy));

	if (!copy)
		return NULL;
	for (size_t i = 0; i < n; i++) {
		copy[i] = strdup(v[i]);
		if (!copy[i]) {
			msubs_strv_free(copy, i);
			return NULL;
		}
	}
	return copy;
}

static bool strv_has(char *const *v, size_t n, const char *s)
{
	for (size_t i = 0; i < n; i++)
		if (strcmp(v[i], s) == 0)
			return true;
	return false;
}

/* Removes every entry of `v` that `drop` holds; keeps the order of the rest. */
static void strv_remove(char **v, size_t *n, char *const *drop, size_t n_drop)
{
	size_t k = 0;

	for (size_t i = 0; i < *n; i++) {
		if (strv_has(drop, n_drop, v[i]))
			free(v[i]);
		else
			v[k++] = v[i];
	}
	*n = k;
}

int msubs_init(struct msubs *s, char *const *filters, size_t n)
{
	memset(s, 0, sizeof(*s));
	s->subs = msubs_strv_dup(filters, n);
	if (!s->subs)
		return -1;
	s->n_subs = n;
	return 0;
}

void msubs_reqs_clear(struct msubs *s)
{
	for (size_t i = 0; i < s->n_reqs; i++)
		msubs_strv_free(s->reqs[i].filters, s->reqs[i].n);
	s->n_reqs = 0;
}

void msubs_fini(struct msubs *s)
{
	msubs_reqs_clear(s);
	free(s->reqs);
	msubs_strv_free(s->subs, s->n_subs);
	msubs_strv_free(s->unsubs, s->n_unsubs);
	memset(s, 0, sizeof(*s));
}

int msubs_req_reserve(struct msubs *s)
{
	struct msubs_req *reqs;
	size_t cap;

	if (s->n_reqs < s->cap_reqs)
		return 0;
	cap = s->cap_reqs ? 2 * s->cap_reqs : 4;
	reqs = realloc(s->reqs, cap * sizeof(*reqs));
	if (!reqs)
		return -1;
	s->reqs = reqs;
	s->cap_reqs = cap;
	return 0;
}

void msubs_req_add(struct msubs *s, int mid, int kind, char **filters, size_t n)
{
	s->reqs[s->n_reqs++] = (struct msubs_req){ .mid = mid, .kind = kind, .filters = filters,
	                                           .n = n };
}

bool msubs_req_take(struct msubs *s, int mid, struct msubs_req *out)
{
	for (size_t i = 0; i < s->n_reqs; i++) {
		if (s->reqs[i].mid != mid)
			continue;
		*out = s->reqs[i];
		s->reqs[i] = s->reqs[--s->n_reqs];
		return true;
	}
	return false;
}

int msubs_set(struct msubs *s, char *const *filters, size_t n, char ***added, size_t *n_added,
              char ***removed, size_t *n_removed)
{
	char **subs = msubs_strv_dup(filters, n), **add = calloc(n ? n : 1, sizeof(char *));
	char **rem = calloc(s->n_subs ? s->n_subs : 1, sizeof(char *)), **unsubs;
	size_t na = 0, nr = 0;

	unsubs = realloc(s->unsubs, (s->n_unsubs + s->n_subs + 1) * sizeof(char *));
	if (unsubs)
		s->unsubs = unsubs;
	if (!subs || !add || !rem || !unsubs)
		goto fail;
	for (size_t i = 0; i < n; i++)
		if (!strv_has(s->subs, s->n_subs, filters[i]) && !(add[na++] = strdup(filters[i])))
			goto fail;
	for (size_t i = 0; i < s->n_subs; i++)
		if (!strv_has(filters, n, s->subs[i]) && !(rem[nr++] = strdup(s->subs[i])))
			goto fail;
	/* A filter configured again needs no unsubscribing. */
	strv_remove(s->unsubs, &s->n_unsubs, filters, n);
	for (size_t i = 0; i < nr; i++) {
		if (strv_has(s->unsubs, s->n_unsubs, rem[i]))
			continue;
		if (!(s->unsubs[s->n_unsubs] = strdup(rem[i])))
			goto fail;
		s->n_unsubs++;
	}
	msubs_strv_free(s->subs, s->n_subs);
	s->subs = subs;
	s->n_subs = n;
	*added = add;
	*n_added = na;
	*removed = rem;
	*n_removed = nr;
	return 0;

fail:
	if (subs)
		msubs_strv_free(subs, n);
	if (add)
		msubs_strv_free(add, na);
	if (rem)
		msubs_strv_free(rem, nr);
	return -1;
}

void msubs_unsubscribed(struct msubs *s, char *const *filters, size_t n)
{
	strv_remove(s->unsubs, &s->n_unsubs, filters, n);
}

void msubs_forget_unsubs(struct msubs *s)
{
	msubs_strv_free(s->unsubs, s->n_unsubs);
	s->unsubs = NULL;
	s->n_unsubs = 0;
}
