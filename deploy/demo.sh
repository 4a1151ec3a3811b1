#!/usr/bin/env bash
# The demo: a whole Streaming Server on this machine, for a first look and for
# the README's "Your first job".  See usage() below (deploy/demo.sh --help).
set -euo pipefail
cd "$(dirname "$0")/.."
ROOT=$(pwd)
BUILD=${STREAMSERVER_BUILD_DIR:-$ROOT/build}
PY=/usr/bin/python3
N=${DEMO_MESSAGES:-10000}
PORT=${DEMO_PORT:-8080}
WORK=${DEMO_DIR:-/tmp/streamserver-demo}
URL="http://127.0.0.1:$PORT"
API="$URL/api/v1"
LOG="$WORK/streamserver.log"
SERVER_PID=""
MADE=0   # 1 once WORK is ours: only then does the cleanup remove it

usage() {
    cat <<EOF
usage: deploy/demo.sh [--help]

Installs what is missing (apt, scripts/install-deps.sh), builds, starts
PostgreSQL, an Apache Kafka broker and streamserver on this machine, loads
$N sample messages through a job made over the REST API, shows the rows and
the job's figures, and keeps everything running for you to try (the README's
"Your first job") until Ctrl-C.  Ctrl-C stops it all and removes every file it
made, the PostgreSQL cluster and the Kafka log included.

Environment:
  DEMO_PORT=P      the port of the REST API and the status page (default 8080).
                   When 8080 is taken: DEMO_PORT=8081 deploy/demo.sh
  DEMO_MESSAGES=N  how many sample messages (default 10000)
  DEMO_DIR=DIR     where the demo keeps its files, the log and the env file
                   included (default /tmp/streamserver-demo)

While it runs, in another shell:  . $WORK/env
sets STREAMCTL_URL, PGHOST/PGPORT/PGUSER/PGPASSWORD/PGDATABASE (psql needs no
arguments), KAFKA (the bootstrap address) and PATH (streamctl, demo-kafka).
EOF
}

case "${1:-}" in
-h | --help) usage; exit 0 ;;
"") ;;
*) usage >&2; exit 2 ;;
esac

say() { printf '\n\033[1m== %s\033[0m\n' "$*"; }
die() { printf '\ndemo: %s\n' "$*" >&2; exit 1; }

# The log's last lines, and a copy of it outside DEMO_DIR (which the cleanup
# removes) so that the reason stays readable.
show_log() {
    local keep="${TMPDIR:-/tmp}/streamserver-demo-failed.log"
    [ -s "$LOG" ] || return 0
    printf '\nthe last lines of the controller log:\n' >&2
    tail -n 20 "$LOG" | sed 's/^/  /' >&2
    cp "$LOG" "$keep" 2>/dev/null && printf 'the whole log: %s\n' "$keep" >&2
    return 0
}

cleanup() {
    local rc=$?
    trap - EXIT INT TERM
    [ "$MADE" = 1 ] || exit "$rc"
    say "stopping everything the demo started and removing $WORK"
    if [ -n "$SERVER_PID" ]; then
        kill -TERM "$SERVER_PID" 2>/dev/null || true
        wait "$SERVER_PID" 2>/dev/null || true
    fi
    tests/harness/kafka.sh stop "$WORK/kafka" >/dev/null 2>&1 || true
    tests/harness/pg.sh destroy "$WORK/pg" >/dev/null 2>&1 || true
    rm -rf "$WORK"
    exit "$rc"
}
trap cleanup EXIT
trap 'exit 130' INT
trap 'exit 143' TERM

port_busy() {
    "$PY" -c '
import socket, sys
s = socket.socket()
s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
try:
    s.bind(("127.0.0.1", int(sys.argv[1])))
except OSError:
    sys.exit(0)
sys.exit(1)' "$1"
}

# The program that holds a port, when ss can tell (root sees every one).
port_holder() {
    ss -Hltnp "sport = :$1" 2>/dev/null | sed -n 's/.*users:((\("[^"]*"\),pid=\([0-9]*\).*/\1 (pid \2)/p' | head -n 1
}

# The directory: another demo's, or what a killed one left.
if [ -e "$WORK" ]; then
    if [ -f "$WORK/demo.pid" ] && kill -0 "$(cat "$WORK/demo.pid")" 2>/dev/null; then
        die "a demo already runs from $WORK (pid $(cat "$WORK/demo.pid")): stop it with Ctrl-C in its
terminal, or start another one elsewhere: DEMO_DIR=/tmp/demo2 DEMO_PORT=8081 deploy/demo.sh"
    fi
    [ -f "$WORK/demo.pid" ] || die "$WORK exists and is not a demo's directory; remove it or set DEMO_DIR"
    say "removing what an earlier demo left in $WORK"
    # its controller, if it outlived it (a kill -9 of the demo)
    old=$(cat "$WORK/streamserver.pid" 2>/dev/null || true)
    if [ -n "$old" ] && tr '\0' ' ' <"/proc/$old/cmdline" 2>/dev/null | grep -q -- "--data-dir $WORK/data"; then
        kill -TERM "$old" 2>/dev/null || true
        for _ in $(seq 50); do kill -0 "$old" 2>/dev/null || break; sleep 0.1; done
    fi
    tests/harness/kafka.sh stop "$WORK/kafka" >/dev/null 2>&1 || true
    tests/harness/pg.sh destroy "$WORK/pg" >/dev/null 2>&1 || true
    rm -rf "$WORK"
fi
# The port, before anything starts.
case "$PORT" in
'' | *[!0-9]*) die "DEMO_PORT=$PORT is not a port number (1-65535)" ;;
esac
[ "$PORT" -ge 1 ] && [ "$PORT" -le 65535 ] || die "DEMO_PORT=$PORT is not a port number (1-65535)"
if port_busy "$PORT"; then
    holder=$(port_holder "$PORT")
    alt=$PORT
    while [ "$alt" -lt 65535 ]; do
        alt=$((alt + 1))
        port_busy "$alt" || break
    done
    die "port $PORT is already in use${holder:+ by $holder}: the demo's API and status page need it.
Choose another port, e.g.:  DEMO_PORT=$alt deploy/demo.sh"
fi
mkdir -p "$WORK/bin"
MADE=1
echo $$ >"$WORK/demo.pid"

say "installing dependencies (apt, idempotent)"
bash scripts/install-deps.sh

say "building"
[ -f "$BUILD/build.ninja" ] || meson setup "$BUILD" >/dev/null
ninja -C "$BUILD" >/dev/null

say "starting PostgreSQL and Kafka (the first run fetches the Kafka jars with Maven)"
PG_ENV=$(tests/harness/pg.sh start "$WORK/pg") || die "PostgreSQL did not start (see above)"
KAFKA_ENV=$(tests/harness/kafka.sh start "$WORK/kafka") || {
    tail -n 20 "$WORK/kafka/kafka.out" 2>/dev/null | sed 's/^/  /' >&2
    die "the Kafka broker did not start (its output above)"
}
envval() { printf '%s\n' "$1" | sed -n "s/^$2=//p"; }
PGURI=$(envval "$PG_ENV" PGURI)
BOOTSTRAP=$(envval "$KAFKA_ENV" BOOTSTRAP)
eval "$("$PY" - "$PGURI" <<'PYEOF'
import sys, shlex, urllib.parse as u
p = u.urlparse(sys.argv[1])
for k, v in (("DBHOST", p.hostname), ("DBPORT", p.port), ("DBUSER", u.unquote(p.username or "")),
             ("DBPASS", u.unquote(p.password or "")), ("DBNAME", p.path.lstrip("/"))):
    print(f"{k}={shlex.quote(str(v))}")
PYEOF
)"

# What a second shell needs for the README's first job.
ln -s "$BUILD/cli/streamctl" "$WORK/bin/streamctl"
ln -s "$ROOT/deploy/demo-kafka" "$WORK/bin/demo-kafka"
q() { printf '%q' "$1"; }
cat >"$WORK/env" <<EOF
# deploy/demo.sh's services (removed when the demo stops): . $WORK/env
export STREAMCTL_URL=$URL
export PGHOST=$(q "$DBHOST") PGPORT=$(q "$DBPORT") PGUSER=$(q "$DBUSER") PGPASSWORD=$(q "$DBPASS") PGDATABASE=$(q "$DBNAME")
export PGURI=$(q "$PGURI")
export KAFKA=$(q "$BOOTSTRAP")
export PATH=$(q "$WORK/bin"):"\$PATH"
EOF
export KAFKA="$BOOTSTRAP"

psql -q "$PGURI" <<'SQL'
CREATE TABLE public.demo_orders (
    column_1 varchar(32), column_2 bigint, column_3 numeric,
    column_4 varchar(32), column_5 varchar(32));
SQL
deploy/demo-kafka create-topic demo_topic 4 >/dev/null

# Everything the demo started must still run; else stop with the reason.
# check_alive quick: the controller only (in the short waits).
check_alive() {
    if [ -n "$SERVER_PID" ] && ! kill -0 "$SERVER_PID" 2>/dev/null; then
        local st=0
        wait "$SERVER_PID" || st=$?
        SERVER_PID=""
        show_log
        die "streamserver exited (status $st); the reason is in its log's last lines above"
    fi
    [ "${1:-}" != quick ] || return 0
    tests/harness/pg.sh status "$WORK/pg" >/dev/null 2>&1 ||
        die "PostgreSQL stopped (its log: $WORK/pg/cluster/log, removed on exit)"
    tests/harness/kafka.sh status "$WORK/kafka" >/dev/null 2>&1 || {
        tail -n 20 "$WORK/kafka/kafka.out" 2>/dev/null | sed 's/^/  /' >&2
        die "the Kafka broker stopped (its output above)"
    }
}

say "starting streamserver on $URL (log: $LOG)"
"$BUILD/controller/streamserver" --listen "127.0.0.1:$PORT" --data-dir "$WORK/data" 2>"$LOG" &
SERVER_PID=$!
echo "$SERVER_PID" >"$WORK/streamserver.pid"
up=0
for _ in $(seq 200); do
    check_alive quick
    if curl -sf "$URL/healthz" >/dev/null 2>&1; then
        up=1
        break
    fi
    sleep 0.1
done
[ "$up" = 1 ] || { show_log; die "streamserver does not answer on $URL/healthz after 20 s"; }

# post PATH JSON: the id of what was made; the server's error and exit else.
post() {
    local out code
    out=$(curl -sS -o - -w '\n%{http_code}' -X POST -H 'Content-Type: application/json' \
        "$API/$1" -d "$2") || { show_log; die "POST $API/$1 failed"; }
    code=${out##*$'\n'}
    out=${out%$'\n'*}
    case "$code" in
    2??) "$PY" -c 'import json,sys; print(json.loads(sys.stdin.read()).get("id", ""))' <<<"$out" ;;
    *) show_log; die "POST $API/$1: HTTP $code: $out" ;;
    esac
}

say "creating a data service, a data source and a job over the REST API"
SVC=$(post services "{\"name\":\"demo\",\"database_host\":\"$DBHOST\",\"database_port\":$DBPORT}")
SRC=$(post sources "{\"service_id\":$SVC,\"name\":\"demo_source\",\"brokers\":\"$BOOTSTRAP\",\"topic\":\"demo_topic\",\"format\":\"delimited\",\"delimiter\":\"|\"}")
JOB_BODY=$("$PY" - "$SRC" "$DBNAME" "$DBUSER" "$DBPASS" <<'PYEOF'
import json, sys
print(json.dumps({"source_id": int(sys.argv[1]), "name": "demo_job", "mode": "wizard",
    "database": sys.argv[2], "schema": "public", "table": "demo_orders",
    "account": sys.argv[3], "password": sys.argv[4], "write_mode": "INSERT",
    "fallback_offset": "earliest", "group_name": "demo_group",
    "fields": [{"source": f"column_{i}", "dest": f"column_{i}", "role": "none"} for i in range(1, 6)]}))
PYEOF
)
JOB=$(post jobs "$JOB_BODY")
post "jobs/$JOB/start" '{}' >/dev/null
echo "service demo (id $SVC), source demo_source (id $SRC), job demo_job (id $JOB): started"

say "producing $N sample messages to demo_topic"
"$PY" -c '
import sys
for i in range(int(sys.argv[1])):
    print(f"order-{i}|{i}|{i * 1.5}|customer-{i % 97}|region-{i % 5}")' "$N" |
    deploy/demo-kafka produce demo_topic

say "waiting for the rows"
rows=0
for _ in $(seq 240); do
    check_alive
    rows=$(psql -tAq "$PGURI" -c "SELECT count(*) FROM public.demo_orders")
    [ "$rows" -ge "$N" ] && break
    sleep 0.5
done
psql "$PGURI" -c "SELECT count(*) AS rows, sum(column_2) AS sum_column_2 FROM public.demo_orders"
psql "$PGURI" -c "SELECT * FROM public.demo_orders ORDER BY column_2 DESC LIMIT 5"
[ "$rows" -ge "$N" ] || { show_log; die "only $rows of $N rows arrived in 2 minutes"; }

# The job's figures as sentences.  The lag is the worker's report; it is
# waited for until it is newer than the last row (a current one, not the
# report from before the rows arrived).
summary() {
    local st
    st=$(curl -sS "$API/jobs/$JOB/status") || return 1
    "$PY" - "$N" "$st" <<'PYEOF'
import json, sys, datetime as dt
s = json.loads(sys.argv[2])
lag = s.get("lag") or {}
age = ""
if lag.get("updated_at"):
    t = dt.datetime.fromisoformat(lag["updated_at"].replace("Z", "+00:00"))
    secs = (dt.datetime.now(dt.timezone.utc) - t).total_seconds()
    age = f" (measured {max(0, secs):.0f} s ago)"
total = lag.get("total")
rate = s.get("rows_per_second") or 0
print(f"job {s['name']} (id {s['id']}) is {s['state']}: {s.get('rows_written', 0)} rows written, "
      f"{s.get('rows_rejected', 0)} rejected, {s.get('batches', 0)} batches, {rate:.0f} rows/s now")
print(f"lag: {total if total is not None else 'not reported yet'} messages behind the end of "
      f"the topic{age}")
if s.get("last_error"):
    print(f"last error: {s['last_error']}")
sys.exit(0 if total == 0 and s.get("rows_written", 0) >= int(sys.argv[1]) else 1)
PYEOF
}
for _ in $(seq 60); do
    summary >/dev/null 2>&1 && break
    sleep 1
done
say "the job"
summary || true

say "the demo is running; Ctrl-C here stops it and removes everything it made"
cat <<EOF
  status page  $URL/
  REST API     $API/jobs   (doc/API.md)
  streamctl    $BUILD/cli/streamctl   e.g. streamctl --url $URL jobs list
  PostgreSQL   $PGURI
               (psql "$PGURI" -c 'SELECT count(*) FROM demo_orders')
  Kafka        $KAFKA   (bootstrap; demo-kafka create-topic/produce: deploy/demo-kafka)
  log          $LOG
  next         the README's "Your first job", in another shell after:  . $WORK/env
EOF
echo "$$" >"$WORK/ready"   # for scripts that wait for the demo: its pid

# Until Ctrl-C (the INT trap), or until something the demo started stops.
while :; do
    check_alive
    sleep 2
done
