/* A helper thread fed by a queue: the thread that a slow or blocking job
 * (a reload, an auth_query lookup, a PBKDF2) runs on instead of a worker.
 * Any thread pushes a job under a lock held only to push or pop, never
 * while a job runs; the thread's answers go back to workers as ring
 * messages through a small ring of its own (worker_post_from). */
#ifndef PGCRAB_JOBQ_H
#define PGCRAB_JOBQ_H

#include <liburing.h>
#include <pthread.h>
#include <stdbool.h>
#include <stddef.h>

#include "core/list.h"
#include "core/worker.h"

struct jobq;

/* Runs one job, on the thread, without the lock. The job is off the queue
 * and the callee's; its owner is container_of(q, ...). */
typedef void (*jobq_run_fn)(struct jobq *q, struct list *job);
/* A job still queued when the thread stopped. */
typedef void (*jobq_drop_fn)(struct list *job);

/* Embedded in its owner; the fields are jobq.c's. */
struct jobq {
	const char *name; /* for errors */
	jobq_run_fn run;
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

/* Starts the thread and waits for its ring. 0, or -1 with err
 * ("NAME: cannot ..."), nothing left to stop. */
int jobq_start(struct jobq *q, const char *name, jobq_run_fn run, char *err, size_t errlen);
/* After the workers have ended (nobody pushes, nobody reads an answer):
 * stops the thread once its job in hand is done, hands each job still
 * queued to drop (if not NULL), frees the ring. */
void jobq_stop(struct jobq *q, jobq_drop_fn drop);

/* Queues job (zeroed or list_init'd before its first push) from any
 * thread. A job already queued stays where it is, once: a flag-like job,
 * such as SIGHUP's, may be pushed again and again. */
void jobq_push(struct jobq *q, struct list *job);
/* On the thread: the next job without waiting, or NULL (none, or stopped),
 * for a run that serves every job queued meanwhile at once. */
struct list *jobq_pop(struct jobq *q);
/* On the thread: posts ptr to worker to (worker_post_from). >= 0
 * delivered; < 0 not (ptr is still the caller's), -ESHUTDOWN if the
 * thread is stopping: the workers have ended, nobody reads their rings. */
int jobq_post(struct jobq *q, struct worker *to, unsigned kind, void *ptr)
	__attribute__((warn_unused_result));

#endif
