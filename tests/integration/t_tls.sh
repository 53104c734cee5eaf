# TLS on both sides: a throwaway CA (tls_lib.sh), PostgreSQL with ssl = on,
# psql with sslmode=require and verify-full through PgCrab (each first
# against PostgreSQL itself), PgCrab to PostgreSQL with verify-full, a wrong
# CA, an expired certificate and a wrong host name refused with a clear
# message on either side, client certificates, direct TLS (PostgreSQL 17's
# ALPN "postgresql"), a certificate reload on SIGHUP and pgbench -S over
# TLS for 30 s. A cluster of its own: ssl = on must not leak into other tests.
unset PG_PORT PG_DIR
source "$(dirname "$0")/lib.sh"
source "$(dirname "$0")/tls_lib.sh"

tls_setup
tls_pg_cert "$C" server || not_ok "PostgreSQL serves TLS"

PG_CONN="host=127.0.0.1 port=$PG_PORT user=$PG_USER password=$PG_PASSWORD dbname=$PG_DB connect_timeout=5"
conninfo() { timeout 20 psql -X -At "$1" -c '\conninfo' -c "SELECT 'ok'" 2>&1; }

# the same client checks against PostgreSQL and then PgCrab
for target in postgres pgcrab; do
	if [[ $target == postgres ]]; then
		conn=$PG_CONN
	else
		pgcrab_start "min_connections = 0
max_connections = 20" "$(tls_pgcrab_both)" || exit 1
		conn=$(PC_CONN)
	fi
	out=$(conninfo "$conn sslmode=require")
	check "$target: sslmode=require connects over TLS" grep -q "SSL connection (protocol: TLSv1.[23]" <<<"$out"
	check "$target: ...and queries" grep -qx ok <<<"$out"
	for host in 127.0.0.1 localhost; do
		out=$(conninfo "${conn/host=127.0.0.1/host=$host} sslmode=verify-full sslrootcert=$C/ca.crt")
		check "$target: verify-full with host $host" grep -qx ok <<<"$out"
	done
	out=$(conninfo "$conn sslmode=verify-full sslrootcert=$C/other_ca.crt")
	check "$target: a wrong CA is refused (client side)" grep -q "certificate verify failed" <<<"$out"
	out=$(conninfo "$conn sslmode=verify-full sslrootcert=$C/ca.crt sslcert=$C/client.crt sslkey=$C/client.key")
	check "$target: a client certificate the server did not ask for does no harm" grep -qx ok <<<"$out"
done

expect_eq "PgCrab's server connection is TLS (pg_stat_ssl)" "t|TLSv1.3" \
	"$(pc_psql -c "SELECT ssl, version FROM pg_stat_ssl WHERE pid = pg_backend_pid()" 2>&1)"
out=$(timeout 20 psql -X -At "$(PC_CONN) sslmode=disable" -c 'SELECT 1' 2>&1)
check "client_tls_mode = require refuses a plaintext startup" grep -q "FATAL:  no pgcrab entry for host \"127.0.0.1\".*no encryption" <<<"$out"
# libpq shows no SQLSTATE for a failed connection: read the ErrorResponse raw
startup_sqlstate() {
	timeout 20 /usr/bin/python3 - "$PGCRAB_PORT" "$PC_USER" "$PG_DB" <<'PY'
import socket, struct, sys
s = socket.create_connection(("127.0.0.1", int(sys.argv[1])), timeout=10)
body = struct.pack("!I", 196608) + b"user\0" + sys.argv[2].encode() + b"\0database\0" + sys.argv[3].encode() + b"\0\0"
s.sendall(struct.pack("!I", len(body) + 4) + body)
m = b""
while True:
    r = s.recv(4096)
    if not r:
        break
    m += r
fields = {f[:1]: f[1:] for f in m[5:].split(b"\0") if f}
print(chr(m[0]) if m else "none", fields.get(b"C", b"").decode())
PY
}
expect_eq "...with 28000" "E 28000" "$(startup_sqlstate)"
# a large result and a large query cross TLS records and buffers both ways
expect_eq "a 20 MB result over TLS on both sides" "$(pg_psql -c "SELECT md5(string_agg(repeat(g::text, 100), ',')) FROM generate_series(1, 100000) g")" \
	"$(timeout 60 psql -X -At "$(PC_CONN) sslmode=require" -c "SELECT md5(string_agg(repeat(g::text, 100), ',')) FROM generate_series(1, 100000) g" 2>&1)"
{ printf "SELECT length('"; head -c 600000 /dev/zero | tr '\0' 'x'; printf "');\n"; } >"$T_DIR/big.sql"
expect_eq "a 600 kB query over TLS on both sides" "600000" \
	"$(timeout 60 psql -X -At "$(PC_CONN) sslmode=require" -f "$T_DIR/big.sql" 2>&1)"
expect_eq "COPY out over TLS matches PostgreSQL" "$(pg_psql -c "\\copy (SELECT g, md5(g::text) FROM generate_series(1, 50000) g) TO STDOUT" | md5sum)" \
	"$(timeout 60 psql -X -At "$(PC_CONN) sslmode=require" -c "\\copy (SELECT g, md5(g::text) FROM generate_series(1, 50000) g) TO STDOUT" | md5sum)"

# direct TLS: ALPN "postgresql" required (PostgreSQL 17's sslnegotiation=direct)
direct_tls() {
	timeout 20 /usr/bin/python3 - "$PGCRAB_PORT" "$PC_USER" "$PG_DB" "$1" <<'PY'
import socket, ssl, struct, sys
port, user, db, alpn = int(sys.argv[1]), sys.argv[2], sys.argv[3], sys.argv[4]
ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_CLIENT)
ctx.check_hostname = False
ctx.verify_mode = ssl.CERT_NONE
if alpn != "none":
    ctx.set_alpn_protocols([alpn])
s = socket.create_connection(("127.0.0.1", port), timeout=10)
try:
    t = ctx.wrap_socket(s)
except (ssl.SSLError, OSError) as e:
    print("refused:", e)
    sys.exit(0)
body = struct.pack("!I", 196608) + b"user\0" + user.encode() + b"\0database\0" + db.encode() + b"\0\0"
try:
    t.sendall(struct.pack("!I", len(body) + 4) + body)
    r = t.recv(9)
    print("answer", chr(r[0]) if r else "none", t.selected_alpn_protocol())
except (ssl.SSLError, OSError) as e:
    print("refused:", e)
PY
}
expect_eq "direct TLS with ALPN postgresql logs in (a password is asked)" "answer R postgresql" "$(direct_tls postgresql)"
check "direct TLS without ALPN is refused" grep -q "refused:.*NO_APPLICATION_PROTOCOL\|refused:.*no application protocol" <<<"$(direct_tls none)"
check "direct TLS offering another protocol is refused" grep -q "refused:" <<<"$(direct_tls http/1.1)"

# reload: the certificate files change under a running PgCrab; SIGHUP
# makes new connections present the new one while old ones go on
cp "$C/server.crt" "$T_DIR/live.crt"
cp "$C/server.key" "$T_DIR/live.key"
pgcrab_stop
pgcrab_start "min_connections = 0
max_connections = 20" "client_tls_mode = require
client_tls_cert_file = $T_DIR/live.crt
client_tls_key_file = $T_DIR/live.key" || exit 1
coproc OLD { timeout 60 psql -X -At "$(PC_CONN) sslmode=require" 2>&1; }
echo "SELECT 'old before';" >&"${OLD[1]}"
read -r -t 20 line <&"${OLD[0]}"
expect_eq "a session opened before the reload" "old before" "${line:-}"
cp "$C/foreign.crt" "$T_DIR/live.crt"
cp "$C/foreign.key" "$T_DIR/live.key"
kill -HUP "$PGCRAB_PID"
poll 10 grep -q "TLS certificates and keys reloaded" "$T_DIR/pgcrab.log"
check "SIGHUP reloads the TLS files" grep -q "TLS certificates and keys reloaded" "$T_DIR/pgcrab.log"
out=$(conninfo "$(PC_CONN) sslmode=verify-full sslrootcert=$C/other_ca.crt")
check "after the reload new connections get the new certificate" grep -qx ok <<<"$out"
out=$(conninfo "$(PC_CONN) sslmode=verify-full sslrootcert=$C/ca.crt")
check "...and no longer the old one" grep -q "certificate verify failed" <<<"$out"
echo "SELECT 'old after';" >&"${OLD[1]}"
read -r -t 20 line <&"${OLD[0]}"
expect_eq "the session from before the reload goes on" "old after" "${line:-}"
exec {OLD[1]}>&-
echo "garbage" >"$T_DIR/live.key"
kill -HUP "$PGCRAB_PID"
poll 10 grep -q "TLS reload failed" "$T_DIR/pgcrab.log"
check "a reload with a bad key says so" grep -q "TLS reload failed.*client_tls_key_file" "$T_DIR/pgcrab.log"
out=$(conninfo "$(PC_CONN) sslmode=verify-full sslrootcert=$C/other_ca.crt")
check "...and keeps the certificate it had" grep -qx ok <<<"$out"
pgcrab_stop

# client side: PgCrab presenting an expired certificate or one for another host
for bad in expired wronghost; do
	pgcrab_start "min_connections = 0" "client_tls_mode = require
client_tls_cert_file = $C/$bad.crt
client_tls_key_file = $C/$bad.key" || exit 1
	out=$(conninfo "$(PC_CONN) sslmode=verify-full sslrootcert=$C/ca.crt")
	case $bad in
	expired) check "psql refuses PgCrab's expired certificate" grep -q "certificate verify failed" <<<"$out" ;;
	wronghost) check "psql refuses PgCrab's certificate for another host" grep -q 'server certificate for "wrong.example".*does not match host name "127.0.0.1"' <<<"$out" ;;
	esac
	pgcrab_stop
done

# client certificates: verify-ca asks for one signed by client_tls_ca_file;
# verify-full also wants its CN to be the user
for mode in verify-ca verify-full; do
	pgcrab_start "min_connections = 0" "client_tls_mode = $mode
client_tls_cert_file = $C/server.crt
client_tls_key_file = $C/server.key
client_tls_ca_file = $C/ca.crt" || exit 1
	out=$(conninfo "$(PC_CONN) sslmode=require sslcert=$C/client.crt sslkey=$C/client.key")
	check "client_tls_mode = $mode: a client certificate from the CA logs in" grep -qx ok <<<"$out"
	out=$(conninfo "$(PC_CONN) sslmode=require sslcert=$T_DIR/none.crt sslkey=$T_DIR/none.key")
	check "client_tls_mode = $mode: no client certificate is refused" grep -q "certificate" <<<"$out"
	out=$(conninfo "$(PC_CONN) sslmode=require sslcert=$C/foreign.crt sslkey=$C/foreign.key")
	check "client_tls_mode = $mode: a certificate from another CA is refused" grep -qi "unknown ca\|certificate verify failed\|alert" <<<"$out"
	out=$(conninfo "$(PC_CONN) sslmode=require sslcert=$C/wronghost.crt sslkey=$C/wronghost.key")
	if [[ $mode == verify-full ]]; then
		check "verify-full: a CN that is not the user is refused with 28000" grep -q "CN mismatch" <<<"$out"
	else
		check "verify-ca: the CN does not matter" grep -qx ok <<<"$out"
	fi
	pgcrab_stop
done

# auth_type = cert: the verified certificate's CN is the user, no password
# asked; a CN that is not the user is refused as PostgreSQL's cert method
if [[ $PC_DIRECT == 0 ]]; then
	pgcrab_start "min_connections = 0" "auth_type = cert
client_tls_mode = verify-ca
client_tls_cert_file = $C/server.crt
client_tls_key_file = $C/server.key
client_tls_ca_file = $C/ca.crt" || exit 1
	nopw="host=127.0.0.1 port=$PGCRAB_PORT user=$PC_USER dbname=$PG_DB connect_timeout=5"
	out=$(PGPASSWORD= conninfo "$nopw sslmode=require sslcert=$C/client.crt sslkey=$C/client.key")
	check "auth_type = cert: the certificate whose CN is the user logs in without a password" grep -qx ok <<<"$out"
	out=$(PGPASSWORD= conninfo "$nopw sslmode=require sslcert=$C/wronghost.crt sslkey=$C/wronghost.key")
	check "auth_type = cert: a certificate of another CN is refused (got: $(tail -1 <<<"$out"))" grep -q 'certificate authentication failed for user' <<<"$out"
	pgcrab_stop
fi

# SCRAM-SHA-256-PLUS: over TLS the client may bind the exchange to
# PgCrab's certificate (channel_binding=require insists on it)
if [[ $PC_DIRECT == 0 ]]; then
	pgcrab_start "min_connections = 0" "auth_type = scram-sha-256
client_tls_mode = prefer
client_tls_cert_file = $C/server.crt
client_tls_key_file = $C/server.key" || exit 1
	out=$(conninfo "$(PC_CONN) sslmode=require channel_binding=require")
	check "SCRAM-SHA-256-PLUS over TLS (channel_binding=require) logs in" grep -qx ok <<<"$out"
	out=$(timeout 20 psql -X -At "$(PC_CONN) sslmode=disable channel_binding=require" -c "SELECT 'ok'" 2>&1)
	check "without TLS no channel binding is offered (libpq refuses: $(tail -1 <<<"$out"))" grep -qi "channel binding" <<<"$out"
	pgcrab_stop
fi

# server side: each bad certificate refused, the waiting client told why
server_case() { # NAME PG_CERT CA EXPECTED
	tls_pg_cert "$C" "$2"
	pgcrab_start "min_connections = 0" "server_tls_mode = verify-full
server_tls_ca_file = $C/$3.crt" || return
	local out
	out=$(timeout 30 psql -X -At "$(PC_CONN)" -c 'SELECT 1' 2>&1)
	check "server side: $1 is refused with a clear message" grep -q "cannot log in to shard \"$PG_DB\": $4" <<<"$out"
	pgcrab_stop
}
server_case "a wrong CA" server other_ca "certificate verify failed: unable to get local issuer certificate"
server_case "an expired certificate" expired ca "certificate verify failed: certificate has expired"
server_case "a wrong host name" wronghost ca "certificate verify failed: IP address mismatch"
tls_pg_cert "$C" server
pgcrab_start "min_connections = 0

[shard.byname]
host = localhost
port = $PG_PORT
database = $PG_DB
user = $PG_USER
password = $PG_PASSWORD
server_tls_mode = verify-full
server_tls_ca_file = $C/ca.crt" "server_tls_mode = disable" || exit 1
expect_eq "verify-full by host name (a [shard] setting over [pgcrab]'s)" "t" \
	"$(timeout 20 psql -X -At "$(PC_CONN | sed "s/dbname=$PG_DB/dbname=byname/")" -c "SELECT ssl FROM pg_stat_ssl WHERE pid = pg_backend_pid()" 2>&1)"
expect_eq "server_tls_mode = disable in [pgcrab] holds for the other shard" "f" \
	"$(pc_psql -c "SELECT ssl FROM pg_stat_ssl WHERE pid = pg_backend_pid()" 2>&1)"
pgcrab_stop

# a server without TLS: prefer goes on in plaintext, require refuses
tls_pg_off
poll 10 bash -c "! PGSSLMODE=require psql -X -At '$PG_CONN' -c 'SELECT 1' >/dev/null 2>&1"
for mode in prefer require; do
	pgcrab_start "min_connections = 0" "server_tls_mode = $mode" || exit 1
	out=$(timeout 30 psql -X -At "$(PC_CONN)" -c "SELECT coalesce((SELECT ssl::text FROM pg_stat_ssl WHERE pid = pg_backend_pid()), 'none')" 2>&1)
	if [[ $mode == prefer ]]; then
		expect_eq "server_tls_mode = prefer falls back to plaintext" "false" "$out"
	else
		check "server_tls_mode = require refuses a server without TLS" grep -q "server does not support TLS, but server_tls_mode is require" <<<"$out"
	fi
	pgcrab_stop
done
tls_pg_cert "$C" server

# pgbench -S over TLS both ways for 30 s: no failed transaction
pgcrab_start "min_connections = 2
max_connections = 20" "$(tls_pgcrab_both)" || exit 1
PGPASSWORD=$PG_PASSWORD timeout 60 pgbench -i -q -s 1 "$PG_CONN" >/dev/null 2>&1
out=$(PGSSLMODE=require PGPASSWORD=$PC_PASSWORD timeout 120 pgbench -n -S -c 16 -j 2 -T 30 \
	-h 127.0.0.1 -p "$PGCRAB_PORT" -U "$PC_USER" "$PG_DB" 2>&1)
tps=$(sed -n 's/^tps = \([0-9.]*\).*/\1/p' <<<"$out" | head -1)
failed=$(sed -n 's/^number of failed transactions: \([0-9]*\).*/\1/p' <<<"$out")
check "pgbench -S over TLS ran (tps ${tps:-none})" test -n "${tps:-}"
expect_eq "pgbench -S over TLS for 30 s: no failed transactions" "0" "${failed:-missing}"
pgcrab_stop
