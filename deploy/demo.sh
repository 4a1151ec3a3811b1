#!/usr/bin/env bash
# The demo: installs and builds what is missing, starts PostgreSQL and Kafka
# (tests/harness), starts streamserver, creates a data service, a data source
# and a job over the REST API, produces sample messages, shows the rows that
# arrived, and keeps everything running until Ctrl-C, which stops it all.
#   DEMO_MESSAGES=N   how many sample messages (default 10000)
#   DEMO_PORT=P       the API / status page port (default 8080)
set -euo pipefail
cd "$(dirname "$0")/.."
ROOT=$(pwd)
BUILD=${STREAMSERVER_BUILD_DIR:-$ROOT/build}
PY=/usr/bin/python3
N=${DEMO_MESSAGES:-10000}
PORT=${DEMO_PORT:-8080}
API="http://127.0.0.1:$PORT/api/v1"
WORK=$(mktemp -d /tmp/streamserver-demo.XXXXXX)
SERVER_PID=""

say() { printf '\n\033[1m== %s\033[0m\n' "$*"; }

cleanup() {
    trap - EXIT INT TERM
    say "stopping everything the demo started"
    if [ -n "$SERVER_PID" ]; then
        kill -TERM "$SERVER_PID" 2>/dev/null || true
        wait "$SERVER_PID" 2>/dev/null || true
    fi
    tests/harness/kafka.sh stop "$WORK/kafka" >/dev/null 2>&1 || true
    tests/harness/pg.sh stop "$WORK/pg" >/dev/null 2>&1 || true
    rm -rf "$WORK"
}
trap cleanup EXIT INT TERM

say "installing dependencies (apt, idempotent)"
bash scripts/install-deps.sh

say "building"
[ -f "$BUILD/build.ninja" ] || meson setup "$BUILD" >/dev/null
ninja -C "$BUILD" >/dev/null

say "starting PostgreSQL and Kafka (first run fetches the Kafka jars with Maven)"
PG_ENV=$(tests/harness/pg.sh start "$WORK/pg")
KAFKA_ENV=$(tests/harness/kafka.sh start "$WORK/kafka")
PGURI=$(printf '%s\n' "$PG_ENV" | sed -n 's/^PGURI=//p')
BOOTSTRAP=$(printf '%s\n' "$KAFKA_ENV" | sed -n 's/^BOOTSTRAP=//p')
eval "$($PY - "$PGURI" <<'PYEOF'
import sys, shlex, urllib.parse as u
p = u.urlparse(sys.argv[1])
for k, v in (("DBHOST", p.hostname), ("DBPORT", p.port), ("DBUSER", u.unquote(p.username or "")),
             ("DBPASS", u.unquote(p.password or "")), ("DBNAME", p.path.lstrip("/"))):
    print(f"{k}={shlex.quote(str(v))}")
PYEOF
)"
echo "PostgreSQL at $DBHOST:$DBPORT, Kafka at $BOOTSTRAP"

psql -q "$PGURI" <<'SQL'
CREATE TABLE public.demo_orders (
    column_1 varchar(32), column_2 bigint, column_3 numeric,
    column_4 varchar(32), column_5 varchar(32));
SQL
$PY - "$BOOTSTRAP" <<'PYEOF'
import sys
from confluent_kafka.admin import AdminClient, NewTopic
a = AdminClient({"bootstrap.servers": sys.argv[1]})
for f in a.create_topics([NewTopic("demo_topic", num_partitions=4, replication_factor=1)]).values():
    f.result()
PYEOF

say "starting streamserver on http://127.0.0.1:$PORT"
"$BUILD/controller/streamserver" --listen "127.0.0.1:$PORT" --data-dir "$WORK/data" \
    2>"$WORK/streamserver.log" &
SERVER_PID=$!
for _ in $(seq 100); do
    curl -sf "http://127.0.0.1:$PORT/healthz" >/dev/null && break
    sleep 0.1
done

say "creating a data service, a data source and a job over REST"
post() { curl -sS -X POST -H 'Content-Type: application/json' "$API/$1" -d "$2"; echo; }
post services "{\"name\":\"demo\",\"database_host\":\"$DBHOST\",\"database_port\":$DBPORT}"
post sources "{\"service_id\":1,\"name\":\"demo_source\",\"brokers\":\"$BOOTSTRAP\",\"topic\":\"demo_topic\",\"format\":\"delimited\",\"delimiter\":\"|\"}"
JOB=$($PY - "$DBNAME" "$DBUSER" "$DBPASS" <<'PYEOF'
import json, sys
print(json.dumps({"source_id": 1, "name": "demo_job", "mode": "wizard",
    "database": sys.argv[1], "schema": "public", "table": "demo_orders",
    "account": sys.argv[2], "password": sys.argv[3], "write_mode": "INSERT",
    "fallback_offset": "earliest", "group_name": "demo_group",
    "fields": [{"source": f"column_{i}", "dest": f"column_{i}", "role": "none"} for i in range(1, 6)]}))
PYEOF
)
post jobs "$JOB"
post jobs/1/start '{}'

say "producing $N sample messages to demo_topic"
$PY - "$BOOTSTRAP" "$N" <<'PYEOF'
import sys
from confluent_kafka import Producer
p = Producer({"bootstrap.servers": sys.argv[1], "linger.ms": 20})
for i in range(int(sys.argv[2])):
    p.produce("demo_topic", f"order-{i}|{i}|{i * 1.5}|customer-{i % 97}|region-{i % 5}".encode())
    if i % 10000 == 0:
        p.poll(0)
p.flush()
PYEOF

say "waiting for the rows"
for _ in $(seq 120); do
    rows=$(psql -tAq "$PGURI" -c "SELECT count(*) FROM public.demo_orders")
    [ "$rows" -ge "$N" ] && break
    sleep 0.5
done
psql "$PGURI" -c "SELECT count(*) AS rows, sum(column_2) AS sum_column_2 FROM public.demo_orders"
psql "$PGURI" -c "SELECT * FROM public.demo_orders ORDER BY column_2 DESC LIMIT 5"
curl -sS "$API/jobs/1/status"; echo

say "status page: http://127.0.0.1:$PORT/   API: $API/jobs   (Ctrl-C stops everything)"
wait "$SERVER_PID"
