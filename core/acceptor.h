/* The acceptor: the main thread's own io_uring with a multishot accept and
 * a signalfd. It hands each client to the worker with the fewest clients
 * and turns signals into shutdown. */
#ifndef PGCRAB_ACCEPTOR_H
#define PGCRAB_ACCEPTOR_H

#include "core/worker.h"

/* Runs until shutdown completes; returns the process exit code. signal_fd
 * is a signalfd for SIGINT, SIGTERM and SIGHUP. */
int acceptor_run(struct runtime *rt, int listen_fd, int signal_fd);

#endif
