/* auth/scram_keys.c and auth/proof.c: logging in to a SCRAM server with the
 * keys alone, checked against a verifier PostgreSQL 15 made
 * (CREATE ROLE ... PASSWORD 'pencil'; pg_authid.rolpassword), and against
 * the password-based client (tested on the RFC 7677 vector in test_auth.c):
 * both must send the very same client-final-message. The server side is
 * played here from the verifier only. Plus md5 from a stored hash. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <openssl/evp.h>
#include <openssl/hmac.h>

#include "auth/auth.h"
#include "auth/proof.h"
#include "auth/scram_keys.h"

/* from PostgreSQL 15: password 'pencil' */
#define PG_VERIFIER                                                                                \
	"SCRAM-SHA-256$4096:n5OhjeCMNfi49i/pduSmmg==$decLShkFyUPELj2gJLaerojRUOhBHG8omSE/9dwaLBw=" \
	":xE9R/gdb+sfxCfo7D3JdytXv7NzMhfJj6FwzqqJZhHQ="
#define PG_SALT_B64 "n5OhjeCMNfi49i/pduSmmg=="
/* from PostgreSQL 15 with password_encryption = md5: role vmd5, 'pencil' */
#define PG_MD5      "md51e3df0e82334e45c4bae0c1f39f1d28a"
#define NONCE       "fyko+d2lbbFgONRv9qkxdawL"
#define SNONCE      NONCE "3rfcNHYJY1ZVvWVs7j"

/* A pg_authid verifier, as the rest of PgCrab reads it: 0, or -1. */
static int parse_verifier(const char *text, struct auth_scram_verifier *v)
{
	struct auth_secret s;
	char why[128];
	memset(v, 0, sizeof(*v));
	if (auth_secret_parse(text, &s, why, sizeof(why)) != 0 || s.kind != AUTH_SECRET_SCRAM)
		return -1;
	*v = s.scram;
	return 0;
}

/* Whether password made v: its keys derived with v's salt and count. */
static bool verifier_matches(const struct auth_scram_verifier *v, const char *password)
{
	struct auth_scram_verifier d = *v;
	return auth_scram_derive(password, &d, NULL) == 0
		&& memcmp(d.stored_key, v->stored_key, 32) == 0
		&& memcmp(d.server_key, v->server_key, 32) == 0;
}

static void verifier_parse_and_match(void **state)
{
	(void)state;
	struct auth_scram_verifier v;
	assert_int_equal(parse_verifier(PG_VERIFIER, &v), 0);
	assert_int_equal(v.iterations, 4096);
	assert_int_equal(v.salt_len, 16);
	assert_true(verifier_matches(&v, "pencil"));
	assert_false(verifier_matches(&v, "pencil2"));
	assert_false(verifier_matches(&v, ""));

	struct auth_scram_verifier d = { .iterations = v.iterations, .salt_len = v.salt_len };
	memcpy(d.salt, v.salt, v.salt_len);
	assert_int_equal(auth_scram_derive("pencil", &d, NULL), 0);
	assert_memory_equal(d.stored_key, v.stored_key, 32);
	assert_memory_equal(d.server_key, v.server_key, 32);

	static const char *const bad[] = {
		"md5abc",
		"SCRAM-SHA-256$",
		"SCRAM-SHA-256$0:" PG_SALT_B64 "$a:b",
		"SCRAM-SHA-256$4096:" PG_SALT_B64 "$short:short",
		"SCRAM-SHA-256$4096:!!!!$decLShkFyUPELj2gJLaerojRUOhBHG8omSE/9dwaLBw=:"
		"xE9R/gdb+sfxCfo7D3JdytXv7NzMhfJj6FwzqqJZhHQ=",
		"SCRAM-SHA-256$4096:" PG_SALT_B64 "$decLShkFyUPELj2gJLaerojRUOhBHG8omSE/9dwaLBw=",
	};
	for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++)
		assert_int_equal(parse_verifier(bad[i], &v), -1);
}

/* Server-final for an AuthMessage, from the verifier's ServerKey. */
static void server_final(const struct auth_scram_verifier *v, const char *am, char *out)
{
	uint8_t sig[32];
	unsigned int n;
	HMAC(EVP_sha256(), v->server_key, 32, (const unsigned char *)am, strlen(am), sig, &n);
	memcpy(out, "v=", 2);
	EVP_EncodeBlock((unsigned char *)out + 2, sig, 32);
}

static void login_with_keys_only(void **state)
{
	(void)state;
	struct auth_scram_verifier v;
	assert_int_equal(parse_verifier(PG_VERIFIER, &v), 0);
	/* what a client's SCRAM login yields: ClientKey (from its proof) and
	 * ServerKey (from the verifier) */
	uint8_t ck[32];
	struct auth_scram_verifier d = v;
	assert_int_equal(auth_scram_derive("pencil", &d, ck), 0);
	struct auth_scram_keys *k = malloc(sizeof(*k));
	struct auth_scram_client *pw = malloc(sizeof(*pw));
	char first[256], final_k[512], final_p[512], why[200];
	assert_int_equal(auth_scram_client_init_keys(k, ck, v.server_key, v.salt, v.salt_len, 4096,
						     NONCE),
			 0);
	assert_int_equal(auth_scram_client_init(pw, "pencil", NONCE), 0);
	assert_int_equal(auth_scram_keys_first(k, first, sizeof(first)),
			 (int)strlen("n,,n=,r=" NONCE));
	assert_string_equal(first, "n,,n=,r=" NONCE);
	assert_true(auth_scram_client_first(pw, final_p, sizeof(final_p)) > 0);

	const char *sf = "r=" SNONCE ",s=" PG_SALT_B64 ",i=4096";
	char *heap = malloc(strlen(sf)); /* exact size, no NUL: catches over-reads */
	memcpy(heap, sf, strlen(sf));
	int n = auth_scram_keys_final(k, heap, strlen(sf), final_k, sizeof(final_k), why,
				      sizeof(why));
	assert_true(n > 0);
	assert_true(auth_scram_client_final(pw, heap, strlen(sf), final_p, sizeof(final_p)) > 0);
	assert_string_equal(final_k, final_p); /* the same proof, without the password */

	/* the server checks the proof with StoredKey: recover ClientKey */
	char am[1024];
	snprintf(am, sizeof(am), "n=,r=" NONCE ",%s,c=biws,r=" SNONCE, sf);
	char fin[64];
	server_final(&v, am, fin);
	assert_int_equal(auth_scram_keys_verify(k, fin, strlen(fin)), 0);
	assert_int_equal(k->state, AUTH_SCRAM_DONE);
	free(heap);
	free(k);
	free(pw);
}

static void keys_refuse_other_salt_or_count(void **state)
{
	(void)state;
	struct auth_scram_verifier v;
	assert_int_equal(parse_verifier(PG_VERIFIER, &v), 0);
	struct auth_scram_keys k;
	char first[256], out[512], why[200];
	static const char *const sfs[] = {
		"r=" SNONCE ",s=AAAAAAAAAAAAAAAAAAAAAA==,i=4096", /* another salt */
		"r=" SNONCE ",s=" PG_SALT_B64 ",i=4097",          /* another count */
	};
	for (size_t i = 0; i < 2; i++) {
		assert_int_equal(auth_scram_client_init_keys(&k, v.stored_key, v.server_key, v.salt,
							     v.salt_len, 4096, NONCE),
				 0);
		assert_true(auth_scram_keys_first(&k, first, sizeof(first)) > 0);
		assert_int_equal(auth_scram_keys_final(&k, sfs[i], strlen(sfs[i]), out, sizeof(out),
						       why, sizeof(why)),
				 -1);
		assert_non_null(strstr(why, "not the one the client proved"));
		assert_int_equal(k.state, AUTH_SCRAM_FAILED);
	}
	/* malformed: not our nonce, missing fields, extensions */
	static const char *const bad[] = {
		"r=xyz,s=" PG_SALT_B64 ",i=4096",
		"r=" NONCE ",s=" PG_SALT_B64 ",i=4096",
		"r=" SNONCE ",s=" PG_SALT_B64,
		"r=" SNONCE ",s=" PG_SALT_B64 ",i=4096,x=1",
		"r=",
		"r=" SNONCE ",,i",
		"r=" SNONCE ",s=" PG_SALT_B64 ",i=",
	};
	for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
		assert_int_equal(auth_scram_client_init_keys(&k, v.stored_key, v.server_key, v.salt,
							     v.salt_len, 4096, NONCE),
				 0);
		assert_true(auth_scram_keys_first(&k, first, sizeof(first)) > 0);
		char *heap = malloc(strlen(bad[i]) + 1);
		memcpy(heap, bad[i], strlen(bad[i]));
		assert_int_equal(auth_scram_keys_final(&k, heap, strlen(bad[i]), out, sizeof(out),
						       why, sizeof(why)),
				 -1);
		free(heap);
	}
	/* a wrong server signature */
	assert_int_equal(auth_scram_client_init_keys(&k, v.stored_key, v.server_key, v.salt,
						     v.salt_len, 4096, NONCE),
			 0);
	assert_true(auth_scram_keys_first(&k, first, sizeof(first)) > 0);
	const char *sf = "r=" SNONCE ",s=" PG_SALT_B64 ",i=4096";
	assert_true(auth_scram_keys_final(&k, sf, strlen(sf), out, sizeof(out), why, sizeof(why))
		    > 0);
	const char *wrong = "v=6rriTRBi23WpRR/wtup+mMhUZUn/dB5nLTJRsjl95G4=";
	assert_int_equal(auth_scram_keys_verify(&k, wrong, strlen(wrong)), -1);
}

static void md5_from_hash(void **state)
{
	(void)state;
	char hash[36], a[36], b[36];
	auth_md5_hash("vmd5", "pencil", hash);
	assert_string_equal(hash, PG_MD5);
	const uint8_t salt[4] = { 1, 2, 3, 0xff };
	auth_md5_response("vmd5", "pencil", salt, a);
	assert_int_equal(auth_md5_response_from_hash(PG_MD5, salt, b), 0);
	assert_string_equal(a, b);
	assert_int_equal(auth_md5_response_from_hash("md5short", salt, b), -1);
	assert_int_equal(auth_md5_response_from_hash("SCRAM-SHA-256$x", salt, b), -1);

	struct auth_proof *p = auth_proof_from_cleartext("vmd5", "pencil");
	assert_non_null(p);
	assert_string_equal(p->cleartext, "pencil");
	assert_true(p->has_md5);
	assert_string_equal(p->md5, PG_MD5);
	struct auth_proof *q = auth_proof_dup(p);
	assert_true(auth_proof_same(p, q));
	free(q->cleartext);
	q->cleartext = NULL;
	assert_false(auth_proof_same(p, q));
	auth_proof_free(p);
	auth_proof_free(q);
	auth_proof_free(NULL);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(verifier_parse_and_match),
		cmocka_unit_test(login_with_keys_only),
		cmocka_unit_test(keys_refuse_other_salt_or_count),
		cmocka_unit_test(md5_from_hash),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
