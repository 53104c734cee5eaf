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
