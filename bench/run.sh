#!/usr/bin/env bash
# run.sh: the bridge's throughput, latency and footprint against RabbitMQ's
# own publish-with-confirms ceiling, on private brokers on 127.0.0.1.
#
# One run starts its own RabbitMQ and mosquitto (tests/lib/brokers.sh) and
# measures, with QoS 1 messages of BENCH_SIZE bytes:
#   a. RabbitMQ's ceiling: mab-blast publishing N persistent messages with
#      confirms (window = the bridge's inflight_max) while mab-sink consumes
#      them;
#   b. backlog: N messages queued by mosquitto for the bridge's persistent
#      session while it is stopped; time from starting the bridge (and from
#      its "mqtt: connected" and "bridge: forwarding" lines) until the sink
#      has all N;
#   c. live: the bridge running, publishers sending N as fast as they can;
#      time from the first publish until the sink has all N;
#   d. latency: BENCH_LAT_N stamped messages at BENCH_LAT_RATE msg/s; p50,
#      p90, p99 and max from the sink; first through RabbitMQ alone
#      (mab-blast --rate --stamp into the sink: the ceiling's latency), then
#      through the bridge, and the ratio of the two p99s;
#   e. the bridge's peak RSS (VmHWM) and CPU time per message in each phase,
#      next to mosquitto's, RabbitMQ's (also as a ratio to RabbitMQ's in the
#      ceiling), the tools' and the whole machine's;
#   s. system calls, after the timed phases so that tracing skews none of
#      them: a backlog of BENCH_STRACE_N messages drained by a bridge started
#      under `strace -c -f`, then a live run of BENCH_STRACE_N through another
#      one; system calls, errors and the most frequent calls per message.
#   h. the metrics endpoint, with BENCH_HTTP=1, after e: the same work
#      (a backlog of BENCH_HTTP_N, then as many live) through a bridge
#      without bridge.http_listen and through one with it while curl GETs
#      /metrics every second, in turns (off, on in odd rounds; on, off in
#      even ones) for BENCH_REPEAT rounds; msg/s, the bridge's CPU per
#      message (from /proc/PID/schedstat, in ns) and the ratios on / off;
#      then the size of one scrape and the bridge's CPU per scrape (200
#      back to back, BENCH_HTTP_SCRAPES, with no traffic), and, in phase
#      s, a traced backlog and live run with the endpoint on and nobody
#      scraping, whose system calls per message stand next to those with
#      it off.  It is not in the default run: it forwards 12 x BENCH_N
#      messages (4 per round), some 70 s more at the defaults on a quiet
#      2-core machine, more on a loaded one.
#   r. rules, first and without brokers: bench/mab-rules, the cost of
#      choosing a mapping rule and building its routing key per message
#      with 1 rule and with 10,000 rules (rules_match + rules_key); its
#      table is printed at the end with the others.  A wrong rule or key
#      fails the run, timing never does.
# a, b and c are repeated BENCH_REPEAT times, each ratio taken against the
# ceiling measured just before it, because the machines are shared and
# noisy.  Once, for reference: mab-blast with no consumer, then the sink
# draining that queue alone.
#
# It prints a markdown table with medians, ranges and the targets
# (throughput ratio >= 0.7 of the ceiling, RSS < 8 MiB) marked met or not
# met, and with BENCH_SUMMARY the main figures as KEY=VALUE lines for
# bench/matrix.sh.  Performance numbers never fail the run; lost or
# corrupted messages, a tool failing or a process dying do (exit 1);
# duplicates are counted and reported, since delivery is at least once.  Every step is bounded in
# time and every process is stopped by its PID.
#
# Environment:
#   BUILD_DIR          build tree of the tools (mab-blast, mab-pub, mab-sink)
#                      and, unless BRIDGE_BIN says otherwise, of the bridge
#                      (default: <repository>/build, or the repository itself
#                      when the bridge was built there)
#   BRIDGE_BIN         the bridge binary (default: $BUILD_DIR/mqtt-amqp-bridge);
#                      bench/matrix.sh sets it to compare two builds with the
#                      same tools
#   BENCH_N            messages per throughput measurement (default 100000)
#   BENCH_REPEAT       rounds of a, b and c (default 3)
#   BENCH_SIZE         payload bytes (default 100, at least 24)
#   BENCH_INFLIGHT     the bridge's mqtt.inflight_max and mab-blast's window
#                      (default 1000, the bridge's default)
#   BENCH_MOSQ_INFLIGHT  mosquitto's max_inflight_messages (default 1000, as
#                      brokers.sh sets it)
#   BENCH_LAT_N        messages in the latency phase (default 10000)
#   BENCH_LAT_RATE     their rate in msg/s (default 1000)
#   BENCH_TIMEOUT      limit in seconds for each step (default 300)
#   BENCH_PREFETCH     the sink's prefetch (default 1000)
#   BENCH_PUB_STREAMS  concurrent publishers for the backlog and live phases
#                      (default 4)
#   BENCH_PUB_CHUNK    messages per mab-pub process (default 2500; see
#                      pub_chunks for why not all N in one)
#   BENCH_MOSQ_DEBUG=1 keep mosquitto's per-packet debug log (brokers.sh
#                      default); otherwise it logs errors to information only
#   BENCH_STRACE=0     skip phase s (default 1: on; it needs strace, which
#                      tests/lib/deps.sh installs)
#   BENCH_STRACE_N     messages in each traced phase (default 20000)
#   BENCH_TLS=1        TLS on both of the bridge's sides: it subscribes through
#                      a TLS listener of mosquitto and publishes to a TLS
#                      listener of RabbitMQ (tests/lib/tls.sh: a throwaway CA,
#                      client certificates, both verified), and mab-blast
#                      publishes the ceiling over TLS too.  The publishers
#                      (mab-pub) use mosquitto's plain listener and the sink
#                      RabbitMQ's plain one, as in the integration tests.
#   BENCH_PROFILE=1    at the end, one more live run of BENCH_PROFILE_N
#                      messages (default 20000) with `perf stat` attached to
#                      the bridge; reports cycles, instructions and context
#                      switches per message (it needs perf: linux-perf)
#   BENCH_SUMMARY=FILE also write the main figures to FILE, one KEY=VALUE a
#                      line (written when the run succeeds)
#   BENCH_RULES        give the bridge this many mapping rules (default 0:
#                      none): BENCH_RULES - 1 that share the published
#                      topics' first levels without matching them, then one
#                      that matches ("fleet/+/temp"), so the bridge's CPU per
#                      message can be compared between 1 and 10,000 rules
#   BENCH_SCALE=1      at the end, bench/scale.sh on this run's RabbitMQ:
#                      throughput with 1, 2 and 3 bridges sharing one MQTT
#                      shared subscription (BENCH_SCALE_COUNTS,
#                      BENCH_SCALE_N, BENCH_SCALE_REPEAT: see that script);
#                      its table is printed after the others
#   BENCH_FAILOVER=1   at the end, the failover of a RabbitMQ cluster node:
#                      tests/integration/t22_cluster_failover.sh (three
#                      nodes, 30,000 messages at 3,000 msg/s, the node the
#                      bridge uses killed twice) and the times it reports
#                      from the bridge's log, from the kill to the first
#                      confirm through another node
#   BENCH_HTTP=1       phase h, the cost of the metrics endpoint (it needs
#                      curl and a bridge built with libmicrohttpd)
#   BENCH_HTTP_N       messages in each of its backlogs and live runs
#                      (default BENCH_N)
#   BENCH_HTTP_SCRAPES back-to-back scrapes for the CPU per scrape
#                      (default 200)
#   BENCH_PLUGIN_HEADERS  the bridge's bridge.plugin_headers (default: its
#                      default, "3.10"); "none" shows what decoding the
#                      x-mqtt-* headers of every message costs RabbitMQ
#   MAB_KEEP_TMP=1     keep the work directory (it is kept on failure anyway)

# brokers.sh is not written for set -e (grep -c finding nothing, say), so
# failures are checked where they matter.
set -uo pipefail

root=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
if [[ -z ${BUILD_DIR:-} ]]; then
	BUILD_DIR=$root/build
	[[ -x $BUILD_DIR/mqtt-amqp-bridge ]] || BUILD_DIR=$root
fi
export BUILD_DIR
# shellcheck source=SCRIPTDIR/../tests/lib/brokers.sh
source "$root/tests/lib/brokers.sh"

N=${BENCH_N:-100000}
REPEAT=${BENCH_REPEAT:-3}
SIZE=${BENCH_SIZE:-100}
INFLIGHT=${BENCH_INFLIGHT:-1000}
MOSQ_INFLIGHT=${BENCH_MOSQ_INFLIGHT:-1000}
RULES=${BENCH_RULES:-0}
LAT_N=${BENCH_LAT_N:-10000}
LAT_RATE=${BENCH_LAT_RATE:-1000}
TIMEOUT=${BENCH_TIMEOUT:-300}
PREFETCH=${BENCH_PREFETCH:-1000}
PUB_STREAMS=${BENCH_PUB_STREAMS:-4}
PUB_CHUNK=${BENCH_PUB_CHUNK:-2500}
PROFILE=${BENCH_PROFILE:-0}
PROFILE_N=${BENCH_PROFILE_N:-20000}
STRACE=${BENCH_STRACE:-1}
SCALE=${BENCH_SCALE:-0}
FAILOVER=${BENCH_FAILOVER:-0}
STRACE_N=${BENCH_STRACE_N:-20000}
HTTP=${BENCH_HTTP:-0}
HTTP_N=${BENCH_HTTP_N:-$N}
HTTP_SCRAPES=${BENCH_HTTP_SCRAPES:-200}
TLS=${BENCH_TLS:-0}
SUMMARY=${BENCH_SUMMARY:-}
RSS_TARGET_KB=8192
RATIO_TARGET=0.7
CLIENT_ID=mab-bench
QUEUE=bench

# check_int NAME VALUE MIN MAX: a usage error unless VALUE is an integer in range.
check_int() {
	if ! [[ $2 =~ ^[0-9]+$ ]] || (($2 < $3 || $2 > $4)); then
		echo "run.sh: $1 must be an integer in [$3, $4], got '$2'" >&2
		exit 2
	fi
}
check_int BENCH_N "$N" 1 10000000
check_int BENCH_RULES "$RULES" 0 1000000
check_int BENCH_REPEAT "$REPEAT" 1 20
check_int BENCH_SIZE "$SIZE" 24 1048576
check_int BENCH_INFLIGHT "$INFLIGHT" 1 65535
check_int BENCH_MOSQ_INFLIGHT "$MOSQ_INFLIGHT" 0 65535
check_int BENCH_LAT_N "$LAT_N" 1 10000000
check_int BENCH_LAT_RATE "$LAT_RATE" 1 1000000
check_int BENCH_TIMEOUT "$TIMEOUT" 10 86400
check_int BENCH_PREFETCH "$PREFETCH" 1 65535
check_int BENCH_PUB_STREAMS "$PUB_STREAMS" 1 16
check_int BENCH_PUB_CHUNK "$PUB_CHUNK" 1 10000000
check_int BENCH_PROFILE_N "$PROFILE_N" 1 10000000
check_int BENCH_STRACE_N "$STRACE_N" 1 10000000
check_int BENCH_HTTP_N "$HTTP_N" 1 10000000
check_int BENCH_HTTP_SCRAPES "$HTTP_SCRAPES" 1 100000
for v in BENCH_FAILOVER BENCH_HTTP BENCH_MOSQ_DEBUG BENCH_PROFILE BENCH_SCALE BENCH_STRACE BENCH_TLS; do
	case ${!v:-0} in
	0 | 1) ;;
	*) echo "run.sh: $v must be 0 or 1" >&2; exit 2 ;;
	esac
done

MAB_BLAST=$BUILD_DIR/bench/mab-blast
MAB_RULES=$BUILD_DIR/bench/mab-rules
for tool in "$MAB_BLAST" "$MAB_RULES"; do
	if [[ ! -x $tool ]]; then
		echo "run.sh: $tool is missing (run make in $BUILD_DIR, or set BUILD_DIR)" >&2
		exit 77
	fi
done
# What the optional phases need, checked before anything starts: a
# missing program would otherwise fail the run after minutes of work.
# need PROGRAM PACKAGE WHY: exits 77 with a hint unless PROGRAM is there.
need() {
	command -v "$1" >/dev/null && return 0
	echo "run.sh: $1 is missing, for $3: install the Debian package $2" \
		"(tests/lib/deps.sh installs what the tests and the benchmark need)" >&2
	exit 77
}
if [[ $STRACE == 1 ]]; then
	need strace strace "the system call counts (BENCH_STRACE=0 skips them)"
	# ptrace may be forbidden (a container's seccomp profile, say); say so
	# now rather than after the timed phases.
	if ! timeout 10 strace -c -f -o /dev/null true >/dev/null 2>&1; then
		echo "run.sh: strace cannot trace here (is ptrace allowed?); BENCH_STRACE=0 skips the system call counts" >&2
		exit 77
	fi
fi
[[ $PROFILE == 1 ]] && need perf linux-perf "BENCH_PROFILE=1"
[[ $TLS == 1 ]] && need openssl openssl "the certificates of BENCH_TLS=1"
if [[ $HTTP == 1 ]]; then
	need curl curl "the scrapes of BENCH_HTTP=1"
	# A build without libmicrohttpd refuses bridge.http_listen; -t says so
	# without connecting anywhere.
	http_check=$(mktemp "${TMPDIR:-/tmp}/mab-http-check.XXXXXX") || exit 1
	cat >"$http_check" <<-EOF
		mqtt = { host = "127.0.0.1"; port = 1883; client_id = "check"; subscribe = [ "fleet/#" ]; };
		amqp = { host = "127.0.0.1"; port = 5672; exchange = "telemetry"; };
		bridge = { http_listen = "127.0.0.1:9464"; };
	EOF
	http_bin=${BRIDGE_BIN:-$BUILD_DIR/mqtt-amqp-bridge}
	if ! http_err=$("$http_bin" -t -c "$http_check" 2>&1 >/dev/null); then
		rm -f "$http_check"
		echo "run.sh: $http_bin cannot serve bridge.http_listen, for BENCH_HTTP=1: $http_err" >&2
		exit 77
	fi
	rm -f "$http_check"
fi

# ---------------------------------------------------------------------------
# r. Rules: matching and key building alone, before any broker starts (it
# is CPU-bound and bounded to a few seconds by mab-rules itself).

echo "run.sh: r. rules: $MAB_RULES" >&2
if ! RULES_TABLE=$(timeout 120 "$MAB_RULES"); then
	printf '%s\n' "$RULES_TABLE" >&2
	echo "run.sh: mab-rules failed: a wrong rule or key, or it did not finish" >&2
	exit 1
fi
printf '%s\n' "$RULES_TABLE" >&2

# ---------------------------------------------------------------------------
# Background jobs: every tool runs as a job whose PID, exit status, end time
# and CPU times are recorded under $MAB_TMP/job.NAME; the trap stops a job
# still running, by its PID.

now() {
	date +%s.%N
}

# job_start NAME COMMAND...: runs COMMAND in the background.  COMMAND is an
# executable (so that the recorded PID is its own) or a function that writes
# the PID of the child it waits for to $JOB_DIR/cur.
job_start() {
	local name=$1 d=$MAB_TMP/job.$1
	shift
	rm -rf "$d"
	mkdir -p "$d"
	(
		JOB_DIR=$d "$@" >"$d/out" 2>"$d/err" </dev/null &
		echo "$!" >"$d/pid"
		rc=0
		wait "$!" || rc=$?
		now >"$d/end"
		times >"$d/times"
		echo "$rc" >"$d/rc"
	) &
	echo "$!" >"$d/wrapper"
	mab_on_exit "job__stop $d"
	# Polled finely: wait_until's 0.2 s steps would skew start times.
	local i
	for ((i = 0; i < 1000; i++)); do
		[[ -s $d/pid ]] && return 0
		sleep 0.01
	done
	fail "job $name did not start"
}

job__stop() {
	local pid
	[[ -e $1/rc ]] && return 0
	pid=$(cat "$1/pid" 2>/dev/null) && mab_kill_pid "$pid" 5
	pid=$(cat "$1/cur" 2>/dev/null) && mab_kill_pid "$pid" 5
	pid=$(cat "$1/wrapper" 2>/dev/null) && mab_wait_gone "$pid" 5
	return 0
}

# job_wait NAME SECONDS: waits for the job to end; prints its exit status
# (124 after stopping it on time-out).
job_wait() {
	local d=$MAB_TMP/job.$1
	if ! wait_until "$2" test -e "$d/rc"; then
		job__stop "$d"
		wait_until 10 test -e "$d/rc" || true
		echo 124
		return 0
	fi
	wait "$(cat "$d/wrapper")" 2>/dev/null || true
	cat "$d/rc"
}

job_out() { cat "$MAB_TMP/job.$1/out"; }
job_end() { cat "$MAB_TMP/job.$1/end"; }

# job_cpu NAME: the job's user+system CPU seconds (from the shell's `times`).
job_cpu() {
	awk 'NR == 2 {
		t = 0
		for (i = 1; i <= 2; i++) { split($i, a, /[ms]/); t += a[1] * 60 + a[2] }
		printf "%.3f", t
	}' "$MAB_TMP/job.$1/times"
}

# job_must NAME SECONDS WHAT: waits for the job; fails the run unless it
# exited 0.
job_must() {
	local rc
	rc=$(job_wait "$1" "$2")
	if [[ $rc != 0 ]]; then
		echo "----- $1 (exit $rc):" >&2
		cat "$MAB_TMP/job.$1/out" "$MAB_TMP/job.$1/err" >&2
		fail "$3"
	fi
}

# ---------------------------------------------------------------------------
# Measurements

# ticks PID: user+system clock ticks of PID (0 if it is gone).
ticks() {
	awk '{ sub(/^.*\) /, ""); print $12 + $13 }' "/proc/$1/stat" 2>/dev/null || echo 0
}

# machine_ticks: "busy iowait total" clock ticks of the whole machine.
machine_ticks() {
	awk '$1 == "cpu" {
		t = 0
		for (i = 2; i <= NF; i++) t += $i
		print t - $5 - $6, $6, t
		exit
	}' /proc/stat
}

declare -A SNAP

# snap LABEL: records the time and the CPU counters under LABEL.
snap() {
	local busy iowait total
	read -r busy iowait total < <(machine_ticks)
	SNAP[$1.t]=$(now)
	SNAP[$1.bridge]=$(ticks "$BRIDGE_PID")
	SNAP[$1.mosq]=$(ticks "$MOSQ_PID")
	SNAP[$1.rabbit]=$(ticks "$RABBIT_PID")
	SNAP[$1.busy]=$busy
	SNAP[$1.iowait]=$iowait
	SNAP[$1.total]=$total
}

# busy_pct FROM TO: how busy all CPUs were between two snapshots, in %.
busy_pct() {
	awk -v b0="${SNAP[$1.busy]}" -v b1="${SNAP[$2.busy]}" \
		-v t0="${SNAP[$1.total]}" -v t1="${SNAP[$2.total]}" \
		'BEGIN { printf "%.0f", (t1 > t0 ? (b1 - b0) * 100 / (t1 - t0) : 0) }'
}

# rate COUNT T0 T1: messages per second.
rate() {
	awk -v n="$1" -v a="$2" -v b="$3" 'BEGIN { printf "%.0f", (b > a ? n / (b - a) : 0) }'
}

# us_of SECONDS COUNT: microseconds per item.
us_of() {
	awk -v s="$1" -v n="$2" 'BEGIN { printf "%.1f", s * 1e6 / n }'
}

# secs T0 T1: T1 - T0 with two decimals.
secs() {
	awk -v a="$1" -v b="$2" 'BEGIN { printf "%.2f", b - a }'
}

# field NAME LINE: the value of NAME=VALUE in LINE.
field() {
	sed -n "s/.*\\b$1=\\([^ ]*\\).*/\\1/p" <<<"$2"
}

# sink_start NAME START COUNT [ARGS...]: the sink reading queue $QUEUE of
# vhost $MAB_VHOST in the background.
sink_start() {
	local name=$1 start=$2 count=$3
	shift 3
	job_start "$name" "$MAB_SINK" consume -p "$RABBIT_PORT" -V "$MAB_VHOST" -q "$QUEUE" \
		-s "$start" -n "$count" -f "$PREFETCH" -i 60 -w "$TIMEOUT" "$@"
}

# sink_check NAME: waits for the sink and sets SINK_LINE to its summary
# line.  Fails the run on any loss or damaged message.  Duplicates are
# allowed (delivery is at least once): late ones from an earlier range show
# as "unexpected", which mab-sink counts as a failure; both are added to
# DUPLICATES instead.
DUPLICATES=0
sink_check() {
	local rc d=$MAB_TMP/job.$1 lost bad_p bad_k dup unexp
	rc=$(job_wait "$1" "$((TIMEOUT + 30))")
	SINK_LINE=$(head -n 1 "$d/out")
	lost=$(field lost "$SINK_LINE")
	bad_p=$(field bad_payload "$SINK_LINE")
	bad_k=$(field bad_key "$SINK_LINE")
	dup=$(field duplicates "$SINK_LINE")
	unexp=$(field unexpected "$SINK_LINE")
	if [[ $rc != 0 && ! ($lost == 0 && $bad_p == 0 && $bad_k == 0) ]]; then
		echo "----- $1 (exit $rc):" >&2
		cat "$d/out" "$d/err" >&2
		fail "sink $1: messages lost or damaged"
	fi
	DUPLICATES=$((DUPLICATES + ${dup:-0} + ${unexp:-0}))
	if [[ $rc != 0 ]]; then
		mab_log "sink $1: $SINK_LINE (duplicates are allowed)"
	fi
}

# pub_start NAME ARGS...: one mab-pub in the background.
pub_start() {
	local name=$1
	shift
	job_start "$name" "$MAB_PUB" -p "$MQTT_PORT" -z "$SIZE" -w "$TIMEOUT" "$@"
}

# pub_chunks START COUNT: publishes START..START+COUNT-1 with one mab-pub
# process (and connection) per PUB_CHUNK messages, one after the other.
# libmosquitto 2.0.11 walks its whole list of unacknowledged messages on
# every PUBACK (message__release_to_inflight), so one mab-pub queueing all
# N at once spends O(N^2) time there: 100,000 take it over 20 s.
pub_chunks() {
	local start=$1 count=$2 n rc
	while ((count > 0)); do
		n=$((count < PUB_CHUNK ? count : PUB_CHUNK))
		"$MAB_PUB" -p "$MQTT_PORT" -z "$SIZE" -w "$TIMEOUT" -s "$start" -n "$n" &
		echo "$!" >"$JOB_DIR/cur"
		rc=0
		wait "$!" || rc=$?
		((rc == 0)) || return "$rc"
		start=$((start + n))
		count=$((count - n))
	done
}

# pubs_start NAME START COUNT: PUB_STREAMS concurrent pub_chunks jobs
# NAME.1.. sharing START..START+COUNT-1.
pubs_start() {
	local name=$1 start=$2 count=$3 k n
	for ((k = 1; k <= PUB_STREAMS; k++)); do
		n=$((k * count / PUB_STREAMS - (k - 1) * count / PUB_STREAMS))
		job_start "$name.$k" pub_chunks "$((start + (k - 1) * count / PUB_STREAMS))" "$n"
	done
}

# pubs_wait NAME WHAT: waits for every stream; fails the run unless all
# succeeded.  Sets PUBS_END (the last one's end) and PUBS_CPU (CPU seconds).
pubs_wait() {
	local k end
	PUBS_END=0
	PUBS_CPU=0
	for ((k = 1; k <= PUB_STREAMS; k++)); do
		job_must "$1.$k" "$((TIMEOUT + 30))" "$2"
		end=$(job_end "$1.$k")
		PUBS_END=$(awk -v a="$PUBS_END" -v b="$end" 'BEGIN { printf "%.6f", (a > b ? a : b) }')
		PUBS_CPU=$(awk -v a="$PUBS_CPU" -v b="$(job_cpu "$1.$k")" 'BEGIN { printf "%.3f", a + b }')
	done
}

# bridge_must_live WHEN: fails the run if the bridge is gone.
bridge_must_live() {
	mab_alive "$BRIDGE_PID" || fail "the bridge (pid $BRIDGE_PID) died during $1"
}

# log_stamp LINE: the bridge's log time stamp of LINE as seconds since the
# epoch; nothing for an empty LINE.
log_stamp() {
	local stamp=${1%% *}
	[[ -n $stamp ]] || return 0
	date -d "${stamp/T/ }" +%s.%N
}


# per_n COUNT N: COUNT / N with two decimals (system calls per message).
per_n() {
	awk -v c="$1" -v n="$2" 'BEGIN { printf "%.2f", c / n }'
}

# ratio A B: A / B with two decimals.
ratio() {
	awk -v a="$1" -v b="$2" 'BEGIN { printf "%.2f", (b > 0 ? a / b : 0) }'
}

# met VALUE TARGET OP: "met" or "not met" (OP is ">=" or "<").
met() {
	if awk -v a="$1" -v b="$2" -v op="$3" 'BEGIN { exit !(op == ">=" ? a >= b : a < b) }'; then
		echo met
	else
		echo "not met"
	fi
}

# median VALUES...: the median; min_max VALUES...: "min–max".
median() {
	printf '%s\n' "$@" | sort -g | awk '{ a[NR] = $1; if ($1 !~ /^[0-9]+$/) frac = 1 }
		END {
			m = NR % 2 ? a[(NR + 1) / 2] : (a[NR / 2] + a[NR / 2 + 1]) / 2
			printf (frac ? "%.2f\n" : "%.0f\n"), m
		}'
}
min_max() {
	printf '%s\n' "$@" | sort -g | awk 'NR == 1 { lo = $1 } { hi = $1 } END { print lo "–" hi }'
}
# stat_of VALUES...: "median (min–max)", or the value alone for one.
stat_of() {
	if (($# == 1)); then
		echo "$1"
	else
		echo "$(median "$@") ($(min_max "$@"))"
	fi
}

declare -A ACC

# acc PHASE FROM TO: adds the CPU ticks between two snapshots to PHASE's
# totals (and the machine's busy and total ticks).
acc() {
	local who
	for who in bridge mosq rabbit busy iowait total; do
		ACC[$1.$who]=$((${ACC[$1.$who]:-0} + ${SNAP[$3.$who]} - ${SNAP[$2.$who]}))
	done
}

# acc_add PHASE WHO SECONDS: adds a tool's CPU seconds to PHASE's totals.
acc_add() {
	ACC[$1.$2]=$(awk -v a="${ACC[$1.$2]:-0}" -v b="$3" 'BEGIN { printf "%.3f", a + b }')
}

# per_msg PHASE WHO COUNT: CPU µs per message (ticks for processes read
# from /proc, seconds for tools).
per_msg() {
	local v=${ACC[$1.$2]:-0}
	case $2 in
	bridge | mosq | rabbit) awk -v t="$v" -v n="$3" -v hz="$HZ" 'BEGIN { printf "%.1f", t * 1e6 / hz / n }' ;;
	*) us_of "$v" "$3" ;;
	esac
}

# phase_busy PHASE: how busy all CPUs were during PHASE, and how much of
# the time they waited for the disk, in %.
phase_busy() {
	awk -v b="${ACC[$1.busy]:-0}" -v w="${ACC[$1.iowait]:-0}" -v t="${ACC[$1.total]:-0}" \
		'BEGIN { if (t > 0) printf "%.0f %% (iowait %.0f %%)", b * 100 / t, w * 100 / t; else printf "0 %%" }'
}

# hwm_read: records the bridge's VmHWM (kB), keeping the largest seen.
HWM_KB=0
hwm_read() {
	local kb
	kb=$(awk '$1 == "VmHWM:" { print $2 }' "/proc/$BRIDGE_PID/status" 2>/dev/null)
	[[ $kb =~ ^[0-9]+$ ]] || fail "cannot read the bridge's VmHWM"
	((kb > HWM_KB)) && HWM_KB=$kb
	return 0
}

# stop_bridge WHEN: reads VmHWM, then stops the bridge; fails the run unless
# it exits 0.  BRIDGE_PID becomes 0 so that a reused PID is never read.
stop_bridge() {
	bridge_must_live "$1"
	hwm_read
	bridge_stop 60 || fail "the bridge did not stop cleanly (exit $?)"
	BRIDGE_PID=0
}

# ---------------------------------------------------------------------------
# Brokers and set-up

mab_init bench
HZ=$(getconf CLK_TCK)
mab_log "N=$N x $REPEAT, size=$SIZE, inflight_max=$INFLIGHT, latency: $LAT_N at $LAT_RATE msg/s; work directory $MAB_TMP"

if [[ $TLS == 1 ]]; then
	# shellcheck source=SCRIPTDIR/../tests/lib/tls.sh
	source "$root/tests/lib/tls.sh"
	tls_make_pki "$MAB_TMP/pki" || fail "cannot make the PKI for BENCH_TLS"
	# mab_init started a node without a TLS listener; the TLS node replaces
	# it, and the plain one is stopped now so that it takes no CPU from
	# the measurements.
	plain_node=("$RABBIT_DIR" "$RABBIT_NODE" "$RABBIT_EPMD_PORT" "$RABBIT_CTL_PORT")
	tls_rabbit_start || fail "RabbitMQ with TLS did not start"
	tls__stop_node "${plain_node[@]}"
	# Besides the plain listener of the publishers, two TLS listeners;
	# the bridge uses MQTT_TLS_PORT (the other one serves t11's wrong-name
	# cases and stays idle).
	tls_mosq_start || fail "mosquitto with TLS did not start"
else
	# shellcheck disable=SC2119 # no extra configuration lines
	mosq_start || fail "mosquitto did not start"
fi
# brokers.sh logs every packet (log_type all), which makes the broker, not
# the bridge, the measured bottleneck; log_type lines add up, so the line
# itself is replaced.
mosq_edit=("s/^max_inflight_messages .*/max_inflight_messages $MOSQ_INFLIGHT/")
if [[ ${BENCH_MOSQ_DEBUG:-0} != 1 ]]; then
	mosq_edit+=('s/^log_type all$/log_type error\nlog_type warning\nlog_type notice\nlog_type information/')
fi
for e in "${mosq_edit[@]}"; do
	sed -i "$e" "$MOSQ_DIR/mosquitto.conf" || fail "cannot edit $MOSQ_DIR/mosquitto.conf"
done
mosq_restart || fail "mosquitto did not restart"
if [[ $TLS == 1 ]]; then
	tls_mosq_wait_listening || fail "mosquitto does not listen on its TLS ports"
fi
BRIDGE_PID=0

BLAST_VHOST=bench-blast
BRIDGE_VHOST=bench-bridge
for MAB_VHOST in "$BLAST_VHOST" "$BRIDGE_VHOST"; do
	new_vhost "$MAB_VHOST" || fail "cannot create vhost $MAB_VHOST"
	sink setup -q "$QUEUE" -x telemetry --declare-exchange -k 'fleet.#' >/dev/null ||
		fail "sink setup failed in vhost $MAB_VHOST"
done
blast_args=(-V "$BLAST_VHOST" -x telemetry -q "$QUEUE" -k 'fleet.#'
	-z "$SIZE" -W "$INFLIGHT" -w "$TIMEOUT")
if [[ $TLS == 1 ]]; then
	blast_args+=(-p "$RABBIT_TLS_PORT" --tls-ca "$TLS_DIR/ca.crt"
		--tls-cert "$TLS_DIR/client.crt" --tls-key "$TLS_DIR/client.key")
else
	blast_args+=(-p "$RABBIT_PORT")
fi

conf=$MAB_TMP/bridge.conf
MAB_VHOST=$BRIDGE_VHOST
# BENCH_RULES: distracting rules under "fleet/" (never matching
# "fleet/devN/temp"), then the one that does, with the default key.
rules_tail=""
if ((RULES > 0)); then
	rules_tail="rules = ("$'\n'
	for ((i = 0; i < RULES - 1; i++)); do
		case $((i % 4)) in
		0) f="fleet/dev$i/temp/alarm" ;;
		1) f="fleet/dev$i/+/hum" ;;
		2) f="fleet/+/room$i" ;;
		*) f="fleet/dev$i/temp/+/x" ;;
		esac
		rules_tail+="  { match = \"$f\"; routing_key = \"x.{topic}\"; },"$'\n'
	done
	rules_tail+="  { match = \"fleet/+/temp\"; routing_key = \"fleet.{1}.temp\"; }"$'\n'");"
fi
PLUGIN_HEADERS=${BENCH_PLUGIN_HEADERS:-}
case $PLUGIN_HEADERS in
"" | 3.10 | 3.12 | none) ;;
*) echo "run.sh: BENCH_PLUGIN_HEADERS must be 3.10, 3.12 or none" >&2; exit 2 ;;
esac
BR_BRIDGE=${PLUGIN_HEADERS:+"plugin_headers = \"$PLUGIN_HEADERS\";"} \
	BR_INFLIGHT=$INFLIGHT BR_SUBSCRIBE='"fleet/#"' BR_LOG_LEVEL=info bridge_conf "$conf" "$CLIENT_ID"
if [[ $TLS == 1 ]]; then
	# As t11_tls.sh configures it: the test CA, and the client certificate
	# both brokers require.
	tls_lines=("tls = true;" "tls_ca_file = \"$TLS_DIR/ca.crt\";"
		"tls_cert_file = \"$TLS_DIR/client.crt\";" "tls_key_file = \"$TLS_DIR/client.key\";")
	{
		conf_set_port "$conf" mqtt "$MQTT_TLS_PORT" &&
			conf_set_port "$conf" amqp "$RABBIT_TLS_PORT" &&
			conf_add "$conf" mqtt "${tls_lines[@]}" &&
			conf_add "$conf" amqp "${tls_lines[@]}"
	} || fail "cannot write the TLS settings into $conf"
	chmod 600 "$conf"
fi
# Appended by the shell itself: 10,000 rules are too long for an
# environment variable handed to another program.
[[ -n $rules_tail ]] && printf '%s\n' "$rules_tail" >>"$conf"
((RULES > 0)) && mab_log "bridge configured with $RULES rule(s)"
# The persistent session the backlog is queued for.
bridge_start "$conf"
stop_bridge "the first start"

# Other work on the machine skews every number; say how much there was.
snap idle0
sleep 2
snap idle1
IDLE_BUSY=$(busy_pct idle0 idle1)
mab_log "machine CPU busy with the brokers idle: $IDLE_BUSY %"

# ---------------------------------------------------------------------------
# Reference, once: RabbitMQ with no consumer, then the sink alone

MAB_VHOST=$BLAST_VHOST
mab_log "reference: mab-blast $N with no consumer, then the sink draining them alone"
job_start blast-ref "$MAB_BLAST" -n "$N" "${blast_args[@]}"
job_must blast-ref "$((TIMEOUT + 30))" "mab-blast failed"
CEIL_NOCONS=$(field msgs_per_s "$(job_out blast-ref)")
t0=$(now)
sink_start sink-ref 0 "$N" --quiet
sink_check sink-ref
SINK_ALONE=$(rate "$N" "$t0" "$(job_end sink-ref)")
SINK_ALONE_CPU=$(job_cpu sink-ref)
mab_log "reference: no consumer $CEIL_NOCONS msg/s; sink alone $SINK_ALONE msg/s"

# ---------------------------------------------------------------------------
# Rounds of a, b and c

CEIL=() CEIL_E2E=() BACK=() BACK_CONN=() BACK_FWD=() LIVE=() LIVE_PUB=() INGEST=()
R_BACK=() R_LIVE=() SINK_LOAD=()
SINKS=()
base=0
for ((r = 1; r <= REPEAT; r++)); do
	# a. The ceiling
	MAB_VHOST=$BLAST_VHOST
	mab_log "round $r/$REPEAT: a. ceiling: mab-blast $N with the sink consuming"
	sink_start "sink-a$r" 0 "$N" --quiet
	sleep 0.5
	snap a0
	job_start "blast-a$r" "$MAB_BLAST" -n "$N" "${blast_args[@]}"
	job_must "blast-a$r" "$((TIMEOUT + 30))" "mab-blast failed"
	sink_check "sink-a$r"
	snap a1
	acc a a0 a1
	acc_add a blast "$(job_cpu "blast-a$r")"
	acc_add a sink "$(job_cpu "sink-a$r")"
	line=$(job_out "blast-a$r")
	ceiling=$(field msgs_per_s "$line")
	CEIL+=("$ceiling")
	CEIL_E2E+=("$(rate "$N" "${SNAP[a0.t]}" "$(job_end "sink-a$r")")")
	SINKS+=("round $r ceiling: $SINK_LINE")
	mab_log "round $r: a. $line"

	# b. Backlog: queue N for the stopped bridge's session, then start it.
	MAB_VHOST=$BRIDGE_VHOST
	mab_log "round $r: b. backlog: queueing $N for the stopped bridge"
	t0=$(now)
	pubs_start "pub-b$r" "$base" "$N"
	pubs_wait "pub-b$r" "publishing the backlog failed"
	INGEST+=("$(rate "$N" "$t0" "$PUBS_END")")
	sink_start "sink-b$r" "$base" "$N"
	sleep 0.5
	before_fwd=$(grep -c 'bridge: forwarding' "$BRIDGE_LOG")
	before_conn=$(grep -c 'mqtt: connected to' "$BRIDGE_LOG")
	# The stopped bridge's CPU reads as 0.  No waiting for "bridge:
	# forwarding": the broker may send SUBACK only after the backlog.
	snap b0
	NOWAIT=1 bridge_start "$conf"
	sink_check "sink-b$r"
	bridge_must_live "the backlog phase"
	snap b1
	acc b b0 b1
	acc_add b sink "$(job_cpu "sink-b$r")"
	SINKS+=("round $r backlog: $SINK_LINE")
	t_end=$(job_end "sink-b$r")
	t_fwd=$(log_stamp "$(grep 'bridge: forwarding' "$BRIDGE_LOG" | sed -n "$((before_fwd + 1))p")")
	t_conn=$(log_stamp "$(grep 'mqtt: connected to' "$BRIDGE_LOG" | sed -n "$((before_conn + 1))p")")
	[[ -n $t_conn ]] || fail "no 'mqtt: connected' line from the bridge"
	[[ -n $t_fwd ]] || t_fwd=$t_conn
	backlog=$(rate "$N" "${SNAP[b0.t]}" "$t_end")
	BACK+=("$backlog")
	BACK_CONN+=("$(rate "$N" "$t_conn" "$t_end")")
	BACK_FWD+=("$(rate "$N" "$t_fwd" "$t_end")")
	R_BACK+=("$(ratio "$backlog" "$ceiling")")
	mab_log "round $r: b. $(secs "${SNAP[b0.t]}" "$t_end") s from start, $(secs "$t_conn" "$t_end") s from the MQTT connection: $backlog msg/s"
	base=$((base + N))

	# c. Live
	mab_log "round $r: c. live: publishing $N as fast as possible"
	sink_start "sink-c$r" "$base" "$N"
	sleep 0.5
	snap c0
	pubs_start "pub-c$r" "$base" "$N"
	pubs_wait "pub-c$r" "the live publishers failed"
	sink_check "sink-c$r"
	bridge_must_live "the live phase"
	snap c1
	acc c c0 c1
	acc_add c pub "$PUBS_CPU"
	acc_add c sink "$(job_cpu "sink-c$r")"
	SINKS+=("round $r live: $SINK_LINE")
	t_end=$(job_end "sink-c$r")
	live=$(rate "$N" "${SNAP[c0.t]}" "$t_end")
	LIVE+=("$live")
	LIVE_PUB+=("$(rate "$N" "${SNAP[c0.t]}" "$PUBS_END")")
	R_LIVE+=("$(ratio "$live" "$ceiling")")
	# A single-threaded sink near 100 % of a CPU would be the bottleneck.
	SINK_LOAD+=("$(awk -v c="$(job_cpu "sink-c$r")" -v a="${SNAP[c0.t]}" -v b="$t_end" \
		'BEGIN { printf "%.0f", c * 100 / (b - a) }')")
	mab_log "round $r: c. $(secs "${SNAP[c0.t]}" "$t_end") s (publishers done after $(secs "${SNAP[c0.t]}" "$PUBS_END") s): $live msg/s"
	base=$((base + N))

	if ((r < REPEAT)); then
		stop_bridge "round $r"
	fi
done

# ---------------------------------------------------------------------------
# d. Latency: RabbitMQ alone, then the bridge of the last round

# The ceiling's latency: the same rate and stamped payloads, published
# straight to RabbitMQ with confirms (over TLS with BENCH_TLS), so that the
# bridge's p99 has a yardstick measured in the same run.
MAB_VHOST=$BLAST_VHOST
mab_log "d. latency of the ceiling: mab-blast $LAT_N at $LAT_RATE msg/s"
sink_start sink-d0 0 "$LAT_N" --latency
sleep 0.5
job_start blast-d0 "$MAB_BLAST" -n "$LAT_N" -r "$LAT_RATE" --stamp "${blast_args[@]}"
job_must blast-d0 "$((TIMEOUT + 30))" "mab-blast at $LAT_RATE msg/s failed"
sink_check sink-d0
SINKS+=("latency of the ceiling: $SINK_LINE")
lat0_line=$(grep '^latency_ms' "$MAB_TMP/job.sink-d0/out") || fail "no latency line from the sink"
mab_log "d. ceiling: $lat0_line"

MAB_VHOST=$BRIDGE_VHOST
mab_log "d. latency: $LAT_N at $LAT_RATE msg/s"
sink_start sink-d "$base" "$LAT_N" --latency
sleep 0.5
snap d0
pub_start pub-d -n "$LAT_N" -s "$base" -r "$LAT_RATE" --stamp -i mab-bench-pub-d
job_must pub-d "$((TIMEOUT + 30))" "the latency publisher failed"
sink_check sink-d
bridge_must_live "the latency phase"
snap d1
acc d d0 d1
SINKS+=("latency: $SINK_LINE")
lat_line=$(grep '^latency_ms' "$MAB_TMP/job.sink-d/out") || fail "no latency line from the sink"
mab_log "d. $lat_line"
base=$((base + LAT_N))

# ---------------------------------------------------------------------------
# Optional profile, outside the measured phases

profile_lines=()
if [[ $PROFILE == 1 ]]; then
	MAB_VHOST=$BRIDGE_VHOST
	# System calls are counted in phase s, with the bridge started under
	# strace so that its start and a backlog are seen too.
	mab_log "profile: perf stat on the bridge during a live run of $PROFILE_N"
	sink_start sink-p2 "$base" "$PROFILE_N" --quiet
	job_start perf-p2 timeout -s INT "$TIMEOUT" perf stat -x , \
		-e task-clock,cycles,instructions,context-switches -p "$BRIDGE_PID"
	sleep 1
	pubs_start pub-p2 "$base" "$PROFILE_N"
	pubs_wait pub-p2 "the profile publishers failed"
	sink_check sink-p2
	kill -INT "$(cat "$MAB_TMP/job.perf-p2/pid")" 2>/dev/null
	job_wait perf-p2 30 >/dev/null
	# perf stat -x, rows: value, unit, event, ...; task-clock is in ms.
	while IFS=, read -r v _ ev _; do
		[[ $v =~ ^[0-9.]+$ ]] || continue
		if [[ $ev == task-clock ]]; then
			ev="task-clock µs"
			v=$(awk -v v="$v" 'BEGIN { print v * 1000 }')
		fi
		profile_lines+=("| bridge $ev per message (perf stat) | $(awk -v c="$v" \
			-v n="$PROFILE_N" 'BEGIN { printf "%.2f", c / n }') | | |")
	done <"$MAB_TMP/job.perf-p2/err"
	base=$((base + PROFILE_N))
fi

# ---------------------------------------------------------------------------
# e. Footprint, and the bridge's own account

stop_bridge "the last round"
stats=$(grep 'stats: ' "$BRIDGE_LOG" | tail -n 1 | sed 's/.*stats: //')
mab_log "bridge $stats"

# ---------------------------------------------------------------------------
# h. The metrics endpoint (BENCH_HTTP=1): the same work through a bridge
# without bridge.http_listen and through one with it, scraped every second,
# in turns.  Each bridge is started on a backlog of HTTP_N (as in b), then
# carries HTTP_N live (as in c), then is stopped; its CPU is read from
# /proc/PID/schedstat (nanoseconds: at HTTP_N = 50,000 and 3 µs a message,
# the clock ticks of /proc/PID/stat would be 15, too coarse for a ratio).

# cpu_ns PID: the CPU nanoseconds of PID's threads (0 if it is gone); clock
# ticks where the kernel has no schedstat.
if [[ -r /proc/self/schedstat ]]; then
	cpu_ns() {
		local f v t=0
		for f in /proc/"$1"/task/*/schedstat; do
			{ read -r v _ <"$f"; } 2>/dev/null && t=$((t + v))
		done
		echo "$t"
	}
	CPU_SOURCE="/proc/PID/schedstat, ns"
else
	cpu_ns() {
		echo $(($(ticks "$1") * 1000000000 / HZ))
	}
	CPU_SOURCE="/proc/PID/stat, clock ticks"
fi

# us_per NS COUNT: NS nanoseconds as µs per item, two decimals.
us_per() {
	awk -v t="$1" -v n="$2" 'BEGIN { printf "%.2f", t / 1000 / n }'
}

# scrape_loop URL STOPFILE: GETs URL every second until STOPFILE exists
# (TIMEOUT times at most); a line "STATUS BYTES" per scrape, status 000
# when nothing answered.
scrape_loop() {
	local i=0
	while [[ ! -e $2 ]] && ((i++ < TIMEOUT)); do
		curl -s -o /dev/null --max-time 5 -w '%{http_code} %{size_download}\n' "$1"
		sleep 1
	done
	return 0
}

# h_stop MODE WHEN: as stop_bridge, the peak RSS going to H_HWM[MODE]
# rather than to the main table's.
declare -A H_HWM=([off]=0 [on]=0)
h_stop() {
	local kb
	bridge_must_live "$2"
	kb=$(awk '$1 == "VmHWM:" { print $2 }' "/proc/$BRIDGE_PID/status" 2>/dev/null)
	[[ $kb =~ ^[0-9]+$ ]] || fail "cannot read the bridge's VmHWM"
	((kb > H_HWM[$1])) && H_HWM[$1]=$kb
	bridge_stop 60 || fail "the bridge did not stop cleanly (exit $?)"
	BRIDGE_PID=0
}

declare -A HB HL HBC HLC
H_ORDER=() H_OK=0 H_NOANSWER=0 H_OTHER=0

# h_run MODE ROUND: one bridge, endpoint MODE (off or on): a backlog of
# HTTP_N, then HTTP_N live.  Appends to HB[MODE] and HL[MODE] (msg/s) and
# HBC[MODE] and HLC[MODE] (CPU µs per message), space-separated by round.
h_run() {
	local mode=$1 r=$2 c=$conf tag=$1$2 stop before t0 cpu0 cpu1 t_end
	stop=$MAB_TMP/scrape-$tag.stop
	[[ $mode == on ]] && c=$conf_http
	mab_log "round $r/$REPEAT: h. endpoint $mode: backlog of $HTTP_N"
	pubs_start "pub-hb-$tag" "$base" "$HTTP_N"
	pubs_wait "pub-hb-$tag" "publishing the backlog of phase h failed"
	sink_start "sink-hb-$tag" "$base" "$HTTP_N" --quiet
	sleep 0.5
	before=$(bridge_forwarding_count)
	snap "hb0"
	NOWAIT=1 bridge_start "$c"
	[[ $mode == on ]] && job_start "scrape-$tag" scrape_loop "$HTTP_URL" "$stop"
	sink_check "sink-hb-$tag"
	bridge_must_live "the backlog of phase h (endpoint $mode)"
	cpu1=$(cpu_ns "$BRIDGE_PID")
	snap "hb1"
	acc "hb_$mode" hb0 hb1
	SINKS+=("round $r endpoint $mode, backlog: $SINK_LINE")
	t_end=$(job_end "sink-hb-$tag")
	HB[$mode]+=" $(rate "$HTTP_N" "${SNAP[hb0.t]}" "$t_end")"
	HBC[$mode]+=" $(us_per "$cpu1" "$HTTP_N")"
	base=$((base + HTTP_N))
	bridge_wait_forwarding "$before" 60

	mab_log "round $r/$REPEAT: h. endpoint $mode: $HTTP_N live"
	sink_start "sink-hl-$tag" "$base" "$HTTP_N" --quiet
	sleep 0.5
	snap "hl0"
	cpu0=$(cpu_ns "$BRIDGE_PID")
	pubs_start "pub-hl-$tag" "$base" "$HTTP_N"
	pubs_wait "pub-hl-$tag" "the live publishers of phase h failed"
	sink_check "sink-hl-$tag"
	bridge_must_live "the live run of phase h (endpoint $mode)"
	cpu1=$(cpu_ns "$BRIDGE_PID")
	snap "hl1"
	acc "hl_$mode" hl0 hl1
	SINKS+=("round $r endpoint $mode, live: $SINK_LINE")
	t_end=$(job_end "sink-hl-$tag")
	HL[$mode]+=" $(rate "$HTTP_N" "${SNAP[hl0.t]}" "$t_end")"
	HLC[$mode]+=" $(us_per "$((cpu1 - cpu0))" "$HTTP_N")"
	base=$((base + HTTP_N))

	if [[ $mode == on ]]; then
		touch "$stop"
		job_wait "scrape-$tag" 30 >/dev/null
		H_OK=$((H_OK + $(awk '$1 == 200' "$MAB_TMP/job.scrape-$tag/out" | wc -l)))
		H_NOANSWER=$((H_NOANSWER + $(awk '$1 == "000"' "$MAB_TMP/job.scrape-$tag/out" | wc -l)))
		H_OTHER=$((H_OTHER + $(awk '$1 != 200 && $1 != "000"' "$MAB_TMP/job.scrape-$tag/out" | wc -l)))
	fi
	h_stop "$mode" "phase h (endpoint $mode)"
	mab_log "round $r: h. endpoint $mode: backlog $(awk '{ print $NF }' <<<"${HB[$mode]}") msg/s," \
		"$(awk '{ print $NF }' <<<"${HBC[$mode]}") µs/msg; live $(awk '{ print $NF }' <<<"${HL[$mode]}") msg/s," \
		"$(awk '{ print $NF }' <<<"${HLC[$mode]}") µs/msg"
}

# scrapes_cpu NAME COUNT ARGS...: the bridge's CPU per scrape (µs) while
# `curl ARGS...` makes COUNT scrapes with no traffic, less what it spends
# idle in as much time (measured just before); checks that all COUNT
# answered 200.  Sets SCRAPE_US, SCRAPE_MS (curl's median time per scrape)
# and SCRAPE_BAD (how many did not answer 200).
scrapes_cpu() {
	local name=$1 count=$2 t0 t1 c0 c1 i0 i1 out=$MAB_TMP/scrapes-$1.out
	shift 2
	i0=$(cpu_ns "$BRIDGE_PID")
	sleep 2
	i1=$(cpu_ns "$BRIDGE_PID")
	t0=$(now)
	c0=$(cpu_ns "$BRIDGE_PID")
	timeout "$TIMEOUT" curl "$@" >"$out" 2>"$MAB_TMP/scrapes-$1.err"
	c1=$(cpu_ns "$BRIDGE_PID")
	t1=$(now)
	SCRAPE_US=$(awk -v c="$((c1 - c0))" -v i="$((i1 - i0))" -v t0="$t0" -v t1="$t1" -v n="$count" \
		'BEGIN { x = c - i / 2 * (t1 - t0); if (x < 0) x = 0; printf "%.1f", x / 1000 / n }')
	SCRAPE_IDLE_US=$(awk -v i="$((i1 - i0))" 'BEGIN { printf "%.1f", i / 1000 / 2 }')
	SCRAPE_MS=$(awk '{ print $3 * 1000 }' "$out" | sort -g |
		awk '{ a[NR] = $1 } END { if (NR) printf "%.2f", a[int((NR + 1) / 2)] }')
	SCRAPE_BAD=$((count - $(awk '$1 == 200' "$out" | wc -l)))
	mab_log "h. $count scrapes ($name): $SCRAPE_US µs of bridge CPU each, curl's median $SCRAPE_MS ms; $SCRAPE_BAD not answered 200"
}

if [[ $HTTP == 1 ]]; then
	MAB_VHOST=$BRIDGE_VHOST
	HTTP_PORT=$(free_port) || fail "no free port for the metrics endpoint"
	HTTP_URL=http://127.0.0.1:$HTTP_PORT/metrics
	conf_http=$MAB_TMP/bridge-http.conf
	awk -v line="    http_listen = \"127.0.0.1:$HTTP_PORT\";" \
		'{ print } $0 == "bridge = {" { print line; found = 1 } END { exit !found }' \
		"$conf" >"$conf_http" || fail "no bridge group in $conf"
	# The same mode too: the bridge warns about a password readable by all.
	chmod --reference="$conf" "$conf_http"
	mab_log "h. the metrics endpoint: off and on by turns, $HTTP_N backlog + $HTTP_N live per bridge, $REPEAT rounds; $HTTP_URL"
	for ((r = 1; r <= REPEAT; r++)); do
		if ((r % 2)); then
			H_ORDER+=("off, on")
			h_run off "$r"
			h_run on "$r"
		else
			H_ORDER+=("on, off")
			h_run on "$r"
			h_run off "$r"
		fi
	done
	((H_OK > 0)) || fail "the metrics endpoint answered none of the scrapes during phase h"

	# One scrape's size, then the CPU of scrapes with no traffic: each on
	# a new connection (curl's -H 'Connection: close'; what a scraper that
	# does not keep connections costs), then all on one (Prometheus keeps
	# its connection).
	mab_log "h. the cost of a scrape: $HTTP_SCRAPES back to back, no traffic"
	bridge_start "$conf_http"
	sleep 1
	curl -s --max-time 5 -o "$MAB_TMP/metrics.txt" "$HTTP_URL" ||
		fail "GET $HTTP_URL failed"
	H_BYTES=$(wc -c <"$MAB_TMP/metrics.txt")
	H_SERIES=$(grep -vc '^#' "$MAB_TMP/metrics.txt")
	grep -q '^mqtt_amqp_bridge_messages_received_total ' "$MAB_TMP/metrics.txt" ||
		fail "the scrape has no mqtt_amqp_bridge_messages_received_total"
	h_args=()
	for ((i = 0; i < HTTP_SCRAPES; i++)); do
		h_args+=(-o /dev/null "$HTTP_URL")
	done
	w_fmt='%{http_code} %{size_download} %{time_total}\n'
	scrapes_cpu close "$HTTP_SCRAPES" -s --max-time 5 -H 'Connection: close' -w "$w_fmt" "${h_args[@]}"
	H_SCRAPE_CLOSE=$SCRAPE_US H_SCRAPE_CLOSE_MS=$SCRAPE_MS H_SCRAPE_BAD=$SCRAPE_BAD
	H_IDLE=$SCRAPE_IDLE_US
	scrapes_cpu keepalive "$HTTP_SCRAPES" -s --max-time 5 -w "$w_fmt" "${h_args[@]}"
	H_SCRAPE_KEEP=$SCRAPE_US H_SCRAPE_KEEP_MS=$SCRAPE_MS H_SCRAPE_BAD=$((H_SCRAPE_BAD + SCRAPE_BAD))
	h_stop on "the scrapes of phase h"
fi

# ---------------------------------------------------------------------------
# s. System calls per message, each phase with a bridge of its own started
# as `strace -c -f -o FILE mqtt-amqp-bridge ...`: a backlog flows from the
# MQTT connection on, so attaching to a running bridge (strace -p) would
# miss its start; started under strace, every call from exec to exit is
# counted (start-up and shut-down add a few hundred, under 0.05 per message
# at the default BENCH_STRACE_N).  Nothing here is timed.

declare -A SYS

# strace_start PHASE [NOWAIT [CONF]]: the bridge (configured by CONF,
# default $conf) under strace, counting into $MAB_TMP/strace-PHASE.txt;
# BRIDGE_PID is strace's PID (strace exits with the bridge, and passes its
# exit status on).
strace_start() {
	STRACE_FILE=$MAB_TMP/strace-$1.txt
	BRIDGE_WRAPPER="strace -c -f -o $STRACE_FILE" NOWAIT=${2:-0} bridge_start "${3:-$conf}"
}

# strace_stop WHEN: SIGTERM to the traced bridge (strace's child), waits
# for both to end; fails the run unless the bridge exited 0.
strace_stop() {
	local child rc
	bridge_must_live "$1"
	child=$(cat "/proc/$BRIDGE_PID/task/$BRIDGE_PID/children" 2>/dev/null ||
		ps -o pid= --ppid "$BRIDGE_PID")
	child=$(awk '{ print $1; exit }' <<<"$child")
	[[ $child =~ ^[0-9]+$ ]] || fail "no bridge process under strace (pid $BRIDGE_PID) after $1"
	kill -TERM "$child" 2>/dev/null
	if ! mab_wait_gone "$BRIDGE_PID" 60; then
		mab_kill_pid "$BRIDGE_PID" 5
		mab_kill_pid "$child" 5
		fail "the bridge under strace did not stop within 60 s after $1"
	fi
	wait "$BRIDGE_PID" 2>/dev/null
	rc=$?
	BRIDGE_PID=0
	((rc == 0)) || fail "the bridge under strace exited with status $rc after $1"
	[[ -s $STRACE_FILE ]] || fail "strace wrote no summary to $STRACE_FILE"
}

# strace_read PHASE: reads $MAB_TMP/strace-PHASE.txt into SYS[PHASE.NAME]
# (calls) and SYS[PHASE.NAME.err] (errors), NAME "total" included.  Rows
# of strace -c: % time, seconds, usecs/call, calls, [errors,] syscall.
strace_read() {
	local calls errs name
	while read -r calls errs name; do
		SYS[$1.$name]=$calls
		SYS[$1.$name.err]=$errs
	done < <(awk '$1 ~ /^[0-9.]+$/ && $4 ~ /^[0-9]+$/ && (NF == 5 || NF == 6) {
		print $4, (NF == 6 ? $5 : 0), $NF }' "$MAB_TMP/strace-$1.txt")
	[[ -n ${SYS[$1.total]:-} ]] || fail "no total in $MAB_TMP/strace-$1.txt"
}

if [[ $STRACE == 1 ]]; then
	MAB_VHOST=$BRIDGE_VHOST
	mab_log "s. system calls, backlog: queueing $STRACE_N for the stopped bridge"
	pubs_start pub-sb "$base" "$STRACE_N"
	pubs_wait pub-sb "publishing the traced backlog failed"
	sink_start sink-sb "$base" "$STRACE_N" --quiet
	sleep 0.5
	strace_start backlog 1
	sink_check sink-sb
	strace_stop "the traced backlog"
	SINKS+=("traced backlog: $SINK_LINE")
	strace_read backlog
	base=$((base + STRACE_N))

	mab_log "s. system calls, live: publishing $STRACE_N"
	sink_start sink-sl "$base" "$STRACE_N" --quiet
	strace_start live
	pubs_start pub-sl "$base" "$STRACE_N"
	pubs_wait pub-sl "the traced live publishers failed"
	sink_check sink-sl
	strace_stop "the traced live run"
	SINKS+=("traced live: $SINK_LINE")
	strace_read live
	base=$((base + STRACE_N))
	mab_log "s. system calls per message: backlog $(per_n "${SYS[backlog.total]}" "$STRACE_N"), live $(per_n "${SYS[live.total]}" "$STRACE_N")"

	# Phase h's question: does the endpoint, served but not scraped, add
	# system calls to the forwarding path?  The same two runs with it on.
	if [[ $HTTP == 1 ]]; then
		mab_log "s. system calls with the metrics endpoint on, nobody scraping: backlog of $STRACE_N"
		pubs_start pub-sbh "$base" "$STRACE_N"
		pubs_wait pub-sbh "publishing the traced backlog (endpoint on) failed"
		sink_start sink-sbh "$base" "$STRACE_N" --quiet
		sleep 0.5
		strace_start backlog_http 1 "$conf_http"
		sink_check sink-sbh
		strace_stop "the traced backlog with the endpoint on"
		SINKS+=("traced backlog, endpoint on: $SINK_LINE")
		strace_read backlog_http
		base=$((base + STRACE_N))

		mab_log "s. system calls with the metrics endpoint on, nobody scraping: live $STRACE_N"
		sink_start sink-slh "$base" "$STRACE_N" --quiet
		strace_start live_http 0 "$conf_http"
		pubs_start pub-slh "$base" "$STRACE_N"
		pubs_wait pub-slh "the traced live publishers (endpoint on) failed"
		sink_check sink-slh
		strace_stop "the traced live run with the endpoint on"
		SINKS+=("traced live, endpoint on: $SINK_LINE")
		strace_read live_http
		base=$((base + STRACE_N))
		mab_log "s. system calls per message, endpoint on: backlog $(per_n "${SYS[backlog_http.total]}" "$STRACE_N"), live $(per_n "${SYS[live_http.total]}" "$STRACE_N")"
	fi
fi

# ---------------------------------------------------------------------------
# Scale-out, last, so that it skews none of the above: bench/scale.sh with
# brokers of its own but this run's RabbitMQ (exported by brokers.sh).

SCALE_TABLE=""
if [[ $SCALE == 1 ]]; then
	mab_log "scale-out: bench/scale.sh, bridges sharing one MQTT shared subscription"
	SCALE_TABLE=$(BRIDGE_BIN=$BRIDGE_BIN "$root/bench/scale.sh") ||
		fail "bench/scale.sh failed"
fi

# Failover, last too: the cluster test, whose times are what is reported.
FAILOVER_TABLE=""
if [[ $FAILOVER == 1 ]]; then
	mab_log "failover: tests/integration/t22_cluster_failover.sh"
	fo_out=$MAB_TMP/failover.out
	BUILD_DIR=$BUILD_DIR BRIDGE_BIN=$BRIDGE_BIN bash "$root/tests/integration/t22_cluster_failover.sh" \
		>"$fo_out" 2>&1 || { tail -n 40 "$fo_out" >&2; fail "the failover test failed"; }
	FAILOVER_TABLE=$(
		echo "Failover of a RabbitMQ cluster node (t22: three nodes, quorum queue, 30,000 messages at"
		echo "3,000 msg/s, the bridge's node killed with SIGKILL; times after the kill, from the"
		echo "bridge's log; the first confirm is bracketed by stats lines asked for every 20 ms):"
		sed -n -e 's/.*\] follower: failover after the kill (bridge log timestamps): /  the node held a follower of the queue: /p' \
			-e 's/.*\] leader: failover after the kill (bridge log timestamps): /  the node held the queue'"'"'s leader:    /p' "$fo_out"
	)
fi

# ---------------------------------------------------------------------------
# Report

RN=$((REPEAT * N))
r_back=$(median "${R_BACK[@]}")
r_live=$(median "${R_LIVE[@]}")
hwm_mib=$(awk -v k="$HWM_KB" 'BEGIN { printf "%.1f", k / 1024 }')
sink_load_max=$(printf '%s\n' "${SINK_LOAD[@]}" | sort -n | tail -n 1)
if ((sink_load_max >= 80)); then
	sink_note="The sink used up to $sink_load_max % of a CPU in the live phase: it may be what limits the end-to-end numbers."
else
	sink_note="The sink used at most $sink_load_max % of a CPU in the live phase (it is single-threaded): it is not the bottleneck."
fi
bridge_all=$(awk -v t="$((${ACC[b.bridge]} + ${ACC[c.bridge]} + ${ACC[d.bridge]}))" \
	-v n="$((2 * RN + LAT_N))" -v hz="$HZ" 'BEGIN { printf "%.1f", t * 1e6 / hz / n }')
p() { field "$1" "$lat_line"; }
p0() { field "$1" "$lat0_line"; }

# mb_of RATES...: each rate (msg/s) as MB/s of payload, one a line.
mb_of() {
	local v
	for v in "$@"; do
		awk -v r="$v" -v s="$SIZE" 'BEGIN { printf "%.1f\n", r * s / 1e6 }'
	done
}
mapfile -t CEIL_MB < <(mb_of "${CEIL[@]}")
mapfile -t BACK_MB < <(mb_of "${BACK[@]}")
mapfile -t LIVE_MB < <(mb_of "${LIVE[@]}")

# RabbitMQ's CPU per message with the bridge, against the ceiling's.
rabbit_a=$(per_msg a rabbit "$RN")
rabbit_b=$(per_msg b rabbit "$RN")
rabbit_c=$(per_msg c rabbit "$RN")
rabbit_rb=$(ratio "$rabbit_b" "$rabbit_a")
rabbit_rc=$(ratio "$rabbit_c" "$rabbit_a")
lat_ratio=$(ratio "$(p p99)" "$(p0 p99)")

if [[ $TLS == 1 ]]; then
	tls_note="TLS (BENCH_TLS=1): the bridge subscribes through mosquitto's TLS listener and
publishes to RabbitMQ's TLS listener (test CA, client certificates, both verified), and
mab-blast publishes the ceiling over TLS too; the publishers (mab-pub) use mosquitto's
plain listener and the sink RabbitMQ's plain one."
else
	tls_note="Plain TCP on every connection (BENCH_TLS=1 puts the bridge and mab-blast on TLS)."
fi

# The table, one row a line: row MEASUREMENT VALUE [TARGET STATUS].
T=()
row() {
	T+=("| $1 | $2 | ${3:-} | ${4:-} |")
}
# MB/s rows only when the payload size was chosen: at the default 100
# bytes they say nothing msg/s does not.
mb_row() {
	[[ -n ${BENCH_SIZE:-} ]] && row "$@"
	return 0
}
row "machine CPU busy before the run, brokers idle (%)" "$IDLE_BUSY"
row "RabbitMQ ceiling: mab-blast with the sink consuming (msg/s)" "$(stat_of "${CEIL[@]}")"
mb_row "same, in payload MB/s" "$(stat_of "${CEIL_MB[@]}")"
row "same, first publish to last consumed (msg/s)" "$(stat_of "${CEIL_E2E[@]}")"
row "RabbitMQ, mab-blast with no consumer (msg/s, once)" "$CEIL_NOCONS"
row "RabbitMQ + sink draining that queue alone (msg/s, once)" "$SINK_ALONE"
row "publishers into mosquitto, bridge stopped (msg/s)" "$(stat_of "${INGEST[@]}")"
row "bridge backlog, from start (msg/s)" "$(stat_of "${BACK[@]}")"
mb_row "same, in payload MB/s" "$(stat_of "${BACK_MB[@]}")"
row "bridge backlog, from its \"mqtt: connected\" line (msg/s)" "$(stat_of "${BACK_CONN[@]}")"
row "bridge backlog, from its \"bridge: forwarding\" line (msg/s) ¹" "$(stat_of "${BACK_FWD[@]}")"
row "**ratio backlog / ceiling**" "$(stat_of "${R_BACK[@]}")" ">= $RATIO_TARGET" "$(met "$r_back" "$RATIO_TARGET" ">=")"
row "bridge live, first publish to last consumed (msg/s)" "$(stat_of "${LIVE[@]}")"
mb_row "same, in payload MB/s" "$(stat_of "${LIVE_MB[@]}")"
row "publishers in the live phase, acked by mosquitto (msg/s)" "$(stat_of "${LIVE_PUB[@]}")"
row "**ratio live / ceiling**" "$(stat_of "${R_LIVE[@]}")" ">= $RATIO_TARGET" "$(met "$r_live" "$RATIO_TARGET" ">=")"
row "latency at $LAT_RATE msg/s, $LAT_N msgs, bridge: p50 / p90 / p99 / max (ms)" "$(p p50) / $(p p90) / $(p p99) / $(p max)"
row "latency at $LAT_RATE msg/s, $LAT_N msgs, ceiling (mab-blast to the sink): p50 / p90 / p99 / max (ms)" "$(p0 p50) / $(p0 p90) / $(p0 p99) / $(p0 max)"
row "**latency p99: bridge / ceiling (ms), ratio**" "$(p p99) / $(p0 p99), $lat_ratio"
row "**bridge peak RSS, VmHWM (MiB)**" "$hwm_mib" "< 8" "$(met "$HWM_KB" "$RSS_TARGET_KB" "<")"
row "bridge mapping rules (BENCH_RULES)" "$RULES"
row "**bridge CPU per message: backlog / live / latency (µs)**" "$(per_msg b bridge "$RN") / $(per_msg c bridge "$RN") / $(per_msg d bridge "$LAT_N")"
row "bridge CPU per message, all $((2 * RN + LAT_N)) measured (µs)" "$bridge_all"
row "**RabbitMQ CPU per message: ceiling / backlog / live (µs)**" "$rabbit_a / $rabbit_b / $rabbit_c"
row "RabbitMQ CPU per message, ratio to the ceiling's: backlog / live" "$rabbit_rb / $rabbit_rc"
row "CPU µs/msg, ceiling: mab-blast / RabbitMQ / sink; machine busy" "$(per_msg a blast "$RN") / $rabbit_a / $(per_msg a sink "$RN"); $(phase_busy a)"
row "CPU µs/msg, backlog: bridge / mosquitto / RabbitMQ / sink; machine busy" "$(per_msg b bridge "$RN") / $(per_msg b mosq "$RN") / $rabbit_b / $(per_msg b sink "$RN"); $(phase_busy b)"
row "CPU µs/msg, live: bridge / mosquitto / RabbitMQ / publishers / sink; machine busy" "$(per_msg c bridge "$RN") / $(per_msg c mosq "$RN") / $rabbit_c / $(per_msg c pub "$RN") / $(per_msg c sink "$RN"); $(phase_busy c)"
row "CPU µs/msg, latency: bridge / mosquitto / RabbitMQ; machine busy" "$(per_msg d bridge "$LAT_N") / $(per_msg d mosq "$LAT_N") / $(per_msg d rabbit "$LAT_N"); $(phase_busy d)"

# System calls: the total, the errors, and the calls most frequent in the
# two phases together, each per message.
SYS_TOP=()
if [[ $STRACE == 1 ]]; then
	mapfile -t SYS_TOP < <(for k in "${!SYS[@]}"; do
		[[ $k == *.err || $k == *.total ]] && continue
		[[ $k == backlog.* || $k == live.* ]] || continue
		echo "${k#*.} ${SYS[$k]}"
	done | awk '{ c[$1] += $2 } END { for (n in c) print c[n], n }' | sort -k1,1rn -k2 |
		head -n 8 | awk '{ print $2 }')
	row "**bridge system calls per message under strace: backlog / live ($STRACE_N msgs each)**" \
		"$(per_n "${SYS[backlog.total]}" "$STRACE_N") / $(per_n "${SYS[live.total]}" "$STRACE_N")"
	row "bridge system calls that failed, per message (strace's errors column): backlog / live" \
		"$(per_n "${SYS[backlog.total.err]}" "$STRACE_N") / $(per_n "${SYS[live.total.err]}" "$STRACE_N")"
	for name in "${SYS_TOP[@]}"; do
		v=""
		for ph in backlog live; do
			[[ -n $v ]] && v+=" / "
			v+=$(per_n "${SYS[$ph.$name]:-0}" "$STRACE_N")
			e=$(per_n "${SYS[$ph.$name.err]:-0}" "$STRACE_N")
			[[ $e == 0.00 ]] || v+=" ($e failed)"
		done
		row "bridge $name per message: backlog / live" "$v"
	done
fi
if ((${#profile_lines[@]} > 0)); then
	T+=("${profile_lines[@]}")
fi

# The metrics endpoint's table (phase h), printed after the others.
HTTP_TABLE=""
if [[ $HTTP == 1 ]]; then
	# h_list MODE ARRAY: ARRAY's values of MODE, one per round, as a list.
	h_list() {
		local -n src=$1
		read -r -a H_L <<<"${src[$2]}"
	}
	# h_ratios A B: A[i] / B[i] of two lists, one a line.
	h_ratios() {
		paste <(tr ' ' '\n' <<<"$1") <(tr ' ' '\n' <<<"$2") |
			awk '{ printf "%.2f\n", ($2 > 0 ? $1 / $2 : 0) }'
	}
	declare -A HV HR
	for m in HB HL HBC HLC; do
		for mode in off on; do
			h_list "$m" "$mode"
			HV[$m.$mode]=${H_L[*]}
		done
		HR[$m]=$(h_ratios "${HV[$m.on]}" "${HV[$m.off]}" | paste -sd' ')
	done
	# h_stat KEY: "median (min–max)" of a list.
	h_stat() {
		# shellcheck disable=SC2086 # the list is split on purpose
		stat_of $1
	}
	hwm() { awk -v k="$1" 'BEGIN { printf "%.1f", k / 1024 }'; }
	HT=()
	hrow() {
		HT+=("| $1 | $2 | $3 | ${4:-} |")
	}
	hrow "bridge backlog of $HTTP_N, from its start to the last consumed (msg/s)" \
		"$(h_stat "${HV[HB.off]}")" "$(h_stat "${HV[HB.on]}")" "$(h_stat "${HR[HB]}")"
	hrow "bridge live, $HTTP_N, first publish to last consumed (msg/s)" \
		"$(h_stat "${HV[HL.off]}")" "$(h_stat "${HV[HL.on]}")" "$(h_stat "${HR[HL]}")"
	hrow "**bridge CPU per message, backlog (µs, from its start)**" \
		"$(h_stat "${HV[HBC.off]}")" "$(h_stat "${HV[HBC.on]}")" "$(h_stat "${HR[HBC]}")"
	hrow "**bridge CPU per message, live (µs)**" \
		"$(h_stat "${HV[HLC.off]}")" "$(h_stat "${HV[HLC.on]}")" "$(h_stat "${HR[HLC]}")"
	hrow "machine CPU busy: backlog; live" "$(phase_busy hb_off); $(phase_busy hl_off)" \
		"$(phase_busy hb_on); $(phase_busy hl_on)"
	hrow "bridge peak RSS, VmHWM (MiB)" "$(hwm "${H_HWM[off]}")" "$(hwm "${H_HWM[on]}")"
	hrow "scrapes during the runs, one a second: answered 200 / no answer / other" "" \
		"$H_OK / $H_NOANSWER / $H_OTHER"
	hrow "**one scrape of /metrics (bytes; samples)**" "" "$H_BYTES; $H_SERIES"
	hrow "**bridge CPU per scrape, $HTTP_SCRAPES back to back, no traffic: new connection each / one kept alive (µs)**" \
		"" "$H_SCRAPE_CLOSE / $H_SCRAPE_KEEP"
	hrow "curl's time per scrape, median: new connection each / one kept alive (ms)" "" \
		"$H_SCRAPE_CLOSE_MS / $H_SCRAPE_KEEP_MS"
	hrow "back-to-back scrapes not answered 200" "" "$H_SCRAPE_BAD"
	hrow "bridge CPU idle, subtracted from the above (µs per second)" "" "$H_IDLE"
	declare -A H_SYS_MAX=()
	if [[ $STRACE == 1 ]]; then
		for ph in backlog live; do
			off=$(per_n "${SYS[$ph.total]}" "$STRACE_N")
			on=$(per_n "${SYS[${ph}_http.total]}" "$STRACE_N")
			hrow "**bridge system calls per message under strace, nobody scraping: $ph ($STRACE_N msgs)**" \
				"$off" "$on" "$(awk -v a="$on" -v b="$off" 'BEGIN { printf "%+.2f", a - b }')"
		done
		hrow "same, failed (strace's errors column): backlog / live" \
			"$(per_n "${SYS[backlog.total.err]}" "$STRACE_N") / $(per_n "${SYS[live.total.err]}" "$STRACE_N")" \
			"$(per_n "${SYS[backlog_http.total.err]}" "$STRACE_N") / $(per_n "${SYS[live_http.total.err]}" "$STRACE_N")"
		# Each call of the four runs: per message off and on, and the
		# largest difference; the calls only the endpoint makes (its
		# socket, its epoll set), with their counts over the whole run.
		mapfile -t h_names < <(for k in "${!SYS[@]}"; do
			[[ $k == *.err || $k == *.total ]] && continue
			echo "${k#*.}"
		done | sort -u)
		h_only=""
		for ph in backlog live; do
			H_SYS_MAX[$ph]=$(for name in "${h_names[@]}"; do
				awk -v a="${SYS[${ph}_http.$name]:-0}" -v b="${SYS[$ph.$name]:-0}" -v n="$STRACE_N" -v c="$name" \
					'BEGIN { d = (a - b) / n; printf "%.4f %s\n", (d < 0 ? -d : d), c }'
			done | sort -k1,1gr | head -n 1)
		done
		for name in "${h_names[@]}"; do
			[[ -z ${SYS[backlog.$name]:-} && -z ${SYS[live.$name]:-} ]] || continue
			h_only+="${h_only:+, }$name ${SYS[backlog_http.$name]:-0} / ${SYS[live_http.$name]:-0}"
		done
		for name in "${SYS_TOP[@]}"; do
			hrow "bridge $name per message: backlog / live" \
				"$(per_n "${SYS[backlog.$name]:-0}" "$STRACE_N") / $(per_n "${SYS[live.$name]:-0}" "$STRACE_N")" \
				"$(per_n "${SYS[backlog_http.$name]:-0}" "$STRACE_N") / $(per_n "${SYS[live_http.$name]:-0}" "$STRACE_N")"
		done
		hrow "largest difference of one call, per message: backlog; live" "" \
			"${H_SYS_MAX[backlog]}; ${H_SYS_MAX[live]}"
		hrow "calls made only with the endpoint on, whole run (calls: backlog / live)" "" "${h_only:-none}"
	else
		hrow "system calls per message" "" "not counted (BENCH_STRACE=0)"
	fi
	HTTP_TABLE=$(
		echo "### The metrics endpoint (BENCH_HTTP=1)"
		echo
		echo "The same work through a bridge without bridge.http_listen and through one with it while"
		echo "curl GETs /metrics every second, by turns (order per round below), $REPEAT rounds; each"
		echo "bridge drains a backlog of $HTTP_N, then carries $HTTP_N live.  Bridge CPU from $CPU_SOURCE."
		echo "Values are median (min–max) over the rounds; on / off is taken within each round."
		echo "The system calls are counted in phase s, by bridges started under strace -c -f."
		echo
		echo "| measurement | endpoint off | endpoint on | on / off |"
		echo "|---|---|---|---|"
		printf '%s\n' "${HT[@]}"
		echo
		echo "| round | order | backlog off / on (msg/s) | ratio | live off / on (msg/s) | ratio | CPU backlog off / on (µs/msg) | ratio | CPU live off / on (µs/msg) | ratio |"
		echo "|---|---|---|---|---|---|---|---|---|---|"
		for ((r = 0; r < REPEAT; r++)); do
			cols=""
			for m in HB HL HBC HLC; do
				read -r -a a <<<"${HV[$m.off]}"
				read -r -a b <<<"${HV[$m.on]}"
				read -r -a q <<<"${HR[$m]}"
				cols+=" ${a[r]} / ${b[r]} | ${q[r]} |"
			done
			echo "| $((r + 1)) | ${H_ORDER[r]} |$cols"
		done
	)
fi

cat <<REPORT

## mqtt-amqp-bridge benchmark

$(date -u +%Y-%m-%dT%H:%M:%SZ), $(nproc) CPUs, N=$N messages x $REPEAT rounds, payload $SIZE bytes,
QoS 1 / persistent, plugin headers ${PLUGIN_HEADERS:-3.10}, inflight_max (and mab-blast window) $INFLIGHT, mosquitto
max_inflight_messages $MOSQ_INFLIGHT, sink prefetch $PREFETCH, publishers $PUB_STREAMS x mab-pub of $PUB_CHUNK.
Bridge: $BRIDGE_BIN.
$tls_note
Rates are median (min–max) over the rounds; each ratio is taken against the
ceiling of its own round.

| measurement | value | target | status |
|---|---|---|---|
REPORT
printf '%s\n' "${T[@]}"
cat <<REPORT

| round | ceiling | backlog | ratio | live | ratio |
|---|---|---|---|---|---|
REPORT
for ((r = 0; r < REPEAT; r++)); do
	echo "| $((r + 1)) | ${CEIL[r]} | ${BACK[r]} | ${R_BACK[r]} | ${LIVE[r]} | ${R_LIVE[r]} |"
done
cat <<REPORT

¹ "bridge: forwarding" is logged on SUBACK, but a resumed session's queued
messages flow from CONNACK on and the broker may send SUBACK after many of
them; the "mqtt: connected" rate is the meaningful one.
$sink_note
RabbitMQ + sink draining $N alone used $(us_of "$SINK_ALONE_CPU" "$N") µs of sink CPU per message.
Duplicates seen by the sinks (allowed, at least once): $DUPLICATES.
Last bridge process: $stats
REPORT
if [[ -n $HTTP_TABLE ]]; then
	echo
	printf '%s\n' "$HTTP_TABLE"
	echo
fi
printf 'Sink, %s\n' "${SINKS[@]}"
echo
printf '%s\n' "$RULES_TABLE"
[[ -n $SCALE_TABLE ]] && printf '%s\n' "$SCALE_TABLE"
[[ -n $FAILOVER_TABLE ]] && printf '%s\n' "$FAILOVER_TABLE"

# ---------------------------------------------------------------------------
# The summary for bench/matrix.sh: one KEY=VALUE a line, medians where the
# table shows ranges.  Written last, and renamed into place, so that a file
# exists only for a run that succeeded.  The run fails on a lost message,
# so "lost" is always 0 here.

if [[ -n $SUMMARY ]]; then
	{
		echo "bridge_bin=$BRIDGE_BIN"
		echo "n=$N"
		echo "repeat=$REPEAT"
		echo "size=$SIZE"
		echo "inflight=$INFLIGHT"
		echo "mosq_inflight=$MOSQ_INFLIGHT"
		echo "tls=$TLS"
		echo "rules=$RULES"
		echo "idle_busy_pct=$IDLE_BUSY"
		echo "ceiling_msgs=$(median "${CEIL[@]}")"
		echo "backlog_msgs=$(median "${BACK[@]}")"
		echo "backlog_conn_msgs=$(median "${BACK_CONN[@]}")"
		echo "live_msgs=$(median "${LIVE[@]}")"
		echo "ratio_backlog=$r_back"
		echo "ratio_live=$r_live"
		echo "ceiling_mbs=$(median "${CEIL_MB[@]}")"
		echo "backlog_mbs=$(median "${BACK_MB[@]}")"
		echo "live_mbs=$(median "${LIVE_MB[@]}")"
		echo "bridge_cpu_backlog_us=$(per_msg b bridge "$RN")"
		echo "bridge_cpu_live_us=$(per_msg c bridge "$RN")"
		echo "bridge_cpu_latency_us=$(per_msg d bridge "$LAT_N")"
		echo "mosq_cpu_backlog_us=$(per_msg b mosq "$RN")"
		echo "mosq_cpu_live_us=$(per_msg c mosq "$RN")"
		echo "rabbit_cpu_ceiling_us=$rabbit_a"
		echo "rabbit_cpu_backlog_us=$rabbit_b"
		echo "rabbit_cpu_live_us=$rabbit_c"
		echo "rabbit_ratio_backlog=$rabbit_rb"
		echo "rabbit_ratio_live=$rabbit_rc"
		echo "lat_rate=$LAT_RATE"
		echo "lat_n=$LAT_N"
		echo "lat_p50_ms=$(p p50)"
		echo "lat_p99_ms=$(p p99)"
		echo "lat_max_ms=$(p max)"
		echo "lat_ceiling_p50_ms=$(p0 p50)"
		echo "lat_ceiling_p99_ms=$(p0 p99)"
		echo "lat_ceiling_max_ms=$(p0 max)"
		echo "lat_p99_ratio=$lat_ratio"
		echo "rss_peak_mib=$hwm_mib"
		echo "lost=0"
		echo "duplicates=$DUPLICATES"
		if [[ $STRACE == 1 ]]; then
			echo "strace_n=$STRACE_N"
			for ph in backlog live; do
				echo "sys_${ph}=$(per_n "${SYS[$ph.total]}" "$STRACE_N")"
				echo "sys_${ph}_err=$(per_n "${SYS[$ph.total.err]}" "$STRACE_N")"
				for name in "${SYS_TOP[@]}"; do
					echo "sys_${ph}_$name=$(per_n "${SYS[$ph.$name]:-0}" "$STRACE_N")"
				done
			done
		fi
		if [[ $HTTP == 1 ]]; then
			echo "http_n=$HTTP_N"
			for m in HB:backlog_msgs HL:live_msgs HBC:cpu_backlog_us HLC:cpu_live_us; do
				k=${m#*:}
				for mode in off on; do
					# shellcheck disable=SC2086 # the list is split on purpose
					echo "http_${k}_$mode=$(median ${HV[${m%%:*}.$mode]})"
				done
				# shellcheck disable=SC2086
				echo "http_${k}_ratio=$(median ${HR[${m%%:*}]})"
				# shellcheck disable=SC2086
				echo "http_${k}_ratio_range=$(min_max ${HR[${m%%:*}]})"
			done
			echo "http_rss_off_mib=$(hwm "${H_HWM[off]}")"
			echo "http_rss_on_mib=$(hwm "${H_HWM[on]}")"
			echo "http_scrapes_ok=$H_OK"
			echo "http_scrapes_failed=$((H_NOANSWER + H_OTHER))"
			echo "http_scrape_bytes=$H_BYTES"
			echo "http_scrape_samples=$H_SERIES"
			echo "http_scrape_cpu_us=$H_SCRAPE_CLOSE"
			echo "http_scrape_keepalive_cpu_us=$H_SCRAPE_KEEP"
			echo "http_idle_cpu_us_per_s=$H_IDLE"
			if [[ $STRACE == 1 ]]; then
				for ph in backlog live; do
					echo "sys_http_${ph}_off=$(per_n "${SYS[$ph.total]}" "$STRACE_N")"
					echo "sys_http_${ph}_on=$(per_n "${SYS[${ph}_http.total]}" "$STRACE_N")"
				done
			fi
		fi
	} >"$SUMMARY.tmp" || fail "cannot write $SUMMARY.tmp"
	mv -f "$SUMMARY.tmp" "$SUMMARY" || fail "cannot write the summary to $SUMMARY"
fi
