/*
 * cfgint: integers as the configuration file writes them.
 *
 * libconfig 1.5 keeps a literal without the L suffix in 32 bits by silent
 * truncation (99999999999 is read as 1215752191, 4294968179 as 883) and
 * saturates one with the suffix, so a setting's stored value cannot be
 * trusted.  The loader finds the literal in the file's text instead: the
 * "name = literal" on the setting's line whose literal libconfig would
 * have stored as the value it holds, and uses the number written.  Pure.
 */
#ifndef BRIDGE_CFGINT_H
#define BRIDGE_CFGINT_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

struct cfgint {
	bool hex;
	bool neg;
	bool overflow;      /* the magnitude does not fit in 64 bits */
	bool suffix;        /* 'L' */
	uint64_t mag;
	char text[40];      /* as written, for messages; cut short with "..." */
};

/* Parses a libconfig integer literal at `p`; returns false if there is none. */
bool cfgint_parse(const char *p, struct cfgint *lit);

/* The literal's value into *v, or false when it lies outside int64_t. */
bool cfgint_value(const struct cfgint *lit, int64_t *v);

/* The value libconfig 1.5 stores for the literal (by its int or its int64 getter). */
int64_t cfgint_as_libconfig(const struct cfgint *lit);

/*
 * Looks in text[from, to) for "name = literal" (or "name : literal",
 * blanks and newlines allowed around the sign) whose literal libconfig
 * would have stored as `stored`; returns the offset just past the
 * literal's first character, or 0 when there is none.
 */
size_t cfgint_find(const char *text, size_t from, size_t to, const char *name, int64_t stored,
                   struct cfgint *lit);

#endif
