/* auth/auth.c: md5 responses, the SCRAM-SHA-256 client against the RFC 7677
 * vector and an empty-name variant, and a strict server-first parser fed
 * hostile input. Server messages are copied into exact-size heap buffers
 * (no NUL after them) so a sanitizer build catches any over-read. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "auth/auth.h"

#define RFC_NONCE            "rOprNGfwEbeRWgbNEkqO"
#define RFC_SNONCE           RFC_NONCE "%hvYDpWUa2RaTCAfuxFIlj)hNlF$k0"
#define RFC_SALT             "W22ZaJ0SNY7soEsUEjb6gQ=="
#define RFC_SERVER_FIRST     "r=" RFC_SNONCE ",s=" RFC_SALT ",i=4096"
#define RFC_CLIENT_FINAL     "c=biws,r=" RFC_SNONCE ",p=dHzbZapWIk4jUhN+Ute9ytag9zjfMHgsqmmiz7AndVQ="
/* RFC 7677 section 3 prints this server-final; recomputing it with Python's
 * hashlib/hmac gives the same. (A value circulating with the same first 16
 * characters, "v=6rriTRBi23WpRR/wcVinwNh...", is wrong; it is checked to be
 * refused below.) */
#define RFC_SERVER_FINAL     "v=6rriTRBi23WpRR/wtup+mMhUZUn/dB5nLTJRsjl95G4="
#define NOT_RFC_SERVER_FINAL "v=6rriTRBi23WpRR/wcVinwNhFlwv6g6+fqPqhzVKoOTI="

/* The same exchange with the empty name PgCrab sends ("n=,r=..."). Computed
 * independently with Python's hashlib/hmac/base64:
 *   sp = hashlib.pbkdf2_hmac("sha256", b"pencil", b64decode(RFC_SALT), 4096)
 *   ck = hmac(sp, b"Client Key"); sk = sha256(ck)
 *   am = "n=,r=" + RFC_NONCE + "," + RFC_SERVER_FIRST + ",c=biws,r=" + RFC_SNONCE
 *   p  = b64encode(ck XOR hmac(sk, am))
 *   v  = b64encode(hmac(hmac(sp, b"Server Key"), am)) */
#define EMPTY_CLIENT_FINAL "c=biws,r=" RFC_SNONCE ",p=qvT2SWdEH5Q06albL+hjSYuUhCG7VndFyzIb7CK4n9k="
#define EMPTY_SERVER_FINAL "v=3HO6Qt1M4MKJrmlKaoOqLAI0/0TV0HZe7J9H3MBtSOg="

static struct auth_scram_client sc;
static char out[AUTH_SCRAM_MAX_MSG];

/* Heap copy of exactly len bytes, no terminator. */
static char *exact(const char *msg, size_t len)
{
	char *p = malloc(len ? len : 1);
	assert_non_null(p);
	memcpy(p, msg, len);
	return p;
}

static int final_n(const char *msg, size_t len)
{
	char *p = exact(msg, len);
	int n = auth_scram_client_final(&sc, p, len, out, sizeof(out));
	free(p);
	return n;
}

static int final_s(const char *msg)
{
	return final_n(msg, strlen(msg));
}

static int verify_s(const char *msg)
{
	size_t len = strlen(msg);
	char *p = exact(msg, len);
	int rc = auth_scram_client_verify(&sc, p, len);
	free(p);
	return rc;
}

static bool all_zero(const void *p, size_t n)
{
	const uint8_t *b = p;
	for (size_t i = 0; i < n; i++)
		if (b[i])
			return false;
	return true;
}

static void assert_wiped_failed(void)
{
	assert_int_equal(sc.state, AUTH_SCRAM_FAILED);
	assert_true(all_zero(sc.password, sizeof(sc.password)));
	assert_true(all_zero(sc.salted_password, sizeof(sc.salted_password)));
}

/* Starts the RFC exchange with the empty name and sends client-first. */
static void start(void)
{
	assert_int_equal(auth_scram_client_init(&sc, "pencil", RFC_NONCE), 0);
	assert_int_equal(auth_scram_client_first(&sc, out, sizeof(out)),
			 (int)strlen("n,,n=,r=" RFC_NONCE));
}

/* A server-first that must be refused. */
static void refuse(const char *msg)
{
	start();
	if (final_s(msg) != -1)
		fail_msg("accepted server-first \"%s\"", msg);
	assert_wiped_failed();
	assert_string_equal(out, "");
}

static void accept_first(const char *msg)
{
	start();
	if (final_s(msg) < 0)
		fail_msg("refused server-first \"%s\"", msg);
	assert_int_equal(sc.state, AUTH_SCRAM_SENT_FINAL);
}

/* ---- md5 ---- */

static void md5_known_value(void **state)
{
	(void)state;
	char md5[36];
	/* python3 -c 'import hashlib; u=b"postgres"; p=b"secret";
	 *   s=bytes([0x93,0x00,0xff,0x2a]); i=hashlib.md5(p+u).hexdigest().encode();
	 *   print("md5"+hashlib.md5(i+s).hexdigest())'
	 * The salt holds a NUL and high bytes on purpose. */
	const uint8_t salt[4] = { 0x93, 0x00, 0xff, 0x2a };
	memset(md5, 'x', sizeof(md5));
	auth_md5_response("postgres", "secret", salt, md5);
	assert_string_equal(md5, "md53c1cbea4ce3efe84eff1611cd3689226");

	/* same script with u=b"", p=b"", s=bytes(4) */
	const uint8_t zero[4] = { 0 };
	auth_md5_response("", "", zero, md5);
	assert_string_equal(md5, "md591b86670dcd47857d222fa05653500aa");
}

/* ---- SCRAM happy paths ---- */

static void scram_rfc7677_vector(void **state)
{
	(void)state;
	assert_int_equal(auth_scram_client_init_user(&sc, "user", "pencil", RFC_NONCE), 0);
	assert_int_equal(sc.state, AUTH_SCRAM_INIT);
	int n = auth_scram_client_first(&sc, out, sizeof(out));
	assert_string_equal(out, "n,,n=user,r=" RFC_NONCE);
	assert_int_equal(n, (int)strlen(out));
	assert_int_equal(sc.state, AUTH_SCRAM_SENT_FIRST);

	n = final_s(RFC_SERVER_FIRST);
	assert_string_equal(out, RFC_CLIENT_FINAL);
	assert_int_equal(n, (int)strlen(RFC_CLIENT_FINAL));
	assert_int_equal(sc.state, AUTH_SCRAM_SENT_FINAL);
	assert_string_equal(sc.auth_message,
			    "n=user,r=" RFC_NONCE "," RFC_SERVER_FIRST ",c=biws,r=" RFC_SNONCE);
	assert_int_equal(sc.auth_message_len, strlen(sc.auth_message));
	assert_true(all_zero(sc.password, sizeof(sc.password))); /* done with it */

	assert_int_equal(verify_s(RFC_SERVER_FINAL), 0);
	assert_int_equal(sc.state, AUTH_SCRAM_DONE);
	assert_true(all_zero(sc.salted_password, sizeof(sc.salted_password)));
	assert_true(all_zero(sc.auth_message, sizeof(sc.auth_message)));

	/* the same exchange with a wrong signature */
	assert_int_equal(auth_scram_client_init_user(&sc, "user", "pencil", RFC_NONCE), 0);
	assert_true(auth_scram_client_first(&sc, out, sizeof(out)) > 0);
	assert_true(final_s(RFC_SERVER_FIRST) > 0);
	assert_int_equal(verify_s(NOT_RFC_SERVER_FINAL), -1);
	assert_wiped_failed();
}

/* A pool's SaltedPassword cache: the first exchange fills it, the next
 * with the same password, salt and count takes it (no PBKDF2), and one
 * with another password or salt does not. */
static void scram_salted_cache(void **state)
{
	(void)state;
	struct auth_scram_salted_cache cache = { 0 };
	/* fills it, and the RFC answer is unchanged */
	assert_int_equal(auth_scram_client_init_user(&sc, "user", "pencil", RFC_NONCE), 0);
	sc.cache = &cache;
	assert_true(auth_scram_client_first(&sc, out, sizeof(out)) > 0);
	assert_true(final_s(RFC_SERVER_FIRST) > 0);
	assert_string_equal(out, RFC_CLIENT_FINAL);
	assert_true(cache.valid);
	assert_int_equal(cache.iterations, 4096);
	assert_int_equal(verify_s(RFC_SERVER_FINAL), 0);

	/* taken: a SaltedPassword planted in it changes the proof */
	cache.salted_password[0] ^= 1;
	assert_int_equal(auth_scram_client_init_user(&sc, "user", "pencil", RFC_NONCE), 0);
	sc.cache = &cache;
	assert_true(auth_scram_client_first(&sc, out, sizeof(out)) > 0);
	assert_true(final_s(RFC_SERVER_FIRST) > 0);
	assert_string_not_equal(out, RFC_CLIENT_FINAL);
	cache.salted_password[0] ^= 1;

	/* another password: PBKDF2 again, and the cache follows it */
	uint8_t mac[32];
	memcpy(mac, cache.password_mac, sizeof(mac));
	assert_int_equal(auth_scram_client_init_user(&sc, "user", "pencil2", RFC_NONCE), 0);
	sc.cache = &cache;
	assert_true(auth_scram_client_first(&sc, out, sizeof(out)) > 0);
	assert_true(final_s(RFC_SERVER_FIRST) > 0);
	assert_string_not_equal(out, RFC_CLIENT_FINAL);
	assert_memory_not_equal(mac, cache.password_mac, sizeof(mac));

	/* the right password again, another count: not taken */
	assert_int_equal(auth_scram_client_init_user(&sc, "user", "pencil", RFC_NONCE), 0);
	sc.cache = &cache;
	assert_true(auth_scram_client_first(&sc, out, sizeof(out)) > 0);
	assert_true(final_s("r=" RFC_SNONCE ",s=" RFC_SALT ",i=4097") > 0);
	assert_int_equal(cache.iterations, 4097);
}

static void scram_empty_name(void **state)
{
	(void)state;
	start();
	/* client_first wrote exactly what PostgreSQL expects from libpq */
	assert_int_equal(final_s(RFC_SERVER_FIRST), (int)strlen(EMPTY_CLIENT_FINAL));
	assert_string_equal(out, EMPTY_CLIENT_FINAL);
	assert_int_equal(verify_s(EMPTY_SERVER_FINAL), 0);
	assert_int_equal(sc.state, AUTH_SCRAM_DONE);

	/* the RFC's signature (computed over "n=user") must not pass here */
	start();
	assert_true(final_s(RFC_SERVER_FIRST) > 0);
	assert_int_equal(verify_s(RFC_SERVER_FINAL), -1);
	assert_wiped_failed();
}

static void scram_client_first_random_nonce(void **state)
{
	(void)state;
	char first[2][AUTH_SCRAM_MAX_MSG];
	for (int k = 0; k < 2; k++) {
		assert_int_equal(auth_scram_client_init(&sc, "pw", NULL), 0);
		int n = auth_scram_client_first(&sc, first[k], sizeof(first[k]));
		/* "n,,n=,r=" + base64 of 24 bytes (32 characters, no padding) */
		assert_int_equal(n, 8 + 32);
		assert_memory_equal(first[k], "n,,n=,r=", 8);
		for (int i = 8; i < n; i++)
			assert_non_null(
				strchr("ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz"
				       "0123456789+/",
				       first[k][i]));
		assert_string_equal(sc.client_nonce, first[k] + 8);
	}
	assert_string_not_equal(first[0], first[1]);

	/* and a server extending a random nonce is accepted */
	char sf[256];
	snprintf(sf, sizeof(sf), "r=%sXYZ,s=" RFC_SALT ",i=4096", sc.client_nonce);
	assert_true(final_s(sf) > 0);
}

static void scram_init_limits(void **state)
{
	(void)state;
	char pw[300];
	memset(pw, 'a', sizeof(pw));
	pw[255] = '\0';
	assert_int_equal(auth_scram_client_init(&sc, pw, RFC_NONCE), 0);
	pw[255] = 'a';
	pw[256] = '\0';
	assert_int_equal(auth_scram_client_init(&sc, pw, RFC_NONCE), -1);
	assert_wiped_failed();

	/* a fixed nonce must be 1..63 printable characters without ',' */
	assert_int_equal(auth_scram_client_init(&sc, "pw", ""), -1);
	assert_int_equal(auth_scram_client_init(&sc, "pw", "abc,def"), -1);
	assert_int_equal(auth_scram_client_init(&sc, "pw", "abc def"), -1);
	assert_int_equal(auth_scram_client_init(&sc, "pw", "abc\x7f"), -1);
	assert_int_equal(auth_scram_client_init(&sc, "pw", "abc\xc3\xa9"), -1);
	char nonce[70];
	memset(nonce, 'n', sizeof(nonce));
	nonce[64] = '\0';
	assert_int_equal(auth_scram_client_init(&sc, "pw", nonce), -1);
	nonce[63] = '\0';
	assert_int_equal(auth_scram_client_init(&sc, "pw", nonce), 0);

	/* an empty password is allowed (the server decides) */
	assert_int_equal(auth_scram_client_init(&sc, "", RFC_NONCE), 0);
	assert_int_equal(auth_scram_client_first(&sc, out, sizeof(out)), 8 + 20);
	assert_true(final_s(RFC_SERVER_FIRST) > 0);
}

static void scram_user_escaping(void **state)
{
	(void)state;
	assert_int_equal(auth_scram_client_init_user(&sc, "a,b=c", "pw", "N"), 0);
	assert_int_equal(auth_scram_client_first(&sc, out, sizeof(out)), 18);
	assert_string_equal(out, "n,,n=a=2Cb=3Dc,r=N");

	/* a name too long for client_first_bare is refused, not truncated */
	char user[200];
	memset(user, 'u', sizeof(user));
	user[199] = '\0';
	assert_int_equal(auth_scram_client_init_user(&sc, user, "pw", "N"), -1);
	assert_wiped_failed();
}

static void scram_small_caps(void **state)
{
	(void)state;
	char small[64];
	assert_int_equal(auth_scram_client_init(&sc, "pencil", RFC_NONCE), 0);
	/* "n,,n=,r=" + 20 = 28 characters, plus NUL */
	assert_int_equal(auth_scram_client_first(&sc, small, 28), -1);
	assert_wiped_failed();
	assert_int_equal(auth_scram_client_init(&sc, "pencil", RFC_NONCE), 0);
	assert_int_equal(auth_scram_client_first(&sc, small, 29), 28);

	/* client-final of the RFC exchange is 109 characters */
	size_t need = strlen(EMPTY_CLIENT_FINAL);
	char *sf = exact(RFC_SERVER_FIRST, strlen(RFC_SERVER_FIRST));
	char *buf = malloc(need + 1);
	assert_non_null(buf);
	assert_int_equal(auth_scram_client_final(&sc, sf, strlen(RFC_SERVER_FIRST), buf, need), -1);
	assert_wiped_failed();
	start();
	assert_int_equal(auth_scram_client_final(&sc, sf, strlen(RFC_SERVER_FIRST), buf, need + 1),
			 (int)need);
	assert_string_equal(buf, EMPTY_CLIENT_FINAL);
	free(buf);
	free(sf);
}

/* ---- hostile server-first messages ---- */

static void scram_nonce_must_extend_ours(void **state)
{
	(void)state;
	refuse("r=" RFC_NONCE ",s=" RFC_SALT ",i=4096");           /* not longer */
	refuse("r=rOprNGfwEbeRWgbNEkq,s=" RFC_SALT ",i=4096");     /* shorter */
	refuse("r=XOprNGfwEbeRWgbNEkqOabc,s=" RFC_SALT ",i=4096"); /* other prefix */
	refuse("r=rOprNGfwEbeRWgbNEkqo123,s=" RFC_SALT ",i=4096"); /* case differs */
	refuse("r=abc" RFC_NONCE ",s=" RFC_SALT ",i=4096");        /* ours, not at start */
	refuse("r=,s=" RFC_SALT ",i=4096");
	refuse("r=" RFC_NONCE "ab cd,s=" RFC_SALT ",i=4096");    /* space */
	refuse("r=" RFC_NONCE "ab\x7f,s=" RFC_SALT ",i=4096");   /* DEL */
	refuse("r=" RFC_NONCE "\xc3\xa9,s=" RFC_SALT ",i=4096"); /* non-ASCII */
	accept_first("r=" RFC_NONCE "x,s=" RFC_SALT ",i=4096");  /* one more is enough */
}

static void scram_missing_and_unknown_attributes(void **state)
{
	(void)state;
	refuse("r=" RFC_SNONCE ",i=4096");
	refuse("r=" RFC_SNONCE ",s=" RFC_SALT);
	refuse("r=" RFC_SNONCE ",s=" RFC_SALT ",");
	refuse("r=" RFC_SNONCE);
	refuse("s=" RFC_SALT ",i=4096");
	refuse("r=" RFC_SNONCE ",i=4096,s=" RFC_SALT); /* out of order */
	refuse("s=" RFC_SALT ",r=" RFC_SNONCE ",i=4096");
	refuse("m=ext,r=" RFC_SNONCE ",s=" RFC_SALT ",i=4096"); /* reserved-mext */
	refuse(RFC_SERVER_FIRST ",x=ext");                      /* extension */
	refuse(RFC_SERVER_FIRST ",");
	refuse("r=" RFC_SNONCE ",s=" RFC_SALT ",x=1,i=4096");
	refuse("r=" RFC_SNONCE ",,s=" RFC_SALT ",i=4096");
	refuse("r=" RFC_SNONCE ",s=" RFC_SALT ",i=4096,i=4096");
	refuse("R=" RFC_SNONCE ",s=" RFC_SALT ",i=4096");
	refuse("r" RFC_SNONCE ",s=" RFC_SALT ",i=4096");
	refuse(" " RFC_SERVER_FIRST);
	refuse(RFC_SERVER_FIRST " ");
	refuse(RFC_SERVER_FIRST "\n");
	refuse("e=other-error");
	refuse("");
}

static void scram_bad_salt(void **state)
{
	(void)state;
	refuse("r=" RFC_SNONCE ",s=,i=4096");                          /* empty */
	refuse("r=" RFC_SNONCE ",s=W22ZaJ0SNY7soEsUEjb6gQ=,i=4096");   /* length 23 */
	refuse("r=" RFC_SNONCE ",s=W22ZaJ0SNY7soEsUEjb6gQ,i=4096");    /* unpadded */
	refuse("r=" RFC_SNONCE ",s=W22ZaJ0SNY7soEsUEjb6g!==,i=4096");  /* bad char */
	refuse("r=" RFC_SNONCE ",s=W22ZaJ0SNY7s EsUEjb6gQ==,i=4096");  /* space */
	refuse("r=" RFC_SNONCE ",s=W22ZaJ0SNY7s\nEsUEjb6gQ==,i=4096"); /* newline */
	refuse("r=" RFC_SNONCE ",s=W22ZaJ0S=Y7soEsUEjb6gQ==,i=4096");  /* '=' inside */
	refuse("r=" RFC_SNONCE ",s=W22ZaJ0SNY7soEsUEjb6g===,i=4096");  /* three pads */
	refuse("r=" RFC_SNONCE ",s=====,i=4096");
	refuse("r=" RFC_SNONCE ",s=A===,i=4096");
	refuse("r=" RFC_SNONCE ",s=-_-_,i=4096");       /* base64url */
	accept_first("r=" RFC_SNONCE ",s=QQ==,i=4096"); /* one byte */
	accept_first("r=" RFC_SNONCE ",s=QUI=,i=4096"); /* two bytes */
	accept_first("r=" RFC_SNONCE ",s=QUJD,i=4096"); /* three bytes */
}

static void scram_bad_iterations(void **state)
{
	(void)state;
	refuse("r=" RFC_SNONCE ",s=" RFC_SALT ",i=0");
	refuse("r=" RFC_SNONCE ",s=" RFC_SALT ",i=");
	refuse("r=" RFC_SNONCE ",s=" RFC_SALT ",i=-1");
	refuse("r=" RFC_SNONCE ",s=" RFC_SALT ",i=+4096");
	refuse("r=" RFC_SNONCE ",s=" RFC_SALT ",i=04096");
	refuse("r=" RFC_SNONCE ",s=" RFC_SALT ",i= 4096");
	refuse("r=" RFC_SNONCE ",s=" RFC_SALT ",i=4096 ");
	refuse("r=" RFC_SNONCE ",s=" RFC_SALT ",i=40a6");
	refuse("r=" RFC_SNONCE ",s=" RFC_SALT ",i=0x1000");
	refuse("r=" RFC_SNONCE ",s=" RFC_SALT ",i=4096.0");
	refuse("r=" RFC_SNONCE ",s=" RFC_SALT ",i=1000001");
	refuse("r=" RFC_SNONCE ",s=" RFC_SALT ",i=2147483648");
	refuse("r=" RFC_SNONCE ",s=" RFC_SALT ",i=4294967297");
	refuse("r=" RFC_SNONCE ",s=" RFC_SALT ",i=99999999999999999999999999999999999999");
	accept_first("r=" RFC_SNONCE ",s=" RFC_SALT ",i=1");
	accept_first("r=" RFC_SNONCE ",s=" RFC_SALT ",i=1000000"); /* the bound itself */
}

static void scram_embedded_nul(void **state)
{
	(void)state;
	static const char msg[] = "r=" RFC_SNONCE ",s=" RFC_SALT ",i=4096";
	size_t len = sizeof(msg) - 1;
	char *copy = exact(msg, len);
	/* a NUL in each field in turn */
	size_t at[] = { 0, 2, 10, strlen("r=" RFC_SNONCE ",s="), len - 4, len - 1 };
	for (size_t k = 0; k < sizeof(at) / sizeof(at[0]); k++) {
		memcpy(copy, msg, len);
		copy[at[k]] = '\0';
		start();
		if (auth_scram_client_final(&sc, copy, len, out, sizeof(out)) != -1)
			fail_msg("accepted a NUL at %zu", at[k]);
	}
	free(copy);
}

static void scram_oversized(void **state)
{
	(void)state;
	char *big = malloc(AUTH_SCRAM_MAX_MSG + 2);
	assert_non_null(big);
	const char *tail = ",s=" RFC_SALT ",i=4096";
	size_t tlen = strlen(tail);

	/* a server-first of exactly the limit parses, but its client-final
	 * (nonce + 56) would be longer than the limit and is refused */
	for (size_t total = AUTH_SCRAM_MAX_MSG; total <= AUTH_SCRAM_MAX_MSG + 1; total++) {
		size_t nlen = total - 2 - tlen;
		memcpy(big, "r=", 2);
		memset(big + 2, 'x', nlen);
		memcpy(big + 2, RFC_NONCE, strlen(RFC_NONCE));
		memcpy(big + 2 + nlen, tail, tlen);
		start();
		assert_int_equal(final_n(big, total), -1);
		assert_wiped_failed();
	}

	/* client-final is the nonce + 56 characters: with out[] of the limit's
	 * size (as pool/server.c passes) the longest that fits with its NUL is
	 * limit - 1; with a bigger buffer, exactly the limit is allowed too, and
	 * one more never is */
	static char roomy[AUTH_SCRAM_MAX_MSG + 64];
	for (size_t flen = AUTH_SCRAM_MAX_MSG - 1; flen <= AUTH_SCRAM_MAX_MSG + 1; flen++) {
		size_t nlen = flen - 56;
		memcpy(big, "r=", 2);
		memset(big + 2, 'x', nlen);
		memcpy(big + 2, RFC_NONCE, strlen(RFC_NONCE));
		memcpy(big + 2 + nlen, tail, tlen);
		char *sf = exact(big, 2 + nlen + tlen);
		start();
		int n = auth_scram_client_final(&sc, sf, 2 + nlen + tlen, out, sizeof(out));
		assert_int_equal(n, flen < AUTH_SCRAM_MAX_MSG ? (int)flen : -1);
		if (n > 0)
			assert_int_equal(strlen(out), flen);
		start();
		n = auth_scram_client_final(&sc, sf, 2 + nlen + tlen, roomy, sizeof(roomy));
		assert_int_equal(n, flen <= AUTH_SCRAM_MAX_MSG ? (int)flen : -1);
		if (n > 0) {
			assert_int_equal(strlen(roomy), flen);
			assert_memory_equal(roomy, "c=biws,r=" RFC_NONCE "xxx", 32);
		}
		free(sf);
	}
	free(big);
}

static void scram_truncated(void **state)
{
	(void)state;
	const char *msg = RFC_SERVER_FIRST;
	/* every cut before the first digit of i= is malformed (a cut inside
	 * the digits is a smaller, valid count) */
	size_t upto = strlen(msg) - strlen("4096");
	for (size_t len = 0; len <= upto; len++) {
		start();
		if (final_n(msg, len) != -1)
			fail_msg("accepted a cut at %zu: \"%.*s\"", len, (int)len, msg);
		assert_wiped_failed();
	}
}

/* ---- server-final ---- */

static void to_final(void)
{
	start();
	assert_true(final_s(RFC_SERVER_FIRST) > 0);
}

static void scram_wrong_server_signature(void **state)
{
	(void)state;
	char bad[64];
	strcpy(bad, EMPTY_SERVER_FINAL);
	bad[5] = bad[5] == 'A' ? 'B' : 'A';
	to_final();
	assert_int_equal(verify_s(bad), -1);
	assert_wiped_failed();

	const char *refused[] = {
		"e=invalid-proof",
		"e=other-error",
		"",
		"v=",
		"v",
		EMPTY_SERVER_FINAL ",x=ext",
		EMPTY_SERVER_FINAL " ",
		"V=3HO6Qt1M4MKJrmlKaoOqLAI0/0TV0HZe7J9H3MBtSOg=",
		"v=3HO6Qt1M4MKJrmlKaoOqLAI0/0TV0HZe7J9H3MBtSOg",  /* unpadded */
		"v=3HO6Qt1M4MKJrmlKaoOqLAI0/0TV0HZe7J9H3MBtSOgA", /* 33 bytes */
		"v=3HO6Qt1M4MKJrmlKaoOqLAI0/0TV0HZe7J9H3MBtSA==", /* 31 bytes */
		"v=3HO6Qt1M4MKJrmlKaoOqLAI0/0TV0HZe7J9H3MBtSOg=3HO6Qt1M4MKJrmlKaoOqLAI0/0TV0HZe7J9H3MBtSOg=",
		"v=3HO6Qt1M4MKJrmlKaoOq LAI0/0TV0HZe7J9H3MBtSOg=",
		"e=invalid-proof," EMPTY_SERVER_FINAL,
	};
	for (size_t k = 0; k < sizeof(refused) / sizeof(refused[0]); k++) {
		to_final();
		if (verify_s(refused[k]) != -1)
			fail_msg("accepted server-final \"%s\"", refused[k]);
		assert_wiped_failed();
	}

	/* every truncation of the good one fails */
	for (size_t len = 0; len < strlen(EMPTY_SERVER_FINAL); len++) {
		to_final();
		char *p = exact(EMPTY_SERVER_FINAL, len);
		assert_int_equal(auth_scram_client_verify(&sc, p, len), -1);
		free(p);
	}

	/* oversized */
	char *big = malloc(AUTH_SCRAM_MAX_MSG + 1);
	assert_non_null(big);
	memset(big, 'A', AUTH_SCRAM_MAX_MSG + 1);
	memcpy(big, "v=", 2);
	to_final();
	assert_int_equal(auth_scram_client_verify(&sc, big, AUTH_SCRAM_MAX_MSG + 1), -1);
	free(big);
}

static void scram_wrong_password(void **state)
{
	(void)state;
	assert_int_equal(auth_scram_client_init(&sc, "pencil2", RFC_NONCE), 0);
	assert_true(auth_scram_client_first(&sc, out, sizeof(out)) > 0);
	assert_true(final_s(RFC_SERVER_FIRST) > 0);
	assert_string_not_equal(out, EMPTY_CLIENT_FINAL);
	assert_int_equal(verify_s(EMPTY_SERVER_FINAL), -1);
}

/* ---- state machine ---- */

static void scram_state_misuse(void **state)
{
	(void)state;
	/* final before first */
	assert_int_equal(auth_scram_client_init(&sc, "pencil", RFC_NONCE), 0);
	assert_int_equal(final_s(RFC_SERVER_FIRST), -1);
	assert_wiped_failed();

	/* verify before final (a server skipping SASLContinue) */
	assert_int_equal(auth_scram_client_init(&sc, "pencil", RFC_NONCE), 0);
	assert_int_equal(verify_s(EMPTY_SERVER_FINAL), -1);
	start();
	assert_int_equal(verify_s(EMPTY_SERVER_FINAL), -1);
	assert_wiped_failed();

	/* first twice */
	start();
	assert_int_equal(auth_scram_client_first(&sc, out, sizeof(out)), -1);

	/* final twice (a second SASLContinue) */
	to_final();
	assert_int_equal(final_s(RFC_SERVER_FIRST), -1);
	assert_wiped_failed();

	/* nothing works after DONE or FAILED */
	to_final();
	assert_int_equal(verify_s(EMPTY_SERVER_FINAL), 0);
	assert_int_equal(verify_s(EMPTY_SERVER_FINAL), -1);
	assert_int_equal(sc.state, AUTH_SCRAM_FAILED);
	assert_int_equal(auth_scram_client_first(&sc, out, sizeof(out)), -1);
	assert_int_equal(final_s(RFC_SERVER_FIRST), -1);

	/* a fresh init recovers */
	to_final();
	assert_int_equal(verify_s(EMPTY_SERVER_FINAL), 0);
}

/* ---- secret comparison ---- */

static void secret_equal(void **state)
{
	(void)state;
	assert_true(auth_secret_equal("", ""));
	assert_true(auth_secret_equal("hunter2", "hunter2"));
	assert_false(auth_secret_equal("hunter2", "hunter3"));
	assert_false(auth_secret_equal("hunter2", "Hunter2"));
	assert_false(auth_secret_equal("hunter2", "hunter"));
	assert_false(auth_secret_equal("hunter", "hunter2"));
	assert_false(auth_secret_equal("", "x"));
	assert_false(auth_secret_equal("x", ""));
	assert_false(auth_secret_equal("\xff", "\x7f"));
	assert_false(auth_secret_equal(NULL, ""));
	assert_false(auth_secret_equal("", NULL));
	assert_false(auth_secret_equal(NULL, NULL));

	/* exact-size heap strings: no read past either terminator */
	char *a = exact("abc", 4), *b = exact("abcdefgh", 9);
	assert_false(auth_secret_equal(a, b));
	assert_false(auth_secret_equal(b, a));
	free(a);
	free(b);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(md5_known_value),
		cmocka_unit_test(scram_rfc7677_vector),
		cmocka_unit_test(scram_empty_name),
		cmocka_unit_test(scram_salted_cache),
		cmocka_unit_test(scram_client_first_random_nonce),
		cmocka_unit_test(scram_init_limits),
		cmocka_unit_test(scram_user_escaping),
		cmocka_unit_test(scram_small_caps),
		cmocka_unit_test(scram_nonce_must_extend_ours),
		cmocka_unit_test(scram_missing_and_unknown_attributes),
		cmocka_unit_test(scram_bad_salt),
		cmocka_unit_test(scram_bad_iterations),
		cmocka_unit_test(scram_embedded_nul),
		cmocka_unit_test(scram_oversized),
		cmocka_unit_test(scram_truncated),
		cmocka_unit_test(scram_wrong_server_signature),
		cmocka_unit_test(scram_wrong_password),
		cmocka_unit_test(scram_state_misuse),
		cmocka_unit_test(secret_equal),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
