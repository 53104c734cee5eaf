/* Prometheus text format and the metrics endpoint's request check (see
 * stats/prom.h). */
#include "stats/prom.h"

#include <inttypes.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

void prom_buf_free(struct prom_buf *b)
{
	free(b->p);
	b->p = NULL;
	b->len = b->cap = 0;
}

void prom_printf(struct prom_buf *b, const char *fmt, ...)
{
	if (b->oom)
		return;
	for (;;) {
		va_list ap;
		va_start(ap, fmt);
		size_t room = b->cap - b->len;
		int n = vsnprintf(b->p ? b->p + b->len : NULL, room, fmt, ap);
		va_end(ap);
		if (n < 0) {
			b->oom = true;
			return;
		}
		if ((size_t)n < room) {
			b->len += (size_t)n;
			return;
		}
		size_t cap = b->cap ? b->cap * 2 : 16384;
		while (cap - b->len <= (size_t)n)
			cap *= 2;
		char *p = realloc(b->p, cap);
		if (!p) {
			b->oom = true;
			return;
		}
		b->p = p;
		b->cap = cap;
	}
}

void prom_family(struct prom_buf *b, const char *name, const char *type, const char *help)
{
	prom_printf(b, "# HELP %s %s\n# TYPE %s %s\n", name, help, name, type);
}

void prom_label(char *out, size_t n, const char *key, const char *value)
{
	size_t o = (size_t)snprintf(out, n, "%s=\"", key);
	if (o >= n) {
		out[0] = '\0'; /* a key this long is a caller's bug: no label */
		return;
	}
	for (const char *v = value; *v; v++) {
		char esc = *v == '\\' ? '\\' : *v == '"' ? '"' : *v == '\n' ? 'n' : 0;
		size_t need = esc ? 2 : 1;
		if (o + need + 2 > n)
			break; /* keep room for the closing quote and the NUL */
		if (esc) {
			out[o++] = '\\';
			out[o++] = esc;
		} else {
			out[o++] = *v;
		}
	}
	out[o++] = '"';
	out[o] = '\0';
}

static void name_labels(struct prom_buf *b, const char *name, const char *labels)
{
	if (labels && labels[0])
		prom_printf(b, "%s{%s} ", name, labels);
	else
		prom_printf(b, "%s ", name);
}

void prom_sample(struct prom_buf *b, const char *name, const char *labels, uint64_t v)
{
	name_labels(b, name, labels);
	prom_printf(b, "%" PRIu64 "\n", v);
}

void prom_sample_signed(struct prom_buf *b, const char *name, const char *labels, int64_t v)
{
	name_labels(b, name, labels);
	prom_printf(b, "%" PRId64 "\n", v);
}

/* exact decimals: no rounding through a double */
void prom_sample_us(struct prom_buf *b, const char *name, const char *labels, uint64_t us)
{
	name_labels(b, name, labels);
	prom_printf(b, "%" PRIu64 ".%06" PRIu64 "\n", us / 1000000, us % 1000000);
}

void prom_sample_ns(struct prom_buf *b, const char *name, const char *labels, uint64_t ns)
{
	name_labels(b, name, labels);
	prom_printf(b, "%" PRIu64 ".%09" PRIu64 "\n", ns / 1000000000, ns % 1000000000);
}

void prom_histogram(struct prom_buf *b, const char *name, const char *labels,
		    const struct stats_hist *h)
{
	const char *sep = labels && labels[0] ? "," : "";
	const char *lab = labels ? labels : "";
	uint64_t cum = 0;
	for (int i = 0; i < STATS_BUCKETS; i++) {
		cum += h->bucket[i];
		prom_printf(b, "%s_bucket{%s%sle=\"%g\"} %" PRIu64 "\n", name, lab, sep,
			    (double)stats_bucket_le_us[i] / 1e6, cum);
	}
	cum += h->bucket[STATS_BUCKETS];
	prom_printf(b, "%s_bucket{%s%sle=\"+Inf\"} %" PRIu64 "\n", name, lab, sep, cum);
	char full[128];
	snprintf(full, sizeof(full), "%s_sum", name);
	prom_sample_us(b, full, labels, h->sum_us);
	snprintf(full, sizeof(full), "%s_count", name);
	prom_sample(b, full, labels, cum);
}

/* ---- the endpoint's request ------------------------------------------ */

static const char *header_end(const char *buf, size_t len)
{
	for (size_t i = 0; i + 1 < len; i++) {
		if (buf[i] == '\n' && buf[i + 1] == '\n')
			return buf + i + 2;
		if (i + 3 < len && memcmp(buf + i, "\r\n\r\n", 4) == 0)
			return buf + i + 4;
	}
	return NULL;
}

int prom_http_request(const char *buf, size_t len, size_t max)
{
	if (!header_end(buf, len))
		return len >= max ? 431 : 0;
	/* request-line = method SP request-target SP HTTP-version CRLF */
	const char *eol = memchr(buf, '\n', len);
	size_t line = (size_t)(eol - buf);
	if (line > 0 && buf[line - 1] == '\r')
		line--;
	const char *sp1 = memchr(buf, ' ', line);
	if (!sp1 || sp1 == buf)
		return 400;
	const char *target = sp1 + 1;
	const char *sp2 = memchr(target, ' ', line - (size_t)(target - buf));
	if (!sp2 || sp2 == target)
		return 400;
	const char *version = sp2 + 1;
	size_t vlen = line - (size_t)(version - buf);
	if (vlen != 8 || memcmp(version, "HTTP/1.", 7) != 0)
		return 400;
	size_t tlen = (size_t)(sp2 - target);
	const char *q = memchr(target, '?', tlen); /* a query string is ignored */
	size_t plen = q ? (size_t)(q - target) : tlen;
	if (plen != 8 || memcmp(target, "/metrics", 8) != 0)
		return 404;
	if ((size_t)(sp1 - buf) != 3 || memcmp(buf, "GET", 3) != 0)
		return 405;
	return 200;
}

static const char *reason(int status)
{
	switch (status) {
	case 200:
		return "OK";
	case 400:
		return "Bad Request";
	case 404:
		return "Not Found";
	case 405:
		return "Method Not Allowed";
	case 408:
		return "Request Timeout";
	case 431:
		return "Request Header Fields Too Large";
	case 503:
		return "Service Unavailable";
	default:
		return "Internal Server Error";
	}
}

size_t prom_http_head(char *out, size_t n, int status, size_t body_len)
{
	const char *type = status == 200 ? "text/plain; version=0.0.4; charset=utf-8"
					 : "text/plain; charset=utf-8";
	int r = snprintf(out, n,
			 "HTTP/1.1 %d %s\r\nContent-Type: %s\r\nContent-Length: %zu\r\n%s"
			 "Connection: close\r\n\r\n",
			 status, reason(status), type, body_len,
			 status == 405 ? "Allow: GET\r\n" : "");
	return r > 0 && (size_t)r < n ? (size_t)r : 0;
}
