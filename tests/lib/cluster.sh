# shellcheck shell=bash
# Variables set here are read by the scripts that source this file.
# shellcheck disable=SC2034
#
# cluster.sh: a private three-node RabbitMQ cluster on 127.0.0.1 for the
# tests of the bridge's list of AMQP addresses (amqp.hosts).  Sourced after
# brokers.sh, whose helpers it uses.
#
# Each node has its own name (mabcPID-I@localhost), AMQP port, distribution
# port and data directory under $MAB_TMP/cluster/I.  The three share one
# private epmd (on a free port, started here by PID) and one Erlang cookie
# (each node's HOME holds the same .erlang.cookie, mode 0400).  The nodes
# boot in parallel as three standalone nodes; nodes 2 and 3 then join node 1
# (stop_app, join_cluster, start_app).  A node killed and restarted with
# cluster_restart keeps its name, ports and data directory, so it rejoins
# the cluster by itself.
#
# Every process started here is stopped by its PID from the cleanup trap
# (registered by cluster_start), never by name; nothing listens on anything
# but 127.0.0.1.
#
# Node I (1..3) is reached through:
#   CLUSTER_PORT_I       its AMQP port
#   CLUSTER_NODE_I       its Erlang node name
#   CLUSTER_DIST_PORT_I  its distribution port
#   CLUSTER_CTL_PORT_I   the first of the ports its rabbitmqctl may use
#   CLUSTER_LOG_I        its RabbitMQ log
# and CLUSTER_DIR, CLUSTER_EPMD_PORT for the whole cluster.
#
# Environment:
#   CLUSTER_START_TIMEOUT  seconds to wait for each step of the start: the
#                          boot of the three nodes (in parallel), a join, a
#                          restart (default: RABBIT_START_TIMEOUT + 60; three
#                          nodes booting at once share the machine's cores)

CLUSTER_SIZE=3
CLUSTER_START_TIMEOUT=${CLUSTER_START_TIMEOUT:-$((RABBIT_START_TIMEOUT + 60))}

# cluster__dir I: node I's directory.
cluster__dir() {
	echo "$CLUSTER_DIR/$1"
}

# cluster__get NAME I: the value of CLUSTER_NAME_I.
cluster__get() {
	local v=CLUSTER_$1_$2
	echo "${!v}"
}

# cluster_rmqctl I ARGS...: rabbitmqctl against node I, bounded to
# RMQCTL_TIMEOUT seconds (default 60).  Like rmqctl, always with the
# private epmd's port (a rabbitmqctl without it starts an epmd of its own on
# the default port, which would outlive the test).
#
# No Erlang VM of the cluster's, node or rabbitmqctl, may start an epmd
# (ERL_AFLAGS=-start_epmd false): one that found the private epmd gone
# (a rabbitmqctl still running while the cleanup stops everything) would
# start a daemon of its own, which would outlive the test.  rabbitmqctl
# stays in the test's process group (timeout --foreground), so that
# run.sh's timeout, which signals that group, stops it too.
cluster_rmqctl() {
	cluster__cli rabbitmqctl "$@"
}

# cluster_queues I ARGS...: rabbitmq-queues against node I (quorum queue
# membership), bounded like cluster_rmqctl.
cluster_queues() {
	cluster__cli rabbitmq-queues "$@"
}

cluster__cli() {
	local tool=$1 i=$2 dir ctl
	shift 2
	dir=$(cluster__dir "$i")
	ctl=$(cluster__get CTL_PORT "$i")
	HOME=$dir/home ERL_EPMD_PORT=$CLUSTER_EPMD_PORT ERL_EPMD_ADDRESS=127.0.0.1 \
	ERL_AFLAGS='-start_epmd false' \
	RABBITMQ_CTL_DIST_PORT_MIN=$ctl RABBITMQ_CTL_DIST_PORT_MAX=$((ctl + 10)) \
	RABBITMQ_CTL_ERL_ARGS='-kernel inet_dist_use_interface {127,0,0,1}' \
	RABBITMQ_CONF_ENV_FILE=$dir/rabbitmq-env.conf \
		timeout --foreground -k 5 "${RMQCTL_TIMEOUT:-60}" "$MAB_RABBIT_BIN/$tool" \
		-n "$(cluster__get NODE "$i")" "$@"
}

# cluster_pid I: prints node I's beam.smp PID (from its PID file); false if
# it does not run.
cluster_pid() {
	local pid
	pid=$(cat "$(cluster__dir "$1")/rabbit.pid" 2>/dev/null) || return 1
	mab_alive "$pid" || return 1
	echo "$pid"
}

# cluster_index PORT: prints the number of the node whose AMQP port is PORT;
# false if none.
cluster_index() {
	local i
	for ((i = 1; i <= CLUSTER_SIZE; i++)); do
		[[ $(cluster__get PORT "$i") == "$1" ]] && { echo "$i"; return 0; }
	done
	return 1
}

# cluster_start: starts the three nodes, forms the cluster and waits until
# every node runs in it.  Exports the CLUSTER_* variables above.  Registers
# cluster_stop with the cleanup trap.  Logs how long it took.
cluster_start() {
	local try i t0=$SECONDS cookie letters=ABCDEFGHIJKLMNOPQRSTUVWXYZ
	mab_tmp || return 1
	if [[ ${CLUSTER_OWNER:-} != "$BASHPID" ]]; then
		export CLUSTER_OWNER=$BASHPID
		mab_on_exit 'cluster__cleanup'
	fi
	for try in 1 2 3; do
		export CLUSTER_DIR=$MAB_TMP/cluster CLUSTER_EPMD_PORT
		rm -rf "$CLUSTER_DIR"
		mkdir -p "$CLUSTER_DIR" || return 1
		CLUSTER_EPMD_PORT=$(free_port) || return 1
		# One cookie for the nodes and their rabbitmqctl: 20 capitals, as
		# Erlang makes them.
		cookie=
		for ((i = 0; i < 20; i++)); do
			cookie+=${letters:RANDOM % 26:1}
		done
		for ((i = 1; i <= CLUSTER_SIZE; i++)); do
			cluster__prepare "$i" "$try" "$cookie" || return 1
		done
		if cluster__epmd && cluster__boot_all && cluster__join_all; then
			for ((i = 1; i <= CLUSTER_SIZE; i++)); do
				MAB_FAIL_LOGS+=("$(cluster__get LOG "$i")")
			done
			mab_log "RabbitMQ cluster of $CLUSTER_SIZE nodes up in $((SECONDS - t0)) s" \
				"(AMQP ports $CLUSTER_PORT_1 $CLUSTER_PORT_2 $CLUSTER_PORT_3)"
			return 0
		fi
		mab_log "the RabbitMQ cluster did not start (attempt $try)"
		cluster__tail
		cluster__halt
	done
	return 1
}

# cluster__prepare I TRY COOKIE: node I's directory, ports and settings.
cluster__prepare() {
	local i=$1 dir node port
	dir=$(cluster__dir "$i")
	mkdir -p "$dir/home" "$dir/mnesia" "$dir/log" || return 1
	(umask 077 && printf '%s' "$3" >"$dir/home/.erlang.cookie") &&
		chmod 0400 "$dir/home/.erlang.cookie" || return 1
	node="mabc$$-$i@localhost"
	(($2 == 1)) || node="mabc$$-$i-$2@localhost"
	port=$(free_port) || return 1
	export "CLUSTER_NODE_$i=$node" "CLUSTER_PORT_$i=$port"
	export "CLUSTER_DIST_PORT_$i=$(free_port)" "CLUSTER_CTL_PORT_$i=$(free_port)" || return 1
	export "CLUSTER_LOG_$i=$dir/log/$node.log"
	cat >"$dir/rabbitmq.conf" <<-EOF
		listeners.tcp.default = 127.0.0.1:$port
		loopback_users = none
		log.file.level = info
		log.console = false
	EOF
	echo '[].' >"$dir/enabled_plugins"
	: >"$dir/rabbitmq-env.conf"
}

# cluster__epmd: the private epmd the three nodes share, started in the
# foreground and by PID (see rabbit__epmd).
cluster__epmd() {
	local pid
	pid=$(cat "$CLUSTER_DIR/epmd.pid" 2>/dev/null) || true
	if [[ -n $pid ]] && mab_alive "$pid"; then
		return 0
	fi
	epmd -port "$CLUSTER_EPMD_PORT" -address 127.0.0.1 \
		>>"$CLUSTER_DIR/epmd.log" 2>&1 </dev/null &
	pid=$!
	echo "$pid" >"$CLUSTER_DIR/epmd.pid"
	if ! wait_until 10 mab__port_in_use "$CLUSTER_EPMD_PORT" || ! mab_alive "$pid"; then
		echo "epmd did not start on port $CLUSTER_EPMD_PORT" >&2
		return 1
	fi
}

# cluster__launch I: boots node I with its settings and waits until its
# RabbitMQ application runs (CLUSTER_START_TIMEOUT).  A node that was in
# the cluster rejoins it.
cluster__launch() {
	local i=$1 dir t0=$SECONDS pid
	dir=$(cluster__dir "$i")
	cluster__epmd || return 1
	rm -f "$dir/rabbit.pid"
	(
		export HOME=$dir/home
		export ERL_EPMD_PORT=$CLUSTER_EPMD_PORT ERL_EPMD_ADDRESS=127.0.0.1
		export ERL_AFLAGS='-start_epmd false'
		export RABBITMQ_NODENAME
		RABBITMQ_NODENAME=$(cluster__get NODE "$i")
		export RABBITMQ_NODE_IP_ADDRESS=127.0.0.1
		export RABBITMQ_NODE_PORT
		RABBITMQ_NODE_PORT=$(cluster__get PORT "$i")
		export RABBITMQ_DIST_PORT
		RABBITMQ_DIST_PORT=$(cluster__get DIST_PORT "$i")
		export RABBITMQ_MNESIA_BASE=$dir/mnesia
		export RABBITMQ_LOG_BASE=$dir/log
		export RABBITMQ_PID_FILE=$dir/rabbit.pid
		export RABBITMQ_CONFIG_FILE=$dir/rabbitmq.conf
		export RABBITMQ_ADVANCED_CONFIG_FILE=$dir/advanced.config
		export RABBITMQ_CONF_ENV_FILE=$dir/rabbitmq-env.conf
		export RABBITMQ_ENABLED_PLUGINS_FILE=$dir/enabled_plugins
		export RABBITMQ_PLUGINS_EXPAND_DIR=$dir/plugins-expand
		export RABBITMQ_SERVER_ADDITIONAL_ERL_ARGS='-kernel inet_dist_use_interface {127,0,0,1}'
		cd "$dir" || exit 1
		exec "$MAB_RABBIT_BIN/rabbitmq-server" </dev/null
	) >>"$dir/startup.log" 2>&1 &
	echo $! >"$dir/wrapper.pid"
	if ! RMQCTL_TIMEOUT=$((CLUSTER_START_TIMEOUT + 10)) \
		cluster_rmqctl "$i" wait --timeout "$CLUSTER_START_TIMEOUT" "$dir/rabbit.pid" \
		>>"$dir/wait.log" 2>&1; then
		echo "node $i did not start within $CLUSTER_START_TIMEOUT s" >&2
		return 1
	fi
	pid=$(cluster_pid "$i") || return 1
	mab_log "RabbitMQ node $i $(cluster__get NODE "$i") up on" \
		"127.0.0.1:$(cluster__get PORT "$i") (pid $pid) in $((SECONDS - t0)) s"
}

# cluster__boot_all: boots the nodes at once, each as a standalone node.
cluster__boot_all() {
	local i pids=() rc=0
	for ((i = 1; i <= CLUSTER_SIZE; i++)); do
		cluster__launch "$i" &
		pids+=($!)
	done
	for i in "${pids[@]}"; do
		wait "$i" || rc=1
	done
	return "$rc"
}

# cluster__join I: node I leaves its standalone cluster for node 1's.
cluster__join() {
	local i=$1 t0=$SECONDS log
	log=$(cluster__dir "$i")/wait.log
	if ! {
		RMQCTL_TIMEOUT=$CLUSTER_START_TIMEOUT cluster_rmqctl "$i" stop_app &&
			RMQCTL_TIMEOUT=$CLUSTER_START_TIMEOUT \
				cluster_rmqctl "$i" join_cluster "$CLUSTER_NODE_1" &&
			RMQCTL_TIMEOUT=$CLUSTER_START_TIMEOUT cluster_rmqctl "$i" start_app
	} >>"$log" 2>&1; then
		echo "node $i did not join node 1 (see $log)" >&2
		return 1
	fi
	mab_log "RabbitMQ node $i joined node 1 in $((SECONDS - t0)) s"
}

# cluster__join_all: nodes 2..N join node 1 one after the other, so that
# no two change the cluster's membership at once; then every node must see
# the whole cluster running.
cluster__join_all() {
	local i
	for ((i = 2; i <= CLUSTER_SIZE; i++)); do
		cluster__join "$i" || return 1
	done
	for ((i = 1; i <= CLUSTER_SIZE; i++)); do
		wait_until 60 cluster_complete "$i" ||
			{ echo "node $i does not see the whole cluster running" >&2; return 1; }
	done
}

# cluster_running_nodes I: node I's list of the cluster's running nodes,
# one a line, sorted.
cluster_running_nodes() {
	cluster_rmqctl "$1" -q eval 'rabbit_nodes:all_running().' 2>/dev/null |
		tr -d "[]' \n" | tr ',' '\n' | sed '/^$/d' | sort
}

# cluster_complete I: true if node I runs and sees every node running in its
# cluster.
cluster_complete() {
	local want have i
	have=$(cluster_running_nodes "$1") || return 1
	want=$(for ((i = 1; i <= CLUSTER_SIZE; i++)); do cluster__get NODE "$i"; done | sort)
	[[ $have == "$want" ]]
}

# cluster_vhost NAME: a fresh vhost NAME on the cluster where guest may do
# everything (guest may log in from 127.0.0.1: loopback_users = none).
cluster_vhost() {
	cluster_rmqctl 1 -q delete_vhost "$1" >/dev/null 2>&1
	cluster_rmqctl 1 -q add_vhost "$1" >/dev/null &&
		cluster_rmqctl 1 -q set_permissions -p "$1" guest '.*' '.*' '.*' >/dev/null
}

# cluster_user NAME PASSWORD VHOST: a user of the cluster's own, with every
# right on VHOST.
cluster_user() {
	cluster_rmqctl 1 -q delete_user "$1" >/dev/null 2>&1
	cluster_rmqctl 1 -q add_user "$1" "$2" >/dev/null &&
		cluster_rmqctl 1 -q set_permissions -p "$3" "$1" '.*' '.*' '.*' >/dev/null
}

# cluster_kill9 I: SIGKILL to node I's beam.smp; its data directory stays.
cluster_kill9() {
	local dir pid
	dir=$(cluster__dir "$1")
	pid=$(cat "$dir/rabbit.pid" 2>/dev/null) || return 1
	kill -KILL "$pid" 2>/dev/null || true
	mab_wait_gone "$pid" 10 || return 1
	cluster__wrapper_gone "$1"
	rm -f "$dir/rabbit.pid"
}

# cluster_restart I: starts node I again with the same name, ports and data
# directory, stopping it first if it still runs.  It rejoins the cluster by
# itself; waits until its RabbitMQ application runs.
cluster_restart() {
	cluster_pid "$1" >/dev/null && cluster__stop_node "$1"
	cluster__wrapper_gone "$1"
	cluster__launch "$1" || { cluster__tail "$1"; return 1; }
}

cluster__wrapper_gone() {
	local dir pid
	dir=$(cluster__dir "$1")
	pid=$(cat "$dir/wrapper.pid" 2>/dev/null) || return 0
	mab_wait_gone "$pid" 10 || mab_kill_pid "$pid" 5
	rm -f "$dir/wrapper.pid"
}

# cluster__stop_node I [GRACE]: SIGTERM to node I's beam.smp (Erlang shuts
# down cleanly on it), SIGKILL after GRACE seconds (default 20); then its
# wrapper script.  A node still booting has no PID file yet, but its
# wrapper passes the signal on.
cluster__stop_node() {
	local dir pid grace=${2:-20}
	dir=$(cluster__dir "$1")
	for pid in "$(cat "$dir/rabbit.pid" 2>/dev/null)" "$(cat "$dir/wrapper.pid" 2>/dev/null)"; do
		[[ -n $pid ]] || continue
		kill -CONT "$pid" 2>/dev/null || true
		mab_kill_pid "$pid" "$grace"
	done
	rm -f "$dir/rabbit.pid" "$dir/wrapper.pid"
}

# cluster_stop: stops every node (at once, so that the whole stop stays
# well within the 15 s run.sh grants a test after its timeout), then epmd.
cluster_stop() {
	local i pids=()
	[[ -n ${CLUSTER_DIR:-} && -d $CLUSTER_DIR ]] || return 0
	for ((i = 1; i <= CLUSTER_SIZE; i++)); do
		cluster__stop_node "$i" 8 &
		pids+=($!)
	done
	for i in "${pids[@]}"; do
		wait "$i"
	done
	i=$(cat "$CLUSTER_DIR/epmd.pid" 2>/dev/null) && mab_kill_pid "$i" 2
	rm -f "$CLUSTER_DIR/epmd.pid"
}

cluster__cleanup() {
	[[ ${CLUSTER_OWNER:-} == "$BASHPID" ]] || return 0
	cluster_stop
}

# cluster__halt: after a failed start, stops everything at once.
cluster__halt() {
	cluster_stop
}

# cluster__tail [I]: the end of node I's logs (default: every node's), for
# failure reports.
cluster__tail() {
	local i f dir from=1 to=$CLUSTER_SIZE
	[[ -n ${1:-} ]] && from=$1 to=$1
	for ((i = from; i <= to; i++)); do
		dir=$(cluster__dir "$i")
		for f in "$dir/startup.log" "$(cluster__get LOG "$i")" "$dir/wait.log"; do
			[[ -s $f ]] || continue
			echo "----- tail $f" >&2
			tail -n 30 "$f" >&2
		done
	done
}

# cluster_sink I SUBCOMMAND ARGS...: mab-sink against node I and this test's
# vhost.
cluster_sink() {
	local i=$1 sub=$2
	shift 2
	"$MAB_SINK" "$sub" -p "$(cluster__get PORT "$i")" -V "$MAB_VHOST" "$@"
}

# cluster_sink_expect I LABEL CONSUME-ARGS...: sink_expect (nothing lost,
# nothing corrupt) on node I.
cluster_sink_expect() {
	local i=$1
	shift
	RABBIT_PORT=$(cluster__get PORT "$i") sink_expect "$@"
}

# cluster_qq_members I QUEUE: node I's view of quorum queue QUEUE (in this
# test's vhost): "members=M online=O leader=NODE", M and O counts.
cluster_qq_members() {
	cluster_rmqctl "$1" -q list_queues -p "$MAB_VHOST" --no-table-headers \
		name members online leader 2>/dev/null |
		awk -F '\t' -v q="$2" '$1 == q {
			m = gsub(/@/, "@", $2); o = gsub(/@/, "@", $3)
			print "members=" m " online=" o " leader=" $4; found = 1
		} END { if (!found) exit 1 }'
}

# cluster_qq_complete I QUEUE: true if node I sees every node a member of
# quorum queue QUEUE, online, and a leader.
cluster_qq_complete() {
	local s
	s=$(cluster_qq_members "$1" "$2") || return 1
	[[ $s == "members=$CLUSTER_SIZE online=$CLUSTER_SIZE leader="?* ]]
}

# cluster_hosts I...: the libconfig list body naming nodes I... (in that
# order) for amqp.hosts, e.g. "127.0.0.1:P1", "127.0.0.1:P2".
cluster_hosts() {
	local i out=""
	for i in "$@"; do
		out+="${out:+, }\"127.0.0.1:$(cluster__get PORT "$i")\""
	done
	echo "$out"
}

# cluster_bridge_conf FILE CLIENT_ID HOSTS [AMQP LINE]...: bridge_conf, with
# amqp.hosts = [ HOSTS ] (a list body, see cluster_hosts) in place of
# amqp.host and amqp.port (giving both is an error).
cluster_bridge_conf() {
	local file=$1 id=$2 hosts=$3
	shift 3
	bridge_conf "$file" "$id" "$@" &&
		sed -i "/^amqp = {\$/,/^};\$/{
			/^    port = [0-9]*;\$/d
			s/^    host = \"127\.0\.0\.1\";\$/    hosts = [ $hosts ];/
		}" "$file" &&
		grep -q '^    hosts = \[' "$file"
}
