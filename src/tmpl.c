#include "tmpl.h"

#include <stdint.h>
#include <stdlib.h>
#include <string.h>

int tmpl_scan(const char *t, size_t tlen, const struct tmpl_ops *ops, void *ctx)
{
	char *buf = malloc(tlen + 1);   /* the literal being gathered */
	size_t blen = 0, i = 0;
	int rc = 0;

	if (buf == NULL)
		return -1;
	while (i < tlen && rc == 0) {
		const char *close;
		size_t n;

		if (t[i] == '}') {
			if (t[i + 1] == '}')
				buf[blen++] = '}';
			else
				ops->stray(ctx, i);
			i += t[i + 1] == '}' ? 2 : 1;
			continue;
		}
		if (t[i] != '{') {
			buf[blen++] = t[i++];
			continue;
		}
		if (t[i + 1] == '{') {
			buf[blen++] = '{';
			i += 2;
			continue;
		}
		close = strchr(t + i + 1, '}');
		if (close == NULL) {
			ops->unclosed(ctx, i);
			break;
		}
		n = (size_t)(close - (t + i + 1));
		if (blen > 0)
			rc = ops->literal(ctx, buf, blen);
		blen = 0;
		if (rc == 0)
			rc = ops->field(ctx, t + i + 1, n);
		i += n + 2;
	}
	if (rc == 0 && blen > 0)
		rc = ops->literal(ctx, buf, blen);
	free(buf);
	return rc;
}

bool tmpl_index(const char *in, size_t n, unsigned *v)
{
	unsigned long x = 0;

	if (n == 0 || strspn(in, "0123456789") < n)
		return false;
	for (size_t k = 0; k < n && x <= UINT32_MAX; k++)
		x = x * 10 + (unsigned long)(in[k] - '0');
	*v = x > UINT32_MAX ? UINT32_MAX : (unsigned)x;
	return true;
}
