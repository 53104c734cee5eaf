/* router/merge.c and router/values.c: the merge of answers from several
 * shards. Specs are built by hand (no planner), backend messages are
 * synthetic, and the client's messages are read back by a parser written
 * here from the protocol docs ("Message Formats"), so expectations are
 * written as text: "T(a:23) [1] [2] C:SELECT 2".
 *
 * Where an expected value is PostgreSQL's (avg and sum scales, float
 * output), it was taken from a PostgreSQL 15.18 cluster with psql, with the
 * query in a comment next to it. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "router/internal.h"
#include "router/router.h"

/* ---- building backend messages ------------------------------------------------ */

struct val {
	const char *p;
	int32_t len;
};

#define V(s) ((struct val){ (s), (int32_t)sizeof(s) - 1 })
#define NUL  ((struct val){ NULL, -1 })
#define BIN(...)                                                       \
	((struct val){ (const char *)(const uint8_t[]){ __VA_ARGS__ }, \
		       (int32_t)sizeof((const uint8_t[]){ __VA_ARGS__ }) })

struct col {
	const char *name;
	uint32_t type;
	int16_t format;
};

static char last_state[6];
static char last_err[256];

static int feed(struct router_merger *m, int s, uint8_t type, const uint8_t *body, uint32_t len)
{
	/* an exact copy, so that ASan sees any read past the body */
	uint8_t *copy = malloc(len ? len : 1);
	assert_non_null(copy);
	memcpy(copy, body, len);
	int rc = router_merger_feed(m, s, type, copy, len, last_state, last_err, sizeof(last_err));
	free(copy);
	if (rc && getenv("MERGE_DEBUG"))
		fprintf(stderr, "feed: %s %s\n", last_state, last_err);
	return rc;
}

static int feed_desc(struct router_merger *m, int s, int n, const struct col *cols)
{
	uint8_t b[2048];
	size_t o = 2;
	b[0] = (uint8_t)(n >> 8);
	b[1] = (uint8_t)n;
	for (int i = 0; i < n; i++) {
		size_t l = strlen(cols[i].name) + 1;
		memcpy(b + o, cols[i].name, l);
		o += l;
		uint32_t t = cols[i].type;
		int16_t typlen = t == ROUTER_OID_INT8 || t == ROUTER_OID_FLOAT8 ? 8
			: t == ROUTER_OID_INT4 || t == ROUTER_OID_FLOAT4        ? 4
			: t == ROUTER_OID_BOOL                                  ? 1
										: -1;
		uint8_t f[18] = { 0,
				  0,
				  0x40,
				  0,
				  0,
				  (uint8_t)(i + 1), /* table 16384, attnum */
				  (uint8_t)(t >> 24),
				  (uint8_t)(t >> 16),
				  (uint8_t)(t >> 8),
				  (uint8_t)t,
				  (uint8_t)((uint16_t)typlen >> 8),
				  (uint8_t)typlen,
				  0xff,
				  0xff,
				  0xff,
				  0xff, /* typmod -1 */
				  0,
				  (uint8_t)cols[i].format };
		memcpy(b + o, f, 18);
		o += 18;
	}
	return feed(m, s, 'T', b, (uint32_t)o);
}

static int feed_row(struct router_merger *m, int s, int n, const struct val *v)
{
	uint8_t b[4096];
	size_t o = 2;
	b[0] = (uint8_t)(n >> 8);
	b[1] = (uint8_t)n;
	for (int i = 0; i < n; i++) {
		uint32_t l = (uint32_t)v[i].len;
		b[o++] = (uint8_t)(l >> 24);
		b[o++] = (uint8_t)(l >> 16);
		b[o++] = (uint8_t)(l >> 8);
		b[o++] = (uint8_t)l;
		if (v[i].len > 0) {
			memcpy(b + o, v[i].p, (size_t)v[i].len);
			o += (size_t)v[i].len;
		}
	}
	return feed(m, s, 'D', b, (uint32_t)o);
}

#define DESC(m, s, ...)                                                                          \
	do {                                                                                     \
		const struct col c_[] = { __VA_ARGS__ };                                         \
		assert_int_equal(feed_desc((m), (s), (int)(sizeof(c_) / sizeof(c_[0])), c_), 0); \
	} while (0)

#define ROW(m, s, ...)                                                                          \
	do {                                                                                    \
		const struct val v_[] = { __VA_ARGS__ };                                        \
		assert_int_equal(feed_row((m), (s), (int)(sizeof(v_) / sizeof(v_[0])), v_), 0); \
	} while (0)

static void complete(struct router_merger *m, int s, const char *tag)
{
	assert_int_equal(feed(m, s, 'C', (const uint8_t *)tag, (uint32_t)strlen(tag) + 1), 0);
}

/* ---- reading the client's messages ------------------------------------------------ */

static char out_text[1 << 16];
static size_t out_len;

static void append(const char *fmt, ...)
{
	va_list ap;
	va_start(ap, fmt);
	out_len += (size_t)vsnprintf(out_text + out_len, sizeof(out_text) - out_len, fmt, ap);
	va_end(ap);
	assert_true(out_len < sizeof(out_text));
}

static uint32_t rd32(const uint8_t *p)
{
	return ((uint32_t)p[0] << 24) | ((uint32_t)p[1] << 16) | ((uint32_t)p[2] << 8) | p[3];
}

/* Renders whole messages: T(name:type[b],...) [v,v] C:tag I s; a value
 * with a byte outside printable ASCII is shown as x and hex, NULL as -. */
static void render(const uint8_t *b, size_t n)
{
	size_t o = 0;
	while (o < n) {
		assert_true(n - o >= 5);
		uint8_t type = b[o];
		uint32_t len = rd32(b + o + 1);
		assert_true(len >= 4 && len - 4 <= n - o - 5);
		const uint8_t *body = b + o + 5;
		uint32_t blen = len - 4;
		if (out_len)
			append(" ");
		if (type == 'T') {
			int cols = (body[0] << 8) | body[1];
			size_t p = 2;
			append("T(");
			for (int i = 0; i < cols; i++) {
				const char *name = (const char *)body + p;
				p += strlen(name) + 1;
				uint32_t t = rd32(body + p + 6);
				int16_t typlen = (int16_t)((body[p + 10] << 8) | body[p + 11]);
				int fmt = (body[p + 16] << 8) | body[p + 17];
				append("%s%s:%u%s", i ? "," : "", name, t, fmt ? "b" : "");
				if (t == ROUTER_OID_FLOAT8)
					assert_int_equal(typlen, 8);
				if (t == ROUTER_OID_NUMERIC)
					assert_int_equal(typlen, -1);
				p += 18;
			}
			assert_int_equal(p, blen);
			append(")");
		} else if (type == 'D') {
			int cols = (body[0] << 8) | body[1];
			size_t p = 2;
			append("[");
			for (int i = 0; i < cols; i++) {
				int32_t vl = (int32_t)rd32(body + p);
				p += 4;
				append("%s", i ? "," : "");
				if (vl < 0) {
					append("-");
					continue;
				}
				bool printable = true;
				for (int32_t k = 0; k < vl; k++)
					printable &= body[p + k] >= 0x20 && body[p + k] < 0x7f;
				if (printable) {
					append("%.*s", (int)vl, body + p);
				} else {
					append("x");
					for (int32_t k = 0; k < vl; k++)
						append("%02x", body[p + k]);
				}
				p += (size_t)vl;
			}
			assert_int_equal(p, blen);
			append("]");
		} else if (type == 'C') {
			assert_int_equal(body[blen - 1], 0);
			append("C:%s", (const char *)body);
		} else {
			assert_int_equal(blen, 0);
			append("%c", type);
		}
		o += 1 + len;
	}
}

/* Emits what is ready (in small buffers, to exercise the size limit too)
 * and appends its rendering to out_text. */
static void drain(struct router_merger *m)
{
	uint8_t buf[8192];
	for (;;) {
		size_t want = router_merger_next_size(m);
		size_t max = want > 40 ? want : 40;
		long n = router_merger_emit(m, buf, max);
		assert_true(n >= 0);
		assert_true((size_t)n <= max);
		if (n == 0) {
			assert_int_equal(want, 0);
			break;
		}
		render(buf, (size_t)n);
	}
}

static void out_reset(void)
{
	out_len = 0;
	out_text[0] = 0;
}

#define EXPECT_OUT(want) assert_string_equal(out_text, (want))

static struct router_merger *merger(const struct router_merge *spec, int n)
{
	struct router_merger *m = router_merger_new(spec, n);
	assert_non_null(m);
	out_reset();
	return m;
}

static struct router_col plain_cols[8]; /* all ROUTER_AGG_NONE */

/* ---- k-way merge ------------------------------------------------------------------ */

static void test_kway_int_streams(void **state)
{
	(void)state;
	struct router_sort sort[] = { { 0, false, false } }; /* ASC NULLS LAST */
	struct router_merge spec = { .n_cols = 2,
				     .n_visible = 2,
				     .cols = plain_cols,
				     .n_sort = 1,
				     .sort = sort,
				     .limit = -1 };
	struct router_merger *m = merger(&spec, 3);
	for (int s = 0; s < 3; s++)
		DESC(m, s, { "id", ROUTER_OID_INT4, 0 }, { "v", 25, 0 });
	ROW(m, 0, V("-5"), V("a"));
	ROW(m, 0, V("10"), V("b"));
	ROW(m, 1, V("2"), V("c"));
	drain(m);
	/* source 2 has nothing yet: no row's place is certain */
	EXPECT_OUT("T(id:23,v:25)");
	assert_true(router_merger_wants(m, 2));
	out_reset();
	ROW(m, 2, V("9"), V("d"));
	drain(m);
	/* -5 and 2 are certain; 9 waits for source 1's next row */
	EXPECT_OUT("[-5,a] [2,c]");
	out_reset();
	ROW(m, 1, NUL, V("e"));
	ROW(m, 2, V("100"), V("f"));
	complete(m, 0, "SELECT 2");
	complete(m, 2, "SELECT 2");
	drain(m);
	/* source 1's NULL is certain too: it sorts last and source 1 is
	 * sorted, so nothing but NULLs can follow it */
	EXPECT_OUT("[9,d] [10,b] [100,f] [-,e]");
	assert_false(router_merger_done(m));
	out_reset();
	complete(m, 1, "SELECT 2");
	drain(m);
	EXPECT_OUT("C:SELECT 6");
	assert_true(router_merger_done(m));
	router_merger_free(m);
}

static void test_kway_text_desc_nulls_first(void **state)
{
	(void)state;
	/* ORDER BY name DESC NULLS FIRST: C collation, byte order ('B' < 'a',
	 * 'a' < 'ab'), a UTF-8 é (0xc3 0xa9) above every ASCII letter */
	struct router_sort sort[] = { { 0, true, true } };
	struct router_merge spec = { .n_cols = 1,
				     .n_visible = 1,
				     .cols = plain_cols,
				     .n_sort = 1,
				     .sort = sort,
				     .limit = -1 };
	struct router_merger *m = merger(&spec, 2);
	DESC(m, 0, { "name", 25, 0 });
	DESC(m, 1, { "name", 25, 0 });
	ROW(m, 0, NUL);
	ROW(m, 0, V("\xc3\xa9t\xc3\xa9"));
	ROW(m, 0, V("ab"));
	ROW(m, 0, V("B"));
	ROW(m, 1, V("b"));
	ROW(m, 1, V("a"));
	ROW(m, 1, V(""));
	complete(m, 0, "SELECT 4");
	complete(m, 1, "SELECT 3");
	drain(m);
	EXPECT_OUT("T(name:25) [-] [xc3a974c3a9] [b] [ab] [a] [B] [] C:SELECT 7");
	router_merger_free(m);
}

static void test_kway_numeric_float_two_keys(void **state)
{
	(void)state;
	/* ORDER BY n ASC NULLS FIRST, f DESC NULLS LAST: numeric with NaN
	 * above all and values beyond any machine integer; float8 with NaN >
	 * Infinity and -0 = 0 (then the second key decides) */
	struct router_sort sort[] = { { 0, false, true }, { 1, true, false } };
	struct router_merge spec = { .n_cols = 2,
				     .n_visible = 2,
				     .cols = plain_cols,
				     .n_sort = 2,
				     .sort = sort,
				     .limit = -1 };
	struct router_merger *m = merger(&spec, 2);
	DESC(m, 0, { "n", ROUTER_OID_NUMERIC, 0 }, { "f", ROUTER_OID_FLOAT8, 0 });
	DESC(m, 1, { "n", ROUTER_OID_NUMERIC, 0 }, { "f", ROUTER_OID_FLOAT8, 0 });
	ROW(m, 0, NUL, V("1"));
	ROW(m, 0, V("-Infinity"), V("1"));
	ROW(m, 0, V("-99999999999999999999.5"), V("1"));
	ROW(m, 0, V("0.50"), V("NaN"));
	ROW(m, 0, V("0.5"), V("-Infinity"));
	ROW(m, 0, V("123456789012345678901234567890"), V("0"));
	ROW(m, 0, V("NaN"), V("1"));
	ROW(m, 1, V("-0.000001"), V("2"));
	ROW(m, 1, V("0.5"), V("Infinity"));
	ROW(m, 1, V("0.5"), V("-0"));
	ROW(m, 1, V("0.5"), NUL);
	ROW(m, 1, V("99"), V("1e+300"));
	ROW(m, 1, V("Infinity"), V("1"));
	complete(m, 0, "SELECT 7");
	complete(m, 1, "SELECT 6");
	drain(m);
	EXPECT_OUT("T(n:1700,f:701) [-,1] [-Infinity,1] [-99999999999999999999.5,1] [-0.000001,2] "
		   "[0.50,NaN] [0.5,Infinity] [0.5,-0] [0.5,-Infinity] [0.5,-] [99,1e+300] "
		   "[123456789012345678901234567890,0] [Infinity,1] [NaN,1] C:SELECT 13");
	router_merger_free(m);
}

static void test_kway_binary_types(void **state)
{
	(void)state;
	/* binary results: int8, float4, bool, date (int32 days), numeric
	 * (base 10000 digits); each a sort key in turn */
	struct router_sort sort[1];
	struct router_merge spec = { .n_cols = 1,
				     .n_visible = 1,
				     .cols = plain_cols,
				     .n_sort = 1,
				     .sort = sort,
				     .limit = -1 };
	struct {
		uint32_t type;
		struct val a[3], b[3];
		const char *want;
	} cases[] = {
		{ ROUTER_OID_INT8,
		  { BIN(0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xfe),
		    BIN(0, 0, 0, 0, 0, 0, 0, 5), BIN(0x7f, 0, 0, 0, 0, 0, 0, 0) },
		  { BIN(0x80, 0, 0, 0, 0, 0, 0, 0), BIN(0, 0, 0, 0, 0, 0, 0, 0),
		    BIN(0, 0, 0, 1, 0, 0, 0, 0) },
		  "[x8000000000000000] [xfffffffffffffffe] [x0000000000000000] [x0000000000000005] "
		  "[x0000000100000000] [x7f00000000000000]" },
		{ ROUTER_OID_FLOAT4, /* -Infinity, -1.5, 0; -2, 2, NaN */
		  { BIN(0xff, 0x80, 0, 0), BIN(0xbf, 0xc0, 0, 0), BIN(0, 0, 0, 0) },
		  { BIN(0xc0, 0, 0, 0), BIN(0x40, 0, 0, 0), BIN(0x7f, 0xc0, 0, 0) },
		  "[xff800000] [xc0000000] [xbfc00000] [x00000000] [x40000000] [x7fc00000]" },
		{ ROUTER_OID_DATE, /* -infinity, 1999-12-31, 2000-01-02; -700000 days, 0, infinity */
		  { BIN(0x80, 0, 0, 0), BIN(0xff, 0xff, 0xff, 0xff), BIN(0, 0, 0, 1) },
		  { BIN(0xff, 0xf5, 0x51, 0xa0), BIN(0, 0, 0, 0), BIN(0x7f, 0xff, 0xff, 0xff) },
		  "[x80000000] [xfff551a0] [xffffffff] [x00000000] [x00000001] [x7fffffff]" },
		{ ROUTER_OID_NUMERIC,
		  /* -12.5; 0.0001; 10000 ;; -10000; 12.5; NaN */
		  { BIN(0, 2, 0, 0, 0x40, 0, 0, 1, 0, 12, 0x13, 0x88),
		    BIN(0, 1, 0xff, 0xff, 0, 0, 0, 4, 0, 1), BIN(0, 1, 0, 1, 0, 0, 0, 0, 0, 1) },
		  { BIN(0, 1, 0, 1, 0x40, 0, 0, 0, 0, 1),
		    BIN(0, 2, 0, 0, 0, 0, 0, 1, 0, 12, 0x13, 0x88),
		    BIN(0, 0, 0, 0, 0xc0, 0, 0, 0) },
		  "[x00010001400000000001] [x0002000040000001000c1388] [x0001ffff000000040001] "
		  "[x0002000000000001000c1388] [x00010001000000000001] [x00000000c0000000]" },
	};
	for (size_t c = 0; c < sizeof(cases) / sizeof(cases[0]); c++) {
		sort[0] = (struct router_sort){ 0, false, false };
		struct router_merger *m = merger(&spec, 2);
		DESC(m, 0, { "x", cases[c].type, 1 });
		DESC(m, 1, { "x", cases[c].type, 1 });
		for (int i = 0; i < 3; i++) {
			ROW(m, 0, cases[c].a[i]);
			ROW(m, 1, cases[c].b[i]);
		}
		complete(m, 0, "SELECT 3");
		complete(m, 1, "SELECT 3");
		drain(m);
		char want[512];
		snprintf(want, sizeof(want), "T(x:%ub) %s C:SELECT 6", cases[c].type,
			 cases[c].want);
		EXPECT_OUT(want);
		router_merger_free(m);
	}
}

static void test_kway_binary_text_uuid_bool_ts(void **state)
{
	(void)state;
	/* binary text (bytes), bool, timestamp (int64 us) and uuid (16 bytes)
	 * as four sort keys: bool DESC first */
	struct router_sort sort[] = {
		{ 1, true, false }, { 2, false, false }, { 3, false, false }, { 0, false, false }
	};
	struct router_merge spec = { .n_cols = 4,
				     .n_visible = 4,
				     .cols = plain_cols,
				     .n_sort = 4,
				     .sort = sort,
				     .limit = -1 };
	struct router_merger *m = merger(&spec, 2);
	for (int s = 0; s < 2; s++)
		DESC(m, s, { "t", 25, 1 }, { "b", ROUTER_OID_BOOL, 1 },
		     { "ts", ROUTER_OID_TIMESTAMP, 1 }, { "u", 2950, 1 });
	ROW(m, 0, V("x"), BIN(1), BIN(0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0),
	    BIN(0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0));
	ROW(m, 0, V("y"), BIN(1), BIN(0, 0, 0, 0, 0, 0, 0, 1),
	    BIN(0xff, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0));
	ROW(m, 0, V("q"), BIN(0), BIN(0, 0, 0, 0, 0, 0, 0, 1),
	    BIN(1, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0));
	ROW(m, 1, V("z"), BIN(1), BIN(0, 0, 0, 0, 0, 0, 0, 1),
	    BIN(0x80, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0));
	ROW(m, 1, V("p"), BIN(0), BIN(0, 0, 0, 0, 0, 0, 0, 1),
	    BIN(1, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0));
	complete(m, 0, "SELECT 3");
	complete(m, 1, "SELECT 2");
	drain(m);
	/* render shows the first bytes only through hex; check the text
	 * column's order, which the keys decide */
	const char *order = "xzypq";
	const char *p = out_text;
	for (int i = 0; order[i]; i++) {
		char pat[4] = { '[', order[i], ',', 0 };
		const char *at = strstr(p, pat);
		assert_non_null(at);
		p = at + 1;
	}
	router_merger_free(m);
}

static void test_kway_timestamps_text(void **state)
{
	(void)state;
	/* DateStyle ISO output: BC years, years past 9999, infinity, and
	 * timestamptz offsets (the instant counts, not the local time) */
	struct router_sort sort[] = { { 0, false, false } };
	struct router_merge spec = { .n_cols = 1,
				     .n_visible = 1,
				     .cols = plain_cols,
				     .n_sort = 1,
				     .sort = sort,
				     .limit = -1 };
	struct router_merger *m = merger(&spec, 2);
	DESC(m, 0, { "ts", ROUTER_OID_TIMESTAMPTZ, 0 });
	DESC(m, 1, { "ts", ROUTER_OID_TIMESTAMPTZ, 0 });
	ROW(m, 0, V("-infinity"));
	ROW(m, 0, V("0100-01-01 00:00:00+00 BC"));
	ROW(m, 0, V("2024-10-27 01:30:00+02"));
	ROW(m, 0, V("2024-10-27 01:10:00.5+01"));
	ROW(m, 0, V("12000-01-01 00:00:00+00"));
	ROW(m, 1, V("0044-03-15 12:00:00+00 BC"));
	ROW(m, 1, V("0001-01-01 00:00:00+00"));
	ROW(m, 1, V("2024-10-27 01:10:00+01"));
	ROW(m, 1, V("2024-10-27 05:45:00+05:30"));
	ROW(m, 1, V("infinity"));
	complete(m, 0, "SELECT 5");
	complete(m, 1, "SELECT 5");
	drain(m);
	EXPECT_OUT("T(ts:1184) [-infinity] [0100-01-01 00:00:00+00 BC] "
		   "[0044-03-15 12:00:00+00 BC] [0001-01-01 00:00:00+00] "
		   "[2024-10-27 01:30:00+02] [2024-10-27 01:10:00+01] [2024-10-27 01:10:00.5+01] "
		   "[2024-10-27 05:45:00+05:30] [12000-01-01 00:00:00+00] [infinity] C:SELECT 10");
	router_merger_free(m);
}

/* ---- LIMIT, OFFSET, hidden columns, pass-through -------------------------------- */

static void test_limit_offset(void **state)
{
	(void)state;
	struct router_sort sort[] = { { 0, false, false } };
	struct router_merge spec = { .n_cols = 1,
				     .n_visible = 1,
				     .cols = plain_cols,
				     .n_sort = 1,
				     .sort = sort,
				     .limit = 3,
				     .offset = 2 };
	struct router_merger *m = merger(&spec, 2);
	DESC(m, 0, { "id", ROUTER_OID_INT8, 0 });
	DESC(m, 1, { "id", ROUTER_OID_INT8, 0 });
	for (int i = 0; i < 4; i++) {
		char a[8], b[8];
		snprintf(a, sizeof(a), "%d", 2 * i);
		snprintf(b, sizeof(b), "%d", 2 * i + 1);
		struct val va = { a, (int32_t)strlen(a) }, vb = { b, (int32_t)strlen(b) };
		ROW(m, 0, va);
		ROW(m, 1, vb);
	}
	drain(m);
	EXPECT_OUT("T(id:20) [2] [3] [4]");
	/* the limit is reached: no source is wanted, rows still coming are
	 * dropped, and the merge ends when every source has */
	assert_false(router_merger_wants(m, 0));
	assert_false(router_merger_wants(m, 1));
	assert_true(router_merger_draining(m));
	ROW(m, 1, V("9"));
	complete(m, 0, "SELECT 4");
	drain(m);
	assert_false(router_merger_done(m));
	complete(m, 1, "SELECT 5");
	assert_false(router_merger_draining(m));
	drain(m);
	EXPECT_OUT("T(id:20) [2] [3] [4] C:SELECT 3");
	assert_true(router_merger_done(m));
	router_merger_free(m);

	/* LIMIT 0 and an OFFSET past the end */
	spec.limit = 0;
	m = merger(&spec, 1);
	DESC(m, 0, { "id", ROUTER_OID_INT8, 0 });
	assert_false(router_merger_wants(m, 0));
	ROW(m, 0, V("1"));
	complete(m, 0, "SELECT 1");
	drain(m);
	EXPECT_OUT("T(id:20) C:SELECT 0");
	router_merger_free(m);
	spec.limit = -1;
	spec.offset = 5;
	m = merger(&spec, 2);
	DESC(m, 0, { "id", ROUTER_OID_INT8, 0 });
	DESC(m, 1, { "id", ROUTER_OID_INT8, 0 });
	ROW(m, 0, V("1"));
	ROW(m, 1, V("2"));
	complete(m, 0, "SELECT 1");
	complete(m, 1, "SELECT 1");
	drain(m);
	EXPECT_OUT("T(id:20) C:SELECT 0");
	router_merger_free(m);
}

static void test_hidden_sort_column(void **state)
{
	(void)state;
	/* SELECT name ... ORDER BY id: id is added for the merge, hidden */
	struct router_sort sort[] = { { 1, false, false } };
	struct router_merge spec = { .n_cols = 2,
				     .n_visible = 1,
				     .cols = plain_cols,
				     .n_sort = 1,
				     .sort = sort,
				     .limit = -1 };
	struct router_merger *m = merger(&spec, 2);
	DESC(m, 0, { "name", 25, 0 }, { "id", ROUTER_OID_INT4, 0 });
	DESC(m, 1, { "name", 25, 0 }, { "id", ROUTER_OID_INT4, 0 });
	ROW(m, 0, V("b"), V("2"));
	ROW(m, 1, V("c"), V("1"));
	ROW(m, 1, V("a"), V("10"));
	complete(m, 0, "SELECT 1");
	complete(m, 1, "SELECT 2");
	uint8_t buf[256];
	long n = router_merger_emit(m, buf, sizeof(buf));
	/* byte for byte: T with one field, then DataRows of one column */
	static const uint8_t want[] = {
		'T', 0,   0,   0, 29, 0,   1,    'n',  'a',  'm',  'e',  0,    0,   0,   0x40, 0,
		0,   1,   0,   0, 0,  25,  0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0,   0,   'D',  0,
		0,   0,   11,  0, 1,  0,   0,    0,    1,    'c',  'D',  0,    0,   0,   11,   0,
		1,   0,   0,   0, 1,  'b', 'D',  0,    0,    0,    11,   0,    1,   0,   0,    0,
		1,   'a', 'C', 0, 0,  0,   13,   'S',  'E',  'L',  'E',  'C',  'T', ' ', '3',  0,
	};
	assert_int_equal(n, sizeof(want));
	assert_memory_equal(buf, want, sizeof(want));
	assert_true(router_merger_done(m));
	router_merger_free(m);
}

static void test_unsorted_and_plain(void **state)
{
	(void)state;
	/* no sort: rows as they come, LIMIT still applies */
	struct router_merge spec = { .n_cols = 1, .n_visible = 1, .cols = plain_cols, .limit = 2 };
	struct router_merger *m = merger(&spec, 2);
	DESC(m, 0, { "x", 25, 0 });
	drain(m);
	EXPECT_OUT(""); /* source 1's description is not in yet */
	DESC(m, 1, { "x", 25, 0 });
	ROW(m, 1, V("one"));
	drain(m);
	ROW(m, 0, V("two"));
	ROW(m, 0, V("three"));
	drain(m);
	complete(m, 0, "SELECT 2");
	complete(m, 1, "SELECT 1");
	drain(m);
	EXPECT_OUT("T(x:25) [one] [two] C:SELECT 2");
	router_merger_free(m);

	/* no spec: an UPDATE on every shard, its counts summed */
	m = merger(NULL, 3);
	complete(m, 0, "UPDATE 5");
	complete(m, 1, "UPDATE 0");
	complete(m, 2, "UPDATE 3");
	drain(m);
	EXPECT_OUT("C:UPDATE 8");
	router_merger_free(m);
	m = merger(NULL, 2);
	complete(m, 0, "INSERT 0 2");
	complete(m, 1, "INSERT 0 1");
	drain(m);
	EXPECT_OUT("C:INSERT 0 3");
	router_merger_free(m);
	/* ... and rows (RETURNING) passed through, with no description
	 * asked for (an Execute without Describe) */
	m = merger(NULL, 2);
	ROW(m, 0, V("1"), V("a"));
	ROW(m, 1, V("2"), NUL);
	complete(m, 0, "DELETE 1");
	complete(m, 1, "DELETE 1");
	drain(m);
	EXPECT_OUT("[1,a] [2,-] C:DELETE 2");
	router_merger_free(m);
	/* every shard answered an empty query */
	m = merger(NULL, 2);
	assert_int_equal(feed(m, 0, 'I', (const uint8_t *)"", 0), 0);
	assert_int_equal(feed(m, 1, 'I', (const uint8_t *)"", 0), 0);
	drain(m);
	EXPECT_OUT("I");
	router_merger_free(m);
}

static void test_rowdesc_mismatch(void **state)
{
	(void)state;
	struct router_merge spec = { .n_cols = 1, .n_visible = 1, .cols = plain_cols, .limit = -1 };
	struct router_merger *m = merger(&spec, 3);
	DESC(m, 0, { "x", ROUTER_OID_INT4, 0 });
	DESC(m, 1, { "x", ROUTER_OID_INT4, 0 });
	const struct col other[] = { { "x", ROUTER_OID_INT8, 0 } };
	assert_int_equal(feed_desc(m, 2, 1, other), -1);
	assert_string_equal(last_state, "42804");
	assert_string_equal(last_err, "shards disagree on the result's columns");
	router_merger_free(m);
	/* a format differs */
	m = merger(&spec, 2);
	DESC(m, 0, { "x", ROUTER_OID_INT4, 0 });
	const struct col bin[] = { { "x", ROUTER_OID_INT4, 1 } };
	assert_int_equal(feed_desc(m, 1, 1, bin), -1);
	assert_string_equal(last_state, "42804");
	router_merger_free(m);
	/* a column count other than the plan's */
	m = merger(&spec, 2);
	const struct col two[] = { { "x", ROUTER_OID_INT4, 0 }, { "y", ROUTER_OID_INT4, 0 } };
	assert_int_equal(feed_desc(m, 0, 2, two), -1);
	assert_string_equal(last_state, "42804");
	router_merger_free(m);
	/* a sort value that is not its type */
	struct router_sort sort[] = { { 0, false, false } };
	spec.n_sort = 1;
	spec.sort = sort;
	m = merger(&spec, 2);
	DESC(m, 0, { "x", ROUTER_OID_INT4, 0 });
	const struct val junk[] = { V("12x") };
	assert_int_equal(feed_row(m, 0, 1, junk), -1);
	assert_string_equal(last_state, "22P02");
	router_merger_free(m);
}

/* ---- aggregates -------------------------------------------------------------------- */

static void test_agg_no_group(void **state)
{
	(void)state;
	/* SELECT count(*), sum(i8), sum(n), min(t), max(d), avg(i4), bool_and(b),
	 * bool_or(b) -> shards run count, sum, sum, min, max, sum(i4),
	 * bool_and, bool_or, count(i4) (hidden) */
	struct router_col cols[] = {
		{ ROUTER_AGG_COUNT, 0 },    { ROUTER_AGG_SUM, 0 },     { ROUTER_AGG_SUM, 0 },
		{ ROUTER_AGG_MIN, 0 },      { ROUTER_AGG_MAX, 0 },     { ROUTER_AGG_AVG, 8 },
		{ ROUTER_AGG_BOOL_AND, 0 }, { ROUTER_AGG_BOOL_OR, 0 }, { ROUTER_AGG_COUNT, 0 },
	};
	struct router_merge spec = {
		.n_cols = 9, .n_visible = 8, .cols = cols, .aggregate = true, .limit = -1
	};
	struct router_merger *m = merger(&spec, 3);
	for (int s = 0; s < 3; s++)
		DESC(m, s, { "count", ROUTER_OID_INT8, 0 }, { "sum", ROUTER_OID_NUMERIC, 0 },
		     { "sum", ROUTER_OID_NUMERIC, 0 }, { "min", 25, 0 },
		     { "max", ROUTER_OID_DATE, 0 }, { "avg", ROUTER_OID_INT8, 0 },
		     { "bool_and", ROUTER_OID_BOOL, 0 }, { "bool_or", ROUTER_OID_BOOL, 0 },
		     { "count", ROUTER_OID_INT8, 0 });
	/* shard values: i4 = {1} | {2, 2} | {} (so avg(1,2,2)); n = 1.5 |
	 * 2.25 | 100 */
	ROW(m, 0, V("1"), V("9223372036854775807"), V("1.5"), V("m"), V("2024-01-01"), V("1"),
	    V("t"), V("f"), V("1"));
	ROW(m, 1, V("2"), V("9223372036854775807"), V("2.25"), V("b"), V("2024-03-01"), V("4"),
	    V("t"), V("f"), V("2"));
	ROW(m, 2, V("0"), NUL, V("100"), NUL, NUL, NUL, NUL, NUL, V("0"));
	for (int s = 0; s < 3; s++)
		assert_true(router_merger_wants(m, s));
	drain(m);
	/* the description may go at once; the group only when all are done */
	EXPECT_OUT("T(count:20,sum:1700,sum:1700,min:25,max:1082,avg:1700,bool_and:16,"
		   "bool_or:16)");
	out_reset();
	for (int s = 0; s < 3; s++)
		complete(m, s, "SELECT 1");
	drain(m);
	/* avg: SELECT avg(x) FROM (VALUES (1),(2),(2)) v(x) -> 1.6666666666666667;
	 * sum: SELECT sum(x) FROM (VALUES (1.5),(2.25),(100)) v(x) -> 103.75 */
	EXPECT_OUT("[3,18446744073709551614,103.75,b,2024-03-01,1.6666666666666667,"
		   "t,f] C:SELECT 1");
	router_merger_free(m);
}

static void test_agg_empty(void **state)
{
	(void)state;
	/* SELECT sum(x), count(x), avg(x), min(x) over no rows at all: each
	 * shard says NULL, 0, NULL (sum), NULL; the merge the same */
	struct router_col cols[] = { { ROUTER_AGG_SUM, 0 },
				     { ROUTER_AGG_COUNT, 0 },
				     { ROUTER_AGG_AVG, 1 },
				     { ROUTER_AGG_MIN, 0 } };
	struct router_merge spec = {
		.n_cols = 4, .n_visible = 4, .cols = cols, .aggregate = true, .limit = -1
	};
	struct router_merger *m = merger(&spec, 2);
	for (int s = 0; s < 2; s++) {
		DESC(m, s, { "sum", ROUTER_OID_INT8, 0 }, { "count", ROUTER_OID_INT8, 0 },
		     { "avg", ROUTER_OID_FLOAT8, 0 }, { "min", ROUTER_OID_INT4, 0 });
		ROW(m, s, NUL, V("0"), NUL, NUL);
		complete(m, s, "SELECT 1");
	}
	drain(m);
	EXPECT_OUT("T(sum:20,count:20,avg:701,min:23) [-,0,-,-] C:SELECT 1");
	router_merger_free(m);
}

/* One avg merged from per-shard sums and counts (text). */
static void check_avg(uint32_t sum_type, const char *const *sums, const char *const *counts, int n,
		      const char *want)
{
	struct router_col cols[] = { { ROUTER_AGG_AVG, 1 }, { ROUTER_AGG_COUNT, 0 } };
	struct router_merge spec = {
		.n_cols = 2, .n_visible = 1, .cols = cols, .aggregate = true, .limit = -1
	};
	struct router_merger *m = merger(&spec, n);
	for (int s = 0; s < n; s++) {
		DESC(m, s, { "avg", sum_type, 0 }, { "n", ROUTER_OID_INT8, 0 });
		struct val v[2] = { { sums[s], (int32_t)strlen(sums[s]) },
				    { counts[s], (int32_t)strlen(counts[s]) } };
		assert_int_equal(feed_row(m, s, 2, v), 0);
		complete(m, s, "SELECT 1");
	}
	drain(m);
	char expect[512];
	snprintf(expect, sizeof(expect), "T(avg:%u) [%s] C:SELECT 1",
		 sum_type == ROUTER_OID_FLOAT8 || sum_type == ROUTER_OID_FLOAT4 ? 701u : 1700u,
		 want);
	EXPECT_OUT(expect);
	router_merger_free(m);
}

static void test_avg_scale_as_postgres(void **state)
{
	(void)state;
#define S(...) ((const char *const[]){ __VA_ARGS__ })
	/* SELECT avg(x) FROM (VALUES (1),(2),(2)) v(x) -> 1.6666666666666667 */
	check_avg(ROUTER_OID_INT8, S("1", "4"), S("1", "2"), 2, "1.6666666666666667");
	/* (1.50),(2.25),(3) -> 2.2500000000000000 */
	check_avg(ROUTER_OID_NUMERIC, S("1.50", "5.25"), S("1", "2"), 2, "2.2500000000000000");
	/* (123456789012345678901234567890::numeric),(1) -> 61728394506172839450617283946 */
	check_avg(ROUTER_OID_NUMERIC, S("123456789012345678901234567890", "1"), S("1", "1"), 2,
		  "61728394506172839450617283946");
	/* (0.000001),(0.000002) -> 0.000001500000000000000000 */
	check_avg(ROUTER_OID_NUMERIC, S("0.000001", "0.000002"), S("1", "1"), 2,
		  "0.000001500000000000000000");
	/* (0),(0),(0) -> 0.00000000000000000000 */
	check_avg(ROUTER_OID_INT8, S("0", "0", "0"), S("1", "1", "1"), 3, "0.00000000000000000000");
	/* (-1),(-2) -> -1.5000000000000000 */
	check_avg(ROUTER_OID_INT8, S("-1", "-2"), S("1", "1"), 2, "-1.5000000000000000");
	/* (1),(1),(0) -> 0.66666666666666666667 (rounded half away from 0) */
	check_avg(ROUTER_OID_INT8, S("2", "0"), S("2", "1"), 2, "0.66666666666666666667");
	/* (12345678::int8),(98765432::int8),(5::int8),(7::int8) -> 27777780.500000000000 */
	check_avg(ROUTER_OID_NUMERIC, S("111111110", "12"), S("2", "2"), 2,
		  "27777780.500000000000");
	/* (9223372036854775807::int8) twice -> 9223372036854775807: the sum is past int8 */
	check_avg(ROUTER_OID_NUMERIC, S("9223372036854775807", "9223372036854775807"), S("1", "1"),
		  2, "9223372036854775807");
	/* eleven times (2.5) -> 2.5000000000000000 */
	check_avg(ROUTER_OID_NUMERIC, S("15.0", "12.5"), S("6", "5"), 2, "2.5000000000000000");
	/* (100000),(200000) -> 150000.000000000000 */
	check_avg(ROUTER_OID_INT8, S("100000", "200000"), S("1", "1"), 2, "150000.000000000000");
	/* (1e-20) three times -> 0.0000000000000000000100000000000000000000 */
	check_avg(ROUTER_OID_NUMERIC, S("0.00000000000000000001", "0.00000000000000000002"),
		  S("1", "2"), 2, "0.0000000000000000000100000000000000000000");
	/* (2),(2),(3) -> 2.3333333333333333 */
	check_avg(ROUTER_OID_INT8, S("4", "3"), S("2", "1"), 2, "2.3333333333333333");
	/* float: (0.1::float8),(0.2::float8) -> 0.15000000000000002 */
	check_avg(ROUTER_OID_FLOAT8, S("0.1", "0.2"), S("1", "1"), 2, "0.15000000000000002");
	/* a NaN sum: NaN */
	check_avg(ROUTER_OID_NUMERIC, S("NaN", "2"), S("1", "1"), 2, "NaN");
}

static void check_sum(uint32_t type, const char *const *vals, int n, const char *want)
{
	struct router_col cols[] = { { ROUTER_AGG_SUM, 0 } };
	struct router_merge spec = {
		.n_cols = 1, .n_visible = 1, .cols = cols, .aggregate = true, .limit = -1
	};
	struct router_merger *m = merger(&spec, n);
	for (int s = 0; s < n; s++) {
		DESC(m, s, { "sum", type, 0 });
		struct val v = { vals[s], vals[s] ? (int32_t)strlen(vals[s]) : -1 };
		assert_int_equal(feed_row(m, s, 1, &v), 0);
		complete(m, s, "SELECT 1");
	}
	drain(m);
	char expect[512];
	snprintf(expect, sizeof(expect), "T(sum:%u) [%s] C:SELECT 1", type, want);
	EXPECT_OUT(expect);
	router_merger_free(m);
}

static void test_sums(void **state)
{
	(void)state;
	/* SELECT sum(x) FROM (VALUES (1.5),(2.25),(100)) v(x) -> 103.75 */
	check_sum(ROUTER_OID_NUMERIC, S("1.5", "2.25", "100"), 3, "103.75");
	/* (99999999999999999999999999.99),(0.01) -> 100000000000000000000000000.00 */
	check_sum(ROUTER_OID_NUMERIC, S("99999999999999999999999999.99", "0.01"), 2,
		  "100000000000000000000000000.00");
	/* (1::numeric),('NaN'::numeric) -> NaN */
	check_sum(ROUTER_OID_NUMERIC, S("1", "NaN"), 2, "NaN");
	/* (-5.5),(2.25) -> -3.25 */
	check_sum(ROUTER_OID_NUMERIC, S("-5.5", "2.25"), 2, "-3.25");
	check_sum(ROUTER_OID_NUMERIC, S("-2.50", "2.5"), 2, "0.00");
	check_sum(ROUTER_OID_NUMERIC, S("Infinity", "-Infinity"), 2, "NaN");
	check_sum(ROUTER_OID_NUMERIC, S(NULL, "7"), 2, "7");
	/* (0.1::float8),(0.2::float8) -> 0.30000000000000004 */
	check_sum(ROUTER_OID_FLOAT8, S("0.1", "0.2"), 2, "0.30000000000000004");
	check_sum(ROUTER_OID_FLOAT8, S("1e+300", "1e+300"), 2, "2e+300");
	check_sum(ROUTER_OID_INT8, S("-9223372036854775807", "-1"), 2, "-9223372036854775808");

	/* an int8 sum past its range fails as PostgreSQL's would */
	struct router_col cols[] = { { ROUTER_AGG_SUM, 0 } };
	struct router_merge spec = {
		.n_cols = 1, .n_visible = 1, .cols = cols, .aggregate = true, .limit = -1
	};
	struct router_merger *m = merger(&spec, 2);
	DESC(m, 0, { "sum", ROUTER_OID_INT8, 0 });
	DESC(m, 1, { "sum", ROUTER_OID_INT8, 0 });
	ROW(m, 0, V("9223372036854775807"));
	const struct val one[] = { V("1") };
	assert_int_equal(feed_row(m, 1, 1, one), -1);
	assert_string_equal(last_state, "22003");
	assert_string_equal(last_err, "bigint out of range");
	router_merger_free(m);
}

static void test_sum_avg_binary(void **state)
{
	(void)state;
	/* binary results: sum(numeric) and avg over a numeric sum, both in
	 * numeric's binary form; count as int8 */
	struct router_col cols[] = { { ROUTER_AGG_SUM, 0 },
				     { ROUTER_AGG_AVG, 2 },
				     { ROUTER_AGG_COUNT, 0 } };
	struct router_merge spec = {
		.n_cols = 3, .n_visible = 3, .cols = cols, .aggregate = true, .limit = -1
	};
	struct router_merger *m = merger(&spec, 2);
	for (int s = 0; s < 2; s++)
		DESC(m, s, { "sum", ROUTER_OID_NUMERIC, 1 }, { "avg", ROUTER_OID_NUMERIC, 1 },
		     { "count", ROUTER_OID_INT8, 1 });
	/* 12.5 + 0.0001 = 12.5001; avg (1 + 2) / 3: SELECT avg(x) FROM
	 * (VALUES (1),(1),(1)) v(x) -> 1.00000000000000000000 (scale 20) */
	ROW(m, 0, BIN(0, 2, 0, 0, 0, 0, 0, 1, 0, 12, 0x13, 0x88), BIN(0, 1, 0, 0, 0, 0, 0, 0, 0, 1),
	    BIN(0, 0, 0, 0, 0, 0, 0, 1));
	ROW(m, 1, BIN(0, 1, 0xff, 0xff, 0, 0, 0, 4, 0, 1), BIN(0, 1, 0, 0, 0, 0, 0, 0, 0, 2),
	    BIN(0, 0, 0, 0, 0, 0, 0, 2));
	complete(m, 0, "SELECT 1");
	complete(m, 1, "SELECT 1");
	drain(m);
	/* 12.5001: ndigits 2, weight 0, +, dscale 4, digits 12, 5001;
	 * 1.00000000000000000000: ndigits 1, weight 0, dscale 20, digit 1 */
	EXPECT_OUT("T(sum:1700b,avg:1700b,count:20b) [x0002000000000004000c1389,"
		   "x00010000000000140001,x0000000000000003] C:SELECT 1");
	router_merger_free(m);
}

static void test_agg_groups_having_sort(void **state)
{
	(void)state;
	/* SELECT k, count(*), avg(v) FROM t GROUP BY k HAVING count(*) > 1
	 *   ORDER BY avg(v) DESC LIMIT 2
	 * shards: k, count, sum(v), count(v) (hidden) */
	struct router_col cols[] = { { ROUTER_AGG_NONE, 0 },
				     { ROUTER_AGG_COUNT, 0 },
				     { ROUTER_AGG_AVG, 3 },
				     { ROUTER_AGG_COUNT, 0 } };
	struct router_sort sort[] = { { 2, true, false } };
	struct router_expr c1 = { .kind = ROUTER_EXPR_COL, .col = 1 };
	struct router_expr k1 = { .kind = ROUTER_EXPR_CONST, .text = "1" };
	struct router_expr *args[] = { &c1, &k1 };
	struct router_expr having = {
		.kind = ROUTER_EXPR_CMP, .op = ">", .n_args = 2, .args = args
	};
	struct router_merge spec = { .n_cols = 4,
				     .n_visible = 3,
				     .cols = cols,
				     .aggregate = true,
				     .n_sort = 1,
				     .sort = sort,
				     .limit = 2,
				     .having = &having };
	struct router_merger *m = merger(&spec, 3);
	for (int s = 0; s < 3; s++)
		DESC(m, s, { "k", ROUTER_OID_NUMERIC, 0 }, { "count", ROUTER_OID_INT8, 0 },
		     { "avg", ROUTER_OID_INT8, 0 }, { "n", ROUTER_OID_INT8, 0 });
	/* group 1 (written 1.0 and 1.00 by different shards: one group) */
	ROW(m, 0, V("1.0"), V("2"), V("10"), V("2"));
	ROW(m, 1, V("1.00"), V("1"), V("20"), V("1"));
	/* group 2: one row only, HAVING drops it */
	ROW(m, 2, V("2"), V("1"), V("1000"), V("1"));
	/* group NULL */
	ROW(m, 0, NUL, V("3"), V("3"), V("3"));
	ROW(m, 2, NUL, V("1"), NUL, V("0"));
	/* group 3 */
	ROW(m, 1, V("3"), V("2"), V("100"), V("2"));
	for (int s = 0; s < 3; s++)
		complete(m, s, "SELECT 2");
	drain(m);
	/* avgs: 3 -> 50, 1.0 -> 30/3 = 10, NULL -> 3/3 = 1; SELECT avg(x) FROM
	 * (VALUES (50),(50)) v(x) -> 50.0000000000000000, (10),(10),(10) ->
	 * 10.0000000000000000 */
	EXPECT_OUT("T(k:1700,count:20,avg:1700) [3,2,50.0000000000000000] "
		   "[1.0,3,10.0000000000000000] C:SELECT 2");
	router_merger_free(m);
}

static void test_having_forms(void **state)
{
	(void)state;
	/* GROUP BY k HAVING (sum(x) >= 2.5 AND NOT bool_or(b)) OR max(t) IS NULL */
	struct router_col cols[] = { { ROUTER_AGG_NONE, 0 },
				     { ROUTER_AGG_SUM, 0 },
				     { ROUTER_AGG_BOOL_OR, 0 },
				     { ROUTER_AGG_MAX, 0 } };
	struct router_expr sum = { .kind = ROUTER_EXPR_COL, .col = 1 };
	struct router_expr lim = { .kind = ROUTER_EXPR_CONST, .text = "2.5" };
	struct router_expr *cmp_args[] = { &sum, &lim };
	struct router_expr cmp = {
		.kind = ROUTER_EXPR_CMP, .op = ">=", .n_args = 2, .args = cmp_args
	};
	struct router_expr bor = { .kind = ROUTER_EXPR_COL, .col = 2 };
	struct router_expr *not_args[] = { &bor };
	struct router_expr not = { .kind = ROUTER_EXPR_NOT, .n_args = 1, .args = not_args };
	struct router_expr *and_args[] = { &cmp, &not };
	struct router_expr and = { .kind = ROUTER_EXPR_AND, .n_args = 2, .args = and_args };
	struct router_expr mx = { .kind = ROUTER_EXPR_COL, .col = 3 };
	struct router_expr *isnull_args[] = { &mx };
	struct router_expr isnull = { .kind = ROUTER_EXPR_IS_NULL,
				      .n_args = 1,
				      .args = isnull_args };
	struct router_expr *or_args[] = { &and, &isnull };
	struct router_expr or = { .kind = ROUTER_EXPR_OR, .n_args = 2, .args = or_args };
	struct router_sort sort[] = { { 0, false, false } };
	struct router_merge spec = { .n_cols = 4,
				     .n_visible = 4,
				     .cols = cols,
				     .aggregate = true,
				     .n_sort = 1,
				     .sort = sort,
				     .limit = -1,
				     .having = & or };
	struct router_merger *m = merger(&spec, 2);
	for (int s = 0; s < 2; s++)
		DESC(m, s, { "k", 25, 0 }, { "sum", ROUTER_OID_INT8, 0 },
		     { "bool_or", ROUTER_OID_BOOL, 0 }, { "max", ROUTER_OID_TIMESTAMP, 0 });
	ROW(m, 0, V("a"), V("1"), V("f"), V("2024-01-01 00:00:00"));
	ROW(m, 1, V("a"), V("2"), V("f"), NUL); /* 3 >= 2.5, not false: kept */
	ROW(m, 0, V("b"), V("10"), V("t"), V("2024-01-01 00:00:00")); /* bool_or true: dropped */
	ROW(m, 1, V("c"), V("1"), V("t"), NUL);                       /* max NULL: kept */
	ROW(m, 1, V("d"), V("2"), NUL, V("2023-01-01 00:00:00"));     /* 2 < 2.5: dropped */
	ROW(m, 0, V("e"), NUL, V("f"), V("2023-01-01 00:00:00"));     /* NULL >= 2.5: dropped */
	complete(m, 0, "SELECT 3");
	complete(m, 1, "SELECT 3");
	drain(m);
	EXPECT_OUT("T(k:25,sum:20,bool_or:16,max:1114) [a,3,f,2024-01-01 00:00:00] [c,1,t,-] "
		   "C:SELECT 2");
	router_merger_free(m);
}

/* ---- DISTINCT ------------------------------------------------------------------------ */

static void test_distinct(void **state)
{
	(void)state;
	/* SELECT DISTINCT a, b (no ORDER BY): a set of rows seen */
	struct router_merge spec = {
		.n_cols = 2, .n_visible = 2, .cols = plain_cols, .distinct = true, .limit = -1
	};
	struct router_merger *m = merger(&spec, 2);
	for (int s = 0; s < 2; s++)
		DESC(m, s, { "a", ROUTER_OID_NUMERIC, 0 }, { "b", 25, 0 });
	ROW(m, 0, V("1"), V("x"));
	ROW(m, 1, V("1.00"), V("x")); /* equal to 1 as numeric */
	ROW(m, 1, V("2"), NUL);
	ROW(m, 0, V("2"), NUL);
	ROW(m, 0, V("2"), V(""));
	complete(m, 0, "SELECT 3");
	complete(m, 1, "SELECT 2");
	drain(m);
	EXPECT_OUT("T(a:1700,b:25) [1,x] [2,-] [2,] C:SELECT 3");
	router_merger_free(m);

	/* SELECT DISTINCT a ORDER BY a OFFSET 1: equal rows arrive together,
	 * only the last one sent is kept */
	struct router_sort sort[] = { { 0, false, false } };
	struct router_merge spec2 = { .n_cols = 1,
				      .n_visible = 1,
				      .cols = plain_cols,
				      .distinct = true,
				      .n_sort = 1,
				      .sort = sort,
				      .limit = -1,
				      .offset = 1 };
	m = merger(&spec2, 2);
	for (int s = 0; s < 2; s++)
		DESC(m, s, { "a", ROUTER_OID_INT4, 0 });
	ROW(m, 0, V("1"));
	ROW(m, 0, V("2"));
	ROW(m, 0, V("2"));
	ROW(m, 1, V("1"));
	ROW(m, 1, V("2"));
	ROW(m, 1, V("3"));
	ROW(m, 1, NUL);
	ROW(m, 0, NUL);
	complete(m, 0, "SELECT 4");
	complete(m, 1, "SELECT 4");
	drain(m);
	EXPECT_OUT("T(a:23) [2] [3] [-] C:SELECT 3");
	router_merger_free(m);

	/* SELECT DISTINCT count(*) ... GROUP BY k: after the merge */
	struct router_col cols[] = { { ROUTER_AGG_COUNT, 0 }, { ROUTER_AGG_NONE, 0 } };
	struct router_merge spec3 = { .n_cols = 2,
				      .n_visible = 1,
				      .cols = cols,
				      .aggregate = true,
				      .distinct = true,
				      .n_sort = 1,
				      .sort = sort,
				      .limit = -1 };
	m = merger(&spec3, 2);
	for (int s = 0; s < 2; s++)
		DESC(m, s, { "count", ROUTER_OID_INT8, 0 }, { "k", 25, 0 });
	ROW(m, 0, V("1"), V("a"));
	ROW(m, 1, V("1"), V("a")); /* a: 2 */
	ROW(m, 0, V("2"), V("b")); /* b: 2 */
	ROW(m, 1, V("5"), V("c")); /* c: 5 */
	complete(m, 0, "SELECT 2");
	complete(m, 1, "SELECT 2");
	drain(m);
	EXPECT_OUT("T(count:20) [2] [5] C:SELECT 2");
	router_merger_free(m);
}

/* ---- memory stays bounded while streaming ---------------------------------------------- */

static void test_memory_bound(void **state)
{
	(void)state;
	/* ORDER BY id over 3 shards of 200,000 rows each (ids interleaved
	 * unevenly, shard 0's from far ahead), read only while wanted: the
	 * rows queued never pass 3 queues' bound */
	enum { ROWS = 200000 };
	struct router_sort sort[] = { { 0, false, false } };
	struct router_merge spec = { .n_cols = 2,
				     .n_visible = 1,
				     .cols = plain_cols,
				     .n_sort = 1,
				     .sort = sort,
				     .limit = -1 };
	struct router_merger *m = merger(&spec, 3);
	int next[3] = { 0, 0, 0 };
	bool ended[3] = { false, false, false };
	for (int s = 0; s < 3; s++)
		DESC(m, s, { "id", ROUTER_OID_INT8, 0 }, { "pad", 25, 0 });
	static uint8_t buf[1 << 16];
	long long emitted_rows = 0, last = -1;
	size_t max_queued = 0;
	bool in_order = true;
	while (!router_merger_done(m)) {
		bool fed = false;
		for (int s = 0; s < 3; s++) {
			/* a burst per turn, as a socket read brings many rows */
			for (int k = 0; k < 100 && router_merger_wants(m, s); k++) {
				if (next[s] == ROWS) {
					if (!ended[s])
						complete(m, s, "SELECT 200000");
					ended[s] = true;
					break;
				}
				char id[24];
				long long v = s == 0 ? 3LL * next[s] + 300000 : 3LL * next[s] + s;
				snprintf(id, sizeof(id), "%lld", v);
				struct val row[2] = { { id, (int32_t)strlen(id) },
						      V("padding-padding-padding") };
				assert_int_equal(feed_row(m, s, 2, row), 0);
				next[s]++;
				fed = true;
			}
		}
		/* queued rows: fed minus emitted (this test sees no other way in) */
		size_t queued = (size_t)(next[0] + next[1] + next[2]) - (size_t)emitted_rows;
		if (queued > max_queued)
			max_queued = queued;
		long n = router_merger_emit(m, buf, sizeof(buf));
		assert_true(n >= 0);
		for (long o = 0; o < n;) {
			uint32_t len = rd32(buf + o + 1);
			if (buf[o] == 'D') {
				assert_int_equal(buf[o + 5] << 8 | buf[o + 6], 1);
				uint32_t vl = rd32(buf + o + 7);
				char id[24] = { 0 };
				memcpy(id, buf + o + 11, vl);
				long long v = atoll(id);
				in_order &= v > last;
				last = v;
				emitted_rows++;
			}
			o += 1 + (long)len;
		}
		assert_true(fed || n > 0 || router_merger_done(m));
	}
	assert_true(in_order);
	assert_int_equal(emitted_rows, 3 * ROWS);
	/* each source runs at most its queue (64 rows) plus one burst's
	 * overshoot when it was empty, never the 600,000 */
	assert_true(max_queued <= 3 * (64 + 100));
	router_merger_free(m);
}

/* ---- values.c directly -------------------------------------------------------------------- */

static void test_float_format(void **state)
{
	(void)state;
	/* SELECT 1e15::float8, 1e16::float8, 123456789012345.6::float8,
	 * 1234567890123456.7::float8, 0.0001::float8, 0.00001::float8,
	 * 1.5e-7::float8, 0.1::float8+0.2::float8, 1e100::float8, 1e14::float8
	 * -> 1e+15|1e+16|123456789012345.6|1.2345678901234568e+15|0.0001|1e-05|
	 *    1.5e-07|0.30000000000000004|1e+100|100000000000000 */
	struct {
		double v;
		bool f4;
		const char *want;
	} cases[] = {
		{ 1e15, false, "1e+15" },
		{ 1e16, false, "1e+16" },
		{ 123456789012345.6, false, "123456789012345.6" },
		{ 1234567890123456.7, false, "1.2345678901234568e+15" },
		{ 0.0001, false, "0.0001" },
		{ 0.00001, false, "1e-05" },
		{ 1.5e-7, false, "1.5e-07" },
		{ 0.1 + 0.2, false, "0.30000000000000004" },
		{ 1e100, false, "1e+100" },
		{ 1e14, false, "100000000000000" },
		{ 1.5e14, false, "150000000000000" },
		{ 1.2e20, false, "1.2e+20" },
		{ -0.0, false, "-0" },
		/* SELECT 1e6::float4, 1234567::float4, 123456::float4,
		 * 12345678::float4, 3.4e38::float4, 1e-5::float4
		 * -> 1e+06|1.234567e+06|123456|1.2345678e+07|3.4e+38|1e-05 */
		{ 1e6, true, "1e+06" },
		{ 1234567, true, "1.234567e+06" },
		{ 123456, true, "123456" },
		{ 12345678, true, "1.2345678e+07" },
		{ 3.4e38f, true, "3.4e+38" },
		{ 1e-5f, true, "1e-05" },
	};
	for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
		char buf[32];
		int n = router_float_format(cases[i].v, cases[i].f4, buf);
		assert_int_equal(n, (int)strlen(buf));
		assert_string_equal(buf, cases[i].want);
	}
}

static void test_numeric_binary_roundtrip(void **state)
{
	(void)state;
	const char *texts[] = { "0",
				"0.000",
				"12.5",
				"-12.5000",
				"0.0001",
				"10000",
				"123456789.987654321",
				"-0.00000000001",
				"NaN",
				"Infinity",
				"-Infinity",
				"99999999999999999999.99" };
	for (size_t i = 0; i < sizeof(texts) / sizeof(texts[0]); i++) {
		struct router_dec d, back;
		assert_int_equal(router_dec_from_text(&d, (const uint8_t *)texts[i],
						      strlen(texts[i])),
				 0);
		uint32_t blen, tlen;
		uint8_t *bin = router_dec_encode(&d, true, &blen);
		assert_non_null(bin);
		assert_int_equal(router_dec_from_numeric_bin(&back, bin, blen), 0);
		uint8_t *text = router_dec_encode(&back, false, &tlen);
		assert_non_null(text);
		assert_int_equal(tlen, strlen(texts[i]));
		assert_memory_equal(text, texts[i], tlen);
		free(bin);
		free(text);
		router_dec_free(&d);
		router_dec_free(&back);
	}
	/* and a value PostgreSQL sent: 12.5 is ndigits 2, weight 0, dscale 1,
	 * digits 12 and 5000 */
	const uint8_t pg[] = { 0, 2, 0, 0, 0, 0, 0, 1, 0, 12, 0x13, 0x88 };
	struct router_dec d;
	assert_int_equal(router_dec_from_numeric_bin(&d, pg, sizeof(pg)), 0);
	uint32_t blen;
	uint8_t *bin = router_dec_encode(&d, true, &blen);
	assert_int_equal(blen, sizeof(pg));
	assert_memory_equal(bin, pg, sizeof(pg));
	free(bin);
	router_dec_free(&d);
}

static void test_spec_rejected(void **state)
{
	(void)state;
	struct router_sort sort[] = { { 3, false, false } };
	struct router_merge spec = { .n_cols = 2,
				     .n_visible = 2,
				     .cols = plain_cols,
				     .n_sort = 1,
				     .sort = sort,
				     .limit = -1 };
	assert_null(router_merger_new(&spec, 2));
	spec.n_sort = 0;
	spec.n_visible = 3;
	assert_null(router_merger_new(&spec, 2));
	spec.n_visible = 2;
	assert_null(router_merger_new(&spec, 0));
	assert_null(router_merger_new(&spec, 65));
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_kway_int_streams),
		cmocka_unit_test(test_kway_text_desc_nulls_first),
		cmocka_unit_test(test_kway_numeric_float_two_keys),
		cmocka_unit_test(test_kway_binary_types),
		cmocka_unit_test(test_kway_binary_text_uuid_bool_ts),
		cmocka_unit_test(test_kway_timestamps_text),
		cmocka_unit_test(test_limit_offset),
		cmocka_unit_test(test_hidden_sort_column),
		cmocka_unit_test(test_unsorted_and_plain),
		cmocka_unit_test(test_rowdesc_mismatch),
		cmocka_unit_test(test_agg_no_group),
		cmocka_unit_test(test_agg_empty),
		cmocka_unit_test(test_avg_scale_as_postgres),
		cmocka_unit_test(test_sums),
		cmocka_unit_test(test_sum_avg_binary),
		cmocka_unit_test(test_agg_groups_having_sort),
		cmocka_unit_test(test_having_forms),
		cmocka_unit_test(test_distinct),
		cmocka_unit_test(test_memory_bound),
		cmocka_unit_test(test_float_format),
		cmocka_unit_test(test_numeric_binary_roundtrip),
		cmocka_unit_test(test_spec_rejected),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
