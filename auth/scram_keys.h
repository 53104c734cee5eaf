/* SCRAM-SHA-256 with keys instead of a password: PgCrab logging in to a
 * server as a client's role with the ClientKey and ServerKey that client's
 * own SCRAM login yielded (so no cleartext is ever needed). Verifiers are
 * parsed and derived in auth/secret.h. No I/O. */
#ifndef PGCRAB_SCRAM_KEYS_H
#define PGCRAB_SCRAM_KEYS_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "auth/auth.h"
#include "auth/secret.h"

#define AUTH_SCRAM_KEY_LEN 32

/* Client side with keys. */
struct auth_scram_keys {
	enum auth_scram_state state;
	uint8_t client_key[AUTH_SCRAM_KEY_LEN];
	uint8_t server_key[AUTH_SCRAM_KEY_LEN];
	char salt_b64[4 * ((AUTH_SCRAM_SALT_MAX + 2) / 3) + 1];
	int iterations;
	char client_nonce[64];
	char client_first_bare[96];
	char auth_message[3 * AUTH_SCRAM_MAX_MSG];
	size_t auth_message_len;
};

/* Starts an exchange with the keys a client proved, made with salt and
 * iterations: the server must offer exactly those. nonce NULL: random.
 * -1 on bad arguments or no random bytes. Below, -1 ends the exchange
 * (state AUTH_SCRAM_FAILED, keys wiped). */
int auth_scram_client_init_keys(struct auth_scram_keys *s, const uint8_t client_key[32],
				const uint8_t server_key[32], const uint8_t *salt, size_t salt_len,
				int iterations, const char *nonce)
	__attribute__((warn_unused_result));
/* client-first-message ("n,,n=,r=<nonce>") into out; its length or -1. */
int auth_scram_keys_first(struct auth_scram_keys *s, char *out, size_t cap)
	__attribute__((warn_unused_result));
/* server-first in, client-final out (its length). -1 with why set: a
 * malformed message, or a salt or iteration count other than the keys'
 * (the role's password changed since its client proved it). */
int auth_scram_keys_final(struct auth_scram_keys *s, const char *server_first, size_t len,
			  char *out, size_t cap, char *why, size_t whylen)
	__attribute__((warn_unused_result));
/* server-final: 0 if the server's signature (made with ServerKey) matches. */
int auth_scram_keys_verify(struct auth_scram_keys *s, const char *server_final, size_t len)
	__attribute__((warn_unused_result));

#endif
