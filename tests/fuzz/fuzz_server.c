/* libFuzzer target: the server connection state machine (pool/server.c and relay/,
 * the reply scanner, login with cleartext/md5/SCRAM, reset, and the client
 * side that forwards its replies) fed arbitrary bytes by the "PostgreSQL"
 * it connects to, on a real worker (tests/fuzz/fuzz_worker.h).
 *
 * Input: a byte choosing the client's script (build_script(), low two
 * bits) and session pooling (top bit; else transaction), a byte
 * choosing how the server's bytes are cut (0: each turn at once; else
 * chunks of that many bytes per worker step), then the server's turns,
 * each a 16-bit big-endian length and that many bytes. The first turn is
 * the server's login (: authentication requests,
 * ParameterStatus, BackendKeyData, ReadyForQuery) once PgCrab's startup
 * packet is in; each later turn once the previous one is written and PgCrab
 * has sent the server something new (a request, a hidden SET or
 * ROLLBACK). Long SCRAM server-first messages, bad lengths and unexpected
 * message kinds all land in the code that must refuse them.
 *
 * The client is scripted and well behaved; it logs in as "app" and sends
 * one of a few request streams. SCRAM needs the client nonce: RAND_bytes is
 * replaced below by a fixed pattern so committed seeds can carry a valid
 * SCRAM exchange (tests/fuzz/seeds.py computes it). */
#include "tests/fuzz/fuzz_worker.h"

/* PgCrab's nonces and cancel keys, made reproducible for this binary only:
 * a definition in the executable wins over libcrypto's. */
int RAND_bytes(unsigned char *buf, int num);
int RAND_bytes(unsigned char *buf, int num)
{
	for (int i = 0; i < num; i++)
		buf[i] = (unsigned char)(i + 1);
	return 1;
}

static const uint8_t *login_msgs(size_t *len, bool app_name)
{
	static uint8_t buf[256];
	struct proto_writer w = proto_writer_init(buf, sizeof(buf));
	proto_build_startup(&w, "app", "db", app_name ? 1 : 0,
			    (const char *const[]){ "application_name" },
			    (const char *const[]){ "fuzz" });
	*len = w.len;
	return buf;
}

static size_t build_script(int which, uint8_t *buf, size_t cap)
{
	struct proto_writer w = proto_writer_init(buf, cap);
	size_t m;
	switch (which) {
	case 0: /* one simple query */
		proto_build_query(&w, "select 1");
		break;
	case 1: /* extended, unnamed statement */
	case 3: /* extended, named statement, twice */
		for (int round = 0; round < (which == 3 ? 2 : 1); round++) {
			const char *name = which == 3 ? "st1" : "";
			m = proto_msg_begin(&w, 'P');
			proto_put_cstr(&w, name);
			proto_put_cstr(&w, "select $1");
			proto_put_u8(&w, 0);
			proto_put_u8(&w, 0);
			proto_msg_end(&w, m);
			m = proto_msg_begin(&w, 'B');
			proto_put_cstr(&w, "");
			proto_put_cstr(&w, name);
			for (int i = 0; i < 6; i++)
				proto_put_u8(&w, 0);
			proto_msg_end(&w, m);
			m = proto_msg_begin(&w, 'D');
			proto_put_u8(&w, 'P');
			proto_put_cstr(&w, "");
			proto_msg_end(&w, m);
			m = proto_msg_begin(&w, 'E');
			proto_put_cstr(&w, "");
			proto_put_i32(&w, 0);
			proto_msg_end(&w, m);
			m = proto_msg_begin(&w, 'S');
			proto_msg_end(&w, m);
		}
		break;
	case 2: /* a transaction, pipelined */
		proto_build_query(&w, "begin");
		proto_build_query(&w, "select 1");
		proto_build_query(&w, "commit");
		break;
	}
	return w.overflow ? 0 : w.len;
}

/* The server's side: turns from the input, one per request PgCrab sends. */
struct fake_server {
	const uint8_t *turns;
	size_t left;
	size_t chunk;
	size_t heard; /* bytes received from PgCrab when the last turn went out */
	bool started;
};

static struct fake_server srv;

static void next_turn(struct fz_peer *b)
{
	if (srv.left < 2) {
		srv.left = 0;
		return;
	}
	size_t len = (size_t)srv.turns[0] << 8 | srv.turns[1];
	if (len > srv.left - 2)
		len = srv.left - 2;
	fz_peer_send(b, srv.turns + 2, len, srv.chunk);
	srv.turns += 2 + len;
	srv.left -= 2 + len;
}

static bool serve_all(void *arg)
{
	struct fz_peer *client = arg;
	bool moved = fz_peer_step(client);
	/* only the first connection of an input plays the input; a reconnect
	 * after PgCrab dropped it finds a server that hangs up at once */
	for (int i = 0; i < fz.n_backends; i++) {
		struct fz_peer *b = &fz.backends[i];
		if (b->fd < 0)
			continue;
		if (i > 0) {
			close(b->fd);
			b->fd = -1;
			moved = true;
			continue;
		}
		if (fz_peer_step(b))
			moved = true;
		if (b->out_at < b->out_len)
			continue;
		if (!srv.started) {
			if (b->in_len == 0)
				continue; /* speak once the startup packet is in */
			srv.started = true;
			srv.heard = b->in_len;
			next_turn(b);
			moved = true;
		} else if (b->in_len > srv.heard && srv.left > 0) {
			srv.heard = b->in_len;
			next_turn(b);
			moved = true;
		}
	}
	return moved;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	static bool ready;
	if (!ready) {
		fz_init("max_prepared_statements = 4\nclient_login_timeout = 0\n");
		ready = true;
	}
	if (size < 2)
		return 0;
	int script = data[0] % 4;
	fz_use_session_mode(data[0] & 0x80);
	memset(&srv, 0, sizeof(srv));
	srv.chunk = data[1];
	srv.turns = data + 2;
	srv.left = size - 2;

	struct fz_peer client;
	fz_new_client(&client);
	/* the client waits for each answer before the next step, as libpq does */
	size_t len;
	const uint8_t *login = login_msgs(&len, script == 3);
	fz_peer_send(&client, login, len, 0);
	fz_run(serve_all, &client, 5000);
	static const uint8_t password[] = { 'p', 0, 0, 0, 11, 's', 'e', 'c', 'r', 'e', 't', 0 };
	fz_peer_send(&client, password, sizeof(password), 0);
	fz_run(serve_all, &client, 5000);
	uint8_t req[512];
	len = build_script(script, req, sizeof(req));
	fz_peer_send(&client, req, len, 0);
	bool quiet = fz_run(serve_all, &client, 20000);
	if (getenv("FUZZ_TRACE")) {
		fz_trace("client got", client.in, client.in_len, quiet);
		if (fz.n_backends > 0)
			fz_trace("server got", fz.backends[0].in, fz.backends[0].in_len, quiet);
	}
	fz_reset(&client);
	return 0;
}
