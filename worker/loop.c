#include "loop.h"

#include <errno.h>
#include <fcntl.h>
#include <pthread.h>
#include <signal.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/prctl.h>
#include <time.h>
#include <unistd.h>

#include <cjson/cJSON.h>

#include "assignment.h"
#include "consumer.h"
#include "copybuf.h"
#include "decode.h"
#include "exitcodes.h"
#include "jobspec.h"
#include "log.h"
#include "loop_int.h"
#include "proto.h"
#include "sink_pg.h"
#include "wtypes.h"

/* Messages taken from librdkafka per call. */
#define LOOP_POLL_MAX 4096
/* Poll at least this often, so SIGTERM and batch deadlines are seen quickly. */
#define LOOP_POLL_MS 100
/* ...and this often while a batch is being written, to report it soon after. */
#define LOOP_FLIGHT_POLL_MS 5
/* A batch also closes when its COPY data reaches this size... */
#define LOOP_FLUSH_BYTES ((size_t)16 << 20)
/* ...and the buffer never grows past this.  A row that does not fit in what
 * is left closes the batch first; only a row larger than the whole buffer
 * (KEY + VALUE + META, escaped, over 256 MiB) is rejected. */
#define LOOP_COPY_MAX ((size_t)256 << 20)
/* Bounds the per-row bookkeeping whatever COMMIT.MAX_ROW says. */
#define LOOP_BATCH_ROWS_MAX 1000000
/* While the writer is busy and more messages are already waiting (a
 * backlog), the open batch grows past COMMIT.MAX_ROW in segments of MAX_ROW
 * rows, up to this many rows: one transaction (one progress update, one
 * COMMIT, one hand-over) for several writes of at most MAX_ROW rows each
 * (sink_batch.seg_rows).  A caught-up job is not affected: its batches close
 * at MAX_ROW or MINIMAL_INTERVAL as before.  Measured on a durable
 * PostgreSQL: see README.md, "Performance". */
#define LOOP_TX_ROWS 10000
#define LOOP_STATS_MS 30000

static volatile sig_atomic_t loop_stop;

static void loop_on_signal(int sig)
{
	(void)sig;
	loop_stop = 1;
}

/* ERROR_LIMIT as a percentage is judged only once the job has consumed this
 * many messages since the user started it: one bad message among the first
 * few would otherwise be 100%. */
#define LOOP_PERCENT_MIN_MESSAGES 100



int64_t loop_now_ms(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

static const char *loop_class_name(int cls)
{
	return cls == WERR_DATA ? "data" : cls == WERR_FATAL ? "fatal" : "retriable";
}

static int loop_exit_code(int cls)
{
	return cls == WERR_DATA ? WORKER_EXIT_DATA : cls == WERR_FATAL ? WORKER_EXIT_CONFIG : WORKER_EXIT_RETRY;
}

/* A status write failing with EPIPE means the controller is gone: stop,
 * nobody is listening.  Any other failure (fd 3 inherited from a shell, not
 * a pipe) only turns status lines off. */
void loop_status_result(struct worker *w, int rc)
{
	if (rc == 0 || w->status_fd < 0)
		return;
	if (errno == EPIPE) {
		w->controller_gone = true;
		loop_stop = 1;
		log_warn("the controller is gone (status pipe closed); stopping");
	} else {
		log_warn("cannot write status lines to fd %d (%s); continuing without them", w->status_fd,
			 strerror(errno));
	}
	w->status_fd = -1;
}

static int loop_fail(struct worker *w, int cls, const char *msg)
{
	log_error("%s", msg);
	if (w->status_fd >= 0)
		loop_status_result(w, proto_send_error(w->status_fd, loop_class_name(cls), msg));
	return loop_exit_code(cls);
}

/* If the worker was started by hand without fd 3, keep fd 3 taken by
 * /dev/null so no socket or file lands there and receives status lines. */
static int loop_status_fd_setup(void)
{
	int fd;

	if (fcntl(WORKER_STATUS_FD, F_GETFD) >= 0)
		return WORKER_STATUS_FD;
	fd = open("/dev/null", O_WRONLY | O_CLOEXEC);
	if (fd >= 0 && fd != WORKER_STATUS_FD) {
		dup2(fd, WORKER_STATUS_FD);
		close(fd);
	}
	return WORKER_STATUS_FD;
}

static int loop_signals_setup(void)
{
	struct sigaction sa;

	memset(&sa, 0, sizeof(sa));
	sa.sa_handler = loop_on_signal;
	sigemptyset(&sa.sa_mask);
	if (sigaction(SIGTERM, &sa, NULL) < 0 || sigaction(SIGINT, &sa, NULL) < 0)
		return -1;
	/* A dead controller shows up as EPIPE on the status pipe instead. */
	sa.sa_handler = SIG_IGN;
	return sigaction(SIGPIPE, &sa, NULL);
}

int loop_read_stdin(const volatile sig_atomic_t *stop, char **out, size_t *outlen, char *err, size_t errlen)
{
	size_t len = 0, cap = 65536;
	char *buf = malloc(cap), *p;
	ssize_t n;

	*out = NULL;
	if (buf == NULL)
		goto oom;
	for (;;) {
		if (len == cap) {
			if (cap >= LOOP_STDIN_MAX) {
				snprintf(err, errlen, "the job on standard input is larger than %zu bytes",
					 LOOP_STDIN_MAX);
				goto fail;
			}
			cap *= 2;
			if ((p = realloc(buf, cap)) == NULL)
				goto oom;
			buf = p;
		}
		n = read(STDIN_FILENO, buf + len, cap - len);
		if (n < 0 && errno == EINTR) {
			if (stop != NULL && *stop) {
				snprintf(err, errlen, "stopped while reading the job");
				goto fail;
			}
			continue;
		}
		if (n < 0) {
			snprintf(err, errlen, "reading the job from standard input: %s", strerror(errno));
			goto fail;
		}
		if (n == 0)
			break;
		len += (size_t)n;
	}
	*out = buf;
	*outlen = len;
	return 0;
oom:
	snprintf(err, errlen, "out of memory");
fail:
	free(buf);
	return -1;
}

static int64_t loop_json_count(const cJSON *doc, const char *name)
{
	const cJSON *v = cJSON_GetObjectItemCaseSensitive(doc, name);

	return cJSON_IsNumber(v) && v->valuedouble > 0 ? (int64_t)v->valuedouble : 0;
}

/* {"job_id":N,"job_name":"...","config":"<YAML>"} -> w->job_id, job_name, spec */
static int loop_parse_job(struct worker *w, const char *text, size_t len, char *err, size_t errlen)
{
	static struct js_errors errs; /* large; one job per process */
	const cJSON *id, *name, *config;
	cJSON *doc = cJSON_ParseWithLength(text, len);
	int rc = -1;

	if (doc == NULL || !cJSON_IsObject(doc)) {
		snprintf(err, errlen, "standard input is not a JSON object {\"job_id\", \"job_name\", \"config\"}");
		goto out;
	}
	id = cJSON_GetObjectItemCaseSensitive(doc, "job_id");
	name = cJSON_GetObjectItemCaseSensitive(doc, "job_name");
	config = cJSON_GetObjectItemCaseSensitive(doc, "config");
	if (!cJSON_IsNumber(id) || !cJSON_IsString(name) || name->valuestring[0] == '\0' ||
	    !cJSON_IsString(config)) {
		snprintf(err, errlen, "the job on standard input needs job_id (number), job_name and config (strings)");
		goto out;
	}
	w->job_id = (int64_t)id->valuedouble;
	w->task = (int)loop_json_count(doc, "task");
	w->tasks = (int)loop_json_count(doc, "tasks");
	if (w->tasks < 1)
		w->tasks = 1;
	if (w->task >= w->tasks) {
		snprintf(err, errlen, "task %d of %d does not exist", w->task, w->tasks);
		goto out;
	}
	w->messages_before = loop_json_count(doc, "messages_before");
	w->rejected_before = loop_json_count(doc, "rejected_before");
	w->job_name = strdup(name->valuestring);
	if (w->job_name == NULL) {
		snprintf(err, errlen, "out of memory");
		goto out;
	}
	memset(&errs, 0, sizeof(errs));
	if (jobspec_parse_yaml(config->valuestring, strlen(config->valuestring), &w->spec, &errs) < 0) {
		char msg[1536];
		js_errors_format(&errs, msg, sizeof(msg));
		snprintf(err, errlen, "invalid job configuration: %s", msg);
		goto out;
	}
	/* From here on no log or status line may carry one of them. */
	if (jobspec_register_secrets(w->spec, err, errlen) < 0)
		goto out;
	memset(&errs, 0, sizeof(errs));
	if (jobspec_validate(w->spec, &errs) < 0) {
		char msg[1536];
		js_errors_format(&errs, msg, sizeof(msg));
		snprintf(err, errlen, "invalid job configuration: %s", msg);
		goto out;
	}
	rc = 0;
out:
	cJSON_Delete(doc);
	return rc;
}

void loop_batch_reset(struct worker *w)
{
	size_t i;

	copybuf_reset(&w->copy);
	for (i = 0; i < w->nrows; i++) {
		free((char *)w->msgs[i].error);
		rd_kafka_message_destroy(w->kms[i]);
	}
	w->nrows = 0;
	for (i = 0; i < w->npartitions; i++)
		w->parts[i].first = w->parts[i].next = -1;
	w->batch_start_ms = 0;
}

static int loop_batch_init(struct worker *w, char *err, size_t errlen)
{
	w->max_row = w->spec->commit_max_row > 0 ? w->spec->commit_max_row : 500;
	if (w->max_row > LOOP_BATCH_ROWS_MAX)
		w->max_row = LOOP_BATCH_ROWS_MAX;
	w->tx_rows = w->max_row >= LOOP_TX_ROWS ? w->max_row : LOOP_TX_ROWS / w->max_row * w->max_row;
	copybuf_init(&w->copy, LOOP_COPY_MAX);
	w->parts = calloc(w->npartitions ? w->npartitions : 1, sizeof(*w->parts));
	if (w->parts == NULL) {
		snprintf(err, errlen, "out of memory");
		return WERR_RETRY;
	}
	for (size_t i = 0; i < w->npartitions; i++)
		w->parts[i].done = w->parts[i].expect = w->parts[i].redo = -1;
	loop_batch_reset(w);
	return WERR_OK;
}

ssize_t loop_part_index(const struct worker *w, int32_t partition)
{
	size_t lo = 0, hi = w->npartitions;

	while (lo < hi) {
		size_t mid = lo + (hi - lo) / 2;
		if (w->partitions[mid] == partition)
			return (ssize_t)mid;
		if (w->partitions[mid] < partition)
			lo = mid + 1;
		else
			hi = mid;
	}
	return -1;
}

/* "partition 0 offsets 100..599, partition 2 offsets 7..9" */
static void loop_batch_ranges(const struct worker *w, const struct loop_part *parts, char *buf, size_t buflen)
{
	size_t i, off = 0;

	buf[0] = '\0';
	for (i = 0; i < w->npartitions && off + 1 < buflen; i++) {
		int n;
		if (parts[i].first < 0)
			continue;
		n = snprintf(buf + off, buflen - off, "%spartition %d offsets %lld..%lld", off ? ", " : "",
			     (int)w->partitions[i], (long long)parts[i].first, (long long)parts[i].next - 1);
		if (n < 0)
			break;
		off += (size_t)n;
	}
}

/* ERROR_LIMIT, over the messages and rejections since the user started the
 * job.  A count N fails the job at the N-th rejected message (0: at the
 * first); a percentage once the rejected share reaches it, judged after
 * LOOP_PERCENT_MIN_MESSAGES messages. */
static bool loop_limit_reached(const struct worker *w)
{
	int64_t messages = w->messages_before + w->total_messages, rejected = w->rejected_before + w->total_rejected;

	if (rejected == 0)
		return false;
	if (!w->spec->error_limit_percent)
		return rejected >= w->spec->error_limit;
	return messages >= LOOP_PERCENT_MIN_MESSAGES && rejected * 100 >= w->spec->error_limit * messages;
}

static int64_t loop_elapsed_ms(int64_t since)
{
	return loop_now_ms() - since;
}

/* The writer thread: writes each handed-over batch (sink_pg_write_batch: its
 * rows, its rejected messages to the error table and its offsets). */
static void *loop_writer(void *arg)
{
	struct worker *w = arg;
	struct loop_flight *f = &w->flight;

	pthread_mutex_lock(&f->mu);
	for (;;) {
		struct sink_batch b;
		int64_t started;

		while (!f->quit && !(f->busy && !f->done))
			pthread_cond_wait(&f->cv, &f->mu);
		if (f->quit)
			break;
		pthread_mutex_unlock(&f->mu);
		b.topic = w->spec->topic;
		b.copy_data = f->copy.data;
		b.copy_len = f->copy.len;
		b.msgs = f->msgs;
		b.nmsgs = f->nrows;
		b.seg_rows = (size_t)w->max_row;
		b.progress = f->commit;
		b.nprogress = f->ncommit;
		started = loop_now_ms();
		f->rc = sink_pg_write_batch(w->sink, &b, &f->res, f->err, sizeof(f->err));
		f->duration_ms = loop_elapsed_ms(started);
		pthread_mutex_lock(&f->mu);
		f->done = true;
		pthread_cond_broadcast(&f->cv);
	}
	pthread_mutex_unlock(&f->mu);
	return NULL;
}

static int loop_flight_init(struct worker *w, char *err, size_t errlen)
{
	struct loop_flight *f = &w->flight;
	sigset_t all, old;
	int e;

	copybuf_init(&f->copy, LOOP_COPY_MAX);
	f->parts = calloc(w->npartitions ? w->npartitions : 1, sizeof(*f->parts));
	f->commit = calloc(w->npartitions ? w->npartitions : 1, sizeof(*f->commit));
	if (f->parts == NULL || f->commit == NULL) {
		snprintf(err, errlen, "out of memory");
		return WERR_RETRY;
	}
	pthread_mutex_init(&f->mu, NULL);
	pthread_cond_init(&f->cv, NULL);
	/* Signals go to the loop's thread, which polls loop_stop. */
	sigfillset(&all);
	pthread_sigmask(SIG_BLOCK, &all, &old);
	e = pthread_create(&f->thread, NULL, loop_writer, w);
	pthread_sigmask(SIG_SETMASK, &old, NULL);
	if (e != 0) {
		snprintf(err, errlen, "cannot start the writer thread: %s", strerror(e));
		return WERR_RETRY;
	}
	f->started = true;
	return WERR_OK;
}

/* Gives the in-flight batch's messages back to librdkafka. */
static void loop_flight_reset(struct loop_flight *f)
{
	size_t i;

	copybuf_reset(&f->copy);
	for (i = 0; i < f->nrows; i++) {
		free((char *)f->msgs[i].error);
		rd_kafka_message_destroy(f->kms[i]);
	}
	f->nrows = 0;
	/* The writer reads these under mu after any wake-up. */
	if (f->started)
		pthread_mutex_lock(&f->mu);
	f->busy = false;
	f->done = false;
	if (f->started)
		pthread_mutex_unlock(&f->mu);
}

static void loop_flight_free(struct worker *w)
{
	struct loop_flight *f = &w->flight;

	if (f->started) {
		pthread_mutex_lock(&f->mu);
		while (f->busy && !f->done) /* never leave it inside a write */
			pthread_cond_wait(&f->cv, &f->mu);
		f->quit = true;
		pthread_cond_broadcast(&f->cv);
		pthread_mutex_unlock(&f->mu);
		pthread_join(f->thread, NULL);
		pthread_mutex_destroy(&f->mu);
		pthread_cond_destroy(&f->cv);
		f->started = false;
	}
	loop_flight_reset(f);
	copybuf_free(&f->copy);
	free(f->msgs);
	free(f->kms);
	free(f->parts);
	free(f->commit);
}

/* Waits for the batch in flight, if any, and takes its result: status line,
 * Kafka group offsets, totals, ERROR_LIMIT. */
int loop_collect(struct worker *w, char *err, size_t errlen)
{
	struct loop_flight *f = &w->flight;
	const struct sink_batch_result *res = &f->res;
	char ranges[512];
	int64_t messages = (int64_t)f->nrows;
	size_t i;
	int rc;

	if (!f->busy)
		return WERR_OK;
	pthread_mutex_lock(&f->mu);
	while (!f->done)
		pthread_cond_wait(&f->cv, &f->mu);
	pthread_mutex_unlock(&f->mu);
	if (f->rc == WERR_FENCED) {
		/* Rolled back: read these again unless the database says otherwise. */
		for (i = 0; i < w->npartitions; i++)
			if (f->parts[i].first >= 0 && (w->parts[i].redo < 0 || f->parts[i].first < w->parts[i].redo))
				w->parts[i].redo = f->parts[i].first;
		snprintf(err, errlen, "%s", f->err);
		loop_flight_reset(f);
		return WERR_FENCED;
	}
	if (f->rc != WERR_OK) {
		loop_batch_ranges(w, f->parts, ranges, sizeof(ranges));
		snprintf(err, errlen, "batch of %zu messages (topic %s %s): %s", f->nrows, w->spec->topic, ranges,
			 f->err);
		rc = f->rc;
		loop_flight_reset(f);
		return rc;
	}
	log_debug("batch committed: %lld messages, %lld rows, %lld deleted, %lld rejected, %zu bytes, %lld ms",
		  (long long)messages, (long long)res->rows, (long long)res->deleted, (long long)res->rejected,
		  f->copy.len, (long long)f->duration_ms);
	for (i = 0; i < w->npartitions; i++)
		if (f->parts[i].first >= 0)
			w->parts[i].done = f->parts[i].next;
	if (w->status_fd >= 0) {
		struct proto_batch pb = { .messages = messages,
					  .rows = res->rows,
					  .updated = res->updated,
					  .rejected = res->rejected,
					  .duration_ms = f->duration_ms,
					  .deleted = res->deleted };

		for (i = 0; i < f->nrows; i++)
			pb.tombstones_skipped += f->msgs[i].skip ? 1 : 0;
		loop_status_result(w, proto_send_batch(w->status_fd, &pb));
		if (w->total_batches == 0)
			w->lag_sent_ms = 0; /* the first lag report goes out now */
	}
	consumer_commit_async(w->consumer, f->commit, f->ncommit);
	w->total_rows += res->rows;
	w->total_batches++;
	w->total_messages += messages;
	w->total_rejected += res->rejected;
	w->stats_rows += res->rows;
	w->stats_batches++;
	loop_flight_reset(f);
	if (res->rejected > 0 && loop_limit_reached(w)) {
		const struct jobspec *spec = w->spec;
		snprintf(err, errlen,
			 "ERROR_LIMIT %lld%s reached: %lld rows rejected of %lld messages since the job started "
			 "(first in the last batch: %s); see %s.streamserver_errors (job_name = '%s')",
			 (long long)spec->error_limit, spec->error_limit_percent ? "%" : "",
			 (long long)(w->rejected_before + w->total_rejected),
			 (long long)(w->messages_before + w->total_messages), res->first_error,
			 spec->metadata_schema ? spec->metadata_schema : spec->schema ? spec->schema : "public",
			 w->job_name);
		return WERR_DATA;
	}
	return WERR_OK;
}

/* Whether the batch in flight is written and waits to be collected. */
static bool loop_flight_done(struct loop_flight *f)
{
	bool done;

	if (!f->busy)
		return false;
	pthread_mutex_lock(&f->mu);
	done = f->done;
	pthread_mutex_unlock(&f->mu);
	return done;
}

/* Hands the open batch to the writer thread, after collecting the one before
 * it; the loop goes on reading into the emptied buffers. */
int loop_flush(struct worker *w, char *err, size_t errlen)
{
	struct loop_flight *f = &w->flight;
	struct copybuf copy;
	struct sink_msg *msgs;
	rd_kafka_message_t **kms;
	size_t i, cap;
	int rc;

	if ((rc = loop_collect(w, err, errlen)) != WERR_OK)
		return rc;
	if (w->nrows == 0)
		return WERR_OK;
	/* Swap the buffers: the flight's are empty after loop_collect. */
	copy = f->copy;
	f->copy = w->copy;
	w->copy = copy;
	msgs = f->msgs;
	f->msgs = w->msgs;
	w->msgs = msgs;
	kms = f->kms;
	f->kms = w->kms;
	w->kms = kms;
	cap = f->rows_cap;
	f->rows_cap = w->rows_cap;
	w->rows_cap = cap;
	f->nrows = w->nrows;
	f->ncommit = 0;
	for (i = 0; i < w->npartitions; i++) {
		f->parts[i] = w->parts[i];
		if (w->parts[i].first < 0)
			continue;
		f->commit[f->ncommit].partition = w->partitions[i];
		f->commit[f->ncommit].next_offset = w->parts[i].next;
		f->ncommit++;
	}
	/* The open batch starts empty; its messages now belong to the flight. */
	w->nrows = 0;
	copybuf_reset(&w->copy);
	for (i = 0; i < w->npartitions; i++)
		w->parts[i].first = w->parts[i].next = -1;
	w->batch_start_ms = 0;
	pthread_mutex_lock(&f->mu);
	f->busy = true;
	f->done = false;
	pthread_cond_broadcast(&f->cv);
	pthread_mutex_unlock(&f->mu);
	return WERR_OK;
}

/* Takes m into the open batch: as a row, or (why != NULL) as a message for
 * the error table. */
static int loop_keep(struct worker *w, rd_kafka_message_t *m, ssize_t idx, size_t copy_off, const char *why,
		     char *err, size_t errlen)
{
	struct sink_msg *sm;

	if (w->nrows == w->rows_cap) {
		size_t cap = w->rows_cap ? w->rows_cap * 2 : 1024;
		struct sink_msg *p = realloc(w->msgs, cap * sizeof(*p));
		rd_kafka_message_t **q;

		if (p != NULL)
			w->msgs = p;
		q = p != NULL ? realloc(w->kms, cap * sizeof(*q)) : NULL;
		if (q == NULL) {
			snprintf(err, errlen, "out of memory");
			rd_kafka_message_destroy(m);
			return WERR_RETRY;
		}
		w->kms = q;
		w->rows_cap = cap;
	}
	sm = &w->msgs[w->nrows];
	memset(sm, 0, sizeof(*sm));
	if (why != NULL && (sm->error = strdup(why)) == NULL) {
		snprintf(err, errlen, "out of memory");
		rd_kafka_message_destroy(m);
		return WERR_RETRY;
	}
	sm->partition = m->partition;
	sm->offset = m->offset;
	sm->key = m->key;
	sm->key_len = m->key_len;
	sm->value = m->payload;
	sm->value_len = m->payload != NULL ? m->len : 0;
	sm->copy_off = copy_off;
	sm->copy_len = why != NULL ? 0 : w->copy.len - copy_off;
	w->kms[w->nrows++] = m;
	if (w->parts[idx].first < 0)
		w->parts[idx].first = m->offset;
	w->parts[idx].next = m->offset + 1;
	if (w->batch_start_ms == 0)
		w->batch_start_ms = loop_now_ms();
	return WERR_OK;
}

/* Adds one message to the open batch; takes m (kept until the batch is
 * committed, or destroyed). */
static int loop_message(struct worker *w, rd_kafka_message_t *m, char *err, size_t errlen)
{
	struct decode_msg msg;
	struct decode_row row;
	rd_kafka_timestamp_type_t tstype;
	rd_kafka_headers_t *hdrs;
	char why[1024];
	size_t off;
	ssize_t idx = loop_part_index(w, m->partition);
	int rc;

	if (idx < 0) {
		/* Fetched before its partition was revoked. */
		log_debug("ignoring a message from partition %d, which this task no longer owns", (int)m->partition);
		rd_kafka_message_destroy(m);
		return WERR_OK;
	}
	if (m->offset < w->parts[idx].expect) {
		/* Fetched before a seek (loop_resync): read again from there. */
		rd_kafka_message_destroy(m);
		return WERR_OK;
	}
	w->parts[idx].expect = m->offset + 1;
	msg.topic = w->spec->topic;
	msg.partition = m->partition;
	msg.offset = m->offset;
	msg.timestamp_ms = rd_kafka_message_timestamp(m, &tstype);
	msg.has_timestamp = tstype != RD_KAFKA_TIMESTAMP_NOT_AVAILABLE && msg.timestamp_ms >= 0;
	msg.key = m->key;
	msg.key_len = m->key_len;
	msg.value = m->payload;
	msg.value_len = m->len;
	msg.headers = w->headers;
	msg.nheaders = 0;
	if (w->spec->meta_present && rd_kafka_message_headers(m, &hdrs) == RD_KAFKA_RESP_ERR_NO_ERROR) {
		const char *name;
		const void *val;
		size_t size;

		while (msg.nheaders <= DECODE_HEADERS_MAX &&
		       rd_kafka_header_get_all(hdrs, msg.nheaders, &name, &val, &size) == RD_KAFKA_RESP_ERR_NO_ERROR)
			w->headers[msg.nheaders++] = (struct decode_header){ name, val, size };
	}
	rc = row_decoder_decode(w->decoder, &msg, &row, why, sizeof(why));
	if (rc == DECODE_RETRY || rc == DECODE_FATAL) {
		/* Not the message's fault (a schema registry): stop before it,
		 * nothing of the open batch is written, and read it again. */
		rd_kafka_message_destroy(m);
		snprintf(err, errlen, "%s", why);
		return rc == DECODE_RETRY ? WERR_RETRY : WERR_FATAL;
	}
	if (rc < 0)
		return loop_keep(w, m, idx, w->copy.len, why, err, errlen);
	if (rc == ROW_DECODER_SKIP) {
		/* A tombstone the job does not delete by: no row, but its offset
		 * is stored with the batch like any other. */
		if ((rc = loop_keep(w, m, idx, w->copy.len, NULL, err, errlen)) == WERR_OK)
			w->msgs[w->nrows - 1].skip = true;
		return rc;
	}
	off = w->copy.len;
	if (copybuf_append_row(&w->copy, &row, why, sizeof(why)) < 0) {
		if (w->nrows == 0)
			return loop_keep(w, m, idx, off, why, err, errlen);
		/* The row stays valid: it points into the message and the decoders,
		 * and the flush keeps both. */
		if ((rc = loop_flush(w, err, errlen)) != WERR_OK) {
			rd_kafka_message_destroy(m);
			return rc;
		}
		off = w->copy.len;
		if (copybuf_append_row(&w->copy, &row, why, sizeof(why)) < 0)
			return loop_keep(w, m, idx, off, why, err, errlen);
	}
	return loop_keep(w, m, idx, off, NULL, err, errlen);
}

static void loop_stats(struct worker *w, int64_t now)
{
	if (now - w->stats_ms < LOOP_STATS_MS)
		return;
	if (w->stats_batches > 0)
		log_info("%lld rows in %lld batches in the last %lld s (%.0f rows/s); %lld rows since start",
			 (long long)w->stats_rows, (long long)w->stats_batches, (long long)(now - w->stats_ms) / 1000,
			 (double)w->stats_rows * 1000.0 / (double)(now - w->stats_ms), (long long)w->total_rows);
	w->stats_rows = w->stats_batches = 0;
	w->stats_ms = now;
}

/* Every PROTO_LAG_INTERVAL_MS (and right after the first batch): the lag of
 * each partition, from what librdkafka last saw, without asking the brokers.
 * The base is what the database holds: the open batch's first offset, else
 * the last committed one, else the consumer's position. */
static void loop_lag(struct worker *w, int64_t now)
{
	struct proto_lag *lag;
	int64_t high, position, base;

	if (w->status_fd < 0 || now - w->lag_sent_ms < PROTO_LAG_INTERVAL_MS)
		return;
	w->lag_sent_ms = now;
	lag = realloc(w->lag, (w->npartitions ? w->npartitions : 1) * sizeof(*lag));
	if (lag == NULL)
		return;
	w->lag = lag;
	for (size_t i = 0; i < w->npartitions; i++) {
		consumer_cached_offsets(w->consumer, w->partitions[i], &high, &position);
		base = w->flight.busy && w->flight.parts[i].first >= 0 ? w->flight.parts[i].first
		       : w->parts[i].first >= 0			 ? w->parts[i].first
		       : w->parts[i].done >= 0			 ? w->parts[i].done
								 : position;
		lag[i].partition = w->partitions[i];
		lag[i].lag = high < 0 || base < 0 ? -1 : high > base ? high - base : 0;
	}
	loop_status_result(w, proto_send_lag(w->status_fd, lag, w->npartitions));
}

int64_t loop_poll_wait_ms(int64_t poll_timeout_ms, bool in_flight, bool rows_open,
			  int64_t batch_left_ms)
{
	int64_t timeout = LOOP_POLL_MS;

	if (in_flight && timeout > LOOP_FLIGHT_POLL_MS)
		timeout = LOOP_FLIGHT_POLL_MS;
	if (rows_open && batch_left_ms < timeout)
		timeout = batch_left_ms > 0 ? batch_left_ms : 0;
	/* The seed's POLL.TIMEOUT: the longest one poll waits.  Above the loop's
	 * own step it changes nothing; below, the worker polls more often (0:
	 * without waiting, a busy loop while the topic is idle). */
	if (poll_timeout_ms >= 0 && poll_timeout_ms < timeout)
		timeout = poll_timeout_ms;
	return timeout;
}

/* How many rows the open batch may hold after the next poll: the end of its
 * current MAX_ROW segment, or while the writer is busy with the batch before
 * it, LOOP_TX_ROWS (rounded down to whole segments). */
static int64_t loop_batch_room(const struct worker *w)
{
	int64_t seg_end = ((int64_t)w->nrows / w->max_row + 1) * w->max_row;

	if ((int64_t)w->nrows < w->max_row)
		return w->max_row;
	if (!w->flight.busy) /* full, flushed after this turn's (empty) poll */
		return (int64_t)w->nrows;
	return seg_end < w->tx_rows ? seg_end : w->tx_rows;
}

/* One turn of the loop: report a written batch, close the open one when due,
 * poll Kafka and take what came.  Returns WERR_OK, 1 when the controller is
 * gone, or a negative enum werr (WERR_FENCED: loop_consume recovers). */
static int loop_step(struct worker *w, int64_t interval, char *err, size_t errlen)
{
	static rd_kafka_message_t *msgs[LOOP_POLL_MAX];
	int64_t now = loop_now_ms(), timeout, left = 0;
	size_t max = LOOP_POLL_MAX;
	int i, n, rc = WERR_OK;

	if (w->stall_ms > 0 && w->last_step_ms > 0 && now - w->last_step_ms > w->stall_ms) {
		int64_t gap = now - w->last_step_ms;

		w->last_step_ms = now;
		return assignment_stalled(w, gap, err, errlen);
	}
	w->last_step_ms = now;
	/* A written batch is reported at once, not at the next hand-over; a
	 * full batch waiting for the writer goes at once. */
	if (loop_flight_done(&w->flight)) {
		if ((rc = loop_collect(w, err, errlen)) != WERR_OK)
			return rc;
		if ((int64_t)w->nrows >= w->max_row)
			return loop_flush(w, err, errlen);
	}
	if (w->nrows > 0) {
		left = interval - (now - w->batch_start_ms);
		if (left <= 0)
			return loop_flush(w, err, errlen);
	}
	timeout = loop_poll_wait_ms(w->spec->poll_timeout_ms, w->flight.busy, w->nrows > 0, left);
	/* Full, the writer busy: only take what is already waiting. */
	if ((int64_t)w->nrows >= w->max_row)
		timeout = 0;
	loop_stats(w, now);
	loop_lag(w, now);
	/* PR_SET_PDEATHSIG covers this too; belt and braces for a reparented worker. */
	if (getppid() != w->ppid) {
		log_warn("the controller is gone (parent changed); stopping");
		w->controller_gone = true;
		return 1;
	}
	/* Up to the end of the open batch's segment; while the writer is busy,
	 * up to LOOP_TX_ROWS (the segments after it). */
	if ((int64_t)(loop_batch_room(w) - (int64_t)w->nrows) < (int64_t)max)
		max = (size_t)(loop_batch_room(w) - (int64_t)w->nrows);
	n = consumer_poll(w->consumer, msgs, max, (int)timeout, err, errlen);
	if (n >= 0 && w->stall_ms > 0 && loop_now_ms() - now > timeout + w->stall_ms) {
		/* Frozen inside the poll: what it returns may be another task's now. */
		int64_t gap = loop_now_ms() - now;

		for (i = 0; i < n; i++) {
			ssize_t idx = loop_part_index(w, msgs[i]->partition);

			/* not taken: read again unless the database says otherwise */
			if (idx >= 0 && (w->parts[idx].redo < 0 || msgs[i]->offset < w->parts[idx].redo))
				w->parts[idx].redo = msgs[i]->offset;
			rd_kafka_message_destroy(msgs[i]);
		}
		w->last_step_ms = loop_now_ms();
		if (w->hook_rc != WERR_OK) {
			snprintf(err, errlen, "%s", w->hook_err);
			return w->hook_rc;
		}
		return assignment_stalled(w, gap, err, errlen);
	}
	if (n >= 0 && w->hook_rc != WERR_OK) { /* the rebalance hook failed */
		for (i = 0; i < n; i++)
			rd_kafka_message_destroy(msgs[i]);
		snprintf(err, errlen, "%s", w->hook_err);
		return w->hook_rc;
	}
	if (n < 0)
		return n;
	for (i = 0; i < n; i++) {
		if (rc == WERR_OK)
			rc = loop_message(w, msgs[i], err, errlen);
		else
			rd_kafka_message_destroy(msgs[i]);
	}
	if (rc != WERR_OK)
		return rc;
	/* Full: hand it over, unless the writer is still busy and messages keep
	 * coming (a backlog), which then go into the next segments. */
	if ((int64_t)w->nrows >= w->tx_rows || w->copy.len >= LOOP_FLUSH_BYTES ||
	    ((int64_t)w->nrows >= w->max_row && (n == 0 || !w->flight.busy || loop_flight_done(&w->flight))))
		return loop_flush(w, err, errlen);
	return WERR_OK;
}

static int loop_consume(struct worker *w, char *err, size_t errlen)
{
	int64_t interval = w->spec->commit_minimal_interval_ms > 0 ? w->spec->commit_minimal_interval_ms : 1000;
	char why[2048];
	int rc = WERR_OK;

	w->stats_ms = w->lag_sent_ms = loop_now_ms();
	while (!loop_stop) {
		rc = loop_step(w, interval, err, errlen);
		if (rc == WERR_FENCED) {
			snprintf(why, sizeof(why), "%s", err);
			rc = assignment_recover(w, why, err, errlen);
		}
		if (rc == 1)
			break;
		if (rc != WERR_OK)
			return rc;
	}
	/* Stopping: finish the open batch, it is already in memory. */
	rc = assignment_quiesce(w, err, errlen);
	if (rc == WERR_FENCED) {
		log_warn("%s; the batch is dropped (another task has the partition)", err);
		rc = WERR_OK;
	}
	return rc;
}

static int loop_start(struct worker *w, char *err, size_t errlen)
{
	const int32_t *parts;
	int64_t *next = NULL;
	int rc;

	w->decoder = row_decoder_new(w->spec, err, errlen);
	if (w->decoder == NULL)
		return WERR_FATAL;
	if ((rc = sink_pg_open(w->spec, w->job_name, &w->sink, err, errlen)) != WERR_OK)
		return rc;
	if (loop_stop)
		return WERR_OK;
	if ((rc = consumer_open(w->spec, w->job_name, w->task, w->tasks, &loop_stop, &w->consumer, err, errlen)) !=
	    WERR_OK)
		return rc;
	/* Group mode starts with nothing: the hook brings the partitions. */
	parts = consumer_partitions(w->consumer, &w->npartitions);
	w->partitions = calloc(w->npartitions ? w->npartitions : 1, sizeof(*w->partitions));
	next = calloc(w->npartitions ? w->npartitions : 1, sizeof(*next));
	if (w->partitions == NULL || next == NULL) {
		snprintf(err, errlen, "out of memory");
		rc = WERR_RETRY;
		goto out;
	}
	if (w->npartitions > 0)
		memcpy(w->partitions, parts, w->npartitions * sizeof(*parts));
	rc = loop_batch_init(w, err, errlen);
	if (rc == WERR_OK)
		rc = loop_flight_init(w, err, errlen);
	if (rc != WERR_OK)
		goto out;
	if (consumer_is_group(w->consumer)) {
		consumer_set_hook(w->consumer, assignment_hook, w);
		w->stall_ms = consumer_session_timeout_ms(w->consumer) / 2;
		goto out;
	}
	if (w->spec->consistency == JS_CONSISTENCY_NONE)
		rc = consumer_committed(w->consumer, next, err, errlen); /* no progress table */
	else
		rc = sink_pg_progress_get(w->sink, w->spec->topic, w->partitions, w->npartitions, next, err, errlen);
	if (rc != WERR_OK)
		goto out;
	if ((rc = consumer_assign(w->consumer, next, err, errlen)) != WERR_OK)
		goto out;
	for (size_t i = 0; i < w->npartitions; i++) {
		w->parts[i].done = w->spec->consistency == JS_CONSISTENCY_NONE ? -1 : next[i];
		w->parts[i].expect = next[i];
	}
out:
	free(next);
	return rc;
}

static void loop_worker_free(struct worker *w)
{
	/* The writer thread stops before the sink closes, and the kept messages
	 * go back to librdkafka before its handle does. */
	loop_flight_free(w);
	if (w->parts != NULL)
		loop_batch_reset(w);
	consumer_free(w->consumer);
	sink_pg_close(w->sink);
	row_decoder_free(w->decoder);
	jobspec_free(w->spec);
	copybuf_free(&w->copy);
	free(w->msgs);
	free(w->kms);
	free(w->parts);
	free(w->partitions);
	free(w->lag);
	free(w->job_name);
}

int loop_run(void)
{
	struct worker w;
	char err[2048];
	char *text = NULL;
	size_t len = 0;
	int rc, code = WORKER_EXIT_STOPPED;

	memset(&w, 0, sizeof(w));
	w.ppid = getppid();
	w.status_fd = loop_status_fd_setup();
	/* The controller's death must not leave an orphan consuming the topic. */
	prctl(PR_SET_PDEATHSIG, SIGTERM);
	if (getppid() != w.ppid)
		return WORKER_EXIT_STOPPED;
	if (loop_signals_setup() < 0) {
		code = loop_fail(&w, WERR_RETRY, "cannot install signal handlers");
		goto out;
	}
	if (loop_read_stdin(&loop_stop, &text, &len, err, sizeof(err)) < 0) {
		code = loop_stop ? WORKER_EXIT_STOPPED : loop_fail(&w, WERR_FATAL, err);
		goto out;
	}
	if (loop_parse_job(&w, text, len, err, sizeof(err)) < 0) {
		code = loop_fail(&w, WERR_FATAL, err);
		goto out;
	}
	memset(text, 0, len); /* holds the password */
	free(text);
	text = NULL;
	log_set_job(w.job_id); /* every line: [job N] or "job_id" */
	log_info("starting job %s: topic %s, table %s.%s, mode %s, key %s, value %s%s", w.job_name, w.spec->topic,
		 w.spec->schema ? w.spec->schema : "public", w.spec->table, js_mode_name(w.spec->mode),
		 w.spec->key.present ? js_format_name(w.spec->key.format) : "ignored",
		 w.spec->value.present ? js_format_name(w.spec->value.format) : "ignored",
		 w.spec->meta_present ? ", with META" : "");

	rc = loop_start(&w, err, sizeof(err));
	if (rc != WERR_OK) {
		code = loop_stop ? WORKER_EXIT_STOPPED : loop_fail(&w, rc, err);
		goto out;
	}
	if (loop_stop)
		goto out;
	if (w.status_fd >= 0)
		loop_status_result(&w, proto_send_ready(w.status_fd));
	if (!consumer_is_group(w.consumer))
		assignment_report(&w); /* group mode: once the group assigns */
	if (consumer_is_group(w.consumer))
		log_info("ready: task %d of %d, waiting for the group's assignment; batches of up to %lld rows or "
			 "%lld ms",
			 w.task, w.tasks, (long long)w.max_row, (long long)w.spec->commit_minimal_interval_ms);
	else
		log_info("ready: task %d of %d, %zu partition(s), batches of up to %lld rows or %lld ms", w.task,
			 w.tasks, w.npartitions, (long long)w.max_row, (long long)w.spec->commit_minimal_interval_ms);

	rc = loop_consume(&w, err, sizeof(err));
	if (rc != WERR_OK) {
		char later[2048];
		/* A batch still in flight may have committed: report it. */
		loop_collect(&w, later, sizeof(later));
		code = loop_fail(&w, rc, err);
		goto out;
	}
	log_info("stopped: %lld rows in %lld batches since start (%lld rebalances, %lld fence misses)",
		 (long long)w.total_rows, (long long)w.total_batches, (long long)w.rebalances,
		 (long long)w.fence_misses);
out:
	if (text != NULL) {
		memset(text, 0, len);
		free(text);
	}
	loop_worker_free(&w);
	return code;
}
