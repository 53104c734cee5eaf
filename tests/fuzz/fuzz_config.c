/* libFuzzer target: config/ — the INI loader and its validation pass
 * (cfg_load_buffer, which is cfg_load on bytes in memory), flag/environment
 * overrides and cfg_parse_duration_ms.
 *
 * Input: if it starts with byte 0x01, five NUL-terminated override strings
 * (host, port, workers, pool_mode, log_level; empty = not given) come first;
 * the rest is the INI text. On success the result must satisfy what the
 * rest of PgCrab relies on; on failure the message must name the file.
 * Either way nothing may leak (LeakSanitizer runs after every input). */
#include "tests/fuzz/fuzz.h"

#include "config/cfg.h"
#include "router/router.h"

static void check_cfg(const struct cfg *c)
{
	FUZZ_CHECK(c->host && *c->host && c->port >= 1 && c->port <= 65535);
	FUZZ_CHECK(c->workers >= 0 && c->max_client_conn >= 1);
	FUZZ_CHECK(cfg_pool_mode_name(c->pool_mode) && cfg_log_level_name(c->log_level));
	FUZZ_CHECK(cfg_auth_type_name(c->auth_type));
	FUZZ_CHECK(c->n_admin_users >= 0 && (c->n_admin_users == 0 || c->admin_users));
	for (int i = 0; i < c->n_admin_users; i++)
		FUZZ_CHECK(c->admin_users[i] != NULL);
	FUZZ_CHECK(c->server_reset_query != NULL);
	for (int i = 0; i < c->n_shards; i++) {
		const struct cfg_shard *s = &c->shards[i];
		FUZZ_CHECK(s->name && s->host && *s->host && s->database && *s->database);
		FUZZ_CHECK((!s->user || *s->user) && s->password); /* no user: each role its own */
		FUZZ_CHECK(s->port >= 1 && s->port <= 65535);
		FUZZ_CHECK(s->min_connections >= 0 && s->min_connections <= s->max_connections);
		FUZZ_CHECK(cfg_find_shard(c, s->name) == s); /* names are unique */
	}
	for (int i = 0; i < c->n_users; i++) {
		const struct cfg_user *u = &c->users[i];
		FUZZ_CHECK(u->name && u->password && *u->password);
		FUZZ_CHECK(cfg_find_user(c, u->name) == u);
	}
	/* a database's shards are real, distinct and at most a shard set's worth */
	for (int i = 0; i < c->n_databases; i++) {
		const struct cfg_database *d = &c->databases[i];
		FUZZ_CHECK(d->name && cfg_find_database(c, d->name) == d);
		FUZZ_CHECK(!cfg_find_shard(c, d->name));
		FUZZ_CHECK(d->n_shards >= 1 && d->n_shards <= ROUTER_MAX_SHARDS && d->shards);
		for (int j = 0; j < d->n_shards; j++) {
			FUZZ_CHECK(d->shards[j] >= 0 && d->shards[j] < c->n_shards);
			for (int k = 0; k < j; k++)
				FUZZ_CHECK(d->shards[k] != d->shards[j]);
		}
	}
	/* a sharded table's key is complete and its types are the router's */
	for (int i = 0; i < c->n_sharded_tables; i++) {
		const struct cfg_sharded_table *t = &c->sharded_tables[i];
		FUZZ_CHECK(t->name && *t->name && (!t->schema || *t->schema));
		FUZZ_CHECK(t->database >= 0 && t->database < c->n_databases);
		FUZZ_CHECK(t->n_cols >= 1 && t->n_cols <= ROUTER_MAX_KEY_COLS && t->cols
			   && t->types);
		for (int j = 0; j < t->n_cols; j++) {
			FUZZ_CHECK(t->cols[j] && *t->cols[j]);
			FUZZ_CHECK(strcmp(router_type_name(t->types[j]), "?") != 0);
		}
	}
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	struct fuzz_in in = { data, size };
	struct cfg_overrides ov = { 0 };
	char ovs[5][64];
	bool use_ov = size > 0 && data[0] == 0x01;
	if (use_ov) {
		fuzz_u8(&in);
		const char **slot[5] = { &ov.host, &ov.port, &ov.workers, &ov.pool_mode,
					 &ov.log_level };
		for (int i = 0; i < 5; i++)
			if (*fuzz_cstr(&in, ovs[i], sizeof(ovs[i])))
				*slot[i] = ovs[i];
		ov.port_src = "--port";
	}

	char *text = (char *)fuzz_dup(in.p, in.left);
	struct cfg *c = (struct cfg *)1; /* must be overwritten either way */
	char err[512];
	memset(err, 'x', sizeof(err));
	int rc = cfg_load_buffer("fuzz.ini", text, in.left, use_ov ? &ov : NULL, &c, err,
				 sizeof(err));
	FUZZ_CHECK(memchr(err, 0, sizeof(err)) != NULL);
	if (rc == 0) {
		FUZZ_CHECK(c != NULL && strcmp(c->path, "fuzz.ini") == 0 && err[0] == '\0');
		check_cfg(c);
		cfg_free(c);
	} else {
		FUZZ_CHECK(rc == -1 && c == NULL && err[0] != '\0');
		/* every message names where the problem is: the file or a flag */
		FUZZ_CHECK(strstr(err, "fuzz.ini") || (use_ov && strchr(err, ':')));
	}

	/* the same bytes as a duration */
	char *dur = malloc(in.left + 1);
	if (!dur)
		abort();
	memcpy(dur, in.p, in.left);
	dur[in.left] = '\0';
	uint64_t ms = 12345;
	if (cfg_parse_duration_ms(dur, &ms) != 0)
		FUZZ_CHECK(ms == 12345);
	free(dur);
	free(text);
	return 0;
}
