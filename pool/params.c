#include "pool/params.h"

#include <limits.h>

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

static const char *const names[PARAM_COUNT] = {
	[PARAM_APPLICATION_NAME] = "application_name",
	[PARAM_CLIENT_ENCODING] = "client_encoding",
	[PARAM_DATESTYLE] = "DateStyle",
	[PARAM_INTERVALSTYLE] = "IntervalStyle",
	[PARAM_TIMEZONE] = "TimeZone",
	[PARAM_SEARCH_PATH] = "search_path",
	[PARAM_EXTRA_FLOAT_DIGITS] = "extra_float_digits",
};

int params_index(const char *name)
{
	for (int i = 0; i < PARAM_COUNT; i++)
		if (strcasecmp(names[i], name) == 0)
			return i;
	return -1;
}

const char *params_name(int id)
{
	return names[id];
}

int params_set(struct param_set *ps, int id, const char *value)
{
	char *copy = NULL;
	if (value && !(copy = strdup(value)))
		return -1;
	free(ps->v[id]);
	ps->v[id] = copy;
	return 0;
}

void params_clear(struct param_set *ps)
{
	for (int i = 0; i < PARAM_COUNT; i++) {
		free(ps->v[i]);
		ps->v[i] = NULL;
	}
}

static bool same(const char *a, const char *b)
{
	if (!a || !b)
		return a == b;
	return strcmp(a, b) == 0;
}

/* Appends s with single quotes doubled, so any value is one SQL literal. */
static size_t put_literal(char *out, size_t pos, size_t cap, const char *s)
{
	if (pos < cap)
		out[pos] = '\'';
	pos++;
	for (; *s; s++) {
		if (*s == '\'') {
			if (pos < cap)
				out[pos] = '\'';
			pos++;
		}
		if (pos < cap)
			out[pos] = *s;
		pos++;
	}
	if (pos < cap)
		out[pos] = '\'';
	return pos + 1;
}

int params_sync_sql(const struct param_set *want, const struct param_set *have, char *sql,
		    size_t cap)
{
	size_t pos = 0;
	for (int i = 0; i < PARAM_COUNT; i++) {
		if (same(want->v[i], have->v[i]))
			continue;
		int n;
		if (want->v[i]) {
			/* set_config reads the value as the startup packet does, so a
			 * list such as search_path "a, public" stays a list */
			n = snprintf(sql + (pos < cap ? pos : cap), pos < cap ? cap - pos : 0,
				     "SELECT pg_catalog.set_config('%s', ", names[i]);
			pos += (size_t)n;
			pos = put_literal(sql, pos, cap, want->v[i]);
			n = snprintf(sql + (pos < cap ? pos : cap), pos < cap ? cap - pos : 0,
				     ", false);");
			pos += (size_t)n;
		} else {
			n = snprintf(sql + (pos < cap ? pos : cap), pos < cap ? cap - pos : 0,
				     "RESET %s;", names[i]);
			pos += (size_t)n;
		}
	}
	if (pos >= cap) {
		if (cap > 0)
			sql[0] = '\0';
		return pos > INT_MAX ? -1 : (int)pos; /* what it needs, as snprintf */
	}
	sql[pos] = '\0';
	return (int)pos;
}

int params_assign(struct param_set *have, const struct param_set *want)
{
	for (int i = 0; i < PARAM_COUNT; i++)
		if (!same(want->v[i], have->v[i]) && params_set(have, i, want->v[i]) != 0)
			return -1;
	return 0;
}
