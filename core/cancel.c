#include "core/cancel.h"

#include <netinet/tcp.h>
#include <openssl/rand.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "core/conn.h"
#include "core/list.h"
#include "core/log.h"
#include "proto/proto.h"

int32_t cancel_new_pid(struct worker *w)
{
	/* positive, unique per live client: 23 bits of counter, 8 of worker id */
	uint32_t n = ++w->next_pid & 0x7fffff;
	if (n == 0)
		n = ++w->next_pid & 0x7fffff;
	return (int32_t)((n << 8) | (uint32_t)w->id);
}

int cancel_new_secret(struct worker *w, int32_t *out)
{
	/* drawn 256 at a time: one DRBG call per 256 logins, not per login */
	if (w->secrets_left == 0) {
		if (RAND_bytes((unsigned char *)w->secrets, sizeof(w->secrets)) != 1)
			return -1;
		w->secrets_left = sizeof(w->secrets) / sizeof(w->secrets[0]);
	}
	*out = w->secrets[--w->secrets_left];
	w->secrets[w->secrets_left] = 0; /* a used secret does not linger */
	return 0;
}

void cancel_route(struct worker *w, int32_t pid, int32_t key)
{
	int owner = pid & 0xff;
	if (pid <= 0 || owner >= w->rt->n_workers)
		return; /* forged: nothing to do, as PostgreSQL says nothing either */
	if (owner == w->id) {
		cancel_deliver(w, pid, key);
		return;
	}
	struct io_uring_sqe *sqe = worker_sqe(w);
	uint64_t data = ud_encode(UD_MSG, MSG_CANCEL, (uint32_t)pid);
	io_uring_prep_msg_ring(sqe, w->rt->workers[owner].ring_fd, (unsigned)key, data, 0);
	io_uring_sqe_set_data64(sqe, ud_encode(UD_NONE, 0, 0));
}

/* A one-shot connection carrying a CancelRequest. With done set, it holds
 * its server until PostgreSQL has closed it: PostgreSQL signals the backend
 * before it closes, so from then on the cancel cannot hit a later query. */
struct cancel_conn {
	struct conn c; /* first: a cancel_conn is a conn */
	struct server *target;
	void (*done)(struct server *s);
};

void cancel_server(struct worker *w, struct server *s, void (*done)(struct server *s))
{
	struct shard *sh = s->shard;
	int fd = socket(sh->addr.ss_family, SOCK_STREAM | SOCK_CLOEXEC, 0);
	struct cancel_conn *cc = fd >= 0 ? calloc(1, sizeof(*cc)) : NULL;
	uint8_t buf[64];
	struct proto_writer wr = proto_writer_init(buf, sizeof(buf));
	proto_build_cancel(&wr, s->be_pid, s->be_key);
	if (!cc || conn_queue(&cc->c, wr.p, wr.len) != 0) {
		if (fd >= 0)
			close(fd);
		if (cc)
			free(cc->c.tx);
		free(cc);
		log_warn("shard %s: cannot open a cancel connection", sh->cfg->name);
		if (done)
			done(s);
		return;
	}
	struct conn *c = &cc->c;
	c->kind = CONN_CANCEL;
	c->fd = fd;
	c->w = w;
	c->id = ++w->next_id;
	w->live++;
	c->rx_bid = -1;
	if (done) {
		cc->target = s;
		cc->done = done;
		s->c.refs++; /* s stays readable until done has run */
	}
	struct io_uring_sqe *sqe = worker_sqe(w);
	io_uring_prep_connect(sqe, fd, (struct sockaddr *)&sh->addr, sh->addrlen);
	io_uring_sqe_set_data64(sqe, conn_user_data(c, UD_CONNECT));
	c->connect_armed = true;
	c->refs++;
}

void cancel_deliver(struct worker *w, int32_t pid, int32_t key)
{
	for (struct list *n = w->clients.next; n != &w->clients; n = n->next) {
		struct client *cl = list_entry(n, struct client, link);
		if (cl->key_pid != pid)
			continue;
		/* a wrong key, or a client between transactions, cancels nothing */
		if (cl->key_secret == key && cl->state == CLIENT_ACTIVE && cl->server)
			cancel_server(w, cl->server, NULL);
		return;
	}
}

void cancel_on_connect(struct conn *c, int res)
{
	if (res < 0) {
		log_warn("cancel connection failed: %s", strerror(-res));
		conn_close(c);
		return;
	}
	conn_flush_tx(c);
}

void cancel_on_sent(struct conn *c, int err)
{
	struct cancel_conn *cc = (struct cancel_conn *)c;
	/* PostgreSQL closes after acting on a CancelRequest: wait for that
	 * when someone must know, else close now */
	if (err || !cc->done || conn_arm_recv(c) != 0)
		conn_close(c);
}

void cancel_on_recv(struct conn *c, int res)
{
	c->recv_armed = false;
	conn_close(c); /* the server's close (or anything else) ends it */
}

void cancel_free(struct conn *c)
{
	struct cancel_conn *cc = (struct cancel_conn *)c;
	struct server *s = cc->target;
	if (s) {
		cc->done(s);
		conn_put(&s->c);
	}
	free(cc);
}
