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
#include <getopt.h>
#include <inttypes.h>
#include <signal.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <amqp.h>

#include "apub.h"
#include "payload.h"
#include "toolutil.h"

#define PROG "mab-cmd"
#define HOST "127.0.0.1"
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

/* What publishing needs beyond the options: the parts made once. */
struct cmd {
	const struct opts *o;
	amqp_basic_properties_t props;
	amqp_table_entry_t entries[MAX_HEADERS];
	char text[MAX_HEADERS + 2][TEXT_BUF];   /* see fill_message */
	size_t size;
	unsigned char *buf;     /* the payload; NULL with --body */
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

/* The first few nacks and returns are named; the summary line counts them all. */
static void on_nack(void *arg, uint64_t i, uint64_t nth)
{
	const struct cmd *m = arg;

	if (nth < REPORT_MAX)
		fprintf(stderr, PROG ": seq %" PRIu64 " nacked by the broker\n", (uint64_t)m->o->start + i);
}

static void on_return(void *arg, const amqp_basic_return_t *r, uint64_t nth)
{
	(void)arg;
	if (nth < REPORT_MAX)
		fprintf(stderr, PROG ": message returned: %u %.*s (exchange '%.*s', key '%.*s')\n",
			r->reply_code, (int)r->reply_text.len, (const char *)r->reply_text.bytes,
			(int)r->exchange.len, (const char *)r->exchange.bytes,
			(int)r->routing_key.len, (const char *)r->routing_key.bytes);
}

/*
 * Makes what every message shares: the payload buffer, and the properties
 * and headers the options ask for.  Returns 0, or -1 after a message.
 */
static int cmd_init(struct cmd *m, const struct opts *o)
{
	amqp_basic_properties_t *props = &m->props;

	m->o = o;
	m->size = o->body ? strlen(o->body) : (size_t)o->size;
	if (!o->body) {
		m->buf = malloc(m->size);
		if (!m->buf) {
			fprintf(stderr, PROG ": out of memory\n");
			return -1;
		}
	}
	props->_flags = AMQP_BASIC_DELIVERY_MODE_FLAG;
	props->delivery_mode = o->transient ? 1 : 2;
	if (o->content_type) {
		props->_flags |= AMQP_BASIC_CONTENT_TYPE_FLAG;
		props->content_type = amqp_cstring_bytes(o->content_type);
	}
	if (o->correlation)
		props->_flags |= AMQP_BASIC_CORRELATION_ID_FLAG;
	if (o->message_id)
		props->_flags |= AMQP_BASIC_MESSAGE_ID_FLAG;
	if (o->reply_to) {
		props->_flags |= AMQP_BASIC_REPLY_TO_FLAG;
		props->reply_to = amqp_cstring_bytes(o->reply_to);
	}
	if (o->expiration) {
		props->_flags |= AMQP_BASIC_EXPIRATION_FLAG;
		props->expiration = amqp_cstring_bytes(o->expiration);
	}
	for (size_t i = 0; i < o->nheaders; i++) {
		const struct header *h = &o->headers[i];
		amqp_table_entry_t *e = &m->entries[i];

		e->key = (amqp_bytes_t){ h->name_len, (void *)h->name };
		switch (h->kind) {
		case H_STR:
			e->value.kind = AMQP_FIELD_KIND_UTF8;
			break;
		case H_INT:
			e->value.kind = AMQP_FIELD_KIND_I64;
			e->value.value.i64 = h->i;
			break;
		case H_BOOL:
			e->value.kind = AMQP_FIELD_KIND_BOOLEAN;
			e->value.value.boolean = h->b;
			break;
		case H_BYTES:
			e->value.kind = AMQP_FIELD_KIND_BYTES;
			e->value.value.bytes = amqp_cstring_bytes(h->value);
			break;
		}
	}
	if (o->nheaders) {
		props->_flags |= AMQP_BASIC_HEADERS_FLAG;
		props->headers = (amqp_table_t){ (int)o->nheaders, m->entries };
	}
	return 0;
}

/*
 * Fills the per-message parts of the properties and headers for `seq`: the
 * correlation and message ids and the string header values, written into
 * m->text.  Lengths were checked up front.
 */
static void fill_message(struct cmd *m, uint64_t seq)
{
	const struct opts *o = m->o;

	if (o->correlation) {
		payload_topic(o->correlation, 0, seq, m->text[0], TEXT_BUF);
		m->props.correlation_id = amqp_cstring_bytes(m->text[0]);
	}
	if (o->message_id) {
		payload_topic(o->message_id, 0, seq, m->text[1], TEXT_BUF);
		m->props.message_id = amqp_cstring_bytes(m->text[1]);
	}
	for (size_t i = 0; i < o->nheaders; i++) {
		if (o->headers[i].kind != H_STR)
			continue;
		payload_topic(o->headers[i].value, (uint64_t)o->topics, seq, m->text[2 + i], TEXT_BUF);
		m->entries[i].value.value.bytes = amqp_cstring_bytes(m->text[2 + i]);
	}
}

/* Publishes message i, sequence number start + i. */
static int publish_one(void *arg, struct apub *p, uint64_t i)
{
	struct cmd *m = arg;
	const struct opts *o = m->o;
	uint64_t seq = (uint64_t)o->start + i;
	char key[TEXT_BUF];
	amqp_bytes_t body;

	payload_topic(o->key, (uint64_t)o->topics, seq, key, sizeof(key));
	fill_message(m, seq);
	if (o->body) {
		body = amqp_cstring_bytes(o->body);
	} else {
		payload_make(seq, m->size, m->buf);
		body = (amqp_bytes_t){ m->size, m->buf };
	}
	return apub_publish(p, seq, o->exchange, key, &m->props, body);
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
	static const struct apub_ops ops = {
		.publish = publish_one, .nacked = on_nack, .returned = on_return,
	};
	/* Static: the per-message text buffers are some 34 KiB. */
	static struct cmd m;
	struct apub p;
	amqp_connection_state_t conn;
	enum apub_status run;
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
	if (cmd_init(&m, &o) != 0)
		return 1;
	conn = tool_amqp_open(PROG, (int)o.port, o.vhost, o.user, o.pass);
	if (!conn || apub_init(&p, PROG, conn, (uint64_t)o.count, &ops, &m) != 0) {
		free(m.buf);
		return 1;
	}
	run = apub_run(&p, (uint64_t)o.window, (uint64_t)o.rate, (double)o.timeout);
	if (run == APUB_TIMED_OUT)
		fprintf(stderr, PROG ": time limit of %lld s reached with %" PRIu64 " of %lld settled\n",
			o.timeout, p.done, o.count);
	if (run == APUB_DONE && p.acked == (uint64_t)o.count && p.nacked == 0 && p.returned == 0)
		status = 0;
	printf("published %" PRIu64 " confirmed %" PRIu64 " nacked %" PRIu64 " returned %" PRIu64 "\n",
	       p.published, p.acked, p.nacked, p.returned);
	apub_fini(&p, run == APUB_DONE);
	free(m.buf);
	return status;
}
