#include "pool/params.h"

#include <ctype.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

static int find(const struct param_set *ps, const char *name)
{
	for (int i = 0; i < ps->n; i++)
		if (strcasecmp(ps->v[i].name, name) == 0)
			return i;
	return -1;
}

const char *params_get(const struct param_set *ps, const char *name)
{
	int i = find(ps, name);
	return i < 0 ? NULL : ps->v[i].value;
}

static char *lower_dup(const char *s)
{
	char *d = strdup(s);
	if (d)
		for (char *p = d; *p; p++)
			*p = (char)tolower((unsigned char)*p);
	return d;
}

int params_set(struct param_set *ps, const char *name, const char *value)
{
	int i = find(ps, name);
	if (!value) {
		if (i >= 0) {
			free(ps->v[i].name);
			free(ps->v[i].value);
			ps->v[i] = ps->v[--ps->n];
		}
		return 0;
	}
	char *copy = strdup(value);
	if (!copy)
		return -1;
	if (i >= 0) {
		free(ps->v[i].value);
		ps->v[i].value = copy;
		return 0;
	}
	if (ps->n == ps->cap) {
		int cap = ps->cap ? ps->cap * 2 : 8;
		struct param *v = realloc(ps->v, (size_t)cap * sizeof(*v));
		if (!v) {
			free(copy);
			return -1;
		}
		ps->v = v;
		ps->cap = cap;
	}
	char *n = lower_dup(name);
	if (!n) {
		free(copy);
		return -1;
	}
	ps->v[ps->n++] = (struct param){ n, copy };
	return 0;
}

void params_clear(struct param_set *ps)
{
	for (int i = 0; i < ps->n; i++) {
		free(ps->v[i].name);
		free(ps->v[i].value);
	}
	free(ps->v);
	ps->v = NULL;
	ps->n = ps->cap = 0;
}

bool params_equal(const struct param_set *a, const struct param_set *b)
{
	if (a->n != b->n)
		return false;
	for (int i = 0; i < a->n; i++) {
		const char *v = params_get(b, a->v[i].name);
		if (!v || strcmp(v, a->v[i].value) != 0)
			return false;
	}
	return true;
}

int params_assign(struct param_set *dst, const struct param_set *src)
{
	if (dst == src)
		return 0;
	params_clear(dst);
	for (int i = 0; i < src->n; i++)
		if (params_set(dst, src->v[i].name, src->v[i].value) != 0) {
			params_clear(dst);
			return -1;
		}
	return 0;
}

bool params_startup_only(const char *name)
{
	return strcmp(name, "user") == 0 || strcmp(name, "database") == 0
		|| strcmp(name, "options") == 0 || strcmp(name, "replication") == 0
		|| strncmp(name, "_pq_.", 5) == 0;
}

bool params_follows_report(const char *name)
{
	static const char *const reported[] = {
		"application_name",
		"client_encoding",
		"datestyle",
		"intervalstyle",
		"timezone",
		"default_transaction_read_only",
		"standard_conforming_strings",
	};
	for (size_t i = 0; i < sizeof(reported) / sizeof(reported[0]); i++)
		if (strcasecmp(reported[i], name) == 0)
			return true;
	return false;
}

/* snprintf-style appending: pos keeps counting past cap. */
struct out {
	char *p;
	size_t cap, pos;
};

static void put_char(struct out *o, char ch)
{
	if (o->pos < o->cap)
		o->p[o->pos] = ch;
	o->pos++;
}

static void put_str(struct out *o, const char *s)
{
	for (; *s; s++)
		put_char(o, *s);
}

/* s with single quotes doubled: any value is one SQL literal (and
 * standard_conforming_strings is on in every supported PostgreSQL, so a
 * backslash is just a backslash; E'' is never used). */
static void put_literal(struct out *o, const char *s)
{
	put_char(o, '\'');
	for (; *s; s++) {
		if (*s == '\'')
			put_char(o, '\'');
		put_char(o, *s);
	}
	put_char(o, '\'');
}

/* One set_config(...) call; a NULL value resets the setting. set_config
 * reads a value as the startup packet does, so a list such as
 * search_path "a, public" stays a list. */
static void put_setting(struct out *o, const char *name, const char *value)
{
	put_str(o, o->pos == 0 ? "SELECT " : ", ");
	put_str(o, "pg_catalog.set_config(");
	put_literal(o, name);
	put_str(o, ", ");
	if (value)
		put_literal(o, value);
	else
		put_str(o, "NULL");
	put_str(o, ", false)");
}

static bool differs(const char *a, const char *b)
{
	if (!a || !b)
		return a != b;
	return strcmp(a, b) != 0;
}

static void sync_one(struct out *o, const struct param_set *want, const struct param_set *have,
		     const char *name)
{
	const char *w = params_get(want, name);
	if (differs(w, params_get(have, name)))
		put_setting(o, name, w);
}

int params_sync_sql(const struct param_set *want, const struct param_set *have, char *sql,
		    size_t cap)
{
	struct out o = { sql, cap, 0 };
	/* session_authorization resets role, and a role may lack the right to
	 * set what follows: these two go first, in this order */
	static const char *const first[] = { "session_authorization", "role" };
	size_t before = o.pos;
	sync_one(&o, want, have, first[0]);
	const char *role = params_get(want, "role");
	if (o.pos != before && role && !differs(role, params_get(have, "role")))
		put_setting(&o, "role", role); /* a new session_authorization reset it */
	else
		sync_one(&o, want, have, first[1]);
	for (int i = 0; i < want->n; i++) {
		const char *name = want->v[i].name;
		if (strcmp(name, first[0]) && strcmp(name, first[1]))
			sync_one(&o, want, have, name);
	}
	for (int i = 0; i < have->n; i++) {
		const char *name = have->v[i].name;
		if (strcmp(name, first[0]) && strcmp(name, first[1]) && !params_get(want, name))
			put_setting(&o, name, NULL);
	}
	if (o.pos >= cap) {
		if (cap > 0)
			sql[0] = '\0';
		return o.pos > INT_MAX ? -1 : (int)o.pos; /* what it needs, as snprintf */
	}
	sql[o.pos] = '\0';
	return (int)o.pos;
}
