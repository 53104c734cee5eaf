/* Each thread's answers for the statements it parsed, by text. Slots are
 * picked by the hash (direct-mapped): a new text whose slot is taken
 * replaces the old one. That bounds the cache without any bookkeeping on a
 * hit, and a workload's hot statements, which the slow path meets over and
 * over, win their slots back at once. Each entry holds a copy of the text,
 * so a hash collision can never hand out another statement's answer. */
#include <stdlib.h>
#include <string.h>

#include "query/internal.h"

struct cache_entry {
	uint64_t hash;
	size_t len;
	unsigned effects;
	bool reset_all;
	int n_reset;
	const char *pin_what;
	/* the text, then each reset name with its NUL: entries are mostly
	 * small, a struct query_class is over 500 bytes */
	char data[];
};

static __thread struct cache_entry **slots; /* QUERY_CACHE_SLOTS, or NULL */

/* Eight bytes at a time, then a final mix so the low bits (the slot) depend
 * on every byte. Not for hostile input's sake: the text is compared anyway,
 * and a client can only evict its own worker's entries. */
uint64_t query_hash(const char *sql, size_t len)
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
	h *= 0xc4ceb9fe1a85ec53ull;
	h ^= h >> 33;
	return h;
}

bool query_cache_get(uint64_t hash, const char *sql, size_t len, struct query_class *out)
{
	const struct cache_entry *e;
	const char *name;

	if (!slots)
		return false;
	e = slots[hash & (QUERY_CACHE_SLOTS - 1)];
	if (!e || e->hash != hash || e->len != len || memcmp(e->data, sql, len) != 0)
		return false;
	out->effects = e->effects;
	out->reset_all = e->reset_all;
	out->n_reset = e->n_reset;
	out->pin_what = e->pin_what;
	name = e->data + len;
	for (int i = 0; i < e->n_reset; i++) {
		size_t n = strlen(name) + 1;
		memcpy(out->reset_names[i], name, n);
		name += n;
	}
	return true;
}

/* Best effort: out of memory only means the next call parses again. */
void query_cache_put(uint64_t hash, const char *sql, size_t len, const struct query_class *c)
{
	struct cache_entry *e, **slot;
	size_t names = 0;
	char *p;

	if (!slots) {
		slots = query_alloc(QUERY_CACHE_SLOTS * sizeof(*slots));
		if (!slots)
			return;
		memset(slots, 0, QUERY_CACHE_SLOTS * sizeof(*slots));
	}
	for (int i = 0; i < c->n_reset; i++)
		names += strlen(c->reset_names[i]) + 1;
	e = query_alloc(sizeof(*e) + len + names);
	if (!e)
		return;
	e->hash = hash;
	e->len = len;
	e->effects = c->effects;
	e->reset_all = c->reset_all;
	e->n_reset = c->n_reset;
	e->pin_what = c->pin_what;
	memcpy(e->data, sql, len);
	p = e->data + len;
	for (int i = 0; i < c->n_reset; i++) {
		size_t n = strlen(c->reset_names[i]) + 1;
		memcpy(p, c->reset_names[i], n);
		p += n;
	}
	slot = &slots[hash & (QUERY_CACHE_SLOTS - 1)];
	free(*slot);
	*slot = e;
}

void query_cache_free(void)
{
	if (!slots)
		return;
	for (size_t i = 0; i < QUERY_CACHE_SLOTS; i++)
		free(slots[i]);
	free(slots);
	slots = NULL;
}
