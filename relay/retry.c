/* One hidden retry of a statement PgCrab shares between clients, when the
 * server refuses it with 0A000 "cached plan must not change result type".
 *
 * A statement prepared on a server connection keeps the result type it had
 * when it was first prepared there, perhaps for another client, before a
 * table changed shape. A client that prepared the same text after the
 * change would never get this error from PostgreSQL directly, so PgCrab
 * closes the server's statement, prepares it again and sends the client's
 * request once more, hidden, where that is safe: the request is one batch
 * (Bind ... Sync) whose Bind is the first thing to run since the last
 * Sync, nothing was sent behind it, and the transaction was idle before
 * it or had only run its BEGIN (which is replayed after a hidden ROLLBACK).
 * Then the failed attempt changed nothing the client can see: the error
 * ended the batch's implicit transaction, and nothing of the batch but
 * PgCrab's own answers had reached the client.
 *
 * The batch is copied as it goes to the server (a few dozen bytes for a
 * typical Bind/Execute/Sync); a batch longer than RETRY_MAX is not. */
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "core/log.h"
#include "proto/proto.h"
#include "relay/relay.h"

#define RETRY_MAX   8192 /* longest batch (or BEGIN) kept for a retry */
#define RETRY_KINDS 16   /* ledger entries a kept batch may have */

enum retry_state {
	RETRY_NONE,
	RETRY_COPYING, /* its Bind went: copying up to its Sync */
	RETRY_ARMED,   /* the whole batch went: its answer is awaited */
	RETRY_FIRING,  /* 0A000 came: its ReadyForQuery is dropped, then the retry */
};

struct relay_retry {
	enum retry_state state;
	struct stmt *st; /* the shared statement the batch binds (a reference) */
	uint8_t *batch;
	uint32_t batch_len;
	uint8_t kinds[RETRY_KINDS]; /* the ledger entries of the batch */
	int n_kinds;
	uint8_t *begin; /* the Query that began the open transaction, if nothing else ran */
	uint32_t begin_len;
	bool begin_pending; /* ...its answer not in yet */
	bool ran;           /* a Bind or Execute since the last Sync */
};

static struct relay_retry *get(struct relay_leg *leg)
{
	if (!leg->retry)
		leg->retry = calloc(1, sizeof(*leg->retry));
	return leg->retry;
}

static void disarm(struct relay_retry *r)
{
	r->state = RETRY_NONE;
	stmt_unref(r->st);
	r->st = NULL;
	r->batch_len = 0;
	r->n_kinds = 0;
}

void relay_retry_reset(struct relay_leg *leg)
{
	struct relay_retry *r = leg->retry;
	if (!r)
		return;
	disarm(r);
	r->begin_len = 0;
	r->begin_pending = false;
	r->ran = false;
}

void relay_retry_free(struct relay_leg *leg)
{
	struct relay_retry *r = leg->retry;
	if (!r)
		return;
	disarm(r);
	free(r->batch);
	free(r->begin);
	free(r);
	leg->retry = NULL;
}

static int append(uint8_t **buf, uint32_t *len, const uint8_t *p, uint32_t n)
{
	if (*len + n > RETRY_MAX)
		return -1;
	if (!*buf && !(*buf = malloc(RETRY_MAX)))
		return -1;
	memcpy(*buf + *len, p, n);
	*len += n;
	return 0;
}

/* A single-statement BEGIN or START TRANSACTION, judged by its start. */
static bool is_begin(const uint8_t *body, uint32_t len)
{
	const char *s = (const char *)body;
	size_t n = strnlen(s, len);
	while (n && (*s == ' ' || *s == '\t' || *s == '\n' || *s == '\r')) {
		s++;
		n--;
	}
	if (memchr(s, ';', n) && (const char *)memchr(s, ';', n) + 1 < s + n)
		return false; /* more than one statement (or a ';' in a literal: not retried) */
	return (n >= 5 && strncasecmp(s, "begin", 5) == 0)
		|| (n >= 5 && strncasecmp(s, "start", 5) == 0);
}

static uint8_t kind_of(uint8_t type, const uint8_t *body)
{
	switch (type) {
	case 'B':
		return RK_BIND;
	case 'E':
		return RK_EXECUTE;
	case 'D':
		return body[0] == 'S' ? RK_DESCRIBE_S : RK_DESCRIBE_P;
	default:
		return RK_READY;
	}
}

/* May this Bind start a batch kept for a retry? */
static bool may_arm(const struct relay_link *l, const struct relay_leg *leg,
		    const struct relay_retry *r, bool whole, bool drop)
{
	if (!l->last_bind || !whole || drop || leg->expect_ready != 0 || (r && r->ran))
		return false;
	return leg->tx_status == 'I'
		|| (leg->tx_status == 'T' && r && r->begin_len && !r->begin_pending);
}

void relay_retry_scan(struct relay_link *l, struct relay_leg *leg, uint8_t type, uint32_t pos,
		      uint32_t total, bool drop)
{
	struct conn *c = l->client;
	struct relay_retry *r = leg->retry;
	bool whole = c->rx_end - pos >= total;
	const uint8_t *msg = c->rx + pos;
	if (r && r->state == RETRY_ARMED)
		disarm(r); /* something went behind the batch: a retry would reorder */
	if (r && r->state == RETRY_COPYING) {
		bool fits = whole && !drop && (type == 'D' || type == 'E' || type == 'S')
			&& r->n_kinds < RETRY_KINDS
			&& append(&r->batch, &r->batch_len, msg, total) == 0;
		if (!fits) {
			disarm(r);
		} else {
			r->kinds[r->n_kinds++] = kind_of(type, msg + PROTO_HEADER_LEN);
			if (type == 'S')
				r->state = RETRY_ARMED;
		}
	} else if (type == 'B' && may_arm(l, leg, r, whole, drop) && (r || (r = get(leg)))) {
		disarm(r);
		if (append(&r->batch, &r->batch_len, msg, total) == 0) {
			r->st = l->last_bind;
			stmt_ref(r->st);
			r->kinds[r->n_kinds++] = RK_BIND;
			r->state = RETRY_COPYING;
		}
	}
	bool begins = type == 'Q' && leg->tx_status == 'I' && leg->expect_ready == 0 && whole
		&& !drop && is_begin(msg + PROTO_HEADER_LEN, total - PROTO_HEADER_LEN);
	if (!r && !(begins && (r = get(leg))))
		return;
	if (type == 'B' || type == 'E')
		r->ran = true;
	else if (type == 'S' || type == 'Q')
		r->ran = false;
	if (begins) {
		/* kept until anything but a kept batch (or Parse/Describe) runs */
		r->begin_len = 0;
		if (append(&r->begin, &r->begin_len, msg, total) != 0)
			r->begin_len = 0;
		r->begin_pending = true;
	} else if (r->state == RETRY_NONE && type != 'P' && type != 'D' && type != 'S'
		   && type != 'H') {
		r->begin_len = 0;
	}
}

void relay_retry_ready(struct relay_leg *leg)
{
	struct relay_retry *r = leg->retry;
	if (!r || leg->expect_ready != 0)
		return;
	if (r->state == RETRY_ARMED) {
		disarm(r); /* answered without the error: the transaction has run more than BEGIN */
		r->begin_len = 0;
	}
	r->begin_pending = false;
}

bool relay_retry_armed(const struct relay_leg *leg)
{
	return leg->retry && leg->retry->state == RETRY_ARMED;
}

bool relay_retry_error(struct relay_leg *leg, const uint8_t *body, uint32_t len)
{
	struct relay_retry *r = leg->retry;
	struct reply *h = replies_head(&leg->replies);
	if (!r || r->state != RETRY_ARMED || !h || h->kind != RK_BIND || leg->expect_ready != 1)
		return false;
	struct proto_error_fields f;
	if (proto_parse_error(body, len, &f) != PROTO_OK || strcmp(f.code, "0A000") != 0
	    || strcmp(f.severity, "ERROR") != 0)
		return false;
	log_debug("server %llu: statement %s changed result type: preparing it again",
		  (unsigned long long)leg->server->c.id, r->st->name);
	r->state = RETRY_FIRING;
	return true;
}

bool relay_retry_firing(const struct relay_leg *leg)
{
	return leg->retry && leg->retry->state == RETRY_FIRING;
}

/* Queues one hidden Query (answered by a hidden ReadyForQuery). */
static int hidden_query(struct relay_leg *leg, const uint8_t *msg, uint32_t len)
{
	if (conn_queue(&leg->server->c, msg, len) != 0
	    || replies_push(&leg->replies, RK_READY, RF_HIDE, NULL, NULL) != 0)
		return -1;
	leg->expect_ready++;
	return 0;
}

int relay_retry_send(struct relay_leg *leg)
{
	struct relay_retry *r = leg->retry;
	struct server *s = leg->server;
	struct stmt *st = r->st;
	int rc = -1;
	uint8_t buf[64];
	struct proto_writer wr = proto_writer_init(buf, sizeof(buf));
	if (leg->tx_status == 'E' || leg->tx_status == 'T') {
		/* the BEGIN is all that ran: begin again */
		uint8_t rollback[] = { 'Q', 0, 0, 0, 13, 'R', 'O', 'L', 'L', 'B', 'A', 'C', 'K', 0 };
		if (!r->begin_len || hidden_query(leg, rollback, sizeof(rollback)) != 0
		    || hidden_query(leg, r->begin, r->begin_len) != 0)
			goto out;
	}
	size_t m = proto_msg_begin(&wr, 'C');
	proto_put_u8(&wr, 'S');
	proto_put_cstr(&wr, st->name);
	proto_msg_end(&wr, m);
	proto_put_u8(&wr, 'P');
	proto_put_i32(&wr, (int32_t)(4 + strlen(st->name) + 1 + st->len));
	proto_put_cstr(&wr, st->name);
	if (wr.overflow || conn_queue(&s->c, wr.p, wr.len) != 0
	    || conn_queue(&s->c, st->body, st->len) != 0
	    || replies_push(&leg->replies, RK_CLOSE, RF_HIDE, NULL, NULL) != 0
	    || replies_push(&leg->replies, RK_PARSE, RF_HIDE, NULL, NULL) != 0
	    || conn_queue(&s->c, r->batch, r->batch_len) != 0)
		goto out;
	for (int i = 0; i < r->n_kinds; i++) {
		if (replies_push(&leg->replies, r->kinds[i], 0, NULL, NULL) != 0)
			goto out;
		if (r->kinds[i] == RK_READY)
			leg->expect_ready++;
	}
	rc = 0;
out:
	disarm(r);
	r->begin_len = 0;
	conn_flush_tx(&s->c);
	return rc;
}
