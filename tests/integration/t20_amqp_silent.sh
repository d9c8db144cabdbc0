#!/usr/bin/env bash
# t20_amqp_silent.sh: an AMQP peer that accepts TCP and never says a word
# does not hold the bridge's loop.
#
# mab-silent stands in for RabbitMQ: it accepts the connection and reads
# the protocol header, but never answers.  With amqp.connect_timeout = 60,
# the set-up waits for connection.start for a minute, and meanwhile:
#   1. WATCHDOG=1 keeps coming (WATCHDOG_USEC = 2 s: one a second; no gap
#      reaches the 2 s after which systemd would kill the bridge);
#   2. MQTT is never connected (neither the bridge nor mosquitto says so);
#   3. SIGTERM ends the bridge within 2 s, with status 0.
# Then, with connect_timeout = 2, the deadline ends each attempt with a
# message that names it and what was awaited, and the bridge retries.
set -uo pipefail
# shellcheck source=SCRIPTDIR/../lib/brokers.sh
. "$(dirname "${BASH_SOURCE[0]}")/../lib/brokers.sh"

ID=bridge-t20
WATCH_S=6

mab_init t20
MAB_SILENT=$TOOLS/mab-silent
[[ -x $MAB_SILENT ]] || { echo "t20: $MAB_SILENT is missing (build first)" >&2; exit 77; }
mosq_start || fail "mosquitto did not start"

SILENT_PORT=$(free_port) || fail "no free port"
SILENT_OUT=$MAB_TMP/silent.out
"$MAB_SILENT" -p "$SILENT_PORT" -t 280 >"$SILENT_OUT" 2>"$MAB_TMP/silent.err" &
SILENT_PID=$!
mab_on_exit "mab_kill_pid $SILENT_PID 5"
wait_until 10 grep -q '^listening' "$SILENT_OUT" ||
	fail "mab-silent did not listen on $SILENT_PORT: $(cat "$MAB_TMP/silent.err")"

notify_start notify

# header_seen N: true once connection N sent the 8-byte protocol header.
# shellcheck disable=SC2317  # called through wait_until
header_seen() {
	grep -Eq "^received $1 ([8-9]|[1-9][0-9]+)$" "$SILENT_OUT"
}

RABBIT_PORT=$SILENT_PORT BR_LOG_LEVEL=debug \
	bridge_conf "$MAB_TMP/bridge.conf" "$ID" "connect_timeout = 60;"
NOTIFY_SOCKET=$MAB_TMP/notify.sock WATCHDOG_USEC=2000000 NOWAIT=1 \
	bridge_start "$MAB_TMP/bridge.conf"
wait_until 20 header_seen 1 || fail "the bridge sent no protocol header to the silent peer"
bridge_wait_log 0 'amqp: set-up connecting -> start' 5
mab_log "the bridge waits for connection.start from the silent peer"

# 1. The watchdog.
watchdog_watch "$WATCH_S" "the AMQP set-up waited"

# 2. No MQTT.
bridge_log_has 0 'mqtt: connected' && fail "the bridge connected to MQTT without RabbitMQ"
grep -qF " as $ID " "$MOSQ_LOG" && fail "mosquitto saw a connection from $ID"
bridge_log_has 0 'amqp: cannot connect' &&
	fail "the set-up gave up before amqp.connect_timeout: $(grep 'amqp: cannot' "$BRIDGE_LOG")"

# 3. SIGTERM.
bridge_stop_timed
rc=$?
ms=$STOP_MS
((ms <= 2000)) || fail "the bridge took $ms ms to exit after SIGTERM (bound: 2 s)"
((rc == 0)) || fail "the bridge exited with status $rc after SIGTERM"
mab_log "SIGTERM: exited in $ms ms"

# The deadline: each attempt ends after connect_timeout, named as such.
RABBIT_PORT=$SILENT_PORT bridge_conf "$MAB_TMP/short.conf" "$ID" "connect_timeout = 2;"
from=$(bridge_log_lines)
NOWAIT=1 bridge_start "$MAB_TMP/short.conf"
TIMEOUT_RE='amqp: cannot connect to 127\.0\.0\.1:[0-9]+ .*set-up timed out after 2 s \(amqp\.connect_timeout\) waiting for connection\.start'
bridge_wait_log "$from" "$TIMEOUT_RE" 30
# shellcheck disable=SC2317  # called through wait_until
two_timeouts() {
	(($(bridge_log_since "$from" | grep -cE "$TIMEOUT_RE") >= 2))
}
wait_until 30 two_timeouts || fail "no second attempt ended by the deadline"
mab_log "deadline: $(bridge_log_since "$from" | grep -m 1 -oE 'set-up timed out.*')"
bridge_log_has "$from" 'mqtt: connected' && fail "the bridge connected to MQTT without RabbitMQ"
bridge_stop 10 || fail "the bridge exited with status $? after SIGTERM"

pass "loop served while the set-up waited: SIGTERM in $ms ms, watchdog kept, MQTT untouched"
