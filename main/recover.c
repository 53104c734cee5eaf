/* Finishes the two-phase commits a PgCrab left in doubt (see
 * relay/twophase.c): on each shard of each sharded database, a prepared
 * transaction named "pgcrab:<db>:<coordinator>:<xid>:<shard>" is committed
 * if the coordinator's transaction xid committed, rolled back if it
 * aborted, and looked at again later while it is still in progress.
 *
 * It runs on a thread of its own with libpq's blocking calls, never on a
 * worker: at start, then every few seconds while something is pending, and
 * every RECOVER_IDLE_S otherwise (a COMMIT PREPARED that failed in a live
 * PgCrab is finished here too). */
#include "main/recover.h"

#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <libpq-fe.h>

#include "core/log.h"
#include "router/router.h"

#define RECOVER_BUSY_S 2
#define RECOVER_IDLE_S 10

static PGconn *connect_shard(const struct cfg *cfg, const struct cfg_shard *sh)
{
	/* a shard without a user (each client its own role): auth_user's */
	const char *user = sh->user, *password = sh->password;
	if (!user && cfg->auth_user[0]) {
		const struct cfg_user *u = cfg_find_user(cfg, cfg->auth_user);
		user = cfg->auth_user;
		password = u ? u->password : "";
	}
	if (!user) {
		log_debug("recovery: shard %s has no user and no auth_user to log in as", sh->name);
		return NULL;
	}
	char port[16];
	snprintf(port, sizeof(port), "%d", sh->port);
	const char *keys[] = {
		"host", "port", "dbname", "user", "password", "connect_timeout", "application_name",
		NULL
	};
	const char *vals[] = {
		sh->host,          port, sh->database, user, password ? password : "", "5",
		"pgcrab-recovery", NULL
	};
	PGconn *c = PQconnectdbParams(keys, vals, 0);
	if (PQstatus(c) != CONNECTION_OK) {
		log_debug("recovery: shard %s: %s", sh->name, PQerrorMessage(c));
		PQfinish(c);
		return NULL;
	}
	return c;
}

/* "committed", "aborted", "in progress", or NULL (unknown). */
static char *xact_status(PGconn *coord, const char *xid)
{
	const char *params[] = { xid };
	PGresult *r = PQexecParams(coord, "SELECT pg_xact_status($1::xid8)", 1, NULL, params, NULL,
				   NULL, 0);
	char *st = NULL;
	if (PQresultStatus(r) == PGRES_TUPLES_OK && PQntuples(r) == 1 && !PQgetisnull(r, 0, 0))
		st = strdup(PQgetvalue(r, 0, 0));
	PQclear(r);
	return st;
}

/* One database: true if something stays pending. */
static bool recover_db(const struct cfg *cfg, const struct cfg_database *db)
{
	bool pending = false;
	char prefix[80], like[96];
	router_gid_prefix(db->name, prefix, sizeof(prefix));
	snprintf(like, sizeof(like), "%s%%", prefix);
	PGconn **conns = calloc((size_t)db->n_shards, sizeof(*conns));
	if (!conns)
		return true;
	for (int s = 0; s < db->n_shards; s++) {
		if (!conns[s])
			conns[s] = connect_shard(cfg, &cfg->shards[db->shards[s]]);
		if (!conns[s]) {
			pending = true;
			continue;
		}
		const char *params[] = { like };
		PGresult *r = PQexecParams(conns[s],
					   "SELECT gid FROM pg_prepared_xacts WHERE database = "
					   "current_database() AND gid LIKE $1",
					   1, NULL, params, NULL, NULL, 0);
		if (PQresultStatus(r) != PGRES_TUPLES_OK) {
			log_warn("recovery: shard %s: %s", cfg->shards[db->shards[s]].name,
				 PQerrorMessage(conns[s]));
			PQclear(r);
			pending = true;
			continue;
		}
		for (int i = 0; i < PQntuples(r); i++) {
			const char *gid = PQgetvalue(r, i, 0);
			int coord = -1, shard = -1;
			char xid[32];
			if (sscanf(gid + strlen(prefix), "%d:%31[0-9]:%d", &coord, xid, &shard) != 3
			    || coord < 0 || coord >= db->n_shards) {
				log_warn("recovery: %s: not a name PgCrab gives; left alone", gid);
				continue;
			}
			if (!conns[coord])
				conns[coord] = connect_shard(cfg, &cfg->shards[db->shards[coord]]);
			char *st = conns[coord] ? xact_status(conns[coord], xid) : NULL;
			const char *verb = NULL;
			if (st && strcmp(st, "committed") == 0)
				verb = "COMMIT PREPARED";
			else if (st && strcmp(st, "aborted") == 0)
				verb = "ROLLBACK PREPARED";
			if (!verb) {
				pending = true;
				log_debug("recovery: %s: coordinator says %s; later", gid,
					  st ? st : "nothing");
				free(st);
				continue;
			}
			free(st);
			char sql[320];
			snprintf(sql, sizeof(sql), "%s '%s'", verb, gid);
			PGresult *d = PQexec(conns[s], sql);
			if (PQresultStatus(d) == PGRES_COMMAND_OK)
				log_info("recovery: %s", sql);
			else {
				log_warn("recovery: %s: %s", sql, PQerrorMessage(conns[s]));
				pending = true;
			}
			PQclear(d);
		}
		PQclear(r);
	}
	for (int s = 0; s < db->n_shards; s++)
		PQfinish(conns[s]);
	free(conns);
	return pending;
}

static void *recover_main(void *arg)
{
	struct cfg *cfg = arg;
	for (;;) {
		bool pending = false;
		for (int d = 0; d < cfg->n_databases; d++)
			pending |= recover_db(cfg, &cfg->databases[d]);
		sleep(pending ? RECOVER_BUSY_S : RECOVER_IDLE_S);
	}
	return NULL;
}

int recover_start(struct cfg *cfg)
{
	if (cfg->n_databases == 0)
		return 0;
	pthread_t t;
	struct cfg *ref = cfg_ref(cfg);
	if (pthread_create(&t, NULL, recover_main, ref) != 0) {
		cfg_unref(ref);
		return -1;
	}
	pthread_detach(t);
	return 0;
}
