/* SCRAM-SHA-256 server side: see scram_server.h. Every client message is
 * parsed strictly and within bounds; errors carry PostgreSQL's SQLSTATE and
 * message. A mock exchange (unknown user, or a user without a SCRAM secret)
 * looks the same as a real one up to the proof, with a salt that is the
 * same on every try for the same name (derived from the caller's key, as
 * cleartext users' salts are), and costs the same HMACs. */
#include "auth/scram_server.h"

#include <pthread.h>
#include <stdio.h>
#include <string.h>

#include <openssl/crypto.h>
#include <openssl/rand.h>

#include "auth/util.h"

#define MECH       "SCRAM-SHA-256"
#define MECH_PLUS  "SCRAM-SHA-256-PLUS"
#define CB_TYPE    "tls-server-end-point"
#define NONCE_RAW  18 /* server nonce bytes, as PostgreSQL */
#define PROTO_VIOL "08P01"

/* ---- the mock verifier ---------------------------------------------------- */

/* Without a key from the caller: one per process, so every worker answers alike. */
static uint8_t process_key[AUTH_KEY_LEN];
static bool process_key_ok;
static pthread_once_t process_key_once = PTHREAD_ONCE_INIT;

static void process_key_init(void)
{
	process_key_ok = RAND_bytes(process_key, sizeof(process_key)) == 1;
}

int auth_scram_mock_verifier(const uint8_t *key, const char *user, struct auth_scram_verifier *v)
{
	uint8_t h[AUTH_KEY_LEN];
	if (!key) {
		pthread_once(&process_key_once, process_key_init);
		if (!process_key_ok)
			return -1;
		key = process_key;
	}
	/* the salt a cleartext user gets from the same key (auth_salt_for) */
	if (auth_salt_for(key, user, h) != 0)
		return -1;
	v->iterations = AUTH_SCRAM_DEFAULT_ITERATIONS;
	v->salt_len = AUTH_SCRAM_SALT_LEN;
	memcpy(v->salt, h, AUTH_SCRAM_SALT_LEN);
	/* keys nobody has a password for */
	int rc = auth_sha256(h, sizeof(h), v->stored_key) == 0
			&& auth_sha256(v->stored_key, AUTH_KEY_LEN, v->server_key) == 0
		? 0
		: -1;
	OPENSSL_cleanse(h, sizeof(h));
	return rc;
}

/* ---- errors -------------------------------------------------------------- */

static enum auth_scram_result fail_with(struct auth_scram_server *s, const char *sqlstate,
					const char *message, const char *detail)
{
	auth_scram_server_wipe(s);
	s->sqlstate = sqlstate;
	s->message = message;
	snprintf(s->detail, sizeof(s->detail), "%s", detail ? detail : "");
	return AUTH_SCRAM_ERROR;
}

static enum auth_scram_result malformed(struct auth_scram_server *s, const char *detail)
{
	return fail_with(s, PROTO_VIOL, "malformed SCRAM message", detail);
}

static enum auth_scram_result reject(struct auth_scram_server *s)
{
	auth_scram_server_wipe(s);
	return AUTH_SCRAM_REJECT;
}

void auth_scram_server_wipe(struct auth_scram_server *s)
{
	OPENSSL_cleanse(s, sizeof(*s));
	s->state = AUTH_SCRAM_SRV_FAILED;
}

/* ---- setup ---------------------------------------------------------------- */

int auth_scram_server_init(struct auth_scram_server *s, const struct auth_scram_verifier *v,
			   const uint8_t *mock_key, const char *user, const uint8_t *cb,
			   size_t cb_len, const char *server_nonce)
{
	memset(s, 0, sizeof(*s));
	s->state = AUTH_SCRAM_SRV_FAILED;
	if (!user || cb_len > AUTH_SCRAM_CB_MAX || (cb_len && !cb))
		return -1;
	if (v) {
		s->v = *v;
	} else {
		s->mock = true;
		if (auth_scram_mock_verifier(mock_key, user, &s->v) != 0)
			return -1;
	}
	if (cb_len) {
		s->cb_offered = true;
		memcpy(s->cb_data, cb, cb_len);
		s->cb_len = cb_len;
	}
	if (server_nonce) {
		size_t n = strlen(server_nonce);
		if (n == 0 || n >= sizeof(s->server_nonce))
			return -1;
		for (size_t i = 0; i < n; i++)
			if (!auth_scram_printable(server_nonce[i]))
				return -1;
		memcpy(s->server_nonce, server_nonce, n + 1);
	} else {
		uint8_t raw[NONCE_RAW];
		if (RAND_bytes(raw, sizeof(raw)) != 1
		    || auth_b64_encode(raw, sizeof(raw), s->server_nonce, sizeof(s->server_nonce))
			    < 0)
			return -1;
	}
	s->state = AUTH_SCRAM_SRV_INITIAL;
	return 0;
}

size_t auth_scram_server_mechanisms(const struct auth_scram_server *s, uint8_t *out, size_t cap)
{
	size_t n = 0;
	const char *names[2] = { s->cb_offered ? MECH_PLUS : MECH, s->cb_offered ? MECH : NULL };
	for (int i = 0; i < 2 && names[i]; i++) {
		size_t l = strlen(names[i]) + 1;
		if (n + l + 1 > cap)
			return 0;
		memcpy(out + n, names[i], l);
		n += l;
	}
	out[n++] = '\0';
	return n;
}

/* ---- parsing helpers -------------------------------------------------------- */

struct cursor {
	const char *p, *end;
};

/* "<name>=" at the cursor. */
static bool attr(struct cursor *c, char name)
{
	if (c->end - c->p < 2 || c->p[0] != name || c->p[1] != '=')
		return false;
	c->p += 2;
	return true;
}

/* The value up to the next ',' (or the end); the cursor stops on the ','. */
static size_t value(struct cursor *c, const char **start)
{
	*start = c->p;
	while (c->p < c->end && *c->p != ',')
		c->p++;
	return (size_t)(c->p - *start);
}

static bool comma(struct cursor *c)
{
	if (c->p >= c->end || *c->p != ',')
		return false;
	c->p++;
	return true;
}

/* Skips any "x=value" attributes (extensions we ignore) until name comes. */
static bool skip_to(struct cursor *c, char name)
{
	while (c->end - c->p >= 2 && c->p[0] != name && c->p[1] == '=') {
		const char *v;
		value(c, &v);
		if (!comma(c))
			return false;
	}
	return true;
}

/* Every SCRAM message is text: not empty, no NUL inside, bounded. */
static bool text_ok(struct auth_scram_server *s, const char *msg, size_t len)
{
	const char *why = len == 0         ? "The message is empty."
		: memchr(msg, '\0', len)   ? "Message length does not match input length."
		: len > AUTH_SCRAM_MAX_MSG ? "The message is too long."
					   : NULL;
	if (why)
		malformed(s, why);
	return !why;
}

/* ---- client-first ----------------------------------------------------------- */

static enum auth_scram_result client_first(struct auth_scram_server *s, const char *msg, size_t len,
					   char *out, size_t cap, size_t *out_len)
{
	struct cursor c = { msg, msg + len };
	const char *v;
	size_t n;

	if (!text_ok(s, msg, len))
		return AUTH_SCRAM_ERROR;

	/* gs2-cbind-flag */
	s->cb_flag = *c.p;
	switch (*c.p) {
	case 'n':
		c.p++;
		break;
	case 'y':
		/* the client could bind but thinks we cannot: a downgrade */
		if (s->cb_offered)
			return fail_with(s, PROTO_VIOL, "SCRAM channel binding negotiation error",
					 "The client supports SCRAM channel binding but thinks the "
					 "server does not.  However, this server does support "
					 "channel binding.");
		c.p++;
		break;
	case 'p':
		if (!s->cb_used)
			return malformed(s,
					 "The client selected SCRAM-SHA-256 without channel "
					 "binding, but the SCRAM message includes channel "
					 "binding data.");
		if (!attr(&c, 'p'))
			return malformed(s, "Expected channel-binding type.");
		n = value(&c, &v);
		if (n != strlen(CB_TYPE) || memcmp(v, CB_TYPE, n) != 0)
			return fail_with(s, PROTO_VIOL, "unsupported SCRAM channel-binding type",
					 NULL);
		break;
	default:
		return malformed(s, "Unexpected channel-binding flag.");
	}
	if (s->cb_used && s->cb_flag != 'p')
		return malformed(s,
				 "The client selected SCRAM-SHA-256-PLUS, but the SCRAM "
				 "message does not include channel binding data.");
	if (!comma(&c))
		return malformed(s, "Comma expected.");
	/* authzid: PostgreSQL supports none */
	if (c.p < c.end && *c.p == 'a')
		return fail_with(s, "0A000",
				 "client uses authorization identity, but it is not supported",
				 NULL);
	if (!comma(&c))
		return malformed(s, "Unexpected attribute in client-first-message.");
	size_t gs2_len = (size_t)(c.p - msg);
	memcpy(s->gs2_header, msg, gs2_len);
	s->gs2_header[gs2_len] = '\0';

	/* client-first-message-bare: [m=ext,]n=name,r=nonce[,ext...] */
	const char *bare = c.p;
	if (c.p < c.end && *c.p == 'm')
		return fail_with(s, "0A000", "client requires an unsupported SCRAM extension",
				 NULL);
	if (!attr(&c, 'n'))
		return malformed(s, "Expected attribute \"n\".");
	value(&c, &v); /* the name: PostgreSQL uses the startup packet's user */
	if (!comma(&c) || !attr(&c, 'r'))
		return malformed(s, "Expected attribute \"r\".");
	n = value(&c, &v);
	if (n == 0)
		return malformed(s, "Expected attribute \"r\".");
	for (size_t i = 0; i < n; i++)
		if (!auth_scram_printable(v[i]))
			return malformed(s, "Invalid nonce.");
	/* anything after the nonce is an extension, ignored as PostgreSQL does */
	size_t sn = strlen(s->server_nonce);
	memcpy(s->nonce, v, n);
	memcpy(s->nonce + n, s->server_nonce, sn + 1);
	memcpy(s->client_first_bare, bare, (size_t)(c.end - bare));
	s->client_first_bare[c.end - bare] = '\0';

	/* server-first-message: r=<nonce>,s=<salt>,i=<count> */
	char salt[AUTH_B64_LEN(AUTH_SCRAM_SALT_MAX) + 1];
	if (auth_b64_encode(s->v.salt, s->v.salt_len, salt, sizeof(salt)) < 0)
		return malformed(s, NULL);
	int w = snprintf(s->server_first, sizeof(s->server_first), "r=%s,s=%s,i=%d", s->nonce, salt,
			 s->v.iterations);
	if (w < 0 || (size_t)w >= sizeof(s->server_first) || (size_t)w >= cap)
		return malformed(s, "The message is too long.");
	memcpy(out, s->server_first, (size_t)w);
	*out_len = (size_t)w;
	s->state = AUTH_SCRAM_SRV_FINAL;
	return AUTH_SCRAM_CONTINUE;
}

/* ---- client-final ----------------------------------------------------------- */

static enum auth_scram_result client_final(struct auth_scram_server *s, const char *msg, size_t len,
					   char *out, size_t cap, size_t *out_len)
{
	struct cursor c = { msg, msg + len };
	const char *v;
	size_t n;
	uint8_t expect_cb[AUTH_SCRAM_MAX_MSG + AUTH_SCRAM_CB_MAX], got_cb[AUTH_SCRAM_MAX_MSG];
	uint8_t proof[AUTH_B64_LEN(AUTH_KEY_LEN)], sig[AUTH_KEY_LEN], key[AUTH_KEY_LEN];
	uint8_t stored[AUTH_KEY_LEN];
	char am[4 * AUTH_SCRAM_MAX_MSG];
	enum auth_scram_result r;

	if (!text_ok(s, msg, len))
		return AUTH_SCRAM_ERROR;

	/* c=<base64(gs2 header [+ cb data])> */
	if (!attr(&c, 'c'))
		return malformed(s, "Expected attribute \"c\".");
	n = value(&c, &v);
	int got = auth_b64_decode(v, n, got_cb, sizeof(got_cb));
	size_t gl = strlen(s->gs2_header), el = gl;
	memcpy(expect_cb, s->gs2_header, gl);
	if (s->cb_flag == 'p') {
		memcpy(expect_cb + gl, s->cb_data, s->cb_len);
		el += s->cb_len;
	}
	if (got < 0 || (size_t)got != el || CRYPTO_memcmp(got_cb, expect_cb, el) != 0)
		return fail_with(s, PROTO_VIOL, "SCRAM channel binding check failed", NULL);

	/* r=<nonce>: exactly the combined nonce */
	if (!comma(&c) || !attr(&c, 'r'))
		return malformed(s, "Expected attribute \"r\".");
	n = value(&c, &v);
	if (n != strlen(s->nonce) || memcmp(v, s->nonce, n) != 0)
		return malformed(s, "Nonce does not match.");
	size_t without_proof = (size_t)(c.p - msg);

	/* extensions, then p=<proof> last */
	if (!comma(&c) || !skip_to(&c, 'p') || !attr(&c, 'p'))
		return malformed(s, "Could not find proof in client-final-message.");
	n = value(&c, &v);
	if (c.p != c.end)
		return malformed(s, "Garbage found at the end of client-final-message.");
	if (auth_b64_decode(v, n, proof, sizeof(proof)) != AUTH_KEY_LEN)
		return malformed(s, "Malformed proof in client-final-message.");

	/* AuthMessage = client-first-bare "," server-first "," final-without-proof */
	int aml = snprintf(am, sizeof(am), "%s,%s,%.*s", s->client_first_bare, s->server_first,
			   (int)without_proof, msg);
	if (aml < 0 || (size_t)aml >= sizeof(am))
		return malformed(s, "The message is too long.");

	/* ClientKey = ClientProof XOR HMAC(StoredKey, AuthMessage); the proof
	 * holds if H(ClientKey) = StoredKey. The mock runs the same steps. */
	r = AUTH_SCRAM_REJECT;
	if (auth_hmac256(s->v.stored_key, AUTH_KEY_LEN, am, (size_t)aml, sig) != 0)
		goto out;
	for (int i = 0; i < AUTH_KEY_LEN; i++)
		key[i] = proof[i] ^ sig[i];
	if (auth_sha256(key, AUTH_KEY_LEN, stored) != 0)
		goto out;
	bool ok = CRYPTO_memcmp(stored, s->v.stored_key, AUTH_KEY_LEN) == 0;
	if (!ok || s->mock)
		goto out;

	/* server-final: v=<base64(HMAC(ServerKey, AuthMessage))> */
	if (auth_hmac256(s->v.server_key, AUTH_KEY_LEN, am, (size_t)aml, sig) != 0
	    || cap < 2 + AUTH_B64_LEN(AUTH_KEY_LEN) + 1)
		goto out;
	memcpy(out, "v=", 2);
	if (auth_b64_encode(sig, AUTH_KEY_LEN, out + 2, cap - 2) < 0)
		goto out;
	*out_len = 2 + AUTH_B64_LEN(AUTH_KEY_LEN);
	memcpy(s->client_key, key, AUTH_KEY_LEN);
	s->state = AUTH_SCRAM_SRV_DONE;
	r = AUTH_SCRAM_SUCCESS;
out:
	OPENSSL_cleanse(am, sizeof(am));
	OPENSSL_cleanse(sig, sizeof(sig));
	OPENSSL_cleanse(key, sizeof(key));
	OPENSSL_cleanse(proof, sizeof(proof));
	OPENSSL_cleanse(stored, sizeof(stored));
	return r == AUTH_SCRAM_REJECT ? reject(s) : r;
}

/* ---- the step ---------------------------------------------------------------- */

enum auth_scram_result auth_scram_server_step(struct auth_scram_server *s, const uint8_t *body,
					      size_t len, char *out, size_t cap, size_t *out_len)
{
	*out_len = 0;
	switch (s->state) {
	case AUTH_SCRAM_SRV_INITIAL: {
		/* SASLInitialResponse: mechanism\0, int32 length (-1: none), data */
		const uint8_t *nul = memchr(body, '\0', len);
		if (!nul)
			return fail_with(s, PROTO_VIOL, "invalid string in message", NULL);
		const char *mech = (const char *)body;
		if (strcmp(mech, MECH) == 0)
			s->cb_used = false;
		else if (s->cb_offered && strcmp(mech, MECH_PLUS) == 0)
			s->cb_used = true;
		else
			return fail_with(s, PROTO_VIOL,
					 "client selected an invalid SASL authentication mechanism",
					 NULL);
		size_t at = (size_t)(nul - body) + 1;
		if (len - at < 4)
			return fail_with(s, PROTO_VIOL, "insufficient data left in message", NULL);
		int32_t n = (int32_t)((uint32_t)body[at] << 24 | (uint32_t)body[at + 1] << 16
				      | (uint32_t)body[at + 2] << 8 | body[at + 3]);
		at += 4;
		if (n == -1) {
			if (at != len)
				return fail_with(s, PROTO_VIOL, "invalid message format", NULL);
			/* no initial response: an empty challenge asks for it */
			s->state = AUTH_SCRAM_SRV_FIRST;
			return AUTH_SCRAM_CONTINUE;
		}
		if (n < 0 || (size_t)n > len - at)
			return fail_with(s, PROTO_VIOL, "insufficient data left in message", NULL);
		if (at + (size_t)n != len)
			return fail_with(s, PROTO_VIOL, "invalid message format", NULL);
		return client_first(s, (const char *)body + at, (size_t)n, out, cap, out_len);
	}
	case AUTH_SCRAM_SRV_FIRST:
		return client_first(s, (const char *)body, len, out, cap, out_len);
	case AUTH_SCRAM_SRV_FINAL:
		return client_final(s, (const char *)body, len, out, cap, out_len);
	case AUTH_SCRAM_SRV_DONE:
	case AUTH_SCRAM_SRV_FAILED:
		break;
	}
	return fail_with(s, PROTO_VIOL, "unexpected SASL message", NULL);
}
