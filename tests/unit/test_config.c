/* config/cfg.c: defaults, every error rule (each must name file, line, section
 * and key), durations, overrides. Files are written to a mkdtemp directory so
 * the real fopen/inih path is exercised. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "config/cfg.h"
#include "router/router.h"

static char tmpdir[64];
static char path[256];
static char err[512];

static int setup_dir(void **state)
{
	(void)state;
	strcpy(tmpdir, "/tmp/pgcrab-test-config-XXXXXX");
	return mkdtemp(tmpdir) ? 0 : -1;
}

static int remove_dir(void **state)
{
	(void)state;
	char p[300];
	snprintf(p, sizeof(p), "%s/t.ini", tmpdir);
	unlink(p);
	snprintf(p, sizeof(p), "%s/sub", tmpdir);
	rmdir(p);
	return rmdir(tmpdir);
}

static const char *write_ini(const char *text)
{
	snprintf(path, sizeof(path), "%s/t.ini", tmpdir);
	FILE *f = fopen(path, "w");
	assert_non_null(f);
	fputs(text, f);
	fclose(f);
	return path;
}

static struct cfg *load_ok(const char *text, const struct cfg_overrides *ov)
{
	struct cfg *cfg = NULL;
	err[0] = '\0';
	int rc = cfg_load(write_ini(text), ov, &cfg, err, sizeof(err));
	if (rc != 0)
		fail_msg("unexpected error: %s", err);
	assert_non_null(cfg);
	return cfg;
}

/* Asserts the load fails with "PATH:LINE: WHERE ..." and that WHY appears. */
static void expect_error(const char *text, int line, const char *where, const char *why)
{
	struct cfg *cfg = (struct cfg *)1;
	int rc = cfg_load(write_ini(text), NULL, &cfg, err, sizeof(err));
	assert_int_equal(rc, -1);
	assert_null(cfg);
	char prefix[512];
	snprintf(prefix, sizeof(prefix), "%s:%d: %s", path, line, where);
	if (strncmp(err, prefix, strlen(prefix)) != 0 || !strstr(err, why))
		fail_msg("got      '%s'\nexpected '%s ... %s'", err, prefix, why);
}

static void expect_override_error(const char *text, const struct cfg_overrides *ov,
				  const char *expect)
{
	struct cfg *cfg = (struct cfg *)1;
	int rc = cfg_load(write_ini(text), ov, &cfg, err, sizeof(err));
	assert_int_equal(rc, -1);
	assert_null(cfg);
	assert_string_equal(err, expect);
}

/* ---- defaults and a full file ---- */

static void test_empty_file_gives_defaults(void **state)
{
	(void)state;
	struct cfg *c = load_ok("", NULL);
	assert_string_equal(c->path, path);
	assert_string_equal(c->host, "127.0.0.1");
	assert_int_equal(c->port, 6432);
	assert_string_equal(c->unix_socket_dir, "");
	assert_int_equal(c->workers, 0);
	assert_int_equal(c->pool_mode, CFG_POOL_TRANSACTION);
	assert_int_equal(c->auth_type, CFG_AUTH_PLAIN);
	assert_int_equal(c->log_level, CFG_LOG_INFO);
	assert_int_equal(c->max_client_conn, 10000);
	assert_int_equal(c->max_packet_size, 1 << 30);
	assert_int_equal(c->n_admin_users, 1);
	assert_string_equal(c->admin_users[0], "pgcrab");
	assert_int_equal(c->metrics_port, 0);
	assert_int_equal(c->cpu_affinity, CFG_AFFINITY_OFF);
	assert_true(c->cancel_on_client_exit);
	assert_int_equal(c->server_connect_timeout_ms, 5000);
	assert_int_equal(c->query_wait_timeout_ms, 30000);
	assert_int_equal(c->client_login_timeout_ms, 10000);
	assert_int_equal(c->client_idle_timeout_ms, 0);
	assert_int_equal(c->idle_transaction_timeout_ms, 0);
	assert_int_equal(c->server_idle_timeout_ms, 60000);
	assert_int_equal(c->server_lifetime_ms, 3600000);
	assert_int_equal(c->shutdown_timeout_ms, 30000);
	assert_int_equal(c->n_shards, 0);
	assert_int_equal(c->n_users, 0);
	cfg_free(c);
}

static void test_shard_defaults(void **state)
{
	(void)state;
	struct cfg *c = load_ok("[shard.s1]\nuser = u\n", NULL);
	assert_int_equal(c->n_shards, 1);
	const struct cfg_shard *s = &c->shards[0];
	assert_string_equal(s->name, "s1");
	assert_string_equal(s->host, "127.0.0.1");
	assert_int_equal(s->port, 5432);
	assert_string_equal(s->database, "s1");
	assert_string_equal(s->user, "u");
	assert_string_equal(s->password, "");
	assert_int_equal(s->min_connections, 0);
	assert_int_equal(s->max_connections, 20);
	cfg_free(c);
}

static const char spec_example[] = "[pgcrab]\n"
				   "host = 0.0.0.0\n"
				   "port = 6433\n"
				   "workers = 4\n"
				   "pool_mode = session        ; transaction | session\n"
				   "auth_type = plain\n"
				   "max_client_conn = 500\n"
				   "admin_users = pgcrab, admin ,root\n"
				   "metrics_port = 9187\n"
				   "server_connect_timeout = 250ms\n"
				   "query_wait_timeout = 2min\n"
				   "client_login_timeout = 1h\n"
				   "client_idle_timeout = 7\n"
				   "idle_transaction_timeout = 0\n"
				   "server_idle_timeout = 60s\n"
				   "server_lifetime = 3600s\n"
				   "shutdown_timeout = 30s\n"
				   "log_level = debug\n"
				   "\n"
				   "# a hash comment\n"
				   "[shard.pgcrab_shard_1]         ; one section per backend\n"
				   "host = db1.internal\n"
				   "port = 5433\n"
				   "database = backend_db\n"
				   "user = mr_krabs\n"
				   "password = i_love_money\n"
				   "min_connections = 5\n"
				   "max_connections = 20\n"
				   "\n"
				   "[shard.second]\n"
				   "user = plankton\n"
				   "\n"
				   "[user.pgcrab]\n"
				   "password = pgcrab\n"
				   "[user.spongebob]\n"
				   "password = krabby patty\n";

static void test_full_file(void **state)
{
	(void)state;
	struct cfg *c = load_ok(spec_example, NULL);
	assert_string_equal(c->host, "0.0.0.0");
	assert_int_equal(c->port, 6433);
	assert_int_equal(c->workers, 4);
	assert_int_equal(c->pool_mode, CFG_POOL_SESSION);
	assert_int_equal(c->max_client_conn, 500);
	assert_int_equal(c->n_admin_users, 3);
	assert_string_equal(c->admin_users[0], "pgcrab");
	assert_string_equal(c->admin_users[1], "admin");
	assert_string_equal(c->admin_users[2], "root");
	assert_int_equal(c->metrics_port, 9187);
	assert_int_equal(c->server_connect_timeout_ms, 250);
	assert_int_equal(c->query_wait_timeout_ms, 120000);
	assert_int_equal(c->client_login_timeout_ms, 3600000);
	assert_int_equal(c->client_idle_timeout_ms, 7000);
	assert_int_equal(c->log_level, CFG_LOG_DEBUG);
	assert_int_equal(c->n_shards, 2);
	const struct cfg_shard *s = cfg_find_shard(c, "pgcrab_shard_1");
	assert_non_null(s);
	assert_string_equal(s->host, "db1.internal");
	assert_int_equal(s->port, 5433);
	assert_string_equal(s->database, "backend_db");
	assert_string_equal(s->user, "mr_krabs");
	assert_string_equal(s->password, "i_love_money");
	assert_int_equal(s->min_connections, 5);
	assert_int_equal(s->max_connections, 20);
	s = cfg_find_shard(c, "second");
	assert_non_null(s);
	assert_string_equal(s->database, "second");
	assert_null(cfg_find_shard(c, "third"));
	assert_null(cfg_find_shard(c, "SECOND")); /* names are case-sensitive */
	assert_int_equal(c->n_users, 2);
	const struct cfg_user *u = cfg_find_user(c, "spongebob");
	assert_non_null(u);
	assert_string_equal(u->password, "krabby patty");
	assert_non_null(cfg_find_user(c, "pgcrab"));
	assert_null(cfg_find_user(c, "patrick"));
	cfg_free(c);
}

static void test_many_sections(void **state)
{
	(void)state;
	/* more than the initial array capacity, to exercise growth */
	char text[8192] = "";
	for (int i = 0; i < 40; i++) {
		char part[128];
		snprintf(part, sizeof(part),
			 "[shard.s%d]\nuser = u%d\n[user.u%d]\npassword = p%d\n", i, i, i, i);
		strcat(text, part);
	}
	struct cfg *c = load_ok(text, NULL);
	assert_int_equal(c->n_shards, 40);
	assert_int_equal(c->n_users, 40);
	assert_string_equal(cfg_find_shard(c, "s39")->user, "u39");
	assert_string_equal(cfg_find_user(c, "u17")->password, "p17");
	cfg_free(c);
}

static void test_syntax_leniency(void **state)
{
	(void)state;
	/* keys are case-insensitive, indentation is not a continuation line,
	 * "key: value" is accepted, inline ';' comments and a BOM are stripped,
	 * [ pgcrab ] is trimmed, enum values are case-insensitive */
	struct cfg *c = load_ok("\xEF\xBB\xBF[ pgcrab ]\n"
				"Port = 7000\n"
				"    workers = 3   ; indented\n"
				"log_level: WARN\n"
				"admin_users =\n"
				"[shard.a]\n"
				"\tuser = u\n"
				"\tpassword = p;not a comment\n",
				NULL);
	assert_int_equal(c->port, 7000);
	assert_int_equal(c->workers, 3);
	assert_int_equal(c->log_level, CFG_LOG_WARN);
	assert_int_equal(c->n_admin_users, 0);
	assert_string_equal(c->shards[0].user, "u");
	assert_string_equal(c->shards[0].password, "p;not a comment");
	cfg_free(c);
}

static void test_long_section_name(void **state)
{
	(void)state;
	/* inih itself truncates section names at 50 bytes; we must not */
	const char *name = "a_shard_with_a_rather_long_name_that_goes_past_fifty_bytes";
	char text[256];
	snprintf(text, sizeof(text), "[shard.%s]\nuser = u\n", name);
	struct cfg *c = load_ok(text, NULL);
	assert_non_null(cfg_find_shard(c, name));
	assert_string_equal(c->shards[0].database, name);
	cfg_free(c);
}

/* The shipped example must stay valid. __FILE__ is relative to the directory
 * make ran in (the repository root); elsewhere the test is skipped. */
static void test_example_file_loads(void **state)
{
	(void)state;
	const char *slash = strrchr(__FILE__, '/');
	char p[512];
	snprintf(p, sizeof(p), "%.*s/../../pgcrab.ini.example", slash ? (int)(slash - __FILE__) : 1,
		 slash ? __FILE__ : ".");
	if (access(p, R_OK) != 0)
		skip();
	struct cfg *c = NULL;
	if (cfg_load(p, NULL, &c, err, sizeof(err)) != 0)
		fail_msg("%s", err);
	const struct cfg_shard *s = cfg_find_shard(c, "pgcrab_shard_1");
	assert_non_null(s);
	assert_string_equal(s->user, "mr_krabs");
	assert_string_equal(s->password, "i_love_money");
	assert_int_equal(s->min_connections, 5);
	assert_string_equal(cfg_find_user(c, "pgcrab")->password, "pgcrab");
	assert_int_equal(c->port, 6432);
	cfg_free(c);
}

static void test_enum_names(void **state)
{
	(void)state;
	assert_string_equal(cfg_pool_mode_name(CFG_POOL_TRANSACTION), "transaction");
	assert_string_equal(cfg_pool_mode_name(CFG_POOL_SESSION), "session");
	assert_string_equal(cfg_log_level_name(CFG_LOG_ERROR), "error");
	assert_string_equal(cfg_log_level_name(CFG_LOG_DEBUG), "debug");
	assert_string_equal(cfg_auth_type_name(CFG_AUTH_PLAIN), "plain");
}

/* ---- durations ---- */

static void test_duration_table(void **state)
{
	(void)state;
	static const struct {
		const char *text;
		int ok;
		uint64_t ms;
	} cases[] = {
		{ "250ms", 1, 250 },
		{ "5s", 1, 5000 },
		{ "2min", 1, 120000 },
		{ "1h", 1, 3600000 },
		{ "7", 1, 7000 },
		{ "0", 1, 0 },
		{ "0ms", 1, 0 },
		{ "5 s", 1, 5000 },
		{ " 30s ", 1, 30000 },
		{ "10MIN", 1, 600000 },
		{ "18446744073709551615ms", 1, UINT64_MAX },
		{ "", 0, 0 },
		{ "s", 0, 0 },
		{ "-5s", 0, 0 },
		{ "-0", 0, 0 },
		{ "+5s", 0, 0 },
		{ "abc", 0, 0 },
		{ "1.5s", 0, 0 },
		{ "5m", 0, 0 },
		{ "5x", 0, 0 },
		{ "5sec", 0, 0 },
		{ "5s5", 0, 0 },
		{ "5 5s", 0, 0 },
		{ "0x10", 0, 0 },
		{ "18446744073709551615", 0, 0 },   /* seconds: overflows in ms */
		{ "18446744073709551616ms", 0, 0 }, /* overflows the number itself */
		{ "99999999999999999999999h", 0, 0 },
	};
	for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
		uint64_t ms = 12345;
		int rc = cfg_parse_duration_ms(cases[i].text, &ms);
		if (cases[i].ok) {
			if (rc != 0 || ms != cases[i].ms)
				fail_msg("'%s': rc %d ms %llu", cases[i].text, rc,
					 (unsigned long long)ms);
		} else if (rc != -1 || ms != 12345) {
			fail_msg("'%s' should be rejected", cases[i].text);
		}
	}
	uint64_t ms;
	assert_int_equal(cfg_parse_duration_ms(NULL, &ms), -1);
}

static void test_duration_errors_in_file(void **state)
{
	(void)state;
	expect_error("[pgcrab]\nquery_wait_timeout = -5s\n", 2,
		     "[pgcrab] query_wait_timeout: ", "'-5s' is negative");
	expect_error("[pgcrab]\n\nshutdown_timeout = soon\n", 3,
		     "[pgcrab] shutdown_timeout: ", "is not a duration");
	expect_error("[pgcrab]\nserver_lifetime = 5m\n", 2,
		     "[pgcrab] server_lifetime: ", "ambiguous unit m (use min or ms)");
	expect_error("[pgcrab]\nserver_lifetime = 5y\n", 2,
		     "[pgcrab] server_lifetime: ", "unknown unit");
	expect_error("[pgcrab]\nclient_idle_timeout = 99999999999999999999\n", 2,
		     "[pgcrab] client_idle_timeout: ", "is too large");
	/* fits in 64 bits but is far beyond any sane timeout */
	expect_error("[pgcrab]\nclient_idle_timeout = 1000000h\n", 2,
		     "[pgcrab] client_idle_timeout: ", "'1000000h' is too large (at most 876000h)");
}

/* ---- every error rule ---- */

static void test_missing_file(void **state)
{
	(void)state;
	char p[300];
	snprintf(p, sizeof(p), "%s/nope.ini", tmpdir);
	struct cfg *cfg = (struct cfg *)1;
	assert_int_equal(cfg_load(p, NULL, &cfg, err, sizeof(err)), -1);
	assert_null(cfg);
	char expect[400];
	snprintf(expect, sizeof(expect), "cannot open %s: No such file or directory", p);
	assert_string_equal(err, expect);
}

static void test_directory_as_file(void **state)
{
	(void)state;
	char p[300];
	snprintf(p, sizeof(p), "%s/sub", tmpdir);
	mkdir(p, 0700);
	struct cfg *cfg = (struct cfg *)1;
	assert_int_equal(cfg_load(p, NULL, &cfg, err, sizeof(err)), -1);
	assert_null(cfg);
	assert_non_null(strstr(err, p));
	assert_non_null(strstr(err, "Is a directory"));
}

static void test_unknown_section(void **state)
{
	(void)state;
	expect_error("[pgcrab]\nport = 1\n[pgbouncer]\n", 3, "[pgbouncer]: ", "unknown section");
	expect_error("[shard]\nuser = u\n", 1, "[shard]: ", "unknown section");
	expect_error("; c\n[database]\nshards = a\n", 2, "[database]: ",
		     "unknown section (expected [pgcrab], [shard.NAME], [user.NAME], "
		     "[database.NAME] or [sharded_table.NAME])");
}

static void test_unknown_key(void **state)
{
	(void)state;
	expect_error("[pgcrab]\nport = 1\nprot = 2\n", 3, "[pgcrab] prot: ", "unknown key");
	/* a key from another kind of section gets a hint */
	expect_error("[pgcrab]\nuser = x\n", 2,
		     "[pgcrab] user: ", "unknown key (it belongs in [shard.NAME])");
	expect_error("[shard.a]\nuser = u\npool_mode = session\n", 3,
		     "[shard.a] pool_mode: ", "unknown key (it belongs in [pgcrab])");
	expect_error("[user.bob]\npassword = x\nuser = bob\n", 3,
		     "[user.bob] user: ", "unknown key");
	expect_error("[pgcrab]\ntls_cert_file = /etc/cert.pem\n", 2,
		     "[pgcrab] tls_cert_file: ", "unknown key");
	expect_error("[pgcrab]\n= 5\n", 2, "[pgcrab]: ", "missing key name");
}

/* TLS keys: defaults, what each mode needs (at the mode's line), the
 * shards' inherited settings. */
static void test_tls(void **state)
{
	(void)state;
	struct cfg *cfg = load_ok("[pgcrab]\n[shard.a]\nuser = u\n", NULL);
	assert_int_equal(cfg->client_tls_mode, CFG_TLS_DISABLE);
	assert_int_equal(cfg->server_tls_mode, CFG_TLS_PREFER);
	assert_int_equal(cfg->shards[0].server_tls_mode, CFG_TLS_PREFER);
	assert_string_equal(cfg->shards[0].server_tls_ca_file, "");
	assert_int_equal(cfg_tls_protocols(cfg->client_tls_protocols), CFG_TLS_V1_2 | CFG_TLS_V1_3);
	cfg_free(cfg);
	cfg = load_ok("[pgcrab]\nserver_tls_mode = verify-ca\nserver_tls_ca_file = /ca.pem\n"
		      "[shard.a]\nuser = u\n[shard.b]\nuser = u\nserver_tls_mode = disable\n"
		      "[shard.c]\nuser = u\nserver_tls_mode = verify-full\n"
		      "server_tls_ca_file = /c.pem\n",
		      NULL);
	assert_int_equal(cfg->shards[0].server_tls_mode, CFG_TLS_VERIFY_CA);
	assert_string_equal(cfg->shards[0].server_tls_ca_file, "/ca.pem");
	assert_int_equal(cfg->shards[1].server_tls_mode, CFG_TLS_DISABLE);
	assert_int_equal(cfg->shards[2].server_tls_mode, CFG_TLS_VERIFY_FULL);
	assert_string_equal(cfg->shards[2].server_tls_ca_file, "/c.pem");
	cfg_free(cfg);
	expect_error("[pgcrab]\nport = 1\nclient_tls_mode = require\nclient_tls_cert_file = /c\n",
		     3, "[pgcrab] client_tls_mode: ",
		     "require needs client_tls_cert_file and client_tls_key_file");
	expect_error("[pgcrab]\nclient_tls_mode = verify-ca\nclient_tls_cert_file = /c\n"
		     "client_tls_key_file = /k\n",
		     2, "[pgcrab] client_tls_mode: ", "verify-ca needs client_tls_ca_file");
	expect_error("[pgcrab]\nclient_tls_mode = sometimes\n", 2,
		     "[pgcrab] client_tls_mode: ", "");
	expect_error("[pgcrab]\nserver_tls_mode = allow\n", 2, "[pgcrab] server_tls_mode: ",
		     "allow is not offered for servers; use prefer or disable");
	expect_error("[pgcrab]\nclient_tls_protocols = tlsv1.1\n", 2,
		     "[pgcrab] client_tls_protocols: ", "older versions are not offered");
	expect_error("[pgcrab]\nserver_tls_cert_file = /c\n", 2, "[pgcrab] server_tls_cert_file",
		     "go together");
	expect_error("[pgcrab]\n[shard.a]\nuser = u\nserver_tls_mode = verify-full\n", 4,
		     "[shard.a] server_tls_mode: ", "verify-full needs server_tls_ca_file");
	expect_error("[pgcrab]\nserver_tls_mode = verify-ca\n[shard.a]\nuser = u\n", 2,
		     "[shard.a] server_tls_mode: ", "verify-ca needs server_tls_ca_file");
}

static void test_key_outside_section(void **state)
{
	(void)state;
	expect_error("; leading comment\nport = 6432\n[pgcrab]\n", 2,
		     "port: ", "key outside of any section");
}

static void test_duplicate_key(void **state)
{
	(void)state;
	expect_error("[pgcrab]\nport = 1\nhost = h\nport = 2\n", 4,
		     "[pgcrab] port: ", "duplicate key, first set at line 2");
	/* case-insensitive keys collide too */
	expect_error("[shard.a]\nuser = u\nUSER = v\n", 3,
		     "[shard.a] user: ", "duplicate key, first set at line 2");
	expect_error("[user.a]\npassword = x\n\npassword = y\n", 4,
		     "[user.a] password: ", "duplicate key, first set at line 2");
}

static void test_duplicate_section(void **state)
{
	(void)state;
	expect_error("[shard.a]\nuser = u\n[shard.b]\nuser = u\n[shard.a]\nport = 5\n", 5,
		     "[shard.a]: ", "duplicate section, first defined at line 1");
	expect_error("[user.bob]\npassword = x\n[user.bob]\n", 3,
		     "[user.bob]: ", "duplicate section, first defined at line 1");
	expect_error("[pgcrab]\n[shard.a]\nuser = u\n[pgcrab]\n", 4,
		     "[pgcrab]: ", "duplicate section, first defined at line 1");
	/* a shard and a user may share a name */
	struct cfg *c = load_ok("[shard.x]\nuser = x\n[user.x]\npassword = x\n", NULL);
	cfg_free(c);
}

/* [database.*] may name shards defined after it, and [sharded_table.*] a
 * database defined after it: both are resolved once the file is read. */
static void test_sharding_sections(void **state)
{
	(void)state;
	struct cfg *c = load_ok("[sharded_table.Sales.Orders]\n"
				"database = app\n"
				"columns = Tenant_ID, id\n"
				"types = int8, TEXT\n"
				"[sharded_table.accounts]\n"
				"database = app\n"
				"columns = id\n"
				"types = uuid\n"
				"[database.app]\n"
				"shards = s2, s0 ,s1\n"
				"cross_shard_queries = error\n"
				"[database.other]\n"
				"shards = s1\n"
				"cross_shard_writes = error\n"
				"[shard.s0]\nuser = u\n"
				"[shard.s1]\nuser = u\n"
				"[shard.s2]\nuser = u\n",
				NULL);
	assert_int_equal(c->n_databases, 2);
	const struct cfg_database *app = cfg_find_database(c, "app");
	assert_non_null(app);
	assert_ptr_equal(app, &c->databases[0]);
	assert_int_equal(app->n_shards, 3);
	/* the order given is the shard number */
	assert_string_equal(c->shards[app->shards[0]].name, "s2");
	assert_string_equal(c->shards[app->shards[1]].name, "s0");
	assert_string_equal(c->shards[app->shards[2]].name, "s1");
	assert_true(app->cross_reads_error);
	assert_false(app->cross_writes_error);
	const struct cfg_database *other = cfg_find_database(c, "other");
	assert_int_equal(other->n_shards, 1);
	assert_string_equal(c->shards[other->shards[0]].name, "s1");
	assert_false(other->cross_reads_error);
	assert_true(other->cross_writes_error);
	assert_null(cfg_find_database(c, "APP")); /* database names are case-sensitive */
	assert_null(cfg_find_database(c, "s1"));

	assert_int_equal(c->n_sharded_tables, 2);
	const struct cfg_sharded_table *t = &c->sharded_tables[0];
	assert_string_equal(t->schema, "sales"); /* names are lower-cased */
	assert_string_equal(t->name, "orders");
	assert_int_equal(t->database, 0);
	assert_int_equal(t->n_cols, 2);
	assert_string_equal(t->cols[0], "tenant_id");
	assert_string_equal(t->cols[1], "id");
	assert_int_equal(t->types[0], ROUTER_INT8);
	assert_int_equal(t->types[1], ROUTER_TEXT);
	t = &c->sharded_tables[1];
	assert_null(t->schema); /* any schema */
	assert_string_equal(t->name, "accounts");
	assert_int_equal(t->n_cols, 1);
	assert_int_equal(t->types[0], ROUTER_UUID);
	cfg_free(c);

	/* every type by name; the most shards a database may have */
	char text[8192];
	/* a line is too short for 64 names: shards may go on over several */
	size_t n = (size_t)snprintf(text, sizeof(text), "[database.big]");
	for (int i = 0; i < ROUTER_MAX_SHARDS; i++)
		n += (size_t)snprintf(text + n, sizeof(text) - n, "%ss%d",
				      i % 8 ? ", " : "\nshards = ", i);
	n += (size_t)snprintf(text + n, sizeof(text) - n,
			      "\n[sharded_table.t]\ndatabase = big\n"
			      "columns = a, b, c, d, e, f, g\n"
			      "types = int2, int4, int8, text, varchar, bpchar, uuid\n");
	for (int i = 0; i < ROUTER_MAX_SHARDS; i++)
		n += (size_t)snprintf(text + n, sizeof(text) - n, "[shard.s%d]\nuser = u\n", i);
	assert_true(n < sizeof(text));
	c = load_ok(text, NULL);
	assert_int_equal(c->databases[0].n_shards, ROUTER_MAX_SHARDS);
	for (int i = 0; i < ROUTER_MAX_SHARDS; i++)
		assert_int_equal(c->databases[0].shards[i], i);
	for (int i = 0; i < 7; i++)
		assert_int_equal(c->sharded_tables[0].types[i], i);
	cfg_free(c);
}

static void test_sharding_errors(void **state)
{
	(void)state;
	const char *shards = "[shard.a]\nuser = u\n[shard.b]\nuser = u\n";
	char text[4096];
#define WITH_SHARDS(body) (snprintf(text, sizeof(text), "%s%s", shards, body), text)
	/* lines 1-4 are the two shards */
	expect_error(WITH_SHARDS("[database.app]\nshards = a, c\n"), 6,
		     "[database.app] shards: ", "there is no [shard.c]");
	expect_error(WITH_SHARDS("[database.app]\nshards = a, b, a\n"), 6,
		     "[database.app] shards: ", "a is listed twice");
	/* a later shards line adds to the list; an error points at its first line */
	expect_error(WITH_SHARDS("[database.app]\nshards = a, b\n; more\nshards = a\n"), 6,
		     "[database.app] shards: ", "a is listed twice");
	expect_error(WITH_SHARDS("[database.app]\nshards = a, b\nshards = b,\n"), 7,
		     "[database.app] shards: ", "empty name in list");
	expect_error(WITH_SHARDS("[database.app]\nshards =\n"), 6,
		     "[database.app] shards: ", "names no shard");
	expect_error(WITH_SHARDS("[database.app]\ncross_shard_queries = allow\n"), 5,
		     "[database.app] shards: ", "missing (required)");
	expect_error(WITH_SHARDS("[database.app]\nshards = a\ncross_shard_queries = maybe\n"), 7,
		     "[database.app] cross_shard_queries: ", "'maybe' is not one of allow, error");
	expect_error(WITH_SHARDS("[database.app]\nshards = a\ncross_shard_writes = 3pc\n"), 7,
		     "[database.app] cross_shard_writes: ", "'3pc' is not one of 2pc, error");
	expect_error(WITH_SHARDS("[database.a]\nshards = b\n"), 5,
		     "[database.a]: ", "a [shard.a] has the same name");
	expect_error(WITH_SHARDS("[database.app]\nshards = a\n[database.app]\nshards = b\n"), 7,
		     "[database.app]: ", "duplicate section, first defined at line 5");
	expect_error("[database.pgcrab]\nshards = a\n", 1,
		     "[database.pgcrab]: ", "reserved for the admin console");
	expect_error("[database.]\n", 1, "[database.]: ", "the database name is empty");
	expect_error(WITH_SHARDS("[database.app]\nshards = a\nshard = b\n"), 7,
		     "[database.app] shard: ", "unknown key");

	/* one shard more than a shard set holds */
	size_t n = (size_t)snprintf(text, sizeof(text), "[database.big]");
	for (int i = 0; i <= ROUTER_MAX_SHARDS; i++)
		n += (size_t)snprintf(text + n, sizeof(text) - n, "%ss%d",
				      i % 8 ? ", " : "\nshards = ", i);
	n += (size_t)snprintf(text + n, sizeof(text) - n, "\n");
	for (int i = 0; i <= ROUTER_MAX_SHARDS; i++)
		n += (size_t)snprintf(text + n, sizeof(text) - n, "[shard.s%d]\nuser = u\n", i);
	assert_true(n < sizeof(text));
	expect_error(text, 2, "[database.big] shards: ", "65 shards, at most 64");

	const char *db = "[shard.a]\nuser = u\n[database.app]\nshards = a\n";
#define WITH_DB(body) (snprintf(text, sizeof(text), "%s%s", db, body), text)
	/* lines 1-4 are the shard and the database */
	expect_error(WITH_DB("[sharded_table.t]\ndatabase = shop\ncolumns = id\ntypes = int8\n"), 6,
		     "[sharded_table.t] database: ", "there is no [database.shop]");
	expect_error(WITH_DB("[sharded_table.t]\ndatabase = a\ncolumns = id\ntypes = int8\n"), 6,
		     "[sharded_table.t] database: ", "there is no [database.a]");
	expect_error(WITH_DB("[sharded_table.t]\ndatabase = app\ncolumns = a, b\ntypes = int8\n"),
		     8, "[sharded_table.t] types: ", "1 types for 2 columns");
	expect_error(WITH_DB("[sharded_table.t]\ndatabase = app\ncolumns = a\ntypes = int8, int4\n"),
		     8, "[sharded_table.t] types: ", "2 types for 1 columns");
	expect_error(WITH_DB("[sharded_table.t]\ndatabase = app\ncolumns = a\ntypes = bigint\n"), 8,
		     "[sharded_table.t] types: ",
		     "'bigint' is not one of int2, int4, int8, text, varchar, bpchar, uuid");
	expect_error(WITH_DB("[sharded_table.t]\ndatabase = app\ncolumns = a, A\n"
			     "types = int8, int8\n"),
		     7, "[sharded_table.t] columns: ", "a is listed twice");
	expect_error(WITH_DB("[sharded_table.t]\ndatabase = app\ncolumns =\ntypes =\n"), 7,
		     "[sharded_table.t] columns: ", "names no column");
	expect_error(WITH_DB("[sharded_table.t]\ndatabase = app\n"
			     "columns = a, b, c, d, e, f, g, h, i\n"
			     "types = int8, int8, int8, int8, int8, int8, int8, int8, int8\n"),
		     7, "[sharded_table.t] columns: ", "9 columns, at most 8");
	expect_error(WITH_DB("[sharded_table.t]\ndatabase = app\ntypes = int8\n"), 5,
		     "[sharded_table.t] columns: ", "missing (required)");
	expect_error(WITH_DB("[sharded_table.t]\ncolumns = a\ntypes = int8\n"), 5,
		     "[sharded_table.t] database: ", "missing (required)");
	expect_error(WITH_DB("[sharded_table.t]\ndatabase = app\ncolumns = a\n"), 5,
		     "[sharded_table.t] types: ", "missing (required)");
	/* the same table twice, however it is spelled */
	expect_error(WITH_DB("[sharded_table.s.t]\ndatabase = app\ncolumns = a\ntypes = int8\n"
			     "[sharded_table.S.T]\ndatabase = app\ncolumns = b\ntypes = text\n"),
		     9, "[sharded_table.S.T]: ", "the table is already sharded at line 5");
	expect_error(WITH_DB("[sharded_table.a.b.c]\n"), 5,
		     "[sharded_table.a.b.c]: ", "expected TABLE or SCHEMA.TABLE");
	expect_error(WITH_DB("[sharded_table..t]\n"), 5,
		     "[sharded_table..t]: ", "the schema or the table name is empty");
	expect_error(WITH_DB("[sharded_table.s.]\n"), 5,
		     "[sharded_table.s.]: ", "the schema or the table name is empty");
	/* of the problems found once the file is read, the first in it wins */
	expect_error("[sharded_table.t]\ndatabase = nowhere\ncolumns = a\ntypes = int8\n"
		     "[database.app]\nshards = x\n",
		     2, "[sharded_table.t] database: ", "there is no [database.nowhere]");
#undef WITH_SHARDS
#undef WITH_DB
}

static void test_malformed_lines(void **state)
{
	(void)state;
	expect_error("[pgcrab]\nport = 6432\nthis line has no equals sign\n", 3, "malformed line",
		     "expected [section], key = value or a comment");
	expect_error("[pgcrab\nport = 1\n", 1, "malformed section header", "no closing ']'");
	expect_error("[pgcrab ; oops]\n", 1, "malformed section header", "no closing ']'");
	expect_error("\n\n[pgcrab] port = 1\n", 3, "malformed section header", "text after ']'");
	expect_error("[shard.]\nuser = u\n", 1, "[shard.]: ", "the shard name is empty");
	expect_error("[user.]\n", 1, "[user.]: ", "the user name is empty");
}

static void test_malformed_line_wins_over_later_error(void **state)
{
	(void)state;
	/* inih keeps going after a line it cannot parse; the first problem in
	 * the file is the one reported */
	expect_error("[pgcrab]\njunk\nport = 0\n", 2, "malformed line", "expected");
}

static void test_long_line(void **state)
{
	(void)state;
	char text[1024];
	char pw[400];
	memset(pw, 'x', sizeof(pw) - 1);
	pw[sizeof(pw) - 1] = '\0';
	snprintf(text, sizeof(text), "[user.a]\npassword = %s\n", pw);
	expect_error(text, 2, "line is too long", "at most");
}

static void test_bad_int(void **state)
{
	(void)state;
	expect_error("[pgcrab]\nport = abc\n", 2, "[pgcrab] port: ", "'abc' is not a whole number");
	expect_error("[pgcrab]\nport = 64 32\n", 2, "[pgcrab] port: ", "is not a whole number");
	expect_error("[pgcrab]\nmax_client_conn = 1e4\n", 2,
		     "[pgcrab] max_client_conn: ", "is not a whole number");
	expect_error("[pgcrab]\nworkers =\n", 2, "[pgcrab] workers: ", "'' is not a whole number");
	expect_error("[shard.a]\nuser = u\nmin_connections = 5.5\n", 3,
		     "[shard.a] min_connections: ", "not a whole number");
}

static void test_port_range(void **state)
{
	(void)state;
	expect_error("[pgcrab]\nport = 70000\n", 2,
		     "[pgcrab] port: ", "70000 is out of range 1..65535");
	expect_error("[pgcrab]\nport = 0\n", 2, "[pgcrab] port: ", "0 is out of range 1..65535");
	expect_error("[pgcrab]\nport = 99999999999999999999999\n", 2,
		     "[pgcrab] port: ", "is out of range 1..65535");
	expect_error("[shard.a]\nuser = u\nport = -1\n", 3,
		     "[shard.a] port: ", "-1 is out of range 1..65535");
	expect_error("[pgcrab]\nmetrics_port = 65536\n", 2,
		     "[pgcrab] metrics_port: ", "out of range 0..65535");
}

/* unix_socket_dir: absolute, and short enough that DIR/.s.PGSQL.65535
 * fits a socket address (108 bytes with its NUL) */
static void test_unix_socket_dir(void **state)
{
	(void)state;
	struct cfg *c = load_ok("[pgcrab]\nunix_socket_dir = /run/pgcrab\n", NULL);
	assert_string_equal(c->unix_socket_dir, "/run/pgcrab");
	cfg_free(c);
	expect_error("[pgcrab]\nunix_socket_dir = run\n", 2,
		     "[pgcrab] unix_socket_dir: ", "must be an absolute directory");
	char text[300], dir[200];
	/* 92 bytes of directory + "/.s.PGSQL.65535" (15) = 107: the longest that fits */
	memset(dir, 'd', sizeof(dir));
	dir[0] = '/';
	dir[92] = '\0';
	snprintf(text, sizeof(text), "[pgcrab]\nunix_socket_dir = %s\n", dir);
	c = load_ok(text, NULL);
	cfg_free(c);
	dir[92] = 'd';
	dir[93] = '\0';
	snprintf(text, sizeof(text), "[pgcrab]\nunix_socket_dir = %s\n", dir);
	expect_error(text, 2, "[pgcrab] unix_socket_dir: ", "too long");
}

static void test_max_packet_size_range(void **state)
{
	(void)state;
	struct cfg *c = load_ok("[pgcrab]\nmax_packet_size = 65536\n", NULL);
	assert_int_equal(c->max_packet_size, 65536);
	cfg_free(c);
	expect_error("[pgcrab]\nmax_packet_size = 1073741825\n", 2,
		     "[pgcrab] max_packet_size: ", "out of range 1024..1073741824");
	expect_error("[pgcrab]\nmax_packet_size = 100\n", 2,
		     "[pgcrab] max_packet_size: ", "out of range 1024..1073741824");
}

static void test_workers_range(void **state)
{
	(void)state;
	expect_error("[pgcrab]\nworkers = -1\n", 2,
		     "[pgcrab] workers: ", "-1 is out of range 0..256");
	expect_error("[pgcrab]\nworkers = 257\n", 2,
		     "[pgcrab] workers: ", "257 is out of range 0..256");
	struct cfg *c = load_ok("[pgcrab]\nworkers = 256\n", NULL);
	assert_int_equal(c->workers, 256);
	cfg_free(c);
}

static void test_pool_sizes(void **state)
{
	(void)state;
	expect_error("[shard.a]\nuser = u\nmin_connections = 30\nmax_connections = 10\n", 3,
		     "[shard.a] min_connections: ", "30 is greater than max_connections 10");
	/* only min given: compared with the default max */
	expect_error("[shard.a]\nmin_connections = 21\nuser = u\n", 2,
		     "[shard.a] min_connections: ", "21 is greater than max_connections 20");
	/* only max given */
	expect_error("[shard.b]\nuser = u\n\nmax_connections = 0\n", 4,
		     "[shard.b] max_connections: ", "0 is out of range 1..");
	expect_error("[shard.b]\nuser = u\nmin_connections = -1\n", 3,
		     "[shard.b] min_connections: ", "-1 is out of range 0..");
	struct cfg *c = load_ok("[shard.a]\nuser = u\nmin_connections = 7\nmax_connections = 7\n",
				NULL);
	assert_int_equal(c->shards[0].min_connections, 7);
	cfg_free(c);
}

static void test_reserved_shard_name(void **state)
{
	(void)state;
	expect_error("[pgcrab]\n[shard.pgcrab]\nuser = u\n", 2,
		     "[shard.pgcrab]: ", "reserved for the admin console");
}

static void test_missing_required(void **state)
{
	(void)state;
	/* a shard without user is each client's own role; a password alone is
	 * a mistake */
	expect_error("[pgcrab]\n\n[shard.a]\nhost = h\npassword = p\n", 5,
		     "[shard.a] password: ", "given without user");
	struct cfg *c = load_ok("[shard.a]\nhost = h\n[shard.b]\n", NULL);
	assert_null(c->shards[0].user);
	assert_null(c->shards[1].user);
	cfg_free(c);
	expect_error("[user.bob]\n; nothing\n", 1, "[user.bob] password: ", "missing");
	/* of several problems found after parsing, the earliest line wins */
	expect_error("[shard.a]\nuser = u\nmin_connections = 50\n[user.x]\n[shard.b]\n", 3,
		     "[shard.a] min_connections: ", "greater than");
	expect_error("[user.x]\n[shard.a]\nuser = u\nmin_connections = 50\n", 1,
		     "[user.x] password: ", "missing");
}

static void test_roles_and_auth_query(void **state)
{
	(void)state;
	struct cfg *c = load_ok("[shard.a]\n", NULL);
	assert_int_equal(c->max_user_connections, 0);
	assert_string_equal(c->auth_user, "");
	assert_string_equal(c->auth_query,
			    "SELECT usename, passwd FROM pg_shadow WHERE usename = $1");
	assert_int_equal(c->auth_query_ttl_ms, 60000);
	cfg_free(c);
	c = load_ok("[pgcrab]\nmax_user_connections = 3\nauth_user = au\nauth_query_ttl = 2s\n"
		    "auth_query = SELECT u, p FROM t WHERE u = $1\n[shard.a]\n[user.au]\n"
		    "password = secret\n",
		    NULL);
	assert_int_equal(c->max_user_connections, 3);
	assert_string_equal(c->auth_user, "au");
	assert_string_equal(c->auth_query, "SELECT u, p FROM t WHERE u = $1");
	assert_int_equal(c->auth_query_ttl_ms, 2000);
	cfg_free(c);
	/* auth_user's password comes from its [user.NAME], as from PgBouncer's auth_file */
	expect_error("[pgcrab]\nauth_user = au\n[shard.a]\n", 2,
		     "[pgcrab] auth_user: ", "has no [user.au] section");
	expect_error("[pgcrab]\nmax_user_connections = -1\n", 2,
		     "[pgcrab] max_user_connections: ", "out of range");
	expect_error("[pgcrab]\nauth_query =\n", 2, "[pgcrab] auth_query: ", "must not be empty");
}

static void test_empty_strings(void **state)
{
	(void)state;
	expect_error("[user.bob]\npassword =\n", 2, "[user.bob] password: ", "must not be empty");
	expect_error("[shard.a]\nuser =\n", 2, "[shard.a] user: ", "must not be empty");
	expect_error("[shard.a]\nuser = u\ndatabase = \n", 3,
		     "[shard.a] database: ", "must not be empty");
	expect_error("[pgcrab]\nhost =\n", 2, "[pgcrab] host: ", "must not be empty");
	/* a backend password may be empty (trust auth on the backend) */
	struct cfg *c = load_ok("[shard.a]\nuser = u\npassword =\n", NULL);
	assert_string_equal(c->shards[0].password, "");
	cfg_free(c);
}

static void test_booleans(void **state)
{
	(void)state;
	static const char *const yes[] = { "on", "ON", "true", "Yes", "1" };
	static const char *const no[] = { "off", "Off", "false", "no", "0" };
	char text[128];
	for (size_t i = 0; i < sizeof(yes) / sizeof(yes[0]); i++) {
		snprintf(text, sizeof(text), "[pgcrab]\ncancel_on_client_exit = %s\n", no[i]);
		struct cfg *c = load_ok(text, NULL);
		assert_false(c->cancel_on_client_exit);
		cfg_free(c);
		snprintf(text, sizeof(text), "[pgcrab]\ncancel_on_client_exit = %s\n", yes[i]);
		c = load_ok(text, NULL);
		assert_true(c->cancel_on_client_exit);
		cfg_free(c);
	}
	expect_error("[pgcrab]\ncancel_on_client_exit = maybe\n", 2,
		     "[pgcrab] cancel_on_client_exit: ", "'maybe' is not a boolean (on or off)");
	expect_error("[pgcrab]\ncancel_on_client_exit =\n", 2,
		     "[pgcrab] cancel_on_client_exit: ", "is not a boolean");
}

static void test_enums(void **state)
{
	(void)state;
	expect_error("[pgcrab]\npool_mode = statement\n", 2,
		     "[pgcrab] pool_mode: ", "'statement' is not one of transaction, session");
	expect_error("[pgcrab]\nlog_level = verbose\n", 2,
		     "[pgcrab] log_level: ", "'verbose' is not one of error, warn, info, debug");
	expect_error("[pgcrab]\ncpu_affinity = cores\n", 2,
		     "[pgcrab] cpu_affinity: ", "'cores' is not one of off, workers");
	expect_error("[pgcrab]\nauth_type = ldap\n", 2, "[pgcrab] auth_type: ",
		     "'ldap' is not one of plain, md5, scram-sha-256, trust, cert");
}

/* auth_type and the password forms, checked at load (config/cfg_auth.c). */
static void test_auth_settings(void **state)
{
	(void)state;
	/* trust only where reaching the socket already takes a local account */
	expect_error("[pgcrab]\nhost = 0.0.0.0\nauth_type = trust\n", 3, "[pgcrab] auth_type: ",
		     "trust is allowed only when every listener is loopback or a Unix socket");
	expect_error("[pgcrab]\nhost = 10.1.2.3\nauth_type = trust\n", 3,
		     "[pgcrab] auth_type: ", "but host is 10.1.2.3");
	struct cfg *c = load_ok("[pgcrab]\nhost = 127.0.0.2\nauth_type = trust\n", NULL);
	assert_int_equal(c->auth_type, CFG_AUTH_TRUST);
	cfg_free(c);
	c = load_ok("[pgcrab]\nhost = ::1\nauth_type = trust\n", NULL);
	cfg_free(c);
	/* cert needs verified client certificates: verify-ca or verify-full */
	expect_error("[pgcrab]\nauth_type = cert\n", 2,
		     "[pgcrab] auth_type: ", "cert needs client certificates");
	expect_error("[pgcrab]\nauth_type = cert\nclient_tls_mode = require\n"
		     "client_tls_cert_file = c\nclient_tls_key_file = k\n",
		     2, "[pgcrab] auth_type: ", "cert needs client certificates");

	/* malformed verifiers and hashes are refused, never taken as cleartext */
	expect_error("[user.a]\npassword = SCRAM-SHA-256$4096:c2FsdA==$AAAA\n", 2,
		     "[user.a] password: ", "missing ':' between StoredKey and ServerKey");
	expect_error("[user.a]\npassword = SCRAM-SHA-256$x:c2FsdA==$a:b\n", 2,
		     "[user.a] password: ", "expected the iteration count");
	expect_error("[user.a]\npassword = SCRAM-SHA-256$4096:c2FsdA==$YWJj:YWJj\n", 2,
		     "[user.a] password: ", "StoredKey is not base64 of 32 bytes");
	expect_error("[user.a]\npassword = SCRAM-SHA-256$4096:!!!!$a:b\n", 2,
		     "[user.a] password: ", "the salt is not base64");
	expect_error("[user.a]\npassword = md5ABCDEF0123456789abcdef0123456789\n", 2,
		     "[user.a] password: ", "32 lower-case hex digits");

	/* each form is recognized; with scram-sha-256 a cleartext gets a verifier */
	c = load_ok("[pgcrab]\nauth_type = scram-sha-256\n"
		    "[user.a]\npassword = secret\n"
		    "[user.b]\npassword = md5d6d9fb3b2d5ee4e5d3ba4c6eec6e3a2d\n"
		    "[user.c]\npassword = SCRAM-SHA-256$4096:W22ZaJ0SNY7soEsUEjb6gQ==$"
		    "WG5d8oPm3OtcPnkdi4Uo7BkeZkBFzpcXkuLmtbsT4qY=:"
		    "wfPLwcE6nTWhTAmQ7tl2KeoiWGPlZqQxSrmfPwDl2dU=\n",
		    NULL);
	assert_int_equal(c->auth_type, CFG_AUTH_SCRAM);
	const struct cfg_user *u = cfg_find_user(c, "a");
	assert_int_equal(u->secret.kind, AUTH_SECRET_CLEARTEXT);
	assert_true(u->secret.has_scram);
	assert_int_equal(u->secret.scram.iterations, 4096);
	assert_int_equal(cfg_find_user(c, "b")->secret.kind, AUTH_SECRET_MD5);
	assert_false(cfg_find_user(c, "b")->secret.has_scram);
	assert_int_equal(cfg_find_user(c, "c")->secret.kind, AUTH_SECRET_SCRAM);
	assert_int_equal(cfg_find_user(c, "c")->secret.scram.salt_len, 16);
	cfg_free(c);
	/* the same file loads to the same verifier (a reload does not change
	 * the salt a client sees); another password changes it */
	const char *one = "[pgcrab]\nauth_type = scram-sha-256\n[user.a]\npassword = secret\n";
	struct cfg *c1 = load_ok(one, NULL), *c2 = load_ok(one, NULL);
	assert_memory_equal(cfg_find_user(c1, "a")->secret.scram.salt,
			    cfg_find_user(c2, "a")->secret.scram.salt, AUTH_SCRAM_SALT_LEN);
	cfg_free(c2);
	c2 = load_ok("[pgcrab]\nauth_type = scram-sha-256\n[user.a]\npassword = other\n", NULL);
	assert_memory_not_equal(cfg_find_user(c1, "a")->secret.scram.salt,
				cfg_find_user(c2, "a")->secret.scram.salt, AUTH_SCRAM_SALT_LEN);
	cfg_free(c1);
	cfg_free(c2);
	c = load_ok("[pgcrab]\nauth_type = md5\n[user.a]\npassword = secret\n", NULL);
	assert_false(cfg_find_user(c, "a")->secret.has_scram); /* no PBKDF2 needed */
	cfg_free(c);
}

/* auth_file: PgBouncer's userlist.txt, relative to the config's directory;
 * [user] sections win over it. */
static void test_auth_file(void **state)
{
	(void)state;
	char list[512];
	snprintf(list, sizeof(list), "%s/users.txt", tmpdir);
	FILE *f = fopen(list, "w");
	assert_non_null(f);
	fputs("; a comment\n\n\"alice\" \"md5d6d9fb3b2d5ee4e5d3ba4c6eec6e3a2d\" ignored\n"
	      "\"bob\"\t\"pa\"\"ss\"\n\"a\" \"from the file\"\n",
	      f);
	fclose(f);
	struct cfg *c = load_ok("[pgcrab]\nauth_file = users.txt\n[user.a]\npassword = mine\n",
				NULL);
	assert_int_equal(c->n_users, 3);
	assert_string_equal(cfg_find_user(c, "a")->password, "mine");
	assert_false(cfg_find_user(c, "a")->from_file);
	assert_int_equal(cfg_find_user(c, "alice")->secret.kind, AUTH_SECRET_MD5);
	assert_string_equal(cfg_find_user(c, "bob")->password, "pa\"ss");
	assert_true(cfg_find_user(c, "bob")->from_file);
	cfg_free(c);

	f = fopen(list, "w");
	assert_non_null(f);
	fputs("\"ok\" \"x\"\nbroken line\n", f);
	fclose(f);
	struct cfg *bad = NULL;
	assert_int_equal(cfg_load(write_ini("[pgcrab]\nauth_file = users.txt\n"), NULL, &bad, err,
				  sizeof(err)),
			 -1);
	if (!strstr(err, "users.txt:2: expected a user name in double quotes"))
		fail_msg("got '%s'", err);
	f = fopen(list, "w");
	assert_non_null(f);
	fputs("\"x\" \"SCRAM-SHA-256$1:AA==$x:y\"\n", f);
	fclose(f);
	assert_int_equal(cfg_load(write_ini("[pgcrab]\nauth_file = users.txt\n"), NULL, &bad, err,
				  sizeof(err)),
			 -1);
	if (!strstr(err, "users.txt:1: malformed SCRAM-SHA-256 verifier"))
		fail_msg("got '%s'", err);
	assert_int_equal(cfg_load(write_ini("[pgcrab]\nauth_file = nowhere.txt\n"), NULL, &bad, err,
				  sizeof(err)),
			 -1);
	if (!strstr(err, "[pgcrab] auth_file: cannot open"))
		fail_msg("got '%s'", err);
	/* a device or FIFO could block the load: regular files only */
	assert_int_equal(cfg_load(write_ini("[pgcrab]\nauth_file = /dev/null\n"), NULL, &bad, err,
				  sizeof(err)),
			 -1);
	if (!strstr(err, "is not a regular file"))
		fail_msg("got '%s'", err);
	unlink(list);
}

static void test_admin_users_list(void **state)
{
	(void)state;
	expect_error("[pgcrab]\nadmin_users = a,,b\n", 2, "[pgcrab] admin_users: ", "empty name");
	expect_error("[pgcrab]\nadmin_users = a,\n", 2, "[pgcrab] admin_users: ", "empty name");
	struct cfg *c = load_ok("[pgcrab]\nadmin_users = solo\n", NULL);
	assert_int_equal(c->n_admin_users, 1);
	assert_string_equal(c->admin_users[0], "solo");
	cfg_free(c);
}

static void test_nul_byte(void **state)
{
	(void)state;
	snprintf(path, sizeof(path), "%s/t.ini", tmpdir);
	FILE *f = fopen(path, "w");
	assert_non_null(f);
	fwrite("[pgcrab]\nport = 1\0 2\n", 1, 21, f);
	fclose(f);
	struct cfg *cfg = (struct cfg *)1;
	assert_int_equal(cfg_load(path, NULL, &cfg, err, sizeof(err)), -1);
	assert_non_null(strstr(err, ":2: line contains a NUL byte"));
}

static void test_error_buffer_small(void **state)
{
	(void)state;
	/* a short buffer truncates, never overflows; NULL err is tolerated */
	char small[8];
	struct cfg *cfg;
	assert_int_equal(cfg_load(write_ini("[x]\n"), NULL, &cfg, small, sizeof(small)), -1);
	assert_int_equal(strlen(small), sizeof(small) - 1);
	assert_int_equal(cfg_load(write_ini("[x]\n"), NULL, &cfg, NULL, 0), -1);
}

/* ---- overrides ---- */

static void test_overrides_win_over_file(void **state)
{
	(void)state;
	struct cfg_overrides ov = {
		.host = "0.0.0.0",
		.host_src = "--host",
		.port = "7777",
		.port_src = "--port",
		.workers = "2",
		.workers_src = "PGCRAB_WORKERS",
		.pool_mode = "session",
		.pool_mode_src = "--pool-mode",
		.log_level = "error",
		.log_level_src = "PGCRAB_LOG_LEVEL",
		.cpu_affinity = "workers",
		.cpu_affinity_src = "--cpu-affinity",
	};
	struct cfg *c = load_ok("[pgcrab]\nhost = 10.0.0.1\nport = 6000\nworkers = 8\n"
				"pool_mode = transaction\nlog_level = debug\ncpu_affinity = off\n",
				&ov);
	assert_int_equal(c->cpu_affinity, CFG_AFFINITY_WORKERS);
	assert_string_equal(c->host, "0.0.0.0");
	assert_int_equal(c->port, 7777);
	assert_int_equal(c->workers, 2);
	assert_int_equal(c->pool_mode, CFG_POOL_SESSION);
	assert_int_equal(c->log_level, CFG_LOG_ERROR);
	cfg_free(c);

	/* NULL fields leave the file's values alone */
	struct cfg_overrides some = { .port = "7001", .port_src = "--port" };
	c = load_ok("[pgcrab]\nport = 6000\nworkers = 8\n", &some);
	assert_int_equal(c->port, 7001);
	assert_int_equal(c->workers, 8);
	cfg_free(c);

	/* and the defaults when the file has no value */
	c = load_ok("", &some);
	assert_int_equal(c->port, 7001);
	assert_int_equal(c->workers, 0);
	cfg_free(c);
}

static void test_override_errors(void **state)
{
	(void)state;
	struct cfg_overrides ov = { .port = "70000", .port_src = "--port" };
	expect_override_error("", &ov, "--port: 70000 is out of range 1..65535");
	ov = (struct cfg_overrides){ .port = "abc", .port_src = "PGCRAB_PORT" };
	expect_override_error("", &ov, "PGCRAB_PORT: 'abc' is not a whole number");
	ov = (struct cfg_overrides){ .workers = "300", .workers_src = "--workers" };
	expect_override_error("", &ov, "--workers: 300 is out of range 0..256");
	ov = (struct cfg_overrides){ .pool_mode = "statement", .pool_mode_src = "--pool-mode" };
	expect_override_error("", &ov,
			      "--pool-mode: 'statement' is not one of transaction, session");
	ov = (struct cfg_overrides){ .log_level = "loud", .log_level_src = "PGCRAB_LOG_LEVEL" };
	expect_override_error("", &ov,
			      "PGCRAB_LOG_LEVEL: 'loud' is not one of error, warn, info, debug");
	ov = (struct cfg_overrides){ .host = "", .host_src = "--host" };
	expect_override_error("", &ov, "--host: must not be empty");
	/* without a source, the key names itself */
	ov = (struct cfg_overrides){ .port = "0" };
	expect_override_error("", &ov, "port: 0 is out of range 1..65535");
	/* a broken file is reported before any override */
	ov = (struct cfg_overrides){ .port = "70000", .port_src = "--port" };
	struct cfg *cfg;
	assert_int_equal(cfg_load(write_ini("[pgcrab]\nworkers = x\n"), &ov, &cfg, err,
				  sizeof(err)),
			 -1);
	assert_non_null(strstr(err, ":2: [pgcrab] workers: 'x' is not a whole number"));
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_empty_file_gives_defaults),
		cmocka_unit_test(test_shard_defaults),
		cmocka_unit_test(test_full_file),
		cmocka_unit_test(test_many_sections),
		cmocka_unit_test(test_syntax_leniency),
		cmocka_unit_test(test_long_section_name),
		cmocka_unit_test(test_example_file_loads),
		cmocka_unit_test(test_unix_socket_dir),
		cmocka_unit_test(test_enum_names),
		cmocka_unit_test(test_booleans),
		cmocka_unit_test(test_duration_table),
		cmocka_unit_test(test_duration_errors_in_file),
		cmocka_unit_test(test_missing_file),
		cmocka_unit_test(test_directory_as_file),
		cmocka_unit_test(test_unknown_section),
		cmocka_unit_test(test_unknown_key),
		cmocka_unit_test(test_tls),
		cmocka_unit_test(test_key_outside_section),
		cmocka_unit_test(test_duplicate_key),
		cmocka_unit_test(test_duplicate_section),
		cmocka_unit_test(test_sharding_sections),
		cmocka_unit_test(test_sharding_errors),
		cmocka_unit_test(test_malformed_lines),
		cmocka_unit_test(test_malformed_line_wins_over_later_error),
		cmocka_unit_test(test_long_line),
		cmocka_unit_test(test_bad_int),
		cmocka_unit_test(test_port_range),
		cmocka_unit_test(test_max_packet_size_range),
		cmocka_unit_test(test_workers_range),
		cmocka_unit_test(test_pool_sizes),
		cmocka_unit_test(test_reserved_shard_name),
		cmocka_unit_test(test_missing_required),
		cmocka_unit_test(test_roles_and_auth_query),
		cmocka_unit_test(test_empty_strings),
		cmocka_unit_test(test_enums),
		cmocka_unit_test(test_auth_settings),
		cmocka_unit_test(test_auth_file),
		cmocka_unit_test(test_admin_users_list),
		cmocka_unit_test(test_nul_byte),
		cmocka_unit_test(test_error_buffer_small),
		cmocka_unit_test(test_overrides_win_over_file),
		cmocka_unit_test(test_override_errors),
	};
	return cmocka_run_group_tests(tests, setup_dir, remove_dir);
}
