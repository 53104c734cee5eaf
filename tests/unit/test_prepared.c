/* relay/prepared.c: answering Parse...Sync without a server reads only what
 * the messages hold. rx is a heap block of exactly the bytes, so ASan
 * (SANITIZE=1) sees any read past them. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include <stdlib.h>
#include <string.h>

#include "core/conn.h"
#include "pool/stmt.h"
#include "proto/proto.h"
#include "relay/prepared.h"

static struct conn conn_with(const void *bytes, size_t len)
{
	struct conn c;
	memset(&c, 0, sizeof(c));
	c.rx = malloc(len);
	assert_non_null(c.rx);
	memcpy(c.rx, bytes, len);
	c.rx_end = c.rx_cap = (uint32_t)len;
	return c;
}

static int answer(const void *bytes, size_t len, uint32_t *consumed, char *out, size_t outlen)
{
	struct conn c = conn_with(bytes, len);
	struct stmt_names names = { 0 };
	uint8_t buf[4096];
	struct proto_writer wr = proto_writer_init(buf, sizeof(buf));
	int r = prepared_answer_locally(&c, &names, &wr);
	*consumed = c.rx_start;
	if (out)
		memcpy(out, buf, wr.len < outlen ? wr.len : outlen);
	stmt_names_clear(&names);
	free(c.rx);
	return r;
}

/* A Parse whose length (4) leaves no room for a name was read at pos + 5,
 * the next message's first byte: it is the server's to refuse now. */
static void test_parse_without_room_for_a_name(void **state)
{
	(void)state;
	static const uint8_t in[] = { 'P', 0, 0, 0, 4, 'S', 0, 0, 0, 4 };
	uint32_t consumed;
	assert_int_equal(answer(in, sizeof(in), &consumed, NULL, 0), PREP_LOCAL_NO);
	assert_int_equal(consumed, 0);
	/* last in the buffer: the old read went past it (ASan sees it) */
	assert_int_equal(answer(in, 5, &consumed, NULL, 0), PREP_LOCAL_NO);
}

/* A Sync declaring a body was skipped as 5 bytes, leaving its body to be
 * read as the next message: it is the server's to refuse now. */
static void test_sync_with_a_body(void **state)
{
	(void)state;
	static const uint8_t in[] = { 'P', 0, 0, 0,   13, 's', '1', 0, 'S', 'E', 'L',
				      0,   0, 0, 'S', 0,  0,   0,   6, 'x', 'y' };
	uint32_t consumed;
	assert_int_equal(answer(in, sizeof(in), &consumed, NULL, 0), PREP_LOCAL_NO);
	assert_int_equal(consumed, 0);
}

/* The well-formed case still answers: ParseComplete and ReadyForQuery. */
static void test_parse_sync_answered(void **state)
{
	(void)state;
	static const uint8_t in[] = { 'P', 0, 0, 0, 13,  's', '1', 0, 'S', 'E',
				      'L', 0, 0, 0, 'S', 0,   0,   0, 4 };
	uint32_t consumed;
	char out[11];
	assert_int_equal(answer(in, sizeof(in), &consumed, out, sizeof(out)), PREP_LOCAL_DONE);
	assert_int_equal(consumed, sizeof(in));
	assert_memory_equal(out, "1\0\0\0\4Z\0\0\0\5I", sizeof(out));
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_parse_without_room_for_a_name),
		cmocka_unit_test(test_sync_with_a_body),
		cmocka_unit_test(test_parse_sync_answered),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
