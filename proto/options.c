/* `options` startup parameter parser; see options.h for the contract. */
#include "proto/options.h"

#include <stdarg.h>
#include <stdbool.h>
#include <stdio.h>
#include <string.h>

/* The backend splits on the C locale's white space. */
static bool is_space(char ch)
{
	return ch == ' ' || ch == '\t' || ch == '\n' || ch == '\v' || ch == '\f' || ch == '\r';
}

/* Switches the PostgreSQL server takes besides -c and --: valid there,
 * refused here. */
static bool server_switch(char ch)
{
	return ch != '\0' && strchr("BbCDdEeFfhijklNnOPprSsTtvW", ch) != NULL;
}

static enum proto_result fail(struct proto_options_error *err, const char *sqlstate,
			      const char *hint, const char *fmt, ...)
	__attribute__((format(printf, 4, 5)));

static enum proto_result fail(struct proto_options_error *err, const char *sqlstate,
			      const char *hint, const char *fmt, ...)
{
	va_list ap;
	va_start(ap, fmt);
	vsnprintf(err->message, sizeof(err->message), fmt, ap);
	va_end(ap);
	err->severity = "FATAL";
	err->sqlstate = sqlstate;
	err->hint = hint;
	return PROTO_ERR;
}

static enum proto_result bad_argument(struct proto_options_error *err, const char *word)
{
	return fail(err, "42601", "Try \"postgres --help\" for more information.",
		    "invalid command-line argument for server process: %s", word);
}

/* Unescapes the words of options into scratch, each NUL-terminated, one
 * after another; returns how many. Never writes more than strlen + 1. */
static int split_words(const char *options, char *scratch)
{
	const char *p = options;
	char *out = scratch;
	int n = 0;
	for (;;) {
		while (is_space(*p))
			p++;
		if (*p == '\0')
			break;
		bool escaped = false;
		for (; *p != '\0'; p++) {
			if (!escaped && is_space(*p))
				break;
			if (!escaped && *p == '\\') {
				escaped = true;
				continue;
			}
			escaped = false;
			*out++ = *p;
		}
		*out++ = '\0';
		n++;
	}
	return n;
}

/* A setting word ("name=value") after -c or --; flag is 'c' or '-'. The
 * word stays as it is (a later error may quote it); the name is copied to
 * name_buf, which has room for the whole word. */
static enum proto_result setting(const char *word, char flag, char *name_buf, proto_options_fn each,
				 void *arg, struct proto_options_error *err)
{
	const char *eq = strchr(word, '=');
	if (!eq) {
		if (flag == '-')
			return fail(err, "42601", NULL, "--%s requires a value", word);
		return fail(err, "42601", NULL, "-c %s requires a value", word);
	}
	size_t n = (size_t)(eq - word);
	for (size_t i = 0; i < n; i++)
		name_buf[i] = word[i] == '-' ? '_' : word[i];
	name_buf[n] = '\0';
	if (each && each(arg, name_buf, eq + 1) != 0)
		return PROTO_ERR; /* err stays zeroed: the caller's own reason */
	return PROTO_OK;
}

enum proto_result proto_options_parse(const char *options, char *scratch, size_t scratch_len,
				      proto_options_fn each, void *arg,
				      struct proto_options_error *err)
{
	memset(err, 0, sizeof(*err));
	size_t len = strlen(options);
	if (scratch_len / 2 < len + 1)
		return fail(err, "54000", NULL, "options too long");
	int n = split_words(options, scratch);
	char *name_buf = scratch + len + 1;

	/* The backend reads the words like a command line after its own name,
	 * switches first: a word that is no switch is refused only once every
	 * switch was read, and a switch with an unknown letter that is not the
	 * word's last is reported by the word before it (the program name for
	 * the first). */
	const char *prev = "postgres";
	const char *first_plain = NULL;
	bool switches_over = false;
	const char *word = scratch;
	for (int i = 0; i < n; i++) {
		const char *next = word + strlen(word) + 1;
		const char *last = word; /* the word this one ends at */
		if (switches_over || word[0] != '-' || word[1] == '\0') {
			if (!first_plain)
				first_plain = word;
		} else if (strcmp(word, "--") == 0) {
			switches_over = true;
		} else {
			for (size_t j = 1; word[j] != '\0'; j++) {
				char ch = word[j];
				if (ch == 'c' || ch == '-') {
					const char *value = word + j + 1;
					if (*value == '\0') {
						if (i + 1 == n)
							return bad_argument(err, word);
						value = next;
						last = next;
						i++;
						next = next + strlen(next) + 1;
					}
					if (setting(value, ch, name_buf, each, arg, err)
					    != PROTO_OK)
						return PROTO_ERR;
					break;
				}
				if (server_switch(ch))
					return fail(
						err, "0A000", NULL,
						"PgCrab does not take the server switch \"-%c\" in options",
						ch);
				return bad_argument(err, word[j + 1] != '\0' ? prev : word);
			}
		}
		prev = last;
		word = next;
	}
	if (first_plain)
		return bad_argument(err, first_plain);
	return PROTO_OK;
}
