#!/usr/bin/env bash
# t26_reload_connecting.sh: a reload while the AMQP set-up waits on a
# broker that never answers.  The set-up must not keep the settings the
# reload frees: it starts again with the new ones (a second connection to
# the silent peer), times out (amqp.connect_timeout), the bridge moves on
# to the next address of amqp.hosts, the real RabbitMQ, and forwards.
# Under the sanitizer build a read of the freed settings aborts the bridge.
set -uo pipefail
# shellcheck source=SCRIPTDIR/../lib/brokers.sh
. "$(dirname "${BASH_SOURCE[0]}")/../lib/brokers.sh"

N=1000
ID=bridge-t26

mab_init t26
MAB_SILENT=$TOOLS/mab-silent
[[ -x $MAB_SILENT ]] || { echo "t26: $MAB_SILENT is missing (build first)" >&2; exit 77; }
mosq_start || fail "mosquitto did not start"
sink_setup_main

SILENT_PORT=$(free_port) || fail "no free port"
SILENT_OUT=$MAB_TMP/silent.out
"$MAB_SILENT" -p "$SILENT_PORT" -t 280 >"$SILENT_OUT" 2>"$MAB_TMP/silent.err" &
SILENT_PID=$!
mab_on_exit "mab_kill_pid $SILENT_PID 5"
wait_until 10 grep -q '^listening' "$SILENT_OUT" ||
	fail "mab-silent did not listen on $SILENT_PORT: $(cat "$MAB_TMP/silent.err")"

# write_conf LEVEL: the silent peer first, RabbitMQ second.
write_conf() {
	BR_LOG_LEVEL=$1 bridge_conf "$MAB_TMP/bridge.conf" "$ID" 'connect_timeout = 3;' \
		'hosts_order = "round_robin";'
	sed -i -e "/^amqp = {\$/,/^};\$/{s/^    host = \"127.0.0.1\";\$/    hosts = [ \"127.0.0.1:$SILENT_PORT\", \"127.0.0.1:$RABBIT_PORT\" ];/;/^    port = $RABBIT_PORT;\$/d}" \
		"$MAB_TMP/bridge.conf"
	grep -q "hosts = \[ \"127.0.0.1:$SILENT_PORT\"" "$MAB_TMP/bridge.conf" ||
		fail "could not write amqp.hosts: $(cat "$MAB_TMP/bridge.conf")"
}
write_conf info
NOWAIT=1 bridge_start "$MAB_TMP/bridge.conf"
# The protocol header reached the silent peer: the set-up waits for connection.start.
wait_until 30 grep -q '^received 1 8$' "$SILENT_OUT" ||
	fail "the bridge did not start its set-up on the silent peer: $(cat "$SILENT_OUT")"
from=$(bridge_log_lines)
write_conf debug
kill -HUP "$BRIDGE_PID"
bridge_wait_log "$from" "bridge: reloaded .*bridge settings changed" 30
# The set-up started again with the reloaded settings.
wait_until 30 grep -q '^accepted 2$' "$SILENT_OUT" ||
	fail "the set-up did not start again after the reload: $(cat "$SILENT_OUT")"
bridge_wait_log "$from" "amqp: cannot connect to 127\\.0\\.0\\.1:$SILENT_PORT .*timed out after 3 s" 30
bridge_wait_log "$from" "amqp: connected to 127\\.0\\.0\\.1:$RABBIT_PORT .*address 2 of 2" 30
bridge_wait_forwarding 0 30

pub -n "$N" -i pub-t26 >"$MAB_TMP/pub.out" 2>&1 || fail "mab-pub failed: $(cat "$MAB_TMP/pub.out")"
sink_expect "sink" -q sink -n "$N" -i 10
bridge_stop 30 || fail "bridge exited with status $? after SIGTERM"
expect_nothing_set_aside
pass "$SINK_SUMMARY"
