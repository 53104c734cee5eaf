/* Shared helpers of auth/: see util.h. */
#include "auth/util.h"

#include <openssl/evp.h>
#include <openssl/hmac.h>
#include <openssl/rand.h>

#include "auth/auth.h"

static const char hexdigits[] = "0123456789abcdef";

void auth_to_hex(const uint8_t *in, size_t n, char *out)
{
	for (size_t i = 0; i < n; i++) {
		out[2 * i] = hexdigits[in[i] >> 4];
		out[2 * i + 1] = hexdigits[in[i] & 15];
	}
}

int auth_md5_two(const void *a, size_t alen, const void *b, size_t blen, uint8_t out[16])
{
	EVP_MD_CTX *ctx = EVP_MD_CTX_new();
	unsigned int olen = 0;
	int ok = ctx && EVP_DigestInit_ex(ctx, EVP_md5(), NULL) == 1
		&& EVP_DigestUpdate(ctx, a, alen) == 1 && EVP_DigestUpdate(ctx, b, blen) == 1
		&& EVP_DigestFinal_ex(ctx, out, &olen) == 1 && olen == 16;
	EVP_MD_CTX_free(ctx);
	return ok ? 0 : -1;
}

bool auth_scram_printable(char c)
{
	return c >= 0x21 && c <= 0x7e && c != ',';
}

static bool b64_char(char c)
{
	return (c >= 'A' && c <= 'Z') || (c >= 'a' && c <= 'z') || (c >= '0' && c <= '9')
		|| c == '+' || c == '/';
}

/* EVP_DecodeBlock alone would skip whitespace and count pad characters as
 * zero bytes, so the text is checked first and the real length computed. */
int auth_b64_decode(const char *in, size_t len, uint8_t *out, size_t cap)
{
	if (len == 0 || len % 4 != 0 || len > (size_t)1 << 20 || len / 4 * 3 > cap)
		return -1;
	size_t pad = 0;
	if (in[len - 1] == '=')
		pad = in[len - 2] == '=' ? 2 : 1;
	for (size_t i = 0; i < len - pad; i++)
		if (!b64_char(in[i]))
			return -1;
	int n = EVP_DecodeBlock(out, (const unsigned char *)in, (int)len);
	if (n < 0 || (size_t)n != len / 4 * 3)
		return -1;
	return n - (int)pad;
}

int auth_b64_encode(const uint8_t *in, size_t n, char *out, size_t cap)
{
	if (AUTH_B64_LEN(n) + 1 > cap)
		return -1;
	return EVP_EncodeBlock((unsigned char *)out, in, (int)n);
}

int auth_hmac256(const uint8_t *key, size_t klen, const void *data, size_t dlen,
		 uint8_t out[AUTH_SHA256_LEN])
{
	unsigned int olen = 0;
	if (!HMAC(EVP_sha256(), key, (int)klen, data, dlen, out, &olen) || olen != AUTH_SHA256_LEN)
		return -1;
	return 0;
}

int auth_sha256(const void *data, size_t len, uint8_t out[AUTH_SHA256_LEN])
{
	unsigned int olen = 0;
	if (EVP_Digest(data, len, out, &olen, EVP_sha256(), NULL) != 1 || olen != AUTH_SHA256_LEN)
		return -1;
	return 0;
}

int auth_random(uint8_t *out, size_t n)
{
	return RAND_bytes(out, (int)n) == 1 ? 0 : -1;
}
