/*
 * apub: an AMQP publisher with confirms for the test tools (mab-cmd, and
 * mab-blast for the benchmark).
 *
 * The tool connects and logs in (over TCP or TLS, as it likes), makes and
 * publishes each message, and words its own reports of a nack, a return
 * and the time limit.  apub puts the channel in confirm mode, keeps at most
 * a window of messages unconfirmed, reads every frame that is ready between
 * publishes (only a full window or a --rate pause makes it wait, in
 * ppoll()), settles confirms with `multiple` honoured and out-of-order
 * single confirms too (AMQP allows them, and RabbitMQ sends them for
 * messages that go through its message store), and reports what is alike
 * for every tool: a channel or connection closed by the broker, a confirm
 * for a tag never published, a failed read or write.
 */
#ifndef MAB_APUB_H
#define MAB_APUB_H

#include <stdbool.h>
#include <stdint.h>

#include <amqp.h>

/* The channel tool_amqp_open opens; every message goes out on it. */
#define APUB_CHANNEL 1

enum apub_status {
	APUB_DONE = 0,          /* every message settled (acked or nacked) */
	APUB_FAILED = -1,       /* a broker or protocol error, reported */
	APUB_TIMED_OUT = -2,    /* the time limit passed; for the tool to report */
};

struct apub;

/* What the tool does; `arg` is the one given to apub_init. */
struct apub_ops {
	/*
	 * Publishes message i (0 for the first) with apub_publish.  Returns
	 * 0, or -1 after a message.
	 */
	int (*publish)(void *arg, struct apub *p, uint64_t i);
	/* Optional: message i was nacked, the nth nack (0 for the first). */
	void (*nacked)(void *arg, uint64_t i, uint64_t nth);
	/* Optional: a message came back unroutable, the nth return. */
	void (*returned)(void *arg, const amqp_basic_return_t *m, uint64_t nth);
};

/*
 * Progress of the confirm stream; the tool reads the counters.  Message i
 * has delivery tag i + 1.
 */
struct apub {
	amqp_connection_state_t conn;
	const char *prog;       /* names the tool in reports */
	const struct apub_ops *ops;
	void *arg;
	uint64_t count;         /* messages to publish */
	uint64_t published;     /* the last delivery tag used */
	uint64_t settled;       /* tags 1..settled are acked or nacked */
	uint64_t done;          /* tags acked or nacked, also beyond `settled` */
	uint64_t acked;
	uint64_t nacked;
	uint64_t returned;
	unsigned char *seen;    /* one bit per tag: acked or nacked */
};

/*
 * Takes over conn (logged in, APUB_CHANNEL open), limits its RPCs to 10 s
 * and puts the channel in confirm mode, to publish `count` messages.
 * Returns 0, or -1 after a message with conn destroyed.
 */
int apub_init(struct apub *p, const char *prog, amqp_connection_state_t conn, uint64_t count,
              const struct apub_ops *ops, void *arg);

/*
 * Publishes p->count messages through ops->publish, keeping at most
 * `window` unconfirmed and, when `rate` is not 0, starting message i no
 * sooner than i / rate seconds after the first; confirms are read while
 * it waits.  Returns when every message is settled, on an error or once
 * `timeout` seconds have passed.
 */
enum apub_status apub_run(struct apub *p, uint64_t window, uint64_t rate, double timeout);

/*
 * Publishes one message on APUB_CHANNEL with `mandatory` set.  Returns 0,
 * or -1 after a message naming `seq`, the tool's number for it.
 */
int apub_publish(struct apub *p, uint64_t seq, const char *exchange, const char *key,
                 const amqp_basic_properties_t *props, amqp_bytes_t body);

/*
 * Closes the channel and the connection, politely when `polite` (after
 * APUB_DONE: a broken connection cannot be), and releases everything.
 */
void apub_fini(struct apub *p, bool polite);

#endif
