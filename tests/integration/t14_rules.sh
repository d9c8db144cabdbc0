#!/usr/bin/env bash
# t14_rules.sh: mapping rules and topology on real brokers.
#
# The bridge declares three exchanges and four queues (one of them a quorum
# queue) and routes five streams of 2,000 QoS 1 messages each:
#   site1/devN/temperature      rule 1: exchange tx.temp, key temp.devN,
#                               static headers                  -> q.temp
#   site1/devN/alarm/level/high rule 2 (continue): tx.alarms,
#                               alarm.devN.level.high           -> q.alarms
#                               rule 3: tx.audit (fanout),
#                               audit.devN.alarm.level.high     -> q.audit
#   site1/devN/debug/trace      rule 4: drop (counted)
#   site1/devN/status           rule 5: main exchange, default key,
#                               transient                       -> q.main
#   other/devN/x                no rule; bridge.unmatched = "drop" (counted)
# Every queue gets exactly its stream, byte for byte, with the expected
# exchange, routing key and headers; the dropped streams reach no queue.  A
# queue deleted behind the bridge's back is declared again on its next
# connect.
# Then the same bridge with unmatched = "forward" (the default) sends
# unmatched messages to the main exchange with the default translation, and
# a SIGKILL during a fan-out stream loses neither copy.
# Last, a rule's exchange that exists nowhere keeps the bridge from
# connecting (retried, MQTT left alone) until the exchange appears; the
# messages published meanwhile are all delivered.
set -uo pipefail
# shellcheck source=../lib/brokers.sh
. "$(dirname "${BASH_SOURCE[0]}")/../lib/brokers.sh"

N=2000
M=500
ID=bridge-t14
export BR_SUBSCRIBE='"site1/#", "other/#"'

# Sequence ranges: a message in the wrong queue shows up as unexpected.
S_TEMP=0
S_ALARM=100000
S_DEBUG=200000
S_STATUS=300000
S_OTHER=400000
S_FWD=500000
S_MISSING=600000
S_CRASH=700000
S_REDECL=800000
K=10000

TOPOLOGY='topology = {
    exchanges = (
        { name = "tx.temp"; type = "topic"; },
        { name = "tx.alarms"; type = "topic"; durable = true; },
        { name = "tx.audit"; type = "fanout"; }
    );
    queues = (
        { name = "q.temp"; },
        { name = "q.alarms"; arguments = { x-queue-type = "quorum"; }; },
        { name = "q.audit"; arguments = { x-max-length = 100000; }; },
        { name = "q.main"; }
    );
    bindings = (
        { exchange = "tx.temp"; queue = "q.temp"; key = "temp.*"; },
        { exchange = "tx.alarms"; queue = "q.alarms"; key = "alarm.#"; },
        { exchange = "tx.audit"; queue = "q.audit"; key = "ignored-by-fanout"; },
        { exchange = "telemetry"; queue = "q.main"; match = "site1/+/status"; },
        { exchange = "telemetry"; queue = "q.main"; match = "other/#"; }
    );
};'

RULES='rules = (
    { match = "site1/+/temperature"; exchange = "tx.temp"; routing_key = "temp.{1}";
      headers = { kind = "temperature"; sample-rate = 10; calibrated = true; }; name = "temp"; },
    { match = "site1/+/alarm/#"; exchange = "tx.alarms"; routing_key = "alarm.{1}.{#}";
      continue = true; name = "alarms"; },
    { match = "site1/+/alarm/#"; exchange = "tx.audit"; routing_key = "{topic}";
      strip_prefix = "site1/"; key_prefix = "audit."; name = "audit"; },
    { match = "site1/+/debug/#"; drop = true; name = "debug"; },
    { match = "site1/#"; persistent = false; }
);'

export BR_HTTP=1
mab_init t14
CONF=$MAB_TMP/bridge.conf
mosq_start || fail "mosquitto did not start"
BR_BRIDGE='unmatched = "drop";' BR_TAIL="$RULES
$TOPOLOGY" bridge_conf "$CONF" "$ID"
bridge_start "$CONF"

# The topology is in place, as declared.
queues=$(rmqctl -q list_queues -p "$MAB_VHOST" --no-table-headers name type arguments) ||
	fail "rabbitmqctl list_queues failed"
mab_log "queues: $(tr '\n\t' '; ' <<<"$queues")"
for q in q.temp q.alarms q.audit q.main; do
	grep -q "^${q//./\\.}[[:space:]]" <<<"$queues" || fail "queue $q was not declared"
done
grep -Eq '^q\.alarms[[:space:]]+quorum' <<<"$queues" || fail "q.alarms is not a quorum queue"
grep -Eq '^q\.temp[[:space:]]+classic' <<<"$queues" || fail "q.temp is not a classic queue"
grep -E '^q\.audit[[:space:]]' <<<"$queues" | grep -q 'x-max-length' ||
	fail "q.audit lacks its x-max-length argument"
exchanges=$(rmqctl -q list_exchanges -p "$MAB_VHOST" --no-table-headers name type) ||
	fail "rabbitmqctl list_exchanges failed"
grep -Eq '^tx\.audit[[:space:]]+fanout' <<<"$exchanges" || fail "tx.audit is not a fanout exchange"
grep -Eq '^tx\.alarms[[:space:]]+topic' <<<"$exchanges" || fail "tx.alarms is not a topic exchange"
bindings=$(rmqctl -q list_bindings -p "$MAB_VHOST" --no-table-headers source_name destination_name routing_key) ||
	fail "rabbitmqctl list_bindings failed"
# Bindings given as MQTT filters are translated.
for k in 'site1\.\*\.status' 'other\.#'; do
	grep -Eq "^telemetry[[:space:]]+q\.main[[:space:]]+$k\$" <<<"$bindings" ||
		fail "binding telemetry -> q.main with key '$k' missing: $(tr '\n\t' '; ' <<<"$bindings")"
done

# The five streams at once.
pids=()
pub -n "$N" -s "$S_TEMP" -t "site1/dev%d/temperature" -T 20 -z 16 -Z 2048 -i pub-t14-temp >/dev/null &
pids+=($!)
pub -n "$N" -s "$S_ALARM" -t "site1/dev%d/alarm/level/high" -T 10 -z 16 -Z 2048 -i pub-t14-alarm >/dev/null &
pids+=($!)
pub -n "$N" -s "$S_DEBUG" -t "site1/dev%d/debug/trace" -T 5 -i pub-t14-debug >/dev/null &
pids+=($!)
pub -n "$N" -s "$S_STATUS" -t "site1/dev%d/status" -T 7 -z 16 -Z 512 -i pub-t14-status >/dev/null &
pids+=($!)
pub -n "$N" -s "$S_OTHER" -t "other/dev%d/x" -T 3 -i pub-t14-other >/dev/null &
pids+=($!)
for p in "${pids[@]}"; do
	mab_on_exit "mab_kill_pid $p 5"
done
for p in "${pids[@]}"; do
	wait "$p" || fail "mab-pub (pid $p) failed"
done

# Once every message is received and every copy confirmed, each queue holds
# all it will ever get.
bridge_wait_stats 120 received=$((5 * N)) forwarded=$((4 * N)) dropped=$((2 * N)) ||
	fail "bridge did not account for all messages: $(grep 'stats: ' "$BRIDGE_LOG" | tail -n 1)"
line=$(grep 'stats: ' "$BRIDGE_LOG" | tail -n 1)
mab_log "bridge: $line"
if [[ $(stats_field mqtt_reconnects) == 0 && $(stats_field amqp_reconnects) == 0 ]]; then
	# Nothing was redelivered: the counts are exact.
	[[ $(stats_field received) == $((5 * N)) ]] || fail "received != $((5 * N)): $line"
	[[ $(stats_field forwarded) == $((4 * N)) ]] || fail "forwarded != $((4 * N)) copies: $line"
	[[ $(stats_field dropped) == $((2 * N)) ]] || fail "dropped != $((2 * N)): $line"
	# /metrics says the same by rule, exchange and reason; the last rule
	# has no name and is known by its line.
	status_line=$(grep -n 'match = "site1/#"' "$CONF" | cut -d: -f1)
	MP=mqtt_amqp_bridge_
	for want in "rule_matches_total{rule=\"temp\"} $N" "rule_matches_total{rule=\"alarms\"} $N" \
		"rule_matches_total{rule=\"audit\"} $N" "rule_matches_total{rule=\"debug\"} $N" \
		"rule_matches_total{rule=\"line $status_line\"} $N" \
		"messages_forwarded_total{exchange=\"tx.temp\"} $N" \
		"messages_forwarded_total{exchange=\"tx.alarms\"} $N" \
		"messages_forwarded_total{exchange=\"tx.audit\"} $N" \
		"messages_forwarded_total{exchange=\"telemetry\"} $N" \
		"messages_dropped_total{reason=\"drop_rule\"} $N" \
		"messages_dropped_total{reason=\"unmatched\"} $N" \
		"messages_received_total $((5 * N))"; do
		metric_is "$MP${want% *}" "${want##* }" 1 || fail "/metrics: expected $MP$want"
	done
fi
[[ $(stats_field nacked) == 0 && $(stats_field dead_lettered) == 0 ]] ||
	fail "messages were nacked or dead-lettered: $line"

sink_expect "q.temp" -q q.temp -s "$S_TEMP" -n "$N" -t "site1/dev%d/temperature" -T 20 \
	--key "temp.dev%d" --exchange tx.temp \
	--header kind=temperature --header sample-rate=10 --header calibrated=true -i 20
sink_expect "q.alarms" -q q.alarms -s "$S_ALARM" -n "$N" -t "site1/dev%d/alarm/level/high" -T 10 \
	--key "alarm.dev%d.level.high" --exchange tx.alarms -i 20
sink_expect "q.audit" -q q.audit -s "$S_ALARM" -n "$N" -t "site1/dev%d/alarm/level/high" -T 10 \
	--key "audit.dev%d.alarm.level.high" --exchange tx.audit -i 20
sink_expect "q.main" -q q.main -s "$S_STATUS" -n "$N" -t "site1/dev%d/status" -T 7 \
	--exchange telemetry -i 20
# Nothing else arrived anywhere: the dropped streams, or a copy too many,
# would still be there.
for q in q.temp q.alarms q.audit q.main; do
	d=$(queue_ready "$q") || fail "cannot read the depth of $q"
	[[ $d == 0 ]] || fail "$q still holds $d message(s) after its stream was consumed"
done
# The transient stream was published transient (rule 5: persistent = false).
pub -n 1 -s "$S_STATUS" -t "site1/dev%d/status" -i pub-t14-mode >/dev/null || fail "mab-pub failed"
sink dump -q q.main -n 1 -i 20 >"$MAB_TMP/mode.dump" || fail "the transient probe did not arrive"
grep -qx 'delivery_mode: 1' "$MAB_TMP/mode.dump" ||
	fail "rule 5 (persistent = false) did not make a QoS 1 message transient: $(tr '\n' ' ' <"$MAB_TMP/mode.dump")"

# The topology is declared on every connect: a queue deleted meanwhile is
# back once the bridge has reconnected, and gets its messages.
rmqctl -q delete_queue -p "$MAB_VHOST" q.temp >/dev/null || fail "cannot delete q.temp"
queue_ready q.temp >/dev/null 2>&1 && fail "q.temp is still there after delete_queue"
bridge_stats || fail "no stats from the bridge"
a0=$(stats_field amqp_reconnects)
rmqctl -q close_all_connections -p "$MAB_VHOST" "t14: reconnect" >/dev/null ||
	fail "cannot close the bridge's AMQP connection"
bridge_wait_stats 60 amqp_reconnects=$((a0 + 1)) || fail "the bridge did not reconnect to RabbitMQ"
queue_ready q.temp >/dev/null || fail "q.temp was not declared again on the reconnect"
pub -n "$M" -s "$S_REDECL" -t "site1/dev%d/temperature" -T 20 -i pub-t14-redecl >/dev/null ||
	fail "mab-pub failed"
sink_expect "q.temp (declared again)" -q q.temp -s "$S_REDECL" -n "$M" -t "site1/dev%d/temperature" \
	-T 20 --key "temp.dev%d" --exchange tx.temp -i 20

bridge_stop 30 || fail "bridge exited with status $? after SIGTERM"
mab_log "first bridge: $(grep 'stats: ' "$BRIDGE_LOG" | tail -n 1)"

# unmatched = "forward" (the default): the main exchange, the default key.
BR_TAIL="$RULES
$TOPOLOGY" bridge_conf "$CONF" "$ID"
grep -q unmatched "$CONF" && fail "the configuration still sets bridge.unmatched"
bridge_start "$CONF"
pub -n "$M" -s "$S_FWD" -t "other/dev%d/x" -T 3 -i pub-t14-fwd >/dev/null || fail "mab-pub failed"
sink_expect "q.main (unmatched)" -q q.main -s "$S_FWD" -n "$M" -t "other/dev%d/x" -T 3 \
	--exchange telemetry -i 20
bridge_wait_stats 60 forwarded="$M" || fail "forwarded did not reach $M"
[[ $(stats_field dropped) == 0 ]] ||
	fail "unmatched = forward dropped messages: $(grep 'stats: ' "$BRIDGE_LOG" | tail -n 1)"

# Fan-out across a crash: a message is acknowledged only once both of its
# copies are confirmed, so a SIGKILL loses neither.
pub -n "$K" -s "$S_CRASH" -t "site1/dev%d/alarm/level/high" -T 10 -r 4000 -i pub-t14-crash \
	>"$MAB_TMP/pub.out" 2>&1 &
pub_pid=$!
mab_on_exit "mab_kill_pid $pub_pid 5"
bridge_wait_stats 60 forwarded=$((M + 2000)) || fail "the fan-out stream did not start"
mab_alive "$pub_pid" || fail "the publisher finished before the bridge was killed"
bridge_kill9
mab_log "bridge killed during the fan-out stream"
bridge_start "$CONF"
wait "$pub_pid" || fail "mab-pub failed: $(cat "$MAB_TMP/pub.out")"
for q in q.alarms q.audit; do
	[[ $q == q.alarms ]] && key="alarm.dev%d.level.high" || key="audit.dev%d.alarm.level.high"
	sink_expect "$q (across a crash)" -q "$q" -s "$S_CRASH" -n "$K" -t "site1/dev%d/alarm/level/high" \
		-T 10 --key "$key" -i 20
	((SINK_DUPLICATES <= 2000)) || fail "$q: $SINK_DUPLICATES duplicates after one kill exceed 2 x inflight_max"
done
bridge_stop 30 || fail "bridge exited with status $? after SIGTERM"

# A rule's exchange that exists nowhere: no connection (and no MQTT) until
# it appears; what is published meanwhile waits in the MQTT session.
MISSING_RULES='rules = (
    { match = "other/#"; exchange = "tx.missing"; routing_key = "m.{#}"; }
);'
BR_TAIL="$MISSING_RULES" bridge_conf "$CONF" "$ID"
from=$(bridge_log_lines)
before=$(bridge_forwarding_count)
NOWAIT=1 bridge_start "$CONF"
# Two attempts, each naming the exchange.
# shellcheck disable=SC2317  # called through wait_until
missing_reported() {
	(($(bridge_log_since "$from" | grep -c 'tx\.missing') >= 2))
}
wait_until 30 missing_reported ||
	fail "the bridge did not report (twice) that exchange tx.missing is missing"
mab_log "refused: $(bridge_log_since "$from" | grep -m 1 'tx\.missing')"
pub -n "$M" -s "$S_MISSING" -t "other/dev%d/x" -T 3 -i pub-t14-missing >/dev/null ||
	fail "mab-pub failed"
mab_alive "$BRIDGE_PID" || fail "the bridge exited instead of retrying"
bridge_log_has "$from" 'mqtt: connected' &&
	fail "the bridge connected to MQTT while its AMQP side could not be set up"
bridge_log_has "$from" 'bridge: forwarding' && fail "the bridge forwarded without exchange tx.missing"
sink setup -q q.missing -x tx.missing --declare-exchange -k 'm.#' || fail "cannot declare tx.missing"
bridge_wait_forwarding "$before" 60
sink_expect "q.missing" -q q.missing -s "$S_MISSING" -n "$M" -t "other/dev%d/x" -T 3 \
	--key "m.dev%d.x" --exchange tx.missing -i 20
bridge_stop 30 || fail "bridge exited with status $? after SIGTERM"
pass "every stream where its rules send it; dropped and unmatched counted"
