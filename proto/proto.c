/* Frame codec implementation; see proto.h for the contracts. */
#include "proto/proto.h"

#include <stdio.h>
#include <string.h>

uint8_t proto_get_u8(struct proto_reader *r)
{
	if (r->err || r->left < 1) {
		r->err = true;
		return 0;
	}
	r->left--;
	return *r->p++;
}

int16_t proto_get_i16(struct proto_reader *r)
{
	if (r->err || r->left < 2) {
		r->err = true;
		return 0;
	}
	uint16_t v = (uint16_t)((r->p[0] << 8) | r->p[1]);
	r->p += 2;
	r->left -= 2;
	return (int16_t)v;
}

int32_t proto_get_i32(struct proto_reader *r)
{
	if (r->err || r->left < 4) {
		r->err = true;
		return 0;
	}
	uint32_t v = proto_be32(r->p);
	r->p += 4;
	r->left -= 4;
	return (int32_t)v;
}

const char *proto_get_cstr(struct proto_reader *r)
{
	if (r->err || r->left == 0) {
		r->err = true;
		return NULL;
	}
	const uint8_t *nul = memchr(r->p, 0, r->left);
	if (!nul) {
		r->err = true;
		return NULL;
	}
	const char *s = (const char *)r->p;
	size_t n = (size_t)(nul - r->p) + 1;
	r->p += n;
	r->left -= n;
	return s;
}

const uint8_t *proto_get_bytes(struct proto_reader *r, size_t n)
{
	if (r->err || r->left < n) {
		r->err = true;
		return NULL;
	}
	const uint8_t *p = r->p;
	r->p += n;
	r->left -= n;
	return p;
}

enum proto_result proto_frame(const uint8_t *buf, size_t len, uint32_t max_len, uint8_t *type,
			      uint32_t *total)
{
	if (len < PROTO_HEADER_LEN)
		return PROTO_AGAIN;
	uint32_t body = proto_be32(buf + 1);
	if (body < 4 || body > max_len)
		return PROTO_ERR;
	*type = buf[0];
	*total = body + 1;
	return PROTO_OK;
}

bool proto_frontend_type(uint8_t type)
{
	return type != 0 && strchr("QPBDECSHFdcfX", type) != NULL;
}

bool proto_backend_type(uint8_t type)
{
	/* see PostgreSQL's protocol message formats: every backend message */
	return type != 0 && strchr("123ACDEGHIKNRSTVWZcdnstv", type) != NULL;
}

enum proto_result proto_parse_startup(const uint8_t *buf, size_t len, struct proto_startup *out,
				      const char **why)
{
	*why = NULL;
	if (len < 4)
		return PROTO_AGAIN;
	uint32_t total = proto_be32(buf);
	if (total < 8 || total > PROTO_MAX_STARTUP)
		return PROTO_ERR; /* PostgreSQL logs it and closes without a word */
	if (len < total)
		return PROTO_AGAIN;

	memset(out, 0, sizeof(*out));
	out->total = total;
	struct proto_reader r = proto_reader_init(buf + 4, total - 4);
	uint32_t code = (uint32_t)proto_get_i32(&r);
	out->version = code;

	switch (code) {
	case PROTO_CODE_SSL:
	case PROTO_CODE_GSSENC:
		/* PostgreSQL 15 reads these by their code alone, whatever the length */
		out->kind = code == PROTO_CODE_SSL ? PROTO_STARTUP_SSL : PROTO_STARTUP_GSSENC;
		return PROTO_OK;
	case PROTO_CODE_CANCEL:
		if (total != 16)
			return PROTO_ERR; /* nothing to cancel; PostgreSQL just closes */
		out->kind = PROTO_STARTUP_CANCEL;
		out->cancel_pid = proto_get_i32(&r);
		out->cancel_key = proto_get_i32(&r);
		return PROTO_OK;
	}
	if ((code >> 16) != 3) {
		*why = PROTO_WHY_VERSION;
		return PROTO_ERR;
	}
	out->kind = PROTO_STARTUP_V3;
	out->minor = (uint16_t)(code & 0xffff);

	/* name\0value\0 ... \0: the final NUL must be the packet's last byte;
	 * anything else (a name without a value, a missing or early
	 * terminator) is one error, as in PostgreSQL */
	for (;;) {
		const char *name = proto_get_cstr(&r);
		if (!name) {
			*why = PROTO_WHY_LAYOUT;
			return PROTO_ERR;
		}
		if (name[0] == '\0')
			break;
		const char *value = proto_get_cstr(&r);
		if (!value || r.left == 0) {
			/* no value, or a value with no terminator after it */
			*why = PROTO_WHY_LAYOUT;
			return PROTO_ERR;
		}
		if (out->n_params == PROTO_MAX_STARTUP_PARAMS) {
			*why = "too many startup parameters";
			return PROTO_ERR;
		}
		out->names[out->n_params] = name;
		out->values[out->n_params] = value;
		out->n_params++;
		if (strcmp(name, "user") == 0)
			out->user = value;
		else if (strcmp(name, "database") == 0)
			out->database = value;
	}
	if (r.left != 0) {
		*why = PROTO_WHY_LAYOUT;
		return PROTO_ERR;
	}
	if (!out->user || out->user[0] == '\0') {
		*why = PROTO_WHY_NO_USER;
		return PROTO_ERR;
	}
	if (!out->database || out->database[0] == '\0')
		out->database = out->user;
	return PROTO_OK;
}

void proto_version_message(uint32_t version, char *buf, size_t len)
{
	snprintf(buf, len, "unsupported frontend protocol %u.%u: server supports 3.0 to 3.0",
		 version >> 16, version & 0xffff);
}

const char *proto_startup_sqlstate(const char *why)
{
	if (why && strcmp(why, PROTO_WHY_VERSION) == 0)
		return "0A000"; /* feature_not_supported */
	if (why && strcmp(why, PROTO_WHY_NO_USER) == 0)
		return "28000"; /* invalid_authorization_specification */
	return "08P01";
}

enum proto_result proto_parse_error(const uint8_t *body, size_t len, struct proto_error_fields *out)
{
	memset(out, 0, sizeof(*out));
	struct proto_reader r = proto_reader_init(body, len);
	const char *localized_severity = NULL;
	for (;;) {
		uint8_t field = proto_get_u8(&r);
		if (r.err)
			return PROTO_ERR;
		if (field == 0)
			break;
		const char *value = proto_get_cstr(&r);
		if (!value)
			return PROTO_ERR;
		switch (field) {
		case 'S':
			localized_severity = value;
			break;
		case 'V':
			out->severity = value;
			break;
		case 'C':
			out->code = value;
			break;
		case 'M':
			out->message = value;
			break;
		case 'D':
			out->detail = value;
			break;
		}
	}
	if (!out->severity)
		out->severity = localized_severity;
	if (!out->severity || !out->code || !out->message)
		return PROTO_ERR;
	return PROTO_OK;
}

void proto_put_bytes(struct proto_writer *w, const void *data, size_t n)
{
	if (w->overflow || w->cap - w->len < n) {
		w->overflow = true;
		return;
	}
	if (n)
		memcpy(w->p + w->len, data, n);
	w->len += n;
}

void proto_put_u8(struct proto_writer *w, uint8_t v)
{
	proto_put_bytes(w, &v, 1);
}

void proto_put_i32(struct proto_writer *w, int32_t v)
{
	uint32_t u = (uint32_t)v;
	uint8_t b[4] = { (uint8_t)(u >> 24), (uint8_t)(u >> 16), (uint8_t)(u >> 8), (uint8_t)u };
	proto_put_bytes(w, b, 4);
}

void proto_put_cstr(struct proto_writer *w, const char *s)
{
	proto_put_bytes(w, s, strlen(s) + 1);
}

size_t proto_msg_begin(struct proto_writer *w, uint8_t type)
{
	if (type)
		proto_put_u8(w, type);
	size_t start = w->len;
	proto_put_i32(w, 0); /* length, filled in by proto_msg_end */
	return start;
}

void proto_msg_end(struct proto_writer *w, size_t start)
{
	if (w->overflow)
		return;
	uint32_t n = (uint32_t)(w->len - start);
	w->p[start] = (uint8_t)(n >> 24);
	w->p[start + 1] = (uint8_t)(n >> 16);
	w->p[start + 2] = (uint8_t)(n >> 8);
	w->p[start + 3] = (uint8_t)n;
}

void proto_build_auth(struct proto_writer *w, int32_t code, const void *extra, size_t extra_len)
{
	size_t m = proto_msg_begin(w, 'R');
	proto_put_i32(w, code);
	proto_put_bytes(w, extra, extra_len);
	proto_msg_end(w, m);
}

void proto_build_parameter_status(struct proto_writer *w, const char *name, const char *value)
{
	size_t m = proto_msg_begin(w, 'S');
	proto_put_cstr(w, name);
	proto_put_cstr(w, value);
	proto_msg_end(w, m);
}

void proto_build_backend_key(struct proto_writer *w, int32_t pid, int32_t key)
{
	size_t m = proto_msg_begin(w, 'K');
	proto_put_i32(w, pid);
	proto_put_i32(w, key);
	proto_msg_end(w, m);
}

void proto_build_ready(struct proto_writer *w, char status)
{
	size_t m = proto_msg_begin(w, 'Z');
	proto_put_u8(w, (uint8_t)status);
	proto_msg_end(w, m);
}

void proto_build_error(struct proto_writer *w, const char *severity, const char *code,
		       const char *message)
{
	proto_build_error_full(w, severity, code, message, NULL, NULL);
}

void proto_build_old_error(struct proto_writer *w, const char *message)
{
	proto_put_u8(w, 'E');
	proto_put_bytes(w, "FATAL:  ", 8);
	proto_put_bytes(w, message, strlen(message));
	proto_put_bytes(w, "\n", 2); /* the newline and the NUL */
}

void proto_build_error_full(struct proto_writer *w, const char *severity, const char *code,
			    const char *message, const char *detail, const char *hint)
{
	size_t m = proto_msg_begin(w, 'E');
	proto_put_u8(w, 'S');
	proto_put_cstr(w, severity);
	proto_put_u8(w, 'V');
	proto_put_cstr(w, severity);
	proto_put_u8(w, 'C');
	proto_put_cstr(w, code);
	proto_put_u8(w, 'M');
	proto_put_cstr(w, message);
	if (detail) {
		proto_put_u8(w, 'D');
		proto_put_cstr(w, detail);
	}
	if (hint) {
		proto_put_u8(w, 'H');
		proto_put_cstr(w, hint);
	}
	proto_put_u8(w, 0);
	proto_msg_end(w, m);
}

void proto_build_negotiate_version(struct proto_writer *w, int32_t newest_minor, int n_unknown,
				   const char *const *unknown)
{
	size_t m = proto_msg_begin(w, 'v');
	proto_put_i32(w, newest_minor);
	proto_put_i32(w, n_unknown);
	for (int i = 0; i < n_unknown; i++)
		proto_put_cstr(w, unknown[i]);
	proto_msg_end(w, m);
}

void proto_build_startup(struct proto_writer *w, const char *user, const char *database,
			 int n_extra, const char *const *names, const char *const *values)
{
	size_t m = proto_msg_begin(w, 0);
	proto_put_i32(w, PROTO_VERSION_3_0);
	proto_put_cstr(w, "user");
	proto_put_cstr(w, user);
	proto_put_cstr(w, "database");
	proto_put_cstr(w, database);
	for (int i = 0; i < n_extra; i++) {
		proto_put_cstr(w, names[i]);
		proto_put_cstr(w, values[i]);
	}
	proto_put_u8(w, 0);
	proto_msg_end(w, m);
}

void proto_build_password(struct proto_writer *w, const char *password)
{
	size_t m = proto_msg_begin(w, 'p');
	proto_put_cstr(w, password);
	proto_msg_end(w, m);
}

void proto_build_sasl_initial(struct proto_writer *w, const char *mechanism, const void *data,
			      size_t len)
{
	size_t m = proto_msg_begin(w, 'p');
	proto_put_cstr(w, mechanism);
	proto_put_i32(w, (int32_t)len);
	proto_put_bytes(w, data, len);
	proto_msg_end(w, m);
}

void proto_build_sasl_response(struct proto_writer *w, const void *data, size_t len)
{
	size_t m = proto_msg_begin(w, 'p');
	proto_put_bytes(w, data, len);
	proto_msg_end(w, m);
}

void proto_build_query(struct proto_writer *w, const char *sql)
{
	size_t m = proto_msg_begin(w, 'Q');
	proto_put_cstr(w, sql);
	proto_msg_end(w, m);
}

void proto_build_terminate(struct proto_writer *w)
{
	size_t m = proto_msg_begin(w, 'X');
	proto_msg_end(w, m);
}

void proto_build_cancel(struct proto_writer *w, int32_t pid, int32_t key)
{
	size_t m = proto_msg_begin(w, 0);
	proto_put_i32(w, PROTO_CODE_CANCEL);
	proto_put_i32(w, pid);
	proto_put_i32(w, key);
	proto_msg_end(w, m);
}
