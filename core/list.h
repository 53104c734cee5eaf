/* Intrusive doubly linked lists. */
#ifndef PGCRAB_LIST_H
#define PGCRAB_LIST_H

#include <stddef.h>

/* An object is on at most one list per link it embeds. */
struct list {
	struct list *prev, *next;
};

/* The object that embeds member at ptr. */
#define container_of(ptr, type, member) ((type *)((char *)(ptr)-offsetof(type, member)))
#define list_entry(ptr, type, member)   container_of(ptr, type, member)

static inline void list_init(struct list *l)
{
	l->prev = l->next = l;
}

static inline int list_empty(const struct list *l)
{
	return l->next == l;
}

/* An unlinked node points at itself, so list_del is safe to repeat. */
static inline int list_linked(const struct list *n)
{
	return n->next != n && n->next != NULL;
}

static inline void list_add_head(struct list *l, struct list *n)
{
	n->next = l->next;
	n->prev = l;
	l->next->prev = n;
	l->next = n;
}

static inline void list_add_tail(struct list *l, struct list *n)
{
	n->prev = l->prev;
	n->next = l;
	l->prev->next = n;
	l->prev = n;
}

static inline void list_del(struct list *n)
{
	if (!list_linked(n))
		return;
	n->prev->next = n->next;
	n->next->prev = n->prev;
	n->next = n->prev = n;
}

static inline struct list *list_pop_head(struct list *l)
{
	if (list_empty(l))
		return NULL;
	struct list *n = l->next;
	list_del(n);
	return n;
}

#endif
