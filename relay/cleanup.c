/* A server whose client left, however it left, goes back to its pool
 * clean or is closed: owed replies are read and dropped, what still runs
 * is cancelled (cancel_on_client_exit), COPY FROM STDIN is failed, an open
 * transaction rolled back and, in session mode, the session reset. */
#include <stdio.h>
#include <stdlib.h>

#include "core/log.h"
#include "core/worker.h"
#include "pool/pool.h"
#include "proto/proto.h"
#include "relay/relay.h"

/* steps taken, in leg->cleanup */
#define CLEANUP_WANT_CANCEL 1u /* cancel what runs once it may (cleanup_may_cancel) */
#define CLEANUP_ROLLBACK    2u
#define CLEANUP_DISCARD     4u

#define CLEANUP_RETRY_MS 1000 /* a ROLLBACK or DISCARD has 5 times this */
#define CLEANUP_FIRST_RETRY_MS \
	250 /* a cancel that has not worked is sent again after
				       250, then 500 ms; 1 s after the third, give up */
#define CLEANUP_CANCEL_TRIES 3

static void cleanup_step(struct relay_leg *leg);

/* Reads and drops whatever the server sent: nobody is listening now. */
static int drain_replies(struct relay_leg *leg, char *fatal, size_t fatal_len)
{
	struct conn *c = &leg->server->c;
	for (;;) {
		uint32_t before = c->scan_pos;
		int rc = relay_scan_replies(leg, fatal, fatal_len);
		if (c->rx_start < c->scan_pos)
			c->rx_start = c->scan_pos;
		if (rc == RELAY_SCAN_SYNTH) {
			/* replies PgCrab would have made up for the client */
			struct reply *h, r;
			while ((h = replies_head(&leg->replies)) && (h->flags & RF_SYNTH)) {
				replies_pop(&leg->replies, &r);
				relay_forget_reply(leg, &r, false);
			}
			continue;
		}
		if (rc != RELAY_SCAN_DONE || c->scan_pos == before)
			return rc;
	}
}

static void arm_timer_ms(struct relay_leg *leg, uint64_t ms)
{
	struct worker *w = leg->server->c.w;
	timer_arm(&w->timers, &leg->timer, w->now_ms + ms);
}

static void arm_timer(struct relay_leg *leg)
{
	arm_timer_ms(leg, CLEANUP_RETRY_MS);
}

static void hidden_query(struct relay_leg *leg, const char *sql)
{
	struct server *s = leg->server;
	uint8_t buf[256];
	struct proto_writer wr = proto_writer_init(buf, sizeof(buf));
	proto_build_query(&wr, sql);
	leg->expect_ready++;
	arm_timer_ms(leg, CLEANUP_RETRY_MS * 5); /* a ROLLBACK or DISCARD has that long */
	if (wr.overflow || replies_push(&leg->replies, RK_READY, RF_HIDE, NULL, NULL) != 0
	    || conn_queue(&s->c, wr.p, wr.len) != 0) {
		relay_give_up(leg, "cannot send a reset query");
		return;
	}
	conn_flush_tx(&s->c);
	if (conn_arm_recv(&s->c) != 0)
		relay_give_up(leg, "receive buffer full");
}

/* Not while PgCrab's own SETs run (a cancelled one would leave the
 * parameters PgCrab thinks the server has wrong), nor before the client's
 * last bytes are sent (it would land before the query it is meant for). */
static bool cleanup_may_cancel(const struct relay_leg *leg)
{
	return leg->hidden_ready == 0 && !conn_send_busy(&leg->server->c) && !leg->cancel_pending;
}

static void cancel_done(struct server *s)
{
	struct relay_leg *leg = s->borrower;
	if (!leg || s->c.closing)
		return; /* it was given up meanwhile */
	leg->cancel_pending = false;
	cleanup_step(leg);
}

static void send_cancel(struct relay_leg *leg)
{
	leg->cleanup &= ~CLEANUP_WANT_CANCEL;
	leg->cancels_sent++;
	/* the next try, or giving up, counts from here: a cancel that came
	 * before the backend read the query is tried again soon, then later */
	arm_timer_ms(leg, (uint64_t)CLEANUP_FIRST_RETRY_MS << (leg->cancels_sent - 1));
	/* none could be sent (no descriptor): the timer tries again */
	leg->cancel_pending = server_cancel_query(leg->server, cancel_done) == 0;
}

/* One step: drop replies until nothing is owed (cancelling what still
 * runs), wait until the cancel has surely landed, roll back an open
 * transaction, reset a session-mode server, then release. Called again on
 * every completion of the server and when the cancel has landed. */
static void cleanup_step(struct relay_leg *leg)
{
	struct server *s = leg->server;
	struct conn *c = &s->c;
	const struct cfg *cfg = c->w->cfg;
	char fatal[300];
	if (c->closing)
		return;
	int rc = drain_replies(leg, fatal, sizeof(fatal));
	if (rc == RELAY_SCAN_FATAL || rc == RELAY_SCAN_BAD || rc == RELAY_SCAN_HIDDEN_FAILED) {
		relay_give_up(leg,
			      rc == RELAY_SCAN_FATAL         ? fatal
				      : rc == RELAY_SCAN_BAD ? "invalid message from server"
							     : "cannot reset the server's session");
		return;
	}
	bool still_owed = relay_leg_awaits(leg);
	if (!still_owed)
		leg->cleanup &= ~CLEANUP_WANT_CANCEL;
	if ((leg->cleanup & CLEANUP_WANT_CANCEL) && cleanup_may_cancel(leg)) {
		send_cancel(leg);
		if (c->closing)
			return;
	}
	if (still_owed) {
		if (conn_arm_recv(c) != 0)
			relay_give_up(leg, "receive buffer full");
		return;
	}
	if (conn_send_busy(c) || leg->cancel_pending)
		return; /* stepped again when the send completes or the cancel has landed */
	if (leg->tx_status != 'I') {
		if (leg->cleanup & CLEANUP_ROLLBACK) {
			relay_give_up(leg, "ROLLBACK left a transaction open");
			return;
		}
		leg->cleanup |= CLEANUP_ROLLBACK;
		hidden_query(leg, "ROLLBACK");
		return;
	}
	if (leg->unusable) {
		/* no reset unloads a library, and no other client may see it */
		relay_give_up(leg, "its session loaded a library (LOAD)");
		return;
	}
	const char *reset = cfg->server_reset_query;
	if (leg->discard && cfg->pool_mode == CFG_POOL_TRANSACTION)
		reset = "DISCARD ALL"; /* the session held state nobody carries */
	if ((cfg->pool_mode == CFG_POOL_SESSION || leg->discard)
	    && !(leg->cleanup & CLEANUP_DISCARD) && reset && reset[0]) {
		params_clear(&s->have); /* DISCARD ALL resets them all */
		stmt_set_clear(&s->stmts);
		leg->cleanup |= CLEANUP_DISCARD;
		hidden_query(leg, reset);
		return;
	}
	relay_leg_free(leg);
	pool_release(s);
}

/* A cancel can come too early (the backend had not read the query yet, so
 * it ignored it) or be lost: try again while replies are owed (after 250,
 * then 500 ms), then give up on the connection. A ROLLBACK or DISCARD that hangs as long
 * goes the same way. With cancel_on_client_exit off a query runs its course. */
static void cleanup_timer_fired(struct timer *t)
{
	struct relay_leg *leg = container_of(t, struct relay_leg, timer);
	if (leg->server->c.closing)
		return;
	if (leg->cancel_pending) {
		arm_timer(leg);
		return;
	}
	bool cancelling = leg->cancels_sent > 0 || (leg->cleanup & CLEANUP_WANT_CANCEL);
	if (relay_leg_awaits(leg) && cancelling && leg->cancels_sent < CLEANUP_CANCEL_TRIES
	    && cleanup_may_cancel(leg)) {
		send_cancel(leg);
		return;
	}
	if (!cancelling && !(leg->cleanup & (CLEANUP_ROLLBACK | CLEANUP_DISCARD)))
		return; /* cancel_on_client_exit = off: the query runs its course */
	relay_give_up(leg, "still busy after its client left and cancels were sent");
}

void relay_cleanup_recv(struct relay_leg *leg)
{
	cleanup_step(leg);
}

void relay_cleanup_sent(struct relay_leg *leg)
{
	cleanup_step(leg);
}

void relay_cleanup_start(struct relay_leg *leg, bool cut)
{
	struct server *s = leg->server;
	const struct cfg *cfg = s->c.w->cfg;
	bool busy = relay_leg_owes(leg);
	timer_init(&leg->timer, cleanup_timer_fired);
	if (cut || leg->unsynced_exec) {
		/* Its input ends inside a message, or holds an Execute whose
		 * implicit transaction only a Sync would end, and a Sync commits.
		 * Closing makes PostgreSQL abort, as for the client itself; the
		 * cancel stops a running query now rather than when it ends. */
		if (busy && cfg->cancel_on_client_exit && !leg->copy_in)
			server_cancel_query(s, NULL);
		relay_give_up(leg,
			      cut ? "client left mid-message"
				  : "client left an Execute without Sync");
		return;
	}
	server_set_state(s, SERVER_RESET);
	uint8_t buf[64];
	struct proto_writer wr = proto_writer_init(buf, sizeof(buf));
	if (leg->copy_in) {
		/* ignored by PostgreSQL if the COPY ended meanwhile */
		size_t m = proto_msg_begin(&wr, 'f');
		proto_put_cstr(&wr, "client left");
		proto_msg_end(&wr, m);
	}
	if (leg->unsynced) {
		/* only Parse/Bind/Describe since the last Sync: ending them commits nothing */
		size_t m = proto_msg_begin(&wr, 'S');
		proto_msg_end(&wr, m);
		leg->expect_ready++;
		leg->unsynced = false;
		if (replies_push(&leg->replies, RK_READY, RF_HIDE, NULL, NULL) != 0) {
			relay_give_up(leg, "out of memory");
			return;
		}
	}
	if (wr.len > 0) {
		if (wr.overflow || conn_queue(&s->c, wr.p, wr.len) != 0) {
			relay_give_up(leg, "cannot end the client's request");
			return;
		}
		conn_flush_tx(&s->c);
	}
	if (busy && cfg->cancel_on_client_exit && !leg->copy_in) {
		leg->cleanup |= CLEANUP_WANT_CANCEL;
		arm_timer(leg);
	} else if (busy) {
		timer_disarm(&leg->timer);
	}
	cleanup_step(leg);
}
