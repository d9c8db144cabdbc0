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
/* ppoll(), to wait for confirms with a sub-millisecond limit in --rate mode. */
#define _GNU_SOURCE
#include <errno.h>
#include <getopt.h>
#include <inttypes.h>
#include <poll.h>
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
#include <amqp_tcp_socket.h>

#include "payload.h"
#include "toolutil.h"

#define PROG "mab-blast"
#define HOST "127.0.0.1"
#define CHANNEL 1
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

/* Progress of the confirm stream. */
struct confirms {
	uint64_t published;     /* the last delivery tag used */
	uint64_t settled;       /* tags 1..settled are acked or nacked */
	uint64_t done;          /* tags acked or nacked, also beyond `settled` */
	unsigned char *seen;    /* one bit per tag: acked or nacked */
	uint64_t acked;
	uint64_t nacked;
	uint64_t returned;
	bool failed;            /* a broker or protocol error was reported */
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
	amqp_channel_open(conn, CHANNEL);
	if (tool_check_rpc(PROG, conn, "channel.open") != 0)
		goto fail;
	return conn;
fail:
	amqp_destroy_connection(conn);
	return NULL;
}

/*
 * Connects, logs in and opens the channel in confirm mode, declaring the
 * exchange, queue and binding when asked.  Returns NULL on failure
 * (reported).
 */
static amqp_connection_state_t blast_open(const struct opts *o)
{
	amqp_connection_state_t conn = o->tls_ca ? tls_open(o) :
		tool_amqp_open(PROG, (int)o->port, o->vhost, o->user, o->pass);
	struct timeval tv = { .tv_sec = 10 };

	if (!conn)
		return NULL;
	amqp_set_rpc_timeout(conn, &tv);
	if (o->declare) {
		amqp_exchange_declare(conn, CHANNEL, amqp_cstring_bytes(o->exchange),
				      amqp_cstring_bytes(o->xtype), 0, 1, 0, 0, amqp_empty_table);
		if (tool_check_rpc(PROG, conn, "exchange.declare") != 0)
			goto fail;
		amqp_queue_declare(conn, CHANNEL, amqp_cstring_bytes(o->queue), 0, 1, 0, 0,
				   amqp_empty_table);
		if (tool_check_rpc(PROG, conn, "queue.declare") != 0)
			goto fail;
		amqp_queue_bind(conn, CHANNEL, amqp_cstring_bytes(o->queue), amqp_cstring_bytes(o->exchange),
				amqp_cstring_bytes(o->binding), amqp_empty_table);
		if (tool_check_rpc(PROG, conn, "queue.bind") != 0)
			goto fail;
	}
	amqp_confirm_select(conn, CHANNEL);
	if (tool_check_rpc(PROG, conn, "confirm.select") != 0)
		goto fail;
	return conn;
fail:
	amqp_destroy_connection(conn);
	return NULL;
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
	if (ack)
		c->acked++;
	else
		c->nacked++;
}

/*
 * Settles `tag` (and every smaller tag with `multiple`).  Confirms may come
 * out of order (AMQP allows it, and RabbitMQ does it with 64 KiB persistent
 * messages, which go through its message store: a single confirm for a
 * tag while older ones are still open).  Returns -1 on a confirm for a tag
 * never published, or a second single confirm for one tag.
 */
static int settle(struct confirms *c, uint64_t tag, bool multiple, bool ack)
{
	if (tag == 0 || tag > c->published) {
		fprintf(stderr, PROG ": confirm for delivery tag %" PRIu64 " (published %" PRIu64
			", settled %" PRIu64 ")\n", tag, c->published, c->settled);
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

		if (c->returned++ == 0)
			fprintf(stderr, PROG ": message returned: %u %.*s (is the queue bound?)\n",
				m->reply_code, (int)m->reply_text.len, (const char *)m->reply_text.bytes);
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

/*
 * Handles every frame that can be had without waiting: those rabbitmq-c
 * already holds and those the kernel has received.  Returns -1 on error.
 */
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

/*
 * True when a frame can be read now without blocking, waiting up to
 * timeout_ns for one.  Over TLS too, poll() sees every record not yet
 * read: OpenSSL reads no further ahead than the record it decrypts.
 */
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
 * Publishes o->count messages keeping at most o->window unconfirmed, and
 * reads confirms between publishes whenever some are waiting.  Returns 0
 * once every message is settled (acked or nacked), with the time from the
 * first publish to the last confirm in *seconds; -1 on a broker error or
 * when o->timeout passes (reported).
 */
static int blast(const struct opts *o, amqp_connection_state_t conn, struct confirms *c,
		 double *seconds)
{
	amqp_basic_properties_t props = { 0 };
	char topic[TOPIC_BUF];
	size_t size = (size_t)o->size;
	bool premade = (uint64_t)o->count * size <= PREMADE_MAX;
	unsigned char *buf;
	int fd = amqp_get_sockfd(conn);
	double t0, deadline;
	int status = -1;
	/* Nanoseconds between two messages in --rate mode. */
	uint64_t step_ns = o->rate > 0 ? 1000000000u / (uint64_t)o->rate : 0;

	/*
	 * Making a payload costs about a microsecond, a few per cent of the
	 * per-message budget; the bridge never pays it, so neither should the
	 * ceiling when memory allows.
	 */
	buf = malloc(premade ? (size_t)o->count * size : size);
	if (!buf) {
		fprintf(stderr, PROG ": out of memory\n");
		return -1;
	}
	if (premade)
		for (uint64_t seq = 0; seq < (uint64_t)o->count; seq++)
			payload_make(seq, size, buf + seq * size);
	props._flags = AMQP_BASIC_DELIVERY_MODE_FLAG;
	props.delivery_mode = o->transient ? 1 : 2;

	t0 = tool_now_s();
	deadline = t0 + (double)o->timeout;
	while (c->settled < (uint64_t)o->count) {
		if (tool_now_s() >= deadline) {
			fprintf(stderr, PROG ": time limit of %lld s reached with %" PRIu64
				" of %lld confirmed\n", o->timeout, c->settled, o->count);
			goto out;
		}
		if (c->published < (uint64_t)o->count &&
		    c->published - c->done < (uint64_t)o->window) {
			uint64_t seq = c->published;
			unsigned char *body = premade ? buf + seq * size : buf;
			int rc;

			if (step_ns) {
				/* Not yet this message's turn: read confirms meanwhile. */
				double due = t0 + (double)(seq * step_ns) / 1e9, left = due - tool_now_s();

				if (left > 0) {
					uint64_t wait_ns = left > 0.1 ? 100000000u : (uint64_t)(left * 1e9);

					if (readable(conn, fd, wait_ns) && read_ready(conn, c) != 0)
						goto out;
					continue;
				}
			}
			payload_topic(o->pattern, (uint64_t)o->topics, seq, topic, sizeof(topic));
			payload_key(topic);
			if (!premade)
				payload_make(seq, size, body);
			if (o->stamp)
				payload_stamp(body, size, realtime_ns());
			rc = amqp_basic_publish(conn, CHANNEL, amqp_cstring_bytes(o->exchange),
						amqp_cstring_bytes(topic), 1, 0, &props,
						(amqp_bytes_t){ size, body });
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
	*seconds = tool_now_s() - t0;
	status = 0;
out:
	free(buf);
	return status;
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
	struct confirms c = { 0 };
	amqp_connection_state_t conn;
	char topic[TOPIC_BUF];
	double seconds = 0;
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
	/* One bit per delivery tag, 1..count. */
	c.seen = calloc((size_t)o.count / 8 + 1, 1);
	if (!c.seen) {
		fprintf(stderr, PROG ": out of memory\n");
		return 1;
	}
	conn = blast_open(&o);
	if (!conn) {
		free(c.seen);
		return 1;
	}
	if (blast(&o, conn, &c, &seconds) == 0) {
		printf("published=%" PRIu64 " confirmed=%" PRIu64 " nacked=%" PRIu64 " returned=%" PRIu64
		       " seconds=%.3f msgs_per_s=%.0f\n", c.published, c.acked, c.nacked, c.returned,
		       seconds, seconds > 0 ? (double)c.acked / seconds : 0.0);
		if (c.nacked == 0 && c.returned == 0)
			status = 0;
		amqp_channel_close(conn, CHANNEL, AMQP_REPLY_SUCCESS);
		amqp_connection_close(conn, AMQP_REPLY_SUCCESS);
	} else {
		printf("published=%" PRIu64 " confirmed=%" PRIu64 " nacked=%" PRIu64 " returned=%" PRIu64
		       " seconds=0 msgs_per_s=0\n", c.published, c.acked, c.nacked, c.returned);
	}
	amqp_destroy_connection(conn);
	free(c.seen);
	return status;
}
