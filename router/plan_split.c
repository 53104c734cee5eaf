/* One shard's part of a multi-row INSERT whose keys came with a Bind: the
 * statement's tree (kept packed in the plan by plan_insert.c) with only
 * that shard's VALUES rows, its parameters renumbered from $1 so that the
 * relay can Bind just the values the part uses. Parameters are found by a
 * walk over every node, so those outside the rows (RETURNING, ON
 * CONFLICT, WITH) are renumbered like the rest. */
#include <stdlib.h>
#include <string.h>

#include "router/plan_tree.h"

/* The parameter references of a tree, found without recursion (a tree can
 * be thousands of levels deep), as plan_walk.c walks. */
struct refs {
	PgQuery__ParamRef **at;
	size_t n, cap;
};

static int refs_add(struct refs *r, PgQuery__ParamRef *ref)
{
	if (r->n == r->cap) {
		size_t cap = r->cap ? 2 * r->cap : 16;
		PgQuery__ParamRef **grown = realloc(r->at, cap * sizeof(*grown));
		if (!grown)
			return -1;
		r->at = grown;
		r->cap = cap;
	}
	r->at[r->n++] = ref;
	return 0;
}

static int find_params(ProtobufCMessage *root, struct refs *out)
{
	ProtobufCMessage *local[64], **stack = local, **grown;
	size_t n = 0, cap = sizeof(local) / sizeof(local[0]);
	int rc = 0;

#define PUSH(msg)                                                 \
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
		stack[n++] = (msg);                               \
	} while (0)

	PUSH(root);
	while (n > 0) {
		ProtobufCMessage *m = stack[--n];
		const ProtobufCMessageDescriptor *d = m->descriptor;
		char *base = (char *)m;

		/* by name, as plan_walk.c: not the descriptor's address */
		if (strcmp(d->short_name, "ParamRef") == 0) {
			if (refs_add(out, (PgQuery__ParamRef *)m) < 0) {
				rc = -1;
				goto out;
			}
			continue;
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

static int cmp_int(const void *a, const void *b)
{
	int x = *(const int *)a, y = *(const int *)b;
	return (x > y) - (x < y);
}

/* Gives the parameters refs holds the numbers 1..k in the order of their
 * original numbers; *map (malloc'd, NULL when k is 0) says which original
 * each new number stands for. k, or -1 out of memory. */
static int renumber(const struct refs *refs, int **map)
{
	int *nums, k = 0;

	*map = NULL;
	if (refs->n == 0)
		return 0;
	if (!(nums = malloc(refs->n * sizeof(*nums))))
		return -1;
	for (size_t i = 0; i < refs->n; i++)
		nums[i] = refs->at[i]->number;
	qsort(nums, refs->n, sizeof(*nums), cmp_int);
	for (size_t i = 0; i < refs->n; i++)
		if (k == 0 || nums[k - 1] != nums[i])
			nums[k++] = nums[i];
	for (size_t i = 0; i < refs->n; i++) {
		const int *at = bsearch(&refs->at[i]->number, nums, (size_t)k, sizeof(*nums),
					cmp_int);
		refs->at[i]->number = (int32_t)(at - nums) + 1;
	}
	*map = nums;
	return k;
}

int router_insert_subset(const struct router_plan *p, const bool *keep, char **sql, int **param_map,
			 int *n_params)
{
	PgQuery__Node *stmt, **all, **mine = NULL;
	PgQuery__SelectStmt *values = NULL;
	struct refs refs = { 0 };
	size_t n_all = 0, k = 0;
	bool failed;
	int n_map = -1;

	*sql = NULL;
	*param_map = NULL;
	*n_params = 0;
	if (!p->insert_tree || p->insert_rows < 1)
		return -1;
	stmt = pg_query__node__unpack(NULL, p->insert_tree_len, p->insert_tree);
	if (!stmt)
		return -1;
	if (stmt->node_case == PG_QUERY__NODE__NODE_INSERT_STMT && stmt->insert_stmt->select_stmt
	    && stmt->insert_stmt->select_stmt->node_case == PG_QUERY__NODE__NODE_SELECT_STMT)
		values = stmt->insert_stmt->select_stmt->select_stmt;
	if (!values || values->n_values_lists != (size_t)p->insert_rows)
		goto out;
	all = values->values_lists;
	n_all = values->n_values_lists;
	if (!(mine = malloc(n_all * sizeof(*mine))))
		goto out;
	for (size_t r = 0; r < n_all; r++)
		if (keep[r])
			mine[k++] = all[r];
	if (k == 0)
		goto out;
	/* the dropped rows stay out of the walk and the text; the unpacked
	 * tree still owns them (restored before it is freed) */
	values->values_lists = mine;
	values->n_values_lists = k;
	if (find_params(&stmt->base, &refs) == 0 && (n_map = renumber(&refs, param_map)) >= 0)
		*sql = plan_deparse(stmt, &failed);
	values->values_lists = all;
	values->n_values_lists = n_all;
out:
	free(mine);
	free(refs.at);
	pg_query__node__free_unpacked(stmt, NULL);
	if (!*sql) {
		free(*param_map);
		*param_map = NULL;
		return -1;
	}
	*n_params = n_map;
	return 0;
}
