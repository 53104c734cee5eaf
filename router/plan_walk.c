/* One walk over a statement's tree, without recursion (a tree can be
 * thousands of levels deep): protobuf-c's descriptors say which fields
 * hold messages, so one loop reaches every node of any statement. Scopes
 * (SELECT, UPDATE, DELETE) are handed to plan_keys.c as they are met, each
 * with the WITH names its enclosing statements declare; a sharded table
 * named outside any scope (or an INSERT's target inside another statement)
 * is noted as keyless. */
#include <stdlib.h>
#include <string.h>

#include "router/plan_tree.h"

struct entry {
	const ProtobufCMessage *m;
	const struct plan_cte *ctes;
};

void plan_walk_note_table(struct plan_walk *w, int table, int location)
{
	w->n_sharded++;
	if (w->first_table < 0 || location < w->first_loc) {
		w->first_table = table;
		w->first_loc = location;
	}
}

void plan_walk_unkeyed(struct plan_walk *w, int table)
{
	if (w->unkeyed_table < 0)
		w->unkeyed_table = table;
}

int plan_walk_claim(struct plan_walk *w, const PgQuery__RangeVar *rv)
{
	if (w->n_claimed == w->cap_claimed) {
		int cap = w->cap_claimed ? 2 * w->cap_claimed : 16;
		const void **grown = realloc(w->claimed, cap * sizeof(*grown));
		if (!grown)
			return -1;
		w->claimed = grown;
		w->cap_claimed = cap;
	}
	w->claimed[w->n_claimed++] = rv;
	return 0;
}

static bool claimed(const struct plan_walk *w, const void *rv)
{
	for (int i = 0; i < w->n_claimed; i++)
		if (w->claimed[i] == rv)
			return true;
	return false;
}

/* The names a WITH declares, in front of those already in view. */
static int with_names(struct plan_walk *w, const PgQuery__WithClause *with,
		      const struct plan_cte **head)
{
	if (!with)
		return 0;
	for (size_t i = 0; i < with->n_ctes; i++) {
		const PgQuery__Node *n = with->ctes[i];
		struct plan_cte *c;
		if (!n || n->node_case != PG_QUERY__NODE__NODE_COMMON_TABLE_EXPR
		    || !n->common_table_expr->ctename)
			continue;
		if (!(c = malloc(sizeof(*c))))
			return -1;
		c->name = n->common_table_expr->ctename;
		c->next = *head;
		c->all_next = w->ctes;
		w->ctes = c;
		*head = c;
	}
	return 0;
}

static void insert_target(struct plan_walk *w, const PgQuery__InsertStmt *ins, bool top,
			  const struct plan_cte *ctes)
{
	int t;

	if (!ins->relation || plan_walk_claim(w, ins->relation) < 0)
		return; /* unclaimed, it is only counted as keyless: safe */
	if (top || plan_cte_visible(ctes, ins->relation))
		return;
	w->nested_write = true;
	if ((t = plan_table_of(w->schema, ins->relation)) >= 0 && w->nested_insert < 0)
		w->nested_insert = t;
}

/* What a node means for routing; -1 out of memory. */
static int visit(struct plan_walk *w, const ProtobufCMessage *m, bool top,
		 const struct plan_cte **ctes)
{
	const char *name = m->descriptor->short_name;

	switch (name[0]) {
	case 'S':
		if (strcmp(name, "SelectStmt") == 0) {
			const PgQuery__SelectStmt *s = (const PgQuery__SelectStmt *)m;
			if (with_names(w, s->with_clause, ctes) < 0)
				return -1;
			if (s->into_clause)
				w->into = true;
			if (!s->larg && !s->rarg)
				return plan_scope_select(w, s, *ctes);
		}
		return 0;
	case 'U':
		if (strcmp(name, "UpdateStmt") == 0) {
			const PgQuery__UpdateStmt *u = (const PgQuery__UpdateStmt *)m;
			if (with_names(w, u->with_clause, ctes) < 0)
				return -1;
			w->nested_write |= !top;
			return plan_scope_modify(w, u->relation, u->from_clause, u->n_from_clause,
						 u->where_clause, *ctes);
		}
		return 0;
	case 'D':
		if (strcmp(name, "DeleteStmt") == 0) {
			const PgQuery__DeleteStmt *d = (const PgQuery__DeleteStmt *)m;
			if (with_names(w, d->with_clause, ctes) < 0)
				return -1;
			w->nested_write |= !top;
			return plan_scope_modify(w, d->relation, d->using_clause, d->n_using_clause,
						 d->where_clause, *ctes);
		}
		return 0;
	case 'I':
		if (strcmp(name, "InsertStmt") == 0) {
			const PgQuery__InsertStmt *ins = (const PgQuery__InsertStmt *)m;
			if (with_names(w, ins->with_clause, ctes) < 0)
				return -1;
			insert_target(w, ins, top, *ctes);
		}
		return 0;
	case 'M':
		if (strcmp(name, "MergeStmt") == 0)
			w->nested_write |= !top;
		return 0;
	case 'R':
		if (strcmp(name, "RangeVar") == 0) {
			const PgQuery__RangeVar *rv = (const PgQuery__RangeVar *)m;
			int t;
			if (rv == w->skip || claimed(w, rv) || plan_cte_visible(*ctes, rv))
				return 0;
			if ((t = plan_table_of(w->schema, rv)) >= 0) {
				plan_walk_note_table(w, t, rv->location);
				plan_walk_unkeyed(w, t);
			}
		}
		return 0;
	default:
		return 0;
	}
}

int plan_walk(struct plan_walk *w, const struct router_schema *schema, const PgQuery__Node *stmt,
	      const PgQuery__RangeVar *skip)
{
	struct entry local[64], *stack = local, *grown;
	size_t n = 0, cap = sizeof(local) / sizeof(local[0]);
	const ProtobufCMessage *top = NULL;
	int rc = 0;

	memset(w, 0, sizeof(*w));
	w->schema = schema;
	w->skip = skip;
	w->first_table = -1;
	w->unkeyed_table = -1;
	w->nested_insert = -1;
	w->keys.n_shards = schema->n_shards;

#define PUSH(msg, c)                                              \
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
		stack[n].m = (msg);                               \
		stack[n++].ctes = (c);                            \
	} while (0)

	PUSH(&stmt->base, NULL);
	while (n > 0) {
		const ProtobufCMessage *m = stack[--n].m;
		const struct plan_cte *ctes = stack[n].ctes;
		const ProtobufCMessageDescriptor *d = m->descriptor;
		const char *base = (const char *)m;

		/* the statement is the first message that is not a Node */
		if (!top && strcmp(d->short_name, "Node") != 0)
			top = m;
		if (visit(w, m, m == top, &ctes) < 0) {
			rc = -1;
			goto out;
		}
		for (unsigned i = 0; i < d->n_fields; i++) {
			const ProtobufCFieldDescriptor *f = &d->fields[i];

			if (f->type != PROTOBUF_C_TYPE_MESSAGE)
				continue;
			if (f->flags & PROTOBUF_C_FIELD_FLAG_ONEOF) {
				if (*(const uint32_t *)(base + f->quantifier_offset) != f->id)
					continue;
			} else if (f->label == PROTOBUF_C_LABEL_REPEATED) {
				size_t count = *(const size_t *)(base + f->quantifier_offset);
				ProtobufCMessage *const *arr = *(
					ProtobufCMessage *const *const *)(base + f->offset);
				/* backwards, so that they are visited in order */
				for (size_t j = count; j-- > 0;)
					if (arr[j])
						PUSH(arr[j], ctes);
				continue;
			}
			const ProtobufCMessage *child = *(ProtobufCMessage *const *)(base
										     + f->offset);
			if (child)
				PUSH(child, ctes);
		}
	}
#undef PUSH
out:
	if (stack != local)
		free(stack);
	return rc;
}

void plan_walk_free(struct plan_walk *w)
{
	struct plan_cte *c = w->ctes, *next;

	for (; c; c = next) {
		next = c->all_next;
		free(c);
	}
	free(w->claimed);
	plan_keys_free(w->keys.keys, w->keys.n);
	w->keys.keys = NULL;
	w->keys.n = 0;
	w->ctes = NULL;
	w->claimed = NULL;
}
