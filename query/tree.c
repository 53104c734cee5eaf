/* The slow path: libpg_query parses the text into its protobuf form, which
 * protobuf-c unpacks into plain structs (libpg_query carries protobuf-c and
 * exports it; the headers come from libprotobuf-c-dev). The protobuf tree
 * was chosen over the JSON one (no JSON parser to write) and over the
 * scanner's tokens (which would mean re-implementing the grammar): every
 * statement arrives already split and typed, and protobuf-c's descriptors
 * let one small loop visit every node of any statement, so a function call
 * is found however deeply it is nested, in any kind of statement. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include <pg_query.h>
#include <pg_query/pg_query.pb-c.h>

#include "query/internal.h"

#define CURSOR_OPT_HOLD 0x0020 /* DeclareCursorStmt.options: WITH HOLD */

static const char *node_str(const PgQuery__Node *n)
{
	return n && n->node_case == PG_QUERY__NODE__NODE_STRING && n->string ? n->string->sval
									     : NULL;
}

/* A string constant ('x', or 'x'::text), or NULL. */
static const char *const_str(const PgQuery__Node *n)
{
	while (n && n->node_case == PG_QUERY__NODE__NODE_TYPE_CAST)
		n = n->type_cast->arg;
	if (!n || n->node_case != PG_QUERY__NODE__NODE_A_CONST || n->a_const->isnull
	    || n->a_const->val_case != PG_QUERY__A__CONST__VAL_SVAL)
		return NULL;
	return n->a_const->sval->sval;
}

static bool is_pg_temp(const char *schema)
{
	/* pg_temp is the alias, pg_temp_N the session's real schema */
	return schema && (strcmp(schema, "pg_temp") == 0 || strncmp(schema, "pg_temp_", 8) == 0);
}

/* A qualified name (schema.name or catalog.schema.name) in pg_temp. */
static bool names_in_pg_temp(PgQuery__Node **names, size_t n)
{
	return n >= 2 && is_pg_temp(node_str(names[n - 2]));
}

static bool rel_is_temp(const PgQuery__RangeVar *rv)
{
	return rv
		&& ((rv->relpersistence && rv->relpersistence[0] == 't')
		    || is_pg_temp(rv->schemaname));
}

/* 1 for a literal that is surely true, 0 surely false, -1 anything else.
 * Strings follow the server's boolean input: unique prefixes of true,
 * false, yes, no; on, off; 1, 0; any case, blanks around. */
static int bool_str(const char *s)
{
	static const char *const words[] = { "true", "yes", "on", "1", "false", "no", "off", "0" };
	static const size_t min[] = { 1, 1, 2, 1, 1, 1, 2, 1 };
	size_t n;

	if (!s)
		return -1;
	while (*s == ' ' || *s == '\t' || *s == '\n' || *s == '\r')
		s++;
	n = strlen(s);
	while (n > 0
	       && (s[n - 1] == ' ' || s[n - 1] == '\t' || s[n - 1] == '\n' || s[n - 1] == '\r'))
		n--;
	for (size_t i = 0; i < sizeof(words) / sizeof(words[0]); i++)
		if (n >= min[i] && n <= strlen(words[i]) && strncasecmp(s, words[i], n) == 0)
			return i < 4 ? 1 : 0;
	return -1;
}

static int bool_node(const PgQuery__Node *n)
{
	while (n) {
		switch (n->node_case) {
		case PG_QUERY__NODE__NODE_TYPE_CAST: /* 'on'::boolean */
			n = n->type_cast->arg;
			continue;
		case PG_QUERY__NODE__NODE_NAMED_ARG_EXPR:
			n = n->named_arg_expr->arg;
			continue;
		case PG_QUERY__NODE__NODE_BOOLEAN:
			return n->boolean->boolval ? 1 : 0;
		case PG_QUERY__NODE__NODE_INTEGER:
			return n->integer->ival != 0;
		case PG_QUERY__NODE__NODE_STRING:
			return bool_str(n->string->sval);
		case PG_QUERY__NODE__NODE_A_CONST: {
			const PgQuery__AConst *c = n->a_const;
			if (c->isnull)
				return -1;
			switch (c->val_case) {
			case PG_QUERY__A__CONST__VAL_BOOLVAL:
				return c->boolval->boolval ? 1 : 0;
			case PG_QUERY__A__CONST__VAL_IVAL:
				return c->ival->ival != 0;
			case PG_QUERY__A__CONST__VAL_SVAL:
				return bool_str(c->sval->sval);
			default:
				return -1;
			}
		}
		default:
			return -1;
		}
	}
	return -1;
}

static void func_call(struct query_class *c, const PgQuery__FuncCall *f)
{
	/* session-level advisory locks; the _xact_ forms end with the
	 * transaction and are left alone */
	static const char *const locks[] = { "pg_advisory_lock", "pg_advisory_lock_shared",
					     "pg_try_advisory_lock",
					     "pg_try_advisory_lock_shared" };
	static const char *const lock_what[] = { "pg_advisory_lock()", "pg_advisory_lock_shared()",
						 "pg_try_advisory_lock()",
						 "pg_try_advisory_lock_shared()" };
	const char *name = f->n_funcname ? node_str(f->funcname[f->n_funcname - 1]) : NULL;

	/* the schema is not looked at: a user's own set_config in another
	 * schema is taken for the real one, which errs on "may change" */
	if (!name)
		return;
	if (strcmp(name, "set_config") == 0) {
		/* only a literal true for is_local is surely local; NULL, false
		 * or anything computed may set the session's value */
		if (f->n_args != 3 || bool_node(f->args[2]) != 1)
			query_class_add(c, QUERY_SETS, NULL);
		/* set_config('x', ..., false): like SET x, it keeps its value
		 * over a RESET of x earlier in the same string */
		int local = f->n_args == 3 ? bool_node(f->args[2]) : -1;
		const char *set = local >= 0 ? const_str(f->args[0]) : NULL;
		if (set && strlen(set) < QUERY_NAME_MAX)
			snprintf(local ? c->set_local : c->set_name, QUERY_NAME_MAX, "%s", set);
		return;
	}
	if (strncmp(name, "pg_", 3) != 0)
		return;
	for (size_t i = 0; i < sizeof(locks) / sizeof(locks[0]); i++)
		if (strcmp(name, locks[i]) == 0)
			query_class_add(c, QUERY_ADVISORY, lock_what[i]);
	if (strcmp(name, "pg_advisory_unlock") == 0
	    || strcmp(name, "pg_advisory_unlock_shared") == 0
	    || strcmp(name, "pg_advisory_unlock_all") == 0)
		query_class_add(c, QUERY_UNPIN, NULL);
}

static void into_clause(struct query_class *c, const PgQuery__IntoClause *into, const char *what)
{
	/* ON COMMIT DROP cannot outlive the transaction, which a pooled
	 * client keeps its server for anyway */
	if (rel_is_temp(into->rel) && into->on_commit != PG_QUERY__ON_COMMIT_ACTION__ONCOMMIT_DROP)
		query_class_add(c, QUERY_TEMP, what);
}

/* Visits every message under root, without recursion (a parse tree can be
 * thousands of levels deep), looking for function calls and INTO clauses.
 * The descriptors say which fields hold messages; a oneof member (each
 * Node is one) is followed only when it is the one set. */
static int walk(struct query_class *c, const ProtobufCMessage *root, const char *into_what)
{
	const ProtobufCMessage *local[64], **stack = local, **grown;
	size_t n = 0, cap = sizeof(local) / sizeof(local[0]);
	int rc = 0;

#define PUSH(m)                                                        \
	do {                                                           \
		if (n == cap) {                                        \
			grown = query_alloc(2 * cap * sizeof(*stack)); \
			if (!grown) {                                  \
				rc = -1;                               \
				goto out;                              \
			}                                              \
			memcpy(grown, stack, n * sizeof(*stack));      \
			if (stack != local)                            \
				free(stack);                           \
			stack = grown;                                 \
			cap *= 2;                                      \
		}                                                      \
		stack[n++] = (m);                                      \
	} while (0)

	PUSH(root);
	while (n > 0) {
		const ProtobufCMessage *m = stack[--n];
		const ProtobufCMessageDescriptor *d = m->descriptor;
		const char *base = (const char *)m;

		/* names, not descriptor addresses: those could be copies made
		 * by the dynamic linker */
		if (strcmp(d->short_name, "FuncCall") == 0)
			func_call(c, (const PgQuery__FuncCall *)m);
		else if (strcmp(d->short_name, "IntoClause") == 0)
			into_clause(c, (const PgQuery__IntoClause *)m, into_what);

		for (unsigned i = 0; i < d->n_fields; i++) {
			const ProtobufCFieldDescriptor *f = &d->fields[i];

			if (f->type != PROTOBUF_C_TYPE_MESSAGE)
				continue;
			if (f->flags & PROTOBUF_C_FIELD_FLAG_ONEOF) {
				if (*(const uint32_t *)(base + f->quantifier_offset) != f->id)
					continue;
			} else if (f->label == PROTOBUF_C_LABEL_REPEATED) {
				size_t count = *(const size_t *)(base + f->quantifier_offset);
				ProtobufCMessage *const *arr = *(
					ProtobufCMessage *const *const *)(base + f->offset);
				for (size_t j = 0; j < count; j++)
					if (arr[j])
						PUSH(arr[j]);
				continue;
			}
			const ProtobufCMessage *child = *(ProtobufCMessage *const *)(base
										     + f->offset);
			if (child)
				PUSH(child);
		}
	}
#undef PUSH
out:
	if (stack != local)
		free(stack);
	return rc;
}

static void variable_set(struct query_class *c, const PgQuery__VariableSetStmt *s)
{
	/* SET LOCAL ends with the transaction; only a RESET earlier in the
	 * string cares (the local value hides it until then) */
	if (s->is_local) {
		if (s->name && strlen(s->name) < QUERY_NAME_MAX)
			snprintf(c->set_local, sizeof(c->set_local), "%s", s->name);
		return;
	}
	switch (s->kind) {
	case PG_QUERY__VARIABLE_SET_KIND__VAR_SET_DEFAULT: /* SET x TO DEFAULT, SET TIME ZONE LOCAL */
	case PG_QUERY__VARIABLE_SET_KIND__VAR_RESET:
		query_class_add_reset(c, s->name ? s->name : "");
		break;
	case PG_QUERY__VARIABLE_SET_KIND__VAR_RESET_ALL:
		query_class_add(c, QUERY_RESETS, NULL);
		c->reset_all = true;
		break;
	case PG_QUERY__VARIABLE_SET_KIND__VAR_SET_MULTI:
		/* SET TRANSACTION and SET TRANSACTION SNAPSHOT are this
		 * transaction's; SET SESSION CHARACTERISTICS is the session's */
		if (s->name && strcmp(s->name, "SESSION CHARACTERISTICS") == 0)
			query_class_add(c, QUERY_SETS, NULL);
		break;
	default:
		/* a value, FROM CURRENT, and ROLE NONE (which sets the role to
		 * the session user, not to what RESET ROLE would restore) */
		query_class_add(c, QUERY_SETS, NULL);
		if (s->name && strlen(s->name) < QUERY_NAME_MAX)
			snprintf(c->set_name, sizeof(c->set_name), "%s", s->name);
		break;
	}
}

static bool explain_runs(const PgQuery__ExplainStmt *e)
{
	for (size_t i = 0; i < e->n_options; i++) {
		const PgQuery__Node *o = e->options[i];
		if (o->node_case != PG_QUERY__NODE__NODE_DEF_ELEM || !o->def_elem->defname
		    || strcmp(o->def_elem->defname, "analyze") != 0)
			continue;
		/* ANALYZE alone is on; only a clear off turns it off */
		return !o->def_elem->arg || bool_node(o->def_elem->arg) != 0;
	}
	return false;
}

static int classify_stmt(struct query_class *c, const PgQuery__Node *n)
{
	const ProtobufCMessage *body = NULL; /* what to search for calls */
	const char *into_what = "SELECT INTO TEMPORARY";

	switch (n->node_case) {
	case PG_QUERY__NODE__NODE_VARIABLE_SET_STMT:
		variable_set(c, n->variable_set_stmt);
		break;
	case PG_QUERY__NODE__NODE_CREATE_STMT:
		if (rel_is_temp(n->create_stmt->relation)
		    && n->create_stmt->oncommit != PG_QUERY__ON_COMMIT_ACTION__ONCOMMIT_DROP)
			query_class_add(c, QUERY_TEMP, "CREATE TEMPORARY TABLE");
		/* partition bounds and defaults of LIKE'd columns are evaluated */
		body = &n->create_stmt->base;
		break;
	case PG_QUERY__NODE__NODE_VIEW_STMT: /* the query is stored, not run */
		if (rel_is_temp(n->view_stmt->view))
			query_class_add(c, QUERY_TEMP, "CREATE TEMPORARY VIEW");
		break;
	case PG_QUERY__NODE__NODE_CREATE_SEQ_STMT:
		if (rel_is_temp(n->create_seq_stmt->sequence))
			query_class_add(c, QUERY_TEMP, "CREATE TEMPORARY SEQUENCE");
		break;
	case PG_QUERY__NODE__NODE_CREATE_TABLE_AS_STMT:
		into_what = "CREATE TEMPORARY TABLE AS";
		body = &n->create_table_as_stmt->base;
		break;
	case PG_QUERY__NODE__NODE_CREATE_FUNCTION_STMT: /* the body is stored, not run */
		if (names_in_pg_temp(n->create_function_stmt->funcname,
				     n->create_function_stmt->n_funcname))
			query_class_add(c, QUERY_TEMP,
					n->create_function_stmt->is_procedure
						? "CREATE PROCEDURE pg_temp"
						: "CREATE FUNCTION pg_temp");
		break;
	case PG_QUERY__NODE__NODE_DEFINE_STMT: /* CREATE AGGREGATE, OPERATOR, TYPE ... */
		if (names_in_pg_temp(n->define_stmt->defnames, n->define_stmt->n_defnames))
			query_class_add(c, QUERY_TEMP, "CREATE ... pg_temp");
		break;
	case PG_QUERY__NODE__NODE_COMPOSITE_TYPE_STMT:
		if (rel_is_temp(n->composite_type_stmt->typevar))
			query_class_add(c, QUERY_TEMP, "CREATE TYPE pg_temp");
		break;
	case PG_QUERY__NODE__NODE_CREATE_ENUM_STMT:
		if (names_in_pg_temp(n->create_enum_stmt->type_name,
				     n->create_enum_stmt->n_type_name))
			query_class_add(c, QUERY_TEMP, "CREATE TYPE pg_temp");
		break;
	case PG_QUERY__NODE__NODE_CREATE_RANGE_STMT:
		if (names_in_pg_temp(n->create_range_stmt->type_name,
				     n->create_range_stmt->n_type_name))
			query_class_add(c, QUERY_TEMP, "CREATE TYPE pg_temp");
		break;
	case PG_QUERY__NODE__NODE_CREATE_DOMAIN_STMT:
		if (names_in_pg_temp(n->create_domain_stmt->domainname,
				     n->create_domain_stmt->n_domainname))
			query_class_add(c, QUERY_TEMP, "CREATE DOMAIN pg_temp");
		break;
	case PG_QUERY__NODE__NODE_CREATE_STATS_STMT:
		if (names_in_pg_temp(n->create_stats_stmt->defnames,
				     n->create_stats_stmt->n_defnames))
			query_class_add(c, QUERY_TEMP, "CREATE STATISTICS pg_temp");
		break;
	case PG_QUERY__NODE__NODE_LISTEN_STMT:
		query_class_add(c, QUERY_LISTEN, "LISTEN");
		break;
	case PG_QUERY__NODE__NODE_UNLISTEN_STMT:
	case PG_QUERY__NODE__NODE_CLOSE_PORTAL_STMT:
	case PG_QUERY__NODE__NODE_DROP_STMT:
	case PG_QUERY__NODE__NODE_DROP_OWNED_STMT:
		query_class_add(c, QUERY_UNPIN, NULL);
		break;
	case PG_QUERY__NODE__NODE_PREPARE_STMT: /* runs at EXECUTE, on the pinned server */
		query_class_add(c, QUERY_PREPARE, "PREPARE");
		break;
	case PG_QUERY__NODE__NODE_DEALLOCATE_STMT: {
		const char *name = n->deallocate_stmt->name;
		query_class_add(c, QUERY_UNPIN | (name && *name ? 0 : QUERY_DEALLOCATE_ALL), NULL);
		break;
	}
	case PG_QUERY__NODE__NODE_DECLARE_CURSOR_STMT:
		if (n->declare_cursor_stmt->options & CURSOR_OPT_HOLD)
			query_class_add(c, QUERY_HOLD_CURSOR, "DECLARE ... WITH HOLD");
		/* the query runs on FETCH (or at COMMIT for WITH HOLD) */
		body = &n->declare_cursor_stmt->base;
		break;
	case PG_QUERY__NODE__NODE_LOAD_STMT:
		query_class_add(c, QUERY_LOAD, "LOAD");
		break;
	case PG_QUERY__NODE__NODE_DISCARD_STMT:
		switch (n->discard_stmt->target) {
		case PG_QUERY__DISCARD_MODE__DISCARD_ALL:
			query_class_add(c,
					QUERY_DISCARD_ALL | QUERY_DEALLOCATE_ALL | QUERY_UNPIN
						| QUERY_RESETS,
					NULL);
			c->reset_all = true;
			break;
		case PG_QUERY__DISCARD_MODE__DISCARD_TEMP:
			query_class_add(c, QUERY_UNPIN, NULL);
			break;
		default: /* PLANS, SEQUENCES: nothing a pooler tracks */
			break;
		}
		break;
	case PG_QUERY__NODE__NODE_TRANSACTION_STMT:
		if (n->transaction_stmt->kind
		    == PG_QUERY__TRANSACTION_STMT_KIND__TRANS_STMT_ROLLBACK_TO)
			query_class_add(c, QUERY_ROLLBACK_TO, NULL);
		break;
	case PG_QUERY__NODE__NODE_DO_STMT:
	case PG_QUERY__NODE__NODE_CALL_STMT:
		query_class_add(c, QUERY_UNKNOWN, NULL);
		body = &n->base; /* CALL p(pg_advisory_lock(1)) still pins */
		break;
	case PG_QUERY__NODE__NODE_EXPLAIN_STMT:
		/* only EXPLAIN ANALYZE runs the statement, with its effects */
		if (n->explain_stmt->query && explain_runs(n->explain_stmt))
			return classify_stmt(c, n->explain_stmt->query);
		break;
	case PG_QUERY__NODE__NODE_RULE_STMT: /* definitions: stored, not run */
	case PG_QUERY__NODE__NODE_CREATE_TRIG_STMT:
	case PG_QUERY__NODE__NODE_CREATE_POLICY_STMT:
		break;
	default:
		/* SELECT, INSERT, UPDATE, DELETE, MERGE, COPY (query), ALTER
		 * TABLE ... DEFAULT ...: any call in them may run */
		body = &n->base;
		break;
	}
	return body ? walk(c, body, into_what) : 0;
}

int query_tree_classify(const char *sql, size_t len, struct query_class *out)
{
	PgQueryProtobufParseResult r;
	PgQuery__ParseResult *tree;
	char *text;
	int rc = 0;

	query_class_clear(out);
	/* libpg_query wants a C string; a Parse's text is not one in place */
	text = query_alloc(len + 1);
	if (!text)
		return -1;
	memcpy(text, sql, len);
	text[len] = '\0';
	r = pg_query_parse_protobuf(text);
	free(text);
	if (r.error) {
		/* a syntax error in any statement of the string makes the server
		 * reject the whole string before running any of it */
		bool oom = r.error->message && strstr(r.error->message, "out of memory");
		pg_query_free_protobuf_parse_result(r);
		return oom ? -1 : 0;
	}
	tree = pg_query__parse_result__unpack(NULL, r.parse_tree.len,
					      (const uint8_t *)r.parse_tree.data);
	pg_query_free_protobuf_parse_result(r);
	if (!tree)
		return -1;
	for (size_t i = 0; i < tree->n_stmts && rc == 0; i++) {
		struct query_class one;
		if (!tree->stmts[i] || !tree->stmts[i]->stmt)
			continue;
		query_class_clear(&one);
		rc = classify_stmt(&one, tree->stmts[i]->stmt);
		query_class_merge(out, &one);
	}
	pg_query__parse_result__free_unpacked(tree, NULL);
	return rc;
}
