#include "sup.h"

#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <poll.h>
#include <signal.h>
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

#include "cluster.h"
#include "exitcodes.h"
#include "log.h"
#include "proto.h"
#include "policy.h"
#include "runtime.h"
#include "tasks.h"
#include "workerspawn.h"


/* The longest poll() when no timer is due sooner; a reconcile that could not
 * read the store is tried again after this. */
#define SUP_TICK_MS 500
/* How often the cluster's tick runs (cluster.h). */
#define SUP_CLUSTER_TICK_MS 1000
#define SUP_MAX_FDS 1024
/* How often the in-memory figures of deleted jobs are dropped. */
#define SUP_RUNTIME_PRUNE_MS 60000

enum slot_phase {
	SLOT_RUNNING,  /* a worker process exists */
	SLOT_BACKOFF,  /* no process; restart at restart_at */
	SLOT_FAILED,   /* no process; the restart policy failed the task (and its job) */
};

/* One task of a job: (job_id, task) is unique. */
struct slot {
	int64_t job_id;
	int task;          /* 0-based */
	char name[128];
	enum slot_phase phase;
	pid_t pid;
	int status_fd; /* -1 once EOF was read */
	char line[PROTO_LINE_MAX];
	size_t linelen;
	bool line_overflow;
	bool stop_sent;
	bool ready;        /* the worker said ready */
	bool leaving;      /* task >= the job's tasks: stopped for good */
	int spawned_tasks; /* the TASKS its worker was told */
	bool static_parts; /* the job lists PARTITIONS: the division depends on TASKS */
	int64_t kill_at;   /* monotonic ms; 0 = none */
	int64_t started;   /* monotonic ms of the spawn */
	int64_t restart_at;
	bool batch_seen;   /* this worker reported a batch */
	int retries;       /* WORKER_EXIT_RETRY exits in a row, without a batch between */
	int crashes;       /* crashes in a row, without a healthy run between */
	int64_t restarts;  /* of this task since the slot was made */
	char last_error[PROTO_LINE_MAX];   /* the worker's last error line */
	char task_error[RUNTIME_ERROR_LEN]; /* what the task's status shows */
	struct slot *next;
};

struct sup {
	struct store *st;
	char *worker_path;
	int sigfd;
	int wakefd;
	bool shutting_down;
	bool reconcile_due; /* a wake-up, a child exit or a timer since the last reconcile */
	int64_t reconcile_retry_at; /* monotonic ms; 0 = none (the last reconcile read the store) */
	struct slot *slots;
	int64_t runtime_pruned_at; /* monotonic ms */
	struct cluster *cluster;   /* NULL: every task runs here */
	int64_t cluster_at;        /* monotonic ms of the next cluster tick */
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

static struct slot *sup_slot_find(struct sup *sp, int64_t job_id, int task)
{
	struct slot *sl;

	for (sl = sp->slots; sl != NULL; sl = sl->next)
		if (sl->job_id == job_id && sl->task == task)
			return sl;
	return NULL;
}

/* A task with no worker and none wanted: gone from the supervisor; its
 * status says stopped until the job's tasks are lowered past it. */
static void sup_slot_remove(struct sup *sp, struct slot *victim)
{
	struct slot **pp;

	for (pp = &sp->slots; *pp != NULL; pp = &(*pp)->next) {
		if (*pp == victim) {
			*pp = victim->next;
			runtime_task_set_state(victim->job_id, victim->task, "stopped", victim->restarts, NULL);
			slot_free(victim);
			return;
		}
	}
}

/* What the task's status shows as its error; msg is cut to fit. */
static void sup_slot_set_error(struct slot *sl, const char *msg)
{
	size_t len = strnlen(msg, sizeof(sl->task_error) - 1);

	memcpy(sl->task_error, msg, len);
	sl->task_error[len] = '\0';
}

static enum task_phase sup_slot_phase(const struct slot *sl)
{
	if (sl->phase == SLOT_FAILED)
		return TASK_FAILED;
	if (sl->phase == SLOT_BACKOFF)
		return TASK_RETRYING;
	if (sl->stop_sent)
		return TASK_STOPPING;
	return sl->ready ? TASK_RUNNING : TASK_STARTING;
}

/* Records the job's state, the summary of its tasks' (tasks.h), in the
 * store, with the pid of its lowest running task, every task's pid, and
 * last_error (NULL keeps the stored one, "" clears it); and each task's
 * state in common/runtime.h. */
static void sup_job_publish_if(struct sup *sp, int64_t job_id, const char *last_error, const char *known);

static void sup_job_publish(struct sup *sp, int64_t job_id, const char *last_error)
{
	sup_job_publish_if(sp, job_id, last_error, NULL);
}

/* As sup_job_publish, but writes nothing when the job's state would stay
 * known (its state in the store) and there is no last_error to write. */
static void sup_job_publish_if(struct sup *sp, int64_t job_id, const char *last_error, const char *known)
{
	struct task_brief briefs[STORE_TASK_PIDS_MAX];
	int pids[STORE_TASK_PIDS_MAX] = { 0 };
	size_t n = 0, npids = 0;
	int pid = 0, pid_task = INT_MAX;

	for (const struct slot *sl = sp->slots; sl != NULL; sl = sl->next) {
		if (sl->job_id != job_id)
			continue;
		if (n < STORE_TASK_PIDS_MAX)
			briefs[n++] = (struct task_brief){ sup_slot_phase(sl), sl->leaving };
		if (sl->phase == SLOT_RUNNING && sl->pid > 0 && sl->task < STORE_TASK_PIDS_MAX) {
			pids[sl->task] = (int)sl->pid;
			if ((size_t)sl->task + 1 > npids)
				npids = (size_t)sl->task + 1;
			if (sl->task < pid_task) {
				pid_task = sl->task;
				pid = (int)sl->pid;
			}
		}
		runtime_task_set_state(job_id, sl->task, tasks_phase_name(sup_slot_phase(sl)), sl->restarts,
				       sl->task_error);
	}
	if (sp->cluster != NULL && cluster_shared(sp->cluster)) {
		/* The tasks other controllers run count too. */
		int local[STORE_TASK_PIDS_MAX];
		size_t nlocal = 0;

		for (const struct slot *sl = sp->slots; sl != NULL && nlocal < STORE_TASK_PIDS_MAX; sl = sl->next)
			if (sl->job_id == job_id)
				local[nlocal++] = sl->task;
		n += cluster_remote_briefs(sp->cluster, job_id, local, nlocal, briefs + n, STORE_TASK_PIDS_MAX - n);
	}
	/* A tick's look: a controller that knows none of the job's tasks yet
	 * says nothing. */
	if (known != NULL && (n == 0 || (last_error == NULL && strcmp(known, tasks_job_state(briefs, n)) == 0)))
		return;
	store_job_set_state(sp->st, job_id, tasks_job_state(briefs, n), pid, last_error);
	store_job_set_task_pids(sp->st, job_id, pids, npids);
}

/* Whether this controller runs the task (a cluster places it). */
static bool sup_here(const struct sup *sp, int64_t job_id, int task)
{
	return sp->cluster == NULL || cluster_runs(sp->cluster, job_id, task);
}

void sup_set_cluster(struct sup *sp, struct cluster *c)
{
	sp->cluster = c;
}

/* Whether every task of the job that stays is ready: only then does a
 * ready worker clear the job's last error (another task's may still stand). */
static bool sup_job_all_ready(const struct sup *sp, int64_t job_id)
{
	for (const struct slot *sl = sp->slots; sl != NULL; sl = sl->next)
		if (sl->job_id == job_id && !sl->leaving && sup_slot_phase(sl) != TASK_RUNNING)
			return false;
	return true;
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
	struct spawn_pipe pipes[] = {
		{ .child_fd = STDIN_FILENO, .to_child = true },
		{ .child_fd = WORKER_STATUS_FD, .to_child = false },
	};
	struct store_worker_info info = { 1, false };
	char *input = NULL;
	pid_t pid;
	int rc = -1;

	input = store_job_worker_input(sp->st, sl->job_id, sl->task, &info, err, errlen);
	if (input == NULL)
		return STORE_INVALID;
	if (spawn_worker(sp->worker_path, NULL, pipes, 2, &pid, err, errlen) < 0)
		goto out;
	/* The worker reads its standard input to EOF before anything else.  If it
	 * died at once the write fails with EPIPE and the exit is reaped as usual. */
	if (sup_write_all(pipes[0].fd, input, strlen(input)) < 0)
		log_job(LOG_WARN, sl->job_id, "job %s: could not hand the job to worker %d (task %d): %s", sl->name,
			(int)pid, sl->task, strerror(errno));
	close(pipes[0].fd);
	fcntl(pipes[1].fd, F_SETFL, O_NONBLOCK);

	sl->phase = SLOT_RUNNING;
	sl->pid = pid;
	sl->status_fd = pipes[1].fd;
	sl->linelen = 0;
	sl->line_overflow = false;
	sl->stop_sent = false;
	sl->ready = false;
	sl->spawned_tasks = info.tasks;
	sl->static_parts = info.partitions;
	sl->kill_at = 0;
	sl->started = sup_now_ms();
	sl->batch_seen = false;
	sl->last_error[0] = '\0';
	runtime_task_started(sl->job_id, sl->task, (int)pid);
	rc = 0;
out:
	/* The job text holds the database password. */
	explicit_bzero(input, strlen(input));
	free(input);
	return rc;
}

/* SIGTERM and SIGKILL both go to the worker's process group (pgid = pid, see
 * common/workerspawn.h), so that anything it started hears them too.  The pid
 * alone as a fallback: a worker left by an older controller may not lead a
 * group of its own. */
static void sup_signal_worker(pid_t pid, int sig)
{
	if (kill(-pid, sig) < 0 && errno == ESRCH)
		kill(pid, sig);
}

/* Stops the worker of a slot: SIGTERM to its group, SIGKILL after the
 * deadline.  The caller publishes the job's state. */
static void sup_slot_stop(struct sup *sp, struct slot *sl)
{
	if (sl->phase != SLOT_RUNNING || sl->stop_sent)
		return;
	if (sl->spawned_tasks > 1 || sl->task > 0)
		log_job(LOG_INFO, sl->job_id, "job %s: stopping worker %d (task %d)", sl->name, (int)sl->pid, sl->task);
	else
		log_job(LOG_INFO, sl->job_id, "job %s: stopping worker %d", sl->name, (int)sl->pid);
	sup_signal_worker(sl->pid, SIGTERM);
	sl->stop_sent = true;
	sl->kill_at = sup_now_ms() + SUP_STOP_DEADLINE_MS;
}

/* A task failed by the restart policy (or cannot start): the job cannot go
 * on.  Its other tasks are stopped; the failed slot stays, without a
 * worker, so that the job reads failed until a user starts it again. */
static void sup_slot_fail(struct sup *sp, struct slot *sl, const char *why)
{
	struct slot *other, *next;

	log_job(LOG_ERROR, sl->job_id, "job %s: failed: %s", sl->name, why);
	sl->phase = SLOT_FAILED;
	sl->pid = 0;
	sup_slot_set_error(sl, why);
	for (other = sp->slots; other != NULL; other = next) {
		next = other->next;
		if (other->job_id != sl->job_id || other == sl)
			continue;
		other->leaving = true;
		if (other->phase == SLOT_RUNNING)
			sup_slot_stop(sp, other);
		else if (other->phase == SLOT_BACKOFF)
			sup_slot_remove(sp, other);
	}
	sup_job_publish(sp, sl->job_id, why);
}

static void sup_job_start(struct sup *sp, const struct store_job_brief *job, int task, struct slot *sl)
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
		sl->task = task;
		sl->status_fd = -1;
		sl->next = sp->slots;
		sp->slots = sl;
	}
	snprintf(sl->name, sizeof(sl->name), "%s", job->name);
	rc = sup_slot_spawn(sp, sl, err, sizeof(err));
	if (rc == STORE_INVALID || rc == STORE_NOT_FOUND) {
		log_job(LOG_ERROR, job->id, "job %s: cannot start task %d", job->name, task);
		sup_slot_fail(sp, sl, err); /* logs why */
		return;
	}
	if (rc < 0) {
		/* Could not fork or exec: retry like a crash. */
		log_job(LOG_ERROR, job->id, "job %s: %s", job->name, err);
		sl->phase = SLOT_BACKOFF;
		sl->pid = 0;
		sl->restart_at = sup_now_ms() + POLICY_MIN_DELAY_MS;
		sup_slot_set_error(sl, err);
		sup_job_publish(sp, job->id, err);
		return;
	}
	if (job->tasks > 1)
		log_job(LOG_INFO, job->id, "job %s: worker %d started (task %d of %d)", job->name, (int)sl->pid,
			task, job->tasks);
	else
		log_job(LOG_INFO, job->id, "job %s: worker %d started", job->name, (int)sl->pid);
	sup_job_publish(sp, job->id, NULL);
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
		if (sl->stop_sent)
			break;
		sl->ready = true;
		sl->task_error[0] = '\0';
		sup_job_publish(sp, sl->job_id, sup_job_all_ready(sp, sl->job_id) ? "" : NULL);
		break;
	case PROTO_BATCH:
		store_job_add_counters(sp->st, sl->job_id, msg.messages, msg.rows, msg.updated,
				       msg.rejected);
		runtime_task_batch(sl->job_id, sl->task, msg.messages, msg.rows, msg.duration_ms);
		if (msg.deleted != 0 || msg.tombstones_skipped != 0)
			runtime_job_tombstones(sl->job_id, msg.deleted, msg.tombstones_skipped);
		sl->batch_seen = true;
		break;
	case PROTO_ERROR:
		snprintf(sl->last_error, sizeof(sl->last_error), "%s", msg.message);
		log_job(LOG_WARN, sl->job_id, "job %s: worker %d reports %s error: %s", sl->name, (int)sl->pid,
			msg.err_class, msg.message);
		break;
	case PROTO_LAG:
		runtime_task_lag(sl->job_id, sl->task, msg.lag_total, msg.lag, msg.nlag);
		break;
	case PROTO_ASSIGN:
		runtime_task_assign(sl->job_id, sl->task, msg.parts, msg.nparts);
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

/* A worker ended: record it, ask the restart policy (policy.h) what next,
 * and do that. */
static void sup_slot_exited(struct sup *sp, struct slot *sl, int wstatus)
{
	char how[96], why[PROTO_LINE_MAX + 128];
	struct policy_input in;
	struct policy_decision *d;
	int64_t now = sup_now_ms();

	sup_slot_read(sp, sl); /* the last lines, the error among them */
	memset(&in, 0, sizeof(in));
	in.signaled = WIFSIGNALED(wstatus);
	in.code = WIFEXITED(wstatus) ? WEXITSTATUS(wstatus) : -1;
	in.sig = in.signaled ? WTERMSIG(wstatus) : 0;
	policy_describe_exit(in.signaled, in.code, in.sig, how, sizeof(how));
	if (sl->last_error[0] != '\0')
		snprintf(why, sizeof(why), "%s", sl->last_error);
	else
		snprintf(why, sizeof(why), "worker ended with %s", how);
	if (sl->spawned_tasks > 1 || sl->task > 0)
		log_job(LOG_INFO, sl->job_id, "job %s: worker %d (task %d) ended with %s%s%s", sl->name, (int)sl->pid,
			sl->task, how, sl->last_error[0] ? ": " : "", sl->last_error);
	else
		log_job(LOG_INFO, sl->job_id, "job %s: worker %d ended with %s%s%s", sl->name, (int)sl->pid, how,
			sl->last_error[0] ? ": " : "", sl->last_error);
	store_job_set_exit(sp->st, sl->job_id, how);
	runtime_task_ended(sl->job_id, sl->task);
	sl->pid = 0;
	sl->ready = false;

	in.stop_requested = sl->stop_sent || sp->shutting_down;
	in.batch_seen = sl->batch_seen;
	in.uptime_ms = now - sl->started;
	in.retries = sl->retries;
	in.crashes = sl->crashes;
	in.why = why;
	/* SCHEDULE is resolved only here, when a worker ends. */
	store_job_schedule(sp->st, sl->job_id, &in.retry_interval_ms, &in.max_retries);
	d = malloc(sizeof(*d)); /* a status line and more: not on the stack */
	if (d == NULL) {
		sup_slot_fail(sp, sl, "out of memory");
		return;
	}
	*d = policy_decide(&in);
	switch (d->action) {
	case POLICY_STOP: {
		int64_t job_id = sl->job_id;

		sup_slot_remove(sp, sl);
		sup_job_publish(sp, job_id, d->message[0] ? d->message : NULL);
		break;
	}
	case POLICY_FAIL:
		sup_slot_fail(sp, sl, d->message);
		break;
	case POLICY_RESTART:
		sl->retries = d->retries;
		sl->crashes = d->crashes;
		sl->phase = SLOT_BACKOFF;
		sl->restart_at = now + d->delay_ms;
		sl->restarts++;
		sup_slot_set_error(sl, d->message);
		store_job_inc_restarts(sp->st, sl->job_id);
		sup_job_publish(sp, sl->job_id, d->message);
		log_job(LOG_INFO, sl->job_id, "job %s: restarting%s in %lld ms", sl->name,
			sl->spawned_tasks > 1 ? " a task" : "", (long long)d->delay_ms);
		break;
	}
	free(d);
}

/* Reaps our own workers only, by pid.  The API's one-shot runs (`--check`,
 * `--offsets`, `--reset`, `--errors`) start through the same spawn helper
 * (common/workerspawn.h) but are reaped by the request thread that started
 * them: their life is one request, that thread already feeds their input,
 * reads their answer and keeps their 30 s deadline, and it waits for the exit
 * anyway.  Reaping them here with waitpid(-1) would need a pid table shared
 * across threads, and threads waiting on this loop, which returns before the
 * API server stops.  So whoever spawns a worker reaps it, and waitpid(-1) here
 * would steal the API's exit statuses.  Returns whether a worker ended. */
static bool sup_reap(struct sup *sp)
{
	struct slot *sl, *next;
	bool reaped = false;

	for (sl = sp->slots; sl != NULL; sl = next) {
		int wstatus;

		next = sl->next; /* sup_slot_exited may free sl */
		if (sl->phase != SLOT_RUNNING || sl->pid <= 0)
			continue;
		if (waitpid(sl->pid, &wstatus, WNOHANG) == sl->pid) {
			sup_slot_exited(sp, sl, wstatus);
			reaped = true;
		}
	}
	return reaped;
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

/* A running job's tasks: starts the missing ones (and those due to
 * restart), stops those at or past job->tasks, and restarts every task
 * whose division of PARTITIONS changed with the job's tasks.  Returns
 * whether a task changed without publishing it. */
static bool sup_job_reconcile_tasks(struct sup *sp, const struct store_job_brief *job, int64_t now)
{
	int n = job->tasks < 1 ? 1 : job->tasks > STORE_TASK_PIDS_MAX ? STORE_TASK_PIDS_MAX : job->tasks;
	bool failed = strcmp(job->state, "failed") == 0, changed = false;
	struct slot *sl, *next;

	for (sl = sp->slots; sl != NULL; sl = sl->next)
		if (sl->job_id == job->id)
			sl->leaving = sl->task >= n || !sup_here(sp, job->id, sl->task);
	for (int task = 0; task < n; task++) {
		if (!sup_here(sp, job->id, task))
			continue; /* another controller of the cluster runs it */
		sl = sup_slot_find(sp, job->id, task);
		if (sl != NULL && sl->phase == SLOT_FAILED && !failed) {
			/* A user started the failed job again. */
			sup_slot_remove(sp, sl);
			sl = NULL;
		}
		if (sl == NULL && !failed)
			sup_job_start(sp, job, task, NULL);
		else if (sl != NULL && sl->phase == SLOT_BACKOFF && now >= sl->restart_at)
			sup_job_start(sp, job, task, sl);
		else if (sl != NULL && sl->phase == SLOT_RUNNING && !sl->stop_sent && sl->static_parts &&
			 sl->spawned_tasks != n) {
			log_job(LOG_INFO, job->id, "job %s: restarting task %d: its share of PARTITIONS changed "
				"with tasks %d -> %d", job->name, task, sl->spawned_tasks, n);
			sup_slot_stop(sp, sl);
			changed = true;
		}
	}
	for (sl = sp->slots; sl != NULL; sl = next) {
		next = sl->next;
		if (sl->job_id != job->id || !sl->leaving)
			continue;
		if (sl->phase == SLOT_FAILED && failed)
			continue; /* the job stays failed until a user starts it */
		if (sl->phase == SLOT_RUNNING && !sl->stop_sent)
			sup_slot_stop(sp, sl);
		else if (sl->phase != SLOT_RUNNING)
			sup_slot_remove(sp, sl);
		else
			continue;
		changed = true;
	}
	return changed;
}

/* A job not wanted running: stops its workers, drops its waiting tasks.
 * Returns whether its state needs publishing. */
static bool sup_job_reconcile_stop(struct sup *sp, const struct store_job_brief *job)
{
	bool changed = false, any = false;
	struct slot *sl, *next;

	for (sl = sp->slots; sl != NULL; sl = next) {
		next = sl->next;
		if (sl->job_id != job->id)
			continue;
		any = true;
		sl->leaving = true;
		if (sl->phase == SLOT_RUNNING) {
			changed = changed || !sl->stop_sent;
			sup_slot_stop(sp, sl);
		} else if (sl->phase == SLOT_BACKOFF) {
			sup_slot_remove(sp, sl);
			changed = true;
		} else {
			sup_slot_remove(sp, sl); /* failed: the job stays failed */
		}
	}
	if (!any && strcmp(job->state, "stopped") != 0 && strcmp(job->state, "failed") != 0)
		store_job_set_state(sp->st, job->id, "stopped", 0, NULL);
	return changed;
}

static bool sup_job_has_leaving(const struct sup *sp, int64_t job_id)
{
	for (const struct slot *sl = sp->slots; sl != NULL; sl = sl->next)
		if (sl->job_id == job_id && sl->leaving)
			return true;
	return false;
}

/* Makes what runs match what the store says should run.  Runs on a wake-up
 * from the API, a child's exit, a due timer (a restart, the runtime prune),
 * never for a status line.  Returns -1 when the store could not be read. */
/* Without the catalog: stops the workers of the tasks no longer placed
 * here.  A cluster's controller cut off from its catalog fences itself
 * (cluster.h: it runs nothing), and its workers must stop although the
 * catalog that lists the jobs does not answer; what else reconcile does
 * waits for the catalog. */
static void sup_stop_elsewhere(struct sup *sp)
{
	for (struct slot *sl = sp->slots; sl != NULL; sl = sl->next) {
		if (sl->phase != SLOT_RUNNING || sl->stop_sent || sup_here(sp, sl->job_id, sl->task))
			continue;
		sl->leaving = true;
		sup_slot_stop(sp, sl);
	}
}

static int sup_reconcile(struct sup *sp)
{
	struct store_job_brief *jobs = NULL;
	size_t n = 0;
	char err[256];
	int64_t now = sup_now_ms();
	struct slot *sl, *next;

	if (store_jobs_brief(sp->st, &jobs, &n, err, sizeof(err)) < 0) {
		log_error("supervisor: cannot read jobs: %s", err);
		sup_stop_elsewhere(sp);
		return -1;
	}
	for (size_t i = 0; i < n; i++) {
		const struct store_job_brief *job = &jobs[i];
		bool want = strcmp(job->desired, "running") == 0 && !sp->shutting_down;
		bool changed = want ? sup_job_reconcile_tasks(sp, job, now) : sup_job_reconcile_stop(sp, job);

		if (changed)
			sup_job_publish(sp, job->id, NULL);
		/* The figures of tasks lowered away go once their workers are. */
		if (want && !sup_job_has_leaving(sp, job->id))
			runtime_job_tasks_keep(job->id, job->tasks);
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
	free(jobs);
	return 0;
}

/* Workers that ignored SIGTERM past the deadline. */
static void sup_kill_overdue(struct sup *sp, int64_t now)
{
	for (struct slot *sl = sp->slots; sl != NULL; sl = sl->next) {
		if (sl->phase == SLOT_RUNNING && sl->kill_at != 0 && now >= sl->kill_at) {
			log_job(LOG_WARN, sl->job_id, "job %s: worker %d (task %d) did not stop within %d ms; killing it",
				sl->name, (int)sl->pid, sl->task, SUP_STOP_DEADLINE_MS);
			sup_signal_worker(sl->pid, SIGKILL);
			sl->kill_at = 0;
		}
	}
}

/* When a timer next wants a reconcile: a restart, the runtime prune, or,
 * after a reconcile that could not read the store, only its retry (the
 * others wait for it). */
static int64_t sup_next_reconcile(const struct sup *sp)
{
	int64_t next = sp->runtime_pruned_at + SUP_RUNTIME_PRUNE_MS;

	if (sp->reconcile_retry_at != 0)
		return sp->reconcile_retry_at;
	for (const struct slot *sl = sp->slots; sl != NULL; sl = sl->next)
		if (sl->phase == SLOT_BACKOFF && sl->restart_at < next)
			next = sl->restart_at;
	return next;
}

/* When a timer next wants the loop: a reconcile, or a SIGKILL deadline. */
static int64_t sup_next_timer(const struct sup *sp)
{
	int64_t next = sup_next_reconcile(sp);

	if (sp->cluster != NULL && sp->cluster_at < next)
		next = sp->cluster_at;
	for (const struct slot *sl = sp->slots; sl != NULL; sl = sl->next)
		if (sl->phase == SLOT_RUNNING && sl->kill_at != 0 && sl->kill_at < next)
			next = sl->kill_at;
	return next;
}

/* The cluster's tick (cluster.h): a new placement makes the loop reconcile;
 * the job states take in what the other controllers' tasks do; this
 * controller's tasks are published. */
static void sup_cluster_tick(struct sup *sp, int64_t now)
{
	const struct store_job_brief *jobs;
	int64_t *ids = NULL;
	size_t n = 0, nids = 0;

	sp->cluster_at = now + SUP_CLUSTER_TICK_MS;
	if (cluster_tick(sp->cluster, now))
		sp->reconcile_due = true;
	/* The jobs the tick read for the placement, not read again. */
	if (!cluster_jobs(sp->cluster, &jobs, &n))
		return;
	ids = calloc(n ? n : 1, sizeof(*ids));
	for (size_t i = 0; i < n; i++) {
		if (strcmp(jobs[i].desired, "running") != 0)
			continue;
		if (ids != NULL)
			ids[nids++] = jobs[i].id;
		if (strcmp(jobs[i].state, "failed") != 0)
			sup_job_publish_if(sp, jobs[i].id, NULL, jobs[i].state);
	}
	if (ids != NULL)
		cluster_publish(sp->cluster, ids, nids);
	free(ids);
}

static void sup_reconcile_now(struct sup *sp)
{
	sp->reconcile_due = false;
	sp->reconcile_retry_at = sup_reconcile(sp) < 0 ? sup_now_ms() + SUP_TICK_MS : 0;
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
 * for those, every task's, so that two workers never run the same task. */
static void sup_adopt_leftovers(struct sup *sp)
{
	struct store_job_brief *jobs = NULL;
	size_t n = 0;
	char err[256];

	if (store_jobs_brief(sp->st, &jobs, &n, err, sizeof(err)) < 0)
		return;
	for (size_t i = 0; i < n; i++) {
		int pids[STORE_TASK_PIDS_MAX + 1];
		size_t npids = 0, alive = 0;
		int64_t deadline = sup_now_ms() + SUP_STOP_DEADLINE_MS;

		if (store_job_get_pids(sp->st, jobs[i].id, pids, STORE_TASK_PIDS_MAX + 1, &npids) < 0)
			continue;
		for (size_t k = 0; k < npids; k++) {
			if (!sup_pid_is_worker(pids[k]))
				continue;
			log_info("job %s: waiting for worker %d of the previous controller to exit", jobs[i].name,
				 pids[k]);
			sup_signal_worker(pids[k], SIGTERM);
			alive++;
		}
		while (alive > 0 && sup_now_ms() < deadline) {
			usleep(50 * 1000);
			alive = 0;
			for (size_t k = 0; k < npids; k++)
				alive += sup_pid_is_worker(pids[k]);
		}
		for (size_t k = 0; alive > 0 && k < npids; k++)
			if (sup_pid_is_worker(pids[k]))
				sup_signal_worker(pids[k], SIGKILL);
		store_job_set_task_pids(sp->st, jobs[i].id, NULL, 0);
		if (strcmp(jobs[i].state, "failed") != 0)
			store_job_set_state(sp->st, jobs[i].id,
					    strcmp(jobs[i].desired, "running") == 0 ? "starting"
										    : "stopped",
					    0, NULL);
	}
	free(jobs);
}

/* Our shutdown: every worker is stopped, and each job that had one still
 * running reads stopping. */
static void sup_stop_all(struct sup *sp)
{
	for (struct slot *sl = sp->slots; sl != NULL; sl = sl->next) {
		if (sl->phase != SLOT_RUNNING || sl->stop_sent)
			continue;
		sup_slot_stop(sp, sl);
		sl->leaving = true;
		sup_job_publish(sp, sl->job_id, NULL);
	}
}

static bool sup_any_running(struct sup *sp)
{
	for (struct slot *sl = sp->slots; sl != NULL; sl = sl->next)
		if (sl->phase == SLOT_RUNNING)
			return true;
	return false;
}

/* Empties fd; returns whether there was anything to read. */
static bool sup_drain_fd(int fd, size_t size)
{
	char buf[sizeof(struct signalfd_siginfo)];
	bool any = false;

	while (read(fd, buf, size < sizeof(buf) ? size : sizeof(buf)) > 0)
		any = true;
	return any;
}

int sup_run(struct sup *sp)
{
	struct pollfd pfd[SUP_MAX_FDS];
	struct slot *map[SUP_MAX_FDS];
	int64_t shutdown_deadline = 0;

	/* In a cluster a task's last pid may be another host's process. */
	if (sp->cluster == NULL || !cluster_shared(sp->cluster))
		sup_adopt_leftovers(sp);
	sp->runtime_pruned_at = sup_now_ms();
	if (sp->cluster != NULL)
		sup_cluster_tick(sp, sup_now_ms());
	sup_reconcile_now(sp);
	for (;;) {
		nfds_t nfds = 2;
		int64_t now = sup_now_ms(), wait_ms = sup_next_timer(sp) - now;
		int timeout = wait_ms < 0 ? 0 : wait_ms < SUP_TICK_MS ? (int)wait_ms : SUP_TICK_MS;
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
		/* Status lines update counters, state and figures only. */
		for (nfds_t i = 2; i < nfds; i++)
			if (pfd[i].revents != 0)
				sup_slot_read(sp, map[i]);
		while (read(sp->sigfd, &si, sizeof(si)) == (ssize_t)sizeof(si)) {
			if ((si.ssi_signo == SIGTERM || si.ssi_signo == SIGINT) && !sp->shutting_down) {
				log_info("controller: signal %u received, stopping every worker",
					 si.ssi_signo);
				sp->shutting_down = true;
				sp->reconcile_due = true;
				shutdown_deadline = sup_now_ms() + SUP_STOP_DEADLINE_MS + 2000;
			}
		}
		if (sup_drain_fd(sp->wakefd, sizeof(uint64_t)))
			sp->reconcile_due = true;
		/* Every time round, not only on SIGCHLD: a status pipe's EOF may
		 * come first, and signals of one kind merge. */
		if (sup_reap(sp))
			sp->reconcile_due = true;
		now = sup_now_ms();
		sup_kill_overdue(sp, now);
		if (now >= sup_next_reconcile(sp))
			sp->reconcile_due = true;
		if (sp->shutting_down) {
			sup_stop_all(sp);
			/* The stopping state is what we wrote; the desired state stays,
			 * so the next controller brings these jobs back. */
			if (sp->reconcile_due)
				sup_reconcile_now(sp);
			if (!sup_any_running(sp) || sup_now_ms() > shutdown_deadline) {
				if (sp->cluster != NULL)
					cluster_leave(sp->cluster);
				return 0;
			}
			continue;
		}
		if (sp->cluster != NULL && now >= sp->cluster_at)
			sup_cluster_tick(sp, now);
		if (sp->reconcile_due)
			sup_reconcile_now(sp);
	}
}
