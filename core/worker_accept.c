#include "core/worker_accept.h"

#include <errno.h>
#include <limits.h>
#include <string.h>
#include <sys/socket.h>

#include "core/log.h"
#include "proto/proto.h"

/* A worker stands back once it holds this many clients more than the
 * least loaded one, and steps in again at STEP_IN more or fewer: a band,
 * so that clients coming and going do not flip it at every login. */
#define STAND_BACK 3
#define STEP_IN    1
#ifndef IORING_ACCEPT_DONTWAIT
#define IORING_ACCEPT_DONTWAIT (1U << 1) /* Linux 6.10; older ones say -EINVAL */
#endif
/* out of file descriptors: leave the listener to the acceptor this long */
#define RETRY_MS 100

static void note_quiet(struct worker *w);

static void arm(struct worker *w, unsigned i)
{
	struct io_uring_sqe *sqe = worker_sqe(w);
	io_uring_prep_accept(sqe, w->rt->listen_fds[i], NULL, NULL, SOCK_CLOEXEC);
	io_uring_sqe_set_data64(sqe, ud_encode(UD_ACCEPT, 0, i));
	w->accept_armed |= 1ull << i;
}

static void arm_drain(struct worker *w, unsigned i)
{
	struct io_uring_sqe *sqe = worker_sqe(w);
	io_uring_prep_accept(sqe, w->rt->listen_fds[i], NULL, NULL, SOCK_CLOEXEC);
	sqe->ioprio |= IORING_ACCEPT_DONTWAIT;
	io_uring_sqe_set_data64(sqe, ud_encode(UD_ACCEPT, 1, i));
	w->accept_armed |= 1ull << i;
}

static void arm_all(struct worker *w)
{
	for (int i = 0; i < w->rt->n_listen; i++)
		if (!(w->accept_armed & 1ull << i))
			arm(w, (unsigned)i);
}

/* Only at shutdown. A cancelled accept may have taken the wake-up of a
 * client, which would then wait in the queue for the next client to come
 * (an upgrade's new process sleeps in its accepts meanwhile): each is
 * followed by an accept that never waits (drain) until the queue is empty. */
static void cancel_all(struct worker *w)
{
	for (int i = 0; i < w->rt->n_listen; i++) {
		if (!(w->accept_armed & 1ull << i))
			continue;
		struct io_uring_sqe *sqe = worker_sqe(w);
		io_uring_prep_cancel64(sqe, ud_encode(UD_ACCEPT, 0, (uint64_t)i), 0);
		io_uring_sqe_set_data64(sqe, ud_encode(UD_NONE, 0, 0));
	}
}

/* Turns accepting on or off. Off only while another worker stays on, so
 * that some worker always accepts. Accepts are one-shot, armed again after
 * each client: standing back is not arming again, never a cancel (which
 * could swallow a client's wake-up while the others sleep). */
static void set_accepting(struct worker *w, bool on)
{
	struct runtime *rt = w->rt;
	if (on == w->accepting)
		return;
	if (on) {
		atomic_fetch_add(&rt->accepting, 1);
	} else {
		int n = atomic_load(&rt->accepting);
		do {
			if (n <= 1 && !w->stopping && w->now_ms >= w->accept_retry_ms)
				return; /* the last one accepting stays */
		} while (!atomic_compare_exchange_weak(&rt->accepting, &n, n - 1));
	}
	w->accepting = on;
	if (on)
		arm_all(w);
	else if (w->stopping)
		cancel_all(w);
}

void worker_accept_begin(struct worker *w)
{
	if (w->stopping || w->rt->n_listen <= 0)
		return;
	struct proto_writer wr = proto_writer_init(w->accept_reject, sizeof(w->accept_reject));
	proto_build_error(&wr, "FATAL", "53300", "sorry, too many clients already");
	w->accept_reject_len = (unsigned)wr.len;
	w->accept_listening = true;
	set_accepting(w, true);
}

void worker_accept_balance(struct worker *w)
{
	if (!w->accept_listening || w->stopping)
		return;
	struct runtime *rt = w->rt;
	if (w->now_ms < w->accept_retry_ms) {
		set_accepting(w, false);
		return;
	}
	int mine = atomic_load_explicit(&w->n_clients, memory_order_relaxed);
	int least = INT_MAX;
	for (int i = 0; i < rt->n_workers; i++)
		if (&rt->workers[i] != w) {
			int n = atomic_load_explicit(&rt->workers[i].n_clients,
						     memory_order_relaxed);
			if (n < least)
				least = n;
		}
	if (least == INT_MAX)
		set_accepting(w, true);
	else if (w->accepting && mine >= least + STAND_BACK)
		set_accepting(w, false);
	else if (!w->accepting && mine <= least + STEP_IN)
		set_accepting(w, true);
}

/* Counted once per worker: the acceptor closes the listeners when every
 * worker is quiet (an accept still armed would keep a closed one open, and
 * a re-armed one could name a descriptor already reused). */
static void note_quiet(struct worker *w)
{
	if (!w->accept_quiet) {
		w->accept_quiet = true;
		atomic_fetch_add(&w->rt->accept_quiet, 1);
	}
}

void worker_accept_stop(struct worker *w)
{
	set_accepting(w, false);
	w->accept_listening = false;
	if (!w->accept_armed)
		note_quiet(w);
}

/* Counts the client in; false (counted out again) past max_client_conn,
 * which counts every worker's clients. Two workers at the limit at once
 * may both refuse: never both admit. */
static bool admit(struct worker *w)
{
	struct runtime *rt = w->rt;
	atomic_fetch_add(&w->n_clients, 1);
	int total = 0;
	for (int i = 0; i < rt->n_workers; i++)
		total += atomic_load(&rt->workers[i].n_clients);
	if (total <= atomic_load_explicit(&rt->max_client_conn, memory_order_relaxed))
		return true;
	atomic_fetch_sub(&w->n_clients, 1);
	return false;
}

/* 53300 and close, linked, as PostgreSQL answers past max_connections */
static void refuse(struct worker *w, int fd)
{
	worker_sqes(w, 2);
	struct io_uring_sqe *sqe = worker_sqe(w);
	io_uring_prep_send(sqe, fd, w->accept_reject, w->accept_reject_len, MSG_NOSIGNAL);
	io_uring_sqe_set_data64(sqe, ud_encode(UD_NONE, 0, 0));
	sqe->flags |= IOSQE_IO_HARDLINK;
	sqe = worker_sqe(w);
	io_uring_prep_close(sqe, fd);
	io_uring_sqe_set_data64(sqe, ud_encode(UD_NONE, 0, 0));
}

static void close_fd(struct worker *w, int fd)
{
	struct io_uring_sqe *sqe = worker_sqe(w);
	io_uring_prep_close(sqe, fd);
	io_uring_sqe_set_data64(sqe, ud_encode(UD_NONE, 0, 0));
}

/* The acceptor keeps a spare descriptor to tell clients 53300 while the
 * process has none left: it accepts on this listener until one is served. */
static void hand_to_acceptor(struct worker *w, unsigned listener)
{
	int ring_fd = atomic_load(&w->rt->acceptor_ring_fd);
	if (ring_fd < 0)
		return;
	struct io_uring_sqe *sqe = worker_sqe(w);
	io_uring_prep_msg_ring(sqe, ring_fd, 0, ud_encode(UD_ACCEPT, 1, listener), 0);
	io_uring_sqe_set_data64(sqe, ud_encode(UD_NONE, 0, 0));
}

void worker_accept_on_cqe(struct worker *w, unsigned listener, bool drain, int res)
{
	struct runtime *rt = w->rt;
	w->accept_armed &= ~(1ull << listener);
	if (w->accepting && res != -EMFILE && res != -ENFILE && res != -ENOBUFS && res != -ENOMEM)
		arm(w, listener);
	else if (!w->accept_listening && (drain ? res >= 0 : res == -ECANCELED))
		arm_drain(w, listener);
	else if (!w->accept_listening && !w->accept_armed)
		note_quiet(w);
	if (res >= 0) {
		/* one accepted as a shutdown began is served only when it is an
		 * upgrade's: the new process never sees it */
		if (w->stopping && !atomic_load(&rt->upgrading)) {
			close_fd(w, res);
			return;
		}
		if (!admit(w)) {
			log_warn("max_client_conn (%d) reached: client refused",
				 atomic_load(&rt->max_client_conn));
			refuse(w, res);
			return;
		}
		w->hooks->on_new_conn(w, res);
		return;
	}
	if (res == -EMFILE || res == -ENFILE || res == -ENOBUFS || res == -ENOMEM) {
		if (w->now_ms >= w->accept_retry_ms)
			hand_to_acceptor(w, listener);
		w->accept_retry_ms = w->now_ms + RETRY_MS;
		set_accepting(w, false);
		return;
	}
	if (res != -ECANCELED && !(drain && (res == -EAGAIN || res == -EINVAL)))
		log_warn("worker %d: accept: %s", w->id, strerror(-res));
}
