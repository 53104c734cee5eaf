/* Live reload: SIGHUP and the console's RELOAD read the file again on a
 * thread of their own (reading and PBKDF2 never run on a worker), fit the
 * new snapshot to the running process (config/cfg_reload.c), and hand it
 * to every worker through its ring. A file with an error changes nothing. */
#ifndef PGCRAB_RELOAD_H
#define PGCRAB_RELOAD_H

#include "config/cfg.h"
#include "core/worker.h"

struct session;
struct admin_gather;

/* Starts the thread; ov (kept, not copied) are the flags and environment
 * that win over the file at every load. -1 with err. */
int reload_start(struct runtime *rt, const struct cfg_overrides *ov, char *err, size_t errlen);
void reload_stop(struct runtime *rt);
/* Asks for a reload from any thread (a mutex held for the push only). g
 * NULL: SIGHUP's; else a console RELOAD, whose answer (notices and
 * CommandComplete, or the ErrorResponse) is written to g->parts[0].rows
 * and g posted back to g->origin as SESSION_MSG_ADMIN_DONE once every
 * worker has the new snapshot. */
void reload_ask(struct runtime *rt, struct admin_gather *g);

#endif
