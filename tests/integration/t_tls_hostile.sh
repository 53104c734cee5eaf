# Bad input on a TLS client connection (tls_lib.sh's CA, client_tls_mode =
# require): a ClientHello in pieces, a stalled handshake, garbage instead of
# a ClientHello, plaintext after 'S', a TLS 1.2 renegotiation, a close in
# the middle of a record. After each, another client over TLS is served;
# the sanitizer build's exit check (pgcrab_stop) finds no leak or error.
unset PG_PORT PG_DIR
source "$(dirname "$0")/lib.sh"
source "$(dirname "$0")/tls_lib.sh"

tls_setup
pgcrab_start "min_connections = 0" "client_tls_mode = require
client_tls_cert_file = $C/server.crt
client_tls_key_file = $C/server.key
client_login_timeout = 2s
log_level = debug" || exit 1

cat >"$T_DIR/hostile.py" <<'PY'
import os, socket, ssl, struct, sys, time

port, user, db, case = int(sys.argv[1]), sys.argv[2], sys.argv[3], sys.argv[4]
SSLREQ = struct.pack("!II", 8, 80877103)

def startup():
    body = struct.pack("!I", 196608) + b"user\0" + user.encode() + b"\0database\0" + db.encode() + b"\0\0"
    return struct.pack("!I", len(body) + 4) + body

def connect():
    s = socket.create_connection(("127.0.0.1", port), timeout=15)
    s.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
    s.sendall(SSLREQ)
    a = s.recv(1)
    assert a == b"S", a
    return s

def engine(maxv=None):
    ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_CLIENT)
    ctx.check_hostname = False
    ctx.verify_mode = ssl.CERT_NONE
    if maxv:
        ctx.maximum_version = maxv
    i, o = ssl.MemoryBIO(), ssl.MemoryBIO()
    return ctx.wrap_bio(i, o), i, o

def handshake(s, obj, i, o, first=None):
    while True:
        try:
            obj.do_handshake()
            data = o.read()
            if data:
                s.sendall(data)
            return
        except ssl.SSLWantReadError:
            data = o.read()
            if first is not None and data:
                first(data)
                first = None
            elif data:
                s.sendall(data)
            r = s.recv(65536)
            if not r:
                raise EOFError("closed during handshake")
            i.write(r)

def read_until_closed(s, limit=15):
    got = b""
    end = time.time() + limit
    while time.time() < end:
        try:
            r = s.recv(4096)
        except (ConnectionResetError, socket.timeout):
            break
        if not r:
            break
        got += r
    return got

if case == "pieces":
    s = connect()
    obj, i, o = engine()
    handshake(s, obj, i, o, first=lambda d: [s.send(d[k:k + 1]) for k in range(len(d))])
    obj.write(startup())
    s.sendall(o.read())
    while True:
        try:
            r = obj.read(1)
            break
        except ssl.SSLWantReadError:
            i.write(s.recv(4096))
    print("answer", r.decode())
elif case == "stall":
    s = connect()
    obj, i, o = engine()
    try:
        obj.do_handshake()
    except ssl.SSLWantReadError:
        pass
    hello = o.read()
    s.sendall(hello[: len(hello) // 2])
    got = read_until_closed(s, 30)
    print("closed", "alert" if got[:1] == b"\x15" else "silently" if not got else got[:8].hex())
elif case == "garbage":
    s = connect()
    s.sendall(os.urandom(300).replace(b"\x16", b"\x17"))
    got = read_until_closed(s)
    print("closed", "alert" if got[:1] == b"\x15" else "silently" if not got else got[:8].hex())
elif case == "plaintext":
    s = connect()
    s.sendall(startup())
    got = read_until_closed(s)
    print("closed", "alert" if got[:1] == b"\x15" else "silently" if not got else got[:8].hex())
elif case == "midrecord":
    s = connect()
    obj, i, o = engine()
    handshake(s, obj, i, o)
    obj.write(startup())
    rec = o.read()
    s.sendall(rec[: len(rec) // 2])
    s.close()
    print("sent half a record and closed")
PY

hostile() { timeout 60 /usr/bin/python3 "$T_DIR/hostile.py" "$PGCRAB_PORT" "$PC_USER" "$PG_DB" "$1" 2>&1; }
others_ok() {
	expect_eq "$1: another client over TLS is served" "ok" \
		"$(timeout 20 psql -X -At "$(PC_CONN) sslmode=require" -c "SELECT 'ok'" 2>&1)"
}

expect_eq "a ClientHello sent byte by byte completes the handshake and the login goes on" "answer R" "$(hostile pieces)"
others_ok "pieces"
out=$(hostile stall)
check "a stalled handshake is closed by client_login_timeout ($out)" grep -q "^closed" <<<"$out"
check "...and the log says why" grep -q "client_login_timeout" "$T_DIR/pgcrab.log"
others_ok "stall"
# OpenSSL answers some garbage with an alert and some (no TLS record at
# all) by closing: either, never a PostgreSQL message in plaintext
out=$(hostile garbage)
check "garbage instead of a ClientHello: closed ($out)" grep -Eq "^closed (alert|silently)" <<<"$out"
check "...and the log says the handshake failed" grep -q "TLS handshake failed" "$T_DIR/pgcrab.log"
others_ok "garbage"
out=$(hostile plaintext)
check "plaintext after 'S': closed ($out)" grep -Eq "^closed (alert|silently)" <<<"$out"
others_ok "plaintext"
out=$(hostile midrecord)
check "a close in the middle of a record" grep -q "closed" <<<"$out"
others_ok "midrecord"

# renegotiation: openssl s_client asks for it on "R"; the connection must
# not be renegotiated (OpenSSL answers no_renegotiation) and PgCrab goes on
out=$( (sleep 2; echo R; sleep 3) | timeout 30 openssl s_client -tls1_2 -starttls postgres \
	-connect "127.0.0.1:$PGCRAB_PORT" 2>&1)
check "TLS 1.2 is negotiated for the renegotiation check" grep -q "Protocol *: TLSv1.2" <<<"$out"
check "renegotiation is attempted" grep -q "RENEGOTIATING" <<<"$out"
check "renegotiation is refused" grep -qi "no renegotiation\|no_renegotiation\|renegotiation.*fail\|alert" <<<"$out"
others_ok "renegotiation"

# a crowd of each at once, then everyone else still served
pids=()
for _ in $(seq 1 10); do
	for kind in garbage plaintext midrecord pieces stall; do
		hostile $kind >/dev/null &
		pids+=($!)
	done
done
wait "${pids[@]}"
others_ok "a crowd of bad clients"
pgcrab_stop
