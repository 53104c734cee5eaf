#include "core/conn.h"

#include <errno.h>
#include <poll.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "core/log.h"
#include "core/tls.h"
#include "core/worker.h"
#include "proto/proto.h"

/* The provided buffers are one big allocation, and a grown receive buffer
 * is larger than what it holds, so AddressSanitizer alone would not see a
 * read past the bytes received. In ASan builds (SANITIZE=1, the fuzzers) a
 * provided buffer is poisoned while the ring owns it, and any receive buffer
 * beyond what was received while a connection holds it. The kernel's own
 * writes are not checked, so the recv itself never trips it. */
#if defined(__SANITIZE_ADDRESS__)
#define RX_ASAN 1
#elif defined(__has_feature)
#if __has_feature(address_sanitizer)
#define RX_ASAN 1
#endif
#endif
#ifdef RX_ASAN
#include <sanitizer/asan_interface.h>
#define rx_poison(p, n)   ASAN_POISON_MEMORY_REGION((p), (n))
#define rx_unpoison(p, n) ASAN_UNPOISON_MEMORY_REGION((p), (n))
#else
#define rx_poison(p, n)   ((void)(p), (void)(n))
#define rx_unpoison(p, n) ((void)(p), (void)(n))
#endif

void conn_rx_claim(struct conn *c, uint32_t from, uint32_t n)
{
	rx_unpoison(c->rx + from, n);
}

void conn_rx_unclaim(struct conn *c, uint32_t from, uint32_t n)
{
	rx_poison(c->rx + from, n);
}

void conn_init(struct conn *c, const struct conn_ops *ops, struct worker *w, int fd)
{
	c->ops = ops;
	c->fd = fd;
	c->w = w;
	c->refs = 0;
	c->rx_bid = -1;
	c->id = ++w->next_id;
	c->since_ms = w->now_ms;
	w->live++;
}

static uint8_t *ring_buf(struct worker *w, int bid)
{
	return w->bufs + (size_t)bid * CONN_BUF_SIZE;
}

int conn_buf_ring_init(struct worker *w)
{
	/* faulted in now: the ring is the worker's fixed cost, not a client's */
	size_t bytes = (size_t)CONN_BUF_COUNT * CONN_BUF_SIZE;
	w->bufs = aligned_alloc(4096, bytes);
	if (!w->bufs)
		return -ENOMEM;
	memset(w->bufs, 0, bytes);
	/* liburing 2.3 (Debian 12) registers a ring we allocate ourselves */
	size_t ring_bytes = (CONN_BUF_COUNT * sizeof(struct io_uring_buf) + 4095) & ~(size_t)4095;
	struct io_uring_buf_ring *br = aligned_alloc(4096, ring_bytes);
	struct io_uring_buf_reg reg = {
		.ring_addr = (uint64_t)(uintptr_t)br,
		.ring_entries = CONN_BUF_COUNT,
		.bgid = CONN_BUF_GROUP,
	};
	int r = br ? io_uring_register_buf_ring(&w->ring, &reg, 0) : -ENOMEM;
	if (r != 0) {
		free(br);
		free(w->bufs);
		w->bufs = NULL;
		return r;
	}
	io_uring_buf_ring_init(br);
	w->buf_ring = br;
	for (int i = 0; i < CONN_BUF_COUNT; i++)
		io_uring_buf_ring_add(w->buf_ring, ring_buf(w, i), CONN_BUF_SIZE, (unsigned short)i,
				      io_uring_buf_ring_mask(CONN_BUF_COUNT), i);
	io_uring_buf_ring_advance(w->buf_ring, CONN_BUF_COUNT);
	rx_poison(w->bufs, bytes);
	return 0;
}

void conn_buf_ring_free(struct worker *w)
{
	if (w->buf_ring)
		io_uring_unregister_buf_ring(&w->ring, CONN_BUF_GROUP);
	free(w->buf_ring);
	w->buf_ring = NULL;
	if (w->bufs)
		rx_unpoison(w->bufs, (size_t)CONN_BUF_COUNT * CONN_BUF_SIZE);
	free(w->bufs);
	w->bufs = NULL;
}

static void ring_give_back(struct worker *w, int bid)
{
	rx_poison(ring_buf(w, bid), CONN_BUF_SIZE);
	io_uring_buf_ring_add(w->buf_ring, ring_buf(w, bid), CONN_BUF_SIZE, (unsigned short)bid,
			      io_uring_buf_ring_mask(CONN_BUF_COUNT), 0);
	io_uring_buf_ring_advance(w->buf_ring, 1);
}

uint8_t *conn_ring_buf(struct worker *w, int bid, uint32_t n)
{
	rx_unpoison(ring_buf(w, bid), n);
	return ring_buf(w, bid);
}

void conn_ring_give_back(struct worker *w, int bid)
{
	ring_give_back(w, bid);
}

void conn_rx_release(struct conn *c)
{
	if (c->rx) {
		if (c->rx_bid >= 0)
			ring_give_back(c->w, c->rx_bid);
		else
			free(c->rx);
	}
	c->rx = NULL;
	c->rx_bid = -1;
	c->rx_cap = 0;
	c->scan_pos -= c->rx_start;
	c->rx_end -= c->rx_start;
	c->rx_start = 0;
}

int conn_rx_reserve(struct conn *c, uint32_t cap)
{
	if (cap <= c->rx_cap)
		return 0;
	uint8_t *p;
	if (c->rx_bid >= 0) {
		/* outgrew the provided buffer: move to one of our own */
		p = malloc(cap);
		if (!p)
			return -1;
		memcpy(p, c->rx, c->rx_end);
		ring_give_back(c->w, c->rx_bid);
		c->rx_bid = -1;
	} else {
		p = realloc(c->rx, cap);
		if (!p)
			return -1;
	}
	c->rx = p;
	c->rx_cap = cap;
	rx_poison(p + c->rx_end, cap - c->rx_end); /* as for a provided buffer */
	return 0;
}

void conn_rx_shrink(struct conn *c)
{
	uint32_t left = c->rx_end - c->rx_start;
	if (c->rx_bid < 0 || c->rx_lent > 0 || left > CONN_SHRINK_MAX)
		return;
	uint8_t *p = malloc(left ? left : 1);
	if (!p)
		return; /* keep the provided buffer: correct, just less frugal */
	memcpy(p, c->rx + c->rx_start, left);
	ring_give_back(c->w, c->rx_bid);
	c->rx = p;
	c->rx_bid = -1;
	c->rx_cap = left;
	c->scan_pos -= c->rx_start;
	c->rx_end = left;
	c->rx_start = 0;
}

int conn_arm_recv(struct conn *c)
{
	if (c->recv_armed || c->closing)
		return 0;
	if (c->rx_start == c->rx_end && c->rx_lent == 0 && !c->rx_keep) {
		/* nothing left to read: give the buffer back and wait without one */
		conn_rx_release(c);
	} else if (c->rx_start == c->rx_end && c->rx_lent == 0) {
		c->scan_pos -= c->rx_start;
		c->rx_start = c->rx_end = 0;
	} else if (c->rx_start > 0 && c->rx_lent == 0) {
		/* only compaction copies bytes, and only a partial message header or a
		 * message that must be seen whole; never while a send reads rx */
		memmove(c->rx, c->rx + c->rx_start, c->rx_end - c->rx_start);
		c->rx_end -= c->rx_start;
		c->scan_pos -= c->rx_start;
		c->rx_start = 0;
	}
	if (c->rx_want > c->rx_cap && c->rx_end == c->rx_cap) {
		/* a message that must be seen whole is larger than the buffer. Its
		 * length is the peer's word only: grow by at most what has arrived
		 * (doubling), so memory follows the bytes actually received */
		uint32_t cap = c->rx_cap * 2 < CONN_BUF_SIZE ? CONN_BUF_SIZE : c->rx_cap * 2;
		if (cap > c->rx_want)
			cap = c->rx_want;
		if (conn_rx_reserve(c, cap) != 0)
			return -1;
	}
	c->rx_want = 0; /* the scan that wanted more says so again next time */
	if (c->tls)
		return tls_arm_recv(c); /* the ring receives ciphertext, not rx */
	struct io_uring_sqe *sqe;
	if (!c->rx && c->w->buf_ring && !c->rx_keep) {
		sqe = worker_sqe(c->w);
		io_uring_prep_recv(sqe, c->fd, NULL, CONN_BUF_SIZE, 0);
		sqe->flags |= IOSQE_BUFFER_SELECT;
		sqe->buf_group = CONN_BUF_GROUP;
	} else {
		c->rx_keep = false;
		if (c->rx_end == c->rx_cap
		    && conn_rx_reserve(c,
				       c->rx_cap < CONN_BUF_SIZE ? CONN_BUF_SIZE : CONN_WHOLE_MAX)
			    != 0)
			return -1;
		if (c->rx_end == c->rx_cap)
			return -1;
		sqe = worker_sqe(c->w);
		io_uring_prep_recv(sqe, c->fd, c->rx + c->rx_end, c->rx_cap - c->rx_end, 0);
	}
	io_uring_sqe_set_data64(sqe, conn_user_data(c, UD_RECV));
	c->recv_armed = true;
	c->refs++;
	return 0;
}

bool conn_on_recv(struct conn *c, int *res, unsigned flags)
{
	if (c->tls)
		return tls_on_recv(c, res, flags);
	bool cancelled = c->recv_cancelling;
	c->recv_cancelling = false;
	if (flags & IORING_CQE_F_BUFFER) {
		int bid = (int)(flags >> IORING_CQE_BUFFER_SHIFT);
		if (*res <= 0 || c->closing || c->rx) {
			ring_give_back(c->w, bid);
			if (*res > 0 && !c->closing)
				*res = -EPROTO; /* cannot happen: a recv with a buffer of its own */
			return true;
		}
		c->rx = ring_buf(c->w, bid);
		rx_unpoison(c->rx, (size_t)*res);
		c->rx_bid = bid;
		c->rx_cap = CONN_BUF_SIZE;
		return true;
	}
	if (*res > 0 && c->rx)
		rx_unpoison(c->rx + c->rx_end, (size_t)*res); /* a recv into rx's free end */
	if (*res == -ENOBUFS && cancelled) {
		*res = -ECANCELED; /* its owner asked for it back: no new recv */
		return true;
	}
	if (*res == -ENOBUFS && !c->closing) {
		/* every provided buffer is taken: read into one of our own */
		c->recv_armed = false;
		c->rx_keep = true;
		if (conn_arm_recv(c) == 0)
			return false;
	}
	return true;
}

int conn_queue(struct conn *c, const void *data, size_t len)
{
	/* appending behind a TX send in flight is safe: it only reads [0, send_end) */
	if (c->tx_cap - c->tx_len < len) {
		if (c->tx_len + len > PROTO_MAX_MESSAGE)
			return -1;
		size_t cap = c->tx_len + len < CONN_TX_CAP ? CONN_TX_CAP : (c->tx_len + len) * 2;
		if (cap > PROTO_MAX_MESSAGE)
			cap = PROTO_MAX_MESSAGE;
		uint8_t *p;
		if (c->send_src == SEND_TX && !c->tx_retired) {
			/* the kernel reads this buffer until the send completes: grow
			 * into a copy and let the old one go then */
			p = malloc(cap);
			if (!p)
				return -1;
			memcpy(p, c->tx, c->tx_len);
			c->tx_retired = c->tx;
		} else {
			p = realloc(c->tx, cap);
			if (!p)
				return -1;
		}
		c->tx = p;
		c->tx_cap = (uint32_t)cap;
	}
	memcpy(c->tx + c->tx_len, data, len);
	c->tx_len += (uint32_t)len;
	return 0;
}

void conn_submit_send(struct conn *c)
{
	struct io_uring_sqe *sqe = worker_sqe(c->w);
	io_uring_prep_send(sqe, c->fd, c->send_ptr, c->send_left, MSG_NOSIGNAL);
	io_uring_sqe_set_data64(sqe, conn_user_data(c, UD_SEND));
	c->refs++;
}

bool conn_send_busy(const struct conn *c)
{
	return c->send_src > SEND_TLS;
}

void conn_flush_tx(struct conn *c)
{
	if (c->send_src > SEND_TLS || c->tx_len == 0 || c->closing)
		return;
	if (c->tls) {
		tls_flush_tx(c);
		return;
	}
	c->send_src = SEND_TX;
	c->send_ptr = c->tx;
	c->send_left = c->tx_len;
	c->send_end = c->tx_len;
	conn_submit_send(c);
}

void conn_forward(struct conn *to, struct conn *from, uint32_t end)
{
	to->io_ms = from->io_ms = to->w->now_ms;
	bool tls_in_flight = to->send_src == SEND_TLS;
	to->send_src = SEND_FORWARD;
	to->send_owner = from;
	to->send_ptr = from->rx + from->rx_start;
	to->send_left = end - from->rx_start;
	to->send_end = end;
	from->refs++; /* the kernel reads from's buffer until this completes */
	from->rx_lent++;
	if (to->tls) {
		tls_send(to, tls_in_flight); /* encrypts those bytes, sends the result */
		return;
	}
	conn_submit_send(to);
}

void conn_on_send(struct conn *c, int res)
{
	enum send_src src = c->send_src;
	struct conn *owner = c->send_owner;

	if (c->tls) {
		if (!tls_on_send(c, &res))
			return; /* more ciphertext to send, or the engine's own send */
	} else if (res > 0 && (uint32_t)res < c->send_left && !c->closing) {
		c->send_ptr += res;
		c->send_left -= (uint32_t)res;
		conn_submit_send(c);
		return;
	}
	c->send_src = SEND_NONE;
	c->send_owner = NULL;
	if (src == SEND_TX) {
		free(c->tx_retired); /* what this send read, if tx grew meanwhile */
		c->tx_retired = NULL;
		/* keep what was queued behind the send for the next flush */
		memmove(c->tx, c->tx + c->send_end, c->tx_len - c->send_end);
		c->tx_len -= c->send_end;
		if (c->tx_len == 0 && !c->keep_tx) {
			/* an idle connection holds no send buffer between PgCrab's own messages */
			free(c->tx);
			c->tx = NULL;
			c->tx_cap = 0;
		}
	}
	if (src == SEND_FORWARD) {
		owner->rx_lent--;
		/* never backwards: a server being cleaned up after its client left
		 * consumes its replies while a send to that client still reads them */
		if (res > 0 && owner->rx_start < c->send_end)
			owner->rx_start = c->send_end;
	}

	c->ops->on_sent(c, src, owner, res < 0 ? -res : 0);
	if (owner)
		conn_put(owner);
}

void conn_arm_poll(struct conn *c)
{
	if (c->poll_armed || c->closing)
		return;
	struct io_uring_sqe *sqe = worker_sqe(c->w);
	io_uring_prep_poll_add(sqe, c->fd, POLLRDHUP | POLLHUP | POLLERR);
	io_uring_sqe_set_data64(sqe, conn_user_data(c, UD_POLL));
	c->poll_armed = true;
	c->refs++;
}

void conn_cancel_poll(struct conn *c)
{
	if (!c->poll_armed)
		return;
	struct io_uring_sqe *sqe = worker_sqe(c->w);
	io_uring_prep_poll_remove(sqe, conn_user_data(c, UD_POLL));
	io_uring_sqe_set_data64(sqe, ud_encode(UD_NONE, 0, 0));
	/* poll_armed stays set until the poll's own completion (-ECANCELED) */
}

void conn_close(struct conn *c)
{
	if (c->closing)
		return;
	c->closing = true;
	/* A pending operation keeps the socket open past close(2): cancel each
	 * one first, by its user_data (a hash lookup; cancelling by fd scans
	 * every request in the ring, which made closing 10,000 idle clients
	 * quadratic). The hard links run the close even if nothing matched. */
	const enum ud_op pending[] = {
		c->recv_armed ? UD_RECV : UD_NONE,
		c->send_src != SEND_NONE ? UD_SEND : UD_NONE,
		c->connect_armed ? UD_CONNECT : UD_NONE,
		c->poll_armed ? UD_POLL : UD_NONE,
	};
	unsigned chain = 1;
	for (size_t i = 0; i < sizeof(pending) / sizeof(pending[0]); i++)
		chain += pending[i] != UD_NONE;
	worker_sqes(c->w, chain); /* a chain split by a submission would not hold */
	struct io_uring_sqe *sqe;
	for (size_t i = 0; i < sizeof(pending) / sizeof(pending[0]); i++) {
		if (pending[i] == UD_NONE)
			continue;
		sqe = worker_sqe(c->w);
		io_uring_prep_cancel64(sqe, conn_user_data(c, pending[i]), 0);
		io_uring_sqe_set_data64(sqe, ud_encode(UD_NONE, 0, 0));
		sqe->flags |= IOSQE_IO_HARDLINK;
	}
	sqe = worker_sqe(c->w);
	io_uring_prep_close(sqe, c->fd);
	io_uring_sqe_set_data64(sqe, conn_user_data(c, UD_CLOSE));
	c->refs++;
}

void conn_on_close(struct conn *c)
{
	c->fd = -1;
}

void conn_put(struct conn *c)
{
	if (--c->refs > 0 || !c->closing || c->fd != -1)
		return;
	c->w->live--;
	conn_rx_release(c);
	free(c->tx);
	c->tx = NULL;
	free(c->tx_retired);
	c->tx_retired = NULL;
	if (c->tls)
		tls_free(c);
	c->ops->on_free(c);
}
