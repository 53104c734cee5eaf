/* pgcrab: flags and configuration, the listening socket, N worker threads
 * and the acceptor on the main thread. */
#include <errno.h>
#include <netdb.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <pthread.h>
#include <sched.h>
#include <signal.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/signalfd.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <unistd.h>

#include "config/cfg.h"
#include "core/acceptor.h"
#include "core/cli.h"
#include "core/log.h"
#include "core/worker.h"
#include "pool/pool.h"

#define PGCRAB_VERSION "0.1.0"

static int cpus_available(void)
{
	cpu_set_t set;
	if (sched_getaffinity(0, sizeof(set), &set) == 0 && CPU_COUNT(&set) > 0)
		return CPU_COUNT(&set);
	long n = sysconf(_SC_NPROCESSORS_ONLN);
	return n > 0 ? (int)n : 1;
}

/* Shard addresses are resolved once at start so that no worker ever blocks
 * in the resolver. */
static int resolve(const char *host, int port, int passive, struct sockaddr_storage *out,
		   socklen_t *len, char *err, size_t errlen)
{
	if (host[0] == '/' && !passive) {
		/* a directory, as libpq reads it: PostgreSQL's Unix socket in it */
		struct sockaddr_un *un = (struct sockaddr_un *)out;
		memset(un, 0, sizeof(*un));
		un->sun_family = AF_UNIX;
		int n = snprintf(un->sun_path, sizeof(un->sun_path), "%s/.s.PGSQL.%d", host, port);
		if (n < 0 || (size_t)n >= sizeof(un->sun_path)) {
			snprintf(err, errlen, "socket path %s/.s.PGSQL.%d is too long", host, port);
			return -1;
		}
		*len = (socklen_t)(offsetof(struct sockaddr_un, sun_path) + (size_t)n + 1);
		return 0;
	}
	struct addrinfo hints = { .ai_family = AF_UNSPEC, .ai_socktype = SOCK_STREAM };
	if (passive)
		hints.ai_flags = AI_PASSIVE;
	char service[16];
	snprintf(service, sizeof(service), "%d", port);
	struct addrinfo *res;
	int r = getaddrinfo(host, service, &hints, &res);
	if (r != 0) {
		snprintf(err, errlen, "cannot resolve %s: %s", host, gai_strerror(r));
		return -1;
	}
	memcpy(out, res->ai_addr, res->ai_addrlen);
	*len = res->ai_addrlen;
	freeaddrinfo(res);
	return 0;
}

static int open_listener(const struct cfg *cfg)
{
	struct sockaddr_storage addr;
	socklen_t len;
	char err[256];
	if (resolve(cfg->host, cfg->port, 1, &addr, &len, err, sizeof(err)) != 0) {
		log_error("cannot listen: %s", err);
		return -1;
	}
	int fd = socket(addr.ss_family, SOCK_STREAM | SOCK_CLOEXEC, 0);
	int one = 1;
	if (fd < 0 || setsockopt(fd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof(one)) != 0
	    || setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof(one)) != 0
	    || bind(fd, (struct sockaddr *)&addr, len) != 0 || listen(fd, 4096) != 0) {
		log_error("cannot listen on %s:%d: %s", cfg->host, cfg->port, strerror(errno));
		if (fd >= 0)
			close(fd);
		return -1;
	}
	return fd;
}

static int build_runtime(struct runtime *rt, struct cfg *cfg, int n_workers)
{
	char err[256];
	rt->cfg = cfg;
	rt->n_shards = cfg->n_shards;
	rt->n_workers = n_workers;
	rt->shards = calloc((size_t)cfg->n_shards + 1, sizeof(*rt->shards));
	rt->workers = calloc((size_t)n_workers, sizeof(*rt->workers));
	if (!rt->shards || !rt->workers)
		return -1;
	for (int i = 0; i < cfg->n_shards; i++) {
		struct shard *sh = &rt->shards[i];
		sh->index = i;
		sh->cfg = &cfg->shards[i];
		if (resolve(sh->cfg->host, sh->cfg->port, 0, &sh->addr, &sh->addrlen, err,
			    sizeof(err)) != 0) {
			log_error("shard %s: %s", sh->cfg->name, err);
			return -1;
		}
	}
	for (int i = 0; i < n_workers; i++) {
		struct worker *w = &rt->workers[i];
		w->id = i;
		w->rt = rt;
		if (getentropy(&w->next_pid, sizeof(w->next_pid)) != 0)
			w->next_pid = (uint32_t)getpid() * 7919u + (uint32_t)i;
		w->pools = calloc((size_t)cfg->n_shards + 1, sizeof(*w->pools));
		if (!w->pools)
			return -1;
		for (int s = 0; s < cfg->n_shards; s++) {
			int min = cfg->shards[s].min_connections;
			int share = min / n_workers + (i < min % n_workers ? 1 : 0);
			pool_init(&w->pools[s], &rt->shards[s], w, share);
		}
	}
	return 0;
}

int main(int argc, char **argv)
{
	struct cli_opts opts;
	char err[512];
	if (cli_parse(argc, argv, NULL, &opts, err, sizeof(err)) != 0) {
		fprintf(stderr, "pgcrab: %s\n", err);
		return 2;
	}
	if (opts.help) {
		cli_usage(stdout);
		return 0;
	}
	if (opts.version) {
		printf("pgcrab %s\n", PGCRAB_VERSION);
		return 0;
	}
	struct cfg *cfg;
	if (cfg_load(opts.config_path, &opts.ov, &cfg, err, sizeof(err)) != 0) {
		fprintf(stderr, "pgcrab: %s\n", err);
		return 1;
	}
	if (opts.check) {
		printf("configuration ok\n");
		cfg_free(cfg);
		return 0;
	}
	atomic_store(&log_threshold, (int)cfg->log_level);
	int n_workers = cfg->workers > 0 ? cfg->workers : cpus_available();
	if (n_workers > MAX_WORKERS)
		n_workers = MAX_WORKERS;

	/* every thread inherits this mask: signals arrive only on the signalfd */
	sigset_t mask;
	sigemptyset(&mask);
	sigaddset(&mask, SIGINT);
	sigaddset(&mask, SIGTERM);
	sigaddset(&mask, SIGHUP);
	sigaddset(&mask, SIGPIPE);
	pthread_sigmask(SIG_BLOCK, &mask, NULL);
	sigdelset(&mask, SIGPIPE);
	int signal_fd = signalfd(-1, &mask, SFD_CLOEXEC);

	static struct runtime rt;
	if (signal_fd < 0 || build_runtime(&rt, cfg, n_workers) != 0)
		return 1;
	int listen_fd = open_listener(cfg);
	if (listen_fd < 0)
		return 1;
	pthread_barrier_init(&rt.ready, NULL, (unsigned)n_workers + 1);
	for (int i = 0; i < n_workers; i++) {
		if (pthread_create(&rt.workers[i].thread, NULL, worker_main, &rt.workers[i]) != 0) {
			log_error("cannot start worker thread %d", i);
			return 1;
		}
	}
	pthread_barrier_wait(&rt.ready);
	for (int i = 0; i < n_workers; i++)
		if (rt.workers[i].ring_fd < 0)
			return 1;
	log_info("pgcrab %s listening on %s:%d with %d workers, %d shards, pool_mode %s",
		 PGCRAB_VERSION, cfg->host, cfg->port, n_workers, cfg->n_shards,
		 cfg_pool_mode_name(cfg->pool_mode));
	return acceptor_run(&rt, listen_fd, signal_fd);
}
