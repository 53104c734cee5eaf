/* CancelRequest: a client's BackendKeyData names the worker that owns it
 * (low 8 bits of the pid), so a cancel arriving on any worker is posted to
 * that worker, which forwards it to the server running the client's query
 * over a one-shot connection with the server's own key. */
#ifndef PGCRAB_CANCEL_H
#define PGCRAB_CANCEL_H

#include "core/types.h"

/* A fresh BackendKeyData pid for a client of w. */
int32_t cancel_new_pid(struct worker *w);
/* An unpredictable BackendKeyData secret; -1 only when OpenSSL's DRBG fails
 * (the caller then refuses the login). */
int cancel_new_secret(struct worker *w, int32_t *out) __attribute__((warn_unused_result));
/* A CancelRequest arrived on w: deliver here or post to the owning worker. */
void cancel_route(struct worker *w, int32_t pid, int32_t key);
/* On the owning worker: cancel what that client runs, if anything. */
void cancel_deliver(struct worker *w, int32_t pid, int32_t key);

/* Sends a CancelRequest for what server s runs now. done (may be NULL) is
 * called once PostgreSQL has acted on it or it failed; s is kept until then. */
void cancel_server(struct worker *w, struct server *s, void (*done)(struct server *s));

void cancel_on_connect(struct conn *c, int res);
void cancel_on_recv(struct conn *c, int res);
void cancel_on_sent(struct conn *c, int err);
void cancel_free(struct conn *c);

#endif
