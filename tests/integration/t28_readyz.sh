#!/usr/bin/env bash
# t28_readyz.sh: /readyz follows RabbitMQ, /healthz follows only the loop.
#
#   1. While forwarding: /healthz 200 "ok", /readyz 200 "ready"; /nope 404;
#      POST /metrics, /healthz, /readyz 405 with "Allow: GET, HEAD"; HEAD
#      /metrics 200 with no body.
#   2. RabbitMQ frozen (SIGSTOP) while messages keep coming: /readyz turns
#      503, naming RabbitMQ, within 15 s, and stays 503 while it is frozen;
#      mqtt_amqp_bridge_ready says 0.  amqp.heartbeat is 60 s, so the
#      connection is not given up within the test: only the bridge's check of
#      the oldest unconfirmed publish (500 ms, see the spec) can flip it, in
#      well under a second; 15 s is the margin for a loaded machine.  The
#      measured time is logged.  Resumed (SIGCONT): 200 again.
#   3. RabbitMQ killed (SIGKILL) while messages keep coming: 503 naming
#      "RabbitMQ 127.0.0.1:PORT is down"; restarted: 200 again.
# /healthz answers 200 at every poll throughout (every 100 ms), and every
# message published arrives: none lost.
set -uo pipefail
here=$(dirname "${BASH_SOURCE[0]}")
# shellcheck source=SCRIPTDIR/../lib/brokers.sh
. "$here/../lib/brokers.sh"
# shellcheck source=SCRIPTDIR/../lib/http.sh
. "$here/../lib/http.sh"
# shellcheck source=SCRIPTDIR/../lib/prom.sh
. "$here/../lib/prom.sh"

ID=bridge-t28
RATE=200
# Each publisher runs about 15 s at RATE: long enough to cover its phase.
N1=3000
N2=3000
FLIP_LIMIT=15
FREEZE_HOLD=3

mab_init t28
command -v curl >/dev/null || { echo "t28: curl is missing (tests/lib/deps.sh)" >&2; exit 77; }
mosq_start || fail "mosquitto did not start"
sink_setup_main
http_setup
BR_HEARTBEAT=60 bridge_conf "$MAB_TMP/bridge.conf" "$ID"
http_require "$MAB_TMP/bridge.conf"
bridge_start "$MAB_TMP/bridge.conf"
mab_on_exit 'kill -CONT "$RABBIT_PID" 2>/dev/null'

HEALTH_POLLS=0

# healthz_ok WHILE: fails the test unless /healthz answers 200 "ok".
healthz_ok() {
	local readyz_code=$HTTP_CODE readyz_body=$HTTP_BODY
	http_request GET /healthz
	[[ $HTTP_CODE == 200 && $HTTP_BODY == ok ]] ||
		fail "/healthz answered $HTTP_CODE '${HTTP_BODY:0:200}' while $1"
	HEALTH_POLLS=$((HEALTH_POLLS + 1))
	HTTP_CODE=$readyz_code HTTP_BODY=$readyz_body
}

# readyz_wait SECONDS CODE ERE WHILE: polls /readyz every 100 ms, and
# /healthz with it, until /readyz answers CODE with a body matching ERE;
# fails the test after SECONDS.  READY_MS: how long it took.
readyz_wait() {
	local limit_ms=$(($1 * 1000)) code=$2 re=$3 what=$4 t0
	t0=$(mab_now_ms)
	for (( ; ; )); do
		mab_alive "$BRIDGE_PID" || fail "the bridge exited while $what"
		http_request GET /readyz
		READY_MS=$(($(mab_now_ms) - t0))
		healthz_ok "$what"
		[[ $HTTP_CODE == "$code" ]] && grep -Eq -- "$re" <<<"$HTTP_BODY" && return 0
		((READY_MS >= limit_ms)) &&
			fail "/readyz answered $HTTP_CODE '${HTTP_BODY:0:300}' $1 s after $what, expected $code /$re/"
		sleep 0.1
	done
}

# The body of a 503: one "not ready: " line per reason.
check_not_ready_body() {
	local bad
	bad=$(grep -v '^not ready: ' <<<"$HTTP_BODY") || true
	[[ -z $bad && -n $HTTP_BODY ]] || fail "/readyz 503 body is not 'not ready: ' lines: $HTTP_BODY"
}

# 1. The endpoints while forwarding.
http_request GET /healthz
[[ $HTTP_CODE == 200 && $HTTP_BODY == ok ]] || fail "/healthz answered $HTTP_CODE '$HTTP_BODY'"
readyz_wait 10 200 '^ready$' "the bridge started"
http_expect GET /nope 404
for path in /metrics /healthz /readyz; do
	http_expect POST "$path" 405
	allow=$(http_header Allow)
	[[ $allow == 'GET, HEAD' ]] || fail "POST $path: 405 with Allow '$allow', expected 'GET, HEAD'"
done
http_expect HEAD /metrics 200
# Nothing may follow the header block of a HEAD answer.
after=$(http_raw 'HEAD /metrics HTTP/1.1\r\nHost: 127.0.0.1\r\nConnection: close\r\n\r\n' |
	python3 -c 'import sys; d = sys.stdin.buffer.read(); i = d.find(b"\r\n\r\n"); print(-1 if i < 0 else len(d) - i - 4)')
[[ $after == 0 ]] || fail "HEAD /metrics: $after bytes after the headers (-1: no end of headers)"
# A GET with a body is refused before the body is read.
code=$(curl -s -o /dev/null -w '%{http_code}' --max-time 10 -X GET --data-binary body \
	"$HTTP_URL/metrics")
[[ $code == 400 ]] || fail "GET /metrics with a body answered $code, expected 400"
mab_log "/healthz 200, /readyz 200, /nope 404, POST 405 with Allow: GET, HEAD, HEAD /metrics 200, GET with a body 400"

# 2. RabbitMQ frozen while messages keep coming.
pub -s 0 -n "$N1" -T 50 -z 32 -Z 512 -r "$RATE" -i pub-t28a >"$MAB_TMP/pub1.out" 2>&1 &
pub_pid=$!
mab_on_exit "mab_kill_pid $pub_pid 5"
bridge_wait_stats 30 forwarded=200 || fail "the bridge did not forward 200 messages within 30 s"
readyz_wait 10 200 '^ready$' "forwarding"
mab_log "forwarding: /readyz 200; SIGSTOP RabbitMQ (pid $RABBIT_PID)"
kill -STOP "$RABBIT_PID" || fail "cannot stop RabbitMQ"
readyz_wait "$FLIP_LIMIT" 503 'RabbitMQ' "RabbitMQ was frozen"
check_not_ready_body
mab_log "/readyz 503 ${READY_MS} ms after SIGSTOP: $(tr '\n' '|' <<<"$HTTP_BODY")"
http_scrape "$MAB_TMP/metrics-frozen.txt"
ready=$(metric_value "$MAB_TMP/metrics-frozen.txt" mqtt_amqp_bridge_ready) ||
	fail "no mqtt_amqp_bridge_ready in /metrics"
[[ $ready == 0 ]] || fail "mqtt_amqp_bridge_ready is $ready while /readyz says 503"
# Still frozen: still not ready, and the loop still turns.
hold_end=$(($(mab_now_ms) + FREEZE_HOLD * 1000))
while (($(mab_now_ms) < hold_end)); do
	http_request GET /readyz
	[[ $HTTP_CODE == 503 ]] || fail "/readyz answered $HTTP_CODE '$HTTP_BODY' while RabbitMQ was still frozen"
	healthz_ok "RabbitMQ was frozen"
	sleep 0.1
done
mab_log "after ${FREEZE_HOLD} s more: $(tr '\n' '|' <<<"$HTTP_BODY")"
kill -CONT "$RABBIT_PID" || fail "cannot resume RabbitMQ"
readyz_wait 30 200 '^ready$' "RabbitMQ was resumed"
mab_log "/readyz 200 ${READY_MS} ms after SIGCONT"
wait "$pub_pid" || fail "mab-pub failed: $(cat "$MAB_TMP/pub1.out")"

# 3. RabbitMQ killed while messages keep coming, then restarted.
pub -s "$N1" -n "$N2" -T 50 -z 32 -Z 512 -r "$RATE" -i pub-t28b >"$MAB_TMP/pub2.out" 2>&1 &
pub_pid=$!
mab_on_exit "mab_kill_pid $pub_pid 5"
sleep 2
port=$RABBIT_PORT
mab_log "SIGKILL RabbitMQ (pid $RABBIT_PID)"
rabbit_kill9 || fail "cannot kill RabbitMQ"
readyz_wait "$FLIP_LIMIT" 503 "RabbitMQ 127\\.0\\.0\\.1:$port is down" "RabbitMQ was killed"
check_not_ready_body
mab_log "/readyz 503 ${READY_MS} ms after SIGKILL: $(tr '\n' '|' <<<"$HTTP_BODY")"
http_scrape "$MAB_TMP/metrics-down.txt"
up=$(metric_value "$MAB_TMP/metrics-down.txt" mqtt_amqp_bridge_up side=amqp) ||
	fail "no mqtt_amqp_bridge_up{side=\"amqp\"} in /metrics"
[[ $up == 0 ]] || fail "mqtt_amqp_bridge_up{side=\"amqp\"} is $up while RabbitMQ is down"
healthz_ok "RabbitMQ was down"
rabbit_restart || fail "RabbitMQ did not restart"
readyz_wait 60 200 '^ready$' "RabbitMQ was restarted"
mab_log "/readyz 200 ${READY_MS} ms after RabbitMQ was up again"
wait "$pub_pid" || fail "mab-pub failed: $(cat "$MAB_TMP/pub2.out")"

sink_expect "sink" -q sink -s 0 -n "$((N1 + N2))" -T 50 -i 30
mab_log "/healthz answered 200 at all $HEALTH_POLLS polls"
bridge_stop 30 || fail "bridge exited with status $? after SIGTERM"
expect_nothing_set_aside
pass "$SINK_SUMMARY"
