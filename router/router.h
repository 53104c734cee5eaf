/* The sharding router's pure part: no I/O, no threads of its own.
 *
 *   hash.c    a key's shard, exactly as PostgreSQL's PARTITION BY HASH
 *             would place the row (MODULUS n_shards)
 *   plan.c    a statement's route: which shards, from which literals or
 *             Bind parameters, or every shard with the merge of answers
 *   select.c  a SELECT over every shard: the text each shard runs and how
 *             the answers are merged (sort, LIMIT, aggregates, HAVING)
 *   merge.c   the merge itself: backend messages from n shards in, the
 *             client's messages out, streaming where the order allows
 *
 * relay/ drives it: it reads the client's messages, asks for a plan,
 * sends to the shards and feeds their answers to a merger. */
#ifndef PGCRAB_ROUTER_H
#define PGCRAB_ROUTER_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#define ROUTER_MAX_SHARDS   64 /* shard sets are uint64_t bit masks */
#define ROUTER_MAX_KEY_COLS 8

/* ---- hash.c ------------------------------------------------------------ */

/* Key column types (the config's names). varchar hashes as text; bpchar
 * without its trailing blanks, as PostgreSQL does. */
enum router_type {
	ROUTER_INT2,
	ROUTER_INT4,
	ROUTER_INT8,
	ROUTER_TEXT,
	ROUTER_VARCHAR,
	ROUTER_BPCHAR,
	ROUTER_UUID,
};

/* "int8" -> ROUTER_INT8; -1 for a name that is none of them. */
int router_type_parse(const char *name);
const char *router_type_name(enum router_type t);

/* PostgreSQL's HASH_PARTITION_SEED. */
#define ROUTER_HASH_SEED UINT64_C(0x7A5B22367996DCFD)

/* The extended hash PostgreSQL's hash opclass for type t gives one
 * non-NULL value with ROUTER_HASH_SEED. The value comes in text form (as in
 * a literal or a text-format Bind parameter: "42", "-7", "a0eebc99-...")
 * or, binary, in PostgreSQL's binary send format (a binary Bind
 * parameter; an integer may come as 2, 4 or 8 bytes whatever t is, as a
 * driver picks the width). Text input is read as PostgreSQL's input
 * function would (blanks around integers, uuid with or without hyphens or
 * braces). 0, or -1 when the value is not valid input for t. */
int router_hash_value(enum router_type t, bool binary, const uint8_t *v, size_t len, uint64_t *out);

/* hash_combine64: folds one column's hash into the row's (start at 0;
 * NULL columns are skipped). */
uint64_t router_hash_combine(uint64_t row, uint64_t col);

/* The shard (remainder) of a row hash. */
static inline int router_hash_shard(uint64_t row_hash, int n_shards)
{
	return (int)(row_hash % (uint64_t)n_shards);
}

/* ---- two-phase commit identifiers -------------------------------------------- */

/* "pgcrab:<db>:" with the database's name made safe inside a quoted SQL
 * literal (anything but letters, digits and '_' becomes '_'). The whole
 * identifier is "<prefix><coordinator shard>:<coordinator xid>:<shard>". */
static inline void router_gid_prefix(const char *db, char *out, size_t cap)
{
	size_t n = 0;
	const char *head = "pgcrab:";
	while (*head && n + 1 < cap)
		out[n++] = *head++;
	for (; *db && n + 2 < cap; db++) {
		char ch = *db;
		bool ok = (ch >= 'a' && ch <= 'z') || (ch >= 'A' && ch <= 'Z')
			|| (ch >= '0' && ch <= '9');
		out[n++] = ok ? ch : '_';
	}
	if (n + 1 < cap)
		out[n++] = ':';
	out[n] = '\0';
}

/* ---- the schema a plan is made against ---------------------------------- */

struct router_table {
	const char *schema; /* NULL: the name matches in any schema */
	const char *name;   /* lower-case, as PostgreSQL folds unquoted names */
	int n_cols;
	const char *cols[ROUTER_MAX_KEY_COLS];
	enum router_type types[ROUTER_MAX_KEY_COLS];
};

struct router_schema {
	int n_shards;
	int n_tables;
	const struct router_table *tables;
	bool refuse_cross_reads;  /* cross_shard_queries = error */
	bool refuse_cross_writes; /* cross_shard_writes = error */
};

/* ---- the merge of answers from several shards (select.c plans it,
 * merge.c runs it) ------------------------------------------------------- */

enum router_agg {
	ROUTER_AGG_NONE,  /* a plain value (a GROUP BY key, or a row's column) */
	ROUTER_AGG_COUNT, /* summed */
	ROUTER_AGG_SUM,   /* summed in the column's type (int8, numeric, float) */
	ROUTER_AGG_MIN,
	ROUTER_AGG_MAX,
	ROUTER_AGG_AVG, /* the shard column holds sum(x); count_col its count(x) */
	ROUTER_AGG_BOOL_AND,
	ROUTER_AGG_BOOL_OR,
};

struct router_col {
	enum router_agg agg;
	int count_col; /* ROUTER_AGG_AVG: the hidden column with count(x) */
};

/* Added by select.c (helper C), the conventions merge.c relies on:
 * - Column indexes (router_sort.col, router_col.count_col, router_expr.col)
 *   are 0-based positions in the shard's row. The visible columns come
 *   first, in the client's order; hidden columns (sort keys, GROUP BY keys
 *   and aggregates that are not in the select list, AVG's counts) follow.
 * - n_cols == -1 (a '*' in the select list: the count is known only from
 *   the RowDescription): then aggregate is false, cols is NULL,
 *   n_visible is -1, the last n_hidden columns of the RowDescription are
 *   hidden, and a router_sort.col < 0 counts from the row's end (-1 is its
 *   last column). With n_cols >= 0 every index is >= 0 and
 *   n_visible + n_hidden == n_cols.
 * - cols is NULL when aggregate is false (every column is a plain value).
 * - ROUTER_AGG_AVG: the shard column holds sum(x) (named "avg" unless the
 *   target had an alias) and count_col, a hidden ROUTER_AGG_COUNT column,
 *   holds count(x); both are summed, and the client sees sum / count (NULL
 *   when the count is 0). The RowDescription still says sum's type (int8 or
 *   numeric for integers, float4/float8, numeric, interval): the merge
 *   gives the client avg's type (numeric for integers and numeric, float8
 *   for floats, interval). A hidden AVG column (from HAVING or ORDER BY)
 *   has its own hidden count column too.
 * - aggregate: shard rows are combined by group (every ROUTER_AGG_NONE
 *   column, visible or hidden, is part of the key); HAVING is applied to
 *   each merged group, then DISTINCT, ORDER BY, OFFSET and LIMIT, in that
 *   order, as PostgreSQL does. The shards sort (by column position) only
 *   when every sort column is a group key, so that groups arrive in order;
 *   otherwise their rows come unsorted and the merge sorts merged groups.
 * - distinct: rows equal in every visible column are sent once (after
 *   aggregation). Shards keep their DISTINCT, and a LIMIT is pushed to
 *   them as LIMIT n + offset (a shard's first n + k distinct rows hold the
 *   global first n + k).
 * - Without aggregate, the shard SQL carries LIMIT n + offset and no
 *   OFFSET: the merge skips offset rows of the merged stream and stops after
 *   limit.
 * - HAVING (router_expr) is SQL's three-valued logic: a CMP with a NULL
 *   side, AND/OR/NOT over unknown, as PostgreSQL; a group is kept only when
 *   the expression is true. A CONST is compared in the type of the column
 *   it is compared with (parsed from its text); a CMP is always between
 *   two COLs or a COL and a CONST (never two CONSTs); two COLs may differ
 *   in type (sum(x) <> count(*): numeric and int8 compare as numbers).
 *   A boolean alone (HAVING bool_or(x)) comes as CMP(COL = CONST "true"). */

struct router_sort {
	int col; /* a column of the shard rows (0-based; < 0 from the end, see above) */
	bool desc;
	bool nulls_first; /* already resolved: PostgreSQL's default is NULLS FIRST for DESC */
};

/* HAVING, evaluated on each merged group. */
enum router_expr_kind {
	ROUTER_EXPR_COL,   /* the merged value of column col (an AVG: the average) */
	ROUTER_EXPR_CONST, /* text, NULL when is_null */
	ROUTER_EXPR_CMP,   /* args[0] op args[1]; op one of = <> < <= > >= */
	ROUTER_EXPR_AND,
	ROUTER_EXPR_OR,
	ROUTER_EXPR_NOT,
	ROUTER_EXPR_IS_NULL, /* args[0] IS NULL (negated: IS NOT NULL) */
};

struct router_expr {
	enum router_expr_kind kind;
	int col;
	char *text;
	bool is_null;
	bool negated;
	char op[3];
	int n_args;
	struct router_expr **args;
};

struct router_merge {
	int n_cols;              /* columns in each shard's rows; -1: a '*', see above */
	int n_visible;           /* the first n_visible reach the client; the rest are hidden */
	int n_hidden;            /* (added by select.c) the last n_hidden columns are hidden */
	struct router_col *cols; /* n_cols; NULL when aggregate is false */
	bool aggregate;          /* rows are combined by group (the group key: the
				      ROUTER_AGG_NONE columns); no group key, one group */
	bool distinct;           /* SELECT DISTINCT: equal visible rows once */
	int n_sort;
	struct router_sort *sort;   /* the ORDER BY, on shard row columns */
	int64_t limit;              /* -1: none */
	int64_t offset;             /* rows skipped after the merge */
	struct router_expr *having; /* NULL: none */
	/* (added by select.c, helper C2) LIMIT / OFFSET given as Bind
	 * parameters ($n, 1-based; 0: not a parameter, limit / offset above
	 * hold the literal or none). Their values come with each Bind:
	 * router_merge_bind_limits reads them, and the caller passes
	 * router_merger_new a copy of the spec with limit / offset set to them
	 * and both fields 0 (it refuses a spec whose parameters are unbound).
	 * The shard SQL then carries LIMIT least(n, INT64_MAX - k) + k (n and
	 * k: the parameters cast to bigint, or the literals), or LIMIT $n alone
	 * without an offset, and never an OFFSET; an aggregate's shards get
	 * neither, as with literals. */
	int limit_param;
	int offset_param;
};

/* A merge spec whose LIMIT/OFFSET are Bind parameters: their values from one Bind
 * (values/lengths/formats as router_bind_shards takes them: text or binary int2/int4/int8,
 * NULL = no limit as PostgreSQL treats LIMIT NULL), into *limit / *offset (-1 / 0 when absent).
 * 0, or -1 with "SQLSTATE: message" in err (negative values: 2201W / 2201X as PostgreSQL). */
int router_merge_bind_limits(const struct router_merge *m, int n, const uint8_t *const *values,
			     const int32_t *lengths, const int16_t *formats, int64_t *limit,
			     int64_t *offset, char *err, size_t errlen);

/* ---- plan.c: a statement's route ------------------------------------------ */

enum router_route {
	ROUTER_ANY,    /* no sharded table, changes no data: any one shard */
	ROUTER_SHARDS, /* the shards in .shards (from literals or a hint) */
	ROUTER_BIND,   /* shards from Bind parameters: see .keys */
	ROUTER_ALL,    /* every shard */
	ROUTER_SPLIT,  /* a multi-row INSERT: .split[i] is shard i's INSERT (or NULL) */
	ROUTER_TX,     /* transaction control: .tx says which */
	ROUTER_SET,    /* SET pgcrab.shard / pgcrab.sharding_key: PgCrab's own */
	ROUTER_REFUSE, /* .sqlstate, .message */
};

enum router_tx {
	ROUTER_TX_NONE,
	ROUTER_TX_BEGIN,     /* BEGIN / START TRANSACTION (the text is kept to replay) */
	ROUTER_TX_COMMIT,    /* COMMIT / END / COMMIT AND CHAIN is refused */
	ROUTER_TX_ROLLBACK,  /* ROLLBACK / ABORT */
	ROUTER_TX_SAVEPOINT, /* SAVEPOINT, RELEASE, ROLLBACK TO: to every shard of the tx */
	ROUTER_TX_PREPARED,  /* PREPARE TRANSACTION / COMMIT PREPARED / ROLLBACK PREPARED: refused
			       on a sharded database (PgCrab owns 2PC there) */
};

/* One way the key can be given: a value per key column, each a literal
 * (text form) or a Bind parameter ($n, 1-based). */
struct router_key_src {
	int param;     /* 0: literal */
	char *literal; /* text form; NULL with param 0: SQL NULL */
	enum router_type type;
};

struct router_key {
	int n_cols;
	struct router_key_src cols[ROUTER_MAX_KEY_COLS];
};

struct router_plan {
	enum router_route route;
	enum router_tx tx;
	bool writes;      /* changes data or schema: atomic across shards (2PC) */
	bool ddl;         /* CREATE/ALTER/DROP/TRUNCATE/...: every shard */
	bool replicated;  /* a write that touches no sharded table: every shard makes
			     the same change, and one shard's answer stands for all */
	bool no_tx_block; /* cannot run inside a transaction block (VACUUM,
			     CREATE INDEX CONCURRENTLY, ...): every shard, one by one, no 2PC */
	uint64_t shards;  /* ROUTER_SHARDS: the set */
	/* ROUTER_BIND: the shards are the union over keys (each key one shard) */
	int n_keys;
	struct router_key *keys;
	/* a read that may span shards (ROUTER_ALL, or ROUTER_BIND/SHARDS with
	 * several): what each shard runs (NULL: the statement as it is) and
	 * how the answers merge (NULL: nothing to merge, counts summed) */
	char *shard_sql;
	struct router_merge *merge;
	/* ROUTER_SPLIT: n_shards texts, NULL where a shard gets no rows */
	char **split;
	/* ROUTER_SET */
	bool set_shard;  /* SET pgcrab.shard (else pgcrab.sharding_key) */
	bool set_reset;  /* RESET / SET ... TO DEFAULT: back to none */
	char *set_value; /* text form */
	/* ROUTER_REFUSE */
	char sqlstate[6];
	char *message;
	/* (added by helper H) a ROUTER_BIND plan of a multi-row INSERT ...
	 * VALUES: its row count (keys[r] is row r's key), else 0; and its
	 * text with where its rows and parameters are (plan_split.c's, one
	 * block), which router_insert_subset cuts into one INSERT per shard */
	int insert_rows;
	uint8_t *insert_split;
	size_t insert_split_len;
};

/* The session's routing context: its hints (SET pgcrab.*), NULL/-1 if none. */
struct router_context {
	int shard;                /* SET pgcrab.shard, -1 if not set */
	const char *sharding_key; /* SET pgcrab.sharding_key, NULL if not set */
};

/* Plans the statement text sql[0, len) (a simple Query's string, which may
 * hold several statements, or a Parse's query). Comments
 * "/+ pgcrab_shard: N +/" and "/+ pgcrab_key: value +/" (with '*' for '+')
 * route it like the session hints, and win over them. A string of several
 * statements routes as one: the union of their shards; any statement that
 * needs a merge, a split or transaction control among others is refused.
 * Returns a plan to free with router_plan_free, or NULL when out of memory. */
struct router_plan *router_plan(const struct router_schema *schema,
				const struct router_context *ctx, const char *sql, size_t len);
void router_plan_free(struct router_plan *p);

/* The shards of a ROUTER_BIND plan for one Bind's parameters: values[i]
 * (lengths[i], -1 for NULL), formats[i] (0 text, 1 binary; one entry per
 * parameter, already expanded from the Bind's format codes; NULL: all
 * text), for n parameters. 0 and *out set, or -1 with "SQLSTATE: message"
 * in err (a value that is not valid input for its key type: 22P02; too
 * few parameters: 08P01; keys on several shards where the plan cannot go
 * to several, e.g. cross_shard_* = error: 0A000). A multi-row INSERT
 * (insert_rows > 1) whose rows go to several shards gives their union:
 * the relay splits it (router_bind_rows, router_insert_subset).
 * A plan that is not ROUTER_BIND gives its .shards (ROUTER_SHARDS) or 0. */
int router_bind_shards(const struct router_plan *p, int n_shards, int n,
		       const uint8_t *const *values, const int32_t *lengths, const int16_t *formats,
		       uint64_t *out, char *err, size_t errlen);

/* The shard of one key (values[i] in text form, NULL for SQL NULL). */
int router_key_shard(int n_cols, const enum router_type *types, const char *const *values,
		     int n_shards);

/* ---- plan_bind.c and plan_split.c (helper H): a multi-row INSERT with
 * Bind parameters, split per shard ----------------------------------------
 *
 * A multi-row INSERT ... VALUES whose keys are Bind parameters is a
 * ROUTER_BIND plan with insert_rows > 1. router_bind_shards gives the
 * union of its rows' shards; when that is several shards (and the plan
 * has no message, see above: cross_shard_writes = error, or a text whose
 * rows the lexer could not find, still refuse), the relay sends each shard
 * the INSERT with only that shard's rows: router_bind_rows says which
 * rows, router_insert_subset gives the text and which of the Bind's
 * parameters it takes. */

/* Each row's shard for one Bind's parameters (the same arrays as
 * router_bind_shards) into row_shard[0, p->insert_rows). A row whose key
 * is all NULL goes where router_key_shard puts it (shard 0). 0, or -1
 * with "SQLSTATE: message" in err (as router_bind_shards; a plan that is
 * not a multi-row INSERT: XX000). */
int router_bind_rows(const struct router_plan *p, int n_shards, int n, const uint8_t *const *values,
		     const int32_t *lengths, const int16_t *formats, int *row_shard, char *err,
		     size_t errlen);

/* The same INSERT with only the rows where keep[i] (i < p->insert_rows;
 * at least one): the client's text (the statement's, without a ';' after
 * it) with the other rows cut out and the kept ones joined by ", ", its
 * parameters renumbered $1..$k in the order of their original numbers
 * (only the $n tokens change): *sql (malloc'd) and *param_map (malloc'd,
 * *n_params entries, NULL when 0: param_map[j] is the original 1-based
 * number of the new $(j+1), ascending). A parameter used twice, or by
 * several kept rows, is one entry. Parameters outside the VALUES rows
 * (RETURNING, ON CONFLICT ... SET x = $9, a WITH) are in every subset;
 * those only in dropped rows are in none. 0, or -1 (out of memory, no row
 * kept, not a multi-row INSERT plan) with *sql and *param_map NULL. */
int router_insert_subset(const struct router_plan *p, const bool *keep, char **sql, int **param_map,
			 int *n_params);

/* ---- plan.c additions (helper B): the cache and its statistics ------------
 *
 * Each plan router_plan returns is the caller's own (a copy of the cached
 * one). Its split array has ROUTER_MAX_SHARDS entries, NULL past
 * n_shards. A ROUTER_BIND plan may carry sqlstate/message: the refusal a
 * Bind gets whose keys land on several shards (router_bind_shards gives
 * it). */

/* This thread's plans, parsed or from its cache. parse_ns always counts;
 * cached_ns only while router_plan_stats_timing(true) (two clock reads
 * per hit). */
struct router_plan_stats {
	uint64_t parsed;
	uint64_t cached;
	uint64_t parse_ns;
	uint64_t cached_ns;
};
void router_plan_stats(struct router_plan_stats *out);
void router_plan_stats_timing(bool on);

/* Drops this thread's cached plans. The cache knows a schema by its
 * address: call it on each thread before a schema it planned with is freed
 * (a new configuration), and when the thread ends. */
void router_plan_cache_free(void);

/* ---- merge.c: running a merge -------------------------------------------- */

struct router_merger;

/* A merger for the answers of n_sources shards to one statement. spec NULL:
 * rows pass through unsorted, counts summed. */
struct router_merger *router_merger_new(const struct router_merge *spec, int n_sources);
void router_merger_free(struct router_merger *m);

/* Backend messages from source s, each whole: type and body (after the
 * length word). RowDescription ('T'), DataRow ('D'), CommandComplete
 * ('C'), EmptyQueryResponse ('I'), PortalSuspended ('s'). Others (errors,
 * notices, ReadyForQuery) are the relay's. 0, or -1 with a SQLSTATE and a
 * message in err (shards disagree on the RowDescription: 42804; a value
 * that cannot be compared or summed: 22P02; out of memory: 53200). */
int router_merger_feed(struct router_merger *m, int s, uint8_t type, const uint8_t *body,
		       uint32_t len, char sqlstate[6], char *err, size_t errlen);

/* True while source s should be read: the merge waits on it, or it may run
 * ahead a little. False when its queued rows are enough for now (stop
 * reading it: the server's socket holds the rest). */
bool router_merger_wants(const struct router_merger *m, int s);

/* Appends whole client messages (RowDescription once, DataRows whose
 * place is certain, and when every source is done the CommandComplete with
 * the summed count) to out, at most max bytes (at least one message if any
 * is ready). Returns the bytes appended, 0 if nothing is ready, -1 out of
 * memory. */
long router_merger_emit(struct router_merger *m, uint8_t *out, size_t max);

/* The size of the next message emit would append (0: none ready), for a
 * caller whose buffer may be smaller than a large row. */
size_t router_merger_next_size(struct router_merger *m);

/* The LIMIT is reached: no source is wanted any more, yet the merge ends
 * (CommandComplete) only when every source is done. Read the rest and
 * feed it (rows are dropped), or cancel the shards' queries. */
bool router_merger_draining(const struct router_merger *m);

/* Every source is done and everything was emitted. */
bool router_merger_done(const struct router_merger *m);

/* ---- copy.c: COPY ... FROM STDIN into a sharded table, split by key ------ */

enum router_copy_format { ROUTER_COPY_TEXT, ROUTER_COPY_CSV, ROUTER_COPY_BINARY };

struct router_copy_spec {
	enum router_copy_format format;
	char delimiter;    /* text: '\t', csv: ',' unless DELIMITER says */
	char quote;        /* csv */
	char escape;       /* csv */
	char *null_str;    /* text: "\\N", csv: "" unless NULL says */
	bool header;       /* csv/text HEADER: the first line goes to every shard */
	const char *table; /* the sharded table (points into the schema) */
	/* the COPY's column list; n_fields -1 when it has none (the table's own
	 * order, which the relay asks a shard for: router_copy_set_columns) */
	int n_fields;
	char **fields;
	int n_key;
	const char *key_cols[ROUTER_MAX_KEY_COLS];
	enum router_type key_type[ROUTER_MAX_KEY_COLS];
	int key_field[ROUTER_MAX_KEY_COLS]; /* the key columns' positions among the fields */
	int n_shards;
	/* csv FORCE_NOT_NULL / FORCE_NULL naming a key column: they change the
	 * key's value (an unquoted null string read as that string; a quoted
	 * one as NULL), so the row's shard too */
	bool key_force_not_null[ROUTER_MAX_KEY_COLS];
	bool key_force_null[ROUTER_MAX_KEY_COLS];
};

/* 1: sql is COPY ... FROM STDIN into a sharded table and spec is filled;
 * 0: it is not (plan it with router_plan); -1: refused, sqlstate and msg
 * set (a key column missing from the column list, an option PgCrab cannot
 * split by, COPY ... TO / FROM a file of a sharded table...). */
int router_copy_plan(const struct router_schema *schema, const char *sql, size_t len,
		     struct router_copy_spec *spec, char sqlstate[6], char *msg, size_t msglen);
/* The table's columns in order, for a COPY without a column list: 0, or
 * -1 (sqlstate/msg) when a key column is not among them. */
int router_copy_set_columns(struct router_copy_spec *spec, int n, const char *const *names,
			    char sqlstate[6], char *msg, size_t msglen);
void router_copy_spec_clear(struct router_copy_spec *spec);

/* Splits the CopyData stream into rows, each given whole to `row` with
 * its shard (-1: to every shard: a header line, the binary format's
 * header and trailer). Rows may span CopyData messages; only the part of
 * a row not yet complete is held. */
struct router_copy_splitter;
typedef int (*router_copy_row_fn)(void *arg, int shard, const uint8_t *p, size_t n);
struct router_copy_splitter *router_copy_splitter_new(const struct router_copy_spec *spec);
/* 0, or -1 with sqlstate/msg (bad data: 22P04; a key that is not valid
 * input for its type: 22P02; a NULL key: 23502; out of memory: 53200), or
 * what `row` returned if it was not 0. */
int router_copy_feed(struct router_copy_splitter *sp, const uint8_t *data, size_t len,
		     router_copy_row_fn row, void *arg, char sqlstate[6], char *msg, size_t msglen);
/* At CopyDone: a last line without its newline is a row too. */
int router_copy_finish(struct router_copy_splitter *sp, router_copy_row_fn row, void *arg,
		       char sqlstate[6], char *msg, size_t msglen);
void router_copy_splitter_free(struct router_copy_splitter *sp);

#endif
