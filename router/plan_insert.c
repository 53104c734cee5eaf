/* INSERT into a sharded table: each VALUES row's key from the columns the
 * INSERT names. Rows that all land on one shard go there as they are;
 * rows for several shards are split, each shard getting the INSERT with
 * only its rows (deparsed from the tree with the other rows taken out, so
 * ON CONFLICT and RETURNING stay); with Bind parameters the shards are
 * known at each Bind, and the relay cuts the text then (plan_split.c).
 * A key the router cannot see (no column list, a column left out,
 * DEFAULT, an expression, INSERT ... SELECT) is refused: the row's shard
 * would be a guess. */
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <pg_query.h>

#include "router/plan_tree.h"

/* The text of one statement, or NULL (out of memory, or libpg_query could
 * not deparse it: *failed). */
static char *deparse(const PgQuery__Node *stmt, bool *failed)
{
	PgQuery__RawStmt raw = PG_QUERY__RAW_STMT__INIT;
	PgQuery__RawStmt *stmts[1] = { &raw };
	PgQuery__ParseResult pr = PG_QUERY__PARSE_RESULT__INIT;
	PgQueryDeparseResult d;
	PgQueryProtobuf pb;
	uint8_t *buf;
	char *out;

	*failed = false;
	raw.stmt = (PgQuery__Node *)stmt;
	pr.version = PG_VERSION_NUM;
	pr.n_stmts = 1;
	pr.stmts = stmts;
	pb.len = pg_query__parse_result__get_packed_size(&pr);
	if (!(buf = malloc(pb.len ? pb.len : 1)))
		return NULL;
	pg_query__parse_result__pack(&pr, buf);
	pb.data = (char *)buf;
	d = pg_query_deparse_protobuf(pb);
	free(buf);
	if (d.error || !d.query) {
		*failed = !(d.error && d.error->message
			    && strstr(d.error->message, "out of memory"));
		pg_query_free_deparse_result(d);
		return NULL;
	}
	out = strdup(d.query);
	pg_query_free_deparse_result(d);
	return out;
}

/* Each shard's INSERT: the statement with only the rows for that shard. */
static int split(const PgQuery__Node *n, PgQuery__SelectStmt *values, const int *row_shard,
		 int n_shards, struct plan_box *b)
{
	PgQuery__Node **all = values->values_lists, **mine;
	size_t n_all = values->n_values_lists;
	bool failed = false;
	int rc = 0;

	b->plan.split = calloc(ROUTER_MAX_SHARDS, sizeof(char *));
	mine = malloc(n_all * sizeof(*mine));
	if (!b->plan.split || !mine) {
		free(mine);
		return -1;
	}
	b->plan.route = ROUTER_SPLIT;
	for (int s = 0; s < n_shards && rc == 0; s++) {
		size_t k = 0;
		for (size_t r = 0; r < n_all; r++)
			if (row_shard[r] == s)
				mine[k++] = all[r];
		if (k == 0)
			continue;
		values->values_lists = mine;
		values->n_values_lists = k;
		b->plan.split[s] = deparse(n, &failed);
		values->values_lists = all;
		values->n_values_lists = n_all;
		if (!b->plan.split[s])
			rc = failed ? plan_refuse(b, "0A000",
						  "this multi-row INSERT cannot be split between "
						  "shards: send its rows in one INSERT per shard")
				    : -1;
	}
	free(mine);
	return rc;
}

/* What a Bind whose rows land on several shards gets, when they cannot
 * be split: router_bind_shards refuses with it. -1 out of memory. */
static int bind_refusal(struct plan_box *b, const char *fmt, ...)
	__attribute__((format(printf, 2, 3)));

static int bind_refusal(struct plan_box *b, const char *fmt, ...)
{
	va_list ap;
	int n;

	memcpy(b->plan.sqlstate, "0A000", 6);
	free(b->plan.message);
	va_start(ap, fmt);
	n = vasprintf(&b->plan.message, fmt, ap);
	va_end(ap);
	if (n < 0)
		b->plan.message = NULL;
	return n < 0 ? -1 : 0;
}

/* A multi-row INSERT whose keys come with each Bind: the rows' shards are
 * known only then, so the plan keeps what cutting it takes (plan_split.c:
 * the text, where its rows and parameters are). A statement whose text
 * cannot be cut is refused at every Bind that would need a cut, never
 * half sent. */
static int keep_for_split(const struct router_schema *schema, const PgQuery__Node *n,
			  const PgQuery__SelectStmt *values, const char *sql, size_t len,
			  const struct router_table *tab, bool multi, struct plan_box *b)
{
	int rc;

	b->plan.insert_rows = (int)values->n_values_lists;
	if (multi)
		return bind_refusal(b,
				    "a multi-row INSERT whose rows go to several shards must "
				    "be sent alone, not with other statements");
	if (schema->refuse_cross_writes)
		return bind_refusal(
			b,
			"cross-shard write refused (cross_shard_writes = error): the rows "
			"of this INSERT into \"%s\" go to several shards; send one INSERT "
			"per shard",
			tab->name);
	rc = plan_split_prepare(n, values, sql, len, &b->plan);
	if (rc > 0)
		return bind_refusal(b,
				    "this multi-row INSERT cannot be split between shards: "
				    "send its rows in one INSERT per shard");
	return rc;
}

static int refuse_key(const struct router_table *t, struct plan_box *b, const char *why)
{
	char keys[256];

	plan_key_names(t, keys, sizeof(keys));
	return plan_refuse(b, "0A000",
			   "INSERT into sharded table \"%s\" must give its sharding key (%s)%s",
			   t->name, keys, why);
}

/* out of memory, or refused */
#define STOP (rc != 0 || b->plan.route == ROUTER_REFUSE)

int plan_insert(const struct router_schema *schema, const void *insert_stmt, const char *sql,
		size_t len, int t, bool multi, struct plan_box *b)
{
	const PgQuery__Node *n = insert_stmt;
	const PgQuery__InsertStmt *ins = n->insert_stmt;
	const struct router_table *tab = &schema->tables[t];
	struct plan_keys ks = { .n_shards = schema->n_shards };
	PgQuery__SelectStmt *values;
	int pos[ROUTER_MAX_KEY_COLS], *row_shard = NULL, rc = 0;
	size_t n_rows;

	for (int c = 0; c < tab->n_cols; c++) {
		pos[c] = -1;
		for (size_t i = 0; i < ins->n_cols; i++) {
			const PgQuery__Node *col = ins->cols[i];
			if (col->node_case == PG_QUERY__NODE__NODE_RES_TARGET
			    && col->res_target->name && !col->res_target->n_indirection
			    && strcmp(col->res_target->name, tab->cols[c]) == 0)
				pos[c] = (int)i;
		}
		if (pos[c] < 0)
			return refuse_key(tab, b, "");
	}
	if (!ins->select_stmt)
		return refuse_key(tab, b, "");
	values = ins->select_stmt->node_case == PG_QUERY__NODE__NODE_SELECT_STMT
		? ins->select_stmt->select_stmt
		: NULL;
	if (!values || !values->n_values_lists)
		return plan_refuse(
			b, "0A000",
			"INSERT ... SELECT into sharded table \"%s\" cannot be routed by "
			"its key: use INSERT ... VALUES, or route it with /* pgcrab_shard: "
			"N */ or SET pgcrab.shard",
			tab->name);
	n_rows = values->n_values_lists;
	if (!(row_shard = malloc(n_rows * sizeof(*row_shard))))
		return -1;

	for (size_t r = 0; r < n_rows && !STOP; r++) {
		const PgQuery__Node *row = values->values_lists[r];
		struct router_key key = { .n_cols = tab->n_cols };
		bool literal = true;

		if (row->node_case != PG_QUERY__NODE__NODE_LIST) {
			rc = refuse_key(tab, b, " in every row");
			break;
		}
		for (int c = 0; c < tab->n_cols && !STOP; c++) {
			const PgQuery__Node *v = (size_t)pos[c] < row->list->n_items
				? row->list->items[pos[c]]
				: NULL;
			if (!plan_value_ok(v, tab->types[c])) {
				plan_keys_free_one(&key, c);
				rc = refuse_key(tab, b,
						" as a constant or a parameter in every row");
			} else if (plan_value(v, tab->types[c], &key.cols[c]) < 0) {
				plan_keys_free_one(&key, c);
				rc = -1;
			} else if (key.cols[c].param) {
				literal = false;
			}
		}
		if (STOP) {
			plan_keys_free_one(&key, key.n_cols);
			break;
		}
		row_shard[r] = literal ? plan_literal_shard(&key, schema->n_shards) : -1;
		if (literal && row_shard[r] < 0) {
			char keys[256];
			plan_key_names(tab, keys, sizeof(keys));
			plan_keys_free_one(&key, key.n_cols);
			rc = plan_refuse(b, "22P02",
					 "invalid input for the sharding key (%s) of table \"%s\" in "
					 "row %zu of the INSERT",
					 keys, tab->name, r + 1);
			break;
		}
		if (plan_keys_add(&ks, &key) < 0)
			rc = -1;
	}
	if (STOP)
		goto out;

	b->hintable = false;
	if (ks.has_param) {
		plan_keys_route(&ks, &b->plan);
		if (n_rows > 1)
			rc = keep_for_split(schema, n, values, sql, len, tab, multi, b);
		goto out;
	}
	plan_keys_route(&ks, &b->plan);
	if (__builtin_popcountll(b->plan.shards) == 1)
		goto out;
	b->plan.shards = 0;
	if (schema->refuse_cross_writes)
		rc = plan_refuse(
			b, "0A000",
			"cross-shard write refused (cross_shard_writes = error): the rows of "
			"this INSERT into \"%s\" go to several shards; send one INSERT per "
			"shard",
			tab->name);
	else if (multi)
		rc = plan_refuse(b, "0A000",
				 "a multi-row INSERT whose rows go to several shards must be sent "
				 "alone, not with other statements");
	else
		rc = split(n, values, row_shard, schema->n_shards, b);
out:
	plan_keys_free(ks.keys, ks.n);
	free(row_shard);
	return rc;
}
