/* The `options` startup parameter, split into settings the way a
 * PostgreSQL backend reads it: pure, no allocation, bounded by the input.
 *
 * Words are separated by white space; a backslash makes the next character
 * part of the word (so "\ " is a space inside one) and a trailing backslash
 * is dropped. Of the words, "-c NAME=VALUE", "-cNAME=VALUE" and
 * "--NAME=VALUE" are settings (in NAME, '-' becomes '_', as the backend
 * does for both forms); "--" alone ends the switches. Anything else is
 * refused with the error PostgreSQL 15 sends for it (measured with psql and
 * PGOPTIONS): a -c or -- without '=', a -c with nothing after it, an
 * unknown switch, a word that is no switch. PostgreSQL's other server
 * switches (-e, -B 64 ...) are real settings there; PgCrab does not take
 * them and says so with an error of its own (0A000).
 *
 * A setting whose NAME names no parameter, or whose VALUE is bad, is not
 * the parser's business: PostgreSQL refuses those when it applies them. */
#ifndef PGCRAB_PROTO_OPTIONS_H
#define PGCRAB_PROTO_OPTIONS_H

#include <stddef.h>

#include "proto/proto.h"

#define PROTO_OPTIONS_MESSAGE_MAX 512

/* What PostgreSQL sends for a bad `options` value. All of it arrives
 * during login, where the backend raises every error as FATAL. */
struct proto_options_error {
	const char *severity; /* "FATAL" */
	const char *sqlstate; /* "42601" (syntax_error), or PgCrab's "0A000" */
	char message[PROTO_OPTIONS_MESSAGE_MAX];
	const char *hint; /* PostgreSQL's hint, or NULL */
};

/* Called for each setting, in order; name and value live in the scratch
 * buffer until proto_options_parse returns. A nonzero return stops the
 * parse, which then returns PROTO_ERR with err->sqlstate NULL (the reason
 * is the callback's). */
typedef int (*proto_options_fn)(void *arg, const char *name, const char *value);

/* Parses options (NUL-terminated). scratch must hold 2 * (strlen(options)
 * + 1) bytes: the words are unescaped into its first half, the name of the
 * setting at hand goes in the second. each may be NULL (only checks).
 * PROTO_OK when every word is accepted; PROTO_ERR with *err filled in
 * otherwise (or 54000 if scratch is too small). Settings before the bad word have
 * been passed to each already: PostgreSQL applies them too, but the login
 * fails all the same. */
enum proto_result proto_options_parse(const char *options, char *scratch, size_t scratch_len,
				      proto_options_fn each, void *arg,
				      struct proto_options_error *err);

#endif
