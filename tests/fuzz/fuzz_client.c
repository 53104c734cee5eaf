/* libFuzzer target: the client connection state machine (session/client.c and login.c,
 * relay/ (relay.c, prepared.c, cleanup.c), core/conn.c and the pool behind them) fed an arbitrary
 * byte stream by a client, on a real worker (tests/fuzz/fuzz_worker.h).
 *
 * Input: one byte whose top bit picks session pooling (else transaction)
 * and whose low 7 bits how the stream is cut (0: as it comes; else chunks
 * of that many bytes, one per worker step, so messages and headers arrive
 * split), then the client's bytes, from the startup packet on. The
 * seeds log in (user "app", password "secret", database "db") so the
 * fuzzer starts from whole sessions: simple and extended queries,
 * transactions, prepared statements, Terminate.
 *
 * The shard is a small fake PostgreSQL in this file that answers every
 * request correctly, so anything wrong is PgCrab's. After the input the
 * harness checks that what PgCrab sent the client is a well-formed message
 * stream and that the worker holds nothing any more. */
#include "tests/fuzz/fuzz_worker.h"

#include <ctype.h>
#include <strings.h>

/* ---- a fake PostgreSQL backend ------------------------------------------ */

struct fake_pg {
	bool started;
	char status;   /* ReadyForQuery: 'I', 'T' or 'E' */
	bool skipping; /* after an error in extended protocol: until Sync */
	size_t at;     /* bytes of the backend's input consumed */
	uint8_t out[65536];
	size_t out_len, out_sent;
};

static struct fake_pg pgs[FZ_MAX_BACKENDS];

static void pg_put(struct fake_pg *pg, const struct proto_writer *w)
{
	if (w->overflow || w->len > sizeof(pg->out) - pg->out_len)
		return; /* a fake backend may drop a reply; PgCrab then waits */
	memcpy(pg->out + pg->out_len, w->p, w->len);
	pg->out_len += w->len;
}

static void pg_msg(struct fake_pg *pg, uint8_t type, const void *body, size_t len)
{
	uint8_t buf[600];
	struct proto_writer w = proto_writer_init(buf, sizeof(buf));
	size_t m = proto_msg_begin(&w, type);
	proto_put_bytes(&w, body, len);
	proto_msg_end(&w, m);
	pg_put(pg, &w);
}

static void pg_complete(struct fake_pg *pg, const char *tag)
{
	pg_msg(pg, 'C', tag, strlen(tag) + 1);
}

static void pg_ready(struct fake_pg *pg)
{
	pg_msg(pg, 'Z', &pg->status, 1);
}

static void pg_error(struct fake_pg *pg, const char *code, const char *text)
{
	uint8_t buf[600];
	struct proto_writer w = proto_writer_init(buf, sizeof(buf));
	proto_build_error(&w, "ERROR", code, text);
	pg_put(pg, &w);
	if (pg->status == 'T')
		pg->status = 'E';
}

static void pg_login(struct fake_pg *pg)
{
	uint8_t buf[600];
	struct proto_writer w = proto_writer_init(buf, sizeof(buf));
	proto_build_auth(&w, PROTO_AUTH_OK, NULL, 0);
	proto_build_parameter_status(&w, "server_version", "15.8");
	proto_build_parameter_status(&w, "client_encoding", "UTF8");
	proto_build_parameter_status(&w, "DateStyle", "ISO, MDY");
	proto_build_parameter_status(&w, "TimeZone", "UTC");
	proto_build_parameter_status(&w, "application_name", "");
	proto_build_parameter_status(&w, "standard_conforming_strings", "on");
	proto_build_backend_key(&w, 4242, 77);
	proto_build_ready(&w, 'I');
	pg_put(pg, &w);
	pg->status = 'I';
}

static bool starts(const char *sql, const char *word)
{
	while (isspace((unsigned char)*sql))
		sql++;
	return strncasecmp(sql, word, strlen(word)) == 0;
}

static void pg_query(struct fake_pg *pg, const char *sql)
{
	if (!*sql) {
		pg_msg(pg, 'I', NULL, 0);
	} else if (strstr(sql, "fail")) {
		pg_error(pg, "42000", "asked to fail");
	} else if (starts(sql, "begin") || starts(sql, "start")) {
		pg_complete(pg, "BEGIN");
		if (pg->status == 'I')
			pg->status = 'T';
	} else if (starts(sql, "commit") || starts(sql, "rollback") || starts(sql, "end")
		   || starts(sql, "abort")) {
		pg_complete(pg, pg->status == 'E' || starts(sql, "r") ? "ROLLBACK" : "COMMIT");
		pg->status = 'I';
	} else if (pg->status == 'E') {
		pg_error(pg, "25P02", "current transaction is aborted");
	} else if (starts(sql, "set") || starts(sql, "reset") || starts(sql, "discard")) {
		pg_complete(pg, "SET");
	} else {
		static const uint8_t row_desc[] = { 0, 1, 'x', 0, 0, 0,    0,    0,    0,    0, 0,
						    0, 0, 23,  0, 4, 0xff, 0xff, 0xff, 0xff, 0, 0 };
		static const uint8_t row[] = { 0, 1, 0, 0, 0, 1, '1' };
		pg_msg(pg, 'T', row_desc, sizeof(row_desc));
		pg_msg(pg, 'D', row, sizeof(row));
		pg_complete(pg, "SELECT 1");
	}
}

/* One message from PgCrab; false if the backend hangs up. */
static bool pg_handle(struct fake_pg *pg, uint8_t type, const uint8_t *body, size_t len)
{
	struct proto_reader r = proto_reader_init(body, len);
	if (pg->skipping && type != 'S' && type != 'X')
		return true;
	switch (type) {
	case 'Q': {
		const char *sql = proto_get_cstr(&r);
		pg_query(pg, sql ? sql : "");
		pg_ready(pg);
		return true;
	}
	case 'P': {
		(void)proto_get_cstr(&r);
		const char *sql = proto_get_cstr(&r);
		if (!sql || strstr(sql, "fail")) {
			pg_error(pg, "42601", "cannot parse");
			pg->skipping = true;
		} else {
			pg_msg(pg, '1', NULL, 0);
		}
		return true;
	}
	case 'B':
		pg_msg(pg, '2', NULL, 0);
		return true;
	case 'D':
		if (len > 0 && body[0] == 'S')
			pg_msg(pg, 't', (const uint8_t[]){ 0, 0 }, 2);
		pg_msg(pg, 'n', NULL, 0);
		return true;
	case 'E':
		pg_complete(pg, "SELECT 0");
		return true;
	case 'C':
		pg_msg(pg, '3', NULL, 0);
		return true;
	case 'H':
	case 'd':
	case 'c':
	case 'f':
		return true;
	case 'S':
		pg->skipping = false;
		pg_ready(pg);
		return true;
	case 'F':
		pg_msg(pg, 'V', (const uint8_t[]){ 0xff, 0xff, 0xff, 0xff }, 4);
		pg_ready(pg);
		return true;
	case 'X':
		return false;
	default: {
		uint8_t buf[200];
		struct proto_writer w = proto_writer_init(buf, sizeof(buf));
		proto_build_error(&w, "FATAL", "08P01", "invalid frontend message type");
		pg_put(pg, &w);
		return false;
	}
	}
}

/* Answers what each backend has received in full; sends what it owes. */
static bool serve_backends(void *arg)
{
	(void)arg;
	bool moved = false;
	for (int i = 0; i < fz.n_backends; i++) {
		struct fz_peer *b = &fz.backends[i];
		struct fake_pg *pg = &pgs[i];
		if (b->fd < 0)
			continue;
		if (fz_peer_step(b))
			moved = true;
		bool hang_up = b->eof;
		for (;;) {
			const uint8_t *p = b->in + pg->at;
			size_t left = b->in_len - pg->at;
			if (!pg->started) {
				if (left < 4 || left < proto_be32(p))
					break;
				pg->at += proto_be32(p);
				pg->started = true;
				pg_login(pg);
				continue;
			}
			uint8_t type;
			uint32_t total;
			if (proto_frame(p, left, PROTO_MAX_MESSAGE, &type, &total) != PROTO_OK
			    || total > left)
				break;
			pg->at += total;
			if (!pg_handle(pg, type, p + PROTO_HEADER_LEN, total - PROTO_HEADER_LEN)) {
				hang_up = true;
				break;
			}
		}
		if (pg->out_sent < pg->out_len) {
			ssize_t k = send(b->fd, pg->out + pg->out_sent, pg->out_len - pg->out_sent,
					 MSG_NOSIGNAL | MSG_DONTWAIT);
			if (k > 0) {
				pg->out_sent += (size_t)k;
				moved = true;
			}
		}
		if (pg->out_sent == pg->out_len)
			pg->out_len = pg->out_sent = 0;
		if (hang_up && pg->out_len == 0) {
			close(b->fd);
			b->fd = -1;
			moved = true;
		}
	}
	return moved;
}

static bool serve_all(void *arg)
{
	struct fz_peer *client = arg;
	bool moved = fz_peer_step(client);
	/* a backend accepted in this step starts fresh */
	for (int i = 0; i < fz.n_backends; i++)
		if (fz.backends[i].fd >= 0 && fz.backends[i].in_len == 0 && !pgs[i].started)
			memset(&pgs[i], 0, sizeof(pgs[i]));
	return serve_backends(NULL) || moved;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	static bool ready;
	if (!ready) {
		fz_init("max_prepared_statements = 4\nclient_login_timeout = 0\n");
		ready = true;
	}
	if (size < 1)
		return 0;
	size_t chunk = data[0] & 0x7f;
	fz_use_session_mode(data[0] & 0x80);
	struct fz_peer client;
	memset(pgs, 0, sizeof(pgs));
	fz_new_client(&client);
	fz_peer_send(&client, data + 1, size - 1, chunk);
	bool quiet = fz_run(serve_all, &client, 20000);
	if (getenv("FUZZ_TRACE"))
		fz_trace("client got", client.in, client.in_len, quiet);
	if (quiet)
		fz_check_client_stream(client.in, client.in_len);
	fz_reset(&client);
	return 0;
}
