/* Per-worker pools of one shard's server connections, and the shard-wide
 * cap that lets workers share max_connections without locks. */
#include "pool/pool.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

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
}

int pool_worker_init(struct pool_worker *pw, struct worker *w, struct shard *shards, int n_shards,
		     int n_workers)
{
	pw->w = w;
	pw->shards = shards;
	pw->n_shards = n_shards;
	list_init(&pw->outbox);
	pw->pools = calloc((size_t)n_shards + 1, sizeof(*pw->pools));
	if (!pw->pools)
		return -1;
	for (int s = 0; s < n_shards; s++) {
		int min = shards[s].cfg->min_connections;
		int share = min / n_workers + (w->id < min % n_workers ? 1 : 0);
		pool_init(&pw->pools[s], &shards[s], pw, share);
	}
	return 0;
}

void pool_worker_free(struct pool_worker *pw)
{
	free(pw->pools);
	pw->pools = NULL;
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

static void set_starving(struct pool *p, bool on)
{
	int id = p->w->id;
	uint64_t bit = 1ull << (id % 64);
	_Atomic uint64_t *word = &p->shard->starving[id / 64];
	if (on) {
		uint64_t old = atomic_fetch_or(word, bit);
		if (!(old & bit))
			wake_others(p->w); /* whoever holds an idle server may give it */
	} else if (atomic_load_explicit(word, memory_order_relaxed) & bit) {
		atomic_fetch_and(word, ~bit);
	}
}

/* Claims another worker's starving mark; returns its id or -1. */
static int claim_starving(struct pool *p)
{
	struct runtime *rt = p->w->rt;
	if (rt->n_workers < 2)
		return -1;
	for (int k = 1; k < rt->n_workers; k++) {
		int id = (p->w->id + k) % rt->n_workers;
		uint64_t bit = 1ull << (id % 64);
		_Atomic uint64_t *word = &p->shard->starving[id / 64];
		if (!(atomic_load_explicit(word, memory_order_relaxed) & bit))
			continue;
		if (atomic_fetch_and(word, ~bit) & bit)
			return id;
	}
	return -1;
}

/* Hands the first waiter a server: it leaves the waiting list first, so the
 * callback may do anything, waiting again included. */
static void grant(struct pool *p, struct server *s)
{
	struct pool_waiter *wt = list_entry(p->waiting.next, struct pool_waiter, link);
	pool_cancel_wait(p, wt);
	server_set_state(s, SERVER_ACTIVE); /* the waiter links it or gives it back */
	wt->granted(wt, s);
}

static void dispatch(struct pool *p)
{
	while (!list_empty(&p->waiting) && !list_empty(&p->idle))
		grant(p, list_entry(p->idle.next, struct server, link));
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

void pool_grow(struct pool *p)
{
	int need = p->n_waiting - p->n_connecting;
	if (need <= 0) {
		set_starving(p, false);
		return;
	}
	if (p->w->now_ms < p->next_connect_ms)
		return; /* backing off after failures; the tick tries again */
	while (need > 0) {
		if (!shard_reserve(p->shard)) {
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

void pool_release(struct server *s)
{
	struct pool *p = s->pool;
	s->borrower = NULL;
	s->c.ops = &server_pool_ops;
	if (!list_empty(&p->waiting)) {
		int to = p->local_streak >= LOCAL_STREAK_MAX ? claim_starving(p) : -1;
		if (to < 0) {
			p->local_streak++;
			grant(p, s);
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
	struct pool *p = &pw->pools[s->shard->index];
	atomic_fetch_sub(&w->rt->in_transit, 1);
	w->live++;
	s->c.w = w;
	s->pool = p;
	list_init(&s->link);
	if (w->stopping) {
		server_close(s, "shutting down");
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
	 * would fail) instead of hanging until query_wait_timeout */
	if (p->n_servers == 0 && p->n_connecting == 0 && p->n_waiting > 0)
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
	while (p->n_servers < p->min_local && w->now_ms >= p->next_connect_ms
	       && shard_reserve(p->shard))
		server_connect(p);
	if (p->n_waiting > p->n_connecting)
		pool_grow(p);
	pool_offer_idle(p);
}

void pool_offer_idle(struct pool *p)
{
	/* an idle server nobody here needs goes to a worker starving at the cap */
	while (p->n_waiting == 0 && p->n_idle > 0) {
		int to = claim_starving(p);
		if (to < 0)
			return;
		server_donate(list_entry(p->idle.prev, struct server, link), to);
	}
}

void pool_fail_waiting(struct pool *p, const char *sqlstate, const char *why)
{
	char msg[512];
	snprintf(msg, sizeof(msg), "cannot log in to shard \"%s\": %s", p->shard->cfg->name, why);
	while (!list_empty(&p->waiting)) {
		struct pool_waiter *wt = list_entry(p->waiting.next, struct pool_waiter, link);
		pool_cancel_wait(p, wt);
		wt->failed(wt, sqlstate, msg);
	}
}

void pool_worker_start(struct pool_worker *pw)
{
	for (int i = 0; i < pw->n_shards; i++)
		pool_tick(&pw->pools[i]); /* warm-up: open min_connections now */
}

void pool_worker_tick(struct pool_worker *pw)
{
	for (int i = 0; i < pw->n_shards; i++)
		pool_tick(&pw->pools[i]);
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
		for (int i = 0; i < pw->n_shards; i++)
			pool_offer_idle(&pw->pools[i]);
		break;
	}
}

void pool_worker_on_msg_done(struct pool_worker *pw, unsigned kind, void *ptr, int res)
{
	if (kind == POOL_MSG_SERVER)
		server_on_donate_sent(ptr, res);
}

void pool_worker_close_all(struct pool_worker *pw)
{
	for (int i = 0; i < pw->n_shards; i++) {
		struct pool *p = &pw->pools[i];
		for (struct list *n = p->servers.next, *next; n != &p->servers; n = next) {
			next = n->next;
			server_close(list_entry(n, struct server, all), "shutting down");
		}
	}
}
