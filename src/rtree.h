/*
 * rtree: the tree that MQTT topic filters are compiled into, so that the
 * filters matching a topic are found in time in proportion to the topic's
 * levels (and to the filters that match), not to the number of filters.
 * Pure: no I/O; allocates only while it is built.
 *
 * Filters are numbered 0, 1, ... in the order they are added; each may
 * say `cont` ("continue": a later filter may apply too).  A match returns
 * the numbers, ascending, of every matching filter up to and including the
 * first matching one without `cont`.
 *
 * Nodes are reached by one path each: literal edges live in one shared
 * hash table keyed by (parent, level text), the '+' edge in the node.
 */
#ifndef BRIDGE_RTREE_H
#define BRIDGE_RTREE_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

/* No filter (a number no filter has); also the bound on how many there may be. */
#define RTREE_NONE UINT32_MAX
#define RTREE_MAX (RTREE_NONE / 2)

struct rtree;

/* An empty tree with room for `n` (< RTREE_MAX) filters; NULL when memory ran out. */
struct rtree *rtree_new(size_t n);

/*
 * Adds the next filter (plain and valid, see filter.h).  `filter` must
 * stay as it is for the life of the tree: long levels are not copied.  At
 * most the `n` of rtree_new().  Returns 0, or -1 when memory ran out.
 */
int rtree_add(struct rtree *t, const char *filter, bool cont);

/* Ends the building: lays out the lists and the scratch of a match.  Returns 0 or -1. */
int rtree_finish(struct rtree *t);

void rtree_free(struct rtree *t);

/*
 * The filters that match the topic name topic[0..tlen): sets *ids to their
 * numbers, ascending (every one but the last has `cont`), and returns how
 * many.  *ids points into `t` and holds until the next call.  Not
 * reentrant, and never allocates.  A finished tree only.
 */
size_t rtree_match(const struct rtree *t, const char *topic, size_t tlen, const uint32_t **ids);

/*
 * Called with the numbers of some filters that end at one place in the
 * tree, ascending; those before ids[nc] have `cont` (nc == n: all do).
 * Returns true to stop the walk.
 */
typedef bool rtree_visit_fn(void *ctx, const uint32_t *ids, uint32_t n, uint32_t nc);

/*
 * Visits, in groups, the filters that cover `filter` (a valid plain
 * filter) in the sense of filter_covers(), itself included when it is in
 * the tree.  Returns true when `visit` stopped the walk.  Not reentrant.
 * A finished tree only.
 */
bool rtree_walk_covering(const struct rtree *t, const char *filter, rtree_visit_fn *visit,
                         void *ctx);

#endif
