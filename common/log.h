/* Logging: one line per event on standard error (doc/operations.md "Logs").
 *
 * Text:  2026-11-24T07:30:00.123Z INFO [controller] job=7 msg
 * JSON:  {"ts":"...","level":"INFO","component":"controller","job_id":7,"msg":"..."}
 *
 * The format comes from log_set_format(), or else from the environment
 * variable STREAMSERVER_LOG_FORMAT ("text" or "json"), read at the first
 * line: the controller sets it, and its workers inherit it.  A line is about
 * a job when it goes through log_job(), or when the whole process works for
 * one job (log_set_job(), the worker).  Never pass a secret: messages are
 * written as they are, but for the secrets registered with secret_register
 * (common/secret.h), which are masked. */
#ifndef SS_LOG_H
#define SS_LOG_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

enum log_level { LOG_DEBUG = 0, LOG_INFO, LOG_WARN, LOG_ERROR };
enum log_format { LOG_TEXT = 0, LOG_JSON };

/* The tag printed on every text line; the string is copied. */
void log_set_tag(const char *tag);
/* "controller" or "worker" in JSON lines; default "worker" (every process
 * but the controller is a worker or one of its tool modes).  Copied. */
void log_set_component(const char *component);
void log_set_level(enum log_level level);
void log_set_format(enum log_format format);
/* "text" or "json" to *out; false for anything else. */
bool log_format_parse(const char *name, enum log_format *out);

/* Every later line of this process is about job_id (0: none): the tag
 * becomes "job <id>" and JSON lines carry "job_id". */
void log_set_job(int64_t job_id);

void log_msg(enum log_level level, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
/* A line about one job (job_id > 0; 0 is like log_msg): text lines get
 * "job=<id> " before the message, JSON lines "job_id". */
void log_job(enum log_level level, int64_t job_id, const char *fmt, ...)
	__attribute__((format(printf, 3, 4)));

/* Under systemd (README "Logs"): when standard error is the journal's
 * stream, each line starts with its syslog priority as sd-daemon(3) has it
 * ("<3>" error, "<4>" warning, "<6>" info, "<7>" debug), which journald
 * strips and keeps as the entry's PRIORITY, so that `journalctl -p err`
 * selects the errors.  Detected at the first line: JOURNAL_STREAM
 * ("DEVICE:INODE", set by systemd for the service) names the stream that
 * fd 2 still is; workers inherit the variable and the stream. */
bool log_journal_stream_is(const char *value, int fd);
/* Forces the prefixes on or off (tests). */
void log_set_journal(bool on);

/* Formats one line as log_msg would, into buf (NUL-terminated, no newline;
 * cut at buflen).  For tests. */
void log_format_line(char *buf, size_t buflen, enum log_level level, int64_t job_id,
		     const char *msg);

#define log_debug(...) log_msg(LOG_DEBUG, __VA_ARGS__)
#define log_info(...) log_msg(LOG_INFO, __VA_ARGS__)
#define log_warn(...) log_msg(LOG_WARN, __VA_ARGS__)
#define log_error(...) log_msg(LOG_ERROR, __VA_ARGS__)

#endif
