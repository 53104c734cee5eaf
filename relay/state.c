/* Session state under transaction pooling: what a client's statements do
 * to the server session they run on, and what PgCrab does about it.
 *
 * - Settings: the client's wanted values (its startup parameters, then what
 *   its statements made of them) are brought onto each server it is given
 *   with one hidden set_config statement. Which values a transaction left
 *   is not guessed from the statements (a SET can roll back, sit in a
 *   savepoint, be LOCAL, or hide in a function): after a transaction whose
 *   statements may have changed any, the server is asked, hidden, before it
 *   goes back to its pool (the probe). RESET returns to the client's startup
 *   value, as in PostgreSQL, by a hidden set_config before its next request.
 * - State that cannot follow the client to another server (temporary
 *   objects, LISTEN, session advisory locks, SQL PREPARE, WITH HOLD cursors,
 *   LOAD) pins the client to its server while the probe finds it there
 *   (pin_session_state = on), is refused (error), or is dropped with a
 *   DISCARD ALL before the server goes back (off).
 *
 * The classifier (query/) says which statements may do any of this; a
 * statement it does not flag costs nothing here. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "core/log.h"
#include "core/worker.h"
#include "pool/pool.h"
#include "proto/proto.h"
#include "query/classify.h"
#include "relay/prepared.h"
#include "relay/relay.h"

/* What the probe asks, and how each pin shows in its answer. */
#define PROBE_PINS                                                                                   \
	"pg_catalog.concat_ws(' ', "                                                                 \
	"CASE WHEN EXISTS (SELECT 1 FROM pg_catalog.pg_class "                                       \
	"WHERE relnamespace = pg_catalog.pg_my_temp_schema()) OR EXISTS (SELECT 1 FROM "             \
	"pg_catalog.pg_proc WHERE pronamespace = pg_catalog.pg_my_temp_schema()) OR EXISTS (SELECT " \
	"1 FROM pg_catalog.pg_type WHERE typnamespace = pg_catalog.pg_my_temp_schema()) OR EXISTS "  \
	"(SELECT 1 FROM pg_catalog.pg_statistic_ext WHERE stxnamespace = "                           \
	"pg_catalog.pg_my_temp_schema()) THEN 'temp' END, "                                          \
	"CASE WHEN EXISTS (SELECT 1 FROM pg_catalog.pg_listening_channels()) THEN 'listen' END, "    \
	"CASE WHEN EXISTS (SELECT 1 FROM pg_catalog.pg_locks WHERE locktype = 'advisory' "           \
	"AND pid = pg_catalog.pg_backend_pid()) THEN 'advisory' END, "                               \
	"CASE WHEN EXISTS (SELECT 1 FROM pg_catalog.pg_prepared_statements WHERE from_sql) "         \
	"THEN 'prepare' END, "                                                                       \
	"CASE WHEN EXISTS (SELECT 1 FROM pg_catalog.pg_cursors WHERE is_holdable) "                  \
	"THEN 'cursor' END)"

static const struct {
	const char *word;
	unsigned pin;
} probe_pins[] = {
	{ "temp", QUERY_TEMP },          { "listen", QUERY_LISTEN },
	{ "advisory", QUERY_ADVISORY },  { "prepare", QUERY_PREPARE },
	{ "cursor", QUERY_HOLD_CURSOR },
};

/* What makes the probe worth its round trip. */
#define PROBE_EFFECTS \
	(QUERY_SETS | QUERY_RESETS | QUERY_PINS | QUERY_UNPIN | QUERY_DISCARD_ALL | QUERY_UNKNOWN)

static bool tracked(const struct conn *c)
{
	return c->w->cfg->pool_mode == CFG_POOL_TRANSACTION;
}

/* ---- hidden queries ------------------------------------------------------- */

static void resets_done(struct relay_link *l);

int relay_send_hidden(struct relay_leg *leg, uint8_t kind, const char *sql)
{
	struct server *s = leg->server;
	size_t n = strlen(sql);
	uint8_t hdr[PROTO_HEADER_LEN] = { 'Q', (uint8_t)((n + 5) >> 24), (uint8_t)((n + 5) >> 16),
					  (uint8_t)((n + 5) >> 8), (uint8_t)(n + 5) };
	if (conn_queue(&s->c, hdr, sizeof(hdr)) != 0 || conn_queue(&s->c, sql, n + 1) != 0)
		return -1;
	conn_flush_tx(&s->c);
	leg->hidden = kind;
	leg->hidden_ready++;
	leg->hidden_code[0] = '\0';
	return conn_arm_recv(&s->c);
}

int relay_sync_params(struct relay_leg *leg)
{
	struct server *s = leg->server;
	struct relay_link *l = leg->link;
	leg->resync = false;
	const struct param_set *want = l->want;
	struct param_set held = { 0 };
	struct relay_resets *r = l->resets;
	if (leg->tx_status != 'I' && r && tracked(&s->c)) {
		/* inside a transaction only the settings its RESETs returned
		 * to their startup values go back, not those a local value hides
		 * until the transaction ends; the rest is what the server has
		 * (the client's own SETs in it included: the server is asked at
		 * its end) */
		if (r->hold_reset_all) {
			leg->resync = true;
			return 0;
		}
		if (params_assign(&held, r->reset_all_pending ? l->want : &s->have) != 0)
			return -1;
		bool oom = false;
		for (int i = 0; i < r->n_reset_pending && !r->reset_all_pending; i++) {
			const char *name = r->reset_pending[i];
			oom |= params_set(&held, name, params_get(l->want, name)) != 0;
		}
		for (int i = 0; i < r->n_reset_pending && r->reset_all_pending; i++) {
			const char *name = r->reset_pending[i] + 1; /* "!name": kept */
			oom |= params_set(&held, name, params_get(&s->have, name)) != 0;
		}
		for (int i = 0; i < r->hold_reset.n; i++) {
			const char *name = r->hold_reset.v[i].name;
			oom |= params_set(&held, name, params_get(&s->have, name)) != 0;
		}
		if (oom) {
			params_clear(&held);
			return -1;
		}
		want = &held;
		leg->resync = true; /* the rest once the transaction is over */
	} else if (leg->tx_status == 'I' && r) {
		params_clear(&r->hold_reset);
		r->hold_reset_all = false;
	}
	int n = params_sync_sql(want, &s->have, NULL, 0);
	if (n <= 0) {
		params_clear(&held);
		return n;
	}
	leg->tell_client = l->tell_reports;
	l->tell_reports = false;
	if (!tracked(&s->c) && l->resets) {
		/* session mode asks the server nothing: what a RESET left is
		 * settled by this statement */
		l->resets->reset_all_pending = false;
		l->resets->n_reset_pending = 0;
		params_clear(&l->resets->reset_before);
	}
	char *sql = malloc((size_t)n + 1);
	int rc = -1;
	/* the server has them once the statement is on its way; if it fails,
	 * the client is failed and the server reset (relay_state_hidden) */
	if (sql && params_sync_sql(want, &s->have, sql, (size_t)n + 1) == n
	    && params_assign(&s->have, want) == 0)
		rc = relay_send_hidden(leg, RELAY_HIDDEN_SYNC, sql);
	free(sql);
	params_clear(&held);
	return rc;
}

/* name as one SQL literal into out (cap bytes); false if it does not fit */
static bool quote_literal(const char *name, char *out, size_t cap)
{
	size_t q = 0;
	if (cap < 3)
		return false;
	out[q++] = '\'';
	for (const char *p = name; *p; p++) {
		if (q + 3 >= cap)
			return false;
		if (*p == '\'')
			out[q++] = '\'';
		out[q++] = *p;
	}
	out[q++] = '\'';
	out[q] = '\0';
	return true;
}

static int send_probe(struct relay_leg *leg)
{
	struct server *s = leg->server;
	const struct param_set *custom = &leg->link->custom;
	char user[200];
	if (!quote_literal(server_user(s), user, sizeof(user)))
		return -1;
	size_t cap = 2048 + (size_t)custom->n * (4 * QUERY_NAME_MAX + 160);
	char *sql = malloc(cap);
	if (!sql)
		return -1;
	int n = snprintf(
		sql, cap,
		"SELECT name, pg_catalog.current_setting(name), "
		"coalesce(setting = reset_val, false) FROM pg_catalog.pg_settings WHERE "
		"source = 'session' UNION ALL SELECT 'session_authorization', "
		"pg_catalog.current_setting('session_authorization'), false WHERE "
		"session_user <> %s UNION ALL SELECT 'role', pg_catalog.current_setting('role'), "
		"false WHERE pg_catalog.current_setting('role') <> 'none' UNION ALL SELECT '', " PROBE_PINS
		", false",
		user);
	/* pg_settings lists no custom setting: those the client set are asked by name */
	for (int i = 0; i < custom->n && n > 0 && (size_t)n < cap; i++) {
		char name[2 * QUERY_NAME_MAX + 3];
		if (!quote_literal(custom->v[i].name, name, sizeof(name)))
			continue;
		n += snprintf(
			sql + n, cap - (size_t)n,
			" UNION ALL SELECT %s, pg_catalog.current_setting(%s, true), false WHERE "
			"pg_catalog.current_setting(%s, true) IS NOT NULL",
			name, name, name);
	}
	int rc = -1;
	if (n > 0 && (size_t)n < cap) {
		params_clear(&leg->probed);
		leg->probed_pins = 0;
		rc = relay_send_hidden(leg, RELAY_HIDDEN_PROBE, sql);
	}
	free(sql);
	return rc;
}

int relay_state_settle(struct relay_leg *leg)
{
	struct server *s = leg->server;
	if (!leg->link || !tracked(&s->c))
		return 0;
	int rc;
	if (leg->discard) {
		/* state nobody carries: gone before anyone else gets the server */
		params_clear(&s->have);
		stmt_set_clear(&s->stmts);
		leg->discard = false;
		leg->dirty = 0;
		resets_done(leg->link);
		rc = relay_send_hidden(leg, RELAY_HIDDEN_DISCARD, "DISCARD ALL");
	} else if (leg->dirty & PROBE_EFFECTS) {
		rc = send_probe(leg);
	} else {
		return 0;
	}
	return rc == 0 ? 1 : -1;
}

/* ---- the answers ------------------------------------------------------------ */

static bool pass_on(struct relay_leg *leg, uint8_t type, const uint8_t *body, uint32_t len);

static void note_error(struct relay_leg *leg, const uint8_t *body, uint32_t len)
{
	struct proto_error_fields f;
	if (leg->hidden_code[0])
		return; /* the first error is the one that counts */
	if (proto_parse_error(body, len, &f) == PROTO_OK) {
		snprintf(leg->hidden_code, sizeof(leg->hidden_code), "%s", f.code);
		snprintf(leg->hidden_msg, sizeof(leg->hidden_msg), "%s", f.message);
	} else {
		snprintf(leg->hidden_code, sizeof(leg->hidden_code), "XX000");
		snprintf(leg->hidden_msg, sizeof(leg->hidden_msg), "unreadable error from server");
	}
}

static bool reset_pending(const struct relay_link *l, const char *name);

/* A probe's row: a setting, its value, and whether that is the server's
 * reset value; or ('', the pins found, false). */
static void note_row(struct relay_leg *leg, const uint8_t *body, uint32_t len)
{
	struct proto_reader r = proto_reader_init(body, len);
	if (proto_get_i16(&r) != 3)
		return;
	char name[QUERY_NAME_MAX + 1], value[4096], is_reset[8];
	char *cols[] = { name, value, is_reset };
	size_t caps[] = { sizeof(name), sizeof(value), sizeof(is_reset) };
	for (int col = 0; col < 3; col++) {
		int32_t n = proto_get_i32(&r);
		const uint8_t *p = proto_get_bytes(&r, n < 0 ? 0 : (uint32_t)n);
		if (n < 0 || !p || (size_t)n >= caps[col]) {
			note_error(leg, NULL, 0); /* too long to carry: reset instead */
			return;
		}
		memcpy(cols[col], p, (size_t)n);
		cols[col][n] = '\0';
	}
	if (name[0] == '\0') {
		for (size_t i = 0; i < sizeof(probe_pins) / sizeof(probe_pins[0]); i++)
			if (strstr(value, probe_pins[i].word))
				leg->probed_pins |= probe_pins[i].pin;
		return;
	}
	/* the server's default marked as set by the session: a RESET this
	 * transaction ran (then masked by a SET LOCAL) returned it there, but
	 * the client's RESET returns to its startup value */
	if (is_reset[0] == 't' && leg->link && reset_pending(leg->link, name)) {
		/* ...unless the client had that very value before (the RESET
		 * rolled back, or the value was its own) */
		const char *before = params_get(&leg->link->resets->reset_before, name);
		if (!before || strcmp(before, value) != 0)
			return;
	}
	if (params_set(&leg->probed, name, value) != 0)
		note_error(leg, NULL, 0);
}

/* The probe is answered: the server's session is what the client has
 * now. Its settings become the client's wanted values, with the startup
 * value for every setting the session no longer holds (RESET returns there). */
/* The transaction's RESETs are settled: the server said what holds, or
 * was reset. */
static void resets_done(struct relay_link *l)
{
	if (!l->resets)
		return;
	l->resets->reset_all_pending = false;
	l->resets->n_reset_pending = 0;
	params_clear(&l->resets->reset_before);
	params_clear(&l->resets->hold_reset);
	l->resets->hold_reset_all = false;
}

static void probe_done(struct relay_leg *leg)
{
	struct relay_link *l = leg->link;
	struct server *s = leg->server;
	const struct cfg *cfg = s->c.w->cfg;
	unsigned sticky = (leg->dirty | l->pinned) & QUERY_LOAD; /* a LOAD cannot be undone */
	leg->dirty = 0;
	resets_done(l);
	if (leg->hidden_code[0]) {
		log_debug("server %llu: session probe failed (%s %s): resetting it",
			  (unsigned long long)s->c.id, leg->hidden_code, leg->hidden_msg);
		leg->discard = true;
		params_clear(&leg->probed);
		return;
	}
	if (params_assign(&s->have, &leg->probed) != 0 || params_assign(l->want, &leg->probed) != 0)
		leg->discard = true;
	for (int i = 0; i < l->startup->n; i++) {
		const struct param *p = &l->startup->v[i];
		if (!params_get(l->want, p->name) && params_set(l->want, p->name, p->value) != 0)
			leg->discard = true;
	}
	leg->resync = !params_equal(l->want, &s->have);
	params_clear(&leg->probed);

	unsigned pins = leg->probed_pins | sticky;
	if (pins && cfg->pin_session_state == CFG_PIN_OFF) {
		leg->discard = true;
		pins = sticky; /* DISCARD ALL cannot unload a library: that client stays */
	}
	if (pins && !l->pinned) {
		atomic_fetch_add(&s->shard->pins, 1);
		log_debug("worker %d client %llu: pinned to server %llu (session state 0x%x)",
			  s->c.w->id, (unsigned long long)l->client->id,
			  (unsigned long long)s->c.id, pins);
	} else if (!pins && l->pinned) {
		log_debug("worker %d client %llu: unpinned from server %llu", s->c.w->id,
			  (unsigned long long)l->client->id, (unsigned long long)s->c.id);
	}
	l->pinned = pins;
}

int relay_state_hidden(struct relay_leg *leg, uint8_t type, const uint8_t *body, uint32_t len)
{
	switch (type) {
	case 'E':
		note_error(leg, body, len);
		return 0;
	case 'D':
		if (leg->hidden == RELAY_HIDDEN_PROBE)
			note_row(leg, body, len);
		return 0;
	case 'S':
		return relay_state_report(leg, body, len) ? 2 : 0;
	case 'A':
		/* a notification for the client's LISTEN, not an answer to us */
		return pass_on(leg, 'A', body, len) ? 2 : 0;
	case 'Z':
		break;
	default:
		return 0;
	}
	leg->hidden_ready--;
	if (len == 1)
		leg->tx_status = (char)body[0]; /* a hidden BEGIN opens a transaction */
	uint8_t kind = leg->hidden;
	leg->hidden = 0;
	leg->tell_client = false;
	struct relay_link *l = leg->link;
	switch (kind) {
	case RELAY_HIDDEN_SYNC:
		if (leg->hidden_code[0]) {
			/* nothing of it took: what the server has is not known */
			leg->discard = true;
			params_clear(&leg->server->have);
			/* the client's settings cannot be had: as PostgreSQL refuses
			 * them at startup, the client is refused in its words */
			leg->hidden_failed = kind;
			return l ? -1 : 1;
		}
		break;
	case RELAY_HIDDEN_PROBE:
		if (l)
			probe_done(leg);
		break;
	case RELAY_HIDDEN_DISCARD:
	case RELAY_HIDDEN_BEGIN:
		if (leg->hidden_code[0]) {
			leg->hidden_failed = kind;
			return -1;
		}
		break;
	}
	return 1;
}

/* ---- reports ------------------------------------------------------------------ */

/* Queues a copy of a server message to the client (one that may come at
 * any point of the stream); false if there is no client to tell yet. */
static bool pass_on(struct relay_leg *leg, uint8_t type, const uint8_t *body, uint32_t len)
{
	struct relay_link *l = leg->link;
	if (!l || l->quiet)
		return false;
	uint8_t hdr[PROTO_HEADER_LEN] = { type, (uint8_t)((len + 4) >> 24),
					  (uint8_t)((len + 4) >> 16), (uint8_t)((len + 4) >> 8),
					  (uint8_t)(len + 4) };
	if (conn_queue(l->client, hdr, sizeof(hdr)) != 0 || conn_queue(l->client, body, len) != 0) {
		log_warn("client %llu: cannot pass on a message from its server",
			 (unsigned long long)l->client->id);
		return false;
	}
	conn_flush_tx(l->client);
	return true;
}

/* The setting's report is the server's default after a RESET: not the
 * client's choice. After a RESET ALL, the list holds the settings a later
 * SET kept ("!name"); otherwise the settings reset. */
static bool reset_pending(const struct relay_link *l, const char *name)
{
	if (!l->resets)
		return false;
	for (int i = 0; i < l->resets->n_reset_pending; i++) {
		const char *p = l->resets->reset_pending[i];
		if (l->resets->reset_all_pending && p[0] == '!' && strcasecmp(p + 1, name) == 0)
			return false;
		if (!l->resets->reset_all_pending && strcasecmp(p, name) == 0)
			return true;
	}
	return l->resets->reset_all_pending;
}

/* A report of name in the request that reset it (see note_resets). */
static bool masked(const struct relay_link *l, const char *name)
{
	if (!l->resets)
		return false;
	for (int i = 0; i < l->resets->n_mask; i++)
		if (strcasecmp(l->resets->mask[i], name) == 0)
			return !l->resets->mask_all;
	return l->resets->mask_all;
}

bool relay_state_report(struct relay_leg *leg, const uint8_t *body, uint32_t len)
{
	struct proto_reader r = proto_reader_init(body, len);
	const char *name = proto_get_cstr(&r);
	const char *value = proto_get_cstr(&r);
	if (!name || !value || !params_follows_report(name))
		return false;
	struct relay_link *l = leg->link;
	/* after a RESET the server reports its default, but the client wants
	 * its startup value back (resync): only what the server has changes */
	bool client_set_it = l && !(leg->ready_seen < leg->mask_until_ready && masked(l, name));
	if (client_set_it && leg->hidden_ready == 0 && leg->tx_status != 'I'
	    && tracked(&leg->server->c)) {
		/* inside a transaction a report may be a SET LOCAL's, or undone by
		 * a rollback: the server is asked at its end instead */
		leg->dirty |= QUERY_SETS;
		client_set_it = false;
	}
	if (params_set(&leg->server->have, name, value) != 0
	    || (client_set_it && params_set(l->want, name, value) != 0)) {
		log_warn("out of memory tracking parameter %s", name);
		leg->discard = true;
	}
	/* after a RESET the client was told the server's default: the value
	 * PgCrab set back is reported to it too (ParameterStatus may come at
	 * any point) */
	return leg->tell_client && pass_on(leg, 'S', body, len);
}

/* ---- requests ------------------------------------------------------------------ */

static struct relay_resets *resets_of(struct relay_link *l)
{
	if (!l->resets)
		l->resets = calloc(1, sizeof(*l->resets));
	return l->resets;
}

static void pending_add(struct relay_link *l, const char *name)
{
	int max = (int)(sizeof(l->resets->reset_pending) / sizeof(l->resets->reset_pending[0]));
	for (int i = 0; i < l->resets->n_reset_pending; i++)
		if (strcasecmp(l->resets->reset_pending[i], name) == 0)
			return;
	if (l->resets->n_reset_pending < max)
		snprintf(l->resets->reset_pending[l->resets->n_reset_pending++],
			 sizeof(l->resets->reset_pending[0]), "%s", name);
	else if (name[0] != '!')
		l->resets->reset_all_pending = true;
}

static bool kept_after_reset_all(const struct query_class *qc, const char *name)
{
	for (int i = 0; i < qc->n_reset; i++)
		if (qc->reset_names[i][0] == '!' && strcasecmp(qc->reset_names[i] + 1, name) == 0)
			return true;
	return false;
}

/* RESET ALL: every setting back to the client's startup value, but role
 * and session_authorization (RESET ALL leaves them), and those a SET gave
 * a value after it in the same string (left as they are: the SET's report,
 * or the probe, tells their value). */
static bool reset_all(struct relay_link *l, struct relay_leg *leg, const struct query_class *qc)
{
	struct server *s = leg->server;
	struct param_set have = { 0 }, want = { 0 };
	bool oom = false;
	static const char *const untouched[] = { "role", "session_authorization" };
	for (int k = 0; k < 2; k++) {
		const char *h = params_get(&s->have, untouched[k]);
		const char *w = params_get(l->want, untouched[k]);
		oom |= (h && params_set(&have, untouched[k], h) != 0)
			|| (w && params_set(&want, untouched[k], w) != 0);
	}
	/* not synced: the server will have the SET's value, whatever it is */
	for (int i = 0; i < qc->n_reset; i++) {
		const char *name = qc->reset_names[i] + 1;
		const char *w = params_get(l->want, name);
		if (qc->reset_names[i][0] == '!' && w)
			oom |= params_set(&have, name, w) != 0 || params_set(&want, name, w) != 0;
	}
	for (int i = 0; i < l->startup->n; i++) {
		const struct param *p = &l->startup->v[i];
		if (!kept_after_reset_all(qc, p->name) && !params_get(&want, p->name))
			oom |= params_set(&want, p->name, p->value) != 0;
	}
	oom |= params_assign(&s->have, &have) != 0 || params_assign(l->want, &want) != 0;
	params_clear(&have);
	params_clear(&want);
	l->resets->reset_all_pending = true;
	l->resets->n_reset_pending = 0;
	for (int i = 0; i < qc->n_reset; i++)
		if (qc->reset_names[i][0] == '!')
			pending_add(l, qc->reset_names[i]);
	return oom;
}

/* RESET returns a setting to the client's startup value, not the server's:
 * the server gets it back with a hidden set_config before the next request
 * (or, at the transaction's end, before the server is asked what it holds). */
static void note_resets(struct relay_link *l, struct relay_leg *leg, const struct query_class *qc)
{
	struct server *s = leg->server;
	bool oom = false;
	if (!resets_of(l)) {
		leg->discard = true; /* cannot follow it: at least no one else sees it */
		return;
	}
	/* what the client had before: the probe tells a RESET that rolled
	 * back from one that holds by it */
	for (int i = 0; i < l->want->n; i++)
		if (!params_get(&l->resets->reset_before, l->want->v[i].name))
			oom |= params_set(&l->resets->reset_before, l->want->v[i].name,
					  l->want->v[i].value)
				!= 0;
	for (int i = 0; i < qc->n_reset; i++) {
		if (strchr("+=~", qc->reset_names[i][0]))
			continue;
		const char *name = qc->reset_names[i] + (qc->reset_names[i][0] == '!');
		if (!params_get(&l->resets->reset_before, name) && !params_get(l->want, name))
			oom |= params_set(&l->resets->reset_before, name, "\1") != 0;
	}
	/* this request's own reports of the settings it resets give the
	 * server's default, not the client's choice */
	leg->mask_until_ready = leg->ready_seen + (uint32_t)leg->expect_ready + 1;
	l->resets->mask_all = qc->reset_all;
	l->resets->n_mask = 0;
	for (int i = 0; i < qc->n_reset && l->resets->n_mask < QUERY_RESET_NAMES_MAX; i++) {
		const char *e = qc->reset_names[i];
		/* after RESET ALL the list holds the exceptions ("!name") */
		if (qc->reset_all ? e[0] == '!' : !strchr("!=+~", e[0]))
			snprintf(l->resets->mask[l->resets->n_mask++], sizeof(l->resets->mask[0]),
				 "%s", e + (e[0] == '!'));
	}
	if (qc->reset_all) {
		oom = reset_all(l, leg, qc);
	} else {
		for (int i = 0; i < qc->n_reset; i++) {
			const char *name = qc->reset_names[i];
			char kept[QUERY_NAME_MAX + 1];
			if (strchr("+!=~", name[0]))
				continue;
			oom |= params_set(&s->have, name, NULL) != 0;
			oom |= params_set(l->want, name, params_get(l->startup, name)) != 0;
			if (l->resets->reset_all_pending) {
				/* reset again after a SET that kept it */
				snprintf(kept, sizeof(kept), "!%s", name);
				for (int k = 0; k < l->resets->n_reset_pending; k++)
					if (strcasecmp(l->resets->reset_pending[k], kept) == 0)
						memcpy(l->resets->reset_pending[k],
						       l->resets->reset_pending
							       [--l->resets->n_reset_pending],
						       sizeof(l->resets->reset_pending[k]));
			} else {
				pending_add(l, name);
			}
		}
	}
	if (oom)
		leg->discard = true;
	leg->resync = true;
	l->tell_reports = true;
}

/* Settings the string gives a value ("=name"): an earlier RESET of them in
 * this transaction no longer holds; the probe takes what the server has. */
static void note_values(struct relay_link *l, const struct query_class *qc)
{
	for (int i = 0; i < qc->n_reset; i++) {
		const char *e = qc->reset_names[i];
		if (!l->resets)
			continue; /* nothing reset to undo */
		/* a local value hides a reset: not brought back before the
		 * transaction ends (the probe then says what holds) */
		if (e[0] == '~' && (l->resets->reset_all_pending || reset_pending(l, e + 1))
		    && params_set(&l->resets->hold_reset, e + 1, "") != 0)
			l->resets->hold_reset_all = true;
		if (e[0] != '=')
			continue;
		if (l->resets->reset_all_pending) {
			char kept[QUERY_NAME_MAX + 1];
			snprintf(kept, sizeof(kept), "!%s", e + 1);
			pending_add(l, kept);
			continue;
		}
		for (int k = 0; k < l->resets->n_reset_pending; k++) {
			if (strcasecmp(l->resets->reset_pending[k], e + 1) == 0) {
				memcpy(l->resets->reset_pending[k],
				       l->resets->reset_pending[--l->resets->n_reset_pending],
				       sizeof(l->resets->reset_pending[k]));
				break;
			}
		}
	}
}

/* Makes the server raise the refusal in the statement's place, so that a
 * transaction fails exactly as it would if PostgreSQL had refused it. */
static int refuse(struct relay_leg *leg, uint8_t type, const char *what)
{
	char msg[300];
	snprintf(msg, sizeof(msg),
		 "%s is not allowed: its state would not follow the client to another server "
		 "connection (pin_session_state = error)",
		 what);
	return prepared_raise(leg, type, "0A000", msg);
}

/* The statement text of a Query or Parse at rx[pos], as much of it as is
 * in rx (a statement longer than a buffer is judged by its start). */
static bool statement_text(const struct conn *c, uint8_t type, uint32_t pos, uint32_t total,
			   const char **sql, size_t *len)
{
	uint32_t have = c->rx_end - pos < total ? c->rx_end - pos : total;
	const char *p = (const char *)c->rx + pos + PROTO_HEADER_LEN;
	size_t left = have - PROTO_HEADER_LEN;
	if (type == 'P') {
		const char *nul = memchr(p, '\0', left);
		if (!nul)
			return false;
		left -= (size_t)(nul + 1 - p);
		p = nul + 1;
	}
	const char *end = memchr(p, '\0', left);
	*sql = p;
	*len = end ? (size_t)(end - p) : left;
	return true;
}

enum relay_state_result relay_state_request(struct relay_link *l, struct relay_leg *leg,
					    uint8_t type, uint32_t pos, uint32_t total, bool *drop)
{
	struct conn *c = l->client;
	/* session mode: the server is the client's, only RESET needs help
	 * (the server's reset values are its own, not the client's) */
	bool pooled = tracked(c);
	l->parse_effects = 0;
	uint32_t have = c->rx_end - pos < total ? c->rx_end - pos : total;
	if (have < total && total <= CONN_WHOLE_MAX) {
		if (total > c->rx_cap)
			c->rx_want = total; /* the next recv grows the buffer */
		return STATE_WAIT;
	}
	const char *sql;
	size_t len;
	if (!statement_text(c, type, pos, total, &sql, &len))
		return STATE_OK; /* the server refuses the Parse */
	struct query_class qc;
	if (query_classify(sql, len, &qc) != 0)
		log_warn("out of memory classifying a statement: assuming it changes the session");
	bool fails = leg->tx_status == 'E' && !relay_leg_awaits(leg)
		&& !(qc.effects & QUERY_ROLLBACK_TO);
	if ((qc.effects & QUERY_ROLLBACK_TO) && l->resets) {
		/* the server undoes the RESETs since the savepoint, and the hidden
		 * set_config that followed them: nothing is left to bring back */
		l->resets->reset_all_pending = false;
		l->resets->n_reset_pending = 0;
		l->resets->n_mask = 0;
		l->resets->mask_all = false;
		params_clear(&l->resets->hold_reset);
		l->resets->hold_reset_all = false;
		leg->resync = false;
		leg->dirty |= QUERY_SETS; /* the server says at the end what holds */
	}
	if (!pooled) {
		if ((qc.effects & QUERY_RESETS) && !fails)
			note_resets(l, leg, &qc);
		if (!fails)
			note_values(l, &qc);
		return STATE_OK;
	}
	if (qc.effects & QUERY_PINS && c->w->cfg->pin_session_state == CFG_PIN_ERROR) {
		if (pos != c->rx_start)
			return STATE_WAIT; /* what precedes it goes first */
		*drop = true;
		return refuse(leg, type, qc.pin_what ? qc.pin_what : "this statement") == 0
			? STATE_REFUSED
			: STATE_OOM;
	}
	/* a Parse does nothing yet: its effects count at each Bind of it */
	if (type == 'Q')
		leg->dirty |= qc.effects;
	for (int i = 0; i < qc.n_reset; i++)
		if (qc.reset_names[i][0] == '+' && !params_get(&l->custom, qc.reset_names[i] + 1)
		    && params_set(&l->custom, qc.reset_names[i] + 1, "") != 0)
			leg->discard = true; /* cannot follow it: at least no one else sees it */
	l->parse_effects = qc.effects;
	if (qc.effects & QUERY_DEALLOCATE_ALL) {
		/* PgCrab's own statements on this server go too, and the
		 * client's protocol-level names, as in PostgreSQL */
		stmt_set_clear(&leg->server->stmts);
		stmt_names_clear(l->names);
	}
	/* in a failed transaction the statement fails: it resets nothing */
	if ((qc.effects & QUERY_RESETS) && !fails)
		note_resets(l, leg, &qc);
	if (!fails)
		note_values(l, &qc);
	return STATE_OK;
}
