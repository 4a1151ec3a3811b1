#include "workerenv.h"

#include <pthread.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

extern char **environ;

static pthread_once_t workerenv_once = PTHREAD_ONCE_INIT;
static char **workerenv_list;

bool worker_env_is_secret(const char *name)
{
	static const char *const words[] = { "PASSWORD", "PASSWD", "SECRET", "TOKEN", "CREDENTIAL" };
	size_t len = strcspn(name, "=");

	if (len == strlen("STREAMSERVER_STORE") && strncmp(name, "STREAMSERVER_STORE", len) == 0)
		return true;
	for (size_t w = 0; w < sizeof(words) / sizeof(words[0]); w++) {
		size_t wl = strlen(words[w]);
		for (size_t i = 0; i + wl <= len; i++)
			if (strncasecmp(name + i, words[w], wl) == 0)
				return true;
	}
	return false;
}

bool worker_env_is_libpq(const char *name)
{
	/* PGHOST, PGSSLMODE, PGSSLROOTCERT, PGPASSFILE, PGSERVICE, PGOPTIONS...:
	 * libpq reads PG followed by capitals; PG_BINDIR and the like it does not. */
	return name[0] == 'P' && name[1] == 'G' && name[2] >= 'A' && name[2] <= 'Z';
}

static void workerenv_build(void)
{
	size_t n = 0, k = 0;

	while (environ != NULL && environ[n] != NULL)
		n++;
	workerenv_list = calloc(n + 1, sizeof(*workerenv_list));
	if (workerenv_list == NULL)
		return;
	for (size_t i = 0; i < n; i++)
		if (!worker_env_is_secret(environ[i]) && !worker_env_is_libpq(environ[i]))
			workerenv_list[k++] = environ[i];
}

char *const *worker_environ(void)
{
	static char *empty[] = { NULL };

	pthread_once(&workerenv_once, workerenv_build);
	return workerenv_list != NULL ? workerenv_list : empty;
}
