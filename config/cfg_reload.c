/* A reload's new snapshot made to fit the running one: shards keep their
 * indexes (pools, statistics and TLS contexts are indexed by them), the
 * sharded databases stay as they were, restart-only keys keep their values. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "config/cfg.h"

static char *dup_or_null(const char *s, bool *oom)
{
	if (!s)
		return NULL;
	char *d = strdup(s);
	if (!d)
		*oom = true;
	return d;
}

/* A deep copy of a shard entry (the new snapshot owns its strings). */
static bool copy_shard(struct cfg_shard *d, const struct cfg_shard *s)
{
	bool oom = false;
	*d = *s;
	d->name = dup_or_null(s->name, &oom);
	d->host = dup_or_null(s->host, &oom);
	d->database = dup_or_null(s->database, &oom);
	d->user = dup_or_null(s->user, &oom);
	d->password = dup_or_null(s->password, &oom);
	d->server_tls_ca_file = dup_or_null(s->server_tls_ca_file, &oom);
	return !oom;
}

static int find_new(const struct cfg *nw, const char *name)
{
	for (int j = 0; j < nw->n_shards; j++)
		if (strcmp(nw->shards[j].name, name) == 0)
			return j;
	return -1;
}

/* nw's shards in old's order, removed ones kept as removed entries, added
 * ones after; map[j] is nw's shard j's new index. */
static int align_shards(const struct cfg *old, struct cfg *nw, int max_shards, int *map,
			void (*note)(void *arg, const char *msg), void *arg, char *err,
			size_t errlen)
{
	int n = old->n_shards;
	for (int j = 0; j < nw->n_shards; j++)
		if (!cfg_find_shard(old, nw->shards[j].name))
			n++;
	/* a shard removed before and added again takes its old index back */
	for (int j = 0; j < nw->n_shards; j++)
		for (int i = 0; i < old->n_shards; i++)
			if (old->shards[i].removed
			    && strcmp(old->shards[i].name, nw->shards[j].name) == 0)
				n--;
	if (n > max_shards) {
		snprintf(err, errlen,
			 "the new file has shards beyond the %d this process can hold (shards "
			 "added since it started, removed ones included); restart to add more",
			 max_shards);
		return -1;
	}
	struct cfg_shard *out = calloc((size_t)n + 1, sizeof(*out));
	bool *taken = calloc((size_t)nw->n_shards + 1, sizeof(*taken));
	if (!out || !taken) {
		free(out);
		free(taken);
		snprintf(err, errlen, "out of memory");
		return -1;
	}
	int at = 0;
	bool oom = false;
	for (int i = 0; i < old->n_shards; i++, at++) {
		int j = find_new(nw, old->shards[i].name);
		if (j >= 0) {
			out[at] = nw->shards[j];
			taken[j] = true;
			map[j] = at;
			if (old->shards[i].removed) {
				char msg[200];
				snprintf(msg, sizeof(msg), "shard %s is back", old->shards[i].name);
				note(arg, msg);
			}
			continue;
		}
		oom |= !copy_shard(&out[at], &old->shards[i]);
		out[at].removed = true;
		out[at].min_connections = 0;
		if (!old->shards[i].removed) {
			char msg[200];
			snprintf(msg, sizeof(msg),
				 "shard %s removed: its clients are closed after their transaction",
				 old->shards[i].name);
			note(arg, msg);
		}
	}
	for (int j = 0; j < nw->n_shards; j++) {
		if (taken[j])
			continue;
		out[at] = nw->shards[j];
		map[j] = at++;
		char msg[200];
		snprintf(msg, sizeof(msg), "shard %s added", nw->shards[j].name);
		note(arg, msg);
	}
	free(taken);
	free(nw->shards);
	nw->shards = out;
	nw->n_shards = at;
	if (oom) {
		snprintf(err, errlen, "out of memory");
		return -1;
	}
	return 0;
}

static bool same_database(const struct cfg *old, const struct cfg_database *a, const struct cfg *nw,
			  const struct cfg_database *b)
{
	if (strcmp(a->name, b->name) != 0 || a->n_shards != b->n_shards
	    || a->cross_reads_error != b->cross_reads_error
	    || a->cross_writes_error != b->cross_writes_error)
		return false;
	for (int s = 0; s < a->n_shards; s++)
		if (strcmp(old->shards[a->shards[s]].name, nw->shards[b->shards[s]].name) != 0)
			return false;
	return true;
}

static bool same_table(const struct cfg_sharded_table *a, const struct cfg_sharded_table *b)
{
	if (strcmp(a->name, b->name) != 0 || a->database != b->database || a->n_cols != b->n_cols
	    || (!a->schema) != (!b->schema) || (a->schema && strcmp(a->schema, b->schema) != 0))
		return false;
	for (int c = 0; c < a->n_cols; c++)
		if (strcmp(a->cols[c], b->cols[c]) != 0 || a->types[c] != b->types[c])
			return false;
	return true;
}

static bool same_sharding(const struct cfg *old, const struct cfg *nw)
{
	if (old->n_databases != nw->n_databases || old->n_sharded_tables != nw->n_sharded_tables)
		return false;
	for (int d = 0; d < old->n_databases; d++)
		if (!same_database(old, &old->databases[d], nw, &nw->databases[d]))
			return false;
	for (int t = 0; t < old->n_sharded_tables; t++)
		if (!same_table(&old->sharded_tables[t], &nw->sharded_tables[t]))
			return false;
	return true;
}

/* nw takes a deep copy of old's sharded databases and tables: the
 * routers were built from them (shard indexes are old's, which alignment
 * kept). */
static bool copy_sharding(struct cfg *nw, const struct cfg *old)
{
	cfg_free_sharding(nw);
	bool oom = false;
	nw->databases = calloc((size_t)old->n_databases + 1, sizeof(*nw->databases));
	nw->sharded_tables = calloc((size_t)old->n_sharded_tables + 1, sizeof(*nw->sharded_tables));
	if (!nw->databases || !nw->sharded_tables)
		return false;
	for (int d = 0; d < old->n_databases; d++, nw->n_databases++) {
		const struct cfg_database *s = &old->databases[d];
		struct cfg_database *o = &nw->databases[d];
		*o = *s;
		o->name = dup_or_null(s->name, &oom);
		o->shards = calloc((size_t)s->n_shards + 1, sizeof(*o->shards));
		if (!o->shards)
			return false;
		memcpy(o->shards, s->shards, (size_t)s->n_shards * sizeof(*o->shards));
	}
	for (int t = 0; t < old->n_sharded_tables; t++, nw->n_sharded_tables++) {
		const struct cfg_sharded_table *s = &old->sharded_tables[t];
		struct cfg_sharded_table *o = &nw->sharded_tables[t];
		*o = *s;
		o->name = dup_or_null(s->name, &oom);
		o->schema = dup_or_null(s->schema, &oom);
		o->cols = calloc((size_t)s->n_cols + 1, sizeof(*o->cols));
		o->types = calloc((size_t)s->n_cols + 1, sizeof(*o->types));
		if (!o->cols || !o->types) {
			free(o->cols);
			free(o->types);
			o->n_cols = 0;
			return false;
		}
		for (int c = 0; c < s->n_cols; c++)
			o->cols[c] = dup_or_null(s->cols[c], &oom);
		memcpy(o->types, s->types, (size_t)s->n_cols * sizeof(*o->types));
	}
	return !oom;
}

int cfg_reload_prepare(const struct cfg *old, struct cfg *nw, int max_shards,
		       void (*note)(void *arg, const char *msg), void *arg, char *err,
		       size_t errlen)
{
	/* trust is allowed on local listeners only, which main checks at start */
	if (nw->auth_type == CFG_AUTH_TRUST && old->auth_type != CFG_AUTH_TRUST) {
		snprintf(err, errlen,
			 "%s: auth_type = trust can be set only at start, when the listeners are "
			 "checked",
			 nw->path);
		return -1;
	}
	int *map = calloc((size_t)nw->n_shards + 1, sizeof(*map));
	if (!map) {
		snprintf(err, errlen, "out of memory");
		return -1;
	}
	if (align_shards(old, nw, max_shards, map, note, arg, err, errlen) != 0) {
		free(map);
		return -1;
	}
	for (int d = 0; d < nw->n_databases; d++)
		for (int s = 0; s < nw->databases[d].n_shards; s++)
			nw->databases[d].shards[s] = map[nw->databases[d].shards[s]];
	free(map);
	if (!same_sharding(old, nw)) {
		note(arg,
		     "[database.*] and [sharded_table.*] sections changed: they need a "
		     "restart, the old ones stay");
		if (!copy_sharding(nw, old)) {
			snprintf(err, errlen, "out of memory");
			return -1;
		}
	}
	/* a shard a kept sharded database routes to stays too */
	for (int d = 0; d < nw->n_databases; d++)
		for (int s = 0; s < nw->databases[d].n_shards; s++) {
			struct cfg_shard *sh = &nw->shards[nw->databases[d].shards[s]];
			if (!sh->removed)
				continue;
			sh->removed = false;
			sh->min_connections =
				old->shards[nw->databases[d].shards[s]].min_connections;
			char msg[300];
			snprintf(msg, sizeof(msg),
				 "shard %s stays until a restart: database %s routes to it",
				 sh->name, nw->databases[d].name);
			note(arg, msg);
		}
	if (cfg_keep_restart_values(nw, old, note, arg) != 0) {
		snprintf(err, errlen, "out of memory");
		return -1;
	}
	return 0;
}
