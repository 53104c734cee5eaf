/* Two-phase commit recovery for sharded databases (main/recover.c). */
#ifndef PGCRAB_RECOVER_H
#define PGCRAB_RECOVER_H

#include "config/cfg.h"

/* Starts the recovery thread if the config has sharded databases; -1 if
 * the thread cannot start. */
int recover_start(struct cfg *cfg);

#endif
