/* pgcrab: flags and configuration, the listening socket, N worker threads
 * running the session layer, and the acceptor on the main thread. */
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
#include "core/log.h"
#include "core/net.h"
#include "core/worker.h"
#include "main/recover.h"
#include "main/cli.h"
#include "session/session.h"

#define PGCRAB_VERSION "0.1.0"

static int cpus_available(void)
{
	cpu_set_t set;
	if (sched_getaffinity(0, sizeof(set), &set) == 0 && CPU_COUNT(&set) > 0)
		return CPU_COUNT(&set);
	long n = sysconf(_SC_NPROCESSORS_ONLN);
	return n > 0 ? (int)n : 1;
}

static int open_listener(const struct cfg *cfg)
{
	struct sockaddr_storage addr;
	socklen_t len;
	char err[256];
	if (net_resolve(cfg->host, cfg->port, true, &addr, &len, err, sizeof(err)) != 0) {
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
	static struct session ss;
	if (signal_fd < 0)
		return 1;
	if (session_build(&rt, &ss, cfg, n_workers, err, sizeof(err)) != 0) {
		log_error("%s", err);
		return 1;
	}
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
	if (recover_start(cfg) != 0)
		log_warn("cannot start the two-phase commit recovery thread");
	log_info("pgcrab %s listening on %s:%d with %d workers, %d shards, pool_mode %s",
		 PGCRAB_VERSION, cfg->host, cfg->port, n_workers, cfg->n_shards,
		 cfg_pool_mode_name(cfg->pool_mode));
	return acceptor_run(&rt, listen_fd, signal_fd);
}
