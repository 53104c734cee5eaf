/* Client authentication settings, checked when a configuration loads:
 * every [user] password's form (cleartext, md5 hash, SCRAM verifier), the
 * users of auth_file (PgBouncer's userlist.txt), the listeners trust may
 * run on, and the verifiers computed once per load for cleartext passwords
 * so that a SCRAM login never runs PBKDF2 on a worker. */
#include "config/cfg_auth.h"

#include <arpa/inet.h>
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/stat.h>

#include "auth/secret.h"

#define AUTH_FILE_MAX (64u << 20) /* a userlist larger than this is surely a mistake */

/* host names only the loopback interface: trust is refused on anything else */
static bool host_is_loopback(const char *host)
{
	struct in_addr a4;
	struct in6_addr a6;
	if (strcasecmp(host, "localhost") == 0)
		return true;
	if (inet_pton(AF_INET, host, &a4) == 1)
		return (ntohl(a4.s_addr) >> 24) == 127;
	if (inet_pton(AF_INET6, host, &a6) == 1)
		return IN6_IS_ADDR_LOOPBACK(&a6);
	return false;
}

struct file_load {
	struct cfg *cfg;
	int n_config; /* users from [user.*] sections: they win over the file */
	int cap;
};

static int add_file_user(void *arg, const char *user, const char *password, char *why,
			 size_t whylen)
{
	struct file_load *fl = arg;
	struct cfg *cfg = fl->cfg;
	for (int i = 0; i < cfg->n_users; i++) {
		if (strcmp(cfg->users[i].name, user) != 0)
			continue;
		if (i < fl->n_config)
			return 0; /* the [user.NAME] section wins */
		snprintf(why, whylen, "user \"%s\" is listed twice", user);
		return -1;
	}
	if (cfg->n_users == fl->cap) {
		int want = fl->cap ? fl->cap * 2 : 8;
		struct cfg_user *grown = realloc(cfg->users, (size_t)want * sizeof(*grown));
		if (!grown) {
			snprintf(why, whylen, "out of memory");
			return -1;
		}
		cfg->users = grown;
		fl->cap = want;
	}
	struct cfg_user *u = &cfg->users[cfg->n_users];
	memset(u, 0, sizeof(*u));
	u->name = strdup(user);
	u->password = strdup(password);
	u->from_file = true;
	cfg->n_users++; /* counted now: cfg_free frees name and password as a section's */
	if (!u->name || !u->password) {
		snprintf(why, whylen, "out of memory");
		return -1;
	}
	if (!password[0]) {
		snprintf(why, whylen, "user \"%s\": the password must not be empty", user);
		return -1;
	}
	if (auth_secret_parse(password, &u->secret, why, whylen) != 0)
		return -1;
	return 0;
}

/* auth_file, relative to the configuration file's directory unless absolute. */
static int load_auth_file(struct cfg *cfg, int line, char *err, size_t errlen)
{
	char path[4096];
	const char *slash = strrchr(cfg->path, '/');
	if (cfg->auth_file[0] == '/' || !slash)
		snprintf(path, sizeof(path), "%s", cfg->auth_file);
	else
		snprintf(path, sizeof(path), "%.*s/%s", (int)(slash - cfg->path), cfg->path,
			 cfg->auth_file);
	FILE *fp = fopen(path, "r");
	if (!fp) {
		snprintf(err, errlen, "%s:%d: [pgcrab] auth_file: cannot open %s: %s", cfg->path,
			 line, path, strerror(errno));
		return -1;
	}
	/* a regular file only: a FIFO or a device could block the load forever */
	struct stat st;
	if (fstat(fileno(fp), &st) != 0 || !S_ISREG(st.st_mode) || st.st_size > AUTH_FILE_MAX) {
		snprintf(err, errlen,
			 "%s:%d: [pgcrab] auth_file: %s is not a regular file of at most 64 MB",
			 cfg->path, line, path);
		fclose(fp);
		return -1;
	}
	size_t cap = (size_t)st.st_size + 1;
	char *text = malloc(cap);
	size_t len = text ? fread(text, 1, cap, fp) : 0;
	bool read_err = ferror(fp) || len == cap; /* it grew while read: a reload retries */
	fclose(fp);
	if (!text || read_err) {
		snprintf(err, errlen, "%s:%d: [pgcrab] auth_file: %s: %s", cfg->path, line, path,
			 text ? "read error" : "out of memory");
		free(text);
		return -1;
	}
	struct file_load fl = { .cfg = cfg, .n_config = cfg->n_users, .cap = cfg->n_users };
	int bad = 0;
	char why[256];
	int rc = auth_userlist_parse(text, len, add_file_user, &fl, &bad, why, sizeof(why));
	explicit_bzero(text, len);
	free(text);
	if (rc != 0)
		snprintf(err, errlen, "%s:%d: %s", path, bad, why);
	return rc;
}

int cfg_auth_resolve(struct cfg *cfg, const int *pw_lines, int auth_line, int type_line, char *err,
		     size_t errlen)
{
	char why[256];
	for (int i = 0; i < cfg->n_users; i++) {
		struct cfg_user *u = &cfg->users[i];
		if (auth_secret_parse(u->password, &u->secret, why, sizeof(why)) != 0) {
			snprintf(err, errlen, "%s:%d: [user.%s] password: %s", cfg->path,
				 pw_lines[i], u->name, why);
			return -1;
		}
	}
	if (cfg->auth_file[0] && load_auth_file(cfg, auth_line, err, errlen) != 0)
		return -1;

	for (int i = 0; i < cfg->n_users; i++) {
		const struct cfg_user *u = &cfg->users[i];
		auth_key_mix(cfg->auth_key, u->name, strlen(u->name) + 1);
		auth_key_mix(cfg->auth_key, u->password, strlen(u->password) + 1);
	}

	switch (cfg->auth_type) {
	case CFG_AUTH_TRUST:
		/* anyone who reaches the socket logs in as anyone: only where
		 * reaching it already takes an account on this machine */
		if (!host_is_loopback(cfg->host)) {
			snprintf(err, errlen,
				 "%s:%d: [pgcrab] auth_type: trust is allowed only when every "
				 "listener is loopback or a Unix socket, but host is %s",
				 cfg->path, type_line, cfg->host);
			return -1;
		}
		break;
	case CFG_AUTH_CERT:
		/* the certificate's CN names the user: only a verified one counts */
		if (cfg->client_tls_mode < CFG_TLS_VERIFY_CA) {
			snprintf(err, errlen,
				 "%s:%d: [pgcrab] auth_type: cert needs client certificates "
				 "(client_tls_mode = verify-ca or verify-full)",
				 cfg->path, type_line);
			return -1;
		}
		break;
	case CFG_AUTH_SCRAM:
		/* once per load, off the workers: PBKDF2 of each cleartext password */
		for (int i = 0; i < cfg->n_users; i++) {
			struct cfg_user *u = &cfg->users[i];
			if (u->secret.kind == AUTH_SECRET_CLEARTEXT
			    && auth_secret_add_verifier(&u->secret, u->password, cfg->auth_key,
							u->name)
				    != 0) {
				snprintf(err, errlen,
					 "cannot compute the SCRAM verifier of user %s", u->name);
				return -1;
			}
		}
		break;
	case CFG_AUTH_PLAIN:
	case CFG_AUTH_MD5:
		break;
	}
	return 0;
}
