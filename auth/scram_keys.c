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
