#!/usr/bin/env bash
# A throwaway single-node Apache Kafka broker (KRaft) for the tests.
#
#   kafka.sh start DIR   fetch the broker's jars (once, cached), format DIR,
#                        start the broker on a free 127.0.0.1 port, wait until it
#                        answers metadata requests, print BOOTSTRAP=127.0.0.1:PORT
#   kafka.sh start DIR --secure
#                        the same broker plus a SASL_SSL listener (SCRAM-SHA-512)
#                        on a second port, with a CA made here; also prints
#                        SECURE_BOOTSTRAP=127.0.0.1:PORT, KAFKA_CA=DIR/tls/ca.crt,
#                        KAFKA_USER=streamserver, KAFKA_PASSWORD=...
#   kafka.sh start DIR --listen ADDR
#                        also a PLAINTEXT listener on ADDR (an address of this
#                        machine, e.g. the bridge of tests/harness/netns.sh),
#                        advertised as ADDR, for clients in other network
#                        namespaces; prints LISTEN_BOOTSTRAP=ADDR:PORT too.
#                        Combines with --secure; KAFKA_LISTEN_ADDR=ADDR in the
#                        environment does the same.
#   kafka.sh stop DIR    SIGTERM, wait, then SIGKILL
#   kafka.sh status DIR  exit 0 and print BOOTSTRAP=... (and the secure lines)
#                        if it runs, else exit 1
#
# Only the KEY=VALUE lines go to stdout; progress and errors go to stderr.
# Starting a DIR whose broker already runs just prints its addresses; starting
# a DIR formatted earlier restarts the broker on its old ports, as it was
# formatted (a DIR formatted with --secure stays secure; one formatted without
# refuses --secure).  The broker writes DIR/kafka.pid, DIR/kafka.out
# (stdout/stderr) and DIR/logs/server.log; its data is in DIR/data.
#
# --listen: a fourth listener, HOSTS (PLAINTEXT), on ADDR:PORT with PORT free
# on ADDR, beside the unchanged 127.0.0.1 one, which the tests' producers and
# admin clients keep using; a client that bootstraps from either gets the
# broker's address on that listener.  Like --secure it is fixed when DIR is
# formatted: a restart keeps it, and a different ADDR needs a new DIR.  ADDR
# must exist when the broker starts.
#
# --secure: the PLAINTEXT listener stays (the tests' producers and admin
# clients use it; the inter-broker and controller listeners are plaintext
# too).  DIR/tls holds the harness's CA (ca.crt, ca.key) and broker.pem, the
# broker's PKCS#8 key and its certificate for localhost and 127.0.0.1 signed by
# that CA (Kafka's ssl.keystore.type=PEM).  The SCRAM-SHA-512 user is created
# when DIR is formatted (kafka-storage format --add-scram: KRaft, no
# ZooKeeper), with a random password kept in DIR/kafka_password (mode 0600).
# The password is on the storage tool's command line while it formats.
#
# Environment:
#   KAFKA_CACHE_DIR      where the jars go (default
#                        ${XDG_CACHE_HOME:-$HOME/.cache}/streamserver/kafka-3.9.1)
#   KAFKA_MAVEN_REPO     Maven local repository to use (default: Maven's, ~/.m2)
#   KAFKA_HEAP_OPTS      JVM heap options (default -Xms128m -Xmx512m)
#   KAFKA_START_TIMEOUT  seconds to wait for the broker (default 120)
#   KAFKA_STOP_TIMEOUT   seconds between SIGTERM and SIGKILL (default 30)
#   KAFKA_LISTEN_ADDR    as --listen ADDR
#   PYTHON               interpreter with confluent_kafka (default /usr/bin/python3)
set -euo pipefail

KAFKA_VERSION=3.9.1
HERE="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
POM="$HERE/pom.xml"
PYTHON="${PYTHON:-/usr/bin/python3}"
CACHE="${KAFKA_CACHE_DIR:-${XDG_CACHE_HOME:-$HOME/.cache}/streamserver/kafka-$KAFKA_VERSION}"
START_TIMEOUT="${KAFKA_START_TIMEOUT:-120}"
STOP_TIMEOUT="${KAFKA_STOP_TIMEOUT:-30}"
HEAP_OPTS="${KAFKA_HEAP_OPTS:--Xms128m -Xmx512m}"

log() { printf 'kafka.sh: %s\n' "$*" >&2; }
die() { printf 'kafka.sh: error: %s\n' "$*" >&2; exit 1; }
# shellcheck source=lib.sh
. "$HERE/lib.sh"

KAFKA_USER=streamserver

usage() {
	echo "usage: $0 {start [--secure] [--listen ADDR]|stop|status} DIR" >&2
	exit 2
}

# Copies the broker's jars into $CACHE unless a complete copy made from the same
# pom.xml is there.  A lock serialises concurrent first runs; the copy is made
# beside the cache and renamed into place, so an interrupted fetch leaves nothing
# half-done behind.
fetch_jars() {
	local want have tmp
	command -v mvn >/dev/null || die "mvn not found (apt-get install maven)"
	command -v java >/dev/null || die "java not found (apt-get install default-jre-headless)"
	want="$(sha256sum "$POM" | cut -d' ' -f1)"
	if [ -f "$CACHE/.complete" ] && [ "$(cat "$CACHE/.complete")" = "$want" ]; then
		return 0
	fi
	mkdir -p "$(dirname "$CACHE")"
	exec 9>"$CACHE.lock"
	flock 9
	if [ -f "$CACHE/.complete" ] && [ "$(cat "$CACHE/.complete")" = "$want" ]; then
		exec 9>&-
		return 0
	fi
	log "fetching Apache Kafka $KAFKA_VERSION jars with Maven into $CACHE"
	tmp="$(mktemp -d "$CACHE.tmp.XXXXXX")"
	local -a mvn_args=(-q -B -Dstyle.color=never -f "$POM" dependency:copy-dependencies
		"-DoutputDirectory=$tmp" -DincludeScope=runtime)
	if [ -n "${KAFKA_MAVEN_REPO:-}" ]; then
		mvn_args+=("-Dmaven.repo.local=$KAFKA_MAVEN_REPO")
	fi
	if ! mvn "${mvn_args[@]}" >"$tmp/mvn.log" 2>&1; then
		cat "$tmp/mvn.log" >&2
		rm -rf "$tmp"
		die "Maven could not fetch the Kafka jars (is Maven Central reachable?)"
	fi
	rm -f "$tmp/mvn.log"
	[ -f "$tmp/kafka_2.13-$KAFKA_VERSION.jar" ] || { rm -rf "$tmp"; die "kafka_2.13-$KAFKA_VERSION.jar missing after the fetch"; }
	echo "$want" >"$tmp/.complete"
	rm -rf "$CACHE"
	mv "$tmp" "$CACHE"
	exec 9>&-
	log "cached $(ls "$CACHE" | wc -l) jars in $CACHE"
}

# Prints three distinct free TCP ports on 127.0.0.1.
free_ports() {
	"$PYTHON" - <<'EOF'
import socket
socks = []
for _ in range(3):
    s = socket.socket()
    s.bind(("127.0.0.1", 0))
    socks.append(s)
print(" ".join(str(s.getsockname()[1]) for s in socks))
EOF
}

# port_in_use PORT [ADDR]: status 0 if PORT of ADDR (default 127.0.0.1) is taken.
port_in_use() {
	"$PYTHON" -c '
import socket, sys
s = socket.socket()
s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
try:
    s.bind((sys.argv[2], int(sys.argv[1])))
except OSError:
    sys.exit(0)
sys.exit(1)' "$1" "${2:-127.0.0.1}"
}

# A free TCP port on ADDR (the --listen address); fails if ADDR is not ours.
free_port_on() {
	"$PYTHON" -c '
import socket, sys
s = socket.socket()
try:
    s.bind((sys.argv[1], 0))
except OSError as e:
    sys.exit("kafka.sh: error: cannot bind %s: %s (is it an address of this machine?)" % (sys.argv[1], e))
print(s.getsockname()[1])' "$1"
}

# The pid of DIR's broker if it runs, else nothing (and status 1).
broker_pid() {
	local pid
	[ -f "$DIR/kafka.pid" ] || return 1
	pid="$(cat "$DIR/kafka.pid")"
	[ -n "$pid" ] && [ -r "/proc/$pid/cmdline" ] || return 1
	tr '\0' ' ' <"/proc/$pid/cmdline" | grep -qF "kafka.Kafka $DIR/server.properties" || return 1
	echo "$pid"
}

# write_config PORT CONTROLLER_PORT SASL_SSL_PORT|"" [LISTEN_ADDR:LISTEN_PORT]
write_config() {
	local port="$1" cport="$2" sport="${3:-}" hosts="${4:-}" listeners advertised map
	listeners="PLAINTEXT://127.0.0.1:$port,CONTROLLER://127.0.0.1:$cport"
	advertised="PLAINTEXT://127.0.0.1:$port"
	map="CONTROLLER:PLAINTEXT,PLAINTEXT:PLAINTEXT"
	if [ -n "$sport" ]; then
		listeners+=",SASL_SSL://127.0.0.1:$sport"
		advertised+=",SASL_SSL://127.0.0.1:$sport"
		map+=",SASL_SSL:SASL_SSL"
	fi
	if [ -n "$hosts" ]; then
		listeners+=",HOSTS://$hosts"
		advertised+=",HOSTS://$hosts"
		map+=",HOSTS:PLAINTEXT"
	fi
	cat >"$DIR/server.properties" <<EOF
# Single-node KRaft broker for the Streaming Server tests (tests/harness/kafka.sh).
process.roles=broker,controller
node.id=1
controller.quorum.voters=1@127.0.0.1:$cport
listeners=$listeners
advertised.listeners=$advertised
inter.broker.listener.name=PLAINTEXT
controller.listener.names=CONTROLLER
listener.security.protocol.map=$map
log.dirs=$DIR/data
num.partitions=1
default.replication.factor=1
min.insync.replicas=1
auto.create.topics.enable=false
delete.topic.enable=true
offsets.topic.replication.factor=1
offsets.topic.num.partitions=8
transaction.state.log.replication.factor=1
transaction.state.log.min.isr=1
transaction.state.log.num.partitions=4
group.initial.rebalance.delay.ms=0
num.network.threads=2
num.io.threads=4
num.recovery.threads.per.data.dir=1
log.cleaner.threads=1
log.cleaner.dedupe.buffer.size=8388608
log.segment.bytes=268435456
log.retention.hours=168
EOF
	if [ -n "$sport" ]; then
		cat >>"$DIR/server.properties" <<EOF
# SASL_SSL for clients (kafka.sh start DIR --secure): SCRAM-SHA-512 users from
# the storage format, the harness's CA, no client certificates.
sasl.enabled.mechanisms=SCRAM-SHA-512
listener.name.sasl_ssl.scram-sha-512.sasl.jaas.config=org.apache.kafka.common.security.scram.ScramLoginModule required;
listener.name.sasl_ssl.ssl.keystore.type=PEM
listener.name.sasl_ssl.ssl.keystore.location=$DIR/tls/broker.pem
listener.name.sasl_ssl.ssl.client.auth=none
EOF
	fi
	cat >"$DIR/log4j.properties" <<EOF
log4j.rootLogger=INFO, file
log4j.appender.file=org.apache.log4j.RollingFileAppender
log4j.appender.file.File=$DIR/logs/server.log
log4j.appender.file.MaxFileSize=20MB
log4j.appender.file.MaxBackupIndex=2
log4j.appender.file.layout=org.apache.log4j.PatternLayout
log4j.appender.file.layout.ConversionPattern=[%d] %p %m (%c)%n
log4j.logger.kafka.request.logger=WARN
log4j.logger.state.change.logger=WARN
log4j.logger.org.apache.kafka.controller=INFO
log4j.logger.kafka.log.LogCleaner=WARN
EOF
}

# --secure: DIR/tls with a CA and the broker's key and certificate (SAN
# localhost, 127.0.0.1) signed by it, as one PEM keystore; and the SCRAM
# password in DIR/kafka_password.
make_secrets() {
	local tls="$DIR/tls"
	command -v openssl >/dev/null || die "openssl not found (apt-get install openssl)"
	rm -rf "$tls"
	mkdir "$tls"
	# umask: the keys are never readable by others, not even for a moment.
	if ! (
		umask 077
		openssl req -x509 -new -nodes -newkey rsa:2048 -keyout "$tls/ca.key" -out "$tls/ca.crt" \
			-days 3650 -subj "/CN=Streaming Server test CA" \
			-addext "basicConstraints=critical,CA:TRUE" -addext "keyUsage=critical,keyCertSign,cRLSign" &&
			openssl req -new -nodes -newkey rsa:2048 -keyout "$tls/broker.key" -out "$tls/broker.csr" \
				-subj "/CN=localhost" &&
			openssl x509 -req -in "$tls/broker.csr" -CA "$tls/ca.crt" -CAkey "$tls/ca.key" \
				-set_serial "0x$(openssl rand -hex 16)" -days 3650 -out "$tls/broker.crt" \
				-extfile <(printf '%s\n' "subjectAltName=DNS:localhost,IP:127.0.0.1" \
					"basicConstraints=critical,CA:FALSE" \
					"keyUsage=critical,digitalSignature,keyEncipherment" "extendedKeyUsage=serverAuth") &&
			cat "$tls/broker.key" "$tls/broker.crt" >"$tls/broker.pem"
	) >"$tls/openssl.log" 2>&1; then
		cat "$tls/openssl.log" >&2
		die "making the test CA and the broker's certificate in $tls failed"
	fi
	rm -f "$tls/broker.csr" "$tls/openssl.log"
	chmod 0644 "$tls/ca.crt" "$tls/broker.crt"
	# Hex: nothing that --add-scram's parser or a YAML scalar would trip on.
	(umask 077 && openssl rand -hex 16 >"$DIR/kafka_password")
}

# The line of the --listen listener, if DIR has one.
print_listen() {
	[ -f "$DIR/listen_bootstrap" ] || return 0
	echo "LISTEN_BOOTSTRAP=$(cat "$DIR/listen_bootstrap")"
}

# The lines of the SASL_SSL listener, if DIR has one.
print_secure() {
	[ -f "$DIR/secure_bootstrap" ] || return 0
	echo "SECURE_BOOTSTRAP=$(cat "$DIR/secure_bootstrap")"
	echo "KAFKA_CA=$DIR/tls/ca.crt"
	echo "KAFKA_USER=$KAFKA_USER"
	echo "KAFKA_PASSWORD=$(cat "$DIR/kafka_password")"
}

# Waits until the broker answers a metadata request that lists itself (with
# SECURE_BOOTSTRAP CA USER PASSWORD_FILE also on its SASL_SSL listener, and
# with $WAIT_LISTEN set also on that --listen address).
wait_ready() {
	local pid="$1" bootstrap="$2"
	WAIT_LISTEN="${WAIT_LISTEN:-}" "$PYTHON" - "$pid" "$bootstrap" "$START_TIMEOUT" "${@:3}" <<'EOF' || return 1
import os, sys, time
try:
    from confluent_kafka.admin import AdminClient
except ImportError as e:
    sys.exit("kafka.sh: error: %s (use /usr/bin/python3 with python3-confluent-kafka)" % e)
pid, bootstrap, timeout = int(sys.argv[1]), sys.argv[2], float(sys.argv[3])
deadline = time.monotonic() + timeout
common = {"log_level": 0, "socket.connection.setup.timeout.ms": 1000, "reconnect.backoff.max.ms": 200}
admins = [("PLAINTEXT", AdminClient(dict(common, **{"bootstrap.servers": bootstrap})))]
if os.environ.get("WAIT_LISTEN"):
    admins.append(("HOSTS", AdminClient(dict(common, **{"bootstrap.servers": os.environ["WAIT_LISTEN"]}))))
if len(sys.argv) > 4:
    sbootstrap, ca, user, pwfile = sys.argv[4:8]
    with open(pwfile) as f:
        password = f.read().strip()
    admins.append(("SASL_SSL", AdminClient(dict(common, **{
        "bootstrap.servers": sbootstrap, "security.protocol": "SASL_SSL",
        "sasl.mechanisms": "SCRAM-SHA-512", "sasl.username": user, "sasl.password": password,
        "ssl.ca.location": ca}))))
last = "no answer"
while time.monotonic() < deadline:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        sys.exit("kafka.sh: error: the broker (pid %d) exited during startup" % pid)
    name, admin = admins[0]
    try:
        md = admin.list_topics(timeout=1)
        if 1 in md.brokers:
            admins.pop(0)
            if not admins:
                sys.exit(0)
            continue
        last = "%s: metadata lists brokers %s" % (name, list(md.brokers))
    except Exception as e:  # KafkaException while it starts
        last = "%s: %s" % (name, e)
    time.sleep(0.1)
sys.exit("kafka.sh: error: the broker did not answer within %gs (last: %s)" % (timeout, last))
EOF
}

cmd_start() {
	local pid port cport sport="" hosts="" cluster_id t0
	local -a scram=() secure_ready=()
	t0=$EPOCHREALTIME
	mkdir -p "$DIR"
	DIR="$(cd "$DIR" && pwd -P)"
	if pid="$(broker_pid)"; then
		if [ "$SECURE" = 1 ] && [ ! -f "$DIR/secure_bootstrap" ]; then
			die "the broker in $DIR runs without a SASL_SSL listener; stop it and start a new DIR with --secure"
		fi
		check_listen_kept

		log "already running (pid $pid)"
		echo "BOOTSTRAP=$(cat "$DIR/bootstrap")"
		echo "PID=$pid"
		echo "KAFKA_DIR=$DIR"
		print_secure
		print_listen
		return 0
	fi
	fetch_jars
	mkdir -p "$DIR/logs"
	if [ -f "$DIR/server.properties" ] && [ -f "$DIR/data/meta.properties" ]; then
		port="$(sed -n 's/^listeners=PLAINTEXT:\/\/127.0.0.1:\([0-9]*\),.*/\1/p' "$DIR/server.properties")"
		cport="$(sed -n 's/^controller.quorum.voters=1@127.0.0.1:\([0-9]*\)$/\1/p' "$DIR/server.properties")"
		sport="$(sed -n 's/^listeners=.*,SASL_SSL:\/\/127.0.0.1:\([0-9]*\).*/\1/p' "$DIR/server.properties")"
		hosts="$(sed -n 's/^listeners=.*,HOSTS:\/\/\([0-9.]*:[0-9]*\).*/\1/p' "$DIR/server.properties")"
		[ -n "$port" ] && [ -n "$cport" ] || die "$DIR/server.properties was not written by kafka.sh"
		if [ "$SECURE" = 1 ] && [ -z "$sport" ]; then
			die "$DIR was formatted without --secure; use a new DIR for a SASL_SSL broker"
		fi
		for p in "$port" "$cport" $sport; do
			port_in_use "$p" && die "port $p of the broker in $DIR is taken by another process"
		done
		if [ -n "$hosts" ] || [ -n "$LISTEN" ]; then
			[ "${hosts%:*}" = "$LISTEN" ] || [ -z "$LISTEN" ] ||
				die "$DIR was formatted $(listen_text "$hosts"); use a new DIR for --listen $LISTEN"
			port_in_use "${hosts##*:}" "${hosts%:*}" &&
				die "port ${hosts##*:} of ${hosts%:*} (--listen) is taken, or that address is gone"
		fi
		log "restarting the broker formatted in $DIR on port $port"
	else
		rm -rf "$DIR/data"
		rm -f "$DIR/secure_bootstrap" "$DIR/listen_bootstrap"
		read -r port cport sport < <(free_ports)
		if [ -n "$LISTEN" ]; then
			hosts="$LISTEN:$(free_port_on "$LISTEN")"
		fi
		if [ "$SECURE" = 1 ]; then
			make_secrets
			scram=(--add-scram "SCRAM-SHA-512=[name=$KAFKA_USER,password=$(cat "$DIR/kafka_password")]")
		else
			sport=""
		fi
		write_config "$port" "$cport" "$sport" "$hosts"
		# Like Kafka's Uuid.randomUuid(): never starting with "-", which the
		# storage tool's argument parser would take for an option.
		cluster_id="$("$PYTHON" -c '
import base64, uuid
while True:
    s = base64.urlsafe_b64encode(uuid.uuid4().bytes).decode().rstrip("=")
    if not s.startswith("-"):
        print(s)
        break')"
		if ! java -Xshare:auto -XX:TieredStopAtLevel=1 -Dlog4j.configuration="file:$DIR/log4j.properties" \
			-cp "$CACHE/*" kafka.tools.StorageTool format -t "$cluster_id" \
			-c "$DIR/server.properties" "${scram[@]}" >"$DIR/format.log" 2>&1; then
			cat "$DIR/format.log" >&2
			die "formatting the KRaft storage in $DIR failed"
		fi
	fi
	echo "127.0.0.1:$port" >"$DIR/bootstrap"
	if [ -n "$sport" ]; then
		echo "127.0.0.1:$sport" >"$DIR/secure_bootstrap"
		secure_ready=("127.0.0.1:$sport" "$DIR/tls/ca.crt" "$KAFKA_USER" "$DIR/kafka_password")
	fi
	if [ -n "$hosts" ]; then
		echo "$hosts" >"$DIR/listen_bootstrap"
	fi
	# setsid: the broker is not killed with the caller's process group (a test
	# runner's ^C); stop it with `kafka.sh stop`.
	# shellcheck disable=SC2086
	setsid java $HEAP_OPTS -XX:+UseG1GC -XX:MaxGCPauseMillis=20 -Djava.awt.headless=true \
		-Dlog4j.configuration="file:$DIR/log4j.properties" -Dkafka.logs.dir="$DIR/logs" \
		-cp "$CACHE/*" kafka.Kafka "$DIR/server.properties" \
		</dev/null >"$DIR/kafka.out" 2>&1 &
	pid=$!
	echo "$pid" >"$DIR/kafka.pid"
	if ! WAIT_LISTEN="$hosts" wait_ready "$pid" "127.0.0.1:$port" "${secure_ready[@]}"; then
		log "last lines of $DIR/kafka.out and $DIR/logs/server.log:"
		tail -n 20 "$DIR/kafka.out" >&2 || true
		grep -E ' (ERROR|FATAL|WARN) ' "$DIR/logs/server.log" 2>/dev/null | tail -n 20 >&2 || true
		kill -KILL "$pid" 2>/dev/null || true
		rm -f "$DIR/kafka.pid"
		exit 1
	fi
	log "broker ready on 127.0.0.1:$port${sport:+ (SASL_SSL on 127.0.0.1:$sport)}${hosts:+ (and $hosts)} (pid $pid) in $(awk "BEGIN { printf \"%.1f\", $EPOCHREALTIME - $t0 }")s"
	echo "BOOTSTRAP=127.0.0.1:$port"
	echo "PID=$pid"
	echo "KAFKA_DIR=$DIR"
	print_secure
	print_listen
}

cmd_stop() {
	local pid
	[ -d "$DIR" ] || { log "$DIR does not exist: nothing to stop"; return 0; }
	DIR="$(cd "$DIR" && pwd -P)"
	if ! pid="$(broker_pid)"; then
		rm -f "$DIR/kafka.pid"
		log "not running"
		return 0
	fi
	stop_pid "$pid" "$DIR/kafka.pid"
}


cmd_status() {
	local pid
	[ -d "$DIR" ] || return 1
	DIR="$(cd "$DIR" && pwd -P)"
	pid="$(broker_pid)" || return 1
	echo "BOOTSTRAP=$(cat "$DIR/bootstrap")"
	echo "PID=$pid"
	print_secure
	print_listen
}

# A running broker answers for DIR as it was formatted: --listen ADDR must be
# the address it listens on, if it has one.
check_listen_kept() {
	local have=""
	[ -n "$LISTEN" ] || return 0
	[ -f "$DIR/listen_bootstrap" ] && have="$(cat "$DIR/listen_bootstrap")"
	[ "${have%:*}" = "$LISTEN" ] ||
		die "the broker in $DIR runs $(listen_text "$have"); stop it and start a new DIR with --listen $LISTEN"
}

# "with --listen ADDR" for ADDR:PORT, "without --listen" for nothing.
listen_text() {
	if [ -n "$1" ]; then
		echo "with --listen ${1%:*}"
	else
		echo "without --listen"
	fi
}

SECURE=0
LISTEN="${KAFKA_LISTEN_ADDR:-}"
[ $# -ge 2 ] || usage
VERB="$1"
DIR="$2"
shift 2
while [ $# -gt 0 ]; do
	[ "$VERB" = start ] || usage
	case "$1" in
	--secure) SECURE=1 ;;
	--listen) [ $# -ge 2 ] && [ -n "$2" ] || usage; LISTEN="$2"; shift ;;
	*) usage ;;
	esac
	shift
done
if [ -n "$LISTEN" ] && ! [[ "$LISTEN" =~ ^[0-9]+\.[0-9]+\.[0-9]+\.[0-9]+$ ]]; then
	die "--listen takes an IPv4 address: '$LISTEN'"
fi
set -- "$VERB"
case "$1" in
start) cmd_start ;;
stop) cmd_stop ;;
status) cmd_status ;;
*) usage ;;
esac
