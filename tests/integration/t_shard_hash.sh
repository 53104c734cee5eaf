# PgCrab's shard for a key is the partition PostgreSQL's PARTITION BY HASH
# chooses for it: for each key type, and a two-column key, a table with
# MODULUS 3 partitions takes more than 10,000 rows (edge values included),
# and every row's partition (from tableoid) must equal what router/hash.c
# says, through the shard_of tool. Needs PostgreSQL only, no PgCrab.
source "$(dirname "$0")/lib.sh"

SHARD_OF=${UNIT_DIR:-$REPO_DIR/build/tests}/shard_of
[[ -x "$SHARD_OF" ]] || SHARD_OF=$REPO_DIR/build/tests/shard_of
if [[ ! -x "$SHARD_OF" ]]; then
	not_ok "shard_of is built (no executable at $SHARD_OF; make unit builds it)"
	exit 1
fi

# shard_case NAME COLUMNS KEY TYPES ROWS_SQL: a table NAME (COLUMNS)
# partitioned by hash on KEY into remainders 0, 1, 2, filled by ROWS_SQL (a
# SELECT of the columns); then every row's partition against shard_of 3
# TYPES over the key's values as COPY prints them.
shard_case() {
	local name=$1 columns=$2 key=$3 types=$4 rows_sql=$5
	local t=hash_$name
	if ! pg_psql -c "
		CREATE TABLE $t ($columns) PARTITION BY HASH ($key);
		CREATE TABLE ${t}_r0 PARTITION OF $t FOR VALUES WITH (MODULUS 3, REMAINDER 0);
		CREATE TABLE ${t}_r1 PARTITION OF $t FOR VALUES WITH (MODULUS 3, REMAINDER 1);
		CREATE TABLE ${t}_r2 PARTITION OF $t FOR VALUES WITH (MODULUS 3, REMAINDER 2);
		SELECT setseed(0.13);
		INSERT INTO $t $rows_sql" >/dev/null; then
		not_ok "$name: the partitioned table cannot be created and filled"
		return
	fi
	# the remainder is the last character of the partition's name
	if ! pg_psql -c "COPY (SELECT right(tableoid::regclass::text, 1), $key FROM $t) TO STDOUT" \
		>"$T_DIR/$t.tsv"; then
		not_ok "$name: COPY out of the partitioned table fails"
		return
	fi
	cut -f1 "$T_DIR/$t.tsv" >"$T_DIR/$t.want"
	# shellcheck disable=SC2086 # TYPES is a list of words
	cut -f2- "$T_DIR/$t.tsv" | "$SHARD_OF" 3 $types >"$T_DIR/$t.got"
	local rows parts bad
	rows=$(wc -l <"$T_DIR/$t.want")
	parts=$(sort -u "$T_DIR/$t.want" | tr -d '\n')
	bad=$(paste "$T_DIR/$t.want" "$T_DIR/$t.got" "$T_DIR/$t.tsv" \
		| awk -F '\t' '$1 != $2 {n++; if (!first) first = $0} END {print n + 0 "\t" first}')
	if [[ "$(wc -l <"$T_DIR/$t.got")" != "$rows" ]]; then
		not_ok "$name: shard_of answered $(wc -l <"$T_DIR/$t.got") of $rows rows"
	elif [[ ${bad%%$'\t'*} != 0 ]]; then
		not_ok "$name ($types): ${bad%%$'\t'*} of $rows rows on another shard than PostgreSQL's partition; first (partition, shard_of, row): ${bad#*$'\t'}"
	elif [[ $rows -lt 10000 || $parts != 012 ]]; then
		not_ok "$name: too little to go on ($rows rows, partitions used: $parts)"
	else
		ok "$name ($types): all $rows rows on the shard PostgreSQL's hash partition chose"
	fi
}

# integers: the edges of every width, small numbers around 0, random ones
shard_case int2 "k int2" k int2 \
	"SELECT g::int2 FROM generate_series(-32768, 32767) g"
shard_case int4 "k int4" k int4 \
	"SELECT unnest(array[-2147483648, 2147483647, 0, -1, 1, -32768, 32767, 65536]::int4[])
	 UNION ALL SELECT g FROM generate_series(-3000, 3000) g
	 UNION ALL SELECT (floor(random() * 4294967296)::int8 - 2147483648)::int4
		FROM generate_series(1, 6000)"
shard_case int8 "k int8" k int8 \
	"SELECT unnest(array[-9223372036854775808, 9223372036854775807, 0, -1, 1,
		-2147483648, 2147483647, -2147483649, 2147483648, 4294967295, 4294967296,
		-4294967296, -4294967297]::int8[])
	 UNION ALL SELECT g FROM generate_series(-3000, 3000) g
	 UNION ALL SELECT (floor(random() * 4294967296)::int8 << 32)
			| floor(random() * 4294967296)::int8
		FROM generate_series(1, 6000)"

# strings: every length a 12-byte block can leave over, multi-byte UTF-8,
# and the characters COPY escapes
strings="SELECT unnest(array['', ' ', 'a', 'ĳ€😀', E'tab\there', E'new\nline',
		E'back\\\\slash', 'trailing  ', '  leading', repeat('long', 300)])
	 UNION ALL SELECT left(md5(g::text) || md5((-g)::text), g % 45) FROM generate_series(1, 6000) g
	 UNION ALL SELECT 'ĳ€😀' || g FROM generate_series(1, 2000) g
	 UNION ALL SELECT 'tenant-' || g FROM generate_series(1, 2000) g"
shard_case text "k text" k text "$strings"
shard_case varchar "k varchar(2000)" k varchar "SELECT s::varchar FROM ($strings) v(s)"
# bpchar(5) pads with blanks, which its hash ignores; a longer value is cut
shard_case bpchar "k bpchar(5)" k bpchar \
	"SELECT left(s, 5)::bpchar(5) FROM ($strings) v(s)
	 UNION ALL SELECT unnest(array['a    ', ' a', '  ', 'ab c']::bpchar(5)[])"

shard_case uuid "k uuid" k uuid \
	"SELECT unnest(array['00000000-0000-0000-0000-000000000000',
		'ffffffff-ffff-ffff-ffff-ffffffffffff']::uuid[])
	 UNION ALL SELECT md5(g::text)::uuid FROM generate_series(1, 5000) g
	 UNION ALL SELECT gen_random_uuid() FROM generate_series(1, 5000)"

# two columns, NULL now in one, now in the other, now in both
shard_case int8_text "a int8, b text" "a, b" "int8 text" \
	"SELECT CASE WHEN g % 7 = 0 THEN NULL
		     WHEN g % 13 = 0 THEN (array[-9223372036854775808, 9223372036854775807, 0])[g % 3 + 1]
		     ELSE (floor(random() * 4294967296)::int8 << 16) - g END,
		CASE WHEN g % 11 = 0 THEN NULL
		     WHEN g % 17 = 0 THEN (array['', 'ĳ€😀', E'a\tb'])[g % 3 + 1]
		     ELSE left(md5(g::text), g % 20) END
	 FROM generate_series(1, 12000) g"

pg_psql -c "DROP TABLE IF EXISTS hash_int2, hash_int4, hash_int8, hash_text, hash_varchar, hash_bpchar,
	hash_uuid, hash_int8_text" >/dev/null
