/* auth/plain_cache.c: the worker's cache of cleartext passwords a SCRAM
 * verifier accepted (auth_type = plain). A hit needs the very password,
 * salt and count, and the verifier's own keys; nothing else hits, and the
 * cache never holds the password. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "auth/plain_cache.h"
#include "auth/secret.h"

/* from PostgreSQL 15: password 'pencil' */
#define PG_VERIFIER                                                                                \
	"SCRAM-SHA-256$4096:n5OhjeCMNfi49i/pduSmmg==$decLShkFyUPELj2gJLaerojRUOhBHG8omSE/9dwaLBw=" \
	":xE9R/gdb+sfxCfo7D3JdytXv7NzMhfJj6FwzqqJZhHQ="

static struct auth_scram_verifier pencil(void)
{
	struct auth_secret s;
	char why[128];
	assert_int_equal(auth_secret_parse(PG_VERIFIER, &s, why, sizeof(why)), 0);
	assert_int_equal(s.kind, AUTH_SECRET_SCRAM);
	return s.scram;
}

static void hit_only_after_put(void **state)
{
	(void)state;
	struct auth_plain_cache *c = malloc(sizeof(*c));
	assert_non_null(c);
	auth_plain_cache_init(c);
	assert_true(c->keyed);
	struct auth_scram_verifier v = pencil();
	assert_false(auth_plain_cache_hit(c, "pencil", &v));
	/* what the hasher derived: the verifier's own keys */
	struct auth_scram_verifier d = v;
	assert_int_equal(auth_scram_derive("pencil", &d, NULL), 0);
	assert_memory_equal(d.stored_key, v.stored_key, AUTH_KEY_LEN);
	auth_plain_cache_put(c, "pencil", &d);
	assert_true(auth_plain_cache_hit(c, "pencil", &v));
	assert_true(auth_plain_cache_hit(c, "pencil", &v)); /* and again */
	auth_plain_cache_clear(c);
	assert_false(auth_plain_cache_hit(c, "pencil", &v));
	free(c);
}

static void nothing_else_hits(void **state)
{
	(void)state;
	struct auth_plain_cache *c = malloc(sizeof(*c));
	assert_non_null(c);
	auth_plain_cache_init(c);
	struct auth_scram_verifier v = pencil();
	auth_plain_cache_put(c, "pencil", &v);
	/* another password, a prefix, an extension */
	assert_false(auth_plain_cache_hit(c, "pencil2", &v));
	assert_false(auth_plain_cache_hit(c, "penci", &v));
	assert_false(auth_plain_cache_hit(c, "", &v));
	/* the role's password changed: new keys with the same salt and count */
	struct auth_scram_verifier other = v;
	other.stored_key[0] ^= 1;
	assert_false(auth_plain_cache_hit(c, "pencil", &other));
	other = v;
	other.server_key[31] ^= 0x80;
	assert_false(auth_plain_cache_hit(c, "pencil", &other));
	/* another salt or count, even with the same keys */
	other = v;
	other.salt[0] ^= 1;
	assert_false(auth_plain_cache_hit(c, "pencil", &other));
	other = v;
	other.iterations = 4097;
	assert_false(auth_plain_cache_hit(c, "pencil", &other));
	other = v;
	other.salt_len--;
	assert_false(auth_plain_cache_hit(c, "pencil", &other));
	assert_true(auth_plain_cache_hit(c, "pencil", &v));
	auth_plain_cache_clear(c);
	free(c);
}

/* Each cache has its own key: what one learnt the other does not know,
 * and neither keeps the password's bytes. */
static void keyed_apart_and_no_password_kept(void **state)
{
	(void)state;
	struct auth_plain_cache *a = malloc(sizeof(*a)), *b = malloc(sizeof(*b));
	assert_non_null(a);
	assert_non_null(b);
	auth_plain_cache_init(a);
	auth_plain_cache_init(b);
	assert_memory_not_equal(a->key, b->key, AUTH_KEY_LEN);
	struct auth_scram_verifier v = pencil();
	auth_plain_cache_put(a, "pencil", &v);
	assert_true(auth_plain_cache_hit(a, "pencil", &v));
	assert_false(auth_plain_cache_hit(b, "pencil", &v));
	assert_null(memmem(a, sizeof(*a), "pencil", 6));
	/* no key drawn: nothing is cached */
	b->keyed = false;
	auth_plain_cache_put(b, "pencil", &v);
	assert_false(auth_plain_cache_hit(b, "pencil", &v));
	auth_plain_cache_clear(a);
	auth_plain_cache_clear(b);
	free(a);
	free(b);
}

/* A full cache evicts (direct-mapped) but never answers wrongly. */
static void many_entries_stay_bounded(void **state)
{
	(void)state;
	struct auth_plain_cache *c = malloc(sizeof(*c));
	assert_non_null(c);
	auth_plain_cache_init(c);
	struct auth_scram_verifier v = pencil();
	char pw[32];
	int hits = 0;
	for (int i = 0; i < 4 * AUTH_PLAIN_CACHE_SLOTS; i++) {
		snprintf(pw, sizeof(pw), "pw-%d", i);
		auth_plain_cache_put(c, pw, &v);
	}
	for (int i = 0; i < 4 * AUTH_PLAIN_CACHE_SLOTS; i++) {
		snprintf(pw, sizeof(pw), "pw-%d", i);
		hits += auth_plain_cache_hit(c, pw, &v);
	}
	assert_true(hits > 0 && hits <= AUTH_PLAIN_CACHE_SLOTS);
	assert_false(auth_plain_cache_hit(c, "pencil", &v));
	auth_plain_cache_clear(c);
	free(c);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(hit_only_after_put),
		cmocka_unit_test(nothing_else_hits),
		cmocka_unit_test(keyed_apart_and_no_password_kept),
		cmocka_unit_test(many_entries_stay_bounded),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
