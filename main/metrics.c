/* The metrics endpoint's thread: one poll loop over non-blocking sockets,
 * off every worker, so that a slow or hostile scraper costs the pooler
 * nothing but this thread's time. Each connection has a deadline for its
 * whole exchange; a request larger than REQUEST_MAX is refused; when every
 * slot is taken the oldest connection is dropped for the newcomer, so
 * silent connections cannot lock scrapers out. One request per connection
 * (Connection: close), answered from a page rendered for it. */
#include "main/metrics.h"

#include <errno.h>
#include <fcntl.h>
#include <poll.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/eventfd.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

#include "core/log.h"
#include "core/net.h"

#define REQUEST_MAX 8192 /* request line and headers */
#define MAX_CONNS   32
#define DEADLINE_MS 5000 /* to send the request and read the answer */
#define BACKLOG     64

struct mconn {
	int fd;            /* -1: free */
	uint64_t since_ms; /* accepted */
	size_t in_len;
	char in[REQUEST_MAX];
	char *out; /* head and body, once the request is read */
	size_t out_len, out_off;
};

static struct {
	struct runtime *rt;
	int listen_fd, stop_fd;
	pthread_t thread;
	bool running;
	struct mconn conns[MAX_CONNS];
} m = { .listen_fd = -1, .stop_fd = -1 };

static uint64_t mono_ms(void)
{
	struct timespec ts;
	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (uint64_t)ts.tv_sec * 1000 + (uint64_t)ts.tv_nsec / 1000000;
}

static void drop(struct mconn *c)
{
	close(c->fd);
	free(c->out);
	c->fd = -1;
	c->out = NULL;
	c->in_len = c->out_len = c->out_off = 0;
}

/* The answer to a read request (status from prom_http_request). */
static void respond(struct mconn *c, int status)
{
	struct prom_buf page = { 0 };
	if (status == 200)
		metrics_render(m.rt, &page);
	if (page.oom)
		status = 503;
	const char *body = status == 200 ? page.p
		: status == 404          ? "not found: try /metrics\n"
		: status == 405          ? "method not allowed: GET only\n"
		: status == 431          ? "request header too large\n"
		: status == 503          ? "out of memory\n"
					 : "bad request\n";
	size_t body_len = status == 200 ? page.len : strlen(body);
	char head[256];
	size_t hl = prom_http_head(head, sizeof(head), status, body_len);
	c->out = malloc(hl + body_len + 1);
	if (!c->out) {
		prom_buf_free(&page);
		drop(c);
		return;
	}
	memcpy(c->out, head, hl);
	if (body_len)
		memcpy(c->out + hl, body, body_len);
	c->out_len = hl + body_len;
	c->out_off = 0;
	prom_buf_free(&page);
}

static void on_readable(struct mconn *c)
{
	for (;;) {
		ssize_t n = recv(c->fd, c->in + c->in_len, sizeof(c->in) - c->in_len, 0);
		if (n < 0 && errno == EINTR)
			continue;
		if (n < 0 && (errno == EAGAIN || errno == EWOULDBLOCK))
			return;
		if (n <= 0) {
			drop(c); /* left before asking */
			return;
		}
		c->in_len += (size_t)n;
		int status = prom_http_request(c->in, c->in_len, sizeof(c->in));
		if (status) {
			respond(c, status);
			return;
		}
	}
}

static void on_writable(struct mconn *c)
{
	while (c->out_off < c->out_len) {
		ssize_t n = send(c->fd, c->out + c->out_off, c->out_len - c->out_off, MSG_NOSIGNAL);
		if (n < 0 && errno == EINTR)
			continue;
		if (n < 0 && (errno == EAGAIN || errno == EWOULDBLOCK))
			return;
		if (n < 0) {
			drop(c);
			return;
		}
		c->out_off += (size_t)n;
	}
	/* all sent: our half closes first, so the client reads to the end */
	shutdown(c->fd, SHUT_WR);
	drop(c);
}

static void accept_all(void)
{
	for (;;) {
		int fd = accept4(m.listen_fd, NULL, NULL, SOCK_NONBLOCK | SOCK_CLOEXEC);
		if (fd < 0)
			return; /* EAGAIN, or out of fds: the next poll tries again */
		struct mconn *slot = NULL, *oldest = NULL;
		for (int i = 0; i < MAX_CONNS && !slot; i++) {
			struct mconn *c = &m.conns[i];
			if (c->fd < 0)
				slot = c;
			else if (!oldest || c->since_ms < oldest->since_ms)
				oldest = c;
		}
		if (!slot) {
			drop(oldest); /* the longest here is the likeliest to be stuck */
			slot = oldest;
		}
		slot->fd = fd;
		slot->since_ms = mono_ms();
	}
}

static void *metrics_main(void *arg)
{
	struct pollfd pfd[MAX_CONNS + 2];
	int idx[MAX_CONNS + 2];
	for (;;) {
		uint64_t now = mono_ms();
		int n = 0, timeout = -1;
		pfd[n++] = (struct pollfd){ .fd = m.stop_fd, .events = POLLIN };
		pfd[n++] = (struct pollfd){ .fd = m.listen_fd, .events = POLLIN };
		for (int i = 0; i < MAX_CONNS; i++) {
			struct mconn *c = &m.conns[i];
			if (c->fd < 0)
				continue;
			if (now >= c->since_ms + DEADLINE_MS) {
				drop(c); /* too slow to ask, or to read the answer */
				continue;
			}
			int left = (int)(c->since_ms + DEADLINE_MS - now);
			if (timeout < 0 || left < timeout)
				timeout = left;
			idx[n] = i;
			pfd[n++] = (struct pollfd){ .fd = c->fd,
						    .events = c->out ? POLLOUT : POLLIN };
		}
		if (poll(pfd, (nfds_t)n, timeout) < 0 && errno != EINTR) {
			log_error("metrics: poll: %s", strerror(errno));
			return NULL;
		}
		if (pfd[0].revents)
			return NULL;
		for (int k = 2; k < n; k++) {
			struct mconn *c = &m.conns[idx[k]];
			if (!pfd[k].revents || c->fd < 0)
				continue;
			if (c->out)
				on_writable(c);
			else
				on_readable(c);
			if (c->fd >= 0 && c->out && pfd[k].events == POLLIN)
				on_writable(c); /* answered: most answers go out at once */
		}
		if (pfd[1].revents)
			accept_all();
	}
}

int metrics_start(struct runtime *rt, const struct cfg *cfg, char *err, size_t errlen)
{
	if (cfg->metrics_port == 0)
		return 0;
	const char *host = cfg->metrics_host[0] ? cfg->metrics_host : cfg->host;
	struct sockaddr_storage addr;
	socklen_t len;
	char why[256];
	if (net_resolve(host, cfg->metrics_port, true, &addr, &len, why, sizeof(why)) != 0) {
		snprintf(err, errlen, "metrics: %s", why);
		return -1;
	}
	/* SO_REUSEPORT: an online upgrade's new process listens beside the old */
	int fd = socket(addr.ss_family, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
	int one = 1;
	if (fd < 0 || setsockopt(fd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof(one)) != 0
	    || setsockopt(fd, SOL_SOCKET, SO_REUSEPORT, &one, sizeof(one)) != 0
	    || bind(fd, (struct sockaddr *)&addr, len) != 0 || listen(fd, BACKLOG) != 0) {
		snprintf(err, errlen, "metrics: cannot listen on %s:%d: %s", host,
			 cfg->metrics_port, strerror(errno));
		if (fd >= 0)
			close(fd);
		return -1;
	}
	m.rt = rt;
	m.listen_fd = fd;
	m.stop_fd = eventfd(0, EFD_CLOEXEC | EFD_NONBLOCK);
	for (int i = 0; i < MAX_CONNS; i++)
		m.conns[i].fd = -1;
	if (m.stop_fd < 0 || pthread_create(&m.thread, NULL, metrics_main, NULL) != 0) {
		snprintf(err, errlen, "metrics: cannot start its thread");
		metrics_stop();
		return -1;
	}
	m.running = true;
	log_info("metrics on http://%s:%d/metrics", host, cfg->metrics_port);
	return 0;
}

void metrics_stop(void)
{
	if (m.running) {
		uint64_t one = 1;
		if (write(m.stop_fd, &one, sizeof(one)) == sizeof(one))
			pthread_join(m.thread, NULL);
		m.running = false;
	}
	for (int i = 0; i < MAX_CONNS; i++)
		if (m.conns[i].fd >= 0)
			drop(&m.conns[i]);
	if (m.listen_fd >= 0)
		close(m.listen_fd);
	if (m.stop_fd >= 0)
		close(m.stop_fd);
	m.listen_fd = m.stop_fd = -1;
}
