/* The relay: forwarding between a client and the servers linked to it,
 * and the ledger of what each server owes (see relay/relay.h). */
#include "relay/relay.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "core/log.h"
#include "core/worker.h"
#include "pool/pool.h"
#include "proto/proto.h"
#include "relay/prepared.h"
#include "query/classify.h"
#include "stats/stats.h"

/* Legs are reused on this thread: one is taken per transaction. */
#define SPARE_LEGS_MAX 256
static __thread struct relay_leg *spare_legs;
static __thread int n_spare_legs;

struct relay_leg *relay_leg_new(void)
{
	struct relay_leg *leg = spare_legs;
	if (leg) {
		spare_legs = leg->next;
		n_spare_legs--;
		struct replies keep = leg->replies;     /* its array, empty */
		struct relay_retry *retry = leg->retry; /* its buffers, disarmed */
		memset(leg, 0, sizeof(*leg));
		leg->replies = keep;
		leg->retry = retry;
	} else {
		leg = calloc(1, sizeof(*leg));
		if (!leg)
			return NULL;
	}
	leg->tx_status = 'I';
	return leg;
}

void relay_leg_free(struct relay_leg *leg)
{
	timer_disarm(&leg->timer);
	params_clear(&leg->probed);
	relay_retry_reset(leg);
	struct reply r;
	while (leg->replies.count) {
		replies_pop(&leg->replies, &r);
		relay_forget_reply(leg, &r, false);
	}
	if (n_spare_legs < SPARE_LEGS_MAX) {
		leg->next = spare_legs;
		spare_legs = leg;
		n_spare_legs++;
		return;
	}
	replies_clear(&leg->replies);
	relay_retry_free(leg);
	free(leg);
}

void relay_thread_exit(void)
{
	struct relay_leg *leg;
	while ((leg = spare_legs)) {
		spare_legs = leg->next;
		replies_clear(&leg->replies);
		relay_retry_free(leg);
		free(leg);
	}
	n_spare_legs = 0;
}

void relay_link_init(struct relay_link *l, struct conn *client, const struct relay_link_ops *ops,
		     struct param_set *want, struct param_set *startup, struct stmt_names *names)
{
	memset(l, 0, sizeof(*l));
	l->client = client;
	l->ops = ops;
	l->want = want;
	l->startup = startup;
	l->names = names;
}

void relay_link_clear(struct relay_link *l)
{
	relay_route_clear(l);
	params_clear(&l->custom);
	if (l->resets) {
		params_clear(&l->resets->reset_before);
		params_clear(&l->resets->hold_reset);
		free(l->resets);
		l->resets = NULL;
	}
}

bool relay_leg_awaits(const struct relay_leg *leg)
{
	return leg->expect_ready > 0 || leg->hidden_ready > 0 || leg->replies.count > 0
		|| leg->server->c.msg_left > 0;
}

bool relay_leg_owes(const struct relay_leg *leg)
{
	const struct conn *c = &leg->server->c;
	return relay_leg_awaits(leg) || conn_send_busy(c) || c->rx_start != c->rx_end;
}

/* Between transactions with nothing owed or in flight. */
static bool leg_clean(const struct relay_leg *leg)
{
	return !relay_leg_owes(leg) && !leg->unsynced && leg->tx_status == 'I';
}

static void unlink_leg(struct relay_link *l, struct relay_leg *leg)
{
	for (struct relay_leg **p = &l->legs; *p; p = &(*p)->next) {
		if (*p == leg) {
			*p = leg->next;
			break;
		}
	}
	if (l->to == leg)
		l->to = NULL;
	leg->next = NULL;
	leg->link = NULL;
}

/* ---- statistics ------------------------------------------------------ */

static struct stats_slot *leg_stats(const struct relay_leg *leg)
{
	const struct server *s = leg->server;
	return stats_slot(&s->c.w->stats, s->shard->index);
}

/* A query, and a transaction, begin with the first bytes sent after the
 * last ReadyForQuery (a few compares per forwarded batch) */
void relay_stats_request(struct relay_leg *leg, uint32_t n)
{
	uint64_t now = leg->server->c.w->now_us;
	STATS_ADD(leg_stats(leg)->received, n);
	if (!leg->query_start_us)
		leg->query_start_us = now;
	if (!leg->xact_start_us)
		leg->xact_start_us = now;
}

/* Every ReadyForQuery the client's requests were owed ends a query; one
 * with status I (idle) ends a transaction. Pipelined requests each begin
 * when the one before them ends. */
void relay_stats_ready(struct relay_leg *leg, char status)
{
	uint64_t now = leg->server->c.w->now_us;
	struct stats_slot *st = leg_stats(leg);
	if (leg->query_start_us) {
		stats_hist_add(&st->query, now - leg->query_start_us);
		leg->query_start_us = leg->expect_ready > 0 ? now : 0;
	}
	if (status == 'I' && leg->xact_start_us) {
		stats_hist_add(&st->xact, now - leg->xact_start_us);
		leg->xact_start_us = leg->expect_ready > 0 ? now : 0;
	}
}

/* ---- the ledger ------------------------------------------------------ */

/* A request PostgreSQL did not complete (it failed, or was skipped after a
 * failure): a Parse it never prepared is forgotten by server and client. */
void relay_forget_reply(struct relay_leg *leg, struct reply *r, bool failed)
{
	if (failed && r->kind == RK_PARSE) {
		if (r->st && !(r->flags & RF_SYNTH))
			stmt_set_remove(&leg->server->stmts, r->st);
		if (r->name && leg->link)
			stmt_names_remove(leg->link->names, r->name);
	}
	stmt_unref(r->st);
	free(r->name);
}

/* After an ErrorResponse PostgreSQL skips every message up to the next
 * Sync: those requests end here, unanswered. */
static void unwind_to_ready(struct relay_leg *leg)
{
	struct reply *h, r;
	while ((h = replies_head(&leg->replies)) && h->kind != RK_READY) {
		replies_pop(&leg->replies, &r);
		relay_forget_reply(leg, &r, true);
	}
}

/* How one reply of the server's is taken. */
/* TAKE_YIELD: taken, and the scan pauses (PgCrab sent the client something) */
enum take { TAKE_PASS, TAKE_WAIT, TAKE_BAD, TAKE_FATAL, TAKE_HIDDEN_FAILED, TAKE_YIELD };

/* ReadyForQuery: the request it answers is done, and those PostgreSQL
 * skipped after an error with it. Exactly one status byte, one PgCrab
 * knows: a shorter message made us read the next message's first byte (or
 * past the buffer) as the status (found by fuzz_server). */
static enum take take_ready(struct relay_leg *leg, const uint8_t *body, uint32_t total)
{
	if (total != PROTO_HEADER_LEN + 1 || (body[0] != 'I' && body[0] != 'T' && body[0] != 'E'))
		return TAKE_BAD;
	struct reply done;
	unwind_to_ready(leg);
	if (replies_head(&leg->replies)) {
		replies_pop(&leg->replies, &done);
		relay_forget_reply(leg, &done, false);
	}
	if (leg->expect_ready > 0)
		leg->expect_ready--;
	leg->tx_status = (char)body[0];
	leg->copy_in = false;
	leg->ready_seen++;
	relay_retry_ready(leg);
	return TAKE_PASS;
}

/* One reply at pos (total bytes, whole if all of it is in rx): the ledger
 * moves on; *drop when it answers PgCrab's own message. A fatal error is
 * not passed on (the client gets PgCrab's 08006 instead). */
static enum take take_reply(struct relay_leg *leg, uint8_t type, uint32_t pos, uint32_t total,
			    bool whole, bool *drop, char *fatal, size_t fatal_len)
{
	struct conn *c = &leg->server->c;
	const uint8_t *body = c->rx + pos + PROTO_HEADER_LEN;
	struct reply *h = replies_head(&leg->replies);
	bool small = total <= CONN_WHOLE_MAX; /* read whole, to be looked into */
	if (type == 'G' || type == 'W')
		leg->copy_in = true; /* until CopyDone/CopyFail, an error or ReadyForQuery */
	switch (type) {
	case 'Z': {
		if (!whole)
			return TAKE_WAIT;
		unwind_to_ready(leg);
		h = replies_head(&leg->replies);
		/* PgCrab's own query's, or the failed try of a batch sent again */
		bool hide = (h && (h->flags & RF_HIDE)) || relay_retry_firing(leg);
		if (hide && pos != c->rx_start)
			return TAKE_WAIT; /* forward what precedes it first */
		if (relay_retry_firing(leg))
			leg->retry_now = true;
		*drop = hide;
		enum take t = take_ready(leg, body, total);
		if (t == TAKE_PASS && !hide)
			relay_stats_ready(leg, (char)body[0]);
		return t;
	}
	case 'E': {
		if (small && !whole)
			return TAKE_WAIT;
		if (relay_retry_armed(leg) && small) {
			if (pos != c->rx_start)
				return TAKE_WAIT; /* it may be dropped: what precedes goes first */
			if (relay_retry_error(leg, body, total - PROTO_HEADER_LEN)) {
				*drop = true;
				unwind_to_ready(leg);
				return TAKE_PASS;
			}
		}
		struct proto_error_fields f;
		if (small && proto_parse_error(body, total - PROTO_HEADER_LEN, &f) == PROTO_OK
		    && (strcmp(f.severity, "FATAL") == 0 || strcmp(f.severity, "PANIC") == 0)) {
			snprintf(fatal, fatal_len, "%s (%s)", f.message, f.code);
			return TAKE_FATAL;
		}
		if (h && h->kind != RK_READY)
			unwind_to_ready(leg);
		leg->copy_in = false;
		return TAKE_PASS;
	}
	case 'S':
		if (small && !whole)
			return TAKE_WAIT;
		if (small)
			relay_state_report(leg, body, total - PROTO_HEADER_LEN);
		return TAKE_PASS;
	case 'N':
	case 'A':
		return TAKE_PASS;
	}
	if (!h)
		return TAKE_PASS;
	if (h->flags & RF_HIDE) {
		if (pos != c->rx_start)
			return TAKE_WAIT; /* forward what precedes it first */
		*drop = true;
	}
	if (replies_is_last(h->kind, type)) {
		struct reply done;
		replies_pop(&leg->replies, &done);
		relay_forget_reply(leg, &done, false);
	}
	return TAKE_PASS;
}

/* Replies to PgCrab's hidden queries come first (one is sent only when
 * nothing else is owed): read whole, never forwarded. */
static enum take take_hidden(struct relay_leg *leg, uint8_t type, uint32_t pos, uint32_t total)
{
	struct conn *c = &leg->server->c;
	if (total > CONN_WHOLE_MAX || c->rx_start != pos)
		return TAKE_BAD;
	if (c->rx_end - pos < total)
		return TAKE_WAIT;
	int r = relay_state_hidden(leg, type, c->rx + pos + PROTO_HEADER_LEN,
				   total - PROTO_HEADER_LEN);
	c->rx_start = pos + total;
	if (r < 0)
		return TAKE_HIDDEN_FAILED;
	if (r == 1)
		leg->hidden_done = true;
	return r == 2 ? TAKE_YIELD : TAKE_PASS;
}

/* Scans the server's replies, matching each to the request it answers.
 * Stops before a fatal ErrorResponse (the server is about to close: the
 * client gets our 08006 instead), before a message that must be seen whole
 * and is not, before a reply to PgCrab's own message that must be dropped
 * once what precedes it is forwarded, and where PgCrab owes the client a
 * reply of its own. */
int relay_scan_replies(struct relay_leg *leg, char *fatal, size_t fatal_len)
{
	struct conn *c = &leg->server->c;
	uint32_t pos = c->scan_pos;
	enum take t = TAKE_PASS;
	int rc = RELAY_SCAN_DONE;
	while (t == TAKE_PASS) {
		if (c->msg_left) {
			if (pos >= c->rx_end)
				break;
			pos = conn_skip_body(c, pos);
			continue;
		}
		struct reply *h = replies_head(&leg->replies);
		if (h && (h->flags & RF_SYNTH) && leg->hidden_ready == 0) {
			rc = RELAY_SCAN_SYNTH;
			break;
		}
		if (pos >= c->rx_end)
			break;
		uint8_t type;
		uint32_t total;
		enum proto_result r = proto_frame(c->rx + pos, c->rx_end - pos, PROTO_MAX_MESSAGE,
						  &type, &total);
		if (r == PROTO_AGAIN)
			break;
		if (r == PROTO_ERR || !proto_backend_type(type)) {
			t = TAKE_BAD; /* nothing of it reaches the client */
			break;
		}
		if (leg->hidden_ready > 0) {
			t = take_hidden(leg, type, pos, total);
			if (t == TAKE_PASS || t == TAKE_YIELD)
				pos += total;
			continue;
		}
		bool drop = false;
		t = take_reply(leg, type, pos, total, c->rx_end - pos >= total, &drop, fatal,
			       fatal_len);
		if (t == TAKE_PASS)
			pos = conn_pass_header(c, pos, total, drop);
	}
	c->scan_pos = pos;
	if (t == TAKE_BAD)
		return RELAY_SCAN_BAD;
	if (t == TAKE_HIDDEN_FAILED)
		return RELAY_SCAN_HIDDEN_FAILED;
	return t == TAKE_FATAL ? RELAY_SCAN_FATAL : rc;
}

/* ---- server to client -------------------------------------------------- */

/* Sends the client the replies PgCrab gives in place of the server. */
static int answer_for_server(struct relay_leg *leg)
{
	struct conn *cc = leg->link->client;
	struct reply *h, r;
	while ((h = replies_head(&leg->replies)) && (h->flags & RF_SYNTH)) {
		uint8_t msg[5] = { h->kind == RK_PARSE ? '1' : '3', 0, 0, 0, 4 };
		if (conn_queue(cc, msg, sizeof(msg)) != 0)
			return -1;
		replies_pop(&leg->replies, &r);
		relay_forget_reply(leg, &r, false);
	}
	conn_flush_tx(cc);
	return 0;
}

void relay_give_up(struct relay_leg *leg, const char *why)
{
	struct server *s = leg->server;
	s->borrower = NULL;
	s->c.ops = &server_pool_ops; /* what completions are left, the pool ignores */
	relay_leg_free(leg);
	server_close(s, why);
}

/* The server failed while linked: the link loses it, the client is told. */
static void leg_lost(struct relay_leg *leg, const char *why)
{
	struct relay_link *l = leg->link;
	struct server *s = leg->server;
	/* msg_left: a message's header was scanned (and goes or went to the
	 * client), its body is incomplete */
	bool cut = s->c.msg_left > 0 && !s->c.dropping;
	unlink_leg(l, leg);
	relay_give_up(leg, why);
	l->ops->lost(l, why, cut);
}

/* A hidden query failed: a client whose settings the server refused is
 * refused in the server's words (at login, exactly as PostgreSQL would);
 * a server that cannot be reset is closed. */
static void hidden_failed(struct relay_leg *leg)
{
	struct relay_link *l = leg->link;
	if (leg->hidden_failed == RELAY_HIDDEN_SYNC) {
		char code[sizeof(leg->hidden_code)], msg[sizeof(leg->hidden_msg)];
		memcpy(code, leg->hidden_code, sizeof(code));
		memcpy(msg, leg->hidden_msg, sizeof(msg));
		l->ops->failed(l, code, msg);
		return;
	}
	leg_lost(leg, "cannot reset the server's session");
}

static void settle(struct relay_link *l);
static void pump_requests(struct relay_link *l);

/* Forwards what the server sent to its client; called when the link is
 * made, on each recv, and after each send to the client completes. */
static void pump_replies(struct relay_leg *leg)
{
	struct server *s = leg->server;
	struct conn *c = &s->c;
	struct relay_link *l = leg->link;
	char fatal[300];
	if (leg->fan && l) {
		relay_route_server_recv(leg);
		return;
	}
	if (!l || conn_send_busy(l->client) || c->closing)
		return;
	int rc = relay_scan_replies(leg, fatal, sizeof(fatal));
	if (leg->retry_now) {
		leg->retry_now = false;
		if (relay_retry_send(leg) != 0) {
			leg_lost(leg, "cannot send a statement again");
			return;
		}
	}
	if (c->scan_pos > c->rx_start) {
		STATS_ADD(leg_stats(leg)->sent, c->scan_pos - c->rx_start);
		conn_forward(l->client, c, c->scan_pos);
		return; /* the rest when the client's send completes */
	}
	switch (rc) {
	case RELAY_SCAN_SYNTH:
		if (answer_for_server(leg) != 0)
			leg_lost(leg, "out of memory");
		return; /* scanning goes on when that send completes */
	case RELAY_SCAN_FATAL:
		leg_lost(leg, fatal);
		return;
	case RELAY_SCAN_BAD:
		leg_lost(leg, "invalid message from server");
		return;
	case RELAY_SCAN_HIDDEN_FAILED:
		hidden_failed(leg);
		return;
	}
	if (conn_arm_recv(c) != 0) {
		leg_lost(leg, "receive buffer full");
		return;
	}
	if (leg->hidden_done) {
		/* PgCrab's own query is answered: the link may settle now, or
		 * (kept: session mode, pinned) go on with what the client sent */
		leg->hidden_done = false;
		settle(l);
		if ((l->router || l->to == leg) && leg->link == l && !l->client->closing)
			pump_requests(l);
	}
}

/* ---- client to server ---------------------------------------------------- */

enum {
	REQ_OK = 0,
	REQ_INJECTED = 1, /* PgCrab's own messages go to the server first */
	REQ_HOLD = 2,     /* not now: PgCrab's own query is answered first */
	REQ_BAD_LEN = -1,
	REQ_BAD_TYPE = -2,
	REQ_OOM = -3,
};

/* Scans newly received client bytes up to the next message header that is
 * not complete, recording what the server will owe for each message. Stops
 * before Terminate, and where PgCrab must send its own messages first. */
static int scan_requests(struct relay_link *l, struct relay_leg *leg)
{
	struct conn *c = l->client;
	uint32_t max = (uint32_t)c->w->cfg->max_packet_size;
	uint32_t pos = c->scan_pos;
	int rc = REQ_OK;
	while (pos < c->rx_end) {
		if (c->msg_left) {
			pos = conn_skip_body(c, pos);
			continue;
		}
		if (rc == REQ_INJECTED)
			break;
		if (l->router && l->unit_msgs == 0 && !leg->copy_in)
			break; /* the routed unit is passed on; the next is routed anew */
		uint8_t type;
		uint32_t total;
		enum proto_result r = proto_frame(c->rx + pos, c->rx_end - pos, max, &type, &total);
		if (r == PROTO_AGAIN)
			break;
		if (r == PROTO_ERR) {
			rc = REQ_BAD_LEN;
			break;
		}
		bool drop = false;
		uint8_t ready = 0;
		if (leg->hidden == RELAY_HIDDEN_PROBE || leg->hidden == RELAY_HIDDEN_DISCARD) {
			/* the transaction is over and PgCrab is asking about or
			 * resetting its session: the next request waits for that */
			rc = REQ_HOLD;
			break;
		}
		if (leg->resync && leg->tx_status != 'E' && !leg->unsynced && !relay_leg_awaits(leg)
		    && pos == c->rx_start) {
			/* a RESET returned a setting to the server's default: the
			 * client's startup value goes back first */
			if (relay_sync_params(leg) != 0) {
				rc = REQ_OOM;
				break;
			}
			if (leg->hidden_ready > 0) {
				rc = REQ_INJECTED;
				break;
			}
		}
		if (type == 'Q' || type == 'P') {
			switch (relay_state_request(l, leg, type, pos, total, &drop)) {
			case STATE_OK:
				break;
			case STATE_WAIT:
				goto out;
			case STATE_OOM:
				rc = REQ_OOM;
				goto out;
			case STATE_REFUSED:
				rc = REQ_INJECTED; /* the server raises the refusal in its place */
				if (type == 'P') {
					leg->unsynced = true;
					pos = conn_pass_header(c, pos, total, drop);
					continue;
				}
				break;
			}
		}
		switch (type) {
		case 'S':
			leg->unsynced = false;
			leg->unsynced_exec = false;
			ready = 1;
			break;
		case 'Q':
		case 'F':
			ready = 1;
			break;
		case 'H':
			leg->unsynced = true;
			break;
		case 'E':
			leg->unsynced = true;
			leg->unsynced_exec = true;
			if (replies_push(&leg->replies, RK_EXECUTE, 0, NULL, NULL) != 0)
				rc = REQ_OOM;
			break;
		case 'c':
		case 'f':
			leg->copy_in = false; /* the COPY ends with what PostgreSQL says next */
			break;
		case 'd':
			break;
		case 'P':
		case 'B':
		case 'D':
		case 'C':
			leg->unsynced = true;
			switch (prepared_request(l, leg, type, pos, &total, &drop)) {
			case PREP_OK:
				break;
			case PREP_REPLACED:
				rc = REQ_INJECTED;
				break;
			case PREP_INJECTED:
				rc = REQ_INJECTED;
				goto out;
			case PREP_WAIT:
				goto out;
			case PREP_OOM:
				rc = REQ_OOM;
				goto out;
			case PREP_BAD:
				rc = REQ_BAD_LEN;
				goto out;
			}
			break;
		case 'X':
			l->terminate = true;
			goto out;
		default:
			rc = REQ_BAD_TYPE;
			goto out;
		}
		if (prepared_enabled(c->w->cfg) && rc != REQ_OOM)
			relay_retry_scan(l, leg, type, pos, total, drop);
		if (ready) {
			leg->expect_ready++;
			if (replies_push(&leg->replies, RK_READY, 0, NULL, NULL) != 0)
				rc = REQ_OOM;
		}
		if (rc == REQ_OOM)
			break;
		if (l->unit_msgs > 0)
			l->unit_msgs--;
		pos = conn_pass_header(c, pos, total, drop);
	}
out:
	c->scan_pos = pos;
	return rc;
}

static void arm_client(struct relay_link *l)
{
	if (conn_arm_recv(l->client) != 0)
		l->ops->failed(l, "08P01", "message too large for the connection buffer");
}

/* After Terminate, what the client sent before it is answered first, as
 * PostgreSQL would, and the client is finished when nothing more is owed
 * (then an open transaction is rolled back as it leaves). While it waits,
 * its recv stays armed so that a client that closes its end (libpq's
 * PQfinish sends Terminate and closes) is seen to have left, and what it
 * still runs is cancelled. Bytes behind Terminate are dropped. */
static void terminating(struct relay_link *l, struct relay_leg *leg)
{
	struct conn *c = l->client;
	c->rx_end = c->scan_pos;
	/* an Execute without Sync is never answered in full: PostgreSQL would
	 * abort it at Terminate, and so does the cleanup */
	if (!relay_leg_owes(leg) || leg->unsynced) {
		l->ops->finished(l);
		return;
	}
	pump_replies(leg);
	if (!c->closing && l->to == leg)
		arm_client(l);
}

static void pump_requests(struct relay_link *l)
{
	if (l->router)
		relay_route_pump(l);
	else
		relay_pump_leg(l);
}

/* Forwards what the client sent to the leg requests go to. */
void relay_pump_leg(struct relay_link *l)
{
	struct relay_leg *leg = l->to;
	struct conn *c = l->client;
	if (!leg || conn_send_busy(&leg->server->c) || c->recv_armed || c->closing || l->quiet)
		return; /* called again when that send completes, or bytes arrive */
	if (l->terminate) {
		terminating(l, leg);
		return;
	}
	int r = scan_requests(l, leg);
	if (c->scan_pos > c->rx_start) {
		relay_stats_request(leg, c->scan_pos - c->rx_start);
		conn_forward(&leg->server->c, c, c->scan_pos);
		return; /* the rest after the send completes */
	}
	char msg[80];
	switch (r) {
	case REQ_INJECTED:
		conn_flush_tx(&leg->server->c);
		return;
	case REQ_HOLD:
		return; /* pumped again when the hidden query is answered */
	case REQ_BAD_LEN:
		l->ops->failed(l, "08P01", "invalid message length");
		return;
	case REQ_BAD_TYPE:
		snprintf(msg, sizeof(msg), "invalid frontend message type %d", c->rx[c->scan_pos]);
		l->ops->failed(l, "08P01", msg);
		return;
	case REQ_OOM:
		l->ops->failed(l, "53200", "out of memory");
		return;
	}
	if (l->terminate) {
		terminating(l, leg);
		return;
	}
	arm_client(l);
	if (c->closing || l->to != leg)
		return;
	pump_replies(leg); /* PgCrab may owe the client an answer of its own */
	if (l->to == leg)
		settle(l);
}

/* The link settles once every leg is clean and nothing is on its way to
 * the client; checked after every send between the two ends completes. */
static void settle(struct relay_link *l)
{
	struct conn *c = l->client;
	if (!l->legs || c->msg_left != 0 || conn_send_busy(c) || c->closing)
		return;
	if (l->router && !relay_route_idle(l))
		return; /* a unit or a transaction across shards is under way */
	if (l->terminate) {
		for (struct relay_leg *leg = l->legs; leg; leg = leg->next)
			if (relay_leg_owes(leg))
				return;
		l->ops->finished(l); /* the link ends with the client: cleaned, not handed on */
		return;
	}
	for (struct relay_leg *leg = l->legs; leg; leg = leg->next)
		if (!leg_clean(leg))
			return;
	/* the session first: reset it, or ask the server what it holds */
	for (struct relay_leg *leg = l->legs; leg; leg = leg->next) {
		int r = relay_state_settle(leg);
		if (r < 0) {
			leg_lost(leg, "cannot send a hidden query");
			return;
		}
		if (r > 0)
			return; /* settled again when it is answered */
	}
	l->ops->settled(l);
}

void relay_settle(struct relay_link *l)
{
	settle(l);
}

void relay_pump_replies(struct relay_leg *leg)
{
	pump_replies(leg);
}

void relay_leg_lost(struct relay_leg *leg, const char *why)
{
	leg_lost(leg, why);
}

void relay_attach(struct relay_link *l, struct server *s)
{
	struct relay_leg *leg = relay_leg_new();
	if (!leg) {
		server_close(s, "out of memory");
		l->ops->failed(l, "53200", "out of memory");
		return;
	}
	leg->server = s;
	leg->link = l;
	leg->shard = -1;
	leg->next = l->legs;
	l->legs = leg;
	l->to = leg;
	s->borrower = leg;
	s->c.ops = &relay_server_ops;
	if (relay_sync_params(leg) != 0) {
		leg_lost(leg, "cannot bring session parameters in line");
		return;
	}
	if (l->quiet) {
		/* a login's check: done at once if the server has them already */
		if (leg->hidden_ready == 0)
			settle(l);
		return;
	}
	pump_requests(l);
	if (!l->client->closing && l->to == leg && leg->link)
		pump_replies(leg);
}

void relay_client_recv(struct relay_link *l)
{
	pump_requests(l);
}

void relay_client_sent(struct relay_link *l)
{
	if (l->router) {
		relay_route_pump(l);
		return;
	}
	/* after forwarded replies, or replies PgCrab gave itself */
	struct relay_leg *leg = l->to;
	if (!leg)
		return;
	settle(l);
	if (l->to == leg && leg->link)
		pump_replies(leg);
}

void relay_release(struct relay_link *l)
{
	struct relay_leg *leg;
	while ((leg = l->legs)) {
		struct server *s = leg->server;
		unlink_leg(l, leg);
		relay_leg_free(leg);
		pool_release(s);
	}
}

bool relay_detach(struct relay_link *l)
{
	bool mid_reply = false;
	/* cut: the client's bytes to the server end inside a message */
	bool cut = l->client->msg_left > 0 && !l->client->dropping;
	struct relay_leg *leg;
	while ((leg = l->legs)) {
		struct server *s = leg->server;
		mid_reply |= s->c.msg_left > 0 && !s->c.dropping;
		bool to = l->to == leg;
		/* state the client's session may hold goes with it */
		if (l->pinned || leg->dirty)
			leg->discard = true;
		leg->unusable = ((l->pinned | leg->dirty) & QUERY_LOAD) != 0;
		unlink_leg(l, leg);
		relay_cleanup_start(leg, cut && to);
	}
	return mid_reply;
}

void relay_cancel(struct relay_link *l)
{
	for (struct relay_leg *leg = l->legs; leg; leg = leg->next)
		server_cancel_query(leg->server, NULL);
}

bool relay_idle_in_transaction(const struct relay_link *l)
{
	for (struct relay_leg *leg = l->legs; leg; leg = leg->next)
		if (leg->tx_status != 'I' && leg->replies.count == 0)
			return true;
	return false;
}

bool relay_between_transactions(const struct relay_link *l)
{
	for (struct relay_leg *leg = l->legs; leg; leg = leg->next)
		if (leg->tx_status != 'I' || leg->replies.count != 0)
			return false;
	return true;
}

/* ---- the server connection while lent ----------------------------------- */

static void server_on_recv(struct conn *c, int res)
{
	struct server *s = container_of_server(c);
	struct relay_leg *leg = s->borrower;
	c->recv_armed = false;
	if (c->closing)
		return;
	if (res <= 0) {
		const char *why = res == 0 ? "server closed the connection" : strerror(-res);
		if (leg->link)
			leg_lost(leg, why);
		else
			relay_give_up(leg, why);
		return;
	}
	c->rx_end += (uint32_t)res;
	if (leg->link)
		pump_replies(leg);
	else
		relay_cleanup_recv(leg);
}

static void server_on_sent(struct conn *c, enum send_src src, struct conn *owner, int err)
{
	struct server *s = container_of_server(c);
	struct relay_leg *leg = s->borrower;
	if (c->closing)
		return;
	if (err) {
		if (leg->link)
			leg_lost(leg, "send to server failed");
		else
			relay_give_up(leg, "send to server failed");
		return;
	}
	if (c->tx_len > 0) {
		conn_flush_tx(c);
		return;
	}
	/* the client may have more to send, or may be done with us */
	if (leg->link)
		pump_requests(leg->link);
	else
		relay_cleanup_sent(leg);
}

/* A lent server closed by its pool (shutdown closes every server, those
 * being cleaned too): its leg goes with it. */
static void server_on_free(struct conn *c)
{
	struct server *s = container_of_server(c);
	struct relay_leg *leg = s->borrower;
	if (leg) {
		if (leg->link)
			unlink_leg(leg->link, leg);
		relay_leg_free(leg);
	}
	server_free(s);
}

const struct conn_ops relay_server_ops = {
	.on_recv = server_on_recv,
	.on_sent = server_on_sent,
	.on_free = server_on_free,
};
