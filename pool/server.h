/* The server connection state machine (enum server_state in core/types.h):
 * connect, startup, authentication, forwarding to the linked client, reset.
 * Only server_set_state() changes a server's state. */
#ifndef PGCRAB_SERVER_H
#define PGCRAB_SERVER_H

#include "core/types.h"

static inline struct server *container_of_server(struct conn *c)
{
	return (struct server *)c;
}

const char *server_state_name(enum server_state s);
void server_set_state(struct server *s, enum server_state st);

/* Opens a new connection for pool (the shard's cap is already reserved). */
void server_connect(struct pool *pool);

void server_on_connect(struct server *s, int res);
void server_on_recv(struct server *s, int res);
void server_on_sent(struct server *s, enum send_src src, struct conn *owner, int err);
void server_free(struct server *s);

/* Before a client's first request on this server: a hidden SET/RESET for
 * the session parameters that differ. 0 or -1 (close the server). */
int server_sync_params(struct server *s);
/* Forwards what the server sent to its client; called when the link is made
 * and after each send to the client completes. */
void server_pump(struct server *s);
/* True if the server is between transactions with nothing owed or in flight. */
bool server_is_clean(const struct server *s);
/* True while the server owes replies to what was sent or is still sending. */
bool server_owes_replies(const struct server *s);
/* The client is gone: the server goes back to the pool clean (owed replies
 * dropped, a running query cancelled if cancel_on_client_exit, ROLLBACK,
 * DISCARD ALL in session mode) or is closed. cut: the client's bytes to it
 * end inside a message. */
void server_client_gone(struct server *s, bool cut);
/* Closes the server and updates its pool's counts. */
void server_close(struct server *s, const char *why);
/* Moves an idle server to another worker (cancels its recv first). */
void server_donate(struct server *s, int to_worker);
void server_on_donate_sent(struct server *s, int res);
void server_tick(struct server *s);

#endif
