#!/usr/bin/env bash
# t17_route.sh: `--route TOPIC` prints where a message would go, and `-t`
# lists the compiled rules, without connecting anywhere.
#
# Both ports in the configuration belong to a mosquitto that only watches:
# a bridge that connected (to either side) would show in its log, and would
# not return within the time limit.  No RabbitMQ is needed.
#
# Covered: first match wins; `continue` lists two copies in rule order;
# drop; unmatched forward (the default translation) and unmatched drop;
# templates with {1}, {#}, {topic} and {{ }}; strip_prefix and key_prefix;
# bridge.dot_replacement; the default exchange; a shared subscription; a
# rule's static headers and x-mqtt-topic; the delivery mode a rule sets;
# a shadowed rule is never chosen and -t warns about it; without
# mqtt.subscribe the rules' filters are subscribed; --downlink-route with
# headers, a topology binding that takes the key or not, a rejection.
set -uo pipefail
# shellcheck source=../lib/brokers.sh
. "$(dirname "${BASH_SOURCE[0]}")/../lib/brokers.sh"
MAB_TEST_NAME=t17

root=$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)
BUILD_DIR=${BUILD_DIR:-$root}
BRIDGE_BIN=${BRIDGE_BIN:-$BUILD_DIR/mqtt-amqp-bridge}
[[ -x $BRIDGE_BIN ]] || { echo "t17: $BRIDGE_BIN is missing (build first, or set BUILD_DIR)" >&2; exit 77; }

fail() {
	echo "FAIL t17: $*" >&2
	exit 1
}

MAB_TMP=""
mab_tmp || exit 1
mab_trap
AMQP_TRAP_PORT=$(free_port) || fail "no free port"
mosq_start "listener $AMQP_TRAP_PORT 127.0.0.1" || fail "mosquitto did not start"
CONF=$MAB_TMP/route.conf

# write_conf [BRIDGE LINES]: the rules file; both ports lead to the watcher.
write_conf() {
	cat >"$CONF" <<-EOF
		mqtt = { host = "127.0.0.1"; port = $MQTT_PORT; client_id = "bridge-t17"; };
		amqp = { host = "127.0.0.1"; port = $AMQP_TRAP_PORT; exchange = "telemetry"; };
		bridge = { dot_replacement = "_"; topic_header = true; ${1:-} };
		rules = (
		    { match = "site1/+/temperature"; exchange = "tx.temp"; routing_key = "temp.{1}";
		      headers = { kind = "temperature"; sample-rate = 10; calibrated = true; }; },
		    { match = "site1/+/debug/#"; drop = true; },
		    { match = "site1/+/alarm/#"; exchange = "tx.alarms"; routing_key = "alarm.{1}.{#}";
		      continue = true; },
		    { match = "site1/#"; exchange = "tx.audit"; routing_key = "{topic}";
		      strip_prefix = "site1/"; key_prefix = "audit."; persistent = false; },
		    { match = "site1/+/status"; exchange = "tx.never"; },
		    { match = "lit/+"; routing_key = "x.{{{1}}}"; },
		    { match = "direct/+"; exchange = ""; routing_key = "{1}"; },
		    { match = "\$share/g1/shared/#"; exchange = "tx.shared"; routing_key = "s.{#}";
		      persistent = true; }
		);
	EOF
}

# run ARGS...: the bridge, bounded in time; output in $MAB_TMP/out and err.
run() {
	status=0
	timeout -k 5 20 "$BRIDGE_BIN" "$@" </dev/null >"$MAB_TMP/out" 2>"$MAB_TMP/err" || status=$?
	((status == 0)) ||
		fail "$BRIDGE_BIN $* exited with status $status: $(head -n 5 "$MAB_TMP/err" | tr '\n' '|')"
}

# block TOPIC: the --route output for TOPIC, leading blanks removed.
block() {
	awk -v t="topic '$1':" '
		/^topic / { on = ($0 == t) }
		on { sub(/^[ \t]+/, ""); print }
	' "$MAB_TMP/out"
}

# expect TOPIC LINE...: the block for TOPIC holds these lines, in this order
# (other lines may come between them).
expect() {
	local topic=$1 b want i=0
	shift
	b=$(block "$topic")
	[[ -n $b ]] || fail "--route printed nothing for '$topic'"
	local -a lines wants=("$@")
	mapfile -t lines <<<"$b"
	for want in "${lines[@]}"; do
		((i < ${#wants[@]})) || break
		[[ $want == "${wants[i]}" ]] && i=$((i + 1))
	done
	((i == ${#wants[@]})) ||
		fail "'$topic': expected line '${wants[i]}' (in order) in: $(tr '\n' '|' <<<"$b")"
}

# expect_none TOPIC ERE: no line of the block for TOPIC matches ERE.
expect_none() {
	local b
	b=$(block "$1")
	grep -Eq -- "$2" <<<"$b" && fail "'$1': unexpected /$2/ in: $(tr '\n' '|' <<<"$b")"
	return 0
}

# count TOPIC ERE: how many lines of the block for TOPIC match ERE.
count() {
	block "$1" | grep -Ec -- "$2"
}

write_conf
topics=(site1/dev1/temperature site1/dev.4/temperature site1/dev1/debug/a/b
	site1/dev2/alarm/level/high site1/dev3/status lit/a direct/q1 shared/a/b other/x)
args=()
for t in "${topics[@]}"; do
	args+=(--route "$t")
done
mosq_from=$(mosq_log_lines)
run -c "$CONF" "${args[@]}"
mab_log "--route output: $(wc -l <"$MAB_TMP/out") lines"

# First match wins; static headers, sorted, then x-mqtt-topic.
expect site1/dev1/temperature "rule 1 (line 5, match 'site1/+/temperature')" \
	"exchange: 'tx.temp'" "routing key: 'temp.dev1'" \
	"calibrated = true" 'kind = "temperature"' "sample-rate = 10" \
	'x-mqtt-topic = "site1/dev1/temperature"' "=> 1 copy"
expect_none site1/dev1/temperature "tx\.audit|rule [2-9]"
# A '.' inside a level becomes bridge.dot_replacement.
expect site1/dev.4/temperature "exchange: 'tx.temp'" "routing key: 'temp.dev_4'"
# Drop: no copy at all, though rule 4 would match too.
expect site1/dev1/debug/a/b "rule 2 (line 7, match 'site1/+/debug/#'): drop" "=> 0 copies: dropped"
expect_none site1/dev1/debug/a/b "exchange:|rule [^2]"
# continue: two copies in rule order; rule 4 strips, prefixes and sets transient.
expect site1/dev2/alarm/level/high \
	"rule 3 (line 8, match 'site1/+/alarm/#'), continue" \
	"exchange: 'tx.alarms'" "routing key: 'alarm.dev2.level.high'" \
	"rule 4 (line 10, match 'site1/#')" \
	"exchange: 'tx.audit'" "routing key: 'audit.dev2.alarm.level.high'" \
	"delivery mode: 1 (transient, set by the rule)" "=> 2 copies"
(($(count site1/dev2/alarm/level/high '^exchange:') == 2)) || fail "the fan-out does not list exactly two copies"
# The shadowed rule 5 never applies.
expect site1/dev3/status "rule 4 (line 10, match 'site1/#')" "exchange: 'tx.audit'" \
	"routing key: 'audit.dev3.status'" "=> 1 copy"
expect_none site1/dev3/status "tx\.never|rule 5"
# {{ and }} are literal braces; no exchange given: the main one.
expect lit/a "rule 6 (line 13, match 'lit/+')" "exchange: 'telemetry'" "routing key: 'x.{a}'"
# exchange = "": the default exchange.
expect direct/q1 "rule 7 (line 14, match 'direct/+')" "exchange: '' (the default exchange)" \
	"routing key: 'q1'"
# A shared subscription matches on its filter.
expect shared/a/b "rule 8 (line 15, match '\$share/g1/shared/#')" "exchange: 'tx.shared'" \
	"routing key: 's.a.b'" "delivery mode: 2 (persistent, set by the rule)"
# Unmatched, forwarded (the default policy) with the default translation.
expect other/x "no rule matches: forwarded with the default translation (bridge.unmatched = \"forward\")" \
	"exchange: 'telemetry'" "routing key: 'other.x'" 'x-mqtt-topic = "other/x"'

# unmatched = "drop".
write_conf 'unmatched = "drop";'
run -c "$CONF" --route other/x --route site1/dev1/temperature
expect other/x 'no rule matches: dropped (bridge.unmatched = "drop")'
expect_none other/x "exchange:"
expect site1/dev1/temperature "exchange: 'tx.temp'" "routing key: 'temp.dev1'"

# -t: the compiled rules, and a warning for the shadowed one.
write_conf
run -c "$CONF" -t
for want in "rule 1 (line 5)" "match:         site1/+/temperature" "exchange:      tx.temp" \
	"routing key:   temp.{1}" "action:        drop" "continue:      yes (later rules may match too)" \
	'strip prefix:  "site1/"' 'key prefix:    "audit."' "exchange:      (main exchange)" \
	'exchange:      "" (AMQP default exchange)' "match:         \$share/g1/shared/#" \
	"filter:        shared/# (shared subscription)" "rule 8 (line 15)"; do
	grep -qxF -- "$want" <(sed 's/^ *//' "$MAB_TMP/out") ||
		fail "-t does not list '$want'"
done
# Without mqtt.subscribe: the filters of the rules that do not drop, less
# those another one covers.
grep -qxF "mqtt.subscribe = [\"site1/#\", \"lit/+\", \"direct/+\", \"\$share/g1/shared/#\"]" "$MAB_TMP/out" ||
	fail "-t shows other subscriptions: $(grep 'subscribe' "$MAB_TMP/out" | tr '\n' '|')"
grep -Ei 'shadow|never match' "$MAB_TMP/err" | grep -q "$CONF:12: rule 5 " ||
	fail "-t gives no warning that rule 5 (line 12) is shadowed: $(tr '\n' '|' <"$MAB_TMP/err")"
grep -Eqi 'shadow|never match' <(grep -v 'rule 5 ' "$MAB_TMP/err") &&
	fail "-t calls another rule than 5 shadowed: $(tr '\n' '|' <"$MAB_TMP/err")"

# --downlink-route: each downlink entry's MQTT message for a routing key,
# or why it would be rejected; whether the topology binds the key.
cat >"$CONF" <<-EOF
	mqtt = { host = "127.0.0.1"; port = $MQTT_PORT; client_id = "bridge-t17"; protocol = "5";
	         subscribe = [ "fleet/#" ]; };
	amqp = { host = "127.0.0.1"; port = $AMQP_TRAP_PORT; exchange = "telemetry"; };
	topology = {
	    exchanges = ( { name = "commands"; } );
	    queues = ( { name = "commands"; } );
	    bindings = ( { exchange = "commands"; queue = "commands"; key = "dev.*"; } );
	};
	downlink = (
	    { queue = "commands"; topic = "devices/{2}/commands"; },
	    { queue = "byid"; topic = "x/{header:id}"; qos = 0; retain = "always"; }
	);
EOF
run -c "$CONF" --downlink-route dev.p7 -H id=abc -H colour=red --downlink-route dev
want="routing key 'dev.p7' with the headers given:
  downlink entry 1 (line 10): queue 'commands'
    topology binding (line 7): exchange 'commands', key 'dev.*': takes the key
    => topic 'devices/p7/commands', QoS 1, retain no
    user property: id = 'abc'
    user property: colour = 'red'
  downlink entry 2 (line 11): queue 'byid'
    (the topology binds nothing to this queue: its bindings are RabbitMQ's)
    => topic 'x/abc', QoS 0, retain yes
    user property: id = 'abc'
    user property: colour = 'red'
routing key 'dev' with the headers given:
  downlink entry 1 (line 10): queue 'commands'
    topology binding (line 7): exchange 'commands', key 'dev.*': does not take the key"
got=$(head -n 14 "$MAB_TMP/out")
[[ $got == "$want" ]] ||
	fail "--downlink-route printed: $(diff <(echo "$want") <(echo "$got") | tr '\n' '|')"
grep -q "^    => rejected to the queue's dead-letter exchange: " <(sed -n 15p "$MAB_TMP/out") ||
	fail "--downlink-route did not reject 'dev' for {2}: $(sed -n 15p "$MAB_TMP/out")"
status=0
"$BRIDGE_BIN" -c "$CONF" -d dev -H novalue >/dev/null 2>"$MAB_TMP/err" || status=$?
((status == 2)) && grep -q "expected NAME=VALUE" "$MAB_TMP/err" ||
	fail "-H without '=' gave status $status: $(cat "$MAB_TMP/err")"
mab_log "--downlink-route: as expected"

# Nothing connected to the watcher meanwhile.
if tail -n +"$((mosq_from + 1))" "$MOSQ_LOG" | grep -q 'New connection from'; then
	fail "the bridge connected while only printing: $(tail -n +"$((mosq_from + 1))" "$MOSQ_LOG" | grep 'New connection' | head -n 3 | tr '\n' '|')"
fi
echo "PASS t17: --route and -t without connecting"
