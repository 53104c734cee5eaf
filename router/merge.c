/* The merge of answers from several shards (router.h): backend messages
 * in, the client's messages out.
 *
 * Without aggregates rows stream: each source's rows wait in a short queue;
 * with ORDER BY a row leaves only when every source still running has one
 * queued (its place is then certain), so memory stays at the queues' bound
 * however many rows pass. With aggregates every row is folded into its
 * group at once, and the groups leave when every source is done, after
 * HAVING, DISTINCT, the sort and OFFSET/LIMIT. */
#include "router/router.h"
#include "router/internal.h"

#include <inttypes.h>
#include <math.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define QUEUE_ROWS  64
#define QUEUE_BYTES (256 * 1024)

/* A DataRow body with where each column's length word sits: field[i] for
 * column i, field[n] the end. */
struct mrow {
	struct mrow *next;
	uint32_t len;
	int n;
	uint32_t *field;
	uint8_t *body;
};

struct source {
	struct mrow *head, *tail;
	uint32_t n_rows;
	size_t bytes;
	bool described;
	bool sent_rows; /* rows without a description: none is coming */
	bool done;
	uint8_t end; /* 'C', 'I' or 's' */
};

/* A chained hash table of byte keys (DISTINCT rows, groups). */
struct hnode {
	struct hnode *next;
	uint64_t hash;
	uint32_t len;
	void *payload;
	uint8_t key[];
};

struct htab {
	struct hnode **b;
	size_t nb, n;
};

/* One column's merged state in a group. */
struct acc {
	bool seen; /* a non-NULL value was merged */
	int64_t i;
	double f;
	bool b;
	struct router_dec dec;
	uint8_t *val; /* ROUTER_AGG_NONE, MIN, MAX: the value kept */
	uint32_t len;
};

enum sum_way { SUM_INT, SUM_DEC, SUM_FLOAT };

struct router_merger {
	bool plain; /* no spec: pass through, counts summed */
	bool star;  /* the spec's columns are a '*' not yet described */
	struct router_merge spec;
	int n_sources;
	struct source *src;

	/* from the first RowDescription */
	bool have_types;
	uint32_t *types;
	int16_t *formats;
	enum router_kind *kinds;     /* of the shards' columns */
	enum router_kind *out_kinds; /* of the merged ones (an AVG: the average's) */
	enum sum_way *ways;
	bool *is_count; /* columns summed as counts (an AVG's count_col too) */
	uint8_t *desc;  /* the client's RowDescription body */
	uint32_t desc_len;

	int n_described, n_done;
	bool desc_sent, complete_sent, finished;
	int64_t skipped, sent;

	struct mrow *passed;    /* the next row, past DISTINCT and OFFSET already */
	bool distinct_adjacent; /* sorted on every visible column: compare with the last */
	struct mrow *last;
	struct htab seen;

	struct htab groups;
	struct mrow **results;
	size_t n_results, next_result;
	bool finalized;

	/* a plain merge's CommandComplete: the first tag's words, counts summed */
	char tag[64];
	bool tag_counted;
	uint64_t tag_sum;
};

/* A column's aggregate; a spec without cols has plain values only. */
static enum router_agg col_agg(const struct router_merger *m, int i)
{
	return m->plain || !m->spec.cols ? ROUTER_AGG_NONE : m->spec.cols[i].agg;
}

/* ---- small helpers ---------------------------------------------------------- */

static void set_err(char sqlstate[6], char *err, size_t errlen, const char *code, const char *fmt,
		    ...) __attribute__((format(printf, 5, 6)));

static void set_err(char sqlstate[6], char *err, size_t errlen, const char *code, const char *fmt,
		    ...)
{
	memcpy(sqlstate, code, 6);
	va_list ap;
	va_start(ap, fmt);
	if (errlen)
		vsnprintf(err, errlen, fmt, ap);
	va_end(ap);
}

#define OOM(m) set_err(sqlstate, err, errlen, "53200", "out of memory")

static uint32_t be32(const uint8_t *p)
{
	return ((uint32_t)p[0] << 24) | ((uint32_t)p[1] << 16) | ((uint32_t)p[2] << 8) | p[3];
}

static void put16(uint8_t *p, uint16_t v)
{
	p[0] = (uint8_t)(v >> 8);
	p[1] = (uint8_t)v;
}

static void put32(uint8_t *p, uint32_t v)
{
	p[0] = (uint8_t)(v >> 24);
	p[1] = (uint8_t)(v >> 16);
	p[2] = (uint8_t)(v >> 8);
	p[3] = (uint8_t)v;
}

static uint64_t hash_bytes(const uint8_t *p, size_t n)
{
	uint64_t h = UINT64_C(0xcbf29ce484222325);
	for (size_t i = 0; i < n; i++)
		h = (h ^ p[i]) * UINT64_C(0x100000001b3);
	return h ^ (h >> 29);
}

/* The node for key, added (payload NULL, *added set) if absent; NULL out
 * of memory. */
static struct hnode *htab_get(struct htab *t, const uint8_t *key, uint32_t len, bool *added)
{
	uint64_t h = hash_bytes(key, len);
	*added = false;
	if (t->nb) {
		for (struct hnode *n = t->b[h % t->nb]; n; n = n->next)
			if (n->hash == h && n->len == len && memcmp(n->key, key, len) == 0)
				return n;
	}
	if (t->n >= t->nb) {
		size_t nb = t->nb ? t->nb * 2 : 64;
		struct hnode **b = calloc(nb, sizeof(*b));
		if (!b)
			return NULL;
		for (size_t i = 0; i < t->nb; i++) {
			for (struct hnode *n = t->b[i], *next; n; n = next) {
				next = n->next;
				n->next = b[n->hash % nb];
				b[n->hash % nb] = n;
			}
		}
		free(t->b);
		t->b = b;
		t->nb = nb;
	}
	struct hnode *n = malloc(sizeof(*n) + len);
	if (!n)
		return NULL;
	n->hash = h;
	n->len = len;
	n->payload = NULL;
	memcpy(n->key, key, len);
	n->next = t->b[h % t->nb];
	t->b[h % t->nb] = n;
	t->n++;
	*added = true;
	return n;
}

static void htab_free(struct htab *t, void (*free_payload)(struct router_merger *, void *),
		      struct router_merger *m)
{
	for (size_t i = 0; i < t->nb; i++) {
		for (struct hnode *n = t->b[i], *next; n; n = next) {
			next = n->next;
			if (free_payload)
				free_payload(m, n->payload);
			free(n);
		}
	}
	free(t->b);
	memset(t, 0, sizeof(*t));
}

/* ---- rows ---------------------------------------------------------------------- */

/* A copy of a DataRow body; NULL with *bad set if malformed, or out of
 * memory (*bad clear). */
static struct mrow *row_new(const uint8_t *body, uint32_t len, bool *bad)
{
	*bad = true;
	if (len < 2)
		return NULL;
	int n = (int16_t)((body[0] << 8) | body[1]);
	if (n < 0)
		return NULL;
	struct mrow *r = malloc(sizeof(*r) + sizeof(uint32_t) * (size_t)(n + 1) + len);
	if (!r) {
		*bad = false;
		return NULL;
	}
	r->next = NULL;
	r->len = len;
	r->n = n;
	r->field = (uint32_t *)(r + 1);
	r->body = (uint8_t *)(r->field + n + 1);
	memcpy(r->body, body, len);
	uint32_t off = 2;
	for (int i = 0; i < n; i++) {
		if (len - off < 4)
			goto malformed;
		r->field[i] = off;
		int32_t vl = (int32_t)be32(body + off);
		off += 4;
		if (vl < -1 || (vl > 0 && (uint32_t)vl > len - off))
			goto malformed;
		if (vl > 0)
			off += (uint32_t)vl;
	}
	if (off != len)
		goto malformed;
	r->field[n] = off;
	return r;
malformed:
	free(r);
	return NULL;
}

static void get_value(const struct mrow *r, int col, const uint8_t **v, int32_t *len)
{
	const uint8_t *p = r->body + r->field[col];
	*len = (int32_t)be32(p);
	*v = p + 4;
}

static int cmp_rows(const struct router_merger *m, const struct mrow *a, const struct mrow *b,
		    const enum router_kind *kinds)
{
	for (int i = 0; i < m->spec.n_sort; i++) {
		const struct router_sort *s = &m->spec.sort[i];
		const uint8_t *va, *vb;
		int32_t la, lb;
		get_value(a, s->col, &va, &la);
		get_value(b, s->col, &vb, &lb);
		int c;
		if (la < 0 || lb < 0) {
			if (la < 0 && lb < 0)
				continue;
			c = (la < 0) == s->nulls_first ? -1 : 1;
		} else {
			c = router_value_cmp(kinds[s->col], va, (uint32_t)la, vb, (uint32_t)lb);
			if (s->desc)
				c = -c;
		}
		if (c)
			return c;
	}
	return 0;
}

/* Columns the client sees of r (a plain merge without a description:
 * all of them). */
static int visible(const struct router_merger *m, const struct mrow *r)
{
	return m->spec.n_visible >= 0 ? m->spec.n_visible : r->n;
}

static void queue_free(struct source *s)
{
	for (struct mrow *r = s->head, *next; r; r = next) {
		next = r->next;
		free(r);
	}
	s->head = s->tail = NULL;
	s->n_rows = 0;
	s->bytes = 0;
}

/* The key of columns [0, n) where use[i] (NULL: all), normalized so that
 * values PostgreSQL holds equal have equal keys. malloc'd; NULL out of
 * memory. */
static uint8_t *row_key(const struct router_merger *m, const struct mrow *r, int n, const bool *use,
			const enum router_kind *kinds, uint32_t *key_len)
{
	size_t cap = 1;
	for (int i = 0; i < n; i++) {
		const uint8_t *v;
		int32_t len;
		get_value(r, i, &v, &len);
		if (!use || use[i])
			cap += 5 + (len > 0 ? router_value_norm_max(kinds[i], (uint32_t)len) : 0);
	}
	uint8_t *key = malloc(cap), *p = key;
	if (!key)
		return NULL;
	for (int i = 0; i < n; i++) {
		if (use && !use[i])
			continue;
		const uint8_t *v;
		int32_t len;
		get_value(r, i, &v, &len);
		if (len < 0) {
			*p++ = 0;
			continue;
		}
		*p++ = 1;
		size_t k = router_value_norm(kinds[i], v, (uint32_t)len, p + 4);
		put32(p, (uint32_t)k);
		p += 4 + k;
	}
	*key_len = (uint32_t)(p - key);
	return key;
}

/* ---- lifetime ---------------------------------------------------------------- */

static void expr_free(struct router_expr *e)
{
	if (!e)
		return;
	for (int i = 0; i < e->n_args; i++)
		expr_free(e->args[i]);
	free(e->args);
	free(e->text);
	free(e);
}

/* The merger keeps its own copy: the plan may go before the answers end. */
static struct router_expr *expr_copy(const struct router_expr *e, bool *oom)
{
	if (!e)
		return NULL;
	struct router_expr *c = calloc(1, sizeof(*c));
	if (!c) {
		*oom = true;
		return NULL;
	}
	*c = *e;
	c->text = NULL;
	c->args = NULL;
	c->n_args = 0;
	if (e->text && !(c->text = strdup(e->text)))
		*oom = true;
	if (e->n_args > 0) {
		c->args = calloc((size_t)e->n_args, sizeof(*c->args));
		if (!c->args) {
			*oom = true;
			return c;
		}
		c->n_args = e->n_args;
		for (int i = 0; i < e->n_args; i++)
			c->args[i] = expr_copy(e->args[i], oom);
	}
	return c;
}

static bool expr_valid(const struct router_expr *e, int n_cols)
{
	if (!e)
		return true;
	if (e->kind == ROUTER_EXPR_COL && (e->col < 0 || e->col >= n_cols))
		return false;
	if ((e->kind == ROUTER_EXPR_CMP && e->n_args != 2)
	    || ((e->kind == ROUTER_EXPR_NOT || e->kind == ROUTER_EXPR_IS_NULL) && e->n_args != 1))
		return false;
	for (int i = 0; i < e->n_args; i++)
		if (!expr_valid(e->args[i], n_cols))
			return false;
	return true;
}

struct router_merger *router_merger_new(const struct router_merge *spec, int n_sources)
{
	if (n_sources < 1 || n_sources > ROUTER_MAX_SHARDS)
		return NULL;
	if (spec) {
		/* n_cols -1: a '*', the columns known from the first RowDescription
		 * (no aggregate; sort columns below 0 count from the row's end) */
		bool star = spec->n_cols < 0;
		if ((star && (spec->aggregate || spec->n_hidden < 0))
		    || (!star
			&& (spec->n_visible < 0 || spec->n_visible > spec->n_cols
			    || (spec->aggregate && spec->n_cols && !spec->cols)))
		    || spec->n_sort < 0 || (spec->n_sort && !spec->sort)
		    || !expr_valid(spec->having, spec->n_cols))
			return NULL;
		/* LIMIT/OFFSET parameters not bound yet (router_merge_bind_limits):
		 * merging without their values would send too many rows */
		if (spec->limit_param || spec->offset_param)
			return NULL;
		for (int i = 0; i < spec->n_sort; i++)
			if (!star && (spec->sort[i].col < 0 || spec->sort[i].col >= spec->n_cols))
				return NULL;
		for (int i = 0; spec->cols && i < spec->n_cols; i++)
			if (spec->cols[i].agg == ROUTER_AGG_AVG
			    && (spec->cols[i].count_col < 0
				|| spec->cols[i].count_col >= spec->n_cols))
				return NULL;
	}
	struct router_merger *m = calloc(1, sizeof(*m));
	if (!m)
		return NULL;
	m->n_sources = n_sources;
	m->src = calloc((size_t)n_sources, sizeof(*m->src));
	if (!m->src)
		goto fail;
	m->plain = !spec;
	if (spec) {
		bool oom = false;
		m->spec = *spec;
		m->spec.cols = NULL;
		m->spec.sort = NULL;
		m->spec.having = NULL;
		m->star = spec->n_cols < 0;
		if (spec->n_cols > 0 && spec->cols) {
			m->spec.cols = malloc(sizeof(*spec->cols) * (size_t)spec->n_cols);
			if (!m->spec.cols)
				goto fail;
			memcpy(m->spec.cols, spec->cols,
			       sizeof(*spec->cols) * (size_t)spec->n_cols);
		}
		if (spec->n_sort) {
			m->spec.sort = malloc(sizeof(*spec->sort) * (size_t)spec->n_sort);
			if (!m->spec.sort)
				goto fail;
			memcpy(m->spec.sort, spec->sort,
			       sizeof(*spec->sort) * (size_t)spec->n_sort);
		}
		m->spec.having = expr_copy(spec->having, &oom);
		if (oom)
			goto fail;
		if (!m->spec.aggregate)
			m->spec.having = (expr_free(m->spec.having), NULL);
	} else {
		m->spec.n_cols = -1; /* taken from the first RowDescription */
		m->spec.n_visible = -1;
		m->spec.limit = -1;
	}
	if (m->spec.limit == 0)
		m->finished = true;
	/* DISTINCT over a sort that covers every visible column: equal rows
	 * come together, so only the last one sent is needed */
	if (m->spec.distinct && !m->spec.aggregate) {
		m->distinct_adjacent = true;
		for (int c = 0; c < m->spec.n_visible && m->distinct_adjacent; c++) {
			bool covered = false;
			for (int i = 0; i < m->spec.n_sort; i++)
				covered |= m->spec.sort[i].col == c;
			m->distinct_adjacent = covered;
		}
	}
	return m;
fail:
	router_merger_free(m);
	return NULL;
}

static void acc_free_all(struct router_merger *m, void *payload)
{
	struct acc *acc = payload;
	if (!acc)
		return;
	for (int i = 0; i < m->spec.n_cols; i++) {
		free(acc[i].val);
		router_dec_free(&acc[i].dec);
	}
	free(acc);
}

void router_merger_free(struct router_merger *m)
{
	if (!m)
		return;
	if (m->src)
		for (int i = 0; i < m->n_sources; i++)
			queue_free(&m->src[i]);
	free(m->src);
	free(m->spec.cols);
	free(m->spec.sort);
	expr_free(m->spec.having);
	free(m->types);
	free(m->formats);
	free(m->kinds);
	free(m->out_kinds);
	free(m->ways);
	free(m->is_count);
	free(m->desc);
	free(m->last);
	htab_free(&m->seen, NULL, m);
	htab_free(&m->groups, acc_free_all, m);
	for (size_t i = m->next_result; i < m->n_results; i++)
		free(m->results[i]);
	free(m->results);
	free(m);
}

/* ---- RowDescription ------------------------------------------------------------ */

struct desc_field {
	uint32_t name_off; /* where the field starts in the body */
	uint32_t end;      /* just past it */
	uint32_t type;
	int16_t format;
};

/* The fields of a RowDescription body; -1 if malformed, else their count
 * (fields filled up to max). */
static int desc_parse(const uint8_t *body, uint32_t len, struct desc_field *f, int max)
{
	if (len < 2)
		return -1;
	int n = (int16_t)((body[0] << 8) | body[1]);
	if (n < 0)
		return -1;
	uint32_t off = 2;
	for (int i = 0; i < n; i++) {
		const uint8_t *nul = memchr(body + off, 0, len - off);
		if (!nul)
			return -1;
		uint32_t start = off;
		off = (uint32_t)(nul - body) + 1;
		if (len - off < 18)
			return -1;
		if (i < max) {
			f[i].name_off = start;
			f[i].end = off + 18;
			f[i].type = be32(body + off + 6);
			f[i].format = (int16_t)((body[off + 16] << 8) | body[off + 17]);
		}
		off += 18;
	}
	return off == len ? n : -1;
}

static uint32_t avg_type(uint32_t sum_type)
{
	return sum_type == ROUTER_OID_FLOAT4 || sum_type == ROUTER_OID_FLOAT8 ? ROUTER_OID_FLOAT8
									      : ROUTER_OID_NUMERIC;
}

/* Takes the first RowDescription's types and builds the client's: the
 * visible columns, an AVG's type that of the average. */
static int desc_first(struct router_merger *m, const uint8_t *body, uint32_t len,
		      const struct desc_field *f, int n)
{
	if (m->plain) {
		m->spec.n_cols = n;
		m->spec.n_visible = n;
	}
	if (m->star) {
		/* the '*' is known now: the last n_hidden columns are hidden, and
		 * sort columns counted from the end become positions */
		if (m->spec.n_hidden > n)
			return -1;
		m->spec.n_cols = n;
		m->spec.n_visible = n - m->spec.n_hidden;
		for (int i = 0; i < m->spec.n_sort; i++) {
			if (m->spec.sort[i].col < 0)
				m->spec.sort[i].col += n;
			if (m->spec.sort[i].col < 0 || m->spec.sort[i].col >= n)
				return -1;
		}
		m->star = false;
	}
	size_t cols = (size_t)(n ? n : 1);
	m->types = calloc(cols, sizeof(*m->types));
	m->formats = calloc(cols, sizeof(*m->formats));
	m->kinds = calloc(cols, sizeof(*m->kinds));
	m->out_kinds = calloc(cols, sizeof(*m->out_kinds));
	m->ways = calloc(cols, sizeof(*m->ways));
	m->is_count = calloc(cols, sizeof(*m->is_count));
	m->desc = malloc(len);
	if (!m->types || !m->formats || !m->kinds || !m->out_kinds || !m->ways || !m->is_count
	    || !m->desc)
		return -1;
	for (int i = 0; i < n; i++) {
		m->types[i] = f[i].type;
		m->formats[i] = f[i].format;
		m->kinds[i] = m->out_kinds[i] = router_kind_of(f[i].type, f[i].format);
		enum router_agg agg = col_agg(m, i);
		uint32_t t = f[i].type;
		m->ways[i] = t == ROUTER_OID_FLOAT4 || t == ROUTER_OID_FLOAT8 ? SUM_FLOAT
			: t == ROUTER_OID_NUMERIC || agg == ROUTER_AGG_AVG    ? SUM_DEC
									      : SUM_INT;
		if (agg == ROUTER_AGG_COUNT)
			m->is_count[i] = true;
		if (agg == ROUTER_AGG_AVG) {
			m->is_count[m->spec.cols[i].count_col] = true;
			m->out_kinds[i] = router_kind_of(avg_type(t), f[i].format);
		}
	}
	/* the client's RowDescription: the visible fields, retyped */
	uint8_t *p = m->desc;
	put16(p, (uint16_t)m->spec.n_visible);
	p += 2;
	for (int i = 0; i < m->spec.n_visible; i++) {
		uint32_t flen = f[i].end - f[i].name_off;
		memcpy(p, body + f[i].name_off, flen);
		if (col_agg(m, i) == ROUTER_AGG_AVG) {
			uint8_t *tail = p + flen - 18;
			uint32_t t = avg_type(f[i].type);
			put32(tail + 6, t);
			put16(tail + 10, t == ROUTER_OID_FLOAT8 ? 8 : (uint16_t)-1);
			put32(tail + 12, (uint32_t)-1);
		}
		p += flen;
	}
	m->desc_len = (uint32_t)(p - m->desc);
	m->have_types = true;
	return 0;
}

static int feed_desc(struct router_merger *m, struct source *src, const uint8_t *body, uint32_t len,
		     char sqlstate[6], char *err, size_t errlen)
{
	if (src->described || src->done) {
		set_err(sqlstate, err, errlen, "08P01", "a shard sent a second row description");
		return -1;
	}
	int n = desc_parse(body, len, NULL, 0);
	if (n < 0) {
		set_err(sqlstate, err, errlen, "08P01", "a shard sent a malformed row description");
		return -1;
	}
	struct desc_field *f = malloc(sizeof(*f) * (size_t)(n ? n : 1));
	if (!f)
		return OOM(m), -1;
	desc_parse(body, len, f, n);
	int rc = 0;
	if (!m->have_types) {
		if (!m->plain && !m->star && n != m->spec.n_cols) {
			set_err(sqlstate, err, errlen, "42804",
				"a shard's answer has %d columns where the merge expects %d", n,
				m->spec.n_cols);
			rc = -1;
		} else if (desc_first(m, body, len, f, n)) {
			OOM(m);
			rc = -1;
		}
	} else {
		bool same = n == m->spec.n_cols;
		for (int i = 0; same && i < n; i++)
			same = f[i].type == m->types[i] && f[i].format == m->formats[i];
		if (!same) {
			set_err(sqlstate, err, errlen, "42804",
				"shards disagree on the result's columns");
			rc = -1;
		}
	}
	free(f);
	if (rc == 0) {
		src->described = true;
		m->n_described++;
	}
	return rc;
}

/* ---- aggregates ------------------------------------------------------------- */

static int int_add(struct router_merger *m, int col, int64_t *acc, int64_t v, char sqlstate[6],
		   char *err, size_t errlen)
{
	int64_t r;
	uint32_t t = m->types[col];
	int64_t lo = t == ROUTER_OID_INT2 ? INT16_MIN
		: t == ROUTER_OID_INT4    ? INT32_MIN
					  : INT64_MIN;
	int64_t hi = t == ROUTER_OID_INT2 ? INT16_MAX
		: t == ROUTER_OID_INT4    ? INT32_MAX
					  : INT64_MAX;
	if (__builtin_add_overflow(*acc, v, &r) || r < lo || r > hi) {
		/* as PostgreSQL's own sum of int8 states would fail */
		set_err(sqlstate, err, errlen, "22003", "%s out of range",
			t == ROUTER_OID_INT2           ? "smallint"
				: t == ROUTER_OID_INT4 ? "integer"
						       : "bigint");
		return -1;
	}
	*acc = r;
	return 0;
}

static int bad_value(int col, char sqlstate[6], char *err, size_t errlen)
{
	set_err(sqlstate, err, errlen, "22P02", "a shard's value in column %d cannot be merged",
		col + 1);
	return -1;
}

static int acc_merge(struct router_merger *m, struct acc *a, int col, const uint8_t *v, int32_t len,
		     char sqlstate[6], char *err, size_t errlen)
{
	enum router_agg agg = m->is_count[col] ? ROUTER_AGG_COUNT : col_agg(m, col);
	enum router_kind k = m->kinds[col];
	if (agg == ROUTER_AGG_NONE || len < 0)
		return 0;
	if (!router_value_valid(k, v, (uint32_t)len))
		return bad_value(col, sqlstate, err, errlen);
	switch (agg) {
	case ROUTER_AGG_COUNT:
	case ROUTER_AGG_SUM:
	case ROUTER_AGG_AVG:
		if (agg != ROUTER_AGG_COUNT && m->ways[col] == SUM_FLOAT) {
			double d;
			if (!router_float_read(k, v, (uint32_t)len, &d))
				return bad_value(col, sqlstate, err, errlen);
			a->f = a->seen ? a->f + d : d;
		} else if (agg != ROUTER_AGG_COUNT && m->ways[col] == SUM_DEC) {
			struct router_dec d;
			int rc = k == ROUTER_KIND_NUMERIC_BIN
				? router_dec_from_numeric_bin(&d, v, (uint32_t)len)
				: k == ROUTER_KIND_INT_BIN
				? -1
				: router_dec_from_text(&d, v, (size_t)len);
			if (k == ROUTER_KIND_INT_BIN) {
				int64_t i;
				if (!router_int_read(k, v, (uint32_t)len, &i))
					return bad_value(col, sqlstate, err, errlen);
				rc = router_dec_from_int64(&d, i);
			}
			if (rc == -1)
				return bad_value(col, sqlstate, err, errlen);
			if (rc == 0 && a->seen)
				rc = router_dec_add(&a->dec, &d);
			else if (rc == 0)
				a->dec = d, d.digits = NULL;
			router_dec_free(&d);
			if (rc)
				return OOM(m), -1;
		} else {
			int64_t i;
			if (!router_int_read(k, v, (uint32_t)len, &i))
				return bad_value(col, sqlstate, err, errlen);
			if (int_add(m, col, &a->i, i, sqlstate, err, errlen))
				return -1;
		}
		break;
	case ROUTER_AGG_MIN:
	case ROUTER_AGG_MAX: {
		int c = a->seen ? router_value_cmp(k, v, (uint32_t)len, a->val, a->len) : 0;
		if (!a->seen || (agg == ROUTER_AGG_MIN ? c < 0 : c > 0)) {
			uint8_t *copy = malloc(len ? (size_t)len : 1);
			if (!copy)
				return OOM(m), -1;
			memcpy(copy, v, (size_t)len);
			free(a->val);
			a->val = copy;
			a->len = (uint32_t)len;
		}
		break;
	}
	case ROUTER_AGG_BOOL_AND:
	case ROUTER_AGG_BOOL_OR: {
		bool b = k == ROUTER_KIND_BOOL_BIN ? v[0] != 0 : v[0] == 't';
		if (k != ROUTER_KIND_BOOL_BIN && k != ROUTER_KIND_BOOL_TEXT)
			return bad_value(col, sqlstate, err, errlen);
		a->b = !a->seen ? b : agg == ROUTER_AGG_BOOL_AND ? (a->b && b) : (a->b || b);
		break;
	}
	default:
		break;
	}
	a->seen = true;
	return 0;
}

static int feed_group(struct router_merger *m, const struct mrow *r, char sqlstate[6], char *err,
		      size_t errlen)
{
	int n = m->spec.n_cols;
	bool use[n ? n : 1];
	for (int i = 0; i < n; i++)
		use[i] = col_agg(m, i) == ROUTER_AGG_NONE && !m->is_count[i];
	uint32_t key_len;
	uint8_t *key = row_key(m, r, n, use, m->kinds, &key_len);
	if (!key)
		return OOM(m), -1;
	bool added;
	struct hnode *node = htab_get(&m->groups, key, key_len, &added);
	free(key);
	if (!node)
		return OOM(m), -1;
	if (added) {
		struct acc *acc = calloc((size_t)(n ? n : 1), sizeof(*acc));
		if (!acc)
			return OOM(m), -1;
		node->payload = acc;
		for (int i = 0; i < n; i++) {
			const uint8_t *v;
			int32_t len;
			get_value(r, i, &v, &len);
			if (!use[i] || len < 0)
				continue;
			acc[i].val = malloc(len ? (size_t)len : 1);
			if (!acc[i].val)
				return OOM(m), -1;
			memcpy(acc[i].val, v, (size_t)len);
			acc[i].len = (uint32_t)len;
			acc[i].seen = true;
		}
	}
	struct acc *acc = node->payload;
	for (int i = 0; i < n; i++) {
		const uint8_t *v;
		int32_t len;
		get_value(r, i, &v, &len);
		if (acc_merge(m, &acc[i], i, v, len, sqlstate, err, errlen))
			return -1;
	}
	return 0;
}

/* One merged column's value, malloc'd (*null for NULL). */
static uint8_t *acc_value(struct router_merger *m, struct acc *acc, int col, uint32_t *len,
			  bool *null)
{
	struct acc *a = &acc[col];
	enum router_agg agg = m->is_count[col] ? ROUTER_AGG_COUNT : col_agg(m, col);
	bool bin = m->formats[col] == 1;
	uint32_t t = m->types[col];
	char buf[40];
	*null = false;
	if (agg == ROUTER_AGG_COUNT || (agg == ROUTER_AGG_SUM && m->ways[col] == SUM_INT)) {
		if (agg == ROUTER_AGG_SUM && !a->seen) {
			*null = true;
			return NULL;
		}
		uint8_t *out = malloc(24);
		if (!out)
			return NULL;
		if (bin) {
			uint32_t w = t == ROUTER_OID_INT2 ? 2 : t == ROUTER_OID_INT4 ? 4 : 8;
			for (uint32_t i = 0; i < w; i++)
				out[i] = (uint8_t)((uint64_t)a->i >> (8 * (w - 1 - i)));
			*len = w;
		} else {
			*len = (uint32_t)snprintf((char *)out, 24, "%" PRId64, a->i);
		}
		return out;
	}
	if (agg == ROUTER_AGG_NONE || agg == ROUTER_AGG_MIN || agg == ROUTER_AGG_MAX) {
		if (!a->seen) {
			*null = true;
			return NULL;
		}
		uint8_t *out = malloc(a->len ? a->len : 1);
		if (out)
			memcpy(out, a->val, a->len);
		*len = a->len;
		return out;
	}
	if (!a->seen) {
		*null = true;
		return NULL;
	}
	if (agg == ROUTER_AGG_BOOL_AND || agg == ROUTER_AGG_BOOL_OR) {
		uint8_t *out = malloc(1);
		if (out)
			out[0] = bin ? (uint8_t)a->b : (uint8_t)(a->b ? 't' : 'f');
		*len = 1;
		return out;
	}
	double f = a->f;
	bool float4 = t == ROUTER_OID_FLOAT4;
	if (agg == ROUTER_AGG_AVG) {
		int64_t n = acc[m->spec.cols[col].count_col].i;
		if (n <= 0) {
			*null = true;
			return NULL;
		}
		if (m->ways[col] == SUM_DEC) {
			struct router_dec q;
			if (router_dec_div_count(&a->dec, n, &q))
				return NULL;
			uint8_t *out = router_dec_encode(&q, bin, len);
			router_dec_free(&q);
			return out;
		}
		f = f / (double)n;
		float4 = false;
	} else if (m->ways[col] == SUM_DEC) {
		return router_dec_encode(&a->dec, bin, len);
	}
	uint8_t *out = malloc(32);
	if (!out)
		return NULL;
	if (bin) {
		uint64_t bits;
		if (float4) {
			float ff = (float)f;
			uint32_t b32;
			memcpy(&b32, &ff, 4);
			put32(out, b32);
			*len = 4;
		} else {
			memcpy(&bits, &f, 8);
			put32(out, (uint32_t)(bits >> 32));
			put32(out + 4, (uint32_t)bits);
			*len = 8;
		}
	} else {
		*len = (uint32_t)router_float_format(f, float4, buf);
		memcpy(out, buf, *len);
	}
	return out;
}

/* A merged group as a row of n_cols values (an AVG's: the average). */
static struct mrow *group_row(struct router_merger *m, struct acc *acc)
{
	int n = m->spec.n_cols;
	uint8_t **vals = calloc((size_t)(n ? n : 1), sizeof(*vals));
	uint32_t *lens = calloc((size_t)(n ? n : 1), sizeof(*lens));
	bool *nulls = calloc((size_t)(n ? n : 1), sizeof(*nulls));
	struct mrow *r = NULL;
	uint8_t *body = NULL;
	if (!vals || !lens || !nulls)
		goto out;
	size_t total = 2;
	for (int i = 0; i < n; i++) {
		vals[i] = acc_value(m, acc, i, &lens[i], &nulls[i]);
		if (!vals[i] && !nulls[i])
			goto out;
		total += 4 + (nulls[i] ? 0 : lens[i]);
	}
	body = malloc(total);
	if (!body)
		goto out;
	uint8_t *p = body;
	put16(p, (uint16_t)n);
	p += 2;
	for (int i = 0; i < n; i++) {
		put32(p, nulls[i] ? (uint32_t)-1 : lens[i]);
		p += 4;
		if (!nulls[i]) {
			memcpy(p, vals[i], lens[i]);
			p += lens[i];
		}
	}
	bool bad;
	r = row_new(body, (uint32_t)total, &bad);
out:
	for (int i = 0; vals && i < n; i++)
		free(vals[i]);
	free(vals);
	free(lens);
	free(nulls);
	free(body);
	return r;
}

/* HAVING on a merged row: 1 true, 0 false, -1 NULL, -2 not comparable. */
static int expr_eval(struct router_merger *m, const struct router_expr *e, const struct mrow *r)
{
	switch (e->kind) {
	case ROUTER_EXPR_COL: {
		const uint8_t *v;
		int32_t len;
		get_value(r, e->col, &v, &len);
		if (len < 0)
			return -1;
		int c;
		if (router_value_cmp_any(m->out_kinds[e->col], v, (uint32_t)len, ROUTER_KIND_CONST,
					 (const uint8_t *)"t", 1, &c))
			return -2;
		return c == 0;
	}
	case ROUTER_EXPR_CONST: {
		if (e->is_null || !e->text)
			return -1;
		int c;
		if (router_value_cmp_any(ROUTER_KIND_BOOL_TEXT, (const uint8_t *)"t", 1,
					 ROUTER_KIND_CONST, (const uint8_t *)e->text,
					 (uint32_t)strlen(e->text), &c))
			return -2;
		return c == 0;
	}
	case ROUTER_EXPR_CMP: {
		enum router_kind k[2];
		const uint8_t *v[2];
		int32_t len[2];
		for (int i = 0; i < 2; i++) {
			const struct router_expr *a = e->args[i];
			if (a->kind == ROUTER_EXPR_COL) {
				get_value(r, a->col, &v[i], &len[i]);
				k[i] = m->out_kinds[a->col];
			} else if (a->kind == ROUTER_EXPR_CONST) {
				if (a->is_null || !a->text)
					return -1;
				v[i] = (const uint8_t *)a->text;
				len[i] = (int32_t)strlen(a->text);
				k[i] = ROUTER_KIND_CONST;
			} else {
				return -2;
			}
			if (len[i] < 0)
				return -1;
		}
		int c;
		if (router_value_cmp_any(k[0], v[0], (uint32_t)len[0], k[1], v[1], (uint32_t)len[1],
					 &c))
			return -2;
		const char *op = e->op;
		if (!strcmp(op, "="))
			return c == 0;
		if (!strcmp(op, "<>") || !strcmp(op, "!="))
			return c != 0;
		if (!strcmp(op, "<"))
			return c < 0;
		if (!strcmp(op, "<="))
			return c <= 0;
		if (!strcmp(op, ">"))
			return c > 0;
		if (!strcmp(op, ">="))
			return c >= 0;
		return -2;
	}
	case ROUTER_EXPR_AND:
	case ROUTER_EXPR_OR: {
		bool is_and = e->kind == ROUTER_EXPR_AND, any_null = false;
		for (int i = 0; i < e->n_args; i++) {
			int v = expr_eval(m, e->args[i], r);
			if (v == -2)
				return -2;
			if (v == -1)
				any_null = true;
			else if (v == (is_and ? 0 : 1))
				return v;
		}
		return any_null ? -1 : is_and ? 1 : 0;
	}
	case ROUTER_EXPR_NOT: {
		int v = expr_eval(m, e->args[0], r);
		return v < 0 ? v : !v;
	}
	case ROUTER_EXPR_IS_NULL: {
		const struct router_expr *a = e->args[0];
		bool null;
		if (a->kind == ROUTER_EXPR_COL) {
			const uint8_t *v;
			int32_t len;
			get_value(r, a->col, &v, &len);
			null = len < 0;
		} else if (a->kind == ROUTER_EXPR_CONST) {
			null = a->is_null;
		} else {
			int v = expr_eval(m, a, r);
			if (v == -2)
				return -2;
			null = v == -1;
		}
		return null != e->negated;
	}
	}
	return -2;
}

static int cmp_results(const void *a, const void *b, void *ctx)
{
	struct router_merger *m = ctx;
	return cmp_rows(m, *(struct mrow *const *)a, *(struct mrow *const *)b, m->out_kinds);
}

static bool seen_before(struct router_merger *m, const struct mrow *r,
			const enum router_kind *kinds, bool *oom)
{
	uint32_t key_len;
	uint8_t *key = row_key(m, r, m->spec.n_visible, NULL, kinds, &key_len);
	*oom = !key;
	if (!key)
		return false;
	bool added;
	struct hnode *n = htab_get(&m->seen, key, key_len, &added);
	free(key);
	*oom = !n;
	return n && !added;
}

/* Every source is done: the groups become rows, through HAVING, DISTINCT
 * and the sort. */
static int finalize(struct router_merger *m, char sqlstate[6], char *err, size_t errlen)
{
	m->finalized = true;
	if (!m->have_types)
		return 0;
	m->results = calloc(m->groups.n ? m->groups.n : 1, sizeof(*m->results));
	if (!m->results)
		return OOM(m), -1;
	for (size_t b = 0; b < m->groups.nb; b++) {
		for (struct hnode *node = m->groups.b[b]; node; node = node->next) {
			struct mrow *r = group_row(m, node->payload);
			if (!r)
				return OOM(m), -1;
			if (m->spec.having) {
				int v = expr_eval(m, m->spec.having, r);
				if (v == -2) {
					free(r);
					set_err(sqlstate, err, errlen, "22P02",
						"HAVING compares values that cannot be compared");
					return -1;
				}
				if (v != 1) {
					free(r);
					continue;
				}
			}
			bool oom = false;
			if (m->spec.distinct && seen_before(m, r, m->out_kinds, &oom)) {
				free(r);
				continue;
			}
			if (oom) {
				free(r);
				return OOM(m), -1;
			}
			m->results[m->n_results++] = r;
		}
	}
	htab_free(&m->groups, acc_free_all, m);
	htab_free(&m->seen, NULL, m);
	if (m->spec.n_sort && m->n_results > 1) {
		qsort_r(m->results, m->n_results, sizeof(*m->results), cmp_results, m);
	}
	return 0;
}

/* ---- feeding -------------------------------------------------------------------- */

static void tag_take(struct router_merger *m, const uint8_t *body, uint32_t len)
{
	size_t n = strnlen((const char *)body, len);
	const char *tag = (const char *)body;
	const char *sp = memrchr(tag, ' ', n);
	bool counted = sp && sp + 1 < tag + n;
	uint64_t count = 0;
	for (const char *p = sp ? sp + 1 : tag; counted && p < tag + n; p++) {
		if (*p < '0' || *p > '9')
			counted = false;
		else
			count = count * 10 + (uint64_t)(*p - '0');
	}
	if (!m->tag[0]) {
		size_t keep = counted ? (size_t)(sp - tag) : n;
		if (keep >= sizeof(m->tag))
			keep = sizeof(m->tag) - 1;
		memcpy(m->tag, tag, keep);
		m->tag[keep] = 0;
		m->tag_counted = counted;
	}
	if (counted)
		m->tag_sum += count;
}

static void source_done(struct router_merger *m, struct source *src, uint8_t end)
{
	src->done = true;
	src->end = end;
	m->n_done++;
}

int router_merger_feed(struct router_merger *m, int s, uint8_t type, const uint8_t *body,
		       uint32_t len, char sqlstate[6], char *err, size_t errlen)
{
	if (s < 0 || s >= m->n_sources) {
		set_err(sqlstate, err, errlen, "XX000", "no source %d in this merge", s);
		return -1;
	}
	struct source *src = &m->src[s];
	if (type == 'T')
		return feed_desc(m, src, body, len, sqlstate, err, errlen);
	if (src->done) {
		set_err(sqlstate, err, errlen, "08P01", "a shard sent '%c' after its answer ended",
			type);
		return -1;
	}
	switch (type) {
	case 'D':
		break;
	case 'C':
		if (m->plain)
			tag_take(m, body, len);
		/* fall through */
	case 'I':
	case 's':
		source_done(m, src, type);
		if (m->n_done == m->n_sources && m->spec.aggregate && !m->finalized)
			return finalize(m, sqlstate, err, errlen);
		return 0;
	default:
		set_err(sqlstate, err, errlen, "08P01", "the merge got an unexpected '%c' message",
			type);
		return -1;
	}
	src->sent_rows = true;
	if (m->finished)
		return 0; /* past the LIMIT: dropped */
	bool bad;
	struct mrow *r = row_new(body, len, &bad);
	if (!r) {
		if (bad)
			set_err(sqlstate, err, errlen, "08P01",
				"a shard sent a malformed data row");
		else
			OOM(m);
		return -1;
	}
	int rc = 0;
	if ((m->spec.n_sort || m->spec.aggregate) && !m->have_types) {
		set_err(sqlstate, err, errlen, "08P01",
			"a shard sent rows before their description, which the merge needs");
		rc = -1;
	} else if (m->spec.n_cols >= 0 && r->n != m->spec.n_cols) {
		set_err(sqlstate, err, errlen, "08P01", "a shard's row has %d columns, not %d",
			r->n, m->spec.n_cols);
		rc = -1;
	}
	for (int i = 0; rc == 0 && i < m->spec.n_sort; i++) {
		const uint8_t *v;
		int32_t vl;
		int col = m->spec.sort[i].col;
		get_value(r, col, &v, &vl);
		if (vl >= 0 && !router_value_valid(m->kinds[col], v, (uint32_t)vl))
			rc = bad_value(col, sqlstate, err, errlen);
	}
	if (rc == 0 && m->spec.aggregate) {
		rc = feed_group(m, r, sqlstate, err, errlen);
		free(r);
		return rc;
	}
	if (rc) {
		free(r);
		return rc;
	}
	if (src->tail)
		src->tail->next = r;
	else
		src->head = r;
	src->tail = r;
	src->n_rows++;
	src->bytes += len;
	return 0;
}

bool router_merger_wants(const struct router_merger *m, int s)
{
	if (s < 0 || s >= m->n_sources)
		return false;
	const struct source *src = &m->src[s];
	if (src->done || m->finished)
		return false;
	if (m->spec.aggregate)
		return true; /* folded at once, nothing queued */
	return src->n_rows == 0 || (src->n_rows < QUEUE_ROWS && src->bytes < QUEUE_BYTES);
}

/* ---- emitting ---------------------------------------------------------------------- */

enum next_kind { NEXT_NONE, NEXT_DESC, NEXT_ROW, NEXT_END };

struct next {
	enum next_kind kind;
	struct mrow *row;
	struct source *src; /* the row's, NULL for a merged group */
	size_t size;        /* the whole message */
	char tag[96];
	uint8_t end_type;
};

static struct mrow *pop(struct router_merger *m, struct next *n)
{
	struct mrow *r = n->row;
	m->passed = NULL;
	if (n->src) {
		n->src->head = r->next;
		if (!n->src->head)
			n->src->tail = NULL;
		n->src->n_rows--;
		n->src->bytes -= r->len;
	} else {
		m->results[m->next_result++] = NULL;
	}
	return r;
}

/* The next row in order, without taking it; NULL if its place is not
 * certain yet (or there is none). */
static bool pick_row(struct router_merger *m, struct next *n)
{
	n->src = NULL;
	n->row = NULL;
	if (m->spec.aggregate) {
		if (!m->finalized || m->next_result >= m->n_results)
			return false;
		n->row = m->results[m->next_result];
		return true;
	}
	for (int i = 0; i < m->n_sources; i++) {
		struct source *s = &m->src[i];
		if (!s->head) {
			if (!s->done && m->spec.n_sort)
				return false;
			continue;
		}
		if (!n->row || (m->spec.n_sort && cmp_rows(m, s->head, n->row, m->kinds) < 0)) {
			n->row = s->head;
			n->src = s;
			if (!m->spec.n_sort)
				break;
		}
	}
	return n->row != NULL;
}

static void drain_all(struct router_merger *m)
{
	m->passed = NULL;
	for (int i = 0; i < m->n_sources; i++)
		queue_free(&m->src[i]);
	for (size_t i = m->next_result; i < m->n_results; i++) {
		free(m->results[i]);
		m->results[i] = NULL;
	}
	m->next_result = m->n_results;
}

/* Which message comes next: rows DISTINCT or OFFSET drop are taken here. */
static int next_message(struct router_merger *m, struct next *n)
{
	n->kind = NEXT_NONE;
	if (!m->desc_sent) {
		bool ready = true;
		for (int i = 0; i < m->n_sources; i++)
			ready &= m->src[i].described || m->src[i].sent_rows || m->src[i].done;
		if (!ready)
			return 0;
		if (m->have_types) {
			n->kind = NEXT_DESC;
			n->size = 5 + m->desc_len;
			return 0;
		}
		m->desc_sent = true; /* no source described its rows: none to send */
	}
	while (!m->finished && pick_row(m, n)) {
		bool drop = false, oom = false;
		if (n->row == m->passed)
			goto ready; /* asked again (next_size, then emit) */
		const enum router_kind *kinds = m->spec.aggregate ? m->out_kinds : m->kinds;
		if (m->spec.distinct && !m->spec.aggregate) {
			if (m->distinct_adjacent)
				drop = m->last && cmp_rows(m, m->last, n->row, kinds) == 0;
			else
				drop = seen_before(m, n->row, kinds, &oom);
			if (oom)
				return -1;
		}
		if (!drop && m->skipped < m->spec.offset) {
			m->skipped++;
			drop = true;
			if (m->distinct_adjacent) {
				free(m->last);
				m->last = pop(m, n);
				continue;
			}
		}
		if (drop) {
			free(pop(m, n));
			continue;
		}
		m->passed = n->row;
	ready:
		n->kind = NEXT_ROW;
		n->size = 5 + 2 + (n->row->field[visible(m, n->row)] - 2);
		return 0;
	}
	if (m->complete_sent || m->n_done < m->n_sources)
		return 0;
	if (m->spec.aggregate && !m->finalized)
		return 0;
	int n_empty = 0, n_suspended = 0;
	for (int i = 0; i < m->n_sources; i++) {
		n_empty += m->src[i].end == 'I';
		n_suspended += m->src[i].end == 's';
	}
	n->kind = NEXT_END;
	if (n_empty == m->n_sources) {
		n->end_type = 'I';
		n->size = 5;
	} else if (n_suspended == m->n_sources) {
		n->end_type = 's';
		n->size = 5;
	} else {
		n->end_type = 'C';
		if (m->plain && m->tag[0] && m->tag_counted)
			snprintf(n->tag, sizeof(n->tag), "%s %" PRIu64, m->tag, m->tag_sum);
		else if (m->plain && m->tag[0])
			snprintf(n->tag, sizeof(n->tag), "%s", m->tag);
		else
			snprintf(n->tag, sizeof(n->tag), "SELECT %" PRId64, m->sent);
		n->size = 5 + strlen(n->tag) + 1;
	}
	return 0;
}

long router_merger_emit(struct router_merger *m, uint8_t *out, size_t max)
{
	size_t used = 0;
	for (;;) {
		struct next n;
		if (next_message(m, &n))
			return -1;
		if (n.kind == NEXT_NONE || used + n.size > max)
			break;
		uint8_t *p = out + used;
		switch (n.kind) {
		case NEXT_DESC:
			p[0] = 'T';
			put32(p + 1, (uint32_t)(4 + m->desc_len));
			memcpy(p + 5, m->desc, m->desc_len);
			m->desc_sent = true;
			break;
		case NEXT_ROW: {
			struct mrow *r = pop(m, &n);
			int n_vis = visible(m, r);
			uint32_t vis = r->field[n_vis] - 2;
			p[0] = 'D';
			put32(p + 1, (uint32_t)(4 + 2 + vis));
			put16(p + 5, (uint16_t)n_vis);
			memcpy(p + 7, r->body + 2, vis);
			m->sent++;
			if (m->distinct_adjacent) {
				free(m->last);
				m->last = r;
			} else {
				free(r);
			}
			if (m->spec.limit >= 0 && m->sent >= m->spec.limit) {
				m->finished = true;
				drain_all(m);
			}
			break;
		}
		case NEXT_END:
			p[0] = n.end_type;
			put32(p + 1, (uint32_t)(n.size - 1));
			if (n.end_type == 'C')
				memcpy(p + 5, n.tag, n.size - 5);
			m->complete_sent = true;
			break;
		default:
			break;
		}
		used += n.size;
	}
	return (long)used;
}

size_t router_merger_next_size(struct router_merger *m)
{
	struct next n;
	if (next_message(m, &n) || n.kind == NEXT_NONE)
		return 0;
	return n.size;
}

bool router_merger_draining(const struct router_merger *m)
{
	return m->finished && m->n_done < m->n_sources;
}

bool router_merger_done(const struct router_merger *m)
{
	return m->complete_sent;
}
