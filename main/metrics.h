/* The Prometheus endpoint: GET /metrics on metrics_host:metrics_port,
 * served by a thread of its own (never a worker), which sums the workers'
 * statistics (stats/) at each scrape. */
#ifndef PGCRAB_METRICS_H
#define PGCRAB_METRICS_H

#include <stddef.h>

#include "config/cfg.h"
#include "core/worker.h"
#include "stats/prom.h"

/* Listens (metrics_port 0: does nothing) and starts the thread. The
 * runtime's owner is the session (session/session.h). 0, or -1 with err. */
int metrics_start(struct runtime *rt, const struct cfg *cfg, char *err, size_t errlen);
/* Stops the thread and closes its sockets (nothing if not started). */
void metrics_stop(void);

/* The page: every metric, summed over the workers now (main/metrics_page.c). */
void metrics_render(const struct runtime *rt, struct prom_buf *b);

#endif
