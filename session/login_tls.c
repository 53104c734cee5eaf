/* TLS at a client's login: the SSLRequest's 'S' path and PostgreSQL 17's
 * direct TLS start the engine (core/tls.c); the startup packet that follows
 * arrives decrypted. client_tls_mode decides what a plaintext startup and a
 * client certificate may do. */
#include <arpa/inet.h>
#include <netinet/in.h>
#include <stdio.h>
#include <string.h>
#include <sys/socket.h>

#include "core/log.h"
#include "core/tls.h"
#include "core/worker.h"
#include "session/client.h"

void login_direct_tls(struct client *cl)
{
	if (cl->c.w->cfg->client_tls_mode == CFG_TLS_DISABLE) {
		/* PostgreSQL without ssl reads 0x16... as a bad startup length */
		log_debug(
			"worker %d client %llu: direct TLS while client_tls_mode = disable; closing",
			cl->c.w->id, (unsigned long long)cl->c.id);
		client_close_now(cl);
		return;
	}
	cl->ssl_asked = true; /* no SSLRequest may follow */
	if (login_start_tls(cl, true) == 0)
		client_next(cl);
}

int login_start_tls(struct client *cl, bool direct)
{
	if (tls_accept(&cl->c, direct) == 0)
		return 0;
	/* no plaintext error after 'S': the client expects a handshake */
	log_error("worker %d client %llu: cannot start TLS (no context or memory); closing",
		  cl->c.w->id, (unsigned long long)cl->c.id);
	client_close_now(cl);
	return -1;
}

/* The client's address as PostgreSQL's messages give it ("[local]" for a
 * Unix socket); false when it is a Unix socket. */
static bool peer_host(int fd, char *buf, size_t len)
{
	struct sockaddr_storage ss;
	socklen_t sl = sizeof(ss);
	snprintf(buf, len, "[local]");
	if (getpeername(fd, (struct sockaddr *)&ss, &sl) != 0 || ss.ss_family == AF_UNIX)
		return ss.ss_family != AF_UNIX;
	const void *a = ss.ss_family == AF_INET6
		? (const void *)&((struct sockaddr_in6 *)&ss)->sin6_addr
		: (const void *)&((struct sockaddr_in *)&ss)->sin_addr;
	if (!inet_ntop(ss.ss_family, a, buf, (socklen_t)len))
		snprintf(buf, len, "?");
	return true;
}

bool login_tls_refuses(struct client *cl, const char *user, const char *database)
{
	struct conn *c = &cl->c;
	enum cfg_tls_mode mode = c->w->cfg->client_tls_mode;
	if (mode < CFG_TLS_REQUIRE)
		return false;
	char host[64];
	if (!c->tls) {
		/* a Unix socket is as local as PostgreSQL's "local" lines: no TLS there */
		if (!peer_host(c->fd, host, sizeof(host)))
			return false;
		client_fail(cl, "FATAL", "28000",
			    "no pgcrab entry for host \"%s\", user \"%s\", database \"%s\", no "
			    "encryption",
			    host, user, database);
		return true;
	}
	char cn[256];
	if (mode == CFG_TLS_VERIFY_FULL
	    && (tls_peer_common_name(c, cn, sizeof(cn)) != 0 || strcmp(cn, user) != 0)) {
		client_fail(cl, "FATAL", "28000",
			    "certificate validation (client_tls_mode=verify-full) failed for user "
			    "\"%s\": CN mismatch",
			    user);
		return true;
	}
	return false;
}
