/* SHOW STATS, STATS_TOTALS and STATS_AVERAGES: every worker's statistics
 * summed per database (stats/ is made to be read from any thread), and the
 * averages of the last stats_period. PgBouncer's columns; the exporter
 * Debian ships reads total_requests, PgBouncer's name before 1.8 for the
 * query count, so it comes last as well. */
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>

#include "core/worker.h"
#include "session/admin_internal.h"
#include "session/session.h"

#define COLS(a) (int)(sizeof(a) / sizeof(a[0]))

/* The databases PgCrab counts: shard slots, then sharded databases (a
 * slot no shard has taken yet has no name and no row). */
static int n_databases(const struct session *ss)
{
	return ss->shard_cap + ss->n_dbs;
}

/* n numbers as text, into vals[1..n] (vals[0] is the database). */
static void put_numbers(struct admin_out *o, const char *db, const uint64_t *v, int n)
{
	char text[24][24];
	const char *vals[24];
	vals[0] = db;
	for (int i = 0; i < n && i < 23; i++) {
		snprintf(text[i], sizeof(text[i]), "%" PRIu64, v[i]);
		vals[i + 1] = text[i];
	}
	admin_out_row(o, vals, n + 1);
}

/* The seven figures PgBouncer reports per database, in its order:
 * transactions, queries, bytes in, bytes out, and the time of each. */
#define N_STAT 7

static void totals_of(const struct stats_slot *s, uint64_t v[N_STAT])
{
	v[0] = stats_hist_count(&s->xact);
	v[1] = stats_hist_count(&s->query);
	v[2] = s->received;
	v[3] = s->sent;
	v[4] = s->xact.sum_us;
	v[5] = s->query.sum_us;
	v[6] = s->wait.sum_us;
}

static void averages_of(const struct stats_avg *a, uint64_t v[N_STAT])
{
	v[0] = a->xact_count;
	v[1] = a->query_count;
	v[2] = a->received;
	v[3] = a->sent;
	v[4] = a->xact_time_us;
	v[5] = a->query_time_us;
	v[6] = a->wait_time_us;
}

static struct stats_slot *totals(const struct session *ss, const struct runtime *rt)
{
	int n = n_databases(ss);
	size_t size = ((size_t)n + 1) * sizeof(struct stats_slot);
	struct stats_slot *t = aligned_alloc(_Alignof(struct stats_slot), size);
	if (t)
		stats_period_totals(rt, t, n);
	return t;
}

void admin_stats_reply(struct session_worker *sw, enum admin_cmd cmd, struct admin_out *o)
{
	const struct runtime *rt = sw->w->rt;
	const struct session *ss = rt->owner;
	struct stats_slot *t = totals(ss, rt);
	if (!t) {
		o->oom = true;
		return;
	}
	const struct stats_avg *avg = stats_period_averages(&ss->period);
	if (cmd == ADMIN_SHOW_STATS) {
		static const struct admin_col cols[] = {
			{ "database", ADMIN_OID_TEXT },
			{ "total_xact_count", ADMIN_OID_INT8 },
			{ "total_query_count", ADMIN_OID_INT8 },
			{ "total_received", ADMIN_OID_INT8 },
			{ "total_sent", ADMIN_OID_INT8 },
			{ "total_xact_time", ADMIN_OID_INT8 },
			{ "total_query_time", ADMIN_OID_INT8 },
			{ "total_wait_time", ADMIN_OID_INT8 },
			{ "avg_xact_count", ADMIN_OID_INT8 },
			{ "avg_query_count", ADMIN_OID_INT8 },
			{ "avg_recv", ADMIN_OID_INT8 },
			{ "avg_sent", ADMIN_OID_INT8 },
			{ "avg_xact_time", ADMIN_OID_INT8 },
			{ "avg_query_time", ADMIN_OID_INT8 },
			{ "avg_wait_time", ADMIN_OID_INT8 },
			{ "total_requests", ADMIN_OID_INT8 },
		};
		admin_out_row_desc(o, cols, COLS(cols));
		for (int i = 0; i < n_databases(ss); i++) {
			if (!session_slot_name(ss, i))
				continue;
			/* the totals, the period's averages, the query count again */
			uint64_t v[2 * N_STAT + 1];
			totals_of(&t[i], v);
			averages_of(&avg[i], v + N_STAT);
			v[2 * N_STAT] = stats_hist_count(&t[i].query);
			put_numbers(o, session_slot_name(ss, i), v, COLS(v));
		}
	} else {
		static const struct admin_col cols[] = {
			{ "database", ADMIN_OID_TEXT },    { "xact_count", ADMIN_OID_INT8 },
			{ "query_count", ADMIN_OID_INT8 }, { "bytes_received", ADMIN_OID_INT8 },
			{ "bytes_sent", ADMIN_OID_INT8 },  { "xact_time", ADMIN_OID_INT8 },
			{ "query_time", ADMIN_OID_INT8 },  { "wait_time", ADMIN_OID_INT8 },
		};
		admin_out_row_desc(o, cols, COLS(cols));
		for (int i = 0; i < n_databases(ss); i++) {
			if (!session_slot_name(ss, i))
				continue;
			uint64_t v[N_STAT];
			if (cmd == ADMIN_SHOW_STATS_TOTALS)
				totals_of(&t[i], v);
			else
				averages_of(&avg[i], v);
			put_numbers(o, session_slot_name(ss, i), v, COLS(v));
		}
	}
	free(t);
	admin_out_complete(o, "SHOW");
}
