#include "log.h"

#include <pthread.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include "secret.h"
#include "utf8.h"

#define LOG_MSG_MAX 2048
/* A JSON line escapes each byte of the message to at most 6 ("\u001f"). */
#define LOG_LINE_MAX (6 * LOG_MSG_MAX + 256)

static char log_tag[64] = "streamserver";
static char log_component[16] = "worker";
static enum log_level log_threshold = LOG_INFO;
static enum log_format log_fmt = LOG_TEXT;
static int64_t log_job_id;
static bool log_journal; /* "<N>" priority prefixes for journald */
static pthread_mutex_t log_lock = PTHREAD_MUTEX_INITIALIZER;
static pthread_once_t log_env_once = PTHREAD_ONCE_INIT;

static void log_env_read(void);

bool log_format_parse(const char *name, enum log_format *out)
{
	if (name != NULL && strcmp(name, "text") == 0)
		*out = LOG_TEXT;
	else if (name != NULL && strcmp(name, "json") == 0)
		*out = LOG_JSON;
	else
		return false;
	return true;
}

bool log_journal_stream_is(const char *value, int fd)
{
	unsigned long long dev, ino;
	struct stat st;
	char *end;

	if (value == NULL || *value < '0' || *value > '9')
		return false;
	dev = strtoull(value, &end, 10);
	if (*end != ':' || end[1] < '0' || end[1] > '9')
		return false;
	ino = strtoull(end + 1, &end, 10);
	if (*end != '\0' || fstat(fd, &st) < 0)
		return false;
	/* The variable is inherited by everything the service starts; only a
	 * process whose standard error is still that stream writes to the
	 * journal (not one whose stderr was redirected to a file). */
	return (unsigned long long)st.st_dev == dev && (unsigned long long)st.st_ino == ino;
}

void log_set_journal(bool on)
{
	pthread_once(&log_env_once, log_env_read);
	log_journal = on;
}

/* The controller hands its format to its workers through the environment;
 * an unknown value leaves text (the controller has already refused it). */
static void log_env_read(void)
{
	enum log_format f;

	if (log_format_parse(getenv("STREAMSERVER_LOG_FORMAT"), &f))
		log_fmt = f;
	log_journal = log_journal_stream_is(getenv("JOURNAL_STREAM"), STDERR_FILENO);
}

void log_set_tag(const char *tag)
{
	snprintf(log_tag, sizeof(log_tag), "%s", tag);
}

void log_set_component(const char *component)
{
	snprintf(log_component, sizeof(log_component), "%s", component);
}

void log_set_level(enum log_level level)
{
	log_threshold = level;
}

void log_set_format(enum log_format format)
{
	/* After the environment, so that a later first line does not undo it. */
	pthread_once(&log_env_once, log_env_read);
	log_fmt = format;
}

void log_set_job(int64_t job_id)
{
	log_job_id = job_id > 0 ? job_id : 0;
	if (log_job_id > 0)
		snprintf(log_tag, sizeof(log_tag), "job %lld", (long long)log_job_id);
}

/* Appends to buf[*used..cap), keeping room for the NUL; false when full. */
static bool log_put(char *buf, size_t cap, size_t *used, const char *s, size_t n)
{
	if (*used + n + 1 > cap)
		return false;
	memcpy(buf + *used, s, n);
	*used += n;
	buf[*used] = '\0';
	return true;
}

/* msg as a JSON string (with its quotes): control characters escaped,
 * invalid UTF-8 replaced by U+FFFD, so that every line parses.  Stops
 * before a character that does not fit, leaving room for the closing quote. */
static void log_json_string(char *buf, size_t cap, size_t *used, const char *msg)
{
	const unsigned char *s = (const unsigned char *)msg;
	size_t len = strlen(msg), i = 0;
	char esc[8];

	if (cap < *used + 3)
		return;
	log_put(buf, cap, used, "\"", 1);
	cap--; /* the closing quote always fits */
	while (i < len) {
		size_t n = utf8_seq_len((const char *)s + i, len - i);
		bool ok;

		if (n == 0) {
			ok = log_put(buf, cap, used, "\\ufffd", 6);
			n = 1;
		} else if (s[i] == '"' || s[i] == '\\') {
			esc[0] = '\\';
			esc[1] = (char)s[i];
			ok = log_put(buf, cap, used, esc, 2);
		} else if (s[i] == '\n') {
			ok = log_put(buf, cap, used, "\\n", 2);
		} else if (s[i] == '\t') {
			ok = log_put(buf, cap, used, "\\t", 2);
		} else if (s[i] < 0x20 || s[i] == 0x7f) {
			snprintf(esc, sizeof(esc), "\\u%04x", s[i]);
			ok = log_put(buf, cap, used, esc, 6);
		} else {
			ok = log_put(buf, cap, used, (const char *)s + i, n);
		}
		if (!ok)
			break;
		i += n;
	}
	cap++;
	log_put(buf, cap, used, "\"", 1);
}

void log_format_line(char *buf, size_t buflen, enum log_level level, int64_t job_id,
		     const char *msg)
{
	static const char *const names[] = { "DEBUG", "INFO", "WARN", "ERROR" };
	/* syslog's priorities (sd-daemon.h's SD_DEBUG, SD_INFO, SD_WARNING, SD_ERR). */
	static const char *const prio[] = { "<7>", "<6>", "<4>", "<3>" };
	char stamp[40], head[160];
	struct timespec ts;
	struct tm tm;
	size_t used = 0;
	int64_t job = job_id > 0 ? job_id : log_job_id;
	int n;

	if (buflen == 0)
		return;
	buf[0] = '\0';
	pthread_once(&log_env_once, log_env_read);
	clock_gettime(CLOCK_REALTIME, &ts);
	gmtime_r(&ts.tv_sec, &tm);
	n = (int)strftime(stamp, sizeof(stamp), "%Y-%m-%dT%H:%M:%S", &tm);
	snprintf(stamp + n, sizeof(stamp) - (size_t)n, ".%03ldZ", ts.tv_nsec / 1000000L);
	if (log_journal)
		log_put(buf, buflen, &used, prio[level], 3);

	if (log_fmt == LOG_JSON) {
		n = snprintf(head, sizeof(head), "{\"ts\":\"%s\",\"level\":\"%s\",\"component\":",
			     stamp, names[level]);
		log_put(buf, buflen, &used, head, (size_t)n);
		log_json_string(buf, buflen, &used, log_component);
		if (job > 0) {
			n = snprintf(head, sizeof(head), ",\"job_id\":%lld", (long long)job);
			log_put(buf, buflen, &used, head, (size_t)n);
		}
		log_put(buf, buflen, &used, ",\"msg\":", 7);
		/* room for the closing brace */
		log_json_string(buf, buflen - 1, &used, msg);
		log_put(buf, buflen, &used, "}", 1);
		return;
	}
	/* A process working for one job names it in its tag ("job 7"); a line
	 * about another job says which. */
	if (job_id > 0 && job_id != log_job_id)
		n = snprintf(head, sizeof(head), "%s %s [%s] job=%lld ", stamp, names[level], log_tag,
			     (long long)job_id);
	else
		n = snprintf(head, sizeof(head), "%s %s [%s] ", stamp, names[level], log_tag);
	log_put(buf, buflen, &used, head, (size_t)n < sizeof(head) ? (size_t)n : sizeof(head) - 1);
	/* One event, one line: no line breaks or control characters from the
	 * message. */
	for (const unsigned char *p = (const unsigned char *)msg; *p && used + 1 < buflen; p++) {
		char ch = (char)*p;

		if (*p == '\n' || *p == '\r')
			ch = ' ';
		else if ((*p < 0x20 && *p != '\t') || *p == 0x7f)
			ch = '?';
		buf[used++] = ch;
	}
	buf[used] = '\0';
}

static void log_vwrite(enum log_level level, int64_t job_id, const char *fmt, va_list ap)
{
	/* Per thread, off the stack: civetweb's threads have small stacks. */
	static _Thread_local char msg[LOG_MSG_MAX];
	static _Thread_local char clean[LOG_MSG_MAX];
	static _Thread_local char line[LOG_LINE_MAX];

	if (level < log_threshold)
		return;
	vsnprintf(msg, sizeof(msg), fmt, ap);
	/* Library messages (librdkafka, libpq) may quote the configuration. */
	secret_scrub_registered(msg, clean, sizeof(clean));
	log_format_line(line, sizeof(line), level, job_id, clean);
	/* One write per line so that lines from the controller and its workers,
	 * which share standard error, do not interleave. */
	pthread_mutex_lock(&log_lock);
	fprintf(stderr, "%s\n", line);
	fflush(stderr);
	pthread_mutex_unlock(&log_lock);
}

void log_msg(enum log_level level, const char *fmt, ...)
{
	va_list ap;

	va_start(ap, fmt);
	log_vwrite(level, 0, fmt, ap);
	va_end(ap);
}

void log_job(enum log_level level, int64_t job_id, const char *fmt, ...)
{
	va_list ap;

	va_start(ap, fmt);
	log_vwrite(level, job_id, fmt, ap);
	va_end(ap);
}
