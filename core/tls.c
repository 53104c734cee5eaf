/* The TLS engine: OpenSSL over a BIO of our own whose reads take the
 * ciphertext the ring received (straight from the provided buffer) and
 * whose writes append to a send buffer the ring sends. Plaintext is
 * decrypted into the connection's rx and encrypted from its tx or from a
 * peer's rx, so the owner's contract (core/conn.h) does not change.
 *
 * OpenSSL keeps a partial record in its own buffer, so ciphertext is left
 * over only when rx is full; it then waits in a heap buffer (cin) and the
 * next recv is a NOP that lets the engine go on without the socket. */
#include "core/tls.h"

#include <errno.h>
#include <openssl/err.h>
#include <openssl/ssl.h>
#include <openssl/x509v3.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "config/cfg.h"
#include "core/conn.h"
#include "core/log.h"
#include "core/worker.h"

enum tls_state {
	TLS_HANDSHAKE, /* the owner's recv waits for the handshake to end */
	TLS_OPEN,      /* application data both ways */
	TLS_FAILED,    /* an alert is flushed, then the owner's recv fails */
	TLS_CLOSED,    /* the peer sent close_notify: the owner reads EOF */
};

struct tls {
	SSL *ssl;
	struct conn *c;
	enum tls_state state;
	bool accepting;             /* PgCrab is the TLS server (a client's connection) */
	bool direct;                /* direct TLS: ALPN "postgresql" required */
	bool flush_after_handshake; /* the owner queued tx during the handshake */
	bool nop_armed;             /* the armed "recv" is a NOP: bytes wait in cin */
	bool no_bufs;               /* the ring had no buffer: recv into cin */
	bool sending;               /* the send in flight reads out (else it is a
				       plaintext one from before TLS began: 'S') */
	int send_err;               /* SSL_write failed: the send completes with it */
	/* what the BIO's read serves now: a provided buffer or cin */
	const uint8_t *in;
	uint32_t in_left;
	uint8_t *cin; /* ciphertext received, not yet read by OpenSSL */
	uint32_t cin_len, cin_cap;
	/* ciphertext to send: [out_off, out_len); out_retired is what a send in
	 * flight reads if out grew meanwhile */
	uint8_t *out, *out_retired;
	uint32_t out_off, out_len, out_cap;
	char err[200];
};

/* ---- contexts --------------------------------------------------------------- */

struct tls_set {
	SSL_CTX *accept; /* NULL: client_tls_mode = disable */
	enum cfg_tls_mode client_mode;
	int n_shards;
	SSL_CTX **shard; /* NULL where server_tls_mode = disable */
	enum cfg_tls_mode *shard_mode;
};

static pthread_mutex_t set_lock = PTHREAD_MUTEX_INITIALIZER;
static struct tls_set *current;
static unsigned generation;
static BIO_METHOD *bio_method;
static pthread_once_t bio_once = PTHREAD_ONCE_INIT;

static void set_free(struct tls_set *s)
{
	if (!s)
		return;
	SSL_CTX_free(s->accept);
	for (int i = 0; i < s->n_shards; i++)
		SSL_CTX_free(s->shard[i]);
	free(s->shard);
	free(s->shard_mode);
	free(s);
}

/* OpenSSL's first queued error (the reason; later ones are its callers') as
 * text, the queue cleared. */
static void ssl_why(char *buf, size_t len)
{
	unsigned long first = ERR_get_error();
	while (ERR_get_error() != 0)
		;
	if (!buf)
		return;
	if (!first)
		snprintf(buf, len, "unknown error");
	else
		ERR_error_string_n(first, buf, len);
}

static int set_protocols(SSL_CTX *ctx, const char *text)
{
	unsigned bits = cfg_tls_protocols(text);
	int min = (bits & CFG_TLS_V1_2) ? TLS1_2_VERSION : TLS1_3_VERSION;
	int max = (bits & CFG_TLS_V1_3) ? TLS1_3_VERSION : TLS1_2_VERSION;
	return SSL_CTX_set_min_proto_version(ctx, min) == 1
			&& SSL_CTX_set_max_proto_version(ctx, max) == 1
		? 0
		: -1;
}

static const unsigned char alpn_pg[] = "\x0apostgresql";

/* A client that offers ALPN must offer "postgresql" (as PostgreSQL 17). */
static int alpn_select(SSL *ssl, const unsigned char **out, unsigned char *outlen,
		       const unsigned char *in, unsigned inlen, void *arg)
{
	(void)ssl;
	(void)arg;
	unsigned char *o;
	if (SSL_select_next_proto(&o, outlen, alpn_pg, sizeof(alpn_pg) - 1, in, inlen)
	    != OPENSSL_NPN_NEGOTIATED)
		return SSL_TLSEXT_ERR_ALERT_FATAL; /* no_application_protocol */
	*out = o;
	return SSL_TLSEXT_ERR_OK;
}

/* Direct TLS skips the SSLRequest, so ALPN is what says the client meant
 * PostgreSQL: without it the handshake is refused. */
static int client_hello(SSL *ssl, int *alert, void *arg)
{
	(void)arg;
	struct tls *t = SSL_get_app_data(ssl);
	const unsigned char *ext;
	size_t len;
	if (!t || !t->direct
	    || SSL_client_hello_get0_ext(ssl, TLSEXT_TYPE_application_layer_protocol_negotiation,
					 &ext, &len)
		    == 1)
		return SSL_CLIENT_HELLO_SUCCESS;
	snprintf(t->err, sizeof(t->err),
		 "direct TLS connection without ALPN protocol negotiation extension");
	*alert = SSL_AD_NO_APPLICATION_PROTOCOL;
	return SSL_CLIENT_HELLO_ERROR;
}

static const char *label_of(const char *key, const char *file, char *buf, size_t len)
{
	snprintf(buf, len, "%s %s", key, file);
	return buf;
}

/* Settings common to both roles: versions, TLS 1.2 ciphers, no
 * renegotiation (a client could make the server redo the expensive part at
 * will), no compression (CRIME), no tickets or session cache (as
 * PostgreSQL). Buffers go back while a connection is idle. */
static SSL_CTX *ctx_new(const SSL_METHOD *method, const char *protocols, const char *ciphers,
			const char *what, char *err, size_t errlen)
{
	char why[160];
	SSL_CTX *ctx = SSL_CTX_new(method);
	if (!ctx) {
		ssl_why(why, sizeof(why));
		snprintf(err, errlen, "%s: cannot make a TLS context: %s", what, why);
		return NULL;
	}
	SSL_CTX_set_options(ctx,
			    SSL_OP_NO_RENEGOTIATION | SSL_OP_NO_COMPRESSION | SSL_OP_NO_TICKET
				    | SSL_OP_CIPHER_SERVER_PREFERENCE);
	SSL_CTX_set_mode(ctx, SSL_MODE_RELEASE_BUFFERS);
	SSL_CTX_set_session_cache_mode(ctx, SSL_SESS_CACHE_OFF);
	SSL_CTX_set_num_tickets(ctx, 0);
	if (set_protocols(ctx, protocols) != 0) {
		snprintf(err, errlen, "%s: protocols \"%s\" refused by OpenSSL", what, protocols);
		goto fail;
	}
	if (SSL_CTX_set_cipher_list(ctx, ciphers) != 1) {
		ssl_why(why, sizeof(why));
		snprintf(err, errlen, "%s: ciphers \"%s\": %s", what, ciphers, why);
		goto fail;
	}
	return ctx;
fail:
	SSL_CTX_free(ctx);
	return NULL;
}

static int load_pair(SSL_CTX *ctx, const char *cert_key, const char *cert, const char *key_key,
		     const char *key, char *err, size_t errlen)
{
	char why[160], label[512];
	if (SSL_CTX_use_certificate_chain_file(ctx, cert) != 1) {
		ssl_why(why, sizeof(why));
		snprintf(err, errlen, "%s: cannot load: %s",
			 label_of(cert_key, cert, label, sizeof(label)), why);
		return -1;
	}
	if (SSL_CTX_use_PrivateKey_file(ctx, key, SSL_FILETYPE_PEM) != 1) {
		ssl_why(why, sizeof(why));
		snprintf(err, errlen, "%s: cannot load: %s",
			 label_of(key_key, key, label, sizeof(label)), why);
		return -1;
	}
	if (SSL_CTX_check_private_key(ctx) != 1) {
		ssl_why(NULL, 0);
		snprintf(err, errlen, "%s does not match %s %s",
			 label_of(key_key, key, label, sizeof(label)), cert_key, cert);
		return -1;
	}
	return 0;
}

static int load_ca(SSL_CTX *ctx, const char *key, const char *file, char *err, size_t errlen)
{
	char why[160], label[512];
	if (SSL_CTX_load_verify_locations(ctx, file, NULL) == 1)
		return 0;
	ssl_why(why, sizeof(why));
	snprintf(err, errlen, "%s: cannot load: %s", label_of(key, file, label, sizeof(label)),
		 why);
	return -1;
}

static SSL_CTX *accept_ctx(const struct cfg *cfg, char *err, size_t errlen)
{
	SSL_CTX *ctx = ctx_new(TLS_server_method(), cfg->client_tls_protocols,
			       cfg->client_tls_ciphers, "client TLS", err, errlen);
	if (!ctx)
		return NULL;
	if (load_pair(ctx, "client_tls_cert_file", cfg->client_tls_cert_file, "client_tls_key_file",
		      cfg->client_tls_key_file, err, errlen)
	    != 0)
		goto fail;
	if (*cfg->client_tls_ca_file) {
		if (load_ca(ctx, "client_tls_ca_file", cfg->client_tls_ca_file, err, errlen) != 0)
			goto fail;
		STACK_OF(X509_NAME) *names = SSL_load_client_CA_file(cfg->client_tls_ca_file);
		if (names)
			SSL_CTX_set_client_CA_list(ctx, names);
		ERR_clear_error();
	}
	if (cfg->client_tls_mode >= CFG_TLS_VERIFY_CA)
		SSL_CTX_set_verify(ctx, SSL_VERIFY_PEER | SSL_VERIFY_FAIL_IF_NO_PEER_CERT, NULL);
	SSL_CTX_set_alpn_select_cb(ctx, alpn_select, NULL);
	SSL_CTX_set_client_hello_cb(ctx, client_hello, NULL);
	return ctx;
fail:
	SSL_CTX_free(ctx);
	return NULL;
}

static SSL_CTX *connect_ctx(const struct cfg *cfg, const struct cfg_shard *sh, char *err,
			    size_t errlen)
{
	char what[160];
	snprintf(what, sizeof(what), "[shard.%s] server TLS", sh->name);
	SSL_CTX *ctx = ctx_new(TLS_client_method(), cfg->server_tls_protocols,
			       cfg->server_tls_ciphers, what, err, errlen);
	if (!ctx)
		return NULL;
	if (*cfg->server_tls_cert_file
	    && load_pair(ctx, "server_tls_cert_file", cfg->server_tls_cert_file,
			 "server_tls_key_file", cfg->server_tls_key_file, err, errlen)
		    != 0)
		goto fail;
	if (sh->server_tls_mode >= CFG_TLS_VERIFY_CA) {
		if (load_ca(ctx, "server_tls_ca_file", sh->server_tls_ca_file, err, errlen) != 0)
			goto fail;
		SSL_CTX_set_verify(ctx, SSL_VERIFY_PEER, NULL);
	}
	return ctx;
fail:
	SSL_CTX_free(ctx);
	return NULL;
}

static void make_bio_method(void);

static struct tls_set *set_build(const struct cfg *cfg, char *err, size_t errlen)
{
	pthread_once(&bio_once, make_bio_method);
	struct tls_set *s = calloc(1, sizeof(*s));
	if (!s || !bio_method)
		goto oom;
	s->client_mode = cfg->client_tls_mode;
	s->n_shards = cfg->n_shards;
	s->shard = calloc((size_t)cfg->n_shards + 1, sizeof(*s->shard));
	s->shard_mode = calloc((size_t)cfg->n_shards + 1, sizeof(*s->shard_mode));
	if (!s->shard || !s->shard_mode)
		goto oom;
	if (cfg->client_tls_mode != CFG_TLS_DISABLE && !(s->accept = accept_ctx(cfg, err, errlen)))
		goto fail;
	for (int i = 0; i < cfg->n_shards; i++) {
		const struct cfg_shard *sh = &cfg->shards[i];
		s->shard_mode[i] = sh->server_tls_mode;
		if (sh->server_tls_mode != CFG_TLS_DISABLE
		    && !(s->shard[i] = connect_ctx(cfg, sh, err, errlen)))
			goto fail;
	}
	return s;
oom:
	snprintf(err, errlen, "out of memory");
fail:
	set_free(s);
	return NULL;
}

static void set_current(struct tls_set *s)
{
	pthread_mutex_lock(&set_lock);
	struct tls_set *old = current;
	current = s;
	generation++;
	pthread_mutex_unlock(&set_lock);
	set_free(old); /* connections hold their own references to its contexts */
}

int tls_configure(const struct cfg *cfg, char *err, size_t errlen)
{
	struct tls_set *s = set_build(cfg, err, errlen);
	if (!s)
		return -1;
	set_current(s);
	return 0;
}

int tls_reload(const struct cfg *cfg, char *err, size_t errlen)
{
	if (tls_configure(cfg, err, errlen) != 0)
		return -1;
	log_info("TLS certificates and keys reloaded");
	return 0;
}

void tls_shutdown(void)
{
	pthread_mutex_lock(&set_lock);
	struct tls_set *old = current;
	current = NULL;
	pthread_mutex_unlock(&set_lock);
	set_free(old);
}

unsigned tls_generation(void)
{
	pthread_mutex_lock(&set_lock);
	unsigned g = generation;
	pthread_mutex_unlock(&set_lock);
	return g;
}

int tls_configure_pem(const char *cert_pem, const char *key_pem)
{
	pthread_once(&bio_once, make_bio_method);
	struct tls_set *s = calloc(1, sizeof(*s));
	BIO *cb = BIO_new_mem_buf(cert_pem, -1), *kb = BIO_new_mem_buf(key_pem, -1);
	X509 *x = cb ? PEM_read_bio_X509(cb, NULL, NULL, NULL) : NULL;
	EVP_PKEY *k = kb ? PEM_read_bio_PrivateKey(kb, NULL, NULL, NULL) : NULL;
	char err[256];
	int rc = -1;
	if (s && x && k
	    && (s->accept = ctx_new(TLS_server_method(), "secure", "HIGH", "fuzz", err,
				    sizeof(err)))
	    && SSL_CTX_use_certificate(s->accept, x) == 1
	    && SSL_CTX_use_PrivateKey(s->accept, k) == 1) {
		s->client_mode = CFG_TLS_REQUIRE;
		SSL_CTX_set_alpn_select_cb(s->accept, alpn_select, NULL);
		SSL_CTX_set_client_hello_cb(s->accept, client_hello, NULL);
		set_current(s);
		s = NULL;
		rc = 0;
	}
	set_free(s);
	X509_free(x);
	EVP_PKEY_free(k);
	BIO_free(cb);
	BIO_free(kb);
	return rc;
}

/* ---- the BIO ---------------------------------------------------------------- */

static int bio_read(BIO *b, char *buf, int len)
{
	struct tls *t = BIO_get_data(b);
	BIO_clear_retry_flags(b);
	if (t->in_left == 0) {
		BIO_set_retry_read(b);
		return -1;
	}
	uint32_t n = (uint32_t)len < t->in_left ? (uint32_t)len : t->in_left;
	memcpy(buf, t->in, n);
	t->in += n;
	t->in_left -= n;
	return (int)n;
}

/* Appends to out. A send in flight reads out: growing then copies into a
 * new buffer and keeps the old one until that send completes. */
static int out_append(struct tls *t, const void *data, uint32_t len, bool in_flight)
{
	if (t->out_off > 0 && !in_flight) {
		memmove(t->out, t->out + t->out_off, t->out_len - t->out_off);
		t->out_len -= t->out_off;
		t->out_off = 0;
	}
	if (t->out_cap - t->out_len < len) {
		uint64_t want = (uint64_t)t->out_len + len;
		uint32_t cap = t->out_cap ? t->out_cap : 4096;
		while (cap < want)
			cap *= 2;
		uint8_t *p;
		if (in_flight && !t->out_retired) {
			if (!(p = malloc(cap)))
				return -1;
			memcpy(p, t->out, t->out_len);
			t->out_retired = t->out;
		} else if (!(p = realloc(t->out, cap))) {
			return -1;
		}
		t->out = p;
		t->out_cap = cap;
	}
	memcpy(t->out + t->out_len, data, len);
	t->out_len += len;
	return 0;
}

static int bio_write(BIO *b, const char *buf, int len)
{
	struct tls *t = BIO_get_data(b);
	BIO_clear_retry_flags(b);
	if (out_append(t, buf, (uint32_t)len, t->sending) != 0)
		return -1;
	return len;
}

static long bio_ctrl(BIO *b, int cmd, long num, void *ptr)
{
	(void)b;
	(void)num;
	(void)ptr;
	return cmd == BIO_CTRL_FLUSH ? 1 : 0;
}

static int bio_create(BIO *b)
{
	BIO_set_init(b, 1);
	return 1;
}

static void make_bio_method(void)
{
	BIO_METHOD *m = BIO_meth_new(BIO_get_new_index() | BIO_TYPE_SOURCE_SINK, "pgcrab ring");
	if (!m)
		return;
	BIO_meth_set_read(m, bio_read);
	BIO_meth_set_write(m, bio_write);
	BIO_meth_set_ctrl(m, bio_ctrl);
	BIO_meth_set_create(m, bio_create);
	bio_method = m;
}

/* ---- a connection ------------------------------------------------------------- */

static void flush_own(struct conn *c);
static void note_failure(struct conn *c, const char *what, int ret);

static struct tls *tls_new(struct conn *c, SSL_CTX *ctx)
{
	struct tls *t = calloc(1, sizeof(*t));
	SSL *ssl = t ? SSL_new(ctx) : NULL;
	BIO *bio = ssl ? BIO_new(bio_method) : NULL;
	if (!bio) {
		SSL_free(ssl);
		free(t);
		ERR_clear_error();
		return NULL;
	}
	BIO_set_data(bio, t);
	SSL_set_bio(ssl, bio, bio);
	SSL_set_app_data(ssl, t);
	t->ssl = ssl;
	t->c = c;
	c->tls = t;
	return t;
}

/* A TLS state on c from the current contexts: the accepting one (shard
 * -1) or shard's, whose mode goes to *mode. A reload may swap the set right
 * after: the SSL holds its own reference to the context it was made from. */
static struct tls *tls_start(struct conn *c, int shard, enum cfg_tls_mode *mode)
{
	pthread_mutex_lock(&set_lock);
	SSL_CTX *ctx = NULL;
	if (current && shard < 0)
		ctx = current->accept;
	if (current && shard >= 0 && shard < current->n_shards) {
		ctx = current->shard[shard];
		*mode = current->shard_mode[shard];
	}
	if (ctx)
		SSL_CTX_up_ref(ctx);
	pthread_mutex_unlock(&set_lock);
	if (!ctx)
		return NULL;
	struct tls *t = tls_new(c, ctx);
	SSL_CTX_free(ctx);
	return t;
}

int tls_accept(struct conn *c, bool direct)
{
	enum cfg_tls_mode mode;
	struct tls *t = tls_start(c, -1, &mode);
	if (!t)
		return -1;
	t->accepting = true;
	t->direct = direct;
	SSL_set_accept_state(t->ssl);
	uint32_t left = c->rx_end - c->rx_start;
	if (left > 0) {
		/* the start of the ClientHello, read as a startup packet */
		if (!(t->cin = malloc(left)))
			return -1;
		memcpy(t->cin, c->rx + c->rx_start, left);
		t->cin_len = t->cin_cap = left;
		c->rx_start = c->rx_end;
		c->scan_pos = c->rx_start;
	}
	return 0;
}

int tls_connect(struct conn *c, int shard, const char *host)
{
	enum cfg_tls_mode mode = CFG_TLS_DISABLE;
	struct tls *t = shard >= 0 ? tls_start(c, shard, &mode) : NULL;
	if (!t)
		return -1;
	SSL_set_connect_state(t->ssl);
	SSL_set_alpn_protos(t->ssl, alpn_pg, sizeof(alpn_pg) - 1);
	ASN1_OCTET_STRING *ip = a2i_IPADDRESS(host);
	if (!ip)
		SSL_set_tlsext_host_name(t->ssl, host); /* SNI, as libpq: names only */
	if (mode == CFG_TLS_VERIFY_FULL) {
		X509_VERIFY_PARAM *vp = SSL_get0_param(t->ssl);
		int ok = ip ? X509_VERIFY_PARAM_set1_ip_asc(vp, host) : SSL_set1_host(t->ssl, host);
		if (ok != 1) {
			ASN1_OCTET_STRING_free(ip);
			return -1;
		}
	}
	ASN1_OCTET_STRING_free(ip);
	/* the ClientHello goes now; the server's answer comes through recv */
	ERR_clear_error();
	int r = SSL_do_handshake(t->ssl);
	if (r != 1 && SSL_get_error(t->ssl, r) != SSL_ERROR_WANT_READ) {
		note_failure(c, "TLS handshake failed", r);
		return -1;
	}
	flush_own(c);
	return 0;
}

bool tls_established(const struct conn *c)
{
	return c->tls && c->tls->state == TLS_OPEN;
}

const char *tls_error(const struct conn *c)
{
	return c->tls && c->tls->err[0] ? c->tls->err : NULL;
}

const char *tls_describe(const struct conn *c, char *buf, size_t len)
{
	if (!c->tls) {
		snprintf(buf, len, "%s", "");
		return buf;
	}
	snprintf(buf, len, "%s %s", SSL_get_version(c->tls->ssl), SSL_get_cipher(c->tls->ssl));
	return buf;
}

int tls_peer_common_name(const struct conn *c, char *buf, size_t len)
{
	if (!c->tls || c->tls->state != TLS_OPEN || len == 0)
		return -1;
	X509 *peer = SSL_get0_peer_certificate(c->tls->ssl);
	if (!peer || SSL_get_verify_result(c->tls->ssl) != X509_V_OK)
		return -1;
	int n = X509_NAME_get_text_by_NID(X509_get_subject_name(peer), NID_commonName, buf,
					  (int)len);
	/* a CN with a NUL in it would compare equal to a shorter name */
	if (n < 0 || (size_t)n >= len || strlen(buf) != (size_t)n)
		return -1;
	return 0;
}

int tls_server_end_point(const struct conn *c, uint8_t *buf, size_t len)
{
	if (!c->tls || !c->tls->accepting)
		return -1;
	X509 *mine = SSL_get_certificate(c->tls->ssl);
	int md_nid, pk_nid;
	if (!mine || !OBJ_find_sigid_algs(X509_get_signature_nid(mine), &md_nid, &pk_nid))
		return -1;
	/* RFC 5929 4.1: MD5 and SHA-1 are replaced by SHA-256 */
	const EVP_MD *md = (md_nid == NID_md5 || md_nid == NID_sha1 || md_nid == NID_undef)
		? EVP_sha256()
		: EVP_get_digestbynid(md_nid);
	unsigned n = 0;
	uint8_t hash[EVP_MAX_MD_SIZE];
	if (!md || X509_digest(mine, md, hash, &n) != 1 || n > len)
		return -1;
	memcpy(buf, hash, n);
	return (int)n;
}

void tls_free(struct conn *c)
{
	struct tls *t = c->tls;
	c->tls = NULL;
	SSL_free(t->ssl);
	free(t->cin);
	free(t->out);
	free(t->out_retired);
	free(t);
}

/* ---- receiving ------------------------------------------------------------------ */

int tls_arm_recv(struct conn *c)
{
	struct tls *t = c->tls;
	if (c->rx && c->rx_end == c->rx_cap) {
		/* room for plaintext, as conn_arm_recv makes for a plain recv */
		if (conn_rx_reserve(c, c->rx_cap < CONN_BUF_SIZE ? CONN_BUF_SIZE : CONN_WHOLE_MAX)
		    != 0)
			return -1;
		if (c->rx_end == c->rx_cap)
			return -1;
	}
	struct io_uring_sqe *sqe = worker_sqe(c->w);
	if (t->cin_len > 0 || SSL_pending(t->ssl) > 0 || t->state == TLS_CLOSED) {
		/* bytes are here already: go on after this batch, not now,
		 * since the owner does not expect on_recv inside its arm */
		io_uring_prep_nop(sqe);
		t->nop_armed = true;
	} else if (c->w->buf_ring && !t->no_bufs) {
		io_uring_prep_recv(sqe, c->fd, NULL, CONN_BUF_SIZE, 0);
		sqe->flags |= IOSQE_BUFFER_SELECT;
		sqe->buf_group = CONN_BUF_GROUP;
	} else {
		t->no_bufs = false;
		if (t->cin_cap < CONN_BUF_SIZE) {
			uint8_t *p = realloc(t->cin, CONN_BUF_SIZE);
			if (!p)
				return -1;
			t->cin = p;
			t->cin_cap = CONN_BUF_SIZE;
		}
		io_uring_prep_recv(sqe, c->fd, t->cin, t->cin_cap, 0);
	}
	io_uring_sqe_set_data64(sqe, conn_user_data(c, UD_RECV));
	c->recv_armed = true;
	c->refs++;
	return 0;
}

static void send_out(struct conn *c)
{
	struct tls *t = c->tls;
	t->sending = true;
	c->send_ptr = t->out + t->out_off;
	c->send_left = t->out_len - t->out_off;
	conn_submit_send(c);
}

/* Starts the engine's own send of what is in out, if nothing is sending. */
static void flush_own(struct conn *c)
{
	struct tls *t = c->tls;
	if (c->send_src != SEND_NONE || t->out_off == t->out_len || c->closing)
		return;
	c->send_src = SEND_TLS;
	send_out(c);
}

static void note_failure(struct conn *c, const char *what, int ret)
{
	struct tls *t = c->tls;
	if (t->err[0])
		return; /* the ClientHello check said why */
	char why[160];
	long vr = SSL_get_verify_result(t->ssl);
	int e = SSL_get_error(t->ssl, ret);
	if (vr != X509_V_OK && !t->accepting) {
		ssl_why(NULL, 0);
		snprintf(t->err, sizeof(t->err), "certificate verify failed: %s",
			 X509_verify_cert_error_string(vr));
	} else if (e == SSL_ERROR_SYSCALL || e == SSL_ERROR_ZERO_RETURN) {
		snprintf(t->err, sizeof(t->err), "%s: connection closed", what);
	} else {
		ssl_why(why, sizeof(why));
		snprintf(t->err, sizeof(t->err), "%s: %s", what, why);
	}
}

/* Starts an owner's send that waited for the handshake. */
static void handshake_done(struct conn *c)
{
	struct tls *t = c->tls;
	t->state = TLS_OPEN;
	if (t->flush_after_handshake) {
		t->flush_after_handshake = false;
		tls_flush_tx(c);
	}
}

/* Feeds what arrived to OpenSSL: the handshake, then plaintext into rx.
 * Returns plaintext bytes, 0 for none yet, or -1 (failed: t->err). */
static int run(struct conn *c)
{
	struct tls *t = c->tls;
	if (t->state == TLS_HANDSHAKE) {
		ERR_clear_error();
		int r = SSL_do_handshake(t->ssl);
		if (r != 1) {
			int e = SSL_get_error(t->ssl, r);
			if (e == SSL_ERROR_WANT_READ || e == SSL_ERROR_WANT_WRITE)
				return 0;
			note_failure(c, "TLS handshake failed", r);
			return -1;
		}
		handshake_done(c);
	}
	if (t->state != TLS_OPEN)
		return 0;
	if (!c->rx && conn_rx_reserve(c, CONN_BUF_SIZE) != 0) {
		snprintf(t->err, sizeof(t->err), "out of memory");
		return -1;
	}
	uint32_t got = 0;
	uint32_t room = c->rx_cap - c->rx_end;
	conn_rx_claim(c, c->rx_end, room);
	while (got < room) {
		ERR_clear_error();
		int n = SSL_read(t->ssl, c->rx + c->rx_end + got, (int)(room - got));
		if (n > 0) {
			got += (uint32_t)n;
			continue;
		}
		int e = SSL_get_error(t->ssl, n);
		if (e == SSL_ERROR_WANT_READ || e == SSL_ERROR_WANT_WRITE)
			break;
		if (e == SSL_ERROR_ZERO_RETURN) {
			t->state = TLS_CLOSED; /* the peer's close_notify: EOF once rx is read */
			break;
		}
		note_failure(c, "TLS error", n);
		t->state = TLS_FAILED;
		conn_rx_unclaim(c, c->rx_end, room);
		return -1;
	}
	conn_rx_unclaim(c, c->rx_end + got, room - got);
	return (int)got;
}

/* After run: ciphertext OpenSSL did not read waits in cin (rx was full). */
static int keep_leftover(struct tls *t)
{
	if (t->in_left == 0) {
		t->cin_len = 0;
	} else if (t->cin && t->in >= t->cin && t->in < t->cin + t->cin_cap) {
		memmove(t->cin, t->in, t->in_left);
		t->cin_len = t->in_left;
	} else {
		if (t->cin_cap < t->in_left) {
			uint8_t *p = realloc(t->cin, t->in_left);
			if (!p)
				return -1;
			t->cin = p;
			t->cin_cap = t->in_left;
		}
		memcpy(t->cin, t->in, t->in_left);
		t->cin_len = t->in_left;
	}
	t->in = NULL;
	t->in_left = 0;
	if (t->cin_len == 0 && t->cin_cap > 0 && t->state == TLS_OPEN) {
		free(t->cin); /* an idle connection holds no receive buffer */
		t->cin = NULL;
		t->cin_cap = 0;
	}
	return 0;
}

bool tls_on_recv(struct conn *c, int *res, unsigned flags)
{
	struct tls *t = c->tls;
	bool cancelled = c->recv_cancelling;
	bool nop = t->nop_armed;
	int bid = -1;
	c->recv_cancelling = false;
	t->nop_armed = false;
	if (flags & IORING_CQE_F_BUFFER) {
		bid = (int)(flags >> IORING_CQE_BUFFER_SHIFT);
		if (*res <= 0 || c->closing) {
			conn_ring_give_back(c->w, bid);
			return true;
		}
		t->in = conn_ring_buf(c->w, bid, (uint32_t)*res);
		t->in_left = (uint32_t)*res;
	} else if (nop && cancelled) {
		*res = -ECANCELED; /* as a recv cancelled by its owner */
		return true;
	} else if (nop || *res > 0) {
		if (!nop)
			t->cin_len += (uint32_t)*res;
		t->in = t->cin;
		t->in_left = t->cin_len;
	} else if (*res == -ENOBUFS && cancelled) {
		*res = -ECANCELED;
		return true;
	} else if (*res == -ENOBUFS && !c->closing) {
		c->recv_armed = false;
		t->no_bufs = true; /* every provided buffer is taken: one of our own */
		if (conn_arm_recv(c) == 0)
			return false;
		*res = -ENOMEM;
		return true;
	} else {
		return true; /* the peer closed (without close_notify) or an error */
	}
	if (c->closing) {
		keep_leftover(t);
		if (bid >= 0)
			conn_ring_give_back(c->w, bid);
		return true;
	}
	int got = run(c);
	int kept = keep_leftover(t);
	if (bid >= 0)
		conn_ring_give_back(c->w, bid);
	if (got < 0 || kept < 0) {
		t->state = TLS_FAILED;
		log_debug("worker %d conn %llu: %s", c->w->id, (unsigned long long)c->id,
			  t->err[0] ? t->err : "out of memory");
		if (t->out_off != t->out_len && c->send_src == SEND_NONE) {
			flush_own(c); /* the alert first; the owner hears when it is sent */
			return false;
		}
		*res = -EPROTO;
		return true;
	}
	flush_own(c); /* handshake flights, a KeyUpdate answer */
	if (got > 0) {
		*res = got;
		return true;
	}
	if (t->state == TLS_CLOSED) {
		*res = 0;
		return true;
	}
	c->recv_armed = false;
	if (conn_arm_recv(c) == 0)
		return false;
	*res = -ENOMEM;
	return true;
}

/* ---- sending ---------------------------------------------------------------------- */

/* Encrypts send_ptr/send_left (the owner's plaintext) into out and sends
 * it, or lets the engine's send in flight go on with it. */
void tls_send(struct conn *c, bool internal_in_flight)
{
	struct tls *t = c->tls;
	ERR_clear_error();
	int n = t->state == TLS_OPEN ? SSL_write(t->ssl, c->send_ptr, (int)c->send_left) : -1;
	if (n <= 0) {
		if (!t->err[0])
			note_failure(c, "TLS write failed", n);
		t->send_err = EPROTO;
		if (internal_in_flight)
			return; /* that send's completion reports it */
		/* the owner hears of it as of any failed send: from a completion */
		struct io_uring_sqe *sqe = worker_sqe(c->w);
		io_uring_prep_nop(sqe);
		io_uring_sqe_set_data64(sqe, conn_user_data(c, UD_SEND));
		c->refs++;
		return;
	}
	if (internal_in_flight)
		return; /* its completion sends the rest of out */
	send_out(c);
}

void tls_flush_tx(struct conn *c)
{
	struct tls *t = c->tls;
	if (t->state == TLS_HANDSHAKE && !t->accepting) {
		t->flush_after_handshake = true; /* the startup packet, after the handshake */
		return;
	}
	/* a client's connection sends nothing before its handshake is done
	 * (an error for it, say client_login_timeout's): that send fails, and
	 * its owner closes as after any failed send */
	if (c->send_src > SEND_TLS || c->tx_len == 0 || c->closing)
		return;
	bool in_flight = c->send_src == SEND_TLS;
	c->send_src = SEND_TX;
	c->send_ptr = c->tx;
	c->send_left = c->tx_len;
	c->send_end = c->tx_len;
	tls_send(c, in_flight);
}

bool tls_on_send(struct conn *c, int *res)
{
	struct tls *t = c->tls;
	bool own = c->send_src == SEND_TLS;
	if (!t->sending && !t->send_err) {
		/* plaintext sent before TLS began (the 'S' answer) */
		if (*res > 0 && (uint32_t)*res < c->send_left && !c->closing) {
			c->send_ptr += *res;
			c->send_left -= (uint32_t)*res;
			conn_submit_send(c);
			return false;
		}
		return true;
	}
	t->sending = false;
	free(t->out_retired);
	t->out_retired = NULL;
	if (t->send_err || *res < 0 || c->closing) {
		if (t->send_err)
			*res = -t->send_err;
		t->send_err = 0;
		t->out_off = t->out_len = 0;
		if (!own)
			return true;
		c->send_src = SEND_NONE;
		if (t->state == TLS_FAILED && c->recv_armed && !c->closing)
			c->ops->on_recv(c, -EPROTO);
		return false;
	}
	t->out_off += (uint32_t)*res;
	if (t->out_off < t->out_len) {
		send_out(c); /* a partial send, or more was encrypted behind it */
		return false;
	}
	t->out_off = t->out_len = 0;
	if (!c->keep_tx && t->out_cap > CONN_TX_CAP) {
		free(t->out); /* a large burst's buffer does not stay with an idle connection */
		t->out = NULL;
		t->out_cap = 0;
	}
	if (!own) {
		*res = 1;
		return true;
	}
	c->send_src = SEND_NONE;
	if (t->state == TLS_FAILED && c->recv_armed)
		c->ops->on_recv(c, -EPROTO); /* its alert is out: now the owner closes */
	else if (c->tx_len > 0 && t->state == TLS_OPEN)
		tls_flush_tx(c); /* the owner's tx waited behind the engine's send */
	return false;
}
