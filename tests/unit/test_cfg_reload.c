/* cfg_reload_prepare: a reload's snapshot fitted to the running one. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <string.h>
#include <cmocka.h>

#include "config/cfg.h"

static char notes[2048];

static void note(void *arg, const char *msg)
{
	(void)arg;
	strncat(notes, msg, sizeof(notes) - strlen(notes) - 2);
	strcat(notes, "\n");
}

static struct cfg *load(const char *text)
{
	char err[512];
	struct cfg *c = NULL;
	if (cfg_load_buffer("t.ini", text, strlen(text), NULL, &c, err, sizeof(err)) != 0)
		fail_msg("load: %s", err);
	return c;
}

/* Shards keep their index; a removed one stays, marked; new ones follow. */
static void test_shards_aligned(void **state)
{
	(void)state;
	struct cfg *old = load("[shard.a]\nuser = u\n[shard.b]\nuser = u\n[shard.c]\nuser = u\n");
	struct cfg *nw = load("[shard.d]\nuser = u\n[shard.c]\nuser = u\nmax_connections = 7\n"
			      "[shard.a]\nuser = u\n");
	char err[256] = "";
	notes[0] = '\0';
	assert_int_equal(cfg_reload_prepare(old, nw, 8, note, NULL, err, sizeof(err)), 0);
	assert_int_equal(nw->n_shards, 4);
	assert_string_equal(nw->shards[0].name, "a");
	assert_string_equal(nw->shards[1].name, "b");
	assert_true(nw->shards[1].removed);
	assert_string_equal(nw->shards[2].name, "c");
	assert_int_equal(nw->shards[2].max_connections, 7);
	assert_false(nw->shards[2].removed);
	assert_string_equal(nw->shards[3].name, "d");
	assert_null(cfg_find_shard(nw, "b"));
	assert_non_null(strstr(notes, "shard b removed"));
	assert_non_null(strstr(notes, "shard d added"));

	/* b again takes its old index back; over the cap is refused */
	struct cfg *again = load("[shard.b]\nuser = u\n[shard.e]\nuser = u\n");
	assert_int_equal(cfg_reload_prepare(nw, again, 5, note, NULL, err, sizeof(err)), 0);
	assert_int_equal(again->n_shards, 5);
	assert_false(again->shards[1].removed);
	assert_true(again->shards[0].removed && again->shards[3].removed);
	assert_string_equal(again->shards[4].name, "e");
	struct cfg *over = load("[shard.f]\nuser = u\n");
	assert_int_equal(cfg_reload_prepare(again, over, 5, note, NULL, err, sizeof(err)), -1);
	assert_non_null(strstr(err, "restart"));
	cfg_free(over);
	cfg_free(again);
	cfg_free(nw);
	cfg_free(old);
}

/* Restart-only keys keep their values, [pgcrab]'s and a shard's identity;
 * the rest is the new file's. */
static void test_restart_keys_kept(void **state)
{
	(void)state;
	struct cfg *old = load("[pgcrab]\nport = 6000\n[shard.a]\nhost = h1\nuser = u\n"
			       "password = p1\n");
	struct cfg *nw = load("[pgcrab]\nport = 6001\nquery_wait_timeout = 9s\n[shard.a]\n"
			      "host = h2\nuser = u\npassword = p2\n");
	char err[256] = "";
	notes[0] = '\0';
	assert_int_equal(cfg_reload_prepare(old, nw, 4, note, NULL, err, sizeof(err)), 0);
	assert_int_equal(nw->port, 6000);
	assert_int_equal(nw->query_wait_timeout_ms, 9000);
	assert_string_equal(nw->shards[0].host, "h1");
	assert_string_equal(nw->shards[0].password, "p1"); /* goes with its server */
	assert_non_null(strstr(notes, "[pgcrab] port changed"));
	assert_non_null(strstr(notes, "[shard.a] host changed"));
	cfg_free(nw);

	/* the password alone changes live */
	nw = load("[pgcrab]\nport = 6000\n[shard.a]\nhost = h1\nuser = u\npassword = p3\n");
	notes[0] = '\0';
	assert_int_equal(cfg_reload_prepare(old, nw, 4, note, NULL, err, sizeof(err)), 0);
	assert_string_equal(nw->shards[0].password, "p3");
	assert_string_equal(notes, "");
	cfg_free(nw);
	cfg_free(old);
}

/* Sharded databases stay as they were, and so do their shards. */
static void test_sharding_kept(void **state)
{
	(void)state;
	struct cfg *old = load("[shard.a]\nuser = u\n[shard.b]\nuser = u\n"
			       "[database.app]\nshards = a, b\n");
	struct cfg *nw = load("[shard.a]\nuser = u\n[shard.c]\nuser = u\n"
			      "[database.app]\nshards = a, c\n");
	char err[256] = "";
	notes[0] = '\0';
	assert_int_equal(cfg_reload_prepare(old, nw, 4, note, NULL, err, sizeof(err)), 0);
	assert_int_equal(nw->n_databases, 1);
	assert_int_equal(nw->databases[0].shards[0], 0);
	assert_int_equal(nw->databases[0].shards[1], 1);
	assert_string_equal(nw->shards[1].name, "b");
	assert_false(nw->shards[1].removed); /* app routes to it */
	assert_string_equal(nw->shards[2].name, "c");
	assert_non_null(strstr(notes, "[database.*]"));
	cfg_free(nw);
	cfg_free(old);
}

/* trust is checked against the listeners at start only */
static void test_trust_refused(void **state)
{
	(void)state;
	struct cfg *old = load("[shard.a]\nuser = u\n");
	struct cfg *nw = load("[pgcrab]\nauth_type = trust\n[shard.a]\nuser = u\n");
	char err[256] = "";
	assert_int_equal(cfg_reload_prepare(old, nw, 4, note, NULL, err, sizeof(err)), -1);
	assert_non_null(strstr(err, "trust"));
	cfg_free(nw);
	cfg_free(old);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_shards_aligned),
		cmocka_unit_test(test_restart_keys_kept),
		cmocka_unit_test(test_sharding_kept),
		cmocka_unit_test(test_trust_refused),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
