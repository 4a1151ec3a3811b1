#include "workerspawn.h"

#include <errno.h>
#include <fcntl.h>
#include <signal.h>
#include <spawn.h>
#include <stdio.h>
#include <string.h>
#include <unistd.h>

#include "workerenv.h"

int spawn_worker(const char *path, const char *mode, struct spawn_pipe *pipes, size_t npipes,
		 pid_t *pid, char *err, size_t errlen)
{
	posix_spawn_file_actions_t fa;
	posix_spawnattr_t attr;
	sigset_t none, all;
	int theirs[SPAWN_PIPES_MAX];
	char *argv[] = { (char *)path, (char *)mode, NULL };
	int high = 0, rc = -1, e;
	size_t i;

	*pid = 0;
	for (i = 0; i < npipes; i++)
		pipes[i].fd = theirs[i] = -1;
	if (npipes > SPAWN_PIPES_MAX) {
		snprintf(err, errlen, "cannot start %s: too many pipes", path);
		return -1;
	}
	for (i = 0; i < npipes; i++)
		if (pipes[i].child_fd > high)
			high = pipes[i].child_fd;
	for (i = 0; i < npipes; i++) {
		int p[2], moved;

		if (pipe2(p, O_CLOEXEC) < 0) {
			snprintf(err, errlen, "cannot create pipes: %s", strerror(errno));
			goto out;
		}
		pipes[i].fd = pipes[i].to_child ? p[1] : p[0];
		theirs[i] = pipes[i].to_child ? p[0] : p[1];
		/* The worker's end must sit above every number it is dup2'd onto:
		 * a dup2 onto itself would leave FD_CLOEXEC set, and one onto
		 * another pipe's end would close that end first. */
		moved = fcntl(theirs[i], F_DUPFD_CLOEXEC, high + 1);
		close(theirs[i]);
		theirs[i] = moved;
		if (moved < 0) {
			snprintf(err, errlen, "cannot move pipe descriptors: %s", strerror(errno));
			goto out;
		}
	}
	posix_spawn_file_actions_init(&fa);
	for (i = 0; i < npipes; i++)
		posix_spawn_file_actions_adddup2(&fa, theirs[i], pipes[i].child_fd);
	posix_spawnattr_init(&attr);
	sigemptyset(&none);
	sigfillset(&all);
	posix_spawnattr_setsigmask(&attr, &none);
	posix_spawnattr_setsigdefault(&attr, &all);
	posix_spawnattr_setpgroup(&attr, 0);
	posix_spawnattr_setflags(&attr,
				 POSIX_SPAWN_SETPGROUP | POSIX_SPAWN_SETSIGMASK | POSIX_SPAWN_SETSIGDEF);
	e = posix_spawn(pid, path, &fa, &attr, argv, worker_environ());
	posix_spawn_file_actions_destroy(&fa);
	posix_spawnattr_destroy(&attr);
	if (e != 0) {
		*pid = 0;
		snprintf(err, errlen, "cannot start worker %s%s%s: %s", path, mode ? " " : "",
			 mode ? mode : "", strerror(e));
		goto out;
	}
	rc = 0;
out:
	for (i = 0; i < npipes; i++) {
		if (theirs[i] >= 0)
			close(theirs[i]);
		if (rc < 0 && pipes[i].fd >= 0) {
			close(pipes[i].fd);
			pipes[i].fd = -1;
		}
	}
	return rc;
}
