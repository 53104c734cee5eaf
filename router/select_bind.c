/* A cross-shard SELECT's LIMIT and OFFSET given as Bind parameters: their
 * values, read once per Bind as PostgreSQL would read them (a bigint; NULL
 * is no limit, or no offset), for the merge to apply. */
#include <ctype.h>
#include <stdarg.h>
#include <stdio.h>
#include <string.h>

#include "router/internal.h"

/* err gets "SQLSTATE: message", as the relay sends it on */
static int fail(const char *code, char *err, size_t errlen, const char *fmt, ...)
	__attribute__((format(printf, 4, 5)));

static int fail(const char *code, char *err, size_t errlen, const char *fmt, ...)
{
	va_list ap;
	int n;

	if (!errlen)
		return -1;
	n = snprintf(err, errlen, "%.5s: ", code);
	if (n > 0 && (size_t)n < errlen) {
		va_start(ap, fmt);
		vsnprintf(err + n, errlen - (size_t)n, fmt, ap);
		va_end(ap);
	}
	return -1;
}

/* bigint's text input: blanks around, an optional sign, decimal digits.
 * 0, -1 not valid, -2 out of range. */
static int read_int8_text(const uint8_t *v, size_t len, int64_t *out)
{
	size_t i = 0;
	bool neg = false, any = false;
	uint64_t acc = 0, cap;

	while (i < len && isspace(v[i]))
		i++;
	if (i < len && (v[i] == '+' || v[i] == '-'))
		neg = v[i++] == '-';
	cap = neg ? (uint64_t)INT64_MAX + 1 : (uint64_t)INT64_MAX;
	for (; i < len && v[i] >= '0' && v[i] <= '9'; i++) {
		unsigned d = (unsigned)(v[i] - '0');
		if (acc > (cap - d) / 10)
			return -2;
		acc = acc * 10 + d;
		any = true;
	}
	while (i < len && isspace(v[i]))
		i++;
	if (!any || i != len)
		return -1;
	*out = neg ? (int64_t)(0 - acc) : (int64_t)acc;
	return 0;
}

/* Parameter param's value: 1 and *out, 0 when it is NULL, -1 (err). */
static int param_value(int param, const char *what, int n, const uint8_t *const *values,
		       const int32_t *lengths, const int16_t *formats, int64_t *out, char *err,
		       size_t errlen)
{
	int i = param - 1;
	const uint8_t *v;
	int32_t len;
	int rc;

	if (param > n)
		return fail("08P01", err, errlen,
			    "the Bind message has %d parameters, but the %s is in $%d", n, what,
			    param);
	v = values[i];
	len = lengths[i];
	if (len < 0)
		return 0;
	if (formats && formats[i] != 0) {
		/* binary: a driver may send any integer width */
		if (len == 2)
			*out = (int16_t)((uint16_t)v[0] << 8 | v[1]);
		else if (len == 4)
			*out = (int32_t)((uint32_t)v[0] << 24 | (uint32_t)v[1] << 16
					 | (uint32_t)v[2] << 8 | v[3]);
		else if (len == 8) {
			uint64_t u = 0;
			for (int b = 0; b < 8; b++)
				u = u << 8 | v[b];
			*out = (int64_t)u;
		} else
			return fail("22P03", err, errlen,
				    "incorrect binary data format in bind parameter %d", param);
		return 1;
	}
	rc = read_int8_text(v, (size_t)len, out);
	if (rc == -2)
		return fail("22003", err, errlen, "value \"%.*s\" is out of range for type bigint",
			    len > 64 ? 64 : (int)len, (const char *)v);
	if (rc < 0)
		return fail("22P02", err, errlen, "invalid input syntax for type bigint: \"%.*s\"",
			    len > 64 ? 64 : (int)len, (const char *)v);
	return 1;
}

int router_merge_bind_limits(const struct router_merge *m, int n, const uint8_t *const *values,
			     const int32_t *lengths, const int16_t *formats, int64_t *limit,
			     int64_t *offset, char *err, size_t errlen)
{
	int64_t v;
	int rc;

	*limit = m->limit;
	*offset = m->offset;
	/* PostgreSQL computes OFFSET first: its error wins when both are bad */
	if (m->offset_param > 0) {
		rc = param_value(m->offset_param, "OFFSET", n, values, lengths, formats, &v, err,
				 errlen);
		if (rc < 0)
			return -1;
		if (rc > 0 && v < 0)
			return fail("2201X", err, errlen, "OFFSET must not be negative");
		*offset = rc > 0 ? v : 0;
	}
	if (m->limit_param > 0) {
		rc = param_value(m->limit_param, "LIMIT", n, values, lengths, formats, &v, err,
				 errlen);
		if (rc < 0)
			return -1;
		if (rc > 0 && v < 0)
			return fail("2201W", err, errlen, "LIMIT must not be negative");
		*limit = rc > 0 ? v : -1;
	}
	return 0;
}
