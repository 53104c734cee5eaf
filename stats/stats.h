/* Statistics: counters and histograms each worker keeps of its own work,
 * and the sums another thread (metrics, admin console) reads from them.
 *
 * One writer per counter: a worker writes only its own struct stats_worker
 * and slots, so the hot path adds without a locked instruction (a relaxed
 * atomic load and store of a plain uint64_t, which compiles to an ordinary
 * add). A reader on another thread loads each field with a relaxed atomic
 * load: an aligned 64-bit load is never torn on x86-64 or arm64, so it sees
 * the old or the new value, never half of each. Fields are not read as one
 * snapshot: a histogram's sum may be one record ahead of its buckets; each
 * field by itself only grows (counters) or is exact at some instant
 * (gauges), which is what Prometheus and SHOW STATS need.
 *
 * Pure: no I/O, no threads; knows nothing of clients or servers (their
 * states are plain indexes here, named by whoever formats them). */
#ifndef PGCRAB_STATS_H
#define PGCRAB_STATS_H

#include <stdint.h>

/* Relaxed atomic access to a field only its owner writes: no lock prefix,
 * but neither the writer's store nor the reader's load can be elided,
 * merged or torn by the compiler. */
#define STATS_GET(field)    __atomic_load_n(&(field), __ATOMIC_RELAXED)
#define STATS_SET(field, v) __atomic_store_n(&(field), (v), __ATOMIC_RELAXED)
#define STATS_ADD(field, n) STATS_SET(field, STATS_GET(field) + (n))
#define STATS_INC(field)    STATS_ADD(field, 1)

/* Histogram buckets, upper bounds in microseconds (Prometheus "le"), from
 * 100 µs to 60 s; one more bucket past the last counts the rest (+Inf). */
#define STATS_BUCKETS 18
extern const uint64_t stats_bucket_le_us[STATS_BUCKETS];

/* Counts per bucket (not cumulative: one add per record); the count is
 * the sum of the buckets, so it always agrees with them. */
struct stats_hist {
	uint64_t bucket[STATS_BUCKETS + 1];
	uint64_t sum_us;
};

/* Gauges: states are indexes below these (the client's and the server's
 * enums, checked where they are used). Per worker a gauge may go below
 * zero only transiently for no state; sums are exact. */
#define STATS_CLIENT_STATES 12
#define STATS_SERVER_STATES 8

/* One database slot on one worker: a shard (its traffic, its servers) or
 * a database clients name (a shard, a sharded database, or none yet).
 * Its own cache lines: a worker never shares a line with another. */
struct stats_slot {
	/* PgBouncer's SHOW STATS counters: total_xact_count/_time and
	 * total_query_count/_time are the histograms' count and sum; a wait's
	 * count and sum make total_wait_time */
	struct stats_hist xact;
	struct stats_hist query;
	struct stats_hist wait;
	uint64_t received;   /* bytes from clients passed on to the shard's servers */
	uint64_t sent;       /* bytes the shard's servers sent while linked to clients */
	uint64_t logins;     /* clients of this database that logged in */
	uint64_t maxwait_us; /* the oldest waiting client's wait, as of the last tick */
	int64_t clients[STATS_CLIENT_STATES];
	int64_t servers[STATS_SERVER_STATES];
} __attribute__((aligned(64)));

/* One worker's statistics (embedded in struct worker). */
struct stats_worker {
	/* the loop: time spent handling completions vs waiting for them */
	uint64_t loop_busy_ns;
	uint64_t loop_wait_ns;
	uint64_t loop_iterations;
	uint64_t ring_submissions; /* SQEs the kernel took */
	uint64_t ring_completions; /* CQEs handled */
	uint64_t logins;
	uint64_t login_failures;  /* a client refused before it was logged in */
	struct stats_slot *slots; /* n_slots, set up before the worker starts */
	int n_slots;
};

/* Allocates n zeroed slots (aligned). 0, or -1 when out of memory. */
int stats_worker_init(struct stats_worker *sw, int n_slots) __attribute__((warn_unused_result));
void stats_worker_free(struct stats_worker *sw);

/* The bucket a duration falls in (STATS_BUCKETS: past the last bound). */
static inline unsigned stats_bucket_of(uint64_t us)
{
	unsigned i = 0;
	while (i < STATS_BUCKETS && us > stats_bucket_le_us[i])
		i++;
	return i;
}

static inline void stats_hist_add(struct stats_hist *h, uint64_t us)
{
	STATS_INC(h->bucket[stats_bucket_of(us)]);
	STATS_ADD(h->sum_us, us);
}

/* A gauge moves from state old to state st (-1: not counted). */
static inline void stats_gauge_move(int64_t *g, int old, int st)
{
	if (old >= 0)
		STATS_ADD(g[old], -1);
	if (st >= 0)
		STATS_INC(g[st]);
}

static inline struct stats_slot *stats_slot(struct stats_worker *sw, int slot)
{
	return &sw->slots[slot];
}

/* Readers (any thread): dst += src, field by field. */
void stats_hist_sum(struct stats_hist *dst, const struct stats_hist *src);
void stats_slot_sum(struct stats_slot *dst, const struct stats_slot *src);
void stats_worker_sum(struct stats_worker *dst, const struct stats_worker *src);
uint64_t stats_hist_count(const struct stats_hist *h);

#endif
