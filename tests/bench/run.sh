#!/usr/bin/env bash
# One command for the whole benchmark (tests/bench/README.md):
#   tests/bench/run.sh [--messages N] [--runs R] [--out FILE] ...
# STREAMSERVER_BUILD_DIR selects the build tree (default: build/); nothing is built here.
set -euo pipefail
exec /usr/bin/python3 "$(dirname "${BASH_SOURCE[0]}")/bench.py" "$@"
