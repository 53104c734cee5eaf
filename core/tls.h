/* TLS on a connection, run over the worker's io_uring: OpenSSL reads the
 * ciphertext the ring received from memory and writes what it sends into a
 * buffer the ring then sends; nothing on a worker ever blocks. The owner
 * of a connection sees plaintext only, through the same conn contract as
 * without TLS (on_recv counts plaintext bytes appended to rx, on_sent
 * reports its TX or FORWARD send). A connection without TLS pays one
 * branch per operation (c->tls).
 *
 * Certificates and keys live in contexts built from a configuration
 * (tls_configure) and rebuilt by tls_reload; a connection keeps the context
 * it started with until it ends (OpenSSL counts the references). */
#ifndef PGCRAB_TLS_H
#define PGCRAB_TLS_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

struct conn;
struct cfg;
struct tls;

/* Builds the contexts the configuration asks for (client side if
 * client_tls_mode is not disable, one per shard whose server_tls_mode is
 * not disable) and makes them current. 0, or -1 with why in err. Safe
 * from any thread; connections started after it use the new contexts. */
int tls_configure(const struct cfg *cfg, char *err, size_t errlen)
	__attribute__((warn_unused_result));
/* Re-reads certificates, keys and CA files of cfg (a SIGHUP, or a test).
 * On an error the current contexts stay and err says why. */
int tls_reload(const struct cfg *cfg, char *err, size_t errlen) __attribute__((warn_unused_result));
/* Frees the current contexts (at exit). */
void tls_shutdown(void);
/* How many times contexts were made current (tests see a reload happen). */
unsigned tls_generation(void);

/* PgCrab accepts TLS from a client on c. direct: the client opened with a
 * ClientHello (PostgreSQL 17's sslnegotiation=direct), which must offer
 * ALPN "postgresql". Unconsumed bytes in c's rx are the start of the
 * handshake and move to the engine. 0, or -1 (no context, no memory). */
int tls_accept(struct conn *c, bool direct) __attribute__((warn_unused_result));
/* PgCrab starts TLS to shard (an index into the configuration's shards)
 * as a client, verifying as the shard's server_tls_mode says; host is
 * checked for verify-full. What the owner sends meanwhile waits for the
 * handshake. 0 or -1. */
int tls_connect(struct conn *c, int shard, const char *host) __attribute__((warn_unused_result));

/* The handshake is done and the connection carries application data. */
bool tls_established(const struct conn *c);
/* Why the TLS connection failed ("certificate verify failed: certificate
 * has expired"), or NULL when it did not. */
const char *tls_error(const struct conn *c);
/* The negotiated protocol and cipher ("TLSv1.3 TLS_AES_256_GCM_SHA384"),
 * for logs; "" without TLS. */
const char *tls_describe(const struct conn *c, char *buf, size_t len);

/* For client authentication (auth_type = cert, SCRAM channel binding):
 * the verified peer certificate's common name copied into buf (0), or -1
 * without TLS, without a certificate or a CN. */
int tls_peer_common_name(const struct conn *c, char *buf, size_t len);
/* tls-server-end-point channel binding data (RFC 5929) of the certificate
 * PgCrab presented on c: the hash of its DER form with the certificate's
 * signature hash (SHA-256 where that is MD5 or SHA-1). Its length, or -1. */
int tls_server_end_point(const struct conn *c, uint8_t *buf, size_t len);

/* The engine under core/conn.c, which calls these only when c->tls is set. */
int tls_arm_recv(struct conn *c) __attribute__((warn_unused_result));
bool tls_on_recv(struct conn *c, int *res, unsigned flags);
void tls_flush_tx(struct conn *c);
void tls_send(struct conn *c, bool internal_in_flight);
bool tls_on_send(struct conn *c, int *res);
void tls_free(struct conn *c);

/* For the fuzzer: a server (accepting) context made from a certificate
 * and key in PEM, not the configuration's. 0 or -1. */
int tls_configure_pem(const char *cert_pem, const char *key_pem);

#endif
