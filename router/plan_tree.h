/* The plan files' view of libpg_query's protobuf tree: finding a sharded
 * table and reading a key value. Only plan_*.c include this. */
#ifndef PGCRAB_ROUTER_PLAN_TREE_H
#define PGCRAB_ROUTER_PLAN_TREE_H

#include <pg_query/pg_query.pb-c.h>

#include "router/internal.h"

#define PLAN_MAX_KEYS 1024 /* more keys than this: the statement is planned as keyless */

/* The schema's index of the table rv names, or -1 when it is not sharded. */
int plan_table_of(const struct router_schema *schema, const PgQuery__RangeVar *rv);

/* The String node's text, or NULL. */
const char *plan_node_str(const PgQuery__Node *n);

/* Whether n is a key value for a column of type t: a literal (integer,
 * string, NULL, a negative number), a $n parameter, either under casts
 * that keep the value (to an integer type for an integer key, to text or
 * varchar for a text key...). */
bool plan_value_ok(const PgQuery__Node *n, enum router_type t);

/* Reads a value plan_value_ok accepted into src (literal malloc'd). 0, or
 * -1 out of memory. */
int plan_value(const PgQuery__Node *n, enum router_type t, struct router_key_src *src);

/* The shard of a key whose columns are all literals; -1 when a literal is
 * not valid input for its type. */
int plan_literal_shard(const struct router_key *k, int n_shards);

/* Frees the literals of keys[0, n) and the array. */
void plan_keys_free(struct router_key *keys, int n);

/* A key list being built. */
struct plan_keys {
	struct router_key *keys;
	int n, cap;
	bool has_param;
	int n_shards;
	uint64_t mask; /* the shards of the literal keys */
};
/* Appends one key (taking its literals). 0, -1 out of memory. */
int plan_keys_add(struct plan_keys *ks, const struct router_key *k);

/* A route from keys: all literal -> ROUTER_SHARDS (the mask), else
 * ROUTER_BIND (the keys move into the plan). */
void plan_keys_route(struct plan_keys *ks, struct router_plan *p);

/* Name lists for messages: "tenant_id, id". */
void plan_key_names(const struct router_table *t, char *out, size_t size);

/* Frees the literals of key k's first n columns. */
void plan_keys_free_one(struct router_key *k, int n);

/* plan_split.c: what router_insert_subset needs of a multi-row INSERT
 * (stmt, its VALUES values, its text sql[0, len)), into p->insert_split.
 * 0; 1 when the text cannot be cut by rows (the plan should refuse a
 * split); -1 out of memory. */
int plan_split_prepare(const PgQuery__Node *stmt, const PgQuery__SelectStmt *values,
		       const char *sql, size_t len, struct router_plan *p);

/* ---- plan_walk.c and plan_keys.c: one statement's sharded tables and keys */

/* The names of the WITH queries in view: a list shared by the scopes
 * nested in the statement that declares them. */
struct plan_cte {
	const char *name;
	const struct plan_cte *next;
	struct plan_cte *all_next; /* every link the walk made, to free them */
};

struct plan_walk {
	const struct router_schema *schema;
	const PgQuery__RangeVar *skip; /* an INSERT's target: plan_insert's */
	struct plan_keys keys;         /* of every keyed sharded table */
	int n_sharded;                 /* references to sharded tables */
	int first_table;               /* the one named first (by position), or -1 */
	int first_loc;
	int unkeyed_table;    /* a sharded table without a usable key, or -1 */
	bool nested_write;    /* an INSERT/UPDATE/DELETE/MERGE inside the statement */
	int nested_insert;    /* a sharded table an inner INSERT writes, or -1 */
	bool into;            /* SELECT ... INTO */
	const void **claimed; /* the RangeVars the scopes took */
	int n_claimed, cap_claimed;
	struct plan_cte *ctes; /* all links */
};

/* Walks the statement stmt (a PgQuery__Node) into w (zeroed by it, with
 * schema and skip set). 0, or -1 out of memory; plan_walk_free after. */
int plan_walk(struct plan_walk *w, const struct router_schema *schema, const PgQuery__Node *stmt,
	      const PgQuery__RangeVar *skip);
void plan_walk_free(struct plan_walk *w);

/* For plan_keys.c: a table reference a scope found, and whether it has
 * no usable key; claim: the RangeVar is a scope's (0, -1 out of memory). */
void plan_walk_note_table(struct plan_walk *w, int table, int location);
void plan_walk_unkeyed(struct plan_walk *w, int table);
int plan_walk_claim(struct plan_walk *w, const PgQuery__RangeVar *rv);
bool plan_cte_visible(const struct plan_cte *c, const PgQuery__RangeVar *rv);

int plan_scope_select(struct plan_walk *w, const PgQuery__SelectStmt *s,
		      const struct plan_cte *ctes);
int plan_scope_modify(struct plan_walk *w, const PgQuery__RangeVar *target,
		      PgQuery__Node *const *from, size_t n_from, const PgQuery__Node *where,
		      const struct plan_cte *ctes);

#endif
