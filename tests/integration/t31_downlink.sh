#!/usr/bin/env bash
# t31_downlink.sh: RabbitMQ to MQTT.  Commands published to exchange
# "commands" with the device id as the routing key arrive at an MQTT 5
# subscriber on devices/ID/commands at QoS 1:
#  - five messages with every AMQP property the conversion knows come out
#    with exactly the expected MQTT 5 properties (content type,
#    correlation data, response topic, message expiry, user properties in
#    header order, x-mqtt-* left out);
#  - 10,000 messages on 100 devices arrive byte for byte, each on its
#    device's topic, and the queue is empty after;
#  - a subscriber that never acknowledges (Receive Maximum 20) gets 20 of
#    its device's messages and the broker queues the rest for it, while
#    another subscriber gets every device's messages: the bridge's ack
#    means the MQTT broker took the message, so that subscriber stalls
#    neither the other one nor the queue;
#  - an entry with qos = 0 and retain = "always" publishes at QoS 0,
#    retained; with the default retain = "header", a bool header
#    x-mqtt-retain true retains the message and false does not;
#  - a reload that changes the topic template reconnects AMQP, and the
#    next commands go to the new topic.
set -uo pipefail
# shellcheck source=../lib/brokers.sh
. "$(dirname "${BASH_SOURCE[0]}")/../lib/brokers.sh"

N=10000
ID=bridge-t31

mab_init t31
# shellcheck source=../lib/downlink.sh
. "$(dirname "${BASH_SOURCE[0]}")/../lib/downlink.sh"
mosq_start || fail "mosquitto did not start"
BR_PROTOCOL=5 BR_TAIL="$(dl_topology alerts)
downlink = ( { queue = \"commands\"; topic = \"devices/{1}/commands\"; prefetch = 200; },
             { queue = \"alerts\"; topic = \"alerts/{1}\"; qos = 0; retain = \"always\"; } );" \
	bridge_conf "$MAB_TMP/bridge.conf" "$ID"
bridge_start "$MAB_TMP/bridge.conf"
wait_until 30 grep -q "downlink: consuming 'commands'" "$BRIDGE_LOG" ||
	fail "the bridge did not start consuming"

# --- the properties --------------------------------------------------------
recv --dump -t 'devices/+/commands' -n 5 --topic 'devices/dev%d/commands' -T 5 -I 20 \
	--ready-file "$MAB_TMP/ready.1" >"$MAB_TMP/props.raw" 2>"$MAB_TMP/recv.1.err" &
RECV=$!
recv_wait_ready "$MAB_TMP/ready.1"
cmd -x commands -k 'dev%d' -T 5 -n 5 -S 32 --content-type application/json \
	--correlation 'corr-%d' --expiration 60000 --header 'id=dev%d' --header-int prio=7 \
	--header-bool urgent=true --header 'x-reply-to-topic=replies.dev%d' \
	--header x-mqtt-topic=left-out >/dev/null || fail "mab-cmd failed"
wait "$RECV" || fail "the subscriber missed messages: $(tail -n 3 "$MAB_TMP/recv.1.err" "$MAB_TMP/props.raw")"
for i in 0 1 2 3 4; do
	cat <<-EOF
		topic: devices/dev$i/commands
		qos: 1
		retain: 0
		content-type: application/json
		correlation-data: corr-$i
		response-topic: replies/dev$i
		message-expiry: 60
		user-property: id=dev$i
		user-property: prio=7
		user-property: urgent=true
		payload-size: 32
		seq: $i

	EOF
done >"$MAB_TMP/props.expected"
# The broker passes the expiry on less the whole seconds the message waited
# (in its queue and at the broker): a few on a slow machine.
grep -v '^received=' "$MAB_TMP/props.raw" | sed 's/^message-expiry: 5[0-9]$/message-expiry: 60/' \
	>"$MAB_TMP/props.dump"
diff -u "$MAB_TMP/props.expected" "$MAB_TMP/props.dump" >&2 ||
	fail "the MQTT messages differ from what was expected (diff above)"
mab_log "properties: 5 messages as expected"

# --- 10,000 messages, byte for byte ---------------------------------------
recv -t 'devices/+/commands' -s 1000 -n "$N" --topic 'devices/dev%d/commands' -T 100 -I 30 \
	--ready-file "$MAB_TMP/ready.2" >"$MAB_TMP/recv.2.out" 2>"$MAB_TMP/recv.2.err" &
RECV=$!
recv_wait_ready "$MAB_TMP/ready.2"
cmd -x commands -k 'dev%d' -T 100 -s 1000 -n "$N" -S 512 --content-type text/plain \
	>"$MAB_TMP/cmd.2.out" || fail "mab-cmd failed: $(cat "$MAB_TMP/cmd.2.out")"
wait "$RECV" || fail "subscriber: $(tail -n 3 "$MAB_TMP/recv.2.err" "$MAB_TMP/recv.2.out")"
SUMMARY=$(tail -n 1 "$MAB_TMP/recv.2.out")
mab_log "subscriber: $SUMMARY"
wait_until 30 test "$(queue_ready commands)" = 0 || fail "queue commands still holds messages"

# --- a subscriber that never acknowledges ----------------------------------
# Idle counts from its SUBACK, before the other subscriber and the
# publisher start: the margin is for a slow machine.
recv --no-ack --receive-max 20 -t devices/dev0/commands --any-payload -I 20 -w 90 \
	--ready-file "$MAB_TMP/ready.3" >"$MAB_TMP/noack.out" 2>&1 &
NOACK=$!
recv -t 'devices/+/commands' -s 20000 -n 1000 --topic 'devices/dev%d/commands' -T 10 -I 30 \
	--ready-file "$MAB_TMP/ready.4" >"$MAB_TMP/recv.4.out" 2>"$MAB_TMP/recv.4.err" &
RECV=$!
recv_wait_ready "$MAB_TMP/ready.3"
recv_wait_ready "$MAB_TMP/ready.4"
cmd -x commands -k 'dev%d' -T 10 -s 20000 -n 1000 >/dev/null || fail "mab-cmd failed"
wait "$RECV" || fail "the acknowledging subscriber: $(tail -n 3 "$MAB_TMP/recv.4.err" "$MAB_TMP/recv.4.out")"
wait_until 30 test "$(queue_ready commands)" = 0 ||
	fail "queue commands still holds messages: the silent subscriber stalled the bridge"
wait "$NOACK"
got=$(recv_field "$(tail -n 1 "$MAB_TMP/noack.out")" received)
mab_log "silent subscriber: $(tail -n 1 "$MAB_TMP/noack.out")"
[[ -n $got ]] && ((got >= 1 && got <= 20)) ||
	fail "the silent subscriber got '$got' messages; Receive Maximum 20 allows 1 to 20"

# --- QoS 0 and the retain flag ------------------------------------------------
# Entry "alerts" publishes at QoS 0 and always retained; "commands" takes
# the retain flag from a bool header x-mqtt-retain.  Retained messages are
# checked as a new subscriber gets them from the broker.
cmd -x '' -k alerts -s 40000 -n 1 -S 32 >/dev/null || fail "mab-cmd failed (alerts)"
cmd -x commands -k dev7 -s 40001 -n 1 -S 32 --header-bool x-mqtt-retain=true >/dev/null ||
	fail "mab-cmd failed (x-mqtt-retain)"
cmd -x commands -k dev8 -s 40002 -n 1 -S 32 --header-bool x-mqtt-retain=false >/dev/null ||
	fail "mab-cmd failed (x-mqtt-retain false)"
wait_until 30 test "$(queue_ready alerts)" = 0 || fail "queue alerts still holds its message"
wait_until 30 test "$(queue_ready commands)" = 0 || fail "queue commands still holds messages"
recv --dump -t 'alerts/#' -t 'devices/+/commands' -I 3 -w 30 --any-payload \
	>"$MAB_TMP/retained.raw" 2>"$MAB_TMP/retained.err" || true
grep -v '^received=' "$MAB_TMP/retained.raw" | grep -E '^(topic|retain|seq):' | paste -sd' ' |
	sed 's/ topic:/\ntopic:/g' | sort >"$MAB_TMP/retained.got"
printf '%s\n' "topic: alerts/alerts retain: 1 seq: 40000" \
	"topic: devices/dev7/commands retain: 1 seq: 40001" >"$MAB_TMP/retained.want"
diff -u "$MAB_TMP/retained.want" "$MAB_TMP/retained.got" >&2 ||
	fail "the retained messages differ from what was expected (diff above)"
grep -q '^qos: 0$' <(grep -A1 '^topic: alerts/alerts$' "$MAB_TMP/retained.raw") ||
	fail "the alerts entry did not publish at QoS 0: $(cat "$MAB_TMP/retained.raw")"
mab_log "QoS 0 and retain: as expected"

# --- a reload that changes the topic -----------------------------------------
sed -i 's|topic = "devices/{1}/commands"|topic = "devices/{1}/inbox"|' "$MAB_TMP/bridge.conf"
consumings() { grep -c "downlink: consuming 'commands'" "$BRIDGE_LOG"; }
consumed_again() { (($(consumings) > before)); }
before=$(consumings)
kill -HUP "$BRIDGE_PID"
wait_until 60 consumed_again ||
	fail "the downlink did not consume again after the reload"
recv -t 'devices/+/inbox' -s 30000 -n 100 --topic 'devices/dev%d/inbox' -T 10 -I 30 \
	--ready-file "$MAB_TMP/ready.5" >"$MAB_TMP/recv.5.out" 2>"$MAB_TMP/recv.5.err" &
RECV=$!
recv_wait_ready "$MAB_TMP/ready.5"
cmd -x commands -k 'dev%d' -T 10 -s 30000 -n 100 >/dev/null || fail "mab-cmd failed"
wait "$RECV" || fail "after the reload: $(tail -n 3 "$MAB_TMP/recv.5.err" "$MAB_TMP/recv.5.out")"
mab_log "reload: the new topic in force: $(tail -n 1 "$MAB_TMP/recv.5.out")"

bridge_stop 30 || fail "bridge exited with status $? after SIGTERM"
published=$(stats_field down_published)
rejected=$(stats_field down_rejected)
((published >= N + 1108)) || fail "stats: down_published=$published, expected at least $((N + 1108))"
((rejected == 0)) || fail "stats: down_rejected=$rejected, expected 0"
pass "$SUMMARY"
