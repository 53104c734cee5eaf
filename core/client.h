/* The client connection state machine (enum client_state in core/types.h).
 * Only client_set_state() changes a client's state. */
#ifndef PGCRAB_CLIENT_H
#define PGCRAB_CLIENT_H

#include "core/types.h"

static inline struct client *container_of_client(struct conn *c)
{
	return (struct client *)c; /* conn is the first member */
}

const char *client_state_name(enum client_state s);

/* A freshly accepted socket handed to this worker. */
void client_accept(struct worker *w, int fd);

void client_on_recv(struct client *cl, int res);
/* The watch for a waiting client's close (conn_arm_poll) completed. */
void client_on_poll(struct client *cl, int res);
void client_on_sent(struct client *cl, enum send_src src, struct conn *owner, int err);
void client_free(struct client *cl);

/* The pool hands a server to a client that was on its waiting list. */
void client_on_server(struct client *cl, struct server *s);
/* The linked server is ready to be given back if the client allows it: called
 * after every send between the two completes. */
void client_server_settled(struct client *cl);
/* A send of the client's bytes to its server completed: forward more. */
void client_on_sent_upstream(struct client *cl);
/* The linked server died: the client gets an 08006 error and is closed. */
void client_server_lost(struct client *cl, const char *why);
/* The same when part of a server message already went to the client: an
 * ErrorResponse would be read as the rest of that message, so the client
 * only sees the connection drop, as if PostgreSQL itself had died. */
void client_server_cut(struct client *cl, const char *why);

/* Sends "severity code message" and closes the client. */
void client_fail(struct client *cl, const char *severity, const char *code, const char *fmt, ...)
	__attribute__((format(printf, 4, 5)));

/* Periodic checks: login and wait timeouts, shutdown. */
void client_tick(struct client *cl);

#endif
