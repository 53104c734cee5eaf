/* A statement string's route: parsed once per thread and text (the cache
 * holds the part that depends only on the text and the schema), then the
 * session's hints applied.
 *
 * Who decides the shards, first to last:
 *   1. the statement's own key (WHERE key = ..., INSERT VALUES): it says
 *      where the rows are, so no hint can overrule it;
 *   2. a comment in the text, pgcrab_shard: N or pgcrab_key: value;
 *   3. the session's SET pgcrab.shard, then SET pgcrab.sharding_key.
 * A hint routes only what has no key of its own: a read or write without
 * a usable key (which would go to every shard, or be refused), DDL,
 * statements on unsharded tables. Transaction control and SET pgcrab.*
 * are never routed by a hint.
 *
 * The cache keeps the context-free plan (with what the hints need to
 * know) and each call gets its own copy: a few small allocations, against
 * a parse that costs microseconds, and nothing shared between threads or
 * callers. */
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include <pg_query.h>

#include "router/plan_tree.h"

#define MULTI_REFUSED                                                                    \
	"these statements cannot be sent together: they go to different shards, or one " \
	"needs several shards, a split, or a merge; send them one at a time"

static __thread struct router_plan_stats stats;
static __thread bool time_hits;

static uint64_t now_ns(void)
{
	struct timespec ts;
	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (uint64_t)ts.tv_sec * 1000000000u + (uint64_t)ts.tv_nsec;
}

void router_plan_stats(struct router_plan_stats *out)
{
	*out = stats;
}

void router_plan_stats_timing(bool on)
{
	time_hits = on;
}

struct plan_box *plan_box_new(void)
{
	return calloc(1, sizeof(struct plan_box));
}

int plan_refuse(struct plan_box *b, const char *sqlstate, const char *fmt, ...)
{
	va_list ap;
	int n;

	free(b->plan.message);
	b->plan.message = NULL;
	b->plan.route = ROUTER_REFUSE;
	memcpy(b->plan.sqlstate, sqlstate, 5);
	b->plan.sqlstate[5] = '\0';
	va_start(ap, fmt);
	n = vasprintf(&b->plan.message, fmt, ap);
	va_end(ap);
	if (n < 0) {
		b->plan.message = NULL;
		return -1;
	}
	return 0;
}

/* Frees what the plan owns, leaving an empty plan. */
static void clear(struct router_plan *p)
{
	plan_keys_free(p->keys, p->n_keys);
	free(p->shard_sql);
	router_merge_free(p->merge);
	if (p->split)
		for (int i = 0; i < ROUTER_MAX_SHARDS; i++)
			free(p->split[i]);
	free(p->split);
	free(p->set_value);
	free(p->message);
	free(p->insert_split);
	memset(p, 0, sizeof(*p));
}

void router_plan_free(struct router_plan *p)
{
	if (!p)
		return;
	clear(p);
	free(p);
}

void plan_box_free(struct plan_box *b)
{
	if (!b)
		return;
	clear(&b->plan);
	free(b);
}

static bool dup_str(char **to, const char *from)
{
	return !from || (*to = strdup(from));
}

static void *dup_mem(const void *from, size_t n)
{
	void *to;

	if (!from || !n)
		return NULL;
	if ((to = malloc(n)))
		memcpy(to, from, n);
	return to;
}

/* A HAVING tree's copy (its depth is the expression's nesting, small). */
static struct router_expr *copy_expr(const struct router_expr *e, bool *oom)
{
	struct router_expr *c;

	if (!e || *oom)
		return NULL;
	if (!(c = malloc(sizeof(*c)))) {
		*oom = true;
		return NULL;
	}
	*c = *e;
	c->text = NULL;
	c->args = NULL;
	c->n_args = 0;
	if (!dup_str(&c->text, e->text))
		*oom = true;
	if (e->n_args > 0 && !*oom) {
		if (!(c->args = calloc((size_t)e->n_args, sizeof(*c->args))))
			*oom = true;
		else
			c->n_args = e->n_args;
		for (int i = 0; i < c->n_args && !*oom; i++)
			c->args[i] = copy_expr(e->args[i], oom);
	}
	return c;
}

/* A merge spec's copy, by router/router.h's conventions: cols has n_cols
 * entries when set, sort n_sort. */
static struct router_merge *copy_merge(const struct router_merge *m, bool *oom)
{
	struct router_merge *c;

	if (!m)
		return NULL;
	if (!(c = malloc(sizeof(*c)))) {
		*oom = true;
		return NULL;
	}
	*c = *m;
	c->cols = m->cols && m->n_cols > 0 ? dup_mem(m->cols, (size_t)m->n_cols * sizeof(*m->cols))
					   : NULL;
	c->sort = m->n_sort > 0 ? dup_mem(m->sort, (size_t)m->n_sort * sizeof(*m->sort)) : NULL;
	c->having = NULL;
	if ((m->cols && m->n_cols > 0 && !c->cols) || (m->n_sort > 0 && !c->sort))
		*oom = true;
	c->having = copy_expr(m->having, oom);
	return c;
}

struct router_plan *plan_copy(const struct router_plan *p)
{
	struct router_plan *c = malloc(sizeof(*c));
	bool oom = false;

	if (!c)
		return NULL;
	*c = *p;
	c->keys = NULL;
	c->n_keys = 0;
	c->shard_sql = c->set_value = c->message = NULL;
	c->merge = NULL;
	c->split = NULL;
	c->insert_split = NULL;
	if (p->insert_split && !(c->insert_split = dup_mem(p->insert_split, p->insert_split_len)))
		goto oom;
	if (p->n_keys > 0) {
		if (!(c->keys = dup_mem(p->keys, (size_t)p->n_keys * sizeof(*p->keys))))
			goto oom;
		/* the literals are the copy's own */
		for (int k = 0; k < p->n_keys; k++)
			for (int col = 0; col < p->keys[k].n_cols; col++)
				c->keys[k].cols[col].literal = NULL;
		c->n_keys = p->n_keys;
		for (int k = 0; k < p->n_keys; k++)
			for (int col = 0; col < p->keys[k].n_cols; col++)
				if (!dup_str(&c->keys[k].cols[col].literal,
					     p->keys[k].cols[col].literal))
					goto oom;
	}
	if (!dup_str(&c->shard_sql, p->shard_sql) || !dup_str(&c->set_value, p->set_value)
	    || !dup_str(&c->message, p->message))
		goto oom;
	if (p->split) {
		if (!(c->split = calloc(ROUTER_MAX_SHARDS, sizeof(*c->split))))
			goto oom;
		for (int i = 0; i < ROUTER_MAX_SHARDS; i++)
			if (!dup_str(&c->split[i], p->split[i]))
				goto oom;
	}
	c->merge = copy_merge(p->merge, &oom);
	if (oom)
		goto oom;
	return c;
oom:
	router_plan_free(c);
	return NULL;
}

/* The route a hint gives a statement with no key of its own. */
static void to_shard(struct plan_box *b, int shard)
{
	struct router_plan *p = &b->plan;
	bool writes = p->writes, ddl = p->ddl, no_tx = p->no_tx_block;

	clear(p);
	p->route = ROUTER_SHARDS;
	p->shards = UINT64_C(1) << shard;
	p->writes = writes;
	p->ddl = ddl;
	p->no_tx_block = no_tx;
	b->hintable = false;
}

/* A pgcrab_key hint's shard: the value as the first key column of the
 * first sharded table the statement names, else as text. -1 if invalid. */
static int key_hint_shard(const struct router_schema *schema, const struct plan_box *b,
			  const char *key)
{
	enum router_type t = b->has_hint_type ? b->hint_type : ROUTER_TEXT;
	return router_key_shard(1, &t, &key, schema->n_shards);
}

/* A comment hint (kind 1 shard, 2 key) on one statement's plan. */
static int apply_hint(const struct router_schema *schema, struct plan_box *b, int kind, int shard,
		      const char *key)
{
	if (!kind || !b->hintable)
		return 0;
	if (kind == 2 && (shard = key_hint_shard(schema, b, key)) < 0) {
		to_shard(b, 0); /* drops what the plan held, keeps its flags */
		return plan_refuse(b, "22P02", "invalid pgcrab_key \"%s\" for a %s sharding key",
				   key,
				   router_type_name(b->has_hint_type ? b->hint_type : ROUTER_TEXT));
	}
	to_shard(b, shard);
	return 0;
}

/* Several statements in one string route as one: to a single shard, to any
 * shard, or (only DDL and writes without rows) to every shard. */
struct combined {
	bool refused, conflict, all, any_tx, rows, hintable;
	int shard;
};

static void combine_one(struct combined *c, struct plan_box *into, struct plan_box *sub)
{
	struct router_plan *p = &sub->plan;

	c->hintable &= sub->hintable || p->route == ROUTER_TX;
	c->rows |= sub->rows;
	into->plan.writes |= p->writes;
	into->plan.ddl |= p->ddl;
	if (!into->has_hint_type && sub->has_hint_type) {
		into->has_hint_type = true;
		into->hint_type = sub->hint_type;
	}
	switch (p->route) {
	case ROUTER_REFUSE:
		if (!c->refused) {
			c->refused = true;
			memcpy(into->plan.sqlstate, p->sqlstate, 6);
			into->plan.message = p->message;
			p->message = NULL;
		}
		break;
	case ROUTER_TX:
		c->any_tx = true;
		break;
	case ROUTER_ANY:
		break;
	case ROUTER_SHARDS:
		if (__builtin_popcountll(p->shards) != 1)
			c->conflict = true;
		else if (c->shard < 0)
			c->shard = __builtin_ctzll(p->shards);
		else if (c->shard != __builtin_ctzll(p->shards))
			c->conflict = true;
		break;
	case ROUTER_ALL:
		if (sub->rows || p->no_tx_block)
			c->conflict = true;
		c->all = true;
		break;
	default: /* SET pgcrab.*, a Bind's keys, a split */
		c->conflict = true;
		break;
	}
}

static int combine_finish(struct combined *c, struct plan_box *b)
{
	struct router_plan *p = &b->plan;

	b->hintable = c->hintable;
	b->rows = c->rows;
	if (c->refused) {
		p->route = ROUTER_REFUSE;
		return 0;
	}
	if (c->conflict || (c->all && (c->shard >= 0 || c->any_tx || c->rows)))
		return plan_refuse(b, "0A000", MULTI_REFUSED);
	if (c->all)
		p->route = ROUTER_ALL;
	else if (c->shard >= 0) {
		p->route = ROUTER_SHARDS;
		p->shards = UINT64_C(1) << c->shard;
	} else {
		p->route = ROUTER_ANY;
	}
	return 0;
}

/* The context-free plan of a whole string. NULL out of memory. */
static struct plan_box *plan_text(const struct router_schema *schema, const char *sql, size_t len)
{
	PgQueryProtobufParseResult r;
	PgQuery__ParseResult *tree = NULL;
	struct plan_box *b = plan_box_new();
	int hint, hint_shard = -1, rc = 0;
	char *hint_key = NULL, *text;

	if (!b)
		return NULL;
	if ((hint = plan_find_hint(sql, len, &hint_shard, &hint_key)) < 0)
		goto oom;
	if (hint == 1 && (hint_shard < 0 || hint_shard >= schema->n_shards)) {
		b->hintable = false;
		if (plan_refuse(b, "22023",
				"pgcrab_shard is out of range: the database has %d shards (0 to %d)",
				schema->n_shards, schema->n_shards - 1)
		    < 0)
			goto oom;
		return b;
	}

	/* libpg_query wants a C string; a Parse's text is not one in place */
	if (!(text = malloc(len + 1)))
		goto oom;
	memcpy(text, sql, len);
	text[len] = '\0';
	r = pg_query_parse_protobuf(text);
	free(text);
	if (r.error) {
		/* the server will say what is wrong, from any shard */
		bool oom = r.error->message && strstr(r.error->message, "out of memory");
		pg_query_free_protobuf_parse_result(r);
		if (oom)
			goto oom;
		b->hintable = true;
		b->plan.route = ROUTER_ANY;
		rc = apply_hint(schema, b, hint, hint_shard, hint_key);
		goto out;
	}
	tree = pg_query__parse_result__unpack(NULL, r.parse_tree.len,
					      (const uint8_t *)r.parse_tree.data);
	pg_query_free_protobuf_parse_result(r);
	if (!tree)
		goto oom;

	if (tree->n_stmts <= 1) {
		const PgQuery__RawStmt *raw = tree->n_stmts ? tree->stmts[0] : NULL;
		if (!raw || !raw->stmt) { /* an empty query */
			b->hintable = true;
			b->plan.route = ROUTER_ANY;
		} else {
			size_t at = (size_t)raw->stmt_location < len ? (size_t)raw->stmt_location
								     : 0;
			size_t n = raw->stmt_len ? (size_t)raw->stmt_len : len - at;
			rc = plan_statement(schema, raw->stmt, sql + at, n, false, b);
		}
		if (rc == 0)
			rc = apply_hint(schema, b, hint, hint_shard, hint_key);
	} else {
		struct combined c = { .shard = -1, .hintable = true };
		for (size_t i = 0; i < tree->n_stmts && rc == 0; i++) {
			const PgQuery__RawStmt *raw = tree->stmts[i];
			struct plan_box *sub;
			if (!raw || !raw->stmt)
				continue;
			if (!(sub = plan_box_new()))
				goto oom;
			rc = plan_statement(schema, raw->stmt, sql, len, true, sub);
			if (rc == 0)
				rc = apply_hint(schema, sub, hint, hint_shard, hint_key);
			if (rc == 0)
				combine_one(&c, b, sub);
			plan_box_free(sub);
		}
		if (rc == 0)
			rc = combine_finish(&c, b);
	}
out:
	if (tree)
		pg_query__parse_result__free_unpacked(tree, NULL);
	free(hint_key);
	if (rc < 0) {
		plan_box_free(b);
		return NULL;
	}
	return b;
oom:
	if (tree)
		pg_query__parse_result__free_unpacked(tree, NULL);
	free(hint_key);
	plan_box_free(b);
	return NULL;
}

/* The caller's own plan: the session's hints on a plan that takes them,
 * else a copy of the context-free one. NULL out of memory. */
static struct router_plan *apply_context(const struct router_schema *schema,
					 const struct router_context *ctx, const struct plan_box *b)
{
	struct plan_box *nb;
	int shard;

	if (!ctx || !b->hintable || (ctx->shard < 0 && !ctx->sharding_key))
		return plan_copy(&b->plan);
	if (!(nb = plan_box_new()))
		return NULL;
	nb->plan.writes = b->plan.writes;
	nb->plan.ddl = b->plan.ddl;
	nb->plan.no_tx_block = b->plan.no_tx_block;
	if (ctx->shard >= 0) {
		if (ctx->shard >= schema->n_shards) {
			if (plan_refuse(nb, "22023",
					"pgcrab.shard %d is out of range: the database has %d shards "
					"(0 to %d)",
					ctx->shard, schema->n_shards, schema->n_shards - 1)
			    < 0)
				goto oom;
			return &nb->plan;
		}
		shard = ctx->shard;
	} else if ((shard = key_hint_shard(schema, b, ctx->sharding_key)) < 0) {
		if (plan_refuse(nb, "22P02",
				"invalid pgcrab.sharding_key \"%s\" for a %s sharding key",
				ctx->sharding_key,
				router_type_name(b->has_hint_type ? b->hint_type : ROUTER_TEXT))
		    < 0)
			goto oom;
		return &nb->plan;
	}
	nb->plan.route = ROUTER_SHARDS;
	nb->plan.shards = UINT64_C(1) << shard;
	/* the plan is the box's first member: router_plan_free frees the box */
	return &nb->plan;
oom:
	plan_box_free(nb);
	return NULL;
}

struct router_plan *router_plan(const struct router_schema *schema,
				const struct router_context *ctx, const char *sql, size_t len)
{
	const struct plan_box *cached;
	struct plan_box *b;
	struct router_plan *p;
	bool cacheable = len <= PLAN_CACHE_TEXT_MAX;
	uint64_t hash = 0, t0 = 0;

	if (cacheable) {
		if (time_hits)
			t0 = now_ns();
		hash = plan_text_hash(sql, len);
		cached = plan_cache_get(schema, sql, len, hash);
		if (cached) {
			p = apply_context(schema, ctx, cached);
			stats.cached++;
			if (time_hits)
				stats.cached_ns += now_ns() - t0;
			return p;
		}
	}
	t0 = now_ns();
	b = plan_text(schema, sql, len);
	if (!b)
		return NULL;
	stats.parsed++;
	stats.parse_ns += now_ns() - t0;
	p = apply_context(schema, ctx, b);
	if (!cacheable || !plan_cache_put(schema, sql, len, hash, b))
		plan_box_free(b);
	return p;
}
