#!/usr/bin/env bash
# t22_cluster_failover.sh: a RabbitMQ node of a three-node cluster is killed
# (SIGKILL) under the bridge while 30,000 messages flow at 3,000 msg/s; the
# bridge (amqp.hosts with the three nodes, round_robin) goes on through
# another node and nothing is lost.  Then the killed node is started again
# and rejoins the cluster by itself: every node sees the three running and
# the quorum queue has its three members online again.
#
# The messages go to a quorum queue with a member on each node.  RabbitMQ
# confirms a message to a quorum queue only once a majority of its members
# (two of three) has it on disk, and the bridge acknowledges to MQTT only
# after the confirm: a message the bridge acknowledged is on a surviving
# member whichever node dies, and one it did not is delivered again by
# mosquitto.  Duplicates are allowed (and reported), loss is not.
#
# Two rounds, each with a queue of its own (leader locator client-local:
# the leader is where the queue was declared):
#  1. the queue's leader is on a node the bridge does not use: the
#     killed node takes only a follower with it;
#  2. the worst case: the killed node is the queue's leader's too, so the
#     queue elects a new leader while the bridge already publishes through
#     another node.  RabbitMQ may nack what comes meanwhile (RabbitMQ
#     3.10's quorum queue client, in a channel whose first publish to the
#     queue finds the leader gone, asks that dead leader again for every
#     message and nacks them all, as long as the channel lives); the
#     bridge must get past that, and a failure here says so.
#
# Reported, not asserted: how long each failover took, from the bridge's
# log timestamps (the test's clock for the kill): the lost connection, the
# connection to another node, MQTT connected again, the bridge's first
# confirm through the new node, and "bridge: forwarding".  The first
# confirm is bracketed by stats lines (SIGUSR1) asked for every 20 ms: the
# "forwarded" counter counts confirms, and cannot move between the lost
# connection and the MQTT connection that follows the new AMQP one.
set -uo pipefail
# shellcheck source=SCRIPTDIR/../lib/brokers.sh
. "$(dirname "${BASH_SOURCE[0]}")/../lib/brokers.sh"
# shellcheck source=SCRIPTDIR/../lib/cluster.sh
. "$(dirname "${BASH_SOURCE[0]}")/../lib/cluster.sh"

N=30000
RATE=3000
T=100
ID=bridge-t22

# The failover figures come from the bridge's log timestamps, which it
# leaves out when it believes its stderr goes to the journal.
unset JOURNAL_STREAM

mab_init t22
cluster_start || fail "the RabbitMQ cluster did not start"
cluster_vhost "$MAB_VHOST" || fail "cannot create vhost $MAB_VHOST on the cluster"
mosq_start || fail "mosquitto did not start"

# quorum_queue NAME NODE KEY: a quorum queue declared through NODE (its
# leader), bound to the bridge's exchange with KEY, with three members.
quorum_queue() {
	cluster_sink "$2" setup -q "$1" -x telemetry --declare-exchange -k "$3" \
		-a x-queue-type=quorum -a x-queue-leader-locator=client-local ||
		fail "cannot set up quorum queue $1"
	wait_until 60 cluster_qq_complete "$2" "$1" ||
		fail "quorum queue $1 lacks members: $(cluster_qq_members "$2" "$1")"
	[[ $(cluster_qq_members "$2" "$1") == *" leader=$(cluster__get NODE "$2")" ]] ||
		fail "the leader of $1 is not on node $2, where it was declared (client-local)"
	mab_log "queue $1: $(cluster_qq_members "$2" "$1")"
}

# connected_port FROM: the port of the node the bridge connected to last,
# after the log's first FROM lines.
connected_port() {
	bridge_log_since "$1" | grep 'amqp: connected to ' | tail -n 1 |
		sed -n 's/.*amqp: connected to 127\.0\.0\.1:\([0-9]*\) .*/\1/p'
}

# failover_times: the failover as the bridge's log tells it after the kill
# (the log's first $from lines, the dead node's port $port), in one line:
# "CONNECTED MQTT FORWARDING LOW HIGH": when it was connected to another
# node, when MQTT was connected again (no confirm can come before: the
# bridge drops MQTT with everything unconfirmed when AMQP fails, and reads
# again only then), when it logged "bridge: forwarding" (after the SUBACK,
# which mosquitto sends after the resumed session's backlog: confirms come
# before), and the bracket of its first confirm through the new node.  The
# "forwarded" counter of the first stats line after the lost connection is
# F0; the first stats line with more is HIGH.  If that first line came
# before MQTT was connected again, F0 is exactly what the dead node had
# confirmed and LOW is the last line still showing F0; otherwise LOW is the
# MQTT connection.  Prints nothing until the bracket is closed.
# shellcheck disable=SC2317  # called below
failover_times() {
	bridge_log_since "$from" | awk -v dead="127.0.0.1:$port " '
		!lost { if ($0 ~ /amqp: connection to .* lost/) lost = 1; next }
		/amqp: connected to / && conn == "" && index($0, dead) == 0 { conn = $1 }
		/mqtt: connected to / && conn != "" && mq == "" { mq = $1 }
		/bridge: forwarding/ && mq != "" && fwd == "" { fwd = $1 }
		/ stats: / {
			f = $0; sub(/.* forwarded=/, "", f); sub(/ .*/, "", f); f += 0
			if (!have) { have = 1; f0 = f; exact = (mq == ""); last = $1; next }
			if (f > f0 && mq != "" && hi == "") { hi = $1; lo = mq; if (exact && last > lo) lo = last }
			if (f == f0) last = $1
		}
		hi != "" && fwd != "" { print conn, mq, fwd, lo, hi; exit }'
}

# ms_after TIMESTAMP: the bridge's (local time) log stamp, in ms after the
# kill.
ms_after() {
	echo $(($(date -d "$1" +%s%3N) - kill_ms))
}

# round NAME QUEUE TOPIC: N messages on TOPIC (a mab-pub pattern; QUEUE
# gets them); the node the bridge uses is killed once a fifth of them is
# confirmed; every message must reach QUEUE, read from a surviving node.
# The killed node is started again and must rejoin.  Leaves the results in
# RESULT.
round() {
	local name=$1 q=$2 topic=$3 f0 pub_pid k kpid nacked0 deadline times j line
	local t_conn t_mq t_fwd t_lo t_hi lost failover i t0
	bridge_stats || fail "no stats from the bridge"
	f0=$(stats_field forwarded)
	pub -n "$N" -t "$topic" -T "$T" -z 16 -Z 1024 -r "$RATE" -i "pub-t22-$name" \
		>"$MAB_TMP/pub-$name.out" 2>&1 &
	pub_pid=$!
	mab_on_exit "mab_kill_pid $pub_pid 5"
	bridge_wait_stats 120 forwarded=$((f0 + N / 5)) ||
		fail "$name: the bridge did not forward $((N / 5)) messages"

	port=$(connected_port 0)
	k=$(cluster_index "$port") ||
		fail "$name: the bridge is connected to port '$port', no node of the cluster"
	kpid=$(cluster_pid "$k") || fail "$name: node $k does not run"
	from=$(bridge_log_lines)
	bridge_stats || fail "no stats from the bridge"
	nacked0=$(stats_field nacked)
	mab_log "$name: SIGKILL node $k (pid $kpid, 127.0.0.1:$port) after" \
		"$(($(stats_field forwarded) - f0)) of $N messages confirmed"
	kill_ms=$(mab_now_ms)
	cluster_kill9 "$k" || fail "$name: cannot kill node $k"

	# A stats line every 20 ms until the bracket is closed (bounded: the
	# bridge moves on at once, and a leader, if one died, is elected among
	# the two survivors within seconds).
	deadline=$((SECONDS + 120))
	times=
	while [[ -z $times ]]; do
		mab_alive "$BRIDGE_PID" || fail "$name: the bridge exited after the kill"
		if ((SECONDS >= deadline)); then
			line=$(grep 'stats: ' "$BRIDGE_LOG" | tail -n 1)
			(($(stats_field nacked) > nacked0)) &&
				fail "$name: no confirm through another node within 120 s of the kill, but" \
					"$(($(stats_field nacked) - nacked0)) nacks: RabbitMQ refuses every message" \
					"on the bridge's channel to the new node, and the bridge keeps that" \
					"channel: $line"
			fail "$name: no confirm through another node within 120 s of the kill: $line"
		fi
		kill -USR1 "$BRIDGE_PID" 2>/dev/null
		sleep 0.02
		times=$(failover_times)
	done
	j=$(cluster_index "$(connected_port "$from")") || fail "$name: the bridge went on through no node"
	((j != k)) || fail "$name: the bridge is connected to the killed node $k again"
	lost=$(bridge_log_since "$from" | grep -m 1 'amqp: connection to .* lost')
	mab_log "$name: $lost"
	mab_log "$name: $(bridge_log_since "$from" | grep -m 1 'amqp: connected to ')"
	read -r t_conn t_mq t_fwd t_lo t_hi <<<"$times"
	failover="connection lost after $(ms_after "${lost%% *}") ms,"
	failover+=" connected to node $j after $(ms_after "$t_conn") ms, MQTT again after"
	failover+=" $(ms_after "$t_mq") ms, first confirm through node $j between $(ms_after "$t_lo")"
	failover+=" and $(ms_after "$t_hi") ms, \"bridge: forwarding\" after $(ms_after "$t_fwd") ms"
	mab_log "$name: failover after the kill (bridge log timestamps): $failover"

	wait "$pub_pid" || fail "$name: mab-pub failed: $(cat "$MAB_TMP/pub-$name.out")"
	# The consumer reads from a surviving node; the killed one is still down.
	cluster_sink_expect "$j" "$name: $q (from node $j)" -q "$q" -n "$N" -t "$topic" -T "$T" -i 60
	DUPS[$q]=$SINK_DUPLICATES

	# The killed node comes back and rejoins: every node sees the three, and
	# the queue has its three members online again.
	t0=$SECONDS
	cluster_restart "$k" || fail "$name: node $k did not restart"
	for ((i = 1; i <= CLUSTER_SIZE; i++)); do
		wait_until 60 cluster_complete "$i" ||
			fail "$name: node $i does not see the three nodes running:" \
				"$(cluster_running_nodes "$i" | paste -sd' ')"
	done
	wait_until 120 cluster_qq_complete "$k" "$q" ||
		fail "$name: quorum queue $q has not its three members online: $(cluster_qq_members "$k" "$q")"
	mab_log "$name: node $k rejoined in $((SECONDS - t0)) s; $q: $(cluster_qq_members "$k" "$q")"
	RESULT[$q]="$SINK_SUMMARY; $failover"
}

declare -A RESULT DUPS

# The bridge starts on node 1, the first address; round 1's queue has its
# leader on node 3.
quorum_queue q.follower 3 'fleet.r1.#'
cluster_bridge_conf "$MAB_TMP/bridge.conf" "$ID" "$(cluster_hosts 1 2 3)" \
	'hosts_order = "round_robin";' || fail "cannot write the bridge configuration"
bridge_start "$MAB_TMP/bridge.conf"
[[ $(connected_port 0) == "$CLUSTER_PORT_1" ]] || fail "the bridge did not start on node 1"
round follower q.follower 'fleet/r1/dev%d'

# Round 2's queue has its leader where the bridge is now.
b=$(cluster_index "$(connected_port 0)") || fail "the bridge is on no node of the cluster"
quorum_queue q.leader "$b" 'fleet.r2.#'
round leader q.leader 'fleet/r2/dev%d'

bridge_stop 30 || fail "bridge exited with status $? after SIGTERM"
mab_log "bridge: $(grep 'stats: ' "$BRIDGE_LOG" | tail -n 1)"
expect_nothing_set_aside
# Copies that came after a consumer had every message are duplicates too;
# the bridge has stopped, so none is still on its way.
for q in q.follower q.leader; do
	left=$(cluster_sink 1 count -q "$q") || fail "cannot count what is left in $q"
	mab_log "$q: ${RESULT[$q]}; duplicates in all: $((DUPS[$q] + left))"
done
pass "2 rounds of $N messages, none lost, the killed nodes rejoined; $(
	for q in q.follower q.leader; do echo "$q: ${RESULT[$q]##*; }."; done | paste -sd' ')"
