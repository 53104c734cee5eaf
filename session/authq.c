/* auth_query's helper thread (a core/jobq.h queue) and the workers'
 * caches. The thread owns its libpq connections (one per shard, opened
 * when first needed and again after a failure). */
#include "session/authq.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <libpq-fe.h>
#include <openssl/crypto.h>

#include "core/jobq.h"
#include "core/log.h"
#include "session/session.h"

struct authq_req {
	struct list link; /* queued in q->q until the thread takes it */
	struct worker *w; /* answers go to this worker */
	int shard;
	char user[64];
	enum authq_status status; /* set by the thread */
	char *verifier;
	authq_done_fn done; /* the worker's side */
	void *arg;
	bool cancelled;
};

struct authq {
	struct jobq q;
	const struct cfg *cfg; /* held by the session, which outlives us */
	PGconn **conns;        /* per shard */
};

static void wipe_free(char *s)
{
	if (s) {
		OPENSSL_cleanse(s, strlen(s));
		free(s);
	}
}

static PGconn *shard_conn(struct authq *q, int shard)
{
	if (q->conns[shard] && PQstatus(q->conns[shard]) == CONNECTION_OK)
		return q->conns[shard];
	PQfinish(q->conns[shard]);
	const struct cfg_shard *sh = &q->cfg->shards[shard];
	const struct cfg_user *u = cfg_find_user(q->cfg, q->cfg->auth_user);
	char port[16];
	snprintf(port, sizeof(port), "%d", sh->port);
	const char *keys[] = {
		"host", "port", "dbname", "user", "password", "connect_timeout", "application_name",
		NULL
	};
	const char *vals[] = { sh->host,
			       port,
			       sh->database,
			       q->cfg->auth_user,
			       u ? u->password : "",
			       "5",
			       "pgcrab-auth-query",
			       NULL };
	q->conns[shard] = PQconnectdbParams(keys, vals, 0);
	if (PQstatus(q->conns[shard]) != CONNECTION_OK) {
		log_warn("auth_query: cannot log in to shard %s as %s: %s", sh->name,
			 q->cfg->auth_user, PQerrorMessage(q->conns[shard]));
		PQfinish(q->conns[shard]);
		q->conns[shard] = NULL;
	}
	return q->conns[shard];
}

/* The query's first row: (name, password); no row or a NULL password is
 * no role PgCrab can check a password against. */
static void run_query(struct authq *q, struct authq_req *r)
{
	r->status = AUTHQ_ERROR;
	if (r->shard >= q->cfg->n_shards) {
		/* added by a reload: auth_query's thread knows the first shards */
		log_warn("auth_query: shard %d was added by a reload; restart to look roles up there",
			 r->shard);
		return;
	}
	PGconn *c = shard_conn(q, r->shard);
	if (!c)
		return;
	const char *params[] = { r->user };
	PGresult *res = PQexecParams(c, q->cfg->auth_query, 1, NULL, params, NULL, NULL, 0);
	if (PQresultStatus(res) != PGRES_TUPLES_OK || PQnfields(res) < 2) {
		log_warn("auth_query on shard %s failed: %s", q->cfg->shards[r->shard].name,
			 PQresultErrorMessage(res));
		PQclear(res);
		return;
	}
	r->status = AUTHQ_NONE;
	if (PQntuples(res) >= 1 && !PQgetisnull(res, 0, 1) && *PQgetvalue(res, 0, 1)) {
		r->verifier = strdup(PQgetvalue(res, 0, 1));
		r->status = r->verifier ? AUTHQ_FOUND : AUTHQ_ERROR;
	}
	/* libpq's copy of the verifier goes with the result */
	PQclear(res);
}

static void run(struct jobq *jq, struct list *job)
{
	struct authq *q = container_of(jq, struct authq, q);
	struct authq_req *r = list_entry(job, struct authq_req, link);
	run_query(q, r);
	if (jobq_post(jq, r->w, SESSION_MSG_AUTHQ, r) < 0) {
		/* the worker is gone (shutdown): nobody waits for it */
		wipe_free(r->verifier);
		free(r);
	}
}

struct authq *authq_start(const struct cfg *cfg, char *err, size_t errlen)
{
	if (!cfg->auth_user[0])
		return NULL;
	struct authq *q = calloc(1, sizeof(*q));
	if (!q || !(q->conns = calloc((size_t)cfg->n_shards + 1, sizeof(*q->conns)))) {
		snprintf(err, errlen, "out of memory");
		goto fail;
	}
	q->cfg = cfg;
	if (jobq_start(&q->q, "auth_query", run, err, errlen) != 0)
		goto fail;
	return q;
fail:
	if (q)
		free(q->conns);
	free(q);
	return NULL;
}

static void drop(struct list *job)
{
	free(list_entry(job, struct authq_req, link));
}

void authq_stop(struct authq *q)
{
	if (!q)
		return;
	jobq_stop(&q->q, drop);
	for (int i = 0; i < q->cfg->n_shards; i++)
		PQfinish(q->conns[i]);
	free(q->conns);
	free(q);
}

struct authq_req *authq_lookup(struct authq *q, struct worker *w, int shard, const char *user,
			       authq_done_fn done, void *arg)
{
	struct authq_req *r = calloc(1, sizeof(*r));
	if (!q || !r) {
		free(r);
		return NULL;
	}
	r->w = w;
	r->shard = shard;
	snprintf(r->user, sizeof(r->user), "%s", user);
	r->done = done;
	r->arg = arg;
	jobq_push(&q->q, &r->link);
	return r;
}

void authq_cancel(struct authq_req *r)
{
	r->cancelled = true; /* only its worker reads it, at delivery */
}

void authq_cache_init(struct authq_cache *c)
{
	for (int i = 0; i < AUTHQ_CACHE_SLOTS; i++)
		c->slots[i] = (struct authq_entry){ .shard = -1 };
}

void authq_cache_clear(struct authq_cache *c)
{
	for (int i = 0; i < AUTHQ_CACHE_SLOTS; i++) {
		wipe_free(c->slots[i].verifier);
		c->slots[i] = (struct authq_entry){ .shard = -1 };
	}
}

/* One slot per (shard, user): a collision only evicts the other answer. */
static struct authq_entry *slot_of(struct authq_cache *c, int shard, const char *user)
{
	uint32_t h = 2166136261u ^ (uint32_t)shard;
	for (const char *s = user; *s; s++)
		h = (h ^ (uint8_t)*s) * 16777619u;
	return &c->slots[h % AUTHQ_CACHE_SLOTS];
}

enum authq_status authq_cached(struct authq_cache *c, uint64_t now_ms, int shard, const char *user,
			       const char **verifier)
{
	struct authq_entry *e = slot_of(c, shard, user);
	if (e->shard != shard || strcmp(e->user, user) != 0 || now_ms >= e->expires_ms)
		return AUTHQ_MISS;
	*verifier = e->verifier;
	return e->status;
}

void authq_cache_forget(struct authq_cache *c, int shard, const char *user)
{
	struct authq_entry *e = slot_of(c, shard, user);
	if (e->shard != shard || strcmp(e->user, user) != 0)
		return;
	wipe_free(e->verifier);
	*e = (struct authq_entry){ .shard = -1 };
}

void authq_deliver(struct authq_cache *c, uint64_t now_ms, uint64_t ttl_ms, struct authq_req *r)
{
	if (r->status != AUTHQ_ERROR) {
		struct authq_entry *e = slot_of(c, r->shard, r->user);
		wipe_free(e->verifier);
		e->shard = r->shard;
		snprintf(e->user, sizeof(e->user), "%s", r->user);
		e->status = r->status;
		e->verifier = r->verifier ? strdup(r->verifier) : NULL;
		if (r->status == AUTHQ_FOUND && !e->verifier)
			e->shard = -1; /* out of memory: not cached */
		uint64_t ttl = r->status == AUTHQ_NONE && ttl_ms > AUTHQ_NEGATIVE_TTL_MS
			? AUTHQ_NEGATIVE_TTL_MS
			: ttl_ms;
		e->expires_ms = now_ms + ttl;
	}
	if (!r->cancelled)
		r->done(r->arg, r->status, r->verifier);
	wipe_free(r->verifier);
	free(r);
}
