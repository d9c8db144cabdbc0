#!/usr/bin/env bash
# scale.sh: throughput of 1, 2 and 3 bridges sharing one MQTT shared
# subscription ($share/scale/fleet/#) into one RabbitMQ queue, on private
# brokers on 127.0.0.1.  bench/run.sh runs it at its end with BENCH_SCALE=1;
# it also runs on its own.
#
# For each bridge count K (BENCH_SCALE_COUNTS) a mosquitto of its own (so
# that no session of another count is a member of the group) and K bridges,
# each with its own client id and persistent session, all subscribed to the
# group.  Each round takes the counts in turn (other work on a shared
# machine then falls on all of them alike) and measures, with QoS 1
# messages of BENCH_SIZE bytes:
#   backlog: N messages queued while the K bridges are stopped (mosquitto
#      hands them out in turn, so each session holds N/K), then the time
#      from starting the K bridges until the sink has all N;
#   live: the K bridges running, publishers sending N as fast as they can;
#      the time from the first publish until the sink has all N.
# and the CPU time per message of mosquitto, RabbitMQ and the K bridges
# together (from /proc) and of the publishers and the sink (from `times`),
# with how busy the machine was, before the run and in each phase.  Rates
# are the median (range) of BENCH_SCALE_REPEAT rounds.  Each bridge's share
# of the last round is shown from its own stats.
#
# A lost or damaged message, a tool failing or a bridge dying fails the run
# (exit 1); duplicates are counted, never a failure; numbers never fail it.
# Every step is bounded in time and every process is stopped by its PID.
#
# Environment (the BENCH_ settings of bench/run.sh where they apply):
#   BUILD_DIR, BRIDGE_BIN  as in bench/run.sh
#   BENCH_SCALE_COUNTS  bridge counts to measure (default "1 2 3")
#   BENCH_SCALE_N       messages per measurement (default BENCH_N, else 100000)
#   BENCH_SCALE_REPEAT  rounds per count (default 3)
#   BENCH_SIZE          payload bytes (default 100)
#   BENCH_INFLIGHT      each bridge's mqtt.inflight_max (default 1000)
#   BENCH_MOSQ_INFLIGHT mosquitto's max_inflight_messages (default 1000)
#   BENCH_PUB_STREAMS   concurrent publishers (default 4)
#   BENCH_PUB_CHUNK     messages per mab-pub process (default 2500)
#   BENCH_PREFETCH      the sink's prefetch (default 1000)
#   BENCH_TIMEOUT       limit in seconds for each step (default 300)
#   MAB_KEEP_TMP=1      keep the work directory (it is kept on failure anyway)
# It uses a RabbitMQ node already running for the caller (RABBIT_NODE and
# the rest exported by brokers.sh, as bench/run.sh has them), else starts one.
set -uo pipefail

root=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
if [[ -z ${BUILD_DIR:-} ]]; then
	BUILD_DIR=$root/build
	[[ -x $BUILD_DIR/mqtt-amqp-bridge ]] || BUILD_DIR=$root
fi
export BUILD_DIR
# shellcheck source=SCRIPTDIR/../tests/lib/brokers.sh
source "$root/tests/lib/brokers.sh"

COUNTS=${BENCH_SCALE_COUNTS:-"1 2 3"}
N=${BENCH_SCALE_N:-${BENCH_N:-100000}}
REPEAT=${BENCH_SCALE_REPEAT:-3}
SIZE=${BENCH_SIZE:-100}
INFLIGHT=${BENCH_INFLIGHT:-1000}
MOSQ_INFLIGHT=${BENCH_MOSQ_INFLIGHT:-1000}
PUB_STREAMS=${BENCH_PUB_STREAMS:-4}
PUB_CHUNK=${BENCH_PUB_CHUNK:-2500}
PREFETCH=${BENCH_PREFETCH:-1000}
TIMEOUT=${BENCH_TIMEOUT:-300}
# shellcheck disable=SC2016 # "$share" is no variable
GROUP='$share/scale/fleet/#'
QUEUE=scale

check_int() {
	if ! [[ $2 =~ ^[0-9]+$ ]] || (($2 < $3 || $2 > $4)); then
		echo "scale.sh: $1 must be an integer from $3 to $4 (got '$2')" >&2
		exit 2
	fi
}
for k in $COUNTS; do
	check_int "a count in BENCH_SCALE_COUNTS" "$k" 1 16
done
check_int BENCH_SCALE_N "$N" 1000 100000000
check_int BENCH_SCALE_REPEAT "$REPEAT" 1 100
check_int BENCH_SIZE "$SIZE" 24 10000000
check_int BENCH_INFLIGHT "$INFLIGHT" 1 65535
check_int BENCH_MOSQ_INFLIGHT "$MOSQ_INFLIGHT" 0 65535
check_int BENCH_PUB_STREAMS "$PUB_STREAMS" 1 64
check_int BENCH_PUB_CHUNK "$PUB_CHUNK" 1 10000000
check_int BENCH_PREFETCH "$PREFETCH" 1 65535
check_int BENCH_TIMEOUT "$TIMEOUT" 10 86400

now() {
	date +%s.%N
}

# ticks PID: user+system clock ticks of PID, all its threads (0 if gone).
ticks() {
	awk '{ sub(/^.*\) /, ""); print $12 + $13 }' "/proc/$1/stat" 2>/dev/null || echo 0
}

# machine_ticks: "busy total" clock ticks of the whole machine.
machine_ticks() {
	awk '$1 == "cpu" { t = 0; for (i = 2; i <= NF; i++) t += $i; print t - $5 - $6, t; exit }' /proc/stat
}

declare -A SNAP ACC

# snap LABEL: the time and the CPU counters under LABEL; the bridges' are
# those of BRIDGES (names for bridge_use).
snap() {
	local busy total b sum=0
	read -r busy total < <(machine_ticks)
	SNAP[$1.t]=$(now)
	for b in "${BRIDGES[@]}"; do
		sum=$((sum + $(ticks "${MAB_BRIDGE_PID[$b]:-0}")))
	done
	SNAP[$1.bridges]=$sum
	SNAP[$1.mosq]=$(ticks "$MOSQ_PID")
	SNAP[$1.rabbit]=$(ticks "$RABBIT_PID")
	SNAP[$1.busy]=$busy
	SNAP[$1.total]=$total
}

# acc KEY FROM TO: adds the ticks between two snapshots to KEY's totals.
# A bridge started after FROM counts from 0, which is what it had.
acc() {
	local who
	for who in bridges mosq rabbit busy total; do
		ACC[$1.$who]=$((${ACC[$1.$who]:-0} + ${SNAP[$3.$who]} - ${SNAP[$2.$who]}))
	done
}

# per_msg KEY WHO COUNT: CPU µs per message (WHO's ticks, or seconds for
# the tools: pub, sink).
per_msg() {
	case $2 in
	pub | sink)
		awk -v t="${ACC[$1.$2]:-0}" -v n="$3" 'BEGIN { printf "%.1f", t * 1e6 / n }' ;;
	*)
		awk -v t="${ACC[$1.$2]}" -v n="$3" -v hz="$HZ" 'BEGIN { printf "%.1f", t * 1e6 / hz / n }' ;;
	esac
}

busy_pct() {
	awk -v b="${ACC[$1.busy]}" -v t="${ACC[$1.total]}" 'BEGIN { printf "%.0f", (t > 0 ? b * 100 / t : 0) }'
}

rate() {
	awk -v n="$1" -v a="$2" -v b="$3" 'BEGIN { printf "%.0f", (b > a ? n / (b - a) : 0) }'
}

median() {
	printf '%s\n' "$@" | sort -g | awk '{ a[NR] = $1 }
		END { printf "%.0f\n", NR % 2 ? a[(NR + 1) / 2] : (a[NR / 2] + a[NR / 2 + 1]) / 2 }'
}
stat_of() {
	if (($# == 1)); then
		echo "$1"
	else
		echo "$(median "$@") ($(printf '%s\n' "$@" | sort -g |
			awk 'NR == 1 { lo = $1 } { hi = $1 } END { print lo "–" hi }'))"
	fi
}

# cpu_of_children FILE: writes to FILE the CPU seconds (user + system) of
# the children this shell waited for, from `times` (redirected, not piped:
# the left side of a pipe is another process, with no children).
cpu_of_children() {
	times >"$1.times"
	awk 'NR == 2 {
		t = 0
		for (i = 1; i <= 2; i++) { split($i, a, /[ms]/); t += a[1] * 60 + a[2] }
		printf "%.3f", t
	}' "$1.times" >"$1"
}

# acc_cpu KEY WHO SECONDS: adds a tool's CPU seconds to KEY's totals.
acc_cpu() {
	ACC[$1.$2]=$(awk -v a="${ACC[$1.$2]:-0}" -v b="$3" 'BEGIN { printf "%.3f", a + b }')
}

# pub_stream START COUNT: START..START+COUNT-1, one mab-pub process per
# PUB_CHUNK messages, one after the other (libmosquitto 2.0.11 walks its
# whole list of unacknowledged messages on every PUBACK: see run.sh).
pub_stream() {
	local start=$1 count=$2 n pid=
	trap '[[ -n $pid ]] && kill -TERM "$pid" 2>/dev/null; exit 143' TERM
	while ((count > 0)); do
		n=$((count < PUB_CHUNK ? count : PUB_CHUNK))
		"$MAB_PUB" -p "$MQTT_PORT" -z "$SIZE" -w "$TIMEOUT" -s "$start" -n "$n" >/dev/null &
		pid=$!
		wait "$pid" || return 1
		start=$((start + n))
		count=$((count - n))
	done
	cpu_of_children "$PUB_CPU_DIR/$BASHPID"
}

# publish START COUNT: PUB_STREAMS concurrent streams sharing the range;
# fails the run unless every message was acknowledged by mosquitto.  Sets
# PUB_CPU to their CPU seconds.
publish() {
	local start=$1 count=$2 k pids=() pid rc=0 f
	PUB_CPU_DIR=$MAB_TMP/pub-cpu
	rm -rf "$PUB_CPU_DIR"
	mkdir -p "$PUB_CPU_DIR"
	for ((k = 1; k <= PUB_STREAMS; k++)); do
		pub_stream "$((start + (k - 1) * count / PUB_STREAMS))" \
			"$((k * count / PUB_STREAMS - (k - 1) * count / PUB_STREAMS))" \
			2>>"$MAB_TMP/pub.err" &
		pids+=("$!")
		mab_on_exit "mab_kill_pid $! 5"
	done
	for pid in "${pids[@]}"; do
		wait "$pid" || rc=1
	done
	((rc == 0)) || fail "a publisher failed: $(tail -n 5 "$MAB_TMP/pub.err")"
	PUB_CPU=0
	for f in "$PUB_CPU_DIR"/*[0-9]; do
		PUB_CPU=$(awk -v a="$PUB_CPU" -v b="$(cat "$f")" 'BEGIN { printf "%.3f", a + b }')
	done
}

DUPLICATES=0

# sink_start START COUNT: the sink reading the queue in the background,
# from a shell that records its CPU seconds in $SINK_FILE.cpu.
sink_start() {
	SINK_FILE=$MAB_TMP/sink.$1.out
	(
		"$MAB_SINK" consume -p "$RABBIT_PORT" -V "$MAB_VHOST" -q "$QUEUE" -s "$1" -n "$2" \
			-f "$PREFETCH" -i 60 -w "$TIMEOUT" --quiet >"$SINK_FILE" 2>&1 &
		echo "$!" >"$SINK_FILE.pid"
		rc=0
		wait "$!" || rc=$?
		cpu_of_children "$SINK_FILE.cpu"
		exit "$rc"
	) &
	SINK_PID=$!
	wait_until 10 test -s "$SINK_FILE.pid" || fail "the sink did not start"
	mab_on_exit "mab_kill_pid $(cat "$SINK_FILE.pid") 5"
}

# sink_done: waits for the sink; fails the run on a lost or damaged message
# (late duplicates of an earlier range show as "unexpected": counted).
sink_done() {
	local line rc=0 v
	wait "$SINK_PID" || rc=$?
	SINK_END=$(now)
	SINK_CPU=$(cat "$SINK_FILE.cpu" 2>/dev/null || echo 0)
	line=$(grep '^received=' "$SINK_FILE")
	if [[ $line != *" lost=0 bad_payload=0 bad_key=0"* ]]; then
		cat "$SINK_FILE" >&2
		fail "the sink found lost or damaged messages (status $rc)"
	fi
	for v in duplicates unexpected; do
		DUPLICATES=$((DUPLICATES + $(sed -n "s/.*\\b$v=\\([0-9]*\\).*/\\1/p" <<<"$line" | grep . || echo 0)))
	done
}

# bridges_start: starts every bridge of BRIDGES without waiting for them.
bridges_start() {
	local b
	for b in "${BRIDGES[@]}"; do
		bridge_use "$b"
		NOWAIT=1 bridge_start "$MAB_TMP/$b.conf"
	done
}

# bridges_stop WHEN: stops every bridge; fails the run unless each exits 0.
bridges_stop() {
	local b
	for b in "${BRIDGES[@]}"; do
		bridge_use "$b"
		mab_alive "$BRIDGE_PID" || fail "bridge $b (pid $BRIDGE_PID) died during $1"
		bridge_stop 60 || fail "bridge $b did not stop cleanly after $1 (exit $?)"
		# Never read a reused PID's ticks.
		MAB_BRIDGE_PID[$b]=0
	done
}

# ---------------------------------------------------------------------------

mab_init bench-scale
HZ=$(getconf CLK_TCK)
sink setup -q "$QUEUE" -x telemetry --declare-exchange -k 'fleet.#' >/dev/null ||
	fail "sink setup failed"
mab_log "counts $COUNTS, N=$N x $REPEAT, size $SIZE, inflight_max $INFLIGHT, mosquitto window $MOSQ_INFLIGHT; work directory $MAB_TMP"

# Other work on the machine skews every number; say how much there was.
read -r b0 t0 < <(machine_ticks)
sleep 2
read -r b1 t1 < <(machine_ticks)
IDLE_BUSY=$(awk -v b="$((b1 - b0))" -v t="$((t1 - t0))" 'BEGIN { printf "%.0f", (t > 0 ? b * 100 / t : 0) }')
mab_log "machine CPU busy with RabbitMQ idle: $IDLE_BUSY %"

# One mosquitto per count, all set up first: a count's sessions must not be
# members of another count's group, and the rounds take the counts in turn,
# so that other work on the machine falls on all of them alike.
declare -A K_MOSQ_PID K_MQTT_PORT K_MOSQ_DIR K_BRIDGES K_BACK K_LIVE
# A caller's mosquitto (bench/run.sh exports MOSQ_PID) is not ours to stop.
MOSQ_PID=
for K in $COUNTS; do
	# shellcheck disable=SC2119 # no extra configuration lines
	mosq_start || fail "mosquitto did not start"
	# As run.sh: brokers.sh's per-packet log would make the broker the
	# bottleneck; its window as asked.
	sed -i -e "s/^max_inflight_messages .*/max_inflight_messages $MOSQ_INFLIGHT/" \
		-e 's/^log_type all$/log_type error\nlog_type warning\nlog_type notice\nlog_type information/' \
		"$MOSQ_DIR/mosquitto.conf" || fail "cannot edit $MOSQ_DIR/mosquitto.conf"
	mosq_restart || fail "mosquitto did not restart"
	K_MOSQ_PID[$K]=$MOSQ_PID
	K_MQTT_PORT[$K]=$MQTT_PORT
	K_MOSQ_DIR[$K]=$MOSQ_DIR
	BRIDGES=()
	for ((i = 1; i <= K; i++)); do
		b=k$K-$i
		BRIDGES+=("$b")
		BR_INFLIGHT=$INFLIGHT BR_SUBSCRIBE="\"$GROUP\"" BR_LOG_LEVEL=info \
			bridge_conf "$MAB_TMP/$b.conf" "mab-scale-$b"
		bridge_use "$b"
		bridge_start "$MAB_TMP/$b.conf"
	done
	K_BRIDGES[$K]=${BRIDGES[*]}
	# Stopped, their sessions stay members of the group: a backlog is
	# shared among them.
	bridges_stop "the first start"
done

# use_count K: the brokers.sh variables and BRIDGES of count K's set-up.
use_count() {
	MOSQ_PID=${K_MOSQ_PID[$1]}
	MQTT_PORT=${K_MQTT_PORT[$1]}
	MOSQ_DIR=${K_MOSQ_DIR[$1]}
	read -r -a BRIDGES <<<"${K_BRIDGES[$1]}"
}

base=0
for ((r = 1; r <= REPEAT; r++)); do
	for K in $COUNTS; do
		use_count "$K"
		mab_log "$K bridge(s), round $r/$REPEAT: backlog: queueing $N"
		publish "$base" "$N"
		sink_start "$base" "$N"
		sleep 0.5
		snap b0
		bridges_start
		sink_done
		snap b1
		acc "$K.b" b0 b1
		acc_cpu "$K.b" sink "$SINK_CPU"
		back=$(rate "$N" "${SNAP[b0.t]}" "$SINK_END")
		K_BACK[$K]+=" $back"
		base=$((base + N))
		mab_log "$K bridge(s), round $r: backlog $back msg/s; live: publishing $N"

		sink_start "$base" "$N"
		sleep 0.5
		snap c0
		publish "$base" "$N"
		sink_done
		snap c1
		acc "$K.c" c0 c1
		acc_cpu "$K.c" sink "$SINK_CPU"
		acc_cpu "$K.c" pub "$PUB_CPU"
		live=$(rate "$N" "${SNAP[c0.t]}" "$SINK_END")
		K_LIVE[$K]+=" $live"
		base=$((base + N))
		mab_log "$K bridge(s), round $r: live $live msg/s"
		bridges_stop "round $r"
	done
done

ROWS=()
RN=$((REPEAT * N))
for K in $COUNTS; do
	use_count "$K"
	read -r -a BACK <<<"${K_BACK[$K]}"
	read -r -a LIVE <<<"${K_LIVE[$K]}"
	shares=()
	for b in "${BRIDGES[@]}"; do
		bridge_use "$b"
		shares+=("$(stats_field received)")
	done
	ll=$(median "${LIVE[@]}")
	ROWS+=("| $K | $(stat_of "${BACK[@]}") | $(stat_of "${LIVE[@]}") | $((ll / K)) | $(per_msg "$K.b" bridges "$RN") / $(per_msg "$K.c" bridges "$RN") | $(per_msg "$K.b" mosq "$RN") / $(per_msg "$K.c" mosq "$RN") | $(per_msg "$K.b" rabbit "$RN") / $(per_msg "$K.c" rabbit "$RN") | $(per_msg "$K.c" pub "$RN") | $(per_msg "$K.b" sink "$RN") / $(per_msg "$K.c" sink "$RN") | $(busy_pct "$K.b") / $(busy_pct "$K.c") | $(
		IFS=/
		echo "${shares[*]}"
	) |")
	mosq_stop
done

cat <<REPORT

## Bridges sharing one MQTT shared subscription

$(date -u +%Y-%m-%dT%H:%M:%SZ), $(nproc) CPUs, N=$N messages x $REPEAT rounds per count, payload $SIZE
bytes, QoS 1 / persistent, each bridge's inflight_max $INFLIGHT, mosquitto max_inflight_messages
$MOSQ_INFLIGHT, $PUB_STREAMS publishers, one queue; the bridges subscribe to $GROUP.
Rates: median (min–max). CPU: µs per message, backlog / live, the K bridges together.
The machine was $IDLE_BUSY % busy before the run with these brokers idle: the
rest of that was other work, which skews every number here.

| bridges | backlog msg/s | live msg/s | live msg/s per bridge | bridges CPU µs/msg | mosquitto CPU µs/msg | RabbitMQ CPU µs/msg | publishers CPU µs/msg (live) | sink CPU µs/msg | machine busy % | received per bridge in the last round |
|---|---|---|---|---|---|---|---|---|---|---|
REPORT
printf '%s\n' "${ROWS[@]}"
echo
echo "Duplicates seen by the sink (allowed, at least once): $DUPLICATES."
