/*
 * utf8: what is valid UTF-8.  Pure.  The JSON log writer and the metrics
 * exposition both replace what is not, so that a name from the
 * configuration can never make their output invalid.
 */
#ifndef BRIDGE_UTF8_H
#define BRIDGE_UTF8_H

#include <stddef.h>

/*
 * The length of the valid UTF-8 sequence at `s` (`n` > 0 bytes left), or 0
 * for a byte that starts none: overlong forms, UTF-16 surrogates and code
 * points past U+10FFFF are not valid.
 */
size_t utf8_len(const unsigned char *s, size_t n);

#endif
