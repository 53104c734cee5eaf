/* Client connections: after login (session/login.c), requests wait for a
 * server from the pool and go through the relay; the client's own timeouts
 * run on the worker's timer wheel. */
#include "session/client.h"

#include <errno.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <assert.h>

#include "auth/proof.h"
#include "auth/scram_server.h"
#include "core/log.h"
#include "core/net.h"
#include "core/worker.h"
#include "proto/proto.h"
#include "relay/prepared.h"
#include "session/admin.h"
#include "session/cancel.h"
#include "session/handover.h"
#include "session/session.h"
#include "stats/stats.h"

static const char *const state_names[] = {
	[CLIENT_STARTUP] = "startup",
	[CLIENT_AUTH] = "auth",
	[CLIENT_LOGIN_WAIT] = "login_wait",
	[CLIENT_LOGIN_CHECK] = "login_check",
	[CLIENT_IDLE] = "idle",
	[CLIENT_WAITING] = "waiting",
	[CLIENT_ACTIVE] = "active",
	[CLIENT_ADMIN] = "admin",
	[CLIENT_ADMIN_BUSY] = "admin_busy",
	[CLIENT_HANDOVER] = "handover",
	[CLIENT_CLOSING] = "closing",
};

const char *client_state_name(enum client_state s)
{
	return state_names[s];
}

static bool waits(enum client_state st)
{
	return st == CLIENT_LOGIN_WAIT || st == CLIENT_WAITING;
}

static bool logging_in(enum client_state st)
{
	return st == CLIENT_STARTUP || st == CLIENT_AUTH || st == CLIENT_LOGIN_WAIT
		|| st == CLIENT_LOGIN_CHECK;
}

_Static_assert(CLIENT_CLOSING < STATS_CLIENT_STATES, "stats: a gauge per client state");

/* Where the client's state is counted: its database (a shard, or a
 * sharded database after the shards), or the last slot before it has one. */
static int stats_slot_of(const struct client *cl)
{
	const struct session_worker *sw = cl->sw;
	if (cl->db)
		return sw->pools.shard_cap + (int)(cl->db - sw->dbs);
	if (cl->pool)
		return cl->pool->shard->index;
	return sw->pools.shard_cap + sw->n_dbs;
}

/* The state's gauges, and the wait for a server as it ends with one. */
static void count_state(struct client *cl, enum client_state old, enum client_state st)
{
	struct stats_worker *sw = &cl->c.w->stats;
	if (old == CLIENT_WAITING && st == CLIENT_ACTIVE)
		stats_hist_add(&stats_slot(sw, cl->pool->shard->index)->wait,
			       cl->c.w->now_us - cl->wait_start_us);
	stats_gauge_move(stats_slot(sw, cl->stats_slot)->clients, (int)old, -1);
	cl->stats_slot = stats_slot_of(cl);
	stats_gauge_move(stats_slot(sw, cl->stats_slot)->clients, -1, (int)st);
}

void client_stats_tick(struct session_worker *sw)
{
	struct stats_worker *st = &sw->w->stats;
	for (int i = 0; i < sw->pools.n_shards; i++) {
		struct pool *p = &sw->pools.pools[i];
		uint64_t us = 0;
		if (!list_empty(&p->waiting)) {
			struct client *cl = container_of(p->waiting.next, struct client, wait.link);
			us = sw->w->now_us - cl->wait_start_us;
		}
		if (STATS_GET(stats_slot(st, i)->maxwait_us) != us)
			STATS_SET(stats_slot(st, i)->maxwait_us, us);
	}
}

/* The deadline a state has, if its timeout is on: the timer fires then
 * (client_timer_fired), and costs nothing while it is off. */
static void arm_deadline(struct client *cl)
{
	struct worker *w = cl->c.w;
	const struct cfg *cfg = w->cfg;
	uint64_t ms = 0, from = w->now_ms;
	switch (cl->state) {
	case CLIENT_STARTUP:
	case CLIENT_AUTH:
		ms = cfg->client_login_timeout_ms; /* from the accept: both stages share it */
		from = cl->born_ms;
		break;
	case CLIENT_LOGIN_WAIT:
		ms = WORKER_TICK_MS; /* looks for the shard's parameters, which another
				      * worker's server may have published */
		break;
	case CLIENT_WAITING:
		ms = cfg->query_wait_timeout_ms;
		break;
	case CLIENT_IDLE:
		ms = cfg->client_idle_timeout_ms;
		break;
	case CLIENT_ACTIVE:
		ms = cfg->idle_transaction_timeout_ms;
		break;
	case CLIENT_ADMIN:
	case CLIENT_ADMIN_BUSY:
		break;
	case CLIENT_LOGIN_CHECK:
		ms = cfg->client_login_timeout_ms;
		from = cl->born_ms;
		break;
	case CLIENT_HANDOVER:
	case CLIENT_CLOSING:
		break;
	}
	if (ms)
		timer_arm(&w->timers, &cl->timer, from + ms);
	else
		timer_disarm(&cl->timer);
}

/* The one place a client's state changes; keeps the pool's waiting list,
 * the watch for a waiting client's close and the deadline in step. */
void client_set_state(struct client *cl, enum client_state st)
{
	bool was_waiting = waits(cl->state);
	if (was_waiting && !waits(st)) {
		pool_cancel_wait(cl->pool, &cl->wait);
		if (st != CLIENT_CLOSING)
			conn_cancel_poll(&cl->c); /* closing cancels it anyway */
	}
	log_debug("worker %d client %llu: %s -> %s", cl->c.w->id, (unsigned long long)cl->c.id,
		  state_names[cl->state], state_names[st]);
	enum client_state old = cl->state;
	cl->state = st;
	cl->c.since_ms = cl->c.w->now_ms;
	count_state(cl, old, st);
	if (old != st || st == CLIENT_IDLE)
		arm_deadline(cl);
	if (waits(st) && !was_waiting) {
		cl->wait_start_us = cl->c.w->now_us;
		pool_wait(cl->pool, &cl->wait);
	}
}

static bool linked(enum client_state st)
{
	return st == CLIENT_ACTIVE || st == CLIENT_LOGIN_CHECK;
}

/* ---- log_connections ---------------------------------------------------- */

void client_log_hello(struct client *cl, const char *user, const char *database)
{
	/* the peer's address costs a syscall: only for a line written */
	if (!cl->c.w->cfg->log_connections || !log_enabled(CFG_LOG_INFO))
		return;
	char peer[80];
	net_peer_text(cl->c.fd, peer, sizeof(peer));
	cl->log_bye = true;
	free(cl->peer_text);
	cl->peer_text = strdup(peer); /* NULL: asked of the socket at the end */
	log_info("worker %d client %llu: login attempt from %s: user \"%s\", database \"%s\"%s",
		 cl->c.w->id, (unsigned long long)cl->c.id, peer, user, database,
		 cl->c.tls ? " over TLS" : "");
}

/* The line that ends a logged client's life, once. */
static void log_bye(struct client *cl, const char *why)
{
	if (!cl->log_bye)
		return;
	cl->log_bye = false;
	if (!log_enabled(CFG_LOG_INFO))
		return;
	char asked[80];
	const char *peer = cl->peer_text;
	if (!peer) { /* no copy was made at login: ask the socket */
		net_peer_text(cl->c.fd, asked, sizeof(asked));
		peer = asked;
	}
	const char *user = cl->user ? cl->user : cl->login ? cl->login->user : "";
	const char *db = cl->db                   ? cl->db->cfg->name
		: cl->pool                        ? cl->pool->shard->cfg->name
		: cl->admin_role                  ? "pgcrab"
		: cl->login && cl->login->console ? "pgcrab"
		: cl->login                       ? cl->login->missing_db
						  : "";
	uint64_t age = cl->c.w->now_ms - cl->born_ms;
	log_info("worker %d client %llu: disconnected from %s (user \"%s\", database \"%s\") "
		 "after %llu.%03llu s: %s",
		 cl->c.w->id, (unsigned long long)cl->c.id, peer, user, db,
		 (unsigned long long)(age / 1000), (unsigned long long)(age % 1000), why);
}

void client_close_now(struct client *cl)
{
	client_close_why(cl, "connection closed");
}

void client_close_why(struct client *cl, const char *why)
{
	if (!cl->c.closing)
		log_bye(cl, why);
	if (linked(cl->state) || relay_linked(&cl->rl))
		relay_detach(&cl->rl);
	if (cl->state != CLIENT_CLOSING)
		client_set_state(cl, CLIENT_CLOSING);
	conn_close(&cl->c);
}

void client_fail(struct client *cl, const char *severity, const char *code, const char *fmt, ...)
{
	char msg[512];
	va_list ap;
	va_start(ap, fmt);
	vsnprintf(msg, sizeof(msg), fmt, ap);
	va_end(ap);
	client_fail_full(cl, severity, code, msg, NULL, NULL);
}

void client_fail_full(struct client *cl, const char *severity, const char *code, const char *msg,
		      const char *detail, const char *hint)
{
	if (cl->c.closing)
		return;
	log_debug("worker %d client %llu: %s %s %s", cl->c.w->id, (unsigned long long)cl->c.id,
		  severity, code, msg);
	if (cl->log_bye) {
		char why[600];
		snprintf(why, sizeof(why), "%s %s %s", severity, code, msg);
		log_bye(cl, why);
	}
	if (logging_in(cl->state)) /* refused before it logged in */
		STATS_INC(cl->c.w->stats.login_failures);
	bool mid_message = (linked(cl->state) || relay_linked(&cl->rl)) && relay_detach(&cl->rl);
	client_set_state(cl, CLIENT_CLOSING);
	if (mid_message) {
		/* an ErrorResponse now would be read as the rest of that message */
		conn_close(&cl->c);
		return;
	}
	uint8_t buf[CONN_TX_CAP];
	struct proto_writer wr = proto_writer_init(buf, sizeof(buf));
	proto_build_error_full(&wr, severity, code, msg, detail, hint);
	if (wr.overflow || conn_queue(&cl->c, wr.p, wr.len) != 0) {
		conn_close(&cl->c);
		return;
	}
	conn_flush_tx(&cl->c); /* or when the send in flight completes */
}

void client_queue(struct client *cl, const struct proto_writer *wr)
{
	if (wr->overflow || conn_queue(&cl->c, wr->p, wr->len) != 0) {
		client_close_now(cl);
		return;
	}
	conn_flush_tx(&cl->c);
}

void client_arm(struct client *cl)
{
	if (conn_arm_recv(&cl->c) != 0)
		client_fail(cl, "FATAL", "08P01", "message too large for the connection buffer");
}

/* ---- requests while idle --------------------------------------------- */

/* The first message of a request: a length within max_packet_size and a
 * type a frontend may send. Fails the client (08P01, as PostgreSQL) if not. */
static bool request_header_ok(struct client *cl)
{
	struct conn *c = &cl->c;
	uint8_t type;
	uint32_t total;
	if (proto_frame(c->rx + c->rx_start, c->rx_end - c->rx_start,
			(uint32_t)c->w->cfg->max_packet_size, &type, &total)
	    == PROTO_ERR) {
		client_fail(cl, "FATAL", "08P01", "invalid message length");
		return false;
	}
	if (!proto_frontend_type(type)) {
		client_fail(cl, "FATAL", "08P01", "invalid frontend message type %d", type);
		return false;
	}
	return true;
}

/* A client waiting for a server reads nothing; with cancel_on_client_exit
 * it is watched for closing, and one that leaves is dropped from the queue
 * with its request, which never ran, instead of holding its place and
 * running it for nobody once a server is free. */
static void watch_while_waiting(struct client *cl)
{
	if (cl->c.w->cfg->cancel_on_client_exit)
		conn_arm_poll(&cl->c);
}

/* Idle: the client sent something; a Terminate ends it, anything else needs
 * a server. Requests PgCrab answers itself are answered in a loop, however
 * many the client pipelined, each reply queued behind the last. */
static void client_request(struct client *cl)
{
	struct conn *c = &cl->c;
	for (;;) {
		if (c->rx_end - c->rx_start >= 1 && c->rx[c->rx_start] == 'X') {
			client_close_why(cl, "the client sent Terminate");
			return;
		}
		if (c->rx_end - c->rx_start < PROTO_HEADER_LEN) {
			client_arm(cl);
			return;
		}
		/* an upgrade's drain serves the request: closing the client now
		 * would fail it, closing it after its transaction does not */
		if (c->w->stopping
		    && !atomic_load_explicit(&c->w->rt->upgrading, memory_order_relaxed)
		    && !atomic_load_explicit(&c->w->rt->wait_for_clients, memory_order_relaxed)) {
			client_fail(cl, "FATAL", "57P01", "pgcrab is shutting down");
			return;
		}
		/* a broken header is refused now, not after waiting for a server */
		if (!request_header_ok(cl))
			return;
		if (cl->db) {
			/* a sharded database: the router picks the shards */
			client_set_state(cl, CLIENT_ACTIVE);
			relay_client_recv(&cl->rl);
			return;
		}
		/* only when no server is free: with one, the server checks the Parse */
		if (!prepared_enabled(c->w->cfg) || cl->pool->n_idle > 0)
			break;
		uint8_t buf[4096];
		struct proto_writer wr = proto_writer_init(buf, sizeof(buf));
		int r = prepared_answer_locally(c, &cl->stmts, &wr);
		if (r == PREP_LOCAL_NO)
			break;
		if (r == PREP_LOCAL_BAD) {
			client_fail(cl, "FATAL", "08P01", "invalid Parse message");
			return;
		}
		if (r != PREP_LOCAL_DONE) {
			client_fail(cl, "FATAL", "53200", "out of memory");
			return;
		}
		client_queue(cl, &wr);
		if (c->closing)
			return;
	}
	client_set_state(cl, CLIENT_WAITING);
	cl->wait.in_transaction = false; /* its transaction begins with this server */
	pool_acquire(cl->pool, &cl->wait);
	if (cl->state == CLIENT_WAITING && !c->closing) {
		conn_rx_shrink(c); /* no server was free: wait without a ring buffer */
		watch_while_waiting(cl);
	}
}

/* Bytes in rx, handled as the client's state wants them. */
static void handle_bytes(struct client *cl)
{
	switch (cl->state) {
	case CLIENT_STARTUP:
		login_on_startup(cl);
		break;
	case CLIENT_AUTH:
		login_on_password(cl);
		break;
	case CLIENT_IDLE:
		client_request(cl);
		break;
	case CLIENT_ACTIVE:
		relay_client_recv(&cl->rl);
		break;
	case CLIENT_ADMIN:
		admin_on_request(cl);
		break;
	case CLIENT_ADMIN_BUSY: /* keeps them until the command is answered */
	case CLIENT_LOGIN_WAIT: /* keeps them until the login completes */
	case CLIENT_LOGIN_CHECK:
	case CLIENT_WAITING: /* keeps them until a server comes */
	case CLIENT_HANDOVER:
	case CLIENT_CLOSING:
		break;
	}
}

void client_next(struct client *cl)
{
	struct conn *c = &cl->c;
	if (c->closing)
		return;
	if (c->rx_start == c->rx_end)
		client_arm(cl);
	else
		handle_bytes(cl);
}

void client_logged_in(struct client *cl)
{
	client_set_state(cl, CLIENT_IDLE); /* a LOGIN_WAIT client's watch ends too */
	STATS_INC(cl->c.w->stats.logins);
	STATS_INC(stats_slot(&cl->c.w->stats, cl->stats_slot)->logins);
}

/* ---- the pool and the relay tell the client ---------------------------------- */

void client_login_free(struct client_login *l)
{
	if (!l)
		return;
	if (l->authq)
		authq_cancel(l->authq); /* the answer is dropped when it comes */
	if (l->hash)
		hasher_cancel(l->hash); /* likewise */
	if (l->role.password) {
		explicit_bzero(l->role.password, strlen(l->role.password));
		free(l->role.password);
	}
	explicit_bzero(&l->role.secret, sizeof(l->role.secret));
	if (l->scram) {
		auth_scram_server_wipe(l->scram);
		free(l->scram);
	}
	free(l);
}

struct pool *client_pool(struct client *cl, int shard)
{
	return pool_for_role(&cl->sw->pools, shard, cl->user ? cl->user : "", cl->proof);
}

static void on_granted(struct pool_waiter *wt, struct server *s)
{
	struct client *cl = container_of(wt, struct client, wait);
	/* a server logged in as one role never serves another role's client */
	assert(!s->role || (cl->user && strcmp(s->role->name, cl->user) == 0));
	if (cl->state == CLIENT_LOGIN_WAIT && cl->check_settings) {
		/* the relay gives the server the client's settings, hidden */
		client_set_state(cl, CLIENT_LOGIN_CHECK);
		cl->rl.quiet = true;
		relay_attach(&cl->rl, s);
		return;
	}
	if (cl->state == CLIENT_LOGIN_WAIT) {
		/* the shard's parameters are published now that a server logged in */
		pool_release(s);
		login_finish(cl);
		return;
	}
	client_set_state(cl, CLIENT_ACTIVE);
	relay_attach(&cl->rl, s);
}

static void on_wait_failed(struct pool_waiter *wt, const char *sqlstate, const char *why)
{
	struct client *cl = container_of(wt, struct client, wait);
	client_fail(cl, "FATAL", sqlstate, "%s", why);
}

static struct client *client_of_link(struct relay_link *l)
{
	return container_of(l, struct client, rl);
}

static void log_not_handed_over(const struct client *cl, const char *why)
{
	log_info("worker %d client %llu: not handed over to the new process (%s): closed between "
		 "transactions",
		 cl->c.w->id, (unsigned long long)cl->c.id, why);
}

static void on_settled(struct relay_link *l)
{
	struct client *cl = client_of_link(l);
	if (cl->state == CLIENT_LOGIN_CHECK) {
		/* the server took the startup settings: the login goes on */
		l->quiet = false;
		login_settings_checked(cl);
		client_set_state(cl, CLIENT_IDLE);
		relay_release(l);
		login_finish(cl);
		return;
	}
	/* one writer: a plain load and store, no locked add per transaction */
	struct worker *w = cl->c.w;
	atomic_store_explicit(&w->n_transactions,
			      atomic_load_explicit(&w->n_transactions, memory_order_relaxed) + 1,
			      memory_order_relaxed);
	if (__builtin_expect(cl->pool->gone, 0)) {
		/* its shard was removed by a reload: the transaction is over */
		client_set_state(cl, CLIENT_IDLE);
		relay_release(l);
		client_fail(cl, "FATAL", "08006", "shard \"%s\" was removed from the configuration",
			    cl->pool->shard->name);
		return;
	}
	if (cl->c.w->cfg->pool_mode == CFG_POOL_SESSION || relay_pinned(l)) {
		/* the server is the client's until it leaves, or its state goes;
		 * an upgrade's drain closes it now, between transactions */
		if (w->stopping && atomic_load_explicit(&w->rt->upgrading, memory_order_relaxed))
			client_drain(cl, 0);
		return;
	}
	client_set_state(cl, CLIENT_IDLE);
	relay_release(l);
	if (cl->c.w->stopping) {
		/* an upgrade's drain hands it over now, or after the request it
		 * sent already; else it goes between transactions */
		const char *why = NULL;
		if (atomic_load_explicit(&w->rt->upgrading, memory_order_relaxed)
		    && handover_begin(cl, &why) != HANDOVER_NEVER) {
			if (cl->state == CLIENT_IDLE && !cl->c.recv_armed)
				client_next(cl);
			return;
		}
		if (why)
			log_not_handed_over(cl, why);
		client_fail(cl, "FATAL", "57P01", "pgcrab is shutting down");
		return;
	}
	/* a request that arrived while the link was ending (or was held while
	 * PgCrab asked the server about the session) */
	if (!cl->c.recv_armed)
		client_next(cl);
}

static void on_finished(struct relay_link *l)
{
	client_close_why(client_of_link(l), "the client sent Terminate");
}

static void on_lost(struct relay_link *l, const char *why, bool cut)
{
	struct client *cl = client_of_link(l);
	if (cut) {
		log_debug(
			"worker %d client %llu: server lost mid-message (%s): closing without a word",
			cl->c.w->id, (unsigned long long)cl->c.id, why);
		client_close_now(cl);
		return;
	}
	client_fail(cl, "FATAL", "08006", "server connection lost: %s", why);
}

static void on_link_failed(struct relay_link *l, const char *sqlstate, const char *msg)
{
	client_fail(client_of_link(l), "FATAL", sqlstate, "%s", msg);
}

/* A sharded database's router needs a server of one of its shards. */
static void on_need(struct relay_link *l, int shard)
{
	struct client *cl = client_of_link(l);
	cl->pool = client_pool(cl, cl->db->cfg->shards[shard]);
	if (!cl->pool) {
		client_fail(cl, "FATAL", "53300", "too many roles in use: no pool for role \"%s\"",
			    cl->user);
		return;
	}
	client_set_state(cl, CLIENT_WAITING);
	/* holding other shards' servers, it is in a transaction a PAUSE waits for */
	cl->wait.in_transaction = relay_linked(l);
	pool_acquire(cl->pool, &cl->wait);
}

static const struct relay_link_ops link_ops = {
	.settled = on_settled,
	.finished = on_finished,
	.lost = on_lost,
	.failed = on_link_failed,
	.need = on_need,
};

/* ---- the connection's completions ------------------------------------------ */

static void client_on_recv(struct conn *c, int res)
{
	struct client *cl = container_of_client(c);
	c->recv_armed = false;
	if (c->closing || cl->state == CLIENT_CLOSING)
		return;
	if (cl->state == CLIENT_HANDOVER) {
		handover_on_recv(cl, res);
		return;
	}
	if (res <= 0) {
		client_close_why(cl,
				 res == 0 ? "the client closed the connection"
					  : "receive from the client failed");
		return;
	}
	c->rx_end += (uint32_t)res;
	handle_bytes(cl);
}

static void client_on_sent(struct conn *c, enum send_src src, struct conn *owner, int err)
{
	struct client *cl = container_of_client(c);
	if (err) {
		/* the client went away, perhaps mid-result: its server is cleaned
		 * up (what it still runs cancelled), the rest of the result dropped */
		if (!c->closing)
			client_close_why(cl, "send to the client failed");
		return;
	}
	if (c->tx_len > 0) {
		conn_flush_tx(c);
		return;
	}
	if (cl->state == CLIENT_ACTIVE && !c->closing)
		relay_client_sent(&cl->rl);
	if (cl->state == CLIENT_CLOSING && !c->closing)
		conn_close(c);
}

static void client_on_poll(struct conn *c, int res)
{
	struct client *cl = container_of_client(c);
	/* res: the poll's events, or -ECANCELED once the wait is over */
	if (res <= 0 || c->closing)
		return;
	if (waits(cl->state)) {
		log_debug("worker %d client %llu: left while waiting for a server", c->w->id,
			  (unsigned long long)c->id);
		client_close_why(cl, "the client left while waiting for a server");
	}
}

static void client_on_free(struct conn *c)
{
	struct client *cl = container_of_client(c);
	if (relay_linked(&cl->rl)) {
		/* every way out detaches first: a server still linked here would
		 * be lost with it */
		log_error("worker %d client %llu: freed with a server linked; detaching it",
			  c->w->id, (unsigned long long)c->id);
		relay_detach(&cl->rl);
	}
	timer_disarm(&cl->timer);
	admin_client_gone(cl);
	list_del(&cl->wait.link);
	list_del(&cl->link);
	params_clear(&cl->want);
	params_clear(&cl->startup);
	relay_link_clear(&cl->rl);
	stmt_names_clear(&cl->stmts);
	client_login_free(cl->login);
	free(cl->user);
	free(cl->peer_text);
	auth_proof_free(cl->proof);
	stats_gauge_move(stats_slot(&c->w->stats, cl->stats_slot)->clients, (int)cl->state, -1);
	atomic_fetch_sub(&c->w->n_clients, 1);
	free(cl);
}

static const struct conn_ops client_ops = {
	.on_recv = client_on_recv,
	.on_sent = client_on_sent,
	.on_poll = client_on_poll,
	.on_free = client_on_free,
};

/* ---- timeouts and shutdown ------------------------------------------------- */

/* Waited query_wait_timeout for a server: as PgBouncer, a client held by
 * PAUSE is no exception, and is told. */
static void fail_wait_timeout(struct client *cl)
{
	client_fail(cl, "FATAL", "08006",
		    "query_wait_timeout: no server connection for shard \"%s\" within %llu ms%s",
		    cl->pool->shard->cfg->name,
		    (unsigned long long)cl->c.w->cfg->query_wait_timeout_ms,
		    pool_paused(cl->pool) ? " (the shard is paused: PAUSE)" : "");
}

static void client_timer_fired(struct timer *t)
{
	struct client *cl = container_of(t, struct client, timer);
	struct worker *w = cl->c.w;
	const struct cfg *cfg = w->cfg;
	if (cl->c.closing)
		return;
	switch (cl->state) {
	case CLIENT_STARTUP:
	case CLIENT_AUTH:
		client_fail(cl, "FATAL", "08P01", "client_login_timeout: login took too long");
		break;
	case CLIENT_LOGIN_CHECK:
		client_fail(cl, "FATAL", "08P01", "client_login_timeout: login took too long");
		break;
	case CLIENT_LOGIN_WAIT:
		if (atomic_load(&cl->pool->shard->params) && !cl->check_settings) {
			/* another worker's server logged in first */
			login_finish(cl);
			break;
		}
		if (cfg->query_wait_timeout_ms
		    && w->now_ms - cl->c.since_ms >= cfg->query_wait_timeout_ms)
			fail_wait_timeout(cl);
		else
			timer_arm(&w->timers, &cl->timer, w->now_ms + WORKER_TICK_MS);
		break;
	case CLIENT_WAITING:
		fail_wait_timeout(cl);
		break;
	case CLIENT_IDLE:
		client_fail(cl, "FATAL", "57P05",
			    "terminating connection due to client_idle_timeout");
		break;
	case CLIENT_ACTIVE: {
		/* idle in transaction: nothing owed, nothing moving for that long;
		 * activity moves the deadline, looked at only when it comes */
		uint64_t limit = cfg->idle_transaction_timeout_ms;
		if (!limit)
			break;
		uint64_t quiet = w->now_ms - cl->c.io_ms;
		if (quiet >= limit && relay_idle_in_transaction(&cl->rl))
			client_fail(cl, "FATAL", "25P03",
				    "terminating connection due to idle_transaction_timeout");
		else
			timer_arm(&w->timers, &cl->timer,
				  (quiet >= limit ? w->now_ms : cl->c.io_ms) + limit);
		break;
	}
	case CLIENT_ADMIN:
	case CLIENT_ADMIN_BUSY:
	case CLIENT_HANDOVER:
	case CLIENT_CLOSING:
		break;
	}
}

void client_shutdown(struct client *cl, bool cut)
{
	if (cl->c.closing)
		return;
	if (cut || cl->state == CLIENT_STARTUP || cl->state == CLIENT_AUTH
	    || cl->state == CLIENT_IDLE || cl->state == CLIENT_ADMIN)
		client_fail(cl, "FATAL", "57P01", "pgcrab is shutting down");
}

void client_drain(struct client *cl, uint64_t grace_ms)
{
	struct conn *c = &cl->c;
	if (c->closing)
		return;
	if (cl->state == CLIENT_ACTIVE && relay_between_transactions(&cl->rl)
	    && c->rx_start == c->rx_end && c->tx_len == 0 && !conn_send_busy(c)) {
		/* its server cannot go with it: between transactions it goes */
		log_not_handed_over(cl,
				    c->w->cfg->pool_mode == CFG_POOL_SESSION
					    ? "it holds a server: session mode"
					    : "it holds a server: its session state pins it");
		client_fail(cl, "FATAL", "57P01", "pgcrab is shutting down");
		return;
	}
	const char *why = NULL;
	if (cl->state != CLIENT_IDLE || handover_begin(cl, &why) != HANDOVER_NEVER)
		return;
	/* the grace: a client that just logged in may be about to send its
	 * first request (pgbench -C), which it would lose */
	if (c->w->now_ms - c->since_ms >= grace_ms) {
		log_not_handed_over(cl, why);
		client_fail(cl, "FATAL", "57P01", "pgcrab is shutting down");
	}
}

struct client *client_new(struct session_worker *sw, int fd)
{
	struct worker *w = sw->w;
	struct client *cl = calloc(1, sizeof(*cl));
	if (!cl) {
		close(fd);
		atomic_fetch_sub(&w->n_clients, 1);
		return NULL;
	}
	conn_init(&cl->c, &client_ops, w, fd);
	cl->sw = sw;
	cl->state = CLIENT_STARTUP;
	cl->born_ms = w->now_ms;
	cl->stats_slot = stats_slot_of(cl);
	stats_gauge_move(stats_slot(&w->stats, cl->stats_slot)->clients, -1, CLIENT_STARTUP);
	cl->wait.granted = on_granted;
	cl->wait.failed = on_wait_failed;
	list_init(&cl->wait.link);
	relay_link_init(&cl->rl, &cl->c, &link_ops, &cl->want, &cl->startup, &cl->stmts);
	timer_init(&cl->timer, client_timer_fired);
	list_add_tail(&sw->clients, &cl->link);
	arm_deadline(cl);
	return cl;
}

void client_accept(struct session_worker *sw, int fd)
{
	struct worker *w = sw->w;
	struct client *cl = client_new(sw, fd);
	if (!cl)
		return;
	if (w->stopping && !atomic_load_explicit(&w->rt->upgrading, memory_order_relaxed)) {
		client_fail(cl, "FATAL", "57P01", "pgcrab is shutting down");
		return;
	}
	if (conn_arm_recv(&cl->c) != 0)
		client_close_now(cl);
}
