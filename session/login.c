/* A client's login: the startup packet (SSLRequest and GSSENCRequest get
 * 'N', a CancelRequest is routed), a cleartext password, then
 * AuthenticationOk with the shard's ParameterStatus values, BackendKeyData
 * and ReadyForQuery. Bytes the client sent ahead are handled at once.
 *
 * A client that leaves or errs on the way gets what PostgreSQL 15 sends a
 * client it asked for a cleartext password (tests/integration/
 * t_login_parity.sh compares the two): some mistakes are only logged and
 * the socket closed without a word, the others get PostgreSQL's FATAL. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "auth/auth.h"
#include "core/log.h"
#include "core/worker.h"
#include "proto/options.h"
#include "proto/proto.h"
#include "session/cancel.h"
#include "session/client.h"
#include "session/session.h"

static struct pool *find_pool(struct client *cl, const char *name)
{
	struct pool_worker *pw = &cl->sw->pools;
	for (int i = 0; i < pw->n_shards; i++)
		if (strcmp(pw->shards[i].cfg->name, name) == 0)
			return &pw->pools[i];
	return NULL;
}

static int add_option(void *arg, const char *name, const char *value)
{
	struct client *cl = arg;
	return params_set(&cl->startup, name, value);
}

/* A startup-stage refusal PostgreSQL only logs: close without a word. */
static void drop_silently(struct client *cl, const char *what)
{
	log_debug("worker %d client %llu: %s; closing without a word", cl->c.w->id,
		  (unsigned long long)cl->c.id, what);
	client_close_now(cl);
}

/* A protocol version PostgreSQL does not speak: protocol 1 and 2 clients
 * get the old format, newer ones an ErrorResponse. */
static void refuse_version(struct client *cl, uint32_t version)
{
	char msg[128];
	proto_version_message(version, msg, sizeof(msg));
	if ((version >> 16) >= 3) {
		client_fail(cl, "FATAL", "0A000", "%s", msg);
		return;
	}
	uint8_t buf[256];
	struct proto_writer wr = proto_writer_init(buf, sizeof(buf));
	proto_build_old_error(&wr, msg);
	client_set_state(cl, CLIENT_CLOSING);
	client_queue(cl, &wr); /* the close follows the send (client_on_sent) */
}

void login_on_startup(struct client *cl)
{
	struct conn *c = &cl->c;
	struct proto_startup st;
	const char *why;
	if (!c->tls && !cl->ssl_asked && c->rx_end > c->rx_start
	    && c->rx[c->rx_start] == LOGIN_TLS_HANDSHAKE) {
		login_direct_tls(cl);
		return;
	}
	enum proto_result r = proto_parse_startup(c->rx + c->rx_start, c->rx_end - c->rx_start, &st,
						  &why);
	if (r == PROTO_AGAIN) {
		client_arm(cl);
		return;
	}
	if (r == PROTO_ERR && !why) {
		drop_silently(cl, "invalid length of startup or cancel packet");
		return;
	}
	if (r == PROTO_ERR && strcmp(why, PROTO_WHY_VERSION) == 0) {
		refuse_version(cl, st.version);
		return;
	}
	if (r == PROTO_ERR) {
		client_fail(cl, "FATAL", proto_startup_sqlstate(why), "%s", why);
		return;
	}
	c->rx_start += st.total;
	c->scan_pos = c->rx_start;

	uint8_t buf[CONN_TX_CAP];
	struct proto_writer wr = proto_writer_init(buf, sizeof(buf));
	switch (st.kind) {
	case PROTO_STARTUP_SSL:
	case PROTO_STARTUP_GSSENC: {
		bool ssl = st.kind == PROTO_STARTUP_SSL;
		bool *asked = ssl ? &cl->ssl_asked : &cl->gss_asked;
		if (*asked) {
			/* a second request is read as a startup packet of
			 * protocol 1234.5679 (or .5680), as PostgreSQL does */
			refuse_version(cl, st.version);
			return;
		}
		*asked = true;
		bool tls = ssl && c->w->cfg->client_tls_mode != CFG_TLS_DISABLE;
		proto_put_u8(&wr, tls ? 'S' : 'N');
		client_queue(cl, &wr);
		if (c->closing)
			return;
		if (c->rx_start != c->rx_end) {
			/* bytes sent before the answer: they could not have been
			 * encrypted, and a man in the middle could have put them there */
			client_fail_full(cl, "FATAL", "08P01",
					 ssl ? "received unencrypted data after SSL request"
					     : "received unencrypted data after GSSAPI encryption "
					       "request",
					 "This could be either a client-software bug or evidence of "
					 "an attempted man-in-the-middle attack.",
					 NULL);
			return;
		}
		if (tls && login_start_tls(cl, false) != 0)
			return;
		client_next(cl);
		return;
	}
	case PROTO_STARTUP_CANCEL:
		cancel_route(cl->sw, st.cancel_pid, st.cancel_key);
		client_close_now(cl);
		return;
	case PROTO_STARTUP_V3:
		break;
	}
	if (login_tls_refuses(cl, st.user, st.database))
		return;

	/* 3.x with a newer minor or _pq_ options: say what we speak (as PostgreSQL does) */
	const char *unknown[PROTO_MAX_STARTUP_PARAMS];
	int n_unknown = 0;
	for (int i = 0; i < st.n_params; i++)
		if (strncmp(st.names[i], "_pq_.", 5) == 0)
			unknown[n_unknown++] = st.names[i];
	if (st.minor > 0 || n_unknown > 0)
		proto_build_negotiate_version(&wr, PROTO_VERSION_3_0, n_unknown, unknown);

	cl->login = calloc(1, sizeof(*cl->login));
	if (!cl->login) {
		client_fail(cl, "FATAL", "53200", "out of memory");
		return;
	}
	snprintf(cl->login->user, sizeof(cl->login->user), "%s", st.user);
	/* every setting the client gives holds for it on every server: those
	 * of options first, then the others, which win (as in PostgreSQL) */
	for (int i = 0; i < st.n_params; i++) {
		if (strcmp(st.names[i], "options") != 0)
			continue;
		size_t n = 2 * (strlen(st.values[i]) + 1);
		char *scratch = malloc(n);
		struct proto_options_error err;
		enum proto_result pr = scratch
			? proto_options_parse(st.values[i], scratch, n, add_option, cl, &err)
			: PROTO_ERR;
		free(scratch);
		if (pr != PROTO_OK && !(scratch && err.sqlstate)) {
			client_fail(cl, "FATAL", "53200", "out of memory");
			return;
		} /* a bad options value is refused after the password, below */
	}
	for (int i = 0; i < st.n_params; i++) {
		if (params_startup_only(st.names[i]))
			continue;
		if (params_set(&cl->startup, st.names[i], st.values[i]) != 0) {
			client_fail(cl, "FATAL", "53200", "out of memory");
			return;
		}
	}
	if (params_assign(&cl->want, &cl->startup) != 0) {
		client_fail(cl, "FATAL", "53200", "out of memory");
		return;
	}
	cl->pool = find_pool(cl, st.database);
	for (int i = 0; !cl->pool && i < cl->sw->n_dbs; i++) {
		struct session_db *db = &cl->sw->dbs[i];
		if (strcmp(db->cfg->name, st.database) != 0)
			continue;
		/* a sharded database: its first shard's parameters are the login's */
		cl->db = db;
		cl->pool = &cl->sw->pools.pools[db->cfg->shards[0]];
		if (relay_route_init(&cl->rl, &db->schema, db->cfg->name) != 0) {
			client_fail(cl, "FATAL", "53200", "out of memory");
			return;
		}
	}
	if (!cl->pool)
		snprintf(cl->login->missing_db, sizeof(cl->login->missing_db), "%s", st.database);
	/* checked now, refused after the password, as PostgreSQL does */
	for (int i = 0; i < st.n_params; i++) {
		if (strcmp(st.names[i], "options") != 0)
			continue;
		size_t cap = 2 * (strlen(st.values[i]) + 1);
		char *scratch = malloc(cap);
		if (!scratch) {
			client_fail(cl, "FATAL", "53200", "out of memory");
			return;
		}
		cl->login->bad_options = proto_options_parse(st.values[i], scratch, cap, NULL, NULL,
							     &cl->login->opt_err)
			!= PROTO_OK;
		free(scratch);
	}
	proto_build_auth(&wr, PROTO_AUTH_CLEARTEXT, NULL, 0);
	client_set_state(cl, CLIENT_AUTH);
	client_queue(cl, &wr);
	client_next(cl);
}

/* AuthenticationOk, the shard's ParameterStatus values (the client's own
 * where it asked for them), BackendKeyData and ReadyForQuery. Sized from
 * the shard's values: however many a server reports, they fit. */
void login_finish(struct client *cl)
{
	const struct param_blob *params = atomic_load(&cl->pool->shard->params);
	size_t cap = params->len + CONN_TX_CAP;
	for (int i = 0; i < cl->want.n; i++)
		cap += strlen(cl->want.v[i].name) + strlen(cl->want.v[i].value) + 8;
	uint8_t *buf = malloc(cap);
	if (!buf) {
		client_fail(cl, "FATAL", "53200", "out of memory");
		return;
	}
	struct proto_writer wr = proto_writer_init(buf, cap);
	proto_build_auth(&wr, PROTO_AUTH_OK, NULL, 0);
	struct proto_reader rd = proto_reader_init(params->data, params->len);
	while (rd.left >= PROTO_HEADER_LEN) {
		const uint8_t *msg = rd.p;
		proto_get_u8(&rd);
		uint32_t len = (uint32_t)proto_get_i32(&rd);
		struct proto_reader body = proto_reader_init(rd.p, len - 4);
		proto_get_bytes(&rd, len - 4);
		const char *name = proto_get_cstr(&body);
		const char *mine = name ? params_get(&cl->want, name) : NULL;
		if (mine)
			proto_build_parameter_status(&wr, name, mine);
		else
			proto_put_bytes(&wr, msg, len + 1);
	}
	proto_build_backend_key(&wr, cl->key_pid, cl->key_secret);
	proto_build_ready(&wr, 'I');
	client_logged_in(cl);
	client_queue(cl, &wr);
	free(buf);
	client_next(cl);
}

/* Where a startup setting's check is remembered: a hash of "name\0value". */
static uint64_t *checked_slot(struct client *cl, const struct param *p, uint64_t *hash)
{
	uint64_t h = 1469598103934665603ull; /* FNV-1a */
	for (const char *s = p->name;; s++) {
		h = (h ^ (uint8_t)*s) * 1099511628211ull;
		if (!*s)
			break;
	}
	for (const char *s = p->value; *s; s++)
		h = (h ^ (uint8_t)*s) * 1099511628211ull;
	h |= 1; /* 0 marks an empty slot */
	*hash = h;
	uint64_t *tab = cl->sw->checked_settings;
	return &tab[h % (sizeof(cl->sw->checked_settings) / sizeof(tab[0]))];
}

/* The shard's servers report name with this very value at login. */
static bool reports_value(const struct param_blob *b, const char *name, const char *value)
{
	struct proto_reader rd = proto_reader_init(b->data, b->len);
	while (rd.left >= PROTO_HEADER_LEN) {
		proto_get_u8(&rd);
		uint32_t len = (uint32_t)proto_get_i32(&rd);
		struct proto_reader body = proto_reader_init(rd.p, len - 4);
		if (!proto_get_bytes(&rd, len - 4))
			return false;
		const char *n = proto_get_cstr(&body);
		const char *v = proto_get_cstr(&body);
		if (n && v && strcasecmp(n, name) == 0)
			return strcmp(v, value) == 0;
	}
	return false;
}

/* Every startup setting was taken by a server before (a hash collision
 * only skips the early check: the server still refuses a bad value, at
 * the client's first request). */
static bool settings_known(struct client *cl)
{
	const struct param_blob *reported = atomic_load(&cl->pool->shard->params);
	for (int i = 0; i < cl->startup.n; i++) {
		const struct param *p = &cl->startup.v[i];
		uint64_t h;
		if (strcmp(p->name, "application_name") == 0)
			continue; /* PostgreSQL takes any */
		if (reported && reports_value(reported, p->name, p->value))
			continue; /* what a fresh server has anyway (psql's client_encoding) */
		const uint64_t *slot = checked_slot(cl, p, &h);
		if (*slot != h) /* h is set by the call: not in one expression */
			return false;
	}
	return true;
}

void login_settings_checked(struct client *cl)
{
	for (int i = 0; i < cl->startup.n; i++) {
		const struct param *p = &cl->startup.v[i];
		/* a reported value PostgreSQL spells its own way (DateStyle
		 * "German" is "German, DMY") is learnt from the server each time */
		const char *told = params_get(&cl->want, p->name);
		if (params_follows_report(p->name) && told && strcmp(told, p->value) != 0)
			continue;
		uint64_t h;
		uint64_t *slot = checked_slot(cl, p, &h);
		*slot = h; /* h is set by the call: not in one expression */
	}
	cl->check_settings = false;
}

/* The longest password message PostgreSQL reads for a cleartext password,
 * counting its length word. */
#define PASSWORD_MAX_LEN 1000

void login_on_password(struct client *cl)
{
	struct conn *c = &cl->c;
	const struct cfg *cfg = c->w->cfg;
	if (c->rx_end > c->rx_start && c->rx[c->rx_start] != 'p') {
		/* the type alone decides, before any length */
		client_fail(cl, "FATAL", "08P01", "expected password response, got message type %d",
			    c->rx[c->rx_start]);
		return;
	}
	uint8_t type;
	uint32_t total;
	enum proto_result r = proto_frame(c->rx + c->rx_start, c->rx_end - c->rx_start,
					  PASSWORD_MAX_LEN, &type, &total);
	if (r == PROTO_OK && c->rx_end - c->rx_start < total)
		r = PROTO_AGAIN;
	if (r == PROTO_AGAIN) {
		client_arm(cl);
		return;
	}
	if (r == PROTO_ERR) {
		/* PostgreSQL logs "invalid message length" and closes */
		drop_silently(cl, "invalid password message length");
		return;
	}
	struct proto_reader rd = proto_reader_init(c->rx + c->rx_start + 5, total - 5);
	const char *password = proto_get_cstr(&rd);
	c->rx_start += total;
	c->scan_pos = c->rx_start;
	if (!password || rd.left != 0) {
		client_fail(cl, "FATAL", "08P01", "invalid password packet size");
		return;
	}
	if (password[0] == '\0') {
		client_fail(cl, "FATAL", "28P01", "empty password returned by client");
		return;
	}
	const struct cfg_user *user = cfg_find_user(cfg, cl->login->user);
	/* same answer for an unknown user and a wrong password, as PostgreSQL */
	if (!auth_secret_equal(password, user ? user->password : "\x01 no such user") || !user) {
		log_info("worker %d client %llu: password authentication failed for user \"%s\"",
			 c->w->id, (unsigned long long)c->id, cl->login->user);
		client_fail(cl, "FATAL", "28P01", "password authentication failed for user \"%s\"",
			    cl->login->user);
		return;
	}
	if (!cl->pool || cl->login->bad_options) {
		/* authenticated: PostgreSQL says so before it looks further */
		uint8_t buf[16];
		struct proto_writer wr = proto_writer_init(buf, sizeof(buf));
		proto_build_auth(&wr, PROTO_AUTH_OK, NULL, 0);
		client_queue(cl, &wr);
		if (c->closing)
			return;
		const struct proto_options_error *e = &cl->login->opt_err;
		if (!cl->pool)
			client_fail(cl, "FATAL", "3D000", "database \"%s\" does not exist",
				    cl->login->missing_db);
		else
			client_fail_full(cl, e->severity, e->sqlstate, e->message, NULL, e->hint);
		return;
	}
	free(cl->login);
	cl->login = NULL;
	cl->key_pid = cancel_new_pid(cl->sw);
	if (cancel_new_secret(cl->sw, &cl->key_secret) != 0) {
		/* a guessable key would let anyone cancel this client's queries */
		client_fail(cl, "FATAL", "53200", "cannot draw a random cancel key");
		return;
	}
	cl->check_settings = !settings_known(cl);
	if (atomic_load(&cl->pool->shard->params) && !cl->check_settings) {
		login_finish(cl);
		return;
	}
	/* until a server tells us the shard's parameters, or takes the
	 * client's settings (refused there, the login fails as PostgreSQL's) */
	client_set_state(cl, CLIENT_LOGIN_WAIT);
	pool_acquire(cl->pool, &cl->wait);
	if (cl->state == CLIENT_LOGIN_WAIT && !c->closing && cfg->cancel_on_client_exit)
		conn_arm_poll(c);
}
