#!/usr/bin/env bash
# t21_amqp_frozen.sh: RabbitMQ frozen (SIGSTOP) while the bridge declares a
# topology of 100 queues and 100 bindings does not hold the bridge's loop.
#
# The bridge (amqp.connect_timeout = 60) logs at debug level when its
# declarations start; RabbitMQ is frozen then, and the freeze counts only if
# the bridge had not finished declaring (otherwise the attempt is repeated
# in a fresh vhost).  While RabbitMQ is frozen:
#   1. WATCHDOG=1 keeps coming (WATCHDOG_USEC = 2 s: one a second; no gap
#      reaches the 2 s after which systemd would kill the bridge);
#   2. MQTT is never connected (neither the bridge nor mosquitto says so).
# Resumed, RabbitMQ answers the rest, the bridge forwards, and 500 QoS 1
# messages arrive with none lost.  A second bridge, frozen the same way in
# another vhost, ends within 2 s of SIGTERM, with status 0.
set -uo pipefail
# shellcheck source=SCRIPTDIR/../lib/brokers.sh
. "$(dirname "${BASH_SOURCE[0]}")/../lib/brokers.sh"

ID=bridge-t21
WATCH_S=6
N=500

mab_init t21
mosq_start || fail "mosquitto did not start"
mab_on_exit 'kill -CONT "$RABBIT_PID" 2>/dev/null'

# 100 quorum queues (each declaration takes RabbitMQ a while, so that the
# set-up is still declaring when the test sees it start), each bound to the
# bridge's exchange; q000 takes the test's messages.
TOPOLOGY=$(
	echo 'topology = {'
	echo '    queues = ('
	for ((i = 0; i < 100; i++)); do
		printf '        { name = "t21.q%03d"; arguments = { x-queue-type = "quorum"; }; }%s\n' \
			"$i" "$( ((i < 99)) && echo ,)"
	done
	echo '    );'
	echo '    bindings = ('
	for ((i = 0; i < 100; i++)); do
		key="other.$i.#"
		((i == 0)) && key="fleet.#"
		printf '        { exchange = "telemetry"; queue = "t21.q%03d"; key = "%s"; }%s\n' \
			"$i" "$key" "$( ((i < 99)) && echo ,)"
	done
	echo '    );'
	echo '};'
)

# frozen_start NAME: starts a bridge (log $MAB_TMP/NAME.log, notifications
# to NAME.sock) on a fresh vhost and freezes RabbitMQ once the bridge
# starts declaring; repeats, up to 3 times, if the bridge had finished
# before the freeze.  Sets BRIDGE_PID and BRIDGE_LOG.
frozen_start() {
	local name=$1 try from
	for try in 1 2 3; do
		MAB_VHOST=$name.$try
		new_vhost "$MAB_VHOST" || fail "cannot create vhost $MAB_VHOST"
		BR_LOG_LEVEL=debug BR_TAIL=$TOPOLOGY bridge_conf "$MAB_TMP/$name.conf" "$ID" \
			"connect_timeout = 60;"
		BRIDGE_LOG=$MAB_TMP/$name.log
		from=$(if [[ -f $BRIDGE_LOG ]]; then bridge_log_lines; else echo 0; fi)
		NOTIFY_SOCKET=$MAB_TMP/$name.sock WATCHDOG_USEC=2000000 NOWAIT=1 \
			bridge_start "$MAB_TMP/$name.conf"
		bridge_wait_log "$from" 'amqp: set-up confirm -> declare' 60
		kill -STOP "$RABBIT_PID" || fail "cannot freeze RabbitMQ"
		if ! bridge_log_has "$from" 'amqp: (declared|connected)'; then
			mab_log "$name: RabbitMQ frozen while the bridge declares (vhost $MAB_VHOST)"
			return 0
		fi
		mab_log "$name: the bridge finished declaring before the freeze; again"
		kill -CONT "$RABBIT_PID"
		bridge_stop 30 || fail "$name: bridge exited with status $? after SIGTERM"
	done
	fail "$name: the bridge finished declaring before every freeze"
}

# 1 and 2: watchdog and MQTT while frozen; then resumed, forwarding.
notify_start first
frozen_start first
watchdog_watch "$WATCH_S" "RabbitMQ was frozen"
bridge_log_has 0 'mqtt: connected' && fail "the bridge connected to MQTT during the set-up"
grep -qF " as $ID " "$MOSQ_LOG" && fail "mosquitto saw a connection from $ID during the set-up"
bridge_log_has 0 'amqp: cannot connect' && fail "the set-up failed: $(grep 'amqp: cannot' "$BRIDGE_LOG")"

kill -CONT "$RABBIT_PID" || fail "cannot resume RabbitMQ"
mab_log "RabbitMQ resumed"
bridge_wait_forwarding 0 60
bridge_log_has 0 'amqp: declared 0 exchange\(s\), 100 queue\(s\), 100 binding\(s\)' ||
	fail "the bridge did not log the 100 queues and 100 bindings"
pub -n "$N" -T 5 -z 64 -i pub-t21 -w 30 >"$MAB_TMP/pub.out" 2>&1 ||
	fail "mab-pub failed: $(cat "$MAB_TMP/pub.out")"
sink_expect "after the freeze" -q t21.q000 -n "$N" -T 5 -i 30
bridge_stop 30 || fail "bridge exited with status $? after SIGTERM"
expect_nothing_set_aside

# 3. SIGTERM while frozen.
notify_start second
frozen_start second
bridge_stop_timed
rc=$?
ms=$STOP_MS
((ms <= 2000)) || fail "the bridge took $ms ms to exit after SIGTERM (bound: 2 s)"
((rc == 0)) || fail "the bridge exited with status $rc after SIGTERM"
kill -CONT "$RABBIT_PID" || fail "cannot resume RabbitMQ"
mab_log "SIGTERM with RabbitMQ frozen: exited in $ms ms"

pass "frozen mid-declaration: watchdog kept, MQTT untouched, $N delivered after; SIGTERM in $ms ms"
