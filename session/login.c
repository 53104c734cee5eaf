/* A client's login: the startup packet (SSLRequest and GSSENCRequest get
 * 'N', a CancelRequest is routed), authentication as auth_type asks
 * (a cleartext password, an md5 response, a SCRAM exchange through
 * auth/scram_server.c, or none for trust), then AuthenticationOk with the
 * shard's ParameterStatus values, BackendKeyData and ReadyForQuery. What
 * the login proved stays on the client (cl->proof). Bytes the client sent
 * ahead are handled at once.
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
#include "auth/proof.h"
#include "auth/scram_keys.h"
#include "auth/scram_server.h"
#include "auth/secret.h"
#include "core/log.h"
#include "core/tls.h"
#include "core/worker.h"
#include "proto/options.h"
#include "proto/proto.h"
#include "session/admin.h"
#include "session/cancel.h"
#include "session/client.h"
#include "session/session.h"

static struct pool *find_pool(struct client *cl, const char *name)
{
	struct pool_worker *pw = &cl->sw->pools;
	for (int i = 0; i < pw->n_shards; i++)
		if (!pw->pools[i].gone && strcmp(pw->shards[i].name, name) == 0)
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
	client_close_why(cl, what);
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

/* Which exchange a user gets, as PostgreSQL picks it: a SCRAM verifier
 * cannot answer md5, so md5 falls back to SCRAM for such a user; with
 * scram-sha-256 a user without a verifier (an md5 hash) gets the mock
 * exchange and fails at the proof. An unknown user gets what a user with
 * a cleartext or md5 password would. */
static enum login_method pick_method(const struct cfg *cfg, const struct cfg_user *u)
{
	switch (cfg->auth_type) {
	case CFG_AUTH_TRUST:
		return LOGIN_TRUST;
	case CFG_AUTH_PLAIN:
		return LOGIN_PLAIN;
	case CFG_AUTH_MD5:
		return u && u->secret.kind == AUTH_SECRET_SCRAM ? LOGIN_SCRAM : LOGIN_MD5;
	case CFG_AUTH_CERT:
		return LOGIN_CERT;
	case CFG_AUTH_SCRAM:
		break;
	}
	return LOGIN_SCRAM;
}

/* The tls-server-end-point hash of our certificate when the client's
 * connection is TLS: then SCRAM-SHA-256-PLUS is offered. The exchange
 * copies it. */
static size_t channel_binding(struct client *cl, uint8_t *buf, size_t cap)
{
	int n = cl->c.tls ? tls_server_end_point(&cl->c, buf, cap) : -1;
	return n > 0 ? (size_t)n : 0;
}

static void authenticated(struct client *cl);
static void look_up_role(struct client *cl);

/* The user's [user] section, or what auth_query found for a role the
 * config does not list; NULL for an unknown user. */
static const struct cfg_user *login_user(const struct client *cl)
{
	const struct client_login *lg = cl->login;
	if (lg->looked_up)
		return lg->found ? &lg->role : NULL;
	return cfg_find_user(cl->c.w->cfg, lg->user);
}

/* A role the config does not list is looked up with auth_query before the
 * exchange starts: which exchange (md5 or SCRAM) and its salt come from
 * the role's verifier, as on PostgreSQL. */
static bool needs_lookup(const struct client *cl, const struct cfg_user *u)
{
	const struct cfg *cfg = cl->c.w->cfg;
	return !u && !cl->login->looked_up && cfg->auth_user[0] && cl->pool && cl->sw->authq
		&& cfg->auth_type != CFG_AUTH_TRUST && cfg->auth_type != CFG_AUTH_CERT;
}

/* Asks for the password (or its proof) after whatever wr already holds. */
static void start_auth(struct client *cl, struct proto_writer *wr)
{
	const struct cfg *cfg = cl->c.w->cfg;
	struct client_login *lg = cl->login;
	const struct cfg_user *u = login_user(cl);
	if (needs_lookup(cl, u)) {
		if (wr->len > 0) /* a NegotiateProtocolVersion, if any */
			client_queue(cl, wr);
		if (!cl->c.closing)
			look_up_role(cl);
		return;
	}
	lg->method = pick_method(cfg, u);
	switch (lg->method) {
	case LOGIN_CERT: {
		/* the verified certificate's CN must be the user, as PostgreSQL's
		 * cert method; the TLS mode already refused a client without one */
		char cn[256];
		if (tls_peer_common_name(&cl->c, cn, sizeof(cn)) != 0
		    || strcmp(cn, lg->user) != 0) {
			client_fail(cl, "FATAL", "28000",
				    "certificate authentication failed for user \"%s\"", lg->user);
			return;
		}
		__attribute__((fallthrough)); /* proved, as with trust */
	}
	case LOGIN_TRUST:
		if (wr->len > 0) /* a NegotiateProtocolVersion, if any */
			client_queue(cl, wr);
		if (cl->c.closing)
			return;
		if (!u) {
			/* no password to guess: saying so tells nothing more */
			client_fail(cl, "FATAL", "28000", "role \"%s\" does not exist", lg->user);
			return;
		}
		authenticated(cl);
		return;
	case LOGIN_PLAIN:
		proto_build_auth(wr, PROTO_AUTH_CLEARTEXT, NULL, 0);
		break;
	case LOGIN_MD5:
		if (auth_random(lg->md5_salt, sizeof(lg->md5_salt)) != 0) {
			client_fail(cl, "FATAL", "53200", "cannot draw a random salt");
			return;
		}
		proto_build_auth(wr, PROTO_AUTH_MD5, lg->md5_salt, sizeof(lg->md5_salt));
		break;
	case LOGIN_SCRAM: {
		uint8_t cb[AUTH_SCRAM_CB_MAX];
		size_t cb_len = channel_binding(cl, cb, sizeof(cb));
		const struct auth_scram_verifier *v = u && u->secret.has_scram ? &u->secret.scram
									       : NULL;
		uint8_t mechs[64];
		size_t n = 0;
		lg->scram = malloc(sizeof(*lg->scram));
		if (!lg->scram
		    || auth_scram_server_init(lg->scram, v, cfg->auth_key, lg->user, cb, cb_len,
					      NULL)
			    != 0
		    || (n = auth_scram_server_mechanisms(lg->scram, mechs, sizeof(mechs))) == 0) {
			client_fail(cl, "FATAL", "53200", "cannot start the SCRAM exchange");
			return;
		}
		proto_build_auth(wr, PROTO_AUTH_SASL, mechs, n);
		break;
	}
	}
	client_set_state(cl, CLIENT_AUTH);
	client_queue(cl, wr);
	client_next(cl);
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
	client_log_hello(cl, st.user, st.database);
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
	if (!cl->pool && admin_is_console(c->w->cfg, st.database))
		cl->login->console = true;
	else if (!cl->pool)
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
	start_auth(cl, &wr);
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

/* The longest password message PostgreSQL reads for a cleartext or md5
 * password, counting its length word; SASL messages may be longer. */
#define PASSWORD_MAX_LEN 1000
#define SASL_MAX_LEN     4096

/* What this login proved, kept on the client for logging in to servers as
 * its role: what the client sent, and what the configuration knows. */
static struct auth_proof *make_proof(struct client *cl, const struct cfg_user *u, const char *given)
{
	const struct client_login *lg = cl->login;
	const char *clear = given                              ? given
		: u && u->secret.kind == AUTH_SECRET_CLEARTEXT ? u->password
							       : NULL;
	struct auth_proof *pf = clear ? auth_proof_from_cleartext(lg->user, clear)
				      : calloc(1, sizeof(*pf));
	if (!pf)
		return NULL;
	static const enum auth_method of[] = {
		[LOGIN_TRUST] = AUTH_METHOD_TRUST, [LOGIN_CERT] = AUTH_METHOD_TRUST,
		[LOGIN_PLAIN] = AUTH_METHOD_PLAIN, [LOGIN_MD5] = AUTH_METHOD_MD5,
		[LOGIN_SCRAM] = AUTH_METHOD_SCRAM,
	};
	pf->method = of[lg->method];
	if (!pf->has_md5 && u && u->secret.kind == AUTH_SECRET_MD5) {
		pf->has_md5 = true;
		memcpy(pf->md5, u->secret.md5, sizeof(pf->md5));
	}
	/* a SCRAM login gives the keys of the verifier it was checked against,
	 * which log in to a server holding the same verifier */
	if (lg->method == LOGIN_SCRAM && lg->scram
	    && lg->scram->v.salt_len <= AUTH_PROOF_SALT_MAX) {
		const struct auth_scram_verifier *v = &lg->scram->v;
		pf->has_scram = true;
		memcpy(pf->client_key, lg->scram->client_key, sizeof(pf->client_key));
		memcpy(pf->stored_key, v->stored_key, sizeof(pf->stored_key));
		memcpy(pf->server_key, v->server_key, sizeof(pf->server_key));
		memcpy(pf->salt, v->salt, v->salt_len);
		pf->salt_len = v->salt_len;
		pf->iterations = v->iterations;
	}
	return pf;
}

/* A wrong password and an unknown user get the same answer, as in PostgreSQL. */
static void auth_failed(struct client *cl)
{
	struct client_login *lg = cl->login;
	/* a cached answer may predate an ALTER ROLE or CREATE ROLE: the next
	 * login looks the role up again (each failure then costs one query,
	 * as auth_query without a cache does) */
	if (lg->looked_up && lg->cached && cl->pool)
		authq_cache_forget(&cl->sw->authq_cache, cl->pool->shard->index, lg->user);
	log_info("worker %d client %llu: password authentication failed for user \"%s\"",
		 cl->c.w->id, (unsigned long long)cl->c.id, cl->login->user);
	client_fail(cl, "FATAL", "28P01", "password authentication failed for user \"%s\"",
		    cl->login->user);
}

/* The password message's text: a cleartext password or an md5 response.
 * NULL when the client was failed. */
static const char *password_text(struct client *cl, const uint8_t *body, size_t len)
{
	struct proto_reader rd = proto_reader_init(body, len);
	const char *password = proto_get_cstr(&rd);
	if (!password || rd.left != 0) {
		client_fail(cl, "FATAL", "08P01", "invalid password packet size");
		return NULL;
	}
	if (password[0] == '\0') {
		client_fail(cl, "FATAL", "28P01", "empty password returned by client");
		return NULL;
	}
	return password;
}

/* md5: "md5" + hex(md5(hex(md5(password + user)) + salt)) from what we keep. */
static bool md5_matches(struct client *cl, const struct cfg_user *u, const char *got)
{
	char hash[36], want[36];
	if (!u || u->secret.kind == AUTH_SECRET_SCRAM)
		return false; /* answered like a wrong password */
	if (u->secret.kind == AUTH_SECRET_MD5)
		memcpy(hash, u->secret.md5, sizeof(hash));
	else
		auth_md5_hash(cl->login->user, u->password, hash);
	auth_md5_salted(hash, cl->login->md5_salt, want);
	bool ok = want[0] && auth_secret_equal(got, want);
	explicit_bzero(hash, sizeof(hash));
	explicit_bzero(want, sizeof(want));
	return ok;
}

/* One SASL message: the next server message, or the end either way. */
static void scram_step(struct client *cl, const uint8_t *body, size_t len)
{
	struct client_login *lg = cl->login;
	char out[AUTH_SCRAM_MAX_MSG];
	size_t n = 0;
	enum auth_scram_result r = auth_scram_server_step(lg->scram, body, len, out, sizeof(out),
							  &n);
	uint8_t buf[AUTH_SCRAM_MAX_MSG + 64];
	struct proto_writer wr = proto_writer_init(buf, sizeof(buf));
	switch (r) {
	case AUTH_SCRAM_CONTINUE:
		proto_build_auth(&wr, PROTO_AUTH_SASL_CONTINUE, out, n);
		client_queue(cl, &wr);
		client_next(cl);
		return;
	case AUTH_SCRAM_SUCCESS:
		proto_build_auth(&wr, PROTO_AUTH_SASL_FINAL, out, n);
		client_queue(cl, &wr);
		if (!cl->c.closing)
			authenticated(cl);
		return;
	case AUTH_SCRAM_REJECT:
		auth_failed(cl);
		return;
	case AUTH_SCRAM_ERROR:
		client_fail_full(cl, "FATAL", lg->scram->sqlstate, lg->scram->message,
				 lg->scram->detail[0] ? lg->scram->detail : NULL, NULL);
		return;
	}
}

/* auth_query's answer for the client's role, which then stands in for a
 * [user] section; the exchange starts. No such role goes on like an
 * unknown user (refused like a wrong password, after the same exchange). */
static void on_role(struct client *cl, enum authq_status st, const char *verifier)
{
	struct client_login *l = cl->login;
	if (st == AUTHQ_ERROR) {
		client_fail(cl, "FATAL", "08006", "cannot look up role \"%s\" (auth_query failed)",
			    l->user);
		return;
	}
	l->looked_up = true;
	char why[128];
	if (st == AUTHQ_FOUND
	    && auth_secret_parse(verifier, &l->role.secret, why, sizeof(why)) != 0)
		log_warn("worker %d client %llu: auth_query gave role \"%s\" a password PgCrab "
			 "cannot read (%s): refused as a wrong password",
			 cl->c.w->id, (unsigned long long)cl->c.id, l->user, why);
	else if (st == AUTHQ_FOUND) {
		l->role.name = l->user;
		l->role.password = strdup(verifier);
		if (!l->role.password) {
			client_fail(cl, "FATAL", "53200", "out of memory");
			return;
		}
		/* a cleartext from the query has no verifier: computing one
		 * here would run PBKDF2 on the worker, so SCRAM refuses it */
		l->found = true;
	}
	uint8_t buf[64];
	struct proto_writer wr = proto_writer_init(buf, sizeof(buf));
	start_auth(cl, &wr);
}

static void on_looked_up(void *arg, enum authq_status st, const char *verifier)
{
	struct client *cl = arg;
	cl->login->authq = NULL;
	if (!cl->c.closing)
		on_role(cl, st, verifier);
}

/* The role's verifier from the worker's cache, or from its shard (the
 * first of a sharded database) while the client waits: it has nothing to
 * send until asked for its password, and what it sends anyway waits. */
static void look_up_role(struct client *cl)
{
	struct client_login *l = cl->login;
	int shard = cl->pool->shard->index;
	const char *verifier = NULL;
	enum authq_status st = authq_cached(&cl->sw->authq_cache, cl->c.w->now_ms, shard, l->user,
					    &verifier);
	if (st != AUTHQ_MISS) {
		l->cached = true;
		on_role(cl, st, verifier);
		return;
	}
	client_set_state(cl, CLIENT_AUTH);
	l->authq = authq_lookup(cl->sw->authq, cl->c.w, shard, l->user, on_looked_up, cl);
	if (!l->authq)
		client_fail(cl, "FATAL", "53200", "out of memory");
}

/* The password check's outcome: refused, or the login goes on with what
 * it proved (given: the cleartext a plain login sent). */
static void plain_checked(struct client *cl, const struct cfg_user *u, const char *given, bool ok)
{
	if (!ok || !u) {
		auth_failed(cl);
		return;
	}
	cl->proof = make_proof(cl, u, given);
	if (!cl->proof) {
		client_fail(cl, "FATAL", "53200", "out of memory");
		return;
	}
	authenticated(cl);
}

static void check_plain(struct client *cl, const char *password);

static bool same_verifier(const struct auth_scram_verifier *a, const struct auth_scram_verifier *b)
{
	return a->iterations == b->iterations && a->salt_len == b->salt_len
		&& memcmp(a->salt, b->salt, a->salt_len) == 0
		&& memcmp(a->stored_key, b->stored_key, AUTH_KEY_LEN) == 0
		&& memcmp(a->server_key, b->server_key, AUTH_KEY_LEN) == 0;
}

/* The hasher's answer. The role is looked up again: a reload meanwhile
 * may have dropped it or changed its password, and the check is then made
 * again against what the configuration says now. */
static void on_hashed(void *arg, bool ok, const char *password, const struct auth_scram_verifier *v)
{
	struct client *cl = arg;
	cl->login->hash = NULL;
	if (cl->c.closing)
		return;
	const struct cfg_user *u = login_user(cl);
	if (u && (u->secret.kind != AUTH_SECRET_SCRAM || !same_verifier(&u->secret.scram, v))) {
		check_plain(cl, password); /* (also when a mock's role was added) */
		return;
	}
	plain_checked(cl, u, password, ok);
}

/* A made-up verifier for a role that does not exist: salted as a real one
 * would be (auth_salt_for), with PgCrab's own iteration count. */
static void mock_verifier(struct client *cl, struct auth_scram_verifier *v)
{
	uint8_t salt[AUTH_KEY_LEN];
	memset(v, 0, sizeof(*v));
	v->iterations = AUTH_SCRAM_DEFAULT_ITERATIONS;
	v->salt_len = AUTH_SCRAM_SALT_LEN;
	if (auth_salt_for(cl->c.w->cfg->auth_key, cl->login->user, salt) == 0)
		memcpy(v->salt, salt, AUTH_SCRAM_SALT_LEN);
	explicit_bzero(salt, sizeof(salt));
}

/* A cleartext password (auth_type = plain) against the role's secret. A
 * cleartext or md5 secret is checked at once; a SCRAM verifier costs a
 * PBKDF2, which runs on the auth hasher's thread while the client waits
 * (unless this worker saw the same password accepted by the same verifier
 * before), so the worker's other clients do not wait for it. A role that
 * does not exist is hashed there too, against a made-up verifier, and
 * refused after as long as a wrong password. */
static void check_plain(struct client *cl, const char *password)
{
	struct client_login *lg = cl->login;
	const struct cfg_user *u = login_user(cl);
	if (u && u->secret.kind != AUTH_SECRET_SCRAM) {
		plain_checked(cl, u, password,
			      auth_plain_check(&u->secret, u->password, lg->user, password));
		return;
	}
	if (u && auth_plain_cache_hit(&cl->sw->plain_cache, password, &u->secret.scram)) {
		plain_checked(cl, u, password, true);
		return;
	}
	struct auth_scram_verifier mock;
	if (!u)
		mock_verifier(cl, &mock);
	lg->hash = hasher_check(cl->sw->hasher, cl->c.w, u ? &u->secret.scram : &mock, !u, password,
				on_hashed, cl);
	explicit_bzero(&mock, sizeof(mock));
	if (!lg->hash)
		client_fail(cl, "FATAL", "53200", "out of memory");
}

void login_on_password(struct client *cl)
{
	struct conn *c = &cl->c;
	struct client_login *lg = cl->login;
	bool sasl = lg->method == LOGIN_SCRAM;
	if (lg->authq || lg->hash)
		return; /* bytes ahead of the lookup's or the hash's answer wait for it */
	if (c->rx_end > c->rx_start && c->rx[c->rx_start] != 'p') {
		/* the type alone decides, before any length */
		client_fail(cl, "FATAL", "08P01", "expected %s response, got message type %d",
			    sasl ? "SASL" : "password", c->rx[c->rx_start]);
		return;
	}
	uint8_t type;
	uint32_t total;
	enum proto_result r = proto_frame(c->rx + c->rx_start, c->rx_end - c->rx_start,
					  sasl ? SASL_MAX_LEN : PASSWORD_MAX_LEN, &type, &total);
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
	const uint8_t *body = c->rx + c->rx_start + 5;
	size_t len = total - 5;
	c->rx_start += total;
	c->scan_pos = c->rx_start;
	if (sasl) {
		scram_step(cl, body, len);
		return;
	}
	const char *password = password_text(cl, body, len);
	if (!password)
		return;
	if (lg->method == LOGIN_PLAIN) {
		check_plain(cl, password);
		return;
	}
	const struct cfg_user *u = login_user(cl);
	plain_checked(cl, u, NULL, md5_matches(cl, u, password));
}

/* Authenticated: what only the login needed goes, the client gets its
 * cancel key. False (the client failed) without a random key. */
static bool logged_in(struct client *cl)
{
	client_login_free(cl->login);
	cl->login = NULL;
	cl->key_pid = cancel_new_pid(cl->sw);
	if (cancel_new_secret(cl->sw, &cl->key_secret) != 0) {
		/* a guessable key would let anyone cancel this client's queries */
		client_fail(cl, "FATAL", "53200", "cannot draw a random cancel key");
		return false;
	}
	return true;
}

/* An authenticated user asked for the admin console. */
static void console_login(struct client *cl)
{
	enum admin_role role = admin_role_of(cl->c.w->cfg, cl->login->user);
	if (role == ADMIN_NONE) {
		client_fail(cl, "FATAL", "28000",
			    "user \"%s\" may not use the pgcrab console (not in admin_users or "
			    "stats_users)",
			    cl->login->user);
		return;
	}
	cl->user = strdup(cl->login->user);
	if (!cl->user) {
		client_fail(cl, "FATAL", "53200", "out of memory");
		return;
	}
	if (logged_in(cl))
		admin_login(cl, role);
}

/* Authenticated: the client keeps its role and proof (taken over: a shard
 * without a user logs in to the server with them), and its pool becomes
 * its role's on such a shard. -1 when the client was failed. */
static int keep_proof(struct client *cl)
{
	cl->user = strdup(cl->login->user);
	if (!cl->user) {
		client_fail(cl, "FATAL", "53200", "out of memory");
		return -1;
	}
	cl->pool = client_pool(cl, cl->pool->shard->index);
	if (!cl->pool) {
		client_fail(cl, "FATAL", "53300", "too many roles in use: no pool for role \"%s\"",
			    cl->user);
		return -1;
	}
	return 0;
}

/* The client proved who it is (or trust): the rest of the login. */
static void authenticated(struct client *cl)
{
	struct conn *c = &cl->c;
	const struct cfg *cfg = c->w->cfg;
	if (!cl->proof) {
		/* trust and SCRAM: nothing was read from a password message */
		cl->proof = make_proof(cl, login_user(cl), NULL);
		if (!cl->proof) {
			client_fail(cl, "FATAL", "53200", "out of memory");
			return;
		}
	}
	if (cl->login->console) {
		console_login(cl);
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
	if (keep_proof(cl) != 0 || !logged_in(cl))
		return;
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
