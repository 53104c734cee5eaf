/* A key's shard, computed as PostgreSQL's PARTITION BY HASH places a row.
 *
 * PostgreSQL hashes each non-NULL key column with its type's extended hash
 * function and HASH_PARTITION_SEED, folds the column hashes together with
 * hash_combine64 starting from 0, and keeps the row where row_hash %
 * MODULUS == REMAINDER. The extended hashes are Bob Jenkins' lookup3 in
 * PostgreSQL's 64-bit form (hash_bytes_extended, hash_bytes_uint32_extended
 * in src/common/hashfn.c); this file computes the same numbers from the
 * key's text or binary form, so that shard i holds exactly the rows of the
 * partition with REMAINDER i.
 *
 * PostgreSQL reads the key's bytes as native 32-bit words, so its hashes
 * differ between little- and big-endian machines; we read little-endian
 * words, which is what every PostgreSQL on x86-64 or ARM64 computes. */
#include "router/router.h"

#include <string.h>
#include <strings.h>

static const char *const type_names[] = {
	[ROUTER_INT2] = "int2", [ROUTER_INT4] = "int4",       [ROUTER_INT8] = "int8",
	[ROUTER_TEXT] = "text", [ROUTER_VARCHAR] = "varchar", [ROUTER_BPCHAR] = "bpchar",
	[ROUTER_UUID] = "uuid",
};

#define N_TYPES ((int)(sizeof(type_names) / sizeof(type_names[0])))

int router_type_parse(const char *name)
{
	for (int i = 0; i < N_TYPES; i++)
		if (strcasecmp(name, type_names[i]) == 0)
			return i;
	return -1;
}

const char *router_type_name(enum router_type t)
{
	return (unsigned)t < (unsigned)N_TYPES ? type_names[t] : "?";
}

/* ---- lookup3, PostgreSQL's 64-bit variant -------------------------------- */

static inline uint32_t rotl32(uint32_t x, int k)
{
	return (x << k) | (x >> (32 - k));
}

static inline void mix(uint32_t *a, uint32_t *b, uint32_t *c)
{
	*a -= *c;
	*a ^= rotl32(*c, 4);
	*c += *b;
	*b -= *a;
	*b ^= rotl32(*a, 6);
	*a += *c;
	*c -= *b;
	*c ^= rotl32(*b, 8);
	*b += *a;
	*a -= *c;
	*a ^= rotl32(*c, 16);
	*c += *b;
	*b -= *a;
	*b ^= rotl32(*a, 19);
	*a += *c;
	*c -= *b;
	*c ^= rotl32(*b, 4);
	*b += *a;
}

static inline void final_mix(uint32_t *a, uint32_t *b, uint32_t *c)
{
	*c ^= *b;
	*c -= rotl32(*b, 14);
	*a ^= *c;
	*a -= rotl32(*c, 11);
	*b ^= *a;
	*b -= rotl32(*a, 25);
	*c ^= *b;
	*c -= rotl32(*b, 16);
	*a ^= *c;
	*a -= rotl32(*c, 4);
	*b ^= *a;
	*b -= rotl32(*a, 14);
	*c ^= *b;
	*c -= rotl32(*b, 24);
}

/* Up to four bytes as a little-endian number (a short tail is zero-padded). */
static inline uint32_t load_le(const uint8_t *k, size_t n)
{
	uint32_t v = 0;
	for (size_t i = 0; i < n && i < 4; i++)
		v |= (uint32_t)k[i] << (8 * i);
	return v;
}

/* The state both variants start from, the seed folded in as if it were a
 * 12-byte block of its own (PostgreSQL skips that for seed 0). */
static inline void seed_state(uint32_t *a, uint32_t *b, uint32_t *c, uint32_t len, uint64_t seed)
{
	*a = *b = *c = 0x9e3779b9u + len + 3923095u;
	if (seed != 0) {
		*a += (uint32_t)(seed >> 32);
		*b += (uint32_t)seed;
		mix(a, b, c);
	}
}

/* hash_any_extended: the bytes of a text, bpchar or uuid value. */
static uint64_t hash_bytes64(const uint8_t *k, size_t n, uint64_t seed)
{
	uint32_t a, b, c;
	/* PostgreSQL takes the length as an int and keeps it as uint32 */
	seed_state(&a, &b, &c, (uint32_t)n, seed);
	while (n >= 12) {
		a += load_le(k, 4);
		b += load_le(k + 4, 4);
		c += load_le(k + 8, 4);
		mix(&a, &b, &c);
		k += 12;
		n -= 12;
	}
	/* the last 0..11 bytes; c's lowest byte is left out (lookup3 reserved it
	 * for the length), so its bytes go in shifted up by 8 */
	a += load_le(k, n);
	if (n > 4)
		b += load_le(k + 4, n - 4);
	if (n > 8)
		c += load_le(k + 8, n - 8) << 8;
	final_mix(&a, &b, &c);
	return ((uint64_t)b << 32) | c;
}

/* hash_uint32_extended: one 32-bit value (int2 and int4 sign-extended). */
static uint64_t hash_uint32_64(uint32_t k, uint64_t seed)
{
	uint32_t a, b, c;
	seed_state(&a, &b, &c, 4, seed);
	a += k;
	final_mix(&a, &b, &c);
	return ((uint64_t)b << 32) | c;
}

/* hashint8extended: the high half folded into the low one (inverted for
 * negatives) so that an int8 holding an int4's value hashes as that int4. */
static uint64_t hash_int8(int64_t v, uint64_t seed)
{
	uint32_t lo = (uint32_t)(uint64_t)v;
	uint32_t hi = (uint32_t)((uint64_t)v >> 32);
	lo ^= v >= 0 ? hi : ~hi;
	return hash_uint32_64(lo, seed);
}

/* ---- reading a value --------------------------------------------------- */

/* isspace() in the C locale, which is what PostgreSQL's integer input uses
 * (the server's ctype aside, these are the bytes it skips). */
static bool is_blank(uint8_t ch)
{
	return ch == ' ' || ch == '\t' || ch == '\n' || ch == '\v' || ch == '\f' || ch == '\r';
}

/* An integer as int2in/int4in/int8in read it: blanks, an optional sign,
 * decimal digits, blanks; within [min, max]. */
static int parse_int_text(const uint8_t *s, size_t n, int64_t min, int64_t max, int64_t *out)
{
	size_t i = 0;
	while (i < n && is_blank(s[i]))
		i++;
	bool neg = false;
	if (i < n && (s[i] == '-' || s[i] == '+'))
		neg = s[i++] == '-';
	if (i >= n || s[i] < '0' || s[i] > '9')
		return -1;
	/* the magnitude, bounded by 2^63 so that INT64_MIN fits */
	uint64_t limit = neg ? (uint64_t)INT64_MAX + 1 : (uint64_t)INT64_MAX;
	uint64_t mag = 0;
	for (; i < n && s[i] >= '0' && s[i] <= '9'; i++) {
		unsigned d = (unsigned)(s[i] - '0');
		if (mag > (limit - d) / 10)
			return -1;
		mag = mag * 10 + d;
	}
	while (i < n && is_blank(s[i]))
		i++;
	if (i != n)
		return -1;
	int64_t v = neg ? (int64_t)(0 - mag) : (int64_t)mag;
	if (v < min || v > max)
		return -1;
	*out = v;
	return 0;
}

/* A binary integer of any width a driver may send, big-endian. */
static int parse_int_binary(const uint8_t *s, size_t n, int64_t min, int64_t max, int64_t *out)
{
	int64_t v;
	if (n == 2)
		v = (int16_t)(uint16_t)((unsigned)s[0] << 8 | s[1]);
	else if (n == 4)
		v = (int32_t)((uint32_t)s[0] << 24 | (uint32_t)s[1] << 16 | (uint32_t)s[2] << 8
			      | s[3]);
	else if (n == 8) {
		uint64_t u = 0;
		for (int i = 0; i < 8; i++)
			u = u << 8 | s[i];
		v = (int64_t)u;
	} else
		return -1;
	if (v < min || v > max)
		return -1;
	*out = v;
	return 0;
}

static int hex_digit(uint8_t ch)
{
	if (ch >= '0' && ch <= '9')
		return ch - '0';
	if (ch >= 'a' && ch <= 'f')
		return ch - 'a' + 10;
	if (ch >= 'A' && ch <= 'F')
		return ch - 'A' + 10;
	return -1;
}

/* A uuid as uuid_in reads it: 32 hex digits, a hyphen allowed after each
 * group of four (not after the last), the whole optionally in braces. */
static int parse_uuid_text(const uint8_t *s, size_t n, uint8_t out[16])
{
	size_t i = 0;
	bool braces = n > 0 && s[0] == '{';
	if (braces)
		i++;
	for (int byte = 0; byte < 16; byte++) {
		if (i + 2 > n)
			return -1;
		int hi = hex_digit(s[i]), lo = hex_digit(s[i + 1]);
		if (hi < 0 || lo < 0)
			return -1;
		out[byte] = (uint8_t)(hi << 4 | lo);
		i += 2;
		if (i < n && s[i] == '-' && byte % 2 == 1 && byte < 15)
			i++;
	}
	if (braces) {
		if (i >= n || s[i] != '}')
			return -1;
		i++;
	}
	return i == n ? 0 : -1;
}

int router_hash_value(enum router_type t, bool binary, const uint8_t *v, size_t len, uint64_t *out)
{
	int64_t min, max, iv;
	switch (t) {
	case ROUTER_INT2:
		min = INT16_MIN, max = INT16_MAX;
		goto integer;
	case ROUTER_INT4:
		min = INT32_MIN, max = INT32_MAX;
		goto integer;
	case ROUTER_INT8:
		min = INT64_MIN, max = INT64_MAX;
	integer:
		if ((binary ? parse_int_binary : parse_int_text)(v, len, min, max, &iv) != 0)
			return -1;
		/* hashint2extended and hashint4extended hash the int32 value */
		*out = t == ROUTER_INT8 ? hash_int8(iv, ROUTER_HASH_SEED)
					: hash_uint32_64((uint32_t)(int32_t)iv, ROUTER_HASH_SEED);
		return 0;
	case ROUTER_TEXT:
	case ROUTER_VARCHAR:
		/* hashtextextended under a deterministic collation: the bytes */
		*out = hash_bytes64(v, len, ROUTER_HASH_SEED);
		return 0;
	case ROUTER_BPCHAR:
		/* hashbpcharextended: trailing blanks are padding, not data */
		while (len > 0 && v[len - 1] == ' ')
			len--;
		*out = hash_bytes64(v, len, ROUTER_HASH_SEED);
		return 0;
	case ROUTER_UUID: {
		uint8_t u[16];
		if (binary) {
			if (len != 16)
				return -1;
			memcpy(u, v, 16);
		} else if (parse_uuid_text(v, len, u) != 0) {
			return -1;
		}
		*out = hash_bytes64(u, 16, ROUTER_HASH_SEED);
		return 0;
	}
	}
	return -1;
}

uint64_t router_hash_combine(uint64_t row, uint64_t col)
{
	row ^= col + UINT64_C(0x49a0f4dd15e5a8e3) + (row << 54) + (row >> 7);
	return row;
}

int router_key_shard(int n_cols, const enum router_type *types, const char *const *values,
		     int n_shards)
{
	if (n_shards <= 0)
		return -1;
	uint64_t row = 0;
	for (int i = 0; i < n_cols; i++) {
		if (!values[i])
			continue;
		uint64_t h;
		if (router_hash_value(types[i], false, (const uint8_t *)values[i],
				      strlen(values[i]), &h)
		    != 0)
			return -1;
		row = router_hash_combine(row, h);
	}
	return router_hash_shard(row, n_shards);
}
