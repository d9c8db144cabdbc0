/*
 * logjson: one log message as one JSON object, for bridge.log_format =
 * "json".  Pure: the caller supplies the time and writes the result.
 *
 * The object reads
 *
 *     {"time":"2026-12-07T18:49:00.123Z","level":"info","module":"mqtt",
 *      "message":"connected to ...", FIELDS..., "truncated":true}
 *
 * on one line: `time` in UTC, RFC 3339 with milliseconds; `module` the
 * message's "module: " prefix, which `message` then lacks, or "main" for
 * a message without one; the fields in the caller's order; `truncated`
 * only when something was cut.
 *
 * Whatever the input, the result is valid JSON: '"', '\' and control
 * characters are escaped (the latter as \u00XX), every byte that is not
 * part of valid UTF-8 becomes \ufffd, and when the buffer runs short a
 * string is cut between two characters, the fields that do not fit are
 * left out and the object is still closed.
 */
#ifndef BRIDGE_LOGJSON_H
#define BRIDGE_LOGJSON_H

#include <stdbool.h>
#include <stddef.h>
#include <time.h>

#include "log.h"

/* A module name is a lower-case word of at most this many bytes. */
#define LOGJSON_MODULE_MAX 16
/* The smallest buffer logjson_format() accepts: the fixed head always fits. */
#define LOGJSON_MIN 160

struct logjson_msg {
	struct timespec time;
	const char *level;          /* "error", "warning", "info" or "debug" */
	const char *text;           /* as formatted, "module: " prefix included */
	bool cut;                   /* `text` was cut before it came here */
	const struct log_field *fields;
	size_t n_fields;
};

/*
 * Writes the object, without a newline, and a NUL into `buf` of `size`
 * bytes (at least LOGJSON_MIN); returns its length.
 */
size_t logjson_format(char *buf, size_t size, const struct logjson_msg *m);

/*
 * The length of the module name in front of `text` ("mqtt" in "mqtt: connected
 * to ..."), or 0 when the text does not start with a lower-case word of at
 * most LOGJSON_MODULE_MAX bytes ([a-z][a-z0-9_]*) followed by ": ".
 */
size_t logjson_module(const char *text);

#endif
