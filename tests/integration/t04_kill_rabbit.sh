#!/usr/bin/env bash
# t04_kill_rabbit.sh: RabbitMQ is killed (SIGKILL) while messages flow and
# restarted on the same data directory.  Durable queue, persistent messages
# and publisher confirms: nothing is lost.
set -uo pipefail
# shellcheck source=SCRIPTDIR/../lib/brokers.sh
. "$(dirname "${BASH_SOURCE[0]}")/../lib/brokers.sh"

N=20000
RATE=2000
ID=bridge-t04

mab_init t04
mosq_start || fail "mosquitto did not start"
sink_setup_main
bridge_conf "$MAB_TMP/bridge.conf" "$ID"
bridge_start "$MAB_TMP/bridge.conf"

pub -n "$N" -T 100 -z 16 -Z 1024 -r "$RATE" -i pub-t04 >"$MAB_TMP/pub.out" 2>&1 &
pub_pid=$!
mab_on_exit "mab_kill_pid $pub_pid 5"
sleep 3
before=$(bridge_forwarding_count)
mab_log "SIGKILL RabbitMQ (pid $RABBIT_PID)"
rabbit_kill9 || fail "cannot kill RabbitMQ"
sleep 1
rabbit_restart || fail "RabbitMQ did not restart"
bridge_wait_forwarding "$before" 60
mab_log "bridge forwarding again"
wait "$pub_pid" || fail "mab-pub failed: $(cat "$MAB_TMP/pub.out")"
sink_expect "sink" -q sink -n "$N" -T 100 -i 30
bridge_stop 30 || fail "bridge exited with status $? after SIGTERM"
mab_log "bridge: $(grep 'stats: ' "$BRIDGE_LOG" | tail -n 1)"
expect_nothing_set_aside
pass "$SINK_SUMMARY"
