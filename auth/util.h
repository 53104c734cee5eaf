/* Helpers the auth/ files share (not for other layers): hex, strict
 * base64, SHA-256 and HMAC-SHA-256 over libcrypto. */
#ifndef PGCRAB_AUTH_UTIL_H
#define PGCRAB_AUTH_UTIL_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#define AUTH_SHA256_LEN 32
#define AUTH_B64_LEN(n) (4 * (((n) + 2) / 3)) /* base64 text length of n bytes */

void auth_to_hex(const uint8_t *in, size_t n, char *out);
/* md5(a || b) into out; -1 if libcrypto fails */
int auth_md5_two(const void *a, size_t alen, const void *b, size_t blen, uint8_t out[16]);

/* RFC 5802 "printable": visible ASCII but ','. */
bool auth_scram_printable(char c);

/* Strict base64: non-empty, a multiple of 4 long, alphabet only, '=' only as
 * one or two final pad characters. Returns the decoded length, or -1 if the
 * text is invalid or would not fit in cap. */
int auth_b64_decode(const char *in, size_t len, uint8_t *out, size_t cap);
/* Writes base64 of in (with a NUL) at out if it fits in cap; returns the
 * text length or -1. */
int auth_b64_encode(const uint8_t *in, size_t n, char *out, size_t cap);

int auth_hmac256(const uint8_t *key, size_t klen, const void *data, size_t dlen,
		 uint8_t out[AUTH_SHA256_LEN]);
int auth_sha256(const void *data, size_t len, uint8_t out[AUTH_SHA256_LEN]);

#endif
