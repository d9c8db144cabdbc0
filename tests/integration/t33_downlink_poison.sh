#!/usr/bin/env bash
# t33_downlink_poison.sh: commands that can never become an MQTT message
# are rejected without requeue, so the queue's dead-letter exchange gets
# each one once, and the stream goes on.  mosquitto announces a Maximum
# Packet Size of 4096 (MQTT 5 CONNACK) and its ACL refuses the topics
# restricted/#.  Between 100 good commands before and 100 after come:
#   routing key "bad+key"              a wildcard in the topic       (topic)
#   routing key 0xff                   not UTF-8                     (topic)
#   a header id holding a '/'          a template field of 2 levels  (field)
#   no header id                       a missing template field      (field)
#   a 5,000-byte payload               over the maximum packet size  (too_large)
#   a command to restricted/ID         PUBACK reason 0x87            (mqtt_refused)
# Each lands on queue "dead" (x-death reason "rejected"), the bridge logs
# the reason and counts it in downlink_rejected_total.  Then a second
# mosquitto allows QoS 0 only (MQTT 5 CONNACK Maximum QoS): no message is
# to blame, so none is dead-lettered; the downlink gives them back and
# pauses, with a growing delay, naming the setting to change.
set -uo pipefail
# shellcheck source=../lib/brokers.sh
. "$(dirname "${BASH_SOURCE[0]}")/../lib/brokers.sh"

ID=bridge-t33
BR_HTTP=1

mab_init t33
# shellcheck source=../lib/downlink.sh
. "$(dirname "${BASH_SOURCE[0]}")/../lib/downlink.sh"
printf '%s\n' "topic readwrite fleet/#" "topic readwrite devices/#" >"$MAB_TMP/acl"
mosq_start "max_packet_size 4096" "acl_file $MAB_TMP/acl" || fail "mosquitto did not start"
BR_PROTOCOL=5 BR_TAIL="$(dl_topology byheader restricted)
downlink = (
    { queue = \"commands\"; topic = \"devices/{1}/commands\"; },
    { queue = \"byheader\"; topic = \"devices/{header:id}/commands\"; },
    { queue = \"restricted\"; topic = \"restricted/{1}\"; }
);" bridge_conf "$MAB_TMP/bridge.conf" "$ID"
bridge_start "$MAB_TMP/bridge.conf"
wait_until 30 grep -q "downlink: consuming 'commands'" "$BRIDGE_LOG" ||
	fail "the bridge did not start consuming"

recv -t 'devices/+/commands' -n 200 --topic 'devices/dev%d/commands' -T 10 -I 30 \
	--ready-file "$MAB_TMP/ready" >"$MAB_TMP/recv.out" 2>"$MAB_TMP/recv.err" &
RECV=$!
recv_wait_ready "$MAB_TMP/ready"
cmd -x commands -k 'dev%d' -T 10 -n 100 >/dev/null || fail "mab-cmd failed"
cmd -x commands -k 'bad+key' -n 1 -s 900001 >/dev/null || fail "mab-cmd failed (wildcard)"
cmd -x commands -k $'\xff' -n 1 -s 900002 >/dev/null || fail "mab-cmd failed (UTF-8)"
cmd -x '' -k byheader -n 1 -s 900003 --header 'id=a/b' >/dev/null ||
	fail "mab-cmd failed (levels)"
cmd -x '' -k byheader -n 1 -s 900004 >/dev/null || fail "mab-cmd failed (no header)"
cmd -x commands -k 'dev1' -n 1 -s 900005 -S 5000 >/dev/null || fail "mab-cmd failed (size)"
cmd -x '' -k restricted -n 1 -s 900006 >/dev/null || fail "mab-cmd failed (ACL)"
cmd -x commands -k 'dev%d' -T 10 -s 100 -n 100 >/dev/null || fail "mab-cmd failed"
wait "$RECV" || fail "subscriber: $(tail -n 3 "$MAB_TMP/recv.err" "$MAB_TMP/recv.out")"
SUMMARY=$(tail -n 1 "$MAB_TMP/recv.out")
mab_log "subscriber: $SUMMARY"

wait_until 30 test "$(queue_ready dead)" = 6 ||
	fail "queue dead holds $(queue_ready dead) message(s), expected 6"
for q in commands byheader restricted; do
	[[ $(queue_ready "$q") == 0 ]] || fail "queue $q still holds messages: a poison message looped"
done
for want in "'bad+key' .*wildcard in the topic" "'\\\\xff' .*UTF-8" "holds '/'" \
	"no header 'id'" "the broker takes at most 4096" "PUBACK reason code 0x87"; do
	grep -aq "rejected a message.*$want" "$BRIDGE_LOG" ||
		fail "no rejection logged with '$want'"
done
for r in "commands topic 2" "byheader field 2" "commands too_large 1" \
	"restricted mqtt_refused 1"; do
	read -r q reason n <<<"$r"
	v=$(metric "mqtt_amqp_bridge_downlink_rejected_total{queue=\"$q\",reason=\"$reason\"}") ||
		fail "no metric for queue $q reason $reason"
	[[ $v == "$n" ]] || fail "downlink_rejected_total{queue=$q,reason=$reason} is $v, expected $n"
done
sink dump -q dead -n 6 -i 10 >"$MAB_TMP/dead.dump" || fail "cannot read queue dead"
n=$(grep -c 'rejected' "$MAB_TMP/dead.dump")
((n >= 6)) || fail "not every dead-lettered message says x-death reason rejected: $(cat "$MAB_TMP/dead.dump")"
bridge_stop 30 || fail "bridge exited with status $? after SIGTERM"

# --- a broker that takes QoS 0 only: a pause, no dead letters -----------------
mosq_start "max_qos 0" || fail "the second mosquitto did not start"
BR_PROTOCOL=5 BR_TAIL="$(dl_topology)
downlink = ( { queue = \"commands\"; topic = \"devices/{1}/commands\"; } );" \
	bridge_conf "$MAB_TMP/bridge-q0.conf" "$ID-q0"
BRIDGE_LOG=$MAB_TMP/bridge-q0.log
bridge_start "$MAB_TMP/bridge-q0.conf"
cmd -x commands -k 'dev%d' -T 10 -s 300 -n 5 >/dev/null || fail "mab-cmd failed (QoS 0 broker)"
paused_twice() { (($(grep -c "takes QoS 0 at most .* set its qos = 0; consuming again in" "$BRIDGE_LOG") >= 2)); }
wait_until 60 paused_twice ||
	fail "the downlink did not pause (twice) for a broker that takes QoS 0 only: $(grep downlink "$BRIDGE_LOG" | tail -n 3)"
read -r _ unacked <<<"$(queue_state commands)"
ready=$(queue_ready commands)
((ready + unacked == 5)) || fail "queue commands holds $ready ready and $unacked unacknowledged, expected 5 in all"
[[ $(queue_ready dead) == 0 ]] || fail "a QoS refusal dead-lettered $(queue_ready dead) message(s)"
mab_log "QoS 0 broker: paused and retried, the 5 commands kept in their queue"
bridge_stop 30 || fail "bridge exited with status $? after SIGTERM"
pass "$SUMMARY; 6 poison messages on the dead-letter exchange; a QoS 0 broker pauses the downlink"
