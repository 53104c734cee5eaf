/* The runtime: worker threads, one io_uring loop each, and the shared
 * runtime they belong to. A worker runs connections (core/conn.h) and
 * timers; what the connections are for belongs to its owner (the session
 * layer), which registers hooks and keeps its own per-worker state. */
#ifndef PGCRAB_WORKER_H
#define PGCRAB_WORKER_H

#include <liburing.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdbool.h>
#include <stdint.h>

#include "config/cfg.h"
#include "core/timer.h"
#include "core/uring_data.h"
#include "stats/stats.h"

#define MAX_WORKERS 256

/* Kinds of cross-thread messages (UD_MSG). The runtime's own come first;
 * the owner's start at WORKER_MSG_OWNER and reach its on_msg hook. */
enum worker_msg {
	WORKER_MSG_NEW_CONN = 1, /* res: an accepted fd */
	WORKER_MSG_SHUTDOWN = 2,
	WORKER_MSG_CONFIG = 3, /* payload: a struct cfg * whose reference is the worker's now */
	WORKER_MSG_LISTEN = 4, /* rt->listen_fds are set: accept clients (core/worker_accept.h) */
	WORKER_MSG_OWNER = 8,
};

struct worker;

struct worker_hooks {
	/* in the worker's thread, its ring ready, before the loop */
	void (*on_start)(struct worker *w);
	/* an accepted client socket handed to this worker */
	void (*on_new_conn)(struct worker *w, int fd);
	/* a message of the owner's (kind >= WORKER_MSG_OWNER) */
	void (*on_msg)(struct worker *w, unsigned kind, void *ptr, int res);
	/* our worker_post of an owner's message completed (res < 0: not delivered) */
	void (*on_msg_done)(struct worker *w, unsigned kind, void *ptr, int res);
	/* every WORKER_TICK_MS, after the due timers fired */
	void (*on_tick)(struct worker *w);
	/* after each batch of completions */
	void (*after_batch)(struct worker *w);
	/* shutdown was asked for (w->stopping is set, w->stop_deadline_ms too) */
	void (*on_stop)(struct worker *w);
	/* a new configuration snapshot is in w->cfg; the old one is let go after */
	void (*on_config)(struct worker *w, struct cfg *old);
	/* a worker_sendmsg completed: bytes sent, or -errno */
	void (*on_sendmsg)(struct worker *w, void *ptr, int res);
	/* the loop has ended, every connection freed: last words in the thread */
	void (*on_exit)(struct worker *w);
};

struct runtime;

struct worker {
	int id;
	struct runtime *rt;
	struct io_uring ring;
	int ring_fd;
	pthread_t thread;
	const struct worker_hooks *hooks;
	void *owner; /* the owner's per-worker state */
	/* this worker's configuration snapshot: it reads only this one, and
	 * holds a reference until the next arrives */
	struct cfg *cfg;
	struct io_uring_buf_ring *buf_ring; /* provided receive buffers, or NULL (old kernel) */
	uint8_t *bufs; /* CONN_BUF_COUNT * CONN_BUF_SIZE bytes behind buf_ring */
	struct timer_wheel timers;
	uint64_t now_ms;
	bool stopping; /* shutdown requested */
	bool done;     /* shutdown finished: the loop ends once live is 0 */
	int live;      /* connections not yet freed */
	int live_peak; /* most live since memory was last trimmed */
	uint64_t stop_deadline_ms;
	uint64_t next_id;
	struct __kernel_timespec tick;
	/* CLOCK_MONOTONIC when this batch of completions began (the relay's
	 * timings), and in ns when the loop last went to wait or woke */
	uint64_t now_us;
	uint64_t loop_mark_ns;
	/* transactions ended, written by this worker only, read by the
	 * acceptor for systemd's STATUS= line */
	_Atomic uint64_t n_transactions;
	/* this worker's counters and histograms, written by it alone (stats/) */
	struct stats_worker stats;
	/* core/worker_accept.c: accepting wanted, listeners with an accept in
	 * the ring (by bit), accepts given to the acceptor until then (out of
	 * descriptors), begun, counted quiet at shutdown; the 53300 answer */
	bool accepting;
	bool accept_listening;
	bool accept_quiet;
	uint64_t accept_armed;
	uint64_t accept_retry_ms;
	unsigned accept_reject_len;
	uint8_t accept_reject[96];
	/* written by other threads: own cache line */
	_Alignas(64) _Atomic int n_clients;
};

struct runtime {
	struct worker *workers;
	int n_workers;
	struct cfg *cfg;             /* the acceptor's snapshot (the first) */
	_Atomic int max_client_conn; /* the newest snapshot's: a reload sets it */
	void *owner;                 /* the owner's shared state */
	_Atomic int workers_done;
	_Atomic bool upgrading; /* the shutdown is an online upgrade's drain */
	/* SHUTDOWN WAIT_FOR_CLIENTS: clients are served on and none is
	 * closed; the process ends when the last one leaves */
	_Atomic bool wait_for_clients;
	_Atomic int in_transit; /* objects posted between workers, not yet adopted */
	/* an online upgrade's connection to the new process (SOCK_SEQPACKET),
	 * where idle clients are handed over; -1: none */
	_Atomic int handover_fd;
	/* in an upgrade's new process, the connection to the old one while it
	 * lives: cancels for its clients go there; -1: none */
	_Atomic int predecessor_fd;
	pthread_barrier_t ready; /* workers' rings are set up */
	/* the listening sockets the workers accept on (set by the acceptor
	 * before WORKER_MSG_LISTEN), how many workers accept now, how many
	 * have stopped for good, and where a worker out of descriptors hands a
	 * listener to (-1: no acceptor yet) */
	const int *listen_fds;
	int n_listen;
	_Atomic int accepting;
	_Atomic int accept_quiet;
	_Atomic int acceptor_ring_fd;
};

#define WORKER_TICK_MS 100

/* Sets up the ring in the calling thread and runs until shutdown completes. */
void *worker_main(void *arg);

/* worker_main's two halves, apart so a test (tests/fuzz/) can drive a worker
 * step by step from its own thread. worker_start sets up the ring, buffers,
 * timers and tick in the calling thread (0 or -errno); worker_run_once
 * submits, waits for one completion (at most *wait if wait is not NULL),
 * dispatches every completion ready and returns how many it handled. */
int worker_start(struct worker *w) __attribute__((warn_unused_result));
unsigned worker_run_once(struct worker *w, struct __kernel_timespec *wait);

/* io_uring_queue_init_params with the best flags this kernel accepts. */
int worker_ring_init(struct io_uring *ring, unsigned entries, unsigned cq_entries);

/* An SQE from the worker's ring, submitting to make room when it is full.
 * A chain of n linked SQEs must come from one worker_sqes(w, n) call so
 * that a submission cannot split it. */
struct io_uring_sqe *worker_sqe(struct worker *w);
void worker_sqes(struct worker *w, unsigned n);

/* Posts a message to another thread's ring (IORING_OP_MSG_RING) from this
 * worker's ring. ptr rides in user_data, res in the completion's result. */
void worker_post(struct worker *from, struct worker *to, unsigned kind, void *ptr, int res);
/* The same from a thread that is not a worker (reload, auth_query, the
 * hasher), through a small ring of its own: submits and waits for the
 * post's completion. Its result (>= 0: delivered), or -errno (the target
 * ring is gone or ours is full: not delivered, ptr is still the caller's). */
int worker_post_from(struct io_uring *ring, int ring_fd, unsigned kind, void *ptr, int res)
	__attribute__((warn_unused_result));
/* Sends msg on fd (another process's socket) through the worker's ring;
 * msg and what it points to must live until on_sendmsg(ptr) is called. */
struct msghdr;
void worker_sendmsg(struct worker *w, int fd, const struct msghdr *msg, void *ptr);
/* Hands every worker a new configuration snapshot, taking a reference for
 * each (from any thread: it uses a ring of its own). 0 or -errno. */
int worker_publish_config(struct runtime *rt, struct cfg *cfg);

/* Shutdown: every WORKER_TICK_MS the owner's on_tick decides; once it
 * calls worker_finish the loop ends as soon as no connection is left. */
void worker_finish(struct worker *w);

static inline uint64_t worker_msg_user_data(unsigned kind, void *ptr)
{
	return ud_pointer(UD_MSG, kind, ptr);
}

#endif
