#include "log.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <syslog.h>
#include <time.h>

static enum log_level current = LOG_LVL_INFO;
static int to_journal;
static enum log_target target = LOG_TARGET_STDERR;

static const char *const level_names[] = { "error", "warning", "info", "debug" };
/* syslog(3) and sd-daemon(3) priorities. */
static const int level_prio[] = { LOG_ERR, LOG_WARNING, LOG_INFO, LOG_DEBUG };

void log_init(enum log_level level)
{
	current = level;
	to_journal = getenv("JOURNAL_STREAM") != NULL;
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

static void log_emit(enum log_level level, const char *fmt, va_list ap) LOG_PRINTF(2, 0);
static void log_emit(enum log_level level, const char *fmt, va_list ap)
{
	char line[2048];

	if (level > current)
		return;
	vsnprintf(line, sizeof(line), fmt, ap);
	if (target == LOG_TARGET_SYSLOG) {
		syslog(level_prio[level], "%s", line);
	} else if (to_journal) {
		fprintf(stderr, "<%d>%s\n", level_prio[level], line);
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

#define LOG_FN(name, level)                      \
	void name(const char *fmt, ...)          \
	{                                        \
		va_list ap;                      \
		va_start(ap, fmt);               \
		log_emit(level, fmt, ap);        \
		va_end(ap);                      \
	}

LOG_FN(log_error, LOG_LVL_ERROR)
LOG_FN(log_warn, LOG_LVL_WARNING)
LOG_FN(log_info, LOG_LVL_INFO)
LOG_FN(log_debug, LOG_LVL_DEBUG)

void fatal(const char *fmt, ...)
{
	va_list ap;

	va_start(ap, fmt);
	log_emit(LOG_LVL_ERROR, fmt, ap);
	va_end(ap);
	exit(1);
}
