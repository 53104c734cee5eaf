# Sourced by the TLS tests after lib.sh: a throwaway CA made with the
# openssl CLI, and PostgreSQL switched to ssl = on with a chosen certificate.
#
# tls_make_certs DIR: in DIR (EC P-256 keys: quick to make)
#   ca            the CA everything good is signed by
#   other_ca      a second CA (a "wrong CA" for whoever trusts ca)
#   server        CN localhost, SAN localhost and 127.0.0.1, by ca
#   client        CN $PC_USER, by ca (a client certificate)
#   expired       like server, but expired yesterday
#   wronghost     SAN wrong.example only, by ca
#   foreign       like server, signed by other_ca
tls_make_certs() {
	local d=$1
	mkdir -p "$d"
	local key=(-newkey ec -pkeyopt ec_paramgen_curve:prime256v1 -nodes)
	openssl req -x509 "${key[@]}" -keyout "$d/ca.key" -out "$d/ca.crt" -days 30 \
		-subj /CN=pgcrab-test-ca 2>/dev/null || return 1
	openssl req -x509 "${key[@]}" -keyout "$d/other_ca.key" -out "$d/other_ca.crt" -days 30 \
		-subj /CN=pgcrab-other-ca 2>/dev/null || return 1
	_tls_cert "$d" server localhost "DNS:localhost,IP:127.0.0.1" ca 30 || return 1
	_tls_cert "$d" client "$PC_USER" "DNS:client.example" ca 30 || return 1
	_tls_cert "$d" expired localhost "DNS:localhost,IP:127.0.0.1" ca -1 || return 1
	_tls_cert "$d" wronghost wrong.example "DNS:wrong.example" ca 30 || return 1
	_tls_cert "$d" foreign localhost "DNS:localhost,IP:127.0.0.1" other_ca 30 || return 1
	chmod 600 "$d"/*.key
}

_tls_cert() {
	local d=$1 name=$2 cn=$3 san=$4 ca=$5 days=$6
	openssl req -newkey ec -pkeyopt ec_paramgen_curve:prime256v1 -nodes \
		-keyout "$d/$name.key" -out "$d/$name.csr" -subj "/CN=$cn" 2>/dev/null || return 1
	printf 'subjectAltName=%s\n' "$san" >"$d/$name.ext"
	openssl x509 -req -in "$d/$name.csr" -CA "$d/$ca.crt" -CAkey "$d/$ca.key" \
		-CAcreateserial -days "$days" -extfile "$d/$name.ext" -out "$d/$name.crt" \
		2>/dev/null
}

# tls_setup: the certificates in $C (= $T_DIR/certs), or the test ends
tls_setup() {
	C=$T_DIR/certs
	tls_make_certs "$C" && return 0
	not_ok "the openssl CLI makes a CA and certificates"
	exit 1
}

# tls_pgcrab_both: [pgcrab] lines for TLS both ways with the good
# certificates: client_tls_mode = require, server_tls_mode = verify-full.
tls_pgcrab_both() {
	printf '%s\n' "client_tls_mode = require" "client_tls_cert_file = $C/server.crt" \
		"client_tls_key_file = $C/server.key" "server_tls_mode = verify-full" \
		"server_tls_ca_file = $C/ca.crt"
}

# tls_pg_cert DIR NAME: PostgreSQL serves certificate NAME from DIR, ssl on.
tls_pg_cert() {
	local d=$1 name=$2
	cp "$d/$name.crt" "$PG_DIR/data/tls_server.crt"
	cp "$d/$name.key" "$PG_DIR/data/tls_server.key"
	[[ $(id -u) -eq 0 ]] && chown postgres: "$PG_DIR/data/tls_server.crt" "$PG_DIR/data/tls_server.key"
	chmod 600 "$PG_DIR/data/tls_server.key"
	pg_admin -c "ALTER SYSTEM SET ssl_cert_file = 'tls_server.crt'" \
		-c "ALTER SYSTEM SET ssl_key_file = 'tls_server.key'" \
		-c "ALTER SYSTEM SET ssl = on" -c "SELECT pg_reload_conf()" >/dev/null
	# the reload is asynchronous: wait until a new connection gets TLS
	poll 10 _tls_pg_ready "$d/ca.crt"
}

_tls_pg_ready() {
	PGSSLMODE=require timeout 5 psql -X -At \
		"host=127.0.0.1 port=$PG_PORT user=$PG_USER password=$PG_PASSWORD dbname=$PG_DB" \
		-c "SELECT ssl FROM pg_stat_ssl WHERE pid = pg_backend_pid()" 2>/dev/null | grep -qx t
}

# tls_pg_off: back to ssl = off (the shared cluster is used by later tests).
tls_pg_off() {
	pg_admin -c "ALTER SYSTEM RESET ssl" -c "ALTER SYSTEM RESET ssl_cert_file" \
		-c "ALTER SYSTEM RESET ssl_key_file" -c "SELECT pg_reload_conf()" >/dev/null
}
