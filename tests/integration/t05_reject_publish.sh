#!/usr/bin/env bash
# t05_reject_publish.sh: the queue refuses messages (max-length with
# overflow reject-publish, so RabbitMQ answers basic.nack).  The bridge must
# acknowledge to MQTT no more messages than the queue accepted, keep the
# rest with the MQTT broker, and deliver them all once the limit is lifted.
set -uo pipefail
# shellcheck source=SCRIPTDIR/../lib/brokers.sh
. "$(dirname "${BASH_SOURCE[0]}")/../lib/brokers.sh"

N=2000
LIMIT=500
ID=bridge-t05

mab_init t05
mosq_start || fail "mosquitto did not start"
sink_setup_main
rmqctl -q set_policy -p "$MAB_VHOST" --apply-to queues limit '^sink$' \
	"{\"max-length\":$LIMIT,\"overflow\":\"reject-publish\"}" >/dev/null ||
	fail "cannot set the policy"
# shellcheck disable=SC2317  # called through wait_until
policy_applied() {
	rmqctl -q list_queues -p "$MAB_VHOST" --no-table-headers name policy 2>/dev/null |
		grep -q '^sink[[:space:]]*limit'
}
wait_until 30 policy_applied || fail "the policy was not applied to the queue"

bridge_conf "$MAB_TMP/bridge.conf" "$ID"
bridge_start "$MAB_TMP/bridge.conf"
from=$(mosq_log_lines)
pub -n "$N" -T 20 -z 64 -i pub-t05 >/dev/null || fail "mab-pub failed"

# shellcheck disable=SC2317  # called through wait_until
queue_full() { [[ $(rabbit_queue_depth "$MAB_VHOST" sink) == "$LIMIT" ]]; }
wait_until 60 queue_full || fail "queue depth $(rabbit_queue_depth "$MAB_VHOST" sink), expected $LIMIT"
# Let the bridge meet the refusal a few times (it reconnects with backoff).
sleep 4
kill -USR1 "$BRIDGE_PID"
sleep 0.5
nacked=$(stats_field nacked)
acked=$(mosq_pubacks_from "$ID" "$from")
depth=$(rabbit_queue_depth "$MAB_VHOST" sink)
mab_log "while refused: queue depth $depth, PUBACKs from the bridge $acked, nacked=${nacked:-?}"
((${nacked:-0} > 0)) || fail "the bridge counted no basic.nack"
((acked <= LIMIT)) || fail "the bridge acknowledged $acked messages to MQTT, the queue accepted only $LIMIT"
((acked < N)) || fail "every message was acknowledged to MQTT although most were refused"

rmqctl -q clear_policy -p "$MAB_VHOST" limit >/dev/null || fail "cannot clear the policy"
mab_log "policy cleared"
sink_expect "sink" -q sink -n "$N" -T 20 -i 30
bridge_stop 30 || fail "bridge exited with status $? after SIGTERM"
mab_log "bridge: $(grep 'stats: ' "$BRIDGE_LOG" | tail -n 1)"
expect_nothing_set_aside
pass "$SINK_SUMMARY"
