#include "cfgint.h"

#include <string.h>

static bool is_name_char(char c)
{
	return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9')
	       || c == '_' || c == '-' || c == '*';
}

static int hex_digit(char c)
{
	if (c >= '0' && c <= '9')
		return c - '0';
	if (c >= 'a' && c <= 'f')
		return c - 'a' + 10;
	if (c >= 'A' && c <= 'F')
		return c - 'A' + 10;
	return -1;
}

bool cfgint_parse(const char *p, struct cfgint *lit)
{
	const char *start = p;
	unsigned base = 10;
	int digit;
	size_t n;

	memset(lit, 0, sizeof(*lit));
	if (p[0] == '0' && (p[1] == 'x' || p[1] == 'X') && hex_digit(p[2]) >= 0) {
		lit->hex = true;
		base = 16;
		p += 2;
	} else if (*p == '-' || *p == '+') {
		lit->neg = *p == '-';
		p++;
	}
	if (hex_digit(*p) < 0 || (base == 10 && (*p < '0' || *p > '9')))
		return false;
	while ((digit = hex_digit(*p)) >= 0 && (unsigned)digit < base) {
		if (lit->mag > (UINT64_MAX - (unsigned)digit) / base)
			lit->overflow = true;
		else
			lit->mag = lit->mag * base + (unsigned)digit;
		p++;
	}
	if (*p == 'L') {
		lit->suffix = true;
		p++;
	}
	/* A float, or a name that starts with digits: not an integer literal. */
	if (*p == '.' || *p == 'e' || *p == 'E' || is_name_char(*p))
		return false;
	n = (size_t)(p - start);
	if (n >= sizeof(lit->text))
		n = sizeof(lit->text) - 4;
	memcpy(lit->text, start, n);
	if (n < (size_t)(p - start))
		memcpy(lit->text + n, "...", 4);
	else
		lit->text[n] = '\0';
	return true;
}

bool cfgint_value(const struct cfgint *lit, int64_t *v)
{
	if (lit->overflow)
		return false;
	if (lit->neg) {
		if (lit->mag > (uint64_t)INT64_MAX + 1)
			return false;
		*v = lit->mag == (uint64_t)INT64_MAX + 1 ? INT64_MIN : -(int64_t)lit->mag;
		return true;
	}
	if (lit->mag > (uint64_t)INT64_MAX)
		return false;
	*v = (int64_t)lit->mag;
	return true;
}

int64_t cfgint_as_libconfig(const struct cfgint *lit)
{
	uint64_t bits = lit->neg ? 0 - lit->mag : lit->mag;
	int64_t v;

	if (lit->suffix) {
		if (lit->hex)    /* strtoull, saturating */
			return lit->overflow ? -1 : (int64_t)bits;
		if (!cfgint_value(lit, &v))    /* atoll, saturating */
			return lit->neg ? INT64_MIN : INT64_MAX;
		return v;
	}
	if (lit->hex)    /* strtoul, saturating, then truncated to int */
		return lit->overflow ? -1 : (int32_t)(uint32_t)bits;
	if (!cfgint_value(lit, &v))    /* strtol, saturating, then truncated */
		return lit->neg ? 0 : -1;
	return (int32_t)(uint32_t)bits;
}

size_t cfgint_find(const char *text, size_t from, size_t to, const char *name, int64_t stored,
                   struct cfgint *lit)
{
	size_t name_len = strlen(name);

	for (size_t i = from; i < to; i++) {
		const char *p = text + i, *q;

		if (strncmp(p, name, name_len) != 0 || (i > 0 && is_name_char(p[-1])))
			continue;
		q = p + name_len;
		if (is_name_char(*q))
			continue;
		while (*q == ' ' || *q == '\t' || *q == '\r' || *q == '\n')
			q++;
		if (*q != '=' && *q != ':')
			continue;
		q++;
		while (*q == ' ' || *q == '\t' || *q == '\r' || *q == '\n')
			q++;
		if (cfgint_parse(q, lit) && cfgint_as_libconfig(lit) == stored)
			return (size_t)(q - text) + 1;
	}
	return 0;
}
