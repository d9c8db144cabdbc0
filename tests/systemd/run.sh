#!/usr/bin/env bash
# run.sh: the bridge's Debian package and its real systemd units, under a
# real systemd (252, Debian 12) as PID 1 in a systemd-nspawn container.
#
#   tests/systemd/run.sh [PATH/TO/mqtt-amqp-bridge_VERSION_ARCH.deb]
#
# The package comes from the argument or $DEB.  The test clients (mab-pub,
# mab-sink) come from a build of this tree: $TOOLS, else
# $BUILD_DIR/tests/tools, else build/tests/tools or tests/tools here.  Needs
# root, systemd-container, mmdebstrap and openssl on the host.
#
# A Debian 12 root file system with systemd, mosquitto, RabbitMQ and every
# run-time dependency of the bridge is built once (rootfs.sh, about a
# minute) and cached; each run boots a fresh overlay on top of it, with
# --private-network, so every connection stays on the container's loopback.
# Inside, mosquitto and RabbitMQ run as their Debian services, configured
# by drop-in files written before boot (plain, TLS and password listeners),
# and the package is installed with apt without downloading anything.
#
# Checks (one result line each; the run goes on after a failed one):
#  1 start    a bridge that cannot send READY=1 forwards while the unit
#             stays activating; with it, systemctl start returns active
#             (running); STATUS= shown by systemctl status
#  2 forward  10,000 messages, then (after a reload to TLS on both sides,
#             client certificates, the key from LoadCredential=) 10,000
#             more; none lost; one main PID; /readyz and /metrics answer
#  3 reload   a changed rule moves the messages to another exchange; a file
#             with several errors: each logged as FILE:LINE, the bridge
#             keeps running and forwarding, and systemctl reload fails
#  4 watchdog SIGSTOP under load: systemd kills and restarts the bridge
#             within WatchdogSec + RestartSec + margin; nothing lost
#  5 cred     an MQTT password from LoadCredential= (drop-in) and
#             password_credential works and never reaches the journal;
#             journal PRIORITY follows the level of each line
#  6 stop     systemctl stop under load: exit 0 within the drain time;
#             started again, everything arrives
#  7 security systemd-analyze security's exposure score (printed)
#  8 badconf  a bad file: start fails, the unit ends failed and is not
#             restarted; the errors are at priority err with FILE:LINE;
#             reload of a bad file fails
#  9 package  the maintainer scripts: an install neither enables nor
#             starts; a reinstall restarts a running bridge and instance
#             and leaves a stopped one stopped; remove stops them and keeps
#             the configuration; purge removes it
#
# Environment:
#   DEB                 the package (or the first argument)
#   MAB_NSPAWN_CACHE    where the root fs is cached
#                       (default /var/cache/mqtt-amqp-bridge-tests)
#   MAB_NSPAWN_ROOTFS   a ready root fs to use instead of the cache
#   MAB_NSPAWN_TIMEOUT  the whole run's limit in seconds (default 600;
#                       a run takes about 75 s, 115 s with a new root fs)
#   MAB_KEEP_TMP=1      keep the work directory (kept anyway on failure)
#   N                   messages per forwarding step (default 10000)
set -euo pipefail
# The checks and their helpers are called through run_check.
# shellcheck disable=SC2317

here=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
root=$(cd "$here/../.." && pwd)
# shellcheck source=SCRIPTDIR/../lib/brokers.sh
. "$here/../lib/brokers.sh"
# shellcheck source=SCRIPTDIR/../lib/tls.sh
. "$here/../lib/tls.sh"
# shellcheck source=SCRIPTDIR/rootfs.sh
. "$here/rootfs.sh"
# shellcheck source=SCRIPTDIR/container.sh
. "$here/container.sh"

MAB_TEST_NAME=systemd
N=${N:-10000}
UNIT=mqtt-amqp-bridge.service
CONF_IN=/etc/mqtt-amqp-bridge/mqtt-amqp-bridge.conf
DROPIN_DIR=/etc/systemd/system/$UNIT.d
ID=bridge-nspawn
# The brokers' ports inside the container (its own network namespace: no
# clash with anything on the host).
MQTT_PORT=1883 MQTT_TLS_PORT=8883 MQTT_AUTH_PORT=1884
AMQP_PORT=5672 AMQP_TLS_PORT=5671
MQTT_USER=mab-bridge
# Where systemd puts the unit's credentials (LoadCredential=).
CRED_DIR=/run/credentials/$UNIT
# The unit's HTTP endpoint (bridge.http_listen).
HTTP_PORT=9464
# From the unit: WatchdogSec=30s, RestartSec=2s.
WATCHDOG_S=30 RESTART_S=2

DEB=${1:-${DEB:-}}
if [[ -z $DEB || ! -f $DEB ]]; then
	echo "usage: $0 PATH/TO/mqtt-amqp-bridge_*.deb (or DEB=...)" >&2
	exit 2
fi
DEB=$(cd "$(dirname "$DEB")" && pwd)/$(basename "$DEB")
if [[ -z ${TOOLS:-} ]]; then
	for TOOLS in ${BUILD_DIR:+"$BUILD_DIR/tests/tools"} "$root/build/tests/tools" "$root/tests/tools"; do
		[[ -x $TOOLS/mab-pub ]] && break
	done
fi
for f in "$TOOLS/mab-pub" "$TOOLS/mab-sink"; do
	[[ -x $f ]] || { echo "$f is missing (build first, or set TOOLS or BUILD_DIR)" >&2; exit 77; }
done
((EUID == 0)) || { echo "$0: needs root (systemd-nspawn, mount, cgroups)" >&2; exit 77; }
for c in systemd-nspawn mmdebstrap nsenter openssl mosquitto_passwd; do
	command -v "$c" >/dev/null || { echo "$0: $c is missing on this host" >&2; exit 77; }
done

# Not under /tmp/mab.*: those are the integration tests' directories.
MAB_TMP=$(mktemp -d "${TMPDIR:-/var/tmp}/mab-nspawn.XXXXXX")
MAB_TMP_OWNED=1
mab_trap
T_START=$SECONDS

# The whole run is bounded: past MAB_NSPAWN_TIMEOUT the script is ended
# through its trap, which powers the container off.
(
	trap 'kill $sp 2>/dev/null; exit 0' TERM
	sleep "${MAB_NSPAWN_TIMEOUT:-600}" &
	sp=$!
	wait $sp
	echo "$(date +%T) [systemd] the run took longer than ${MAB_NSPAWN_TIMEOUT:-600} s; stopping it" >&2
	kill -TERM $$
) &
mab_on_exit "kill $! 2>/dev/null; wait $! 2>/dev/null"

RESULTS=()
TIMES=()
FAILED=0

# result CHECK STATUS DETAIL: records one check's result line.
result() {
	local line
	line=$(printf '%-9s %s  %s' "$1" "$2" "$3")
	RESULTS+=("$line")
	echo "RESULT $line"
	[[ $2 == PASS ]] || FAILED=1
}

# measure NAME VALUE: records a measured time.
measure() {
	TIMES+=("$1=$2")
	mab_log "time: $1 = $2"
}

# why MESSAGE: explains a failed check (stderr) and returns 1, for
# `cmd || why "..."` inside the checks.
# shellcheck disable=SC2317  # reached through || lists
why() {
	echo "  why: $*" >&2
	WHY=$*
	return 1
}

# run_check NAME FUNCTION: runs a check function; it returns 0 on success,
# else WHY says why.  SUMMARY is the detail printed with the result.
run_check() {
	local name=$1 fn=$2 rc=0
	WHY="" SUMMARY=""
	mab_log "---- check $name"
	"$fn" || rc=$?
	if ((rc == 0)); then
		result "$name" PASS "$SUMMARY"
	else
		result "$name" FAIL "${WHY:-status $rc}${SUMMARY:+ ($SUMMARY)}"
	fi
}

# ---------------------------------------------------------------------------
# Host-side preparation: root fs, PKI, broker configuration.

rootfs_get || fail "no root file system"
measure rootfs_build_s "${ROOTFS_BUILD_S:-0}"
container__prepare "$MAB_TMP" || fail "cannot prepare the container's root"
measure prepare_ms "$PREP_MS ($ROOT_HOW)"

tls_make_pki "$MAB_TMP/pki" || fail "cannot make the test PKI"
MQTT_PASS="mqttpw-$(openssl rand -hex 12)"
WRONG_PASS="wrongpw-$(openssl rand -hex 12)"

# inst SRC DEST MODE [OWNER]: copies SRC into the container's tree; OWNER
# is a user name of the container's (its /etc/passwd, not the host's).
inst() {
	local uid gid
	mkdir -p "$(dirname "$ROOT$2")" &&
		install -m "$3" "$1" "$ROOT$2" || return 1
	if [[ -n ${4:-} ]]; then
		uid=$(awk -F: -v u="$4" '$1 == u { print $3 }' "$ROOT/etc/passwd")
		gid=$(awk -F: -v u="$4" '$1 == u { print $4 }' "$ROOT/etc/passwd")
		[[ -n $uid ]] || { echo "no user $4 in the container" >&2; return 1; }
		chown "$uid:$gid" "$ROOT$2"
	fi
}

# put DEST MODE [OWNER] < TEXT: writes stdin to a file in the container.
put() {
	cat >"$MAB_TMP/put.tmp" && inst "$MAB_TMP/put.tmp" "$@"
}

P=$MAB_TMP/pki
{
	for f in ca.crt server.crt; do
		inst "$P/$f" "/etc/mosquitto/mab-tls/$f" 0644 mosquitto
		inst "$P/$f" "/etc/rabbitmq/mab-tls/$f" 0644 rabbitmq
	done
	inst "$P/server.key" /etc/mosquitto/mab-tls/server.key 0600 mosquitto
	inst "$P/server.key" /etc/rabbitmq/mab-tls/server.key 0600 rabbitmq
	# The bridge runs as a dynamic user: what it reads directly must be
	# world-readable.  The client key stays root-only and reaches the
	# bridge as a credential, as the unit's comments and the man page say
	# (the drop-in below).
	inst "$P/ca.crt" /etc/mqtt-amqp-bridge/tls/ca.crt 0644
	inst "$P/client.crt" /etc/mqtt-amqp-bridge/tls/client.crt 0644
	inst "$P/client.key" /etc/mqtt-amqp-bridge/tls/client.key 0600
} || fail "cannot copy the PKI into the container"

(umask 077 && timeout 20 mosquitto_passwd -c -b "$MAB_TMP/mosquitto.passwd" "$MQTT_USER" "$MQTT_PASS") ||
	fail "mosquitto_passwd failed"
inst "$MAB_TMP/mosquitto.passwd" /etc/mosquitto/mab-test.passwd 0600 mosquitto ||
	fail "cannot copy the password file"

# mosquitto, as the Debian service (its mosquitto.conf includes conf.d):
# anonymous plain listener for mab-pub and the bridge, a TLS listener that
# requires a client certificate, and a password listener.  Persistence is
# on in the Debian file already; the queue limit is raised so that nothing
# queued for the bridge's session is dropped while it is stopped
# (watchdog, stop checks).
put /etc/mosquitto/conf.d/mab-test.conf 0644 <<EOF || fail "cannot write mosquitto's drop-in"
per_listener_settings true
max_queued_messages 100000
max_queued_bytes 0
max_inflight_messages 0
connection_messages true
log_timestamp true

listener $MQTT_PORT 127.0.0.1
allow_anonymous true

listener $MQTT_TLS_PORT 127.0.0.1
allow_anonymous true
cafile /etc/mosquitto/mab-tls/ca.crt
certfile /etc/mosquitto/mab-tls/server.crt
keyfile /etc/mosquitto/mab-tls/server.key
require_certificate true

listener $MQTT_AUTH_PORT 127.0.0.1
allow_anonymous false
password_file /etc/mosquitto/mab-test.passwd
EOF

# RabbitMQ, as the Debian service: plain and TLS (client certificate
# required) on 127.0.0.1; guest may log in from loopback, which is all
# there is.
put /etc/rabbitmq/rabbitmq.conf 0644 <<EOF || fail "cannot write rabbitmq.conf"
listeners.tcp.default = 127.0.0.1:$AMQP_PORT
listeners.ssl.default = 127.0.0.1:$AMQP_TLS_PORT
ssl_options.cacertfile = /etc/rabbitmq/mab-tls/ca.crt
ssl_options.certfile = /etc/rabbitmq/mab-tls/server.crt
ssl_options.keyfile = /etc/rabbitmq/mab-tls/server.key
ssl_options.verify = verify_peer
ssl_options.fail_if_no_peer_cert = true
log.console = false
EOF

inst "$TOOLS/mab-pub" /usr/local/bin/mab-pub 0755 &&
	inst "$TOOLS/mab-sink" /usr/local/bin/mab-sink 0755 &&
	inst "$DEB" "/srv/mab/$(basename "$DEB")" 0644 ||
	fail "cannot copy the tools and the package into the container"

# The TLS client key as a credential, for the whole run: systemd copies
# it at each start into $CRED_DIR, readable by the dynamic user only, and
# check 2's reload to TLS names the copy.
put "$DROPIN_DIR/mab-test-tls-key.conf" 0644 <<EOF || fail "cannot write the key's drop-in"
[Service]
LoadCredential=bridge-client.key:/etc/mqtt-amqp-bridge/tls/client.key
EOF

# ---------------------------------------------------------------------------
# Boot, install.

container_boot || fail "the container did not boot"
measure boot_ms "$BOOT_MS"
# Saved before power-off whatever happens, for the report.
mab_on_exit "cx journalctl --no-pager -o short-precise >'$MAB_TMP/journal.txt' 2>&1"
container_wait_listening 60 "$MQTT_PORT" "$MQTT_TLS_PORT" "$MQTT_AUTH_PORT" "$AMQP_PORT" "$AMQP_TLS_PORT" ||
	fail "the brokers do not listen: $(cx systemctl --no-pager status mosquitto rabbitmq-server 2>&1 | tail -n 30)"
mab_log "mosquitto and RabbitMQ listen on 127.0.0.1 in the container"

t0=$(mab_now_ms)
# Every dependency is in the root fs already (with the apt lists), so
# nothing is fetched; the container has no network, so a missing one fails
# at once.  (apt-get's --no-download would say so explicitly, but apt 2.6
# then refuses a local .deb: "Internal Error, Pathname to install is not
# absolute".)
if ! CX_TIMEOUT=180 cx apt-get install -y -o Acquire::Retries=0 -o Dpkg::Use-Pty=0 \
	"/srv/mab/$(basename "$DEB")" >"$MAB_TMP/apt.log" 2>&1; then
	tail -n 30 "$MAB_TMP/apt.log" >&2
	fail "apt-get install of $(basename "$DEB") failed"
fi
measure install_ms "$(($(mab_now_ms) - t0))"
cx test -f "/lib/systemd/system/$UNIT" || fail "the package has no /lib/systemd/system/$UNIT"
INSTALL_STATE="$(cx systemctl is-enabled "$UNIT" 2>&1 || true) $(cx systemctl is-active "$UNIT" 2>&1 || true)"
mab_log "installed: $(cx dpkg-query -W -f '${Package} ${Version}' mqtt-amqp-bridge); $UNIT is $INSTALL_STATE"

# ---------------------------------------------------------------------------
# Helpers for the checks.

pub() { cx mab-pub -p "$MQTT_PORT" "$@"; }
sink() {
	local sub=$1
	shift
	cx mab-sink "$sub" -p "$AMQP_PORT" -V / "$@"
}

# consume LABEL ARGS...: mab-sink consume; SINK_SUMMARY is its summary
# line; false unless it exits 0 (nothing lost or corrupt).
consume() {
	local label=$1 out rc=0
	shift
	out=$(CX_TIMEOUT=400 sink consume "$@" 2>"$MAB_TMP/sink.err") || rc=$?
	SINK_SUMMARY=$(grep '^received=' <<<"$out" || true)
	mab_log "$label: ${SINK_SUMMARY:-no summary}"
	((rc == 0)) || { sed 's/^/  /' "$MAB_TMP/sink.err" >&2; why "$label: ${SINK_SUMMARY:-no summary} (mab-sink status $rc)"; }
}

# prop NAME: one property of the unit.
prop() { cx systemctl show -P "$1" "$UNIT"; }

# cursor: a mark in the journal, for journal_since: the cursor of a fresh
# entry of the test's own (identifier mab-test-mark), which the unit's
# queries never match.  Not simply the journal's last entry with
# --after-cursor: journalctl 252, given matches (-u, -p) and a cursor
# entry that does not satisfy them, skips the first entry that does, and
# a query after the last entry of the journal then misses the very line it
# is looking for.  With --cursor (inclusive) and an entry that never
# matches, nothing is skipped and nothing old comes back.
MARK_N=0
cursor() {
	local id c deadline=$((SECONDS + 10))
	MARK_N=$((MARK_N + 1))
	id="mark $$-$MARK_N"
	cx systemd-cat -t mab-test-mark echo "$id" || return 1
	# journald stores the line asynchronously: wait for it.
	until c=$(cx journalctl -q -t mab-test-mark -n 1 -o json |
		grep -F "\"MESSAGE\":\"$id\"" | sed -n 's/.*"__CURSOR":"\([^"]*\)".*/\1/p') && [[ -n $c ]]; do
		((SECONDS >= deadline)) && { echo "no journal mark in 10 s" >&2; return 1; }
		sleep 0.1
	done
	echo "$c"
}

# journal_since CURSOR [ARGS...]: the unit's journal after CURSOR.  An
# empty cursor (cursor failed) is an error, not the whole journal, whose
# old lines could otherwise satisfy a check.
journal_since() {
	local c=$1
	shift
	[[ -n $c ]] || { echo "journal_since: no cursor" >&2; return 1; }
	cx journalctl --no-pager -q -u "$UNIT" --cursor="$c" "$@"
}

# journal_wait CURSOR ERE SECONDS: waits for a line of the unit's journal
# after CURSOR matching ERE.
journal_wait() {
	local deadline=$((SECONDS + $3))
	until journal_since "$1" -o cat | grep -Eq -- "$2"; do
		((SECONDS >= deadline)) && return 1
		sleep 0.3
	done
}

# write_conf [MQTT LINES] [AMQP LINES] [TAIL]: the bridge's configuration at
# its installed place, written under another name and renamed, so that a
# reload never reads half a file.  Mode 0644: the dynamic user reads it.
write_conf() {
	put "$CONF_IN.new" 0644 <<-EOF && cx mv -f "$CONF_IN.new" "$CONF_IN"
		# Written by tests/systemd/run.sh.
		mqtt = {
		    host = "127.0.0.1";
		    port = $MQTT_PORT;
		    client_id = "$ID";
		    keepalive = 60;
		    protocol = "3.1.1";
		    inflight_max = 1000;
		    subscribe = [ "fleet/#" ];
		${1:-}
		};
		amqp = {
		    host = "127.0.0.1";
		    port = $AMQP_PORT;
		    vhost = "/";
		    username = "guest";
		    password = "guest";
		    heartbeat = 10;
		    exchange = "telemetry";
		    exchange_type = "topic";
		    declare_exchange = true;
		${2:-}
		};
		bridge = {
		    log_level = "info";
		    reconnect_min_ms = 200;
		    reconnect_max_ms = 2000;
		    drain_timeout = 10;
		    http_listen = "127.0.0.1:$HTTP_PORT";
		};
		${3:-}
	EOF
}

TLS_MQTT="    port = $MQTT_TLS_PORT;
    tls = true;
    tls_ca_file = \"/etc/mqtt-amqp-bridge/tls/ca.crt\";
    tls_cert_file = \"/etc/mqtt-amqp-bridge/tls/client.crt\";
    tls_key_file = \"$CRED_DIR/bridge-client.key\";"
TLS_AMQP="    port = $AMQP_TLS_PORT;
    tls = true;
    tls_ca_file = \"/etc/mqtt-amqp-bridge/tls/ca.crt\";
    tls_cert_file = \"/etc/mqtt-amqp-bridge/tls/client.crt\";
    tls_key_file = \"$CRED_DIR/bridge-client.key\";"
# A setting given twice is an error in libconfig, so these replace the
# port lines of write_conf's file (tls_conf).

# tls_conf [TAIL]: the configuration with TLS on both sides.
tls_conf() {
	write_conf "" "" "${1:-}" &&
		cx sed -i -e "s|^    port = $MQTT_PORT;\$|${TLS_MQTT//$'\n'/\\n}|" \
			-e "s|^    port = $AMQP_PORT;\$|${TLS_AMQP//$'\n'/\\n}|" "$CONF_IN"
}

# reload_wait CURSOR: waits for the bridge to log the end of a reload;
# true if it says "reloaded", false for "reload failed" or nothing in 30 s.
reload_wait() {
	journal_wait "$1" 'bridge: (reloaded|reload failed)' 30 || { why "no reload result logged in 30 s"; return 1; }
	journal_since "$1" -o cat | grep -q 'bridge: reloaded'
}

# prio_of ERE: the PRIORITY values (comma-separated) of the bridge's journal
# entries (saved by check_cred) whose MESSAGE matches ERE.
prio_of() {
	grep -E "\"MESSAGE\":\"[^\"]*$1" "$MAB_TMP/bridge-journal.json" | grep -o '"PRIORITY":"[0-9]"' |
		cut -d'"' -f4 | sort -u | paste -sd,
}

# errors_logged CURSOR TEXT...: the unit's journal after CURSOR holds every
# TEXT (for wait_until).
errors_logged() {
	local c=$1 all t
	shift
	all=$(journal_since "$c" -o cat)
	for t in "$@"; do
		grep -qF -- "$t" <<<"$all" || return 1
	done
}

# main_pid: the unit's MainPID (as the container sees it).
main_pid() { prop MainPID; }

# wait_state SECONDS STATE: waits for the unit's ActiveState.
wait_state() {
	local deadline=$((SECONDS + $1)) s
	until s=$(prop ActiveState) && [[ $s == "$2" ]]; do
		((SECONDS >= deadline)) && return 1
		sleep 0.2
	done
}

# wait_forwarding CURSOR SECONDS: the bridge logged "bridge: forwarding"
# after CURSOR.
wait_forwarding() {
	journal_wait "$1" 'bridge: forwarding' "$2"
}

# pub_bg OUT ARGS...: mab-pub in the background; PUB_PID (host side).
pub_bg() {
	local out=$1
	shift
	pub "$@" >"$out" 2>&1 &
	PUB_PID=$!
	mab_on_exit "mab_kill_pid $PUB_PID 5"
}

# ---------------------------------------------------------------------------
# The checks.

SEQ=0

check_start() {
	local c st sub ty pid status t0
	sink setup -q sink -x telemetry --declare-exchange -k 'fleet.#' --purge >/dev/null ||
		{ why "cannot set up the sink queue"; return 1; }
	write_conf || { why "cannot write the configuration"; return 1; }
	# Without READY=1 the unit must not become active.  A drop-in hides
	# NOTIFY_SOCKET from the bridge, which then starts and forwards but
	# never notifies: systemd must keep the unit activating (until
	# TimeoutStartSec=, 90 s, far beyond this check).  Journal order is no
	# proof of this: the bridge's lines and systemd's come to journald on
	# different sockets.
	put "$DROPIN_DIR/mab-test-no-notify.conf" 0644 <<-EOF || { why "cannot write the drop-in"; return 1; }
		[Service]
		UnsetEnvironment=NOTIFY_SOCKET
	EOF
	cx systemctl daemon-reload || { why "daemon-reload failed"; return 1; }
	c=$(cursor) || { why "no journal cursor"; return 1; }
	cx systemctl start --no-block "$UNIT" || { why "systemctl start --no-block failed"; return 1; }
	wait_forwarding "$c" 30 || { why "the bridge without NOTIFY_SOCKET did not log 'bridge: forwarding' in 30 s"; return 1; }
	st=$(prop ActiveState) sub=$(prop SubState)
	SUMMARY="without READY=1, forwarding: $st ($sub)"
	[[ $st == activating && $sub == start ]] ||
		{ why "the unit is $st ($sub) while the bridge, which sent no READY=1, forwards"; return 1; }
	CX_TIMEOUT=100 cx systemctl stop "$UNIT" && cx rm -f "$DROPIN_DIR/mab-test-no-notify.conf" &&
		cx systemctl daemon-reload || { why "cannot stop the bridge and remove the drop-in"; return 1; }

	c=$(cursor) || { why "no journal cursor"; return 1; }
	t0=$(mab_now_ms)
	CX_TIMEOUT=100 cx systemctl start "$UNIT" || { why "systemctl start failed: $(journal_since "$c" -o cat | tail -n 10 | tr '\n' '|')"; return 1; }
	measure start_ms "$(($(mab_now_ms) - t0))"
	ty=$(prop Type) st=$(prop ActiveState) sub=$(prop SubState) pid=$(main_pid)
	SUMMARY+="; with it: Type=$ty ActiveState=$st SubState=$sub MainPID=$pid"
	[[ $ty == notify ]] || { why "Type=$ty, not notify"; return 1; }
	[[ $st == active && $sub == running && $pid != 0 ]] || { why "not active (running) after systemctl start returned"; return 1; }
	wait_forwarding "$c" 30 || { why "the bridge did not log 'bridge: forwarding' in 30 s"; return 1; }
	status=$(cx systemctl status --no-pager "$UNIT" 2>&1 || true)
	printf '%s\n' "$status" | head -n 12 | sed 's/^/  status: /' >&2
	grep -qE '^ +Status: ".+"' <<<"$status" || { why "systemctl status shows no Status: line"; return 1; }
	SUMMARY+="; $(grep -E '^ +Status: ' <<<"$status" | sed 's/^ *//')"
	MAIN_PID=$pid
}

check_forward() {
	local c pid conns
	pub -n "$N" -T 100 -z 16 -Z 4096 -i pub-nspawn >"$MAB_TMP/pub.out" 2>&1 ||
		{ why "mab-pub failed: $(tail -n 3 "$MAB_TMP/pub.out")"; return 1; }
	consume plain -q sink -n "$N" -T 100 -i 30 --quiet || return 1
	local plain=$SINK_SUMMARY
	SEQ=$N
	# TLS on both sides through a reload: the main PID must not change.
	c=$(cursor)
	tls_conf || { why "cannot write the TLS configuration"; return 1; }
	cx systemctl reload "$UNIT" || { why "systemctl reload (to TLS) failed"; return 1; }
	reload_wait "$c" || { why "the reload to TLS failed: $(journal_since "$c" -o cat | tail -n 10 | tr '\n' '|')"; return 1; }
	wait_forwarding "$c" 60 || { why "not forwarding over TLS in 60 s: $(journal_since "$c" -o cat | tail -n 10 | tr '\n' '|')"; return 1; }
	conns=$(cx ss -Htnp state established "( dport = :$MQTT_TLS_PORT or dport = :$AMQP_TLS_PORT )" | grep -c mqtt-amqp || true)
	((conns == 2)) || { why "the bridge has $conns connection(s) to the TLS ports, expected 2"; return 1; }
	pub -s "$SEQ" -n "$N" -T 100 -z 16 -Z 4096 -i pub-nspawn >"$MAB_TMP/pub.out" 2>&1 ||
		{ why "mab-pub failed: $(tail -n 3 "$MAB_TMP/pub.out")"; return 1; }
	consume tls -q sink -s "$SEQ" -n "$N" -T 100 -i 30 --quiet || return 1
	SEQ=$((SEQ + N))
	# The HTTP endpoint (libmicrohttpd's epoll, accept4, ...) under the
	# unit's SystemCallFilter=: ready, and the forwarded count is there.
	local ready fwd
	ready=$(cx curl -s -o /dev/null -w '%{http_code}' "http://127.0.0.1:$HTTP_PORT/readyz" || true)
	fwd=$(cx curl -sf "http://127.0.0.1:$HTTP_PORT/metrics" |
		awk '/^mqtt_amqp_bridge_messages_forwarded_total[{ ]/ { n += $NF } END { printf "%d", n }' || true)
	pid=$(main_pid)
	SUMMARY="plain: $plain; TLS (key from LoadCredential=): $SINK_SUMMARY; MainPID $MAIN_PID -> $pid; /readyz $ready, forwarded_total $fwd"
	[[ $ready == 200 ]] || { why "/readyz answered '$ready', not 200"; return 1; }
	((fwd >= 2 * N)) || { why "/metrics: forwarded_total $fwd, expected at least $((2 * N))"; return 1; }
	[[ $pid == "$MAIN_PID" ]] || { why "the main PID changed"; return 1; }
	[[ $(prop NRestarts) == 0 ]] || { why "NRestarts=$(prop NRestarts)"; return 1; }
}

RULE_B='rules = ( { match = "fleet/#"; exchange = "tx.b"; key_prefix = "moved."; } );
topology = { exchanges = ( { name = "tx.b"; type = "topic"; } ); };'
# Several errors the parser gets past (a syntax error would stop it at the
# first): a bad filter, a drop rule with an exchange, a bad bridge.unmatched.
RULES_BAD='rules = (
    { match = "fleet/#"; exchange = "tx.b"; key_prefix = "moved."; },
    { match = "fleet/#/bad"; },
    { match = "fleet/x"; drop = true; exchange = "tx.b"; }
);
topology = { exchanges = ( { name = "tx.b"; type = "topic"; } ); };'

check_reload() {
	local c pid rc=0 errs lines want l M=2000 ok=1 msgs=()
	sink setup -q qb -x tx.b --declare-exchange -k 'moved.#' --purge >/dev/null ||
		{ why "cannot set up queue qb"; return 1; }
	c=$(cursor)
	tls_conf "$RULE_B" || { why "cannot write the configuration"; return 1; }
	cx systemctl reload "$UNIT" || { why "systemctl reload failed"; return 1; }
	reload_wait "$c" || { why "the reload was refused: $(journal_since "$c" -o cat | tail -n 10 | tr '\n' '|')"; return 1; }
	pub -s "$SEQ" -n "$M" -T 10 -i pub-nspawn >"$MAB_TMP/pub.out" 2>&1 || { why "mab-pub failed"; return 1; }
	consume "qb (new rule)" -q qb -s "$SEQ" -n "$M" -T 10 -i 20 --quiet --exchange tx.b --key 'moved.fleet.dev%d.temp' || return 1
	msgs+=("rule change: $SINK_SUMMARY on tx.b, keys moved.*")
	SEQ=$((SEQ + M))
	local old
	old=$(sink count -q sink 2>/dev/null || echo '?')
	[[ $old == 0 ]] || { why "the old queue got $old message(s) after the rule change"; return 1; }

	# A file with several errors: all logged, the bridge keeps running on
	# the previous configuration, and `systemctl reload` reports failure.
	pid=$(main_pid)
	c=$(cursor)
	tls_conf "$RULES_BAD" && cx sed -i 's/^    drain_timeout = 10;$/&\n    unmatched = "sideways";/' "$CONF_IN" ||
		{ why "cannot write the bad configuration"; return 1; }
	cx systemctl reload "$UNIT" >"$MAB_TMP/reload.out" 2>&1 || rc=$?
	# The errors come from the bridge refusing the reload ("bridge: reload
	# failed") or, with an ExecReload= that checks the file first, from
	# that check, the bridge not being signalled at all; either will do.
	want=()
	for l in "fleet/#/bad" "drop = true" "sideways"; do
		want+=("$CONF_IN:$(cx grep -nF -- "$l" "$CONF_IN" | head -n 1 | cut -d: -f1):")
	done
	wait_until 30 errors_logged "$c" "${want[@]}" || true
	errs=$(journal_since "$c" -o cat | grep -F "$CONF_IN:" || true)
	printf '%s\n' "$errs" | sed 's/^/  error: /' >&2
	for l in "${want[@]}"; do
		grep -qF "$l" <<<"$errs" || { why "no error logged for ${l%:}"; ok=0; }
	done
	if journal_since "$c" -o cat | grep -q 'bridge: reload failed'; then
		msgs+=("bad file: $(grep -c . <<<"$errs") FILE:LINE error line(s), the bridge refused the reload")
	else
		msgs+=("bad file: $(grep -c . <<<"$errs") FILE:LINE error line(s) from ExecReload='s check, the bridge not signalled")
	fi
	[[ $(main_pid) == "$pid" && $(prop ActiveState) == active ]] ||
		{ why "the bridge did not keep running (MainPID $pid -> $(main_pid), $(prop ActiveState))"; ok=0; }
	pub -s "$SEQ" -n "$M" -T 10 -i pub-nspawn >"$MAB_TMP/pub.out" 2>&1 || { why "mab-pub failed"; return 1; }
	consume "qb (last good rules)" -q qb -s "$SEQ" -n "$M" -T 10 -i 20 --quiet --exchange tx.b \
		--key 'moved.fleet.dev%d.temp' || ok=0
	SEQ=$((SEQ + M))
	msgs+=("still forwarding: $SINK_SUMMARY")
	if ((rc == 0)); then
		why "systemctl reload of the broken file exited 0 (ExecReload= does not check the file)"
		ok=0
	else
		msgs+=("systemctl reload exited $rc")
	fi
	SUMMARY=$(printf '%s; ' "${msgs[@]}")
	# Back to a good file (the routing of check 2) for the next checks.
	c=$(cursor)
	tls_conf && cx systemctl reload "$UNIT" && reload_wait "$c" || { why "cannot go back to the good configuration"; ok=0; }
	((ok))
}

check_watchdog() {
	local c pid newpid t0 ms M=15000 rate=500 rc=0 deadline
	pid=$(main_pid)
	c=$(cursor)
	pub_bg "$MAB_TMP/pub-wd.out" -s "$SEQ" -n "$M" -T 10 -r "$rate" -i pub-nspawn-wd -w 200
	sleep 3
	t0=$(mab_now_ms)
	cx kill -STOP "$pid" || { why "cannot SIGSTOP $pid"; return 1; }
	mab_log "SIGSTOP to the bridge (pid $pid in the container); waiting for the watchdog"
	deadline=$((SECONDS + 120))
	while newpid=$(main_pid) && [[ $newpid == "$pid" || $newpid == 0 ]]; do
		((SECONDS >= deadline)) && break
		sleep 0.2
	done
	ms=$(($(mab_now_ms) - t0))
	if [[ $newpid == "$pid" || $newpid == 0 ]]; then
		cx kill -CONT "$pid" 2>/dev/null || true
		why "no new main PID within 120 s of SIGSTOP (MainPID $newpid, $(prop ActiveState)/$(prop SubState))"
		return 1
	fi
	measure watchdog_restart_ms "$ms"
	wait_forwarding "$c" 60 || { why "not forwarding within 60 s of the restart"; return 1; }
	wait "$PUB_PID" || rc=$?
	((rc == 0)) || { why "mab-pub failed: $(tail -n 3 "$MAB_TMP/pub-wd.out")"; return 1; }
	consume watchdog -q sink -s "$SEQ" -n "$M" -T 10 -i 30 --quiet || return 1
	SEQ=$((SEQ + M))
	local wdline
	wdline=$(journal_since "$c" -o cat | grep -iE 'watchdog' | head -n 2 | paste -sd'|')
	SUMMARY="restarted after $ms ms (pid $pid -> $newpid; NRestarts=$(prop NRestarts)); $SINK_SUMMARY; journal: $wdline"
	((ms <= (WATCHDOG_S + RESTART_S + 15) * 1000)) || { why "restart took $ms ms, more than WatchdogSec + RestartSec + 15 s"; return 1; }
	[[ -n $wdline ]] || { why "systemd logged no watchdog timeout"; return 1; }
}

check_cred() {
	local c t pw ok=1 M=1000 prios
	cx mkdir -p "$DROPIN_DIR" &&
		printf '%s\n' "$WRONG_PASS" | put /etc/mqtt-amqp-bridge/mqtt-pass 0600 &&
		put "$DROPIN_DIR/mab-test-credential.conf" 0644 <<-EOF || { why "cannot write the drop-in"; return 1; }
			[Service]
			LoadCredential=mqtt-pass:/etc/mqtt-amqp-bridge/mqtt-pass
		EOF
	write_conf "    port = $MQTT_AUTH_PORT;
    username = \"$MQTT_USER\";
    password_credential = \"mqtt-pass\";" || { why "cannot write the configuration"; return 1; }
	cx sed -i "0,/^    port = $MQTT_PORT;\$/{//d}" "$CONF_IN" || { why "cannot edit the configuration"; return 1; }
	cx systemctl daemon-reload || { why "daemon-reload failed"; return 1; }
	# First the wrong password: refused with a warning (priority 4), then
	# the right one.
	c=$(cursor)
	CX_TIMEOUT=100 cx systemctl restart "$UNIT" || { why "restart with the wrong password failed: $(journal_since "$c" -o cat | tail -n 5 | tr '\n' '|')"; return 1; }
	journal_wait "$c" 'mqtt: .*(refused|not authori)' 20 || { why "a wrong password was not reported as refused"; ok=0; }
	printf '%s\n' "$MQTT_PASS" | put /etc/mqtt-amqp-bridge/mqtt-pass 0600 || { why "cannot write the credential"; return 1; }
	c=$(cursor)
	CX_TIMEOUT=100 cx systemctl restart "$UNIT" || { why "restart with the credential failed: $(journal_since "$c" -o cat | tail -n 5 | tr '\n' '|')"; return 1; }
	wait_forwarding "$c" 30 || { why "not forwarding with the credential: $(journal_since "$c" -o cat | tail -n 8 | tr '\n' '|')"; return 1; }
	cx grep -qF "as $ID " /var/log/mosquitto/mosquitto.log &&
		cx grep -F "as $ID " /var/log/mosquitto/mosquitto.log | tail -n 1 | grep -qF "u'$MQTT_USER'" ||
		{ why "mosquitto did not see $MQTT_USER log in"; ok=0; }
	pub -s "$SEQ" -n "$M" -T 10 -i pub-nspawn >"$MAB_TMP/pub.out" 2>&1 || { why "mab-pub failed"; return 1; }
	consume credential -q sink -s "$SEQ" -n "$M" -T 10 -i 20 --quiet || ok=0
	SEQ=$((SEQ + M))
	local fwd=$SINK_SUMMARY
	# A reload with the credential: ExecReload='s check cannot read it
	# (systemd 252 gives credentials to the main process only), which must
	# not fail the reload; the bridge itself reads it again.
	c=$(cursor)
	cx systemctl reload "$UNIT" || { why "systemctl reload with password_credential failed: $(journal_since "$c" -o cat | tail -n 5 | tr '\n' '|')"; ok=0; }
	reload_wait "$c" || { why "the bridge refused the reload with the credential"; ok=0; }
	fwd+="; reloaded with the credential"
	# No password anywhere in the journal (every field of every entry).
	for pw in "$MQTT_PASS" "$WRONG_PASS"; do
		if cx journalctl --no-pager -o export | grep -aqF "$pw"; then
			why "a password appears in the journal"
			ok=0
		fi
	done
	# PRIORITY by level: the bridge's own lines, as journald stored them
	# (the bridge prefixes each line with <N> for journald).  A refused
	# login is a warning or an error, "bridge: forwarding" is info.
	cx journalctl --no-pager -u "$UNIT" -o json |
		grep -F '"SYSLOG_IDENTIFIER":"mqtt-amqp-bridge"' >"$MAB_TMP/bridge-journal.json"
	prios=$(grep -o '"PRIORITY":"[0-9]"' "$MAB_TMP/bridge-journal.json" | cut -d'"' -f4 | sort | uniq -c |
		awk '{ printf "%s%s:%s", (NR > 1 ? " " : ""), $2, $1 }')
	local pw pi pt
	pw=$(prio_of 'mqtt: [^"]*refused the connection')
	pi=$(prio_of 'bridge: forwarding')
	pt=$(prio_of 'warning: [^"]*readable by every user')
	SUMMARY="$fwd; logged in as $MQTT_USER; no password in the journal; PRIORITY counts {$prios}: refused login at $pw, 'bridge: forwarding' at $pi, -t's 'warning: ...' at ${pt:-none}"
	[[ $pw =~ ^[34](,[34])*$ && $pi == 6 ]] ||
		{ why "PRIORITY does not follow the level (refused login at '$pw', forwarding at '$pi')"; ok=0; }
	# Back to the plain configuration, without the drop-in.
	cx rm -f "$DROPIN_DIR/mab-test-credential.conf" && cx systemctl daemon-reload && write_conf &&
		c=$(cursor) && CX_TIMEOUT=100 cx systemctl restart "$UNIT" && wait_forwarding "$c" 30 ||
		{ why "cannot go back to the plain configuration"; ok=0; }
	((ok))
}

check_stop() {
	local t0 ms st res code rc=0 c c0 M=20000 rate=2000
	pub_bg "$MAB_TMP/pub-stop.out" -s "$SEQ" -n "$M" -T 10 -r "$rate" -i pub-nspawn-stop -w 200
	sleep 3
	c0=$(cursor)
	t0=$(mab_now_ms)
	CX_TIMEOUT=100 cx systemctl stop "$UNIT" || { why "systemctl stop failed"; return 1; }
	ms=$(($(mab_now_ms) - t0))
	measure stop_ms "$ms"
	st=$(prop ExecMainStatus) res=$(prop Result) code=$(prop ExecMainCode)
	SUMMARY="stopped in $ms ms: ExecMainCode=$code ExecMainStatus=$st Result=$res"
	c=$(cursor)
	CX_TIMEOUT=100 cx systemctl start "$UNIT" || { why "systemctl start after stop failed"; return 1; }
	wait "$PUB_PID" || rc=$?
	((rc == 0)) || { why "mab-pub failed: $(tail -n 3 "$MAB_TMP/pub-stop.out")"; return 1; }
	consume "after stop" -q sink -s "$SEQ" -n "$M" -T 10 -i 30 --quiet || return 1
	SEQ=$((SEQ + M))
	SUMMARY+="; restarted: $SINK_SUMMARY"
	# (ExecMainCode reads 0 once systemd has cleaned up after a stop; the
	# status, the result and systemd's own line are what count.)
	[[ $st == 0 && $res == success ]] || { why "not a clean exit"; return 1; }
	journal_since "$c0" -o cat | grep -q 'Deactivated successfully' ||
		{ why "no 'Deactivated successfully' in the journal"; return 1; }
	((ms <= 20000)) || { why "stop took $ms ms, more than drain_timeout (10 s) + 10 s"; return 1; }
}

check_security() {
	local out score
	out=$(CX_TIMEOUT=60 cx systemd-analyze security --no-pager "$UNIT" 2>&1) || true
	printf '%s\n' "$out" | grep -E '^✗|^ ✗' | head -n 40 | sed 's/^/  exposed: /' >&2
	printf '%s\n' "$out" >"$MAB_TMP/security.txt"
	score=$(grep -E 'Overall exposure level' <<<"$out" | sed 's/.*: //')
	SUMMARY="overall exposure level for $UNIT: ${score:-?}"
	[[ -n $score ]] || why "systemd-analyze security printed no score"
}

check_badconf() {
	local c rc=0 st res n0 n1 errs ok=1 lines l
	CX_TIMEOUT=60 cx systemctl stop "$UNIT" || true
	cx systemctl reset-failed "$UNIT" 2>/dev/null || true
	# Several errors, one of each kind the checker reports separately.
	write_conf "" "" "$RULES_BAD" && cx sed -i 's/^    drain_timeout = 10;$/&\n    unmatched = "sideways";/' "$CONF_IN" ||
		{ why "cannot write the bad configuration"; return 1; }
	n0=$(prop NRestarts)
	c=$(cursor)
	CX_TIMEOUT=100 cx systemctl start "$UNIT" >"$MAB_TMP/start-bad.out" 2>&1 || rc=$?
	((rc != 0)) || { why "systemctl start with a bad file succeeded"; ok=0; }
	sleep 15
	st=$(prop ActiveState) res=$(prop Result) n1=$(prop NRestarts)
	SUMMARY="start exited $rc; after 15 s: ActiveState=$st Result=$res NRestarts=$n0->$n1"
	[[ $st == failed ]] || { why "the unit is $st, not failed, 15 s after a failed start"; ok=0; }
	[[ $n1 == "$n0" ]] || { why "restarted $((n1 - n0)) time(s) in 15 s although the configuration is bad"; ok=0; }
	errs=$(journal_since "$c" -p err -o cat | grep -F "$CONF_IN:" || true)
	printf '%s\n' "$errs" | sed 's/^/  err: /' >&2
	for l in "fleet/#/bad" "drop = true" "sideways"; do
		lines=$(cx grep -nF -- "$l" "$CONF_IN" | head -n 1 | cut -d: -f1)
		grep -qF "$CONF_IN:$lines:" <<<"$errs" && continue
		why "journalctl -p err shows no error for $CONF_IN:$lines ($l); at any priority: $(journal_since "$c" -o json |
			grep -F "$CONF_IN:$lines:" | grep -o '"PRIORITY":"[0-9]"' | cut -d'"' -f4 | paste -sd, | sed 's/^$/none/')"
		ok=0
	done
	SUMMARY+="; $(grep -c . <<<"$errs") FILE:LINE line(s) at priority err or higher"
	journal_since "$c" -o json | grep -F '"SYSLOG_IDENTIFIER":"mqtt-amqp-bridge"' |
		sed -n 's/.*"PRIORITY":"\([0-9]\)".*"MESSAGE":"\([^"]*\)".*/  journal: PRIORITY=\1 \2/p; s/.*"MESSAGE":"\([^"]*\)".*"PRIORITY":"\([0-9]\)".*/  journal: PRIORITY=\2 \1/p' |
		head -n 12 >&2
	# Stop a restart loop, if any, before going on.
	CX_TIMEOUT=60 cx systemctl stop "$UNIT" || true
	cx systemctl reset-failed "$UNIT" 2>/dev/null || true

	# Reload of a bad file, the bridge running on a good one.
	write_conf || { why "cannot write the configuration"; return 1; }
	c=$(cursor)
	CX_TIMEOUT=100 cx systemctl start "$UNIT" && wait_forwarding "$c" 30 || { why "cannot start with the good file"; return 1; }
	write_conf "" "" "$RULES_BAD" || { why "cannot write the bad configuration"; return 1; }
	rc=0
	cx systemctl reload "$UNIT" >"$MAB_TMP/reload-bad.out" 2>&1 || rc=$?
	SUMMARY+="; reload of a bad file exited $rc"
	((rc != 0)) || { why "systemctl reload of a bad file exited 0"; ok=0; }
	((ok))
}

# The package's maintainer scripts with the real systemd: a reinstall (an
# upgrade as far as they know) restarts a running bridge and a running
# instance of the template, and leaves a stopped one stopped; removal stops
# them all and keeps the configuration; purge removes it; a fresh install
# neither enables nor starts the service (as on the first install).
check_package() {
	local inst=mqtt-amqp-bridge@b2.service p1 p2 q1 q2 c deb ok=1 msgs=()
	deb=/srv/mab/$(basename "$DEB")
	[[ $INSTALL_STATE == "disabled inactive" ]] ||
		{ why "after the first install the unit was '$INSTALL_STATE', not 'disabled inactive'"; ok=0; }
	# A good file again (check 8 left a bad one), and an instance beside
	# the main bridge, on another filter and another HTTP port.
	write_conf && cx cat "$CONF_IN" |
		sed -e "s|client_id = \"$ID\"|client_id = \"$ID-b2\"|" -e 's|"fleet/#"|"b2/#"|' \
			-e "s|:$HTTP_PORT\"|:$((HTTP_PORT + 1))\"|" | put /etc/mqtt-amqp-bridge/b2.conf 0644 ||
		{ why "cannot write the configurations"; return 1; }
	c=$(cursor)
	CX_TIMEOUT=100 cx systemctl restart "$UNIT" && CX_TIMEOUT=100 cx systemctl start "$inst" &&
		wait_forwarding "$c" 30 || { why "cannot start $UNIT and $inst"; return 1; }
	p1=$(main_pid) p2=$(cx systemctl show -P MainPID "$inst")
	CX_TIMEOUT=180 cx dpkg -i "$deb" >"$MAB_TMP/dpkg.out" 2>&1 || { why "dpkg -i (reinstall) failed"; return 1; }
	q1=$(main_pid) q2=$(cx systemctl show -P MainPID "$inst")
	if [[ $(prop ActiveState) == active && $q1 != 0 && $q1 != "$p1" && $q2 != 0 && $q2 != "$p2" ]]; then
		msgs+=("reinstall restarted both ($p1 -> $q1, $p2 -> $q2)")
	else
		why "reinstall: $UNIT $p1 -> $q1 ($(prop ActiveState)), $inst $p2 -> $q2"
		ok=0
	fi
	CX_TIMEOUT=60 cx systemctl stop "$inst" || true
	CX_TIMEOUT=180 cx dpkg -i "$deb" >"$MAB_TMP/dpkg.out" 2>&1 || { why "dpkg -i (reinstall) failed"; return 1; }
	if [[ $(cx systemctl is-active "$inst" || true) == inactive ]]; then
		msgs+=("a stopped instance stayed stopped")
	else
		why "reinstall started the stopped $inst"
		ok=0
	fi
	CX_TIMEOUT=100 cx systemctl start "$inst" || { why "cannot start $inst"; return 1; }
	CX_TIMEOUT=180 cx apt-get remove -y mqtt-amqp-bridge >"$MAB_TMP/apt-remove.out" 2>&1 ||
		{ why "apt-get remove failed"; return 1; }
	if [[ $(cx systemctl is-active "$UNIT" || true) == inactive && $(cx systemctl is-active "$inst" || true) == inactive ]] &&
		! cx test -e /usr/sbin/mqtt-amqp-bridge && cx test -f "$CONF_IN"; then
		msgs+=("remove stopped both and kept $CONF_IN")
	else
		why "after remove: $UNIT $(cx systemctl is-active "$UNIT"), $inst $(cx systemctl is-active "$inst"), binary $(cx test -e /usr/sbin/mqtt-amqp-bridge && echo present || echo gone), configuration $(cx test -f "$CONF_IN" && echo kept || echo gone)"
		ok=0
	fi
	CX_TIMEOUT=180 cx apt-get purge -y mqtt-amqp-bridge >"$MAB_TMP/apt-purge.out" 2>&1 ||
		{ why "apt-get purge failed"; return 1; }
	if cx test -e "$CONF_IN"; then
		why "purge left $CONF_IN"
		ok=0
	else
		msgs+=("purge removed it")
	fi
	CX_TIMEOUT=180 cx apt-get install -y "$deb" >"$MAB_TMP/apt.log" 2>&1 || { why "reinstall after purge failed"; return 1; }
	local st
	st="$(cx systemctl is-enabled "$UNIT" || true) $(cx systemctl is-active "$UNIT" || true)"
	if [[ $st == "disabled inactive" ]]; then
		msgs+=("installed again: disabled, inactive")
	else
		why "a fresh install left the unit '$st'"
		ok=0
	fi
	SUMMARY=$(printf '%s; ' "${msgs[@]}")
	((ok))
}

run_check 1-start check_start
run_check 2-forward check_forward
run_check 3-reload check_reload
run_check 4-watchdog check_watchdog
run_check 5-cred check_cred
run_check 6-stop check_stop
run_check 7-security check_security
run_check 8-badconf check_badconf
run_check 9-package check_package

measure total_s "$((SECONDS - T_START))"
echo
echo "summary ($(basename "$DEB")):"
printf '  %s\n' "${RESULTS[@]}"
echo "times: ${TIMES[*]}"
if ((FAILED)); then
	mab_log "work directory (journal.txt, security.txt, console.log): $MAB_TMP"
	exit 1
fi
exit 0
