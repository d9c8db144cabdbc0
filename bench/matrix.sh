#!/usr/bin/env bash
# matrix.sh: bench/run.sh over a set of configurations, and one table.
#
# Each configuration is a separate run.sh (its own brokers, its own work
# directory); run.sh writes its main figures to a KEY=VALUE file
# (BENCH_SUMMARY), and the table is built from those files, not from the
# markdown run.sh prints.  The configurations (BENCH_MATRIX_CONFIGS picks
# some, in this order):
#   inflight20    100 B payload, mosquitto max_inflight_messages 20 (its
#                 own default)
#   inflight1000  100 B payload, max_inflight_messages 1000, the bridge's
#                 inflight_max (what the README recommends: at or below it)
#   1k            1 KiB payload
#   64k           64 KiB payload, BENCH_MATRIX_BIG_N messages (default 5000)
#                 so that a run stays bounded (also for the traced and the
#                 latency phases)
#   tls           100 B payload, TLS on both of the bridge's sides and for
#                 the ceiling (run.sh's BENCH_TLS=1)
#   noheaders     as inflight1000 with bridge.plugin_headers = "none": what
#                 RabbitMQ spends decoding the x-mqtt-* headers (not in the
#                 default set; name it in BENCH_MATRIX_CONFIGS)
#
# With BENCH_BASELINE_BUILD=DIR (the build tree of another commit) each
# configuration runs with DIR's bridge and with this one by turns:
# baseline, current, baseline, current ..., BENCH_MATRIX_ROUNDS pairs
# (default 1), so that drift on a shared machine hits both alike.  Only the
# bridge binary differs: the tools (mab-blast, mab-pub, mab-sink) always
# come from this build (BUILD_DIR).  The table then shows both builds of a
# configuration one above the other, with a row of current / baseline
# ratios of the bridge's CPU, RabbitMQ's CPU and the system calls per
# message.  With several rounds each value is the median over the rounds
# that succeeded (duplicates are added up).
#
# Environment (anything else, BENCH_N or BENCH_REPEAT say, goes on to
# run.sh unchanged; a configuration's own settings win):
#   BUILD_DIR                build tree of the tools and of the current
#                            bridge (run.sh's default)
#   BENCH_BASELINE_BUILD     build tree of the baseline bridge: its
#                            mqtt-amqp-bridge (or src/mqtt-amqp-bridge)
#   BENCH_MATRIX_ROUNDS      runs of each configuration and build (default 1)
#   BENCH_MATRIX_CONFIGS     which configurations (default all five)
#   BENCH_MATRIX_BIG_N       messages of the 64k configuration (default
#                            5000, or BENCH_N if that is smaller)
#   BENCH_MATRIX_RUN_TIMEOUT limit in seconds for one run.sh (default 7200)
#   BENCH_MATRIX_DIR         where each run's output and summary are kept
#                            (default: a new directory under /tmp)
#   BENCH_LAT_RATE           the latency phase's rate (default 2000 here)
#
# Exit status: 0 when every run succeeded; 1 when one failed (lost
# messages, a process that died: run.sh's own criteria; the others still
# run); 77 when something the benchmark needs is missing.  Performance
# numbers never fail it.
set -uo pipefail

here=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
root=$(cd "$here/.." && pwd)
RUN=$here/run.sh
# Where run.sh finds the tools and the current bridge, as run.sh decides it.
if [[ -z ${BUILD_DIR:-} ]]; then
	BUILD_DIR=$root/build
	[[ -x $BUILD_DIR/mqtt-amqp-bridge ]] || BUILD_DIR=$root
fi
export BUILD_DIR
export BENCH_LAT_RATE=${BENCH_LAT_RATE:-2000}

ROUNDS=${BENCH_MATRIX_ROUNDS:-1}
CONFIGS=${BENCH_MATRIX_CONFIGS:-inflight20 inflight1000 1k 64k tls}
BIG_N=${BENCH_MATRIX_BIG_N:-5000}
if [[ -z ${BENCH_MATRIX_BIG_N:-} && -n ${BENCH_N:-} ]] && [[ $BENCH_N =~ ^[0-9]+$ ]] && ((BENCH_N < BIG_N)); then
	BIG_N=$BENCH_N
fi
RUN_LIMIT=${BENCH_MATRIX_RUN_TIMEOUT:-7200}

usage_error() {
	echo "matrix.sh: $*" >&2
	exit 2
}
# check_int NAME VALUE MIN MAX: a usage error unless VALUE is an integer in range.
check_int() {
	if ! [[ $2 =~ ^[0-9]+$ ]] || (($2 < $3 || $2 > $4)); then
		usage_error "$1 must be an integer in [$3, $4], got '$2'"
	fi
}
check_int BENCH_MATRIX_ROUNDS "$ROUNDS" 1 20
check_int BENCH_MATRIX_BIG_N "$BIG_N" 1 10000000
check_int BENCH_MATRIX_RUN_TIMEOUT "$RUN_LIMIT" 60 604800

# config_env NAME: run.sh's settings for configuration NAME, one
# VAR=VALUE a line; false for an unknown name.
config_env() {
	case $1 in
	inflight20) printf '%s\n' BENCH_SIZE=100 BENCH_MOSQ_INFLIGHT=20 ;;
	inflight1000) printf '%s\n' BENCH_SIZE=100 BENCH_MOSQ_INFLIGHT=1000 ;;
	1k) printf '%s\n' BENCH_SIZE=1024 ;;
	64k)
		# 64 KiB x 20,000 in the traced phases would be 1.3 GB through
		# both brokers: every phase gets the same bounded count.
		local strace_n=${BENCH_STRACE_N:-20000} lat_n=${BENCH_LAT_N:-10000}
		((strace_n > BIG_N)) && strace_n=$BIG_N
		((lat_n > BIG_N)) && lat_n=$BIG_N
		printf '%s\n' BENCH_SIZE=65536 "BENCH_N=$BIG_N" "BENCH_STRACE_N=$strace_n" \
			"BENCH_LAT_N=$lat_n"
		;;
	tls) printf '%s\n' BENCH_SIZE=100 BENCH_TLS=1 ;;
	noheaders) printf '%s\n' BENCH_SIZE=100 BENCH_MOSQ_INFLIGHT=1000 BENCH_PLUGIN_HEADERS=none ;;
	*) return 1 ;;
	esac
}

# config_title NAME: what the table calls it.
config_title() {
	case $1 in
	inflight20) echo "100 B, mosquitto inflight 20" ;;
	inflight1000) echo "100 B, mosquitto inflight 1000" ;;
	1k) echo "1 KiB" ;;
	64k) echo "64 KiB, N=$BIG_N" ;;
	tls) echo "100 B, TLS both sides" ;;
	noheaders) echo "100 B, inflight 1000, no x-mqtt-* headers" ;;
	esac
}

read -r -a CONFIG_LIST <<<"$CONFIGS"
((${#CONFIG_LIST[@]} > 0)) || usage_error "BENCH_MATRIX_CONFIGS is empty"
for c in "${CONFIG_LIST[@]}"; do
	config_env "$c" >/dev/null ||
		usage_error "unknown configuration '$c' (known: inflight20 inflight1000 1k 64k tls noheaders)"
done

CURRENT_BIN=${BRIDGE_BIN:-$BUILD_DIR/mqtt-amqp-bridge}
[[ -x $CURRENT_BIN ]] || {
	echo "matrix.sh: $CURRENT_BIN is missing (run make in $BUILD_DIR, or set BUILD_DIR)" >&2
	exit 77
}
BUILDS=(current)
BASELINE_BIN=""
if [[ -n ${BENCH_BASELINE_BUILD:-} ]]; then
	for f in "$BENCH_BASELINE_BUILD/mqtt-amqp-bridge" "$BENCH_BASELINE_BUILD/src/mqtt-amqp-bridge"; do
		if [[ -x $f ]]; then
			BASELINE_BIN=$(cd "$(dirname "$f")" && pwd)/$(basename "$f")
			break
		fi
	done
	[[ -n $BASELINE_BIN ]] || {
		echo "matrix.sh: no mqtt-amqp-bridge (or src/mqtt-amqp-bridge) in $BENCH_BASELINE_BUILD" >&2
		exit 77
	}
	BUILDS=(baseline current)
fi

# bin_of BUILD: the bridge binary of "current" or "baseline".
bin_of() {
	if [[ $1 == baseline ]]; then echo "$BASELINE_BIN"; else echo "$CURRENT_BIN"; fi
}

if [[ -n ${BENCH_MATRIX_DIR:-} ]]; then
	DIR=$BENCH_MATRIX_DIR
	mkdir -p "$DIR" || exit 1
else
	DIR=$(mktemp -d "${TMPDIR:-/tmp}/mab-matrix.XXXXXX") || exit 1
fi

log() {
	printf '%s [matrix] %s\n' "$(date +%H:%M:%S)" "$*" >&2
}

# ---------------------------------------------------------------------------
# Runs: one run.sh at a time, in the background so that a signal to this
# script can stop it by its PID (timeout passes SIGTERM on to run.sh,
# whose trap stops its brokers and tools).

RUN_PID=""
# shellcheck disable=SC2317  # called from the traps
stop_run() {
	local i
	[[ -n $RUN_PID ]] || return 0
	kill -TERM "$RUN_PID" 2>/dev/null
	for ((i = 0; i < 1200; i++)); do
		kill -0 "$RUN_PID" 2>/dev/null || break
		sleep 0.1
	done
	kill -KILL "$RUN_PID" 2>/dev/null
	wait "$RUN_PID" 2>/dev/null
	RUN_PID=""
}
trap 'stop_run; exit 130' INT
trap 'stop_run; exit 143' TERM

FAILED=()
# run_one CONFIG BUILD ROUND: one run.sh; its output in $DIR/LABEL.out and
# .err, its summary in $DIR/LABEL.summary.
run_one() {
	local config=$1 build=$2 round=$3 label=$1.$2.$3 rc env
	mapfile -t env < <(config_env "$config")
	rm -f "$DIR/$label.summary"
	log "$label: $(config_title "$config"), bridge $(bin_of "$build")"
	env "${env[@]}" BRIDGE_BIN="$(bin_of "$build")" BENCH_SUMMARY="$DIR/$label.summary" \
		timeout -k 60 "$RUN_LIMIT" "$RUN" >"$DIR/$label.out" 2>"$DIR/$label.err" </dev/null &
	RUN_PID=$!
	wait "$RUN_PID"
	rc=$?
	RUN_PID=""
	if ((rc == 77)); then
		tail -n 5 "$DIR/$label.err" >&2
		log "$label: something the benchmark needs is missing (exit 77); stopping"
		exit 77
	fi
	if ((rc != 0)) || [[ ! -s $DIR/$label.summary ]]; then
		FAILED+=("$label (exit $rc, see $DIR/$label.err)")
		log "$label: FAILED (exit $rc); the end of its log:"
		grep -v '^  ' "$DIR/$label.err" | tail -n 15 >&2
		return 0
	fi
	log "$label: done"
}

log "configurations: ${CONFIG_LIST[*]}; builds: ${BUILDS[*]}; $ROUNDS round(s); outputs in $DIR"
for config in "${CONFIG_LIST[@]}"; do
	for ((round = 1; round <= ROUNDS; round++)); do
		for build in "${BUILDS[@]}"; do
			run_one "$config" "$build" "$round"
		done
	done
done

# ---------------------------------------------------------------------------
# The table

# val CONFIG BUILD KEY: the median of KEY over the rounds' summaries
# ("–" when none has it).
val() {
	local f files=()
	for f in "$DIR/$1.$2".*.summary; do
		[[ -s $f ]] && files+=("$f")
	done
	((${#files[@]} > 0)) || { echo "–"; return 0; }
	awk -F= -v k="$3" '$1 == k && $2 != "" { print $2 }' "${files[@]}" | sort -g |
		awk '{ a[NR] = $1; if ($1 !~ /^-?[0-9]+$/) frac = 1 }
			END {
				if (NR == 0) { print "–"; exit }
				# An odd count has a middle value, shown as run.sh wrote it.
				if (NR % 2) { print a[(NR + 1) / 2]; exit }
				printf (frac ? "%.2f\n" : "%.0f\n"), (a[NR / 2] + a[NR / 2 + 1]) / 2
			}'
}

# sum CONFIG BUILD KEY: KEY added up over the rounds.
sum() {
	local f files=()
	for f in "$DIR/$1.$2".*.summary; do
		[[ -s $f ]] && files+=("$f")
	done
	((${#files[@]} > 0)) || { echo "–"; return 0; }
	awk -F= -v k="$3" '$1 == k { t += $2 } END { print t + 0 }' "${files[@]}"
}

# runs_ok CONFIG BUILD: "OK/ROUNDS".
runs_ok() {
	local f ok=0
	for f in "$DIR/$1.$2".*.summary; do
		[[ -s $f ]] && ok=$((ok + 1))
	done
	echo "$ok/$ROUNDS"
}

# quot A B: A / B with two decimals, "–" unless both are numbers.
quot() {
	awk -v a="$1" -v b="$2" 'BEGIN {
		if (a !~ /^[0-9.]+$/ || b !~ /^[0-9.]+$/ || b + 0 == 0) print "–"
		else printf "%.2f\n", a / b
	}'
}

# pair CONFIG BUILD KEY1 KEY2...: the values joined by " / ".
pair() {
	local c=$1 b=$2 out="" k
	shift 2
	for k in "$@"; do
		[[ -n $out ]] && out+=" / "
		out+=$(val "$c" "$b" "$k")
	done
	echo "$out"
}

cat <<HEAD

## mqtt-amqp-bridge benchmark matrix

$(date -u +%Y-%m-%dT%H:%M:%SZ), $(nproc) CPUs; each row is a separate bench/run.sh (BENCH_N=${BENCH_N:-100000} unless
the configuration says otherwise, BENCH_REPEAT=${BENCH_REPEAT:-3}, latency at $BENCH_LAT_RATE msg/s);
$ROUNDS run(s) per configuration and build, values are medians over them.
Current bridge: $CURRENT_BIN.
HEAD
if [[ -n $BASELINE_BIN ]]; then
	echo "Baseline bridge: $BASELINE_BIN (run first in each pair; the tools are the current build's)."
fi
cat <<HEAD
Ratios are to RabbitMQ's own publish-with-confirms ceiling measured in the
same run; system calls per message come from separate traced phases
(strace -c -f); MB/s counts payload bytes (shown from 1 KiB up). In the TLS
row the ceiling publishes over TLS too; the publishers into mosquitto and
the sink stay on plain listeners. Per-run outputs: $DIR.

| configuration | build | backlog / ceiling | live / ceiling | bridge CPU µs/msg backlog / live | RabbitMQ CPU µs/msg backlog / live / ceiling | syscalls/msg backlog / live | latency p99 ms bridge / ceiling (ratio) | peak RSS MiB | MB/s ceiling / backlog / live | lost | duplicates | runs ok |
|---|---|---|---|---|---|---|---|---|---|---|---|---|
HEAD
for config in "${CONFIG_LIST[@]}"; do
	title=$(config_title "$config")
	for build in "${BUILDS[@]}"; do
		mbs="–"
		size=$(val "$config" "$build" size)
		if [[ $size =~ ^[0-9]+$ ]] && ((size >= 1024)); then
			mbs=$(pair "$config" "$build" ceiling_mbs backlog_mbs live_mbs)
		fi
		echo "| $title | $build | $(val "$config" "$build" ratio_backlog) | $(val "$config" "$build" ratio_live) |" \
			"$(pair "$config" "$build" bridge_cpu_backlog_us bridge_cpu_live_us) |" \
			"$(pair "$config" "$build" rabbit_cpu_backlog_us rabbit_cpu_live_us rabbit_cpu_ceiling_us) |" \
			"$(pair "$config" "$build" sys_backlog sys_live) |" \
			"$(pair "$config" "$build" lat_p99_ms lat_ceiling_p99_ms) ($(val "$config" "$build" lat_p99_ratio)) |" \
			"$(val "$config" "$build" rss_peak_mib) | $mbs |" \
			"$(sum "$config" "$build" lost) | $(sum "$config" "$build" duplicates) | $(runs_ok "$config" "$build") |"
	done
	if [[ -n $BASELINE_BIN ]]; then
		r=()
		for k in bridge_cpu_backlog_us bridge_cpu_live_us rabbit_cpu_backlog_us rabbit_cpu_live_us sys_backlog sys_live; do
			r+=("$(quot "$(val "$config" current "$k")" "$(val "$config" baseline "$k")")")
		done
		echo "| $title | **current / baseline** | | | **${r[0]} / ${r[1]}** | **${r[2]} / ${r[3]}** | ${r[4]} / ${r[5]} | | | | | | |"
	fi
done

if ((${#FAILED[@]} > 0)); then
	echo
	echo "Failed runs (lost messages, a dead process or a tool failing; see their logs):"
	printf -- '- %s\n' "${FAILED[@]}"
	exit 1
fi
exit 0
