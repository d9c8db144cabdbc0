#!/usr/bin/env bash
# t01_forward.sh: 10,000 QoS 1 messages on 100 topics, 16 bytes to 4 KiB
# with a few of 64 KiB, arrive byte for byte with the expected routing keys.
set -uo pipefail
# shellcheck source=SCRIPTDIR/../lib/brokers.sh
. "$(dirname "${BASH_SOURCE[0]}")/../lib/brokers.sh"

N=10000
ID=bridge-t01

mab_init t01
mosq_start || fail "mosquitto did not start"
sink_setup_main
bridge_conf "$MAB_TMP/bridge.conf" "$ID"
bridge_start "$MAB_TMP/bridge.conf"

pub -n "$N" -T 100 -z 16 -Z 4096 -b 2500:65536 -i pub-t01 ||
	fail "mab-pub failed"
sink_expect "sink" -q sink -n "$N" -T 100 -i 30

bridge_stop 30
rc=$?
((rc == 0)) || fail "bridge exited with status $rc after SIGTERM"
forwarded=$(stats_field forwarded)
dropped=$(stats_field dropped)
nacked=$(stats_field nacked)
mab_log "bridge: $(grep 'stats: ' "$BRIDGE_LOG" | tail -n 1)"
[[ -n $forwarded ]] || fail "no stats line at exit"
((forwarded >= N)) || fail "stats: forwarded=$forwarded, expected at least $N"
((dropped == 0 && nacked == 0)) || fail "stats: dropped=$dropped nacked=$nacked, expected 0"
pass "$SINK_SUMMARY"
