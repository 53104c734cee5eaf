/* Authentication math for PgCrab logging into PostgreSQL: md5 responses and
 * the client side of SCRAM-SHA-256 (RFC 5802, RFC 7677) as PostgreSQL speaks
 * it: no channel binding (gs2 header "n,,", c=biws) and an empty user name,
 * which the server ignores in favour of the startup packet's user.
 *
 * The server-first-message is parsed strictly, since it comes from a server
 * that may be hostile: only "r=<nonce>,s=<base64 salt>,i=<count>" in that
 * order, every byte checked against its field's grammar, every copy bounded.
 *
 * Passwords go through SASLprep (RFC 4013) as PostgreSQL applies it
 * (auth_saslprep in secret.c), so a non-ASCII password that SASLprep maps
 * gives the same SaltedPassword the server stored. */
#include "auth/auth.h"

#include <pthread.h>
#include <string.h>

#include <openssl/crypto.h>
#include <openssl/evp.h>
#include <openssl/hmac.h>
#include <openssl/rand.h>

#include "auth/secret.h"
#include "auth/util.h"

void auth_md5_hash(const char *user, const char *password, char out[36])
{
	uint8_t digest[16];

	out[0] = '\0'; /* what the caller gets if libcrypto fails: matches nothing */
	if (auth_md5_two(password, strlen(password), user, strlen(user), digest) == 0) {
		memcpy(out, "md5", 3);
		auth_to_hex(digest, sizeof(digest), out + 3);
		out[35] = '\0';
	}
	OPENSSL_cleanse(digest, sizeof(digest));
}

void auth_md5_salted(const char *hash, const uint8_t salt[4], char out[36])
{
	uint8_t digest[16];

	out[0] = '\0';
	if (strlen(hash) == 35 && auth_md5_two(hash + 3, 32, salt, 4, digest) == 0) {
		memcpy(out, "md5", 3);
		auth_to_hex(digest, sizeof(digest), out + 3);
		out[35] = '\0';
	}
	OPENSSL_cleanse(digest, sizeof(digest));
}

void auth_md5_response(const char *user, const char *password, const uint8_t salt[4], char out[36])
{
	char hash[36];
	auth_md5_hash(user, password, hash);
	auth_md5_salted(hash, salt, out);
	OPENSSL_cleanse(hash, sizeof(hash));
}

/* Ends the exchange: wipes every secret and everything derived from them. */
static int scram_fail(struct auth_scram_client *s)
{
	OPENSSL_cleanse(s, sizeof(*s));
	s->state = AUTH_SCRAM_FAILED;
	return -1;
}

/* Appends n bytes to the AuthMessage, keeping it NUL-terminated. */
static bool am_append(struct auth_scram_client *s, const char *p, size_t n)
{
	if (n >= sizeof(s->auth_message) - s->auth_message_len)
		return false;
	memcpy(s->auth_message + s->auth_message_len, p, n);
	s->auth_message_len += n;
	s->auth_message[s->auth_message_len] = '\0';
	return true;
}

/* ---- SCRAM-SHA-256 client -------------------------------------------- */

int auth_scram_client_init_user(struct auth_scram_client *s, const char *user, const char *password,
				const char *nonce)
{
	memset(s, 0, sizeof(*s));
	s->state = AUTH_SCRAM_FAILED;
	if (!user || !password)
		return scram_fail(s);

	/* what PostgreSQL hashed when the password was set */
	if (auth_saslprep(password, s->password, sizeof(s->password)) != 0)
		return scram_fail(s);

	if (nonce) {
		size_t n = strlen(nonce);
		if (n == 0 || n >= sizeof(s->client_nonce))
			return scram_fail(s);
		for (size_t i = 0; i < n; i++)
			if (!auth_scram_printable(nonce[i]))
				return scram_fail(s);
		memcpy(s->client_nonce, nonce, n + 1);
	} else {
		uint8_t raw[AUTH_SCRAM_NONCE_LEN];
		_Static_assert(AUTH_B64_LEN(AUTH_SCRAM_NONCE_LEN) < sizeof(s->client_nonce),
			       "client_nonce holds the base64 nonce");
		if (RAND_bytes(raw, sizeof(raw)) != 1)
			return scram_fail(s);
		/* base64 is printable and has no ',', as the nonce must be */
		if (auth_b64_encode(raw, sizeof(raw), s->client_nonce, sizeof(s->client_nonce)) < 0)
			return scram_fail(s);
	}

	/* client-first-message-bare: "n=" saslname ",r=" nonce, with ',' and
	 * '=' in the name written as "=2C" and "=3D" (RFC 5802 section 5.1) */
	char *b = s->client_first_bare;
	size_t cap = sizeof(s->client_first_bare), at = 0;
	b[at++] = 'n';
	b[at++] = '=';
	for (const char *u = user; *u; u++) {
		const char *piece = *u == ',' ? "=2C" : *u == '=' ? "=3D" : NULL;
		size_t n = piece ? 3 : 1;
		if (at + n >= cap)
			return scram_fail(s);
		memcpy(b + at, piece ? piece : u, n);
		at += n;
	}
	size_t nlen = strlen(s->client_nonce);
	if (at + 3 + nlen >= cap)
		return scram_fail(s);
	memcpy(b + at, ",r=", 3);
	memcpy(b + at + 3, s->client_nonce, nlen + 1);

	s->state = AUTH_SCRAM_INIT;
	return 0;
}

int auth_scram_client_init(struct auth_scram_client *s, const char *password, const char *nonce)
{
	return auth_scram_client_init_user(s, "", password, nonce);
}

int auth_scram_client_first(struct auth_scram_client *s, char *out, size_t cap)
{
	if (s->state != AUTH_SCRAM_INIT || !out)
		return scram_fail(s);
	size_t blen = strlen(s->client_first_bare);
	if (3 + blen + 1 > cap)
		return scram_fail(s);
	memcpy(out, "n,,", 3);
	memcpy(out + 3, s->client_first_bare, blen + 1);
	s->state = AUTH_SCRAM_SENT_FIRST;
	return (int)(3 + blen);
}

/* Consumes "<name>=" at *p, or fails. */
static bool take_attr(const char **p, const char *end, char name)
{
	if (end - *p < 2 || (*p)[0] != name || (*p)[1] != '=')
		return false;
	*p += 2;
	return true;
}

/* Advances *p to the next ',' or end and returns where the value started. */
static const char *take_value(const char **p, const char *end)
{
	const char *start = *p;
	while (*p < end && **p != ',')
		(*p)++;
	return start;
}

static bool take_comma(const char **p, const char *end)
{
	if (*p >= end || **p != ',')
		return false;
	(*p)++;
	return true;
}

/* A key of this process's for the cache's password HMACs: drawn once. */
static uint8_t cache_key[AUTH_SHA256_LEN];
static bool cache_key_ok;
static pthread_once_t cache_key_once = PTHREAD_ONCE_INIT;

static void draw_cache_key(void)
{
	cache_key_ok = RAND_bytes(cache_key, sizeof(cache_key)) == 1;
}

/* s->salted_password, from the cache when it holds this very password,
 * salt and count; else PBKDF2, remembered in the cache. */
static int salted_password(struct auth_scram_client *s, const uint8_t *salt, size_t salt_len,
			   int iterations)
{
	struct auth_scram_salted_cache *c = s->cache;
	uint8_t mac[AUTH_SHA256_LEN];
	pthread_once(&cache_key_once, draw_cache_key);
	bool keyed = c && cache_key_ok && salt_len <= sizeof(c->salt)
		&& auth_hmac256(cache_key, sizeof(cache_key), s->password, strlen(s->password), mac)
			== 0;
	if (keyed && c->valid && c->iterations == iterations && c->salt_len == salt_len
	    && memcmp(c->salt, salt, salt_len) == 0
	    && CRYPTO_memcmp(c->password_mac, mac, sizeof(mac)) == 0) {
		memcpy(s->salted_password, c->salted_password, AUTH_SHA256_LEN);
		OPENSSL_cleanse(mac, sizeof(mac));
		return 0;
	}
	if (PKCS5_PBKDF2_HMAC(s->password, (int)strlen(s->password), salt, (int)salt_len,
			      iterations, EVP_sha256(), AUTH_SHA256_LEN, s->salted_password)
	    != 1) {
		OPENSSL_cleanse(mac, sizeof(mac));
		return -1;
	}
	if (keyed) {
		c->valid = true;
		memcpy(c->password_mac, mac, sizeof(mac));
		c->iterations = iterations;
		c->salt_len = salt_len;
		memcpy(c->salt, salt, salt_len);
		memcpy(c->salted_password, s->salted_password, AUTH_SHA256_LEN);
	}
	OPENSSL_cleanse(mac, sizeof(mac));
	return 0;
}

int auth_scram_client_final(struct auth_scram_client *s, const char *server_first, size_t len,
			    char *out, size_t cap)
{
	uint8_t salt[AUTH_SCRAM_MAX_MSG];
	uint8_t client_key[AUTH_SHA256_LEN], stored_key[AUTH_SHA256_LEN],
		signature[AUTH_SHA256_LEN];
	uint8_t proof[AUTH_SHA256_LEN];
	int rc = -1;

	if (out && cap > 0)
		out[0] = '\0';
	if (s->state != AUTH_SCRAM_SENT_FIRST || !server_first || !out)
		return scram_fail(s);
	if (len == 0 || len > AUTH_SCRAM_MAX_MSG)
		return scram_fail(s);

	const char *p = server_first, *end = server_first + len;

	/* r=<nonce>: ours, extended by at least one printable character */
	if (!take_attr(&p, end, 'r'))
		return scram_fail(s);
	const char *nonce = take_value(&p, end);
	size_t nonce_len = (size_t)(p - nonce);
	size_t cn_len = strlen(s->client_nonce);
	if (nonce_len <= cn_len || memcmp(nonce, s->client_nonce, cn_len) != 0)
		return scram_fail(s);
	for (size_t i = 0; i < nonce_len; i++)
		if (!auth_scram_printable(nonce[i]))
			return scram_fail(s);

	/* s=<base64 salt>: at least one byte */
	if (!take_comma(&p, end) || !take_attr(&p, end, 's'))
		return scram_fail(s);
	const char *salt_b64 = take_value(&p, end);
	int salt_len = auth_b64_decode(salt_b64, (size_t)(p - salt_b64), salt, sizeof(salt));
	if (salt_len < 1)
		return scram_fail(s);

	/* i=<count>: no sign, no leading zero, 1..AUTH_SCRAM_MAX_ITERATIONS, and
	 * the last attribute (no extensions) */
	if (!take_comma(&p, end) || !take_attr(&p, end, 'i'))
		goto out;
	if (p >= end || *p < '1' || *p > '9')
		goto out;
	long iterations = 0;
	for (; p < end; p++) {
		if (*p < '0' || *p > '9')
			goto out;
		iterations = iterations * 10 + (*p - '0');
		if (iterations > AUTH_SCRAM_MAX_ITERATIONS)
			goto out;
	}

	/* client-final-message-without-proof, then the whole message; built
	 * before the expensive PBKDF2 so a too-small cap fails fast */
	size_t final_len = 9 + nonce_len + 3 + AUTH_B64_LEN(AUTH_SHA256_LEN);
	if (final_len > AUTH_SCRAM_MAX_MSG || final_len + 1 > cap)
		goto out;
	memcpy(out, "c=biws,r=", 9);
	memcpy(out + 9, nonce, nonce_len);
	size_t without_proof = 9 + nonce_len;

	/* AuthMessage = client-first-bare "," server-first "," final-without-proof */
	s->auth_message_len = 0;
	if (!am_append(s, s->client_first_bare, strlen(s->client_first_bare))
	    || !am_append(s, ",", 1) || !am_append(s, server_first, len) || !am_append(s, ",", 1)
	    || !am_append(s, out, without_proof))
		goto out;

	/* SaltedPassword = Hi(password, salt, i) = PBKDF2-HMAC-SHA-256 */
	if (salted_password(s, salt, (size_t)salt_len, (int)iterations) != 0)
		goto out;
	OPENSSL_cleanse(s->password, sizeof(s->password)); /* no longer needed */

	/* ClientProof = ClientKey XOR HMAC(H(ClientKey), AuthMessage) */
	if (auth_hmac256(s->salted_password, AUTH_SHA256_LEN, "Client Key", 10, client_key) != 0
	    || auth_sha256(client_key, AUTH_SHA256_LEN, stored_key) != 0
	    || auth_hmac256(stored_key, AUTH_SHA256_LEN, s->auth_message, s->auth_message_len,
			    signature)
		    != 0)
		goto out;
	for (size_t i = 0; i < AUTH_SHA256_LEN; i++)
		proof[i] = client_key[i] ^ signature[i];

	memcpy(out + without_proof, ",p=", 3);
	if (auth_b64_encode(proof, AUTH_SHA256_LEN, out + without_proof + 3,
			    cap - without_proof - 3)
	    != AUTH_B64_LEN(AUTH_SHA256_LEN))
		goto out;
	s->state = AUTH_SCRAM_SENT_FINAL;
	rc = (int)final_len;
out:
	OPENSSL_cleanse(salt, sizeof(salt));
	OPENSSL_cleanse(client_key, sizeof(client_key));
	OPENSSL_cleanse(stored_key, sizeof(stored_key));
	OPENSSL_cleanse(signature, sizeof(signature));
	OPENSSL_cleanse(proof, sizeof(proof));
	if (rc < 0) {
		if (cap > 0)
			out[0] = '\0'; /* no half-built message left behind */
		return scram_fail(s);
	}
	return rc;
}

int auth_scram_client_verify(struct auth_scram_client *s, const char *server_final, size_t len)
{
	uint8_t server_key[AUTH_SHA256_LEN], expected[AUTH_SHA256_LEN];
	uint8_t got[AUTH_B64_LEN(AUTH_SHA256_LEN) / 4 * 3]; /* room for the decoder's padding */
	const char *p = server_final, *end = server_final + len;
	int rc = -1;

	if (s->state != AUTH_SCRAM_SENT_FINAL || !server_final)
		return scram_fail(s);
	/* "e=<error>" is a refusal; "v=<base64>" the only success, and with
	 * nothing after it (extensions are not accepted) */
	if (len > AUTH_SCRAM_MAX_MSG || !take_attr(&p, end, 'v'))
		return scram_fail(s);
	if (auth_b64_decode(p, (size_t)(end - p), got, sizeof(got)) != AUTH_SHA256_LEN)
		goto out;

	/* ServerSignature = HMAC(HMAC(SaltedPassword, "Server Key"), AuthMessage) */
	if (auth_hmac256(s->salted_password, AUTH_SHA256_LEN, "Server Key", 10, server_key) != 0
	    || auth_hmac256(server_key, AUTH_SHA256_LEN, s->auth_message, s->auth_message_len,
			    expected)
		    != 0)
		goto out;
	if (CRYPTO_memcmp(got, expected, AUTH_SHA256_LEN) == 0)
		rc = 0;
out:
	OPENSSL_cleanse(server_key, sizeof(server_key));
	OPENSSL_cleanse(expected, sizeof(expected));
	OPENSSL_cleanse(got, sizeof(got));
	if (rc < 0)
		return scram_fail(s);
	/* done: keep nothing secret around */
	OPENSSL_cleanse(s, sizeof(*s));
	s->state = AUTH_SCRAM_DONE;
	return 0;
}

/* ---- constant-time secret comparison ----------------------------------- */

/* min(i, n) without a data-dependent branch */
static size_t ct_min(size_t i, size_t n)
{
	size_t lt = (size_t)0 - (size_t)(i < n); /* all ones if i < n */
	return (i & lt) | (n & ~lt);
}

bool auth_secret_equal(const char *a, const char *b)
{
	if (!a || !b)
		return false;
	size_t la = strlen(a), lb = strlen(b);
	size_t n = la > lb ? la : lb;
	unsigned diff = (unsigned)(la != lb);

	/* Walk the longer length. Past its end, a string's index stays on its
	 * terminating NUL, so every read is in bounds and every position costs
	 * the same, with no exit at the first difference. */
	for (size_t i = 0; i < n; i++)
		diff |= (unsigned char)a[ct_min(i, la)] ^ (unsigned char)b[ct_min(i, lb)];
	return diff == 0;
}
