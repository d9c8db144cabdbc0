/*
 * mab-recv: the MQTT end of the downlink tests.  Subscribes on a broker on
 * 127.0.0.1 and checks what arrives: every payload byte for byte (see
 * payload.h), every topic against the pattern the publisher used, and
 * which sequence numbers came, how often.  Prints one summary line:
 *   received=R distinct=D duplicates=U missing=M corrupt=C wrong_topic=W
 * (followed by " unexpected=X" when sequence numbers outside START..
 * START+COUNT-1 arrived).
 *
 * With --dump it first prints each message as a block of stable text lines
 * (topic, QoS, retain, MQTT 5 properties, payload), for a test to compare
 * with what it expects.
 *
 * With --no-ack it never acknowledges a message: it drives the socket
 * itself and stops writing once its SUBSCRIBE has gone out, so the PUBACKs
 * libmosquitto queues are never sent.
 *
 * It stops when all COUNT messages have arrived (after a second more, to
 * catch duplicates), when nothing new arrived for IDLE seconds, or at the
 * time limit.
 *
 * Exit status: 0 when nothing is missing (with --count), corrupt, on a
 * wrong topic or unexpected, and no broker error happened; 1 otherwise;
 * 2 on a usage error.
 */
#include <errno.h>
#include <fcntl.h>
#include <getopt.h>
#include <inttypes.h>
#include <poll.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include <mosquitto.h>
#include <mqtt_protocol.h>

#include "payload.h"
#include "toolutil.h"

#define PROG "mab-recv"
#define HOST "127.0.0.1"
#define TOPIC_BUF 65536
#define MAX_FILTERS 16
#define REPORT_MAX 5            /* detailed complaints of each kind */
#define GRACE_S 1.0             /* after the last expected message, for duplicates */
/* A --no-ack client sends no PINGREQ; the broker waits 1.5 times this. */
#define NOACK_KEEPALIVE 3600

/* A set of sequence numbers: open addressing, UINT64_MAX marks a free slot. */
struct seqset {
	uint64_t *slot;
	size_t cap;             /* a power of two */
	size_t n;
	bool has_max;           /* UINT64_MAX itself is in the set */
};

struct recv_state {
	/* options */
	uint64_t start, count;
	const char *pattern;    /* expected topic, NULL: not checked */
	bool pattern_fixed;     /* it has no %d: one topic for every seq */
	uint64_t topics;
	bool any_payload;
	bool dump;
	bool no_ack;
	bool v5;
	char *filters[MAX_FILTERS];
	int nfilters;
	int qos;
	int sub_options;
	const char *ready_file;
	/* connection */
	bool connected;
	int connack;            /* -1 until the first CONNACK */
	bool subscribed;        /* the first SUBACK came (or none is needed) */
	bool sub_sent;          /* --no-ack: the SUBSCRIBE is queued */
	int sub_mid;
	bool broker_error;
	/* tally */
	struct seqset seen;
	uint64_t received, distinct, duplicates, corrupt, wrong_topic, unexpected;
	bool times;             /* --times: print when the first and the last came */
	double t_first;         /* the first new message, else 0 */
	double t_last;          /* the last new message (or the SUBACK) */
	double t_all;           /* when all COUNT had arrived, else 0 */
};

static void usage(FILE *out)
{
	fprintf(out,
		"usage: " PROG " -p PORT -t FILTER... [options]\n"
		"Subscribes and checks the numbered messages that arrive; prints\n"
		"\"received=R distinct=D duplicates=U missing=M corrupt=C wrong_topic=W\".\n"
		"  -p, --port PORT          MQTT broker port on " HOST " (required)\n"
		"  -t, --filter FILTER      topic filter to subscribe to (repeatable, up to %d;\n"
		"                           optional with --persistent, whose session may hold them)\n"
		"  -V, --protocol 5|311     MQTT version (default 5)\n"
		"  -i, --id CLIENT_ID       client id (default " PROG "-PID-RANDOM)\n"
		"      --persistent         keep the session: clean session off (3.1.1), clean start\n"
		"                           off and a session that never expires (5); needs --id\n"
		"  -q, --qos 0|1|2          subscription QoS (default 1)\n"
		"      --retain-as-published\n"
		"                           MQTT 5 subscription option: keep the retain flag of\n"
		"                           messages forwarded live\n"
		"      --receive-max N      MQTT 5 Receive Maximum: unacknowledged messages the\n"
		"                           broker may send (default 65535)\n"
		"  -s, --start S            first expected sequence number (default 0)\n"
		"  -n, --count N            expect S..S+N-1 (default 0: none, collect until idle);\n"
		"                           stops 1 s after the last of them came\n"
		"      --topic PATTERN      each message's topic must be PATTERN with its %%d replaced\n"
		"                           by seq %% TOPICS (%%%% for '%%'; default: not checked)\n"
		"  -T, --topics K           (default 1)\n"
		"  -I, --idle SECONDS       stop when nothing new came for this long (default 10)\n"
		"  -w, --timeout SECONDS    stop after this long in any case (default 300)\n"
		"      --any-payload        accept payloads that are not numbered test messages\n"
		"                           (not counted as corrupt; their topic is checked only\n"
		"                           when PATTERN has no %%d)\n"
		"      --dump               print each message, then an empty line:\n"
		"                             topic: T\n"
		"                             qos: N\n"
		"                             retain: 0|1\n"
		"                           MQTT 5 properties when present:\n"
		"                             payload-format: N\n"
		"                             content-type: S\n"
		"                             correlation-data: B  (or correlation-data-hex: HEX)\n"
		"                             response-topic: S\n"
		"                             message-expiry: N\n"
		"                             user-property: NAME=VALUE  (each, in received order)\n"
		"                           then\n"
		"                             payload-size: N\n"
		"                             seq: N  (a valid test payload)\n"
		"                             payload: B  (or payload-hex: HEX)\n"
		"                           B is the bytes as they are when all are printable ASCII,\n"
		"                           else the -hex line; in strings (T, S, NAME, VALUE) control\n"
		"                           bytes and '\\' appear as \\xNN; an empty value leaves no\n"
		"                           space after the colon\n"
		"      --no-ack             never send a PUBACK (nor anything else once the\n"
		"                           SUBSCRIBE is out; no reconnect)\n"
		"      --times              before the summary, print \"times first=T all=T\": when\n"
		"                           the first new message came and when all COUNT had\n"
		"                           (wall clock, seconds since the epoch; 0: never)\n"
		"      --ready-file PATH    create PATH once the subscription is in place (SUBACK;\n"
		"                           CONNACK when there is no filter)\n"
		"  -h, --help\n"
		"Exit status: 0 when nothing is missing, corrupt, on a wrong topic or unexpected;\n"
		"1 otherwise or on a broker error; 2 on a usage error.\n",
		MAX_FILTERS);
}

/* ---------------------------------------------------------------- seqset */

static size_t seq_hash(uint64_t v, size_t cap)
{
	v ^= v >> 33;
	v *= 0xff51afd7ed558ccdULL;
	v ^= v >> 33;
	return (size_t)v & (cap - 1);
}

static int seqset_grow(struct seqset *s)
{
	size_t cap = s->cap ? 2 * s->cap : 4096;
	uint64_t *slot = malloc(cap * sizeof(*slot));

	if (!slot)
		return -1;
	memset(slot, 0xff, cap * sizeof(*slot));
	for (size_t i = 0; i < s->cap; i++) {
		size_t j;

		if (s->slot[i] == UINT64_MAX)
			continue;
		for (j = seq_hash(s->slot[i], cap); slot[j] != UINT64_MAX; j = (j + 1) & (cap - 1))
			;
		slot[j] = s->slot[i];
	}
	free(s->slot);
	s->slot = slot;
	s->cap = cap;
	return 0;
}

/* Adds v; returns 1 if it is new, 0 if it was there, -1 when out of memory. */
static int seqset_add(struct seqset *s, uint64_t v)
{
	size_t j;

	if (v == UINT64_MAX) {
		bool had = s->has_max;

		s->has_max = true;
		return !had;
	}
	if ((s->n + 1) * 2 > s->cap && seqset_grow(s) != 0)
		return -1;
	for (j = seq_hash(v, s->cap); s->slot[j] != UINT64_MAX; j = (j + 1) & (s->cap - 1))
		if (s->slot[j] == v)
			return 0;
	s->slot[j] = v;
	s->n++;
	return 1;
}

static bool seqset_has(const struct seqset *s, uint64_t v)
{
	if (v == UINT64_MAX)
		return s->has_max;
	if (!s->cap)
		return false;
	for (size_t j = seq_hash(v, s->cap); s->slot[j] != UINT64_MAX; j = (j + 1) & (s->cap - 1))
		if (s->slot[j] == v)
			return true;
	return false;
}

/* ------------------------------------------------------------------ dump */

static bool all_printable(const void *bytes, size_t len)
{
	const unsigned char *b = bytes;

	for (size_t i = 0; i < len; i++)
		if (b[i] < 0x20 || b[i] > 0x7e)
			return false;
	return true;
}

static void print_hex(const void *bytes, size_t len)
{
	const unsigned char *b = bytes;

	for (size_t i = 0; i < len; i++)
		printf("%02x", b[i]);
}

/* "NAME: BYTES" when printable, else "NAME-hex: HEX"; no space when empty. */
static void print_bytes(const char *name, const void *bytes, size_t len)
{
	bool text = all_printable(bytes, len);

	printf("%s%s:%s", name, text ? "" : "-hex", len ? " " : "");
	if (text)
		fwrite(bytes, 1, len, stdout);
	else
		print_hex(bytes, len);
	putchar('\n');
}

/* A string as it is, but control bytes, DEL and '\' as \xNN. */
static void print_str_raw(const char *s, size_t len)
{
	for (size_t i = 0; i < len; i++) {
		unsigned char b = (unsigned char)s[i];

		if (b < 0x20 || b == 0x7f || b == '\\')
			printf("\\x%02x", b);
		else
			putchar(b);
	}
}

static void print_str(const char *name, const char *s)
{
	size_t len = strlen(s);

	printf("%s:%s", name, len ? " " : "");
	print_str_raw(s, len);
	putchar('\n');
}

static void dump_message(const struct mosquitto_message *m, const mosquitto_property *props,
			 bool seq_ok, uint64_t seq)
{
	char *s = NULL, *name = NULL;
	void *bin = NULL;
	uint16_t binlen = 0;
	uint32_t u32;
	uint8_t u8;
	const mosquitto_property *p;

	print_str("topic", m->topic);
	printf("qos: %d\nretain: %d\n", m->qos, m->retain ? 1 : 0);
	if (mosquitto_property_read_byte(props, MQTT_PROP_PAYLOAD_FORMAT_INDICATOR, &u8, false))
		printf("payload-format: %u\n", u8);
	if (mosquitto_property_read_string(props, MQTT_PROP_CONTENT_TYPE, &s, false)) {
		print_str("content-type", s);
		free(s);
	}
	if (mosquitto_property_read_binary(props, MQTT_PROP_CORRELATION_DATA, &bin, &binlen, false)) {
		print_bytes("correlation-data", bin, binlen);
		free(bin);
	}
	if (mosquitto_property_read_string(props, MQTT_PROP_RESPONSE_TOPIC, &s, false)) {
		print_str("response-topic", s);
		free(s);
	}
	if (mosquitto_property_read_int32(props, MQTT_PROP_MESSAGE_EXPIRY_INTERVAL, &u32, false))
		printf("message-expiry: %" PRIu32 "\n", u32);
	for (p = mosquitto_property_read_string_pair(props, MQTT_PROP_USER_PROPERTY, &name, &s, false); p;
	     p = mosquitto_property_read_string_pair(p, MQTT_PROP_USER_PROPERTY, &name, &s, true)) {
		printf("user-property: ");
		print_str_raw(name, strlen(name));
		putchar('=');
		print_str_raw(s, strlen(s));
		putchar('\n');
		free(name);
		free(s);
		name = s = NULL;
	}
	printf("payload-size: %d\n", m->payloadlen);
	if (seq_ok)
		printf("seq: %" PRIu64 "\n", seq);
	else
		print_bytes("payload", m->payload, (size_t)m->payloadlen);
	putchar('\n');
}

/* ------------------------------------------------------------- callbacks */

static void on_connect(struct mosquitto *mosq, void *obj, int rc, int flags,
		       const mosquitto_property *props)
{
	struct recv_state *st = obj;
	int mrc;

	(void)flags;
	(void)props;
	st->connack = rc;
	if (rc != 0) {
		fprintf(stderr, PROG ": connection refused: %s\n",
			st->v5 ? mosquitto_reason_string(rc) : mosquitto_connack_string(rc));
		st->broker_error = true;
		return;
	}
	st->connected = true;
	if (st->nfilters == 0) {
		st->subscribed = true;
		return;
	}
	/* Again after a reconnect: a clean session has forgotten them. */
	mrc = mosquitto_subscribe_multiple(mosq, &st->sub_mid, st->nfilters, st->filters, st->qos,
					   st->sub_options, NULL);
	if (mrc != MOSQ_ERR_SUCCESS) {
		fprintf(stderr, PROG ": subscribe: %s\n", mosquitto_strerror(mrc));
		st->broker_error = true;
		return;
	}
	st->sub_sent = true;
}

static void on_disconnect(struct mosquitto *mosq, void *obj, int rc, const mosquitto_property *props)
{
	struct recv_state *st = obj;

	(void)mosq;
	(void)props;
	/* rc is libmosquitto's error, or the reason code of an MQTT 5 DISCONNECT. */
	if (st->connected && rc != 0)
		fprintf(stderr, PROG ": connection lost (%s)\n",
			st->v5 && rc >= 0x80 ? mosquitto_reason_string(rc) : mosquitto_strerror(rc));
	st->connected = false;
}

static void on_subscribe(struct mosquitto *mosq, void *obj, int mid, int count, const int *granted,
			 const mosquitto_property *props)
{
	struct recv_state *st = obj;

	(void)mosq;
	(void)props;
	if (mid != st->sub_mid)
		return;
	for (int i = 0; i < count; i++) {
		if (granted[i] >= 0x80) {
			fprintf(stderr, PROG ": subscription to '%s' refused: %s\n",
				i < st->nfilters ? st->filters[i] : "?",
				st->v5 ? mosquitto_reason_string(granted[i]) : "failure");
			st->broker_error = true;
		}
	}
	if (!st->subscribed)
		st->t_last = tool_now_s();
	st->subscribed = true;
}

static void on_message(struct mosquitto *mosq, void *obj, const struct mosquitto_message *m,
		       const mosquitto_property *props)
{
	struct recv_state *st = obj;
	uint64_t seq = UINT64_MAX;
	bool seq_ok, check_topic;
	char want[TOPIC_BUF];

	(void)mosq;
	st->received++;
	/* Without --count every message is news; with it, a new seq only. */
	if (st->count == 0)
		st->t_last = tool_now_s();
	seq_ok = m->payloadlen >= 0 &&
		 payload_check(m->payload, (size_t)m->payloadlen, &seq, NULL) == 0;
	if (st->dump)
		dump_message(m, props, seq_ok, seq);
	if (!seq_ok && !st->any_payload) {
		if (st->corrupt++ < REPORT_MAX)
			fprintf(stderr, PROG ": corrupt payload (%d bytes, header seq %" PRIu64 ") on '%s'\n",
				m->payloadlen, seq, m->topic);
	}
	/* Without a %d the topic is known even for a message with no seq. */
	check_topic = st->pattern && (seq_ok || st->pattern_fixed);
	if (check_topic) {
		if (payload_topic(st->pattern, st->topics, seq_ok ? seq : 0, want, sizeof(want)) < 0 ||
		    strcmp(want, m->topic) != 0) {
			if (st->wrong_topic++ < REPORT_MAX) {
				if (seq_ok)
					fprintf(stderr, PROG ": seq %" PRIu64 " on '%s', expected '%s'\n", seq,
						m->topic, want);
				else
					fprintf(stderr, PROG ": message on '%s', expected '%s'\n", m->topic,
						want);
			}
		}
	}
	if (!seq_ok)
		return;
	if (st->count && (seq < st->start || seq - st->start >= st->count)) {
		if (st->unexpected++ < REPORT_MAX)
			fprintf(stderr, PROG ": unexpected seq %" PRIu64 "\n", seq);
		return;
	}
	switch (seqset_add(&st->seen, seq)) {
	case 1:
		st->distinct++;
		if (st->t_first == 0)
			st->t_first = tool_now_s();
		if (st->count) {
			st->t_last = tool_now_s();
			if (st->distinct == st->count)
				st->t_all = st->t_last;
		}
		break;
	case 0:
		st->duplicates++;
		break;
	default:
		fprintf(stderr, PROG ": out of memory\n");
		st->broker_error = true;
		break;
	}
}

/* ------------------------------------------------------------------ main */

/* Lists up to 10 ranges of missing sequence numbers on stderr. */
static void report_missing(const struct recv_state *st)
{
	int ranges = 0;

	for (uint64_t i = 0; i < st->count && ranges < 10; i++) {
		uint64_t j = i;

		if (seqset_has(&st->seen, st->start + i))
			continue;
		while (j + 1 < st->count && !seqset_has(&st->seen, st->start + j + 1))
			j++;
		fprintf(stderr, PROG ": missing %" PRIu64 "..%" PRIu64 "\n", st->start + i, st->start + j);
		ranges++;
		i = j;
	}
}

static int make_ready_file(const char *path)
{
	int fd = open(path, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0644);

	if (fd < 0) {
		fprintf(stderr, PROG ": --ready-file %s: %s\n", path, strerror(errno));
		return -1;
	}
	close(fd);
	return 0;
}

/*
 * --no-ack: one step of the hand-driven connection.  Until the SUBSCRIBE
 * (or, without filters, the CONNECT) has been written, it writes what
 * libmosquitto queued; it reads one packet at a time, so the CONNACK is
 * handled (and the SUBSCRIBE queued) before any PUBLISH is read, and no
 * PUBACK is queued before the last write.  Returns 0, or -1 when the
 * connection is gone.
 */
static int noack_step(struct mosquitto *mosq, struct recv_state *st, bool *writing, int wait_ms)
{
	struct pollfd p = { .fd = mosquitto_socket(mosq), .events = POLLIN };
	int rc;

	if (p.fd < 0)
		return -1;
	/* Nothing is read while something is left to write. */
	if (*writing && mosquitto_want_write(mosq))
		p.events = POLLOUT;
	if (poll(&p, 1, wait_ms) < 0)
		return errno == EINTR ? 0 : -1;
	if (p.revents & POLLOUT) {
		rc = mosquitto_loop_write(mosq, 1);
		if (rc != MOSQ_ERR_SUCCESS)
			return -1;
		if (!mosquitto_want_write(mosq) && (st->sub_sent || (st->nfilters == 0 && st->connected)))
			*writing = false;
		return 0;
	}
	if (p.revents & (POLLIN | POLLHUP | POLLERR)) {
		rc = mosquitto_loop_read(mosq, 1);
		if (rc != MOSQ_ERR_SUCCESS)
			return -1;
		/* A resumed session without filters: the CONNECT was the last write. */
		if (*writing && !mosquitto_want_write(mosq) && st->nfilters == 0 && st->connected)
			*writing = false;
	}
	return 0;
}

int main(int argc, char **argv)
{
	enum { O_PERSISTENT = 256, O_RAP, O_RECEIVE_MAX, O_TOPIC, O_ANY, O_DUMP, O_NOACK, O_READY,
	       O_TIMES };
	static const struct option opts[] = {
		{ "port", required_argument, NULL, 'p' },
		{ "filter", required_argument, NULL, 't' },
		{ "protocol", required_argument, NULL, 'V' },
		{ "id", required_argument, NULL, 'i' },
		{ "persistent", no_argument, NULL, O_PERSISTENT },
		{ "qos", required_argument, NULL, 'q' },
		{ "retain-as-published", no_argument, NULL, O_RAP },
		{ "receive-max", required_argument, NULL, O_RECEIVE_MAX },
		{ "start", required_argument, NULL, 's' },
		{ "count", required_argument, NULL, 'n' },
		{ "topic", required_argument, NULL, O_TOPIC },
		{ "topics", required_argument, NULL, 'T' },
		{ "idle", required_argument, NULL, 'I' },
		{ "timeout", required_argument, NULL, 'w' },
		{ "any-payload", no_argument, NULL, O_ANY },
		{ "dump", no_argument, NULL, O_DUMP },
		{ "no-ack", no_argument, NULL, O_NOACK },
		{ "times", no_argument, NULL, O_TIMES },
		{ "ready-file", required_argument, NULL, O_READY },
		{ "help", no_argument, NULL, 'h' },
		{ NULL, 0, NULL, 0 },
	};
	static struct recv_state st = { .connack = -1, .topics = 1, .qos = 1 };
	long long port = 0, protocol = 5, start = 0, count = 0, topics = 1, qos = 1;
	long long idle = 10, timeout = 300, receive_max = 65535;
	bool persistent = false, rap = false, writing = true, ready = false, lost = false;
	const char *id = NULL;
	char idbuf[64];
	struct mosquitto *mosq = NULL;
	mosquitto_property *cprops = NULL;
	double t_start, t_retry = 0;
	struct timespec ts;
	uint64_t missing = 0;
	int c, rc, status = 1;

	while ((c = getopt_long(argc, argv, "p:t:V:i:q:s:n:T:I:w:h", opts, NULL)) != -1) {
		int bad = 0;

		switch (c) {
		case 'p': bad = tool_parse_ll(PROG, optarg, 1, 65535, "--port", &port); break;
		case 't':
			if (st.nfilters == MAX_FILTERS || mosquitto_sub_topic_check(optarg) != MOSQ_ERR_SUCCESS) {
				fprintf(stderr, PROG ": --filter: bad filter '%s' (or more than %d)\n", optarg,
					MAX_FILTERS);
				bad = -1;
			} else {
				st.filters[st.nfilters++] = optarg;
			}
			break;
		case 'V':
			if (strcmp(optarg, "5") == 0)
				protocol = 5;
			else if (strcmp(optarg, "311") == 0)
				protocol = 311;
			else {
				fprintf(stderr, PROG ": --protocol: expected 5 or 311, got '%s'\n", optarg);
				bad = -1;
			}
			break;
		case 'i': id = optarg; break;
		case O_PERSISTENT: persistent = true; break;
		case 'q': bad = tool_parse_ll(PROG, optarg, 0, 2, "--qos", &qos); break;
		case O_RAP: rap = true; break;
		case O_RECEIVE_MAX:
			bad = tool_parse_ll(PROG, optarg, 1, 65535, "--receive-max", &receive_max);
			break;
		case 's': bad = tool_parse_ll(PROG, optarg, 0, 1LL << 53, "--start", &start); break;
		case 'n': bad = tool_parse_ll(PROG, optarg, 0, 100000000, "--count", &count); break;
		case O_TOPIC: st.pattern = optarg; break;
		case 'T': bad = tool_parse_ll(PROG, optarg, 1, 100000000, "--topics", &topics); break;
		case 'I': bad = tool_parse_ll(PROG, optarg, 1, 86400, "--idle", &idle); break;
		case 'w': bad = tool_parse_ll(PROG, optarg, 1, 86400, "--timeout", &timeout); break;
		case O_ANY: st.any_payload = true; break;
		case O_DUMP: st.dump = true; break;
		case O_NOACK: st.no_ack = true; break;
		case O_TIMES: st.times = true; break;
		case O_READY: st.ready_file = optarg; break;
		case 'h': usage(stdout); return 0;
		default: bad = -1; break;
		}
		if (bad)
			return tool_try_help(PROG);
	}
	if (optind != argc)
		return tool_usage_error(PROG, "unexpected argument '%s'", argv[optind]);
	if (port == 0 || (st.nfilters == 0 && !persistent))
		return tool_usage_error(PROG, "--port and --filter are required");
	if (persistent && !id) {
		fprintf(stderr, PROG ": --persistent needs --id\n");
		return 2;
	}
	if (rap && protocol != 5) {
		fprintf(stderr, PROG ": --retain-as-published needs MQTT 5\n");
		return 2;
	}
	if (st.pattern) {
		char a[TOPIC_BUF], b[TOPIC_BUF];

		if (payload_topic_check(st.pattern) != 0 ||
		    payload_topic(st.pattern, 2, 0, a, sizeof(a)) < 1 ||
		    payload_topic(st.pattern, 2, 1, b, sizeof(b)) < 1) {
			fprintf(stderr, PROG ": --topic: bad pattern '%s' (one %%d at most, %%%% for '%%')\n",
				st.pattern);
			return 2;
		}
		st.pattern_fixed = strcmp(a, b) == 0;
	}
	if (!id) {
		clock_gettime(CLOCK_REALTIME, &ts);
		snprintf(idbuf, sizeof(idbuf), PROG "-%ld-%08lx", (long)getpid(),
			 (unsigned long)(ts.tv_nsec ^ (ts.tv_sec << 20)) & 0xffffffffUL);
		id = idbuf;
	}
	st.start = (uint64_t)start;
	st.count = (uint64_t)count;
	st.topics = (uint64_t)topics;
	st.qos = (int)qos;
	st.v5 = protocol == 5;
	st.sub_options = rap ? MQTT_SUB_OPT_RETAIN_AS_PUBLISHED : 0;

	mosquitto_lib_init();
	mosq = mosquitto_new(id, !persistent, &st);
	if (!mosq) {
		fprintf(stderr, PROG ": mosquitto_new: %s\n", strerror(errno));
		goto out;
	}
	mosquitto_int_option(mosq, MOSQ_OPT_PROTOCOL_VERSION, st.v5 ? MQTT_PROTOCOL_V5 : MQTT_PROTOCOL_V311);
	mosquitto_int_option(mosq, MOSQ_OPT_RECEIVE_MAXIMUM, (int)receive_max);
	mosquitto_connect_v5_callback_set(mosq, on_connect);
	mosquitto_disconnect_v5_callback_set(mosq, on_disconnect);
	mosquitto_subscribe_v5_callback_set(mosq, on_subscribe);
	mosquitto_message_v5_callback_set(mosq, on_message);
	if (st.no_ack)
		/* Nothing is written but by this program's own mosquitto_loop_write(). */
		mosquitto_threaded_set(mosq, true);
	if (st.v5 && persistent)
		mosquitto_property_add_int32(&cprops, MQTT_PROP_SESSION_EXPIRY_INTERVAL, UINT32_MAX);

	t_start = st.t_last = tool_now_s();
	rc = mosquitto_connect_bind_v5(mosq, HOST, (int)port, st.no_ack ? NOACK_KEEPALIVE : 60, NULL, cprops);
	if (rc != MOSQ_ERR_SUCCESS) {
		fprintf(stderr, PROG ": connect to %s:%lld: %s\n", HOST, port,
			rc == MOSQ_ERR_ERRNO ? strerror(errno) : mosquitto_strerror(rc));
		goto out;
	}

	for (;;) {
		double now = tool_now_s();

		if (st.broker_error)
			break;
		if (st.subscribed && !ready) {
			ready = true;
			if (st.ready_file && make_ready_file(st.ready_file) != 0) {
				st.broker_error = true;
				break;
			}
		}
		if (st.t_all > 0 && now - st.t_all >= GRACE_S)
			break;
		/* Before the SUBACK, the idle time counts from the start. */
		if (st.t_all == 0 && now - st.t_last >= (double)idle) {
			if (st.count > 0 || !st.subscribed)
				fprintf(stderr, PROG ": nothing new for %lld s, stopping\n", idle);
			break;
		}
		if (now - t_start >= (double)timeout) {
			fprintf(stderr, PROG ": time limit of %lld s reached, stopping\n", timeout);
			break;
		}
		if (st.no_ack) {
			if (noack_step(mosq, &st, &writing, 100) != 0) {
				/* on_disconnect has said why. */
				st.broker_error = true;
				break;
			}
			continue;
		}
		if (!lost) {
			rc = mosquitto_loop(mosq, 100, 1);
			if (rc != MOSQ_ERR_SUCCESS) {
				lost = true;
				st.connected = false;
				t_retry = now + 1;
			}
			continue;
		}
		/* Lost: try again every second (a kept session's messages come back). */
		if (now >= t_retry) {
			t_retry = now + 1;
			if (mosquitto_reconnect(mosq) == MOSQ_ERR_SUCCESS)
				lost = false;
		} else {
			usleep(100000);
		}
	}
	if (!st.subscribed && !st.broker_error) {
		fprintf(stderr, PROG ": %s\n", st.connack < 0 ? "no CONNACK" : "no SUBACK");
		st.broker_error = true;
	}

	if (st.count > st.distinct)
		missing = st.count - st.distinct;
	fflush(stdout);
	if (st.times) {
		/* Measured on the monotonic clock; printed on the wall clock, which scripts can read. */
		struct timespec wall;
		double off;

		clock_gettime(CLOCK_REALTIME, &wall);
		off = (double)wall.tv_sec + (double)wall.tv_nsec / 1e9 - tool_now_s();
		printf("times first=%.6f all=%.6f\n", st.t_first ? st.t_first + off : 0,
		       st.t_all ? st.t_all + off : 0);
	}
	printf("received=%" PRIu64 " distinct=%" PRIu64 " duplicates=%" PRIu64 " missing=%" PRIu64
	       " corrupt=%" PRIu64 " wrong_topic=%" PRIu64, st.received, st.distinct, st.duplicates,
	       missing, st.corrupt, st.wrong_topic);
	if (st.unexpected)
		printf(" unexpected=%" PRIu64, st.unexpected);
	printf("\n");
	if (missing)
		report_missing(&st);
	if (!missing && !st.corrupt && !st.wrong_topic && !st.unexpected && !st.broker_error)
		status = 0;
	/* A --no-ack client just goes: a DISCONNECT would be its first write. */
	if (!st.no_ack && st.connected) {
		mosquitto_disconnect(mosq);
		mosquitto_loop(mosq, 100, 1);
	}
out:
	if (mosq)
		mosquitto_destroy(mosq);
	mosquitto_property_free_all(&cprops);
	mosquitto_lib_cleanup();
	free(st.seen.slot);
	return status;
}
