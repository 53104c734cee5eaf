/* The admin console: a client that logs in to database "pgcrab" (or
 * "pgbouncer", so that PgBouncer's tools find it) as a user listed in
 * admin_users or stats_users talks to PgCrab itself. It speaks the simple
 * query protocol; each command is answered with a normal row set. SHOW
 * data lives on every worker: the console's worker asks each through its
 * ring and answers once all have replied, so no worker ever waits. */
#ifndef PGCRAB_ADMIN_H
#define PGCRAB_ADMIN_H

#include <stdbool.h>

#include "config/cfg.h"

struct client;
struct session_worker;

enum admin_role {
	ADMIN_NONE,  /* not allowed on the console */
	ADMIN_STATS, /* stats_users: SHOW only */
	ADMIN_ALL,   /* admin_users: every command */
};

/* dbname names the console (and no shard or sharded database does). */
bool admin_is_console(const struct cfg *cfg, const char *dbname);
enum admin_role admin_role_of(const struct cfg *cfg, const char *user);

/* The client authenticated as role on the console: AuthenticationOk, the
 * console's parameters, BackendKeyData and ReadyForQuery. */
void admin_login(struct client *cl, enum admin_role role);
/* A console client has bytes: its commands. */
void admin_on_request(struct client *cl);
/* A console client is freed: a command still gathering forgets it. */
void admin_client_gone(struct client *cl);

/* Each tick: a PAUSE waiting on this worker is answered once its servers
 * of the paused shards are gone. */
void admin_pause_tick(struct session_worker *sw);

/* Messages between workers (kinds in session.h). */
void admin_on_msg(struct session_worker *sw, unsigned kind, void *ptr, int res);
void admin_on_msg_done(struct session_worker *sw, unsigned kind, void *ptr, int res);

#endif
