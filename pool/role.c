/* The shared table of roles: open addressing over a fixed array of
 * pointers, filled by compare-and-swap, so lookups take no lock and a
 * worker never waits for another. */
#include "pool/role.h"

#include <stdlib.h>
#include <string.h>

struct pool_roles *pool_roles_new(int n_shards)
{
	struct pool_roles *t = calloc(1, sizeof(*t));
	if (t)
		t->n_shards = n_shards;
	return t;
}

void pool_roles_free(struct pool_roles *t)
{
	if (!t)
		return;
	for (int i = 0; i < POOL_ROLES_MAX; i++)
		free(atomic_load(&t->slots[i]));
	free(t);
}

static uint32_t name_hash(const char *s)
{
	uint32_t h = 2166136261u; /* FNV-1a */
	for (; *s; s++)
		h = (h ^ (uint8_t)*s) * 16777619u;
	return h;
}

struct pool_role *pool_role_get(struct pool_roles *t, const char *name)
{
	if (strlen(name) >= POOL_ROLE_NAME_MAX)
		return NULL;
	struct pool_role *mine = NULL;
	uint32_t h = name_hash(name);
	for (int k = 0; k < POOL_ROLES_MAX; k++) {
		int i = (int)((h + (uint32_t)k) % POOL_ROLES_MAX);
		struct pool_role *r = atomic_load(&t->slots[i]);
		if (!r) {
			if (!mine) {
				size_t size = sizeof(*mine)
					+ (size_t)t->n_shards * sizeof(mine->starving[0]);
				mine = calloc(1, size);
				if (!mine)
					return NULL;
				strcpy(mine->name, name);
			}
			mine->index = i;
			if (atomic_compare_exchange_strong(&t->slots[i], &r, mine))
				return mine;
			/* another worker filled the slot first: r is its record */
		}
		if (strcmp(r->name, name) == 0) {
			free(mine);
			return r;
		}
	}
	free(mine);
	return NULL;
}

bool pool_role_reserve(struct pool_role *r, int max)
{
	if (max <= 0) {
		atomic_fetch_add(&r->open, 1);
		return true;
	}
	int v = atomic_load(&r->open);
	while (v < max)
		if (atomic_compare_exchange_weak(&r->open, &v, v + 1))
			return true;
	return false;
}

void pool_role_unreserve(struct pool_role *r)
{
	atomic_fetch_sub(&r->open, 1);
}
