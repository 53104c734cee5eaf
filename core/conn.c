#include "core/conn.h"

#include <errno.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "core/cancel.h"
#include "core/client.h"
#include "core/log.h"
#include "proto/proto.h"
#include "pool/server.h"

struct io_uring_sqe *worker_sqe(struct worker *w)
{
	struct io_uring_sqe *sqe = io_uring_get_sqe(&w->ring);
	while (!sqe) {
		io_uring_submit(&w->ring);
		sqe = io_uring_get_sqe(&w->ring);
	}
	return sqe;
}

void conn_init(struct conn *c, enum conn_kind kind, struct worker *w, int fd)
{
	c->kind = kind;
	c->fd = fd;
	c->w = w;
	c->refs = 0;
	c->rx = malloc(CONN_RX_CAP);
	c->rx_cap = CONN_RX_CAP;
	c->tx = c->tx_inline;
	c->tx_cap = CONN_TX_CAP;
	c->id = ++w->next_id;
	c->since_ms = w->now_ms;
	w->live++;
}

int conn_arm_recv(struct conn *c)
{
	if (c->recv_armed || c->closing)
		return 0;
	if (c->rx_start == c->rx_end) {
		c->scan_pos -= c->rx_start;
		c->rx_start = c->rx_end = 0;
	} else if (c->rx_start > 0) {
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
		uint32_t cap = c->rx_cap <= c->rx_want / 2 ? c->rx_cap * 2 : c->rx_want;
		uint8_t *p = realloc(c->rx, cap);
		if (!p)
			return -1;
		c->rx = p;
		c->rx_cap = cap;
	}
	c->rx_want = 0; /* the scan that wanted more says so again next time */
	if (c->rx_end == c->rx_cap)
		return -1;
	struct io_uring_sqe *sqe = worker_sqe(c->w);
	io_uring_prep_recv(sqe, c->fd, c->rx + c->rx_end, c->rx_cap - c->rx_end, 0);
	io_uring_sqe_set_data64(sqe, conn_user_data(c, OP_RECV));
	c->recv_armed = true;
	c->refs++;
	return 0;
}

int conn_queue(struct conn *c, const void *data, size_t len)
{
	/* appending behind a TX send in flight is safe: it only reads [0, send_end) */
	if (c->tx_cap - c->tx_len < len) {
		if (c->send_src == SEND_TX || c->tx_len + len > PROTO_MAX_MESSAGE)
			return -1;
		size_t cap = c->tx_len + len + CONN_TX_CAP;
		uint8_t *p = malloc(cap);
		if (!p)
			return -1;
		memcpy(p, c->tx, c->tx_len);
		if (c->tx != c->tx_inline)
			free(c->tx);
		c->tx = p;
		c->tx_cap = (uint32_t)cap;
	}
	memcpy(c->tx + c->tx_len, data, len);
	c->tx_len += (uint32_t)len;
	return 0;
}

static void submit_send(struct conn *c)
{
	struct io_uring_sqe *sqe = worker_sqe(c->w);
	io_uring_prep_send(sqe, c->fd, c->send_ptr, c->send_left, MSG_NOSIGNAL);
	io_uring_sqe_set_data64(sqe, conn_user_data(c, OP_SEND));
	c->refs++;
}

bool conn_send_busy(const struct conn *c)
{
	return c->send_src != SEND_NONE;
}

void conn_flush_tx(struct conn *c)
{
	if (c->send_src != SEND_NONE || c->tx_len == 0 || c->closing)
		return;
	c->send_src = SEND_TX;
	c->send_ptr = c->tx;
	c->send_left = c->tx_len;
	c->send_end = c->tx_len;
	submit_send(c);
}

void conn_forward(struct conn *to, struct conn *from, uint32_t end)
{
	to->io_ms = from->io_ms = to->w->now_ms;
	to->send_src = SEND_FORWARD;
	to->send_owner = from;
	to->send_ptr = from->rx + from->rx_start;
	to->send_left = end - from->rx_start;
	to->send_end = end;
	from->refs++; /* the kernel reads from's buffer until this completes */
	submit_send(to);
}

void conn_on_send(struct conn *c, int res)
{
	enum send_src src = c->send_src;
	struct conn *owner = c->send_owner;

	if (res > 0 && (uint32_t)res < c->send_left && !c->closing) {
		c->send_ptr += res;
		c->send_left -= (uint32_t)res;
		submit_send(c);
		return;
	}
	c->send_src = SEND_NONE;
	c->send_owner = NULL;
	if (src == SEND_TX) {
		/* keep what was queued behind the send for the next flush */
		memmove(c->tx, c->tx + c->send_end, c->tx_len - c->send_end);
		c->tx_len -= c->send_end;
	}
	if (src == SEND_FORWARD && res > 0)
		owner->rx_start = c->send_end;

	int err = res < 0 ? -res : 0;
	if (c->kind == CONN_CLIENT)
		client_on_sent(container_of_client(c), src, owner, err);
	else if (c->kind == CONN_SERVER)
		server_on_sent(container_of_server(c), src, owner, err);
	else
		cancel_on_sent(c, err);
	if (owner)
		conn_put(owner);
}

void conn_close(struct conn *c)
{
	if (c->closing)
		return;
	c->closing = true;
	/* A pending recv keeps the socket open past close(2): cancel everything
	 * on the fd first; the hard link runs the close even if nothing matched. */
	struct io_uring_sqe *sqe = worker_sqe(c->w);
	io_uring_prep_cancel_fd(sqe, c->fd, IORING_ASYNC_CANCEL_ALL);
	io_uring_sqe_set_data64(sqe, OP_NONE);
	sqe->flags |= IOSQE_IO_HARDLINK;
	sqe = worker_sqe(c->w);
	io_uring_prep_close(sqe, c->fd);
	io_uring_sqe_set_data64(sqe, conn_user_data(c, OP_CLOSE));
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
	free(c->rx);
	c->rx = NULL;
	if (c->tx != c->tx_inline)
		free(c->tx);
	c->tx = c->tx_inline;
	if (c->kind == CONN_CLIENT)
		client_free(container_of_client(c));
	else if (c->kind == CONN_SERVER)
		server_free(container_of_server(c));
	else
		cancel_free(c);
}
