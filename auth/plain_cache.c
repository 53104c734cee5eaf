/* The cache of checked cleartext passwords: see plain_cache.h. */
#include "auth/plain_cache.h"

#include <string.h>

#include <openssl/crypto.h>
#include <openssl/rand.h>

#include "auth/util.h"

void auth_plain_cache_init(struct auth_plain_cache *c)
{
	memset(c, 0, sizeof(*c));
	c->keyed = RAND_bytes(c->key, sizeof(c->key)) == 1;
}

void auth_plain_cache_clear(struct auth_plain_cache *c)
{
	OPENSSL_cleanse(c, sizeof(*c));
}

/* HMAC(key, iterations (4 bytes) || salt length (1 byte) || salt ||
 * password): the fixed-size fields first, so no two inputs share a text. */
static bool mac_of(const struct auth_plain_cache *c, const char *password,
		   const struct auth_scram_verifier *v, uint8_t out[AUTH_KEY_LEN])
{
	uint8_t buf[4 + 1 + AUTH_SCRAM_SALT_MAX + AUTH_PASSWORD_MAX];
	size_t plen = strlen(password);
	if (!c->keyed || v->salt_len > AUTH_SCRAM_SALT_MAX || plen > AUTH_PASSWORD_MAX)
		return false;
	uint32_t it = (uint32_t)v->iterations;
	size_t n = 0;
	buf[n++] = (uint8_t)(it >> 24);
	buf[n++] = (uint8_t)(it >> 16);
	buf[n++] = (uint8_t)(it >> 8);
	buf[n++] = (uint8_t)it;
	buf[n++] = (uint8_t)v->salt_len;
	memcpy(buf + n, v->salt, v->salt_len);
	n += v->salt_len;
	memcpy(buf + n, password, plen);
	n += plen;
	bool ok = auth_hmac256(c->key, sizeof(c->key), buf, n, out) == 0;
	OPENSSL_cleanse(buf, n);
	return ok;
}

static size_t slot_of(const uint8_t mac[AUTH_KEY_LEN])
{
	return ((size_t)mac[0] | (size_t)mac[1] << 8) % AUTH_PLAIN_CACHE_SLOTS;
}

bool auth_plain_cache_hit(const struct auth_plain_cache *c, const char *password,
			  const struct auth_scram_verifier *v)
{
	uint8_t mac[AUTH_KEY_LEN];
	if (!mac_of(c, password, v, mac))
		return false;
	const struct auth_plain_entry *e = &c->slots[slot_of(mac)];
	bool hit = e->used && CRYPTO_memcmp(e->mac, mac, sizeof(mac)) == 0
		&& CRYPTO_memcmp(e->stored_key, v->stored_key, AUTH_KEY_LEN) == 0
		&& CRYPTO_memcmp(e->server_key, v->server_key, AUTH_KEY_LEN) == 0;
	OPENSSL_cleanse(mac, sizeof(mac));
	return hit;
}

void auth_plain_cache_put(struct auth_plain_cache *c, const char *password,
			  const struct auth_scram_verifier *v)
{
	uint8_t mac[AUTH_KEY_LEN];
	if (!mac_of(c, password, v, mac))
		return;
	struct auth_plain_entry *e = &c->slots[slot_of(mac)];
	e->used = true;
	memcpy(e->mac, mac, sizeof(mac));
	memcpy(e->stored_key, v->stored_key, AUTH_KEY_LEN);
	memcpy(e->server_key, v->server_key, AUTH_KEY_LEN);
	OPENSSL_cleanse(mac, sizeof(mac));
}
