#include "policy.h"

#include <stdio.h>
#include <string.h>

#include "exitcodes.h"

int64_t policy_backoff_ms(int crashes, int64_t retry_interval_ms)
{
	int64_t delay = retry_interval_ms > POLICY_MIN_DELAY_MS ? retry_interval_ms : POLICY_MIN_DELAY_MS;

	for (int i = 1; i < crashes && delay < POLICY_MAX_BACKOFF_MS; i++)
		delay *= 2;
	return delay < POLICY_MAX_BACKOFF_MS ? delay : POLICY_MAX_BACKOFF_MS;
}

struct policy_decision policy_decide(const struct policy_input *in)
{
	struct policy_decision d;
	bool config = !in->signaled && (in->code == WORKER_EXIT_CONFIG || in->code == WORKER_EXIT_DATA);

	memset(&d, 0, sizeof(d));
	d.retries = in->retries;
	d.crashes = in->crashes;
	if (in->stop_requested && (in->signaled || in->code == WORKER_EXIT_STOPPED)) {
		d.action = POLICY_STOP;
		return d;
	}
	if (config) {
		d.action = POLICY_FAIL;
		snprintf(d.message, sizeof(d.message), "%s", in->why);
		return d;
	}
	if (in->stop_requested) {
		/* Asked to stop, but it failed on the way out: stopped all the same. */
		d.action = POLICY_STOP;
		snprintf(d.message, sizeof(d.message), "%s", in->why);
		return d;
	}

	if (in->batch_seen)
		d.retries = 0; /* it made progress since the last outage */
	if (in->batch_seen || in->uptime_ms >= POLICY_HEALTHY_MS)
		d.crashes = 0;
	if (!in->signaled && in->code == WORKER_EXIT_RETRY) {
		/* An outage (database or brokers): the same interval every time. */
		d.retries++;
		if (in->max_retries > 0 && d.retries > in->max_retries) {
			d.action = POLICY_FAIL;
			snprintf(d.message, sizeof(d.message),
				 "gave up after %lld retries (SCHEDULE.MAX_RETRIES): %s",
				 (long long)in->max_retries, in->why);
			return d;
		}
		d.action = POLICY_RESTART;
		d.delay_ms = in->retry_interval_ms > POLICY_MIN_DELAY_MS ? in->retry_interval_ms
									: POLICY_MIN_DELAY_MS;
		snprintf(d.message, sizeof(d.message), "%s", in->why);
		return d;
	}
	/* A crash: a signal we did not send, or an exit code outside the contract
	 * (0 included, since nobody asked it to stop). */
	d.crashes++;
	if (d.crashes >= POLICY_CRASH_LOOP) {
		d.action = POLICY_FAIL;
		snprintf(d.message, sizeof(d.message), "crash loop: %d crashes in a row; last: %s",
			 d.crashes, in->why);
		return d;
	}
	d.action = POLICY_RESTART;
	d.delay_ms = policy_backoff_ms(d.crashes, in->retry_interval_ms);
	snprintf(d.message, sizeof(d.message), "%s", in->why);
	return d;
}

void policy_describe_exit(bool signaled, int code, int sig, char *buf, size_t buflen)
{
	const char *what;

	if (signaled) {
		snprintf(buf, buflen, "signal %d (%s)", sig, strsignal(sig));
		return;
	}
	switch (code) {
	case WORKER_EXIT_STOPPED:
		what = "stopped";
		break;
	case WORKER_EXIT_RETRY:
		what = "retriable failure";
		break;
	case WORKER_EXIT_CONFIG:
		what = "configuration error";
		break;
	case WORKER_EXIT_DATA:
		what = "data error";
		break;
	default:
		what = "unexpected exit";
		break;
	}
	snprintf(buf, buflen, "exit code %d (%s)", code, what);
}
