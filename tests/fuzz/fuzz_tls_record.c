/* libFuzzer target: core/tls.c — the TLS record path of a client's
 * connection, on a real worker (its io_uring, provided buffers) with an
 * in-memory server certificate, the connection's other end a socketpair.
 *
 * Input: a mode byte, a chunk size byte, then the bytes the "client" sends.
 *   mode & 3 == 0: the bytes are the client's first flight (a ClientHello
 *                  or anything else), sent chunk bytes at a time;
 *   mode & 3 == 1: an honest OpenSSL client completes the handshake first,
 *                  then the bytes follow as raw records;
 *   mode & 3 == 2: after that handshake the bytes are encrypted as
 *                  application data (valid records, chunk bytes each), which
 *                  the engine must hand to the owner unchanged;
 *   mode & 4:      direct TLS (ALPN required) rather than after 'S';
 *   mode & 8:      TLS 1.2 rather than 1.3 for the honest client.
 * The owner echoes nothing; it takes plaintext and closes on EOF or error.
 * After each input the connection must be freed and nothing leaked. */
#include "tests/fuzz/fuzz.h"

#include <errno.h>
#include <openssl/evp.h>
#include <openssl/pem.h>
#include <openssl/ssl.h>
#include <openssl/x509.h>
#include <sys/socket.h>
#include <unistd.h>

#include "config/cfg.h"
#include "core/conn.h"
#include "core/tls.h"
#include "core/worker.h"

struct owner {
	struct conn c; /* first */
	bool freed;
	uint8_t *got; /* plaintext the owner received */
	size_t got_len;
	size_t want; /* mode 2: the plaintext the client sent */
};

static struct worker w;
/* SHA-256 of the certificate's DER: its tls-server-end-point (ECDSA-SHA256) */
static uint8_t cert_hash[32];
static struct runtime rt;
static SSL_CTX *client_ctx;

static void on_recv(struct conn *c, int res)
{
	struct owner *o = (struct owner *)c;
	c->recv_armed = false;
	if (c->closing)
		return;
	if (res <= 0) {
		conn_close(c);
		return;
	}
	uint8_t *p = realloc(o->got, o->got_len + (size_t)res);
	if (!p)
		abort();
	memcpy(p + o->got_len, c->rx + c->rx_end, (size_t)res);
	o->got = p;
	o->got_len += (size_t)res;
	c->rx_end += (uint32_t)res;
	c->rx_start = c->rx_end; /* consumed */
	c->scan_pos = c->rx_start;
	if (conn_arm_recv(c) != 0)
		conn_close(c);
}

static void on_sent(struct conn *c, enum send_src src, struct conn *owner, int err)
{
	if (err && !c->closing)
		conn_close(c);
}

static void on_free(struct conn *c)
{
	((struct owner *)c)->freed = true;
}

static const struct conn_ops ops = {
	.on_recv = on_recv,
	.on_sent = on_sent,
	.on_free = on_free,
};

static void on_tick(struct worker *wk)
{
	(void)wk;
}

static const struct worker_hooks hooks = { .on_tick = on_tick };

static char *pem_of(void *obj, bool key)
{
	BIO *b = BIO_new(BIO_s_mem());
	if (key)
		PEM_write_bio_PrivateKey(b, obj, NULL, NULL, 0, NULL, NULL);
	else
		PEM_write_bio_X509(b, obj);
	char *data;
	long n = BIO_get_mem_data(b, &data);
	char *s = strndup(data, (size_t)n);
	BIO_free(b);
	return s;
}

/* A self-signed EC certificate made in memory: no files, no openssl CLI. */
static void make_server_context(void)
{
	EVP_PKEY *k = EVP_EC_gen("P-256");
	X509 *x = X509_new();
	X509_set_version(x, 2);
	ASN1_INTEGER_set(X509_get_serialNumber(x), 1);
	X509_gmtime_adj(X509_getm_notBefore(x), -3600);
	X509_gmtime_adj(X509_getm_notAfter(x), 3600L * 24 * 365);
	X509_NAME *name = X509_get_subject_name(x);
	X509_NAME_add_entry_by_txt(name, "CN", MBSTRING_ASC, (const unsigned char *)"fuzz", -1, -1,
				   0);
	X509_set_issuer_name(x, name);
	X509_set_pubkey(x, k);
	X509_sign(x, k, EVP_sha256());
	unsigned n = 0;
	X509_digest(x, EVP_sha256(), cert_hash, &n);
	char *cert = pem_of(x, false), *key = pem_of(k, true);
	if (tls_configure_pem(cert, key) != 0)
		abort();
	free(cert);
	free(key);
	X509_free(x);
	EVP_PKEY_free(k);
}

static void init(void)
{
	static const char ini[] = "[pgcrab]\n[shard.x]\nuser = u\n";
	char err[256];
	if (cfg_load_buffer("fuzz.ini", ini, sizeof(ini) - 1, NULL, &w.cfg, err, sizeof(err)) != 0)
		abort();
	w.rt = &rt;
	w.hooks = &hooks;
	if (worker_start(&w) != 0)
		abort();
	make_server_context();
	client_ctx = SSL_CTX_new(TLS_client_method());
	SSL_CTX_set_verify(client_ctx, SSL_VERIFY_NONE, NULL);
	SSL_CTX_set_alpn_protos(client_ctx, (const unsigned char *)"\x0apostgresql", 11);
}

/* The harness's side: a socket, and an honest client SSL over memory BIOs
 * (NULL in mode 0). */
struct peer {
	int fd;
	SSL *ssl;
	BIO *rbio, *wbio;
	bool eof;
	/* bytes still to send, chunk at a time, never blocking: the worker
	 * runs on this very thread */
	uint8_t *pend;
	size_t pend_len, pend_at, chunk;
};

static void peer_send(struct peer *p, const uint8_t *data, size_t len)
{
	uint8_t *q = realloc(p->pend, p->pend_len + len + 1);
	if (!q)
		abort();
	memcpy(q + p->pend_len, data, len);
	p->pend = q;
	p->pend_len += len;
}

static bool peer_flushed(const struct peer *p)
{
	return p->pend_at == p->pend_len;
}

/* Moves bytes between the socket and the client SSL; true if any moved. */
static bool peer_step(struct peer *p)
{
	bool moved = false;
	uint8_t buf[16384];
	ssize_t k;
	if (!peer_flushed(p)) {
		size_t n = p->pend_len - p->pend_at;
		if (n > p->chunk)
			n = p->chunk;
		k = send(p->fd, p->pend + p->pend_at, n, MSG_NOSIGNAL | MSG_DONTWAIT);
		if (k > 0)
			p->pend_at += (size_t)k;
		else if (k < 0 && errno != EAGAIN)
			p->pend_at = p->pend_len; /* the engine closed: the rest goes nowhere */
		moved = k > 0;
	}
	while ((k = recv(p->fd, buf, sizeof(buf), MSG_DONTWAIT)) > 0) {
		moved = true;
		if (p->ssl)
			BIO_write(p->rbio, buf, (int)k);
	}
	if (k == 0)
		p->eof = true;
	if (p->ssl) {
		if (!SSL_is_init_finished(p->ssl))
			SSL_do_handshake(p->ssl);
		else
			while (SSL_read(p->ssl, buf, sizeof(buf)) > 0) /* what the server sends */
				;
		int n;
		while ((n = BIO_read(p->wbio, buf, sizeof(buf))) > 0) {
			peer_send(p, buf, (size_t)n);
			moved = true;
		}
	}
	return moved;
}

static void run_until(struct owner *o, struct peer *p, bool (*done)(struct owner *, struct peer *))
{
	struct __kernel_timespec wait = { .tv_nsec = 2000000 };
	for (int i = 0; i < 2000 && !done(o, p); i++) {
		peer_step(p);
		worker_run_once(&w, &wait);
	}
}

static bool handshaken(struct owner *o, struct peer *p)
{
	return o->freed || (p->ssl && SSL_is_init_finished(p->ssl) && tls_established(&o->c));
}

static bool got_all(struct owner *o, struct peer *p)
{
	(void)p;
	return o->freed || o->got_len >= o->want;
}

static bool sent(struct owner *o, struct peer *p)
{
	return o->freed || peer_flushed(p);
}

static bool freed(struct owner *o, struct peer *p)
{
	(void)p;
	return o->freed;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	static bool ready;
	if (!ready) {
		init();
		ready = true;
	}
	struct fuzz_in in = { data, size };
	uint8_t mode = fuzz_u8(&in);
	size_t chunk = fuzz_u8(&in) + 1u;
	int sv[2];
	if (socketpair(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0, sv) != 0)
		abort();
	struct owner *o = calloc(1, sizeof(*o));
	conn_init(&o->c, &ops, &w, sv[0]);
	struct peer p = { .fd = sv[1], .chunk = chunk };
	FUZZ_CHECK(tls_accept(&o->c, mode & 4) == 0);
	FUZZ_CHECK(conn_arm_recv(&o->c) == 0);
	if (mode & 3) {
		p.ssl = SSL_new(client_ctx);
		p.rbio = BIO_new(BIO_s_mem());
		p.wbio = BIO_new(BIO_s_mem());
		SSL_set_bio(p.ssl, p.rbio, p.wbio);
		SSL_set_connect_state(p.ssl);
		if (mode & 8)
			SSL_set_max_proto_version(p.ssl, TLS1_2_VERSION);
		run_until(o, &p, handshaken);
		FUZZ_CHECK(o->freed || tls_established(&o->c));
		uint8_t h[64];
		char cn[64];
		/* what SCRAM-PLUS and auth_type = cert will read */
		FUZZ_CHECK(o->freed
			   || (tls_server_end_point(&o->c, h, sizeof(h)) == 32
			       && memcmp(h, cert_hash, 32) == 0));
		FUZZ_CHECK(o->freed || tls_peer_common_name(&o->c, cn, sizeof(cn)) == -1);
	}
	const uint8_t *rest = in.p;
	size_t rest_len = in.left;
	if ((mode & 3) == 2 && !o->freed) {
		p.chunk = 16384; /* chunk is the record size here, not the socket's */
		for (size_t at = 0; at < rest_len; at += chunk) {
			size_t n = rest_len - at < chunk ? rest_len - at : chunk;
			SSL_write(p.ssl, rest + at, (int)n);
		}
		peer_step(&p);
	} else {
		peer_send(&p, rest, rest_len);
	}
	/* the client is done: its close (no close_notify) ends the connection */
	if ((mode & 3) == 2 && !o->freed) {
		o->want = rest_len;
		run_until(o, &p, got_all);
		FUZZ_CHECK(o->freed
			   || (o->got_len == rest_len
			       && (rest_len == 0 || memcmp(o->got, rest, rest_len) == 0)));
	}
	run_until(o, &p, sent);
	shutdown(p.fd, SHUT_WR);
	run_until(o, &p, freed);
	if (!o->freed) {
		conn_close(&o->c);
		run_until(o, &p, freed);
	}
	FUZZ_CHECK(o->freed);
	close(p.fd);
	SSL_free(p.ssl);
	free(p.pend);
	free(o->got);
	free(o);
	return 0;
}
