/* auth/ for clients of PgCrab: the SCRAM-SHA-256 server against the RFC
 * 7677 vector (user "user", password "pencil"), SCRAM-SHA-256-PLUS with a
 * fixed certificate hash, refusals with PostgreSQL's SQLSTATEs, the mock
 * exchange for unknown users; md5 hashes and responses; stored password
 * forms; SASLprep; userlist.txt. Expected values were computed separately
 * with Python's hashlib/hmac/base64 (see each constant). */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "auth/auth.h"
#include "auth/scram_server.h"
#include "auth/secret.h"

#define RFC_CNONCE "rOprNGfwEbeRWgbNEkqO"
#define RFC_SNONCE "%hvYDpWUa2RaTCAfuxFIlj)hNlF$k0"
#define RFC_FIRST  "n,,n=user,r=" RFC_CNONCE
#define RFC_SFIRST "r=" RFC_CNONCE RFC_SNONCE ",s=W22ZaJ0SNY7soEsUEjb6gQ==,i=4096"
#define RFC_CFINAL \
	"c=biws,r=" RFC_CNONCE RFC_SNONCE ",p=dHzbZapWIk4jUhN+Ute9ytag9zjfMHgsqmmiz7AndVQ="
#define RFC_SFINAL "v=6rriTRBi23WpRR/wtup+mMhUZUn/dB5nLTJRsjl95G4="
/* pg_authid form of "pencil" with the RFC salt:
 * StoredKey = sha256(hmac(pbkdf2(pencil), "Client Key")), ServerKey likewise */
#define RFC_VERIFIER                                                                       \
	"SCRAM-SHA-256$4096:W22ZaJ0SNY7soEsUEjb6gQ==$WG5d8oPm3OtcPnkdi4Uo7BkeZkBFzpcXkuLm" \
	"tbsT4qY=:wfPLwcE6nTWhTAmQ7tl2KeoiWGPlZqQxSrmfPwDl2dU="
/* hmac(pbkdf2("pencil", salt, 4096), "Client Key") */
static const uint8_t RFC_CLIENT_KEY[32] = {
	0xa6, 0x0f, 0xc9, 0x23, 0xd6, 0x7e, 0x86, 0x44, 0xa9, 0x2d, 0x16,
	0xb9, 0x6e, 0xda, 0x5e, 0xf4, 0x65, 0x6b, 0x0c, 0x72, 0x5c, 0x48,
	0x43, 0x74, 0xbe, 0x25, 0x53, 0x55, 0x76, 0x99, 0x6e, 0x8b,
};

/* SCRAM-SHA-256-PLUS, certificate hash bytes 0..31, client nonce
 * fyko+d2lbbFgONRv9qkxdawL, server nonce 3rfcNHYJY1ZVvWVs7j, empty name */
#define PLUS_CNONCE "fyko+d2lbbFgONRv9qkxdawL"
#define PLUS_SNONCE "3rfcNHYJY1ZVvWVs7j"
#define PLUS_FIRST  "p=tls-server-end-point,,n=,r=" PLUS_CNONCE
#define PLUS_CFINAL                                                                       \
	"c=cD10bHMtc2VydmVyLWVuZC1wb2ludCwsAAECAwQFBgcICQoLDA0ODxAREhMUFRYXGBkaGxwdHh8=," \
	"r=" PLUS_CNONCE PLUS_SNONCE ",p=N6eVhd4nvLj5WXZdfbnxj+W6kHLrUgYrKJLyh5c1eik="
#define PLUS_SFINAL "v=kzaNq+s0AWARIzDxPyeJLqK5OVhO3eMnf+m3j55Ne0Q="

static struct auth_scram_server srv;
static char out[AUTH_SCRAM_MAX_MSG];
static size_t out_len;

static struct auth_scram_verifier rfc_verifier(void)
{
	struct auth_secret s;
	char why[128];
	assert_int_equal(auth_secret_parse(RFC_VERIFIER, &s, why, sizeof(why)), 0);
	assert_int_equal(s.kind, AUTH_SECRET_SCRAM);
	return s.scram;
}

/* SASLInitialResponse body: mechanism, length, data (heap, exact size). */
static enum auth_scram_result initial(const char *mech, const char *data)
{
	size_t ml = strlen(mech) + 1, dl = strlen(data);
	uint8_t *b = malloc(ml + 4 + dl);
	assert_non_null(b);
	memcpy(b, mech, ml);
	b[ml] = (uint8_t)(dl >> 24);
	b[ml + 1] = (uint8_t)(dl >> 16);
	b[ml + 2] = (uint8_t)(dl >> 8);
	b[ml + 3] = (uint8_t)dl;
	memcpy(b + ml + 4, data, dl);
	enum auth_scram_result r = auth_scram_server_step(&srv, b, ml + 4 + dl, out, sizeof(out),
							  &out_len);
	free(b);
	return r;
}

static enum auth_scram_result response(const char *data)
{
	size_t n = strlen(data);
	char *b = malloc(n ? n : 1);
	assert_non_null(b);
	memcpy(b, data, n);
	enum auth_scram_result r = auth_scram_server_step(&srv, (const uint8_t *)b, n, out,
							  sizeof(out), &out_len);
	free(b);
	return r;
}

static void expect_out(const char *want)
{
	assert_int_equal(out_len, strlen(want));
	assert_memory_equal(out, want, out_len);
}

static void rfc_vector(void **state)
{
	(void)state;
	struct auth_scram_verifier v = rfc_verifier();
	assert_int_equal(auth_scram_server_init(&srv, &v, NULL, "user", NULL, 0, RFC_SNONCE), 0);
	uint8_t mechs[64];
	size_t n = auth_scram_server_mechanisms(&srv, mechs, sizeof(mechs));
	assert_int_equal(n, sizeof("SCRAM-SHA-256") + 1);
	assert_memory_equal(mechs, "SCRAM-SHA-256\0", n);

	assert_int_equal(initial("SCRAM-SHA-256", RFC_FIRST), AUTH_SCRAM_CONTINUE);
	expect_out(RFC_SFIRST);
	assert_int_equal(response(RFC_CFINAL), AUTH_SCRAM_SUCCESS);
	expect_out(RFC_SFINAL);
	/* ClientKey = ClientProof XOR ClientSignature: what logs in to servers */
	assert_memory_equal(srv.client_key, RFC_CLIENT_KEY, 32);
	auth_scram_server_wipe(&srv);
}

/* The verifier PgCrab derives from a cleartext equals pg_authid's. */
static void derive_matches_pg_authid(void **state)
{
	(void)state;
	struct auth_scram_verifier want = rfc_verifier(), got = want;
	uint8_t ck[32];
	memset(got.stored_key, 0, 32);
	memset(got.server_key, 0, 32);
	assert_int_equal(auth_scram_derive("pencil", &got, ck), 0);
	assert_memory_equal(got.stored_key, want.stored_key, 32);
	assert_memory_equal(got.server_key, want.server_key, 32);
	assert_memory_equal(ck, RFC_CLIENT_KEY, 32);

	struct auth_secret s = { .kind = AUTH_SECRET_CLEARTEXT };
	assert_int_equal(auth_secret_add_verifier(&s, "pencil", NULL, "user"), 0);
	assert_true(s.has_scram);
	assert_int_equal(s.scram.iterations, AUTH_SCRAM_DEFAULT_ITERATIONS);
	assert_int_equal(s.scram.salt_len, AUTH_SCRAM_SALT_LEN);
}

static void wrong_proof_rejected(void **state)
{
	(void)state;
	struct auth_scram_verifier v = rfc_verifier();
	assert_int_equal(auth_scram_server_init(&srv, &v, NULL, "user", NULL, 0, RFC_SNONCE), 0);
	assert_int_equal(initial("SCRAM-SHA-256", RFC_FIRST), AUTH_SCRAM_CONTINUE);
	char bad[] = RFC_CFINAL;
	bad[strlen(bad) - 5] ^= 1; /* one bit of the proof */
	assert_int_equal(response(bad), AUTH_SCRAM_REJECT);
	assert_int_equal(srv.state, AUTH_SCRAM_SRV_FAILED);
}

/* Unknown user: the same shape of exchange, a salt stable per name, and a
 * rejection at the proof, even for the right proof of another verifier. */
static void mock_exchange(void **state)
{
	(void)state;
	char first1[AUTH_SCRAM_MAX_MSG], first2[AUTH_SCRAM_MAX_MSG];
	assert_int_equal(auth_scram_server_init(&srv, NULL, NULL, "ghost", NULL, 0, RFC_SNONCE), 0);
	assert_int_equal(initial("SCRAM-SHA-256", RFC_FIRST), AUTH_SCRAM_CONTINUE);
	memcpy(first1, out, out_len);
	first1[out_len] = '\0';
	assert_non_null(strstr(first1, ",i=4096"));
	assert_int_equal(response(RFC_CFINAL), AUTH_SCRAM_REJECT);

	assert_int_equal(auth_scram_server_init(&srv, NULL, NULL, "ghost", NULL, 0, RFC_SNONCE), 0);
	assert_int_equal(initial("SCRAM-SHA-256", RFC_FIRST), AUTH_SCRAM_CONTINUE);
	memcpy(first2, out, out_len);
	first2[out_len] = '\0';
	assert_string_equal(first1, first2); /* a retry cannot tell */

	assert_int_equal(auth_scram_server_init(&srv, NULL, NULL, "other", NULL, 0, RFC_SNONCE), 0);
	assert_int_equal(initial("SCRAM-SHA-256", RFC_FIRST), AUTH_SCRAM_CONTINUE);
	out[out_len] = '\0';
	assert_string_not_equal(first1, out); /* per name, as a real salt is */
	auth_scram_server_wipe(&srv);

	/* with a key: the mock's salt is the one a cleartext user of that
	 * name gets from the same key, so neither tells which is which */
	uint8_t key[AUTH_KEY_LEN] = { 7 };
	struct auth_scram_verifier mv;
	struct auth_secret real = { .kind = AUTH_SECRET_CLEARTEXT };
	assert_int_equal(auth_scram_mock_verifier(key, "ghost", &mv), 0);
	assert_int_equal(auth_secret_add_verifier(&real, "pw", key, "ghost"), 0);
	assert_int_equal(mv.salt_len, real.scram.salt_len);
	assert_memory_equal(mv.salt, real.scram.salt, mv.salt_len);
	assert_int_equal(mv.iterations, real.scram.iterations);
	assert_memory_not_equal(mv.stored_key, real.scram.stored_key, AUTH_KEY_LEN);
	/* and the exchange with that key fails at the proof */
	assert_int_equal(auth_scram_server_init(&srv, NULL, key, "ghost", NULL, 0, RFC_SNONCE), 0);
	assert_int_equal(initial("SCRAM-SHA-256", RFC_FIRST), AUTH_SCRAM_CONTINUE);
	assert_int_equal(response(RFC_CFINAL), AUTH_SCRAM_REJECT);
}

static void plus_binding(void **state)
{
	(void)state;
	uint8_t cb[32];
	for (int i = 0; i < 32; i++)
		cb[i] = (uint8_t)i;
	struct auth_scram_verifier v = rfc_verifier();
	assert_int_equal(auth_scram_server_init(&srv, &v, NULL, "u", cb, sizeof(cb), PLUS_SNONCE),
			 0);
	uint8_t mechs[64];
	size_t n = auth_scram_server_mechanisms(&srv, mechs, sizeof(mechs));
	assert_memory_equal(mechs, "SCRAM-SHA-256-PLUS\0SCRAM-SHA-256\0", n);
	assert_int_equal(n,
			 sizeof("SCRAM-SHA-256-PLUS\0SCRAM-SHA-256") + 1); /* and the list's NUL */
	assert_int_equal(initial("SCRAM-SHA-256-PLUS", PLUS_FIRST), AUTH_SCRAM_CONTINUE);
	assert_int_equal(response(PLUS_CFINAL), AUTH_SCRAM_SUCCESS);
	expect_out(PLUS_SFINAL);

	/* another certificate's hash: the binding check fails */
	cb[0] ^= 1;
	assert_int_equal(auth_scram_server_init(&srv, &v, NULL, "u", cb, sizeof(cb), PLUS_SNONCE),
			 0);
	assert_int_equal(initial("SCRAM-SHA-256-PLUS", PLUS_FIRST), AUTH_SCRAM_CONTINUE);
	assert_int_equal(response(PLUS_CFINAL), AUTH_SCRAM_ERROR);
	assert_string_equal(srv.sqlstate, "08P01");
	assert_string_equal(srv.message, "SCRAM channel binding check failed");

	/* "y": the client could bind but thinks we cannot (a downgrade) */
	assert_int_equal(auth_scram_server_init(&srv, &v, NULL, "u", cb, sizeof(cb), NULL), 0);
	assert_int_equal(initial("SCRAM-SHA-256", "y,,n=,r=abc"), AUTH_SCRAM_ERROR);
	assert_string_equal(srv.message, "SCRAM channel binding negotiation error");
	/* PLUS without binding data, and binding data without PLUS */
	assert_int_equal(auth_scram_server_init(&srv, &v, NULL, "u", cb, sizeof(cb), NULL), 0);
	assert_int_equal(initial("SCRAM-SHA-256-PLUS", "n,,n=,r=abc"), AUTH_SCRAM_ERROR);
	assert_string_equal(srv.message, "malformed SCRAM message");
	assert_int_equal(auth_scram_server_init(&srv, &v, NULL, "u", cb, sizeof(cb), NULL), 0);
	assert_int_equal(initial("SCRAM-SHA-256", PLUS_FIRST), AUTH_SCRAM_ERROR);
	assert_int_equal(auth_scram_server_init(&srv, &v, NULL, "u", cb, sizeof(cb), NULL), 0);
	assert_int_equal(initial("SCRAM-SHA-256-PLUS", "p=tls-unique,,n=,r=abc"), AUTH_SCRAM_ERROR);
	assert_string_equal(srv.message, "unsupported SCRAM channel-binding type");
	/* without TLS, PLUS is not offered and "y" is fine */
	assert_int_equal(auth_scram_server_init(&srv, &v, NULL, "u", NULL, 0, NULL), 0);
	assert_int_equal(initial("SCRAM-SHA-256-PLUS", PLUS_FIRST), AUTH_SCRAM_ERROR);
	assert_string_equal(srv.message,
			    "client selected an invalid SASL authentication mechanism");
	assert_int_equal(auth_scram_server_init(&srv, &v, NULL, "u", NULL, 0, NULL), 0);
	assert_int_equal(initial("SCRAM-SHA-256", "y,,n=,r=abc"), AUTH_SCRAM_CONTINUE);
	auth_scram_server_wipe(&srv);
}

static void bad_messages(void **state)
{
	(void)state;
	struct auth_scram_verifier v = rfc_verifier();
	static const char *const firsts[] = {
		"",
		"x,,n=,r=a",
		"n",
		"n,",
		"n,a=someone,n=,r=a",
		"n,,m=ext,n=,r=a",
		"n,,r=a",
		"n,,n=,",
		"n,,n=,r=",
		"n,,n=,r=a\x7f",
	};
	static const char *const states[] = {
		"08P01", "08P01", "08P01", "08P01", "0A000",
		"0A000", "08P01", "08P01", "08P01", "08P01",
	};
	for (size_t i = 0; i < sizeof(firsts) / sizeof(firsts[0]); i++) {
		assert_int_equal(auth_scram_server_init(&srv, &v, NULL, "u", NULL, 0, RFC_SNONCE),
				 0);
		if (initial("SCRAM-SHA-256", firsts[i]) != AUTH_SCRAM_ERROR)
			fail_msg("client-first '%s' accepted", firsts[i]);
		assert_string_equal(srv.sqlstate, states[i]);
	}
	static const char *const finals[] = {
		"",
		"c=biws",
		"c=eSws,r=" RFC_CNONCE RFC_SNONCE ",p=dHzbZapWIk4jUhN+Ute9ytag9zjfMHgsqmmiz7AndVQ=",
		"c=biws,r=" RFC_CNONCE ",p=dHzbZapWIk4jUhN+Ute9ytag9zjfMHgsqmmiz7AndVQ=",
		"c=biws,r=" RFC_CNONCE RFC_SNONCE,
		"c=biws,r=" RFC_CNONCE RFC_SNONCE ",p=AAAA",
		RFC_CFINAL ",x=1",
	};
	for (size_t i = 0; i < sizeof(finals) / sizeof(finals[0]); i++) {
		assert_int_equal(auth_scram_server_init(&srv, &v, NULL, "u", NULL, 0, RFC_SNONCE),
				 0);
		assert_int_equal(initial("SCRAM-SHA-256", RFC_FIRST), AUTH_SCRAM_CONTINUE);
		if (response(finals[i]) != AUTH_SCRAM_ERROR)
			fail_msg("client-final '%s' accepted", finals[i]);
	}
	/* extensions before the proof are skipped, as PostgreSQL does */
	assert_int_equal(auth_scram_server_init(&srv, &v, NULL, "u", NULL, 0, RFC_SNONCE), 0);
	assert_int_equal(initial("SCRAM-SHA-256", RFC_FIRST ",x=ext"), AUTH_SCRAM_CONTINUE);

	/* a SASLInitialResponse without data: an empty challenge, then client-first */
	assert_int_equal(auth_scram_server_init(&srv, &v, NULL, "user", NULL, 0, RFC_SNONCE), 0);
	static const uint8_t none[] = "SCRAM-SHA-256\0\xff\xff\xff\xff";
	assert_int_equal(auth_scram_server_step(&srv, none, sizeof(none) - 1, out, sizeof(out),
						&out_len),
			 AUTH_SCRAM_CONTINUE);
	assert_int_equal(out_len, 0);
	assert_int_equal(response(RFC_FIRST), AUTH_SCRAM_CONTINUE);
	expect_out(RFC_SFIRST);
	assert_int_equal(response(RFC_CFINAL), AUTH_SCRAM_SUCCESS);
	/* nothing more is taken once done */
	assert_int_equal(response(RFC_CFINAL), AUTH_SCRAM_ERROR);

	/* a length word that lies */
	assert_int_equal(auth_scram_server_init(&srv, &v, NULL, "u", NULL, 0, NULL), 0);
	static const uint8_t lies[] = "SCRAM-SHA-256\0\0\0\0\x50n,,n=,r=a";
	assert_int_equal(auth_scram_server_step(&srv, lies, sizeof(lies) - 1, out, sizeof(out),
						&out_len),
			 AUTH_SCRAM_ERROR);
	auth_scram_server_wipe(&srv);
}

static void md5_forms(void **state)
{
	(void)state;
	char hash[36], resp[36];
	/* md5("penciluser") */
	auth_md5_hash("user", "pencil", hash);
	assert_string_equal(hash, "md520c46e3762c864548e296b33c3406aa9");
	static const uint8_t salt[4] = { 1, 2, 3, 4 };
	auth_md5_salted(hash, salt, resp);
	assert_string_equal(resp, "md54376eb6913b38f9aaff38dc7cf19ca76");
	auth_md5_response("user", "pencil", salt, resp);
	assert_string_equal(resp, "md54376eb6913b38f9aaff38dc7cf19ca76");
	auth_md5_salted("md5short", salt, resp);
	assert_string_equal(resp, "");
}

/* Cleartext passwords checked against each stored form. */
static void plain_checks(void **state)
{
	(void)state;
	struct auth_secret s;
	char why[128];
	assert_int_equal(auth_secret_parse("pencil", &s, why, sizeof(why)), 0);
	assert_true(auth_plain_check(&s, "pencil", "user", "pencil"));
	assert_false(auth_plain_check(&s, "pencil", "user", "pencil2"));
	assert_int_equal(auth_secret_parse("md520c46e3762c864548e296b33c3406aa9", &s, why,
					   sizeof(why)),
			 0);
	assert_int_equal(s.kind, AUTH_SECRET_MD5);
	assert_true(auth_plain_check(&s, NULL, "user", "pencil"));
	assert_false(auth_plain_check(&s, NULL, "other", "pencil")); /* salted by name */
	assert_int_equal(auth_secret_parse(RFC_VERIFIER, &s, why, sizeof(why)), 0);
	assert_true(auth_plain_check(&s, NULL, "anyone", "pencil"));
	assert_false(auth_plain_check(&s, NULL, "anyone", "Pencil"));
}

static void verifier_parsing(void **state)
{
	(void)state;
	struct auth_secret s;
	char why[160];
	static const char *const bad[] = {
		"SCRAM-SHA-256$",
		"SCRAM-SHA-256$0:W22ZaJ0SNY7soEsUEjb6gQ==$a:b",
		"SCRAM-SHA-256$4096W22ZaJ0SNY7soEsUEjb6gQ==$a:b",
		"SCRAM-SHA-256$4096:W22ZaJ0SNY7soEsUEjb6gQ==",
		"SCRAM-SHA-256$4096:W22ZaJ0SNY7soEsUEjb6gQ=$WG5d8oPm3OtcPnkdi4Uo7BkeZkBFzpcXkuLmtbsT4qY=:"
		"wfPLwcE6nTWhTAmQ7tl2KeoiWGPlZqQxSrmfPwDl2dU=",
		"SCRAM-SHA-256$4096:W22ZaJ0SNY7soEsUEjb6gQ==$WG5d8oPm3OtcPnkdi4Uo7BkeZkBFzpcXkuLmtbsT4qY=",
		"SCRAM-SHA-256$4096:W22ZaJ0SNY7soEsUEjb6gQ==$WG5d8oPm3OtcPnkdi4Uo7BkeZkBFzpcXkuLmtbsT4qY=:"
		"wfPLwcE6nTWhTAmQ7tl2KeoiWGPlZqQxSrmfPwDl2dU",
		"SCRAM-SHA-256$99999999999:W22ZaJ0SNY7soEsUEjb6gQ==$a:b",
		"md5zzc46e3762c864548e296b33c3406aa9",
	};
	for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
		why[0] = '\0';
		if (auth_secret_parse(bad[i], &s, why, sizeof(why)) != -1)
			fail_msg("'%s' accepted", bad[i]);
		assert_true(strstr(why, "malformed") != NULL);
	}
	/* what only looks a little like a hash is a cleartext password */
	assert_int_equal(auth_secret_parse("md5", &s, why, sizeof(why)), 0);
	assert_int_equal(s.kind, AUTH_SECRET_CLEARTEXT);
	assert_int_equal(auth_secret_parse("scram-sha-256$x", &s, why, sizeof(why)), 0);
	assert_int_equal(s.kind, AUTH_SECRET_CLEARTEXT);
}

static void saslprep_cases(void **state)
{
	(void)state;
	char prepped[64];
	struct {
		const char *in, *want;
	} cases[] = {
		{ "pencil", "pencil" },
		{ "IX-\u2168", "IX-IX" },             /* NFKC: ROMAN NUMERAL NINE */
		{ "no\u00a0break", "no break" },      /* non-ASCII space: a space */
		{ "soft\u00adhyphen", "softhyphen" }, /* mapped to nothing */
		{ "bell\a", "bell\a" },               /* ASCII: as is, like PostgreSQL */
		{ "bell\u00e9\a", "bell\u00e9\a" },   /* prohibited control: raw bytes */
		{ "\u0627a", "\u0627a" },             /* bidi: RandAL with L: raw bytes */
		{ "\u00ad", "\u00ad" },               /* maps to nothing at all: raw */
		{ "bad\xff utf8", "bad\xff utf8" },   /* not UTF-8: raw bytes */
		{ "\u00e9\u0378", "\u00e9\u0378" },   /* unassigned code point: raw */
		{ "\u00c5", "\u00c5" },               /* NFKC keeps the composed form */
		{ "A\u030a", "\u00c5" },              /* ...and composes a decomposed one */
	};
	for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
		assert_int_equal(auth_saslprep(cases[i].in, prepped, sizeof(prepped)), 0);
		if (strcmp(prepped, cases[i].want) != 0)
			fail_msg("case %zu: got '%s'", i, prepped);
	}
	assert_int_equal(auth_saslprep("too long for four", prepped, 4), -1);
}

struct collected {
	int n;
	char users[4][32], passwords[4][32];
};

static int collect(void *arg, const char *user, const char *password, char *why, size_t whylen)
{
	struct collected *c = arg;
	if (c->n == 4) {
		snprintf(why, whylen, "too many");
		return -1;
	}
	snprintf(c->users[c->n], 32, "%s", user);
	snprintf(c->passwords[c->n], 32, "%s", password);
	c->n++;
	return 0;
}

static void userlist(void **state)
{
	(void)state;
	const char *text =
		";comment\n# another\n\n  \"a\" \"pw\"\r\n\"q\"\"uote\" \"x\"\"y\" rest of line\n"
		"\"c\"\t\"\"";
	struct collected c = { 0 };
	int line = 0;
	char why[128];
	assert_int_equal(auth_userlist_parse(text, strlen(text), collect, &c, &line, why,
					     sizeof(why)),
			 0);
	assert_int_equal(c.n, 3);
	assert_string_equal(c.users[0], "a");
	assert_string_equal(c.passwords[0], "pw");
	assert_string_equal(c.users[1], "q\"uote");
	assert_string_equal(c.passwords[1], "x\"y");
	assert_string_equal(c.users[2], "c");
	assert_string_equal(c.passwords[2], "");

	static const char *const bad[] = { "a b\n", "\"a\"\n", "\"a\" \"open\n", "\"\" \"x\"\n",
					   "\"a\" x\n" };
	for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
		struct collected d = { 0 };
		line = 0;
		assert_int_equal(auth_userlist_parse(bad[i], strlen(bad[i]), collect, &d, &line,
						     why, sizeof(why)),
				 -1);
		assert_int_equal(line, 1);
	}
	/* the callback's refusal stops the parse at its line */
	const char *many = "\"1\" \"x\"\n\"2\" \"x\"\n\"3\" \"x\"\n\"4\" \"x\"\n\"5\" \"x\"\n";
	struct collected e = { 0 };
	assert_int_equal(auth_userlist_parse(many, strlen(many), collect, &e, &line, why,
					     sizeof(why)),
			 -1);
	assert_int_equal(line, 5);
	assert_string_equal(why, "too many");
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(rfc_vector),
		cmocka_unit_test(derive_matches_pg_authid),
		cmocka_unit_test(wrong_proof_rejected),
		cmocka_unit_test(mock_exchange),
		cmocka_unit_test(plus_binding),
		cmocka_unit_test(bad_messages),
		cmocka_unit_test(md5_forms),
		cmocka_unit_test(plain_checks),
		cmocka_unit_test(verifier_parsing),
		cmocka_unit_test(saslprep_cases),
		cmocka_unit_test(userlist),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
