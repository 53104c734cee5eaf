/* Inside the admin console: the growing row-set writer, the commands, and
 * a gather (one command's question to every worker and their answers). */
#ifndef PGCRAB_ADMIN_INTERNAL_H
#define PGCRAB_ADMIN_INTERNAL_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "core/list.h"
#include "session/admin.h"

struct worker;

/* A reply of any size: RowDescription, DataRows, CommandComplete. */
struct admin_out {
	uint8_t *p;
	size_t len, cap;
	bool oom; /* something did not fit in memory: the reply is refused */
};

#define ADMIN_OID_INT4 23
#define ADMIN_OID_INT8 20
#define ADMIN_OID_TEXT 25

struct admin_col {
	const char *name;
	uint32_t oid;
};

void admin_out_bytes(struct admin_out *o, const void *data, size_t n);
void admin_out_row_desc(struct admin_out *o, const struct admin_col *cols, int n);
/* One DataRow of n text values; a NULL value is SQL NULL. */
void admin_out_row(struct admin_out *o, const char *const *vals, int n);
void admin_out_complete(struct admin_out *o, const char *tag);
/* An ErrorResponse (ERROR) in place of a result. */
void admin_out_error(struct admin_out *o, const char *code, const char *fmt, ...)
	__attribute__((format(printf, 3, 4)));
void admin_out_free(struct admin_out *o);

enum admin_cmd {
	ADMIN_SHOW_POOLS,
	ADMIN_SHOW_CLIENTS,
	ADMIN_SHOW_SERVERS,
	ADMIN_SHOW_LISTS,
	ADMIN_SHOW_DATABASES,
	ADMIN_SHOW_WORKERS,
	ADMIN_SHOW_SHARDS,
	ADMIN_SHOW_USERS,
	ADMIN_SHOW_CONFIG,
	ADMIN_SHOW_VERSION,
	ADMIN_SHOW_STATS,
	ADMIN_SHOW_STATS_TOTALS,
	ADMIN_SHOW_STATS_AVERAGES,
	ADMIN_KILL_CLIENT, /* arg: the client's ptr */
	ADMIN_PAUSE,       /* arg: which databases (session/admin_pause.c) */
	ADMIN_RESUME,
	ADMIN_RECONNECT,
	ADMIN_RELOAD, /* answered by the reload thread (session/reload.c) */
};

/* One worker's answer: rows it wrote itself (listings) and numbers the
 * console's worker adds up (counts per pool). */
struct admin_part {
	struct admin_out rows;
	int64_t *nums;
	/* PAUSE: on its worker's pause_waits until that worker is drained */
	struct list wait_link;
	struct admin_gather *of;
};

struct admin_gather {
	enum admin_cmd cmd;
	uint64_t arg;
	struct worker *origin; /* the console client's worker: only it counts answers */
	struct client *cl;     /* NULL once the client left */
	int pending;           /* workers yet to answer */
	int n_nums;            /* numbers per part */
	int n_roles;           /* SHOW POOLS: roles in the shared table when it began */
	int n_parts;
	struct list reload_link; /* RELOAD: queued for the reload thread (session/reload.c) */
	struct admin_part parts[];
};

/* SHOW STATS, STATS_TOTALS, STATS_AVERAGES (session/admin_stats.c). */
void admin_stats_reply(struct session_worker *sw, enum admin_cmd cmd, struct admin_out *o);

/* The part of g this worker owes is done: told to the console's worker. */
void admin_part_done(struct session_worker *sw, struct admin_gather *g);

/* PAUSE, RESUME, RECONNECT (session/admin_pause.c). On the console's
 * worker: the command is checked and the shards marked; NULL, or an
 * SQLSTATE and msg. *arg is the gather's. */
const char *admin_pause_begin(struct session_worker *sw, enum admin_cmd cmd, const char *name,
			      uint64_t *arg, char *msg, size_t len);
/* On each worker: the marks taken over; false while a PAUSE waits here for
 * servers to go (admin_pause_tick answers it later). */
bool admin_pause_collect(struct session_worker *sw, struct admin_gather *g);
void admin_pause_reply(struct session_worker *sw, const struct admin_gather *g,
		       struct admin_out *o);

/* How many numbers each worker reports for cmd (0: none). */
int admin_show_nums(const struct session_worker *sw, struct admin_gather *g);
/* On each worker: its part of cmd's answer. */
void admin_show_collect(struct session_worker *sw, struct admin_gather *g);
/* On the console's worker, all parts in: the whole reply. */
void admin_show_reply(struct session_worker *sw, const struct admin_gather *g, struct admin_out *o);

#endif
