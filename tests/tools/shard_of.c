/* shard_of N TYPE...: the shard (0..N-1) of each key read from stdin, as
 * router/hash.c computes it, one line out per line in.
 *
 * Each input line holds one value per TYPE, tab-separated, in the text
 * format of COPY ... TO STDOUT (\N is NULL; backslash escapes are decoded),
 * so that a table PostgreSQL partitioned can be piped straight in. A line
 * whose key is not valid input for its types prints "invalid". Used by
 * tests/integration/t_shard_hash.sh. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "router/router.h"

static int octal(char c)
{
	return c >= '0' && c <= '7' ? c - '0' : -1;
}

static int hex(char c)
{
	if (c >= '0' && c <= '9')
		return c - '0';
	if (c >= 'a' && c <= 'f')
		return c - 'a' + 10;
	if (c >= 'A' && c <= 'F')
		return c - 'A' + 10;
	return -1;
}

/* Decodes COPY's text escapes of s[0, n) in place; returns the new length. */
static size_t unescape(char *s, size_t n)
{
	size_t o = 0;
	for (size_t i = 0; i < n; i++) {
		if (s[i] != '\\' || i + 1 >= n) {
			s[o++] = s[i];
			continue;
		}
		char c = s[++i];
		switch (c) {
		case 'b':
			s[o++] = '\b';
			break;
		case 'f':
			s[o++] = '\f';
			break;
		case 'n':
			s[o++] = '\n';
			break;
		case 'r':
			s[o++] = '\r';
			break;
		case 't':
			s[o++] = '\t';
			break;
		case 'v':
			s[o++] = '\v';
			break;
		case 'x':
			if (i + 1 < n && hex(s[i + 1]) >= 0) {
				int v = hex(s[++i]);
				if (i + 1 < n && hex(s[i + 1]) >= 0)
					v = v * 16 + hex(s[++i]);
				s[o++] = (char)v;
			} else {
				s[o++] = 'x';
			}
			break;
		default:
			if (octal(c) >= 0) {
				int v = octal(c);
				for (int k = 0; k < 2 && i + 1 < n && octal(s[i + 1]) >= 0; k++)
					v = v * 8 + octal(s[++i]);
				s[o++] = (char)v;
			} else {
				s[o++] = c; /* \\ and any other escaped character */
			}
		}
	}
	return o;
}

int main(int argc, char **argv)
{
	if (argc < 3) {
		fprintf(stderr, "usage: %s N_SHARDS TYPE... < tab-separated keys\n", argv[0]);
		return 2;
	}
	int n_shards = atoi(argv[1]);
	int n_cols = argc - 2;
	if (n_shards < 1 || n_shards > ROUTER_MAX_SHARDS || n_cols > ROUTER_MAX_KEY_COLS) {
		fprintf(stderr, "shard_of: 1..%d shards and 1..%d key types\n", ROUTER_MAX_SHARDS,
			ROUTER_MAX_KEY_COLS);
		return 2;
	}
	enum router_type types[ROUTER_MAX_KEY_COLS];
	for (int i = 0; i < n_cols; i++) {
		int t = router_type_parse(argv[i + 2]);
		if (t < 0) {
			fprintf(stderr, "shard_of: unknown type %s\n", argv[i + 2]);
			return 2;
		}
		types[i] = (enum router_type)t;
	}

	char *line = NULL;
	size_t cap = 0;
	ssize_t len;
	long lineno = 0;
	while ((len = getline(&line, &cap, stdin)) >= 0) {
		lineno++;
		if (len > 0 && line[len - 1] == '\n')
			line[--len] = '\0';
		/* split on the tabs (an escaped tab is "\t", never a raw one) */
		char *field[ROUTER_MAX_KEY_COLS];
		size_t flen[ROUTER_MAX_KEY_COLS];
		int nf = 0;
		char *p = line, *end = line + len;
		for (;;) {
			char *tab = memchr(p, '\t', (size_t)(end - p));
			char *stop = tab ? tab : end;
			if (nf == n_cols) {
				nf++;
				break;
			}
			field[nf] = p;
			flen[nf] = (size_t)(stop - p);
			nf++;
			if (!tab)
				break;
			p = tab + 1;
		}
		if (nf != n_cols) {
			fprintf(stderr, "shard_of: line %ld: %d values for %d types\n", lineno, nf,
				n_cols);
			return 1;
		}
		const char *values[ROUTER_MAX_KEY_COLS];
		for (int i = 0; i < n_cols; i++) {
			if (flen[i] == 2 && memcmp(field[i], "\\N", 2) == 0) {
				values[i] = NULL;
				continue;
			}
			/* decoding only shortens a value, and its tab becomes the NUL */
			field[i][unescape(field[i], flen[i])] = '\0';
			values[i] = field[i];
		}
		int shard = router_key_shard(n_cols, types, values, n_shards);
		if (shard >= 0)
			printf("%d\n", shard);
		else
			printf("invalid\n");
	}
	free(line);
	return ferror(stdin) ? 1 : 0;
}
