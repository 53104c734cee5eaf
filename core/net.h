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

#endif
