/* The `options` startup parameter: words, escapes, the setting forms and
 * PostgreSQL 15's errors for the bad ones (measured with psql and PGOPTIONS). */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "proto/options.h"

struct got {
	int n;
	char text[16384]; /* "name=value;" for each setting */
	int stop_after;   /* the callback refuses the setting after this many, if > 0 */
};

static int collect(void *arg, const char *name, const char *value)
{
	struct got *g = arg;
	if (g->stop_after && g->n == g->stop_after)
		return -1;
	g->n++;
	size_t used = strlen(g->text);
	snprintf(g->text + used, sizeof(g->text) - used, "%s=%s;", name, value);
	return 0;
}

/* Parses s; returns the settings as "a=b;c=d;" or "ERR code: message". */
static char *parse(const char *s, struct proto_options_error *err)
{
	static struct got g;
	static char out[17000];
	memset(&g, 0, sizeof(g));
	size_t cap = 2 * (strlen(s) + 1);
	char *scratch = malloc(cap);
	assert_non_null(scratch);
	enum proto_result r = proto_options_parse(s, scratch, cap, collect, &g, err);
	free(scratch);
	if (r == PROTO_OK)
		snprintf(out, sizeof(out), "%s", g.text);
	else
		snprintf(out, sizeof(out), "ERR %s: %s", err->sqlstate ? err->sqlstate : "-",
			 err->message);
	return out;
}

static void test_setting_forms(void **state)
{
	(void)state;
	struct proto_options_error err;
	assert_string_equal(parse("-c work_mem=64MB", &err), "work_mem=64MB;");
	assert_string_equal(parse("-cwork_mem=64MB", &err), "work_mem=64MB;");
	assert_string_equal(parse("--work_mem=64MB", &err), "work_mem=64MB;");
	/* '-' in the name becomes '_' in both forms; not in the value */
	assert_string_equal(parse("--statement-timeout=1-2", &err), "statement_timeout=1-2;");
	assert_string_equal(parse("-c search-path=a-b", &err), "search_path=a-b;");
	/* the value runs to the word's end, '=' and all */
	assert_string_equal(parse("-c a=b=c", &err), "a=b=c;");
	assert_string_equal(parse("-c a=", &err), "a=;");
	assert_string_equal(parse("-c =x", &err), "=x;"); /* the server refuses "" */
	/* -c takes the next word whatever it looks like */
	assert_string_equal(parse("-c -x=1", &err), "_x=1;");
	assert_string_equal(parse("-c a=1 --b=2 -cc=3", &err), "a=1;b=2;c=3;");
	/* "--" ends the switches; alone it is fine */
	assert_string_equal(parse("-c a=1 --", &err), "a=1;");
	assert_string_equal(parse("--", &err), "");
}

static void test_white_space_and_escapes(void **state)
{
	(void)state;
	struct proto_options_error err;
	assert_string_equal(parse("", &err), "");
	assert_string_equal(parse("   \t\n ", &err), "");
	assert_string_equal(parse("  -c\t a=1 \n\v\f\r--b=2  ", &err), "a=1;b=2;");
	assert_string_equal(parse("-c application_name=a\\ b", &err), "application_name=a b;");
	assert_string_equal(parse("-c a=x\\\\y", &err), "a=x\\y;");
	assert_string_equal(parse("-c a=\\x", &err), "a=x;");
	/* a trailing backslash is dropped */
	assert_string_equal(parse("-cwork_mem=2MB\\", &err), "work_mem=2MB;");
	/* an escaped '-' still starts a switch: escapes go before the reading */
	assert_string_equal(parse("\\-c a=1", &err), "a=1;");
	/* "-c a=1" is one word: the name is " a" (the server refuses it) */
	assert_string_equal(parse("-c\\ a=1", &err), " a=1;");
}

static void expect_error(const char *in, const char *code, const char *message, const char *hint)
{
	struct proto_options_error err;
	char want[1024];
	snprintf(want, sizeof(want), "ERR %s: %s", code, message);
	assert_string_equal(parse(in, &err), want);
	assert_string_equal(err.severity, "FATAL");
	if (hint)
		assert_string_equal(err.hint, hint);
	else
		assert_null(err.hint);
}

#define HELP "Try \"postgres --help\" for more information."
#define BAD  "invalid command-line argument for server process: "

static void test_postgres_errors(void **state)
{
	(void)state;
	expect_error("-c foo", "42601", "-c foo requires a value", NULL);
	expect_error("-cfoo", "42601", "-c foo requires a value", NULL);
	expect_error("--foo", "42601", "--foo requires a value", NULL);
	expect_error("--foo-bar", "42601", "--foo-bar requires a value", NULL);
	expect_error("-c", "42601", BAD "-c", HELP);
	expect_error("-c   ", "42601", BAD "-c", HELP);
	expect_error("foo -c", "42601", BAD "-c", HELP);
	expect_error("-x", "42601", BAD "-x", HELP);
	expect_error("-x -c", "42601", BAD "-x", HELP);
	expect_error("-x\\", "42601", BAD "-x", HELP);
	expect_error("-c a=1 -x", "42601", BAD "-x", HELP);
	/* an unknown letter before the word's end: the word before it */
	expect_error("-xfoo", "42601", BAD "postgres", HELP);
	expect_error("-xc", "42601", BAD "postgres", HELP);
	expect_error("foo -xbar", "42601", BAD "foo", HELP);
	expect_error("foo bar -xbar", "42601", BAD "bar", HELP);
	expect_error("-c work_mem=5MB -xbar", "42601", BAD "work_mem=5MB", HELP);
	expect_error("-cwork-mem=5MB -xbar", "42601", BAD "-cwork-mem=5MB", HELP);
	/* words that are no switch: the first, once the switches are read */
	expect_error("foo", "42601", BAD "foo", HELP);
	expect_error("-", "42601", BAD "-", HELP);
	expect_error("foo -c work_mem=64MB", "42601", BAD "foo", HELP);
	expect_error("-c work_mem=64MB foo", "42601", BAD "foo", HELP);
	expect_error("foo -x", "42601", BAD "-x", HELP);
	expect_error("foo -c a", "42601", "-c a requires a value", NULL);
	expect_error("-- foo", "42601", BAD "foo", HELP);
	expect_error("-- -x", "42601", BAD "-x", HELP);
	expect_error("foo -- bar", "42601", BAD "foo", HELP);
	expect_error("a\\ b", "42601", BAD "a b", HELP);
	/* PostgreSQL's other switches: valid there, not taken here */
	expect_error("-e", "0A000", "PgCrab does not take the server switch \"-e\" in options",
		     NULL);
	expect_error("-B 64", "0A000", "PgCrab does not take the server switch \"-B\" in options",
		     NULL);
}

static void test_settings_before_an_error_are_passed(void **state)
{
	(void)state;
	struct proto_options_error err;
	assert_string_equal(parse("-c a=1 -c b", &err), "ERR 42601: -c b requires a value");
}

static void test_callback_can_stop(void **state)
{
	(void)state;
	struct got g = { .stop_after = 2 };
	struct proto_options_error err;
	char scratch[64];
	assert_int_equal(proto_options_parse("-c a=1 -c b=2 -c c=3", scratch, sizeof(scratch),
					     collect, &g, &err),
			 PROTO_ERR);
	assert_null(err.sqlstate);
	assert_int_equal(g.n, 2);
	/* no callback: only checked */
	assert_int_equal(proto_options_parse("-c a=1", scratch, sizeof(scratch), NULL, NULL, &err),
			 PROTO_OK);
}

static void test_scratch_too_small(void **state)
{
	(void)state;
	struct proto_options_error err;
	char scratch[8];
	assert_int_equal(proto_options_parse("-c a=1", scratch, sizeof(scratch), NULL, NULL, &err),
			 PROTO_ERR);
	assert_string_equal(err.sqlstate, "54000");
	assert_int_equal(proto_options_parse("-c a", scratch, 10, NULL, NULL, &err), PROTO_ERR);
	assert_string_equal(err.sqlstate, "42601");
}

static void test_many_settings_and_long_values(void **state)
{
	(void)state;
	size_t cap = 20000;
	char *in = calloc(1, cap);
	assert_non_null(in);
	size_t len = 0;
	for (int i = 0; i < 1000; i++)
		len += (size_t)snprintf(in + len, cap - len, "-c p%d=%d ", i, i);
	struct got g = { 0 };
	struct proto_options_error err;
	char *scratch = malloc(2 * (len + 1));
	assert_non_null(scratch);
	assert_int_equal(proto_options_parse(in, scratch, 2 * (len + 1), collect, &g, &err),
			 PROTO_OK);
	assert_int_equal(g.n, 1000);
	assert_non_null(strstr(g.text, "p999=999;"));
	free(scratch);

	/* one value of 9000 bytes, an escaped space every 100 */
	strcpy(in, "-c application_name=");
	len = strlen(in);
	for (int i = 0; i < 9000; i++) {
		if (i % 100 == 99)
			in[len++] = '\\';
		in[len++] = (i % 100 == 99) ? ' ' : 'v';
	}
	in[len] = '\0';
	memset(&g, 0, sizeof(g));
	scratch = malloc(2 * (len + 1));
	assert_non_null(scratch);
	assert_int_equal(proto_options_parse(in, scratch, 2 * (len + 1), collect, &g, &err),
			 PROTO_OK);
	assert_int_equal(g.n, 1);
	assert_int_equal(strlen(g.text), strlen("application_name=;") + 9000);
	free(scratch);

	/* a long word quoted in the error is cut, not overrun */
	memset(in, 'w', 15000);
	in[15000] = '\0';
	scratch = malloc(2 * 15001);
	assert_non_null(scratch);
	assert_int_equal(proto_options_parse(in, scratch, 2 * 15001, NULL, NULL, &err), PROTO_ERR);
	assert_int_equal(strlen(err.message), PROTO_OPTIONS_MESSAGE_MAX - 1);
	free(scratch);
	free(in);
}

/* Hostile input: every short string over a small alphabet, and random
 * bytes; nothing may crash (ASan watches) and the scratch is never
 * overrun (it is allocated exactly). */
static void test_hostile(void **state)
{
	(void)state;
	const char alphabet[] = { '-', 'c', '=', ' ', '\\', 'x', 'e', '\t' };
	char in[8];
	struct proto_options_error err;
	for (int len = 0; len <= 6; len++) {
		int total = 1;
		for (int i = 0; i < len; i++)
			total *= (int)sizeof(alphabet);
		for (int k = 0; k < total; k++) {
			int v = k;
			for (int i = 0; i < len; i++) {
				in[i] = alphabet[v % (int)sizeof(alphabet)];
				v /= (int)sizeof(alphabet);
			}
			in[len] = '\0';
			size_t cap = 2 * ((size_t)len + 1);
			char *scratch = malloc(cap);
			assert_non_null(scratch);
			struct got g = { 0 };
			enum proto_result r = proto_options_parse(in, scratch, cap, collect, &g,
								  &err);
			assert_true(r == PROTO_OK || (r == PROTO_ERR && err.sqlstate != NULL));
			free(scratch);
		}
	}
	unsigned seed = 12345;
	for (int round = 0; round < 2000; round++) {
		char buf[300];
		int len = (int)(seed % 299);
		for (int i = 0; i < len; i++) {
			seed = seed * 1103515245u + 12345u;
			buf[i] = (char)(1 + (seed >> 16) % 255);
		}
		buf[len] = '\0';
		size_t cap = 2 * ((size_t)len + 1);
		char *scratch = malloc(cap);
		assert_non_null(scratch);
		(void)proto_options_parse(buf, scratch, cap, NULL, NULL, &err);
		free(scratch);
		seed = seed * 1103515245u + 12345u;
	}
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_setting_forms),
		cmocka_unit_test(test_white_space_and_escapes),
		cmocka_unit_test(test_postgres_errors),
		cmocka_unit_test(test_settings_before_an_error_are_passed),
		cmocka_unit_test(test_callback_can_stop),
		cmocka_unit_test(test_scratch_too_small),
		cmocka_unit_test(test_many_settings_and_long_values),
		cmocka_unit_test(test_hostile),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
