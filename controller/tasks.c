#include "tasks.h"

const char *tasks_phase_name(enum task_phase phase)
{
	switch (phase) {
	case TASK_STARTING:
		return "starting";
	case TASK_RUNNING:
		return "running";
	case TASK_RETRYING:
		return "retrying";
	case TASK_STOPPING:
		return "stopping";
	case TASK_STOPPED:
		return "stopped";
	case TASK_FAILED:
		return "failed";
	}
	return "stopped";
}

const char *tasks_job_state(const struct task_brief *t, size_t n)
{
	size_t count[TASK_FAILED + 1] = { 0 };
	bool staying = false, active;

	for (size_t i = 0; i < n; i++)
		staying = staying || !t[i].leaving;
	for (size_t i = 0; i < n; i++) {
		if (staying && t[i].leaving)
			continue;
		/* A task that stays but is stopping is being restarted. */
		if (t[i].phase == TASK_STOPPING && !t[i].leaving)
			count[TASK_STARTING]++;
		else
			count[t[i].phase]++;
	}
	if (count[TASK_FAILED] > 0)
		return "failed";
	active = count[TASK_RUNNING] + count[TASK_STARTING] + count[TASK_RETRYING] > 0;
	if (!active)
		return count[TASK_STOPPING] > 0 ? "stopping" : "stopped";
	if (count[TASK_STARTING] == 0 && count[TASK_RETRYING] == 0)
		return "running";
	if (count[TASK_RUNNING] > 0)
		return "degraded";
	return count[TASK_RETRYING] > 0 ? "retrying" : "starting";
}
