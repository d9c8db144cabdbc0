/*
 * log: leveled messages to stderr or syslog.
 *
 * On stderr, one line each, prefixed with a level tag.  When stderr is the
 * journal (JOURNAL_STREAM is set) the line carries a sd-daemon "<N>"
 * priority prefix instead of a timestamp, so journald keeps the level;
 * otherwise it starts with a local timestamp.  With syslog, each message
 * goes to syslog(3) as "mqtt-amqp-bridge[PID]", facility LOG_DAEMON, at the
 * matching priority.
 */
#ifndef BRIDGE_LOG_H
#define BRIDGE_LOG_H

#include <stdarg.h>

enum log_level {
	LOG_LVL_ERROR = 0,
	LOG_LVL_WARNING,
	LOG_LVL_INFO,
	LOG_LVL_DEBUG,
};

enum log_target {
	LOG_TARGET_STDERR = 0,
	LOG_TARGET_SYSLOG,
};

#define LOG_PRINTF(a, b) __attribute__((format(printf, a, b)))

void log_init(enum log_level level);
void log_set_level(enum log_level level);
/* Sends messages to `target` from now on (opening or closing syslog). */
void log_set_target(enum log_target target);
/* Closes syslog if it is open; messages go to stderr again. */
void log_fini(void);
enum log_level log_get_level(void);

/* Parses "error", "warning", "info" or "debug"; returns -1 otherwise. */
int log_level_parse(const char *name, enum log_level *out);

void log_error(const char *fmt, ...) LOG_PRINTF(1, 2);
void log_warn(const char *fmt, ...) LOG_PRINTF(1, 2);
void log_info(const char *fmt, ...) LOG_PRINTF(1, 2);
void log_debug(const char *fmt, ...) LOG_PRINTF(1, 2);

/* For start-up errors and broken invariants only: logs and exits 1. */
void fatal(const char *fmt, ...) LOG_PRINTF(1, 2) __attribute__((noreturn));

#endif
