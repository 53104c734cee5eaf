/* COPY FROM STDIN on a sharded link. Every shard of the fan-out runs the
 * COPY; once each has answered CopyInResponse the client gets one, and its
 * CopyData is split row by row (router/copy.c) to the shard of each row's
 * key, or (an unsharded table) copied to every shard. Rows go on as they
 * come: only the rows of one client message and the part of a row not yet
 * whole are held, and the client is read no faster than the shards take
 * them. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "core/log.h"
#include "core/worker.h"
#include "proto/proto.h"
#include "relay/fanout.h"
#include "relay/route.h"

#define COPY_SHARD_TX_MAX (4u * 1024 * 1024) /* stop reading the client above this */

static int queue_copy_data(struct conn *c, const uint8_t *p, size_t n)
{
	uint32_t len = (uint32_t)(n + 4);
	uint8_t hdr[5] = { 'd', (uint8_t)(len >> 24), (uint8_t)(len >> 16), (uint8_t)(len >> 8),
			   (uint8_t)len };
	if (conn_queue(c, hdr, 5) != 0 || conn_queue(c, p, n) != 0)
		return -1;
	return 0;
}

static struct fan_src *src_of_shard(struct fan *f, int shard)
{
	for (int i = 0; i < f->n; i++)
		if (f->src[i].leg && f->src[i].leg->shard == shard)
			return &f->src[i];
	return NULL;
}

/* A whole row for one shard (or, -1, for every shard). */
static int copy_row(void *arg, int shard, const uint8_t *p, size_t n)
{
	struct fan *f = arg;
	for (int i = 0; i < f->n; i++) {
		struct fan_src *s = &f->src[i];
		if (shard >= 0 && s->leg->shard != shard)
			continue;
		if (queue_copy_data(&s->leg->server->c, p, n) != 0)
			return -1;
	}
	if (shard >= 0 && !src_of_shard(f, shard))
		return -1; /* cannot happen: every shard runs the COPY */
	return 0;
}

static bool shards_busy(const struct fan *f)
{
	for (int i = 0; i < f->n; i++)
		if (f->src[i].leg->server->c.tx_len > COPY_SHARD_TX_MAX)
			return true;
	return false;
}

static void flush_shards(struct fan *f)
{
	for (int i = 0; i < f->n; i++)
		conn_flush_tx(&f->src[i].leg->server->c);
}

/* Sends one message to every shard as it is. */
static int to_all(struct fan *f, uint8_t type, const uint8_t *body, uint32_t n)
{
	uint32_t len = n + 4;
	uint8_t hdr[5] = { type, (uint8_t)(len >> 24), (uint8_t)(len >> 16), (uint8_t)(len >> 8),
			   (uint8_t)len };
	for (int i = 0; i < f->n; i++) {
		struct conn *c = &f->src[i].leg->server->c;
		if (conn_queue(c, hdr, 5) != 0 || (n && conn_queue(c, body, n) != 0))
			return -1;
	}
	return 0;
}

/* Our own error for the client, and the shards are told the COPY failed. */
static int copy_failed(struct fan *f, const char *code, const char *msg)
{
	uint8_t buf[600];
	struct proto_writer wr = proto_writer_init(buf, sizeof(buf));
	proto_build_error(&wr, "ERROR", code, msg);
	free(f->copy_err);
	f->copy_err = malloc(wr.len);
	if (!f->copy_err)
		return -1;
	memcpy(f->copy_err, wr.p, wr.len);
	f->copy_err_len = (uint32_t)wr.len;
	f->copy_dropping = true;
	const char *why = "COPY data refused by pgcrab";
	return to_all(f, 'f', (const uint8_t *)why, (uint32_t)strlen(why) + 1);
}

int fan_copy_pump(struct relay_link *l, struct fan *f)
{
	struct conn *c = l->client;
	char code[6], msg[300];
	while (f->copy_in && c->rx_start < c->rx_end) {
		if (shards_busy(f)) {
			flush_shards(f);
			return 0; /* on when a shard's send completes */
		}
		uint8_t type;
		uint32_t total;
		enum proto_result pr = proto_frame(c->rx + c->rx_start, c->rx_end - c->rx_start,
						   (uint32_t)c->w->cfg->max_packet_size, &type,
						   &total);
		if (pr == PROTO_ERR)
			return -2;
		if (pr == PROTO_AGAIN || c->rx_end - c->rx_start < total) {
			if (pr == PROTO_OK && total > c->rx_cap)
				c->rx_want = total;
			break;
		}
		const uint8_t *body = c->rx + c->rx_start + 5;
		uint32_t n = total - 5;
		int rc = 0;
		switch (type) {
		case 'd':
			if (f->copy_dropping)
				break;
			if (!f->splitter)
				rc = to_all(f, 'd', body, n);
			else if ((rc = router_copy_feed(f->splitter, body, n, copy_row, f, code,
							msg, sizeof(msg)))
				 != 0)
				rc = copy_failed(f, code, msg);
			break;
		case 'c':
			f->copy_in = false;
			if (f->copy_dropping)
				break;
			if (f->splitter
			    && router_copy_finish(f->splitter, copy_row, f, code, msg, sizeof(msg))
				    != 0)
				rc = copy_failed(f, code, msg);
			else
				rc = to_all(f, 'c', NULL, 0);
			break;
		case 'f':
			f->copy_in = false;
			if (!f->copy_dropping)
				rc = to_all(f, 'f', body, n);
			break;
		case 'H':
		case 'S':
			break; /* PostgreSQL ignores them during COPY */
		default:
			rc = copy_failed(f, "08P01",
					 "unexpected message type during COPY from stdin");
			f->copy_in = false;
			break;
		}
		c->rx_start += total;
		c->scan_pos = c->rx_start;
		if (rc != 0)
			return -1;
	}
	flush_shards(f);
	if (f->copy_in && !c->recv_armed && !c->closing && conn_arm_recv(c) != 0)
		return -2;
	return 0;
}

/* ---- COPY without a column list ------------------------------------------- */

/* A name for a SQL literal that names the table: quotes doubled. */
static void append_quoted(char *out, size_t cap, const char *name)
{
	size_t n = strlen(out);
	for (; *name && n + 3 < cap; name++) {
		if (*name == '"' || *name == '\'')
			out[n++] = *name;
		out[n++] = *name;
	}
	out[n] = '\0';
}

int fan_copy_columns_start(struct relay_link *l, struct fan *f, const char *sql, size_t len)
{
	const struct router_copy_spec *spec = l->router->copy_spec;
	const struct router_table *t = NULL;
	for (int i = 0; i < l->router->schema->n_tables; i++)
		if (l->router->schema->tables[i].name == spec->table)
			t = &l->router->schema->tables[i];
	char q[512] = "SELECT attname FROM pg_catalog.pg_attribute WHERE attrelid = '";
	if (t && t->schema) {
		strcat(q, "\"");
		append_quoted(q, sizeof(q) - 80, t->schema);
		strcat(q, "\".");
	}
	strcat(q, "\"");
	append_quoted(q, sizeof(q) - 80, spec->table);
	strcat(q, "\"'::regclass AND attnum > 0 AND NOT attisdropped ORDER BY attnum");
	f->copy_sql = strndup(sql, len);
	if (!f->copy_sql || fan_send_query(&f->src[0], q) != 0)
		return -1;
	f->phase = PH_COLUMNS;
	f->phase_done = false;
	f->src[0].phase_wait = true;
	conn_flush_tx(&f->src[0].leg->server->c);
	return 0;
}

int fan_copy_column(struct fan *f, const uint8_t *name, size_t len)
{
	char **v = realloc(f->col_names, (size_t)(f->n_cols + 1) * sizeof(*v));
	if (!v)
		return -1;
	f->col_names = v;
	if (!(v[f->n_cols] = strndup((const char *)name, len)))
		return -1;
	f->n_cols++;
	return 0;
}

/* Our own error for the client; the transaction opened for the COPY ends. */
static bool columns_failed(struct relay_link *l, struct fan *f, const char *code, const char *msg)
{
	uint8_t buf[600];
	struct proto_writer wr = proto_writer_init(buf, sizeof(buf));
	proto_build_error(&wr, "ERROR", code, msg);
	free(f->err);
	f->err = malloc(wr.len);
	if (!f->err) {
		l->ops->failed(l, "53200", "out of memory");
		return false;
	}
	memcpy(f->err, wr.p, wr.len);
	f->err_len = (uint32_t)wr.len;
	f->failed = true;
	f->phase = PH_NONE;
	return route_fan_pump(l);
}

bool fan_copy_columns_done(struct relay_link *l, struct fan *f)
{
	char code[6], msg[300];
	struct fan_src *s0 = &f->src[0];
	if (s0->phase_code[0])
		return columns_failed(l, f, s0->phase_code, s0->phase_msg);
	if (router_copy_set_columns(l->router->copy_spec, f->n_cols,
				    (const char *const *)f->col_names, code, msg, sizeof(msg))
	    != 0)
		return columns_failed(l, f, code, msg);
	f->splitter = router_copy_splitter_new(l->router->copy_spec);
	if (!f->splitter) {
		l->ops->failed(l, "53200", "out of memory");
		return false;
	}
	for (int i = 0; i < f->n; i++) {
		struct fan_src *s = &f->src[i];
		if (fan_send_query(s, f->copy_sql) != 0) {
			l->ops->failed(l, "53200", "out of memory");
			return false;
		}
		s->leg->expect_ready--; /* fan_send_query counted it: the unit's own */
		s->ready_left++;
		s->leg->expect_ready++;
		conn_flush_tx(&s->leg->server->c);
	}
	f->phase = PH_NONE;
	return route_fan_pump(l);
}
