/* The control socket and the takeover conversation (main/takeover.h).
 * Blocking calls, on threads of their own: never a worker's time. */
#include "main/takeover.h"

#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <liburing.h>
#include <poll.h>
#include <pthread.h>
#include <spawn.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include "core/log.h"
#include "session/handover.h"
#include "session/session.h"

#define VERSION      1
#define ENV_FD       "PGCRAB_TAKEOVER_FD"
#define HELLO_WAIT_S 30
/* a new process resolves shards and starts workers before it serves */
#define SERVE_WAIT_S 300

static char self_path[PATH_MAX];
static char **self_argv;

/* a SIGUSR2 child's end of its socket pair, posted to the thread */
struct wake {
	int fd; /* -1: stop */
	pid_t pid;
};

static struct {
	struct runtime *rt;
	const struct listeners *ls;
	int listen_fd;
	char path[sizeof(((struct sockaddr_un *)0)->sun_path)]; /* ours to remove, or "" */
	int wake[2], notify[2];
	pthread_t thread;
	bool running;
	_Atomic bool busy; /* a takeover is under way or done */
	/* new process: the connection to the old one, and its reader */
	int conn_fd;
	pthread_t reader;
	bool reading;
} t = { .listen_fd = -1, .wake = { -1, -1 }, .notify = { -1, -1 }, .conn_fd = -1 };

void takeover_init(int argc, char **argv)
{
	(void)argc;
	self_argv = argv;
	/* the path, not /proc/self/exe itself: after a package upgrade that
	 * names the old, deleted file, and the new one is what must start */
	ssize_t n = readlink("/proc/self/exe", self_path, sizeof(self_path) - 1);
	self_path[n > 0 ? n : 0] = '\0';
	char *deleted = strstr(self_path, " (deleted)");
	if (deleted && deleted[sizeof(" (deleted)") - 1] == '\0')
		*deleted = '\0';
}

void takeover_control_path(const char *flag, const struct cfg *cfg, char *buf, size_t len)
{
	buf[0] = '\0';
	if (flag) {
		snprintf(buf, len, "%s", flag);
		return;
	}
	const char *dir = cfg->unix_socket_dir[0] ? cfg->unix_socket_dir
						  : getenv("RUNTIME_DIRECTORY");
	if (!dir || !*dir)
		return;
	/* RUNTIME_DIRECTORY may list several: the first */
	int n = (int)strcspn(dir, ":");
	if (snprintf(buf, len, "%.*s/.s.PGCRAB.%d", n, dir, cfg->port) >= (int)len)
		buf[0] = '\0';
}

static int fill_addr(const char *path, struct sockaddr_un *un)
{
	memset(un, 0, sizeof(*un));
	un->sun_family = AF_UNIX;
	if (strlen(path) >= sizeof(un->sun_path))
		return -1;
	strcpy(un->sun_path, path);
	return 0;
}

static int send_all(int fd, const void *p, size_t n, const int *fds, int n_fds)
{
	struct iovec iov = { .iov_base = (void *)p, .iov_len = n };
	struct msghdr msg = { .msg_iov = &iov, .msg_iovlen = 1 };
	char cm[CMSG_SPACE(sizeof(int) * (LISTEN_MAX + 1))];
	if (n_fds > 0) {
		memset(cm, 0, sizeof(cm));
		msg.msg_control = cm;
		msg.msg_controllen = CMSG_SPACE(sizeof(int) * (size_t)n_fds);
		struct cmsghdr *h = CMSG_FIRSTHDR(&msg);
		h->cmsg_level = SOL_SOCKET;
		h->cmsg_type = SCM_RIGHTS;
		h->cmsg_len = CMSG_LEN(sizeof(int) * (size_t)n_fds);
		memcpy(CMSG_DATA(h), fds, sizeof(int) * (size_t)n_fds);
	}
	return sendmsg(fd, &msg, MSG_NOSIGNAL) == (ssize_t)n ? 0 : -1;
}

/* One record and the descriptors that came with it (*n_fds: at most max). */
static ssize_t recv_record(int fd, void *buf, size_t cap, int *fds, int *n_fds, int max)
{
	struct iovec iov = { .iov_base = buf, .iov_len = cap };
	char cm[CMSG_SPACE(sizeof(int) * (LISTEN_MAX + 1))];
	struct msghdr msg = { .msg_iov = &iov,
			      .msg_iovlen = 1,
			      .msg_control = cm,
			      .msg_controllen = CMSG_SPACE(sizeof(int) * (size_t)max) };
	ssize_t n;
	do
		n = recvmsg(fd, &msg, MSG_CMSG_CLOEXEC);
	while (n < 0 && errno == EINTR);
	*n_fds = 0;
	for (struct cmsghdr *h = CMSG_FIRSTHDR(&msg); n >= 0 && h; h = CMSG_NXTHDR(&msg, h)) {
		if (h->cmsg_level != SOL_SOCKET || h->cmsg_type != SCM_RIGHTS)
			continue;
		int k = (int)((h->cmsg_len - CMSG_LEN(0)) / sizeof(int));
		for (int i = 0; i < k; i++) {
			int f;
			memcpy(&f, CMSG_DATA(h) + i * sizeof(int), sizeof(int));
			if (*n_fds < max)
				fds[(*n_fds)++] = f;
			else
				close(f);
		}
	}
	return n;
}

static void set_timeout(int fd, int seconds)
{
	struct timeval tv = { .tv_sec = seconds };
	(void)setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof(tv));
}

/* ---- the running process ---------------------------------------------- */

/* One new process, from hello to serving. True: it serves, and this
 * process hands it its clients on fd from now on. */
static bool converse(int fd, pid_t child)
{
	const struct listeners *ls = t.ls;
	uint8_t rec[8 + 2 * sizeof(t.path)];
	int dummy;
	set_timeout(fd, HELLO_WAIT_S);
	ssize_t n = recv_record(fd, rec, sizeof(rec), NULL, &dummy, 0);
	if (n < 5 || rec[0] != 'H') {
		log_warn("takeover: a peer on the control socket said no hello; ignored");
		return false;
	}
	int fds[LISTEN_MAX + 1];
	memcpy(fds, ls->fds, sizeof(int) * (size_t)ls->n);
	int n_fds = ls->n;
	if (t.listen_fd >= 0)
		fds[n_fds++] = t.listen_fd;
	size_t len = 0;
	rec[len++] = 'L';
	rec[len++] = (uint8_t)ls->n;
	rec[len++] = t.listen_fd >= 0;
	rec[len++] = ls->stored;
	len += (size_t)sprintf((char *)rec + len, "%s", ls->unix_path) + 1;
	len += (size_t)sprintf((char *)rec + len, "%s", t.listen_fd >= 0 ? t.path : "") + 1;
	if (send_all(fd, rec, len, fds, n_fds) != 0) {
		log_warn("takeover: cannot send the sockets: %s", strerror(errno));
		return false;
	}
	set_timeout(fd, SERVE_WAIT_S);
	n = recv_record(fd, rec, sizeof(rec), NULL, &dummy, 0);
	pid_t pid = 0;
	if (n == 1 + (ssize_t)sizeof(pid) && rec[0] == 'R')
		memcpy(&pid, rec + 1, sizeof(pid));
	if (pid <= 0) {
		log_error("takeover: the new process%s went away before serving; this one goes on",
			  child ? "" : " (pgcrab --takeover)");
		if (child)
			(void)waitpid(child, NULL, 0);
		return false;
	}
	set_timeout(fd, 0);
	log_info("takeover: process %d has the listening sockets and serves", (int)pid);
	/* the control socket is the new process's now, with its file */
	if (t.listen_fd >= 0)
		close(t.listen_fd);
	t.listen_fd = -1;
	t.path[0] = '\0';
	atomic_store(&t.rt->handover_fd, fd);
	ssize_t w = write(t.notify[1], &pid, sizeof(pid));
	(void)w; /* a pipe of our own: it does not fill with one pid */
	return true;
}

/* After the takeover: the new process accepts every connection, and sends
 * here the CancelRequests it has no client for (HANDOVER_CANCEL records),
 * meant for queries still running in this process. */
static void relay_cancels(int fd)
{
	struct io_uring ring;
	if (io_uring_queue_init(4, &ring, 0) != 0)
		return;
	for (;;) {
		struct pollfd p[2] = { { .fd = t.wake[0], .events = POLLIN },
				       { .fd = fd, .events = POLLIN } };
		if (poll(p, 2, -1) < 0 && errno != EINTR)
			break;
		if (p[0].revents)
			break; /* takeover_stop */
		if (!p[1].revents)
			continue;
		uint8_t rec[1 + 2 * sizeof(int32_t)];
		int dummy;
		ssize_t n = recv_record(fd, rec, sizeof(rec), NULL, &dummy, 0);
		if (n <= 0)
			break; /* the new process is gone */
		if (n != (ssize_t)sizeof(rec) || rec[0] != HANDOVER_CANCEL)
			continue;
		int32_t pid, key;
		memcpy(&pid, rec + 1, sizeof(pid));
		memcpy(&key, rec + 1 + sizeof(pid), sizeof(key));
		if (pid <= 0)
			continue;
		struct worker *to = &t.rt->workers[(pid & 0xff) % t.rt->n_workers];
		int r = worker_post_from(&ring, to->ring_fd, SESSION_MSG_CANCEL,
					 (void *)(uintptr_t)(uint32_t)pid, key);
		if (r < 0) /* best effort, as every cancel is: nobody is told */
			log_debug("takeover: a cancel for process %d was lost: %s", (int)pid,
				  strerror(-r));
	}
	io_uring_queue_exit(&ring);
}

static bool peer_may(int fd)
{
	struct ucred cred;
	socklen_t len = sizeof(cred);
	if (getsockopt(fd, SOL_SOCKET, SO_PEERCRED, &cred, &len) != 0)
		return false;
	if (cred.uid == geteuid() || cred.uid == 0)
		return true;
	log_warn("takeover: refused a peer of uid %d on the control socket", (int)cred.uid);
	return false;
}

static void *serve_main(void *arg)
{
	(void)arg;
	for (;;) {
		struct pollfd p[2] = { { .fd = t.wake[0], .events = POLLIN },
				       { .fd = t.listen_fd, .events = POLLIN } };
		if (poll(p, t.listen_fd >= 0 ? 2 : 1, -1) < 0) {
			if (errno == EINTR)
				continue;
			break;
		}
		int fd = -1;
		pid_t child = 0;
		if (p[0].revents) {
			struct wake wk;
			if (read(t.wake[0], &wk, sizeof(wk)) != (ssize_t)sizeof(wk) || wk.fd < 0)
				break;
			fd = wk.fd;
			child = wk.pid;
		} else if (p[1].revents) {
			fd = accept4(t.listen_fd, NULL, NULL, SOCK_CLOEXEC);
			if (fd < 0)
				continue;
			if (!peer_may(fd)) {
				close(fd);
				continue;
			}
			atomic_store(&t.busy, true);
		}
		if (converse(fd, child)) {
			/* one takeover: this process drains and exits */
			relay_cancels(fd);
			break;
		}
		close(fd);
		atomic_store(&t.busy, false);
	}
	return NULL;
}

static int open_control(const char *path)
{
	struct sockaddr_un un;
	if (fill_addr(path, &un) != 0) {
		log_warn("control socket %s: the path is too long; pgcrab --takeover is off", path);
		return -1;
	}
	struct stat st;
	if (lstat(path, &st) == 0) {
		int probe = socket(AF_UNIX, SOCK_SEQPACKET | SOCK_CLOEXEC, 0);
		if (probe >= 0 && connect(probe, (struct sockaddr *)&un, sizeof(un)) == 0) {
			close(probe);
			log_warn("control socket %s: another PgCrab answers there; "
				 "pgcrab --takeover is off for this one (SIGUSR2 works)",
				 path);
			return -1;
		}
		if (probe >= 0)
			close(probe);
		if (S_ISSOCK(st.st_mode))
			(void)unlink(path);
	}
	int fd = socket(AF_UNIX, SOCK_SEQPACKET | SOCK_CLOEXEC, 0);
	/* the umask keeps it private from the first moment */
	mode_t old = umask(0177);
	int r = fd < 0 ? -1 : bind(fd, (struct sockaddr *)&un, sizeof(un));
	umask(old);
	if (r != 0 || chmod(path, 0600) != 0 || listen(fd, 8) != 0) {
		log_warn("control socket %s: %s; pgcrab --takeover is off (SIGUSR2 works)", path,
			 strerror(errno));
		if (fd >= 0)
			close(fd);
		return -1;
	}
	return fd;
}

int takeover_listen(struct runtime *rt, const struct listeners *ls, const char *path,
		    int control_fd)
{
	t.rt = rt;
	t.ls = ls;
	if (pipe2(t.wake, O_CLOEXEC) != 0 || pipe2(t.notify, O_CLOEXEC) != 0) {
		log_warn("takeover: pipe: %s; online upgrades are off", strerror(errno));
		return -1;
	}
	if (control_fd >= 0) {
		t.listen_fd = control_fd;
		snprintf(t.path, sizeof(t.path), "%s", path);
	} else if (path[0]) {
		t.listen_fd = open_control(path);
		if (t.listen_fd >= 0)
			snprintf(t.path, sizeof(t.path), "%s", path);
	}
	if (t.listen_fd >= 0)
		log_info("control socket %s: pgcrab --takeover hands this process's sockets and "
			 "clients to a new one",
			 t.path);
	if (pthread_create(&t.thread, NULL, serve_main, NULL) != 0) {
		log_warn("takeover: cannot start its thread; online upgrades are off");
		return -1;
	}
	t.running = true;
	return t.notify[0];
}

static bool handover_var(const char *e)
{
	static const char *const names[] = { ENV_FD "=",
					     "LISTEN_FDS=", "LISTEN_PID=", "LISTEN_FDNAMES=" };
	for (size_t i = 0; i < sizeof(names) / sizeof(names[0]); i++)
		if (strncmp(e, names[i], strlen(names[i])) == 0)
			return true;
	return false;
}

int takeover_spawn(pid_t *pid)
{
	if (!t.running || !self_path[0] || !self_argv) {
		log_error("upgrade: not available (no takeover thread or unknown binary path)");
		return -1;
	}
	bool was = false;
	if (!atomic_compare_exchange_strong(&t.busy, &was, true)) {
		log_warn("SIGUSR2: a takeover is under way already");
		return -1;
	}
	int sp[2];
	if (socketpair(AF_UNIX, SOCK_SEQPACKET | SOCK_CLOEXEC, 0, sp) != 0) {
		log_error("upgrade: socketpair: %s", strerror(errno));
		atomic_store(&t.busy, false);
		return -1;
	}
	size_t n_env = 0;
	for (char **e = environ; *e; e++)
		n_env++;
	char **envp = calloc(n_env + 2, sizeof(char *));
	char fd_var[] = ENV_FD "=3";
	posix_spawn_file_actions_t fa;
	posix_spawn_file_actions_init(&fa);
	int err = envp ? posix_spawn_file_actions_adddup2(&fa, sp[1], 3) : ENOMEM;
	if (err == 0) {
		size_t k = 0;
		for (char **e = environ; *e; e++)
			if (!handover_var(*e))
				envp[k++] = *e;
		envp[k++] = fd_var;
		err = posix_spawn(pid, self_path, &fa, NULL, self_argv, envp);
	}
	posix_spawn_file_actions_destroy(&fa);
	free(envp);
	close(sp[1]);
	if (err != 0) {
		log_error("upgrade: cannot start %s: %s", self_path, strerror(err));
		close(sp[0]);
		atomic_store(&t.busy, false);
		return -1;
	}
	struct wake wk = { sp[0], *pid };
	if (write(t.wake[1], &wk, sizeof(wk)) != (ssize_t)sizeof(wk)) {
		close(sp[0]); /* the child sees end of file and exits */
		atomic_store(&t.busy, false);
		return -1;
	}
	return 0;
}

/* ---- the new process -------------------------------------------------- */

int takeover_receive(bool asked, const char *path, struct takeover_given *g, char *err,
		     size_t errlen)
{
	memset(g, 0, sizeof(*g));
	g->control_fd = -1;
	const char *env = getenv(ENV_FD);
	int fd = -1;
	if (env && *env) {
		fd = atoi(env);
		(void)fcntl(fd, F_SETFD, FD_CLOEXEC);
	}
	unsetenv(ENV_FD);
	if (fd < 0 && !asked)
		return 0;
	if (fd < 0) {
		struct sockaddr_un un;
		if (!path[0] || fill_addr(path, &un) != 0) {
			snprintf(err, errlen,
				 "--takeover: no control socket (set unix_socket_dir or "
				 "--control-socket)");
			return -1;
		}
		fd = socket(AF_UNIX, SOCK_SEQPACKET | SOCK_CLOEXEC, 0);
		if (fd < 0 || connect(fd, (struct sockaddr *)&un, sizeof(un)) != 0) {
			snprintf(err, errlen,
				 "--takeover: cannot reach the running PgCrab at %s: %s", path,
				 strerror(errno));
			if (fd >= 0)
				close(fd);
			return -1;
		}
	}
	uint8_t rec[8 + 2 * sizeof(g->unix_path)];
	rec[0] = 'H';
	uint32_t v = VERSION;
	memcpy(rec + 1, &v, sizeof(v));
	int fds[LISTEN_MAX + 1], n_fds = 0;
	set_timeout(fd, HELLO_WAIT_S);
	ssize_t n = send_all(fd, rec, 5, NULL, 0) == 0
		? recv_record(fd, rec, sizeof(rec) - 1, fds, &n_fds, LISTEN_MAX + 1)
		: -1;
	if (n < 6 || rec[0] != 'L' || rec[1] + rec[2] != n_fds || rec[1] == 0) {
		snprintf(err, errlen, "takeover: the running PgCrab sent no sockets (%s)",
			 n < 0 ? strerror(errno) : "a short or unexpected answer");
		for (int i = 0; i < n_fds; i++)
			close(fds[i]);
		close(fd);
		return -1;
	}
	rec[n] = '\0';
	g->n = rec[1];
	memcpy(g->fds, fds, sizeof(int) * (size_t)g->n);
	g->control_fd = rec[2] ? fds[g->n] : -1;
	g->stored = rec[3];
	const char *unix_path = (const char *)rec + 4;
	const char *ctl = unix_path + strlen(unix_path) + 1;
	if ((uint8_t *)ctl >= rec + n)
		ctl = "";
	/* each was sent from a buffer of this size */
	snprintf(g->unix_path, sizeof(g->unix_path), "%.*s", (int)sizeof(g->unix_path) - 1,
		 unix_path);
	snprintf(g->control_path, sizeof(g->control_path), "%.*s", (int)sizeof(g->control_path) - 1,
		 ctl);
	set_timeout(fd, 0);
	t.conn_fd = fd;
	return 1;
}

static void *reader_main(void *arg)
{
	struct runtime *rt = arg;
	struct io_uring ring;
	if (io_uring_queue_init(8, &ring, 0) != 0) {
		log_error("takeover: no ring to pass clients on: they are closed");
		return NULL;
	}
	int adopted = 0;
	for (;;) {
		struct handover_in *in = malloc(sizeof(*in) + HANDOVER_MAX);
		int fds[1], n_fds;
		ssize_t n = in ? recv_record(t.conn_fd, in->data, HANDOVER_MAX, fds, &n_fds, 1)
			       : -1;
		if (n <= 0) {
			free(in);
			break;
		}
		int wid = n_fds == 1 ? handover_worker_of(rt, in->data, (size_t)n) : -1;
		if (wid < 0) {
			if (n_fds == 1)
				close(fds[0]);
			free(in);
			continue;
		}
		in->fd = fds[0];
		in->len = (uint32_t)n;
		struct worker *w = &rt->workers[wid];
		atomic_fetch_add(&w->n_clients, 1);
		if (worker_post_from(&ring, w->ring_fd, SESSION_MSG_ADOPT, in, 0) < 0) {
			atomic_fetch_sub(&w->n_clients, 1);
			close(in->fd);
			free(in);
			continue;
		}
		adopted++;
	}
	io_uring_queue_exit(&ring);
	/* not closed before exit: a worker may be sending a cancel on it */
	atomic_store(&rt->predecessor_fd, -1);
	log_info("takeover: the previous process handed over %d idle client(s) and left", adopted);
	return NULL;
}

void takeover_serving(struct runtime *rt)
{
	if (t.conn_fd < 0)
		return;
	uint8_t rec[1 + sizeof(pid_t)];
	rec[0] = 'R';
	pid_t me = getpid();
	memcpy(rec + 1, &me, sizeof(me));
	if (send_all(t.conn_fd, rec, sizeof(rec), NULL, 0) != 0) {
		log_warn("takeover: cannot tell the previous process: %s", strerror(errno));
		return;
	}
	atomic_store(&rt->predecessor_fd, t.conn_fd);
	if (pthread_create(&t.reader, NULL, reader_main, rt) == 0)
		t.reading = true;
}

void takeover_stop(void)
{
	if (t.running) {
		struct wake wk = { -1, 0 };
		ssize_t w = write(t.wake[1], &wk, sizeof(wk));
		(void)w;
		pthread_join(t.thread, NULL);
		t.running = false;
	}
	if (t.reading) {
		shutdown(t.conn_fd, SHUT_RDWR); /* wakes its recvmsg */
		pthread_join(t.reader, NULL);
		t.reading = false;
	}
	if (t.path[0])
		(void)unlink(t.path);
	t.path[0] = '\0';
}
