#!/bin/sh
# Entrypoint of the streamserver image (deploy/Dockerfile).
#
# With no arguments, or options only, runs the controller on all interfaces
# (STREAMSERVER_LISTEN, default 0.0.0.0:8080) with its store in
# STREAMSERVER_DATA_DIR (default /var/lib/streamserver, the image's volume).
# Listening beyond loopback needs an API token: the controller refuses to
# start without one.  The token comes from a file, a Docker or compose
# secret: STREAMSERVER_TOKEN_FILE (default /run/secrets/streamserver_token),
# or from STREAMSERVER_TOKEN itself.  Only the file's path reaches the
# command line, never the token.
#
# Any other command runs as given: `docker run IMAGE streamctl jobs list`.
set -eu

if [ $# -gt 0 ] && [ "${1#-}" = "$1" ]; then
    exec "$@"
fi

listen=${STREAMSERVER_LISTEN:-0.0.0.0:8080}
data_dir=${STREAMSERVER_DATA_DIR:-/var/lib/streamserver}
token_file=${STREAMSERVER_TOKEN_FILE:-/run/secrets/streamserver_token}

if [ -z "${STREAMSERVER_TOKEN:-}" ]; then
    if [ ! -e "$token_file" ]; then
        echo "streamserver-entrypoint: no API token: $token_file does not exist" \
             "(or a directory above it is closed to uid $(id -u))." >&2
        echo "  The API listens on $listen, which needs a token. Give one as a secret" >&2
        echo "  mounted at $token_file (compose: secrets; docker run: -v FILE:$token_file:ro)," >&2
        echo "  or point STREAMSERVER_TOKEN_FILE at it; at least 16 characters, for example" >&2
        echo "  from: head -c 32 /dev/urandom | base64" >&2
        exit 2
    fi
    if [ ! -r "$token_file" ]; then
        echo "streamserver-entrypoint: the token file $token_file is not readable by" \
             "user $(id -un 2>/dev/null || id -u) (uid $(id -u)); make it readable by that user" >&2
        exit 2
    fi
    set -- --token-file "$token_file" "$@"
fi

if [ -d "$data_dir" ] && [ ! -w "$data_dir" ]; then
    echo "streamserver-entrypoint: the data directory $data_dir is not writable by uid $(id -u);" \
         "give the volume to that user (chown $(id -u) on the host or in the volume)" >&2
    exit 2
fi

exec streamserver --listen "$listen" --data-dir "$data_dir" "$@"
