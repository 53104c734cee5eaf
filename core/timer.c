/* The timer wheel (see core/timer.h for what it promises).
 *
 * Where a timer lives: an armed timer due at tick T > tw->tick sits in slot
 * T mod TIMER_WHEEL_SLOTS; one due at or before the current tick sits in
 * the current tick's slot. timer_wheel_advance reads the slots from the old
 * tick to the new one, so after it returns every slot but the current one
 * holds only timers due at a later tick than tw->tick, and the slot k ticks
 * ahead only timers due at or after (tw->tick + k) * granularity_ms:
 * timer_wheel_next_due relies on that to stop early. */
#include "core/timer.h"

#include "core/list.h"

#define SLOT_MASK (TIMER_WHEEL_SLOTS - 1)

_Static_assert((TIMER_WHEEL_SLOTS & SLOT_MASK) == 0, "TIMER_WHEEL_SLOTS is a power of two");

void timer_wheel_init(struct timer_wheel *tw, uint64_t now_ms, uint32_t granularity_ms)
{
	tw->granularity_ms = granularity_ms ? granularity_ms : 1;
	tw->now_ms = now_ms;
	tw->tick = now_ms / tw->granularity_ms;
	tw->armed = 0;
	for (unsigned i = 0; i < TIMER_WHEEL_SLOTS; i++) {
		list_init(&tw->slots[i].timers);
		tw->slots[i].min_due_ms = UINT64_MAX;
	}
}

void timer_init(struct timer *t, void (*fire)(struct timer *t))
{
	list_init(&t->link);
	t->wheel = NULL;
	t->due_ms = 0;
	t->fire = fire;
}

void timer_disarm(struct timer *t)
{
	if (!t->wheel)
		return;
	/* The slot's bound stays as it is: still a lower bound, and keeping
	 * it spares knowing which slot (or which due list) t was on. */
	list_del(&t->link);
	t->wheel->armed--;
	t->wheel = NULL;
}

void timer_arm(struct timer_wheel *tw, struct timer *t, uint64_t due_ms)
{
	timer_disarm(t);
	uint64_t tick = due_ms / tw->granularity_ms;
	/* Overdue or due within the current tick: the next advance reads the
	 * current tick's slot first whatever the time it is given. */
	struct timer_slot *s = &tw->slots[(tick > tw->tick ? tick : tw->tick) & SLOT_MASK];
	t->due_ms = due_ms;
	t->wheel = tw;
	list_add_tail(&s->timers, &t->link);
	if (due_ms < s->min_due_ms)
		s->min_due_ms = due_ms;
	tw->armed++;
}

/* Moves the timers of s that are due by now_ms onto due and makes the
 * slot's bound exact for those that stay. They remain armed (t->wheel set)
 * until fired, so a disarm from another callback unlinks them from due. */
static void take_due(struct timer_slot *s, uint64_t now_ms, struct list *due)
{
	if (s->min_due_ms > now_ms)
		return; /* only later rotations here: not even read */
	uint64_t min_due = UINT64_MAX;
	for (struct list *n = s->timers.next, *next; n != &s->timers; n = next) {
		next = n->next;
		struct timer *t = list_entry(n, struct timer, link);
		if (t->due_ms <= now_ms) {
			list_del(n);
			list_add_tail(due, n);
		} else if (t->due_ms < min_due) {
			min_due = t->due_ms;
		}
	}
	s->min_due_ms = min_due;
}

unsigned timer_wheel_advance(struct timer_wheel *tw, uint64_t now_ms)
{
	if (now_ms < tw->now_ms)
		now_ms = tw->now_ms;
	uint64_t tick = now_ms / tw->granularity_ms;
	/* The old tick's slot is read again: timers due later within that
	 * tick, or armed overdue since, are there. A jump of a rotation or
	 * more reads every slot once, which finds every due timer since each
	 * one is compared by its due_ms, not by its rotation. */
	uint64_t visits = tick - tw->tick >= TIMER_WHEEL_SLOTS ? TIMER_WHEEL_SLOTS
							       : tick - tw->tick + 1;
	struct list due;
	list_init(&due);
	for (uint64_t i = 0; i < visits; i++)
		take_due(&tw->slots[(tw->tick + i) & SLOT_MASK], now_ms, &due);
	/* Time moves before anything fires, so a callback arming at "now"
	 * lands in the new current slot for the next advance. */
	tw->now_ms = now_ms;
	tw->tick = tick;

	unsigned fired = 0;
	struct list *n;
	while ((n = list_pop_head(&due))) {
		struct timer *t = list_entry(n, struct timer, link);
		t->wheel = NULL;
		tw->armed--;
		fired++;
		/* after this, t may be freed: nothing below touches it */
		t->fire(t);
	}
	return fired;
}

uint64_t timer_wheel_next_due(const struct timer_wheel *tw)
{
	if (!tw->armed)
		return UINT64_MAX;
	/* The current slot may hold anything due up to its next rotation;
	 * the slot k ahead holds nothing due before its start, so once a
	 * slot starts at or after the best bound found, no later one can
	 * beat it. */
	uint64_t best = tw->slots[tw->tick & SLOT_MASK].min_due_ms;
	uint64_t start = tw->tick * tw->granularity_ms;
	for (unsigned k = 1; k < TIMER_WHEEL_SLOTS; k++) {
		if (start > UINT64_MAX - tw->granularity_ms)
			break; /* no later slot can start before the end of time */
		start += tw->granularity_ms;
		if (start >= best)
			break;
		uint64_t b = tw->slots[(tw->tick + k) & SLOT_MASK].min_due_ms;
		if (b < best)
			best = b;
	}
	return best <= tw->now_ms ? 0 : best - tw->now_ms;
}
