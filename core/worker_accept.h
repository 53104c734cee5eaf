/* Workers accept their own clients: each arms an accept on every
 * listening socket while it holds no more clients than the others (plus a
 * little slack), so a login costs no hand-off from the acceptor thread (one
 * wake-up less per connection, a sixth of a login's CPU here). The kernel
 * wakes one waiting accept per connection (io_uring accepts wait
 * exclusively, the longest waiting first), so the balance comes from who is
 * armed: a worker ahead of the others stands back until they catch up, and
 * one always stays armed.
 * Out of file descriptors, the acceptor takes the listener over for a
 * while: it can refuse clients with 53300 using its spare descriptor. */
#ifndef PGCRAB_WORKER_ACCEPT_H
#define PGCRAB_WORKER_ACCEPT_H

#include "core/worker.h"

/* WORKER_MSG_LISTEN arrived: rt->listen_fds are ready; start accepting. */
void worker_accept_begin(struct worker *w);

/* A completion of this worker's accept on listener `listener` (drain: one
 * of shutdown's accepts that never wait). */
void worker_accept_on_cqe(struct worker *w, unsigned listener, bool drain, int res);

/* After each batch: stand back or step in as the client counts moved. */
void worker_accept_balance(struct worker *w);

/* Shutdown: no more accepts; rt->accept_quiet counts this worker once
 * its last accept has ended. */
void worker_accept_stop(struct worker *w);

#endif
