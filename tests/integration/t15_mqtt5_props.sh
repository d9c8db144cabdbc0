#!/usr/bin/env bash
# t15_mqtt5_props.sh: MQTT 5 properties become AMQP properties and headers.
#
# mosquitto_pub (MQTT 5) publishes messages with a content type, correlation
# data, a response topic, user properties, a message expiry interval and a
# payload format indicator, plus a retained message and a QoS 0 message
# without properties.  An MQTT 5 bridge with bridge.topic_header,
# bridge.retain_header, bridge.dot_replacement = "_" and a rule with static
# headers forwards them; `mab-sink dump` prints every message's exchange,
# routing key, properties and headers, which must be exactly:
#   content type        -> content_type (left out when 256 bytes or more, or
#                          not ASCII; 255 bytes pass)
#   correlation data    -> correlation_id, or header x-correlation-id when it
#                          is no valid short string (256 bytes, not UTF-8)
#   response topic      -> header x-reply-to-topic, translated
#   user properties     -> headers (the first of a name given twice; a rule
#                          header of the same name wins)
#   expiry interval S   -> expiration "S*1000"
#   retain flag         -> header x-mqtt-retain (bool), topic -> x-mqtt-topic
#   QoS, DUP flag       -> headers x-mqtt-publish-qos (signed 8-bit) and
#                          x-mqtt-dup (bool), as RabbitMQ 3.10's plugin adds
# A 3.1.1 bridge then forwards the same message with none of the MQTT 5
# ones.  Then bridge.plugin_headers "3.12" adds only x-mqtt-publish-qos and
# "none" neither, and a message the MQTT broker delivers again (after
# RabbitMQ refused it with basic.nack) carries x-mqtt-dup true.
set -uo pipefail
# shellcheck source=../lib/brokers.sh
. "$(dirname "${BASH_SOURCE[0]}")/../lib/brokers.sh"

ID=bridge-t15
# The longest that still fit an AMQP short string, and one byte more.
CT255=$(printf 'a%.0s' {1..255})
CD255=$(printf 'c%.0s' {1..255})
LONG_CT=${CT255}a
LONG_CD=${CD255}c

# mqpub ARGS...: mosquitto_pub (MQTT 5, QoS 1 unless ARGS say otherwise)
# against this test's broker, bounded in time.
mqpub() {
	timeout 30 mosquitto_pub -h 127.0.0.1 -p "$MQTT_PORT" -V mqttv5 -q 1 "$@" ||
		fail "mosquitto_pub $* failed"
}

# check_dump NAME COUNT: dumps COUNT messages from q5 into $MAB_TMP/NAME.dump
# and compares them with $MAB_TMP/NAME.expected.
check_dump() {
	local name=$1 count=$2
	sink dump -q q5 -n "$count" -i 20 >"$MAB_TMP/$name.raw" ||
		fail "$name: fewer than $count messages in q5: $(cat "$MAB_TMP/$name.raw")"
	# The broker passes the expiry interval on less the whole seconds the
	# message waited, which may be one.
	sed 's/^expiration: "3599000"$/expiration: "3600000"/' "$MAB_TMP/$name.raw" >"$MAB_TMP/$name.dump"
	diff -u "$MAB_TMP/$name.expected" "$MAB_TMP/$name.dump" >&2 ||
		fail "$name: the messages differ from what was expected (diff above)"
	d=$(queue_ready q5) || fail "cannot read the depth of q5"
	[[ $d == 0 ]] || fail "$name: q5 still holds $d message(s)"
	mab_log "$name: $count message(s) as expected"
}

# mosq__puback_seen CLIENT FROM_LINE: the broker logged a PUBACK from CLIENT.
mosq__puback_seen() {
	(($(mosq_pubacks_from "$1" "$2") > 0))
}

mab_init t15
mosq_start || fail "mosquitto did not start"
sink setup -q q5 -x telemetry --declare-exchange -k 'p5.#' -k 'props.#' ||
	fail "cannot set up q5"

# Retained before the bridge subscribes: it arrives with the retain flag.
mqpub -i pub-t15-r -r -t props/r/retained -m kept

export BR_SUBSCRIBE='"props/#"'
BR_PROTOCOL=5 \
	BR_BRIDGE='topic_header = true; retain_header = true; dot_replacement = "_";' \
	BR_TAIL='rules = (
    { match = "props/#"; strip_prefix = "props/"; key_prefix = "p5.";
      headers = { kind = "probe"; level = 3; ok = true; }; }
);' bridge_conf "$MAB_TMP/v5.conf" "$ID"
bridge_start "$MAB_TMP/v5.conf"

mqpub -i pub-t15-1 -t props/m1 -m one \
	-D publish content-type text/plain \
	-D publish correlation-data req-42 \
	-D publish response-topic replies/client.7/x \
	-D publish user-property k1 v1 \
	-D publish user-property 'k 2' 'v 2' \
	-D publish message-expiry-interval 3600 \
	-D publish payload-format-indicator 1
mqpub -i pub-t15-2 -t props/m2 -m two \
	-D publish content-type "$LONG_CT" \
	-D publish correlation-data "$LONG_CD"
mqpub -i pub-t15-3 -t props/m3 -m three \
	-D publish content-type 'tëxt/plain' \
	-D publish correlation-data $'\xc3\x28' \
	-D publish user-property kind user \
	-D publish user-property dup first \
	-D publish user-property dup second
mqpub -i pub-t15-4 -q 0 -t props/m4 -m four
mqpub -i pub-t15-6 -t props/m5 -m five \
	-D publish content-type "$CT255" \
	-D publish correlation-data "$CD255"
bridge_wait_stats 60 forwarded=6 || fail "the bridge did not forward 6 messages"

cat >"$MAB_TMP/v5.expected" <<EOF
message 1
exchange: "telemetry"
routing_key: "p5.r.retained"
delivery_mode: 2
header "kind": str "probe"
header "level": int 3
header "ok": bool true
header "x-mqtt-dup": bool false
header "x-mqtt-publish-qos": byte 1
header "x-mqtt-retain": bool true
header "x-mqtt-topic": str "props/r/retained"
body: 4 "kept"
message 2
exchange: "telemetry"
routing_key: "p5.m1"
content_type: "text/plain"
delivery_mode: 2
correlation_id: "req-42"
expiration: "3600000"
header "k 2": str "v 2"
header "k1": str "v1"
header "kind": str "probe"
header "level": int 3
header "ok": bool true
header "x-mqtt-dup": bool false
header "x-mqtt-publish-qos": byte 1
header "x-mqtt-retain": bool false
header "x-mqtt-topic": str "props/m1"
header "x-reply-to-topic": str "replies.client_7.x"
body: 3 "one"
message 3
exchange: "telemetry"
routing_key: "p5.m2"
delivery_mode: 2
header "kind": str "probe"
header "level": int 3
header "ok": bool true
header "x-correlation-id": str "$LONG_CD"
header "x-mqtt-dup": bool false
header "x-mqtt-publish-qos": byte 1
header "x-mqtt-retain": bool false
header "x-mqtt-topic": str "props/m2"
body: 3 "two"
message 4
exchange: "telemetry"
routing_key: "p5.m3"
delivery_mode: 2
header "dup": str "first"
header "kind": str "probe"
header "level": int 3
header "ok": bool true
header "x-correlation-id": str "\\xc3("
header "x-mqtt-dup": bool false
header "x-mqtt-publish-qos": byte 1
header "x-mqtt-retain": bool false
header "x-mqtt-topic": str "props/m3"
body: 5 "three"
message 5
exchange: "telemetry"
routing_key: "p5.m4"
delivery_mode: 1
header "kind": str "probe"
header "level": int 3
header "ok": bool true
header "x-mqtt-dup": bool false
header "x-mqtt-publish-qos": byte 0
header "x-mqtt-retain": bool false
header "x-mqtt-topic": str "props/m4"
body: 4 "four"
message 6
exchange: "telemetry"
routing_key: "p5.m5"
content_type: "$CT255"
delivery_mode: 2
correlation_id: "$CD255"
header "kind": str "probe"
header "level": int 3
header "ok": bool true
header "x-mqtt-dup": bool false
header "x-mqtt-publish-qos": byte 1
header "x-mqtt-retain": bool false
header "x-mqtt-topic": str "props/m5"
body: 4 "five"
EOF
check_dump v5 6
bridge_stop 30 || fail "the MQTT 5 bridge exited with status $? after SIGTERM"

# MQTT 3.1.1: the broker passes no properties on, so none appear; the
# bridge's own headers still do.
BR_BRIDGE='topic_header = true; retain_header = true;' bridge_conf "$MAB_TMP/v311.conf" "$ID-311"
grep -q 'protocol = "3.1.1"' "$MAB_TMP/v311.conf" || fail "the configuration is not for MQTT 3.1.1"
bridge_start "$MAB_TMP/v311.conf"
mqpub -i pub-t15-5 -t props/m1 -m one \
	-D publish content-type text/plain \
	-D publish correlation-data req-42 \
	-D publish response-topic replies/client.7/x \
	-D publish user-property k1 v1 \
	-D publish message-expiry-interval 3600
bridge_wait_stats 60 forwarded=2 || fail "the 3.1.1 bridge did not forward 2 messages"
cat >"$MAB_TMP/v311.expected" <<EOF
message 1
exchange: "telemetry"
routing_key: "props.r.retained"
delivery_mode: 2
header "x-mqtt-dup": bool false
header "x-mqtt-publish-qos": byte 1
header "x-mqtt-retain": bool true
header "x-mqtt-topic": str "props/r/retained"
body: 4 "kept"
message 2
exchange: "telemetry"
routing_key: "props.m1"
delivery_mode: 2
header "x-mqtt-dup": bool false
header "x-mqtt-publish-qos": byte 1
header "x-mqtt-retain": bool false
header "x-mqtt-topic": str "props/m1"
body: 3 "one"
EOF
check_dump v311 2
bridge_stop 30 || fail "the 3.1.1 bridge exited with status $? after SIGTERM"
# The retained message would reach every new subscription; clear it.
mqpub -i pub-t15-clear -r -n -t props/r/retained

# plugin_case NAME SETTING TOPIC BODY [HEADER-LINE]: a bridge with
# bridge.plugin_headers = SETTING forwards one message; it must carry
# exactly HEADER-LINE (none when not given).
plugin_case() {
	local name=$1 setting=$2 topic=$3 body=$4 header=${5:-}
	BR_BRIDGE="plugin_headers = \"$setting\";" bridge_conf "$MAB_TMP/$name.conf" "$ID-$name"
	bridge_start "$MAB_TMP/$name.conf"
	mqpub -i "pub-t15-$name" -t "$topic" -m "$body"
	bridge_wait_stats 60 forwarded=1 || fail "the $setting bridge did not forward the message"
	{
		echo "message 1"
		echo 'exchange: "telemetry"'
		echo "routing_key: \"${topic//\//.}\""
		echo "delivery_mode: 2"
		[[ -n $header ]] && echo "$header"
		echo "body: ${#body} \"$body\""
	} >"$MAB_TMP/$name.expected"
	check_dump "$name" 1
	bridge_stop 30 || fail "the $setting bridge exited with status $? after SIGTERM"
}
plugin_case p312 3.12 props/m6 six 'header "x-mqtt-publish-qos": byte 1'
plugin_case pnone none props/m7 seven

# DUP: a queue that holds one message and refuses more (reject-publish).
# The second message is nacked, so the bridge drops MQTT and the broker
# delivers it again, with DUP set, until the first is consumed.
sink setup -q qfull -x telemetry -k 'full.#' -a x-max-length=1 -a x-overflow=reject-publish ||
	fail "cannot set up qfull"
export BR_SUBSCRIBE='"full/#"'
bridge_conf "$MAB_TMP/dup.conf" "$ID-dup"
bridge_start "$MAB_TMP/dup.conf"
from=$(bridge_log_lines)
mfrom=$(mosq_log_lines)
mqpub -i pub-t15-9 -t full/a -m first
# Acknowledged to the broker before the second comes, so only the second is
# ever delivered again.
wait_until 60 mosq__puback_seen "$ID-dup" "$mfrom" || fail "the first message was never acknowledged"
mqpub -i pub-t15-10 -t full/b -m second
bridge_wait_log "$from" 'RabbitMQ refused' 60
bridge_wait_log "$from" 'dropping the connection without acknowledging' 60
# Consume the first; the redelivered second then fits.
sink dump -q qfull -n 1 -i 20 >"$MAB_TMP/full1.dump" || fail "the first message did not arrive"
grep -q '^body: 5 "first"' "$MAB_TMP/full1.dump" || fail "qfull: $(cat "$MAB_TMP/full1.dump")"
grep -q '^header "x-mqtt-dup": bool false' "$MAB_TMP/full1.dump" ||
	fail "the first delivery should carry x-mqtt-dup false: $(cat "$MAB_TMP/full1.dump")"
sink dump -q qfull -n 1 -i 30 >"$MAB_TMP/full2.dump" || fail "the second message did not arrive"
grep -q '^body: 6 "second"' "$MAB_TMP/full2.dump" || fail "qfull: $(cat "$MAB_TMP/full2.dump")"
grep -q '^header "x-mqtt-dup": bool true' "$MAB_TMP/full2.dump" ||
	fail "a redelivered message should carry x-mqtt-dup true: $(cat "$MAB_TMP/full2.dump")"
bridge_stop 30 || fail "the dup bridge exited with status $? after SIGTERM"
pass "MQTT 5 properties converted; none over 3.1.1; plugin headers as 3.10, 3.12 and none; DUP on a redelivery"
