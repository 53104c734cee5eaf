/* What PgCrab knows of a client's password, in the forms PostgreSQL keeps
 * in pg_authid (cleartext, md5 hash, SCRAM-SHA-256 verifier); SASLprep;
 * PgBouncer's userlist.txt; and what a successful login proved. No I/O. */
#ifndef PGCRAB_AUTH_SECRET_H
#define PGCRAB_AUTH_SECRET_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#define AUTH_KEY_LEN        32 /* SHA-256 */
#define AUTH_SCRAM_SALT_MAX 64 /* PostgreSQL makes 16-byte salts */
#define AUTH_SCRAM_SALT_LEN 16 /* salts PgCrab makes */
/* for verifiers PgCrab makes; the fuzz build lowers it (see Makefile) */
#ifndef AUTH_SCRAM_DEFAULT_ITERATIONS
#define AUTH_SCRAM_DEFAULT_ITERATIONS 4096
#endif
#define AUTH_PASSWORD_MAX 1024 /* longest password PgCrab hashes, in bytes */

/* StoredKey/ServerKey with the salt and iteration count they were made with. */
struct auth_scram_verifier {
	int iterations;
	size_t salt_len;
	uint8_t salt[AUTH_SCRAM_SALT_MAX];
	uint8_t stored_key[AUTH_KEY_LEN];
	uint8_t server_key[AUTH_KEY_LEN];
};

enum auth_secret_kind {
	AUTH_SECRET_CLEARTEXT, /* the password itself (kept by the owner, not here) */
	AUTH_SECRET_MD5,       /* "md5" + hex(md5(password + user)) */
	AUTH_SECRET_SCRAM,     /* a SCRAM-SHA-256 verifier */
};

struct auth_secret {
	enum auth_secret_kind kind;
	char md5[36]; /* AUTH_SECRET_MD5: the hash as text */
	/* AUTH_SECRET_SCRAM, or a cleartext whose verifier was computed once
	 * at load (auth_secret_add_verifier) so logins never run PBKDF2 */
	bool has_scram;
	struct auth_scram_verifier scram;
};

/* Reads a configured password: "md5" + 32 lower-case hex digits is an md5
 * hash, "SCRAM-SHA-256$<iter>:<salt>$<StoredKey>:<ServerKey>" a verifier,
 * anything else cleartext. A text that starts like a hash or a verifier
 * but is malformed is refused (-1, why says how) rather than taken as a
 * cleartext password nobody meant. */
int auth_secret_parse(const char *text, struct auth_secret *out, char *why, size_t whylen)
	__attribute__((warn_unused_result));

/* For a cleartext secret: computes its verifier with AUTH_SCRAM_DEFAULT_
 * ITERATIONS (one PBKDF2) and the salt auth_salt_for(key, user), or a
 * random one if key is NULL. 0, or -1. */
int auth_secret_add_verifier(struct auth_secret *s, const char *cleartext, const uint8_t *key,
			     const char *user) __attribute__((warn_unused_result));

/* A salt for user under key: HMAC-SHA-256(key, user) (the first
 * AUTH_SCRAM_SALT_LEN bytes are used). Real and mock verifiers made from
 * one key look alike, and stay the same from load to load while the key
 * does. 0, or -1. */
int auth_salt_for(const uint8_t key[AUTH_KEY_LEN], const char *user, uint8_t out[AUTH_KEY_LEN])
	__attribute__((warn_unused_result));

/* key = SHA-256(key || data): folds secret material into a key. */
void auth_key_mix(uint8_t key[AUTH_KEY_LEN], const void *data, size_t len);

/* SaltedPassword of SASLprep(password) (raw bytes where SASLprep does not
 * apply), then ClientKey (if client_key is not NULL), StoredKey and
 * ServerKey into v, which must hold salt and iterations. 0, or -1. */
int auth_scram_derive(const char *password, struct auth_scram_verifier *v, uint8_t *client_key)
	__attribute__((warn_unused_result));

/* A cleartext password a client sent, checked against the stored secret
 * (cleartext: compared; md5: hashed with user; SCRAM: derived with the
 * verifier's salt and count, as PostgreSQL does: one PBKDF2, which PgCrab
 * runs on its auth hasher thread, never on a worker). stored_cleartext is
 * used for AUTH_SECRET_CLEARTEXT only. */
bool auth_plain_check(const struct auth_secret *s, const char *stored_cleartext, const char *user,
		      const char *given);

/* SASLprep (RFC 4013) as PostgreSQL applies it to passwords: ASCII is kept
 * as is; otherwise GNU libidn's SASLprep profile with unassigned code points
 * refused; if the text is not UTF-8, or SASLprep refuses it or maps it to
 * nothing, the raw bytes are used. Writes the result with a NUL into out;
 * -1 if it does not fit in cap. */
int auth_saslprep(const char *in, char *out, size_t cap) __attribute__((warn_unused_result));

/* PgBouncer's userlist.txt: one user a line, `"name" "password"` (a '"'
 * inside a field is written ""), anything after the second field ignored;
 * blank lines and lines starting with ';' or '#' skipped. Calls add for
 * each user; stops at its first non-zero return (add sets why). Returns
 * 0, or -1 with *bad_line and why for the first malformed line (why never echoes a
 * password). */
typedef int (*auth_userlist_fn)(void *arg, const char *user, const char *password, char *why,
				size_t whylen);
int auth_userlist_parse(const char *text, size_t len, auth_userlist_fn add, void *arg,
			int *bad_line, char *why, size_t whylen)
	__attribute__((warn_unused_result));

#endif
