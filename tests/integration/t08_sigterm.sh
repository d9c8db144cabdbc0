#!/usr/bin/env bash
# t08_sigterm.sh: SIGTERM makes the bridge drain and exit 0 within
# drain_timeout (plus a margin), and a restarted bridge then delivers
# everything.
#  1. Under load: the drain is clean, so what RabbitMQ confirmed is also
#     acknowledged to MQTT and nothing is delivered twice.
#  2. With RabbitMQ frozen (SIGSTOP) and more unconfirmed data than the
#     socket buffers hold: the drain times out, and the bridge must still
#     exit in time.
set -uo pipefail
# shellcheck source=SCRIPTDIR/../lib/brokers.sh
. "$(dirname "${BASH_SOURCE[0]}")/../lib/brokers.sh"

N=20000
RATE=4000
ID=bridge-t08
export BR_DRAIN=10
MARGIN=5
[[ -n ${BRIDGE_WRAPPER:-} ]] && MARGIN=30
problems=()

# sigterm_within LABEL: SIGTERM to the bridge; records a problem unless it
# exits with status 0 within BR_DRAIN + MARGIN seconds.
sigterm_within() {
	local t0 rc ms limit=$((BR_DRAIN + MARGIN))
	t0=$(date +%s%N)
	bridge_stop "$limit"
	rc=$?
	ms=$((($(date +%s%N) - t0) / 1000000))
	if ((rc == 124)); then
		problems+=("$1: bridge still running $limit s after SIGTERM (killed)")
	elif ((rc != 0)); then
		problems+=("$1: bridge exited with status $rc after SIGTERM")
	fi
	mab_log "$1: bridge exited with status $rc $ms ms after SIGTERM"
}

mab_init t08
mosq_start || fail "mosquitto did not start"
sink_setup_main
bridge_conf "$MAB_TMP/bridge.conf" "$ID"

# 1. Under load.
bridge_start "$MAB_TMP/bridge.conf"
pub -n "$N" -T 100 -z 16 -Z 1024 -r "$RATE" -i pub-t08 >"$MAB_TMP/pub.out" 2>&1 &
pub_pid=$!
mab_on_exit "mab_kill_pid $pub_pid 5"
sleep 2
mab_alive "$pub_pid" || mab_log "note: the publisher finished before SIGTERM"
sigterm_within "under load"
grep -q 'stats: ' "$BRIDGE_LOG" || problems+=("under load: no stats line at exit")
mab_log "bridge: $(grep 'stats: ' "$BRIDGE_LOG" | tail -n 1)"
bridge_start "$MAB_TMP/bridge.conf"
wait "$pub_pid" || fail "mab-pub failed: $(cat "$MAB_TMP/pub.out")"
sink_expect "under load" -q sink -n "$N" -T 100 -i 30
((SINK_DUPLICATES == 0)) ||
	problems+=("under load: $SINK_DUPLICATES duplicates after a clean shutdown")
summary1=$SINK_SUMMARY

# 2. RabbitMQ frozen: 1,000 messages of 32 KiB are more than the bridge's
# socket to RabbitMQ can buffer.
kill -STOP "$RABBIT_PID" || fail "cannot stop RabbitMQ"
mab_on_exit "kill -CONT $RABBIT_PID 2>/dev/null"
mab_log "SIGSTOP RabbitMQ (pid $RABBIT_PID)"
pub -s "$N" -n 1000 -z 32768 -i pub-t08b >/dev/null || fail "mab-pub failed while RabbitMQ was stopped"
sleep 2
sigterm_within "RabbitMQ frozen"
kill -CONT "$RABBIT_PID" || fail "cannot resume RabbitMQ"
mab_log "RabbitMQ resumed"
bridge_start "$MAB_TMP/bridge.conf"
sink_expect "RabbitMQ frozen" -q sink -s "$N" -n 1000 -i 30
bridge_stop 30 || problems+=("last stop: bridge exited with status $?")

((${#problems[@]} == 0)) || fail "$(printf '%s; ' "${problems[@]}")"
pass "$summary1"
