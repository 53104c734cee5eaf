#include "relay/replies.h"

#include <stdlib.h>
#include <string.h>

int replies_push(struct replies *q, uint8_t kind, uint8_t flags, struct stmt *st, char *name)
{
	if (q->count == q->cap) {
		uint32_t cap = q->cap ? q->cap * 2 : 32;
		struct reply *v = malloc(cap * sizeof(*v));
		if (!v)
			return -1;
		for (uint32_t i = 0; i < q->count; i++)
			v[i] = q->v[(q->head + i) % q->cap];
		free(q->v);
		q->v = v;
		q->cap = cap;
		q->head = 0;
	}
	q->v[(q->head + q->count) % q->cap] = (struct reply){ kind, flags, st, name };
	q->count++;
	return 0;
}

void replies_pop(struct replies *q, struct reply *out)
{
	*out = q->v[q->head];
	q->head = (q->head + 1) % q->cap;
	q->count--;
}

void replies_clear(struct replies *q)
{
	struct reply r;
	while (q->count) {
		replies_pop(q, &r);
		stmt_unref(r.st);
		free(r.name);
	}
	free(q->v);
	memset(q, 0, sizeof(*q));
}

bool replies_is_last(uint8_t kind, uint8_t type)
{
	switch (kind) {
	case RK_PARSE:
		return type == '1';
	case RK_BIND:
		return type == '2';
	case RK_CLOSE:
		return type == '3';
	case RK_DESCRIBE_S:
	case RK_DESCRIBE_P:
		return type == 'T' || type == 'n';
	case RK_EXECUTE:
		return type == 'C' || type == 'I' || type == 's';
	default:
		return false;
	}
}
