/* A Bind message's parameters, read for the router (the shards its keys
 * name, a LIMIT given as a parameter) and rewritten for a split INSERT
 * (a subset of the parameters, renumbered). */
#include "relay/bind.h"

#include <stdlib.h>
#include <string.h>

#include "proto/proto.h"

int relay_bind_parse(const uint8_t *body, uint32_t len, struct relay_bind *b)
{
	memset(b, 0, sizeof(*b));
	struct proto_reader rd = proto_reader_init(body, len);
	b->portal = proto_get_cstr(&rd);
	b->stmt = proto_get_cstr(&rd);
	int n_fmt = proto_get_i16(&rd);
	if (rd.err || n_fmt < 0)
		return -1;
	const uint8_t *fmts = proto_get_bytes(&rd, (size_t)n_fmt * 2);
	int n = proto_get_i16(&rd);
	if (rd.err || n < 0 || (n_fmt > 1 && n_fmt != n))
		return -1;
	b->n = n;
	b->values = calloc((size_t)n + 1, sizeof(*b->values));
	b->lengths = calloc((size_t)n + 1, sizeof(*b->lengths));
	b->formats = calloc((size_t)n + 1, sizeof(*b->formats));
	if (!b->values || !b->lengths || !b->formats) {
		relay_bind_free(b);
		return -2;
	}
	for (int i = 0; i < n; i++) {
		int k = n_fmt == 0 ? -1 : n_fmt == 1 ? 0 : i;
		b->formats[i] = k < 0 ? 0 : (int16_t)((fmts[2 * k] << 8) | fmts[2 * k + 1]);
		b->lengths[i] = proto_get_i32(&rd);
		b->values[i] = b->lengths[i] >= 0 ? proto_get_bytes(&rd, (size_t)b->lengths[i])
						  : NULL;
	}
	if (rd.err) {
		relay_bind_free(b);
		return -1;
	}
	b->results = rd.p; /* the result formats, as they are */
	b->results_len = (uint32_t)rd.left;
	return 0;
}

void relay_bind_free(struct relay_bind *b)
{
	free(b->values);
	free(b->lengths);
	free(b->formats);
	b->values = NULL;
	b->lengths = NULL;
	b->formats = NULL;
}

static void put16(uint8_t *p, uint16_t v)
{
	p[0] = (uint8_t)(v >> 8);
	p[1] = (uint8_t)v;
}

static void put32(uint8_t *p, uint32_t v)
{
	p[0] = (uint8_t)(v >> 24);
	p[1] = (uint8_t)(v >> 16);
	p[2] = (uint8_t)(v >> 8);
	p[3] = (uint8_t)v;
}

int relay_bind_queue_subset(struct conn *c, const struct relay_bind *b, const int *map, int n_map)
{
	size_t plen = strlen(b->portal) + 1;
	size_t size = 4 + plen + 1 + 2 + 2 * (size_t)n_map + 2 + b->results_len;
	for (int j = 0; j < n_map; j++) {
		int i = map[j] - 1;
		if (i < 0 || i >= b->n)
			return -1;
		size += 4 + (b->lengths[i] > 0 ? (size_t)b->lengths[i] : 0);
	}
	uint8_t *m = malloc(1 + size);
	if (!m)
		return -1;
	uint8_t *p = m;
	*p++ = 'B';
	put32(p, (uint32_t)size);
	p += 4;
	memcpy(p, b->portal, plen);
	p += plen;
	*p++ = '\0'; /* the unnamed statement: the subset's Parse */
	put16(p, (uint16_t)n_map);
	p += 2;
	for (int j = 0; j < n_map; j++, p += 2)
		put16(p, (uint16_t)b->formats[map[j] - 1]);
	put16(p, (uint16_t)n_map);
	p += 2;
	for (int j = 0; j < n_map; j++) {
		int i = map[j] - 1;
		put32(p, (uint32_t)b->lengths[i]);
		p += 4;
		if (b->lengths[i] > 0) {
			memcpy(p, b->values[i], (size_t)b->lengths[i]);
			p += b->lengths[i];
		}
	}
	memcpy(p, b->results, b->results_len);
	int rc = conn_queue(c, m, 1 + size);
	free(m);
	return rc;
}
