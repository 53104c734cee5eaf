/* The classifier's entry point: the first-keyword fast path, then this
 * thread's cache, then the parser (tree.c). Also the helpers that build and
 * merge results. See classify.h for what the classes mean. */
#include <ctype.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "query/classify.h"
#include "query/internal.h"

static __thread struct query_stats stats;
static __thread int fail_countdown;

void *query_alloc(size_t size)
{
	if (fail_countdown > 0 && --fail_countdown == 0)
		return NULL;
	return malloc(size);
}

void query_test_fail_alloc(int nth)
{
	fail_countdown = nth;
}

/* Only the fields a reader may look at are written: reset_names is read up
 * to n_reset, and clearing all of it would cost more than the fast path. */
void query_class_clear(struct query_class *c)
{
	c->effects = 0;
	c->reset_all = false;
	c->n_reset = 0;
	c->pin_what = NULL;
	c->set_name[0] = '\0';
	c->set_local[0] = '\0';
}

void query_class_add(struct query_class *c, unsigned effects, const char *pin_what)
{
	c->effects |= effects;
	if ((effects & QUERY_PINS) && !c->pin_what)
		c->pin_what = pin_what;
}

/* Entries of reset_names: a plain name is reset; "!name", "=name" and
 * "+name" are tagged (see classify.h). */
static bool tagged(const char *entry)
{
	return entry[0] == '!' || entry[0] == '=' || entry[0] == '+' || entry[0] == '~';
}

static bool has_plain_reset(const struct query_class *c)
{
	for (int i = 0; i < c->n_reset; i++)
		if (!tagged(c->reset_names[i]))
			return true;
	return false;
}

/* Takes the entry for name with this tag ('\0': the plain one) off the
 * list; true if it was there. */
static bool drop_tagged(struct query_class *c, char tag, const char *name)
{
	for (int i = 0; i < c->n_reset; i++) {
		const char *n = c->reset_names[i];
		if (tag ? n[0] != tag : tagged(n))
			continue;
		if (strcasecmp(n + (tag != 0), name) == 0) {
			c->n_reset--;
			memmove(c->reset_names[i], c->reset_names[c->n_reset], QUERY_NAME_MAX);
			return true;
		}
	}
	return false;
}

/* Adds name with a tag, lower-cased, once; a name that does not fit, or
 * one entry too many, is left out (a tag only narrows what is reset). */
static void add_tagged(struct query_class *c, char tag, const char *name)
{
	char entry[QUERY_NAME_MAX + 1];
	snprintf(entry, sizeof(entry), "%c%s", tag, name);
	for (char *k = entry; *k; k++)
		*k = (char)tolower((unsigned char)*k);
	if (strlen(entry) >= QUERY_NAME_MAX || c->n_reset == QUERY_RESET_NAMES_MAX)
		return;
	for (int i = 0; i < c->n_reset; i++)
		if (strcmp(c->reset_names[i], entry) == 0)
			return;
	memcpy(c->reset_names[c->n_reset++], entry, strlen(entry) + 1);
}

/* A name that does not fit, or one name too many, widens the answer to
 * "everything was reset": the caller then forgets all it knew, which is
 * never wrong, only slower. */
void query_class_add_reset(struct query_class *c, const char *name)
{
	char low[QUERY_NAME_MAX];
	size_t n = strlen(name);

	c->effects |= QUERY_RESETS;
	drop_tagged(c, '=', name); /* reset after the SET that gave it a value */
	drop_tagged(c, '~', name); /* ...or after a local one */
	if (c->reset_all) {
		drop_tagged(c, '!', name); /* reset again after a SET that kept it */
		return;
	}
	if (n >= QUERY_NAME_MAX) {
		c->reset_all = true;
		return;
	}
	/* GUC names are case-insensitive; a quoted "TimeZone" keeps its case */
	for (size_t i = 0; i <= n; i++)
		low[i] = (char)tolower((unsigned char)name[i]);
	for (int i = 0; i < c->n_reset; i++)
		if (strcmp(c->reset_names[i], low) == 0)
			return;
	if (c->n_reset == QUERY_RESET_NAMES_MAX) {
		c->reset_all = true;
		return;
	}
	memcpy(c->reset_names[c->n_reset++], low, n + 1);
}

void query_class_merge(struct query_class *into, const struct query_class *from)
{
	if (from->set_local[0]) {
		/* a local value hides a reset (this string's or an earlier one's)
		 * until the transaction ends */
		add_tagged(into, '~', from->set_local);
	}
	if (from->set_name[0]) {
		drop_tagged(into, '~', from->set_name);
		if (into->reset_all) {
			/* RESET ALL, then a SET of this one: its value holds */
			add_tagged(into, '!', from->set_name);
		} else {
			/* a RESET, then a SET of the same one: its value holds */
			drop_tagged(into, 0, from->set_name);
			if (!has_plain_reset(into))
				into->effects &= ~(unsigned)QUERY_RESETS;
		}
		add_tagged(into, '=', from->set_name);
		if (strchr(from->set_name, '.'))
			add_tagged(into, '+', from->set_name);
	}
	if (from->reset_all) {
		/* RESET ALL covers what came before it (custom names stay: the
		 * probe asks for them) */
		int keep = 0;
		for (int i = 0; i < into->n_reset; i++)
			if (into->reset_names[i][0] == '+')
				memmove(into->reset_names[keep++], into->reset_names[i],
					QUERY_NAME_MAX);
		into->n_reset = keep;
	}
	query_class_add(into, from->effects, from->pin_what);
	if (from->reset_all)
		into->reset_all = true;
	for (int i = 0; i < from->n_reset; i++)
		query_class_add_reset(into, from->reset_names[i]);
}

static bool is_space(unsigned char c)
{
	return c == ' ' || c == '\t' || c == '\n' || c == '\r' || c == '\f' || c == '\v';
}

static bool is_letter(unsigned char c)
{
	return (unsigned char)((c | 0x20) - 'a') < 26;
}

static bool is_ident(unsigned char c)
{
	return is_letter(c) || (c >= '0' && c <= '9') || c == '_' || c == '$' || c >= 0x80;
}

/* Skips whitespace, "--" comments and nested C comments from i, as the
 * server's lexer does between tokens. Returns the next byte's index, or
 * SIZE_MAX inside an unterminated comment (not for the fast path). */
static size_t skip_blank(const char *s, size_t len, size_t i)
{
	while (i < len) {
		if (is_space((unsigned char)s[i])) {
			i++;
		} else if (s[i] == '-' && i + 1 < len && s[i + 1] == '-') {
			const char *nl = memchr(s + i, '\n', len - i);
			i = nl ? (size_t)(nl - s) + 1 : len;
		} else if (s[i] == '/' && i + 1 < len && s[i + 1] == '*') {
			unsigned depth = 1;
			for (i += 2; depth > 0; i++) {
				if (i + 1 >= len)
					return SIZE_MAX;
				if (s[i] == '/' && s[i + 1] == '*') {
					depth++;
					i++;
				} else if (s[i] == '*' && s[i + 1] == '/') {
					depth--;
					i++;
				}
			}
		} else {
			break;
		}
	}
	return i;
}

/* Statements that cannot change the session by themselves; what they call
 * can (set_config, advisory locks, SELECT INTO TEMP), which the hint look
 * in query_fast sends to the parser (ROLLBACK too: ROLLBACK TO matters). EXPLAIN ANALYZE runs its statement,
 * which is one of these or carries a hint the look sees. */
static bool harmless_keyword(const char *w, size_t n)
{
	static const char *const words[] = {
		"select", "insert",  "update",     "delete",  "merge",   "copy",
		"with",   "values",  "table",      "begin",   "start",   "commit",
		"end",    "abort",   "savepoint",  "release", "fetch",   "move",
		"show",   "explain", "truncate",   "analyze", "analyse", "vacuum",
		"lock",   "notify",  "checkpoint", "execute", "reindex", "cluster",
	};

	for (size_t i = 0; i < sizeof(words) / sizeof(words[0]); i++) {
		const char *k = words[i];
		size_t j = 0;
		while (j < n && k[j] == (w[j] | 0x20)) /* w is letters only */
			j++;
		if (j == n && k[j] == '\0')
			return true;
	}
	return false;
}

/* Case-insensitive match of a lower-case hint around its key byte. The
 * |0x20 folding makes a few odd bytes match as well: a false match only
 * costs a parse. */
static bool hint_at(const char *s, size_t len, size_t at, const char *hint, size_t n)
{
	if (at + n > len)
		return false;
	for (size_t i = 0; i < n; i++)
		if ((s[at + i] | 0x20) != (hint[i] | 0x20))
			return false;
	return true;
}

/* The bytes the hint look stops at, one per hint, chosen to be rare in
 * ordinary SQL so that the loop mostly does one load and one well
 * predicted branch per byte: the 'v' of advisory, the '_' of set_config,
 * the 'p' of temp, ';', and the '&' of U&"...". */
enum { KEY_NONE, KEY_V, KEY_UNDERSCORE, KEY_P, KEY_SEMI, KEY_AMP };
static const unsigned char key_byte[256] = {
	['v'] = KEY_V, ['V'] = KEY_V,    ['_'] = KEY_UNDERSCORE, ['p'] = KEY_P,
	['P'] = KEY_P, [';'] = KEY_SEMI, ['&'] = KEY_AMP,
};

bool query_fast(const char *sql, size_t len)
{
	size_t i = 0, semi = SIZE_MAX, start;

	/* the first keyword, past blanks and the '(' of "(SELECT ...)" */
	for (;;) {
		i = skip_blank(sql, len, i);
		if (i == SIZE_MAX)
			return false;
		if (i == len)
			return i == 0 || sql[i - 1] != '('; /* nothing but comments: nothing runs */
		if (sql[i] != '(')
			break;
		i++;
	}
	start = i;
	while (i < len && is_letter((unsigned char)sql[i]))
		i++;
	if (i == start || (i < len && is_ident((unsigned char)sql[i])))
		return false;
	if (!harmless_keyword(sql + start, i - start))
		return false;

	/* One pass for the hints and the semicolons. A single ';' followed by
	 * nothing but blanks ends the only statement: if that ';' sits in a
	 * string, the string's closing quote follows it, and if it ends the
	 * statement, the lexer is outside any string after it, so the blank
	 * skipping reads the rest as the server would. Two ';' go to the
	 * parser, so a ';' in a literal cannot hide a second statement. */
	for (i = 0; i < len; i++) {
		unsigned key = key_byte[(unsigned char)sql[i]];
		if (__builtin_expect(key == KEY_NONE, 1))
			continue;
		switch (key) {
		case KEY_V:
			if (i >= 2 && hint_at(sql, len, i - 2, "advisory", 8))
				return false;
			break;
		case KEY_UNDERSCORE:
			if (i >= 3 && hint_at(sql, len, i - 3, "set_config", 10))
				return false;
			break;
		case KEY_P: /* INTO TEMP, TEMPORARY, pg_temp */
			if (i >= 3 && hint_at(sql, len, i - 3, "temp", 4))
				return false;
			break;
		case KEY_SEMI:
			if (semi != SIZE_MAX)
				return false;
			semi = i;
			break;
		case KEY_AMP: /* U&"..." spells an identifier with escapes */
			if (i + 1 < len && sql[i + 1] == '"')
				return false;
			break;
		}
	}
	return semi == SIZE_MAX || skip_blank(sql, len, semi + 1) == len;
}

int query_classify(const char *sql, size_t len, struct query_class *out)
{
	bool cacheable = len <= QUERY_CACHE_TEXT_MAX;
	uint64_t hash = 0;

	query_class_clear(out);
	if (query_fast(sql, len)) {
		stats.fast++;
		return 0;
	}
	if (cacheable) {
		hash = query_hash(sql, len);
		if (query_cache_get(hash, sql, len, out)) {
			stats.cached++;
			return 0;
		}
	}
	stats.parsed++;
	if (query_tree_classify(sql, len, out) != 0) {
		query_class_clear(out);
		out->effects = QUERY_UNKNOWN;
		return -1;
	}
	if (cacheable)
		query_cache_put(hash, sql, len, out);
	return 0;
}

void query_stats(struct query_stats *out)
{
	*out = stats;
}

/* libpg_query's own per-thread memory goes with the thread; calling its
 * pg_query_exit here would leave the thread unable to parse again (it
 * crashes on the next parse), and tests call this between runs. */
void query_thread_exit(void)
{
	query_cache_free();
}
