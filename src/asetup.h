/*
 * asetup: establishing the AMQP connection, driven by the loop.
 *
 * Every step waits for its socket or a timer, never inside a call, so that
 * signals, the watchdog and the MQTT side keep being served while RabbitMQ
 * is slow or silent:
 *
 *   RESOLVING   the host name's addresses (getaddrinfo_a; numeric at once)
 *   CONNECTING  non-blocking TCP connect, each address in turn
 *   TLS         the TLS handshake (with amqp.tls)
 *   START       protocol header sent; awaiting connection.start
 *   TUNE        start-ok (PLAIN) sent; awaiting connection.tune
 *   OPEN        tune-ok and connection.open sent; awaiting open-ok
 *   CHANNEL     channel.open sent
 *   CONFIRM     confirm.select sent
 *   DECLARE     the exchanges, the topology and the passive checks, a few
 *               in flight at a time, answered in order
 *
 * One deadline, amqp.connect_timeout, covers all of it.  The outcome is
 * reported once through the done handler: NULL on success (take the
 * connection with asetup_take()), or the reason, named as the operator
 * knows it ("login as 'x' failed: ...", "topology queue 'q' (line 12):
 * ...").  The handler may start, cancel or free nothing of the set-up's
 * but may start a new one.
 */
#ifndef BRIDGE_ASETUP_H
#define BRIDGE_ASETUP_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include <amqp.h>

#include "adecl.h"
#include "aframe.h"
#include "settings.h"
#include "loop.h"
#include "resolve.h"

#define ASETUP_CHANNEL 1

enum asetup_state {
	AS_IDLE = 0,
	AS_RESOLVING,
	AS_CONNECTING,
	AS_TLS,
	AS_START,
	AS_TUNE,
	AS_OPEN,
	AS_CHANNEL,
	AS_CONFIRM,
	AS_DECLARE,
};

struct asock;
struct atls;
struct addrinfo;

typedef void (*asetup_done_fn)(void *arg, const char *err);

struct asetup {
	enum asetup_state state;
	struct loop *loop;
	asetup_done_fn done;
	void *arg;
	const struct amqp_settings *cfg;
	const struct endpoint *node;     /* the broker being connected to */
	const struct topology *topo;
	char *const *check;
	size_t n_check;

	struct resolve resolve;
	const struct addrinfo *addr;     /* the address being tried */
	amqp_connection_state_t conn;
	amqp_socket_t *sock;             /* rabbitmq-c's socket object of `conn` */
	struct atls *tls;                /* the TLS session, or NULL */
	int fd;
	bool fd_added;                   /* registered with the loop */
	struct asock *asock;             /* `conn`'s socket from the protocol header on; it owns
	                                    `fd` and `tls` */
	struct aframe *out;              /* its output queue */
	size_t frame_max;                /* for frames we encode */
	struct loop_timer deadline_timer;
	struct loop_timer lookup_timer;  /* polls the name lookup */
	char last_connect_error[128];

	struct adecl decl;               /* DECLARE: the steps */
	size_t sent, acked;              /* declarations sent, and answered */
	bool blocked;                    /* connection.blocked came during the set-up */
	char blocked_why[256];
	/*
	 * RabbitMQ said no: it closed the connection or the channel (login,
	 * vhost, declarations), or the TLS session during login (a client
	 * certificate refused).  Not a reset or an EOF elsewhere.
	 */
	bool refused;
	char err[768];
};

void asetup_init(struct asetup *s, struct loop *loop, asetup_done_fn done, void *arg);
void asetup_fini(struct asetup *s);

/*
 * Starts connecting to `node` (one of cfg->hosts) with `cfg`, declaring
 * `t` (may be NULL) and checking the exchanges in `check`; all must stay
 * valid until the outcome.  The done handler may run before this returns
 * (an error found at once).
 */
void asetup_start(struct asetup *s, const struct amqp_settings *cfg,
                  const struct endpoint *node, const struct topology *t, char *const *check,
                  size_t n_check);

/* Abandons a set-up in progress (no handler runs) and closes its connection. */
void asetup_cancel(struct asetup *s);

/*
 * After success: hands over the connection (its socket is no longer
 * registered with the loop).  *fd is its descriptor, *sock its socket
 * (owned by the connection; see asock.h), *blocked whether RabbitMQ blocked
 * publishing meanwhile (with its reason in s->blocked_why).
 */
amqp_connection_state_t asetup_take(struct asetup *s, int *fd, struct asock **sock,
                                    bool *blocked);

const char *asetup_state_name(enum asetup_state st);

#endif
