/* Routing hints in comments: `/+ pgcrab_shard: 2 +/` or
 * `/+ pgcrab_key: 42 +/` (with '*' for '+'; '=' may stand for ':').
 * libpg_query drops comments, so the text is scanned here, skipping string
 * literals, quoted identifiers and dollar quotes so that a hint-like text
 * inside them is not taken for one. Most texts have no "pgcrab_" at all
 * and are done with one memmem. */
#include <ctype.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "router/internal.h"

static bool ident_char(char c)
{
	return isalnum((unsigned char)c) || c == '_' || c == '$' || (unsigned char)c >= 0x80;
}

/* The end of a quoted part starting at sql[i] (the quote), or len. */
static size_t skip_quoted(const char *sql, size_t len, size_t i, char q, bool backslashes)
{
	for (i++; i < len; i++) {
		if (backslashes && sql[i] == '\\') {
			i++;
			continue;
		}
		if (sql[i] == q) {
			if (i + 1 < len && sql[i + 1] == q) {
				i++; /* '' or "" inside */
				continue;
			}
			return i + 1;
		}
	}
	return len;
}

/* $tag$ ... $tag$ starting at sql[i], or 0 when sql[i] starts no dollar quote */
static size_t skip_dollar(const char *sql, size_t len, size_t i)
{
	size_t j = i + 1, tag;

	if (j < len && isdigit((unsigned char)sql[j]))
		return 0; /* $1 */
	while (j < len && sql[j] != '$' && (isalnum((unsigned char)sql[j]) || sql[j] == '_'))
		j++;
	if (j >= len || sql[j] != '$')
		return 0;
	tag = j + 1 - i;
	for (j++; j + tag <= len; j++)
		if (memcmp(sql + j, sql + i, tag) == 0)
			return j + tag;
	return len;
}

/* One comment's text [s, e): a hint, or 0. */
static int comment_hint(const char *s, const char *e, int *shard, char **key)
{
	static const char *const names[] = { "pgcrab_shard", "pgcrab_key" };
	int kind = 0;
	size_t n;

	while (s < e && isspace((unsigned char)*s))
		s++;
	for (int k = 0; k < 2 && !kind; k++) {
		n = strlen(names[k]);
		if ((size_t)(e - s) >= n && strncasecmp(s, names[k], n) == 0) {
			kind = k + 1;
			s += n;
		}
	}
	if (!kind)
		return 0;
	while (s < e && isspace((unsigned char)*s))
		s++;
	if (s == e || (*s != ':' && *s != '='))
		return 0;
	s++;
	while (s < e && isspace((unsigned char)*s))
		s++;
	while (e > s && isspace((unsigned char)e[-1]))
		e--;
	if (e - s >= 2 && *s == '\'' && e[-1] == '\'') {
		s++;
		e--;
	}
	if (kind == 1) {
		char buf[24];
		n = (size_t)(e - s);
		if (n >= sizeof(buf))
			n = sizeof(buf) - 1;
		memcpy(buf, s, n);
		buf[n] = '\0';
		*shard = plan_shard_number(buf, ROUTER_MAX_SHARDS + 1);
		return 1;
	}
	if (!(*key = strndup(s, (size_t)(e - s))))
		return -1;
	return 2;
}

int plan_find_hint(const char *sql, size_t len, int *shard, char **key)
{
	*shard = -1;
	*key = NULL;
	if (!memmem(sql, len, "pgcrab_", 7))
		return 0;
	for (size_t i = 0; i < len;) {
		char c = sql[i];
		size_t end;

		if (c == '\'') {
			bool e = i > 0 && (sql[i - 1] == 'E' || sql[i - 1] == 'e')
				&& (i < 2 || !ident_char(sql[i - 2]));
			i = skip_quoted(sql, len, i, '\'', e);
		} else if (c == '"') {
			i = skip_quoted(sql, len, i, '"', false);
		} else if (c == '$' && (i == 0 || !ident_char(sql[i - 1]))
			   && (end = skip_dollar(sql, len, i)) > 0) {
			i = end;
		} else if (c == '-' && i + 1 < len && sql[i + 1] == '-') {
			const char *nl = memchr(sql + i, '\n', len - i);
			i = nl ? (size_t)(nl - sql) + 1 : len;
		} else if (c == '/' && i + 1 < len && sql[i + 1] == '*') {
			/* comments nest */
			size_t start = i + 2, depth = 1;
			int kind;
			for (i += 2; i < len && depth > 0;) {
				if (sql[i] == '/' && i + 1 < len && sql[i + 1] == '*') {
					depth++;
					i += 2;
				} else if (sql[i] == '*' && i + 1 < len && sql[i + 1] == '/') {
					depth--;
					i += 2;
				} else {
					i++;
				}
			}
			kind = comment_hint(sql + start, sql + (depth ? len : i - 2), shard, key);
			if (kind != 0)
				return kind;
		} else {
			i++;
		}
	}
	return 0;
}
