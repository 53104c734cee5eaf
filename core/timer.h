/* A per-worker timer wheel: the deadlines of a worker's connections (login,
 * idle, queue wait, idle in transaction) without visiting every connection
 * on every tick. A connection whose timeouts are all off has no armed timer
 * and costs nothing; one with a timeout costs its share of one slot.
 *
 * Hashed wheel: TIMER_WHEEL_SLOTS slots of granularity_ms each; a timer due
 * at d sits in slot (d / granularity_ms) mod TIMER_WHEEL_SLOTS, whatever the
 * rotation, and a timer already due sits in the slot of the current tick.
 * Each slot keeps a lower bound of the due times in it, so a slot holding
 * only later rotations is passed over without reading its timers.
 *
 * Cost model:
 *   timer_arm, timer_disarm, timer_armed   O(1)
 *   timer_wheel_advance    O(slots passed, at most TIMER_WHEEL_SLOTS) plus
 *                          O(timers in the slots that hold a due one, or
 *                          held one disarmed since that slot was last read)
 *   timer_wheel_next_due   O(slots up to the earliest due one), at most
 *                          TIMER_WHEEL_SLOTS
 * Firing is exact to the millisecond: granularity spreads timers over slots
 * and sets how far apart the slot bounds are; it never delays a timer.
 *
 * Not thread-safe: a wheel and its timers belong to one worker. */
#ifndef PGCRAB_TIMER_H
#define PGCRAB_TIMER_H

#include <stdbool.h>
#include <stdint.h>

#include "core/list.h"

/* A power of two: 512 × 100 ms is a rotation of 51.2 s, so timeouts of a
 * few minutes are looked at a handful of times before they are due. */
#define TIMER_WHEEL_SLOTS 512u

struct timer_wheel;

/* Embed one in the object it times out; timer_init before first use. */
struct timer {
	struct list link;          /* in a wheel slot while armed, else unlinked */
	struct timer_wheel *wheel; /* the wheel it is armed in, NULL when not */
	uint64_t due_ms;
	/* Called once, from timer_wheel_advance, when due_ms has been reached;
	 * the timer is already disarmed. The owner finds itself with
	 * list_entry(t, struct owner, timer_field). It may arm or disarm any
	 * timer, itself included, and free its own timer or others' after
	 * disarming them; it must not call timer_wheel_advance. */
	void (*fire)(struct timer *t);
};

struct timer_slot {
	struct list timers;
	uint64_t min_due_ms; /* <= every due_ms in timers; UINT64_MAX if none was */
};

struct timer_wheel {
	uint64_t now_ms; /* the time advanced to */
	uint64_t tick;   /* now_ms / granularity_ms */
	uint32_t granularity_ms;
	unsigned armed; /* timers armed, those about to fire included */
	struct timer_slot slots[TIMER_WHEEL_SLOTS];
};

/* granularity_ms 0 is taken as 1. */
void timer_wheel_init(struct timer_wheel *tw, uint64_t now_ms, uint32_t granularity_ms);

void timer_init(struct timer *t, void (*fire)(struct timer *t));

/* Arms t to fire at the first timer_wheel_advance to a time >= due_ms; an
 * armed timer moves (from any wheel). A due_ms not after the wheel's now_ms
 * fires on the next advance, never within the advance that is running, so
 * a callback that re-arms itself at "now" cannot loop.
 *
 * For a deadline that moves on every message (idle timeouts), re-arming on
 * each message is O(1) but leaves a stale slot bound behind; cheaper still
 * is to note the activity time and, when the timer fires, re-arm it for
 * the time that is left. */
void timer_arm(struct timer_wheel *tw, struct timer *t, uint64_t due_ms);

/* No-op if t is not armed. O(1). */
void timer_disarm(struct timer *t);

static inline bool timer_armed(const struct timer *t)
{
	return t->wheel != NULL;
}

/* Fires every armed timer whose due_ms <= now_ms (no order is promised, not
 * even within a slot) and returns how many fired. Due timers are taken off
 * the wheel first, then fired one by one, so a callback's arms and disarms
 * never meet a half-read slot; a timer disarmed or re-armed by an earlier
 * callback of the same advance does not fire. A jump of many rotations
 * reads each slot once. A now_ms before the wheel's time is taken as the
 * wheel's time (the clock is monotonic; this only fires what is overdue). */
unsigned timer_wheel_advance(struct timer_wheel *tw, uint64_t now_ms);

/* Milliseconds from the wheel's now_ms until the earliest armed timer may
 * be due: 0 if one is already due, UINT64_MAX if none is armed. Never later
 * than the true earliest due_ms; it may be earlier when the timer that set
 * a slot's bound was disarmed or moved (the worker then wakes once for
 * nothing, and that advance reads the slot and tightens its bound). */
uint64_t timer_wheel_next_due(const struct timer_wheel *tw);

#endif
