# Shared by kafka.sh and connect.sh (sourced; they define log and STOP_TIMEOUT).

# stop_pid PID PIDFILE: SIGTERM, up to STOP_TIMEOUT s for the exit, then
# SIGKILL; removes PIDFILE and logs the outcome.
stop_pid() {
	local pid="$1" pidfile="$2" i
	kill -TERM "$pid" 2>/dev/null || true
	for ((i = 0; i < STOP_TIMEOUT * 10; i++)); do
		kill -0 "$pid" 2>/dev/null || break
		sleep 0.1
	done
	if kill -0 "$pid" 2>/dev/null; then
		log "still running after ${STOP_TIMEOUT}s: SIGKILL"
		kill -KILL "$pid" 2>/dev/null || true
		while kill -0 "$pid" 2>/dev/null; do sleep 0.1; done
	fi
	rm -f "$pidfile"
	log "stopped (pid $pid)"
}
