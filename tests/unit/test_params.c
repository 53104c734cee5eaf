/* Session settings carried between server connections (pool/params.c). */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <string.h>

#include <cmocka.h>

#include "pool/params.h"

static void test_get_set_case_insensitive(void **state)
{
	(void)state;
	struct param_set ps = { 0 };
	assert_int_equal(params_set(&ps, "TimeZone", "UTC"), 0);
	assert_string_equal(params_get(&ps, "timezone"), "UTC");
	assert_string_equal(params_get(&ps, "TIMEZONE"), "UTC");
	assert_string_equal(ps.v[0].name, "timezone"); /* stored lower-cased */
	assert_int_equal(params_set(&ps, "timezone", "Asia/Tokyo"), 0);
	assert_int_equal(ps.n, 1);
	assert_string_equal(params_get(&ps, "TimeZone"), "Asia/Tokyo");
	assert_int_equal(params_set(&ps, "TIMEZONE", NULL), 0);
	assert_null(params_get(&ps, "timezone"));
	assert_int_equal(ps.n, 0);
	params_clear(&ps);
}

static void test_any_setting_many(void **state)
{
	(void)state;
	struct param_set a = { 0 }, b = { 0 };
	char name[32], value[32];
	for (int i = 0; i < 100; i++) {
		snprintf(name, sizeof(name), "myapp.k%d", i);
		snprintf(value, sizeof(value), "v%d", i);
		assert_int_equal(params_set(&a, name, value), 0);
	}
	assert_int_equal(a.n, 100);
	assert_string_equal(params_get(&a, "MYAPP.K57"), "v57");
	assert_false(params_equal(&a, &b));
	assert_int_equal(params_assign(&b, &a), 0);
	assert_true(params_equal(&a, &b));
	assert_int_equal(params_set(&b, "myapp.k3", "other"), 0);
	assert_false(params_equal(&a, &b));
	params_clear(&a);
	params_clear(&b);
}

static void test_sync_nothing_when_equal(void **state)
{
	(void)state;
	struct param_set want = { 0 }, have = { 0 };
	char sql[256];
	assert_int_equal(params_set(&want, "TimeZone", "UTC"), 0);
	assert_int_equal(params_set(&have, "timezone", "UTC"), 0);
	assert_int_equal(params_sync_sql(&want, &have, sql, sizeof(sql)), 0);
	assert_string_equal(sql, "");
	params_clear(&want);
	params_clear(&have);
}

static void test_sync_sets_and_resets(void **state)
{
	(void)state;
	struct param_set want = { 0 }, have = { 0 };
	char sql[512];
	assert_int_equal(params_set(&want, "search_path", "crab_a, public"), 0);
	assert_int_equal(params_set(&have, "TimeZone", "Asia/Tokyo"), 0);
	int n = params_sync_sql(&want, &have, sql, sizeof(sql));
	assert_int_equal(n, (int)strlen(sql));
	assert_string_equal(sql,
			    "SELECT pg_catalog.set_config('search_path', 'crab_a, public', false), "
			    "pg_catalog.set_config('timezone', NULL, false)");
	assert_int_equal(params_assign(&have, &want), 0);
	assert_int_equal(params_sync_sql(&want, &have, sql, sizeof(sql)), 0);
	params_clear(&want);
	params_clear(&have);
}

/* session_authorization resets role: it goes first, and role is set again
 * after it even where the server's role already matched */
static void test_sync_order_roles_first(void **state)
{
	(void)state;
	struct param_set want = { 0 }, have = { 0 };
	char sql[1024];
	assert_int_equal(params_set(&want, "work_mem", "64MB"), 0);
	assert_int_equal(params_set(&want, "role", "r1"), 0);
	assert_int_equal(params_set(&want, "session_authorization", "alice"), 0);
	assert_int_equal(params_set(&have, "role", "r1"), 0);
	assert_true(params_sync_sql(&want, &have, sql, sizeof(sql)) > 0);
	const char *sa = strstr(sql, "'session_authorization'");
	const char *role = strstr(sql, "'role'");
	const char *wm = strstr(sql, "'work_mem'");
	assert_non_null(sa);
	assert_non_null(role);
	assert_non_null(wm);
	assert_true(sa < role && role < wm);
	params_clear(&want);
	params_clear(&have);
}

static void test_sync_value_and_name_quoted(void **state)
{
	(void)state;
	struct param_set want = { 0 }, have = { 0 };
	char sql[512];
	assert_int_equal(params_set(&want, "application_name", "it's'); DROP TABLE x; --"), 0);
	assert_int_equal(params_set(&want, "my'app.x", "1"), 0);
	assert_true(params_sync_sql(&want, &have, sql, sizeof(sql)) > 0);
	assert_non_null(strstr(sql, "'it''s''); DROP TABLE x; --'"));
	assert_non_null(strstr(sql, "'my''app.x'"));
	params_clear(&want);
	params_clear(&have);
}

/* too small a buffer: the length it needs, as snprintf, and an empty string */
static void test_sync_reports_needed_length(void **state)
{
	(void)state;
	struct param_set want = { 0 }, have = { 0 };
	char sql[16];
	assert_int_equal(params_set(&want, "application_name", "a rather long application name"),
			 0);
	int n = params_sync_sql(&want, &have, sql, sizeof(sql));
	assert_true(n >= (int)sizeof(sql));
	assert_string_equal(sql, "");
	char big[256];
	assert_int_equal(params_sync_sql(&want, &have, big, sizeof(big)), n);
	assert_int_equal(params_sync_sql(&want, &have, NULL, 0), n);
	params_clear(&want);
	params_clear(&have);
}

static void test_startup_only_and_reported(void **state)
{
	(void)state;
	assert_true(params_startup_only("user"));
	assert_true(params_startup_only("database"));
	assert_true(params_startup_only("options"));
	assert_true(params_startup_only("_pq_.something"));
	assert_false(params_startup_only("statement_timeout"));
	assert_true(params_follows_report("DateStyle"));
	assert_true(params_follows_report("default_transaction_read_only"));
	assert_false(params_follows_report("is_superuser"));
	assert_false(params_follows_report("server_version"));
	assert_false(params_follows_report("session_authorization"));
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_get_set_case_insensitive),
		cmocka_unit_test(test_any_setting_many),
		cmocka_unit_test(test_sync_nothing_when_equal),
		cmocka_unit_test(test_sync_sets_and_resets),
		cmocka_unit_test(test_sync_order_roles_first),
		cmocka_unit_test(test_sync_value_and_name_quoted),
		cmocka_unit_test(test_sync_reports_needed_length),
		cmocka_unit_test(test_startup_only_and_reported),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
