/* Socket I/O shared by clients and servers, all of it through the worker's
 * io_uring: one recv into the connection's buffer, one send at a time, and a
 * cancel+close pair. A connection is freed only when no completion can still
 * name it or read its memory (refs). */
#ifndef PGCRAB_CONN_H
#define PGCRAB_CONN_H

#include "core/types.h"

static inline uint64_t conn_user_data(struct conn *c, enum ud_op op)
{
	return ud_pointer(op, 0, c);
}

/* An SQE from the worker's ring; submits to make room when the ring is full. */
struct io_uring_sqe *worker_sqe(struct worker *w);

#define CONN_BUF_GROUP 0

void conn_init(struct conn *c, enum conn_kind kind, struct worker *w, int fd);
/* PgCrab writes rx[from, from + n) past rx_end itself (a message grown in
 * place). In ASan builds the bytes past rx_end are poisoned so that reading
 * them is caught; this lifts that for bytes that are about to be written. */
void conn_rx_claim(struct conn *c, uint32_t from, uint32_t n);
/* The worker's provided buffer ring; -errno if the kernel has none (then
 * every connection reads into buffers of its own). */
int conn_buf_ring_init(struct worker *w);
void conn_buf_ring_free(struct worker *w);
/* Arms a recv. With nothing left in rx the buffer goes back and the kernel
 * picks one when bytes arrive; otherwise the recv appends to rx, compacting
 * first. Returns -1 when rx is full of unconsumed bytes (a message too big
 * to hold). */
int conn_arm_recv(struct conn *c) __attribute__((warn_unused_result));
/* Takes in a recv completion's buffer. False when the recv was re-armed
 * (no provided buffer was free) and there is nothing to handle yet. */
bool conn_on_recv(struct conn *c, int *res, unsigned flags);
/* rx holds at least cap bytes, its contents kept; -1 when out of memory. */
int conn_rx_reserve(struct conn *c, uint32_t cap) __attribute__((warn_unused_result));
/* A client about to wait for a server hands its provided buffer back and
 * keeps its request (up to CONN_SHRINK_MAX bytes) in a buffer of its own
 * size, so a crowd of waiting clients does not drain the worker's ring. */
#define CONN_SHRINK_MAX 4096
void conn_rx_shrink(struct conn *c);
/* Drops rx (unconsumed bytes too); before a server moves to another worker. */
void conn_rx_release(struct conn *c);
/* Appends to / sends the connection's own tx buffer. Returns -1 if it does
 * not fit (the caller closes). */
int conn_queue(struct conn *c, const void *data, size_t len) __attribute__((warn_unused_result));
void conn_flush_tx(struct conn *c);
/* Sends from->rx[from->rx_start, end) on to's socket without copying. */
void conn_forward(struct conn *to, struct conn *from, uint32_t end);
bool conn_send_busy(const struct conn *c);
/* Passes over the body of the message being scanned from pos (dropping it
 * from rx when c->dropping); returns the new scan position. */
static inline uint32_t conn_skip_body(struct conn *c, uint32_t pos)
{
	uint32_t k = c->rx_end - pos;
	if (k > c->msg_left)
		k = c->msg_left;
	pos += k;
	c->msg_left -= k;
	if (c->dropping)
		c->rx_start = pos;
	if (c->msg_left == 0)
		c->dropping = false;
	return pos;
}

/* Watches, without reading, for the peer closing or resetting the
 * connection (POLLRDHUP): for a connection whose bytes wait unread. The
 * owner hears of it through the poll completion. */
void conn_arm_poll(struct conn *c);
void conn_cancel_poll(struct conn *c);

/* Starts closing: cancels pending operations and closes the fd. */
void conn_close(struct conn *c);
/* Drops one reference; frees the connection once it is closing and unreferenced. */
void conn_put(struct conn *c);

/* Completion handlers, called from the worker's dispatch. */
void conn_on_send(struct conn *c, int res);
void conn_on_close(struct conn *c);

#endif
