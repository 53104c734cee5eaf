#include "main/listen.h"

#include <errno.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <arpa/inet.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <systemd/sd-daemon.h>
#include <unistd.h>

#include "core/net.h"

#define BACKLOG 4096

static void note_where(struct listeners *ls, const char *what)
{
	size_t used = strlen(ls->where);
	snprintf(ls->where + used, sizeof(ls->where) - used, "%s%s", used ? ", " : "", what);
}

static void close_all(struct listeners *ls)
{
	for (int i = 0; i < ls->n; i++)
		close(ls->fds[i]);
	ls->n = 0;
}

/* Accepted sockets inherit TCP_NODELAY from their listener (one syscall
 * less per client), so it is set here on TCP listeners, systemd's too. */
static void set_nodelay(int fd)
{
	int one = 1;
	(void)setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof(one));
}

/* systemd's sockets (fds NULL: at 3, 4, ...), or a takeover's (from is
 * the giver's name, for messages). */
static int adopt(struct listeners *ls, const int *fds, int n, const char *from, char *err,
		 size_t errlen)
{
	if (n > LISTEN_MAX) {
		snprintf(err, errlen, "%s passed %d sockets; at most %d are supported", from, n,
			 LISTEN_MAX);
		return -1;
	}
	for (int i = 0; i < n; i++) {
		int fd = fds ? fds[i] : SD_LISTEN_FDS_START + i;
		if (sd_is_socket(fd, AF_UNSPEC, SOCK_STREAM, 1) <= 0) {
			snprintf(err, errlen, "socket %d from %s is not a listening stream socket",
				 fd, from);
			return -1;
		}
		(void)fcntl(fd, F_SETFD, FD_CLOEXEC);
		struct sockaddr_storage addr;
		socklen_t len = sizeof(addr);
		char what[160] = "?";
		if (getsockname(fd, (struct sockaddr *)&addr, &len) == 0) {
			if (addr.ss_family == AF_UNIX) {
				snprintf(what, sizeof(what), "%s",
					 ((struct sockaddr_un *)&addr)->sun_path);
			} else {
				set_nodelay(fd);
				char host[64] = "?";
				int port = 0;
				if (addr.ss_family == AF_INET) {
					struct sockaddr_in *in = (struct sockaddr_in *)&addr;
					inet_ntop(AF_INET, &in->sin_addr, host, sizeof(host));
					port = ntohs(in->sin_port);
				} else if (addr.ss_family == AF_INET6) {
					struct sockaddr_in6 *in = (struct sockaddr_in6 *)&addr;
					inet_ntop(AF_INET6, &in->sin6_addr, host, sizeof(host));
					port = ntohs(in->sin6_port);
				}
				snprintf(what, sizeof(what), "%s:%d", host, port);
			}
		}
		ls->fds[ls->n++] = fd;
		note_where(ls, what);
	}
	return 0;
}

static int open_tcp(const struct cfg *cfg, struct listeners *ls, char *err, size_t errlen)
{
	struct sockaddr_storage addr;
	socklen_t len;
	char why[256];
	if (net_resolve(cfg->host, cfg->port, true, &addr, &len, why, sizeof(why)) != 0) {
		snprintf(err, errlen, "cannot listen: %s", why);
		return -1;
	}
	int fd = socket(addr.ss_family, SOCK_STREAM | SOCK_CLOEXEC, 0);
	int one = 1;
	if (fd < 0 || setsockopt(fd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof(one)) != 0
	    || bind(fd, (struct sockaddr *)&addr, len) != 0 || listen(fd, BACKLOG) != 0) {
		snprintf(err, errlen, "cannot listen on %s:%d: %s", cfg->host, cfg->port,
			 strerror(errno));
		if (fd >= 0)
			close(fd);
		return -1;
	}
	set_nodelay(fd);
	ls->fds[ls->n++] = fd;
	char what[160];
	snprintf(what, sizeof(what), "%s:%d", cfg->host, cfg->port);
	note_where(ls, what);
	return 0;
}

/* A socket file left by a process that died is removed; one that answers
 * belongs to a live server and is left alone (as PostgreSQL refuses to start
 * over a running postmaster's socket). */
static int clear_stale(const struct sockaddr_un *un, socklen_t len, char *err, size_t errlen)
{
	struct stat st;
	if (lstat(un->sun_path, &st) != 0)
		return 0;
	if (!S_ISSOCK(st.st_mode)) {
		snprintf(err, errlen, "cannot listen on %s: it exists and is not a socket",
			 un->sun_path);
		return -1;
	}
	int probe = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
	if (probe >= 0 && connect(probe, (const struct sockaddr *)un, len) == 0) {
		close(probe);
		snprintf(err, errlen, "cannot listen on %s: another server is listening there",
			 un->sun_path);
		return -1;
	}
	if (probe >= 0)
		close(probe);
	(void)unlink(un->sun_path);
	return 0;
}

static int open_unix(const struct cfg *cfg, struct listeners *ls, char *err, size_t errlen)
{
	struct sockaddr_un un = { .sun_family = AF_UNIX };
	int n = snprintf(un.sun_path, sizeof(un.sun_path), "%s/.s.PGSQL.%d", cfg->unix_socket_dir,
			 cfg->port);
	if (n < 0 || (size_t)n >= sizeof(un.sun_path)) {
		snprintf(err, errlen, "unix_socket_dir %s is too long for a socket path",
			 cfg->unix_socket_dir);
		return -1;
	}
	socklen_t len = (socklen_t)(offsetof(struct sockaddr_un, sun_path) + (size_t)n + 1);
	if (clear_stale(&un, len, err, errlen) != 0)
		return -1;
	int fd = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
	if (fd < 0 || bind(fd, (struct sockaddr *)&un, len) != 0) {
		snprintf(err, errlen, "cannot listen on %s: %s", un.sun_path, strerror(errno));
		if (fd >= 0)
			close(fd);
		return -1;
	}
	/* who may connect is the business of the directory's permissions and of
	 * logging in, as with PostgreSQL's default unix_socket_permissions */
	if (chmod(un.sun_path, 0777) != 0 || listen(fd, BACKLOG) != 0) {
		snprintf(err, errlen, "cannot listen on %s: %s", un.sun_path, strerror(errno));
		close(fd);
		(void)unlink(un.sun_path);
		return -1;
	}
	ls->fds[ls->n++] = fd;
	snprintf(ls->unix_path, sizeof(ls->unix_path), "%s", un.sun_path);
	note_where(ls, un.sun_path);
	return 0;
}

/* Names PgCrab gives the sockets it puts in systemd's fd store: on a
 * restart they come back among LISTEN_FDS under this name. */
#define FDSTORE_NAME "pgcrab-listen"

int listeners_open(const struct cfg *cfg, const struct listeners_handed *h, struct listeners *ls,
		   char *err, size_t errlen)
{
	memset(ls, 0, sizeof(*ls));
	if (h && h->n > 0) {
		if (adopt(ls, h->fds, h->n, "the previous process", err, errlen) != 0) {
			close_all(ls);
			return -1;
		}
		ls->from = "the previous process";
		ls->stored = h->stored;
		/* its socket file is ours now: ours to remove at exit */
		if (h->unix_path && h->unix_path[0])
			snprintf(ls->unix_path, sizeof(ls->unix_path), "%s", h->unix_path);
		return 0;
	}
	char **names = NULL;
	int n = sd_listen_fds_with_names(1, &names);
	if (n < 0) {
		snprintf(err, errlen, "cannot read the sockets systemd passed: %s", strerror(-n));
		return -1;
	}
	int r;
	if (n > 0) {
		r = adopt(ls, NULL, n, "systemd", err, errlen);
		ls->from = "systemd";
		/* a restart: the sockets a previous PgCrab stored, still in the
		 * store (and their socket file still names them) */
		for (int i = 0; names && i < n; i++)
			if (strcmp(names[i], FDSTORE_NAME) == 0) {
				ls->from = "systemd's fd store";
				ls->stored = true;
			}
	} else {
		r = open_tcp(cfg, ls, err, errlen);
		if (r == 0 && cfg->unix_socket_dir[0])
			r = open_unix(cfg, ls, err, errlen);
	}
	for (int i = 0; names && names[i]; i++)
		free(names[i]);
	free(names);
	if (r != 0) {
		listeners_unlink(ls);
		close_all(ls);
	}
	return r;
}

int listeners_store(struct listeners *ls)
{
	/* FDSTORE (systemd 254 and later) is the store's size: 0, no store */
	const char *max = getenv("FDSTORE");
	const char *notify = getenv("NOTIFY_SOCKET");
	if (ls->from || !notify || !*notify || (max && atoi(max) <= 0))
		return 0;
	int r = sd_pid_notify_with_fds(0, 0, "FDSTORE=1\nFDNAME=" FDSTORE_NAME, ls->fds,
				       (unsigned)ls->n);
	if (r <= 0)
		return r;
	/* systemd holds the sockets across a restart: their file stays too */
	ls->stored = true;
	return 1;
}

void listeners_give_up_unix(struct listeners *ls)
{
	ls->unix_path[0] = '\0';
}

void listeners_unlink(struct listeners *ls)
{
	if (ls->unix_path[0] && !ls->stored)
		(void)unlink(ls->unix_path);
	ls->unix_path[0] = '\0';
}

bool listeners_all_local(const struct listeners *ls)
{
	for (int i = 0; i < ls->n; i++) {
		struct sockaddr_storage ss;
		socklen_t len = sizeof(ss);
		if (getsockname(ls->fds[i], (struct sockaddr *)&ss, &len) != 0)
			return false;
		if (ss.ss_family == AF_UNIX)
			continue;
		if (ss.ss_family == AF_INET
		    && (ntohl(((struct sockaddr_in *)&ss)->sin_addr.s_addr) >> 24) == 127)
			continue;
		if (ss.ss_family == AF_INET6
		    && IN6_IS_ADDR_LOOPBACK(&((struct sockaddr_in6 *)&ss)->sin6_addr))
			continue;
		return false;
	}
	return true;
}
