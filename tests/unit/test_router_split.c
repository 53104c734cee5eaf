/* router/plan_bind.c and plan_split.c: a multi-row INSERT whose keys are
 * Bind parameters, split per shard. Each row's shard from a Bind in text
 * and binary (checked against router_key_shard for the same values), the
 * union router_bind_shards gives, and each subset's text and parameter
 * map: rows sharing a parameter, a parameter used twice in a row,
 * RETURNING, ON CONFLICT and WITH parameters, keys mixing literals and
 * parameters. A subset's text is planned again, to check that its keys
 * are the kept rows' parameters renumbered. Prints the cost of a cut. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include <pg_query.h>

#include "router/internal.h"

static const struct router_table tables[] = {
	{ NULL, "accounts", 1, { "id" }, { ROUTER_INT8 } },
	{ NULL, "orders", 2, { "tenant_id", "id" }, { ROUTER_INT8, ROUTER_INT8 } },
	{ NULL, "users", 1, { "email" }, { ROUTER_TEXT } },
	{ NULL, "events", 1, { "key" }, { ROUTER_UUID } },
};
static const struct router_schema schema = { 4, 4, tables, false, false };
static const struct router_schema strict = { 4, 4, tables, true, true };
static const struct router_context no_ctx = { -1, NULL };

static struct router_plan *plan_s(const struct router_schema *s, const char *sql)
{
	struct router_plan *p = router_plan(s, &no_ctx, sql, strlen(sql));
	assert_non_null(p);
	return p;
}

static struct router_plan *plan(const char *sql)
{
	return plan_s(&schema, sql);
}

/* The subset of p's rows in keep ("101": rows 0 and 2) must be `want`
 * with the map `want_map` (n_want entries). */
static void check_subset(const struct router_plan *p, const char *keep_str, const char *want,
			 const int *want_map, int n_want)
{
	bool keep[64];
	char *sql;
	int *map, n;

	assert_int_equal(strlen(keep_str), p->insert_rows);
	for (int i = 0; keep_str[i]; i++)
		keep[i] = keep_str[i] == '1';
	assert_int_equal(router_insert_subset(p, keep, &sql, &map, &n), 0);
	assert_string_equal(sql, want);
	{ /* and it is SQL */
		PgQueryParseResult r = pg_query_parse(sql);
		assert_null(r.error);
		pg_query_free_parse_result(r);
	}
	assert_int_equal(n, n_want);
	for (int j = 0; j < n; j++)
		assert_int_equal(map[j], want_map[j]);
	free(sql);
	free(map);
}

static void test_subsets(void **state)
{
	struct router_plan *p;

	(void)state;
	p = plan("INSERT INTO accounts (id, name) VALUES ($1, $2), ($3, $4), ($5, $6) RETURNING "
		 "id, $7");
	assert_int_equal(p->route, ROUTER_BIND);
	assert_int_equal(p->insert_rows, 3);
	assert_null(p->message);
	check_subset(p, "101",
		     "INSERT INTO accounts (id, name) VALUES ($1, $2), ($3, $4) RETURNING id, $5",
		     (const int[]){ 1, 2, 5, 6, 7 }, 5);
	check_subset(p, "010", "INSERT INTO accounts (id, name) VALUES ($1, $2) RETURNING id, $3",
		     (const int[]){ 3, 4, 7 }, 3);
	check_subset(p, "111",
		     "INSERT INTO accounts (id, name) VALUES ($1, $2), ($3, $4), ($5, $6) RETURNING "
		     "id, $7",
		     (const int[]){ 1, 2, 3, 4, 5, 6, 7 }, 7);
	router_plan_free(p);

	/* ON CONFLICT ... SET with a parameter after the rows' */
	p = plan(
		"INSERT INTO accounts (id, n) VALUES ($1, $2), ($3, $4) ON CONFLICT (id) DO UPDATE "
		"SET n = $5 WHERE accounts.n < $6");
	assert_int_equal(p->insert_rows, 2);
	check_subset(
		p, "01",
		"INSERT INTO accounts (id, n) VALUES ($1, $2) ON CONFLICT (id) DO UPDATE SET n = "
		"$3 WHERE accounts.n < $4",
		(const int[]){ 3, 4, 5, 6 }, 4);
	router_plan_free(p);

	/* a WITH's parameter comes first in the text, last by number */
	p = plan("WITH t AS (SELECT $5::int AS x) INSERT INTO accounts (id, n) VALUES ($1, $2), "
		 "($3, $4)");
	assert_int_equal(p->route, ROUTER_BIND);
	assert_int_equal(p->insert_rows, 2);
	check_subset(p, "10",
		     "WITH t AS (SELECT $3::int AS x) INSERT INTO accounts (id, n) VALUES ($1, $2)",
		     (const int[]){ 1, 2, 5 }, 3);
	router_plan_free(p);

	/* rows sharing a parameter, and one used twice in a row; numbers in
	 * any order in the text */
	p = plan("INSERT INTO users (email, name) VALUES ($2, 'a'), ($2, 'b'), ($1, $1), ($3, $2)");
	assert_int_equal(p->insert_rows, 4);
	check_subset(p, "1100", "INSERT INTO users (email, name) VALUES ($1, 'a'), ($1, 'b')",
		     (const int[]){ 2 }, 1);
	check_subset(p, "0010", "INSERT INTO users (email, name) VALUES ($1, $1)",
		     (const int[]){ 1 }, 1);
	check_subset(p, "1011",
		     "INSERT INTO users (email, name) VALUES ($2, 'a'), ($1, $1), ($3, $2)",
		     (const int[]){ 1, 2, 3 }, 3);
	check_subset(p, "0001", "INSERT INTO users (email, name) VALUES ($2, $1)",
		     (const int[]){ 2, 3 }, 2);
	router_plan_free(p);

	/* the client's text is cut, not rewritten: comments, casts, strings
	 * and dollar quotes that look like parameters or parentheses, a WITH
	 * with VALUES of its own, expressions in other columns; rows are joined
	 * by ", " (the text is the statement's own: a ';' after it is not) */
	p = plan("/* app */ WITH v(x) AS (VALUES ($9), ('(')) INSERT INTO  accounts (id, note, n)\n"
		 "VALUES ($1::int8, '$2 ) (', ($2 + 1) * 2) -- first\n,\n($3, $$ $1 ), $$, "
		 "(SELECT max(x) FROM v WHERE x <> $1)), /* c */ (-5, E'\\'$4', $4)\n"
		 "ON CONFLICT (id) DO NOTHING RETURNING id, $10;");
	assert_int_equal(p->route, ROUTER_BIND);
	assert_int_equal(p->insert_rows, 3);
	assert_null(p->message);
	check_subset(
		p, "101",
		"/* app */ WITH v(x) AS (VALUES ($4), ('(')) INSERT INTO  accounts (id, note, n)\n"
		"VALUES ($1::int8, '$2 ) (', ($2 + 1) * 2), (-5, E'\\'$4', $3)\n"
		"ON CONFLICT (id) DO NOTHING RETURNING id, $5",
		(const int[]){ 1, 2, 4, 9, 10 }, 5);
	check_subset(
		p, "010",
		"/* app */ WITH v(x) AS (VALUES ($3), ('(')) INSERT INTO  accounts (id, note, n)\n"
		"VALUES ($2, $$ $1 ), $$, (SELECT max(x) FROM v WHERE x <> $1))\n"
		"ON CONFLICT (id) DO NOTHING RETURNING id, $4",
		(const int[]){ 1, 3, 9, 10 }, 4);
	router_plan_free(p);

	/* a column named values, and the statement in parentheses */
	p = plan("INSERT INTO accounts (values, id) (VALUES ('a', $1), ('b', $2), ('c', $3))");
	assert_int_equal(p->route, ROUTER_BIND);
	assert_null(p->message);
	check_subset(p, "011", "INSERT INTO accounts (values, id) (VALUES ('b', $1), ('c', $2))",
		     (const int[]){ 2, 3 }, 2);
	router_plan_free(p);

	/* a row with no parameter at all keeps its literal */
	p = plan("INSERT INTO accounts (id) VALUES (7), ($1)");
	assert_int_equal(p->insert_rows, 2);
	check_subset(p, "10", "INSERT INTO accounts (id) VALUES (7)", NULL, 0);
	router_plan_free(p);
	router_plan_cache_free();
}

/* A subset's text, planned again: its keys are the kept rows' keys with
 * the parameters renumbered by the map. */
static void test_subset_replans(void **state)
{
	const char *sql = "INSERT INTO orders (id, tenant_id, note) VALUES ($1, 10, $2), ($3, $4, "
			  "$5), (5, $4, $6) RETURNING $7::text";
	const bool keep[3] = { false, true, true };
	struct router_plan *p, *q;
	char *text;
	int *map, n;

	(void)state;
	p = plan(sql);
	assert_int_equal(p->insert_rows, 3);
	assert_int_equal(router_insert_subset(p, keep, &text, &map, &n), 0);
	q = plan(text);
	assert_int_equal(q->route, ROUTER_BIND);
	assert_int_equal(q->insert_rows, 2);
	assert_non_null(q->insert_split);
	for (int r = 0; r < 2; r++) {
		const struct router_key *want = &p->keys[r + 1], *got = &q->keys[r];
		assert_int_equal(got->n_cols, want->n_cols);
		for (int c = 0; c < got->n_cols; c++) {
			if (want->cols[c].param == 0) {
				assert_int_equal(got->cols[c].param, 0);
				assert_string_equal(got->cols[c].literal, want->cols[c].literal);
			} else {
				assert_true(got->cols[c].param >= 1 && got->cols[c].param <= n);
				assert_int_equal(map[got->cols[c].param - 1], want->cols[c].param);
			}
		}
	}
	assert_int_equal(n, 5); /* $3 $4 $5 $6 $7 */
	free(text);
	free(map);
	router_plan_free(q);
	router_plan_free(p);
	router_plan_cache_free();
}

static void put_be(uint8_t *out, uint64_t v, int width)
{
	for (int i = width - 1; i >= 0; i--, v >>= 8)
		out[i] = (uint8_t)v;
}

/* 60 rows of ($i): ids in text, then the same ids in binary (2, 4 and 8
 * bytes), each row's shard router_key_shard's, the union as
 * router_bind_shards gives it, and the plan from the cache alike. */
static void test_rows_match_key_shard(void **state)
{
	enum { ROWS = 60 };
	char sql[ROWS * 8 + 64], text[ROWS][24];
	uint8_t bin[ROWS][8];
	const uint8_t *values[ROWS];
	int32_t lengths[ROWS];
	int16_t formats[ROWS];
	int row_shard[ROWS], width[3] = { 2, 4, 8 };
	enum router_type t = ROUTER_INT8;
	size_t used = 0;
	uint64_t mask, want_mask = 0;
	char err[256];
	unsigned seed = 12345;

	(void)state;
	used += (size_t)snprintf(sql + used, sizeof(sql) - used,
				 "INSERT INTO accounts (id) VALUES ");
	for (int r = 0; r < ROWS; r++)
		used += (size_t)snprintf(sql + used, sizeof(sql) - used, "%s($%d)", r ? ", " : "",
					 r + 1);
	for (int pass = 0; pass < 2; pass++) { /* parsed, then from the cache */
		struct router_plan *p = plan(sql);
		assert_int_equal(p->insert_rows, ROWS);
		for (int w = 0; w < 3; w++) {
			want_mask = 0;
			for (int r = 0; r < ROWS; r++) {
				int64_t v;
				const char *tv;
				seed = seed * 1103515245u + 12345u;
				v = (int64_t)(seed >> 4) - (1 << 26);
				if (width[w] == 2)
					v = (int16_t)v;
				if (r == 0)
					v = width[w] == 8       ? INT64_MIN
						: width[w] == 4 ? INT32_MIN
								: 0;
				snprintf(text[r], sizeof(text[r]), "%lld", (long long)v);
				put_be(bin[r], (uint64_t)v, width[w]);
				tv = text[r];
				want_mask |= UINT64_C(1) << router_key_shard(1, &t, &tv, 4);
			}
			for (int f = 0; f < 2; f++) {
				for (int r = 0; r < ROWS; r++) {
					values[r] = f ? bin[r] : (const uint8_t *)text[r];
					lengths[r] = f ? width[w] : (int32_t)strlen(text[r]);
					formats[r] = (int16_t)f;
				}
				assert_int_equal(router_bind_rows(p, 4, ROWS, values, lengths,
								  formats, row_shard, err,
								  sizeof(err)),
						 0);
				for (int r = 0; r < ROWS; r++) {
					const char *tv = text[r];
					assert_int_equal(row_shard[r],
							 router_key_shard(1, &t, &tv, 4));
				}
				assert_int_equal(router_bind_shards(p, 4, ROWS, values, lengths,
								    formats, &mask, err,
								    sizeof(err)),
						 0);
				assert_true(mask == want_mask);
				assert_true(__builtin_popcountll(mask) > 1);
			}
		}
		router_plan_free(p);
	}
	router_plan_cache_free();
}

/* Text and uuid keys, a NULL key, and a two-column key mixing a literal
 * with parameters. */
static void test_rows_other_keys(void **state)
{
	const char *emails[3] = { "a@x", "", "\xc3\xa9t\xc3\xa9@x" };
	const char *uuid = "a0eebc99-9c0b-4ef8-bb6d-6bb9bd380a11";
	uint8_t uuid_bin[16];
	const uint8_t *values[4];
	int32_t lengths[4];
	int16_t formats[4] = { 0, 0, 0, 0 };
	int row_shard[4];
	enum router_type tt = ROUTER_TEXT, tu = ROUTER_UUID, t2[2] = { ROUTER_INT8, ROUTER_INT8 };
	char err[256];
	struct router_plan *p;

	(void)state;
	p = plan("INSERT INTO users (email) VALUES ($1), ($2), ($3), ($4)");
	for (int i = 0; i < 3; i++) {
		values[i] = (const uint8_t *)emails[i];
		lengths[i] = (int32_t)strlen(emails[i]);
	}
	values[3] = NULL;
	lengths[3] = -1;
	assert_int_equal(router_bind_rows(p, 4, 4, values, lengths, formats, row_shard, err,
					  sizeof(err)),
			 0);
	for (int i = 0; i < 3; i++)
		assert_int_equal(row_shard[i], router_key_shard(1, &tt, &emails[i], 4));
	{
		const char *null_key = NULL;
		assert_int_equal(row_shard[3], router_key_shard(1, &tt, &null_key, 4));
	}
	router_plan_free(p);

	p = plan("INSERT INTO events (key) VALUES ($1), ($2::uuid)");
	for (int i = 0; i < 16; i++) {
		unsigned byte;
		sscanf(uuid + i * 2 + (i >= 4) + (i >= 6) + (i >= 8) + (i >= 10), "%2x", &byte);
		uuid_bin[i] = (uint8_t)byte;
	}
	values[0] = (const uint8_t *)uuid;
	lengths[0] = (int32_t)strlen(uuid);
	values[1] = uuid_bin;
	lengths[1] = 16;
	formats[1] = 1;
	assert_int_equal(router_bind_rows(p, 4, 2, values, lengths, formats, row_shard, err,
					  sizeof(err)),
			 0);
	assert_int_equal(row_shard[0], router_key_shard(1, &tu, &uuid, 4));
	assert_int_equal(row_shard[1], row_shard[0]);
	router_plan_free(p);

	/* tenant_id a literal in one row, a parameter in the other */
	p = plan("INSERT INTO orders (tenant_id, id) VALUES (10, $1), ($2, $1)");
	assert_int_equal(p->insert_rows, 2);
	formats[1] = 0;
	for (int v = 0; v < 20; v++) {
		char a[8], b[8];
		const char *k0[2] = { "10", a }, *k1[2] = { b, a };
		snprintf(a, sizeof(a), "%d", v);
		snprintf(b, sizeof(b), "%d", 3 * v + 1);
		values[0] = (const uint8_t *)a;
		lengths[0] = (int32_t)strlen(a);
		values[1] = (const uint8_t *)b;
		lengths[1] = (int32_t)strlen(b);
		assert_int_equal(router_bind_rows(p, 4, 2, values, lengths, formats, row_shard, err,
						  sizeof(err)),
				 0);
		assert_int_equal(row_shard[0], router_key_shard(2, t2, k0, 4));
		assert_int_equal(row_shard[1], router_key_shard(2, t2, k1, 4));
	}
	router_plan_free(p);
	router_plan_cache_free();
}

static void test_refusals(void **state)
{
	const uint8_t *values[2] = { (const uint8_t *)"1", (const uint8_t *)"x" };
	int32_t lengths[2] = { 1, 1 };
	int row_shard[2];
	bool keep[2] = { false, false };
	char err[256], *sql;
	int *map, n;
	struct router_plan *p;

	(void)state;
	p = plan("INSERT INTO accounts (id) VALUES ($1), ($2)");
	/* not an int8 */
	assert_int_equal(router_bind_rows(p, 4, 2, values, lengths, NULL, row_shard, err,
					  sizeof(err)),
			 -1);
	assert_memory_equal(err, "22P02: ", 7);
	/* too few parameters */
	assert_int_equal(router_bind_rows(p, 4, 1, values, lengths, NULL, row_shard, err,
					  sizeof(err)),
			 -1);
	assert_memory_equal(err, "08P01: ", 7);
	/* no row kept */
	sql = (char *)"x";
	assert_int_equal(router_insert_subset(p, keep, &sql, &map, &n), -1);
	assert_null(sql);
	assert_null(map);
	router_plan_free(p);

	/* not multi-row INSERTs */
	p = plan("INSERT INTO accounts (id) VALUES ($1)");
	assert_int_equal(p->route, ROUTER_BIND);
	assert_int_equal(p->insert_rows, 0);
	assert_null(p->insert_split);
	assert_int_equal(router_bind_rows(p, 4, 1, values, lengths, NULL, row_shard, err,
					  sizeof(err)),
			 -1);
	assert_memory_equal(err, "XX000: ", 7);
	keep[0] = true;
	assert_int_equal(router_insert_subset(p, keep, &sql, &map, &n), -1);
	router_plan_free(p);
	p = plan("SELECT * FROM accounts WHERE id IN ($1, $2)");
	assert_int_equal(p->insert_rows, 0);
	assert_int_equal(router_bind_rows(p, 4, 2, values, lengths, NULL, row_shard, err,
					  sizeof(err)),
			 -1);
	router_plan_free(p);
	p = plan("INSERT INTO accounts (id) VALUES (1), (2), (3), (4), (5), (6)");
	assert_int_equal(p->route, ROUTER_SPLIT);
	assert_int_equal(p->insert_rows, 0);
	router_plan_free(p);

	/* cross_shard_writes = error: rows on one shard pass, on several are refused */
	p = plan_s(&strict, "INSERT INTO accounts (id) VALUES ($1), ($2)");
	assert_int_equal(p->route, ROUTER_BIND);
	assert_non_null(p->message);
	{
		uint64_t mask;
		enum router_type t = ROUTER_INT8;
		char b[8];
		const char *one = "1";
		for (int v = 2; v < 100; v++) { /* an id on another shard than 1 */
			const char *bv = b;
			snprintf(b, sizeof(b), "%d", v);
			if (router_key_shard(1, &t, &bv, 4) != router_key_shard(1, &t, &one, 4))
				break;
		}
		values[1] = (const uint8_t *)one;
		assert_int_equal(router_bind_shards(p, 4, 2, values, lengths, NULL, &mask, err,
						    sizeof(err)),
				 0);
		values[1] = (const uint8_t *)b;
		lengths[1] = (int32_t)strlen(b);
		assert_int_equal(router_bind_shards(p, 4, 2, values, lengths, NULL, &mask, err,
						    sizeof(err)),
				 -1);
		assert_non_null(strstr(err, "cross_shard_writes"));
	}
	router_plan_free(p);

	/* several statements: a Bind's keys among others stay refused */
	p = plan("INSERT INTO accounts (id) VALUES ($1), ($2); SELECT 1");
	assert_int_equal(p->route, ROUTER_REFUSE);
	router_plan_free(p);
	router_plan_cache_free();
}

static double now_us(void)
{
	struct timespec ts;
	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (double)ts.tv_sec * 1e6 + (double)ts.tv_nsec / 1e3;
}

/* The cost of one cut of a 100-row, 300-parameter INSERT in half: printed,
 * not asserted. */
static void test_bench(void **state)
{
	enum { ROWS = 100 };
	char sql[ROWS * 24 + 64];
	bool keep[ROWS];
	size_t used = 0;
	struct router_plan *p;
	const int n = 200;
	double t;

	(void)state;
	used += (size_t)snprintf(sql, sizeof(sql), "INSERT INTO accounts (id, a, b) VALUES ");
	for (int r = 0; r < ROWS; r++) {
		used += (size_t)snprintf(sql + used, sizeof(sql) - used, "%s($%d, $%d, $%d)",
					 r ? ", " : "", 3 * r + 1, 3 * r + 2, 3 * r + 3);
		keep[r] = r % 2;
	}
	p = plan(sql);
	assert_int_equal(p->insert_rows, ROWS);
	t = now_us();
	for (int k = 0; k < n; k++) {
		char *text;
		int *map, n_map;
		assert_int_equal(router_insert_subset(p, keep, &text, &map, &n_map), 0);
		assert_int_equal(n_map, 150);
		free(text);
		free(map);
	}
	t = now_us() - t;
	printf("router_insert_subset: %.1f us for 50 of 100 rows (3 parameters each)\n", t / n);
	router_plan_free(p);
	router_plan_cache_free();
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_subsets),
		cmocka_unit_test(test_subset_replans),
		cmocka_unit_test(test_rows_match_key_shard),
		cmocka_unit_test(test_rows_other_keys),
		cmocka_unit_test(test_refusals),
		cmocka_unit_test(test_bench),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
