/* Shared by the classifier's own files (classify.c, cache.c, tree.c); no
 * other module includes this. */
#ifndef PGCRAB_QUERY_INTERNAL_H
#define PGCRAB_QUERY_INTERNAL_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "query/classify.h"

/* Texts longer than this are classified every time: caching them would let
 * a few huge statements hold most of a thread's memory. */
#define QUERY_CACHE_TEXT_MAX 8192
#define QUERY_CACHE_SLOTS    1024 /* a power of two */

/* classify.c: building a result */
void query_class_clear(struct query_class *c);
void query_class_add(struct query_class *c, unsigned effects, const char *pin_what);
void query_class_add_reset(struct query_class *c, const char *name);
void query_class_merge(struct query_class *into, const struct query_class *from);

/* The module's allocator: malloc, except that a test can make the nth
 * allocation from now fail (query_test_fail_alloc(n), n >= 1; 0 disarms)
 * to walk the out-of-memory paths. Per thread. */
void *query_alloc(size_t size);
void query_test_fail_alloc(int nth);

/* classify.c: the first-keyword look; true means "no effects" for sure. */
bool query_fast(const char *sql, size_t len);

/* tree.c: parses sql[0, len) with libpg_query and classifies each
 * statement into out (cleared first). 0, or -1 when out of memory. */
int query_tree_classify(const char *sql, size_t len, struct query_class *out);

/* cache.c: this thread's answers by text. */
uint64_t query_hash(const char *sql, size_t len);
bool query_cache_get(uint64_t hash, const char *sql, size_t len, struct query_class *out);
void query_cache_put(uint64_t hash, const char *sql, size_t len, const struct query_class *c);
void query_cache_free(void);

#endif
