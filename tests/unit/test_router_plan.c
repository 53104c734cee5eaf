/* router/plan.c: a table of statements and their routes (each kind of
 * statement, each shape of key: =, IN, casts, negatives, NULL, $n,
 * multi-column keys, joins, subqueries, CTEs, schema-qualified and quoted
 * names), INSERT (one shard, split, Bind, the refusals; the split of a
 * Bind's rows is test_router_split.c's), the hints in
 * comments and in the session, strings of several statements,
 * cross_shard_* = error, router_bind_shards in text and binary, and the
 * cache. The expected shards are computed with router_key_shard, so the
 * test holds whatever the hash; the rules' shards are checked to differ
 * where a rule needs two shards. Prints the cost of a parse and of a cache
 * hit. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "router/internal.h"

static const struct router_table tables[] = {
	{ NULL, "accounts", 1, { "id" }, { ROUTER_INT8 } },
	{ NULL, "payments", 1, { "account_id" }, { ROUTER_INT8 } },
	{ NULL, "orders", 2, { "tenant_id", "id" }, { ROUTER_INT8, ROUTER_INT8 } },
	{ "app", "users", 1, { "email" }, { ROUTER_TEXT } },
	{ NULL, "Events", 1, { "key" }, { ROUTER_UUID } },
	{ NULL, "pgbench_accounts", 1, { "aid" }, { ROUTER_INT4 } },
};
static const struct router_schema schema = { 4, 6, tables, false, false };
static const struct router_schema strict = { 4, 6, tables, true, true };
static const struct router_context no_ctx = { -1, NULL };

#define UUID1 "a0eebc99-9c0b-4ef8-bb6d-6bb9bd380a11"

static int shard_of(enum router_type t, const char *v)
{
	int s = router_key_shard(1, &t, &v, schema.n_shards);
	assert_true(s >= 0);
	return s;
}

static int acc(const char *id)
{
	return shard_of(ROUTER_INT8, id);
}

static uint64_t bit(int s)
{
	return UINT64_C(1) << s;
}

/* Two account ids on different shards, and one more on a third. */
static char id_a[8] = "1", id_b[8], id_c[8];

static void find_ids(void)
{
	for (int i = 2; i < 100 && !id_b[0]; i++) {
		snprintf(id_b, sizeof(id_b), "%d", i);
		if (acc(id_b) == acc(id_a))
			id_b[0] = '\0';
	}
	for (int i = 2; i < 100 && !id_c[0]; i++) {
		snprintf(id_c, sizeof(id_c), "%d", i);
		if (acc(id_c) == acc(id_a) || acc(id_c) == acc(id_b))
			id_c[0] = '\0';
	}
	assert_true(id_b[0] && id_c[0]);
}

static struct router_plan *plan_ctx(const struct router_schema *s, const struct router_context *ctx,
				    const char *sql)
{
	struct router_plan *p = router_plan(s, ctx, sql, strlen(sql));
	assert_non_null(p);
	return p;
}

static struct router_plan *plan(const char *sql)
{
	return plan_ctx(&schema, &no_ctx, sql);
}

static const char *route_name(enum router_route r)
{
	static const char *const names[] = { "ANY",   "SHARDS", "BIND", "ALL",
					     "SPLIT", "TX",     "SET",  "REFUSE" };
	return names[r];
}

/* "%A" in a rule's text is id_a, "%B" id_b, "%C" id_c. */
static void expand(const char *in, char *out, size_t size)
{
	size_t n = 0;
	for (; *in && n + 8 < size; in++) {
		if (in[0] == '%' && (in[1] == 'A' || in[1] == 'B' || in[1] == 'C')) {
			const char *id = in[1] == 'A' ? id_a : in[1] == 'B' ? id_b : id_c;
			n += (size_t)snprintf(out + n, size - n, "%s", id);
			in++;
		} else {
			out[n++] = *in;
		}
	}
	out[n] = '\0';
}

struct rule {
	const char *sql;
	enum router_route route;
	const char *ids;   /* ROUTER_SHARDS: the accounts ids whose shards (after expand) */
	const char *flags; /* w writes, d ddl, n no_tx_block, m merge or shard_sql */
	const char *state; /* ROUTER_REFUSE: the SQLSTATE */
	const char *says;  /* ...and words of its message */
};

/* clang-format off */
static const struct rule rules[] = {
	/* no sharded table */
	{ "SELECT 1", ROUTER_ANY, NULL, "", NULL, NULL },
	{ "SELECT * FROM ref WHERE id = 1", ROUTER_ANY, NULL, "", NULL, NULL },
	{ "SELECT * FROM other.users WHERE email = 'a'", ROUTER_ANY, NULL, "", NULL, NULL },
	{ "SELECT * FROM events WHERE key = '" UUID1 "'", ROUTER_ANY, NULL, "", NULL, NULL },
	{ "SHOW work_mem", ROUTER_ANY, NULL, "", NULL, NULL },
	{ "SET work_mem = '8MB'", ROUTER_ANY, NULL, "", NULL, NULL },
	{ "RESET ALL", ROUTER_ANY, NULL, "", NULL, NULL },
	{ "", ROUTER_ANY, NULL, "", NULL, NULL },
	{ "SELEC 1", ROUTER_ANY, NULL, "", NULL, NULL },
	{ "INSERT INTO ref (a) VALUES (1)", ROUTER_ALL, NULL, "w", NULL, NULL },
	{ "UPDATE ref SET a = 1", ROUTER_ALL, NULL, "w", NULL, NULL },
	{ "DELETE FROM ref", ROUTER_ALL, NULL, "w", NULL, NULL },
	{ "WITH x AS (DELETE FROM ref RETURNING *) SELECT * FROM x", ROUTER_ALL, NULL, "w", NULL, NULL },
	{ "COPY ref FROM STDIN", ROUTER_ALL, NULL, "w", NULL, NULL },
	{ "COPY ref TO STDOUT", ROUTER_ANY, NULL, "", NULL, NULL },
	{ "DO $$ BEGIN END $$", ROUTER_ALL, NULL, "w", NULL, NULL },
	/* DDL and maintenance */
	{ "CREATE TABLE x (a int)", ROUTER_ALL, NULL, "wd", NULL, NULL },
	{ "ALTER TABLE accounts ADD COLUMN b int", ROUTER_ALL, NULL, "wd", NULL, NULL },
	{ "DROP TABLE accounts", ROUTER_ALL, NULL, "wd", NULL, NULL },
	{ "TRUNCATE accounts", ROUTER_ALL, NULL, "wd", NULL, NULL },
	{ "CREATE INDEX i ON accounts (id)", ROUTER_ALL, NULL, "wd", NULL, NULL },
	{ "COMMENT ON TABLE accounts IS 'x'", ROUTER_ALL, NULL, "wd", NULL, NULL },
	{ "GRANT SELECT ON accounts TO bob", ROUTER_ALL, NULL, "wd", NULL, NULL },
	{ "CREATE INDEX CONCURRENTLY i ON accounts (id)", ROUTER_ALL, NULL, "wdn", NULL, NULL },
	{ "DROP INDEX CONCURRENTLY i", ROUTER_ALL, NULL, "wdn", NULL, NULL },
	{ "CREATE DATABASE d", ROUTER_ALL, NULL, "wdn", NULL, NULL },
	{ "DROP DATABASE d", ROUTER_ALL, NULL, "wdn", NULL, NULL },
	{ "VACUUM accounts", ROUTER_ALL, NULL, "n", NULL, NULL },
	{ "VACUUM", ROUTER_ALL, NULL, "n", NULL, NULL },
	{ "ANALYZE accounts", ROUTER_ALL, NULL, "", NULL, NULL },
	{ "ALTER SYSTEM SET work_mem = '1MB'", ROUTER_ALL, NULL, "n", NULL, NULL },
	{ "REINDEX TABLE CONCURRENTLY accounts", ROUTER_ALL, NULL, "n", NULL, NULL },
	{ "REINDEX TABLE accounts", ROUTER_ALL, NULL, "", NULL, NULL },
	{ "SELECT * INTO newt FROM accounts WHERE id = 1", ROUTER_ALL, NULL, "wd", NULL, NULL },
	/* transaction control */
	{ "BEGIN", ROUTER_TX, NULL, "", NULL, NULL },
	{ "COMMIT AND CHAIN", ROUTER_REFUSE, NULL, "", "0A000", "AND CHAIN" },
	{ "PREPARE TRANSACTION 'x'", ROUTER_TX, NULL, "", NULL, NULL },
	/* keys */
	{ "SELECT * FROM accounts WHERE id = %A", ROUTER_SHARDS, "%A", "", NULL, NULL },
	{ "SELECT * FROM accounts WHERE %A = id", ROUTER_SHARDS, "%A", "", NULL, NULL },
	{ "SELECT * FROM accounts WHERE id = '%A'", ROUTER_SHARDS, "%A", "", NULL, NULL },
	{ "SELECT * FROM accounts WHERE id = '%A'::int8", ROUTER_SHARDS, "%A", "", NULL, NULL },
	{ "SELECT * FROM accounts WHERE id = CAST('%A' AS bigint)", ROUTER_SHARDS, "%A", "", NULL, NULL },
	{ "SELECT * FROM accounts WHERE id = -7", ROUTER_SHARDS, "-7", "", NULL, NULL },
	{ "SELECT * FROM accounts WHERE id = - 7", ROUTER_SHARDS, "-7", "", NULL, NULL },
	{ "SELECT * FROM accounts WHERE id = -(7)", ROUTER_SHARDS, "-7", "", NULL, NULL },
	{ "SELECT * FROM accounts WHERE id = 99999999999", ROUTER_SHARDS, "99999999999", "", NULL, NULL },
	{ "SELECT * FROM accounts WHERE id = -99999999999", ROUTER_SHARDS, "-99999999999", "", NULL, NULL },
	{ "SELECT * FROM accounts WHERE id = 0", ROUTER_SHARDS, "0", "", NULL, NULL },
	{ "SELECT * FROM accounts WHERE id = %A AND v > 3 AND (w = 1 OR w = 2)", ROUTER_SHARDS, "%A", "", NULL, NULL },
	{ "SELECT * FROM accounts WHERE (id = %A AND v > 3) AND w = 1", ROUTER_SHARDS, "%A", "", NULL, NULL },
	{ "SELECT * FROM accounts WHERE accounts.id = %A", ROUTER_SHARDS, "%A", "", NULL, NULL },
	{ "SELECT * FROM public.accounts WHERE public.accounts.id = %A", ROUTER_SHARDS, "%A", "", NULL, NULL },
	{ "SELECT * FROM accounts a WHERE a.id = %A", ROUTER_SHARDS, "%A", "", NULL, NULL },
	{ "SELECT * FROM ACCOUNTS WHERE ID = %A", ROUTER_SHARDS, "%A", "", NULL, NULL },
	{ "SELECT * FROM accounts WHERE id IN (%A, %B)", ROUTER_SHARDS, "%A,%B", "m", NULL, NULL },
	{ "SELECT * FROM accounts WHERE id IN (%A, %A)", ROUTER_SHARDS, "%A", "", NULL, NULL },
	{ "SELECT * FROM accounts WHERE id = %A AND id IN (%A, %B, %C)", ROUTER_SHARDS, "%A", "", NULL, NULL },
	{ "SELECT * FROM accounts WHERE id IS NULL", ROUTER_SHARDS, "", "", NULL, NULL },
	{ "SELECT * FROM accounts WHERE id = NULL", ROUTER_SHARDS, "", "", NULL, NULL },
	{ "SELECT * FROM accounts WHERE id = $1", ROUTER_BIND, NULL, "", NULL, NULL },
	{ "SELECT * FROM accounts WHERE id = $1::int8", ROUTER_BIND, NULL, "", NULL, NULL },
	{ "SELECT * FROM accounts WHERE id IN ($1, %A)", ROUTER_BIND, NULL, "m", NULL, NULL },
	/* keys that are no keys: every shard, merged */
	{ "SELECT * FROM accounts", ROUTER_ALL, NULL, "m", NULL, NULL },
	{ "SELECT * FROM accounts WHERE id = %A OR id = %B", ROUTER_ALL, NULL, "m", NULL, NULL },
	{ "SELECT * FROM accounts WHERE id > 5", ROUTER_ALL, NULL, "m", NULL, NULL },
	{ "SELECT * FROM accounts WHERE id = 5.0", ROUTER_ALL, NULL, "m", NULL, NULL },
	{ "SELECT * FROM accounts WHERE id::text = '5'", ROUTER_ALL, NULL, "m", NULL, NULL },
	{ "SELECT * FROM accounts WHERE id = '5'::text", ROUTER_ALL, NULL, "m", NULL, NULL },
	{ "SELECT * FROM accounts WHERE id = 'abc'", ROUTER_ALL, NULL, "m", NULL, NULL },
	{ "SELECT * FROM accounts WHERE id = 1 + 1", ROUTER_ALL, NULL, "m", NULL, NULL },
	{ "SELECT * FROM accounts WHERE NOT (id = 5)", ROUTER_ALL, NULL, "m", NULL, NULL },
	{ "SELECT * FROM accounts WHERE other.id = 5", ROUTER_ALL, NULL, "m", NULL, NULL },
	{ "SELECT count(*) FROM accounts", ROUTER_ALL, NULL, "m", NULL, NULL },
	{ "SELECT * FROM accounts ORDER BY id LIMIT 10", ROUTER_ALL, NULL, "m", NULL, NULL },
	{ "SELECT sum(x) OVER () FROM accounts", ROUTER_REFUSE, NULL, "", "0A000", "window" },
	{ "SELECT sum(x) OVER () FROM accounts WHERE id = %A", ROUTER_SHARDS, "%A", "", NULL, NULL },
	/* joins, subqueries, CTEs */
	{ "SELECT * FROM accounts a JOIN payments p ON p.account_id = a.id WHERE a.id = %A", ROUTER_SHARDS, "%A", "", NULL, NULL },
	{ "SELECT * FROM accounts a JOIN payments p ON p.account_id = a.id AND a.id = %A", ROUTER_SHARDS, "%A", "", NULL, NULL },
	{ "SELECT * FROM accounts a, payments p WHERE p.account_id = a.id AND p.account_id = %A", ROUTER_SHARDS, "%A", "", NULL, NULL },
	{ "SELECT * FROM accounts a LEFT JOIN payments p ON p.account_id = a.id WHERE a.id = %A", ROUTER_SHARDS, "%A", "", NULL, NULL },
	{ "SELECT * FROM accounts a LEFT JOIN payments p ON p.account_id = a.id AND a.id = %A", ROUTER_ALL, NULL, "", NULL, NULL },
	{ "SELECT * FROM accounts a FULL JOIN payments p ON p.account_id = a.id AND a.id = %A AND p.account_id = %A", ROUTER_ALL, NULL, "", NULL, NULL },
	{ "SELECT * FROM accounts a JOIN ref r ON r.x = a.id WHERE a.id = %A", ROUTER_SHARDS, "%A", "", NULL, NULL },
	{ "SELECT * FROM accounts a JOIN ref r ON true WHERE id = %A", ROUTER_SHARDS, "%A", "", NULL, NULL },
	/* (select.c refuses the merge of sharded tables not joined on their key) */
	{ "SELECT * FROM accounts a JOIN payments p ON true WHERE account_id = %A", ROUTER_REFUSE, NULL, "", "0A000", "not joined" },
	{ "SELECT * FROM accounts a JOIN accounts b ON true WHERE id = %A", ROUTER_REFUSE, NULL, "", "0A000", "not joined" },
	{ "SELECT * FROM accounts a JOIN accounts b ON b.id = a.id WHERE a.id = %A", ROUTER_SHARDS, "%A", "", NULL, NULL },
	{ "SELECT * FROM accounts WHERE id = %A AND EXISTS (SELECT 1 FROM payments p WHERE p.account_id = %A)", ROUTER_SHARDS, "%A", "", NULL, NULL },
	{ "SELECT * FROM accounts WHERE id = %A AND EXISTS (SELECT 1 FROM payments p WHERE p.account_id = %B)", ROUTER_REFUSE, NULL, "", "0A000", "subquery" },
	{ "SELECT * FROM accounts WHERE id = %A AND EXISTS (SELECT 1 FROM payments p WHERE p.account_id = accounts.id)", ROUTER_REFUSE, NULL, "", "0A000", "subquery" },
	{ "SELECT * FROM (SELECT * FROM accounts WHERE id = %A) s", ROUTER_SHARDS, "%A", "", NULL, NULL },
	{ "WITH x AS (SELECT * FROM accounts WHERE id = %A) SELECT * FROM x", ROUTER_SHARDS, "%A", "", NULL, NULL },
	{ "WITH accounts AS (SELECT 1 AS id) SELECT * FROM accounts", ROUTER_ANY, NULL, "", NULL, NULL },
	{ "WITH x AS (SELECT 1) SELECT * FROM x, accounts WHERE accounts.id = %A", ROUTER_SHARDS, "%A", "", NULL, NULL },
	{ "SELECT * FROM accounts WHERE id = %A UNION ALL SELECT * FROM accounts WHERE id = %A", ROUTER_SHARDS, "%A", "", NULL, NULL },
	{ "SELECT * FROM accounts WHERE id = %A UNION ALL SELECT * FROM accounts", ROUTER_REFUSE, NULL, "", NULL, NULL },
	/* multi-column keys, other types, names */
	{ "SELECT * FROM orders WHERE tenant_id = 1", ROUTER_ALL, NULL, "m", NULL, NULL },
	{ "SELECT * FROM orders WHERE tenant_id = 1 AND id = $1", ROUTER_BIND, NULL, "", NULL, NULL },
	{ "SELECT * FROM app.users WHERE email = 'a@b'", ROUTER_SHARDS, NULL, "", NULL, NULL },
	{ "SELECT * FROM users WHERE email = 'a@b'", ROUTER_SHARDS, NULL, "", NULL, NULL },
	{ "SELECT * FROM users WHERE email = 'a@b'::bpchar", ROUTER_ALL, NULL, "m", NULL, NULL },
	{ "SELECT * FROM users WHERE email = 'a@b'::varchar(2)", ROUTER_ALL, NULL, "m", NULL, NULL },
	{ "SELECT * FROM \"Events\" WHERE key = '" UUID1 "'", ROUTER_SHARDS, NULL, "", NULL, NULL },
	{ "SELECT * FROM \"Events\" WHERE key = 'nope'", ROUTER_ALL, NULL, "m", NULL, NULL },
	/* UPDATE, DELETE */
	{ "UPDATE accounts SET v = 1 WHERE id = %A", ROUTER_SHARDS, "%A", "w", NULL, NULL },
	{ "UPDATE accounts a SET v = 1 FROM ref r WHERE a.id = %A AND r.x = a.v", ROUTER_SHARDS, "%A", "w", NULL, NULL },
	{ "UPDATE accounts SET v = 1 WHERE id IN (%A, %B) RETURNING *", ROUTER_SHARDS, "%A,%B", "w", NULL, NULL },
	{ "UPDATE accounts SET v = 1", ROUTER_ALL, NULL, "w", NULL, NULL },
	{ "UPDATE accounts SET id = 2 WHERE id = 1", ROUTER_REFUSE, NULL, "", "0A000", "move rows between shards" },
	{ "DELETE FROM accounts WHERE id = %A", ROUTER_SHARDS, "%A", "w", NULL, NULL },
	{ "DELETE FROM accounts WHERE id = $1", ROUTER_BIND, NULL, "w", NULL, NULL },
	{ "DELETE FROM accounts a USING payments p WHERE p.account_id = a.id AND a.id = %A", ROUTER_SHARDS, "%A", "w", NULL, NULL },
	{ "DELETE FROM accounts", ROUTER_ALL, NULL, "w", NULL, NULL },
	{ "WITH x AS (INSERT INTO accounts (id) VALUES (1) RETURNING id) SELECT * FROM x", ROUTER_REFUSE, NULL, "", "0A000", "inside another statement" },
	{ "MERGE INTO accounts a USING ref r ON a.id = r.id WHEN MATCHED THEN DELETE", ROUTER_REFUSE, NULL, "", "0A000", "MERGE" },
	/* INSERT */
	{ "INSERT INTO accounts (id, v) VALUES (%A, 'x')", ROUTER_SHARDS, "%A", "w", NULL, NULL },
	{ "INSERT INTO accounts (v, id) VALUES ('x', %A), ('y', %A) RETURNING id", ROUTER_SHARDS, "%A", "w", NULL, NULL },
	{ "INSERT INTO accounts (id) VALUES (%A) ON CONFLICT (id) DO NOTHING", ROUTER_SHARDS, "%A", "w", NULL, NULL },
	{ "INSERT INTO accounts (id) VALUES ($1)", ROUTER_BIND, NULL, "w", NULL, NULL },
	{ "INSERT INTO accounts VALUES (1)", ROUTER_REFUSE, NULL, "", "0A000", "INSERT into sharded table \"accounts\" must give its sharding key (id)" },
	{ "INSERT INTO orders (id) VALUES (1)", ROUTER_REFUSE, NULL, "", "0A000", "must give its sharding key (tenant_id, id)" },
	{ "INSERT INTO accounts DEFAULT VALUES", ROUTER_REFUSE, NULL, "", "0A000", "sharding key (id)" },
	{ "INSERT INTO accounts (id) VALUES (DEFAULT)", ROUTER_REFUSE, NULL, "", "0A000", "a constant or a parameter" },
	{ "INSERT INTO accounts (id) VALUES (nextval('s'))", ROUTER_REFUSE, NULL, "", "0A000", "a constant or a parameter" },
	{ "INSERT INTO accounts (id) VALUES ('abc')", ROUTER_REFUSE, NULL, "", "22P02", "\"accounts\"" },
	{ "INSERT INTO accounts (id) SELECT 1", ROUTER_REFUSE, NULL, "", "0A000", "INSERT ... SELECT" },
	{ "INSERT INTO ref (a) SELECT id FROM accounts", ROUTER_REFUSE, NULL, "", "0A000", "reads sharded table \"accounts\"" },
	/* hints in comments */
	{ "/* pgcrab_shard: 2 */ SELECT * FROM accounts", ROUTER_SHARDS, NULL, "", NULL, NULL },
	{ "/* pgcrab_shard: 4 */ SELECT 1", ROUTER_REFUSE, NULL, "", "22023", "out of range" },
	{ "/* pgcrab_shard: x */ SELECT 1", ROUTER_REFUSE, NULL, "", "22023", "out of range" },
	{ "/* pgcrab_key: %A */ SELECT * FROM accounts", ROUTER_SHARDS, "%A", "", NULL, NULL },
	{ "SELECT * FROM accounts /* pgcrab_key = '%A' */", ROUTER_SHARDS, "%A", "", NULL, NULL },
	{ "/* pgcrab_key: abc */ SELECT * FROM accounts", ROUTER_REFUSE, NULL, "", "22P02", "pgcrab_key" },
	{ "/* pgcrab_key: %B */ SELECT * FROM accounts WHERE id = %A", ROUTER_SHARDS, "%A", "", NULL, NULL },
	{ "/* pgcrab_key: %A */ INSERT INTO accounts VALUES (1)", ROUTER_SHARDS, "%A", "w", NULL, NULL },
	{ "/* pgcrab_key: %A */ UPDATE accounts SET v = 1", ROUTER_SHARDS, "%A", "w", NULL, NULL },
	{ "/* pgcrab_key: %A */ BEGIN", ROUTER_TX, NULL, "", NULL, NULL },
	{ "SELECT '/* pgcrab_shard: 1 */' FROM accounts", ROUTER_ALL, NULL, "m", NULL, NULL },
	{ "SELECT $q$ /* pgcrab_shard: 1 */ $q$ FROM accounts", ROUTER_ALL, NULL, "m", NULL, NULL },
	{ "SELECT 1 FROM accounts -- /* pgcrab_shard: 1 */", ROUTER_ALL, NULL, "m", NULL, NULL },
	/* statements around another */
	{ "EXPLAIN SELECT * FROM accounts WHERE id = %A", ROUTER_SHARDS, "%A", "", NULL, NULL },
	{ "EXPLAIN SELECT * FROM accounts", ROUTER_ANY, NULL, "", NULL, NULL },
	{ "EXPLAIN ANALYZE UPDATE accounts SET v = 1", ROUTER_REFUSE, NULL, "", "0A000", "EXPLAIN ANALYZE" },
	{ "EXPLAIN (ANALYZE) DELETE FROM accounts WHERE id = %A", ROUTER_SHARDS, "%A", "w", NULL, NULL },
	{ "DECLARE c CURSOR FOR SELECT * FROM accounts WHERE id = %A", ROUTER_SHARDS, "%A", "", NULL, NULL },
	{ "DECLARE c CURSOR FOR SELECT * FROM accounts", ROUTER_REFUSE, NULL, "", "0A000", "DECLARE CURSOR" },
	{ "COPY (SELECT * FROM accounts WHERE id = %A) TO STDOUT", ROUTER_SHARDS, "%A", "", NULL, NULL },
	{ "COPY accounts TO STDOUT", ROUTER_ALL, NULL, "", NULL, NULL },
	{ "COPY accounts FROM STDIN", ROUTER_REFUSE, NULL, "", "0A000", "COPY" },
	{ "PREPARE q AS SELECT * FROM accounts WHERE id = $1", ROUTER_REFUSE, NULL, "", "0A000", "PREPARE" },
	{ "PREPARE q AS SELECT 1", ROUTER_ALL, NULL, "", NULL, NULL },
	{ "EXECUTE q", ROUTER_ANY, NULL, "", NULL, NULL },
	/* several statements in one string */
	{ "SELECT 1; SELECT 2", ROUTER_ANY, NULL, "", NULL, NULL },
	{ "BEGIN; UPDATE accounts SET v = 1 WHERE id = %A; COMMIT", ROUTER_SHARDS, "%A", "w", NULL, NULL },
	{ "SELECT * FROM accounts WHERE id = %A; SELECT * FROM payments WHERE account_id = %A; SELECT 1", ROUTER_SHARDS, "%A", "", NULL, NULL },
	{ "SELECT * FROM accounts WHERE id = %A; SELECT * FROM accounts WHERE id = %B", ROUTER_REFUSE, NULL, "", "0A000", "one at a time" },
	{ "SELECT * FROM accounts; SELECT 1", ROUTER_REFUSE, NULL, "", "0A000", "one at a time" },
	{ "CREATE TABLE a (x int); CREATE INDEX ON a (x); SET work_mem = '1MB'", ROUTER_ALL, NULL, "wd", NULL, NULL },
	{ "CREATE TABLE a (x int); SELECT 1", ROUTER_REFUSE, NULL, "", "0A000", "one at a time" },
	{ "BEGIN; CREATE TABLE a (x int); COMMIT", ROUTER_REFUSE, NULL, "", "0A000", "one at a time" },
	{ "SET pgcrab.shard = 1; SELECT 1", ROUTER_REFUSE, NULL, "", "0A000", "one at a time" },
	{ "INSERT INTO accounts (id) VALUES (%A), (%B); SELECT 1", ROUTER_REFUSE, NULL, "", "0A000", "alone" },
	{ "INSERT INTO accounts VALUES (1); SELECT 1", ROUTER_REFUSE, NULL, "", "0A000", "sharding key (id)" },
	{ "/* pgcrab_shard: 1 */ SELECT * FROM accounts; UPDATE accounts SET v = 1", ROUTER_SHARDS, NULL, "w", NULL, NULL },
};
/* clang-format on */

static uint64_t ids_mask(const char *ids)
{
	char buf[256], *save = NULL;
	uint64_t m = 0;

	if (!*ids) { /* a NULL key: the shard of the hash 0 */
		enum router_type t = ROUTER_INT8;
		const char *v = NULL;
		return bit(router_key_shard(1, &t, &v, schema.n_shards));
	}
	expand(ids, buf, sizeof(buf));
	for (char *id = strtok_r(buf, ",", &save); id; id = strtok_r(NULL, ",", &save))
		m |= bit(acc(id));
	return m;
}

/* every rule's failure is printed, then the test fails */
#define FAIL(...)                         \
	do {                              \
		print_error(__VA_ARGS__); \
		print_error("\n");        \
		failed++;                 \
	} while (0)

static void test_rules(void **state)
{
	int failed = 0;

	(void)state;
	find_ids();
	for (size_t i = 0; i < sizeof(rules) / sizeof(rules[0]); i++) {
		const struct rule *r = &rules[i];
		char sql[512];
		struct router_plan *p;

		expand(r->sql, sql, sizeof(sql));
		p = plan(sql);
		if (p->route != r->route)
			FAIL("%s: route %s, expected %s (%s %s)", sql, route_name(p->route),
			     route_name(r->route), p->sqlstate, p->message ? p->message : "");
		if (r->ids && p->shards != ids_mask(r->ids))
			FAIL("%s: shards %#llx, expected %#llx", sql, (unsigned long long)p->shards,
			     (unsigned long long)ids_mask(r->ids));
		if (r->route == ROUTER_SHARDS)
			assert_true(p->shards != 0);
		/* a refusal keeps its flags, for a hint that routes it */
		if (r->route != ROUTER_REFUSE
		    && (p->writes != (strchr(r->flags, 'w') != NULL)
			|| p->ddl != (strchr(r->flags, 'd') != NULL)
			|| p->no_tx_block != (strchr(r->flags, 'n') != NULL)))
			FAIL("%s: writes %d ddl %d no_tx_block %d, expected \"%s\"", sql, p->writes,
			     p->ddl, p->no_tx_block, r->flags);
		if (strchr(r->flags, 'm') && !p->merge)
			FAIL("%s: no merge", sql);
		if (!strchr(r->flags, 'm') && p->route != ROUTER_ALL && p->merge)
			FAIL("%s: a merge", sql);
		if (r->state && strcmp(p->sqlstate, r->state) != 0)
			FAIL("%s: sqlstate %s, expected %s", sql, p->sqlstate, r->state);
		if (r->says) {
			char says[256];
			expand(r->says, says, sizeof(says));
			if (!p->message || !strstr(p->message, says))
				FAIL("%s: message \"%s\", expected ...%s...", sql,
				     p->message ? p->message : "", says);
		}
		router_plan_free(p);
	}
	router_plan_cache_free();
	assert_int_equal(failed, 0);
}

static void test_tx_and_set(void **state)
{
	static const struct {
		const char *sql;
		enum router_tx tx;
	} tx[] = {
		{ "BEGIN", ROUTER_TX_BEGIN },
		{ "START TRANSACTION ISOLATION LEVEL SERIALIZABLE", ROUTER_TX_BEGIN },
		{ "COMMIT", ROUTER_TX_COMMIT },
		{ "END", ROUTER_TX_COMMIT },
		{ "ROLLBACK", ROUTER_TX_ROLLBACK },
		{ "ABORT", ROUTER_TX_ROLLBACK },
		{ "SAVEPOINT a", ROUTER_TX_SAVEPOINT },
		{ "RELEASE SAVEPOINT a", ROUTER_TX_SAVEPOINT },
		{ "ROLLBACK TO SAVEPOINT a", ROUTER_TX_SAVEPOINT },
		{ "PREPARE TRANSACTION 'x'", ROUTER_TX_PREPARED },
		{ "COMMIT PREPARED 'x'", ROUTER_TX_PREPARED },
		{ "ROLLBACK PREPARED 'x'", ROUTER_TX_PREPARED },
	};
	static const struct {
		const char *sql;
		bool shard, reset;
		const char *value; /* NULL: refused */
	} set[] = {
		{ "SET pgcrab.shard = 2", true, false, "2" },
		{ "SET pgcrab.shard TO '3'", true, false, "3" },
		{ "set PGCRAB.SHARD = 0", true, false, "0" },
		{ "SET pgcrab.shard = 4", true, false, NULL },
		{ "SET pgcrab.shard = -1", true, false, NULL },
		{ "SET pgcrab.shard = 'x'", true, false, NULL },
		{ "SET pgcrab.sharding_key = 'abc'", false, false, "abc" },
		{ "SET pgcrab.sharding_key = 42", false, false, "42" },
		{ "RESET pgcrab.shard", true, true, "" },
		{ "SET pgcrab.sharding_key TO DEFAULT", false, true, "" },
		{ "SET LOCAL pgcrab.shard = 1", true, false, NULL },
	};
	struct router_context ctx = { 1, NULL };

	(void)state;
	for (size_t i = 0; i < sizeof(tx) / sizeof(tx[0]); i++) {
		/* a session hint never routes transaction control */
		struct router_plan *p = plan_ctx(&schema, &ctx, tx[i].sql);
		if (p->route != ROUTER_TX || p->tx != tx[i].tx)
			fail_msg("%s: route %s tx %d", tx[i].sql, route_name(p->route), p->tx);
		router_plan_free(p);
	}
	for (size_t i = 0; i < sizeof(set) / sizeof(set[0]); i++) {
		struct router_plan *p = plan_ctx(&schema, &ctx, set[i].sql);
		if (!set[i].value) {
			if (p->route != ROUTER_REFUSE)
				fail_msg("%s: not refused", set[i].sql);
		} else if (p->route != ROUTER_SET || p->set_shard != set[i].shard
			   || p->set_reset != set[i].reset
			   || strcmp(p->set_value ? p->set_value : "", set[i].value) != 0) {
			fail_msg("%s: route %s shard %d reset %d value %s", set[i].sql,
				 route_name(p->route), p->set_shard, p->set_reset,
				 p->set_value ? p->set_value : "(null)");
		}
		router_plan_free(p);
	}
	router_plan_cache_free();
}

static void test_keys(void **state)
{
	struct router_plan *p;
	enum router_type t2[2] = { ROUTER_INT8, ROUTER_INT8 };
	const char *k1[2] = { "1", "2" }, *k2[2] = { "1", "3" };
	enum router_type text = ROUTER_TEXT;
	const char *email = "a@b";

	(void)state;
	/* a multi-column key: every column, and IN on one of them */
	p = plan("SELECT * FROM orders WHERE id = 2 AND tenant_id = 1");
	assert_int_equal(p->route, ROUTER_SHARDS);
	assert_true(p->shards == bit(router_key_shard(2, t2, k1, 4)));
	router_plan_free(p);
	p = plan("SELECT * FROM orders o WHERE o.tenant_id = 1 AND o.id IN (2, 3)");
	assert_true(p->route == ROUTER_SHARDS);
	assert_true(p->shards
		    == (bit(router_key_shard(2, t2, k1, 4)) | bit(router_key_shard(2, t2, k2, 4))));
	router_plan_free(p);

	/* Bind keys keep their literal columns */
	p = plan("SELECT * FROM orders WHERE tenant_id = 7 AND id = $2");
	assert_int_equal(p->route, ROUTER_BIND);
	assert_int_equal(p->n_keys, 1);
	assert_int_equal(p->keys[0].n_cols, 2);
	assert_int_equal(p->keys[0].cols[0].param, 0);
	assert_string_equal(p->keys[0].cols[0].literal, "7");
	assert_int_equal(p->keys[0].cols[1].param, 2);
	router_plan_free(p);
	p = plan("SELECT * FROM accounts WHERE id IN ($1, -3, NULL)");
	assert_int_equal(p->route, ROUTER_BIND);
	assert_int_equal(p->n_keys, 3);
	assert_int_equal(p->keys[0].cols[0].param, 1);
	assert_string_equal(p->keys[1].cols[0].literal, "-3");
	assert_null(p->keys[2].cols[0].literal);
	assert_int_equal(p->keys[2].cols[0].param, 0);
	router_plan_free(p);

	/* a text key, schema-qualified or not */
	p = plan("SELECT * FROM app.users u WHERE u.email = 'a@b'");
	assert_int_equal(p->route, ROUTER_SHARDS);
	assert_true(p->shards == bit(router_key_shard(1, &text, &email, 4)));
	router_plan_free(p);
	router_plan_cache_free();
}

static void test_split(void **state)
{
	char sql[256];
	struct router_plan *p;
	int n = 0;

	(void)state;
	find_ids();
	snprintf(sql, sizeof(sql),
		 "INSERT INTO accounts (id, v) VALUES (%s, 'a'), (%s, 'b'), (%s, 'c') "
		 "ON CONFLICT (id) DO UPDATE SET v = excluded.v RETURNING id",
		 id_a, id_b, id_a);
	p = plan(sql);
	assert_int_equal(p->route, ROUTER_SPLIT);
	assert_true(p->writes);
	for (int s = 0; s < schema.n_shards; s++) {
		char want[256];
		if (!p->split[s])
			continue;
		n++;
		if (s == acc(id_a))
			snprintf(want, sizeof(want),
				 "INSERT INTO accounts (id, v) VALUES (%s, 'a'), (%s, 'c') ON CONFLICT "
				 "(id) DO UPDATE SET v = excluded.v RETURNING id",
				 id_a, id_a);
		else if (s == acc(id_b))
			snprintf(want, sizeof(want),
				 "INSERT INTO accounts (id, v) VALUES (%s, 'b') ON CONFLICT (id) DO "
				 "UPDATE SET v = excluded.v RETURNING id",
				 id_b);
		else
			fail_msg("shard %d got rows", s);
		assert_string_equal(p->split[s], want);
	}
	assert_int_equal(n, 2);
	router_plan_free(p);

	/* the same from the cache: an equal copy */
	p = plan(sql);
	assert_int_equal(p->route, ROUTER_SPLIT);
	assert_non_null(p->split[acc(id_b)]);
	router_plan_free(p);

	/* cross_shard_writes = error */
	p = plan_ctx(&strict, &no_ctx, sql);
	assert_int_equal(p->route, ROUTER_REFUSE);
	assert_string_equal(p->sqlstate, "0A000");
	router_plan_free(p);
	router_plan_cache_free();
}

static void test_context(void **state)
{
	struct router_context shard3 = { 3, NULL }, shard9 = { 9, NULL };
	struct router_context key = { -1, NULL }, bad_key = { -1, "abc" };
	struct router_plan *p;
	char sql[128];

	(void)state;
	find_ids();
	key.sharding_key = id_b;
	p = plan_ctx(&schema, &shard3, "SELECT * FROM accounts");
	assert_int_equal(p->route, ROUTER_SHARDS);
	assert_true(p->shards == bit(3));
	assert_null(p->merge);
	router_plan_free(p);
	p = plan_ctx(&schema, &shard3, "INSERT INTO accounts (v) VALUES (1)");
	assert_int_equal(p->route, ROUTER_SHARDS);
	assert_true(p->shards == bit(3) && p->writes);
	router_plan_free(p);
	p = plan_ctx(&schema, &shard3, "CREATE TABLE x (a int)");
	assert_true(p->route == ROUTER_SHARDS && p->ddl);
	router_plan_free(p);
	/* the statement's key wins */
	snprintf(sql, sizeof(sql), "SELECT * FROM accounts WHERE id = %s", id_a);
	p = plan_ctx(&schema, &shard3, sql);
	assert_true(p->route == ROUTER_SHARDS && p->shards == bit(acc(id_a)));
	router_plan_free(p);
	/* a comment wins over the session */
	p = plan_ctx(&schema, &shard3, "/* pgcrab_shard: 1 */ SELECT * FROM accounts");
	assert_true(p->route == ROUTER_SHARDS && p->shards == bit(1));
	router_plan_free(p);
	/* the session's key, as the first sharded table's key type */
	p = plan_ctx(&schema, &key, "SELECT * FROM accounts");
	assert_true(p->route == ROUTER_SHARDS && p->shards == bit(acc(id_b)));
	router_plan_free(p);
	p = plan_ctx(&schema, &key, "SELECT 1");
	assert_true(p->route == ROUTER_SHARDS && p->shards == bit(shard_of(ROUTER_TEXT, id_b)));
	router_plan_free(p);
	p = plan_ctx(&schema, &bad_key, "SELECT * FROM accounts");
	assert_int_equal(p->route, ROUTER_REFUSE);
	assert_string_equal(p->sqlstate, "22P02");
	router_plan_free(p);
	p = plan_ctx(&schema, &shard9, "SELECT 1");
	assert_int_equal(p->route, ROUTER_REFUSE);
	assert_string_equal(p->sqlstate, "22023");
	router_plan_free(p);
	/* cross_shard_queries = error: refused, with a way out that works */
	p = plan_ctx(&strict, &no_ctx, "SELECT * FROM accounts");
	assert_int_equal(p->route, ROUTER_REFUSE);
	assert_string_equal(p->sqlstate, "0A000");
	assert_non_null(strstr(p->message, "pgcrab_shard"));
	assert_non_null(strstr(p->message, "(id)"));
	router_plan_free(p);
	p = plan_ctx(&strict, &shard3, "SELECT * FROM accounts");
	assert_true(p->route == ROUTER_SHARDS && p->shards == bit(3));
	router_plan_free(p);
	p = plan_ctx(&strict, &no_ctx, "UPDATE accounts SET v = 1");
	assert_int_equal(p->route, ROUTER_REFUSE);
	assert_non_null(strstr(p->message, "cross_shard_writes"));
	router_plan_free(p);
	snprintf(sql, sizeof(sql), "SELECT * FROM accounts WHERE id IN (%s, %s)", id_a, id_b);
	p = plan_ctx(&strict, &no_ctx, sql);
	assert_int_equal(p->route, ROUTER_REFUSE);
	router_plan_free(p);
	router_plan_cache_free();
}

static int bind(const struct router_plan *p, int n, const char *const *text, const int16_t *fmt,
		const int32_t *lens, uint64_t *out, char *err)
{
	const uint8_t *values[8];
	int32_t lengths[8];

	for (int i = 0; i < n; i++) {
		values[i] = (const uint8_t *)text[i];
		lengths[i] = lens ? lens[i] : text[i] ? (int32_t)strlen(text[i]) : -1;
	}
	return router_bind_shards(p, schema.n_shards, n, values, lengths, fmt, out, err, 256);
}

static void test_bind(void **state)
{
	struct router_plan *p;
	uint64_t out;
	char err[256];
	const char *v[2];
	/* 5 as int8, int4 and int2 in binary */
	const char b8[8] = { 0, 0, 0, 0, 0, 0, 0, 5 }, b4[4] = { 0, 0, 0, 5 }, b2[2] = { 0, 5 };
	const int16_t binary[2] = { 1, 1 };
	int32_t len;

	(void)state;
	find_ids();
	p = plan("SELECT * FROM accounts WHERE id = $1");
	v[0] = id_a;
	assert_int_equal(bind(p, 1, v, NULL, NULL, &out, err), 0);
	assert_true(out == bit(acc(id_a)));
	v[0] = " 5 ";
	assert_int_equal(bind(p, 1, v, NULL, NULL, &out, err), 0);
	assert_true(out == bit(acc("5")));
	v[0] = b8;
	len = 8;
	assert_int_equal(bind(p, 1, v, binary, &len, &out, err), 0);
	assert_true(out == bit(acc("5")));
	v[0] = b4;
	len = 4;
	assert_int_equal(bind(p, 1, v, binary, &len, &out, err), 0);
	assert_true(out == bit(acc("5")));
	v[0] = b2;
	len = 2;
	assert_int_equal(bind(p, 1, v, binary, &len, &out, err), 0);
	assert_true(out == bit(acc("5")));
	v[0] = NULL; /* NULL: no row matches; any one shard */
	assert_int_equal(bind(p, 1, v, NULL, NULL, &out, err), 0);
	assert_int_equal(__builtin_popcountll(out), 1);
	v[0] = "abc";
	assert_int_equal(bind(p, 1, v, NULL, NULL, &out, err), -1);
	assert_memory_equal(err, "22P02: ", 7);
	assert_int_equal(bind(p, 0, v, NULL, NULL, &out, err), -1);
	assert_memory_equal(err, "08P01: ", 7);
	router_plan_free(p);

	/* IN with a parameter and a literal */
	p = plan("SELECT * FROM accounts WHERE id IN ($1, 7)");
	v[0] = id_a;
	assert_int_equal(bind(p, 1, v, NULL, NULL, &out, err), 0);
	assert_true(out == (bit(acc(id_a)) | bit(acc("7"))));
	router_plan_free(p);

	/* a two-column key */
	p = plan("SELECT * FROM orders WHERE tenant_id = $2 AND id = $1");
	{
		enum router_type t2[2] = { ROUTER_INT8, ROUTER_INT8 };
		const char *k[2] = { "10", "20" };
		v[0] = "20";
		v[1] = "10";
		assert_int_equal(bind(p, 2, v, NULL, NULL, &out, err), 0);
		assert_true(out == bit(router_key_shard(2, t2, k, 4)));
	}
	router_plan_free(p);

	/* a multi-row INSERT: one shard, or several that the relay splits
	 * (test_router_split.c); cross_shard_writes = error refuses those */
	p = plan("INSERT INTO accounts (id) VALUES ($1), ($2)");
	assert_int_equal(p->route, ROUTER_BIND);
	assert_int_equal(p->n_keys, 2);
	assert_int_equal(p->insert_rows, 2);
	v[0] = id_a;
	v[1] = id_a;
	assert_int_equal(bind(p, 2, v, NULL, NULL, &out, err), 0);
	assert_true(out == bit(acc(id_a)));
	v[1] = id_b;
	assert_int_equal(bind(p, 2, v, NULL, NULL, &out, err), 0);
	assert_true(out == (bit(acc(id_a)) | bit(acc(id_b))));
	router_plan_free(p);
	p = plan_ctx(&strict, &no_ctx, "INSERT INTO accounts (id) VALUES ($1), ($2)");
	assert_int_equal(p->route, ROUTER_BIND);
	assert_int_equal(bind(p, 2, v, NULL, NULL, &out, err), -1);
	assert_memory_equal(err, "0A000: ", 7);
	assert_non_null(strstr(err, "cross_shard_writes"));
	router_plan_free(p);

	/* cross_shard_writes = error, known only at Bind */
	p = plan_ctx(&strict, &no_ctx, "DELETE FROM accounts WHERE id IN ($1, $2)");
	assert_int_equal(p->route, ROUTER_BIND);
	assert_int_equal(bind(p, 2, v, NULL, NULL, &out, err), -1);
	assert_non_null(strstr(err, "cross_shard_writes"));
	v[1] = id_a;
	assert_int_equal(bind(p, 2, v, NULL, NULL, &out, err), 0);
	router_plan_free(p);

	/* a read over several shards gets its merge at Parse */
	p = plan("SELECT * FROM accounts WHERE id IN ($1, $2) ORDER BY id");
	assert_int_equal(p->route, ROUTER_BIND);
	assert_non_null(p->merge);
	router_plan_free(p);
	router_plan_cache_free();
}

/* Texts that are slices of a larger buffer, and the cache by text and schema. */
static void test_cache(void **state)
{
	const char buf[] = "SELECT * FROM accounts WHERE id = 1garbage";
	size_t len = strlen(buf) - strlen("garbage");
	struct router_plan_stats before, after;
	struct router_plan *p, *q;

	(void)state;
	router_plan_cache_free();
	router_plan_stats(&before);
	p = router_plan(&schema, &no_ctx, buf, len);
	q = router_plan(&schema, &no_ctx, buf, len);
	assert_non_null(p);
	assert_non_null(q);
	assert_true(p != q);
	assert_int_equal(p->route, ROUTER_SHARDS);
	assert_true(p->shards == q->shards && q->shards == bit(acc("1")));
	router_plan_free(p);
	router_plan_free(q);
	router_plan_stats(&after);
	assert_int_equal(after.parsed - before.parsed, 1);
	assert_int_equal(after.cached - before.cached, 1);
	/* another schema is another plan */
	p = router_plan(&strict, &no_ctx, "SELECT * FROM accounts", 22);
	q = router_plan(&schema, &no_ctx, "SELECT * FROM accounts", 22);
	assert_int_equal(p->route, ROUTER_REFUSE);
	assert_int_equal(q->route, ROUTER_ALL);
	router_plan_free(p);
	router_plan_free(q);
	/* a merge's LIMIT / OFFSET parameters come with each copy (parsed, then
	 * from the cache), and outlive the cached plan */
	for (int i = 0; i < 2; i++) {
		static const char sql[] = "SELECT id FROM accounts ORDER BY id LIMIT $2 OFFSET $1";
		router_plan_stats(&before);
		p = router_plan(&schema, &no_ctx, sql, strlen(sql));
		router_plan_stats(&after);
		assert_int_equal(after.cached - before.cached, i);
		if (i == 1)
			router_plan_cache_free();
		assert_int_equal(p->route, ROUTER_ALL);
		assert_non_null(p->merge);
		assert_int_equal(p->merge->limit_param, 2);
		assert_int_equal(p->merge->offset_param, 1);
		assert_non_null(strstr(p->shard_sql,
				       "LIMIT (LEAST($2::bigint, 9223372036854775807 "
				       "- $1::bigint) + $1::bigint)"));
		router_plan_free(p);
	}
	router_plan_cache_free();
}

static double now_us(void)
{
	struct timespec ts;
	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (double)ts.tv_sec * 1e6 + (double)ts.tv_nsec / 1e3;
}

/* The routing cost per statement: a parse, and a cache hit (with the copy
 * and the free the caller does). Printed, not asserted. */
static void test_bench(void **state)
{
	static const char *const sqls[] = {
		"SELECT abalance FROM pgbench_accounts WHERE aid = $1",
		"UPDATE pgbench_accounts SET abalance = abalance + $1 WHERE aid = $2",
		"SELECT * FROM accounts a JOIN payments p ON p.account_id = a.id WHERE a.id = 42",
	};
	struct router_plan_stats s0, s1;
	const int n = 200000;

	(void)state;
	for (size_t i = 0; i < sizeof(sqls) / sizeof(sqls[0]); i++) {
		size_t len = strlen(sqls[i]);
		double t;

		router_plan_cache_free();
		router_plan_stats(&s0);
		for (int k = 0; k < 200; k++) {
			router_plan_free(router_plan(&schema, &no_ctx, sqls[i], len));
			router_plan_cache_free();
		}
		router_plan_stats(&s1);
		router_plan_free(router_plan(&schema, &no_ctx, sqls[i], len));
		t = now_us();
		for (int k = 0; k < n; k++)
			router_plan_free(router_plan(&schema, &no_ctx, sqls[i], len));
		t = now_us() - t;
		printf("router_plan: %.2f us per parse, %.3f us per cache hit: %s\n",
		       (double)(s1.parse_ns - s0.parse_ns) / 1e3 / (double)(s1.parsed - s0.parsed),
		       t / n, sqls[i]);
	}
	router_plan_cache_free();
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_rules),   cmocka_unit_test(test_tx_and_set),
		cmocka_unit_test(test_keys),    cmocka_unit_test(test_split),
		cmocka_unit_test(test_context), cmocka_unit_test(test_bind),
		cmocka_unit_test(test_cache),   cmocka_unit_test(test_bench),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
