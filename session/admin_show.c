/* The admin console's SHOW commands: what each worker reports of its
 * clients, servers and pools, and the row sets built from all of it. The
 * column names and their order follow PgBouncer's where the concept is
 * the same, so that its exporters and dashboards read PgCrab; PgCrab's own
 * columns come last. */
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <time.h>

#include "core/net.h"
#include "core/version.h"
#include "core/worker.h"
#include "pool/role.h"
#include "session/admin_internal.h"
#include "session/client.h"
#include "session/session.h"

#define COLS(a) (int)(sizeof(a) / sizeof(a[0]))

/* Pools are reported per shard, then one row per sharded database (its
 * clients; its servers are its shards'), then per role and shard for
 * shards whose clients log in as themselves (roles by their index in the
 * shared role table, which only grows: a role made after the command began
 * is left out). */
static int n_pool_rows(const struct session_worker *sw, int n_roles)
{
	return sw->pools.shard_cap + sw->n_dbs + n_roles * sw->pools.shard_cap;
}

/* Rows are laid out by shard_cap, which every worker shares, not by the
 * shards a worker knows: a reload reaches the workers one by one. */
static int role_rows_start(const struct session_worker *sw)
{
	return sw->pools.shard_cap + sw->n_dbs;
}

static int roles_in_use(const struct session_worker *sw)
{
	const struct pool_roles *t = sw->pools.roles;
	int n = 0;
	while (t && n < POOL_ROLES_MAX && atomic_load(&((struct pool_roles *)t)->slots[n]))
		n++;
	return n;
}

/* The row of a pool's servers and clients, or -1. */
static int pool_row(const struct session_worker *sw, const struct pool *p, int n_roles)
{
	if (!p->role)
		return p->shard->index;
	if (p->role->index >= n_roles)
		return -1;
	return role_rows_start(sw) + p->role->index * sw->pools.shard_cap + p->shard->index;
}

enum pool_num {
	PN_CL_ACTIVE,
	PN_CL_WAITING,
	PN_SV_ACTIVE,
	PN_SV_IDLE,
	PN_SV_USED,
	PN_SV_TESTED,
	PN_SV_LOGIN,
	PN_MAXWAIT_US,
	PN_COUNT,
};

enum list_num {
	LN_USED_CLIENTS,
	LN_LOGIN_CLIENTS,
	LN_USED_SERVERS,
	LN_COUNT,
};

int admin_show_nums(const struct session_worker *sw, struct admin_gather *g)
{
	switch (g->cmd) {
	case ADMIN_SHOW_POOLS:
		g->n_roles = roles_in_use(sw);
		return n_pool_rows(sw, g->n_roles) * PN_COUNT;
	case ADMIN_SHOW_LISTS:
	case ADMIN_SHOW_WORKERS: /* the same counts, per worker */
		return LN_COUNT;
	case ADMIN_KILL_CLIENT:
		return 1;
	default:
		return 0;
	}
}

static bool logging_in(enum client_state st)
{
	return st == CLIENT_STARTUP || st == CLIENT_AUTH || st == CLIENT_LOGIN_WAIT
		|| st == CLIENT_LOGIN_CHECK;
}

static bool on_console(enum client_state st)
{
	return st == CLIENT_ADMIN || st == CLIENT_ADMIN_BUSY;
}

/* The pool row a client counts in, or -1 (logging in, console). */
static int pool_row_of(const struct session_worker *sw, const struct client *cl, int n_roles)
{
	if (logging_in(cl->state) || on_console(cl->state) || !cl->pool)
		return -1;
	if (cl->db)
		return sw->pools.shard_cap + (int)(cl->db - sw->dbs);
	return pool_row(sw, cl->pool, n_roles);
}

/* Calls fn for every pool of the worker: the shards' own, then the roles'. */
static void each_pool(struct session_worker *sw, void (*fn)(struct pool *p, void *arg), void *arg)
{
	for (int i = 0; i < sw->pools.n_shards; i++)
		fn(&sw->pools.pools[i], arg);
	for (struct list *n = sw->pools.role_list.next; n && n != &sw->pools.role_list; n = n->next)
		fn(list_entry(n, struct pool, role_link), arg);
}

struct pools_acc {
	struct session_worker *sw;
	int64_t *nums;
	int n_roles;
};

static void count_servers(struct pool *p, void *arg)
{
	struct pools_acc *acc = arg;
	int row = pool_row(acc->sw, p, acc->n_roles);
	if (row < 0)
		return;
	int64_t *v = acc->nums + row * PN_COUNT;
	for (struct list *n = p->servers.next; n != &p->servers; n = n->next) {
		struct server *s = list_entry(n, struct server, all);
		switch (s->state) {
		case SERVER_CONNECTING:
		case SERVER_TLS_ASK:
		case SERVER_LOGIN:
			v[PN_SV_LOGIN]++;
			break;
		case SERVER_IDLE:
		case SERVER_DONATING:
			v[PN_SV_IDLE]++;
			break;
		case SERVER_ACTIVE:
			v[PN_SV_ACTIVE]++;
			break;
		case SERVER_RESET: /* being cleaned after its client left */
			v[PN_SV_TESTED]++;
			break;
		case SERVER_CLOSING:
			break;
		}
	}
}

static void collect_pools(struct session_worker *sw, int64_t *nums, int n_roles)
{
	uint64_t now = sw->w->now_ms;
	for (struct list *n = sw->clients.next; n != &sw->clients; n = n->next) {
		struct client *cl = list_entry(n, struct client, link);
		int row = pool_row_of(sw, cl, n_roles);
		if (row < 0 || cl->state == CLIENT_CLOSING)
			continue;
		int64_t *v = nums + row * PN_COUNT;
		if (cl->state == CLIENT_WAITING) {
			v[PN_CL_WAITING]++;
			int64_t us = (int64_t)(now - cl->c.since_ms) * 1000;
			if (us > v[PN_MAXWAIT_US])
				v[PN_MAXWAIT_US] = us;
		} else {
			v[PN_CL_ACTIVE]++; /* linked, or idle with nothing waiting */
		}
	}
	struct pools_acc acc = { sw, nums, n_roles };
	each_pool(sw, count_servers, &acc);
}

/* ---- one row per client or server ------------------------------------------ */

/* Wall-clock text of a moment on the worker's monotonic clock. */
static void fmt_time(const struct worker *w, uint64_t at_ms, char *out, size_t len)
{
	time_t now = time(NULL);
	time_t t = now - (time_t)((w->now_ms - at_ms) / 1000);
	struct tm tm;
	gmtime_r(&t, &tm);
	strftime(out, len, "%Y-%m-%d %H:%M:%S UTC", &tm);
}

static const struct admin_col conn_cols[] = {
	{ "type", ADMIN_OID_TEXT },         { "user", ADMIN_OID_TEXT },
	{ "database", ADMIN_OID_TEXT },     { "state", ADMIN_OID_TEXT },
	{ "addr", ADMIN_OID_TEXT },         { "port", ADMIN_OID_INT4 },
	{ "local_addr", ADMIN_OID_TEXT },   { "local_port", ADMIN_OID_INT4 },
	{ "connect_time", ADMIN_OID_TEXT }, { "request_time", ADMIN_OID_TEXT },
	{ "wait", ADMIN_OID_INT4 },         { "wait_us", ADMIN_OID_INT4 },
	{ "close_needed", ADMIN_OID_INT4 }, { "ptr", ADMIN_OID_TEXT },
	{ "link", ADMIN_OID_TEXT },         { "remote_pid", ADMIN_OID_INT4 },
	{ "tls", ADMIN_OID_TEXT },          { "application_name", ADMIN_OID_TEXT },
	{ "worker", ADMIN_OID_INT4 },       { "pgcrab_state", ADMIN_OID_TEXT },
};

/* A connection's id on the console (ptr, KILL_CLIENT): unique across
 * workers for the process's life. */
static void fmt_ptr(const struct conn *c, char *out, size_t len)
{
	snprintf(out, len, "%" PRIu64, (c->id << 8) | (uint64_t)c->w->id);
}

struct conn_row {
	const char *type, *user, *database, *state, *app, *pgcrab_state;
	const struct conn *c, *link;
	uint64_t born_ms;
	uint64_t wait_since_ms; /* 0: not waiting */
	int32_t remote_pid;
};

static void put_conn_row(struct admin_out *o, const struct conn_row *r)
{
	const struct conn *c = r->c;
	struct sockaddr_storage peer, local;
	socklen_t plen = sizeof(peer), llen = sizeof(local);
	/* a query of the socket's own addresses: nothing to wait for */
	if (getpeername(c->fd, (struct sockaddr *)&peer, &plen) != 0)
		plen = 0;
	if (getsockname(c->fd, (struct sockaddr *)&local, &llen) != 0)
		llen = 0;
	char addr[64], port[8], laddr[64], lport[8], born[40], since[40], wait_s[24], wait_us[24];
	char ptr[24], link[24] = "", pid[16], worker[8];
	net_addr_text(&peer, plen, addr, sizeof(addr), port, sizeof(port));
	net_addr_text(&local, llen, laddr, sizeof(laddr), lport, sizeof(lport));
	fmt_time(c->w, r->born_ms, born, sizeof(born));
	fmt_time(c->w, c->since_ms, since, sizeof(since));
	uint64_t waited = r->wait_since_ms ? c->w->now_ms - r->wait_since_ms : 0;
	snprintf(wait_s, sizeof(wait_s), "%" PRIu64, waited / 1000);
	snprintf(wait_us, sizeof(wait_us), "%" PRIu64, (waited % 1000) * 1000);
	fmt_ptr(c, ptr, sizeof(ptr));
	if (r->link)
		fmt_ptr(r->link, link, sizeof(link));
	snprintf(pid, sizeof(pid), "%d", r->remote_pid);
	snprintf(worker, sizeof(worker), "%d", c->w->id);
	const char *vals[] = { r->type,     r->user,
			       r->database, r->state,
			       addr,        port,
			       laddr,       lport,
			       born,        since,
			       wait_s,      wait_us,
			       "0",         ptr,
			       link,        pid,
			       "",          r->app ? r->app : "",
			       worker,      r->pgcrab_state };
	_Static_assert(COLS(vals) == COLS(conn_cols), "a value per column");
	admin_out_row(o, vals, COLS(vals));
}

static const char *client_db_name(const struct client *cl)
{
	if (cl->db)
		return cl->db->cfg->name;
	if (on_console(cl->state))
		return "pgcrab";
	return cl->pool ? cl->pool->shard->cfg->name : "";
}

/* PgBouncer's words for a client's state. */
static const char *client_public_state(enum client_state st)
{
	switch (st) {
	case CLIENT_ACTIVE:
	case CLIENT_IDLE:
	case CLIENT_ADMIN:
	case CLIENT_ADMIN_BUSY:
		return "active";
	case CLIENT_WAITING:
		return "waiting";
	default:
		return "login";
	}
}

static void collect_clients(struct session_worker *sw, struct admin_out *o)
{
	for (struct list *n = sw->clients.next; n != &sw->clients; n = n->next) {
		struct client *cl = list_entry(n, struct client, link);
		if (cl->state == CLIENT_CLOSING)
			continue;
		struct server *s = cl->rl.legs ? cl->rl.legs->server : NULL;
		struct conn_row r = {
			.type = "C",
			.user = cl->user    ? cl->user
				: cl->login ? cl->login->user
					    : "",
			.database = client_db_name(cl),
			.state = client_public_state(cl->state),
			.app = params_get(&cl->startup, "application_name"),
			.pgcrab_state = client_state_name(cl->state),
			.c = &cl->c,
			.link = s ? &s->c : NULL,
			.born_ms = cl->born_ms,
			.wait_since_ms = cl->state == CLIENT_WAITING ? cl->c.since_ms : 0,
			.remote_pid = cl->key_pid,
		};
		put_conn_row(o, &r);
	}
}

static const char *server_public_state(enum server_state st)
{
	switch (st) {
	case SERVER_ACTIVE:
		return "active";
	case SERVER_IDLE:
	case SERVER_DONATING:
		return "idle";
	case SERVER_RESET:
		return "tested";
	default:
		return "login";
	}
}

/* The client a lent server serves, if it still has one. */
static const struct conn *linked_client(const struct server *s)
{
	const struct relay_leg *leg = s->state == SERVER_ACTIVE ? s->borrower : NULL;
	return leg && leg->link ? leg->link->client : NULL;
}

static void list_servers(struct pool *p, void *arg)
{
	struct admin_out *o = arg;
	{
		for (struct list *n = p->servers.next; n != &p->servers; n = n->next) {
			struct server *s = list_entry(n, struct server, all);
			struct conn_row r = {
				.type = "S",
				.user = p->role               ? p->role->name
					: p->shard->cfg->user ? p->shard->cfg->user
							      : "",
				.database = p->shard->cfg->name,
				.state = server_public_state(s->state),
				.app = params_get(&s->have, "application_name"),
				.pgcrab_state = server_state_name(s->state),
				.c = &s->c,
				.link = linked_client(s),
				.born_ms = s->born_ms,
				.remote_pid = s->be_pid,
			};
			put_conn_row(o, &r);
		}
	}
}

/* KILL_CLIENT: the client with that ptr, if it is this worker's, goes as
 * a backend does under pg_terminate_backend. Returns how many went. */
static int kill_client(struct session_worker *sw, uint64_t ptr)
{
	for (struct list *n = sw->clients.next; n != &sw->clients; n = n->next) {
		struct client *cl = list_entry(n, struct client, link);
		if (((cl->c.id << 8) | (uint64_t)sw->w->id) != ptr || cl->c.closing)
			continue;
		client_fail(cl, "FATAL", "57P01",
			    "terminating connection due to administrator command (KILL_CLIENT)");
		return 1;
	}
	return 0;
}

static void count_pool_servers(struct pool *p, void *arg)
{
	*(int64_t *)arg += p->n_servers;
}

void admin_show_collect(struct session_worker *sw, struct admin_gather *g)
{
	struct admin_part *part = &g->parts[g->n_parts == 1 ? 0 : sw->w->id];
	switch (g->cmd) {
	case ADMIN_SHOW_POOLS:
		collect_pools(sw, part->nums, g->n_roles);
		break;
	case ADMIN_SHOW_CLIENTS:
		collect_clients(sw, &part->rows);
		break;
	case ADMIN_SHOW_SERVERS:
		each_pool(sw, list_servers, &part->rows);
		break;
	case ADMIN_SHOW_LISTS:
	case ADMIN_SHOW_WORKERS:
		for (struct list *n = sw->clients.next; n != &sw->clients; n = n->next) {
			struct client *cl = list_entry(n, struct client, link);
			part->nums[LN_USED_CLIENTS]++;
			if (logging_in(cl->state))
				part->nums[LN_LOGIN_CLIENTS]++;
		}
		each_pool(sw, count_pool_servers, &part->nums[LN_USED_SERVERS]);
		break;
	case ADMIN_KILL_CLIENT:
		part->nums[0] = kill_client(sw, g->arg);
		break;
	default:
		break;
	}
}

/* ---- the replies ------------------------------------------------------------- */

static void fmt_i64(char *buf, size_t len, int64_t v)
{
	snprintf(buf, len, "%" PRId64, v);
}

static void reply_pools(struct session_worker *sw, const struct admin_gather *g,
			struct admin_out *o)
{
	static const struct admin_col cols[] = {
		{ "database", ADMIN_OID_TEXT },
		{ "user", ADMIN_OID_TEXT },
		{ "cl_active", ADMIN_OID_INT4 },
		{ "cl_waiting", ADMIN_OID_INT4 },
		{ "cl_active_cancel_req", ADMIN_OID_INT4 },
		{ "cl_waiting_cancel_req", ADMIN_OID_INT4 },
		{ "sv_active", ADMIN_OID_INT4 },
		{ "sv_active_cancel", ADMIN_OID_INT4 },
		{ "sv_being_canceled", ADMIN_OID_INT4 },
		{ "sv_idle", ADMIN_OID_INT4 },
		{ "sv_used", ADMIN_OID_INT4 },
		{ "sv_tested", ADMIN_OID_INT4 },
		{ "sv_login", ADMIN_OID_INT4 },
		{ "maxwait", ADMIN_OID_INT4 },
		{ "maxwait_us", ADMIN_OID_INT4 },
		{ "pool_mode", ADMIN_OID_TEXT },
	};
	admin_out_row_desc(o, cols, COLS(cols));
	const struct cfg *cfg = sw->w->cfg;
	int rows = n_pool_rows(sw, g->n_roles);
	for (int r = 0; r < rows; r++) {
		int64_t sum[PN_COUNT] = { 0 };
		for (int p = 0; p < g->n_parts; p++)
			for (int k = 0; k < PN_COUNT; k++) {
				int64_t v = g->parts[p].nums[r * PN_COUNT + k];
				if (k == PN_MAXWAIT_US)
					sum[k] = v > sum[k] ? v : sum[k];
				else
					sum[k] += v;
			}
		const char *db, *user = "";
		if (r < sw->pools.shard_cap) {
			if (r >= sw->pools.n_shards)
				continue; /* no shard there yet */
			db = sw->pools.shards[r].cfg->name;
			if (!sw->pools.shards[r].cfg->user)
				continue; /* its clients are counted per role */
			user = sw->pools.shards[r].cfg->user;
		} else if (r < role_rows_start(sw)) {
			db = sw->dbs[r - sw->pools.shard_cap].cfg->name;
		} else {
			int k = r - role_rows_start(sw);
			if (k % sw->pools.shard_cap >= sw->pools.n_shards)
				continue;
			db = sw->pools.shards[k % sw->pools.shard_cap].cfg->name;
			const struct pool_role *role = atomic_load(
				&sw->pools.roles->slots[k / sw->pools.shard_cap]);
			bool used = false;
			for (int i = 0; i < PN_COUNT; i++)
				used |= sum[i] != 0;
			if (!used || !role)
				continue; /* no pool of that role on that shard has anything */
			user = role->name;
		}
		char v[PN_COUNT][24], maxwait[24], maxwait_us[24];
		for (int k = 0; k < PN_COUNT; k++)
			fmt_i64(v[k], sizeof(v[k]), sum[k]);
		fmt_i64(maxwait, sizeof(maxwait), sum[PN_MAXWAIT_US] / 1000000);
		fmt_i64(maxwait_us, sizeof(maxwait_us), sum[PN_MAXWAIT_US] % 1000000);
		const char *vals[] = { db,
				       user,
				       v[PN_CL_ACTIVE],
				       v[PN_CL_WAITING],
				       "0",
				       "0",
				       v[PN_SV_ACTIVE],
				       "0",
				       "0",
				       v[PN_SV_IDLE],
				       v[PN_SV_USED],
				       v[PN_SV_TESTED],
				       v[PN_SV_LOGIN],
				       maxwait,
				       maxwait_us,
				       cfg_pool_mode_name(cfg->pool_mode) };
		admin_out_row(o, vals, COLS(vals));
	}
	admin_out_complete(o, "SHOW");
}

static void reply_lists(struct session_worker *sw, const struct admin_gather *g,
			struct admin_out *o)
{
	static const struct admin_col cols[] = { { "list", ADMIN_OID_TEXT },
						 { "items", ADMIN_OID_INT4 } };
	admin_out_row_desc(o, cols, COLS(cols));
	int64_t sum[LN_COUNT] = { 0 };
	for (int p = 0; p < g->n_parts; p++)
		for (int k = 0; k < LN_COUNT; k++)
			sum[k] += g->parts[p].nums[k];
	const struct cfg *cfg = sw->w->cfg;
	struct {
		const char *name;
		int64_t n;
	} items[] = {
		{ "databases", cfg->n_shards + cfg->n_databases },
		{ "users", cfg->n_users },
		{ "peers", 0 },
		{ "pools", sw->pools.n_shards + sw->n_dbs + roles_in_use(sw) },
		{ "peer_pool", 0 },
		{ "free_clients", 0 },
		{ "used_clients", sum[LN_USED_CLIENTS] },
		{ "login_clients", sum[LN_LOGIN_CLIENTS] },
		{ "free_servers", 0 },
		{ "used_servers", sum[LN_USED_SERVERS] },
		{ "dns_names", 0 },
		{ "dns_zones", 0 },
		{ "dns_queries", 0 },
		{ "dns_pending", 0 },
	};
	for (size_t i = 0; i < sizeof(items) / sizeof(items[0]); i++) {
		char n[24];
		fmt_i64(n, sizeof(n), items[i].n);
		const char *vals[] = { items[i].name, n };
		admin_out_row(o, vals, 2);
	}
	admin_out_complete(o, "SHOW");
}

/* Per worker: its clients and servers (gathered), and its loop's
 * figures, which stats/ lets any thread read. */
static void reply_workers(struct session_worker *sw, const struct admin_gather *g,
			  struct admin_out *o)
{
	static const struct admin_col cols[] = {
		{ "worker", ADMIN_OID_INT4 },           { "clients", ADMIN_OID_INT4 },
		{ "servers", ADMIN_OID_INT4 },          { "ring_submissions", ADMIN_OID_INT8 },
		{ "ring_completions", ADMIN_OID_INT8 }, { "loop_busy_pct", ADMIN_OID_TEXT },
	};
	admin_out_row_desc(o, cols, COLS(cols));
	const struct runtime *rt = sw->w->rt;
	for (int p = 0; p < g->n_parts && p < rt->n_workers; p++) {
		const struct stats_worker *st = &rt->workers[p].stats;
		uint64_t busy = STATS_GET(st->loop_busy_ns), wait = STATS_GET(st->loop_wait_ns);
		char id[16], cl[24], sv[24], sub[24], comp[24], pct[16];
		snprintf(id, sizeof(id), "%d", p);
		fmt_i64(cl, sizeof(cl), g->parts[p].nums[LN_USED_CLIENTS]);
		fmt_i64(sv, sizeof(sv), g->parts[p].nums[LN_USED_SERVERS]);
		snprintf(sub, sizeof(sub), "%" PRIu64, STATS_GET(st->ring_submissions));
		snprintf(comp, sizeof(comp), "%" PRIu64, STATS_GET(st->ring_completions));
		snprintf(pct, sizeof(pct), "%.1f",
			 busy + wait ? 100.0 * (double)busy / (double)(busy + wait) : 0.0);
		const char *vals[] = { id, cl, sv, sub, comp, pct };
		admin_out_row(o, vals, COLS(vals));
	}
	admin_out_complete(o, "SHOW");
}

static void reply_databases(struct session_worker *sw, struct admin_out *o)
{
	static const struct admin_col cols[] = {
		{ "name", ADMIN_OID_TEXT },
		{ "host", ADMIN_OID_TEXT },
		{ "port", ADMIN_OID_INT4 },
		{ "database", ADMIN_OID_TEXT },
		{ "force_user", ADMIN_OID_TEXT },
		{ "pool_size", ADMIN_OID_INT4 },
		{ "min_pool_size", ADMIN_OID_INT4 },
		{ "reserve_pool", ADMIN_OID_INT4 },
		{ "pool_mode", ADMIN_OID_TEXT },
		{ "max_connections", ADMIN_OID_INT4 },
		{ "current_connections", ADMIN_OID_INT4 },
		{ "paused", ADMIN_OID_INT4 },
		{ "disabled", ADMIN_OID_INT4 },
		{ "shards", ADMIN_OID_TEXT },
	};
	admin_out_row_desc(o, cols, COLS(cols));
	const char *mode = cfg_pool_mode_name(sw->w->cfg->pool_mode);
	for (int i = 0; i < sw->pools.n_shards; i++) {
		const struct shard *sh = &sw->pools.shards[i];
		if (sh->cfg->removed)
			continue;
		char port[8], size[16], min[16], open[16];
		snprintf(port, sizeof(port), "%d", sh->cfg->port);
		snprintf(size, sizeof(size), "%d", sh->cfg->max_connections);
		snprintf(min, sizeof(min), "%d", sh->cfg->min_connections);
		snprintf(open, sizeof(open), "%d", atomic_load(&((struct shard *)sh)->open));
		const char *paused = atomic_load(&((struct shard *)sh)->paused) ? "1" : "0";
		const char *vals[] = { sh->cfg->name, sh->cfg->host, port, sh->cfg->database,
				       sh->cfg->user, size,          min,  "0",
				       mode,          size,          open, paused,
				       "0",           NULL };
		admin_out_row(o, vals, COLS(vals));
	}
	for (int d = 0; d < sw->n_dbs; d++) {
		const struct cfg_database *db = sw->dbs[d].cfg;
		char list[1024] = "";
		size_t at = 0;
		bool paused = true; /* a sharded database is paused when all its shards are */
		for (int s = 0; s < db->n_shards && at < sizeof(list); s++) {
			struct shard *sh = &sw->pools.shards[db->shards[s]];
			at += (size_t)snprintf(list + at, sizeof(list) - at, "%s%s", s ? "," : "",
					       sh->cfg->name);
			paused &= atomic_load(&sh->paused) != 0;
		}
		const char *vals[] = { db->name, NULL, NULL, NULL, NULL, "0",
				       "0",      "0",  mode, "0",  "0",  paused ? "1" : "0",
				       "0",      list };
		admin_out_row(o, vals, COLS(vals));
	}
	admin_out_complete(o, "SHOW");
}

static void reply_shards(struct session_worker *sw, struct admin_out *o)
{
	static const struct admin_col cols[] = {
		{ "shard", ADMIN_OID_TEXT },
		{ "host", ADMIN_OID_TEXT },
		{ "port", ADMIN_OID_INT4 },
		{ "database", ADMIN_OID_TEXT },
		{ "user", ADMIN_OID_TEXT },
		{ "max_connections", ADMIN_OID_INT4 },
		{ "open_connections", ADMIN_OID_INT4 },
		{ "pinned_clients", ADMIN_OID_INT8 },
		{ "logged_in", ADMIN_OID_TEXT },
	};
	admin_out_row_desc(o, cols, COLS(cols));
	for (int i = 0; i < sw->pools.n_shards; i++) {
		struct shard *sh = &sw->pools.shards[i];
		if (sh->cfg->removed)
			continue;
		char port[8], max[16], open[16], pins[24];
		snprintf(port, sizeof(port), "%d", sh->cfg->port);
		snprintf(max, sizeof(max), "%d", sh->cfg->max_connections);
		snprintf(open, sizeof(open), "%d", atomic_load(&sh->open));
		snprintf(pins, sizeof(pins), "%" PRIu64, atomic_load(&sh->pins));
		const char *vals[] = { sh->cfg->name,
				       sh->cfg->host,
				       port,
				       sh->cfg->database,
				       sh->cfg->user,
				       max,
				       open,
				       pins,
				       atomic_load(&sh->params) ? "yes" : "no" };
		admin_out_row(o, vals, COLS(vals));
	}
	admin_out_complete(o, "SHOW");
}

static void reply_users(struct session_worker *sw, struct admin_out *o)
{
	static const struct admin_col cols[] = { { "name", ADMIN_OID_TEXT },
						 { "pool_mode", ADMIN_OID_TEXT } };
	admin_out_row_desc(o, cols, COLS(cols));
	const struct cfg *cfg = sw->w->cfg;
	for (int i = 0; i < cfg->n_users; i++) {
		const char *vals[] = { cfg->users[i].name, NULL };
		admin_out_row(o, vals, COLS(vals));
	}
	admin_out_complete(o, "SHOW");
}

static void config_row(void *arg, const char *key, const char *value, const char *def,
		       bool reloadable)
{
	const char *vals[] = { key, value, def, reloadable ? "yes" : "no" };
	admin_out_row(arg, vals, COLS(vals));
}

static void reply_config(struct session_worker *sw, struct admin_out *o)
{
	static const struct admin_col cols[] = { { "key", ADMIN_OID_TEXT },
						 { "value", ADMIN_OID_TEXT },
						 { "default", ADMIN_OID_TEXT },
						 { "changeable", ADMIN_OID_TEXT } };
	admin_out_row_desc(o, cols, COLS(cols));
	cfg_describe(sw->w->cfg, config_row, o);
	admin_out_complete(o, "SHOW");
}

static void reply_version(struct admin_out *o)
{
	static const struct admin_col cols[] = { { "version", ADMIN_OID_TEXT } };
	admin_out_row_desc(o, cols, COLS(cols));
	const char *vals[] = { "PgCrab " PGCRAB_VERSION };
	admin_out_row(o, vals, 1);
	admin_out_complete(o, "SHOW");
}

static void reply_rows(const struct admin_gather *g, struct admin_out *o)
{
	admin_out_row_desc(o, conn_cols, COLS(conn_cols));
	for (int p = 0; p < g->n_parts; p++)
		admin_out_bytes(o, g->parts[p].rows.p, g->parts[p].rows.len);
	admin_out_complete(o, "SHOW");
}

void admin_show_reply(struct session_worker *sw, const struct admin_gather *g, struct admin_out *o)
{
	switch (g->cmd) {
	case ADMIN_SHOW_POOLS:
		reply_pools(sw, g, o);
		break;
	case ADMIN_SHOW_CLIENTS:
	case ADMIN_SHOW_SERVERS:
		reply_rows(g, o);
		break;
	case ADMIN_SHOW_LISTS:
		reply_lists(sw, g, o);
		break;
	case ADMIN_SHOW_WORKERS:
		reply_workers(sw, g, o);
		break;
	case ADMIN_SHOW_DATABASES:
		reply_databases(sw, o);
		break;
	case ADMIN_SHOW_SHARDS:
		reply_shards(sw, o);
		break;
	case ADMIN_SHOW_USERS:
		reply_users(sw, o);
		break;
	case ADMIN_SHOW_CONFIG:
		reply_config(sw, o);
		break;
	case ADMIN_SHOW_VERSION:
		reply_version(o);
		break;
	case ADMIN_RELOAD: /* written whole by the reload thread */
		admin_out_bytes(o, g->parts[0].rows.p, g->parts[0].rows.len);
		break;
	case ADMIN_SHOW_STATS:
	case ADMIN_SHOW_STATS_TOTALS:
	case ADMIN_SHOW_STATS_AVERAGES:
		admin_stats_reply(sw, g->cmd, o);
		break;
	case ADMIN_PAUSE:
	case ADMIN_RESUME:
	case ADMIN_RECONNECT:
		admin_pause_reply(sw, g, o);
		break;
	case ADMIN_KILL_CLIENT: {
		int64_t killed = 0;
		for (int p = 0; p < g->n_parts; p++)
			killed += g->parts[p].nums[0];
		if (killed)
			admin_out_complete(o, "KILL_CLIENT");
		else
			admin_out_error(o, "42704", "no client with ptr %llu",
					(unsigned long long)g->arg);
		break;
	}
	}
}
