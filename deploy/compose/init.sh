#!/bin/sh
# The example pipeline over the REST API (the compose file's init service,
# in the streamserver image): a data service for PostgreSQL, a data source
# for the orders topic, a wizard job loading it into public.orders, started.
# Safe to run again: what exists is kept, and the job is started.
#
# Environment: STREAMCTL_URL and STREAMCTL_TOKEN_FILE (streamctl's own),
# KAFKA_BROKERS, TOPIC, PG_HOST, PG_PORT, PG_DATABASE, PG_USER and
# PG_PASSWORD_FILE (a file: the password goes into a request body only,
# never onto a command line); DEMO_TASKS, the job's tasks (default 1).
set -eu

: "${KAFKA_BROKERS:?}" "${TOPIC:?}" "${PG_HOST:?}" "${PG_PORT:?}" "${PG_DATABASE:?}"
: "${PG_USER:?}" "${PG_PASSWORD_FILE:?}"
SERVICE=${DEMO_SERVICE:-demo-db}
SOURCE=${DEMO_SOURCE:-demo-orders}
JOB=${DEMO_JOB:-orders}
TASKS=${DEMO_TASKS:-1}

umask 077
work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT

# JSON string contents: backslashes and double quotes escaped.
json_escape() {
    printf '%s' "$1" | sed -e 's/\\/\\\\/g' -e 's/"/\\"/g'
}

if streamctl services get "$SERVICE" >/dev/null 2>&1; then
    echo "init: service $SERVICE exists"
else
    printf '{"name": "%s", "description": "the example database", "database_host": "%s", "database_port": %d}\n' \
        "$SERVICE" "$(json_escape "$PG_HOST")" "$PG_PORT" >"$work/service.json"
    streamctl services create -f "$work/service.json"
fi
service_id=$(streamctl --json services get "$SERVICE" |
    sed -n 's/.*"id": *\([0-9][0-9]*\).*/\1/p' | head -n 1)
if [ -z "$service_id" ]; then
    echo "init: cannot read the id of service $SERVICE" >&2
    exit 1
fi

if streamctl sources get "$SOURCE" >/dev/null 2>&1; then
    echo "init: source $SOURCE exists"
else
    printf '{"service_id": %s, "name": "%s", "brokers": "%s", "topic": "%s", "format": "delimited", "delimiter": "|"}\n' \
        "$service_id" "$SOURCE" "$(json_escape "$KAFKA_BROKERS")" "$(json_escape "$TOPIC")" \
        >"$work/source.json"
    streamctl sources create -f "$work/source.json"
fi

if streamctl jobs get "$JOB" >/dev/null 2>&1; then
    echo "init: job $JOB exists"
else
    password=$(cat "$PG_PASSWORD_FILE")
    cat >"$work/job.json" <<JSON
{"name": "$JOB", "mode": "wizard", "description": "orders from Kafka into public.orders",
 "database": "$(json_escape "$PG_DATABASE")", "schema": "public", "table": "orders",
 "account": "$(json_escape "$PG_USER")", "password": "$(json_escape "$password")",
 "fallback_offset": "earliest", "write_mode": "INSERT", "tasks": $TASKS,
 "fields": [{"source": "order_id", "dest": "order_id"}, {"source": "customer", "dest": "customer"},
            {"source": "amount", "dest": "amount"}, {"source": "status", "dest": "status"},
            {"source": "ordered_at", "dest": "ordered_at"}]}
JSON
    streamctl jobs create -f "$work/job.json" --source "$SOURCE"
fi

streamctl jobs start "$JOB" --wait
streamctl jobs status "$JOB"
echo "init: the example pipeline runs: $TOPIC -> $PG_DATABASE.public.orders"
