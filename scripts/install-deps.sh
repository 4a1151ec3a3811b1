#!/usr/bin/env bash
# Installs every build, run and test dependency of Streaming Server from
# Debian's packages. Idempotent: packages already present are not fetched again.
set -euo pipefail

SUDO=""
if [ "$(id -u)" -ne 0 ]; then
    SUDO="sudo"
fi

PKGS=(
    # build
    build-essential pkg-config meson ninja-build
    librdkafka-dev libpq-dev libyaml-dev libcivetweb-dev libcjson-dev libsqlite3-dev
    # streamctl's HTTP client; OpenSSL's headers for api/tlscompat/
    libcurl4-openssl-dev libssl-dev
    # the worker's Avro decoder (FORMAT avro)
    libavro-dev
    # unit tests; fuzzing (clang's libFuzzer, tests/fuzz)
    libcmocka-dev clang libclang-rt-14-dev
    # run / test: PostgreSQL server, Java + Maven for the local Kafka broker
    postgresql postgresql-client default-jre-headless maven
    # end-to-end tests and demo
    python3 python3-pytest python3-psycopg2 python3-confluent-kafka python3-requests
    protobuf-compiler python3-protobuf python3-avro
    curl procps
    # simulated hosts (tests/harness/netns.sh): ip netns, veth, bridge; kmod's
    # modprobe, through which the kernel loads the veth and bridge modules
    iproute2 kmod
    # test certificates and TLS checks (openssl s_client)
    openssl
    # operator surface tests: the status page in headless Chromium, the
    # OpenAPI document, the compose file (Debian's docker-compose validates it
    # without a Docker engine), the systemd unit
    chromium chromium-driver python3-selenium python3-yaml docker-compose systemd
)

missing=()
for p in "${PKGS[@]}"; do
    if ! dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed"; then
        missing+=("$p")
    fi
done

# Node.js and npm, for the OpenAPI linter below.  Debian's packages, unless a
# node and npm are already installed (a NodeSource nodejs brings its own npm,
# and Debian's npm package would conflict with it).
if ! command -v node >/dev/null 2>&1 || ! command -v npm >/dev/null 2>&1; then
    missing+=(nodejs npm)
fi

if [ "${#missing[@]}" -eq 0 ]; then
    echo "install-deps: all ${#PKGS[@]} packages present"
else
    echo "install-deps: installing ${missing[*]}"
    export DEBIAN_FRONTEND=noninteractive
    $SUDO apt-get update -qq
    $SUDO apt-get install -y -qq --no-install-recommends "${missing[@]}"
fi

# Redocly's CLI lints api/openapi.yaml (tests/e2e/test_openapi.py), from npm
# into a cache of our own, pinned: 1.34 runs on Debian bookworm's Node 18.
# Set REDOCLY_CLI to use another redocly instead.
REDOCLY_VERSION=1.34.20
NPM_DIR="${XDG_CACHE_HOME:-$HOME/.cache}/streamserver/npm"
if [ "$(cat "$NPM_DIR/.redocly-version" 2>/dev/null)" != "$REDOCLY_VERSION" ] ||
   [ ! -x "$NPM_DIR/node_modules/.bin/redocly" ]; then
    echo "install-deps: installing @redocly/cli@$REDOCLY_VERSION into $NPM_DIR"
    mkdir -p "$NPM_DIR"
    npm install --prefix "$NPM_DIR" --no-audit --no-fund --loglevel=error \
        "@redocly/cli@$REDOCLY_VERSION"
    echo "$REDOCLY_VERSION" > "$NPM_DIR/.redocly-version"
else
    echo "install-deps: @redocly/cli $REDOCLY_VERSION present in $NPM_DIR"
fi
echo "install-deps: done"
