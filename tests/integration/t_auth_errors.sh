# Login failures get PostgreSQL's SQLSTATEs; SSLRequest and GSSENCRequest
# are answered 'N' and the login goes on on the same socket; malformed
# startup packets get an error (or a closed socket, as PostgreSQL does for
# an impossible length); nothing of it harms later clients.
# In direct mode PostgreSQL answers itself: GSSENCRequest gets 'G' there (its
# libpq is built with GSSAPI), protocol 2.0 an old-style error without a
# SQLSTATE, and a startup packet without a user 28000.
source "$(dirname "$0")/lib.sh"
pgcrab_start || exit 1

# login [--ssl|--gss] USER PASSWORD DBNAME: a raw v3 login (cleartext, md5 or
# SCRAM-SHA-256, whatever is asked); prints the answer to the SSL/GSS
# request if any, then the SQLSTATE of the ErrorResponse, or "ok" once
# ReadyForQuery arrives.
login() {
	timeout 20 python3 - "$PGCRAB_PORT" "$@" <<'PY'
import base64, hashlib, hmac, os, socket, struct, sys
args = sys.argv[1:]
port = int(args.pop(0))
pre = args.pop(0) if args[0] in ("--ssl", "--gss") else None
user, password, db = args
s = socket.create_connection(("127.0.0.1", port), timeout=10)
out = []
def recvn(n):
    data = b""
    while len(data) < n:
        chunk = s.recv(n - len(data))
        if not chunk:
            raise EOFError
        data += chunk
    return data
def send(kind, body):
    s.sendall(kind + struct.pack("!i", len(body) + 4) + body)
if pre:
    s.sendall(struct.pack("!ii", 8, 80877103 if pre == "--ssl" else 80877104))
    out.append(recvn(1).decode())
body = struct.pack("!i", 196608) + b"user\0" + user.encode() + b"\0database\0" + db.encode() + b"\0\0"
s.sendall(struct.pack("!i", len(body) + 4) + body)
try:
    while True:
        head = recvn(5)
        data = recvn(struct.unpack("!i", head[1:5])[0] - 4)
        t = head[:1]
        if t == b"R":
            code = struct.unpack("!i", data[:4])[0]
            if code == 3:
                send(b"p", password.encode() + b"\0")
            elif code == 5:
                inner = hashlib.md5(password.encode() + user.encode()).hexdigest()
                send(b"p", b"md5" + hashlib.md5(inner.encode() + data[4:8]).hexdigest().encode() + b"\0")
            elif code == 10:
                cnonce = base64.b64encode(os.urandom(18)).decode()
                first_bare = "n=,r=" + cnonce
                first = ("n,," + first_bare).encode()
                send(b"p", b"SCRAM-SHA-256\0" + struct.pack("!i", len(first)) + first)
            elif code == 11:
                server_first = data[4:].decode()
                f = dict(kv.split("=", 1) for kv in server_first.split(","))
                salted = hashlib.pbkdf2_hmac("sha256", password.encode(), base64.b64decode(f["s"]), int(f["i"]))
                ckey = hmac.new(salted, b"Client Key", "sha256").digest()
                without_proof = "c=biws,r=" + f["r"]
                auth = ",".join([first_bare, server_first, without_proof]).encode()
                sig = hmac.new(hashlib.sha256(ckey).digest(), auth, "sha256").digest()
                proof = base64.b64encode(bytes(a ^ b for a, b in zip(ckey, sig))).decode()
                send(b"p", (without_proof + ",p=" + proof).encode())
        elif t == b"E":
            out.append([f[1:].decode() for f in data.split(b"\0") if f[:1] == b"C"][0])
            break
        elif t == b"Z":
            out.append("ok")
            break
except EOFError:
    out.append("closed")
print(" ".join(out))
PY
}
expect_eq "right password logs in" "ok" "$(login "$PC_USER" "$PC_PASSWORD" "$PG_DB")"
expect_eq "wrong password: 28P01" "28P01" "$(login "$PC_USER" nope "$PG_DB")"
expect_eq "empty password: 28P01" "28P01" "$(login "$PC_USER" "" "$PG_DB")"
expect_eq "unknown user: 28P01" "28P01" "$(login nobody_here "$PC_PASSWORD" "$PG_DB")"
expect_eq "unknown database: 3D000" "3D000" "$(login "$PC_USER" "$PC_PASSWORD" no_such_db)"
expect_eq "SSLRequest answered N, then a login on the same socket" "N ok" \
	"$(login --ssl "$PC_USER" "$PC_PASSWORD" "$PG_DB")"
if [[ $PC_DIRECT == 0 ]]; then
	expect_eq "GSSENCRequest answered N, then a login on the same socket" "N ok" \
		"$(login --gss "$PC_USER" "$PC_PASSWORD" "$PG_DB")"
else
	skip "GSSENCRequest answered N, then a login on the same socket" "direct mode (PGCRAB_TEST_DIRECT=1), no PgCrab: PostgreSQL built --with-gssapi answers G over TCP and wants a GSSAPI handshake this client cannot do"
fi
expect_eq "sslmode=prefer falls back to plain after 'N'" "1" \
	"$(timeout 10 psql -X -At "$(PC_CONN sslmode=prefer)" -c 'SELECT 1')"
check "sslmode=require is refused (no TLS yet)" bash -c "! timeout 10 psql -X -At '$(PC_CONN sslmode=require)' -c 'SELECT 1' 2>/dev/null"
expect_eq "psql with a wrong password exits 2" "2" \
	"$(timeout 10 psql -X -At -d "$(PC_CONN) password=wrong" -c 'SELECT 1' >/dev/null 2>&1; echo $?)"

raw() { # raw HEX-BYTES: sends bytes, prints the reply's first message type and SQLSTATE
	timeout 10 python3 - "$PGCRAB_PORT" "$1" <<'PY'
import socket, sys
s = socket.create_connection(("127.0.0.1", int(sys.argv[1])), timeout=5)
s.sendall(bytes.fromhex(sys.argv[2]))
data = b""
try:
    while True:
        chunk = s.recv(65536)
        if not chunk:
            break
        data += chunk
except (socket.timeout, ConnectionResetError):
    pass
code = ""
if data[:1] == b"E" and data[1:2] == b"\0":
    for f in data[5:].split(b"\0"):
        if f[:1] == b"C":
            code = f[1:].decode()
print((data[:1].decode() or "closed") + ":" + code)
PY
}
# PostgreSQL closes without a word on an impossible length; an 08P01 is fine too
expect_match "startup length below 8: 08P01 or closed" '^(E:08P01|closed:)$' "$(raw 00000004)"
if [[ $PC_DIRECT == 0 ]]; then
	expect_eq "protocol 2.0: an old-format error without a SQLSTATE, as PostgreSQL" "E:" \
		"$(raw 0000000800020000)"
	expect_match "startup without user: an ErrorResponse (08P01, or PostgreSQL's 28000)" '^E:(08P01|28000)$' \
		"$(raw 0000001400030000646174616261736500780000)"
else
	expect_eq "protocol 2.0: an error" "E:" "$(raw 0000000800020000)"
	expect_eq "startup without user: 28000" "E:28000" "$(raw 0000001400030000646174616261736500780000)"
fi
expect_eq "unterminated parameters: 08P01" "E:08P01" "$(raw 0000000d000300007573657200)"
expect_eq "pgcrab still serves after all that" "1" "$(pc_psql -c 'SELECT 1')"
exit 0
