#!/usr/bin/env bash
# t32_downlink_faults.sh: the downlink loses nothing when the bridge or the
# MQTT broker fails.  A persistent MQTT 5 subscriber takes 8,000 commands
# published at a steady rate:
#  - the bridge is killed with SIGKILL three times while they flow and
#    started again;
#  - it is stopped with SIGTERM while they flow: it exits 0, having
#    cancelled its consumer and waited for the PUBACKs of what it had
#    published (nothing it published goes back to the queue), and is
#    started again;
#  - then mosquitto is stopped for 10 s: meanwhile the queue has no
#    consumer and nothing unacknowledged (nothing is consumed while MQTT is
#    down), and the commands wait in it.
# Every command arrives.  Duplicates come only from messages published to
# MQTT whose ack to RabbitMQ had not gone: at most `prefetch` per failure,
# plus what mosquitto resends the subscriber after its own restart (at most
# the subscriber's Receive Maximum).
set -uo pipefail
# shellcheck source=../lib/brokers.sh
. "$(dirname "${BASH_SOURCE[0]}")/../lib/brokers.sh"

ID=bridge-t32
PREFETCH=50
RECV_MAX=100

mab_init t32
# shellcheck source=../lib/downlink.sh
. "$(dirname "${BASH_SOURCE[0]}")/../lib/downlink.sh"
mosq_start || fail "mosquitto did not start"
BR_PROTOCOL=5 BR_TAIL="$(dl_topology)
downlink = ( { queue = \"commands\"; topic = \"devices/{1}/commands\"; prefetch = $PREFETCH; } );" \
	bridge_conf "$MAB_TMP/bridge.conf" "$ID"
bridge_start "$MAB_TMP/bridge.conf"

recv --persistent -i sub-t32 --receive-max "$RECV_MAX" -t 'devices/+/commands' -n 8000 \
	--topic 'devices/dev%d/commands' -T 50 -I 60 -w 240 --ready-file "$MAB_TMP/ready" \
	>"$MAB_TMP/recv.out" 2>"$MAB_TMP/recv.err" &
RECV=$!
recv_wait_ready "$MAB_TMP/ready"

# --- SIGKILL x 3 ------------------------------------------------------------
cmd -x commands -k 'dev%d' -T 50 -n 4000 -S 200 -r 700 >"$MAB_TMP/cmd.1.out" 2>&1 &
CMD=$!
for k in 1 2 3; do
	sleep 1.2
	kill -KILL "$BRIDGE_PID"
	wait "$BRIDGE_PID" 2>/dev/null
	mab_log "kill $k: bridge killed"
	bridge_start "$MAB_TMP/bridge.conf"
done
sleep 1.2
from=$(wc -l <"$BRIDGE_LOG")
bridge_stop 60 || fail "the bridge exited with status $? after SIGTERM"
tail -n +"$((from + 1))" "$BRIDGE_LOG" >"$MAB_TMP/sigterm.log"
grep -q "bridge: stopped" "$MAB_TMP/sigterm.log" || fail "no clean stop after SIGTERM"
if grep -q "without a PUBACK yet go back" "$MAB_TMP/sigterm.log"; then
	fail "SIGTERM gave back messages already published: $(grep 'go back' "$MAB_TMP/sigterm.log")"
fi
mab_log "SIGTERM: stopped cleanly; $(grep -c 'downlink: stopping' "$MAB_TMP/sigterm.log") drain of PUBACKs"
bridge_start "$MAB_TMP/bridge.conf"
wait "$CMD" || fail "mab-cmd failed: $(cat "$MAB_TMP/cmd.1.out")"

# --- mosquitto stopped for 10 s ----------------------------------------------
cmd -x commands -k 'dev%d' -T 50 -s 4000 -n 4000 -S 200 -r 300 >"$MAB_TMP/cmd.2.out" 2>&1 &
CMD=$!
sleep 2
mosq_stop
mab_log "mosquitto stopped"
sleep 5
read -r consumers unacked <<<"$(queue_state commands)"
waiting=$(queue_ready commands)
mab_log "with MQTT down: consumers=$consumers unacknowledged=$unacked ready=$waiting"
[[ $consumers == 0 && $unacked == 0 ]] ||
	fail "with MQTT down the queue has $consumers consumer(s) and $unacked unacknowledged"
((waiting > 0)) || fail "with MQTT down no command waits in the queue"
sleep 5
mosq_restart || fail "mosquitto did not start again"
mab_log "mosquitto started again"
wait "$CMD" || fail "mab-cmd failed: $(cat "$MAB_TMP/cmd.2.out")"

wait "$RECV" || fail "subscriber: $(tail -n 3 "$MAB_TMP/recv.err" "$MAB_TMP/recv.out")"
SUMMARY=$(tail -n 1 "$MAB_TMP/recv.out")
mab_log "subscriber: $SUMMARY"
dups=$(recv_field "$SUMMARY" duplicates)
bound=$((5 * PREFETCH + RECV_MAX))
((dups <= bound)) || fail "$dups duplicates; at most $bound expected (5 failures x prefetch $PREFETCH + Receive Maximum $RECV_MAX)"
wait_until 30 test "$(queue_ready commands)" = 0 || fail "queue commands still holds messages"
bridge_stop 30 || fail "bridge exited with status $? after SIGTERM"
pass "$SUMMARY (duplicates at most $bound)"
