/* Per-worker, per-shard pools of server connections. A shard-wide atomic
 * counter caps connections across workers; a worker whose clients wait at
 * the cap marks itself starving and other workers donate idle servers. */
#ifndef PGCRAB_POOL_H
#define PGCRAB_POOL_H

#include "core/types.h"

void pool_init(struct pool *p, struct shard *shard, struct worker *w, int min_local);

/* A client needs a server: one is handed at once (client_on_server) or the
 * client waits on the pool's list. */
void pool_acquire(struct pool *p, struct client *cl);
void pool_wait(struct pool *p, struct client *cl);
void pool_cancel_wait(struct pool *p, struct client *cl);

/* A clean server comes back: to the first waiter, a starving worker, or idle. */
void pool_release(struct server *s);
/* A donated server arrives from another worker. */
void pool_adopt(struct worker *w, struct server *s);
/* A server finished logging in. */
void pool_server_ready(struct server *s);
/* A server closed: drop it from the counts; failed_login backs off reconnects. */
void pool_server_gone(struct server *s, bool failed_login, const char *sqlstate, const char *why);
/* A connection attempt failed (refused, timed out, login refused): back
 * off before the next, and fail the waiting clients with sqlstate if
 * nothing is left for them to wait for. sqlstate NULL: PgCrab could not
 * even make a socket (EMFILE); back off, and let waiters wait for a server
 * from another worker or a later attempt. */
void pool_connect_failed(struct pool *p, const char *sqlstate, const char *why);

/* Fails every client waiting on the pool with an ErrorResponse. */
void pool_fail_waiting(struct pool *p, const char *sqlstate, const char *why);
/* Opens connections owed to waiters or to min_connections. */
void pool_grow(struct pool *p);
/* Gives idle servers this worker does not need to workers starving at the cap. */
void pool_offer_idle(struct pool *p);
/* Periodic: warm-up, waiting timeouts, donations to starving workers. */
void pool_tick(struct pool *p);

/* Takes one unit of the shard's cap; false at max_connections. */
bool shard_reserve(struct shard *sh);
void shard_unreserve(struct shard *sh);

#endif
