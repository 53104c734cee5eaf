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
 * LIMIT/OFFSET that are neither integer constants nor $n, FETCH ... WITH TIES, WITH
 * or a subquery (other than a plain filter in FROM) that reads a sharded
 * table, two sharded tables not joined on their full key, and an outer
 * join whose preserved side has no sharded table. 0, or -1 out of memory
 * (p may then hold a partial answer, which router_plan_free frees). */
int router_select_merge(const struct router_schema *schema, const char *sql, size_t len,
			struct router_plan *p);

/* Frees a merge spec made by router_select_merge (NULL is fine). */
void router_merge_free(struct router_merge *m);

/* ---- plan.c and the plan_*.c beside it (plan_tree.h: their view of the
 * parse tree) ------------------------------------------------------------ */

/* A plan with what the planner knows of it besides the public fields: the
 * thread's cache holds these; router_plan hands out a copy of the plan.
 * Conventions of the plans made here:
 * - split has ROUTER_MAX_SHARDS entries (NULL past n_shards), so that a
 *   plan can be freed and copied without its schema;
 * - a ROUTER_BIND plan's sqlstate/message, when set, are what a Bind gets
 *   whose keys land on several shards (a multi-row INSERT, cross_shard_*
 *   = error, a SELECT whose merge select.c refused). */
struct plan_box {
	struct router_plan plan; /* first: a box may be handed out as its plan */
	/* no key of its own, no hint comment, not transaction control or
	 * SET pgcrab.*: the session's hints route it */
	bool hintable;
	bool rows;          /* may return rows (the rule for strings of several statements) */
	bool has_hint_type; /* hint_type is the first sharded table's first key column */
	enum router_type hint_type;
};

/* plan_cache.c */
#define PLAN_CACHE_TEXT_MAX 8192 /* longer texts are planned every time */
#define PLAN_CACHE_SLOTS    1024 /* a power of two */

/* plan.c: boxes; a plan's copy (NULL out of memory); a refusal (route,
 * sqlstate and the formatted message; -1 out of memory) */
struct plan_box *plan_box_new(void);
void plan_box_free(struct plan_box *b);
struct router_plan *plan_copy(const struct router_plan *p);
int plan_refuse(struct plan_box *b, const char *sqlstate, const char *fmt, ...)
	__attribute__((format(printf, 3, 4)));
/* plan_hint.c: the comment hints of the text: 0 none, 1 shard (*shard, -1
 * when it is no number), 2 key (*key, malloc'd). -1 out of memory. */
int plan_find_hint(const char *sql, size_t len, int *shard, char **key);

/* plan_stmt.c: plans one parsed statement (a PgQuery__Node *; void * so
 * that this header needs no libpg_query) whose text is sql[0, len). multi:
 * the string holds several statements, so no merge is planned. 0, or -1 out
 * of memory (b is then freed by the caller). */
int plan_statement(const struct router_schema *schema, const void *stmt, const char *sql,
		   size_t len, bool multi, struct plan_box *b);

/* plan_insert.c: INSERT into sharded table t (its index in the schema);
 * insert_stmt is its PgQuery__Node, sql[0, len) its text. multi: as for
 * plan_statement (rows for several shards are refused, not split). */
int plan_insert(const struct router_schema *schema, const void *insert_stmt, const char *sql,
		size_t len, int t, bool multi, struct plan_box *b);

/* plan_stmt.c: "2" -> 2 when it is a shard of n_shards, else -1. */
int plan_shard_number(const char *s, int n_shards);

/* plan_cache.c: the thread's plans by text and schema. get: the cached
 * box (the cache's still), or NULL. put: true when the cache took b. */
const struct plan_box *plan_cache_get(const struct router_schema *schema, const char *sql,
				      size_t len, uint64_t hash);
bool plan_cache_put(const struct router_schema *schema, const char *sql, size_t len, uint64_t hash,
		    struct plan_box *b);
uint64_t plan_text_hash(const char *sql, size_t len);

/* ---- copy.c ---------------------------------------------------------------- */

/* The longest row a splitter holds (1 GB, PostgreSQL's own limit, unless
 * changed): the unit test lowers it to reach the limit without 1 GB. */
void router_copy_splitter_set_max_row(struct router_copy_splitter *sp, size_t max);

#endif
