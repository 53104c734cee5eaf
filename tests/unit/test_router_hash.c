/* A key's hash and shard (router/hash.c), against numbers PostgreSQL 15
 * itself computed.
 *
 * Every expected hash below was printed by PostgreSQL 15.x (x86-64) with
 * the type's extended hash function and HASH_PARTITION_SEED
 * (0x7A5B22367996DCFD = 8816678312871386365), e.g.
 *
 *   SELECT v, hashint8extended(v, 8816678312871386365)
 *     FROM unnest(array[0, -1, 42, 2147483648]::int8[]) v;
 *   SELECT hashtextextended('abcdefghijk', 8816678312871386365);
 *   SELECT hashbpcharextended(' x '::bpchar, 8816678312871386365);
 *   SELECT uuid_hash_extended('a0eebc99-...'::uuid, 8816678312871386365);
 *
 * and every expected remainder by satisfies_hash_partition() on a table
 * PARTITION BY HASH over the same columns, e.g.
 *
 *   CREATE TABLE k2 (a int8, b text) PARTITION BY HASH (a, b);
 *   SELECT (SELECT r FROM generate_series(0, 999) r
 *            WHERE satisfies_hash_partition('k2'::regclass, 1000, r, a, b))
 *     FROM (VALUES (5::int8, 'x'::text), ...) v(a, b);
 *
 * Which text PostgreSQL accepts as an integer or a uuid was asked of it
 * the same way (SELECT ' 42 '::int2, '32768'::int4, '{...}'::uuid ...). */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <string.h>

#include <cmocka.h>

#include "router/router.h"

struct known_hash {
	enum router_type type;
	const char *text;
	int64_t hash; /* as PostgreSQL prints it: signed */
};

static const struct known_hash known[] = {
	/* hashint2extended / hashint4extended */
	{ ROUTER_INT4, "0", -4403592609991167795 },
	{ ROUTER_INT4, "-1", -5017072347659237694 },
	{ ROUTER_INT4, "42", 7363975540656877951 },
	{ ROUTER_INT4, "-7", -7298374200968567817 },
	{ ROUTER_INT4, "32767", -6436696229286267413 },
	{ ROUTER_INT4, "2147483647", -6050265599104649060 },
	{ ROUTER_INT4, "-2147483648", 4938542303000433043 },
	{ ROUTER_INT2, "-32768", 5885242512097991578 },
	{ ROUTER_INT2, "32767", -6436696229286267413 },
	/* hashint8extended */
	{ ROUTER_INT8, "0", -4403592609991167795 },
	{ ROUTER_INT8, "-1", -5017072347659237694 },
	{ ROUTER_INT8, "5", -2840406021921404358 },
	{ ROUTER_INT8, "-5", 5466844944386338076 },
	{ ROUTER_INT8, "42", 7363975540656877951 },
	{ ROUTER_INT8, "2147483648", 4938542303000433043 },
	{ ROUTER_INT8, "-2147483649", -6050265599104649060 },
	{ ROUTER_INT8, "4294967296", 5968994663651403477 },
	{ ROUTER_INT8, "-4294967296", -4403592609991167795 },
	{ ROUTER_INT8, "9223372036854775807", 4938542303000433043 },
	{ ROUTER_INT8, "-9223372036854775808", -6050265599104649060 },
	/* hashtextextended: every tail length of the 12-byte blocks */
	{ ROUTER_TEXT, "", -5700645584453517373 },
	{ ROUTER_TEXT, "a", -6705225459120232837 },
	{ ROUTER_TEXT, "abcd", 4029384952263848046 },
	{ ROUTER_TEXT, "abcdefgh", -7754745184861941070 },
	{ ROUTER_TEXT, "abcdefghi", -7860738947571725408 },
	{ ROUTER_TEXT, "abcdefghijk", -2046435308545367432 },
	{ ROUTER_TEXT, "abcdefghijkl", -7876791541613377658 },
	{ ROUTER_TEXT, "abcdefghijklm", -6785754114725280077 },
	{ ROUTER_TEXT, "hello world!", -1886269529411655687 },
	{ ROUTER_TEXT, "abcdefghijklmnopqrstuvwx", -10959101940276370 },
	{ ROUTER_TEXT, "abcdefghijklmnopqrstuvwxyz", -7171292135076916904 },
	{ ROUTER_TEXT, "\xc4\xb3\xe2\x82\xac\xf0\x9f\x98\x80", 2764876185191498886 }, /* ĳ€😀 */
	{ ROUTER_VARCHAR, "tenant-42", -6279421137222391794 },
	/* hashbpcharextended: trailing blanks do not count, leading ones do */
	{ ROUTER_BPCHAR, "tenant-42   ", -6279421137222391794 },
	{ ROUTER_BPCHAR, "ab   ", 596009030900183869 },
	{ ROUTER_BPCHAR, "", -5700645584453517373 },
	{ ROUTER_BPCHAR, " x ", 8729030489214587258 },
	/* uuid_hash_extended, in each spelling uuid_in accepts */
	{ ROUTER_UUID, "a0eebc99-9c0b-4ef8-bb6d-6bb9bd380a11", 424513190990560493 },
	{ ROUTER_UUID, "A0EEBC99-9C0B-4EF8-BB6D-6BB9BD380A11", 424513190990560493 },
	{ ROUTER_UUID, "{a0eebc999c0b4ef8bb6d6bb9bd380a11}", 424513190990560493 },
	{ ROUTER_UUID, "a0ee-bc99-9c0b-4ef8-bb6d-6bb9-bd38-0a11", 424513190990560493 },
	{ ROUTER_UUID, "a0eebc99-9c0b4ef8-bb6d6bb9-bd380a11", 424513190990560493 },
	{ ROUTER_UUID, "00000000-0000-0000-0000-000000000000", -5281082146396728638 },
};

static uint64_t hash_text(enum router_type t, const char *s)
{
	uint64_t h = 0;
	assert_int_equal(router_hash_value(t, false, (const uint8_t *)s, strlen(s), &h), 0);
	return h;
}

static void test_known_hashes(void **state)
{
	(void)state;
	for (size_t i = 0; i < sizeof(known) / sizeof(known[0]); i++) {
		uint64_t h = hash_text(known[i].type, known[i].text);
		if ((int64_t)h != known[i].hash)
			fail_msg("%s '%s': %lld, PostgreSQL says %lld",
				 router_type_name(known[i].type), known[i].text, (long long)h,
				 (long long)known[i].hash);
	}
}

/* Integer input as int2in/int4in/int8in take it (PostgreSQL accepted each
 * of these and gave back the number). */
static void test_integer_spellings(void **state)
{
	(void)state;
	static const struct {
		const char *text;
		const char *same_as;
	} same[] = {
		{ " 42 ", "42" }, { "\t-7\n", "-7" }, { "+0", "0" },
		{ "-0", "0" },    { "007", "7" },     { "00000000000000000000042", "42" },
	};
	for (size_t i = 0; i < sizeof(same) / sizeof(same[0]); i++)
		for (int t = ROUTER_INT2; t <= ROUTER_INT8; t++)
			assert_true(hash_text(t, same[i].text) == hash_text(t, same[i].same_as));
}

static void test_invalid_integers(void **state)
{
	(void)state;
	/* rejected by all three input functions */
	static const char *const bad[] = {
		"",
		" ",
		"-",
		"+",
		"5 5",
		"0x10",
		"1e3",
		"1.0",
		"1_000",
		"--1",
		"9223372036854775808",
		"-9223372036854775809",
		"99999999999999999999999",
	};
	uint64_t h;
	for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++)
		for (int t = ROUTER_INT2; t <= ROUTER_INT8; t++)
			assert_int_equal(router_hash_value(t, false, (const uint8_t *)bad[i],
							   strlen(bad[i]), &h),
					 -1);
	/* out of range for the narrower types only */
	static const struct {
		const char *text;
		enum router_type widest_bad;
	} range[] = {
		{ "32768", ROUTER_INT2 },
		{ "-32769", ROUTER_INT2 },
		{ "2147483648", ROUTER_INT4 },
		{ "-2147483649", ROUTER_INT4 },
	};
	for (size_t i = 0; i < sizeof(range) / sizeof(range[0]); i++) {
		for (int t = ROUTER_INT2; t <= ROUTER_INT8; t++) {
			int rc = router_hash_value(t, false, (const uint8_t *)range[i].text,
						   strlen(range[i].text), &h);
			assert_int_equal(rc, t <= (int)range[i].widest_bad ? -1 : 0);
		}
	}
	/* a value with a NUL inside is never an integer */
	assert_int_equal(router_hash_value(ROUTER_INT4, false, (const uint8_t *)"4\0002", 3, &h),
			 -1);
}

static void test_invalid_uuids(void **state)
{
	(void)state;
	/* each rejected by uuid_in */
	static const char *const bad[] = {
		"a0eebc99-9c0b-4ef8-bb6d-6bb9bd380a11-",
		"{a0eebc99-9c0b-4ef8-bb6d-6bb9bd380a11",
		"a0eebc999-c0b-4ef8-bb6d-6bb9bd380a11",
		" a0eebc99-9c0b-4ef8-bb6d-6bb9bd380a11",
		"a0eebc99-9c0b-4ef8-bb6d-6bb9bd380a1",
		"a0eebc99--9c0b-4ef8-bb6d-6bb9bd380a11",
		"g0eebc99-9c0b-4ef8-bb6d-6bb9bd380a11",
		"{a0eebc99-9c0b-4ef8-bb6d-6bb9bd380a11-}",
		"",
	};
	uint64_t h;
	for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++)
		assert_int_equal(router_hash_value(ROUTER_UUID, false, (const uint8_t *)bad[i],
						   strlen(bad[i]), &h),
				 -1);
}

/* A binary Bind parameter: any integer width for any integer type, range
 * checked; uuid as its 16 bytes; text as its bytes. */
static void test_binary(void **state)
{
	(void)state;
	uint64_t h;
	const uint8_t five2[] = { 0, 5 }, five4[] = { 0, 0, 0, 5 },
		      five8[] = { 0, 0, 0, 0, 0, 0, 0, 5 };
	const uint8_t minus1_8[] = { 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff };
	const uint8_t big8[] = { 0, 0, 0, 1, 0, 0, 0, 0 }; /* 4294967296 */
	const uint8_t int4_max[] = { 0x7f, 0xff, 0xff, 0xff };
	for (int t = ROUTER_INT2; t <= ROUTER_INT8; t++) {
		uint64_t want = hash_text(t, "5");
		assert_int_equal(router_hash_value(t, true, five2, 2, &h), 0);
		assert_true(h == want);
		assert_int_equal(router_hash_value(t, true, five4, 4, &h), 0);
		assert_true(h == want);
		assert_int_equal(router_hash_value(t, true, five8, 8, &h), 0);
		assert_true(h == want);
		assert_int_equal(router_hash_value(t, true, minus1_8, 8, &h), 0);
		assert_int_equal((int64_t)h, -5017072347659237694);
		assert_int_equal(router_hash_value(t, true, five4, 3, &h), -1);
		assert_int_equal(router_hash_value(t, true, five4, 0, &h), -1);
	}
	assert_int_equal(router_hash_value(ROUTER_INT8, true, big8, 8, &h), 0);
	assert_int_equal((int64_t)h, 5968994663651403477);
	assert_int_equal(router_hash_value(ROUTER_INT4, true, big8, 8, &h), -1);
	assert_int_equal(router_hash_value(ROUTER_INT2, true, int4_max, 4, &h), -1);
	assert_int_equal(router_hash_value(ROUTER_INT4, true, int4_max, 4, &h), 0);
	assert_int_equal((int64_t)h, -6050265599104649060);

	const uint8_t u[16] = { 0xa0, 0xee, 0xbc, 0x99, 0x9c, 0x0b, 0x4e, 0xf8,
				0xbb, 0x6d, 0x6b, 0xb9, 0xbd, 0x38, 0x0a, 0x11 };
	assert_int_equal(router_hash_value(ROUTER_UUID, true, u, 16, &h), 0);
	assert_int_equal((int64_t)h, 424513190990560493);
	assert_int_equal(router_hash_value(ROUTER_UUID, true, u, 15, &h), -1);

	assert_int_equal(router_hash_value(ROUTER_TEXT, true, (const uint8_t *)"hello world!", 12,
					   &h),
			 0);
	assert_int_equal((int64_t)h, -1886269529411655687);
	assert_int_equal(router_hash_value(ROUTER_BPCHAR, true, (const uint8_t *)"ab   ", 5, &h),
			 0);
	assert_int_equal((int64_t)h, 596009030900183869);
}

struct known_row {
	const char *values[3]; /* NULL: SQL NULL */
	int mod3, mod1000;     /* satisfies_hash_partition's remainders */
};

static void check_rows(int n_cols, const enum router_type *types, const struct known_row *rows,
		       size_t n_rows)
{
	for (size_t i = 0; i < n_rows; i++) {
		int s3 = router_key_shard(n_cols, types, rows[i].values, 3);
		int s1000 = router_key_shard(n_cols, types, rows[i].values, 1000);
		if (s3 != rows[i].mod3 || s1000 != rows[i].mod1000)
			fail_msg("row %zu: shards %d and %d, PostgreSQL says %d and %d", i, s3,
				 s1000, rows[i].mod3, rows[i].mod1000);
	}
}

static void test_row_remainders(void **state)
{
	(void)state;
	/* CREATE TABLE k1 (a int2) PARTITION BY HASH (a) */
	static const enum router_type k1[] = { ROUTER_INT2 };
	static const struct known_row k1_rows[] = {
		{ { "-32768" }, 0, 141 },
		{ { "0" }, 2, 768 },
		{ { "32767" }, 1, 766 },
	};
	check_rows(1, k1, k1_rows, sizeof(k1_rows) / sizeof(k1_rows[0]));

	/* CREATE TABLE k2 (a int8, b text) PARTITION BY HASH (a, b) */
	static const enum router_type k2[] = { ROUTER_INT8, ROUTER_TEXT };
	static const struct known_row k2_rows[] = {
		{ { "5", "x" }, 1, 440 },
		{ { "-1", "" }, 2, 920 },
		{ { NULL, "\xc4\xb3\xe2\x82\xac\xf0\x9f\x98\x80" }, 2, 449 },
		{ { "9223372036854775807", NULL }, 0, 606 },
		{ { NULL, NULL }, 0, 0 },
		{ { "0", "tenant-42" }, 1, 612 },
	};
	check_rows(2, k2, k2_rows, sizeof(k2_rows) / sizeof(k2_rows[0]));

	/* CREATE TABLE k3 (a int4, b uuid, c bpchar(4)) PARTITION BY HASH (a, b, c) */
	static const enum router_type k3[] = { ROUTER_INT4, ROUTER_UUID, ROUTER_BPCHAR };
	static const struct known_row k3_rows[] = {
		{ { "1", "a0eebc99-9c0b-4ef8-bb6d-6bb9bd380a11", "ab" }, 0, 413 },
		{ { "-2147483648", NULL, "zz  " }, 0, 891 },
		{ { NULL, "00000000-0000-0000-0000-000000000000", NULL }, 0, 925 },
	};
	check_rows(3, k3, k3_rows, sizeof(k3_rows) / sizeof(k3_rows[0]));

	/* a value that is no input for its type has no shard */
	const char *bad[] = { "x", "y" };
	assert_int_equal(router_key_shard(2, k2, bad, 3), -1);
}

/* The row hash of a single-column key is hash_combine64(0, h). */
static void test_combine(void **state)
{
	(void)state;
	assert_true(router_hash_combine(0, 0) == UINT64_C(0x49a0f4dd15e5a8e3));
	uint64_t h = hash_text(ROUTER_INT2, "0");
	assert_int_equal(router_hash_shard(router_hash_combine(0, h), 1000), 768);
	assert_int_equal(router_hash_shard(UINT64_MAX, 64), 63);
}

static void test_type_names(void **state)
{
	(void)state;
	static const char *const names[] = { "int2",    "int4",   "int8", "text",
					     "varchar", "bpchar", "uuid" };
	for (int i = 0; i < (int)(sizeof(names) / sizeof(names[0])); i++) {
		assert_int_equal(router_type_parse(names[i]), i);
		assert_string_equal(router_type_name(i), names[i]);
	}
	assert_int_equal(router_type_parse("INT8"), ROUTER_INT8);
	assert_int_equal(router_type_parse("bigint"), -1);
	assert_int_equal(router_type_parse(""), -1);
	assert_int_equal(router_type_parse("int16"), -1);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_known_hashes),     cmocka_unit_test(test_integer_spellings),
		cmocka_unit_test(test_invalid_integers), cmocka_unit_test(test_invalid_uuids),
		cmocka_unit_test(test_binary),           cmocka_unit_test(test_row_remainders),
		cmocka_unit_test(test_combine),          cmocka_unit_test(test_type_names),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
