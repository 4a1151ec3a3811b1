#include "sup.h"

#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <poll.h>
#include <signal.h>
#include <spawn.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/eventfd.h>
#include <sys/signalfd.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "exitcodes.h"
#include "log.h"
#include "workerenv.h"
#include "proto.h"
#include "runtime.h"


#define SUP_TICK_MS 500
#define SUP_MIN_BACKOFF_MS 1000
#define SUP_MAX_BACKOFF_MS (5 * 60 * 1000)
/* A worker that has run this long (or committed a batch) is healthy: its next
 * crash starts the backoff from the beginning again. */
#define SUP_HEALTHY_MS 30000
/* This many crashes in a row without a healthy run: failed. */
#define SUP_CRASH_LOOP 10
#define SUP_MAX_FDS 1024
/* How often the in-memory figures of deleted jobs are dropped. */
#define SUP_RUNTIME_PRUNE_MS 60000

enum slot_phase {
	SLOT_RUNNING,  /* a worker process exists */
	SLOT_BACKOFF,  /* no process; restart at restart_at */
};

struct slot {
	int64_t job_id;
	char name[128];
	enum slot_phase phase;
	pid_t pid;
	int status_fd; /* -1 once EOF was read */
	char line[PROTO_LINE_MAX];
	size_t linelen;
	bool line_overflow;
	bool stop_sent;
	int64_t kill_at;   /* monotonic ms; 0 = none */
	int64_t started;   /* monotonic ms of the spawn */
	int64_t restart_at;
	bool batch_seen;   /* this worker reported a batch */
	int retries;       /* WORKER_EXIT_RETRY exits in a row, without a batch between */
	int crashes;       /* crashes in a row, without a healthy run between */
	char last_error[PROTO_LINE_MAX];
	struct slot *next;
};

struct sup {
	struct store *st;
	char *worker_path;
	int sigfd;
	int wakefd;
	bool shutting_down;
	struct slot *slots;
	int64_t runtime_pruned_at; /* monotonic ms */
};

static int64_t sup_now_ms(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

static void sup_signal_set(sigset_t *set)
{
	sigemptyset(set);
	sigaddset(set, SIGCHLD);
	sigaddset(set, SIGTERM);
	sigaddset(set, SIGINT);
	sigaddset(set, SIGHUP);
}

int sup_block_signals(char *err, size_t errlen)
{
	sigset_t set;
	int rc;

	/* Writes to a worker whose pipe closed must fail with EPIPE, not kill us. */
	signal(SIGPIPE, SIG_IGN);
	sup_signal_set(&set);
	rc = pthread_sigmask(SIG_BLOCK, &set, NULL);
	if (rc != 0) {
		snprintf(err, errlen, "cannot block signals: %s", strerror(rc));
		return -1;
	}
	return 0;
}

int sup_new(struct store *st, const char *worker_path, struct sup **out, char *err, size_t errlen)
{
	struct sup *sp;
	sigset_t set;

	*out = NULL;
	sp = calloc(1, sizeof(*sp));
	if (sp == NULL) {
		snprintf(err, errlen, "out of memory");
		return -1;
	}
	sp->st = st;
	sp->sigfd = -1;
	sp->wakefd = -1;
	sp->worker_path = strdup(worker_path);
	sup_signal_set(&set);
	sp->sigfd = signalfd(-1, &set, SFD_CLOEXEC | SFD_NONBLOCK);
	sp->wakefd = eventfd(0, EFD_CLOEXEC | EFD_NONBLOCK);
	if (sp->worker_path == NULL || sp->sigfd < 0 || sp->wakefd < 0) {
		snprintf(err, errlen, "cannot set up the supervisor: %s", strerror(errno));
		sup_free(sp);
		return -1;
	}
	*out = sp;
	return 0;
}

static void slot_free(struct slot *sl)
{
	if (sl == NULL)
		return;
	if (sl->status_fd >= 0)
		close(sl->status_fd);
	free(sl);
}

void sup_free(struct sup *sp)
{
	struct slot *sl, *next;

	if (sp == NULL)
		return;
	for (sl = sp->slots; sl != NULL; sl = next) {
		next = sl->next;
		slot_free(sl);
	}
	if (sp->sigfd >= 0)
		close(sp->sigfd);
	if (sp->wakefd >= 0)
		close(sp->wakefd);
	free(sp->worker_path);
	free(sp);
}

void sup_wake(void *arg)
{
	struct sup *sp = arg;
	uint64_t one = 1;

	if (write(sp->wakefd, &one, sizeof(one)) < 0) {
		/* EAGAIN: the counter is already non-zero, a wake-up is pending. */
	}
}

static struct slot *sup_slot_find(struct sup *sp, int64_t job_id)
{
	struct slot *sl;

	for (sl = sp->slots; sl != NULL; sl = sl->next)
		if (sl->job_id == job_id)
			return sl;
	return NULL;
}

static void sup_slot_remove(struct sup *sp, struct slot *victim)
{
	struct slot **pp;

	for (pp = &sp->slots; *pp != NULL; pp = &(*pp)->next) {
		if (*pp == victim) {
			*pp = victim->next;
			slot_free(victim);
			return;
		}
	}
}

/* Moves fd to a number above the standard ones and the worker's status fd, so
 * that the spawn's dup2 onto 0 and WORKER_STATUS_FD never targets itself (a
 * dup2 onto the same number would leave FD_CLOEXEC set). */
static int sup_fd_high(int fd)
{
	int high = fcntl(fd, F_DUPFD_CLOEXEC, 10);

	close(fd);
	return high;
}

/* Writes all of buf to fd (a pipe the worker is reading). */
static int sup_write_all(int fd, const char *buf, size_t len)
{
	while (len > 0) {
		ssize_t n = write(fd, buf, len);
		if (n < 0) {
			if (errno == EINTR)
				continue;
			return -1;
		}
		buf += n;
		len -= (size_t)n;
	}
	return 0;
}

/* Starts a worker for the slot's job.  Returns 0, or -1 with err filled; a
 * job that no longer validates is reported as STORE_INVALID. */
static int sup_slot_spawn(struct sup *sp, struct slot *sl, char *err, size_t errlen)
{
	posix_spawn_file_actions_t fa;
	posix_spawnattr_t attr;
	sigset_t none, defaults;
	int cfg[2] = { -1, -1 }, status[2] = { -1, -1 };
	char *input = NULL;
	char *argv[] = { sp->worker_path, NULL };
	bool fa_init = false, attr_init = false;
	pid_t pid;
	int rc = -1, e;

	input = store_job_worker_input(sp->st, sl->job_id, err, errlen);
	if (input == NULL)
		return STORE_INVALID;
	if (pipe2(cfg, O_CLOEXEC) < 0 || pipe2(status, O_CLOEXEC) < 0) {
		snprintf(err, errlen, "cannot create pipes: %s", strerror(errno));
		goto out;
	}
	cfg[0] = sup_fd_high(cfg[0]);
	status[1] = sup_fd_high(status[1]);
	if (cfg[0] < 0 || status[1] < 0) {
		snprintf(err, errlen, "cannot move pipe descriptors: %s", strerror(errno));
		goto out;
	}
	posix_spawn_file_actions_init(&fa);
	fa_init = true;
	posix_spawn_file_actions_adddup2(&fa, cfg[0], 0);
	posix_spawn_file_actions_adddup2(&fa, status[1], WORKER_STATUS_FD);

	posix_spawnattr_init(&attr);
	attr_init = true;
	/* Own process group, so that SIGKILL reaches anything the worker started;
	 * default signal mask and handlers, since ours are blocked or ignored. */
	sigemptyset(&none);
	sigemptyset(&defaults);
	sigaddset(&defaults, SIGPIPE);
	sigaddset(&defaults, SIGTERM);
	sigaddset(&defaults, SIGINT);
	sigaddset(&defaults, SIGHUP);
	sigaddset(&defaults, SIGCHLD);
	posix_spawnattr_setsigmask(&attr, &none);
	posix_spawnattr_setsigdefault(&attr, &defaults);
	posix_spawnattr_setpgroup(&attr, 0);
	posix_spawnattr_setflags(&attr,
				 POSIX_SPAWN_SETPGROUP | POSIX_SPAWN_SETSIGMASK | POSIX_SPAWN_SETSIGDEF);

	e = posix_spawn(&pid, sp->worker_path, &fa, &attr, argv, worker_environ());
	if (e != 0) {
		snprintf(err, errlen, "cannot start worker %s: %s", sp->worker_path, strerror(e));
		goto out;
	}
	close(cfg[0]);
	cfg[0] = -1;
	close(status[1]);
	status[1] = -1;
	/* The worker reads its standard input to EOF before anything else.  If it
	 * died at once the write fails with EPIPE and the exit is reaped as usual. */
	if (sup_write_all(cfg[1], input, strlen(input)) < 0)
		log_job(LOG_WARN, sl->job_id, "job %s: could not hand the job to worker %d: %s", sl->name, (int)pid,
			 strerror(errno));
	fcntl(status[0], F_SETFL, O_NONBLOCK);

	sl->phase = SLOT_RUNNING;
	sl->pid = pid;
	sl->status_fd = status[0];
	status[0] = -1;
	sl->linelen = 0;
	sl->line_overflow = false;
	sl->stop_sent = false;
	sl->kill_at = 0;
	sl->started = sup_now_ms();
	sl->batch_seen = false;
	sl->last_error[0] = '\0';
	runtime_job_worker_started(sl->job_id);
	rc = 0;
out:
	if (fa_init)
		posix_spawn_file_actions_destroy(&fa);
	if (attr_init)
		posix_spawnattr_destroy(&attr);
	for (int i = 0; i < 2; i++) {
		if (cfg[i] >= 0)
			close(cfg[i]);
		if (status[i] >= 0)
			close(status[i]);
	}
	if (input != NULL) {
		/* The job text holds the database password. */
		explicit_bzero(input, strlen(input));
		free(input);
	}
	return rc;
}

static void sup_job_start(struct sup *sp, const struct store_job_brief *job, struct slot *sl)
{
	char err[512];
	int rc;

	if (sl == NULL) {
		sl = calloc(1, sizeof(*sl));
		if (sl == NULL) {
			log_job(LOG_ERROR, job->id, "job %s: out of memory", job->name);
			return;
		}
		sl->job_id = job->id;
		sl->status_fd = -1;
		sl->next = sp->slots;
		sp->slots = sl;
	}
	snprintf(sl->name, sizeof(sl->name), "%s", job->name);
	rc = sup_slot_spawn(sp, sl, err, sizeof(err));
	if (rc == STORE_INVALID || rc == STORE_NOT_FOUND) {
		log_job(LOG_ERROR, job->id, "job %s: cannot start: %s", job->name, err);
		store_job_set_state(sp->st, job->id, "failed", 0, err);
		sup_slot_remove(sp, sl);
		return;
	}
	if (rc < 0) {
		/* Could not fork or exec: retry like a crash. */
		log_job(LOG_ERROR, job->id, "job %s: %s", job->name, err);
		sl->phase = SLOT_BACKOFF;
		sl->pid = 0;
		sl->restart_at = sup_now_ms() + SUP_MIN_BACKOFF_MS;
		store_job_set_state(sp->st, job->id, "retrying", 0, err);
		return;
	}
	log_job(LOG_INFO, job->id, "job %s: worker %d started", job->name, (int)sl->pid);
	store_job_set_state(sp->st, job->id, "starting", (int)sl->pid, NULL);
}

static void sup_slot_handle_line(struct sup *sp, struct slot *sl, const char *line, size_t len)
{
	struct proto_msg msg;

	if (proto_parse_line(line, len, &msg) < 0) {
		log_job(LOG_WARN, sl->job_id, "job %s: unreadable status line from worker %d", sl->name, (int)sl->pid);
		return;
	}
	switch (msg.type) {
	case PROTO_READY:
		if (!sl->stop_sent)
			store_job_set_state(sp->st, sl->job_id, "running", (int)sl->pid, "");
		break;
	case PROTO_BATCH:
		store_job_add_counters(sp->st, sl->job_id, msg.messages, msg.rows, msg.updated,
				       msg.rejected);
		runtime_job_batch(sl->job_id, msg.messages, msg.rows, msg.duration_ms);
		sl->batch_seen = true;
		break;
	case PROTO_ERROR:
		snprintf(sl->last_error, sizeof(sl->last_error), "%s", msg.message);
		log_job(LOG_WARN, sl->job_id, "job %s: worker reports %s error: %s", sl->name, msg.err_class, msg.message);
		break;
	case PROTO_LAG:
		runtime_job_lag(sl->job_id, msg.lag_total, msg.lag, msg.nlag);
		break;
	case PROTO_UNKNOWN:
		break;
	}
}

/* Reads what the worker wrote; closes the pipe at EOF. */
static void sup_slot_read(struct sup *sp, struct slot *sl)
{
	char buf[8192];

	while (sl->status_fd >= 0) {
		ssize_t n = read(sl->status_fd, buf, sizeof(buf));
		if (n < 0 && errno == EINTR)
			continue;
		if (n < 0 && errno == EAGAIN)
			return;
		if (n <= 0) {
			close(sl->status_fd);
			sl->status_fd = -1;
			return;
		}
		for (ssize_t i = 0; i < n; i++) {
			if (buf[i] == '\n') {
				if (!sl->line_overflow)
					sup_slot_handle_line(sp, sl, sl->line, sl->linelen);
				sl->linelen = 0;
				sl->line_overflow = false;
			} else if (sl->linelen < sizeof(sl->line) - 1) {
				sl->line[sl->linelen++] = buf[i];
			} else {
				sl->line_overflow = true;
			}
		}
	}
}

/* How the worker ended, for last_exit: "exit code 1 (retriable failure)",
 * "signal 9 (Killed)". */
static void sup_describe_exit(int wstatus, char *buf, size_t buflen)
{
	const char *what;

	if (WIFSIGNALED(wstatus)) {
		int sig = WTERMSIG(wstatus);
		snprintf(buf, buflen, "signal %d (%s)", sig, strsignal(sig));
		return;
	}
	switch (WEXITSTATUS(wstatus)) {
	case WORKER_EXIT_STOPPED:
		what = "stopped";
		break;
	case WORKER_EXIT_RETRY:
		what = "retriable failure";
		break;
	case WORKER_EXIT_CONFIG:
		what = "configuration error";
		break;
	case WORKER_EXIT_DATA:
		what = "data error";
		break;
	default:
		what = "unexpected exit";
		break;
	}
	snprintf(buf, buflen, "exit code %d (%s)", WEXITSTATUS(wstatus), what);
}

static int64_t sup_backoff_ms(int crashes, int64_t retry_interval_ms)
{
	int64_t delay = retry_interval_ms > SUP_MIN_BACKOFF_MS ? retry_interval_ms : SUP_MIN_BACKOFF_MS;

	for (int i = 1; i < crashes && delay < SUP_MAX_BACKOFF_MS; i++)
		delay *= 2;
	return delay < SUP_MAX_BACKOFF_MS ? delay : SUP_MAX_BACKOFF_MS;
}


static void sup_slot_fail(struct sup *sp, struct slot *sl, const char *why)
{
	log_job(LOG_ERROR, sl->job_id, "job %s: failed: %s", sl->name, why);
	store_job_set_state(sp->st, sl->job_id, "failed", 0, why);
	sup_slot_remove(sp, sl);
}

static void sup_slot_exited(struct sup *sp, struct slot *sl, int wstatus)
{
	char how[96], why[PROTO_LINE_MAX + 128];
	int64_t retry_ms, max_retries, delay, now = sup_now_ms();
	bool requested = sl->stop_sent || sp->shutting_down;
	int code = WIFEXITED(wstatus) ? WEXITSTATUS(wstatus) : -1;

	sup_slot_read(sp, sl); /* the last lines, the error among them */
	sup_describe_exit(wstatus, how, sizeof(how));
	if (sl->last_error[0] != '\0')
		snprintf(why, sizeof(why), "%s", sl->last_error);
	else
		snprintf(why, sizeof(why), "worker ended with %s", how);
	log_job(LOG_INFO, sl->job_id, "job %s: worker %d ended with %s%s%s", sl->name, (int)sl->pid, how,
		 sl->last_error[0] ? ": " : "", sl->last_error);
	store_job_set_exit(sp->st, sl->job_id, how);
	runtime_job_worker_ended(sl->job_id);
	sl->pid = 0;

	if (requested && (code == WORKER_EXIT_STOPPED || WIFSIGNALED(wstatus))) {
		store_job_set_state(sp->st, sl->job_id, "stopped", 0, NULL);
		sup_slot_remove(sp, sl);
		return;
	}
	if (code == WORKER_EXIT_CONFIG || code == WORKER_EXIT_DATA) {
		sup_slot_fail(sp, sl, why);
		return;
	}
	if (requested) {
		/* Asked to stop, but it failed on the way out: stopped all the same. */
		store_job_set_state(sp->st, sl->job_id, "stopped", 0, why);
		sup_slot_remove(sp, sl);
		return;
	}

	store_job_schedule(sp->st, sl->job_id, &retry_ms, &max_retries);
	if (sl->batch_seen)
		sl->retries = 0; /* it made progress since the last outage */
	if (sl->batch_seen || now - sl->started >= SUP_HEALTHY_MS)
		sl->crashes = 0;
	if (code == WORKER_EXIT_RETRY) {
		/* An outage (database or brokers): the same interval every time. */
		sl->retries++;
		if (max_retries > 0 && sl->retries > max_retries) {
			char msg[sizeof(why) + 96];
			snprintf(msg, sizeof(msg),
				 "gave up after %lld retries (SCHEDULE.MAX_RETRIES): %s",
				 (long long)max_retries, why);
			sup_slot_fail(sp, sl, msg);
			return;
		}
		delay = retry_ms > SUP_MIN_BACKOFF_MS ? retry_ms : SUP_MIN_BACKOFF_MS;
	} else {
		/* A crash: a signal we did not send, or an exit code outside the
		 * contract (0 included, since nobody asked it to stop). */
		sl->crashes++;
		if (sl->crashes >= SUP_CRASH_LOOP) {
			char msg[sizeof(why) + 96];
			snprintf(msg, sizeof(msg), "crash loop: %d crashes in a row; last: %s",
				 sl->crashes, why);
			sup_slot_fail(sp, sl, msg);
			return;
		}
		delay = sup_backoff_ms(sl->crashes, retry_ms);
	}
	sl->phase = SLOT_BACKOFF;
	sl->restart_at = now + delay;
	store_job_inc_restarts(sp->st, sl->job_id);
	store_job_set_state(sp->st, sl->job_id, "retrying", 0, why);
	log_job(LOG_INFO, sl->job_id, "job %s: restarting in %lld ms", sl->name, (long long)delay);
}

/* Reaps our own workers only: the API runs short-lived `streamworker --check`
 * processes from its threads and waits for them itself, so waitpid(-1) here
 * would steal their exit statuses. */
static void sup_reap(struct sup *sp)
{
	struct slot *sl, *next;

	for (sl = sp->slots; sl != NULL; sl = next) {
		int wstatus;

		next = sl->next; /* sup_slot_exited may free sl */
		if (sl->phase != SLOT_RUNNING || sl->pid <= 0)
			continue;
		if (waitpid(sl->pid, &wstatus, WNOHANG) == sl->pid)
			sup_slot_exited(sp, sl, wstatus);
	}
}

static void sup_slot_stop(struct sup *sp, struct slot *sl)
{
	if (sl->phase != SLOT_RUNNING || sl->stop_sent)
		return;
	log_job(LOG_INFO, sl->job_id, "job %s: stopping worker %d", sl->name, (int)sl->pid);
	kill(sl->pid, SIGTERM);
	sl->stop_sent = true;
	sl->kill_at = sup_now_ms() + SUP_STOP_DEADLINE_MS;
	store_job_set_state(sp->st, sl->job_id, "stopping", (int)sl->pid, NULL);
}

/* Drops the runtime figures of deleted jobs (jobs[] is ordered by id). */
static void sup_runtime_prune(const struct store_job_brief *jobs, size_t n)
{
	int64_t *ids = malloc((n > 0 ? n : 1) * sizeof(*ids));

	if (ids == NULL)
		return;
	for (size_t i = 0; i < n; i++)
		ids[i] = jobs[i].id;
	runtime_retain(ids, n);
	free(ids);
}

/* Makes what runs match what the store says should run. */
static void sup_reconcile(struct sup *sp)
{
	struct store_job_brief *jobs = NULL;
	size_t n = 0;
	char err[256];
	int64_t now = sup_now_ms();
	struct slot *sl, *next;

	if (store_jobs_brief(sp->st, &jobs, &n, err, sizeof(err)) < 0) {
		log_error("supervisor: cannot read jobs: %s", err);
		return;
	}
	for (size_t i = 0; i < n; i++) {
		const struct store_job_brief *job = &jobs[i];
		bool want = strcmp(job->desired, "running") == 0 && !sp->shutting_down;

		sl = sup_slot_find(sp, job->id);
		if (want) {
			if (sl == NULL && strcmp(job->state, "failed") != 0)
				sup_job_start(sp, job, NULL);
			else if (sl != NULL && sl->phase == SLOT_BACKOFF && now >= sl->restart_at)
				sup_job_start(sp, job, sl);
		} else if (sl != NULL && sl->phase == SLOT_RUNNING) {
			sup_slot_stop(sp, sl);
		} else if (sl != NULL) {
			store_job_set_state(sp->st, job->id, "stopped", 0, NULL);
			sup_slot_remove(sp, sl);
		} else if (strcmp(job->state, "stopped") != 0 && strcmp(job->state, "failed") != 0) {
			store_job_set_state(sp->st, job->id, "stopped", 0, NULL);
		}
	}
	/* Slots of jobs that are gone from the store. */
	for (sl = sp->slots; sl != NULL; sl = next) {
		bool found = false;

		next = sl->next;
		for (size_t i = 0; i < n && !found; i++)
			found = jobs[i].id == sl->job_id;
		if (!found && sl->phase == SLOT_RUNNING)
			sup_slot_stop(sp, sl);
		else if (!found)
			sup_slot_remove(sp, sl);
	}
	if (now - sp->runtime_pruned_at >= SUP_RUNTIME_PRUNE_MS) {
		sup_runtime_prune(jobs, n);
		sp->runtime_pruned_at = now;
	}
	/* Workers that ignored SIGTERM past the deadline. */
	for (sl = sp->slots; sl != NULL; sl = sl->next) {
		if (sl->phase == SLOT_RUNNING && sl->kill_at != 0 && now >= sl->kill_at) {
			log_job(LOG_WARN, sl->job_id, "job %s: worker %d did not stop within %d ms; killing it", sl->name,
				 (int)sl->pid, SUP_STOP_DEADLINE_MS);
			kill(-sl->pid, SIGKILL);
			kill(sl->pid, SIGKILL);
			sl->kill_at = 0;
		}
	}
	free(jobs);
}

/* Is pid a streamworker left over from a previous controller? */
static bool sup_pid_is_worker(pid_t pid)
{
	char path[64], exe[PATH_MAX];
	ssize_t n;
	const char *base;

	snprintf(path, sizeof(path), "/proc/%d/exe", (int)pid);
	n = readlink(path, exe, sizeof(exe) - 1);
	if (n <= 0)
		return false;
	exe[n] = '\0';
	base = strrchr(exe, '/');
	base = base ? base + 1 : exe;
	return strncmp(base, "streamworker", strlen("streamworker")) == 0;
}

/* A previous controller that died leaves workers that exit by themselves
 * (they watch their parent), but one may still be finishing its batch.  Wait
 * for those, so that two workers never run the same job. */
static void sup_adopt_leftovers(struct sup *sp)
{
	struct store_job_brief *jobs = NULL;
	size_t n = 0;
	char err[256];

	if (store_jobs_brief(sp->st, &jobs, &n, err, sizeof(err)) < 0)
		return;
	for (size_t i = 0; i < n; i++) {
		int pid = 0;

		if (store_job_get_pid(sp->st, jobs[i].id, &pid) < 0 || pid <= 0)
			continue;
		if (sup_pid_is_worker(pid)) {
			int64_t deadline = sup_now_ms() + SUP_STOP_DEADLINE_MS;

			log_info("job %s: waiting for worker %d of the previous controller to exit",
				 jobs[i].name, pid);
			kill(pid, SIGTERM);
			while (sup_pid_is_worker(pid) && sup_now_ms() < deadline)
				usleep(50 * 1000);
			if (sup_pid_is_worker(pid)) {
				kill(-pid, SIGKILL);
				kill(pid, SIGKILL);
			}
		}
		if (strcmp(jobs[i].state, "failed") != 0)
			store_job_set_state(sp->st, jobs[i].id,
					    strcmp(jobs[i].desired, "running") == 0 ? "starting"
										    : "stopped",
					    0, NULL);
	}
	free(jobs);
}

static bool sup_any_running(struct sup *sp)
{
	for (struct slot *sl = sp->slots; sl != NULL; sl = sl->next)
		if (sl->phase == SLOT_RUNNING)
			return true;
	return false;
}

static void sup_drain_fd(int fd, size_t size)
{
	char buf[sizeof(struct signalfd_siginfo)];

	while (read(fd, buf, size < sizeof(buf) ? size : sizeof(buf)) > 0) {
	}
}

int sup_run(struct sup *sp)
{
	struct pollfd pfd[SUP_MAX_FDS];
	struct slot *map[SUP_MAX_FDS];
	int64_t shutdown_deadline = 0;

	sup_adopt_leftovers(sp);
	sup_reconcile(sp);
	for (;;) {
		nfds_t nfds = 2;
		int timeout = SUP_TICK_MS;
		struct signalfd_siginfo si;

		pfd[0] = (struct pollfd){ .fd = sp->sigfd, .events = POLLIN };
		pfd[1] = (struct pollfd){ .fd = sp->wakefd, .events = POLLIN };
		for (struct slot *sl = sp->slots; sl != NULL && nfds < SUP_MAX_FDS; sl = sl->next) {
			if (sl->status_fd < 0)
				continue;
			map[nfds] = sl;
			pfd[nfds++] = (struct pollfd){ .fd = sl->status_fd, .events = POLLIN };
		}
		if (poll(pfd, nfds, timeout) < 0 && errno != EINTR) {
			log_error("supervisor: poll: %s", strerror(errno));
			return -1;
		}
		for (nfds_t i = 2; i < nfds; i++)
			if (pfd[i].revents != 0)
				sup_slot_read(sp, map[i]);
		while (read(sp->sigfd, &si, sizeof(si)) == (ssize_t)sizeof(si)) {
			if ((si.ssi_signo == SIGTERM || si.ssi_signo == SIGINT) && !sp->shutting_down) {
				log_info("controller: signal %u received, stopping every worker",
					 si.ssi_signo);
				sp->shutting_down = true;
				shutdown_deadline = sup_now_ms() + SUP_STOP_DEADLINE_MS + 2000;
			}
		}
		sup_drain_fd(sp->wakefd, sizeof(uint64_t));
		sup_reap(sp);
		if (sp->shutting_down) {
			for (struct slot *sl = sp->slots; sl != NULL; sl = sl->next)
				sup_slot_stop(sp, sl);
			/* The stopping state is what we wrote; the desired state stays,
			 * so the next controller brings these jobs back. */
			sup_reconcile(sp);
			if (!sup_any_running(sp) || sup_now_ms() > shutdown_deadline)
				return 0;
			continue;
		}
		sup_reconcile(sp);
	}
}
