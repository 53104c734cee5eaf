/* One statement's route, from its kind and (for reads and writes of rows)
 * the keys plan_walk.c found. What is not data (DDL, maintenance) goes to
 * every shard; what reads nothing sharded goes to any one; transaction
 * control and SET pgcrab.* are the relay's own. */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "router/plan_tree.h"

#define ROUTE_HOW \
	"give the sharding key, or route it with /* pgcrab_shard: N */ or SET pgcrab.shard"

static int popcount(uint64_t m)
{
	return __builtin_popcountll(m);
}

static const char *table_name(const struct router_schema *schema, int t)
{
	return t >= 0 ? schema->tables[t].name : "?";
}

static void set_hint_type(const struct router_schema *schema, struct plan_box *b, int t)
{
	if (t >= 0 && !b->has_hint_type) {
		b->has_hint_type = true;
		b->hint_type = schema->tables[t].types[0];
	}
}

/* Refusals kept for a Bind that lands on several shards. */
static int multi_refuse(struct plan_box *b, const char *sqlstate, const char *message)
{
	if (b->plan.message) /* the first reason stands */
		return 0;
	memcpy(b->plan.sqlstate, sqlstate, 6);
	return (b->plan.message = strdup(message)) ? 0 : -1;
}

/* A read that may span shards: refused by cross_shard_queries = error, or
 * its merge planned by select.c. A Bind's plan keeps the refusal for when
 * its keys do land on several shards. */
static int read_multi(const struct router_schema *schema, const char *sql, size_t len, bool multi,
		      struct plan_box *b, int table)
{
	struct router_plan *p = &b->plan;
	bool bind = p->route == ROUTER_BIND;
	struct router_plan tmp;
	char msg[512], keys[256];

	if (schema->refuse_cross_reads) {
		plan_key_names(&schema->tables[table], keys, sizeof(keys));
		snprintf(msg, sizeof(msg),
			 "cross-shard query refused (cross_shard_queries = error): it reads sharded "
			 "table \"%s\" on %s; %s (%s)",
			 table_name(schema, table),
			 p->route == ROUTER_ALL ? "every shard, as it has no sharding key"
						: "several shards",
			 ROUTE_HOW, keys);
		if (bind)
			return multi_refuse(b, "0A000", msg);
		return plan_refuse(b, "0A000", "%s", msg);
	}
	if (multi) /* several statements: refused by the caller, or sent to one shard by a hint */
		return 0;
	memset(&tmp, 0, sizeof(tmp));
	tmp.route = p->route;
	if (router_select_merge(schema, sql, len, &tmp) < 0) {
		free(tmp.shard_sql);
		router_merge_free(tmp.merge);
		free(tmp.message);
		return -1;
	}
	if (tmp.route == ROUTER_REFUSE) {
		int rc;
		free(tmp.shard_sql);
		router_merge_free(tmp.merge);
		if (bind)
			rc = multi_refuse(b, tmp.sqlstate, tmp.message ? tmp.message : "");
		else
			rc = plan_refuse(b, tmp.sqlstate, "%s", tmp.message ? tmp.message : "");
		free(tmp.message);
		return rc;
	}
	p->shard_sql = tmp.shard_sql;
	p->merge = tmp.merge;
	free(tmp.message);
	return 0;
}

static int write_multi(const struct router_schema *schema, struct plan_box *b, int table)
{
	char msg[512], keys[256];

	if (!schema->refuse_cross_writes)
		return 0;
	plan_key_names(&schema->tables[table], keys, sizeof(keys));
	snprintf(msg, sizeof(msg),
		 "cross-shard write refused (cross_shard_writes = error): it changes sharded table "
		 "\"%s\" on %s; %s (%s)",
		 table_name(schema, table),
		 b->plan.route == ROUTER_ALL ? "every shard, as it has no sharding key"
					     : "several shards",
		 ROUTE_HOW, keys);
	if (b->plan.route == ROUTER_BIND)
		return multi_refuse(b, "0A000", msg);
	return plan_refuse(b, "0A000", "%s", msg);
}

static bool has_key_col(const struct router_table *t, const char *name)
{
	for (int c = 0; c < t->n_cols; c++)
		if (name && strcmp(t->cols[c], name) == 0)
			return true;
	return false;
}

/* UPDATE ... SET key = ...: the row would have to move to another shard */
static int updates_key(const struct router_schema *schema, const PgQuery__UpdateStmt *u,
		       struct plan_box *b)
{
	int t = plan_table_of(schema, u->relation);
	char keys[256];

	if (t < 0)
		return 0;
	for (size_t i = 0; i < u->n_target_list; i++) {
		const PgQuery__Node *n = u->target_list[i];
		if (n->node_case == PG_QUERY__NODE__NODE_RES_TARGET
		    && has_key_col(&schema->tables[t], n->res_target->name)) {
			plan_key_names(&schema->tables[t], keys, sizeof(keys));
			b->hintable = false;
			return plan_refuse(b, "0A000",
					   "UPDATE of the sharding key (%s) of sharded table \"%s\" "
					   "would move rows between shards: DELETE and INSERT them "
					   "instead",
					   keys, schema->tables[t].name)
					< 0
				? -1
				: 1;
		}
	}
	return 0;
}

/* SELECT, UPDATE, DELETE */
static int plan_rows(const struct router_schema *schema, const PgQuery__Node *n, const char *sql,
		     size_t len, bool multi, struct plan_box *b)
{
	struct router_plan *p = &b->plan;
	bool select = n->node_case == PG_QUERY__NODE__NODE_SELECT_STMT;
	struct plan_walk w;
	int rc = 0;

	if (plan_walk(&w, schema, n, NULL) < 0)
		goto oom;
	set_hint_type(schema, b, w.first_table);
	p->writes = !select || w.nested_write || w.into;
	if (select)
		b->rows = true;
	else if (n->node_case == PG_QUERY__NODE__NODE_UPDATE_STMT)
		b->rows = n->update_stmt->n_returning_list > 0;
	else
		b->rows = n->delete_stmt->n_returning_list > 0;

	if (w.nested_insert >= 0) {
		rc = plan_refuse(b, "0A000",
				 "INSERT into sharded table \"%s\" inside another statement cannot "
				 "be routed by its key: send it on its own, or route it with "
				 "/* pgcrab_shard: N */ or SET pgcrab.shard",
				 table_name(schema, w.nested_insert));
		goto out;
	}
	if (n->node_case == PG_QUERY__NODE__NODE_UPDATE_STMT
	    && (rc = updates_key(schema, n->update_stmt, b)) != 0)
		goto out;
	if (select && w.into) { /* SELECT INTO makes a table: on every shard */
		p->route = ROUTER_ALL;
		p->ddl = true;
		b->rows = false;
		goto out;
	}
	if (w.n_sharded == 0) {
		p->route = p->writes ? ROUTER_ALL : ROUTER_ANY;
		p->replicated = p->writes; /* the same change on every shard */
		goto out;
	}
	if (w.unkeyed_table >= 0) {
		p->route = ROUTER_ALL;
		rc = select ? read_multi(schema, sql, len, multi, b, w.unkeyed_table)
			    : write_multi(schema, b, w.unkeyed_table);
		goto out;
	}
	plan_keys_route(&w.keys, p);
	b->hintable = false;
	if (p->route == ROUTER_SHARDS ? popcount(p->shards) > 1 : p->n_keys > 1)
		rc = select ? read_multi(schema, sql, len, multi, b, w.first_table)
			    : write_multi(schema, b, w.first_table);
out:
	plan_walk_free(&w);
	return rc;
oom:
	plan_walk_free(&w);
	return -1;
}

static int plan_insert_stmt(const struct router_schema *schema, const PgQuery__Node *n,
			    const char *sql, size_t len, bool multi, struct plan_box *b)
{
	const PgQuery__InsertStmt *ins = n->insert_stmt;
	int t = plan_table_of(schema, ins->relation);
	struct plan_walk w;
	int rc;

	if (plan_walk(&w, schema, n, ins->relation) < 0) {
		plan_walk_free(&w);
		return -1;
	}
	b->plan.writes = true;
	b->rows = ins->n_returning_list > 0;
	set_hint_type(schema, b, t);
	set_hint_type(schema, b, w.first_table);
	if (w.n_sharded > 0 || w.nested_insert >= 0) {
		int other = w.first_table >= 0 ? w.first_table : w.nested_insert;
		rc = plan_refuse(b, "0A000",
				 "INSERT into %s\"%s\" that reads sharded table \"%s\" cannot be "
				 "routed by its key: route it with /* pgcrab_shard: N */ or SET "
				 "pgcrab.shard",
				 t >= 0 ? "sharded table " : "", ins->relation->relname,
				 table_name(schema, other));
	} else if (t < 0) {
		b->plan.route = ROUTER_ALL;
		b->plan.replicated = true; /* an unsharded table: the same rows everywhere */
		rc = 0;
	} else {
		rc = plan_insert(schema, n, sql, len, t, multi, b);
	}
	plan_walk_free(&w);
	return rc;
}

/* The plan of a statement inside another (EXPLAIN, DECLARE, COPY (...)),
 * which can only run on one shard: a route to several becomes `any_route`
 * (ROUTER_ANY: any one shard shows the same thing), or is refused. */
static int plan_inner(const struct router_schema *schema, const PgQuery__Node *inner,
		      const char *sql, size_t len, struct plan_box *b, const char *what,
		      bool one_is_enough)
{
	struct plan_box *ib = plan_box_new();
	struct router_plan *ip;
	int rc;

	if (!ib)
		return -1;
	if (plan_statement(schema, inner, sql, len, true, ib) < 0) {
		plan_box_free(ib);
		return -1;
	}
	ip = &ib->plan;
	b->plan.writes = ip->writes;
	b->hintable = ib->hintable;
	b->has_hint_type = ib->has_hint_type;
	b->hint_type = ib->hint_type;
	switch (ip->route) {
	case ROUTER_REFUSE:
		memcpy(b->plan.sqlstate, ip->sqlstate, 6);
		b->plan.route = ROUTER_REFUSE;
		b->plan.message = ip->message;
		ip->message = NULL;
		rc = 0;
		break;
	case ROUTER_ANY:
		b->plan.route = ROUTER_ANY;
		rc = 0;
		break;
	case ROUTER_SHARDS:
	case ROUTER_BIND:
		if (ip->route == ROUTER_SHARDS ? popcount(ip->shards) == 1 : ip->n_keys == 1) {
			b->plan.route = ip->route;
			b->plan.shards = ip->shards;
			b->plan.keys = ip->keys;
			b->plan.n_keys = ip->n_keys;
			ip->keys = NULL;
			ip->n_keys = 0;
			rc = 0;
			break;
		}
		/* fall through */
	default:
		if (one_is_enough && !ip->writes) {
			b->plan.route = ROUTER_ANY;
			rc = 0;
		} else {
			rc = plan_refuse(b, "0A000", "%s over several shards is not supported: %s",
					 what, ROUTE_HOW);
		}
		break;
	}
	plan_box_free(ib);
	return rc;
}

static bool explain_analyze(const PgQuery__ExplainStmt *e)
{
	for (size_t i = 0; i < e->n_options; i++) {
		const PgQuery__Node *o = e->options[i];
		const PgQuery__Node *arg;
		if (o->node_case != PG_QUERY__NODE__NODE_DEF_ELEM || !o->def_elem->defname
		    || strcmp(o->def_elem->defname, "analyze") != 0)
			continue;
		arg = o->def_elem->arg;
		if (!arg)
			return true;
		/* only a clear "false", "off" or 0 turns it off */
		if (arg->node_case == PG_QUERY__NODE__NODE_BOOLEAN)
			return arg->boolean->boolval;
		if (arg->node_case == PG_QUERY__NODE__NODE_INTEGER)
			return arg->integer->ival != 0;
		if (arg->node_case == PG_QUERY__NODE__NODE_STRING)
			return strcmp(arg->string->sval, "false") != 0
				&& strcmp(arg->string->sval, "off") != 0
				&& strcmp(arg->string->sval, "0") != 0;
		return true;
	}
	return false;
}

static int plan_tx(const PgQuery__TransactionStmt *t, struct plan_box *b)
{
	struct router_plan *p = &b->plan;

	b->hintable = false;
	p->route = ROUTER_TX;
	switch (t->kind) {
	case PG_QUERY__TRANSACTION_STMT_KIND__TRANS_STMT_BEGIN:
	case PG_QUERY__TRANSACTION_STMT_KIND__TRANS_STMT_START:
		p->tx = ROUTER_TX_BEGIN;
		break;
	case PG_QUERY__TRANSACTION_STMT_KIND__TRANS_STMT_COMMIT:
	case PG_QUERY__TRANSACTION_STMT_KIND__TRANS_STMT_ROLLBACK:
		if (t->chain)
			return plan_refuse(
				b, "0A000",
				"%s AND CHAIN is not supported on a sharded database: "
				"end the transaction, then BEGIN",
				t->kind == PG_QUERY__TRANSACTION_STMT_KIND__TRANS_STMT_COMMIT
					? "COMMIT"
					: "ROLLBACK");
		p->tx = t->kind == PG_QUERY__TRANSACTION_STMT_KIND__TRANS_STMT_COMMIT
			? ROUTER_TX_COMMIT
			: ROUTER_TX_ROLLBACK;
		break;
	case PG_QUERY__TRANSACTION_STMT_KIND__TRANS_STMT_SAVEPOINT:
	case PG_QUERY__TRANSACTION_STMT_KIND__TRANS_STMT_RELEASE:
	case PG_QUERY__TRANSACTION_STMT_KIND__TRANS_STMT_ROLLBACK_TO:
		p->tx = ROUTER_TX_SAVEPOINT;
		break;
	default: /* PREPARE TRANSACTION, COMMIT/ROLLBACK PREPARED */
		p->tx = ROUTER_TX_PREPARED;
		break;
	}
	return 0;
}

/* A constant's text (SET x = 5, = 'v', = 1.5), or NULL. */
static const char *const_text(const PgQuery__Node *n, char *buf, size_t size)
{
	if (!n || n->node_case != PG_QUERY__NODE__NODE_A_CONST || n->a_const->isnull)
		return NULL;
	switch (n->a_const->val_case) {
	case PG_QUERY__A__CONST__VAL_IVAL:
		snprintf(buf, size, "%d", n->a_const->ival->ival);
		return buf;
	case PG_QUERY__A__CONST__VAL_FVAL:
		return n->a_const->fval->fval;
	case PG_QUERY__A__CONST__VAL_SVAL:
		return n->a_const->sval->sval;
	default:
		return NULL;
	}
}

int plan_shard_number(const char *s, int n_shards)
{
	char *end;
	long v;

	if (!s)
		return -1;
	errno = 0;
	v = strtol(s, &end, 10);
	while (*end == ' ')
		end++;
	if (errno || end == s || *end || v < 0 || v >= n_shards)
		return -1;
	return (int)v;
}

static int plan_set(const struct router_schema *schema, const PgQuery__VariableSetStmt *s,
		    struct plan_box *b)
{
	struct router_plan *p = &b->plan;
	bool shard = s->name && strcmp(s->name, "pgcrab.shard") == 0;
	const char *value;
	char buf[16];

	if (!shard && !(s->name && strcmp(s->name, "pgcrab.sharding_key") == 0)) {
		p->route = ROUTER_ANY; /* the server's own settings */
		return 0;
	}
	b->hintable = false;
	if (s->is_local)
		return plan_refuse(b, "0A000", "SET LOCAL %s is not supported: use SET", s->name);
	switch (s->kind) {
	case PG_QUERY__VARIABLE_SET_KIND__VAR_SET_DEFAULT:
	case PG_QUERY__VARIABLE_SET_KIND__VAR_RESET:
		p->route = ROUTER_SET;
		p->set_shard = shard;
		p->set_reset = true;
		return 0;
	case PG_QUERY__VARIABLE_SET_KIND__VAR_SET_VALUE:
		break;
	default:
		return plan_refuse(b, "0A000", "this form of SET %s is not supported", s->name);
	}
	value = s->n_args == 1 ? const_text(s->args[0], buf, sizeof(buf)) : NULL;
	if (!value)
		return plan_refuse(b, "22023", "SET %s takes one value", s->name);
	if (shard && plan_shard_number(value, schema->n_shards) < 0)
		return plan_refuse(b, "22023",
				   "invalid value for pgcrab.shard: \"%s\" (the database has %d "
				   "shards, 0 to %d)",
				   value, schema->n_shards, schema->n_shards - 1);
	p->route = ROUTER_SET;
	p->set_shard = shard;
	return (p->set_value = strdup(value)) ? 0 : -1;
}

static int plan_copy_stmt(const struct router_schema *schema, const PgQuery__Node *n,
			  const char *sql, size_t len, struct plan_box *b)
{
	const PgQuery__CopyStmt *c = n->copy_stmt;
	int t;

	b->rows = !c->is_from;
	if (c->query)
		return plan_inner(schema, c->query, sql, len, b, "COPY (query) TO", false);
	t = plan_table_of(schema, c->relation);
	set_hint_type(schema, b, t);
	b->plan.writes = c->is_from;
	if (t < 0) {
		b->plan.route = c->is_from ? ROUTER_ALL : ROUTER_ANY;
		return 0;
	}
	if (c->is_from)
		return plan_refuse(b, "0A000",
				   "COPY into sharded table \"%s\" is not supported yet: use INSERT, "
				   "or route it with /* pgcrab_shard: N */ or SET pgcrab.shard",
				   schema->tables[t].name);
	/* COPY table TO: every shard's rows, one after the other (a table's
	 * rows have no order to keep) */
	b->plan.route = ROUTER_ALL;
	return 0;
}

static int plan_prepare(const struct router_schema *schema, const PgQuery__Node *n,
			struct plan_box *b)
{
	struct plan_walk w;
	int rc = 0;

	if (plan_walk(&w, schema, n, NULL) < 0) {
		plan_walk_free(&w);
		return -1;
	}
	if (w.n_sharded > 0) {
		b->hintable = false;
		rc = plan_refuse(b, "0A000",
				 "PREPARE of a statement on sharded table \"%s\" is not supported: "
				 "use the protocol's Parse and Bind (any driver's prepared "
				 "statements)",
				 table_name(schema, w.first_table));
	} else {
		b->plan.route = ROUTER_ALL; /* so that EXECUTE finds it on any shard */
	}
	plan_walk_free(&w);
	return rc;
}

/* The first sharded table a statement names, or -1; -2 out of memory.
 * Sets the hint type. */
static int sharded_named(const struct router_schema *schema, const PgQuery__Node *n,
			 struct plan_box *b)
{
	struct plan_walk w;
	int t;

	if (plan_walk(&w, schema, n, NULL) < 0) {
		plan_walk_free(&w);
		return -2;
	}
	t = w.first_table;
	set_hint_type(schema, b, t);
	plan_walk_free(&w);
	return t;
}

static bool reindex_outside_tx(const PgQuery__ReindexStmt *r)
{
	if (r->kind == PG_QUERY__REINDEX_OBJECT_TYPE__REINDEX_OBJECT_SCHEMA
	    || r->kind == PG_QUERY__REINDEX_OBJECT_TYPE__REINDEX_OBJECT_SYSTEM
	    || r->kind == PG_QUERY__REINDEX_OBJECT_TYPE__REINDEX_OBJECT_DATABASE)
		return true;
	for (size_t i = 0; i < r->n_params; i++) {
		const PgQuery__Node *o = r->params[i];
		if (o->node_case == PG_QUERY__NODE__NODE_DEF_ELEM && o->def_elem->defname
		    && strcmp(o->def_elem->defname, "concurrently") == 0)
			return true;
	}
	return false;
}

int plan_statement(const struct router_schema *schema, const void *stmt, const char *sql,
		   size_t len, bool multi, struct plan_box *b)
{
	const PgQuery__Node *n = stmt;
	struct router_plan *p = &b->plan;

	b->hintable = true;
	switch (n->node_case) {
	case PG_QUERY__NODE__NODE_SELECT_STMT:
	case PG_QUERY__NODE__NODE_UPDATE_STMT:
	case PG_QUERY__NODE__NODE_DELETE_STMT:
		return plan_rows(schema, n, sql, len, multi, b);
	case PG_QUERY__NODE__NODE_INSERT_STMT:
		return plan_insert_stmt(schema, n, sql, len, multi, b);
	case PG_QUERY__NODE__NODE_MERGE_STMT: {
		/* its source rows may sit on other shards than its target's */
		int t = plan_table_of(schema, n->merge_stmt->relation);
		p->writes = true;
		set_hint_type(schema, b, t);
		if (t >= 0)
			return plan_refuse(b, "0A000",
					   "MERGE into sharded table \"%s\" is not supported: use "
					   "INSERT ... ON CONFLICT, UPDATE or DELETE, or route it "
					   "with /* pgcrab_shard: N */ or SET pgcrab.shard",
					   schema->tables[t].name);
		if ((t = sharded_named(schema, n, b)) < -1)
			return -1;
		if (t >= 0)
			return plan_refuse(b, "0A000",
					   "MERGE that reads sharded table \"%s\" is not supported: "
					   "route it with /* pgcrab_shard: N */ or SET pgcrab.shard",
					   schema->tables[t].name);
		p->route = ROUTER_ALL;
		return 0;
	}
	case PG_QUERY__NODE__NODE_TRANSACTION_STMT:
		return plan_tx(n->transaction_stmt, b);
	case PG_QUERY__NODE__NODE_VARIABLE_SET_STMT:
		return plan_set(schema, n->variable_set_stmt, b);
	case PG_QUERY__NODE__NODE_EXPLAIN_STMT:
		b->rows = true;
		if (!n->explain_stmt->query) {
			p->route = ROUTER_ANY;
			return 0;
		}
		/* EXPLAIN ANALYZE runs it: a write must reach all its shards */
		return plan_inner(schema, n->explain_stmt->query, sql, len, b,
				  "EXPLAIN ANALYZE of a write", !explain_analyze(n->explain_stmt));
	case PG_QUERY__NODE__NODE_DECLARE_CURSOR_STMT:
		return plan_inner(schema, n->declare_cursor_stmt->query, sql, len, b,
				  "DECLARE CURSOR", false);
	case PG_QUERY__NODE__NODE_COPY_STMT:
		return plan_copy_stmt(schema, n, sql, len, b);
	case PG_QUERY__NODE__NODE_PREPARE_STMT:
		return plan_prepare(schema, n, b);
	case PG_QUERY__NODE__NODE_VARIABLE_SHOW_STMT:
	case PG_QUERY__NODE__NODE_FETCH_STMT:
	case PG_QUERY__NODE__NODE_EXECUTE_STMT:
		b->rows = true;
		p->route = ROUTER_ANY;
		return 0;
	case PG_QUERY__NODE__NODE_DISCARD_STMT:
	case PG_QUERY__NODE__NODE_CLOSE_PORTAL_STMT:
	case PG_QUERY__NODE__NODE_LISTEN_STMT:
	case PG_QUERY__NODE__NODE_UNLISTEN_STMT:
	case PG_QUERY__NODE__NODE_NOTIFY_STMT:
	case PG_QUERY__NODE__NODE_LOAD_STMT:
	case PG_QUERY__NODE__NODE_CONSTRAINTS_SET_STMT:
		p->route = ROUTER_ANY;
		return 0;
	case PG_QUERY__NODE__NODE_DEALLOCATE_STMT: /* PREPARE went to every shard */
	case PG_QUERY__NODE__NODE_CHECK_POINT_STMT:
	case PG_QUERY__NODE__NODE_LOCK_STMT:
		p->route = ROUTER_ALL;
		return 0;
	case PG_QUERY__NODE__NODE_DO_STMT: /* may do anything */
	case PG_QUERY__NODE__NODE_CALL_STMT:
		p->route = ROUTER_ALL;
		p->writes = true;
		return 0;
	case PG_QUERY__NODE__NODE_VACUUM_STMT: /* VACUUM, ANALYZE */
		p->route = ROUTER_ALL;
		p->no_tx_block = n->vacuum_stmt->is_vacuumcmd;
		return 0;
	case PG_QUERY__NODE__NODE_REINDEX_STMT:
		p->route = ROUTER_ALL;
		p->no_tx_block = reindex_outside_tx(n->reindex_stmt);
		return 0;
	case PG_QUERY__NODE__NODE_CLUSTER_STMT:
		p->route = ROUTER_ALL;
		p->no_tx_block = !n->cluster_stmt->relation;
		return 0;
	case PG_QUERY__NODE__NODE_ALTER_SYSTEM_STMT:
		p->route = ROUTER_ALL;
		p->no_tx_block = true;
		return 0;
	case PG_QUERY__NODE__NODE_CREATEDB_STMT:
	case PG_QUERY__NODE__NODE_DROPDB_STMT:
	case PG_QUERY__NODE__NODE_CREATE_TABLE_SPACE_STMT:
	case PG_QUERY__NODE__NODE_DROP_TABLE_SPACE_STMT:
	case PG_QUERY__NODE__NODE_CREATE_SUBSCRIPTION_STMT:
	case PG_QUERY__NODE__NODE_DROP_SUBSCRIPTION_STMT:
		p->no_tx_block = true;
		break;
	case PG_QUERY__NODE__NODE_INDEX_STMT:
		p->no_tx_block = n->index_stmt->concurrent;
		break;
	case PG_QUERY__NODE__NODE_DROP_STMT:
		p->no_tx_block = n->drop_stmt->concurrent;
		break;
	default:
		break;
	}
	if (sharded_named(schema, n, b) < -1) /* for a pgcrab_key hint's type */
		return -1;
	/* DDL and whatever else changes the schema: every shard */
	p->route = ROUTER_ALL;
	p->ddl = true;
	p->writes = true;
	return 0;
}
