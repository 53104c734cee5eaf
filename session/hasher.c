/* The auth hasher's thread (a core/jobq.h queue): see hasher.h. */
#include "session/hasher.h"

#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <openssl/crypto.h>

#include "core/jobq.h"
#include "session/session.h"

struct hasher_req {
	struct list link; /* queued in h->q until the thread takes it */
	struct worker *w; /* answers go to this worker */
	struct auth_scram_verifier v;
	bool mock;
	char *password;
	bool ok;             /* set by the thread */
	hasher_done_fn done; /* the worker's side */
	void *arg;
	/* set by the worker; the thread reads it only to skip the hash of a
	 * client that has left (the answer still goes back, to be freed) */
	_Atomic bool cancelled;
};

struct hasher {
	struct jobq q;
};

static void req_free(struct hasher_req *r)
{
	if (r->password) {
		OPENSSL_cleanse(r->password, strlen(r->password));
		free(r->password);
	}
	OPENSSL_cleanse(r, sizeof(*r));
	free(r);
}

/* PBKDF2 with the verifier's salt and count. */
static void hash(struct hasher_req *r)
{
	struct auth_secret s = { .kind = AUTH_SECRET_SCRAM, .has_scram = true, .scram = r->v };
	r->ok = auth_plain_check(&s, NULL, "", r->password) && !r->mock;
	OPENSSL_cleanse(&s, sizeof(s));
}

static void run(struct jobq *q, struct list *job)
{
	struct hasher_req *r = list_entry(job, struct hasher_req, link);
	if (!atomic_load_explicit(&r->cancelled, memory_order_relaxed))
		hash(r);
	if (jobq_post(q, r->w, SESSION_MSG_HASHED, r) < 0) {
		atomic_fetch_sub(&r->w->rt->in_transit, 1);
		req_free(r);
	}
}

struct hasher *hasher_start(char *err, size_t errlen)
{
	struct hasher *h = calloc(1, sizeof(*h));
	if (!h) {
		snprintf(err, errlen, "out of memory");
		return NULL;
	}
	if (jobq_start(&h->q, "auth hasher", run, err, errlen) != 0) {
		free(h);
		return NULL;
	}
	return h;
}

static void drop(struct list *job)
{
	req_free(list_entry(job, struct hasher_req, link));
}

void hasher_stop(struct hasher *h)
{
	if (!h)
		return;
	jobq_stop(&h->q, drop);
	free(h);
}

struct hasher_req *hasher_check(struct hasher *h, struct worker *w,
				const struct auth_scram_verifier *v, bool mock,
				const char *password, hasher_done_fn done, void *arg)
{
	if (!h)
		return NULL;
	struct hasher_req *r = calloc(1, sizeof(*r));
	if (!r || !(r->password = strdup(password))) {
		free(r);
		return NULL;
	}
	r->w = w;
	r->v = *v;
	r->mock = mock;
	r->done = done;
	r->arg = arg;
	/* in transit until delivered: a worker that is shutting down waits
	 * (briefly) for it, so the answer is not posted to a ring nobody reads */
	atomic_fetch_add(&w->rt->in_transit, 1);
	jobq_push(&h->q, &r->link);
	return r;
}

void hasher_cancel(struct hasher_req *r)
{
	atomic_store_explicit(&r->cancelled, true, memory_order_relaxed);
}

void hasher_deliver(struct auth_plain_cache *c, struct hasher_req *r)
{
	atomic_fetch_sub(&r->w->rt->in_transit, 1);
	if (r->ok)
		auth_plain_cache_put(c, r->password, &r->v);
	if (!atomic_load_explicit(&r->cancelled, memory_order_relaxed))
		r->done(r->arg, r->ok, r->password, &r->v);
	req_free(r);
}
