/* Online upgrade (SIGUSR2): this process starts the binary at its own path
 * again, with the same arguments, and hands it the listening sockets; once
 * the new process says it serves, this one stops accepting and drains.
 * Connections queued on the sockets meanwhile are accepted by whichever
 * process comes first: none is refused. */
#ifndef PGCRAB_UPGRADE_H
#define PGCRAB_UPGRADE_H

#include <stdbool.h>
#include <sys/types.h>

/* Remembers how this process was started (call first thing in main). */
void upgrade_init(int argc, char **argv);

/* Starts the new process with fds as its listening sockets (unix_path: the
 * socket file this process made, which the new one will own, or NULL).
 * Returns a descriptor that yields one byte once the new process serves,
 * or end of file if it exits first; *pid gets its pid. -1 if it could not
 * be started (logged). */
int upgrade_start(const int *fds, int n, const char *unix_path, pid_t *pid);

/* In the new process: the sockets handed over, if any: their count (0:
 * this is no upgrade) and *unix_path the socket file now ours (or NULL).
 * Reads and clears the environment that carried them. */
int upgrade_inherited(const char **unix_path);

/* In the new process, once it serves: tells the old one to stop accepting. */
void upgrade_tell_ready(void);

#endif
