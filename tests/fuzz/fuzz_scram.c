/* libFuzzer target: auth/ — the SCRAM-SHA-256 exchange PgCrab runs as a
 * client of a PostgreSQL server that may be hostile, and the md5 helpers.
 *
 * Input: a mode byte, a flags byte, a writer capacity, then NUL-separated
 * password, client nonce and SCRAM user name, a 16-bit length and that many
 * bytes of server-first-message, and the rest as server-final-message.
 * server-first may be as long as the input (well past AUTH_SCRAM_MAX_MSG):
 * long nonces and salts are what overflowed other poolers.
 *
 * With flag 1 the harness plays an honest server instead for the last step:
 * it computes the right ServerSignature from the client's own state, so the
 * success path of auth_scram_client_verify is reached and must succeed; flag
 * 2 then appends the fuzz bytes after it and flag 4 flips one bit, both of
 * which must be refused. Mode 1 drills the md5 response and
 * auth_secret_equal against simple reference properties. */
#include "tests/fuzz/fuzz.h"

#include <openssl/evp.h>
#include <openssl/hmac.h>

#include "auth/auth.h"

#define SHA256_LEN 32

static bool is_b64_text(const char *s, size_t n)
{
	for (size_t i = 0; i < n; i++) {
		char c = s[i];
		if (!((c >= 'A' && c <= 'Z') || (c >= 'a' && c <= 'z') || (c >= '0' && c <= '9')
		      || c == '+' || c == '/' || c == '='))
			return false;
	}
	return true;
}

/* "v=" base64(HMAC(HMAC(SaltedPassword, "Server Key"), AuthMessage)). */
static size_t honest_server_final(const struct auth_scram_client *s, char *out)
{
	uint8_t server_key[SHA256_LEN], sig[SHA256_LEN];
	unsigned int n = 0;
	if (!HMAC(EVP_sha256(), s->salted_password, SHA256_LEN, (const uint8_t *)"Server Key", 10,
		  server_key, &n)
	    || !HMAC(EVP_sha256(), server_key, SHA256_LEN, (const uint8_t *)s->auth_message,
		     s->auth_message_len, sig, &n))
		abort();
	memcpy(out, "v=", 2);
	return 2 + (size_t)EVP_EncodeBlock((unsigned char *)out + 2, sig, SHA256_LEN);
}

static void drill_scram(struct fuzz_in *in)
{
	uint8_t flags = fuzz_u8(in);
	size_t cap = fuzz_u16(in) % (3 * AUTH_SCRAM_MAX_MSG);
	char password[300], nonce[80], user[160];
	fuzz_cstr(in, password, sizeof(password));
	fuzz_cstr(in, nonce, sizeof(nonce));
	fuzz_cstr(in, user, sizeof(user));
	size_t first_len;
	const uint8_t *first_raw = fuzz_bytes(in, fuzz_u16(in), &first_len);
	size_t final_len;
	const uint8_t *final_raw = fuzz_bytes(in, in->left, &final_len);

	struct auth_scram_client *s = malloc(sizeof(*s));
	char *out = malloc(cap ? cap : 1);
	char *first = (char *)fuzz_dup(first_raw, first_len);
	char *final = (char *)fuzz_dup(final_raw, final_len);
	char honest[2 + 44 + 4096 + 1];
	if (!s || !out)
		abort();

	/* an empty nonce would mean "random": keep runs reproducible */
	if (auth_scram_client_init_user(s, user, password, *nonce ? nonce : "fuzznonce") != 0) {
		FUZZ_CHECK(s->state == AUTH_SCRAM_FAILED);
		goto done;
	}
	FUZZ_CHECK(s->state == AUTH_SCRAM_INIT);

	char cfm[2 * AUTH_SCRAM_MAX_MSG];
	size_t cfm_cap = (flags & 8) ? cap % sizeof(cfm) : sizeof(cfm);
	int n = auth_scram_client_first(s, cfm, cfm_cap);
	if (n < 0) {
		FUZZ_CHECK(s->state == AUTH_SCRAM_FAILED);
		goto done;
	}
	FUZZ_CHECK((size_t)n < cfm_cap && strlen(cfm) == (size_t)n);
	FUZZ_CHECK(strncmp(cfm, "n,,n=", 5) == 0 && strstr(cfm, ",r=") != NULL);

	n = auth_scram_client_final(s, first, first_len, out, cap);
	if (n < 0) {
		FUZZ_CHECK(s->state == AUTH_SCRAM_FAILED);
		FUZZ_CHECK(cap == 0 || out[0] == '\0');
		goto done;
	}
	/* accepted: "c=biws,r=<the server's nonce>,p=<44 base64 characters>" */
	FUZZ_CHECK(s->state == AUTH_SCRAM_SENT_FINAL);
	FUZZ_CHECK(first_len > 2 && first_len <= AUTH_SCRAM_MAX_MSG);
	FUZZ_CHECK((size_t)n < cap && strlen(out) == (size_t)n);
	const char *comma = memchr(first, ',', first_len);
	FUZZ_CHECK(comma != NULL);
	size_t nonce_len = (size_t)(comma - first) - 2;
	FUZZ_CHECK((size_t)n == 9 + nonce_len + 3 + 44);
	FUZZ_CHECK(memcmp(out, "c=biws,r=", 9) == 0 && memcmp(out + 9, first + 2, nonce_len) == 0);
	FUZZ_CHECK(memcmp(out + 9 + nonce_len, ",p=", 3) == 0);
	FUZZ_CHECK(is_b64_text(out + 12 + nonce_len, 44));
	FUZZ_CHECK(s->auth_message_len < sizeof(s->auth_message));

	if (flags & 1) {
		size_t len = honest_server_final(s, honest);
		bool spoiled = false;
		if ((flags & 2) && final_len > 0) {
			size_t k = final_len < sizeof(honest) - len ? final_len
								    : sizeof(honest) - len;
			memcpy(honest + len, final, k);
			len += k;
			spoiled = true;
		}
		if ((flags & 4) && final_len > 0) {
			size_t bit = final_raw[0] % (8 * len);
			honest[bit / 8] ^= (char)(1u << (bit % 8));
			spoiled = true;
		}
		int rc = auth_scram_client_verify(s, honest, len);
		if (!spoiled)
			FUZZ_CHECK(rc == 0 && s->state == AUTH_SCRAM_DONE);
		else if (rc == 0)
			/* a changed message may only pass if it decodes to the same
			 * signature, which base64's unused low bits of the final
			 * character allow; RFC 4648 leaves that to the decoder */
			FUZZ_CHECK(s->state == AUTH_SCRAM_DONE && !(flags & 2));
		else
			FUZZ_CHECK(s->state == AUTH_SCRAM_FAILED);
	} else {
		int rc = auth_scram_client_verify(s, final, final_len);
		FUZZ_CHECK(s->state == (rc == 0 ? AUTH_SCRAM_DONE : AUTH_SCRAM_FAILED));
	}
	/* a finished exchange refuses to go on */
	FUZZ_CHECK(auth_scram_client_verify(s, final, final_len) != 0);
done:
	free(final);
	free(first);
	free(out);
	free(s);
}

static void drill_md5(struct fuzz_in *in)
{
	char user[200], password[300], a[200], b[200];
	uint8_t salt[4];
	fuzz_cstr(in, user, sizeof(user));
	fuzz_cstr(in, password, sizeof(password));
	for (int i = 0; i < 4; i++)
		salt[i] = fuzz_u8(in);
	char out[36];
	auth_md5_response(user, password, salt, out);
	FUZZ_CHECK(strlen(out) == 35 && memcmp(out, "md5", 3) == 0);
	for (int i = 3; i < 35; i++)
		FUZZ_CHECK((out[i] >= '0' && out[i] <= '9') || (out[i] >= 'a' && out[i] <= 'f'));

	fuzz_cstr(in, a, sizeof(a));
	fuzz_cstr(in, b, sizeof(b));
	FUZZ_CHECK(auth_secret_equal(a, b) == (strcmp(a, b) == 0));
	FUZZ_CHECK(auth_secret_equal(a, a) && !auth_secret_equal(a, NULL));
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	struct fuzz_in in = { data, size };
	if (fuzz_u8(&in) % 2 == 0)
		drill_scram(&in);
	else
		drill_md5(&in);
	return 0;
}
