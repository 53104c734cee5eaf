/* The session layer in the runtime: what each worker does with accepted
 * sockets, messages, ticks and shutdown, and how the runtime is built. */
#include "session/session.h"

#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/random.h>
#include <unistd.h>

#include "core/log.h"
#include "core/net.h"
#include "query/classify.h"
#include "session/admin.h"
#include "session/cancel.h"
#include "relay/relay.h"
#include "session/client.h"
#include "session/handover.h"
#include "stats/stats.h"

static void on_start(struct worker *w)
{
	pool_worker_start(&session_worker_of(w)->pools);
}

static void on_new_conn(struct worker *w, int fd)
{
	client_accept(session_worker_of(w), fd);
}

static void on_msg(struct worker *w, unsigned kind, void *ptr, int res)
{
	struct session_worker *sw = session_worker_of(w);
	if (kind == SESSION_MSG_CANCEL)
		cancel_deliver(sw, (int32_t)(uint32_t)(uintptr_t)ptr, res);
	else if (kind == SESSION_MSG_ADMIN_ASK || kind == SESSION_MSG_ADMIN_DONE)
		admin_on_msg(sw, kind, ptr, res);
	else if (kind == SESSION_MSG_ADOPT)
		handover_adopt(sw, ptr);
	else if (kind == SESSION_MSG_AUTHQ)
		authq_deliver(&sw->authq_cache, w->now_ms, w->cfg->auth_query_ttl_ms, ptr);
	else if (kind == SESSION_MSG_HASHED)
		hasher_deliver(&sw->plain_cache, ptr);
	else
		pool_worker_on_msg(&sw->pools, kind, ptr, res);
}

static void on_msg_done(struct worker *w, unsigned kind, void *ptr, int res)
{
	if (kind == SESSION_MSG_ADMIN_ASK || kind == SESSION_MSG_ADMIN_DONE)
		admin_on_msg_done(session_worker_of(w), kind, ptr, res);
	else
		pool_worker_on_msg_done(&session_worker_of(w)->pools, kind, ptr, res);
}

/* An online upgrade's drain leaves an idle client this long to send the
 * request it connected for (pgbench -C, a driver's first query) */
#define UPGRADE_IDLE_GRACE_MS 1000

static void each_client_shutdown(struct session_worker *sw, bool cut, bool upgrade)
{
	for (struct list *n = sw->clients.next, *next; n != &sw->clients; n = next) {
		next = n->next;
		struct client *cl = list_entry(n, struct client, link);
		if (upgrade && !cut)
			client_drain(cl, UPGRADE_IDLE_GRACE_MS);
		else
			client_shutdown(cl, cut);
	}
}

/* Shutdown: clients between transactions go at once (after an upgrade,
 * once idle for a moment), the others when their transaction ends or at
 * shutdown_timeout; then the servers. */
static void shutdown_tick(struct session_worker *sw)
{
	struct worker *w = sw->w;
	if (!atomic_load_explicit(&w->rt->wait_for_clients, memory_order_relaxed))
		each_client_shutdown(sw, w->now_ms >= w->stop_deadline_ms,
				     atomic_load_explicit(&w->rt->upgrading, memory_order_relaxed));
	if (list_empty(&sw->clients)) {
		pool_worker_close_all(&sw->pools);
		worker_finish(w);
	}
}

static void on_tick(struct worker *w)
{
	struct session_worker *sw = session_worker_of(w);
	pool_worker_tick(&sw->pools);
	client_stats_tick(sw);
	admin_pause_tick(sw);
	if (w->id == 0)
		stats_period_tick(w->rt->owner, w->rt, w->now_ms, w->cfg->stats_period_ms);
	if (w->stopping)
		shutdown_tick(sw);
}

static void after_batch(struct worker *w)
{
	pool_worker_after_batch(&session_worker_of(w)->pools);
}

static void on_stop(struct worker *w)
{
	shutdown_tick(session_worker_of(w));
}

/* A removed shard's clients: those between transactions (or logging in)
 * go now, those in one when it ends (client.c on_settled); the pools
 * failed its waiters. */
static void on_config(struct worker *w, struct cfg *old)
{
	(void)old;
	struct session_worker *sw = session_worker_of(w);
	pool_worker_reconfigure(&sw->pools, w->cfg);
	for (struct list *n = sw->clients.next, *next; n != &sw->clients; n = next) {
		next = n->next;
		struct client *cl = list_entry(n, struct client, link);
		if (cl->c.closing || !cl->pool || cl->db || !cl->pool->gone)
			continue;
		if (cl->state == CLIENT_IDLE || cl->state == CLIENT_AUTH
		    || cl->state == CLIENT_STARTUP)
			client_fail(cl, "FATAL", "08006",
				    "shard \"%s\" was removed from the configuration",
				    cl->pool->shard->name);
	}
}

const char *session_slot_name(const struct session *ss, int i)
{
	if (i < ss->shard_cap)
		return i < ss->n_shards ? ss->shards[i].name : NULL;
	return i - ss->shard_cap < ss->n_dbs ? ss->dbs[i - ss->shard_cap].cfg->name : NULL;
}

static void on_exit_thread(struct worker *w)
{
	relay_thread_exit();
	query_thread_exit();      /* the statements this thread classified */
	router_plan_cache_free(); /* ...and planned for sharded databases */
}

const struct worker_hooks session_hooks = {
	.on_start = on_start,
	.on_new_conn = on_new_conn,
	.on_msg = on_msg,
	.on_msg_done = on_msg_done,
	.on_tick = on_tick,
	.after_batch = after_batch,
	.on_stop = on_stop,
	.on_config = on_config,
	.on_exit = on_exit_thread,
	.on_sendmsg = handover_sent,
};

/* Each sharded database's schema for its router, from the config. */
static int build_dbs(struct session *ss, const struct cfg *cfg)
{
	ss->n_dbs = cfg->n_databases;
	ss->dbs = calloc((size_t)cfg->n_databases + 1, sizeof(*ss->dbs));
	if (!ss->dbs)
		return -1;
	for (int d = 0; d < cfg->n_databases; d++) {
		struct session_db *db = &ss->dbs[d];
		db->cfg = &cfg->databases[d];
		db->tables = calloc((size_t)cfg->n_sharded_tables + 1, sizeof(*db->tables));
		if (!db->tables)
			return -1;
		int n = 0;
		for (int t = 0; t < cfg->n_sharded_tables; t++) {
			const struct cfg_sharded_table *ct = &cfg->sharded_tables[t];
			if (ct->database != d)
				continue;
			struct router_table *rt = &db->tables[n++];
			rt->schema = ct->schema;
			rt->name = ct->name;
			rt->n_cols = ct->n_cols < ROUTER_MAX_KEY_COLS ? ct->n_cols
								      : ROUTER_MAX_KEY_COLS;
			for (int c = 0; c < rt->n_cols; c++) {
				rt->cols[c] = ct->cols[c];
				rt->types[c] = (enum router_type)ct->types[c];
			}
		}
		db->schema.n_shards = db->cfg->n_shards;
		db->schema.n_tables = n;
		db->schema.tables = db->tables;
		db->schema.refuse_cross_reads = db->cfg->cross_reads_error;
		db->schema.refuse_cross_writes = db->cfg->cross_writes_error;
	}
	return 0;
}

int session_build(struct runtime *rt, struct session *ss, struct cfg *cfg, int n_workers, char *err,
		  size_t errlen)
{
	memset(ss, 0, sizeof(*ss));
	ss->cfg = cfg_ref(cfg);
	ss->live = cfg_ref(cfg);
	ss->n_shards = cfg->n_shards;
	ss->shard_cap = cfg->n_shards + SESSION_SPARE_SHARDS;
	ss->shards = calloc((size_t)ss->shard_cap, sizeof(*ss->shards));
	ss->workers = calloc((size_t)n_workers, sizeof(*ss->workers));
	ss->roles = pool_roles_new(ss->shard_cap);
	rt->workers = calloc((size_t)n_workers, sizeof(*rt->workers));
	rt->n_workers = n_workers;
	rt->cfg = cfg_ref(cfg);
	rt->max_client_conn = cfg->max_client_conn;
	rt->owner = ss;
	if (!ss->shards || !ss->workers || !rt->workers || !ss->roles) {
		snprintf(err, errlen, "out of memory");
		return -1;
	}
	for (int i = 0; i < cfg->n_shards; i++) {
		struct shard *sh = &ss->shards[i];
		char why[256];
		sh->index = i;
		sh->cfg = &cfg->shards[i];
		sh->name = cfg->shards[i].name; /* ss->cfg's: held for life */
		if (net_resolve(sh->cfg->host, sh->cfg->port, false, &sh->addr, &sh->addrlen, why,
				sizeof(why))
		    != 0) {
			snprintf(err, errlen, "shard %s: %s", sh->cfg->name, why);
			return -1;
		}
	}
	if (build_dbs(ss, cfg) != 0
	    || stats_period_init(&ss->period, ss->shard_cap + ss->n_dbs + 1) != 0) {
		snprintf(err, errlen, "out of memory");
		return -1;
	}
	ss->authq = authq_start(cfg, err, errlen);
	if (!ss->authq && cfg->auth_user[0])
		return -1;
	if (!(ss->hasher = hasher_start(err, errlen)))
		return -1;
	for (int i = 0; i < n_workers; i++) {
		struct worker *w = &rt->workers[i];
		struct session_worker *sw = &ss->workers[i];
		w->id = i;
		w->rt = rt;
		w->hooks = &session_hooks;
		w->owner = sw;
		w->cfg = cfg_ref(cfg);
		sw->w = w;
		sw->dbs = ss->dbs;
		sw->n_dbs = ss->n_dbs;
		list_init(&sw->clients);
		list_init(&sw->pause_waits);
		if (getentropy(&sw->next_pid, sizeof(sw->next_pid)) != 0)
			sw->next_pid = (uint32_t)getpid() * 7919u + (uint32_t)i;
		/* stats slots: the shards, the sharded databases, no database yet */
		if (pool_worker_init(&sw->pools, w, ss->shards, ss->n_shards, ss->shard_cap,
				     n_workers)
			    != 0
		    || stats_worker_init(&w->stats, ss->shard_cap + ss->n_dbs + 1) != 0) {
			snprintf(err, errlen, "out of memory");
			return -1;
		}
		sw->pools.roles = ss->roles;
		sw->authq = ss->authq;
		authq_cache_init(&sw->authq_cache);
		sw->hasher = ss->hasher;
		auth_plain_cache_init(&sw->plain_cache);
	}
	return 0;
}

void session_free(struct runtime *rt, struct session *ss)
{
	hasher_stop(ss->hasher); /* the workers have ended: nobody asks any more */
	authq_stop(ss->authq);
	for (int i = 0; ss->workers && i < rt->n_workers; i++) {
		authq_cache_clear(&ss->workers[i].authq_cache);
		auth_plain_cache_clear(&ss->workers[i].plain_cache);
		pool_worker_free(&ss->workers[i].pools);
		if (rt->workers) {
			cfg_unref(rt->workers[i].cfg); /* NULL once the worker ran */
			stats_worker_free(&rt->workers[i].stats);
		}
	}
	for (int i = 0; i < ss->n_shards; i++) {
		free(atomic_load(&ss->shards[i].params));
		if (i >= ss->cfg->n_shards) /* a reload's: its own copy */
			free((char *)ss->shards[i].name);
	}
	for (int i = 0; i < ss->n_dbs; i++)
		free(ss->dbs[i].tables);
	free(ss->dbs);
	free(ss->shards);
	stats_period_free(&ss->period);
	pool_roles_free(ss->roles);
	free(ss->workers);
	free(rt->workers);
	cfg_unref(rt->cfg);
	cfg_unref(ss->live);
	cfg_unref(ss->cfg);
	memset(ss, 0, sizeof(*ss));
	rt->workers = NULL;
	rt->cfg = NULL;
}
