#!/usr/bin/env bash
# downlink.sh: the downlink's throughput (RabbitMQ to MQTT, acknowledged
# after the PUBACK) against mosquitto's own QoS 1 publish ceiling, and the
# bridge's CPU per message, on private brokers on 127.0.0.1.
#
# Each round, with QoS 1 messages of BENCH_SIZE bytes on 100 device
# topics and one MQTT 5 subscriber (mab-recv) on devices/+/commands:
#   a. ceiling: mab-pub publishing N messages straight to mosquitto as fast
#      as its window allows (1,000 unacknowledged); time from its start
#      until the subscriber has all N;
#   b. live: the bridge consuming queue "commands" (prefetch
#      BENCH_PREFETCH) while mab-cmd publishes N to RabbitMQ with confirms;
#      time from the first publish until the subscriber has all N;
#   c. backlog: N messages waiting in the queue while the bridge is
#      stopped; time from starting it until the subscriber has all N;
#   d. for reference, RabbitMQ's own delivery ceiling: mab-sink draining
#      the same backlog from the queue (prefetch BENCH_PREFETCH, an ack per
#      message), without MQTT.
# The ratios b/a and c/a are taken against the ceiling of the same round,
# since the machines are shared and noisy.  The bridge's CPU per message
# comes from /proc/PID/schedstat (time on the CPU, in ns) around b and c.
# Prints a markdown table of medians and ranges.  Performance never fails
# the run; a lost or corrupted message, a tool failing or the bridge dying
# do (exit 1).  Every step is bounded in time.
#
# Environment:
#   BUILD_DIR       build tree of the bridge and the tools (default: the
#                   repository, or its build/ when the bridge is there)
#   BENCH_N         messages per measurement (default 50000)
#   BENCH_REPEAT    rounds (default 3)
#   BENCH_SIZE      payload bytes (default 100)
#   BENCH_PREFETCH  the downlink entry's prefetch (default 100, the default)
#   BENCH_TIMEOUT   limit in seconds for each step (default 300)
set -uo pipefail

root=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
if [[ -z ${BUILD_DIR:-} ]]; then
	BUILD_DIR=$root
	[[ -x $root/mqtt-amqp-bridge ]] || BUILD_DIR=$root/build
fi
export BUILD_DIR
# shellcheck source=../tests/lib/brokers.sh
. "$root/tests/lib/brokers.sh"

N=${BENCH_N:-50000}
REPEAT=${BENCH_REPEAT:-3}
SIZE=${BENCH_SIZE:-100}
PREFETCH=${BENCH_PREFETCH:-100}
LIMIT=${BENCH_TIMEOUT:-300}
ID=bridge-bench-dl

mab_init bench-dl
# shellcheck source=../tests/lib/downlink.sh
. "$root/tests/lib/downlink.sh"
MOSQ_MAX_INFLIGHT=1000 mosq_start || fail "mosquitto did not start"
BR_PROTOCOL=5 BR_TAIL="$(dl_topology)
downlink = ( { queue = \"commands\"; topic = \"devices/{1}/commands\"; prefetch = $PREFETCH; } );" \
	bridge_conf "$MAB_TMP/bridge.conf" "$ID"

now() { date +%s.%N; }

# cpu_ns PID: the time PID has run on a CPU, in ns.
cpu_ns() {
	local total=0 f
	for f in /proc/"$1"/task/*/schedstat; do
		read -r ns _ <"$f" && total=$((total + ns))
	done
	echo "$total"
}

# recv_start ROUND PHASE: a subscriber expecting seq ROUND*N*4 + PHASE*N.. for N.
recv_start() {
	local first=$((($1 * 4 + $2) * N))
	rm -f "$MAB_TMP/ready"
	recv -t 'devices/+/commands' -s "$first" -n "$N" --topic 'devices/dev%d/commands' -T 100 \
		-I 60 -w "$LIMIT" --times --ready-file "$MAB_TMP/ready" >"$MAB_TMP/recv.out" \
		2>"$MAB_TMP/recv.err" &
	RECV=$!
	recv_wait_ready "$MAB_TMP/ready"
	FIRST_SEQ=$first
}

# recv_done T0: waits for the subscriber; sets RATE to the messages per
# second from T0 until all N had come.
recv_done() {
	local all
	wait "$RECV" || fail "subscriber: $(tail -n 3 "$MAB_TMP/recv.err" "$MAB_TMP/recv.out")"
	all=$(sed -n 's/^times first=[0-9.]* all=\([0-9.]*\)$/\1/p' "$MAB_TMP/recv.out")
	RATE=$(awk -v n="$N" -v t0="$1" -v t1="$all" 'BEGIN { printf "%.0f\n", n / (t1 - t0) }')
}

declare -a CEIL LIVE BACK AMQP R_LIVE R_BACK CPU_LIVE CPU_BACK
for ((r = 0; r < REPEAT; r++)); do
	# a. mosquitto's ceiling
	recv_start "$r" 0
	t0=$(now)
	pub -n "$N" -s "$FIRST_SEQ" -t 'devices/dev%d/commands' -T 100 -z "$SIZE" -i "pub-$r" \
		-w "$LIMIT" >/dev/null || fail "mab-pub failed"
	recv_done "$t0"
	CEIL[r]=$RATE

	# b. live through the bridge
	bridge_start "$MAB_TMP/bridge.conf"
	wait_until 30 grep -q "downlink: consuming" "$BRIDGE_LOG" || true
	sleep 1
	recv_start "$r" 1
	c0=$(cpu_ns "$BRIDGE_PID")
	t0=$(now)
	cmd -x commands -k 'dev%d' -T 100 -s "$FIRST_SEQ" -n "$N" -S "$SIZE" -w "$LIMIT" \
		>"$MAB_TMP/cmd.out" || fail "mab-cmd failed: $(cat "$MAB_TMP/cmd.out")"
	recv_done "$t0"
	LIVE[r]=$RATE
	c1=$(cpu_ns "$BRIDGE_PID")
	CPU_LIVE[r]=$(awk -v a="$c0" -v b="$c1" -v n="$N" 'BEGIN { printf "%.2f", (b - a) / n / 1000 }')
	bridge_stop 30 || fail "the bridge exited with status $? after SIGTERM"

	# c. a backlog
	cmd -x commands -k 'dev%d' -T 100 -s "$(((r * 4 + 2) * N))" -n "$N" -S "$SIZE" -w "$LIMIT" \
		>"$MAB_TMP/cmd.out" || fail "mab-cmd failed: $(cat "$MAB_TMP/cmd.out")"
	recv_start "$r" 2
	t0=$(now)
	NOWAIT=1 bridge_start "$MAB_TMP/bridge.conf"
	recv_done "$t0"
	BACK[r]=$RATE
	CPU_BACK[r]=$(awk -v b="$(cpu_ns "$BRIDGE_PID")" -v n="$N" 'BEGIN { printf "%.2f", b / n / 1000 }')
	bridge_stop 30 || fail "the bridge exited with status $? after SIGTERM"

	# d. RabbitMQ alone: the same backlog drained by an AMQP consumer
	cmd -x commands -k 'dev%d' -T 100 -s "$(((r * 4 + 3) * N))" -n "$N" -S "$SIZE" -w "$LIMIT" \
		>"$MAB_TMP/cmd.out" || fail "mab-cmd failed: $(cat "$MAB_TMP/cmd.out")"
	t0=$(now)
	sink consume -q commands -s "$(((r * 4 + 3) * N))" -n "$N" -T 100 --no-key-check \
		-f "$PREFETCH" -i 30 -w "$LIMIT" >"$MAB_TMP/sink.out" 2>&1 ||
		fail "mab-sink: $(tail -n 3 "$MAB_TMP/sink.out")"
	AMQP[r]=$(awk -v n="$N" -v t0="$t0" -v t1="$(now)" 'BEGIN { printf "%.0f", n / (t1 - t0) }')

	R_LIVE[r]=$(awk -v a="${LIVE[r]}" -v c="${CEIL[r]}" 'BEGIN { printf "%.2f", a / c }')
	R_BACK[r]=$(awk -v a="${BACK[r]}" -v c="${CEIL[r]}" 'BEGIN { printf "%.2f", a / c }')
	mab_log "round $((r + 1)): ceiling ${CEIL[r]} msg/s; live ${LIVE[r]} (${R_LIVE[r]}, ${CPU_LIVE[r]} us/msg); backlog ${BACK[r]} (${R_BACK[r]}, ${CPU_BACK[r]} us/msg); RabbitMQ alone ${AMQP[r]}"
done

# stat VALUES...: "median (min-max)".
stat() {
	printf '%s\n' "$@" | sort -g | awk '{ v[NR] = $1 } END {
		m = NR % 2 ? v[(NR + 1) / 2] : (v[NR / 2] + v[NR / 2 + 1]) / 2
		printf "%s (%s-%s)", m, v[1], v[NR] }'
}

cat <<EOF

Downlink, $N messages of $SIZE bytes per measurement, $REPEAT rounds, prefetch $PREFETCH
(median and range; ratios against mosquitto's ceiling in the same round)

| measure | value |
|---|---|
| mosquitto's QoS 1 ceiling (mab-pub to mab-recv), msg/s | $(stat "${CEIL[@]}") |
| downlink live, msg/s | $(stat "${LIVE[@]}") |
| downlink live / ceiling | $(stat "${R_LIVE[@]}") |
| downlink backlog, msg/s | $(stat "${BACK[@]}") |
| downlink backlog / ceiling | $(stat "${R_BACK[@]}") |
| RabbitMQ's delivery ceiling (mab-sink on the same backlog), msg/s | $(stat "${AMQP[@]}") |
| bridge CPU per message, live, us | $(stat "${CPU_LIVE[@]}") |
| bridge CPU per message, backlog, us | $(stat "${CPU_BACK[@]}") |
EOF
pass "downlink benchmark done"
