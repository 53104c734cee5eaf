/* Session parameter tracking: the hidden SQL that brings a server in line. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>
#include <string.h>

#include "pool/params.h"

static void test_index_is_case_insensitive(void **state)
{
	(void)state;
	assert_int_equal(params_index("timezone"), PARAM_TIMEZONE);
	assert_int_equal(params_index("TimeZone"), PARAM_TIMEZONE);
	assert_int_equal(params_index("DATESTYLE"), PARAM_DATESTYLE);
	assert_int_equal(params_index("work_mem"), -1);
}

static void test_nothing_to_do_when_equal(void **state)
{
	(void)state;
	struct param_set want = { 0 }, have = { 0 };
	char sql[256];
	assert_int_equal(params_set(&want, PARAM_TIMEZONE, "UTC"), 0);
	assert_int_equal(params_set(&have, PARAM_TIMEZONE, "UTC"), 0);
	assert_int_equal(params_sync_sql(&want, &have, sql, sizeof(sql)), 0);
	params_clear(&want);
	params_clear(&have);
}

static void test_set_and_reset(void **state)
{
	(void)state;
	struct param_set want = { 0 }, have = { 0 };
	char sql[512];
	assert_int_equal(params_set(&want, PARAM_SEARCH_PATH, "crab_a, public"), 0);
	assert_int_equal(params_set(&have, PARAM_TIMEZONE, "Asia/Tokyo"), 0);
	int n = params_sync_sql(&want, &have, sql, sizeof(sql));
	assert_int_equal(n, (int)strlen(sql));
	assert_string_equal(sql,
			    "RESET TimeZone;"
			    "SELECT pg_catalog.set_config('search_path', 'crab_a, public', false);");
	/* the statement is not sent yet: have is untouched until assigned */
	assert_string_equal(have.v[PARAM_TIMEZONE], "Asia/Tokyo");
	assert_null(have.v[PARAM_SEARCH_PATH]);
	assert_int_equal(params_assign(&have, &want), 0);
	/* have now matches want: a second sync is empty */
	assert_null(have.v[PARAM_TIMEZONE]);
	assert_string_equal(have.v[PARAM_SEARCH_PATH], "crab_a, public");
	assert_int_equal(params_sync_sql(&want, &have, sql, sizeof(sql)), 0);
	params_clear(&want);
	params_clear(&have);
}

static void test_quotes_are_doubled(void **state)
{
	(void)state;
	struct param_set want = { 0 }, have = { 0 };
	char sql[256];
	assert_int_equal(params_set(&want, PARAM_APPLICATION_NAME, "it's'); DROP TABLE x; --"), 0);
	assert_true(params_sync_sql(&want, &have, sql, sizeof(sql)) > 0);
	assert_string_equal(sql,
			    "SELECT pg_catalog.set_config('application_name', "
			    "'it''s''); DROP TABLE x; --', false);");
	params_clear(&want);
	params_clear(&have);
}

static void test_too_small_buffer(void **state)
{
	(void)state;
	struct param_set want = { 0 }, have = { 0 };
	char sql[16];
	assert_int_equal(params_set(&want, PARAM_APPLICATION_NAME,
				    "a rather long application name"),
			 0);
	int n = params_sync_sql(&want, &have, sql, sizeof(sql));
	/* as snprintf: the length it needs, nothing half-written */
	assert_int_equal(n,
			 (int)strlen("SELECT pg_catalog.set_config('application_name', "
				     "'a rather long application name', false);"));
	assert_string_equal(sql, "");
	/* what did not fit was not sent: the server still has what it had */
	assert_null(have.v[PARAM_APPLICATION_NAME]);
	params_clear(&want);
	params_clear(&have);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_index_is_case_insensitive),
		cmocka_unit_test(test_nothing_to_do_when_equal),
		cmocka_unit_test(test_set_and_reset),
		cmocka_unit_test(test_quotes_are_doubled),
		cmocka_unit_test(test_too_small_buffer),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
