/* A Bind message's parameters (relay/bind.c). */
#ifndef PGCRAB_RELAY_BIND_H
#define PGCRAB_RELAY_BIND_H

#include <stdint.h>

#include "core/conn.h"

struct relay_bind {
	const char *portal, *stmt;
	int n;                  /* parameters */
	const uint8_t **values; /* NULL for SQL NULL */
	int32_t *lengths;       /* -1 for NULL */
	int16_t *formats;       /* one per parameter: 0 text, 1 binary */
	const uint8_t *results; /* the result format codes, as sent */
	uint32_t results_len;
};

/* Reads a Bind's body (it must outlive b). 0; -1 a broken message; -2 out
 * of memory. */
int relay_bind_parse(const uint8_t *body, uint32_t len, struct relay_bind *b);
void relay_bind_free(struct relay_bind *b);

/* Queues a Bind of the unnamed statement with the parameters map names
 * (1-based numbers of b's, in their new order). -1 when out of memory or
 * map names a parameter b does not have. */
int relay_bind_queue_subset(struct conn *c, const struct relay_bind *b, const int *map, int n_map);

#endif
