/* query/: every classification rule, the fast path (that it is taken for
 * pgbench's statements, and that it never says "no effects" where the
 * parser says otherwise), multi-statement strings, the per-thread cache,
 * long reset lists, out of memory, and a randomized run over joined
 * statements. Prints the fast path's cost per call and the random seed. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "query/classify.h"
#include "query/internal.h"

#define S   QUERY_SETS
#define R   QUERY_RESETS
#define T   QUERY_TEMP
#define L   QUERY_LISTEN
#define A   QUERY_ADVISORY
#define P   QUERY_PREPARE
#define H   QUERY_HOLD_CURSOR
#define LD  QUERY_LOAD
#define U   QUERY_UNPIN
#define DA  QUERY_DEALLOCATE_ALL
#define DSA (QUERY_DISCARD_ALL | QUERY_DEALLOCATE_ALL | QUERY_UNPIN | QUERY_RESETS)
#define UNK QUERY_UNKNOWN

struct rule {
	const char *sql;
	unsigned effects;
	const char *resets; /* comma-separated, or "*" for reset_all */
	const char *pin_what;
	const char *sets;  /* the setting a plain SET gives a value (takes it off earlier resets) */
	const char *local; /* ...a SET LOCAL gives a value (hides an earlier reset: "~name") */
};

/* clang-format off */
static const struct rule rules[] = {
	/* settings */
	{ "SET search_path = a, b", S, NULL, NULL, "search_path", NULL },
	{ "SET SESSION work_mem TO '8MB'", S, NULL, NULL, "work_mem", NULL },
	{ "SET LOCAL work_mem = '8MB'", 0, NULL, NULL, NULL, "work_mem" },
	{ "SET work_mem TO DEFAULT", R, "work_mem", NULL, NULL, NULL },
	{ "SET SESSION work_mem = DEFAULT", R, "work_mem", NULL, NULL, NULL },
	{ "SET LOCAL work_mem TO DEFAULT", 0, NULL, NULL, NULL, "work_mem" },
	{ "RESET work_mem", R, "work_mem", NULL, NULL, NULL },
	{ "RESET \"Work_Mem\"", R, "work_mem", NULL, NULL, NULL },
	{ "RESET ALL", R, "*", NULL, NULL, NULL },
	{ "SET ROLE bob", S, NULL, NULL, "role", NULL },
	{ "SET ROLE NONE", S, NULL, NULL, "role", NULL },
	{ "RESET ROLE", R, "role", NULL, NULL, NULL },
	{ "SET SESSION AUTHORIZATION bob", S, NULL, NULL, "session_authorization", NULL },
	{ "SET SESSION AUTHORIZATION DEFAULT", R, "session_authorization", NULL, NULL, NULL },
	{ "RESET SESSION AUTHORIZATION", R, "session_authorization", NULL, NULL, NULL },
	{ "SET TIME ZONE 'UTC'", S, NULL, NULL, "timezone", NULL },
	{ "SET TIME ZONE LOCAL", R, "timezone", NULL, NULL, NULL },
	{ "RESET TIME ZONE", R, "timezone", NULL, NULL, NULL },
	{ "SET SESSION CHARACTERISTICS AS TRANSACTION ISOLATION LEVEL SERIALIZABLE", S, NULL, NULL, NULL, NULL },
	{ "SET TRANSACTION ISOLATION LEVEL SERIALIZABLE", 0, NULL, NULL, NULL, NULL },
	{ "SET NAMES 'UTF8'", S, NULL, NULL, "client_encoding", NULL },
	{ "SET my.var = 1", S, NULL, NULL, "my.var", NULL },
	{ "SET search_path FROM CURRENT", S, NULL, NULL, "search_path", NULL },
	{ "SET CONSTRAINTS ALL DEFERRED", 0, NULL, NULL, NULL, NULL },
	/* set_config anywhere */
	{ "SELECT set_config('my.v', 'x', false)", S, NULL, NULL, "my.v", NULL },
	{ "SELECT set_config('my.v', 'x', true)", 0, NULL, NULL, NULL, "my.v" },
	{ "SELECT set_config('my.v', 'x', 'on')", 0, NULL, NULL, NULL, "my.v" },
	{ "SELECT set_config('my.v', 'x', 't'::boolean)", 0, NULL, NULL, NULL, "my.v" },
	{ "SELECT set_config('my.v', 'x', 'off')", S, NULL, NULL, "my.v", NULL },
	{ "SELECT set_config('my.v', 'x', $1)", S, NULL, NULL, NULL, NULL },
	{ "SELECT set_config('my.v', 'x', NULL)", S, NULL, NULL, NULL, NULL },
	{ "SELECT set_config('my.v', 'x', 1 = 1)", S, NULL, NULL, NULL, NULL },
	{ "SELECT pg_catalog.set_config('my.v', 'x', false)", S, NULL, NULL, "my.v", NULL },
	{ "SELECT SET_CONFIG('my.v', 'x', FALSE)", S, NULL, NULL, "my.v", NULL },
	{ "SELECT U&\"s\\0065t_config\"('my.v', 'x', false)", S, NULL, NULL, "my.v", NULL },
	{ "INSERT INTO t VALUES (1, set_config('my.v', 'x', false))", S, NULL, NULL, "my.v", NULL },
	{ "UPDATE t SET a = 1 WHERE set_config('my.v', 'x', false) IS NOT NULL", S, NULL, NULL, "my.v", NULL },
	{ "SELECT (SELECT max(v) FROM (SELECT set_config('my.v', 'x', false) v) s) + 1", S, NULL, NULL, "my.v", NULL },
	{ "WITH q AS (SELECT set_config('my.v', 'x', false)) SELECT * FROM q", S, NULL, NULL, "my.v", NULL },
	{ "COPY (SELECT set_config('my.v', 'x', false)) TO STDOUT", S, NULL, NULL, "my.v", NULL },
	{ "ALTER TABLE t ADD COLUMN c text DEFAULT set_config('my.v', 'x', false)", S, NULL, NULL, "my.v", NULL },
	{ "CREATE VIEW v AS SELECT set_config('my.v', 'x', false)", 0, NULL, NULL, NULL, NULL },
	{ "SELECT 'set_config(''my.v'', ''x'', false)'", 0, NULL, NULL, NULL, NULL },
	{ "SELECT $$set_config('my.v', 'x', false)$$", 0, NULL, NULL, NULL, NULL },
	/* temporary objects */
	{ "CREATE TEMP TABLE t (a int)", T, NULL, "CREATE TEMPORARY TABLE", NULL, NULL },
	{ "create temporary table t (a int)", T, NULL, "CREATE TEMPORARY TABLE", NULL, NULL },
	{ "CREATE TEMP TABLE t (a int) ON COMMIT DROP", 0, NULL, NULL, NULL, NULL },
	{ "CREATE TABLE pg_temp.t (a int)", T, NULL, "CREATE TEMPORARY TABLE", NULL, NULL },
	{ "CREATE TABLE t (a int)", 0, NULL, NULL, NULL, NULL },
	{ "CREATE TEMP VIEW v AS SELECT 1", T, NULL, "CREATE TEMPORARY VIEW", NULL, NULL },
	{ "CREATE TEMP SEQUENCE s", T, NULL, "CREATE TEMPORARY SEQUENCE", NULL, NULL },
	{ "CREATE TEMP TABLE t AS SELECT 1 AS a", T, NULL, "CREATE TEMPORARY TABLE AS", NULL, NULL },
	{ "CREATE TABLE t AS SELECT 1 AS a", 0, NULL, NULL, NULL, NULL },
	{ "SELECT 1 AS a INTO TEMP t", T, NULL, "SELECT INTO TEMPORARY", NULL, NULL },
	{ "SELECT 1 AS a INTO TEMPORARY TABLE t", T, NULL, "SELECT INTO TEMPORARY", NULL, NULL },
	{ "SELECT 1 AS a INTO pg_temp.t", T, NULL, "SELECT INTO TEMPORARY", NULL, NULL },
	{ "SELECT 1 AS a INTO t", 0, NULL, NULL, NULL, NULL },
	{ "SELECT temperature FROM weather", 0, NULL, NULL, NULL, NULL },
	{ "CREATE FUNCTION pg_temp.f() RETURNS int LANGUAGE sql AS 'SELECT 1'", T, NULL, "CREATE FUNCTION pg_temp", NULL, NULL },
	{ "CREATE FUNCTION f() RETURNS text LANGUAGE sql AS $$SELECT set_config('my.v', 'x', false)$$", 0, NULL, NULL, NULL, NULL },
	{ "CREATE TYPE pg_temp.e AS ENUM ('a')", T, NULL, "CREATE TYPE pg_temp", NULL, NULL },
	/* LISTEN, advisory locks */
	{ "LISTEN ch", L, NULL, "LISTEN", NULL, NULL },
	{ "UNLISTEN ch", U, NULL, NULL, NULL, NULL },
	{ "UNLISTEN *", U, NULL, NULL, NULL, NULL },
	{ "NOTIFY ch, 'x'", 0, NULL, NULL, NULL, NULL },
	{ "SELECT pg_advisory_lock(1)", A, NULL, "pg_advisory_lock()", NULL, NULL },
	{ "SELECT pg_advisory_lock_shared(1, 2)", A, NULL, "pg_advisory_lock_shared()", NULL, NULL },
	{ "SELECT pg_try_advisory_lock(1)", A, NULL, "pg_try_advisory_lock()", NULL, NULL },
	{ "SELECT pg_try_advisory_lock_shared(1)", A, NULL, "pg_try_advisory_lock_shared()", NULL, NULL },
	{ "select PG_ADVISORY_LOCK(1)", A, NULL, "pg_advisory_lock()", NULL, NULL },
	{ "SELECT U&\"pg_\\0061dvisory_lock\"(1)", A, NULL, "pg_advisory_lock()", NULL, NULL },
	{ "SELECT x FROM t WHERE pg_try_advisory_lock(t.id)", A, NULL, "pg_try_advisory_lock()", NULL, NULL },
	{ "SELECT pg_advisory_xact_lock(1)", 0, NULL, NULL, NULL, NULL },
	{ "SELECT pg_try_advisory_xact_lock_shared(1)", 0, NULL, NULL, NULL, NULL },
	{ "SELECT pg_advisory_unlock(1)", U, NULL, NULL, NULL, NULL },
	{ "SELECT pg_advisory_unlock_shared(1)", U, NULL, NULL, NULL, NULL },
	{ "SELECT pg_advisory_unlock_all()", U, NULL, NULL, NULL, NULL },
	/* prepared statements, cursors, LOAD, DISCARD, DROP */
	{ "PREPARE p AS SELECT 1", P, NULL, "PREPARE", NULL, NULL },
	{ "PREPARE p(int) AS SELECT set_config('my.v', 'x', false)", P, NULL, "PREPARE", NULL, NULL },
	{ "PREPARE TRANSACTION 'x'", 0, NULL, NULL, NULL, NULL },
	{ "EXECUTE p(1)", 0, NULL, NULL, NULL, NULL },
	{ "DEALLOCATE p", U, NULL, NULL, NULL, NULL },
	{ "DEALLOCATE PREPARE p", U, NULL, NULL, NULL, NULL },
	{ "DEALLOCATE ALL", U | DA, NULL, NULL, NULL, NULL },
	{ "DECLARE c CURSOR WITH HOLD FOR SELECT 1", H, NULL, "DECLARE ... WITH HOLD", NULL, NULL },
	{ "DECLARE c BINARY SCROLL CURSOR WITH HOLD FOR SELECT 1", H, NULL, "DECLARE ... WITH HOLD", NULL, NULL },
	{ "DECLARE c CURSOR FOR SELECT 1", 0, NULL, NULL, NULL, NULL },
	{ "DECLARE c CURSOR WITHOUT HOLD FOR SELECT 1", 0, NULL, NULL, NULL, NULL },
	{ "CLOSE c", U, NULL, NULL, NULL, NULL },
	{ "CLOSE ALL", U, NULL, NULL, NULL, NULL },
	{ "LOAD 'auto_explain'", LD, NULL, "LOAD", NULL, NULL },
	{ "DISCARD ALL", DSA, "*", NULL, NULL, NULL },
	{ "DISCARD TEMP", U, NULL, NULL, NULL, NULL },
	{ "DISCARD TEMPORARY", U, NULL, NULL, NULL, NULL },
	{ "DISCARD PLANS", 0, NULL, NULL, NULL, NULL },
	{ "DISCARD SEQUENCES", 0, NULL, NULL, NULL, NULL },
	{ "DROP TABLE t", U, NULL, NULL, NULL, NULL },
	{ "DROP FUNCTION pg_temp.f()", U, NULL, NULL, NULL, NULL },
	{ "DROP OWNED BY bob", U, NULL, NULL, NULL, NULL },
	/* opaque */
	{ "DO $$BEGIN PERFORM set_config('my.v', 'x', false); END$$", UNK, NULL, NULL, NULL, NULL },
	{ "CALL p()", UNK, NULL, NULL, NULL, NULL },
	{ "CALL p(pg_advisory_lock(1))", UNK | A, NULL, "pg_advisory_lock()", NULL, NULL },
	/* EXPLAIN runs its statement only with ANALYZE */
	{ "EXPLAIN SELECT set_config('my.v', 'x', false)", 0, NULL, NULL, NULL, NULL },
	{ "EXPLAIN ANALYZE SELECT set_config('my.v', 'x', false)", S, NULL, NULL, "my.v", NULL },
	{ "EXPLAIN (ANALYZE, BUFFERS) SELECT pg_advisory_lock(1)", A, NULL, "pg_advisory_lock()", NULL, NULL },
	{ "EXPLAIN (ANALYZE off) SELECT pg_advisory_lock(1)", 0, NULL, NULL, NULL, NULL },
	{ "EXPLAIN ANALYZE CREATE TEMP TABLE t AS SELECT 1", T, NULL, "CREATE TEMPORARY TABLE AS", NULL, NULL },
	{ "CREATE STATISTICS pg_temp.s ON a, b FROM t", T, NULL, "CREATE STATISTICS pg_temp", NULL, NULL },
	{ "CREATE STATISTICS s ON a, b FROM t", 0, NULL, NULL, NULL, NULL },
	/* nothing */
	{ "SELECT 1", 0, NULL, NULL, NULL, NULL },
	{ "SELECT abalance FROM pgbench_accounts WHERE aid = $1;", 0, NULL, NULL, NULL, NULL },
	{ "UPDATE pgbench_accounts SET abalance = abalance + $1 WHERE aid = $2", 0, NULL, NULL, NULL, NULL },
	{ "(SELECT 1) UNION (SELECT 2)", 0, NULL, NULL, NULL, NULL },
	{ "BEGIN ISOLATION LEVEL REPEATABLE READ", 0, NULL, NULL, NULL, NULL },
	{ "COMMIT", 0, NULL, NULL, NULL, NULL },
	{ "ROLLBACK", 0, NULL, NULL, NULL, NULL },
	{ "SAVEPOINT s", 0, NULL, NULL, NULL, NULL },
	{ "SHOW search_path", 0, NULL, NULL, NULL, NULL },
	{ "FETCH 10 FROM c", 0, NULL, NULL, NULL, NULL },
	{ "VACUUM t", 0, NULL, NULL, NULL, NULL },
	{ "SELECT '; LISTEN x'", 0, NULL, NULL, NULL, NULL },
	{ "SELECT $q$; LISTEN x;$q$", 0, NULL, NULL, NULL, NULL },
	{ "SELECT 1 /* ; LISTEN x */", 0, NULL, NULL, NULL, NULL },
	{ "SELECT '; --', 2", 0, NULL, NULL, NULL, NULL },
	{ "SELECT \";\" FROM t", 0, NULL, NULL, NULL, NULL },
	{ "", 0, NULL, NULL, NULL, NULL },
	{ "  -- nothing\n /* at /* all */ */ ", 0, NULL, NULL, NULL, NULL },
	/* the server rejects these whole */
	{ "SELEC 1", 0, NULL, NULL, NULL, NULL },
	{ "LISTEN", 0, NULL, NULL, NULL, NULL },
	{ "SELECT 1; LISTEN ch; SELEC 2", 0, NULL, NULL, NULL, NULL },
	{ "SELECT 1 /* unterminated", 0, NULL, NULL, NULL, NULL },
};
/* clang-format on */

#define N_RULES (sizeof(rules) / sizeof(rules[0]))

/* The test's own merge of expected answers, kept apart from
 * query_class_merge so that the code is not checked against itself. */
static int expect_find(const struct query_class *c, const char *name)
{
	for (int i = 0; i < c->n_reset; i++)
		if (strcmp(c->reset_names[i], name) == 0)
			return i;
	return -1;
}

static void expect_drop(struct query_class *c, const char *name)
{
	int i = expect_find(c, name);
	if (i >= 0)
		memmove(c->reset_names[i], c->reset_names[--c->n_reset], QUERY_NAME_MAX);
}

static bool expect_tagged(const char *n)
{
	return n[0] == '!' || n[0] == '=' || n[0] == '+' || n[0] == '~';
}

static void expect_tag(struct query_class *c, char tag, const char *name)
{
	char e[QUERY_NAME_MAX];
	snprintf(e, sizeof(e), "%c%s", tag, name);
	if (expect_find(c, e) < 0 && c->n_reset < QUERY_RESET_NAMES_MAX)
		snprintf(c->reset_names[c->n_reset++], QUERY_NAME_MAX, "%s", e);
}

/* The classifier's answer for a string, statement by statement: a SET
 * after a RESET of the same name keeps its value (off the list, or after
 * a RESET ALL as "!name"), every name a SET gives a value is "=name"
 * until a later RESET, a custom (dotted) one also "+name", and a RESET ALL
 * covers all before it but "+" names. */
static void expect_add(struct query_class *c, const struct rule *r)
{
	if (r->local)
		expect_tag(c, '~', r->local);
	if (r->sets) {
		char e[QUERY_NAME_MAX];
		snprintf(e, sizeof(e), "~%s", r->sets);
		expect_drop(c, e);
		if (c->reset_all) {
			expect_tag(c, '!', r->sets);
		} else {
			expect_drop(c, r->sets);
			bool plain = false;
			for (int i = 0; i < c->n_reset; i++)
				plain |= !expect_tagged(c->reset_names[i]);
			if (!plain)
				c->effects &= ~(unsigned)QUERY_RESETS;
		}
		expect_tag(c, '=', r->sets);
		if (strchr(r->sets, '.'))
			expect_tag(c, '+', r->sets);
	}
	if (r->resets && strcmp(r->resets, "*") == 0) {
		int keep = 0;
		for (int i = 0; i < c->n_reset; i++)
			if (c->reset_names[i][0] == '+')
				memmove(c->reset_names[keep++], c->reset_names[i], QUERY_NAME_MAX);
		c->n_reset = keep;
	}
	c->effects |= r->effects;
	if ((r->effects & QUERY_PINS) && !c->pin_what)
		c->pin_what = r->pin_what;
	if (!r->resets)
		return;
	if (strcmp(r->resets, "*") == 0) {
		c->reset_all = true;
		return;
	}
	char names[256];
	snprintf(names, sizeof(names), "%s", r->resets);
	for (char *save, *n = strtok_r(names, ",", &save); n; n = strtok_r(NULL, ",", &save)) {
		char e[QUERY_NAME_MAX];
		snprintf(e, sizeof(e), "=%s", n);
		expect_drop(c, e);
		snprintf(e, sizeof(e), "~%s", n);
		expect_drop(c, e);
		if (c->reset_all) {
			snprintf(e, sizeof(e), "!%s", n);
			expect_drop(c, e);
			continue;
		}
		if (expect_find(c, n) >= 0)
			continue;
		if (c->n_reset == QUERY_RESET_NAMES_MAX)
			c->reset_all = true;
		else
			snprintf(c->reset_names[c->n_reset++], QUERY_NAME_MAX, "%s", n);
	}
}

static void assert_class(const char *sql, const struct query_class *got,
			 const struct query_class *want)
{
	bool same = got->effects == want->effects && got->reset_all == want->reset_all;
	if (same && !want->reset_all) {
		/* the list is a set: order does not count */
		same = got->n_reset == want->n_reset;
		for (int i = 0; same && i < want->n_reset; i++) {
			same = false;
			for (int k = 0; k < got->n_reset && !same; k++)
				same = strcmp(got->reset_names[k], want->reset_names[i]) == 0;
		}
	}
	if (same)
		same = (!got->pin_what && !want->pin_what)
			|| (got->pin_what && want->pin_what
			    && strcmp(got->pin_what, want->pin_what) == 0);
	if (!same) {
		fprintf(stderr, "sql: %s\n got effects %#x reset_all %d n_reset %d pin %s\n", sql,
			got->effects, got->reset_all, got->n_reset,
			got->pin_what ? got->pin_what : "-");
		fprintf(stderr, "want effects %#x reset_all %d n_reset %d pin %s\n", want->effects,
			want->reset_all, want->n_reset, want->pin_what ? want->pin_what : "-");
		fail();
	}
}

static void classify_str(const char *sql, struct query_class *out)
{
	assert_int_equal(query_classify(sql, strlen(sql), out), 0);
}

/* Every rule through query_classify, through the parser alone, and the
 * fast path's promise: it only says "no effects" where that is right. */
static void test_rules(void **state)
{
	(void)state;
	for (size_t i = 0; i < N_RULES; i++) {
		struct query_class want = { 0 }, got, parsed;
		expect_add(&want, &rules[i]);
		classify_str(rules[i].sql, &got);
		assert_class(rules[i].sql, &got, &want);
		assert_int_equal(query_tree_classify(rules[i].sql, strlen(rules[i].sql), &parsed),
				 0);
		if (rules[i].sql[0]) /* "" has no statements; both say nothing */
			assert_class(rules[i].sql, &parsed, &want);
		if (query_fast(rules[i].sql, strlen(rules[i].sql)) && want.effects != 0) {
			fprintf(stderr, "fast path said nothing for: %s\n", rules[i].sql);
			fail();
		}
	}
}

static void test_fast_path_taken(void **state)
{
	(void)state;
	static const char *const fast[] = {
		"SELECT abalance FROM pgbench_accounts WHERE aid = $1;",
		"UPDATE pgbench_accounts SET abalance = abalance + $1 WHERE aid = $2;",
		("INSERT INTO pgbench_history (tid, bid, aid, delta, mtime) "
		 "VALUES ($1, $2, $3, $4, CURRENT_TIMESTAMP);"),
		"BEGIN;",
		"END;",
		"  /* lead /* nested */ */ -- line\n\t((select 1))",
		"select 1; -- trailing comment",
		"select 1; /* trailing */  ",
		"Select 1",
		"WITH a AS (SELECT 1) SELECT * FROM a",
		"EXPLAIN SELECT 1",
		"",
	};
	static const char *const slow[] = {
		"SET x = 1",
		"SELECT 1; SELECT 2",
		"SELECT 1;;",
		"SELECT ';' || 'x'",
		"SELECT set_config('a.b', 'c', true)",
		"SELECT pg_advisory_xact_lock(1)",
		"SELECT 1 INTO TEMP t",
		"SELECT temperature FROM w",
		"SELECT U&\"x\" FROM t",
		"SELECT1",
		"SELECT_x",
		"/* unterminated SELECT 1",
		"LISTEN x",
		"selectx 1",
		"(",
	};
	for (size_t i = 0; i < sizeof(fast) / sizeof(fast[0]); i++)
		if (!query_fast(fast[i], strlen(fast[i]))) {
			fprintf(stderr, "not fast: %s\n", fast[i]);
			fail();
		}
	for (size_t i = 0; i < sizeof(slow) / sizeof(slow[0]); i++)
		if (query_fast(slow[i], strlen(slow[i]))) {
			fprintf(stderr, "fast: %s\n", slow[i]);
			fail();
		}
	/* and query_classify counts it as such */
	struct query_stats before, after;
	struct query_class c;
	query_stats(&before);
	classify_str(fast[0], &c);
	query_stats(&after);
	assert_int_equal(after.fast, before.fast + 1);
	assert_int_equal(after.parsed, before.parsed);
	assert_int_equal(after.cached, before.cached);
	assert_int_equal(c.effects, 0);
}

/* The text need not end with a NUL: a Parse's query sits in a buffer. */
static void test_not_nul_terminated(void **state)
{
	(void)state;
	const char buf[] = "LISTEN abcSELECT 1";
	struct query_class c;
	assert_int_equal(query_classify(buf, 10, &c), 0);
	assert_int_equal(c.effects, L);
	assert_int_equal(query_classify(buf + 10, 8, &c), 0);
	assert_int_equal(c.effects, 0);
}

static void test_multi_statement(void **state)
{
	(void)state;
	struct query_class c;

	classify_str("BEGIN; SET LOCAL a.b = 1; LISTEN a; PREPARE p AS SELECT 1; COMMIT", &c);
	assert_int_equal(c.effects, L | P);
	assert_string_equal(c.pin_what, "LISTEN");

	classify_str("RESET a; SET b.c TO DEFAULT; RESET A; SELECT pg_advisory_lock(1); "
		     "DECLARE c CURSOR WITH HOLD FOR SELECT 1",
		     &c);
	assert_int_equal(c.effects, R | A | H);
	assert_false(c.reset_all);
	assert_int_equal(c.n_reset, 2);
	assert_string_equal(c.reset_names[0], "a");
	assert_string_equal(c.reset_names[1], "b.c");
	assert_string_equal(c.pin_what, "pg_advisory_lock()");

	/* a ';' in a literal does not split; one after it does */
	classify_str("SELECT ';'; LISTEN x", &c);
	assert_int_equal(c.effects, L);
	classify_str("SELECT $$;$$ ; /* ; */ -- ;\n UNLISTEN x;", &c);
	assert_int_equal(c.effects, U);
	classify_str("SELECT '; --' ; LISTEN x", &c);
	assert_int_equal(c.effects, L);
	classify_str("/* LISTEN x; */ SELECT 1; -- LISTEN y\n", &c);
	assert_int_equal(c.effects, 0);
	classify_str("select 1; discard all; set a.b = 1", &c);
	assert_int_equal(c.effects, DSA | S);
	assert_true(c.reset_all);
}

static void test_case_insensitive(void **state)
{
	(void)state;
	struct query_class c;
	classify_str("listen X", &c);
	assert_int_equal(c.effects, L);
	classify_str("LiStEn X", &c);
	assert_int_equal(c.effects, L);
	classify_str("sElEcT Set_Config('a.b', 'c', FaLsE)", &c);
	assert_int_equal(c.effects, S);
	classify_str("select 1 into Temporary t", &c);
	assert_int_equal(c.effects, T);
	classify_str("ReSeT TimeZone", &c);
	assert_int_equal(c.effects, R);
	assert_string_equal(c.reset_names[0], "timezone");
	classify_str("dIsCaRd AlL", &c);
	assert_int_equal(c.effects, DSA);
}

static void test_cache(void **state)
{
	(void)state;
	struct query_stats s0, s1;
	struct query_class c;

	query_thread_exit(); /* start empty */
	query_stats(&s0);
	classify_str("SET my.cache = 1; RESET my.other", &c);
	classify_str("SET my.cache = 1; RESET my.other", &c);
	assert_int_equal(c.effects, S | R);
	/* given a value (and custom: asked for by name), then one reset */
	assert_int_equal(c.n_reset, 3);
	assert_string_equal(c.reset_names[0], "=my.cache");
	assert_string_equal(c.reset_names[1], "+my.cache");
	assert_string_equal(c.reset_names[2], "my.other");
	classify_str("SET my.cache = 2; RESET my.other", &c); /* another text */
	classify_str("LISTEN ch", &c);
	classify_str("LISTEN ch", &c);
	assert_int_equal(c.effects, L);
	assert_string_equal(c.pin_what, "LISTEN");
	query_stats(&s1);
	assert_int_equal(s1.parsed - s0.parsed, 3);
	assert_int_equal(s1.cached - s0.cached, 2);
	assert_int_equal(s1.fast - s0.fast, 0);

	/* a prefix of a cached text is another text */
	assert_int_equal(query_classify("LISTEN ch", 8, &c), 0);
	query_stats(&s0);
	assert_int_equal(s0.cached, s1.cached);
	assert_int_equal(s0.parsed, s1.parsed + 1);
	query_stats(&s1);

	/* texts over the limit are parsed every time */
	size_t big = QUERY_CACHE_TEXT_MAX + 100;
	char *sql = malloc(big + 1);
	assert_non_null(sql);
	memset(sql, ' ', big);
	memcpy(sql, "LISTEN x", 8);
	sql[big] = '\0';
	query_stats(&s0);
	classify_str(sql, &c);
	classify_str(sql, &c);
	assert_int_equal(c.effects, L);
	query_stats(&s1);
	assert_int_equal(s1.parsed - s0.parsed, 2);
	assert_int_equal(s1.cached, s0.cached);
	free(sql);

	/* far more texts than slots: still right, memory stays bounded */
	for (int i = 0; i < 3 * QUERY_CACHE_SLOTS; i++) {
		char q[64];
		snprintf(q, sizeof(q), "RESET my.v%d", i);
		classify_str(q, &c);
		assert_int_equal(c.effects, R);
		snprintf(q, sizeof(q), "my.v%d", i);
		assert_string_equal(c.reset_names[0], q);
	}
	query_thread_exit();
	classify_str("RESET my.v1", &c); /* usable again after */
	assert_int_equal(c.effects, R);
	query_thread_exit();
}

static void test_reset_overflow(void **state)
{
	(void)state;
	struct query_class c;
	char sql[1024] = "";

	/* eight names fit (a duplicate counts once) */
	for (int i = 0; i < QUERY_RESET_NAMES_MAX; i++)
		snprintf(sql + strlen(sql), sizeof(sql) - strlen(sql), "RESET my.n%d; ", i);
	strcat(sql, "RESET my.n0");
	classify_str(sql, &c);
	assert_false(c.reset_all);
	assert_int_equal(c.n_reset, QUERY_RESET_NAMES_MAX);
	assert_string_equal(c.reset_names[7], "my.n7");
	/* the ninth makes it all */
	strcat(sql, "; RESET my.n8");
	classify_str(sql, &c);
	assert_true(c.reset_all);
	assert_int_equal(c.effects, R);
	/* as does a name too long to hold: "my." and 61 letters */
	char name[80] = "RESET my.";
	memset(name + 9, 'a', 61);
	name[70] = '\0';
	classify_str(name, &c);
	assert_true(c.reset_all);
	name[69] = '\0'; /* 63 characters fit */
	classify_str(name, &c);
	assert_false(c.reset_all);
	assert_int_equal(c.n_reset, 1);
	assert_int_equal(strlen(c.reset_names[0]), QUERY_NAME_MAX - 1);
}

/* Each of the module's own allocations fails in turn: the answer is then
 * either right or "may do anything", with nothing leaked (ASan). */
static void test_out_of_memory(void **state)
{
	(void)state;
	char sql[4096] = "SELECT greatest(0";
	struct query_class c;
	bool failed = false, passed = false;

	/* enough arguments that the tree walk's stack must grow */
	for (int i = 1; i < 300; i++)
		snprintf(sql + strlen(sql), sizeof(sql) - strlen(sql), ", %d", i);
	strcat(sql, ", length(set_config('my.v', 'x', false)))");
	for (int nth = 1; nth < 12; nth++) {
		query_thread_exit();
		query_test_fail_alloc(nth);
		int rc = query_classify(sql, strlen(sql), &c);
		query_test_fail_alloc(0);
		if (rc == -1) {
			assert_int_equal(c.effects, UNK);
			failed = true;
		} else {
			assert_int_equal(rc, 0);
			assert_int_equal(c.effects, S);
			passed = true;
		}
	}
	assert_true(failed && passed);
	query_test_fail_alloc(1);
	assert_int_equal(query_classify("LISTEN a", 8, &c), -1);
	assert_int_equal(c.effects, UNK);
	assert_null(c.pin_what);
	query_test_fail_alloc(0);
	query_thread_exit();
}

static void *thread_body(void *arg)
{
	struct query_class c;
	(void)arg;
	for (int i = 0; i < 100; i++)
		if (query_classify("LISTEN t", 8, &c) != 0 || c.effects != L)
			return "wrong";
	query_thread_exit();
	return NULL;
}

static void test_threads(void **state)
{
	(void)state;
	pthread_t th[2];
	void *res;
	for (int i = 0; i < 2; i++)
		assert_int_equal(pthread_create(&th[i], NULL, thread_body, NULL), 0);
	for (int i = 0; i < 2; i++) {
		assert_int_equal(pthread_join(th[i], &res), 0);
		assert_null(res);
	}
}

/* Random strings of statements from the rule table, joined by ';' with
 * random blanks and comments between them, against the merge of their
 * expected answers. Some are classified twice (the second from the cache). */
static void test_random_mix(void **state)
{
	(void)state;
	static const char *const glue[] = {
		" ", "\n", "\t ", " /* c; */ ", "-- c;\n", "/* a /* b */ */", ""
	};
	unsigned seed = (unsigned)time(NULL);
	const char *env = getenv("QUERY_SEED");
	if (env)
		seed = (unsigned)strtoul(env, NULL, 10);
	printf("test_random_mix: seed %u (QUERY_SEED=%u to repeat)\n", seed, seed);
	srand(seed);

	/* only rules that parse on their own and are not empty */
	size_t usable[N_RULES], n_usable = 0;
	for (size_t i = 0; i < N_RULES; i++) {
		const char *s = rules[i].sql;
		if (*s && strncmp(s, "SELEC ", 6) != 0 && strcmp(s, "LISTEN") != 0
		    && !strstr(s, "SELEC 2") && !strstr(s, "unterminated")
		    && !strstr(s, "-- nothing"))
			usable[n_usable++] = i;
	}
	for (int round = 0; round < 5000; round++) {
		char sql[8192] = "";
		struct query_class want = { 0 }, got;
		int n = 1 + rand() % 6;
		for (int k = 0; k < n; k++) {
			const struct rule *r = &rules[usable[(size_t)rand() % n_usable]];
			size_t used = strlen(sql);
			snprintf(sql + used, sizeof(sql) - used, "%s%s%s%s", k ? ";" : "",
				 glue[rand() % 7], r->sql, glue[rand() % 7]);
			expect_add(&want, r);
		}
		if (rand() % 2)
			strcat(sql, ";");
		if (rand() % 3 == 0)
			strcat(sql, " -- end");
		classify_str(sql, &got);
		assert_class(sql, &got, &want);
		if (rand() % 4 == 0) {
			classify_str(sql, &got);
			assert_class(sql, &got, &want);
		}
	}
	query_thread_exit();
}

/* The fast path's promise on texts built to confuse it: quotes, dollar
 * quotes, comment starts and semicolons in every order around statements
 * with effects. Whenever it says "no effects", the parser must agree. */
static void test_fast_never_wrong(void **state)
{
	(void)state;
	static const char *const bits[] = {
		"SELECT 1",
		"select x",
		"LISTEN ch",
		"RESET a",
		"DISCARD ALL",
		";",
		"'",
		"\"",
		"$$",
		"$q$",
		"--",
		"\n",
		"/*",
		"*/",
		" ",
		"(",
		")",
		",",
		"set_config('a.b', 'c', false)",
		"pg_advisory_lock(1)",
		"INTO TEMP t",
		"E'\\''",
		"U&\"\\0061\"",
		"WITH q AS",
		"EXPLAIN ANALYZE",
		"FROM t",
	};
	const size_t n_bits = sizeof(bits) / sizeof(bits[0]);
	unsigned seed = (unsigned)time(NULL) ^ 0x5eedu, fast = 0;
	const char *env = getenv("QUERY_SEED");
	if (env)
		seed = (unsigned)strtoul(env, NULL, 10);
	printf("test_fast_never_wrong: seed %u (QUERY_SEED=%u to repeat)\n", seed, seed);
	srand(seed);
	for (int round = 0; round < 5000; round++) {
		char sql[1024];
		size_t used = 0;
		int n = 1 + rand() % 10;
		/* mostly start with a harmless keyword, or the fast path is moot */
		used += (size_t)snprintf(sql, sizeof(sql), "%s", rand() % 4 ? "SELECT " : "");
		for (int k = 0; k < n; k++)
			used += (size_t)snprintf(sql + used, sizeof(sql) - used, "%s%s",
						 bits[(size_t)rand() % n_bits],
						 rand() % 2 ? " " : "");
		if (!query_fast(sql, used))
			continue;
		fast++;
		struct query_class c;
		assert_int_equal(query_tree_classify(sql, used, &c), 0);
		if (c.effects != 0) {
			fprintf(stderr, "fast path said nothing for: %s (parser: %#x)\n", sql,
				c.effects);
			fail();
		}
	}
	printf("test_fast_never_wrong: %u of 5000 took the fast path\n", fast);
}

static double now_ns(clockid_t clock)
{
	struct timespec ts;
	clock_gettime(clock, &ts);
	return ts.tv_sec * 1e9 + ts.tv_nsec;
}

/* Prints what a call costs, in the thread's CPU time (the machine may be
 * shared) and in wall time; asserts only the answers. */
static void test_speed(void **state)
{
	(void)state;
	static const struct {
		const char *name, *sql;
		int rounds;
		unsigned effects;
	} cases[] = {
		{ "fast (pgbench -S)", "SELECT abalance FROM pgbench_accounts WHERE aid = $1;",
		  2000000, 0 },
		{ "fast (pgbench update)",
		  "UPDATE pgbench_accounts SET abalance = abalance + $1 WHERE aid = $2;", 2000000,
		  0 },
		{ "cached (SET)", "SET application_name = 'crab'", 500000, S },
		{ "parsed (>8 kB, no cache)", NULL, 2000, S },
	};
	char *big = malloc(QUERY_CACHE_TEXT_MAX + 64);
	assert_non_null(big);
	memset(big, ' ', QUERY_CACHE_TEXT_MAX + 63);
	memcpy(big, "SET application_name = 'crab'", 29);
	big[QUERY_CACHE_TEXT_MAX + 63] = '\0';

	for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
		const char *sql = cases[i].sql ? cases[i].sql : big;
		size_t len = strlen(sql);
		struct query_class c;
		unsigned acc = 0;
		double t0 = now_ns(CLOCK_MONOTONIC), c0 = now_ns(CLOCK_THREAD_CPUTIME_ID);
		for (int r = 0; r < cases[i].rounds; r++) {
			int rc = query_classify(sql, len, &c);
			acc |= c.effects | (unsigned)rc;
		}
		double wall = (now_ns(CLOCK_MONOTONIC) - t0) / cases[i].rounds;
		double cpu = (now_ns(CLOCK_THREAD_CPUTIME_ID) - c0) / cases[i].rounds;
		printf("query_classify %-26s %9.1f ns/call (CPU time), %9.1f ns/call (wall)\n",
		       cases[i].name, cpu, wall);
		assert_int_equal(acc, cases[i].effects);
	}
	free(big);
	query_thread_exit();
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_rules),
		cmocka_unit_test(test_fast_path_taken),
		cmocka_unit_test(test_not_nul_terminated),
		cmocka_unit_test(test_multi_statement),
		cmocka_unit_test(test_case_insensitive),
		cmocka_unit_test(test_cache),
		cmocka_unit_test(test_reset_overflow),
		cmocka_unit_test(test_out_of_memory),
		cmocka_unit_test(test_threads),
		cmocka_unit_test(test_random_mix),
		cmocka_unit_test(test_fast_never_wrong),
		cmocka_unit_test(test_speed),
	};
	int rc = cmocka_run_group_tests(tests, NULL, NULL);
	query_thread_exit();
	return rc;
}
