/* The pool and the runtime on a real io_uring (no network: socketpairs):
 * regression tests for what the fuzzers found, and a configuration swapped
 * under a running worker. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include <stdlib.h>
#include <string.h>
#include <pthread.h>
#include <sys/socket.h>
#include <unistd.h>

#include "config/cfg.h"
#include "core/conn.h"
#include "core/list.h"
#include "core/worker.h"
#include "pool/pool.h"
#include "pool/server.h"
#include "relay/relay.h"
#include "session/session.h"

static const char ini[] = "[shard.db]\nuser = u\n";

/* One worker over one shard, its ring up, in this thread. */
struct rig {
	struct cfg *cfg;
	struct runtime rt;
	struct session ss;
	struct worker *w;
	struct pool *p;
	struct shard *sh;
	int sv[2];
};

static void rig_up(struct rig *r)
{
	char err[256];
	memset(r, 0, sizeof(*r));
	assert_int_equal(cfg_load_buffer("t.ini", ini, sizeof(ini) - 1, NULL, &r->cfg, err,
					 sizeof(err)),
			 0);
	assert_int_equal(session_build(&r->rt, &r->ss, r->cfg, 1, err, sizeof(err)), 0);
	r->w = &r->rt.workers[0];
	r->p = &r->ss.workers[0].pools.pools[0];
	r->sh = &r->ss.shards[0];
	assert_int_equal(worker_start(r->w), 0);
	assert_int_equal(socketpair(AF_UNIX, SOCK_STREAM, 0, r->sv), 0);
}

/* A server on the rig's socketpair, as if it had connected. */
static struct server *rig_server(struct rig *r, enum server_state st)
{
	struct server *s = calloc(1, sizeof(*s));
	assert_non_null(s);
	conn_init(&s->c, &server_pool_ops, r->w, r->sv[0]);
	s->pool = r->p;
	s->shard = r->sh;
	s->state = st;
	list_init(&s->link);
	list_add_tail(&r->p->servers, &s->all);
	r->p->n_servers = 1;
	if (st == SERVER_LOGIN)
		r->p->n_connecting = 1;
	assert_true(shard_reserve(r->sh));
	return s;
}

/* Runs the worker until every connection is freed. */
static void rig_down(struct rig *r)
{
	for (int i = 0; i < 100 && r->w->live > 0; i++) {
		struct __kernel_timespec ts = { .tv_sec = 0, .tv_nsec = 1000000 };
		worker_run_once(r->w, &ts);
	}
	assert_int_equal(r->w->live, 0);
	assert_int_equal(atomic_load(&r->sh->open), 0);
	assert_int_equal(r->p->n_servers, 0);
	conn_buf_ring_free(r->w);
	io_uring_queue_exit(&r->w->ring);
	relay_thread_exit(); /* the legs this thread keeps for reuse */
	close(r->sv[1]);
	session_free(&r->rt, &r->ss);
	cfg_unref(r->cfg);
}

/* fuzz_server: a server that logs in with no ParameterStatus at all left
 * params NULL, and publishing the shard's (empty) parameters passed NULL
 * to memcpy: undefined behaviour UBSan reports in SANITIZE=1 builds. */
static void test_ready_without_parameter_status(void **state)
{
	(void)state;
	struct rig r;
	rig_up(&r);
	struct server *s = rig_server(&r, SERVER_LOGIN);

	pool_server_ready(s); /* s->params == NULL, s->params_len == 0 */

	struct param_blob *b = atomic_load(&r.sh->params);
	assert_non_null(b);
	assert_int_equal(b->len, 0);
	assert_int_equal(s->state, SERVER_IDLE);
	assert_int_equal(r.p->n_idle, 1);
	assert_int_equal(r.p->n_connecting, 0);

	/* the recv it armed is cancelled by the close; wait until it is freed */
	server_close(s, "test done");
	rig_down(&r);
}

/* fuzz_server: a ReadyForQuery without its status byte, last in the
 * buffer, made the reply scanner read the byte after the buffer as the
 * transaction status. Here rx is a heap block of exactly the message, so
 * ASan (SANITIZE=1) sees the old read; now the message is refused and the
 * server closed. The cleanup path (its client gone, a hidden ROLLBACK
 * running) scans replies without needing a client. */
static void test_ready_for_query_without_status(void **state)
{
	(void)state;
	struct rig r;
	rig_up(&r);
	struct server *s = rig_server(&r, SERVER_RESET);
	struct relay_leg *leg = relay_leg_new();
	assert_non_null(leg);
	leg->server = s;
	leg->tx_status = 'T';
	leg->expect_ready = 1;
	assert_int_equal(replies_push(&leg->replies, RK_READY, RF_HIDE, NULL, NULL), 0);
	s->borrower = leg;
	s->c.ops = &relay_server_ops;

	static const uint8_t short_ready[] = { 'Z', 0, 0, 0, 4 };
	s->c.rx = malloc(sizeof(short_ready));
	assert_non_null(s->c.rx);
	memcpy(s->c.rx, short_ready, sizeof(short_ready));
	s->c.rx_cap = sizeof(short_ready);
	s->c.refs = 1; /* the recv whose completion this is */
	s->c.ops->on_recv(&s->c, (int)sizeof(short_ready));
	assert_int_equal(s->state, SERVER_CLOSING);
	conn_put(&s->c);
	rig_down(&r);
}

/* conn_close links its cancels and the close (IOSQE_IO_HARDLINK): the chain
 * must go to the kernel in one submission. With one free entry left, taking
 * the entries one at a time submitted the cancel alone and broke the link. */
static void test_close_chain_not_split(void **state)
{
	(void)state;
	struct rig r;
	rig_up(&r);
	struct server *s = rig_server(&r, SERVER_LOGIN);
	assert_int_equal(conn_arm_recv(&s->c), 0); /* a recv to cancel */
	io_uring_submit(&r.w->ring);
	unsigned room = io_uring_sq_space_left(&r.w->ring);
	for (unsigned i = 0; i + 1 < room; i++)
		io_uring_prep_nop(worker_sqe(r.w)); /* leaves one free entry */
	assert_int_equal(io_uring_sq_space_left(&r.w->ring), 1);
	server_close(s, "test"); /* cancel recv + close: a chain of two */
	/* the nops went first, alone; the whole chain waits for the next submit */
	assert_int_equal(io_uring_sq_ready(&r.w->ring), 2);
	rig_down(&r);
}

/* A config snapshot handed to a running worker through its ring: the worker
 * takes it up, and the old one is freed when its last holder lets go. */
static void test_config_swap_under_running_worker(void **state)
{
	(void)state;
	char err[256];
	struct cfg *old, *new;
	static const char ini2[] = "[pgcrab]\nquery_wait_timeout = 7s\n[shard.db]\nuser = u\n";
	assert_int_equal(cfg_load_buffer("t.ini", ini, sizeof(ini) - 1, NULL, &old, err,
					 sizeof(err)),
			 0);
	assert_int_equal(cfg_load_buffer("t2.ini", ini2, sizeof(ini2) - 1, NULL, &new, err,
					 sizeof(err)),
			 0);
	struct runtime rt;
	struct session ss;
	assert_int_equal(session_build(&rt, &ss, old, 1, err, sizeof(err)), 0);
	pthread_barrier_init(&rt.ready, NULL, 2);
	assert_int_equal(pthread_create(&rt.workers[0].thread, NULL, worker_main, &rt.workers[0]),
			 0);
	pthread_barrier_wait(&rt.ready);
	assert_true(rt.workers[0].ring_fd >= 0);
	/* ours, the session's two (the first and the newest), the runtime's
	 * (acceptor) and the worker's */
	assert_int_equal(atomic_load(&old->refs), 5);

	assert_int_equal(worker_publish_config(&rt, new), 0);
	for (int i = 0; i < 5000 && atomic_load(&old->refs) != 4; i++)
		usleep(1000);
	assert_int_equal(atomic_load(&old->refs), 4); /* the worker let the old one go */
	assert_int_equal(atomic_load(&new->refs), 2); /* ours and the worker's */

	/* stop it as the acceptor does: SHUTDOWN through its ring */
	struct io_uring ring;
	assert_int_equal(io_uring_queue_init(4, &ring, 0), 0);
	struct io_uring_sqe *sqe = io_uring_get_sqe(&ring);
	io_uring_prep_msg_ring(sqe, rt.workers[0].ring_fd, 0,
			       worker_msg_user_data(WORKER_MSG_SHUTDOWN, NULL), 0);
	assert_int_equal(io_uring_submit_and_wait(&ring, 1), 1);
	io_uring_queue_exit(&ring);
	pthread_join(rt.workers[0].thread, NULL);
	assert_int_equal(atomic_load(&new->refs), 1); /* the worker's went with it */
	session_free(&rt, &ss);
	assert_int_equal(atomic_load(&old->refs), 1);
	cfg_unref(new);
	cfg_unref(old);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_ready_without_parameter_status),
		cmocka_unit_test(test_ready_for_query_without_status),
		cmocka_unit_test(test_close_chain_not_split),
		cmocka_unit_test(test_config_swap_under_running_worker),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
