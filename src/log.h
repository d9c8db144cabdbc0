/*
 * log: leveled messages to stderr or syslog.
 *
 * On stderr, one line each, prefixed with a level tag.  When stderr is the
 * journal (JOURNAL_STREAM names stderr's device and inode) the line
 * carries a sd-daemon "<N>" priority prefix instead of a timestamp, so
 * journald keeps the level; otherwise it starts with a local timestamp.  With syslog, each message
 * goes to syslog(3) as "mqtt-amqp-bridge[PID]", facility LOG_DAEMON, at the
 * matching priority.
 *
 * With the JSON format (logjson.h) the line is instead one JSON object,
 * the same on stderr and to syslog; on the journal it keeps the "<N>"
 * prefix in front, which journald strips.  A message may carry fields
 * (log_kv()) that only the JSON object shows: text lines read as before.
 *
 * Every message starts with the name of the module that logs it and ": "
 * ("mqtt: connected to ..."); the JSON object has it as `module`.
 */
#ifndef BRIDGE_LOG_H
#define BRIDGE_LOG_H

#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>

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

enum log_format {
	LOG_FORMAT_TEXT = 0,
	LOG_FORMAT_JSON,
};

/*
 * A field of a message, for the JSON object only.  Keys are literals of
 * [a-z_], written as they are; a NULL string is written as null.
 */
enum log_kind {
	LOG_KIND_STR,
	LOG_KIND_U64,
	LOG_KIND_I64,
};

struct log_field {
	const char *key;
	enum log_kind kind;
	union {
		const char *s;
		uint64_t u;
		int64_t i;
	} v;
};

#define LOG_STR(k, x) { .key = (k), .kind = LOG_KIND_STR, .v.s = (x) }
#define LOG_U64(k, x) { .key = (k), .kind = LOG_KIND_U64, .v.u = (x) }
#define LOG_I64(k, x) { .key = (k), .kind = LOG_KIND_I64, .v.i = (x) }
/* The number of fields in an array (not a pointer) of them. */
#define LOG_NFIELDS(a) (sizeof(a) / sizeof((a)[0]))

#define LOG_PRINTF(a, b) __attribute__((format(printf, a, b)))

void log_init(enum log_level level);
void log_set_level(enum log_level level);
/* Sends messages to `target` from now on (opening or closing syslog). */
void log_set_target(enum log_target target);
void log_set_format(enum log_format format);
/* Closes syslog if it is open; messages go to stderr again. */
void log_fini(void);
enum log_level log_get_level(void);

/* Parses "error", "warning", "info" or "debug"; returns -1 otherwise. */
int log_level_parse(const char *name, enum log_level *out);

void log_error(const char *fmt, ...) LOG_PRINTF(1, 2);
void log_warn(const char *fmt, ...) LOG_PRINTF(1, 2);
void log_info(const char *fmt, ...) LOG_PRINTF(1, 2);
void log_debug(const char *fmt, ...) LOG_PRINTF(1, 2);
/* A message at `level` with `n` fields, e.g. log_kv(LOG_LVL_INFO, f, LOG_NFIELDS(f), ...). */
void log_kv(enum log_level level, const struct log_field *f, size_t n, const char *fmt, ...)
	LOG_PRINTF(4, 5);
void log_vkv(enum log_level level, const struct log_field *f, size_t n, const char *fmt,
             va_list ap) LOG_PRINTF(4, 0);

/*
 * A line for whoever ran the command, before a configuration says how to
 * log (usage and configuration errors, what -t finds): on stderr as it
 * is, whatever the level, target or format; on the journal with its "<N>"
 * prefix, so that an ExecStart= or ExecReload= that fails shows in
 * `journalctl -p err`.
 */
void log_plain(enum log_level level, const char *fmt, ...) LOG_PRINTF(2, 3);

/* For start-up errors and broken invariants only: logs and exits 1. */
void fatal(const char *fmt, ...) LOG_PRINTF(1, 2) __attribute__((noreturn));

#endif
