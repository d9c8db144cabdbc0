#include "log.h"

#include "logjson.h"

#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <syslog.h>
#include <time.h>
#include <unistd.h>

static enum log_level current = LOG_LVL_INFO;
static bool to_journal;
static enum log_target target = LOG_TARGET_STDERR;
static enum log_format format = LOG_FORMAT_TEXT;

/*
 * A message's text is cut at this many bytes (less its NUL), before a
 * JSON object is made of it.
 */
#define LOG_TEXT_MAX 2048
/*
 * A JSON object at most: a text of LOG_TEXT_MAX bytes escaped, and its
 * fields, fit unless the text is full of control characters or invalid
 * UTF-8.  Kept within the 8 KiB that rsyslog takes of a message by
 * default, so that no syslog daemon's cut leaves the object open.
 */
#define LOG_JSON_MAX 8000

static const char *const level_names[] = { "error", "warning", "info", "debug" };
/* syslog(3) and sd-daemon(3) priorities. */
static const int level_prio[] = { LOG_ERR, LOG_WARNING, LOG_INFO, LOG_DEBUG };

/*
 * Whether stderr is a stream to the journal: JOURNAL_STREAM names its
 * device and inode ("DEV:INO"), as systemd.exec(5) describes.  The
 * variable alone is not enough: a bridge started by hand from a shell
 * that runs under a unit inherits it with stderr on a terminal or a
 * file, where "<N>" prefixes would only be noise.
 */
static bool stderr_is_journal(void)
{
	const char *v = getenv("JOURNAL_STREAM");
	unsigned long long dev, ino;
	struct stat st;
	char end;

	if (!v || sscanf(v, "%llu:%llu%c", &dev, &ino, &end) != 2)
		return false;
	if (fstat(STDERR_FILENO, &st) != 0)
		return false;
	return (unsigned long long)st.st_dev == dev && (unsigned long long)st.st_ino == ino;
}

void log_init(enum log_level level)
{
	current = level;
	to_journal = stderr_is_journal();
}

void log_set_target(enum log_target t)
{
	if (t == target)
		return;
	if (target == LOG_TARGET_SYSLOG)
		closelog();
	if (t == LOG_TARGET_SYSLOG)
		openlog("mqtt-amqp-bridge", LOG_PID, LOG_DAEMON);
	target = t;
}

void log_set_format(enum log_format f)
{
	format = f;
}

void log_fini(void)
{
	log_set_target(LOG_TARGET_STDERR);
}

void log_set_level(enum log_level level)
{
	current = level;
}

enum log_level log_get_level(void)
{
	return current;
}

int log_level_parse(const char *name, enum log_level *out)
{
	for (int i = 0; i <= LOG_LVL_DEBUG; i++) {
		if (strcmp(name, level_names[i]) == 0) {
			*out = (enum log_level)i;
			return 0;
		}
	}
	return -1;
}

/*
 * Writes `text` to the journal's stream with priority `prio`: journald
 * makes one entry of each line, so each line gets the prefix (a value
 * from the file, quoted in an error, may hold a newline; without its own
 * prefix the rest would land at info).
 */
static void journal_lines(int prio, const char *text)
{
	const char *nl;

	while ((nl = strchr(text, '\n')) != NULL) {
		fprintf(stderr, "<%d>%.*s\n", prio, (int)(nl - text), text);
		text = nl + 1;
	}
	fprintf(stderr, "<%d>%s\n", prio, text);
}

static void log_json(enum log_level level, const char *text, bool cut,
                     const struct log_field *f, size_t n)
{
	char line[LOG_JSON_MAX];
	struct logjson_msg m = {
		.level = level_names[level],
		.text = text,
		.cut = cut,
		.fields = f,
		.n_fields = n,
	};

	clock_gettime(CLOCK_REALTIME, &m.time);
	logjson_format(line, sizeof(line), &m);
	if (target == LOG_TARGET_SYSLOG)
		syslog(level_prio[level], "%s", line);
	else if (to_journal)
		fprintf(stderr, "<%d>%s\n", level_prio[level], line);
	else
		fprintf(stderr, "%s\n", line);
}

static void log_text(enum log_level level, const char *line)
{
	if (target == LOG_TARGET_SYSLOG) {
		syslog(level_prio[level], "%s", line);
	} else if (to_journal) {
		journal_lines(level_prio[level], line);
	} else {
		struct timespec ts;
		struct tm tm;
		char stamp[32];

		clock_gettime(CLOCK_REALTIME, &ts);
		localtime_r(&ts.tv_sec, &tm);
		strftime(stamp, sizeof(stamp), "%Y-%m-%dT%H:%M:%S", &tm);
		fprintf(stderr, "%s.%03ld %s: %s\n", stamp, ts.tv_nsec / 1000000,
		        level_names[level], line);
	}
}

static void log_emit(enum log_level level, const struct log_field *f, size_t n,
                     const char *fmt, va_list ap) LOG_PRINTF(4, 0);
static void log_emit(enum log_level level, const struct log_field *f, size_t n,
                     const char *fmt, va_list ap)
{
	char text[LOG_TEXT_MAX];
	int len;

	if (level > current)
		return;
	len = vsnprintf(text, sizeof(text), fmt, ap);
	if (len < 0)
		snprintf(text, sizeof(text), "(the message could not be formatted: %s)", fmt);
	if (format == LOG_FORMAT_JSON)
		log_json(level, text, len >= (int)sizeof(text), f, n);
	else
		log_text(level, text);
}

#define LOG_FN(name, level)                        \
	void name(const char *fmt, ...)            \
	{                                          \
		va_list ap;                        \
		va_start(ap, fmt);                 \
		log_emit(level, NULL, 0, fmt, ap); \
		va_end(ap);                        \
	}

LOG_FN(log_error, LOG_LVL_ERROR)
LOG_FN(log_warn, LOG_LVL_WARNING)
LOG_FN(log_info, LOG_LVL_INFO)
LOG_FN(log_debug, LOG_LVL_DEBUG)

void log_kv(enum log_level level, const struct log_field *f, size_t n, const char *fmt, ...)
{
	va_list ap;

	va_start(ap, fmt);
	log_emit(level, f, n, fmt, ap);
	va_end(ap);
}

void log_vkv(enum log_level level, const struct log_field *f, size_t n, const char *fmt,
             va_list ap)
{
	log_emit(level, f, n, fmt, ap);
}

void log_plain(enum log_level level, const char *fmt, ...)
{
	char text[LOG_TEXT_MAX];
	va_list ap;

	va_start(ap, fmt);
	vsnprintf(text, sizeof(text), fmt, ap);
	va_end(ap);
	/* Asked each time: these lines come before log_init(), and are few. */
	if (stderr_is_journal())
		journal_lines(level_prio[level], text);
	else
		fprintf(stderr, "%s\n", text);
}

void fatal(const char *fmt, ...)
{
	va_list ap;

	va_start(ap, fmt);
	log_emit(LOG_LVL_ERROR, NULL, 0, fmt, ap);
	va_end(ap);
	exit(1);
}
