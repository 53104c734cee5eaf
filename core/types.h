/* The runtime's data structures, apart from the functions that use them.
 * Ownership: a worker owns its clients, its pools and the servers in them;
 * nothing here is touched by another thread except the fields marked
 * "shared" (atomics) and a server while it is handed between workers. */
#ifndef PGCRAB_TYPES_H
#define PGCRAB_TYPES_H

#include <liburing.h>
#include <netinet/in.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdbool.h>
#include <stdint.h>
#include <sys/socket.h>

#include "config/cfg.h"
#include "core/params.h"
#include "core/replies.h"
#include "core/stmt.h"
#include "core/uring_data.h"

#define CONN_BUF_SIZE  16384 /* one provided receive buffer */
#ifndef CONN_BUF_COUNT
#define CONN_BUF_COUNT 512   /* provided buffers per worker (a power of two) */
#endif
#define CONN_WHOLE_MAX 32768 /* largest message PgCrab reads whole without being asked to */
#define CONN_TX_CAP 2048     /* PgCrab's own messages (login, errors, hidden queries) */
#define MAX_WORKERS 256

/* Intrusive doubly linked list; an object is on at most one list per link. */
struct list {
	struct list *prev, *next;
};

/* Kinds of cross-thread messages (UD_MSG, core/uring_data.h). */
enum worker_msg {
	MSG_NEW_CLIENT = 1, /* res = accepted fd */
	MSG_SERVER = 2,     /* payload: the struct server * donated to us */
	MSG_WAKE = 3,       /* look at the shards' starving marks */
	MSG_SHUTDOWN = 4,
	MSG_CANCEL = 5,     /* payload: client pid, res: its secret key */
};

enum conn_kind {
	CONN_CLIENT,
	CONN_SERVER,
	CONN_CANCEL, /* a one-shot connection carrying a CancelRequest to a server */
};

/* What a connection's single in-flight send is sending. */
enum send_src { SEND_NONE, SEND_TX, SEND_FORWARD };

/* The part shared by clients and servers: a socket, a receive buffer and
 * one send at a time (ordering on a stream needs no more). The receive
 * buffer exists only while unconsumed bytes do: an idle connection's recv
 * waits with no buffer, and the kernel picks one from the worker's provided
 * buffer ring when bytes arrive. */
struct conn {
	enum conn_kind kind;
	int fd;
	struct worker *w;
	/* completions still to come that name this connection or read its
	 * memory (a peer's send from our rx); freed only at zero */
	int refs;
	bool recv_armed;
	bool recv_cancelling;     /* the armed recv is being cancelled */
	bool connect_armed;       /* a connect is in flight */
	bool poll_armed;          /* a poll for the peer's close is in flight */
	bool closing;
	enum send_src send_src;
	struct conn *send_owner;  /* whose rx a SEND_FORWARD reads */
	const uint8_t *send_ptr;  /* rest of the current send */
	uint32_t send_left;
	uint32_t send_end;        /* where the send ends: owner's rx offset, or tx offset */
	uint8_t *rx;              /* [rx_start, rx_end) received, not yet consumed */
	uint32_t rx_start, rx_end;
	uint32_t rx_cap;          /* grows only for a message that must be seen whole */
	int rx_bid;               /* rx is the worker's provided buffer rx_bid, or heap (-1) */
	int rx_lent;              /* sends in flight reading rx: it may not move */
	bool rx_keep;             /* the next recv goes into a buffer of our own */
	uint32_t rx_want;         /* capacity the next recv needs (0: as is) */
	uint32_t scan_pos;        /* bytes before this are scanned */
	uint32_t msg_left;        /* body bytes of the current message beyond scan_pos */
	bool dropping;            /* ...and they are not forwarded: PgCrab answers it */
	uint8_t *tx;              /* allocated while PgCrab has something of its own to send */
	uint32_t tx_len, tx_cap;
	uint64_t id;              /* for logs */
	uint64_t since_ms;        /* when the current state began */
	uint64_t io_ms;           /* when bytes last went through */
};

enum client_state {
	CLIENT_STARTUP,    /* reading the startup packet; not on a list */
	CLIENT_AUTH,       /* password requested; not on a list */
	CLIENT_LOGIN_WAIT, /* authenticated, on pool->waiting until the shard's
			      ParameterStatus values are known */
	CLIENT_IDLE,       /* logged in, holds no server */
	CLIENT_WAITING,    /* has a request, on pool->waiting */
	CLIENT_ACTIVE,     /* linked to a server */
	CLIENT_CLOSING,    /* flushing a last message, then closed */
};

/* What a client said at startup that only authentication needs. */
struct client_login {
	char user[64];
	char missing_db[64]; /* dbname that names no shard, for the error after auth */
};

struct client {
	struct conn c;    /* first: a client is a conn */
	enum client_state state;
	struct list link; /* worker->clients */
	struct list wait; /* pool->waiting while LOGIN_WAIT/WAITING */
	struct pool *pool;
	struct server *server;
	bool terminate;   /* saw Terminate; close once what precedes it is sent */
	uint64_t born_ms; /* accepted: client_login_timeout counts from here */
	int32_t key_pid, key_secret;
	struct client_login *login; /* between startup and authentication only */
	struct param_set want; /* session parameters this client expects */
	struct stmt_names stmts; /* its named prepared statements */
};

enum server_state {
	SERVER_CONNECTING, /* connect in flight; counted in pool->n_connecting */
	SERVER_LOGIN,      /* startup and authentication; counted in n_connecting */
	SERVER_IDLE,       /* on pool->idle, recv armed to notice a close */
	SERVER_ACTIVE,     /* linked to a client */
	SERVER_RESET,      /* its client left: owed replies are read and dropped, a
			      running query cancelled, then a hidden ROLLBACK
			      and/or DISCARD ALL, before it goes idle */
	SERVER_DONATING,   /* recv being cancelled; then handed to another worker */
	SERVER_CLOSING,    /* close in flight */
};

struct auth_scram_client;

struct server {
	struct conn c;
	enum server_state state;
	struct list link;    /* pool->idle while IDLE */
	struct list all;     /* pool->servers, in every state but CLOSING */
	struct pool *pool;   /* this worker's pool of the shard */
	struct shard *shard;
	struct client *client;
	int expect_ready;    /* ReadyForQuery messages still owed for what was sent */
	int hidden_ready;    /* ...owed for PgCrab's own hidden queries, answered first */
	struct param_set have; /* session parameters as set on this server */
	struct stmt_set stmts;   /* statements prepared on this server */
	struct replies replies;  /* what it owes, in order */
	bool unsynced;       /* extended-protocol messages sent since the last Sync */
	bool unsynced_exec;  /* ...and an Execute among them: a Sync would commit it */
	bool copy_in;        /* in COPY FROM STDIN: the server reads CopyData */
	bool cancel_pending; /* a CancelRequest for it is on its way */
	uint8_t cleanup;     /* SERVER_RESET steps taken (CLEANUP_* in pool/server.c) */
	uint8_t cancels_sent; /* CancelRequests sent since its client left */
	char tx_status;      /* last ReadyForQuery status: 'I', 'T' or 'E' */
	int donate_to;       /* worker id while DONATING */
	int32_t be_pid, be_key;
	uint64_t born_ms;
	struct auth_scram_client *scram;
	uint8_t *params;     /* ParameterStatus messages from login, ready to send */
	uint32_t params_len;
};

/* ParameterStatus messages as one byte blob, published once per shard. */
struct param_blob {
	uint32_t len;
	uint8_t data[];
};

/* A backend, shared by all workers. */
struct shard {
	int index;
	const struct cfg_shard *cfg;
	struct sockaddr_storage addr;
	socklen_t addrlen;
	_Atomic int open;                         /* shared: connections held against max */
	_Atomic uint64_t starving[MAX_WORKERS / 64]; /* shared: workers whose waiters need a server */
	_Atomic(struct param_blob *) params;      /* shared: set once */
};

/* One shard's pool on one worker. */
struct pool {
	struct shard *shard;
	struct worker *w;
	struct list idle;       /* servers, most recently used first */
	struct list waiting;    /* clients, first come first served */
	struct list servers;    /* every server of this pool but the closing ones */
	int n_idle, n_waiting;
	int n_servers;          /* all this worker's servers of the shard */
	int n_connecting;
	int min_local;          /* this worker's share of min_connections */
	uint64_t next_connect_ms;
	uint32_t backoff_ms;
	int local_streak;       /* releases in a row to local waiters while others starve */
};

struct runtime;

struct worker {
	int id;
	struct runtime *rt;
	struct io_uring ring;
	int ring_fd;
	pthread_t thread;
	struct pool *pools;      /* one per shard */
	struct list clients;
	struct list outbox;      /* servers to post to other workers after this batch */
	struct io_uring_buf_ring *buf_ring; /* provided receive buffers, or NULL (old kernel) */
	uint8_t *bufs;           /* CONN_BUF_COUNT * CONN_BUF_SIZE bytes behind buf_ring */
	uint64_t now_ms;
	bool stopping;           /* shutdown requested */
	bool done;               /* shutdown finished: the loop ends once live is 0 */
	int live;                /* connections not yet freed */
	int live_peak;           /* most live since memory was last trimmed */
	uint64_t stop_deadline_ms;
	uint64_t next_id;
	uint32_t next_pid;       /* BackendKeyData pids: (counter << 8) | worker id */
	int32_t secrets[256];    /* random BackendKeyData secrets, used from the end */
	int secrets_left;
	struct __kernel_timespec tick;
	/* written by other threads: own cache line */
	_Alignas(64) _Atomic int n_clients;
};

struct runtime {
	struct cfg *cfg;
	struct shard *shards;
	int n_shards;
	struct worker *workers;
	int n_workers;
	_Atomic int workers_done;
	_Atomic int servers_in_transit; /* posted to a worker, not yet adopted */
	pthread_barrier_t ready;  /* workers' rings are set up */
};

#endif
