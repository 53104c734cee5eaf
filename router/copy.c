/* COPY ... FROM STDIN into a sharded table: what the statement asks for,
 * and the CopyData stream cut into rows, each to the shard its key hashes
 * to.
 *
 * Rows are found as PostgreSQL 15's COPY FROM finds them: a text row ends
 * at a newline no backslash escapes, in the style (\n, \r\n or \r) the
 * first row set, and a backslash-period ends the data; a CSV row ends at a
 * newline outside quotes, and a line of only backslash-period ends the
 * data; a binary row is a field count and length-prefixed fields. Each
 * row's bytes go on untouched, its line end included, so that a shard reads
 * exactly the rows it would have read from the client, and fails on bad
 * data as the client's server would.
 *
 * The end-of-data marker is swallowed: PostgreSQL ignores whatever follows
 * it up to CopyDone, and so does the splitter; every shard's COPY ends with
 * the CopyDone the relay sends them all.
 *
 * Between feed calls only the current row's bytes are held (a row wholly
 * inside one CopyData message goes on from the message itself); the
 * scanner's state is kept byte by byte, so a row spread over many messages
 * is read once, not once per message. */
#include "router/router.h"
#include "router/internal.h"

#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include <pg_query.h>
#include <pg_query/pg_query.pb-c.h>

#define COPY_MAX_ROW ((size_t)1 << 30) /* PostgreSQL's limit on a row's buffer */

__attribute__((format(printf, 5, 6))) static int fail(char sqlstate[6], char *msg, size_t msglen,
						      const char *code, const char *fmt, ...)
{
	va_list ap;
	memcpy(sqlstate, code, 6);
	if (msg && msglen > 0) {
		va_start(ap, fmt);
		vsnprintf(msg, msglen, fmt, ap);
		va_end(ap);
	}
	return -1;
}

/* ---- the statement ------------------------------------------------------- */

static const char *node_string(const PgQuery__Node *n)
{
	return n && n->node_case == PG_QUERY__NODE__NODE_STRING && n->string ? n->string->sval
									     : NULL;
}

/* The sharded table a COPY names. The parser has already folded unquoted
 * names to lower case. A name without a schema is taken to be the
 * configured table whatever its schema (the search path finds it). */
static const struct router_table *find_table(const struct router_schema *schema,
					     const PgQuery__RangeVar *rv)
{
	const char *rv_schema = rv->schemaname && rv->schemaname[0] ? rv->schemaname : NULL;
	for (int i = 0; i < schema->n_tables; i++) {
		const struct router_table *t = &schema->tables[i];
		if (strcmp(t->name, rv->relname) != 0)
			continue;
		if (t->schema && rv_schema && strcmp(t->schema, rv_schema) != 0)
			continue;
		return t;
	}
	return NULL;
}

/* HEADER's argument as PostgreSQL reads it: none, a boolean, 0 or 1, or
 * true/false/on/off/match. 1, 0, or -1 when it is none of those. */
static int header_value(const PgQuery__Node *arg)
{
	const char *s;
	if (!arg)
		return 1;
	switch (arg->node_case) {
	case PG_QUERY__NODE__NODE_BOOLEAN:
		return arg->boolean->boolval ? 1 : 0;
	case PG_QUERY__NODE__NODE_INTEGER:
		return arg->integer->ival == 0 ? 0 : arg->integer->ival == 1 ? 1 : -1;
	case PG_QUERY__NODE__NODE_STRING:
		s = arg->string->sval;
		if (strcasecmp(s, "true") == 0 || strcasecmp(s, "on") == 0
		    || strcasecmp(s, "match") == 0)
			return 1;
		if (strcasecmp(s, "false") == 0 || strcasecmp(s, "off") == 0)
			return 0;
		return -1;
	default:
		return -1;
	}
}

/* ENCODING 'x' names UTF8 (PostgreSQL compares encoding names with case
 * and punctuation dropped; UNICODE is UTF8's alias). */
static bool names_utf8(const char *s)
{
	char clean[16];
	size_t n = 0;
	for (; *s; s++) {
		char ch = *s;
		if (ch >= 'A' && ch <= 'Z')
			ch = (char)(ch - 'A' + 'a');
		if ((ch >= 'a' && ch <= 'z') || (ch >= '0' && ch <= '9')) {
			if (n + 1 >= sizeof(clean))
				return false;
			clean[n++] = ch;
		}
	}
	clean[n] = '\0';
	return strcmp(clean, "utf8") == 0 || strcmp(clean, "unicode") == 0;
}

/* FORCE_NOT_NULL / FORCE_NULL (a, b) or (*): which key columns it names. */
static void mark_forced(const PgQuery__Node *arg, const struct router_copy_spec *spec, bool *flags)
{
	if (arg && arg->node_case == PG_QUERY__NODE__NODE_A_STAR) {
		for (int k = 0; k < spec->n_key; k++)
			flags[k] = true;
		return;
	}
	if (!arg || arg->node_case != PG_QUERY__NODE__NODE_LIST)
		return;
	for (size_t i = 0; i < arg->list->n_items; i++) {
		const char *name = node_string(arg->list->items[i]);
		for (int k = 0; name && k < spec->n_key; k++)
			if (strcmp(name, spec->key_cols[k]) == 0)
				flags[k] = true;
	}
}

/* DELIMITER, QUOTE, ESCAPE: one byte. */
static int one_byte(const PgQuery__DefElem *d, char *out, char sqlstate[6], char *msg,
		    size_t msglen)
{
	const char *s = node_string(d->arg);
	if (!s || strlen(s) != 1)
		return fail(sqlstate, msg, msglen, "0A000",
			    "COPY %s must be a single one-byte character", d->defname);
	*out = s[0];
	return 0;
}

static int read_options(const PgQuery__CopyStmt *cs, struct router_copy_spec *spec,
			char sqlstate[6], char *msg, size_t msglen)
{
	bool have_delim = false, have_quote = false, have_escape = false;
	for (size_t i = 0; i < cs->n_options; i++) {
		const PgQuery__Node *n = cs->options[i];
		if (!n || n->node_case != PG_QUERY__NODE__NODE_DEF_ELEM)
			continue;
		const PgQuery__DefElem *d = n->def_elem;
		const char *name = d->defname, *s;
		if (strcmp(name, "format") == 0) {
			/* the grammar folds FORMAT csv; FORMAT 'CSV' is refused by
			 * the server too */
			s = node_string(d->arg);
			if (s && strcmp(s, "text") == 0)
				spec->format = ROUTER_COPY_TEXT;
			else if (s && strcmp(s, "csv") == 0)
				spec->format = ROUTER_COPY_CSV;
			else if (s && strcmp(s, "binary") == 0)
				spec->format = ROUTER_COPY_BINARY;
			else
				return fail(sqlstate, msg, msglen, "22023",
					    "COPY format \"%s\" not recognized", s ? s : "?");
		} else if (strcmp(name, "delimiter") == 0) {
			if (one_byte(d, &spec->delimiter, sqlstate, msg, msglen) != 0)
				return -1;
			have_delim = true;
		} else if (strcmp(name, "quote") == 0) {
			if (one_byte(d, &spec->quote, sqlstate, msg, msglen) != 0)
				return -1;
			have_quote = true;
		} else if (strcmp(name, "escape") == 0) {
			if (one_byte(d, &spec->escape, sqlstate, msg, msglen) != 0)
				return -1;
			have_escape = true;
		} else if (strcmp(name, "null") == 0) {
			s = node_string(d->arg);
			if (!s)
				return fail(sqlstate, msg, msglen, "22023",
					    "COPY NULL requires a string");
			free(spec->null_str);
			spec->null_str = strdup(s);
			if (!spec->null_str)
				return fail(sqlstate, msg, msglen, "53200", "out of memory");
		} else if (strcmp(name, "header") == 0) {
			int h = header_value(d->arg);
			if (h < 0)
				return fail(sqlstate, msg, msglen, "22023",
					    "header requires a Boolean value or \"match\"");
			spec->header = h == 1;
		} else if (strcmp(name, "encoding") == 0) {
			/* the key's bytes are hashed as they come: another
			 * encoding would hash another text */
			s = node_string(d->arg);
			if (!s || !names_utf8(s))
				return fail(sqlstate, msg, msglen, "0A000",
					    "COPY into sharded table \"%s\" with ENCODING '%s': only "
					    "UTF8 can be split by key",
					    spec->table, s ? s : "?");
		} else if (strcmp(name, "force_not_null") == 0) {
			mark_forced(d->arg, spec, spec->key_force_not_null);
		} else if (strcmp(name, "force_null") == 0) {
			mark_forced(d->arg, spec, spec->key_force_null);
		} else if (strcmp(name, "freeze") != 0 && strcmp(name, "force_quote") != 0) {
			/* FREEZE changes nothing here; FORCE_QUOTE is COPY TO's, the
			 * shards refuse it */
			return fail(sqlstate, msg, msglen, "0A000",
				    "COPY option \"%s\" is not supported on sharded table \"%s\"",
				    name, spec->table);
		}
	}
	bool csv = spec->format == ROUTER_COPY_CSV;
	if (!have_delim)
		spec->delimiter = csv ? ',' : '\t';
	if (!have_quote)
		spec->quote = '"';
	if (!have_escape)
		spec->escape = spec->quote;
	if (!spec->null_str) {
		spec->null_str = strdup(csv ? "" : "\\N");
		if (!spec->null_str)
			return fail(sqlstate, msg, msglen, "53200", "out of memory");
	}
	return 0;
}

/* Each key column's place among spec->fields. */
static int place_keys(struct router_copy_spec *spec, bool listed, char sqlstate[6], char *msg,
		      size_t msglen)
{
	for (int k = 0; k < spec->n_key; k++) {
		spec->key_field[k] = -1;
		for (int f = 0; f < spec->n_fields; f++)
			if (strcmp(spec->fields[f], spec->key_cols[k]) == 0) {
				spec->key_field[k] = f;
				break;
			}
		if (spec->key_field[k] >= 0)
			continue;
		if (listed)
			return fail(sqlstate, msg, msglen, "0A000",
				    "COPY into sharded table \"%s\" must list its sharding key "
				    "column \"%s\"",
				    spec->table, spec->key_cols[k]);
		return fail(sqlstate, msg, msglen, "0A000",
			    "sharded table \"%s\" has no column \"%s\" (its sharding key)",
			    spec->table, spec->key_cols[k]);
	}
	return 0;
}

static int set_fields(struct router_copy_spec *spec, int n, const char *const *names)
{
	for (int i = 0; i < spec->n_fields; i++)
		free(spec->fields[i]);
	free(spec->fields);
	spec->n_fields = 0;
	spec->fields = calloc((size_t)(n > 0 ? n : 1), sizeof(char *));
	if (!spec->fields)
		return -1;
	for (int i = 0; i < n; i++) {
		spec->fields[i] = strdup(names[i]);
		if (!spec->fields[i])
			return -1;
		spec->n_fields = i + 1;
	}
	return 0;
}

static int fill_spec(const struct router_schema *schema, const struct router_table *t,
		     const PgQuery__CopyStmt *cs, struct router_copy_spec *spec, char sqlstate[6],
		     char *msg, size_t msglen)
{
	spec->table = t->name;
	spec->n_shards = schema->n_shards;
	spec->n_key = t->n_cols;
	for (int k = 0; k < t->n_cols; k++) {
		spec->key_cols[k] = t->cols[k];
		spec->key_type[k] = t->types[k];
	}
	if (read_options(cs, spec, sqlstate, msg, msglen) != 0)
		return -1;
	if (cs->n_attlist == 0)
		return 1; /* the relay asks a shard for the columns */
	const char **names = malloc(cs->n_attlist * sizeof(*names));
	if (!names)
		return fail(sqlstate, msg, msglen, "53200", "out of memory");
	for (size_t i = 0; i < cs->n_attlist; i++) {
		names[i] = node_string(cs->attlist[i]);
		if (!names[i])
			names[i] = "";
	}
	int rc = set_fields(spec, (int)cs->n_attlist, names);
	free(names);
	if (rc != 0)
		return fail(sqlstate, msg, msglen, "53200", "out of memory");
	return place_keys(spec, true, sqlstate, msg, msglen) == 0 ? 1 : -1;
}

int router_copy_plan(const struct router_schema *schema, const char *sql, size_t len,
		     struct router_copy_spec *spec, char sqlstate[6], char *msg, size_t msglen)
{
	memset(spec, 0, sizeof(*spec));
	spec->n_fields = -1;
	for (int k = 0; k < ROUTER_MAX_KEY_COLS; k++)
		spec->key_field[k] = -1;

	/* most statements are no COPY at all: no parse for them */
	bool any = false;
	for (size_t i = 0; i + 4 <= len && !any; i++)
		any = strncasecmp(sql + i, "copy", 4) == 0;
	if (!any)
		return 0;

	char *text = malloc(len + 1);
	if (!text)
		return fail(sqlstate, msg, msglen, "53200", "out of memory");
	memcpy(text, sql, len);
	text[len] = '\0';
	PgQueryProtobufParseResult r = pg_query_parse_protobuf(text);
	free(text);
	if (r.error) {
		/* not ours to report: the statement goes its usual way and the
		 * server says what is wrong with it */
		pg_query_free_protobuf_parse_result(r);
		return 0;
	}
	PgQuery__ParseResult *tree =
		pg_query__parse_result__unpack(NULL, r.parse_tree.len,
					       (const uint8_t *)r.parse_tree.data);
	pg_query_free_protobuf_parse_result(r);
	if (!tree)
		return fail(sqlstate, msg, msglen, "53200", "out of memory");

	const PgQuery__CopyStmt *copy = NULL;
	const struct router_table *table = NULL;
	for (size_t s = 0; s < tree->n_stmts && !copy; s++) {
		const PgQuery__Node *n = tree->stmts[s] ? tree->stmts[s]->stmt : NULL;
		if (!n || n->node_case != PG_QUERY__NODE__NODE_COPY_STMT)
			continue;
		const PgQuery__CopyStmt *cs = n->copy_stmt;
		/* COPY ... TO is a read: router_plan's */
		if (!cs->relation || !cs->is_from)
			continue;
		table = find_table(schema, cs->relation);
		if (table)
			copy = cs;
	}
	int rc;
	if (!copy)
		rc = 0;
	else if (tree->n_stmts > 1)
		rc = fail(sqlstate, msg, msglen, "0A000",
			  "COPY into sharded table \"%s\" must be the only statement in its query",
			  table->name);
	else if (copy->is_program || (copy->filename && copy->filename[0]))
		rc = fail(sqlstate, msg, msglen, "0A000",
			  "COPY into sharded table \"%s\" from a %s cannot be split by key: use "
			  "COPY ... FROM STDIN",
			  table->name, copy->is_program ? "program" : "server-side file");
	else
		rc = fill_spec(schema, table, copy, spec, sqlstate, msg, msglen);
	pg_query__parse_result__free_unpacked(tree, NULL);
	if (rc != 1)
		router_copy_spec_clear(spec);
	return rc;
}

int router_copy_set_columns(struct router_copy_spec *spec, int n, const char *const *names,
			    char sqlstate[6], char *msg, size_t msglen)
{
	if (set_fields(spec, n, names) != 0)
		return fail(sqlstate, msg, msglen, "53200", "out of memory");
	return place_keys(spec, false, sqlstate, msg, msglen);
}

void router_copy_spec_clear(struct router_copy_spec *spec)
{
	for (int i = 0; i < spec->n_fields; i++)
		free(spec->fields[i]);
	free(spec->fields);
	free(spec->null_str);
	memset(spec, 0, sizeof(*spec));
	spec->n_fields = -1;
	for (int k = 0; k < ROUTER_MAX_KEY_COLS; k++)
		spec->key_field[k] = -1;
}

/* ---- the splitter ---------------------------------------------------------- */

enum eol { EOL_UNKNOWN, EOL_NL, EOL_CR, EOL_CRNL };

/* Where the text and CSV scanner is, between bytes. */
enum line_state {
	L_NORMAL,
	L_BACKSLASH, /* after a backslash that may begin "\." (text: anywhere;
			CSV: at a line's start) */
	L_CR,        /* after a line-ending \r, which a \n may follow */
	L_MARK,      /* after "\.": its line end must follow */
	L_MARK_CR,   /* after "\.\r" where lines end in \r\n */
};

/* Where the binary scanner is. */
enum bin_state {
	B_SIGNATURE, /* 11 bytes */
	B_FLAGS,     /* int32 */
	B_EXT_LEN,   /* int32 */
	B_EXT,       /* the header extension, passed over */
	B_COUNT,     /* a tuple's int16 field count (-1: the trailer) */
	B_FIELD_LEN, /* int32 (-1: NULL) */
	B_FIELD,     /* the field's bytes */
};

static const uint8_t binary_signature[11] = { 'P',  'G',  'C',  'O',  'P', 'Y',
					      '\n', 0xff, '\r', '\n', 0 };

/* What a scan of the bytes at hand found. */
enum scan {
	SCAN_MORE, /* every byte belongs to a row not complete yet */
	SCAN_ROW,  /* a row (or the binary header or trailer) ends at *used */
	SCAN_END,  /* the end-of-data marker ends at *used */
	SCAN_ERR,
};

/* One byte's effect on the line scanner. */
enum step {
	STEP_ON,         /* part of the row */
	STEP_ROW,        /* the row ends with this byte */
	STEP_ROW_BEFORE, /* the row ended just before this byte (a lone \r) */
	STEP_END,        /* the end-of-data marker ends with this byte */
	STEP_ERR,
};

struct copy_err {
	char *sqlstate;
	char *msg;
	size_t msglen;
};

struct router_copy_splitter {
	enum router_copy_format format;
	char delim, quote, escape;
	char *null_str;
	size_t null_len;
	bool header; /* text, CSV: the next line is the header */
	int n_shards;
	int n_fields; /* binary: each tuple's field count; -1 unknown */
	int n_key;
	int key_field[ROUTER_MAX_KEY_COLS];
	enum router_type key_type[ROUTER_MAX_KEY_COLS];
	bool force_not_null[ROUTER_MAX_KEY_COLS];
	bool force_null[ROUTER_MAX_KEY_COLS];
	char *key_name[ROUTER_MAX_KEY_COLS];
	char *table;
	int last_key_field; /* fields after it are not looked at */
	size_t max_row;

	/* the current row's bytes, once it spans feed calls */
	uint8_t *buf;
	size_t len, cap;
	size_t row_len; /* bytes of the current row scanned so far */
	bool done;      /* the end of the data was seen */

	/* text and CSV */
	enum eol eol;
	enum line_state ls;
	bool in_quote, last_was_esc, line_start;
	size_t mark_at; /* where "\." began in the row: the row's data ends there */
	size_t term;    /* the line end's length in the row just found */

	/* binary */
	enum bin_state bs;
	uint8_t word[11]; /* a fixed-size piece being gathered */
	size_t have;
	uint32_t skip; /* bytes of B_EXT or B_FIELD still to pass */
	int fields_left, field_no;
	bool unit_all; /* the unit found is the header or the trailer */
	size_t key_off[ROUTER_MAX_KEY_COLS];
	int32_t key_len[ROUTER_MAX_KEY_COLS]; /* -1: NULL */

	uint8_t *val; /* a key value unescaped */
	size_t val_cap;
};

__attribute__((format(printf, 3, 4))) static int err_set(const struct copy_err *e, const char *code,
							 const char *fmt, ...)
{
	va_list ap;
	memcpy(e->sqlstate, code, 6);
	if (e->msg && e->msglen > 0) {
		va_start(ap, fmt);
		vsnprintf(e->msg, e->msglen, fmt, ap);
		va_end(ap);
	}
	return -1;
}

/* ---- text and CSV: where rows end ---------------------------------------- */

static void reset_line(struct router_copy_splitter *sp)
{
	sp->ls = L_NORMAL;
	sp->in_quote = false;
	sp->last_was_esc = false;
	sp->line_start = true;
	sp->row_len = 0;
}

static enum step step_err(const struct copy_err *e, const char *what)
{
	err_set(e, "22P04", "%s", what);
	return STEP_ERR;
}

/* A byte in no special place. The CSV quote state is updated first, as
 * PostgreSQL does, so that a quote or escape that is also \r, \n or a
 * backslash counts as one. */
static enum step step_plain(struct router_copy_splitter *sp, uint8_t c, const struct copy_err *e)
{
	bool csv = sp->format == ROUTER_COPY_CSV;
	if (csv) {
		bool is_esc = sp->escape != sp->quote && c == (uint8_t)sp->escape;
		if (sp->in_quote && is_esc)
			sp->last_was_esc = !sp->last_was_esc;
		if (c == (uint8_t)sp->quote && !sp->last_was_esc)
			sp->in_quote = !sp->in_quote;
		if (!is_esc)
			sp->last_was_esc = false;
	}
	bool quoted = csv && sp->in_quote;
	if (c == '\r' && !quoted) {
		if (sp->eol == EOL_UNKNOWN || sp->eol == EOL_CRNL) {
			sp->ls = L_CR;
			return STEP_ON;
		}
		if (sp->eol == EOL_NL)
			return step_err(e,
					csv ? "unquoted carriage return found in data"
					    : "literal carriage return found in data");
		sp->term = 1;
		return STEP_ROW;
	}
	if (c == '\n' && !quoted) {
		if (sp->eol == EOL_CR || sp->eol == EOL_CRNL)
			return step_err(e,
					csv ? "unquoted newline found in data"
					    : "literal newline found in data");
		sp->eol = EOL_NL;
		sp->term = 1;
		return STEP_ROW;
	}
	if (c == '\\' && (!csv || sp->line_start)) {
		sp->mark_at = sp->row_len;
		sp->ls = L_BACKSLASH;
	}
	sp->line_start = false;
	return STEP_ON;
}

static enum step step_line(struct router_copy_splitter *sp, uint8_t c, const struct copy_err *e);

/* CSV: "\." that turned out to be data. The bytes after the backslash are
 * read again as plain ones, then c. */
static enum step replay_mark(struct router_copy_splitter *sp, bool had_cr, uint8_t c,
			     const struct copy_err *e)
{
	sp->ls = L_NORMAL;
	sp->line_start = false;
	if (step_plain(sp, '.', e) == STEP_ERR)
		return STEP_ERR;
	if (had_cr && step_plain(sp, '\r', e) == STEP_ERR)
		return STEP_ERR;
	return step_line(sp, c, e);
}

static enum step step_line(struct router_copy_splitter *sp, uint8_t c, const struct copy_err *e)
{
	bool csv = sp->format == ROUTER_COPY_CSV;
	switch (sp->ls) {
	case L_NORMAL:
		return step_plain(sp, c, e);
	case L_BACKSLASH:
		sp->ls = L_NORMAL;
		if (c == '.') {
			sp->ls = L_MARK;
			return STEP_ON;
		}
		/* text: the escaped byte is data, a newline too; CSV: a
		 * backslash is no escape */
		return csv ? step_plain(sp, c, e) : STEP_ON;
	case L_CR:
		sp->ls = L_NORMAL;
		if (c == '\n') {
			sp->eol = EOL_CRNL;
			sp->term = 2;
			return STEP_ROW;
		}
		if (sp->eol == EOL_CRNL)
			return step_err(e,
					csv ? "unquoted carriage return found in data"
					    : "literal carriage return found in data");
		sp->eol = EOL_CR;
		sp->term = 1;
		return STEP_ROW_BEFORE;
	case L_MARK:
		if (sp->eol == EOL_CRNL) {
			if (c == '\r') {
				sp->ls = L_MARK_CR;
				return STEP_ON;
			}
			if (csv)
				return replay_mark(sp, false, c, e);
			return step_err(e,
					c == '\n' ? "end-of-copy marker does not match previous "
						    "newline style"
						  : "end-of-copy marker corrupt");
		}
		if (c != '\r' && c != '\n')
			return csv ? replay_mark(sp, false, c, e)
				   : step_err(e, "end-of-copy marker corrupt");
		if ((sp->eol == EOL_NL && c != '\n') || (sp->eol == EOL_CR && c != '\r'))
			return step_err(e,
					"end-of-copy marker does not match previous newline style");
		return STEP_END;
	case L_MARK_CR:
		if (c == '\n')
			return STEP_END;
		if (c == '\r')
			return step_err(e,
					"end-of-copy marker does not match previous newline style");
		return csv ? replay_mark(sp, true, c, e)
			   : step_err(e, "end-of-copy marker corrupt");
	}
	return STEP_ERR;
}

/* Is c a byte the scanner must look at (in L_NORMAL, past a line's start)? */
static inline bool line_special(const struct router_copy_splitter *sp, uint8_t c)
{
	if (c == '\n' || c == '\r')
		return true;
	if (sp->format == ROUTER_COPY_CSV)
		return c == (uint8_t)sp->quote || c == (uint8_t)sp->escape;
	return c == '\\';
}

static enum scan scan_line(struct router_copy_splitter *sp, const uint8_t *p, size_t n,
			   size_t *used, const struct copy_err *e)
{
	size_t i = 0;
	while (i < n) {
		if (sp->ls == L_NORMAL && !sp->line_start) {
			/* ordinary bytes in bulk: only these few can change anything */
			size_t from = i;
			while (i < n && !line_special(sp, p[i]))
				i++;
			if (i > from) {
				sp->row_len += i - from;
				sp->last_was_esc = false;
			}
			if (i == n)
				break;
		}
		switch (step_line(sp, p[i], e)) {
		case STEP_ON:
			i++;
			sp->row_len++;
			break;
		case STEP_ROW:
			sp->row_len++;
			*used = i + 1;
			return SCAN_ROW;
		case STEP_ROW_BEFORE:
			*used = i;
			return SCAN_ROW;
		case STEP_END:
			*used = i + 1;
			return SCAN_END;
		case STEP_ERR:
			return SCAN_ERR;
		}
	}
	*used = n;
	return SCAN_MORE;
}

/* At CopyDone: what the bytes held so far make. */
static enum scan line_eof(struct router_copy_splitter *sp, const struct copy_err *e)
{
	bool csv = sp->format == ROUTER_COPY_CSV;
	switch (sp->ls) {
	case L_NORMAL:
	case L_BACKSLASH: /* a backslash just before the end is data */
		if (csv && sp->in_quote) {
			err_set(e, "22P04", "unterminated CSV quoted field");
			return SCAN_ERR;
		}
		sp->term = 0;
		return sp->row_len > 0 ? SCAN_ROW : SCAN_MORE;
	case L_CR:
		if (sp->eol == EOL_CRNL) {
			step_err(e,
				 csv ? "unquoted carriage return found in data"
				     : "literal carriage return found in data");
			return SCAN_ERR;
		}
		sp->eol = EOL_CR;
		sp->term = 1;
		return SCAN_ROW;
	case L_MARK:
	case L_MARK_CR:
		if (!csv) {
			step_err(e, "end-of-copy marker corrupt");
			return SCAN_ERR;
		}
		/* CSV: "\." with no line end after it is a value */
		bool had_cr = sp->ls == L_MARK_CR;
		sp->ls = L_NORMAL;
		sp->line_start = false;
		if (step_plain(sp, '.', e) == STEP_ERR)
			return SCAN_ERR;
		if (had_cr && step_plain(sp, '\r', e) == STEP_ERR)
			return SCAN_ERR;
		return line_eof(sp, e);
	}
	return SCAN_ERR;
}

/* ---- text and CSV: the key's values in a row ----------------------------- */

static int key_of_field(const struct router_copy_splitter *sp, int f)
{
	for (int k = 0; k < sp->n_key; k++)
		if (sp->key_field[k] == f)
			return k;
	return -1;
}

static int octal(uint8_t c)
{
	return c >= '0' && c <= '7' ? c - '0' : -1;
}

static int hex(uint8_t c)
{
	if (c >= '0' && c <= '9')
		return c - '0';
	if (c >= 'a' && c <= 'f')
		return c - 'a' + 10;
	if (c >= 'A' && c <= 'F')
		return c - 'A' + 10;
	return -1;
}

/* A text field's escapes undone as COPY undoes them: \b \f \n \r \t \v,
 * octal \o to \ooo, hex \xh or \xhh, any other byte after a backslash
 * taken as it is. */
static size_t unescape_text(const uint8_t *s, size_t n, uint8_t *out)
{
	size_t o = 0;
	for (size_t i = 0; i < n;) {
		uint8_t c = s[i++];
		if (c == '\\' && i < n) {
			c = s[i++];
			if (octal(c) >= 0) {
				int v = octal(c);
				for (int d = 0; d < 2 && i < n && octal(s[i]) >= 0; d++)
					v = v * 8 + octal(s[i++]);
				c = (uint8_t)v;
			} else if (c == 'x') {
				if (i < n && hex(s[i]) >= 0) {
					int v = hex(s[i++]);
					if (i < n && hex(s[i]) >= 0)
						v = v * 16 + hex(s[i++]);
					c = (uint8_t)v;
				}
			} else {
				static const char from[] = "bfnrtv", to[] = "\b\f\n\r\t\v";
				const char *at = memchr(from, c, 6);
				if (at)
					c = (uint8_t)to[at - from];
			}
		}
		out[o++] = c;
	}
	return o;
}

struct key_vals {
	bool seen[ROUTER_MAX_KEY_COLS];
	bool null[ROUTER_MAX_KEY_COLS];
	uint64_t hash[ROUTER_MAX_KEY_COLS];
};

/* One key column's value: hashed, or marked NULL. */
static int key_value(const struct router_copy_splitter *sp, struct key_vals *kv, int k, bool binary,
		     const uint8_t *v, size_t n, bool is_null, const struct copy_err *e)
{
	kv->seen[k] = true;
	kv->null[k] = is_null;
	if (is_null)
		return 0;
	if (router_hash_value(sp->key_type[k], binary, v, n, &kv->hash[k]) == 0)
		return 0;
	if (binary)
		return err_set(e, "22P02",
			       "incorrect binary data format for type %s in column \"%s\"",
			       router_type_name(sp->key_type[k]), sp->key_name[k]);
	int shown = n > 200 ? 200 : (int)n;
	return err_set(e, "22P02", "invalid input syntax for type %s: \"%.*s\" (column \"%s\")",
		       router_type_name(sp->key_type[k]), shown, (const char *)v, sp->key_name[k]);
}

static bool is_null_str(const struct router_copy_splitter *sp, const uint8_t *s, size_t n)
{
	return n == sp->null_len && memcmp(s, sp->null_str, n) == 0;
}

static int text_keys(struct router_copy_splitter *sp, const uint8_t *s, size_t n,
		     struct key_vals *kv, const struct copy_err *e)
{
	size_t i = 0;
	for (int f = 0; f <= sp->last_key_field; f++) {
		size_t start = i, end;
		bool found_delim = false, escaped = false;
		for (;;) {
			end = i;
			if (i >= n)
				break;
			uint8_t c = s[i++];
			if (c == (uint8_t)sp->delim) {
				found_delim = true;
				break;
			}
			if (c == '\\') {
				/* a backslash ending the line is dropped */
				if (i >= n)
					break;
				escaped = true;
				i++;
			}
		}
		int k = key_of_field(sp, f);
		if (k >= 0) {
			const uint8_t *v = s + start;
			size_t len = end - start;
			bool is_null = is_null_str(sp, v, len);
			if (!is_null && escaped) {
				len = unescape_text(v, len, sp->val);
				v = sp->val;
			}
			if (key_value(sp, kv, k, false, v, len, is_null, e) != 0)
				return -1;
		}
		if (!found_delim)
			break;
	}
	return 0;
}

static int csv_keys(struct router_copy_splitter *sp, const uint8_t *s, size_t n,
		    struct key_vals *kv, const struct copy_err *e)
{
	const uint8_t delim = (uint8_t)sp->delim, quote = (uint8_t)sp->quote,
		      escape = (uint8_t)sp->escape;
	size_t i = 0;
	for (int f = 0; f <= sp->last_key_field; f++) {
		size_t start = i, end = i, o = 0;
		bool found_delim = false, saw_quote = false;
		for (;;) {
			end = i;
			if (i >= n)
				break;
			uint8_t c = s[i++];
			if (c == delim) {
				found_delim = true;
				break;
			}
			if (c != quote) {
				sp->val[o++] = c;
				continue;
			}
			saw_quote = true;
			for (;;) {
				if (i >= n)
					return err_set(e, "22P04", "unterminated CSV quoted field");
				c = s[i++];
				if (c == escape && i < n && (s[i] == escape || s[i] == quote)) {
					sp->val[o++] = s[i++];
					continue;
				}
				if (c == quote)
					break;
				sp->val[o++] = c;
			}
		}
		int k = key_of_field(sp, f);
		if (k >= 0) {
			bool is_null = !saw_quote && is_null_str(sp, s + start, end - start);
			const uint8_t *v = sp->val;
			size_t len = o;
			if (is_null && sp->force_not_null[k]) {
				is_null = false;
				v = (const uint8_t *)sp->null_str;
				len = sp->null_len;
			} else if (!is_null && sp->force_null[k] && is_null_str(sp, v, len)) {
				is_null = true;
			}
			if (key_value(sp, kv, k, false, v, len, is_null, e) != 0)
				return -1;
		}
		if (!found_delim)
			break;
	}
	return 0;
}

/* The row's shard from its key's values, combined in the key's order,
 * NULLs skipped, as PostgreSQL's hash partitioning does. */
static int combine_keys(const struct router_copy_splitter *sp, const struct key_vals *kv,
			int *shard, const struct copy_err *e)
{
	uint64_t row = 0;
	for (int k = 0; k < sp->n_key; k++) {
		if (!kv->seen[k])
			return err_set(e, "22P04", "missing data for column \"%s\"",
				       sp->key_name[k]);
		if (kv->null[k]) {
			if (sp->n_key == 1)
				return err_set(
					e, "23502",
					"null value in column \"%s\" of sharded table \"%s\": a "
					"row without its key has no shard",
					sp->key_name[k], sp->table);
			continue;
		}
		row = router_hash_combine(row, kv->hash[k]);
	}
	*shard = router_hash_shard(row, sp->n_shards);
	return 0;
}

/* ---- binary ---------------------------------------------------------------- */

static uint32_t be32(const uint8_t *p)
{
	return (uint32_t)p[0] << 24 | (uint32_t)p[1] << 16 | (uint32_t)p[2] << 8 | p[3];
}

/* The next field of a tuple, or the tuple's end. */
static bool next_field(struct router_copy_splitter *sp)
{
	sp->field_no++;
	if (--sp->fields_left > 0) {
		sp->bs = B_FIELD_LEN;
		return false;
	}
	sp->bs = B_COUNT;
	return true;
}

/* A complete fixed-size piece in sp->word. 1: a unit (header, trailer,
 * tuple) ends here, 0: go on, -1: bad data. */
static int binary_piece(struct router_copy_splitter *sp, const struct copy_err *e)
{
	int32_t v;
	switch (sp->bs) {
	case B_SIGNATURE:
		if (memcmp(sp->word, binary_signature, 11) != 0)
			return err_set(e, "22P04", "COPY file signature not recognized");
		sp->bs = B_FLAGS;
		return 0;
	case B_FLAGS: {
		uint32_t flags = be32(sp->word);
		if (flags & (UINT32_C(1) << 16))
			return err_set(e, "22P04", "invalid COPY file header (WITH OIDS)");
		if (flags >> 16)
			return err_set(e, "22P04",
				       "unrecognized critical flags in COPY file header");
		sp->bs = B_EXT_LEN;
		return 0;
	}
	case B_EXT_LEN:
		v = (int32_t)be32(sp->word);
		if (v < 0)
			return err_set(e, "22P04", "invalid COPY file header (missing length)");
		sp->skip = (uint32_t)v;
		sp->bs = B_EXT;
		if (v > 0)
			return 0;
		sp->bs = B_COUNT;
		sp->unit_all = true;
		return 1;
	case B_COUNT:
		v = (int16_t)(uint16_t)((unsigned)sp->word[0] << 8 | sp->word[1]);
		if (v == -1) {
			sp->unit_all = true;
			sp->done = true;
			return 1;
		}
		if (sp->n_fields >= 0 && v != sp->n_fields)
			return err_set(e, "22P04", "row field count is %d, expected %d", (int)v,
				       sp->n_fields);
		if (v <= sp->last_key_field)
			return err_set(e, "22P04", "row field count is %d, too few for the key",
				       (int)v);
		sp->fields_left = v;
		sp->field_no = 0;
		sp->bs = B_FIELD_LEN;
		return 0;
	case B_FIELD_LEN: {
		v = (int32_t)be32(sp->word);
		if (v < -1)
			return err_set(e, "22P04", "invalid field size");
		int k = key_of_field(sp, sp->field_no);
		if (k >= 0) {
			sp->key_off[k] = sp->row_len;
			sp->key_len[k] = v;
		}
		if (v <= 0)
			return next_field(sp) ? 1 : 0;
		sp->skip = (uint32_t)v;
		sp->bs = B_FIELD;
		return 0;
	}
	case B_EXT:
	case B_FIELD:
		break;
	}
	return 0;
}

static size_t piece_size(enum bin_state bs)
{
	switch (bs) {
	case B_SIGNATURE:
		return 11;
	case B_COUNT:
		return 2;
	default:
		return 4;
	}
}

static enum scan scan_binary(struct router_copy_splitter *sp, const uint8_t *p, size_t n,
			     size_t *used, const struct copy_err *e)
{
	size_t i = 0;
	while (i < n) {
		if (sp->done) {
			err_set(e, "22P04", "received copy data after EOF marker");
			return SCAN_ERR;
		}
		if (sp->bs == B_EXT || sp->bs == B_FIELD) {
			size_t take = n - i < sp->skip ? n - i : sp->skip;
			i += take;
			sp->row_len += take;
			sp->skip -= (uint32_t)take;
			if (sp->skip > 0)
				break;
			bool unit = false;
			if (sp->bs == B_EXT) {
				sp->bs = B_COUNT;
				sp->unit_all = true;
				unit = true;
			} else {
				unit = next_field(sp);
			}
			if (unit) {
				*used = i;
				return SCAN_ROW;
			}
			continue;
		}
		size_t want = piece_size(sp->bs);
		size_t take = want - sp->have < n - i ? want - sp->have : n - i;
		memcpy(sp->word + sp->have, p + i, take);
		sp->have += take;
		i += take;
		sp->row_len += take;
		if (sp->have < want)
			break;
		sp->have = 0;
		int r = binary_piece(sp, e);
		if (r < 0)
			return SCAN_ERR;
		if (r > 0) {
			*used = i;
			return SCAN_ROW;
		}
	}
	*used = i;
	return SCAN_MORE;
}

/* ---- rows out ---------------------------------------------------------------- */

static int grow(struct router_copy_splitter *sp, size_t need)
{
	if (need <= sp->cap)
		return 0;
	size_t cap = sp->cap ? sp->cap : 256;
	while (cap < need)
		cap *= 2;
	uint8_t *b = realloc(sp->buf, cap);
	if (!b)
		return -1;
	sp->buf = b;
	sp->cap = cap;
	return 0;
}

/* Holds the bytes of a row not complete yet. */
static int keep(struct router_copy_splitter *sp, const uint8_t *p, size_t n,
		const struct copy_err *e)
{
	if (n == 0)
		return 0;
	if (sp->len + n > sp->max_row)
		return err_set(e, "54000", "COPY row longer than %zu bytes", sp->max_row);
	if (grow(sp, sp->len + n) != 0)
		return err_set(e, "53200", "out of memory");
	memcpy(sp->buf + sp->len, p, n);
	sp->len += n;
	return 0;
}

/* The shard of a complete row (without its line end, for text and CSV). */
static int row_shard(struct router_copy_splitter *sp, const uint8_t *row, size_t n, int *shard,
		     const struct copy_err *e)
{
	struct key_vals kv;
	memset(&kv, 0, sizeof(kv));
	if (sp->format == ROUTER_COPY_BINARY) {
		for (int k = 0; k < sp->n_key; k++) {
			bool is_null = sp->key_len[k] < 0;
			size_t len = is_null ? 0 : (size_t)sp->key_len[k];
			if (key_value(sp, &kv, k, true, row + sp->key_off[k], len, is_null, e) != 0)
				return -1;
		}
	} else {
		/* an unescaped value is never longer than its field */
		if (n > sp->val_cap) {
			uint8_t *v = realloc(sp->val, n);
			if (!v)
				return err_set(e, "53200", "out of memory");
			sp->val = v;
			sp->val_cap = n;
		}
		int rc = sp->format == ROUTER_COPY_CSV ? csv_keys(sp, row, n, &kv, e)
						       : text_keys(sp, row, n, &kv, e);
		if (rc != 0)
			return -1;
	}
	return combine_keys(sp, &kv, shard, e);
}

/* A row is complete: its bytes are those held and p[0, used). */
static int take_row(struct router_copy_splitter *sp, const uint8_t *p, size_t used, bool end,
		    router_copy_row_fn row_fn, void *arg, const struct copy_err *e)
{
	size_t n = sp->len + used;
	if (n > sp->max_row)
		return err_set(e, "54000", "COPY row longer than %zu bytes", sp->max_row);
	const uint8_t *row = p;
	if (sp->len > 0) {
		if (keep(sp, p, used, e) != 0)
			return -1;
		row = sp->buf;
	}
	sp->len = 0;
	bool all = sp->unit_all;
	size_t term = sp->term;
	if (end) {
		/* the data before "\." on its line is the last row */
		n = sp->mark_at;
		term = 0;
		sp->done = true;
	}
	sp->unit_all = false;
	sp->term = 0;
	if (sp->format == ROUTER_COPY_BINARY)
		sp->row_len = 0;
	else
		reset_line(sp);
	if (n == 0)
		return 0;
	if (sp->header) {
		sp->header = false;
		all = true;
	}
	int shard = -1;
	if (!all && row_shard(sp, row, n - term, &shard, e) != 0)
		return -1;
	return row_fn(arg, shard, row, n);
}

struct router_copy_splitter *router_copy_splitter_new(const struct router_copy_spec *spec)
{
	if (spec->n_key < 1 || spec->n_key > ROUTER_MAX_KEY_COLS || spec->n_shards < 1)
		return NULL;
	for (int k = 0; k < spec->n_key; k++)
		if (spec->key_field[k] < 0)
			return NULL; /* the columns are not known yet */
	struct router_copy_splitter *sp = calloc(1, sizeof(*sp));
	if (!sp)
		return NULL;
	sp->format = spec->format;
	sp->delim = spec->delimiter;
	sp->quote = spec->quote;
	sp->escape = spec->escape;
	sp->null_str = strdup(spec->null_str ? spec->null_str : "");
	sp->null_len = sp->null_str ? strlen(sp->null_str) : 0;
	sp->header = spec->header && spec->format != ROUTER_COPY_BINARY;
	sp->n_shards = spec->n_shards;
	sp->n_fields = spec->n_fields;
	sp->n_key = spec->n_key;
	sp->table = strdup(spec->table ? spec->table : "");
	sp->last_key_field = -1;
	bool ok = sp->null_str && sp->table;
	for (int k = 0; k < spec->n_key; k++) {
		sp->key_field[k] = spec->key_field[k];
		sp->key_type[k] = spec->key_type[k];
		sp->force_not_null[k] = spec->key_force_not_null[k];
		sp->force_null[k] = spec->key_force_null[k];
		sp->key_name[k] = strdup(spec->key_cols[k] ? spec->key_cols[k] : "");
		ok = ok && sp->key_name[k];
		if (sp->key_field[k] > sp->last_key_field)
			sp->last_key_field = sp->key_field[k];
	}
	sp->max_row = COPY_MAX_ROW;
	reset_line(sp);
	sp->bs = B_SIGNATURE;
	if (!ok) {
		router_copy_splitter_free(sp);
		return NULL;
	}
	return sp;
}

void router_copy_splitter_set_max_row(struct router_copy_splitter *sp, size_t max)
{
	sp->max_row = max;
}

int router_copy_feed(struct router_copy_splitter *sp, const uint8_t *data, size_t len,
		     router_copy_row_fn row_fn, void *arg, char sqlstate[6], char *msg,
		     size_t msglen)
{
	const struct copy_err e = { sqlstate, msg, msglen };
	bool binary = sp->format == ROUTER_COPY_BINARY;
	while (len > 0) {
		if (sp->done) {
			if (binary)
				return err_set(&e, "22P04", "received copy data after EOF marker");
			return 0; /* after "\.": ignored, as PostgreSQL ignores it */
		}
		size_t used = 0;
		enum scan r = binary ? scan_binary(sp, data, len, &used, &e)
				     : scan_line(sp, data, len, &used, &e);
		if (r == SCAN_ERR)
			return -1;
		if (r == SCAN_MORE)
			return keep(sp, data, used, &e);
		int rc = take_row(sp, data, used, r == SCAN_END, row_fn, arg, &e);
		if (rc != 0)
			return rc;
		data += used;
		len -= used;
	}
	return 0;
}

int router_copy_finish(struct router_copy_splitter *sp, router_copy_row_fn row_fn, void *arg,
		       char sqlstate[6], char *msg, size_t msglen)
{
	const struct copy_err e = { sqlstate, msg, msglen };
	if (sp->done)
		return 0;
	if (sp->format == ROUTER_COPY_BINARY) {
		sp->done = true;
		/* no trailer is fine, as in PostgreSQL; half a unit is not */
		if (sp->row_len == 0)
			return 0;
		if (sp->bs <= B_EXT)
			return err_set(&e, "22P04", "invalid COPY file header (incomplete)");
		return err_set(&e, "22P04", "unexpected EOF in COPY data");
	}
	enum scan r = line_eof(sp, &e);
	sp->done = true;
	if (r == SCAN_ERR)
		return -1;
	if (r != SCAN_ROW)
		return 0;
	sp->done = false;
	int rc = take_row(sp, NULL, 0, false, row_fn, arg, &e);
	sp->done = true;
	return rc;
}

void router_copy_splitter_free(struct router_copy_splitter *sp)
{
	if (!sp)
		return;
	for (int k = 0; k < sp->n_key; k++)
		free(sp->key_name[k]);
	free(sp->table);
	free(sp->null_str);
	free(sp->buf);
	free(sp->val);
	free(sp);
}
