/* The acceptor: the main thread's own io_uring and a signalfd. It tells the
 * workers to accept on the listening sockets (core/worker_accept.h), turns
 * signals into shutdown, reload and upgrade, and accepts itself only while
 * a worker has run out of descriptors: it hands each such client to the
 * worker with the fewest clients, or tells it 53300. */
#ifndef PGCRAB_ACCEPTOR_H
#define PGCRAB_ACCEPTOR_H

#include <sys/types.h>

#include "core/worker.h"

#define ACCEPTOR_MAX_LISTEN 64

struct acceptor_opts {
	const int *listen_fds; /* listening sockets, closed at shutdown */
	int n_listen;          /* 1..ACCEPTOR_MAX_LISTEN */
	int signal_fd;         /* a signalfd for SIGINT, SIGTERM, SIGHUP and SIGUSR2 */
	/* one line of live figures for systemd's STATUS=, sent every few
	 * seconds when NOTIFY_SOCKET is set; NULL: none */
	void (*status)(const struct runtime *rt, char *buf, size_t len);
	/* SIGUSR2: starts the new process of an online upgrade (its pid in
	 * *pid): 0, or -1 if none started (logged). NULL: no upgrades. */
	int (*upgrade_start)(pid_t *pid);
	/* yields a pid_t each time a new process (SIGUSR2's or pgcrab
	 * --takeover's) has the sockets and serves; -1: none */
	int takeover_fd;
	/* the new process serves: this one drains and must leave the sockets'
	 * files to it */
	void (*upgraded)(void);
	/* SIGHUP: asks for a reload of the configuration, which tells
	 * systemd RELOADING=1 and READY=1 itself; NULL: none */
	void (*reload)(struct runtime *rt);
};

/* Runs until shutdown completes; returns the process exit code. Tells
 * systemd (sd_notify) READY=1 once accepting, RELOADING=1 and READY=1
 * around a SIGHUP, STOPPING=1 at shutdown, MAINPID= when an upgrade's new
 * process takes over. */
int acceptor_run(struct runtime *rt, const struct acceptor_opts *opts);

#endif
