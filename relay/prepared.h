/* Named prepared statements in transaction mode: the client side. Client
 * statement names are renamed to the server's content-derived names in
 * place, statements are prepared where missing with hidden messages, and
 * PgCrab answers what the server must not see (see relay/replies.h for how
 * replies are matched, pool/stmt.h for the bookkeeping). */
#ifndef PGCRAB_PREPARED_H
#define PGCRAB_PREPARED_H

#include <stdbool.h>
#include <stdint.h>

#include "config/cfg.h"
#include "proto/proto.h"
#include "relay/relay.h"

enum prepared_result {
	PREP_OK,       /* consume (and forward, unless *drop) */
	PREP_WAIT,     /* not now: more bytes, or forward what precedes first */
	PREP_INJECTED, /* not consumed yet: hidden messages queued to the server first */
	PREP_REPLACED, /* consumed and dropped: hidden messages replace it */
	PREP_OOM,
	PREP_BAD,
};

/* On in transaction mode with max_prepared_statements > 0. */
bool prepared_enabled(const struct cfg *cfg);

/* Handles a Parse, Bind, Describe or Close at the client's rx[pos] on its
 * way to leg's server, recording the reply the server owes. May rewrite the
 * message in place (*total changes) or ask for it to be dropped (*drop). */
enum prepared_result prepared_request(struct relay_link *l, struct relay_leg *leg, uint8_t type,
				      uint32_t pos, uint32_t *total, bool *drop);

/* Makes the server raise sqlstate/message in place of the client's Query
 * ('Q') or Parse ('P') just dropped, so that the transaction fails exactly
 * as if PostgreSQL itself had refused it. For a Query the caller records
 * the ReadyForQuery owed; for a Parse the replies are recorded here. */
int prepared_raise(struct relay_leg *leg, uint8_t type, const char *sqlstate, const char *message);

enum { PREP_LOCAL_NO, PREP_LOCAL_DONE, PREP_LOCAL_BAD, PREP_LOCAL_OOM };
/* A Parse...Sync between transactions, answered without a server: the
 * replies go into wr (at least 4 KiB) and the request leaves rx. */
int prepared_answer_locally(struct conn *c, struct stmt_names *names, struct proto_writer *wr);

#endif
