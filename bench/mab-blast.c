/*
 * mab-blast: RabbitMQ's own publish-with-confirms ceiling, the yardstick for
 * the bridge's throughput.
 *
 * Publishes COUNT persistent messages (payload.h format, routing key made
 * from the same topic pattern as the test tools) with `mandatory` set to an
 * exchange that routes them to a durable queue, on one channel in confirm
 * mode, keeping at most WINDOW messages unconfirmed: the same work the
 * bridge asks of RabbitMQ per message, with no MQTT side.  Confirms are
 * read as they arrive, without waiting, between publishes (`multiple`
 * honoured); only a full window makes it wait, in poll(), for the socket.
 *
 * Unless --no-declare is given it first declares the exchange (durable),
 * the queue (durable) and the binding.
 *
 * With --rate it publishes at that many messages per second instead of as
 * fast as it can, and with --stamp each payload carries its send time, so
 * that mab-sink --latency measures RabbitMQ's own publish-to-consume
 * latency: the yardstick for the bridge's latency at the same rate.
 * Confirms are read while it waits for the next message's turn.
 *
 * With --tls-ca it connects over TLS, verifying the broker's certificate
 * against that CA and its address against 127.0.0.1, and presents the client
 * certificate of --tls-cert / --tls-key when given: the ceiling for a
 * bridge that talks TLS to RabbitMQ pays for TLS too.
 *
 * Prints one line:
 *   published=N confirmed=C nacked=K returned=R seconds=S msgs_per_s=X
 *
 * Exit status: 0 when every message was confirmed by basic.ack (none
 * nacked or returned) within the time limit; 1 on a broker error, a nack, a
 * return or a time-out; 2 on a usage error.
 */
#include <getopt.h>
#include <inttypes.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include <amqp.h>
#include <amqp_ssl_socket.h>
#include <openssl/ssl.h>
#include <openssl/x509_vfy.h>

#include "apub.h"
#include "payload.h"
#include "toolutil.h"

#define PROG "mab-blast"
#define HOST "127.0.0.1"
#define TOPIC_BUF 1024
/* Payloads are made before the clock starts when they fit in this much. */
#define PREMADE_MAX (64u * 1024 * 1024)

struct opts {
	long long port;
	const char *vhost;
	const char *user;
	const char *pass;
	const char *exchange;
	const char *xtype;
	const char *queue;
	const char *binding;
	const char *pattern;
	long long topics;
	long long count;
	long long size;
	long long window;
	long long timeout;
	long long rate;         /* messages per second; 0: as fast as possible */
	bool declare;
	bool transient;
	bool stamp;
	const char *tls_ca;     /* NULL: plain TCP */
	const char *tls_cert;
	const char *tls_key;
};

static uint64_t realtime_ns(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_REALTIME, &ts);
	return (uint64_t)ts.tv_sec * 1000000000u + (uint64_t)ts.tv_nsec;
}

/* What publishing needs beyond the options. */
struct blast {
	const struct opts *o;
	amqp_basic_properties_t props;
	size_t size;
	bool premade;           /* buf holds every payload, not just one */
	unsigned char *buf;
};

static void usage(FILE *out)
{
	fprintf(out,
		"usage: " PROG " -p PORT -n COUNT [options]\n"
		"Publishes COUNT persistent messages with publisher confirms and prints msgs/s.\n"
		"  -p, --port PORT         AMQP port on " HOST " (required)\n"
		"  -n, --count N           messages to publish (required, 1..100000000)\n"
		"  -V, --vhost VHOST       virtual host (default \"/\")\n"
		"  -u, --user USER         (default guest)\n"
		"  -P, --password PASS     (default guest)\n"
		"  -x, --exchange NAME     exchange to publish to (default telemetry)\n"
		"      --exchange-type T   topic (default), direct, fanout or headers\n"
		"  -q, --queue NAME        durable queue bound to the exchange (default blast)\n"
		"  -k, --bind KEY          binding key (default \"#\")\n"
		"      --no-declare        use the exchange, queue and binding as they are\n"
		"  -t, --topic PATTERN     topic pattern; the routing key is the topic with '/'\n"
		"                          turned into '.' (default \"fleet/dev%%d/temp\")\n"
		"  -T, --topics K          distinct topics: %%d is seq %% K (default 1)\n"
		"  -z, --size BYTES        payload size (default 100, %d..%u)\n"
		"  -W, --window W          unconfirmed messages at most (default 1000, 1..1000000)\n"
		"      --transient         delivery_mode 1 instead of 2 (persistent)\n"
		"  -r, --rate R            publish R messages per second (default 0: as fast as\n"
		"                          possible)\n"
		"  -S, --stamp             carry the send time in each payload (size >= %d), for\n"
		"                          mab-sink --latency\n"
		"      --tls-ca FILE       connect over TLS, verifying the broker against this CA\n"
		"      --tls-cert FILE     with --tls-ca: the client certificate to present\n"
		"      --tls-key FILE      with --tls-ca: its private key\n"
		"  -w, --timeout SECONDS   give up after this long (default 300)\n"
		"  -h, --help\n",
		PAYLOAD_MIN, PAYLOAD_MAX, PAYLOAD_MIN_STAMPED);
}

/*
 * Like tool_amqp_open, over TLS: connects to 127.0.0.1:PORT (10 s limit)
 * verifying the broker's certificate (chain, and 127.0.0.1 among its
 * addresses), logs in without heartbeats and opens channel 1.  NULL on
 * failure (reported).
 */
static amqp_connection_state_t tls_open(const struct opts *o)
{
	amqp_connection_state_t conn = amqp_new_connection();
	struct timeval tv = { .tv_sec = 10 };
	amqp_socket_t *sock;
	amqp_rpc_reply_t r;
	char buf[512];
	int rc;

	if (!conn) {
		fprintf(stderr, PROG ": out of memory\n");
		return NULL;
	}
	sock = amqp_ssl_socket_new(conn);
	if (!sock) {
		fprintf(stderr, PROG ": cannot create a TLS socket\n");
		goto fail;
	}
	/*
	 * rabbitmq-c 0.11 matches the host only against DNS names, and the
	 * broker is reached by address; OpenSSL checks the address (an IP
	 * subjectAltName) as part of the chain instead, which verify_peer
	 * makes fatal.
	 */
	amqp_ssl_socket_set_verify_peer(sock, 1);
	amqp_ssl_socket_set_verify_hostname(sock, 0);
	if (!X509_VERIFY_PARAM_set1_ip_asc(SSL_CTX_get0_param(amqp_ssl_socket_get_context(sock)), HOST)) {
		fprintf(stderr, PROG ": cannot ask OpenSSL to verify the address " HOST "\n");
		goto fail;
	}
	rc = amqp_ssl_socket_set_cacert(sock, o->tls_ca);
	if (rc != AMQP_STATUS_OK) {
		fprintf(stderr, PROG ": --tls-ca %s: %s\n", o->tls_ca, amqp_error_string2(rc));
		goto fail;
	}
	if (o->tls_cert) {
		rc = amqp_ssl_socket_set_key(sock, o->tls_cert, o->tls_key);
		if (rc != AMQP_STATUS_OK) {
			fprintf(stderr, PROG ": --tls-cert %s / --tls-key %s: %s\n", o->tls_cert,
				o->tls_key, amqp_error_string2(rc));
			goto fail;
		}
	}
	rc = amqp_socket_open_noblock(sock, HOST, (int)o->port, &tv);
	if (rc != AMQP_STATUS_OK) {
		fprintf(stderr, PROG ": TLS connect to " HOST ":%lld: %s\n", o->port, amqp_error_string2(rc));
		goto fail;
	}
	r = amqp_login(conn, o->vhost, 0, 131072, 0, AMQP_SASL_METHOD_PLAIN, o->user, o->pass);
	if (r.reply_type != AMQP_RESPONSE_NORMAL) {
		fprintf(stderr, PROG ": login to vhost '%s': %s\n", o->vhost,
			tool_reply_text(r, buf, sizeof(buf)));
		goto fail;
	}
	amqp_channel_open(conn, APUB_CHANNEL);
	if (tool_check_rpc(PROG, conn, "channel.open") != 0)
		goto fail;
	return conn;
fail:
	amqp_destroy_connection(conn);
	return NULL;
}

/*
 * Makes the payloads (all of them when they fit in PREMADE_MAX) and the
 * properties.  Returns 0, or -1 after a message.
 */
static int blast_init(struct blast *b)
{
	const struct opts *o = b->o;

	b->size = (size_t)o->size;
	/*
	 * Making a payload costs about a microsecond, a few per cent of the
	 * per-message budget; the bridge never pays it, so neither should the
	 * ceiling when memory allows.
	 */
	b->premade = (uint64_t)o->count * b->size <= PREMADE_MAX;
	b->buf = malloc(b->premade ? (size_t)o->count * b->size : b->size);
	if (!b->buf) {
		fprintf(stderr, PROG ": out of memory\n");
		return -1;
	}
	if (b->premade)
		for (uint64_t seq = 0; seq < (uint64_t)o->count; seq++)
			payload_make(seq, b->size, b->buf + seq * b->size);
	b->props._flags = AMQP_BASIC_DELIVERY_MODE_FLAG;
	b->props.delivery_mode = o->transient ? 1 : 2;
	return 0;
}

/* Publishes message seq; the clock for --stamp is read as late as can be. */
static int publish_one(void *arg, struct apub *p, uint64_t seq)
{
	struct blast *b = arg;
	const struct opts *o = b->o;
	unsigned char *body = b->premade ? b->buf + seq * b->size : b->buf;
	char topic[TOPIC_BUF];

	payload_topic(o->pattern, (uint64_t)o->topics, seq, topic, sizeof(topic));
	payload_key(topic);
	if (!b->premade)
		payload_make(seq, b->size, body);
	if (o->stamp)
		payload_stamp(body, b->size, realtime_ns());
	return apub_publish(p, seq, o->exchange, topic, &b->props, (amqp_bytes_t){ b->size, body });
}

/* One return is enough to show a missing binding; the summary line counts them all. */
static void on_return(void *arg, const amqp_basic_return_t *m, uint64_t nth)
{
	(void)arg;
	if (nth == 0)
		fprintf(stderr, PROG ": message returned: %u %.*s (is the queue bound?)\n",
			m->reply_code, (int)m->reply_text.len, (const char *)m->reply_text.bytes);
}

/*
 * Connects, logs in and puts the channel in confirm mode for p, declaring
 * the exchange, queue and binding when asked.  Returns 0, or -1 after a
 * message.
 */
static int blast_open(struct apub *p, struct blast *b)
{
	static const struct apub_ops ops = { .publish = publish_one, .returned = on_return };
	const struct opts *o = b->o;
	amqp_connection_state_t conn = o->tls_ca ? tls_open(o) :
		tool_amqp_open(PROG, (int)o->port, o->vhost, o->user, o->pass);

	if (!conn || apub_init(p, PROG, conn, (uint64_t)o->count, &ops, b) != 0)
		return -1;
	if (o->declare) {
		amqp_exchange_declare(conn, APUB_CHANNEL, amqp_cstring_bytes(o->exchange),
				      amqp_cstring_bytes(o->xtype), 0, 1, 0, 0, amqp_empty_table);
		if (tool_check_rpc(PROG, conn, "exchange.declare") != 0)
			goto fail;
		amqp_queue_declare(conn, APUB_CHANNEL, amqp_cstring_bytes(o->queue), 0, 1, 0, 0,
				   amqp_empty_table);
		if (tool_check_rpc(PROG, conn, "queue.declare") != 0)
			goto fail;
		amqp_queue_bind(conn, APUB_CHANNEL, amqp_cstring_bytes(o->queue),
				amqp_cstring_bytes(o->exchange), amqp_cstring_bytes(o->binding),
				amqp_empty_table);
		if (tool_check_rpc(PROG, conn, "queue.bind") != 0)
			goto fail;
	}
	return 0;
fail:
	apub_fini(p, false);
	return -1;
}

int main(int argc, char **argv)
{
	static const struct option lopts[] = {
		{ "port", required_argument, NULL, 'p' },
		{ "count", required_argument, NULL, 'n' },
		{ "vhost", required_argument, NULL, 'V' },
		{ "user", required_argument, NULL, 'u' },
		{ "password", required_argument, NULL, 'P' },
		{ "exchange", required_argument, NULL, 'x' },
		{ "exchange-type", required_argument, NULL, 'E' },
		{ "queue", required_argument, NULL, 'q' },
		{ "bind", required_argument, NULL, 'k' },
		{ "no-declare", no_argument, NULL, 'N' },
		{ "topic", required_argument, NULL, 't' },
		{ "topics", required_argument, NULL, 'T' },
		{ "size", required_argument, NULL, 'z' },
		{ "window", required_argument, NULL, 'W' },
		{ "transient", no_argument, NULL, 'R' },
		{ "rate", required_argument, NULL, 'r' },
		{ "stamp", no_argument, NULL, 'S' },
		{ "tls-ca", required_argument, NULL, 'C' },
		{ "tls-cert", required_argument, NULL, 'c' },
		{ "tls-key", required_argument, NULL, 'K' },
		{ "timeout", required_argument, NULL, 'w' },
		{ "help", no_argument, NULL, 'h' },
		{ NULL, 0, NULL, 0 },
	};
	struct opts o = {
		.vhost = "/", .user = "guest", .pass = "guest",
		.exchange = "telemetry", .xtype = "topic", .queue = "blast", .binding = "#",
		.pattern = "fleet/dev%d/temp", .topics = 1, .size = 100, .window = 1000,
		.timeout = 300, .declare = true,
	};
	struct blast b = { .o = &o };
	struct apub p;
	enum apub_status run = APUB_FAILED;
	char topic[TOPIC_BUF];
	double t0, seconds = 0;
	int ch, status = 1;

	while ((ch = getopt_long(argc, argv, "p:n:V:u:P:x:q:k:t:T:z:W:w:r:Sh", lopts, NULL)) != -1) {
		int bad = 0;

		switch (ch) {
		case 'p': bad = tool_parse_ll(PROG, optarg, 1, 65535, "--port", &o.port); break;
		case 'n': bad = tool_parse_ll(PROG, optarg, 1, 100000000, "--count", &o.count); break;
		case 'V': o.vhost = optarg; break;
		case 'u': o.user = optarg; break;
		case 'P': o.pass = optarg; break;
		case 'x': o.exchange = optarg; break;
		case 'E': o.xtype = optarg; break;
		case 'q': o.queue = optarg; break;
		case 'k': o.binding = optarg; break;
		case 'N': o.declare = false; break;
		case 't': o.pattern = optarg; break;
		case 'T': bad = tool_parse_ll(PROG, optarg, 1, 100000000, "--topics", &o.topics); break;
		case 'z': bad = tool_parse_ll(PROG, optarg, PAYLOAD_MIN, PAYLOAD_MAX, "--size", &o.size); break;
		case 'W': bad = tool_parse_ll(PROG, optarg, 1, 1000000, "--window", &o.window); break;
		case 'R': o.transient = true; break;
		case 'r': bad = tool_parse_ll(PROG, optarg, 0, 10000000, "--rate", &o.rate); break;
		case 'S': o.stamp = true; break;
		case 'C': o.tls_ca = optarg; break;
		case 'c': o.tls_cert = optarg; break;
		case 'K': o.tls_key = optarg; break;
		case 'w': bad = tool_parse_ll(PROG, optarg, 1, 86400, "--timeout", &o.timeout); break;
		case 'h': usage(stdout); return 0;
		default: bad = -1; break;
		}
		if (bad)
			return tool_try_help(PROG);
	}
	if (optind != argc)
		return tool_usage_error(PROG, "unexpected argument '%s'", argv[optind]);
	if (o.port == 0 || o.count == 0)
		return tool_usage_error(PROG, "--port and --count are required");
	if (o.stamp && o.size < PAYLOAD_MIN_STAMPED) {
		fprintf(stderr, PROG ": --stamp needs --size >= %d\n", PAYLOAD_MIN_STAMPED);
		return 2;
	}
	if ((o.tls_cert || o.tls_key) && !(o.tls_ca && o.tls_cert && o.tls_key)) {
		fprintf(stderr, PROG ": --tls-cert and --tls-key go together, and with --tls-ca\n");
		return 2;
	}
	if (strcmp(o.xtype, "topic") && strcmp(o.xtype, "direct") && strcmp(o.xtype, "fanout") &&
	    strcmp(o.xtype, "headers")) {
		fprintf(stderr, PROG ": --exchange-type: unknown type '%s'\n", o.xtype);
		return 2;
	}
	if (strlen(o.exchange) > 255 || strlen(o.queue) > 255 || strlen(o.binding) > 255) {
		fprintf(stderr, PROG ": exchange, queue and binding key are at most 255 bytes\n");
		return 2;
	}
	/* Every routing key must be a valid AMQP short string. */
	if (payload_topic_check(o.pattern) != 0 ||
	    payload_topic(o.pattern, (uint64_t)o.topics, (uint64_t)o.topics - 1, topic, 256) < 1) {
		fprintf(stderr, PROG ": --topic: bad pattern '%s' (one %%d at most, %%%% for '%%', "
			"at most 255 bytes)\n", o.pattern);
		return 2;
	}

	/*
	 * A broker that stops reading (a memory alarm blocks publishers) would
	 * leave rabbitmq-c waiting in send() with no time limit.
	 */
	alarm((unsigned)o.timeout + 30);
	if (blast_open(&p, &b) != 0)
		return 1;
	if (blast_init(&b) == 0) {
		t0 = tool_now_s();
		run = apub_run(&p, (uint64_t)o.window, (uint64_t)o.rate, (double)o.timeout);
		seconds = tool_now_s() - t0;
	}
	if (run == APUB_TIMED_OUT)
		fprintf(stderr, PROG ": time limit of %lld s reached with %" PRIu64 " of %lld confirmed\n",
			o.timeout, p.settled, o.count);
	if (run == APUB_DONE) {
		printf("published=%" PRIu64 " confirmed=%" PRIu64 " nacked=%" PRIu64 " returned=%" PRIu64
		       " seconds=%.3f msgs_per_s=%.0f\n", p.published, p.acked, p.nacked, p.returned,
		       seconds, seconds > 0 ? (double)p.acked / seconds : 0.0);
		if (p.nacked == 0 && p.returned == 0)
			status = 0;
	} else {
		printf("published=%" PRIu64 " confirmed=%" PRIu64 " nacked=%" PRIu64 " returned=%" PRIu64
		       " seconds=0 msgs_per_s=0\n", p.published, p.acked, p.nacked, p.returned);
	}
	apub_fini(&p, run == APUB_DONE);
	free(b.buf);
	return status;
}
