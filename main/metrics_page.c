/* What /metrics says: the workers' statistics summed per shard, per
 * database and per worker, in Prometheus text format. Runs on the metrics
 * thread; reads the workers' counters with relaxed loads (stats/stats.h). */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "main/metrics.h"
#include "pool/server.h"
#include "session/client.h"
#include "session/session.h"
#include "stats/prom.h"
#include "stats/stats.h"

_Static_assert(SERVER_CLOSING < STATS_SERVER_STATES, "stats: a gauge per server state");
_Static_assert(CLIENT_CLOSING < STATS_CLIENT_STATES, "stats: a gauge per client state");

/* The server states the gauges count (in transit and closing are not). */
static const enum server_state server_states[] = {
	SERVER_CONNECTING, SERVER_LOGIN, SERVER_IDLE, SERVER_ACTIVE, SERVER_RESET,
};

#define LABEL_MAX 200

/* Every slot summed over the workers: n_slots entries. */
static struct stats_slot *sum_slots(const struct runtime *rt, int n_slots)
{
	size_t size = (size_t)n_slots * sizeof(struct stats_slot);
	struct stats_slot *sum = aligned_alloc(_Alignof(struct stats_slot), size);
	if (!sum)
		return NULL;
	memset(sum, 0, size);
	for (int w = 0; w < rt->n_workers; w++) {
		const struct stats_worker *sw = &rt->workers[w].stats;
		for (int i = 0; i < n_slots && i < sw->n_slots; i++)
			stats_slot_sum(&sum[i], &sw->slots[i]);
	}
	return sum;
}

/* What a per-shard family shows of its slot. */
enum shard_kind { K_HIST_COUNT, K_COUNTER, K_HISTOGRAM, K_SECONDS };

static const struct {
	const char *name, *type, *help;
	enum shard_kind kind;
	size_t off; /* a struct stats_hist or a uint64_t in struct stats_slot */
} shard_families[] = {
	{ "pgcrab_transactions_total", "counter",
	  "Transactions that ended (ReadyForQuery with status idle) on the shard.", K_HIST_COUNT,
	  offsetof(struct stats_slot, xact) },
	{ "pgcrab_queries_total", "counter",
	  "Requests the shard answered (each ReadyForQuery owed to a client).", K_HIST_COUNT,
	  offsetof(struct stats_slot, query) },
	{ "pgcrab_received_bytes_total", "counter",
	  "Bytes from clients passed on to the shard's servers.", K_COUNTER,
	  offsetof(struct stats_slot, received) },
	{ "pgcrab_sent_bytes_total", "counter",
	  "Bytes the shard's servers sent while linked to clients.", K_COUNTER,
	  offsetof(struct stats_slot, sent) },
	{ "pgcrab_transaction_duration_seconds", "histogram",
	  "Transaction time on the shard: first request to ReadyForQuery idle.", K_HISTOGRAM,
	  offsetof(struct stats_slot, xact) },
	{ "pgcrab_query_duration_seconds", "histogram",
	  "Query time on the shard: request sent to its ReadyForQuery.", K_HISTOGRAM,
	  offsetof(struct stats_slot, query) },
	{ "pgcrab_client_wait_duration_seconds", "histogram",
	  "Time clients waited for a server connection of the shard.", K_HISTOGRAM,
	  offsetof(struct stats_slot, wait) },
	{ "pgcrab_client_maxwait_seconds", "gauge",
	  "How long the oldest client waiting for a server of the shard has waited.", K_SECONDS,
	  offsetof(struct stats_slot, maxwait_us) },
};

static void per_shard(struct prom_buf *b, const struct session *ss, const struct stats_slot *sum)
{
	char lab[LABEL_MAX], lab2[LABEL_MAX * 2];
	for (size_t f = 0; f < sizeof(shard_families) / sizeof(shard_families[0]); f++) {
		const char *name = shard_families[f].name;
		prom_family(b, name, shard_families[f].type, shard_families[f].help);
		for (int i = 0; i < ss->n_shards; i++) {
			const void *field = (const char *)&sum[i] + shard_families[f].off;
			prom_label(lab, sizeof(lab), "shard", ss->shards[i].name);
			switch (shard_families[f].kind) {
			case K_HIST_COUNT:
				prom_sample(b, name, lab, stats_hist_count(field));
				break;
			case K_COUNTER:
				prom_sample(b, name, lab, *(const uint64_t *)field);
				break;
			case K_HISTOGRAM:
				prom_histogram(b, name, lab, field);
				break;
			case K_SECONDS:
				prom_sample_us(b, name, lab, *(const uint64_t *)field);
				break;
			}
		}
	}
	prom_family(b, "pgcrab_servers", "gauge", "Server connections by shard and state.");
	for (int i = 0; i < ss->n_shards; i++) {
		prom_label(lab, sizeof(lab), "shard", ss->shards[i].name);
		for (size_t s = 0; s < sizeof(server_states) / sizeof(server_states[0]); s++) {
			size_t n = strlen(lab);
			memcpy(lab2, lab, n);
			lab2[n] = ',';
			prom_label(lab2 + n + 1, sizeof(lab2) - n - 1, "state",
				   server_state_name(server_states[s]));
			prom_sample_signed(b, "pgcrab_servers", lab2,
					   sum[i].servers[server_states[s]]);
		}
	}
}

/* Clients by the database they named (a shard or a sharded database; ""
 * before they named one) and state. */
static void per_database(struct prom_buf *b, const struct session *ss, const struct stats_slot *sum,
			 int n_slots)
{
	char lab[LABEL_MAX * 2];
	prom_family(b, "pgcrab_clients", "gauge", "Client connections by database and state.");
	for (int i = 0; i < n_slots; i++) {
		const char *db = i < n_slots - 1 ? session_slot_name(ss, i) : "";
		if (!db)
			continue;
		for (int s = 0; s <= CLIENT_CLOSING; s++) {
			prom_label(lab, LABEL_MAX, "database", db);
			size_t n = strlen(lab);
			lab[n] = ',';
			prom_label(lab + n + 1, sizeof(lab) - n - 1, "state",
				   client_state_name((enum client_state)s));
			prom_sample_signed(b, "pgcrab_clients", lab, sum[i].clients[s]);
		}
	}
}

static void per_worker(struct prom_buf *b, const struct runtime *rt)
{
	static const struct {
		const char *name, *type, *help;
		size_t off;
		bool ns;
	} fields[] = {
		{ "pgcrab_worker_loop_busy_seconds_total", "counter",
		  "Time the worker spent handling completions (utilisation: busy / (busy + wait)).",
		  offsetof(struct stats_worker, loop_busy_ns), true },
		{ "pgcrab_worker_loop_wait_seconds_total", "counter",
		  "Time the worker spent waiting in io_uring_enter for completions.",
		  offsetof(struct stats_worker, loop_wait_ns), true },
		{ "pgcrab_worker_loop_iterations_total", "counter",
		  "Iterations of the worker's loop (one submit-and-wait each).",
		  offsetof(struct stats_worker, loop_iterations), false },
		{ "pgcrab_worker_ring_submissions_total", "counter",
		  "Submission queue entries the worker's ring took.",
		  offsetof(struct stats_worker, ring_submissions), false },
		{ "pgcrab_worker_ring_completions_total", "counter",
		  "Completions the worker handled.",
		  offsetof(struct stats_worker, ring_completions), false },
		{ "pgcrab_client_logins_total", "counter", "Clients that logged in.",
		  offsetof(struct stats_worker, logins), false },
		{ "pgcrab_client_login_failures_total", "counter",
		  "Clients refused before they logged in (wrong password, unknown database or "
		  "user, protocol errors, login timeouts).",
		  offsetof(struct stats_worker, login_failures), false },
	};
	char lab[LABEL_MAX];
	char id[16];
	for (size_t f = 0; f < sizeof(fields) / sizeof(fields[0]); f++) {
		prom_family(b, fields[f].name, fields[f].type, fields[f].help);
		for (int w = 0; w < rt->n_workers; w++) {
			struct stats_worker one = { 0 };
			stats_worker_sum(&one, &rt->workers[w].stats);
			uint64_t v = *(const uint64_t *)((const char *)&one + fields[f].off);
			snprintf(id, sizeof(id), "%d", w);
			prom_label(lab, sizeof(lab), "worker", id);
			if (fields[f].ns)
				prom_sample_ns(b, fields[f].name, lab, v);
			else
				prom_sample(b, fields[f].name, lab, v);
		}
	}
	prom_family(b, "pgcrab_worker_clients", "gauge", "Client connections on the worker.");
	for (int w = 0; w < rt->n_workers; w++) {
		snprintf(id, sizeof(id), "%d", w);
		prom_label(lab, sizeof(lab), "worker", id);
		prom_sample_signed(b, "pgcrab_worker_clients", lab,
				   atomic_load_explicit(&rt->workers[w].n_clients,
							memory_order_relaxed));
	}
	prom_family(b, "pgcrab_worker_servers", "gauge",
		    "Server connections on the worker (in transit or closing not counted).");
	for (int w = 0; w < rt->n_workers; w++) {
		const struct stats_worker *sw = &rt->workers[w].stats;
		int64_t n = 0;
		for (int i = 0; i < sw->n_slots; i++)
			for (int s = 0; s < STATS_SERVER_STATES; s++)
				n += STATS_GET(sw->slots[i].servers[s]);
		snprintf(id, sizeof(id), "%d", w);
		prom_label(lab, sizeof(lab), "worker", id);
		prom_sample_signed(b, "pgcrab_worker_servers", lab, n);
	}
}

void metrics_render(const struct runtime *rt, struct prom_buf *b)
{
	const struct session *ss = rt->owner;
	int n_slots = ss->shard_cap + ss->n_dbs + 1;
	struct stats_slot *sum = sum_slots(rt, n_slots);
	if (!sum) {
		b->oom = true;
		return;
	}
	per_shard(b, ss, sum);
	per_database(b, ss, sum, n_slots);
	per_worker(b, rt);
	free(sum);
}
