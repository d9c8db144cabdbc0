#!/usr/bin/env bash
# t10_notify.sh: the service manager protocol (sd_notify).  With
# NOTIFY_SOCKET pointing at mab-notify and WATCHDOG_USEC=2000000, the
# bridge sends READY=1, a STATUS= line when the sides connect, another when
# mosquitto goes away and again when it is back, WATCHDOG=1 about every
# second, and STOPPING=1 after SIGTERM, then exits 0.  A WATCHDOG_PID that
# names another process turns the pings off.
set -uo pipefail
# shellcheck source=SCRIPTDIR/../lib/brokers.sh
. "$(dirname "${BASH_SOURCE[0]}")/../lib/brokers.sh"

ID=bridge-t10

mab_init t10
mosq_start || fail "mosquitto did not start"
sink_setup_main
bridge_conf "$MAB_TMP/bridge.conf" "$ID"

# count PATTERN: how many lines of $NOTIFY_OUT match the extended regex.
count() {
	grep -cE -- "$1" "$NOTIFY_OUT" || true
}

# seen_after N PATTERN: true once more than N lines match.
# shellcheck disable=SC2317  # called through wait_until
seen_after() {
	(($(count "$2") > $1))
}

# expect_after N PATTERN SECONDS WHAT: fails the test unless a line beyond
# the first N matching PATTERN arrives within SECONDS.
expect_after() {
	wait_until "$3" seen_after "$1" "$2" || {
		echo "----- notifications so far" >&2
		cat "$NOTIFY_OUT" >&2
		fail "no $4 within $3 s"
	}
}

FWD='STATUS=forwarding: MQTT 127\.0\.0\.1:[0-9]+ up, AMQP 127\.0\.0\.1:[0-9]+ up'
MQTT_DOWN='STATUS=waiting for MQTT: MQTT 127\.0\.0\.1:[0-9]+ down'

# 1. Start-up: READY=1, then a status line for each side coming up.
notify_start notify
NOTIFY_SOCKET=$MAB_TMP/notify.sock WATCHDOG_USEC=2000000 bridge_start "$MAB_TMP/bridge.conf"
expect_after 0 '^[0-9.]+ READY=1$' 10 "READY=1"
expect_after 0 "$FWD" 10 "STATUS=forwarding line"
grep -qE 'STATUS=waiting for (RabbitMQ|MQTT)' "$NOTIFY_OUT" ||
	fail "no STATUS= line before both sides were up: $(cat "$NOTIFY_OUT")"
ready_line=$(grep -nE ' READY=1$' "$NOTIFY_OUT" | head -n 1 | cut -d: -f1)
fwd_line=$(grep -nE "$FWD" "$NOTIFY_OUT" | head -n 1 | cut -d: -f1)
((ready_line < fwd_line)) || fail "READY=1 came after the forwarding status"
mab_log "start-up: $(grep -E 'READY|STATUS' "$NOTIFY_OUT" | cut -d' ' -f2- | paste -sd'|')"

# 2. mosquitto goes away, then comes back.
downs=$(count "$MQTT_DOWN")
fwds=$(count "$FWD")
mosq_stop
mab_log "mosquitto stopped"
expect_after "$downs" "$MQTT_DOWN" 15 "STATUS= line for MQTT going down"
mosq_restart || fail "mosquitto did not restart"
mab_log "mosquitto restarted"
expect_after "$fwds" "$FWD" 20 "STATUS=forwarding line after mosquitto came back"
down_line=$(grep -nE "$MQTT_DOWN" "$NOTIFY_OUT" | sed -n "$((downs + 1))p" | cut -d: -f1)
refwd_line=$(grep -nE "$FWD" "$NOTIFY_OUT" | sed -n "$((fwds + 1))p" | cut -d: -f1)
((down_line > fwd_line && refwd_line > down_line)) ||
	fail "status lines out of order: $(cat "$NOTIFY_OUT")"
mab_log "outage: $(sed -n "${down_line},${refwd_line}p" "$NOTIFY_OUT" | grep STATUS= | cut -d' ' -f2- | paste -sd'|')"

# 3. The watchdog: WATCHDOG_USEC=2 s means a ping about every second.
expect_after 2 '^[0-9.]+ WATCHDOG=1$' 10 "third WATCHDOG=1"
mapfile -t pings < <(grep -E ' WATCHDOG=1$' "$NOTIFY_OUT" | cut -d' ' -f1)
# The first ping goes with READY=1; the AMQP connect right after it may
# delay the second one, so only the intervals after that must be regular.
bad=$(printf '%s\n' "${pings[@]}" | awk 'NR > 2 { d = $1 - p; if (d < 0.8 || d > 1.5) printf "%.3f ", d } { p = $1 }')
[[ -z $bad ]] || fail "WATCHDOG=1 intervals outside 0.8..1.5 s: $bad"
mab_log "${#pings[@]} WATCHDOG=1 pings so far, about a second apart"

# 4. SIGTERM: STOPPING=1, exit 0.
bridge_stop 30
rc=$?
((rc == 0)) || fail "bridge exited with status $rc after SIGTERM"
expect_after 0 '^[0-9.]+ STOPPING=1' 5 "STOPPING=1"
grep -E ' STOPPING=1' "$NOTIFY_OUT" | grep -q 'STATUS=stopping' ||
	fail "STOPPING=1 without a stopping status"
last_ready=$(grep -nE ' READY=1$' "$NOTIFY_OUT" | tail -n 1 | cut -d: -f1)
stop_line=$(grep -nE ' STOPPING=1' "$NOTIFY_OUT" | head -n 1 | cut -d: -f1)
((stop_line > last_ready)) || fail "STOPPING=1 before READY=1"
summary="$(count ' READY=1$') READY, $(count 'STATUS=') STATUS, $(count ' WATCHDOG=1$') WATCHDOG, $(count ' STOPPING=1') STOPPING"
mab_kill_pid "$NOTIFY_PID" 5

# 5. WATCHDOG_PID naming another process: notifications, but no pings.
notify_start other
NOTIFY_SOCKET=$MAB_TMP/other.sock WATCHDOG_USEC=2000000 WATCHDOG_PID=1 \
	bridge_start "$MAB_TMP/bridge.conf"
expect_after 0 ' READY=1$' 10 "READY=1 (WATCHDOG_PID=1)"
sleep 3
(($(count ' WATCHDOG=1$') == 0)) || fail "WATCHDOG=1 sent although WATCHDOG_PID names another process"
bridge_stop 30
rc=$?
((rc == 0)) || fail "bridge exited with status $rc after SIGTERM (WATCHDOG_PID=1)"
mab_kill_pid "$NOTIFY_PID" 5

pass "$summary"
