/* The worker loop: one io_uring per thread, one submit-and-wait per
 * iteration, every completion drained and dispatched by its op. */
#include "core/worker.h"

#include <errno.h>
#include <malloc.h>
#include <pthread.h>
#include <sched.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <time.h>

#include "core/conn.h"
#include "core/log.h"
#include "core/worker_accept.h"

#define RING_ENTRIES 4096
#define CQ_ENTRIES   16384
#define BATCH        256

static uint64_t now_ms(void)
{
	struct timespec ts;
	clock_gettime(CLOCK_MONOTONIC_COARSE, &ts);
	return (uint64_t)ts.tv_sec * 1000 + (uint64_t)ts.tv_nsec / 1000000;
}

/* The fine clock (vDSO, no syscall): twice per loop iteration, for the
 * loop's busy and wait time and the microseconds of the relay's timings. */
static uint64_t now_ns(void)
{
	struct timespec ts;
	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (uint64_t)ts.tv_sec * 1000000000 + (uint64_t)ts.tv_nsec;
}

/* Set up in the owning thread: SINGLE_ISSUER|DEFER_TASKRUN runs completion
 * work only when we wait, which suits one loop per thread; older kernels
 * refuse the flags, so fall back rather than fail. */
int worker_ring_init(struct io_uring *ring, unsigned entries, unsigned cq_entries)
{
	struct io_uring_params p;
	const unsigned tries[] = {
		IORING_SETUP_SINGLE_ISSUER | IORING_SETUP_DEFER_TASKRUN,
		IORING_SETUP_COOP_TASKRUN,
		0,
	};
	int r = -EINVAL;
	for (size_t i = 0; i < sizeof(tries) / sizeof(tries[0]); i++) {
		memset(&p, 0, sizeof(p));
		p.flags = tries[i] | (cq_entries ? IORING_SETUP_CQSIZE : 0);
		p.cq_entries = cq_entries;
		r = io_uring_queue_init_params(entries, ring, &p);
		if (r == 0) {
			/* saves a file lookup on every io_uring_enter; optional */
			(void)io_uring_register_ring_fd(ring);
			return 0;
		}
	}
	return r;
}

static void arm_tick(struct worker *w)
{
	struct io_uring_sqe *sqe = worker_sqe(w);
	io_uring_prep_timeout(sqe, &w->tick, 0, 0);
	io_uring_sqe_set_data64(sqe, ud_encode(UD_TICK, 0, 0));
}

/* Completions taken off the ring to make room (see make_room), dispatched
 * at the start of the next batch, in order. */
struct backlog_entry {
	uint64_t ud;
	int res;
	unsigned flags;
};
static __thread struct backlog_entry *backlog;
static __thread unsigned backlog_n, backlog_cap;

/* The kernel takes no more submissions while completions it could not post
 * wait (-EBUSY) or it is short of memory (-EAGAIN): read the completions
 * into the backlog so it can post the rest, and try again. */
static void make_room(struct worker *w)
{
	struct io_uring_cqe *cqe;
	while (io_uring_peek_cqe(&w->ring, &cqe) == 0) {
		if (backlog_n == backlog_cap) {
			unsigned cap = backlog_cap ? backlog_cap * 2 : 1024;
			struct backlog_entry *b = realloc(backlog, cap * sizeof(*b));
			if (!b)
				break; /* nothing left to do but wait for the kernel */
			backlog = b;
			backlog_cap = cap;
		}
		backlog[backlog_n++] = (struct backlog_entry){ cqe->user_data, cqe->res,
							       cqe->flags };
		io_uring_cqe_seen(&w->ring, cqe);
	}
	io_uring_get_events(&w->ring);
}

/* Submits what is queued; on a full completion queue, makes room and tries
 * again rather than spinning on the same error. */
static void submit_queued(struct worker *w)
{
	for (int tries = 0;; tries++) {
		int r = io_uring_submit(&w->ring);
		if (r > 0)
			STATS_ADD(w->stats.ring_submissions, (uint64_t)r);
		if (r >= 0 || r == -EINTR)
			return;
		if (r != -EBUSY && r != -EAGAIN) {
			log_error("worker %d: io_uring_submit: %s", w->id, strerror(-r));
			return;
		}
		make_room(w);
		if (tries == 1000) {
			log_error("worker %d: io_uring_submit keeps failing: %s", w->id,
				  strerror(-r));
			tries = 0;
		}
	}
}

void worker_sqes(struct worker *w, unsigned n)
{
	while (io_uring_sq_space_left(&w->ring) < n)
		submit_queued(w);
}

struct io_uring_sqe *worker_sqe(struct worker *w)
{
	struct io_uring_sqe *sqe;
	while (!(sqe = io_uring_get_sqe(&w->ring)))
		submit_queued(w);
	return sqe;
}

void worker_post(struct worker *from, struct worker *to, unsigned kind, void *ptr, int res)
{
	struct io_uring_sqe *sqe = worker_sqe(from);
	io_uring_prep_msg_ring(sqe, to->ring_fd, (unsigned)res, worker_msg_user_data(kind, ptr), 0);
	io_uring_sqe_set_data64(sqe, ud_pointer(UD_MSG_DONE, kind, ptr));
}

void worker_sendmsg(struct worker *w, int fd, const struct msghdr *msg, void *ptr)
{
	struct io_uring_sqe *sqe = worker_sqe(w);
	io_uring_prep_sendmsg(sqe, fd, msg, MSG_NOSIGNAL);
	io_uring_sqe_set_data64(sqe, ud_pointer(UD_SENDMSG, 0, ptr));
}

int worker_post_from(struct io_uring *ring, int ring_fd, unsigned kind, void *ptr, int res)
{
	struct io_uring_sqe *sqe = io_uring_get_sqe(ring);
	struct io_uring_cqe *cqe;
	if (!sqe)
		return -EBUSY;
	io_uring_prep_msg_ring(sqe, ring_fd, (unsigned)res, worker_msg_user_data(kind, ptr), 0);
	io_uring_sqe_set_data64(sqe, ud_encode(UD_NONE, 0, 0));
	int r = io_uring_submit_and_wait(ring, 1);
	if (r < 0)
		return r;
	/* submitted: a completion we cannot read counts as delivered (the
	 * caller then leaks ptr rather than freeing what the target may hold) */
	do
		r = io_uring_wait_cqe(ring, &cqe);
	while (r == -EINTR);
	if (r < 0)
		return 0;
	r = cqe->res;
	io_uring_cqe_seen(ring, cqe);
	return r;
}

int worker_publish_config(struct runtime *rt, struct cfg *cfg)
{
	/* from any thread: a ring of its own, used once */
	struct io_uring ring;
	int r = io_uring_queue_init(8, &ring, 0);
	if (r < 0)
		return r;
	for (int i = 0; i < rt->n_workers && r >= 0; i++) {
		r = worker_post_from(&ring, rt->workers[i].ring_fd, WORKER_MSG_CONFIG, cfg_ref(cfg),
				     0);
		if (r < 0)
			cfg_unref(cfg); /* not delivered: the worker never saw it */
	}
	io_uring_queue_exit(&ring);
	return r < 0 ? r : 0;
}

void worker_finish(struct worker *w)
{
	w->done = true;
}

/* After a crowd has left, hand its freed memory (receive buffers, client
 * structs) back to the system: malloc keeps it otherwise, and a pooler's
 * RSS should follow its clients down as well as up. Rare and cheap. */
#define TRIM_AFTER_FREED 256

static void trim_after_peak(struct worker *w)
{
	if (w->live > w->live_peak)
		w->live_peak = w->live;
	if (w->live_peak - w->live >= TRIM_AFTER_FREED) {
		malloc_trim(0);
		w->live_peak = w->live;
	}
}

static void on_msg(struct worker *w, unsigned kind, void *ptr, int res)
{
	switch (kind) {
	case WORKER_MSG_NEW_CONN:
		w->hooks->on_new_conn(w, res);
		break;
	case WORKER_MSG_LISTEN:
		worker_accept_begin(w);
		break;
	case WORKER_MSG_SHUTDOWN:
		if (!w->stopping) {
			w->stopping = true;
			worker_accept_stop(w);
			w->stop_deadline_ms = atomic_load(&w->rt->wait_for_clients)
				? UINT64_MAX
				: w->now_ms + w->cfg->shutdown_timeout_ms;
			w->hooks->on_stop(w);
		}
		break;
	case WORKER_MSG_CONFIG: {
		struct cfg *old = w->cfg;
		w->cfg = ptr;
		if (w->hooks->on_config)
			w->hooks->on_config(w, old);
		cfg_unref(old);
		break;
	}
	default:
		w->hooks->on_msg(w, kind, ptr, res);
		break;
	}
}

static void dispatch(struct worker *w, uint64_t ud, int res, unsigned flags)
{
	struct ud_fields f = ud_decode(ud);
	switch (f.op) {
	case UD_TICK:
		if (!w->done) {
			trim_after_peak(w);
			w->hooks->on_tick(w);
		}
		arm_tick(w);
		return;
	case UD_MSG:
		on_msg(w, f.kind, ud_payload_pointer(f), res);
		return;
	case UD_ACCEPT:
		worker_accept_on_cqe(w, (unsigned)f.payload, f.kind == 1, res);
		return;
	case UD_MSG_DONE:
		if (f.kind >= WORKER_MSG_OWNER && w->hooks->on_msg_done)
			w->hooks->on_msg_done(w, f.kind, ud_payload_pointer(f), res);
		return;
	case UD_SENDMSG:
		if (w->hooks->on_sendmsg)
			w->hooks->on_sendmsg(w, ud_payload_pointer(f), res);
		return;
	case UD_RECV:
	case UD_SEND:
	case UD_CONNECT:
	case UD_CLOSE:
	case UD_POLL:
		break;
	default:
		return;
	}
	struct conn *c = ud_payload_pointer(f);
	switch (f.op) {
	case UD_RECV:
		if (conn_on_recv(c, &res, flags))
			c->ops->on_recv(c, res);
		break;
	case UD_SEND:
		conn_on_send(c, res);
		break;
	case UD_POLL:
		c->poll_armed = false;
		if (c->ops->on_poll)
			c->ops->on_poll(c, res);
		break;
	case UD_CONNECT:
		c->connect_armed = false;
		if (c->ops->on_connect)
			c->ops->on_connect(c, res);
		break;
	case UD_CLOSE:
		conn_on_close(c);
		break;
	default:
		break;
	}
	conn_put(c);
}

/* Thread per core: worker i on the i-th CPU this process may use, so its
 * ring, connections and caches stay on one core. Before any client comes. */
static void worker_pin(struct worker *w)
{
	cpu_set_t allowed, one;
	if (sched_getaffinity(0, sizeof(allowed), &allowed) != 0 || CPU_COUNT(&allowed) == 0)
		return;
	int nth = w->id % CPU_COUNT(&allowed);
	for (int cpu = 0; cpu < CPU_SETSIZE; cpu++) {
		if (!CPU_ISSET(cpu, &allowed) || nth-- > 0)
			continue;
		CPU_ZERO(&one);
		CPU_SET(cpu, &one);
		int r = pthread_setaffinity_np(pthread_self(), sizeof(one), &one);
		if (r != 0)
			log_warn("worker %d: cannot pin to CPU %d: %s", w->id, cpu, strerror(r));
		else
			log_info("worker %d runs on CPU %d", w->id, cpu);
		return;
	}
}

int worker_start(struct worker *w)
{
	int r = worker_ring_init(&w->ring, RING_ENTRIES, CQ_ENTRIES);
	if (r < 0) {
		log_error("worker %d: cannot set up io_uring: %s", w->id, strerror(-r));
		w->ring_fd = -1;
		return r;
	}
	w->ring_fd = w->ring.ring_fd;
	if (w->cfg->cpu_affinity == CFG_AFFINITY_WORKERS)
		worker_pin(w);
	r = conn_buf_ring_init(w);
	if (r < 0)
		log_warn("worker %d: no provided buffer ring (%s): each connection reads into its own buffer",
			 w->id, strerror(-r));
	w->now_ms = now_ms();
	timer_wheel_init(&w->timers, w->now_ms, WORKER_TICK_MS);
	w->tick.tv_sec = 0;
	w->tick.tv_nsec = WORKER_TICK_MS * 1000000L;
	if (w->hooks->on_start)
		w->hooks->on_start(w);
	arm_tick(w);
	return 0;
}

unsigned worker_run_once(struct worker *w, struct __kernel_timespec *wait)
{
	struct backlog_entry batch[BATCH];
	struct io_uring_cqe *cqe;
	/* busy: from the end of the last wait to the start of this one (the
	 * kernel's task work, run in the wait under DEFER_TASKRUN, counts as
	 * waiting) */
	uint64_t t0 = now_ns();
	if (w->loop_mark_ns)
		STATS_ADD(w->stats.loop_busy_ns, t0 - w->loop_mark_ns);
	int r = wait ? io_uring_submit_and_wait_timeout(&w->ring, &cqe, 1, wait, NULL)
		     : io_uring_submit_and_wait(&w->ring, 1);
	uint64_t t1 = now_ns();
	STATS_ADD(w->stats.loop_wait_ns, t1 - t0);
	w->loop_mark_ns = t1;
	w->now_us = t1 / 1000;
	if (r > 0 && !wait)
		STATS_ADD(w->stats.ring_submissions, (uint64_t)r);
	if (r == -EBUSY || r == -EAGAIN)
		make_room(w);
	else if (r < 0 && r != -EINTR && r != -ETIME)
		log_error("worker %d: io_uring_submit_and_wait: %s", w->id, strerror(-r));
	w->now_ms = now_ms();
	unsigned handled = 0;
	/* what make_room took off the ring came first */
	for (unsigned i = 0; i < backlog_n; i++)
		dispatch(w, backlog[i].ud, backlog[i].res, backlog[i].flags);
	handled += backlog_n;
	backlog_n = 0;
	timer_wheel_advance(&w->timers, w->now_ms);
	for (;;) {
		struct io_uring_cqe *cqes[BATCH];
		unsigned n = io_uring_peek_batch_cqe(&w->ring, cqes, BATCH);
		if (n == 0)
			break;
		for (unsigned i = 0; i < n; i++) {
			batch[i].ud = cqes[i]->user_data;
			batch[i].res = cqes[i]->res;
			batch[i].flags = cqes[i]->flags;
		}
		io_uring_cq_advance(&w->ring, n);
		for (unsigned i = 0; i < n; i++)
			dispatch(w, batch[i].ud, batch[i].res, batch[i].flags);
		handled += n;
	}
	if (w->hooks->after_batch)
		w->hooks->after_batch(w);
	worker_accept_balance(w);
	STATS_ADD(w->stats.ring_completions, handled);
	STATS_INC(w->stats.loop_iterations);
	return handled;
}

void *worker_main(void *arg)
{
	struct worker *w = arg;
	struct runtime *rt = w->rt;
	if (worker_start(w) < 0) {
		pthread_barrier_wait(&rt->ready);
		return NULL;
	}
	pthread_barrier_wait(&rt->ready);

	/* after shutdown, wait (briefly) for the closes in flight so every
	 * connection is freed */
	uint64_t drain_until = 0;
	for (;;) {
		if (w->done) {
			if (!drain_until)
				drain_until = w->now_ms + 2000;
			if ((w->live == 0 && atomic_load(&rt->in_transit) == 0)
			    || w->now_ms >= drain_until)
				break;
		}
		worker_run_once(w, NULL);
	}
	io_uring_submit(&w->ring);
	if (w->live == 0)
		conn_buf_ring_free(w); /* else a late completion may still write into it */
	if (w->hooks->on_exit)
		w->hooks->on_exit(w);
	cfg_unref(w->cfg);
	w->cfg = NULL;
	free(backlog);
	backlog = NULL;
	backlog_n = backlog_cap = 0;
	atomic_fetch_add(&rt->workers_done, 1);
	return NULL;
}
