/* A helper thread fed by a queue: see jobq.h. */
#include "core/jobq.h"

#include <errno.h>
#include <stdio.h>
#include <string.h>

static void *jobq_main(void *arg)
{
	struct jobq *q = arg;
	int rc = io_uring_queue_init(8, &q->ring, 0);
	pthread_mutex_lock(&q->mu);
	q->ring_told = true;
	q->ring_rc = rc;
	pthread_cond_broadcast(&q->cv);
	pthread_mutex_unlock(&q->mu);
	if (rc < 0)
		return NULL;
	for (;;) {
		pthread_mutex_lock(&q->mu);
		while (!q->stop && list_empty(&q->queue))
			pthread_cond_wait(&q->cv, &q->mu);
		struct list *n = q->stop ? NULL : list_pop_head(&q->queue);
		pthread_mutex_unlock(&q->mu);
		if (!n)
			return NULL;
		q->run(q, n);
	}
}

int jobq_start(struct jobq *q, const char *name, jobq_run_fn run, char *err, size_t errlen)
{
	q->name = name;
	q->run = run;
	q->stop = q->ring_told = false;
	list_init(&q->queue);
	pthread_mutex_init(&q->mu, NULL);
	pthread_cond_init(&q->cv, NULL);
	int rc = pthread_create(&q->thread, NULL, jobq_main, q);
	if (rc != 0) {
		snprintf(err, errlen, "%s: cannot start its thread: %s", name, strerror(rc));
		goto fail;
	}
	pthread_mutex_lock(&q->mu);
	while (!q->ring_told)
		pthread_cond_wait(&q->cv, &q->mu);
	rc = q->ring_rc;
	pthread_mutex_unlock(&q->mu);
	if (rc < 0) {
		pthread_join(q->thread, NULL);
		snprintf(err, errlen, "%s: cannot set up a ring: %s", name, strerror(-rc));
		goto fail;
	}
	return 0;
fail:
	pthread_mutex_destroy(&q->mu);
	pthread_cond_destroy(&q->cv);
	return -1;
}

void jobq_stop(struct jobq *q, jobq_drop_fn drop)
{
	pthread_mutex_lock(&q->mu);
	q->stop = true;
	pthread_cond_signal(&q->cv);
	pthread_mutex_unlock(&q->mu);
	pthread_join(q->thread, NULL);
	struct list *n;
	while ((n = list_pop_head(&q->queue)))
		if (drop)
			drop(n);
	io_uring_queue_exit(&q->ring);
	pthread_mutex_destroy(&q->mu);
	pthread_cond_destroy(&q->cv);
}

void jobq_push(struct jobq *q, struct list *job)
{
	pthread_mutex_lock(&q->mu);
	if (!list_linked(job))
		list_add_tail(&q->queue, job);
	pthread_cond_signal(&q->cv);
	pthread_mutex_unlock(&q->mu);
}

struct list *jobq_pop(struct jobq *q)
{
	pthread_mutex_lock(&q->mu);
	struct list *n = q->stop ? NULL : list_pop_head(&q->queue);
	pthread_mutex_unlock(&q->mu);
	return n;
}

int jobq_post(struct jobq *q, struct worker *to, unsigned kind, void *ptr)
{
	pthread_mutex_lock(&q->mu);
	bool gone = q->stop;
	pthread_mutex_unlock(&q->mu);
	if (gone)
		return -ESHUTDOWN;
	return worker_post_from(&q->ring, to->ring_fd, kind, ptr, 0);
}
