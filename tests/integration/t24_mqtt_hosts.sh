#!/usr/bin/env bash
# t24_mqtt_hosts.sh: mqtt.hosts with two separate mosquittos, "primary"
# order.  The primary is stopped (SIGTERM: it saves its persistence file)
# while a publisher is sending to it: the bridge moves to the standby and
# forwards what is published there; the primary is restarted, the
# bridge returns to it and its persistent session there delivers what was
# queued meanwhile.  0 lost on either broker.
set -uo pipefail
# shellcheck source=SCRIPTDIR/../lib/brokers.sh
. "$(dirname "${BASH_SOURCE[0]}")/../lib/brokers.sh"

NA=12000    # to the primary, across its stop and restart
NB=4000     # to the standby, while the bridge is there
NC=2000     # to the primary once restarted, at once: queued while the bridge is away
ID=bridge-t24

mab_init t24
mosq_start || fail "primary mosquitto did not start"
P_PORT=$MQTT_PORT P_PID=$MOSQ_PID P_DIR=$MOSQ_DIR P_LOG=$MOSQ_LOG
mosq_start || fail "standby mosquitto did not start"
S_PORT=$MQTT_PORT
# mosq_stop and mosq_restart act on the primary from here on.
MQTT_PORT=$P_PORT MOSQ_PID=$P_PID MOSQ_DIR=$P_DIR MOSQ_LOG=$P_LOG

sink setup -q qa -x telemetry --declare-exchange -k 'fleet.a.#' || fail "cannot set up qa"
sink setup -q qb -x telemetry -k 'fleet.b.#' || fail "cannot set up qb"
bridge_conf "$MAB_TMP/bridge.conf" "$ID"
# The one-broker form becomes the list: the first "host" line is the mqtt group's.
sed -i -e "0,/^    host = \"127.0.0.1\";\$/s//    hosts = [ \"127.0.0.1:$P_PORT\", \"127.0.0.1:$S_PORT\" ];\n    primary_retry = 3;/" \
	-e "/^    port = $P_PORT;\$/d" "$MAB_TMP/bridge.conf"
grep -q "hosts = \[ \"127.0.0.1:$P_PORT\", \"127.0.0.1:$S_PORT\" \];" "$MAB_TMP/bridge.conf" ||
	fail "could not write mqtt.hosts: $(cat "$MAB_TMP/bridge.conf")"
"$BRIDGE_BIN" -t -c "$MAB_TMP/bridge.conf" >"$MAB_TMP/check.out" 2>&1 ||
	fail "-t refused the configuration: $(cat "$MAB_TMP/check.out")"
bridge_start "$MAB_TMP/bridge.conf"
bridge_log_has 0 "mqtt: connected to 127\.0\.0\.1:$P_PORT " || fail "the bridge did not start on the primary"

"$MAB_PUB" -p "$P_PORT" -n "$NA" -r 2000 -t 'fleet/a/dev%d' -T 10 -z 16 -Z 256 -i pub-t24a \
	>"$MAB_TMP/puba.out" 2>&1 &
puba=$!
mab_on_exit "mab_kill_pid $puba 5"
sleep 2
mab_log "SIGTERM the primary (pid $MOSQ_PID) under load"
from=$(bridge_log_lines)
mosq_stop
bridge_wait_log "$from" "mqtt: connected to 127\.0\.0\.1:$S_PORT as '$ID' \(session new; address 2 of 2\)" 60
mab_log "bridge on the standby"

"$MAB_PUB" -p "$S_PORT" -n "$NB" -s "$((NA + NC))" -r 2000 -t 'fleet/b/dev%d' -T 10 -z 16 -Z 256 \
	-i pub-t24b >"$MAB_TMP/pubb.out" 2>&1 || fail "publishing to the standby failed: $(cat "$MAB_TMP/pubb.out")"
# The standby's messages are all in RabbitMQ before the primary returns:
# once the bridge leaves, what the standby still queued would wait there.
qb_full() { [[ $(queue_ready qb) -ge $NB ]]; }
wait_until 60 qb_full || fail "qb holds $(queue_ready qb) of $NB messages after 60 s"

mab_log "restarting the primary"
from=$(bridge_log_lines)
mosq_restart || fail "the primary did not restart"
"$MAB_PUB" -p "$P_PORT" -n "$NC" -s "$NA" -t 'fleet/a/dev%d' -T 10 -z 16 -Z 256 \
	-i pub-t24c >"$MAB_TMP/pubc.out" 2>&1 || fail "publishing to the restarted primary failed: $(cat "$MAB_TMP/pubc.out")"
# Whether the session held them while the bridge was away depends on
# timing (mqtt.primary_retry is 3 s): reported, not asserted.
if bridge_log_has "$from" "answers again"; then
	mab_log "the bridge was back before the $NC messages were all published"
else
	mab_log "the $NC messages were published while the bridge was on the standby"
fi
bridge_wait_log "$from" "mqtt: 127\.0\.0\.1:$P_PORT \(the first address\) answers again" 60
bridge_wait_log "$from" "mqtt: connected to 127\.0\.0\.1:$P_PORT as '$ID' \(session resumed; address 1 of 2\)" 60
mab_log "bridge back on the primary"
wait "$puba" || fail "publishing to the primary failed: $(cat "$MAB_TMP/puba.out")"

sink_expect "qa" -q qa -s 0 -n "$((NA + NC))" -t 'fleet/a/dev%d' -T 10 -i 10
sum_a=$SINK_SUMMARY
sink_expect "qb" -q qb -s "$((NA + NC))" -n "$NB" -t 'fleet/b/dev%d' -T 10 -i 10
bridge_stop 30 || fail "bridge exited with status $? after SIGTERM"
expect_nothing_set_aside
pass "primary: $sum_a; standby: $SINK_SUMMARY"
