/* pool/role.c: the shared, insert-only table of roles (one record per name
 * however many threads ask at once), max_user_connections' counter, and
 * pool_for_role: a pool per shard and role on a shard without a user, the
 * shard's own pool on one with a user. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "auth/proof.h"
#include "config/cfg.h"
#include "pool/pool.h"
#include "pool/role.h"

static void same_name_same_record(void **state)
{
	(void)state;
	struct pool_roles *t = pool_roles_new(2);
	struct pool_role *a = pool_role_get(t, "alice"), *b = pool_role_get(t, "bob");
	assert_non_null(a);
	assert_non_null(b);
	assert_ptr_not_equal(a, b);
	assert_ptr_equal(pool_role_get(t, "alice"), a);
	assert_string_equal(b->name, "bob");
	char longname[POOL_ROLE_NAME_MAX + 1];
	memset(longname, 'x', sizeof(longname) - 1);
	longname[sizeof(longname) - 1] = '\0';
	assert_null(pool_role_get(t, longname));
	/* max_user_connections: 0 counts without a limit */
	assert_true(pool_role_reserve(a, 2));
	assert_true(pool_role_reserve(a, 2));
	assert_false(pool_role_reserve(a, 2));
	assert_true(pool_role_reserve(a, 0));
	pool_role_unreserve(a);
	pool_role_unreserve(a);
	assert_true(pool_role_reserve(a, 2));
	pool_roles_free(t);
}

struct racer {
	struct pool_roles *t;
	struct pool_role *got[200];
};

static void *race(void *arg)
{
	struct racer *r = arg;
	char name[32];
	for (int i = 0; i < 200; i++) {
		snprintf(name, sizeof(name), "role%d", i);
		r->got[i] = pool_role_get(r->t, name);
	}
	return NULL;
}

static void threads_agree(void **state)
{
	(void)state;
	struct pool_roles *t = pool_roles_new(1);
	struct racer rs[4];
	pthread_t th[4];
	for (int i = 0; i < 4; i++) {
		rs[i].t = t;
		assert_int_equal(pthread_create(&th[i], NULL, race, &rs[i]), 0);
	}
	for (int i = 0; i < 4; i++)
		pthread_join(th[i], NULL);
	for (int n = 0; n < 200; n++) {
		assert_non_null(rs[0].got[n]);
		for (int i = 1; i < 4; i++)
			assert_ptr_equal(rs[i].got[n], rs[0].got[n]);
	}
	pool_roles_free(t);
}

static void pools_per_role(void **state)
{
	(void)state;
	char err[256];
	struct cfg *cfg;
	static const char ini[] = "[shard.mine]\nuser = u\n[shard.theirs]\n";
	assert_int_equal(cfg_load_buffer("t.ini", ini, sizeof(ini) - 1, NULL, &cfg, err,
					 sizeof(err)),
			 0);
	struct shard shards[2] = { { .index = 0, .cfg = &cfg->shards[0] },
				   { .index = 1, .cfg = &cfg->shards[1] } };
	struct worker w = { .id = 0 };
	struct pool_worker pw;
	assert_int_equal(pool_worker_init(&pw, &w, shards, 2, 2, 1), 0);
	pw.roles = pool_roles_new(2);
	struct auth_proof *pa = auth_proof_from_cleartext("alice", "a-pass");
	struct auth_proof *pb = auth_proof_from_cleartext("bob", "b-pass");
	/* the shard with a user: its one pool for everyone */
	assert_ptr_equal(pool_for_role(&pw, 0, "alice", pa), &pw.pools[0]);
	assert_ptr_equal(pool_for_role(&pw, 0, "bob", pb), &pw.pools[0]);
	/* without: a pool per role, carrying its role and the latest proof */
	struct pool *a = pool_for_role(&pw, 1, "alice", pa), *b = pool_for_role(&pw, 1, "bob", pb);
	assert_non_null(a);
	assert_non_null(b);
	assert_ptr_not_equal(a, b);
	assert_ptr_not_equal(a, &pw.pools[1]);
	assert_string_equal(a->role->name, "alice");
	assert_string_equal(b->role->name, "bob");
	assert_string_equal(a->proof->cleartext, "a-pass");
	assert_int_equal(a->min_local, 0);
	assert_ptr_equal(pool_for_role(&pw, 1, "alice", NULL), a);
	assert_string_equal(a->proof->cleartext, "a-pass"); /* NULL keeps it */
	struct auth_proof *pa2 = auth_proof_from_cleartext("alice", "a-new");
	assert_ptr_equal(pool_for_role(&pw, 1, "alice", pa2), a);
	assert_string_equal(a->proof->cleartext, "a-new");
	auth_proof_free(pa);
	auth_proof_free(pa2);
	auth_proof_free(pb);
	pool_roles_free(pw.roles);
	pool_worker_free(&pw);
	cfg_free(cfg);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(same_name_same_record),
		cmocka_unit_test(threads_agree),
		cmocka_unit_test(pools_per_role),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
