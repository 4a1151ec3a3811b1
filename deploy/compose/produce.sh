#!/bin/sh
# The example producer: order lines "order_id|customer|amount|status|ordered_at",
# the format of the example source (delimited, "|") and job.
#
#   produce.sh print N   prints N lines and exits (tests/e2e/test_deploy.py)
#   produce.sh           sends PRODUCE_RATE lines a second (default 5) to
#                        TOPIC on KAFKA_BROKERS with Kafka's console producer
#                        until stopped (the compose file's producer service)
set -eu

lines() { # FIRST COUNT: COUNT lines from order FIRST on
    i=$1
    end=$(($1 + $2))
    now=$(date -u +%Y-%m-%dT%H:%M:%SZ)
    while [ "$i" -lt "$end" ]; do
        case $((i % 4)) in
            0) customer=alice status=new ;;
            1) customer=bob status=paid ;;
            2) customer=carol status=shipped ;;
            *) customer=dave status=new ;;
        esac
        printf '%d|%s|%d.%02d|%s|%s\n' "$i" "$customer" $((i % 500 + 1)) $((i % 100)) "$status" "$now"
        i=$((i + 1))
    done
}

if [ "${1:-}" = print ]; then
    lines 1 "${2:?produce.sh print N}"
    exit 0
fi

rate=${PRODUCE_RATE:-5}
brokers=${KAFKA_BROKERS:?KAFKA_BROKERS (host:port)}
topic=${TOPIC:?TOPIC}
producer=${KAFKA_CONSOLE_PRODUCER:-/opt/kafka/bin/kafka-console-producer.sh}
echo "produce.sh: $rate orders a second to $topic on $brokers" >&2
n=1
while :; do
    lines "$n" "$rate"
    n=$((n + rate))
    sleep 1
done | "$producer" --bootstrap-server "$brokers" --topic "$topic"
