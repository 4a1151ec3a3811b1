#include "consumer.h"

#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "consumer_int.h"
#include "kafka_err.h"
#include "log.h"

/* Bounded prefetch.  With assign() and the consumer queue the queue limits
 * are totals over all partitions (checked: a 12-partition topic stays within
 * them).  A queued message costs ~400 bytes besides its payload and pins the
 * fetch response it came in, so what one fetch brings (the partition and
 * request byte limits, compressed) bounds memory as much as the queue limits:
 * the default 1 MB per partition brings ~45000 74-byte messages per partition
 * at once.  librdkafka 2.0 stops fetching once the queue is over either limit
 * and only looks again when its broker thread wakes, up to 1 s later;
 * consumer_poll wakes it (consumer_wake), so small limits no longer cap the
 * rate.  Measured with 74-byte messages, 4 partitions, backlog of 2M: see
 * consumer_wake.  PROPERTIES may override. */
#define CONSUMER_QUEUE_KBYTES "16384"
#define CONSUMER_QUEUE_MIN_MESSAGES "50000"
#define CONSUMER_PARTITION_FETCH_BYTES "262144"
/* The request limit, not the partition limit, is what grows with the
 * partition count: each partition in a fetch brings at least one whole
 * producer batch (compressed: thousands of messages, decompressed into one
 * buffer that every message of it pins), and the fetch goes out whenever the
 * queue is under its limits, so one fetch overshoots them by all it brings.
 * 4 MiB let 64 partitions bring ~16 of those at once (80-110 MB peak RSS
 * against 53 MB on 4 partitions); 1 MiB is what 4 partitions of 256 KiB ask
 * for anyway, so more partitions no longer bring more per fetch. */
#define CONSUMER_FETCH_BYTES "1048576"
#define CONSUMER_FETCH_WAIT_MS "100"
/* consumer_wake's ListOffsets request: short, a late answer only delays the
 * next fetch. */
#define CONSUMER_WAKE_TIMEOUT_MS 500
#define CONSUMER_METADATA_TIMEOUT_MS 1000
/* Group mode: the assignor.  Eager: every rebalance revokes every partition
 * from every task, which writes what it read, and hands them out again.
 * librdkafka 2.0.2's cooperative (incremental) path lost rows under
 * EXACTLY in our fault tests (a run of a kept partition's offsets skipped
 * after an incremental change: 5 of 9 runs of the 1 -> 3 -> 1 test, 0 of 3
 * with an eager assignor), so it is not the default; PROPERTIES may still
 * choose cooperative-sticky.  Static membership keeps the common case, a
 * task restarted within the session timeout, free of any rebalance. */
#define CONSUMER_ASSIGNOR "roundrobin"
/* Group mode: how often a member hears of a rebalance (librdkafka's default
 * is 3 s; a cooperative rebalance takes two rounds). */
#define CONSUMER_HEARTBEAT_MS "1000"
/* Group mode: how often librdkafka looks for partitions added to the topic
 * (its default is 5 minutes). */
#define CONSUMER_METADATA_REFRESH_MS "30000"
/* Group mode, leaving: how long consumer_free serves the revocation before
 * closing (the LeaveGroup goes out once the assignment is given up). */
#define CONSUMER_LEAVE_MS 2000

static int64_t consumer_now_ms(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

static void consumer_log_cb(const rd_kafka_t *rk, int level, const char *fac, const char *buf)
{
	/* syslog levels: 0-3 error, 4 warning, 5-6 notice/info, 7 debug */
	enum log_level lvl = level <= 3 ? LOG_ERROR : level == 4 ? LOG_WARN : level <= 6 ? LOG_INFO : LOG_DEBUG;

	/* Connection failures also reach consumer_error_cb: log them once. */
	if (strcmp(fac, "FAIL") == 0)
		return;
	log_msg(lvl, "kafka %s: %s", fac, buf);
}

/* A string setting as the handle has it, into buf; NULL when unset or empty. */
static const char *consumer_conf_str(rd_kafka_t *rk, const char *key, char *buf, size_t size)
{
	if (rd_kafka_conf_get(rd_kafka_conf(rk), key, buf, &size) != RD_KAFKA_CONF_OK || buf[0] == '\0')
		return NULL;
	return buf;
}

/* librdkafka retries a refused login or an untrusted certificate forever:
 * we decide here, where the error arrives, that the job cannot work. */
static void consumer_error_classify(struct consumer *c, rd_kafka_t *rk, int err, const char *reason)
{
	char user[256], mech[64], secret[512];
	struct kafka_err_ctx ctx = { 0 };

	if (c->fatal)
		return;
	ctx.brokers = c->spec->brokers;
	ctx.username = consumer_conf_str(rk, "sasl.username", user, sizeof(user));
	ctx.mechanism = consumer_conf_str(rk, "sasl.mechanisms", mech, sizeof(mech));
	ctx.secret = consumer_conf_str(rk, "sasl.password", secret, sizeof(secret));
	/* which one is set, not its value: a PEM says nothing to the user */
	if (jobspec_property(c->spec, "ssl.ca.location") != NULL)
		ctx.ca_source = "ssl.ca.location";
	else if (jobspec_property(c->spec, "ssl.ca.pem") != NULL)
		ctx.ca_source = "ssl.ca.pem";
	if (kafka_err_classify(err, reason, &ctx, c->fatal_msg, sizeof(c->fatal_msg)) == WERR_FATAL) {
		c->fatal = true;
		c->broken = true; /* no graceful close with a broker that refuses us */
	}
	memset(secret, 0, sizeof(secret));
}

/* librdkafka's fatal error, if one happened: in a group, another member
 * joined with this task's group.instance.id (a second worker of the same
 * task).  This handle is finished; a restart rejoins.  Sets failed. */
static void consumer_check_fatal(struct consumer *c)
{
	char why[400];
	rd_kafka_resp_err_t orig;

	if (c->failed || (orig = rd_kafka_fatal_error(c->rk, why, sizeof(why))) == RD_KAFKA_RESP_ERR_NO_ERROR)
		return;
	c->failed = true;
	c->broken = true;
	if (orig == RD_KAFKA_RESP_ERR_FENCED_INSTANCE_ID)
		snprintf(c->failed_msg, sizeof(c->failed_msg),
			 "another worker joined group \"%s\" as this task (group.instance.id %s-task-%d); this one "
			 "stops",
			 c->group_id, c->group_id, c->task);
	else
		snprintf(c->failed_msg, sizeof(c->failed_msg), "Kafka consumer: %s: %s", rd_kafka_err2name(orig), why);
	log_warn("kafka: %s", c->failed_msg);
}

/* Served from our own poll calls (the main queue is forwarded to the consumer
 * queue), so it runs on the loop's thread. */
static void consumer_error_cb(rd_kafka_t *rk, int err, const char *reason, void *opaque)
{
	struct consumer *c = opaque;

	/* Once the job cannot work, what librdkafka says next (the same refusal
	 * again, "all brokers are down") is noise before the exit. */
	if (c->fatal)
		return;
	if (err == RD_KAFKA_RESP_ERR__FATAL) {
		consumer_check_fatal(c);
		return;
	}
	consumer_error_classify(c, rk, err, reason);
	if (c->fatal) {
		log_warn("kafka: %s: %s", rd_kafka_err2name((rd_kafka_resp_err_t)err), reason);
		return;
	}

	if (err == RD_KAFKA_RESP_ERR__ALL_BROKERS_DOWN) {
		if (c->down_since_ms == 0) {
			c->down_since_ms = consumer_now_ms();
			log_warn("all Kafka brokers are down (%s); waiting up to %d s for them", reason,
				 CONSUMER_DOWN_MAX_MS / 1000);
		}
		return;
	}
	/* Transport errors are expected while a broker restarts; librdkafka reconnects. */
	log_warn("kafka: %s: %s", rd_kafka_err2name((rd_kafka_resp_err_t)err), reason);
}

static void consumer_commit_cb(rd_kafka_t *rk, rd_kafka_resp_err_t err, rd_kafka_topic_partition_list_t *offsets,
			       void *opaque)
{
	struct consumer *c = opaque;

	/* Commits race a rebalance now and then: the next batch commits again. */
	if (err == RD_KAFKA_RESP_ERR_ILLEGAL_GENERATION || err == RD_KAFKA_RESP_ERR_REBALANCE_IN_PROGRESS ||
	    err == RD_KAFKA_RESP_ERR_UNKNOWN_MEMBER_ID || err == RD_KAFKA_RESP_ERR__STATE)
		log_debug("committing offsets to Kafka group \"%s\" during a rebalance: %s", c->group_id,
			  rd_kafka_err2str(err));
	else if (err != RD_KAFKA_RESP_ERR_NO_ERROR && err != RD_KAFKA_RESP_ERR__NO_OFFSET)
		log_warn("committing offsets to Kafka group \"%s\" failed: %s (only lag monitors are affected; "
			 "the progress table holds the offsets)",
			 c->group_id, rd_kafka_err2str(err));
}

static int consumer_conf_set(rd_kafka_conf_t *conf, const char *key, const char *value, const char *what,
			     char *err, size_t errlen)
{
	char errstr[512];

	if (rd_kafka_conf_set(conf, key, value, errstr, sizeof(errstr)) != RD_KAFKA_CONF_OK) {
		snprintf(err, errlen, "%s: %s", what, errstr);
		return WERR_FATAL;
	}
	return WERR_OK;
}

/* A numeric setting as the handle has it (ours or PROPERTIES'); 0 if unknown. */
static int64_t consumer_conf_int(rd_kafka_t *rk, const char *key)
{
	char buf[64];
	size_t size = sizeof(buf);

	if (rd_kafka_conf_get(rd_kafka_conf(rk), key, buf, &size) != RD_KAFKA_CONF_OK)
		return 0;
	return strtoll(buf, NULL, 10);
}


static int consumer_create(struct consumer *c, const char *job_name, char *err, size_t errlen)
{
	const struct jobspec *spec = c->spec;
	rd_kafka_conf_t *conf = rd_kafka_conf_new();
	const char *group = jobspec_property(spec, "group.id");
	char client_id[256], instance[300], what[300], errstr[512];
	size_t i;
	int rc;

	if (group != NULL)
		snprintf(c->group_id, sizeof(c->group_id), "%s", group);
	else
		snprintf(c->group_id, sizeof(c->group_id), "streamserver-%s", job_name);
	snprintf(client_id, sizeof(client_id), "streamserver-%s", job_name);

	/* Our defaults first: PROPERTIES may override them... */
	if ((rc = consumer_conf_set(conf, "client.id", client_id, "client.id", err, errlen)) != WERR_OK ||
	    (rc = consumer_conf_set(conf, "queued.max.messages.kbytes", CONSUMER_QUEUE_KBYTES, "internal", err,
				    errlen)) != WERR_OK ||
	    (rc = consumer_conf_set(conf, "queued.min.messages", CONSUMER_QUEUE_MIN_MESSAGES, "internal", err,
				    errlen)) != WERR_OK ||
	    (rc = consumer_conf_set(conf, "fetch.wait.max.ms", CONSUMER_FETCH_WAIT_MS, "internal", err, errlen)) !=
		    WERR_OK ||
	    (rc = consumer_conf_set(conf, "max.partition.fetch.bytes", CONSUMER_PARTITION_FETCH_BYTES, "internal",
				    err, errlen)) != WERR_OK ||
	    (rc = consumer_conf_set(conf, "fetch.max.bytes", CONSUMER_FETCH_BYTES, "internal", err, errlen)) !=
		    WERR_OK ||
	    (rc = consumer_conf_set(conf, "enable.partition.eof", "false", "internal", err, errlen)) != WERR_OK ||
	    (rc = consumer_conf_set(conf, "auto.offset.reset",
				    spec->fallback_offset == JS_FALLBACK_LATEST ? "latest" : "earliest",
				    "KAFKA.INPUT.SOURCE.FALLBACK_OFFSET", err, errlen)) != WERR_OK)
		goto fail;
	/* Group mode: a frozen or killed task keeps its partitions this long;
	 * partitions added to the topic are seen within the refresh interval. */
	if (c->group &&
	    ((rc = consumer_conf_set(conf, "session.timeout.ms", CONSUMER_SESSION_TIMEOUT_MS, "internal", err,
				     errlen)) != WERR_OK ||
	     (rc = consumer_conf_set(conf, "heartbeat.interval.ms", CONSUMER_HEARTBEAT_MS, "internal", err, errlen)) !=
		     WERR_OK ||
	     (rc = consumer_conf_set(conf, "topic.metadata.refresh.interval.ms", CONSUMER_METADATA_REFRESH_MS,
				     "internal", err, errlen)) != WERR_OK ||
	     (rc = consumer_conf_set(conf, "partition.assignment.strategy", CONSUMER_ASSIGNOR, "internal", err,
				     errlen)) != WERR_OK))
		goto fail;
	for (i = 0; i < spec->nproperties; i++) {
		snprintf(what, sizeof(what), "KAFKA.PROPERTIES.%s", spec->properties[i].key);
		rc = consumer_conf_set(conf, spec->properties[i].key, spec->properties[i].value, what, err, errlen);
		if (rc != WERR_OK)
			goto fail;
	}
	/* ...but not these: the worker's correctness depends on them. */
	if ((rc = consumer_conf_set(conf, "bootstrap.servers", spec->brokers, "KAFKA.INPUT.SOURCE.BROKERS", err,
				    errlen)) != WERR_OK ||
	    (rc = consumer_conf_set(conf, "group.id", c->group_id, "KAFKA.PROPERTIES.group.id", err, errlen)) !=
		    WERR_OK ||
	    (rc = consumer_conf_set(conf, "enable.auto.commit", "false", "internal", err, errlen)) != WERR_OK ||
	    (rc = consumer_conf_set(conf, "enable.auto.offset.store", "false", "internal", err, errlen)) != WERR_OK)
		goto fail;
	if (c->group) {
		snprintf(instance, sizeof(instance), "%s-task-%d", c->group_id, c->task);
		if ((rc = consumer_conf_set(conf, "group.instance.id", instance, "internal", err, errlen)) != WERR_OK)
			goto fail;
		rd_kafka_conf_set_rebalance_cb(conf, consumer_rebalance_cb);
	}

	rd_kafka_conf_set_opaque(conf, c);
	rd_kafka_conf_set_log_cb(conf, consumer_log_cb);
	rd_kafka_conf_set_error_cb(conf, consumer_error_cb);
	rd_kafka_conf_set_offset_commit_cb(conf, consumer_commit_cb);

	c->rk = rd_kafka_new(RD_KAFKA_CONSUMER, conf, errstr, sizeof(errstr));
	if (c->rk == NULL) {
		snprintf(err, errlen, "KAFKA.PROPERTIES: cannot create the Kafka consumer: %s", errstr);
		rc = WERR_FATAL;
		goto fail;
	}
	conf = NULL; /* the handle owns it now */
	c->queue_min_messages = consumer_conf_int(c->rk, "queued.min.messages");
	c->queue_bytes = consumer_conf_int(c->rk, "queued.max.messages.kbytes") * 1024;
	rd_kafka_poll_set_consumer(c->rk);
	c->queue = rd_kafka_queue_get_consumer(c->rk);
	return WERR_OK;
fail:
	if (conf != NULL)
		rd_kafka_conf_destroy(conf);
	return rc;
}

int consumer_cmp_i32(const void *a, const void *b)
{
	int32_t x = *(const int32_t *)a, y = *(const int32_t *)b;
	return x < y ? -1 : x > y;
}

/* Picks the partitions from one metadata answer about the topic. */
static int consumer_pick_partitions(struct consumer *c, const rd_kafka_metadata_topic_t *t, char *err,
				    size_t errlen)
{
	const struct jobspec *spec = c->spec;
	int32_t *all;
	size_t i, j, n = (size_t)t->partition_cnt;

	all = calloc(n ? n : 1, sizeof(*all));
	if (all == NULL) {
		snprintf(err, errlen, "out of memory");
		return WERR_RETRY;
	}
	for (i = 0; i < n; i++)
		all[i] = t->partitions[i].id;
	qsort(all, n, sizeof(*all), consumer_cmp_i32);
	c->topic_partitions = n;

	if (spec->partitions == NULL) {
		c->partitions = all;
		c->npartitions = n;
		return WERR_OK;
	}
	for (i = 0; i < spec->npartitions; i++) {
		bool found = false;
		for (j = 0; j < n && !found; j++)
			found = all[j] == spec->partitions[i];
		if (!found) {
			snprintf(err, errlen,
				 "KAFKA.INPUT.SOURCE.PARTITIONS: partition %d does not exist in topic %s, which has "
				 "%zu partitions",
				 (int)spec->partitions[i], spec->topic, n);
			free(all);
			return WERR_FATAL;
		}
	}
	free(all);
	c->partitions = calloc(spec->npartitions, sizeof(*c->partitions));
	if (c->partitions == NULL) {
		snprintf(err, errlen, "out of memory");
		return WERR_RETRY;
	}
	/* The same partition listed twice is consumed once. */
	for (i = 0; i < spec->npartitions; i++) {
		bool dup = false;
		for (j = 0; j < c->npartitions && !dup; j++)
			dup = c->partitions[j] == spec->partitions[i];
		if (!dup)
			c->partitions[c->npartitions++] = spec->partitions[i];
	}
	qsort(c->partitions, c->npartitions, sizeof(*c->partitions), consumer_cmp_i32);
	/* This task's share: positions task, task + tasks, ... (consumer.h). */
	if (c->tasks > 1) {
		size_t kept = 0;
		for (i = 0; i < c->npartitions; i++)
			if ((int)(i % (size_t)c->tasks) == c->task)
				c->partitions[kept++] = c->partitions[i];
		c->npartitions = kept;
	}
	return WERR_OK;
}

/* Asks the brokers about the topic until they answer or the wait is over. */
static int consumer_find_partitions(struct consumer *c, const volatile sig_atomic_t *stop, int wait_ms,
				    char *err, size_t errlen)
{
	const struct jobspec *spec = c->spec;
	rd_kafka_topic_t *rkt = rd_kafka_topic_new(c->rk, spec->topic, NULL);
	int64_t deadline = consumer_now_ms() + wait_ms;
	const char *last = "no answer";
	char lastbuf[256];
	int rc = WERR_RETRY;

	if (rkt == NULL) {
		snprintf(err, errlen, "KAFKA.INPUT.SOURCE.TOPIC: invalid topic name \"%s\"", spec->topic);
		return WERR_FATAL;
	}
	while (!*stop) {
		const struct rd_kafka_metadata *md = NULL;
		rd_kafka_resp_err_t kerr = rd_kafka_metadata(c->rk, 0, rkt, &md, CONSUMER_METADATA_TIMEOUT_MS);

		if (kerr == RD_KAFKA_RESP_ERR_NO_ERROR) {
			const rd_kafka_metadata_topic_t *t = NULL;
			int i;

			for (i = 0; i < md->topic_cnt; i++)
				if (strcmp(md->topics[i].topic, spec->topic) == 0)
					t = &md->topics[i];
			if (t == NULL || t->err == RD_KAFKA_RESP_ERR_UNKNOWN_TOPIC_OR_PART) {
				snprintf(err, errlen, "topic %s does not exist on brokers %s; create it or fix "
						      "KAFKA.INPUT.SOURCE.TOPIC",
					 spec->topic, spec->brokers);
				rc = WERR_FATAL;
			} else if (t->err == RD_KAFKA_RESP_ERR_TOPIC_AUTHORIZATION_FAILED) {
				snprintf(err, errlen, "not authorized to read topic %s on brokers %s; check the "
						      "credentials in KAFKA.PROPERTIES and the topic's ACLs",
					 spec->topic, spec->brokers);
				rc = WERR_FATAL;
			} else if (t->err != RD_KAFKA_RESP_ERR_NO_ERROR || t->partition_cnt == 0) {
				snprintf(lastbuf, sizeof(lastbuf), "topic %s: %s", spec->topic,
					 rd_kafka_err2str(t->err != RD_KAFKA_RESP_ERR_NO_ERROR
								  ? t->err
								  : RD_KAFKA_RESP_ERR_LEADER_NOT_AVAILABLE));
				last = lastbuf;
				rc = WERR_RETRY; /* e.g. leader election in progress */
			} else {
				rc = consumer_pick_partitions(c, t, err, errlen);
				rd_kafka_metadata_destroy(md);
				goto out;
			}
			rd_kafka_metadata_destroy(md);
			if (rc == WERR_FATAL)
				goto out;
		} else {
			snprintf(lastbuf, sizeof(lastbuf), "%s", rd_kafka_err2str(kerr));
			last = lastbuf;
			/* Serves error_cb (e.g. name resolution failures) so they are logged,
			 * and a refused login or certificate ends the wait. */
			rd_kafka_poll(c->rk, 0);
			if (c->fatal) {
				snprintf(err, errlen, "%s", c->fatal_msg);
				rc = WERR_FATAL;
				goto out;
			}
		}
		if (consumer_now_ms() >= deadline) {
			snprintf(err, errlen, "cannot get metadata of topic %s from Kafka brokers %s for %d s: %s",
				 spec->topic, spec->brokers, wait_ms / 1000, last);
			rc = WERR_RETRY;
			goto out;
		}
		if (kerr == RD_KAFKA_RESP_ERR_NO_ERROR) {
			struct timespec ts = { 0, 500 * 1000000L };
			nanosleep(&ts, NULL);
		}
	}
	snprintf(err, errlen, "stopped while waiting for Kafka brokers %s", spec->brokers);
	rc = WERR_RETRY;
out:
	rd_kafka_topic_destroy(rkt);
	return rc;
}

/* Creates the handle and finds the partitions, waiting up to wait_ms for the
 * brokers (or until *stop).  task < 0: a tool's handle (all partitions, no
 * group membership). */
static int consumer_open_wait(const struct jobspec *spec, const char *job_name, int task, int tasks,
			      const volatile sig_atomic_t *stop, int wait_ms, struct consumer **out, char *err,
			      size_t errlen)
{
	struct consumer *c;
	int rc;

	*out = NULL;
	c = calloc(1, sizeof(*c));
	if (c == NULL) {
		snprintf(err, errlen, "out of memory");
		return WERR_RETRY;
	}
	c->spec = spec;
	c->task = task < 0 ? 0 : task;
	c->tasks = task < 0 || tasks < 1 ? 1 : tasks;
	c->group = task >= 0 && spec->partitions == NULL;
	if ((rc = consumer_create(c, job_name, err, errlen)) != WERR_OK)
		goto out;
	if ((rc = consumer_find_partitions(c, stop, wait_ms, err, errlen)) != WERR_OK) {
		c->broken = true;
		goto out;
	}
	*out = c;
	c = NULL;
out:
	consumer_free(c);
	return rc;
}

int consumer_open(const struct jobspec *spec, const char *job_name, int task, int tasks,
		  const volatile sig_atomic_t *stop, struct consumer **out, char *err, size_t errlen)
{
	rd_kafka_topic_partition_list_t *topics;
	rd_kafka_resp_err_t kerr;
	struct consumer *c;
	int rc = consumer_open_wait(spec, job_name, task < 0 ? 0 : task, tasks, stop, CONSUMER_DOWN_MAX_MS, out,
				    err, errlen);

	if (rc != WERR_OK)
		return rc;
	c = *out;
	if (!c->group) {
		log_info("topic %s on %s: task %d of %d reads %zu of the listed partition(s); group \"%s\"",
			 spec->topic, spec->brokers, c->task, c->tasks, c->npartitions, c->group_id);
		return WERR_OK;
	}
	/* The topic exists (consumer_find_partitions); the group assigns. */
	log_info("topic %s on %s (%zu partitions): task %d of %d joins group \"%s\"", spec->topic, spec->brokers,
		 c->npartitions, c->task, c->tasks, c->group_id);
	c->npartitions = 0;
	topics = rd_kafka_topic_partition_list_new(1);
	rd_kafka_topic_partition_list_add(topics, spec->topic, RD_KAFKA_PARTITION_UA);
	kerr = rd_kafka_subscribe(c->rk, topics);
	rd_kafka_topic_partition_list_destroy(topics);
	if (kerr != RD_KAFKA_RESP_ERR_NO_ERROR) {
		snprintf(err, errlen, "subscribing to topic %s as group \"%s\": %s", spec->topic, c->group_id,
			 rd_kafka_err2str(kerr));
		consumer_free(c);
		*out = NULL;
		return WERR_RETRY;
	}
	return WERR_OK;
}

bool consumer_is_group(const struct consumer *c)
{
	return c->group;
}

int64_t consumer_session_timeout_ms(const struct consumer *c)
{
	return c->group ? consumer_conf_int(c->rk, "session.timeout.ms") : 0;
}

void consumer_set_hook(struct consumer *c, consumer_hook fn, void *ctx)
{
	c->hook = fn;
	c->hook_ctx = ctx;
}

int consumer_open_tool(const struct jobspec *spec, const char *job_name, int wait_ms, struct consumer **out,
		       char *err, size_t errlen)
{
	static const volatile sig_atomic_t never = 0;

	return consumer_open_wait(spec, job_name, -1, 1, &never, wait_ms, out, err, errlen);
}

int consumer_committed(struct consumer *c, int64_t *next, char *err, size_t errlen)
{
	rd_kafka_topic_partition_list_t *list;
	rd_kafka_resp_err_t kerr;
	size_t i;
	int rc = WERR_OK;

	for (i = 0; i < c->npartitions; i++)
		next[i] = -1;
	list = rd_kafka_topic_partition_list_new((int)(c->npartitions ? c->npartitions : 1));
	for (i = 0; i < c->npartitions; i++)
		rd_kafka_topic_partition_list_add(list, c->spec->topic, c->partitions[i]);
	kerr = rd_kafka_committed(c->rk, list, CONSUMER_DOWN_MAX_MS);
	if (kerr != RD_KAFKA_RESP_ERR_NO_ERROR) {
		snprintf(err, errlen, "reading the committed offsets of Kafka group \"%s\": %s", c->group_id,
			 rd_kafka_err2str(kerr));
		rc = WERR_RETRY;
		goto out;
	}
	for (i = 0; i < c->npartitions; i++) {
		const rd_kafka_topic_partition_t *tp =
			rd_kafka_topic_partition_list_find(list, c->spec->topic, c->partitions[i]);
		if (tp != NULL && tp->err == RD_KAFKA_RESP_ERR_NO_ERROR && tp->offset >= 0)
			next[i] = tp->offset;
	}
out:
	rd_kafka_topic_partition_list_destroy(list);
	return rc;
}

const char *consumer_group(const struct consumer *c)
{
	return c->group_id;
}

int consumer_watermarks(struct consumer *c, int32_t partition, int64_t *low, int64_t *high, char *err,
			size_t errlen)
{
	rd_kafka_resp_err_t kerr = rd_kafka_query_watermark_offsets(c->rk, c->spec->topic, partition, low, high,
								    CONSUMER_WATERMARK_TIMEOUT_MS);

	if (kerr == RD_KAFKA_RESP_ERR_NO_ERROR)
		return WERR_OK;
	snprintf(err, errlen, "asking Kafka brokers %s for the offsets of topic %s partition %d: %s", c->spec->brokers,
		 c->spec->topic, (int)partition, rd_kafka_err2str(kerr));
	if (kerr == RD_KAFKA_RESP_ERR_TOPIC_AUTHORIZATION_FAILED)
		return WERR_FATAL;
	c->broken = true;
	return WERR_RETRY;
}

void consumer_cached_offsets(struct consumer *c, int32_t partition, int64_t *high, int64_t *position)
{
	rd_kafka_topic_partition_list_t *list = rd_kafka_topic_partition_list_new(1);
	int64_t low = -1;

	*high = -1;
	*position = -1;
	if (rd_kafka_get_watermark_offsets(c->rk, c->spec->topic, partition, &low, high) !=
		    RD_KAFKA_RESP_ERR_NO_ERROR ||
	    *high < 0)
		*high = -1;
	rd_kafka_topic_partition_list_add(list, c->spec->topic, partition);
	if (rd_kafka_position(c->rk, list) == RD_KAFKA_RESP_ERR_NO_ERROR && list->elems[0].err == 0 &&
	    list->elems[0].offset >= 0)
		*position = list->elems[0].offset;
	rd_kafka_topic_partition_list_destroy(list);
}

int consumer_offsets_for_time(struct consumer *c, int64_t timestamp_ms, const int32_t *partitions, size_t n,
			      int64_t *offsets, char *err, size_t errlen)
{
	rd_kafka_topic_partition_list_t *list = rd_kafka_topic_partition_list_new((int)(n ? n : 1));
	rd_kafka_resp_err_t kerr;
	size_t i;
	int k, rc = WERR_OK;

	for (i = 0; i < n; i++) {
		rd_kafka_topic_partition_list_add(list, c->spec->topic, partitions[i])->offset = timestamp_ms;
		offsets[i] = -1;
	}
	kerr = rd_kafka_offsets_for_times(c->rk, list, CONSUMER_WATERMARK_TIMEOUT_MS);
	if (kerr != RD_KAFKA_RESP_ERR_NO_ERROR) {
		snprintf(err, errlen, "asking Kafka brokers %s for the offsets of topic %s at time %lld: %s",
			 c->spec->brokers, c->spec->topic, (long long)timestamp_ms, rd_kafka_err2str(kerr));
		c->broken = true;
		rc = WERR_RETRY;
		goto out;
	}
	for (k = 0; k < list->cnt; k++) {
		const rd_kafka_topic_partition_t *tp = &list->elems[k];

		if (tp->err != RD_KAFKA_RESP_ERR_NO_ERROR) {
			snprintf(err, errlen, "asking Kafka for the offset of topic %s partition %d at time %lld: %s",
				 c->spec->topic, (int)tp->partition, (long long)timestamp_ms,
				 rd_kafka_err2str(tp->err));
			rc = WERR_RETRY;
			goto out;
		}
		for (i = 0; i < n; i++)
			if (partitions[i] == tp->partition)
				offsets[i] = tp->offset >= 0 ? tp->offset : -1;
	}
out:
	rd_kafka_topic_partition_list_destroy(list);
	return rc;
}

int consumer_commit_sync(struct consumer *c, const struct part_offset *offsets, size_t n, char *err,
			 size_t errlen)
{
	rd_kafka_topic_partition_list_t *list;
	rd_kafka_resp_err_t kerr;
	size_t i;
	int k;

	if (n == 0)
		return WERR_OK;
	list = rd_kafka_topic_partition_list_new((int)n);
	for (i = 0; i < n; i++)
		rd_kafka_topic_partition_list_add(list, c->spec->topic, offsets[i].partition)->offset =
			offsets[i].next_offset;
	kerr = rd_kafka_commit(c->rk, list, 0);
	for (k = 0; kerr == RD_KAFKA_RESP_ERR_NO_ERROR && k < list->cnt; k++)
		if (list->elems[k].err != RD_KAFKA_RESP_ERR_NO_ERROR)
			kerr = list->elems[k].err;
	rd_kafka_topic_partition_list_destroy(list);
	if (kerr != RD_KAFKA_RESP_ERR_NO_ERROR) {
		snprintf(err, errlen, "committing offsets to Kafka group \"%s\": %s", c->group_id,
			 rd_kafka_err2str(kerr));
		return WERR_RETRY;
	}
	return WERR_OK;
}

const int32_t *consumer_partitions(const struct consumer *c, size_t *n)
{
	*n = c->npartitions;
	return c->partitions;
}

size_t consumer_topic_partitions(const struct consumer *c)
{
	return c->topic_partitions;
}

/* Says so when a stored offset is no longer in the log: librdkafka then
 * applies auto.offset.reset quietly, and messages are skipped or re-read. */
void consumer_check_stored(struct consumer *c, int32_t partition, int64_t next)
{
	int64_t lo = 0, hi = 0;
	rd_kafka_resp_err_t kerr = rd_kafka_query_watermark_offsets(c->rk, c->spec->topic, partition, &lo, &hi,
								    CONSUMER_WATERMARK_TIMEOUT_MS);

	if (kerr != RD_KAFKA_RESP_ERR_NO_ERROR)
		return;
	if (next < lo)
		log_warn("partition %d: stored offset %lld is before the earliest offset still in Kafka (%lld): "
			 "messages %lld..%lld were deleted by retention and are skipped; FALLBACK_OFFSET %s applies",
			 (int)partition, (long long)next, (long long)lo, (long long)next, (long long)lo - 1,
			 js_fallback_name(c->spec->fallback_offset));
	else if (next > hi)
		log_warn("partition %d: stored offset %lld is past the end of the partition (%lld): was the topic "
			 "recreated? FALLBACK_OFFSET %s applies",
			 (int)partition, (long long)next, (long long)hi, js_fallback_name(c->spec->fallback_offset));
}

int consumer_assign(struct consumer *c, const int64_t *next_offsets, char *err, size_t errlen)
{
	rd_kafka_topic_partition_list_t *list = rd_kafka_topic_partition_list_new((int)c->npartitions);
	rd_kafka_resp_err_t kerr;
	int64_t fallback = c->spec->fallback_offset == JS_FALLBACK_LATEST ? RD_KAFKA_OFFSET_END
									  : RD_KAFKA_OFFSET_BEGINNING;
	size_t i;

	for (i = 0; i < c->npartitions; i++) {
		rd_kafka_topic_partition_t *tp = rd_kafka_topic_partition_list_add(list, c->spec->topic,
										   c->partitions[i]);
		if (next_offsets[i] >= 0) {
			tp->offset = next_offsets[i];
			log_info("partition %d: resuming at stored offset %lld", (int)c->partitions[i],
				 (long long)next_offsets[i]);
			consumer_check_stored(c, c->partitions[i], next_offsets[i]);
		} else {
			tp->offset = fallback;
			log_info("partition %d: no stored offset, starting at the %s offset", (int)c->partitions[i],
				 js_fallback_name(c->spec->fallback_offset));
		}
	}
	kerr = rd_kafka_assign(c->rk, list);
	rd_kafka_topic_partition_list_destroy(list);
	if (kerr != RD_KAFKA_RESP_ERR_NO_ERROR) {
		snprintf(err, errlen, "assigning partitions of topic %s: %s", c->spec->topic, rd_kafka_err2str(kerr));
		return WERR_RETRY;
	}
	return WERR_OK;
}

/* Broker errors are survivable until they last too long.  The "down" state
 * ends when a message arrives or when the brokers answer a metadata request. */
static int consumer_check_down(struct consumer *c, char *err, size_t errlen)
{
	const struct rd_kafka_metadata *md = NULL;
	int64_t now;

	if (c->down_since_ms == 0)
		return WERR_OK;
	now = consumer_now_ms();
	if (now - c->down_since_ms < CONSUMER_DOWN_MAX_MS)
		return WERR_OK;
	if (rd_kafka_metadata(c->rk, 0, NULL, &md, 2000) == RD_KAFKA_RESP_ERR_NO_ERROR) {
		rd_kafka_metadata_destroy(md);
		log_info("Kafka brokers are reachable again");
		c->down_since_ms = 0;
		return WERR_OK;
	}
	c->broken = true;
	snprintf(err, errlen, "all Kafka brokers (%s) have been unreachable for %lld s", c->spec->brokers,
		 (long long)((now - c->down_since_ms) / 1000));
	return WERR_RETRY;
}

/* librdkafka 2.0 decides whether to fetch only when its broker thread wakes:
 * after a fetch over the queue limits it sleeps up to 1 s, however fast we
 * empty the queue (newer versions wake it themselves).  A request to the
 * partition leaders wakes their threads, and they fetch again at once.
 * ListOffsets (offsets_for_times at the end) reads nothing and changes
 * nothing; one call asks every leader in parallel.  Sent only when we took at
 * least half the queue limit since the last wake and the queue is now under
 * the limit (or half its bytes), i.e. while draining a backlog, never in a
 * steady trickle.
 * Measured (74-byte messages, 4 partitions, 2M backlog, INSERT batches of
 * 10000, COPY straight into the target): without it 160k rows/s at 50000
 * queued messages, 300k at 200000 (150 MB peak RSS); with it ~1.1M rows/s at
 * 50000 and these fetch sizes (55 MB), about what psql's COPY achieves. */
static void consumer_wake(struct consumer *c, rd_kafka_message_t *const *msgs, size_t taken)
{
	rd_kafka_topic_partition_list_t *list;
	size_t i;

	c->taken_since_wake += (int64_t)taken;
	for (i = 0; i < taken; i++)
		c->taken_bytes_since_wake += (int64_t)msgs[i]->len + (int64_t)msgs[i]->key_len;
	if (c->npartitions == 0 ||
	    (c->taken_since_wake < c->queue_min_messages / 2 && c->taken_bytes_since_wake < c->queue_bytes / 2) ||
	    (int64_t)rd_kafka_queue_length(c->queue) >= c->queue_min_messages)
		return;
	c->taken_since_wake = c->taken_bytes_since_wake = 0;
	list = rd_kafka_topic_partition_list_new((int)c->npartitions);
	for (i = 0; i < c->npartitions; i++)
		rd_kafka_topic_partition_list_add(list, c->spec->topic, c->partitions[i])->offset = RD_KAFKA_OFFSET_END;
	/* The answer is not needed; a failure shows up in the fetches too. */
	(void)rd_kafka_offsets_for_times(c->rk, list, CONSUMER_WAKE_TIMEOUT_MS);
	rd_kafka_topic_partition_list_destroy(list);
}

/* Up to max messages: waits timeout_ms for the first, then takes what is
 * queued.  Not rd_kafka_consume_batch_queue: before librdkafka 2.1.0 it moved
 * a partition's application offset past every message it read, also those a
 * rebalance's barrier then purged from the batch, so the fetch went on after
 * them and they were never delivered (librdkafka PR #4208).  Seen with 2.0.2
 * in tests/e2e/test_cluster.py: a task kept its partitions through a
 * rebalance and lost one prefetched chunk of each (250 messages), and as the
 * fence compares the stored offsets with this worker's own, EXACTLY stored
 * offsets past rows it never wrote.  rd_kafka_consume_queue advances the
 * offset only for a message it hands over. */
static ssize_t consumer_take(struct consumer *c, int timeout_ms, rd_kafka_message_t **msgs, size_t max)
{
	rd_kafka_message_t *m = rd_kafka_consume_queue(c->queue, timeout_ms);
	size_t n = 0;

	while (m != NULL) {
		msgs[n++] = m;
		if (n == max)
			break;
		m = rd_kafka_consume_queue(c->queue, 0);
	}
	return (ssize_t)n;
}

int consumer_poll(struct consumer *c, rd_kafka_message_t **msgs, size_t max, int timeout_ms, char *err,
		  size_t errlen)
{
	ssize_t got;
	size_t i, n = 0;
	int rc = WERR_OK;

	if (max == 0)
		return 0;
	/* The last batch has reached the loop: the pending change now. */
	consumer_apply(c);
	got = consumer_take(c, timeout_ms, msgs, max);
	if (got == 0)
		consumer_apply(c); /* nothing to read first */
	if (got < 0) {
		snprintf(err, errlen, "consuming from Kafka: %s", rd_kafka_err2str(rd_kafka_last_error()));
		return WERR_RETRY;
	}
	consumer_wake(c, msgs, (size_t)got);
	consumer_check_fatal(c);
	if (c->failed && !c->fatal) {
		c->fatal = true; /* reported once, through the path below */
		snprintf(c->fatal_msg, sizeof(c->fatal_msg), "%s", c->failed_msg);
		for (i = 0; i < (size_t)got; i++)
			rd_kafka_message_destroy(msgs[i]);
		snprintf(err, errlen, "%s", c->failed_msg);
		return WERR_RETRY;
	}
	if (c->fatal) { /* served by the consume call just made */
		for (i = 0; i < (size_t)got; i++)
			rd_kafka_message_destroy(msgs[i]);
		snprintf(err, errlen, "%s", c->fatal_msg);
		return WERR_FATAL;
	}
	for (i = 0; i < (size_t)got; i++) {
		rd_kafka_message_t *m = msgs[i];

		if (m->err == RD_KAFKA_RESP_ERR_NO_ERROR) {
			msgs[n++] = m;
			continue;
		}
		if (m->err == RD_KAFKA_RESP_ERR__PARTITION_EOF) {
			rd_kafka_message_destroy(m);
			continue;
		}
		if (rc == WERR_OK && (m->err == RD_KAFKA_RESP_ERR_TOPIC_AUTHORIZATION_FAILED ||
				      m->err == RD_KAFKA_RESP_ERR__AUTO_OFFSET_RESET)) {
			snprintf(err, errlen, "topic %s partition %d: %s", c->spec->topic, (int)m->partition,
				 rd_kafka_message_errstr(m));
			rc = WERR_FATAL;
		} else {
			log_warn("topic %s partition %d: %s", c->spec->topic, (int)m->partition,
				 rd_kafka_message_errstr(m));
		}
		rd_kafka_message_destroy(m);
	}
	if (rc != WERR_OK) {
		for (i = 0; i < n; i++)
			rd_kafka_message_destroy(msgs[i]);
		return rc;
	}
	if (n > 0) {
		if (c->down_since_ms != 0)
			log_info("Kafka brokers are reachable again");
		c->down_since_ms = 0;
		return (int)n;
	}
	rc = consumer_check_down(c, err, errlen);
	return rc != WERR_OK ? rc : 0;
}

void consumer_commit_async(struct consumer *c, const struct part_offset *offsets, size_t n)
{
	rd_kafka_topic_partition_list_t *list;
	rd_kafka_resp_err_t kerr;
	size_t i;

	if (n == 0)
		return;
	list = rd_kafka_topic_partition_list_new((int)n);
	for (i = 0; i < n; i++)
		rd_kafka_topic_partition_list_add(list, c->spec->topic, offsets[i].partition)->offset =
			offsets[i].next_offset;
	kerr = rd_kafka_commit(c->rk, list, 1);
	rd_kafka_topic_partition_list_destroy(list);
	if (kerr != RD_KAFKA_RESP_ERR_NO_ERROR)
		log_warn("committing offsets to Kafka group \"%s\" failed: %s", c->group_id, rd_kafka_err2str(kerr));
}

void consumer_free(struct consumer *c)
{
	if (c == NULL)
		return;
	c->hook = NULL;
	c->closing = true;
	consumer_apply(c);
	if (c->queue != NULL)
		rd_kafka_queue_destroy(c->queue);
	if (c->rk != NULL && c->group && !c->broken) {
		/* Unsubscribing first makes librdkafka send LeaveGroup even for a
		 * static member (it does not on a plain close), so the partitions
		 * move to the other tasks now rather than after the session
		 * timeout.  The revocation is served here, without the hook. */
		int64_t until = consumer_now_ms() + CONSUMER_LEAVE_MS, empty_at = 0;

		rd_kafka_unsubscribe(c->rk);
		while (consumer_now_ms() < until && (empty_at == 0 || consumer_now_ms() - empty_at < 200)) {
			rd_kafka_topic_partition_list_t *left = NULL;
			rd_kafka_message_t *m = rd_kafka_consumer_poll(c->rk, 50);

			if (m != NULL)
				rd_kafka_message_destroy(m);
			if (empty_at == 0 && rd_kafka_assignment(c->rk, &left) == RD_KAFKA_RESP_ERR_NO_ERROR &&
			    left->cnt == 0)
				empty_at = consumer_now_ms(); /* a moment more for the LeaveGroup */
			if (left != NULL)
				rd_kafka_topic_partition_list_destroy(left);
		}
	}
	if (c->rk != NULL) {
		if (c->broken) {
			/* Nothing to say goodbye to: do not wait on dead brokers. */
			rd_kafka_destroy_flags(c->rk, RD_KAFKA_DESTROY_F_NO_CONSUMER_CLOSE);
		} else {
			rd_kafka_consumer_close(c->rk);
			rd_kafka_destroy(c->rk);
		}
	}
	if (c->pending != NULL)
		rd_kafka_topic_partition_list_destroy(c->pending);
	free(c->partitions);
	free(c);
}
