#include "pgtls.h"

#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <signal.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/types.h>
#include <unistd.h>

#define PGTLS_PREFIX "streamworker-pgtls-"

/* The signals that end a process by default and that someone may send a
 * worker (the controller's SIGTERM, a terminal's SIGINT...). */
static const int pgtls_signals[] = { SIGTERM, SIGINT, SIGHUP, SIGQUIT };
#define PGTLS_NSIGNALS (sizeof(pgtls_signals) / sizeof(pgtls_signals[0]))

/* What the signal handler and the exit handler remove: copies of the paths
 * of the one set of files that exists, valid while pgtls_armed. */
static volatile sig_atomic_t pgtls_armed;
static char pgtls_live[4][PATH_MAX]; /* key, cert, rootcert, then the directory */
static struct sigaction pgtls_old[PGTLS_NSIGNALS];
static bool pgtls_atexit_set;

/* Async-signal-safe: unlink and rmdir only. */
static void pgtls_live_remove(void)
{
	for (int i = 0; i < 3; i++)
		if (pgtls_live[i][0] != '\0')
			unlink(pgtls_live[i]);
	if (pgtls_live[3][0] != '\0')
		rmdir(pgtls_live[3]);
}

static void pgtls_on_exit(void)
{
	if (pgtls_armed)
		pgtls_live_remove();
}

static void pgtls_on_signal(int sig)
{
	int saved = errno;
	const struct sigaction *old = NULL;
	struct sigaction dfl;

	for (size_t i = 0; i < PGTLS_NSIGNALS; i++)
		if (pgtls_signals[i] == sig)
			old = &pgtls_old[i];
	if (old == NULL || old->sa_handler == SIG_IGN) {
		errno = saved;
		return;
	}
	if (old->sa_handler != SIG_DFL) {
		/* The program's own handler (the job loop's sets a flag): it
		 * stops in order, and the files go when the connect returns. */
		if (old->sa_flags & SA_SIGINFO)
			old->sa_sigaction(sig, NULL, NULL);
		else
			old->sa_handler(sig);
		errno = saved;
		return;
	}
	/* The process dies of this signal: remove the files first. */
	if (pgtls_armed)
		pgtls_live_remove();
	memset(&dfl, 0, sizeof(dfl));
	dfl.sa_handler = SIG_DFL;
	sigemptyset(&dfl.sa_mask);
	sigaction(sig, &dfl, NULL);
	raise(sig); /* delivered when this handler returns */
	errno = saved;
}

static void pgtls_arm(const struct pgtls_files *f)
{
	struct sigaction sa;

	/* Armed already (a second set while one is live: nothing does that
	 * today): the live set stays the one tracked, and the handlers stay as
	 * they are, since saving ours as "the old ones" would make the handler
	 * call itself forever. */
	if (pgtls_armed)
		return;
	snprintf(pgtls_live[0], sizeof(pgtls_live[0]), "%s", f->key);
	snprintf(pgtls_live[1], sizeof(pgtls_live[1]), "%s", f->cert);
	snprintf(pgtls_live[2], sizeof(pgtls_live[2]), "%s", f->rootcert);
	snprintf(pgtls_live[3], sizeof(pgtls_live[3]), "%s", f->dir);
	if (!pgtls_atexit_set && atexit(pgtls_on_exit) == 0)
		pgtls_atexit_set = true;
	pgtls_armed = 1;
	memset(&sa, 0, sizeof(sa));
	sa.sa_handler = pgtls_on_signal;
	sigfillset(&sa.sa_mask);
	for (size_t i = 0; i < PGTLS_NSIGNALS; i++)
		if (sigaction(pgtls_signals[i], &sa, &pgtls_old[i]) < 0)
			pgtls_old[i].sa_handler = SIG_DFL;
}

static void pgtls_disarm(void)
{
	sigset_t all, saved;

	/* No handler may run between restoring the dispositions and forgetting
	 * the paths. */
	sigfillset(&all);
	pthread_sigmask(SIG_BLOCK, &all, &saved);
	for (size_t i = 0; i < PGTLS_NSIGNALS; i++)
		sigaction(pgtls_signals[i], &pgtls_old[i], NULL);
	pgtls_armed = 0;
	memset(pgtls_live, 0, sizeof(pgtls_live));
	pthread_sigmask(SIG_SETMASK, &saved, NULL);
}

/* $TMPDIR when it is an absolute path, else /tmp. */
static const char *pgtls_tmpdir(void)
{
	const char *t = getenv("TMPDIR");

	return t != NULL && t[0] == '/' && strlen(t) < PATH_MAX / 2 ? t : "/tmp";
}

/* Directories left by workers killed (SIGKILL) while they connected: of a
 * pid that no longer runs, owned by us. */
static void pgtls_remove_stale(const char *tmp)
{
	static const char *const names[] = { "root.crt", "client.crt", "client.key" };
	DIR *d = opendir(tmp);
	struct dirent *de;
	struct stat sb;
	char path[PATH_MAX];

	if (d == NULL)
		return;
	while ((de = readdir(d)) != NULL) {
		char *end;
		long pid;

		if (strncmp(de->d_name, PGTLS_PREFIX, strlen(PGTLS_PREFIX)) != 0)
			continue;
		pid = strtol(de->d_name + strlen(PGTLS_PREFIX), &end, 10);
		if (pid <= 0 || *end != '-' || (kill((pid_t)pid, 0) == 0 || errno != ESRCH))
			continue;
		if (snprintf(path, sizeof(path), "%s/%s", tmp, de->d_name) >= (int)sizeof(path) ||
		    lstat(path, &sb) < 0 || !S_ISDIR(sb.st_mode) || sb.st_uid != geteuid())
			continue;
		for (size_t i = 0; i < sizeof(names) / sizeof(names[0]); i++) {
			snprintf(path, sizeof(path), "%s/%s/%s", tmp, de->d_name, names[i]);
			unlink(path);
		}
		snprintf(path, sizeof(path), "%s/%s", tmp, de->d_name);
		rmdir(path);
	}
	closedir(d);
}

static int pgtls_write_one(const char *path, const char *text, const char *what, char *err, size_t errlen)
{
	size_t len = strlen(text), done = 0;
	int fd = open(path, O_WRONLY | O_CREAT | O_EXCL | O_NOFOLLOW | O_CLOEXEC, 0600);

	if (fd < 0) {
		snprintf(err, errlen, "cannot create a private file for %s: %s", what, strerror(errno));
		return -1;
	}
	while (done < len) {
		ssize_t n = write(fd, text + done, len - done);

		if (n < 0 && errno == EINTR)
			continue;
		if (n <= 0) {
			snprintf(err, errlen, "cannot write the private file for %s: %s", what,
				 n < 0 ? strerror(errno) : "short write");
			close(fd);
			return -1;
		}
		done += (size_t)n;
	}
	if (close(fd) < 0) {
		snprintf(err, errlen, "cannot write the private file for %s: %s", what, strerror(errno));
		return -1;
	}
	return 0;
}

int pgtls_files_write(const struct jobspec *spec, struct pgtls_files *f, char *err, size_t errlen)
{
	const char *tmp = pgtls_tmpdir();

	memset(f, 0, sizeof(*f));
	if (spec->sslrootcert == NULL && spec->sslcert == NULL && spec->sslkey == NULL)
		return 0;
	pgtls_remove_stale(tmp);
	snprintf(f->dir, sizeof(f->dir), "%s/" PGTLS_PREFIX "%ld-XXXXXX", tmp, (long)getpid());
	if (mkdtemp(f->dir) == NULL) {
		snprintf(err, errlen, "cannot create a private directory in %s for the TLS files: %s "
			 "(set TMPDIR to a writable directory)", tmp, strerror(errno));
		f->dir[0] = '\0';
		return -1;
	}
	if (spec->sslrootcert != NULL)
		snprintf(f->rootcert, sizeof(f->rootcert), "%s/root.crt", f->dir);
	if (spec->sslcert != NULL)
		snprintf(f->cert, sizeof(f->cert), "%s/client.crt", f->dir);
	if (spec->sslkey != NULL)
		snprintf(f->key, sizeof(f->key), "%s/client.key", f->dir);
	pgtls_arm(f);
	if ((f->rootcert[0] != '\0' && pgtls_write_one(f->rootcert, spec->sslrootcert, "SSLROOTCERT", err, errlen) < 0) ||
	    (f->cert[0] != '\0' && pgtls_write_one(f->cert, spec->sslcert, "SSLCERT", err, errlen) < 0) ||
	    (f->key[0] != '\0' && pgtls_write_one(f->key, spec->sslkey, "SSLKEY", err, errlen) < 0)) {
		pgtls_files_remove(f);
		return -1;
	}
	return 0;
}

void pgtls_files_remove(struct pgtls_files *f)
{
	if (f->dir[0] == '\0')
		return;
	if (f->key[0] != '\0')
		unlink(f->key);
	if (f->cert[0] != '\0')
		unlink(f->cert);
	if (f->rootcert[0] != '\0')
		unlink(f->rootcert);
	rmdir(f->dir);
	pgtls_disarm();
	memset(f, 0, sizeof(*f));
}

/* Replaces every occurrence of from in msg by to. */
static void pgtls_replace(char *msg, size_t msglen, const char *from, const char *to)
{
	size_t flen = strlen(from), tlen = strlen(to);
	char *p = msg;

	(void)msglen; /* the text only shrinks */
	if (flen == 0 || tlen > flen)
		return;
	while ((p = strstr(p, from)) != NULL) {
		size_t rest = strlen(p + flen);

		memmove(p + tlen, p + flen, rest + 1);
		memcpy(p, to, tlen);
		p += tlen;
	}
}

void pgtls_files_unname(const struct pgtls_files *f, char *msg, size_t msglen)
{
	char quoted[PATH_MAX + 2];

	if (f->rootcert[0] != '\0') {
		snprintf(quoted, sizeof(quoted), "\"%s\"", f->rootcert);
		pgtls_replace(msg, msglen, quoted, "SSLROOTCERT");
	}
	if (f->cert[0] != '\0') {
		snprintf(quoted, sizeof(quoted), "\"%s\"", f->cert);
		pgtls_replace(msg, msglen, quoted, "SSLCERT");
	}
	if (f->key[0] != '\0') {
		snprintf(quoted, sizeof(quoted), "\"%s\"", f->key);
		pgtls_replace(msg, msglen, quoted, "SSLKEY");
	}
}
