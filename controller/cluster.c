#include "cluster.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include <cjson/cJSON.h>

#include "log.h"
#include "placement.h"
#include "runtime.h"

struct cluster_task {
	int64_t job_id;
	int task;
};

/* A task placed on another controller. */
struct cluster_elsewhere {
	int64_t job_id;
	int task;
	char owner[STORE_MEMBER_NAME_MAX];
};

struct cluster {
	struct store *st;
	char name[STORE_MEMBER_NAME_MAX];
	char api_url[256];
	bool shared;
	bool registered;     /* the first beat went through (started_at is ours) */
	bool beat_ok;        /* the last heartbeat went through */
	int64_t last_beat;   /* monotonic ms of the last heartbeat that went through; 0 none */
	bool fenced;         /* no heartbeat for CLUSTER_LEASE_MS: running nothing */
	int64_t forgot_at;   /* monotonic ms of the last removal of long-gone controllers */
	struct cluster_task *mine; /* placed here, ordered by (job, task) */
	size_t nmine;
	struct store_task_status *remote; /* fresh rows of other live controllers */
	size_t nremote;
	struct cluster_elsewhere *elsewhere; /* the tasks placed on the others */
	size_t nelsewhere;
	char **live;         /* names of the live controllers */
	size_t nlive;
	struct store_job_brief *jobs; /* the jobs as the last tick read them */
	size_t njobs;
	bool jobs_read;
	struct cluster_task *shown; /* shown as the others' in common/runtime.h, ordered */
	size_t nshown;
};

struct cluster *cluster_new(struct store *st, const char *name, const char *api_url, bool shared)
{
	struct cluster *c = calloc(1, sizeof(*c));

	if (c == NULL)
		return NULL;
	c->st = st;
	snprintf(c->name, sizeof(c->name), "%s", name);
	snprintf(c->api_url, sizeof(c->api_url), "%s", api_url);
	c->shared = shared;
	runtime_set_self(name, shared);
	return c;
}

static void cluster_free_live(struct cluster *c)
{
	for (size_t i = 0; i < c->nlive; i++)
		free(c->live[i]);
	free(c->live);
	c->live = NULL;
	c->nlive = 0;
}

void cluster_free(struct cluster *c)
{
	if (c == NULL)
		return;
	cluster_free_live(c);
	free(c->mine);
	free(c->remote);
	free(c->elsewhere);
	free(c->shown);
	free(c->jobs);
	free(c);
}

bool cluster_shared(const struct cluster *c)
{
	return c->shared;
}

static int cluster_task_cmp(const void *a, const void *b)
{
	const struct cluster_task *x = a, *y = b;

	if (x->job_id != y->job_id)
		return x->job_id < y->job_id ? -1 : 1;
	return (x->task > y->task) - (x->task < y->task);
}

bool cluster_runs(const struct cluster *c, int64_t job_id, int task)
{
	struct cluster_task key = { job_id, task };

	if (!c->shared)
		return true;
	if (c->fenced)
		return false;
	return bsearch(&key, c->mine, c->nmine, sizeof(*c->mine), cluster_task_cmp) != NULL;
}

static bool cluster_is_live(const struct cluster *c, const char *name)
{
	for (size_t i = 0; i < c->nlive; i++)
		if (strcmp(c->live[i], name) == 0)
			return true;
	return false;
}

/* The live controllers, and the tasks of the running jobs placed on them:
 * the set placed here into *mine. */
static int cluster_place(struct cluster *c, const struct store_member *m, size_t nm,
			 const struct store_job_brief *jobs, size_t nj, struct cluster_task **mine, size_t *nmine)
{
	struct placement_member *pm = calloc(nm ? nm : 1, sizeof(*pm));
	struct placement_task *pt = NULL;
	size_t np = 0, nt = 0, i;
	int self = -1, rc = -1;

	*mine = NULL;
	*nmine = 0;
	cluster_free_live(c);
	c->live = calloc(nm ? nm : 1, sizeof(*c->live));
	if (pm == NULL || c->live == NULL)
		goto out;
	for (i = 0; i < nm; i++) {
		bool is_self = strcmp(m[i].name, c->name) == 0;

		if (!is_self && m[i].age_ms > CLUSTER_LEASE_MS)
			continue;
		if (is_self)
			self = (int)np;
		pm[np].name = m[i].name;
		pm[np].draining = m[i].draining;
		np++;
		if ((c->live[c->nlive] = strdup(m[i].name)) != NULL)
			c->nlive++;
	}
	for (i = 0; i < nj; i++)
		if (strcmp(jobs[i].desired, "running") == 0 && strcmp(jobs[i].state, "failed") != 0)
			nt += (size_t)(jobs[i].tasks < 1 ? 1 : jobs[i].tasks);
	pt = calloc(nt ? nt : 1, sizeof(*pt));
	*mine = calloc(nt ? nt : 1, sizeof(**mine));
	if (pt == NULL || *mine == NULL)
		goto out;
	nt = 0;
	for (i = 0; i < nj; i++) {
		if (strcmp(jobs[i].desired, "running") != 0 || strcmp(jobs[i].state, "failed") == 0)
			continue;
		for (int k = 0; k < (jobs[i].tasks < 1 ? 1 : jobs[i].tasks); k++) {
			pt[nt].job_id = jobs[i].id;
			pt[nt].task = k;
			nt++;
		}
	}
	if (placement_compute(pm, np, pt, nt) < 0)
		goto out;
	free(c->elsewhere);
	c->nelsewhere = 0;
	c->elsewhere = calloc(nt ? nt : 1, sizeof(*c->elsewhere));
	for (i = 0; i < nt; i++) {
		if (self >= 0 && pt[i].owner == self) {
			(*mine)[*nmine].job_id = pt[i].job_id;
			(*mine)[(*nmine)++].task = pt[i].task;
		} else if (c->elsewhere != NULL && pt[i].owner >= 0) {
			struct cluster_elsewhere *e = &c->elsewhere[c->nelsewhere++];

			e->job_id = pt[i].job_id;
			e->task = pt[i].task;
			snprintf(e->owner, sizeof(e->owner), "%s", pm[pt[i].owner].name);
		}
	}
	qsort(*mine, *nmine, sizeof(**mine), cluster_task_cmp);
	rc = 0;
out:
	if (rc < 0) {
		free(*mine);
		*mine = NULL;
		*nmine = 0;
	}
	free(pm);
	free(pt);
	return rc;
}

/* "[0,3]" -> parts; false when the text is not a list (not known yet). */
static bool cluster_parts(const char *text, int32_t *parts, size_t max, size_t *n)
{
	cJSON *a = cJSON_Parse(text);
	const cJSON *it;

	*n = 0;
	if (!cJSON_IsArray(a)) {
		cJSON_Delete(a);
		return false;
	}
	cJSON_ArrayForEach(it, a)
		if (cJSON_IsNumber(it) && *n < max)
			parts[(*n)++] = (int32_t)it->valuedouble;
	cJSON_Delete(a);
	return true;
}

/* Whether the task is placed on controller name (a row of a controller that
 * is still stopping a task it no longer owns is not shown). */
static bool cluster_owner_is(const struct cluster *c, int64_t job_id, int task, const char *name)
{
	for (size_t e = 0; e < c->nelsewhere; e++)
		if (c->elsewhere[e].job_id == job_id && c->elsewhere[e].task == task)
			return strcmp(c->elsewhere[e].owner, name) == 0;
	return false;
}

/* Other live controllers' rows: kept, and handed to runtime for the tasks
 * this controller does not run. */
/* Notes that runtime shows (job_id, task) as another controller's. */
static void cluster_shown_add(struct cluster_task *shown, size_t *nshown, size_t max, int64_t job_id, int task)
{
	if (shown != NULL && *nshown < max) {
		shown[*nshown].job_id = job_id;
		shown[(*nshown)++].task = task;
	}
}

/* The tasks runtime showed as the others' last tick and nobody publishes or
 * is placed on now (their job stopped, or they were removed) would keep
 * their last published state for ever: they show as stopped now. */
static void cluster_shown_settle(struct cluster *c, struct cluster_task *shown, size_t nshown)
{
	if (shown == NULL)
		return;
	qsort(shown, nshown, sizeof(*shown), cluster_task_cmp);
	for (size_t i = 0; i < c->nshown; i++)
		if (bsearch(&c->shown[i], shown, nshown, sizeof(*shown), cluster_task_cmp) == NULL)
			runtime_task_remote_gone(c->shown[i].job_id, c->shown[i].task);
	free(c->shown);
	c->shown = shown;
	c->nshown = nshown;
}

static void cluster_read_remote(struct cluster *c)
{
	struct store_task_status *rows = NULL;
	struct cluster_task *shown = NULL;
	size_t n = 0, kept = 0, nshown = 0, maxshown;
	char err[256];
	static int32_t parts[PROTO_LAG_MAX];

	if (store_task_status_list(c->st, 0, &rows, &n, err, sizeof(err)) < 0) {
		log_warn("cluster: cannot read the tasks of the other controllers: %s", err);
		return;
	}
	/* Out of memory: what was shown stays shown until the next tick. */
	maxshown = n + c->nelsewhere;
	shown = calloc(maxshown ? maxshown : 1, sizeof(*shown));
	for (size_t i = 0; i < n; i++) {
		struct store_task_status *r = &rows[i];
		struct runtime_remote rr;
		size_t np = 0;

		if (strcmp(r->controller, c->name) == 0 || !cluster_is_live(c, r->controller) ||
		    r->age_ms > CLUSTER_LEASE_MS)
			continue;
		rows[kept++] = *r;
		memset(&rr, 0, sizeof(rr));
		rr.controller = r->controller;
		rr.pid = r->pid;
		rr.state = r->state;
		rr.restarts = r->restarts;
		rr.last_error = r->last_error;
		rr.assign_known = cluster_parts(r->partitions, parts, PROTO_LAG_MAX, &np);
		rr.parts = parts;
		rr.nparts = np;
		rr.rows_per_second = r->rows_per_second;
		rr.lag = r->lag;
		if (!cluster_runs(c, r->job_id, r->task) && cluster_owner_is(c, r->job_id, r->task, r->controller)) {
			runtime_task_remote(r->job_id, r->task, &rr);
			cluster_shown_add(shown, &nshown, maxshown, r->job_id, r->task);
		}
	}
	free(c->remote);
	c->remote = rows;
	c->nremote = kept;
	/* Placed elsewhere and not reported by its controller yet (it was just
	 * placed, or its controller went): starting there. */
	for (size_t e = 0; e < c->nelsewhere; e++) {
		const struct cluster_elsewhere *x = &c->elsewhere[e];
		struct runtime_remote rr;
		bool seen = false;

		for (size_t i = 0; i < kept && !seen; i++)
			seen = rows[i].job_id == x->job_id && rows[i].task == x->task &&
			       strcmp(rows[i].controller, x->owner) == 0;
		if (seen)
			continue;
		memset(&rr, 0, sizeof(rr));
		rr.controller = x->owner;
		rr.state = "starting";
		rr.last_error = "";
		rr.lag = -1;
		runtime_task_remote(x->job_id, x->task, &rr);
		cluster_shown_add(shown, &nshown, maxshown, x->job_id, x->task);
	}
	cluster_shown_settle(c, shown, nshown);
}

static int64_t cluster_mono_ms(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

bool cluster_tick(struct cluster *c, int64_t now)
{
	struct store_member *m = NULL;
	struct store_job_brief *jobs = NULL;
	struct cluster_task *mine = NULL;
	size_t nm = 0, nj = 0, nmine = 0;
	bool was_fenced = c->fenced, changed = false;
	char err[256];

	free(c->jobs);
	c->jobs = NULL;
	c->njobs = 0;
	c->jobs_read = false;

	c->beat_ok = store_member_beat(c->st, c->name, c->api_url, !c->registered, err, sizeof(err)) == 0;
	/* A catalog cut off by the network answers nothing: the beat fails only
	 * after the connection's timeouts (seconds, store/db_pg.c), so the fence
	 * is judged on the clock after it, not on the tick's start. */
	if (cluster_mono_ms() > now)
		now = cluster_mono_ms();
	if (c->beat_ok) {
		c->registered = true;
		c->last_beat = now;
	} else {
		log_warn("cluster: cannot renew this controller's lease: %s", err);
	}
	if (!c->shared)
		return false;
	c->fenced = c->last_beat == 0 || now - c->last_beat > CLUSTER_LEASE_MS;
	if (c->fenced != was_fenced) {
		if (c->fenced)
			log_warn("cluster: no heartbeat for %d s: the other controllers run this one's tasks now; "
				 "stopping them here until the catalog answers again",
				 CLUSTER_LEASE_MS / 1000);
		else
			log_info("cluster: the catalog answers again; taking tasks again");
		changed = true;
	}
	/* Without the catalog nothing below can be read: keep the placement
	 * until the fence or the next beat, rather than wait on each read. */
	if (c->fenced || !c->beat_ok)
		return changed;
	if (store_members(c->st, &m, &nm, err, sizeof(err)) < 0 ||
	    store_jobs_brief(c->st, &jobs, &nj, err, sizeof(err)) < 0) {
		log_warn("cluster: cannot read the controllers or the jobs: %s", err);
		goto out;
	}
	if (cluster_place(c, m, nm, jobs, nj, &mine, &nmine) < 0) {
		log_warn("cluster: out of memory placing the tasks");
		goto out;
	}
	if (nmine != c->nmine || (nmine > 0 && memcmp(mine, c->mine, nmine * sizeof(*mine)) != 0)) {
		log_info("cluster: %zu live controller(s); %zu task(s) placed here", c->nlive, nmine);
		changed = true;
	}
	free(c->mine);
	c->mine = mine;
	c->nmine = nmine;
	mine = NULL;
	cluster_read_remote(c);
	c->jobs = jobs; /* for the supervisor's part of the tick */
	c->njobs = nj;
	c->jobs_read = true;
	jobs = NULL;
	if (now - c->forgot_at > 60000) {
		c->forgot_at = now;
		if (store_member_leave(c->st, NULL, CLUSTER_FORGET_MS, err, sizeof(err)) < 0)
			log_warn("cluster: %s", err);
	}
out:
	free(m);
	free(jobs);
	free(mine);
	return changed;
}

bool cluster_jobs(const struct cluster *c, const struct store_job_brief **jobs, size_t *n)
{
	*jobs = c->jobs;
	*n = c->njobs;
	return c->jobs_read;
}

static enum task_phase cluster_phase(const char *state)
{
	if (strcmp(state, "running") == 0 || strcmp(state, "standby") == 0)
		return TASK_RUNNING;
	if (strcmp(state, "retrying") == 0)
		return TASK_RETRYING;
	if (strcmp(state, "stopping") == 0)
		return TASK_STOPPING;
	if (strcmp(state, "stopped") == 0)
		return TASK_STOPPED;
	if (strcmp(state, "failed") == 0)
		return TASK_FAILED;
	return TASK_STARTING;
}

size_t cluster_remote_briefs(const struct cluster *c, int64_t job_id, const int *local, size_t nlocal,
			     struct task_brief *out, size_t max)
{
	size_t n = 0;

	for (size_t i = 0; i < c->nremote && n < max; i++) {
		const struct store_task_status *r = &c->remote[i];
		bool mine = false;

		if (r->job_id != job_id)
			continue;
		for (size_t k = 0; k < nlocal && !mine; k++)
			mine = local[k] == r->task;
		/* the freshest row of a task comes first (store order) */
		for (size_t k = 0; k < i && !mine; k++)
			mine = c->remote[k].job_id == job_id && c->remote[k].task == r->task;
		if (!mine)
			out[n++] = (struct task_brief){ cluster_phase(r->state), false };
	}
	return n;
}

void cluster_publish(struct cluster *c, const int64_t *ids, size_t n)
{
	struct store_task_status *rows = NULL;
	struct runtime_task_view *views = NULL;
	size_t nrows = 0, cap = 0;
	char err[256];

	if (!c->shared || c->last_beat == 0 || !c->beat_ok)
		return;
	views = calloc(STORE_TASK_PIDS_MAX, sizeof(*views));
	if (views == NULL)
		return;
	for (size_t j = 0; j < n; j++) {
		size_t nv = runtime_job_tasks(ids[j], views, STORE_TASK_PIDS_MAX);

		for (size_t i = 0; i < nv && i < STORE_TASK_PIDS_MAX; i++) {
			const struct runtime_task_view *v = &views[i];
			struct store_task_status *r;
			size_t off = 0;

			if (strcmp(v->controller, c->name) != 0 || (v->pid == 0 && strcmp(v->state, "retrying") != 0 &&
								    strcmp(v->state, "failed") != 0))
				continue;
			if (nrows == cap) {
				struct store_task_status *grown = realloc(rows, (cap ? cap * 2 : 8) * sizeof(*grown));
				if (grown == NULL)
					goto out;
				rows = grown;
				cap = cap ? cap * 2 : 8;
			}
			r = &rows[nrows++];
			memset(r, 0, sizeof(*r));
			r->job_id = ids[j];
			r->task = v->task;
			r->pid = v->pid;
			snprintf(r->state, sizeof(r->state), "%s", v->state);
			r->restarts = v->restarts;
			if (v->assign_known) {
				off = (size_t)snprintf(r->partitions, sizeof(r->partitions), "[");
				for (size_t k = 0; k < v->nparts && off + 16 < sizeof(r->partitions); k++)
					off += (size_t)snprintf(r->partitions + off, sizeof(r->partitions) - off, "%s%d",
								k ? "," : "", (int)v->parts[k]);
				snprintf(r->partitions + off, sizeof(r->partitions) - off, "]");
			} else {
				snprintf(r->partitions, sizeof(r->partitions), "null");
			}
			r->rows_per_second = v->rows_per_second;
			r->lag = v->lag_known ? v->lag_total : -1;
			snprintf(r->last_error, sizeof(r->last_error), "%s", v->last_error);
		}
	}
	if (store_task_status_publish(c->st, c->name, rows, nrows, err, sizeof(err)) < 0)
		log_warn("cluster: cannot publish this controller's tasks: %s", err);
out:
	free(rows);
	free(views);
}

void cluster_leave(struct cluster *c)
{
	char err[256];

	if (c->registered && store_member_leave(c->st, c->name, 0, err, sizeof(err)) < 0)
		log_warn("cluster: cannot leave the catalog's list of controllers: %s", err);
}
