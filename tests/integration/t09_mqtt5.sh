#!/usr/bin/env bash
# t09_mqtt5.sh: the same guarantee over MQTT 5.  libmosquitto sends no
# Session Expiry Interval unless told, and without one an MQTT 5 session
# ends with its connection, so a killed bridge would lose what the broker
# held for it.  The bridge is killed (SIGKILL) while 20,000 messages flow
# and restarted: it must resume its session, and nothing is lost.
set -uo pipefail
# shellcheck source=../lib/brokers.sh
. "$(dirname "${BASH_SOURCE[0]}")/../lib/brokers.sh"

N=20000
ID=bridge-t09
export BR_INFLIGHT=500

mab_init t09
mosq_start || fail "mosquitto did not start"
sink_setup_main
bridge_conf "$MAB_TMP/bridge.conf" "$ID"
sed -i 's/protocol = "3.1.1";/protocol = "5"; session_expiry = 3600;/' "$MAB_TMP/bridge.conf"
grep -q 'protocol = "5"' "$MAB_TMP/bridge.conf" || fail "cannot switch the configuration to MQTT 5"
bridge_start "$MAB_TMP/bridge.conf"

pub -n "$N" -T 50 -z 16 -Z 512 -r 4000 -i pub-t09 >"$MAB_TMP/pub.out" 2>&1 &
pub_pid=$!
mab_on_exit "mab_kill_pid $pub_pid 5"
sleep 1.5
bridge_kill9
mab_log "bridge killed"
# The session must outlive the connection: messages keep arriving meanwhile.
sleep 2
bridge_start "$MAB_TMP/bridge.conf"
grep -q "as '$ID' (session resumed)" "$BRIDGE_LOG" ||
	fail "the restarted bridge did not resume its MQTT 5 session"
wait "$pub_pid" || fail "mab-pub failed: $(cat "$MAB_TMP/pub.out")"
sink_expect "sink" -q sink -n "$N" -T 50 -i 30
bridge_stop 30 || fail "bridge exited with status $? after SIGTERM"
((SINK_DUPLICATES <= BR_INFLIGHT * 2)) ||
	fail "$SINK_DUPLICATES duplicates after one kill exceed 2 x inflight_max ($BR_INFLIGHT)"
pass "$SINK_SUMMARY"
