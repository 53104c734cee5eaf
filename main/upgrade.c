#include "main/upgrade.h"

#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <spawn.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "core/log.h"

/* The environment that carries the hand-over: how many sockets (at fds 3,
 * 4, ...), the fd of the pipe the new process answers on (right after
 * them), and the Unix socket file that comes with them. */
#define ENV_FDS   "PGCRAB_UPGRADE_FDS"
#define ENV_READY "PGCRAB_UPGRADE_READY"
#define ENV_UNIX  "PGCRAB_UPGRADE_UNIX"

static char self_path[PATH_MAX];
static char **self_argv;
static int ready_fd = -1;
static char inherited_unix[PATH_MAX];

void upgrade_init(int argc, char **argv)
{
	(void)argc;
	self_argv = argv;
	/* the path, not /proc/self/exe itself: after a package upgrade that
	 * names the old, deleted file, and the new one is what must start */
	ssize_t n = readlink("/proc/self/exe", self_path, sizeof(self_path) - 1);
	self_path[n > 0 ? n : 0] = '\0';
	char *deleted = strstr(self_path, " (deleted)");
	if (deleted && deleted[sizeof(" (deleted)") - 1] == '\0')
		*deleted = '\0';
}

static bool is_handover_var(const char *e)
{
	static const char *const names[] = { ENV_FDS "=",   ENV_READY "=", ENV_UNIX "=",
					     "LISTEN_FDS=", "LISTEN_PID=", "LISTEN_FDNAMES=" };
	for (size_t i = 0; i < sizeof(names) / sizeof(names[0]); i++)
		if (strncmp(e, names[i], strlen(names[i])) == 0)
			return true;
	return false;
}

int upgrade_start(const int *fds, int n, const char *unix_path, pid_t *pid)
{
	if (!self_path[0] || !self_argv) {
		log_error("upgrade: the path of this binary is unknown");
		return -1;
	}
	int pipefd[2];
	if (pipe2(pipefd, O_CLOEXEC) != 0) {
		log_error("upgrade: pipe: %s", strerror(errno));
		return -1;
	}
	/* out of the way first, so that placing them at 3, 4, ... overwrites
	 * none that is still to be placed */
	int high[n + 1];
	for (int i = 0; i <= n; i++)
		high[i] = fcntl(i < n ? fds[i] : pipefd[1], F_DUPFD_CLOEXEC, 64);
	size_t n_env = 0;
	for (char **e = environ; *e; e++)
		n_env++;
	char **envp = calloc(n_env + 4, sizeof(char *));
	/* a socket path fits 108 bytes (sun_path) */
	char fds_var[48], ready_var[48], unix_var[sizeof(ENV_UNIX "=") + 120];
	snprintf(fds_var, sizeof(fds_var), ENV_FDS "=%d", n);
	snprintf(ready_var, sizeof(ready_var), ENV_READY "=%d", 3 + n);
	snprintf(unix_var, sizeof(unix_var), ENV_UNIX "=%.119s", unix_path ? unix_path : "");
	int rc = -1;
	posix_spawn_file_actions_t fa;
	posix_spawn_file_actions_init(&fa);
	bool ok = envp != NULL;
	for (int i = 0; i <= n; i++) {
		ok = ok && high[i] >= 0;
		if (ok)
			ok = posix_spawn_file_actions_adddup2(&fa, high[i], 3 + i) == 0;
	}
	if (ok) {
		size_t k = 0;
		for (char **e = environ; *e; e++)
			if (!is_handover_var(*e))
				envp[k++] = *e;
		envp[k++] = fds_var;
		envp[k++] = ready_var;
		envp[k++] = unix_var;
		int err = posix_spawn(pid, self_path, &fa, NULL, self_argv, envp);
		if (err == 0)
			rc = pipefd[0];
		else
			log_error("upgrade: cannot start %s: %s", self_path, strerror(err));
	} else {
		log_error("upgrade: cannot prepare the sockets for the new process");
	}
	posix_spawn_file_actions_destroy(&fa);
	free(envp);
	for (int i = 0; i <= n; i++)
		if (high[i] >= 0)
			close(high[i]);
	close(pipefd[1]);
	if (rc < 0)
		close(pipefd[0]);
	return rc;
}

int upgrade_inherited(const char **unix_path)
{
	*unix_path = NULL;
	const char *fds = getenv(ENV_FDS), *ready = getenv(ENV_READY), *un = getenv(ENV_UNIX);
	int n = fds ? atoi(fds) : 0;
	if (n > 0 && ready) {
		ready_fd = atoi(ready);
		(void)fcntl(ready_fd, F_SETFD, FD_CLOEXEC);
		if (un && *un) {
			snprintf(inherited_unix, sizeof(inherited_unix), "%s", un);
			*unix_path = inherited_unix;
		}
	} else {
		n = 0;
	}
	unsetenv(ENV_FDS);
	unsetenv(ENV_READY);
	unsetenv(ENV_UNIX);
	return n;
}

void upgrade_tell_ready(void)
{
	if (ready_fd < 0)
		return;
	ssize_t w = write(ready_fd, "1", 1);
	(void)w; /* the old process may be gone: nothing to tell then */
	close(ready_fd);
	ready_fd = -1;
}
