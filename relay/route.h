/* Shared by relay/route.c, relay/fanout.c and relay/twophase.c: the state
 * of a sharded link. */
#ifndef PGCRAB_RELAY_ROUTE_H
#define PGCRAB_RELAY_ROUTE_H

#include <stdbool.h>
#include <stdint.h>

#include "relay/relay.h"
#include "router/router.h"

enum route_state {
	ROUTE_IDLE,     /* between units */
	ROUTE_WAIT_LEG, /* the owner is getting a server of waiting_shard */
	ROUTE_RESUME,   /* a leg is answering a hidden query: the unit goes on after */
	ROUTE_SINGLE,   /* the unit passes to l->to */
	ROUTE_FAN,      /* the unit runs on several shards (fanout.c) */
};

/* What a unit needs. */
struct unit_route {
	struct router_plan *plan; /* the statement's (a Query's, or the batch's Parse) */
	uint64_t shards;          /* shards its keys name */
	bool any;                 /* ...or any one shard */
	bool fan;                 /* every shard of .shards, answers merged */
	bool fan_force;
	bool bind;  /* a ROUTER_BIND plan: shards from its Binds */
	bool split; /* a multi-row INSERT split by its Bind's keys */
	bool plan_bind;
	bool writes, no_tx_block;
	bool executes; /* a Query or an Execute: something runs (else only Parse/Describe) */
	int n_plans;
	int n_msgs;   /* messages in it */
	uint32_t len; /* its bytes at the client's rx_start */
};

struct fan;

struct relay_router {
	const struct router_schema *schema;
	char db_name[64];
	enum route_state state;
	int waiting_shard;
	bool resume_tx;              /* ROUTE_RESUME: the unit is transaction control */
	struct unit_route unit;      /* the unit being run */
	struct router_plan *plan;    /* ...its plan */
	struct router_plan *unnamed; /* the unnamed statement's plan */
	/* a multi-row INSERT split at its Bind: each row's shard, and the plan
	 * of the statement bound when it was not the unit's own Parse */
	int *split_rows;
	/* a merged LIMIT/OFFSET given as parameters: the Bind's values */
	bool limits_bound;
	int64_t limit, offset;
	struct router_plan *split_plan;
	struct router_context ctx; /* SET pgcrab.shard */
	char *ctx_key;             /* SET pgcrab.sharding_key */
	/* the open transaction: BEGIN and its savepoints, sent to each shard
	 * that joins it; NULL outside a transaction */
	char *preamble;
	bool aborted;  /* PgCrab refused a statement in the transaction */
	bool tx_wrote; /* ...and it wrote (cross_shard_writes = error keeps it on one shard) */
	unsigned rr;   /* round robin for reads of unsharded tables */
	struct fan *fan;
	struct router_copy_spec *copy_spec; /* the unit is COPY FROM STDIN into a sharded table */
	int fan_end; /* enum fan_end: the fan-out ends the transaction, sends no unit */
};

struct relay_leg *route_leg_of(struct relay_link *l, int shard);
char route_tx_status(const struct relay_link *l);
uint64_t route_tx_shards(const struct relay_link *l);
void route_data_unit(struct relay_link *l);
/* Answers the unit at the client's rx_start with an ErrorResponse and
 * ReadyForQuery, and drops it. */
void route_answer_error(struct relay_link *l, const char *code, const char *msg);

/* fanout.c */
enum fan_end { FAN_END_NONE, FAN_END_COMMIT, FAN_END_ROLLBACK };
/* Runs the unit on every shard of want (legs ready). */
void route_fan_start(struct relay_link *l, uint64_t want);
/* Moves the fan-out on; true when it is over (its ReadyForQuery went out). */
bool route_fan_pump(struct relay_link *l);
void route_fan_free(struct relay_link *l);
int route_register_names(struct relay_link *l, char *missing, size_t missing_len);

/* twophase.c */
/* A unit that only parses or describes a statement PgCrab runs itself
 * (transaction control, SET pgcrab.*): answered, nothing run. */
void route_answer_parse_only(struct relay_link *l);
/* Transaction control (BEGIN, COMMIT, ROLLBACK, savepoints). */
void route_tx_unit(struct relay_link *l, const struct router_plan *p, uint8_t first);

#endif
