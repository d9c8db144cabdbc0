#!/usr/bin/env bash
# bigmsg.sh: the memory one large message costs the bridge.
#
# Starts its own RabbitMQ and mosquitto on 127.0.0.1 (tests/lib/brokers.sh)
# and, for each size in BENCH_BIG_SIZES (MiB, default "1 10 100"), starts a
# fresh bridge, publishes one QoS 1 message of that size with
# mosquitto_pub, waits until it is in a queue bound to the bridge's
# exchange, and reads the bridge's peak resident memory (VmHWM) before and
# after.  Prints a table: size, peak, peak less the idle bridge, and that
# as a multiple of the size.  Fails only if the message does not arrive.
#
# Environment: BUILD_DIR (default <repository>/build, or the repository
# when the bridge was built there), BENCH_BIG_SIZES, BENCH_TIMEOUT (seconds
# for each step, default 120).
set -uo pipefail

here=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
root=$(cd "$here/.." && pwd)
if [[ -z ${BUILD_DIR:-} ]]; then
	BUILD_DIR=$root/build
	[[ -x $BUILD_DIR/mqtt-amqp-bridge ]] || BUILD_DIR=$root
fi
export BUILD_DIR
# shellcheck source=SCRIPTDIR/../tests/lib/brokers.sh
. "$root/tests/lib/brokers.sh"

SIZES=${BENCH_BIG_SIZES:-1 10 100}
LIMIT=${BENCH_TIMEOUT:-120}

hwm_kib() {
	sed -n 's/^VmHWM:[[:space:]]*\([0-9]*\) kB/\1/p' "/proc/$1/status"
}

mab_init bigmsg
mosq_start || fail "mosquitto did not start"
sink_setup_main big 'big.#'
export BR_SUBSCRIBE='"big/#"'

rows=()
for mib in $SIZES; do
	bytes=$((mib * 1048576))
	head -c "$bytes" /dev/zero | tr '\0' m >"$MAB_TMP/payload"
	bridge_conf "$MAB_TMP/bridge.conf" "bench-big-$mib"
	bridge_start "$MAB_TMP/bridge.conf"
	idle=$(hwm_kib "$BRIDGE_PID")
	timeout "$LIMIT" mosquitto_pub -h 127.0.0.1 -p "$MQTT_PORT" -q 1 -i "bench-big-pub-$mib" \
		-t "big/$mib" -f "$MAB_TMP/payload" || fail "mosquitto_pub of $mib MiB failed"
	# shellcheck disable=SC2317  # called through wait_until
	arrived() { [[ $(rabbit_queue_depth "$MAB_VHOST" big) == 1 ]]; }
	wait_until "$LIMIT" arrived || fail "the $mib MiB message did not arrive"
	peak=$(hwm_kib "$BRIDGE_PID")
	bridge_stop 30 || fail "bridge exited with status $? after SIGTERM"
	sink setup -q big --purge >/dev/null || fail "cannot purge the queue"
	extra=$((peak - idle))
	rows+=("$(awk -v m="$mib" -v p="$peak" -v e="$extra" -v b="$bytes" 'BEGIN {
		printf "| %4d MiB | %11.1f MiB | %8.1f MiB | %6.2f |", m, p / 1024, e / 1024, e * 1024 / b }')")
	mab_log "$mib MiB: idle VmHWM $idle kB, peak $peak kB"
done

echo
echo "| message  | bridge peak RSS | above idle   | x size |"
echo "|----------|-----------------|--------------|--------|"
printf '%s\n' "${rows[@]}"
