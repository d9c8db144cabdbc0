#!/usr/bin/env bash
# t23_cluster_hosts.sh: the bridge's list of AMQP addresses (amqp.hosts)
# against a three-node RabbitMQ cluster and a standalone node.
#
#  1. An address whose node lacks the vhost, then one whose node refuses
#     the login, is skipped for the next one with the reason logged: the
#     run's shared standalone node comes first in the list (without the
#     test's vhost, then without the bridge's user), the cluster's nodes
#     after it.  The bridge forwards through the second address.
#  2. hosts_order = "primary" (primary_retry = 1) goes back to the first
#     address: node 1 is killed (SIGKILL) under the bridge, which goes on
#     through another node; node 1 is started again, and the bridge logs
#     that it answers again and connects to it.  Messages flow throughout
#     (a publisher runs from before the kill until after the way back) and
#     none is lost.
#
# The messages go to a quorum queue with a member on each node, its leader
# on node 3 (declared there, leader locator client-local): killing node 1
# then takes no leader away, and part 2 tests the way back, not the
# leader's election (t22 kills the leader's node).  Duplicates are allowed
# and reported, loss is not.
set -uo pipefail
# shellcheck source=SCRIPTDIR/../lib/brokers.sh
. "$(dirname "${BASH_SOURCE[0]}")/../lib/brokers.sh"
# shellcheck source=SCRIPTDIR/../lib/cluster.sh
. "$(dirname "${BASH_SOURCE[0]}")/../lib/cluster.sh"

ID=bridge-t23
USER=bridge-t23
Q=qq
M=1000
# Part 2's publisher: chunks of C messages at RATE msg/s until told to stop.
C=500
RATE=1000
CHUNKS_MAX=300
S_VHOST=0
S_LOGIN=100000
S_PRIMARY=200000

mab_init t23
CONF=$MAB_TMP/bridge.conf
cluster_start || fail "the RabbitMQ cluster did not start"
cluster_vhost "$MAB_VHOST" || fail "cannot create vhost $MAB_VHOST on the cluster"
mosq_start || fail "mosquitto did not start"
cluster_sink 3 setup -q "$Q" -x telemetry --declare-exchange -k 'fleet.#' \
	-a x-queue-type=quorum -a x-queue-leader-locator=client-local ||
	fail "cannot set up quorum queue $Q"
wait_until 60 cluster_qq_complete 3 "$Q" ||
	fail "quorum queue $Q lacks members: $(cluster_qq_members 3 "$Q")"
[[ $(cluster_qq_members 3 "$Q") == *" leader=$CLUSTER_NODE_3" ]] ||
	fail "the leader of $Q is not on node 3, where it was declared (client-local)"
mab_log "queue $Q: $(cluster_qq_members 3 "$Q")"
DUPS=0

# phase_end LABEL NODE START COUNT: every message START.. of COUNT from
# NODE; then the bridge stops, and copies that came after the consumer had
# them all are counted as duplicates too and purged.
phase_end() {
	local left
	cluster_sink_expect "$2" "$1" -q "$Q" -s "$3" -n "$4" -T 10 -i 60
	DUPS=$((DUPS + SINK_DUPLICATES))
	bridge_stop 30 || fail "bridge exited with status $? after SIGTERM"
	left=$(cluster_sink "$2" count -q "$Q") || fail "cannot count what is left in $Q"
	DUPS=$((DUPS + left))
	cluster_sink "$2" setup -q "$Q" -k 'fleet.#' --purge -a x-queue-type=quorum \
		-a x-queue-leader-locator=client-local >/dev/null || fail "cannot purge $Q"
}

# ---------------------------------------------------------------------------
# 1. The first address fails the AMQP set-up: the next one is taken.

SHARED="\"127.0.0.1:$RABBIT_PORT\", $(cluster_hosts 1 2 3)"
P1=$CLUSTER_PORT_1

# 1a. The shared node lacks the vhost (mab_init made it there).
rmqctl -q delete_vhost "$MAB_VHOST" >/dev/null || fail "cannot delete $MAB_VHOST on the shared node"
cluster_bridge_conf "$CONF" "$ID" "$SHARED" || fail "cannot write $CONF"
from=$(bridge_log_lines)
bridge_start "$CONF"
re="amqp: cannot connect to 127\.0\.0\.1:$RABBIT_PORT \(vhost '$MAB_VHOST'\): .*vhost.*not found"
bridge_log_has "$from" "$re" || fail "no line says the first address lacks vhost $MAB_VHOST"
mab_log "$(bridge_log_since "$from" | grep -E -m 1 "$re")"
bridge_log_has "$from" "amqp: trying 127\.0\.0\.1:$P1 next" ||
	fail "the bridge did not say it tries 127.0.0.1:$P1 next"
bridge_log_has "$from" "amqp: connected to 127\.0\.0\.1:$P1 .*\(address 2 of 4\)" ||
	fail "the bridge did not connect to the second address, 127.0.0.1:$P1"
pub -n "$M" -s "$S_VHOST" -T 10 -i pub-t23-vhost >/dev/null || fail "mab-pub failed"
phase_end "no vhost on the first address" 1 "$S_VHOST" "$M"

# 1b. The shared node refuses the login: the bridge's user is the
# cluster's own (the vhost is back, so only the login fails there).
new_vhost "$MAB_VHOST" || fail "cannot create $MAB_VHOST on the shared node again"
PASS=$(openssl rand -hex 12) || fail "cannot make a password"
cluster_user "$USER" "$PASS" "$MAB_VHOST" || fail "cannot add user $USER to the cluster"
{
	cluster_bridge_conf "$CONF" "$ID" "$SHARED" 'hosts_order = "round_robin";' &&
		sed -i "s/^    username = \"guest\";\$/    username = \"$USER\";/
			s/^    password = \"guest\";\$/    password = \"$PASS\";/" "$CONF" &&
		chmod 0600 "$CONF" && grep -q "username = \"$USER\"" "$CONF"
} || fail "cannot write $CONF"
from=$(bridge_log_lines)
bridge_start "$CONF"
re="amqp: cannot connect to 127\.0\.0\.1:$RABBIT_PORT \(vhost '$MAB_VHOST'\): .*ACCESS_REFUSED"
bridge_log_has "$from" "$re" || fail "no line says the first address refused the login"
mab_log "$(bridge_log_since "$from" | grep -E -m 1 "$re")"
bridge_log_has "$from" "amqp: connected to 127\.0\.0\.1:$P1 .*\(address 2 of 4\)" ||
	fail "the bridge did not connect to the second address, 127.0.0.1:$P1"
pub -n "$M" -s "$S_LOGIN" -T 10 -i pub-t23-login >/dev/null || fail "mab-pub failed"
phase_end "login refused on the first address" 1 "$S_LOGIN" "$M"
! grep -qF "$PASS" "$BRIDGE_LOG" || fail "the password appears in the bridge's log"

# ---------------------------------------------------------------------------
# 2. hosts_order = "primary": away from node 1 while it is down, back once
# it answers again.

cluster_bridge_conf "$CONF" "$ID" "$(cluster_hosts 1 2 3)" 'hosts_order = "primary";' \
	'primary_retry = 1;' || fail "cannot write $CONF"
from=$(bridge_log_lines)
bridge_start "$CONF"
bridge_log_has "$from" "amqp: connected to 127\.0\.0\.1:$P1 .*\(address 1 of 3\)" ||
	fail "the bridge did not connect to node 1 (the first address)"

# publish_loop: chunk after chunk until $MAB_TMP/stop exists (CHUNKS_MAX
# at most); $MAB_TMP/chunks says how many were published in full.
# shellcheck disable=SC2317  # run in the background
publish_loop() {
	local i p=
	trap '[[ -z $p ]] || kill "$p" 2>/dev/null; exit 143' TERM
	for ((i = 0; i < CHUNKS_MAX; i++)); do
		[[ -e $MAB_TMP/stop ]] && exit 0
		pub -n "$C" -s $((S_PRIMARY + i * C)) -T 10 -r "$RATE" -i "pub-t23-$i" \
			>>"$MAB_TMP/pub.out" 2>&1 &
		p=$!
		wait "$p" || exit 1
		p=
		echo $((i + 1)) >"$MAB_TMP/chunks"
	done
}
echo 0 >"$MAB_TMP/chunks"
publish_loop &
loop_pid=$!
mab_on_exit "mab_kill_pid $loop_pid 5"

# flowing WHAT: waits until the bridge has confirmed 2 chunks more than now.
flowing() {
	local f
	bridge_stats || fail "no stats from the bridge"
	f=$(stats_field forwarded)
	bridge_wait_stats 120 forwarded=$((f + 2 * C)) || fail "messages stopped flowing $1"
	mab_alive "$loop_pid" || fail "the publisher stopped $1: $(tail -n 5 "$MAB_TMP/pub.out")"
}
flowing "through node 1"

from=$(bridge_log_lines)
mab_log "SIGKILL node 1 (pid $(cluster_pid 1))"
cluster_kill9 1 || fail "cannot kill node 1"
bridge_wait_log "$from" "amqp: connected to 127\.0\.0\.1:($CLUSTER_PORT_2|$CLUSTER_PORT_3) " 60
mab_log "$(bridge_log_since "$from" | grep -m 1 'amqp: connected to ')"
flowing "through a standby node"

from=$(bridge_log_lines)
cluster_restart 1 || fail "node 1 did not restart"
bridge_wait_log "$from" "amqp: 127\.0\.0\.1:$P1 \(the first address\) answers again" 120
mab_log "$(bridge_log_since "$from" | grep -m 1 'answers again')"
bridge_wait_log "$from" "amqp: connected to 127\.0\.0\.1:$P1 .*\(address 1 of 3\)" 60
mab_log "$(bridge_log_since "$from" | grep -m 1 "amqp: connected to 127\.0\.0\.1:$P1 ")"
flowing "through node 1 again"

touch "$MAB_TMP/stop"
wait "$loop_pid" || fail "the publisher failed: $(tail -n 5 "$MAB_TMP/pub.out")"
n=$(($(cat "$MAB_TMP/chunks") * C))
last=$(grep 'amqp: connected to ' "$BRIDGE_LOG" | tail -n 1)
[[ $last == *"127.0.0.1:$P1 "* ]] || fail "the bridge did not stay on node 1: $last"
back=$(bridge_log_since "$from" | grep -c 'amqp: .* answers again')
phase_end "primary, across the kill and the way back ($n messages)" 1 "$S_PRIMARY" "$n"
expect_nothing_set_aside
pass "vhost and login failures skipped; back on the first address ($back time(s));\
 $n messages across the kill and the way back; duplicates in all: $DUPS"
