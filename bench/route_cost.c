/* route_cost: what routing a statement costs PgCrab's worker, in µs, for
 * `make bench`. Links build/libpgcrab.a and calls the router as the relay
 * does (relay/route.c):
 *
 *   parse  router_plan on text the plan cache has not seen: libpg_query's
 *          parse and the walk (the library's own parse_ns counter);
 *   hit    router_plan on text it has seen, plus router_plan_free: what
 *          each Parse of -M extended (and each repeated simple Query) pays;
 *   bind   router_bind_shards for one text parameter: what each Bind pays
 *          (-M extended and -M prepared alike).
 *
 * One line per statement, tab-separated: name, parse_us, hit_us, bind_us
 * ("-" where the statement has no parameter), n_shards. Usage:
 * route_cost [N_SHARDS] [ITERATIONS]. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "router/router.h"

static const struct router_table tables[] = {
	{ NULL, "pgbench_accounts", 1, { "aid" }, { ROUTER_INT4 } },
	{ NULL, "accounts", 1, { "id" }, { ROUTER_INT8 } },
	{ NULL, "payments", 1, { "account_id" }, { ROUTER_INT8 } },
};

static const struct {
	const char *name;
	const char *sql;
} statements[] = {
	{ "select-by-aid-param", "SELECT abalance FROM pgbench_accounts WHERE aid = $1;" },
	{ "select-by-aid-literal", "SELECT abalance FROM pgbench_accounts WHERE aid = 31337;" },
	{ "update-by-aid-param",
	  "UPDATE pgbench_accounts SET abalance = abalance + $1 WHERE aid = $2;" },
	{ "join-by-id-literal",
	  "SELECT * FROM accounts a JOIN payments p ON p.account_id = a.id WHERE a.id = 42" },
};

static double now_us(void)
{
	struct timespec ts;
	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (double)ts.tv_sec * 1e6 + (double)ts.tv_nsec / 1e3;
}

/* Fails loudly: a number measured on a refused or empty plan means nothing. */
static struct router_plan *plan_or_die(const struct router_schema *schema, const char *sql)
{
	static const struct router_context no_hints = { -1, NULL };
	struct router_plan *p = router_plan(schema, &no_hints, sql, strlen(sql));
	if (!p || p->route == ROUTER_REFUSE) {
		fprintf(stderr, "route_cost: cannot plan %s: %s\n", sql,
			p && p->message ? p->message : "out of memory");
		exit(1);
	}
	return p;
}

static double parse_us(const struct router_schema *schema, const char *sql, int n)
{
	struct router_plan_stats s0, s1;

	router_plan_stats(&s0);
	for (int i = 0; i < n; i++) {
		router_plan_cache_free(); /* so that every call parses */
		router_plan_free(plan_or_die(schema, sql));
	}
	router_plan_stats(&s1);
	router_plan_cache_free();
	if (s1.parsed - s0.parsed != (uint64_t)n) {
		fprintf(stderr, "route_cost: %s: expected %d parses, got %llu\n", sql, n,
			(unsigned long long)(s1.parsed - s0.parsed));
		exit(1);
	}
	return (double)(s1.parse_ns - s0.parse_ns) / 1e3 / n;
}

static double hit_us(const struct router_schema *schema, const char *sql, int n)
{
	struct router_plan_stats s0, s1;
	double t;

	router_plan_free(plan_or_die(schema, sql)); /* into the cache */
	router_plan_stats(&s0);
	t = now_us();
	for (int i = 0; i < n; i++)
		router_plan_free(plan_or_die(schema, sql));
	t = now_us() - t;
	router_plan_stats(&s1);
	if (s1.cached - s0.cached != (uint64_t)n) {
		fprintf(stderr, "route_cost: %s: expected %d cache hits, got %llu\n", sql, n,
			(unsigned long long)(s1.cached - s0.cached));
		exit(1);
	}
	return t / n;
}

/* -1 when the plan takes no parameter. Each Bind carries another key, as
 * pgbench's do, so the hash is paid for every one. */
static double bind_us(const struct router_schema *schema, const char *sql, int n)
{
	struct router_plan *p = plan_or_die(schema, sql);
	char values[ROUTER_MAX_KEY_COLS][16], err[256];
	const uint8_t *vals[ROUTER_MAX_KEY_COLS];
	int32_t lens[ROUTER_MAX_KEY_COLS];
	uint64_t shards, seen = 0;
	int n_params = 0;
	double t;

	if (p->route != ROUTER_BIND) {
		router_plan_free(p);
		return -1;
	}
	/* as many parameters as the statement's highest $n (every one a key
	 * value: these statements have no others) */
	for (int k = 0; k < p->n_keys; k++)
		for (int c = 0; c < p->keys[k].n_cols; c++)
			if (p->keys[k].cols[c].param > n_params)
				n_params = p->keys[k].cols[c].param;
	if (n_params > ROUTER_MAX_KEY_COLS) {
		fprintf(stderr, "route_cost: %s: too many parameters\n", sql);
		exit(1);
	}
	t = now_us();
	for (int i = 0; i < n; i++) {
		for (int k = 0; k < n_params; k++) {
			lens[k] = snprintf(values[k], sizeof(values[k]), "%d",
					   1 + (i * 7919) % 1000000);
			vals[k] = (const uint8_t *)values[k];
		}
		if (router_bind_shards(p, schema->n_shards, n_params, vals, lens, NULL, &shards,
				       err, sizeof(err))
		    != 0) {
			fprintf(stderr, "route_cost: bind %s: %s\n", sql, err);
			exit(1);
		}
		seen |= shards;
	}
	t = now_us() - t;
	router_plan_free(p);
	/* the keys must have spread over every shard, or the routing is wrong */
	if (seen
	    != (schema->n_shards == 64 ? ~UINT64_C(0) : (UINT64_C(1) << schema->n_shards) - 1)) {
		fprintf(stderr, "route_cost: bind %s: keys reached shards %#llx only\n", sql,
			(unsigned long long)seen);
		exit(1);
	}
	return t / n;
}

int main(int argc, char **argv)
{
	int n_shards = argc > 1 ? atoi(argv[1]) : 2;
	int n = argc > 2 ? atoi(argv[2]) : 200000;
	struct router_schema schema = { n_shards, (int)(sizeof(tables) / sizeof(tables[0])), tables,
					false, false };

	if (n_shards < 1 || n_shards > ROUTER_MAX_SHARDS || n < 100) {
		fprintf(stderr, "usage: route_cost [N_SHARDS 1..64] [ITERATIONS >= 100]\n");
		return 2;
	}
	printf("statement\tparse_us\thit_us\tbind_us\tn_shards\n");
	for (size_t i = 0; i < sizeof(statements) / sizeof(statements[0]); i++) {
		const char *sql = statements[i].sql;
		/* a warm-up round: the allocator's and libpg_query's first-use costs */
		parse_us(&schema, sql, 20);
		double parse = parse_us(&schema, sql, n / 200 < 100 ? 100 : n / 200);
		double hit = hit_us(&schema, sql, n);
		double bind = bind_us(&schema, sql, n);
		router_plan_cache_free();
		printf("%s\t%.2f\t%.3f\t", statements[i].name, parse, hit);
		if (bind < 0)
			printf("-");
		else
			printf("%.3f", bind);
		printf("\t%d\n", n_shards);
	}
	return 0;
}
