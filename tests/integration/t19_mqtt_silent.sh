#!/usr/bin/env bash
# t19_mqtt_silent.sh: an MQTT broker that stops answering is named as such.
#   1. mosquitto frozen (SIGSTOP) before the bridge starts: the kernel still
#      accepts the TCP connection, CONNACK never comes, and each attempt
#      ends after mqtt.connect_timeout with "no CONNACK within 2 s";
#      resumed, the bridge connects and forwards.
#   2. mosquitto frozen while the bridge is connected: the keepalive ends
#      the connection with "keepalive timeout" (not libmosquitto's
#      "Unknown error"); resumed, nothing published meanwhile is lost.
#   3. The same silent broker with mqtt.connect_timeout = 60: while the
#      bridge waits for CONNACK its loop keeps turning (WATCHDOG=1 every
#      half period, WATCHDOG_USEC=2 s), and SIGTERM ends it within 2 s.
#   4. Both brokers by host name ("localhost"): the names are looked up
#      without blocking, and the bridge forwards.
# mqtt_reconnects counts every connection the broker accepted after the
# first: one less than the bridge logged.
set -uo pipefail
# shellcheck source=SCRIPTDIR/../lib/brokers.sh
. "$(dirname "${BASH_SOURCE[0]}")/../lib/brokers.sh"

ID=bridge-t19

mab_init t19
mosq_start || fail "mosquitto did not start"
[[ -n ${MOSQ_PID:-} ]] || fail "mosquitto's PID is unknown"
sink_setup_main
BR_KEEPALIVE=5 BR_BRIDGE='' bridge_conf "$MAB_TMP/bridge.conf" "$ID"
sed -i 's/^\( *\)keepalive = 5;/&\n\1connect_timeout = 2;/' "$MAB_TMP/bridge.conf"
grep -q 'connect_timeout = 2;' "$MAB_TMP/bridge.conf" || fail "cannot set mqtt.connect_timeout"
mab_on_exit "kill -CONT $MOSQ_PID 2>/dev/null"

# 1. No CONNACK.
kill -STOP "$MOSQ_PID" || fail "cannot freeze mosquitto"
from=0
NOWAIT=1 bridge_start "$MAB_TMP/bridge.conf"
bridge_wait_log "$from" 'mqtt: connecting to 127\.0\.0\.1:[0-9]+ failed: no CONNACK within 2 s \(mqtt\.connect_timeout\)' 30
bridge_wait_log "$from" 'mqtt: reconnecting to' 30
kill -CONT "$MOSQ_PID" || fail "cannot resume mosquitto"
bridge_wait_forwarding 0 60
mab_log "part 1: no CONNACK named, then forwarding"
mfrom=$(mosq_log_lines)
pub -s 0 -n 500 -T 5 -z 64 -i pub-t19a >/dev/null || fail "mab-pub failed"
sink_expect "after the frozen start" -q sink -s 0 -n 500 -T 5 -i 30
# Frozen with PUBACKs unread, the broker would deliver those again.
# shellcheck disable=SC2317  # called through wait_until
all_acked() { (($(mosq_pubacks_from "$ID" "$mfrom") >= 500)); }
wait_until 30 all_acked || fail "the broker did not log the 500 PUBACKs"

# 2. The broker goes silent under a connected bridge.
from=$(bridge_log_lines)
kill -STOP "$MOSQ_PID" || fail "cannot freeze mosquitto"
bridge_wait_log "$from" 'mqtt: connection to 127\.0\.0\.1:[0-9]+ lost: keepalive timeout' 60
! bridge_log_has "$from" 'Unknown error' || fail "a failure was logged as 'Unknown error'"
kill -CONT "$MOSQ_PID" || fail "cannot resume mosquitto"
bridge_wait_forwarding "$(bridge_log_since 0 | head -n "$from" | grep -c 'bridge: forwarding')" 60
pub -s 500 -n 500 -T 5 -z 64 -i pub-t19b >/dev/null || fail "mab-pub failed"
sink_expect "after the silent broker" -q sink -s 500 -n 500 -T 5 -i 30
bridge_stop 30 || fail "bridge exited with status $? after SIGTERM"
mab_log "bridge: $(grep 'stats: ' "$BRIDGE_LOG" | tail -n 1)"
# At least one reconnect after the keepalive timeout; stale connections a
# resumed mosquitto still finds in its backlog may take the session over
# and add more, and every one counts.
connected=$(grep -c 'mqtt: connected to' "$BRIDGE_LOG")
r=$(stats_field mqtt_reconnects)
((r >= 1 && r == connected - 1)) ||
	fail "mqtt_reconnects=$r, but the bridge logged $connected connections"

# 3. A silent broker and a long connect_timeout: nothing waits on it.
sed 's/connect_timeout = 2;/connect_timeout = 60;/' "$MAB_TMP/bridge.conf" >"$MAB_TMP/bridge60.conf"
grep -q 'connect_timeout = 60;' "$MAB_TMP/bridge60.conf" || fail "cannot set mqtt.connect_timeout"
notify_start notify
kill -STOP "$MOSQ_PID" || fail "cannot freeze mosquitto"
from=$(bridge_log_lines)
NOTIFY_SOCKET=$MAB_TMP/notify.sock WATCHDOG_USEC=2000000 NOWAIT=1 bridge_start "$MAB_TMP/bridge60.conf"
bridge_wait_log "$from" 'amqp: connected' 30
# The attempt starts once AMQP is up; the broker accepts TCP and stays silent.
sleep 1
watchdog_watch 6 "waiting for CONNACK"
! bridge_log_has "$from" 'mqtt: connected to' || fail "the frozen broker answered"
bridge_stop_timed
rc=$?
((rc == 0)) || fail "bridge exited with status $rc after SIGTERM"
((STOP_MS <= 2000)) || fail "SIGTERM took $STOP_MS ms while waiting for CONNACK"
kill -CONT "$MOSQ_PID" || fail "cannot resume mosquitto"
mab_log "part 3: WATCHDOG=1 kept coming while waiting for CONNACK; SIGTERM took $STOP_MS ms"

# 4. Host names on both sides: looked up without blocking the loop.
sed 's/host = "127\.0\.0\.1";/host = "localhost";/' "$MAB_TMP/bridge.conf" >"$MAB_TMP/bridge-name.conf"
(($(grep -c 'host = "localhost";' "$MAB_TMP/bridge-name.conf") == 2)) || fail "cannot set the host names"
bridge_start "$MAB_TMP/bridge-name.conf"
pub -s 1000 -n 200 -T 5 -z 64 -i pub-t19d >/dev/null || fail "mab-pub failed"
sink_expect "by host name" -q sink -s 1000 -n 200 -T 5 -i 30
bridge_stop 30 || fail "bridge exited with status $? after SIGTERM"
pass "no CONNACK and keepalive timeout named; 1,200 delivered; a silent broker holds nothing"
