#!/usr/bin/env bash
# Runs every libFuzzer target of tests/fuzz for SECONDS each under ASan+UBSan
# (leaks included), starting from the committed seed corpora.
#
#   tests/fuzz/run.sh SECONDS [TARGET...]
#
# Builds BUILD (default build-fuzz, or $STREAMSERVER_FUZZ_BUILD_DIR) with clang
# the first time.  New inputs found go to a scratch copy of the corpus (the
# committed one is not touched); a crash, leak or sanitizer report leaves its
# input in $BUILD/fuzz-findings/ and the target counts as failed.  Prints one
# line per target with executions and coverage, then "N passed, N failed".
set -uo pipefail
cd "$(dirname "$0")/../.."
ROOT=$(pwd)
SECONDS_EACH=${1:?usage: tests/fuzz/run.sh SECONDS [TARGET...]}
shift
BUILD=${STREAMSERVER_FUZZ_BUILD_DIR:-$ROOT/build-fuzz}
ALL=(text json avro pb_wire pb_desc yaml proto api_body)
TARGETS=("${ALL[@]}")
[ "$#" -gt 0 ] && TARGETS=("$@")

command -v clang >/dev/null || { echo "fuzz: clang not found (scripts/install-deps.sh installs it)"; echo "0 passed, 1 failed"; exit 1; }
if [ ! -f "$BUILD/build.ninja" ]; then
    CC=clang meson setup "$BUILD" -Dfuzz=true -Dtests=false -Db_sanitize=address,undefined \
        -Db_lundef=false -Dbuildtype=debugoptimized >/dev/null ||
        { echo "fuzz: meson setup failed"; echo "0 passed, 1 failed"; exit 1; }
fi
if ! ninja -C "$BUILD" >"$BUILD/fuzz-build.log" 2>&1; then
    tail -30 "$BUILD/fuzz-build.log"
    echo "fuzz: build failed"
    echo "0 passed, 1 failed"
    exit 1
fi

mkdir -p "$BUILD/fuzz-findings"
pass=0
fail=0
for t in "${TARGETS[@]}"; do
    bin="$BUILD/tests/fuzz/fuzz_$t"
    seeds="$ROOT/tests/fuzz/corpus/$t"
    work="$BUILD/fuzz-corpus/$t"
    log="$BUILD/fuzz-$t.log"
    if [ ! -x "$bin" ]; then
        echo "fuzz_$t: not built"
        fail=$((fail + 1))
        continue
    fi
    mkdir -p "$work"
    # halt_on_error: a UBSan report is a finding, not a warning.
    UBSAN_OPTIONS=print_stacktrace=1:halt_on_error=1 ASAN_OPTIONS=detect_leaks=1 \
        "$bin" "$work" "$seeds" -max_total_time="$SECONDS_EACH" -rss_limit_mb=2048 \
        -timeout=10 -print_final_stats=1 -artifact_prefix="$BUILD/fuzz-findings/$t-" \
        >"$log" 2>&1
    rc=$?
    runs=$(sed -n 's/^stat::number_of_executed_units: *//p' "$log" | tail -1)
    cov=$(grep -o 'cov: [0-9]*' "$log" | tail -1 | cut -d' ' -f2)
    if [ "$rc" -eq 0 ] && ! grep -qE 'runtime error|ERROR: (Address|Leak|libFuzzer)Sanitizer|==ERROR' "$log"; then
        echo "fuzz_$t: ${runs:-0} runs, coverage ${cov:-0} edges, no finding"
        pass=$((pass + 1))
    else
        echo "fuzz_$t: FINDING (exit $rc) after ${runs:-?} runs; input in $BUILD/fuzz-findings/"
        grep -E 'runtime error|ERROR|SUMMARY|abort|not valid|does not parse|changes' "$log" | head -12
        fail=$((fail + 1))
    fi
done
echo "$pass passed, $fail failed"
[ "$fail" -eq 0 ]
