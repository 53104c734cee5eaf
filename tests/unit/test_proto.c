/* proto/proto.c: the pure frame codec. Every expected byte string here is
 * written out by hand from the PostgreSQL v3 protocol documentation
 * ("Message Formats"), never produced by the builders under test, so a
 * builder and a parser cannot agree on a shared mistake. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "proto/proto.h"

/* ---- helpers ------------------------------------------------------------ */

#define GUARD 0xA5

/* Builds into a buffer with guard bytes after cap; checks the guards. */
struct outbuf {
	uint8_t b[1024 + 16];
	struct proto_writer w;
};

static void out_init(struct outbuf *o, size_t cap)
{
	assert_true(cap <= 1024);
	memset(o->b, GUARD, sizeof(o->b));
	o->w = proto_writer_init(o->b, cap);
}

static void out_check_guard(const struct outbuf *o)
{
	for (size_t i = o->w.cap; i < sizeof(o->b); i++)
		assert_int_equal(o->b[i], GUARD);
}

static void expect_bytes(const struct outbuf *o, const void *want, size_t n)
{
	assert_false(o->w.overflow);
	assert_int_equal(o->w.len, n);
	assert_memory_equal(o->b, want, n);
	out_check_guard(o);
}

#define EXPECT(o, lit) expect_bytes((o), (lit), sizeof(lit) - 1)

/* Untrusted input goes through an exactly-sized heap copy, so that under
 * AddressSanitizer any read past len is caught instead of landing on a
 * string literal's NUL. */
static uint8_t *dup_exact(const void *buf, size_t len)
{
	uint8_t *c = malloc(len ? len : 1);
	assert_non_null(c);
	if (len)
		memcpy(c, buf, len);
	return c;
}

/* The copy the last startup() parsed; parse results point into it. Freed
 * by the next call and by the group teardown. */
static uint8_t *last_copy;

static enum proto_result startup(const void *buf, size_t len, struct proto_startup *s,
				 const char **why)
{
	free(last_copy);
	last_copy = dup_exact(buf, len);
	return proto_parse_startup(last_copy, len, s, why);
}

static int teardown_group(void **state)
{
	(void)state;
	free(last_copy);
	last_copy = NULL;
	return 0;
}

static enum proto_result parse_error(const void *body, size_t len, struct proto_error_fields *f)
{
	free(last_copy);
	last_copy = dup_exact(body, len);
	return proto_parse_error(last_copy, len, f);
}

#define PARSE_ERROR(lit, f) parse_error((lit), sizeof(lit) - 1, (f))

/* parses a string literal (with its implicit trailing NUL dropped) */
#define STARTUP(lit, s, why) startup((lit), sizeof(lit) - 1, (s), (why))

static void expect_startup_err(const void *buf, size_t len)
{
	struct proto_startup s;
	const char *why = NULL;
	assert_int_equal(startup(buf, len, &s, &why), PROTO_ERR);
	assert_non_null(why);
	assert_true(strlen(why) > 0);
}

#define EXPECT_STARTUP_ERR(lit) expect_startup_err((lit), sizeof(lit) - 1)

/* refused where PostgreSQL closes without a word: ERR and no reason */
static void expect_startup_silent(const void *buf, size_t len)
{
	struct proto_startup s;
	const char *why = "unset";
	assert_int_equal(startup(buf, len, &s, &why), PROTO_ERR);
	assert_null(why);
}

#define EXPECT_STARTUP_SILENT(lit) expect_startup_silent((lit), sizeof(lit) - 1)

/* ---- readers ------------------------------------------------------------ */

static void test_read_exact(void **state)
{
	(void)state;
	static const uint8_t in[] = { 0x7f, 0xff, 0xfe, 0x80, 0x00, 0x00,
				      0x01, 'h',  'i',  0,    0xde, 0xad };
	struct proto_reader r = proto_reader_init(in, sizeof(in));
	assert_int_equal(proto_get_u8(&r), 0x7f);
	assert_int_equal(proto_get_i16(&r), -2);
	assert_int_equal(proto_get_i32(&r), (int32_t)0x80000001u);
	const char *s = proto_get_cstr(&r);
	assert_non_null(s);
	assert_string_equal(s, "hi");
	assert_ptr_equal(s, (const char *)in + 7);
	const uint8_t *b = proto_get_bytes(&r, 2);
	assert_ptr_equal(b, in + 10);
	assert_int_equal(r.left, 0);
	assert_false(r.err);
}

static void test_read_i32_positive(void **state)
{
	(void)state;
	static const uint8_t in[] = { 0x00, 0x03, 0x00, 0x00, 0x01, 0x02 };
	struct proto_reader r = proto_reader_init(in, sizeof(in));
	assert_int_equal(proto_get_i32(&r), 196608);
	assert_int_equal(proto_get_i16(&r), 0x0102);
	assert_false(r.err);
	assert_int_equal(r.left, 0);
}

static void test_read_u8_short(void **state)
{
	(void)state;
	static const uint8_t in[] = { 1 };
	struct proto_reader r = proto_reader_init(in, 0);
	assert_int_equal(proto_get_u8(&r), 0);
	assert_true(r.err);
}

static void test_read_i16_short(void **state)
{
	(void)state;
	static const uint8_t in[] = { 0x12 };
	struct proto_reader r = proto_reader_init(in, sizeof(in));
	assert_int_equal(proto_get_i16(&r), 0);
	assert_true(r.err);
	assert_int_equal(r.left, 1); /* nothing consumed */
}

static void test_read_i32_short(void **state)
{
	(void)state;
	static const uint8_t in[] = { 0x12, 0x34, 0x56 };
	struct proto_reader r = proto_reader_init(in, sizeof(in));
	assert_int_equal(proto_get_i32(&r), 0);
	assert_true(r.err);
	assert_int_equal(r.left, 3);
}

static void test_read_bytes_short(void **state)
{
	(void)state;
	static const uint8_t in[] = { 1, 2, 3 };
	struct proto_reader r = proto_reader_init(in, sizeof(in));
	assert_null(proto_get_bytes(&r, 4));
	assert_true(r.err);
	/* zero bytes from an empty reader is fine */
	struct proto_reader e = proto_reader_init(in, 0);
	assert_non_null(proto_get_bytes(&e, 0));
	assert_false(e.err);
}

static void test_read_cstr_no_nul(void **state)
{
	(void)state;
	static const uint8_t in[] = { 'a', 'b', 'c', 0 };
	/* the NUL lies just past the reader's end: must not be seen */
	struct proto_reader r = proto_reader_init(in, 3);
	assert_null(proto_get_cstr(&r));
	assert_true(r.err);
	/* same on an exactly-sized heap buffer, so ASan sees any overread */
	uint8_t *h = dup_exact("abc", 3);
	r = proto_reader_init(h, 3);
	assert_null(proto_get_cstr(&r));
	assert_true(r.err);
	free(h);
	/* empty string is one NUL byte */
	struct proto_reader e = proto_reader_init(in + 3, 1);
	const char *s = proto_get_cstr(&e);
	assert_non_null(s);
	assert_string_equal(s, "");
	assert_int_equal(e.left, 0);
}

static void test_read_null_empty_reader(void **state)
{
	(void)state;
	/* a reader over no bytes at all (NULL, 0): every read fails cleanly,
	 * with no library call on the NULL pointer (UBSan checks memchr's
	 * nonnull argument even for length 0) */
	struct proto_reader r = proto_reader_init(NULL, 0);
	assert_null(proto_get_cstr(&r));
	assert_true(r.err);
	r = proto_reader_init(NULL, 0);
	assert_int_equal(proto_get_u8(&r), 0);
	assert_true(r.err);
	r = proto_reader_init(NULL, 0);
	assert_int_equal(proto_get_i32(&r), 0);
	assert_true(r.err);
}

static void test_read_err_sticks(void **state)
{
	(void)state;
	static const uint8_t in[] = { 0x01, 0x02, 0x03, 'x', 0, 0x09 };
	struct proto_reader r = proto_reader_init(in, sizeof(in));
	assert_int_equal(proto_get_u8(&r), 1);
	assert_null(proto_get_bytes(&r, 6)); /* 5 left */
	assert_true(r.err);
	/* every later read fails, though the bytes are there */
	assert_int_equal(proto_get_u8(&r), 0);
	assert_int_equal(proto_get_i16(&r), 0);
	assert_int_equal(proto_get_i32(&r), 0);
	assert_null(proto_get_cstr(&r));
	assert_null(proto_get_bytes(&r, 0));
	assert_true(r.err);
	assert_int_equal(r.left, 5);
	assert_ptr_equal(r.p, in + 1);

	/* same after a short i32: a one-byte read that would fit still fails */
	r = proto_reader_init(in, 3);
	assert_int_equal(proto_get_i32(&r), 0);
	assert_int_equal(proto_get_u8(&r), 0);
	assert_true(r.err);
	assert_int_equal(r.left, 3);
}

/* ---- proto_frame --------------------------------------------------------- */

static void test_frame_short(void **state)
{
	(void)state;
	static const uint8_t in[] = { 'Z', 0, 0, 0, 5, 'I' };
	uint8_t type = 0;
	uint32_t total = 0;
	for (size_t n = 0; n < 5; n++)
		assert_int_equal(proto_frame(in, n, PROTO_MAX_MESSAGE, &type, &total), PROTO_AGAIN);
	assert_int_equal(proto_frame(in, 5, PROTO_MAX_MESSAGE, &type, &total), PROTO_OK);
	assert_int_equal(type, 'Z');
	assert_int_equal(total, 6);
}

static void test_frame_len_below_4(void **state)
{
	(void)state;
	static const uint8_t three[] = { 'Q', 0, 0, 0, 3 };
	static const uint8_t zero[] = { 'Q', 0, 0, 0, 0 };
	static const uint8_t neg[] = { 'Q', 0xff, 0xff, 0xff, 0xff };
	uint8_t type;
	uint32_t total;
	assert_int_equal(proto_frame(three, 5, PROTO_MAX_MESSAGE, &type, &total), PROTO_ERR);
	assert_int_equal(proto_frame(zero, 5, PROTO_MAX_MESSAGE, &type, &total), PROTO_ERR);
	assert_int_equal(proto_frame(neg, 5, PROTO_MAX_MESSAGE, &type, &total), PROTO_ERR);
}

static void test_frame_len_4(void **state)
{
	(void)state;
	static const uint8_t in[] = { 'X', 0, 0, 0, 4 }; /* Terminate */
	uint8_t type = 0;
	uint32_t total = 0;
	assert_int_equal(proto_frame(in, 5, PROTO_MAX_MESSAGE, &type, &total), PROTO_OK);
	assert_int_equal(type, 'X');
	assert_int_equal(total, 5);
}

static void test_frame_max_boundary(void **state)
{
	(void)state;
	static const uint8_t at[] = { 'D', 0, 0, 0x01, 0x00 };    /* 256 */
	static const uint8_t above[] = { 'D', 0, 0, 0x01, 0x01 }; /* 257 */
	uint8_t type = 0;
	uint32_t total = 0;
	assert_int_equal(proto_frame(at, 5, 256, &type, &total), PROTO_OK);
	assert_int_equal(type, 'D');
	assert_int_equal(total, 257);
	assert_int_equal(proto_frame(above, 5, 256, &type, &total), PROTO_ERR);

	/* the 1 GiB default cap, exactly and one above */
	static const uint8_t gib[] = { 'D', 0x40, 0x00, 0x00, 0x00 };
	static const uint8_t gib1[] = { 'D', 0x40, 0x00, 0x00, 0x01 };
	assert_int_equal(proto_frame(gib, 5, PROTO_MAX_MESSAGE, &type, &total), PROTO_OK);
	assert_int_equal(total, 0x40000001u);
	assert_int_equal(proto_frame(gib1, 5, PROTO_MAX_MESSAGE, &type, &total), PROTO_ERR);
}

/* ---- proto_parse_startup ------------------------------------------------- */

static void test_startup_sqlstates(void **state)
{
	(void)state;
	struct proto_startup s;
	const char *why;
	/* protocol 4.0 and 2.0: PostgreSQL's 0A000 */
	static const uint8_t v4[] = { 0, 0, 0, 13, 0, 4, 0, 0, 'u', 's', 'e', 'r', 0 };
	static const uint8_t v2[] = { 0, 0, 0, 13, 0, 2, 0, 0, 'u', 's', 'e', 'r', 0 };
	assert_int_equal(proto_parse_startup(v4, sizeof(v4), &s, &why), PROTO_ERR);
	assert_string_equal(proto_startup_sqlstate(why), "0A000");
	assert_int_equal(proto_parse_startup(v2, sizeof(v2), &s, &why), PROTO_ERR);
	assert_string_equal(proto_startup_sqlstate(why), "0A000");
	/* no user: 28000 */
	static const uint8_t nouser[] = { 0, 0, 0, 9, 0, 3, 0, 0, 0 };
	assert_int_equal(proto_parse_startup(nouser, sizeof(nouser), &s, &why), PROTO_ERR);
	assert_string_equal(proto_startup_sqlstate(why), "28000");
	/* a duplicate is no error (PostgreSQL takes the last) */
	static const uint8_t dup[] = { 0, 0,   0, 21,  0,   3,   0,   0, 'u', 's', 'e', 'r',
				       0, 'a', 0, 'u', 's', 'e', 'r', 0, 'b', 0,   0 };
	uint8_t dup_ok[sizeof(dup)];
	memcpy(dup_ok, dup, sizeof(dup));
	dup_ok[3] = sizeof(dup);
	assert_int_equal(proto_parse_startup(dup_ok, sizeof(dup_ok), &s, &why), PROTO_OK);
	assert_string_equal(s.user, "b");
	/* a broken layout: a protocol violation */
	static const uint8_t layout[] = { 0, 0, 0, 12, 0, 3, 0, 0, 'u', 's', 'e', 'r' };
	assert_int_equal(proto_parse_startup(layout, sizeof(layout), &s, &why), PROTO_ERR);
	assert_string_equal(why, PROTO_WHY_LAYOUT);
	assert_string_equal(proto_startup_sqlstate(why), "08P01");
}

static void test_message_types(void **state)
{
	(void)state;
	for (const char *t = "QPBDECSHFdcfX"; *t; t++)
		assert_true(proto_frontend_type((uint8_t)*t));
	assert_false(proto_frontend_type(0));   /* a startup packet's first byte */
	assert_false(proto_frontend_type('p')); /* a password after login */
	assert_false(proto_frontend_type('!'));
	for (const char *t = "123ACDEGHIKNRSTVWZcdnstv"; *t; t++)
		assert_true(proto_backend_type((uint8_t)*t));
	assert_false(proto_backend_type(0));
	assert_false(proto_backend_type('!'));
	assert_false(proto_backend_type('Q'));
}

static void test_startup_ssl(void **state)
{
	(void)state;
	/* SSLRequest: Int32(8) Int32(80877103) = 0x04D2162F */
	struct proto_startup s;
	const char *why = "x";
	assert_int_equal(STARTUP("\x00\x00\x00\x08\x04\xd2\x16\x2f", &s, &why), PROTO_OK);
	assert_int_equal(s.kind, PROTO_STARTUP_SSL);
	assert_int_equal(s.total, 8);
	assert_null(why);
}

static void test_startup_ssl_followed_by_more(void **state)
{
	(void)state;
	/* bytes after the 8-byte request (a pipelined TLS hello) are not ours */
	struct proto_startup s;
	const char *why;
	assert_int_equal(STARTUP("\x00\x00\x00\x08\x04\xd2\x16\x2f\x16\x03\x01", &s, &why),
			 PROTO_OK);
	assert_int_equal(s.kind, PROTO_STARTUP_SSL);
	assert_int_equal(s.total, 8);
}

static void test_startup_gssenc(void **state)
{
	(void)state;
	/* GSSENCRequest: Int32(8) Int32(80877104) = 0x04D21630 */
	struct proto_startup s;
	const char *why;
	assert_int_equal(STARTUP("\x00\x00\x00\x08\x04\xd2\x16\x30", &s, &why), PROTO_OK);
	assert_int_equal(s.kind, PROTO_STARTUP_GSSENC);
	assert_int_equal(s.total, 8);
}

static void test_startup_ssl_wrong_length(void **state)
{
	(void)state;
	/* PostgreSQL 15 goes by the code alone: the whole packet is consumed */
	struct proto_startup s;
	const char *why;
	assert_int_equal(STARTUP("\x00\x00\x00\x0c\x04\xd2\x16\x2f\x00\x00\x00\x00", &s, &why),
			 PROTO_OK);
	assert_int_equal(s.kind, PROTO_STARTUP_SSL);
	assert_int_equal(s.total, 12);
	assert_int_equal(STARTUP("\x00\x00\x00\x0c\x04\xd2\x16\x30\x00\x00\x00\x00", &s, &why),
			 PROTO_OK);
	assert_int_equal(s.kind, PROTO_STARTUP_GSSENC);
}

static void test_startup_cancel(void **state)
{
	(void)state;
	/* CancelRequest: Int32(16) Int32(80877102)=0x04D2162E pid key */
	struct proto_startup s;
	const char *why;
	assert_int_equal(STARTUP("\x00\x00\x00\x10\x04\xd2\x16\x2e"
				 "\x00\x00\x30\x39"  /* 12345 */
				 "\xde\xad\xbe\xef", /* key, negative as int32 */
				 &s, &why),
			 PROTO_OK);
	assert_int_equal(s.kind, PROTO_STARTUP_CANCEL);
	assert_int_equal(s.total, 16);
	assert_int_equal(s.cancel_pid, 12345);
	assert_int_equal(s.cancel_key, (int32_t)0xdeadbeefu);
}

static void test_startup_cancel_wrong_length(void **state)
{
	(void)state;
	EXPECT_STARTUP_SILENT("\x00\x00\x00\x0c\x04\xd2\x16\x2e\x00\x00\x30\x39");
	EXPECT_STARTUP_SILENT("\x00\x00\x00\x14\x04\xd2\x16\x2e\x00\x00\x30\x39"
			      "\x00\x00\x00\x01\x00\x00\x00\x02");
}

static void test_startup_v3_full(void **state)
{
	(void)state;
	static const char pkt[] = "\x00\x00\x00\x38" /* 56 */
				  "\x00\x03\x00\x00"
				  "user\0alice\0"
				  "database\0shop\0"
				  "application_name\0psql\0"
				  "\0";
	assert_int_equal(sizeof(pkt) - 1, 56);
	struct proto_startup s;
	const char *why = "x";
	assert_int_equal(startup(pkt, sizeof(pkt) - 1, &s, &why), PROTO_OK);
	assert_null(why);
	assert_int_equal(s.kind, PROTO_STARTUP_V3);
	assert_int_equal(s.total, 56);
	assert_int_equal(s.minor, 0);
	assert_string_equal(s.user, "alice");
	assert_string_equal(s.database, "shop");
	assert_int_equal(s.n_params, 3);
	assert_string_equal(s.names[0], "user");
	assert_string_equal(s.values[0], "alice");
	assert_string_equal(s.names[1], "database");
	assert_string_equal(s.values[1], "shop");
	assert_string_equal(s.names[2], "application_name");
	assert_string_equal(s.values[2], "psql");
	/* pointers point into the packet, not copies */
	assert_ptr_equal(s.user, (const char *)last_copy + 13);
}

static void test_startup_database_defaults_to_user(void **state)
{
	(void)state;
	struct proto_startup s;
	const char *why;
	assert_int_equal(STARTUP("\x00\x00\x00\x12\x00\x03\x00\x00"
				 "user\0bob\0\0",
				 &s, &why),
			 PROTO_OK);
	assert_string_equal(s.user, "bob");
	assert_non_null(s.database);
	assert_string_equal(s.database, "bob");
	assert_int_equal(s.n_params, 1);

	/* an empty database value also means "same as user" */
	assert_int_equal(STARTUP("\x00\x00\x00\x1c\x00\x03\x00\x00"
				 "user\0bob\0database\0\0\0",
				 &s, &why),
			 PROTO_OK);
	assert_string_equal(s.database, "bob");
}

static void test_startup_minor_3_2(void **state)
{
	(void)state;
	struct proto_startup s;
	const char *why;
	assert_int_equal(STARTUP("\x00\x00\x00\x12\x00\x03\x00\x02"
				 "user\0bob\0\0",
				 &s, &why),
			 PROTO_OK);
	assert_int_equal(s.kind, PROTO_STARTUP_V3);
	assert_int_equal(s.minor, 2);
}

static void test_startup_major_2(void **state)
{
	(void)state;
	EXPECT_STARTUP_ERR("\x00\x00\x00\x12\x00\x02\x00\x00"
			   "user\0bob\0\0");
	/* major 4 is not accepted either */
	EXPECT_STARTUP_ERR("\x00\x00\x00\x12\x00\x04\x00\x00"
			   "user\0bob\0\0");
}

static void test_startup_bad_total_length(void **state)
{
	(void)state;
	EXPECT_STARTUP_SILENT("\x00\x00\x00\x07\x04\xd2\x16\x2f");
	EXPECT_STARTUP_SILENT("\x00\x00\x00\x00\x04\xd2\x16\x2f");
	/* 10005 > PROTO_MAX_STARTUP, rejected from the header alone */
	EXPECT_STARTUP_SILENT("\x00\x00\x27\x15");
	EXPECT_STARTUP_SILENT("\xff\xff\xff\xff");
	/* a Terminate where the startup packet should be: 'X' reads as a length */
	EXPECT_STARTUP_SILENT("X\x00\x00\x00\x04");
}

static void test_startup_max_length_accepted(void **state)
{
	(void)state;
	/* exactly 10004 bytes (a body of 10000 after the length word, as in
	 * PostgreSQL): user=bob plus one long "x" parameter */
	static uint8_t pkt[PROTO_MAX_STARTUP];
	memset(pkt, 0, sizeof(pkt));
	static const uint8_t head[] = { 0x00, 0x00, 0x27, 0x14, 0x00, 0x03, 0x00, 0x00 };
	memcpy(pkt, head, sizeof(head));
	memcpy(pkt + 8, "user\0bob\0x\0", 11);
	/* value of x fills the rest up to the two final NULs */
	memset(pkt + 19, 'v', PROTO_MAX_STARTUP - 19 - 2);
	struct proto_startup s;
	const char *why;
	assert_int_equal(startup(pkt, sizeof(pkt), &s, &why), PROTO_OK);
	assert_int_equal(s.total, PROTO_MAX_STARTUP);
	assert_int_equal(s.n_params, 2);
	assert_int_equal(strlen(s.values[1]), PROTO_MAX_STARTUP - 21);
}

static void test_startup_truncated(void **state)
{
	(void)state;
	static const char pkt[] = "\x00\x00\x00\x12\x00\x03\x00\x00"
				  "user\0bob\0\0";
	struct proto_startup s;
	const char *why = "x";
	for (size_t n = 0; n < sizeof(pkt) - 1; n++) {
		why = "x";
		assert_int_equal(startup(pkt, n, &s, &why), PROTO_AGAIN);
		assert_null(why);
	}
	assert_int_equal(startup(pkt, sizeof(pkt) - 1, &s, &why), PROTO_OK);
}

static void test_startup_missing_user(void **state)
{
	(void)state;
	EXPECT_STARTUP_ERR("\x00\x00\x00\x17\x00\x03\x00\x00"
			   "database\0shop\0\0");
	/* no parameters at all */
	EXPECT_STARTUP_ERR("\x00\x00\x00\x09\x00\x03\x00\x00\0");
}

static void test_startup_empty_user(void **state)
{
	(void)state;
	EXPECT_STARTUP_ERR("\x00\x00\x00\x0f\x00\x03\x00\x00"
			   "user\0\0\0");
}

static void test_startup_duplicate_param(void **state)
{
	(void)state;
	/* as PostgreSQL: no error, the last one counts */
	struct proto_startup s;
	const char *why;
	assert_int_equal(STARTUP("\x00\x00\x00\x1b\x00\x03\x00\x00"
				 "user\0bob\0user\0eve\0\0",
				 &s, &why),
			 PROTO_OK);
	assert_string_equal(s.user, "eve");
	assert_int_equal(STARTUP("\x00\x00\x00\x1a\x00\x03\x00\x00"
				 "user\0bob\0x\0a\0x\0b\0\0",
				 &s, &why),
			 PROTO_OK);
	assert_int_equal(s.n_params, 3);
	assert_string_equal(s.values[2], "b");
}

static void test_startup_unterminated(void **state)
{
	(void)state;
	/* name without NUL */
	EXPECT_STARTUP_ERR("\x00\x00\x00\x0c\x00\x03\x00\x00"
			   "user");
	/* value without NUL */
	EXPECT_STARTUP_ERR("\x00\x00\x00\x10\x00\x03\x00\x00"
			   "user\0bob");
	/* name with no value at all */
	EXPECT_STARTUP_ERR("\x00\x00\x00\x0d\x00\x03\x00\x00"
			   "user\0");
	/* pairs but no final terminator */
	EXPECT_STARTUP_ERR("\x00\x00\x00\x11\x00\x03\x00\x00"
			   "user\0bob\0");
	/* version only, no parameter list at all */
	EXPECT_STARTUP_ERR("\x00\x00\x00\x08\x00\x03\x00\x00");
}

static void test_startup_unterminated_ignores_bytes_past_total(void **state)
{
	(void)state;
	/* the NUL that would end "bob" lies beyond the declared length */
	EXPECT_STARTUP_ERR("\x00\x00\x00\x10\x00\x03\x00\x00"
			   "user\0bob\0\0");
}

static void test_startup_trailing_bytes(void **state)
{
	(void)state;
	EXPECT_STARTUP_ERR("\x00\x00\x00\x13\x00\x03\x00\x00"
			   "user\0bob\0\0z");
	EXPECT_STARTUP_ERR("\x00\x00\x00\x13\x00\x03\x00\x00"
			   "user\0bob\0\0\0");
}

/* n distinct parameters p00..p63 (value "v"), user first */
static size_t build_many_params(uint8_t *buf, int n)
{
	size_t o = 8;
	memcpy(buf + o, "user\0u\0", 7);
	o += 7;
	for (int i = 1; i < n; i++) {
		int k = snprintf((char *)buf + o, 8, "p%02d", i);
		o += (size_t)k + 1;
		memcpy(buf + o, "v", 2);
		o += 2;
	}
	buf[o++] = 0;
	buf[0] = (uint8_t)(o >> 24);
	buf[1] = (uint8_t)(o >> 16);
	buf[2] = (uint8_t)(o >> 8);
	buf[3] = (uint8_t)o;
	buf[4] = 0x00;
	buf[5] = 0x03;
	buf[6] = 0x00;
	buf[7] = 0x00;
	return o;
}

static void test_startup_64_params_ok(void **state)
{
	(void)state;
	uint8_t buf[1024];
	size_t n = build_many_params(buf, 64);
	struct proto_startup s;
	const char *why;
	assert_int_equal(startup(buf, n, &s, &why), PROTO_OK);
	assert_int_equal(s.n_params, 64);
	assert_string_equal(s.names[63], "p63");
	assert_string_equal(s.user, "u");
}

static void test_startup_65_params_err(void **state)
{
	(void)state;
	uint8_t buf[1024];
	size_t n = build_many_params(buf, 65);
	expect_startup_err(buf, n);
}

/* ---- proto_parse_error ---------------------------------------------------- */

static void test_error_parse_real(void **state)
{
	(void)state;
	/* body of an ErrorResponse as a v3 server sends it */
	static const char body[] = "SFATAL\0"
				   "VFATAL\0"
				   "C28P01\0"
				   "Mpassword authentication failed for user \"bob\"\0"
				   "Dthe detail\0"
				   "Fauth.c\0"
				   "L326\0"
				   "Rauth_failed\0"
				   "\0";
	struct proto_error_fields f;
	assert_int_equal(PARSE_ERROR(body, &f), PROTO_OK);
	assert_string_equal(f.severity, "FATAL");
	assert_string_equal(f.code, "28P01");
	assert_string_equal(f.message, "password authentication failed for user \"bob\"");
	assert_string_equal(f.detail, "the detail");
}

static void test_error_severity_prefers_v(void **state)
{
	(void)state;
	/* localized S first, then V; and V first, then S */
	static const char a[] = "SFEHLER\0VERROR\0C42601\0Msyntax\0\0";
	static const char b[] = "VERROR\0SFEHLER\0C42601\0Msyntax\0\0";
	static const char c[] = "SFEHLER\0C42601\0Msyntax\0\0";
	struct proto_error_fields f;
	assert_int_equal(PARSE_ERROR(a, &f), PROTO_OK);
	assert_string_equal(f.severity, "ERROR");
	assert_null(f.detail);
	assert_int_equal(PARSE_ERROR(b, &f), PROTO_OK);
	assert_string_equal(f.severity, "ERROR");
	assert_int_equal(PARSE_ERROR(c, &f), PROTO_OK);
	assert_string_equal(f.severity, "FEHLER");
}

static void test_error_missing_fields(void **state)
{
	(void)state;
	static const char no_c[] = "SERROR\0Mmsg\0\0";
	static const char no_m[] = "SERROR\0C42601\0\0";
	static const char no_s[] = "C42601\0Mmsg\0\0";
	struct proto_error_fields f;
	assert_int_equal(PARSE_ERROR(no_c, &f), PROTO_ERR);
	assert_int_equal(PARSE_ERROR(no_m, &f), PROTO_ERR);
	assert_int_equal(PARSE_ERROR(no_s, &f), PROTO_ERR);
	assert_int_equal(parse_error("", 0, &f), PROTO_ERR);
}

static void test_error_missing_final_nul(void **state)
{
	(void)state;
	static const char body[] = "SERROR\0C42601\0Mmsg\0";
	struct proto_error_fields f;
	assert_int_equal(PARSE_ERROR(body, &f), PROTO_ERR);
}

static void test_error_truncated_field(void **state)
{
	(void)state;
	static const char body[] = "SERROR\0C42601\0Mmsg\0\0";
	struct proto_error_fields f;
	/* cut inside the M value: "Mms" with no NUL */
	assert_int_equal(parse_error(body, 17, &f), PROTO_ERR);
	/* cut right after a field type byte */
	assert_int_equal(parse_error(body, 15, &f), PROTO_ERR);
	/* every strict prefix fails */
	for (size_t n = 0; n < sizeof(body) - 1; n++)
		assert_int_equal(parse_error(body, n, &f), PROTO_ERR);
}

/* ---- builders: to clients ------------------------------------------------ */

static void test_build_auth_ok(void **state)
{
	(void)state;
	struct outbuf o;
	out_init(&o, 64);
	proto_build_auth(&o.w, PROTO_AUTH_OK, NULL, 0);
	EXPECT(&o, "R\x00\x00\x00\x08\x00\x00\x00\x00");
}

static void test_build_auth_cleartext(void **state)
{
	(void)state;
	struct outbuf o;
	out_init(&o, 64);
	proto_build_auth(&o.w, PROTO_AUTH_CLEARTEXT, NULL, 0);
	EXPECT(&o, "R\x00\x00\x00\x08\x00\x00\x00\x03");
}

static void test_build_auth_md5_and_sasl(void **state)
{
	(void)state;
	struct outbuf o;
	out_init(&o, 64);
	/* AuthenticationMD5Password: Int32(12) Int32(5) Byte4 salt */
	proto_build_auth(&o.w, PROTO_AUTH_MD5, "\x01\x02\x03\x04", 4);
	EXPECT(&o, "R\x00\x00\x00\x0c\x00\x00\x00\x05\x01\x02\x03\x04");

	/* AuthenticationSASL: Int32(10) then mechanism list ending in a NUL */
	out_init(&o, 64);
	proto_build_auth(&o.w, PROTO_AUTH_SASL, "SCRAM-SHA-256\0\0", 15);
	EXPECT(&o,
	       "R\x00\x00\x00\x17\x00\x00\x00\x0a"
	       "SCRAM-SHA-256\0\0");
}

static void test_build_parameter_status(void **state)
{
	(void)state;
	struct outbuf o;
	out_init(&o, 64);
	proto_build_parameter_status(&o.w, "client_encoding", "UTF8");
	EXPECT(&o,
	       "S\x00\x00\x00\x19"
	       "client_encoding\0UTF8\0");
}

static void test_build_backend_key(void **state)
{
	(void)state;
	struct outbuf o;
	out_init(&o, 64);
	proto_build_backend_key(&o.w, 12345, (int32_t)0xdeadbeefu);
	EXPECT(&o, "K\x00\x00\x00\x0c\x00\x00\x30\x39\xde\xad\xbe\xef");
}

static void test_build_ready(void **state)
{
	(void)state;
	struct outbuf o;
	out_init(&o, 64);
	proto_build_ready(&o.w, 'I');
	EXPECT(&o, "Z\x00\x00\x00\x05I");
}

static void test_build_error(void **state)
{
	(void)state;
	struct outbuf o;
	out_init(&o, 128);
	proto_build_error(&o.w, "FATAL", "28P01", "bad password");
	/* 4 + (1+6)*2 + (1+6) + (1+13) + 1 = 40 */
	EXPECT(&o,
	       "E\x00\x00\x00\x28"
	       "SFATAL\0"
	       "VFATAL\0"
	       "C28P01\0"
	       "Mbad password\0"
	       "\0");
}

static void test_build_negotiate_version(void **state)
{
	(void)state;
	struct outbuf o;
	out_init(&o, 128);
	const char *const unknown[] = { "_pq_.foo", "_pq_.bar" };
	proto_build_negotiate_version(&o.w, 0, 2, unknown);
	/* 4 + 4 + 4 + 9 + 9 = 30 */
	EXPECT(&o,
	       "v\x00\x00\x00\x1e"
	       "\x00\x00\x00\x00"
	       "\x00\x00\x00\x02"
	       "_pq_.foo\0_pq_.bar\0");

	out_init(&o, 128);
	proto_build_negotiate_version(&o.w, 2, 0, NULL);
	EXPECT(&o, "v\x00\x00\x00\x0c\x00\x00\x00\x02\x00\x00\x00\x00");
}

/* ---- builders: to servers ------------------------------------------------ */

static void test_build_startup(void **state)
{
	(void)state;
	struct outbuf o;
	out_init(&o, 256);
	proto_build_startup(&o.w, "alice", "shop", 0, NULL, NULL);
	/* 4 + 4 + "user\0alice\0"(11) + "database\0shop\0"(14) + 1 = 34 */
	EXPECT(&o,
	       "\x00\x00\x00\x22"
	       "\x00\x03\x00\x00"
	       "user\0alice\0"
	       "database\0shop\0"
	       "\0");
}

static void test_build_startup_extra(void **state)
{
	(void)state;
	struct outbuf o;
	out_init(&o, 256);
	const char *const names[] = { "application_name", "DateStyle" };
	const char *const values[] = { "psql", "ISO" };
	proto_build_startup(&o.w, "u", "d", 2, names, values);
	/* 8 + 7 + 11 + 22 + 14 + 1 = 63 */
	EXPECT(&o,
	       "\x00\x00\x00\x3f"
	       "\x00\x03\x00\x00"
	       "user\0u\0"
	       "database\0d\0"
	       "application_name\0psql\0"
	       "DateStyle\0ISO\0"
	       "\0");
}

static void test_build_password(void **state)
{
	(void)state;
	struct outbuf o;
	out_init(&o, 64);
	proto_build_password(&o.w, "secret");
	EXPECT(&o, "p\x00\x00\x00\x0bsecret\0");
}

static void test_build_sasl_initial(void **state)
{
	(void)state;
	struct outbuf o;
	out_init(&o, 128);
	static const char data[] = "n,,n=,r=abc";
	proto_build_sasl_initial(&o.w, "SCRAM-SHA-256", data, sizeof(data) - 1);
	/* 4 + 14 + 4 + 11 = 33 */
	EXPECT(&o,
	       "p\x00\x00\x00\x21"
	       "SCRAM-SHA-256\0"
	       "\x00\x00\x00\x0b"
	       "n,,n=,r=abc");
}

static void test_build_sasl_response(void **state)
{
	(void)state;
	struct outbuf o;
	out_init(&o, 64);
	proto_build_sasl_response(&o.w, "c=biws,r=x,p=y", 14);
	EXPECT(&o,
	       "p\x00\x00\x00\x12"
	       "c=biws,r=x,p=y");
}

static void test_build_query(void **state)
{
	(void)state;
	struct outbuf o;
	out_init(&o, 64);
	proto_build_query(&o.w, "SELECT 1");
	EXPECT(&o, "Q\x00\x00\x00\x0dSELECT 1\0");
}

static void test_build_terminate(void **state)
{
	(void)state;
	struct outbuf o;
	out_init(&o, 64);
	proto_build_terminate(&o.w);
	EXPECT(&o, "X\x00\x00\x00\x04");
}

static void test_build_appends(void **state)
{
	(void)state;
	/* consecutive messages in one buffer each get their own length */
	struct outbuf o;
	out_init(&o, 64);
	proto_build_auth(&o.w, PROTO_AUTH_OK, NULL, 0);
	proto_build_backend_key(&o.w, 1, 2);
	proto_build_ready(&o.w, 'I');
	EXPECT(&o,
	       "R\x00\x00\x00\x08\x00\x00\x00\x00"
	       "K\x00\x00\x00\x0c\x00\x00\x00\x01\x00\x00\x00\x02"
	       "Z\x00\x00\x00\x05I");
}

/* ---- writer overflow ------------------------------------------------------ */

static void test_writer_overflow_every_cap(void **state)
{
	(void)state;
	/* the Query "SELECT 1" needs 14 bytes; every smaller cap overflows
	 * without touching a byte at or past cap */
	for (size_t cap = 0; cap < 14; cap++) {
		struct outbuf o;
		out_init(&o, cap);
		proto_build_query(&o.w, "SELECT 1");
		assert_true(o.w.overflow);
		assert_true(o.w.len <= cap);
		out_check_guard(&o);
	}
	struct outbuf o;
	out_init(&o, 14);
	proto_build_query(&o.w, "SELECT 1");
	EXPECT(&o, "Q\x00\x00\x00\x0dSELECT 1\0");
}

static void test_writer_overflow_sticks(void **state)
{
	(void)state;
	struct outbuf o;
	out_init(&o, 6);
	proto_put_i32(&o.w, 0x01020304);
	proto_put_i32(&o.w, 0x05060708); /* does not fit: overflow */
	assert_true(o.w.overflow);
	assert_int_equal(o.w.len, 4);
	proto_put_u8(&o.w, 9); /* would fit, but overflow sticks */
	proto_put_bytes(&o.w, "x", 1);
	proto_put_cstr(&o.w, "");
	assert_int_equal(o.w.len, 4);
	assert_memory_equal(o.b, "\x01\x02\x03\x04\xa5\xa5", 6);
	out_check_guard(&o);
}

static void test_writer_msg_end_noop_on_overflow(void **state)
{
	(void)state;
	struct outbuf o;
	out_init(&o, 8);
	size_t m = proto_msg_begin(&o.w, 'Q');
	assert_int_equal(m, 1);
	proto_put_cstr(&o.w, "SELECT 1"); /* 9 bytes, only 3 left */
	assert_true(o.w.overflow);
	proto_msg_end(&o.w, m);
	/* the length placeholder is still zero: nothing was patched */
	assert_memory_equal(o.b, "Q\x00\x00\x00\x00\xa5\xa5\xa5", 8);
	out_check_guard(&o);
}

static void test_writer_msg_begin_untyped(void **state)
{
	(void)state;
	struct outbuf o;
	out_init(&o, 16);
	size_t m = proto_msg_begin(&o.w, 0);
	assert_int_equal(m, 0);
	proto_put_i32(&o.w, PROTO_VERSION_3_0);
	proto_msg_end(&o.w, m);
	EXPECT(&o, "\x00\x00\x00\x08\x00\x03\x00\x00");
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_read_exact),
		cmocka_unit_test(test_startup_sqlstates),
		cmocka_unit_test(test_message_types),
		cmocka_unit_test(test_read_i32_positive),
		cmocka_unit_test(test_read_u8_short),
		cmocka_unit_test(test_read_i16_short),
		cmocka_unit_test(test_read_i32_short),
		cmocka_unit_test(test_read_bytes_short),
		cmocka_unit_test(test_read_cstr_no_nul),
		cmocka_unit_test(test_read_null_empty_reader),
		cmocka_unit_test(test_read_err_sticks),
		cmocka_unit_test(test_frame_short),
		cmocka_unit_test(test_frame_len_below_4),
		cmocka_unit_test(test_frame_len_4),
		cmocka_unit_test(test_frame_max_boundary),
		cmocka_unit_test(test_startup_ssl),
		cmocka_unit_test(test_startup_ssl_followed_by_more),
		cmocka_unit_test(test_startup_gssenc),
		cmocka_unit_test(test_startup_ssl_wrong_length),
		cmocka_unit_test(test_startup_cancel),
		cmocka_unit_test(test_startup_cancel_wrong_length),
		cmocka_unit_test(test_startup_v3_full),
		cmocka_unit_test(test_startup_database_defaults_to_user),
		cmocka_unit_test(test_startup_minor_3_2),
		cmocka_unit_test(test_startup_major_2),
		cmocka_unit_test(test_startup_bad_total_length),
		cmocka_unit_test(test_startup_max_length_accepted),
		cmocka_unit_test(test_startup_truncated),
		cmocka_unit_test(test_startup_missing_user),
		cmocka_unit_test(test_startup_empty_user),
		cmocka_unit_test(test_startup_duplicate_param),
		cmocka_unit_test(test_startup_unterminated),
		cmocka_unit_test(test_startup_unterminated_ignores_bytes_past_total),
		cmocka_unit_test(test_startup_trailing_bytes),
		cmocka_unit_test(test_startup_64_params_ok),
		cmocka_unit_test(test_startup_65_params_err),
		cmocka_unit_test(test_error_parse_real),
		cmocka_unit_test(test_error_severity_prefers_v),
		cmocka_unit_test(test_error_missing_fields),
		cmocka_unit_test(test_error_missing_final_nul),
		cmocka_unit_test(test_error_truncated_field),
		cmocka_unit_test(test_build_auth_ok),
		cmocka_unit_test(test_build_auth_cleartext),
		cmocka_unit_test(test_build_auth_md5_and_sasl),
		cmocka_unit_test(test_build_parameter_status),
		cmocka_unit_test(test_build_backend_key),
		cmocka_unit_test(test_build_ready),
		cmocka_unit_test(test_build_error),
		cmocka_unit_test(test_build_negotiate_version),
		cmocka_unit_test(test_build_startup),
		cmocka_unit_test(test_build_startup_extra),
		cmocka_unit_test(test_build_password),
		cmocka_unit_test(test_build_sasl_initial),
		cmocka_unit_test(test_build_sasl_response),
		cmocka_unit_test(test_build_query),
		cmocka_unit_test(test_build_terminate),
		cmocka_unit_test(test_build_appends),
		cmocka_unit_test(test_writer_overflow_every_cap),
		cmocka_unit_test(test_writer_overflow_sticks),
		cmocka_unit_test(test_writer_msg_end_noop_on_overflow),
		cmocka_unit_test(test_writer_msg_begin_untyped),
	};
	return cmocka_run_group_tests(tests, NULL, teardown_group);
}
