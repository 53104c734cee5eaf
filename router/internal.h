/* Helpers shared by the router's own files (the .c files in router/), not by its users:
 * each section names the file that owns it. */
#ifndef PGCRAB_ROUTER_INTERNAL_H
#define PGCRAB_ROUTER_INTERNAL_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

/* ==== values.c: typed values of result columns (merge.c compares, sums
 * and prints them) ========================================================== */

/* Type OIDs of the columns the merge understands. */
#define ROUTER_OID_BOOL        16
#define ROUTER_OID_INT8        20
#define ROUTER_OID_INT2        21
#define ROUTER_OID_INT4        23
#define ROUTER_OID_OID         26
#define ROUTER_OID_FLOAT4      700
#define ROUTER_OID_FLOAT8      701
#define ROUTER_OID_DATE        1082
#define ROUTER_OID_TIMESTAMP   1114
#define ROUTER_OID_TIMESTAMPTZ 1184
#define ROUTER_OID_NUMERIC     1700

/* How a column's values compare: its type and format together. */
enum router_kind {
	ROUTER_KIND_BYTES,      /* memcmp, shorter first: text types in C collation, uuid, others */
	ROUTER_KIND_INT_TEXT,   /* int2, int4, int8, oid in text */
	ROUTER_KIND_INT_BIN,    /* 2, 4 or 8 bytes, signed; oid unsigned */
	ROUTER_KIND_OID_BIN,    /* 4 bytes, unsigned */
	ROUTER_KIND_FLOAT_TEXT, /* float4, float8 */
	ROUTER_KIND_FLOAT4_BIN,
	ROUTER_KIND_FLOAT8_BIN,
	ROUTER_KIND_NUMERIC_TEXT,
	ROUTER_KIND_NUMERIC_BIN,
	ROUTER_KIND_BOOL_TEXT,
	ROUTER_KIND_BOOL_BIN,
	ROUTER_KIND_TIME_TEXT, /* date, timestamp, timestamptz in DateStyle ISO */
	ROUTER_KIND_DATE_BIN,  /* int32 days */
	ROUTER_KIND_TS_BIN,    /* int64 microseconds */
	ROUTER_KIND_CONST,     /* router_value_cmp_any: a constant in text form */
};

enum router_kind router_kind_of(uint32_t type_oid, int16_t format);

/* Whether a non-NULL value is readable as its kind (every compare
 * assumes it is). */
bool router_value_valid(enum router_kind k, const uint8_t *v, uint32_t len);

/* <0, 0, >0: a sorts before, with, after b (valid non-NULL values of k),
 * as PostgreSQL orders them: NaN above every number, -0 = 0, text in C
 * collation. */
int router_value_cmp(enum router_kind k, const uint8_t *a, uint32_t alen, const uint8_t *b,
		     uint32_t blen);

/* The same across kinds or against a constant in text form (HAVING):
 * numbers compare as numbers whatever their kinds, a constant is read as
 * the other side's kind. 0 and *out, or -1 when the two cannot be compared. */
int router_value_cmp_any(enum router_kind ka, const uint8_t *a, uint32_t alen, enum router_kind kb,
			 const uint8_t *b, uint32_t blen, int *out);

/* Bytes equal exactly for values PostgreSQL holds equal where its output
 * differs (numeric 1.0 = 1.00, float -0 = 0): a hash key for DISTINCT and
 * GROUP BY. Writes at most len + 2 bytes (binary numeric: see
 * router_value_norm_max) to out; returns how many. */
size_t router_value_norm(enum router_kind k, const uint8_t *v, uint32_t len, uint8_t *out);
size_t router_value_norm_max(enum router_kind k, uint32_t len);

/* An exact decimal: PostgreSQL's numeric with its display scale. */
enum router_dec_special { ROUTER_DEC_FINITE, ROUTER_DEC_NAN, ROUTER_DEC_PINF, ROUTER_DEC_NINF };

struct router_dec {
	enum router_dec_special special;
	bool neg;
	int n_int;    /* digits before the point, without leading zeros */
	int scale;    /* digits after it: the display scale */
	char *digits; /* n_int + scale ASCII digits (malloc'd; NULL when none) */
};

/* 0, -1 not valid input, -2 out of memory. The text is numeric's output
 * form (no exponent): "-12.50", "NaN", "Infinity". */
int router_dec_from_text(struct router_dec *d, const uint8_t *v, size_t len);
int router_dec_from_numeric_bin(struct router_dec *d, const uint8_t *v, size_t len);
int router_dec_from_int64(struct router_dec *d, int64_t v);
void router_dec_free(struct router_dec *d);
/* acc += x with the larger scale, as numeric's + does. 0 or -2. */
int router_dec_add(struct router_dec *acc, const struct router_dec *x);
/* out = sum / n (n > 0) at the scale numeric division picks, rounded half
 * away from zero: numeric's avg. 0 or -2. */
int router_dec_div_count(const struct router_dec *sum, int64_t n, struct router_dec *out);
int router_dec_cmp(const struct router_dec *a, const struct router_dec *b);
/* The value in numeric's text or binary form, malloc'd; NULL out of memory. */
uint8_t *router_dec_encode(const struct router_dec *d, bool binary, uint32_t *len);

/* float8 (or float4) output as PostgreSQL 12+ prints it with
 * extra_float_digits 1: the shortest digits that read back exactly. buf
 * holds 32 bytes; returns the length. */
int router_float_format(double v, bool float4, char *buf);
/* A float column's value, text or binary; false if unreadable. */
bool router_float_read(enum router_kind k, const uint8_t *v, uint32_t len, double *out);
/* An integer column's value (int2/4/8, oid), text or binary. */
bool router_int_read(enum router_kind k, const uint8_t *v, uint32_t len, int64_t *out);

#include "router/router.h"

/* ---- select.c ------------------------------------------------------------ */

/* A SELECT (sql[0, len) is that one statement) that runs on several shards:
 * sets p->shard_sql (the text each shard runs; NULL if the original text
 * will do) and p->merge (how answers merge: struct router_merge in
 * router/router.h), or sets p->route = ROUTER_REFUSE with p->sqlstate /
 * p->message (malloc'd). What is refused, never answered wrong: window
 * functions, aggregates other than count/sum/min/max/avg/bool_and/bool_or/
 * every, aggregates with DISTINCT or ORDER BY inside, an aggregate inside
 * an expression, GROUPING SETS/ROLLUP/CUBE, DISTINCT ON, set operations,
 * LIMIT/OFFSET that are not integer constants, FETCH ... WITH TIES, WITH
 * or a subquery (other than a plain filter in FROM) that reads a sharded
 * table, two sharded tables not joined on their full key, and an outer
 * join whose preserved side has no sharded table. 0, or -1 out of memory
 * (p may then hold a partial answer, which router_plan_free frees). */
int router_select_merge(const struct router_schema *schema, const char *sql, size_t len,
			struct router_plan *p);

/* Frees a merge spec made by router_select_merge (NULL is fine). */
void router_merge_free(struct router_merge *m);

#endif
