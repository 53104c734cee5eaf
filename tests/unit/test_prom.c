/* stats/: bucket boundaries, histogram and sample lines byte for byte,
 * label escaping (and truncation that stays well formed), the buffer's
 * growth, sums across workers, and the endpoint's request check for every
 * status it answers. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include <stdlib.h>
#include <string.h>

#include "stats/prom.h"
#include "stats/stats.h"

static void test_buckets(void **state)
{
	(void)state;
	assert_int_equal(stats_bucket_le_us[0], 100);
	assert_int_equal(stats_bucket_le_us[STATS_BUCKETS - 1], 60000000);
	for (int i = 1; i < STATS_BUCKETS; i++)
		assert_true(stats_bucket_le_us[i] > stats_bucket_le_us[i - 1]);
	/* le is inclusive: a value on a bound is in that bucket */
	assert_int_equal(stats_bucket_of(0), 0);
	assert_int_equal(stats_bucket_of(100), 0);
	assert_int_equal(stats_bucket_of(101), 1);
	assert_int_equal(stats_bucket_of(60000000), STATS_BUCKETS - 1);
	assert_int_equal(stats_bucket_of(60000001), STATS_BUCKETS);
	assert_int_equal(stats_bucket_of(UINT64_MAX), STATS_BUCKETS);
}

static void test_histogram_text(void **state)
{
	(void)state;
	struct stats_hist h = { 0 };
	stats_hist_add(&h, 50);       /* le 0.0001 */
	stats_hist_add(&h, 1000);     /* le 0.001 */
	stats_hist_add(&h, 90000000); /* +Inf */
	assert_int_equal(stats_hist_count(&h), 3);
	struct prom_buf b = { 0 };
	prom_histogram(&b, "x_seconds", "shard=\"a\"", &h);
	assert_false(b.oom);
	const char *want_start = "x_seconds_bucket{shard=\"a\",le=\"0.0001\"} 1\n"
				 "x_seconds_bucket{shard=\"a\",le=\"0.00025\"} 1\n"
				 "x_seconds_bucket{shard=\"a\",le=\"0.0005\"} 1\n"
				 "x_seconds_bucket{shard=\"a\",le=\"0.001\"} 2\n";
	assert_memory_equal(b.p, want_start, strlen(want_start));
	const char *want_end = "x_seconds_bucket{shard=\"a\",le=\"60\"} 2\n"
			       "x_seconds_bucket{shard=\"a\",le=\"+Inf\"} 3\n"
			       "x_seconds_sum{shard=\"a\"} 90.001050\n"
			       "x_seconds_count{shard=\"a\"} 3\n";
	assert_true(b.len > strlen(want_end));
	assert_string_equal(b.p + b.len - strlen(want_end), want_end);
	prom_buf_free(&b);

	/* no labels: the le label alone */
	prom_histogram(&b, "y", "", &h);
	assert_memory_equal(b.p, "y_bucket{le=\"0.0001\"} 1\n", 24);
	assert_non_null(strstr(b.p, "\ny_sum 90.001050\ny_count 3\n"));
	prom_buf_free(&b);
}

static void test_samples(void **state)
{
	(void)state;
	struct prom_buf b = { 0 };
	prom_family(&b, "pgcrab_x_total", "counter", "Things.");
	prom_sample(&b, "pgcrab_x_total", "worker=\"0\"", 18446744073709551615ull);
	prom_sample_signed(&b, "g", "", -3);
	prom_sample_us(&b, "s", "", 1500001);
	prom_sample_ns(&b, "n", "", 2000000005);
	assert_string_equal(b.p,
			    "# HELP pgcrab_x_total Things.\n"
			    "# TYPE pgcrab_x_total counter\n"
			    "pgcrab_x_total{worker=\"0\"} 18446744073709551615\n"
			    "g -3\n"
			    "s 1.500001\n"
			    "n 2.000000005\n");
	prom_buf_free(&b);
}

static void test_buffer_grows(void **state)
{
	(void)state;
	struct prom_buf b = { 0 };
	for (int i = 0; i < 5000; i++)
		prom_sample(&b, "metric_with_a_longish_name", "shard=\"s\"", (uint64_t)i);
	assert_false(b.oom);
	assert_true(b.len > 100000);
	assert_int_equal(b.len, strlen(b.p));
	assert_non_null(strstr(b.p, "metric_with_a_longish_name{shard=\"s\"} 4999\n"));
	prom_buf_free(&b);
}

static void test_label(void **state)
{
	(void)state;
	char out[64];
	prom_label(out, sizeof(out), "shard", "a\"b\\c\nd");
	assert_string_equal(out, "shard=\"a\\\"b\\\\c\\nd\"");
	/* too long: cut, but still a closed label, never half an escape */
	char small[12];
	prom_label(small, sizeof(small), "db", "\"\"\"\"\"\"");
	assert_string_equal(small, "db=\"\\\"\\\"\\\"\"");
	prom_label(small, sizeof(small), "db", "abcdefghij");
	assert_string_equal(small, "db=\"abcdef\"");
}

static void test_sums(void **state)
{
	(void)state;
	struct stats_worker a, b;
	assert_int_equal(stats_worker_init(&a, 2), 0);
	assert_int_equal(stats_worker_init(&b, 2), 0);
	assert_int_equal((uintptr_t)a.slots % 64, 0);
	stats_hist_add(&stats_slot(&a, 1)->xact, 200);
	stats_hist_add(&stats_slot(&b, 1)->xact, 300);
	STATS_ADD(stats_slot(&a, 1)->sent, 10);
	STATS_SET(stats_slot(&a, 1)->maxwait_us, 5);
	STATS_SET(stats_slot(&b, 1)->maxwait_us, 7);
	/* a server moves from a's idle to b's idle (donation) */
	stats_gauge_move(stats_slot(&a, 1)->servers, -1, 2);
	stats_gauge_move(stats_slot(&a, 1)->servers, 2, -1);
	stats_gauge_move(stats_slot(&b, 1)->servers, -1, 2);
	STATS_INC(a.logins);
	STATS_ADD(b.loop_busy_ns, 9);
	struct stats_slot sum;
	memset(&sum, 0, sizeof(sum));
	stats_slot_sum(&sum, &a.slots[1]);
	stats_slot_sum(&sum, &b.slots[1]);
	assert_int_equal(stats_hist_count(&sum.xact), 2);
	assert_int_equal(sum.xact.sum_us, 500);
	assert_int_equal(sum.xact.bucket[stats_bucket_of(200)], 1);
	assert_int_equal(sum.sent, 10);
	assert_int_equal(sum.maxwait_us, 7); /* the longest, not a sum */
	assert_int_equal(sum.servers[2], 1);
	struct stats_worker tot = { 0 };
	stats_worker_sum(&tot, &a);
	stats_worker_sum(&tot, &b);
	assert_int_equal(tot.logins, 1);
	assert_int_equal(tot.loop_busy_ns, 9);
	stats_worker_free(&a);
	stats_worker_free(&b);
}

static int req(const char *s)
{
	return prom_http_request(s, strlen(s), 8192);
}

static void test_http_request(void **state)
{
	(void)state;
	assert_int_equal(req("GET /metrics HTTP/1.1\r\nHost: x\r\n\r\n"), 200);
	assert_int_equal(req("GET /metrics HTTP/1.0\n\n"), 200);
	assert_int_equal(req("GET /metrics?name[]=x HTTP/1.1\r\n\r\n"), 200);
	assert_int_equal(req("POST /metrics HTTP/1.1\r\n\r\n"), 405);
	assert_int_equal(req("GETS /metrics HTTP/1.1\r\n\r\n"), 405);
	assert_int_equal(req("GET / HTTP/1.1\r\n\r\n"), 404);
	assert_int_equal(req("POST /x HTTP/1.1\r\n\r\n"), 404);
	assert_int_equal(req("GET /metrics/ HTTP/1.1\r\n\r\n"), 404);
	assert_int_equal(req("GET /metrics HTTP/2.0\r\n\r\n"), 400);
	assert_int_equal(req("GET /metrics\r\n\r\n"), 400);
	assert_int_equal(req(" /metrics HTTP/1.1\r\n\r\n"), 400);
	assert_int_equal(req("\r\n\r\n"), 400);
	/* incomplete: wait for more, until the bound */
	assert_int_equal(req("GET /metrics HTTP/1.1\r\nHost: x\r\n"), 0);
	assert_int_equal(req(""), 0);
	char big[100];
	memset(big, 'a', sizeof(big));
	assert_int_equal(prom_http_request(big, sizeof(big), sizeof(big)), 431);
	assert_int_equal(prom_http_request(big, sizeof(big) - 1, sizeof(big)), 0);
}

static void test_http_head(void **state)
{
	(void)state;
	char out[256];
	size_t n = prom_http_head(out, sizeof(out), 405, 7);
	assert_int_equal(n, strlen(out));
	assert_string_equal(out,
			    "HTTP/1.1 405 Method Not Allowed\r\n"
			    "Content-Type: text/plain; charset=utf-8\r\n"
			    "Content-Length: 7\r\n"
			    "Allow: GET\r\n"
			    "Connection: close\r\n\r\n");
	n = prom_http_head(out, sizeof(out), 200, 12345);
	assert_non_null(strstr(out, "text/plain; version=0.0.4"));
	assert_non_null(strstr(out, "Content-Length: 12345\r\n"));
	assert_int_equal(prom_http_head(out, 20, 200, 1), 0); /* does not fit */
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_buckets),      cmocka_unit_test(test_histogram_text),
		cmocka_unit_test(test_samples),      cmocka_unit_test(test_buffer_grows),
		cmocka_unit_test(test_label),        cmocka_unit_test(test_sums),
		cmocka_unit_test(test_http_request), cmocka_unit_test(test_http_head),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
