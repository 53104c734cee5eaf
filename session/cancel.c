#include "session/cancel.h"

#include <openssl/rand.h>

#include "core/list.h"
#include "core/worker.h"
#include "session/client.h"
#include "session/handover.h"
#include "session/session.h"

int32_t cancel_new_pid(struct session_worker *sw)
{
	/* positive, unique per live client: 23 bits of counter, 8 of worker id */
	uint32_t n = ++sw->next_pid & 0x7fffff;
	if (n == 0)
		n = ++sw->next_pid & 0x7fffff;
	return (int32_t)((n << 8) | (uint32_t)sw->w->id);
}

int cancel_new_secret(struct session_worker *sw, int32_t *out)
{
	/* drawn 256 at a time: one DRBG call per 256 logins, not per login */
	if (sw->secrets_left == 0) {
		if (RAND_bytes((unsigned char *)sw->secrets, sizeof(sw->secrets)) != 1)
			return -1;
		sw->secrets_left = sizeof(sw->secrets) / sizeof(sw->secrets[0]);
	}
	*out = sw->secrets[--sw->secrets_left];
	sw->secrets[sw->secrets_left] = 0; /* a used secret does not linger */
	return 0;
}

void cancel_route(struct session_worker *sw, int32_t pid, int32_t key)
{
	struct worker *w = sw->w;
	/* modulo: a client handed over by an upgrade keeps the key the old
	 * process gave it, and the new one may have fewer workers */
	int owner = (pid & 0xff) % w->rt->n_workers;
	if (pid <= 0)
		return; /* forged: nothing to do, as PostgreSQL says nothing either */
	if (owner == w->id) {
		cancel_deliver(sw, pid, key);
		return;
	}
	worker_post(w, &w->rt->workers[owner], SESSION_MSG_CANCEL, (void *)(uintptr_t)(uint32_t)pid,
		    key);
}

void cancel_deliver(struct session_worker *sw, int32_t pid, int32_t key)
{
	for (struct list *n = sw->clients.next; n != &sw->clients; n = n->next) {
		struct client *cl = list_entry(n, struct client, link);
		/* a handed-over client's pid may equal one drawn here: the
		 * secret tells them apart */
		if (cl->key_pid != pid || cl->key_secret != key)
			continue;
		/* a client between transactions has nothing to cancel */
		if (cl->state == CLIENT_ACTIVE)
			relay_cancel(&cl->rl);
		return;
	}
	/* perhaps a client the previous process still serves (an upgrade) */
	handover_forward_cancel(sw->w, pid, key);
}
