/* Prometheus text exposition format (version 0.0.4) and the one HTTP
 * request the metrics endpoint answers: pure, unit-tested byte for byte.
 * main/metrics.c serves what these build. */
#ifndef PGCRAB_PROM_H
#define PGCRAB_PROM_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "stats/stats.h"

/* A growing text buffer; after a failed allocation oom stays set and
 * nothing more is written. */
struct prom_buf {
	char *p;
	size_t len, cap;
	bool oom;
};

void prom_buf_free(struct prom_buf *b);
void prom_printf(struct prom_buf *b, const char *fmt, ...) __attribute__((format(printf, 2, 3)));

/* "# HELP name help" and "# TYPE name type" (counter, gauge, histogram). */
void prom_family(struct prom_buf *b, const char *name, const char *type, const char *help);

/* Writes key="value" into out (size n), the value escaped as the format
 * wants (\\, \" and \n); truncated values stay well formed. */
void prom_label(char *out, size_t n, const char *key, const char *value);

/* name{labels} value; labels as prom_label made them, "" for none. */
void prom_sample(struct prom_buf *b, const char *name, const char *labels, uint64_t v);
void prom_sample_signed(struct prom_buf *b, const char *name, const char *labels, int64_t v);
/* ...a value in seconds from microseconds or nanoseconds */
void prom_sample_us(struct prom_buf *b, const char *name, const char *labels, uint64_t us);
void prom_sample_ns(struct prom_buf *b, const char *name, const char *labels, uint64_t ns);

/* name_bucket{labels,le="..."} cumulative for each bound and +Inf, then
 * name_sum (seconds) and name_count. */
void prom_histogram(struct prom_buf *b, const char *name, const char *labels,
		    const struct stats_hist *h);

/* The request at the start of buf (len bytes, at most max read): 0 while
 * its header is incomplete, else the status to answer: 200 (GET
 * /metrics), 404 (another path), 405 (another method on /metrics), 400
 * (not an HTTP/1.x request line), 431 (header larger than max). */
int prom_http_request(const char *buf, size_t len, size_t max);

/* The response's head for a status (Content-Length body_len, Connection:
 * close) into out; its length, or 0 if it does not fit. */
size_t prom_http_head(char *out, size_t n, int status, size_t body_len);

#endif
