/* auth_query: the verifier of a role the config does not list, looked up
 * on its shard with [pgcrab] auth_query, logged in as auth_user.
 *
 * The query runs on one helper thread with libpq's blocking calls (one
 * connection per shard, kept open), never on a worker: a worker queues a
 * request and goes on; the answer comes back to it as a ring message
 * (SESSION_MSG_AUTHQ), and each worker caches answers for auth_query_ttl
 * (a role that does not exist for at most AUTHQ_NEGATIVE_TTL_MS). */
#ifndef PGCRAB_AUTHQ_H
#define PGCRAB_AUTHQ_H

#include <stdbool.h>
#include <stdint.h>

#include "config/cfg.h"

#define AUTHQ_NEGATIVE_TTL_MS 5000
#define AUTHQ_CACHE_SLOTS     256

enum authq_status {
	AUTHQ_MISS,  /* not cached: look it up */
	AUTHQ_FOUND, /* the role exists; verifier set */
	AUTHQ_NONE,  /* no such role, or it has no password */
	AUTHQ_ERROR, /* the lookup failed (shard down, query refused) */
};

struct authq_entry {
	int shard; /* -1: empty */
	char user[64];
	enum authq_status status;
	char *verifier;
	uint64_t expires_ms;
};

/* One worker's cache. */
struct authq_cache {
	struct authq_entry slots[AUTHQ_CACHE_SLOTS];
};

struct authq;     /* the helper thread, shared */
struct authq_req; /* one lookup in flight */
struct worker;

/* Called once on the worker with the answer (verifier NULL unless FOUND,
 * and only good during the call), unless cancelled before. */
typedef void (*authq_done_fn)(void *arg, enum authq_status status, const char *verifier);

/* Starts the helper for cfg (the snapshot the shards were built from).
 * NULL if auth_query is off (no auth_user) or on failure (err set). */
struct authq *authq_start(const struct cfg *cfg, char *err, size_t errlen);
void authq_stop(struct authq *q);

void authq_cache_init(struct authq_cache *c);
void authq_cache_clear(struct authq_cache *c);
/* A fresh cached answer for (shard, user), or AUTHQ_MISS. */
enum authq_status authq_cached(struct authq_cache *c, uint64_t now_ms, int shard, const char *user,
			       const char **verifier);

/* Drops the answer for (shard, user): a password that failed against a
 * cached answer may be the role's new one, so its next login asks the
 * shard again instead of waiting out the TTL. */
void authq_cache_forget(struct authq_cache *c, int shard, const char *user);

/* Queues a lookup; done runs later on w. NULL if out of memory. */
struct authq_req *authq_lookup(struct authq *q, struct worker *w, int shard, const char *user,
			       authq_done_fn done, void *arg);
/* The waiter left: done will not be called. */
void authq_cancel(struct authq_req *r);
/* The answer arrived on its worker (SESSION_MSG_AUTHQ): caches it with
 * ttl_ms, calls done unless cancelled, frees the request. */
void authq_deliver(struct authq_cache *c, uint64_t now_ms, uint64_t ttl_ms, struct authq_req *r);

#endif
