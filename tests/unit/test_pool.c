/* pool/pool.c on a real io_uring (no network: socketpairs): regression
 * tests for what the fuzzers found in the pool. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

#include "config/cfg.h"
#include "core/conn.h"
#include "core/list.h"
#include "core/worker.h"
#include "core/replies.h"
#include "pool/pool.h"
#include "pool/server.h"

/* fuzz_server: a server that logs in with no ParameterStatus at all left
 * params NULL, and publishing the shard's (empty) parameters passed NULL
 * to memcpy: undefined behaviour UBSan reports in SANITIZE=1 builds. */
static void test_ready_without_parameter_status(void **state)
{
	(void)state;
	static const char ini[] = "[shard.db]\nuser = u\n";
	struct cfg *cfg;
	char err[256];
	assert_int_equal(cfg_load_buffer("t.ini", ini, sizeof(ini) - 1, NULL, &cfg, err, sizeof(err)), 0);

	struct runtime rt = { .cfg = cfg, .n_shards = 1, .n_workers = 1 };
	struct shard sh = { .index = 0, .cfg = &cfg->shards[0] };
	struct worker w = { .id = 0, .rt = &rt };
	struct pool p = { 0 };
	rt.shards = &sh;
	rt.workers = &w;
	w.pools = &p;
	pool_init(&p, &sh, &w, 0);
	list_init(&w.clients);
	list_init(&w.outbox);
	assert_int_equal(worker_ring_init(&w.ring, 64, 0), 0);

	int sv[2];
	assert_int_equal(socketpair(AF_UNIX, SOCK_STREAM, 0, sv), 0);
	struct server *s = calloc(1, sizeof(*s));
	assert_non_null(s);
	conn_init(&s->c, CONN_SERVER, &w, sv[0]);
	s->pool = &p;
	s->shard = &sh;
	s->state = SERVER_LOGIN;
	list_init(&s->link);
	list_add_tail(&p.servers, &s->all);
	p.n_servers = 1;
	p.n_connecting = 1;
	assert_true(shard_reserve(&sh));

	pool_server_ready(s); /* s->params == NULL, s->params_len == 0 */

	struct param_blob *b = atomic_load(&sh.params);
	assert_non_null(b);
	assert_int_equal(b->len, 0);
	assert_int_equal(s->state, SERVER_IDLE);
	assert_int_equal(p.n_idle, 1);
	assert_int_equal(p.n_connecting, 0);

	/* the recv it armed is cancelled by the close; wait until it is freed */
	server_close(s, "test done");
	for (int i = 0; i < 100 && w.live > 0; i++) {
		struct __kernel_timespec ts = { .tv_sec = 0, .tv_nsec = 1000000 };
		worker_run_once(&w, &ts);
	}
	assert_int_equal(w.live, 0);
	assert_int_equal(atomic_load(&sh.open), 0);
	io_uring_queue_exit(&w.ring);
	close(sv[1]);
	free(b);
	cfg_free(cfg);
}

/* fuzz_server: a ReadyForQuery without its status byte, last in the
 * buffer, made the reply scanner read the byte after the buffer as the
 * transaction status. Here rx is a heap block of exactly the message, so
 * ASan (SANITIZE=1) sees the old read; now the message is refused and the
 * server closed. The reset path scans replies without needing a client. */
static void test_ready_for_query_without_status(void **state)
{
	(void)state;
	static const char ini[] = "[shard.db]\nuser = u\n";
	struct cfg *cfg;
	char err[256];
	assert_int_equal(cfg_load_buffer("t.ini", ini, sizeof(ini) - 1, NULL, &cfg, err, sizeof(err)), 0);
	struct runtime rt = { .cfg = cfg, .n_shards = 1, .n_workers = 1 };
	struct shard sh = { .index = 0, .cfg = &cfg->shards[0] };
	struct worker w = { .id = 0, .rt = &rt };
	struct pool p = { 0 };
	rt.shards = &sh;
	rt.workers = &w;
	w.pools = &p;
	pool_init(&p, &sh, &w, 0);
	list_init(&w.clients);
	list_init(&w.outbox);
	assert_int_equal(worker_ring_init(&w.ring, 64, 0), 0);

	int sv[2];
	assert_int_equal(socketpair(AF_UNIX, SOCK_STREAM, 0, sv), 0);
	struct server *s = calloc(1, sizeof(*s));
	assert_non_null(s);
	conn_init(&s->c, CONN_SERVER, &w, sv[0]);
	s->pool = &p;
	s->shard = &sh;
	s->state = SERVER_RESET; /* a hidden ROLLBACK is running */
	s->tx_status = 'T';
	s->expect_ready = 1;
	list_init(&s->link);
	list_add_tail(&p.servers, &s->all);
	p.n_servers = 1;
	assert_true(shard_reserve(&sh));
	assert_int_equal(replies_push(&s->replies, RK_READY, RF_HIDE, NULL, NULL), 0);

	static const uint8_t short_ready[] = { 'Z', 0, 0, 0, 4 };
	s->c.rx = malloc(sizeof(short_ready));
	assert_non_null(s->c.rx);
	memcpy(s->c.rx, short_ready, sizeof(short_ready));
	s->c.rx_cap = sizeof(short_ready);
	s->c.refs = 1; /* the recv whose completion this is */
	server_on_recv(s, (int)sizeof(short_ready));
	assert_int_equal(s->state, SERVER_CLOSING);
	conn_put(&s->c);

	for (int i = 0; i < 100 && w.live > 0; i++) {
		struct __kernel_timespec ts = { .tv_sec = 0, .tv_nsec = 1000000 };
		worker_run_once(&w, &ts);
	}
	assert_int_equal(w.live, 0);
	assert_int_equal(atomic_load(&sh.open), 0);
	assert_int_equal(p.n_servers, 0);
	io_uring_queue_exit(&w.ring);
	close(sv[1]);
	cfg_free(cfg);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_ready_without_parameter_status),
		cmocka_unit_test(test_ready_for_query_without_status),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
