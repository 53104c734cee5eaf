/* Command line and environment (SPEC §2). Turns argv and the PGCRAB_*
 * variables into a config path, struct cfg_overrides and the mode flags;
 * it validates only the shape of the command line. Values are checked by
 * cfg_load(), whose errors name the flag or variable they came from. */
#ifndef PGCRAB_CLI_H
#define PGCRAB_CLI_H

#include <stdbool.h>
#include <stddef.h>
#include <stdio.h>

#include "config/cfg.h"

struct cli_opts {
	const char *config_path;  /* never NULL after a successful cli_parse */
	const char *config_src;   /* "--config", "PGCRAB_CONFIG_FILE" or "default" */
	struct cfg_overrides ov;  /* NULL fields: not given by flag or environment */
	const char *control_path; /* --control-socket, or NULL: the default place */
	const char *control_src;
	bool takeover; /* --takeover: take over from the running PgCrab */
	bool check;    /* --check: validate the configuration and exit */
	bool version;  /* --version / -V */
	bool help;     /* --help / -h */
};

/* Parses argv (argv[0] is the program name) and the environment: envp is a
 * NULL-terminated "NAME=value" array, or NULL for the process environment.
 * For each setting a flag wins over its variable; an empty variable counts as
 * unset. Both `--flag value` and `--flag=value` work; the last of a repeated
 * flag wins. The strings in *out point into argv/envp (nothing allocated).
 * Returns 0, or -1 with one line in err: "unknown flag --foo",
 * "--port needs a value", "unexpected argument foo", "--check takes no value". */
int cli_parse(int argc, char **argv, char **envp, struct cli_opts *out, char *err, size_t errlen)
	__attribute__((warn_unused_result));

/* The --help text. */
void cli_usage(FILE *to);

#endif
