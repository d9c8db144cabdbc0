/*
 * mab-rules: the cost of choosing a rule and building its routing key
 * (rules_match() + rules_key()) per message, with 1 rule and with 10,000
 * rules that do not match plus the one that does.  The tree the rules are
 * compiled into should make the two cost about the same.
 *
 * Topics are a fixed mix of 3, 4 and 5 levels under "sensors/", over
 * 10,000 devices and rooms, so that the distracting rules share the
 * topics' first levels and the walk meets them.  Rounds of the two
 * configurations alternate (the machine is shared and noisy); the median
 * round is reported.  Every result is checked: a wrong rule or key exits 1.
 * Timing never fails the run.
 *
 * Usage: mab-rules [-n MESSAGES_PER_ROUND] [-r ROUNDS]
 */
#include "rules.h"

#include <errno.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#define N_DISTRACT 10000
/* A third configuration shows that the cost stays flat past 10,000. */
#define N_DISTRACT_MAX 100000
#define N_CONFIGS 3
#define N_TOPICS 8192
#define TOPIC_MAX 64
#define RATIO_TARGET 1.5

struct topic {
	char text[TOPIC_MAX];
	size_t len;
	char key[TOPIC_KEY_MAX + 1];
	size_t klen;
};

struct config {
	const char *name;
	struct rules *rs;
	size_t n_rules;
	const struct rule *want;    /* the rule every topic must get */
	double compile_ms;
	double *ns;                 /* per round */
};

static double now_ns(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (double)ts.tv_sec * 1e9 + (double)ts.tv_nsec;
}

static void on_report(void *arg, int line, const char *msg)
{
	fprintf(stderr, "mab-rules: %s: line %d: %s\n", (const char *)arg, line, msg);
}

/* Strict integer option in [lo, hi]; exits 2 otherwise. */
static long parse_long(const char *opt, const char *s, long lo, long hi)
{
	char *end;
	long v;

	errno = 0;
	v = strtol(s, &end, 10);
	if (errno != 0 || end == s || *end != '\0' || v < lo || v > hi) {
		fprintf(stderr, "mab-rules: %s must be an integer in [%ld, %ld], got '%s'\n", opt, lo, hi, s);
		exit(2);
	}
	return v;
}

/*
 * The topic mix and, independently of the rules module, the key the
 * matching rule ("sensors/#", template "s.{#}") must give each.
 */
static void make_topics(struct topic *t)
{
	uint64_t x = 88172645463325252ull;

	for (size_t i = 0; i < N_TOPICS; i++) {
		unsigned dev, room, site;
		int n;

		/* xorshift64: a fixed, repeatable mix. */
		x ^= x << 13;
		x ^= x >> 7;
		x ^= x << 17;
		dev = (unsigned)(x % N_DISTRACT);
		room = (unsigned)((x >> 20) % N_DISTRACT);
		site = (unsigned)((x >> 40) % 16);
		switch (i % 3) {
		case 0:
			n = snprintf(t[i].text, TOPIC_MAX, "sensors/dev%u/temperature", dev);
			snprintf(t[i].key, sizeof(t[i].key), "s.dev%u.temperature", dev);
			break;
		case 1:
			n = snprintf(t[i].text, TOPIC_MAX, "sensors/dev%u/room%u/humidity", dev, room);
			snprintf(t[i].key, sizeof(t[i].key), "s.dev%u.room%u.humidity", dev, room);
			break;
		default:
			n = snprintf(t[i].text, TOPIC_MAX, "sensors/site%u/dev%u/room%u/pressure", site, dev,
			             room);
			snprintf(t[i].key, sizeof(t[i].key), "s.site%u.dev%u.room%u.pressure", site, dev, room);
			break;
		}
		t[i].len = (size_t)n;
		t[i].klen = strlen(t[i].key);
	}
}

/*
 * Rules that share the topics' levels without matching any of them: a
 * literal branch under each device, a '+' under each device, rooms under
 * a '+', and unrelated trees.  Filters are written into `bufs`.
 */
static void make_distractors(struct rule_spec *specs, char (*bufs)[TOPIC_MAX])
{
	for (size_t i = 0; i < N_DISTRACT_MAX; i++) {
		switch (i % 4) {
		case 0: snprintf(bufs[i], TOPIC_MAX, "sensors/dev%zu/temperature/alarm", i); break;
		case 1: snprintf(bufs[i], TOPIC_MAX, "sensors/dev%zu/+/hum", i); break;
		case 2: snprintf(bufs[i], TOPIC_MAX, "sensors/+/room%zu/x", i); break;
		default: snprintf(bufs[i], TOPIC_MAX, "other%zu/+/#", i); break;
		}
		specs[i] = (struct rule_spec){ .line = (int)i + 1, .match = bufs[i], .exchange = "x",
		                               .routing_key = "d.{1}" };
		if (i % 4 == 0)
			specs[i].routing_key = "d";
	}
}

static int compile_config(struct config *c, const struct rule_spec *specs, size_t n)
{
	double t0 = now_ns();

	c->rs = rules_compile(specs, n, "_", NULL, 0, on_report, on_report, (void *)c->name);
	c->compile_ms = (now_ns() - t0) / 1e6;
	if (c->rs == NULL)
		return -1;
	c->n_rules = n;
	c->want = rules_at(c->rs, n - 1);
	return 0;
}

/* Checks every topic's rule and key; returns the number of wrong results. */
static size_t verify(const struct config *c, const struct topic *t)
{
	const struct rule *out[4];
	char key[TOPIC_KEY_MAX + 1];
	size_t bad = 0;

	for (size_t i = 0; i < N_TOPICS; i++) {
		size_t klen, m = rules_match(c->rs, t[i].text, t[i].len, out, 4);

		if (m != 1 || out[0] != c->want) {
			fprintf(stderr, "mab-rules: %s: '%s' got %zu rules (first: %zu), want rule %zu\n",
			        c->name, t[i].text, m, m > 0 ? out[0]->index : 0, c->want->index);
			bad++;
			continue;
		}
		if (rules_key(out[0], t[i].text, t[i].len, "_", key, &klen) != TOPIC_OK ||
		    klen != t[i].klen || strcmp(key, t[i].key) != 0) {
			fprintf(stderr, "mab-rules: %s: '%s' got key '%s', want '%s'\n", c->name, t[i].text,
			        key, t[i].key);
			bad++;
		}
	}
	return bad;
}

/*
 * One timed round of `n` messages; returns ns per message.  Each result is
 * still checked (rule and key length), cheaply, so that nothing is
 * optimised away and a wrong answer cannot hide behind a fast one.
 */
static double round_ns(const struct config *c, const struct topic *t, size_t n, size_t *bad)
{
	const struct rule *out[4];
	char key[TOPIC_KEY_MAX + 1];
	double t0 = now_ns();

	for (size_t i = 0; i < n; i++) {
		const struct topic *tp = &t[i & (N_TOPICS - 1)];
		size_t klen = 0, m = rules_match(c->rs, tp->text, tp->len, out, 4);

		if (m != 1 || out[0] != c->want ||
		    rules_key(out[0], tp->text, tp->len, "_", key, &klen) != TOPIC_OK || klen != tp->klen)
			(*bad)++;
	}
	return (now_ns() - t0) / (double)n;
}

static int cmp_double(const void *a, const void *b)
{
	double x = *(const double *)a, y = *(const double *)b;

	return (x > y) - (x < y);
}

static double median(const double *v, size_t n, double *lo, double *hi)
{
	double *s = malloc(n * sizeof(*s));
	double m;

	if (s == NULL)
		return 0;
	memcpy(s, v, n * sizeof(*s));
	qsort(s, n, sizeof(*s), cmp_double);
	m = n % 2 ? s[n / 2] : (s[n / 2 - 1] + s[n / 2]) / 2;
	*lo = s[0];
	*hi = s[n - 1];
	free(s);
	return m;
}

int main(int argc, char **argv)
{
	const struct rule_spec target = { .line = N_DISTRACT + 1, .match = "sensors/#",
	                                  .exchange = "telemetry", .routing_key = "s.{#}" };
	struct config cfg[N_CONFIGS] = { { .name = "1 rule" }, { .name = "10,000 rules + 1" },
	                                 { .name = "100,000 rules + 1" } };
	size_t per_round = 1000000, rounds = 7, bad = 0;
	struct topic *topics = calloc(N_TOPICS, sizeof(*topics));
	struct rule_spec *specs = calloc(N_DISTRACT_MAX + 1, sizeof(*specs));
	char (*bufs)[TOPIC_MAX] = calloc(N_DISTRACT_MAX, sizeof(*bufs));
	double med[N_CONFIGS], lo[N_CONFIGS], hi[N_CONFIGS];
	int opt;

	while ((opt = getopt(argc, argv, "n:r:")) != -1) {
		switch (opt) {
		case 'n': per_round = (size_t)parse_long("-n", optarg, 1000, 100000000); break;
		case 'r': rounds = (size_t)parse_long("-r", optarg, 1, 101); break;
		default:
			fprintf(stderr, "usage: mab-rules [-n MESSAGES_PER_ROUND] [-r ROUNDS]\n");
			return 2;
		}
	}
	if (topics == NULL || specs == NULL || bufs == NULL)
		goto oom;
	for (size_t k = 0; k < N_CONFIGS; k++)
		if ((cfg[k].ns = calloc(rounds, sizeof(double))) == NULL)
			goto oom;
	make_topics(topics);
	make_distractors(specs, bufs);
	/* rules_compile() copies the specs, so the target can move between calls. */
	specs[N_DISTRACT] = target;
	if (compile_config(&cfg[0], &target, 1) < 0 ||
	    compile_config(&cfg[1], specs, N_DISTRACT + 1) < 0) {
		fprintf(stderr, "mab-rules: the rules did not compile\n");
		return 1;
	}
	make_distractors(specs, bufs);
	specs[N_DISTRACT_MAX] = target;
	specs[N_DISTRACT_MAX].line = N_DISTRACT_MAX + 1;
	if (compile_config(&cfg[2], specs, N_DISTRACT_MAX + 1) < 0) {
		fprintf(stderr, "mab-rules: the rules did not compile\n");
		return 1;
	}
	for (size_t k = 0; k < N_CONFIGS; k++)
		bad += verify(&cfg[k], topics);
	/* A warm-up pass of each, then alternating rounds. */
	for (size_t k = 0; k < N_CONFIGS; k++)
		round_ns(&cfg[k], topics, per_round / 10 + 1, &bad);
	for (size_t r = 0; r < rounds; r++) {
		for (size_t k = 0; k < N_CONFIGS; k++)
			cfg[k].ns[r] = round_ns(&cfg[k], topics, per_round, &bad);
	}
	if (bad > 0) {
		fprintf(stderr, "mab-rules: %zu wrong results\n", bad);
		return 1;
	}
	for (size_t k = 0; k < N_CONFIGS; k++)
		med[k] = median(cfg[k].ns, rounds, &lo[k], &hi[k]);

	printf("## rules: rules_match + rules_key per message\n\n");
	printf("%zu rounds of %zu messages each, %d topics of 3-5 levels; every result checked.\n\n",
	       rounds, per_round, N_TOPICS);
	printf("| configuration | rules | compile (ms) | ns/message, median (min–max) | target | status |\n");
	printf("|---|---|---|---|---|---|\n");
	for (size_t k = 0; k < N_CONFIGS; k++)
		printf("| %s | %zu | %.1f | %.1f (%.1f–%.1f) | | |\n", cfg[k].name, cfg[k].n_rules,
		       cfg[k].compile_ms, med[k], lo[k], hi[k]);
	printf("| **ratio 10,000 rules / 1 rule** | | | %.2f | <= %.1f | %s |\n", med[1] / med[0],
	       RATIO_TARGET, med[1] / med[0] <= RATIO_TARGET ? "met" : "not met");
	printf("| ratio 100,000 rules / 10,000 rules | | | %.2f | | |\n", med[2] / med[1]);
	for (size_t k = 0; k < N_CONFIGS; k++) {
		rules_free(cfg[k].rs);
		free(cfg[k].ns);
	}
	free(topics);
	free(specs);
	free(bufs);
	return 0;
oom:
	fprintf(stderr, "mab-rules: out of memory\n");
	return 1;
}
