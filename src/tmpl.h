/*
 * tmpl: the brace syntax that the uplink's routing_key templates (rkey.h)
 * and the downlink's topic templates (dlmap.h) share.  Text stands for
 * itself, "{{" and "}}" for a brace, and "{...}" is a field whose meaning
 * the caller gives.  Pure: the scan only splits, and reports what is
 * malformed; each caller compiles the pieces into parts of its own.
 */
#ifndef BRIDGE_TMPL_H
#define BRIDGE_TMPL_H

#include <stdbool.h>
#include <stddef.h>

struct tmpl_ops {
	/* A run of text, braces unescaped, never empty; 0, or -1 to stop. */
	int (*literal)(void *ctx, const char *s, size_t n);
	/* The inside of a field, in[0..n) (n may be 0); 0, or -1 to stop. */
	int (*field)(void *ctx, const char *in, size_t n);
	/* A '}' at `offset` that is neither doubled nor closing a field. */
	void (*stray)(void *ctx, size_t offset);
	/* A '{' at `offset` with no '}' after it; the scan ends there. */
	void (*unclosed)(void *ctx, size_t offset);
};

/*
 * Scans t[0..tlen) (NUL-terminated), calling `ops` in order; the text
 * before each field and at the end goes to `literal` first.  Returns 0,
 * or -1 when a callback stopped it or memory ran out.
 */
int tmpl_scan(const char *t, size_t tlen, const struct tmpl_ops *ops, void *ctx);

/*
 * Whether in[0..n) is a decimal index ("1", "42"); *v then holds it, at
 * most UINT32_MAX (a larger one can never match a word anyway).
 */
bool tmpl_index(const char *in, size_t n, unsigned *v);

#endif
