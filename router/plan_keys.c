/* Where a statement's sharded tables are named and which keys restrict
 * them. One walk over the statement's tree visits every node; each SELECT,
 * UPDATE and DELETE it meets is a scope: the tables of its FROM (with its
 * JOINs), and the conditions that restrict them, the top-level AND-ed terms
 * of its WHERE and of its inner joins' ON (an outer join's ON restricts only
 * its nullable side). A term `column = value`, `column IN (values)` or
 * `column IS NULL` on a key column gives that column its possible values;
 * `a.k = b.k` passes them from one table to the other. A sharded table with
 * values for every key column yields one key per combination; one without
 * (or named outside any scope) leaves the statement keyless. Anything not
 * understood only loses a restriction, so the keys found are always a
 * superset of the rows the statement can touch. */
#include <stdlib.h>
#include <string.h>

#include "router/plan_tree.h"

#define MAX_OCC   32 /* tables in one FROM */
#define MAX_FACTS 64 /* key terms in one scope */
#define MAX_DEPTH 64 /* nested JOINs and ANDs followed */

struct occ {
	const PgQuery__RangeVar *rv;
	int table; /* -1: not sharded (or a CTE) */
};

/* occ.col = one of vals, or occ.col = occ2.col2 */
struct fact {
	int occ, col;
	int occ2, col2; /* -1: a value fact */
	bool ok, ok2;   /* may this side take values from the other (it is restricted) */
	const PgQuery__Node *const *vals;
	size_t n_vals;
};

struct scope {
	struct occ occ[MAX_OCC];
	int n_occ;
	struct fact fact[MAX_FACTS];
	int n_fact;
	bool overflow;
	const struct plan_cte *ctes;
};

/* `k IS NULL` restricts k to NULL, as a literal NULL would */
static const PgQuery__AConst null_const = { PROTOBUF_C_MESSAGE_INIT(
						    &pg_query__a__const__descriptor),
					    1,
					    -1,
					    PG_QUERY__A__CONST__VAL__NOT_SET,
					    { 0 } };
static const PgQuery__Node null_node = { PROTOBUF_C_MESSAGE_INIT(&pg_query__node__descriptor),
					 PG_QUERY__NODE__NODE_A_CONST,
					 { .a_const = (PgQuery__AConst *)&null_const } };
static const PgQuery__Node *const null_vals[1] = { &null_node };

bool plan_cte_visible(const struct plan_cte *c, const PgQuery__RangeVar *rv)
{
	if (rv->schemaname && *rv->schemaname)
		return false;
	for (; c; c = c->next)
		if (strcmp(c->name, rv->relname) == 0)
			return true;
	return false;
}

static int key_col(const struct router_table *t, const char *name)
{
	for (int c = 0; c < t->n_cols; c++)
		if (strcmp(t->cols[c], name) == 0)
			return c;
	return -1;
}

/* The sharded table (its index in the scope) and key column a column
 * reference names, or false: not a key column, ambiguous, or another
 * scope's. */
static bool resolve(const struct plan_walk *w, const struct scope *sc, const PgQuery__Node *n,
		    int *occ, int *col)
{
	const PgQuery__ColumnRef *cr;
	const char *f[3];
	int found = -1, found_col = -1;

	if (!n || n->node_case != PG_QUERY__NODE__NODE_COLUMN_REF)
		return false;
	cr = n->column_ref;
	if (cr->n_fields < 1 || cr->n_fields > 3)
		return false;
	for (size_t i = 0; i < cr->n_fields; i++)
		if (!(f[i] = plan_node_str(cr->fields[i])))
			return false;
	for (int i = 0; i < sc->n_occ; i++) {
		const struct occ *o = &sc->occ[i];
		const PgQuery__RangeVar *rv = o->rv;
		int c;

		if (o->table < 0
		    || (c = key_col(&w->schema->tables[o->table], f[cr->n_fields - 1])) < 0)
			continue;
		if (cr->n_fields >= 2) {
			const char *qual = f[cr->n_fields - 2];
			if (rv->alias ? strcmp(rv->alias->aliasname, qual) != 0
				      : strcmp(rv->relname, qual) != 0)
				continue;
		}
		if (cr->n_fields == 3
		    && (rv->alias
			|| (rv->schemaname && *rv->schemaname && strcmp(rv->schemaname, f[0]) != 0)))
			continue;
		if (found >= 0)
			return false; /* the server would call it ambiguous */
		found = i;
		found_col = c;
	}
	if (found < 0)
		return false;
	*occ = found;
	*col = found_col;
	return true;
}

static enum router_type occ_type(const struct plan_walk *w, const struct scope *sc, int occ,
				 int col)
{
	return w->schema->tables[sc->occ[occ].table].types[col];
}

static void add_fact(struct scope *sc, const struct fact *f)
{
	if (sc->n_fact < MAX_FACTS) /* a term left out only loses a restriction */
		sc->fact[sc->n_fact++] = *f;
}

/* A column compared with values, if it is a key column of a table in
 * [lo, hi) and every value is usable. */
static void value_fact(const struct plan_walk *w, struct scope *sc, const PgQuery__Node *colref,
		       const PgQuery__Node *const *vals, size_t n, int lo, int hi)
{
	struct fact f = { .occ2 = -1, .col2 = -1, .vals = vals, .n_vals = n };

	if (!resolve(w, sc, colref, &f.occ, &f.col) || f.occ < lo || f.occ >= hi)
		return;
	for (size_t i = 0; i < n; i++)
		if (!plan_value_ok(vals[i], occ_type(w, sc, f.occ, f.col)))
			return;
	add_fact(sc, &f);
}

static bool is_eq(const PgQuery__AExpr *ae)
{
	const char *op = ae->n_name == 1 ? plan_node_str(ae->name[0]) : NULL;
	return op && strcmp(op, "=") == 0;
}

static void add_terms(const struct plan_walk *w, struct scope *sc, const PgQuery__Node *n, int lo,
		      int hi, int depth)
{
	if (!n || depth > MAX_DEPTH)
		return;
	switch (n->node_case) {
	case PG_QUERY__NODE__NODE_BOOL_EXPR:
		if (n->bool_expr->boolop == PG_QUERY__BOOL_EXPR_TYPE__AND_EXPR)
			for (size_t i = 0; i < n->bool_expr->n_args; i++)
				add_terms(w, sc, n->bool_expr->args[i], lo, hi, depth + 1);
		return;
	case PG_QUERY__NODE__NODE_NULL_TEST:
		if (n->null_test->nulltesttype == PG_QUERY__NULL_TEST_TYPE__IS_NULL
		    && !n->null_test->argisrow)
			value_fact(w, sc, n->null_test->arg, null_vals, 1, lo, hi);
		return;
	case PG_QUERY__NODE__NODE_A_EXPR:
		break;
	default:
		return;
	}

	const PgQuery__AExpr *ae = n->a_expr;
	if (!is_eq(ae) || !ae->lexpr || !ae->rexpr)
		return;
	if (ae->kind == PG_QUERY__A__EXPR__KIND__AEXPR_IN) {
		if (ae->rexpr->node_case == PG_QUERY__NODE__NODE_LIST)
			value_fact(w, sc, ae->lexpr,
				   (const PgQuery__Node *const *)ae->rexpr->list->items,
				   ae->rexpr->list->n_items, lo, hi);
		return;
	}
	if (ae->kind != PG_QUERY__A__EXPR__KIND__AEXPR_OP)
		return;

	struct fact f = { 0 };
	bool l = resolve(w, sc, ae->lexpr, &f.occ, &f.col);
	bool r = resolve(w, sc, ae->rexpr, &f.occ2, &f.col2);
	if (l && r) {
		f.ok = f.occ >= lo && f.occ < hi;
		f.ok2 = f.occ2 >= lo && f.occ2 < hi;
		add_fact(sc, &f);
	} else if (ae->lexpr->node_case == PG_QUERY__NODE__NODE_COLUMN_REF) {
		value_fact(w, sc, ae->lexpr, (const PgQuery__Node *const *)&ae->rexpr, 1, lo, hi);
	} else if (ae->rexpr->node_case == PG_QUERY__NODE__NODE_COLUMN_REF) {
		value_fact(w, sc, ae->rexpr, (const PgQuery__Node *const *)&ae->lexpr, 1, lo, hi);
	}
}

static void add_occ(struct plan_walk *w, struct scope *sc, const PgQuery__RangeVar *rv)
{
	struct occ *o;

	if (sc->n_occ == MAX_OCC) {
		sc->overflow = true;
		return;
	}
	o = &sc->occ[sc->n_occ++];
	o->rv = rv;
	o->table = plan_cte_visible(sc->ctes, rv) ? -1 : plan_table_of(w->schema, rv);
	if (plan_walk_claim(w, rv) < 0)
		sc->overflow = true;
}

/* A FROM item: its tables into the scope, its join conditions as terms. */
static void add_from(struct plan_walk *w, struct scope *sc, const PgQuery__Node *n, int depth)
{
	const PgQuery__JoinExpr *j;
	int first, mid, last, lo, hi;

	if (!n)
		return;
	if (n->node_case == PG_QUERY__NODE__NODE_RANGE_VAR) {
		add_occ(w, sc, n->range_var);
		return;
	}
	if (n->node_case != PG_QUERY__NODE__NODE_JOIN_EXPR)
		return; /* subqueries and functions: scopes of their own, or no tables */
	if (depth > MAX_DEPTH) {
		sc->overflow = true;
		return;
	}
	j = n->join_expr;
	first = sc->n_occ;
	add_from(w, sc, j->larg, depth + 1);
	mid = sc->n_occ;
	add_from(w, sc, j->rarg, depth + 1);
	last = sc->n_occ;
	switch (j->jointype) {
	case PG_QUERY__JOIN_TYPE__JOIN_INNER:
		lo = first;
		hi = last;
		break;
	case PG_QUERY__JOIN_TYPE__JOIN_LEFT:
		lo = mid;
		hi = last;
		break;
	case PG_QUERY__JOIN_TYPE__JOIN_RIGHT:
		lo = first;
		hi = mid;
		break;
	default: /* FULL: neither side is restricted */
		return;
	}
	add_terms(w, sc, j->quals, lo, hi, 0);
	/* USING (k): each side's k (one table's on each side) are equal */
	for (size_t u = 0; u < j->n_using_clause; u++) {
		const char *name = plan_node_str(j->using_clause[u]);
		struct fact f = { .occ = -1, .occ2 = -1 };
		int n_left = 0, n_right = 0;

		for (int i = first; i < last && name; i++) {
			const struct occ *o = &sc->occ[i];
			int c;
			if (o->table < 0 || (c = key_col(&w->schema->tables[o->table], name)) < 0)
				continue;
			if (i < mid) {
				n_left++;
				f.occ = i;
				f.col = c;
			} else {
				n_right++;
				f.occ2 = i;
				f.col2 = c;
			}
		}
		if (n_left == 1 && n_right == 1) {
			f.ok = f.occ >= lo && f.occ < hi;
			f.ok2 = f.occ2 >= lo && f.occ2 < hi;
			add_fact(sc, &f);
		}
	}
}

struct vset {
	const PgQuery__Node *const *vals;
	size_t n;
	bool have;
};

/* Each sharded table's keys, or the statement is keyless. */
static int solve(struct plan_walk *w, struct scope *sc)
{
	struct vset set[MAX_OCC][ROUTER_MAX_KEY_COLS];
	bool changed = true;

	memset(set, 0, sizeof(set));
	for (int i = 0; i < sc->n_fact; i++) {
		const struct fact *f = &sc->fact[i];
		struct vset *v;
		if (f->occ2 >= 0)
			continue;
		v = &set[f->occ][f->col];
		if (!v->have || f->n_vals < v->n)
			*v = (struct vset){ f->vals, f->n_vals, true };
	}
	for (int round = 0; changed && round <= sc->n_fact; round++) {
		changed = false;
		for (int i = 0; i < sc->n_fact; i++) {
			const struct fact *f = &sc->fact[i];
			struct vset *a, *b;
			if (f->occ2 < 0)
				continue;
			a = &set[f->occ][f->col];
			b = &set[f->occ2][f->col2];
			if (a->have && !b->have && f->ok2) {
				*b = *a;
				changed = true;
			} else if (b->have && !a->have && f->ok) {
				*a = *b;
				changed = true;
			}
		}
	}

	for (int i = 0; i < sc->n_occ; i++) {
		const struct occ *o = &sc->occ[i];
		const struct router_table *t;
		size_t total = 1, idx[ROUTER_MAX_KEY_COLS] = { 0 };
		bool keyed = !sc->overflow;

		if (o->table < 0)
			continue;
		t = &w->schema->tables[o->table];
		for (int c = 0; c < t->n_cols && keyed; c++) {
			if (!set[i][c].have || set[i][c].n == 0)
				keyed = false;
			else if ((total *= set[i][c].n) > PLAN_MAX_KEYS)
				keyed = false;
		}
		plan_walk_note_table(w, o->table, o->rv->location);
		if (!keyed) {
			plan_walk_unkeyed(w, o->table);
			continue;
		}
		/* every combination of the columns' values */
		for (size_t k = 0; k < total; k++) {
			struct router_key key = { .n_cols = t->n_cols };
			int rc;
			for (int c = 0; c < t->n_cols; c++) {
				if (plan_value(set[i][c].vals[idx[c]], t->types[c], &key.cols[c])
				    < 0) {
					plan_keys_free_one(&key, c);
					return -1;
				}
			}
			rc = plan_keys_add(&w->keys, &key);
			if (rc < 0)
				return -1;
			if (rc > 0) { /* a literal the server would reject: no key, then */
				plan_walk_unkeyed(w, o->table);
				break;
			}
			for (int c = t->n_cols - 1; c >= 0; c--) {
				if (++idx[c] < set[i][c].n)
					break;
				idx[c] = 0;
			}
		}
	}
	return 0;
}

int plan_scope_select(struct plan_walk *w, const PgQuery__SelectStmt *s,
		      const struct plan_cte *ctes)
{
	struct scope *sc = calloc(1, sizeof(*sc));
	int rc;

	if (!sc)
		return -1;
	sc->ctes = ctes;
	for (size_t i = 0; i < s->n_from_clause; i++)
		add_from(w, sc, s->from_clause[i], 0);
	add_terms(w, sc, s->where_clause, 0, sc->n_occ, 0);
	rc = solve(w, sc);
	free(sc);
	return rc;
}

/* UPDATE's target and FROM, DELETE's target and USING */
int plan_scope_modify(struct plan_walk *w, const PgQuery__RangeVar *target,
		      PgQuery__Node *const *from, size_t n_from, const PgQuery__Node *where,
		      const struct plan_cte *ctes)
{
	struct scope *sc = calloc(1, sizeof(*sc));
	int rc;

	if (!sc)
		return -1;
	sc->ctes = ctes;
	if (target)
		add_occ(w, sc, target);
	for (size_t i = 0; i < n_from; i++)
		add_from(w, sc, from[i], 0);
	add_terms(w, sc, where, 0, sc->n_occ, 0);
	rc = solve(w, sc);
	free(sc);
	return rc;
}
