/* A client of a sharded database: each unit it sends (a simple Query, or
 * extended-protocol messages up to Sync) is planned by the router and goes
 * to the shard that holds its rows, or to several (relay/fanout.c merges
 * their answers). Units go one at a time, so replies keep their order.
 *
 * A transaction's BEGIN is held back until its first routed statement, so
 * that it opens on the right shard; a shard that joins later gets the same
 * BEGIN (and the transaction's savepoints) first, hidden. A transaction on
 * one shard commits there; on several, relay/twophase.c commits it with
 * two-phase commit. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "core/log.h"
#include "core/worker.h"
#include "proto/proto.h"
#include "relay/bind.h"
#include "relay/relay.h"
#include "relay/route.h"
#include "router/router.h"

static const char *const aborted_msg =
	"current transaction is aborted, commands ignored until end of transaction block";

int relay_route_init(struct relay_link *l, const struct router_schema *schema, const char *db_name)
{
	struct relay_router *r = calloc(1, sizeof(*r));
	if (!r)
		return -1;
	r->schema = schema;
	r->ctx.shard = -1;
	snprintf(r->db_name, sizeof(r->db_name), "%s", db_name);
	l->router = r;
	return 0;
}

static void unit_clear(struct relay_router *r)
{
	router_plan_free(r->plan);
	r->plan = NULL;
	router_plan_free(r->split_plan);
	r->split_plan = NULL;
	r->limits_bound = false;
	free(r->split_rows);
	r->split_rows = NULL;
	if (r->copy_spec) {
		router_copy_spec_clear(r->copy_spec);
		free(r->copy_spec);
		r->copy_spec = NULL;
	}
}

/* COPY ... FROM STDIN into a sharded table: 1 (r->copy_spec set), 0 (not
 * that), -1 (refused: err). */
static int plan_copy(struct relay_router *r, const char *sql, size_t len, char *err, size_t errlen)
{
	size_t i = 0;
	while (i < len && (sql[i] == ' ' || sql[i] == '\t' || sql[i] == '\n' || sql[i] == '\r'))
		i++;
	if (len - i < 4 || strncasecmp(sql + i, "copy", 4) != 0)
		return 0;
	struct router_copy_spec *spec = calloc(1, sizeof(*spec));
	char code[6], msg[400];
	if (!spec) {
		snprintf(err, errlen, "53200: out of memory");
		return -1;
	}
	int rc = router_copy_plan(r->schema, sql, len, spec, code, msg, sizeof(msg));
	if (rc == 1) {
		r->copy_spec = spec;
		return 1;
	}
	router_copy_spec_clear(spec);
	free(spec);
	if (rc < 0)
		snprintf(err, errlen, "%.5s: %s", code, msg);
	return rc;
}

void relay_route_clear(struct relay_link *l)
{
	struct relay_router *r = l->router;
	if (!r)
		return;
	route_fan_free(l);
	unit_clear(r);
	router_plan_free(r->unnamed);
	free(r->preamble);
	free(r->ctx_key);
	free(r);
	l->router = NULL;
}

struct relay_leg *route_leg_of(struct relay_link *l, int shard)
{
	for (struct relay_leg *leg = l->legs; leg; leg = leg->next)
		if (leg->shard == shard)
			return leg;
	return NULL;
}

/* The transaction status the client sees. */
char route_tx_status(const struct relay_link *l)
{
	const struct relay_router *r = l->router;
	char st = r->preamble ? 'T' : 'I';
	for (const struct relay_leg *leg = l->legs; leg; leg = leg->next) {
		if (leg->tx_status == 'E')
			return 'E';
		if (leg->tx_status == 'T')
			st = 'T';
	}
	return r->aborted ? 'E' : st;
}

bool relay_route_idle(const struct relay_link *l)
{
	const struct relay_router *r = l->router;
	return r->state == ROUTE_IDLE && !r->preamble && !r->aborted;
}

/* ---- answers PgCrab gives itself ------------------------------------------ */

static void answer(struct relay_link *l, const char *tag, const char *code, const char *msg)
{
	struct conn *c = l->client;
	uint8_t buf[1024];
	struct proto_writer wr = proto_writer_init(buf, sizeof(buf));
	if (code) {
		proto_build_error(&wr, "ERROR", code, msg);
		if (l->router->preamble || l->legs)
			l->router->aborted = route_tx_status(l) != 'I' || l->router->preamble;
	} else if (tag) {
		size_t at = proto_msg_begin(&wr, 'C');
		proto_put_cstr(&wr, tag);
		proto_msg_end(&wr, at);
	}
	proto_build_ready(&wr, route_tx_status(l));
	if (wr.overflow || conn_queue(c, wr.p, wr.len) != 0) {
		l->ops->failed(l, "53200", "out of memory");
		return;
	}
	conn_flush_tx(c);
}

/* ---- the unit: a Query, or extended messages up to Sync ------------------- */

/* Frames the unit at rx_start: 1 with *n_msgs and *len when it is whole in
 * rx, 0 when more must be read, -1 when a message is broken. */
static int frame_unit(struct conn *c, uint32_t max, int *n_msgs, uint32_t *len, uint8_t *first)
{
	uint32_t pos = c->rx_start;
	int n = 0;
	while (pos < c->rx_end) {
		uint8_t type;
		uint32_t total;
		enum proto_result pr = proto_frame(c->rx + pos, c->rx_end - pos, max, &type,
						   &total);
		if (pr == PROTO_ERR)
			return -1;
		if (pr == PROTO_AGAIN || c->rx_end - pos < total) {
			uint32_t need = pos - c->rx_start + (pr == PROTO_AGAIN ? 5 : total);
			if (need > c->rx_cap)
				c->rx_want = need + 4096;
			return 0;
		}
		if (n == 0)
			*first = type;
		n++;
		pos += total;
		/* a Query, a Sync, a Flush, a Terminate or a COPY message ends it */
		if (type == 'Q' || type == 'S' || type == 'H' || type == 'X' || type == 'd'
		    || type == 'c' || type == 'f' || type == 'F') {
			*n_msgs = n;
			*len = pos - c->rx_start;
			return 1;
		}
	}
	return 0;
}

/* The query text of a Query or Parse message at rx[pos]. */
static bool text_of(const struct conn *c, uint32_t pos, uint32_t total, const char **sql,
		    size_t *len, const char **name)
{
	const uint8_t *body = c->rx + pos + PROTO_HEADER_LEN;
	uint32_t left = total - PROTO_HEADER_LEN;
	*name = "";
	if (c->rx[pos] == 'P') {
		const uint8_t *z = memchr(body, '\0', left);
		if (!z)
			return false;
		*name = (const char *)body;
		left -= (uint32_t)(z + 1 - body);
		body = z + 1;
	}
	const uint8_t *z = memchr(body, '\0', left);
	if (!z)
		return false;
	*sql = (const char *)body;
	*len = (size_t)(z - body);
	return true;
}

/* Merges a statement's plan into the unit's decision. */
static void decide(struct unit_route *u, const struct router_plan *p, uint64_t all)
{
	u->n_plans++;
	switch (p->route) {
	case ROUTER_ANY:
		u->any = true;
		break;
	case ROUTER_SHARDS:
		u->shards |= p->shards;
		break;
	case ROUTER_ALL:
	case ROUTER_SPLIT:
		u->shards |= all;
		u->fan = true;
		break;
	case ROUTER_BIND:
		u->bind = true; /* shards known at each Bind */
		break;
	default:
		break;
	}
	u->writes |= p->writes;
	u->no_tx_block |= p->no_tx_block;
}

/* The shards of a Bind of a ROUTER_BIND plan; a multi-row INSERT's rows'
 * shards are kept for the split (r->split_rows). */
static int bind_shards(struct relay_router *r, const struct router_plan *p, const uint8_t *body,
		       uint32_t len, uint64_t *out, char *err, size_t errlen)
{
	struct relay_bind b;
	int rc = relay_bind_parse(body, len, &b);
	if (rc != 0) {
		snprintf(err, errlen,
			 rc == -2 ? "53200: out of memory" : "08P01: invalid Bind message");
		return -1;
	}
	rc = router_bind_shards(p, r->schema->n_shards, b.n, b.values, b.lengths, b.formats, out,
				err, errlen);
	if (rc == 0 && p->insert_rows > 1 && __builtin_popcountll(*out) > 1) {
		free(r->split_rows);
		r->split_rows = calloc((size_t)p->insert_rows, sizeof(*r->split_rows));
		if (!r->split_rows) {
			snprintf(err, errlen, "53200: out of memory");
			rc = -1;
		} else {
			rc = router_bind_rows(p, r->schema->n_shards, b.n, b.values, b.lengths,
					      b.formats, r->split_rows, err, errlen);
		}
	}
	relay_bind_free(&b);
	return rc;
}

/* A merge whose LIMIT/OFFSET are parameters: their values from this Bind. */
static int bind_limits(struct relay_router *r, const struct router_plan *p, const uint8_t *body,
		       uint32_t len, char *err, size_t errlen)
{
	struct relay_bind b;
	int rc = relay_bind_parse(body, len, &b);
	if (rc != 0) {
		snprintf(err, errlen,
			 rc == -2 ? "53200: out of memory" : "08P01: invalid Bind message");
		return -1;
	}
	if (r->limits_bound) {
		relay_bind_free(&b);
		snprintf(err, errlen,
			 "0A000: one batch may bind one LIMIT across shards: send a Sync after each");
		return -1;
	}
	rc = router_merge_bind_limits(p->merge, b.n, b.values, b.lengths, b.formats, &r->limit,
				      &r->offset, err, errlen);
	relay_bind_free(&b);
	r->limits_bound = rc == 0;
	return rc;
}

/* Plans every statement of the unit; 0, or -1 with sqlstate/message set. */
static int plan_unit(struct relay_link *l, struct unit_route *u, int n_msgs, char *err,
		     size_t errlen)
{
	struct relay_router *r = l->router;
	struct conn *c = l->client;
	uint64_t all = r->schema->n_shards >= 64 ? ~UINT64_C(0)
						 : (UINT64_C(1) << r->schema->n_shards) - 1;
	struct router_context ctx = { .shard = r->ctx.shard, .sharding_key = r->ctx_key };
	uint32_t pos = c->rx_start;
	memset(u, 0, sizeof(*u));
	for (int i = 0; i < n_msgs; i++) {
		uint8_t type = c->rx[pos];
		uint32_t total = 1 + proto_be32(c->rx + pos + 1);
		const char *sql, *name;
		size_t len;
		if (type == 'Q' || type == 'E')
			u->executes = true;
		if ((type == 'Q' || type == 'P') && text_of(c, pos, total, &sql, &len, &name)) {
			int cp = type == 'Q' ? plan_copy(r, sql, len, err, errlen) : 0;
			if (cp < 0)
				return -1;
			if (cp > 0) {
				/* every shard runs it; rows go by key, in a transaction */
				u->shards |= all;
				u->fan = u->fan_force = u->writes = true;
				pos += total;
				continue;
			}
			struct router_plan *p = router_plan(r->schema, &ctx, sql, len);
			if (!p) {
				snprintf(err, errlen, "53200: out of memory");
				return -1;
			}
			if (p->route == ROUTER_REFUSE) {
				snprintf(err, errlen, "%s: %s", p->sqlstate,
					 p->message ? p->message : "refused");
				router_plan_free(p);
				return -1;
			}
			if (type == 'Q' || u->plan == NULL) {
				router_plan_free(u->plan);
				u->plan = p;
			} else if (name[0] == '\0') {
				router_plan_free(r->unnamed);
				r->unnamed = p;
				p = NULL;
			} else {
				router_plan_free(p);
				p = NULL;
			}
			/* a write bound later is still a write: it gets its transaction */
			if (p && p->route == ROUTER_BIND) {
				u->writes |= p->writes;
				u->no_tx_block |= p->no_tx_block;
			}
			if (type == 'Q')
				decide(u, u->plan, all);
			else if (name[0] == '\0') {
				router_plan_free(r->unnamed);
				r->unnamed = NULL;
				if (u->plan && u->plan->route != ROUTER_BIND)
					decide(u, u->plan, all);
			}
		} else if (type == 'B') {
			const uint8_t *body = c->rx + pos + PROTO_HEADER_LEN;
			const uint8_t *z = memchr(body, '\0', total - PROTO_HEADER_LEN);
			const char *stmt_name = z ? (const char *)z + 1 : "";
			struct router_plan *p = u->plan;
			struct router_plan *named = NULL;
			if (stmt_name[0] != '\0') {
				struct stmt *st = stmt_names_find(l->names, stmt_name);
				if (st) {
					const char *q = (const char *)st->body;
					named = router_plan(r->schema, &ctx, q,
							    strnlen(q, st->len));
					p = named;
					if (named)
						decide(u, named, all);
					if (named && named->route == ROUTER_BIND)
						u->writes |= named->writes;
				}
			}
			if (p && p->merge && (p->merge->limit_param || p->merge->offset_param)
			    && bind_limits(r, p, body, total - PROTO_HEADER_LEN, err, errlen)
				    != 0) {
				router_plan_free(named);
				return -1;
			}
			if (p && p->route == ROUTER_BIND) {
				uint64_t m = 0;
				bool had_split = r->split_rows != NULL;
				if (bind_shards(r, p, body, total - PROTO_HEADER_LEN, &m, err,
						errlen)
				    != 0) {
					router_plan_free(named);
					return -1;
				}
				u->shards |= m;
				if (r->split_rows && !had_split) {
					/* a multi-row INSERT whose rows go to several shards:
					 * each gets its rows (relay/fanout.c) */
					if (u->split) {
						router_plan_free(named);
						snprintf(err, errlen,
							 "0A000: one batch may split one multi-row INSERT "
							 "across shards: send a Sync after each");
						return -1;
					}
					u->split = true;
					u->fan = true;
					r->split_plan = named; /* NULL: the unit's own Parse */
					named = NULL;
				}
			}
			if (named && !u->plan) {
				u->plan =
					named; /* a Bind alone: its statement's plan is the unit's */
				named = NULL;
			}
			router_plan_free(named);
		}
		pos += total;
	}
	if (u->bind && u->shards == 0)
		u->any = true; /* a Parse alone: no rows touched yet */
	return 0;
}

/* ---- transactions --------------------------------------------------------- */

/* The shards the open transaction runs on. */
uint64_t route_tx_shards(const struct relay_link *l)
{
	uint64_t m = 0;
	for (const struct relay_leg *leg = l->legs; leg; leg = leg->next)
		if (leg->tx_status != 'I' && leg->shard >= 0)
			m |= UINT64_C(1) << leg->shard;
	return m;
}

/* ---- the pump --------------------------------------------------------------- */

/* Takes a server granted for the shard the router waits on. */
static void adopt_new_legs(struct relay_link *l)
{
	struct relay_router *r = l->router;
	for (struct relay_leg *leg = l->legs; leg; leg = leg->next)
		if (leg->shard < 0) {
			leg->shard = r->waiting_shard;
			r->state = ROUTE_IDLE;
		}
}

/* Every shard of `want` has a leg, each past its hidden queries; else asks
 * the owner for the first missing one (false). */
static bool legs_ready(struct relay_link *l, uint64_t want)
{
	struct relay_router *r = l->router;
	for (int i = 0; i < r->schema->n_shards; i++) {
		if (!(want & (UINT64_C(1) << i)))
			continue;
		struct relay_leg *leg = route_leg_of(l, i);
		if (!leg) {
			r->state = ROUTE_WAIT_LEG;
			r->waiting_shard = i;
			l->ops->need(l, i);
			return false;
		}
		if (leg->hidden_ready > 0 || conn_send_busy(&leg->server->c)) {
			r->state = ROUTE_RESUME; /* pumped again when that is answered */
			return false;
		}
	}
	return true;
}

/* The next shard for a statement that may run on any. */
static int any_shard(struct relay_link *l)
{
	struct relay_router *r = l->router;
	uint64_t tx = route_tx_shards(l);
	for (int i = 0; i < r->schema->n_shards; i++)
		if (tx & (UINT64_C(1) << i))
			return i;
	if (l->legs && l->legs->shard >= 0)
		return l->legs->shard;
	return (int)(r->rr++ % (unsigned)r->schema->n_shards);
}

/* Drops the unit from the client's rx (PgCrab answered it). */
static void consume_unit(struct relay_link *l, uint32_t len)
{
	l->client->rx_start += len;
	l->client->scan_pos = l->client->rx_start;
}

/* A unit on one shard: the leg joins the transaction first if it must,
 * then the unit passes through untouched. */
static void start_single(struct relay_link *l, int shard, int n_msgs)
{
	struct relay_router *r = l->router;
	struct relay_leg *leg = route_leg_of(l, shard);
	if (r->preamble && leg->tx_status == 'I') {
		if (relay_send_hidden(leg, RELAY_HIDDEN_BEGIN, r->preamble) != 0) {
			relay_leg_lost(leg, "cannot send BEGIN");
			return;
		}
		r->state = ROUTE_RESUME; /* routed again once it is answered */
		r->resume_tx = false;
		return;
	}
	l->to = leg;
	l->unit_msgs = n_msgs;
	r->state = ROUTE_SINGLE;
	relay_pump_leg(l);
}

static bool unit_done_single(struct relay_link *l)
{
	struct relay_leg *leg = l->to;
	return !leg
		|| (l->unit_msgs == 0 && !leg->copy_in && !relay_leg_owes(leg)
		    && !conn_send_busy(l->client));
}

void route_answer_error(struct relay_link *l, const char *code, const char *msg)
{
	consume_unit(l, l->router->unit.len);
	answer(l, NULL, code, msg);
}

/* Plans the unit at rx_start and starts it, or answers it. */
static void route_next(struct relay_link *l)
{
	struct relay_router *r = l->router;
	struct conn *c = l->client;
	int n_msgs = 0;
	uint32_t len = 0;
	uint8_t first = 0;
	if (c->rx_start == c->rx_end) {
		if (!c->recv_armed && conn_arm_recv(c) != 0)
			l->ops->failed(l, "08P01", "message too large for the connection buffer");
		relay_settle(l);
		return;
	}
	int fr = frame_unit(c, (uint32_t)c->w->cfg->max_packet_size, &n_msgs, &len, &first);
	if (fr < 0) {
		l->ops->failed(l, "08P01", "invalid message length");
		return;
	}
	if (fr == 0) {
		if (!c->recv_armed && conn_arm_recv(c) != 0)
			l->ops->failed(l, "08P01", "message too large for the connection buffer");
		return;
	}
	if (first == 'X') {
		l->terminate = true;
		consume_unit(l, len);
		l->ops->finished(l);
		return;
	}
	if (first == 'd' || first == 'c' || first == 'f') {
		consume_unit(l, len); /* outside COPY PostgreSQL ignores them */
		route_next(l);
		return;
	}
	if (first == 'F' || (first == 'H' && n_msgs == 1)) {
		consume_unit(l, len);
		if (first == 'F')
			answer(l, NULL, "0A000",
			       "function calls are not supported in a sharded database");
		return;
	}
	char err[600];
	struct unit_route *u = &r->unit;
	unit_clear(r);
	if (plan_unit(l, u, n_msgs, err, sizeof(err)) != 0) {
		router_plan_free(u->plan);
		u->plan = NULL;
		consume_unit(l, len);
		char code[6] = "XX000";
		memcpy(code, err, 5);
		answer(l, NULL, code, err + 7);
		return;
	}
	r->plan = u->plan;
	u->plan = NULL;
	u->n_msgs = n_msgs;
	u->len = len;
	const struct router_plan *p = r->plan;
	char st = route_tx_status(l);
	if (st == 'I')
		r->tx_wrote = false;
	/* a failed transaction takes only its end */
	if (st == 'E'
	    && !(p && p->route == ROUTER_TX
		 && (p->tx == ROUTER_TX_ROLLBACK || p->tx == ROUTER_TX_COMMIT
		     || p->tx == ROUTER_TX_SAVEPOINT))) {
		consume_unit(l, len);
		answer(l, NULL, "25P02", aborted_msg);
		return;
	}
	if (p && (p->route == ROUTER_SET || p->route == ROUTER_TX) && !u->executes) {
		/* prepared or described, not run: PostgreSQL only parses it */
		route_answer_parse_only(l);
		return;
	}
	if (p && p->route == ROUTER_SET) {
		consume_unit(l, len);
		if (p->set_shard)
			r->ctx.shard = p->set_reset ? -1 : atoi(p->set_value);
		else {
			free(r->ctx_key);
			r->ctx_key = p->set_reset || !p->set_value ? NULL : strdup(p->set_value);
		}
		answer(l, p->set_reset ? "RESET" : "SET", NULL, NULL);
		return;
	}
	if (p && p->route == ROUTER_TX) {
		route_tx_unit(l, p, first);
		return;
	}
	route_data_unit(l);
}

/* A data statement (or a batch of them): to its shard, or fanned out. */
/* cross_shard_writes = error: a transaction that writes stays on one
 * shard (a second would need two-phase commit). True if refused. */
static bool refuse_cross_write(struct relay_link *l, uint64_t want)
{
	struct relay_router *r = l->router;
	if (!r->schema->refuse_cross_writes || r->state == ROUTE_RESUME)
		return false;
	bool in_tx = r->preamble || route_tx_shards(l);
	uint64_t tx = route_tx_shards(l);
	if (in_tx && r->unit.writes)
		r->tx_wrote = true;
	if (!in_tx || !r->tx_wrote || !tx || (want & ~tx) == 0)
		return false;
	char msg[200];
	snprintf(msg, sizeof(msg),
		 "this transaction writes on shard %d; reaching shard %d too would need two-phase "
		 "commit, which cross_shard_writes = error refuses",
		 __builtin_ctzll(tx), __builtin_ctzll(want & ~tx));
	route_answer_error(l, "0A000", msg);
	return true;
}

void route_data_unit(struct relay_link *l)
{
	struct relay_router *r = l->router;
	struct unit_route *u = &r->unit;
	uint64_t want = u->shards;
	if (u->any && want == 0)
		want = UINT64_C(1) << any_shard(l);
	int n = __builtin_popcountll(want);
	if (n == 0)
		want = UINT64_C(1) << any_shard(l), n = 1;
	if (refuse_cross_write(l, want))
		return;
	if (!legs_ready(l, want))
		return;
	if (n == 1 && !u->fan_force) {
		start_single(l, __builtin_ctzll(want), u->n_msgs);
		return;
	}
	route_fan_start(l, want);
}

void relay_route_pump(struct relay_link *l)
{
	struct relay_router *r = l->router;
	struct conn *c = l->client;
	if (c->closing)
		return;
	adopt_new_legs(l);
	switch (r->state) {
	case ROUTE_WAIT_LEG:
		return;
	case ROUTE_SINGLE:
		if (!unit_done_single(l)) {
			relay_pump_leg(l);
			if (l->to && l->to->link == l && !c->closing)
				relay_pump_replies(l->to);
			if (c->closing || !unit_done_single(l))
				return;
		}
		r->state = ROUTE_IDLE;
		unit_clear(r);
		break;
	case ROUTE_FAN:
		if (!route_fan_pump(l))
			return;
		r->state = ROUTE_IDLE;
		unit_clear(r);
		break;
	case ROUTE_RESUME:
		r->state = ROUTE_IDLE;
		if (r->resume_tx)
			route_tx_unit(l, r->plan, 'Q');
		else
			route_data_unit(l);
		return;
	case ROUTE_IDLE:
		break;
	}
	if (conn_send_busy(c))
		return; /* the next unit when the client has what came before */
	route_next(l);
}

void relay_route_server_recv(struct relay_leg *leg)
{
	route_fan_pump(leg->link);
}
