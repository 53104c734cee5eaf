/* Idle clients handed to an upgrade's new process (session/handover.h).
 * The record is PgCrab's own, read only by the same program: a version,
 * then the fields in a fixed order, strings as length and bytes. */
#include "session/handover.h"

#include <errno.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

#include "auth/proof.h"
#include "core/log.h"
#include "session/client.h"
#include "session/session.h"

#define HANDOVER_VERSION 1
#define NO_STRING        0xffffffffu

/* ---- the record --------------------------------------------------------- */

struct out_buf {
	uint8_t *p;
	size_t len, cap;
	bool bad; /* out of memory, or past HANDOVER_MAX */
};

static void put(struct out_buf *b, const void *data, size_t n)
{
	if (b->bad || b->len + n > HANDOVER_MAX) {
		b->bad = true;
		return;
	}
	if (b->len + n > b->cap) {
		size_t cap = b->cap ? b->cap * 2 : 1024;
		while (cap < b->len + n)
			cap *= 2;
		uint8_t *p = realloc(b->p, cap);
		if (!p) {
			b->bad = true;
			return;
		}
		b->p = p;
		b->cap = cap;
	}
	memcpy(b->p + b->len, data, n);
	b->len += n;
}

static void put_u32(struct out_buf *b, uint32_t v)
{
	put(b, &v, sizeof(v));
}

/* with its NUL, so that the reader can point into the record */
static void put_str(struct out_buf *b, const char *s)
{
	if (!s) {
		put_u32(b, NO_STRING);
		return;
	}
	size_t n = strlen(s) + 1;
	put_u32(b, (uint32_t)n);
	put(b, s, n);
}

static void put_params(struct out_buf *b, const struct param_set *ps)
{
	put_u32(b, (uint32_t)ps->n);
	for (int i = 0; i < ps->n; i++) {
		put_str(b, ps->v[i].name);
		put_str(b, ps->v[i].value);
	}
}

static void put_proof(struct out_buf *b, const struct auth_proof *p)
{
	put_u32(b, p != NULL);
	if (!p)
		return;
	put_u32(b, (uint32_t)p->method);
	put_str(b, p->cleartext);
	put_u32(b, p->has_md5);
	put(b, p->md5, sizeof(p->md5));
	put_u32(b, p->has_scram);
	put(b, p->client_key, sizeof(p->client_key));
	put(b, p->server_key, sizeof(p->server_key));
	put(b, p->stored_key, sizeof(p->stored_key));
	put_u32(b, (uint32_t)p->salt_len);
	put(b, p->salt, p->salt_len);
	put_u32(b, (uint32_t)p->iterations);
}

static void pack(struct out_buf *b, const struct client *cl)
{
	uint8_t tag = HANDOVER_RECORD;
	put(b, &tag, 1);
	put_u32(b, HANDOVER_VERSION);
	put_u32(b, (uint32_t)cl->key_pid);
	put_u32(b, (uint32_t)cl->key_secret);
	put_str(b, cl->user);
	put_str(b, cl->pool->shard->cfg->name);
	put_str(b, cl->db ? cl->db->cfg->name : NULL);
	put_proof(b, cl->proof);
	put_params(b, &cl->startup);
	put_params(b, &cl->want);
	put_params(b, &cl->rl.custom);
	put_u32(b, (uint32_t)cl->stmts.n);
	for (int i = 0; i < cl->stmts.n; i++) {
		const struct stmt *st = cl->stmts.v[i].st;
		put_str(b, cl->stmts.v[i].name);
		put_u32(b, st->effects);
		put_u32(b, st->len);
		put(b, st->body, st->len);
	}
}

struct in_buf {
	const uint8_t *p;
	size_t left;
	bool bad;
};

static const uint8_t *get(struct in_buf *r, size_t n)
{
	if (r->bad || n > r->left) {
		r->bad = true;
		return NULL;
	}
	const uint8_t *p = r->p;
	r->p += n;
	r->left -= n;
	return p;
}

static uint32_t get_u32(struct in_buf *r)
{
	uint32_t v = 0;
	const uint8_t *p = get(r, sizeof(v));
	if (p)
		memcpy(&v, p, sizeof(v));
	return v;
}

static const char *get_str(struct in_buf *r)
{
	uint32_t n = get_u32(r);
	if (n == NO_STRING || r->bad)
		return NULL;
	const uint8_t *p = n ? get(r, n) : NULL;
	if (!p || p[n - 1] != '\0') {
		r->bad = true;
		return NULL;
	}
	return (const char *)p;
}

static void get_into(struct in_buf *r, void *to, size_t n)
{
	const uint8_t *p = get(r, n);
	if (p)
		memcpy(to, p, n);
}

static int get_params(struct in_buf *r, struct param_set *ps)
{
	uint32_t n = get_u32(r);
	for (uint32_t i = 0; i < n && !r->bad; i++) {
		const char *name = get_str(r), *value = get_str(r);
		if (!name || !value || params_set(ps, name, value) != 0)
			return -1;
	}
	return r->bad ? -1 : 0;
}

static struct auth_proof *get_proof(struct in_buf *r, bool *bad)
{
	if (!get_u32(r))
		return NULL;
	struct auth_proof *p = calloc(1, sizeof(*p));
	if (!p) {
		*bad = true;
		return NULL;
	}
	p->method = (enum auth_method)get_u32(r);
	const char *clear = get_str(r);
	p->cleartext = clear ? strdup(clear) : NULL;
	p->has_md5 = get_u32(r) != 0;
	get_into(r, p->md5, sizeof(p->md5));
	p->md5[sizeof(p->md5) - 1] = '\0';
	p->has_scram = get_u32(r) != 0;
	get_into(r, p->client_key, sizeof(p->client_key));
	get_into(r, p->server_key, sizeof(p->server_key));
	get_into(r, p->stored_key, sizeof(p->stored_key));
	p->salt_len = get_u32(r);
	if (p->salt_len > sizeof(p->salt))
		r->bad = true;
	else
		get_into(r, p->salt, p->salt_len);
	p->iterations = (int)get_u32(r);
	if (r->bad || (clear && !p->cleartext)) {
		auth_proof_free(p);
		*bad = true;
		return NULL;
	}
	return p;
}

/* ---- the old process --------------------------------------------------- */

struct handover_out {
	struct client *cl; /* NULL: a forwarded cancel */
	struct msghdr msg;
	struct iovec iov;
	/* CMSG_SPACE(sizeof(int)): 24 on 64-bit Linux */
	_Alignas(struct cmsghdr) char cm[64];
	struct out_buf rec;
};

/* Why the client cannot go (NULL: it can, now), and whether it may later. */
static const char *cannot_go(const struct client *cl, bool *later)
{
	const struct conn *c = &cl->c;
	*later = true;
	if (c->rx_start != c->rx_end)
		return "a request is buffered";
	if (c->tx_len > 0 || conn_send_busy(c))
		return "a reply is being sent";
	if (c->poll_armed || relay_linked(&cl->rl))
		return "a server is linked";
	*later = false;
	if (c->tls)
		return "TLS: its encryption state cannot move to another process";
	if (cl->login || cl->rl.resets || cl->rl.terminate)
		return "its session is between states";
	if (atomic_load_explicit(&c->w->rt->handover_fd, memory_order_relaxed) < 0)
		return "the new process takes no clients";
	return NULL;
}

static void send_record(struct client *cl)
{
	struct worker *w = cl->c.w;
	struct handover_out *o = calloc(1, sizeof(*o));
	if (o)
		pack(&o->rec, cl);
	if (!o || o->rec.bad) {
		log_info("worker %d client %llu: not handed over: %s; closed", w->id,
			 (unsigned long long)cl->c.id,
			 o ? "its session state is too large" : "out of memory");
		if (o)
			free(o->rec.p);
		free(o);
		client_fail(cl, "FATAL", "57P01", "pgcrab is shutting down");
		return;
	}
	o->cl = cl;
	o->iov.iov_base = o->rec.p;
	o->iov.iov_len = o->rec.len;
	o->msg.msg_iov = &o->iov;
	o->msg.msg_iovlen = 1;
	o->msg.msg_control = o->cm;
	o->msg.msg_controllen = CMSG_SPACE(sizeof(int));
	struct cmsghdr *h = CMSG_FIRSTHDR(&o->msg);
	h->cmsg_level = SOL_SOCKET;
	h->cmsg_type = SCM_RIGHTS;
	h->cmsg_len = CMSG_LEN(sizeof(int));
	memcpy(CMSG_DATA(h), &cl->c.fd, sizeof(int));
	cl->c.refs++; /* the send reads the client: it lives until the answer */
	worker_sendmsg(w, atomic_load(&w->rt->handover_fd), &o->msg, o);
}

enum handover_result handover_begin(struct client *cl, const char **why)
{
	if (cl->state != CLIENT_IDLE || cl->c.closing)
		return HANDOVER_NOT_NOW;
	bool later;
	*why = cannot_go(cl, &later);
	if (*why)
		return later ? HANDOVER_NOT_NOW : HANDOVER_NEVER;
	client_set_state(cl, CLIENT_HANDOVER);
	if (cl->c.recv_armed) {
		/* bytes the recv has not taken stay in the socket for the new
		 * process; bytes it took make the client busy again */
		struct io_uring_sqe *sqe = worker_sqe(cl->c.w);
		io_uring_prep_cancel64(sqe, conn_user_data(&cl->c, UD_RECV), 0);
		io_uring_sqe_set_data64(sqe, ud_encode(UD_NONE, 0, 0));
		cl->c.recv_cancelling = true;
		return HANDOVER_STARTED;
	}
	send_record(cl);
	return HANDOVER_STARTED;
}

void handover_on_recv(struct client *cl, int res)
{
	if (res == -ECANCELED) {
		send_record(cl);
		return;
	}
	if (res <= 0) {
		client_close_now(cl);
		return;
	}
	/* a request came first: served here, handed over after it */
	cl->c.rx_end += (uint32_t)res;
	client_set_state(cl, CLIENT_IDLE);
	client_next(cl);
}

void handover_sent(struct worker *w, void *ptr, int res)
{
	struct handover_out *o = ptr;
	struct client *cl = o->cl;
	size_t len = o->rec.len;
	free(o->rec.p);
	free(o);
	if (!cl) {
		/* a forwarded cancel: best effort, as any CancelRequest */
	} else if (cl->c.closing) {
		/* shutdown_timeout cut it meanwhile */
	} else if (res >= 0 && (size_t)res == len) {
		/* the new process holds the socket: ours closes without a word */
		log_debug("worker %d client %llu: handed over to the new process", w->id,
			  (unsigned long long)cl->c.id);
		client_set_state(cl, CLIENT_CLOSING);
		conn_close(&cl->c);
	} else {
		log_info("worker %d client %llu: handing over failed (%s): closed", w->id,
			 (unsigned long long)cl->c.id, res < 0 ? strerror(-res) : "short send");
		client_set_state(cl, CLIENT_IDLE);
		client_fail(cl, "FATAL", "57P01", "pgcrab is shutting down");
	}
	if (cl)
		conn_put(&cl->c);
}

void handover_forward_cancel(struct worker *w, int32_t pid, int32_t key)
{
	int fd = atomic_load_explicit(&w->rt->predecessor_fd, memory_order_relaxed);
	if (fd < 0)
		return;
	struct handover_out *o = calloc(1, sizeof(*o));
	if (!o)
		return;
	uint8_t tag = HANDOVER_CANCEL;
	put(&o->rec, &tag, 1);
	put(&o->rec, &pid, sizeof(pid));
	put(&o->rec, &key, sizeof(key));
	if (o->rec.bad) {
		free(o->rec.p);
		free(o);
		return;
	}
	o->iov.iov_base = o->rec.p;
	o->iov.iov_len = o->rec.len;
	o->msg.msg_iov = &o->iov;
	o->msg.msg_iovlen = 1;
	worker_sendmsg(w, fd, &o->msg, o);
}

/* ---- the new process --------------------------------------------------- */

int handover_worker_of(const struct runtime *rt, const uint8_t *data, size_t len)
{
	struct in_buf r = { data, len, false };
	const uint8_t *tag = get(&r, 1);
	if (!tag || *tag != HANDOVER_RECORD || get_u32(&r) != HANDOVER_VERSION)
		return -1;
	uint32_t pid = get_u32(&r);
	if (r.bad)
		return -1;
	/* where cancel_route looks for it */
	return (int)((pid & 0xff) % (uint32_t)rt->n_workers);
}

static int adopt_stmts(struct in_buf *r, struct client *cl)
{
	uint32_t n = get_u32(r);
	for (uint32_t i = 0; i < n && !r->bad; i++) {
		const char *name = get_str(r);
		uint32_t effects = get_u32(r);
		uint32_t len = get_u32(r);
		const uint8_t *body = get(r, len);
		if (!name || !body)
			return -1;
		struct stmt *st = stmt_new(body, len);
		if (!st)
			return -1;
		st->effects = effects;
		int rc = stmt_names_add(&cl->stmts, name, st);
		stmt_unref(st);
		if (rc != 0)
			return -1;
	}
	return r->bad ? -1 : 0;
}

static int shard_index(const struct session_worker *sw, const char *name)
{
	for (int i = 0; name && i < sw->pools.n_shards; i++)
		if (strcmp(sw->pools.shards[i].cfg->name, name) == 0)
			return i;
	return -1;
}

static struct session_db *find_db(struct session_worker *sw, const char *name)
{
	for (int i = 0; name && i < sw->n_dbs; i++)
		if (strcmp(sw->dbs[i].cfg->name, name) == 0)
			return &sw->dbs[i];
	return NULL;
}

void handover_adopt(struct session_worker *sw, struct handover_in *in)
{
	struct worker *w = sw->w;
	struct in_buf r = { in->data, in->len, false };
	(void)get(&r, 1 + 4); /* tag and version: checked by handover_worker_of */
	int32_t pid = (int32_t)get_u32(&r), secret = (int32_t)get_u32(&r);
	const char *user = get_str(&r), *shard = get_str(&r), *dbname = get_str(&r);
	int si = shard_index(sw, shard);
	struct session_db *db = find_db(sw, dbname);
	if (r.bad || !user || si < 0 || (dbname && !db)) {
		log_warn("worker %d: a client handed over names %s \"%s\", unknown here: closed",
			 w->id, dbname ? "database" : "shard",
			 dbname          ? dbname
				 : shard ? shard
					 : "?");
		close(in->fd);
		atomic_fetch_sub(&w->n_clients, 1);
		free(in);
		return;
	}
	struct client *cl = client_new(sw, in->fd);
	if (!cl) {
		free(in);
		return;
	}
	bool bad = false;
	cl->key_pid = pid;
	cl->key_secret = secret;
	cl->user = strdup(user);
	cl->proof = get_proof(&r, &bad);
	if (!cl->user || bad || get_params(&r, &cl->startup) != 0 || get_params(&r, &cl->want) != 0
	    || get_params(&r, &cl->rl.custom) != 0 || adopt_stmts(&r, cl) != 0) {
		log_warn("worker %d client %llu: a client handed over could not be read: closed",
			 w->id, (unsigned long long)cl->c.id);
		client_close_now(cl);
		free(in);
		return;
	}
	free(in);
	if (db) {
		cl->db = db;
		if (relay_route_init(&cl->rl, &db->schema, db->cfg->name) != 0) {
			client_close_now(cl);
			return;
		}
	}
	cl->pool = client_pool(cl, si);
	if (!cl->pool) {
		client_close_now(cl);
		return;
	}
	log_debug("worker %d client %llu: adopted from the previous process", w->id,
		  (unsigned long long)cl->c.id);
	client_set_state(cl, CLIENT_IDLE);
	client_next(cl);
}
