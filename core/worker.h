/* A worker thread: one io_uring loop that owns its clients and pools. */
#ifndef PGCRAB_WORKER_H
#define PGCRAB_WORKER_H

#include "core/types.h"

/* Sets up the ring in the calling thread and runs until shutdown completes. */
void *worker_main(void *arg);

/* worker_main's two halves, apart so a test (tests/fuzz/) can drive a worker
 * step by step from its own thread. worker_start sets up the ring, buffers,
 * lists and tick in the calling thread (0 or -errno); worker_run_once submits,
 * waits for one completion (at most *wait if wait is not NULL), dispatches
 * every completion ready and returns how many it handled. */
int worker_start(struct worker *w) __attribute__((warn_unused_result));
unsigned worker_run_once(struct worker *w, struct __kernel_timespec *wait);

/* io_uring_queue_init_params with the best flags this kernel accepts. */
int worker_ring_init(struct io_uring *ring, unsigned entries, unsigned cq_entries);

/* Posts a message to another thread's ring (IORING_OP_MSG_RING) from this
 * worker's ring. ptr rides in user_data, res in the completion's result. */
void worker_post(struct worker *from, struct worker *to, enum worker_msg kind, void *ptr, int res);
/* Wakes every other worker to look at the shards' starving marks. */
void worker_wake_others(struct worker *w);

static inline uint64_t worker_msg_user_data(enum worker_msg kind, void *ptr)
{
	return ud_pointer(UD_MSG, kind, ptr);
}

#endif
