/* The one spawn helper (common/workerspawn.h): whatever the spawning thread
 * blocked or ignored, a worker starts with nothing blocked or ignored, in a
 * process group of its own, with the pipes asked for at their numbers, none
 * of the controller's other pipe ends, and no secret in its environment.  The
 * "worker" here is a shell script that reports what it sees. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <dirent.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include "exitcodes.h"
#include "workerspawn.h"

static const char script[] =
	"#!/bin/sh\n"
	"read job\n"
	"echo \"arg=$1 job=$job\"\n"
	"echo \"pgid=$(cut -d' ' -f5 /proc/$$/stat) pid=$$\"\n"
	"echo \"token=${SS_TEST_TOKEN:-none}\"\n"
	"echo status >&3\n";

static char script_path[64];

static int setup(void **state)
{
	int fd;

	snprintf(script_path, sizeof(script_path), "/tmp/test_workerspawn_XXXXXX");
	fd = mkstemp(script_path);
	if (fd < 0 || write(fd, script, strlen(script)) != (ssize_t)strlen(script))
		return -1;
	close(fd);
	return chmod(script_path, 0700);
}

static int teardown(void **state)
{
	unlink(script_path);
	return 0;
}

static char *read_all(int fd)
{
	static char buf[4096];
	size_t len = 0;
	ssize_t n;

	while ((n = read(fd, buf + len, sizeof(buf) - 1 - len)) > 0)
		len += (size_t)n;
	buf[len] = '\0';
	return buf;
}

/* The pipe a descriptor is ("pipe:[inode]"), 0 when it is none. */
static unsigned long long pipe_inode(const char *link)
{
	unsigned long long ino = 0;

	if (sscanf(link, "pipe:[%llu]", &ino) != 1)
		return 0;
	return ino;
}

/* In the worker, our three pipes are at 0, 1 and 3 and nowhere else: the
 * ends the helper moved out of the way did not get through.  (Other
 * descriptors, the shell's script or what this test inherited, are not the
 * helper's business.) */
static void assert_only_our_pipes(pid_t pid, const struct spawn_pipe *pipes, size_t npipes)
{
	char dir[64], path[384], link[128];
	struct dirent *de;
	DIR *d;

	snprintf(dir, sizeof(dir), "/proc/%d/fd", (int)pid);
	d = opendir(dir);
	assert_non_null(d);
	while ((de = readdir(d)) != NULL) {
		int fd = atoi(de->d_name);
		ssize_t n;
		unsigned long long ino;

		if (de->d_name[0] == '.')
			continue;
		snprintf(path, sizeof(path), "%s/%s", dir, de->d_name);
		n = readlink(path, link, sizeof(link) - 1);
		if (n < 0)
			continue; /* closed meanwhile */
		link[n] = '\0';
		ino = pipe_inode(link);
		for (size_t i = 0; i < npipes; i++) {
			struct stat st;

			assert_int_equal(fstat(pipes[i].fd, &st), 0);
			if (fd == pipes[i].child_fd)
				assert_true(ino == (unsigned long long)st.st_ino);
			else
				assert_true(ino != (unsigned long long)st.st_ino);
		}
	}
	closedir(d);
}

/* The signals ignored, less glibc's two internal ones (32 and 33): its
 * posix_spawn leaves those ignored, and every glibc program sets them up
 * again at start. */
static unsigned long long ignored_signals(const char *out)
{
	const char *p = strstr(out, "SigIgn:\t");

	assert_non_null(p);
	return strtoull(p + strlen("SigIgn:\t"), NULL, 16) & ~((1ULL << 31) | (1ULL << 32));
}

static void test_worker_starts_clean(void **state)
{
	struct spawn_pipe pipes[] = {
		{ .child_fd = STDIN_FILENO, .to_child = true },
		{ .child_fd = STDOUT_FILENO, .to_child = false },
		{ .child_fd = WORKER_STATUS_FD, .to_child = false },
	};
	char err[256], want[64], *out;
	pid_t pid;
	int wstatus;

	/* The variable is read when the workers' environment is first built. */
	setenv("SS_TEST_TOKEN", "secret", 1);

	assert_int_equal(spawn_worker(script_path, "--check", pipes, 3, &pid, err, sizeof(err)), 0);
	assert_true(pid > 0);
	assert_true(pipes[0].fd > STDERR_FILENO && pipes[1].fd > STDERR_FILENO &&
		    pipes[2].fd > STDERR_FILENO);
	/* It waits for its input: what it holds now is what it was given. */
	assert_only_our_pipes(pid, pipes, 3);
	assert_int_equal(write(pipes[0].fd, "{\"job\":1}\n", 10), 10);
	close(pipes[0].fd);
	out = strdup(read_all(pipes[1].fd));
	assert_string_equal(read_all(pipes[2].fd), "status\n");
	assert_int_equal(waitpid(pid, &wstatus, 0), pid);
	assert_true(WIFEXITED(wstatus) && WEXITSTATUS(wstatus) == 0);

	assert_non_null(strstr(out, "arg=--check job={\"job\":1}\n"));
	snprintf(want, sizeof(want), "pgid=%d pid=%d\n", (int)pid, (int)pid);
	assert_non_null(strstr(out, want));
	assert_non_null(strstr(out, "token=none\n"));
	close(pipes[1].fd);
	close(pipes[2].fd);
	free(out);
}

/* cat, which leaves its signals alone, shows what it was started with. */
static void test_signals_at_their_defaults(void **state)
{
	struct spawn_pipe pipes[] = { { .child_fd = STDOUT_FILENO, .to_child = false } };
	sigset_t set;
	char err[256], *out;
	pid_t pid;
	int wstatus;

	/* What the controller's threads have: its signals blocked, SIGPIPE
	 * ignored. */
	sigemptyset(&set);
	sigaddset(&set, SIGTERM);
	sigaddset(&set, SIGCHLD);
	sigaddset(&set, SIGHUP);
	sigprocmask(SIG_BLOCK, &set, NULL);
	signal(SIGPIPE, SIG_IGN);
	signal(SIGUSR1, SIG_IGN);

	assert_int_equal(spawn_worker("/bin/cat", "/proc/self/status", pipes, 1, &pid, err,
				      sizeof(err)),
			 0);
	out = read_all(pipes[0].fd);
	close(pipes[0].fd);
	assert_int_equal(waitpid(pid, &wstatus, 0), pid);
	assert_non_null(strstr(out, "SigBlk:\t0000000000000000\n"));
	assert_true(ignored_signals(out) == 0);
	sigprocmask(SIG_UNBLOCK, &set, NULL);
	signal(SIGPIPE, SIG_DFL);
	signal(SIGUSR1, SIG_DFL);
}

static void test_missing_program_is_an_error(void **state)
{
	struct spawn_pipe pipes[] = { { .child_fd = STDIN_FILENO, .to_child = true } };
	char err[256];
	pid_t pid;

	assert_int_equal(spawn_worker("/nonexistent/streamworker", NULL, pipes, 1, &pid, err,
				      sizeof(err)),
			 -1);
	assert_int_equal(pipes[0].fd, -1);
	assert_non_null(strstr(err, "cannot start worker /nonexistent/streamworker"));
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_worker_starts_clean),
		cmocka_unit_test(test_signals_at_their_defaults),
		cmocka_unit_test(test_missing_program_is_an_error),
	};

	return cmocka_run_group_tests(tests, setup, teardown);
}
