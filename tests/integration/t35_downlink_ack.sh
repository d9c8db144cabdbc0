#!/usr/bin/env bash
# t35_downlink_ack.sh: the downlink acknowledges to RabbitMQ only after the
# PUBACK, shown with an MQTT broker that cannot answer; and a downlink
# queue deleted under the bridge is declared again.
#  - mosquitto is stopped with SIGSTOP (its socket stays open, nothing is
#    answered) and 50 commands are published to a queue consumed with
#    prefetch 20: RabbitMQ shows exactly 20 delivered and unacknowledged,
#    and still 20 two seconds later: none is acknowledged without its
#    PUBACK.
#  - SIGTERM then: the bridge cancels its consumer and waits; mosquitto
#    resumes 2 s later, the PUBACKs come, and the bridge acknowledges them,
#    gives nothing back and exits 0, long before bridge.drain_timeout.
#  - started again, it delivers the other 30; a persistent subscriber has
#    all 50.
#  - the queue, which the topology declares, is deleted: RabbitMQ cancels
#    the consumer (the bridge announces consumer_cancel_notify), the
#    bridge reconnects to declare it again, and the next 100 commands
#    arrive.
set -uo pipefail
# shellcheck source=../lib/brokers.sh
. "$(dirname "${BASH_SOURCE[0]}")/../lib/brokers.sh"

ID=bridge-t35
BR_DRAIN=60

mab_init t35
# shellcheck source=../lib/downlink.sh
. "$(dirname "${BASH_SOURCE[0]}")/../lib/downlink.sh"
mosq_start || fail "mosquitto did not start"
BR_PROTOCOL=5 BR_TAIL="$(dl_topology)
downlink = ( { queue = \"commands\"; topic = \"devices/{1}/commands\"; prefetch = 20; } );" \
	bridge_conf "$MAB_TMP/bridge.conf" "$ID"
bridge_start "$MAB_TMP/bridge.conf"
wait_until 30 grep -q "downlink: consuming 'commands'" "$BRIDGE_LOG" ||
	fail "the bridge did not start consuming"
recv --persistent -i sub-t35 -t 'devices/+/commands' -n 150 --topic 'devices/dev%d/commands' \
	-T 10 -I 120 -w 240 --ready-file "$MAB_TMP/ready" >"$MAB_TMP/recv.out" 2>"$MAB_TMP/recv.err" &
RECV=$!
recv_wait_ready "$MAB_TMP/ready"

# --- no ack without the PUBACK ------------------------------------------------
kill -STOP "$MOSQ_PID"
mab_on_exit "kill -CONT $MOSQ_PID 2>/dev/null"
cmd -x commands -k 'dev%d' -T 10 -n 50 >/dev/null || fail "mab-cmd failed"
unacked_is() { [[ $(queue_state commands) == "1 $1" ]]; }
wait_until 30 unacked_is 20 || fail "with MQTT frozen: consumers and unacknowledged: $(queue_state commands), expected '1 20'"
sleep 2
unacked_is 20 || fail "with MQTT frozen, 2 s later: $(queue_state commands), expected '1 20'"
[[ $(queue_ready commands) == 30 ]] || fail "queue commands holds $(queue_ready commands) ready, expected 30"
mab_log "mosquitto frozen: 20 delivered and unacknowledged, 30 waiting"

# --- SIGTERM waits for the PUBACKs ------------------------------------------
from=$(wc -l <"$BRIDGE_LOG")
kill -TERM "$BRIDGE_PID"
sleep 2
mab_alive "$BRIDGE_PID" || fail "the bridge exited while its PUBACKs could not come"
kill -CONT "$MOSQ_PID"
# Waited for, not signalled again: a second SIGTERM stops at once.
mab_wait_gone "$BRIDGE_PID" 50 || fail "the bridge did not exit within 50 s of mosquitto resuming"
wait "$BRIDGE_PID"
rc=$?
((rc == 0)) || fail "the bridge exited with status $rc after SIGTERM"
tail -n +"$((from + 1))" "$BRIDGE_LOG" >"$MAB_TMP/stop.log"
grep -q "downlink: stopping: no new deliveries; waiting up to 60 s for the PUBACKs of 20 " \
	"$MAB_TMP/stop.log" || fail "the stop did not wait for 20 PUBACKs: $(cat "$MAB_TMP/stop.log")"
if grep -qE "go back|drain timeout" "$MAB_TMP/stop.log"; then
	fail "the stop gave messages back: $(grep -E 'go back|drain timeout' "$MAB_TMP/stop.log")"
fi
[[ $(queue_ready commands) == 30 ]] ||
	fail "after the stop queue commands holds $(queue_ready commands), expected the 30 never delivered"
mab_log "SIGTERM: waited for the 20 PUBACKs, acknowledged them, exited 0"

bridge_start "$MAB_TMP/bridge.conf"
wait_until 60 test "$(queue_ready commands)" = 0 || fail "queue commands still holds messages"

# --- the queue deleted ----------------------------------------------------------
consumings() { grep -c "downlink: consuming 'commands'" "$BRIDGE_LOG"; }
consumed_again() { (($(consumings) > before)); }
before=$(consumings)
rmqctl -q delete_queue -p "$MAB_VHOST" commands >/dev/null || fail "cannot delete queue commands"
wait_until 60 grep -q "RabbitMQ cancelled the consumer of queue 'commands'" "$BRIDGE_LOG" ||
	fail "the bridge did not notice the deleted queue"
wait_until 120 consumed_again || fail "the downlink did not consume again after the queue was deleted"
grep -q "reconnecting to RabbitMQ to declare it again" "$BRIDGE_LOG" ||
	fail "the bridge did not reconnect to declare the queue again"
cmd -x commands -k 'dev%d' -T 10 -s 50 -n 100 >/dev/null || fail "mab-cmd failed after the delete"
wait "$RECV" || fail "subscriber: $(tail -n 3 "$MAB_TMP/recv.err" "$MAB_TMP/recv.out")"
SUMMARY=$(tail -n 1 "$MAB_TMP/recv.out")
mab_log "subscriber: $SUMMARY"
bridge_stop 30 || fail "the bridge exited with status $? after SIGTERM"
pass "$SUMMARY"
