/* Every stats_period the first worker adds up every worker's statistics
 * per database, keeps the per-second averages over the period for SHOW
 * STATS and STATS_AVERAGES, and logs a line per database as PgBouncer does. */
#ifndef PGCRAB_STATS_PERIOD_H
#define PGCRAB_STATS_PERIOD_H

#include <stdatomic.h>
#include <stdint.h>

#include "stats/stats.h"

struct session;
struct runtime;

/* Per database, per second over the last period. */
struct stats_avg {
	uint64_t xact_count, query_count, received, sent;
	uint64_t xact_time_us, query_time_us, wait_time_us; /* per transaction / query / wait */
};

/* Written by the first worker only; read by any console. Two buffers:
 * the writer fills the one readers are not pointed at, then flips. */
struct stats_period {
	struct stats_avg *avg[2];
	struct stats_slot *last; /* totals at the last period's end */
	_Atomic int current;
	int n_slots;
	uint64_t next_ms; /* when the next period ends (writer's clock) */
};

int stats_period_init(struct stats_period *sp, int n_slots) __attribute__((warn_unused_result));
void stats_period_free(struct stats_period *sp);
/* The totals of every worker's slot i into out[i], for n slots. */
void stats_period_totals(const struct runtime *rt, struct stats_slot *out, int n);
/* On the first worker's tick. */
void stats_period_tick(struct session *ss, const struct runtime *rt, uint64_t now_ms,
		       uint64_t period_ms);
/* The averages of the last period ended (zeros before the first). */
const struct stats_avg *stats_period_averages(const struct stats_period *sp);

#endif
