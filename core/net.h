/* Addresses: resolved once, at start, so that no worker ever blocks in the
 * resolver. */
#ifndef PGCRAB_NET_H
#define PGCRAB_NET_H

#include <stdbool.h>
#include <stddef.h>
#include <sys/socket.h>

/* host:port into out. passive: an address to listen on. A host that is a
 * directory (starts with '/') means, as libpq reads it, PostgreSQL's Unix
 * socket in it (.s.PGSQL.port). 0, or -1 with err. */
int net_resolve(const char *host, int port, bool passive, struct sockaddr_storage *out,
		socklen_t *len, char *err, size_t errlen);

/* An address as text: host (an IP, or "unix" for a Unix socket or none)
 * and port ("0" where there is none). */
void net_addr_text(const struct sockaddr_storage *ss, socklen_t len, char *host, size_t hostlen,
		   char *port, size_t portlen);
/* The peer of socket fd as "host:port" (or "unix"). */
void net_peer_text(int fd, char *out, size_t len);

#endif
