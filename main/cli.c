/* Command line and environment parsing (SPEC §2).
 *
 * One table lists every flag: its long name, optional short alias, the
 * environment variable that stands in for it, and where its value goes. The
 * parse is two passes over that table's targets: flags first, then the
 * environment fills whatever no flag set. Precedence against the config file
 * is cfg_load()'s business: everything here becomes a cfg_overrides entry.
 */
#include "main/cli.h"

#include <stddef.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h> /* environ, with _GNU_SOURCE */

#define ARRAY_LEN(a) (sizeof(a) / sizeof((a)[0]))

struct flag {
	const char *name;  /* "--port"; also what *_src says for a flag */
	const char *alias; /* short form such as "-h", or NULL */
	const char *env;   /* variable standing in for a value flag, or NULL */
	bool takes_value;
	size_t val_off; /* const char * (value flags) or bool (switches) in cli_opts */
	size_t src_off; /* const char * naming where the value came from */
};

#define VALUE(name, env, field)                                             \
	{                                                                   \
		name, NULL, env, true, offsetof(struct cli_opts, ov.field), \
			offsetof(struct cli_opts, ov.field##_src)           \
	}
#define SWITCH(name, alias, field)                                            \
	{                                                                     \
		name, alias, NULL, false, offsetof(struct cli_opts, field), 0 \
	}

static const struct flag flags[] = {
	{ "--config", NULL, "PGCRAB_CONFIG_FILE", true, offsetof(struct cli_opts, config_path),
	  offsetof(struct cli_opts, config_src) },
	VALUE("--host", "PGCRAB_HOST", host),
	VALUE("--port", "PGCRAB_PORT", port),
	VALUE("--workers", "PGCRAB_WORKERS", workers),
	VALUE("--pool-mode", "PGCRAB_POOL_MODE", pool_mode),
	VALUE("--log-level", "PGCRAB_LOG_LEVEL", log_level),
	VALUE("--cpu-affinity", "PGCRAB_CPU_AFFINITY", cpu_affinity),
	{ "--control-socket", NULL, "PGCRAB_CONTROL_SOCKET", true,
	  offsetof(struct cli_opts, control_path), offsetof(struct cli_opts, control_src) },
	SWITCH("--takeover", NULL, takeover),
	SWITCH("--check", NULL, check),
	SWITCH("--version", "-V", version),
	SWITCH("--help", "-h", help),
};

#define DEFAULT_CONFIG_PATH "pgcrab.ini"

static const char **str_at(struct cli_opts *o, size_t off)
{
	return (const char **)(void *)((char *)o + off);
}

static const char *env_get(char **envp, const char *name)
{
	size_t n = strlen(name);
	for (char **e = envp; e && *e; e++)
		if (strncmp(*e, name, n) == 0 && (*e)[n] == '=')
			return *e + n + 1;
	return NULL;
}

/* Finds the flag an argument names; *inline_val gets the text after '='
 * for "--name=value", else NULL. */
static const struct flag *match(const char *arg, const char **inline_val)
{
	*inline_val = NULL;
	for (size_t i = 0; i < ARRAY_LEN(flags); i++) {
		const struct flag *f = &flags[i];
		if (f->alias && strcmp(arg, f->alias) == 0)
			return f;
		size_t n = strlen(f->name);
		if (strncmp(arg, f->name, n) != 0)
			continue;
		if (arg[n] == '\0')
			return f;
		if (arg[n] == '=') {
			*inline_val = arg + n + 1;
			return f;
		}
	}
	return NULL;
}

int cli_parse(int argc, char **argv, char **envp, struct cli_opts *out, char *err, size_t errlen)
{
	char dummy[1];
	if (!err || errlen == 0) {
		err = dummy;
		errlen = sizeof(dummy);
	}
	err[0] = '\0';
	memset(out, 0, sizeof(*out));

	for (int i = 1; i < argc; i++) {
		const char *arg = argv[i];
		if (arg[0] != '-' || arg[1] == '\0') {
			snprintf(err, errlen, "unexpected argument %s (see --help)", arg);
			return -1;
		}
		const char *val;
		const struct flag *f = match(arg, &val);
		if (!f) {
			/* name only the flag, not a value that may follow '=' */
			int n = (int)strcspn(arg, "=");
			snprintf(err, errlen, "unknown flag %.*s (see --help)", n, arg);
			return -1;
		}
		if (!f->takes_value) {
			if (val) {
				snprintf(err, errlen, "%s takes no value", f->name);
				return -1;
			}
			*(bool *)((char *)out + f->val_off) = true;
			continue;
		}
		if (!val) {
			/* "--port --check" is a forgotten value, not a port called
			 * "--check" */
			if (i + 1 >= argc || strncmp(argv[i + 1], "--", 2) == 0) {
				snprintf(err, errlen, "%s needs a value", f->name);
				return -1;
			}
			val = argv[++i];
		}
		*str_at(out, f->val_off) = val;
		*str_at(out, f->src_off) = f->name;
	}

	if (!envp)
		envp = environ;
	for (size_t i = 0; i < ARRAY_LEN(flags); i++) {
		const struct flag *f = &flags[i];
		if (!f->env || *str_at(out, f->val_off))
			continue;
		const char *v = env_get(envp, f->env);
		if (v && *v) {
			*str_at(out, f->val_off) = v;
			*str_at(out, f->src_off) = f->env;
		}
	}

	if (!out->config_path) {
		out->config_path = DEFAULT_CONFIG_PATH;
		out->config_src = "default";
	}
	return 0;
}

void cli_usage(FILE *to)
{
	fputs("usage: pgcrab [OPTIONS]\n"
	      "\n"
	      "PgCrab, a PostgreSQL connection pooler.\n"
	      "\n"
	      "options (each also read from the environment variable shown):\n"
	      "  --config FILE        configuration file          PGCRAB_CONFIG_FILE  (pgcrab.ini)\n"
	      "  --host ADDR          address to listen on        PGCRAB_HOST         (127.0.0.1)\n"
	      "  --port N             port to listen on           PGCRAB_PORT         (6432)\n"
	      "  --workers N          worker threads, 0 = one per CPU\n"
	      "                                                   PGCRAB_WORKERS      (0)\n"
	      "  --pool-mode MODE     transaction | session       PGCRAB_POOL_MODE    (transaction)\n"
	      "  --log-level LEVEL    error | warn | info | debug PGCRAB_LOG_LEVEL    (info)\n"
	      "  --cpu-affinity MODE  off | workers (worker i on the i-th usable CPU)\n"
	      "                                                   PGCRAB_CPU_AFFINITY (off)\n"
	      "  --control-socket PATH  where a running PgCrab hands its sockets to a new\n"
	      "                       process             PGCRAB_CONTROL_SOCKET\n"
	      "                       (UNIX_SOCKET_DIR/.s.PGCRAB.PORT, else\n"
	      "                       $RUNTIME_DIRECTORY/.s.PGCRAB.PORT, else none)\n"
	      "  --takeover           take the listening sockets and idle clients over\n"
	      "                       from the PgCrab running at the control socket\n"
	      "  --check              validate the configuration, print what is wrong\n"
	      "                       or \"configuration ok\", and exit\n"
	      "  -V, --version        print the version and exit\n"
	      "  -h, --help           print this help and exit\n"
	      "\n"
	      "Values may be written --flag value or --flag=value.\n"
	      "Precedence: flag > environment > config file > default.\n",
	      to);
}
