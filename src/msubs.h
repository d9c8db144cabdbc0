/*
 * msubs: the MQTT side's subscriptions, as bookkeeping.  Pure: no I/O.
 *
 * The filters subscribed on every connect; the filters dropped from the
 * configuration while no connection could unsubscribe them (the persistent
 * session still holds them, so the next connection does); and the
 * SUBSCRIBE / UNSUBSCRIBE requests awaiting their answer, with the filters
 * they carried.
 */
#ifndef BRIDGE_MSUBS_H
#define BRIDGE_MSUBS_H

#include <stdbool.h>
#include <stddef.h>

enum { MSUBS_INITIAL, MSUBS_SUB, MSUBS_UNSUB };

struct msubs_req {
	int mid;
	int kind;                 /* MSUBS_INITIAL (the connection's first SUBSCRIBE),
	                             MSUBS_SUB or MSUBS_UNSUB */
	char **filters;           /* owned */
	size_t n;
};

struct msubs {
	char **subs;              /* owned copies */
	size_t n_subs;
	char **unsubs;
	size_t n_unsubs;
	struct msubs_req *reqs;
	size_t n_reqs;
	size_t cap_reqs;
};

/* Returns 0, or -1 when memory ran out. */
int msubs_init(struct msubs *s, char *const *filters, size_t n);
void msubs_fini(struct msubs *s);

/* A string vector: copies `n` strings (NULL when memory ran out); frees one. */
char **msubs_strv_dup(char *const *v, size_t n);
void msubs_strv_free(char **v, size_t n);

/* Room for one more request, so that msubs_req_add() cannot fail.  Returns 0 or -1. */
int msubs_req_reserve(struct msubs *s);
/* Remembers a request sent (room reserved); takes over `filters`. */
void msubs_req_add(struct msubs *s, int mid, int kind, char **filters, size_t n);
/* The request `mid` answered, taken out of the list (the caller frees its filters). */
bool msubs_req_take(struct msubs *s, int mid, struct msubs_req *out);
/* The connection went: its requests will not be answered. */
void msubs_reqs_clear(struct msubs *s);

/*
 * The subscriptions become `filters`.  Sets *added and *removed (owned
 * vectors, possibly empty) to what changed, and keeps each removed filter
 * to unsubscribe on the next connection unless msubs_unsubscribed() says it
 * went.  Returns 0, or -1 when memory ran out (nothing changed).
 */
int msubs_set(struct msubs *s, char *const *filters, size_t n, char ***added, size_t *n_added,
              char ***removed, size_t *n_removed);
/* The broker confirmed that the session no longer holds `filters`. */
void msubs_unsubscribed(struct msubs *s, char *const *filters, size_t n);
/* Another session: the old one's leftovers are not ours to remove. */
void msubs_forget_unsubs(struct msubs *s);

#endif
