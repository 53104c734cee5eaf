/* Socket I/O shared by clients and servers, all of it through the worker's
 * io_uring: one recv into the connection's buffer, one send at a time, and a
 * cancel+close pair. A connection is freed only when no completion can still
 * name it or read its memory (refs). */
#ifndef PGCRAB_CONN_H
#define PGCRAB_CONN_H

#include <stdbool.h>
#include <stdint.h>

#include "core/uring_data.h"

struct worker;
struct conn;

#define CONN_BUF_SIZE 16384 /* one provided receive buffer */
#ifndef CONN_BUF_COUNT
#define CONN_BUF_COUNT 512 /* provided buffers per worker (a power of two) */
#endif
#define CONN_WHOLE_MAX 32768 /* largest message PgCrab reads whole without being asked to */
#define CONN_TX_CAP    2048  /* PgCrab's own messages (login, errors, hidden queries) */

/* What a connection's single in-flight send is sending. SEND_TLS is the
 * TLS engine's own (handshake, alerts): its owner never hears of it, and
 * conn_send_busy does not count it. */
enum send_src { SEND_NONE, SEND_TLS, SEND_TX, SEND_FORWARD };

/* How a connection tells its owner about completions. The owner installs
 * its table (and may swap it, as a server connection passes between the
 * pool and the relay); the runtime knows nothing else of it. */
struct conn_ops {
	/* res > 0: that many bytes were appended to rx; 0: the peer closed;
	 * < 0: -errno. The recv is no longer armed. */
	void (*on_recv)(struct conn *c, int res);
	/* The send in flight completed (err 0) or failed (an errno); owner is
	 * the connection whose rx a SEND_FORWARD read, or NULL. */
	void (*on_sent)(struct conn *c, enum send_src src, struct conn *owner, int err);
	/* on_connect and on_poll may be NULL for connections that do neither */
	void (*on_connect)(struct conn *c, int res);
	/* conn_arm_poll's watch completed: its events, or -errno (-ECANCELED). */
	void (*on_poll)(struct conn *c, int res);
	/* The last reference is gone: free the owner's struct. */
	void (*on_free)(struct conn *c);
};

/* A socket, a receive buffer and one send at a time (ordering on a stream
 * needs no more). The receive buffer exists only while unconsumed bytes do:
 * an idle connection's recv waits with no buffer, and the kernel picks one
 * from the worker's provided buffer ring when bytes arrive. */
struct conn {
	const struct conn_ops *ops;
	int fd;
	struct worker *w;
	/* completions still to come that name this connection or read its
	 * memory (a peer's send from our rx); freed only at zero */
	int refs;
	bool recv_armed;
	bool recv_cancelling; /* the armed recv is being cancelled */
	bool connect_armed;   /* a connect is in flight */
	bool poll_armed;      /* a poll for the peer's close is in flight */
	bool closing;
	bool keep_tx; /* keep the tx buffer between sends (busy connections) */
	enum send_src send_src;
	struct conn *send_owner; /* whose rx a SEND_FORWARD reads */
	const uint8_t *send_ptr; /* rest of the current send */
	uint32_t send_left;
	uint32_t send_end; /* where the send ends: owner's rx offset, or tx offset */
	uint8_t *rx;       /* [rx_start, rx_end) received, not yet consumed */
	uint32_t rx_start, rx_end;
	uint32_t rx_cap;     /* grows only for a message that must be seen whole */
	int rx_bid;          /* rx is the worker's provided buffer rx_bid, or heap (-1) */
	int rx_lent;         /* sends in flight reading rx: it may not move */
	bool rx_keep;        /* the next recv goes into a buffer of our own */
	uint32_t rx_want;    /* capacity the next recv needs (0: as is) */
	uint32_t scan_pos;   /* bytes before this are scanned */
	uint32_t msg_left;   /* body bytes of the current message beyond scan_pos */
	bool dropping;       /* ...and they are not forwarded: PgCrab answers it */
	uint8_t *tx;         /* allocated while PgCrab has something of its own to send */
	uint8_t *tx_retired; /* the buffer a send in flight reads, if tx grew since */
	uint32_t tx_len, tx_cap;
	uint64_t id;       /* for logs */
	uint64_t since_ms; /* when the owner's current state began */
	uint64_t io_ms;    /* when bytes last went through */
	struct tls *tls;   /* TLS on this connection (core/tls.h), or NULL */
};

static inline uint64_t conn_user_data(struct conn *c, enum ud_op op)
{
	return ud_pointer(op, 0, c);
}

#define CONN_BUF_GROUP 0

void conn_init(struct conn *c, const struct conn_ops *ops, struct worker *w, int fd);
/* PgCrab writes rx[from, from + n) past rx_end itself (a message grown in
 * place). In ASan builds the bytes past rx_end are poisoned so that reading
 * them is caught; this lifts that for bytes that are about to be written. */
void conn_rx_claim(struct conn *c, uint32_t from, uint32_t n);
/* ...and poisons them again where they were not written after all. */
void conn_rx_unclaim(struct conn *c, uint32_t from, uint32_t n);
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
/* Appends to / sends the connection's own tx buffer, which grows (even
 * while a send from it is in flight) up to PROTO_MAX_MESSAGE. Returns -1 if
 * it does not fit or memory runs out (the caller closes). */
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

/* A scan passes the header of a message of total bytes at pos: its body
 * is what msg_left counts now; drop: the body is not forwarded either (it
 * leaves rx as it is passed). Returns the position after the header. */
static inline uint32_t conn_pass_header(struct conn *c, uint32_t pos, uint32_t total, bool drop)
{
	pos += 5; /* type and length */
	c->msg_left = total - 5;
	if (drop) {
		c->dropping = c->msg_left > 0;
		c->rx_start = pos;
	}
	return pos;
}

/* Starts closing: cancels pending operations and closes the fd. */
void conn_close(struct conn *c);
/* Drops one reference; frees the connection once it is closing and unreferenced. */
void conn_put(struct conn *c);

/* For the TLS engine (core/tls.c): a provided buffer by id (its first n
 * bytes received), giving it back to the ring, and submitting the send
 * send_ptr/send_left describe. */
uint8_t *conn_ring_buf(struct worker *w, int bid, uint32_t n);
void conn_ring_give_back(struct worker *w, int bid);
void conn_submit_send(struct conn *c);

/* Completion handlers, called from the worker's dispatch. */
void conn_on_send(struct conn *c, int res);
void conn_on_close(struct conn *c);

#endif
