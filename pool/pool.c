/* Per-worker pools of one shard's server connections, and the shard-wide
 * cap that lets workers share max_connections without locks. */
#include "pool/pool.h"

#include <assert.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "auth/proof.h"
#include "core/conn.h"
#include "core/list.h"
#include "core/log.h"
#include "core/worker.h"
#include "pool/server.h"

#define BACKOFF_MIN_MS   100
#define BACKOFF_MAX_MS   5000
/* how many releases in a row may go to local waiters while another worker
 * starves at the cap before one is donated */
#define LOCAL_STREAK_MAX 2

void pool_init(struct pool *p, struct shard *shard, struct pool_worker *pw, int min_local)
{
	p->shard = shard;
	p->pw = pw;
	p->w = pw->w;
	p->min_local = min_local;
	list_init(&p->idle);
	list_init(&p->waiting);
	list_init(&p->servers);
	list_init(&p->role_link);
}

/* This worker's share of the shard's min_connections. */
static int min_share(const struct pool_worker *pw, const struct cfg_shard *c)
{
	/* min_connections warms up the shard's own user only: the roles of
	 * a shard without one are not known before their clients come */
	int n = pw->n_workers;
	int min = c->user && !c->removed ? c->min_connections : 0;
	return min / n + (pw->w->id < min % n ? 1 : 0);
}

int pool_worker_init(struct pool_worker *pw, struct worker *w, struct shard *shards, int n_shards,
		     int shard_cap, int n_workers)
{
	pw->w = w;
	pw->n_workers = n_workers;
	pw->shards = shards;
	pw->n_shards = n_shards;
	pw->shard_cap = shard_cap;
	list_init(&pw->outbox);
	list_init(&pw->role_list);
	pw->pools = calloc((size_t)shard_cap + 1, sizeof(*pw->pools));
	pw->paused = calloc((size_t)shard_cap + 1, sizeof(*pw->paused));
	pw->generation = calloc((size_t)shard_cap + 1, sizeof(*pw->generation));
	if (!pw->pools || !pw->paused || !pw->generation)
		return -1;
	for (int s = 0; s < n_shards; s++)
		pool_init(&pw->pools[s], &shards[s], pw, min_share(pw, shards[s].cfg));
	return 0;
}

static void fail_all(struct pool *p, const char *sqlstate, const char *msg)
{
	while (!list_empty(&p->waiting)) {
		struct pool_waiter *wt = list_entry(p->waiting.next, struct pool_waiter, link);
		pool_cancel_wait(p, wt);
		wt->failed(wt, sqlstate, msg);
	}
}

static void set_gone(struct pool *p, bool gone)
{
	bool was = p->gone;
	p->gone = gone;
	if (gone && !was) {
		char msg[256];
		snprintf(msg, sizeof(msg), "shard \"%s\" was removed from the configuration",
			 p->shard->name);
		fail_all(p, "08006", msg);
	}
}

void pool_worker_reconfigure(struct pool_worker *pw, const struct cfg *cfg)
{
	int n = cfg->n_shards < pw->shard_cap ? cfg->n_shards : pw->shard_cap;
	for (int s = 0; s < n; s++) {
		struct pool *p = &pw->pools[s];
		if (s >= pw->n_shards)
			pool_init(p, &pw->shards[s], pw, 0);
		p->min_local = min_share(pw, &cfg->shards[s]);
		set_gone(p, cfg->shards[s].removed);
	}
	pw->n_shards = n;
	for (struct list *l = pw->role_list.next; l != &pw->role_list; l = l->next) {
		struct pool *p = list_entry(l, struct pool, role_link);
		set_gone(p, pw->pools[p->shard->index].gone);
	}
}

void pool_worker_free(struct pool_worker *pw)
{
	struct list *n;
	while ((n = list_pop_head(&pw->role_list))) {
		struct pool *p = list_entry(n, struct pool, role_link);
		auth_proof_free(p->proof);
		free(p);
	}
	free(pw->role_pools);
	pw->role_pools = NULL;
	free(pw->pools);
	pw->pools = NULL;
	free(pw->paused);
	pw->paused = NULL;
	free(pw->generation);
	pw->generation = NULL;
}

struct pool *pool_for_role(struct pool_worker *pw, int shard, const char *user,
			   const struct auth_proof *proof)
{
	struct shard *sh = &pw->shards[shard];
	if (sh->cfg->user)
		return &pw->pools[shard];
	struct pool_role *role = pw->roles ? pool_role_get(pw->roles, user) : NULL;
	if (!role)
		return NULL;
	if (!pw->role_pools) {
		pw->role_pools = calloc((size_t)POOL_ROLES_MAX * (size_t)pw->shard_cap,
					sizeof(*pw->role_pools));
		if (!pw->role_pools)
			return NULL;
	}
	struct pool **slot = &pw->role_pools[role->index * pw->shard_cap + shard];
	if (!*slot) {
		struct pool *p = calloc(1, sizeof(*p));
		if (!p)
			return NULL;
		/* min_connections makes no sense for roles not known in advance */
		pool_init(p, sh, pw, 0);
		p->role = role;
		p->gone = pw->pools[shard].gone;
		list_add_tail(&pw->role_list, &p->role_link);
		*slot = p;
	}
	struct pool *p = *slot;
	if (proof && !auth_proof_same(p->proof, proof)) {
		struct auth_proof *copy = auth_proof_dup(proof);
		if (!copy)
			return NULL;
		auth_proof_free(p->proof);
		p->proof = copy;
	}
	return p;
}

/* Calls fn on every pool of the worker: the shards' own, then the roles'. */
static void each_pool(struct pool_worker *pw, void (*fn)(struct pool *p))
{
	for (int i = 0; i < pw->n_shards; i++)
		fn(&pw->pools[i]);
	for (struct list *n = pw->role_list.next, *next; n != &pw->role_list; n = next) {
		next = n->next;
		fn(list_entry(n, struct pool, role_link));
	}
}

static void wake_others(struct worker *w)
{
	for (int i = 0; i < w->rt->n_workers; i++)
		if (i != w->id)
			worker_post(w, &w->rt->workers[i], POOL_MSG_WAKE, NULL, 0);
}

bool shard_reserve(struct shard *sh)
{
	int v = atomic_load(&sh->open);
	while (v < sh->cfg->max_connections)
		if (atomic_compare_exchange_weak(&sh->open, &v, v + 1))
			return true;
	return false;
}

void shard_unreserve(struct shard *sh)
{
	atomic_fetch_sub(&sh->open, 1);
}

/* The marks of workers short of a server this pool could give: the
 * shard's for its own pool, the role's on that shard for a role pool (a
 * server of one role is never handed to another's clients). */
static _Atomic uint64_t *starving_words(struct pool *p)
{
	return p->role ? p->role->starving[p->shard->index] : p->shard->starving;
}

static void set_mark(_Atomic uint64_t *words, struct worker *w, bool on)
{
	uint64_t bit = 1ull << (w->id % 64);
	_Atomic uint64_t *word = &words[w->id / 64];
	if (on) {
		uint64_t old = atomic_fetch_or(word, bit);
		if (!(old & bit))
			wake_others(w); /* whoever holds an idle server may give it */
	} else if (atomic_load_explicit(word, memory_order_relaxed) & bit) {
		atomic_fetch_and(word, ~bit);
	}
}

static void set_starving(struct pool *p, bool on)
{
	set_mark(starving_words(p), p->w, on);
	/* a role pool at the shard's cap: the shard's mark asks other workers
	 * to close an idle server of another role to make room */
	if (p->role)
		set_mark(p->shard->starving, p->w, on && p->at_shard_cap);
}

/* Claims another worker's mark in words; returns its id or -1. */
static int claim_mark(struct pool *p, _Atomic uint64_t *words)
{
	struct runtime *rt = p->w->rt;
	if (rt->n_workers < 2)
		return -1;
	for (int k = 1; k < rt->n_workers; k++) {
		int id = (p->w->id + k) % rt->n_workers;
		uint64_t bit = 1ull << (id % 64);
		_Atomic uint64_t *word = &words[id / 64];
		if (!(atomic_load_explicit(word, memory_order_relaxed) & bit))
			continue;
		if (atomic_fetch_and(word, ~bit) & bit)
			return id;
	}
	return -1;
}

/* Claims a worker that waits for a server this pool could give. */
static int claim_starving(struct pool *p)
{
	return claim_mark(p, starving_words(p));
}

/* The waiter the pool serves next: the first, or while the shard is
 * paused the first whose transaction is already under way; NULL: none. */
static struct pool_waiter *next_waiter(struct pool *p)
{
	for (struct list *n = p->waiting.next; n != &p->waiting; n = n->next) {
		struct pool_waiter *wt = list_entry(n, struct pool_waiter, link);
		if (!pool_paused(p) || wt->in_transaction)
			return wt;
	}
	return NULL;
}

/* How many waiters the pool would open servers for. */
static int n_served(struct pool *p)
{
	if (!pool_paused(p))
		return p->n_waiting;
	int n = 0;
	for (struct list *l = p->waiting.next; l != &p->waiting; l = l->next)
		n += list_entry(l, struct pool_waiter, link)->in_transaction;
	return n;
}

/* Hands waiter wt a server: it leaves the waiting list first, so the
 * callback may do anything, waiting again included. */
static void grant(struct pool *p, struct pool_waiter *wt, struct server *s)
{
	/* a server logged in as one role never serves another role's client */
	assert(s->pool == p && s->role == p->role);
	pool_cancel_wait(p, wt);
	server_set_state(s, SERVER_ACTIVE); /* the waiter links it or gives it back */
	wt->granted(wt, s);
}

static void dispatch(struct pool *p)
{
	struct pool_waiter *wt;
	while (!list_empty(&p->idle) && (wt = next_waiter(p)))
		grant(p, wt, list_entry(p->idle.next, struct server, link));
}

void pool_wait(struct pool *p, struct pool_waiter *wt)
{
	if (list_linked(&wt->link))
		return;
	list_add_tail(&p->waiting, &wt->link);
	p->n_waiting++;
}

void pool_acquire(struct pool *p, struct pool_waiter *wt)
{
	pool_wait(p, wt);
	dispatch(p);
	pool_grow(p);
}

void pool_cancel_wait(struct pool *p, struct pool_waiter *wt)
{
	if (!list_linked(&wt->link))
		return;
	list_del(&wt->link);
	p->n_waiting--;
	if (p->n_waiting <= p->n_connecting)
		set_starving(p, false);
}

/* Closes this worker's least recently used idle server that no client
 * here waits for, among the pools match accepts; false if there is none. */
static bool evict_idle(struct pool *p, bool (*match)(const struct pool *p, const struct pool *q))
{
	struct server *victim = NULL;
	for (struct list *n = p->pw->role_list.next; n != &p->pw->role_list; n = n->next) {
		struct pool *q = list_entry(n, struct pool, role_link);
		if (q == p || q->n_idle == 0 || q->n_waiting > 0 || !match(p, q))
			continue;
		struct server *s = list_entry(q->idle.prev, struct server, link);
		if (!victim || s->c.since_ms < victim->c.since_ms)
			victim = s;
	}
	if (!victim)
		return false;
	server_close(victim, "making room for another role");
	return true;
}

static bool other_role_same_shard(const struct pool *p, const struct pool *q)
{
	return q->shard == p->shard;
}

static bool same_role_other_shard(const struct pool *p, const struct pool *q)
{
	return q->role == p->role;
}

/* Takes a unit of the shard's cap and, for a role pool, of the role's
 * (max_user_connections). At a cap an idle server here that nobody waits
 * for makes room, as PgBouncer evicts one: of another role on the same
 * shard, or of the same role on another shard. */
static bool pool_reserve(struct pool *p)
{
	for (int tries = 0; tries < 3; tries++) {
		if (!shard_reserve(p->shard)) {
			p->at_shard_cap = true;
			if (p->role && evict_idle(p, other_role_same_shard))
				continue;
			return false;
		}
		p->at_shard_cap = false;
		if (!p->role || pool_role_reserve(p->role, p->w->cfg->max_user_connections))
			return true;
		shard_unreserve(p->shard);
		if (!evict_idle(p, same_role_other_shard))
			return false;
	}
	return false;
}

void pool_grow(struct pool *p)
{
	int need = n_served(p) - p->n_connecting;
	if (need <= 0) {
		set_starving(p, false);
		return;
	}
	if (p->w->now_ms < p->next_connect_ms)
		return; /* backing off after failures; the tick tries again */
	while (need > 0) {
		if (!pool_reserve(p)) {
			set_starving(p, true);
			return;
		}
		server_connect(p);
		need--;
		if (p->w->now_ms < p->next_connect_ms)
			return; /* that attempt failed at once (no socket): back off */
	}
	set_starving(p, false);
}

static void grow_if_short(struct pool *p);

/* Closes a server that comes back to a pool that wants it no more. From
 * pool_server_ready it is still SERVER_LOGIN: made idle first, so that its
 * close does not count as a failed login. */
static void retire(struct server *s, const char *why)
{
	server_set_state(s, SERVER_IDLE);
	server_close(s, why);
}

void pool_release(struct server *s)
{
	struct pool *p = s->pool;
	s->borrower = NULL;
	s->c.ops = &server_pool_ops;
	if (s->generation < p->pw->generation[p->shard->index]) {
		retire(s, "RECONNECT: replaced by a new connection");
		grow_if_short(p);
		return;
	}
	if (pool_paused(p)) {
		/* only a transaction under way is served; the rest wait for RESUME */
		struct pool_waiter *wt = next_waiter(p);
		if (wt)
			grant(p, wt, s);
		else
			retire(s, "PAUSE: closed once free");
		return;
	}
	if (!list_empty(&p->waiting)) {
		int to = p->local_streak >= LOCAL_STREAK_MAX ? claim_starving(p) : -1;
		if (to < 0) {
			p->local_streak++;
			grant(p, list_entry(p->waiting.next, struct pool_waiter, link), s);
			return;
		}
		p->local_streak = 0;
		server_donate(s, to);
		return;
	}
	p->local_streak = 0;
	int to = claim_starving(p);
	if (to >= 0) {
		server_donate(s, to);
		return;
	}
	server_set_state(s, SERVER_IDLE);
	if (conn_arm_recv(&s->c) != 0)
		server_close(s, "receive buffer full");
}

void pool_adopt(struct pool_worker *pw, struct server *s)
{
	struct worker *w = pw->w;
	/* the same role's pool here (made now if this worker has none yet) */
	struct pool *p = s->role ? pool_for_role(pw, s->shard->index, s->role->name, NULL)
				 : &pw->pools[s->shard->index];
	atomic_fetch_sub(&w->rt->in_transit, 1);
	bool lost = !p; /* out of memory: it closes, counted in the shard's pool */
	if (lost)
		p = &pw->pools[s->shard->index];
	w->live++;
	s->c.w = w;
	s->pool = p;
	list_init(&s->link);
	if (w->stopping || lost) {
		server_close(s, lost ? "no pool for its role" : "shutting down");
		return;
	}
	server_set_state(s, SERVER_IDLE);
	pool_release(s);
	/* the donor cleared our starving mark; set it again if still short */
	if (p->n_waiting > p->n_connecting)
		pool_grow(p);
}

void pool_server_ready(struct server *s)
{
	struct pool *p = s->pool;
	struct shard *sh = s->shard;
	if (!atomic_load(&sh->params)) {
		struct param_blob *b = malloc(sizeof(*b) + s->params_len);
		if (b) {
			b->len = s->params_len;
			/* a server that reported no ParameterStatus has params NULL,
			 * which memcpy may not be given even for 0 bytes */
			if (s->params_len)
				memcpy(b->data, s->params, s->params_len);
			struct param_blob *none = NULL;
			if (!atomic_compare_exchange_strong(&sh->params, &none, b))
				free(b);
		}
	}
	if (p->backoff_ms)
		log_info("shard %s: connected again", sh->cfg->name);
	p->backoff_ms = 0;
	p->next_connect_ms = 0;
	pool_release(s);
}

void pool_server_gone(struct server *s, bool failed_login, const char *sqlstate, const char *why)
{
	if (failed_login)
		pool_connect_failed(s->pool, sqlstate, why);
}

void pool_connect_failed(struct pool *p, const char *sqlstate, const char *why)
{
	p->backoff_ms = p->backoff_ms ? p->backoff_ms * 2 : BACKOFF_MIN_MS;
	if (p->backoff_ms > BACKOFF_MAX_MS)
		p->backoff_ms = BACKOFF_MAX_MS;
	p->next_connect_ms = p->w->now_ms + p->backoff_ms;
	if (!sqlstate) {
		/* our own shortage (no fd), not the shard's: another worker may
		 * lend an idle server meanwhile */
		if (p->n_waiting > p->n_connecting)
			set_starving(p, true);
		return;
	}
	/* no server left here and none on the way: the shard is down or
	 * refusing us, so waiting clients are told now (as a direct connection
	 * would fail) instead of hanging until query_wait_timeout; a paused
	 * shard's clients wait for RESUME, not for a server */
	if (!pool_paused(p) && p->n_servers == 0 && p->n_connecting == 0 && p->n_waiting > 0)
		pool_fail_waiting(p, sqlstate, why);
}

void pool_tick(struct pool *p)
{
	struct worker *w = p->w;
	for (struct list *n = p->servers.next, *next; n != &p->servers; n = next) {
		next = n->next;
		server_tick(list_entry(n, struct server, all));
	}
	if (w->stopping)
		return;
	/* a removed shard's servers close as they come free; above a lowered
	 * max_connections, idle ones close one a tick */
	if (p->gone
	    || (p->n_idle > 0 && atomic_load(&p->shard->open) > p->shard->cfg->max_connections)) {
		while (p->n_idle > 0) {
			server_close(list_entry(p->idle.prev, struct server, link),
				     p->gone ? "its shard was removed from the configuration"
					     : "max_connections was lowered");
			if (!p->gone)
				break;
		}
		if (p->gone)
			return;
	}
	while (!pool_paused(p) && p->n_servers < p->min_local && w->now_ms >= p->next_connect_ms
	       && pool_reserve(p))
		server_connect(p);
	grow_if_short(p);
	pool_offer_idle(p);
}

void pool_offer_idle(struct pool *p)
{
	/* an idle server nobody here needs goes to a worker starving at the cap */
	while (p->n_waiting == 0 && p->n_idle > 0) {
		int to = claim_starving(p);
		if (to < 0)
			break;
		server_donate(list_entry(p->idle.prev, struct server, link), to);
	}
	/* a worker whose clients of another role wait at the shard's cap: an
	 * idle server of this role closes to make room, and that worker is
	 * told to try again */
	while (p->role && p->n_waiting == 0 && p->n_idle > 0) {
		int to = claim_mark(p, p->shard->starving);
		if (to < 0)
			break;
		server_close(list_entry(p->idle.prev, struct server, link),
			     "making room for another role");
		worker_post(p->w, &p->w->rt->workers[to], POOL_MSG_WAKE, NULL, 0);
	}
}

static void grow_if_short(struct pool *p)
{
	if (p->n_waiting > p->n_connecting)
		pool_grow(p);
}

/* Closes the pool's idle servers that pass drop. */
static void close_idle(struct pool *p, bool (*drop)(const struct server *s), const char *why)
{
	for (struct list *n = p->idle.next, *next; n != &p->idle; n = next) {
		next = n->next;
		struct server *s = list_entry(n, struct server, link);
		if (drop(s))
			server_close(s, why);
	}
}

static bool any_server(const struct server *s)
{
	return true;
}

static bool older(const struct server *s)
{
	return s->generation < s->pool->pw->generation[s->shard->index];
}

static void sync_pool(struct pool *p, bool was_paused)
{
	close_idle(p, older, "RECONNECT: replaced by a new connection");
	if (pool_paused(p)) {
		close_idle(p, any_server, "PAUSE: closed once free");
		set_starving(p, false); /* nothing here for anyone while paused */
		return;
	}
	if (was_paused)
		dispatch(p); /* RESUME: the held clients go on */
	grow_if_short(p);
}

void pool_worker_sync(struct pool_worker *pw)
{
	for (int i = 0; i < pw->n_shards; i++) {
		struct shard *sh = &pw->shards[i];
		bool was = pw->paused[i];
		pw->paused[i] = atomic_load(&sh->paused) != 0;
		pw->generation[i] = atomic_load(&sh->generation);
		if (sh->cfg->user)
			sync_pool(&pw->pools[i], was);
		for (struct list *n = pw->role_list.next, *next; n != &pw->role_list; n = next) {
			next = n->next;
			struct pool *p = list_entry(n, struct pool, role_link);
			if (p->shard == sh)
				sync_pool(p, was);
		}
	}
}

int pool_worker_servers(struct pool_worker *pw, int shard)
{
	int n = pw->pools[shard].n_servers;
	for (struct list *l = pw->role_list.next; l != &pw->role_list; l = l->next) {
		struct pool *p = list_entry(l, struct pool, role_link);
		if (p->shard->index == shard)
			n += p->n_servers;
	}
	return n;
}

void pool_fail_waiting(struct pool *p, const char *sqlstate, const char *why)
{
	char msg[512];
	snprintf(msg, sizeof(msg), "cannot log in to shard \"%s\": %s", p->shard->name, why);
	fail_all(p, sqlstate, msg);
}

void pool_worker_start(struct pool_worker *pw)
{
	each_pool(pw, pool_tick); /* warm-up: open min_connections now */
}

void pool_worker_tick(struct pool_worker *pw)
{
	each_pool(pw, pool_tick);
}

/* Donated servers leave only here, after every completion of the batch is
 * handled, so nothing on this thread touches them once the other worker may. */
void pool_worker_after_batch(struct pool_worker *pw)
{
	struct worker *w = pw->w;
	struct list *n;
	while ((n = list_pop_head(&pw->outbox))) {
		struct server *s = list_entry(n, struct server, link);
		if (s->c.refs != 0 || s->c.rx_start != s->c.rx_end) {
			server_close(s, "busy when donated");
			continue;
		}
		conn_rx_release(&s->c); /* our ring's buffer stays here */
		w->live--;              /* counted by the worker that adopts it */
		atomic_fetch_add(&w->rt->in_transit, 1);
		worker_post(w, &w->rt->workers[s->donate_to], POOL_MSG_SERVER, s, 0);
	}
}

void pool_worker_on_msg(struct pool_worker *pw, unsigned kind, void *ptr, int res)
{
	switch (kind) {
	case POOL_MSG_SERVER:
		pool_adopt(pw, ptr);
		break;
	case POOL_MSG_WAKE:
		each_pool(pw, pool_offer_idle);
		/* room may have been made at a cap for clients waiting here */
		each_pool(pw, grow_if_short);
		break;
	}
}

void pool_worker_on_msg_done(struct pool_worker *pw, unsigned kind, void *ptr, int res)
{
	if (kind == POOL_MSG_SERVER)
		server_on_donate_sent(ptr, res);
}

static void close_pool(struct pool *p)
{
	for (struct list *n = p->servers.next, *next; n != &p->servers; n = next) {
		next = n->next;
		server_close(list_entry(n, struct server, all), "shutting down");
	}
}

void pool_worker_close_all(struct pool_worker *pw)
{
	each_pool(pw, close_pool);
}
