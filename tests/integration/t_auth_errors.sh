# Login failures get PostgreSQL's SQLSTATEs; SSLRequest is answered 'N';
# a malformed startup packet gets 08P01; nothing of it harms later clients.
source "$(dirname "$0")/lib.sh"
pgcrab_start || exit 1

# login USER PASSWORD DBNAME: the SQLSTATE of the login's ErrorResponse, or "ok"
login() {
	python3 - "$PGCRAB_PORT" "$@" <<'PY'
import socket, struct, sys
port, user, password, db = int(sys.argv[1]), sys.argv[2], sys.argv[3], sys.argv[4]
s = socket.create_connection(("127.0.0.1", port), timeout=5)
body = struct.pack("!i", 196608) + b"user\0" + user.encode() + b"\0database\0" + db.encode() + b"\0\0"
s.sendall(struct.pack("!i", len(body) + 4) + body)
def msg():
    head = b""
    while len(head) < 5:
        head += s.recv(5 - len(head))
    n = struct.unpack("!i", head[1:5])[0] - 4
    data = b""
    while len(data) < n:
        data += s.recv(n - len(data))
    return head[:1], data
while True:
    t, data = msg()
    if t == b"R" and struct.unpack("!i", data[:4])[0] == 3:
        pw = password.encode() + b"\0"
        s.sendall(b"p" + struct.pack("!i", len(pw) + 4) + pw)
    elif t == b"E":
        print([f[1:].decode() for f in data.split(b"\0") if f[:1] == b"C"][0])
        break
    elif t == b"Z":
        print("ok")
        break
PY
}
expect_eq "right password logs in" "ok" "$(login pgcrab pgcrab "$PG_DB")"
expect_eq "wrong password: 28P01" "28P01" "$(login pgcrab nope "$PG_DB")"
expect_eq "unknown user: 28P01" "28P01" "$(login nobody pgcrab "$PG_DB")"
expect_eq "unknown database: 3D000" "3D000" "$(login pgcrab pgcrab no_such_db)"
expect_eq "sslmode=prefer falls back to plain after 'N'" "1" \
	"$(timeout 10 psql -X -At "$(PC_CONN sslmode=prefer)" -c 'SELECT 1')"
check "sslmode=require is refused (no TLS yet)" bash -c "! timeout 10 psql -X -At '$(PC_CONN sslmode=require)' -c 'SELECT 1' 2>/dev/null"

raw() { # raw HEX-BYTES: sends bytes, prints the reply's first message type and SQLSTATE
	python3 - "$PGCRAB_PORT" "$1" <<'PY'
import socket, sys
s = socket.create_connection(("127.0.0.1", int(sys.argv[1])), timeout=2)
s.sendall(bytes.fromhex(sys.argv[2]))
data = b""
try:
    while True:
        chunk = s.recv(65536)
        if not chunk:
            break
        data += chunk
except socket.timeout:
    pass
code = ""
if data[:1] == b"E":
    for f in data[5:].split(b"\0"):
        if f[:1] == b"C":
            code = f[1:].decode()
print((data[:1].decode() or "closed") + ":" + code)
PY
}
expect_eq "startup length below 8: 08P01" "E:08P01" "$(raw 00000004)"
expect_eq "protocol 2.0: 08P01" "E:08P01" "$(raw 0000000800020000)"
expect_eq "startup without user: 08P01" "E:08P01" "$(raw 0000001400030000646174616261736500780000)"
expect_eq "unterminated parameters: 08P01" "E:08P01" "$(raw 0000000d000300007573657200)"
expect_eq "GSSENCRequest answered N, then the socket stays for a startup" "N:" \
	"$(raw 0000000804d21630)"
expect_eq "pgcrab still serves after all that" "1" "$(pc_psql -c 'SELECT 1')"
exit 0
