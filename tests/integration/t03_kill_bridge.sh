#!/usr/bin/env bash
# t03_kill_bridge.sh: the bridge is killed (SIGKILL) three times while
# 20,000 messages flow, and restarted each time: nothing is lost.  Run
# twice: against mosquitto's default in-flight window toward a 3.1.1 client
# (max_inflight_messages 20) and against an unlimited one (0).
#
# Each kill repeats messages: those the broker had in flight toward the
# bridge (sent, PUBACK not yet processed) that RabbitMQ had already
# accepted.  The broker's window bounds that number only on a broker that
# keeps its window; mosquitto 2.0.11 does not while messages are queued for
# the bridge (each PUBACK it handles may put another window's worth in
# flight; fixed in 2.0.13), and an unlimited window bounds nothing.  So the
# test reports the duplicates of each run and asserts what the design
# guarantees on any broker: nothing lost.  The first kill of each run hits
# the steady flow; the others hit the bridge while it works through the
# backlog that piled up while it was down.
set -uo pipefail
# shellcheck source=SCRIPTDIR/../lib/brokers.sh
. "$(dirname "${BASH_SOURCE[0]}")/../lib/brokers.sh"

N=20000
RATE=3000
KILLS=3
export BR_INFLIGHT=500

mab_init t03

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

# kill_run WINDOW NAME: the kills against a mosquitto of its own whose
# max_inflight_messages is WINDOW, with queue NAME.
kill_run() {
	local window=$1 name=$2 pub_pid k before
	MOSQ_MAX_INFLIGHT=$window mosq_start || fail "mosquitto did not start"
	sink_setup_main "$name"
	BRIDGE_LOG=$MAB_TMP/bridge-$name.log
	bridge_conf "$MAB_TMP/bridge-$name.conf" "bridge-t03-$name"
	bridge_start "$MAB_TMP/bridge-$name.conf"

	pub -n "$N" -T 100 -z 16 -Z 1024 -r "$RATE" -i "pub-t03-$name" >"$MAB_TMP/pub-$name.out" 2>&1 &
	pub_pid=$!
	mab_on_exit "mab_kill_pid $pub_pid 5"
	sleep 1.5
	for ((k = 1; k <= KILLS; k++)); do
		mab_alive "$pub_pid" || mab_log "note: the publisher finished before kill $k"
		bridge_kill9
		mab_log "$name: kill $k: bridge killed"
		sleep 2
		if ((k < KILLS)); then
			# The broker sends the backlog right after CONNACK, before the
			# SUBACK that "bridge: forwarding" waits for: kill during it.
			before=$(resumed_count)
			NOWAIT=1 bridge_start "$MAB_TMP/bridge-$name.conf"
			wait_resumed "$before" ||
				fail "the restarted bridge did not resume its MQTT session"
			sleep 0.1
		else
			bridge_start "$MAB_TMP/bridge-$name.conf"
		fi
	done
	wait "$pub_pid" || fail "mab-pub failed: $(cat "$MAB_TMP/pub-$name.out")"
	sink_expect "$name" -q "$name" -n "$N" -T 100 -i 30
	bridge_stop 30 || fail "bridge exited with status $? after SIGTERM"
	mab_log "$name: bridge: $(grep 'stats: ' "$BRIDGE_LOG" | tail -n 1)"
	mab_log "$name: $SINK_DUPLICATES duplicates after $KILLS kills (inflight_max $BR_INFLIGHT," \
		"broker window ${window/#0/unlimited})"
	expect_nothing_set_aside
	mosq_stop
}

kill_run 20 window20
summary20=$SINK_SUMMARY
kill_run 0 unlimited
pass "window 20: $summary20; unlimited: $SINK_SUMMARY"
