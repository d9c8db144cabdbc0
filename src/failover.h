/*
 * failover: which address of a side's broker list the next connection
 * attempt takes.  Pure; the link owns one and reports each outcome.
 *
 * A failed attempt, or the loss of a connection the broker ended, moves
 * to the next address at once.  The reconnect backoff applies only when
 * a whole pass has failed: as many failures in a row as the list has
 * addresses (a connection that stayed up long enough counts as a
 * success, see failover_failed()).  A new pass starts at the first
 * address in FAILOVER_PRIMARY order and goes on round the list in
 * FAILOVER_ROUND_ROBIN order.  In FAILOVER_PRIMARY order the link also
 * returns to the first address while it is on another one, once that
 * first one answers again (failover_on_standby(), failover_to_primary()).
 * With one address every failure is a whole pass, as before lists.
 *
 * A return to the first address that fails (it accepts TCP connections
 * but refuses the login, say) doubles the time to the next check, up to
 * FAILOVER_RETRY_MAX_S; a connection to the first address sets it back.
 */
#ifndef BRIDGE_FAILOVER_H
#define BRIDGE_FAILOVER_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

/* Stored in the settings (SK_CHOICE): the index of the choice. */
enum failover_order { FAILOVER_PRIMARY = 0, FAILOVER_ROUND_ROBIN };

/* The longest wait between checks that the first address is back: an hour. */
#define FAILOVER_RETRY_MAX_S 3600

struct failover {
	size_t n;                   /* addresses, at least 1 */
	enum failover_order order;
	size_t cur;                 /* the address in use, or tried next */
	size_t failed;              /* failures in a row in this pass */
	bool returning;             /* failover_to_primary() was the last move */
	unsigned retry_scale;       /* primary_retry times this: doubled by failed returns */
};

void failover_init(struct failover *f, size_t n, enum failover_order order);

/*
 * The attempt on the current address failed, or a connection to it was
 * lost (`lost`), having been up long enough to count as good (`stable`).
 * Moves on to the next address.  Returns true when this ends a pass in
 * which every address failed: the caller waits its backoff delay first.
 */
bool failover_failed(struct failover *f, bool lost, bool stable);

/* In FAILOVER_PRIMARY order, on an address other than the first. */
bool failover_on_standby(const struct failover *f);

/* Room for failover_where()'s text. */
#define FAILOVER_WHERE_MAX 64

/*
 * For a log line: "address I of N" (the current address) between `pre`
 * and `post`, or "" with one address.  Returns `buf`.
 */
const char *failover_where(const struct failover *f, char *buf, size_t size, const char *pre,
                           const char *post);

/* The next attempt takes the first address, starting a new pass: a return. */
void failover_to_primary(struct failover *f);

/* A connection to the current address is up. */
void failover_connected(struct failover *f);

/* Milliseconds to wait, on a standby address, before checking the first again. */
uint64_t failover_retry_ms(const struct failover *f, int primary_retry_s);

#endif
