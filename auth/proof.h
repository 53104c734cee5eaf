/* What a client proved at login, kept so that PgCrab can log in to a
 * server as that client's own role ([shard.*] without a user). Which
 * fields are known depends on how the client logged in: a cleartext
 * password gives everything; an md5 login the md5 hash; a SCRAM login
 * the keys it proved against (ClientKey is recovered from the client's
 * proof, so the server's SCRAM needs no cleartext). */
#ifndef PGCRAB_PROOF_H
#define PGCRAB_PROOF_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

enum auth_method {
	AUTH_METHOD_TRUST, /* nothing proved (auth_type = trust) */
	AUTH_METHOD_PLAIN, /* cleartext password message */
	AUTH_METHOD_MD5,
	AUTH_METHOD_SCRAM,
};

#define AUTH_PROOF_SALT_MAX 64

struct auth_proof {
	enum auth_method method;
	char *cleartext; /* NULL when unknown */
	bool has_md5;
	char md5[36]; /* "md5" + 32 hex of md5(password + user), NUL-terminated */
	bool has_scram;
	uint8_t client_key[32], server_key[32], stored_key[32];
	uint8_t salt[AUTH_PROOF_SALT_MAX];
	size_t salt_len;
	int iterations;
};

/* A proof from a cleartext password (method PLAIN): cleartext and md5
 * hash filled in. NULL if out of memory. */
struct auth_proof *auth_proof_from_cleartext(const char *user, const char *password);
/* A copy (NULL if p is NULL or memory is out). */
struct auth_proof *auth_proof_dup(const struct auth_proof *p);
/* true if a and b would log in alike (both NULL counts as equal). */
bool auth_proof_same(const struct auth_proof *a, const struct auth_proof *b);
/* Wipes every secret and frees; NULL is fine. */
void auth_proof_free(struct auth_proof *p);

/* The md5 login response from a stored hash "md5<32 hex>" alone:
 * "md5" + hex(md5(<32 hex> + salt)). -1 if hash is not such a hash. */
int auth_md5_response_from_hash(const char *hash, const uint8_t salt[4], char out[36])
	__attribute__((warn_unused_result));

#endif
