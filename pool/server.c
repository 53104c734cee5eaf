/* Server connections: connect and log in through the worker's ring, then
 * forward the server's replies to the linked client, watching only
 * ReadyForQuery and fatal errors. */
#include "pool/server.h"

#include <errno.h>
#include <netinet/tcp.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

#include "auth/auth.h"
#include "core/cancel.h"
#include "core/client.h"
#include "core/conn.h"
#include "core/list.h"
#include "core/log.h"
#include "core/worker.h"
#include "pool/pool.h"
#include "proto/proto.h"

static const char *const state_names[] = {
	[SERVER_CONNECTING] = "connecting", [SERVER_LOGIN] = "login",
	[SERVER_IDLE] = "idle", [SERVER_ACTIVE] = "active",
	[SERVER_RESET] = "reset", [SERVER_DONATING] = "donating",
	[SERVER_CLOSING] = "closing",
};

const char *server_state_name(enum server_state s)
{
	return state_names[s];
}

static bool logging_in(enum server_state st)
{
	return st == SERVER_CONNECTING || st == SERVER_LOGIN;
}

/* The one place a server's state changes; it keeps the pool's lists and
 * counts in step with the state. */
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
	if (st == SERVER_CLOSING)
		shard_unreserve(s->shard); /* a donated server carries its reservation */
	log_debug("worker %d server %llu (%s): %s -> %s", s->c.w->id, (unsigned long long)s->c.id,
		  s->shard->cfg->name, state_names[old], state_names[st]);
	s->state = st;
	s->c.since_ms = s->c.w->now_ms;
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
		/* out of fds (EMFILE): back off rather than retry on every call */
		pool_connect_failed(p, NULL, why);
		return;
	}
	int one = 1;
	if (sh->addr.ss_family != AF_UNIX)
		setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof(one));
	conn_init(&s->c, CONN_SERVER, p->w, fd);
	s->pool = p;
	s->shard = sh;
	s->born_ms = p->w->now_ms;
	s->tx_status = 'I';
	s->state = SERVER_CONNECTING;
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

void server_free(struct server *s)
{
	if (s->scram) {
		memset(s->scram, 0, sizeof(*s->scram));
		free(s->scram);
	}
	free(s->params);
	params_clear(&s->have);
	stmt_set_clear(&s->stmts);
	replies_clear(&s->replies);
	free(s);
}

static void close_with(struct server *s, const char *why, const char *sqlstate);
static void cleanup_step(struct server *s);

static void server_fail(struct server *s, const char *why)
{
	if (s->client) {
		struct client *cl = s->client;
		s->client = NULL;
		/* msg_left: a message's header was scanned (and goes or went to
		 * the client), its body is incomplete */
		if (s->c.msg_left > 0 && !s->c.dropping)
			client_server_cut(cl, why);
		else
			client_server_lost(cl, why);
	}
	server_close(s, why);
}

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

void server_on_connect(struct server *s, int res)
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
	const struct cfg_shard *cfg = s->shard->cfg;
	uint8_t buf[CONN_TX_CAP];
	struct proto_writer wr = proto_writer_init(buf, sizeof(buf));
	proto_build_startup(&wr, cfg->user, cfg->database, 0, NULL, NULL);
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

	switch (code) {
	case PROTO_AUTH_OK:
		return 0;
	case PROTO_AUTH_CLEARTEXT:
		proto_build_password(&wr, cfg->password);
		return send_built(s, &wr);
	case PROTO_AUTH_MD5: {
		const uint8_t *salt = proto_get_bytes(&r, 4);
		if (!salt)
			break;
		char md5[36];
		auth_md5_response(cfg->user, cfg->password, salt, md5);
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
		if (!s->scram || auth_scram_client_init(s->scram, cfg->password, NULL) != 0)
			break;
		n = auth_scram_client_first(s->scram, text, sizeof(text));
		if (n < 0)
			break;
		proto_build_sasl_initial(&wr, "SCRAM-SHA-256", text, (size_t)n);
		return send_built(s, &wr);
	}
	case PROTO_AUTH_SASL_CONTINUE:
		if (!s->scram)
			break;
		n = auth_scram_client_final(s->scram, (const char *)r.p, r.left, text, sizeof(text));
		if (n < 0) {
			snprintf(why, whylen, "malformed SCRAM server-first-message");
			return -1;
		}
		proto_build_sasl_response(&wr, text, (size_t)n);
		return send_built(s, &wr);
	case PROTO_AUTH_SASL_FINAL:
		if (!s->scram || auth_scram_client_verify(s->scram, (const char *)r.p, r.left) != 0) {
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
		enum proto_result r = proto_frame(c->rx + c->rx_start, avail, CONN_WHOLE_MAX, &type, &total);
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
			if (s->scram) {
				memset(s->scram, 0, sizeof(*s->scram));
				free(s->scram);
				s->scram = NULL;
			}
			pool_server_ready(s);
			return;
		case 'E': {
			struct proto_error_fields f;
			if (proto_parse_error(body, blen, &f) == PROTO_OK)
				snprintf(why, sizeof(why), "server says %s %s: %s", f.severity, f.code,
					 f.message);
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

bool server_is_clean(const struct server *s)
{
	return s->expect_ready == 0 && s->hidden_ready == 0 && s->replies.count == 0 && !s->unsynced && s->tx_status == 'I'
	       && !conn_send_busy(&s->c) && s->c.rx_start == s->c.rx_end && s->c.msg_left == 0;
}

/* A ParameterStatus report: the server now has this value, and so does the
 * client it serves (its SET, or our hidden one on its behalf). */
static void note_parameter(struct server *s, const uint8_t *body, uint32_t len)
{
	struct proto_reader r = proto_reader_init(body, len);
	const char *name = proto_get_cstr(&r);
	const char *value = proto_get_cstr(&r);
	int id = name && value ? params_index(name) : -1;
	if (id < 0)
		return;
	if (params_set(&s->have, id, value) != 0
	    || (s->client && params_set(&s->client->want, id, value) != 0))
		log_warn("out of memory tracking parameter %s", name);
}

int server_sync_params(struct server *s)
{
	char sql[2048];
	uint8_t buf[CONN_TX_CAP];
	int n = params_sync_sql(&s->client->want, &s->have, sql, sizeof(sql));
	if (n <= 0)
		return n;
	struct proto_writer wr = proto_writer_init(buf, sizeof(buf));
	proto_build_query(&wr, sql);
	if (send_built(s, &wr) != 0)
		return -1;
	s->hidden_ready++;
	return conn_arm_recv(&s->c);
}

/* A request PostgreSQL did not complete (it failed, or was skipped after a
 * failure): a Parse it never prepared is forgotten by server and client. */
static void forget_reply(struct server *s, struct reply *r, bool failed)
{
	if (failed && r->kind == RK_PARSE) {
		if (r->st && !(r->flags & RF_SYNTH))
			stmt_set_remove(&s->stmts, r->st);
		if (r->name && s->client)
			stmt_names_remove(&s->client->stmts, r->name);
	}
	stmt_unref(r->st);
	free(r->name);
}

/* After an ErrorResponse PostgreSQL skips every message up to the next
 * Sync: those requests end here, unanswered. */
static void unwind_to_ready(struct server *s)
{
	struct reply *h, r;
	while ((h = replies_head(&s->replies)) && h->kind != RK_READY) {
		replies_pop(&s->replies, &r);
		forget_reply(s, &r, true);
	}
}

enum { SCAN_DONE = 0, SCAN_FATAL = 1, SCAN_SYNTH = 2, SCAN_BAD = -1 };

/* Scans the server's replies, matching each to the request it answers.
 * Stops before a fatal ErrorResponse (the server is about to close: the
 * client gets our 08006 instead), before a message that must be seen whole
 * and is not, before a reply to PgCrab's own message that must be dropped
 * once what precedes it is forwarded, and where PgCrab owes the client a
 * reply of its own. */
static int scan_replies(struct server *s, char *fatal, size_t fatal_len)
{
	struct conn *c = &s->c;
	uint32_t pos = c->scan_pos;
	int rc = SCAN_DONE;
	for (;;) {
		if (c->msg_left) {
			if (pos >= c->rx_end)
				break;
			pos = conn_skip_body(c, pos);
			continue;
		}
		struct reply *h = replies_head(&s->replies);
		if (h && (h->flags & RF_SYNTH) && s->hidden_ready == 0) {
			rc = SCAN_SYNTH;
			break;
		}
		if (pos >= c->rx_end)
			break;
		uint8_t type;
		uint32_t total;
		enum proto_result r = proto_frame(c->rx + pos, c->rx_end - pos, PROTO_MAX_MESSAGE, &type,
						  &total);
		if (r == PROTO_AGAIN)
			break;
		if (r == PROTO_ERR || !proto_backend_type(type)) {
			rc = SCAN_BAD; /* nothing of it reaches the client */
			break;
		}
		bool whole = c->rx_end - pos >= total;
		if (s->hidden_ready > 0) {
			/* replies to our hidden SETs come first: read whole, never forwarded */
			if (total > CONN_WHOLE_MAX || c->rx_start != pos) {
				rc = SCAN_BAD;
				break;
			}
			if (!whole)
				break;
			if (type == 'Z')
				s->hidden_ready--;
			else if (type == 'S')
				note_parameter(s, c->rx + pos + PROTO_HEADER_LEN, total - PROTO_HEADER_LEN);
			pos += total;
			c->rx_start = pos;
			continue;
		}
		bool drop = false;
		const uint8_t *body = c->rx + pos + PROTO_HEADER_LEN;
		if (type == 'G' || type == 'W')
			s->copy_in = true; /* until CopyDone/CopyFail, an error or ReadyForQuery */
		switch (type) {
		case 'Z': {
			if (!whole)
				goto out;
			/* exactly one status byte, one PgCrab knows: a shorter
			 * message made us read the next message's first byte (or
			 * past the buffer) as the status (found by fuzz_server) */
			if (total != PROTO_HEADER_LEN + 1
			    || (body[0] != 'I' && body[0] != 'T' && body[0] != 'E')) {
				rc = SCAN_BAD;
				goto out;
			}
			struct reply done;
			unwind_to_ready(s);
			if (replies_head(&s->replies)) {
				replies_pop(&s->replies, &done);
				forget_reply(s, &done, false);
			}
			if (s->expect_ready > 0)
				s->expect_ready--;
			s->tx_status = (char)body[0];
			s->copy_in = false;
			break;
		}
		case 'E':
			if (total <= CONN_WHOLE_MAX) {
				if (!whole)
					goto out;
				struct proto_error_fields f;
				if (proto_parse_error(body, total - PROTO_HEADER_LEN, &f) == PROTO_OK
				    && (strcmp(f.severity, "FATAL") == 0 || strcmp(f.severity, "PANIC") == 0)) {
					snprintf(fatal, fatal_len, "%s (%s)", f.message, f.code);
					rc = SCAN_FATAL;
					goto out;
				}
			}
			if (h && h->kind != RK_READY)
				unwind_to_ready(s);
			s->copy_in = false;
			break;
		case 'S':
			if (total <= CONN_WHOLE_MAX) {
				if (!whole)
					goto out;
				note_parameter(s, body, total - PROTO_HEADER_LEN);
			}
			break;
		case 'N':
		case 'A':
			break;
		default:
			if (!h)
				break;
			if (h->flags & RF_HIDE) {
				if (pos != c->rx_start)
					goto out; /* forward what precedes it first */
				drop = true;
			}
			if (replies_is_last(h->kind, type)) {
				struct reply done;
				replies_pop(&s->replies, &done);
				forget_reply(s, &done, false);
			}
		}
		pos += PROTO_HEADER_LEN;
		c->msg_left = total - PROTO_HEADER_LEN;
		if (drop) {
			c->dropping = c->msg_left > 0;
			c->rx_start = pos;
		}
	}
out:
	c->scan_pos = pos;
	return rc;
}

/* Sends the client the replies PgCrab gives in place of the server. */
static int answer_for_server(struct server *s, struct client *cl)
{
	struct reply *h, r;
	while ((h = replies_head(&s->replies)) && (h->flags & RF_SYNTH)) {
		uint8_t msg[5] = { h->kind == RK_PARSE ? '1' : '3', 0, 0, 0, 4 };
		if (conn_queue(&cl->c, msg, sizeof(msg)) != 0)
			return -1;
		replies_pop(&s->replies, &r);
		forget_reply(s, &r, false);
	}
	conn_flush_tx(&cl->c);
	return 0;
}

void server_pump(struct server *s)
{
	struct conn *c = &s->c;
	struct client *cl = s->client;
	char fatal[300];
	if (s->state != SERVER_ACTIVE || !cl || conn_send_busy(&cl->c) || c->closing)
		return;
	int rc = scan_replies(s, fatal, sizeof(fatal));
	if (c->scan_pos > c->rx_start) {
		conn_forward(&cl->c, c, c->scan_pos);
		return; /* the rest when the client's send completes */
	}
	switch (rc) {
	case SCAN_SYNTH:
		if (answer_for_server(s, cl) != 0)
			server_fail(s, "out of memory");
		return; /* scanning goes on when that send completes */
	case SCAN_FATAL:
		server_fail(s, fatal);
		return;
	case SCAN_BAD:
		server_fail(s, "invalid message from server");
		return;
	}
	if (conn_arm_recv(c) != 0)
		server_fail(s, "receive buffer full");
}

bool server_owes_replies(const struct server *s)
{
	return s->expect_ready > 0 || s->hidden_ready > 0 || s->replies.count > 0
	       || conn_send_busy(&s->c) || s->c.rx_start != s->c.rx_end || s->c.msg_left > 0;
}

/* SERVER_RESET steps taken, in s->cleanup */
#define CLEANUP_WANT_CANCEL 1u /* cancel what runs once PgCrab's own SETs are answered */
#define CLEANUP_ROLLBACK    2u
#define CLEANUP_DISCARD     4u

#define CLEANUP_RETRY_MS     1000 /* a cancel that has not worked by then is sent again */
#define CLEANUP_CANCEL_TRIES 3

/* Reads and drops whatever the server sent: nobody is listening now. */
static int drain_replies(struct server *s, char *fatal, size_t fatal_len)
{
	struct conn *c = &s->c;
	for (;;) {
		uint32_t before = c->scan_pos;
		int rc = scan_replies(s, fatal, fatal_len);
		if (c->rx_start < c->scan_pos)
			c->rx_start = c->scan_pos;
		if (rc == SCAN_SYNTH) {
			/* replies PgCrab would have made up for the client */
			struct reply *h, r;
			while ((h = replies_head(&s->replies)) && (h->flags & RF_SYNTH)) {
				replies_pop(&s->replies, &r);
				forget_reply(s, &r, false);
			}
			continue;
		}
		if (rc != SCAN_DONE || c->scan_pos == before)
			return rc;
	}
}

static void hidden_query(struct server *s, const char *sql)
{
	uint8_t buf[256];
	struct proto_writer wr = proto_writer_init(buf, sizeof(buf));
	proto_build_query(&wr, sql);
	s->c.since_ms = s->c.w->now_ms; /* it has CLEANUP_RETRY_MS * 2 to answer */
	s->expect_ready++;
	if (replies_push(&s->replies, RK_READY, RF_HIDE, NULL, NULL) != 0) {
		server_close(s, "out of memory");
		return;
	}
	if (send_built(s, &wr) != 0 || conn_arm_recv(&s->c) != 0)
		server_close(s, "cannot send a reset query");
}

/* Not while PgCrab's own SETs run (a cancelled one would leave the
 * parameters PgCrab thinks the server has wrong), nor before the client's
 * last bytes are sent (it would land before the query it is meant for). */
static bool cleanup_may_cancel(const struct server *s)
{
	return s->hidden_ready == 0 && !conn_send_busy(&s->c) && !s->cancel_pending;
}

static void cleanup_cancel_done(struct server *s);

static void cleanup_cancel(struct server *s)
{
	s->cancel_pending = true;
	s->cancels_sent++;
	s->c.since_ms = s->c.w->now_ms; /* the next try or the grace counts from here */
	cancel_server(s->c.w, s, cleanup_cancel_done);
}

static void cleanup_cancel_done(struct server *s)
{
	s->cancel_pending = false;
	if (s->state == SERVER_RESET && !s->c.closing)
		cleanup_step(s);
}

/* One step of giving a server back after its client left: drop replies
 * until nothing is owed (cancelling what still runs), wait until the
 * cancel has surely landed, roll back an open transaction, reset a
 * session-mode server, then release. Called again on every completion. */
static void cleanup_step(struct server *s)
{
	struct conn *c = &s->c;
	char fatal[300];
	if (c->closing)
		return;
	int rc = drain_replies(s, fatal, sizeof(fatal));
	if (rc == SCAN_FATAL || rc == SCAN_BAD) {
		server_close(s, rc == SCAN_FATAL ? fatal : "invalid message from server");
		return;
	}
	bool owed = s->expect_ready > 0 || s->hidden_ready > 0 || s->replies.count > 0
		    || c->msg_left > 0;
	if (!owed)
		s->cleanup &= ~CLEANUP_WANT_CANCEL;
	if ((s->cleanup & CLEANUP_WANT_CANCEL) && cleanup_may_cancel(s)) {
		s->cleanup &= ~CLEANUP_WANT_CANCEL;
		cleanup_cancel(s);
		if (c->closing || s->state != SERVER_RESET)
			return;
	}
	if (owed) {
		if (conn_arm_recv(c) != 0)
			server_close(s, "receive buffer full");
		return;
	}
	if (conn_send_busy(c) || s->cancel_pending)
		return; /* stepped again when the send completes or the cancel has landed */
	if (s->tx_status != 'I') {
		if (s->cleanup & CLEANUP_ROLLBACK) {
			server_close(s, "ROLLBACK left a transaction open");
			return;
		}
		s->cleanup |= CLEANUP_ROLLBACK;
		hidden_query(s, "ROLLBACK");
		return;
	}
	const char *reset = c->w->rt->cfg->server_reset_query;
	if (c->w->rt->cfg->pool_mode == CFG_POOL_SESSION && !(s->cleanup & CLEANUP_DISCARD)
	    && reset && reset[0]) {
		params_clear(&s->have); /* DISCARD ALL resets them all */
		stmt_set_clear(&s->stmts);
		s->cleanup |= CLEANUP_DISCARD;
		hidden_query(s, reset);
		return;
	}
	s->cleanup = 0;
	pool_release(s);
}

/* A cancel can come too early (the backend had not read the query yet, so
 * it ignored it) or be lost: try again each second while replies are owed,
 * then give up on the connection. A ROLLBACK or DISCARD that hangs as long
 * goes the same way. */
static void server_cleanup_tick(struct server *s)
{
	uint64_t waited = s->c.w->now_ms - s->c.since_ms;
	if (s->cancel_pending || waited < CLEANUP_RETRY_MS)
		return;
	bool owed = s->expect_ready > 0 || s->hidden_ready > 0 || s->replies.count > 0;
	bool cancelling = s->cancels_sent > 0 || (s->cleanup & CLEANUP_WANT_CANCEL);
	if (!cancelling && !(s->cleanup & (CLEANUP_ROLLBACK | CLEANUP_DISCARD)))
		return; /* cancel_on_client_exit = off: the query runs its course */
	if (owed && cancelling && s->cancels_sent < CLEANUP_CANCEL_TRIES && cleanup_may_cancel(s)) {
		s->cleanup &= ~CLEANUP_WANT_CANCEL;
		cleanup_cancel(s);
		return;
	}
	if (waited >= CLEANUP_RETRY_MS * 2)
		server_close(s, "still busy after its client left and cancels were sent");
}

void server_client_gone(struct server *s, bool cut)
{
	if (s->state != SERVER_ACTIVE)
		return;
	const struct cfg *cfg = s->c.w->rt->cfg;
	bool owed = server_owes_replies(s);
	if (cut || s->unsynced_exec) {
		/* Its input ends inside a message, or holds an Execute whose
		 * implicit transaction only a Sync would end, and a Sync commits.
		 * Closing makes PostgreSQL abort, as for the client itself; the
		 * cancel stops a running query now rather than when it ends. */
		if (owed && cfg->cancel_on_client_exit && !s->copy_in)
			cancel_server(s->c.w, s, NULL);
		server_close(s, cut ? "client left mid-message" : "client left an Execute without Sync");
		return;
	}
	server_set_state(s, SERVER_RESET);
	s->cleanup = 0;
	s->cancels_sent = 0;
	uint8_t buf[64];
	struct proto_writer wr = proto_writer_init(buf, sizeof(buf));
	if (s->copy_in) {
		/* ignored by PostgreSQL if the COPY ended meanwhile */
		proto_put_u8(&wr, 'f');
		proto_put_i32(&wr, 4 + (int32_t)sizeof("client left"));
		proto_put_bytes(&wr, "client left", sizeof("client left"));
	}
	if (s->unsynced) {
		/* only Parse/Bind/Describe since the last Sync: ending them commits nothing */
		proto_put_u8(&wr, 'S');
		proto_put_i32(&wr, 4);
		s->expect_ready++;
		s->unsynced = false;
		if (replies_push(&s->replies, RK_READY, RF_HIDE, NULL, NULL) != 0) {
			server_close(s, "out of memory");
			return;
		}
	}
	if (wr.len > 0 && send_built(s, &wr) != 0) {
		server_close(s, "cannot end the client's request");
		return;
	}
	if (owed && cfg->cancel_on_client_exit && !s->copy_in)
		s->cleanup |= CLEANUP_WANT_CANCEL;
	cleanup_step(s);
}

void server_on_sent(struct server *s, enum send_src src, struct conn *owner, int err)
{
	if (s->c.closing)
		return;
	if (err) {
		server_fail(s, "send to server failed");
		return;
	}
	if (s->c.tx_len > 0) {
		conn_flush_tx(&s->c);
		return;
	}
	/* the client may have more to send, or may be done with us */
	if (s->client)
		client_on_sent_upstream(s->client);
	else if (s->state == SERVER_RESET)
		cleanup_step(s);
}

void server_on_recv(struct server *s, int res)
{
	struct conn *c = &s->c;
	c->recv_armed = false;
	if (c->closing)
		return;
	if (s->state == SERVER_DONATING) {
		if (res == -ECANCELED) {
			list_add_tail(&c->w->outbox, &s->link);
			return;
		}
		res = res > 0 ? -EPROTO : res; /* data on an idle server: drop it */
	}
	if (res <= 0) {
		server_fail(s, res == 0 ? "server closed the connection" : strerror(-res));
		return;
	}
	c->rx_end += (uint32_t)res;
	switch (s->state) {
	case SERVER_LOGIN:
		login_step(s);
		break;
	case SERVER_ACTIVE:
		server_pump(s);
		break;
	case SERVER_RESET:
		cleanup_step(s);
		break;
	case SERVER_IDLE:
		server_close(s, "unexpected data from an idle server");
		break;
	case SERVER_CONNECTING:
	case SERVER_DONATING:
	case SERVER_CLOSING:
		break;
	}
}

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
	list_add_tail(&w->outbox, &s->link);
}

void server_on_donate_sent(struct server *s, int res)
{
	if (res >= 0)
		return; /* it belongs to the other worker now: do not touch it */
	log_warn("cannot hand a server to worker %d: %s", s->donate_to, strerror(-res));
	pool_adopt(s->c.w, s);
}

void server_tick(struct server *s)
{
	struct worker *w = s->c.w;
	const struct cfg *cfg = w->rt->cfg;
	uint64_t age = w->now_ms - s->born_ms;
	if (logging_in(s->state)) {
		if (cfg->server_connect_timeout_ms && age >= cfg->server_connect_timeout_ms) {
			char why[96];
			snprintf(why, sizeof(why), "server_connect_timeout: no login within %llu ms",
				 (unsigned long long)cfg->server_connect_timeout_ms);
			server_close(s, why);
		}
	} else if (s->state == SERVER_RESET) {
		server_cleanup_tick(s);
	} else if (s->state == SERVER_IDLE) {
		uint64_t idle = w->now_ms - s->c.since_ms;
		if (cfg->server_lifetime_ms && age >= cfg->server_lifetime_ms)
			server_close(s, "server_lifetime");
		else if (cfg->server_idle_timeout_ms && idle >= cfg->server_idle_timeout_ms
			 && s->pool->n_servers > s->pool->min_local)
			server_close(s, "server_idle_timeout");
	}
}
