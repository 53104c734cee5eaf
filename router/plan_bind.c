/* The shards of a ROUTER_BIND plan from a Bind's parameters: the one
 * per-execution step of a prepared statement on a sharded table. */
#include <stdarg.h>
#include <stdio.h>
#include <string.h>

#include "router/internal.h"

/* err gets "SQLSTATE: message", as the relay sends it on */
static int fail(const char *code, char *err, size_t errlen, const char *fmt, ...)
	__attribute__((format(printf, 4, 5)));

static int fail(const char *code, char *err, size_t errlen, const char *fmt, ...)
{
	va_list ap;
	int n;

	if (!errlen)
		return -1;
	n = snprintf(err, errlen, "%.5s: ", code);
	if (n > 0 && (size_t)n < errlen) {
		va_start(ap, fmt);
		vsnprintf(err + n, errlen - (size_t)n, fmt, ap);
		va_end(ap);
	}
	return -1;
}

/* One key column's hash; false when the column is NULL. -1 invalid. */
static int column_hash(const struct router_key_src *src, int n, const uint8_t *const *values,
		       const int32_t *lengths, const int16_t *formats, uint64_t *h, char *err,
		       size_t errlen)
{
	int i = src->param - 1;

	if (!src->param) {
		if (!src->literal)
			return 0;
		if (router_hash_value(src->type, false, (const uint8_t *)src->literal,
				      strlen(src->literal), h)
		    < 0)
			return fail("22P02", err, errlen,
				    "invalid input for a sharding key column of type %s: \"%s\"",
				    router_type_name(src->type), src->literal);
		return 1;
	}
	if (i >= n)
		return fail("08P01", err, errlen,
			    "the Bind message has %d parameters, but the sharding key is in $%d", n,
			    src->param);
	if (lengths[i] < 0)
		return 0;
	if (router_hash_value(src->type, formats && formats[i] != 0, values[i], (size_t)lengths[i],
			      h)
	    < 0)
		return fail("22P02", err, errlen,
			    "invalid input for a sharding key column of type %s in parameter $%d",
			    router_type_name(src->type), src->param);
	return 1;
}

/* The shard of one key; -1 (err set) when a value is not valid input. */
static int key_shard(const struct router_key *key, int n_shards, int n,
		     const uint8_t *const *values, const int32_t *lengths, const int16_t *formats,
		     char *err, size_t errlen)
{
	uint64_t row = 0, h;

	for (int c = 0; c < key->n_cols; c++) {
		int rc = column_hash(&key->cols[c], n, values, lengths, formats, &h, err, errlen);
		if (rc < 0)
			return -1;
		if (rc > 0) /* NULLs are skipped */
			row = router_hash_combine(row, h);
	}
	return router_hash_shard(row, n_shards);
}

int router_bind_shards(const struct router_plan *p, int n_shards, int n,
		       const uint8_t *const *values, const int32_t *lengths, const int16_t *formats,
		       uint64_t *out, char *err, size_t errlen)
{
	uint64_t mask = 0;

	if (p->route != ROUTER_BIND) {
		*out = p->route == ROUTER_SHARDS ? p->shards : 0;
		return 0;
	}
	for (int k = 0; k < p->n_keys; k++) {
		int s = key_shard(&p->keys[k], n_shards, n, values, lengths, formats, err, errlen);
		if (s < 0)
			return -1;
		mask |= UINT64_C(1) << s;
	}
	if (!mask) /* no key at all: any one shard answers */
		mask = 1;
	/* the plan's message: why it cannot go to several shards (a
	 * multi-row INSERT without one is split by the relay) */
	if (__builtin_popcountll(mask) > 1 && p->message)
		return fail(p->sqlstate, err, errlen, "%s", p->message);
	*out = mask;
	return 0;
}

int router_bind_rows(const struct router_plan *p, int n_shards, int n, const uint8_t *const *values,
		     const int32_t *lengths, const int16_t *formats, int *row_shard, char *err,
		     size_t errlen)
{
	/* plan_insert makes one key per row, in the rows' order */
	if (p->route != ROUTER_BIND || p->insert_rows < 1 || p->n_keys != p->insert_rows)
		return fail("XX000", err, errlen,
			    "internal error: the rows of a statement that is not a multi-row "
			    "INSERT with parameters");
	for (int r = 0; r < p->insert_rows; r++)
		if ((row_shard[r] = key_shard(&p->keys[r], n_shards, n, values, lengths, formats,
					      err, errlen))
		    < 0)
			return -1;
	return 0;
}
