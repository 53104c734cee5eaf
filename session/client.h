/* The client connection state machine. Only client_set_state() changes a
 * client's state. A client logs in (session/login.c), waits for a server
 * from its pool, and is linked to it through the relay while a transaction
 * (transaction mode) or its whole session (session mode) lasts. */
#ifndef PGCRAB_CLIENT_H
#define PGCRAB_CLIENT_H

#include <stdint.h>

#include "auth/scram_server.h"
#include "auth/secret.h"
#include "config/cfg.h"
#include "core/conn.h"
#include "core/list.h"
#include "core/timer.h"
#include "pool/params.h"
#include "pool/pool.h"
#include "pool/stmt.h"
#include "proto/options.h"
#include "proto/proto.h"
#include "relay/relay.h"

enum client_state {
	CLIENT_STARTUP,     /* reading the startup packet; not on a list */
	CLIENT_AUTH,        /* password requested; not on a list */
	CLIENT_LOGIN_WAIT,  /* authenticated, waiting on its pool until the
			      shard's ParameterStatus values are known */
	CLIENT_LOGIN_CHECK, /* authenticated, linked to a server that is given its
			       startup settings: refused there, the login fails */
	CLIENT_IDLE,        /* logged in, holds no server */
	CLIENT_WAITING,     /* has a request, waiting on its pool */
	CLIENT_ACTIVE,      /* linked to a server through the relay */
	CLIENT_ADMIN,       /* on the admin console: PgCrab answers its queries */
	CLIENT_ADMIN_BUSY,  /* on the console, a command waits for the workers' answers */
	CLIENT_HANDOVER,    /* an upgrade's drain: its socket and session are going to the
			       new process (session/handover.c) */
	CLIENT_CLOSING,     /* flushing a last message, then closed */
};

/* How this client proves who it is (from auth_type and its stored secret). */
enum login_method { LOGIN_TRUST, LOGIN_PLAIN, LOGIN_MD5, LOGIN_SCRAM, LOGIN_CERT };

/* What a client said at startup that only authentication needs. */
struct client_login {
	enum login_method method;
	uint8_t md5_salt[4];
	struct auth_scram_server *scram; /* LOGIN_SCRAM: the exchange */
	char user[64];
	char missing_db[64]; /* dbname that names no shard, for the error after auth */
	bool bad_options;    /* options refused: opt_err goes out after auth */
	bool console;        /* dbname is the admin console's */
	struct proto_options_error opt_err;
	/* auth_query, for a role the config does not list: the lookup in
	 * flight, then its answer, which stands in for a [user] section */
	struct authq_req *authq;
	bool looked_up;       /* the answer came: found tells which */
	bool found;           /* ...the role exists: role holds its secret */
	bool cached;          /* ...from the worker's cache, not the shard */
	struct cfg_user role; /* its password (malloc'd) is the verifier's text */
	/* a cleartext password being checked against a SCRAM verifier on the
	 * auth hasher's thread (session/hasher.h) */
	struct hasher_req *hash;
};

/* Frees a client_login, cancelling its lookup and wiping its password. */
void client_login_free(struct client_login *l);

struct session_worker;

struct client {
	struct conn c; /* first: a client is a conn */
	enum client_state state;
	struct session_worker *sw;
	struct list link;        /* sw->clients */
	struct pool_waiter wait; /* on the pool while LOGIN_WAIT/WAITING */
	struct pool *pool;
	struct relay_link rl; /* to its server(s) while ACTIVE */
	struct timer timer;   /* the deadline of its state, if any */
	uint64_t born_ms;     /* accepted: client_login_timeout counts from here */
	int32_t key_pid, key_secret;
	bool ssl_asked, gss_asked;  /* each may come once, before the startup packet */
	struct client_login *login; /* between startup and authentication only */
	struct param_set want;      /* session parameters this client expects */
	struct param_set startup;   /* ...those it logged in with */
	bool check_settings;        /* a server must accept its startup settings first */
	struct stmt_names stmts;    /* its named prepared statements */
	struct session_db *db;      /* a sharded database's client; else NULL */
	/* after login: the role it logged in as and what it proved, with which
	 * a shard without a user logs it in as itself (wiped at close) */
	char *user;
	struct auth_proof *proof;
	int admin_role;              /* enum admin_role: on the admin console, what it may do */
	struct admin_gather *gather; /* the console command waiting for the workers */
	bool admin_skipping;         /* the console refused an extended-protocol batch: to Sync */
	int stats_slot;              /* the stats slot its state is counted in */
	uint64_t wait_start_us;      /* began waiting for a server (w->now_us) */
	/* log_connections: its login attempt was logged, so its end will be,
	 * with the peer's address as it was then (the socket may not know it
	 * any more when the peer has gone) */
	bool log_bye;
	char *peer_text;
};

static inline struct client *container_of_client(struct conn *c)
{
	return (struct client *)c;
}

struct auth_proof;

const char *client_state_name(enum client_state s);
/* The pool the client takes servers of shard (index in the config) from:
 * the shard's, or on a shard without a user its own role's. NULL if no
 * pool can be had (role table full, out of memory). */
struct pool *client_pool(struct client *cl, int shard);
void client_set_state(struct client *cl, enum client_state st);

/* A freshly accepted socket handed to this worker. */
void client_accept(struct session_worker *sw, int fd);
/* A client on fd in state STARTUP, on the worker's list, nothing armed;
 * NULL (fd closed) when out of memory. */
struct client *client_new(struct session_worker *sw, int fd);

/* Sends "severity code message" and closes the client (without a word when
 * a server message is part way to it). */
void client_fail(struct client *cl, const char *severity, const char *code, const char *fmt, ...)
	__attribute__((format(printf, 4, 5)));
/* The same with a detail and a hint (either NULL), and the message as is. */
void client_fail_full(struct client *cl, const char *severity, const char *code,
		      const char *message, const char *detail, const char *hint);
void client_close_now(struct client *cl);
/* The same, with why for the log_connections line. */
void client_close_why(struct client *cl, const char *why);
/* log_connections: the login attempt's line (user and database known). */
void client_log_hello(struct client *cl, const char *user, const char *database);
/* Queues the writer's bytes to the client and sends; closes it if they do
 * not fit. */
void client_queue(struct client *cl, const struct proto_writer *wr);
/* Reads on, or fails the client if its buffer is full. */
void client_arm(struct client *cl);

/* Logged in: idle until its next request (session/login.c calls this). */
void client_logged_in(struct client *cl);
/* The client's rx holds bytes in a state that handles them (login steps,
 * a request while idle): handle them now, else read on. */
void client_next(struct client *cl);

/* Shutdown: called on every client once when it begins, and again each
 * tick until shutdown_timeout, then with cut set. */
void client_shutdown(struct client *cl, bool cut);
/* An online upgrade's drain: the new process takes new clients, so here a
 * client logging in may finish and a client that just did may send its
 * first request; only one idle for grace_ms is closed. In a transaction it
 * goes when the transaction ends (on_settled), as in any shutdown. */
void client_drain(struct client *cl, uint64_t grace_ms);

/* Statistics the tick publishes: each pool's longest wait. */
void client_stats_tick(struct session_worker *sw);

/* session/login_tls.c: TLS at login (client_tls_mode) */
#define LOGIN_TLS_HANDSHAKE 0x16 /* a TLS record's first byte: direct TLS */
void login_direct_tls(struct client *cl);
/* Starts TLS after 'S' (or direct); -1 when the client was failed. */
int login_start_tls(struct client *cl, bool direct);
/* A startup packet the TLS mode refuses (plaintext where TLS is required,
 * a certificate whose CN is not the user for verify-full): the client was
 * failed and true is returned. */
bool login_tls_refuses(struct client *cl, const char *user, const char *database);

/* session/login.c */
void login_on_startup(struct client *cl);
void login_on_password(struct client *cl);
/* Frees (and wipes) a login's state; NULL is fine. */
void login_free(struct client_login *login);
/* A server granted to a LOGIN_WAIT client: the shard's parameters are known. */
void login_finish(struct client *cl);
/* A server accepted the client's startup settings: later logins with the
 * same ones need not ask. */
void login_settings_checked(struct client *cl);

#endif
