/* libFuzzer target: proto_parse_startup, the first bytes any client sends
 * (StartupMessage, CancelRequest, SSLRequest, GSSENCRequest).
 *
 * The whole input is the client's byte stream, parsed as session/login.c does:
 * from its start, then again after each complete packet. Beyond "no crash",
 * it checks the contract: AGAIN only while the declared length is plausible
 * and not yet all there, every pointer inside the packet, every string
 * terminated inside it, no duplicate names, a user always, and every prefix
 * of an accepted packet answered with AGAIN (a slow client is never refused
 * for being slow). An accepted StartupMessage is rebuilt with
 * proto_build_startup and must parse back to the same parameters. */
#include "tests/fuzz/fuzz.h"

#include "proto/proto.h"

static void check_str(const uint8_t *pkt, uint32_t total, const char *s)
{
	const uint8_t *q = (const uint8_t *)s;
	FUZZ_CHECK(q >= pkt + 8 && q < pkt + total);
	size_t room = (size_t)(pkt + total - q);
	FUZZ_CHECK(memchr(q, 0, room) != NULL);
}

static void check_roundtrip(const struct proto_startup *st)
{
	/* user and database first, as the builder writes them */
	const char *names[PROTO_MAX_STARTUP_PARAMS], *values[PROTO_MAX_STARTUP_PARAMS];
	int n = 0, n_user = 0, n_db = 0;
	bool has_db = false;
	for (int i = 0; i < st->n_params; i++) {
		n_user += strcmp(st->names[i], "user") == 0;
		n_db += strcmp(st->names[i], "database") == 0;
	}
	if (n_user > 1 || n_db > 1)
		return; /* the builder writes each once: not the same packet */
	for (int i = 0; i < st->n_params; i++) {
		if (strcmp(st->names[i], "user") == 0)
			continue;
		if (strcmp(st->names[i], "database") == 0) {
			if (!*st->values[i])
				return; /* parsed as the user's name: rebuilt longer */
			has_db = true;
			continue;
		}
		names[n] = st->names[i];
		values[n] = st->values[i];
		n++;
	}
	if (!has_db)
		return; /* the builder always writes a database: not the same packet */
	uint8_t buf[PROTO_MAX_STARTUP];
	struct proto_writer w = proto_writer_init(buf, sizeof(buf));
	proto_build_startup(&w, st->user, st->database, n, names, values);
	FUZZ_CHECK(!w.overflow && w.len == st->total);
	struct proto_startup again;
	const char *why;
	FUZZ_CHECK(proto_parse_startup(buf, w.len, &again, &why) == PROTO_OK);
	FUZZ_CHECK(again.n_params == st->n_params && strcmp(again.user, st->user) == 0);
	FUZZ_CHECK(strcmp(again.database, st->database) == 0);
}

static void check_packet(const uint8_t *pkt, size_t len)
{
	struct proto_startup st;
	const char *why = "unset";
	enum proto_result rc = proto_parse_startup(pkt, len, &st, &why);
	if (rc == PROTO_AGAIN) {
		FUZZ_CHECK(why == NULL);
		if (len >= 4) {
			uint32_t total = proto_be32(pkt);
			FUZZ_CHECK(total >= 8 && total <= PROTO_MAX_STARTUP && len < total);
		}
		return;
	}
	if (rc == PROTO_ERR) {
		/* no reason only where PostgreSQL closes without a word: an
		 * impossible length or a CancelRequest that is not 16 bytes */
		if (why == NULL) {
			uint32_t total = proto_be32(pkt);
			FUZZ_CHECK(total < 8 || total > PROTO_MAX_STARTUP
				   || (total >= 8 && proto_be32(pkt + 4) == PROTO_CODE_CANCEL
				       && total != 16));
		} else {
			FUZZ_CHECK(*why);
		}
		return;
	}
	FUZZ_CHECK(rc == PROTO_OK && why == NULL);
	FUZZ_CHECK(st.total >= 8 && st.total <= PROTO_MAX_STARTUP && st.total <= len);
	FUZZ_CHECK(st.total == proto_be32(pkt));
	switch (st.kind) {
	case PROTO_STARTUP_SSL:
	case PROTO_STARTUP_GSSENC:
		return; /* any length: PostgreSQL 15 goes by the code */
	case PROTO_STARTUP_CANCEL:
		FUZZ_CHECK(st.total == 16);
		return;
	case PROTO_STARTUP_V3:
		break;
	default:
		FUZZ_CHECK(!"unknown startup kind");
	}
	FUZZ_CHECK(st.n_params >= 1 && st.n_params <= PROTO_MAX_STARTUP_PARAMS);
	FUZZ_CHECK(st.user && *st.user && st.database && *st.database);
	check_str(pkt, st.total, st.user);
	check_str(pkt, st.total, st.database);
	for (int i = 0; i < st.n_params; i++) {
		check_str(pkt, st.total, st.names[i]);
		check_str(pkt, st.total, st.values[i]);
		FUZZ_CHECK(*st.names[i]);
	}
	/* a name may come twice (PostgreSQL allows it): the last user counts */
	for (int i = st.n_params - 1; i >= 0; i--)
		if (strcmp(st.names[i], "user") == 0) {
			FUZZ_CHECK(st.user == st.values[i]);
			break;
		}
	/* the same packet arriving a few bytes at a time: AGAIN until complete */
	for (size_t cut = 0; cut < st.total; cut += 1 + cut / 2) {
		struct proto_startup part;
		uint8_t *prefix = fuzz_dup(pkt, cut);
		FUZZ_CHECK(proto_parse_startup(prefix, cut, &part, &why) == PROTO_AGAIN);
		free(prefix);
	}
	check_roundtrip(&st);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	uint8_t *buf = fuzz_dup(data, size);
	size_t at = 0;
	/* at most a few packets: a client gets one startup after SSLRequest/GSS */
	for (int n = 0; n < 4 && at < size; n++) {
		struct proto_startup st;
		const char *why;
		uint8_t *pkt = fuzz_dup(buf + at, size - at);
		check_packet(pkt, size - at);
		enum proto_result rc = proto_parse_startup(pkt, size - at, &st, &why);
		free(pkt);
		if (rc != PROTO_OK)
			break;
		at += st.total;
	}
	free(buf);
	return 0;
}
