/* The cluster: controllers sharing one catalog (a PostgreSQL store).
 *
 * Every SUP_CLUSTER_TICK_MS the supervisor calls cluster_tick, which
 *   - renews this controller's row (name, API address, heartbeat by the
 *     database's clock);
 *   - reads the controllers and counts as live those whose heartbeat is
 *     younger than CLUSTER_LEASE_MS;
 *   - places every task of every running job on the live controllers
 *     (placement.h: the same answer on every controller) and keeps the set
 *     placed here, which the supervisor runs (cluster_runs);
 *   - reads what the others published of their tasks and hands it to
 *     common/runtime.h, so this controller's API answers for every task;
 *   - publishes what this controller's tasks are doing (cluster_publish).
 * A controller that could not renew its row for CLUSTER_LEASE_MS may have
 * been cut off: the others have taken its tasks over, so it runs none until
 * it renews again (it "fences itself").  Correctness does not rest on that:
 * two controllers running one task for a moment are kept exact by the
 * consumer group (static membership: the later member fences the earlier
 * out) and by the progress table's fence.
 *
 * With the SQLite catalog there is one controller (its data directory is
 * locked): every task is placed here, and nothing is fenced.
 */
#ifndef SS_CLUSTER_H
#define SS_CLUSTER_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "store.h"
#include "tasks.h"

/* A controller whose heartbeat is older than this is gone. */
#define CLUSTER_LEASE_MS 6000
/* Rows of controllers gone longer than this are removed. */
#define CLUSTER_FORGET_MS (3600 * 1000)

struct cluster;

/* name: unique among the controllers of the catalog; api_url: how the
 * others and users reach its API.  shared: the catalog is shared (PG). */
struct cluster *cluster_new(struct store *st, const char *name, const char *api_url, bool shared);
void cluster_free(struct cluster *c);

/* One tick (now: monotonic ms at its start).  Returns whether the set of
 * tasks placed here changed (the supervisor then reconciles). */
bool cluster_tick(struct cluster *c, int64_t now);

/* The jobs as the last cluster_tick read them, valid until the next tick;
 * false when it read none (not shared, no heartbeat, or the catalog did not
 * answer). */
bool cluster_jobs(const struct cluster *c, const struct store_job_brief **jobs, size_t *n);

/* Whether this controller runs task `task` of job_id now. */
bool cluster_runs(const struct cluster *c, int64_t job_id, int task);

/* Whether the catalog is shared with other controllers. */
bool cluster_shared(const struct cluster *c);

/* The phases of job_id's tasks that other live controllers run (not those in
 * local[0..nlocal), the indexes this controller holds), into out[0..max);
 * returns how many. */
size_t cluster_remote_briefs(const struct cluster *c, int64_t job_id, const int *local, size_t nlocal,
			     struct task_brief *out, size_t max);

/* Publishes this controller's tasks (their figures from common/runtime.h),
 * for the jobs in ids[0..n). */
void cluster_publish(struct cluster *c, const int64_t *ids, size_t n);

/* Leaves the cluster on a clean shutdown (the row and the published tasks
 * go, so the others place the tasks at once). */
void cluster_leave(struct cluster *c);

#endif
