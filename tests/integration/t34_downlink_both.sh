#!/usr/bin/env bash
# t34_downlink_both.sh: uplink and downlink at once, 10,000 messages each
# way, with an uplink subscription ("devices/#") that matches every topic
# the downlink publishes to (devices/ID/commands):
#  - with MQTT 5 the subscriptions carry No Local: all 10,000 telemetry
#    messages reach RabbitMQ and all 10,000 commands reach the device
#    subscriber, and none of the bridge's own commands comes back: the
#    sink's queue, bound with '#', holds nothing more once the 10,000
#    are read, and the bridge read no more messages from MQTT than it
#    forwarded telemetry plus what its broker redelivered;
#  - the same file with MQTT 3.1.1 is refused by -t with FILE:LINE, and
#    accepted once the entry says allow_echo = true.
set -uo pipefail
# shellcheck source=../lib/brokers.sh
. "$(dirname "${BASH_SOURCE[0]}")/../lib/brokers.sh"

N=10000
ID=bridge-t34

mab_init t34
# shellcheck source=../lib/downlink.sh
. "$(dirname "${BASH_SOURCE[0]}")/../lib/downlink.sh"
mosq_start || fail "mosquitto did not start"
sink_setup_main sink '#'
DOWNLINK="downlink = ( { queue = \"commands\"; topic = \"devices/{1}/commands\"; prefetch = 200; } );"
BR_PROTOCOL=5 BR_SUBSCRIBE='"fleet/#", "devices/#"' BR_TAIL="$(dl_topology)
$DOWNLINK" bridge_conf "$MAB_TMP/bridge.conf" "$ID"

# --- MQTT 3.1.1: the overlap is an error unless marked intended ------------
sed 's/protocol = "5"/protocol = "3.1.1"/' "$MAB_TMP/bridge.conf" >"$MAB_TMP/bridge311.conf"
line=$(grep -n '^downlink = ' "$MAB_TMP/bridge311.conf" | cut -d: -f1)
if "$BRIDGE_BIN" -t -q -c "$MAB_TMP/bridge311.conf" 2>"$MAB_TMP/check311.err"; then
	fail "-t accepted a 3.1.1 downlink whose topics the uplink subscription matches"
fi
grep -q "^$MAB_TMP/bridge311.conf:$line: downlink entry 1: its topics (devices/+/commands) can match the uplink subscription 'devices/#'" \
	"$MAB_TMP/check311.err" || fail "-t did not name the overlap: $(cat "$MAB_TMP/check311.err")"
sed -i 's/prefetch = 200;/prefetch = 200; allow_echo = true;/' "$MAB_TMP/bridge311.conf"
"$BRIDGE_BIN" -t -q -c "$MAB_TMP/bridge311.conf" ||
	fail "-t refused the overlap marked allow_echo = true"
mab_log "MQTT 3.1.1: overlap refused by -t, accepted with allow_echo"

# --- MQTT 5: both ways at once, no echo -------------------------------------
bridge_start "$MAB_TMP/bridge.conf"
wait_until 30 grep -q "downlink: consuming 'commands'" "$BRIDGE_LOG" ||
	fail "the bridge did not start consuming"
recv -t 'devices/+/commands' -s 100000 -n "$N" --topic 'devices/dev%d/commands' -T 100 -I 30 \
	--ready-file "$MAB_TMP/ready" >"$MAB_TMP/recv.out" 2>"$MAB_TMP/recv.err" &
RECV=$!
recv_wait_ready "$MAB_TMP/ready"
cmd -x commands -k 'dev%d' -T 100 -s 100000 -n "$N" -S 256 >"$MAB_TMP/cmd.out" 2>&1 &
CMD=$!
pub -n "$N" -T 100 -z 64 -Z 1024 -i pub-t34 || fail "mab-pub failed"
wait "$CMD" || fail "mab-cmd failed: $(cat "$MAB_TMP/cmd.out")"
wait "$RECV" || fail "device subscriber: $(tail -n 3 "$MAB_TMP/recv.err" "$MAB_TMP/recv.out")"
DOWN=$(tail -n 1 "$MAB_TMP/recv.out")
mab_log "downlink: $DOWN"
sink_expect "sink" -q sink -n "$N" -T 100 -i 30
UP=$SINK_SUMMARY
wait_until 30 test "$(queue_ready commands)" = 0 || fail "queue commands still holds messages"
# An echo would be a message with a devices.* key in the sink's queue;
# a command still on its way would show within the stop's drain.
bridge_stop 30 || fail "bridge exited with status $? after SIGTERM"
left=$(queue_ready sink)
[[ $left == 0 ]] || fail "queue sink holds $left more message(s): $(sink dump -q sink -n 3 -i 5 | grep -i 'routing key' | head -n 3 | tr '\n' '|')"
received=$(stats_field received)
redelivered=$(stats_field redelivered)
published=$(stats_field down_published)
((received <= N + redelivered)) ||
	fail "the bridge read $received messages from MQTT: more than $N plus $redelivered redelivered: echo"
((published >= N)) || fail "stats: down_published=$published, expected at least $N"
pass "up: $UP; down: $DOWN"
