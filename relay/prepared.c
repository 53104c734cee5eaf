#include "relay/prepared.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "core/conn.h"
#include "core/worker.h"
#include "pool/stmt.h"
#include "query/classify.h"
#include "relay/replies.h"

bool prepared_enabled(const struct cfg *cfg)
{
	return cfg->pool_mode == CFG_POOL_TRANSACTION && cfg->max_prepared_statements > 0;
}

static enum prepared_result need_more(struct conn *c, uint32_t bytes)
{
	if (bytes > c->rx_cap)
		c->rx_want = bytes; /* the next recv grows the buffer */
	return PREP_WAIT;
}

/* Replaces the name at rx[off] (old_len bytes and a NUL) in the message at
 * rx[pos] with name, moving what follows and fixing the length field. */
static int rewrite_name(struct conn *c, uint32_t pos, uint32_t off, size_t old_len,
			const char *name, uint32_t *total)
{
	size_t new_len = strlen(name);
	uint32_t tail = off + (uint32_t)old_len + 1;
	if (new_len > old_len && c->rx_end + (new_len - old_len) > c->rx_cap
	    && conn_rx_reserve(c, c->rx_end + (uint32_t)(new_len - old_len) + 4096) != 0)
		return -1;
	if (new_len > old_len)
		conn_rx_claim(c, c->rx_end, (uint32_t)(new_len - old_len));
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

/* Queues a hidden Close of the server's least recently used statement. */
static int close_least_used(struct relay_leg *leg)
{
	struct server *s = leg->server;
	struct stmt *old = stmt_set_evict(&s->stmts);
	uint8_t buf[64];
	struct proto_writer wr = proto_writer_init(buf, sizeof(buf));
	size_t m = proto_msg_begin(&wr, 'C');
	proto_put_u8(&wr, 'S');
	proto_put_cstr(&wr, old->name);
	proto_msg_end(&wr, m);
	stmt_unref(old);
	if (wr.overflow || conn_queue(&s->c, wr.p, wr.len) != 0)
		return -1;
	return replies_push(&leg->replies, RK_CLOSE, RF_HIDE, NULL, NULL);
}

/* Queues a hidden Parse of st on the server (closing the least recently
 * used statement first when the server holds max_prepared_statements). */
static int inject_parse(struct relay_leg *leg, struct stmt *st, const char *name)
{
	struct server *s = leg->server;
	int max = s->c.w->cfg->max_prepared_statements;
	uint8_t buf[64];
	struct proto_writer wr;
	if (s->stmts.n >= max && close_least_used(leg) != 0)
		return -1;
	wr = proto_writer_init(buf, sizeof(buf));
	proto_put_u8(&wr, 'P');
	proto_put_i32(&wr, (int32_t)(4 + strlen(st->name) + 1 + st->len));
	proto_put_cstr(&wr, st->name);
	if (wr.overflow || conn_queue(&s->c, wr.p, wr.len) != 0
	    || conn_queue(&s->c, st->body, st->len) != 0 || stmt_set_add(&s->stmts, st) != 0)
		return -1;
	/* if the server rejects it, the client's name goes too, as after a failed Parse */
	char *client_name = strdup(name);
	if (!client_name)
		return -1;
	stmt_ref(st);
	if (replies_push(&leg->replies, RK_PARSE, RF_HIDE, st, client_name) != 0) {
		stmt_unref(st);
		free(client_name);
		return -1;
	}
	return 0;
}

int prepared_raise(struct relay_leg *leg, uint8_t type, const char *sqlstate, const char *message)
{
	struct server *s = leg->server;
	char quoted[300], sql[512];
	size_t q = 0;
	for (const char *p = message; *p && q < sizeof(quoted) - 3; p++) {
		if (*p == '\'')
			quoted[q++] = '\'';
		quoted[q++] = *p;
	}
	quoted[q] = '\0';
	if (strstr(quoted, "$pgcrab$"))
		snprintf(quoted, sizeof(quoted), "?"); /* it would end the DO body */
	snprintf(sql, sizeof(sql),
		 "DO $pgcrab$BEGIN RAISE EXCEPTION USING ERRCODE = '%.5s', MESSAGE = '%s'; "
		 "END$pgcrab$",
		 sqlstate, quoted);
	uint8_t buf[700];
	struct proto_writer wr = proto_writer_init(buf, sizeof(buf));
	if (type == 'Q') {
		proto_build_query(&wr, sql);
		return wr.overflow || conn_queue(&s->c, wr.p, wr.len) != 0 ? -1 : 0;
	}
	/* an unnamed Parse, Bind and Execute whose error reaches the client
	 * where its ParseComplete would have */
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
	    || replies_push(&leg->replies, RK_PARSE, RF_HIDE, NULL, NULL) != 0
	    || replies_push(&leg->replies, RK_BIND, RF_HIDE, NULL, NULL) != 0
	    || replies_push(&leg->replies, RK_EXECUTE, 0, NULL, NULL) != 0)
		return -1;
	return 0;
}

/* A Parse reusing a name the client already has: PostgreSQL answers 42P05
 * and skips to Sync. The server is made to raise exactly that, so the
 * implicit transaction fails as it would without PgCrab. */
static int inject_duplicate_error(struct relay_leg *leg, const char *name)
{
	char msg[300];
	/* a name that would end the DO body is not quoted */
	snprintf(msg, sizeof(msg), "prepared statement \"%.250s\" already exists",
		 strstr(name, "$pgcrab$") ? "?" : name);
	return prepared_raise(leg, 'P', "42P05", msg);
}

/* Parse, Bind, Describe and Close: named statements are renamed to the
 * server's names, prepared where missing, and answered by PgCrab where the
 * server must not see them. */
enum prepared_result prepared_request(struct relay_link *l, struct relay_leg *leg, uint8_t type,
				      uint32_t pos, uint32_t *total, bool *drop)
{
	struct conn *c = l->client;
	struct server *s = leg->server;
	struct replies *rq = &leg->replies;
	uint32_t have = c->rx_end - pos < *total ? c->rx_end - pos : *total;
	struct proto_reader r = proto_reader_init(c->rx + pos + PROTO_HEADER_LEN,
						  have - PROTO_HEADER_LEN);
	uint8_t what = 0;
	if (type == 'D' || type == 'C')
		what = proto_get_u8(&r);
	if (type == 'B')
		proto_get_cstr(&r); /* portal */
	uint32_t name_off = pos + PROTO_HEADER_LEN + (have - PROTO_HEADER_LEN - (uint32_t)r.left);
	const char *name = proto_get_cstr(&r);
	if (!name) {
		if (have == *total)
			return PREP_BAD;
		if (have > 4096 && type != 'P')
			return PREP_BAD; /* names are short; this is not a name */
		return need_more(c, type == 'P' ? *total : 4096);
	}
	uint8_t kind = type == 'P' ? RK_PARSE
		: type == 'B'      ? RK_BIND
		: type == 'C'      ? RK_CLOSE
		: what == 'S'      ? RK_DESCRIBE_S
				   : RK_DESCRIBE_P;
	bool names_statement = type == 'P' || type == 'B' || what == 'S';
	if (type == 'B')
		l->last_bind = NULL;
	if (name[0] == '\0' && type == 'P')
		l->unnamed_effects = l->parse_effects;
	else if (name[0] == '\0' && type == 'B')
		leg->dirty |= l->unnamed_effects;
	if (!prepared_enabled(c->w->cfg) || !names_statement || name[0] == '\0')
		return replies_push(rq, kind, 0, NULL, NULL) == 0 ? PREP_OK : PREP_OOM;

	size_t name_len = strlen(name);
	switch (type) {
	case 'P': {
		if (have < *total)
			return need_more(c, *total);
		if (stmt_names_find(l->names, name)) {
			if (pos != c->rx_start)
				return PREP_WAIT;
			*drop = true;
			return inject_duplicate_error(leg, name) == 0 ? PREP_REPLACED : PREP_OOM;
		}
		uint32_t body_off = name_off + (uint32_t)name_len + 1;
		struct stmt *st = stmt_new(c->rx + body_off, pos + *total - body_off);
		if (!st)
			return PREP_OOM;
		st->effects = l->parse_effects; /* each Bind of it does the same again */
		bool on_server = stmt_set_has(&s->stmts, st);
		int max = c->w->cfg->max_prepared_statements;
		if ((on_server || s->stmts.n >= max) && pos != c->rx_start) {
			stmt_unref(st);
			return PREP_WAIT;
		}
		if (!on_server && s->stmts.n >= max) {
			/* make room first; this Parse is looked at again after */
			stmt_unref(st);
			return close_least_used(leg) == 0 ? PREP_INJECTED : PREP_OOM;
		}
		char *client_name = strdup(name);
		if (!client_name || stmt_names_add(l->names, name, st) != 0) {
			free(client_name);
			stmt_unref(st);
			return PREP_OOM;
		}
		if (on_server) {
			*drop = true;
			stmt_unref(st);
			return replies_push(rq, RK_PARSE, RF_SYNTH, NULL, client_name) == 0
				? PREP_OK
				: PREP_OOM;
		}
		if (stmt_set_add(&s->stmts, st) != 0
		    || rewrite_name(c, pos, name_off, name_len, st->name, total) != 0
		    || replies_push(rq, RK_PARSE, 0, st, client_name) != 0) {
			stmt_unref(st);
			return PREP_OOM;
		}
		return PREP_OK; /* the entry keeps the reference from stmt_new */
	}
	case 'B':
	case 'D': {
		struct stmt *st = stmt_names_find(l->names, name);
		if (!st) /* unknown: the server answers 26000 in PostgreSQL's own words */
			return replies_push(rq, kind, 0, NULL, NULL) == 0 ? PREP_OK : PREP_OOM;
		if (!stmt_set_has(&s->stmts, st)) {
			if (pos != c->rx_start)
				return PREP_WAIT;
			return inject_parse(leg, st, name) == 0 ? PREP_INJECTED : PREP_OOM;
		}
		if (rewrite_name(c, pos, name_off, name_len, st->name, total) != 0)
			return PREP_OOM;
		if (type == 'B') {
			leg->dirty |= st->effects;
			l->last_bind = st; /* kept for a retry (relay/retry.c) */
		}
		return replies_push(rq, kind, 0, NULL, NULL) == 0 ? PREP_OK : PREP_OOM;
	}
	default: /* Close of a named statement: the server keeps it for others */
		if (pos != c->rx_start)
			return PREP_WAIT;
		stmt_names_remove(l->names, name);
		*drop = true;
		return replies_push(rq, RK_CLOSE, RF_SYNTH, NULL, NULL) == 0 ? PREP_OK : PREP_OOM;
	}
}

/* Between transactions, a request that only prepares named statements
 * (Parse... Sync, as pgbench -M prepared and PQprepare send) is answered
 * without a server: a client that blocks on it while another client of the
 * same thread holds the last server would otherwise wait forever. The query
 * is checked by the server where it is first used. */
int prepared_answer_locally(struct conn *c, struct stmt_names *names, struct proto_writer *wr)
{
	uint32_t pos = c->rx_start;
	bool any = false;
	int n_parse = 0;
	for (;;) {
		uint8_t type;
		uint32_t total;
		if (proto_frame(c->rx + pos, c->rx_end - pos, PROTO_MAX_MESSAGE, &type, &total)
			    != PROTO_OK
		    || c->rx_end - pos < total)
			return PREP_LOCAL_NO;
		if (type == 'S' && any) {
			/* a Sync with a body is the server's to refuse */
			if (total != PROTO_HEADER_LEN)
				return PREP_LOCAL_NO;
			break;
		}
		/* an unnamed (or nameless) Parse is the server's, as is one
		 * too short to hold a name at all */
		if (type != 'P' || total <= PROTO_HEADER_LEN
		    || c->rx[pos + PROTO_HEADER_LEN] == '\0' || ++n_parse > 500)
			return PREP_LOCAL_NO;
		any = true;
		pos += total;
	}
	bool failed = false;
	while (c->rx[c->rx_start] == 'P') {
		uint32_t total = proto_be32(c->rx + c->rx_start + 1) + 1;
		const char *name = (const char *)c->rx + c->rx_start + PROTO_HEADER_LEN;
		size_t name_len = strnlen(name, total - PROTO_HEADER_LEN);
		const uint8_t *body = (const uint8_t *)name + name_len + 1;
		uint32_t body_len = total - PROTO_HEADER_LEN - (uint32_t)name_len - 1;
		if (name_len == total - PROTO_HEADER_LEN) {
			return PREP_LOCAL_BAD;
		}
		if (!failed && stmt_names_find(names, name)) {
			char msg[200];
			snprintf(msg, sizeof(msg), "prepared statement \"%.100s\" already exists",
				 name);
			proto_build_error(wr, "ERROR", "42P05", msg);
			failed = true; /* PostgreSQL skips the rest up to Sync */
		} else if (!failed) {
			struct stmt *st = stmt_new(body, body_len);
			struct query_class qc;
			if (st) {
				size_t qlen = strnlen((const char *)body, body_len);
				query_classify((const char *)body, qlen, &qc);
				st->effects = qc.effects;
			}
			if (!st || stmt_names_add(names, name, st) != 0) {
				stmt_unref(st);
				return PREP_LOCAL_OOM;
			}
			stmt_unref(st);
			size_t m = proto_msg_begin(wr, '1');
			proto_msg_end(wr, m);
		}
		c->rx_start += total;
	}
	c->rx_start += PROTO_HEADER_LEN; /* the Sync */
	c->scan_pos = c->rx_start;
	proto_build_ready(wr, 'I');
	return PREP_LOCAL_DONE;
}
