/* SCRAM-SHA-256 from keys (RFC 5802 section 3): the client's proof is
 * ClientKey XOR HMAC(StoredKey, AuthMessage) with StoredKey = H(ClientKey),
 * so whoever holds ClientKey can log in without the password; the server's
 * signature HMAC(ServerKey, AuthMessage) is checked with ServerKey.
 *
 * The salt and count the server sends are compared as text with the base64
 * of the keys' own: the keys are only good for those, and a server that
 * sends others holds another password. */
#include "auth/scram_keys.h"

#include "auth/auth.h"
#include "auth/proof.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <openssl/crypto.h>
#include <openssl/evp.h>
#include <openssl/hmac.h>
#include <openssl/rand.h>

#define KEY AUTH_SCRAM_KEY_LEN

static int hmac(const uint8_t key[KEY], const void *data, size_t len, uint8_t out[KEY])
{
	unsigned int n = 0;
	return HMAC(EVP_sha256(), key, KEY, data, len, out, &n) && n == KEY ? 0 : -1;
}

/* Decodes exactly one base64 field of want bytes at most; returns its
 * length or -1 (bad alphabet, bad padding, too long). */
static int unbase64(const char *in, size_t len, uint8_t *out, size_t want)
{
	uint8_t tmp[3 * 64];
	if (len == 0 || len % 4 || len / 4 * 3 > sizeof(tmp))
		return -1;
	size_t pad = in[len - 1] == '=' ? (in[len - 2] == '=' ? 2 : 1) : 0;
	static const char alphabet[] =
		"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";
	for (size_t i = 0; i < len - pad; i++)
		if (!in[i] || !strchr(alphabet, in[i]))
			return -1;
	int n = EVP_DecodeBlock(tmp, (const unsigned char *)in, (int)len);
	if (n < 0 || (size_t)n - pad > want)
		return -1;
	n -= (int)pad;
	memcpy(out, tmp, (size_t)n);
	OPENSSL_cleanse(tmp, sizeof(tmp));
	return n;
}

int auth_scram_parse_verifier(const char *text, struct auth_scram_verifier *v)
{
	static const char prefix[] = "SCRAM-SHA-256$";
	memset(v, 0, sizeof(*v));
	if (!text || strncmp(text, prefix, sizeof(prefix) - 1) != 0)
		return -1;
	const char *p = text + sizeof(prefix) - 1;
	char *end;
	long it = strtol(p, &end, 10);
	if (end == p || *end != ':' || it < 1 || it > AUTH_SCRAM_MAX_ITERATIONS)
		return -1;
	v->iterations = (int)it;
	const char *salt = end + 1, *dollar = strchr(salt, '$');
	const char *colon = dollar ? strchr(dollar, ':') : NULL;
	if (!colon)
		return -1;
	int n = unbase64(salt, (size_t)(dollar - salt), v->salt, sizeof(v->salt));
	if (n < 1)
		return -1;
	v->salt_len = (size_t)n;
	if (unbase64(dollar + 1, (size_t)(colon - dollar - 1), v->stored_key, KEY) != KEY
	    || unbase64(colon + 1, strlen(colon + 1), v->server_key, KEY) != KEY) {
		OPENSSL_cleanse(v, sizeof(*v));
		return -1;
	}
	return 0;
}

int auth_scram_keys_from_password(const char *password, const uint8_t *salt, size_t salt_len,
				  int iterations, uint8_t client_key[KEY], uint8_t stored_key[KEY],
				  uint8_t server_key[KEY])
{
	uint8_t salted[KEY], ck[KEY];
	unsigned int n = 0;
	int rc = -1;
	if (PKCS5_PBKDF2_HMAC(password, (int)strlen(password), salt, (int)salt_len, iterations,
			      EVP_sha256(), KEY, salted)
		    != 1
	    || hmac(salted, "Client Key", 10, ck) != 0)
		goto out;
	if (client_key)
		memcpy(client_key, ck, KEY);
	if (stored_key
	    && (EVP_Digest(ck, KEY, stored_key, &n, EVP_sha256(), NULL) != 1 || n != KEY))
		goto out;
	if (server_key && hmac(salted, "Server Key", 10, server_key) != 0)
		goto out;
	rc = 0;
out:
	OPENSSL_cleanse(salted, sizeof(salted));
	OPENSSL_cleanse(ck, sizeof(ck));
	return rc;
}

bool auth_scram_verifier_matches(const struct auth_scram_verifier *v, const char *password)
{
	uint8_t stored[KEY], server[KEY];
	bool ok = auth_scram_keys_from_password(password, v->salt, v->salt_len, v->iterations, NULL,
						stored, server)
			== 0
		&& (CRYPTO_memcmp(stored, v->stored_key, KEY)
		    | CRYPTO_memcmp(server, v->server_key, KEY))
			== 0;
	OPENSSL_cleanse(stored, sizeof(stored));
	OPENSSL_cleanse(server, sizeof(server));
	return ok;
}

bool auth_password_matches_verifier(const char *verifier, const char *user, const char *password)
{
	struct auth_scram_verifier v;
	if (strncmp(verifier, "SCRAM-SHA-256$", 14) == 0) {
		bool ok = auth_scram_parse_verifier(verifier, &v) == 0
			&& auth_scram_verifier_matches(&v, password);
		OPENSSL_cleanse(&v, sizeof(v));
		return ok;
	}
	char md5[36];
	if (strlen(verifier) == 35 && strncmp(verifier, "md5", 3) == 0) {
		auth_md5_hash(user, password, md5);
		bool ok = md5[0] && auth_secret_equal(md5, verifier);
		OPENSSL_cleanse(md5, sizeof(md5));
		return ok;
	}
	return auth_secret_equal(password, verifier);
}

static int keys_fail(struct auth_scram_keys *s)
{
	OPENSSL_cleanse(s, sizeof(*s));
	s->state = AUTH_SCRAM_FAILED;
	return -1;
}

int auth_scram_client_init_keys(struct auth_scram_keys *s, const uint8_t client_key[32],
				const uint8_t server_key[32], const uint8_t *salt, size_t salt_len,
				int iterations, const char *nonce)
{
	memset(s, 0, sizeof(*s));
	if (!client_key || !server_key || !salt || salt_len < 1 || salt_len > AUTH_SCRAM_SALT_MAX
	    || iterations < 1)
		return keys_fail(s);
	memcpy(s->client_key, client_key, KEY);
	memcpy(s->server_key, server_key, KEY);
	EVP_EncodeBlock((unsigned char *)s->salt_b64, salt, (int)salt_len);
	s->iterations = iterations;
	if (nonce) {
		if (!*nonce || strlen(nonce) >= sizeof(s->client_nonce) || strchr(nonce, ','))
			return keys_fail(s);
		strcpy(s->client_nonce, nonce);
	} else {
		uint8_t raw[AUTH_SCRAM_NONCE_LEN];
		if (RAND_bytes(raw, sizeof(raw)) != 1)
			return keys_fail(s);
		EVP_EncodeBlock((unsigned char *)s->client_nonce, raw, sizeof(raw));
	}
	/* an empty name, as libpq sends: PostgreSQL takes the startup user */
	snprintf(s->client_first_bare, sizeof(s->client_first_bare), "n=,r=%s", s->client_nonce);
	s->state = AUTH_SCRAM_INIT;
	return 0;
}

int auth_scram_keys_first(struct auth_scram_keys *s, char *out, size_t cap)
{
	if (s->state != AUTH_SCRAM_INIT)
		return keys_fail(s);
	int n = snprintf(out, cap, "n,,%s", s->client_first_bare);
	if (n < 0 || (size_t)n >= cap)
		return keys_fail(s);
	s->state = AUTH_SCRAM_SENT_FIRST;
	return n;
}

static bool am_add(struct auth_scram_keys *s, const char *p, size_t n)
{
	if (n >= sizeof(s->auth_message) - s->auth_message_len)
		return false;
	memcpy(s->auth_message + s->auth_message_len, p, n);
	s->auth_message_len += n;
	return true;
}

int auth_scram_keys_final(struct auth_scram_keys *s, const char *server_first, size_t len,
			  char *out, size_t cap, char *why, size_t whylen)
{
	snprintf(why, whylen, "malformed SCRAM server-first-message");
	if (s->state != AUTH_SCRAM_SENT_FIRST || len > AUTH_SCRAM_MAX_MSG || len < 2)
		return keys_fail(s);
	/* r=<our nonce + more>,s=<salt>,i=<count>, nothing else */
	const char *end = server_first + len;
	const char *r = server_first, *sp = memchr(r, ',', len);
	const char *ip = sp ? memchr(sp + 1, ',', (size_t)(end - sp - 1)) : NULL;
	size_t cn = strlen(s->client_nonce);
	if (!ip || ip - sp < 3 || end - ip < 3 || sp - r < 2 || memcmp(r, "r=", 2) != 0
	    || (size_t)(sp - r - 2) <= cn || memcmp(r + 2, s->client_nonce, cn) != 0
	    || strncmp(sp + 1, "s=", 2) != 0 || strncmp(ip + 1, "i=", 2) != 0
	    || memchr(ip + 1, ',', (size_t)(end - ip - 1)))
		return keys_fail(s);
	for (const char *q = r + 2; q < sp; q++)
		if (*q < 0x21 || *q > 0x7e)
			return keys_fail(s);
	char count[16];
	snprintf(count, sizeof(count), "%d", s->iterations);
	size_t slen = (size_t)(ip - sp - 3), ilen = (size_t)(end - ip - 3);
	if (slen != strlen(s->salt_b64) || memcmp(sp + 3, s->salt_b64, slen) != 0
	    || ilen != strlen(count) || memcmp(ip + 3, count, ilen) != 0) {
		snprintf(why, whylen,
			 "the server's SCRAM salt or iteration count is not the one the client "
			 "proved its password with (has the role's password changed?)");
		return keys_fail(s);
	}
	size_t nonce_len = (size_t)(sp - r - 2);
	int head = snprintf(out, cap, "c=biws,r=%.*s", (int)nonce_len, r + 2);
	if (head < 0 || (size_t)head + 3 + 45 > cap)
		return keys_fail(s);
	s->auth_message_len = 0;
	if (!am_add(s, s->client_first_bare, strlen(s->client_first_bare)) || !am_add(s, ",", 1)
	    || !am_add(s, server_first, len) || !am_add(s, ",", 1) || !am_add(s, out, (size_t)head))
		return keys_fail(s);
	uint8_t stored[KEY], sig[KEY], proof[KEY];
	unsigned int n = 0;
	int rc = -1;
	if (EVP_Digest(s->client_key, KEY, stored, &n, EVP_sha256(), NULL) != 1 || n != KEY
	    || hmac(stored, s->auth_message, s->auth_message_len, sig) != 0)
		goto out;
	for (int i = 0; i < KEY; i++)
		proof[i] = s->client_key[i] ^ sig[i];
	memcpy(out + head, ",p=", 3);
	rc = head + 3 + EVP_EncodeBlock((unsigned char *)out + head + 3, proof, KEY);
	s->state = AUTH_SCRAM_SENT_FINAL;
	why[0] = '\0';
out:
	OPENSSL_cleanse(stored, sizeof(stored));
	OPENSSL_cleanse(sig, sizeof(sig));
	OPENSSL_cleanse(proof, sizeof(proof));
	return rc < 0 ? keys_fail(s) : rc;
}

int auth_scram_keys_verify(struct auth_scram_keys *s, const char *server_final, size_t len)
{
	uint8_t sig[KEY];
	char want[48];
	if (s->state != AUTH_SCRAM_SENT_FINAL || len < 2 || memcmp(server_final, "v=", 2) != 0
	    || hmac(s->server_key, s->auth_message, s->auth_message_len, sig) != 0)
		return keys_fail(s);
	int n = EVP_EncodeBlock((unsigned char *)want, sig, KEY);
	bool ok = (size_t)n == len - 2 && CRYPTO_memcmp(want, server_final + 2, (size_t)n) == 0;
	OPENSSL_cleanse(sig, sizeof(sig));
	OPENSSL_cleanse(want, sizeof(want));
	OPENSSL_cleanse(s, sizeof(*s));
	s->state = ok ? AUTH_SCRAM_DONE : AUTH_SCRAM_FAILED;
	return ok ? 0 : -1;
}
