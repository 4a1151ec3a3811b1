#!/bin/sh
# Builds Streaming Server for installation and installs it into a staging
# directory: usr/bin/streamserver and streamctl, usr/libexec/streamworker
# under DESTDIR, usr/lib/<arch>/streamserver/libssl.so and libcrypto.so
# (api/tlscompat/), the systemd unit, the sample environment file in
# etc/streamserver, the man pages and streamctl's bash completion.
# The Dockerfile's build stage runs it from the source tree, and
# tests/e2e/test_deploy.py runs the Dockerfile's very line on this machine.
#
# usage: deploy/build.sh DESTDIR [BUILDDIR]   (from the top of the source tree)
#   BUILDDIR defaults to build-release (configured again when it exists).
set -eu

if [ $# -lt 1 ] || [ $# -gt 2 ]; then
    echo "usage: deploy/build.sh DESTDIR [BUILDDIR]" >&2
    exit 2
fi
destdir=$1
builddir=${2:-build-release}
if [ ! -f meson.build ] || [ ! -f deploy/build.sh ]; then
    echo "deploy/build.sh: run it from the top of the source tree" >&2
    exit 2
fi

# Release build without the unit tests: the image does not need cmocka, and
# the tests run in CI on the same sources.
reconfigure=
if [ -f "$builddir/build.ninja" ]; then
    reconfigure=--reconfigure  # a second run in the same tree
fi
meson setup $reconfigure --buildtype=release --prefix=/usr -Dtests=false "$builddir"
meson compile -C "$builddir"
meson install -C "$builddir" --destdir "$destdir" --no-rebuild --strip

for b in bin/streamserver bin/streamctl libexec/streamworker; do
    if [ ! -x "$destdir/usr/$b" ]; then
        echo "deploy/build.sh: $destdir/usr/$b was not installed" >&2
        exit 1
    fi
done
# The OpenSSL libraries civetweb loads for HTTPS (api/tlscompat/), in the
# private folder streamserver looks in.
for l in libssl.so libcrypto.so; do
    found=
    for f in "$destdir"/usr/lib/*/streamserver/$l "$destdir"/usr/lib/streamserver/$l; do
        [ -f "$f" ] && found=$f
    done
    if [ -z "$found" ]; then
        echo "deploy/build.sh: $l for civetweb was not installed under $destdir/usr/lib" >&2
        exit 1
    fi
done
echo "deploy/build.sh: installed streamserver and streamctl into $destdir/usr/bin, streamworker" \
     "into $destdir/usr/libexec," \
     "civetweb's libssl.so and libcrypto.so into $destdir/usr/lib/.../streamserver"
