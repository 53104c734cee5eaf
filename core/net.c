#include "core/net.h"

#include <netdb.h>
#include <stdio.h>
#include <string.h>
#include <sys/un.h>

int net_resolve(const char *host, int port, bool passive, struct sockaddr_storage *out,
		socklen_t *len, char *err, size_t errlen)
{
	if (host[0] == '/' && !passive) {
		struct sockaddr_un *un = (struct sockaddr_un *)out;
		memset(un, 0, sizeof(*un));
		un->sun_family = AF_UNIX;
		int n = snprintf(un->sun_path, sizeof(un->sun_path), "%s/.s.PGSQL.%d", host, port);
		if (n < 0 || (size_t)n >= sizeof(un->sun_path)) {
			snprintf(err, errlen, "socket path %s/.s.PGSQL.%d is too long", host, port);
			return -1;
		}
		*len = (socklen_t)(offsetof(struct sockaddr_un, sun_path) + (size_t)n + 1);
		return 0;
	}
	struct addrinfo hints = { .ai_family = AF_UNSPEC, .ai_socktype = SOCK_STREAM };
	if (passive)
		hints.ai_flags = AI_PASSIVE;
	char service[16];
	snprintf(service, sizeof(service), "%d", port);
	struct addrinfo *res;
	int r = getaddrinfo(host, service, &hints, &res);
	if (r != 0) {
		snprintf(err, errlen, "cannot resolve %s: %s", host, gai_strerror(r));
		return -1;
	}
	memcpy(out, res->ai_addr, res->ai_addrlen);
	*len = res->ai_addrlen;
	freeaddrinfo(res);
	return 0;
}
