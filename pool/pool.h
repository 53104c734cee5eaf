/* Per-worker, per-shard pools of server connections. A shard-wide atomic
 * counter caps connections across workers; a worker whose clients wait at
 * the cap marks itself starving and other workers donate idle servers.
 * Waiters are told of a server, or of a failure, through callbacks they
 * carry: the pool knows nothing of what waits. */
#ifndef PGCRAB_POOL_H
#define PGCRAB_POOL_H

#include <stdbool.h>
#include <stdint.h>

#include "auth/auth.h"
#include "core/list.h"
#include "core/worker.h"
#include "pool/role.h"
#include "pool/server.h"
#include "pool/shard.h"

struct auth_proof;

/* Something that needs a server: embedded in its owner. */
struct pool_waiter {
	struct list link; /* pool->waiting while it waits */
	/* a server is its now (state SERVER_IDLE, not on any list): link it or
	 * give it back with pool_release */
	void (*granted)(struct pool_waiter *wt, struct server *s);
	/* no server is coming (the shard refuses PgCrab, or is down) */
	void (*failed)(struct pool_waiter *wt, const char *sqlstate, const char *why);
	/* its owner is in a transaction on other servers already (a sharded
	 * database's client): a paused shard serves it all the same, so that
	 * the transaction PAUSE waits for can finish */
	bool in_transaction;
};

/* Message kinds between workers' pools (worker_post). */
enum {
	POOL_MSG_SERVER = WORKER_MSG_OWNER, /* ptr: a struct server * donated to us */
	POOL_MSG_WAKE,                      /* look at the shards' starving marks */
	POOL_MSG_END,                       /* the next free kind */
};

/* One worker's pools. */
struct pool_worker {
	struct worker *w;
	struct shard *shards; /* shared by all workers */
	int n_shards;         /* the shards of this worker's snapshot */
	int shard_cap;        /* the most a reload may bring (the same on every worker) */
	int n_workers;
	struct pool *pools; /* shard_cap, one per shard (unused for a shard without a user) */
	struct list outbox; /* servers to post to other workers after this batch */
	/* shards without a user: a pool per shard and role, made on first use */
	struct pool_roles *roles; /* shared by all workers; NULL: none */
	struct pool **role_pools; /* [role index * shard_cap + shard] */
	struct list role_list;    /* every role pool of this worker */
	/* this worker's view of each shard's PAUSE and RECONNECT marks, taken
	 * from the shards when the admin console says so (pool_worker_sync) */
	bool *paused;
	uint32_t *generation;
};

/* One shard's pool on one worker. */
struct pool {
	struct shard *shard;
	struct pool_worker *pw;
	struct worker *w;
	struct list idle;    /* servers, most recently used first */
	struct list waiting; /* waiters, first come first served */
	struct list servers; /* every server of this pool but the closing ones */
	int n_idle, n_waiting;
	int n_servers; /* all this worker's servers of the shard */
	int n_connecting;
	int min_local; /* this worker's share of min_connections */
	uint64_t next_connect_ms;
	uint32_t backoff_ms;
	int local_streak; /* releases in a row to local waiters while others starve */
	/* a shard without a user: the role every server of this pool logs in
	 * as, and how (the proof of the role's latest client here) */
	struct pool_role *role;
	struct auth_proof *proof;
	struct list role_link; /* pw->role_list */
	bool at_shard_cap;     /* its last connection attempt found the shard full */
	bool gone;             /* the shard was removed by a reload: it only drains */
	/* SCRAM logins of its servers with a cleartext password: PBKDF2 once */
	struct auth_scram_salted_cache salted;
};

/* Sets up pw's pools (min_connections shared out among n_workers), room
 * for shard_cap. -1 when out of memory. */
int pool_worker_init(struct pool_worker *pw, struct worker *w, struct shard *shards, int n_shards,
		     int shard_cap, int n_workers);
/* The worker has a new snapshot (cfg's shards, at most shard_cap): new
 * shards get pools, min_connections is shared out again, a removed shard's
 * waiters are failed (08006) and its pools drain: idle servers close at
 * the tick, none opens. */
void pool_worker_reconfigure(struct pool_worker *pw, const struct cfg *cfg);
void pool_worker_free(struct pool_worker *pw);
void pool_init(struct pool *p, struct shard *shard, struct pool_worker *pw, int min_local);

/* The pool a client of role user takes servers of shard from: the shard's
 * own pool when its section names a user, else this worker's pool of that
 * role (made now), whose servers then log in with proof (kept as a copy;
 * NULL keeps the one it has). NULL if the role table is full or memory is
 * out. */
struct pool *pool_for_role(struct pool_worker *pw, int shard, const char *user,
			   const struct auth_proof *proof);

/* A waiter needs a server: granted at once or it waits on the pool's list. */
void pool_acquire(struct pool *p, struct pool_waiter *wt);
void pool_wait(struct pool *p, struct pool_waiter *wt);
void pool_cancel_wait(struct pool *p, struct pool_waiter *wt);

/* A clean server comes back (from the relay, or unused by a waiter): to
 * the first waiter, a starving worker, or idle. */
void pool_release(struct server *s);
/* A donated server arrives from another worker. */
void pool_adopt(struct pool_worker *pw, struct server *s);
/* A server finished logging in. */
void pool_server_ready(struct server *s);
/* A server closed: drop it from the counts; failed_login backs off reconnects. */
void pool_server_gone(struct server *s, bool failed_login, const char *sqlstate, const char *why);
/* A connection attempt failed (refused, timed out, login refused): back
 * off before the next, and fail the waiters with sqlstate if nothing is
 * left for them to wait for. sqlstate NULL: PgCrab could not even make a
 * socket (EMFILE); back off, and let waiters wait for a server from
 * another worker or a later attempt. */
void pool_connect_failed(struct pool *p, const char *sqlstate, const char *why);

/* Fails every waiter of the pool. */
void pool_fail_waiting(struct pool *p, const char *sqlstate, const char *why);
/* Opens connections owed to waiters or to min_connections. */
void pool_grow(struct pool *p);
/* Gives idle servers this worker does not need to workers starving at the cap. */
void pool_offer_idle(struct pool *p);
/* Periodic: warm-up, server timeouts, donations to starving workers. */
void pool_tick(struct pool *p);

/* The worker's hooks call these. */
void pool_worker_start(struct pool_worker *pw); /* warm-up: min_connections */
void pool_worker_tick(struct pool_worker *pw);
void pool_worker_after_batch(struct pool_worker *pw); /* posts the outbox */
/* A pool message (kind in POOL_MSG_*) arrived, or our post of one completed. */
void pool_worker_on_msg(struct pool_worker *pw, unsigned kind, void *ptr, int res);
void pool_worker_on_msg_done(struct pool_worker *pw, unsigned kind, void *ptr, int res);
/* The admin console changed shards' PAUSE or RECONNECT marks: this worker
 * takes them over. A paused shard's idle servers close now, and the rest
 * as they come free; its waiters wait (those in_transaction excepted) until
 * it is resumed. Servers older than a RECONNECT close now if idle, else as
 * they come free, and new ones take their place as needed. */
void pool_worker_sync(struct pool_worker *pw);
/* Whether this worker holds new transactions on shard. */
static inline bool pool_paused(const struct pool *p)
{
	return p->pw->paused[p->shard->index];
}
/* This worker's server connections to shard (every pool of it, any state). */
int pool_worker_servers(struct pool_worker *pw, int shard);

/* Shutdown: closes every server of every pool. */
void pool_worker_close_all(struct pool_worker *pw);

#endif
