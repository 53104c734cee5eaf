/* COPY ... FROM STDIN into a sharded table (router/copy.c): the plan of
 * the statement, and the stream cut into rows, each on the shard that
 * router_key_shard gives its key's values.
 *
 * Every stream is fed whole, a byte at a time, and cut at every pair of
 * places, and must come out as the same rows: a row's bytes untouched,
 * line end included. The expected shards come from router_key_shard over
 * the key's values written out by hand, unescaped, so a splitter that read
 * a key wrongly lands a row elsewhere. Which line ends, escapes and
 * end-of-data markers PostgreSQL 15 accepts was asked of it (COPY FROM
 * STDIN through psycopg with the same bytes). */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include "router/internal.h"
#include "router/router.h"

#define N_SHARDS 5

static const struct router_table tables[] = {
	{ NULL, "t", 1, { "id" }, { ROUTER_INT8 } },
	{ NULL, "m", 2, { "tenant", "name" }, { ROUTER_INT4, ROUTER_TEXT } },
	{ NULL, "s", 1, { "k" }, { ROUTER_TEXT } },
	{ "app", "q", 1, { "u" }, { ROUTER_UUID } },
};

static const struct router_schema schema = {
	.n_shards = N_SHARDS,
	.n_tables = 4,
	.tables = tables,
};

/* ---- the plan ---------------------------------------------------------------- */

static char sqlstate[6];
static char msg[256];

static int plan(const char *sql, struct router_copy_spec *spec)
{
	memset(sqlstate, 0, sizeof(sqlstate));
	msg[0] = '\0';
	return router_copy_plan(&schema, sql, strlen(sql), spec, sqlstate, msg, sizeof(msg));
}

static void test_plan_default_text(void **state)
{
	(void)state;
	struct router_copy_spec spec;
	assert_int_equal(plan("COPY t FROM STDIN", &spec), 1);
	assert_int_equal(spec.format, ROUTER_COPY_TEXT);
	assert_int_equal(spec.delimiter, '\t');
	assert_string_equal(spec.null_str, "\\N");
	assert_false(spec.header);
	assert_string_equal(spec.table, "t");
	assert_int_equal(spec.n_fields, -1);
	assert_int_equal(spec.n_key, 1);
	assert_string_equal(spec.key_cols[0], "id");
	assert_int_equal(spec.key_type[0], ROUTER_INT8);
	assert_int_equal(spec.key_field[0], -1);
	assert_int_equal(spec.n_shards, N_SHARDS);
	/* a splitter needs the columns */
	assert_null(router_copy_splitter_new(&spec));

	const char *cols[] = { "note", "id", "x" };
	assert_int_equal(router_copy_set_columns(&spec, 3, cols, sqlstate, msg, sizeof(msg)), 0);
	assert_int_equal(spec.n_fields, 3);
	assert_string_equal(spec.fields[2], "x");
	assert_int_equal(spec.key_field[0], 1);
	const char *no_key[] = { "note", "x" };
	assert_int_equal(router_copy_set_columns(&spec, 2, no_key, sqlstate, msg, sizeof(msg)), -1);
	assert_string_equal(sqlstate, "0A000");
	assert_non_null(strstr(msg, "\"id\""));
	router_copy_spec_clear(&spec);
	assert_null(spec.fields);
	assert_null(spec.null_str);
}

static void test_plan_options(void **state)
{
	(void)state;
	struct router_copy_spec spec;
	assert_int_equal(plan("copy m (name, tenant) from stdin with (format csv, header true, "
			      "delimiter ';', null 'NULL', quote '''', escape '\\', freeze, "
			      "force_not_null (name), force_null (tenant), encoding 'UTF-8') "
			      "where tenant > 0",
			      &spec),
			 1);
	assert_int_equal(spec.format, ROUTER_COPY_CSV);
	assert_int_equal(spec.delimiter, ';');
	assert_int_equal(spec.quote, '\'');
	assert_int_equal(spec.escape, '\\');
	assert_string_equal(spec.null_str, "NULL");
	assert_true(spec.header);
	assert_int_equal(spec.n_fields, 2);
	assert_string_equal(spec.fields[0], "name");
	/* the key's order is the table's: tenant, name */
	assert_int_equal(spec.key_field[0], 1);
	assert_int_equal(spec.key_field[1], 0);
	assert_false(spec.key_force_not_null[0]);
	assert_true(spec.key_force_not_null[1]);
	assert_true(spec.key_force_null[0]);
	assert_false(spec.key_force_null[1]);
	router_copy_spec_clear(&spec);

	/* the old spelling */
	assert_int_equal(plan("COPY t FROM STDIN DELIMITER ',' NULL 'x' CSV HEADER", &spec), 1);
	assert_int_equal(spec.format, ROUTER_COPY_CSV);
	assert_int_equal(spec.delimiter, ',');
	assert_int_equal(spec.quote, '"');
	assert_int_equal(spec.escape, '"');
	assert_string_equal(spec.null_str, "x");
	assert_true(spec.header);
	router_copy_spec_clear(&spec);

	assert_int_equal(plan("COPY t FROM STDIN (FORMAT csv)", &spec), 1);
	assert_int_equal(spec.delimiter, ',');
	assert_string_equal(spec.null_str, "");
	assert_false(spec.header);
	router_copy_spec_clear(&spec);

	assert_int_equal(plan("COPY t FROM STDIN BINARY", &spec), 1);
	assert_int_equal(spec.format, ROUTER_COPY_BINARY);
	router_copy_spec_clear(&spec);
	assert_int_equal(plan("COPY t (id) FROM STDIN WITH (FORMAT binary)", &spec), 1);
	assert_int_equal(spec.format, ROUTER_COPY_BINARY);
	assert_int_equal(spec.key_field[0], 0);
	router_copy_spec_clear(&spec);

	static const struct {
		const char *sql;
		bool header;
	} headers[] = {
		{ "COPY t FROM STDIN (HEADER)", true },
		{ "COPY t FROM STDIN (HEADER MATCH)", true },
		{ "COPY t FROM STDIN (HEADER on)", true },
		{ "COPY t FROM STDIN (HEADER 1)", true },
		{ "COPY t FROM STDIN (HEADER false)", false },
		{ "COPY t FROM STDIN (HEADER 0)", false },
		{ "COPY t FROM STDIN (HEADER 'off')", false },
	};
	for (size_t i = 0; i < sizeof(headers) / sizeof(headers[0]); i++) {
		assert_int_equal(plan(headers[i].sql, &spec), 1);
		assert_int_equal(spec.header, headers[i].header);
		router_copy_spec_clear(&spec);
	}

	/* FORCE_NOT_NULL (*) names every column */
	assert_int_equal(plan("COPY m FROM STDIN (FORMAT csv, FORCE_NOT_NULL *)", &spec), 1);
	assert_true(spec.key_force_not_null[0] && spec.key_force_not_null[1]);
	router_copy_spec_clear(&spec);
}

static void test_plan_tables(void **state)
{
	(void)state;
	struct router_copy_spec spec;
	/* t is configured without a schema: any schema; q in app only */
	static const struct {
		const char *sql;
		int rc;
	} cases[] = {
		{ "COPY t FROM STDIN", 1 },
		{ "copy public.t from stdin", 1 },
		{ "COPY T FROM STDIN", 1 },
		{ "COPY \"T\" FROM STDIN", 0 },
		{ "COPY app.q FROM STDIN", 1 },
		{ "COPY q FROM STDIN", 1 },
		{ "COPY other.q FROM STDIN", 0 },
		{ "COPY unsharded FROM STDIN", 0 },
		{ "COPY t TO STDOUT", 0 },
		{ "COPY (SELECT * FROM t) TO STDOUT", 0 },
		{ "COPY t TO '/tmp/x'", 0 },
		{ "SELECT 1", 0 },
		{ "SELECT 'copy'", 0 },
		{ "COPY t FROM STDIN WITH (((", 0 }, /* the server says what is wrong */
		{ "/* load */ COPY t FROM STDIN", 1 },
	};
	for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
		int rc = plan(cases[i].sql, &spec);
		if (rc != cases[i].rc)
			fail_msg("%s: %d, expected %d (%s)", cases[i].sql, rc, cases[i].rc, msg);
		router_copy_spec_clear(&spec);
	}
}

static void test_plan_refusals(void **state)
{
	(void)state;
	struct router_copy_spec spec;
	static const struct {
		const char *sql;
		const char *code;
		const char *says;
	} cases[] = {
		{ "COPY t FROM '/tmp/rows'", "0A000", "file" },
		{ "COPY t FROM PROGRAM 'cat rows'", "0A000", "program" },
		{ "COPY m (name) FROM STDIN", "0A000", "\"tenant\"" },
		{ "COPY m (tenant, x) FROM STDIN", "0A000", "\"name\"" },
		{ "COPY t FROM STDIN (ENCODING 'latin1')", "0A000", "UTF8" },
		{ "COPY t FROM STDIN; SELECT 1", "0A000", "only statement" },
		{ "SELECT 1; COPY t FROM STDIN", "0A000", "only statement" },
		{ "COPY t FROM STDIN (DELIMITER '||')", "0A000", "delimiter" },
		{ "COPY t FROM STDIN (FORMAT csv, QUOTE '')", "0A000", "quote" },
		{ "COPY t FROM STDIN (FORMAT json)", "22023", "json" },
		{ "COPY t FROM STDIN (HEADER maybe)", "22023", "header" },
		{ "COPY t FROM STDIN (bogus 1)", "0A000", "bogus" },
	};
	for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
		int rc = plan(cases[i].sql, &spec);
		if (rc != -1 || strcmp(sqlstate, cases[i].code) != 0 || !strstr(msg, cases[i].says))
			fail_msg("%s: %d %s '%s'", cases[i].sql, rc, sqlstate, msg);
		/* the table is named */
		if (strcmp(cases[i].code, "0A000") == 0 && !strstr(msg, "\"")
		    && !strstr(msg, "COPY"))
			fail_msg("%s: '%s' names nothing", cases[i].sql, msg);
		assert_null(spec.fields);
		assert_null(spec.null_str);
	}
	assert_int_equal(plan("COPY t FROM '/tmp/rows'", &spec), -1);
	assert_non_null(strstr(msg, "\"t\""));
	assert_int_equal(plan("COPY m (name) FROM STDIN", &spec), -1);
	assert_non_null(strstr(msg, "\"m\""));
}

/* ---- splitting ------------------------------------------------------------- */

#define MAX_ROWS 64

struct got {
	int n;
	int shard[MAX_ROWS];
	size_t len[MAX_ROWS];
	uint8_t bytes[MAX_ROWS][512];
	int stop_at; /* the callback fails at this row (-1 never) */
};

static int collect(void *arg, int shard, const uint8_t *p, size_t n)
{
	struct got *g = arg;
	if (g->n == g->stop_at)
		return 7;
	assert_true(g->n < MAX_ROWS);
	assert_true(n <= sizeof(g->bytes[0]));
	g->shard[g->n] = shard;
	g->len[g->n] = n;
	memcpy(g->bytes[g->n], p, n);
	g->n++;
	return 0;
}

struct want {
	int shard;
	const char *bytes;
	size_t len; /* 0: strlen(bytes) */
};

/* The shard router_key_shard gives values (NULL: SQL NULL). */
static int shard_of(const char *table, int n, const char *const *values)
{
	for (int i = 0; i < schema.n_tables; i++)
		if (strcmp(tables[i].name, table) == 0) {
			assert_int_equal(tables[i].n_cols, n);
			return router_key_shard(n, tables[i].types, values, N_SHARDS);
		}
	fail_msg("no table %s", table);
	return -1;
}

static int shard1(const char *table, const char *v)
{
	return shard_of(table, 1, &v);
}

static int shard2(const char *table, const char *a, const char *b)
{
	const char *v[2] = { a, b };
	return shard_of(table, 2, v);
}

static struct router_copy_spec make_spec(const char *sql, int n_cols, const char *const *cols)
{
	struct router_copy_spec spec;
	int rc = plan(sql, &spec);
	if (rc != 1)
		fail_msg("%s: %d %s", sql, rc, msg);
	if (n_cols > 0)
		assert_int_equal(router_copy_set_columns(&spec, n_cols, cols, sqlstate, msg,
							 sizeof(msg)),
				 0);
	return spec;
}

/* Feeds data in the pieces cut at a <= b; 0 or the first failure. */
static int run_cut(const struct router_copy_spec *spec, const uint8_t *data, size_t len, size_t a,
		   size_t b, struct got *g)
{
	struct router_copy_splitter *sp = router_copy_splitter_new(spec);
	assert_non_null(sp);
	memset(g, 0, sizeof(*g));
	g->stop_at = -1;
	size_t cuts[] = { 0, a, b, len };
	int rc = 0;
	for (int i = 0; i < 3 && rc == 0; i++)
		rc = router_copy_feed(sp, data + cuts[i], cuts[i + 1] - cuts[i], collect, g,
				      sqlstate, msg, sizeof(msg));
	if (rc == 0)
		rc = router_copy_finish(sp, collect, g, sqlstate, msg, sizeof(msg));
	router_copy_splitter_free(sp);
	return rc;
}

static void expect_rows(const struct got *g, const struct want *want, int n_want, size_t a,
			size_t b)
{
	if (g->n != n_want)
		fail_msg("cut at %zu, %zu: %d rows, expected %d", a, b, g->n, n_want);
	for (int i = 0; i < n_want; i++) {
		size_t len = want[i].len ? want[i].len : strlen(want[i].bytes);
		if (g->shard[i] != want[i].shard || g->len[i] != len
		    || memcmp(g->bytes[i], want[i].bytes, len) != 0)
			fail_msg("cut at %zu, %zu: row %d is shard %d '%.*s', expected shard %d "
				 "'%.*s'",
				 a, b, i, g->shard[i], (int)g->len[i], (const char *)g->bytes[i],
				 want[i].shard, (int)len, want[i].bytes);
	}
}

/* The rows, however the stream is cut: whole, at every pair of places,
 * and one byte at a time. */
static void check_split(const struct router_copy_spec *spec, const uint8_t *data, size_t len,
			const struct want *want, int n_want)
{
	struct got g;
	for (size_t a = 0; a <= len; a++)
		for (size_t b = a; b <= len; b++) {
			int rc = run_cut(spec, data, len, a, b, &g);
			if (rc != 0)
				fail_msg("cut at %zu, %zu: %d %s %s", a, b, rc, sqlstate, msg);
			expect_rows(&g, want, n_want, a, b);
		}

	struct router_copy_splitter *sp = router_copy_splitter_new(spec);
	assert_non_null(sp);
	memset(&g, 0, sizeof(g));
	g.stop_at = -1;
	for (size_t i = 0; i < len; i++)
		assert_int_equal(router_copy_feed(sp, data + i, 1, collect, &g, sqlstate, msg,
						  sizeof(msg)),
				 0);
	assert_int_equal(router_copy_finish(sp, collect, &g, sqlstate, msg, sizeof(msg)), 0);
	router_copy_splitter_free(sp);
	expect_rows(&g, want, n_want, 1, 1);
}

static void check_split_str(const struct router_copy_spec *spec, const char *data,
			    const struct want *want, int n_want)
{
	check_split(spec, (const uint8_t *)data, strlen(data), want, n_want);
}

/* The failure (sqlstate and a word of the message) wherever it is cut. */
static void check_fails(const struct router_copy_spec *spec, const uint8_t *data, size_t len,
			const char *code, const char *says)
{
	struct got g;
	for (size_t a = 0; a <= len; a++)
		for (size_t b = a; b <= len; b++) {
			int rc = run_cut(spec, data, len, a, b, &g);
			if (rc != -1 || strcmp(sqlstate, code) != 0 || !strstr(msg, says))
				fail_msg("cut at %zu, %zu: %d %s '%s', expected %s '%s'", a, b, rc,
					 sqlstate, msg, code, says);
		}
}

static void check_fails_str(const struct router_copy_spec *spec, const char *data, const char *code,
			    const char *says)
{
	check_fails(spec, (const uint8_t *)data, strlen(data), code, says);
}

static const char *const t_cols[] = { "id", "note" };

static void test_text_rows(void **state)
{
	(void)state;
	struct router_copy_spec spec = make_spec("COPY t FROM STDIN", 2, t_cols);
	const struct want want[] = {
		{ shard1("t", "1"), "1\tone\n", 0 },
		{ shard1("t", "-5"), "-5\ttwo\n", 0 },
		{ shard1("t", "42"), " 42 \tblanks\n", 0 },
		{ shard1("t", "9223372036854775807"), "9223372036854775807\t\\N\n", 0 },
		/* octal and hex escapes in the key: "12" */
		{ shard1("t", "12"), "\\061\\x32\tesc\n", 0 },
		/* an escaped newline is data, not the row's end */
		{ shard1("t", "7"), "7\tline\\\nbreak\\\\\n", 0 },
		{ shard1("t", "-9223372036854775808"), "-9223372036854775808\n", 0 },
		/* a last row without its newline */
		{ shard1("t", "3"), "3\tlast", 0 },
	};
	char data[512] = "";
	for (size_t i = 0; i < sizeof(want) / sizeof(want[0]); i++)
		strcat(data, want[i].bytes);
	check_split_str(&spec, data, want, 8);
	router_copy_spec_clear(&spec);
}

static void test_text_escapes_in_text_keys(void **state)
{
	(void)state;
	const char *cols[] = { "k" };
	struct router_copy_spec spec = make_spec("COPY s FROM STDIN", 1, cols);
	const struct want want[] = {
		{ shard1("s", "a\tb"), "a\\tb\n", 0 },
		{ shard1("s", "a\nb\\c"), "a\\nb\\\\c\n", 0 },
		{ shard1("s", "\b\f\r\v"), "\\b\\f\\r\\v\n", 0 },
		{ shard1("s", "x"), "\\x\n", 0 },       /* \x with no hex digit: an x */
		{ shard1("s", "\x01g"), "\\x1g\n", 0 }, /* one hex digit */
		{ shard1("s",
			 "\x07"
			 "8"),
		  "\\78\n", 0 },                      /* octal stops at 8 */
		{ shard1("s", "S9"), "\\1239\n", 0 }, /* three octal digits at most */
		{ shard1("s", "q"), "\\q\n", 0 },     /* any other byte as it is */
		{ shard1("s", "\\N"), "\\\\N\n", 0 }, /* an escaped backslash is no NULL */
		{ shard1("s", ""), "\n", 0 },         /* an empty line: the empty string */
		{ shard1("s", "tail"), "tail\\", 0 }, /* a backslash at the very end is dropped */
	};
	char data[512] = "";
	for (size_t i = 0; i < sizeof(want) / sizeof(want[0]); i++)
		strcat(data, want[i].bytes);
	check_split_str(&spec, data, want, sizeof(want) / sizeof(want[0]));

	/* NULL in a one-column key has no shard */
	check_fails_str(&spec, "a\n\\N\n", "23502", "\"k\"");
	router_copy_spec_clear(&spec);
}

static void test_text_line_ends(void **state)
{
	(void)state;
	struct router_copy_spec spec = make_spec("COPY t FROM STDIN", 2, t_cols);
	const struct want crlf[] = {
		{ shard1("t", "1"), "1\ta\r\n", 0 },
		{ shard1("t", "2"), "2\tb\\\r\r\n", 0 }, /* an escaped \r is data */
		{ shard1("t", "3"), "3\tc\r\n", 0 },
	};
	check_split_str(&spec, "1\ta\r\n2\tb\\\r\r\n3\tc\r\n", crlf, 3);
	const struct want cr[] = {
		{ shard1("t", "1"), "1\ta\r", 0 },
		{ shard1("t", "2"), "2\tb\r", 0 },
		{ shard1("t", "3"), "3\tc", 0 },
	};
	check_split_str(&spec, "1\ta\r2\tb\r3\tc", cr, 3);
	const struct want last_cr[] = {
		{ shard1("t", "1"), "1\ta\r", 0 },
	};
	check_split_str(&spec, "1\ta\r", last_cr, 1);

	/* the first line sets the style, as PostgreSQL holds the rest to it */
	check_fails_str(&spec, "1\ta\r\n2\tb\n", "22P04", "literal newline");
	check_fails_str(&spec, "1\ta\n2\tb\r\n", "22P04", "literal carriage return");
	check_fails_str(&spec, "1\ta\r2\tb\n", "22P04", "literal newline");
	check_fails_str(&spec, "1\ta\r\n2\tb\rx\r\n", "22P04", "literal carriage return");
	check_fails_str(&spec, "1\ta\r\n2\tb\r", "22P04", "literal carriage return");
	router_copy_spec_clear(&spec);
}

static void test_text_end_marker(void **state)
{
	(void)state;
	struct router_copy_spec spec = make_spec("COPY t FROM STDIN", 2, t_cols);
	/* the marker ends the data; what follows it is ignored */
	const struct want two[] = {
		{ shard1("t", "1"), "1\ta\n", 0 },
		{ shard1("t", "2"), "2\tb\n", 0 },
	};
	check_split_str(&spec, "1\ta\n2\tb\n\\.\n3\tc\n", two, 2);
	check_split_str(&spec, "1\ta\n2\tb\n\\.\nnot even a row", two, 2);
	/* after data on its line: that data is the last row */
	const struct want mid[] = {
		{ shard1("t", "1"), "1\ta\n", 0 },
		{ shard1("t", "2"), "2\tb", 0 },
	};
	check_split_str(&spec, "1\ta\n2\tb\\.\n3\tc\n", mid, 2);
	const struct want crlf[] = {
		{ shard1("t", "1"), "1\ta\r\n", 0 },
	};
	check_split_str(&spec, "1\ta\r\n\\.\r\n2\tb\r\n", crlf, 1);
	/* an escaped backslash before a period is no marker */
	const struct want data[] = {
		{ shard1("t", "1"), "1\t\\\\.\n", 0 },
	};
	check_split_str(&spec, "1\t\\\\.\n", data, 1);

	check_fails_str(&spec, "1\ta\n\\.", "22P04", "end-of-copy marker corrupt");
	check_fails_str(&spec, "1\ta\n\\.x\n", "22P04", "end-of-copy marker corrupt");
	check_fails_str(&spec, "1\ta\n\\.\r\n", "22P04", "newline style");
	check_fails_str(&spec, "1\ta\r\n\\.\n", "22P04", "newline style");
	router_copy_spec_clear(&spec);
}

static void test_text_header(void **state)
{
	(void)state;
	struct router_copy_spec spec = make_spec("COPY t FROM STDIN (HEADER MATCH)", 2, t_cols);
	const struct want want[] = {
		{ -1, "id\tnote\n", 0 },
		{ shard1("t", "1"), "1\ta\n", 0 },
		{ shard1("t", "2"), "2\tb\n", 0 },
	};
	check_split_str(&spec, "id\tnote\n1\ta\n2\tb\n", want, 3);
	router_copy_spec_clear(&spec);
}

static const char *const m_cols[] = { "tenant", "name", "extra" };

static void test_csv_rows(void **state)
{
	(void)state;
	struct router_copy_spec spec = make_spec("COPY m FROM STDIN WITH (FORMAT csv, HEADER)", 3,
						 m_cols);
	const struct want want[] = {
		{ -1, "tenant,name,extra\n", 0 },
		{ shard2("m", "1", "alice"), "1,alice,x\n", 0 },
		{ shard2("m", "2", "bob, jr"), "2,\"bob, jr\",x\n", 0 },
		{ shard2("m", "3", "multi\nline\r\nend"), "3,\"multi\nline\r\nend\",x\n", 0 },
		{ shard2("m", "4", "quote \" inside"), "4,\"quote \"\" inside\",x\n", 0 },
		{ shard2("m", "5", NULL), "5,,x\n", 0 },         /* unquoted empty: NULL */
		{ shard2("m", "6", ""), "6,\"\",x\n", 0 },       /* quoted empty: '' */
		{ shard2("m", "7", "ab"), "\"7\",a\"b\"\n", 0 }, /* quotes in part of a field */
		/* a backslash-period after the line's start is data */
		{ shard2("m", "8", "\\."), "8,\\.,\n", 0 },
		{ shard2("m", "9", "z"), "9,z\n", 0 },
		{ shard2("m", "10", "last"), "10,last", 0 },
	};
	char data[512] = "";
	for (size_t i = 0; i < sizeof(want) / sizeof(want[0]); i++)
		strcat(data, want[i].bytes);
	check_split_str(&spec, data, want, sizeof(want) / sizeof(want[0]));

	const struct want crlf[] = {
		{ -1, "h\r\n", 0 },
		{ shard2("m", "1", "a\r\nb"), "1,\"a\r\nb\"\r\n", 0 },
		{ shard2("m", "2", "c"), "2,c\r\n", 0 },
	};
	check_split_str(&spec, "h\r\n1,\"a\r\nb\"\r\n2,c\r\n\\.\r\n3,d\r\n", crlf, 3);

	const struct want marker[] = {
		{ -1, "h\n", 0 },
		{ shard2("m", "1", "a"), "1,a\n", 0 },
	};
	check_split_str(&spec, "h\n1,a\n\\.\n2,b\n", marker, 2);

	check_fails_str(&spec, "h\n1,\"open\n", "22P04", "unterminated CSV quoted field");
	check_fails_str(&spec, "h\n1,a\n2,b\r\n", "22P04", "unquoted carriage return");
	router_copy_spec_clear(&spec);
}

static void test_csv_marker_as_data(void **state)
{
	(void)state;
	const char *cols[] = { "k" };
	struct router_copy_spec spec = make_spec("COPY s FROM STDIN (FORMAT csv)", 1, cols);
	/* "\." is only the marker alone on its line, in CSV */
	const struct want want[] = {
		{ shard1("s", "\\.x"), "\\.x\n", 0 },
		{ shard1("s", "a\\."), "a\\.\n", 0 },
		{ shard1("s", "\\."), "\"\\.\"\n", 0 },
		{ shard1("s", "\\."), "\\.", 0 }, /* at the very end: a value */
	};
	check_split_str(&spec, "\\.x\na\\.\n\"\\.\"\n\\.", want, 4);
	const struct want crlf[] = {
		{ shard1("s", "a"), "a\r\n", 0 },
		{ shard1("s", "\\.x"), "\\.x\r\n", 0 },
	};
	check_split_str(&spec, "a\r\n\\.x\r\n", crlf, 2);
	router_copy_spec_clear(&spec);
}

static void test_csv_options(void **state)
{
	(void)state;
	/* another delimiter, quote, escape and null string */
	struct router_copy_spec spec =
		make_spec("COPY m (name, tenant) FROM STDIN (FORMAT csv, "
			  "DELIMITER ';', QUOTE '''', ESCAPE '\\', NULL 'NIL')",
			  0, NULL);
	const struct want want[] = {
		{ shard2("m", "1", "it's; \\ok"), "'it\\'s; \\\\ok';1\n", 0 },
		{ shard2("m", "2", NULL), "NIL;2\n", 0 },
		{ shard2("m", "3", "NIL"), "'NIL';3\n", 0 },
		{ shard2("m", "4", "a\\b"), "a\\b;4\n", 0 }, /* the escape only works in quotes */
	};
	char data[512] = "";
	for (size_t i = 0; i < sizeof(want) / sizeof(want[0]); i++)
		strcat(data, want[i].bytes);
	check_split_str(&spec, data, want, 4);
	router_copy_spec_clear(&spec);

	/* FORCE_NOT_NULL: an unquoted null string is that string; FORCE_NULL:
	 * a quoted one is NULL */
	spec = make_spec("COPY m (tenant, name) FROM STDIN (FORMAT csv, FORCE_NOT_NULL (name))", 0,
			 NULL);
	const struct want fnn[] = {
		{ shard2("m", "1", ""), "1,\n", 0 },
		{ shard2("m", "2", ""), "2,\"\"\n", 0 },
	};
	check_split_str(&spec, "1,\n2,\"\"\n", fnn, 2);
	router_copy_spec_clear(&spec);
	spec = make_spec("COPY m (tenant, name) FROM STDIN (FORMAT csv, FORCE_NULL (name))", 0,
			 NULL);
	const struct want fn[] = {
		{ shard2("m", "1", NULL), "1,\n", 0 },
		{ shard2("m", "2", NULL), "2,\"\"\n", 0 },
		{ shard2("m", "3", "x"), "3,\"x\"\n", 0 },
	};
	check_split_str(&spec, "1,\n2,\"\"\n3,\"x\"\n", fn, 3);
	router_copy_spec_clear(&spec);
}

/* ---- binary -------------------------------------------------------------------- */

struct bin {
	uint8_t b[1024];
	size_t n;
};

static void put(struct bin *w, const void *p, size_t n)
{
	assert_true(w->n + n <= sizeof(w->b));
	memcpy(w->b + w->n, p, n);
	w->n += n;
}

static void put16(struct bin *w, int v)
{
	uint8_t b[2] = { (uint8_t)((unsigned)v >> 8), (uint8_t)v };
	put(w, b, 2);
}

static void put32(struct bin *w, int32_t v)
{
	uint32_t u = (uint32_t)v;
	uint8_t b[4] = { (uint8_t)(u >> 24), (uint8_t)(u >> 16), (uint8_t)(u >> 8), (uint8_t)u };
	put(w, b, 4);
}

static void put_header(struct bin *w, int ext)
{
	put(w, "PGCOPY\n\377\r\n\0", 11);
	put32(w, 0);
	put32(w, ext);
	for (int i = 0; i < ext; i++)
		put(w, "e", 1);
}

/* A field: NULL, or bytes. */
static void put_field(struct bin *w, const void *p, int n)
{
	put32(w, p ? n : -1);
	if (p)
		put(w, p, (size_t)n);
}

static void put_int4(struct bin *w, int32_t v)
{
	uint32_t u = (uint32_t)v;
	uint8_t b[4] = { (uint8_t)(u >> 24), (uint8_t)(u >> 16), (uint8_t)(u >> 8), (uint8_t)u };
	put_field(w, b, 4);
}

static void test_binary(void **state)
{
	(void)state;
	struct router_copy_spec spec = make_spec("COPY m FROM STDIN (FORMAT binary)", 3, m_cols);
	struct bin w = { .n = 0 };
	struct want want[8];
	int n = 0;
	size_t from = 0;
#define UNIT(shard_)                                      \
	do {                                              \
		want[n].shard = (shard_);                 \
		want[n].bytes = (const char *)w.b + from; \
		want[n].len = w.n - from;                 \
		n++;                                      \
		from = w.n;                               \
	} while (0)
	put_header(&w, 3);
	UNIT(-1);
	put16(&w, 3);
	put_int4(&w, 42);
	put_field(&w, "alice", 5);
	put_field(&w, "x", 1);
	UNIT(shard2("m", "42", "alice"));
	put16(&w, 3);
	put_int4(&w, -7);
	put_field(&w, NULL, 0); /* NULL name: skipped in the hash */
	put_field(&w, NULL, 0);
	UNIT(shard2("m", "-7", NULL));
	put16(&w, 3);
	put_int4(&w, 0);
	put_field(&w, "", 0);
	put_field(&w, "\n\r\\.", 4);
	UNIT(shard2("m", "0", ""));
	put16(&w, -1);
	UNIT(-1);
	check_split(&spec, w.b, w.n, want, n);
	/* without its trailer, as PostgreSQL allows */
	check_split(&spec, w.b, w.n - 2, want, n - 1);

	/* after the trailer, nothing */
	struct bin bad = w;
	put(&bad, "x", 1);
	check_fails(&spec, bad.b, bad.n, "22P04", "after EOF marker");
	/* cut short */
	check_fails(&spec, w.b, w.n - 3, "22P04", "unexpected EOF");
	check_fails(&spec, w.b, 17, "22P04", "header");
	/* a wrong signature, a wrong field count, a bad field size */
	bad = w;
	bad.b[1] = 'X';
	check_fails(&spec, bad.b, bad.n, "22P04", "signature");
	bad.n = 0;
	put_header(&bad, 0);
	put16(&bad, 2);
	check_fails(&spec, bad.b, bad.n, "22P04", "field count is 2, expected 3");
	bad.n = 0;
	put_header(&bad, 0);
	put16(&bad, 3);
	put32(&bad, -2);
	check_fails(&spec, bad.b, bad.n, "22P04", "invalid field size");
	/* a key that is no int4 */
	bad.n = 0;
	put_header(&bad, 0);
	put16(&bad, 3);
	put_field(&bad, "abc", 3);
	put_field(&bad, "n", 1);
	put_field(&bad, "x", 1);
	check_fails(&spec, bad.b, bad.n, "22P02", "tenant");
	router_copy_spec_clear(&spec);
#undef UNIT
}

static void test_binary_keys(void **state)
{
	(void)state;
	/* an int8 key sent as 8 bytes, a uuid as 16 */
	struct router_copy_spec spec = make_spec("COPY t (id) FROM STDIN (FORMAT binary)", 0, NULL);
	struct bin w = { .n = 0 };
	put_header(&w, 0);
	size_t row = w.n;
	put16(&w, 1);
	const uint8_t big[8] = { 0x80, 0, 0, 0, 0, 0, 0, 0 }; /* INT64_MIN */
	put_field(&w, big, 8);
	const struct want want[] = {
		{ -1, (const char *)w.b, row },
		{ shard1("t", "-9223372036854775808"), (const char *)w.b + row, w.n - row },
	};
	check_split(&spec, w.b, w.n, want, 2);
	/* NULL in a one-column key */
	struct bin bad = { .n = 0 };
	put_header(&bad, 0);
	put16(&bad, 1);
	put_field(&bad, NULL, 0);
	check_fails(&spec, bad.b, bad.n, "23502", "\"id\"");
	router_copy_spec_clear(&spec);

	spec = make_spec("COPY app.q (u) FROM STDIN (FORMAT binary)", 0, NULL);
	w.n = 0;
	put_header(&w, 0);
	row = w.n;
	put16(&w, 1);
	const uint8_t u[16] = { 0xa0, 0xee, 0xbc, 0x99, 0x9c, 0x0b, 0x4e, 0xf8,
				0xbb, 0x6d, 0x6b, 0xb9, 0xbd, 0x38, 0x0a, 0x11 };
	put_field(&w, u, 16);
	const struct want uw[] = {
		{ -1, (const char *)w.b, row },
		{ shard1("q", "a0eebc99-9c0b-4ef8-bb6d-6bb9bd380a11"), (const char *)w.b + row,
		  w.n - row },
	};
	check_split(&spec, w.b, w.n, uw, 2);
	router_copy_spec_clear(&spec);
}

/* ---- bad data, limits, the callback ------------------------------------------ */

static void test_bad_text_keys(void **state)
{
	(void)state;
	struct router_copy_spec spec = make_spec("COPY t FROM STDIN", 2, t_cols);
	check_fails_str(&spec, "1\ta\nabc\tb\n", "22P02", "abc");
	check_fails_str(&spec, "99999999999999999999\tb\n", "22P02", "int8");
	check_fails_str(&spec, "\\N\tb\n", "23502", "\"t\"");
	router_copy_spec_clear(&spec);
	/* the key's field is missing */
	const char *cols[] = { "note", "id" };
	spec = make_spec("COPY t FROM STDIN", 2, cols);
	check_fails_str(&spec, "a\t1\nb\n", "22P04", "missing data for column \"id\"");
	router_copy_spec_clear(&spec);
	spec = make_spec("COPY t (note, id) FROM STDIN (FORMAT csv)", 0, NULL);
	check_fails_str(&spec, "a,1\nb\n", "22P04", "missing data for column \"id\"");
	router_copy_spec_clear(&spec);
}

static void test_row_limit(void **state)
{
	(void)state;
	struct router_copy_spec spec = make_spec("COPY t FROM STDIN", 2, t_cols);
	const char *data = "1\tshort\n2\tthis row is longer than the limit\n";
	struct got g;
	for (size_t a = 0; a <= strlen(data); a++) {
		struct router_copy_splitter *sp = router_copy_splitter_new(&spec);
		router_copy_splitter_set_max_row(sp, 16);
		memset(&g, 0, sizeof(g));
		g.stop_at = -1;
		int rc = router_copy_feed(sp, (const uint8_t *)data, a, collect, &g, sqlstate, msg,
					  sizeof(msg));
		if (rc == 0)
			rc = router_copy_feed(sp, (const uint8_t *)data + a, strlen(data) - a,
					      collect, &g, sqlstate, msg, sizeof(msg));
		if (rc == 0)
			rc = router_copy_finish(sp, collect, &g, sqlstate, msg, sizeof(msg));
		router_copy_splitter_free(sp);
		assert_int_equal(rc, -1);
		assert_string_equal(sqlstate, "54000");
		assert_int_equal(g.n, 1); /* the short row went on */
	}
	router_copy_spec_clear(&spec);
}

/* Rows go on as soon as they are complete: only the tail is held. */
static void test_streaming(void **state)
{
	(void)state;
	struct router_copy_spec spec = make_spec("COPY t FROM STDIN", 2, t_cols);
	struct router_copy_splitter *sp = router_copy_splitter_new(&spec);
	struct got g;
	memset(&g, 0, sizeof(g));
	g.stop_at = -1;
	const char *a = "1\ta\n2\tb\n3\tpart";
	assert_int_equal(router_copy_feed(sp, (const uint8_t *)a, strlen(a), collect, &g, sqlstate,
					  msg, sizeof(msg)),
			 0);
	assert_int_equal(g.n, 2);
	const char *b = "ial\n4";
	assert_int_equal(router_copy_feed(sp, (const uint8_t *)b, strlen(b), collect, &g, sqlstate,
					  msg, sizeof(msg)),
			 0);
	assert_int_equal(g.n, 3);
	assert_int_equal(g.len[2], strlen("3\tpartial\n"));
	assert_memory_equal(g.bytes[2], "3\tpartial\n", g.len[2]);
	assert_int_equal(router_copy_finish(sp, collect, &g, sqlstate, msg, sizeof(msg)), 0);
	assert_int_equal(g.n, 4);
	router_copy_splitter_free(sp);

	/* what the callback returns, it gets back */
	sp = router_copy_splitter_new(&spec);
	memset(&g, 0, sizeof(g));
	g.stop_at = 1;
	assert_int_equal(router_copy_feed(sp, (const uint8_t *)a, strlen(a), collect, &g, sqlstate,
					  msg, sizeof(msg)),
			 7);
	router_copy_splitter_free(sp);
	router_copy_spec_clear(&spec);
}

/* Many rows of random keys, cut in random places: each on its shard, all
 * shards used. */
static void test_many_rows(void **state)
{
	(void)state;
	struct router_copy_spec spec = make_spec("COPY m (name, tenant) FROM STDIN (FORMAT csv)", 0,
						 NULL);
	enum { ROWS = 2000 };
	static char data[ROWS * 40];
	static int shards[ROWS];
	size_t len = 0;
	uint32_t seed = 12345;
	for (int i = 0; i < ROWS; i++) {
		seed = seed * 1103515245u + 12345u;
		int tenant = (int)(seed >> 8) - (1 << 22);
		char name[16], tn[16];
		snprintf(name, sizeof(name), "n%u", seed % 977);
		snprintf(tn, sizeof(tn), "%d", tenant);
		shards[i] = shard2("m", tn, name);
		len += (size_t)snprintf(data + len, sizeof(data) - len, "\"%s\",%d\n", name,
					tenant);
	}
	struct router_copy_splitter *sp = router_copy_splitter_new(&spec);
	int n = 0, bad = 0, per_shard[N_SHARDS] = { 0 };
	size_t at = 0;
	while (at < len) {
		seed = seed * 1103515245u + 12345u;
		size_t step = seed % 97;
		if (step > len - at)
			step = len - at;
		struct got g;
		memset(&g, 0, sizeof(g));
		g.stop_at = -1;
		assert_int_equal(router_copy_feed(sp, (const uint8_t *)data + at, step, collect, &g,
						  sqlstate, msg, sizeof(msg)),
				 0);
		for (int i = 0; i < g.n; i++) {
			bad += g.shard[i] != shards[n];
			per_shard[g.shard[i]]++;
			n++;
		}
		at += step;
	}
	assert_int_equal(router_copy_finish(sp, collect, NULL, sqlstate, msg, sizeof(msg)), 0);
	router_copy_splitter_free(sp);
	assert_int_equal(n, ROWS);
	assert_int_equal(bad, 0);
	for (int s = 0; s < N_SHARDS; s++)
		assert_true(per_shard[s] > ROWS / N_SHARDS / 2);
	router_copy_spec_clear(&spec);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_plan_default_text),
		cmocka_unit_test(test_plan_options),
		cmocka_unit_test(test_plan_tables),
		cmocka_unit_test(test_plan_refusals),
		cmocka_unit_test(test_text_rows),
		cmocka_unit_test(test_text_escapes_in_text_keys),
		cmocka_unit_test(test_text_line_ends),
		cmocka_unit_test(test_text_end_marker),
		cmocka_unit_test(test_text_header),
		cmocka_unit_test(test_csv_rows),
		cmocka_unit_test(test_csv_marker_as_data),
		cmocka_unit_test(test_csv_options),
		cmocka_unit_test(test_binary),
		cmocka_unit_test(test_binary_keys),
		cmocka_unit_test(test_bad_text_keys),
		cmocka_unit_test(test_row_limit),
		cmocka_unit_test(test_streaming),
		cmocka_unit_test(test_many_rows),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
