/* Building, copying and wiping struct auth_proof. */
#include "auth/proof.h"

#include "auth/auth.h"

#include <stdlib.h>
#include <string.h>

#include <openssl/crypto.h>
#include <openssl/evp.h>

/* "md5" + hex(md5(a + b)) into out. */
static int md5_text(const void *a, size_t alen, const void *b, size_t blen, char out[36])
{
	static const char hex[] = "0123456789abcdef";
	uint8_t d[16];
	unsigned int n = 0;
	EVP_MD_CTX *ctx = EVP_MD_CTX_new();
	int ok = ctx && EVP_DigestInit_ex(ctx, EVP_md5(), NULL) == 1
		&& EVP_DigestUpdate(ctx, a, alen) == 1 && EVP_DigestUpdate(ctx, b, blen) == 1
		&& EVP_DigestFinal_ex(ctx, d, &n) == 1 && n == 16;
	EVP_MD_CTX_free(ctx);
	out[0] = '\0';
	if (!ok)
		return -1;
	memcpy(out, "md5", 3);
	for (int i = 0; i < 16; i++) {
		out[3 + 2 * i] = hex[d[i] >> 4];
		out[4 + 2 * i] = hex[d[i] & 15];
	}
	out[35] = '\0';
	OPENSSL_cleanse(d, sizeof(d));
	return 0;
}

int auth_md5_response_from_hash(const char *hash, const uint8_t salt[4], char out[36])
{
	out[0] = '\0';
	if (!hash || strlen(hash) != 35 || strncmp(hash, "md5", 3) != 0)
		return -1;
	return md5_text(hash + 3, 32, salt, 4, out);
}

struct auth_proof *auth_proof_from_cleartext(const char *user, const char *password)
{
	struct auth_proof *p = calloc(1, sizeof(*p));
	if (!p)
		return NULL;
	p->method = AUTH_METHOD_PLAIN;
	p->cleartext = strdup(password);
	if (!p->cleartext) {
		free(p);
		return NULL;
	}
	auth_md5_hash(user, password, p->md5);
	p->has_md5 = p->md5[0] != '\0';
	return p;
}

struct auth_proof *auth_proof_dup(const struct auth_proof *p)
{
	if (!p)
		return NULL;
	struct auth_proof *q = malloc(sizeof(*q));
	if (!q)
		return NULL;
	*q = *p;
	if (p->cleartext && !(q->cleartext = strdup(p->cleartext))) {
		OPENSSL_cleanse(q, sizeof(*q));
		free(q);
		return NULL;
	}
	return q;
}

bool auth_proof_same(const struct auth_proof *a, const struct auth_proof *b)
{
	if (!a || !b)
		return a == b;
	if (!a->cleartext != !b->cleartext
	    || (a->cleartext && strcmp(a->cleartext, b->cleartext) != 0))
		return false;
	if (a->has_md5 != b->has_md5 || (a->has_md5 && strcmp(a->md5, b->md5) != 0))
		return false;
	if (a->has_scram != b->has_scram)
		return false;
	return !a->has_scram
		|| (CRYPTO_memcmp(a->client_key, b->client_key, 32) == 0
		    && CRYPTO_memcmp(a->server_key, b->server_key, 32) == 0
		    && a->salt_len == b->salt_len && a->iterations == b->iterations
		    && memcmp(a->salt, b->salt, a->salt_len) == 0);
}

void auth_proof_free(struct auth_proof *p)
{
	if (!p)
		return;
	if (p->cleartext) {
		OPENSSL_cleanse(p->cleartext, strlen(p->cleartext));
		free(p->cleartext);
	}
	OPENSSL_cleanse(p, sizeof(*p));
	free(p);
}
