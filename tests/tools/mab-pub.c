/*
 * mab-pub: publishes numbered test messages (see payload.h) to an MQTT
 * broker on 127.0.0.1 and waits until the broker has acknowledged them.
 *
 * A message counts once, by its sequence number: at QoS 1 when its PUBACK
 * arrives, at QoS 0 when it has been written to the socket.  "published N"
 * means that all N distinct messages got there; a resend after a
 * reconnect is never counted a second time.
 *
 * Exit status: 0 when every message was acknowledged (QoS 1) or written
 * (QoS 0); 1 on a broker failure, or when the broker accepted none for the
 * time limit; 2 on a usage error.
 */
#include <errno.h>
#include <getopt.h>
#include <inttypes.h>
#include <limits.h>
#include <pthread.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include <mosquitto.h>

#include "payload.h"
#include "toolutil.h"

#define PROG "mab-pub"
#define HOST "127.0.0.1"
#define TOPIC_BUF 1024

/* libmosquitto's window of unacknowledged QoS 1 messages on the wire. */
#define PUB_SEND_MAXIMUM 1000
/*
 * Messages handed to libmosquitto and not yet counted.  Twice the send
 * window, so the library always has the next ones ready; far below the
 * 65,535 packet identifiers, so an identifier names one message at a time
 * and a PUBACK can be traced to its sequence number.  It also keeps the
 * library's list short: it walks that list on every PUBACK.
 */
#define PUB_WINDOW (2 * PUB_SEND_MAXIMUM)
#define PUB_MIDS 65536

/*
 * Shared between the main thread, which publishes, and libmosquitto's
 * network thread, which runs the callbacks.  The main thread holds `lock`
 * across mosquitto_publish(), so a callback for a new packet identifier
 * always finds it recorded in mid_seq.
 */
struct pub_state {
	pthread_mutex_t lock;
	pthread_cond_t cond;
	int qos;
	bool connected;         /* between CONNACK 0 and the disconnect callback */
	int connack;            /* -1 until the first CONNACK */
	uint64_t connects;
	uint64_t acked;         /* distinct messages acknowledged (or written) */
	uint64_t pending;       /* taken for sending, not yet acknowledged */
	uint64_t progress_ns;   /* CLOCK_MONOTONIC of the last ack, connect or hand-off */
	uint64_t *mid_seq;      /* [PUB_MIDS]: seq + 1 of the message with that mid, or 0 */
	uint64_t redo[PUB_WINDOW];  /* QoS 0 messages lost with a connection */
	size_t nredo;
};

static void usage(FILE *out)
{
	fprintf(out,
		"usage: " PROG " -p PORT -n COUNT [options]\n"
		"  -p, --port PORT        MQTT broker port on " HOST " (required)\n"
		"  -n, --count N          messages to publish (required, 1..100000000)\n"
		"  -s, --start S          first sequence number (default 0)\n"
		"  -t, --topic PATTERN    topic pattern with one %%d (default \"fleet/dev%%d/temp\")\n"
		"  -T, --topics K         distinct topics: %%d is seq %% K (default 1)\n"
		"  -q, --qos 0|1          QoS (default 1)\n"
		"  -z, --size MIN         payload size in bytes (default 64, at least %d)\n"
		"  -Z, --size-max MAX     sizes vary between MIN and MAX (default MIN)\n"
		"  -b, --big EVERY:SIZE   every EVERY-th message has SIZE bytes instead\n"
		"  -r, --rate R           at most R messages per second (default 0: no limit)\n"
		"  -i, --id CLIENT_ID     client id (default " PROG "-PID)\n"
		"  -w, --timeout SECONDS  limit for connecting, and for a pause in acknowledgements\n"
		"                         (default 120)\n"
		"  -S, --stamp            carry the send time in each payload (size >= %d)\n"
		"  -h, --help\n",
		PAYLOAD_MIN, PAYLOAD_MIN_STAMPED);
}

static uint64_t now_ns(clockid_t clk)
{
	struct timespec ts;

	clock_gettime(clk, &ts);
	return (uint64_t)ts.tv_sec * 1000000000u + (uint64_t)ts.tv_nsec;
}

static void on_connect(struct mosquitto *mosq, void *obj, int rc)
{
	struct pub_state *st = obj;

	(void)mosq;
	pthread_mutex_lock(&st->lock);
	st->connack = rc;
	st->connected = rc == 0;
	if (rc == 0) {
		st->connects++;
		st->progress_ns = now_ns(CLOCK_MONOTONIC);
	}
	pthread_cond_broadcast(&st->cond);
	pthread_mutex_unlock(&st->lock);
}

/*
 * QoS 1 messages survive a lost connection: libmosquitto keeps them and
 * sends them again, same packet identifier, after the next CONNACK, whether
 * or not the broker kept a session (this client's never is kept).  QoS 0
 * packets not yet written are dropped by the library without a callback,
 * so they are queued here to be published again.
 */
static void on_disconnect(struct mosquitto *mosq, void *obj, int rc)
{
	struct pub_state *st = obj;

	(void)mosq;
	(void)rc;
	pthread_mutex_lock(&st->lock);
	st->connected = false;
	if (st->qos == 0) {
		for (size_t mid = 0; mid < PUB_MIDS; mid++) {
			if (st->mid_seq[mid] == 0)
				continue;
			st->redo[st->nredo++] = st->mid_seq[mid] - 1;
			st->mid_seq[mid] = 0;
		}
	}
	pthread_cond_broadcast(&st->cond);
	pthread_mutex_unlock(&st->lock);
}

/* Called once per library message: on its PUBACK, or when a QoS 0 packet is written. */
static void on_publish(struct mosquitto *mosq, void *obj, int mid)
{
	struct pub_state *st = obj;

	(void)mosq;
	pthread_mutex_lock(&st->lock);
	if (mid > 0 && mid < PUB_MIDS && st->mid_seq[mid] != 0) {
		st->mid_seq[mid] = 0;
		st->acked++;
		st->pending--;
		st->progress_ns = now_ns(CLOCK_MONOTONIC);
		pthread_cond_broadcast(&st->cond);
	}
	pthread_mutex_unlock(&st->lock);
}

/*
 * Waits on st->cond (st->lock held) until something changes or `timeout`
 * seconds have passed since the last progress.  Returns 0, or -1 once that
 * limit is reached.
 */
static int wait_progress(struct pub_state *st, long long timeout)
{
	uint64_t limit = st->progress_ns + (uint64_t)timeout * 1000000000u;
	uint64_t now = now_ns(CLOCK_MONOTONIC);
	uint64_t left;
	struct timespec dl;

	if (now >= limit)
		return -1;
	left = limit - now;
	clock_gettime(CLOCK_REALTIME, &dl);
	dl.tv_sec += (time_t)(left / 1000000000u);
	dl.tv_nsec += (long)(left % 1000000000u);
	if (dl.tv_nsec >= 1000000000L) {
		dl.tv_sec++;
		dl.tv_nsec -= 1000000000L;
	}
	pthread_cond_timedwait(&st->cond, &st->lock, &dl);
	return 0;
}

static void deadline_in(struct timespec *ts, long long seconds)
{
	clock_gettime(CLOCK_REALTIME, ts);
	ts->tv_sec += (time_t)seconds;
}

int main(int argc, char **argv)
{
	static const struct option opts[] = {
		{ "port", required_argument, NULL, 'p' },
		{ "count", required_argument, NULL, 'n' },
		{ "start", required_argument, NULL, 's' },
		{ "topic", required_argument, NULL, 't' },
		{ "topics", required_argument, NULL, 'T' },
		{ "qos", required_argument, NULL, 'q' },
		{ "size", required_argument, NULL, 'z' },
		{ "size-max", required_argument, NULL, 'Z' },
		{ "big", required_argument, NULL, 'b' },
		{ "rate", required_argument, NULL, 'r' },
		{ "id", required_argument, NULL, 'i' },
		{ "timeout", required_argument, NULL, 'w' },
		{ "stamp", no_argument, NULL, 'S' },
		{ "help", no_argument, NULL, 'h' },
		{ NULL, 0, NULL, 0 },
	};
	long long port = 0, count = 0, start = 0, topics = 1, qos = 1, size = 64, size_max = -1;
	long long big_every = 0, big_size = 0, rate = 0, timeout = 120;
	const char *pattern = "fleet/dev%d/temp";
	char idbuf[64];
	const char *id = NULL;
	bool stamp = false;
	struct pub_state st = { .connack = -1 };
	struct mosquitto *mosq = NULL;
	unsigned char *buf = NULL;
	char topic[TOPIC_BUF];
	struct timespec dl;
	uint64_t t0, next = 0;
	int c, rc, status = 1;

	while ((c = getopt_long(argc, argv, "p:n:s:t:T:q:z:Z:b:r:i:w:Sh", opts, NULL)) != -1) {
		int bad = 0;

		switch (c) {
		case 'p': bad = tool_parse_ll(PROG, optarg, 1, 65535, "--port", &port); break;
		case 'n': bad = tool_parse_ll(PROG, optarg, 1, 100000000, "--count", &count); break;
		case 's': bad = tool_parse_ll(PROG, optarg, 0, 1LL << 53, "--start", &start); break;
		case 't': pattern = optarg; break;
		case 'T': bad = tool_parse_ll(PROG, optarg, 1, 100000000, "--topics", &topics); break;
		case 'q': bad = tool_parse_ll(PROG, optarg, 0, 1, "--qos", &qos); break;
		case 'z': bad = tool_parse_ll(PROG, optarg, PAYLOAD_MIN, PAYLOAD_MAX, "--size", &size); break;
		case 'Z': bad = tool_parse_ll(PROG, optarg, PAYLOAD_MIN, PAYLOAD_MAX, "--size-max", &size_max); break;
		case 'b': {
			char every[32];
			const char *colon = strchr(optarg, ':');

			if (!colon || (size_t)(colon - optarg) >= sizeof(every)) {
				fprintf(stderr, PROG ": --big: expected EVERY:SIZE, got '%s'\n", optarg);
				bad = -1;
				break;
			}
			memcpy(every, optarg, (size_t)(colon - optarg));
			every[colon - optarg] = '\0';
			bad = tool_parse_ll(PROG, every, 1, 100000000, "--big EVERY", &big_every);
			if (!bad)
				bad = tool_parse_ll(PROG, colon + 1, PAYLOAD_MIN, PAYLOAD_MAX, "--big SIZE", &big_size);
			break;
		}
		case 'r': bad = tool_parse_ll(PROG, optarg, 0, 10000000, "--rate", &rate); break;
		case 'i': id = optarg; break;
		case 'w': bad = tool_parse_ll(PROG, optarg, 1, 86400, "--timeout", &timeout); break;
		case 'S': stamp = true; break;
		case 'h': usage(stdout); return 0;
		default: bad = -1; break;
		}
		if (bad)
			return tool_try_help(PROG);
	}
	if (optind != argc)
		return tool_usage_error(PROG, "unexpected argument '%s'", argv[optind]);
	if (port == 0 || count == 0)
		return tool_usage_error(PROG, "--port and --count are required");
	if (size_max < 0)
		size_max = size;
	if (size_max < size) {
		fprintf(stderr, PROG ": --size-max %lld is below --size %lld\n", size_max, size);
		return 2;
	}
	if (stamp && (size < PAYLOAD_MIN_STAMPED || (big_every && big_size < PAYLOAD_MIN_STAMPED))) {
		fprintf(stderr, PROG ": --stamp needs every size >= %d\n", PAYLOAD_MIN_STAMPED);
		return 2;
	}
	if (payload_topic_check(pattern) != 0 || payload_topic(pattern, (uint64_t)topics, 0, topic, sizeof(topic)) < 1) {
		fprintf(stderr, PROG ": --topic: bad pattern '%s' (one %%d at most, %%%% for '%%')\n", pattern);
		return 2;
	}
	if (!id) {
		snprintf(idbuf, sizeof(idbuf), PROG "-%ld-%lld", (long)getpid(), start);
		id = idbuf;
	}

	buf = malloc((size_t)(big_size > size_max ? big_size : size_max));
	if (!buf) {
		fprintf(stderr, PROG ": out of memory\n");
		return 1;
	}
	st.mid_seq = calloc(PUB_MIDS, sizeof(*st.mid_seq));
	if (!st.mid_seq) {
		fprintf(stderr, PROG ": out of memory\n");
		free(buf);
		return 1;
	}
	st.qos = (int)qos;
	pthread_mutex_init(&st.lock, NULL);
	pthread_cond_init(&st.cond, NULL);
	mosquitto_lib_init();
	mosq = mosquitto_new(id, true, &st);
	if (!mosq) {
		fprintf(stderr, PROG ": mosquitto_new: %s\n", strerror(errno));
		goto out;
	}
	mosquitto_int_option(mosq, MOSQ_OPT_PROTOCOL_VERSION, MQTT_PROTOCOL_V311);
	/* The default window of 20 unacknowledged messages limits a QoS 1
	 * publisher to a few thousand messages per second; a much larger one
	 * makes libmosquitto walk its whole in-flight list on every PUBACK. */
	mosquitto_int_option(mosq, MOSQ_OPT_SEND_MAXIMUM, PUB_SEND_MAXIMUM);
	mosquitto_connect_callback_set(mosq, on_connect);
	mosquitto_disconnect_callback_set(mosq, on_disconnect);
	mosquitto_publish_callback_set(mosq, on_publish);
	mosquitto_reconnect_delay_set(mosq, 1, 2, false);

	rc = mosquitto_connect(mosq, HOST, (int)port, 60);
	if (rc != MOSQ_ERR_SUCCESS) {
		fprintf(stderr, PROG ": connect to %s:%lld: %s\n", HOST, port,
			rc == MOSQ_ERR_ERRNO ? strerror(errno) : mosquitto_strerror(rc));
		goto out;
	}
	rc = mosquitto_loop_start(mosq);
	if (rc != MOSQ_ERR_SUCCESS) {
		fprintf(stderr, PROG ": loop_start: %s\n", mosquitto_strerror(rc));
		goto out;
	}
	deadline_in(&dl, timeout);
	pthread_mutex_lock(&st.lock);
	while (st.connack < 0)
		if (pthread_cond_timedwait(&st.cond, &st.lock, &dl) == ETIMEDOUT)
			break;
	rc = st.connack;
	pthread_mutex_unlock(&st.lock);
	if (rc != 0) {
		fprintf(stderr, PROG ": %s\n", rc < 0 ? "no CONNACK in time" : mosquitto_connack_string(rc));
		goto stop;
	}

	/*
	 * Each pass takes one message (a QoS 0 one lost with a connection, or
	 * the next new one, at most PUB_WINDOW uncounted) and hands it to the
	 * library while connected.  It ends when all are counted, or when
	 * nothing progressed for `timeout` seconds.
	 */
	t0 = now_ns(CLOCK_MONOTONIC);
	pthread_mutex_lock(&st.lock);
	st.progress_ns = t0;
	for (;;) {
		uint64_t seq;
		size_t sz;
		bool fresh;
		int mid = 0;

		if (st.acked >= (uint64_t)count) {
			status = 0;
			break;
		}
		if (!st.connected || (st.nredo == 0 && (next >= (uint64_t)count || st.pending >= PUB_WINDOW))) {
			if (wait_progress(&st, timeout) != 0) {
				fprintf(stderr, PROG ": only %" PRIu64 " of %lld messages acknowledged; none for %lld s (%s, %" PRIu64 " connections)\n",
					st.acked, count, timeout, st.connected ? "connected" : "not connected", st.connects);
				break;
			}
			continue;
		}
		fresh = st.nredo == 0;
		if (fresh) {
			seq = (uint64_t)start + next++;
			st.pending++;
		} else {
			seq = st.redo[--st.nredo];
		}
		pthread_mutex_unlock(&st.lock);

		sz = payload_size_for(seq, (size_t)size, (size_t)size_max,
				      (uint64_t)big_every, (size_t)big_size);
		if (fresh && rate > 0) {
			uint64_t due = t0 + (seq - (uint64_t)start) * 1000000000u / (uint64_t)rate;
			uint64_t now = now_ns(CLOCK_MONOTONIC);

			if (due > now) {
				struct timespec ts = { .tv_sec = (time_t)((due - now) / 1000000000u),
						       .tv_nsec = (long)((due - now) % 1000000000u) };
				nanosleep(&ts, NULL);
			}
		}
		payload_topic(pattern, (uint64_t)topics, seq, topic, sizeof(topic));
		payload_make(seq, sz, buf);
		if (stamp)
			payload_stamp(buf, sz, now_ns(CLOCK_REALTIME));

		pthread_mutex_lock(&st.lock);
		/* Only while connected: then the library cannot start a
		 * reconnect (which resets its list of QoS 1 messages) before
		 * on_disconnect, which waits for this lock. */
		if (!st.connected) {
			st.redo[st.nredo++] = seq;
			continue;
		}
		rc = mosquitto_publish(mosq, &mid, topic, (int)sz, buf, (int)qos, false);
		/* A QoS 1 message is queued even when the connection has just
		 * gone (MOSQ_ERR_NO_CONN); it is sent after the reconnect. */
		if (rc == MOSQ_ERR_SUCCESS || (rc == MOSQ_ERR_NO_CONN && qos > 0)) {
			if (st.mid_seq[mid] != 0) {
				/* 65,535 later messages went while this one waited. */
				fprintf(stderr, PROG ": seq %" PRIu64 " still unacknowledged when its packet identifier %d was reused\n",
					st.mid_seq[mid] - 1, mid);
				break;
			}
			st.mid_seq[mid] = seq + 1;
			st.progress_ns = now_ns(CLOCK_MONOTONIC);
		} else if (rc == MOSQ_ERR_NO_CONN) {
			st.redo[st.nredo++] = seq;
		} else {
			fprintf(stderr, PROG ": publish seq %" PRIu64 ": %s\n", seq, mosquitto_strerror(rc));
			break;
		}
	}
	pthread_mutex_unlock(&st.lock);
	if (status == 0)
		printf("published %lld\n", count);

stop:
	mosquitto_disconnect(mosq);
	mosquitto_loop_stop(mosq, status != 0);
out:
	if (mosq)
		mosquitto_destroy(mosq);
	mosquitto_lib_cleanup();
	free(st.mid_seq);
	free(buf);
	return status;
}
