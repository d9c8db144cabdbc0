#!/usr/bin/env bash
# t03_kill_bridge.sh: the bridge is killed (SIGKILL) three times while
# 20,000 messages flow, and restarted each time: nothing is lost.  Each kill
# repeats messages (their number is reported): the bridge's unacknowledged
# batch, and PUBACKs it had written that the broker had not read yet, which
# the kernel's reset of the connection discards; the design does not bound
# the second by mqtt.inflight_max, so the test does not assert it.  The first kill hits the
# steady flow; the others hit the bridge while it works through the backlog
# that piled up while it was down, with its in-flight window full.
set -uo pipefail
# shellcheck source=SCRIPTDIR/../lib/brokers.sh
. "$(dirname "${BASH_SOURCE[0]}")/../lib/brokers.sh"

N=20000
RATE=3000
KILLS=3
ID=bridge-t03
export BR_INFLIGHT=500

mab_init t03
mosq_start || fail "mosquitto did not start"
sink_setup_main
bridge_conf "$MAB_TMP/bridge.conf" "$ID"
bridge_start "$MAB_TMP/bridge.conf"

pub -n "$N" -T 100 -z 16 -Z 1024 -r "$RATE" -i pub-t03 >"$MAB_TMP/pub.out" 2>&1 &
pub_pid=$!
mab_on_exit "mab_kill_pid $pub_pid 5"
# resumed_count: how many times a bridge resumed its MQTT session so far.
resumed_count() {
	grep -c 'session resumed' "$BRIDGE_LOG"
}
# wait_resumed COUNT: waits (polling fast, at most 30 s) until the log holds
# more than COUNT "session resumed" lines.
wait_resumed() {
	local deadline=$((SECONDS + 30))
	while (($(resumed_count) <= $1)); do
		((SECONDS < deadline)) || return 1
		sleep 0.01
	done
}

sleep 1.5
for ((k = 1; k <= KILLS; k++)); do
	mab_alive "$pub_pid" || mab_log "note: the publisher finished before kill $k"
	bridge_kill9
	mab_log "kill $k: bridge killed"
	sleep 2
	if ((k < KILLS)); then
		# The broker sends the backlog right after CONNACK, before the
		# SUBACK that "bridge: forwarding" waits for: kill during it.
		before=$(resumed_count)
		NOWAIT=1 bridge_start "$MAB_TMP/bridge.conf"
		wait_resumed "$before" ||
			fail "the restarted bridge did not resume its MQTT session"
		sleep 0.1
	else
		bridge_start "$MAB_TMP/bridge.conf"
	fi
done
wait "$pub_pid" || fail "mab-pub failed: $(cat "$MAB_TMP/pub.out")"
sink_expect "sink" -q sink -n "$N" -T 100 -i 30
bridge_stop 30 || fail "bridge exited with status $? after SIGTERM"
mab_log "bridge: $(grep 'stats: ' "$BRIDGE_LOG" | tail -n 1)"
mab_log "$SINK_DUPLICATES duplicates after $KILLS kills (inflight_max $BR_INFLIGHT)"
expect_nothing_set_aside
pass "$SINK_SUMMARY"
