/* A SELECT over several shards: the text each shard runs and how their
 * answers merge (struct router_merge, whose conventions router.h states).
 *
 * The statement is parsed into libpg_query's protobuf tree, checked for
 * what a merge cannot answer right, rewritten (avg split into sum and
 * count, columns the merge needs appended as hidden targets, HAVING and
 * OFFSET taken off, LIMIT raised by the offset) and deparsed. Every
 * `location` in the tree is zeroed first, so that two expressions are the
 * same exactly when their packed bytes are: ORDER BY count(*) finds the
 * target count(*) wherever either was written. Refusals are conservative:
 * a shape whose merge might differ from one database's answer is refused
 * with 0A000 and the reason. */
#include <errno.h>
#include <inttypes.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <pg_query.h>
#include <pg_query/pg_query.pb-c.h>

#include "router/internal.h"

enum { OK = 0, REFUSED = 1, NOMEM = -1 };

#define MAX_RELS         32  /* sharded relations in one FROM */
#define MAX_HAVING_DEPTH 100 /* nesting of HAVING's AND/OR/NOT */

/* One column of the shard's row, while it is being planned. */
struct col {
	enum router_agg agg;
	int count_col;
	uint8_t *key; /* the original expression packed (locations zeroed); NULL: none */
	size_t key_len;
	const char *name; /* the output name ORDER BY sees (visible only; borrowed) */
	bool group;       /* a GROUP BY expression */
};

struct sel {
	const struct router_schema *schema;
	PgQuery__SelectStmt *s;
	struct col *cols;
	int n_cols, cap;
	int n_visible;
	int star_at; /* the first '*' target, -1 if none */
	bool aggregate;
	bool rewritten; /* the shard text differs from the client's */
	char sqlstate[6];
	char *msg;
	bool msg_oom;
};

static int refuse(struct sel *q, const char *sqlstate, const char *fmt, ...)
	__attribute__((format(printf, 3, 4)));

static int refuse(struct sel *q, const char *sqlstate, const char *fmt, ...)
{
	va_list ap;

	if (q->msg || q->msg_oom)
		return REFUSED; /* the first reason stands */
	snprintf(q->sqlstate, sizeof(q->sqlstate), "%s", sqlstate);
	va_start(ap, fmt);
	if (vasprintf(&q->msg, fmt, ap) < 0) {
		q->msg = NULL;
		q->msg_oom = true;
	}
	va_end(ap);
	return q->msg_oom ? NOMEM : REFUSED;
}

/* ---- the tree -------------------------------------------------------------- */

static const char *node_str(const PgQuery__Node *n)
{
	return n && n->node_case == PG_QUERY__NODE__NODE_STRING && n->string ? n->string->sval
									     : NULL;
}

static const char *func_name(const PgQuery__FuncCall *f)
{
	return f->n_funcname ? node_str(f->funcname[f->n_funcname - 1]) : NULL;
}

/* A visitor: 0 goes into the message's children, 1 skips them, 2 ends the walk. */
typedef int (*visit_fn)(ProtobufCMessage *m, void *arg);

/* Visits every message under root (root first), without recursion: a
 * parse tree can be thousands of levels deep. 0 walked, 1 ended by the
 * visitor, -1 out of memory. */
static int walk(ProtobufCMessage *root, visit_fn fn, void *arg)
{
	ProtobufCMessage *local[64], **stack = local, **grown;
	size_t n = 0, cap = sizeof(local) / sizeof(local[0]);
	int rc = 0;

#define PUSH(m)                                                   \
	do {                                                      \
		if (n == cap) {                                   \
			grown = malloc(2 * cap * sizeof(*stack)); \
			if (!grown) {                             \
				rc = -1;                          \
				goto out;                         \
			}                                         \
			memcpy(grown, stack, n * sizeof(*stack)); \
			if (stack != local)                       \
				free(stack);                      \
			stack = grown;                            \
			cap *= 2;                                 \
		}                                                 \
		stack[n++] = (m);                                 \
	} while (0)

	if (root)
		PUSH(root);
	while (n > 0) {
		ProtobufCMessage *m = stack[--n];
		const ProtobufCMessageDescriptor *d = m->descriptor;
		char *base = (char *)m;
		int v = fn(m, arg);

		if (v == 2) {
			rc = 1;
			break;
		}
		if (v == 1)
			continue;
		for (unsigned i = 0; i < d->n_fields; i++) {
			const ProtobufCFieldDescriptor *f = &d->fields[i];

			if (f->type != PROTOBUF_C_TYPE_MESSAGE)
				continue;
			if (f->flags & PROTOBUF_C_FIELD_FLAG_ONEOF) {
				if (*(const uint32_t *)(base + f->quantifier_offset) != f->id)
					continue;
			} else if (f->label == PROTOBUF_C_LABEL_REPEATED) {
				size_t count = *(const size_t *)(base + f->quantifier_offset);
				ProtobufCMessage **arr = *(ProtobufCMessage ***)(base + f->offset);
				for (size_t j = 0; j < count; j++)
					if (arr[j])
						PUSH(arr[j]);
				continue;
			}
			ProtobufCMessage *child = *(ProtobufCMessage **)(base + f->offset);
			if (child)
				PUSH(child);
		}
	}
#undef PUSH
out:
	if (stack != local)
		free(stack);
	return rc;
}

static bool is(const ProtobufCMessage *m, const char *short_name)
{
	/* names, not descriptor addresses: those could be copies made by the
	 * dynamic linker */
	return strcmp(m->descriptor->short_name, short_name) == 0;
}

static int zero_location(ProtobufCMessage *m, void *arg)
{
	const ProtobufCMessageDescriptor *d = m->descriptor;

	(void)arg;
	for (unsigned i = 0; i < d->n_fields; i++)
		if (d->fields[i].type == PROTOBUF_C_TYPE_INT32
		    && strcmp(d->fields[i].name, "location") == 0)
			*(int32_t *)((char *)m + d->fields[i].offset) = 0;
	return 0;
}

/* The node packed: its identity for comparisons (locations are zero). */
static uint8_t *pack_node(const PgQuery__Node *n, size_t *len)
{
	uint8_t *buf;

	*len = pg_query__node__get_packed_size(n);
	buf = malloc(*len ? *len : 1);
	if (buf)
		pg_query__node__pack(n, buf);
	return buf;
}

static PgQuery__Node *unpack_node(const uint8_t *buf, size_t len)
{
	return pg_query__node__unpack(NULL, len, buf);
}

/* Sets a String node's text (freeing the old one as protobuf-c would). */
static int set_str(PgQuery__String *s, const char *text)
{
	char *copy = strdup(text);

	if (!copy)
		return NOMEM;
	if (s->sval && s->sval != protobuf_c_empty_string)
		free(s->sval);
	s->sval = copy;
	return OK;
}

/* f's own name becomes name (pg_catalog.avg -> pg_catalog.sum). */
static int rename_func(PgQuery__FuncCall *f, const char *name)
{
	PgQuery__Node *last = f->funcname[f->n_funcname - 1];
	return set_str(last->string, name);
}

/* ---- what the tree holds ----------------------------------------------------- */

static const struct router_table *sharded_table(const struct router_schema *schema,
						const PgQuery__RangeVar *rv)
{
	if (!rv->relname)
		return NULL;
	for (int i = 0; i < schema->n_tables; i++) {
		const struct router_table *t = &schema->tables[i];
		if (strcmp(t->name, rv->relname) != 0)
			continue;
		/* unqualified: the search path may well find the sharded one */
		if (t->schema && rv->schemaname && *rv->schemaname
		    && strcmp(t->schema, rv->schemaname) != 0)
			continue;
		return t;
	}
	return NULL;
}

struct reads_arg {
	const struct router_schema *schema;
	bool found;
};

static int visit_reads(ProtobufCMessage *m, void *arg)
{
	struct reads_arg *a = arg;

	/* a CTE's name that is also a sharded table's counts: refusing
	 * more than needed, never less */
	if (is(m, "RangeVar") && sharded_table(a->schema, (PgQuery__RangeVar *)m)) {
		a->found = true;
		return 2;
	}
	return 0;
}

/* Whether anything under m reads a sharded table. -1 out of memory. */
static int reads_sharded(struct sel *q, ProtobufCMessage *m)
{
	struct reads_arg a = { q->schema, false };
	if (walk(m, visit_reads, &a) < 0)
		return -1;
	return a.found;
}

static int reads_sharded_list(struct sel *q, PgQuery__Node **items, size_t n)
{
	for (size_t i = 0; i < n; i++) {
		int r = reads_sharded(q, &items[i]->base);
		if (r != 0)
			return r;
	}
	return 0;
}

/* The aggregates a merge can combine, and PostgreSQL's others (refused by
 * name; a user's own aggregate is not known here and is taken for a plain
 * function). */
/* clang-format off */
static const struct {
	const char *name;
	enum router_agg agg;
} mergeable[] = {
	{ "count", ROUTER_AGG_COUNT }, { "sum", ROUTER_AGG_SUM }, { "min", ROUTER_AGG_MIN },
	{ "max", ROUTER_AGG_MAX }, { "avg", ROUTER_AGG_AVG }, { "bool_and", ROUTER_AGG_BOOL_AND },
	{ "bool_or", ROUTER_AGG_BOOL_OR }, { "every", ROUTER_AGG_BOOL_AND },
};

static const char *const other_aggs[] = {
	"array_agg", "string_agg", "json_agg", "jsonb_agg", "json_object_agg", "jsonb_object_agg",
	"json_agg_strict", "jsonb_agg_strict", "json_objectagg", "json_arrayagg", "xmlagg",
	"bit_and", "bit_or", "bit_xor", "stddev", "stddev_pop", "stddev_samp", "variance",
	"var_pop", "var_samp", "corr", "covar_pop", "covar_samp", "regr_avgx", "regr_avgy",
	"regr_count", "regr_intercept", "regr_r2", "regr_slope", "regr_sxx", "regr_sxy",
	"regr_syy", "mode", "percentile_cont", "percentile_disc", "range_agg",
	"range_intersect_agg", "any_value",
};
/* clang-format on */

#define NOT_AGG   (-1)
#define OTHER_AGG (-2)

static int agg_of(const PgQuery__FuncCall *f)
{
	const char *name = func_name(f);

	if (!name)
		return NOT_AGG;
	if (f->agg_within_group)
		return OTHER_AGG;
	for (size_t i = 0; i < sizeof(mergeable) / sizeof(mergeable[0]); i++)
		if (strcmp(name, mergeable[i].name) == 0)
			return (int)mergeable[i].agg;
	for (size_t i = 0; i < sizeof(other_aggs) / sizeof(other_aggs[0]); i++)
		if (strcmp(name, other_aggs[i]) == 0)
			return OTHER_AGG;
	return NOT_AGG;
}

struct find_arg {
	ProtobufCMessage *root;
	bool agg, window, grouping;
};

static int visit_find(ProtobufCMessage *m, void *arg)
{
	struct find_arg *a = arg;

	/* a subquery's aggregates are its own */
	if (m != a->root && is(m, "SelectStmt"))
		return 1;
	if (is(m, "GroupingFunc"))
		a->grouping = true;
	if (is(m, "FuncCall")) {
		const PgQuery__FuncCall *f = (const PgQuery__FuncCall *)m;
		if (f->over)
			a->window = true;
		else if (agg_of(f) != NOT_AGG)
			a->agg = true;
	}
	return 0;
}

static int find_aggs(PgQuery__Node *n, struct find_arg *a)
{
	memset(a, 0, sizeof(*a));
	a->root = &n->base;
	return walk(&n->base, visit_find, a) < 0 ? NOMEM : OK;
}

/* No calls, subqueries or clock reads: a value every shard computes alike
 * from the row, so that it cannot split a group the server made. */
static int visit_simple(ProtobufCMessage *m, void *arg)
{
	if (is(m, "FuncCall") || is(m, "SubLink") || is(m, "SQLValueFunction")
	    || is(m, "SelectStmt") || is(m, "GroupingFunc")) {
		*(bool *)arg = false;
		return 2;
	}
	return 0;
}

static int simple(PgQuery__Node *n, bool *out)
{
	*out = true;
	return walk(&n->base, visit_simple, out) < 0 ? NOMEM : OK;
}

struct refs_arg {
	const char *name;
	bool found;
};

static int visit_refs(ProtobufCMessage *m, void *arg)
{
	struct refs_arg *a = arg;

	if (is(m, "ColumnRef")) {
		const PgQuery__ColumnRef *c = (const PgQuery__ColumnRef *)m;
		const char *last = c->n_fields ? node_str(c->fields[c->n_fields - 1]) : NULL;
		if (last && strcmp(last, a->name) == 0) {
			a->found = true;
			return 2;
		}
	}
	return 0;
}

static bool is_star(const PgQuery__Node *n)
{
	return n && n->node_case == PG_QUERY__NODE__NODE_COLUMN_REF && n->column_ref->n_fields
		&& n->column_ref->fields[n->column_ref->n_fields - 1]->node_case
		== PG_QUERY__NODE__NODE_A_STAR;
}

/* The column name PostgreSQL gives a target, as far as ORDER BY needs it. */
static const char *output_name(const PgQuery__ResTarget *rt)
{
	const PgQuery__Node *v = rt->val;

	if (rt->name && *rt->name)
		return rt->name;
	if (v && v->node_case == PG_QUERY__NODE__NODE_COLUMN_REF && v->column_ref->n_fields)
		return node_str(v->column_ref->fields[v->column_ref->n_fields - 1]);
	if (v && v->node_case == PG_QUERY__NODE__NODE_FUNC_CALL)
		return func_name(v->func_call);
	return NULL;
}

/* A single-name column reference's name, or NULL. */
static const char *bare_name(const PgQuery__Node *n)
{
	if (!n || n->node_case != PG_QUERY__NODE__NODE_COLUMN_REF || n->column_ref->n_fields != 1)
		return NULL;
	return node_str(n->column_ref->fields[0]);
}

/* ---- columns ------------------------------------------------------------------ */

static int add_col(struct sel *q, enum router_agg agg, uint8_t *key, size_t key_len)
{
	if (q->n_cols == q->cap) {
		int cap = q->cap ? 2 * q->cap : 16;
		struct col *grown = realloc(q->cols, (size_t)cap * sizeof(*grown));
		if (!grown) {
			free(key);
			return NOMEM;
		}
		q->cols = grown;
		q->cap = cap;
	}
	q->cols[q->n_cols] = (struct col){
		.agg = agg, .count_col = -1, .key = key, .key_len = key_len
	};
	return q->n_cols++;
}

/* Appends val (taken over) to the shard's target list, as a hidden column
 * under a name no client's ORDER BY will meet. */
static int append_target(struct sel *q, PgQuery__Node *val)
{
	PgQuery__SelectStmt *s = q->s;
	PgQuery__Node *n = malloc(sizeof(*n)), **grown;
	PgQuery__ResTarget *rt = malloc(sizeof(*rt));
	char name[32];

	if (!n || !rt)
		goto oom;
	pg_query__node__init(n);
	pg_query__res_target__init(rt);
	snprintf(name, sizeof(name), "pgcrab_hidden_%zu",
		 s->n_target_list - (size_t)q->n_visible + 1);
	rt->name = strdup(name);
	if (!rt->name)
		goto oom;
	grown = realloc(s->target_list, (s->n_target_list + 1) * sizeof(*grown));
	if (!grown) {
		free(rt->name);
		goto oom;
	}
	s->target_list = grown;
	rt->val = val;
	n->node_case = PG_QUERY__NODE__NODE_RES_TARGET;
	n->res_target = rt;
	s->target_list[s->n_target_list++] = n;
	q->rewritten = true;
	return OK;
oom:
	free(n);
	free(rt);
	pg_query__node__free_unpacked(val, NULL);
	return NOMEM;
}

/* A hidden column for the expression packed in key (taken over). */
static int append_hidden(struct sel *q, enum router_agg agg, uint8_t *key, size_t key_len)
{
	PgQuery__Node *val = unpack_node(key, key_len);
	int col;

	if (!val) {
		free(key);
		return NOMEM;
	}
	col = add_col(q, agg, key, key_len);
	if (col < 0) {
		pg_query__node__free_unpacked(val, NULL);
		return NOMEM;
	}
	if (append_target(q, val) < 0)
		return NOMEM;
	return col;
}

/* For avg(x) at column col (its shard expression already sum(x)): a
 * hidden count(x) (with avg's FILTER, if any) for the merge to divide by. */
static int append_avg_count(struct sel *q, int col, const uint8_t *avg_key, size_t avg_len)
{
	PgQuery__Node *count = unpack_node(avg_key, avg_len);
	uint8_t *key;
	size_t len;
	int c;

	if (!count)
		return NOMEM;
	if (rename_func(count->func_call, "count") < 0) {
		pg_query__node__free_unpacked(count, NULL);
		return NOMEM;
	}
	key = pack_node(count, &len);
	if (!key || (c = add_col(q, ROUTER_AGG_COUNT, key, len)) < 0) {
		pg_query__node__free_unpacked(count, NULL);
		return NOMEM;
	}
	if (append_target(q, count) < 0)
		return NOMEM;
	q->cols[col].count_col = c;
	return OK;
}

/* What expr is to the merge: a mergeable aggregate (*agg), or a plain value
 * (ROUTER_AGG_NONE); anything else is refused. */
static int classify(struct sel *q, PgQuery__Node *expr, enum router_agg *agg)
{
	struct find_arg fa;

	*agg = ROUTER_AGG_NONE;
	if (expr->node_case == PG_QUERY__NODE__NODE_FUNC_CALL && !expr->func_call->over) {
		const PgQuery__FuncCall *f = expr->func_call;
		int a = agg_of(f);
		const char *name = func_name(f);

		if (a == OTHER_AGG)
			return refuse(q, "0A000",
				      "aggregate %s() cannot be merged across shards (count, sum, "
				      "min, max, avg, bool_and, bool_or and every can)",
				      name ? name : "?");
		if (a != NOT_AGG) {
			if (f->agg_distinct)
				return refuse(q, "0A000",
					      "%s(DISTINCT ...) cannot be merged across shards: a "
					      "value may be on several shards",
					      name);
			if (f->n_agg_order)
				return refuse(q, "0A000",
					      "%s(... ORDER BY ...) is not supported across shards",
					      name);
			if (a != ROUTER_AGG_COUNT && f->n_args != 1)
				return refuse(q, "0A000",
					      "%s() with %zu arguments is not supported "
					      "across shards",
					      name, f->n_args);
			for (size_t i = 0; i < f->n_args; i++) {
				if (find_aggs(f->args[i], &fa) < 0)
					return NOMEM;
				if (fa.window || fa.agg)
					break; /* the server refuses it */
			}
			*agg = (enum router_agg)a;
			return OK;
		}
	}
	if (find_aggs(expr, &fa) < 0)
		return NOMEM;
	if (fa.window)
		return refuse(q, "0A000", "window functions cannot be merged across shards");
	if (fa.grouping)
		return refuse(q, "0A000", "GROUPING() is not supported across shards");
	if (fa.agg)
		return refuse(q, "0A000",
			      "an aggregate inside an expression cannot be merged across shards: "
			      "select the aggregate itself");
	return OK;
}

/* The column of the shard's row holding expr's value, appending a hidden
 * one when none does. */
static int expr_col(struct sel *q, PgQuery__Node *expr, int *col)
{
	enum router_agg agg;
	size_t len;
	uint8_t *key = pack_node(expr, &len);
	int rc, c;

	if (!key)
		return NOMEM;
	for (int i = 0; i < q->n_cols; i++) {
		if (q->cols[i].key_len != len || memcmp(q->cols[i].key, key, len) != 0)
			continue;
		/* after a '*' a visible column's place is not known */
		if (q->star_at >= 0 && i >= q->star_at && i < q->n_visible)
			continue;
		free(key);
		*col = i;
		return OK;
	}
	rc = classify(q, expr, &agg);
	if (rc != OK) {
		free(key);
		return rc;
	}
	if (agg == ROUTER_AGG_NONE && q->aggregate) {
		bool ok;
		if (simple(expr, &ok) < 0) {
			free(key);
			return NOMEM;
		}
		if (!ok) {
			free(key);
			return refuse(q, "0A000",
				      "an expression with function calls or subqueries that is "
				      "not a GROUP BY expression cannot be merged across shards");
		}
	}
	if (agg == ROUTER_AGG_AVG) {
		PgQuery__Node *sum = unpack_node(key, len);
		if (!sum) {
			free(key);
			return NOMEM;
		}
		if (rename_func(sum->func_call, "sum") < 0) {
			pg_query__node__free_unpacked(sum, NULL);
			free(key);
			return NOMEM;
		}
		c = add_col(q, ROUTER_AGG_AVG, key, len);
		if (c < 0) {
			pg_query__node__free_unpacked(sum, NULL);
			return NOMEM;
		}
		if (append_target(q, sum) < 0 || append_avg_count(q, c, key, len) < 0)
			return NOMEM;
	} else {
		c = append_hidden(q, agg, key, len);
		if (c < 0)
			return NOMEM;
	}
	*col = c;
	return OK;
}

/* ---- FROM: which shards' rows meet ---------------------------------------------- */

struct rel {
	const struct router_table *t; /* NULL: a subquery over sharded tables */
	const char *ref;              /* its alias, or its name */
	bool aliased;
	int parent; /* union-find: relations joined on their full key */
};

/* a.col_a = b.col_b between two sharded relations */
struct eq {
	int a, b;
	const char *col_a, *col_b;
};

struct from {
	struct rel rels[MAX_RELS];
	int n_rels;
	struct eq *eqs;
	int n_eqs, cap_eqs;
};

static int check_select(struct sel *q, PgQuery__SelectStmt *s, struct from *fr);
static int check_plain(struct sel *q, PgQuery__SelectStmt *s);

static int add_eq(struct from *fr, int a, const char *ca, int b, const char *cb)
{
	if (fr->n_eqs == fr->cap_eqs) {
		int cap = fr->cap_eqs ? 2 * fr->cap_eqs : 8;
		struct eq *grown = realloc(fr->eqs, (size_t)cap * sizeof(*grown));
		if (!grown)
			return NOMEM;
		fr->eqs = grown;
		fr->cap_eqs = cap;
	}
	fr->eqs[fr->n_eqs++] = (struct eq){ a, b, ca, cb };
	return OK;
}

/* The sharded relation and column a reference names (rel.col or
 * schema.rel.col); -1 if it names none for sure. */
static int col_rel(const struct from *fr, const PgQuery__Node *n, const char **col)
{
	const PgQuery__ColumnRef *c;
	const char *rel;

	if (!n || n->node_case != PG_QUERY__NODE__NODE_COLUMN_REF)
		return -1;
	c = n->column_ref;
	if (c->n_fields != 2 && c->n_fields != 3)
		return -1;
	rel = node_str(c->fields[c->n_fields - 2]);
	*col = node_str(c->fields[c->n_fields - 1]);
	if (!rel || !*col)
		return -1;
	for (int i = 0; i < fr->n_rels; i++) {
		if (!fr->rels[i].t || strcmp(fr->rels[i].ref, rel) != 0)
			continue;
		if (c->n_fields == 3 && fr->rels[i].aliased)
			continue;
		return i;
	}
	return -1;
}

/* Notes each equality of two sharded relations' columns among the
 * AND-ed conditions of cond. */
static int add_conds(struct from *fr, const PgQuery__Node *cond)
{
	if (!cond)
		return OK;
	if (cond->node_case == PG_QUERY__NODE__NODE_BOOL_EXPR
	    && cond->bool_expr->boolop == PG_QUERY__BOOL_EXPR_TYPE__AND_EXPR) {
		for (size_t i = 0; i < cond->bool_expr->n_args; i++)
			if (add_conds(fr, cond->bool_expr->args[i]) < 0)
				return NOMEM;
		return OK;
	}
	if (cond->node_case == PG_QUERY__NODE__NODE_A_EXPR) {
		const PgQuery__AExpr *e = cond->a_expr;
		const char *op = e->n_name == 1 ? node_str(e->name[0]) : NULL, *ca, *cb;
		int a, b;

		if (e->kind != PG_QUERY__A__EXPR__KIND__AEXPR_OP || !op || strcmp(op, "=") != 0)
			return OK;
		a = col_rel(fr, e->lexpr, &ca);
		b = col_rel(fr, e->rexpr, &cb);
		if (a >= 0 && b >= 0 && a != b)
			return add_eq(fr, a, ca, b, cb);
	}
	return OK;
}

/* One FROM item: its sharded relations are added to fr. */
static int from_item(struct sel *q, PgQuery__Node *n, struct from *fr)
{
	int r;

	switch (n->node_case) {
	case PG_QUERY__NODE__NODE_RANGE_VAR: {
		PgQuery__RangeVar *rv = n->range_var;
		const struct router_table *t = sharded_table(q->schema, rv);
		if (!t)
			return OK;
		if (fr->n_rels == MAX_RELS)
			return refuse(q, "0A000", "too many sharded tables in one query");
		fr->rels[fr->n_rels] = (struct rel){
			.t = t,
			.aliased = rv->alias && rv->alias->aliasname && *rv->alias->aliasname,
			.parent = fr->n_rels,
		};
		fr->rels[fr->n_rels].ref = fr->rels[fr->n_rels].aliased ? rv->alias->aliasname
									: rv->relname;
		fr->n_rels++;
		return OK;
	}
	case PG_QUERY__NODE__NODE_JOIN_EXPR: {
		PgQuery__JoinExpr *j = n->join_expr;
		int before = fr->n_rels, mid, rc;
		bool left, right;

		if ((rc = from_item(q, j->larg, fr)) != OK)
			return rc;
		mid = fr->n_rels;
		if ((rc = from_item(q, j->rarg, fr)) != OK)
			return rc;
		left = mid > before;
		right = fr->n_rels > mid;
		/* an unsharded row with no match would come once from every shard */
		if ((j->jointype == PG_QUERY__JOIN_TYPE__JOIN_LEFT && right && !left)
		    || (j->jointype == PG_QUERY__JOIN_TYPE__JOIN_RIGHT && left && !right)
		    || (j->jointype == PG_QUERY__JOIN_TYPE__JOIN_FULL && left != right))
			return refuse(q, "0A000",
				      "an outer join that keeps the rows of an unsharded table "
				      "cannot run across shards: each shard would return them");
		r = j->quals ? reads_sharded(q, &j->quals->base) : 0;
		if (r < 0)
			return NOMEM;
		if (r)
			return refuse(q, "0A000",
				      "a subquery that reads a sharded table cannot "
				      "run across shards");
		if (add_conds(fr, j->quals) < 0)
			return NOMEM;
		/* USING (k) between two tables */
		if (j->n_using_clause && mid == before + 1 && fr->n_rels == mid + 1
		    && j->larg->node_case == PG_QUERY__NODE__NODE_RANGE_VAR
		    && j->rarg->node_case == PG_QUERY__NODE__NODE_RANGE_VAR)
			for (size_t i = 0; i < j->n_using_clause; i++) {
				const char *c = node_str(j->using_clause[i]);
				if (c && add_eq(fr, before, c, mid, c) < 0)
					return NOMEM;
			}
		return OK;
	}
	case PG_QUERY__NODE__NODE_RANGE_SUBSELECT: {
		PgQuery__Node *sub = n->range_subselect->subquery;
		struct from inner = { 0 };
		int rc;

		r = reads_sharded(q, &n->base);
		if (r <= 0)
			return r < 0 ? NOMEM : OK;
		if (sub->node_case != PG_QUERY__NODE__NODE_SELECT_STMT)
			return refuse(q, "0A000",
				      "a subquery that reads a sharded table cannot "
				      "run across shards");
		if ((rc = check_plain(q, sub->select_stmt)) != OK)
			return rc;
		rc = check_select(q, sub->select_stmt, &inner);
		free(inner.eqs);
		if (rc != OK)
			return rc;
		if (fr->n_rels == MAX_RELS)
			return refuse(q, "0A000", "too many sharded tables in one query");
		/* a filter over the shard's rows: one opaque relation */
		fr->rels[fr->n_rels] = (struct rel){ .t = NULL, .ref = "", .parent = fr->n_rels };
		fr->n_rels++;
		return OK;
	}
	default:
		/* functions in FROM, VALUES, ...: unsharded unless they read one */
		r = reads_sharded(q, &n->base);
		if (r < 0)
			return NOMEM;
		if (r)
			return refuse(q, "0A000",
				      "a subquery that reads a sharded table cannot "
				      "run across shards");
		return OK;
	}
}

static int find_root(struct from *fr, int i)
{
	while (fr->rels[i].parent != i)
		i = fr->rels[i].parent;
	return i;
}

/* Whether the eqs join a and b on every column of their key. */
static bool full_key_join(const struct from *fr, int a, int b)
{
	const struct router_table *ta = fr->rels[a].t, *tb = fr->rels[b].t;

	if (!ta || !tb || ta->n_cols != tb->n_cols)
		return false;
	for (int k = 0; k < ta->n_cols; k++) {
		bool found = false;
		if (ta->types[k] != tb->types[k])
			return false;
		for (int e = 0; e < fr->n_eqs && !found; e++) {
			const struct eq *q = &fr->eqs[e];
			found = (q->a == a && q->b == b && strcmp(q->col_a, ta->cols[k]) == 0
				 && strcmp(q->col_b, tb->cols[k]) == 0)
				|| (q->a == b && q->b == a && strcmp(q->col_a, tb->cols[k]) == 0
				    && strcmp(q->col_b, ta->cols[k]) == 0);
		}
		if (!found)
			return false;
	}
	return true;
}

/* A query level: its FROM (joins of sharded tables on their full key, or
 * one sharded relation), and no subquery elsewhere reading a sharded
 * table. Nested levels (subqueries in FROM) must be plain filters. */
static int check_select(struct sel *q, PgQuery__SelectStmt *s, struct from *fr)
{
	PgQuery__Node *single[] = { s->where_clause, s->having_clause };
	int r, rc;

	if (s->op != PG_QUERY__SET_OPERATION__SETOP_NONE) {
		r = reads_sharded(q, &s->base);
		if (r < 0)
			return NOMEM;
		return refuse(q, "0A000",
			      r ? "UNION, INTERSECT and EXCEPT over sharded tables "
				  "cannot run across shards"
				: "this query reads no sharded table");
	}
	if (s->into_clause)
		return refuse(q, "0A000", "SELECT INTO cannot run across shards");
	if (s->with_clause) {
		r = reads_sharded(q, &s->with_clause->base);
		if (r < 0)
			return NOMEM;
		if (r)
			return refuse(q, "0A000",
				      "a WITH query that reads a sharded table cannot run across "
				      "shards");
	}
	for (size_t i = 0; i < s->n_from_clause; i++)
		if ((rc = from_item(q, s->from_clause[i], fr)) != OK)
			return rc;
	for (size_t i = 0; i < sizeof(single) / sizeof(single[0]); i++) {
		r = single[i] ? reads_sharded(q, &single[i]->base) : 0;
		if (r < 0)
			return NOMEM;
		if (r)
			goto sublink;
	}
	PgQuery__Node **lists[] = { s->target_list,     s->group_clause,  s->sort_clause,
				    s->distinct_clause, s->window_clause, s->values_lists };
	size_t counts[] = { s->n_target_list,     s->n_group_clause,  s->n_sort_clause,
			    s->n_distinct_clause, s->n_window_clause, s->n_values_lists };
	for (size_t i = 0; i < sizeof(counts) / sizeof(counts[0]); i++) {
		r = reads_sharded_list(q, lists[i], counts[i]);
		if (r < 0)
			return NOMEM;
		if (r)
			goto sublink;
	}
	if (add_conds(fr, s->where_clause) < 0)
		return NOMEM;
	for (int e = 0; e < fr->n_eqs; e++) {
		const struct eq *x = &fr->eqs[e];
		if (full_key_join(fr, x->a, x->b))
			fr->rels[find_root(fr, x->a)].parent = find_root(fr, x->b);
	}
	for (int i = 1; i < fr->n_rels; i++) {
		if (find_root(fr, i) == find_root(fr, 0))
			continue;
		if (!fr->rels[0].t || !fr->rels[i].t)
			return refuse(q, "0A000",
				      "a subquery over a sharded table joined with another sharded "
				      "table cannot run across shards");
		return refuse(q, "0A000",
			      "sharded tables %s and %s are not joined on their full sharding key "
			      "(equal key columns of the same types): rows that meet may be on "
			      "different shards",
			      fr->rels[0].t->name, fr->rels[i].t->name);
	}
	return OK;
sublink:
	return refuse(q, "0A000",
		      "a subquery that reads a sharded table cannot run across "
		      "shards (only a plain filter in FROM can)");
}

/* A subquery in FROM over sharded tables: only a filter of the rows, so
 * that the shards' answers are the parts of one answer. */
static int check_plain(struct sel *q, PgQuery__SelectStmt *s)
{
	struct find_arg fa;

	if (s->n_group_clause || s->having_clause || s->n_distinct_clause || s->limit_count
	    || s->limit_offset || s->n_window_clause)
		return refuse(q, "0A000",
			      "a subquery over a sharded table with GROUP BY, HAVING, DISTINCT, "
			      "LIMIT, OFFSET or WINDOW cannot run across shards");
	for (size_t i = 0; i < s->n_target_list; i++) {
		if (find_aggs(s->target_list[i], &fa) < 0)
			return NOMEM;
		if (fa.agg || fa.window || fa.grouping)
			return refuse(q, "0A000",
				      "a subquery over a sharded table with aggregates or window "
				      "functions cannot run across shards");
	}
	return OK;
}

/* ---- the merge's parts ----------------------------------------------------------- */

static int visible_targets(struct sel *q)
{
	PgQuery__SelectStmt *s = q->s;
	int n = (int)s->n_target_list;

	q->n_visible = n;
	for (int j = 0; j < n; j++) {
		PgQuery__ResTarget *rt = s->target_list[j]->res_target;
		enum router_agg agg = ROUTER_AGG_NONE;
		uint8_t *key;
		size_t len;
		int rc;

		if (!rt->val)
			return refuse(q, "0A000", "unexpected target");
		if (is_star(rt->val)) {
			if (q->aggregate)
				return refuse(q, "0A000",
					      "SELECT * with aggregates cannot be "
					      "merged across shards");
			if (q->star_at < 0)
				q->star_at = j;
		} else if ((rc = classify(q, rt->val, &agg)) != OK) {
			return rc;
		}
		key = pack_node(rt->val, &len);
		if (!key || add_col(q, agg, key, len) < 0)
			return NOMEM;
		if (agg == ROUTER_AGG_AVG) {
			/* the column keeps its name; the merge divides */
			if (!rt->name || !*rt->name) {
				char *name = strdup("avg");
				if (!name)
					return NOMEM;
				if (rt->name && rt->name != protobuf_c_empty_string)
					free(rt->name);
				rt->name = name;
			}
			if (rename_func(rt->val->func_call, "sum") < 0)
				return NOMEM;
			q->rewritten = true;
		}
		q->cols[j].name = output_name(rt); /* after the rename: it may point into it */
	}
	for (int j = 0; j < n; j++)
		if (q->cols[j].agg == ROUTER_AGG_AVG
		    && append_avg_count(q, j, q->cols[j].key, q->cols[j].key_len) < 0)
			return NOMEM;
	return OK;
}

static int group_by(struct sel *q)
{
	PgQuery__SelectStmt *s = q->s;

	for (size_t i = 0; i < s->n_group_clause; i++) {
		PgQuery__Node *g = s->group_clause[i];
		const char *name = bare_name(g);
		int col = -1, rc;

		if (g->node_case == PG_QUERY__NODE__NODE_GROUPING_SET)
			return refuse(q, "0A000",
				      "GROUPING SETS, ROLLUP and CUBE cannot be "
				      "merged across shards");
		if (g->node_case == PG_QUERY__NODE__NODE_A_CONST
		    && g->a_const->val_case == PG_QUERY__A__CONST__VAL_IVAL) {
			int pos = g->a_const->ival->ival;
			if (pos < 1 || pos > q->n_visible)
				return refuse(q, "42P10",
					      "GROUP BY position %d is not in select list", pos);
			col = pos - 1;
		} else if (name) {
			/* GROUP BY x: an input column x before an output name x;
			 * a target that reads x surely has one */
			for (int j = 0; j < q->n_visible && col < 0; j++) {
				struct refs_arg ra = { name, false };
				PgQuery__ResTarget *rt = s->target_list[j]->res_target;
				if (!rt->name || strcmp(rt->name, name) != 0
				    || q->cols[j].agg != ROUTER_AGG_NONE)
					continue;
				if (walk(&rt->val->base, visit_refs, &ra) < 0)
					return NOMEM;
				if (!ra.found)
					col = j;
			}
		}
		if (col < 0 && (rc = expr_col(q, g, &col)) != OK)
			return rc;
		if (q->cols[col].agg != ROUTER_AGG_NONE)
			return refuse(q, "42803",
				      "aggregate functions are not allowed in GROUP BY");
		q->cols[col].group = true;
	}
	/* a plain target is a group key too: it must not split groups */
	for (int j = 0; j < q->n_visible; j++) {
		bool ok;
		if (q->cols[j].agg != ROUTER_AGG_NONE || q->cols[j].group)
			continue;
		if (simple(s->target_list[j]->res_target->val, &ok) < 0)
			return NOMEM;
		if (!ok)
			return refuse(q, "0A000",
				      "select list item %d calls a function but is not a GROUP BY "
				      "expression: write the same expression in GROUP BY to run it "
				      "across shards",
				      j + 1);
	}
	return OK;
}

static PgQuery__Node *int_const(int64_t v);

/* An aggregate query's shards sort partial groups: of use to the merge
 * only when every sort key is a group key (groups then arrive in order),
 * and the expressions may name an avg that is now a sum. So the shards
 * sort by position when all keys are group keys, else not at all. */
static int shard_order_by(struct sel *q, const struct router_merge *m)
{
	PgQuery__SelectStmt *s = q->s;
	bool keys = true;

	for (int i = 0; i < m->n_sort; i++)
		keys = keys && q->cols[m->sort[i].col].agg == ROUTER_AGG_NONE;
	q->rewritten = true;
	for (size_t i = 0; i < s->n_sort_clause; i++) {
		PgQuery__SortBy *sb = s->sort_clause[i]->sort_by;
		if (!keys) {
			pg_query__node__free_unpacked(s->sort_clause[i], NULL);
			continue;
		}
		pg_query__node__free_unpacked(sb->node, NULL);
		sb->node = int_const(m->sort[i].col + 1);
		if (!sb->node)
			return NOMEM;
	}
	if (!keys) {
		free(s->sort_clause);
		s->sort_clause = NULL;
		s->n_sort_clause = 0;
	}
	return OK;
}

static int order_by(struct sel *q, struct router_merge *m)
{
	PgQuery__SelectStmt *s = q->s;

	if (!s->n_sort_clause)
		return OK;
	m->sort = calloc(s->n_sort_clause, sizeof(*m->sort));
	if (!m->sort)
		return NOMEM;
	for (size_t i = 0; i < s->n_sort_clause; i++) {
		PgQuery__SortBy *sb = s->sort_clause[i]->sort_by;
		PgQuery__Node *e = sb->node;
		const char *name = bare_name(e);
		int col = -1, rc;

		if (sb->sortby_dir == PG_QUERY__SORT_BY_DIR__SORTBY_USING || sb->n_use_op)
			return refuse(q, "0A000",
				      "ORDER BY ... USING cannot be merged across "
				      "shards");
		if (e->node_case == PG_QUERY__NODE__NODE_A_CONST
		    && e->a_const->val_case == PG_QUERY__A__CONST__VAL_IVAL) {
			int pos = e->a_const->ival->ival;
			if (pos < 1 || pos > q->n_visible)
				return refuse(q, "42P10",
					      "ORDER BY position %d is not in select list", pos);
			if (q->star_at >= 0 && pos - 1 >= q->star_at)
				return refuse(q, "0A000",
					      "ORDER BY position %d at or after a * cannot be merged "
					      "across shards: name the column",
					      pos);
			col = pos - 1;
		} else if (name) {
			/* ORDER BY x: an output name x first */
			for (int j = 0; j < q->n_visible && col < 0; j++)
				if (q->cols[j].name && strcmp(q->cols[j].name, name) == 0
				    && !(q->star_at >= 0 && j >= q->star_at))
					col = j;
		}
		if (col < 0) {
			int before = q->n_cols;
			if ((rc = expr_col(q, e, &col)) != OK)
				return rc;
			if (q->n_cols != before && m->distinct)
				return refuse(q, "42P10",
					      "for SELECT DISTINCT, ORDER BY expressions "
					      "must appear in select list");
		}
		m->sort[i].col = col;
		m->sort[i].desc = sb->sortby_dir == PG_QUERY__SORT_BY_DIR__SORTBY_DESC;
		m->sort[i].nulls_first = sb->sortby_nulls
				== PG_QUERY__SORT_BY_NULLS__SORTBY_NULLS_FIRST
			|| (sb->sortby_nulls != PG_QUERY__SORT_BY_NULLS__SORTBY_NULLS_LAST
			    && m->sort[i].desc);
		m->n_sort++;
	}
	return q->aggregate ? shard_order_by(q, m) : OK;
}

/* The $n a LIMIT or OFFSET is, perhaps under casts to integer types (whose
 * value the merge reads from the Bind unchanged), or 0. */
static int limit_param(const PgQuery__Node *n)
{
	for (; n && n->node_case == PG_QUERY__NODE__NODE_TYPE_CAST; n = n->type_cast->arg) {
		const PgQuery__TypeName *t = n->type_cast->type_name;
		const char *name = t && t->n_names ? node_str(t->names[t->n_names - 1]) : NULL;
		if (!name || t->n_array_bounds || t->n_typmods
		    || (strcmp(name, "int2") != 0 && strcmp(name, "int4") != 0
			&& strcmp(name, "int8") != 0))
			return 0;
	}
	return n && n->node_case == PG_QUERY__NODE__NODE_PARAM_REF && n->param_ref->number > 0
		? n->param_ref->number
		: 0;
}

/* LIMIT or OFFSET: *v, or -1 when there is none (absent, NULL, ALL) or it
 * is the Bind parameter *param (else 0). */
static int limit_value(struct sel *q, PgQuery__Node *n, const char *what, int64_t *v, int *param)
{
	*v = -1;
	*param = limit_param(n);
	if (*param)
		return OK;
	while (n && n->node_case == PG_QUERY__NODE__NODE_TYPE_CAST)
		n = n->type_cast->arg;
	if (!n)
		return OK;
	if (n->node_case == PG_QUERY__NODE__NODE_A_CONST) {
		const PgQuery__AConst *c = n->a_const;
		if (c->isnull)
			return OK;
		if (c->val_case == PG_QUERY__A__CONST__VAL_IVAL)
			*v = c->ival->ival;
		else if ((c->val_case == PG_QUERY__A__CONST__VAL_FVAL && c->fval->fval)
			 || (c->val_case == PG_QUERY__A__CONST__VAL_SVAL && c->sval->sval)) {
			/* past int4 the parser keeps the digits as text; '4' is text too */
			const char *digits = c->val_case == PG_QUERY__A__CONST__VAL_FVAL
				? c->fval->fval
				: c->sval->sval;
			char *end;
			errno = 0;
			*v = strtoll(digits, &end, 10);
			if (errno || end == digits || *end)
				return refuse(q, "0A000", "%s %s is not supported across shards",
					      what, digits);
		} else {
			return refuse(q, "0A000", "%s must be an integer constant across shards",
				      what);
		}
		if (*v < 0)
			return refuse(q, what[0] == 'L' ? "2201W" : "2201X",
				      "%s must not be negative", what);
		return OK;
	}
	return refuse(q, "0A000",
		      "%s given as an expression cannot be merged across shards: write the number "
		      "or a parameter in the query",
		      what);
}

static PgQuery__Node *int_const(int64_t v)
{
	PgQuery__Node *n = malloc(sizeof(*n));
	PgQuery__AConst *c = malloc(sizeof(*c));
	PgQuery__Integer *i = malloc(sizeof(*i));
	PgQuery__Float *f = malloc(sizeof(*f));
	char buf[24];

	if (!n || !c || !i || !f)
		goto oom;
	pg_query__node__init(n);
	pg_query__a__const__init(c);
	n->node_case = PG_QUERY__NODE__NODE_A_CONST;
	n->a_const = c;
	if (v <= INT32_MAX) {
		pg_query__integer__init(i);
		i->ival = (int32_t)v;
		c->val_case = PG_QUERY__A__CONST__VAL_IVAL;
		c->ival = i;
		free(f);
	} else {
		/* the parser keeps integers past int4 as Float text too */
		pg_query__float__init(f);
		snprintf(buf, sizeof(buf), "%" PRId64, v);
		f->fval = strdup(buf);
		if (!f->fval)
			goto oom;
		c->val_case = PG_QUERY__A__CONST__VAL_FVAL;
		c->fval = f;
		free(i);
	}
	return n;
oom:
	free(n);
	free(c);
	free(i);
	free(f);
	return NULL;
}

static void drop_node(PgQuery__Node **n)
{
	if (*n)
		pg_query__node__free_unpacked(*n, NULL);
	*n = NULL;
}

/* Replaces the placeholders $1 (LIMIT) and $2 (OFFSET) of a shard LIMIT
 * made from text with copies of the client's expressions. */
struct subst_arg {
	PgQuery__Node *by[2];
	bool oom;
};

static int visit_subst(ProtobufCMessage *m, void *arg)
{
	struct subst_arg *a = arg;
	PgQuery__TypeCast *tc;
	PgQuery__Node *copy, *by;
	uint8_t *packed;
	size_t len;
	int which;

	if (!is(m, "TypeCast"))
		return 0;
	tc = (PgQuery__TypeCast *)m;
	if (!tc->arg || tc->arg->node_case != PG_QUERY__NODE__NODE_PARAM_REF)
		return 0;
	which = tc->arg->param_ref->number - 1;
	if (which < 0 || which > 1 || !a->by[which])
		return 0;
	by = a->by[which];
	if (by->node_case == PG_QUERY__NODE__NODE_TYPE_CAST) {
		const PgQuery__TypeName *t = by->type_cast->type_name;
		const char *name = t && t->n_names ? node_str(t->names[t->n_names - 1]) : NULL;
		if (name && strcmp(name, "int8") == 0)
			by = by->type_cast->arg; /* $n::bigint: cast once */
	}
	packed = pack_node(by, &len);
	copy = packed ? unpack_node(packed, len) : NULL;
	free(packed);
	if (!copy) {
		a->oom = true;
		return 2;
	}
	drop_node(&tc->arg);
	tc->arg = copy;
	return 1; /* the copy is the client's own: nothing in it to replace */
}

/* The shards' LIMIT when LIMIT or OFFSET is a parameter: n + k rows, as
 * least(n, INT64_MAX - k) + k so that no sum PostgreSQL would take
 * overflows (n NULL: every row, as LIMIT NULL); the parameters cast to
 * bigint, as PostgreSQL types them in LIMIT. lim / off: the client's
 * parameter expression, or NULL for the literal in limit / offset. */
static PgQuery__Node *shard_limit(PgQuery__Node *lim, int64_t limit, PgQuery__Node *off,
				  int64_t offset)
{
	PgQueryProtobufParseResult r;
	PgQuery__ParseResult *tree;
	PgQuery__SelectStmt *s;
	struct subst_arg a = { { lim, off }, false };
	PgQuery__Node *out = NULL;
	char sql[160];

	if (lim && off)
		snprintf(sql, sizeof(sql),
			 "SELECT LIMIT least($1::bigint, %" PRId64 " - $2::bigint) + $2::bigint",
			 INT64_MAX);
	else if (lim)
		snprintf(sql, sizeof(sql), "SELECT LIMIT least($1::bigint, %" PRId64 ") + %" PRId64,
			 INT64_MAX - offset, offset);
	else
		snprintf(sql, sizeof(sql),
			 "SELECT LIMIT least(%" PRId64 ", %" PRId64 " - $2::bigint) + $2::bigint",
			 limit, INT64_MAX);
	r = pg_query_parse_protobuf(sql);
	if (r.error) {
		pg_query_free_protobuf_parse_result(r);
		return NULL; /* our own text parses: only memory can fail */
	}
	tree = pg_query__parse_result__unpack(NULL, r.parse_tree.len,
					      (const uint8_t *)r.parse_tree.data);
	pg_query_free_protobuf_parse_result(r);
	if (!tree)
		return NULL;
	s = tree->stmts[0]->stmt->select_stmt;
	if (walk(&s->limit_count->base, zero_location, NULL) == 0
	    && walk(&s->limit_count->base, visit_subst, &a) == 0 && !a.oom) {
		out = s->limit_count;
		s->limit_count = NULL;
	}
	pg_query__parse_result__free_unpacked(tree, NULL);
	return out;
}

static int limit_offset(struct sel *q, struct router_merge *m)
{
	PgQuery__SelectStmt *s = q->s;
	int64_t limit, offset;
	int rc, lp, op;

	if (s->limit_option == PG_QUERY__LIMIT_OPTION__LIMIT_OPTION_WITH_TIES)
		return refuse(q, "0A000", "FETCH ... WITH TIES cannot be merged across shards");
	if ((rc = limit_value(q, s->limit_count, "LIMIT", &limit, &lp)) != OK
	    || (rc = limit_value(q, s->limit_offset, "OFFSET", &offset, &op)) != OK)
		return rc;
	m->limit = limit;
	m->offset = offset < 0 ? 0 : offset;
	m->limit_param = lp;
	m->offset_param = op;
	if (q->aggregate) {
		/* groups are whole only after the merge */
		if (s->limit_count || s->limit_offset)
			q->rewritten = true;
		drop_node(&s->limit_count);
		drop_node(&s->limit_offset);
		return OK;
	}
	if (!s->limit_offset)
		return OK; /* LIMIT n (or $n) is the shards' limit as it is */
	q->rewritten = true;
	if (!lp && !op) {
		drop_node(&s->limit_offset);
		if (limit >= 0) {
			/* past INT64_MAX every row is wanted anyway */
			drop_node(&s->limit_count);
			if (limit <= INT64_MAX - m->offset) {
				s->limit_count = int_const(limit + m->offset);
				if (!s->limit_count)
					return NOMEM;
			}
		}
		return OK;
	}
	if (!op && m->offset == 0) {
		drop_node(&s->limit_offset); /* OFFSET 0 or NULL: LIMIT $n as it is */
		return OK;
	}
	if (!lp && limit < 0) {
		/* no LIMIT: every row, whatever the offset */
		drop_node(&s->limit_count);
		drop_node(&s->limit_offset);
		return OK;
	}
	PgQuery__Node *n = shard_limit(lp ? s->limit_count : NULL, limit,
				       op ? s->limit_offset : NULL, m->offset);
	if (!n)
		return NOMEM;
	drop_node(&s->limit_count);
	drop_node(&s->limit_offset);
	s->limit_count = n;
	return OK;
}

/* ---- HAVING ------------------------------------------------------------------ */

static struct router_expr *new_expr(enum router_expr_kind kind, int n_args)
{
	struct router_expr *e = calloc(1, sizeof(*e));

	if (!e)
		return NULL;
	e->kind = kind;
	e->col = -1;
	if (n_args) {
		e->args = calloc((size_t)n_args, sizeof(*e->args));
		if (!e->args) {
			free(e);
			return NULL;
		}
		e->n_args = n_args;
	}
	return e;
}

static void free_expr(struct router_expr *e)
{
	if (!e)
		return;
	for (int i = 0; i < e->n_args; i++)
		free_expr(e->args[i]);
	free(e->args);
	free(e->text);
	free(e);
}

/* A constant's text, or NULL when n is none. */
static int const_expr(struct sel *q, PgQuery__Node *n, struct router_expr **out)
{
	const PgQuery__AConst *c;
	char buf[16];
	const char *text = NULL;
	struct router_expr *e;

	*out = NULL;
	while (n->node_case == PG_QUERY__NODE__NODE_TYPE_CAST)
		n = n->type_cast->arg;
	if (n->node_case != PG_QUERY__NODE__NODE_A_CONST)
		return OK;
	c = n->a_const;
	if (!c->isnull) {
		switch (c->val_case) {
		case PG_QUERY__A__CONST__VAL_IVAL:
			snprintf(buf, sizeof(buf), "%d", c->ival->ival);
			text = buf;
			break;
		case PG_QUERY__A__CONST__VAL_FVAL:
			text = c->fval->fval;
			break;
		case PG_QUERY__A__CONST__VAL_SVAL:
			text = c->sval->sval;
			break;
		case PG_QUERY__A__CONST__VAL_BOOLVAL:
			text = c->boolval->boolval ? "true" : "false";
			break;
		default:
			return refuse(q, "0A000",
				      "a bit string in HAVING is not supported "
				      "across shards");
		}
	}
	e = new_expr(ROUTER_EXPR_CONST, 0);
	if (!e)
		return NOMEM;
	e->is_null = c->isnull;
	if (text && !(e->text = strdup(text))) {
		free(e);
		return NOMEM;
	}
	*out = e;
	return OK;
}

/* A value in HAVING: a constant or a column of the shard's row. */
static int value_expr(struct sel *q, PgQuery__Node *n, struct router_expr **out)
{
	int rc, col;

	if ((rc = const_expr(q, n, out)) != OK || *out)
		return rc;
	for (PgQuery__Node *v = n; v;
	     v = v->node_case == PG_QUERY__NODE__NODE_TYPE_CAST ? v->type_cast->arg : NULL)
		if (v->node_case == PG_QUERY__NODE__NODE_PARAM_REF)
			/* its value comes at Bind, after the plan */
			return refuse(q, "0A000",
				      "a parameter in HAVING is not supported across "
				      "shards");
	if ((rc = expr_col(q, n, &col)) != OK)
		return rc;
	if (!(*out = new_expr(ROUTER_EXPR_COL, 0)))
		return NOMEM;
	(*out)->col = col;
	return OK;
}

static int cmp_expr(struct sel *q, const char *op, PgQuery__Node *l, PgQuery__Node *r,
		    struct router_expr **out)
{
	struct router_expr *e = new_expr(ROUTER_EXPR_CMP, 2);
	int rc;

	*out = e;
	if (!e)
		return NOMEM;
	snprintf(e->op, sizeof(e->op), "%s", op);
	if ((rc = value_expr(q, l, &e->args[0])) != OK
	    || (rc = value_expr(q, r, &e->args[1])) != OK)
		return rc;
	if (e->args[0]->kind == ROUTER_EXPR_CONST && e->args[1]->kind == ROUTER_EXPR_CONST)
		return refuse(q, "0A000",
			      "a comparison of two constants in HAVING is not "
			      "supported across shards");
	return OK;
}

static const char *cmp_op(const char *op)
{
	static const char *const ops[] = { "=", "<>", "<", "<=", ">", ">=" };

	if (op && strcmp(op, "!=") == 0)
		return "<>";
	for (size_t i = 0; op && i < sizeof(ops) / sizeof(ops[0]); i++)
		if (strcmp(op, ops[i]) == 0)
			return ops[i];
	return NULL;
}

/* x BETWEEN a AND b as PostgreSQL rewrites it, so that NULLs come out the
 * same: x >= a AND x <= b; NOT BETWEEN: x < a OR x > b; SYMMETRIC: either
 * order of the bounds, (x >= a AND x <= b) OR (x >= b AND x <= a), and
 * NOT BETWEEN SYMMETRIC (x < a OR x > b) AND (x < b OR x > a). */
static int between_expr(struct sel *q, PgQuery__AExpr *a, struct router_expr **out)
{
	bool not = a->kind == PG_QUERY__A__EXPR__KIND__AEXPR_NOT_BETWEEN
		|| a->kind == PG_QUERY__A__EXPR__KIND__AEXPR_NOT_BETWEEN_SYM;
	bool sym = a->kind == PG_QUERY__A__EXPR__KIND__AEXPR_BETWEEN_SYM
		|| a->kind == PG_QUERY__A__EXPR__KIND__AEXPR_NOT_BETWEEN_SYM;
	PgQuery__Node **bound = a->rexpr->list->items;
	enum router_expr_kind inner = not ? ROUTER_EXPR_OR : ROUTER_EXPR_AND;
	struct router_expr *e;
	int rc;

	if (!sym) {
		if (!(*out = e = new_expr(inner, 2)))
			return NOMEM;
	} else {
		if (!(*out = new_expr(not ? ROUTER_EXPR_AND : ROUTER_EXPR_OR, 2)))
			return NOMEM;
		for (int i = 0; i < 2; i++)
			if (!((*out)->args[i] = new_expr(inner, 2)))
				return NOMEM;
		e = (*out)->args[0];
	}
	for (int pass = 0; pass < (sym ? 2 : 1); pass++) {
		PgQuery__Node *lo = bound[pass], *hi = bound[1 - pass];
		e = sym ? (*out)->args[pass] : e;
		if ((rc = cmp_expr(q, not ? "<" : ">=", a->lexpr, lo, &e->args[0])) != OK
		    || (rc = cmp_expr(q, not ? ">" : "<=", a->lexpr, hi, &e->args[1])) != OK)
			return rc;
	}
	return OK;
}

/* The negation of x IS NULL, x IS NOT NULL. */
static int null_test(struct sel *q, PgQuery__Node *x, bool not_null, struct router_expr **out)
{
	if (!(*out = new_expr(ROUTER_EXPR_IS_NULL, 1)))
		return NOMEM;
	(*out)->negated = not_null;
	return value_expr(q, x, &(*out)->args[0]);
}

/* l IS DISTINCT FROM r, true or false, never NULL:
 *   (l IS NULL AND r IS NOT NULL) OR (l IS NOT NULL AND r IS NULL)
 *   OR (l IS NOT NULL AND r IS NOT NULL AND l <> r)
 * and IS NOT DISTINCT FROM its NOT. */
static int distinct_expr(struct sel *q, PgQuery__Node *l, PgQuery__Node *r, bool not,
			 struct router_expr **out)
{
	struct router_expr * or, *e;
	int rc;

	if (not ) {
		if (!(*out = new_expr(ROUTER_EXPR_NOT, 1)))
			return NOMEM;
		out = &(*out)->args[0];
	}
	if (!(*out = or = new_expr(ROUTER_EXPR_OR, 3)))
		return NOMEM;
	for (int i = 0; i < 2; i++) {
		if (!(or->args[i] = e = new_expr(ROUTER_EXPR_AND, 2)))
			return NOMEM;
		if ((rc = null_test(q, l, i == 1, &e->args[0])) != OK
		    || (rc = null_test(q, r, i == 0, &e->args[1])) != OK)
			return rc;
	}
	if (!(or->args[2] = e = new_expr(ROUTER_EXPR_AND, 3)))
		return NOMEM;
	if ((rc = null_test(q, l, true, &e->args[0])) != OK
	    || (rc = null_test(q, r, true, &e->args[1])) != OK)
		return rc;
	return cmp_expr(q, "<>", l, r, &e->args[2]);
}

static int having_expr(struct sel *q, PgQuery__Node *n, int depth, struct router_expr **out)
{
	int rc;

	*out = NULL;
	if (depth > MAX_HAVING_DEPTH)
		return refuse(q, "0A000", "HAVING is nested too deeply");
	switch (n->node_case) {
	case PG_QUERY__NODE__NODE_BOOL_EXPR: {
		PgQuery__BoolExpr *b = n->bool_expr;
		enum router_expr_kind kind = b->boolop == PG_QUERY__BOOL_EXPR_TYPE__AND_EXPR
			? ROUTER_EXPR_AND
			: b->boolop == PG_QUERY__BOOL_EXPR_TYPE__OR_EXPR ? ROUTER_EXPR_OR
									 : ROUTER_EXPR_NOT;
		struct router_expr *e = new_expr(kind, (int)b->n_args);
		if (!(*out = e))
			return NOMEM;
		for (size_t i = 0; i < b->n_args; i++)
			if ((rc = having_expr(q, b->args[i], depth + 1, &e->args[i])) != OK)
				return rc;
		return OK;
	}
	case PG_QUERY__NODE__NODE_NULL_TEST: {
		struct router_expr *e = new_expr(ROUTER_EXPR_IS_NULL, 1);
		if (!(*out = e))
			return NOMEM;
		e->negated = n->null_test->nulltesttype == PG_QUERY__NULL_TEST_TYPE__IS_NOT_NULL;
		return value_expr(q, n->null_test->arg, &e->args[0]);
	}
	case PG_QUERY__NODE__NODE_A_EXPR: {
		PgQuery__AExpr *a = n->a_expr;
		const char *op = cmp_op(a->n_name == 1 ? node_str(a->name[0]) : NULL);

		if (op && a->kind == PG_QUERY__A__EXPR__KIND__AEXPR_OP && a->lexpr && a->rexpr)
			return cmp_expr(q, op, a->lexpr, a->rexpr, out);
		/* x IN (a, b): x = a OR x = b; NOT IN: x <> a AND x <> b */
		if (op && a->kind == PG_QUERY__A__EXPR__KIND__AEXPR_IN && a->rexpr
		    && a->rexpr->node_case == PG_QUERY__NODE__NODE_LIST) {
			PgQuery__List *l = a->rexpr->list;
			struct router_expr *e = new_expr(strcmp(op, "=") == 0 ? ROUTER_EXPR_OR
									      : ROUTER_EXPR_AND,
							 (int)l->n_items);
			if (!(*out = e))
				return NOMEM;
			for (size_t i = 0; i < l->n_items; i++)
				if ((rc = cmp_expr(q, op, a->lexpr, l->items[i], &e->args[i]))
				    != OK)
					return rc;
			return OK;
		}
		if (a->kind >= PG_QUERY__A__EXPR__KIND__AEXPR_BETWEEN
		    && a->kind <= PG_QUERY__A__EXPR__KIND__AEXPR_NOT_BETWEEN_SYM && a->lexpr
		    && a->rexpr && a->rexpr->node_case == PG_QUERY__NODE__NODE_LIST
		    && a->rexpr->list->n_items == 2)
			return between_expr(q, a, out);
		if ((a->kind == PG_QUERY__A__EXPR__KIND__AEXPR_DISTINCT
		     || a->kind == PG_QUERY__A__EXPR__KIND__AEXPR_NOT_DISTINCT)
		    && op && strcmp(op, "=") == 0 && a->lexpr && a->rexpr)
			return distinct_expr(q, a->lexpr, a->rexpr,
					     a->kind == PG_QUERY__A__EXPR__KIND__AEXPR_NOT_DISTINCT,
					     out);
		break;
	}
	case PG_QUERY__NODE__NODE_FUNC_CALL:
	case PG_QUERY__NODE__NODE_COLUMN_REF: {
		/* a boolean alone: bool_or(x), or a boolean group key */
		PgQuery__Node t = PG_QUERY__NODE__INIT;
		PgQuery__AConst c = PG_QUERY__A__CONST__INIT;
		PgQuery__Boolean v = PG_QUERY__BOOLEAN__INIT;
		v.boolval = true;
		c.val_case = PG_QUERY__A__CONST__VAL_BOOLVAL;
		c.boolval = &v;
		t.node_case = PG_QUERY__NODE__NODE_A_CONST;
		t.a_const = &c;
		return cmp_expr(q, "=", n, &t, out);
	}
	default:
		break;
	}
	return refuse(q, "0A000",
		      "HAVING across shards supports comparisons (= <> < <= > >=), IN, AND, OR, "
		      "NOT and IS [NOT] NULL of aggregates, GROUP BY expressions and constants");
}

/* ---- the whole ----------------------------------------------------------------- */

void router_merge_free(struct router_merge *m)
{
	if (!m)
		return;
	free(m->cols);
	free(m->sort);
	free_expr(m->having);
	free(m);
}

static int any_aggregate(struct sel *q, bool *out)
{
	PgQuery__SelectStmt *s = q->s;
	struct find_arg fa;

	*out = s->n_group_clause || s->having_clause;
	for (size_t i = 0; i < s->n_target_list && !*out; i++) {
		if (find_aggs(s->target_list[i], &fa) < 0)
			return NOMEM;
		*out = fa.agg;
	}
	for (size_t i = 0; i < s->n_sort_clause && !*out; i++) {
		if (find_aggs(s->sort_clause[i], &fa) < 0)
			return NOMEM;
		*out = fa.agg;
	}
	return OK;
}

/* The spec from the planned columns. */
static int finish(struct sel *q, struct router_merge *m)
{
	int n_hidden = q->n_cols - q->n_visible;

	m->aggregate = q->aggregate;
	m->n_hidden = n_hidden;
	if (q->star_at >= 0) {
		m->n_cols = -1;
		m->n_visible = -1;
		/* hidden columns counted from the row's end */
		for (int i = 0; i < m->n_sort; i++)
			if (m->sort[i].col >= q->n_visible)
				m->sort[i].col = -(q->n_cols - m->sort[i].col);
		return OK;
	}
	m->n_cols = q->n_cols;
	m->n_visible = q->n_visible;
	if (!q->aggregate)
		return OK;
	m->cols = calloc((size_t)q->n_cols, sizeof(*m->cols));
	if (!m->cols)
		return NOMEM;
	for (int i = 0; i < q->n_cols; i++) {
		m->cols[i].agg = q->cols[i].agg;
		m->cols[i].count_col = q->cols[i].count_col;
	}
	return OK;
}

static int plan_select(struct sel *q, struct router_merge *m)
{
	PgQuery__SelectStmt *s = q->s;
	struct from fr = { 0 };
	int rc;

	rc = check_select(q, s, &fr);
	free(fr.eqs);
	if (rc != OK)
		return rc;
	if (fr.n_rels == 0)
		return refuse(q, "0A000", "this query reads no sharded table");
	if (s->n_window_clause)
		return refuse(q, "0A000", "window functions cannot be merged across shards");
	if (s->n_distinct_clause) {
		/* DISTINCT alone is a list holding one empty item */
		if (s->n_distinct_clause > 1
		    || (s->distinct_clause[0]
			&& s->distinct_clause[0]->node_case != PG_QUERY__NODE__NODE__NOT_SET))
			return refuse(q, "0A000",
				      "SELECT DISTINCT ON cannot be merged across "
				      "shards");
		m->distinct = true;
	}
	if ((rc = any_aggregate(q, &q->aggregate)) != OK || (rc = visible_targets(q)) != OK)
		return rc;
	if (q->aggregate && (rc = group_by(q)) != OK)
		return rc;
	if ((rc = order_by(q, m)) != OK)
		return rc;
	if (s->having_clause) {
		if ((rc = having_expr(q, s->having_clause, 0, &m->having)) != OK)
			return rc;
		drop_node(&s->having_clause);
		q->rewritten = true;
	}
	if ((rc = limit_offset(q, m)) != OK)
		return rc;
	return finish(q, m);
}

static int deparse(PgQuery__ParseResult *tree, char **out)
{
	PgQueryProtobuf pb;
	PgQueryDeparseResult d;
	int rc = OK;

	pb.len = pg_query__parse_result__get_packed_size(tree);
	pb.data = malloc(pb.len ? pb.len : 1);
	if (!pb.data)
		return NOMEM;
	pg_query__parse_result__pack(tree, (uint8_t *)pb.data);
	d = pg_query_deparse_protobuf(pb);
	free(pb.data);
	if (d.error || !d.query)
		rc = NOMEM; /* a tree the parser made always deparses */
	else if (!(*out = strdup(d.query)))
		rc = NOMEM;
	pg_query_free_deparse_result(d);
	return rc;
}

int router_select_merge(const struct router_schema *schema, const char *sql, size_t len,
			struct router_plan *p)
{
	struct sel q = { .schema = schema, .star_at = -1 };
	PgQueryProtobufParseResult r;
	PgQuery__ParseResult *tree = NULL;
	struct router_merge *m;
	char *text;
	int rc;

	m = calloc(1, sizeof(*m));
	text = malloc(len + 1);
	if (!m || !text) {
		free(m);
		free(text);
		return -1;
	}
	m->limit = -1;
	memcpy(text, sql, len);
	text[len] = '\0';
	r = pg_query_parse_protobuf(text);
	free(text);
	if (r.error) {
		rc = r.error->message && strstr(r.error->message, "out of memory")
			? NOMEM
			: refuse(&q, "42601", "%s",
				 r.error->message ? r.error->message : "syntax error");
		pg_query_free_protobuf_parse_result(r);
		goto out;
	}
	tree = pg_query__parse_result__unpack(NULL, r.parse_tree.len,
					      (const uint8_t *)r.parse_tree.data);
	pg_query_free_protobuf_parse_result(r);
	if (!tree) {
		rc = NOMEM;
		goto out;
	}
	if (tree->n_stmts != 1 || !tree->stmts[0]->stmt
	    || tree->stmts[0]->stmt->node_case != PG_QUERY__NODE__NODE_SELECT_STMT) {
		rc = refuse(&q, "0A000", "only one SELECT can be merged across shards");
		goto out;
	}
	if (walk(&tree->base, zero_location, NULL) < 0) {
		rc = NOMEM;
		goto out;
	}
	q.s = tree->stmts[0]->stmt->select_stmt;
	rc = plan_select(&q, m);
	if (rc == OK && q.rewritten)
		rc = deparse(tree, &p->shard_sql);
out:
	if (tree)
		pg_query__parse_result__free_unpacked(tree, NULL);
	for (int i = 0; i < q.n_cols; i++)
		free(q.cols[i].key);
	free(q.cols);
	if (rc == OK) {
		p->merge = m;
		return 0;
	}
	router_merge_free(m);
	if (rc == REFUSED) {
		p->route = ROUTER_REFUSE;
		memcpy(p->sqlstate, q.sqlstate, sizeof(p->sqlstate));
		free(p->message);
		p->message = q.msg;
		return 0;
	}
	free(q.msg);
	return -1;
}
