#!/usr/bin/env bash
# t27_metrics.sh: /metrics as a real Prometheus sees it.  A private
# Prometheus scrapes the bridge's http_listen every second through a
# 20,000-message run; once the consumer has every message, the query API
# shows the target up and sum(mqtt_amqp_bridge_messages_forwarded_total)
# equal to what the consumer received.  A scrape taken directly passes
# `promtool check metrics` (and the repository's metric-name check, when
# there is one), and its figures agree with the run: received and
# confirm-latency count at least N, nothing dropped or nacked, build_info
# and the process metrics present.  The alerting rules, when the repository
# has them, pass `promtool check rules` and are loaded by the server.
set -uo pipefail
here=$(dirname "${BASH_SOURCE[0]}")
# shellcheck source=SCRIPTDIR/../lib/brokers.sh
. "$here/../lib/brokers.sh"
# shellcheck source=SCRIPTDIR/../lib/http.sh
. "$here/../lib/http.sh"
# shellcheck source=SCRIPTDIR/../lib/prom.sh
. "$here/../lib/prom.sh"

N=20000
# About 10 s at this rate: Prometheus, scraping every second, sees the
# counters move during the run, not only their end.
RATE=2000
ID=bridge-t27
ROOT=$(cd "$here/../.." && pwd)
ALERTS=$ROOT/contrib/prometheus/alerts.yml
DASHBOARD=$ROOT/contrib/grafana/mqtt-amqp-bridge.json
NAMES_CHECK=$ROOT/tests/lib/check-metric-names.py
# Prometheus scrapes every second: a value the bridge has is in the query
# API within a few scrapes.  The margin is for a loaded machine.
PROM_WAIT=30

mab_init t27
prom_require
mosq_start || fail "mosquitto did not start"
sink_setup_main
http_setup
# A downlink too, so that its families are in the scrape the rules are checked against.
BR_TAIL='topology = { queues = ( { name = "commands"; } ); };
downlink = ( { queue = "commands"; topic = "devices/{1}/commands"; } );' \
	bridge_conf "$MAB_TMP/bridge.conf" "$ID"
http_require "$MAB_TMP/bridge.conf"
bridge_start "$MAB_TMP/bridge.conf"
http_wait_code 10 /healthz 200 || fail "/healthz answered $HTTP_CODE, not 200, within 10 s of start"

if [[ -f $ALERTS ]]; then
	out=$("$MAB_PROMTOOL" check rules "$ALERTS" 2>&1) ||
		fail "promtool check rules $ALERTS: $out"
	mab_log "promtool check rules: $(tr '\n' ' ' <<<"$out")"
else
	mab_log "no $ALERTS: rules not checked"
fi

prom_start "127.0.0.1:$HTTP_PORT" || fail "Prometheus did not start"
prom_wait_value "$PROM_WAIT" 'up{job="mqtt-amqp-bridge"}' 1 ||
	fail "Prometheus does not see the bridge up within $PROM_WAIT s (up=${PROM_LAST:-none})"
if [[ -f $ALERTS ]]; then
	# The server refuses to start on rules it cannot load, but say so.
	groups=$(curl -sf --noproxy '*' --max-time 5 "$PROM_URL/api/v1/rules" |
		python3 -c 'import json,sys; print(len(json.load(sys.stdin)["data"]["groups"]))') ||
		fail "cannot read the rules Prometheus loaded"
	((groups > 0)) || fail "Prometheus loaded no rule group from $ALERTS"
	mab_log "Prometheus loaded $groups rule group(s) from $ALERTS"
fi

t0=$SECONDS
pub -n "$N" -T 100 -z 16 -Z 4096 -b 2500:65536 -r "$RATE" -i pub-t27 || fail "mab-pub failed"
sink_expect "sink" -q sink -n "$N" -T 100 -i 30
run_s=$((SECONDS - t0))
received=$(sed -n 's/^received=\([0-9]*\) .*/\1/p' <<<"$SINK_SUMMARY")
[[ -n $received ]] || fail "no received= in the consumer's summary: $SINK_SUMMARY"

prom_wait_value "$PROM_WAIT" 'up{job="mqtt-amqp-bridge"}' 1 ||
	fail "Prometheus does not see the bridge up after the run (up=${PROM_LAST:-none})"
prom_wait_value "$PROM_WAIT" 'sum(mqtt_amqp_bridge_messages_forwarded_total)' "$received" ||
	fail "Prometheus: sum(mqtt_amqp_bridge_messages_forwarded_total) is ${PROM_LAST:-none}" \
		"$PROM_WAIT s after the consumer received $received"
mab_log "Prometheus: up=1, sum(forwarded_total)=$PROM_LAST = received by the consumer"
# For the log only: how the scrapes went during the run (a scrape slower
# than the 1 s scrape timeout on a loaded machine is not the bridge's
# fault, so nothing here is asserted).
window=$((run_s + 10))
mab_log "Prometheus over the last ${window}s:" \
	"scrapes=$(prom_query "count_over_time(up{job=\"mqtt-amqp-bridge\"}[${window}s])" || echo '?')" \
	"min(up)=$(prom_query "min_over_time(up{job=\"mqtt-amqp-bridge\"}[${window}s])" || echo '?')" \
	"forwarded changes=$(prom_query "sum(changes(mqtt_amqp_bridge_messages_forwarded_total[${window}s]))" || echo '?')" \
	"max scrape s=$(prom_query "max_over_time(scrape_duration_seconds{job=\"mqtt-amqp-bridge\"}[${window}s])" || echo '?')"

# A scrape of our own.
SCRAPE=$MAB_TMP/metrics.txt
http_scrape "$SCRAPE"
ctype=$(http_header Content-Type)
[[ $ctype == 'text/plain; version=0.0.4; charset=utf-8' ]] ||
	fail "GET /metrics: Content-Type '$ctype', expected 'text/plain; version=0.0.4; charset=utf-8'"
mab_log "scrape: $(wc -l <"$SCRAPE") lines, $(wc -c <"$SCRAPE") bytes"

out=$("$MAB_PROMTOOL" check metrics <"$SCRAPE" 2>&1)
rc=$?
if ((rc != 0)) || [[ -n $out ]]; then fail "promtool check metrics (status $rc): $out"; fi
mab_log "promtool check metrics: clean"

if [[ -f $NAMES_CHECK ]]; then
	files=()
	for f in "$ALERTS" "$DASHBOARD"; do
		[[ -f $f ]] && files+=("$f")
	done
	out=$(python3 "$NAMES_CHECK" --scrape "$SCRAPE" "${files[@]}" 2>&1) ||
		fail "check-metric-names.py: $out"
	mab_log "check-metric-names.py ${files[*]##*/}: ${out:-ok}"
else
	mab_log "no $NAMES_CHECK: metric names of the rules and dashboard not checked"
fi

# value NAME [LABEL=VALUE]...: metric_value on the scrape; fails the test
# when the series is absent.
value() {
	local v
	v=$(metric_value "$SCRAPE" "$@") || fail "no sample of $* in /metrics"
	echo "$v"
}
# expect_ge NAME MIN [LABEL=VALUE]...
expect_ge() {
	local name=$1 min=$2 v
	shift 2
	v=$(value "$name" "$@") || exit 1
	python3 -c 'import sys; sys.exit(not float(sys.argv[1]) >= float(sys.argv[2]))' "$v" "$min" ||
		fail "$name $* = $v, expected at least $min"
}
# expect_eq NAME VALUE [LABEL=VALUE]...
expect_eq() {
	local name=$1 want=$2 v
	shift 2
	v=$(value "$name" "$@") || exit 1
	python3 -c 'import sys; sys.exit(float(sys.argv[1]) != float(sys.argv[2]))' "$v" "$want" ||
		fail "$name $* = $v, expected $want"
}

expect_ge mqtt_amqp_bridge_messages_received_total "$N"
expect_ge mqtt_amqp_bridge_messages_forwarded_total "$N" exchange=telemetry
for reason in drop_rule unmatched undeliverable; do
	expect_eq mqtt_amqp_bridge_messages_dropped_total 0 reason="$reason"
done
expect_eq mqtt_amqp_bridge_messages_nacked_total 0
expect_ge mqtt_amqp_bridge_confirm_latency_seconds_count "$N"
expect_eq mqtt_amqp_bridge_confirm_latency_seconds_bucket \
	"$(value mqtt_amqp_bridge_confirm_latency_seconds_count)" le=+Inf
expect_ge mqtt_amqp_bridge_puback_hold_seconds_count "$N"
expect_eq mqtt_amqp_bridge_build_info 1
grep -Eq '^mqtt_amqp_bridge_build_info\{([^}]*,)?version="[^"]+"' "$SCRAPE" ||
	fail "build_info has no version label: $(grep '^mqtt_amqp_bridge_build_info' "$SCRAPE")"
expect_ge process_open_fds 1
expect_ge process_resident_memory_bytes 1
expect_eq mqtt_amqp_bridge_up 1 side=mqtt
expect_eq mqtt_amqp_bridge_up 1 side=amqp
expect_eq mqtt_amqp_bridge_in_flight_limit 1000
mab_log "scrape: received_total=$(value mqtt_amqp_bridge_messages_received_total)" \
	"forwarded_total=$(value mqtt_amqp_bridge_messages_forwarded_total)" \
	"confirm_latency_count=$(value mqtt_amqp_bridge_confirm_latency_seconds_count)" \
	"open_fds=$(value process_open_fds) $(grep '^mqtt_amqp_bridge_build_info' "$SCRAPE")"

# The log's stats line counts the same confirmed copies.
bridge_stats || fail "the bridge logged no stats line after SIGUSR1"
http_scrape "$SCRAPE"
[[ $(stats_field forwarded) == "$(value mqtt_amqp_bridge_messages_forwarded_total)" ]] ||
	fail "stats forwarded=$(stats_field forwarded) but /metrics says" \
		"$(value mqtt_amqp_bridge_messages_forwarded_total)"

bridge_stop 30
rc=$?
((rc == 0)) || fail "bridge exited with status $rc after SIGTERM"
expect_nothing_set_aside
pass "$SINK_SUMMARY, Prometheus agrees"
