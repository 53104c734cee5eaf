/* Cleartext passwords a client sent that a SCRAM verifier accepted, so
 * that the next login of the same role with the same password is checked
 * without PBKDF2. One per worker, no locks. An entry is keyed by
 * HMAC-SHA-256 under a random key of the cache's own (drawn at init) of
 * (iterations, salt, password): neither the password nor anything an
 * attacker could test a guess against offline without that key is kept.
 * It holds the StoredKey and ServerKey that password derived with that
 * salt and count; a login hits only if they are the verifier's. Only
 * successes are put in: a wrong password always costs its PBKDF2. No I/O. */
#ifndef PGCRAB_AUTH_PLAIN_CACHE_H
#define PGCRAB_AUTH_PLAIN_CACHE_H

#include <stdbool.h>
#include <stdint.h>

#include "auth/secret.h"

#define AUTH_PLAIN_CACHE_SLOTS 256 /* direct-mapped: a collision evicts */

struct auth_plain_entry {
	bool used;
	uint8_t mac[AUTH_KEY_LEN];
	uint8_t stored_key[AUTH_KEY_LEN];
	uint8_t server_key[AUTH_KEY_LEN];
};

struct auth_plain_cache {
	bool keyed; /* false: no random key could be drawn, nothing is cached */
	uint8_t key[AUTH_KEY_LEN];
	struct auth_plain_entry slots[AUTH_PLAIN_CACHE_SLOTS];
};

/* Draws the cache's key; without one the cache stays empty (every check
 * then runs PBKDF2). */
void auth_plain_cache_init(struct auth_plain_cache *c);
/* Wipes every entry and the key. */
void auth_plain_cache_clear(struct auth_plain_cache *c);
/* password was checked against v before and v accepted it. */
bool auth_plain_cache_hit(const struct auth_plain_cache *c, const char *password,
			  const struct auth_scram_verifier *v);
/* password derived v's keys (with v's salt and count): remember it. */
void auth_plain_cache_put(struct auth_plain_cache *c, const char *password,
			  const struct auth_scram_verifier *v);

#endif
