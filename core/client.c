/* Client connections: startup, cleartext login, then forwarding requests to
 * the server the pool lends, watching only message headers. */
#include "core/client.h"

#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "auth/auth.h"
#include "core/cancel.h"
#include "core/conn.h"
#include "core/list.h"
#include "core/log.h"
#include "core/params.h"
#include "core/prepared.h"
#include "pool/pool.h"
#include "pool/server.h"
#include "proto/proto.h"

static const char *const state_names[] = {
	[CLIENT_STARTUP] = "startup", [CLIENT_AUTH] = "auth",
	[CLIENT_LOGIN_WAIT] = "login_wait", [CLIENT_IDLE] = "idle",
	[CLIENT_WAITING] = "waiting", [CLIENT_ACTIVE] = "active",
	[CLIENT_CLOSING] = "closing",
};

const char *client_state_name(enum client_state s)
{
	return state_names[s];
}

/* The one place a client's state changes; keeps the pool's waiting list in
 * step (LOGIN_WAIT and WAITING are exactly the states on it). */
static void client_set_state(struct client *cl, enum client_state st)
{
	bool was_waiting = cl->state == CLIENT_LOGIN_WAIT || cl->state == CLIENT_WAITING;
	bool now_waiting = st == CLIENT_LOGIN_WAIT || st == CLIENT_WAITING;
	if (was_waiting && !now_waiting) {
		pool_cancel_wait(cl->pool, cl);
		if (st != CLIENT_CLOSING)
			conn_cancel_poll(&cl->c); /* closing cancels it anyway */
	}
	log_debug("worker %d client %llu: %s -> %s", cl->c.w->id, (unsigned long long)cl->c.id,
		  state_names[cl->state], state_names[st]);
	cl->state = st;
	cl->c.since_ms = cl->c.w->now_ms;
	if (now_waiting && !was_waiting)
		pool_wait(cl->pool, cl);
}

/* Unlinks the client's server, which goes back to the pool clean or is
 * closed (server_client_gone); whatever it still runs for the client is
 * cancelled. Returns whether a server message was part way to the client. */
static bool client_detach(struct client *cl)
{
	struct server *s = cl->server;
	if (cl->state != CLIENT_ACTIVE || !s)
		return false;
	/* msg_left: a message's header was scanned (and goes or went on), its
	 * body is incomplete */
	bool mid_reply = s->c.msg_left > 0 && !s->c.dropping;
	bool cut = cl->c.msg_left > 0 && !cl->c.dropping;
	cl->server = NULL;
	s->client = NULL;
	server_client_gone(s, cut);
	return mid_reply;
}

static void client_close_now(struct client *cl)
{
	client_detach(cl);
	if (cl->state != CLIENT_CLOSING)
		client_set_state(cl, CLIENT_CLOSING);
	conn_close(&cl->c);
}

void client_fail(struct client *cl, const char *severity, const char *code, const char *fmt, ...)
{
	char msg[512];
	va_list ap;
	va_start(ap, fmt);
	vsnprintf(msg, sizeof(msg), fmt, ap);
	va_end(ap);
	if (cl->c.closing)
		return;
	log_debug("worker %d client %llu: %s %s %s", cl->c.w->id, (unsigned long long)cl->c.id,
		  severity, code, msg);

	bool mid_message = client_detach(cl);
	client_set_state(cl, CLIENT_CLOSING);
	if (mid_message) {
		/* an ErrorResponse now would be read as the rest of that message */
		conn_close(&cl->c);
		return;
	}
	uint8_t buf[CONN_TX_CAP];
	struct proto_writer wr = proto_writer_init(buf, sizeof(buf));
	proto_build_error(&wr, severity, code, msg);
	if (wr.overflow || conn_queue(&cl->c, wr.p, wr.len) != 0) {
		conn_close(&cl->c);
		return;
	}
	if (!conn_send_busy(&cl->c))
		conn_flush_tx(&cl->c);
	/* else: flushed when the send in flight completes */
}

void client_accept(struct worker *w, int fd)
{
	struct client *cl = calloc(1, sizeof(*cl));
	if (!cl) {
		close(fd);
		atomic_fetch_sub(&w->n_clients, 1);
		return;
	}
	conn_init(&cl->c, CONN_CLIENT, w, fd);
	cl->state = CLIENT_STARTUP;
	cl->born_ms = w->now_ms;
	list_init(&cl->wait);
	list_add_tail(&w->clients, &cl->link);
	if (conn_arm_recv(&cl->c) != 0)
		client_close_now(cl);
}

void client_free(struct client *cl)
{
	struct worker *w = cl->c.w;
	list_del(&cl->wait);
	list_del(&cl->link);
	params_clear(&cl->want);
	stmt_names_clear(&cl->stmts);
	free(cl->login);
	atomic_fetch_sub(&w->n_clients, 1);
	free(cl);
}

static void queue_or_close(struct client *cl, const struct proto_writer *wr)
{
	if (wr->overflow || conn_queue(&cl->c, wr->p, wr->len) != 0) {
		client_close_now(cl);
		return;
	}
	conn_flush_tx(&cl->c);
}

static void arm_or_fail(struct client *cl)
{
	if (conn_arm_recv(&cl->c) != 0)
		client_fail(cl, "FATAL", "08P01", "message too large for the connection buffer");
}

/* A client waiting for a server reads nothing; with cancel_on_client_exit
 * it is watched for closing, and one that leaves is dropped from the queue
 * with its request, which never ran, instead of holding its place and
 * running it for nobody once a server is free. */
static void watch_while_waiting(struct client *cl)
{
	if (cl->c.w->rt->cfg->cancel_on_client_exit)
		conn_arm_poll(&cl->c);
}

static const struct cfg_shard *find_shard(struct worker *w, const char *name, struct pool **pool)
{
	struct runtime *rt = w->rt;
	for (int i = 0; i < rt->n_shards; i++) {
		if (strcmp(rt->shards[i].cfg->name, name) == 0) {
			*pool = &w->pools[i];
			return rt->shards[i].cfg;
		}
	}
	return NULL;
}

static void handle_startup(struct client *cl);
static void handle_password(struct client *cl);
static void client_request(struct client *cl);
static void client_terminating(struct client *cl, struct server *s);

/* After a login step: bytes the client sent behind the message just handled
 * (in the same packet) are handled now, else we wait for more. */
static void client_next(struct client *cl)
{
	struct conn *c = &cl->c;
	if (c->closing)
		return;
	if (c->rx_start == c->rx_end) {
		arm_or_fail(cl);
		return;
	}
	switch (cl->state) {
	case CLIENT_STARTUP:
		handle_startup(cl);
		break;
	case CLIENT_AUTH:
		handle_password(cl);
		break;
	case CLIENT_IDLE:
		client_request(cl);
		break;
	default:
		break; /* LOGIN_WAIT keeps them until the login completes */
	}
}

/* Startup state: SSLRequest/GSSENCRequest get 'N'; a StartupMessage asks
 * for a cleartext password. */
static void handle_startup(struct client *cl)
{
	struct conn *c = &cl->c;
	struct proto_startup st;
	const char *why;
	enum proto_result r = proto_parse_startup(c->rx + c->rx_start, c->rx_end - c->rx_start, &st, &why);
	if (r == PROTO_AGAIN) {
		arm_or_fail(cl);
		return;
	}
	if (r == PROTO_ERR) {
		client_fail(cl, "FATAL", proto_startup_sqlstate(why), "%s", why);
		return;
	}
	c->rx_start += st.total;
	c->scan_pos = c->rx_start;

	uint8_t buf[CONN_TX_CAP];
	struct proto_writer wr = proto_writer_init(buf, sizeof(buf));
	switch (st.kind) {
	case PROTO_STARTUP_SSL:
	case PROTO_STARTUP_GSSENC:
		proto_put_u8(&wr, 'N');
		queue_or_close(cl, &wr);
		client_next(cl);
		return;
	case PROTO_STARTUP_CANCEL:
		cancel_route(c->w, st.cancel_pid, st.cancel_key);
		client_close_now(cl);
		return;
	case PROTO_STARTUP_V3:
		break;
	}

	/* 3.x with a newer minor or _pq_ options: say what we speak (as PostgreSQL does) */
	const char *unknown[PROTO_MAX_STARTUP_PARAMS];
	int n_unknown = 0;
	for (int i = 0; i < st.n_params; i++)
		if (strncmp(st.names[i], "_pq_.", 5) == 0)
			unknown[n_unknown++] = st.names[i];
	if (st.minor > 0 || n_unknown > 0)
		proto_build_negotiate_version(&wr, 0, n_unknown, unknown);

	cl->login = calloc(1, sizeof(*cl->login));
	if (!cl->login) {
		client_fail(cl, "FATAL", "53200", "out of memory");
		return;
	}
	snprintf(cl->login->user, sizeof(cl->login->user), "%s", st.user);
	for (int i = 0; i < st.n_params; i++) {
		int id = params_index(st.names[i]);
		if (id >= 0 && params_set(&cl->want, id, st.values[i]) != 0) {
			client_fail(cl, "FATAL", "53200", "out of memory");
			return;
		}
	}
	const struct cfg_shard *shard = find_shard(c->w, st.database, &cl->pool);
	if (!shard)
		snprintf(cl->login->missing_db, sizeof(cl->login->missing_db), "%s", st.database);
	proto_build_auth(&wr, PROTO_AUTH_CLEARTEXT, NULL, 0);
	client_set_state(cl, CLIENT_AUTH);
	queue_or_close(cl, &wr);
	client_next(cl);
}

/* Sends AuthenticationOk, the shard's ParameterStatus values, our
 * BackendKeyData and ReadyForQuery. */
static void finish_login(struct client *cl, const struct param_blob *params)
{
	uint8_t buf[CONN_TX_CAP];
	struct proto_writer wr = proto_writer_init(buf, sizeof(buf));
	proto_build_auth(&wr, PROTO_AUTH_OK, NULL, 0);
	/* the shard's values, except those this client asked for itself */
	struct proto_reader rd = proto_reader_init(params->data, params->len);
	while (rd.left >= PROTO_HEADER_LEN) {
		const uint8_t *msg = rd.p;
		proto_get_u8(&rd);
		uint32_t len = (uint32_t)proto_get_i32(&rd);
		struct proto_reader body = proto_reader_init(rd.p, len - 4);
		proto_get_bytes(&rd, len - 4);
		const char *name = proto_get_cstr(&body);
		int id = name ? params_index(name) : -1;
		if (id >= 0 && cl->want.v[id])
			proto_build_parameter_status(&wr, name, cl->want.v[id]);
		else
			proto_put_bytes(&wr, msg, len + 1);
	}
	proto_build_backend_key(&wr, cl->key_pid, cl->key_secret);
	proto_build_ready(&wr, 'I');
	client_set_state(cl, CLIENT_IDLE);
	queue_or_close(cl, &wr);
	client_next(cl);
}

static void handle_password(struct client *cl)
{
	struct conn *c = &cl->c;
	uint8_t type;
	uint32_t total;
	enum proto_result r = proto_frame(c->rx + c->rx_start, c->rx_end - c->rx_start, 1024, &type,
					  &total);
	if (r == PROTO_OK && c->rx_end - c->rx_start < total)
		r = PROTO_AGAIN;
	if (r == PROTO_AGAIN) {
		arm_or_fail(cl);
		return;
	}
	if (r == PROTO_ERR || type != 'p') {
		client_fail(cl, "FATAL", "08P01", "expected password response");
		return;
	}
	struct proto_reader rd = proto_reader_init(c->rx + c->rx_start + 5, total - 5);
	const char *password = proto_get_cstr(&rd);
	c->rx_start += total;
	c->scan_pos = c->rx_start;
	if (!password || rd.left != 0) {
		client_fail(cl, "FATAL", "08P01", "invalid password packet");
		return;
	}
	const struct cfg_user *user = NULL;
	for (int i = 0; i < c->w->rt->cfg->n_users; i++)
		if (strcmp(c->w->rt->cfg->users[i].name, cl->login->user) == 0)
			user = &c->w->rt->cfg->users[i];
	/* same answer for an unknown user and a wrong password, as PostgreSQL */
	if (!auth_secret_equal(password, user ? user->password : "\x01 no such user")
	    || !user) {
		log_info("worker %d client %llu: password authentication failed for user \"%s\"",
			 c->w->id, (unsigned long long)c->id, cl->login->user);
		client_fail(cl, "FATAL", "28P01", "password authentication failed for user \"%s\"",
			    cl->login->user);
		return;
	}
	if (!cl->pool) {
		client_fail(cl, "FATAL", "3D000", "database \"%s\" does not exist",
			    cl->login->missing_db);
		return;
	}
	free(cl->login);
	cl->login = NULL;
	cl->key_pid = cancel_new_pid(c->w);
	if (cancel_new_secret(c->w, &cl->key_secret) != 0) {
		/* a guessable key would let anyone cancel this client's queries */
		client_fail(cl, "FATAL", "53200", "cannot draw a random cancel key");
		return;
	}
	struct param_blob *params = atomic_load(&cl->pool->shard->params);
	if (params)
		finish_login(cl, params);
	else {
		client_set_state(cl, CLIENT_LOGIN_WAIT); /* until a server tells us */
		pool_acquire(cl->pool, cl);
		if (cl->state == CLIENT_LOGIN_WAIT && !c->closing)
			watch_while_waiting(cl);
	}
}

enum {
	REQ_OK = 0,
	REQ_INJECTED = 1,  /* PgCrab's own messages go to the server first */
	REQ_BAD_LEN = -1,
	REQ_BAD_TYPE = -2,
	REQ_OOM = -3,
};

/* Scans newly received client bytes up to the next message header that is
 * not complete, recording what the server will owe for each message. Stops
 * before Terminate, and where PgCrab must send its own messages first. */
static int scan_requests(struct client *cl, struct server *s)
{
	struct conn *c = &cl->c;
	uint32_t pos = c->scan_pos;
	int rc = REQ_OK;
	while (pos < c->rx_end) {
		if (c->msg_left) {
			pos = conn_skip_body(c, pos);
			continue;
		}
		if (rc == REQ_INJECTED)
			break;
		uint8_t type;
		uint32_t total;
		enum proto_result r = proto_frame(c->rx + pos, c->rx_end - pos,
						  (uint32_t)c->w->rt->cfg->max_packet_size, &type, &total);
		if (r == PROTO_AGAIN)
			break;
		if (r == PROTO_ERR) {
			rc = REQ_BAD_LEN;
			break;
		}
		bool drop = false;
		uint8_t ready = 0;
		switch (type) {
		case 'S':
			s->unsynced = false;
			s->unsynced_exec = false;
			ready = 1;
			break;
		case 'Q':
		case 'F':
			ready = 1;
			break;
		case 'H':
			s->unsynced = true;
			break;
		case 'E':
			s->unsynced = true;
			s->unsynced_exec = true;
			if (replies_push(&s->replies, RK_EXECUTE, 0, NULL, NULL) != 0)
				rc = REQ_OOM;
			break;
		case 'c': case 'f':
			s->copy_in = false; /* the COPY ends with what PostgreSQL says next */
			break;
		case 'd':
			break;
		case 'P': case 'B': case 'D': case 'C':
			s->unsynced = true;
			switch (prepared_request(cl, s, type, pos, &total, &drop)) {
			case PREP_OK: break;
			case PREP_REPLACED: rc = REQ_INJECTED; break;
			case PREP_INJECTED: rc = REQ_INJECTED; goto out;
			case PREP_WAIT: goto out;
			case PREP_OOM: rc = REQ_OOM; goto out;
			case PREP_BAD: rc = REQ_BAD_LEN; goto out;
			}
			break;
		case 'X':
			cl->terminate = true;
			goto out;
		default:
			rc = REQ_BAD_TYPE;
			goto out;
		}
		if (ready) {
			s->expect_ready++;
			if (replies_push(&s->replies, RK_READY, 0, NULL, NULL) != 0)
				rc = REQ_OOM;
		}
		if (rc == REQ_OOM)
			break;
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

/* After Terminate, what the client sent before it is answered first, as
 * PostgreSQL would, and the client closes when nothing more is owed
 * (client_server_settled); an open transaction is then rolled back. While
 * it waits, its recv stays armed so that a client that closes its end
 * (libpq's PQfinish sends Terminate and closes) is seen to have left, and
 * what it still runs is cancelled. Bytes behind Terminate are dropped. */
static void client_terminating(struct client *cl, struct server *s)
{
	struct conn *c = &cl->c;
	c->rx_end = c->scan_pos;
	/* an Execute without Sync is never answered in full: PostgreSQL would
	 * abort it at Terminate, and so does the server's cleanup */
	if (!server_owes_replies(s) || s->unsynced) {
		client_close_now(cl);
		return;
	}
	server_pump(s);
	if (!c->closing && cl->server == s)
		arm_or_fail(cl);
}

/* Active: forward what the client sent to its server. */
static void client_pump(struct client *cl)
{
	struct conn *c = &cl->c;
	struct server *s = cl->server;
	if (conn_send_busy(&s->c) || c->recv_armed)
		return; /* called again when that send completes, or bytes arrive */
	if (cl->terminate) {
		client_terminating(cl, s);
		return;
	}
	int r = scan_requests(cl, s);
	if (c->scan_pos > c->rx_start) {
		conn_forward(&s->c, c, c->scan_pos);
		return; /* the rest after the send completes */
	}
	if (r == REQ_INJECTED) {
		conn_flush_tx(&s->c);
		return;
	}
	if (r == REQ_BAD_LEN) {
		client_fail(cl, "FATAL", "08P01", "invalid message length");
		return;
	}
	if (r == REQ_BAD_TYPE) {
		client_fail(cl, "FATAL", "08P01", "invalid frontend message type %d",
			    c->rx[c->scan_pos]);
		return;
	}
	if (r == REQ_OOM) {
		client_fail(cl, "FATAL", "53200", "out of memory");
		return;
	}
	if (cl->terminate) {
		client_terminating(cl, s);
		return;
	}
	arm_or_fail(cl);
	if (cl->c.closing || cl->server != s)
		return;
	server_pump(s); /* PgCrab may owe the client an answer of its own */
	client_server_settled(cl);
}


/* The first message of a request: a length within max_packet_size and a
 * type a frontend may send. Fails the client (08P01, as PostgreSQL) if not. */
static bool request_header_ok(struct client *cl)
{
	struct conn *c = &cl->c;
	uint8_t type;
	uint32_t total;
	if (proto_frame(c->rx + c->rx_start, c->rx_end - c->rx_start,
			(uint32_t)c->w->rt->cfg->max_packet_size, &type, &total) == PROTO_ERR) {
		client_fail(cl, "FATAL", "08P01", "invalid message length");
		return false;
	}
	if (!proto_frontend_type(type)) {
		client_fail(cl, "FATAL", "08P01", "invalid frontend message type %d", type);
		return false;
	}
	return true;
}

/* Idle: the client sent something; a Terminate ends it, anything else needs
 * a server. */
static void client_request(struct client *cl)
{
	struct conn *c = &cl->c;
	if (c->rx_end - c->rx_start >= 1 && c->rx[c->rx_start] == 'X') {
		client_close_now(cl);
		return;
	}
	if (c->rx_end - c->rx_start < PROTO_HEADER_LEN) {
		arm_or_fail(cl);
		return;
	}
	if (c->w->stopping) {
		client_fail(cl, "FATAL", "57P01", "pgcrab is shutting down");
		return;
	}
	/* a broken header is refused now, not after waiting for a server */
	if (!request_header_ok(cl))
		return;
	/* only when no server is free: with one, the server checks the Parse */
	if (prepared_enabled(cl) && cl->pool->n_idle == 0) {
		uint8_t buf[4096];
		struct proto_writer wr = proto_writer_init(buf, sizeof(buf));
		switch (prepared_answer_locally(cl, &wr)) {
		case PREP_LOCAL_NO:
			break;
		case PREP_LOCAL_DONE:
			queue_or_close(cl, &wr);
			if (!c->closing)
				client_request(cl); /* whatever follows it */
			return;
		case PREP_LOCAL_BAD:
			client_fail(cl, "FATAL", "08P01", "invalid Parse message");
			return;
		default:
			client_fail(cl, "FATAL", "53200", "out of memory");
			return;
		}
	}
	client_set_state(cl, CLIENT_WAITING);
	pool_acquire(cl->pool, cl);
	if (cl->state == CLIENT_WAITING && !c->closing) {
		conn_rx_shrink(c); /* no server was free: wait without a ring buffer */
		watch_while_waiting(cl);
	}
}

void client_on_poll(struct client *cl, int res)
{
	/* res: the poll's events, or -ECANCELED once the wait is over */
	if (res <= 0 || cl->c.closing)
		return;
	if (cl->state == CLIENT_WAITING || cl->state == CLIENT_LOGIN_WAIT) {
		log_debug("worker %d client %llu: left while waiting for a server", cl->c.w->id,
			  (unsigned long long)cl->c.id);
		client_close_now(cl);
	}
}

void client_on_sent_upstream(struct client *cl)
{
	if (cl->state == CLIENT_ACTIVE && cl->server && !cl->c.closing)
		client_pump(cl);
}

void client_on_server(struct client *cl, struct server *s)
{
	if (cl->state == CLIENT_LOGIN_WAIT) {
		/* the shard's parameters are published now that a server logged in */
		finish_login(cl, atomic_load(&cl->pool->shard->params));
		pool_release(s);
		return;
	}
	cl->server = s;
	s->client = cl;
	server_set_state(s, SERVER_ACTIVE);
	client_set_state(cl, CLIENT_ACTIVE);
	if (server_sync_params(s) != 0) {
		client_server_lost(cl, "cannot bring session parameters in line");
		server_close(s, "parameter sync failed");
		return;
	}
	client_pump(cl);
	if (!cl->c.closing && cl->server == s)
		server_pump(s);
}

void client_server_settled(struct client *cl)
{
	struct server *s = cl->server;
	if (cl->state != CLIENT_ACTIVE || !s || cl->c.msg_left != 0 || conn_send_busy(&cl->c))
		return;
	if (cl->terminate) {
		/* the link ends with the client: the server is cleaned, not handed on */
		if (!server_owes_replies(s))
			client_close_now(cl);
		return;
	}
	if (cl->c.w->rt->cfg->pool_mode == CFG_POOL_SESSION)
		return;
	if (!server_is_clean(s))
		return;
	cl->server = NULL;
	s->client = NULL;
	client_set_state(cl, CLIENT_IDLE);
	pool_release(s);
	if (cl->c.w->stopping) {
		client_fail(cl, "FATAL", "57P01", "pgcrab is shutting down");
		return;
	}
	/* a request that arrived whole while the link was ending */
	if (cl->c.rx_end - cl->c.rx_start >= PROTO_HEADER_LEN && !cl->c.recv_armed)
		client_request(cl);
}

void client_server_lost(struct client *cl, const char *why)
{
	cl->server = NULL;
	client_fail(cl, "FATAL", "08006", "server connection lost: %s", why);
}

void client_server_cut(struct client *cl, const char *why)
{
	cl->server = NULL;
	log_debug("worker %d client %llu: server lost mid-message (%s): closing without a word",
		  cl->c.w->id, (unsigned long long)cl->c.id, why);
	client_close_now(cl);
}

void client_on_recv(struct client *cl, int res)
{
	struct conn *c = &cl->c;
	c->recv_armed = false;
	if (c->closing || cl->state == CLIENT_CLOSING)
		return;
	if (res <= 0) {
		client_close_now(cl);
		return;
	}
	c->rx_end += (uint32_t)res;
	switch (cl->state) {
	case CLIENT_STARTUP:
		handle_startup(cl);
		break;
	case CLIENT_AUTH:
		handle_password(cl);
		break;
	case CLIENT_IDLE:
		client_request(cl);
		break;
	case CLIENT_ACTIVE:
		client_pump(cl);
		break;
	case CLIENT_LOGIN_WAIT:
	case CLIENT_WAITING:
	case CLIENT_CLOSING:
		break; /* no recv is armed in these states */
	}
}

void client_on_sent(struct client *cl, enum send_src src, struct conn *owner, int err)
{
	struct conn *c = &cl->c;
	if (err) {
		/* the client went away, perhaps mid-result: its server is cleaned
		 * up (what it still runs cancelled), the rest of the result dropped */
		if (!c->closing)
			client_close_now(cl);
		return;
	}
	if (c->tx_len > 0) {
		conn_flush_tx(c);
		return;
	}
	if (cl->server && !c->closing) {
		/* after forwarded replies, or replies PgCrab gave itself */
		struct server *s = cl->server;
		client_server_settled(cl);
		if (cl->server == s)
			server_pump(s);
	}
	if (cl->state == CLIENT_CLOSING && !c->closing)
		conn_close(c);
}

void client_tick(struct client *cl)
{
	struct worker *w = cl->c.w;
	const struct cfg *cfg = w->rt->cfg;
	uint64_t waited = w->now_ms - cl->c.since_ms;
	switch (cl->state) {
	case CLIENT_STARTUP:
	case CLIENT_AUTH:
		/* from the accept: the startup and password stages share the limit */
		if (cfg->client_login_timeout_ms && w->now_ms - cl->born_ms >= cfg->client_login_timeout_ms)
			client_fail(cl, "FATAL", "08P01", "client_login_timeout: login took too long");
		else if (w->stopping)
			client_fail(cl, "FATAL", "57P01", "pgcrab is shutting down");
		break;
	case CLIENT_LOGIN_WAIT:
		if (atomic_load(&cl->pool->shard->params)) {
			/* another worker's server logged in first */
			finish_login(cl, atomic_load(&cl->pool->shard->params));
			break;
		}
		/* fall through */
	case CLIENT_WAITING:
		if (cfg->query_wait_timeout_ms && waited >= cfg->query_wait_timeout_ms)
			client_fail(cl, "FATAL", "08006",
				    "query_wait_timeout: no server connection for shard \"%s\" within %llu ms",
				    cl->pool->shard->cfg->name,
				    (unsigned long long)cfg->query_wait_timeout_ms);
		break;
	case CLIENT_IDLE:
		if (w->stopping)
			client_fail(cl, "FATAL", "57P01", "pgcrab is shutting down");
		else if (cfg->client_idle_timeout_ms && waited >= cfg->client_idle_timeout_ms)
			client_fail(cl, "FATAL", "57P05",
				    "terminating connection due to client_idle_timeout");
		break;
	case CLIENT_ACTIVE:
		/* idle in transaction: nothing owed, nothing moving */
		if (cfg->idle_transaction_timeout_ms && cl->server && cl->server->tx_status != 'I'
		    && cl->server->replies.count == 0
		    && w->now_ms - cl->c.io_ms >= cfg->idle_transaction_timeout_ms)
			client_fail(cl, "FATAL", "25P03",
				    "terminating connection due to idle_transaction_timeout");
		break;
	case CLIENT_CLOSING:
		break;
	}
}
