/* Stored password forms, SASLprep, userlist.txt and login proofs: see
 * secret.h. */
#include "auth/secret.h"

#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <openssl/crypto.h>
#include <openssl/evp.h>
#include <openssl/rand.h>
#include <stringprep.h>

#include "auth/auth.h"
#include "auth/util.h"

#define SCRAM_PREFIX "SCRAM-SHA-256$"

static int why_fail(char *why, size_t whylen, const char *msg)
{
	snprintf(why, whylen, "%s", msg);
	return -1;
}

static bool lower_hex(const char *s, size_t n)
{
	for (size_t i = 0; i < n; i++)
		if (!((s[i] >= '0' && s[i] <= '9') || (s[i] >= 'a' && s[i] <= 'f')))
			return false;
	return true;
}

/* Decodes base64 text [p, end) of exactly want bytes (want 0: 1..cap). */
static int b64_field(const char *p, const char *end, uint8_t *out, size_t cap, size_t want)
{
	uint8_t tmp[AUTH_B64_LEN(AUTH_SCRAM_SALT_MAX)];
	int n = auth_b64_decode(p, (size_t)(end - p), tmp, sizeof(tmp));
	if (n < 1 || (size_t)n > cap || (want && (size_t)n != want))
		return -1;
	memcpy(out, tmp, (size_t)n);
	return n;
}

static int parse_verifier(const char *text, struct auth_scram_verifier *v, char *why, size_t whylen)
{
	const char *p = text + strlen(SCRAM_PREFIX);
	long iter = 0;
	if (*p < '1' || *p > '9')
		return why_fail(why, whylen,
				"malformed SCRAM-SHA-256 verifier: expected the iteration count "
				"after \"SCRAM-SHA-256$\"");
	for (; *p >= '0' && *p <= '9'; p++) {
		iter = iter * 10 + (*p - '0');
		if (iter > AUTH_SCRAM_MAX_ITERATIONS)
			return why_fail(why, whylen,
					"malformed SCRAM-SHA-256 verifier: iteration count too "
					"large");
	}
	if (*p != ':')
		return why_fail(why, whylen,
				"malformed SCRAM-SHA-256 verifier: expected ':' after the "
				"iteration count");
	const char *salt = ++p;
	const char *dollar = strchr(salt, '$');
	if (!dollar)
		return why_fail(why, whylen,
				"malformed SCRAM-SHA-256 verifier: missing '$' before "
				"StoredKey:ServerKey");
	int n = b64_field(salt, dollar, v->salt, sizeof(v->salt), 0);
	if (n < 0)
		return why_fail(why, whylen,
				"malformed SCRAM-SHA-256 verifier: the salt is not "
				"base64 of 1 to 64 bytes");
	v->salt_len = (size_t)n;
	v->iterations = (int)iter;
	const char *stored = dollar + 1;
	const char *colon = strchr(stored, ':');
	if (!colon)
		return why_fail(why, whylen,
				"malformed SCRAM-SHA-256 verifier: missing ':' between "
				"StoredKey and ServerKey");
	if (b64_field(stored, colon, v->stored_key, AUTH_KEY_LEN, AUTH_KEY_LEN) < 0)
		return why_fail(why, whylen,
				"malformed SCRAM-SHA-256 verifier: StoredKey is not "
				"base64 of 32 bytes");
	const char *server = colon + 1;
	if (b64_field(server, server + strlen(server), v->server_key, AUTH_KEY_LEN, AUTH_KEY_LEN)
	    < 0)
		return why_fail(why, whylen,
				"malformed SCRAM-SHA-256 verifier: ServerKey is not "
				"base64 of 32 bytes");
	return 0;
}

int auth_secret_parse(const char *text, struct auth_secret *out, char *why, size_t whylen)
{
	memset(out, 0, sizeof(*out));
	size_t len = strlen(text);
	if (len > AUTH_PASSWORD_MAX)
		return why_fail(why, whylen, "is longer than 1024 bytes");
	if (strncmp(text, SCRAM_PREFIX, strlen(SCRAM_PREFIX)) == 0) {
		if (parse_verifier(text, &out->scram, why, whylen) != 0) {
			OPENSSL_cleanse(out, sizeof(*out));
			return -1;
		}
		out->kind = AUTH_SECRET_SCRAM;
		out->has_scram = true;
		return 0;
	}
	if (len == 35 && strncmp(text, "md5", 3) == 0) {
		if (!lower_hex(text + 3, 32))
			return why_fail(why, whylen,
					"malformed md5 hash: \"md5\" must be followed by 32 "
					"lower-case hex digits");
		out->kind = AUTH_SECRET_MD5;
		memcpy(out->md5, text, 36);
		return 0;
	}
	out->kind = AUTH_SECRET_CLEARTEXT;
	return 0;
}

int auth_scram_derive(const char *password, struct auth_scram_verifier *v, uint8_t *client_key)
{
	char prepped[AUTH_PASSWORD_MAX + 1];
	uint8_t salted[AUTH_KEY_LEN], ck[AUTH_KEY_LEN];
	int rc = -1;
	if (auth_saslprep(password, prepped, sizeof(prepped)) != 0)
		goto out;
	if (PKCS5_PBKDF2_HMAC(prepped, (int)strlen(prepped), v->salt, (int)v->salt_len,
			      v->iterations, EVP_sha256(), AUTH_KEY_LEN, salted)
		    != 1
	    || auth_hmac256(salted, AUTH_KEY_LEN, "Client Key", 10, ck) != 0
	    || auth_sha256(ck, AUTH_KEY_LEN, v->stored_key) != 0
	    || auth_hmac256(salted, AUTH_KEY_LEN, "Server Key", 10, v->server_key) != 0)
		goto out;
	if (client_key)
		memcpy(client_key, ck, AUTH_KEY_LEN);
	rc = 0;
out:
	OPENSSL_cleanse(prepped, sizeof(prepped));
	OPENSSL_cleanse(salted, sizeof(salted));
	OPENSSL_cleanse(ck, sizeof(ck));
	return rc;
}

int auth_salt_for(const uint8_t key[AUTH_KEY_LEN], const char *user, uint8_t out[AUTH_KEY_LEN])
{
	return auth_hmac256(key, AUTH_KEY_LEN, user, strlen(user), out);
}

void auth_key_mix(uint8_t key[AUTH_KEY_LEN], const void *data, size_t len)
{
	EVP_MD_CTX *ctx = EVP_MD_CTX_new();
	unsigned int olen = 0;
	uint8_t next[AUTH_KEY_LEN];
	/* on a libcrypto failure the key stays as it was: still secret material */
	if (ctx && EVP_DigestInit_ex(ctx, EVP_sha256(), NULL) == 1
	    && EVP_DigestUpdate(ctx, key, AUTH_KEY_LEN) == 1
	    && EVP_DigestUpdate(ctx, data, len) == 1 && EVP_DigestFinal_ex(ctx, next, &olen) == 1
	    && olen == AUTH_KEY_LEN)
		memcpy(key, next, AUTH_KEY_LEN);
	EVP_MD_CTX_free(ctx);
	OPENSSL_cleanse(next, sizeof(next));
}

int auth_secret_add_verifier(struct auth_secret *s, const char *cleartext, const uint8_t *key,
			     const char *user)
{
	struct auth_scram_verifier *v = &s->scram;
	uint8_t salt[AUTH_KEY_LEN];
	v->iterations = AUTH_SCRAM_DEFAULT_ITERATIONS;
	v->salt_len = AUTH_SCRAM_SALT_LEN;
	int rc = key                                         ? auth_salt_for(key, user, salt)
		: RAND_bytes(salt, AUTH_SCRAM_SALT_LEN) == 1 ? 0
							     : -1;
	memcpy(v->salt, salt, AUTH_SCRAM_SALT_LEN);
	OPENSSL_cleanse(salt, sizeof(salt));
	if (rc != 0 || auth_scram_derive(cleartext, v, NULL) != 0)
		return -1;
	s->has_scram = true;
	return 0;
}

bool auth_plain_check(const struct auth_secret *s, const char *stored_cleartext, const char *user,
		      const char *given)
{
	switch (s->kind) {
	case AUTH_SECRET_CLEARTEXT:
		return auth_secret_equal(given, stored_cleartext);
	case AUTH_SECRET_MD5: {
		char hash[36];
		auth_md5_hash(user, given, hash);
		bool ok = auth_secret_equal(hash, s->md5);
		OPENSSL_cleanse(hash, sizeof(hash));
		return ok;
	}
	case AUTH_SECRET_SCRAM: {
		struct auth_scram_verifier v = s->scram;
		bool ok = auth_scram_derive(given, &v, NULL) == 0
			&& CRYPTO_memcmp(v.stored_key, s->scram.stored_key, AUTH_KEY_LEN) == 0
			&& CRYPTO_memcmp(v.server_key, s->scram.server_key, AUTH_KEY_LEN) == 0;
		OPENSSL_cleanse(&v, sizeof(v));
		return ok;
	}
	}
	return false;
}

/* ---- SASLprep ---------------------------------------------------------- */

/* Well-formed UTF-8 (shortest forms, no surrogates, at most U+10FFFF). */
static bool utf8_valid(const unsigned char *s)
{
	while (*s) {
		unsigned c = *s;
		int n = c < 0x80             ? 0
			: (c & 0xe0) == 0xc0 ? 1
			: (c & 0xf0) == 0xe0 ? 2
			: (c & 0xf8) == 0xf0 ? 3
					     : -1;
		if (n < 0)
			return false;
		unsigned cp = n == 0 ? c : n == 1 ? (c & 0x1f) : n == 2 ? (c & 0x0f) : (c & 0x07);
		for (int i = 1; i <= n; i++) {
			if ((s[i] & 0xc0) != 0x80)
				return false;
			cp = (cp << 6) | (s[i] & 0x3f);
		}
		if ((n == 1 && cp < 0x80) || (n == 2 && cp < 0x800) || (n == 3 && cp < 0x10000)
		    || cp > 0x10ffff || (cp >= 0xd800 && cp <= 0xdfff))
			return false;
		s += n + 1;
	}
	return true;
}

static bool ascii_only(const char *s)
{
	for (; *s; s++)
		if ((unsigned char)*s >= 0x80)
			return false;
	return true;
}

int auth_saslprep(const char *in, char *out, size_t cap)
{
	size_t len = strlen(in);
	const char *use = in;
	char *prepped = NULL;
	/* PostgreSQL keeps ASCII as is (not even control characters are
	 * refused) and falls back to the raw bytes whenever SASLprep fails;
	 * it refuses unassigned code points, hence STRINGPREP_NO_UNASSIGNED */
	if (!ascii_only(in) && utf8_valid((const unsigned char *)in)
	    && stringprep_profile(in, &prepped, "SASLprep", STRINGPREP_NO_UNASSIGNED)
		    == STRINGPREP_OK
	    && prepped && prepped[0])
		use = prepped;
	len = strlen(use);
	int rc = -1;
	if (len < cap) {
		memcpy(out, use, len + 1);
		rc = 0;
	}
	if (prepped) {
		OPENSSL_cleanse(prepped, strlen(prepped));
		free(prepped);
	}
	return rc;
}

/* ---- userlist.txt ------------------------------------------------------ */

/* Reads a quoted field at *p (before end) into out; advances past it. */
static int quoted_field(const char **p, const char *end, char *out, size_t cap)
{
	const char *s = *p;
	size_t n = 0;
	if (s >= end || *s != '"')
		return -1;
	for (s++;; s++) {
		if (s >= end)
			return -1; /* unterminated */
		if (*s == '"') {
			if (s + 1 < end && s[1] == '"') {
				s++;
			} else {
				*p = s + 1;
				out[n] = '\0';
				return 0;
			}
		} else if (*s == '\0') {
			return -1;
		}
		if (n + 1 >= cap)
			return -1;
		out[n++] = *s;
	}
}

int auth_userlist_parse(const char *text, size_t len, auth_userlist_fn add, void *arg,
			int *bad_line, char *why, size_t whylen)
{
	char user[256], password[AUTH_PASSWORD_MAX + 1];
	const char *p = text, *end = text + len;
	int line = 0, rc = 0;
	while (p < end && rc == 0) {
		const char *eol = memchr(p, '\n', (size_t)(end - p));
		if (!eol)
			eol = end;
		line++;
		const char *s = p;
		while (s < eol && (*s == ' ' || *s == '\t' || *s == '\r'))
			s++;
		p = eol + 1;
		if (s == eol || *s == ';' || *s == '#')
			continue;
		if (quoted_field(&s, eol, user, sizeof(user)) != 0 || !user[0]) {
			*bad_line = line;
			rc = why_fail(
				why, whylen,
				"expected a user name in double quotes (\"name\" \"password\")");
			break;
		}
		while (s < eol && (*s == ' ' || *s == '\t'))
			s++;
		if (quoted_field(&s, eol, password, sizeof(password)) != 0) {
			*bad_line = line;
			rc = why_fail(why, whylen,
				      "expected the password in double quotes after the user name "
				      "(at most 1024 bytes)");
			break;
		}
		rc = add(arg, user, password, why, whylen);
		if (rc != 0)
			*bad_line = line;
	}
	OPENSSL_cleanse(password, sizeof(password));
	return rc == 0 ? 0 : -1;
}
