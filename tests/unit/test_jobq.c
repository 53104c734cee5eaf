/* core/jobq.c: jobs run one at a time in the order pushed, a job pushed
 * again while queued runs once, a run can take the rest of the queue,
 * answers reach a ring as worker messages, and stopping drops what is
 * left and refuses to post. Order is forced with a gate, never a sleep. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include <errno.h>
#include <pthread.h>
#include <sched.h>
#include <string.h>

#include "core/jobq.h"

struct job {
	struct list link;
	int id;
	bool gate;  /* its run waits until the test opens the gate */
	bool batch; /* its run pops the rest of the queue too */
	bool post;  /* its run posts the job to target */
};

/* What the runs saw, under mu. */
static pthread_mutex_t mu = PTHREAD_MUTEX_INITIALIZER;
static pthread_cond_t cv = PTHREAD_COND_INITIALIZER;
static int ran[32], n_ran, n_dropped, post_rc;
static bool in_gate, gate_open;
static struct worker target;

static void record(int id)
{
	pthread_mutex_lock(&mu);
	ran[n_ran++] = id;
	pthread_cond_broadcast(&cv);
	pthread_mutex_unlock(&mu);
}

static void run(struct jobq *q, struct list *n)
{
	struct job *j = list_entry(n, struct job, link);
	if (j->gate) {
		pthread_mutex_lock(&mu);
		in_gate = true;
		pthread_cond_broadcast(&cv);
		while (!gate_open)
			pthread_cond_wait(&cv, &mu);
		pthread_mutex_unlock(&mu);
	}
	if (j->post)
		post_rc = jobq_post(q, &target, WORKER_MSG_OWNER + 1, j);
	record(j->id);
	for (struct list *m = j->batch ? jobq_pop(q) : NULL; m; m = jobq_pop(q))
		record(100 + list_entry(m, struct job, link)->id);
}

static void drop(struct list *n)
{
	(void)n;
	n_dropped++;
}

static void reset(void)
{
	n_ran = n_dropped = post_rc = 0;
	in_gate = gate_open = false;
}

static void wait_ran(int n)
{
	pthread_mutex_lock(&mu);
	while (n_ran < n)
		pthread_cond_wait(&cv, &mu);
	pthread_mutex_unlock(&mu);
}

static void wait_in_gate(void)
{
	pthread_mutex_lock(&mu);
	while (!in_gate)
		pthread_cond_wait(&cv, &mu);
	pthread_mutex_unlock(&mu);
}

static void open_gate(void)
{
	pthread_mutex_lock(&mu);
	gate_open = true;
	pthread_cond_broadcast(&cv);
	pthread_mutex_unlock(&mu);
}

static void start(struct jobq *q)
{
	char err[128] = "";
	reset();
	assert_int_equal(jobq_start(q, "test", run, err, sizeof(err)), 0);
	assert_string_equal(err, "");
}

static void test_order_and_once(void **state)
{
	(void)state;
	struct jobq q;
	struct job held = { .id = 1, .gate = true }, a = { .id = 2 }, flag = { .id = 3 };
	start(&q);
	jobq_push(&q, &held.link);
	wait_in_gate(); /* the thread is busy: the rest stays queued */
	jobq_push(&q, &flag.link);
	jobq_push(&q, &a.link);
	jobq_push(&q, &flag.link); /* queued already: stays first, once */
	open_gate();
	wait_ran(3);
	jobq_push(&q, &flag.link); /* off the queue once it ran: runs again */
	wait_ran(4);
	jobq_stop(&q, drop);
	assert_int_equal(n_ran, 4);
	assert_int_equal(ran[0], 1);
	assert_int_equal(ran[1], 3);
	assert_int_equal(ran[2], 2);
	assert_int_equal(ran[3], 3);
	assert_int_equal(n_dropped, 0);
}

static void test_batch(void **state)
{
	(void)state;
	struct jobq q;
	struct job held = { .id = 1, .gate = true, .batch = true }, a = { .id = 2 },
		   b = { .id = 3 };
	start(&q);
	jobq_push(&q, &held.link);
	wait_in_gate();
	jobq_push(&q, &a.link);
	jobq_push(&q, &b.link);
	open_gate();
	wait_ran(3);
	jobq_stop(&q, drop);
	assert_int_equal(n_ran, 3);
	assert_int_equal(ran[0], 1);
	assert_int_equal(ran[1], 102); /* taken by the first run, in order */
	assert_int_equal(ran[2], 103);
}

static void test_post(void **state)
{
	(void)state;
	struct io_uring ring;
	assert_int_equal(io_uring_queue_init(8, &ring, 0), 0);
	target.ring_fd = ring.ring_fd;
	struct jobq q;
	struct job j = { .id = 1, .post = true };
	start(&q);
	jobq_push(&q, &j.link);
	wait_ran(1);
	assert_true(post_rc >= 0);
	struct io_uring_cqe *cqe;
	assert_int_equal(io_uring_wait_cqe(&ring, &cqe), 0);
	assert_true(cqe->user_data == worker_msg_user_data(WORKER_MSG_OWNER + 1, &j));
	io_uring_cqe_seen(&ring, cqe);
	jobq_stop(&q, drop);
	io_uring_queue_exit(&ring);
}

/* Opens the gate once jobq_stop has marked the queue stopped. */
static void *open_after_stop(void *arg)
{
	struct jobq *q = arg;
	for (bool stopped = false; !stopped;) {
		pthread_mutex_lock(&q->mu);
		stopped = q->stop;
		pthread_mutex_unlock(&q->mu);
		if (!stopped)
			sched_yield();
	}
	open_gate();
	return NULL;
}

static void test_stop(void **state)
{
	(void)state;
	struct jobq q;
	struct job held = { .id = 1, .gate = true, .post = true }, a = { .id = 2 }, b = { .id = 3 };
	target.ring_fd = -1; /* never reached: the post is refused first */
	start(&q);
	jobq_push(&q, &held.link);
	wait_in_gate();
	jobq_push(&q, &a.link);
	jobq_push(&q, &b.link);
	pthread_t opener;
	assert_int_equal(pthread_create(&opener, NULL, open_after_stop, &q), 0);
	jobq_stop(&q, drop); /* the job in hand ends, the queued two are dropped */
	pthread_join(opener, NULL);
	assert_int_equal(n_ran, 1);
	assert_int_equal(post_rc, -ESHUTDOWN);
	assert_int_equal(n_dropped, 2);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_order_and_once),
		cmocka_unit_test(test_batch),
		cmocka_unit_test(test_post),
		cmocka_unit_test(test_stop),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
