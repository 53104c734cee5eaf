/* Configuration loading.
 *
 * Every key lives in one table (keys[] below): its section kind, name, type,
 * where it is stored, its default as text and an optional validator. The inih
 * callback, the defaults, the flag/environment overrides and cfg_free() are
 * all driven by that table, so adding a key is adding one row.
 *
 * inih as packaged gives the callback neither a line number nor a call for a
 * section header, and truncates section names to 50 bytes. So we feed it
 * through our own line reader (ini_parse_stream): the reader counts lines,
 * opens sections itself when it sees a header (so an empty [shard.x] still
 * exists and can be reported), strips leading whitespace (so an indented line
 * is an ordinary key, never a surprise continuation of the previous value)
 * and stops the parse at the first error. inih still splits `key = value`,
 * strips comments and reports lines it cannot make sense of.
 */
#include "config/cfg.h"
#include "config/cfg_auth.h"
#include "router/router.h"

#include <ctype.h>
#include <errno.h>
#include <ini.h>
#include <limits.h>
#include <stdarg.h>
#include <stdatomic.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#define ARRAY_LEN(a) (sizeof(a) / sizeof((a)[0]))

enum sect_kind { SECT_NONE, SECT_PGCRAB, SECT_SHARD, SECT_USER, SECT_DATABASE, SECT_TABLE };

/* [database.NAME] and [sharded_table.NAME] as written. They name other
 * sections, which may come later in the file, so they are turned into
 * cfg->databases and cfg->sharded_tables only once the whole file is read
 * (resolve_databases, resolve_tables). */
struct raw_database {
	char **shards;
	int n_shards;
	int cross_queries; /* index into cross_queries_names */
	int cross_writes;  /* index into cross_writes_names */
};

struct raw_table {
	char *database;
	char **columns;
	int n_columns;
	char **types;
	int n_types;
};

enum key_type {
	T_STRING,   /* char * at off */
	T_INT,      /* int at off, within [min, max] */
	T_DURATION, /* uint64_t milliseconds at off, at most max_ms */
	T_ENUM,     /* enum (int-sized) at off, index into names[] */
	T_LIST,     /* char ** at off, int count at count_off; comma separated */
	T_BOOL,     /* bool at off: on/off, true/false, yes/no, 1/0 (as PostgreSQL) */
};

/* Checks the raw text before it is converted. Returns 0, or -1 with why. */
typedef int (*validator_fn)(const char *text, char *why, size_t whylen);

struct key_def {
	enum sect_kind sect;
	const char *key;
	enum key_type type;
	size_t off;
	size_t count_off;         /* T_LIST only */
	const char *def;          /* default as text; NULL = none (see flags) */
	int min, max;             /* T_INT */
	uint64_t max_ms;          /* T_DURATION */
	const char *const *names; /* T_ENUM, NULL-terminated, index = value */
	validator_fn check;
	unsigned flags;
};

#define F_REQUIRED     1u /* the section is invalid without this key */
#define F_DEFAULT_NAME 2u /* the default is the section's name */
/* A list that may be given on several lines, each adding to it in order (a
 * line holds at most 199 characters, fewer than 64 shard names need). */
#define F_APPEND       4u

_Static_assert(sizeof(enum cfg_pool_mode) == sizeof(int), "enums are stored as int");
_Static_assert(sizeof(enum cfg_pin_mode) == sizeof(int), "enums are stored as int");
_Static_assert(sizeof(enum cfg_auth_type) == sizeof(int), "enums are stored as int");
_Static_assert(sizeof(enum cfg_log_level) == sizeof(int), "enums are stored as int");
_Static_assert(sizeof(enum cfg_cpu_affinity) == sizeof(int), "enums are stored as int");
_Static_assert(sizeof(enum cfg_tls_mode) == sizeof(int), "enums are stored as int");

static const char *const pool_mode_names[] = { "transaction", "session", NULL };
static const char *const pin_mode_names[] = { "on", "error", "off", NULL };
static const char *const auth_type_names[] = { "plain", "md5",  "scram-sha-256",
					       "trust", "cert", NULL };
static const char *const log_level_names[] = { "error", "warn", "info", "debug", NULL };
static const char *const cpu_affinity_names[] = { "off", "workers", NULL };
static const char *const cross_queries_names[] = { "allow", "error", NULL };
static const char *const cross_writes_names[] = { "2pc", "error", NULL };
static const char *const tls_mode_names[] = { "disable",   "allow",       "prefer", "require",
					      "verify-ca", "verify-full", NULL };

/* Timeouts longer than this are surely a typo, and keeping them small means
 * `now + timeout` can never overflow anywhere downstream. */
#define MAX_DURATION_MS (100ull * 365 * 24 * 3600 * 1000) /* 100 years */
#define MAX_POOL_SIZE   100000

static int not_empty(const char *text, char *why, size_t whylen)
{
	if (*text)
		return 0;
	snprintf(why, whylen, "must not be empty");
	return -1;
}

/* Empty (off), or an absolute directory whose socket path fits sun_path
 * (108 bytes with ".s.PGSQL.65535"). */
static int socket_dir_ok(const char *text, char *why, size_t whylen)
{
	if (!*text)
		return 0;
	if (text[0] != '/') {
		snprintf(why, whylen, "must be an absolute directory (or empty: off)");
		return -1;
	}
	if (strlen(text) > 108 - sizeof("/.s.PGSQL.65535")) {
		snprintf(why, whylen, "is too long for a Unix socket path");
		return -1;
	}
	return 0;
}

unsigned cfg_tls_protocols(const char *text)
{
	if (strcasecmp(text, "secure") == 0 || strcasecmp(text, "all") == 0)
		return CFG_TLS_V1_2 | CFG_TLS_V1_3;
	unsigned bits = 0;
	char buf[128];
	if (strlen(text) >= sizeof(buf))
		return 0;
	snprintf(buf, sizeof(buf), "%s", text);
	char *save = NULL;
	for (char *t = strtok_r(buf, ", ", &save); t; t = strtok_r(NULL, ", ", &save)) {
		if (strcasecmp(t, "tlsv1.2") == 0)
			bits |= CFG_TLS_V1_2;
		else if (strcasecmp(t, "tlsv1.3") == 0)
			bits |= CFG_TLS_V1_3;
		else
			return 0;
	}
	return bits;
}

static int tls_protocols_ok(const char *text, char *why, size_t whylen)
{
	if (cfg_tls_protocols(text))
		return 0;
	snprintf(why, whylen,
		 "\"%s\" is not secure, all or a list of tlsv1.2, tlsv1.3 (older versions are "
		 "not offered)",
		 text);
	return -1;
}

/* PgCrab as a server's client has no use for allow (libpq's "try without
 * first"): a server either takes TLS (prefer) or must (require). */
static int server_tls_mode_ok(const char *text, char *why, size_t whylen)
{
	if (strcasecmp(text, "allow") != 0)
		return 0;
	snprintf(why, whylen, "allow is not offered for servers; use prefer or disable");
	return -1;
}

/* TLS 1.2 ciphers when none are set: forward secrecy and AEAD only. TLS 1.3
 * suites are OpenSSL's, all of which qualify. */
#define TLS_CIPHERS_DEFAULT "ECDHE+AESGCM:ECDHE+CHACHA20:DHE+AESGCM:DHE+CHACHA20"

#define PG(field)     SECT_PGCRAB, #field
#define PG_OFF(field) offsetof(struct cfg, field)
#define SH(field)     SECT_SHARD, #field
#define SH_OFF(field) offsetof(struct cfg_shard, field)
#define DB(field)     SECT_DATABASE, #field
#define DB_OFF(field) offsetof(struct raw_database, field)
#define TB(field)     SECT_TABLE, #field
#define TB_OFF(field) offsetof(struct raw_table, field)

static const struct key_def keys[] = {
	{ PG(host), T_STRING, PG_OFF(host), .def = "127.0.0.1", .check = not_empty },
	{ PG(port), T_INT, PG_OFF(port), .def = "6432", .min = 1, .max = 65535 },
	{ PG(unix_socket_dir), T_STRING, PG_OFF(unix_socket_dir), .def = "",
	  .check = socket_dir_ok },
	{ PG(workers), T_INT, PG_OFF(workers), .def = "0", .min = 0, .max = 256 },
	{ PG(pool_mode), T_ENUM, PG_OFF(pool_mode), .def = "transaction",
	  .names = pool_mode_names },
	/* client authentication (checked further in cfg_auth.c) */
	{ PG(auth_type), T_ENUM, PG_OFF(auth_type), .def = "plain", .names = auth_type_names },
	{ PG(auth_file), T_STRING, PG_OFF(auth_file), .def = "" },
	{ PG(max_client_conn), T_INT, PG_OFF(max_client_conn), .def = "10000", .min = 1,
	  .max = 1000000 },
	/* PostgreSQL's own limit is 1 GiB (MaxAllocSize); below 1 kB not even a
	 * password message fits */
	{ PG(max_packet_size), T_INT, PG_OFF(max_packet_size), .def = "1073741824", .min = 1024,
	  .max = 1073741824 },
	{ PG(admin_users), T_LIST, PG_OFF(admin_users), PG_OFF(n_admin_users), .def = "pgcrab" },
	{ PG(stats_users), T_LIST, PG_OFF(stats_users), PG_OFF(n_stats_users), .def = "" },
	{ PG(metrics_port), T_INT, PG_OFF(metrics_port), .def = "0", .min = 0, .max = 65535 },
	{ PG(metrics_host), T_STRING, PG_OFF(metrics_host), .def = "" }, /* "": host's */
	{ PG(server_connect_timeout), T_DURATION, PG_OFF(server_connect_timeout_ms), .def = "5s",
	  .max_ms = MAX_DURATION_MS },
	{ PG(query_wait_timeout), T_DURATION, PG_OFF(query_wait_timeout_ms), .def = "30s",
	  .max_ms = MAX_DURATION_MS },
	{ PG(client_login_timeout), T_DURATION, PG_OFF(client_login_timeout_ms), .def = "10s",
	  .max_ms = MAX_DURATION_MS },
	{ PG(client_idle_timeout), T_DURATION, PG_OFF(client_idle_timeout_ms), .def = "0",
	  .max_ms = MAX_DURATION_MS },
	{ PG(idle_transaction_timeout), T_DURATION, PG_OFF(idle_transaction_timeout_ms), .def = "0",
	  .max_ms = MAX_DURATION_MS },
	{ PG(server_idle_timeout), T_DURATION, PG_OFF(server_idle_timeout_ms), .def = "60s",
	  .max_ms = MAX_DURATION_MS },
	{ PG(server_lifetime), T_DURATION, PG_OFF(server_lifetime_ms), .def = "3600s",
	  .max_ms = MAX_DURATION_MS },
	{ PG(shutdown_timeout), T_DURATION, PG_OFF(shutdown_timeout_ms), .def = "30s",
	  .max_ms = MAX_DURATION_MS },
	{ PG(max_prepared_statements), T_INT, PG_OFF(max_prepared_statements), .def = "200",
	  .min = 0, .max = 100000 },
	{ PG(pin_session_state), T_ENUM, PG_OFF(pin_session_state), .def = "on",
	  .names = pin_mode_names },
	{ PG(cancel_on_client_exit), T_BOOL, PG_OFF(cancel_on_client_exit), .def = "on" },
	{ PG(server_reset_query), T_STRING, PG_OFF(server_reset_query), .def = "DISCARD ALL" },
	{ PG(stats_period), T_DURATION, PG_OFF(stats_period_ms), .def = "60s",
	  .max_ms = MAX_DURATION_MS },
	{ PG(log_level), T_ENUM, PG_OFF(log_level), .def = "info", .names = log_level_names },
	/* on, as PgBouncer's log_connections and log_disconnections */
	{ PG(log_connections), T_BOOL, PG_OFF(log_connections), .def = "on" },
	{ PG(cpu_affinity), T_ENUM, PG_OFF(cpu_affinity), .def = "off",
	  .names = cpu_affinity_names },
	/* server connections per role, all workers and shards together (as
	 * PgBouncer's max_user_connections counts a user over all its pools) */
	{ PG(max_user_connections), T_INT, PG_OFF(max_user_connections), .def = "0", .min = 0,
	  .max = MAX_POOL_SIZE },

	/* auth_query: a role not in [user.*] is looked up on its shard, logged
	 * in as auth_user (whose password is its [user.NAME], as PgBouncer
	 * takes it from its auth_file) */
	{ PG(auth_user), T_STRING, PG_OFF(auth_user), .def = "" },
	{ PG(auth_query), T_STRING, PG_OFF(auth_query),
	  .def = "SELECT usename, passwd FROM pg_shadow WHERE usename = $1", .check = not_empty },
	{ PG(auth_query_ttl), T_DURATION, PG_OFF(auth_query_ttl_ms), .def = "60s",
	  .max_ms = MAX_DURATION_MS },

	{ PG(client_tls_mode), T_ENUM, PG_OFF(client_tls_mode), .def = "disable",
	  .names = tls_mode_names },
	{ PG(client_tls_cert_file), T_STRING, PG_OFF(client_tls_cert_file), .def = "" },
	{ PG(client_tls_key_file), T_STRING, PG_OFF(client_tls_key_file), .def = "" },
	{ PG(client_tls_ca_file), T_STRING, PG_OFF(client_tls_ca_file), .def = "" },
	{ PG(client_tls_protocols), T_STRING, PG_OFF(client_tls_protocols), .def = "secure",
	  .check = tls_protocols_ok },
	{ PG(client_tls_ciphers), T_STRING, PG_OFF(client_tls_ciphers), .def = TLS_CIPHERS_DEFAULT,
	  .check = not_empty },
	/* prefer, as libpq and PgBouncer: TLS where the server offers it */
	{ PG(server_tls_mode), T_ENUM, PG_OFF(server_tls_mode), .def = "prefer",
	  .names = tls_mode_names, .check = server_tls_mode_ok },
	{ PG(server_tls_ca_file), T_STRING, PG_OFF(server_tls_ca_file), .def = "" },
	{ PG(server_tls_cert_file), T_STRING, PG_OFF(server_tls_cert_file), .def = "" },
	{ PG(server_tls_key_file), T_STRING, PG_OFF(server_tls_key_file), .def = "" },
	{ PG(server_tls_protocols), T_STRING, PG_OFF(server_tls_protocols), .def = "secure",
	  .check = tls_protocols_ok },
	{ PG(server_tls_ciphers), T_STRING, PG_OFF(server_tls_ciphers), .def = TLS_CIPHERS_DEFAULT,
	  .check = not_empty },

	{ SH(host), T_STRING, SH_OFF(host), .def = "127.0.0.1", .check = not_empty },
	{ SH(port), T_INT, SH_OFF(port), .def = "5432", .min = 1, .max = 65535 },
	{ SH(database), T_STRING, SH_OFF(database), .check = not_empty, .flags = F_DEFAULT_NAME },
	/* without user (and password), each client logs in as its own role */
	{ SH(user), T_STRING, SH_OFF(user), .check = not_empty },
	{ SH(password), T_STRING, SH_OFF(password), .def = "" },
	{ SH(min_connections), T_INT, SH_OFF(min_connections), .def = "0", .min = 0,
	  .max = MAX_POOL_SIZE },
	{ SH(max_connections), T_INT, SH_OFF(max_connections), .def = "20", .min = 1,
	  .max = MAX_POOL_SIZE },
	/* no defaults: absent, they are [pgcrab]'s (check_sections) */
	{ SH(server_tls_mode), T_ENUM, SH_OFF(server_tls_mode), .names = tls_mode_names,
	  .check = server_tls_mode_ok },
	{ SH(server_tls_ca_file), T_STRING, SH_OFF(server_tls_ca_file), .def = NULL },

	/* A client password may not be empty: an account anyone can log in to
	 * by pressing enter is never what was meant. */
	{ SECT_USER, "password", T_STRING, offsetof(struct cfg_user, password), .check = not_empty,
	  .flags = F_REQUIRED },

	{ DB(shards), T_LIST, DB_OFF(shards), DB_OFF(n_shards), .flags = F_REQUIRED | F_APPEND },
	{ DB(cross_shard_queries), T_ENUM, DB_OFF(cross_queries), .def = "allow",
	  .names = cross_queries_names },
	{ DB(cross_shard_writes), T_ENUM, DB_OFF(cross_writes), .def = "2pc",
	  .names = cross_writes_names },

	{ TB(database), T_STRING, TB_OFF(database), .check = not_empty, .flags = F_REQUIRED },
	{ TB(columns), T_LIST, TB_OFF(columns), TB_OFF(n_columns), .flags = F_REQUIRED },
	{ TB(types), T_LIST, TB_OFF(types), TB_OFF(n_types), .flags = F_REQUIRED },
};

#define N_KEYS ARRAY_LEN(keys)

/* Keys a user may reasonably write that belong to work not done yet. */
static const char *const future_keys[] = { NULL };

/* Where each key of one section was set, for duplicate detection and so that
 * errors found after parsing can still point at a line. */
struct sect_meta {
	int header_line;
	int key_line[N_KEYS];
};

struct parse {
	struct cfg *cfg;
	const char *path;
	FILE *fp;
	char *line;
	size_t line_cap;
	int lineno;
	int read_errno;

	enum sect_kind kind; /* the section we are in */
	int idx;             /* its index in cfg->shards / users / databases / sharded_tables */
	struct sect_meta *meta;
	char *sect_label; /* "shard.a", for messages */

	struct sect_meta pgcrab_meta;
	struct sect_meta *shard_meta, *user_meta; /* parallel to cfg->shards / users */
	int shard_cap, user_cap;
	struct sect_meta *db_meta, *table_meta; /* parallel to cfg->databases / sharded_tables */
	struct raw_database *raw_dbs;           /* the same */
	struct raw_table *raw_tables;
	int db_cap, table_cap;

	int err_line; /* 0 = no error yet; otherwise the earliest error's line */
	bool failed;
	char err[512];
};

/* Records an error unless one on an earlier line is already recorded, so the
 * message a user sees is always the first problem in the file. */
__attribute__((format(printf, 3, 4))) static void fail(struct parse *p, int line, const char *fmt,
						       ...)
{
	if (p->failed && line >= p->err_line)
		return;
	va_list ap;
	va_start(ap, fmt);
	vsnprintf(p->err, sizeof(p->err), fmt, ap);
	va_end(ap);
	p->failed = true;
	p->err_line = line;
}

/* Where a section's keys are stored: the snapshot itself, or for the
 * sharding sections their raw form until it is resolved. */
static void *base_of(struct parse *p, enum sect_kind kind, int idx)
{
	switch (kind) {
	case SECT_PGCRAB:
		return p->cfg;
	case SECT_SHARD:
		return &p->cfg->shards[idx];
	case SECT_USER:
		return &p->cfg->users[idx];
	case SECT_DATABASE:
		return &p->raw_dbs[idx];
	case SECT_TABLE:
		return &p->raw_tables[idx];
	case SECT_NONE:
		break;
	}
	return NULL;
}

static const char *sect_kind_hint(enum sect_kind kind)
{
	switch (kind) {
	case SECT_PGCRAB:
		return "[pgcrab]";
	case SECT_SHARD:
		return "[shard.NAME]";
	case SECT_USER:
		return "[user.NAME]";
	case SECT_DATABASE:
		return "[database.NAME]";
	case SECT_TABLE:
		return "[sharded_table.NAME]";
	case SECT_NONE:
		break;
	}
	return "?";
}

static int find_key(enum sect_kind kind, const char *name)
{
	for (size_t i = 0; i < N_KEYS; i++)
		if (keys[i].sect == kind && strcasecmp(keys[i].key, name) == 0)
			return (int)i;
	return -1;
}

/* ---- value conversion ---- */

/* A whole decimal number with an optional minus sign, nothing else. */
static int parse_int(const char *text, long long *out)
{
	const char *s = text;
	if (*s == '-')
		s++;
	if (!isdigit((unsigned char)*s))
		return -1;
	for (const char *q = s; *q; q++)
		if (!isdigit((unsigned char)*q))
			return -1;
	errno = 0;
	*out = strtoll(text, NULL, 10);
	if (errno == ERANGE)
		*out = *text == '-' ? LLONG_MIN : LLONG_MAX;
	return 0;
}

/* Returns NULL on success, else why the text is not a duration. */
static const char *parse_duration(const char *text, uint64_t *out_ms)
{
	static const struct {
		const char *suffix;
		uint64_t ms;
	} units[] = { { "", 1000 }, { "ms", 1 }, { "s", 1000 }, { "min", 60000 }, { "h", 3600000 } };
	const char *s = text;
	while (isspace((unsigned char)*s))
		s++;
	if (*s == '-')
		return "is negative";
	if (!isdigit((unsigned char)*s))
		return "is not a duration (use e.g. 250ms, 5s, 2min, 1h)";
	uint64_t v = 0;
	bool overflow = false;
	for (; isdigit((unsigned char)*s); s++) {
		uint64_t d = (uint64_t)(*s - '0');
		if (v > (UINT64_MAX - d) / 10)
			overflow = true;
		else
			v = v * 10 + d;
	}
	while (isspace((unsigned char)*s))
		s++;
	size_t ulen = strlen(s);
	while (ulen > 0 && isspace((unsigned char)s[ulen - 1]))
		ulen--;
	for (size_t i = 0; i < ARRAY_LEN(units); i++) {
		if (strlen(units[i].suffix) != ulen || strncasecmp(s, units[i].suffix, ulen) != 0)
			continue;
		if (overflow || v > UINT64_MAX / units[i].ms)
			return "is too large";
		*out_ms = v * units[i].ms;
		return NULL;
	}
	if (ulen == 1 && (*s == 'm' || *s == 'M'))
		return "has an ambiguous unit m (use min or ms)";
	return "has an unknown unit (use ms, s, min or h; no unit means seconds)";
}

int cfg_parse_duration_ms(const char *text, uint64_t *out_ms)
{
	uint64_t v;
	if (!text || parse_duration(text, &v) != NULL)
		return -1;
	*out_ms = v;
	return 0;
}

/* Splits "a, b,c" into a NULL-free array of trimmed copies. An empty or
 * all-blank text is an empty list; an empty element is an error. */
static int parse_list(const char *text, char ***out, int *out_n, char *why, size_t whylen)
{
	char **v = NULL;
	int n = 0;
	const char *s = text;
	while (isspace((unsigned char)*s))
		s++;
	if (*s == '\0') {
		*out = NULL;
		*out_n = 0;
		return 0;
	}
	for (;;) {
		const char *end = strchr(s, ',');
		if (!end)
			end = s + strlen(s);
		const char *a = s, *b = end;
		while (a < b && isspace((unsigned char)*a))
			a++;
		while (b > a && isspace((unsigned char)b[-1]))
			b--;
		if (a == b) {
			snprintf(why, whylen, "empty name in list '%s'", text);
			goto fail;
		}
		char **nv = realloc(v, (size_t)(n + 1) * sizeof(*v));
		if (!nv)
			goto oom;
		v = nv;
		v[n] = strndup(a, (size_t)(b - a));
		if (!v[n])
			goto oom;
		n++;
		if (*end == '\0')
			break;
		s = end + 1;
	}
	*out = v;
	*out_n = n;
	return 0;
oom:
	snprintf(why, whylen, "out of memory");
fail:
	for (int i = 0; i < n; i++)
		free(v[i]);
	free(v);
	return -1;
}

static void free_list(char **v, int n)
{
	for (int i = 0; i < n; i++)
		free(v[i]);
	free(v);
}

/* Converts text per the key's row and stores it into base. On error nothing
 * is changed and why says what is wrong (never echoing a password). */
static int set_value(const struct key_def *k, void *base, const char *text, char *why,
		     size_t whylen)
{
	char *slot = (char *)base + k->off;
	if (k->check && k->check(text, why, whylen) != 0)
		return -1;
	switch (k->type) {
	case T_STRING: {
		char *copy = strdup(text);
		if (!copy) {
			snprintf(why, whylen, "out of memory");
			return -1;
		}
		free(*(char **)slot);
		*(char **)slot = copy;
		return 0;
	}
	case T_INT: {
		long long v;
		if (parse_int(text, &v) != 0) {
			snprintf(why, whylen, "'%s' is not a whole number", text);
			return -1;
		}
		if (v < k->min || v > k->max) {
			snprintf(why, whylen, "%s is out of range %d..%d", text, k->min, k->max);
			return -1;
		}
		*(int *)slot = (int)v;
		return 0;
	}
	case T_DURATION: {
		uint64_t ms;
		const char *bad = parse_duration(text, &ms);
		if (bad) {
			snprintf(why, whylen, "'%s' %s", text, bad);
			return -1;
		}
		if (ms > k->max_ms) {
			snprintf(why, whylen, "'%s' is too large (at most %lluh)", text,
				 (unsigned long long)(k->max_ms / 3600000));
			return -1;
		}
		*(uint64_t *)slot = ms;
		return 0;
	}
	case T_ENUM: {
		for (int i = 0; k->names[i]; i++) {
			if (strcasecmp(text, k->names[i]) == 0) {
				*(int *)slot = i;
				return 0;
			}
		}
		size_t n = (size_t)snprintf(why, whylen, "'%s' is not one of ", text);
		for (int i = 0; k->names[i] && n < whylen; i++)
			n += (size_t)snprintf(why + n, whylen - n, "%s%s", i ? ", " : "",
					      k->names[i]);
		return -1;
	}
	case T_BOOL: {
		static const char *const yes[] = { "on", "true", "yes", "1" };
		static const char *const no[] = { "off", "false", "no", "0" };
		for (size_t i = 0; i < ARRAY_LEN(yes); i++) {
			if (strcasecmp(text, yes[i]) == 0 || strcasecmp(text, no[i]) == 0) {
				*(bool *)slot = strcasecmp(text, yes[i]) == 0;
				return 0;
			}
		}
		snprintf(why, whylen, "'%s' is not a boolean (on or off)", text);
		return -1;
	}
	case T_LIST: {
		char **v;
		int nv;
		if (parse_list(text, &v, &nv, why, whylen) != 0)
			return -1;
		int *count = (int *)((char *)base + k->count_off);
		free_list(*(char ***)slot, *count);
		*(char ***)slot = v;
		*count = nv;
		return 0;
	}
	}
	return -1;
}

/* A T_LIST key given again (F_APPEND): its names go after those before. */
static int append_list(const struct key_def *k, void *base, const char *text, char *why,
		       size_t whylen)
{
	char **more;
	int n_more;
	if (parse_list(text, &more, &n_more, why, whylen) != 0)
		return -1;
	char ***list = (char ***)((char *)base + k->off);
	int *count = (int *)((char *)base + k->count_off);
	char **v = realloc(*list, (size_t)(*count + n_more) * sizeof(*v));
	if (!v && *count + n_more > 0) {
		free_list(more, n_more);
		snprintf(why, whylen, "out of memory");
		return -1;
	}
	if (n_more > 0)
		memcpy(v + *count, more, (size_t)n_more * sizeof(*v));
	free(more);
	*list = v;
	*count += n_more;
	return 0;
}

/* Gives every key of a freshly opened section its default. Defaults go
 * through set_value like any other text so they cannot be out of range. */
static int apply_defaults(struct parse *p, enum sect_kind kind, void *base, const char *name)
{
	char why[256];
	for (size_t i = 0; i < N_KEYS; i++) {
		const struct key_def *k = &keys[i];
		if (k->sect != kind)
			continue;
		const char *def = (k->flags & F_DEFAULT_NAME) ? name : k->def;
		if (!def)
			continue;
		if (set_value(k, base, def, why, sizeof(why)) != 0) {
			fail(p, p->lineno, "%s:%d: [%s] %s: default: %s", p->path, p->lineno,
			     p->sect_label ? p->sect_label : "pgcrab", k->key, why);
			return -1;
		}
	}
	return 0;
}

/* ---- sections ---- */

/* How many sections of a named kind are open so far. */
static int count_of(const struct parse *p, enum sect_kind kind)
{
	const struct cfg *c = p->cfg;
	return kind == SECT_SHARD       ? c->n_shards
		: kind == SECT_USER     ? c->n_users
		: kind == SECT_DATABASE ? c->n_databases
					: c->n_sharded_tables;
}

/* Grows array arr to cap elements, or returns -1 from the calling function. */
#define GROW(arr, cap)                                                         \
	do {                                                                   \
		void *grown_ = realloc((arr), (size_t)(cap) * sizeof(*(arr))); \
		if (!grown_)                                                   \
			return -1;                                             \
		(arr) = grown_;                                                \
	} while (0)

/* Makes room for one more section of a named kind (and its bookkeeping). */
static int reserve(struct parse *p, enum sect_kind kind)
{
	struct cfg *c = p->cfg;
	int n = count_of(p, kind);
	int *cap = kind == SECT_SHARD   ? &p->shard_cap
		: kind == SECT_USER     ? &p->user_cap
		: kind == SECT_DATABASE ? &p->db_cap
					: &p->table_cap;
	if (n < *cap)
		return 0;
	int want = *cap ? *cap * 2 : 8;
	switch (kind) {
	case SECT_SHARD:
		GROW(c->shards, want);
		GROW(p->shard_meta, want);
		break;
	case SECT_USER:
		GROW(c->users, want);
		GROW(p->user_meta, want);
		break;
	case SECT_DATABASE:
		GROW(c->databases, want);
		GROW(p->db_meta, want);
		GROW(p->raw_dbs, want);
		break;
	case SECT_TABLE:
		GROW(c->sharded_tables, want);
		GROW(p->table_meta, want);
		GROW(p->raw_tables, want);
		break;
	default:
		return -1;
	}
	*cap = want;
	return 0;
}

static const char *kind_word(enum sect_kind kind)
{
	switch (kind) {
	case SECT_SHARD:
		return "shard";
	case SECT_USER:
		return "user";
	case SECT_DATABASE:
		return "database";
	case SECT_TABLE:
		return "sharded_table";
	default:
		return "?";
	}
}

/* The line bookkeeping of section i of a named kind. */
static struct sect_meta *meta_of(struct parse *p, enum sect_kind kind, int i)
{
	return kind == SECT_SHARD       ? &p->shard_meta[i]
		: kind == SECT_USER     ? &p->user_meta[i]
		: kind == SECT_DATABASE ? &p->db_meta[i]
					: &p->table_meta[i];
}

static bool same_name(const char *a, const char *b)
{
	return a == b || (a && b && strcmp(a, b) == 0);
}

/* Whether section i of a named kind is the one called name (for a sharded
 * table, in schema; NULL: any schema). */
static bool is_named(struct parse *p, enum sect_kind kind, int i, const char *schema,
		     const char *name)
{
	const struct cfg *c = p->cfg;
	switch (kind) {
	case SECT_SHARD:
		return strcmp(c->shards[i].name, name) == 0;
	case SECT_USER:
		return strcmp(c->users[i].name, name) == 0;
	case SECT_DATABASE:
		return strcmp(c->databases[i].name, name) == 0;
	case SECT_TABLE:
		return strcmp(c->sharded_tables[i].name, name) == 0
			&& same_name(c->sharded_tables[i].schema, schema);
	default:
		return false;
	}
}

/* Splits a sharded table's section name, lower-cased as PostgreSQL folds
 * unquoted names, into schema and table ("table" or "schema.table").
 * Returns 0, or -1 with why. */
static int split_table_name(const char *label, char **schema, char **name, char *why, size_t whylen)
{
	*schema = *name = NULL;
	const char *dot = strchr(label, '.');
	if (dot && strchr(dot + 1, '.')) {
		snprintf(why, whylen, "expected TABLE or SCHEMA.TABLE");
		return -1;
	}
	if (dot && (dot == label || dot[1] == '\0')) {
		snprintf(why, whylen, "the schema or the table name is empty");
		return -1;
	}
	*schema = dot ? strndup(label, (size_t)(dot - label)) : NULL;
	*name = strdup(dot ? dot + 1 : label);
	if (!*name || (dot && !*schema)) {
		free(*schema);
		free(*name);
		*schema = *name = NULL;
		snprintf(why, whylen, "out of memory");
		return -1;
	}
	for (char *q = *name; *q; q++)
		*q = (char)tolower((unsigned char)*q);
	for (char *q = *schema; q && *q; q++)
		*q = (char)tolower((unsigned char)*q);
	return 0;
}

/* Opens [shard.NAME], [user.NAME], [database.NAME] or [sharded_table.NAME].
 * Names are unique per kind. Shard, user and database names are
 * case-sensitive (they are what clients send as dbname / user); a sharded
 * table's is a PostgreSQL name, lower-cased. */
static void open_named(struct parse *p, enum sect_kind kind, const char *name)
{
	const char *what = kind_word(kind);
	struct cfg *c = p->cfg;

	if (*name == '\0') {
		fail(p, p->lineno, "%s:%d: [%s.]: the %s name is empty", p->path, p->lineno, what,
		     what);
		return;
	}
	if ((kind == SECT_SHARD || kind == SECT_DATABASE) && strcmp(name, "pgcrab") == 0) {
		fail(p, p->lineno,
		     "%s:%d: [%s.pgcrab]: the name pgcrab is reserved for the admin console",
		     p->path, p->lineno, what);
		return;
	}
	char *schema = NULL, *copy = NULL, why[128];
	if (kind == SECT_TABLE) {
		if (split_table_name(name, &schema, &copy, why, sizeof(why)) != 0) {
			fail(p, p->lineno, "%s:%d: [%s]: %s", p->path, p->lineno, p->sect_label,
			     why);
			return;
		}
	} else if (!(copy = strdup(name))) {
		fail(p, p->lineno, "%s:%d: out of memory", p->path, p->lineno);
		return;
	}
	int n = count_of(p, kind);
	for (int i = 0; i < n; i++) {
		if (!is_named(p, kind, i, schema, copy))
			continue;
		if (kind == SECT_TABLE)
			fail(p, p->lineno, "%s:%d: [%s]: the table is already sharded at line %d",
			     p->path, p->lineno, p->sect_label, meta_of(p, kind, i)->header_line);
		else
			fail(p, p->lineno,
			     "%s:%d: [%s.%s]: duplicate section, first defined at line %d", p->path,
			     p->lineno, what, name, meta_of(p, kind, i)->header_line);
		free(schema);
		free(copy);
		return;
	}
	if (reserve(p, kind) != 0) {
		free(schema);
		free(copy);
		fail(p, p->lineno, "%s:%d: out of memory", p->path, p->lineno);
		return;
	}
	int idx;
	switch (kind) {
	case SECT_SHARD:
		idx = c->n_shards++;
		c->shards[idx] = (struct cfg_shard){ .name = copy };
		break;
	case SECT_USER:
		idx = c->n_users++;
		c->users[idx] = (struct cfg_user){ .name = copy };
		break;
	case SECT_DATABASE:
		idx = c->n_databases++;
		c->databases[idx] = (struct cfg_database){ .name = copy };
		p->raw_dbs[idx] = (struct raw_database){ 0 };
		break;
	default:
		idx = c->n_sharded_tables++;
		c->sharded_tables[idx] = (struct cfg_sharded_table){ .name = copy,
								     .schema = schema,
								     .database = -1 };
		p->raw_tables[idx] = (struct raw_table){ 0 };
		break;
	}
	struct sect_meta *m = meta_of(p, kind, idx);
	memset(m, 0, sizeof(*m));
	m->header_line = p->lineno;
	p->kind = kind;
	p->idx = idx;
	p->meta = m;
	apply_defaults(p, kind, base_of(p, kind, idx), name);
}

static void open_section(struct parse *p, const char *label)
{
	free(p->sect_label);
	p->sect_label = strdup(label);
	p->kind = SECT_NONE;
	p->meta = NULL;
	if (!p->sect_label) {
		fail(p, p->lineno, "%s:%d: out of memory", p->path, p->lineno);
		return;
	}
	if (strcasecmp(label, "pgcrab") == 0) {
		if (p->pgcrab_meta.header_line) {
			fail(p, p->lineno,
			     "%s:%d: [%s]: duplicate section, first defined at line %d", p->path,
			     p->lineno, label, p->pgcrab_meta.header_line);
			return;
		}
		p->pgcrab_meta.header_line = p->lineno;
		p->kind = SECT_PGCRAB;
		p->meta = &p->pgcrab_meta;
	} else if (strncasecmp(label, "shard.", 6) == 0) {
		open_named(p, SECT_SHARD, label + 6);
	} else if (strncasecmp(label, "user.", 5) == 0) {
		open_named(p, SECT_USER, label + 5);
	} else if (strncasecmp(label, "database.", 9) == 0) {
		open_named(p, SECT_DATABASE, label + 9);
	} else if (strncasecmp(label, "sharded_table.", 14) == 0) {
		open_named(p, SECT_TABLE, label + 14);
	} else {
		fail(p, p->lineno,
		     "%s:%d: [%s]: unknown section (expected [pgcrab], [shard.NAME], [user.NAME], "
		     "[database.NAME] or [sharded_table.NAME])",
		     p->path, p->lineno, label);
	}
}

/* ---- inih glue ---- */

/* Looks at a header line the way inih will (a ']' before any " ;" comment)
 * and opens the section. Returns -1 if the header is malformed. */
static int scan_header(struct parse *p, char *s)
{
	char *end = NULL;
	for (char *q = s + 1; *q; q++) {
		if (*q == ']') {
			end = q;
			break;
		}
		if (*q == ';' && isspace((unsigned char)q[-1]))
			break;
	}
	if (!end) {
		fail(p, p->lineno, "%s:%d: malformed section header: no closing ']'", p->path,
		     p->lineno);
		return -1;
	}
	const char *after = end + 1;
	while (isspace((unsigned char)*after))
		after++;
	if (*after && *after != ';') {
		fail(p, p->lineno, "%s:%d: malformed section header: text after ']'", p->path,
		     p->lineno);
		return -1;
	}
	char *a = s + 1, *b = end;
	while (a < b && isspace((unsigned char)*a))
		a++;
	while (b > a && isspace((unsigned char)b[-1]))
		b--;
	char saved = *b;
	*b = '\0';
	open_section(p, a);
	*b = saved;
	return p->failed ? -1 : 0;
}

/* fgets-style reader for ini_parse_stream; see the comment at the top. */
static char *read_line(char *buf, int num, void *stream)
{
	struct parse *p = stream;
	if (p->failed)
		return NULL; /* stop at the first error */
	ssize_t n = getline(&p->line, &p->line_cap, p->fp);
	if (n < 0) {
		if (ferror(p->fp))
			p->read_errno = errno ? errno : EIO;
		return NULL;
	}
	p->lineno++;
	if (strlen(p->line) != (size_t)n) {
		fail(p, p->lineno, "%s:%d: line contains a NUL byte", p->path, p->lineno);
		return NULL;
	}
	while (n > 0 && (p->line[n - 1] == '\n' || p->line[n - 1] == '\r'))
		p->line[--n] = '\0';
	char *s = p->line;
	if (p->lineno == 1 && strncmp(s, "\xEF\xBB\xBF", 3) == 0)
		s += 3;
	while (isspace((unsigned char)*s))
		s++;
	size_t len = strlen(s);
	if (num <= 0 || len + 1 > (size_t)num) {
		fail(p, p->lineno, "%s:%d: line is too long (at most %d characters)", p->path,
		     p->lineno, num - 1);
		return NULL;
	}
	if (*s == '[' && scan_header(p, s) != 0)
		return NULL;
	memcpy(buf, s, len + 1);
	return buf;
}

static int on_key(void *user, const char *section, const char *name, const char *value)
{
	struct parse *p = user;
	(void)section; /* ours is p->sect_label; inih's may be truncated */
	if (p->failed)
		return 1;
	if (p->kind == SECT_NONE) {
		fail(p, p->lineno, "%s:%d: %s: key outside of any section (put it under [pgcrab])",
		     p->path, p->lineno, name);
		return 1;
	}
	const char *label = p->sect_label;
	if (*name == '\0') {
		fail(p, p->lineno, "%s:%d: [%s]: missing key name before '='", p->path, p->lineno,
		     label);
		return 1;
	}
	int ki = find_key(p->kind, name);
	if (ki < 0) {
		for (int i = 0; future_keys[i]; i++) {
			if (strcasecmp(name, future_keys[i]) == 0) {
				fail(p, p->lineno, "%s:%d: [%s] %s: not supported yet", p->path,
				     p->lineno, label, name);
				return 1;
			}
		}
		const char *hint = "";
		for (size_t i = 0; i < N_KEYS; i++)
			if (strcasecmp(keys[i].key, name) == 0)
				hint = sect_kind_hint(keys[i].sect);
		fail(p, p->lineno, "%s:%d: [%s] %s: unknown key%s%s%s", p->path, p->lineno, label,
		     name, *hint ? " (it belongs in " : "", hint, *hint ? ")" : "");
		return 1;
	}
	const struct key_def *k = &keys[ki];
	char why[256];
	void *base = base_of(p, p->kind, p->idx);
	if (p->meta->key_line[ki] && (k->flags & F_APPEND)) {
		if (append_list(k, base, value, why, sizeof(why)) != 0)
			fail(p, p->lineno, "%s:%d: [%s] %s: %s", p->path, p->lineno, label, k->key,
			     why);
		return 1; /* errors about the whole list point at its first line */
	}
	if (p->meta->key_line[ki]) {
		fail(p, p->lineno, "%s:%d: [%s] %s: duplicate key, first set at line %d", p->path,
		     p->lineno, label, k->key, p->meta->key_line[ki]);
		return 1;
	}
	if (set_value(k, base, value, why, sizeof(why)) != 0) {
		fail(p, p->lineno, "%s:%d: [%s] %s: %s", p->path, p->lineno, label, k->key, why);
		return 1;
	}
	p->meta->key_line[ki] = p->lineno;
	return 1;
}

/* Keys a section must have (F_REQUIRED), for the sharding sections. */
static void check_required(struct parse *p, enum sect_kind kind, const struct sect_meta *m,
			   const char *label)
{
	for (size_t i = 0; i < N_KEYS; i++)
		if (keys[i].sect == kind && (keys[i].flags & F_REQUIRED) && !m->key_line[i])
			fail(p, m->header_line, "%s:%d: [%s] %s: missing (required)", p->path,
			     m->header_line, label, keys[i].key);
}

/* The line of key in a section, or its header's when the key is not set. */
static int line_of(const struct sect_meta *m, enum sect_kind kind, const char *key)
{
	int ki = find_key(kind, key);
	return m->key_line[ki] ? m->key_line[ki] : m->header_line;
}

/* [database.NAME]: its shards named become indexes into cfg->shards, in
 * the order given (that order is the shard number the hash picks). */
static void resolve_databases(struct parse *p)
{
	struct cfg *c = p->cfg;
	for (int i = 0; i < c->n_databases; i++) {
		struct cfg_database *db = &c->databases[i];
		const struct raw_database *raw = &p->raw_dbs[i];
		const struct sect_meta *m = &p->db_meta[i];
		char label[300];
		snprintf(label, sizeof(label), "database.%s", db->name);
		check_required(p, SECT_DATABASE, m, label);
		if (cfg_find_shard(c, db->name))
			fail(p, m->header_line,
			     "%s:%d: [%s]: a [shard.%s] has the same name; clients could not tell "
			     "which one they mean",
			     p->path, m->header_line, label, db->name);
		db->cross_reads_error = raw->cross_queries == 1;
		db->cross_writes_error = raw->cross_writes == 1;
		int line = line_of(m, SECT_DATABASE, "shards");
		if (!m->key_line[find_key(SECT_DATABASE, "shards")])
			continue; /* reported as missing */
		if (raw->n_shards == 0) {
			fail(p, line, "%s:%d: [%s] shards: names no shard", p->path, line, label);
			continue;
		}
		if (raw->n_shards > ROUTER_MAX_SHARDS) {
			fail(p, line, "%s:%d: [%s] shards: %d shards, at most %d", p->path, line,
			     label, raw->n_shards, ROUTER_MAX_SHARDS);
			continue;
		}
		db->shards = calloc((size_t)raw->n_shards, sizeof(*db->shards));
		if (!db->shards) {
			fail(p, line, "%s:%d: out of memory", p->path, line);
			continue;
		}
		db->n_shards = raw->n_shards;
		for (int j = 0; j < raw->n_shards; j++) {
			const struct cfg_shard *s = cfg_find_shard(c, raw->shards[j]);
			db->shards[j] = s ? (int)(s - c->shards) : -1;
			if (!s) {
				fail(p, line, "%s:%d: [%s] shards: there is no [shard.%s]", p->path,
				     line, label, raw->shards[j]);
				continue;
			}
			for (int k = 0; k < j; k++)
				if (db->shards[k] == db->shards[j])
					fail(p, line, "%s:%d: [%s] shards: %s is listed twice",
					     p->path, line, label, raw->shards[j]);
		}
	}
}

/* [sharded_table.NAME]: its database becomes an index into cfg->databases,
 * its columns (lower-cased) and types the key. */
static void resolve_tables(struct parse *p)
{
	struct cfg *c = p->cfg;
	for (int i = 0; i < c->n_sharded_tables; i++) {
		struct cfg_sharded_table *t = &c->sharded_tables[i];
		struct raw_table *raw = &p->raw_tables[i];
		const struct sect_meta *m = &p->table_meta[i];
		char label[300];
		snprintf(label, sizeof(label), "sharded_table.%s%s%s", t->schema ? t->schema : "",
			 t->schema ? "." : "", t->name);
		check_required(p, SECT_TABLE, m, label);
		if (raw->database) {
			int line = line_of(m, SECT_TABLE, "database");
			const struct cfg_database *db = cfg_find_database(c, raw->database);
			t->database = db ? (int)(db - c->databases) : -1;
			if (!db)
				fail(p, line, "%s:%d: [%s] database: there is no [database.%s]",
				     p->path, line, label, raw->database);
		}
		int col_line = line_of(m, SECT_TABLE, "columns");
		int type_line = line_of(m, SECT_TABLE, "types");
		if (m->key_line[find_key(SECT_TABLE, "columns")] && raw->n_columns == 0)
			fail(p, col_line, "%s:%d: [%s] columns: names no column", p->path, col_line,
			     label);
		if (raw->n_columns > ROUTER_MAX_KEY_COLS)
			fail(p, col_line, "%s:%d: [%s] columns: %d columns, at most %d", p->path,
			     col_line, label, raw->n_columns, ROUTER_MAX_KEY_COLS);
		for (int j = 0; j < raw->n_columns; j++) {
			for (char *q = raw->columns[j]; *q; q++)
				*q = (char)tolower((unsigned char)*q);
			for (int k = 0; k < j; k++)
				if (strcmp(raw->columns[k], raw->columns[j]) == 0)
					fail(p, col_line, "%s:%d: [%s] columns: %s is listed twice",
					     p->path, col_line, label, raw->columns[j]);
		}
		if (m->key_line[find_key(SECT_TABLE, "types")] && raw->n_types != raw->n_columns)
			fail(p, type_line, "%s:%d: [%s] types: %d types for %d columns", p->path,
			     type_line, label, raw->n_types, raw->n_columns);
		if (raw->n_types > 0 && !(t->types = calloc((size_t)raw->n_types, sizeof(int)))) {
			fail(p, type_line, "%s:%d: out of memory", p->path, type_line);
			continue;
		}
		for (int j = 0; j < raw->n_types; j++) {
			t->types[j] = router_type_parse(raw->types[j]);
			if (t->types[j] < 0)
				fail(p, type_line,
				     "%s:%d: [%s] types: '%s' is not one of int2, int4, int8, text, "
				     "varchar, bpchar, uuid",
				     p->path, type_line, label, raw->types[j]);
		}
		/* the columns move into the snapshot */
		t->cols = raw->columns;
		t->n_cols = raw->n_columns;
		raw->columns = NULL;
		raw->n_columns = 0;
	}
}

/* Rules that involve more than one key or a missing key, checked once the
 * whole file is read; errors point at the key's or the header's line. */
/* The file names a TLS mode needs, and the shards' inherited settings. An
 * error points at the mode's line (or the section's header). */
static void check_tls(struct parse *p)
{
	struct cfg *c = p->cfg;
	const struct sect_meta *m = &p->pgcrab_meta;
	int line = m->key_line[find_key(SECT_PGCRAB, "client_tls_mode")];
	const char *mode = tls_mode_names[c->client_tls_mode];
	if (c->client_tls_mode != CFG_TLS_DISABLE
	    && (!*c->client_tls_cert_file || !*c->client_tls_key_file))
		fail(p, line,
		     "%s:%d: [pgcrab] client_tls_mode: %s needs client_tls_cert_file and "
		     "client_tls_key_file",
		     p->path, line, mode);
	if (c->client_tls_mode >= CFG_TLS_VERIFY_CA && !*c->client_tls_ca_file)
		fail(p, line, "%s:%d: [pgcrab] client_tls_mode: %s needs client_tls_ca_file",
		     p->path, line, mode);
	line = m->key_line[find_key(SECT_PGCRAB, "server_tls_cert_file")];
	if (!line)
		line = m->key_line[find_key(SECT_PGCRAB, "server_tls_key_file")];
	if (!*c->server_tls_cert_file != !*c->server_tls_key_file)
		fail(p, line,
		     "%s:%d: [pgcrab] server_tls_cert_file and server_tls_key_file go together",
		     p->path, line);
	int ki_mode = find_key(SECT_SHARD, "server_tls_mode");
	int pg_line = m->key_line[find_key(SECT_PGCRAB, "server_tls_mode")];
	for (int i = 0; i < c->n_shards; i++) {
		struct cfg_shard *s = &c->shards[i];
		const struct sect_meta *sm = &p->shard_meta[i];
		if (!sm->key_line[ki_mode])
			s->server_tls_mode = c->server_tls_mode;
		if (!s->server_tls_ca_file
		    && !(s->server_tls_ca_file = strdup(c->server_tls_ca_file)))
			fail(p, 0, "out of memory");
		if (s->server_tls_mode < CFG_TLS_VERIFY_CA || *s->server_tls_ca_file)
			continue;
		line = sm->key_line[ki_mode] ? sm->key_line[ki_mode] : pg_line;
		fail(p, line, "%s:%d: [shard.%s] server_tls_mode: %s needs server_tls_ca_file",
		     p->path, line, s->name, tls_mode_names[s->server_tls_mode]);
	}
}

static void check_sections(struct parse *p)
{
	int ki_user = find_key(SECT_SHARD, "user");
	int ki_min = find_key(SECT_SHARD, "min_connections");
	int ki_max = find_key(SECT_SHARD, "max_connections");
	int ki_pw = find_key(SECT_USER, "password");
	int ki_shpw = find_key(SECT_SHARD, "password");
	int ki_auth_user = find_key(SECT_PGCRAB, "auth_user");

	for (int i = 0; i < p->cfg->n_shards; i++) {
		const struct cfg_shard *s = &p->cfg->shards[i];
		const struct sect_meta *m = &p->shard_meta[i];
		if (!m->key_line[ki_user] && m->key_line[ki_shpw])
			fail(p, m->key_line[ki_shpw],
			     "%s:%d: [shard.%s] password: given without user (leave both out "
			     "for each client to log in as its own role)",
			     p->path, m->key_line[ki_shpw], s->name);
		if (s->min_connections > s->max_connections) {
			int line = m->key_line[ki_min] ? m->key_line[ki_min] : m->key_line[ki_max];
			fail(p, line,
			     "%s:%d: [shard.%s] min_connections: %d is greater than max_connections %d",
			     p->path, line, s->name, s->min_connections, s->max_connections);
		}
	}
	for (int i = 0; i < p->cfg->n_users; i++) {
		const struct sect_meta *m = &p->user_meta[i];
		if (!m->key_line[ki_pw])
			fail(p, m->header_line, "%s:%d: [user.%s] password: missing (required)",
			     p->path, m->header_line, p->cfg->users[i].name);
	}
	const char *au = p->cfg->auth_user;
	if (au[0] && !cfg_find_user(p->cfg, au)) {
		int line = p->pgcrab_meta.key_line[ki_auth_user];
		fail(p, line,
		     "%s:%d: [pgcrab] auth_user: \"%s\" has no [user.%s] section to give its "
		     "password",
		     p->path, line, au, au);
	}

	check_tls(p);
	resolve_databases(p);
	resolve_tables(p);
}

/* Authentication, once everything else is valid (cfg_auth.c). */
static void check_auth(struct parse *p)
{
	int ki_pw = find_key(SECT_USER, "password");
	int *lines = malloc(((size_t)p->cfg->n_users + 1) * sizeof(*lines));
	if (!lines) {
		fail(p, 0, "%s: out of memory", p->path);
		return;
	}
	for (int i = 0; i < p->cfg->n_users; i++)
		lines[i] = p->user_meta[i].key_line[ki_pw];
	char err[512];
	if (cfg_auth_resolve(p->cfg, lines,
			     p->pgcrab_meta.key_line[find_key(SECT_PGCRAB, "auth_file")],
			     p->pgcrab_meta.key_line[find_key(SECT_PGCRAB, "auth_type")], err,
			     sizeof(err))
	    != 0)
		fail(p, 0, "%s", err);
	free(lines);
}

/* Flags and environment variables, after the file. */
static int apply_overrides(struct cfg *cfg, const struct cfg_overrides *ov, char *err,
			   size_t errlen)
{
	static const struct {
		const char *key;
		size_t val, src;
	} map[] = {
#define OV(f, key) \
	{ key, offsetof(struct cfg_overrides, f), offsetof(struct cfg_overrides, f##_src) }
		OV(host, "host"),           OV(port, "port"),
		OV(workers, "workers"),     OV(pool_mode, "pool_mode"),
		OV(log_level, "log_level"), OV(cpu_affinity, "cpu_affinity"),
#undef OV
	};
	for (size_t i = 0; i < ARRAY_LEN(map); i++) {
		const char *val = *(const char *const *)((const char *)ov + map[i].val);
		const char *src = *(const char *const *)((const char *)ov + map[i].src);
		if (!val)
			continue;
		const struct key_def *k = &keys[find_key(SECT_PGCRAB, map[i].key)];
		char why[256];
		if (set_value(k, cfg, val, why, sizeof(why)) != 0) {
			snprintf(err, errlen, "%s: %s", src ? src : map[i].key, why);
			return -1;
		}
	}
	return 0;
}

static void free_owned(enum sect_kind kind, void *base);

/* Everything of the parse but the snapshot (and fp). */
static void free_parse(struct parse *p)
{
	for (int i = 0; p->cfg && i < p->cfg->n_databases; i++)
		free_owned(SECT_DATABASE, &p->raw_dbs[i]);
	for (int i = 0; p->cfg && i < p->cfg->n_sharded_tables; i++)
		free_owned(SECT_TABLE, &p->raw_tables[i]);
	free(p->raw_dbs);
	free(p->raw_tables);
	free(p->line);
	free(p->sect_label);
	free(p->shard_meta);
	free(p->user_meta);
	free(p->db_meta);
	free(p->table_meta);
}

/* Parses fp (named path in messages) and validates; owns and closes fp,
 * even on failure. fp may be NULL when opening failed: errno says why. */
static int load_stream(FILE *fp, const char *path, const struct cfg_overrides *ov, struct cfg **out,
		       char *err, size_t errlen)
{
	char dummy[1];
	if (!err || errlen == 0) {
		err = dummy;
		errlen = sizeof(dummy);
	}
	err[0] = '\0';
	*out = NULL;

	int open_errno = errno;
	struct parse p = { .path = path, .fp = fp };
	p.cfg = calloc(1, sizeof(*p.cfg));
	if (!p.cfg || !(p.cfg->path = strdup(path))) {
		snprintf(err, errlen, "out of memory");
		goto fail_cfg;
	}
	if (apply_defaults(&p, SECT_PGCRAB, p.cfg, NULL) != 0)
		goto fail_parse;

	if (!p.fp) {
		snprintf(err, errlen, "cannot open %s: %s", path, strerror(open_errno));
		goto fail_cfg;
	}
	int rc = ini_parse_stream(read_line, &p, on_key, &p);
	if (rc > 0)
		fail(&p, rc, "%s:%d: malformed line (expected [section], key = value or a comment)",
		     path, rc);
	else if (rc < 0)
		fail(&p, 0, "%s: out of memory while parsing", path);
	if (!p.failed && p.read_errno)
		fail(&p, p.lineno, "cannot read %s: %s", path, strerror(p.read_errno));
	if (!p.failed)
		check_sections(&p);
	if (!p.failed)
		check_auth(&p);
	if (p.failed)
		goto fail_parse;
	if (ov && apply_overrides(p.cfg, ov, err, errlen) != 0)
		goto fail_cfg;

	fclose(p.fp);
	free_parse(&p);
	atomic_init(&p.cfg->refs, 1);
	*out = p.cfg;
	return 0;

fail_parse:
	snprintf(err, errlen, "%s", p.err);
fail_cfg:
	if (p.fp)
		fclose(p.fp);
	free_parse(&p);
	cfg_free(p.cfg);
	return -1;
}

int cfg_load(const char *path, const struct cfg_overrides *ov, struct cfg **out, char *err,
	     size_t errlen)
{
	errno = 0;
	FILE *fp = fopen(path, "r");
	return load_stream(fp, path, ov, out, err, errlen);
}

int cfg_load_buffer(const char *name, const char *text, size_t len, const struct cfg_overrides *ov,
		    struct cfg **out, char *err, size_t errlen)
{
	errno = 0;
	/* fmemopen reads the caller's bytes in place; "r" never writes them */
	FILE *fp = fmemopen((void *)text, len, "r");
	return load_stream(fp, name, ov, out, err, errlen);
}

/* Frees every string and list the table says a section owns. */
static void free_owned(enum sect_kind kind, void *base)
{
	for (size_t i = 0; i < N_KEYS; i++) {
		const struct key_def *k = &keys[i];
		if (k->sect != kind)
			continue;
		char *slot = (char *)base + k->off;
		if (k->type == T_STRING)
			free(*(char **)slot);
		else if (k->type == T_LIST)
			free_list(*(char ***)slot, *(int *)((char *)base + k->count_off));
	}
}

struct cfg *cfg_ref(struct cfg *cfg)
{
	atomic_fetch_add_explicit(&cfg->refs, 1, memory_order_relaxed);
	return cfg;
}

void cfg_unref(struct cfg *cfg)
{
	/* acq_rel: whoever frees sees every other holder's reads done */
	if (cfg && atomic_fetch_sub_explicit(&cfg->refs, 1, memory_order_acq_rel) == 1)
		cfg_free(cfg);
}

void cfg_free_sharding(struct cfg *cfg)
{
	for (int i = 0; i < cfg->n_databases; i++) {
		free(cfg->databases[i].name);
		free(cfg->databases[i].shards);
	}
	for (int i = 0; i < cfg->n_sharded_tables; i++) {
		struct cfg_sharded_table *t = &cfg->sharded_tables[i];
		free(t->name);
		free(t->schema);
		free_list(t->cols, t->n_cols);
		free(t->types);
	}
	free(cfg->databases);
	free(cfg->sharded_tables);
	cfg->databases = NULL;
	cfg->sharded_tables = NULL;
	cfg->n_databases = cfg->n_sharded_tables = 0;
}

void cfg_free(struct cfg *cfg)
{
	if (!cfg)
		return;
	for (int i = 0; i < cfg->n_shards; i++) {
		free_owned(SECT_SHARD, &cfg->shards[i]);
		free(cfg->shards[i].name);
	}
	for (int i = 0; i < cfg->n_users; i++) {
		free_owned(SECT_USER, &cfg->users[i]);
		free(cfg->users[i].name);
		explicit_bzero(&cfg->users[i].secret, sizeof(cfg->users[i].secret));
	}
	cfg_free_sharding(cfg);
	free_owned(SECT_PGCRAB, cfg);
	free(cfg->shards);
	free(cfg->users);
	free(cfg->path);
	explicit_bzero(cfg->auth_key, sizeof(cfg->auth_key));
	free(cfg);
}

const struct cfg_shard *cfg_find_shard(const struct cfg *cfg, const char *name)
{
	for (int i = 0; i < cfg->n_shards; i++)
		if (!cfg->shards[i].removed && strcmp(cfg->shards[i].name, name) == 0)
			return &cfg->shards[i];
	return NULL;
}

const struct cfg_database *cfg_find_database(const struct cfg *cfg, const char *name)
{
	for (int i = 0; i < cfg->n_databases; i++)
		if (strcmp(cfg->databases[i].name, name) == 0)
			return &cfg->databases[i];
	return NULL;
}

const struct cfg_user *cfg_find_user(const struct cfg *cfg, const char *name)
{
	for (int i = 0; i < cfg->n_users; i++)
		if (strcmp(cfg->users[i].name, name) == 0)
			return &cfg->users[i];
	return NULL;
}

const char *cfg_pool_mode_name(enum cfg_pool_mode m)
{
	return (unsigned)m < ARRAY_LEN(pool_mode_names) - 1 ? pool_mode_names[m] : "?";
}

const char *cfg_log_level_name(enum cfg_log_level l)
{
	return (unsigned)l < ARRAY_LEN(log_level_names) - 1 ? log_level_names[l] : "?";
}

const char *cfg_tls_mode_name(enum cfg_tls_mode m)
{
	return (unsigned)m < ARRAY_LEN(tls_mode_names) - 1 ? tls_mode_names[m] : "?";
}

const char *cfg_auth_type_name(enum cfg_auth_type a)
{
	return (unsigned)a < ARRAY_LEN(auth_type_names) - 1 ? auth_type_names[a] : "?";
}

/* Keys only a restart changes: the listeners, the threads, and what
 * auth_query's helper thread was started with. */
static bool needs_restart(const char *key)
{
	static const char *const keys_[] = {
		"host",         "port",         "unix_socket_dir", "workers",    "cpu_affinity",
		"metrics_port", "metrics_host", "auth_user",       "auth_query", NULL
	};
	for (int i = 0; keys_[i]; i++)
		if (strcmp(keys_[i], key) == 0)
			return true;
	return false;
}

/* A shard's address and identity: its server connections were made with
 * them, so they change with a restart only (its password does not). */
static bool shard_needs_restart(const char *key)
{
	return strcmp(key, "host") == 0 || strcmp(key, "port") == 0 || strcmp(key, "database") == 0
		|| strcmp(key, "user") == 0;
}

static bool same_value(const struct key_def *k, const void *a, const void *b)
{
	const char *x = (const char *)a + k->off, *y = (const char *)b + k->off;
	switch (k->type) {
	case T_STRING: {
		const char *u = *(char *const *)x, *v = *(char *const *)y;
		return u == v || (u && v && strcmp(u, v) == 0);
	}
	case T_INT:
	case T_ENUM:
		return *(const int *)x == *(const int *)y;
	case T_BOOL:
		return *(const bool *)x == *(const bool *)y;
	case T_DURATION:
		return *(const uint64_t *)x == *(const uint64_t *)y;
	case T_LIST:
		break;
	}
	return true; /* no list needs a restart */
}

/* dst's value of k becomes src's; -1 when out of memory. */
static int copy_value(const struct key_def *k, void *dst, const void *src)
{
	char *x = (char *)dst + k->off;
	const char *y = (const char *)src + k->off;
	switch (k->type) {
	case T_STRING: {
		const char *v = *(char *const *)y;
		char *copy = v ? strdup(v) : NULL;
		if (v && !copy)
			return -1;
		free(*(char **)x);
		*(char **)x = copy;
		return 0;
	}
	case T_INT:
	case T_ENUM:
		*(int *)x = *(const int *)y;
		return 0;
	case T_BOOL:
		*(bool *)x = *(const bool *)y;
		return 0;
	case T_DURATION:
		*(uint64_t *)x = *(const uint64_t *)y;
		return 0;
	case T_LIST:
		break;
	}
	return 0;
}

/* Keeps in dst (a section of kind) src's values of the keys keep() names,
 * telling note of each that differed. Returns 1 if any did, 0 if none,
 * -1 when out of memory. */
static int keep_values(enum sect_kind kind, bool (*keep)(const char *key), void *dst,
		       const void *src, const char *label, void (*note)(void *arg, const char *msg),
		       void *arg)
{
	int differs = 0;
	for (size_t i = 0; i < N_KEYS; i++) {
		const struct key_def *k = &keys[i];
		if (k->sect != kind || !keep(k->key) || same_value(k, dst, src))
			continue;
		char msg[256];
		snprintf(msg, sizeof(msg), "%s %s changed: it needs a restart, the old value stays",
			 label, k->key);
		note(arg, msg);
		differs = 1;
		if (copy_value(k, dst, src) != 0)
			return -1;
	}
	return differs;
}

int cfg_keep_restart_values(struct cfg *nw, const struct cfg *old,
			    void (*note)(void *arg, const char *msg), void *arg)
{
	if (keep_values(SECT_PGCRAB, needs_restart, nw, old, "[pgcrab]", note, arg) < 0)
		return -1;
	for (int i = 0; i < nw->n_shards && i < old->n_shards; i++) {
		struct cfg_shard *d = &nw->shards[i];
		const struct cfg_shard *s = &old->shards[i];
		if (d->removed || s->removed)
			continue;
		char label[160];
		snprintf(label, sizeof(label), "[shard.%s]", d->name);
		int r = keep_values(SECT_SHARD, shard_needs_restart, d, s, label, note, arg);
		/* the password stays with the user and server it was for */
		if (r < 0
		    || (r > 0 && copy_value(&keys[find_key(SECT_SHARD, "password")], d, s) != 0))
			return -1;
	}
	return 0;
}

static void format_duration(uint64_t ms, char *out, size_t len)
{
	if (ms % 1000 == 0)
		snprintf(out, len, "%llus", (unsigned long long)(ms / 1000));
	else
		snprintf(out, len, "%llums", (unsigned long long)ms);
}

void cfg_describe(const struct cfg *cfg,
		  void (*row)(void *arg, const char *key, const char *value, const char *def,
			      bool reloadable),
		  void *arg)
{
	for (size_t i = 0; i < N_KEYS; i++) {
		const struct key_def *k = &keys[i];
		if (k->sect != SECT_PGCRAB)
			continue;
		const char *slot = (const char *)cfg + k->off;
		char buf[1024] = "";
		switch (k->type) {
		case T_STRING: {
			const char *v = *(char *const *)slot;
			snprintf(buf, sizeof(buf), "%s", v ? v : "");
			break;
		}
		case T_INT:
			snprintf(buf, sizeof(buf), "%d", *(const int *)slot);
			break;
		case T_DURATION:
			format_duration(*(const uint64_t *)slot, buf, sizeof(buf));
			break;
		case T_ENUM:
			snprintf(buf, sizeof(buf), "%s", k->names[*(const int *)slot]);
			break;
		case T_BOOL:
			snprintf(buf, sizeof(buf), "%s", *(const bool *)slot ? "on" : "off");
			break;
		case T_LIST: {
			char *const *v = *(char **const *)slot;
			int n = *(const int *)((const char *)cfg + k->count_off);
			size_t at = 0;
			for (int j = 0; j < n && at < sizeof(buf); j++)
				at += (size_t)snprintf(buf + at, sizeof(buf) - at, "%s%s",
						       j ? "," : "", v[j]);
			break;
		}
		}
		if (strstr(k->key, "password"))
			snprintf(buf, sizeof(buf), "%s", buf[0] ? "********" : "");
		row(arg, k->key, buf, k->def ? k->def : "", !needs_restart(k->key));
	}
}
