#include "expo.h"

#include <inttypes.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "utf8.h"

const uint64_t hist_bounds_us[HIST_BOUNDS] = {
	500, 1000, 2500, 5000, 10000, 25000, 50000, 100000, 250000, 500000,
	1000000, 2500000, 5000000, 10000000,
};

void expo_init(struct expo *e)
{
	memset(e, 0, sizeof(*e));
}

void expo_fini(struct expo *e)
{
	free(e->buf);
	memset(e, 0, sizeof(*e));
}

char *expo_take(struct expo *e, size_t *len)
{
	char *b = e->buf;

	if (e->failed || !b) {
		expo_fini(e);
		return NULL;
	}
	*len = e->len;
	memset(e, 0, sizeof(*e));
	return b;
}

static bool expo_room(struct expo *e, size_t more)
{
	size_t cap;
	char *b;

	if (e->failed)
		return false;
	if (e->len + more + 1 <= e->cap)
		return true;
	cap = e->cap ? e->cap : 4096;
	while (cap < e->len + more + 1)
		cap *= 2;
	b = realloc(e->buf, cap);
	if (!b) {
		e->failed = true;
		return false;
	}
	e->buf = b;
	e->cap = cap;
	return true;
}

static void expo_put(struct expo *e, const char *s, size_t n)
{
	if (!expo_room(e, n))
		return;
	memcpy(e->buf + e->len, s, n);
	e->len += n;
	e->buf[e->len] = '\0';
}

static void expo_puts(struct expo *e, const char *s)
{
	expo_put(e, s, strlen(s));
}

static void expo_printf(struct expo *e, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
static void expo_printf(struct expo *e, const char *fmt, ...)
{
	char tmp[64];
	va_list ap;
	int n;

	va_start(ap, fmt);
	n = vsnprintf(tmp, sizeof(tmp), fmt, ap);
	va_end(ap);
	if (n > 0)
		expo_put(e, tmp, (size_t)n < sizeof(tmp) ? (size_t)n : sizeof(tmp) - 1);
}

/*
 * Escapes `\` and newline, and `"` too inside a label value.  A byte that
 * is not valid UTF-8 becomes U+FFFD: Prometheus refuses a whole scrape
 * over one such label value.
 */
static void expo_escaped(struct expo *e, const char *s, bool quote)
{
	size_t n = strlen(s);

	for (size_t i = 0; i < n;) {
		size_t len = utf8_len((const unsigned char *)s + i, n - i);

		if (len == 0) {
			expo_put(e, "\xef\xbf\xbd", 3);
			len = 1;
		} else if (s[i] == '\\') {
			expo_put(e, "\\\\", 2);
		} else if (s[i] == '\n') {
			expo_put(e, "\\n", 2);
		} else if (s[i] == '"' && quote) {
			expo_put(e, "\\\"", 2);
		} else {
			expo_put(e, s + i, len);
		}
		i += len;
	}
}

void expo_family(struct expo *e, const char *name, const char *type, const char *help)
{
	expo_puts(e, "# HELP ");
	expo_puts(e, name);
	expo_puts(e, " ");
	expo_escaped(e, help, false);
	expo_puts(e, "\n# TYPE ");
	expo_puts(e, name);
	expo_puts(e, " ");
	expo_puts(e, type);
	expo_puts(e, "\n");
}

/* NAME{a="x",b="y"} with an optional extra label (le) and a suffix on the name. */
static void expo_series(struct expo *e, const char *name, const char *suffix,
                        const struct expo_label *labels, size_t n, const char *le)
{
	expo_puts(e, name);
	expo_puts(e, suffix);
	if (n == 0 && !le) {
		expo_puts(e, " ");
		return;
	}
	expo_puts(e, "{");
	for (size_t i = 0; i < n; i++) {
		expo_puts(e, i ? ",": "");
		expo_puts(e, labels[i].name);
		expo_puts(e, "=\"");
		expo_escaped(e, labels[i].value, true);
		expo_puts(e, "\"");
	}
	if (le) {
		expo_puts(e, n ? ",le=\"" : "le=\"");
		expo_puts(e, le);
		expo_puts(e, "\"");
	}
	expo_puts(e, "} ");
}

void expo_u64(struct expo *e, const char *name, const struct expo_label *labels, size_t n,
              uint64_t value)
{
	expo_series(e, name, "", labels, n, NULL);
	expo_printf(e, "%" PRIu64 "\n", value);
}

void expo_double(struct expo *e, const char *name, const struct expo_label *labels, size_t n,
                 double value)
{
	char tmp[40];

	expo_series(e, name, "", labels, n, NULL);
	/* The shortest of the usual precisions that reads back as the same double. */
	snprintf(tmp, sizeof(tmp), "%.15g", value);
	if (strtod(tmp, NULL) != value)
		snprintf(tmp, sizeof(tmp), "%.17g", value);
	expo_puts(e, tmp);
	expo_puts(e, "\n");
}

/* Microseconds as seconds, exactly (no rounding through a double). */
static void expo_seconds(char *buf, size_t size, uint64_t us)
{
	uint64_t frac = us % 1000000u;
	int n = snprintf(buf, size, "%" PRIu64 ".%06" PRIu64, us / 1000000u, frac);

	/* Trailing zeros go, and the point with them: "0.0005", "1", "2.5". */
	while (n > 0 && buf[n - 1] == '0')
		buf[--n] = '\0';
	if (n > 0 && buf[n - 1] == '.')
		buf[--n] = '\0';
}

void expo_hist(struct expo *e, const char *name, const struct expo_label *labels, size_t n,
               const struct hist *h)
{
	uint64_t cum = 0;
	char le[32];

	for (size_t i = 0; i <= HIST_BOUNDS; i++) {
		cum += h->bucket[i];
		if (i < HIST_BOUNDS)
			expo_seconds(le, sizeof(le), hist_bounds_us[i]);
		else
			snprintf(le, sizeof(le), "+Inf");
		expo_series(e, name, "_bucket", labels, n, le);
		expo_printf(e, "%" PRIu64 "\n", cum);
	}
	expo_series(e, name, "_sum", labels, n, NULL);
	expo_seconds(le, sizeof(le), h->sum_us);
	expo_puts(e, le);
	expo_puts(e, "\n");
	expo_series(e, name, "_count", labels, n, NULL);
	expo_printf(e, "%" PRIu64 "\n", h->count);
}
