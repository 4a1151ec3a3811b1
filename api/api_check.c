#include "api_check.h"

#include <errno.h>
#include <fcntl.h>
#include <poll.h>
#include <signal.h>
#include <spawn.h>
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
#include "resolve.h"

extern char **environ;

#define API_CHECK_MASK "****"
#define API_CHECK_SCRUB_WORD 4

/* One run of `streamworker --check`. */
struct api_check_proc {
	pid_t pid;
	int in_fd;  /* the worker's standard input, our end; -1 once closed */
	int out_fd; /* the worker's standard output, our end */
	char *out;  /* what it printed, NUL-terminated */
	size_t outlen;
	int wstatus;
	bool reaped;    /* wstatus is the worker's (the supervisor may reap it first) */
	bool timed_out; /* killed at the deadline */
	bool too_large; /* killed for printing more than API_CHECK_OUTPUT_MAX */
	char err[256];  /* could not run it at all */
};

static int64_t api_check_now_ms(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

/* Pipe ends land on 0 and 1 in the worker: ours must not already be there,
 * or dup2 would keep them close-on-exec. */
static int api_check_fd_above_stdio(int fd)
{
	int moved;

	if (fd > STDERR_FILENO)
		return fd;
	moved = fcntl(fd, F_DUPFD_CLOEXEC, STDERR_FILENO + 1);
	close(fd);
	return moved;
}

static int api_check_spawn(struct api_check_proc *p, const char *worker_path)
{
	posix_spawn_file_actions_t fa;
	posix_spawnattr_t attr;
	sigset_t all, none;
	int in[2] = { -1, -1 }, out[2] = { -1, -1 };
	char *argv[] = { (char *)worker_path, "--check", NULL };
	int rc = -1, e;

	if (pipe2(in, O_CLOEXEC) < 0 || pipe2(out, O_CLOEXEC) < 0) {
		snprintf(p->err, sizeof(p->err), "cannot create pipes: %s", strerror(errno));
		goto close;
	}
	in[0] = api_check_fd_above_stdio(in[0]);
	out[1] = api_check_fd_above_stdio(out[1]);
	if (in[0] < 0 || out[1] < 0) {
		snprintf(p->err, sizeof(p->err), "cannot move pipe descriptors: %s",
			 strerror(errno));
		goto close;
	}
	posix_spawn_file_actions_init(&fa);
	posix_spawn_file_actions_adddup2(&fa, in[0], STDIN_FILENO);
	posix_spawn_file_actions_adddup2(&fa, out[1], STDOUT_FILENO);
	/* Its own group, so that a kill at the deadline reaches all it started;
	 * nothing blocked and every handler at its default, whatever this
	 * request thread inherited. */
	posix_spawnattr_init(&attr);
	sigemptyset(&none);
	sigfillset(&all);
	posix_spawnattr_setsigmask(&attr, &none);
	posix_spawnattr_setsigdefault(&attr, &all);
	posix_spawnattr_setpgroup(&attr, 0);
	posix_spawnattr_setflags(&attr,
				 POSIX_SPAWN_SETPGROUP | POSIX_SPAWN_SETSIGMASK | POSIX_SPAWN_SETSIGDEF);
	e = posix_spawn(&p->pid, worker_path, &fa, &attr, argv, environ);
	posix_spawn_file_actions_destroy(&fa);
	posix_spawnattr_destroy(&attr);
	if (e != 0) {
		snprintf(p->err, sizeof(p->err), "cannot start %s --check: %s", worker_path,
			 strerror(e));
		goto close;
	}
	p->in_fd = in[1];
	p->out_fd = out[0];
	in[1] = out[0] = -1;
	fcntl(p->in_fd, F_SETFL, O_NONBLOCK);
	fcntl(p->out_fd, F_SETFL, O_NONBLOCK);
	rc = 0;
close:
	for (int i = 0; i < 2; i++) {
		if (in[i] >= 0)
			close(in[i]);
		if (out[i] >= 0)
			close(out[i]);
	}
	return rc;
}

static void api_check_close_input(struct api_check_proc *p)
{
	if (p->in_fd >= 0)
		close(p->in_fd);
	p->in_fd = -1;
}

/* Reads what is there; returns false at EOF or when over the cap. */
static bool api_check_read(struct api_check_proc *p)
{
	char chunk[4096];
	ssize_t n = read(p->out_fd, chunk, sizeof(chunk));
	char *grown;

	if (n < 0)
		return errno == EINTR || errno == EAGAIN;
	if (n == 0)
		return false;
	if (p->outlen + (size_t)n > API_CHECK_OUTPUT_MAX) {
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
static void api_check_talk(struct api_check_proc *p, const char *input, int64_t deadline)
{
	size_t sent = 0, len = strlen(input);

	for (;;) {
		struct pollfd fds[2] = { { p->out_fd, POLLIN, 0 }, { p->in_fd, POLLOUT, 0 } };
		int64_t left = deadline - api_check_now_ms();
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
				api_check_close_input(p);
		}
		if ((fds[0].revents & (POLLIN | POLLERR | POLLHUP)) && !api_check_read(p))
			return;
	}
}

/* Kills the worker's group: it and anything it started that may still hold
 * the pipe. */
static void api_check_kill(struct api_check_proc *p)
{
	kill(-p->pid, SIGKILL);
}

/* Waits for the worker to exit, until the deadline; then kills its group. */
static void api_check_reap(struct api_check_proc *p, int64_t deadline)
{
	bool killed = p->timed_out || p->too_large;

	if (killed)
		api_check_kill(p);
	for (;;) {
		pid_t r = waitpid(p->pid, &p->wstatus, killed ? 0 : WNOHANG);

		if (r == p->pid) {
			p->reaped = true;
			return;
		}
		if (r < 0 && errno == EINTR)
			continue;
		if (r < 0)
			return; /* ECHILD: the supervisor's waitpid(-1) took it */
		if (!killed && api_check_now_ms() >= deadline) {
			p->timed_out = true;
			api_check_kill(p);
			killed = true;
			continue;
		}
		usleep(5000);
	}
}

static bool api_check_is_word(char ch)
{
	return ch == '_' || (ch >= '0' && ch <= '9') || (ch >= 'a' && ch <= 'z') ||
	       (ch >= 'A' && ch <= 'Z');
}

/* s with every occurrence of secret replaced by "****"; a secret shorter
 * than API_CHECK_SCRUB_WORD only where it is not part of a longer word (a
 * one-letter password is not every "p").  malloc'd; NULL on out of memory. */
static char *api_check_scrub(const char *s, const char *secret)
{
	size_t slen = secret != NULL ? strlen(secret) : 0, used = 0;
	char *out = malloc(strlen(s) * (sizeof(API_CHECK_MASK) - 1) + 1);
	const char *p = s;

	if (out == NULL)
		return NULL;
	while (*p != '\0') {
		const char *hit = slen > 0 ? strstr(p, secret) : NULL;
		bool word_before, word_after;

		if (hit == NULL) {
			strcpy(out + used, p);
			return out;
		}
		word_before = slen < API_CHECK_SCRUB_WORD && hit > s &&
			      api_check_is_word(hit[-1]) && api_check_is_word(secret[0]);
		word_after = slen < API_CHECK_SCRUB_WORD && api_check_is_word(hit[slen]) &&
			     api_check_is_word(secret[slen - 1]);
		memcpy(out + used, p, (size_t)(hit - p));
		used += (size_t)(hit - p);
		if (word_before || word_after) {
			out[used++] = *hit;
			p = hit + 1;
		} else {
			memcpy(out + used, API_CHECK_MASK, sizeof(API_CHECK_MASK) - 1);
			used += sizeof(API_CHECK_MASK) - 1;
			p = hit + slen;
		}
	}
	out[used] = '\0';
	return out;
}

cJSON *api_check_error(const char *field, int line, const char *code, const char *message)
{
	cJSON *e = cJSON_CreateObject();

	if (e == NULL)
		return NULL;
	if (field != NULL)
		cJSON_AddStringToObject(e, "field", field);
	else
		cJSON_AddNullToObject(e, "field");
	if (line > 0)
		cJSON_AddNumberToObject(e, "line", line);
	else
		cJSON_AddNullToObject(e, "line");
	cJSON_AddStringToObject(e, "code", code);
	cJSON_AddStringToObject(e, "message", message);
	return e;
}

/* One error of the worker's answer, scrubbed, with the line of its field. */
static cJSON *api_check_worker_error(const cJSON *item, const struct jobspec *spec)
{
	const char *field = cJSON_GetStringValue(cJSON_GetObjectItemCaseSensitive(item, "field"));
	const char *code = cJSON_GetStringValue(cJSON_GetObjectItemCaseSensitive(item, "code"));
	const char *message =
		cJSON_GetStringValue(cJSON_GetObjectItemCaseSensitive(item, "message"));
	char *clean_field = field != NULL ? api_check_scrub(field, spec->password) : NULL;
	char *clean_message = api_check_scrub(message != NULL && message[0] != '\0'
						      ? message
						      : "the check gave no reason",
					      spec->password);
	cJSON *e = NULL;

	if (clean_message != NULL && (field == NULL || clean_field != NULL))
		e = api_check_error(clean_field, field != NULL ? jobspec_line(spec, field) : 0,
				    code != NULL ? code : "other", clean_message);
	free(clean_field);
	free(clean_message);
	return e;
}

/* Parses the worker's answer into out.  Returns false when it printed no
 * answer; *valid is its verdict, *unreachable whether it could not reach the
 * database. */
static bool api_check_answer(const struct api_check_proc *p, const struct jobspec *spec,
			     struct api_check *out, bool *valid, bool *unreachable)
{
	const cJSON *item;
	cJSON *root;

	/* cJSON parses by recursion; this thread's stack is small. */
	if (p->outlen == 0 || api_json_depth(p->out, p->outlen) > API_JSON_DEPTH_MAX)
		return false;
	root = cJSON_ParseWithLength(p->out, p->outlen);
	if (!cJSON_IsObject(root)) {
		cJSON_Delete(root);
		return false;
	}
	*valid = cJSON_IsTrue(cJSON_GetObjectItemCaseSensitive(root, "valid"));
	cJSON_ArrayForEach(item, cJSON_GetObjectItemCaseSensitive(root, "errors")) {
		const char *code =
			cJSON_GetStringValue(cJSON_GetObjectItemCaseSensitive(item, "code"));

		if (code != NULL && strcmp(code, "unreachable") == 0)
			*unreachable = true;
		cJSON_AddItemToArray(out->errors, api_check_worker_error(item, spec));
	}
	cJSON_ArrayForEach(item, cJSON_GetObjectItemCaseSensitive(root, "statements")) {
		char *clean;

		if (!cJSON_IsString(item))
			continue;
		clean = api_check_scrub(item->valuestring, spec->password);
		if (clean != NULL)
			cJSON_AddItemToArray(out->statements, cJSON_CreateString(clean));
		free(clean);
	}
	cJSON_Delete(root);
	return true;
}

/* Whether the database was checked, from how the worker ended and what it
 * said; why (code, message) when it was not and the answer does not say. */
static bool api_check_verdict(const struct api_check_proc *p, bool answered, bool unreachable,
			      const char **code, char *why, size_t whylen)
{
	int status = p->reaped && WIFEXITED(p->wstatus) ? WEXITSTATUS(p->wstatus) : -1;

	*code = "other";
	if (p->timed_out) {
		*code = "unreachable";
		snprintf(why, whylen, "database check timed out after %d s",
			 API_CHECK_TIMEOUT_MS / 1000);
		return false;
	}
	if (p->too_large) {
		snprintf(why, whylen, "the database check printed more than %d bytes",
			 API_CHECK_OUTPUT_MAX);
		return false;
	}
	if (p->reaped && WIFSIGNALED(p->wstatus)) {
		snprintf(why, whylen, "the database check was killed by signal %d",
			 WTERMSIG(p->wstatus));
		return false;
	}
	if (status == WORKER_EXIT_RETRY || (answered && unreachable)) {
		if (!answered) {
			*code = "unreachable";
			snprintf(why, whylen, "the database cannot be reached");
		}
		return false;
	}
	if (!answered) {
		if (status >= 0)
			snprintf(why, whylen,
				 "the database check gave no answer (streamworker --check exited "
				 "with status %d)",
				 status);
		else
			snprintf(why, whylen, "the database check gave no answer");
		return false;
	}
	if (p->reaped && status != 0 && status != WORKER_EXIT_CONFIG) {
		snprintf(why, whylen, "the database check failed (streamworker --check exited "
				      "with status %d)",
			 status);
		return false;
	}
	return true;
}

void api_check_run(const char *worker_path, const struct jobspec *spec, int64_t job_id,
		   const char *job_name, struct api_check *out)
{
	struct api_check_proc p;
	char *input = resolve_worker_input(spec, job_id, job_name);
	char why[320] = "";
	const char *code = "other";
	bool answered = false, valid = false, unreachable = false;
	int64_t deadline;

	memset(&p, 0, sizeof(p));
	p.in_fd = p.out_fd = -1;
	memset(out, 0, sizeof(*out));
	out->errors = cJSON_CreateArray();
	out->statements = cJSON_CreateArray();
	if (input == NULL || out->errors == NULL || out->statements == NULL) {
		snprintf(why, sizeof(why), "out of memory");
		goto out;
	}
	if (worker_path == NULL || api_check_spawn(&p, worker_path) < 0) {
		snprintf(why, sizeof(why), "%s",
			 worker_path == NULL ? "no worker to check the job with" : p.err);
		goto out;
	}
	deadline = api_check_now_ms() + API_CHECK_TIMEOUT_MS;
	api_check_talk(&p, input, deadline);
	api_check_close_input(&p);
	api_check_reap(&p, deadline);
	close(p.out_fd);
	if (!p.timed_out && !p.too_large)
		answered = api_check_answer(&p, spec, out, &valid, &unreachable);
	out->database_checked =
		api_check_verdict(&p, answered, unreachable, &code, why, sizeof(why));
	out->valid = out->database_checked && valid && cJSON_GetArraySize(out->errors) == 0;
	/* Not valid always comes with a reason. */
	if (!out->valid && why[0] == '\0' && cJSON_GetArraySize(out->errors) == 0)
		snprintf(why, sizeof(why), "the database check failed without saying why");
out:
	if (why[0] != '\0') {
		log_warn("job %s: check: %s", job_name != NULL ? job_name : "(unnamed)", why);
		if (out->errors != NULL)
			cJSON_AddItemToArray(out->errors, api_check_error(NULL, 0, code, why));
	}
	if (input != NULL) {
		explicit_bzero(input, strlen(input));
		free(input);
	}
	free(p.out);
}

void api_check_free(struct api_check *chk)
{
	if (chk == NULL)
		return;
	cJSON_Delete(chk->errors);
	cJSON_Delete(chk->statements);
	chk->errors = chk->statements = NULL;
}
