/* The server connection state machine: connect, startup, authentication,
 * idle in its pool, lent to the relay (core of a client's link, or being
 * cleaned after its client left), handed to another worker, closed. Only
 * server_set_state() changes a server's state; it keeps the pool's lists
 * and counts in step. While a server is lent, the relay's connection ops
 * are installed and the relay drives it. */
#ifndef PGCRAB_SERVER_H
#define PGCRAB_SERVER_H

#include <stdint.h>

#include "core/conn.h"
#include "core/list.h"
#include "pool/params.h"
#include "pool/stmt.h"

enum server_state {
	SERVER_CONNECTING, /* connect in flight; counted in pool->n_connecting */
	SERVER_TLS_ASK,    /* SSLRequest sent, awaiting 'S' or 'N'; in n_connecting */
	SERVER_LOGIN,      /* startup and authentication; counted in n_connecting */
	SERVER_IDLE,       /* on pool->idle, recv armed to notice a close */
	SERVER_ACTIVE,     /* lent to the relay: linked to a client */
	SERVER_RESET,      /* lent to the relay: its client left; being cleaned */
	SERVER_DONATING,   /* recv being cancelled; then handed to another worker */
	SERVER_CLOSING,    /* close in flight */
};

struct auth_proof;
struct auth_scram_client;
struct auth_scram_keys;
struct pool;
struct pool_role;
struct shard;

struct server {
	struct conn c; /* first: a server is a conn */
	enum server_state state;
	struct list link;  /* pool->idle while IDLE, the outbox while DONATING */
	struct list all;   /* pool->servers, in every state but CLOSING */
	struct pool *pool; /* this worker's pool of the shard */
	struct shard *shard;
	void *borrower;        /* the relay's, while ACTIVE or RESET */
	struct param_set have; /* session parameters as set on this server */
	struct stmt_set stmts; /* statements prepared on this server */
	int donate_to;         /* worker id while DONATING */
	int32_t be_pid, be_key;
	uint64_t born_ms;
	uint32_t generation; /* its shard's at connect: RECONNECT replaces older ones */
	struct auth_scram_client *scram;
	/* a shard without a user: the role it is logged in as, for good (it
	 * only ever serves that role's clients), and while it logs in a copy
	 * of the proof it logs in with */
	struct pool_role *role;
	struct auth_proof *proof;
	struct auth_scram_keys *scram_keys;
	uint8_t *params; /* ParameterStatus messages from login, ready to send */
	uint32_t params_len;
};

static inline struct server *container_of_server(struct conn *c)
{
	return (struct server *)c;
}

const char *server_state_name(enum server_state s);
/* The role the server is logged in as. */
const char *server_user(const struct server *s);
void server_set_state(struct server *s, enum server_state st);

/* Opens a new connection for pool (the shard's cap is already reserved). */
void server_connect(struct pool *pool);
/* The pool's connection ops, installed whenever the pool holds the server. */
extern const struct conn_ops server_pool_ops;

/* Closes the server and updates its pool's counts. */
void server_close(struct server *s, const char *why);
/* Frees a server whose last reference is gone (its conn_ops on_free). */
void server_free(struct server *s);
/* Moves an idle server to another worker (cancels its recv first). */
void server_donate(struct server *s, int to_worker);
void server_on_donate_sent(struct server *s, int res);
void server_tick(struct server *s);

/* Sends a CancelRequest for what s runs now, over a one-shot connection.
 * done (may be NULL) is called once PostgreSQL has acted on it (it closes
 * that connection after signalling the backend) or the attempt failed
 * later; s is kept until then. -1 (done not called) if no connection could
 * be made at all (no descriptor, no memory). */
int server_cancel_query(struct server *s, void (*done)(struct server *s));

#endif
