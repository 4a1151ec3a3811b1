#include "api_worker.h"

#include <errno.h>
#include <fcntl.h>
#include <poll.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/types.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "api_http.h"
#include "exitcodes.h"
#include "log.h"
#include "workerspawn.h"
#include "resolve.h"


/* One run of `streamworker --MODE`. */
struct api_worker_proc {
	pid_t pid;
	int in_fd;  /* the worker's standard input, our end; -1 once closed */
	int out_fd; /* the worker's standard output, our end */
	char *out;  /* what it printed, NUL-terminated */
	size_t outlen;
	int wstatus;
	bool reaped;    /* wstatus holds the exit status (false if waitpid failed) */
	bool timed_out; /* killed at the deadline */
	bool too_large; /* killed for printing more than API_WORKER_OUTPUT_MAX */
	char err[256];  /* could not run it at all */
};

static int64_t api_worker_now_ms(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

/* Through the controller's one spawn helper (common/workerspawn.h): the same
 * signal mask, signal defaults, descriptors and process group as the
 * supervisor's workers.  This thread reaps the worker by its pid: whoever
 * spawns a worker reaps it. */
static int api_worker_spawn(struct api_worker_proc *p, const char *worker_path, const char *mode)
{
	struct spawn_pipe pipes[] = {
		{ .child_fd = STDIN_FILENO, .to_child = true },
		{ .child_fd = STDOUT_FILENO, .to_child = false },
	};

	if (spawn_worker(worker_path, mode, pipes, 2, &p->pid, p->err, sizeof(p->err)) < 0)
		return -1;
	p->in_fd = pipes[0].fd;
	p->out_fd = pipes[1].fd;
	fcntl(p->in_fd, F_SETFL, O_NONBLOCK);
	fcntl(p->out_fd, F_SETFL, O_NONBLOCK);
	return 0;
}

static void api_worker_close_input(struct api_worker_proc *p)
{
	if (p->in_fd >= 0)
		close(p->in_fd);
	p->in_fd = -1;
}

/* Reads what is there; returns false at EOF or when over the cap. */
static bool api_worker_read(struct api_worker_proc *p)
{
	char chunk[4096];
	ssize_t n = read(p->out_fd, chunk, sizeof(chunk));
	char *grown;

	if (n < 0)
		return errno == EINTR || errno == EAGAIN;
	if (n == 0)
		return false;
	if (p->outlen + (size_t)n > API_WORKER_OUTPUT_MAX) {
		p->too_large = true;
		return false;
	}
	grown = realloc(p->out, p->outlen + (size_t)n + 1);
	if (grown == NULL) {
		p->too_large = true;
		return false;
	}
	p->out = grown;
	memcpy(p->out + p->outlen, chunk, (size_t)n);
	p->outlen += (size_t)n;
	p->out[p->outlen] = '\0';
	return true;
}

/* Feeds input and collects the answer until EOF on standard output. */
static void api_worker_talk(struct api_worker_proc *p, const char *input, int64_t deadline)
{
	size_t sent = 0, len = strlen(input);

	for (;;) {
		struct pollfd fds[2] = { { p->out_fd, POLLIN, 0 }, { p->in_fd, POLLOUT, 0 } };
		int64_t left = deadline - api_worker_now_ms();
		int n;

		if (left <= 0) {
			p->timed_out = true;
			return;
		}
		n = poll(fds, p->in_fd >= 0 ? 2 : 1, (int)left);
		if (n < 0 && errno != EINTR)
			return;
		if (n <= 0)
			continue;
		if (p->in_fd >= 0 && (fds[1].revents & (POLLOUT | POLLERR | POLLHUP))) {
			ssize_t w = write(p->in_fd, input + sent, len - sent);

			if (w > 0)
				sent += (size_t)w;
			/* EPIPE: it stopped reading; its answer says why. */
			if (sent == len || (w < 0 && errno != EAGAIN && errno != EINTR))
				api_worker_close_input(p);
		}
		if ((fds[0].revents & (POLLIN | POLLERR | POLLHUP)) && !api_worker_read(p))
			return;
	}
}

/* Kills the worker's group: it and anything it started that may still hold
 * the pipe. */
static void api_worker_kill(struct api_worker_proc *p)
{
	kill(-p->pid, SIGKILL);
}

/* Waits for the worker to exit, until the deadline; then kills its group. */
static void api_worker_reap(struct api_worker_proc *p, int64_t deadline)
{
	bool killed = p->timed_out || p->too_large;

	if (killed)
		api_worker_kill(p);
	for (;;) {
		pid_t r = waitpid(p->pid, &p->wstatus, killed ? 0 : WNOHANG);

		if (r == p->pid) {
			p->reaped = true;
			return;
		}
		if (r < 0 && errno == EINTR)
			continue;
		if (r < 0)
			return; /* waitpid failed: go by what the worker printed */
		if (!killed && api_worker_now_ms() >= deadline) {
			p->timed_out = true;
			api_worker_kill(p);
			killed = true;
			continue;
		}
		usleep(5000);
	}
}

void api_worker_run(const char *worker_path, const char *mode, const struct jobspec *spec,
		    int64_t job_id, const char *job_name, const cJSON *extra,
		    struct api_worker_result *res)
{
	struct api_worker_proc p;
	char *input = resolve_worker_input(spec, job_id, job_name, 0, 0, extra);
	int64_t deadline;

	memset(&p, 0, sizeof(p));
	p.in_fd = p.out_fd = -1;
	memset(res, 0, sizeof(*res));
	if (input == NULL) {
		snprintf(res->err, sizeof(res->err), "out of memory");
		goto out;
	}
	if (worker_path == NULL) {
		snprintf(res->err, sizeof(res->err), "no worker to run %s with", mode);
		goto out;
	}
	if (api_worker_spawn(&p, worker_path, mode) < 0) {
		snprintf(res->err, sizeof(res->err), "%s", p.err);
		goto out;
	}
	res->ran = true;
	deadline = api_worker_now_ms() + API_WORKER_TIMEOUT_MS;
	api_worker_talk(&p, input, deadline);
	api_worker_close_input(&p);
	api_worker_reap(&p, deadline);
	close(p.out_fd);
	res->reaped = p.reaped;
	res->wstatus = p.wstatus;
	res->timed_out = p.timed_out;
	res->too_large = p.too_large;
	/* cJSON parses by recursion; this thread's stack is small. */
	if (!p.timed_out && !p.too_large && p.outlen > 0 &&
	    api_json_depth(p.out, p.outlen) <= API_JSON_DEPTH_MAX) {
		res->answer = cJSON_ParseWithLength(p.out, p.outlen);
		if (!cJSON_IsObject(res->answer)) {
			cJSON_Delete(res->answer);
			res->answer = NULL;
		}
	}
out:
	if (input != NULL) {
		explicit_bzero(input, strlen(input));
		free(input);
	}
	free(p.out);
}

void api_worker_result_free(struct api_worker_result *res)
{
	if (res == NULL)
		return;
	cJSON_Delete(res->answer);
	res->answer = NULL;
}

int api_worker_exit_code(const struct api_worker_result *res)
{
	return res->reaped && WIFEXITED(res->wstatus) ? WEXITSTATUS(res->wstatus) : -1;
}

/* The worker's reason for failing: {"error": {"message"}} or {"error": "..."},
 * {"errors": [{"message"}]}, or {"message"}; NULL when it gave none. */
static const char *api_worker_reason(const cJSON *answer)
{
	const cJSON *e = cJSON_GetObjectItemCaseSensitive(answer, "error");
	const char *msg;

	if (cJSON_IsString(e))
		return e->valuestring;
	msg = cJSON_GetStringValue(cJSON_GetObjectItemCaseSensitive(e, "message"));
	if (msg != NULL)
		return msg;
	e = cJSON_GetArrayItem(cJSON_GetObjectItemCaseSensitive(answer, "errors"), 0);
	msg = cJSON_GetStringValue(cJSON_GetObjectItemCaseSensitive(e, "message"));
	if (msg != NULL)
		return msg;
	return cJSON_GetStringValue(cJSON_GetObjectItemCaseSensitive(answer, "message"));
}

/* The field a configuration error names, if the worker said. */
static const char *api_worker_field(const cJSON *answer)
{
	const cJSON *e = cJSON_GetObjectItemCaseSensitive(answer, "error");

	if (!cJSON_IsObject(e))
		e = cJSON_GetArrayItem(cJSON_GetObjectItemCaseSensitive(answer, "errors"), 0);
	return cJSON_GetStringValue(cJSON_GetObjectItemCaseSensitive(e, "field"));
}

/* Every string of a successful answer scrubbed of the job's secrets too:
 * answers carry librdkafka's and libpq's words (a commit warning), which
 * may quote configuration.  -1 on out of memory. */
static int api_worker_scrub_json(cJSON *item, const struct jobspec *spec)
{
	cJSON *child;

	if (cJSON_IsString(item) && item->valuestring != NULL) {
		char *clean = jobspec_scrub(spec, item->valuestring);

		if (clean == NULL)
			return -1;
		if (strcmp(clean, item->valuestring) != 0 && cJSON_SetValuestring(item, clean) == NULL) {
			free(clean);
			return -1;
		}
		free(clean);
		return 0;
	}
	cJSON_ArrayForEach(child, item)
		if (api_worker_scrub_json(child, spec) < 0)
			return -1;
	return 0;
}

int api_worker_tool(struct api_req *req, const char *mode, const struct jobspec *spec,
		    int64_t job_id, const char *job_name, const cJSON *extra, cJSON **answer)
{
	struct api_worker_result res;
	const char *reason;
	char *clean = NULL, *field = NULL;
	int code, rc = -1;

	*answer = NULL;
	api_worker_run(req->ops->worker_path, mode, spec, job_id, job_name, extra, &res);
	code = api_worker_exit_code(&res);
	reason = res.answer != NULL ? api_worker_reason(res.answer) : NULL;
	if (reason != NULL)
		clean = jobspec_scrub(spec, reason);
	if (res.answer != NULL && api_worker_field(res.answer) != NULL)
		field = jobspec_scrub(spec, api_worker_field(res.answer));

	if (!res.ran) {
		api_reply_error(req, 500, NULL, "cannot run streamworker %s: %s", mode, res.err);
	} else if (res.timed_out) {
		api_reply_error(req, 504, NULL, "streamworker %s gave no answer within %d s", mode,
				API_WORKER_TIMEOUT_MS / 1000);
	} else if (res.too_large) {
		api_reply_error(req, 502, NULL, "streamworker %s printed more than %d bytes", mode,
				API_WORKER_OUTPUT_MAX);
	} else if (code == WORKER_EXIT_RETRY) {
		api_reply_error(req, 502, NULL, "%s",
				clean != NULL ? clean
					      : "the database or the brokers cannot be reached");
	} else if (code == WORKER_EXIT_CONFIG || code == WORKER_EXIT_DATA) {
		api_reply_error(req, 422, field, "%s",
				clean != NULL ? clean : "the job's configuration was refused");
	} else if (code != 0 || res.answer == NULL) {
		char how[64];

		if (res.reaped && WIFSIGNALED(res.wstatus))
			snprintf(how, sizeof(how), "was killed by signal %d", WTERMSIG(res.wstatus));
		else if (code != 0)
			snprintf(how, sizeof(how), "exited with status %d", code);
		else
			snprintf(how, sizeof(how), "gave no answer");
		api_reply_error(req, 502, NULL, "streamworker %s %s%s%s", mode, how,
				clean != NULL ? ": " : "", clean != NULL ? clean : "");
	} else if (api_worker_scrub_json(res.answer, spec) < 0) {
		api_reply_error(req, 500, NULL, "out of memory");
	} else {
		*answer = res.answer;
		res.answer = NULL;
		rc = 0;
	}
	if (rc < 0)
		log_warn("job %s: %s: %s", job_name != NULL ? job_name : "(unnamed)", mode,
			 clean != NULL ? clean : "failed");
	free(clean);
	free(field);
	api_worker_result_free(&res);
	return rc;
}
