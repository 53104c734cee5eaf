/* Session settings that transaction pooling carries from one server
 * connection to the next. Each client has the values it wants (its startup
 * parameters, then what its own SETs made of them), each server the values
 * it has; before a client's request runs on a server, PgCrab sends one
 * hidden statement that sets or resets those that differ. Any setting
 * PostgreSQL knows can be carried: a set holds names (lower-cased, as GUC
 * names are case-insensitive) and values; a name not in a set means "the
 * value a fresh server connection starts with". */
#ifndef PGCRAB_PARAMS_H
#define PGCRAB_PARAMS_H

#include <stdbool.h>
#include <stddef.h>

struct param {
	char *name;
	char *value;
};

struct param_set {
	struct param *v;
	int n, cap;
};

/* The value of name in ps, or NULL (the server's own). */
const char *params_get(const struct param_set *ps, const char *name);
/* Sets one value (NULL removes it); -1 when out of memory. */
int params_set(struct param_set *ps, const char *name, const char *value);
void params_clear(struct param_set *ps);
bool params_equal(const struct param_set *a, const struct param_set *b);
/* Makes dst equal to src; -1 when out of memory (dst is then cleared). */
int params_assign(struct param_set *dst, const struct param_set *src);

/* Startup packet keys that are not settings: user, database, options,
 * replication, and protocol options (_pq_.*). */
bool params_startup_only(const char *name);
/* Settings PostgreSQL reports with ParameterStatus that a client may change
 * (application_name, client_encoding, DateStyle, IntervalStyle, TimeZone,
 * default_transaction_read_only, standard_conforming_strings): a report
 * after the client's own SET tells PgCrab the new value. */
bool params_follows_report(const char *name);

/* Builds "SELECT pg_catalog.set_config('x', 'v', false), ..." that turns
 * have into want, session_authorization first and role second (each resets
 * what follows it). Returns the SQL length, 0 if nothing differs; as
 * snprintf, a length >= cap means it did not fit (sql is then empty). */
int params_sync_sql(const struct param_set *want, const struct param_set *have, char *sql,
		    size_t cap);

#endif
