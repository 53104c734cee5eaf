/* The fan-out's state, shared by relay/fanout.c and relay/twophase.c. */
#ifndef PGCRAB_RELAY_FANOUT_H
#define PGCRAB_RELAY_FANOUT_H

#include <stdbool.h>
#include <stdint.h>

#include "relay/route.h"
#include "router/router.h"

/* The hidden queries a fan-out runs around its unit (twophase.c, copy.c). */
enum phase {
	PH_NONE,
	PH_XID,             /* coordinator: its transaction id */
	PH_PREPARE,         /* the others: PREPARE TRANSACTION */
	PH_COMMIT,          /* coordinator: COMMIT (the decision) */
	PH_COMMIT_PREPARED, /* the others: COMMIT PREPARED */
	PH_ROLLBACK,        /* every shard still in the transaction: undone */
	PH_DONE,
	PH_COLUMNS, /* COPY without a column list: the table's columns, asked first */
};

/* A reply other than a row, kept until every shard has given its own. */
struct fan_step {
	uint8_t type; /* 'M': the merged rows of a statement stand here */
	uint8_t *msg; /* the whole message (kept for the first source, errors, tags) */
	uint32_t len;
};

/* Which replies of one kind are to PgCrab's own requests (a bit each, oldest first). */
struct fan_fifo {
	uint64_t bits;
	int at, n;
};
bool fan_hide_pop(struct fan_fifo *q);

struct fan_src {
	struct relay_leg *leg;
	int skip_ready;                  /* ReadyForQuery of hidden queries (BEGIN) still to come */
	int ready_left;                  /* ReadyForQuery the unit still owes */
	bool in_merge;                   /* its rows of a statement are going to the merger */
	struct fan_fifo parse_q, desc_q; /* ParseComplete and descriptions to hide */
	char status;
	struct fan_step *steps;
	int n_steps, cap_steps;
	/* phases (twophase.c): the answer to the hidden query of the phase */
	bool phase_wait;
	char phase_code[6];
	char phase_msg[256];
	char phase_value[64]; /* first column of its first row */
	bool prepared;        /* PREPARE TRANSACTION took */
};

struct fan {
	int next_step; /* steps sent to the client */
	struct router_merger *merger;
	bool unit_over;  /* every source answered the unit (no error) */
	bool strip_desc; /* the merged RowDescription was PgCrab's own question */
	bool failed;     /* an error ends the unit: err goes to the client */
	uint8_t *err;
	uint32_t err_len;
	bool wrap;        /* a transaction of its own around a write */
	enum fan_end end; /* transaction control run as phases */
	int phase;        /* twophase.c: 0 while the unit runs */
	bool phase_done;  /* every source answered the phase's query */
	int coord;        /* the coordinator's index in src */
	/* COPY (relay/copy.c) */
	struct router_copy_splitter *splitter; /* rows by key; NULL: every row to every shard */
	bool copy_in;                          /* the client is sending CopyData */
	bool copy_dropping; /* ...which PgCrab refused: dropped until CopyDone/CopyFail */
	bool copy_out;      /* COPY TO: the client has had its CopyOutResponse */
	uint8_t *copy_err;  /* PgCrab's own error for the COPY, in place of the shards' */
	char *copy_sql;     /* COPY without a column list: sent once the columns are known */
	char **col_names;   /* ...which arrive here */
	int n_cols;
	uint32_t copy_err_len;
	char gid_base[96];
	int n;
	struct fan_src src[];
};

struct fan *route_fan(struct relay_link *l);
int fan_send_query(struct fan_src *s, const char *sql);
/* ErrorResponse (if any), the tag, ReadyForQuery to the client. */
int fan_finish(struct relay_link *l, struct fan *f, const uint8_t *tag_msg, size_t tag_len);

/* copy.c: the client's COPY messages, while f->copy_in. 0, -1 out of
 * memory, -2 a broken message. */
int fan_copy_pump(struct relay_link *l, struct fan *f);
/* COPY into a sharded table without a column list: asks source 0 for the
 * table's columns (PH_COLUMNS); each arrives through fan_copy_column, and
 * fan_copy_columns_done sends the COPY to every shard (or fails it). */
int fan_copy_columns_start(struct relay_link *l, struct fan *f, const char *sql, size_t len);
int fan_copy_column(struct fan *f, const uint8_t *name, size_t len);
bool fan_copy_columns_done(struct relay_link *l, struct fan *f);

/* twophase.c */
int fan_phase_msg(struct relay_link *l, struct fan *f, int si, uint8_t type, const uint8_t *msg,
		  uint32_t total);
/* The unit is answered: commit (2PC) or roll back as f->wrap/f->end say.
 * Returns what route_fan_pump returns. */
bool fan_phases_start(struct relay_link *l, struct fan *f);
bool fan_phase_next(struct relay_link *l, struct fan *f);

#endif
