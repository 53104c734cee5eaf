/* What an io_uring completion is for: the 64-bit user_data of every
 * submission, on the workers' rings and the acceptor's, is built by
 * ud_encode and read back by ud_decode, nowhere else.
 *
 *   bits 0..3   op       enum ud_op
 *   bits 4..8   kind     a worker message kind (UD_MSG, UD_MSG_DONE), or 0
 *   bits 9..63  payload  a pointer (a connection, a donated server), a
 *                        client pid, or an fd and a worker id (UD_POSTED)
 */
#ifndef PGCRAB_URING_DATA_H
#define PGCRAB_URING_DATA_H

#include <stdint.h>
#include <stdlib.h>

enum ud_op {
	UD_NONE = 0, /* completions nobody waits for (cancels, fire-and-forget) */
	/* a connection's operations: the payload is its struct conn * */
	UD_RECV,
	UD_SEND,
	UD_CONNECT,
	UD_CLOSE,
	UD_POLL, /* watching a connection that does not read for its peer's close */
	/* a worker's own */
	UD_TICK,     /* its timer */
	UD_MSG,      /* a message from another thread (IORING_OP_MSG_RING) */
	UD_MSG_DONE, /* our IORING_OP_MSG_RING to another thread completed */
	/* the acceptor's */
	UD_ACCEPT,
	UD_SIGNAL,
	UD_TIMER,
	UD_POSTED, /* a client handed to a worker; payload: fd | worker id << 32 */
	/* a worker's sendmsg for its owner (a client's socket going to an
	 * upgrade's new process); payload: the owner's pointer */
	UD_SENDMSG,
	UD_OP_COUNT,
};

#define UD_OP_BITS      4
#define UD_KIND_BITS    5
#define UD_PAYLOAD_BITS 55

_Static_assert(UD_OP_BITS + UD_KIND_BITS + UD_PAYLOAD_BITS == 64, "user_data is 64 bits");
_Static_assert(UD_OP_COUNT <= 1 << UD_OP_BITS, "ops fit their field");
/* user-space pointers on x86-64 and arm64 are below 2^48 (2^57 only for
 * mappings asked for above 2^47, which malloc does not): ud_encode checks */
_Static_assert(UD_PAYLOAD_BITS >= 48, "a pointer fits the payload");
_Static_assert(UD_PAYLOAD_BITS >= 32 + 8 + 1, "an fd and a worker id fit the payload");

struct ud_fields {
	enum ud_op op;
	unsigned kind;
	uint64_t payload;
};

static inline uint64_t ud_encode(enum ud_op op, unsigned kind, uint64_t payload)
{
	/* a value that does not fit would name the wrong thing: never go on */
	if (kind >> UD_KIND_BITS || payload >> UD_PAYLOAD_BITS)
		abort();
	return (uint64_t)op | (uint64_t)kind << UD_OP_BITS | payload << (UD_OP_BITS + UD_KIND_BITS);
}

static inline struct ud_fields ud_decode(uint64_t v)
{
	return (struct ud_fields){
		.op = (enum ud_op)(v & ((1u << UD_OP_BITS) - 1)),
		.kind = (unsigned)(v >> UD_OP_BITS) & ((1u << UD_KIND_BITS) - 1),
		.payload = v >> (UD_OP_BITS + UD_KIND_BITS),
	};
}

static inline uint64_t ud_pointer(enum ud_op op, unsigned kind, const void *p)
{
	return ud_encode(op, kind, (uint64_t)(uintptr_t)p);
}

static inline void *ud_payload_pointer(struct ud_fields f)
{
	return (void *)(uintptr_t)f.payload;
}

#endif
