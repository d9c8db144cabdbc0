/*
 * mab-cmd: publishes numbered test messages (see payload.h) to a RabbitMQ
 * exchange on 127.0.0.1, the AMQP end of the downlink tests.
 *
 * Every message is published with `mandatory` set on a channel in confirm
 * mode, with the routing key, basic properties and headers the options
 * ask for, so that a test can drive the bridge's queue-to-MQTT side with
 * exactly the deliveries it means to.  Up to WINDOW messages are left
 * unconfirmed; confirms are read between publishes (`multiple` honoured,
 * out-of-order single confirms too).  A basic.nack or a basic.return (an
 * unroutable message) is reported and counts as a failure.
 *
 * Prints one line:
 *   published P confirmed C nacked K returned R
 *
 * Exit status: 0 when all COUNT messages were confirmed by basic.ack and
 * none was returned; 1 on a nack, a return, a broker error or when the time
 * limit passed; 2 on a usage error.
 */
/* ppoll(), to wait for confirms with a sub-millisecond limit in --rate mode. */
#define _GNU_SOURCE
#include <errno.h>
#include <getopt.h>
#include <inttypes.h>
#include <poll.h>
#include <signal.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include <amqp.h>

#include "payload.h"
#include "toolutil.h"

#define PROG "mab-cmd"
#define HOST "127.0.0.1"
#define CHANNEL 1
#define SHORTSTR_MAX 255        /* routing keys and short-string properties */
#define TEXT_BUF 1024
#define MAX_HEADERS 32
#define REPORT_MAX 5            /* returns reported in detail */

enum hkind { H_STR, H_INT, H_BOOL, H_BYTES };

struct header {
	enum hkind kind;
	const char *name;       /* points into argv; name_len bytes */
	size_t name_len;
	const char *value;      /* H_STR: a pattern; H_BYTES: literal */
	long long i;            /* H_INT */
	bool b;                 /* H_BOOL */
};

struct opts {
	long long port;
	const char *vhost;
	const char *user;
	const char *pass;
	const char *exchange;   /* NULL until given; "" is the default exchange */
	const char *key;        /* pattern, seq % topics */
	long long topics;
	long long start;
	long long count;
	long long size;
	long long window;
	long long timeout;
	long long rate;
	const char *body;       /* literal body instead of a payload */
	const char *content_type;
	const char *correlation;        /* pattern, seq */
	const char *message_id;         /* pattern, seq */
	const char *reply_to;
	const char *expiration;
	bool transient;
	struct header headers[MAX_HEADERS];
	size_t nheaders;
};

/* Progress of the confirm stream; delivery tag t is seq start + t - 1. */
struct confirms {
	uint64_t published;     /* the last delivery tag used */
	uint64_t settled;       /* tags 1..settled are acked or nacked */
	uint64_t done;          /* tags acked or nacked, also beyond `settled` */
	unsigned char *seen;    /* one bit per tag: acked or nacked */
	uint64_t acked;
	uint64_t nacked;
	uint64_t returned;
	uint64_t start;
};

static void usage(FILE *out)
{
	fprintf(out,
		"usage: " PROG " -p PORT -x EXCHANGE -n COUNT [options]\n"
		"Publishes COUNT numbered messages (mandatory, with publisher confirms) and waits\n"
		"for every confirm; prints \"published P confirmed C nacked K returned R\".\n"
		"  -p, --port PORT           AMQP port on " HOST " (required)\n"
		"  -V, --vhost VHOST         virtual host (default \"/\")\n"
		"  -u, --user USER           (default guest)\n"
		"  -P, --password PASS       (default guest)\n"
		"  -x, --exchange NAME       exchange to publish to (required; \"\" is the default\n"
		"                            exchange)\n"
		"  -k, --key PATTERN         routing key: PATTERN with at most one %%d, which receives\n"
		"                            seq %% TOPICS; without one it is used as it is; %%%% for\n"
		"                            '%%' (default \"\")\n"
		"  -T, --topics K            %%d in --key and --header values is seq %% K (default 1)\n"
		"  -s, --start S             first sequence number (default 0)\n"
		"  -n, --count N             messages to publish (required, 1..100000000)\n"
		"  -S, --size BYTES          payload size (default 64, %d..%u)\n"
		"      --body TEXT           publish TEXT as the body of every message instead of a\n"
		"                            numbered payload\n"
		"  -r, --rate R              at most R messages per second (default 0: no limit)\n"
		"  -W, --window W            unconfirmed messages at most (default 1000)\n"
		"  -w, --timeout SECONDS     give up after this long (default 300)\n"
		"properties (none is set unless asked for, but delivery_mode):\n"
		"      --persistent          delivery_mode 2 (the default)\n"
		"      --transient           delivery_mode 1\n"
		"      --content-type CT     content_type\n"
		"      --correlation PATTERN correlation_id: PATTERN with at most one %%d, which\n"
		"                            receives seq\n"
		"      --message-id PATTERN  message_id, like --correlation\n"
		"      --reply-to TEXT       reply_to\n"
		"      --expiration TEXT     expiration (milliseconds, as a string; sent as it is)\n"
		"      --header NAME=VALUE   a string header; VALUE may hold one %%d, which receives\n"
		"                            seq %% TOPICS (%%%% for '%%'); repeatable, kept in order\n"
		"      --header-int NAME=N   a signed 64-bit integer header\n"
		"      --header-bool NAME=true|false\n"
		"                            a boolean header\n"
		"      --header-bytes NAME=VALUE\n"
		"                            a byte-array header (AMQP kind 'x'), VALUE as it is\n"
		"  -h, --help\n"
		"Exit status: 0 when every message was acked and none returned; 1 on a nack, a\n"
		"return, a broker error or the time limit; 2 on a usage error.\n",
		PAYLOAD_MIN, PAYLOAD_MAX);
}

/* SIGALRM: the broker stopped reading (a blocked connection) for too long. */
static void on_alarm(int sig)
{
	static const char msg[] = PROG ": time limit passed while writing to the broker\n";
	ssize_t n;

	(void)sig;
	n = write(STDERR_FILENO, msg, sizeof(msg) - 1);
	(void)n;
	_exit(1);
}

static bool is_seen(const struct confirms *c, uint64_t tag)
{
	return c->seen[tag >> 3] & (1u << (tag & 7));
}

/* Marks one tag acked or nacked (once). */
static void mark(struct confirms *c, uint64_t tag, bool ack)
{
	if (is_seen(c, tag))
		return;
	c->seen[tag >> 3] |= (unsigned char)(1u << (tag & 7));
	c->done++;
	if (ack) {
		c->acked++;
	} else {
		if (c->nacked < REPORT_MAX)
			fprintf(stderr, PROG ": seq %" PRIu64 " nacked by the broker\n", c->start + tag - 1);
		c->nacked++;
	}
}

/*
 * Settles `tag` (and every smaller open tag with `multiple`).  RabbitMQ
 * may confirm a single tag while older ones are still open.  Returns -1 on
 * a confirm for a tag never published, or a second single confirm.
 */
static int settle(struct confirms *c, uint64_t tag, bool multiple, bool ack)
{
	if (tag == 0 || tag > c->published) {
		fprintf(stderr, PROG ": confirm for delivery tag %" PRIu64 " (published %" PRIu64 ")\n",
			tag, c->published);
		return -1;
	}
	if (multiple) {
		for (uint64_t t = c->settled + 1; t <= tag; t++)
			mark(c, t, ack);
	} else {
		if (tag <= c->settled || is_seen(c, tag)) {
			fprintf(stderr, PROG ": second confirm for delivery tag %" PRIu64 "\n", tag);
			return -1;
		}
		mark(c, tag, ack);
	}
	while (c->settled < c->published && is_seen(c, c->settled + 1))
		c->settled++;
	return 0;
}

/* Handles one frame; returns -1 on a broker or protocol error (reported). */
static int on_frame(struct confirms *c, const amqp_frame_t *f)
{
	if (f->frame_type != AMQP_FRAME_METHOD)
		return 0;       /* the content of a basic.return */
	switch (f->payload.method.id) {
	case AMQP_BASIC_ACK_METHOD: {
		const amqp_basic_ack_t *m = f->payload.method.decoded;

		return settle(c, m->delivery_tag, m->multiple, true);
	}
	case AMQP_BASIC_NACK_METHOD: {
		const amqp_basic_nack_t *m = f->payload.method.decoded;

		return settle(c, m->delivery_tag, m->multiple, false);
	}
	case AMQP_BASIC_RETURN_METHOD: {
		const amqp_basic_return_t *m = f->payload.method.decoded;

		if (c->returned++ < REPORT_MAX)
			fprintf(stderr, PROG ": message returned: %u %.*s (exchange '%.*s', key '%.*s')\n",
				m->reply_code, (int)m->reply_text.len, (const char *)m->reply_text.bytes,
				(int)m->exchange.len, (const char *)m->exchange.bytes,
				(int)m->routing_key.len, (const char *)m->routing_key.bytes);
		return 0;
	}
	case AMQP_CONNECTION_BLOCKED_METHOD:
		fprintf(stderr, PROG ": broker blocked publishing\n");
		return 0;
	case AMQP_CONNECTION_UNBLOCKED_METHOD:
		fprintf(stderr, PROG ": broker unblocked publishing\n");
		return 0;
	case AMQP_CHANNEL_CLOSE_METHOD: {
		const amqp_channel_close_t *m = f->payload.method.decoded;

		fprintf(stderr, PROG ": broker closed the channel: %u %.*s\n", m->reply_code,
			(int)m->reply_text.len, (const char *)m->reply_text.bytes);
		return -1;
	}
	case AMQP_CONNECTION_CLOSE_METHOD: {
		const amqp_connection_close_t *m = f->payload.method.decoded;

		fprintf(stderr, PROG ": broker closed the connection: %u %.*s\n", m->reply_code,
			(int)m->reply_text.len, (const char *)m->reply_text.bytes);
		return -1;
	}
	default:
		return 0;
	}
}

/* Handles every frame that can be had without waiting.  Returns -1 on error. */
static int read_ready(amqp_connection_state_t conn, struct confirms *c)
{
	struct timeval zero = { 0, 0 };
	amqp_frame_t f;

	for (;;) {
		int rc = amqp_simple_wait_frame_noblock(conn, &f, &zero);

		if (rc == AMQP_STATUS_TIMEOUT)
			break;
		if (rc != AMQP_STATUS_OK) {
			fprintf(stderr, PROG ": reading confirms: %s\n", amqp_error_string2(rc));
			return -1;
		}
		if (on_frame(c, &f) != 0)
			return -1;
	}
	amqp_maybe_release_buffers(conn);
	return 0;
}

/* True when a frame can be read now, waiting up to timeout_ns for one. */
static bool readable(amqp_connection_state_t conn, int fd, uint64_t timeout_ns)
{
	struct pollfd p = { .fd = fd, .events = POLLIN };
	struct timespec ts = { .tv_sec = (time_t)(timeout_ns / 1000000000u),
			       .tv_nsec = (long)(timeout_ns % 1000000000u) };

	if (amqp_data_in_buffer(conn) || amqp_frames_enqueued(conn))
		return true;
	return ppoll(&p, 1, &ts, NULL) > 0;
}

/*
 * Fills the per-message parts of props and headers for `seq`: the
 * correlation and message ids and the string header values, written into
 * text (MAX_HEADERS + 2 buffers of TEXT_BUF).  Lengths were checked up front.
 */
static void fill_message(const struct opts *o, uint64_t seq, amqp_basic_properties_t *props,
			 amqp_table_entry_t *entries, char (*text)[TEXT_BUF])
{
	if (o->correlation) {
		payload_topic(o->correlation, 0, seq, text[0], TEXT_BUF);
		props->correlation_id = amqp_cstring_bytes(text[0]);
	}
	if (o->message_id) {
		payload_topic(o->message_id, 0, seq, text[1], TEXT_BUF);
		props->message_id = amqp_cstring_bytes(text[1]);
	}
	for (size_t i = 0; i < o->nheaders; i++) {
		if (o->headers[i].kind != H_STR)
			continue;
		payload_topic(o->headers[i].value, (uint64_t)o->topics, seq, text[2 + i], TEXT_BUF);
		entries[i].value.value.bytes = amqp_cstring_bytes(text[2 + i]);
	}
}

/*
 * Publishes o->count messages keeping at most o->window unconfirmed and
 * reads confirms whenever some are waiting.  Returns 0 once every message
 * is settled, -1 on a broker error or when o->timeout passes (reported).
 */
static int publish_all(const struct opts *o, amqp_connection_state_t conn, struct confirms *c)
{
	static char text[MAX_HEADERS + 2][TEXT_BUF];
	amqp_basic_properties_t props = { 0 };
	amqp_table_entry_t entries[MAX_HEADERS];
	char key[TEXT_BUF];
	size_t size = o->body ? strlen(o->body) : (size_t)o->size;
	unsigned char *buf = NULL;
	int fd = amqp_get_sockfd(conn);
	uint64_t step_ns = o->rate > 0 ? 1000000000u / (uint64_t)o->rate : 0;
	double t0, deadline;
	int status = -1;

	if (!o->body) {
		buf = malloc(size);
		if (!buf) {
			fprintf(stderr, PROG ": out of memory\n");
			return -1;
		}
	}
	props._flags = AMQP_BASIC_DELIVERY_MODE_FLAG;
	props.delivery_mode = o->transient ? 1 : 2;
	if (o->content_type) {
		props._flags |= AMQP_BASIC_CONTENT_TYPE_FLAG;
		props.content_type = amqp_cstring_bytes(o->content_type);
	}
	if (o->correlation)
		props._flags |= AMQP_BASIC_CORRELATION_ID_FLAG;
	if (o->message_id)
		props._flags |= AMQP_BASIC_MESSAGE_ID_FLAG;
	if (o->reply_to) {
		props._flags |= AMQP_BASIC_REPLY_TO_FLAG;
		props.reply_to = amqp_cstring_bytes(o->reply_to);
	}
	if (o->expiration) {
		props._flags |= AMQP_BASIC_EXPIRATION_FLAG;
		props.expiration = amqp_cstring_bytes(o->expiration);
	}
	for (size_t i = 0; i < o->nheaders; i++) {
		const struct header *h = &o->headers[i];

		entries[i].key = (amqp_bytes_t){ h->name_len, (void *)h->name };
		switch (h->kind) {
		case H_STR:
			entries[i].value.kind = AMQP_FIELD_KIND_UTF8;
			break;
		case H_INT:
			entries[i].value.kind = AMQP_FIELD_KIND_I64;
			entries[i].value.value.i64 = h->i;
			break;
		case H_BOOL:
			entries[i].value.kind = AMQP_FIELD_KIND_BOOLEAN;
			entries[i].value.value.boolean = h->b;
			break;
		case H_BYTES:
			entries[i].value.kind = AMQP_FIELD_KIND_BYTES;
			entries[i].value.value.bytes = amqp_cstring_bytes(h->value);
			break;
		}
	}
	if (o->nheaders) {
		props._flags |= AMQP_BASIC_HEADERS_FLAG;
		props.headers = (amqp_table_t){ (int)o->nheaders, entries };
	}

	t0 = tool_now_s();
	deadline = t0 + (double)o->timeout;
	while (c->settled < (uint64_t)o->count) {
		if (tool_now_s() >= deadline) {
			fprintf(stderr, PROG ": time limit of %lld s reached with %" PRIu64
				" of %lld settled\n", o->timeout, c->done, o->count);
			goto out;
		}
		if (c->published < (uint64_t)o->count &&
		    c->published - c->done < (uint64_t)o->window) {
			uint64_t seq = (uint64_t)o->start + c->published;
			amqp_bytes_t body;
			int rc;

			if (step_ns) {
				/* Not yet this message's turn: read confirms meanwhile. */
				double due = t0 + (double)(c->published * step_ns) / 1e9;
				double left = due - tool_now_s();

				if (left > 0) {
					uint64_t wait_ns = left > 0.1 ? 100000000u : (uint64_t)(left * 1e9);

					if (readable(conn, fd, wait_ns) && read_ready(conn, c) != 0)
						goto out;
					continue;
				}
			}
			payload_topic(o->key, (uint64_t)o->topics, seq, key, sizeof(key));
			fill_message(o, seq, &props, entries, text);
			if (o->body) {
				body = amqp_cstring_bytes(o->body);
			} else {
				payload_make(seq, size, buf);
				body = (amqp_bytes_t){ size, buf };
			}
			rc = amqp_basic_publish(conn, CHANNEL, amqp_cstring_bytes(o->exchange),
						amqp_cstring_bytes(key), 1, 0, &props, body);
			if (rc != AMQP_STATUS_OK) {
				fprintf(stderr, PROG ": publish seq %" PRIu64 ": %s\n", seq,
					amqp_error_string2(rc));
				goto out;
			}
			c->published++;
			if (readable(conn, fd, 0) && read_ready(conn, c) != 0)
				goto out;
			continue;
		}
		/* The window is full (or everything is out): wait for confirms. */
		if (readable(conn, fd, 100000000u) && read_ready(conn, c) != 0)
			goto out;
	}
	/* A basic.return comes before the ack of its message: none is pending. */
	status = 0;
out:
	free(buf);
	return status;
}

/*
 * Parses "NAME=VALUE" into h (name and value pointing into arg).  Returns
 * 0, or -1 after a message.
 */
static int parse_header(const char *opt, const char *arg, enum hkind kind, struct opts *o)
{
	const char *eq = strchr(arg, '=');
	struct header *h;
	long long v;

	if (o->nheaders == MAX_HEADERS) {
		fprintf(stderr, PROG ": at most %d headers\n", MAX_HEADERS);
		return -1;
	}
	if (!eq || eq == arg || (size_t)(eq - arg) > SHORTSTR_MAX) {
		fprintf(stderr, PROG ": %s: expected NAME=VALUE (NAME 1..%d bytes), got '%s'\n", opt,
			SHORTSTR_MAX, arg);
		return -1;
	}
	h = &o->headers[o->nheaders];
	*h = (struct header){ .kind = kind, .name = arg, .name_len = (size_t)(eq - arg), .value = eq + 1 };
	switch (kind) {
	case H_STR:
		if (payload_topic_check(h->value) != 0) {
			fprintf(stderr, PROG ": %s: bad value '%s' (one %%d at most, %%%% for '%%')\n",
				opt, h->value);
			return -1;
		}
		break;
	case H_INT:
		if (tool_parse_ll(PROG, h->value, INT64_MIN, INT64_MAX, opt, &v) != 0)
			return -1;
		h->i = v;
		break;
	case H_BOOL:
		if (strcmp(h->value, "true") == 0) {
			h->b = true;
		} else if (strcmp(h->value, "false") == 0) {
			h->b = false;
		} else {
			fprintf(stderr, PROG ": %s: expected true or false, got '%s'\n", opt, h->value);
			return -1;
		}
		break;
	case H_BYTES:
		break;
	}
	o->nheaders++;
	return 0;
}

/*
 * Checks a pattern option: at most one %d, and no expansion for a sequence
 * number in [lo, hi] (modulo `mod`, 0: none) longer than `max` bytes.
 * Returns 0, or -1 after a message.
 */
static int check_pattern(const char *opt, const char *pattern, uint64_t mod, uint64_t hi,
			 size_t max)
{
	char buf[TEXT_BUF];
	int n;

	if (payload_topic_check(pattern) != 0) {
		fprintf(stderr, PROG ": %s: bad pattern '%s' (one %%d at most, %%%% for '%%')\n", opt,
			pattern);
		return -1;
	}
	/* The longest expansion is the one with the largest number. */
	n = payload_topic(pattern, mod, mod ? (hi < mod ? hi : mod - 1) : hi, buf, sizeof(buf));
	if (n < 0 || (size_t)n > max) {
		fprintf(stderr, PROG ": %s: '%s' makes values over %zu bytes\n", opt, pattern, max);
		return -1;
	}
	return 0;
}

int main(int argc, char **argv)
{
	enum {
		O_BODY = 256, O_PERSISTENT, O_TRANSIENT, O_CONTENT_TYPE, O_CORRELATION, O_MESSAGE_ID,
		O_REPLY_TO, O_EXPIRATION, O_HEADER, O_HEADER_INT, O_HEADER_BOOL, O_HEADER_BYTES,
	};
	static const struct option lopts[] = {
		{ "port", required_argument, NULL, 'p' },
		{ "vhost", required_argument, NULL, 'V' },
		{ "user", required_argument, NULL, 'u' },
		{ "password", required_argument, NULL, 'P' },
		{ "exchange", required_argument, NULL, 'x' },
		{ "key", required_argument, NULL, 'k' },
		{ "topics", required_argument, NULL, 'T' },
		{ "start", required_argument, NULL, 's' },
		{ "count", required_argument, NULL, 'n' },
		{ "size", required_argument, NULL, 'S' },
		{ "rate", required_argument, NULL, 'r' },
		{ "window", required_argument, NULL, 'W' },
		{ "timeout", required_argument, NULL, 'w' },
		{ "body", required_argument, NULL, O_BODY },
		{ "persistent", no_argument, NULL, O_PERSISTENT },
		{ "transient", no_argument, NULL, O_TRANSIENT },
		{ "content-type", required_argument, NULL, O_CONTENT_TYPE },
		{ "correlation", required_argument, NULL, O_CORRELATION },
		{ "message-id", required_argument, NULL, O_MESSAGE_ID },
		{ "reply-to", required_argument, NULL, O_REPLY_TO },
		{ "expiration", required_argument, NULL, O_EXPIRATION },
		{ "header", required_argument, NULL, O_HEADER },
		{ "header-int", required_argument, NULL, O_HEADER_INT },
		{ "header-bool", required_argument, NULL, O_HEADER_BOOL },
		{ "header-bytes", required_argument, NULL, O_HEADER_BYTES },
		{ "help", no_argument, NULL, 'h' },
		{ NULL, 0, NULL, 0 },
	};
	static struct opts o = {
		.vhost = "/", .user = "guest", .pass = "guest", .key = "", .topics = 1,
		.size = 64, .window = 1000, .timeout = 300,
	};
	struct confirms c = { 0 };
	amqp_connection_state_t conn;
	struct timeval rpc_tv = { .tv_sec = 10 };
	uint64_t last;
	int ch, status = 1;

	while ((ch = getopt_long(argc, argv, "p:V:u:P:x:k:T:s:n:S:r:W:w:h", lopts, NULL)) != -1) {
		int bad = 0;

		switch (ch) {
		case 'p': bad = tool_parse_ll(PROG, optarg, 1, 65535, "--port", &o.port); break;
		case 'V': o.vhost = optarg; break;
		case 'u': o.user = optarg; break;
		case 'P': o.pass = optarg; break;
		case 'x': o.exchange = optarg; break;
		case 'k': o.key = optarg; break;
		case 'T': bad = tool_parse_ll(PROG, optarg, 1, 100000000, "--topics", &o.topics); break;
		case 's': bad = tool_parse_ll(PROG, optarg, 0, 1LL << 53, "--start", &o.start); break;
		case 'n': bad = tool_parse_ll(PROG, optarg, 1, 100000000, "--count", &o.count); break;
		case 'S': bad = tool_parse_ll(PROG, optarg, PAYLOAD_MIN, PAYLOAD_MAX, "--size", &o.size); break;
		case 'r': bad = tool_parse_ll(PROG, optarg, 0, 10000000, "--rate", &o.rate); break;
		case 'W': bad = tool_parse_ll(PROG, optarg, 1, 1000000, "--window", &o.window); break;
		case 'w': bad = tool_parse_ll(PROG, optarg, 1, 86400, "--timeout", &o.timeout); break;
		case O_BODY: o.body = optarg; break;
		case O_PERSISTENT: o.transient = false; break;
		case O_TRANSIENT: o.transient = true; break;
		case O_CONTENT_TYPE: o.content_type = optarg; break;
		case O_CORRELATION: o.correlation = optarg; break;
		case O_MESSAGE_ID: o.message_id = optarg; break;
		case O_REPLY_TO: o.reply_to = optarg; break;
		case O_EXPIRATION: o.expiration = optarg; break;
		case O_HEADER: bad = parse_header("--header", optarg, H_STR, &o); break;
		case O_HEADER_INT: bad = parse_header("--header-int", optarg, H_INT, &o); break;
		case O_HEADER_BOOL: bad = parse_header("--header-bool", optarg, H_BOOL, &o); break;
		case O_HEADER_BYTES: bad = parse_header("--header-bytes", optarg, H_BYTES, &o); break;
		case 'h': usage(stdout); return 0;
		default: bad = -1; break;
		}
		if (bad)
			return tool_try_help(PROG);
	}
	if (optind != argc)
		return tool_usage_error(PROG, "unexpected argument '%s'", argv[optind]);
	if (o.port == 0 || !o.exchange || o.count == 0)
		return tool_usage_error(PROG, "--port, --exchange and --count are required");
	last = (uint64_t)o.start + (uint64_t)o.count - 1;
	if (strlen(o.exchange) > SHORTSTR_MAX) {
		fprintf(stderr, PROG ": --exchange: at most %d bytes\n", SHORTSTR_MAX);
		return 2;
	}
	if (check_pattern("--key", o.key, (uint64_t)o.topics, last, SHORTSTR_MAX) != 0 ||
	    (o.correlation && check_pattern("--correlation", o.correlation, 0, last, SHORTSTR_MAX) != 0) ||
	    (o.message_id && check_pattern("--message-id", o.message_id, 0, last, SHORTSTR_MAX) != 0))
		return 2;
	for (size_t i = 0; i < o.nheaders; i++)
		if (o.headers[i].kind == H_STR &&
		    check_pattern("--header", o.headers[i].value, (uint64_t)o.topics, last, TEXT_BUF - 1) != 0)
			return 2;
	if ((o.content_type && strlen(o.content_type) > SHORTSTR_MAX) ||
	    (o.reply_to && strlen(o.reply_to) > SHORTSTR_MAX) ||
	    (o.expiration && strlen(o.expiration) > SHORTSTR_MAX)) {
		fprintf(stderr, PROG ": --content-type, --reply-to and --expiration are at most %d bytes\n",
			SHORTSTR_MAX);
		return 2;
	}

	/*
	 * A broker that stops reading (a memory alarm blocks publishers) would
	 * leave rabbitmq-c waiting in send() with no time limit.
	 */
	signal(SIGALRM, on_alarm);
	alarm((unsigned)o.timeout + 30);
	c.start = (uint64_t)o.start;
	c.seen = calloc((size_t)o.count / 8 + 1, 1);
	if (!c.seen) {
		fprintf(stderr, PROG ": out of memory\n");
		return 1;
	}
	conn = tool_amqp_open(PROG, (int)o.port, o.vhost, o.user, o.pass);
	if (!conn) {
		free(c.seen);
		return 1;
	}
	amqp_set_rpc_timeout(conn, &rpc_tv);
	amqp_confirm_select(conn, CHANNEL);
	if (tool_check_rpc(PROG, conn, "confirm.select") != 0) {
		amqp_destroy_connection(conn);
		free(c.seen);
		return 1;
	}
	if (publish_all(&o, conn, &c) == 0) {
		if (c.acked == (uint64_t)o.count && c.nacked == 0 && c.returned == 0)
			status = 0;
		amqp_channel_close(conn, CHANNEL, AMQP_REPLY_SUCCESS);
		amqp_connection_close(conn, AMQP_REPLY_SUCCESS);
	}
	printf("published %" PRIu64 " confirmed %" PRIu64 " nacked %" PRIu64 " returned %" PRIu64 "\n",
	       c.published, c.acked, c.nacked, c.returned);
	amqp_destroy_connection(conn);
	free(c.seen);
	return status;
}
