/* Handing idle clients to an online upgrade's new process: between
 * transactions, with no server and nothing buffered either way, a client's
 * socket goes over the upgrade's control connection (SCM_RIGHTS, through
 * the worker's ring) with what it logged in as and the session it built:
 * role and proof, shard or sharded database, startup and SET parameters,
 * custom settings, named prepared statements (re-prepared lazily), cancel
 * key. The new process adopts it as a logged-in idle client. */
#ifndef PGCRAB_HANDOVER_H
#define PGCRAB_HANDOVER_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "core/worker.h"

#define HANDOVER_CANCEL 'K'   /* new -> old: a CancelRequest's pid and key, for its clients */
#define HANDOVER_RECORD 'C'   /* first byte of a client's record on the connection */
#define HANDOVER_MAX    65536 /* largest record: a client with more state is closed instead */

struct client;
struct session_worker;

/* A client's record and socket as the new process received them. */
struct handover_in {
	int fd;
	uint32_t len;
	uint8_t data[];
};

enum handover_result {
	HANDOVER_STARTED, /* the client is the handover's now (CLIENT_HANDOVER) */
	HANDOVER_NOT_NOW, /* something is buffered or linked: after its request */
	HANDOVER_NEVER,   /* it cannot move (*why says why): close it between transactions */
};

/* Old process, an upgrade's drain: hands an idle client over if it can. */
enum handover_result handover_begin(struct client *cl, const char **why);
/* The client's cancelled recv completed (state CLIENT_HANDOVER). */
void handover_on_recv(struct client *cl, int res);
/* The worker's sendmsg completed. */
void handover_sent(struct worker *w, void *ptr, int res);

/* New process: a CancelRequest for no client here goes to the old
 * process, whose client may still be running its query. */
void handover_forward_cancel(struct worker *w, int32_t pid, int32_t key);

/* New process: the worker a record's client belongs on (its cancel key
 * names it), or -1 for a record that is not a client's. */
int handover_worker_of(const struct runtime *rt, const uint8_t *data, size_t len);
/* On that worker: the client joins it, logged in and idle; in is freed. */
void handover_adopt(struct session_worker *sw, struct handover_in *in);

#endif
