#!/usr/bin/env python3
"""Writes the seed corpus under tests/fuzz/corpus/<target>/: real protocol
messages laid out the way each target reads its input (see the comment at the
top of tests/fuzz/fuzz_<target>.c). Run from the repository root after
changing an input layout; the output is committed."""
import os
import struct
import sys

ROOT = os.path.join(os.path.dirname(os.path.abspath(__file__)), "corpus")


def msg(t, body=b""):
    return t + struct.pack("!I", len(body) + 4) + body


def cstr(s):
    return (s if isinstance(s, bytes) else s.encode()) + b"\0"


def startup(params, version=196608):
    body = struct.pack("!I", version)
    for k, v in params:
        body += cstr(k) + cstr(v)
    body += b"\0"
    return struct.pack("!I", len(body) + 4) + body


SSL = struct.pack("!II", 8, 80877103)
GSS = struct.pack("!II", 8, 80877104)
CANCEL = struct.pack("!IIii", 16, 80877102, 4242, -559038737)

# ---- client and server streams (also the client/server targets' seeds) ----
PARSE_BIND = (msg(b"P", cstr("s1") + cstr("select $1::int") + struct.pack("!hi", 1, 23))
              + msg(b"B", cstr("") + cstr("s1") + struct.pack("!hh", 1, 0)
                    + struct.pack("!hi", 1, 1) + b"7" + struct.pack("!hh", 1, 0))
              + msg(b"D", b"P" + cstr("")) + msg(b"E", cstr("") + struct.pack("!i", 0))
              + msg(b"S"))
SIMPLE = msg(b"Q", cstr("select 1"))
TX = (msg(b"Q", cstr("begin")) + msg(b"Q", cstr("select pg_backend_pid()"))
      + msg(b"Q", cstr("commit")))
CLOSE = msg(b"C", b"S" + cstr("s1")) + msg(b"S") + msg(b"X")
COPY = msg(b"Q", cstr("copy t from stdin")) + msg(b"d", b"1\n2\n") + msg(b"c")
ERROR = msg(b"E", b"SERROR\0VERROR\0C42601\0Msyntax error at or near \"selec\"\0P1\0\0")
NOTICE = msg(b"N", b"SNOTICE\0VNOTICE\0C00000\0Mhello\0Ddetail\0\0")
LOGIN_OK = (msg(b"R", struct.pack("!i", 0)) + msg(b"S", cstr("server_version") + cstr("15.8"))
            + msg(b"S", cstr("client_encoding") + cstr("UTF8")) + msg(b"K", struct.pack("!ii", 77, 88))
            + msg(b"Z", b"I"))
ROWS = (msg(b"1") + msg(b"2")
        + msg(b"T", struct.pack("!h", 1) + cstr("int4") + struct.pack("!ihihih", 0, 0, 23, 4, -1, 0))
        + msg(b"D", struct.pack("!hi", 1, 1) + b"7") + msg(b"C", cstr("SELECT 1")) + msg(b"Z", b"I"))
TX_REPLY = (msg(b"C", cstr("BEGIN")) + msg(b"Z", b"T") + ERROR + msg(b"Z", b"E")
            + msg(b"C", cstr("ROLLBACK")) + msg(b"Z", b"I"))
SASL = msg(b"R", struct.pack("!i", 10) + cstr("SCRAM-SHA-256") + b"\0")
MD5 = msg(b"R", struct.pack("!i", 5) + b"\x01\x02\x03\x04")
NEGOTIATE = msg(b"v", struct.pack("!ii", 0, 1) + cstr("_pq_.foo"))


def write(target, name, data):
    d = os.path.join(ROOT, target)
    os.makedirs(d, exist_ok=True)
    with open(os.path.join(d, name), "wb") as f:
        f.write(data)


def proto_seeds():
    streams = {
        "client_extended": PARSE_BIND, "client_simple": SIMPLE + msg(b"X"), "client_tx": TX,
        "client_close": CLOSE, "client_copy": COPY, "server_login": LOGIN_OK + NOTICE,
        "server_rows": ROWS, "server_tx": TX_REPLY + ERROR, "server_sasl": SASL + MD5 + NEGOTIATE,
        "frame_short_len": b"Q\0\0\0\x03", "frame_huge_len": b"D\x7f\xff\xff\xff",
    }
    for name, s in streams.items():
        write("proto", "stream_" + name, b"\x00\x00" + s)
    write("proto", "stream_small_limit", b"\x00\xc8" + ROWS)
    write("proto", "reader_script", b"\x01" + bytes([0, 1, 2, 3, 4 + 5 * 7, 3, 2]) + b"abc\0defghijklmn\0")

    def builder(which, cap, a, b, s1, s2, s3, extras=(), raw=b""):
        out = b"\x02" + bytes([which]) + struct.pack("!H", cap)
        out += struct.pack("!HH", a >> 16, a & 0xFFFF) + struct.pack("!HH", b >> 16, b & 0xFFFF)
        out += cstr(s1) + cstr(s2) + cstr(s3) + bytes([len(extras)])
        for k, v in extras:
            out += cstr(k) + cstr(v)
        return out + raw

    write("proto", "build_auth", builder(0, 512, 10, 0, "", "", "", raw=b"SCRAM-SHA-256\0\0"))
    write("proto", "build_param", builder(1, 512, 0, 0, "TimeZone", "UTC", ""))
    write("proto", "build_key", builder(2, 64, 1234, 0x7FFFFFFF, "", "", ""))
    write("proto", "build_ready", builder(3, 6, ord("T"), 0, "", "", ""))
    write("proto", "build_error", builder(4, 512, 0, 0, "FATAL", "08P01", "invalid frame length"))
    write("proto", "build_error_tight", builder(4, 40, 0, 0, "FATAL", "08P01", "invalid frame length"))
    write("proto", "build_negotiate", builder(5, 512, 0, 0, "", "", "", [("_pq_.a", ""), ("_pq_.b", "")]))
    write("proto", "build_startup", builder(6, 4000, 0, 0, "alice", "shard_a", "",
                                            [("application_name", "psql"), ("client_encoding", "UTF8")]))
    write("proto", "build_startup_nodb", builder(6, 4000, 0, 0, "bob", "", ""))
    write("proto", "build_password", builder(7, 100, 0, 0, "secret", "", ""))
    write("proto", "build_sasl_initial", builder(8, 300, 0, 0, "SCRAM-SHA-256", "", "", raw=b"n,,n=,r=abc"))
    write("proto", "build_sasl_response", builder(9, 300, 0, 0, "", "", "", raw=b"c=biws,r=abcdef,p=xyz"))
    write("proto", "build_query", builder(10, 300, 0, 0, "select 1", "", ""))
    write("proto", "build_terminate", builder(11, 5, 0, 0, "", "", ""))
    write("proto", "build_cancel", builder(12, 16, 4242, 99, "", "", ""))
    write("proto", "build_raw", builder(13, 30, 0, 0, "x", "", "", raw=bytes(range(40))))


def startup_seeds():
    write("startup", "v3_psql", startup([("user", "alice"), ("database", "shard_a"),
                                         ("application_name", "psql"), ("client_encoding", "UTF8")]))
    write("startup", "v3_user_only", startup([("user", "bob")]))
    write("startup", "v3_options", startup([("user", "u"), ("database", "d"), ("options", "-c search_path=x")]))
    write("startup", "v3_2_pq_params", startup([("user", "u"), ("_pq_.protocol_managed_params", "x")],
                                               version=(3 << 16) | 2))
    write("startup", "v2", startup([("user", "u")], version=2 << 16))
    write("startup", "ssl_then_v3", SSL + startup([("user", "u"), ("database", "d")]))
    write("startup", "gss_ssl_v3", GSS + SSL + startup([("user", "u")]))
    write("startup", "cancel", CANCEL)
    write("startup", "duplicate", startup([("user", "u"), ("user", "v")]))
    write("startup", "no_user", startup([("database", "d")]))
    write("startup", "unterminated", startup([("user", "u")])[:-1])
    write("startup", "many_params", startup([("user", "u")] + [("p%d" % i, "v") for i in range(70)]))
    write("startup", "long_value", startup([("user", "u"), ("application_name", "a" * 9900)]))
    write("startup", "too_long", startup([("user", "u"), ("application_name", "a" * 10000)]))
    write("startup", "short", struct.pack("!I", 7))


# RFC 7677's example exchange; PostgreSQL sends an empty user name, the
# harness takes the name as input so the RFC vector itself is a seed.
RFC_NONCE = "rOprNGfwEbeRWgbNEkqO"
RFC_FIRST = RFC_NONCE + "%hvYDpWUa2RaTCAfuxFIlj)hNlF$k0"
RFC_SALT = "W22ZaJ0SNY7soEsUEjb6gQ=="


def scram(flags, cap, password, nonce, user, first, final):
    first = first.encode() if isinstance(first, str) else first
    final = final.encode() if isinstance(final, str) else final
    return (b"\x00" + bytes([flags]) + struct.pack("!H", cap) + cstr(password) + cstr(nonce)
            + cstr(user) + struct.pack("!H", len(first)) + first + final)


def scram_server_seeds():
    def first(flags, initial, *responses):
        initial = initial.encode() if isinstance(initial, str) else initial
        out = bytes([flags]) + struct.pack("!H", len(initial)) + initial
        for r in responses:
            r = r.encode() if isinstance(r, str) else r
            out += struct.pack("!H", len(r)) + r
        return out

    def initial(mech, data):
        data = data.encode()
        return mech.encode() + b"\0" + struct.pack("!i", len(data)) + data

    rfc = "n,,n=user,r=" + RFC_NONCE
    final = "c=biws,r=%sfuzzservernonce,p=dHzbZapWIk4jUhN+Ute9ytag9zjfMHgsqmmiz7AndVQ=" % RFC_NONCE
    write("scram_server", "rfc_first", first(1, initial("SCRAM-SHA-256", rfc), final))
    write("scram_server", "mock", first(0, initial("SCRAM-SHA-256", rfc), final))
    write("scram_server", "honest", bytes([5, 0]))
    write("scram_server", "honest_spoiled", bytes([13, 77]))
    write("scram_server", "plus", first(3, initial("SCRAM-SHA-256-PLUS", "p=tls-server-end-point,,n=,r=abc"),
                                        "c=cD10bHMtc2VydmVyLWVuZC1wb2ludCwsAQIDBAUGBwgAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA=,r=abcfuzzservernonce,p=AAAA"))
    write("scram_server", "downgrade", first(3, initial("SCRAM-SHA-256", "y,,n=,r=abc")))
    write("scram_server", "no_data", first(1, b"SCRAM-SHA-256\0\xff\xff\xff\xff", rfc, final))
    write("scram_server", "authzid", first(1, initial("SCRAM-SHA-256", "n,a=x,n=,r=abc")))
    write("scram_server", "extensions", first(1, initial("SCRAM-SHA-256", rfc + ",x=1"),
                                              "c=biws,r=%sfuzzservernonce,e=1,p=AAAA" % RFC_NONCE))


def scram_seeds():
    good_first = "r=%s,s=%s,i=4096" % (RFC_FIRST, RFC_SALT)
    write("scram", "rfc7677", scram(0, 1024, "pencil", RFC_NONCE, "user", good_first,
                                    "v=6rriTRBi23WpRR/wtup+mMhUZUn/dB5nLTJRsjl95G4="))
    write("scram", "rfc7677_honest", scram(1, 1024, "pencil", RFC_NONCE, "user", good_first, ""))
    write("scram", "pg_empty_user_i16", scram(1, 1024, "secret", "fuzznonce", "",
                                              "r=fuzznonceSERVER,s=c2FsdA==,i=16", ""))
    write("scram", "honest_spoiled", scram(7, 1024, "secret", "fuzznonce", "",
                                           "r=fuzznonceSERVER,s=c2FsdA==,i=16", "x"))
    write("scram", "server_error", scram(0, 1024, "pencil", RFC_NONCE, "", good_first,
                                         "e=invalid-proof"))
    write("scram", "long_nonce", scram(0, 2048, "pencil", RFC_NONCE, "",
                                       "r=" + RFC_NONCE + "x" * 1500 + ",s=" + RFC_SALT + ",i=1", ""))
    write("scram", "long_nonce_fits", scram(1, 2048, "pencil", RFC_NONCE, "",
                                            "r=" + RFC_NONCE + "x" * 900 + ",s=" + RFC_SALT + ",i=1", ""))
    write("scram", "long_salt", scram(0, 2048, "pencil", RFC_NONCE, "",
                                      "r=" + RFC_FIRST + ",s=" + "QUFB" * 240 + ",i=2", ""))
    write("scram", "huge_iterations", scram(0, 1024, "pencil", RFC_NONCE, "",
                                            "r=%s,s=%s,i=99999999999999999999" % (RFC_FIRST, RFC_SALT), ""))
    write("scram", "extension", scram(0, 1024, "pencil", RFC_NONCE, "",
                                      "r=%s,s=%s,i=1,x=y" % (RFC_FIRST, RFC_SALT), ""))
    write("scram", "user_escapes", scram(0, 300, "p", "n", "a,b=c", "r=nX,s=QQ==,i=1", ""))
    write("scram", "tiny_cap", scram(0, 20, "pencil", RFC_NONCE, "", good_first, ""))
    write("scram", "md5", b"\x01" + cstr("alice") + cstr("secret") + b"\x01\x02\x03\x04"
          + cstr("pw1") + cstr("pw2"))


def config_seeds():
    example = os.path.join(os.path.dirname(ROOT), "..", "..", "pgcrab.ini.example")
    with open(example, "rb") as f:
        write("config", "example", f.read())
    write("config", "minimal", b"[pgcrab]\nport = 7432\n\n[shard.a]\nuser = postgres\n\n"
          b"[user.app]\npassword = secret\n")
    write("config", "full", b"""; all keys
[pgcrab]
host = 0.0.0.0
port = 7432
workers = 2
pool_mode = session
auth_type = plain
max_client_conn = 1500
admin_users = admin, ops
metrics_port = 9187
server_connect_timeout = 250ms
query_wait_timeout = 2min
client_login_timeout = 10
client_idle_timeout = 1h
idle_transaction_timeout = 30s
server_idle_timeout = 60s
server_lifetime = 3600s
shutdown_timeout = 5s
max_prepared_statements = 0
server_reset_query =
log_level = debug

[shard.a]
host = db1.example
port = 5433
database = app
user = app
password = pw
min_connections = 2
max_connections = 10

[shard.b]
user = app
max_connections = 1
""")
    write("config", "errors", b"[pgcrab]\nport = 70000\n[shard.a]\nmin_connections = 5\nmax_connections = 2\n")
    write("config", "bad_header", b"[shard.a\nuser = x\n")
    write("config", "duplicate", b"\xef\xbb\xbf[pgcrab]\nport = 1\nport = 2\n[shard.x]\n[shard.x]\n")
    write("config", "overrides", b"\x01" + cstr("::1") + cstr("8000") + cstr("3") + cstr("session")
          + cstr("warn") + b"[shard.a]\nuser = u\n")
    write("config", "overrides_bad", b"\x01" + cstr("") + cstr("0") + b"\0\0\0" + b"[pgcrab]\n")
    write("config", "tls_future", b"[pgcrab]\ntls_cert_file = x\n")
    write("config", "duration_max", b"36500000d")
    write("config", "sharding", b"""[sharded_table.Sales.Orders]
database = app
columns = tenant_id, id
types = int8, text
[sharded_table.accounts]
database = app
columns = id
types = uuid
[database.app]
shards = s0, s1
shards = s2
cross_shard_queries = error
cross_shard_writes = 2pc
[shard.s0]
user = u
[shard.s1]
user = u
[shard.s2]
user = u
""")
    write("config", "sharding_errors", b"[database.app]\nshards = a, a, b\n[sharded_table.t]\n"
          b"database = nope\ncolumns = a, b\ntypes = int16\n[shard.a]\nuser = u\n")


LOGIN = startup([("user", "app"), ("database", "db"), ("application_name", "fuzz")]) + msg(b"p", cstr("secret"))
NAMED = (msg(b"P", cstr("st1") + cstr("select $1") + struct.pack("!h", 0))
         + msg(b"B", cstr("") + cstr("st1") + struct.pack("!hhh", 0, 0, 0)) + msg(b"E", cstr("") + struct.pack("!i", 0))
         + msg(b"S")
         + msg(b"B", cstr("") + cstr("st1") + struct.pack("!hhh", 0, 0, 0)) + msg(b"D", b"S" + cstr("st1"))
         + msg(b"E", cstr("") + struct.pack("!i", 0)) + msg(b"S"))
FAIL_EXT = msg(b"P", cstr("") + cstr("fail") + struct.pack("!h", 0)) + msg(b"B", cstr("") + cstr("") + b"\0" * 6) + msg(b"S")


def client_seeds():
    streams = {
        "simple": LOGIN + SIMPLE + msg(b"X"),
        "extended": LOGIN + PARSE_BIND + msg(b"X"),
        "tx": LOGIN + TX + msg(b"X"),
        "tx_error": LOGIN + msg(b"Q", cstr("begin")) + msg(b"Q", cstr("fail")) + msg(b"Q", cstr("select 1"))
        + msg(b"Q", cstr("rollback")),
        "named": LOGIN + NAMED + CLOSE,
        "fail_extended": LOGIN + FAIL_EXT + SIMPLE,
        "set": LOGIN + msg(b"Q", cstr("set application_name = 'x'")) + SIMPLE,
        "ssl_first": SSL + GSS + LOGIN + SIMPLE,
        "cancel": CANCEL,
        "bad_password": startup([("user", "app"), ("database", "db")]) + msg(b"p", cstr("wrong")),
        "unknown_db": startup([("user", "app"), ("database", "nope")]) + msg(b"p", cstr("secret")),
        "bad_type": LOGIN + msg(b"!", b"x"),
        "bad_len": LOGIN + b"Q\0\0\0\x02",
        "after_terminate": LOGIN + msg(b"X") + b"garbage",
        "empty_query": LOGIN + msg(b"Q", b"\0") + msg(b"H") + msg(b"F", b"\0" * 10),
        "protocol_3_2": startup([("user", "app"), ("database", "db"), ("_pq_.x", "1")], version=(3 << 16) | 2)
        + msg(b"p", cstr("secret")) + SIMPLE,
    }
    # PgCrab reads what a client pipelines behind its startup packet or
    # password only when more bytes arrive, so the seeds come in pieces
    for name, s in streams.items():
        write("client", name, b"\x05" + s)
    write("client", "whole", b"\0" + LOGIN + SIMPLE)
    write("client", "split_7", b"\x07" + LOGIN + PARSE_BIND + TX)
    write("client", "session_named", b"\x85" + LOGIN + NAMED + TX + msg(b"X"))
    write("client", "session_tx_open", b"\x85" + LOGIN + msg(b"Q", cstr("begin")) + SIMPLE)
    write("client", "split_1", b"\x01" + LOGIN + SIMPLE)


def turns(*ts):
    return b"".join(struct.pack("!H", len(t)) + t for t in ts)


def auth(code, data=b""):
    return msg(b"R", struct.pack("!i", code) + data)


def scram_login(extra_nonce="srvnonce", salt=b"fuzzsalt", iterations=4096, good=True):
    """The SCRAM exchange fuzz_server.c's PgCrab (password fuzzpw, RAND_bytes
    replaced by 1, 2, 3...) runs, as three server turns."""
    import base64, hashlib, hmac
    cnonce = base64.b64encode(bytes(range(1, 25))).decode()
    first = "r=%s%s,s=%s,i=%d" % (cnonce, extra_nonce, base64.b64encode(salt).decode(), iterations)
    bare = "n=,r=" + cnonce
    without_proof = "c=biws,r=" + cnonce + extra_nonce
    auth_message = (bare + "," + first + "," + without_proof).encode()
    salted = hashlib.pbkdf2_hmac("sha256", b"fuzzpw", salt, iterations)
    server_key = hmac.new(salted, b"Server Key", hashlib.sha256).digest()
    sig = hmac.new(server_key, auth_message, hashlib.sha256).digest()
    if not good:
        sig = bytes([sig[0] ^ 1]) + sig[1:]
    final = "v=" + base64.b64encode(sig).decode()
    return [auth(10, cstr("SCRAM-SHA-256") + b"\0"), auth(11, first.encode()),
            auth(12, final.encode()) + LOGIN_OK]


REPLY_SIMPLE = msg(b"T", struct.pack("!h", 1) + cstr("x") + struct.pack("!ihihih", 0, 0, 23, 4, -1, 0)) \
    + msg(b"D", struct.pack("!hi", 1, 1) + b"1") + msg(b"C", cstr("SELECT 1")) + msg(b"Z", b"I")
REPLY_EXT = msg(b"1") + msg(b"2") + msg(b"n") + msg(b"D", struct.pack("!hi", 1, 1) + b"1") \
    + msg(b"C", cstr("SELECT 1")) + msg(b"Z", b"I")
REPLY_TX = msg(b"C", cstr("BEGIN")) + msg(b"Z", b"T") + REPLY_SIMPLE[:-6] + msg(b"Z", b"T") \
    + msg(b"C", cstr("COMMIT")) + msg(b"Z", b"I")
SET_REPLY = msg(b"S", cstr("application_name") + cstr("fuzz")) + msg(b"C", cstr("SET")) + msg(b"Z", b"I")


def server_seeds():
    def w(name, script, chunk, *ts):
        write("server", name, bytes([script, chunk]) + turns(*ts))
    w("simple", 0, 0, LOGIN_OK, REPLY_SIMPLE)
    w("simple_split", 0, 3, LOGIN_OK, REPLY_SIMPLE)
    w("extended", 1, 0, LOGIN_OK, REPLY_EXT)
    w("tx", 2, 0, LOGIN_OK, REPLY_TX)
    w("tx_left_open", 2, 0, LOGIN_OK, msg(b"C", cstr("BEGIN")) + msg(b"Z", b"T"), msg(b"C", cstr("ROLLBACK")) + msg(b"Z", b"I"))
    w("named_set", 3, 0, LOGIN_OK, SET_REPLY + REPLY_EXT, REPLY_EXT)
    w("error_reply", 0, 0, LOGIN_OK, ERROR + msg(b"Z", b"I"))
    w("fatal_reply", 0, 0, LOGIN_OK, msg(b"E", b"SFATAL\0VFATAL\0C57P01\0Mterminating\0\0"))
    w("notice_param", 0, 0, LOGIN_OK, NOTICE + msg(b"S", cstr("TimeZone") + cstr("UTC")) + msg(b"A", struct.pack("!i", 1) + cstr("ch") + cstr("x")) + REPLY_SIMPLE)
    w("cleartext", 0, 0, auth(3), LOGIN_OK, REPLY_SIMPLE)
    w("md5", 0, 0, auth(5, b"\x01\x02\x03\x04"), LOGIN_OK, REPLY_SIMPLE)
    w("scram", 0, 0, *scram_login(), REPLY_SIMPLE)
    w("scram_bad_signature", 0, 0, *scram_login(good=False), REPLY_SIMPLE)
    w("scram_long_nonce", 0, 0, *scram_login(extra_nonce="x" * 3000), REPLY_SIMPLE)
    w("scram_long_salt", 0, 0, *scram_login(salt=b"s" * 2000, iterations=1), REPLY_SIMPLE)
    w("login_error", 0, 0, msg(b"E", b"SFATAL\0VFATAL\0C28P01\0Mpassword authentication failed\0\0"))
    w("login_unknown_auth", 0, 0, auth(7))
    w("login_negotiate", 0, 0, NEGOTIATE + LOGIN_OK, REPLY_SIMPLE)
    w("oversize_frame", 0, 0, LOGIN_OK, b"D\x7f\xff\xff\xff")
    w("short_ready", 0, 0, LOGIN_OK, msg(b"Z"))
    w("mid_message_close", 0, 0, LOGIN_OK, REPLY_SIMPLE[:20])
    w("unsolicited", 0, 0, LOGIN_OK + REPLY_SIMPLE)
    # session pooling: the server is reset with DISCARD ALL when the client leaves
    w("session_discard", 0x80, 0, LOGIN_OK, REPLY_SIMPLE, msg(b"C", cstr("DISCARD ALL")) + msg(b"Z", b"I"))
    w("session_named", 0x83, 0, LOGIN_OK, SET_REPLY + REPLY_EXT + REPLY_EXT,
      msg(b"C", cstr("DISCARD ALL")) + msg(b"Z", b"I"))


if __name__ == "__main__":
    which = sys.argv[1:] or ["proto", "startup", "scram", "scram_server", "config", "client", "server"]
    for w in which:
        globals()[w + "_seeds"]()
