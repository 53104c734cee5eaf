/* Session parameters that transaction pooling must carry from one server
 * connection to the next: each client has the values it wants (from its
 * startup packet and from ParameterStatus reports after its own SETs), each
 * server the values it has; before a client's request runs on a server,
 * PgCrab sends a hidden SET/RESET for the ones that differ. */
#ifndef PGCRAB_PARAMS_H
#define PGCRAB_PARAMS_H

#include <stdbool.h>
#include <stddef.h>

enum param_id {
	PARAM_APPLICATION_NAME,
	PARAM_CLIENT_ENCODING,
	PARAM_DATESTYLE,
	PARAM_INTERVALSTYLE,
	PARAM_TIMEZONE,
	PARAM_SEARCH_PATH,        /* not reported by PostgreSQL 15: startup value only */
	PARAM_EXTRA_FLOAT_DIGITS, /* not reported: startup value only */
	PARAM_COUNT,
};

/* NULL means "the server's default" (what a fresh login gives). */
struct param_set {
	char *v[PARAM_COUNT];
};

/* The tracked parameter's index, or -1 (GUC names are case-insensitive). */
int params_index(const char *name);
const char *params_name(int id);
/* Sets one value (NULL resets to default); returns -1 when out of memory. */
int params_set(struct param_set *ps, int id, const char *value);
void params_clear(struct param_set *ps);
/* Builds "SELECT pg_catalog.set_config('x', 'v', false);RESET y;" that
 * turns have into want. Returns the SQL length, 0 if nothing differs; as
 * snprintf, a length >= cap means it did not fit (sql is then empty).
 * have is not touched (params_assign once the statement is sent). */
int params_sync_sql(const struct param_set *want, const struct param_set *have, char *sql,
		    size_t cap);
/* Makes have equal to want; -1 when out of memory. */
int params_assign(struct param_set *have, const struct param_set *want);

#endif
