/* The query classifier: what a statement can do to the server session it
 * runs on, so that transaction pooling can carry the client's session from
 * one server connection to the next, pin the client to its server where
 * that state cannot follow it, or reset a server before anyone else gets
 * it. A cheap look at the first keyword settles almost every statement
 * (SELECT, INSERT, UPDATE, DELETE, COPY ... change nothing, unless they call
 * a function that does, such as set_config or pg_advisory_lock); only the
 * rest are parsed with libpg_query, and those answers are cached per thread
 * by the statement's text. A string of several statements (a simple Query)
 * is classified statement by statement and the answers are merged.
 *
 * The classes say what may change, not what will: a statement can fail,
 * roll back, or be a no-op. PgCrab asks the server afterwards where it must
 * know (see relay/), so a class errs on the side of "may change". What the
 * text does not show is not seen: a function, trigger, rule or default that
 * calls set_config or takes an advisory lock inside, a view that becomes
 * temporary because it reads a temporary table. */
#ifndef PGCRAB_QUERY_CLASSIFY_H
#define PGCRAB_QUERY_CLASSIFY_H

#include <stdbool.h>
#include <stddef.h>

enum query_effect {
	/* A session setting may change: SET, SET SESSION, RESET, SET ROLE, SET
	 * SESSION AUTHORIZATION, SET SESSION CHARACTERISTICS, SET TIME ZONE,
	 * set_config(..., false) or set_config with a non-constant third
	 * argument. Not SET LOCAL or set_config(..., true), which end with
	 * their transaction. */
	QUERY_SETS = 1u << 0,
	/* RESET name, RESET ALL, SET name TO DEFAULT, RESET ROLE, RESET SESSION
	 * AUTHORIZATION: the names are in reset_names (or reset_all). SET
	 * SESSION AUTHORIZATION DEFAULT and SET TIME ZONE LOCAL are resets too;
	 * SET ROLE NONE is QUERY_SETS (the session user, not RESET ROLE's
	 * value). */
	QUERY_RESETS = 1u << 1,
	/* State that cannot be carried to another server connection: */
	/* creates a temporary object (table, view, sequence, function in
	 * pg_temp, SELECT INTO TEMP) */
	QUERY_TEMP = 1u << 2,
	QUERY_LISTEN = 1u << 3, /* LISTEN */
	/* a session-level advisory lock function (pg_advisory_lock,
	 * pg_try_advisory_lock, their _shared forms) */
	QUERY_ADVISORY = 1u << 4,
	QUERY_PREPARE = 1u << 5,     /* SQL PREPARE */
	QUERY_HOLD_CURSOR = 1u << 6, /* DECLARE ... WITH HOLD */
	QUERY_LOAD = 1u << 7,        /* LOAD */
	/* May end such state: DISCARD TEMP, DROP, UNLISTEN, DEALLOCATE, CLOSE,
	 * pg_advisory_unlock / pg_advisory_unlock_shared / pg_advisory_unlock_all. */
	QUERY_UNPIN = 1u << 8,
	/* DISCARD ALL: settings reset, every prepared statement, cursor,
	 * listen, advisory lock and temporary object of the session is gone. */
	QUERY_DISCARD_ALL = 1u << 9,
	/* DEALLOCATE ALL (DISCARD ALL also sets this): every prepared
	 * statement of the session is gone, PgCrab's own included. */
	QUERY_DEALLOCATE_ALL = 1u << 10,
	/* Can do anything to the session and cannot be seen into: DO, CALL. */
	QUERY_UNKNOWN = 1u << 11,
	/* ROLLBACK TO SAVEPOINT: what the transaction did to settings since
	 * the savepoint, RESETs included, is undone. */
	QUERY_ROLLBACK_TO = 1u << 12,
};

#define QUERY_PINS                                                                      \
	(QUERY_TEMP | QUERY_LISTEN | QUERY_ADVISORY | QUERY_PREPARE | QUERY_HOLD_CURSOR \
	 | QUERY_LOAD)

#define QUERY_RESET_NAMES_MAX 8
#define QUERY_NAME_MAX        64 /* NAMEDATALEN */

struct query_class {
	unsigned effects; /* enum query_effect bits, merged over the statements */
	/* QUERY_RESETS: the settings reset, lower-cased ("role" and
	 * "session_authorization" for RESET ROLE / SESSION AUTHORIZATION);
	 * reset_all when RESET ALL, or when more names than fit. With
	 * reset_all, a name written "!name" was given a value by a SET after
	 * the RESET ALL in the same string: its value holds, not the reset.
	 * "=name": the string gives the setting a value (SET or set_config
	 * with the name written out, not LOCAL) and does not reset it after;
	 * it outlives a RESET an earlier string made.
	 * "+name" (with or without QUERY_RESETS): a custom setting (a dotted
	 * name, such as myapp.tenant) the string gives a value; PostgreSQL
	 * lists none of those in pg_settings, so PgCrab must ask by name. */
	bool reset_all;
	int n_reset;
	char reset_names[QUERY_RESET_NAMES_MAX][QUERY_NAME_MAX];
	/* While classifying one statement of a string: the setting a plain SET
	 * gives a value ("" if none). A later SET of a name takes it off the
	 * string's reset_names: its value, not the startup one, holds. */
	char set_name[QUERY_NAME_MAX];
	/* ...and the setting a SET LOCAL (or set_config(..., true)) gives a
	 * value: "~name" in the list says a local value hides any RESET of it
	 * until the transaction ends. */
	char set_local[QUERY_NAME_MAX];
	/* The first statement with a QUERY_PINS effect, as a user would name it
	 * in an error message: "LISTEN", "PREPARE", "CREATE TEMPORARY TABLE",
	 * "DECLARE ... WITH HOLD", "LOAD", "pg_advisory_lock()"; NULL if none.
	 * Points to a static string. */
	const char *pin_what;
};

/* Classifies the statement text sql[0, len) (a simple Query's string or a
 * Parse's query; it need not be NUL-terminated). A statement libpg_query
 * cannot parse gets no effects: the server will reject it as well.
 * Returns 0, or -1 when out of memory (out is then "may do anything":
 * QUERY_UNKNOWN). */
int query_classify(const char *sql, size_t len, struct query_class *out);

/* Statements this thread parsed, and cache hits (for tests and stats). */
struct query_stats {
	unsigned long long fast;   /* settled by the first keyword */
	unsigned long long parsed; /* went to libpg_query */
	unsigned long long cached; /* answered from the cache */
};
void query_stats(struct query_stats *out);

/* Frees this thread's cache (at the thread's end). */
void query_thread_exit(void);

#endif
