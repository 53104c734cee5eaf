/* Logs in to a real PostgreSQL with SCRAM keys only, as PgCrab does for a
 * client whose SCRAM login yielded them: ClientKey from the password and
 * the salt and count of a verifier (what a client's proof gives), ServerKey
 * from that verifier; the password is wiped before the connection opens.
 * Runs SELECT current_user and prints the answer, or the reason the login
 * failed. For tests/integration/t_roles.sh.
 *
 *   scram_keys_login HOST PORT USER DB VERIFIER PASSWORD */
#include <arpa/inet.h>
#include <netinet/in.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

#include "auth/scram_keys.h"
#include "proto/proto.h"

static int fd;

static void send_all(const struct proto_writer *w)
{
	if (write(fd, w->p, w->len) != (ssize_t)w->len) {
		printf("send failed\n");
		exit(1);
	}
}

static void read_n(uint8_t *p, size_t n)
{
	while (n > 0) {
		ssize_t r = read(fd, p, n);
		if (r <= 0) {
			printf("server closed\n");
			exit(1);
		}
		p += r;
		n -= (size_t)r;
	}
}

/* One message: type, body in buf (NUL-terminated), its length. */
static uint32_t next_msg(uint8_t *type, uint8_t *buf, size_t cap)
{
	uint8_t h[5];
	read_n(h, 5);
	uint32_t len = ((uint32_t)h[1] << 24 | (uint32_t)h[2] << 16 | (uint32_t)h[3] << 8 | h[4])
		- 4;
	if (len >= cap) {
		printf("message too long\n");
		exit(1);
	}
	read_n(buf, len);
	buf[len] = 0;
	*type = h[0];
	return len;
}

int main(int argc, char **argv)
{
	if (argc != 7) {
		fprintf(stderr, "usage: %s HOST PORT USER DB VERIFIER PASSWORD\n", argv[0]);
		return 2;
	}
	struct auth_secret secret;
	char bad[128];
	uint8_t ck[32];
	if (auth_secret_parse(argv[5], &secret, bad, sizeof(bad)) != 0
	    || secret.kind != AUTH_SECRET_SCRAM
	    || auth_scram_derive(argv[6], &secret.scram, ck) != 0) {
		printf("bad verifier\n");
		return 1;
	}
	const struct auth_scram_verifier v = secret.scram;
	memset(argv[6], 0, strlen(argv[6])); /* from here on: keys only */
	struct sockaddr_in sa = { .sin_family = AF_INET,
				  .sin_port = htons((uint16_t)atoi(argv[2])) };
	inet_pton(AF_INET, argv[1], &sa.sin_addr);
	fd = socket(AF_INET, SOCK_STREAM, 0);
	if (connect(fd, (struct sockaddr *)&sa, sizeof(sa)) != 0) {
		printf("cannot connect\n");
		return 1;
	}
	static uint8_t out[8192], in[8192];
	struct proto_writer w = proto_writer_init(out, sizeof(out));
	proto_build_startup(&w, argv[3], argv[4], 0, NULL, NULL);
	send_all(&w);
	struct auth_scram_keys k;
	char text[AUTH_SCRAM_MAX_MSG], why[256];
	for (;;) {
		uint8_t type;
		uint32_t len = next_msg(&type, in, sizeof(in));
		w = proto_writer_init(out, sizeof(out));
		if (type == 'E') {
			for (uint8_t *p = in; p < in + len && *p; p += strlen((char *)p) + 1)
				if (*p == 'M')
					printf("server: %s\n", p + 1);
			return 1;
		}
		if (type == 'Z')
			break;
		if (type != 'R')
			continue;
		int32_t code = (int32_t)((uint32_t)in[0] << 24 | (uint32_t)in[1] << 16
					 | (uint32_t)in[2] << 8 | in[3]);
		int n;
		switch (code) {
		case PROTO_AUTH_SASL:
			if (auth_scram_client_init_keys(&k, ck, v.server_key, v.salt, v.salt_len,
							v.iterations, NULL)
				    != 0
			    || (n = auth_scram_keys_first(&k, text, sizeof(text))) < 0)
				return printf("init failed\n"), 1;
			proto_build_sasl_initial(&w, "SCRAM-SHA-256", text, (size_t)n);
			send_all(&w);
			break;
		case PROTO_AUTH_SASL_CONTINUE:
			n = auth_scram_keys_final(&k, (char *)in + 4, len - 4, text, sizeof(text),
						  why, sizeof(why));
			if (n < 0)
				return printf("%s\n", why), 1;
			proto_build_sasl_response(&w, text, (size_t)n);
			send_all(&w);
			break;
		case PROTO_AUTH_SASL_FINAL:
			if (auth_scram_keys_verify(&k, (char *)in + 4, len - 4) != 0)
				return printf("server signature did not verify\n"), 1;
			break;
		case PROTO_AUTH_OK:
			break;
		default:
			return printf("server asks for method %d\n", code), 1;
		}
	}
	proto_build_query(&w, "SELECT current_user");
	send_all(&w);
	for (;;) {
		uint8_t type;
		next_msg(&type, in, sizeof(in));
		if (type == 'D') /* one column: int16 count, int32 length, value */
			printf("%s\n", (char *)in + 6);
		if (type == 'Z')
			return 0;
	}
}
