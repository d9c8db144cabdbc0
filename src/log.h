/*
 * log: leveled messages to stderr.
 *
 * Messages go to stderr, one line each, prefixed with a level tag.  When
 * stderr is the journal (JOURNAL_STREAM is set) the line carries a
 * sd-daemon "<N>" priority prefix instead of a timestamp, so journald keeps
 * the level; otherwise it starts with a local timestamp.
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

#define LOG_PRINTF(a, b) __attribute__((format(printf, a, b)))

void log_init(enum log_level level);
void log_set_level(enum log_level level);
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
