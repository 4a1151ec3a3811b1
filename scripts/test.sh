#!/usr/bin/env bash
# The whole test suite: installs what is missing, builds with warnings as
# errors, runs the cmocka unit tests and the end-to-end tests (real PostgreSQL,
# real Kafka broker, the real binaries), and ends with "N passed, N failed".
# Extra arguments go to pytest (e.g. -k wizard).
set -uo pipefail
cd "$(dirname "$0")/.."
ROOT=$(pwd)
BUILD=${STREAMSERVER_BUILD_DIR:-$ROOT/build}
PY=/usr/bin/python3   # Debian's python, where python3-pytest & co. live

bash scripts/install-deps.sh || { echo "install-deps failed"; echo "0 passed, 1 failed"; exit 1; }

if [ ! -f "$BUILD/build.ninja" ]; then
    meson setup "$BUILD" -Dwerror=true >/dev/null || { echo "0 passed, 1 failed"; exit 1; }
fi
if ! ninja -C "$BUILD"; then
    echo "build failed"
    echo "0 passed, 1 failed"
    exit 1
fi

mkdir -p "$BUILD/test-results"
unit_pass=0
unit_fail=0
# run_unit DIR LABEL: runs every cmocka program of a build, counting TAP lines.
run_unit() {
    local dir=$1 label=$2 t name tap p f rc
    for t in "$dir"/tests/unit/test_*; do
        [ -f "$t" ] && [ -x "$t" ] || continue
        name=$(basename "$t")
        tap="$BUILD/test-results/$label-$name.tap"
        CMOCKA_MESSAGE_OUTPUT=TAP "$t" >"$tap" 2>&1
        rc=$?
        p=$(grep -c '^ok ' "$tap")
        f=$(grep -c '^not ok ' "$tap")
        if [ "$rc" -ne 0 ] && [ "$f" -eq 0 ]; then
            f=1   # crashed, or a sanitizer report after the last test
            tail -30 "$tap"
        fi
        echo "$label $name: $p passed, $f failed"
        [ "$f" -gt 0 ] && grep -A8 '^not ok ' "$tap" | head -60
        unit_pass=$((unit_pass + p))
        unit_fail=$((unit_fail + f))
    done
}
run_unit "$BUILD" unit

# The same unit tests under AddressSanitizer + UndefinedBehaviorSanitizer
# (leaks included).  STREAMSERVER_SANITIZE=0 skips it for a quick local run.
if [ "${STREAMSERVER_SANITIZE:-1}" != 0 ]; then
    SAN="$BUILD-asan"
    if [ ! -f "$SAN/build.ninja" ]; then
        meson setup "$SAN" -Dwerror=true -Db_sanitize=address,undefined -Db_lundef=false \
            -Dbuildtype=debug >/dev/null || { echo "sanitizer build setup failed"; unit_fail=$((unit_fail + 1)); }
    fi
    if ninja -C "$SAN" >/dev/null; then
        UBSAN_OPTIONS=print_stacktrace=1:halt_on_error=1 ASAN_OPTIONS=detect_leaks=1 \
            run_unit "$SAN" unit-asan
    else
        ninja -C "$SAN" | tail -30
        echo "sanitizer build failed"
        unit_fail=$((unit_fail + 1))
    fi
fi

# Every fuzz target for a short while from its seed corpus (tests/fuzz/run.sh;
# longer runs are for outside CI): a crash, leak or sanitizer report fails.
# STREAMSERVER_FUZZ_SECONDS=0 skips it for a quick local run.
fuzz_pass=0
fuzz_fail=0
if [ "${STREAMSERVER_FUZZ_SECONDS:-15}" != 0 ]; then
    STREAMSERVER_FUZZ_BUILD_DIR="$BUILD-fuzz" bash tests/fuzz/run.sh "${STREAMSERVER_FUZZ_SECONDS:-15}" \
        >"$BUILD/test-results/fuzz.txt" 2>&1
    cat "$BUILD/test-results/fuzz.txt"
    read -r fuzz_pass fuzz_fail < <(sed -n 's/^\([0-9]*\) passed, \([0-9]*\) failed$/\1 \2/p' \
        "$BUILD/test-results/fuzz.txt" | tail -1)
    fuzz_pass=${fuzz_pass:-0}
    fuzz_fail=${fuzz_fail:-1}
fi

export STREAMSERVER_BUILD_DIR="$BUILD"
JUNIT="$BUILD/test-results/e2e.xml"
rm -f "$JUNIT"
$PY -m pytest tests/e2e -p no:cacheprovider -rfEs --junitxml="$JUNIT" "$@"
read -r e2e_pass e2e_fail < <($PY - "$JUNIT" <<'PYEOF'
import sys, xml.etree.ElementTree as ET
try:
    root = ET.parse(sys.argv[1]).getroot()
except Exception:
    print(0, 1)   # pytest did not even report
    raise SystemExit
suites = [root] if root.tag == "testsuite" else list(root)
tests = sum(int(s.get("tests", 0)) for s in suites)
bad = sum(int(s.get(k, 0)) for s in suites for k in ("failures", "errors", "skipped"))
# A skipped test counts as failed: it hides a missing dependency.
print(tests - bad, bad if tests else max(bad, 1))
PYEOF
)

passed=$((unit_pass + fuzz_pass + e2e_pass))
failed=$((unit_fail + fuzz_fail + e2e_fail))
echo "unit: $unit_pass passed, $unit_fail failed; fuzz: $fuzz_pass passed, $fuzz_fail failed;" \
    "end-to-end: $e2e_pass passed, $e2e_fail failed"
echo "$passed passed, $failed failed"
[ "$failed" -eq 0 ]
