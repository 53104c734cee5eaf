#include "session/stats_period.h"

#include <stdlib.h>
#include <string.h>

#include "core/log.h"
#include "core/worker.h"
#include "session/session.h"

/* Slots keep their 64-byte alignment on the heap too. */
static struct stats_slot *slots_new(int n)
{
	size_t size = ((size_t)n + 1) * sizeof(struct stats_slot);
	struct stats_slot *s = aligned_alloc(_Alignof(struct stats_slot), size);
	if (s)
		memset(s, 0, size);
	return s;
}

int stats_period_init(struct stats_period *sp, int n_slots)
{
	memset(sp, 0, sizeof(*sp));
	sp->n_slots = n_slots;
	sp->avg[0] = calloc((size_t)n_slots + 1, sizeof(struct stats_avg));
	sp->avg[1] = calloc((size_t)n_slots + 1, sizeof(struct stats_avg));
	sp->last = slots_new(n_slots);
	return sp->avg[0] && sp->avg[1] && sp->last ? 0 : -1;
}

void stats_period_free(struct stats_period *sp)
{
	free(sp->avg[0]);
	free(sp->avg[1]);
	free(sp->last);
	memset(sp, 0, sizeof(*sp));
}

void stats_period_totals(const struct runtime *rt, struct stats_slot *out, int n)
{
	memset(out, 0, (size_t)n * sizeof(*out));
	for (int w = 0; w < rt->n_workers; w++) {
		const struct stats_worker *st = &rt->workers[w].stats;
		for (int i = 0; i < n && i < st->n_slots; i++)
			stats_slot_sum(&out[i], &st->slots[i]);
	}
}

static uint64_t per(uint64_t amount, uint64_t count)
{
	return count ? amount / count : 0;
}

/* The slot's growth over the period, per second (times per event). */
static void average(struct stats_avg *a, const struct stats_slot *now, const struct stats_slot *was,
		    uint64_t period_ms)
{
	uint64_t xacts = stats_hist_count(&now->xact) - stats_hist_count(&was->xact);
	uint64_t queries = stats_hist_count(&now->query) - stats_hist_count(&was->query);
	uint64_t waits = stats_hist_count(&now->wait) - stats_hist_count(&was->wait);
	uint64_t s = period_ms ? period_ms : 1;
	a->xact_count = xacts * 1000 / s;
	a->query_count = queries * 1000 / s;
	a->received = (now->received - was->received) * 1000 / s;
	a->sent = (now->sent - was->sent) * 1000 / s;
	a->xact_time_us = per(now->xact.sum_us - was->xact.sum_us, xacts);
	a->query_time_us = per(now->query.sum_us - was->query.sum_us, queries);
	a->wait_time_us = per(now->wait.sum_us - was->wait.sum_us, waits);
}

void stats_period_tick(struct session *ss, const struct runtime *rt, uint64_t now_ms,
		       uint64_t period_ms)
{
	struct stats_period *sp = &ss->period;
	if (!period_ms || !sp->avg[0])
		return;
	if (sp->next_ms == 0) { /* the first period starts now */
		stats_period_totals(rt, sp->last, sp->n_slots);
		sp->next_ms = now_ms + period_ms;
		return;
	}
	if (now_ms < sp->next_ms)
		return;
	uint64_t took = now_ms - (sp->next_ms - period_ms);
	sp->next_ms = now_ms + period_ms;
	struct stats_slot *now = slots_new(sp->n_slots);
	if (!now)
		return;
	stats_period_totals(rt, now, sp->n_slots);
	int next = 1 - atomic_load(&sp->current);
	for (int i = 0; i < sp->n_slots; i++) {
		struct stats_avg *a = &sp->avg[next][i];
		average(a, &now[i], &sp->last[i], took);
		const char *name = i < sp->n_slots - 1 ? session_slot_name(ss, i) : NULL;
		if (name)
			log_info("stats: %s: %llu xacts/s, %llu queries/s, in %llu B/s, out %llu B/s, "
				 "xact %llu us, query %llu us, wait %llu us",
				 name, (unsigned long long)a->xact_count,
				 (unsigned long long)a->query_count,
				 (unsigned long long)a->received, (unsigned long long)a->sent,
				 (unsigned long long)a->xact_time_us,
				 (unsigned long long)a->query_time_us,
				 (unsigned long long)a->wait_time_us);
	}
	atomic_store(&sp->current, next);
	memcpy(sp->last, now, (size_t)sp->n_slots * sizeof(*now));
	free(now);
}

const struct stats_avg *stats_period_averages(const struct stats_period *sp)
{
	return sp->avg[atomic_load(&((struct stats_period *)sp)->current)];
}
