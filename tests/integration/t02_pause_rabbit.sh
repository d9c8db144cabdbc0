#!/usr/bin/env bash
# t02_pause_rabbit.sh: RabbitMQ frozen (SIGSTOP) while messages arrive.  The
# bridge reads some of them but must acknowledge none to the MQTT broker,
# since RabbitMQ confirmed none.  The bridge is then killed, RabbitMQ thawed
# and the bridge restarted: every message arrives.
set -uo pipefail
# shellcheck source=SCRIPTDIR/../lib/brokers.sh
. "$(dirname "${BASH_SOURCE[0]}")/../lib/brokers.sh"

N=2000
ID=bridge-t02
PAUSE=5

mab_init t02
mosq_start || fail "mosquitto did not start"
sink_setup_main
bridge_conf "$MAB_TMP/bridge.conf" "$ID"
bridge_start "$MAB_TMP/bridge.conf"

# A few messages through first, so that the path is known to work.
pub -s 0 -n 10 -i pub-t02a >/dev/null || fail "mab-pub (warm-up) failed"
sink_expect "warm-up" -q sink -s 0 -n 10 -i 20
# A consumer can see a persistent message before RabbitMQ confirms it, so
# the warm-up's PUBACKs may still be on their way: wait for all of them.
deadline=$((SECONDS + 20))
while (($(mosq_pubacks_from "$ID" 0) < 10)); do
	((SECONDS < deadline)) || fail "the warm-up messages were not acknowledged to MQTT"
	sleep 0.1
done

from=$(mosq_log_lines)
mab_log "SIGSTOP RabbitMQ (pid $RABBIT_PID)"
kill -STOP "$RABBIT_PID" || fail "cannot stop RabbitMQ"
mab_on_exit "kill -CONT $RABBIT_PID 2>/dev/null"
pub -s 10 -n "$N" -T 50 -z 32 -Z 512 -i pub-t02b >/dev/null ||
	fail "mab-pub failed while RabbitMQ was stopped"
sleep "$PAUSE"
sent=$(mosq_sends_to "$ID" "$from")
acked=$(mosq_pubacks_from "$ID" "$from")
mab_log "while RabbitMQ was stopped: broker sent $sent PUBLISH to the bridge, received $acked PUBACK"
((sent > 0)) || fail "the broker sent the bridge nothing while RabbitMQ was stopped"
((acked == 0)) || fail "the bridge acknowledged $acked message(s) that RabbitMQ never confirmed"

bridge_kill9
kill -CONT "$RABBIT_PID" || fail "cannot resume RabbitMQ"
mab_log "bridge killed, RabbitMQ resumed"
bridge_start "$MAB_TMP/bridge.conf"
sink_expect "after restart" -q sink -s 10 -n "$N" -T 50 -i 30
bridge_stop 30 || fail "bridge exited with status $? after SIGTERM"
expect_nothing_set_aside
pass "$SINK_SUMMARY"
