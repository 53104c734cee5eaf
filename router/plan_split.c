/* One shard's part of a multi-row INSERT whose keys came with a Bind: the
 * client's text with only that shard's VALUES rows, its parameters
 * renumbered from $1 so that the relay binds just the values the part
 * uses. The cut is made on the text, not on the parse tree: a deparse
 * goes through libpg_query's protobuf, whose Node message (hundreds of
 * fields) makes it cost a millisecond for a hundred rows, where copying
 * text costs microseconds. At Parse, the lexer's tokens say where each row
 * and each $n is; they are checked against the tree (the same rows with
 * the same parameters), and a text that does not match is not cut. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <pg_query.h>

#include "router/plan_tree.h"

#define MAX_PARAM 65535 /* a Bind has at most this many */

/* p->insert_split, one block: the head, then uint32_t row_start[n_rows]
 * and row_end[n_rows] (each row from its '(' to past its ')'), struct
 * split_param params[n_params] (every $n of the text, in order), and the
 * text (NUL-terminated). */
struct split_head {
	uint32_t text_len;
	int32_t n_rows;
	int32_t n_params;
	int32_t max_number;
};

struct split_param {
	uint32_t at, end;
	int32_t number;
};

struct split_view {
	const struct split_head *h;
	const uint32_t *row_start, *row_end;
	const struct split_param *params;
	const char *text;
};

static size_t block_size(size_t n_rows, size_t n_params, size_t text_len, size_t *rows_at,
			 size_t *params_at, size_t *text_at)
{
	*rows_at = sizeof(struct split_head);
	*params_at = *rows_at + 2 * n_rows * sizeof(uint32_t);
	*text_at = *params_at + n_params * sizeof(struct split_param);
	return *text_at + text_len + 1;
}

static struct split_view view_of(const uint8_t *block)
{
	struct split_view v;
	size_t rows_at, params_at, text_at;

	v.h = (const struct split_head *)block;
	block_size((size_t)v.h->n_rows, (size_t)v.h->n_params, v.h->text_len, &rows_at, &params_at,
		   &text_at);
	v.row_start = (const uint32_t *)(block + rows_at);
	v.row_end = v.row_start + v.h->n_rows;
	v.params = (const struct split_param *)(block + params_at);
	v.text = (const char *)block + text_at;
	return v;
}

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

/* The numbers of the parameters of a subtree, sorted; -1 out of memory. */
static int tree_params(const PgQuery__Node *n, struct refs *r, int **nums)
{
	r->n = 0;
	*nums = NULL;
	if (find_params((ProtobufCMessage *)&n->base, r) < 0)
		return -1;
	if (r->n && !(*nums = malloc(r->n * sizeof(**nums))))
		return -1;
	for (size_t i = 0; i < r->n; i++)
		(*nums)[i] = r->at[i]->number;
	if (r->n)
		qsort(*nums, r->n, sizeof(**nums), cmp_int);
	return 0;
}

static bool skipped(const PgQuery__ScanToken *t)
{
	return t->token == PG_QUERY__TOKEN__SQL_COMMENT || t->token == PG_QUERY__TOKEN__C_COMMENT;
}

/* The rows' spans: after the first VALUES list that follows the INSERT
 * keyword (the WITH before it may hold VALUES of its own), each parenthesized
 * group at VALUES' depth, separated by commas. The number of rows found,
 * or -1 (not the shape of a VALUES list). */
static int find_rows(PgQuery__ScanToken *const *tok, size_t nt, const int *depth, size_t max_rows,
		     uint32_t *row_start, uint32_t *row_end)
{
	size_t i = 0, n = 0;
	int d;

	while (i < nt && !(tok[i]->token == PG_QUERY__TOKEN__INSERT && depth[i] == 0))
		i++;
	/* a column may be named values: the list's VALUES is followed by '(' */
	for (;; i++) {
		size_t next = i + 1;
		while (next < nt && skipped(tok[next]))
			next++;
		if (next >= nt)
			return -1;
		if (tok[i]->token == PG_QUERY__TOKEN__VALUES
		    && tok[next]->token == PG_QUERY__TOKEN__ASCII_40)
			break;
	}
	d = depth[i++];
	for (;;) {
		while (i < nt && skipped(tok[i]))
			i++;
		if (i == nt || tok[i]->token != PG_QUERY__TOKEN__ASCII_40 || n == max_rows)
			return -1;
		row_start[n] = (uint32_t)tok[i]->start;
		/* its ')' is the first after it back at depth d */
		for (i++;
		     i < nt && !(tok[i]->token == PG_QUERY__TOKEN__ASCII_41 && depth[i] == d + 1);
		     i++)
			;
		if (i == nt)
			return -1;
		row_end[n++] = (uint32_t)tok[i++]->end;
		while (i < nt && skipped(tok[i]))
			i++;
		if (i == nt || tok[i]->token != PG_QUERY__TOKEN__ASCII_44 || depth[i] != d)
			return (int)n;
		i++;
	}
}

int plan_split_prepare(const PgQuery__Node *stmt, const PgQuery__SelectStmt *values,
		       const char *sql, size_t len, struct router_plan *p)
{
	size_t n_rows = values->n_values_lists, nt = 0, np = 0, rows_at, params_at, text_at, size;
	PgQuery__ScanResult *scan = NULL;
	PgQueryScanResult sr;
	struct split_param *params = NULL;
	struct refs refs = { 0 };
	uint32_t *row_start = NULL, *row_end = NULL;
	int *depth = NULL, *tree_nums = NULL, *text_nums = NULL, max_number = 0, rc = -1;
	char *text;
	uint8_t *block;

	if (len > INT32_MAX / 2 || n_rows > INT32_MAX / 2)
		return 1;
	if (!(text = malloc(len + 1)))
		return -1;
	memcpy(text, sql, len);
	text[len] = '\0';
	sr = pg_query_scan(text);
	if (sr.error) {
		rc = sr.error->message && strstr(sr.error->message, "out of memory") ? -1 : 1;
		pg_query_free_scan_result(sr);
		goto out;
	}
	scan = pg_query__scan_result__unpack(NULL, sr.pbuf.len, (const uint8_t *)sr.pbuf.data);
	pg_query_free_scan_result(sr);
	if (!scan)
		goto out;
	nt = scan->n_tokens;
	depth = malloc((nt + 1) * sizeof(*depth));
	params = malloc((nt + 1) * sizeof(*params));
	row_start = malloc(n_rows * sizeof(*row_start));
	row_end = malloc(n_rows * sizeof(*row_end));
	if (!depth || !params || !row_start || !row_end)
		goto out;
	rc = 1; /* from here on, a mismatch: not cut */
	for (size_t i = 0, d = 0; i < nt; i++) {
		const PgQuery__ScanToken *t = scan->tokens[i];
		if (t->start < 0 || t->end < t->start || (size_t)t->end > len)
			goto out;
		if (t->token == PG_QUERY__TOKEN__ASCII_41) {
			if (d == 0)
				goto out;
			depth[i] = (int)d--;
		} else {
			depth[i] = (int)d;
			if (t->token == PG_QUERY__TOKEN__ASCII_40)
				d++;
		}
		if (t->token == PG_QUERY__TOKEN__PARAM) {
			char *digits_end;
			long v = strtol(text + t->start + 1, &digits_end, 10);
			if (v < 1 || v > MAX_PARAM || digits_end != text + t->end)
				goto out;
			params[np].at = (uint32_t)t->start;
			params[np].end = (uint32_t)t->end;
			params[np++].number = (int32_t)v;
			if (v > max_number)
				max_number = (int)v;
		}
	}
	if (find_rows(scan->tokens, nt, depth, n_rows, row_start, row_end) != (int)n_rows)
		goto out;

	/* the tree's parameters are the text's, row by row */
	if (tree_params(stmt, &refs, &tree_nums) < 0) {
		rc = -1;
		goto out;
	}
	free(tree_nums);
	tree_nums = NULL;
	if (refs.n != np)
		goto out;
	if (np && !(text_nums = malloc(np * sizeof(*text_nums)))) {
		rc = -1;
		goto out;
	}
	for (size_t r = 0, pi = 0; r < n_rows; r++) {
		size_t k = 0;
		if (tree_params(values->values_lists[r], &refs, &tree_nums) < 0) {
			rc = -1;
			goto out;
		}
		while (pi < np && params[pi].at < row_start[r])
			pi++;
		for (; pi < np && params[pi].at < row_end[r]; pi++)
			text_nums[k++] = params[pi].number;
		if (k)
			qsort(text_nums, k, sizeof(*text_nums), cmp_int);
		if (k != refs.n || (k && memcmp(text_nums, tree_nums, k * sizeof(int)) != 0))
			goto out;
		free(tree_nums);
		tree_nums = NULL;
	}

	size = block_size(n_rows, np, len, &rows_at, &params_at, &text_at);
	if (!(block = malloc(size))) {
		rc = -1;
		goto out;
	}
	*(struct split_head *)block = (struct split_head){
		.text_len = (uint32_t)len,
		.n_rows = (int32_t)n_rows,
		.n_params = (int32_t)np,
		.max_number = max_number,
	};
	memcpy(block + rows_at, row_start, n_rows * sizeof(*row_start));
	memcpy(block + rows_at + n_rows * sizeof(*row_start), row_end, n_rows * sizeof(*row_end));
	if (np)
		memcpy(block + params_at, params, np * sizeof(*params));
	memcpy(block + text_at, text, len + 1);
	free(p->insert_split);
	p->insert_split = block;
	p->insert_split_len = size;
	rc = 0;
out:
	free(text);
	free(depth);
	free(params);
	free(row_start);
	free(row_end);
	free(refs.at);
	free(tree_nums);
	free(text_nums);
	if (scan)
		pg_query__scan_result__free_unpacked(scan, NULL);
	return rc;
}

/* Appends text[from, to) to out, each $n in it (params from *pi on) as
 * its new number. */
static size_t copy_span(const struct split_view *v, uint32_t from, uint32_t to, const int *new_of,
			size_t *pi, char *out, size_t used)
{
	uint32_t at = from;

	while (*pi < (size_t)v->h->n_params && v->params[*pi].at < from)
		(*pi)++;
	for (; *pi < (size_t)v->h->n_params && v->params[*pi].at < to; (*pi)++) {
		const struct split_param *sp = &v->params[*pi];
		memcpy(out + used, v->text + at, sp->at - at);
		used += sp->at - at;
		/* never longer than the $n it replaces: the new number is not larger */
		used += (size_t)snprintf(out + used, sp->end - sp->at + 1, "$%d",
					 new_of[sp->number]);
		at = sp->end;
	}
	memcpy(out + used, v->text + at, to - at);
	return used + (to - at);
}

int router_insert_subset(const struct router_plan *p, const bool *keep, char **sql, int **param_map,
			 int *n_params)
{
	struct split_view v;
	int *new_of = NULL, *map = NULL, n_rows, k = 0, rows_kept = 0;
	size_t pi = 0, used = 0, r = 0;
	char *out = NULL;

	*sql = NULL;
	*param_map = NULL;
	*n_params = 0;
	if (!p->insert_split || p->insert_rows < 1)
		return -1;
	v = view_of(p->insert_split);
	n_rows = v.h->n_rows;
	for (int i = 0; i < n_rows; i++)
		rows_kept += keep[i];
	if (n_rows != p->insert_rows || rows_kept == 0)
		return -1;

	/* the parameters the part uses: those outside the rows and in kept
	 * rows, numbered in the order of their original numbers */
	if (!(new_of = calloc((size_t)v.h->max_number + 1, sizeof(*new_of))))
		return -1;
	for (int i = 0; i < v.h->n_params; i++) {
		const struct split_param *sp = &v.params[i];
		while (r < (size_t)n_rows && sp->at >= v.row_end[r])
			r++;
		if (r == (size_t)n_rows || sp->at < v.row_start[r] || keep[r])
			new_of[sp->number] = 1;
	}
	for (int num = 1; num <= v.h->max_number; num++)
		k += new_of[num];
	if (k && !(map = malloc((size_t)k * sizeof(*map))))
		goto oom;
	k = 0;
	for (int num = 1; num <= v.h->max_number; num++)
		if (new_of[num]) {
			map[k] = num;
			new_of[num] = ++k;
		}

	if (!(out = malloc(v.h->text_len + 2 * (size_t)n_rows + 1)))
		goto oom;
	used = copy_span(&v, 0, v.row_start[0], new_of, &pi, out, used);
	rows_kept = 0;
	for (int i = 0; i < n_rows; i++) {
		if (!keep[i])
			continue;
		if (rows_kept++) {
			memcpy(out + used, ", ", 2);
			used += 2;
		}
		used = copy_span(&v, v.row_start[i], v.row_end[i], new_of, &pi, out, used);
	}
	used = copy_span(&v, v.row_end[n_rows - 1], v.h->text_len, new_of, &pi, out, used);
	out[used] = '\0';
	free(new_of);
	*sql = out;
	*param_map = map;
	*n_params = k;
	return 0;
oom:
	free(new_of);
	free(map);
	return -1;
}
