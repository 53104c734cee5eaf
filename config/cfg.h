/* Configuration: an INI file (inih) plus flag/environment overrides, checked
 * in one validation pass. A loaded struct cfg is immutable; reload builds a
 * new one. Every error names file, line and key. */
#ifndef PGCRAB_CFG_H
#define PGCRAB_CFG_H

#include <stdatomic.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "auth/secret.h"

/* What transaction pooling does with session state it cannot carry to
 * another server connection (temporary tables, LISTEN, ...). */
enum cfg_pin_mode {
	CFG_PIN_ON,    /* the client keeps its server until the state is gone */
	CFG_PIN_ERROR, /* such statements are refused */
	CFG_PIN_OFF,   /* not kept; the server is reset before anyone else gets it */
};

enum cfg_pool_mode { CFG_POOL_TRANSACTION, CFG_POOL_SESSION };
enum cfg_cpu_affinity { CFG_AFFINITY_OFF, CFG_AFFINITY_WORKERS };
/* How clients prove who they are (order = auth_type_names in cfg.c). */
enum cfg_auth_type { CFG_AUTH_PLAIN, CFG_AUTH_MD5, CFG_AUTH_SCRAM, CFG_AUTH_TRUST, CFG_AUTH_CERT };
enum cfg_log_level { CFG_LOG_ERROR, CFG_LOG_WARN, CFG_LOG_INFO, CFG_LOG_DEBUG };
/* TLS on either side, weakest first (as libpq's sslmode): a mode at least
 * CFG_TLS_REQUIRE insists on TLS, verify-* also on a certificate. */
enum cfg_tls_mode {
	CFG_TLS_DISABLE,
	CFG_TLS_ALLOW,
	CFG_TLS_PREFER,
	CFG_TLS_REQUIRE,
	CFG_TLS_VERIFY_CA,
	CFG_TLS_VERIFY_FULL,
};
/* client_tls_protocols / server_tls_protocols as a set of these bits */
#define CFG_TLS_V1_2 1u
#define CFG_TLS_V1_3 2u

struct cfg_shard {
	char *name; /* section name after "shard."; what clients put in dbname */
	char *host; /* backend host (name or address) */
	int port;
	char *database; /* backend database name; defaults to name */
	char *user;     /* backend credentials; NULL: each client's own role */
	char *password;
	int min_connections; /* totals across all workers */
	int max_connections;
	enum cfg_tls_mode server_tls_mode; /* [pgcrab]'s when the section has none */
	char *server_tls_ca_file;          /* likewise; "" = none */
	/* gone from the file at a reload: kept (at its index) while its
	 * clients and servers drain; lookups by name skip it */
	bool removed;
};

/* [database.NAME]: a logical database over several shards. */
struct cfg_database {
	char *name; /* what clients put in dbname */
	int n_shards;
	int *shards;             /* indexes into cfg->shards, in the order given: shard 0, 1, ... */
	bool cross_reads_error;  /* cross_shard_queries = error (default allow) */
	bool cross_writes_error; /* cross_shard_writes = error (default 2pc) */
};

/* [sharded_table.NAME]: a table split across a database's shards by key. */
struct cfg_sharded_table {
	char *name;   /* lower-cased; "schema.table" in the section name sets schema */
	char *schema; /* NULL: any schema */
	int database; /* index into cfg->databases */
	int n_cols;
	char **cols; /* key columns, lower-cased, in key order */
	int *types;  /* enum router_type values, one per column */
};

struct cfg_user {
	char *name;                /* section name after "user.", or a name from auth_file */
	char *password;            /* as written: cleartext, md5 hash or SCRAM verifier */
	struct auth_secret secret; /* its form; a cleartext's verifier with scram-sha-256 */
	bool from_file;            /* from auth_file, not a [user] section */
};

/* A loaded configuration: an immutable snapshot, shared by reference. Each
 * thread holds its own reference and reads only through it; a reload makes
 * a new snapshot, hands one to each thread, and the old one is freed when
 * its last holder lets go. */
struct cfg {
	_Atomic int refs;
	char *path; /* the file this was loaded from */
	char *host;
	int port;
	char *unix_socket_dir; /* "" = none; else also listen on DIR/.s.PGSQL.port */
	int workers;           /* 0 = one per CPU the process may run on (resolved by main) */
	enum cfg_pool_mode pool_mode;
	enum cfg_auth_type auth_type;
	char *auth_file; /* "" = none; PgBouncer userlist.txt, read at load */
	/* secret material of every user's password: salts of the verifiers
	 * computed at load and of unknown users' mock SCRAM exchanges come
	 * from it, so both stay the same from load to load */
	uint8_t auth_key[AUTH_KEY_LEN];
	enum cfg_log_level log_level;
	enum cfg_pin_mode
		pin_session_state; /* state that cannot follow a client: pin, refuse, or reset */
	enum cfg_cpu_affinity cpu_affinity; /* workers: worker i runs on the i-th usable CPU */
	int max_client_conn;
	int max_packet_size; /* bytes: a client message longer than this is a protocol violation */
	char **admin_users;
	int n_admin_users;
	char **stats_users; /* may run SHOW on the admin console */
	int n_stats_users;
	int metrics_port;   /* Prometheus endpoint; 0 = off */
	char *metrics_host; /* ...listening there; "" = host */
	/* durations in milliseconds; 0 means "never" where SPEC allows it */
	uint64_t server_connect_timeout_ms;
	uint64_t query_wait_timeout_ms;
	uint64_t client_login_timeout_ms;
	uint64_t client_idle_timeout_ms;
	uint64_t idle_transaction_timeout_ms;
	uint64_t server_idle_timeout_ms;
	uint64_t server_lifetime_ms;
	uint64_t shutdown_timeout_ms;
	uint64_t stats_period_ms; /* SHOW STATS_AVERAGES's period and the stats log line; 0 = off */
	int max_prepared_statements; /* per server connection; 0 = pass named statements through */
	char *server_reset_query;    /* session mode, when a client leaves; "" = none */
	bool cancel_on_client_exit;  /* a client that leaves mid-query has it cancelled */
	bool log_connections;        /* a log line per client login attempt and disconnect */
	int max_user_connections;    /* server connections per role in total; 0 = no limit */
	char *auth_user;             /* "" = no auth_query */
	char *auth_query;            /* $1 = the user name */
	uint64_t auth_query_ttl_ms;  /* how long a looked-up verifier is trusted */
	/* TLS with clients: files "" = none; protocols a list checked by
	 * cfg_tls_protocols; ciphers an OpenSSL cipher list (TLS 1.2) */
	enum cfg_tls_mode client_tls_mode;
	char *client_tls_cert_file, *client_tls_key_file, *client_tls_ca_file;
	char *client_tls_protocols, *client_tls_ciphers;
	/* TLS with servers: the shards' default mode and CA; cert/key is
	 * PgCrab's client certificate, optional */
	enum cfg_tls_mode server_tls_mode;
	char *server_tls_ca_file, *server_tls_cert_file, *server_tls_key_file;
	char *server_tls_protocols, *server_tls_ciphers;
	struct cfg_shard *shards;
	int n_shards;
	struct cfg_user *users;
	int n_users;
	struct cfg_database *databases;
	int n_databases;
	struct cfg_sharded_table *sharded_tables;
	int n_sharded_tables;
};

/* Values from flags or the environment, as strings; NULL = not given. They
 * win over the file and are validated like file values; errors name the flag
 * or variable instead of a line. */
struct cfg_overrides {
	const char *host, *host_src; /* *_src: e.g. "--host" or "PGCRAB_HOST" */
	const char *port, *port_src;
	const char *workers, *workers_src;
	const char *pool_mode, *pool_mode_src;
	const char *log_level, *log_level_src;
	const char *cpu_affinity, *cpu_affinity_src;
};

/* Loads and validates. Returns 0 and sets *out, or -1, *out = NULL and one
 * line in err ("pgcrab.ini:12: [shard.a] port: 70000 is out of range
 * 1..65535"); the first problem in the file is the one reported. ov may be
 * NULL. Uses no global state, so a reload may run on any thread. */
int cfg_load(const char *path, const struct cfg_overrides *ov, struct cfg **out, char *err,
	     size_t errlen) __attribute__((warn_unused_result));
/* Same, from len bytes of INI text in memory (no NUL needed); name stands for
 * the file in messages and cfg->path. For tests and the fuzzer. */
int cfg_load_buffer(const char *name, const char *text, size_t len, const struct cfg_overrides *ov,
		    struct cfg **out, char *err, size_t errlen) __attribute__((warn_unused_result));
/* The loader's reference is the first; cfg_unref frees at the last. */
struct cfg *cfg_ref(struct cfg *cfg);
void cfg_unref(struct cfg *cfg);
/* Frees at once whatever the count (for a snapshot nobody else holds). */
void cfg_free(struct cfg *cfg);

const struct cfg_shard *cfg_find_shard(const struct cfg *cfg, const char *name);
const struct cfg_database *cfg_find_database(const struct cfg *cfg, const char *name);
const struct cfg_user *cfg_find_user(const struct cfg *cfg, const char *name);

/* A reload (config/cfg_reload.c): nw, just loaded, takes old's shard
 * indexes (a shard keeps its index while PgCrab runs; one gone from the file
 * stays as a removed entry, new ones come after; at most max_shards in
 * all), old's [database.*] and [sharded_table.*] sections, and old's values
 * of every key that needs a restart. note is told of each change that is
 * not taken. -1 with err when nw cannot be taken. */
int cfg_reload_prepare(const struct cfg *old, struct cfg *nw, int max_shards,
		       void (*note)(void *arg, const char *msg), void *arg, char *err,
		       size_t errlen) __attribute__((warn_unused_result));
/* Frees cfg's [database.*] and [sharded_table.*] sections, leaving none. */
void cfg_free_sharding(struct cfg *cfg);
/* Part of it (cfg.c): the restart-only values, [pgcrab]'s and each
 * shard's (by index, after alignment). -1 when out of memory. */
int cfg_keep_restart_values(struct cfg *nw, const struct cfg *old,
			    void (*note)(void *arg, const char *msg), void *arg);

/* Parses "250ms", "5s", "2min", "1h" or a bare number of seconds (units are
 * case-insensitive). Returns -1 for negatives, fractions, unknown units and
 * values that overflow uint64_t milliseconds; *out_ms is then untouched. */
int cfg_parse_duration_ms(const char *text, uint64_t *out_ms) __attribute__((warn_unused_result));

/* Each [pgcrab] key: its value as text (secrets masked), its default, and
 * whether a reload changes it (SHOW CONFIG). */
void cfg_describe(const struct cfg *cfg,
		  void (*row)(void *arg, const char *key, const char *value, const char *def,
			      bool reloadable),
		  void *arg);

const char *cfg_pool_mode_name(enum cfg_pool_mode m);
const char *cfg_log_level_name(enum cfg_log_level l);
const char *cfg_auth_type_name(enum cfg_auth_type a); /* "plain", "scram-sha-256", ... */
const char *cfg_tls_mode_name(enum cfg_tls_mode m);   /* "verify-full" */
/* "secure" (TLS 1.2 and 1.3), "all" (the same: older versions are not
 * offered) or a comma list of tlsv1.2, tlsv1.3: the CFG_TLS_V* bits, or 0
 * for anything else. */
unsigned cfg_tls_protocols(const char *text);

#endif
