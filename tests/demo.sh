#!/usr/bin/env bash
# demo.sh: builds the bridge, starts throwaway mosquitto and RabbitMQ
# brokers on 127.0.0.1, runs the bridge with the sample configuration
# (etc/mqtt-amqp-bridge.conf, pointed at those brokers) and shows one
# message go through: MQTT sensors/temperature/room1 "22.5" arrives in
# RabbitMQ with routing key sensors.temperature.room1.  Everything it
# started is stopped when it ends.
set -euo pipefail

root=$(cd "$(dirname "$0")/.." && pwd)
cd "$root"
tests/lib/deps.sh
if [[ ! -f build/Makefile ]]; then
	autoreconf -fi
	mkdir -p build
	(cd build && ../configure >/dev/null)
fi
# Always: a build left from an older checkout would not read today's sample.
make -C build -j2 mqtt-amqp-bridge tests/tools/mab-sink >/dev/null

# shellcheck source=tests/lib/brokers.sh
source tests/lib/brokers.sh
mab_tmp
mab_trap
rabbit_start
MAB_VHOST=/
mosq_start

conf=$MAB_TMP/mqtt-amqp-bridge.conf
# The sample's ports (set or commented out) become the throwaway brokers'.
sed -E -e "/^mqtt *=/,/^};/s/^([[:space:]]*)(# *)?port *= *[0-9]+;/\1port = $MQTT_PORT;/" \
	-e "/^amqp *=/,/^};/s/^([[:space:]]*)(# *)?port *= *[0-9]+;/\1port = $RABBIT_PORT;/" \
	etc/mqtt-amqp-bridge.conf >"$conf"
grep -q "port = $MQTT_PORT;" "$conf" && grep -q "port = $RABBIT_PORT;" "$conf" ||
	{ echo "demo: cannot point the sample configuration at the test brokers" >&2; exit 1; }
build/mqtt-amqp-bridge -t -c "$conf" >/dev/null

exchange=$(sed -n -E '/^amqp *=/,/^};/s/^[[:space:]]*exchange *= *"([^"]*)";.*/\1/p' "$conf")
"$root/build/tests/tools/mab-sink" setup -p "$RABBIT_PORT" -V / -x "$exchange" \
	-q demo -k 'sensors.#' --declare-exchange >/dev/null

BRIDGE_LOG=$MAB_TMP/bridge.log
build/mqtt-amqp-bridge -c "$conf" >"$BRIDGE_LOG" 2>&1 &
BRIDGE_PID=$!
mab_on_exit "mab_kill_pid $BRIDGE_PID 15"
for _ in $(seq 100); do
	grep -q 'bridge: forwarding' "$BRIDGE_LOG" && break
	sleep 0.1
done
cat "$BRIDGE_LOG"

echo
echo "publishing to MQTT: sensors/temperature/room1 22.5"
mosquitto_pub -h 127.0.0.1 -p "$MQTT_PORT" -q 1 -t sensors/temperature/room1 -m 22.5
echo "reading queue 'demo' (bound to exchange '$exchange' with 'sensors.#'):"
for _ in $(seq 50); do
	if out=$(amqp-get --server=127.0.0.1 --port="$RABBIT_PORT" --vhost=/ -q demo 2>/dev/null); then
		echo "  payload: $out"
		break
	fi
	sleep 0.1
done
[[ -n ${out:-} ]] || { echo "the message did not arrive" >&2; exit 1; }

kill -TERM "$BRIDGE_PID"
wait "$BRIDGE_PID" || true
tail -n 3 "$BRIDGE_LOG"
