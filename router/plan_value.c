/* Key values as the parse tree gives them: which expressions are a value
 * the router can hash (a constant, a $n, under casts that keep the value),
 * their text form, and the shard of a key made of literals. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "router/plan_tree.h"

const char *plan_node_str(const PgQuery__Node *n)
{
	return n && n->node_case == PG_QUERY__NODE__NODE_STRING && n->string ? n->string->sval
									     : NULL;
}

int plan_table_of(const struct router_schema *schema, const PgQuery__RangeVar *rv)
{
	if (!rv || !rv->relname)
		return -1;
	for (int i = 0; i < schema->n_tables; i++) {
		const struct router_table *t = &schema->tables[i];
		/* an unqualified name may be the sharded table (through the
		 * search_path): it is taken for it */
		if (strcmp(t->name, rv->relname) == 0
		    && (!t->schema || !rv->schemaname || !*rv->schemaname
			|| strcmp(t->schema, rv->schemaname) == 0))
			return i;
	}
	return -1;
}

/* A cast the server would apply without changing which row matches: to
 * an integer type for an integer key; text or varchar for a text key (not
 * bpchar, whose cast drops trailing blanks); uuid to uuid. No typmods
 * (varchar(3) cuts), no arrays. */
static bool cast_keeps(const PgQuery__TypeName *tn, enum router_type t)
{
	const char *name;

	if (!tn || tn->n_names == 0 || tn->n_typmods || tn->n_array_bounds || tn->setof
	    || tn->pct_type || !(name = plan_node_str(tn->names[tn->n_names - 1])))
		return false;
	switch (t) {
	case ROUTER_INT2:
	case ROUTER_INT4:
	case ROUTER_INT8:
		return strcmp(name, "int2") == 0 || strcmp(name, "int4") == 0
			|| strcmp(name, "int8") == 0;
	case ROUTER_TEXT:
	case ROUTER_VARCHAR:
		return strcmp(name, "text") == 0 || strcmp(name, "varchar") == 0;
	case ROUTER_BPCHAR:
		return strcmp(name, "text") == 0 || strcmp(name, "varchar") == 0
			|| strcmp(name, "bpchar") == 0;
	case ROUTER_UUID:
		return strcmp(name, "uuid") == 0;
	}
	return false;
}

/* "123" or "-123": a float token that is really a (big) integer */
static bool integer_text(const char *s)
{
	if (!s)
		return false;
	if (*s == '-')
		s++;
	if (!*s)
		return false;
	for (; *s; s++)
		if (*s < '0' || *s > '9')
			return false;
	return true;
}

static bool numeric_const(const PgQuery__Node *n)
{
	if (!n || n->node_case != PG_QUERY__NODE__NODE_A_CONST || n->a_const->isnull)
		return false;
	return n->a_const->val_case == PG_QUERY__A__CONST__VAL_IVAL
		|| (n->a_const->val_case == PG_QUERY__A__CONST__VAL_FVAL
		    && integer_text(n->a_const->fval->fval));
}

/* -(5) is folded by the parser; `- x` on a constant it did not fold */
static const PgQuery__Node *negated(const PgQuery__Node *n)
{
	const PgQuery__AExpr *ae;
	const char *op;

	if (n->node_case != PG_QUERY__NODE__NODE_A_EXPR)
		return NULL;
	ae = n->a_expr;
	op = ae->n_name == 1 ? plan_node_str(ae->name[0]) : NULL;
	if (ae->kind != PG_QUERY__A__EXPR__KIND__AEXPR_OP || ae->lexpr || !op
	    || strcmp(op, "-") != 0 || !numeric_const(ae->rexpr))
		return NULL;
	return ae->rexpr;
}

bool plan_value_ok(const PgQuery__Node *n, enum router_type t)
{
	while (n && n->node_case == PG_QUERY__NODE__NODE_TYPE_CAST) {
		if (!cast_keeps(n->type_cast->type_name, t))
			return false;
		n = n->type_cast->arg;
	}
	if (!n)
		return false;
	switch (n->node_case) {
	case PG_QUERY__NODE__NODE_PARAM_REF:
		return n->param_ref->number >= 1;
	case PG_QUERY__NODE__NODE_A_CONST:
		return n->a_const->isnull || numeric_const(n)
			|| n->a_const->val_case == PG_QUERY__A__CONST__VAL_SVAL;
	case PG_QUERY__NODE__NODE_A_EXPR:
		return negated(n) != NULL;
	default:
		return false;
	}
}

int plan_value(const PgQuery__Node *n, enum router_type t, struct router_key_src *src)
{
	const PgQuery__Node *neg;
	char buf[16];
	const char *text;

	memset(src, 0, sizeof(*src));
	src->type = t;
	while (n->node_case == PG_QUERY__NODE__NODE_TYPE_CAST)
		n = n->type_cast->arg;
	if (n->node_case == PG_QUERY__NODE__NODE_PARAM_REF) {
		src->param = n->param_ref->number;
		return 0;
	}
	neg = negated(n);
	if (neg)
		n = neg;
	if (n->a_const->isnull)
		return 0;
	switch (n->a_const->val_case) {
	case PG_QUERY__A__CONST__VAL_IVAL:
		snprintf(buf, sizeof(buf), "%d", n->a_const->ival->ival);
		text = buf;
		break;
	case PG_QUERY__A__CONST__VAL_FVAL:
		text = n->a_const->fval->fval;
		break;
	default:
		text = n->a_const->sval->sval;
		break;
	}
	if (neg) {
		/* - -5 is 5 */
		size_t len = strlen(text);
		if (!(src->literal = malloc(len + 2)))
			return -1;
		if (text[0] == '-')
			memcpy(src->literal, text + 1, len);
		else {
			src->literal[0] = '-';
			memcpy(src->literal + 1, text, len + 1);
		}
		return 0;
	}
	return (src->literal = strdup(text ? text : "")) ? 0 : -1;
}

int plan_literal_shard(const struct router_key *k, int n_shards)
{
	const char *values[ROUTER_MAX_KEY_COLS];
	enum router_type types[ROUTER_MAX_KEY_COLS];

	for (int c = 0; c < k->n_cols; c++) {
		values[c] = k->cols[c].literal;
		types[c] = k->cols[c].type;
	}
	return router_key_shard(k->n_cols, types, values, n_shards);
}

void plan_keys_free_one(struct router_key *k, int n)
{
	for (int c = 0; c < n; c++) {
		free(k->cols[c].literal);
		k->cols[c].literal = NULL;
	}
}

void plan_keys_free(struct router_key *keys, int n)
{
	for (int i = 0; i < n; i++)
		plan_keys_free_one(&keys[i], keys[i].n_cols);
	free(keys);
}

int plan_keys_add(struct plan_keys *ks, const struct router_key *k)
{
	bool literal = true;

	for (int c = 0; c < k->n_cols; c++)
		if (k->cols[c].param)
			literal = false;
	if (literal) {
		int shard = plan_literal_shard(k, ks->n_shards);
		struct router_key copy = *k;
		if (shard < 0) {
			plan_keys_free_one(&copy, copy.n_cols);
			return 1;
		}
		ks->mask |= UINT64_C(1) << shard;
	} else {
		ks->has_param = true;
	}
	if (ks->n == ks->cap) {
		int cap = ks->cap ? 2 * ks->cap : 4;
		struct router_key *grown = realloc(ks->keys, cap * sizeof(*grown));
		if (!grown) {
			struct router_key copy = *k;
			plan_keys_free_one(&copy, copy.n_cols);
			return -1;
		}
		ks->keys = grown;
		ks->cap = cap;
	}
	ks->keys[ks->n++] = *k;
	return 0;
}

void plan_keys_route(struct plan_keys *ks, struct router_plan *p)
{
	if (ks->has_param) {
		p->route = ROUTER_BIND;
		p->keys = ks->keys;
		p->n_keys = ks->n;
	} else {
		p->route = ROUTER_SHARDS;
		/* no key at all (e.g. only `k = NULL`... never empty in
		 * practice): one shard answers as well as any */
		p->shards = ks->mask ? ks->mask : 1;
		plan_keys_free(ks->keys, ks->n);
	}
	ks->keys = NULL;
	ks->n = ks->cap = 0;
	ks->mask = 0;
	ks->has_param = false;
}

void plan_key_names(const struct router_table *t, char *out, size_t size)
{
	size_t used = 0;

	out[0] = '\0';
	for (int c = 0; c < t->n_cols && used < size; c++) {
		int n = snprintf(out + used, size - used, "%s%s", c ? ", " : "", t->cols[c]);
		if (n < 0)
			break;
		used += (size_t)n;
	}
}
