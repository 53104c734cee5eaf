/* The relay: the one piece of code that touches both ends of a link
 * between a client and its server connections. It attaches a server the
 * pool granted, forwards each way (zero-copy, watching only message
 * headers), keeps per server the ledger of replies owed, answers what
 * PgCrab answers itself, tells its owner when the link has settled, and
 * detaches: a server whose client left is cleaned (owed replies dropped,
 * what runs cancelled, ROLLBACK, DISCARD ALL in session mode) before it
 * goes back to its pool, or closed.
 *
 * A client may hold one server per shard at a time (a leg each, replies
 * kept apart); today requests go to one leg, the one of the client's shard. */
#ifndef PGCRAB_RELAY_H
#define PGCRAB_RELAY_H

#include <stdbool.h>
#include <stdint.h>

#include "core/conn.h"
#include "core/timer.h"
#include "pool/params.h"
#include "pool/server.h"
#include "pool/stmt.h"
#include "relay/replies.h"

struct relay_link;

/* One server linked to a client (or, once the client left, being cleaned). */
struct relay_leg {
	struct relay_leg *next;  /* the link's legs */
	struct relay_link *link; /* NULL once its client has left */
	struct server *server;
	struct replies replies; /* what the server owes, in order */
	int expect_ready;       /* ReadyForQuery owed for what was sent */
	int hidden_ready;       /* ...for PgCrab's own hidden SETs, answered first */
	bool unsynced;          /* extended-protocol messages sent since the last Sync */
	bool unsynced_exec;     /* ...and an Execute among them: a Sync would commit it */
	bool copy_in;           /* in COPY FROM STDIN: the server reads CopyData */
	bool cancel_pending;    /* a CancelRequest for it is on its way */
	char tx_status;         /* last ReadyForQuery status: 'I', 'T' or 'E' */
	uint8_t cleanup;        /* cleanup steps taken (relay/cleanup.c) */
	uint8_t cancels_sent;   /* CancelRequests sent since the client left */
	struct timer timer;     /* cleanup: cancel again, or give up */
	/* session state (relay/state.c) */
	uint8_t hidden;        /* which hidden query hidden_ready counts: RELAY_HIDDEN_* */
	uint8_t hidden_failed; /* ...the one that failed, for the link to act on */
	bool hidden_done;      /* a hidden query was answered: settle again */
	bool tell_client;      /* the hidden SET's reports go on to the client (after a RESET) */
	bool unusable;       /* its session ran LOAD: closed, never reused, once its client left */
	bool retry_now;      /* a kept batch is to be sent again (relay/retry.c) */
	uint32_t ready_seen; /* ReadyForQuery messages taken */
	uint32_t mask_until_ready; /* reports of reset settings are the server's until then */
	struct relay_retry *retry; /* ...and its copy, once one was kept */
	bool resync;               /* settings to bring in line before the next request */
	bool discard;         /* the session holds state nobody carries: reset it before release */
	unsigned dirty;       /* query effects sent since the server was last asked */
	unsigned probed_pins; /* the probe's answer, as it arrives */
	struct param_set probed; /* ...its settings */
	char hidden_code[6];     /* an ErrorResponse to a hidden query */
	char hidden_msg[256];
	/* statistics (w->now_us; 0: none): the query and the transaction
	 * under way began when the first of their bytes went to the server */
	uint64_t query_start_us, xact_start_us;
	int shard; /* sharded links: the shard's index in its database */
	bool fan;  /* sharded links: its replies go to the fan-out (relay/fanout.c) */
};

enum { RELAY_HIDDEN_SYNC = 1, RELAY_HIDDEN_PROBE, RELAY_HIDDEN_DISCARD, RELAY_HIDDEN_BEGIN };

/* A client's RESETs still to settle; allocated at its first RESET, as
 * most clients never run one. */
struct relay_resets {
	/* settings a RESET is returning to their startup values in this
	 * transaction (reset_all: all but the "!name" entries) */
	bool reset_all_pending;
	int n_reset_pending;
	char reset_pending[8][64];
	struct param_set reset_before; /* ...and what the client had before ("\1": nothing) */
	/* reset, but a local value hides it in this transaction */
	struct param_set hold_reset;
	bool hold_reset_all;
	/* the settings the last request with a RESET reset (mask_all: all but
	 * these): its own reports of them are the server's defaults */
	bool mask_all;
	int n_mask;
	char mask[8][64];
};

/* How the relay tells the link's owner (the client) what happened. */
struct relay_link_ops {
	/* Every server of the link is between transactions with nothing owed
	 * or in flight: the owner may keep the link or relay_release it. */
	void (*settled)(struct relay_link *l);
	/* The client sent Terminate and what came before it is answered. */
	void (*finished)(struct relay_link *l);
	/* A server was lost; cut: part of one of its messages had gone on to
	 * the client. The link is already detached from it. */
	void (*lost)(struct relay_link *l, const char *why, bool cut);
	/* The client broke the protocol, or PgCrab ran out of memory. */
	void (*failed)(struct relay_link *l, const char *sqlstate, const char *msg);
	/* Sharded links: a server of the database's shard is needed; the
	 * owner acquires one and relay_attach-es it (or fails the link). */
	void (*need)(struct relay_link *l, int shard);
};

struct relay_router;
struct router_schema;

struct relay_link {
	struct conn *client;
	const struct relay_link_ops *ops;
	struct param_set *want;      /* the session parameters the client expects */
	struct param_set *startup;   /* ...those it gave at startup (what RESET returns to) */
	unsigned pinned;             /* QUERY_PINS state its session holds: its server is kept */
	unsigned parse_effects;      /* the effects of the Parse being scanned (for prepared.c) */
	unsigned unnamed_effects;    /* ...of the unnamed statement last parsed */
	struct stmt *last_bind;      /* the shared statement of the Bind being scanned, or NULL */
	bool quiet;                  /* logging in: nothing may reach the client yet */
	bool tell_reports;           /* a RESET told it the server's defaults: the next
				      hidden SET's reports go on to it */
	struct param_set custom;     /* custom settings (myapp.x) it gave a value: asked by name */
	struct relay_resets *resets; /* what its RESETs left to settle (relay/state.c), or NULL */
	struct stmt_names *names;    /* the client's named prepared statements */
	struct relay_leg *legs;      /* one per shard the client holds a server of */
	struct relay_leg *to;        /* the leg requests go to */
	bool terminate;              /* saw Terminate: answered what precedes it, then done */
	/* sharded links (relay/route.c): NULL for a plain shard's clients */
	struct relay_router *router;
	int unit_msgs; /* messages of the routed unit still to pass to l->to */
};

void relay_link_init(struct relay_link *l, struct conn *client, const struct relay_link_ops *ops,
		     struct param_set *want, struct param_set *startup, struct stmt_names *names);

/* Frees what the link holds (its legs are gone: detached or released). */
void relay_link_clear(struct relay_link *l);

/* Links a server the pool granted and sends it what the client has sent.
 * The link's session parameters are brought in line first. */
void relay_attach(struct relay_link *l, struct server *s);
static inline bool relay_linked(const struct relay_link *l)
{
	return l->legs != NULL;
}
/* The client's bytes arrived (rx grew): forward what can go. */
void relay_client_recv(struct relay_link *l);
/* A send to the client completed: forward more replies, and settle. */
void relay_client_sent(struct relay_link *l);
/* Hands the link's servers back to their pools; call only from settled. */
void relay_release(struct relay_link *l);
/* The client is leaving, however: each server is detached and cleaned or
 * closed. True if a server message was part way to the client (an
 * ErrorResponse now would be read as the rest of it). */
bool relay_detach(struct relay_link *l);
/* A CancelRequest for what the link's servers run now. */
void relay_cancel(struct relay_link *l);
/* The link is idle in a transaction: nothing owed, a transaction open. */
bool relay_idle_in_transaction(const struct relay_link *l);
/* Every server of the link is outside a transaction with nothing owed. */
bool relay_between_transactions(const struct relay_link *l);

/* The client's session holds state that keeps its server (transaction
 * mode with pin_session_state = on). */
static inline bool relay_pinned(const struct relay_link *l)
{
	return l->pinned != 0;
}

/* relay/route.c: a client of a sharded database. db_name names it in
 * two-phase commit identifiers. -1 when out of memory. */
int relay_route_init(struct relay_link *l, const struct router_schema *schema, const char *db_name);
/* The link is between statements, outside any transaction (settled may
 * release its servers). */
bool relay_route_idle(const struct relay_link *l);
/* relay.c calls these for sharded links */
void relay_route_pump(struct relay_link *l);
void relay_route_server_recv(struct relay_leg *leg);
void relay_route_clear(struct relay_link *l);
/* Statistics (stats/): n bytes of the client's go to the leg's server; the
 * server answered a request with ReadyForQuery of this status. */
void relay_stats_request(struct relay_leg *leg, uint32_t n);
void relay_stats_ready(struct relay_leg *leg, char status);
/* relay.c: forwards the routed unit to l->to, as for a plain link */
void relay_pump_leg(struct relay_link *l);
void relay_pump_replies(struct relay_leg *leg);
void relay_settle(struct relay_link *l);
void relay_leg_lost(struct relay_leg *leg, const char *why);
/* relay/state.c: a hidden simple query on the leg (kind RELAY_HIDDEN_*) */
int relay_send_hidden(struct relay_leg *leg, uint8_t kind, const char *sql);

/* Frees the legs this thread keeps for reuse (at the thread's end). */
void relay_thread_exit(void);

/* The server connection ops while a server is lent to the relay. */
extern const struct conn_ops relay_server_ops;

/* relay/cleanup.c: a leg whose client left */
void relay_cleanup_start(struct relay_leg *leg, bool cut);
void relay_cleanup_recv(struct relay_leg *leg);
void relay_cleanup_sent(struct relay_leg *leg);

/* relay/state.c: what the client's statements do to the session */
enum relay_state_result { STATE_OK, STATE_WAIT, STATE_REFUSED, STATE_OOM };
/* A Query or Parse at the client's rx[pos]: classified, its effects noted
 * (or, refused under pin_session_state = error: dropped, and the server
 * made to raise the error in its place). */
enum relay_state_result relay_state_request(struct relay_link *l, struct relay_leg *leg,
					    uint8_t type, uint32_t pos, uint32_t total, bool *drop);
/* The leg is clean: reset or ask the server first if its session needs it.
 * 1 if a hidden query went out (the leg is not clean until answered), 0 if
 * none was needed, -1 if it could not be sent. */
int relay_state_settle(struct relay_leg *leg);
/* A hidden SET/RESET bringing the link's settings in line, if they differ:
 * 0, or -1 (close the server). */
int relay_sync_params(struct relay_leg *leg);
/* One whole reply to a hidden query. 0: taken; 1: it was the last
 * (ReadyForQuery) and the answer is acted on; 2: taken and passed on to the
 * client (pause until that send completes); -1: the query failed and the
 * link must act (hidden_failed says which). */
int relay_state_hidden(struct relay_leg *leg, uint8_t type, const uint8_t *body, uint32_t len);
/* A ParameterStatus report while linked. True if it was queued on to the
 * client (a send to it is then under way: scanning must pause). */
bool relay_state_report(struct relay_leg *leg, const uint8_t *body, uint32_t len);

/* relay/retry.c: a shared statement refused with 0A000 "cached plan must
 * not change result type" is prepared again and its batch sent again */
struct relay_retry;
/* Each client message as it is passed on to the leg's server. */
void relay_retry_scan(struct relay_link *l, struct relay_leg *leg, uint8_t type, uint32_t pos,
		      uint32_t total, bool drop);
/* A ReadyForQuery was taken. */
void relay_retry_ready(struct relay_leg *leg);
/* A kept batch awaits its answer (its error must be seen whole, at rx_start). */
bool relay_retry_armed(const struct relay_leg *leg);
/* An ErrorResponse to the kept batch's Bind: true if it is 0A000 and the
 * batch will be sent again (the error and the ReadyForQuery are dropped). */
bool relay_retry_error(struct relay_leg *leg, const uint8_t *body, uint32_t len);
bool relay_retry_firing(const struct relay_leg *leg);
/* Sends the statement's Close, Parse and the batch again (hidden). */
int relay_retry_send(struct relay_leg *leg);
/* Forgets what was kept (the leg goes back to the thread's spares with
 * its buffers), or frees it all. */
void relay_retry_reset(struct relay_leg *leg);
void relay_retry_free(struct relay_leg *leg);

/* relay/relay.c, for cleanup.c */
struct relay_leg *relay_leg_new(void);
void relay_leg_free(struct relay_leg *leg);
int relay_scan_replies(struct relay_leg *leg, char *fatal, size_t fatal_len);
void relay_forget_reply(struct relay_leg *leg, struct reply *r, bool failed);
/* Replies are still to come from the server (or the rest of one). */
bool relay_leg_awaits(const struct relay_leg *leg);
/* ...or a send to it is in flight, or bytes from it are not yet handled. */
bool relay_leg_owes(const struct relay_leg *leg);
/* Frees the leg and closes its server (the pool's ops back on it). */
void relay_give_up(struct relay_leg *leg, const char *why);
enum {
	RELAY_SCAN_DONE = 0,
	RELAY_SCAN_FATAL = 1,
	RELAY_SCAN_SYNTH = 2,
	RELAY_SCAN_HIDDEN_FAILED = 3,
	RELAY_SCAN_BAD = -1,
};

#endif
