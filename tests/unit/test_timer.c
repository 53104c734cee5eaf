/* core/timer.c: exact firing times and counts, callbacks that arm, disarm
 * and free timers in the middle of an advance, time jumps and the top of
 * uint64, and a long random run checked against a plain array of due times. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "core/list.h"
#include "core/timer.h"

/* A timer's owner as a connection would be: the timer embedded in it. */
struct owner {
	int id;
	int fires;
	uint64_t fired_at; /* the wheel's time when it last fired */
	struct timer t;
};

/* The wheel under test, for callbacks to read the time and arm timers. */
static struct timer_wheel *wheel;

static struct owner *owner_of(struct timer *t)
{
	return list_entry(t, struct owner, t);
}

static void on_fire(struct timer *t)
{
	struct owner *o = owner_of(t);
	o->fires++;
	o->fired_at = wheel->now_ms;
}

static struct timer_wheel *new_wheel(uint64_t now_ms, uint32_t granularity_ms)
{
	/* heap, not stack: 12 KB, and ASan then sees any stray access */
	struct timer_wheel *tw = malloc(sizeof(*tw));
	assert_non_null(tw);
	timer_wheel_init(tw, now_ms, granularity_ms);
	wheel = tw;
	return tw;
}

static void owners_init(struct owner *o, int n, void (*fire)(struct timer *))
{
	for (int i = 0; i < n; i++) {
		memset(&o[i], 0, sizeof(o[i]));
		o[i].id = i;
		timer_init(&o[i].t, fire);
	}
}

static void test_fires_exactly_when_due(void **state)
{
	(void)state;
	struct timer_wheel *tw = new_wheel(1000, 100);
	static const uint64_t due[] = { 1000, 1050, 1099, 1100, 1101, 1234 };
	struct owner o[6];
	owners_init(o, 6, on_fire);
	assert_int_equal(timer_wheel_next_due(tw), UINT64_MAX);
	for (int i = 0; i < 6; i++)
		timer_arm(tw, &o[i].t, due[i]);
	assert_int_equal(tw->armed, 6);
	assert_int_equal(timer_wheel_next_due(tw), 0);

	/* due exactly at the wheel's time: the next advance, even to the same time */
	assert_int_equal(timer_wheel_advance(tw, 1000), 1);
	assert_int_equal(o[0].fires, 1);
	assert_false(timer_armed(&o[0].t));
	assert_int_equal(timer_wheel_next_due(tw), 50);
	assert_int_equal(timer_wheel_advance(tw, 1049), 0);
	assert_int_equal(timer_wheel_next_due(tw), 1);
	assert_int_equal(timer_wheel_advance(tw, 1050), 1);
	assert_int_equal(o[1].fired_at, 1050);
	assert_int_equal(timer_wheel_advance(tw, 1100), 2);
	assert_int_equal(o[2].fired_at, 1100);
	assert_int_equal(o[3].fired_at, 1100);
	assert_int_equal(timer_wheel_advance(tw, 1100), 0);
	assert_int_equal(timer_wheel_next_due(tw), 1);
	assert_int_equal(timer_wheel_advance(tw, 1101), 1);
	assert_int_equal(timer_wheel_next_due(tw), 133);
	assert_int_equal(timer_wheel_advance(tw, 1233), 0);
	assert_int_equal(timer_wheel_advance(tw, 1234), 1);
	assert_int_equal(o[5].fired_at, 1234);
	assert_int_equal(tw->armed, 0);
	assert_int_equal(timer_wheel_next_due(tw), UINT64_MAX);
	for (int i = 0; i < 6; i++)
		assert_int_equal(o[i].fires, 1);
	free(tw);
}

static void test_past_due_fires_on_next_advance(void **state)
{
	(void)state;
	struct timer_wheel *tw = new_wheel(5000, 100);
	struct owner o[3];
	owners_init(o, 3, on_fire);
	timer_arm(tw, &o[0].t, 0);
	timer_arm(tw, &o[1].t, 10);
	timer_arm(tw, &o[2].t, 4999);
	assert_int_equal(timer_wheel_next_due(tw), 0);
	assert_int_equal(timer_wheel_advance(tw, 5000), 3);
	for (int i = 0; i < 3; i++)
		assert_int_equal(o[i].fired_at, 5000);

	/* a clock read before the wheel's time only fires what is overdue */
	timer_arm(tw, &o[0].t, 4000);
	timer_arm(tw, &o[1].t, 5001);
	assert_int_equal(timer_wheel_advance(tw, 3000), 1);
	assert_int_equal(tw->now_ms, 5000);
	assert_int_equal(o[0].fires, 2);
	assert_int_equal(o[1].fires, 1);
	assert_int_equal(timer_wheel_advance(tw, 5001), 1);
	assert_int_equal(o[1].fires, 2);
	free(tw);
}

static void test_disarm_and_rearm(void **state)
{
	(void)state;
	struct timer_wheel *tw = new_wheel(0, 100);
	struct owner o[3];
	owners_init(o, 3, on_fire);

	timer_disarm(&o[0].t); /* never armed: nothing happens */
	assert_false(timer_armed(&o[0].t));
	timer_arm(tw, &o[0].t, 150);
	assert_true(timer_armed(&o[0].t));
	timer_disarm(&o[0].t);
	timer_disarm(&o[0].t);
	assert_false(timer_armed(&o[0].t));
	assert_int_equal(tw->armed, 0);

	/* an armed timer moves, later and earlier, and counts once */
	timer_arm(tw, &o[1].t, 100);
	timer_arm(tw, &o[1].t, 300);
	assert_int_equal(tw->armed, 1);
	timer_arm(tw, &o[2].t, 900);
	timer_arm(tw, &o[2].t, 250);
	assert_int_equal(tw->armed, 2);

	assert_int_equal(timer_wheel_advance(tw, 200), 0);
	assert_int_equal(timer_wheel_advance(tw, 250), 1);
	assert_int_equal(o[2].fired_at, 250);
	assert_int_equal(timer_wheel_advance(tw, 299), 0);
	assert_int_equal(timer_wheel_advance(tw, 300), 1);
	assert_int_equal(o[1].fired_at, 300);
	assert_int_equal(timer_wheel_advance(tw, 10000), 0);
	assert_int_equal(o[0].fires, 0);
	assert_int_equal(o[1].fires + o[2].fires, 2);
	assert_int_equal(tw->armed, 0);
	free(tw);
}

/* A disarmed timer leaves its slot's bound behind: next_due may be early,
 * never late, and the advance that reads the slot makes it exact again. */
static void test_next_due_after_disarm(void **state)
{
	(void)state;
	struct timer_wheel *tw = new_wheel(0, 100);
	struct owner o[2];
	owners_init(o, 2, on_fire);
	timer_arm(tw, &o[0].t, 50);
	timer_arm(tw, &o[1].t, 500);
	assert_int_equal(timer_wheel_next_due(tw), 50);
	timer_disarm(&o[0].t);
	assert_true(timer_wheel_next_due(tw) <= 500);
	assert_int_equal(timer_wheel_advance(tw, 50), 0);
	assert_int_equal(timer_wheel_next_due(tw), 450);

	/* the same in a slot ahead of the current one */
	timer_arm(tw, &o[0].t, 320);
	assert_int_equal(timer_wheel_next_due(tw), 270);
	timer_arm(tw, &o[0].t, 1000);
	assert_true(timer_wheel_next_due(tw) <= 450);
	assert_int_equal(timer_wheel_advance(tw, 320), 0);
	assert_int_equal(timer_wheel_next_due(tw), 180);
	assert_int_equal(timer_wheel_advance(tw, 500), 1);
	assert_int_equal(timer_wheel_next_due(tw), 500);
	free(tw);
}

/* Timers several rotations ahead share slots with nearer ones and must
 * wait for their own rotation, to the millisecond. */
static void test_beyond_one_rotation(void **state)
{
	(void)state;
	const uint64_t rot = (uint64_t)TIMER_WHEEL_SLOTS * 10;
	struct timer_wheel *tw = new_wheel(0, 10);
	struct owner o[3];
	owners_init(o, 3, on_fire);
	timer_arm(tw, &o[0].t, 25);           /* slot 2 */
	timer_arm(tw, &o[1].t, rot + 27);     /* slot 2, a rotation on */
	timer_arm(tw, &o[2].t, 3 * rot + 21); /* slot 2, three rotations on */
	assert_int_equal(timer_wheel_next_due(tw), 25);
	unsigned fired = 0;
	for (uint64_t now = 1; now <= 3 * rot + 30; now++) {
		unsigned n = timer_wheel_advance(tw, now);
		fired += n;
		if (now == 25 || now == rot + 27 || now == 3 * rot + 21)
			assert_int_equal(n, 1);
		else
			assert_int_equal(n, 0);
		if (now == 25)
			assert_int_equal(timer_wheel_next_due(tw), rot + 2);
		if (now == rot + 27)
			assert_int_equal(timer_wheel_next_due(tw), 2 * rot - 6);
	}
	assert_int_equal(fired, 3);
	assert_int_equal(o[0].fired_at, 25);
	assert_int_equal(o[1].fired_at, rot + 27);
	assert_int_equal(o[2].fired_at, 3 * rot + 21);
	free(tw);
}

/* The current slot may hold a later rotation that comes after a timer in
 * the last slot of this one: next_due must read on to the last slot. */
static void test_next_due_behind_a_later_rotation(void **state)
{
	(void)state;
	const uint32_t gran[] = { 1, 100 };
	for (size_t g = 0; g < sizeof(gran) / sizeof(gran[0]); g++) {
		const uint64_t rot = (uint64_t)TIMER_WHEEL_SLOTS * gran[g];
		struct timer_wheel *tw = new_wheel(0, gran[g]);
		struct owner o[2];
		owners_init(o, 2, on_fire);
		timer_arm(tw, &o[0].t, rot);           /* the current slot */
		timer_arm(tw, &o[1].t, rot - gran[g]); /* the last slot */
		assert_int_equal(timer_wheel_next_due(tw), rot - gran[g]);
		timer_disarm(&o[1].t);
		timer_arm(tw, &o[1].t, rot - gran[g] + 1); /* not a slot start */
		assert_true(timer_wheel_next_due(tw) <= rot - gran[g] + 1);
		assert_int_equal(timer_wheel_advance(tw, rot - gran[g]), 0);
		assert_int_equal(timer_wheel_next_due(tw), 1);
		assert_int_equal(timer_wheel_advance(tw, rot), 2);
		free(tw);
	}
}

/* A jump of billions of ticks reads each slot once: this would not return
 * (main's alarm fails it) if advance walked every tick. */
static void test_time_jumps(void **state)
{
	(void)state;
	struct timer_wheel *tw = new_wheel(1000, 1);
	struct owner o[4];
	owners_init(o, 4, on_fire);
	timer_arm(tw, &o[0].t, 1010);
	timer_arm(tw, &o[1].t, 1000 + 3 * TIMER_WHEEL_SLOTS + 10); /* o[0]'s slot */
	timer_arm(tw, &o[2].t, 1000 + 7 * TIMER_WHEEL_SLOTS + 400);
	timer_arm(tw, &o[3].t, (uint64_t)1 << 50);
	assert_int_equal(timer_wheel_advance(tw, (uint64_t)1 << 40), 3);
	assert_int_equal(o[0].fired_at, (uint64_t)1 << 40);
	assert_int_equal(o[2].fired_at, (uint64_t)1 << 40);
	assert_int_equal(o[3].fires, 0);
	assert_int_equal(timer_wheel_next_due(tw), ((uint64_t)1 << 50) - ((uint64_t)1 << 40));
	assert_int_equal(timer_wheel_advance(tw, ((uint64_t)1 << 50) - 1), 0);
	assert_int_equal(timer_wheel_advance(tw, UINT64_MAX / 3), 1);
	assert_int_equal(o[3].fired_at, UINT64_MAX / 3);
	assert_int_equal(tw->armed, 0);
	free(tw);
}

/* Ticks, slot starts and due times at the top of uint64 must not wrap. */
static void test_near_uint64_max(void **state)
{
	(void)state;
	const uint32_t gran[] = { 1, 100, 4096 };
	for (size_t g = 0; g < sizeof(gran) / sizeof(gran[0]); g++) {
		struct timer_wheel *tw = new_wheel(UINT64_MAX - 1000, gran[g]);
		struct owner o[3];
		owners_init(o, 3, on_fire);
		timer_arm(tw, &o[0].t, UINT64_MAX - 1);
		timer_arm(tw, &o[1].t, UINT64_MAX);
		timer_arm(tw, &o[2].t, UINT64_MAX - 600);
		assert_int_equal(timer_wheel_next_due(tw), 400);
		assert_int_equal(timer_wheel_advance(tw, UINT64_MAX - 601), 0);
		assert_int_equal(timer_wheel_advance(tw, UINT64_MAX - 600), 1);
		assert_int_equal(timer_wheel_next_due(tw), 599);
		assert_int_equal(timer_wheel_advance(tw, UINT64_MAX - 2), 0);
		assert_int_equal(timer_wheel_advance(tw, UINT64_MAX - 1), 1);
		assert_int_equal(timer_wheel_next_due(tw), 1);
		assert_int_equal(timer_wheel_advance(tw, UINT64_MAX), 1);
		assert_int_equal(o[1].fired_at, UINT64_MAX);
		assert_int_equal(timer_wheel_next_due(tw), UINT64_MAX);
		/* armed at the end of time, fired there */
		timer_arm(tw, &o[0].t, UINT64_MAX);
		assert_int_equal(timer_wheel_next_due(tw), 0);
		assert_int_equal(timer_wheel_advance(tw, UINT64_MAX), 1);
		assert_int_equal(o[0].fires, 2);
		free(tw);
	}
}

static void test_zero_granularity_is_one(void **state)
{
	(void)state;
	struct timer_wheel *tw = new_wheel(7, 0);
	assert_int_equal(tw->granularity_ms, 1);
	struct owner o;
	owners_init(&o, 1, on_fire);
	timer_arm(tw, &o.t, 9);
	assert_int_equal(timer_wheel_advance(tw, 8), 0);
	assert_int_equal(timer_wheel_advance(tw, 9), 1);
	free(tw);
}

/* A callback that re-arms its own timer at "now" fires once per advance,
 * never twice in one (no loop); one re-armed for a time already past fires
 * on the next advance. */
static void rearm_at_now(struct timer *t)
{
	on_fire(t);
	timer_arm(wheel, t, wheel->now_ms);
}

static void rearm_period(struct timer *t)
{
	on_fire(t);
	timer_arm(wheel, t, t->due_ms + 100);
}

static void test_rearm_self_from_fire(void **state)
{
	(void)state;
	struct timer_wheel *tw = new_wheel(0, 100);
	struct owner a, b;
	owners_init(&a, 1, rearm_at_now);
	owners_init(&b, 1, rearm_period);
	timer_arm(tw, &a.t, 0);
	timer_arm(tw, &b.t, 100);
	assert_int_equal(timer_wheel_advance(tw, 0), 1);
	assert_int_equal(timer_wheel_advance(tw, 0), 1);
	assert_int_equal(timer_wheel_advance(tw, 50), 1);
	assert_int_equal(a.fires, 3);
	assert_int_equal(b.fires, 0);
	assert_int_equal(timer_wheel_advance(tw, 100), 2);
	assert_int_equal(b.t.due_ms, 200);
	/* behind by 2.5 periods: one fire per advance, catching up */
	assert_int_equal(timer_wheel_advance(tw, 450), 2);
	assert_int_equal(b.t.due_ms, 300);
	assert_int_equal(timer_wheel_advance(tw, 450), 2);
	assert_int_equal(timer_wheel_advance(tw, 450), 2);
	assert_int_equal(b.t.due_ms, 500);
	assert_int_equal(timer_wheel_advance(tw, 450), 1);
	assert_int_equal(a.fires, 8);
	assert_int_equal(b.fires, 4);
	assert_int_equal(tw->armed, 2);
	free(tw);
}

/* Timers due in the same advance, each of whose callbacks disarms the
 * other and frees its owner: whichever fires first, the other must neither
 * fire nor be touched (ASan in SANITIZE=1 builds sees any touch). */
struct pair_owner {
	struct pair_owner **other; /* the slot holding the partner, NULL once freed */
	struct pair_owner **self;
	struct timer t;
};

static int pair_fires;

static void kill_partner(struct timer *t)
{
	struct pair_owner *o = list_entry(t, struct pair_owner, t);
	pair_fires++;
	struct pair_owner *p = *o->other;
	if (p) {
		timer_disarm(&p->t);
		*p->self = NULL;
		memset(p, 0xa5, sizeof(*p)); /* a stale read would now crash */
		free(p);
	}
	*o->self = NULL;
	free(o); /* and itself: nothing may touch t after this */
}

static void test_fire_frees_other_due_timer(void **state)
{
	(void)state;
	/* same slot, neighbouring slots, same and different times */
	static const uint64_t due[][2] = {
		{ 10, 10 }, { 10, 20 }, { 20, 10 }, { 30, 150 }, { 150, 30 }
	};
	for (size_t c = 0; c < sizeof(due) / sizeof(due[0]); c++) {
		struct timer_wheel *tw = new_wheel(0, 100);
		struct pair_owner *p[2];
		for (int i = 0; i < 2; i++) {
			p[i] = malloc(sizeof(*p[i]));
			assert_non_null(p[i]);
			p[i]->self = &p[i];
			p[i]->other = &p[1 - i];
			timer_init(&p[i]->t, kill_partner);
		}
		timer_arm(tw, &p[0]->t, due[c][0]);
		timer_arm(tw, &p[1]->t, due[c][1]);
		pair_fires = 0;
		assert_int_equal(timer_wheel_advance(tw, 200), 1);
		assert_int_equal(pair_fires, 1);
		assert_null(p[0]);
		assert_null(p[1]);
		assert_int_equal(tw->armed, 0);
		assert_int_equal(timer_wheel_next_due(tw), UINT64_MAX);
		assert_int_equal(timer_wheel_advance(tw, 10000), 0);
		free(tw);
	}
}

/* A callback that re-arms a timer that was due in the same advance moves
 * it (it does not fire now), and one that arms a timer for a past time has
 * it fire on the next advance, not this one. o[0] and o[1] are due in the
 * same advance; whichever fires first moves the other. */
static struct owner *partners;

static void move_partner(struct timer *t)
{
	struct owner *o = owner_of(t);
	on_fire(t);
	struct owner *other = &partners[1 - o->id];
	if (timer_armed(&other->t))
		timer_arm(wheel, &other->t, wheel->now_ms + 30);
	timer_arm(wheel, &partners[2].t, wheel->now_ms - 5);
}

static void test_fire_rearms_other_due_timer(void **state)
{
	(void)state;
	struct timer_wheel *tw = new_wheel(0, 100);
	struct owner o[3];
	owners_init(o, 3, move_partner);
	o[2].t.fire = on_fire;
	partners = o;
	timer_arm(tw, &o[0].t, 40);
	timer_arm(tw, &o[1].t, 60);
	assert_int_equal(timer_wheel_advance(tw, 100), 1);
	assert_int_equal(o[0].fires + o[1].fires, 1);
	struct owner *moved = o[0].fires ? &o[1] : &o[0];
	assert_true(timer_armed(&moved->t));
	assert_int_equal(moved->t.due_ms, 130);
	assert_true(timer_armed(&o[2].t));
	assert_int_equal(o[2].fires, 0);
	assert_int_equal(timer_wheel_next_due(tw), 0);
	assert_int_equal(timer_wheel_advance(tw, 100), 1);
	assert_int_equal(o[2].fires, 1);
	assert_int_equal(timer_wheel_next_due(tw), 30);
	assert_int_equal(timer_wheel_advance(tw, 129), 0);
	assert_int_equal(timer_wheel_advance(tw, 130), 1);
	assert_int_equal(moved->fires, 1);
	assert_int_equal(moved->fired_at, 130);
	/* its callback ran too: the partner, already fired, stays put, and
	 * o[2] was armed for 125, so fires on the next advance */
	assert_int_equal(o[0].fires + o[1].fires, 2);
	assert_true(timer_armed(&o[2].t));
	assert_int_equal(o[2].t.due_ms, 125);
	assert_int_equal(timer_wheel_advance(tw, 130), 1);
	assert_int_equal(o[2].fires, 2);
	assert_int_equal(tw->armed, 0);
	free(tw);
}

/* splitmix64: the same sequence on every libc, so a failure replays. */
static uint64_t rng_state;

static uint64_t rnd(void)
{
	uint64_t z = (rng_state += 0x9e3779b97f4a7c15ull);
	z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9ull;
	z = (z ^ (z >> 27)) * 0x94d049bb133111ebull;
	return z ^ (z >> 31);
}

static uint64_t rnd_below(uint64_t n)
{
	return n ? rnd() % n : 0;
}

static void test_thousands(void **state)
{
	(void)state;
	enum { N = 20000, STEP = 37 };
	struct timer_wheel *tw = new_wheel(1000, 100);
	struct owner *o = calloc(N, sizeof(*o));
	assert_non_null(o);
	owners_init(o, N, on_fire);
	rng_state = 42;
	for (int i = 0; i < N; i++)
		timer_arm(tw, &o[i].t, 1000 + rnd_below(200000));
	assert_int_equal(tw->armed, N);
	unsigned fired = 0;
	uint64_t now = 1000;
	while (tw->armed) {
		now += STEP;
		fired += timer_wheel_advance(tw, now);
	}
	assert_int_equal(fired, N);
	for (int i = 0; i < N; i++) {
		/* the first step at or after its due time */
		uint64_t d = o[i].t.due_ms;
		uint64_t want = d <= 1000 ? 1000 + STEP
					  : 1000 + (d - 1000 + STEP - 1) / STEP * STEP;
		assert_int_equal(o[i].fires, 1);
		assert_int_equal(o[i].fired_at, want);
	}
	free(o);
	free(tw);
}

/* The random run: a model of NT timers (armed or not, due when) beside the
 * wheel. Before an advance the model says which timers must fire; each
 * callback ticks its timer off, and may re-arm itself, disarm another or
 * arm another for the past, telling the model. Whatever is left unticked
 * after the advance, or fires unexpectedly, fails the test. */
enum { NT = 300 };

struct model {
	bool armed[NT];
	uint64_t due[NT];
	bool pending[NT]; /* must fire in the running advance */
	unsigned fired;
};

static struct model m;
static struct owner rt[NT];

static uint64_t random_due(uint64_t now, uint32_t g)
{
	uint64_t span = (uint64_t)TIMER_WHEEL_SLOTS * g;
	switch (rnd_below(10)) {
	case 0: /* past */
		return now - rnd_below(now < 2000 ? now + 1 : 2000);
	case 1: /* now */
		return now;
	case 2:
	case 3:
	case 4: /* within a few ticks */
		return now + 1 + rnd_below(4 * g);
	case 5:
	case 6:
	case 7: /* within a few rotations */
		return now + 1 + rnd_below(3 * span);
	case 8: /* the same slot, rotations on */
		return now + span * (1 + rnd_below(4));
	default: /* far */
		return now + rnd_below((uint64_t)1 << 36);
	}
}

static void model_arm(int i, uint64_t due)
{
	timer_arm(wheel, &rt[i].t, due);
	m.armed[i] = true;
	m.due[i] = due;
	m.pending[i] = false; /* armed during an advance: the next one */
}

static void model_disarm(int i)
{
	timer_disarm(&rt[i].t);
	m.armed[i] = false;
	m.pending[i] = false;
}

static void random_fire(struct timer *t)
{
	int i = owner_of(t)->id;
	assert_true(m.pending[i]);
	assert_true(m.armed[i]);
	assert_false(timer_armed(t));
	m.pending[i] = m.armed[i] = false;
	m.fired++;
	switch (rnd_below(10)) {
	case 0:
	case 1:
		model_arm(i, random_due(wheel->now_ms, wheel->granularity_ms));
		break;
	case 2:
		model_disarm((int)rnd_below(NT));
		break;
	case 3:
		model_arm((int)rnd_below(NT), wheel->now_ms - rnd_below(50));
		break;
	case 4: /* likely a timer still waiting to fire in this advance */
		for (int j = 0; j < NT; j++)
			if (m.pending[j]) {
				model_arm(j, wheel->now_ms + 1 + rnd_below(500));
				break;
			}
		break;
	default:
		break;
	}
}

static void check_against_model(void)
{
	unsigned armed = 0;
	uint64_t earliest = UINT64_MAX;
	for (int i = 0; i < NT; i++) {
		assert_int_equal(timer_armed(&rt[i].t), m.armed[i]);
		if (!m.armed[i])
			continue;
		armed++;
		assert_int_equal(rt[i].t.due_ms, m.due[i]);
		if (m.due[i] < earliest)
			earliest = m.due[i];
	}
	assert_int_equal(wheel->armed, armed);
	uint64_t next = timer_wheel_next_due(wheel);
	if (!armed)
		assert_int_equal(next, UINT64_MAX);
	else
		assert_true(next <= (earliest <= wheel->now_ms ? 0 : earliest - wheel->now_ms));
}

static void random_advance(uint64_t to)
{
	uint64_t now = to < wheel->now_ms ? wheel->now_ms : to;
	unsigned expect = 0;
	for (int i = 0; i < NT; i++) {
		m.pending[i] = m.armed[i] && m.due[i] <= now;
		expect += m.pending[i];
	}
	m.fired = 0;
	unsigned n = timer_wheel_advance(wheel, to);
	assert_int_equal(n, m.fired);
	assert_true(n <= expect);
	for (int i = 0; i < NT; i++)
		assert_false(m.pending[i]);
	assert_int_equal(wheel->now_ms, now);
}

static void test_random_against_model(void **state)
{
	(void)state;
	const uint32_t gran[] = { 1, 7, 100 };
	for (size_t g = 0; g < sizeof(gran) / sizeof(gran[0]); g++) {
		const uint64_t span = (uint64_t)TIMER_WHEEL_SLOTS * gran[g];
		rng_state = 20261129 + g;
		memset(&m, 0, sizeof(m));
		struct timer_wheel *tw = new_wheel(12345, gran[g]);
		owners_init(rt, NT, random_fire);
		unsigned long total = 0;
		for (int op = 0; op < 300000; op++) {
			uint64_t now = tw->now_ms;
			uint64_t r = rnd_below(100);
			if (r < 40) {
				model_arm((int)rnd_below(NT), random_due(now, gran[g]));
			} else if (r < 52) {
				model_disarm((int)rnd_below(NT));
			} else if (r < 60) {
				check_against_model();
			} else {
				uint64_t to;
				switch (rnd_below(20)) {
				case 0:
					to = now;
					break;
				case 1:
					to = now - rnd_below(100);
					break;
				case 2:
				case 3:
					to = now + rnd_below(4 * span);
					break;
				case 4:
					to = now + rnd_below((uint64_t)1 << 34);
					break;
				default:
					to = now + rnd_below(3 * gran[g] + 2);
					break;
				}
				random_advance(to);
				total += m.fired;
			}
		}
		check_against_model();
		/* the end of time fires everything still armed */
		for (int i = 0; i < 3 && tw->armed; i++) {
			random_advance(UINT64_MAX);
			total += m.fired;
		}
		for (int i = 0; i < NT; i++)
			model_disarm(i);
		check_against_model();
		assert_true(total > 10000); /* the run did fire, a lot */
		free(tw);
	}
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_fires_exactly_when_due),
		cmocka_unit_test(test_past_due_fires_on_next_advance),
		cmocka_unit_test(test_disarm_and_rearm),
		cmocka_unit_test(test_next_due_after_disarm),
		cmocka_unit_test(test_beyond_one_rotation),
		cmocka_unit_test(test_next_due_behind_a_later_rotation),
		cmocka_unit_test(test_time_jumps),
		cmocka_unit_test(test_near_uint64_max),
		cmocka_unit_test(test_zero_granularity_is_one),
		cmocka_unit_test(test_rearm_self_from_fire),
		cmocka_unit_test(test_fire_frees_other_due_timer),
		cmocka_unit_test(test_fire_rearms_other_due_timer),
		cmocka_unit_test(test_thousands),
		cmocka_unit_test(test_random_against_model),
	};
	alarm(60); /* an advance that walks every tick of a jump never returns */
	return cmocka_run_group_tests(tests, NULL, NULL);
}
