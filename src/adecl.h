/*
 * adecl: what the AMQP set-up declares on every connect, as a numbered
 * list of steps.
 *
 * Step 0 is amqp.exchange, then amqp.dead_letter_exchange (when set), the
 * topology's exchanges, queues and bindings, in that order, and last a
 * passive check of each exchange the rules publish to.  Each step is one
 * method on the set-up's channel with one expected reply; a failure is
 * described as the operator knows the step: "topology exchange 'x' (line
 * 12): ...", "exchange 'x' used by a rule does not exist (...)".
 * No I/O here: frames go into an aframe buffer.
 */
#ifndef BRIDGE_ADECL_H
#define BRIDGE_ADECL_H

#include <stddef.h>

#include <amqp.h>

#include "aframe.h"
#include "settings.h"

struct adecl {
	const struct amqp_settings *cfg;
	const struct topology *topo;     /* NULL: none */
	char *const *check;
	size_t n_check;
	size_t n_steps;
	amqp_table_entry_t *entries;     /* room for the longest argument table */
};

/* Returns 0, or -1 when out of memory.  The arguments must outlive `d`. */
int adecl_init(struct adecl *d, const struct amqp_settings *cfg, const struct topology *t,
               char *const *check, size_t n_check);
void adecl_fini(struct adecl *d);

/*
 * Queues step `i` on `channel`.  Returns 0, or rabbitmq-c's status (< 0)
 * when it cannot be encoded within `frame_max`.
 */
int adecl_encode(struct adecl *d, size_t i, struct aframe *out, uint16_t channel,
                 size_t frame_max);

/* The reply that completes step `i`. */
amqp_method_number_t adecl_reply(const struct adecl *d, size_t i);

/*
 * Why step `i` failed, in `err`.  `full` describes the failure ("broker
 * closed the channel: 404 NOT_FOUND - ..."); `text` is the broker's own
 * words when it closed the channel, else `full`; `code` the channel.close
 * reply code, or 0.
 */
void adecl_failure(const struct adecl *d, size_t i, const char *full, const char *text, int code,
                   char *err, size_t errsz);

/* Logs what the topology declared and checked, if anything. */
void adecl_log_done(const struct adecl *d);

#endif
