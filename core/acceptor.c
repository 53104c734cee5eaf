#include "core/acceptor.h"

#include <errno.h>
#include <fcntl.h>
#include <signal.h>
#include <stdlib.h>
#include <string.h>
#include <sys/signalfd.h>
#include <time.h>
#include <systemd/sd-daemon.h>
#include <unistd.h>

#include "core/log.h"
#include "core/worker.h"
#include "proto/proto.h"

/* STATUS= for systemd this often, when it listens (NOTIFY_SOCKET) */
#define STATUS_EVERY_MS 2000

struct acceptor {
	struct runtime *rt;
	struct io_uring ring;
	const int *listen_fds;
	int n_listen;
	int signal_fd;
	struct signalfd_siginfo si;
	struct __kernel_timespec delay;
	struct __kernel_timespec status_delay;
	void (*status)(const struct runtime *rt, char *buf, size_t len);
	const struct acceptor_opts *opts;
	pid_t upgrade_pid; /* read from opts->takeover_fd: a new process serves */
	uint64_t paused;   /* listeners (by bit) waiting for the retry timer */
	/* listeners (by bit) this thread accepts on: handed over by a worker
	 * out of descriptors, until a client is served again */
	uint64_t taken;
	bool stopping;
	bool closed; /* the listeners, once no worker accepts on them */
	uint8_t reject[256];
	size_t reject_len;
	/* an fd held in reserve: when the process runs out of descriptors it is
	 * closed for a moment so the next client can be told 53300 instead of
	 * waiting in the backlog with no answer */
	int spare_fd;
	uint64_t warned_ms;      /* last EMFILE warning: at most one a second */
	unsigned refused_silent; /* refusals since then */
};

static struct io_uring_sqe *acc_sqe(struct acceptor *a)
{
	struct io_uring_sqe *sqe = io_uring_get_sqe(&a->ring);
	while (!sqe) {
		io_uring_submit(&a->ring);
		sqe = io_uring_get_sqe(&a->ring);
	}
	return sqe;
}

/* The payload is the listener's index. Workers accept (core/worker_accept.c);
 * this thread only while a worker has no descriptor left. */
static void arm_accept(struct acceptor *a, int i)
{
	struct io_uring_sqe *sqe = acc_sqe(a);
	io_uring_prep_multishot_accept(sqe, a->listen_fds[i], NULL, NULL, SOCK_CLOEXEC);
	io_uring_sqe_set_data64(sqe, ud_encode(UD_ACCEPT, 0, (uint64_t)i));
}

static void arm_signal(struct acceptor *a)
{
	struct io_uring_sqe *sqe = acc_sqe(a);
	io_uring_prep_read(sqe, a->signal_fd, &a->si, sizeof(a->si), 0);
	io_uring_sqe_set_data64(sqe, ud_encode(UD_SIGNAL, 0, 0));
}

static void arm_timer(struct acceptor *a, long ms)
{
	a->delay.tv_sec = ms / 1000;
	a->delay.tv_nsec = (ms % 1000) * 1000000L;
	struct io_uring_sqe *sqe = acc_sqe(a);
	io_uring_prep_timeout(sqe, &a->delay, 0, 0);
	io_uring_sqe_set_data64(sqe, ud_encode(UD_TIMER, 0, 0));
}

/* kind 1 tells the status timer from the retry and shutdown one */
static void arm_status(struct acceptor *a)
{
	a->status_delay.tv_sec = STATUS_EVERY_MS / 1000;
	a->status_delay.tv_nsec = (STATUS_EVERY_MS % 1000) * 1000000L;
	struct io_uring_sqe *sqe = acc_sqe(a);
	io_uring_prep_timeout(sqe, &a->status_delay, 0, 0);
	io_uring_sqe_set_data64(sqe, ud_encode(UD_TIMER, 1, 0));
}

static void send_status(struct acceptor *a)
{
	char line[256];
	a->status(a->rt, line, sizeof(line));
	sd_notifyf(0, "STATUS=%s", line);
}

static void close_async(struct acceptor *a, int fd)
{
	struct io_uring_sqe *sqe = acc_sqe(a);
	io_uring_prep_close(sqe, fd);
	io_uring_sqe_set_data64(sqe, ud_encode(UD_NONE, 0, 0));
}

static void reject_client(struct acceptor *a, int fd)
{
	struct io_uring_sqe *sqe = acc_sqe(a);
	io_uring_prep_send(sqe, fd, a->reject, a->reject_len, MSG_NOSIGNAL);
	io_uring_sqe_set_data64(sqe, ud_encode(UD_NONE, 0, 0));
	sqe->flags |= IOSQE_IO_HARDLINK;
	close_async(a, fd);
}

static uint64_t mono_ms(void)
{
	struct timespec ts;
	clock_gettime(CLOCK_MONOTONIC_COARSE, &ts);
	return (uint64_t)ts.tv_sec * 1000 + (uint64_t)ts.tv_nsec / 1000000;
}

/* The spare can be lost: io_uring's accept may take the slot it left for a
 * moment. Taken back as soon as a descriptor is free again. */
static void take_spare(struct acceptor *a)
{
	if (a->spare_fd < 0)
		a->spare_fd = open("/dev/null", O_RDONLY | O_CLOEXEC);
}

/* Out of file descriptors: frees the spare one to accept the waiting client,
 * tells it 53300 and closes it, then takes the spare back. Blocking calls
 * are fine here, on the acceptor thread (the listen socket is non-blocking).
 * Returns false when there is no spare (a worker took the freed slot). */
static bool refuse_without_fds(struct acceptor *a, int listen_fd, int err)
{
	bool refused = false;
	if (a->spare_fd >= 0) {
		close(a->spare_fd);
		int fd = accept4(listen_fd, NULL, NULL, SOCK_CLOEXEC | SOCK_NONBLOCK);
		if (fd >= 0) {
			ssize_t n = send(fd, a->reject, a->reject_len, MSG_NOSIGNAL | MSG_DONTWAIT);
			(void)n; /* best effort: the client may already be gone */
			close(fd);
			refused = true;
		}
		a->spare_fd = open("/dev/null", O_RDONLY | O_CLOEXEC);
	}
	uint64_t now = mono_ms();
	if (refused)
		a->refused_silent++;
	if (now - a->warned_ms >= 1000) {
		log_warn("accept: %s: %u client(s) refused with 53300 in the last second%s",
			 strerror(err), a->refused_silent,
			 a->spare_fd < 0 ? "; no spare descriptor, retrying every 100 ms" : "");
		a->warned_ms = now;
		a->refused_silent = 0;
	}
	return a->spare_fd >= 0;
}

static void hand_over(struct acceptor *a, int fd)
{
	struct runtime *rt = a->rt;
	int total = 0;
	struct worker *best = &rt->workers[0];
	int best_n = atomic_load(&best->n_clients);
	for (int i = 0; i < rt->n_workers; i++) {
		int n = atomic_load(&rt->workers[i].n_clients);
		total += n;
		if (n < best_n) {
			best = &rt->workers[i];
			best_n = n;
		}
	}
	int max = atomic_load_explicit(&rt->max_client_conn, memory_order_relaxed);
	if (total >= max) {
		log_warn("max_client_conn (%d) reached: client refused", max);
		reject_client(a, fd);
		return;
	}
	/* TCP_NODELAY comes from the listening socket: Linux copies it to each
	 * accepted one, which saves a syscall per client */
	atomic_fetch_add(&best->n_clients, 1);
	struct io_uring_sqe *sqe = acc_sqe(a);
	io_uring_prep_msg_ring(sqe, best->ring_fd, (unsigned)fd,
			       worker_msg_user_data(WORKER_MSG_NEW_CONN, NULL), 0);
	io_uring_sqe_set_data64(sqe,
				ud_encode(UD_POSTED, 0, (uint32_t)fd | (uint64_t)best->id << 32));
}

/* tell_systemd: false after an upgrade, when the new process is the
 * service's main process and this one's stopping is no news */
static void begin_shutdown(struct acceptor *a, bool tell_systemd)
{
	a->stopping = true;
	if (tell_systemd)
		sd_notify(0, "STOPPING=1");
	log_info("shutting down: no new clients; open transactions may finish within %llu ms",
		 (unsigned long long)a->rt->cfg->shutdown_timeout_ms);
	struct io_uring_sqe *sqe;
	for (int i = 0; i < a->n_listen; i++) {
		if (!(a->taken & 1ull << i))
			continue;
		sqe = acc_sqe(a);
		io_uring_prep_cancel64(sqe, ud_encode(UD_ACCEPT, 0, (uint64_t)i), 0);
		io_uring_sqe_set_data64(sqe, ud_encode(UD_NONE, 0, 0));
	}
	a->taken = 0;
	for (int i = 0; i < a->rt->n_workers; i++) {
		sqe = acc_sqe(a);
		io_uring_prep_msg_ring(sqe, a->rt->workers[i].ring_fd, 0,
				       worker_msg_user_data(WORKER_MSG_SHUTDOWN, NULL), 0);
		io_uring_sqe_set_data64(sqe, ud_encode(UD_NONE, 0, 0));
	}
	arm_timer(a, 50);
}

/* At shutdown, once no worker accepts any more (an armed accept would keep
 * the socket open, and a re-armed one could name a reused descriptor). */
static void close_listeners(struct acceptor *a)
{
	if (a->closed || atomic_load(&a->rt->accept_quiet) < a->rt->n_workers)
		return;
	a->closed = true;
	for (int i = 0; i < a->n_listen; i++)
		close_async(a, a->listen_fds[i]);
}

/* A worker out of descriptors hands listener i over: accepted here, each
 * client told 53300 through the spare descriptor, until one is served. */
static void take_listener(struct acceptor *a, unsigned i)
{
	if (a->stopping || i >= (unsigned)a->n_listen || a->taken & 1ull << i)
		return;
	a->taken |= 1ull << i;
	arm_accept(a, (int)i);
}

/* A client served: the workers accept on listener i again. */
static void give_back_listener(struct acceptor *a, unsigned i)
{
	if (!(a->taken & 1ull << i))
		return;
	a->taken &= ~(1ull << i);
	a->paused &= ~(1ull << i);
	struct io_uring_sqe *sqe = acc_sqe(a);
	io_uring_prep_cancel64(sqe, ud_encode(UD_ACCEPT, 0, (uint64_t)i), 0);
	io_uring_sqe_set_data64(sqe, ud_encode(UD_NONE, 0, 0));
}

static void start_upgrade(struct acceptor *a)
{
	if (a->stopping || !a->opts->upgrade_start) {
		log_warn("SIGUSR2: %s",
			 a->stopping ? "shutting down already" : "online upgrade is not available");
		return;
	}
	pid_t pid;
	if (a->opts->upgrade_start(&pid) == 0)
		log_info("upgrade: started process %d; accepting here until it serves", (int)pid);
}

/* Whoever started it (SIGUSR2 or an operator's pgcrab --takeover), a new
 * process that took the sockets over serves now. */
static void arm_takeover(struct acceptor *a)
{
	struct io_uring_sqe *sqe = acc_sqe(a);
	io_uring_prep_read(sqe, a->opts->takeover_fd, &a->upgrade_pid, sizeof(a->upgrade_pid), 0);
	io_uring_sqe_set_data64(sqe, ud_encode(UD_SIGNAL, 1, 0));
}

static void upgrade_answered(struct acceptor *a, int res)
{
	if (res != (int)sizeof(a->upgrade_pid) || a->stopping)
		return;
	/* the old process is the main one systemd listens to (NotifyAccess=main) */
	sd_notifyf(0, "MAINPID=%d", (int)a->upgrade_pid);
	log_info("upgrade: process %d serves; this one stops accepting and drains",
		 (int)a->upgrade_pid);
	if (a->opts->upgraded)
		a->opts->upgraded();
	atomic_store(&a->rt->upgrading, true);
	begin_shutdown(a, false);
}

static void on_signal(struct acceptor *a)
{
	switch (a->si.ssi_signo) {
	case SIGHUP:
		/* the whole file is read again on a thread of its own, which
		 * tells systemd RELOADING=1 and READY=1 around it */
		if (a->opts->reload)
			a->opts->reload(a->rt);
		else
			log_warn("SIGHUP: this process cannot reload its configuration");
		break;
	case SIGINT:
	case SIGTERM:
		if (a->stopping) {
			log_info("second signal: exiting now");
			_exit(0);
		}
		begin_shutdown(a, true);
		break;
	case SIGUSR2:
		start_upgrade(a);
		break;
	}
	arm_signal(a);
}

int acceptor_run(struct runtime *rt, const struct acceptor_opts *opts)
{
	if (opts->n_listen < 1 || opts->n_listen > ACCEPTOR_MAX_LISTEN)
		return 1;
	struct acceptor *a = calloc(1, sizeof(*a));
	if (!a)
		return 1;
	a->rt = rt;
	a->listen_fds = opts->listen_fds;
	a->n_listen = opts->n_listen;
	a->signal_fd = opts->signal_fd;
	a->opts = opts;
	a->spare_fd = open("/dev/null", O_RDONLY | O_CLOEXEC);
	/* accept4 after EMFILE must not block; io_uring's accept copes either way */
	for (int i = 0; i < a->n_listen; i++) {
		int fl = fcntl(a->listen_fds[i], F_GETFL);
		if (fl >= 0)
			(void)fcntl(a->listen_fds[i], F_SETFL, fl | O_NONBLOCK);
	}
	const char *notify = getenv("NOTIFY_SOCKET");
	if (opts->status && notify && *notify)
		a->status = opts->status;
	struct proto_writer wr = proto_writer_init(a->reject, sizeof(a->reject));
	proto_build_error(&wr, "FATAL", "53300", "sorry, too many clients already");
	a->reject_len = wr.len;
	int r = worker_ring_init(&a->ring, 1024, 0);
	if (r < 0) {
		log_error("acceptor: cannot set up io_uring: %s", strerror(-r));
		free(a);
		return 1;
	}
	rt->listen_fds = a->listen_fds;
	rt->n_listen = a->n_listen;
	atomic_store(&rt->acceptor_ring_fd, a->ring.ring_fd);
	for (int i = 0; i < rt->n_workers; i++) {
		struct io_uring_sqe *sqe = acc_sqe(a);
		io_uring_prep_msg_ring(sqe, rt->workers[i].ring_fd, 0,
				       worker_msg_user_data(WORKER_MSG_LISTEN, NULL), 0);
		io_uring_sqe_set_data64(sqe, ud_encode(UD_NONE, 0, 0));
	}
	arm_signal(a);
	if (opts->takeover_fd >= 0)
		arm_takeover(a);
	if (a->status)
		arm_status(a);
	io_uring_submit(&a->ring);
	sd_notify(0, "READY=1");

	for (;;) {
		io_uring_submit_and_wait(&a->ring, 1);
		struct io_uring_cqe *cqe;
		unsigned head, n = 0;
		uint64_t rearm = 0; /* listeners whose multishot accept ended, by bit */
		io_uring_for_each_cqe(&a->ring, head, cqe)
		{
			n++;
			struct ud_fields ud = ud_decode(cqe->user_data);
			int res = cqe->res;
			switch (ud.op) {
			case UD_ACCEPT:
				if (ud.kind == 1) {
					take_listener(a, (unsigned)ud.payload);
					break;
				}
				/* one accepted as an upgrade's drain began is served
				 * here: the new process never sees it */
				if (a->stopping && !(res >= 0 && atomic_load(&rt->upgrading)))
					break;
				if (res >= 0) {
					hand_over(a, res);
					take_spare(a);
					give_back_listener(a, (unsigned)ud.payload);
				} else if ((res == -EMFILE || res == -ENFILE)
					   && refuse_without_fds(a, a->listen_fds[ud.payload],
								 -res)) {
					/* accepting goes on: each client is told until fds free up */
				} else if (res == -EMFILE || res == -ENFILE || res == -ENOBUFS
					   || res == -ENOMEM) {
					log_warn("accept: %s; retrying in 100 ms", strerror(-res));
					if (!(cqe->flags & IORING_CQE_F_MORE)) {
						a->paused |= 1ull << ud.payload;
						arm_timer(a, 100);
					}
					break;
				}
				if (!(cqe->flags & IORING_CQE_F_MORE)
				    && a->taken & 1ull << ud.payload)
					rearm |= 1ull << ud.payload;
				break;
			case UD_SIGNAL:
				if (ud.kind == 1)
					upgrade_answered(a, res);
				else if (res == (int)sizeof(a->si))
					on_signal(a);
				else
					arm_signal(a);
				break;
			case UD_TIMER:
				if (ud.kind == 1) {
					if (!a->stopping) {
						send_status(a);
						arm_status(a);
					}
				} else if (a->stopping) {
					close_listeners(a);
					if (atomic_load(&rt->workers_done) == rt->n_workers)
						goto out;
					arm_timer(a, 50);
				} else {
					take_spare(a);
					rearm |= a->paused & a->taken;
					a->paused = 0;
				}
				break;
			case UD_POSTED:
				if (res < 0) {
					int fd = (int)(uint32_t)ud.payload;
					int id = (int)(ud.payload >> 32);
					atomic_fetch_sub(&rt->workers[id].n_clients, 1);
					log_warn("cannot hand a client to worker %d: %s", id,
						 strerror(-res));
					close_async(a, fd);
				}
				break;
			default:
				break;
			}
		}
		io_uring_cq_advance(&a->ring, n);
		for (int i = 0; i < a->n_listen && !a->stopping; i++)
			if (rearm & 1ull << i)
				arm_accept(a, i);
	}
out:
	for (int i = 0; i < rt->n_workers; i++)
		pthread_join(rt->workers[i].thread, NULL);
	log_info("shutdown complete");
	io_uring_queue_exit(&a->ring);
	if (a->spare_fd >= 0)
		close(a->spare_fd);
	free(a);
	return 0;
}
