/* The auth hasher: one thread that runs the PBKDF2 of a cleartext password
 * checked against a SCRAM verifier (auth_type = plain), so a worker never
 * stalls its other clients for one login's hash (4096 iterations and up).
 *
 * A worker queues a request (a copy of the verifier and of the password)
 * and goes on; the answer comes back to it as a ring message
 * (SESSION_MSG_HASHED). A success is remembered in the worker's
 * auth_plain_cache, so the next login with that password skips the hash. */
#ifndef PGCRAB_HASHER_H
#define PGCRAB_HASHER_H

#include <stdbool.h>
#include <stddef.h>

#include "auth/plain_cache.h"
#include "auth/secret.h"

struct hasher;     /* the thread, shared */
struct hasher_req; /* one check in flight */
struct worker;

/* Called once on the worker with the answer, unless cancelled before:
 * whether password derived the keys of v (both only good during the call;
 * v is the verifier the request was made with). */
typedef void (*hasher_done_fn)(void *arg, bool ok, const char *password,
			       const struct auth_scram_verifier *v);

/* Starts the thread. NULL on failure (err set). */
struct hasher *hasher_start(char *err, size_t errlen);
/* After the workers have ended: stops the thread and frees what is left. */
void hasher_stop(struct hasher *h);

/* Queues a check of password against v (copied); done runs later on w.
 * mock: v is made up for a role that does not exist, the answer is no
 * (the hash still runs: an unknown role takes as long as a wrong
 * password). NULL if out of memory. */
struct hasher_req *hasher_check(struct hasher *h, struct worker *w,
				const struct auth_scram_verifier *v, bool mock,
				const char *password, hasher_done_fn done, void *arg);
/* The waiter left: done will not be called. */
void hasher_cancel(struct hasher_req *r);
/* The answer arrived on its worker (SESSION_MSG_HASHED): a success goes in
 * the worker's cache, done is called unless cancelled, r is freed. */
void hasher_deliver(struct auth_plain_cache *c, struct hasher_req *r);

#endif
