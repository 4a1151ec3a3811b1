/* Starting a streamworker: the one spawn helper of the controller process.
 *
 * The supervisor's job workers (controller/sup.c) and the API's one-shot runs
 * (`--check`, `--offsets`, `--reset`, `--errors`, api/api_worker.c) both start
 * workers here, so they get the same treatment:
 *   - posix_spawn (the controller is multi-threaded: never a bare fork);
 *   - a process group of its own (pgid = pid), so that SIGTERM and SIGKILL
 *     sent to -pid reach everything the worker started;
 *   - an empty signal mask and every signal at its default action, whatever
 *     the spawning thread blocked (the supervisor's signals are blocked in
 *     every thread) or ignored (SIGPIPE);
 *   - descriptors: only the pipes asked for, at the numbers asked for; every
 *     other descriptor of the controller is O_CLOEXEC;
 *   - the environment of common/workerenv.h; nothing secret in argv or the
 *     environment: the job goes on standard input.
 * Whoever spawns a worker reaps it (waitpid on its pid).  Internal to the
 * controller process (api/ and controller/); the worker never spawns.
 */
#ifndef SS_WORKERSPAWN_H
#define SS_WORKERSPAWN_H

#include <stdbool.h>
#include <stddef.h>
#include <sys/types.h>

#define SPAWN_PIPES_MAX 4

/* One pipe between the controller and the worker. */
struct spawn_pipe {
	int child_fd;  /* its number in the worker: 0, 1, WORKER_STATUS_FD */
	bool to_child; /* we write, the worker reads (its standard input) */
	int fd;        /* out: our end, O_CLOEXEC, blocking; the caller closes it */
};

/* Starts `path` (with `mode` as its only argument when not NULL) with the
 * pipes asked for.  Returns 0 with *pid and every pipes[i].fd set, or -1 with
 * err filled and no descriptor left open. */
int spawn_worker(const char *path, const char *mode, struct spawn_pipe *pipes, size_t npipes,
		 pid_t *pid, char *err, size_t errlen);

#endif
