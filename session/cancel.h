/* CancelRequest: a client's BackendKeyData names the worker that owns it
 * (low 8 bits of the pid), so a cancel arriving on any worker is posted to
 * that worker, which forwards it to the server running the client's query
 * with the server's own key. */
#ifndef PGCRAB_CANCEL_H
#define PGCRAB_CANCEL_H

#include <stdint.h>

struct session_worker;

/* A fresh BackendKeyData pid for a client of sw. */
int32_t cancel_new_pid(struct session_worker *sw);
/* An unpredictable BackendKeyData secret; -1 only when OpenSSL's DRBG fails
 * (the caller then refuses the login). */
int cancel_new_secret(struct session_worker *sw, int32_t *out) __attribute__((warn_unused_result));
/* A CancelRequest arrived on sw: deliver here or post to the owning worker. */
void cancel_route(struct session_worker *sw, int32_t pid, int32_t key);
/* On the owning worker: cancel what that client runs, if anything. */
void cancel_deliver(struct session_worker *sw, int32_t pid, int32_t key);

#endif
