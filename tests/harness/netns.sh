#!/usr/bin/env bash
# Simulated hosts for the multi-host tests: network namespaces on one machine,
# joined by a private bridge in the root namespace.  Needs root and iproute2.
#
#   netns.sh up NAME COUNT [--subnet X] [--owner PID]
#                        a bridge NAME-br with 10.213.X.1/24 and COUNT hosts
#                        (namespaces NAME-1..NAME-COUNT), each with loopback up,
#                        eth0 = a veth into the bridge with 10.213.X.(10+I)/24
#                        and a default route via 10.213.X.1.  X (1..254) is the
#                        first /24 of 10.213.0.0/16 no interface of the root
#                        namespace uses (taken under a lock, so parallel runs
#                        get different ones), or the one given.  COUNT may be 0
#                        (a bridge for hosts added later).  Prints:
#                          BRIDGE=NAME-br BRIDGE_ADDR=10.213.X.1
#                          SUBNET=10.213.X.0/24 HOSTS=COUNT
#                          HOSTI_NS=NAME-I HOSTI_ADDR=10.213.X.(10+I) (each I)
#                        --owner PID: the process (a test run) whose set it is,
#                        for `reap`.
#   netns.sh add NAME I  one more host I on an existing bridge; prints its lines
#   netns.sh del NAME I  kill host I's processes, remove its namespace and veth
#   netns.sh status NAME exit 0 and print the lines of `up` if the bridge
#                        exists, else exit 1
#   netns.sh cut NAME I      host I's veth down at the bridge: a cable pulled
#   netns.sh restore NAME I  and plugged in again
#   netns.sh exec NAME I CMD...  CMD in host I (ip netns exec; it replaces
#                        this script, so a caller gets CMD's pid and status)
#   netns.sh pids NAME I the pids of the processes in host I, one a line
#   netns.sh kill NAME I SIGKILL to every process in host I, until none is left
#   netns.sh down NAME   kill every process in NAME's hosts, remove the
#                        namespaces, veths and the bridge.  Idempotent.
#   netns.sh reap        `down` every set made with --owner whose owner has
#                        exited (a test run killed before its teardown)
#
# Only the KEY=VALUE lines (and pids) go to stdout; progress and errors go to
# stderr.  NAME: 1-9 letters, digits or _ (interface names are limited to 15
# bytes: NAME-br, NAME-vI).
#
# Nothing routes outside: the bridge has no physical port, nothing is NATed,
# net.ipv4.ip_forward is not touched, forwarding is switched off on the bridge
# itself (net.ipv4.conf.NAME-br.forwarding=0, which IPv4 checks on the input
# device), and a policy rule (ip rule: iif NAME-br, pref 1000, unreachable)
# answers "unreachable" to whatever arrives on the bridge for an address that
# is not local, before the main table is looked at: a host's packet for the
# outside never leaves, even on a machine that forwards (or starts to: setting
# ip_forward resets every interface's forwarding).  IPv6 is off on our
# interfaces.  A host reaches the root namespace's addresses (10.213.X.1 among
# them, where the harness's Kafka and PostgreSQL listen with --listen) and the
# other hosts, nothing else.
set -euo pipefail

NET_PREFIX=10.213
LOCK="${NETNS_LOCK:-/run/lock/streamserver-netns.lock}"
# NAME -> "PID STARTTIME" of its --owner (the start time tells a reused pid).
OWNERS="${NETNS_OWNERS:-/run/streamserver-netns}"

log() { printf 'netns.sh: %s\n' "$*" >&2; }
die() { printf 'netns.sh: error: %s\n' "$*" >&2; exit 1; }

usage() {
	cat >&2 <<EOF
usage: $0 up NAME COUNT [--subnet X] [--owner PID] | add|del|cut|restore|pids|kill NAME I
       | exec NAME I CMD... | status|down NAME | reap
EOF
	exit 2
}

check_name() {
	[[ "$1" =~ ^[A-Za-z0-9_]{1,9}$ ]] || die "NAME must be 1-9 letters, digits or _: '$1'"
}

check_index() {
	[[ "$1" =~ ^[0-9]+$ ]] && [ "$1" -ge 1 ] && [ "$1" -le 244 ] || die "host index must be 1..244: '$1'"
}

need_root() {
	[ "$(id -u)" -eq 0 ] || die "needs root (ip netns, veth, bridge)"
	command -v ip >/dev/null || die "ip not found (apt-get install iproute2)"
}

bridge_of() { echo "$1-br"; }
veth_of() { echo "$1-v$2"; }
ns_of() { echo "$1-$2"; }

# X of NAME's bridge (from its address), or status 1.
subnet_of() {
	local addr
	addr="$(ip -4 -o addr show dev "$(bridge_of "$1")" 2>/dev/null | awk '{print $4}' | head -n 1)"
	[[ "$addr" =~ ^$NET_PREFIX\.([0-9]+)\.1/24$ ]] || return 1
	echo "${BASH_REMATCH[1]}"
}

# The indexes of NAME's hosts (namespaces NAME-I), ascending.
hosts_of() {
	ip netns list 2>/dev/null | awk '{print $1}' | sed -n "s/^$1-\([0-9]\{1,3\}\)$/\1/p" | sort -n
}

subnet_free() {
	! ip -4 -o addr show | awk '{print $4}' | grep -q "^$NET_PREFIX\.$1\." &&
		! ip -4 route show | grep -q "^$NET_PREFIX\.$1\."
}

print_host() {
	local name="$1" i="$2" x="$3"
	echo "HOST${i}_NS=$(ns_of "$name" "$i")"
	echo "HOST${i}_ADDR=$NET_PREFIX.$x.$((10 + i))"
}

print_lines() {
	local name="$1" x="$2" i n=0
	echo "BRIDGE=$(bridge_of "$name")"
	echo "BRIDGE_ADDR=$NET_PREFIX.$x.1"
	echo "SUBNET=$NET_PREFIX.$x.0/24"
	for i in $(hosts_of "$name"); do
		print_host "$name" "$i" "$x"
		n=$((n + 1))
	done
	echo "HOSTS=$n"
}

# Quiet IPv6 on an interface of the root namespace (no link-local chatter).
no_ipv6() {
	sysctl -q -w "net.ipv6.conf.$1.disable_ipv6=1" >/dev/null 2>&1 || true
}

make_host() {
	local name="$1" i="$2" x="$3" ns veth peer
	ns="$(ns_of "$name" "$i")"
	veth="$(veth_of "$name" "$i")"
	peer="$name-p$i"
	ip netns list | awk '{print $1}' | grep -qx "$ns" && die "namespace $ns exists already"
	ip netns add "$ns"
	if ! {
		ip link add "$veth" type veth peer name "$peer" &&
			no_ipv6 "$veth" &&
			ip link set "$peer" netns "$ns" &&
			ip -n "$ns" link set "$peer" name eth0 &&
			{ ip netns exec "$ns" sysctl -q -w net.ipv6.conf.all.disable_ipv6=1 >/dev/null 2>&1 || true; } &&
			ip -n "$ns" link set lo up &&
			ip -n "$ns" addr add "$NET_PREFIX.$x.$((10 + i))/24" dev eth0 &&
			ip -n "$ns" link set eth0 up &&
			ip -n "$ns" route add default via "$NET_PREFIX.$x.1" &&
			ip link set "$veth" master "$(bridge_of "$name")" &&
			ip link set "$veth" up
	}; then
		ip link del "$veth" 2>/dev/null || true
		ip netns del "$ns" 2>/dev/null || true
		die "could not make host $i ($ns)"
	fi
}

# SIGKILL to every process in namespace NS until none is left (a process
# may fork while we kill).
kill_ns() {
	local ns="$1" pids tries
	for ((tries = 0; tries < 100; tries++)); do
		pids="$(ip netns pids "$ns" 2>/dev/null || true)"
		[ -n "$pids" ] || return 0
		# shellcheck disable=SC2086
		kill -KILL $pids 2>/dev/null || true
		sleep 0.1
	done
	die "processes still run in $ns after 10 s of SIGKILL: $(ip netns pids "$ns" | tr '\n' ' ')"
}

remove_host() {
	local name="$1" i="$2" ns
	ns="$(ns_of "$name" "$i")"
	if ip netns list | awk '{print $1}' | grep -qx "$ns"; then
		kill_ns "$ns"
		ip netns del "$ns"
	fi
	# The veth goes with its peer's namespace; this is for a half-made host.
	ip link del "$(veth_of "$name" "$i")" 2>/dev/null || true
	ip link del "$name-p$i" 2>/dev/null || true
}

# The start time of a live PID (field 22 of /proc/PID/stat), or status 1.
start_time_of() {
	local stat
	stat="$(cat "/proc/$1/stat" 2>/dev/null)" || return 1
	stat="${stat##*) }" # after the command name, which may hold spaces
	# shellcheck disable=SC2086
	set -- $stat
	echo "${20}"
}

cmd_up() {
	local name="$1" count="$2" x="${3:-}" owner="${4:-}" cand i start
	[[ "$count" =~ ^[0-9]+$ ]] && [ "$count" -le 244 ] || die "COUNT must be 0..244: '$count'"
	if [ -n "$owner" ]; then
		[[ "$owner" =~ ^[0-9]+$ ]] && start_time_of "$owner" >/dev/null || die "--owner: no process $owner"
	fi
	ip link show "$(bridge_of "$name")" >/dev/null 2>&1 && die "$(bridge_of "$name") exists already (netns.sh down $name)"
	[ -z "$(hosts_of "$name")" ] || die "namespaces $name-* exist already (netns.sh down $name)"
	mkdir -p "$(dirname "$LOCK")"
	exec 9>"$LOCK"
	flock 9
	if [ -n "$x" ]; then
		[[ "$x" =~ ^[0-9]+$ ]] && [ "$x" -ge 1 ] && [ "$x" -le 254 ] || die "--subnet must be 1..254: '$x'"
		subnet_free "$x" || die "$NET_PREFIX.$x.0/24 is in use"
	else
		# Start at a place that depends on NAME and the pid, so that two runs
		# rarely probe the same numbers; the lock settles the rest.
		start=$(( ($(printf '%s' "$name$$" | cksum | cut -d' ' -f1) % 254) ))
		for ((i = 0; i < 254; i++)); do
			cand=$(( (start + i) % 254 + 1 ))
			if subnet_free "$cand"; then
				x="$cand"
				break
			fi
		done
		[ -n "$x" ] || die "no free /24 in $NET_PREFIX.0.0/16"
	fi
	# Whatever fails from here on leaves nothing behind.
	trap 'cmd_down "$name" 2>/dev/null' EXIT
	ip link add "$(bridge_of "$name")" type bridge
	no_ipv6 "$(bridge_of "$name")"
	sysctl -q -w "net.ipv4.conf.$(bridge_of "$name").forwarding=0" >/dev/null
	ip rule add iif "$(bridge_of "$name")" pref 1000 unreachable
	ip addr add "$NET_PREFIX.$x.1/24" dev "$(bridge_of "$name")"
	ip link set "$(bridge_of "$name")" up
	if [ -n "$owner" ]; then
		mkdir -p "$OWNERS"
		echo "$owner $(start_time_of "$owner")" >"$OWNERS/$name"
	fi
	exec 9>&-
	for ((i = 1; i <= count; i++)); do
		make_host "$name" "$i" "$x"
	done
	trap - EXIT
	log "bridge $(bridge_of "$name") $NET_PREFIX.$x.1/24 with $count hosts"
	print_lines "$name" "$x"
}

cmd_add() {
	local name="$1" i="$2" x
	x="$(subnet_of "$name")" || die "no bridge $(bridge_of "$name") (netns.sh up $name 0 first)"
	make_host "$name" "$i" "$x"
	print_host "$name" "$i" "$x"
}

cmd_down() {
	local name="$1" i link
	for i in $(hosts_of "$name"); do
		remove_host "$name" "$i"
	done
	# Leftovers of a half-made host (veths whose namespace is gone already).
	for link in $(ip -o link show 2>/dev/null | awk -F': ' '{print $2}' | sed 's/@.*//' |
		grep -E "^$name-[vp][0-9]+$" || true); do
		ip link del "$link" 2>/dev/null || true
	done
	if ip link show "$(bridge_of "$name")" >/dev/null 2>&1; then
		ip link del "$(bridge_of "$name")"
	fi
	while ip rule del iif "$(bridge_of "$name")" pref 1000 unreachable 2>/dev/null; do :; done
	rm -f "$OWNERS/$name"
	log "$name: down"
}

cmd_reap() {
	local f name pid st
	for f in "$OWNERS"/*; do
		[ -f "$f" ] || continue
		name="$(basename "$f")"
		read -r pid st <"$f" || true
		if [ -n "$pid" ] && [ "$(start_time_of "$pid" || true)" = "$st" ]; then
			continue
		fi
		log "$name: its owner (pid $pid) has exited"
		cmd_down "$name"
	done
}

host_exists() {
	ip netns list | awk '{print $1}' | grep -qx "$(ns_of "$1" "$2")" || die "no host $2 in $1"
}

if [ "${1:-}" = reap ]; then
	[ $# -eq 1 ] || usage
	need_root
	cmd_reap
	exit 0
fi
[ $# -ge 2 ] || usage
VERB="$1"
NAME="$2"
check_name "$NAME"
need_root
case "$VERB" in
up)
	[ $# -ge 3 ] || usage
	count="$3"
	subnet="${NETNS_SUBNET:-}"
	owner=""
	shift 3
	while [ $# -gt 0 ]; do
		case "$1" in
		--subnet) [ $# -ge 2 ] || usage; subnet="$2"; shift ;;
		--owner) [ $# -ge 2 ] || usage; owner="$2"; shift ;;
		*) usage ;;
		esac
		shift
	done
	cmd_up "$NAME" "$count" "$subnet" "$owner"
	;;
add | del | cut | restore | pids | kill)
	[ $# -eq 3 ] || usage
	check_index "$3"
	case "$VERB" in
	add) cmd_add "$NAME" "$3" ;;
	del) remove_host "$NAME" "$3" ;;
	cut) host_exists "$NAME" "$3"; ip link set "$(veth_of "$NAME" "$3")" down ;;
	restore) host_exists "$NAME" "$3"; ip link set "$(veth_of "$NAME" "$3")" up ;;
	pids) host_exists "$NAME" "$3"; ip netns pids "$(ns_of "$NAME" "$3")" ;;
	kill) host_exists "$NAME" "$3"; kill_ns "$(ns_of "$NAME" "$3")" ;;
	esac
	;;
exec)
	[ $# -ge 4 ] || usage
	check_index "$3"
	host_exists "$NAME" "$3"
	exec ip netns exec "$(ns_of "$NAME" "$3")" "${@:4}"
	;;
status)
	[ $# -eq 2 ] || usage
	x="$(subnet_of "$NAME")" || exit 1
	print_lines "$NAME" "$x"
	;;
down)
	[ $# -eq 2 ] || usage
	cmd_down "$NAME"
	;;
*) usage ;;
esac
