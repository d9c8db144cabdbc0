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
# A 3.1.1 bridge then forwards the same message with none of them.
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
header "x-mqtt-retain": bool true
header "x-mqtt-topic": str "props/r/retained"
body: 4 "kept"
message 2
exchange: "telemetry"
routing_key: "props.m1"
delivery_mode: 2
header "x-mqtt-retain": bool false
header "x-mqtt-topic": str "props/m1"
body: 3 "one"
EOF
check_dump v311 2
bridge_stop 30 || fail "the 3.1.1 bridge exited with status $? after SIGTERM"
pass "MQTT 5 properties converted; none over 3.1.1"
