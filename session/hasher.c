/* The auth hasher's thread: see hasher.h. A worker takes the queue's lock
 * only to push a request; the thread holds it only to pop one, never while
 * it hashes. Answers go back through a small ring of the thread's own. */
#include "session/hasher.h"

#include <liburing.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <openssl/crypto.h>

#include "core/list.h"
#include "core/worker.h"
#include "session/session.h"

struct hasher_req {
	struct list link; /* h->queue until the thread takes it */
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
	pthread_t thread;
	pthread_mutex_t mu;
	pthread_cond_t cv;
	struct list queue;
	bool stop;
	/* set up by the thread itself, as a worker's is: made on the main
	 * thread before an upgrade's sockets arrive, a ring there went with
	 * connections left in the listen backlog (t_takeover's pgbench -C) */
	struct io_uring ring;
	bool ring_told; /* ...which then says so: ring_rc */
	int ring_rc;
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

static void *hasher_main(void *arg)
{
	struct hasher *h = arg;
	int rc = io_uring_queue_init(8, &h->ring, 0);
	pthread_mutex_lock(&h->mu);
	h->ring_told = true;
	h->ring_rc = rc;
	pthread_cond_broadcast(&h->cv);
	pthread_mutex_unlock(&h->mu);
	if (rc < 0)
		return NULL;
	for (;;) {
		pthread_mutex_lock(&h->mu);
		while (!h->stop && list_empty(&h->queue))
			pthread_cond_wait(&h->cv, &h->mu);
		struct list *n = h->stop ? NULL : list_pop_head(&h->queue);
		pthread_mutex_unlock(&h->mu);
		if (!n)
			return NULL;
		struct hasher_req *r = list_entry(n, struct hasher_req, link);
		if (!atomic_load_explicit(&r->cancelled, memory_order_relaxed))
			hash(r);
		/* stopped: the workers have ended, nobody reads their rings */
		pthread_mutex_lock(&h->mu);
		bool gone = h->stop;
		pthread_mutex_unlock(&h->mu);
		if (gone
		    || worker_post_from(&h->ring, r->w->ring_fd, SESSION_MSG_HASHED, r, 0) < 0) {
			atomic_fetch_sub(&r->w->rt->in_transit, 1);
			req_free(r);
		}
	}
}

struct hasher *hasher_start(char *err, size_t errlen)
{
	struct hasher *h = calloc(1, sizeof(*h));
	if (!h) {
		snprintf(err, errlen, "out of memory");
		return NULL;
	}
	list_init(&h->queue);
	pthread_mutex_init(&h->mu, NULL);
	pthread_cond_init(&h->cv, NULL);
	int rc = pthread_create(&h->thread, NULL, hasher_main, h);
	if (rc != 0) {
		snprintf(err, errlen, "auth hasher: cannot start its thread: %s", strerror(rc));
		free(h);
		return NULL;
	}
	pthread_mutex_lock(&h->mu);
	while (!h->ring_told)
		pthread_cond_wait(&h->cv, &h->mu);
	rc = h->ring_rc;
	pthread_mutex_unlock(&h->mu);
	if (rc < 0) {
		pthread_join(h->thread, NULL);
		snprintf(err, errlen, "auth hasher: cannot set up a ring: %s", strerror(-rc));
		free(h);
		return NULL;
	}
	return h;
}

void hasher_stop(struct hasher *h)
{
	if (!h)
		return;
	pthread_mutex_lock(&h->mu);
	h->stop = true;
	pthread_cond_signal(&h->cv);
	pthread_mutex_unlock(&h->mu);
	pthread_join(h->thread, NULL);
	struct list *n;
	while ((n = list_pop_head(&h->queue)))
		req_free(list_entry(n, struct hasher_req, link));
	io_uring_queue_exit(&h->ring);
	pthread_mutex_destroy(&h->mu);
	pthread_cond_destroy(&h->cv);
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
	pthread_mutex_lock(&h->mu);
	list_add_tail(&h->queue, &r->link);
	pthread_cond_signal(&h->cv);
	pthread_mutex_unlock(&h->mu);
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
