#!/usr/bin/env bash
# t06_unroutable.sh: messages no queue binding matches, and messages whose
# routing key would exceed AMQP's 255 bytes.  With a dead-letter exchange
# they arrive there with the bridge's headers (x-bridge-reason unroutable
# or routing-key-too-long, x-mqtt-topic, x-original-exchange, and
# x-original-routing-key when the key was valid); without one they are
# dropped and counted.  Either way they do not stall the routable messages
# behind them.  /metrics counts each by its reason.
set -uo pipefail
# shellcheck source=SCRIPTDIR/../lib/brokers.sh
. "$(dirname "${BASH_SOURCE[0]}")/../lib/brokers.sh"

ORPHAN='orphan/dev%d/x'
# A topic that translates to a routing key of about 300 bytes.
LONG="fleet/$(printf 'l%.0s' {1..290})/dev%d"
export BR_SUBSCRIBE='"fleet/#", "orphan/#"'
export BR_HTTP=1
M=mqtt_amqp_bridge_messages

mab_init t06
mosq_start || fail "mosquitto did not start"
sink_setup_main
sink setup -q dlq -x dlx --declare-exchange -k '#' || fail "cannot set up the dead-letter queue"

# 1. With a dead-letter exchange.
bridge_conf "$MAB_TMP/dlx.conf" bridge-t06 'dead_letter_exchange = "dlx";'
bridge_start "$MAB_TMP/dlx.conf"
pub -s 0 -n 200 -t "$ORPHAN" -T 10 -z 64 -i pub-t06a >/dev/null || fail "mab-pub (unroutable) failed"
# An unroutable message is dead-lettered only once RabbitMQ returned it; one
# whose key is too long, at once.  So the second kind waits for the first,
# or the dead-letter queue would hold them in either order.
# shellcheck disable=SC2317  # called through wait_until
orphans_in() { (($(queue_ready dlq) >= 200)); }
wait_until 30 orphans_in || fail "the 200 unroutable messages did not reach the dead-letter queue"
pub -s 500 -n 50 -t "$LONG" -T 10 -z 64 -i pub-t06e >/dev/null || fail "mab-pub (long topics) failed"
pub -s 1000 -n 300 -T 10 -z 64 -i pub-t06b >/dev/null || fail "mab-pub (routable) failed"
sink_expect "dead-lettered" -q dlq -s 0 -n 200 -t "$ORPHAN" -T 10 -i 30 \
	--dead-letter unroutable --orig-exchange telemetry
sink_expect "dead-lettered, key too long" -q dlq -s 500 -n 50 -t "$LONG" -T 10 -i 30 \
	--dead-letter routing-key-too-long --orig-exchange telemetry
sink_expect "routable" -q sink -s 1000 -n 300 -T 10 -i 30
metric_is "${M}_dead_lettered_total{reason=\"unroutable\"}" 200 30 &&
	metric_is "${M}_dead_lettered_total{reason=\"routing-key-too-long\"}" 50 30 &&
	metric_is "${M}_forwarded_total{exchange=\"telemetry\"}" 300 30 &&
	metric_is "${M}_dropped_total{reason=\"undeliverable\"}" 0 1 ||
	fail "/metrics does not count the dead letters by reason"
bridge_stop 30 || fail "bridge exited with status $? after SIGTERM"
stats=$(grep 'stats: ' "$BRIDGE_LOG" | tail -n 1)
mab_log "bridge: $stats"
[[ $(stats_field dead_lettered) == 250 ]] || fail "expected dead_lettered=250: $stats"
[[ $(stats_field forwarded) == 300 ]] || fail "expected forwarded=300: $stats"
[[ $(stats_field dropped) == 0 ]] || fail "expected dropped=0: $stats"

# 2. Without one.
bridge_conf "$MAB_TMP/nodlx.conf" bridge-t06
bridge_start "$MAB_TMP/nodlx.conf"
pub -s 2000 -n 100 -t "$ORPHAN" -T 10 -z 64 -i pub-t06c >/dev/null || fail "mab-pub (unroutable) failed"
pub -s 3000 -n 300 -T 10 -z 64 -i pub-t06d >/dev/null || fail "mab-pub (routable) failed"
sink_expect "routable after dropped" -q sink -s 3000 -n 300 -T 10 -i 30
metric_is "${M}_dropped_total{reason=\"undeliverable\"}" 100 30 &&
	metric_is "${M}_dropped_total{reason=\"unmatched\"}" 0 1 &&
	metric_is "${M}_dead_lettered_total{reason=\"unroutable\"}" 0 1 ||
	fail "/metrics does not count the undeliverable drops"
bridge_stop 30 || fail "bridge exited with status $? after SIGTERM"
stats=$(grep 'stats: ' "$BRIDGE_LOG" | tail -n 1)
mab_log "bridge: $stats"
[[ $(stats_field dropped) == 100 ]] || fail "expected dropped=100: $stats"
[[ $(stats_field dead_lettered) == 0 ]] || fail "expected dead_lettered=0: $stats"
depth=$(rabbit_queue_depth "$MAB_VHOST" dlq)
[[ $depth == 0 ]] || fail "$depth message(s) reached the dead-letter queue without a dead-letter exchange"
pass "dead-lettered 200 unroutable and 50 with too long a key, dropped 100, routable 600 delivered"
