/* The server side of SCRAM-SHA-256 (RFC 5802, RFC 7677) as PostgreSQL
 * runs it for its clients, and SCRAM-SHA-256-PLUS with tls-server-end-point
 * channel binding: a state machine fed with the bodies of the client's
 * SASLInitialResponse and SASLResponse messages; no I/O. */
#ifndef PGCRAB_AUTH_SCRAM_SERVER_H
#define PGCRAB_AUTH_SCRAM_SERVER_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "auth/auth.h"
#include "auth/secret.h"

#define AUTH_SCRAM_CB_MAX 64 /* tls-server-end-point: a hash of up to SHA-512 */

enum auth_scram_server_state {
	AUTH_SCRAM_SRV_INITIAL, /* waiting for SASLInitialResponse */
	AUTH_SCRAM_SRV_FIRST,   /* SASLInitialResponse had no data: client-first next */
	AUTH_SCRAM_SRV_FINAL,   /* server-first sent, waiting for client-final */
	AUTH_SCRAM_SRV_DONE,    /* proof checked and server-final written */
	AUTH_SCRAM_SRV_FAILED,
};

enum auth_scram_result {
	AUTH_SCRAM_CONTINUE, /* out: AuthenticationSASLContinue data (may be empty) */
	AUTH_SCRAM_SUCCESS,  /* out: AuthenticationSASLFinal data ("v=...") */
	AUTH_SCRAM_REJECT,   /* wrong proof, unknown user, no verifier: 28P01 */
	AUTH_SCRAM_ERROR,    /* refused message: sqlstate, message, detail say what to send */
};

struct auth_scram_server {
	enum auth_scram_server_state state;
	bool mock;       /* unknown user or no verifier: fail at the proof */
	bool cb_offered; /* SCRAM-SHA-256-PLUS is offered (the connection is TLS) */
	bool cb_used;    /* ...and the client chose it */
	char cb_flag;    /* the gs2 header's 'n', 'y' or 'p' */
	struct auth_scram_verifier v;
	uint8_t cb_data[AUTH_SCRAM_CB_MAX];
	size_t cb_len;
	char server_nonce[64];
	char nonce[2 * AUTH_SCRAM_MAX_MSG]; /* client's + server's */
	char gs2_header[AUTH_SCRAM_MAX_MSG + 1];
	char client_first_bare[AUTH_SCRAM_MAX_MSG + 1];
	char server_first[AUTH_SCRAM_MAX_MSG + 1];
	/* ClientProof XOR ClientSignature once the proof checked: what logs
	 * in to a server holding the same verifier without the password */
	uint8_t client_key[AUTH_KEY_LEN];
	/* AUTH_SCRAM_ERROR: what PostgreSQL sends (FATAL) */
	const char *sqlstate, *message;
	char detail[160];
};

/* Starts an exchange. v: the user's verifier, or NULL for an unknown user
 * or one without a SCRAM secret: then a mock exchange that fails at the
 * proof like a wrong password, with the verifier auth_scram_mock_verifier
 * derives from mock_key (NULL: a per-process random key). cb/cb_len: the
 * tls-server-end-point hash of our certificate when the connection is TLS
 * (PLUS is then offered), else NULL/0. server_nonce: NULL for random, or a
 * fixed printable text (tests). 0, or -1 (random bytes unavailable, bad
 * arguments). */
int auth_scram_server_init(struct auth_scram_server *s, const struct auth_scram_verifier *v,
			   const uint8_t *mock_key, const char *user, const uint8_t *cb,
			   size_t cb_len, const char *server_nonce)
	__attribute__((warn_unused_result));

/* The mock verifier of a user PgCrab does not know: the salt a cleartext
 * user of that name would get from the same key (stable while the key is,
 * unguessable without it), the default iteration count, keys that match no
 * password. key NULL: a per-process random key. 0, or -1. */
int auth_scram_mock_verifier(const uint8_t *key, const char *user, struct auth_scram_verifier *v)
	__attribute__((warn_unused_result));

/* The AuthenticationSASL mechanism list: NUL-terminated names and a final
 * NUL. Returns its length (with every NUL), or 0 if cap is too small. */
size_t auth_scram_server_mechanisms(const struct auth_scram_server *s, uint8_t *out, size_t cap);

/* Feeds the body of the next client message (SASLInitialResponse first,
 * then SASLResponse) and writes the answer's data into out (cap at least
 * AUTH_SCRAM_MAX_MSG), its length in *out_len. */
enum auth_scram_result auth_scram_server_step(struct auth_scram_server *s, const uint8_t *body,
					      size_t len, char *out, size_t cap, size_t *out_len);

/* Wipes every secret (call when the exchange is over). */
void auth_scram_server_wipe(struct auth_scram_server *s);

#endif
