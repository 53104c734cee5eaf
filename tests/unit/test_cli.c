/* main/cli.c: flags, environment, precedence, and the errors a typo gets.
 * The last tests run cli_parse into cfg_load to check the whole chain
 * flag > environment > file > default. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "config/cfg.h"
#include "main/cli.h"

static char err[256];
static char *no_env[] = { NULL };

/* argv arrays are built NULL-terminated; argc is counted */
static int parse(char **argv, char **envp, struct cli_opts *o)
{
	int argc = 0;
	while (argv[argc])
		argc++;
	err[0] = '\0';
	return cli_parse(argc, argv, envp, o, err, sizeof(err));
}

static void expect_cli_error(char **argv, char **envp, const char *expect)
{
	struct cli_opts o;
	assert_int_equal(parse(argv, envp, &o), -1);
	assert_string_equal(err, expect);
}

static void test_no_args(void **state)
{
	(void)state;
	char *argv[] = { "pgcrab", NULL };
	struct cli_opts o;
	assert_int_equal(parse(argv, no_env, &o), 0);
	assert_string_equal(o.config_path, "pgcrab.ini");
	assert_string_equal(o.config_src, "default");
	assert_null(o.ov.host);
	assert_null(o.ov.port);
	assert_null(o.ov.workers);
	assert_null(o.ov.pool_mode);
	assert_null(o.ov.log_level);
	assert_false(o.check);
	assert_false(o.version);
	assert_false(o.help);
}

static void test_all_flags_separate_value(void **state)
{
	(void)state;
	char *argv[] = { "pgcrab",  "--config",    "/etc/pgcrab.ini", "--host",  "0.0.0.0",
			 "--port",  "7000",        "--workers",       "4",       "--pool-mode",
			 "session", "--log-level", "debug",           "--check", NULL };
	struct cli_opts o;
	assert_int_equal(parse(argv, no_env, &o), 0);
	assert_string_equal(o.config_path, "/etc/pgcrab.ini");
	assert_string_equal(o.config_src, "--config");
	assert_string_equal(o.ov.host, "0.0.0.0");
	assert_string_equal(o.ov.host_src, "--host");
	assert_string_equal(o.ov.port, "7000");
	assert_string_equal(o.ov.port_src, "--port");
	assert_string_equal(o.ov.workers, "4");
	assert_string_equal(o.ov.workers_src, "--workers");
	assert_string_equal(o.ov.pool_mode, "session");
	assert_string_equal(o.ov.pool_mode_src, "--pool-mode");
	assert_string_equal(o.ov.log_level, "debug");
	assert_string_equal(o.ov.log_level_src, "--log-level");
	assert_true(o.check);
	assert_false(o.help);
}

static void test_flag_equals_value(void **state)
{
	(void)state;
	char *argv[] = { "pgcrab", "--port=7001", "--config=a=b.ini", "--host=", NULL };
	struct cli_opts o;
	assert_int_equal(parse(argv, no_env, &o), 0);
	assert_string_equal(o.ov.port, "7001");
	assert_string_equal(o.ov.port_src, "--port");
	assert_string_equal(o.config_path, "a=b.ini"); /* only the first '=' splits */
	assert_string_equal(o.ov.host, "");            /* empty: cfg_load rejects it */
}

static void test_last_flag_wins(void **state)
{
	(void)state;
	char *argv[] = { "pgcrab", "--port", "1", "--port=2", NULL };
	struct cli_opts o;
	assert_int_equal(parse(argv, no_env, &o), 0);
	assert_string_equal(o.ov.port, "2");
}

static void test_switches(void **state)
{
	(void)state;
	struct cli_opts o;
	char *a1[] = { "pgcrab", "--help", NULL };
	assert_int_equal(parse(a1, no_env, &o), 0);
	assert_true(o.help);
	char *a2[] = { "pgcrab", "-h", NULL };
	assert_int_equal(parse(a2, no_env, &o), 0);
	assert_true(o.help);
	char *a3[] = { "pgcrab", "--version", NULL };
	assert_int_equal(parse(a3, no_env, &o), 0);
	assert_true(o.version);
	assert_false(o.help);
	char *a4[] = { "pgcrab", "-V", "--check", NULL };
	assert_int_equal(parse(a4, no_env, &o), 0);
	assert_true(o.version);
	assert_true(o.check);
}

static void test_env_only(void **state)
{
	(void)state;
	char *argv[] = { "pgcrab", NULL };
	char *env[] = { "HOME=/root",
			"PGCRAB_CONFIG_FILE=/srv/p.ini",
			"PGCRAB_HOST=::1",
			"PGCRAB_PORT=7002",
			"PGCRAB_WORKERS=3",
			"PGCRAB_POOL_MODE=session",
			"PGCRAB_LOG_LEVEL=warn",
			NULL };
	struct cli_opts o;
	assert_int_equal(parse(argv, env, &o), 0);
	assert_string_equal(o.config_path, "/srv/p.ini");
	assert_string_equal(o.config_src, "PGCRAB_CONFIG_FILE");
	assert_string_equal(o.ov.host, "::1");
	assert_string_equal(o.ov.host_src, "PGCRAB_HOST");
	assert_string_equal(o.ov.port, "7002");
	assert_string_equal(o.ov.port_src, "PGCRAB_PORT");
	assert_string_equal(o.ov.workers, "3");
	assert_string_equal(o.ov.workers_src, "PGCRAB_WORKERS");
	assert_string_equal(o.ov.pool_mode, "session");
	assert_string_equal(o.ov.pool_mode_src, "PGCRAB_POOL_MODE");
	assert_string_equal(o.ov.log_level, "warn");
	assert_string_equal(o.ov.log_level_src, "PGCRAB_LOG_LEVEL");
}

static void test_flag_beats_env(void **state)
{
	(void)state;
	char *argv[] = { "pgcrab", "--port", "7003", "--config", "flag.ini", NULL };
	char *env[] = { "PGCRAB_PORT=7002", "PGCRAB_CONFIG_FILE=env.ini", "PGCRAB_WORKERS=5",
			NULL };
	struct cli_opts o;
	assert_int_equal(parse(argv, env, &o), 0);
	assert_string_equal(o.ov.port, "7003");
	assert_string_equal(o.ov.port_src, "--port");
	assert_string_equal(o.config_path, "flag.ini");
	assert_string_equal(o.ov.workers, "5"); /* no flag: env fills in */
	assert_string_equal(o.ov.workers_src, "PGCRAB_WORKERS");
}

static void test_env_edge_cases(void **state)
{
	(void)state;
	char *argv[] = { "pgcrab", NULL };
	/* empty counts as unset; a longer name with the same prefix is not it */
	char *env[] = { "PGCRAB_PORT=", "PGCRAB_HOSTNAME=x", "PGCRAB_WORKERS_X=9", NULL };
	struct cli_opts o;
	assert_int_equal(parse(argv, env, &o), 0);
	assert_null(o.ov.port);
	assert_null(o.ov.host);
	assert_null(o.ov.workers);
}

static void test_process_environment(void **state)
{
	(void)state;
	char *argv[] = { "pgcrab", NULL };
	setenv("PGCRAB_LOG_LEVEL", "error", 1);
	struct cli_opts o;
	assert_int_equal(parse(argv, NULL, &o), 0);
	assert_string_equal(o.ov.log_level, "error");
	assert_string_equal(o.ov.log_level_src, "PGCRAB_LOG_LEVEL");
	unsetenv("PGCRAB_LOG_LEVEL");
}

static void test_errors(void **state)
{
	(void)state;
	char *a1[] = { "pgcrab", "--foo", NULL };
	expect_cli_error(a1, no_env, "unknown flag --foo (see --help)");
	char *a2[] = { "pgcrab", "--foo=secret", NULL };
	expect_cli_error(a2, no_env, "unknown flag --foo (see --help)");
	char *a3[] = { "pgcrab", "--portx", "1", NULL };
	expect_cli_error(a3, no_env, "unknown flag --portx (see --help)");
	char *a4[] = { "pgcrab", "-p", "1", NULL };
	expect_cli_error(a4, no_env, "unknown flag -p (see --help)");
	char *a5[] = { "pgcrab", "--port", NULL };
	expect_cli_error(a5, no_env, "--port needs a value");
	char *a6[] = { "pgcrab", "--config", "--check", NULL };
	expect_cli_error(a6, no_env, "--config needs a value");
	char *a7[] = { "pgcrab", "pgcrab.ini", NULL };
	expect_cli_error(a7, no_env, "unexpected argument pgcrab.ini (see --help)");
	char *a8[] = { "pgcrab", "--check=yes", NULL };
	expect_cli_error(a8, no_env, "--check takes no value");
	char *a9[] = { "pgcrab", "-", NULL };
	expect_cli_error(a9, no_env, "unexpected argument - (see --help)");
	char *a10[] = { "pgcrab", "--port", "1", "extra", NULL };
	expect_cli_error(a10, no_env, "unexpected argument extra (see --help)");
	char *a11[] = { "pgcrab", "--", NULL };
	expect_cli_error(a11, no_env, "unknown flag -- (see --help)");
}

static void test_negative_value_is_a_value(void **state)
{
	(void)state;
	/* "-1" is a value for cfg_load to reject with a range message */
	char *argv[] = { "pgcrab", "--workers", "-1", NULL };
	struct cli_opts o;
	assert_int_equal(parse(argv, no_env, &o), 0);
	assert_string_equal(o.ov.workers, "-1");
}

static void test_usage_mentions_everything(void **state)
{
	(void)state;
	char *buf = NULL;
	size_t len = 0;
	FILE *f = open_memstream(&buf, &len);
	assert_non_null(f);
	cli_usage(f);
	fclose(f);
	static const char *const words[] = {
		"--config",
		"--host",
		"--port",
		"--workers",
		"--pool-mode",
		"--log-level",
		"--check",
		"--version",
		"--help",
		"PGCRAB_CONFIG_FILE",
		"PGCRAB_HOST",
		"PGCRAB_PORT",
		"PGCRAB_WORKERS",
		"PGCRAB_POOL_MODE",
		"PGCRAB_LOG_LEVEL",
		"pgcrab.ini",
		"6432",
		"transaction",
		"session",
		"debug",
		"--cpu-affinity",
		"PGCRAB_CPU_AFFINITY",
		"workers",
	};
	for (size_t i = 0; i < sizeof(words) / sizeof(words[0]); i++)
		if (!strstr(buf, words[i]))
			fail_msg("usage lacks %s", words[i]);
	free(buf);
}

/* ---- the chain into cfg_load ---- */

static char ini_path[128];

static int setup_file(void **state)
{
	(void)state;
	strcpy(ini_path, "/tmp/pgcrab-test-cli-XXXXXX");
	int fd = mkstemp(ini_path);
	if (fd < 0)
		return -1;
	static const char text[] = "[pgcrab]\nport = 6000\nworkers = 2\n";
	ssize_t n = write(fd, text, sizeof(text) - 1);
	close(fd);
	return n == (ssize_t)(sizeof(text) - 1) ? 0 : -1;
}

static int remove_file(void **state)
{
	(void)state;
	return unlink(ini_path);
}

static struct cfg *load_via_cli(char **argv, char **envp)
{
	struct cli_opts o;
	if (parse(argv, envp, &o) != 0)
		fail_msg("cli: %s", err);
	struct cfg *cfg = NULL;
	if (cfg_load(o.config_path, &o.ov, &cfg, err, sizeof(err)) != 0)
		fail_msg("cfg: %s", err);
	return cfg;
}

static void test_precedence_chain(void **state)
{
	(void)state;
	char cfg_env[200];
	snprintf(cfg_env, sizeof(cfg_env), "PGCRAB_CONFIG_FILE=%s", ini_path);

	/* flag > env > file */
	char *a1[] = { "pgcrab", "--port", "6002", NULL };
	char *e1[] = { cfg_env, "PGCRAB_PORT=6001", NULL };
	struct cfg *c = load_via_cli(a1, e1);
	assert_int_equal(c->port, 6002);
	assert_int_equal(c->workers, 2);
	cfg_free(c);

	/* env > file */
	char *a2[] = { "pgcrab", NULL };
	c = load_via_cli(a2, e1);
	assert_int_equal(c->port, 6001);
	cfg_free(c);

	/* file > default */
	char *e3[] = { cfg_env, NULL };
	c = load_via_cli(a2, e3);
	assert_int_equal(c->port, 6000);
	assert_int_equal(c->log_level, CFG_LOG_INFO); /* default: not in the file */
	cfg_free(c);
}

static void test_bad_value_names_its_source(void **state)
{
	(void)state;
	char *argv[] = { "pgcrab", "--config", ini_path, NULL };
	char *env[] = { "PGCRAB_PORT=70000", NULL };
	struct cli_opts o;
	assert_int_equal(parse(argv, env, &o), 0);
	struct cfg *cfg;
	assert_int_equal(cfg_load(o.config_path, &o.ov, &cfg, err, sizeof(err)), -1);
	assert_string_equal(err, "PGCRAB_PORT: 70000 is out of range 1..65535");

	char *argv2[] = { "pgcrab", "--config", ini_path, "--pool-mode=statement", NULL };
	assert_int_equal(parse(argv2, no_env, &o), 0);
	assert_int_equal(cfg_load(o.config_path, &o.ov, &cfg, err, sizeof(err)), -1);
	assert_string_equal(err, "--pool-mode: 'statement' is not one of transaction, session");
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_no_args),
		cmocka_unit_test(test_all_flags_separate_value),
		cmocka_unit_test(test_flag_equals_value),
		cmocka_unit_test(test_last_flag_wins),
		cmocka_unit_test(test_switches),
		cmocka_unit_test(test_env_only),
		cmocka_unit_test(test_flag_beats_env),
		cmocka_unit_test(test_env_edge_cases),
		cmocka_unit_test(test_process_environment),
		cmocka_unit_test(test_errors),
		cmocka_unit_test(test_negative_value_is_a_value),
		cmocka_unit_test(test_usage_mentions_everything),
		cmocka_unit_test_setup_teardown(test_precedence_chain, setup_file, remove_file),
		cmocka_unit_test_setup_teardown(test_bad_value_names_its_source, setup_file,
						remove_file),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
