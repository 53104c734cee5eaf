/* Each thread's plans by text and schema. Slots are picked by the text's
 * hash (direct-mapped): a new text whose slot is taken replaces the old
 * one, which bounds the cache with no bookkeeping on a hit, and a
 * workload's hot statements win their slots back at once. Each entry holds
 * a copy of the text, so a hash collision can never hand out another
 * statement's plan; callers get copies of the plan. */
#include <stdlib.h>
#include <string.h>

#include "router/internal.h"

struct cache_entry {
	uint64_t hash;
	const struct router_schema *schema;
	size_t len;
	struct plan_box *box;
	char text[];
};

static __thread struct cache_entry **slots; /* PLAN_CACHE_SLOTS, or NULL */

/* Eight bytes at a time, then a final mix so that the low bits (the slot)
 * depend on every byte. */
uint64_t plan_text_hash(const char *sql, size_t len)
{
	const uint64_t k = 0x9e3779b97f4a7c15ull;
	uint64_t h = len * k, w;
	size_t i = 0;

	for (; i + 8 <= len; i += 8) {
		memcpy(&w, sql + i, 8);
		h = (h ^ w) * k;
		h ^= h >> 29;
	}
	if (i < len) {
		w = 0;
		memcpy(&w, sql + i, len - i);
		h = (h ^ w) * k;
	}
	h ^= h >> 33;
	h *= 0xff51afd7ed558ccdull;
	h ^= h >> 33;
	return h;
}

const struct plan_box *plan_cache_get(const struct router_schema *schema, const char *sql,
				      size_t len, uint64_t hash)
{
	const struct cache_entry *e;

	if (!slots)
		return NULL;
	e = slots[hash & (PLAN_CACHE_SLOTS - 1)];
	if (!e || e->hash != hash || e->schema != schema || e->len != len
	    || memcmp(e->text, sql, len) != 0)
		return NULL;
	return e->box;
}

/* Best effort: out of memory only means the next call plans again. */
bool plan_cache_put(const struct router_schema *schema, const char *sql, size_t len, uint64_t hash,
		    struct plan_box *b)
{
	struct cache_entry *e, **slot;

	if (!slots) {
		slots = calloc(PLAN_CACHE_SLOTS, sizeof(*slots));
		if (!slots)
			return false;
	}
	e = malloc(sizeof(*e) + len);
	if (!e)
		return false;
	e->hash = hash;
	e->schema = schema;
	e->len = len;
	e->box = b;
	memcpy(e->text, sql, len);
	slot = &slots[hash & (PLAN_CACHE_SLOTS - 1)];
	if (*slot) {
		plan_box_free((*slot)->box);
		free(*slot);
	}
	*slot = e;
	return true;
}

void router_plan_cache_free(void)
{
	if (!slots)
		return;
	for (size_t i = 0; i < PLAN_CACHE_SLOTS; i++) {
		if (!slots[i])
			continue;
		plan_box_free(slots[i]->box);
		free(slots[i]);
	}
	free(slots);
	slots = NULL;
}
