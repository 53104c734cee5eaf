/* Transaction control on a sharded link, and the commit of a transaction
 * that ran on several shards.
 *
 * Two-phase commit with a coordinator: the transaction's lowest shard is
 * asked its transaction id (pg_current_xact_id), every other shard
 * prepares it under a name that carries that id
 * ("pgcrab:<db>:<coordinator shard>:<xid>:<shard>"), then the coordinator
 * commits it plainly, which is the decision, and the others COMMIT
 * PREPARED. A PgCrab that dies on the way leaves prepared transactions
 * whose fate the coordinator knows: pg_xact_status(xid) there says
 * committed or aborted (relay/recover.c finishes them). A shard that cannot
 * prepare rolls everything back, and the client gets its error. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "core/log.h"
#include "proto/proto.h"
#include "relay/fanout.h"
#include "relay/route.h"

/* ---- the phases --------------------------------------------------------- */

int fan_phase_msg(struct relay_link *l, struct fan *f, int si, uint8_t type, const uint8_t *msg,
		  uint32_t total)
{
	struct fan_src *s = &f->src[si];
	const uint8_t *body = msg + 5;
	uint32_t blen = total - 5;
	switch (type) {
	case 'E': {
		struct proto_error_fields ef;
		if (s->phase_code[0])
			break;
		if (proto_parse_error(body, blen, &ef) == PROTO_OK) {
			snprintf(s->phase_code, sizeof(s->phase_code), "%s", ef.code);
			snprintf(s->phase_msg, sizeof(s->phase_msg), "%s", ef.message);
		} else {
			snprintf(s->phase_code, sizeof(s->phase_code), "XX000");
			snprintf(s->phase_msg, sizeof(s->phase_msg), "unreadable error");
		}
		if (s->skip_ready > 0 && !f->err) {
			/* the BEGIN that opens the shard's part failed: so does the unit */
			f->err = malloc(total);
			if (!f->err)
				return -1;
			memcpy(f->err, msg, total);
			f->err_len = total;
			f->failed = true;
		}
		break;
	}
	case 'D': {
		struct proto_reader rd = proto_reader_init(body, blen);
		if (proto_get_i16(&rd) < 1)
			break;
		int32_t n = proto_get_i32(&rd);
		const uint8_t *v = n > 0 ? proto_get_bytes(&rd, (size_t)n) : NULL;
		if (f->phase == PH_COLUMNS && s->skip_ready == 0)
			return v ? fan_copy_column(f, v, (size_t)n) : 0;
		if (v && (size_t)n < sizeof(s->phase_value)) {
			memcpy(s->phase_value, v, (size_t)n);
			s->phase_value[n] = '\0';
		}
		break;
	}
	case 'Z':
		if (blen == 1)
			s->leg->tx_status = (char)body[0];
		if (s->leg->expect_ready > 0)
			s->leg->expect_ready--;
		if (s->skip_ready > 0) {
			s->skip_ready--;
			break;
		}
		s->phase_wait = false;
		f->phase_done = true;
		for (int i = 0; i < f->n; i++)
			if (f->src[i].phase_wait)
				f->phase_done = false;
		break;
	case 'N':
		/* a WARNING of ours (no transaction in progress) is not the client's */
		break;
	}
	return 0;
}

/* Sends sql (a printf format taking the source's gid, or none) to the
 * sources pick says; false if none got it. */
static bool send_phase(struct relay_link *l, struct fan *f, enum phase ph,
		       bool (*pick)(const struct fan *f, int i), const char *sql, bool with_gid)
{
	bool any = false;
	f->phase = ph;
	f->phase_done = false;
	for (int i = 0; i < f->n; i++) {
		struct fan_src *s = &f->src[i];
		if (!pick(f, i))
			continue;
		char q[256];
		if (with_gid)
			snprintf(q, sizeof(q), sql, f->gid_base, s->leg->shard);
		else
			snprintf(q, sizeof(q), "%s", sql);
		s->phase_code[0] = '\0';
		s->phase_value[0] = '\0';
		if (fan_send_query(s, q) != 0) {
			l->ops->failed(l, "53200", "out of memory");
			return true;
		}
		s->phase_wait = true;
		conn_flush_tx(&s->leg->server->c);
		any = true;
	}
	return any;
}

static bool pick_coord(const struct fan *f, int i)
{
	return i == f->coord;
}
static bool pick_others(const struct fan *f, int i)
{
	return i != f->coord;
}
static bool pick_prepared(const struct fan *f, int i)
{
	return i != f->coord && f->src[i].prepared;
}
/* what a rollback must undo: an open transaction (the coordinator's, or a
 * shard's that was never asked to prepare) */
static bool pick_open(const struct fan *f, int i)
{
	return !f->src[i].prepared && f->src[i].leg->tx_status != 'I';
}

/* The first error a phase met, for the client. */
static int phase_error(struct fan *f, bool (*pick)(const struct fan *f, int i))
{
	for (int i = 0; i < f->n; i++) {
		const struct fan_src *s = &f->src[i];
		if (!pick(f, i) || !s->phase_code[0])
			continue;
		if (!f->err) {
			uint8_t buf[512];
			struct proto_writer wr = proto_writer_init(buf, sizeof(buf));
			proto_build_error(&wr, "ERROR", s->phase_code, s->phase_msg);
			f->err = malloc(wr.len);
			if (!f->err)
				return -1;
			memcpy(f->err, wr.p, wr.len);
			f->err_len = (uint32_t)wr.len;
		}
		return 1;
	}
	return 0;
}

static bool start_rollback(struct relay_link *l, struct fan *f)
{
	bool a = send_phase(l, f, PH_ROLLBACK, pick_open, "ROLLBACK", false);
	for (int i = 0; i < f->n; i++) {
		struct fan_src *s = &f->src[i];
		if (!pick_prepared(f, i))
			continue;
		char q[256];
		snprintf(q, sizeof(q), "ROLLBACK PREPARED '%s:%d'", f->gid_base, s->leg->shard);
		if (fan_send_query(s, q) != 0) {
			l->ops->failed(l, "53200", "out of memory");
			return false;
		}
		s->prepared = false;
		s->phase_wait = true;
		conn_flush_tx(&s->leg->server->c);
		a = true;
	}
	if (!a) {
		f->phase_done = true;
		return fan_phase_next(l, f);
	}
	return false;
}

/* The end: the client's tag (explicit COMMIT or ROLLBACK) or error, and
 * ReadyForQuery. */
static bool phases_over(struct relay_link *l, struct fan *f, bool committed)
{
	const char *tag = NULL;
	if (f->end == FAN_END_COMMIT)
		tag = committed ? "COMMIT" : "ROLLBACK";
	else if (f->end == FAN_END_ROLLBACK)
		tag = "ROLLBACK";
	uint8_t buf[64];
	struct proto_writer wr = proto_writer_init(buf, sizeof(buf));
	if (tag) {
		size_t at = proto_msg_begin(&wr, 'C');
		proto_put_cstr(&wr, tag);
		proto_msg_end(&wr, at);
	}
	f->phase = PH_DONE;
	if (fan_finish(l, f, tag ? wr.p : NULL, wr.len) != 0)
		return false;
	route_fan_free(l);
	return true;
}

bool fan_phases_start(struct relay_link *l, struct fan *f)
{
	struct relay_router *r = l->router;
	bool failed = f->failed || r->aborted;
	for (int i = 0; i < f->n; i++)
		if (f->src[i].leg->tx_status == 'E')
			failed = true;
	r->aborted = false;
	f->coord = 0; /* sources are in shard order: the lowest shard */
	if (failed || f->end == FAN_END_ROLLBACK)
		return start_rollback(l, f);
	if (f->n == 1) {
		if (!send_phase(l, f, PH_COMMIT, pick_coord, "COMMIT", false))
			return phases_over(l, f, true);
		return false;
	}
	send_phase(l, f, PH_XID, pick_coord, "SELECT pg_current_xact_id()", false);
	return false;
}

bool fan_phase_next(struct relay_link *l, struct fan *f)
{
	struct relay_router *r = l->router;
	int e;
	switch (f->phase) {
	case PH_XID:
		if ((e = phase_error(f, pick_coord)) != 0 || !f->src[f->coord].phase_value[0])
			return e < 0 ? false : start_rollback(l, f);
		{
			char prefix[80];
			router_gid_prefix(r->db_name, prefix, sizeof(prefix));
			snprintf(f->gid_base, sizeof(f->gid_base), "%s%d:%s", prefix,
				 f->src[f->coord].leg->shard, f->src[f->coord].phase_value);
		}
		send_phase(l, f, PH_PREPARE, pick_others, "PREPARE TRANSACTION '%s:%d'", true);
		return false;
	case PH_PREPARE:
		for (int i = 0; i < f->n; i++)
			if (i != f->coord && !f->src[i].phase_code[0])
				f->src[i].prepared = true;
		if ((e = phase_error(f, pick_others)) != 0)
			return e < 0 ? false : start_rollback(l, f);
		send_phase(l, f, PH_COMMIT, pick_coord, "COMMIT", false);
		return false;
	case PH_COMMIT:
		if ((e = phase_error(f, pick_coord)) != 0)
			return e < 0 ? false : start_rollback(l, f);
		if (!send_phase(l, f, PH_COMMIT_PREPARED, pick_prepared, "COMMIT PREPARED '%s:%d'",
				true))
			return phases_over(l, f, true);
		return false;
	case PH_COMMIT_PREPARED:
		for (int i = 0; i < f->n; i++) {
			struct fan_src *s = &f->src[i];
			if (s->prepared && s->phase_code[0])
				log_warn("COMMIT PREPARED '%s:%d' failed (%s %s): left for recovery",
					 f->gid_base, s->leg->shard, s->phase_code, s->phase_msg);
			s->prepared = false;
		}
		return phases_over(l, f, true);
	case PH_ROLLBACK:
		return phases_over(l, f, false);
	case PH_COLUMNS:
		return fan_copy_columns_done(l, f);
	default:
		return false;
	}
}

/* ---- transaction control ---------------------------------------------------- */

/* The command tag of a transaction statement, from its first words. */
static const char *tx_tag(const char *sql, size_t len)
{
	while (len && (*sql == ' ' || *sql == '\t' || *sql == '\n' || *sql == '\r' || *sql == '('))
		sql++, len--;
	if (len >= 5 && strncasecmp(sql, "start", 5) == 0)
		return "START TRANSACTION";
	if (len >= 5 && strncasecmp(sql, "begin", 5) == 0)
		return "BEGIN";
	if ((len >= 6 && strncasecmp(sql, "commit", 6) == 0)
	    || (len >= 3 && strncasecmp(sql, "end", 3) == 0))
		return "COMMIT";
	if (len >= 9 && strncasecmp(sql, "savepoint", 9) == 0)
		return "SAVEPOINT";
	if (len >= 7 && strncasecmp(sql, "release", 7) == 0)
		return "RELEASE";
	return "ROLLBACK";
}

/* Answers a unit of transaction control itself, message by message. */
static void answer_unit(struct relay_link *l, const char *tag)
{
	struct relay_router *r = l->router;
	struct conn *c = l->client;
	char missing[80];
	if (route_register_names(l, missing, sizeof(missing)) == -1) {
		l->ops->failed(l, "53200", "out of memory");
		return;
	}
	uint8_t buf[512];
	uint32_t pos = c->rx_start;
	for (int i = 0; i < r->unit.n_msgs; i++) {
		uint8_t type = c->rx[pos];
		uint32_t total = 1 + proto_be32(c->rx + pos + 1);
		struct proto_writer wr = proto_writer_init(buf, sizeof(buf));
		size_t at;
		switch (type) {
		case 'P':
			at = proto_msg_begin(&wr, '1');
			proto_msg_end(&wr, at);
			break;
		case 'B':
			at = proto_msg_begin(&wr, '2');
			proto_msg_end(&wr, at);
			break;
		case 'D':
			if (total > 5 && c->rx[pos + 5] == 'S') {
				/* a statement's: its parameters (none) first */
				at = proto_msg_begin(&wr, 't');
				proto_put_u8(&wr, 0);
				proto_put_u8(&wr, 0);
				proto_msg_end(&wr, at);
			}
			at = proto_msg_begin(&wr, 'n');
			proto_msg_end(&wr, at);
			break;
		case 'C':
			at = proto_msg_begin(&wr, '3');
			proto_msg_end(&wr, at);
			break;
		case 'E':
		case 'Q':
			at = proto_msg_begin(&wr, 'C');
			proto_put_cstr(&wr, tag);
			proto_msg_end(&wr, at);
			if (type == 'Q')
				proto_build_ready(&wr, route_tx_status(l));
			break;
		case 'S':
			proto_build_ready(&wr, route_tx_status(l));
			break;
		}
		if (wr.overflow || conn_queue(c, wr.p, wr.len) != 0) {
			l->ops->failed(l, "53200", "out of memory");
			return;
		}
		pos += total;
	}
	c->rx_start = pos;
	c->scan_pos = pos;
	conn_flush_tx(c);
}

void route_answer_parse_only(struct relay_link *l)
{
	answer_unit(l, ""); /* no Execute: no tag goes out */
}

/* The text of the unit's first Query or Parse. */
static bool unit_text(struct relay_link *l, const char **sql, size_t *len)
{
	struct conn *c = l->client;
	uint32_t pos = c->rx_start;
	for (int i = 0; i < l->router->unit.n_msgs; i++) {
		uint8_t type = c->rx[pos];
		uint32_t total = 1 + proto_be32(c->rx + pos + 1);
		const uint8_t *b = c->rx + pos + 5;
		if (type == 'P') {
			const uint8_t *z = memchr(b, '\0', total - 5);
			if (!z)
				return false;
			b = z + 1;
		}
		if (type == 'B') {
			/* a Bind of a named statement: that statement's text */
			const uint8_t *z = memchr(b, '\0', total - 5);
			const struct stmt *st = z && z[1]
				? stmt_names_find(l->names, (const char *)z + 1)
				: NULL;
			if (st) {
				*sql = (const char *)st->body;
				*len = strnlen(*sql, st->len);
				return true;
			}
		}
		if (type == 'Q' || type == 'P') {
			const uint8_t *z = memchr(b, '\0',
						  total - 5 - (uint32_t)(b - (c->rx + pos + 5)));
			if (!z)
				return false;
			*sql = (const char *)b;
			*len = (size_t)(z - b);
			return true;
		}
		pos += total;
	}
	return false;
}

static int add_preamble(struct relay_router *r, const char *sql, size_t len)
{
	size_t have = r->preamble ? strlen(r->preamble) : 0;
	char *p = realloc(r->preamble, have + len + 2);
	if (!p)
		return -1;
	if (have)
		p[have++] = ';';
	memcpy(p + have, sql, len);
	p[have + len] = '\0';
	r->preamble = p;
	return 0;
}

void route_tx_unit(struct relay_link *l, const struct router_plan *p, uint8_t first)
{
	struct relay_router *r = l->router;
	const char *sql = "";
	size_t len = 0;
	unit_text(l, &sql, &len);
	const char *tag = tx_tag(sql, len);
	uint64_t tx = route_tx_shards(l);
	int n = __builtin_popcountll(tx);
	switch (p->tx) {
	case ROUTER_TX_BEGIN:
		if (!r->preamble && n == 0 && add_preamble(r, sql, len) != 0) {
			l->ops->failed(l, "53200", "out of memory");
			return;
		}
		answer_unit(l, tag); /* held back until the first statement */
		return;
	case ROUTER_TX_SAVEPOINT:
		if (r->preamble && add_preamble(r, sql, len) != 0) {
			l->ops->failed(l, "53200", "out of memory");
			return;
		}
		if (strcmp(tag, "ROLLBACK") == 0)
			r->aborted = false; /* ROLLBACK TO: the transaction goes on */
		if (n == 0) {
			answer_unit(l, tag);
			return;
		}
		r->unit.shards = tx;
		r->unit.any = false;
		route_data_unit(l);
		return;
	case ROUTER_TX_COMMIT:
	case ROUTER_TX_ROLLBACK: {
		bool commit = p->tx == ROUTER_TX_COMMIT;
		bool aborted = r->aborted;
		free(r->preamble);
		r->preamble = NULL;
		if (n == 0) {
			r->aborted = false;
			answer_unit(l, commit && !aborted ? tag : "ROLLBACK");
			return;
		}
		if (n == 1 && !aborted) {
			r->unit.shards = tx;
			r->unit.any = false;
			route_data_unit(l);
			return;
		}
		/* several shards (or PgCrab refused a statement): PgCrab ends it */
		r->unit.shards = tx;
		r->fan_end = commit ? FAN_END_COMMIT : FAN_END_ROLLBACK;
		route_fan_start(l, tx);
		return;
	}
	case ROUTER_TX_PREPARED:
	default:
		l->client->rx_start += r->unit.len;
		l->client->scan_pos = l->client->rx_start;
		{
			uint8_t buf[512];
			struct proto_writer wr = proto_writer_init(buf, sizeof(buf));
			proto_build_error(&wr, "ERROR", "0A000",
					  "two-phase commit commands are PgCrab's own in a sharded "
					  "database");
			proto_build_ready(&wr, route_tx_status(l));
			if (conn_queue(l->client, wr.p, wr.len) != 0)
				l->ops->failed(l, "53200", "out of memory");
			conn_flush_tx(l->client);
		}
		return;
	}
}
