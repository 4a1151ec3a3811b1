#!/usr/bin/env bash
# A throwaway PostgreSQL cluster for the tests.
#
#   pg.sh start DIR     initdb into DIR (first time), start it on a free port of
#                       127.0.0.1, wait until it accepts password logins over TCP,
#                       create the test database, print its address:
#                         PGURI=postgresql://USER:PASS@127.0.0.1:PORT/DBNAME
#                         PGHOST=... PGPORT=... PGUSER=... PGPASSWORD=... PGDATABASE=...
#   pg.sh start DIR --ssl
#                       the same with ssl = on: a CA made here signs a server
#                       certificate for localhost and 127.0.0.1, a second one for
#                       other.example (for host name mismatch tests) and a client
#                       certificate for the role; the server trusts that CA for
#                       client certificates (ssl_ca_file) but does not demand
#                       them.  Prints also PG_CA=<CA certificate> and
#                       PG_TLS_DIR=<dir with ca.crt, server.*, other.*, client.*>.
#                       Once given, a DIR keeps ssl on.
#   pg.sh start DIR --listen ADDR[/PREFIX]
#                       also listen on ADDR (an address of this machine, e.g.
#                       the bridge of tests/harness/netns.sh), same port, and
#                       let the network ADDR/PREFIX (default /24) log in with
#                       a password (scram-sha-256) in pg_hba.conf.  Prints also
#                       LISTEN_PGHOST=ADDR and LISTEN_PGURI=postgresql://...@ADDR:PORT/...
#                       Combines with --ssl; PG_LISTEN_ADDR=ADDR[/PREFIX] in
#                       the environment does the same.  Once given, a DIR keeps
#                       it (a different ADDR replaces it, the cluster stopped).
#   pg.sh start DIR --durable
#                       the settings of a stock install where they matter for
#                       durability and speed: fsync, synchronous_commit and
#                       full_page_writes on, max_wal_size 1GB, checkpoint_timeout
#                       5min (initdb's defaults), shared_buffers $PG_SHARED_BUFFERS
#                       (default 1GB, a typical production value; stock is
#                       128MB), so a kill -9 of the postmaster is a real crash
#                       and a commit waits for its WAL flush.  Without it the
#                       cluster is a fast, disposable one (fsync, synchronous_commit
#                       and full_page_writes off).  Prints also PG_DURABLE=on|off.
#                       Once given, a DIR keeps it; shared_buffers is written
#                       again at every start of the DIR (PG_SHARED_BUFFERS of
#                       that start, default 1GB) and applies when the server
#                       starts.
#   pg.sh stop DIR      fast shutdown (immediate if that hangs)
#   pg.sh status DIR    exit 0 and print the lines above if it runs, else exit 1
#   pg.sh destroy DIR   stop, then delete the cluster's files
#
# Starting a DIR whose cluster runs just prints its address again; starting a
# stopped one restarts it, on its old port when that is still free.  The role is
# a superuser with a password (scram-sha-256 for host connections); the tests and
# the controller, which run as root, log in over TCP.
#
# PostgreSQL refuses to run as root.  As root, pg.sh runs it as the `postgres`
# system user (or $PGSH_OS_USER; a `streamtest` system user is created when
# neither exists).  The cluster lives in DIR/cluster; when that user cannot reach
# DIR (e.g. under a 0700 pytest temporary directory) the cluster goes to
# /tmp/streamserver-pg-<hash of DIR> and DIR/cluster is a symlink to it.
#
# Environment: PG_BINDIR (default: pg_config --bindir, else the newest
# /usr/lib/postgresql/*/bin), PGSH_OS_USER, PG_START_TIMEOUT (default 60 s),
# PG_LISTEN_ADDR, PG_SHARED_BUFFERS (with --durable), PYTHON (default /usr/bin/python3, used to find a free port).
set -euo pipefail

PYTHON="${PYTHON:-/usr/bin/python3}"
START_TIMEOUT="${PG_START_TIMEOUT:-60}"
DBUSER=streamtest
DBNAME=streamtest

log() { printf 'pg.sh: %s\n' "$*" >&2; }
die() { printf 'pg.sh: error: %s\n' "$*" >&2; exit 1; }

usage() {
	echo "usage: $0 {start|stop|status|destroy} DIR  |  $0 start DIR [--ssl] [--listen ADDR[/PREFIX]] [--durable]" >&2
	exit 2
}

find_bindir() {
	local d
	if [ -n "${PG_BINDIR:-}" ]; then
		echo "$PG_BINDIR"
		return
	fi
	d="$(ls -d /usr/lib/postgresql/*/bin 2>/dev/null | sort -V | tail -n 1 || true)"
	if [ -n "$d" ] && [ -x "$d/initdb" ]; then
		echo "$d"
		return
	fi
	if command -v pg_config >/dev/null && [ -x "$(pg_config --bindir)/initdb" ]; then
		pg_config --bindir
		return
	fi
	die "no PostgreSQL server binaries (initdb) found: apt-get install postgresql, or set PG_BINDIR"
}

BINDIR="$(find_bindir)"

# The OS user that owns and runs the cluster: ourselves unless we are root.
OS_USER=""
if [ "$(id -u)" -eq 0 ]; then
	OS_USER="${PGSH_OS_USER:-}"
	if [ -z "$OS_USER" ]; then
		if id postgres >/dev/null 2>&1; then
			OS_USER=postgres
		else
			OS_USER=streamtest
			id "$OS_USER" >/dev/null 2>&1 ||
				useradd --system --no-create-home --shell /usr/sbin/nologin "$OS_USER" ||
				die "cannot create the system user $OS_USER to run PostgreSQL"
		fi
	fi
	id "$OS_USER" >/dev/null 2>&1 || die "no such user: $OS_USER"
fi

as_owner() {
	if [ -n "$OS_USER" ]; then
		runuser -u "$OS_USER" -- "$@"
	else
		"$@"
	fi
}

free_port() {
	"$PYTHON" -c '
import socket
s = socket.socket()
s.bind(("127.0.0.1", 0))
print(s.getsockname()[1])'
}

port_free() {
	"$PYTHON" -c '
import socket, sys
s = socket.socket()
s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
try:
    s.bind(("127.0.0.1", int(sys.argv[1])))
except OSError:
    sys.exit(1)' "$1"
}

# Sets HOME_DIR: the cluster's own directory (DIR/cluster or where it points).
resolve_home() {
	if [ -L "$DIR/cluster" ] || [ -d "$DIR/cluster" ]; then
		HOME_DIR="$(readlink -f "$DIR/cluster")"
		return 0
	fi
	return 1
}

# Deletes the clusters in /tmp/streamserver-pg-* whose DIR is gone (e.g. a
# caller removed DIR after `pg.sh stop`) and that do not run.
collect_orphans() {
	local ext dir pid
	for ext in /tmp/streamserver-pg-*; do
		[ -f "$ext/.pgsh-dir" ] || continue
		dir="$(cat "$ext/.pgsh-dir")"
		[ "$(readlink -f "$dir/cluster" 2>/dev/null)" = "$ext" ] && continue
		if [ -f "$ext/data/postmaster.pid" ]; then
			pid="$(head -n 1 "$ext/data/postmaster.pid")"
			[ -n "$pid" ] && kill -0 "$pid" 2>/dev/null && continue
		fi
		rm -rf "$ext"
	done
}

make_home() {
	local ext
	collect_orphans
	mkdir -p "$DIR/cluster"
	if [ -n "$OS_USER" ]; then
		chown "$OS_USER:" "$DIR/cluster"
		if ! as_owner test -w "$DIR/cluster" 2>/dev/null; then
			rmdir "$DIR/cluster"
			ext="/tmp/streamserver-pg-$(printf '%s' "$DIR" | sha1sum | cut -c1-12)"
			rm -rf "$ext"
			mkdir -m 0700 "$ext"
			printf '%s\n' "$DIR" >"$ext/.pgsh-dir"
			chown "$OS_USER:" "$ext"
			ln -s "$ext" "$DIR/cluster"
			log "$OS_USER cannot reach $DIR: the cluster lives in $ext"
		fi
	fi
	HOME_DIR="$(readlink -f "$DIR/cluster")"
}

psql_tcp() {
	PGPASSWORD="$PASS" PGCONNECT_TIMEOUT=5 "$BINDIR/psql" -X -q -A -t -v ON_ERROR_STOP=1 \
		-h 127.0.0.1 -p "$PORT" -U "$DBUSER" "$@"
}

print_address() {
	echo "PGURI=postgresql://$DBUSER:$PASS@127.0.0.1:$PORT/$DBNAME"
	echo "PGHOST=127.0.0.1"
	echo "PGPORT=$PORT"
	echo "PGUSER=$DBUSER"
	echo "PGPASSWORD=$PASS"
	echo "PGDATABASE=$DBNAME"
	if [ -f "$DIR/ssl" ]; then
		echo "PG_CA=$HOME_DIR/tls/ca.crt"
		echo "PG_TLS_DIR=$HOME_DIR/tls"
	fi
	if [ -f "$DIR/durable" ]; then
		echo "PG_DURABLE=on"
	else
		echo "PG_DURABLE=off"
	fi
	if [ -f "$DIR/listen" ]; then
		local addr
		addr="$(cut -d/ -f1 "$DIR/listen")"
		echo "LISTEN_PGHOST=$addr"
		echo "LISTEN_PGURI=postgresql://$DBUSER:$PASS@$addr:$PORT/$DBNAME"
	fi
}

# --listen ADDR/PREFIX: listen_addresses in pgsh_listen.conf (included after
# the settings of cmd_init, so it wins) and one pg_hba.conf line for the
# network, marked so that a later --listen replaces it.
setup_listen() {
	local data="$HOME_DIR/data" net
	net="$("$PYTHON" -c 'import ipaddress, sys; print(ipaddress.ip_interface(sys.argv[1]).network)' "$LISTEN")" ||
		die "--listen: not an IPv4 address with an optional /PREFIX: '$LISTEN'"
	if [ -f "$DIR/listen" ] && [ "$(cat "$DIR/listen")" = "$LISTEN" ]; then
		return 0
	fi
	if is_running; then
		die "the cluster in $DIR runs $(if [ -f "$DIR/listen" ]; then echo "with --listen $(cat "$DIR/listen")"; else echo "without --listen"; fi); stop it first"
	fi
	printf "# pg.sh --listen %s\nlisten_addresses = '127.0.0.1,%s'\n" "$LISTEN" "${LISTEN%/*}" |
		as_owner tee "$data/pgsh_listen.conf" >/dev/null
	if ! grep -q '^# --- pg.sh --listen ---' "$data/postgresql.conf"; then
		printf "\n# --- pg.sh --listen ---\ninclude_if_exists = 'pgsh_listen.conf'\n" |
			as_owner tee -a "$data/postgresql.conf" >/dev/null
	fi
	{
		grep -v ' # pg.sh --listen$' "$data/pg_hba.conf" || true
		printf 'host all all %s scram-sha-256 # pg.sh --listen\n' "$net"
	} >"$DIR/pg_hba.new"
	as_owner tee "$data/pg_hba.conf" <"$DIR/pg_hba.new" >/dev/null
	rm -f "$DIR/pg_hba.new"
	echo "$LISTEN" >"$DIR/listen"
}

# --durable: the stock durability settings in pgsh_durable.conf, included
# after the fast ones of cmd_init, so it wins.  Written at every start of a
# durable DIR (PG_SHARED_BUFFERS may change); read when the server starts.
setup_durable() {
	local data="$HOME_DIR/data" sb="${PG_SHARED_BUFFERS:-1GB}"
	[[ "$sb" =~ ^[0-9]+(kB|MB|GB)$ ]] ||
		die "PG_SHARED_BUFFERS: a size such as 128MB or 1GB, not '$sb'"
	if [ ! -f "$DIR/durable" ] && is_running; then
		die "the cluster in $DIR runs without --durable; stop it first"
	fi
	printf '%s\n' "# pg.sh --durable: a stock install's durability (initdb's defaults)" \
		"fsync = on" "synchronous_commit = on" "full_page_writes = on" \
		"max_wal_size = 1GB" "checkpoint_timeout = 5min" \
		"# raised from the stock 128MB to a typical production value" \
		"shared_buffers = $sb" | as_owner tee "$data/pgsh_durable.conf" >/dev/null
	if ! grep -q '^# --- pg.sh --durable ---' "$data/postgresql.conf"; then
		printf "\n# --- pg.sh --durable ---\ninclude_if_exists = 'pgsh_durable.conf'\n" |
			as_owner tee -a "$data/postgresql.conf" >/dev/null
	fi
	touch "$DIR/durable"
}

# One certificate signed by the test CA: NAME (file stem), CN, subjectAltName.
make_cert() {
	local tls="$1" name="$2" cn="$3" san="$4"
	openssl req -new -nodes -newkey ec -pkeyopt ec_paramgen_curve:prime256v1 \
		-keyout "$tls/$name.key" -out "$tls/$name.csr" -subj "/CN=$cn" 2>/dev/null
	if [ -n "$san" ]; then
		printf 'subjectAltName=%s\n' "$san" >"$tls/$name.ext"
	else
		: >"$tls/$name.ext"
	fi
	openssl x509 -req -in "$tls/$name.csr" -CA "$tls/ca.crt" -CAkey "$tls/ca.key" -CAcreateserial \
		-days 3650 -extfile "$tls/$name.ext" -out "$tls/$name.crt" 2>/dev/null
	rm -f "$tls/$name.csr" "$tls/$name.ext"
}

# ssl = on with a CA and certificates made here (pg.sh start DIR --ssl).
setup_ssl() {
	local tls="$HOME_DIR/tls"
	command -v openssl >/dev/null || die "--ssl needs openssl"
	if [ ! -f "$tls/server.crt" ]; then
		mkdir -p "$tls"
		(
			umask 077
			openssl req -x509 -new -nodes -newkey ec -pkeyopt ec_paramgen_curve:prime256v1 \
				-keyout "$tls/ca.key" -out "$tls/ca.crt" -days 3650 \
				-subj "/CN=streamserver test CA" 2>/dev/null
			make_cert "$tls" server localhost "DNS:localhost,IP:127.0.0.1"
			make_cert "$tls" other other.example "DNS:other.example"
			make_cert "$tls" client "$DBUSER" ""
		) || die "cannot make the test certificates in $tls"
		chmod 0755 "$tls"
		chmod 0644 "$tls"/*.crt
		chmod 0600 "$tls"/*.key
		if [ -n "$OS_USER" ]; then
			chown -R "$OS_USER:" "$tls"
		fi
	fi
	if ! grep -q '^# --- pg.sh --ssl ---' "$HOME_DIR/data/postgresql.conf"; then
		printf "\n# --- pg.sh --ssl ---\nssl = on\nssl_cert_file = '%s'\nssl_key_file = '%s'\nssl_ca_file = '%s'\n" \
			"$tls/server.crt" "$tls/server.key" "$tls/ca.crt" |
			as_owner tee -a "$HOME_DIR/data/postgresql.conf" >/dev/null
	fi
	touch "$DIR/ssl"
}

is_running() {
	as_owner "$BINDIR/pg_ctl" -D "$HOME_DIR/data" status >/dev/null 2>&1
}

load_credentials() {
	[ -f "$DIR/credentials" ] || die "$DIR/credentials missing: not a pg.sh directory (destroy it and start again)"
	# shellcheck disable=SC1091
	. "$DIR/credentials"
	PORT="$(cat "$DIR/port")"
}

cmd_init() {
	local pwfile sockdir sockopt
	PASS="$(tr -dc 'A-Za-z0-9' </dev/urandom | head -c 24 || true)"
	make_home
	umask 077
	printf 'PASS=%s\n' "$PASS" >"$DIR/credentials"
	pwfile="$HOME_DIR/pwfile"
	printf '%s\n' "$PASS" >"$pwfile"
	[ -n "$OS_USER" ] && chown "$OS_USER:" "$pwfile"
	if ! as_owner "$BINDIR/initdb" -D "$HOME_DIR/data" -U "$DBUSER" --pwfile="$pwfile" \
		--auth-local=trust --auth-host=scram-sha-256 -E UTF8 --no-locale --no-sync \
		>"$DIR/initdb.log" 2>&1; then
		rm -f "$pwfile"
		cat "$DIR/initdb.log" >&2
		die "initdb failed"
	fi
	rm -f "$pwfile"
	sockdir="$HOME_DIR/run"
	as_owner mkdir -p "$sockdir"
	# A Unix socket path is limited to 107 bytes; without one, TCP only.
	if [ $((${#sockdir} + 16)) -lt 104 ]; then
		sockopt="'$sockdir'"
	else
		sockopt="''"
	fi
	as_owner tee -a "$HOME_DIR/data/postgresql.conf" >/dev/null <<EOF

# --- tests/harness/pg.sh: a fast, disposable test cluster ---
listen_addresses = '127.0.0.1'
unix_socket_directories = $sockopt
password_encryption = scram-sha-256
max_connections = 200
shared_buffers = 64MB
fsync = off
synchronous_commit = off
full_page_writes = off
max_wal_size = 1GB
checkpoint_timeout = 30min
log_min_messages = warning
log_line_prefix = '%m [%p] %q%u@%d '
log_timezone = 'UTC'
timezone = 'UTC'
EOF
}

cmd_start() {
	local t0 existing=0
	t0=$EPOCHREALTIME
	mkdir -p "$DIR"
	DIR="$(cd "$DIR" && pwd -P)"
	if resolve_home && [ -f "$HOME_DIR/data/PG_VERSION" ] && [ -f "$DIR/credentials" ]; then
		existing=1
		load_credentials
		if [ "$SSL" = 1 ] && [ ! -f "$DIR/ssl" ]; then
			setup_ssl
			if is_running; then
				as_owner "$BINDIR/pg_ctl" -D "$HOME_DIR/data" reload >/dev/null
			fi
		fi
		if [ -n "$LISTEN" ]; then
			setup_listen
		fi
		if [ "$DURABLE" = 1 ] || [ -f "$DIR/durable" ]; then
			setup_durable
		fi
		if is_running; then
			log "already running on port $PORT"
			print_address
			return 0
		fi
		if ! port_free "$PORT"; then
			PORT="$(free_port)"
			log "old port taken; using $PORT"
		fi
	else
		rm -rf "$DIR/cluster" "$DIR/credentials" "$DIR/port" "$DIR/ssl" "$DIR/listen" "$DIR/durable"
		cmd_init
		if [ "$SSL" = 1 ]; then
			setup_ssl
		fi
		if [ -n "$LISTEN" ]; then
			setup_listen
		fi
		if [ "$DURABLE" = 1 ]; then
			setup_durable
		fi
		PORT="$(free_port)"
	fi
	echo "$PORT" >"$DIR/port"
	as_owner touch "$HOME_DIR/postgres.log"
	if ! as_owner "$BINDIR/pg_ctl" -D "$HOME_DIR/data" -l "$HOME_DIR/postgres.log" -w \
		-t "$START_TIMEOUT" -o "-p $PORT" start >/dev/null 2>"$DIR/pg_ctl.err"; then
		cat "$DIR/pg_ctl.err" >&2
		tail -n 20 "$HOME_DIR/postgres.log" >&2 || true
		die "PostgreSQL did not start"
	fi
	# pg_ctl -w waited for the postmaster; now make sure a password login over
	# TCP works, as the tests and the controller will do it.
	local i ok=0
	for ((i = 0; i < START_TIMEOUT * 10; i++)); do
		if psql_tcp -d postgres -c 'SELECT 1' >/dev/null 2>"$DIR/psql.err"; then
			ok=1
			break
		fi
		sleep 0.1
	done
	[ "$ok" = 1 ] || { cat "$DIR/psql.err" >&2; die "cannot log in over TCP on port $PORT"; }
	if [ "$(psql_tcp -d postgres -c "SELECT count(*) FROM pg_database WHERE datname = '$DBNAME'")" = 0 ]; then
		psql_tcp -d postgres -c "CREATE DATABASE $DBNAME" >/dev/null
	fi
	rm -f "$DIR/pg_ctl.err" "$DIR/psql.err"
	if [ "$existing" = 1 ]; then
		log "restarted on 127.0.0.1:$PORT in $(awk "BEGIN { printf \"%.1f\", $EPOCHREALTIME - $t0 }")s"
	else
		log "new cluster in $HOME_DIR ready on 127.0.0.1:$PORT in $(awk "BEGIN { printf \"%.1f\", $EPOCHREALTIME - $t0 }")s"
	fi
	print_address
}

cmd_stop() {
	[ -d "$DIR" ] || { log "$DIR does not exist: nothing to stop"; return 0; }
	DIR="$(cd "$DIR" && pwd -P)"
	resolve_home || { log "no cluster in $DIR"; return 0; }
	[ -f "$HOME_DIR/data/PG_VERSION" ] || { log "no cluster in $DIR"; return 0; }
	if ! is_running; then
		log "not running"
		return 0
	fi
	if ! as_owner "$BINDIR/pg_ctl" -D "$HOME_DIR/data" -m fast -w -t 30 stop >/dev/null 2>&1; then
		log "fast shutdown timed out: immediate"
		as_owner "$BINDIR/pg_ctl" -D "$HOME_DIR/data" -m immediate -w -t 30 stop >/dev/null
	fi
	log "stopped"
}

cmd_status() {
	[ -d "$DIR" ] || return 1
	DIR="$(cd "$DIR" && pwd -P)"
	resolve_home || return 1
	[ -f "$HOME_DIR/data/PG_VERSION" ] || return 1
	is_running || return 1
	load_credentials
	print_address
}

cmd_destroy() {
	local home=""
	cmd_stop
	[ -d "$DIR" ] || return 0
	if resolve_home; then
		home="$HOME_DIR"
	fi
	rm -rf "$DIR/cluster" "$DIR/credentials" "$DIR/port" "$DIR/initdb.log" "$DIR/pg_ctl.err" "$DIR/psql.err" \
		"$DIR/ssl" "$DIR/listen" "$DIR/durable"
	case "$home" in
	/tmp/streamserver-pg-*) rm -rf "$home" ;;
	esac
	log "destroyed"
}

[ $# -ge 2 ] || usage
VERB="$1"
DIR="$2"
shift 2
SSL=0
DURABLE=0
LISTEN="${PG_LISTEN_ADDR:-}"
while [ $# -gt 0 ]; do
	[ "$VERB" = start ] || usage
	case "$1" in
	--ssl) SSL=1 ;;
	--durable) DURABLE=1 ;;
	--listen) [ $# -ge 2 ] && [ -n "$2" ] || usage; LISTEN="$2"; shift ;;
	*) usage ;;
	esac
	shift
done
if [ -n "$LISTEN" ]; then
	[[ "$LISTEN" =~ ^[0-9]+\.[0-9]+\.[0-9]+\.[0-9]+(/[0-9]+)?$ ]] ||
		die "--listen takes an IPv4 address with an optional /PREFIX: '$LISTEN'"
	[[ "$LISTEN" == */* ]] || LISTEN="$LISTEN/24"
fi
set -- "$VERB"
case "$1" in
start) cmd_start ;;
stop) cmd_stop ;;
status) cmd_status ;;
destroy) cmd_destroy ;;
*) usage ;;
esac
