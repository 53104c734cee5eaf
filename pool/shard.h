/* A backend PostgreSQL server, shared by all workers: its address, the
 * cap on connections to it across workers, and the ParameterStatus values
 * its first login reported. */
#ifndef PGCRAB_SHARD_H
#define PGCRAB_SHARD_H

#include <stdatomic.h>
#include <stdbool.h>
#include <stdint.h>
#include <sys/socket.h>

#include "config/cfg.h"
#include "core/worker.h"

/* ParameterStatus messages as one byte blob, published once per shard. */
struct param_blob {
	uint32_t len;
	uint8_t data[];
};

struct shard {
	int index;
	const char *name; /* the shard's for the process's life (owned by the session) */
	/* in the newest snapshot, swapped by a reload before the workers get
	 * it (each holds the snapshot it read until its next arrives); the
	 * address below and the connections' identity (host, port, database,
	 * user) change with a restart only */
	const struct cfg_shard *_Atomic cfg;
	struct sockaddr_storage addr;
	socklen_t addrlen;
	_Atomic int open; /* shared: connections held against max */
	_Atomic uint64_t
		starving[MAX_WORKERS / 64];  /* shared: workers whose waiters need a server */
	_Atomic(struct param_blob *) params; /* shared: set once */
	_Atomic uint64_t pins; /* shared: clients pinned to a server by their session state */
	/* shared, written by the admin console (PAUSE, RESUME, RECONNECT); each
	 * worker acts on them when the console's message tells it to look */
	_Atomic unsigned paused;     /* SHARD_PAUSED_* bits: none = serving */
	_Atomic uint32_t generation; /* RECONNECT bumps it: older servers are replaced */
};

#define SHARD_PAUSED_BY_NAME 1u /* PAUSE naming it (or its sharded database) */
#define SHARD_PAUSED_ALL     2u /* PAUSE of every database */

/* Takes one unit of the shard's cap; false at max_connections. */
bool shard_reserve(struct shard *sh);
void shard_unreserve(struct shard *sh);

#endif
