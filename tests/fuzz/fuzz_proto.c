/* libFuzzer target: the frame codec in proto/ (proto_frame, the reader, the
 * writer, proto_parse_error and every message builder).
 *
 * The first input byte picks one of three drills:
 *  0  a byte stream cut into frames by proto_frame, each known server message
 *     read with the reader the way core/ and pool/ read them;
 *  1  a script of reader calls over the rest of the input, checking after
 *     each that the cursor moved by exactly what it returned, never past the
 *     end, and that an error sticks;
 *  2  one builder with fuzzed arguments into a fuzzed-size writer; what fits
 *     must frame and parse back to the same values, what does not must set
 *     overflow without writing past cap.
 * Buffers are exact-size heap copies so ASan sees any read one byte over. */
#include "tests/fuzz/fuzz.h"

#include "proto/proto.h"

static void check_in(const uint8_t *base, size_t len, const void *p, size_t n)
{
	const uint8_t *q = p;
	FUZZ_CHECK(q >= base && n <= len && (size_t)(q - base) <= len - n);
}

/* A message body read field by field as its consumer would. */
static void read_body(uint8_t type, const uint8_t *body, size_t len)
{
	struct proto_reader r = proto_reader_init(body, len);
	switch (type) {
	case 'E':
	case 'N': {
		struct proto_error_fields f;
		if (proto_parse_error(body, len, &f) == PROTO_OK) {
			FUZZ_CHECK(f.severity && f.code && f.message);
			check_in(body, len, f.severity, strlen(f.severity) + 1);
			check_in(body, len, f.code, strlen(f.code) + 1);
			check_in(body, len, f.message, strlen(f.message) + 1);
			if (f.detail)
				check_in(body, len, f.detail, strlen(f.detail) + 1);
		}
		break;
	}
	case 'R': {
		int32_t code = proto_get_i32(&r);
		if (code == PROTO_AUTH_SASL) {
			const char *mech;
			while ((mech = proto_get_cstr(&r)) && *mech)
				check_in(body, len, mech, strlen(mech) + 1);
		} else if (code == PROTO_AUTH_MD5) {
			(void)proto_get_bytes(&r, 4);
		}
		break;
	}
	case 'S':
		(void)proto_get_cstr(&r);
		(void)proto_get_cstr(&r);
		break;
	case 'K':
		(void)proto_get_i32(&r);
		(void)proto_get_i32(&r);
		break;
	case 'Z':
		(void)proto_get_u8(&r);
		break;
	case 'v': {
		(void)proto_get_i32(&r);
		int32_t n = proto_get_i32(&r);
		for (int32_t i = 0; i < n && !r.err; i++)
			(void)proto_get_cstr(&r);
		break;
	}
	case 'P': /* Parse: statement name, query, parameter types */
		(void)proto_get_cstr(&r);
		(void)proto_get_cstr(&r);
		for (int16_t i = 0, n = proto_get_i16(&r); i < n && !r.err; i++)
			(void)proto_get_i32(&r);
		break;
	case 'B': /* Bind: portal, statement, ... */
	case 'C': /* Close / CommandComplete */
	case 'D': /* Describe / DataRow */
		(void)proto_get_u8(&r);
		(void)proto_get_cstr(&r);
		(void)proto_get_cstr(&r);
		break;
	}
	FUZZ_CHECK(r.left <= len);
}

static void drill_stream(const uint8_t *buf, size_t len, uint32_t max_len)
{
	size_t at = 0;
	for (;;) {
		uint8_t type = 0;
		uint32_t total = 0;
		enum proto_result rc = proto_frame(buf + at, len - at, max_len, &type, &total);
		if (rc == PROTO_AGAIN) {
			FUZZ_CHECK(len - at < PROTO_HEADER_LEN);
			return;
		}
		if (rc == PROTO_ERR)
			return;
		FUZZ_CHECK(rc == PROTO_OK && type == buf[at]);
		FUZZ_CHECK(total >= PROTO_HEADER_LEN && total - 1 <= max_len);
		if (total > len - at)
			return; /* core/ would wait for the rest */
		uint8_t *body = fuzz_dup(buf + at + PROTO_HEADER_LEN, total - PROTO_HEADER_LEN);
		read_body(type, body, total - PROTO_HEADER_LEN);
		free(body);
		at += total;
	}
}

static void drill_reader(struct fuzz_in *in)
{
	/* first half of what is left: the script; second half: the data */
	size_t got;
	const uint8_t *script = fuzz_bytes(in, in->left / 2, &got);
	size_t n_ops = got;
	uint8_t *data = fuzz_dup(in->p, in->left);
	size_t len = in->left;
	struct proto_reader r = proto_reader_init(data, len);

	for (size_t i = 0; i < n_ops; i++) {
		size_t before = r.left;
		bool was_err = r.err;
		const uint8_t *at = r.p;
		size_t want = 0;
		const void *res = NULL;
		switch (script[i] % 5) {
		case 0:
			(void)proto_get_u8(&r);
			want = 1;
			break;
		case 1:
			(void)proto_get_i16(&r);
			want = 2;
			break;
		case 2:
			(void)proto_get_i32(&r);
			want = 4;
			break;
		case 3:
			res = proto_get_cstr(&r);
			if (res) {
				want = strlen(res) + 1;
				FUZZ_CHECK(res == (const void *)at);
			}
			break;
		case 4:
			want = script[i] / 5;
			res = proto_get_bytes(&r, want);
			FUZZ_CHECK(!res || res == (const void *)at);
			break;
		}
		if (was_err) {
			FUZZ_CHECK(r.err && r.left == before); /* errors stick */
		} else if (r.err) {
			FUZZ_CHECK(r.left == before
				   && r.p == at); /* a failed read consumes nothing */
		} else {
			FUZZ_CHECK(before >= want && r.left == before - want && r.p == at + want);
		}
		FUZZ_CHECK(r.p >= data && (size_t)(r.p - data) + r.left == len);
	}
	free(data);
}

/* Frames the built message and returns its body, or NULL if the builder
 * overflowed. Untyped (startup/cancel) messages are framed by length only. */
static const uint8_t *check_built(struct proto_writer *w, size_t cap, uint8_t type, size_t *blen)
{
	FUZZ_CHECK(w->len <= cap);
	if (w->overflow)
		return NULL;
	if (type == 0) {
		FUZZ_CHECK(w->len >= 4 && proto_be32(w->p) == w->len);
		*blen = w->len - 4;
		return w->p + 4;
	}
	uint8_t t = 0;
	uint32_t total = 0;
	FUZZ_CHECK(proto_frame(w->p, w->len, PROTO_MAX_MESSAGE, &t, &total) == PROTO_OK);
	FUZZ_CHECK(t == type && total == w->len);
	*blen = w->len - PROTO_HEADER_LEN;
	return w->p + PROTO_HEADER_LEN;
}

#define MAX_STR   300
#define MAX_EXTRA 8

static void drill_builders(struct fuzz_in *in)
{
	uint8_t which = fuzz_u8(in) % 14;
	size_t cap = fuzz_u16(in) % 4096;
	int32_t a = (int32_t)((uint32_t)fuzz_u16(in) << 16 | fuzz_u16(in));
	int32_t b = (int32_t)((uint32_t)fuzz_u16(in) << 16 | fuzz_u16(in));
	char s1[MAX_STR], s2[MAX_STR], s3[MAX_STR];
	fuzz_cstr(in, s1, sizeof(s1));
	fuzz_cstr(in, s2, sizeof(s2));
	fuzz_cstr(in, s3, sizeof(s3));
	char names_buf[MAX_EXTRA][64], values_buf[MAX_EXTRA][64];
	const char *names[MAX_EXTRA], *values[MAX_EXTRA];
	int n_extra = fuzz_u8(in) % (MAX_EXTRA + 1);
	for (int i = 0; i < n_extra; i++) {
		names[i] = fuzz_cstr(in, names_buf[i], sizeof(names_buf[i]));
		values[i] = fuzz_cstr(in, values_buf[i], sizeof(values_buf[i]));
	}
	size_t raw_len;
	const uint8_t *raw = fuzz_bytes(in, in->left, &raw_len);

	uint8_t *buf = malloc(cap ? cap : 1);
	if (!buf)
		abort();
	struct proto_writer w = proto_writer_init(buf, cap);
	const uint8_t *body;
	size_t blen = 0;
	struct proto_reader r;

	switch (which) {
	case 0:
		proto_build_auth(&w, a, raw, raw_len);
		if ((body = check_built(&w, cap, 'R', &blen))) {
			r = proto_reader_init(body, blen);
			FUZZ_CHECK(proto_get_i32(&r) == a && r.left == raw_len);
			FUZZ_CHECK(raw_len == 0 || memcmp(r.p, raw, raw_len) == 0);
		}
		break;
	case 1:
		proto_build_parameter_status(&w, s1, s2);
		if ((body = check_built(&w, cap, 'S', &blen))) {
			r = proto_reader_init(body, blen);
			FUZZ_CHECK(strcmp(proto_get_cstr(&r), s1) == 0);
			FUZZ_CHECK(strcmp(proto_get_cstr(&r), s2) == 0 && r.left == 0);
		}
		break;
	case 2:
		proto_build_backend_key(&w, a, b);
		if ((body = check_built(&w, cap, 'K', &blen))) {
			r = proto_reader_init(body, blen);
			FUZZ_CHECK(proto_get_i32(&r) == a && proto_get_i32(&r) == b && r.left == 0);
		}
		break;
	case 3:
		proto_build_ready(&w, (char)a);
		if ((body = check_built(&w, cap, 'Z', &blen)))
			FUZZ_CHECK(blen == 1 && body[0] == (uint8_t)a);
		break;
	case 4: {
		proto_build_error(&w, s1, s2, s3);
		if ((body = check_built(&w, cap, 'E', &blen))) {
			struct proto_error_fields f;
			FUZZ_CHECK(proto_parse_error(body, blen, &f) == PROTO_OK);
			FUZZ_CHECK(strcmp(f.severity, s1) == 0 && strcmp(f.code, s2) == 0);
			FUZZ_CHECK(strcmp(f.message, s3) == 0 && !f.detail);
		}
		break;
	}
	case 5:
		proto_build_negotiate_version(&w, a, n_extra, names);
		if ((body = check_built(&w, cap, 'v', &blen))) {
			r = proto_reader_init(body, blen);
			FUZZ_CHECK(proto_get_i32(&r) == a && proto_get_i32(&r) == n_extra);
			for (int i = 0; i < n_extra; i++)
				FUZZ_CHECK(strcmp(proto_get_cstr(&r), names[i]) == 0);
			FUZZ_CHECK(r.left == 0 && !r.err);
		}
		break;
	case 6: {
		proto_build_startup(&w, s1, s2, n_extra, names, values);
		if ((body = check_built(&w, cap, 0, &blen))) {
			struct proto_startup st;
			const char *why;
			enum proto_result rc = proto_parse_startup(w.p, w.len, &st, &why);
			if (w.len < 8 || w.len > PROTO_MAX_STARTUP)
				FUZZ_CHECK(rc == PROTO_ERR);
			if (rc == PROTO_OK) {
				/* a parameter given again counts with its last value,
				 * as in PostgreSQL (user and database too) */
				const char *user = s1, *db = s2;
				for (int i = 0; i < n_extra; i++) {
					if (strcmp(names[i], "user") == 0)
						user = values[i];
					if (strcmp(names[i], "database") == 0)
						db = values[i];
				}
				FUZZ_CHECK(st.kind == PROTO_STARTUP_V3 && st.minor == 0);
				FUZZ_CHECK(st.total == w.len && strcmp(st.user, user) == 0);
				FUZZ_CHECK(strcmp(st.database, *db ? db : user) == 0);
				FUZZ_CHECK(st.n_params == 2 + n_extra);
			} else {
				FUZZ_CHECK(rc == PROTO_ERR && why);
			}
		}
		break;
	}
	case 7:
		proto_build_password(&w, s1);
		if ((body = check_built(&w, cap, 'p', &blen)))
			FUZZ_CHECK(blen == strlen(s1) + 1 && memcmp(body, s1, blen) == 0);
		break;
	case 8:
		proto_build_sasl_initial(&w, s1, raw, raw_len);
		if ((body = check_built(&w, cap, 'p', &blen))) {
			r = proto_reader_init(body, blen);
			FUZZ_CHECK(strcmp(proto_get_cstr(&r), s1) == 0);
			FUZZ_CHECK(proto_get_i32(&r) == (int32_t)raw_len && r.left == raw_len);
		}
		break;
	case 9:
		proto_build_sasl_response(&w, raw, raw_len);
		if ((body = check_built(&w, cap, 'p', &blen)))
			FUZZ_CHECK(blen == raw_len && (!blen || memcmp(body, raw, blen) == 0));
		break;
	case 10:
		proto_build_query(&w, s1);
		if ((body = check_built(&w, cap, 'Q', &blen)))
			FUZZ_CHECK(blen == strlen(s1) + 1 && strcmp((const char *)body, s1) == 0);
		break;
	case 11:
		proto_build_terminate(&w);
		if ((body = check_built(&w, cap, 'X', &blen)))
			FUZZ_CHECK(blen == 0);
		break;
	case 12: {
		proto_build_cancel(&w, a, b);
		if ((body = check_built(&w, cap, 0, &blen))) {
			struct proto_startup st;
			const char *why;
			FUZZ_CHECK(proto_parse_startup(w.p, w.len, &st, &why) == PROTO_OK);
			FUZZ_CHECK(st.kind == PROTO_STARTUP_CANCEL && st.cancel_pid == a
				   && st.cancel_key == b);
		}
		break;
	}
	case 13: {
		/* a raw writer sequence: put_* calls never write past cap */
		for (size_t i = 0; i < raw_len; i++) {
			switch (raw[i] % 4) {
			case 0:
				proto_put_u8(&w, raw[i]);
				break;
			case 1:
				proto_put_i32(&w, (int32_t)raw[i] << 20);
				break;
			case 2:
				proto_put_cstr(&w, s1);
				break;
			case 3:
				proto_put_bytes(&w, raw, raw_len - i);
				break;
			}
			FUZZ_CHECK(w.len <= cap);
		}
		break;
	}
	}
	free(buf);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	struct fuzz_in in = { data, size };
	uint8_t mode = fuzz_u8(&in);
	switch (mode % 3) {
	case 0: {
		/* small limits from the second byte too, so the max_len edge is reached */
		uint8_t lim = fuzz_u8(&in);
		uint32_t max_len = lim < 128 ? PROTO_MAX_MESSAGE : (uint32_t)lim * 8;
		uint8_t *buf = fuzz_dup(in.p, in.left);
		drill_stream(buf, in.left, max_len);
		free(buf);
		break;
	}
	case 1:
		drill_reader(&in);
		break;
	case 2:
		drill_builders(&in);
		break;
	}
	return 0;
}
