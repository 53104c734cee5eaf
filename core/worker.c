/* The worker loop: one io_uring per thread, one submit-and-wait per
 * iteration, every completion drained and dispatched by its op. */
#include "core/worker.h"

#include <errno.h>
#include <malloc.h>
#include <pthread.h>
#include <sched.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "core/cancel.h"
#include "core/client.h"
#include "core/conn.h"
#include "core/list.h"
#include "core/log.h"
#include "pool/pool.h"
#include "pool/server.h"

#define RING_ENTRIES 4096
#define CQ_ENTRIES   16384
#define TICK_MS      100
#define BATCH        256

static uint64_t now_ms(void)
{
	struct timespec ts;
	clock_gettime(CLOCK_MONOTONIC_COARSE, &ts);
	return (uint64_t)ts.tv_sec * 1000 + (uint64_t)ts.tv_nsec / 1000000;
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

void worker_post(struct worker *from, struct worker *to, enum worker_msg kind, void *ptr, int res)
{
	struct io_uring_sqe *sqe = worker_sqe(from);
	io_uring_prep_msg_ring(sqe, to->ring_fd, (unsigned)res, worker_msg_user_data(kind, ptr), 0);
	io_uring_sqe_set_data64(sqe, ud_pointer(UD_MSG_DONE, kind, ptr));
}

void worker_wake_others(struct worker *w)
{
	for (int i = 0; i < w->rt->n_workers; i++)
		if (i != w->id)
			worker_post(w, &w->rt->workers[i], MSG_WAKE, NULL, 0);
}

static void close_servers(struct worker *w)
{
	for (int i = 0; i < w->rt->n_shards; i++) {
		struct pool *p = &w->pools[i];
		for (struct list *n = p->servers.next, *next; n != &p->servers; n = next) {
			next = n->next;
			server_close(list_entry(n, struct server, all), "shutting down");
		}
	}
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

static void worker_tick(struct worker *w)
{
	trim_after_peak(w);
	for (struct list *n = w->clients.next, *next; n != &w->clients; n = next) {
		next = n->next;
		client_tick(list_entry(n, struct client, link));
	}
	for (int i = 0; i < w->rt->n_shards; i++)
		pool_tick(&w->pools[i]);
	if (!w->stopping)
		return;
	if (w->now_ms >= w->stop_deadline_ms) {
		/* shutdown_timeout passed: transactions still open are cut */
		for (struct list *n = w->clients.next; n != &w->clients; n = n->next) {
			struct client *cl = list_entry(n, struct client, link);
			if (!cl->c.closing)
				client_fail(cl, "FATAL", "57P01", "pgcrab is shutting down");
		}
	}
	if (list_empty(&w->clients)) {
		close_servers(w);
		w->done = true;
	}
}

static void on_msg(struct worker *w, enum worker_msg kind, void *ptr, int res)
{
	switch (kind) {
	case MSG_NEW_CLIENT:
		client_accept(w, res);
		break;
	case MSG_SERVER:
		pool_adopt(w, ptr);
		break;
	case MSG_WAKE:
		for (int i = 0; i < w->rt->n_shards; i++)
			pool_offer_idle(&w->pools[i]);
		break;
	case MSG_CANCEL:
		cancel_deliver(w, (int32_t)(uint32_t)(uintptr_t)ptr, res);
		break;
	case MSG_SHUTDOWN:
		if (!w->stopping) {
			w->stopping = true;
			w->stop_deadline_ms = w->now_ms + w->rt->cfg->shutdown_timeout_ms;
			worker_tick(w);
		}
		break;
	}
}

static void dispatch(struct worker *w, uint64_t ud, int res, unsigned flags)
{
	struct ud_fields f = ud_decode(ud);
	switch (f.op) {
	case UD_TICK:
		if (!w->done)
			worker_tick(w);
		arm_tick(w);
		return;
	case UD_MSG:
		on_msg(w, (enum worker_msg)f.kind, ud_payload_pointer(f), res);
		return;
	case UD_MSG_DONE:
		if (f.kind == MSG_SERVER)
			server_on_donate_sent(ud_payload_pointer(f), res);
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
		if (!conn_on_recv(c, &res, flags))
			break;
		if (c->kind == CONN_CLIENT)
			client_on_recv(container_of_client(c), res);
		else if (c->kind == CONN_SERVER)
			server_on_recv(container_of_server(c), res);
		else
			cancel_on_recv(c, res);
		break;
	case UD_SEND:
		conn_on_send(c, res);
		break;
	case UD_POLL:
		c->poll_armed = false;
		if (c->kind == CONN_CLIENT)
			client_on_poll(container_of_client(c), res);
		break;
	case UD_CONNECT:
		c->connect_armed = false;
		if (c->kind == CONN_SERVER)
			server_on_connect(container_of_server(c), res);
		else
			cancel_on_connect(c, res);
		break;
	case UD_CLOSE:
		conn_on_close(c);
		break;
	default:
		break;
	}
	conn_put(c);
}

/* Donated servers leave only here, after every completion of the batch is
 * handled, so nothing on this thread touches them once the other worker may. */
static void flush_outbox(struct worker *w)
{
	struct list *n;
	while ((n = list_pop_head(&w->outbox))) {
		struct server *s = list_entry(n, struct server, link);
		if (s->c.refs != 0 || s->c.rx_start != s->c.rx_end) {
			server_close(s, "busy when donated");
			continue;
		}
		conn_rx_release(&s->c); /* our ring's buffer stays here */
		w->live--; /* counted by the worker that adopts it */
		atomic_fetch_add(&w->rt->servers_in_transit, 1);
		worker_post(w, &w->rt->workers[s->donate_to], MSG_SERVER, s, 0);
	}
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
	struct runtime *rt = w->rt;
	int r = worker_ring_init(&w->ring, RING_ENTRIES, CQ_ENTRIES);
	if (r < 0) {
		log_error("worker %d: cannot set up io_uring: %s", w->id, strerror(-r));
		w->ring_fd = -1;
		return r;
	}
	w->ring_fd = w->ring.ring_fd;
	if (rt->cfg->cpu_affinity == CFG_AFFINITY_WORKERS)
		worker_pin(w);
	r = conn_buf_ring_init(w);
	if (r < 0)
		log_warn("worker %d: no provided buffer ring (%s): each connection reads into its own buffer",
			 w->id, strerror(-r));
	w->now_ms = now_ms();
	w->tick.tv_sec = 0;
	w->tick.tv_nsec = TICK_MS * 1000000L;
	list_init(&w->clients);
	list_init(&w->outbox);
	for (int i = 0; i < rt->n_shards; i++)
		pool_tick(&w->pools[i]); /* warm-up: open min_connections now */
	arm_tick(w);
	return 0;
}

unsigned worker_run_once(struct worker *w, struct __kernel_timespec *wait)
{
	struct { uint64_t ud; int res; unsigned flags; } batch[BATCH];
	struct io_uring_cqe *cqe;
	int r = wait ? io_uring_submit_and_wait_timeout(&w->ring, &cqe, 1, wait, NULL)
		     : io_uring_submit_and_wait(&w->ring, 1);
	if (r < 0 && r != -EINTR && r != -EAGAIN && r != -EBUSY && r != -ETIME)
		log_error("worker %d: io_uring_submit_and_wait: %s", w->id, strerror(-r));
	w->now_ms = now_ms();
	unsigned handled = 0;
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
	flush_outbox(w);
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
			if ((w->live == 0 && atomic_load(&rt->servers_in_transit) == 0)
			    || w->now_ms >= drain_until)
				break;
		}
		worker_run_once(w, NULL);
	}
	io_uring_submit(&w->ring);
	if (w->live == 0)
		conn_buf_ring_free(w); /* else a late completion may still write into it */
	atomic_fetch_add(&rt->workers_done, 1);
	return NULL;
}
