/* The authentication part of loading (cfg_auth.c), called by cfg.c once
 * the file is parsed: internal to config/. */
#ifndef PGCRAB_CFG_AUTH_H
#define PGCRAB_CFG_AUTH_H

#include <stddef.h>

#include "config/cfg.h"

/* Reads each [user] password's form, adds auth_file's users, checks that
 * auth_type fits the listeners, and computes the SCRAM verifiers of
 * cleartext passwords when clients log in with SCRAM. pw_lines[i] is the
 * line of [user] i's password (for messages), auth_line that of auth_file
 * and type_line that of auth_type (0: not set). Returns 0, or -1 with one
 * line in err. */
int cfg_auth_resolve(struct cfg *cfg, const int *pw_lines, int auth_line, int type_line, char *err,
		     size_t errlen);

#endif
