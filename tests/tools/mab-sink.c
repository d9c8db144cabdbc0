/*
 * mab-sink: the RabbitMQ end of the integration tests.
 *
 *   mab-sink setup   declares a durable queue (and optionally the exchange)
 *                    and binds it.
 *   mab-sink consume reads a queue (or several, as one stream) until the
 *                    expected sequence numbers have all arrived (or nothing
 *                    new came for a while), checks every payload byte for
 *                    byte and every routing key (and, when asked, the
 *                    exchange and headers), and prints one summary line:
 *     received=R distinct=D duplicates=X lost=L bad_payload=B bad_key=K
 *                    (followed by " unexpected=U" when messages outside the
 *                    expected range arrived).
 *   mab-sink count   prints how many messages a queue holds ready, as the
 *                    queue itself says (queue.declare, passive): exact even
 *                    for quorum queues, whose management figures lag.
 *   mab-sink dump    reads a queue and prints every message as stable text:
 *                    its exchange, routing key, the basic properties that
 *                    are set, the headers sorted by name and the body, with
 *                    anything but printable ASCII escaped, so a test can
 *                    compare the output with what it expects.
 *
 * Exit status: 0 on success (consume: nothing lost, nothing bad); 1 on a
 * failed check or a broker error; 2 on a usage error.
 */
#include <errno.h>
#include <getopt.h>
#include <inttypes.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include <amqp.h>
#include <amqp_tcp_socket.h>

#include "payload.h"
#include "toolutil.h"

#define PROG "mab-sink"
#define HOST "127.0.0.1"
#define CHANNEL 1
#define MAX_ARGS 16
#define MAX_BINDINGS 16
#define MAX_HEADERS 16          /* consume --header */
#define MAX_QUEUES 8            /* consume --queue */
#define REPORT_MAX 5            /* detailed complaints of each kind */

struct common {
	long long port;
	const char *vhost;
	const char *user;
	const char *pass;
	const char *queue;
};

static void usage(FILE *out)
{
	fprintf(out,
		"usage: " PROG " setup   -p PORT -V VHOST [-q QUEUE] [-x EXCHANGE] [--declare-exchange]\n"
		"                        [--exchange-type TYPE] [-k BINDING_KEY]... [-a NAME=VALUE]... [--purge]\n"
		"       " PROG " consume -p PORT -V VHOST -q QUEUE... -s START -n COUNT [options]\n"
		"       " PROG " count   -p PORT -V VHOST -q QUEUE\n"
		"       " PROG " dump    -p PORT -V VHOST -q QUEUE [-n COUNT] [-i IDLE] [-w TIMEOUT]\n"
		"common:\n"
		"  -p, --port PORT          AMQP port on " HOST " (required)\n"
		"  -V, --vhost VHOST        virtual host (default \"/\")\n"
		"  -u, --user USER          (default guest)\n"
		"  -P, --password PASS      (default guest)\n"
		"  -q, --queue QUEUE        queue name\n"
		"setup:\n"
		"  -x, --exchange NAME      exchange to bind to (default telemetry)\n"
		"      --declare-exchange   declare the exchange (durable)\n"
		"      --exchange-type TYPE topic (default), direct, fanout or headers\n"
		"      --internal           with --declare-exchange: an internal exchange, which\n"
		"                           no client may publish to\n"
		"  -k, --bind KEY           binding key (repeatable; none: no binding)\n"
		"  -a, --arg NAME=VALUE     queue argument; an integer VALUE is sent as a long\n"
		"      --purge              empty the queue\n"
		"consume (with several --queue, reads them all as one stream and prints\n"
		"\"queue NAME received=R\" for each after the summary):\n"
		"  -s, --start S            first expected sequence number (default 0)\n"
		"  -n, --count N            expected messages S..S+N-1 (0: none, read until idle)\n"
		"  -t, --topic PATTERN      topic pattern used by the publisher (default \"fleet/dev%%d/temp\")\n"
		"  -T, --topics K           topic count used by the publisher (default 1)\n"
		"  -i, --idle SECONDS       stop when nothing new arrived for this long (default 10)\n"
		"  -w, --timeout SECONDS    stop after this long in any case (default 300)\n"
		"  -f, --prefetch N         basic.qos prefetch count (default 500)\n"
		"      --no-key-check       do not check routing keys\n"
		"      --key PATTERN        expected routing keys: PATTERN with one %%d, which receives\n"
		"                           seq %% topics, taken literally (default: the topic with\n"
		"                           '/' translated to '.')\n"
		"      --exchange X         every message must come through exchange X (\"\" allowed)\n"
		"      --header NAME=VALUE  every message must carry header NAME with this value, as\n"
		"                           text (strings as they are, integers in decimal, booleans\n"
		"                           true or false); repeatable\n"
		"      --dead-letter REASON expect the bridge's dead-letter headers with this\n"
		"                           x-bridge-reason; x-mqtt-topic and x-original-routing-key\n"
		"                           must match the topic pattern\n"
		"      --orig-exchange X    with --dead-letter: expected x-original-exchange\n"
		"      --print-headers      print the headers of the first message\n"
		"      --latency            print latency percentiles of stamped payloads\n"
		"      --quiet              print only the summary line\n"
		"dump (one block per message, in arrival order; exit 1 when fewer than COUNT came):\n"
		"  -n, --count N            stop after N messages (default 0: read until idle)\n"
		"  -i, --idle SECONDS       stop when nothing arrived for this long (default 10)\n"
		"  -w, --timeout SECONDS    stop after this long in any case (default 60)\n"
		"  -h, --help\n");
}

static uint64_t realtime_ns(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_REALTIME, &ts);
	return (uint64_t)ts.tv_sec * 1000000000u + (uint64_t)ts.tv_nsec;
}

/* Opens a connection and channel 1; NULL on failure (reported). */
/*
 * The connection options every command takes: -p, -V, -u and -P.  Returns
 * 0 when `ch` is one of them with a good value, -1 otherwise.
 */
static int common_option(struct common *c, int ch)
{
	switch (ch) {
	case 'p': return tool_parse_ll(PROG, optarg, 1, 65535, "--port", &c->port) ? -1 : 0;
	case 'V': c->vhost = optarg; return 0;
	case 'u': c->user = optarg; return 0;
	case 'P': c->pass = optarg; return 0;
	default: return -1;
	}
}

static amqp_connection_state_t open_conn(const struct common *c)
{
	return tool_amqp_open(PROG, (int)c->port, c->vhost, c->user, c->pass);
}

static void close_conn(amqp_connection_state_t conn)
{
	amqp_channel_close(conn, CHANNEL, AMQP_REPLY_SUCCESS);
	amqp_connection_close(conn, AMQP_REPLY_SUCCESS);
	amqp_destroy_connection(conn);
}

/* ------------------------------------------------------------------ setup */

static int cmd_setup(struct common *c, int argc, char **argv)
{
	static const struct option opts[] = {
		{ "port", required_argument, NULL, 'p' },
		{ "vhost", required_argument, NULL, 'V' },
		{ "user", required_argument, NULL, 'u' },
		{ "password", required_argument, NULL, 'P' },
		{ "queue", required_argument, NULL, 'q' },
		{ "exchange", required_argument, NULL, 'x' },
		{ "declare-exchange", no_argument, NULL, 'D' },
		{ "exchange-type", required_argument, NULL, 'E' },
		{ "bind", required_argument, NULL, 'k' },
		{ "arg", required_argument, NULL, 'a' },
		{ "purge", no_argument, NULL, 'U' },
		{ "internal", no_argument, NULL, 'I' },
		{ "help", no_argument, NULL, 'h' },
		{ NULL, 0, NULL, 0 },
	};
	const char *exchange = "telemetry", *xtype = "topic";
	bool internal = false;
	const char *keys[MAX_BINDINGS];
	const char *args[MAX_ARGS];
	amqp_table_entry_t entries[MAX_ARGS];
	amqp_table_t table = { 0, entries };
	bool declare_x = false, purge = false;
	size_t nkeys = 0, nargs = 0;
	amqp_connection_state_t conn;
	int ch, status = 1;

	while ((ch = getopt_long(argc, argv, "p:V:u:P:q:x:k:a:h", opts, NULL)) != -1) {
		int bad = 0;

		switch (ch) {
		case 'q': c->queue = optarg; break;
		case 'x': exchange = optarg; break;
		case 'D': declare_x = true; break;
		case 'E': xtype = optarg; break;
		case 'U': purge = true; break;
		case 'I': internal = true; break;
		case 'k':
			if (nkeys == MAX_BINDINGS) {
				fprintf(stderr, PROG ": at most %d --bind\n", MAX_BINDINGS);
				bad = -1;
			} else {
				keys[nkeys++] = optarg;
			}
			break;
		case 'a':
			if (nargs == MAX_ARGS || !strchr(optarg, '=') || optarg[0] == '=') {
				fprintf(stderr, PROG ": --arg: expected NAME=VALUE (at most %d), got '%s'\n",
					MAX_ARGS, optarg);
				bad = -1;
			} else {
				args[nargs++] = optarg;
			}
			break;
		case 'h': usage(stdout); return 0;
		default: bad = common_option(c, ch); break;
		}
		if (bad)
			return tool_try_help(PROG);
	}
	if (optind != argc || c->port == 0 || (!c->queue && !declare_x) ||
	    ((nkeys || nargs || purge) && !c->queue))
		return tool_usage_error(PROG,
					"setup needs --port and --queue (or --declare-exchange alone)");
	if (strcmp(xtype, "topic") && strcmp(xtype, "direct") && strcmp(xtype, "fanout") &&
	    strcmp(xtype, "headers")) {
		fprintf(stderr, PROG ": --exchange-type: unknown type '%s'\n", xtype);
		return 2;
	}
	for (size_t i = 0; i < nargs; i++) {
		const char *eq = strchr(args[i], '=');
		char *end;
		long long v;

		entries[i].key = (amqp_bytes_t){ (size_t)(eq - args[i]), (void *)args[i] };
		errno = 0;
		v = strtoll(eq + 1, &end, 10);
		if (eq[1] != '\0' && *end == '\0' && errno == 0) {
			entries[i].value.kind = AMQP_FIELD_KIND_I64;
			entries[i].value.value.i64 = v;
		} else {
			entries[i].value.kind = AMQP_FIELD_KIND_UTF8;
			entries[i].value.value.bytes = amqp_cstring_bytes(eq + 1);
		}
	}
	table.num_entries = (int)nargs;

	conn = open_conn(c);
	if (!conn)
		return 1;
	if (declare_x) {
		amqp_exchange_declare(conn, CHANNEL, amqp_cstring_bytes(exchange), amqp_cstring_bytes(xtype),
				      0, 1, 0, internal, amqp_empty_table);
		if (tool_check_rpc(PROG, conn, "exchange.declare") != 0)
			goto out;
	}
	if (c->queue) {
		amqp_queue_declare(conn, CHANNEL, amqp_cstring_bytes(c->queue), 0, 1, 0, 0, table);
		if (tool_check_rpc(PROG, conn, "queue.declare") != 0)
			goto out;
		for (size_t i = 0; i < nkeys; i++) {
			amqp_queue_bind(conn, CHANNEL, amqp_cstring_bytes(c->queue), amqp_cstring_bytes(exchange),
					amqp_cstring_bytes(keys[i]), amqp_empty_table);
			if (tool_check_rpc(PROG, conn, "queue.bind") != 0)
				goto out;
		}
		if (purge) {
			amqp_queue_purge(conn, CHANNEL, amqp_cstring_bytes(c->queue));
			if (tool_check_rpc(PROG, conn, "queue.purge") != 0)
				goto out;
		}
	}
	status = 0;
out:
	close_conn(conn);
	return status;
}

/* ---------------------------------------------------------------- consume */

struct expect {
	uint64_t start;
	uint64_t count;
	const char *pattern;
	uint64_t topics;
	bool key_check;
	const char *dl_reason;          /* NULL: no dead-letter checks */
	const char *orig_exchange;      /* NULL: not checked */
	const char *key_pattern;        /* NULL: the translated topic */
	const char *exchange;           /* NULL: not checked */
	const char *headers[MAX_HEADERS];  /* "NAME=VALUE" each */
	size_t n_headers;
};

struct tally {
	uint64_t received, distinct, duplicates, bad_payload, bad_key, unexpected;
	unsigned char *seen;            /* one byte per expected seq */
	uint64_t *lat_ns;               /* latencies of stamped payloads */
	size_t nlat, caplat;
};

static const amqp_field_value_t *header_get(const amqp_basic_properties_t *p, const char *name)
{
	size_t len = strlen(name);

	if (!(p->_flags & AMQP_BASIC_HEADERS_FLAG))
		return NULL;
	for (int i = 0; i < p->headers.num_entries; i++) {
		const amqp_table_entry_t *e = &p->headers.entries[i];

		if (e->key.len == len && memcmp(e->key.bytes, name, len) == 0)
			return &e->value;
	}
	return NULL;
}

/* True if header `name` is a string (longstr or byte array) equal to `want`. */
static bool header_is(const amqp_basic_properties_t *p, const char *name, const char *want)
{
	const amqp_field_value_t *v = header_get(p, name);
	size_t len = strlen(want);

	if (!v || (v->kind != AMQP_FIELD_KIND_UTF8 && v->kind != AMQP_FIELD_KIND_BYTES))
		return false;
	return v->value.bytes.len == len && memcmp(v->value.bytes.bytes, want, len) == 0;
}

static void print_value(const amqp_field_value_t *v)
{
	switch (v->kind) {
	case AMQP_FIELD_KIND_UTF8:
	case AMQP_FIELD_KIND_BYTES:
		printf("\"%.*s\"", (int)v->value.bytes.len, (const char *)v->value.bytes.bytes);
		break;
	case AMQP_FIELD_KIND_I8: printf("%d", v->value.i8); break;
	case AMQP_FIELD_KIND_U8: printf("%u", v->value.u8); break;
	case AMQP_FIELD_KIND_I16: printf("%d", v->value.i16); break;
	case AMQP_FIELD_KIND_U16: printf("%u", v->value.u16); break;
	case AMQP_FIELD_KIND_I32: printf("%d", v->value.i32); break;
	case AMQP_FIELD_KIND_U32: printf("%u", v->value.u32); break;
	case AMQP_FIELD_KIND_I64: printf("%" PRId64, v->value.i64); break;
	case AMQP_FIELD_KIND_U64: printf("%" PRIu64, v->value.u64); break;
	case AMQP_FIELD_KIND_BOOLEAN: printf("%s", v->value.boolean ? "true" : "false"); break;
	default: printf("(kind '%c')", (char)v->kind); break;
	}
}

/*
 * Writes the text form of a header value to buf (strings as they are,
 * integers in decimal, booleans as true / false).  Returns false for a kind
 * the tools never expect (tables, arrays, decimals, floats, void).
 */
static bool value_text(const amqp_field_value_t *v, char *buf, size_t sz)
{
	switch (v->kind) {
	case AMQP_FIELD_KIND_UTF8:
	case AMQP_FIELD_KIND_BYTES:
		snprintf(buf, sz, "%.*s", (int)v->value.bytes.len, (const char *)v->value.bytes.bytes);
		return true;
	case AMQP_FIELD_KIND_I8: snprintf(buf, sz, "%d", v->value.i8); return true;
	case AMQP_FIELD_KIND_U8: snprintf(buf, sz, "%u", v->value.u8); return true;
	case AMQP_FIELD_KIND_I16: snprintf(buf, sz, "%d", v->value.i16); return true;
	case AMQP_FIELD_KIND_U16: snprintf(buf, sz, "%u", v->value.u16); return true;
	case AMQP_FIELD_KIND_I32: snprintf(buf, sz, "%d", v->value.i32); return true;
	case AMQP_FIELD_KIND_U32: snprintf(buf, sz, "%u", v->value.u32); return true;
	case AMQP_FIELD_KIND_I64: snprintf(buf, sz, "%" PRId64, v->value.i64); return true;
	case AMQP_FIELD_KIND_U64: snprintf(buf, sz, "%" PRIu64, v->value.u64); return true;
	case AMQP_FIELD_KIND_BOOLEAN: snprintf(buf, sz, "%s", v->value.boolean ? "true" : "false"); return true;
	default: return false;
	}
}

/*
 * The first of the expected headers ("NAME=VALUE") that the message lacks
 * or carries with another value; NULL when all are there.
 */
static const char *header_mismatch(const struct expect *ex, const amqp_basic_properties_t *p)
{
	char name[256], text[1024];

	for (size_t i = 0; i < ex->n_headers; i++) {
		const char *want = ex->headers[i], *eq = strchr(want, '=');
		const amqp_field_value_t *v;
		size_t nlen = (size_t)(eq - want);

		if (nlen >= sizeof(name))
			return want;
		memcpy(name, want, nlen);
		name[nlen] = '\0';
		v = header_get(p, name);
		if (!v || !value_text(v, text, sizeof(text)) || strcmp(text, eq + 1) != 0)
			return want;
	}
	return NULL;
}

static void print_headers(const amqp_envelope_t *env)
{
	const amqp_basic_properties_t *p = &env->message.properties;

	printf("routing_key=%.*s exchange=%.*s delivery_mode=%d redelivered=%d\n",
	       (int)env->routing_key.len, (const char *)env->routing_key.bytes,
	       (int)env->exchange.len, (const char *)env->exchange.bytes,
	       (p->_flags & AMQP_BASIC_DELIVERY_MODE_FLAG) ? p->delivery_mode : 0, env->redelivered);
	if (!(p->_flags & AMQP_BASIC_HEADERS_FLAG)) {
		printf("headers: none\n");
		return;
	}
	for (int i = 0; i < p->headers.num_entries; i++) {
		const amqp_table_entry_t *e = &p->headers.entries[i];

		printf("header %.*s=", (int)e->key.len, (const char *)e->key.bytes);
		print_value(&e->value);
		printf("\n");
	}
}

/* Checks one delivery against the expectations and updates the tally.
 * Returns true if it brought a sequence number not seen before. */
static bool account(const struct expect *ex, struct tally *t, const amqp_envelope_t *env, bool quiet)
{
	const amqp_basic_properties_t *p = &env->message.properties;
	uint64_t seq, stamp;
	char topic[1024], key[1024];
	bool fresh = false, key_ok = true, too_long;

	t->received++;
	if (payload_check(env->message.body.bytes, env->message.body.len, &seq, &stamp) != 0) {
		if (t->bad_payload++ < REPORT_MAX && !quiet)
			fprintf(stderr, PROG ": bad payload (%zu bytes, header seq %" PRIu64 ", key %.*s)\n",
				env->message.body.len, seq, (int)env->routing_key.len,
				(const char *)env->routing_key.bytes);
		return false;
	}
	if (stamp) {
		uint64_t now = realtime_ns();

		if (t->nlat == t->caplat) {
			size_t cap = t->caplat ? 2 * t->caplat : 4096;
			uint64_t *n = realloc(t->lat_ns, cap * sizeof(*n));

			if (n) {
				t->lat_ns = n;
				t->caplat = cap;
			}
		}
		if (t->nlat < t->caplat)
			t->lat_ns[t->nlat++] = now > stamp ? now - stamp : 0;
	}
	if (payload_topic(ex->pattern, ex->topics, seq, topic, sizeof(topic)) < 0) {
		topic[0] = '\0';
	}
	if (ex->key_pattern) {
		if (payload_topic(ex->key_pattern, ex->topics, seq, key, sizeof(key)) < 0)
			key[0] = '\0';
	} else {
		memcpy(key, topic, sizeof(key));
		payload_key(key);
	}
	/* A key over the AMQP limit is dead-lettered with an empty one and no original. */
	too_long = ex->dl_reason && strcmp(ex->dl_reason, "routing-key-too-long") == 0;
	if (too_long)
		key[0] = '\0';
	if (ex->key_check && (env->routing_key.len != strlen(key) ||
			      memcmp(env->routing_key.bytes, key, env->routing_key.len) != 0)) {
		key_ok = false;
		if (t->bad_key < REPORT_MAX && !quiet)
			fprintf(stderr, PROG ": seq %" PRIu64 ": routing key '%.*s', expected '%s'\n", seq,
				(int)env->routing_key.len, (const char *)env->routing_key.bytes, key);
	}
	if (ex->dl_reason) {
		const char *what = NULL;

		if (!header_is(p, "x-bridge-reason", ex->dl_reason))
			what = "x-bridge-reason";
		else if (!header_is(p, "x-mqtt-topic", topic))
			what = "x-mqtt-topic";
		else if (!too_long && !header_is(p, "x-original-routing-key", key))
			what = "x-original-routing-key";
		else if (ex->orig_exchange && !header_is(p, "x-original-exchange", ex->orig_exchange))
			what = "x-original-exchange";
		if (what) {
			if (key_ok && t->bad_key < REPORT_MAX && !quiet)
				fprintf(stderr, PROG ": seq %" PRIu64 ": header %s missing or wrong\n", seq, what);
			key_ok = false;
		}
	}
	if (ex->exchange && (env->exchange.len != strlen(ex->exchange) ||
			     memcmp(env->exchange.bytes, ex->exchange, env->exchange.len) != 0)) {
		if (key_ok && t->bad_key < REPORT_MAX && !quiet)
			fprintf(stderr, PROG ": seq %" PRIu64 ": exchange '%.*s', expected '%s'\n", seq,
				(int)env->exchange.len, (const char *)env->exchange.bytes, ex->exchange);
		key_ok = false;
	}
	if (ex->n_headers) {
		const char *bad = header_mismatch(ex, p);

		if (bad) {
			if (key_ok && t->bad_key < REPORT_MAX && !quiet)
				fprintf(stderr, PROG ": seq %" PRIu64 ": header %s missing or different\n",
					seq, bad);
			key_ok = false;
		}
	}
	if (!key_ok)
		t->bad_key++;
	if (seq < ex->start || seq - ex->start >= ex->count) {
		if (t->unexpected++ < REPORT_MAX && !quiet)
			fprintf(stderr, PROG ": unexpected seq %" PRIu64 "\n", seq);
		return false;
	}
	if (t->seen[seq - ex->start]) {
		t->duplicates++;
	} else {
		t->seen[seq - ex->start] = 1;
		t->distinct++;
		fresh = true;
	}
	return fresh;
}

static int cmp_u64(const void *a, const void *b)
{
	uint64_t x = *(const uint64_t *)a, y = *(const uint64_t *)b;

	return x < y ? -1 : x > y;
}

static void print_latency(struct tally *t)
{
	size_t n = t->nlat;

	if (n == 0) {
		printf("latency_ms n=0\n");
		return;
	}
	qsort(t->lat_ns, n, sizeof(*t->lat_ns), cmp_u64);
	printf("latency_ms n=%zu p50=%.3f p90=%.3f p99=%.3f max=%.3f\n", n,
	       (double)t->lat_ns[n / 2] / 1e6, (double)t->lat_ns[n * 9 / 10] / 1e6,
	       (double)t->lat_ns[n * 99 / 100] / 1e6, (double)t->lat_ns[n - 1] / 1e6);
}

/* Lists up to 10 ranges of missing sequence numbers on stderr. */
static void report_lost(const struct expect *ex, const struct tally *t)
{
	int ranges = 0;

	for (uint64_t i = 0; i < ex->count && ranges < 10; i++) {
		uint64_t j = i;

		if (t->seen[i])
			continue;
		while (j + 1 < ex->count && !t->seen[j + 1])
			j++;
		fprintf(stderr, PROG ": lost %" PRIu64 "..%" PRIu64 "\n", ex->start + i, ex->start + j);
		ranges++;
		i = j;
	}
}

static int cmd_consume(struct common *c, int argc, char **argv)
{
	static const struct option opts[] = {
		{ "port", required_argument, NULL, 'p' },
		{ "vhost", required_argument, NULL, 'V' },
		{ "user", required_argument, NULL, 'u' },
		{ "password", required_argument, NULL, 'P' },
		{ "queue", required_argument, NULL, 'q' },
		{ "start", required_argument, NULL, 's' },
		{ "count", required_argument, NULL, 'n' },
		{ "topic", required_argument, NULL, 't' },
		{ "topics", required_argument, NULL, 'T' },
		{ "idle", required_argument, NULL, 'i' },
		{ "timeout", required_argument, NULL, 'w' },
		{ "prefetch", required_argument, NULL, 'f' },
		{ "no-key-check", no_argument, NULL, 'K' },
		{ "dead-letter", required_argument, NULL, 'L' },
		{ "orig-exchange", required_argument, NULL, 'O' },
		{ "key", required_argument, NULL, 'R' },
		{ "exchange", required_argument, NULL, 'X' },
		{ "header", required_argument, NULL, 'e' },
		{ "print-headers", no_argument, NULL, 'H' },
		{ "latency", no_argument, NULL, 'l' },
		{ "quiet", no_argument, NULL, 'Q' },
		{ "help", no_argument, NULL, 'h' },
		{ NULL, 0, NULL, 0 },
	};
	struct expect ex = { .pattern = "fleet/dev%d/temp", .topics = 1, .key_check = true };
	struct tally t = { 0 };
	long long start = 0, count = -1, topics = 1, idle = 10, timeout = 300, prefetch = 500;
	bool print_hdr = false, latency = false, quiet = false;
	amqp_connection_state_t conn = NULL;
	const char *queues[MAX_QUEUES];
	uint64_t per_queue[MAX_QUEUES] = { 0 };
	size_t nq = 0;
	uint64_t last_tag = 0, unacked = 0;
	double t_start, t_last;
	int ch, status = 1;
	bool broker_error = false;

	while ((ch = getopt_long(argc, argv, "p:V:u:P:q:s:n:t:T:i:w:f:h", opts, NULL)) != -1) {
		int bad = 0;

		switch (ch) {
		case 'q':
			if (nq == MAX_QUEUES) {
				fprintf(stderr, PROG ": at most %d --queue\n", MAX_QUEUES);
				bad = -1;
			} else {
				queues[nq++] = c->queue = optarg;
			}
			break;
		case 's': bad = tool_parse_ll(PROG, optarg, 0, 1LL << 53, "--start", &start); break;
		case 'n': bad = tool_parse_ll(PROG, optarg, 0, 100000000, "--count", &count); break;
		case 't': ex.pattern = optarg; break;
		case 'T': bad = tool_parse_ll(PROG, optarg, 1, 100000000, "--topics", &topics); break;
		case 'i': bad = tool_parse_ll(PROG, optarg, 1, 86400, "--idle", &idle); break;
		case 'w': bad = tool_parse_ll(PROG, optarg, 1, 86400, "--timeout", &timeout); break;
		case 'f': bad = tool_parse_ll(PROG, optarg, 1, 65535, "--prefetch", &prefetch); break;
		case 'K': ex.key_check = false; break;
		case 'L': ex.dl_reason = optarg; break;
		case 'O': ex.orig_exchange = optarg; break;
		case 'R': ex.key_pattern = optarg; break;
		case 'X': ex.exchange = optarg; break;
		case 'e':
			if (ex.n_headers == MAX_HEADERS || !strchr(optarg, '=') || optarg[0] == '=') {
				fprintf(stderr, PROG ": --header: expected NAME=VALUE (at most %d), got '%s'\n",
					MAX_HEADERS, optarg);
				bad = -1;
			} else {
				ex.headers[ex.n_headers++] = optarg;
			}
			break;
		case 'H': print_hdr = true; break;
		case 'l': latency = true; break;
		case 'Q': quiet = true; break;
		case 'h': usage(stdout); return 0;
		default: bad = common_option(c, ch); break;
		}
		if (bad)
			return tool_try_help(PROG);
	}
	if (optind != argc || c->port == 0 || !c->queue || count < 0)
		return tool_usage_error(PROG, "consume needs --port, --queue and --count");
	if (payload_topic_check(ex.pattern) != 0) {
		fprintf(stderr, PROG ": --topic: bad pattern '%s'\n", ex.pattern);
		return 2;
	}
	if (ex.key_pattern && payload_topic_check(ex.key_pattern) != 0) {
		fprintf(stderr, PROG ": --key: bad pattern '%s'\n", ex.key_pattern);
		return 2;
	}
	if (ex.orig_exchange && !ex.dl_reason) {
		fprintf(stderr, PROG ": --orig-exchange needs --dead-letter\n");
		return 2;
	}
	ex.start = (uint64_t)start;
	ex.count = (uint64_t)count;
	ex.topics = (uint64_t)topics;
	t.seen = calloc(ex.count ? ex.count : 1, 1);
	if (!t.seen) {
		fprintf(stderr, PROG ": out of memory\n");
		return 1;
	}

	conn = open_conn(c);
	if (!conn) {
		free(t.seen);
		return 1;
	}
	amqp_basic_qos(conn, CHANNEL, 0, (uint16_t)prefetch, 0);
	if (tool_check_rpc(PROG, conn, "basic.qos") != 0)
		goto out;
	/* The consumer tag is the queue's index, to count per queue. */
	for (size_t i = 0; i < nq; i++) {
		char tag[16];

		snprintf(tag, sizeof(tag), "%zu", i);
		amqp_basic_consume(conn, CHANNEL, amqp_cstring_bytes(queues[i]), amqp_cstring_bytes(tag),
				   0, 0, 0, amqp_empty_table);
		if (tool_check_rpc(PROG, conn, "basic.consume") != 0)
			goto out;
	}

	t_start = t_last = tool_now_s();
	for (;;) {
		struct timeval tv = { .tv_sec = 0, .tv_usec = 200000 };
		amqp_envelope_t env;
		amqp_rpc_reply_t r;
		double now;

		if (ex.count > 0 && t.distinct == ex.count)
			break;
		amqp_maybe_release_buffers(conn);
		r = amqp_consume_message(conn, &env, &tv, 0);
		now = tool_now_s();
		if (r.reply_type == AMQP_RESPONSE_NORMAL) {
			if (print_hdr && t.received == 0)
				print_headers(&env);
			for (size_t i = 0; i < nq; i++) {
				char tag[16];

				snprintf(tag, sizeof(tag), "%zu", i);
				if (env.consumer_tag.len == strlen(tag) &&
				    memcmp(env.consumer_tag.bytes, tag, env.consumer_tag.len) == 0)
					per_queue[i]++;
			}
			if (account(&ex, &t, &env, quiet))
				t_last = now;
			last_tag = env.delivery_tag;
			amqp_destroy_envelope(&env);
			if (++unacked >= (uint64_t)(prefetch + 1) / 2) {
				amqp_basic_ack(conn, CHANNEL, last_tag, 1);
				unacked = 0;
			}
		} else if (r.reply_type == AMQP_RESPONSE_LIBRARY_EXCEPTION &&
			   r.library_error == AMQP_STATUS_TIMEOUT) {
			if (unacked) {
				amqp_basic_ack(conn, CHANNEL, last_tag, 1);
				unacked = 0;
			}
		} else {
			char buf[512];

			fprintf(stderr, PROG ": consume: %s\n", tool_reply_text(r, buf, sizeof(buf)));
			broker_error = true;
			break;
		}
		if (now - t_last >= (double)idle) {
			if (!quiet && ex.count > 0)
				fprintf(stderr, PROG ": nothing new for %lld s, stopping\n", idle);
			break;
		}
		if (now - t_start >= (double)timeout) {
			if (!quiet)
				fprintf(stderr, PROG ": time limit of %lld s reached, stopping\n", timeout);
			break;
		}
	}
	if (unacked && !broker_error)
		amqp_basic_ack(conn, CHANNEL, last_tag, 1);

	{
		uint64_t lost = ex.count - t.distinct;

		printf("received=%" PRIu64 " distinct=%" PRIu64 " duplicates=%" PRIu64 " lost=%" PRIu64
		       " bad_payload=%" PRIu64 " bad_key=%" PRIu64,
		       t.received, t.distinct, t.duplicates, lost, t.bad_payload, t.bad_key);
		if (t.unexpected)
			printf(" unexpected=%" PRIu64, t.unexpected);
		printf("\n");
		for (size_t i = 0; nq > 1 && i < nq; i++)
			printf("queue %s received=%" PRIu64 "\n", queues[i], per_queue[i]);
		if (latency)
			print_latency(&t);
		if (lost && !quiet)
			report_lost(&ex, &t);
		if (lost == 0 && t.bad_payload == 0 && t.bad_key == 0 && t.unexpected == 0 && !broker_error)
			status = 0;
	}
out:
	if (broker_error)
		amqp_destroy_connection(conn);
	else
		close_conn(conn);
	free(t.seen);
	free(t.lat_ns);
	return status;
}

/* ------------------------------------------------------------------ count */

static int cmd_count(struct common *c, int argc, char **argv)
{
	static const struct option opts[] = {
		{ "port", required_argument, NULL, 'p' },
		{ "vhost", required_argument, NULL, 'V' },
		{ "user", required_argument, NULL, 'u' },
		{ "password", required_argument, NULL, 'P' },
		{ "queue", required_argument, NULL, 'q' },
		{ "help", no_argument, NULL, 'h' },
		{ NULL, 0, NULL, 0 },
	};
	amqp_connection_state_t conn;
	amqp_queue_declare_ok_t *ok;
	int ch;

	while ((ch = getopt_long(argc, argv, "p:V:u:P:q:h", opts, NULL)) != -1) {
		int bad = 0;

		switch (ch) {
		case 'q': c->queue = optarg; break;
		case 'h': usage(stdout); return 0;
		default: bad = common_option(c, ch); break;
		}
		if (bad)
			return tool_try_help(PROG);
	}
	if (optind != argc || c->port == 0 || !c->queue)
		return tool_usage_error(PROG, "count needs --port and --queue");
	conn = open_conn(c);
	if (!conn)
		return 1;
	ok = amqp_queue_declare(conn, CHANNEL, amqp_cstring_bytes(c->queue), 1, 0, 0, 0, amqp_empty_table);
	if (tool_check_rpc(PROG, conn, "queue.declare (passive)") != 0) {
		/* The broker closed the channel: close only the connection. */
		amqp_connection_close(conn, AMQP_REPLY_SUCCESS);
		amqp_destroy_connection(conn);
		return 1;
	}
	printf("%" PRIu32 "\n", ok->message_count);
	close_conn(conn);
	return 0;
}

/* ------------------------------------------------------------------- dump */

/* Prints len bytes between quotes: printable ASCII as is, '"' and '\' and
 * every other byte escaped, so each message stays on known lines. */
static void print_escaped(const void *bytes, size_t len)
{
	const unsigned char *b = bytes;

	putchar('"');
	for (size_t i = 0; i < len; i++) {
		if (b[i] == '"' || b[i] == '\\')
			printf("\\%c", b[i]);
		else if (b[i] >= 0x20 && b[i] < 0x7f)
			putchar(b[i]);
		else
			printf("\\x%02x", b[i]);
	}
	putchar('"');
}

/* A header value with its kind: str "...", byte N (AMQP's signed 8-bit 'b',
 * as RabbitMQ's MQTT plugin writes the QoS), int N, bool true|false, or the
 * AMQP kind letter for anything else. */
static void print_typed(const amqp_field_value_t *v)
{
	char text[64];

	switch (v->kind) {
	case AMQP_FIELD_KIND_UTF8:
	case AMQP_FIELD_KIND_BYTES:
		printf("str ");
		print_escaped(v->value.bytes.bytes, v->value.bytes.len);
		break;
	case AMQP_FIELD_KIND_BOOLEAN:
		printf("bool %s", v->value.boolean ? "true" : "false");
		break;
	case AMQP_FIELD_KIND_I8:
		printf("byte %d", v->value.i8);
		break;
	default:
		if (value_text(v, text, sizeof(text)))
			printf("int %s", text);
		else
			printf("kind '%c'", (char)v->kind);
		break;
	}
}

static void print_prop(const char *name, amqp_bytes_t b)
{
	printf("%s: ", name);
	print_escaped(b.bytes, b.len);
	putchar('\n');
}

static int cmp_entry(const void *a, const void *b)
{
	const amqp_table_entry_t *x = *(const amqp_table_entry_t *const *)a;
	const amqp_table_entry_t *y = *(const amqp_table_entry_t *const *)b;
	size_t n = x->key.len < y->key.len ? x->key.len : y->key.len;
	int c = memcmp(x->key.bytes, y->key.bytes, n);

	if (c)
		return c;
	return x->key.len < y->key.len ? -1 : x->key.len > y->key.len;
}

/*
 * One block per message: "message N", then "name: value" lines for the
 * exchange, the routing key, each basic property that is set and each
 * header (sorted by name, so the order does not depend on the publisher),
 * then the body.  Returns -1 when memory ran out.
 */
static int dump_message(uint64_t n, const amqp_envelope_t *env)
{
	const amqp_basic_properties_t *p = &env->message.properties;
	amqp_flags_t f = p->_flags;

	printf("message %" PRIu64 "\n", n);
	print_prop("exchange", env->exchange);
	print_prop("routing_key", env->routing_key);
	if (f & AMQP_BASIC_CONTENT_TYPE_FLAG)
		print_prop("content_type", p->content_type);
	if (f & AMQP_BASIC_CONTENT_ENCODING_FLAG)
		print_prop("content_encoding", p->content_encoding);
	if (f & AMQP_BASIC_DELIVERY_MODE_FLAG)
		printf("delivery_mode: %u\n", p->delivery_mode);
	if (f & AMQP_BASIC_PRIORITY_FLAG)
		printf("priority: %u\n", p->priority);
	if (f & AMQP_BASIC_CORRELATION_ID_FLAG)
		print_prop("correlation_id", p->correlation_id);
	if (f & AMQP_BASIC_REPLY_TO_FLAG)
		print_prop("reply_to", p->reply_to);
	if (f & AMQP_BASIC_EXPIRATION_FLAG)
		print_prop("expiration", p->expiration);
	if (f & AMQP_BASIC_MESSAGE_ID_FLAG)
		print_prop("message_id", p->message_id);
	if (f & AMQP_BASIC_TIMESTAMP_FLAG)
		printf("timestamp: %" PRIu64 "\n", p->timestamp);
	if (f & AMQP_BASIC_TYPE_FLAG)
		print_prop("type", p->type);
	if (f & AMQP_BASIC_USER_ID_FLAG)
		print_prop("user_id", p->user_id);
	if (f & AMQP_BASIC_APP_ID_FLAG)
		print_prop("app_id", p->app_id);
	if ((f & AMQP_BASIC_HEADERS_FLAG) && p->headers.num_entries > 0) {
		size_t nh = (size_t)p->headers.num_entries;
		const amqp_table_entry_t **sorted = malloc(nh * sizeof(*sorted));

		if (!sorted)
			return -1;
		for (size_t i = 0; i < nh; i++)
			sorted[i] = &p->headers.entries[i];
		qsort(sorted, nh, sizeof(*sorted), cmp_entry);
		for (size_t i = 0; i < nh; i++) {
			printf("header ");
			print_escaped(sorted[i]->key.bytes, sorted[i]->key.len);
			printf(": ");
			print_typed(&sorted[i]->value);
			putchar('\n');
		}
		free(sorted);
	}
	printf("body: %zu ", env->message.body.len);
	print_escaped(env->message.body.bytes, env->message.body.len);
	putchar('\n');
	return 0;
}

static int cmd_dump(struct common *c, int argc, char **argv)
{
	static const struct option opts[] = {
		{ "port", required_argument, NULL, 'p' },
		{ "vhost", required_argument, NULL, 'V' },
		{ "user", required_argument, NULL, 'u' },
		{ "password", required_argument, NULL, 'P' },
		{ "queue", required_argument, NULL, 'q' },
		{ "count", required_argument, NULL, 'n' },
		{ "idle", required_argument, NULL, 'i' },
		{ "timeout", required_argument, NULL, 'w' },
		{ "help", no_argument, NULL, 'h' },
		{ NULL, 0, NULL, 0 },
	};
	long long count = 0, idle = 10, timeout = 60;
	amqp_connection_state_t conn;
	uint64_t got = 0;
	double t_start, t_last;
	bool broker_error = false;
	int ch, status = 1;

	while ((ch = getopt_long(argc, argv, "p:V:u:P:q:n:i:w:h", opts, NULL)) != -1) {
		int bad = 0;

		switch (ch) {
		case 'q': c->queue = optarg; break;
		case 'n': bad = tool_parse_ll(PROG, optarg, 0, 100000000, "--count", &count); break;
		case 'i': bad = tool_parse_ll(PROG, optarg, 1, 86400, "--idle", &idle); break;
		case 'w': bad = tool_parse_ll(PROG, optarg, 1, 86400, "--timeout", &timeout); break;
		case 'h': usage(stdout); return 0;
		default: bad = common_option(c, ch); break;
		}
		if (bad)
			return tool_try_help(PROG);
	}
	if (optind != argc || c->port == 0 || !c->queue)
		return tool_usage_error(PROG, "dump needs --port and --queue");

	conn = open_conn(c);
	if (!conn)
		return 1;
	amqp_basic_qos(conn, CHANNEL, 0, 100, 0);
	if (tool_check_rpc(PROG, conn, "basic.qos") != 0)
		goto out;
	amqp_basic_consume(conn, CHANNEL, amqp_cstring_bytes(c->queue), amqp_empty_bytes, 0, 0, 0,
			   amqp_empty_table);
	if (tool_check_rpc(PROG, conn, "basic.consume") != 0)
		goto out;

	t_start = t_last = tool_now_s();
	while (count == 0 || got < (uint64_t)count) {
		struct timeval tv = { .tv_sec = 0, .tv_usec = 200000 };
		amqp_envelope_t env;
		amqp_rpc_reply_t r;
		double now;

		amqp_maybe_release_buffers(conn);
		r = amqp_consume_message(conn, &env, &tv, 0);
		now = tool_now_s();
		if (r.reply_type == AMQP_RESPONSE_NORMAL) {
			int rc = dump_message(++got, &env);

			amqp_basic_ack(conn, CHANNEL, env.delivery_tag, 0);
			amqp_destroy_envelope(&env);
			if (rc != 0) {
				fprintf(stderr, PROG ": out of memory\n");
				goto out;
			}
			t_last = now;
		} else if (!(r.reply_type == AMQP_RESPONSE_LIBRARY_EXCEPTION &&
			     r.library_error == AMQP_STATUS_TIMEOUT)) {
			char buf[512];

			fprintf(stderr, PROG ": consume: %s\n", tool_reply_text(r, buf, sizeof(buf)));
			broker_error = true;
			goto out;
		}
		if (now - t_last >= (double)idle || now - t_start >= (double)timeout)
			break;
	}
	fflush(stdout);
	if (count > 0 && got < (uint64_t)count)
		fprintf(stderr, PROG ": dump: %" PRIu64 " of %lld messages arrived\n", got, count);
	else
		status = 0;
out:
	if (broker_error)
		amqp_destroy_connection(conn);
	else
		close_conn(conn);
	return status;
}

int main(int argc, char **argv)
{
	struct common c = { .vhost = "/", .user = "guest", .pass = "guest" };

	if (argc < 2) {
		usage(stderr);
		return 2;
	}
	if (!strcmp(argv[1], "-h") || !strcmp(argv[1], "--help")) {
		usage(stdout);
		return 0;
	}
	if (!strcmp(argv[1], "setup"))
		return cmd_setup(&c, argc - 1, argv + 1);
	if (!strcmp(argv[1], "consume"))
		return cmd_consume(&c, argc - 1, argv + 1);
	if (!strcmp(argv[1], "count"))
		return cmd_count(&c, argc - 1, argv + 1);
	if (!strcmp(argv[1], "dump"))
		return cmd_dump(&c, argc - 1, argv + 1);
	fprintf(stderr, PROG ": unknown command '%s' (setup, consume, count or dump)\n", argv[1]);
	usage(stderr);
	return 2;
}
