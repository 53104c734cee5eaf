/* The admin console's protocol side: who may log in, the simple queries
 * it reads, and the gathering of SHOW data from every worker. */
#include "session/admin.h"

#include <ctype.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <signal.h>
#include <strings.h>
#include <unistd.h>

#include "core/log.h"
#include "core/version.h"
#include "core/worker.h"
#include "proto/proto.h"
#include "session/admin_internal.h"
#include "session/reload.h"
#include "session/client.h"
#include "session/session.h"

/* ---- the reply writer ------------------------------------------------------ */

void admin_out_bytes(struct admin_out *o, const void *data, size_t n)
{
	if (o->oom || n == 0)
		return;
	if (o->len + n > o->cap) {
		size_t cap = o->cap ? o->cap : 4096;
		while (cap < o->len + n)
			cap *= 2;
		uint8_t *p = realloc(o->p, cap);
		if (!p) {
			o->oom = true;
			return;
		}
		o->p = p;
		o->cap = cap;
	}
	memcpy(o->p + o->len, data, n);
	o->len += n;
}

static void put_u32(struct admin_out *o, uint32_t v)
{
	uint8_t b[4] = { (uint8_t)(v >> 24), (uint8_t)(v >> 16), (uint8_t)(v >> 8), (uint8_t)v };
	admin_out_bytes(o, b, 4);
}

static void put_u16(struct admin_out *o, uint16_t v)
{
	uint8_t b[2] = { (uint8_t)(v >> 8), (uint8_t)v };
	admin_out_bytes(o, b, 2);
}

/* A message's length word is written last: start returns where it goes. */
static size_t msg_start(struct admin_out *o, char type)
{
	admin_out_bytes(o, &type, 1);
	size_t at = o->len;
	put_u32(o, 0);
	return at;
}

static void msg_end(struct admin_out *o, size_t at)
{
	if (o->oom)
		return;
	uint32_t len = (uint32_t)(o->len - at);
	uint8_t b[4] = { (uint8_t)(len >> 24), (uint8_t)(len >> 16), (uint8_t)(len >> 8),
			 (uint8_t)len };
	memcpy(o->p + at, b, 4);
}

void admin_out_row_desc(struct admin_out *o, const struct admin_col *cols, int n)
{
	size_t at = msg_start(o, 'T');
	put_u16(o, (uint16_t)n);
	for (int i = 0; i < n; i++) {
		admin_out_bytes(o, cols[i].name, strlen(cols[i].name) + 1);
		put_u32(o, 0); /* no table */
		put_u16(o, 0); /* no column number */
		put_u32(o, cols[i].oid);
		put_u16(o,
			cols[i].oid == ADMIN_OID_INT8           ? 8
				: cols[i].oid == ADMIN_OID_INT4 ? 4
								: 0xffff);
		put_u32(o, 0xffffffffu); /* no type modifier */
		put_u16(o, 0);           /* text */
	}
	msg_end(o, at);
}

void admin_out_row(struct admin_out *o, const char *const *vals, int n)
{
	size_t at = msg_start(o, 'D');
	put_u16(o, (uint16_t)n);
	for (int i = 0; i < n; i++) {
		if (!vals[i]) {
			put_u32(o, 0xffffffffu);
			continue;
		}
		size_t len = strlen(vals[i]);
		put_u32(o, (uint32_t)len);
		admin_out_bytes(o, vals[i], len);
	}
	msg_end(o, at);
}

void admin_out_complete(struct admin_out *o, const char *tag)
{
	size_t at = msg_start(o, 'C');
	admin_out_bytes(o, tag, strlen(tag) + 1);
	msg_end(o, at);
}

void admin_out_error(struct admin_out *o, const char *code, const char *fmt, ...)
{
	char msg[256];
	va_list ap;
	va_start(ap, fmt);
	vsnprintf(msg, sizeof(msg), fmt, ap);
	va_end(ap);
	size_t at = msg_start(o, 'E');
	admin_out_bytes(o, "SERROR", 7);
	admin_out_bytes(o, "VERROR", 7);
	char code_field[7] = { 'C' };
	memcpy(code_field + 1, code, 5);
	admin_out_bytes(o, code_field, 7);
	admin_out_bytes(o, "M", 1);
	admin_out_bytes(o, msg, strlen(msg) + 1);
	admin_out_bytes(o, "", 1);
	msg_end(o, at);
}

void admin_out_free(struct admin_out *o)
{
	free(o->p);
	memset(o, 0, sizeof(*o));
}

/* ---- who may log in ------------------------------------------------------ */

bool admin_is_console(const struct cfg *cfg, const char *dbname)
{
	if (strcmp(dbname, "pgcrab") != 0 && strcmp(dbname, "pgbouncer") != 0)
		return false;
	return !cfg_find_shard(cfg, dbname) && !cfg_find_database(cfg, dbname);
}

static bool listed(char *const *names, int n, const char *user)
{
	for (int i = 0; i < n; i++)
		if (strcmp(names[i], user) == 0)
			return true;
	return false;
}

enum admin_role admin_role_of(const struct cfg *cfg, const char *user)
{
	if (listed(cfg->admin_users, cfg->n_admin_users, user))
		return ADMIN_ALL;
	if (listed(cfg->stats_users, cfg->n_stats_users, user))
		return ADMIN_STATS;
	return ADMIN_NONE;
}

void admin_login(struct client *cl, enum admin_role role)
{
	cl->admin_role = role;
	uint8_t buf[CONN_TX_CAP];
	struct proto_writer wr = proto_writer_init(buf, sizeof(buf));
	proto_build_auth(&wr, PROTO_AUTH_OK, NULL, 0);
	/* what drivers read at login; the console is no PostgreSQL, but
	 * psycopg and libpq want a version they can parse */
	static const char *const params[][2] = {
		{ "server_version", "15.0 (pgcrab " PGCRAB_VERSION ")" },
		{ "server_encoding", "UTF8" },
		{ "client_encoding", "UTF8" },
		{ "DateStyle", "ISO" },
		{ "integer_datetimes", "on" },
		{ "standard_conforming_strings", "on" },
		{ "application_name", "" },
	};
	for (size_t i = 0; i < sizeof(params) / sizeof(params[0]); i++)
		proto_build_parameter_status(&wr, params[i][0], params[i][1]);
	proto_build_backend_key(&wr, cl->key_pid, cl->key_secret);
	proto_build_ready(&wr, 'I');
	log_info("worker %d client %llu: admin console login as \"%s\" (%s)", cl->c.w->id,
		 (unsigned long long)cl->c.id, cl->user,
		 role == ADMIN_ALL ? "admin_users" : "stats_users");
	client_set_state(cl, CLIENT_ADMIN);
	client_queue(cl, &wr);
	client_next(cl);
}

/* ---- commands ----------------------------------------------------------- */

#define ADMIN_QUERY_MAX 4096

static const struct {
	const char *name;
	enum admin_cmd cmd;
} show_names[] = {
	{ "POOLS", ADMIN_SHOW_POOLS },
	{ "CLIENTS", ADMIN_SHOW_CLIENTS },
	{ "SERVERS", ADMIN_SHOW_SERVERS },
	{ "LISTS", ADMIN_SHOW_LISTS },
	{ "DATABASES", ADMIN_SHOW_DATABASES },
	{ "WORKERS", ADMIN_SHOW_WORKERS },
	{ "SHARDS", ADMIN_SHOW_SHARDS },
	{ "USERS", ADMIN_SHOW_USERS },
	{ "STATS", ADMIN_SHOW_STATS },
	{ "STATS_TOTALS", ADMIN_SHOW_STATS_TOTALS },
	{ "STATS_AVERAGES", ADMIN_SHOW_STATS_AVERAGES },
	{ "CONFIG", ADMIN_SHOW_CONFIG },
	{ "VERSION", ADMIN_SHOW_VERSION },
};

/* Words of a command, upper-cased in place: "show pools ;" -> SHOW, POOLS.
 * A trailing ';' is allowed, nothing after it. Returns the count, or -1. */
#define MAX_WORDS 4
static int split_words(char *text, char *words[MAX_WORDS])
{
	char *semi = strchr(text, ';');
	if (semi) {
		for (const char *p = semi + 1; *p; p++)
			if (!isspace((unsigned char)*p))
				return -1;
		*semi = '\0';
	}
	int n = 0;
	for (char *p = text; *p;) {
		while (isspace((unsigned char)*p))
			p++;
		if (!*p)
			break;
		if (n == MAX_WORDS)
			return -1;
		words[n++] = p;
		while (*p && !isspace((unsigned char)*p))
			p++;
		if (*p)
			*p++ = '\0';
	}
	return n;
}

static void send_error(struct client *cl, const char *code, const char *fmt, ...)
	__attribute__((format(printf, 3, 4)));
static void send_error(struct client *cl, const char *code, const char *fmt, ...)
{
	char msg[256];
	va_list ap;
	va_start(ap, fmt);
	vsnprintf(msg, sizeof(msg), fmt, ap);
	va_end(ap);
	uint8_t buf[512];
	struct proto_writer wr = proto_writer_init(buf, sizeof(buf));
	proto_build_error(&wr, "ERROR", code, msg);
	proto_build_ready(&wr, 'I');
	client_queue(cl, &wr);
}

static void send_reply(struct client *cl, struct admin_out *o)
{
	if (o->oom) {
		admin_out_free(o);
		send_error(cl, "53200", "out of memory");
		return;
	}
	static const uint8_t ready[] = { 'Z', 0, 0, 0, 5, 'I' };
	admin_out_bytes(o, ready, sizeof(ready));
	if (o->oom || conn_queue(&cl->c, o->p, o->len) != 0) {
		admin_out_free(o);
		client_fail(cl, "FATAL", "53200", "out of memory");
		return;
	}
	admin_out_free(o);
	conn_flush_tx(&cl->c);
}

/* SHOW data that lives on the workers is asked of each; the rest is
 * answered from this worker's configuration at once. */
static bool needs_workers(enum admin_cmd cmd)
{
	return cmd == ADMIN_SHOW_POOLS || cmd == ADMIN_SHOW_CLIENTS || cmd == ADMIN_SHOW_SERVERS
		|| cmd == ADMIN_SHOW_LISTS || cmd == ADMIN_SHOW_WORKERS || cmd == ADMIN_KILL_CLIENT
		|| cmd == ADMIN_PAUSE || cmd == ADMIN_RESUME || cmd == ADMIN_RECONNECT;
}

/* This worker's part of g; false if it comes later (a PAUSE still waiting
 * for servers here to go). */
static bool collect(struct session_worker *sw, struct admin_gather *g)
{
	if (g->cmd == ADMIN_PAUSE || g->cmd == ADMIN_RESUME || g->cmd == ADMIN_RECONNECT)
		return admin_pause_collect(sw, g);
	admin_show_collect(sw, g);
	return true;
}

static void gather_free(struct admin_gather *g)
{
	for (int i = 0; i < g->n_parts; i++) {
		admin_out_free(&g->parts[i].rows);
		free(g->parts[i].nums);
	}
	free(g);
}

static void gather_done(struct session_worker *sw, struct admin_gather *g)
{
	struct client *cl = g->cl;
	if (cl) {
		cl->gather = NULL;
		struct admin_out o = { 0 };
		admin_show_reply(sw, g, &o);
		for (int i = 0; i < g->n_parts; i++)
			o.oom |= g->parts[i].rows.oom;
		client_set_state(cl, CLIENT_ADMIN);
		send_reply(cl, &o);
	}
	gather_free(g);
	if (cl)
		client_next(cl);
}

static void run_gathered(struct client *cl, enum admin_cmd cmd, uint64_t arg)
{
	struct session_worker *sw = cl->sw;
	struct runtime *rt = sw->w->rt;
	int n_parts = needs_workers(cmd) ? rt->n_workers : 1;
	struct admin_gather *g = calloc(1, sizeof(*g) + (size_t)n_parts * sizeof(g->parts[0]));
	if (!g) {
		send_error(cl, "53200", "out of memory");
		return;
	}
	g->cmd = cmd;
	g->arg = arg;
	g->origin = sw->w;
	g->cl = cl;
	g->n_parts = n_parts;
	g->n_nums = admin_show_nums(sw, g);
	for (int i = 0; i < n_parts; i++) {
		g->parts[i].nums = calloc((size_t)g->n_nums + 1, sizeof(int64_t));
		if (!g->parts[i].nums) {
			gather_free(g);
			send_error(cl, "53200", "out of memory");
			return;
		}
	}
	cl->gather = g;
	client_set_state(cl, CLIENT_ADMIN_BUSY);
	if (cmd == ADMIN_RELOAD) {
		g->pending = 1; /* the reload thread's answer */
		reload_ask(rt, g);
		return;
	}
	if (needs_workers(cmd)) {
		for (int i = 0; i < rt->n_workers; i++) {
			if (&rt->workers[i] == sw->w)
				continue;
			g->pending++;
			worker_post(sw->w, &rt->workers[i], SESSION_MSG_ADMIN_ASK, g, 0);
		}
	}
	if (!collect(sw, g))
		g->pending++; /* this worker answers itself later */
	if (g->pending == 0)
		gather_done(sw, g);
}

/* PAUSE [db], RESUME [db], RECONNECT [db]: checked and marked here, then
 * taken over by every worker. */
static void run_pause(struct client *cl, enum admin_cmd cmd, const char *name)
{
	char msg[256];
	uint64_t arg;
	const char *code = admin_pause_begin(cl->sw, cmd, name, &arg, msg, sizeof(msg));
	if (code)
		send_error(cl, code, "%s", msg);
	else
		run_gathered(cl, cmd, arg);
}

/* SHUTDOWN goes the way SIGTERM does (the acceptor stops accepting and
 * tells every worker); WAIT_FOR_CLIENTS first lifts the deadline, so that
 * every client is served until it leaves. */
static void shutdown_process(struct client *cl, bool wait_for_clients)
{
	if (wait_for_clients)
		atomic_store(&cl->c.w->rt->wait_for_clients, true);
	log_info("admin console: user \"%s\" shuts pgcrab down%s", cl->user,
		 wait_for_clients ? " once every client has left" : "");
	struct admin_out o = { 0 };
	admin_out_complete(&o, "SHUTDOWN");
	send_reply(cl, &o);
	kill(getpid(), SIGTERM);
}

static void run_command(struct client *cl, char *text)
{
	char *words[MAX_WORDS];
	char said[ADMIN_QUERY_MAX];
	snprintf(said, sizeof(said), "%s", text);
	log_info("worker %d client %llu: admin console: user \"%s\" runs: %s", cl->c.w->id,
		 (unsigned long long)cl->c.id, cl->user, said);
	int n = split_words(text, words);
	char name[ADMIN_QUERY_MAX] = ""; /* a database's name keeps its case */
	if (n >= 2)
		snprintf(name, sizeof(name), "%s", words[1]);
	if (n == 0) {
		static const uint8_t empty[] = { 'I', 0, 0, 0, 4, 'Z', 0, 0, 0, 5, 'I' };
		if (conn_queue(&cl->c, empty, sizeof(empty)) != 0)
			client_fail(cl, "FATAL", "53200", "out of memory");
		else
			conn_flush_tx(&cl->c);
		return;
	}
	for (int i = 0; i < n; i++)
		for (char *p = words[i]; *p; p++)
			*p = (char)toupper((unsigned char)*p);
	if (n == 2 && strcmp(words[0], "SHOW") == 0) {
		for (size_t i = 0; i < sizeof(show_names) / sizeof(show_names[0]); i++)
			if (strcmp(words[1], show_names[i].name) == 0) {
				run_gathered(cl, show_names[i].cmd, 0);
				return;
			}
	}
	if (strcmp(words[0], "SHOW") != 0 && cl->admin_role != ADMIN_ALL) {
		send_error(cl, "42501", "permission denied: %s needs a user in admin_users",
			   words[0]);
		return;
	}
	if (n == 2 && strcmp(words[0], "KILL_CLIENT") == 0) {
		char *end;
		unsigned long long id = strtoull(words[1], &end, 10);
		if (*end == '\0' && end != words[1]) {
			run_gathered(cl, ADMIN_KILL_CLIENT, id);
			return;
		}
	}
	static const struct {
		const char *word;
		enum admin_cmd cmd;
	} pause_words[] = { { "PAUSE", ADMIN_PAUSE },
			    { "RESUME", ADMIN_RESUME },
			    { "RECONNECT", ADMIN_RECONNECT } };
	for (size_t i = 0; n <= 2 && i < sizeof(pause_words) / sizeof(pause_words[0]); i++)
		if (strcmp(words[0], pause_words[i].word) == 0) {
			run_pause(cl, pause_words[i].cmd, n == 2 ? name : NULL);
			return;
		}
	if (n == 1 && strcmp(words[0], "RELOAD") == 0) {
		run_gathered(cl, ADMIN_RELOAD, 0);
		return;
	}
	if (strcmp(words[0], "SHUTDOWN") == 0
	    && (n == 1 || (n == 2 && strcmp(words[1], "WAIT_FOR_CLIENTS") == 0))) {
		shutdown_process(cl, n == 2);
		return;
	}
	send_error(cl, "42601", "invalid admin console command: %s", said);
}

/* The extended protocol is refused: its first message of a batch gets the
 * error, the rest up to Sync is skipped, and Sync ends it, as PostgreSQL
 * answers a batch that failed. */
static void extended_message(struct client *cl, uint8_t type)
{
	if (type == 'S') {
		cl->admin_skipping = false;
		static const uint8_t ready[] = { 'Z', 0, 0, 0, 5, 'I' };
		if (conn_queue(&cl->c, ready, sizeof(ready)) != 0)
			client_fail(cl, "FATAL", "53200", "out of memory");
		else
			conn_flush_tx(&cl->c);
		return;
	}
	if (cl->admin_skipping || type == 'H')
		return;
	cl->admin_skipping = true;
	uint8_t buf[512];
	struct proto_writer wr = proto_writer_init(buf, sizeof(buf));
	proto_build_error(&wr, "ERROR", "0A000",
			  "the pgcrab console speaks the simple query protocol only");
	client_queue(cl, &wr);
}

void admin_on_request(struct client *cl)
{
	struct conn *c = &cl->c;
	while (cl->state == CLIENT_ADMIN && !c->closing) {
		uint32_t have = c->rx_end - c->rx_start;
		if (have >= 1 && c->rx[c->rx_start] == 'X') {
			client_close_why(cl, "the client sent Terminate");
			return;
		}
		uint8_t type;
		uint32_t total;
		enum proto_result r = proto_frame(c->rx + c->rx_start, have, ADMIN_QUERY_MAX, &type,
						  &total);
		if (r == PROTO_OK && have < total)
			r = PROTO_AGAIN;
		if (r == PROTO_AGAIN) {
			client_arm(cl);
			return;
		}
		if (r == PROTO_ERR) {
			client_fail(cl, "FATAL", "08P01", "invalid message length");
			return;
		}
		if (!proto_frontend_type(type)) {
			client_fail(cl, "FATAL", "08P01", "invalid frontend message type %d", type);
			return;
		}
		const uint8_t *body = c->rx + c->rx_start + 5;
		uint32_t len = total - 5;
		c->rx_start += total;
		c->scan_pos = c->rx_start;
		if (type != 'Q') {
			extended_message(cl, type);
			continue;
		}
		if (cl->admin_skipping) /* a Query ends nothing: the error stands until Sync */
			continue;
		char text[ADMIN_QUERY_MAX];
		memcpy(text, body, len);
		if (len == 0 || text[len - 1] != '\0'
		    || memchr(text, '\0', len) != text + len - 1) {
			client_fail(cl, "FATAL", "08P01", "invalid query message");
			return;
		}
		run_command(cl, text);
	}
}

void admin_client_gone(struct client *cl)
{
	if (cl->gather)
		cl->gather->cl = NULL; /* the answers still come: freed with the last */
	cl->gather = NULL;
}

/* ---- messages between workers ---------------------------------------------- */

static void answered(struct session_worker *sw, struct admin_gather *g)
{
	if (--g->pending == 0)
		gather_done(sw, g);
}

void admin_part_done(struct session_worker *sw, struct admin_gather *g)
{
	if (g->origin == sw->w)
		answered(sw, g);
	else
		worker_post(sw->w, g->origin, SESSION_MSG_ADMIN_DONE, g, 0);
}

void admin_on_msg(struct session_worker *sw, unsigned kind, void *ptr, int res)
{
	struct admin_gather *g = ptr;
	if (kind == SESSION_MSG_ADMIN_ASK) {
		if (collect(sw, g))
			admin_part_done(sw, g);
	} else {
		answered(sw, g);
	}
}

void admin_on_msg_done(struct session_worker *sw, unsigned kind, void *ptr, int res)
{
	if (res >= 0)
		return;
	/* a question that never arrived is an empty answer; an answer that
	 * never arrived means the console's worker is gone, and the gather
	 * with it is lost at exit */
	if (kind == SESSION_MSG_ADMIN_ASK)
		answered(sw, ptr);
	else
		log_warn("worker %d: admin console answer not delivered: %d", sw->w->id, res);
}
