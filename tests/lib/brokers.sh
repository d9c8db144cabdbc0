# shellcheck shell=bash
# Variables set here are read by the scripts that source this file.
# shellcheck disable=SC2034
#
# brokers.sh: start and stop private RabbitMQ and mosquitto brokers for the
# integration tests, plus the helpers the tests share (bridge control, log
# waits, cleanup).  Sourced by tests/integration/*.sh, tests/demo.sh and
# bench/run.sh.
#
# Every broker listens on 127.0.0.1 only, on free ports, with its own data
# directory under $MAB_TMP.  Every process started here is stopped by its PID
# from the cleanup trap (mab_trap), never by name.
#
# RabbitMQ is meant to be started once per test run (run.sh) and shared: its
# state is exported (RABBIT_*) so that child test scripts can reach, kill and
# restart it.  The node's PID file is the source of truth for its PID, so a
# restart done by a child is seen by the parent.
#
# Environment:
#   MAB_TMP          working directory (default: a fresh mktemp -d)
#   MAB_KEEP_TMP=1   keep $MAB_TMP even when everything passed
#   RABBIT_START_TIMEOUT  seconds to wait for RabbitMQ to boot (default 120)
#   MAB_RABBIT_BIN   RabbitMQ's scripts (default /usr/lib/rabbitmq/bin)
#   MAB_MOSQUITTO    the mosquitto binary (default: from PATH, else /usr/sbin)
#   MOSQ_MAX_INFLIGHT  mosquitto's max_inflight_messages (default 0: none)
#
# Safe to source from scripts running under `set -euo pipefail`.

MAB_RABBIT_BIN=${MAB_RABBIT_BIN:-/usr/lib/rabbitmq/bin}
if [[ -z ${MAB_MOSQUITTO:-} ]]; then
	MAB_MOSQUITTO=$(command -v mosquitto || echo /usr/sbin/mosquitto)
fi
RABBIT_START_TIMEOUT=${RABBIT_START_TIMEOUT:-120}

# ---------------------------------------------------------------------------
# Generic helpers

# mab_log MESSAGE...: a timestamped progress line on stderr.
mab_log() {
	printf '%s [%s] %s\n' "$(date +%H:%M:%S.%3N)" "${MAB_TEST_NAME:-mab}" "$*" >&2
}

# mab_tmp: makes sure $MAB_TMP exists (a fresh directory unless set).
mab_tmp() {
	if [[ -z ${MAB_TMP:-} ]]; then
		MAB_TMP=$(mktemp -d "${TMPDIR:-/tmp}/mab.XXXXXX") || return 1
		MAB_TMP_OWNED=1
	fi
	mkdir -p "$MAB_TMP" || return 1
}

# mab_alive PID: true while PID exists and is not a zombie.
mab_alive() {
	local pid=$1 stat state
	[[ $pid =~ ^[0-9]+$ ]] || return 1
	{ read -r stat <"/proc/$pid/stat"; } 2>/dev/null || return 1
	# Field 3, after the command name in parentheses.
	state=${stat##*) }
	state=${state%% *}
	[[ -n $state && $state != Z && $state != X ]]
}

# mab_now_ms: milliseconds since the epoch.
mab_now_ms() {
	local t=${EPOCHREALTIME/[.,]/}
	echo "${t:0:-3}"
}

# mab_wait_gone PID SECONDS: waits until PID is gone; false on timeout.
mab_wait_gone() {
	local pid=$1 deadline
	deadline=$(($(mab_now_ms) + $2 * 1000))
	while mab_alive "$pid"; do
		(($(mab_now_ms) >= deadline)) && return 1
		sleep 0.05
	done
	return 0
}

# mab_kill_pid PID [SECONDS]: SIGTERM, then SIGKILL after SECONDS (default 10).
# A stopped process gets SIGCONT so that it can act on the SIGTERM.
mab_kill_pid() {
	local pid=$1 grace=${2:-10}
	mab_alive "$pid" || { wait "$pid" 2>/dev/null; return 0; }
	kill -TERM "$pid" 2>/dev/null || true
	kill -CONT "$pid" 2>/dev/null || true
	if ! mab_wait_gone "$pid" "$grace"; then
		kill -KILL "$pid" 2>/dev/null || true
		mab_wait_gone "$pid" 10 || true
	fi
	return 0
}

# wait_until SECONDS COMMAND...: runs COMMAND every 0.2 s until it succeeds;
# false if SECONDS pass first.
wait_until() {
	local deadline=$((SECONDS + $1))
	shift
	until "$@"; do
		((SECONDS >= deadline)) && return 1
		sleep 0.2
	done
}

# mab__port_in_use PORT: true if anything on this machine has PORT as a local
# TCP port (listening or connected).
mab__port_in_use() {
	local out
	out=$(ss -Htan "( sport = :$1 )" 2>/dev/null) || return 0
	[[ -n $out ]]
}

# free_port: prints a TCP port that nothing uses on this machine.  Ports come
# from 20000-32767 (below Linux's ephemeral range, so no outgoing connection
# takes them meanwhile) and are remembered in $MAB_TMP/ports so that one run
# never hands out the same port twice.
free_port() {
	local port i reg
	mab_tmp || return 1
	reg=$MAB_TMP/ports
	touch "$reg"
	for ((i = 0; i < 200; i++)); do
		port=$((20000 + (RANDOM * 32768 + RANDOM) % 12768))
		grep -qx "$port" "$reg" && continue
		mab__port_in_use "$port" && continue
		echo "$port" >>"$reg"
		echo "$port"
		return 0
	done
	echo "free_port: no free port found" >&2
	return 1
}

# mab__listener_pid PORT: prints the PID listening on 127.0.0.1:PORT, if any.
mab__listener_pid() {
	ss -Hltnp "( sport = :$1 )" 2>/dev/null | sed -n 's/.*pid=\([0-9]*\).*/\1/p' | head -n 1
}

# ---------------------------------------------------------------------------
# Cleanup trap

MAB_CLEANUP=()

# mab_on_exit COMMAND: runs COMMAND (a string, eval'd) at exit; the last
# registered runs first.
mab_on_exit() {
	MAB_CLEANUP+=("$1")
}

# mab_trap: installs the exit trap.  INT and TERM end the script through it.
mab_trap() {
	trap mab__cleanup EXIT
	trap 'exit 130' INT
	trap 'exit 143' TERM
}

mab__cleanup() {
	local rc=$? i
	# A second signal must not cut the cleanup short and leave processes behind.
	trap '' INT TERM
	trap - EXIT
	for ((i = ${#MAB_CLEANUP[@]} - 1; i >= 0; i--)); do
		eval "${MAB_CLEANUP[i]}" || true
	done
	MAB_CLEANUP=()
	if [[ ${MAB_TMP_OWNED:-0} == 1 && -n ${MAB_TMP:-} ]]; then
		if [[ $rc == 0 && ${MAB_KEEP_TMP:-0} != 1 ]]; then
			rm -rf "$MAB_TMP"
		else
			mab_log "kept $MAB_TMP"
		fi
	fi
	exit "$rc"
}

# ---------------------------------------------------------------------------
# RabbitMQ

# rmqctl ARGS...: rabbitmqctl against the private node, bounded to
# RMQCTL_TIMEOUT seconds (default 60).  Never run rabbitmqctl without
# ERL_EPMD_PORT: even `rabbitmqctl help` starts an epmd on the default port
# otherwise.
rmqctl() {
	HOME=$RABBIT_DIR/home ERL_EPMD_PORT=$RABBIT_EPMD_PORT ERL_EPMD_ADDRESS=127.0.0.1 \
	RABBITMQ_CTL_DIST_PORT_MIN=$RABBIT_CTL_PORT RABBITMQ_CTL_DIST_PORT_MAX=$((RABBIT_CTL_PORT + 10)) \
	RABBITMQ_CTL_ERL_ARGS='-kernel inet_dist_use_interface {127,0,0,1}' \
	RABBITMQ_CONF_ENV_FILE=$RABBIT_DIR/rabbitmq-env.conf \
		timeout -k 5 "${RMQCTL_TIMEOUT:-60}" "$MAB_RABBIT_BIN/rabbitmqctl" -n "$RABBIT_NODE" "$@"
}

# rabbit_pid: prints the running node's beam.smp PID (from its PID file).
rabbit_pid() {
	local pid
	pid=$(cat "$RABBIT_DIR/rabbit.pid" 2>/dev/null) || return 1
	mab_alive "$pid" || return 1
	echo "$pid"
}

# rabbit_start: starts a private RabbitMQ node and waits until it runs.
# Exports RABBIT_PORT, RABBIT_NODE, RABBIT_PID, RABBIT_DIR, RABBIT_LOG and the
# ports rmqctl needs.  Registers rabbit_stop with the cleanup trap.
rabbit_start() {
	local try
	mab_tmp || return 1
	for try in 1 2 3; do
		export RABBIT_DIR=$MAB_TMP/rabbit
		rm -rf "$RABBIT_DIR"
		mkdir -p "$RABBIT_DIR/home" "$RABBIT_DIR/mnesia" "$RABBIT_DIR/log" || return 1
		export RABBIT_NODE="mab$$-$try@localhost"
		export RABBIT_PORT RABBIT_DIST_PORT RABBIT_EPMD_PORT RABBIT_CTL_PORT
		RABBIT_PORT=$(free_port) && RABBIT_DIST_PORT=$(free_port) &&
			RABBIT_EPMD_PORT=$(free_port) && RABBIT_CTL_PORT=$(free_port) || return 1
		export RABBIT_LOG=$RABBIT_DIR/log/$RABBIT_NODE.log
		cat >"$RABBIT_DIR/rabbitmq.conf" <<-EOF
			listeners.tcp.default = 127.0.0.1:$RABBIT_PORT
			loopback_users = none
			log.file.level = info
			log.console = false
		EOF
		echo '[].' >"$RABBIT_DIR/enabled_plugins"
		: >"$RABBIT_DIR/rabbitmq-env.conf"
		if rabbit__launch; then
			export RABBIT_OWNER=$BASHPID
			mab_on_exit 'rabbit__cleanup'
			return 0
		fi
		mab_log "RabbitMQ did not start (attempt $try)"
		rabbit__tail
		rabbit__halt
	done
	return 1
}

# rabbit__epmd: makes sure the private epmd runs on RABBIT_EPMD_PORT.  It is
# started here, in the foreground and by PID, so that it never outlives the
# run (an epmd started by erl itself daemonizes and stays).
rabbit__epmd() {
	local pid
	pid=$(cat "$RABBIT_DIR/epmd.pid" 2>/dev/null) || true
	if [[ -n $pid ]] && mab_alive "$pid"; then
		return 0
	fi
	epmd -port "$RABBIT_EPMD_PORT" -address 127.0.0.1 \
		>>"$RABBIT_DIR/epmd.log" 2>&1 </dev/null &
	pid=$!
	echo "$pid" >"$RABBIT_DIR/epmd.pid"
	if ! wait_until 10 mab__port_in_use "$RABBIT_EPMD_PORT" || ! mab_alive "$pid"; then
		echo "epmd did not start on port $RABBIT_EPMD_PORT" >&2
		return 1
	fi
}

# rabbit__launch: boots the node with the settings in RABBIT_*; waits for it.
rabbit__launch() {
	local t0=$SECONDS pid
	rabbit__epmd || return 1
	rm -f "$RABBIT_DIR/rabbit.pid"
	(
		export HOME=$RABBIT_DIR/home
		export ERL_EPMD_PORT=$RABBIT_EPMD_PORT ERL_EPMD_ADDRESS=127.0.0.1
		export RABBITMQ_NODENAME=$RABBIT_NODE
		export RABBITMQ_NODE_IP_ADDRESS=127.0.0.1
		export RABBITMQ_NODE_PORT=$RABBIT_PORT
		export RABBITMQ_DIST_PORT=$RABBIT_DIST_PORT
		export RABBITMQ_MNESIA_BASE=$RABBIT_DIR/mnesia
		export RABBITMQ_LOG_BASE=$RABBIT_DIR/log
		export RABBITMQ_PID_FILE=$RABBIT_DIR/rabbit.pid
		export RABBITMQ_CONFIG_FILE=$RABBIT_DIR/rabbitmq.conf
		export RABBITMQ_ADVANCED_CONFIG_FILE=$RABBIT_DIR/advanced.config
		export RABBITMQ_CONF_ENV_FILE=$RABBIT_DIR/rabbitmq-env.conf
		export RABBITMQ_ENABLED_PLUGINS_FILE=$RABBIT_DIR/enabled_plugins
		export RABBITMQ_PLUGINS_EXPAND_DIR=$RABBIT_DIR/plugins-expand
		export RABBITMQ_SERVER_ADDITIONAL_ERL_ARGS='-kernel inet_dist_use_interface {127,0,0,1}'
		cd "$RABBIT_DIR" || exit 1
		exec "$MAB_RABBIT_BIN/rabbitmq-server" </dev/null
	) >>"$RABBIT_DIR/startup.log" 2>&1 &
	echo $! >"$RABBIT_DIR/wrapper.pid"
	if ! RMQCTL_TIMEOUT=$((RABBIT_START_TIMEOUT + 10)) \
		rmqctl wait --timeout "$RABBIT_START_TIMEOUT" "$RABBIT_DIR/rabbit.pid" \
		>>"$RABBIT_DIR/wait.log" 2>&1; then
		return 1
	fi
	pid=$(rabbit_pid) || return 1
	export RABBIT_PID=$pid
	mab_log "RabbitMQ $RABBIT_NODE up on 127.0.0.1:$RABBIT_PORT (pid $RABBIT_PID) in $((SECONDS - t0)) s"
}

# rabbit__tail: the end of the node's logs, for failure reports.
rabbit__tail() {
	local f
	for f in "$RABBIT_DIR/startup.log" "$RABBIT_LOG" "$RABBIT_DIR/wait.log"; do
		[[ -s $f ]] || continue
		echo "----- tail $f" >&2
		tail -n 30 "$f" >&2
	done
}

# rabbit__halt: stops beam.smp, its wrapper script and the private epmd, by
# PID, without asking the node.
rabbit__halt() {
	local pid
	pid=$(cat "$RABBIT_DIR/rabbit.pid" 2>/dev/null) && mab_kill_pid "$pid" 5
	pid=$(cat "$RABBIT_DIR/wrapper.pid" 2>/dev/null) && mab_kill_pid "$pid" 5
	pid=$(cat "$RABBIT_DIR/epmd.pid" 2>/dev/null) && mab_kill_pid "$pid" 5
	rm -f "$RABBIT_DIR/rabbit.pid" "$RABBIT_DIR/wrapper.pid" "$RABBIT_DIR/epmd.pid"
}

# rabbit__wrapper_gone: waits for the rabbitmq-server wrapper script to end.
rabbit__wrapper_gone() {
	local pid
	pid=$(cat "$RABBIT_DIR/wrapper.pid" 2>/dev/null) || return 0
	mab_wait_gone "$pid" 10 || mab_kill_pid "$pid" 5
	rm -f "$RABBIT_DIR/wrapper.pid"
}

# rabbit_stop: stops the node cleanly (falls back to SIGKILL) and its epmd.
# Also stops a node that is still booting (a test interrupted while it
# restarted the node): that one has no PID file yet, but its wrapper script
# passes SIGTERM on to it.
rabbit_stop() {
	local pid
	pid=$(cat "$RABBIT_DIR/rabbit.pid" 2>/dev/null) || true
	if [[ -n $pid ]] && mab_alive "$pid"; then
		kill -CONT "$pid" 2>/dev/null || true
		rmqctl stop "$RABBIT_DIR/rabbit.pid" >>"$RABBIT_DIR/wait.log" 2>&1 || true
		mab_wait_gone "$pid" 30 || mab_kill_pid "$pid" 5
	fi
	pid=$(cat "$RABBIT_DIR/wrapper.pid" 2>/dev/null) || true
	if [[ -n $pid ]] && ! mab_wait_gone "$pid" 5; then
		mab_kill_pid "$pid" 30
	fi
	pid=$(cat "$RABBIT_DIR/rabbit.pid" 2>/dev/null) || true
	[[ -z $pid ]] || mab_kill_pid "$pid" 5
	pid=$(cat "$RABBIT_DIR/epmd.pid" 2>/dev/null) || true
	[[ -z $pid ]] || mab_kill_pid "$pid" 5
	rm -f "$RABBIT_DIR/rabbit.pid" "$RABBIT_DIR/wrapper.pid" "$RABBIT_DIR/epmd.pid"
}

rabbit__cleanup() {
	[[ ${RABBIT_OWNER:-} == "$BASHPID" ]] || return 0
	rabbit_stop
}

# rabbit_kill9: SIGKILL to beam.smp; the data directory stays.
rabbit_kill9() {
	local pid
	pid=$(cat "$RABBIT_DIR/rabbit.pid" 2>/dev/null) || return 1
	kill -KILL "$pid" 2>/dev/null || true
	mab_wait_gone "$pid" 10
	rabbit__wrapper_gone
	rm -f "$RABBIT_DIR/rabbit.pid"
}

# rabbit_restart: starts the node again with the same ports and data
# directory (durable queues and persistent messages survive).  Stops it
# first if it still runs.
rabbit_restart() {
	if rabbit_pid >/dev/null; then
		rabbit_stop
	fi
	rabbit__wrapper_gone
	rabbit__launch || { rabbit__tail; return 1; }
}

# rabbit_alive: true if the node runs and answers.
rabbit_alive() {
	rabbit_pid >/dev/null && rmqctl -q status >/dev/null 2>&1
}

# new_vhost NAME: a fresh vhost NAME where guest may do everything.
new_vhost() {
	rmqctl -q delete_vhost "$1" >/dev/null 2>&1
	rmqctl -q add_vhost "$1" >/dev/null &&
		rmqctl -q set_permissions -p "$1" guest '.*' '.*' '.*' >/dev/null
}

# rabbit_queue_depth VHOST QUEUE: prints the number of ready+unacked messages.
rabbit_queue_depth() {
	rmqctl -q list_queues -p "$1" --no-table-headers name messages 2>/dev/null |
		awk -v q="$2" '$1 == q { print $2; found = 1 } END { if (!found) exit 1 }'
}

# queue_ready QUEUE: prints how many messages QUEUE (in this test's vhost)
# holds ready, as the queue itself reports them: exact also for quorum
# queues, whose figures in rabbitmqctl list_queues lag behind.  Messages a
# consumer holds unacknowledged are not counted.
queue_ready() {
	sink count -q "$1"
}

# ---------------------------------------------------------------------------
# mosquitto

MOSQ_N=0

# mosq_start [CONFIG LINE]...: starts a mosquitto on 127.0.0.1 with
# persistence in a private directory; extra arguments are appended to its
# configuration, one line each.  Exports MQTT_PORT, MOSQ_PID, MOSQ_LOG,
# MOSQ_DIR.  Registers mosq_stop with the cleanup trap.
# shellcheck disable=SC2120  # the arguments are optional
mosq_start() {
	local try extra
	mab_tmp || return 1
	MOSQ_N=$((MOSQ_N + 1))
	for try in 1 2 3; do
		export MOSQ_DIR=$MAB_TMP/mosquitto.$MOSQ_N
		rm -rf "$MOSQ_DIR"
		mkdir -p "$MOSQ_DIR/data" || return 1
		export MQTT_PORT MOSQ_LOG=$MOSQ_DIR/mosquitto.log
		MQTT_PORT=$(free_port) || return 1
		{
			echo "listener $MQTT_PORT 127.0.0.1"
			echo "allow_anonymous true"
			echo "persistence true"
			echo "persistence_location $MOSQ_DIR/data/"
			echo "max_queued_messages 1000000"
			echo "max_queued_bytes 0"
			# No window of the broker's own (it does enforce one for
			# MQTT 3.1.1 clients, 20 by default): the bridge's
			# mqtt.inflight_max is then the only bound on what it
			# reads ahead, which is what the tests exercise.
			echo "max_inflight_messages ${MOSQ_MAX_INFLIGHT:-0}"
			echo "log_dest file $MOSQ_LOG"
			echo "log_type all"
			echo "connection_messages true"
			echo "log_timestamp true"
			# Run as root directly: the private directory need not be
			# handed to the mosquitto user.
			[[ $(id -u) == 0 ]] && echo "user root"
			for extra in "$@"; do
				echo "$extra"
			done
		} >"$MOSQ_DIR/mosquitto.conf"
		if mosq__launch; then
			mab_on_exit "mosq__cleanup $MOSQ_DIR"
			return 0
		fi
		mab_log "mosquitto did not start (attempt $try)"
		tail -n 20 "$MOSQ_DIR/stderr" "$MOSQ_LOG" >&2 2>/dev/null
	done
	return 1
}

mosq__launch() {
	"$MAB_MOSQUITTO" -c "$MOSQ_DIR/mosquitto.conf" >>"$MOSQ_DIR/stderr" 2>&1 </dev/null &
	export MOSQ_PID=$!
	echo "$MOSQ_PID" >"$MOSQ_DIR/pid"
	if ! wait_until 15 mosq__listening; then
		mab_kill_pid "$MOSQ_PID" 5
		return 1
	fi
	mab_log "mosquitto up on 127.0.0.1:$MQTT_PORT (pid $MOSQ_PID)"
}

mosq__listening() {
	mab_alive "$MOSQ_PID" || return 2
	[[ $(mab__listener_pid "$MQTT_PORT") == "$MOSQ_PID" ]]
}

mosq__cleanup() {
	local pid
	pid=$(cat "$1/pid" 2>/dev/null) && mab_kill_pid "$pid" 10
	rm -f "$1/pid"
}

# mosq_stop: SIGTERM (mosquitto saves its persistence file), then SIGKILL
# after 10 s.
mosq_stop() {
	mab_kill_pid "$MOSQ_PID" 10
	rm -f "$MOSQ_DIR/pid"
}

# mosq_kill9: SIGKILL; state since the last autosave is lost by design.
mosq_kill9() {
	{
		kill -KILL "$MOSQ_PID" || true
		mab_wait_gone "$MOSQ_PID" 10 || true
		wait "$MOSQ_PID" || true
	} 2>/dev/null
	rm -f "$MOSQ_DIR/pid"
}

# mosq_restart: stops mosquitto if it runs and starts it again on the same
# port with the same persistence directory.
mosq_restart() {
	local try
	if mab_alive "$MOSQ_PID"; then
		mosq_stop
	fi
	for try in 1 2 3 4 5; do
		mosq__launch && return 0
		sleep 1
	done
	tail -n 20 "$MOSQ_DIR/stderr" "$MOSQ_LOG" >&2 2>/dev/null
	return 1
}

# mosq_pubacks_from CLIENT_ID [FROM_LINE]: prints how many PUBACKs the broker
# logged from CLIENT_ID (counting log lines after FROM_LINE, default 0).
mosq_pubacks_from() {
	tail -n +"$((${2:-0} + 1))" "$MOSQ_LOG" | grep -cF "Received PUBACK from $1 " || true
}

# mosq_sends_to CLIENT_ID [FROM_LINE]: like mosq_pubacks_from, for PUBLISH
# packets the broker sent to CLIENT_ID.
mosq_sends_to() {
	tail -n +"$((${2:-0} + 1))" "$MOSQ_LOG" | grep -cF "Sending PUBLISH to $1 " || true
}

# mosq_messages_to CLIENT_ID [FROM_LINE] [TOPIC_PREFIX]: how many distinct
# messages the broker sent CLIENT_ID (on topics beginning with TOPIC_PREFIX)
# after line FROM_LINE of its log, each counted once by its packet
# identifier however often it was sent again after a reconnect.  The DUP
# flag cannot tell: mosquitto logs a PUBLISH before writing it, and one whose
# write failed on a dying connection goes out again with DUP clear.  Exact
# while CLIENT_ID is sent fewer than 65,535 messages in that part of the log
# (identifiers are reused after that).
mosq_messages_to() {
	tail -n +"$((${2:-0} + 1))" "$MOSQ_LOG" | grep -F "Sending PUBLISH to $1 (d" |
		grep -F ", '${3:-}" | sed -n 's/.*, m\([0-9]*\), .*/\1/p' | sort -u | wc -l
}

# mosq_log_lines: the current length of the broker's log.
mosq_log_lines() {
	wc -l <"$MOSQ_LOG"
}

# ---------------------------------------------------------------------------
# Test scaffolding

# mab_init NAME: common start of a test script.  Sets BUILD_DIR, BRIDGE_BIN,
# TOOLS, MAB_VHOST=NAME; installs the cleanup trap; starts a private RabbitMQ
# unless run.sh shares one (RABBIT_NODE set); creates the test's vhost.
mab_init() {
	MAB_TEST_NAME=$1
	MAB_VHOST=$1
	local root
	root=$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)
	BUILD_DIR=${BUILD_DIR:-$root}
	BRIDGE_BIN=${BRIDGE_BIN:-$BUILD_DIR/mqtt-amqp-bridge}
	TOOLS=${TOOLS:-$BUILD_DIR/tests/tools}
	MAB_PUB=$TOOLS/mab-pub
	MAB_SINK=$TOOLS/mab-sink
	local f
	for f in "$BRIDGE_BIN" "$MAB_PUB" "$MAB_SINK"; do
		if [[ ! -x $f ]]; then
			echo "$MAB_TEST_NAME: $f is missing (build first, or set BUILD_DIR)" >&2
			exit 77
		fi
	done
	MAB_TMP=""
	MAB_TMP_OWNED=0
	mab_tmp || exit 1
	mab_trap
	if [[ -z ${RABBIT_NODE:-} ]] || ! rabbit_alive; then
		rabbit_start || fail "RabbitMQ did not start"
	fi
	RABBIT_PID=$(rabbit_pid) || fail "RabbitMQ is not running"
	new_vhost "$MAB_VHOST" || fail "cannot create vhost $MAB_VHOST"
	mab_log "work directory $MAB_TMP"
}

# MAB_FAIL_LOGS: more logs whose ends fail shows (e.g. the nodes of a
# cluster, added by cluster_start).
MAB_FAIL_LOGS=()

# fail MESSAGE: reports the failure with the ends of the relevant logs and
# exits 1 (the trap stops everything).
fail() {
	local f
	echo "FAIL $MAB_TEST_NAME: $*" >&2
	local -A shown=()
	# Every bridge's log when a test runs several (bridge_use), each once.
	for f in "${MAB_BRIDGE_LOG[@]}" "${BRIDGE_LOG:-}" "${MOSQ_LOG:-}" "${RABBIT_LOG:-}" \
		"${MAB_FAIL_LOGS[@]}"; do
		[[ -n $f && -s $f && -z ${shown[$f]:-} ]] || continue
		shown[$f]=1
		echo "----- tail -n 40 $f" >&2
		tail -n 40 "$f" >&2
	done
	exit 1
}

pass() {
	echo "PASS $MAB_TEST_NAME${1:+: $1}"
	exit 0
}

# bridge_conf FILE CLIENT_ID [AMQP LINE]...: writes a bridge configuration
# for this test's brokers and vhost.  Variables BR_SUBSCRIBE (a libconfig
# list body, default "fleet/#"; "-" leaves mqtt.subscribe out, so that the
# rules' filters are subscribed), BR_PROTOCOL (default "3.1.1"),
# BR_INFLIGHT, BR_DRAIN, BR_LOG_LEVEL, BR_KEEPALIVE, BR_HEARTBEAT and
# BR_EXCHANGE override defaults; BR_MQTT (libconfig lines, e.g.
# 'session_expiry = 60;') is added to the mqtt group, BR_BRIDGE to the
# bridge group and BR_TAIL (e.g. rules and topology) after it; extra
# arguments are added to the amqp group.  BR_HTTP=1 serves /metrics on
# MAB_HTTP_PORT, a free port chosen on the first call (choose it first when
# bridge_conf runs in a subshell); see metric.  The file is written under another
# name and renamed into place, so that a bridge reloading it never reads
# half of it.
bridge_conf() {
	local file=$1 id=$2 line extra="" subscribe http=""
	shift 2
	if [[ ${BR_HTTP:-0} == 1 ]]; then
		MAB_HTTP_PORT=${MAB_HTTP_PORT:-$(free_port)}
		http="http_listen = \"127.0.0.1:$MAB_HTTP_PORT\";"
	fi
	for line in "$@"; do
		extra+="    $line"$'\n'
	done
	subscribe="subscribe = [ ${BR_SUBSCRIBE:-"\"fleet/#\""} ];"
	[[ ${BR_SUBSCRIBE:-} == - ]] && subscribe=""
	cat >"$file.new" <<-EOF
		mqtt = {
		    host = "127.0.0.1";
		    port = $MQTT_PORT;
		    client_id = "$id";
		    keepalive = ${BR_KEEPALIVE:-60};
		    protocol = "${BR_PROTOCOL:-3.1.1}";
		    inflight_max = ${BR_INFLIGHT:-1000};
		    $subscribe
		${BR_MQTT:-}
		};
		amqp = {
		    host = "127.0.0.1";
		    port = $RABBIT_PORT;
		    vhost = "$MAB_VHOST";
		    username = "guest";
		    password = "guest";
		    heartbeat = ${BR_HEARTBEAT:-10};
		    exchange = "${BR_EXCHANGE:-telemetry}";
		    exchange_type = "topic";
		    declare_exchange = true;
		${extra}};
		bridge = {
		    log_level = "${BR_LOG_LEVEL:-info}";
		    reconnect_min_ms = 200;
		    reconnect_max_ms = 2000;
		    drain_timeout = ${BR_DRAIN:-10};
		    $http
		${BR_BRIDGE:-}
		};
		${BR_TAIL:-}
	EOF
	mv -f "$file.new" "$file"
}

# metric SERIES: prints the value of one series of the bridge's /metrics
# (BR_HTTP=1), written as the exposition writes it:
# 'mqtt_amqp_bridge_messages_dropped_total{reason="unmatched"}'.  Fails
# when the endpoint does not answer or has no such series.
metric() {
	curl -sf --max-time 10 "http://127.0.0.1:$MAB_HTTP_PORT/metrics" |
		awk -v s="$1" '{ i = match($0, / [^ ]+$/) }
			i > 1 && substr($0, 1, i - 1) == s { print $NF; found = 1 }
			END { exit !found }'
}

# metric_is SERIES VALUE SECONDS: waits (bounded) until SERIES reads VALUE;
# confirms may reach the bridge after the consumer has the messages.
metric_is() {
	local deadline=$((SECONDS + $3)) v
	while :; do
		v=$(metric "$1") && [[ $v == "$2" ]] && return 0
		((SECONDS >= deadline)) && { mab_log "metric $1 = ${v:-?}, expected $2"; return 1; }
		sleep 0.2
	done
}

# metric_at_least SERIES MIN: whether SERIES reads MIN or more now.
metric_at_least() {
	local v
	v=$(metric "$1") || return 1
	((v >= $2)) || { mab_log "metric $1 = $v, expected at least $2"; return 1; }
}

# Several bridges in one test: bridge_use NAME makes bridge NAME the one that
# bridge_start, bridge_stop, bridge_kill9, bridge_stats, stats_field,
# bridge_wait_log and the other bridge helpers act on, with its own log,
# $MAB_TMP/bridge-NAME.log, and its own PID (that of its last bridge_start).
# fail shows every such bridge's log.
declare -gA MAB_BRIDGE_PID=() MAB_BRIDGE_LOG=()
MAB_BRIDGE_NAME=

# bridge_use NAME: sets BRIDGE_LOG and BRIDGE_PID to bridge NAME's.
bridge_use() {
	MAB_BRIDGE_NAME=$1
	MAB_BRIDGE_LOG[$1]=$MAB_TMP/bridge-$1.log
	BRIDGE_LOG=${MAB_BRIDGE_LOG[$1]}
	BRIDGE_PID=${MAB_BRIDGE_PID[$1]:-}
}

# bridge_start CONF: starts the bridge (under $BRIDGE_WRAPPER, if set),
# appending to $BRIDGE_LOG (default $MAB_TMP/bridge.log); sets BRIDGE_PID
# (and records it as the current bridge's, after bridge_use).
# Waits (bounded) for a new "bridge: forwarding" line unless NOWAIT=1.
bridge_start() {
	local conf=$1 before wrapper=()
	BRIDGE_LOG=${BRIDGE_LOG:-$MAB_TMP/bridge.log}
	touch "$BRIDGE_LOG"
	before=$(bridge_forwarding_count)
	if [[ -n ${BRIDGE_WRAPPER:-} ]]; then
		read -r -a wrapper <<<"$BRIDGE_WRAPPER"
	fi
	echo "===== $(date +%T.%3N) start: ${wrapper[*]} $BRIDGE_BIN -c $conf" >>"$BRIDGE_LOG"
	"${wrapper[@]}" "$BRIDGE_BIN" -c "$conf" >>"$BRIDGE_LOG" 2>&1 </dev/null &
	BRIDGE_PID=$!
	[[ -n $MAB_BRIDGE_NAME ]] && MAB_BRIDGE_PID[$MAB_BRIDGE_NAME]=$BRIDGE_PID
	mab_on_exit "mab_kill_pid $BRIDGE_PID 15"
	[[ ${NOWAIT:-0} == 1 ]] && return 0
	bridge_wait_forwarding "$before" "${BRIDGE_START_TIMEOUT:-60}"
}

# bridge_wait_forwarding COUNT SECONDS: waits until the log holds more than
# COUNT "bridge: forwarding" lines; fails the test if the bridge dies or
# SECONDS pass.
bridge_wait_forwarding() {
	local before=$1 deadline=$((SECONDS + $2))
	while (($(bridge_forwarding_count) <= before)); do
		mab_alive "$BRIDGE_PID" || fail "bridge (pid $BRIDGE_PID) exited during start-up"
		((SECONDS >= deadline)) && fail "bridge did not log 'bridge: forwarding' within $2 s"
		sleep 0.1
	done
}

# bridge_forwarding_count: how many "bridge: forwarding" lines so far.
bridge_forwarding_count() {
	grep -c 'bridge: forwarding' "$BRIDGE_LOG" || true
}

# bridge_kill9: SIGKILL to the bridge.
bridge_kill9() {
	# Reaped inside the redirection, so that bash's "Killed" job notice
	# does not clutter the output.
	{
		kill -KILL "$BRIDGE_PID" || true
		mab_wait_gone "$BRIDGE_PID" 10 || true
		wait "$BRIDGE_PID" || true
	} 2>/dev/null
	return 0
}

# bridge_stop [SECONDS]: SIGTERM, waits up to SECONDS (default 30) for the
# bridge to exit; returns its exit status (124 on timeout, after SIGKILL).
bridge_stop() {
	local limit=${1:-30} rc
	kill -TERM "$BRIDGE_PID" 2>/dev/null || true
	if ! mab_wait_gone "$BRIDGE_PID" "$limit"; then
		kill -KILL "$BRIDGE_PID" 2>/dev/null || true
		mab_wait_gone "$BRIDGE_PID" 10
		return 124
	fi
	wait "$BRIDGE_PID" 2>/dev/null
	rc=$?
	return "$rc"
}

# bridge_stop_timed: SIGTERM, and the time until the bridge is gone in
# STOP_MS (waits 60 s at most); returns the exit status like bridge_stop.
bridge_stop_timed() {
	local t0 rc
	t0=$(mab_now_ms)
	bridge_stop 60
	rc=$?
	STOP_MS=$(($(mab_now_ms) - t0))
	return "$rc"
}

# notify_start NAME: a mab-notify on $MAB_TMP/NAME.sock printing to
# $MAB_TMP/NAME.out; sets NOTIFY_PID and NOTIFY_OUT.
notify_start() {
	local tool=${TOOLS}/mab-notify
	[[ -x $tool ]] || fail "$tool is missing (build first)"
	NOTIFY_OUT=$MAB_TMP/$1.out
	"$tool" -s "$MAB_TMP/$1.sock" -t 240 >"$NOTIFY_OUT" 2>"$MAB_TMP/$1.err" &
	NOTIFY_PID=$!
	mab_on_exit "mab_kill_pid $NOTIFY_PID 5"
	wait_until 10 test -S "$MAB_TMP/$1.sock" || fail "mab-notify did not bind $MAB_TMP/$1.sock"
}

# watchdog_gaps FROM: the gaps (seconds) between consecutive WATCHDOG=1
# pings in $NOTIFY_OUT after its first FROM lines, one per line.
watchdog_gaps() {
	tail -n +"$(($1 + 1))" "$NOTIFY_OUT" | grep -E ' WATCHDOG=1$' | cut -d' ' -f1 |
		awk 'NR > 1 { printf "%.3f\n", $1 - p } { p = $1 }'
}

# watchdog_watch SECONDS WHILE: watches $NOTIFY_OUT for SECONDS, the bridge
# having WATCHDOG_USEC=2000000 (a ping a second).  Fails the test if the
# bridge exits, if fewer than SECONDS - 2 pings arrive, or if any gap
# between pings reaches the 2 s period (a blocked loop shows gaps of the
# whole wait); WHILE says what the bridge was waiting for.
watchdog_watch() {
	local secs=$1 what=$2 before after gaps
	before=$(grep -c ' WATCHDOG=1$' "$NOTIFY_OUT" || true)
	sleep "$secs"
	after=$(grep -c ' WATCHDOG=1$' "$NOTIFY_OUT" || true)
	mab_alive "$BRIDGE_PID" || fail "the bridge exited while $what"
	((after - before >= secs - 2)) || fail "$((after - before)) WATCHDOG=1 in $secs s while $what"
	gaps=$(watchdog_gaps 0 | awk '$1 >= 2.0' | paste -sd' ')
	[[ -z $gaps ]] || fail "WATCHDOG=1 gaps of 2 s or more (the watchdog period) while $what: $gaps"
	mab_log "$((after - before)) WATCHDOG=1 in $secs s while $what, none 2 s apart"
}

# stats_field NAME: the value of NAME in the last "stats:" line of the log.
stats_field() {
	{ grep 'stats: ' "$BRIDGE_LOG" || true; } | tail -n 1 | sed -n "s/.*[ :]$1=\([0-9]*\).*/\1/p"
}

# bridge_stats: makes the bridge log a fresh "stats:" line (SIGUSR1) and
# waits (10 s at most) until it is there; false if it did not come.
bridge_stats() {
	local before
	before=$(grep -c 'stats: ' "$BRIDGE_LOG")
	kill -USR1 "$BRIDGE_PID" 2>/dev/null || return 1
	wait_until 10 bridge__stats_after "$before"
}

bridge__stats_after() {
	(($(grep -c 'stats: ' "$BRIDGE_LOG") > $1))
}

# bridge_wait_stats SECONDS NAME=VALUE...: asks for stats until every
# counter NAME has reached at least VALUE.  False if SECONDS pass first;
# fails the test if the bridge stops answering.
bridge_wait_stats() {
	local deadline=$((SECONDS + $1)) spec v ok
	shift
	for (( ; ; )); do
		bridge_stats || fail "the bridge (pid $BRIDGE_PID) logged no stats line after SIGUSR1"
		ok=1
		for spec in "$@"; do
			v=$(stats_field "${spec%%=*}")
			((${v:-0} >= ${spec#*=})) || ok=0
		done
		((ok)) && return 0
		((SECONDS >= deadline)) && return 1
		sleep 0.3
	done
}

# expect_nothing_set_aside: fails the test unless every stats line of the
# bridge says dead_lettered=0 dropped=0 and the poison guard never suspected
# a message: the faults the fault tests inject are the brokers', never a
# message's, and must never cost one.
expect_nothing_set_aside() {
	local bad
	bad=$(grep 'stats: ' "$BRIDGE_LOG" | grep -v ' dead_lettered=0 dropped=0 ') || true
	[[ -z $bad ]] || fail "messages were set aside: $bad"
	! grep -q 'the AMQP failure named a message' "$BRIDGE_LOG" ||
		fail "the poison guard suspected a message: $(grep 'named a message' "$BRIDGE_LOG" | head -n 3)"
	grep -q 'stats: ' "$BRIDGE_LOG" || fail "the bridge logged no stats line"
}

# bridge_log_lines: the current length of the bridge's log, to look only at
# what comes after it (bridge_log_since).
bridge_log_lines() {
	wc -l <"$BRIDGE_LOG"
}

# bridge_log_since LINES: the bridge's log after its first LINES lines.
bridge_log_since() {
	tail -n +"$(($1 + 1))" "$BRIDGE_LOG"
}

# bridge_log_has LINES ERE: true if the log after LINES has a line matching ERE.
bridge_log_has() {
	bridge_log_since "$1" | grep -Eq -- "$2"
}

# bridge_wait_log LINES ERE SECONDS: waits until the log after LINES has a
# line matching ERE; fails the test if the bridge dies or SECONDS pass.
bridge_wait_log() {
	local from=$1 re=$2 deadline=$((SECONDS + $3))
	until bridge_log_has "$from" "$re"; do
		mab_alive "$BRIDGE_PID" || fail "bridge (pid $BRIDGE_PID) exited while waiting for /$re/"
		((SECONDS >= deadline)) && fail "the bridge did not log /$re/ within $3 s"
		sleep 0.1
	done
}

# sink SUBCOMMAND ARGS...: mab-sink against this test's RabbitMQ and vhost.
sink() {
	local sub=$1
	shift
	"$MAB_SINK" "$sub" -p "$RABBIT_PORT" -V "$MAB_VHOST" "$@"
}

# pub ARGS...: mab-pub against this test's mosquitto.
pub() {
	"$MAB_PUB" -p "$MQTT_PORT" "$@"
}

# sink_expect LABEL CONSUME-ARGS...: runs `mab-sink consume` on this test's
# vhost; fails the test unless it exits 0 (nothing lost, nothing corrupt).
# Leaves the summary line in SINK_SUMMARY, the duplicate count in
# SINK_DUPLICATES and the whole output (with the per-queue counts of a
# consume from several queues) in SINK_OUT.
sink_expect() {
	local label=$1 out rc
	shift
	out=$(sink consume "$@" 2>"$MAB_TMP/sink.err")
	rc=$?
	SINK_OUT=$out
	[[ -s $MAB_TMP/sink.err ]] && sed 's/^/  /' "$MAB_TMP/sink.err" >&2
	SINK_SUMMARY=$(grep '^received=' <<<"$out")
	[[ -n $out ]] && mab_log "$label: $out"
	((rc == 0)) || fail "$label: ${SINK_SUMMARY:-no summary} (mab-sink status $rc)"
	SINK_DUPLICATES=$(sed -n 's/.* duplicates=\([0-9]*\).*/\1/p' <<<"$SINK_SUMMARY")
}

# sink_setup_main [QUEUE] [BINDING]: declares the bridge's exchange
# ("telemetry", topic, durable) and a durable queue (default "sink") bound
# with BINDING (default "fleet.#").
# shellcheck disable=SC2120  # the arguments are optional
sink_setup_main() {
	sink setup -q "${1:-sink}" -x telemetry --declare-exchange -k "${2:-fleet.#}" ||
		fail "cannot set up queue ${1:-sink}"
}
