/* A real PgCrab worker for the state machine fuzzers (fuzz_client.c,
 * fuzz_server.c): one worker with its io_uring and provided buffer ring,
 * driven step by step from the fuzzer's thread (worker_start and
 * worker_run_once in core/worker.c), one shard whose "PostgreSQL" is a Unix
 * socket the harness listens on, and clients that are socketpairs.
 *
 * Every input starts from the same state: after it, the harness closes its
 * client, closes every server connection of the pool, runs the worker until
 * all of them are freed, and forgets the shard's published parameters and
 * the pool's backoff. It then checks nothing is left: no connection, no
 * client, no reservation against max_connections. */
#ifndef PGCRAB_FUZZ_WORKER_H
#define PGCRAB_FUZZ_WORKER_H

#include <errno.h>
#include <fcntl.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/un.h>
#include <unistd.h>

#include "config/cfg.h"
#include "core/list.h"
#include "core/log.h"
#include "core/worker.h"
#include "pool/pool.h"
#include "pool/server.h"
#include "session/client.h"
#include "session/session.h"
#include "proto/proto.h"
#include "tests/fuzz/fuzz.h"

#define FZ_MAX_BACKENDS 8
#define FZ_IO_MAX       (1u << 20) /* what a peer may send us in one input, kept */

/* The harness's end of a socket: what it still has to write, what it read. */
struct fz_peer {
	int fd; /* -1: closed */
	const uint8_t *out;
	size_t out_len, out_at, chunk;
	uint8_t *in;
	size_t in_len;
	bool eof;
};

static struct {
	char dir[64];
	char sock_path[128];
	int listen_fd;
	struct cfg *cfg;         /* pool_mode = transaction */
	struct cfg *cfg_session; /* the same in session mode */
	struct runtime rt;
	struct session ss;
	struct fz_peer backends[FZ_MAX_BACKENDS];
	int n_backends;
	int backends_seen; /* connections accepted during this input */
} fz;

/* the one worker, its session state, its pool and the shard */
#define FZ_W     (&fz.rt.workers[0])
#define FZ_SW    (&fz.ss.workers[0])
#define FZ_POOL  (&FZ_SW->pools.pools[0])
#define FZ_SHARD (&fz.ss.shards[0])

static void fz_peer_init(struct fz_peer *p, int fd)
{
	memset(p, 0, sizeof(*p));
	p->fd = fd;
	p->in = malloc(FZ_IO_MAX);
	if (!p->in)
		abort();
}

static void fz_peer_close(struct fz_peer *p)
{
	if (p->fd >= 0)
		close(p->fd);
	p->fd = -1;
	free(p->in);
	p->in = NULL;
}

/* Queues bytes to write, chunk bytes per step (0: as much as fits). */
static void fz_peer_send(struct fz_peer *p, const uint8_t *data, size_t len, size_t chunk)
{
	p->out = data;
	p->out_len = len;
	p->out_at = 0;
	p->chunk = chunk;
}

/* One step of a peer: write the next chunk, read what is there. Returns
 * true if anything moved. */
static bool fz_peer_step(struct fz_peer *p)
{
	bool moved = false;
	if (p->fd < 0)
		return false;
	if (p->out_at < p->out_len) {
		size_t n = p->out_len - p->out_at;
		if (p->chunk && n > p->chunk)
			n = p->chunk;
		ssize_t k = send(p->fd, p->out + p->out_at, n, MSG_NOSIGNAL | MSG_DONTWAIT);
		if (k > 0) {
			p->out_at += (size_t)k;
			moved = true;
		} else if (k < 0 && errno != EAGAIN) {
			p->out_at = p->out_len; /* the other end is gone */
		}
	}
	for (;;) {
		uint8_t buf[16384];
		ssize_t k = recv(p->fd, buf, sizeof(buf), MSG_DONTWAIT);
		if (k > 0) {
			size_t keep = (size_t)k;
			if (keep > FZ_IO_MAX - p->in_len)
				keep = FZ_IO_MAX - p->in_len;
			memcpy(p->in + p->in_len, buf, keep);
			p->in_len += keep;
			moved = true;
			continue;
		}
		if (k == 0 && !p->eof) {
			p->eof = true;
			moved = true;
		}
		break;
	}
	return moved;
}

static void fz_cleanup_dir(void)
{
	unlink(fz.sock_path);
	rmdir(fz.dir);
}

/* Sets up the worker once per process. extra_ini goes into [pgcrab]. */
static void fz_init(const char *extra_ini)
{
	atomic_store(&log_threshold, CFG_LOG_ERROR - 1); /* quiet: errors are expected */
	strcpy(fz.dir, "/tmp/pgcrab-fuzz-XXXXXX");
	if (!mkdtemp(fz.dir))
		abort();
	snprintf(fz.sock_path, sizeof(fz.sock_path), "%s/.s.PGSQL.5432", fz.dir);
	atexit(fz_cleanup_dir);

	struct sockaddr_un un = { .sun_family = AF_UNIX };
	snprintf(un.sun_path, sizeof(un.sun_path), "%s", fz.sock_path);
	fz.listen_fd = socket(AF_UNIX, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
	if (fz.listen_fd < 0 || bind(fz.listen_fd, (struct sockaddr *)&un, sizeof(un)) != 0
	    || listen(fz.listen_fd, 64) != 0)
		abort();

	char ini[1024], err[512] = "";
	for (int session = 0; session < 2; session++) {
		int n = snprintf(
			ini, sizeof(ini),
			"[pgcrab]\nworkers = 1\nlog_level = error\npool_mode = %s\n%s\n"
			"[shard.db]\nhost = %s\nport = 5432\nuser = fuzz\npassword = fuzzpw\n"
			"max_connections = 2\n"
			"[user.app]\npassword = secret\n",
			session ? "session" : "transaction", extra_ini, fz.dir);
		if (n < 0 || (size_t)n >= sizeof(ini)
		    || cfg_load_buffer("fuzz.ini", ini, (size_t)n, NULL,
				       session ? &fz.cfg_session : &fz.cfg, err, sizeof(err))
			    != 0) {
			fprintf(stderr, "fuzz harness config: %s\n", err);
			abort();
		}
	}

	/* the shard's host is the directory: its Unix socket is ours */
	if (session_build(&fz.rt, &fz.ss, fz.cfg, 1, err, sizeof(err)) != 0) {
		fprintf(stderr, "fuzz harness runtime: %s\n", err);
		abort();
	}
	FZ_SW->next_pid = 1;
	if (worker_start(FZ_W) != 0)
		abort();
	for (int i = 0; i < FZ_MAX_BACKENDS; i++)
		fz.backends[i].fd = -1;
}

/* Picks the pool mode for the next input. Only between inputs, when the
 * worker holds nothing: like a reload's new snapshot, never mid-flight. */
static void fz_use_session_mode(bool session)
{
	FZ_W->cfg = session ? fz.cfg_session : fz.cfg; /* the shard is the same in both */
}

/* Accepts the worker's new server connections. */
static bool fz_accept_backends(void)
{
	bool moved = false;
	for (;;) {
		int fd = accept4(fz.listen_fd, NULL, NULL, SOCK_NONBLOCK | SOCK_CLOEXEC);
		if (fd < 0)
			return moved;
		moved = true;
		fz.backends_seen++;
		if (fz.n_backends == FZ_MAX_BACKENDS) {
			close(fd);
			continue;
		}
		fz_peer_init(&fz.backends[fz.n_backends++], fd);
	}
}

/* A new client whose socket is handed to the worker as the acceptor would;
 * the harness keeps the other end in *p. */
static void fz_new_client(struct fz_peer *p)
{
	int sv[2];
	if (socketpair(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0, sv) != 0)
		abort();
	fcntl(sv[0], F_SETFL, O_NONBLOCK);
	fz_peer_init(p, sv[0]);
	atomic_fetch_add(&FZ_W->n_clients, 1);
	client_accept(FZ_SW, sv[1]);
}

typedef bool (*fz_serve_fn)(void *arg);

/* Runs the worker and the harness's peers until nothing moves for a few
 * rounds (or max_rounds pass). Returns true if it went quiet. */
static bool fz_run(fz_serve_fn serve, void *arg, int max_rounds)
{
	int quiet = 0;
	for (int i = 0; i < max_rounds; i++) {
		bool moved = fz_accept_backends();
		if (serve && serve(arg))
			moved = true;
		struct __kernel_timespec ts = { .tv_sec = 0, .tv_nsec = 100000 };
		if (worker_run_once(FZ_W, &ts) > 0)
			moved = true;
		/* a password being hashed on the auth hasher's thread comes back */
		if (atomic_load(&FZ_W->rt->in_transit) > 0)
			moved = true;
		quiet = moved ? 0 : quiet + 1;
		if (quiet >= 3)
			return true;
	}
	return false;
}

/* Back to the state before the input: see the comment at the top. */
static void fz_reset(struct fz_peer *client)
{
	fz_peer_close(client);
	fz_run(NULL, NULL, 200);
	/* a client waiting for a server has no recv armed, so it notices the
	 * hang-up only at query_wait_timeout: end it as shutdown would */
	for (struct list *n = FZ_SW->clients.next; n != &FZ_SW->clients; n = n->next) {
		struct client *cl = list_entry(n, struct client, link);
		if (!cl->c.closing)
			client_fail(cl, "FATAL", "57P01", "fuzz input done");
	}
	struct pool *p = FZ_POOL;
	for (struct list *n = p->servers.next, *next; n != &p->servers; n = next) {
		next = n->next;
		server_close(list_entry(n, struct server, all), "fuzz input done");
	}
	for (int i = 0; i < fz.n_backends; i++)
		fz_peer_close(&fz.backends[i]);
	fz.n_backends = 0;
	fz.backends_seen = 0;
	for (int i = 0; i < 5000 && (FZ_W->live > 0 || atomic_load(&FZ_W->rt->in_transit) > 0);
	     i++) {
		fz_accept_backends(); /* a connect still in flight: accept and drop it */
		for (int j = 0; j < fz.n_backends; j++)
			fz_peer_close(&fz.backends[j]);
		fz.n_backends = 0;
		struct __kernel_timespec ts = { .tv_sec = 0, .tv_nsec = 1000000 };
		worker_run_once(FZ_W, &ts);
	}
	/* nothing may outlive the input: connections, clients, reservations */
	FUZZ_CHECK(FZ_W->live == 0);
	FUZZ_CHECK(atomic_load(&FZ_W->rt->in_transit) == 0); /* no hash left in flight */
	FUZZ_CHECK(list_empty(&FZ_SW->clients) && atomic_load(&FZ_W->n_clients) == 0);
	FUZZ_CHECK(list_empty(&p->servers) && p->n_servers == 0 && p->n_idle == 0);
	FUZZ_CHECK(p->n_waiting == 0 && p->n_connecting == 0);
	FUZZ_CHECK(atomic_load(&FZ_SHARD->open) == 0);
	free(atomic_exchange(&FZ_SHARD->params, NULL));
	p->backoff_ms = 0;
	p->next_connect_ms = 0;
	p->local_streak = 0;
}

/* With FUZZ_TRACE set (reproducing an input by hand): the message types of
 * a stream, to see how far an input got. */
static inline void fz_trace(const char *what, const uint8_t *b, size_t len, bool quiet)
{
	fprintf(stderr, "%s %zu bytes%s:", what, len, quiet ? "" : " (never went quiet)");
	for (size_t at = 0; at < len;) {
		uint8_t type;
		uint32_t total;
		if (proto_frame(b + at, len - at, PROTO_MAX_MESSAGE, &type, &total) != PROTO_OK) {
			fprintf(stderr, " [%c]", b[at] >= 32 && b[at] < 127 ? b[at] : '?');
			at++;
			continue;
		}
		fprintf(stderr, " %c", type >= 32 && type < 127 ? type : '?');
		if (type == 'E' && total <= len - at)
			fprintf(stderr, "(%.*s)", (int)(total - 5 > 80 ? 80 : total - 5),
				b + at + 5);
		at += total;
	}
	fprintf(stderr, "\n");
}

/* PgCrab's bytes to a client must be a well-formed message stream: the 'N'
 * answers to SSLRequest/GSSENCRequest, then whole messages only. */
static inline void fz_check_client_stream(const uint8_t *b, size_t len)
{
	size_t at = 0;
	while (at < len && b[at] == 'N' && (at + 1 == len || b[at + 1] != 0))
		at++;
	/* protocol 1 and 2 are refused in the old format: 'E', then a string */
	if (len - at > 9 && memcmp(b + at, "EFATAL:  ", 9) == 0 && b[len - 1] == 0
	    && memchr(b + at, 0, len - at) == b + len - 1)
		return;
	while (at < len) {
		uint8_t type;
		uint32_t total;
		enum proto_result r = proto_frame(b + at, len - at, PROTO_MAX_MESSAGE, &type,
						  &total);
		FUZZ_CHECK(r == PROTO_OK && total <= len - at);
		at += total;
	}
}

#endif
