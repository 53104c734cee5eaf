/* libFuzzer target: auth/scram_server.c — the SCRAM-SHA-256 server PgCrab
 * runs for its clients, fed arbitrary SASLInitialResponse and SASLResponse
 * bodies.
 *
 * Input: a flags byte, a 16-bit length and that many bytes of
 * SASLInitialResponse body, then the rest as SASLResponse bodies separated
 * by 16-bit lengths (up to three). Flags: 1 the user has the RFC 7677
 * verifier ("pencil"), else the mock exchange of an unknown user; 2 the
 * connection is TLS (PLUS offered, a fixed certificate hash); 4 an honest
 * client (auth_scram_client, the harness's nonce) runs the exchange first
 * and must succeed, then 8 flips one bit of its client-final, which must
 * then fail.
 *
 * Properties: every result is one of the four; an error carries a SQLSTATE
 * and message; the mock never succeeds; random input never succeeds; out
 * is never written past cap. */
#include "tests/fuzz/fuzz.h"

#include "auth/scram_server.h"

#define RFC_VERIFIER                                                                       \
	"SCRAM-SHA-256$4096:W22ZaJ0SNY7soEsUEjb6gQ==$WG5d8oPm3OtcPnkdi4Uo7BkeZkBFzpcXkuLm" \
	"tbsT4qY=:wfPLwcE6nTWhTAmQ7tl2KeoiWGPlZqQxSrmfPwDl2dU="

static void check_result(const struct auth_scram_server *s, enum auth_scram_result r,
			 size_t out_len, size_t cap)
{
	FUZZ_CHECK(out_len <= cap);
	switch (r) {
	case AUTH_SCRAM_CONTINUE:
		FUZZ_CHECK(s->state == AUTH_SCRAM_SRV_FIRST || s->state == AUTH_SCRAM_SRV_FINAL);
		break;
	case AUTH_SCRAM_SUCCESS:
		FUZZ_CHECK(s->state == AUTH_SCRAM_SRV_DONE && !s->mock);
		FUZZ_CHECK(out_len == 2 + 44);
		break;
	case AUTH_SCRAM_REJECT:
		FUZZ_CHECK(s->state == AUTH_SCRAM_SRV_FAILED);
		break;
	case AUTH_SCRAM_ERROR:
		FUZZ_CHECK(s->state == AUTH_SCRAM_SRV_FAILED && s->sqlstate && s->message);
		FUZZ_CHECK(strlen(s->sqlstate) == 5);
		break;
	default:
		FUZZ_CHECK(!"unknown result");
	}
}

/* A body on the heap of exactly n bytes, stepped through the server. */
static enum auth_scram_result step(struct auth_scram_server *s, const uint8_t *p, size_t n,
				   char *out, size_t cap, size_t *out_len)
{
	uint8_t *b = fuzz_dup(p, n);
	enum auth_scram_result r = auth_scram_server_step(s, b, n, out, cap, out_len);
	free(b);
	check_result(s, r, *out_len, cap);
	return r;
}

/* The honest client against the server: must succeed unless spoiled. */
static void honest(struct auth_scram_server *s, bool spoil, uint8_t bit)
{
	struct auth_scram_client c;
	char first[AUTH_SCRAM_MAX_MSG], final[AUTH_SCRAM_MAX_MSG], out[AUTH_SCRAM_MAX_MSG];
	uint8_t body[AUTH_SCRAM_MAX_MSG + 32];
	size_t out_len = 0;
	FUZZ_CHECK(auth_scram_client_init(&c, "pencil", "fuzzclientnonce") == 0);
	int n = auth_scram_client_first(&c, first, sizeof(first));
	FUZZ_CHECK(n > 0);
	memcpy(body, "SCRAM-SHA-256", 14);
	body[14] = 0;
	body[15] = 0;
	body[16] = (uint8_t)(n >> 8);
	body[17] = (uint8_t)n;
	memcpy(body + 18, first, (size_t)n);
	enum auth_scram_result r = step(s, body, 18 + (size_t)n, out, sizeof(out), &out_len);
	FUZZ_CHECK(r == AUTH_SCRAM_CONTINUE);
	n = auth_scram_client_final(&c, out, out_len, final, sizeof(final));
	FUZZ_CHECK(n > 0);
	int at = (bit / 8) % n;
	if (spoil)
		final[at] ^= (char)(1u << (bit % 8));
	r = step(s, (const uint8_t *) final, (size_t)n, out, sizeof(out), &out_len);
	if (!spoil) {
		FUZZ_CHECK(r == AUTH_SCRAM_SUCCESS);
		FUZZ_CHECK(auth_scram_client_verify(&c, out, out_len) == 0);
	} else {
		/* only base64's unused low bits of the proof's last character
		 * (before its '=') may decode to the same proof */
		FUZZ_CHECK(r != AUTH_SCRAM_SUCCESS || at == n - 2);
	}
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	struct fuzz_in in = { data, size };
	uint8_t flags = fuzz_u8(&in);
	static const uint8_t cb[32] = { 1, 2, 3, 4, 5, 6, 7, 8 };
	struct auth_scram_server *s = malloc(sizeof(*s));
	struct auth_secret sec;
	char why[128];
	FUZZ_CHECK(s && auth_secret_parse(RFC_VERIFIER, &sec, why, sizeof(why)) == 0);
	const struct auth_scram_verifier *v = (flags & 1) ? &sec.scram : NULL;
	FUZZ_CHECK(auth_scram_server_init(s, v, NULL, "fuzzuser", (flags & 2) ? cb : NULL,
					  (flags & 2) ? sizeof(cb) : 0, "fuzzservernonce")
		   == 0);

	if ((flags & 5) == 5) {
		honest(s, flags & 8, fuzz_u8(&in));
		auth_scram_server_wipe(s);
		free(s);
		return 0;
	}
	/* an output buffer of the size the caller gives, sometimes too small */
	size_t cap = AUTH_SCRAM_MAX_MSG;
	char *out = malloc(cap);
	FUZZ_CHECK(out != NULL);
	size_t out_len = 0, n;
	const uint8_t *p = fuzz_bytes(&in, fuzz_u16(&in), &n);
	enum auth_scram_result r = step(s, p, n, out, cap, &out_len);
	for (int i = 0; i < 3 && r == AUTH_SCRAM_CONTINUE; i++) {
		if (i < 2)
			p = fuzz_bytes(&in, fuzz_u16(&in), &n);
		else
			p = fuzz_bytes(&in, in.left, &n);
		r = step(s, p, n, out, cap, &out_len);
		/* nobody forges a proof for the RFC password by chance */
		FUZZ_CHECK(r != AUTH_SCRAM_SUCCESS);
	}
	/* finished either way: nothing more is taken */
	if (r != AUTH_SCRAM_CONTINUE)
		FUZZ_CHECK(step(s, data, size, out, cap, &out_len) == AUTH_SCRAM_ERROR);
	auth_scram_server_wipe(s);
	free(out);
	free(s);
	return 0;
}
