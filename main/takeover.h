/* Online upgrade and takeover. A running PgCrab listens on a control
 * socket (SOCK_SEQPACKET, mode 0600, and only a peer of its own user or
 * root is answered). A new process connects there (pgcrab --takeover), or
 * gets one end of a socket pair from the old process (SIGUSR2 starts the
 * binary at its own path again), and the conversation is the same:
 *
 *   new -> old  'H' version
 *   old -> new  'L' the listening sockets and the control socket, as
 *               SCM_RIGHTS, with the Unix socket's and control socket's
 *               paths (now the new process's to remove at exit)
 *   new -> old  'R' its pid, once it serves: the old one tells systemd
 *               MAINPID, stops accepting and drains
 *   old -> new  'C' each idle client, its socket and session
 *               (session/handover.h), until the old process exits
 *
 * Both processes accept on the sockets meanwhile: none is refused. */
#ifndef PGCRAB_TAKEOVER_H
#define PGCRAB_TAKEOVER_H

#include <stdbool.h>
#include <sys/types.h>

#include "core/worker.h"
#include "main/listen.h"

/* What a new process received: listening sockets, the control socket. */
struct takeover_given {
	int fds[LISTEN_MAX];
	int n;
	int control_fd; /* -1: the old process had none */
	bool stored;    /* the sockets are in systemd's fd store */
	char unix_path[sizeof(((struct sockaddr_un *)0)->sun_path)];
	char control_path[sizeof(((struct sockaddr_un *)0)->sun_path)];
};

/* Remembers how this process was started (first thing in main). */
void takeover_init(int argc, char **argv);

/* The control socket's path: --control-socket, else in unix_socket_dir,
 * else in $RUNTIME_DIRECTORY; "" when there is none. */
void takeover_control_path(const char *flag, const struct cfg *cfg, char *buf, size_t len);

/* New process: with --takeover (connect to path) or as SIGUSR2's child,
 * receives the sockets. 1: *g filled; 0: this is no takeover; -1: err. */
int takeover_receive(bool asked, const char *path, struct takeover_given *g, char *err,
		     size_t errlen) __attribute__((warn_unused_result));
/* New process, serving: tells the old one, then adopts the clients it
 * hands over (a thread of its own, blocking on the control connection). */
void takeover_serving(struct runtime *rt);

/* Running process: serves takeovers on the control socket (the one
 * received, control_fd, or a new one at path) from a thread of its own.
 * Returns the descriptor the acceptor reads each new process's pid from
 * (acceptor_opts.takeover_fd), or -1. */
int takeover_listen(struct runtime *rt, const struct listeners *ls, const char *path,
		    int control_fd);
/* SIGUSR2 (the acceptor's thread): starts the binary again, connected to
 * this process by a socket pair. 0, or -1 (logged). */
int takeover_spawn(pid_t *pid);
/* At exit: ends the threads, removes the control socket if still ours. */
void takeover_stop(void);

#endif
