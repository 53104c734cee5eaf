/* Client connections: startup, cleartext login, then forwarding requests to
 * the server the pool lends, watching only message headers. */
#include "core/client.h"

#include <openssl/rand.h>
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
	if (was_waiting && !now_waiting)
		pool_cancel_wait(cl->pool, cl);
	log_debug("worker %d client %llu: %s -> %s", cl->c.w->id, (unsigned long long)cl->c.id,
		  state_names[cl->state], state_names[st]);
	cl->state = st;
	cl->c.since_ms = cl->c.w->now_ms;
	if (now_waiting && !was_waiting)
		pool_wait(cl->pool, cl);
}

static void client_close_now(struct client *cl)
{
	if (cl->state == CLIENT_ACTIVE && cl->server) {
		struct server *s = cl->server;
		cl->server = NULL;
		s->client = NULL;
		server_client_gone(s);
	}
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

	if (cl->state == CLIENT_ACTIVE && cl->server) {
		struct server *s = cl->server;
		cl->server = NULL;
		s->client = NULL;
		server_client_gone(s);
	}
	client_set_state(cl, CLIENT_CLOSING);
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
	list_init(&cl->wait);
	list_add_tail(&w->clients, &cl->link);
	if (!cl->c.rx || conn_arm_recv(&cl->c) != 0)
		client_close_now(cl);
}

void client_free(struct client *cl)
{
	struct worker *w = cl->c.w;
	list_del(&cl->wait);
	list_del(&cl->link);
	params_clear(&cl->want);
	stmt_names_clear(&cl->stmts);
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
		client_fail(cl, "FATAL", "08P01", "%s", why);
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
		if (!c->closing)
			arm_or_fail(cl);
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

	snprintf(cl->user, sizeof(cl->user), "%s", st.user);
	for (int i = 0; i < st.n_params; i++) {
		int id = params_index(st.names[i]);
		if (id >= 0 && params_set(&cl->want, id, st.values[i]) != 0) {
			client_fail(cl, "FATAL", "53200", "out of memory");
			return;
		}
	}
	const struct cfg_shard *shard = find_shard(c->w, st.database, &cl->pool);
	if (!shard)
		snprintf(cl->missing_db, sizeof(cl->missing_db), "%s", st.database);
	proto_build_auth(&wr, PROTO_AUTH_CLEARTEXT, NULL, 0);
	client_set_state(cl, CLIENT_AUTH);
	queue_or_close(cl, &wr);
	if (!c->closing)
		arm_or_fail(cl);
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
	if (!cl->c.closing)
		arm_or_fail(cl);
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
		if (strcmp(c->w->rt->cfg->users[i].name, cl->user) == 0)
			user = &c->w->rt->cfg->users[i];
	/* same answer for an unknown user and a wrong password, as PostgreSQL */
	if (!auth_secret_equal(password, user ? user->password : "\x01 no such user")
	    || !user) {
		log_info("worker %d client %llu: password authentication failed for user \"%s\"",
			 c->w->id, (unsigned long long)c->id, cl->user);
		client_fail(cl, "FATAL", "28P01", "password authentication failed for user \"%s\"",
			    cl->user);
		return;
	}
	if (!cl->pool) {
		client_fail(cl, "FATAL", "3D000", "database \"%s\" does not exist", cl->missing_db);
		return;
	}
	cl->key_pid = cancel_new_pid(c->w);
	if (RAND_bytes((unsigned char *)&cl->key_secret, sizeof(cl->key_secret)) != 1)
		cl->key_secret = (int32_t)(c->id * 2654435761u);
	struct param_blob *params = atomic_load(&cl->pool->shard->params);
	if (params)
		finish_login(cl, params);
	else {
		client_set_state(cl, CLIENT_LOGIN_WAIT); /* until a server tells us */
		pool_acquire(cl->pool, cl);
	}
}

enum {
	REQ_OK = 0,
	REQ_INJECTED = 1,  /* PgCrab's own messages go to the server first */
	REQ_BAD_LEN = -1,
	REQ_BAD_TYPE = -2,
	REQ_OOM = -3,
};

enum ext_result {
	EXT_OK,       /* consume (and forward, unless *drop) */
	EXT_WAIT,     /* not now: more bytes, or forward what precedes first */
	EXT_INJECTED, /* not consumed yet: hidden messages queued to the server first */
	EXT_REPLACED, /* consumed and dropped: hidden messages replace it */
	EXT_OOM,
	EXT_BAD,
};

static bool named_statements(const struct client *cl)
{
	const struct cfg *cfg = cl->c.w->rt->cfg;
	return cfg->pool_mode == CFG_POOL_TRANSACTION && cfg->max_prepared_statements > 0;
}

static enum ext_result need_more(struct conn *c, uint32_t bytes)
{
	if (bytes > c->rx_cap)
		c->rx_want = bytes; /* the next recv grows the buffer */
	return EXT_WAIT;
}

/* Replaces the name at rx[off] (old_len bytes and a NUL) in the message at
 * rx[pos] with name, moving what follows and fixing the length field. */
static int rewrite_name(struct conn *c, uint32_t pos, uint32_t off, size_t old_len,
			const char *name, uint32_t *total)
{
	size_t new_len = strlen(name);
	uint32_t tail = off + (uint32_t)old_len + 1;
	if (new_len > old_len && c->rx_end + (new_len - old_len) > c->rx_cap) {
		uint32_t cap = c->rx_end + (uint32_t)(new_len - old_len) + 4096;
		uint8_t *p = realloc(c->rx, cap);
		if (!p)
			return -1;
		c->rx = p;
		c->rx_cap = cap;
	}
	memmove(c->rx + off + new_len + 1, c->rx + tail, c->rx_end - tail);
	memcpy(c->rx + off, name, new_len + 1);
	c->rx_end = c->rx_end + (uint32_t)new_len - (uint32_t)old_len;
	*total = *total + (uint32_t)new_len - (uint32_t)old_len;
	uint32_t len = *total - 1;
	c->rx[pos + 1] = (uint8_t)(len >> 24);
	c->rx[pos + 2] = (uint8_t)(len >> 16);
	c->rx[pos + 3] = (uint8_t)(len >> 8);
	c->rx[pos + 4] = (uint8_t)len;
	return 0;
}

/* Queues a hidden Parse of st on the server (closing the least recently
 * used statement first when the server holds max_prepared_statements). */
static int inject_parse(struct client *cl, struct server *s, struct stmt *st)
{
	int max = cl->c.w->rt->cfg->max_prepared_statements;
	uint8_t buf[64];
	struct proto_writer wr;
	if (s->stmts.n >= max) {
		struct stmt *old = stmt_set_evict(&s->stmts);
		wr = proto_writer_init(buf, sizeof(buf));
		size_t m = proto_msg_begin(&wr, 'C');
		proto_put_u8(&wr, 'S');
		proto_put_cstr(&wr, old->name);
		proto_msg_end(&wr, m);
		stmt_unref(old);
		if (conn_queue(&s->c, wr.p, wr.len) != 0
		    || replies_push(&s->replies, RK_CLOSE, RF_HIDE, NULL, NULL) != 0)
			return -1;
	}
	wr = proto_writer_init(buf, sizeof(buf));
	proto_put_u8(&wr, 'P');
	proto_put_i32(&wr, (int32_t)(4 + strlen(st->name) + 1 + st->len));
	proto_put_cstr(&wr, st->name);
	if (conn_queue(&s->c, wr.p, wr.len) != 0 || conn_queue(&s->c, st->body, st->len) != 0
	    || stmt_set_add(&s->stmts, st) != 0)
		return -1;
	stmt_ref(st);
	if (replies_push(&s->replies, RK_PARSE, RF_HIDE, st, NULL) != 0) {
		stmt_unref(st);
		return -1;
	}
	return 0;
}

/* A Parse reusing a name the client already has: PostgreSQL answers 42P05
 * and skips to Sync. The server is made to raise exactly that, so the
 * implicit transaction fails as it would without PgCrab. */
static int inject_duplicate_error(struct client *cl, struct server *s, const char *name)
{
	char quoted[300], sql[512];
	size_t q = 0;
	for (const char *p = name; *p && q < sizeof(quoted) - 3; p++) {
		if (*p == '\'')
			quoted[q++] = '\'';
		quoted[q++] = *p;
	}
	quoted[q] = '\0';
	if (strstr(name, "$pgcrab$"))
		snprintf(quoted, sizeof(quoted), "?");
	snprintf(sql, sizeof(sql),
		 "DO $pgcrab$BEGIN RAISE EXCEPTION USING ERRCODE = '42P05', MESSAGE = "
		 "'prepared statement \"%s\" already exists'; END$pgcrab$",
		 quoted);
	uint8_t buf[700];
	struct proto_writer wr = proto_writer_init(buf, sizeof(buf));
	size_t m = proto_msg_begin(&wr, 'P');
	proto_put_u8(&wr, 0);
	proto_put_cstr(&wr, sql);
	proto_put_u8(&wr, 0);
	proto_put_u8(&wr, 0);
	proto_msg_end(&wr, m);
	m = proto_msg_begin(&wr, 'B');
	proto_put_bytes(&wr, "\0\0\0\0\0\0\0\0", 8); /* portal, statement, 3 empty counts */
	proto_msg_end(&wr, m);
	m = proto_msg_begin(&wr, 'E');
	proto_put_u8(&wr, 0);
	proto_put_i32(&wr, 0);
	proto_msg_end(&wr, m);
	if (wr.overflow || conn_queue(&s->c, wr.p, wr.len) != 0
	    || replies_push(&s->replies, RK_PARSE, RF_HIDE, NULL, NULL) != 0
	    || replies_push(&s->replies, RK_BIND, RF_HIDE, NULL, NULL) != 0
	    || replies_push(&s->replies, RK_EXECUTE, 0, NULL, NULL) != 0)
		return -1;
	return 0;
}

/* Parse, Bind, Describe and Close: named statements are renamed to the
 * server's names, prepared where missing, and answered by PgCrab where the
 * server must not see them. */
static enum ext_result extended(struct client *cl, struct server *s, uint8_t type, uint32_t pos,
				uint32_t *total, bool *drop)
{
	struct conn *c = &cl->c;
	uint32_t have = c->rx_end - pos < *total ? c->rx_end - pos : *total;
	struct proto_reader r = proto_reader_init(c->rx + pos + PROTO_HEADER_LEN, have - PROTO_HEADER_LEN);
	uint8_t what = 0;
	if (type == 'D' || type == 'C')
		what = proto_get_u8(&r);
	if (type == 'B')
		proto_get_cstr(&r); /* portal */
	uint32_t name_off = pos + PROTO_HEADER_LEN + (have - PROTO_HEADER_LEN - (uint32_t)r.left);
	const char *name = proto_get_cstr(&r);
	if (!name) {
		if (have == *total)
			return EXT_BAD;
		if (have > 4096 && type != 'P')
			return EXT_BAD; /* names are short; this is not a name */
		return need_more(c, type == 'P' ? *total : 4096);
	}
	uint8_t kind = type == 'P' ? RK_PARSE : type == 'B' ? RK_BIND : type == 'C' ? RK_CLOSE
		     : what == 'S' ? RK_DESCRIBE_S : RK_DESCRIBE_P;
	bool names_statement = type == 'P' || type == 'B' || what == 'S';
	if (!named_statements(cl) || !names_statement || name[0] == '\0')
		return replies_push(&s->replies, kind, 0, NULL, NULL) == 0 ? EXT_OK : EXT_OOM;

	size_t name_len = strlen(name);
	switch (type) {
	case 'P': {
		if (have < *total)
			return need_more(c, *total);
		if (stmt_names_find(&cl->stmts, name)) {
			if (pos != c->rx_start)
				return EXT_WAIT;
			*drop = true;
			return inject_duplicate_error(cl, s, name) == 0 ? EXT_REPLACED : EXT_OOM;
		}
		uint32_t body_off = name_off + (uint32_t)name_len + 1;
		struct stmt *st = stmt_new(c->rx + body_off, pos + *total - body_off);
		if (!st)
			return EXT_OOM;
		bool on_server = stmt_set_has(&s->stmts, st);
		int max = c->w->rt->cfg->max_prepared_statements;
		if ((on_server || s->stmts.n >= max) && pos != c->rx_start) {
			stmt_unref(st);
			return EXT_WAIT;
		}
		if (!on_server && s->stmts.n >= max) {
			/* make room first; this Parse is looked at again after */
			struct stmt *old = stmt_set_evict(&s->stmts);
			uint8_t buf[64];
			struct proto_writer wr = proto_writer_init(buf, sizeof(buf));
			size_t m = proto_msg_begin(&wr, 'C');
			proto_put_u8(&wr, 'S');
			proto_put_cstr(&wr, old->name);
			proto_msg_end(&wr, m);
			stmt_unref(old);
			stmt_unref(st);
			if (conn_queue(&s->c, wr.p, wr.len) != 0
			    || replies_push(&s->replies, RK_CLOSE, RF_HIDE, NULL, NULL) != 0)
				return EXT_OOM;
			return EXT_INJECTED;
		}
		char *client_name = strdup(name);
		if (!client_name || stmt_names_add(&cl->stmts, name, st) != 0) {
			free(client_name);
			stmt_unref(st);
			return EXT_OOM;
		}
		if (on_server) {
			*drop = true;
			stmt_unref(st);
			return replies_push(&s->replies, RK_PARSE, RF_SYNTH, NULL, client_name) == 0 ? EXT_OK
													 : EXT_OOM;
		}
		if (stmt_set_add(&s->stmts, st) != 0
		    || rewrite_name(c, pos, name_off, name_len, st->name, total) != 0
		    || replies_push(&s->replies, RK_PARSE, 0, st, client_name) != 0) {
			stmt_unref(st);
			return EXT_OOM;
		}
		return EXT_OK; /* the entry keeps the reference from stmt_new */
	}
	case 'B':
	case 'D': {
		struct stmt *st = stmt_names_find(&cl->stmts, name);
		if (!st) /* unknown: the server answers 26000 in PostgreSQL's own words */
			return replies_push(&s->replies, kind, 0, NULL, NULL) == 0 ? EXT_OK : EXT_OOM;
		if (!stmt_set_has(&s->stmts, st)) {
			if (pos != c->rx_start)
				return EXT_WAIT;
			return inject_parse(cl, s, st) == 0 ? EXT_INJECTED : EXT_OOM;
		}
		if (rewrite_name(c, pos, name_off, name_len, st->name, total) != 0)
			return EXT_OOM;
		return replies_push(&s->replies, kind, 0, NULL, NULL) == 0 ? EXT_OK : EXT_OOM;
	}
	default: /* Close of a named statement: the server keeps it for others */
		if (pos != c->rx_start)
			return EXT_WAIT;
		stmt_names_remove(&cl->stmts, name);
		*drop = true;
		return replies_push(&s->replies, RK_CLOSE, RF_SYNTH, NULL, NULL) == 0 ? EXT_OK : EXT_OOM;
	}
}

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
			uint32_t k = c->rx_end - pos;
			if (k > c->msg_left)
				k = c->msg_left;
			pos += k;
			c->msg_left -= k;
			if (cl->dropping)
				c->rx_start = pos;
			if (c->msg_left == 0)
				cl->dropping = false;
			continue;
		}
		if (rc == REQ_INJECTED)
			break;
		uint8_t type;
		uint32_t total;
		enum proto_result r = proto_frame(c->rx + pos, c->rx_end - pos, PROTO_MAX_MESSAGE, &type,
						  &total);
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
			if (replies_push(&s->replies, RK_EXECUTE, 0, NULL, NULL) != 0)
				rc = REQ_OOM;
			break;
		case 'd': case 'c': case 'f':
			break;
		case 'P': case 'B': case 'D': case 'C':
			s->unsynced = true;
			switch (extended(cl, s, type, pos, &total, &drop)) {
			case EXT_OK: break;
			case EXT_REPLACED: rc = REQ_INJECTED; break;
			case EXT_INJECTED: rc = REQ_INJECTED; goto out;
			case EXT_WAIT: goto out;
			case EXT_OOM: rc = REQ_OOM; goto out;
			case EXT_BAD: rc = REQ_BAD_LEN; goto out;
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
			cl->dropping = c->msg_left > 0;
			c->rx_start = pos;
		}
	}
out:
	c->scan_pos = pos;
	return rc;
}

/* Active: forward what the client sent to its server. */
static void client_pump(struct client *cl)
{
	struct conn *c = &cl->c;
	struct server *s = cl->server;
	if (conn_send_busy(&s->c) || c->recv_armed)
		return; /* called again when that send completes, or bytes arrive */
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
		client_close_now(cl);
		return;
	}
	arm_or_fail(cl);
	if (cl->c.closing || cl->server != s)
		return;
	server_pump(s); /* PgCrab may owe the client an answer of its own */
	client_server_settled(cl);
}

static void client_request(struct client *cl);

/* Between transactions, a request that only prepares named statements
 * (Parse... Sync, as pgbench -M prepared and PQprepare send) is answered
 * without a server: a client that blocks on it while another client of the
 * same thread holds the last server would otherwise wait forever. The query
 * is checked by the server where it is first used. Returns false when the
 * request needs a server. */
static bool prepare_locally(struct client *cl)
{
	struct conn *c = &cl->c;
	uint32_t pos = c->rx_start;
	bool any = false;
	int n_parse = 0;
	for (;;) {
		uint8_t type;
		uint32_t total;
		if (proto_frame(c->rx + pos, c->rx_end - pos, PROTO_MAX_MESSAGE, &type, &total) != PROTO_OK
		    || c->rx_end - pos < total)
			return false;
		if (type == 'S' && any)
			break;
		if (type != 'P' || c->rx[pos + PROTO_HEADER_LEN] == '\0' || ++n_parse > 500)
			return false;
		any = true;
		pos += total;
	}
	uint8_t buf[4096]; /* 500 ParseCompletes, an error and ReadyForQuery */
	struct proto_writer wr = proto_writer_init(buf, sizeof(buf));
	bool failed = false;
	while (c->rx[c->rx_start] == 'P') {
		uint32_t total = proto_be32(c->rx + c->rx_start + 1) + 1;
		const char *name = (const char *)c->rx + c->rx_start + PROTO_HEADER_LEN;
		size_t name_len = strnlen(name, total - PROTO_HEADER_LEN);
		const uint8_t *body = (const uint8_t *)name + name_len + 1;
		uint32_t body_len = total - PROTO_HEADER_LEN - (uint32_t)name_len - 1;
		if (name_len == total - PROTO_HEADER_LEN) {
			client_fail(cl, "FATAL", "08P01", "invalid Parse message");
			return true;
		}
		if (!failed && stmt_names_find(&cl->stmts, name)) {
			char msg[200];
			snprintf(msg, sizeof(msg), "prepared statement \"%.100s\" already exists", name);
			proto_build_error(&wr, "ERROR", "42P05", msg);
			failed = true; /* PostgreSQL skips the rest up to Sync */
		} else if (!failed) {
			struct stmt *st = stmt_new(body, body_len);
			if (!st || stmt_names_add(&cl->stmts, name, st) != 0) {
				stmt_unref(st);
				client_fail(cl, "FATAL", "53200", "out of memory");
				return true;
			}
			stmt_unref(st);
			size_t m = proto_msg_begin(&wr, '1');
			proto_msg_end(&wr, m);
		}
		c->rx_start += total;
	}
	c->rx_start += PROTO_HEADER_LEN; /* the Sync */
	c->scan_pos = c->rx_start;
	proto_build_ready(&wr, 'I');
	queue_or_close(cl, &wr);
	if (!c->closing)
		client_request(cl);
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
	if (named_statements(cl) && prepare_locally(cl))
		return;
	client_set_state(cl, CLIENT_WAITING);
	pool_acquire(cl->pool, cl);
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
	if (cl->c.w->rt->cfg->pool_mode == CFG_POOL_SESSION)
		return;
	if (!server_is_clean(s))
		return;
	cl->server = NULL;
	s->client = NULL;
	client_set_state(cl, CLIENT_IDLE);
	pool_release(s);
	if (cl->terminate) {
		client_close_now(cl);
		return;
	}
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
		if (src == SEND_FORWARD && owner && cl->server == container_of_server(owner)) {
			struct server *s = cl->server;
			cl->server = NULL;
			s->client = NULL;
			server_close(s, "client went away mid-result");
		}
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
		if (cfg->client_login_timeout_ms && waited >= cfg->client_login_timeout_ms)
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
		break;
	case CLIENT_ACTIVE:
	case CLIENT_CLOSING:
		break;
	}
}
