/* What a server owes for the requests sent to it, in order: one entry per
 * extended-protocol message or Query/Sync, so that PgCrab can drop replies
 * to its own hidden messages and answer in place of messages it did not
 * forward, each at the exact point of the stream where PostgreSQL would. */
#ifndef PGCRAB_REPLIES_H
#define PGCRAB_REPLIES_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "pool/stmt.h"

enum reply_kind {
	RK_PARSE,      /* ends with ParseComplete '1' */
	RK_BIND,       /* BindComplete '2' */
	RK_CLOSE,      /* CloseComplete '3' */
	RK_DESCRIBE_S, /* ParameterDescription 't', then RowDescription 'T' or NoData 'n' */
	RK_DESCRIBE_P, /* 'T' or 'n' */
	RK_EXECUTE,    /* CommandComplete 'C', EmptyQueryResponse 'I' or PortalSuspended 's' */
	RK_READY,      /* Query, FunctionCall, Sync: ReadyForQuery 'Z' */
};

#define RF_HIDE  1 /* PgCrab's own message: its reply is not forwarded */
#define RF_SYNTH 2 /* not sent: PgCrab sends the reply itself (ParseComplete, CloseComplete) */

struct reply {
	uint8_t kind;
	uint8_t flags;
	struct stmt *st; /* RK_PARSE: the statement prepared on the server (a reference) */
	char *name;      /* RK_PARSE: the client's name, forgotten if the Parse fails */
};

struct replies {
	struct reply *v;
	uint32_t head, count, cap;
};

/* Appends an entry (taking over st's reference and name); -1 when out of memory. */
int replies_push(struct replies *q, uint8_t kind, uint8_t flags, struct stmt *st, char *name)
	__attribute__((warn_unused_result));
static inline struct reply *replies_head(struct replies *q)
{
	return q->count ? &q->v[q->head] : NULL;
}
/* Removes the head entry; it stays readable in *out until the next push. */
void replies_pop(struct replies *q, struct reply *out);
void replies_clear(struct replies *q);
/* True if a reply of this type completes the head entry of this kind. */
bool replies_is_last(uint8_t kind, uint8_t type);

#endif
