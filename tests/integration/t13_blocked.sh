#!/usr/bin/env bash
# t13_blocked.sh: RabbitMQ blocks publishing (a memory alarm, raised on
# purpose with a watermark of 0).  The bridge, which announces the
# connection.blocked capability, must stop taking MQTT messages and leave
# the MQTT session while blocked, then come back by itself when the alarm
# clears; nothing is lost.
set -uo pipefail
# shellcheck source=SCRIPTDIR/../lib/brokers.sh
. "$(dirname "${BASH_SOURCE[0]}")/../lib/brokers.sh"

N=500
ID=bridge-t13

mab_init t13
mosq_start || fail "mosquitto did not start"
sink_setup_main
bridge_conf "$MAB_TMP/bridge.conf" "$ID"
bridge_start "$MAB_TMP/bridge.conf"
pub -s 0 -n 10 -i pub-t13a >/dev/null || fail "mab-pub (warm-up) failed"
sink_expect "warm-up" -q sink -s 0 -n 10 -i 20

# The shared node must not stay alarmed, whatever happens here.
mab_on_exit "rmqctl set_vm_memory_high_watermark 0.4 >/dev/null 2>&1"
rmqctl set_vm_memory_high_watermark 0 >/dev/null || fail "cannot raise a memory alarm"
mab_log "memory alarm raised"
# RabbitMQ may block a connection only when it next publishes: one message.
pub -s 10 -n 1 -T 20 -i pub-t13b >/dev/null || fail "mab-pub (trigger) failed"
wait_until 30 grep -q 'amqp: broker blocked publishing' "$BRIDGE_LOG" ||
	fail "the bridge logged no connection.blocked within 30 s"
mab_log "bridge: $(grep 'amqp: broker blocked publishing' "$BRIDGE_LOG" | tail -n 1 | cut -d' ' -f2-)"

# While blocked: the rest is published; RabbitMQ confirms nothing, so the
# bridge must acknowledge nothing to MQTT and forward nothing.
acked_before=$(mosq_pubacks_from "$ID" 0)
pub -s 11 -n "$((N - 1))" -T 20 -i pub-t13c >/dev/null || fail "mab-pub (while blocked) failed"
sleep 5
acked_after=$(mosq_pubacks_from "$ID" 0)
((acked_after == acked_before)) ||
	fail "the bridge acknowledged $((acked_after - acked_before)) message(s) while RabbitMQ was blocked"
mab_log "while blocked: no PUBACK from the bridge ($acked_after in all)"
bridge_forwarding=$(bridge_forwarding_count)

rmqctl set_vm_memory_high_watermark 0.4 >/dev/null || fail "cannot clear the memory alarm"
mab_log "memory alarm cleared"
wait_until 30 grep -q 'amqp: broker unblocked publishing' "$BRIDGE_LOG" ||
	fail "the bridge logged no connection.unblocked within 30 s"
bridge_wait_forwarding "$bridge_forwarding" 30
sink_expect "after the alarm" -q sink -s 10 -n "$N" -T 20 -i 30
bridge_stop 30 || fail "bridge exited with status $? after SIGTERM"
expect_nothing_set_aside
pass "$SINK_SUMMARY"
