/* Authentication math and message handling, no I/O: PgCrab logging into a
 * PostgreSQL server with md5 or SCRAM-SHA-256 (client side of SCRAM).
 * Hashes, HMAC, PBKDF2 and random bytes come from OpenSSL's libcrypto. */
#ifndef PGCRAB_AUTH_H
#define PGCRAB_AUTH_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

/* PostgreSQL's md5 password: "md5" + hex(md5(hex(md5(password + user)) + salt)).
 * out receives 35 characters and a NUL. */
void auth_md5_response(const char *user, const char *password, const uint8_t salt[4], char out[36]);
/* The md5 hash PostgreSQL stores: "md5" + hex(md5(password + user)). */
void auth_md5_hash(const char *user, const char *password, char out[36]);
/* "md5" + hex(md5(hex part of hash + salt)): what a client answers to
 * AuthenticationMD5Password, from the stored hash. out is "" if hash is not
 * 35 characters long. */
void auth_md5_salted(const char *hash, const uint8_t salt[4], char out[36]);

#define AUTH_SCRAM_NONCE_LEN 24   /* raw bytes before base64 */
#define AUTH_SCRAM_MAX_MSG   1024 /* longest SCRAM message PgCrab builds or accepts */
/* larger i= from a server is refused; the fuzz build lowers it (see Makefile)
 * so PBKDF2 does not drown the parser in hashing */
#ifndef AUTH_SCRAM_MAX_ITERATIONS
#define AUTH_SCRAM_MAX_ITERATIONS 1000000
#endif

enum auth_scram_state {
	AUTH_SCRAM_INIT,       /* nothing sent yet */
	AUTH_SCRAM_SENT_FIRST, /* client-first sent, waiting for server-first */
	AUTH_SCRAM_SENT_FINAL, /* client-final sent, waiting for server-final */
	AUTH_SCRAM_DONE,       /* server signature verified */
	AUTH_SCRAM_FAILED,
};

/* The SaltedPassword of one password, salt and count: a server sends the
 * same salt and count at every login of a role, so with this kept (one
 * per pool) PBKDF2 runs once, not at every server login. The password is
 * kept only as an HMAC under a key of this process's. */
struct auth_scram_salted_cache {
	bool valid;
	uint8_t password_mac[32];
	int iterations;
	size_t salt_len;
	uint8_t salt[64];
	uint8_t salted_password[32];
};

struct auth_scram_client {
	enum auth_scram_state state;
	struct auth_scram_salted_cache *cache; /* set by the caller after init, or NULL */
	char password[256];
	char client_nonce[64]; /* base64 text */
	char client_first_bare[128];
	uint8_t salted_password[32];
	char auth_message[3 * AUTH_SCRAM_MAX_MSG];
	size_t auth_message_len;
};

/* Starts an exchange. nonce may be NULL (random) or a fixed text (tests).
 * Returns 0, or -1 if the password is too long, the fixed nonce is not
 * printable ASCII without ',' or too long, or random bytes are unavailable.
 * The password goes through SASLprep as PostgreSQL applies it.
 * In all functions below, -1 ends the exchange: the state becomes
 * AUTH_SCRAM_FAILED and the secrets in s are wiped. */
int auth_scram_client_init(struct auth_scram_client *s, const char *password, const char *nonce)
	__attribute__((warn_unused_result));

/* Same, but sends user as the SCRAM name ("n=user,r=...", with ',' and '='
 * escaped). Only for tests against RFC vectors: PostgreSQL ignores the name,
 * and PgCrab sends an empty one like libpq. */
int auth_scram_client_init_user(struct auth_scram_client *s, const char *user, const char *password,
				const char *nonce) __attribute__((warn_unused_result));

/* Writes client-first-message ("n,,n=,r=<nonce>") into out, NUL-terminated;
 * returns its length or -1 if cap is too small. Body of SASLInitialResponse. */
int auth_scram_client_first(struct auth_scram_client *s, char *out, size_t cap)
	__attribute__((warn_unused_result));

/* Takes server-first-message (AuthenticationSASLContinue data, not NUL
 * terminated) and writes client-final-message into out, NUL-terminated.
 * Accepts exactly "r=<nonce>,s=<base64>,i=<1..AUTH_SCRAM_MAX_ITERATIONS>".
 * Returns its length,
 * or -1 on a malformed, oversized or non-extending nonce, bad salt or
 * iteration count, or small cap. */
int auth_scram_client_final(struct auth_scram_client *s, const char *server_first, size_t len,
			    char *out, size_t cap) __attribute__((warn_unused_result));

/* Checks server-final-message (AuthenticationSASLFinal data): 0 if the
 * server signature matches, -1 otherwise (including "e=" errors). */
int auth_scram_client_verify(struct auth_scram_client *s, const char *server_final, size_t len)
	__attribute__((warn_unused_result));

/* Random bytes from libcrypto: 0, or -1 if none can be drawn. */
int auth_random(uint8_t *out, size_t n) __attribute__((warn_unused_result));

/* Comparison of two NUL-terminated secrets whose time depends only on their
 * lengths, never on where they differ. NULL equals nothing. */
bool auth_secret_equal(const char *a, const char *b);

#endif
