/* Statistics storage and the readers' sums (see stats/stats.h). */
#include "stats/stats.h"

#include <stdlib.h>
#include <string.h>

/* 1-2.5-5 steps: fine where pooled transactions live (sub-millisecond to
 * tens of milliseconds), coarse up to a minute of waiting */
const uint64_t stats_bucket_le_us[STATS_BUCKETS] = {
	100,    250,    500,    1000,    2500,    5000,    10000,    25000,    50000,
	100000, 250000, 500000, 1000000, 2500000, 5000000, 10000000, 30000000, 60000000,
};

int stats_worker_init(struct stats_worker *sw, int n_slots)
{
	memset(sw, 0, sizeof(*sw));
	size_t size = sizeof(struct stats_slot) * (size_t)(n_slots > 0 ? n_slots : 1);
	sw->slots = aligned_alloc(_Alignof(struct stats_slot), size);
	if (!sw->slots)
		return -1;
	memset(sw->slots, 0, size);
	sw->n_slots = n_slots;
	return 0;
}

void stats_worker_free(struct stats_worker *sw)
{
	free(sw->slots);
	sw->slots = NULL;
	sw->n_slots = 0;
}

void stats_hist_sum(struct stats_hist *dst, const struct stats_hist *src)
{
	for (int i = 0; i <= STATS_BUCKETS; i++)
		dst->bucket[i] += STATS_GET(src->bucket[i]);
	dst->sum_us += STATS_GET(src->sum_us);
}

uint64_t stats_hist_count(const struct stats_hist *h)
{
	uint64_t n = 0;
	for (int i = 0; i <= STATS_BUCKETS; i++)
		n += h->bucket[i];
	return n;
}

void stats_slot_sum(struct stats_slot *dst, const struct stats_slot *src)
{
	stats_hist_sum(&dst->xact, &src->xact);
	stats_hist_sum(&dst->query, &src->query);
	stats_hist_sum(&dst->wait, &src->wait);
	dst->received += STATS_GET(src->received);
	dst->sent += STATS_GET(src->sent);
	dst->logins += STATS_GET(src->logins);
	uint64_t mw = STATS_GET(src->maxwait_us);
	if (mw > dst->maxwait_us)
		dst->maxwait_us = mw; /* the oldest waiter of any worker */
	for (int i = 0; i < STATS_CLIENT_STATES; i++)
		dst->clients[i] += STATS_GET(src->clients[i]);
	for (int i = 0; i < STATS_SERVER_STATES; i++)
		dst->servers[i] += STATS_GET(src->servers[i]);
}

void stats_worker_sum(struct stats_worker *dst, const struct stats_worker *src)
{
	dst->loop_busy_ns += STATS_GET(src->loop_busy_ns);
	dst->loop_wait_ns += STATS_GET(src->loop_wait_ns);
	dst->loop_iterations += STATS_GET(src->loop_iterations);
	dst->ring_submissions += STATS_GET(src->ring_submissions);
	dst->ring_completions += STATS_GET(src->ring_completions);
	dst->logins += STATS_GET(src->logins);
	dst->login_failures += STATS_GET(src->login_failures);
}
