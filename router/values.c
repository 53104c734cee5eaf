/* Typed values of result columns: the comparisons, sums and output forms the
 * merge needs, written from the PostgreSQL type docs and its wire formats
 * (numeric binary: ndigits, weight, sign, dscale, then base-10000 digits;
 * date: int32 days and timestamp: int64 microseconds, both since
 * 2000-01-01). See internal.h for the contracts. */
#include "router/internal.h"

#include <ctype.h>
#include <inttypes.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

enum router_kind router_kind_of(uint32_t type_oid, int16_t format)
{
	bool bin = format == 1;
	switch (type_oid) {
	case ROUTER_OID_INT2:
	case ROUTER_OID_INT4:
	case ROUTER_OID_INT8:
		return bin ? ROUTER_KIND_INT_BIN : ROUTER_KIND_INT_TEXT;
	case ROUTER_OID_OID:
		return bin ? ROUTER_KIND_OID_BIN : ROUTER_KIND_INT_TEXT;
	case ROUTER_OID_FLOAT4:
		return bin ? ROUTER_KIND_FLOAT4_BIN : ROUTER_KIND_FLOAT_TEXT;
	case ROUTER_OID_FLOAT8:
		return bin ? ROUTER_KIND_FLOAT8_BIN : ROUTER_KIND_FLOAT_TEXT;
	case ROUTER_OID_NUMERIC:
		return bin ? ROUTER_KIND_NUMERIC_BIN : ROUTER_KIND_NUMERIC_TEXT;
	case ROUTER_OID_BOOL:
		return bin ? ROUTER_KIND_BOOL_BIN : ROUTER_KIND_BOOL_TEXT;
	case ROUTER_OID_DATE:
		return bin ? ROUTER_KIND_DATE_BIN : ROUTER_KIND_TIME_TEXT;
	case ROUTER_OID_TIMESTAMP:
	case ROUTER_OID_TIMESTAMPTZ:
		return bin ? ROUTER_KIND_TS_BIN : ROUTER_KIND_TIME_TEXT;
	default:
		/* text, varchar, bpchar, name, uuid (text or binary) and the
		 * rest: byte order, which is C collation for text */
		return ROUTER_KIND_BYTES;
	}
}

/* ---- small readers -------------------------------------------------------- */

static uint64_t be_u64(const uint8_t *p, uint32_t n)
{
	uint64_t v = 0;
	for (uint32_t i = 0; i < n; i++)
		v = (v << 8) | p[i];
	return v;
}

static bool parse_i64(const uint8_t *v, uint32_t len, int64_t *out)
{
	uint32_t i = 0;
	bool neg = false;
	if (len && (v[0] == '-' || v[0] == '+')) {
		neg = v[0] == '-';
		i = 1;
	}
	if (i == len)
		return false;
	uint64_t acc = 0, lim = neg ? (uint64_t)INT64_MAX + 1 : (uint64_t)INT64_MAX;
	for (; i < len; i++) {
		if (v[i] < '0' || v[i] > '9')
			return false;
		unsigned d = v[i] - '0';
		if (acc > (lim - d) / 10)
			return false;
		acc = acc * 10 + d;
	}
	*out = neg ? (int64_t)(0 - acc) : (int64_t)acc;
	return true;
}

bool router_int_read(enum router_kind k, const uint8_t *v, uint32_t len, int64_t *out)
{
	switch (k) {
	case ROUTER_KIND_INT_TEXT:
		return parse_i64(v, len, out);
	case ROUTER_KIND_INT_BIN:
		if (len == 2)
			*out = (int16_t)be_u64(v, 2);
		else if (len == 4)
			*out = (int32_t)be_u64(v, 4);
		else if (len == 8)
			*out = (int64_t)be_u64(v, 8);
		else
			return false;
		return true;
	case ROUTER_KIND_OID_BIN:
		if (len != 4)
			return false;
		*out = (int64_t)be_u64(v, 4);
		return true;
	default:
		return false;
	}
}

static bool parse_double(const uint8_t *v, uint32_t len, double *out)
{
	char buf[64];
	if (len == 0 || len >= sizeof(buf))
		return false;
	memcpy(buf, v, len);
	buf[len] = 0;
	char *end;
	*out = strtod(buf, &end);
	return end == buf + len && !isspace((unsigned char)buf[0]);
}

bool router_float_read(enum router_kind k, const uint8_t *v, uint32_t len, double *out)
{
	switch (k) {
	case ROUTER_KIND_FLOAT_TEXT:
		return parse_double(v, len, out);
	case ROUTER_KIND_FLOAT4_BIN: {
		if (len != 4)
			return false;
		uint32_t bits = (uint32_t)be_u64(v, 4);
		float f;
		memcpy(&f, &bits, 4);
		*out = f;
		return true;
	}
	case ROUTER_KIND_FLOAT8_BIN: {
		if (len != 8)
			return false;
		uint64_t bits = be_u64(v, 8);
		memcpy(out, &bits, 8);
		return true;
	}
	default:
		return false;
	}
}

/* PostgreSQL's float order: NaN above everything, equal to itself. */
static int cmp_double(double a, double b)
{
	if (isnan(a))
		return isnan(b) ? 0 : 1;
	if (isnan(b))
		return -1;
	return a < b ? -1 : a > b ? 1 : 0;
}

static int cmp_i64(int64_t a, int64_t b)
{
	return a < b ? -1 : a > b;
}

static int cmp_bytes(const uint8_t *a, uint32_t alen, const uint8_t *b, uint32_t blen)
{
	int c = memcmp(a, b, alen < blen ? alen : blen);
	if (c)
		return c < 0 ? -1 : 1;
	return alen < blen ? -1 : alen > blen;
}

/* ---- numeric in text form, read in place ---------------------------------- */

/* rank orders the specials as PostgreSQL does: -Infinity, numbers,
 * Infinity, NaN. Digits are ASCII, without leading (integer) or trailing
 * (fraction) zeros, so equal values have equal views. */
struct numview {
	int rank;
	bool neg;
	const char *ip;
	int in;
	const char *fp;
	int fn;
};

static bool special_word(const uint8_t *v, uint32_t len, const char *w)
{
	size_t n = strlen(w);
	return len == n && strncasecmp((const char *)v, w, n) == 0;
}

static int special_of(const uint8_t *v, uint32_t len)
{
	if (special_word(v, len, "NaN"))
		return ROUTER_DEC_NAN;
	if (special_word(v, len, "Infinity") || special_word(v, len, "+Infinity"))
		return ROUTER_DEC_PINF;
	if (special_word(v, len, "-Infinity"))
		return ROUTER_DEC_NINF;
	return ROUTER_DEC_FINITE;
}

static int special_rank(int special)
{
	switch (special) {
	case ROUTER_DEC_NINF:
		return 0;
	case ROUTER_DEC_PINF:
		return 2;
	case ROUTER_DEC_NAN:
		return 3;
	default:
		return 1;
	}
}

static void numview_trim(struct numview *nv)
{
	while (nv->in > 0 && nv->ip[0] == '0') {
		nv->ip++;
		nv->in--;
	}
	while (nv->fn > 0 && nv->fp[nv->fn - 1] == '0')
		nv->fn--;
	if (nv->in == 0 && nv->fn == 0)
		nv->neg = false;
}

static bool numview_text(const uint8_t *v, uint32_t len, struct numview *nv)
{
	memset(nv, 0, sizeof(*nv));
	int sp = special_of(v, len);
	nv->rank = special_rank(sp);
	if (sp != ROUTER_DEC_FINITE)
		return true;
	uint32_t i = 0;
	if (len && (v[0] == '-' || v[0] == '+')) {
		nv->neg = v[0] == '-';
		i++;
	}
	nv->ip = (const char *)v + i;
	while (i < len && v[i] >= '0' && v[i] <= '9') {
		nv->in++;
		i++;
	}
	nv->fp = (const char *)v + i;
	if (i < len && v[i] == '.') {
		i++;
		nv->fp++;
		while (i < len && v[i] >= '0' && v[i] <= '9') {
			nv->fn++;
			i++;
		}
	}
	if (i != len || nv->in + nv->fn == 0)
		return false;
	numview_trim(nv);
	return true;
}

static void numview_dec(const struct router_dec *d, struct numview *nv)
{
	memset(nv, 0, sizeof(*nv));
	nv->rank = special_rank(d->special);
	if (d->special != ROUTER_DEC_FINITE)
		return;
	nv->neg = d->neg;
	nv->ip = d->digits;
	nv->in = d->n_int;
	nv->fp = d->digits ? d->digits + d->n_int : NULL;
	nv->fn = d->scale;
	numview_trim(nv);
}

static int mag_cmp(const struct numview *a, const struct numview *b)
{
	if (a->in != b->in)
		return a->in < b->in ? -1 : 1;
	int c = a->in ? memcmp(a->ip, b->ip, (size_t)a->in) : 0;
	if (c)
		return c < 0 ? -1 : 1;
	int n = a->fn > b->fn ? a->fn : b->fn;
	for (int i = 0; i < n; i++) {
		char x = i < a->fn ? a->fp[i] : '0', y = i < b->fn ? b->fp[i] : '0';
		if (x != y)
			return x < y ? -1 : 1;
	}
	return 0;
}

static int numview_cmp(const struct numview *a, const struct numview *b)
{
	if (a->rank != b->rank)
		return a->rank < b->rank ? -1 : 1;
	if (a->rank != 1)
		return 0;
	if (a->neg != b->neg)
		return a->neg ? -1 : 1;
	int c = mag_cmp(a, b);
	return a->neg ? -c : c;
}

/* ---- exact decimals ---------------------------------------------------------- */

void router_dec_free(struct router_dec *d)
{
	free(d->digits);
	memset(d, 0, sizeof(*d));
}

/* Takes n_int + scale digits from src (may hold leading integer zeros). */
static int dec_set(struct router_dec *d, bool neg, const char *ip, int n_int, const char *fp,
		   int scale)
{
	while (n_int > 0 && ip[0] == '0') {
		ip++;
		n_int--;
	}
	char *digits = NULL;
	if (n_int + scale > 0) {
		digits = malloc((size_t)(n_int + scale));
		if (!digits)
			return -2;
		memcpy(digits, ip, (size_t)n_int);
		memcpy(digits + n_int, fp, (size_t)scale);
	}
	free(d->digits);
	d->special = ROUTER_DEC_FINITE;
	d->digits = digits;
	d->n_int = n_int;
	d->scale = scale;
	d->neg = neg;
	bool zero = true;
	for (int i = 0; i < n_int + scale && zero; i++)
		zero = digits[i] == '0';
	if (zero)
		d->neg = false;
	return 0;
}

static void dec_set_special(struct router_dec *d, int special)
{
	router_dec_free(d);
	d->special = special;
}

int router_dec_from_text(struct router_dec *d, const uint8_t *v, size_t len)
{
	memset(d, 0, sizeof(*d));
	while (len && isspace(v[0])) {
		v++;
		len--;
	}
	while (len && isspace(v[len - 1]))
		len--;
	int sp = special_of(v, (uint32_t)len);
	if (sp != ROUTER_DEC_FINITE) {
		d->special = sp;
		return 0;
	}
	size_t i = 0;
	bool neg = false;
	if (len && (v[0] == '-' || v[0] == '+')) {
		neg = v[0] == '-';
		i++;
	}
	size_t is = i;
	while (i < len && isdigit(v[i]))
		i++;
	size_t ie = i, fs = i, fe = i;
	if (i < len && v[i] == '.') {
		fs = ++i;
		while (i < len && isdigit(v[i]))
			i++;
		fe = i;
	}
	if (i != len || ie - is + fe - fs == 0 || ie - is > 1000000 || fe - fs > 1000000)
		return -1;
	return dec_set(d, neg, (const char *)v + is, (int)(ie - is), (const char *)v + fs,
		       (int)(fe - fs));
}

int router_dec_from_int64(struct router_dec *d, int64_t v)
{
	char buf[24];
	int n = snprintf(buf, sizeof(buf), "%" PRId64, v);
	return router_dec_from_text(d, (const uint8_t *)buf, (size_t)n);
}

static bool numeric_bin_header(const uint8_t *v, size_t len, int *ndigits, int *weight, int *sign,
			       int *dscale)
{
	if (len < 8)
		return false;
	*ndigits = (int16_t)be_u64(v, 2);
	*weight = (int16_t)be_u64(v + 2, 2);
	*sign = (int)be_u64(v + 4, 2);
	*dscale = (int16_t)be_u64(v + 6, 2);
	if (*ndigits < 0 || len != 8 + 2 * (size_t)*ndigits || *dscale < 0)
		return false;
	if (*sign != 0 && *sign != 0x4000 && *sign != 0xC000 && *sign != 0xD000 && *sign != 0xF000)
		return false;
	for (int i = 0; i < *ndigits; i++)
		if (be_u64(v + 8 + 2 * i, 2) >= 10000)
			return false;
	return true;
}

int router_dec_from_numeric_bin(struct router_dec *d, const uint8_t *v, size_t len)
{
	int ndigits, weight, sign, dscale;
	memset(d, 0, sizeof(*d));
	if (!numeric_bin_header(v, len, &ndigits, &weight, &sign, &dscale))
		return -1;
	if (sign == 0xC000 || sign == 0xD000 || sign == 0xF000) {
		d->special = sign == 0xC000 ? ROUTER_DEC_NAN
			: sign == 0xD000    ? ROUTER_DEC_PINF
					    : ROUTER_DEC_NINF;
		return 0;
	}
	int n_int_groups = weight >= 0 ? weight + 1 : 0;
	int n_frac_groups = (dscale + 3) / 4;
	char *buf = malloc((size_t)(n_int_groups + n_frac_groups) * 4 + 1);
	if (!buf)
		return -2;
	char *p = buf;
	for (int g = 0; g < n_int_groups + n_frac_groups; g++) {
		/* group g has power weight - g (integer part) or -(k) after it */
		/* integer groups have powers weight..0 (index g); fraction
		 * group k (1-based) has power -k, index weight + k */
		int idx = g < n_int_groups ? g : weight + (g - n_int_groups) + 1;
		int val = idx >= 0 && idx < ndigits ? (int)be_u64(v + 8 + 2 * idx, 2) : 0;
		for (int i = 3; i >= 0; i--, val /= 10)
			p[i] = (char)('0' + val % 10);
		p += 4;
	}
	int rc = dec_set(d, sign == 0x4000, buf, n_int_groups * 4, buf + n_int_groups * 4, dscale);
	free(buf);
	return rc;
}

int router_dec_cmp(const struct router_dec *a, const struct router_dec *b)
{
	struct numview x, y;
	numview_dec(a, &x);
	numview_dec(b, &y);
	return numview_cmp(&x, &y);
}

/* The digit at power of ten e (0 outside the stored digits). */
static int dec_digit(const struct router_dec *d, int e)
{
	if (e >= 0) {
		int i = d->n_int - 1 - e;
		return i >= 0 ? d->digits[i] - '0' : 0;
	}
	return -e <= d->scale ? d->digits[d->n_int - e - 1] - '0' : 0;
}

int router_dec_add(struct router_dec *acc, const struct router_dec *x)
{
	if (acc->special != ROUTER_DEC_FINITE || x->special != ROUTER_DEC_FINITE) {
		int a = acc->special, b = x->special, r;
		if (a == ROUTER_DEC_NAN || b == ROUTER_DEC_NAN)
			r = ROUTER_DEC_NAN;
		else if (a != ROUTER_DEC_FINITE && b != ROUTER_DEC_FINITE)
			r = a == b ? a : ROUTER_DEC_NAN; /* Infinity + -Infinity */
		else
			r = a != ROUTER_DEC_FINITE ? a : b;
		dec_set_special(acc, r);
		return 0;
	}
	int scale = acc->scale > x->scale ? acc->scale : x->scale;
	int n_int = (acc->n_int > x->n_int ? acc->n_int : x->n_int) + 1;
	int n = n_int + scale;
	char *out = malloc((size_t)n + 1);
	if (!out)
		return -2;
	const struct router_dec *big = acc, *small = x;
	bool neg = acc->neg;
	bool subtract = acc->neg != x->neg;
	if (subtract) {
		struct numview va, vx;
		numview_dec(acc, &va);
		numview_dec(x, &vx);
		if (mag_cmp(&va, &vx) < 0) {
			big = x;
			small = acc;
			neg = x->neg;
		}
	}
	int carry = 0;
	for (int e = -scale, i = n - 1; i >= 0; e++, i--) {
		int s = subtract ? dec_digit(big, e) - dec_digit(small, e) - carry
				 : dec_digit(big, e) + dec_digit(small, e) + carry;
		carry = 0;
		if (s < 0) {
			s += 10;
			carry = 1;
		} else if (s >= 10) {
			s -= 10;
			carry = 1;
		}
		out[i] = (char)('0' + s);
	}
	int rc = dec_set(acc, neg, out, n_int, out + n_int, scale);
	free(out);
	return rc;
}

/* The first base-10000 digit and its weight, as numeric stores a value
 * (numeric division picks its scale from them). Zero: weight 0, digit 0. */
static void dec_nbase_head(const struct router_dec *d, int *weight, int *first)
{
	*weight = 0;
	*first = 0;
	for (int i = 0; i < d->n_int + d->scale; i++) {
		if (d->digits[i] == '0')
			continue;
		int e = d->n_int - 1 - i;
		int w = e >= 0 ? e / 4 : -((-e + 3) / 4);
		int val = 0;
		for (int p = 4 * w + 3; p >= 4 * w; p--)
			val = val * 10 + dec_digit(d, p);
		*weight = w;
		*first = val;
		return;
	}
}

int router_dec_div_count(const struct router_dec *sum, int64_t n, struct router_dec *out)
{
	memset(out, 0, sizeof(*out));
	if (sum->special != ROUTER_DEC_FINITE) {
		out->special = sum->special;
		return 0;
	}
	struct router_dec count;
	if (router_dec_from_int64(&count, n))
		return -2;
	int w1, f1, w2, f2;
	dec_nbase_head(sum, &w1, &f1);
	dec_nbase_head(&count, &w2, &f2);
	router_dec_free(&count);
	/* numeric's select_div_scale: at least 16 significant digits, not
	 * below either operand's scale, within 0..1000 */
	int qweight = w1 - w2 - (f1 <= f2 ? 1 : 0);
	int rscale = 16 - qweight * 4;
	if (rscale < sum->scale)
		rscale = sum->scale;
	if (rscale < 0)
		rscale = 0;
	if (rscale > 1000)
		rscale = 1000;
	/* long division from the top digit down to one past rscale, then
	 * round half away from zero on that extra digit */
	int top = sum->n_int > 0 ? sum->n_int - 1 : 0;
	int len = top + 1 + rscale + 1;
	char *q = malloc((size_t)len + 1);
	if (!q)
		return -2;
	q[0] = '0';
	unsigned __int128 rem = 0;
	for (int i = 0, e = top; i < len; i++, e--) {
		rem = rem * 10 + (unsigned)dec_digit(sum, e);
		q[i + 1] = (char)('0' + (int)(rem / (uint64_t)n));
		rem %= (uint64_t)n;
	}
	/* q[0] is a spare leading digit for the carry */
	bool up = q[len] >= '5';
	if (up) {
		int i = len - 1;
		while (q[i] == '9')
			q[i--] = '0';
		q[i]++;
	}
	int rc = dec_set(out, sum->neg, q, top + 2, q + top + 2, rscale);
	free(q);
	return rc;
}

uint8_t *router_dec_encode(const struct router_dec *d, bool binary, uint32_t *len)
{
	if (!binary) {
		const char *word = d->special == ROUTER_DEC_NAN ? "NaN"
			: d->special == ROUTER_DEC_PINF         ? "Infinity"
			: d->special == ROUTER_DEC_NINF         ? "-Infinity"
								: NULL;
		size_t cap = word ? strlen(word) : (size_t)d->n_int + (size_t)d->scale + 3;
		char *out = malloc(cap + 1);
		if (!out)
			return NULL;
		if (word) {
			memcpy(out, word, cap);
			*len = (uint32_t)cap;
			return (uint8_t *)out;
		}
		char *p = out;
		if (d->neg)
			*p++ = '-';
		if (d->n_int) {
			memcpy(p, d->digits, (size_t)d->n_int);
			p += d->n_int;
		} else {
			*p++ = '0';
		}
		if (d->scale) {
			*p++ = '.';
			memcpy(p, d->digits + d->n_int, (size_t)d->scale);
			p += d->scale;
		}
		*len = (uint32_t)(p - out);
		return (uint8_t *)out;
	}
	int ig = (d->n_int + 3) / 4, fg = (d->scale + 3) / 4;
	uint8_t *out = malloc(8 + 2 * (size_t)(ig + fg));
	if (!out)
		return NULL;
	int sign = d->special == ROUTER_DEC_NAN ? 0xC000
		: d->special == ROUTER_DEC_PINF ? 0xD000
		: d->special == ROUTER_DEC_NINF ? 0xF000
		: d->neg                        ? 0x4000
						: 0;
	int ndigits = 0, weight = 0, first = -1, last = -1;
	if (d->special == ROUTER_DEC_FINITE) {
		/* groups ig-1 .. -fg by power; keep those between the first and
		 * last non-zero ones */
		for (int g = ig - 1; g >= -fg; g--) {
			int val = 0;
			for (int p = 4 * g + 3; p >= 4 * g; p--)
				val = val * 10 + dec_digit(d, p);
			if (val && first < 0)
				first = ig - 1 - g;
			if (val)
				last = ig - 1 - g;
		}
		if (first >= 0) {
			weight = ig - 1 - first;
			for (int i = first; i <= last; i++) {
				int g = ig - 1 - i, val = 0;
				for (int p = 4 * g + 3; p >= 4 * g; p--)
					val = val * 10 + dec_digit(d, p);
				out[8 + 2 * ndigits] = (uint8_t)(val >> 8);
				out[9 + 2 * ndigits] = (uint8_t)val;
				ndigits++;
			}
		}
	}
	int dscale = d->special == ROUTER_DEC_FINITE ? d->scale : 0;
	uint16_t head[4] = { (uint16_t)ndigits, (uint16_t)weight, (uint16_t)sign,
			     (uint16_t)dscale };
	for (int i = 0; i < 4; i++) {
		out[2 * i] = (uint8_t)(head[i] >> 8);
		out[2 * i + 1] = (uint8_t)head[i];
	}
	*len = 8 + 2 * (uint32_t)ndigits;
	return out;
}

/* ---- floats out ------------------------------------------------------------- */

int router_float_format(double v, bool float4, char *buf)
{
	if (isnan(v))
		return snprintf(buf, 32, "NaN");
	if (isinf(v))
		return snprintf(buf, 32, v > 0 ? "Infinity" : "-Infinity");
	if (v == 0)
		return snprintf(buf, 32, signbit(v) ? "-0" : "0");
	char tmp[40];
	int maxp = float4 ? 9 : 17;
	for (int p = 1; p <= maxp; p++) {
		snprintf(tmp, sizeof(tmp), "%.*e", p - 1, v);
		double back = strtod(tmp, NULL);
		if (float4 ? (float)back == (float)v : back == v)
			break;
	}
	/* tmp: [-]d[.ddd]e[+-]xx */
	char digits[24];
	int nd = 0;
	const char *p = tmp;
	bool neg = *p == '-';
	if (neg)
		p++;
	for (; *p != 'e'; p++)
		if (*p != '.')
			digits[nd++] = *p;
	int exp = atoi(p + 1);
	while (nd > 1 && digits[nd - 1] == '0')
		nd--;
	/* fixed notation where %g would use it: exponents -4 up to the type's
	 * precision (15 for float8, 6 for float4) */
	char *o = buf;
	if (neg)
		*o++ = '-';
	if (exp >= -4 && exp < (float4 ? 6 : 15)) {
		if (exp < 0) {
			*o++ = '0';
			*o++ = '.';
			for (int i = 0; i < -exp - 1; i++)
				*o++ = '0';
			memcpy(o, digits, (size_t)nd);
			o += nd;
		} else {
			for (int i = 0; i <= exp || i < nd; i++) {
				if (i == exp + 1)
					*o++ = '.';
				*o++ = i < nd ? digits[i] : '0';
			}
		}
	} else {
		*o++ = digits[0];
		if (nd > 1) {
			*o++ = '.';
			memcpy(o, digits + 1, (size_t)nd - 1);
			o += nd - 1;
		}
		o += sprintf(o, "e%c%02d", exp < 0 ? '-' : '+', exp < 0 ? -exp : exp);
	}
	*o = 0;
	return (int)(o - buf);
}

/* ---- dates and timestamps ------------------------------------------------------ */

/* An instant: rank 0 -infinity, 1 finite (usec since 1970-01-01 UTC), 2
 * infinity. */
struct instant {
	int rank;
	__int128 usec;
};

#define USEC_PER_DAY   INT64_C(86400000000)
#define DAYS_1970_2000 10957

/* Days since 1970-01-01 of a proleptic Gregorian date (y astronomical:
 * 1 BC is 0). */
static int64_t days_from_civil(int64_t y, int64_t m, int64_t d)
{
	y -= m <= 2;
	int64_t era = (y >= 0 ? y : y - 399) / 400;
	int64_t yoe = y - era * 400;
	int64_t doy = (153 * (m + (m > 2 ? -3 : 9)) + 2) / 5 + d - 1;
	int64_t doe = yoe * 365 + yoe / 4 - yoe / 100 + doy;
	return era * 146097 + doe - 719468;
}

static bool read_num(const uint8_t **p, const uint8_t *end, int min, int max, int64_t *out)
{
	int n = 0;
	int64_t v = 0;
	while (*p < end && **p >= '0' && **p <= '9' && n < max) {
		v = v * 10 + (**p - '0');
		(*p)++;
		n++;
	}
	*out = v;
	return n >= min;
}

/* DateStyle ISO output: "2024-01-05", "2024-01-05 10:00:00.5",
 * "2024-01-05 10:00:00+05:30", "0044-03-15 BC", "infinity". */
static bool parse_instant(const uint8_t *v, uint32_t len, struct instant *out)
{
	if (special_word(v, len, "infinity")) {
		out->rank = 2;
		return true;
	}
	if (special_word(v, len, "-infinity")) {
		out->rank = 0;
		return true;
	}
	const uint8_t *p = v, *end = v + len;
	int64_t y, mo, d, h = 0, mi = 0, s = 0, frac = 0, off = 0;
	if (!read_num(&p, end, 1, 9, &y) || p == end || *p++ != '-' || !read_num(&p, end, 2, 2, &mo)
	    || p == end || *p++ != '-' || !read_num(&p, end, 2, 2, &d))
		return false;
	if (mo < 1 || mo > 12 || d < 1 || d > 31)
		return false;
	if (end - p >= 2 && p[0] == ' ' && p[1] >= '0' && p[1] <= '9') {
		p++;
		if (!read_num(&p, end, 2, 2, &h) || p == end || *p++ != ':'
		    || !read_num(&p, end, 2, 2, &mi) || p == end || *p++ != ':'
		    || !read_num(&p, end, 2, 2, &s))
			return false;
		if (p < end && *p == '.') {
			p++;
			int n = 0;
			while (p < end && *p >= '0' && *p <= '9') {
				if (n < 6) {
					frac = frac * 10 + (*p - '0');
					n++;
				}
				p++;
			}
			while (n++ < 6)
				frac *= 10;
		}
		if (p < end && (*p == '+' || *p == '-')) {
			int sign = *p++ == '-' ? -1 : 1;
			int64_t oh, om = 0, os = 0;
			if (!read_num(&p, end, 2, 2, &oh))
				return false;
			if (p < end && *p == ':') {
				p++;
				if (!read_num(&p, end, 2, 2, &om))
					return false;
				if (p < end && *p == ':') {
					p++;
					if (!read_num(&p, end, 2, 2, &os))
						return false;
				}
			}
			off = sign * (oh * 3600 + om * 60 + os);
		}
	}
	if (end - p == 3 && memcmp(p, " BC", 3) == 0) {
		y = 1 - y;
		p = end;
	}
	if (p != end)
		return false;
	out->rank = 1;
	out->usec = (__int128)days_from_civil(y, mo, d) * USEC_PER_DAY
		+ ((h * 60 + mi) * 60 + s - off) * INT64_C(1000000) + frac;
	return true;
}

static bool instant_of(enum router_kind k, const uint8_t *v, uint32_t len, struct instant *out)
{
	if (k == ROUTER_KIND_DATE_BIN) {
		if (len != 4)
			return false;
		int32_t days = (int32_t)be_u64(v, 4);
		out->rank = days == INT32_MAX ? 2 : days == INT32_MIN ? 0 : 1;
		out->usec = ((__int128)days + DAYS_1970_2000) * USEC_PER_DAY;
		return true;
	}
	if (k == ROUTER_KIND_TS_BIN) {
		if (len != 8)
			return false;
		int64_t us = (int64_t)be_u64(v, 8);
		out->rank = us == INT64_MAX ? 2 : us == INT64_MIN ? 0 : 1;
		out->usec = (__int128)us + (__int128)DAYS_1970_2000 * USEC_PER_DAY;
		return true;
	}
	return parse_instant(v, len, out);
}

static int instant_cmp(const struct instant *a, const struct instant *b)
{
	if (a->rank != b->rank)
		return a->rank < b->rank ? -1 : 1;
	if (a->rank != 1)
		return 0;
	return a->usec < b->usec ? -1 : a->usec > b->usec;
}

/* ---- per kind ------------------------------------------------------------------ */

static bool bool_text(const uint8_t *v, uint32_t len, bool *out)
{
	static const char *const yes[] = { "t", "true", "yes", "on", "1" };
	static const char *const no[] = { "f", "false", "no", "off", "0" };
	for (size_t i = 0; i < 5; i++) {
		if (special_word(v, len, yes[i])) {
			*out = true;
			return true;
		}
		if (special_word(v, len, no[i])) {
			*out = false;
			return true;
		}
	}
	return false;
}

static bool dec_of(enum router_kind k, const uint8_t *v, uint32_t len, struct router_dec *d)
{
	int64_t i;
	switch (k) {
	case ROUTER_KIND_NUMERIC_BIN:
		return router_dec_from_numeric_bin(d, v, len) == 0;
	case ROUTER_KIND_INT_BIN:
	case ROUTER_KIND_OID_BIN:
		return router_int_read(k, v, len, &i) && router_dec_from_int64(d, i) == 0;
	default:
		return router_dec_from_text(d, v, len) == 0;
	}
}

bool router_value_valid(enum router_kind k, const uint8_t *v, uint32_t len)
{
	int64_t i;
	double f;
	struct numview nv;
	struct instant t;
	int nd, w, s, ds;
	switch (k) {
	case ROUTER_KIND_INT_TEXT:
	case ROUTER_KIND_INT_BIN:
	case ROUTER_KIND_OID_BIN:
		return router_int_read(k, v, len, &i);
	case ROUTER_KIND_FLOAT_TEXT:
	case ROUTER_KIND_FLOAT4_BIN:
	case ROUTER_KIND_FLOAT8_BIN:
		return router_float_read(k, v, len, &f);
	case ROUTER_KIND_NUMERIC_TEXT:
		return numview_text(v, len, &nv);
	case ROUTER_KIND_NUMERIC_BIN:
		return numeric_bin_header(v, len, &nd, &w, &s, &ds);
	case ROUTER_KIND_BOOL_TEXT:
		return len == 1 && (v[0] == 't' || v[0] == 'f');
	case ROUTER_KIND_BOOL_BIN:
		return len == 1;
	case ROUTER_KIND_TIME_TEXT:
	case ROUTER_KIND_DATE_BIN:
	case ROUTER_KIND_TS_BIN:
		return instant_of(k, v, len, &t);
	default:
		return true;
	}
}

int router_value_cmp(enum router_kind k, const uint8_t *a, uint32_t alen, const uint8_t *b,
		     uint32_t blen)
{
	switch (k) {
	case ROUTER_KIND_INT_TEXT:
	case ROUTER_KIND_INT_BIN:
	case ROUTER_KIND_OID_BIN: {
		int64_t x = 0, y = 0;
		router_int_read(k, a, alen, &x);
		router_int_read(k, b, blen, &y);
		return cmp_i64(x, y);
	}
	case ROUTER_KIND_FLOAT_TEXT:
	case ROUTER_KIND_FLOAT4_BIN:
	case ROUTER_KIND_FLOAT8_BIN: {
		double x = 0, y = 0;
		router_float_read(k, a, alen, &x);
		router_float_read(k, b, blen, &y);
		return cmp_double(x, y);
	}
	case ROUTER_KIND_NUMERIC_TEXT: {
		struct numview x, y;
		numview_text(a, alen, &x);
		numview_text(b, blen, &y);
		return numview_cmp(&x, &y);
	}
	case ROUTER_KIND_NUMERIC_BIN: {
		struct router_dec x, y;
		router_dec_from_numeric_bin(&x, a, alen);
		router_dec_from_numeric_bin(&y, b, blen);
		int c = router_dec_cmp(&x, &y);
		router_dec_free(&x);
		router_dec_free(&y);
		return c;
	}
	case ROUTER_KIND_BOOL_TEXT:
	case ROUTER_KIND_BOOL_BIN: {
		bool x = k == ROUTER_KIND_BOOL_BIN ? a[0] != 0 : a[0] == 't';
		bool y = k == ROUTER_KIND_BOOL_BIN ? b[0] != 0 : b[0] == 't';
		return (int)x - (int)y;
	}
	case ROUTER_KIND_DATE_BIN:
		return cmp_i64((int32_t)be_u64(a, 4), (int32_t)be_u64(b, 4));
	case ROUTER_KIND_TS_BIN:
		return cmp_i64((int64_t)be_u64(a, 8), (int64_t)be_u64(b, 8));
	case ROUTER_KIND_TIME_TEXT: {
		struct instant x = { 0 }, y = { 0 };
		parse_instant(a, alen, &x);
		parse_instant(b, blen, &y);
		return instant_cmp(&x, &y);
	}
	default:
		return cmp_bytes(a, alen, b, blen);
	}
}

enum value_class { CLASS_NUM, CLASS_FLOAT, CLASS_BOOL, CLASS_TIME, CLASS_BYTES, CLASS_CONST };

static enum value_class class_of(enum router_kind k)
{
	switch (k) {
	case ROUTER_KIND_INT_TEXT:
	case ROUTER_KIND_INT_BIN:
	case ROUTER_KIND_OID_BIN:
	case ROUTER_KIND_NUMERIC_TEXT:
	case ROUTER_KIND_NUMERIC_BIN:
		return CLASS_NUM;
	case ROUTER_KIND_FLOAT_TEXT:
	case ROUTER_KIND_FLOAT4_BIN:
	case ROUTER_KIND_FLOAT8_BIN:
		return CLASS_FLOAT;
	case ROUTER_KIND_BOOL_TEXT:
	case ROUTER_KIND_BOOL_BIN:
		return CLASS_BOOL;
	case ROUTER_KIND_TIME_TEXT:
	case ROUTER_KIND_DATE_BIN:
	case ROUTER_KIND_TS_BIN:
		return CLASS_TIME;
	case ROUTER_KIND_CONST:
		return CLASS_CONST;
	default:
		return CLASS_BYTES;
	}
}

static bool float_of(enum router_kind k, const uint8_t *v, uint32_t len, double *out)
{
	int64_t i;
	switch (class_of(k)) {
	case CLASS_FLOAT:
		return router_float_read(k, v, len, out);
	case CLASS_NUM:
		if (router_int_read(k, v, len, &i)) {
			*out = (double)i;
			return true;
		}
		if (k == ROUTER_KIND_NUMERIC_BIN) {
			struct router_dec d;
			uint32_t n;
			uint8_t *t = NULL;
			bool ok = router_dec_from_numeric_bin(&d, v, len) == 0
				&& (t = router_dec_encode(&d, false, &n)) != NULL
				&& parse_double(t, n, out);
			free(t);
			router_dec_free(&d);
			return ok;
		}
		return parse_double(v, len, out);
	default: {
		/* a constant: blanks around it are fine */
		while (len && isspace(v[0])) {
			v++;
			len--;
		}
		while (len && isspace(v[len - 1]))
			len--;
		return parse_double(v, len, out);
	}
	}
}

int router_value_cmp_any(enum router_kind ka, const uint8_t *a, uint32_t alen, enum router_kind kb,
			 const uint8_t *b, uint32_t blen, int *out)
{
	enum value_class ca = class_of(ka), cb = class_of(kb), c;
	if (ca == CLASS_CONST && cb == CLASS_CONST)
		c = CLASS_BYTES;
	else if (ca == CLASS_CONST || ca == cb)
		c = cb;
	else if (cb == CLASS_CONST)
		c = ca;
	else if ((ca == CLASS_NUM || ca == CLASS_FLOAT) && (cb == CLASS_NUM || cb == CLASS_FLOAT))
		c = CLASS_FLOAT;
	else
		return -1;
	if (ka == kb && ka != ROUTER_KIND_CONST) {
		*out = router_value_cmp(ka, a, alen, b, blen);
		return 0;
	}
	switch (c) {
	case CLASS_NUM: {
		struct router_dec x, y;
		bool okx = dec_of(ka, a, alen, &x), oky = dec_of(kb, b, blen, &y);
		if (okx && oky)
			*out = router_dec_cmp(&x, &y);
		if (okx)
			router_dec_free(&x);
		if (oky)
			router_dec_free(&y);
		if (okx && oky)
			return 0;
		/* a constant such as 1e3 is no plain decimal: as floats */
	}
	/* fall through */
	case CLASS_FLOAT: {
		double x, y;
		if (!float_of(ka, a, alen, &x) || !float_of(kb, b, blen, &y))
			return -1;
		*out = cmp_double(x, y);
		return 0;
	}
	case CLASS_BOOL: {
		bool x, y;
		if (!(ka == ROUTER_KIND_BOOL_BIN ? alen == 1 && ((x = a[0]), true)
						 : bool_text(a, alen, &x))
		    || !(kb == ROUTER_KIND_BOOL_BIN ? blen == 1 && ((y = b[0]), true)
						    : bool_text(b, blen, &y)))
			return -1;
		*out = (int)x - (int)y;
		return 0;
	}
	case CLASS_TIME: {
		struct instant x, y;
		if (!instant_of(ka == ROUTER_KIND_CONST ? ROUTER_KIND_TIME_TEXT : ka, a, alen, &x)
		    || !instant_of(kb == ROUTER_KIND_CONST ? ROUTER_KIND_TIME_TEXT : kb, b, blen,
				   &y))
			return -1;
		*out = instant_cmp(&x, &y);
		return 0;
	}
	default:
		*out = cmp_bytes(a, alen, b, blen);
		return 0;
	}
}

size_t router_value_norm_max(enum router_kind k, uint32_t len)
{
	return k == ROUTER_KIND_NUMERIC_BIN ? 2 * (size_t)len + 8 : (size_t)len + 2;
}

size_t router_value_norm(enum router_kind k, const uint8_t *v, uint32_t len, uint8_t *out)
{
	switch (k) {
	case ROUTER_KIND_NUMERIC_TEXT:
	case ROUTER_KIND_NUMERIC_BIN: {
		struct numview nv;
		struct router_dec d = { 0 };
		bool ok;
		if (k == ROUTER_KIND_NUMERIC_TEXT) {
			ok = numview_text(v, len, &nv);
		} else {
			ok = router_dec_from_numeric_bin(&d, v, len) == 0;
			numview_dec(&d, &nv);
		}
		size_t n = 0;
		if (ok) {
			out[n++] = (uint8_t)('0' + nv.rank);
			if (nv.neg)
				out[n++] = '-';
			memcpy(out + n, nv.ip, (size_t)nv.in);
			n += (size_t)nv.in;
			out[n++] = '.';
			if (nv.fn)
				memcpy(out + n, nv.fp, (size_t)nv.fn);
			n += (size_t)nv.fn;
		}
		router_dec_free(&d);
		if (ok)
			return n;
		break;
	}
	case ROUTER_KIND_FLOAT_TEXT:
		if (len == 2 && memcmp(v, "-0", 2) == 0) {
			out[0] = '0';
			return 1;
		}
		break;
	case ROUTER_KIND_FLOAT4_BIN:
	case ROUTER_KIND_FLOAT8_BIN: {
		double f;
		if (router_float_read(k, v, len, &f) && (f == 0 || isnan(f))) {
			memset(out, 0, len);
			if (isnan(f))
				out[0] = 0xff;
			return len;
		}
		break;
	}
	default:
		break;
	}
	if (len)
		memcpy(out, v, len);
	return len;
}
