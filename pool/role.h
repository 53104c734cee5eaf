/* Database roles that log in as themselves ([shard.*] without a user):
 * one record per role name, shared by all workers and never freed while
 * PgCrab runs. It counts the role's server connections across workers and
 * shards (max_user_connections) and carries, per shard, the marks of the
 * workers whose clients of that role wait for a server, so that another
 * worker gives them an idle server of the same role. The table is
 * insert-only and lock-free: a slot, once set, never changes. */
#ifndef PGCRAB_ROLE_H
#define PGCRAB_ROLE_H

#include <stdatomic.h>
#include <stdbool.h>
#include <stdint.h>

#include "core/worker.h"

#define POOL_ROLE_NAME_MAX 64 /* NAMEDATALEN: longer names PostgreSQL truncates */
#define POOL_ROLES_MAX     4096

struct pool_role {
	int index; /* its slot: per-worker tables of role pools are indexed by it */
	char name[POOL_ROLE_NAME_MAX];
	_Atomic int open; /* shared: server connections of this role, every shard */
	/* shared: per shard, workers whose clients of this role wait at a cap */
	_Atomic uint64_t starving[][MAX_WORKERS / 64];
};

struct pool_roles {
	int n_shards; /* room per role: the shards a reload may bring */
	_Atomic(struct pool_role *) slots[POOL_ROLES_MAX];
};

/* NULL if out of memory. */
struct pool_roles *pool_roles_new(int n_shards);
void pool_roles_free(struct pool_roles *t);
/* The role's record, made on first use; NULL if the name is too long, the
 * table is full or memory is out. */
struct pool_role *pool_role_get(struct pool_roles *t, const char *name);

/* Takes one of the role's connections; false at max (0: no limit). */
bool pool_role_reserve(struct pool_role *r, int max);
void pool_role_unreserve(struct pool_role *r);

#endif
