/* Named prepared statements under transaction pooling. A client's statement
 * names map to immutable, refcounted statement bodies; each server keeps the
 * set of bodies prepared on it under names derived from their content, so
 * identical statements from different clients share one server statement.
 * The set is capped (max_prepared_statements) with least-recently-used
 * eviction. Refcounts are atomic because servers move between workers. */
#ifndef PGCRAB_STMT_H
#define PGCRAB_STMT_H

#include <stdatomic.h>
#include <stdbool.h>
#include <stdint.h>

#define STMT_NAME_LEN 20 /* "pgcrab_" + 12 hex + NUL, padded */

struct stmt {
	_Atomic int refs;
	uint64_t hash;
	unsigned effects;         /* what running it may do to the session (query/classify.h) */
	char name[STMT_NAME_LEN]; /* the server-side name */
	uint32_t len;
	uint8_t body[]; /* Parse after its name: query, types */
};

/* A statement for a Parse body (query\0 int16 n int32[n]); NULL if out of memory. */
struct stmt *stmt_new(const uint8_t *body, uint32_t len);
void stmt_ref(struct stmt *st);
void stmt_unref(struct stmt *st);
bool stmt_same(const struct stmt *a, const struct stmt *b);

/* A client's names. */
struct stmt_names {
	struct stmt_name {
		uint64_t name_hash;
		char *name;
		struct stmt *st;
	} * v;
	int n, cap;
};

struct stmt *stmt_names_find(const struct stmt_names *ns, const char *name);
/* Takes a reference to st; -1 when out of memory. */
int stmt_names_add(struct stmt_names *ns, const char *name, struct stmt *st);
/* Drops the name; false if it did not exist. */
bool stmt_names_remove(struct stmt_names *ns, const char *name);
void stmt_names_clear(struct stmt_names *ns);

/* A server's prepared set. */
struct stmt_set {
	struct stmt_slot {
		struct stmt *st;
		uint64_t used;
	} * v;
	int n, cap;
	uint64_t clock;
};

/* True (and marks it used) if a statement like st is prepared on the server. */
bool stmt_set_has(struct stmt_set *ss, const struct stmt *st);
/* Records st as prepared (takes a reference); -1 when out of memory. */
int stmt_set_add(struct stmt_set *ss, struct stmt *st) __attribute__((warn_unused_result));
/* Removes the least recently used statement and returns it (the caller
 * closes it on the server and drops the reference); NULL if empty. */
struct stmt *stmt_set_evict(struct stmt_set *ss);
void stmt_set_remove(struct stmt_set *ss, const struct stmt *st);
void stmt_set_clear(struct stmt_set *ss);

#endif
