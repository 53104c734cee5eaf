/* pgcrab: flags and configuration, the listening sockets, N worker threads
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
#include <time.h>
#include <sys/signalfd.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <unistd.h>

#include "config/cfg.h"
#include "core/acceptor.h"
#include "core/log.h"
#include "core/version.h"
#include "core/net.h"
#include "core/worker.h"
#include "core/tls.h"
#include "main/cli.h"
#include "main/listen.h"
#include "main/metrics.h"
#include "main/recover.h"
#include "main/takeover.h"
#include "session/reload.h"
#include "session/session.h"

static int cpus_available(void)
{
	cpu_set_t set;
	if (sched_getaffinity(0, sizeof(set), &set) == 0 && CPU_COUNT(&set) > 0)
		return CPU_COUNT(&set);
	long n = sysconf(_SC_NPROCESSORS_ONLN);
	return n > 0 ? (int)n : 1;
}

/* systemd's STATUS= line: what `systemctl status pgcrab` shows. The rate
 * is over the time since the last line (the acceptor's thread only). */
static void status_line(const struct runtime *rt, char *buf, size_t len)
{
	static uint64_t last_tx, last_us;
	const struct session *ss = rt->owner;
	int clients = 0, servers = 0;
	uint64_t tx = 0;
	for (int i = 0; i < rt->n_workers; i++) {
		clients += atomic_load(&rt->workers[i].n_clients);
		tx += atomic_load_explicit(&rt->workers[i].n_transactions, memory_order_relaxed);
	}
	for (int i = 0; i < ss->n_shards; i++)
		servers += atomic_load(&ss->shards[i].open);
	struct timespec ts;
	clock_gettime(CLOCK_MONOTONIC, &ts);
	uint64_t now_us = (uint64_t)ts.tv_sec * 1000000 + (uint64_t)ts.tv_nsec / 1000;
	double tps = last_us && now_us > last_us
		? (double)(tx - last_tx) * 1e6 / (double)(now_us - last_us)
		: 0;
	last_tx = tx;
	last_us = now_us;
	snprintf(buf, len, "%d clients, %d server connections, %.0f transactions/s", clients,
		 servers, tps);
}

static struct listeners ls;

static void upgraded(void)
{
	listeners_give_up_unix(&ls);
}

static void reload(struct runtime *rt)
{
	reload_ask(rt, NULL);
}

int main(int argc, char **argv)
{
	takeover_init(argc, argv);
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
	/* certificates and keys are read now: a bad one stops the start */
	if (tls_configure(cfg, err, sizeof(err)) != 0) {
		fprintf(stderr, "pgcrab: %s\n", err);
		cfg_free(cfg);
		return 1;
	}
	if (opts.check) {
		tls_shutdown();
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
	sigaddset(&mask, SIGUSR2);
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
	atomic_store(&rt.handover_fd, -1);
	atomic_store(&rt.predecessor_fd, -1);
	/* pgcrab --takeover, or SIGUSR2's child: the running PgCrab's sockets */
	char control[sizeof(((struct sockaddr_un *)0)->sun_path)];
	takeover_control_path(opts.control_path, cfg, control, sizeof(control));
	struct takeover_given given;
	int took = takeover_receive(opts.takeover, control, &given, err, sizeof(err));
	if (took < 0) {
		log_error("%s", err);
		return 1;
	}
	struct listeners_handed handed = { given.fds, given.n, given.stored, given.unix_path };
	if (listeners_open(cfg, took ? &handed : NULL, &ls, err, sizeof(err)) != 0) {
		log_error("%s", err);
		return 1;
	}
	int stored = listeners_store(&ls);
	if (stored < 0)
		log_warn("cannot put the listening sockets in systemd's fd store: %s",
			 strerror(-stored));
	else if (stored > 0)
		log_info("the listening sockets are in systemd's fd store (a restart keeps them)");
	if (cfg->auth_type == CFG_AUTH_TRUST) {
		/* the config was checked at load; sockets from systemd or an
		 * upgrade are checked here */
		if (!listeners_all_local(&ls)) {
			log_error("auth_type = trust is allowed only when every listener is "
				  "loopback or a Unix socket; listening on %s",
				  ls.where);
			return 1;
		}
		log_warn("auth_type = trust: anyone who can reach %s logs in as any user "
			 "without a password",
			 ls.where);
	}
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
	if (metrics_start(&rt, cfg, err, sizeof(err)) != 0) {
		log_error("%s", err);
		return 1;
	}
	if (reload_start(&rt, &opts.ov, err, sizeof(err)) != 0) {
		log_error("%s", err);
		return 1;
	}
	if (recover_start(cfg) != 0)
		log_warn("cannot start the two-phase commit recovery thread");
	log_info("pgcrab %s listening on %s%s%s%s with %d workers, %d shards, pool_mode %s",
		 PGCRAB_VERSION, ls.where, ls.from ? " (from " : "", ls.from ? ls.from : "",
		 ls.from ? ")" : "", n_workers, cfg->n_shards, cfg_pool_mode_name(cfg->pool_mode));
	/* serves takeovers from now on, on the control socket received or
	 * a new one (a received one keeps the path it was made at) */
	bool handed_control = took && given.control_fd >= 0;
	int takeover_fd = takeover_listen(&rt, &ls, handed_control ? given.control_path : control,
					  handed_control ? given.control_fd : -1);
	/* the listeners queue clients already: the old process may stop
	 * accepting now, and hand its idle clients over */
	takeover_serving(&rt);
	struct acceptor_opts ao = {
		.listen_fds = ls.fds,
		.n_listen = ls.n,
		.signal_fd = signal_fd,
		.status = status_line,
		.upgrade_start = takeover_fd >= 0 ? takeover_spawn : NULL,
		.takeover_fd = takeover_fd,
		.upgraded = upgraded,
		.reload = reload,
	};
	int rc = acceptor_run(&rt, &ao);
	reload_stop(&rt);
	takeover_stop();
	metrics_stop();
	listeners_unlink(&ls);
	return rc;
}
