/* A unit on several shards: each shard gets its copy (rewritten where the
 * plan says), and their answers become one. Replies other than rows are
 * taken in lock-step: the k-th such reply goes to the client once every
 * shard has given its k-th (CommandComplete counts summed); rows go to the
 * router's merger, which sends them on in their order. The first error
 * ends the unit for the client; the rest is read and dropped.
 *
 * A write outside a transaction runs in one opened for it on every shard,
 * committed with two-phase commit (twophase.c's phases) or rolled back. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "core/log.h"
#include "core/worker.h"
#include "proto/proto.h"
#include "query/classify.h"
#include "relay/bind.h"
#include "relay/fanout.h"
#include "relay/route.h"

#define FAN_CLIENT_TX_MAX (256u * 1024) /* stop merging while the client lags */

struct fan *route_fan(struct relay_link *l)
{
	return l->router->fan;
}

static void src_clear(struct fan_src *s)
{
	for (int i = 0; i < s->n_steps; i++)
		free(s->steps[i].msg);
	free(s->steps);
	s->steps = NULL;
	s->n_steps = s->cap_steps = 0;
}

void route_fan_free(struct relay_link *l)
{
	struct fan *f = l->router->fan;
	if (!f)
		return;
	for (int i = 0; i < f->n; i++) {
		if (f->src[i].leg)
			f->src[i].leg->fan = false;
		src_clear(&f->src[i]);
	}
	router_merger_free(f->merger);
	router_copy_splitter_free(f->splitter);
	free(f->copy_err);
	free(f->copy_sql);
	for (int i = 0; i < f->n_cols; i++)
		free(f->col_names[i]);
	free(f->col_names);
	free(f->err);
	free(f);
	l->router->fan = NULL;
}

/* ---- sending --------------------------------------------------------------- */

static int queue_msg(struct conn *c, uint8_t type, const void *a, size_t alen, const void *b,
		     size_t blen)
{
	uint32_t n = (uint32_t)(4 + alen + blen);
	uint8_t hdr[5] = { type, (uint8_t)(n >> 24), (uint8_t)(n >> 16), (uint8_t)(n >> 8),
			   (uint8_t)n };
	if (conn_queue(c, hdr, 5) != 0 || (alen && conn_queue(c, a, alen) != 0)
	    || (blen && conn_queue(c, b, blen) != 0))
		return -1;
	return 0;
}

int fan_send_query(struct fan_src *s, const char *sql)
{
	struct conn *c = &s->leg->server->c;
	if (queue_msg(c, 'Q', sql, strlen(sql) + 1, NULL, 0) != 0)
		return -1;
	s->leg->expect_ready++;
	return 0;
}

/* A reply to a Parse or Describe of PgCrab's own: hidden from the client.
 * Replies of one kind come in the order their requests went, so a bit per
 * request, oldest first, says which are ours. */
static int hide_push(struct fan_fifo *q, bool hide)
{
	if (q->n >= 64)
		return -1;
	if (hide)
		q->bits |= UINT64_C(1) << ((q->at + q->n) & 63);
	else
		q->bits &= ~(UINT64_C(1) << ((q->at + q->n) & 63));
	q->n++;
	return 0;
}

bool fan_hide_pop(struct fan_fifo *q)
{
	if (q->n == 0)
		return false;
	bool hide = (q->bits >> (q->at & 63)) & 1;
	q->at++;
	q->n--;
	return hide;
}

static int queue_parse(struct conn *sc, const char *text, const uint8_t *types, size_t types_len)
{
	uint8_t name = 0;
	uint32_t n = (uint32_t)(4 + 1 + strlen(text) + 1 + types_len);
	uint8_t hdr[5] = { 'P', (uint8_t)(n >> 24), (uint8_t)(n >> 16), (uint8_t)(n >> 8),
			   (uint8_t)n };
	if (conn_queue(sc, hdr, 5) != 0 || conn_queue(sc, &name, 1) != 0
	    || conn_queue(sc, text, strlen(text) + 1) != 0
	    || (types_len && conn_queue(sc, types, types_len) != 0))
		return -1;
	return 0;
}

/* The text a shard runs for a statement: the plan's rewrite, or its own. */
static const char *shard_text(const struct router_plan *p, int shard, const char *own)
{
	if (p && p->route == ROUTER_SPLIT && p->split)
		return p->split[shard] ? p->split[shard] : own;
	if (p && p->shard_sql)
		return p->shard_sql;
	return own;
}

/* A named statement of the client's, as the unnamed one on this shard (a
 * fan-out's statements are its own: their names are the client's). */
static int parse_named(struct relay_link *l, struct fan_src *s, const struct stmt *st, bool hide)
{
	struct relay_router *r = l->router;
	const char *q = (const char *)st->body;
	size_t qlen = strnlen(q, st->len);
	if (qlen >= st->len)
		return -1;
	struct router_context ctx = { .shard = r->ctx.shard, .sharding_key = r->ctx_key };
	struct router_plan *p = router_plan(r->schema, &ctx, q, qlen);
	if (!p)
		return -1;
	const char *text = p->route == ROUTER_REFUSE ? q : shard_text(p, s->leg->shard, q);
	int rc = queue_parse(&s->leg->server->c, text, st->body + qlen + 1, st->len - qlen - 1);
	router_plan_free(p);
	if (rc == 0)
		rc = hide_push(&s->parse_q, hide);
	return rc;
}

/* One shard's part of a multi-row INSERT split at its Bind. */
struct split_part {
	char *sql; /* its rows only, parameters renumbered */
	int *map;  /* the original number of each new parameter */
	int n_map;
	bool named;  /* the bound statement is a named one */
	bool parsed; /* its Parse went out in this unit */
};

static int split_part_make(struct relay_link *l, int shard, struct split_part *sp)
{
	struct relay_router *r = l->router;
	const struct router_plan *p = r->split_plan ? r->split_plan : r->plan;
	sp->named = r->split_plan != NULL;
	bool *keep = calloc((size_t)p->insert_rows + 1, sizeof(*keep));
	if (!keep)
		return -1;
	for (int i = 0; i < p->insert_rows; i++)
		keep[i] = r->split_rows[i] == shard;
	int rc = router_insert_subset(p, keep, &sp->sql, &sp->map, &sp->n_map);
	free(keep);
	return rc;
}

static void split_part_clear(struct split_part *sp)
{
	free(sp->sql);
	free(sp->map);
	memset(sp, 0, sizeof(*sp));
}

/* The subset's Parse, its parameter types taken from the original's
 * (types: the Parse body after the query: int16 n, int32 oids[n]). */
static int split_queue_parse(struct conn *sc, const struct split_part *sp, const uint8_t *types,
			     size_t types_len)
{
	int n_types = types_len >= 2 ? (types[0] << 8) | types[1] : 0;
	uint8_t *t = malloc(2 + 4 * (size_t)sp->n_map);
	if (!t)
		return -1;
	t[0] = (uint8_t)(sp->n_map >> 8);
	t[1] = (uint8_t)sp->n_map;
	for (int j = 0; j < sp->n_map; j++) {
		int i = sp->map[j] - 1;
		if (i < n_types && types_len >= 2 + 4 * (size_t)(i + 1))
			memcpy(t + 2 + 4 * j, types + 2 + 4 * i, 4);
		else
			memset(t + 2 + 4 * j, 0, 4);
	}
	int rc = queue_parse(sc, sp->sql, t, 2 + 4 * (size_t)sp->n_map);
	free(t);
	return rc;
}

/* ...for a named statement prepared in an earlier unit. */
static int split_queue_parse_stmt(struct conn *sc, const struct split_part *sp,
				  const struct stmt *st)
{
	size_t qlen = strnlen((const char *)st->body, st->len);
	if (qlen >= st->len)
		return -1;
	return split_queue_parse(sc, sp, st->body + qlen + 1, st->len - qlen - 1);
}

/* What a statement sent to several shards does to each one's session, as
 * relay/state.c notes it for one: DEALLOCATE ALL drops PgCrab's own
 * statements there too, and a change to settings or state is asked about
 * when the transaction ends. */
static void note_session_effects(struct relay_link *l, struct relay_leg *leg, uint8_t type,
				 const uint8_t *body, uint32_t blen)
{
	const uint8_t *q = body;
	if (type == 'P') {
		const uint8_t *z = memchr(body, '\0', blen);
		if (!z)
			return;
		q = z + 1;
	}
	const uint8_t *end = memchr(q, '\0', blen - (uint32_t)(q - body));
	if (!end)
		return;
	struct query_class qc;
	if (query_classify((const char *)q, (size_t)(end - q), &qc) != 0)
		qc.effects = QUERY_UNKNOWN;
	if (qc.effects & QUERY_DEALLOCATE_ALL) {
		stmt_set_clear(&leg->server->stmts);
		stmt_names_clear(l->names);
	}
	leg->dirty |= qc.effects;
}

/* The unit's messages for one shard. */
static int send_unit(struct relay_link *l, struct fan_src *s)
{
	struct relay_router *r = l->router;
	struct conn *cc = l->client;
	struct conn *sc = &s->leg->server->c;
	const struct router_plan *p = r->plan;
	uint32_t pos = cc->rx_start;
	char described[8][64];
	int n_described = 0;
	/* a multi-row INSERT split by its Bind: this shard's rows only */
	struct split_part sp = { 0 };
	if (r->split_rows && split_part_make(l, s->leg->shard, &sp) != 0)
		goto fail;

	for (int i = 0; i < r->unit.n_msgs; i++) {
		uint8_t type = cc->rx[pos];
		uint32_t total = 1 + proto_be32(cc->rx + pos + 1);
		const uint8_t *body = cc->rx + pos + 5;
		uint32_t blen = total - 5;
		const uint8_t *z = blen ? memchr(body, '\0', blen) : NULL;
		int rc = 0;
		if (type != 'Q' && type != 'S' && type != 'H' && !z) {
			split_part_clear(&sp);
			return -2;
		}
		if (type == 'Q' || type == 'P')
			note_session_effects(l, s->leg, type, body, blen);
		switch (type) {
		case 'Q':
			rc = queue_msg(sc, 'Q', shard_text(p, s->leg->shard, (const char *)body),
				       strlen(shard_text(p, s->leg->shard, (const char *)body)) + 1,
				       NULL, 0);
			break;
		case 'P': {
			/* named or not, it is the unnamed statement on the shard */
			const uint8_t *q = z + 1;
			const uint8_t *qz = memchr(q, '\0', blen - (uint32_t)(q - body));
			if (!qz) {
				split_part_clear(&sp);
				return -2;
			}
			const char *text = body[0] ? (const char *)q
						   : shard_text(p, s->leg->shard, (const char *)q);
			if (sp.sql && (body[0] == '\0' || sp.named)) {
				rc = split_queue_parse(sc, &sp, qz + 1,
						       blen - (size_t)(qz + 1 - body));
				if (rc == 0)
					rc = hide_push(&s->parse_q, false);
				sp.parsed = true;
				break;
			}
			if (body[0]) {
				struct stmt *st = stmt_names_find(l->names, (const char *)body);
				if (st) {
					rc = parse_named(l, s, st, false);
					break;
				}
			}
			rc = queue_parse(sc, text, qz + 1, blen - (size_t)(qz + 1 - body));
			if (rc == 0)
				rc = hide_push(&s->parse_q, false);
			break;
		}
		case 'B': {
			const uint8_t *stmt_name = z + 1;
			const uint8_t *sz = memchr(stmt_name, '\0',
						   blen - (uint32_t)(stmt_name - body));
			if (!sz) {
				split_part_clear(&sp);
				return -2;
			}
			if (sp.sql) {
				/* the split's Bind: this shard's rows' parameters */
				if (!sp.parsed) {
					struct stmt *st = *stmt_name
						? stmt_names_find(l->names, (const char *)stmt_name)
						: NULL;
					if (!st || split_queue_parse_stmt(sc, &sp, st) != 0)
						goto fail;
					if (hide_push(&s->parse_q, true) != 0)
						goto fail;
				}
				struct relay_bind b;
				if (relay_bind_parse(body, blen, &b) != 0)
					goto fail;
				rc = relay_bind_queue_subset(sc, &b, sp.map, sp.n_map);
				relay_bind_free(&b);
				break;
			}
			if (*stmt_name) {
				struct stmt *st = stmt_names_find(l->names,
								  (const char *)stmt_name);
				if (!st) {
					split_part_clear(&sp);
					return -3;
				}
				if (parse_named(l, s, st, true) != 0)
					goto fail;
			}
			/* the Bind, to the unnamed statement */
			uint32_t n = (uint32_t)(4 + (size_t)(stmt_name - body) + 1
						+ (blen - (size_t)(sz + 1 - body)));
			uint8_t hdr[5] = { 'B', (uint8_t)(n >> 24), (uint8_t)(n >> 16),
					   (uint8_t)(n >> 8), (uint8_t)n };
			uint8_t nul = 0;
			rc = conn_queue(sc, hdr, 5)
				| conn_queue(sc, body, (size_t)(stmt_name - body))
				| conn_queue(sc, &nul, 1)
				| conn_queue(sc, sz + 1, blen - (size_t)(sz + 1 - body));
			break;
		}
		case 'D': {
			const char *name = (const char *)body + 1;
			if (body[0] == 'S' && name[0]) {
				struct stmt *st = stmt_names_find(l->names, name);
				if (!st) {
					split_part_clear(&sp);
					return -3;
				}
				if (parse_named(l, s, st, true) != 0)
					goto fail;
				rc = queue_msg(sc, 'D', "S", 2, NULL, 0);
			} else {
				rc = conn_queue(sc, cc->rx + pos, total);
			}
			if (body[0] == 'P' && n_described < 8)
				snprintf(described[n_described++], sizeof(described[0]), "%s",
					 name);
			if (rc == 0)
				rc = hide_push(&s->desc_q, false);
			break;
		}
		case 'E': {
			/* the merge needs the rows' description: asked for, hidden,
			 * when the client did not ask */
			bool known = false;
			for (int k = 0; k < n_described; k++)
				known |= strcmp(described[k], (const char *)body) == 0;
			if (!known) {
				uint8_t d[70];
				size_t nl = strnlen((const char *)body, 63);
				d[0] = 'P';
				memcpy(d + 1, body, nl);
				d[1 + nl] = '\0';
				rc = queue_msg(sc, 'D', d, nl + 2, NULL, 0);
				if (rc == 0)
					rc = hide_push(&s->desc_q, true);
				if (n_described < 8)
					snprintf(described[n_described++], sizeof(described[0]),
						 "%.*s", (int)nl, (const char *)body);
			}
			if (rc == 0)
				rc = conn_queue(sc, cc->rx + pos, total);
			break;
		}
		case 'C':
			/* Close of a named statement: the client's name goes */
			if (body[0] == 'S' && body[1])
				stmt_names_remove(l->names, (const char *)body + 1);
			rc = body[0] == 'S' ? queue_msg(sc, 'C', "S", 2, NULL, 0)
					    : conn_queue(sc, cc->rx + pos, total);
			break;
		default:
			rc = conn_queue(sc, cc->rx + pos, total);
			break;
		}
		if (rc != 0)
			goto fail;
		if (type == 'Q' || type == 'S') {
			s->ready_left++;
			s->leg->expect_ready++;
		}
		pos += total;
	}
	split_part_clear(&sp);
	return 0;
fail:
	split_part_clear(&sp);
	return -1;
}

/* Named Parses of a unit PgCrab answers or fans out: the client's names
 * now stand for them. -3 (missing set) when a Bind or Describe names a
 * statement nobody prepared. */
int route_register_names(struct relay_link *l, char *missing, size_t missing_len)
{
	struct conn *cc = l->client;
	uint32_t pos = cc->rx_start;
	for (int i = 0; i < l->router->unit.n_msgs; i++) {
		uint8_t type = cc->rx[pos];
		uint32_t total = 1 + proto_be32(cc->rx + pos + 1);
		const uint8_t *body = cc->rx + pos + 5;
		if (type == 'P' && total > 6 && body[0]) {
			const uint8_t *z = memchr(body, '\0', total - 5);
			if (!z)
				return -1;
			struct stmt *st =
				stmt_new(z + 1, (uint32_t)(total - 5 - (uint32_t)(z + 1 - body)));
			if (!st)
				return -1;
			stmt_names_remove(l->names, (const char *)body);
			int rc = stmt_names_add(l->names, (const char *)body, st);
			stmt_unref(st);
			if (rc != 0)
				return -1;
		}
		const uint8_t *name = NULL;
		if (type == 'B' && total > 6) {
			const uint8_t *z = memchr(body, '\0', total - 5);
			name = z && z + 1 < body + total - 5 ? z + 1 : NULL;
		} else if (type == 'D' && total > 6 && body[0] == 'S') {
			name = body + 1;
		}
		if (name && *name && memchr(name, '\0', (size_t)(body + total - 5 - name))
		    && !stmt_names_find(l->names, (const char *)name)) {
			snprintf(missing, missing_len, "%s", (const char *)name);
			return -3;
		}
		pos += total;
	}
	return 0;
}

/* ParseComplete, BindComplete, NoData for an extended-protocol COMMIT or
 * ROLLBACK that PgCrab runs itself (its tag and ReadyForQuery come last). */
static int answer_ahead(struct relay_link *l)
{
	struct conn *c = l->client;
	uint32_t pos = c->rx_start;
	for (int i = 0; i < l->router->unit.n_msgs; i++) {
		uint8_t type = c->rx[pos];
		uint8_t m[5] = { 0, 0, 0, 0, 4 };
		m[0] = type == 'P'    ? '1'
			: type == 'B' ? '2'
			: type == 'D' ? 'n'
			: type == 'C' ? '3'
				      : 0;
		if (m[0] && conn_queue(c, m, sizeof(m)) != 0)
			return -1;
		pos += 1 + proto_be32(c->rx + pos + 1);
	}
	return 0;
}

void route_fan_start(struct relay_link *l, uint64_t want)
{
	struct relay_router *r = l->router;
	const struct router_plan *p = r->plan;
	if (p && p->route == ROUTER_SPLIT && p->split) {
		want = 0;
		for (int i = 0; i < r->schema->n_shards; i++)
			if (p->split[i])
				want |= UINT64_C(1) << i;
	}
	int n = __builtin_popcountll(want);
	struct fan *f = calloc(1, sizeof(*f) + (size_t)n * sizeof(struct fan_src));
	if (!f) {
		l->ops->failed(l, "53200", "out of memory");
		return;
	}
	f->n = n;
	r->fan = f;
	r->state = ROUTE_FAN;
	/* a write outside a transaction gets one of its own, on every shard */
	f->wrap = r->unit.writes && !r->unit.no_tx_block && route_tx_status(l) == 'I' && n > 1;
	bool ask_columns = r->copy_spec && r->copy_spec->n_fields < 0;
	if (r->copy_spec && !ask_columns) {
		f->splitter = router_copy_splitter_new(r->copy_spec);
		if (!f->splitter)
			goto oom;
	}
	f->end = (enum fan_end)r->fan_end;
	r->fan_end = FAN_END_NONE;
	if (f->end != FAN_END_NONE) {
		/* PgCrab ends the transaction itself: the client's COMMIT goes
		 * nowhere, its messages before the Sync are answered now */
		f->unit_over = true;
		if (answer_ahead(l) != 0)
			goto oom;
	}
	if (f->end == FAN_END_NONE) {
		char missing[80];
		int rc = route_register_names(l, missing, sizeof(missing));
		if (rc == -3) {
			/* as PostgreSQL answers a Bind of a statement it does not have */
			char msg[160];
			snprintf(msg, sizeof(msg), "prepared statement \"%s\" does not exist",
				 missing);
			route_fan_free(l);
			r->state = ROUTE_IDLE;
			route_answer_error(l, "26000", msg);
			return;
		}
		if (rc != 0)
			goto oom;
	}
	int k = 0;
	for (int i = 0; i < r->schema->n_shards; i++) {
		if (!(want & (UINT64_C(1) << i)))
			continue;
		struct fan_src *s = &f->src[k++];
		s->leg = route_leg_of(l, i);
		s->leg->fan = true;
		const char *begin = NULL;
		if (r->preamble && s->leg->tx_status == 'I')
			begin = r->preamble;
		else if (f->wrap)
			begin = "BEGIN";
		if (begin) {
			if (fan_send_query(s, begin) != 0)
				goto oom;
			s->skip_ready++;
		}
		int rc = f->end == FAN_END_NONE && !ask_columns ? send_unit(l, s) : 0;
		if (rc == -2) {
			l->ops->failed(l, "08P01", "invalid message in an extended-protocol batch");
			return;
		}
		if (rc != 0)
			goto oom;
		relay_stats_request(s->leg, s->leg->server->c.tx_len);
		conn_flush_tx(&s->leg->server->c);
	}
	if (ask_columns) {
		const uint8_t *q = l->client->rx + l->client->rx_start + 5;
		if (fan_copy_columns_start(l, f, (const char *)q, strlen((const char *)q)) != 0)
			goto oom;
	}
	l->client->rx_start += r->unit.len;
	l->client->scan_pos = l->client->rx_start;
	route_fan_pump(l);
	return;
oom:
	l->ops->failed(l, "53200", "out of memory");
}

/* ---- receiving ------------------------------------------------------------- */

static int add_step(struct fan_src *s, uint8_t type, const uint8_t *msg, uint32_t total, bool keep)
{
	if (s->n_steps == s->cap_steps) {
		int cap = s->cap_steps ? s->cap_steps * 2 : 8;
		struct fan_step *v = realloc(s->steps, (size_t)cap * sizeof(*v));
		if (!v)
			return -1;
		s->steps = v;
		s->cap_steps = cap;
	}
	struct fan_step *st = &s->steps[s->n_steps];
	memset(st, 0, sizeof(*st));
	st->type = type;
	if (keep) {
		st->msg = malloc(total);
		if (!st->msg)
			return -1;
		memcpy(st->msg, msg, total);
		st->len = total;
	}
	s->n_steps++;
	return 0;
}

/* The merger for the unit's statement; a LIMIT/OFFSET given as parameters
 * takes the values its Bind gave. */
static struct router_merger *new_merger(const struct relay_router *r, int n)
{
	const struct router_merge *spec = r->plan ? r->plan->merge : NULL;
	if (spec && (spec->limit_param || spec->offset_param)) {
		if (!r->limits_bound)
			return NULL;
		struct router_merge bound = *spec;
		bound.limit = r->limit;
		bound.offset = r->offset;
		bound.limit_param = bound.offset_param = 0;
		return router_merger_new(&bound, n);
	}
	return router_merger_new(spec, n);
}

/* A write to unsharded tables: each shard's answer is the same. */
static bool replicated(const struct relay_link *l)
{
	return l->router->plan && l->router->plan->replicated;
}

static int client_queue_raw(struct relay_link *l, const void *p, size_t n)
{
	if (conn_queue(l->client, p, n) != 0) {
		l->ops->failed(l, "53200", "out of memory");
		return -1;
	}
	return 0;
}

/* A message that is not a reply to the unit (phase queries' are twophase.c's). */
static int take_unit_msg(struct relay_link *l, struct fan *f, int si, uint8_t type,
			 const uint8_t *msg, uint32_t total)
{
	struct fan_src *s = &f->src[si];
	const uint8_t *body = msg + 5;
	uint32_t blen = total - 5;
	char code[6], err[300];
	switch (type) {
	case 'N':
	case 'A':
		return si == 0 ? client_queue_raw(l, msg, total) : 0;
	case 'S':
		return 0; /* settings are the link's (state.c) */
	case 'd':
		return client_queue_raw(l, msg, total); /* COPY TO: read once CopyOut went out */
	case '1':
		if (fan_hide_pop(&s->parse_q))
			return 0; /* a Parse of PgCrab's own */
		break;
	case 'n':
		if (fan_hide_pop(&s->desc_q))
			return 0;
		break;
	case 'T':
		if (replicated(l) && si != 0) {
			fan_hide_pop(&s->desc_q);
			return 0; /* every shard returns the same rows: the first's stand */
		}
		if (fan_hide_pop(&s->desc_q))
			f->strip_desc = true; /* the client did not ask for it */
					      /* fall through */
	case 'D':
	case 's':
		if (replicated(l) && si != 0)
			return 0;
		if (!f->merger) {
			f->merger = new_merger(l->router, f->n);
			if (!f->merger)
				return -1;
		}
		/* this source's rows begin: the merged result takes their place
		 * among its steps */
		if (!s->in_merge) {
			s->in_merge = true;
			if (add_step(s, 'M', NULL, 0, false) != 0)
				return -1;
		}
		/* fall through */
	case 'C':
		if (type == 'C' && !s->in_merge)
			break;
		if (type == 'C' || type == 's')
			s->in_merge = false;
		if (router_merger_feed(f->merger, si, type, body, blen, code, err, sizeof(err))
		    != 0) {
			s->in_merge = false;
			uint8_t buf[512];
			struct proto_writer wr = proto_writer_init(buf, sizeof(buf));
			proto_build_error(&wr, "ERROR", code, err);
			return add_step(s, 'E', wr.p, (uint32_t)wr.len, true);
		}
		return 0;
	case 'E':
		s->in_merge = false;
		break;
	case 'Z':
		s->in_merge = false;
		s->parse_q.n = 0; /* after an error the rest went unanswered */
		s->desc_q.n = 0;
		if (blen == 1) {
			s->leg->tx_status = (char)body[0];
			s->status = (char)body[0];
		}
		if (s->leg->expect_ready > 0)
			s->leg->expect_ready--;
		relay_stats_ready(s->leg, blen == 1 ? (char)body[0] : 'E');
		s->ready_left--;
		break;
	}
	return add_step(s, type, msg, total, si == 0 || type == 'E' || type == 'C');
}

/* Reads what source si has whole in its rx. */
static int read_src(struct relay_link *l, struct fan *f, int si)
{
	struct fan_src *s = &f->src[si];
	struct conn *c = &s->leg->server->c;
	while (c->rx_start < c->rx_end) {
		/* a LIMIT reached: the rest is read and dropped */
		if (f->merger && s->in_merge && !router_merger_wants(f->merger, si)
		    && !router_merger_draining(f->merger))
			return 0; /* its rows wait in the socket until the merge needs them */
		if (l->client->tx_len > FAN_CLIENT_TX_MAX)
			return 0;
		uint8_t type;
		uint32_t total;
		enum proto_result pr = proto_frame(c->rx + c->rx_start, c->rx_end - c->rx_start,
						   PROTO_MAX_MESSAGE, &type, &total);
		if (pr == PROTO_ERR || (pr == PROTO_OK && !proto_backend_type(type)))
			return -2;
		if (pr == PROTO_AGAIN || c->rx_end - c->rx_start < total) {
			if (pr == PROTO_OK && total > c->rx_cap)
				c->rx_want = total;
			break;
		}
		const uint8_t *msg = c->rx + c->rx_start;
		int rc;
		if (type == 'd' && !f->copy_out && !f->failed)
			return 0; /* COPY TO: its rows wait for the one CopyOutResponse */
		if (type == 'E' && total > 5) {
			struct proto_error_fields ef;
			if (proto_parse_error(msg + 5, total - 5, &ef) == PROTO_OK
			    && (strcmp(ef.severity, "FATAL") == 0
				|| strcmp(ef.severity, "PANIC") == 0))
				return -2;
		}
		if (s->skip_ready > 0 || f->phase)
			rc = fan_phase_msg(l, f, si, type, msg, total);
		else
			rc = take_unit_msg(l, f, si, type, msg, total);
		c->rx_start += total;
		c->scan_pos = c->rx_start;
		if (rc != 0)
			return rc;
	}
	if (!c->recv_armed && !c->closing && conn_arm_recv(c) != 0)
		return -2;
	return 0;
}

/* Sends what the merger has ready. */
static int drain_merger(struct relay_link *l, struct fan *f)
{
	uint8_t small[16384];
	while (l->client->tx_len <= FAN_CLIENT_TX_MAX) {
		size_t want = router_merger_next_size(f->merger);
		uint8_t *buf = want > sizeof(small) ? malloc(want) : small;
		if (!buf)
			return -1;
		long n = router_merger_emit(f->merger, buf,
					    want > sizeof(small) ? want : sizeof(small));
		size_t skip = 0;
		if (n > 5 && f->strip_desc && buf[0] == 'T') {
			/* the description PgCrab asked for is the merge's, not the client's */
			skip = 1 + proto_be32(buf + 1);
			f->strip_desc = false;
		}
		int rc = n > (long)skip ? client_queue_raw(l, buf + skip, (size_t)n - skip) : 0;
		if (buf != small)
			free(buf);
		if (n < 0 || rc != 0)
			return -1;
		if (n == 0)
			break;
	}
	return 0;
}

static bool all_have_step(const struct fan *f, int k)
{
	for (int i = 0; i < f->n; i++)
		if (f->src[i].n_steps <= k)
			return false;
	return true;
}

static bool all_ready(const struct fan *f)
{
	for (int i = 0; i < f->n; i++)
		if (f->src[i].ready_left > 0 || f->src[i].skip_ready > 0)
			return false;
	return true;
}

/* Sends the steps every source has given. */
static int emit_steps(struct relay_link *l, struct fan *f)
{
	for (;;) {
		if (f->merger && drain_merger(l, f) != 0)
			return -1;
		if (f->failed || f->unit_over)
			return 0;
		int k = f->next_step;
		if (!all_have_step(f, k))
			return 0;
		/* an error anywhere ends the unit for the client */
		for (int i = 0; i < f->n; i++) {
			struct fan_step *st = &f->src[i].steps[k];
			if (st->type == 'E') {
				f->failed = true;
				f->err = st->msg;
				f->err_len = st->len;
				st->msg = NULL;
				router_merger_free(f->merger);
				f->merger = NULL;
				return 0;
			}
		}
		struct fan_step *st0 = &f->src[0].steps[k];
		if (st0->type == 'M') {
			if (f->merger && !router_merger_done(f->merger)) {
				/* a Describe without Execute: nothing more comes */
				bool moved_on = all_have_step(f, k + 1);
				if (!moved_on)
					return 0;
				if (drain_merger(l, f) != 0)
					return -1;
			}
			router_merger_free(f->merger);
			f->merger = NULL;
			f->next_step++;
			continue;
		}
		if (st0->type == 'Z') {
			bool last = true;
			for (int i = 0; i < f->n; i++)
				if (f->src[i].ready_left > 0)
					last = false;
			if (last) {
				f->unit_over = true;
				return 0;
			}
			/* a Sync inside the unit: one ReadyForQuery */
		}
		if (st0->type == 'C' && !replicated(l)) {
			uint64_t sum = 0;
			bool counted = true;
			char tag[64];
			for (int i = 0; i < f->n; i++) {
				const struct fan_step *si = &f->src[i].steps[k];
				const char *t = si->msg ? (const char *)si->msg + 5 : "";
				const char *sp = strrchr(t, ' ');
				/* "INSERT 0 5", "UPDATE 3": counts; "CREATE TABLE" is no count */
				if (!sp || !sp[1] || strspn(sp + 1, "0123456789") != strlen(sp + 1))
					counted = false;
				else
					sum += strtoull(sp + 1, NULL, 10);
			}
			const char *t0 = (const char *)st0->msg + 5;
			const char *sp = strrchr(t0, ' ');
			if (counted && sp && (size_t)(sp - t0) < 40) {
				snprintf(tag, sizeof(tag), "%.*s %llu", (int)(sp - t0), t0,
					 (unsigned long long)sum);
				if (queue_msg(l->client, 'C', tag, strlen(tag) + 1, NULL, 0) != 0)
					return -1;
			} else if (client_queue_raw(l, st0->msg, st0->len) != 0) {
				return -1;
			}
		} else if (st0->msg && client_queue_raw(l, st0->msg, st0->len) != 0) {
			return -1;
		}
		if (st0->type == 'G')
			f->copy_in = true; /* the client's CopyData is split from now on */
		if (st0->type == 'H')
			f->copy_out = true;
		f->next_step++;
	}
}

/* The unit's end for the client: its error, and one ReadyForQuery. */
int fan_finish(struct relay_link *l, struct fan *f, const uint8_t *tag_msg, size_t tag_len)
{
	if (f->copy_err) {
		free(f->err); /* the shards' "COPY failed" stands for PgCrab's own reason */
		f->err = f->copy_err;
		f->err_len = f->copy_err_len;
		f->copy_err = NULL;
	}
	if (f->err && client_queue_raw(l, f->err, f->err_len) != 0)
		return -1;
	if (tag_msg && !f->err && client_queue_raw(l, tag_msg, tag_len) != 0)
		return -1;
	uint8_t z[6] = { 'Z', 0, 0, 0, 5, (uint8_t)route_tx_status(l) };
	if (client_queue_raw(l, z, sizeof(z)) != 0)
		return -1;
	conn_flush_tx(l->client);
	return 0;
}

bool route_fan_pump(struct relay_link *l)
{
	struct fan *f = l->router->fan;
	if (!f)
		return true;
	if (CFG_LOG_DEBUG <= atomic_load_explicit(&log_threshold, memory_order_relaxed)) {
		char b[256];
		int n = 0;
		for (int i = 0; i < f->n && n < 200; i++)
			n += snprintf(b + n, sizeof(b) - (size_t)n,
				      " [%d: steps %d ready_left %d skip %d]", f->src[i].leg->shard,
				      f->src[i].n_steps, f->src[i].ready_left,
				      f->src[i].skip_ready);
		log_debug("fan: next_step %d phase %d over %d failed %d%s", f->next_step, f->phase,
			  f->unit_over, f->failed, b);
	}
	for (int i = 0; i < f->n; i++) {
		int rc = read_src(l, f, i);
		if (rc == -2) {
			struct relay_leg *leg = f->src[i].leg;
			f->src[i].leg = NULL;
			route_fan_free(l);
			l->router->state = ROUTE_IDLE;
			relay_leg_lost(leg, "invalid message from server");
			return false;
		}
		if (rc != 0) {
			l->ops->failed(l, "53200", "out of memory");
			return false;
		}
	}
	if (!f->phase && emit_steps(l, f) != 0)
		return false;
	if (f->copy_in) {
		int rc = fan_copy_pump(l, f);
		if (rc == -2) {
			l->ops->failed(l, "08P01", "invalid message length");
			return false;
		}
		if (rc != 0) {
			l->ops->failed(l, "53200", "out of memory");
			return false;
		}
	}
	conn_flush_tx(l->client);
	if (!f->phase && (f->unit_over || f->failed) && all_ready(f)) {
		/* every shard has answered the whole unit */
		if (f->wrap || f->end != FAN_END_NONE)
			return fan_phases_start(l, f);
		if (fan_finish(l, f, NULL, 0) != 0)
			return false;
		route_fan_free(l);
		return true;
	}
	if (f->phase && f->phase_done) {
		f->phase_done = false;
		return fan_phase_next(l, f);
	}
	return false;
}
