#include "pool/stmt.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* FNV-1a, 64 bits: names and bodies are hashed once, on Parse */
static uint64_t hash_bytes(const void *data, size_t len)
{
	const uint8_t *p = data;
	uint64_t h = 1469598103934665603ull;
	for (size_t i = 0; i < len; i++) {
		h ^= p[i];
		h *= 1099511628211ull;
	}
	return h;
}

struct stmt *stmt_new(const uint8_t *body, uint32_t len)
{
	struct stmt *st = malloc(sizeof(*st) + len);
	if (!st)
		return NULL;
	atomic_init(&st->refs, 1);
	st->effects = 0;
	st->hash = hash_bytes(body, len);
	st->len = len;
	memcpy(st->body, body, len);
	/* 48 bits of the hash name it; a collision is caught by stmt_same */
	snprintf(st->name, sizeof(st->name), "pgcrab_%012llx",
		 (unsigned long long)(st->hash & 0xffffffffffffull));
	return st;
}

void stmt_ref(struct stmt *st)
{
	atomic_fetch_add_explicit(&st->refs, 1, memory_order_relaxed);
}

void stmt_unref(struct stmt *st)
{
	if (st && atomic_fetch_sub_explicit(&st->refs, 1, memory_order_acq_rel) == 1)
		free(st);
}

bool stmt_same(const struct stmt *a, const struct stmt *b)
{
	return a == b
		|| (a->hash == b->hash && a->len == b->len
		    && memcmp(a->body, b->body, a->len) == 0);
}

struct stmt *stmt_names_find(const struct stmt_names *ns, const char *name)
{
	uint64_t h = hash_bytes(name, strlen(name));
	for (int i = 0; i < ns->n; i++)
		if (ns->v[i].name_hash == h && strcmp(ns->v[i].name, name) == 0)
			return ns->v[i].st;
	return NULL;
}

int stmt_names_add(struct stmt_names *ns, const char *name, struct stmt *st)
{
	if (ns->n == ns->cap) {
		int cap = ns->cap ? ns->cap * 2 : 8;
		struct stmt_name *v = realloc(ns->v, (size_t)cap * sizeof(*v));
		if (!v)
			return -1;
		ns->v = v;
		ns->cap = cap;
	}
	char *copy = strdup(name);
	if (!copy)
		return -1;
	stmt_ref(st);
	ns->v[ns->n++] = (struct stmt_name){ hash_bytes(name, strlen(name)), copy, st };
	return 0;
}

bool stmt_names_remove(struct stmt_names *ns, const char *name)
{
	uint64_t h = hash_bytes(name, strlen(name));
	for (int i = 0; i < ns->n; i++) {
		if (ns->v[i].name_hash != h || strcmp(ns->v[i].name, name) != 0)
			continue;
		free(ns->v[i].name);
		stmt_unref(ns->v[i].st);
		ns->v[i] = ns->v[--ns->n];
		return true;
	}
	return false;
}

void stmt_names_clear(struct stmt_names *ns)
{
	for (int i = 0; i < ns->n; i++) {
		free(ns->v[i].name);
		stmt_unref(ns->v[i].st);
	}
	free(ns->v);
	ns->v = NULL;
	ns->n = ns->cap = 0;
}

static int set_find(const struct stmt_set *ss, const struct stmt *st)
{
	for (int i = 0; i < ss->n; i++)
		if (ss->v[i].st->hash == st->hash && stmt_same(ss->v[i].st, st))
			return i;
	return -1;
}

bool stmt_set_has(struct stmt_set *ss, const struct stmt *st)
{
	int i = set_find(ss, st);
	if (i < 0)
		return false;
	ss->v[i].used = ++ss->clock;
	return true;
}

struct stmt *stmt_set_evict(struct stmt_set *ss)
{
	if (ss->n == 0)
		return NULL;
	int lru = 0;
	for (int i = 1; i < ss->n; i++)
		if (ss->v[i].used < ss->v[lru].used)
			lru = i;
	struct stmt *evicted = ss->v[lru].st;
	ss->v[lru] = ss->v[--ss->n];
	return evicted;
}

int stmt_set_add(struct stmt_set *ss, struct stmt *st)
{
	if (ss->n == ss->cap) {
		int cap = ss->cap ? ss->cap * 2 : 16;
		struct stmt_slot *v = realloc(ss->v, (size_t)cap * sizeof(*v));
		if (!v)
			return -1;
		ss->v = v;
		ss->cap = cap;
	}
	stmt_ref(st);
	ss->v[ss->n++] = (struct stmt_slot){ st, ++ss->clock };
	return 0;
}

void stmt_set_remove(struct stmt_set *ss, const struct stmt *st)
{
	int i = set_find(ss, st);
	if (i < 0)
		return;
	stmt_unref(ss->v[i].st);
	ss->v[i] = ss->v[--ss->n];
}

void stmt_set_clear(struct stmt_set *ss)
{
	for (int i = 0; i < ss->n; i++)
		stmt_unref(ss->v[i].st);
	free(ss->v);
	ss->v = NULL;
	ss->n = ss->cap = 0;
}
