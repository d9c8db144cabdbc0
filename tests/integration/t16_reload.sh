#!/usr/bin/env bash
# t16_reload.sh: SIGHUP reloads the configuration.
#
#  1. While 20,000 QoS 1 messages flow, the rules are switched from
#     exchange tx.a (queue qa) to tx.b (queue qb) and back, each time by
#     rewriting the file and sending SIGHUP.  qa and qb together hold every
#     message (duplicates are reported), each holds some, and neither side
#     reconnected: only the rules changed.
#  2. A file with a syntax error, then one with several bad settings and
#     rules: each reload logs every error as FILE:LINE and keeps the last
#     good configuration, which then routes 2,000 more messages (to qa).
#  3. Subscriptions follow the rules' filters by difference: adding a rule
#     for gone/# subscribes that filter alone; replacing it by new/#
#     subscribes new/# and unsubscribes gone/# and nothing else.  new/#
#     then flows, and what is published to gone/# reaches the bridge no
#     more.
#  4. A topology change, while messages flow, reconnects the AMQP side: the
#     new queue is declared and nothing is lost.
#  5. An mqtt setting changed while messages flow reconnects the MQTT side
#     alone; nothing is lost.
set -uo pipefail
# shellcheck source=../lib/brokers.sh
. "$(dirname "${BASH_SOURCE[0]}")/../lib/brokers.sh"

N=20000
M=2000
ID=bridge-t16
export BR_SUBSCRIBE=- BR_INFLIGHT=500

S_MORE=100000
S_GONE=200000
S_GONE_AFTER=300000
S_NEW=400000
S_AMQP=500000
S_MQTT=600000
L=6000

TOPOLOGY_BASE='exchanges = (
        { name = "tx.a"; type = "topic"; },
        { name = "tx.b"; type = "topic"; }
    );'
QUEUES_BASE='{ name = "qa"; }, { name = "qb"; }, { name = "q.gone"; }, { name = "q.new"; }'
BINDINGS_BASE='{ exchange = "tx.a"; queue = "qa"; key = "#"; },
        { exchange = "tx.b"; queue = "qb"; key = "#"; },
        { exchange = "telemetry"; queue = "q.gone"; match = "gone/#"; },
        { exchange = "telemetry"; queue = "q.new"; match = "new/#"; }'

# write_conf RULES [QUEUES [BINDINGS]]: the configuration with these rule
# entries and extra topology queues and bindings.
write_conf() {
	BR_TAIL="rules = (
    $1
);
topology = {
    $TOPOLOGY_BASE
    queues = ( $QUEUES_BASE${2:+, $2} );
    bindings = (
        $BINDINGS_BASE${3:+,
        $3}
    );
};" bridge_conf "$CONF" "$ID"
}

RULE_A='{ match = "fleet/#"; exchange = "tx.a"; }'
RULE_B='{ match = "fleet/#"; exchange = "tx.b"; }'

# reload_ok: SIGHUP; waits for the bridge to report the reload done.
# Leaves the log length from before it in $RELOAD_FROM.
reload_ok() {
	RELOAD_FROM=$(bridge_log_lines)
	kill -HUP "$BRIDGE_PID" || fail "cannot signal the bridge"
	bridge_wait_log "$RELOAD_FROM" "bridge: (reloaded|reload failed)" 30
	bridge_log_has "$RELOAD_FROM" "bridge: reload failed" &&
		fail "reload failed: $(bridge_log_since "$RELOAD_FROM" | tr '\n' '|')"
	mab_log "$(bridge_log_since "$RELOAD_FROM" | grep -m 1 'bridge: reloaded')"
}

# reload_refused: SIGHUP with a bad file; waits for the failure report.
reload_refused() {
	RELOAD_FROM=$(bridge_log_lines)
	kill -HUP "$BRIDGE_PID" || fail "cannot signal the bridge"
	bridge_wait_log "$RELOAD_FROM" "bridge: (reloaded|reload failed)" 30
	bridge_log_has "$RELOAD_FROM" "bridge: reloaded" && fail "a bad file was accepted on reload"
	bridge_log_has "$RELOAD_FROM" "bridge: reload failed: .*still running on the previous configuration" ||
		fail "the failed reload does not say that the previous configuration stays"
	mab_alive "$BRIDGE_PID" || fail "the bridge exited after a failed reload"
}

# expect_error_at LINE: the failed reload logged an error for $CONF:LINE.
expect_error_at() {
	bridge_log_since "$RELOAD_FROM" | grep -qF "$CONF:$1: " ||
		fail "no error logged for $CONF:$1 ($2): $(bridge_log_since "$RELOAD_FROM" | tr '\n' '|')"
}

# line_of TEXT: the line number of the first line of $CONF holding TEXT.
line_of() {
	grep -nF -- "$1" "$CONF" | head -n 1 | cut -d: -f1
}

# extra_declared: q.extra exists as a quorum queue.
# shellcheck disable=SC2317  # called through wait_until
extra_declared() {
	rmqctl -q list_queues -p "$MAB_VHOST" --no-table-headers name type |
		grep -Eq '^q\.extra[[:space:]]+quorum'
}

# forwarded_now: the bridge's current forwarded count.
forwarded_now() {
	bridge_stats || fail "no stats from the bridge"
	stats_field forwarded
}

mab_init t16
CONF=$MAB_TMP/bridge.conf
mosq_start || fail "mosquitto did not start"
write_conf "$RULE_A"
bridge_start "$CONF"

# ---- 1: the routing changes under load, twice.
pub -n "$N" -T 50 -z 16 -Z 512 -r 2500 -i pub-t16 >"$MAB_TMP/pub.out" 2>&1 &
pub_pid=$!
mab_on_exit "mab_kill_pid $pub_pid 5"
bridge_wait_stats 60 forwarded=3000 || fail "the first 3,000 messages were not forwarded"
write_conf "$RULE_B"
mab_alive "$pub_pid" || fail "the publisher finished before the first reload"
reload_ok
f=$(forwarded_now)
bridge_wait_stats 60 forwarded=$((f + 4000)) || fail "forwarding stalled after the first reload"
write_conf "$RULE_A"
mab_alive "$pub_pid" || fail "the publisher finished before the second reload"
reload_ok
wait "$pub_pid" || fail "mab-pub failed: $(cat "$MAB_TMP/pub.out")"
sink_expect "qa+qb" -q qa -q qb -n "$N" -T 50 -i 30
qa_n=$(sed -n 's/^queue qa received=//p' <<<"$SINK_OUT")
qb_n=$(sed -n 's/^queue qb received=//p' <<<"$SINK_OUT")
mab_log "qa received ${qa_n:-?}, qb ${qb_n:-?}; duplicates $SINK_DUPLICATES"
((${qa_n:-0} > 0 && ${qb_n:-0} > 0)) || fail "the routing did not change: qa got ${qa_n:-?}, qb ${qb_n:-?}"
bridge_stats || fail "no stats from the bridge"
line=$(grep 'stats: ' "$BRIDGE_LOG" | tail -n 1)
[[ $(stats_field mqtt_reconnects) == 0 && $(stats_field amqp_reconnects) == 0 ]] ||
	fail "a rules-only reload reconnected: $line"
# Duplicates the consumer stopped before reading would pass for strays later.
for q in qa qb; do
	sink setup -q "$q" --purge || fail "cannot purge $q"
done

# ---- 2: bad files change nothing.
write_conf "$RULE_B"
echo 'this line is not = libconfig' >>"$CONF"
syntax_line=$(line_of 'this line is not')
reload_refused
expect_error_at "$syntax_line" "syntax error"

write_conf "$RULE_B,
    { match = \"fleet/+/temp\"; exchange = \"tx.b\"; routing_key = \"k.{2}\"; },
    { match = \"fleet/#\"; drop = true; exchange = \"tx.b\"; },
    { match = \"fleet/#/bad\"; }"
sed -i 's/^    drain_timeout = .*/&\n    unmatched = "sideways";/' "$CONF"
reload_refused
expect_error_at "$(line_of 'k.{2}')" "{2} with one '+'"
expect_error_at "$(line_of 'drop = true; exchange')" "drop with exchange"
expect_error_at "$(line_of 'fleet/#/bad')" "a bad filter"
expect_error_at "$(line_of 'sideways')" "a bad bridge.unmatched"
mab_log "refused: $(bridge_log_since "$RELOAD_FROM" | grep -c "$CONF:") error line(s)"

f=$(forwarded_now)
pub -n "$M" -s "$S_MORE" -T 50 -i pub-t16-more >/dev/null || fail "mab-pub failed"
sink_expect "qa (last good rules)" -q qa -s "$S_MORE" -n "$M" -T 50 -i 20
bridge_wait_stats 60 forwarded=$((f + M)) || fail "forwarded did not grow by $M"
d=$(queue_ready qb) || fail "cannot read the depth of qb"
[[ $d == 0 ]] || fail "qb got $d message(s) although the last good rules send to qa"

# ---- 3: subscriptions change by difference.
RULE_GONE='{ match = "gone/#"; }'
RULE_NEW='{ match = "new/#"; }'
write_conf "$RULE_A, $RULE_GONE"
reload_ok
bridge_wait_log "$RELOAD_FROM" "mqtt: subscribed to 'gone/#'" 30
changes=$(bridge_log_since "$RELOAD_FROM" | grep -E "mqtt: (un)?subscrib" | sed 's/.*mqtt: //')
[[ $changes == "subscribing to 'gone/#'"$'\n'"subscribed to 'gone/#'" ]] ||
	fail "adding gone/# changed other subscriptions: $(tr '\n' '|' <<<"$changes")"
pub -n "$M" -s "$S_GONE" -t "gone/dev%d/x" -T 5 -i pub-t16-gone >/dev/null || fail "mab-pub failed"
sink_expect "q.gone" -q q.gone -s "$S_GONE" -n "$M" -t "gone/dev%d/x" -T 5 -i 20

write_conf "$RULE_A, $RULE_NEW"
mosq_from=$(mosq_log_lines)
reload_ok
bridge_wait_log "$RELOAD_FROM" "mqtt: subscribed to 'new/#'" 30
bridge_wait_log "$RELOAD_FROM" "mqtt: unsubscribed from 'gone/#'" 30
changes=$(bridge_log_since "$RELOAD_FROM" | grep -E "mqtt: (un)?subscrib" | sed 's/.*mqtt: //' | sort)
expected=$(printf '%s\n' "subscribed to 'new/#'" "subscribing to 'new/#'" \
	"unsubscribed from 'gone/#'" "unsubscribing from 'gone/#'" | sort)
[[ $changes == "$expected" ]] ||
	fail "replacing gone/# by new/# did not change exactly those: $(tr '\n' '|' <<<"$changes")"
# The broker saw the same: one SUBSCRIBE of new/#, one UNSUBSCRIBE of gone/#.
broker=$(tail -n +"$((mosq_from + 1))" "$MOSQ_LOG" | grep -E "(SUBSCRIBE from $ID|UNSUBSCRIBE from $ID|$ID [0-9] |	)" |
	sed 's/^[0-9]*: //')
grep -qx "Received SUBSCRIBE from $ID" <<<"$broker" || fail "the broker got no SUBSCRIBE: $broker"
grep -qx "Received UNSUBSCRIBE from $ID" <<<"$broker" || fail "the broker got no UNSUBSCRIBE: $broker"
grep -q 'fleet/#' <<<"$broker" && fail "fleet/# was subscribed or unsubscribed again: $(tr '\n' '|' <<<"$broker")"
mab_log "broker: $(tr '\n\t' '| ' <<<"$broker")"

bridge_stats || fail "no stats from the bridge"
r0=$(stats_field received)
f0=$(stats_field forwarded)
rc0=$(stats_field mqtt_reconnects)
pub -n "$M" -s "$S_GONE_AFTER" -t "gone/dev%d/x" -T 5 -i pub-t16-gone2 >/dev/null || fail "mab-pub failed"
pub -n "$M" -s "$S_NEW" -t "new/dev%d/x" -T 5 -i pub-t16-new >/dev/null || fail "mab-pub failed"
sink_expect "q.new" -q q.new -s "$S_NEW" -n "$M" -t "new/dev%d/x" -T 5 -i 20
bridge_wait_stats 60 forwarded=$((f0 + M)) || fail "forwarded did not grow by $M"
line=$(grep 'stats: ' "$BRIDGE_LOG" | tail -n 1)
[[ $(stats_field mqtt_reconnects) == "$rc0" ]] || fail "the MQTT side reconnected: $line"
# gone/# was published first: had the bridge still been subscribed, it
# would have received those messages before the new/# ones.
[[ $(stats_field received) == $((r0 + M)) ]] ||
	fail "received grew by $(($(stats_field received) - r0)), expected $M (new/# only): $line"
d=$(queue_ready q.gone) || fail "cannot read the depth of q.gone"
[[ $d == 0 ]] || fail "q.gone got $d message(s) after gone/# was unsubscribed"

# ---- 4: a topology change reconnects AMQP, under load: nothing is lost,
# and the new queue is declared.
EXTRA_Q='{ name = "q.extra"; arguments = { x-queue-type = "quorum"; }; }'
EXTRA_B='{ exchange = "tx.a"; queue = "q.extra"; key = "fleet.#"; }'
bridge_stats || fail "no stats from the bridge"
a0=$(stats_field amqp_reconnects)
f=$(stats_field forwarded)
pub -n "$L" -s "$S_AMQP" -T 50 -r 2000 -i pub-t16-amqp >"$MAB_TMP/pub.out" 2>&1 &
pub_pid=$!
mab_on_exit "mab_kill_pid $pub_pid 5"
bridge_wait_stats 60 forwarded=$((f + 1000)) || fail "forwarding stalled before the AMQP reload"
write_conf "$RULE_A, $RULE_NEW" "$EXTRA_Q" "$EXTRA_B"
mab_alive "$pub_pid" || fail "the publisher finished before the AMQP reload"
reload_ok
bridge_log_has "$RELOAD_FROM" "reconnecting AMQP" || fail "the reload did not announce an AMQP reconnect"
bridge_wait_stats 60 amqp_reconnects=$((a0 + 1)) || fail "the AMQP side did not reconnect"
wait "$pub_pid" || fail "mab-pub failed: $(cat "$MAB_TMP/pub.out")"
sink_expect "qa (across the AMQP reconnect)" -q qa -s "$S_AMQP" -n "$L" -T 50 -i 20
wait_until 30 extra_declared || fail "q.extra (quorum) was not declared after the reload"
# q.extra holds what came after the reconnect: some, not all.
d=$(queue_ready q.extra) || fail "cannot read the depth of q.extra"
((d > 0)) || fail "q.extra got nothing after the reconnect"
mab_log "q.extra got $d of the $L messages (those after the reconnect)"
sink setup -q q.extra -a x-queue-type=quorum --purge || fail "cannot purge q.extra"

# ---- 5: an mqtt setting reconnects MQTT alone, under load.
bridge_stats || fail "no stats from the bridge"
m0=$(stats_field mqtt_reconnects)
a0=$(stats_field amqp_reconnects)
f=$(stats_field forwarded)
pub -n "$L" -s "$S_MQTT" -T 50 -r 2000 -i pub-t16-mqtt >"$MAB_TMP/pub.out" 2>&1 &
pub_pid=$!
mab_on_exit "mab_kill_pid $pub_pid 5"
bridge_wait_stats 60 forwarded=$((f + 1000)) || fail "forwarding stalled before the MQTT reload"
BR_KEEPALIVE=45 write_conf "$RULE_A, $RULE_NEW" "$EXTRA_Q" "$EXTRA_B"
grep -q 'keepalive = 45;' "$CONF" || fail "cannot change mqtt.keepalive"
mab_alive "$pub_pid" || fail "the publisher finished before the MQTT reload"
reload_ok
bridge_log_has "$RELOAD_FROM" "reconnecting MQTT" || fail "the reload did not announce an MQTT reconnect"
bridge_wait_stats 60 mqtt_reconnects=$((m0 + 1)) || fail "the MQTT side did not reconnect"
wait "$pub_pid" || fail "mab-pub failed: $(cat "$MAB_TMP/pub.out")"
sink_expect "qa (across the MQTT reconnect)" -q qa -s "$S_MQTT" -n "$L" -T 50 -i 20
sink_expect "q.extra (across the MQTT reconnect)" -q q.extra -s "$S_MQTT" -n "$L" -T 50 -i 20
bridge_stats || fail "no stats from the bridge"
[[ $(stats_field amqp_reconnects) == "$a0" ]] ||
	fail "an mqtt-only change reconnected AMQP too: $(grep 'stats: ' "$BRIDGE_LOG" | tail -n 1)"

bridge_stop 30 || fail "bridge exited with status $? after SIGTERM"
mab_log "bridge: $(grep 'stats: ' "$BRIDGE_LOG" | tail -n 1)"
pass "routing changed under load with nothing lost; bad files refused; subscriptions by difference"
