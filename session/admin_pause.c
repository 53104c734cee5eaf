/* PAUSE, RESUME and RECONNECT on the admin console. The console's worker
 * checks the command and writes the shards' marks (pool/shard.h), then
 * asks every worker through its ring to take them over; a PAUSE is
 * answered once every worker's servers of the paused shards are gone, so
 * no worker ever waits: each looks again on its tick. */
#include <stdio.h>
#include <string.h>

#include "core/log.h"
#include "core/worker.h"
#include "session/admin_internal.h"
#include "session/session.h"

/* g->arg names the databases a command is about: 0 every one, 1 + i shard
 * i, 1 + n_shards + d sharded database d (all of its shards). */
static bool names_shard(const struct session_worker *sw, uint64_t arg, int shard)
{
	int n = sw->pools.n_shards;
	if (arg == 0)
		return true;
	if (arg <= (uint64_t)n)
		return (int)arg - 1 == shard;
	const struct cfg_database *db = sw->dbs[arg - 1 - (uint64_t)n].cfg;
	for (int s = 0; s < db->n_shards; s++)
		if (db->shards[s] == shard)
			return true;
	return false;
}

/* The shards' marks that hold the shards arg names, ORed and ANDed. */
static void marks_of(const struct session_worker *sw, uint64_t arg, unsigned *any, unsigned *all)
{
	*any = 0;
	*all = ~0u;
	for (int i = 0; i < sw->pools.n_shards; i++) {
		if (!names_shard(sw, arg, i))
			continue;
		unsigned v = atomic_load(&sw->pools.shards[i].paused);
		*any |= v;
		*all &= v;
	}
}

/* Sets (on) or clears bits on every shard arg names. */
static void mark(struct session_worker *sw, uint64_t arg, unsigned bits, bool on)
{
	for (int i = 0; i < sw->pools.n_shards; i++) {
		if (!names_shard(sw, arg, i))
			continue;
		if (on)
			atomic_fetch_or(&sw->pools.shards[i].paused, bits);
		else
			atomic_fetch_and(&sw->pools.shards[i].paused, ~bits);
	}
}

static int find_name(const struct session_worker *sw, const char *name, uint64_t *arg)
{
	for (int i = 0; i < sw->pools.n_shards; i++)
		if (strcmp(sw->pools.shards[i].cfg->name, name) == 0) {
			*arg = 1 + (uint64_t)i;
			return 0;
		}
	for (int d = 0; d < sw->n_dbs; d++)
		if (strcmp(sw->dbs[d].cfg->name, name) == 0) {
			*arg = 1 + (uint64_t)sw->pools.n_shards + (uint64_t)d;
			return 0;
		}
	return -1;
}

static const char *pause_begin(struct session_worker *sw, const char *name, uint64_t arg, char *msg,
			       size_t len)
{
	struct session *ss = sw->w->rt->owner;
	unsigned any, all;
	if (!name) {
		bool no = false;
		if (!atomic_compare_exchange_strong(&ss->paused_all, &no, true)) {
			snprintf(msg, len, "already paused");
			return "55000";
		}
		mark(sw, 0, SHARD_PAUSED_ALL, true);
		return NULL;
	}
	marks_of(sw, arg, &any, &all);
	if (all) {
		snprintf(msg, len, "database %s is already paused", name);
		return "55000";
	}
	mark(sw, arg, SHARD_PAUSED_BY_NAME, true);
	return NULL;
}

static const char *resume_begin(struct session_worker *sw, const char *name, uint64_t arg,
				char *msg, size_t len)
{
	struct session *ss = sw->w->rt->owner;
	unsigned any, all;
	marks_of(sw, arg, &any, &all);
	if (!name) {
		/* unlike PgBouncer's, this one also lifts each PAUSE of a database */
		bool was = atomic_exchange(&ss->paused_all, false);
		if (!was && !any) {
			snprintf(msg, len, "nothing is paused");
			return "55000";
		}
		mark(sw, 0, SHARD_PAUSED_ALL | SHARD_PAUSED_BY_NAME, false);
		return NULL;
	}
	if (any & SHARD_PAUSED_BY_NAME) {
		mark(sw, arg, SHARD_PAUSED_BY_NAME, false);
		return NULL;
	}
	if (any & SHARD_PAUSED_ALL)
		snprintf(msg, len,
			 "database %s is paused by a PAUSE of every database: RESUME without a "
			 "name lifts it",
			 name);
	else
		snprintf(msg, len, "database %s is not paused", name);
	return "55000";
}

const char *admin_pause_begin(struct session_worker *sw, enum admin_cmd cmd, const char *name,
			      uint64_t *arg, char *msg, size_t len)
{
	*arg = 0;
	if (name && find_name(sw, name, arg) != 0) {
		if (admin_is_console(sw->w->cfg, name))
			snprintf(msg, len, "the admin console is no database to %s",
				 cmd == ADMIN_RECONNECT ? "reconnect" : "pause or resume");
		else
			snprintf(msg, len, "no such database: %s", name);
		return "3D000";
	}
	switch (cmd) {
	case ADMIN_PAUSE:
		return pause_begin(sw, name, *arg, msg, len);
	case ADMIN_RESUME:
		return resume_begin(sw, name, *arg, msg, len);
	default:
		for (int i = 0; i < sw->pools.n_shards; i++)
			if (names_shard(sw, *arg, i))
				atomic_fetch_add(&sw->pools.shards[i].generation, 1);
		return NULL;
	}
}

/* This worker has no server left of any paused shard g names. */
static bool drained(struct session_worker *sw, const struct admin_gather *g)
{
	for (int i = 0; i < sw->pools.n_shards; i++)
		if (names_shard(sw, g->arg, i) && sw->pools.paused[i]
		    && pool_worker_servers(&sw->pools, i) > 0)
			return false;
	return true;
}

bool admin_pause_collect(struct session_worker *sw, struct admin_gather *g)
{
	pool_worker_sync(&sw->pools);
	if (g->cmd != ADMIN_PAUSE || drained(sw, g))
		return true;
	struct admin_part *part = &g->parts[sw->w->id];
	part->of = g;
	list_add_tail(&sw->pause_waits, &part->wait_link);
	return false;
}

void admin_pause_tick(struct session_worker *sw)
{
	for (struct list *n = sw->pause_waits.next, *next; n != &sw->pause_waits; n = next) {
		next = n->next;
		struct admin_part *part = list_entry(n, struct admin_part, wait_link);
		/* shutting down, the servers go anyway: the console is told now */
		if (!sw->w->stopping && !drained(sw, part->of))
			continue;
		list_del(&part->wait_link);
		admin_part_done(sw, part->of);
	}
}

void admin_pause_reply(struct session_worker *sw, const struct admin_gather *g, struct admin_out *o)
{
	unsigned any, all;
	switch (g->cmd) {
	case ADMIN_PAUSE:
		marks_of(sw, g->arg, &any, &all);
		if (!all) /* a RESUME came first */
			admin_out_error(o, "57014", "PAUSE ended by RESUME before it was done");
		else
			admin_out_complete(o, "PAUSE");
		break;
	case ADMIN_RESUME:
		admin_out_complete(o, "RESUME");
		break;
	default:
		admin_out_complete(o, "RECONNECT");
		break;
	}
}
