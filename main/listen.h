/* The listening sockets: the ones a running PgCrab hands over
 * (main/takeover.h), the ones systemd passes (socket activation, or its fd
 * store on a restart: LISTEN_FDS), or else TCP on host:port and, with unix_socket_dir, a Unix
 * socket DIR/.s.PGSQL.port as PostgreSQL names its own. */
#ifndef PGCRAB_LISTEN_H
#define PGCRAB_LISTEN_H

#include <stdbool.h>
#include <stddef.h>
#include <sys/un.h>

#include "config/cfg.h"

#define LISTEN_MAX 16

struct listeners {
	int fds[LISTEN_MAX];
	int n;
	/* "systemd" (socket activation) or "the previous process" (an online
	 * upgrade): the config's addresses are not used; NULL: opened here */
	const char *from;
	char unix_path[sizeof(((struct sockaddr_un *)0)->sun_path)]; /* ours to unlink, or "" */
	bool stored;     /* in systemd's fd store: the socket file is not removed at exit */
	char where[256]; /* for the log: "127.0.0.1:6432, /run/pgcrab/.s.PGSQL.6432" */
};

/* Sockets a takeover received. */
struct listeners_handed {
	const int *fds;
	int n;
	bool stored;
	const char *unix_path; /* the socket file the old process made, or "" */
};

/* Opens or adopts the listening sockets: h's (a takeover), else systemd's,
 * else our own (LISTEN_FDS is unset after, so nothing started later
 * inherits it). 0, or -1 with err and nothing left open. */
int listeners_open(const struct cfg *cfg, const struct listeners_handed *h, struct listeners *ls,
		   char *err, size_t errlen) __attribute__((warn_unused_result));

/* Under systemd (NOTIFY_SOCKET), puts sockets this process opened in the
 * fd store (FDSTORE=1, FDNAME=pgcrab-listen), so that a restart gets them
 * back: 1 stored, 0 nothing to do, < 0 -errno. */
int listeners_store(struct listeners *ls);

/* Every listener is a Unix socket or on a loopback address (what
 * auth_type = trust needs, whoever opened the sockets). */
bool listeners_all_local(const struct listeners *ls);

/* Removes the Unix socket file this process owns (at exit). */
void listeners_unlink(struct listeners *ls);
/* The socket file belongs to an upgrade's new process now: not removed. */
void listeners_give_up_unix(struct listeners *ls);

#endif
