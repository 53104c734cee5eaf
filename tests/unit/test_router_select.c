/* router/select.c: for each shape of cross-shard SELECT, the text the shards
 * run (deparsed) and the merge spec, written out as a string
 * ("n=cols/visible/hidden agg[...] distinct sort=... limit= offset=
 * having=..."); the refusals with their SQLSTATE and reason; and a seeded
 * random run over combined clauses that checks the spec against the shard
 * text it goes with (target counts, column indexes, AVG's count). */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include <pg_query.h>
#include <pg_query/pg_query.pb-c.h>

#include "router/internal.h"

static const struct router_table tables[] = {
	{ NULL, "t", 1, { "id" }, { ROUTER_INT8 } },
	{ NULL, "u", 1, { "id" }, { ROUTER_INT8 } },
	{ NULL, "m", 2, { "tenant_id", "id" }, { ROUTER_INT8, ROUTER_TEXT } },
	{ NULL, "w", 1, { "id" }, { ROUTER_INT4 } },
	{ "app", "s", 1, { "id" }, { ROUTER_INT8 } },
};
static const struct router_schema schema = { 3, 5, tables, false, false };

static struct router_plan *plan(const char *sql)
{
	struct router_plan *p = calloc(1, sizeof(*p));

	assert_non_null(p);
	assert_int_equal(router_select_merge(&schema, sql, strlen(sql), p), 0);
	return p;
}

static void put(char **at, char *end, const char *fmt, ...) __attribute__((format(printf, 3, 4)));

static void put(char **at, char *end, const char *fmt, ...)
{
	va_list ap;
	int n;

	va_start(ap, fmt);
	n = vsnprintf(*at, (size_t)(end - *at), fmt, ap);
	va_end(ap);
	assert_true(n >= 0 && n < end - *at);
	*at += n;
}

static void expr_str(char **at, char *end, const struct router_expr *e)
{
	switch (e->kind) {
	case ROUTER_EXPR_COL:
		put(at, end, "$%d", e->col);
		return;
	case ROUTER_EXPR_CONST:
		if (e->is_null)
			put(at, end, "NULL");
		else
			put(at, end, "'%s'", e->text);
		return;
	case ROUTER_EXPR_CMP:
		put(at, end, "(");
		expr_str(at, end, e->args[0]);
		put(at, end, " %s ", e->op);
		expr_str(at, end, e->args[1]);
		put(at, end, ")");
		return;
	case ROUTER_EXPR_AND:
	case ROUTER_EXPR_OR:
		put(at, end, "(");
		for (int i = 0; i < e->n_args; i++) {
			if (i)
				put(at, end, e->kind == ROUTER_EXPR_AND ? " AND " : " OR ");
			expr_str(at, end, e->args[i]);
		}
		put(at, end, ")");
		return;
	case ROUTER_EXPR_NOT:
		put(at, end, "NOT ");
		expr_str(at, end, e->args[0]);
		return;
	case ROUTER_EXPR_IS_NULL:
		expr_str(at, end, e->args[0]);
		put(at, end, e->negated ? " IS NOT NULL" : " IS NULL");
		return;
	}
	fail();
}

static const char *agg_name(enum router_agg a)
{
	static const char *const names[] = { "N", "COUNT", "SUM", "MIN", "MAX", "AVG", "AND", "OR" };
	return names[a];
}

static void spec_str(const struct router_merge *m, char *buf, size_t size)
{
	char *at = buf, *end = buf + size;

	put(&at, end, "n=%d/%d/%d", m->n_cols, m->n_visible, m->n_hidden);
	if (m->aggregate) {
		put(&at, end, " agg[");
		for (int i = 0; i < m->n_cols; i++) {
			put(&at, end, "%s%s", i ? " " : "", agg_name(m->cols[i].agg));
			if (m->cols[i].agg == ROUTER_AGG_AVG)
				put(&at, end, ":%d", m->cols[i].count_col);
		}
		put(&at, end, "]");
	} else {
		assert_null(m->cols);
	}
	if (m->distinct)
		put(&at, end, " distinct");
	for (int i = 0; i < m->n_sort; i++)
		put(&at, end, "%s%d%s%s", i ? "," : " sort=", m->sort[i].col,
		    m->sort[i].desc ? "d" : "a", m->sort[i].nulls_first ? "F" : "L");
	if (m->limit_param)
		put(&at, end, " limit=$%d", m->limit_param);
	else if (m->limit >= 0)
		put(&at, end, " limit=%" PRId64, m->limit);
	if (m->offset_param)
		put(&at, end, " offset=$%d", m->offset_param);
	else if (m->offset)
		put(&at, end, " offset=%" PRId64, m->offset);
	if (m->having) {
		put(&at, end, " having=");
		expr_str(&at, end, m->having);
	}
}

struct shape {
	const char *sql;
	const char *shard_sql; /* NULL: the client's text runs as it is */
	const char *spec;
};

/* clang-format off */
static const struct shape shapes[] = {
	/* nothing to merge but rows */
	{ "SELECT a, b FROM t WHERE x = 1", NULL, "n=2/2/0" },
	{ "SELECT * FROM t", NULL, "n=-1/-1/0" },
	{ "SELECT a FROM t FOR UPDATE", NULL, "n=1/1/0" },
	{ "SELECT a FROM app.s", NULL, "n=1/1/0" },
	{ "SELECT a FROM s", NULL, "n=1/1/0" },
	/* ORDER BY: position, output name, expression, hidden */
	{ "SELECT a, b FROM t ORDER BY 2 DESC, 1", NULL, "n=2/2/0 sort=1dF,0aL" },
	{ "SELECT a AS x, b FROM t ORDER BY x DESC NULLS LAST", NULL, "n=2/2/0 sort=0dL" },
	{ "SELECT a, b FROM t ORDER BY b ASC NULLS FIRST", NULL, "n=2/2/0 sort=1aF" },
	{ "SELECT lower(a), b FROM t ORDER BY lower( a )", NULL, "n=2/2/0 sort=0aL" },
	{ "SELECT a, b FROM t ORDER BY b, c DESC", "SELECT a, b, c AS pgcrab_hidden_1 FROM t ORDER BY b, c DESC",
	  "n=3/2/1 sort=1aL,2dF" },
	{ "SELECT a FROM t ORDER BY a + 1", "SELECT a, a + 1 AS pgcrab_hidden_1 FROM t ORDER BY a + 1",
	  "n=2/1/1 sort=1aL" },
	{ "SELECT * FROM t ORDER BY id", "SELECT *, id AS pgcrab_hidden_1 FROM t ORDER BY id",
	  "n=-1/-1/1 sort=-1aL" },
	{ "SELECT a, * FROM t ORDER BY a, b DESC", "SELECT a, *, b AS pgcrab_hidden_1 FROM t ORDER BY a, b DESC",
	  "n=-1/-1/1 sort=0aL,-1dF" },
	{ "SELECT *, a FROM t ORDER BY a", "SELECT *, a, a AS pgcrab_hidden_1 FROM t ORDER BY a",
	  "n=-1/-1/1 sort=-1aL" },
	/* LIMIT and OFFSET */
	{ "SELECT a FROM t ORDER BY a LIMIT 10", NULL, "n=1/1/0 sort=0aL limit=10" },
	{ "SELECT a FROM t ORDER BY a LIMIT 10 OFFSET 5", "SELECT a FROM t ORDER BY a LIMIT 15",
	  "n=1/1/0 sort=0aL limit=10 offset=5" },
	{ "SELECT a FROM t OFFSET 5", "SELECT a FROM t", "n=1/1/0 offset=5" },
	{ "SELECT a FROM t LIMIT ALL OFFSET 3", "SELECT a FROM t LIMIT ALL", "n=1/1/0 offset=3" },
	{ "SELECT a FROM t LIMIT NULL", NULL, "n=1/1/0" },
	{ "SELECT a FROM t LIMIT 3000000000 OFFSET 3", "SELECT a FROM t LIMIT 3000000003",
	  "n=1/1/0 limit=3000000000 offset=3" },
	{ "SELECT a FROM t LIMIT 9223372036854775807 OFFSET 1", "SELECT a FROM t",
	  "n=1/1/0 limit=9223372036854775807 offset=1" },
	{ "SELECT a FROM t ORDER BY a FETCH FIRST 3 ROWS ONLY", NULL, "n=1/1/0 sort=0aL limit=3" },
	{ "SELECT a FROM t ORDER BY a OFFSET 2 ROWS FETCH NEXT 3 ROWS ONLY", "SELECT a FROM t ORDER BY a LIMIT 5",
	  "n=1/1/0 sort=0aL limit=3 offset=2" },
	{ "SELECT a FROM t LIMIT '4'::bigint OFFSET 1", "SELECT a FROM t LIMIT 5", "n=1/1/0 limit=4 offset=1" },
	/* LIMIT and OFFSET as Bind parameters: the shards get n + k rows, summed
	 * so that it cannot overflow, and the merge the values at each Bind */
	{ "SELECT a FROM t ORDER BY a LIMIT $1", NULL, "n=1/1/0 sort=0aL limit=$1" },
	{ "SELECT a FROM t ORDER BY a LIMIT $1 OFFSET $2",
	  "SELECT a FROM t ORDER BY a LIMIT (LEAST($1::bigint, 9223372036854775807 - $2::bigint) + $2::bigint)",
	  "n=1/1/0 sort=0aL limit=$1 offset=$2" },
	{ "SELECT a FROM t ORDER BY a OFFSET $1 ROWS FETCH FIRST $2 ROWS ONLY",
	  "SELECT a FROM t ORDER BY a LIMIT (LEAST($2::bigint, 9223372036854775807 - $1::bigint) + $1::bigint)",
	  "n=1/1/0 sort=0aL limit=$2 offset=$1" },
	{ "SELECT a FROM t WHERE b = $1 LIMIT $3 OFFSET 5",
	  "SELECT a FROM t WHERE b = $1 LIMIT (LEAST($3::bigint, 9223372036854775802) + 5)",
	  "n=1/1/0 limit=$3 offset=5" },
	{ "SELECT a FROM t LIMIT 10 OFFSET $1",
	  "SELECT a FROM t LIMIT (LEAST(10, 9223372036854775807 - $1::bigint) + $1::bigint)",
	  "n=1/1/0 limit=10 offset=$1" },
	{ "SELECT a FROM t LIMIT 3000000000 OFFSET $1",
	  "SELECT a FROM t LIMIT (LEAST(3000000000, 9223372036854775807 - $1::bigint) + $1::bigint)",
	  "n=1/1/0 limit=3000000000 offset=$1" },
	{ "SELECT a FROM t LIMIT $1 OFFSET 0", "SELECT a FROM t LIMIT $1", "n=1/1/0 limit=$1" },
	{ "SELECT a FROM t LIMIT $1 OFFSET NULL", "SELECT a FROM t LIMIT $1", "n=1/1/0 limit=$1" },
	{ "SELECT a FROM t OFFSET $1", "SELECT a FROM t", "n=1/1/0 offset=$1" },
	{ "SELECT a FROM t LIMIT ALL OFFSET $1", "SELECT a FROM t", "n=1/1/0 offset=$1" },
	{ "SELECT a FROM t LIMIT $2::int OFFSET $1::int8",
	  "SELECT a FROM t LIMIT (LEAST($2::int::bigint, 9223372036854775807 - $1::bigint) + $1::bigint)",
	  "n=1/1/0 limit=$2 offset=$1" },
	{ "SELECT DISTINCT a FROM t ORDER BY a LIMIT $1 OFFSET $2",
	  "SELECT DISTINCT a FROM t ORDER BY a LIMIT (LEAST($1::bigint, 9223372036854775807 - $2::bigint) + $2::bigint)",
	  "n=1/1/0 distinct sort=0aL limit=$1 offset=$2" },
	{ "SELECT a, count(*) FROM t GROUP BY a ORDER BY a LIMIT $1 OFFSET $2",
	  "SELECT a, count(*) FROM t GROUP BY a ORDER BY 1", "n=2/2/0 agg[N COUNT] sort=0aL limit=$1 offset=$2" },
	{ "SELECT count(*) FROM t LIMIT $1", "SELECT count(*) FROM t", "n=1/1/0 agg[COUNT] limit=$1" },
	{ "SELECT a, count(*) FROM t GROUP BY a LIMIT 3 OFFSET $1", "SELECT a, count(*) FROM t GROUP BY a",
	  "n=2/2/0 agg[N COUNT] limit=3 offset=$1" },
	/* DISTINCT: kept by the shards, merged, LIMIT n + k pushed */
	{ "SELECT DISTINCT a, b FROM t", NULL, "n=2/2/0 distinct" },
	{ "SELECT DISTINCT a FROM t ORDER BY a LIMIT 3 OFFSET 1", "SELECT DISTINCT a FROM t ORDER BY a LIMIT 4",
	  "n=1/1/0 distinct sort=0aL limit=3 offset=1" },
	/* aggregates */
	{ "SELECT count(*) FROM t", NULL, "n=1/1/0 agg[COUNT]" },
	{ "SELECT count(x), sum(x), min(x), max(x), bool_and(f), bool_or(f), every(f) FROM t", NULL,
	  "n=7/7/0 agg[COUNT SUM MIN MAX AND OR AND]" },
	{ "SELECT avg(x) FROM t", "SELECT sum(x) AS avg, count(x) AS pgcrab_hidden_1 FROM t",
	  "n=2/1/1 agg[AVG:1 COUNT]" },
	{ "SELECT avg(x) AS mean, pg_catalog.avg(y) FROM t",
	  "SELECT sum(x) AS mean, pg_catalog.sum(y) AS avg, count(x) AS pgcrab_hidden_1, "
	  "pg_catalog.count(y) AS pgcrab_hidden_2 FROM t",
	  "n=4/2/2 agg[AVG:2 AVG:3 COUNT COUNT]" },
	{ "SELECT avg(x) FILTER (WHERE y > 0) FROM t",
	  "SELECT sum(x) FILTER (WHERE y > 0) AS avg, count(x) FILTER (WHERE y > 0) AS pgcrab_hidden_1 FROM t",
	  "n=2/1/1 agg[AVG:1 COUNT]" },
	{ "SELECT count(*) FILTER (WHERE a = 1) FROM t", NULL, "n=1/1/0 agg[COUNT]" },
	{ "SELECT count(*) FROM t LIMIT 1", "SELECT count(*) FROM t", "n=1/1/0 agg[COUNT] limit=1" },
	/* GROUP BY */
	{ "SELECT a, count(*) FROM t GROUP BY a", NULL, "n=2/2/0 agg[N COUNT]" },
	{ "SELECT a FROM t GROUP BY a", NULL, "n=1/1/0 agg[N]" },
	{ "SELECT count(*) FROM t GROUP BY a", "SELECT count(*), a AS pgcrab_hidden_1 FROM t GROUP BY a",
	  "n=2/1/1 agg[COUNT N]" },
	{ "SELECT a, sum(x) FROM t GROUP BY 1", NULL, "n=2/2/0 agg[N SUM]" },
	{ "SELECT date_trunc('day', ts) AS day, count(*) FROM t GROUP BY day ORDER BY day",
	  "SELECT date_trunc('day', ts) AS day, count(*) FROM t GROUP BY day ORDER BY 1",
	  "n=2/2/0 agg[N COUNT] sort=0aL" },
	{ "SELECT lower(a), count(*) FROM t GROUP BY lower(a)", NULL, "n=2/2/0 agg[N COUNT]" },
	{ "SELECT 'x', k + 1, count(*) FROM t GROUP BY k",
	  "SELECT 'x', k + 1, count(*), k AS pgcrab_hidden_1 FROM t GROUP BY k", "n=4/3/1 agg[N N COUNT N]" },
	{ "SELECT a, avg(b) FROM t GROUP BY a ORDER BY 2 DESC LIMIT 5 OFFSET 2",
	  "SELECT a, sum(b) AS avg, count(b) AS pgcrab_hidden_1 FROM t GROUP BY a",
	  "n=3/2/1 agg[N AVG:2 COUNT] sort=1dF limit=5 offset=2" },
	{ "SELECT a, count(*) FROM t GROUP BY a ORDER BY count(*) DESC NULLS LAST, a LIMIT 10",
	  "SELECT a, count(*) FROM t GROUP BY a",
	  "n=2/2/0 agg[N COUNT] sort=1dL,0aL limit=10" },
	{ "SELECT a FROM t GROUP BY a ORDER BY max(x)",
	  "SELECT a, max(x) AS pgcrab_hidden_1 FROM t GROUP BY a",
	  "n=2/1/1 agg[N MAX] sort=1aL" },
	{ "SELECT a FROM t GROUP BY a ORDER BY avg(x) DESC",
	  "SELECT a, sum(x) AS pgcrab_hidden_1, count(x) AS pgcrab_hidden_2 FROM t GROUP BY a",
	  "n=3/1/2 agg[N AVG:2 COUNT] sort=1dF" },
	{ "SELECT DISTINCT a, count(*) FROM t GROUP BY a, b",
	  "SELECT DISTINCT a, count(*), b AS pgcrab_hidden_1 FROM t GROUP BY a, b",
	  "n=3/2/1 agg[N COUNT N] distinct" },
	{ "SELECT DISTINCT avg(b), count(*) FROM t GROUP BY a ORDER BY avg(b) DESC, 2",
	  "SELECT DISTINCT sum(b) AS avg, count(*), count(b) AS pgcrab_hidden_1, a AS pgcrab_hidden_2 FROM t GROUP BY a",
	  "n=4/2/2 agg[AVG:2 COUNT COUNT N] distinct sort=0dF,1aL" },
	{ "SELECT b, a, count(*) FROM t GROUP BY a, b ORDER BY a DESC, b",
	  "SELECT b, a, count(*) FROM t GROUP BY a, b ORDER BY 2 DESC, 1", "n=3/3/0 agg[N N COUNT] sort=1dF,0aL" },
	/* HAVING */
	{ "SELECT count(*) FROM t HAVING count(*) > 5", "SELECT count(*) FROM t",
	  "n=1/1/0 agg[COUNT] having=($0 > '5')" },
	{ "SELECT k, sum(x) FROM t GROUP BY k, j HAVING avg(x) > 2.5 AND max(y) IS NOT NULL ORDER BY min(z)",
	  "SELECT k, sum(x), j AS pgcrab_hidden_1, min(z) AS pgcrab_hidden_2, sum(x) AS pgcrab_hidden_3, "
	  "count(x) AS pgcrab_hidden_4, max(y) AS pgcrab_hidden_5 FROM t GROUP BY k, j",
	  "n=7/2/5 agg[N SUM N MIN AVG:5 COUNT MAX] sort=3aL having=(($4 > '2.5') AND $6 IS NOT NULL)" },
	{ "SELECT k, count(*) FROM t GROUP BY k HAVING k IN (1, 2) OR NOT bool_or(f)",
	  "SELECT k, count(*), bool_or(f) AS pgcrab_hidden_1 FROM t GROUP BY k",
	  "n=3/2/1 agg[N COUNT OR] having=((($0 = '1') OR ($0 = '2')) OR NOT ($2 = 'true'))" },
	{ "SELECT k FROM t GROUP BY k HAVING k NOT IN ('a', 'b')", "SELECT k FROM t GROUP BY k",
	  "n=1/1/0 agg[N] having=(($0 <> 'a') AND ($0 <> 'b'))" },
	{ "SELECT k, count(*) FROM t GROUP BY k HAVING k + 1 > 1 AND sum(x) <> count(*)",
	  "SELECT k, count(*), k + 1 AS pgcrab_hidden_1, sum(x) AS pgcrab_hidden_2 FROM t GROUP BY k",
	  "n=4/2/2 agg[N COUNT N SUM] having=(($2 > '1') AND ($3 <> $1))" },
	{ "SELECT k FROM t GROUP BY k HAVING max(d) >= '2024-01-01'::date OR min(x) IS NULL OR min(x) = NULL",
	  "SELECT k, max(d) AS pgcrab_hidden_1, min(x) AS pgcrab_hidden_2 FROM t GROUP BY k",
	  "n=3/1/2 agg[N MAX MIN] having=(($1 >= '2024-01-01') OR $2 IS NULL OR ($2 = NULL))" },
	/* BETWEEN as PostgreSQL expands it; IS [NOT] DISTINCT FROM never NULL */
	{ "SELECT k FROM t GROUP BY k HAVING count(note) BETWEEN 10 AND 60",
	  "SELECT k, count(note) AS pgcrab_hidden_1 FROM t GROUP BY k",
	  "n=2/1/1 agg[N COUNT] having=(($1 >= '10') AND ($1 <= '60'))" },
	{ "SELECT k FROM t GROUP BY k HAVING sum(x) NOT BETWEEN 1 AND max(y)",
	  "SELECT k, sum(x) AS pgcrab_hidden_1, max(y) AS pgcrab_hidden_2 FROM t GROUP BY k",
	  "n=3/1/2 agg[N SUM MAX] having=(($1 < '1') OR ($1 > $2))" },
	{ "SELECT k FROM t GROUP BY k HAVING k BETWEEN SYMMETRIC 5 AND 1",
	  "SELECT k FROM t GROUP BY k",
	  "n=1/1/0 agg[N] having=((($0 >= '5') AND ($0 <= '1')) OR (($0 >= '1') AND ($0 <= '5')))" },
	{ "SELECT k FROM t GROUP BY k HAVING NOT k NOT BETWEEN SYMMETRIC 5 AND NULL",
	  "SELECT k FROM t GROUP BY k",
	  "n=1/1/0 agg[N] having=NOT ((($0 < '5') OR ($0 > NULL)) AND (($0 < NULL) OR ($0 > '5')))" },
	{ "SELECT k FROM t GROUP BY k HAVING min(x) IS DISTINCT FROM 3",
	  "SELECT k, min(x) AS pgcrab_hidden_1 FROM t GROUP BY k",
	  "n=2/1/1 agg[N MIN] having=(($1 IS NULL AND '3' IS NOT NULL) OR ($1 IS NOT NULL AND '3' IS NULL) "
	  "OR ($1 IS NOT NULL AND '3' IS NOT NULL AND ($1 <> '3')))" },
	{ "SELECT k, max(y) FROM t GROUP BY k HAVING max(y) IS NOT DISTINCT FROM min(x)",
	  "SELECT k, max(y), min(x) AS pgcrab_hidden_1 FROM t GROUP BY k",
	  "n=3/2/1 agg[N MAX MIN] having=NOT (($1 IS NULL AND $2 IS NOT NULL) OR ($1 IS NOT NULL AND $2 IS NULL) "
	  "OR ($1 IS NOT NULL AND $2 IS NOT NULL AND ($1 <> $2)))" },
	{ "SELECT k, count(*) FROM t GROUP BY k HAVING count(*) > 1 ORDER BY k LIMIT 2",
	  "SELECT k, count(*) FROM t GROUP BY k ORDER BY 1",
	  "n=2/2/0 agg[N COUNT] sort=0aL limit=2 having=($1 > '1')" },
	/* joins and subqueries that stay per shard */
	{ "SELECT * FROM t JOIN u ON t.id = u.id", NULL, "n=-1/-1/0" },
	{ "SELECT t.a, u.b FROM t JOIN u USING (id) WHERE t.x > 0", NULL, "n=2/2/0" },
	{ "SELECT x.a FROM t x, u y WHERE y.id = x.id AND x.a > 1", NULL, "n=1/1/0" },
	{ "SELECT * FROM m a JOIN m b ON a.tenant_id = b.tenant_id AND a.id = b.id", NULL, "n=-1/-1/0" },
	{ "SELECT * FROM t a JOIN u b ON a.id = b.id JOIN t c ON c.id = b.id", NULL, "n=-1/-1/0" },
	{ "SELECT * FROM t LEFT JOIN u ON t.id = u.id AND u.x = 1", NULL, "n=-1/-1/0" },
	{ "SELECT * FROM t LEFT JOIN ref ON ref.id = t.id", NULL, "n=-1/-1/0" },
	{ "SELECT * FROM ref JOIN t ON ref.id = t.id", NULL, "n=-1/-1/0" },
	{ "SELECT * FROM t, generate_series(1, 3) g", NULL, "n=-1/-1/0" },
	{ "SELECT count(*) FROM (SELECT * FROM t WHERE a > 1) s", NULL, "n=1/1/0 agg[COUNT]" },
	{ "SELECT a FROM t WHERE EXISTS (SELECT 1 FROM ref WHERE ref.x = t.a)", NULL, "n=1/1/0" },
	{ "SELECT (SELECT max(v) FROM ref), a FROM t", NULL, "n=2/2/0" },
	{ "WITH x AS (SELECT * FROM ref) SELECT * FROM t JOIN x USING (id)", NULL, "n=-1/-1/0" },
	{ "SELECT a FROM t WHERE id = $1 OR b = $2", NULL, "n=1/1/0" },
};

struct refusal {
	const char *sql;
	const char *sqlstate;
	const char *reason; /* a part of the message */
};

static const struct refusal refusals[] = {
	{ "SELECT count(DISTINCT a) FROM t", "0A000", "count(DISTINCT" },
	{ "SELECT sum(DISTINCT a) FROM t", "0A000", "sum(DISTINCT" },
	{ "SELECT string_agg(a, ',') FROM t", "0A000", "string_agg()" },
	{ "SELECT array_agg(a) FROM t GROUP BY b", "0A000", "array_agg()" },
	{ "SELECT stddev(a) FROM t", "0A000", "stddev()" },
	{ "SELECT percentile_cont(0.5) WITHIN GROUP (ORDER BY a) FROM t", "0A000", "percentile_cont()" },
	{ "SELECT max(a ORDER BY b) FROM t", "0A000", "ORDER BY" },
	{ "SELECT row_number() OVER () FROM t", "0A000", "window functions" },
	{ "SELECT a FROM t ORDER BY rank() OVER (ORDER BY a)", "0A000", "window functions" },
	{ "SELECT sum(x) OVER (PARTITION BY id) FROM t", "0A000", "window functions" },
	{ "SELECT a FROM t WINDOW w AS (PARTITION BY a)", "0A000", "window functions" },
	{ "SELECT sum(x) + 1 FROM t", "0A000", "aggregate inside an expression" },
	{ "SELECT coalesce(max(x), 0) FROM t", "0A000", "aggregate inside an expression" },
	{ "SELECT count(*)::int FROM t", "0A000", "aggregate inside an expression" },
	{ "SELECT a FROM t GROUP BY a ORDER BY count(*) * 2", "0A000", "aggregate inside an expression" },
	{ "SELECT upper(k), count(*) FROM t GROUP BY k", "0A000", "not a GROUP BY expression" },
	{ "SELECT now(), count(*) FROM t", "0A000", "not a GROUP BY expression" },
	{ "SELECT *, count(*) FROM t GROUP BY id", "0A000", "SELECT * with aggregates" },
	{ "SELECT a, count(*) FROM t GROUP BY ROLLUP (a)", "0A000", "ROLLUP" },
	{ "SELECT a, b, count(*) FROM t GROUP BY GROUPING SETS ((a), (b))", "0A000", "GROUPING SETS" },
	{ "SELECT a, count(*) FROM t GROUP BY CUBE (a)", "0A000", "CUBE" },
	{ "SELECT a, count(*) FROM t GROUP BY 3", "42P10", "GROUP BY position 3" },
	{ "SELECT DISTINCT ON (a) a, b FROM t", "0A000", "DISTINCT ON" },
	{ "SELECT DISTINCT a FROM t ORDER BY b", "42P10", "must appear in select list" },
	{ "SELECT a FROM t ORDER BY a USING <", "0A000", "USING" },
	{ "SELECT a FROM t ORDER BY 2", "42P10", "ORDER BY position 2" },
	{ "SELECT * FROM t ORDER BY 1", "0A000", "name the column" },
	{ "SELECT a FROM t LIMIT $1 + 1", "0A000", "LIMIT given as an expression" },
	{ "SELECT a FROM t ORDER BY a OFFSET $1::numeric", "0A000", "OFFSET given as an expression" },
	{ "SELECT a FROM t LIMIT $1::text", "0A000", "LIMIT given as an expression" },
	{ "SELECT a FROM t LIMIT 2 + 3", "0A000", "LIMIT given as an expression" },
	{ "SELECT a FROM t LIMIT $1 OFFSET -1", "2201X", "OFFSET must not be negative" },
	{ "SELECT a FROM t ORDER BY a LIMIT $1 FETCH FIRST $1 ROWS WITH TIES", "42601", "syntax error" },
	{ "SELECT a FROM t ORDER BY a FETCH FIRST $1 ROWS WITH TIES", "0A000", "WITH TIES" },
	{ "SELECT a FROM t LIMIT -1", "2201W", "LIMIT must not be negative" },
	{ "SELECT a FROM t OFFSET -1", "2201X", "OFFSET must not be negative" },
	{ "SELECT a FROM t LIMIT 2.5", "0A000", "LIMIT 2.5" },
	{ "SELECT a FROM t ORDER BY a FETCH FIRST 3 ROWS WITH TIES", "0A000", "WITH TIES" },
	{ "SELECT k FROM t GROUP BY k HAVING sum(x) / count(*) > 1", "0A000", "aggregate inside an expression" },
	{ "SELECT k FROM t GROUP BY k HAVING length(k) > 1", "0A000", "not a GROUP BY expression" },
	{ "SELECT k FROM t GROUP BY k HAVING 1 = 1", "0A000", "two constants" },
	{ "SELECT k FROM t GROUP BY k HAVING 1 BETWEEN 1 AND 2", "0A000", "two constants" },
	{ "SELECT k FROM t GROUP BY k HAVING 1 IS DISTINCT FROM 2", "0A000", "two constants" },
	{ "SELECT k FROM t GROUP BY k HAVING count(*) BETWEEN $1 AND 2", "0A000", "parameter in HAVING" },
	{ "SELECT k FROM t GROUP BY k HAVING sum(x) / 2 BETWEEN 1 AND 2", "0A000", "aggregate inside an expression" },
	{ "SELECT k FROM t GROUP BY k HAVING k LIKE 'a%'", "0A000", "HAVING across shards supports" },
	{ "SELECT k FROM t GROUP BY k HAVING count(*) > $1", "0A000", "parameter in HAVING" },
	{ "SELECT k FROM t GROUP BY k HAVING count(*) > $1::int", "0A000", "parameter in HAVING" },
	{ "SELECT a FROM t UNION SELECT a FROM u", "0A000", "UNION" },
	{ "SELECT a FROM t UNION ALL SELECT a FROM ref", "0A000", "UNION" },
	{ "SELECT a FROM t EXCEPT SELECT a FROM ref", "0A000", "EXCEPT" },
	{ "SELECT * FROM t JOIN u ON t.a = u.id", "0A000", "not joined on their full sharding key" },
	{ "SELECT * FROM t, u", "0A000", "not joined on their full sharding key" },
	{ "SELECT * FROM t JOIN u ON t.id = u.id OR t.a = 1", "0A000", "not joined" },
	{ "SELECT * FROM t a JOIN m b ON a.id = b.id", "0A000", "not joined" },
	{ "SELECT * FROM m a, m b WHERE a.tenant_id = b.tenant_id", "0A000", "not joined" },
	{ "SELECT * FROM m a, m b WHERE a.tenant_id = b.id AND a.id = b.tenant_id", "0A000", "not joined" },
	{ "SELECT * FROM t, w WHERE t.id = w.id", "0A000", "not joined" },
	{ "SELECT * FROM t a JOIN u b ON a.id = b.id JOIN t c ON c.a = b.id", "0A000", "not joined" },
	{ "SELECT * FROM ref LEFT JOIN t ON ref.id = t.id", "0A000", "outer join" },
	{ "SELECT * FROM t RIGHT JOIN ref ON ref.id = t.id", "0A000", "outer join" },
	{ "SELECT * FROM t FULL JOIN ref ON ref.id = t.id", "0A000", "outer join" },
	{ "SELECT * FROM t JOIN u ON t.id = u.id AND u.id IN (SELECT id FROM t)", "0A000", "subquery" },
	{ "SELECT a FROM t WHERE id IN (SELECT id FROM t WHERE b = 1)", "0A000", "subquery" },
	{ "SELECT a, (SELECT count(*) FROM u) FROM t", "0A000", "subquery" },
	{ "SELECT a FROM t ORDER BY (SELECT max(id) FROM u)", "0A000", "subquery" },
	{ "SELECT count(*) FROM t HAVING count(*) > (SELECT count(*) FROM u)", "0A000", "subquery" },
	{ "SELECT * FROM (SELECT a FROM t LIMIT 10) s", "0A000", "LIMIT" },
	{ "SELECT * FROM (SELECT a, count(*) FROM t GROUP BY a) s", "0A000", "GROUP BY" },
	{ "SELECT * FROM (SELECT max(a) FROM t) s", "0A000", "aggregates" },
	{ "SELECT * FROM (SELECT DISTINCT a FROM t) s", "0A000", "DISTINCT" },
	{ "SELECT * FROM (SELECT a FROM t UNION SELECT a FROM u) s", "0A000", "UNION" },
	{ "SELECT * FROM t, LATERAL (SELECT * FROM u WHERE u.id = t.id) s", "0A000", "subquery" },
	{ "SELECT * FROM t, (SELECT * FROM u) s WHERE s.id = t.id", "0A000", "subquery" },
	{ "WITH x AS (SELECT * FROM t) SELECT * FROM x", "0A000", "WITH" },
	{ "SELECT a INTO newt FROM t", "0A000", "SELECT INTO" },
	{ "SELECT 1", "0A000", "no sharded table" },
	{ "SELECT a FROM ref", "0A000", "no sharded table" },
	{ "SELECT a FROM other.s", "0A000", "no sharded table" },
	{ "SELECT 1; SELECT 2", "0A000", "only one SELECT" },
	{ "INSERT INTO t VALUES (1)", "0A000", "only one SELECT" },
	{ "SELEC 1", "42601", "syntax error" },
};
/* clang-format on */

static void test_shapes(void **state)
{
	char spec[512];

	(void)state;
	for (size_t i = 0; i < sizeof(shapes) / sizeof(shapes[0]); i++) {
		const struct shape *c = &shapes[i];
		struct router_plan *p = plan(c->sql);

		if (p->route == ROUTER_REFUSE)
			fail_msg("%s: refused: %s", c->sql, p->message);
		assert_non_null(p->merge);
		if (!c->shard_sql != !p->shard_sql
		    || (c->shard_sql && strcmp(c->shard_sql, p->shard_sql) != 0))
			fail_msg("%s:\n  shard sql %s\n  expected  %s", c->sql,
				 p->shard_sql ? p->shard_sql : "(as sent)",
				 c->shard_sql ? c->shard_sql : "(as sent)");
		spec_str(p->merge, spec, sizeof(spec));
		if (strcmp(spec, c->spec) != 0)
			fail_msg("%s:\n  spec     %s\n  expected %s", c->sql, spec, c->spec);
		router_plan_free(p);
	}
}

static void test_refusals(void **state)
{
	(void)state;
	for (size_t i = 0; i < sizeof(refusals) / sizeof(refusals[0]); i++) {
		const struct refusal *c = &refusals[i];
		struct router_plan *p = plan(c->sql);

		if (p->route != ROUTER_REFUSE)
			fail_msg("%s: not refused", c->sql);
		assert_null(p->merge);
		assert_null(p->shard_sql);
		assert_non_null(p->message);
		if (strcmp(p->sqlstate, c->sqlstate) != 0 || !strstr(p->message, c->reason))
			fail_msg("%s:\n  got      %s %s\n  expected %s ...%s...", c->sql,
				 p->sqlstate, p->message, c->sqlstate, c->reason);
		router_plan_free(p);
	}
}

/* The statement text need not end with a NUL: a Parse's query is a slice. */
static void test_slice(void **state)
{
	const char buf[] = "SELECT a FROM t ORDER BY a LIMIT 1 OFFSET 1garbage";
	struct router_plan *p = calloc(1, sizeof(*p));

	(void)state;
	assert_int_equal(router_select_merge(&schema, buf, strlen(buf) - strlen("garbage"), p), 0);
	assert_int_equal(p->route, 0);
	assert_string_equal(p->shard_sql, "SELECT a FROM t ORDER BY a LIMIT 2");
	router_plan_free(p);
}

/* ---- the merge of what was planned: HAVING's NULL semantics, Bind limits ------- */

static size_t put16(uint8_t *b, size_t at, int v)
{
	b[at] = (uint8_t)(v >> 8);
	b[at + 1] = (uint8_t)v;
	return at + 2;
}

static size_t put32(uint8_t *b, size_t at, int32_t v)
{
	for (int i = 0; i < 4; i++)
		b[at + (size_t)i] = (uint8_t)((uint32_t)v >> (24 - 8 * i));
	return at + 4;
}

/* Groups of int4 columns (NULL: no value) through a one-shard merge of the
 * plan for sql; the first column of each group kept, in order, as text. */
static void merged_keys(const char *sql, int n_cols, int n_rows, const char *const *cells,
			char *out, size_t size)
{
	struct router_plan *p = plan(sql);
	struct router_merger *m;
	uint8_t b[1024], msgs[4096];
	char st[6], err[256];
	size_t at = 0;
	long got;

	if (p->route == ROUTER_REFUSE)
		fail_msg("%s: refused: %s", sql, p->message);
	assert_int_equal(p->merge->n_cols, n_cols);
	m = router_merger_new(p->merge, 1);
	assert_non_null(m);
	at = put16(b, 0, n_cols);
	for (int c = 0; c < n_cols; c++) {
		b[at++] = (uint8_t)('a' + c);
		b[at++] = 0;
		at = put32(b, at, 0);
		at = put16(b, at, 0);
		at = put32(b, at, 23); /* int4 */
		at = put16(b, at, 4);
		at = put32(b, at, -1);
		at = put16(b, at, 0);
	}
	assert_int_equal(router_merger_feed(m, 0, 'T', b, (uint32_t)at, st, err, sizeof(err)), 0);
	for (int r = 0; r < n_rows; r++) {
		at = put16(b, 0, n_cols);
		for (int c = 0; c < n_cols; c++) {
			const char *v = cells[r * n_cols + c];
			at = put32(b, at, v ? (int32_t)strlen(v) : -1);
			if (v) {
				memcpy(b + at, v, strlen(v));
				at += strlen(v);
			}
		}
		assert_int_equal(router_merger_feed(m, 0, 'D', b, (uint32_t)at, st, err,
						    sizeof(err)),
				 0);
	}
	assert_int_equal(router_merger_feed(m, 0, 'C', (const uint8_t *)"SELECT 1", 9, st, err,
					    sizeof(err)),
			 0);
	out[0] = '\0';
	while ((got = router_merger_emit(m, msgs, sizeof(msgs))) > 0) {
		for (size_t k = 0; k < (size_t)got;) {
			uint32_t len = (uint32_t)msgs[k + 1] << 24 | (uint32_t)msgs[k + 2] << 16
				| (uint32_t)msgs[k + 3] << 8 | msgs[k + 4];
			if (msgs[k] == 'D') {
				int32_t l = (int32_t)((uint32_t)msgs[k + 7] << 24
						      | (uint32_t)msgs[k + 8] << 16
						      | (uint32_t)msgs[k + 9] << 8 | msgs[k + 10]);
				size_t n = strlen(out);
				snprintf(out + n, size - n, "%s%.*s", n ? " " : "", l < 0 ? 4 : l,
					 l < 0 ? "NULL" : (const char *)msgs + k + 11);
			}
			k += 1 + len;
		}
	}
	assert_true(router_merger_done(m));
	router_merger_free(m);
	router_plan_free(p);
}

/* What one PostgreSQL keeps (checked with psql on PostgreSQL 15, e.g.
 * SELECT k FROM (VALUES (1, NULL), (2, 3)) v(k, x) GROUP BY k HAVING
 * NOT (min(x) IS DISTINCT FROM 3)), here from the merged groups. */
static void test_having_null_semantics(void **state)
{
	/* k, x: x NULL, 3, 4, and k 4 with x NULL too */
	static const char *const kx[] = { "1", NULL, "2", "3", "3", "4", "4", NULL };
	char got[256];

	(void)state;
	merged_keys("SELECT k, min(x) FROM t GROUP BY k HAVING min(x) IS DISTINCT FROM 3 ORDER BY k",
		    2, 4, kx, got, sizeof(got));
	assert_string_equal(got, "1 3 4");
	merged_keys("SELECT k, min(x) FROM t GROUP BY k HAVING NOT min(x) IS DISTINCT FROM 3 "
		    "ORDER BY k",
		    2, 4, kx, got, sizeof(got));
	assert_string_equal(got, "2");
	merged_keys("SELECT k, min(x) FROM t GROUP BY k HAVING min(x) IS NOT DISTINCT FROM NULL "
		    "ORDER BY k",
		    2, 4, kx, got, sizeof(got));
	assert_string_equal(got, "1 4");
	merged_keys("SELECT k, min(x) FROM t GROUP BY k HAVING NOT min(x) IS NOT DISTINCT FROM NULL "
		    "ORDER BY k",
		    2, 4, kx, got, sizeof(got));
	assert_string_equal(got, "2 3");
	/* NULL under NOT stays NULL: neither BETWEEN nor its NOT keeps k 1 */
	merged_keys("SELECT k, min(x) FROM t GROUP BY k HAVING min(x) BETWEEN 3 AND 4 ORDER BY k",
		    2, 4, kx, got, sizeof(got));
	assert_string_equal(got, "2 3");
	merged_keys(
		"SELECT k, min(x) FROM t GROUP BY k HAVING NOT min(x) BETWEEN 4 AND 9 ORDER BY k",
		2, 4, kx, got, sizeof(got));
	assert_string_equal(got, "2");
	merged_keys(
		"SELECT k, min(x) FROM t GROUP BY k HAVING min(x) NOT BETWEEN 4 AND 9 ORDER BY k",
		2, 4, kx, got, sizeof(got));
	assert_string_equal(got, "2");
	merged_keys("SELECT k, min(x) FROM t GROUP BY k HAVING min(x) BETWEEN 4 AND 3 ORDER BY k",
		    2, 4, kx, got, sizeof(got));
	assert_string_equal(got, "");
	merged_keys("SELECT k, min(x) FROM t GROUP BY k HAVING min(x) BETWEEN SYMMETRIC 4 AND 3 "
		    "ORDER BY k",
		    2, 4, kx, got, sizeof(got));
	assert_string_equal(got, "2 3");
	merged_keys("SELECT k, min(x) FROM t GROUP BY k HAVING min(x) NOT BETWEEN SYMMETRIC 4 AND 3 "
		    "ORDER BY k",
		    2, 4, kx, got, sizeof(got));
	assert_string_equal(got, "");
	/* a NULL bound: 3 < 4 decides alone; for 4, 4 > NULL is NULL */
	merged_keys("SELECT k, min(x) FROM t GROUP BY k HAVING min(x) NOT BETWEEN 4 AND NULL "
		    "ORDER BY k",
		    2, 4, kx, got, sizeof(got));
	assert_string_equal(got, "2");
}

/* LIMIT / OFFSET from a Bind, as PostgreSQL reads them: text or binary of
 * any integer width, NULL = none, negative refused (OFFSET's error first). */
static void test_bind_limits(void **state)
{
	struct router_plan *p = plan("SELECT a FROM t ORDER BY a LIMIT $2 OFFSET $3");
	static const uint8_t b2[] = { 0xff, 0xfe }, b4[] = { 0, 0, 1, 0 },
			     b8[] = { 0, 0, 0, 1, 0, 0, 0, 0 }, b3[] = { 0, 0, 1 };
	const uint8_t *v[3];
	int32_t len[3];
	int16_t fmt[3] = { 0, 0, 0 };
	int64_t limit, offset;
	char err[128];

	(void)state;
#define SET(i, s, f)                                                           \
	do {                                                                   \
		v[i] = (const uint8_t *)(s);                                   \
		len[i] = (int32_t)(f ? sizeof(s) : strlen((const char *)(s))); \
		fmt[i] = f;                                                    \
	} while (0)
#define BIND(n) \
	router_merge_bind_limits(p->merge, n, v, len, fmt, &limit, &offset, err, sizeof(err))
	SET(0, "junk", 0);
	SET(1, " 10 ", 0);
	SET(2, "+5", 0);
	assert_int_equal(BIND(3), 0);
	assert_true(limit == 10 && offset == 5);
	/* NULL: no limit, no offset */
	v[1] = v[2] = NULL;
	len[1] = len[2] = -1;
	assert_int_equal(BIND(3), 0);
	assert_true(limit == -1 && offset == 0);
	SET(1, "9223372036854775807", 0);
	SET(2, "0", 0);
	assert_int_equal(BIND(3), 0);
	assert_true(limit == INT64_MAX && offset == 0);
	SET(1, b4, 1);
	SET(2, b8, 1);
	assert_int_equal(BIND(3), 0);
	assert_true(limit == 256 && offset == 4294967296LL);
	SET(1, b2, 1); /* -2 */
	assert_int_equal(BIND(3), -1);
	assert_string_equal(err, "2201W: LIMIT must not be negative");
	SET(2, "-1", 0);
	assert_int_equal(BIND(3), -1);
	assert_string_equal(err, "2201X: OFFSET must not be negative");
	SET(1, "1", 0);
	SET(2, "1.5", 0);
	assert_int_equal(BIND(3), -1);
	assert_string_equal(err, "22P02: invalid input syntax for type bigint: \"1.5\"");
	SET(2, "", 0);
	assert_int_equal(BIND(3), -1);
	SET(2, "9223372036854775808", 0);
	assert_int_equal(BIND(3), -1);
	assert_string_equal(err,
			    "22003: value \"9223372036854775808\" is out of range for type bigint");
	SET(2, "-9223372036854775808", 0);
	assert_int_equal(BIND(3), -1);
	assert_string_equal(err, "2201X: OFFSET must not be negative");
	SET(2, b3, 1);
	assert_int_equal(BIND(3), -1);
	assert_string_equal(err, "22P03: incorrect binary data format in bind parameter 3");
	SET(2, "1", 0);
	assert_int_equal(BIND(2), -1);
	assert_string_equal(err,
			    "08P01: the Bind message has 2 parameters, but the OFFSET is in $3");
	router_plan_free(p);

	/* one of them a literal: it stands; formats NULL: all text */
	p = plan("SELECT a FROM t LIMIT 7 OFFSET $1");
	SET(0, "3", 0);
	assert_int_equal(router_merge_bind_limits(p->merge, 1, v, len, NULL, &limit, &offset, err,
						  sizeof(err)),
			 0);
	assert_true(limit == 7 && offset == 3);
	router_plan_free(p);
	p = plan("SELECT a FROM t LIMIT $1 OFFSET 4");
	assert_int_equal(BIND(1), 0);
	assert_true(limit == 3 && offset == 4);
	router_plan_free(p);
	/* no parameter at all: the literals */
	p = plan("SELECT count(*) FROM t LIMIT 2 OFFSET 1");
	assert_int_equal(BIND(0), 0);
	assert_true(limit == 2 && offset == 1);
	router_plan_free(p);
#undef BIND
#undef SET
}

/* The merge with the bound values: n + k rows from each shard, k skipped,
 * n sent. */
static void test_bind_limits_merge(void **state)
{
	struct router_plan *p = plan("SELECT a FROM t ORDER BY a LIMIT $1 OFFSET $2");
	struct router_merge bound;
	static const char *const v[] = { "1", "2", "3", "4", "5" };
	const uint8_t *vals[2] = { (const uint8_t *)"2", (const uint8_t *)"1" };
	int32_t lens[2] = { 1, 1 };
	char st[6], err[128];
	uint8_t b[64], out[1024];
	size_t at;
	int n_rows = 0;
	long got;

	(void)state;
	/* unbound, it would merge without a limit: refused */
	assert_null(router_merger_new(p->merge, 2));
	bound = *p->merge;
	bound.limit_param = bound.offset_param = 0;
	assert_int_equal(router_merge_bind_limits(p->merge, 2, vals, lens, NULL, &bound.limit,
						  &bound.offset, err, sizeof(err)),
			 0);
	struct router_merger *m = router_merger_new(&bound, 2);
	assert_non_null(m);
	router_plan_free(p); /* the merger keeps its own copy */
	for (int s = 0; s < 2; s++) {
		at = put16(b, 0, 1);
		b[at++] = 'a';
		b[at++] = 0;
		at = put32(b, at, 0);
		at = put16(b, at, 0);
		at = put32(b, at, 23);
		at = put16(b, at, 4);
		at = put32(b, at, -1);
		at = put16(b, at, 0);
		assert_int_equal(router_merger_feed(m, s, 'T', b, (uint32_t)at, st, err,
						    sizeof(err)),
				 0);
		for (int r = s; r < 5; r += 2) {
			at = put16(b, 0, 1);
			at = put32(b, at, 1);
			b[at++] = (uint8_t)v[r][0];
			assert_int_equal(router_merger_feed(m, s, 'D', b, (uint32_t)at, st, err,
							    sizeof(err)),
					 0);
		}
		assert_int_equal(router_merger_feed(m, s, 'C', (const uint8_t *)"SELECT 3", 9, st,
						    err, sizeof(err)),
				 0);
	}
	char seen[16] = "";
	while ((got = router_merger_emit(m, out, sizeof(out))) > 0)
		for (size_t k = 0; k < (size_t)got;) {
			uint32_t len = (uint32_t)out[k + 3] << 8 | out[k + 4];
			if (out[k] == 'D') {
				seen[n_rows++] = (char)out[k + 11];
				seen[n_rows] = '\0';
			}
			k += 1 + len;
		}
	assert_string_equal(seen, "23");
	router_merger_free(m);
}

/* ---- random combinations, checked against the shard text ----------------------- */

static const char *const pick_targets[] = {
	"a",          "b AS bee", "count(*)", "sum(x)", "avg(x)",      "min(b)", "max(x) AS top",
	"bool_or(f)", "lower(a)", "a + 1",    "*",      "avg(y) AS m", "'k'",    "count(x)",
};
static const char *const pick_groups[] = { "a", "b", "lower(a)", "1", "a + 1", "k" };
static const char *const pick_sorts[] = {
	"a",
	"1",
	"2",
	"bee",
	"count(*)",
	"avg(x)",
	"x",
	"lower(a) DESC",
	"top NULLS FIRST",
	"c DESC",
	"max(z)",
};
static const char *const pick_having[] = {
	"count(*) > 1",    "avg(x) < 10",      "a IS NOT NULL", "sum(x) = 3 OR min(b) <> 'q'",
	"NOT bool_and(f)", "max(x) IN (1, 2)",
};

static unsigned rnd(unsigned *seed, unsigned n)
{
	*seed = *seed * 1103515245u + 12345u;
	return (*seed >> 16) % n;
}

/* The number of targets of the one SELECT in sql, and whether it has
 * HAVING and OFFSET. */
static void shard_shape(const char *sql, int *n_targets, bool *having, bool *offset, bool *star)
{
	PgQueryProtobufParseResult r = pg_query_parse_protobuf(sql);
	PgQuery__ParseResult *tree;
	PgQuery__SelectStmt *s;

	if (r.error)
		fail_msg("shard sql does not parse: %s: %s", sql, r.error->message);
	tree = pg_query__parse_result__unpack(NULL, r.parse_tree.len,
					      (const uint8_t *)r.parse_tree.data);
	pg_query_free_protobuf_parse_result(r);
	assert_non_null(tree);
	assert_int_equal(tree->n_stmts, 1);
	s = tree->stmts[0]->stmt->select_stmt;
	*n_targets = (int)s->n_target_list;
	*having = s->having_clause != NULL;
	*offset = s->limit_offset != NULL;
	*star = false;
	for (size_t i = 0; i < s->n_target_list; i++) {
		const PgQuery__Node *v = s->target_list[i]->res_target->val;
		if (v->node_case == PG_QUERY__NODE__NODE_COLUMN_REF
		    && v->column_ref->fields[v->column_ref->n_fields - 1]->node_case
			    == PG_QUERY__NODE__NODE_A_STAR)
			*star = true;
	}
	pg_query__parse_result__free_unpacked(tree, NULL);
}

static void check_expr(const struct router_expr *e, int n_cols, const char *sql)
{
	if (e->kind == ROUTER_EXPR_COL && (e->col < 0 || e->col >= n_cols))
		fail_msg("%s: HAVING column %d of %d", sql, e->col, n_cols);
	if (e->kind == ROUTER_EXPR_CMP) {
		assert_int_equal(e->n_args, 2);
		assert_false(e->args[0]->kind == ROUTER_EXPR_CONST
			     && e->args[1]->kind == ROUTER_EXPR_CONST);
	}
	for (int i = 0; i < e->n_args; i++)
		check_expr(e->args[i], n_cols, sql);
}

static void check_plan(const char *sql, int n_targets, const struct router_plan *p)
{
	const struct router_merge *m = p->merge;
	int shard_targets;
	bool having, offset, star;

	if (p->route == ROUTER_REFUSE) {
		assert_int_equal(strlen(p->sqlstate), 5);
		assert_non_null(p->message);
		assert_null(m);
		return;
	}
	assert_non_null(m);
	shard_shape(p->shard_sql ? p->shard_sql : sql, &shard_targets, &having, &offset, &star);
	if (m->having)
		assert_false(having);
	if (m->aggregate || (m->offset && m->limit >= 0) || m->limit_param || m->offset_param)
		assert_false(offset);
	assert_true(m->n_hidden >= 0);
	assert_int_equal(shard_targets, n_targets + m->n_hidden);
	if (m->n_cols < 0) {
		assert_true(star);
		assert_int_equal(m->n_visible, -1);
		assert_false(m->aggregate);
		assert_null(m->cols);
		for (int i = 0; i < m->n_sort; i++)
			assert_true(m->sort[i].col >= -m->n_hidden);
		return;
	}
	assert_false(star);
	assert_int_equal(m->n_visible, n_targets);
	assert_int_equal(m->n_cols, m->n_visible + m->n_hidden);
	for (int i = 0; i < m->n_sort; i++)
		assert_true(m->sort[i].col >= 0 && m->sort[i].col < m->n_cols);
	if (m->aggregate) {
		assert_non_null(m->cols);
		for (int i = 0; i < m->n_cols; i++) {
			int c = m->cols[i].count_col;
			if (m->cols[i].agg != ROUTER_AGG_AVG)
				continue;
			/* its count is hidden, and a count */
			assert_true(c >= m->n_visible && c < m->n_cols);
			assert_int_equal(m->cols[c].agg, ROUTER_AGG_COUNT);
		}
	}
	if (m->having)
		check_expr(m->having, m->n_cols, sql);
}

static void test_random(void **state)
{
	unsigned seed = (unsigned)time(NULL), s0;
	int planned = 0, refused = 0;
	char sql[1024];

	(void)state;
	if (getenv("SEED"))
		seed = (unsigned)strtoul(getenv("SEED"), NULL, 10);
	s0 = seed;
	for (int round = 0; round < 3000; round++) {
		char *at = sql, *end = sql + sizeof(sql);
		int n_targets = 1 + (int)rnd(&seed, 4);
		bool grouped = rnd(&seed, 2);
		struct router_plan *p;

		put(&at, end, "SELECT %s", rnd(&seed, 5) == 0 ? "DISTINCT " : "");
		for (int i = 0; i < n_targets; i++)
			put(&at, end, "%s%s", i ? ", " : "",
			    pick_targets[rnd(&seed,
					     sizeof(pick_targets) / sizeof(pick_targets[0]))]);
		put(&at, end, " FROM t WHERE x > 0");
		if (grouped) {
			int n = 1 + (int)rnd(&seed, 2);
			put(&at, end, " GROUP BY ");
			for (int i = 0; i < n; i++)
				put(&at, end, "%s%s", i ? ", " : "",
				    pick_groups[rnd(&seed,
						    sizeof(pick_groups) / sizeof(pick_groups[0]))]);
			if (rnd(&seed, 2))
				put(&at, end, " HAVING %s",
				    pick_having[rnd(&seed,
						    sizeof(pick_having) / sizeof(pick_having[0]))]);
		}
		if (rnd(&seed, 2)) {
			int n = 1 + (int)rnd(&seed, 3);
			put(&at, end, " ORDER BY ");
			for (int i = 0; i < n; i++)
				put(&at, end, "%s%s", i ? ", " : "",
				    pick_sorts[rnd(&seed,
						   sizeof(pick_sorts) / sizeof(pick_sorts[0]))]);
		}
		if (rnd(&seed, 2))
			put(&at, end, " LIMIT %u", rnd(&seed, 100));
		if (rnd(&seed, 3) == 0)
			put(&at, end, " OFFSET %u", rnd(&seed, 100));
		p = plan(sql);
		check_plan(sql, n_targets, p);
		if (p->route == ROUTER_REFUSE)
			refused++;
		else
			planned++;
		router_plan_free(p);
	}
	printf("random: seed %u, %d planned, %d refused\n", s0, planned, refused);
	assert_true(planned > 500);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_shapes),      cmocka_unit_test(test_refusals),
		cmocka_unit_test(test_slice),       cmocka_unit_test(test_having_null_semantics),
		cmocka_unit_test(test_bind_limits), cmocka_unit_test(test_bind_limits_merge),
		cmocka_unit_test(test_random),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
