/* Shared by the router's own files (plan.c, select.c, merge.c, ...); no
 * other module includes this. Each file's section is marked. */
#ifndef PGCRAB_ROUTER_INTERNAL_H
#define PGCRAB_ROUTER_INTERNAL_H

#include <stddef.h>

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
