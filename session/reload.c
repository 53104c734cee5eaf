/* The reload thread (a core/jobq.h queue): one reload at a time, every
 * request that came in meanwhile answered by it. */
#include "session/reload.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <systemd/sd-daemon.h>

#include "core/jobq.h"
#include "core/log.h"
#include "core/net.h"
#include "core/tls.h"
#include "proto/proto.h"
#include "session/admin_internal.h"
#include "session/session.h"

#define RELOAD_NOTES 32

struct reload {
	struct jobq q; /* console RELOADs (admin_gather.reload_link) and hup */
	struct runtime *rt;
	const struct cfg_overrides *ov;
	struct list hup; /* SIGHUP's job: queued once however many came */
	/* what the last reload did not take, for the log and the console */
	char notes[RELOAD_NOTES][256];
	int n_notes;
};

static struct reload *reload_of(struct runtime *rt)
{
	return ((struct session *)rt->owner)->reload;
}

static void note(void *arg, const char *msg)
{
	struct reload *r = arg;
	log_warn("reload: %s", msg);
	if (r->n_notes < RELOAD_NOTES)
		snprintf(r->notes[r->n_notes++], sizeof(r->notes[0]), "%s", msg);
}

/* Shards the new snapshot adds, resolved before anything changes (a name
 * that does not resolve refuses the reload). */
static int resolve_added(struct session *ss, const struct cfg *nw, struct shard *added, char *err,
			 size_t errlen)
{
	int have = atomic_load(&ss->n_shards);
	for (int i = have; i < nw->n_shards; i++) {
		struct shard *sh = &added[i - have];
		const struct cfg_shard *c = &nw->shards[i];
		char why[256];
		if (net_resolve(c->host, c->port, false, &sh->addr, &sh->addrlen, why, sizeof(why))
		    != 0) {
			snprintf(err, errlen, "shard %s: %s", c->name, why);
			return -1;
		}
		if (!(sh->name = strdup(c->name))) {
			snprintf(err, errlen, "out of memory");
			return -1;
		}
	}
	return 0;
}

/* Nothing can fail from here: the shards point at the new snapshot, new
 * ones join, and each worker gets it. */
static void commit(struct reload *r, struct cfg *nw, struct shard *added)
{
	struct runtime *rt = r->rt;
	struct session *ss = rt->owner;
	struct cfg *old = ss->live;
	int have = atomic_load(&ss->n_shards);
	for (int i = 0; i < have; i++)
		atomic_store(&ss->shards[i].cfg, &nw->shards[i]);
	for (int i = have; i < nw->n_shards; i++) {
		struct shard *sh = &ss->shards[i];
		sh->index = i;
		sh->name = added[i - have].name;
		sh->addr = added[i - have].addr;
		sh->addrlen = added[i - have].addrlen;
		atomic_store(&sh->cfg, &nw->shards[i]);
	}
	atomic_store(&ss->n_shards, nw->n_shards); /* after the slots are filled */
	atomic_store(&log_threshold, (int)nw->log_level);
	atomic_store(&rt->max_client_conn, nw->max_client_conn);
	ss->live = nw; /* the loader's reference */
	int rc = worker_publish_config(rt, nw);
	if (rc < 0)
		log_error("reload: cannot hand the configuration to every worker: %s",
			  strerror(-rc));
	cfg_unref(old); /* freed when the last worker has let go of it */
}

/* Loads, fits and applies the file. 0, or -1 with err (nothing changed). */
static int do_reload(struct reload *r, char *err, size_t errlen)
{
	struct session *ss = r->rt->owner;
	struct cfg *nw;
	r->n_notes = 0;
	if (cfg_load(ss->live->path, r->ov, &nw, err, errlen) != 0)
		return -1;
	if (cfg_reload_prepare(ss->live, nw, ss->shard_cap, note, r, err, errlen) != 0) {
		cfg_free(nw);
		return -1;
	}
	int n_added = nw->n_shards - atomic_load(&ss->n_shards);
	struct shard *added = calloc((size_t)(n_added > 0 ? n_added : 0) + 1, sizeof(*added));
	if (!added) {
		snprintf(err, errlen, "out of memory");
		cfg_free(nw);
		return -1;
	}
	char why[512];
	if (resolve_added(ss, nw, added, err, errlen) != 0
	    || (tls_reload(nw, why, sizeof(why)) != 0
		&& snprintf(err, errlen, "TLS reload failed: %s", why) >= 0)) {
		for (int i = 0; i < n_added; i++)
			free((char *)added[i].name);
		free(added);
		cfg_free(nw);
		return -1;
	}
	commit(r, nw, added);
	free(added);
	return 0;
}

/* The console's answer: a WARNING notice per change not taken, then
 * RELOAD; or the error. */
static void answer(struct reload *r, struct admin_gather *g, int rc, const char *err)
{
	struct admin_out *o = &g->parts[0].rows;
	uint8_t buf[1024];
	for (int i = 0; rc == 0 && i < r->n_notes; i++) {
		struct proto_writer wr = proto_writer_init(buf, sizeof(buf));
		proto_build_error(&wr, "WARNING", "01000", r->notes[i]);
		buf[0] = 'N'; /* the same fields make a NoticeResponse */
		admin_out_bytes(o, buf, wr.len);
	}
	if (rc == 0) {
		admin_out_complete(o, "RELOAD");
	} else {
		struct proto_writer wr = proto_writer_init(buf, sizeof(buf));
		proto_build_error(&wr, "ERROR", "F0000", err);
		admin_out_bytes(o, buf, wr.len);
	}
	int sent = jobq_post(&r->q, g->origin, SESSION_MSG_ADMIN_DONE, g);
	if (sent < 0) /* the worker has ended: so has its client */
		log_warn("reload: the console's answer was not delivered: %d", sent);
}

/* A job came: the reload runs once for it and for all queued meanwhile. */
static void run(struct jobq *q, struct list *job)
{
	struct reload *r = container_of(q, struct reload, q);
	struct list asked;
	list_init(&asked);
	for (; job; job = jobq_pop(q))
		if (job != &r->hup) /* SIGHUP's stays off any list: it may come again */
			list_add_tail(&asked, job);

	/* systemd holds `systemctl reload` until READY=1 comes after a
	 * RELOADING=1 stamped no earlier than the reload began */
	struct timespec now;
	clock_gettime(CLOCK_MONOTONIC, &now);
	sd_notifyf(0, "RELOADING=1\nMONOTONIC_USEC=%llu",
		   (unsigned long long)now.tv_sec * 1000000ull
			   + (unsigned long long)now.tv_nsec / 1000);
	char err[1024];
	int rc = do_reload(r, err, sizeof(err));
	if (rc == 0)
		log_info("configuration reloaded from %s%s",
			 ((struct session *)r->rt->owner)->live->path,
			 r->n_notes ? " (some changes need a restart: see above)" : "");
	else
		log_error("reload refused, the configuration stays as it was: %s", err);
	sd_notify(0, "READY=1");
	struct list *n;
	while ((n = list_pop_head(&asked)))
		answer(r, list_entry(n, struct admin_gather, reload_link), rc, err);
}

void reload_ask(struct runtime *rt, struct admin_gather *g)
{
	struct reload *r = reload_of(rt);
	jobq_push(&r->q, g ? &g->reload_link : &r->hup);
}

int reload_start(struct runtime *rt, const struct cfg_overrides *ov, char *err, size_t errlen)
{
	struct session *ss = rt->owner;
	struct reload *r = calloc(1, sizeof(*r));
	if (!r) {
		snprintf(err, errlen, "out of memory");
		return -1;
	}
	r->rt = rt;
	r->ov = ov;
	list_init(&r->hup);
	if (jobq_start(&r->q, "reload", run, err, errlen) != 0) {
		free(r);
		return -1;
	}
	ss->reload = r;
	return 0;
}

void reload_stop(struct runtime *rt)
{
	struct reload *r = reload_of(rt);
	if (!r)
		return;
	jobq_stop(&r->q, NULL); /* the gathers left: their workers have ended */
	((struct session *)rt->owner)->reload = NULL;
	free(r);
}
