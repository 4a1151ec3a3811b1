#!/usr/bin/env bash
# A schema registry with Confluent's REST API for the tests.
#
# NOT Confluent's Schema Registry: our own stand-in, registry_server.py beside
# this file (Python's standard library; its header says what it serves and
# why no real registry could be had here).  The producers and clients around
# it are other projects' (confluent-kafka, python3-avro, google.protobuf).
#
#   registry.sh start DIR [--auth] [--prefix /PATH]
#                        start it on a free 127.0.0.1 port (DIR's old port on a
#                        restart), wait until it answers, print
#                          REGISTRY=http://127.0.0.1:PORT/PATH
#                        the base URL under which /subjects/... and
#                        /schemas/ids/... are served.  --auth: basic auth with
#                        a random password kept in DIR/auth (mode 0600, never
#                        on a command line); prints also REGISTRY_USER=... and
#                        REGISTRY_PASSWORD=...  --prefix serves the API under
#                        /PATH (as a proxy or Apicurio's /apis/ccompat/v7 would).
#                        Both are fixed when DIR is first started: a restart
#                        keeps them and the registered schemas (DIR/state.json).
#   registry.sh stop DIR    SIGTERM, wait, then SIGKILL
#   registry.sh status DIR  exit 0 and print the lines above if it runs, else 1
#
# Only the KEY=VALUE lines go to stdout; progress and errors go to stderr.  The
# server writes DIR/registry.pid, DIR/registry.out and DIR/requests.log (one
# "METHOD PATH STATUS" line per request, for counting schema fetches).
#
# Environment: PYTHON (default /usr/bin/python3), REGISTRY_START_TIMEOUT (s,
# default 30), REGISTRY_STOP_TIMEOUT (s, default 10).
set -euo pipefail

HERE="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
PYTHON="${PYTHON:-/usr/bin/python3}"
START_TIMEOUT="${REGISTRY_START_TIMEOUT:-30}"
STOP_TIMEOUT="${REGISTRY_STOP_TIMEOUT:-10}"
USER_NAME=streamtest

log() { printf 'registry.sh: %s\n' "$*" >&2; }
die() { printf 'registry.sh: error: %s\n' "$*" >&2; exit 1; }
# shellcheck source=lib.sh
. "$HERE/lib.sh"

usage() {
	echo "usage: $0 {start [--auth] [--prefix /PATH]|stop|status} DIR" >&2
	exit 2
}

# The pid of DIR's server if it runs, else nothing (and status 1).
server_pid() {
	local pid
	[ -f "$DIR/registry.pid" ] || return 1
	pid="$(cat "$DIR/registry.pid")"
	[ -n "$pid" ] && [ -r "/proc/$pid/cmdline" ] || return 1
	tr '\0' ' ' <"/proc/$pid/cmdline" | grep -qF "registry_server.py --dir $DIR " || return 1
	echo "$pid"
}

print_lines() {
	echo "REGISTRY=http://127.0.0.1:$(cat "$DIR/port")$(cat "$DIR/prefix")"
	if [ -f "$DIR/auth" ]; then
		echo "REGISTRY_USER=$USER_NAME"
		echo "REGISTRY_PASSWORD=$(cut -d: -f2- "$DIR/auth")"
	fi
}

# answers: status 0 when the server answers HTTP at all (401 included).
answers() {
	"$PYTHON" - "$1" <<'EOF'
import sys, urllib.request, urllib.error
try:
    urllib.request.urlopen(sys.argv[1] + "/subjects", timeout=2)
except urllib.error.HTTPError:
    pass
except Exception:
    sys.exit(1)
EOF
}

start() {
	local auth="$1" prefix="$2" port pid i
	mkdir -p "$DIR"
	DIR="$(cd "$DIR" && pwd)"
	if server_pid >/dev/null; then
		print_lines
		return 0
	fi
	if [ -f "$DIR/port" ]; then
		[ "$auth" = 0 ] || [ -f "$DIR/auth" ] || die "$DIR was first started without --auth; use a new DIR"
		[ -z "$prefix" ] || [ "$prefix" = "$(cat "$DIR/prefix")" ] ||
			die "$DIR was first started with prefix '$(cat "$DIR/prefix")'; use a new DIR"
		port="$(cat "$DIR/port")"
	else
		case "$prefix" in "" | /*) ;; *) die "--prefix must start with /" ;; esac
		printf '%s' "${prefix%/}" >"$DIR/prefix"
		if [ "$auth" = 1 ]; then
			(umask 077 && "$PYTHON" -c "import secrets; print('$USER_NAME:' + secrets.token_urlsafe(18))" >"$DIR/auth")
		fi
		port="$("$PYTHON" -c 'import socket; s = socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])')"
		echo "$port" >"$DIR/port"
	fi
	setsid "$PYTHON" "$HERE/registry_server.py" --dir "$DIR" --port "$port" \
		--prefix "$(cat "$DIR/prefix")" </dev/null >>"$DIR/registry.out" 2>&1 &
	pid=$!
	echo "$pid" >"$DIR/registry.pid"
	for ((i = 0; i < START_TIMEOUT * 10; i++)); do
		if ! kill -0 "$pid" 2>/dev/null; then
			tail -n 20 "$DIR/registry.out" >&2
			die "the registry exited at start (port $port taken?)"
		fi
		if answers "http://127.0.0.1:$port$(cat "$DIR/prefix")"; then
			log "started (pid $pid) on 127.0.0.1:$port"
			print_lines
			return 0
		fi
		sleep 0.1
	done
	kill -KILL "$pid" 2>/dev/null || true
	die "the registry did not answer within ${START_TIMEOUT}s"
}

[ $# -ge 2 ] || usage
VERB="$1"
DIR="$2"
shift 2
case "$VERB" in
start)
	AUTH=0 PREFIX=""
	while [ $# -gt 0 ]; do
		case "$1" in
		--auth) AUTH=1 ;;
		--prefix) [ $# -ge 2 ] || usage; PREFIX="$2"; shift ;;
		*) usage ;;
		esac
		shift
	done
	start "$AUTH" "$PREFIX"
	;;
stop)
	[ $# -eq 0 ] || usage
	[ -d "$DIR" ] || exit 0
	DIR="$(cd "$DIR" && pwd)"
	if pid="$(server_pid)"; then
		stop_pid "$pid" "$DIR/registry.pid"
	else
		rm -f "$DIR/registry.pid"
	fi
	;;
status)
	[ $# -eq 0 ] || usage
	[ -d "$DIR" ] || exit 1
	DIR="$(cd "$DIR" && pwd)"
	server_pid >/dev/null || exit 1
	print_lines
	;;
*) usage ;;
esac
