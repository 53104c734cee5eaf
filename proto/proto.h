/* The PostgreSQL v3 frame codec: pure functions over byte buffers, shared by
 * all threads because they keep no state. Every read is bounds checked; no
 * function allocates or touches a socket. */
#ifndef PGCRAB_PROTO_H
#define PGCRAB_PROTO_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

enum proto_result { PROTO_OK = 0, PROTO_AGAIN = 1, PROTO_ERR = -1 };

#define PROTO_HEADER_LEN 5 /* type byte + int32 length */
#define PROTO_MAX_STARTUP \
	10004                        /* PostgreSQL reads a startup packet of up to
                                      * 10000 bytes after its length word */
#define PROTO_MAX_MESSAGE (1u << 30) /* 1 GiB, PostgreSQL's MaxAllocSize */

#define PROTO_VERSION_3_0 196608 /* 3 << 16 */
#define PROTO_CODE_CANCEL 80877102
#define PROTO_CODE_SSL    80877103
#define PROTO_CODE_GSSENC 80877104

/* ---- reading ------------------------------------------------------------ */

/* A cursor over untrusted bytes. Any failed read sets err and returns a zero
 * value, so callers may read a whole message and check err once. */
struct proto_reader {
	const uint8_t *p;
	size_t left;
	bool err;
};

static inline struct proto_reader proto_reader_init(const void *data, size_t len)
{
	struct proto_reader r = { (const uint8_t *)data, len, false };
	return r;
}
uint8_t proto_get_u8(struct proto_reader *r);
int16_t proto_get_i16(struct proto_reader *r);
int32_t proto_get_i32(struct proto_reader *r);
/* A NUL-terminated string inside the buffer; returns NULL (and err) if no NUL. */
const char *proto_get_cstr(struct proto_reader *r);
/* n raw bytes; NULL (and err) if fewer remain. */
const uint8_t *proto_get_bytes(struct proto_reader *r, size_t n);

/* Reads a big-endian int32 from 4 bytes the caller knows are there. */
static inline uint32_t proto_be32(const uint8_t *p)
{
	return ((uint32_t)p[0] << 24) | ((uint32_t)p[1] << 16) | ((uint32_t)p[2] << 8) | p[3];
}

/* Frame header of a typed message at buf. PROTO_AGAIN if fewer than 5 bytes,
 * PROTO_ERR if the length is below 4 or above max_len. On OK, *total is the
 * whole frame size (1 + length). */
enum proto_result proto_frame(const uint8_t *buf, size_t len, uint32_t max_len, uint8_t *type,
			      uint32_t *total);

/* Message types a frontend may send once logged in (Query, Parse, Bind,
 * Describe, Execute, Close, Sync, Flush, FunctionCall, COPY data/done/fail,
 * Terminate); a startup packet or password message then is a violation. */
bool proto_frontend_type(uint8_t type);
/* Message types a backend may send once logged in. */
bool proto_backend_type(uint8_t type);

/* ---- startup packets ---------------------------------------------------- */

enum proto_startup_kind {
	PROTO_STARTUP_V3,     /* a 3.x StartupMessage */
	PROTO_STARTUP_SSL,    /* SSLRequest */
	PROTO_STARTUP_GSSENC, /* GSSENCRequest */
	PROTO_STARTUP_CANCEL, /* CancelRequest */
};

#define PROTO_MAX_STARTUP_PARAMS 64

struct proto_startup {
	enum proto_startup_kind kind;
	uint32_t total;       /* packet length, to consume */
	uint16_t minor;       /* protocol minor version (V3) */
	uint32_t version;     /* the code: the version asked for (V3 or refused) */
	const char *user;     /* points into the packet */
	const char *database; /* NULL if absent */
	int n_params;         /* every name/value, user and database included */
	const char *names[PROTO_MAX_STARTUP_PARAMS];
	const char *values[PROTO_MAX_STARTUP_PARAMS];
	int32_t cancel_pid, cancel_key;
};

/* Parses an untyped startup packet. AGAIN if incomplete; ERR with a reason in
 * *why (a static string) for an unsupported major version (out->version
 * says which), a layout that does not end in its terminator, a missing
 * user. ERR with *why NULL where PostgreSQL only logs and closes without a
 * word: an impossible length, a CancelRequest of the wrong size. A
 * parameter given twice is no error: the last one counts (for user and
 * database here; names/values keep both, in order). */
enum proto_result proto_parse_startup(const uint8_t *buf, size_t len, struct proto_startup *out,
				      const char **why);

/* Reasons proto_parse_startup gives that PostgreSQL reports with a SQLSTATE
 * of their own. */
#define PROTO_WHY_VERSION "unsupported frontend protocol"
#define PROTO_WHY_LAYOUT  "invalid startup packet layout: expected terminator as last byte"
#define PROTO_WHY_NO_USER "no PostgreSQL user name specified in startup packet"
/* The SQLSTATE PostgreSQL sends for a startup packet refused with why:
 * 0A000 for a protocol version, 28000 for a missing user, else 08P01. */
const char *proto_startup_sqlstate(const char *why);

/* ---- ErrorResponse / NoticeResponse fields -------------------------------- */

struct proto_error_fields {
	const char *severity; /* non-localized (V) when present, else S */
	const char *code;     /* C */
	const char *message;  /* M */
	const char *detail;   /* D, may be NULL */
};

/* Parses the body (after the 5-byte header) of an 'E' or 'N' message. */
enum proto_result proto_parse_error(const uint8_t *body, size_t len,
				    struct proto_error_fields *out);

/* ---- writing ------------------------------------------------------------ */

/* A bounded output buffer. A write that does not fit sets overflow and writes
 * nothing more; callers check overflow once after building. */
struct proto_writer {
	uint8_t *p;
	size_t len;
	size_t cap;
	bool overflow;
};

static inline struct proto_writer proto_writer_init(void *buf, size_t cap)
{
	struct proto_writer w = { (uint8_t *)buf, 0, cap, false };
	return w;
}
void proto_put_u8(struct proto_writer *w, uint8_t v);
void proto_put_i32(struct proto_writer *w, int32_t v);
void proto_put_bytes(struct proto_writer *w, const void *data, size_t n);
void proto_put_cstr(struct proto_writer *w, const char *s);
/* Starts a typed message (type 0 = untyped startup packet); returns the
 * offset to pass to proto_msg_end, which fills in the length. */
size_t proto_msg_begin(struct proto_writer *w, uint8_t type);
void proto_msg_end(struct proto_writer *w, size_t start);

/* Messages PgCrab sends to clients (as a server). */
void proto_build_auth(struct proto_writer *w, int32_t code, const void *extra, size_t extra_len);
void proto_build_parameter_status(struct proto_writer *w, const char *name, const char *value);
void proto_build_backend_key(struct proto_writer *w, int32_t pid, int32_t key);
void proto_build_ready(struct proto_writer *w, char status);
/* severity: "FATAL", "ERROR"; code: a five-character SQLSTATE. */
void proto_build_error(struct proto_writer *w, const char *severity, const char *code,
		       const char *message);
/* The same with a detail and a hint (either may be NULL). */
void proto_build_error_full(struct proto_writer *w, const char *severity, const char *code,
			    const char *message, const char *detail, const char *hint);
/* PostgreSQL's words for a refused protocol version, as "unsupported
 * frontend protocol M.m: server supports 3.0 to 3.0" into buf. */
void proto_version_message(uint32_t version, char *buf, size_t len);
/* A refusal for a client that asked for protocol 1 or 2: PostgreSQL answers
 * those in the old format, 'E' and a NUL-terminated "FATAL:  ...\n". */
void proto_build_old_error(struct proto_writer *w, const char *message);
void proto_build_negotiate_version(struct proto_writer *w, int32_t newest_minor, int n_unknown,
				   const char *const *unknown);

/* Messages PgCrab sends to servers (as a client). */
void proto_build_startup(struct proto_writer *w, const char *user, const char *database,
			 int n_extra, const char *const *names, const char *const *values);
void proto_build_password(struct proto_writer *w, const char *password);
void proto_build_sasl_initial(struct proto_writer *w, const char *mechanism, const void *data,
			      size_t len);
void proto_build_sasl_response(struct proto_writer *w, const void *data, size_t len);
void proto_build_query(struct proto_writer *w, const char *sql);
void proto_build_terminate(struct proto_writer *w);
void proto_build_cancel(struct proto_writer *w, int32_t pid, int32_t key);

/* Authentication request codes (AuthenticationXXX 'R' messages). */
enum {
	PROTO_AUTH_OK = 0,
	PROTO_AUTH_CLEARTEXT = 3,
	PROTO_AUTH_MD5 = 5,
	PROTO_AUTH_SASL = 10,
	PROTO_AUTH_SASL_CONTINUE = 11,
	PROTO_AUTH_SASL_FINAL = 12,
};

#endif
