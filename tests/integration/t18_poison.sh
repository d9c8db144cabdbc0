#!/usr/bin/env bash
# t18_poison.sh: no single message stalls the stream.  Each kind of message
# RabbitMQ can never take goes to the dead-letter exchange with its reason,
# while a stream of 10,000 numbered messages around it loses nothing and a
# normal message published right after it arrives:
#   1. MQTT 5 user properties that do not fit one AMQP frame (three of
#      50,000 bytes; 2,000 of 70 bytes): found before publishing, reason
#      properties-too-large, no reconnect on either side; and user
#      properties named CC and BCC, which RabbitMQ would refuse as single
#      values, are left out;
#   2. a body over RabbitMQ's own max_message_size, lowered at run time
#      below amqp.max_message_size: RabbitMQ closes the channel with 406,
#      the bridge learns the limit, and after exactly one AMQP reconnect the
#      message is dead-lettered as too-large, without its body; the first
#      such message also has too long a routing key, so its dead-letter
#      copy is the one RabbitMQ refuses;
#   3. something the bridge cannot foresee (a rule that publishes to an
#      internal exchange: 403 "cannot publish to internal exchange"): the
#      poison guard sets the message aside as poison after
#      bridge.poison_failures failures with it at the head (and a few more,
#      while it finds which message it is).
set -uo pipefail
# shellcheck source=SCRIPTDIR/../lib/brokers.sh
. "$(dirname "${BASH_SOURCE[0]}")/../lib/brokers.sh"

ID=bridge-t18
N=10000
RATE=2000

# mqpub ARGS...: mosquitto_pub (MQTT 5, QoS 1) against this test's broker.
mqpub() {
	timeout 60 mosquitto_pub -h 127.0.0.1 -p "$MQTT_PORT" -V mqttv5 -q 1 "$@" ||
		fail "mosquitto_pub ${*:1:6} ... failed"
}

# stream START: N numbered messages at RATE a second on fleet/dev%d/temp,
# in the background; STREAM_PID.
stream() {
	pub -s "$1" -n "$N" -T 10 -z 64 -r "$RATE" -i "pub-t18-$1" >"$MAB_TMP/stream.$1" 2>&1 &
	STREAM_PID=$!
	mab_on_exit "mab_kill_pid $STREAM_PID 15"
}

# stream_done START: waits for the stream and checks that all of it arrived.
stream_done() {
	wait "$STREAM_PID" || fail "mab-pub (stream $1) failed: $(cat "$MAB_TMP/stream.$1")"
	sink_expect "stream $1" -q sink -s "$1" -n "$N" -T 10 -i 30
}

# expect_dead LABEL REASON TOPIC DETAIL-ERE: the next message on dlq is TOPIC's,
# dead-lettered for REASON with an x-bridge-detail matching DETAIL-ERE.
expect_dead() {
	local label=$1 reason=$2 topic=$3 detail=$4 f=$MAB_TMP/$1.dlq
	sink dump -q dlq -n 1 -i 60 >"$f" || fail "$label: nothing on the dead-letter queue: $(cat "$f")"
	grep -qxF "header \"x-bridge-reason\": str \"$reason\"" "$f" ||
		fail "$label: expected reason $reason: $(head -c 2000 "$f")"
	grep -qxF "header \"x-mqtt-topic\": str \"$topic\"" "$f" ||
		fail "$label: expected topic $topic: $(head -c 2000 "$f")"
	grep -Eq "^header \"x-bridge-detail\": str \"$detail\"\$" "$f" ||
		fail "$label: expected a detail matching /$detail/: $(grep x-bridge-detail "$f")"
	mab_log "$label: $(grep -E 'x-bridge-(reason|detail)' "$f" | tr '\n' ' ')"
}

# expect_normal LABEL BODY: the next message on qedge has BODY.
expect_normal() {
	local f=$MAB_TMP/$1.edge
	sink dump -q qedge -n 1 -i 60 >"$f" || fail "$1: the normal message did not arrive"
	grep -qxF "body: ${#2} \"$2\"" "$f" || fail "$1: expected body $2: $(cat "$f")"
}

mab_init t18
mosq_start || fail "mosquitto did not start"
sink_setup_main
sink setup -q dlq -x dlx --declare-exchange -k '#' || fail "cannot set up the dead-letter queue"
sink setup -q qedge -x telemetry -k 'edge.#' || fail "cannot set up qedge"
sink setup -x sealed --declare-exchange --internal || fail "cannot declare the internal exchange"

export BR_SUBSCRIBE='"fleet/#", "edge/#"' BR_PROTOCOL=5
BR_TAIL='rules = (
    { match = "edge/sealed/#"; exchange = "sealed"; },
    { match = "#"; }
);' bridge_conf "$MAB_TMP/bridge.conf" "$ID" 'dead_letter_exchange = "dlx";'

# 1. Properties that do not fit a frame.
bridge_start "$MAB_TMP/bridge.conf"
stream 0
A=$(head -c 50000 /dev/zero | tr '\0' a)
B=${A//a/b}
C=${A//a/c}
mqpub -i pub-t18-big -t edge/props/big -m big \
	-D publish user-property a "$A" -D publish user-property b "$B" -D publish user-property c "$C"
mqpub -i pub-t18-ok1 -t edge/ok -m ok1
many=()
for i in $(seq 1000 2999); do
	many+=(-D publish user-property "k$i" "$(printf 'v%.0s' {1..70})")
done
mqpub -i pub-t18-many -t edge/props/many -m many "${many[@]}"
mqpub -i pub-t18-ok2 -t edge/ok -m ok2
# RabbitMQ would close the channel over a CC header that is not a list.
mqpub -i pub-t18-cc -t edge/cc -m cc -D publish user-property CC x.y -D publish user-property BCC z
expect_dead "three 50,000-byte properties" properties-too-large edge/props/big \
	'properties of 15[0-9]{4} bytes encoded; a frame of 131072 bytes holds 131052'
expect_normal "after the big properties" ok1
expect_dead "2,000 properties" properties-too-large edge/props/many \
	'properties of 16[0-9]{4} bytes encoded; a frame of 131072 bytes holds 131052'
expect_normal "after the many properties" ok2
expect_normal "user properties CC and BCC" cc
grep -q '^header "CC"\|^header "BCC"' "$MAB_TMP/user properties CC and BCC.edge" &&
	fail "part 1: CC or BCC was passed on"
stream_done 0
bridge_stop 30 || fail "bridge exited with status $? after SIGTERM"
mab_log "part 1: $(grep 'stats: ' "$BRIDGE_LOG" | tail -n 1)"
[[ $(stats_field amqp_reconnects) == 0 ]] || fail "part 1: expected no AMQP reconnect"
[[ $(stats_field mqtt_reconnects) == 0 ]] || fail "part 1: expected no MQTT reconnect"
[[ $(stats_field dead_lettered) == 2 ]] || fail "part 1: expected dead_lettered=2"
[[ $(stats_field forwarded) == 10003 ]] || fail "part 1: expected forwarded=10003"
grep -q 'undeliverable message (properties-too-large: properties of' "$BRIDGE_LOG" ||
	fail "part 1: the warning does not lead with the reason and the sizes"

# 2. RabbitMQ's max_message_size lowered below amqp.max_message_size (its
# channels read the limit when they open, so before the bridge connects).
rmqctl -q eval 'application:set_env(rabbit, max_message_size, 1000000).' >/dev/null ||
	fail "cannot lower RabbitMQ's max_message_size"
mab_on_exit "rmqctl -q eval 'application:set_env(rabbit, max_message_size, 134217728).' >/dev/null"
bridge_start "$MAB_TMP/bridge.conf"
stream 20000
head -c 2000000 /dev/zero | tr '\0' x >"$MAB_TMP/2mb"
# First one whose routing key is too long as well: its dead-letter copy, with
# the body, meets RabbitMQ's limit; after that one refusal it goes without.
LONGKEY="edge/size/$(printf 'l%.0s' {1..300})"
mqpub -i pub-t18-2mb-key -t "$LONGKEY" -f "$MAB_TMP/2mb"
mqpub -i pub-t18-2mb -t edge/size/2mb -f "$MAB_TMP/2mb"
mqpub -i pub-t18-ok3 -t edge/ok -m ok3
for t in "$LONGKEY" edge/size/2mb; do
	expect_dead "2,000,000 bytes over RabbitMQ's limit" too-large "$t" \
		"body of 2000000 bytes; RabbitMQ's max_message_size is 1000000"
	grep -q '^body: 0 ""' "$MAB_TMP/2,000,000 bytes over RabbitMQ's limit.dlq" ||
		fail "part 2: a too-large message is dead-lettered without its body"
done
expect_normal "after the 2 MB message" ok3
stream_done 20000
bridge_stop 30 || fail "bridge exited with status $? after SIGTERM"
rmqctl -q eval 'application:set_env(rabbit, max_message_size, 134217728).' >/dev/null ||
	fail "cannot restore RabbitMQ's max_message_size"
mab_log "part 2: $(grep 'stats: ' "$BRIDGE_LOG" | tail -n 1)"
[[ $(stats_field amqp_reconnects) == 1 ]] || fail "part 2: expected exactly one AMQP reconnect"
grep -q "RabbitMQ refused a message of 2000000 bytes: its max_message_size is 1000000" \
	"$BRIDGE_LOG" || fail "part 2: the learnt limit was not logged"

# 3. The poison guard: a message the bridge could not foresee.
from=$(bridge_log_lines)
bridge_start "$MAB_TMP/bridge.conf"
stream 40000
mqpub -i pub-t18-sealed -t edge/sealed/x -m sealed
mqpub -i pub-t18-ok4 -t edge/ok -m ok4
expect_dead "published to an internal exchange" poison edge/sealed/x \
	"broker closed the channel: 403 ACCESS_REFUSED - cannot publish to internal exchange 'sealed' in vhost 't18'"
expect_normal "after the poison message" ok4
stream_done 40000
bridge_stop 30 || fail "bridge exited with status $? after SIGTERM"
mab_log "part 3: $(grep 'stats: ' "$BRIDGE_LOG" | tail -n 1)"
# At least poison_failures; how many more it takes to single the message out
# depends on what the broker delivers again before it.
r=$(stats_field amqp_reconnects)
((r >= 3)) || fail "part 3: expected at least 3 AMQP reconnects (poison_failures = 3), got $r"
n=$(bridge_log_since "$from" | grep -c "was at the head of 3 AMQP failures in a row") || true
[[ $n == 1 ]] || fail "part 3: the poison message should be logged once, got $n"
d=$(queue_ready dlq) || fail "cannot read the depth of dlq"
[[ $d == 0 ]] || fail "$d unexpected message(s) left on the dead-letter queue"
pass "properties-too-large x2 without a reconnect, too-large after one, poison after $r; 30,000 streamed"
