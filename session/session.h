/* The session layer's state and its place in the runtime: the shards
 * (shared by all workers), and per worker its clients, its pools and its
 * cancel keys. It registers the workers' hooks: accepted sockets become
 * clients, messages between workers reach the pools and cancel routing,
 * the tick runs pool upkeep and shutdown. */
#ifndef PGCRAB_SESSION_H
#define PGCRAB_SESSION_H

#include <stdint.h>

#include "config/cfg.h"
#include "core/list.h"
#include "core/worker.h"
#include "pool/pool.h"
#include "router/router.h"
#include "session/stats_period.h"
#include "pool/shard.h"
#include "session/authq.h"
#include "session/hasher.h"

enum {
	SESSION_MSG_CANCEL = POOL_MSG_END, /* ptr: a client pid; res: its secret key */
	SESSION_MSG_ADMIN_ASK,             /* ptr: a struct admin_gather to add to */
	SESSION_MSG_ADMIN_DONE,            /* ptr: the gather, this worker's part written */
	SESSION_MSG_AUTHQ,                 /* ptr: an answered struct authq_req * */
	SESSION_MSG_ADOPT,  /* ptr: a struct handover_in from an upgrade's old process */
	SESSION_MSG_HASHED, /* ptr: a checked struct hasher_req * */
};

/* A sharded database: its config and the schema its router plans against. */
struct session_db {
	const struct cfg_database *cfg;
	struct router_schema schema;
	struct router_table *tables;
};

struct session_worker {
	struct pool_worker pools;
	struct session_db *dbs; /* shared, read-only */
	int n_dbs;
	struct worker *w;
	struct list clients;
	uint32_t next_pid;    /* BackendKeyData pids: (counter << 8) | worker id */
	int32_t secrets[256]; /* random BackendKeyData secrets, used from the end */
	int secrets_left;
	/* startup settings a server accepted ("name\0value" hashes): a client
	 * whose settings are all here logs in without asking a server */
	uint64_t checked_settings[256];
	struct authq *authq; /* shared; NULL without auth_query */
	struct authq_cache authq_cache;
	struct hasher *hasher; /* shared */
	/* cleartext passwords SCRAM verifiers accepted here (auth_type = plain) */
	struct auth_plain_cache plain_cache;
	struct list pause_waits; /* admin_part: PAUSEs waiting for servers here to go */
};

/* A reload may add this many shards over the process's life (a removed
 * shard keeps its slot; added again, it takes it back). */
#define SESSION_SPARE_SHARDS 32

struct reload;

/* Shared by every worker (the runtime's owner). */
struct session {
	struct cfg *cfg;      /* the first snapshot: the sharded databases' */
	struct cfg *live;     /* the newest (the reload thread's) */
	struct shard *shards; /* shard_cap slots, the first n_shards in use */
	_Atomic int n_shards; /* grows only, by a reload, once the slot is set */
	int shard_cap;
	struct pool_roles *roles; /* roles of shards without a user */
	struct authq *authq;      /* auth_query's helper thread, or NULL */
	struct hasher *hasher;    /* the auth hasher's thread */
	struct session_worker *workers;
	struct session_db *dbs;
	int n_dbs;
	struct stats_period period; /* SHOW STATS's averages, the stats log line */
	_Atomic bool paused_all;    /* PAUSE without a database name is in force */
	struct reload *reload;      /* the reload thread (session/reload.c) */
};

/* Statistics slots: one per shard slot (shard_cap), then one per sharded
 * database, then one for clients with no database yet. The name a slot is
 * reported under; NULL for a shard slot no shard has taken yet and for the
 * last one. */
const char *session_slot_name(const struct session *ss, int i);

static inline struct session_worker *session_worker_of(struct worker *w)
{
	return w->owner;
}

/* Builds rt for n_workers workers over cfg's shards (addresses resolved
 * now, so no worker ever blocks in the resolver). The runtime holds a
 * reference to cfg per worker and one for the shards. -1 with err. */
int session_build(struct runtime *rt, struct session *ss, struct cfg *cfg, int n_workers, char *err,
		  size_t errlen);
void session_free(struct runtime *rt, struct session *ss);

extern const struct worker_hooks session_hooks;

#endif
