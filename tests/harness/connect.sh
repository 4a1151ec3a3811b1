#!/usr/bin/env bash
# A throwaway Kafka Connect standalone worker with Debezium's JDBC sink
# connector, for the benchmark's peer figure (tests/bench/bench.py).
#
#   connect.sh fetch        fetch the jars (once, cached) and print where they are
#   connect.sh start DIR    fetch the jars, write DIR/worker.properties, start the
#                           worker (no connector yet) with its REST API on a free
#                           127.0.0.1 port, wait until it answers, print
#                             CONNECT_URL=http://127.0.0.1:PORT
#                             PID=...
#                           Connectors are then added with POST /connectors.
#   connect.sh stop DIR     SIGTERM, wait, then SIGKILL
#   connect.sh status DIR   exit 0 and print CONNECT_URL=... if it runs, else exit 1
#
# Environment:
#   CONNECT_BOOTSTRAP       required by start: the broker, e.g. 127.0.0.1:9092
#                           (tests/harness/kafka.sh prints it)
#   CONNECT_CACHE_DIR       where the jars go (default
#                           ${XDG_CACHE_HOME:-$HOME/.cache}/streamserver/connect):
#                           runtime/ holds connect-runtime and connect-json (the
#                           classpath), plugins/debezium-jdbc/ the connector and
#                           the PostgreSQL driver (plugin.path, isolated)
#   CONNECT_MAVEN_REPO      Maven local repository to use (default: Maven's, ~/.m2)
#   CONNECT_HEAP_OPTS       JVM heap options (default -Xms256m -Xmx1g)
#   CONNECT_START_TIMEOUT   seconds to wait for the REST API (default 180)
#   CONNECT_STOP_TIMEOUT    seconds between SIGTERM and SIGKILL (default 30)
#   PYTHON                  default /usr/bin/python3 (free port)
#
# Versions are those of tests/harness/connect-pom.xml: Kafka Connect 3.9.1 (the
# broker's), debezium-connector-jdbc 3.0.7.Final, PostgreSQL JDBC 42.7.5.
set -euo pipefail

HERE="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
POM="$HERE/connect-pom.xml"
PYTHON="${PYTHON:-/usr/bin/python3}"
CACHE="${CONNECT_CACHE_DIR:-${XDG_CACHE_HOME:-$HOME/.cache}/streamserver/connect}"
START_TIMEOUT="${CONNECT_START_TIMEOUT:-180}"
STOP_TIMEOUT="${CONNECT_STOP_TIMEOUT:-30}"
HEAP_OPTS="${CONNECT_HEAP_OPTS:--Xms256m -Xmx1g}"

log() { printf 'connect.sh: %s\n' "$*" >&2; }
die() { printf 'connect.sh: error: %s\n' "$*" >&2; exit 1; }
# shellcheck source=lib.sh
. "$HERE/lib.sh"

usage() {
	echo "usage: $0 fetch | {start|stop|status} DIR" >&2
	exit 2
}

# Copies the jars into $CACHE unless a complete copy made from the same pom is
# there; a lock serialises concurrent first runs and the copy is renamed into
# place, so an interrupted fetch leaves nothing half-done.
fetch_jars() {
	local want tmp profile out
	command -v mvn >/dev/null || die "mvn not found (apt-get install maven)"
	command -v java >/dev/null || die "java not found (apt-get install default-jre-headless)"
	want="$(sha256sum "$POM" | cut -d' ' -f1)"
	if [ -f "$CACHE/.complete" ] && [ "$(cat "$CACHE/.complete")" = "$want" ]; then
		return 0
	fi
	mkdir -p "$(dirname "$CACHE")"
	exec 9>"$CACHE.lock"
	flock 9
	if [ -f "$CACHE/.complete" ] && [ "$(cat "$CACHE/.complete")" = "$want" ]; then
		exec 9>&-
		return 0
	fi
	log "fetching Kafka Connect and the Debezium JDBC sink with Maven into $CACHE"
	tmp="$(mktemp -d "$CACHE.tmp.XXXXXX")"
	for profile in runtime plugin; do
		if [ "$profile" = runtime ]; then out="$tmp/runtime"; else out="$tmp/plugins/debezium-jdbc"; fi
		local -a mvn_args=(-q -B -Dstyle.color=never -f "$POM" -P "$profile"
			dependency:copy-dependencies "-DoutputDirectory=$out" -DincludeScope=runtime)
		if [ -n "${CONNECT_MAVEN_REPO:-}" ]; then
			mvn_args+=("-Dmaven.repo.local=$CONNECT_MAVEN_REPO")
		fi
		if ! mvn "${mvn_args[@]}" >"$tmp/mvn.log" 2>&1; then
			cat "$tmp/mvn.log" >&2
			rm -rf "$tmp"
			die "Maven could not fetch the $profile jars (is Maven Central reachable?)"
		fi
	done
	rm -f "$tmp/mvn.log"
	ls "$tmp/runtime"/connect-runtime-*.jar >/dev/null 2>&1 || { rm -rf "$tmp"; die "connect-runtime missing after the fetch"; }
	ls "$tmp/plugins/debezium-jdbc"/debezium-connector-jdbc-*.jar >/dev/null 2>&1 || { rm -rf "$tmp"; die "debezium-connector-jdbc missing after the fetch"; }
	echo "$want" >"$tmp/.complete"
	rm -rf "$CACHE"
	mv "$tmp" "$CACHE"
	exec 9>&-
	log "cached $(find "$CACHE" -name '*.jar' | wc -l) jars in $CACHE"
}

free_port() {
	"$PYTHON" -c '
import socket
s = socket.socket()
s.bind(("127.0.0.1", 0))
print(s.getsockname()[1])'
}

# The pid of DIR's worker if it runs, else nothing (and status 1).
worker_pid() {
	local pid
	[ -f "$DIR/connect.pid" ] || return 1
	pid="$(cat "$DIR/connect.pid")"
	[ -n "$pid" ] && [ -r "/proc/$pid/cmdline" ] || return 1
	tr '\0' ' ' <"/proc/$pid/cmdline" | grep -qF "ConnectStandalone $DIR/worker.properties" || return 1
	echo "$pid"
}

cmd_start() {
	local pid port t0 i
	t0=$EPOCHREALTIME
	[ -n "${CONNECT_BOOTSTRAP:-}" ] || die "set CONNECT_BOOTSTRAP to the broker's host:port"
	mkdir -p "$DIR"
	DIR="$(cd "$DIR" && pwd -P)"
	if pid="$(worker_pid)"; then
		log "already running (pid $pid)"
		echo "CONNECT_URL=$(cat "$DIR/url")"
		echo "PID=$pid"
		return 0
	fi
	fetch_jars
	port="$(free_port)"
	mkdir -p "$DIR/logs"
	cat >"$DIR/worker.properties" <<PROPS
# Kafka Connect standalone worker (tests/harness/connect.sh).
bootstrap.servers=$CONNECT_BOOTSTRAP
key.converter=org.apache.kafka.connect.storage.StringConverter
value.converter=org.apache.kafka.connect.json.JsonConverter
value.converter.schemas.enable=true
offset.storage.file.filename=$DIR/connect.offsets
offset.flush.interval.ms=10000
plugin.path=$CACHE/plugins
listeners=http://127.0.0.1:$port
rest.advertised.host.name=127.0.0.1
consumer.auto.offset.reset=earliest
PROPS
	cat >"$DIR/log4j.properties" <<PROPS
log4j.rootLogger=INFO, file
log4j.appender.file=org.apache.log4j.RollingFileAppender
log4j.appender.file.File=$DIR/logs/connect.log
log4j.appender.file.MaxFileSize=20MB
log4j.appender.file.MaxBackupIndex=2
log4j.appender.file.layout=org.apache.log4j.PatternLayout
log4j.appender.file.layout.ConversionPattern=[%d] %p %m (%c)%n
log4j.logger.org.reflections=ERROR
PROPS
	echo "http://127.0.0.1:$port" >"$DIR/url"
	# setsid: not killed with the caller's process group; stop it with
	# `connect.sh stop`.
	# shellcheck disable=SC2086
	setsid java $HEAP_OPTS -XX:+UseG1GC -Djava.awt.headless=true \
		-Dlog4j.configuration="file:$DIR/log4j.properties" \
		-cp "$CACHE/runtime/*" org.apache.kafka.connect.cli.ConnectStandalone "$DIR/worker.properties" \
		</dev/null >"$DIR/connect.out" 2>&1 &
	pid=$!
	echo "$pid" >"$DIR/connect.pid"
	for ((i = 0; i < START_TIMEOUT * 5; i++)); do
		if ! kill -0 "$pid" 2>/dev/null; then
			tail -n 30 "$DIR/connect.out" >&2 || true
			grep -E ' (ERROR|FATAL) ' "$DIR/logs/connect.log" 2>/dev/null | tail -n 20 >&2 || true
			rm -f "$DIR/connect.pid"
			die "the Connect worker exited during startup"
		fi
		if "$PYTHON" -c '
import sys, urllib.request
urllib.request.urlopen(sys.argv[1] + "/connector-plugins", timeout=2).read()' \
			"http://127.0.0.1:$port" >/dev/null 2>&1; then
			log "worker ready on 127.0.0.1:$port (pid $pid) in $(awk "BEGIN { printf \"%.1f\", $EPOCHREALTIME - $t0 }")s"
			echo "CONNECT_URL=http://127.0.0.1:$port"
			echo "PID=$pid"
			return 0
		fi
		sleep 0.2
	done
	kill -KILL "$pid" 2>/dev/null || true
	rm -f "$DIR/connect.pid"
	tail -n 30 "$DIR/connect.out" >&2 || true
	die "the Connect REST API did not answer within ${START_TIMEOUT}s"
}

cmd_stop() {
	local pid
	[ -d "$DIR" ] || { log "$DIR does not exist: nothing to stop"; return 0; }
	DIR="$(cd "$DIR" && pwd -P)"
	if ! pid="$(worker_pid)"; then
		rm -f "$DIR/connect.pid"
		log "not running"
		return 0
	fi
	stop_pid "$pid" "$DIR/connect.pid"
}

cmd_status() {
	local pid
	[ -d "$DIR" ] || return 1
	DIR="$(cd "$DIR" && pwd -P)"
	pid="$(worker_pid)" || return 1
	echo "CONNECT_URL=$(cat "$DIR/url")"
	echo "PID=$pid"
}

case "${1:-}" in
fetch)
	[ $# -eq 1 ] || usage
	fetch_jars
	echo "CONNECT_CACHE=$CACHE"
	;;
start | stop | status)
	[ $# -eq 2 ] || usage
	DIR="$2"
	"cmd_$1"
	;;
*) usage ;;
esac
