#include "core/net.h"

#include <arpa/inet.h>
#include <netdb.h>
#include <netinet/in.h>
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

void net_addr_text(const struct sockaddr_storage *ss, socklen_t len, char *host, size_t hostlen,
		   char *port, size_t portlen)
{
	snprintf(host, hostlen, "unix");
	snprintf(port, portlen, "0");
	if (len == 0)
		return;
	if (ss->ss_family == AF_INET) {
		const struct sockaddr_in *a = (const void *)ss;
		inet_ntop(AF_INET, &a->sin_addr, host, (socklen_t)hostlen);
		snprintf(port, portlen, "%u", ntohs(a->sin_port));
	} else if (ss->ss_family == AF_INET6) {
		const struct sockaddr_in6 *a = (const void *)ss;
		inet_ntop(AF_INET6, &a->sin6_addr, host, (socklen_t)hostlen);
		snprintf(port, portlen, "%u", ntohs(a->sin6_port));
	}
}

void net_peer_text(int fd, char *out, size_t len)
{
	struct sockaddr_storage ss;
	socklen_t slen = sizeof(ss);
	char host[64], port[8];
	if (getpeername(fd, (struct sockaddr *)&ss, &slen) != 0)
		slen = 0;
	net_addr_text(&ss, slen, host, sizeof(host), port, sizeof(port));
	if (strcmp(host, "unix") == 0)
		snprintf(out, len, "unix");
	else
		snprintf(out, len, "%s:%s", host, port);
}
