/* Server connections while their pool holds them: connect and log in
 * through the worker's ring, wait idle, move between workers, close. The
 * relay drives them while they are lent (relay/). */
#include "pool/server.h"

#include <errno.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

#include "auth/auth.h"
#include "auth/proof.h"
#include "auth/scram_keys.h"
#include "core/conn.h"
#include "core/list.h"
#include "core/log.h"
#include "core/tls.h"
#include "core/worker.h"
#include "pool/pool.h"
#include "proto/proto.h"
#include "stats/stats.h"

static const char *const state_names[] = {
	[SERVER_CONNECTING] = "connecting", [SERVER_TLS_ASK] = "tls request",
	[SERVER_LOGIN] = "login",           [SERVER_IDLE] = "idle",
	[SERVER_ACTIVE] = "active",         [SERVER_RESET] = "reset",
	[SERVER_DONATING] = "donating",     [SERVER_CLOSING] = "closing",
};

const char *server_state_name(enum server_state s)
{
	return state_names[s];
}

const char *server_user(const struct server *s)
{
	return s->role ? s->role->name : s->shard->cfg->user;
}

static bool logging_in(enum server_state st)
{
	return st == SERVER_CONNECTING || st == SERVER_TLS_ASK || st == SERVER_LOGIN;
}

/* The one place a server's state changes; it keeps the pool's lists and
 * counts in step with the state. */
/* stats/ gauges: a server in transit between workers, or closing, counts
 * on no worker */
static int counted(enum server_state st)
{
	return st == SERVER_DONATING || st == SERVER_CLOSING ? -1 : (int)st;
}

void server_set_state(struct server *s, enum server_state st)
{
	struct pool *p = s->pool;
	enum server_state old = s->state;
	if (old == st)
		return;
	if (logging_in(old) && !logging_in(st))
		p->n_connecting--;
	if (old == SERVER_IDLE) {
		list_del(&s->link);
		p->n_idle--;
	}
	if (st == SERVER_IDLE) {
		list_add_head(&p->idle, &s->link);
		p->n_idle++;
	}
	/* a donated server belongs to no pool until it arrives (s->pool is then
	 * already the new worker's pool) */
	if (old == SERVER_DONATING) {
		list_add_tail(&p->servers, &s->all);
		p->n_servers++;
	}
	if (st == SERVER_DONATING || st == SERVER_CLOSING) {
		list_del(&s->all);
		p->n_servers--;
	}
	if (st == SERVER_CLOSING) {
		shard_unreserve(s->shard); /* a donated server carries its reservation */
		if (s->role)
			pool_role_unreserve(s->role);
	}
	log_debug("worker %d server %llu (%s): %s -> %s", s->c.w->id, (unsigned long long)s->c.id,
		  s->shard->cfg->name, state_names[old], state_names[st]);
	s->state = st;
	s->c.since_ms = s->c.w->now_ms;
	stats_gauge_move(stats_slot(&s->c.w->stats, s->shard->index)->servers, counted(old),
			 counted(st));
}

void server_connect(struct pool *p)
{
	struct shard *sh = p->shard;
	int fd = socket(sh->addr.ss_family, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
	struct server *s = fd >= 0 ? calloc(1, sizeof(*s)) : NULL;
	if (!s) {
		char why[128];
		snprintf(why, sizeof(why), "cannot create a socket: %s", strerror(errno));
		log_error("shard %s: %s", sh->cfg->name, why);
		if (fd >= 0)
			close(fd);
		shard_unreserve(sh);
		if (p->role)
			pool_role_unreserve(p->role);
		/* out of fds (EMFILE): back off rather than retry on every call */
		pool_connect_failed(p, NULL, why);
		return;
	}
	int one = 1;
	if (sh->addr.ss_family != AF_UNIX)
		setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof(one));
	conn_init(&s->c, &server_pool_ops, p->w, fd);
	s->c.keep_tx = true; /* PgCrab's own messages to servers are frequent */
	s->pool = p;
	s->shard = sh;
	s->role = p->role;
	/* its own copy: the pool's may be replaced by a newer client's while
	 * this one logs in */
	s->proof = auth_proof_dup(p->proof);
	s->born_ms = p->w->now_ms;
	s->state = SERVER_CONNECTING;
	stats_gauge_move(stats_slot(&p->w->stats, sh->index)->servers, -1, SERVER_CONNECTING);
	list_init(&s->link);
	list_add_tail(&p->servers, &s->all);
	p->n_servers++;
	p->n_connecting++;
	struct io_uring_sqe *sqe = worker_sqe(p->w);
	io_uring_prep_connect(sqe, fd, (struct sockaddr *)&sh->addr, sh->addrlen);
	io_uring_sqe_set_data64(sqe, conn_user_data(&s->c, UD_CONNECT));
	s->c.connect_armed = true;
	s->c.refs++;
}

/* Login secrets are dropped as soon as the login ends. */
static void forget_secrets(struct server *s)
{
	if (s->scram) {
		memset(s->scram, 0, sizeof(*s->scram));
		free(s->scram);
		s->scram = NULL;
	}
	if (s->scram_keys) {
		memset(s->scram_keys, 0, sizeof(*s->scram_keys));
		free(s->scram_keys);
		s->scram_keys = NULL;
	}
	auth_proof_free(s->proof);
	s->proof = NULL;
}

void server_free(struct server *s)
{
	forget_secrets(s);
	free(s->params);
	params_clear(&s->have);
	stmt_set_clear(&s->stmts);
	free(s);
}

static void close_with(struct server *s, const char *why, const char *sqlstate);

void server_close(struct server *s, const char *why)
{
	close_with(s, why, "08001"); /* sqlclient_unable_to_establish_sqlconnection */
}

/* Closes; a failed login reports sqlstate to the pool's waiting clients if
 * it leaves them nothing to wait for. */
static void close_with(struct server *s, const char *why, const char *sqlstate)
{
	if (s->c.closing)
		return;
	bool failed_login = logging_in(s->state);
	if (failed_login)
		log_warn("shard %s: server connection failed: %s", s->shard->cfg->name, why);
	else
		log_debug("worker %d server %llu: closing: %s", s->c.w->id,
			  (unsigned long long)s->c.id, why);
	server_set_state(s, SERVER_CLOSING);
	conn_close(&s->c);
	pool_server_gone(s, failed_login, sqlstate, why);
}

static void send_startup(struct server *s);

static void server_on_connect(struct server *s, int res)
{
	if (s->c.closing)
		return;
	if (res < 0) {
		char why[128];
		snprintf(why, sizeof(why), "cannot connect to %s:%d: %s", s->shard->cfg->host,
			 s->shard->cfg->port, strerror(-res));
		server_close(s, why);
		return;
	}
	/* TLS first where the shard wants it; over a Unix socket never (as libpq) */
	if (s->shard->cfg->server_tls_mode != CFG_TLS_DISABLE
	    && s->shard->addr.ss_family != AF_UNIX) {
		uint8_t req[8];
		struct proto_writer wr = proto_writer_init(req, sizeof(req));
		proto_put_i32(&wr, 8);
		proto_put_i32(&wr, PROTO_CODE_SSL);
		if (conn_queue(&s->c, wr.p, wr.len) != 0) {
			server_close(s, "out of memory");
			return;
		}
		server_set_state(s, SERVER_TLS_ASK);
		conn_flush_tx(&s->c);
		if (conn_arm_recv(&s->c) != 0)
			server_close(s, "receive buffer full");
		return;
	}
	send_startup(s);
}

/* The server's one-byte answer to the SSLRequest. */
static void tls_answer(struct server *s)
{
	struct conn *c = &s->c;
	const struct cfg_shard *cfg = s->shard->cfg;
	uint8_t answer = c->rx[c->rx_start];
	c->rx_start++;
	c->scan_pos = c->rx_start;
	if (c->rx_start != c->rx_end) {
		/* bytes behind the answer were not encrypted: someone may have put them there */
		server_close(s, "server sent unencrypted data after its answer to the SSL request");
		return;
	}
	if (answer == 'S') {
		if (tls_connect(c, s->shard->index, cfg->host) != 0) {
			const char *e = tls_error(c);
			server_close(s, e ? e : "cannot start TLS (no context or memory)");
			return;
		}
		send_startup(s); /* it waits for the handshake inside the engine */
		return;
	}
	if (answer == 'N' && cfg->server_tls_mode == CFG_TLS_PREFER) {
		send_startup(s);
		return;
	}
	char why[128];
	if (answer == 'N')
		snprintf(why, sizeof(why), "server does not support TLS, but server_tls_mode is %s",
			 cfg_tls_mode_name(cfg->server_tls_mode));
	else
		snprintf(why, sizeof(why), "unexpected answer %d to the SSL request", answer);
	server_close(s, why);
}

static void send_startup(struct server *s)
{
	const struct cfg_shard *cfg = s->shard->cfg;
	uint8_t buf[CONN_TX_CAP];
	struct proto_writer wr = proto_writer_init(buf, sizeof(buf));
	proto_build_startup(&wr, server_user(s), cfg->database, 0, NULL, NULL);
	if (wr.overflow || conn_queue(&s->c, wr.p, wr.len) != 0) {
		server_close(s, "startup packet too large");
		return;
	}
	server_set_state(s, SERVER_LOGIN);
	conn_flush_tx(&s->c);
	if (conn_arm_recv(&s->c) != 0)
		server_close(s, "receive buffer full");
}

static int send_built(struct server *s, struct proto_writer *wr)
{
	if (wr->overflow || conn_queue(&s->c, wr->p, wr->len) != 0)
		return -1;
	conn_flush_tx(&s->c);
	return 0;
}

/* A role's server asks for a password: answer with what its client proved.
 * 1 when the request is not one this handles (the shard's own password
 * path does). */
static int login_auth_proof(struct server *s, int32_t code, struct proto_reader *r,
			    struct proto_writer *wr, char *why, size_t whylen)
{
	const struct auth_proof *pf = s->proof;
	char text[AUTH_SCRAM_MAX_MSG];
	switch (code) {
	case PROTO_AUTH_CLEARTEXT:
		if (!pf->cleartext) {
			snprintf(why, whylen,
				 "server asks for a cleartext password, but the client "
				 "proved only a hash of it");
			return -1;
		}
		proto_build_password(wr, pf->cleartext);
		return send_built(s, wr);
	case PROTO_AUTH_MD5: {
		const uint8_t *salt = proto_get_bytes(r, 4);
		char md5[36];
		if (!salt || !pf->has_md5 || auth_md5_response_from_hash(pf->md5, salt, md5) != 0) {
			snprintf(why, whylen,
				 "server asks for an md5 password, but the client's "
				 "login gave no md5 hash of it");
			return -1;
		}
		proto_build_password(wr, md5);
		return send_built(s, wr);
	}
	case PROTO_AUTH_SASL:
		if (pf->cleartext)
			return 1; /* the password path does SCRAM with it */
		if (!pf->has_scram) {
			snprintf(why, whylen,
				 "server asks for SCRAM, but the client's login gave no "
				 "SCRAM keys");
			return -1;
		}
		for (const char *mech; (mech = proto_get_cstr(r)) && mech[0];)
			if (strcmp(mech, "SCRAM-SHA-256") == 0)
				goto scram;
		snprintf(why, whylen, "server offers no SASL mechanism PgCrab supports");
		return -1;
	scram:
		free(s->scram_keys);
		s->scram_keys = malloc(sizeof(*s->scram_keys));
		int n;
		if (!s->scram_keys
		    || auth_scram_client_init_keys(s->scram_keys, pf->client_key, pf->server_key,
						   pf->salt, pf->salt_len, pf->iterations, NULL)
			    != 0
		    || (n = auth_scram_keys_first(s->scram_keys, text, sizeof(text))) < 0) {
			snprintf(why, whylen, "cannot start SCRAM with the client's keys");
			return -1;
		}
		proto_build_sasl_initial(wr, "SCRAM-SHA-256", text, (size_t)n);
		return send_built(s, wr);
	case PROTO_AUTH_SASL_CONTINUE:
		if (!s->scram_keys)
			return 1;
		n = auth_scram_keys_final(s->scram_keys, (const char *)r->p, r->left, text,
					  sizeof(text), why, whylen);
		if (n < 0)
			return -1;
		proto_build_sasl_response(wr, text, (size_t)n);
		return send_built(s, wr);
	case PROTO_AUTH_SASL_FINAL:
		if (!s->scram_keys)
			return 1;
		if (auth_scram_keys_verify(s->scram_keys, (const char *)r->p, r->left) != 0) {
			snprintf(why, whylen, "SCRAM server signature did not verify");
			return -1;
		}
		return 0;
	}
	return 1;
}

/* One AuthenticationXXX request from the server during login. */
static int login_auth(struct server *s, const uint8_t *body, uint32_t len, char *why, size_t whylen)
{
	const struct cfg_shard *cfg = s->shard->cfg;
	struct proto_reader r = proto_reader_init(body, len);
	int32_t code = proto_get_i32(&r);
	uint8_t buf[CONN_TX_CAP];
	struct proto_writer wr = proto_writer_init(buf, sizeof(buf));
	char text[AUTH_SCRAM_MAX_MSG];
	int n;

	if (s->role && code != PROTO_AUTH_OK) {
		if (!s->proof) {
			snprintf(why, whylen,
				 "server asks for a password, and no client of role "
				 "\"%s\" has proved one here",
				 s->role->name);
			return -1;
		}
		int rc = login_auth_proof(s, code, &r, &wr, why, whylen);
		if (rc <= 0)
			return rc;
	}
	/* the shard's user, or a role whose client's cleartext is known */
	const char *user = server_user(s);
	const char *password = s->role ? s->proof->cleartext : cfg->password;
	switch (code) {
	case PROTO_AUTH_OK:
		return 0;
	case PROTO_AUTH_CLEARTEXT:
		proto_build_password(&wr, password);
		return send_built(s, &wr);
	case PROTO_AUTH_MD5: {
		const uint8_t *salt = proto_get_bytes(&r, 4);
		if (!salt)
			break;
		char md5[36];
		auth_md5_response(user, password, salt, md5);
		proto_build_password(&wr, md5);
		return send_built(s, &wr);
	}
	case PROTO_AUTH_SASL: {
		bool scram = false;
		for (const char *mech; (mech = proto_get_cstr(&r)) && mech[0];)
			if (strcmp(mech, "SCRAM-SHA-256") == 0)
				scram = true;
		if (r.err || !scram) {
			snprintf(why, whylen, "server offers no SASL mechanism PgCrab supports");
			return -1;
		}
		free(s->scram);
		s->scram = malloc(sizeof(*s->scram));
		if (!s->scram || auth_scram_client_init(s->scram, password, NULL) != 0)
			break;
		s->scram->cache = &s->pool->salted;
		n = auth_scram_client_first(s->scram, text, sizeof(text));
		if (n < 0)
			break;
		proto_build_sasl_initial(&wr, "SCRAM-SHA-256", text, (size_t)n);
		return send_built(s, &wr);
	}
	case PROTO_AUTH_SASL_CONTINUE:
		if (!s->scram)
			break;
		n = auth_scram_client_final(s->scram, (const char *)r.p, r.left, text,
					    sizeof(text));
		if (n < 0) {
			snprintf(why, whylen, "malformed SCRAM server-first-message");
			return -1;
		}
		proto_build_sasl_response(&wr, text, (size_t)n);
		return send_built(s, &wr);
	case PROTO_AUTH_SASL_FINAL:
		if (!s->scram
		    || auth_scram_client_verify(s->scram, (const char *)r.p, r.left) != 0) {
			snprintf(why, whylen, "SCRAM server signature did not verify");
			return -1;
		}
		return 0;
	default:
		snprintf(why, whylen, "unsupported authentication method %d", code);
		return -1;
	}
	snprintf(why, whylen, "malformed authentication request %d", code);
	return -1;
}

static int keep_parameter(struct server *s, const uint8_t *msg, uint32_t total)
{
	uint8_t *p = realloc(s->params, s->params_len + total);
	if (!p)
		return -1;
	memcpy(p + s->params_len, msg, total);
	s->params = p;
	s->params_len += total;
	return 0;
}

/* Login: answer authentication requests, keep ParameterStatus and
 * BackendKeyData, and stop at the first ReadyForQuery. */
static void login_step(struct server *s)
{
	struct conn *c = &s->c;
	char why[256] = "";
	for (;;) {
		uint8_t type;
		uint32_t total;
		uint32_t avail = c->rx_end - c->rx_start;
		enum proto_result r = proto_frame(c->rx + c->rx_start, avail, CONN_WHOLE_MAX, &type,
						  &total);
		if (r == PROTO_ERR) {
			server_close(s, "invalid message length during login");
			return;
		}
		if (r == PROTO_AGAIN || avail < total) {
			if (conn_arm_recv(c) != 0)
				server_close(s, "login message too large");
			return;
		}
		const uint8_t *msg = c->rx + c->rx_start;
		const uint8_t *body = msg + PROTO_HEADER_LEN;
		uint32_t blen = total - PROTO_HEADER_LEN;
		c->rx_start += total;
		c->scan_pos = c->rx_start;
		switch (type) {
		case 'R':
			if (login_auth(s, body, blen, why, sizeof(why)) != 0) {
				server_close(s, why[0] ? why : "authentication failed");
				return;
			}
			break;
		case 'S':
			if (keep_parameter(s, msg, total) != 0) {
				server_close(s, "out of memory");
				return;
			}
			break;
		case 'K': {
			struct proto_reader rd = proto_reader_init(body, blen);
			s->be_pid = proto_get_i32(&rd);
			s->be_key = proto_get_i32(&rd);
			break;
		}
		case 'Z':
			forget_secrets(s);
			pool_server_ready(s);
			return;
		case 'E': {
			struct proto_error_fields f;
			if (proto_parse_error(body, blen, &f) == PROTO_OK)
				snprintf(why, sizeof(why), "server says %s %s: %s", f.severity,
					 f.code, f.message);
			/* the server refused us (credentials, database): waiting clients
			 * learn why now rather than at query_wait_timeout */
			close_with(s, why[0] ? why : "malformed error during login",
				   "08004"); /* sqlserver_rejected_establishment_of_sqlconnection */
			return;
		}
		case 'N':
		case 'v':
			break;
		default:
			snprintf(why, sizeof(why), "unexpected message type %d during login", type);
			server_close(s, why);
			return;
		}
	}
}

static void pool_on_sent(struct conn *c, enum send_src src, struct conn *owner, int err)
{
	struct server *s = container_of_server(c);
	if (c->closing)
		return;
	if (err) {
		server_close(s, "send to server failed");
		return;
	}
	if (c->tx_len > 0)
		conn_flush_tx(c);
}

static void pool_on_recv(struct conn *c, int res)
{
	struct server *s = container_of_server(c);
	c->recv_armed = false;
	if (c->closing)
		return;
	if (s->state == SERVER_DONATING) {
		if (res == -ECANCELED) {
			list_add_tail(&s->pool->pw->outbox, &s->link);
			return;
		}
		res = res > 0 ? -EPROTO : res; /* data on an idle server: drop it */
	}
	if (res <= 0) {
		const char *e = tls_error(c); /* the TLS handshake's reason, if that failed */
		server_close(s, e ? e : res == 0 ? "server closed the connection" : strerror(-res));
		return;
	}
	c->rx_end += (uint32_t)res;
	if (s->state == SERVER_TLS_ASK)
		tls_answer(s);
	else if (s->state == SERVER_LOGIN)
		login_step(s);
	else if (s->state == SERVER_IDLE)
		server_close(s, "unexpected data from an idle server");
}

static void pool_on_connect(struct conn *c, int res)
{
	server_on_connect(container_of_server(c), res);
}

static void pool_on_free(struct conn *c)
{
	server_free(container_of_server(c));
}

const struct conn_ops server_pool_ops = {
	.on_recv = pool_on_recv,
	.on_sent = pool_on_sent,
	.on_connect = pool_on_connect,
	.on_free = pool_on_free,
};

void server_donate(struct server *s, int to_worker)
{
	struct worker *w = s->c.w;
	/* leave this worker's pool now; the cap reservation travels with it */
	server_set_state(s, SERVER_DONATING);
	s->donate_to = to_worker;
	if (s->c.recv_armed) {
		struct io_uring_sqe *sqe = worker_sqe(w);
		io_uring_prep_cancel64(sqe, conn_user_data(&s->c, UD_RECV), 0);
		io_uring_sqe_set_data64(sqe, ud_encode(UD_NONE, 0, 0));
		s->c.recv_cancelling = true;
		return; /* posted when the recv completes with -ECANCELED */
	}
	/* posted after this batch of completions, when nothing here can touch it */
	list_add_tail(&s->pool->pw->outbox, &s->link);
}

void server_on_donate_sent(struct server *s, int res)
{
	if (res >= 0)
		return; /* it belongs to the other worker now: do not touch it */
	log_warn("cannot hand a server to worker %d: %s", s->donate_to, strerror(-res));
	pool_adopt(s->pool->pw, s);
}

void server_tick(struct server *s)
{
	struct worker *w = s->c.w;
	const struct cfg *cfg = w->cfg;
	uint64_t age = w->now_ms - s->born_ms;
	if (logging_in(s->state)) {
		if (cfg->server_connect_timeout_ms && age >= cfg->server_connect_timeout_ms) {
			char why[96];
			snprintf(why, sizeof(why),
				 "server_connect_timeout: no login within %llu ms",
				 (unsigned long long)cfg->server_connect_timeout_ms);
			server_close(s, why);
		}
	} else if (s->state == SERVER_IDLE) {
		uint64_t idle = w->now_ms - s->c.since_ms;
		if (cfg->server_lifetime_ms && age >= cfg->server_lifetime_ms)
			server_close(s, "server_lifetime");
		else if (cfg->server_idle_timeout_ms && idle >= cfg->server_idle_timeout_ms
			 && s->pool->n_servers > s->pool->min_local)
			server_close(s, "server_idle_timeout");
	}
}

/* A one-shot connection carrying a CancelRequest. With done set, it holds
 * its server until PostgreSQL has closed it: PostgreSQL signals the backend
 * before it closes, so from then on the cancel cannot hit a later query. */
struct cancel_conn {
	struct conn c; /* first: a cancel_conn is a conn */
	struct server *target;
	void (*done)(struct server *s);
};

static void cancel_on_connect(struct conn *c, int res)
{
	if (res < 0) {
		log_warn("cancel connection failed: %s", strerror(-res));
		conn_close(c);
		return;
	}
	conn_flush_tx(c);
}

static void cancel_on_sent(struct conn *c, enum send_src src, struct conn *owner, int err)
{
	struct cancel_conn *cc = (struct cancel_conn *)c;
	/* PostgreSQL closes after acting on a CancelRequest: wait for that
	 * when someone must know, else close now */
	if (err || !cc->done || conn_arm_recv(c) != 0)
		conn_close(c);
}

static void cancel_on_recv(struct conn *c, int res)
{
	c->recv_armed = false;
	conn_close(c); /* the server's close (or anything else) ends it */
}

static void cancel_on_free(struct conn *c)
{
	struct cancel_conn *cc = (struct cancel_conn *)c;
	struct server *s = cc->target;
	if (s) {
		cc->done(s);
		conn_put(&s->c);
	}
	free(cc);
}

static const struct conn_ops cancel_ops = {
	.on_recv = cancel_on_recv,
	.on_sent = cancel_on_sent,
	.on_connect = cancel_on_connect,
	.on_free = cancel_on_free,
};

int server_cancel_query(struct server *s, void (*done)(struct server *s))
{
	struct shard *sh = s->shard;
	struct worker *w = s->c.w;
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
		return -1;
	}
	conn_init(&cc->c, &cancel_ops, w, fd);
	if (done) {
		cc->target = s;
		cc->done = done;
		s->c.refs++; /* s stays readable until done has run */
	}
	struct io_uring_sqe *sqe = worker_sqe(w);
	io_uring_prep_connect(sqe, fd, (struct sockaddr *)&sh->addr, sh->addrlen);
	io_uring_sqe_set_data64(sqe, conn_user_data(&cc->c, UD_CONNECT));
	cc->c.connect_armed = true;
	cc->c.refs++;
	return 0;
}
