# downlink.sh: helpers for the downlink tests (RabbitMQ to MQTT), sourced
# after brokers.sh and mab_init.
#
# The layout every downlink test uses: exchange "commands" (topic), queue
# "commands" bound with "#" whose dead-letter exchange is "commands.dead",
# which routes to queue "dead"; the back end publishes with the device id
# as the routing key, and the bridge publishes to devices/ID/commands.

MAB_CMD=${MAB_CMD:-$TOOLS/mab-cmd}
MAB_RECV=${MAB_RECV:-$TOOLS/mab-recv}
for f in "$MAB_CMD" "$MAB_RECV"; do
	if [[ ! -x $f ]]; then
		echo "$MAB_TEST_NAME: $f is missing (build first, or set BUILD_DIR)" >&2
		exit 77
	fi
done

# cmd ARGS...: mab-cmd against this test's vhost.
cmd() {
	"$MAB_CMD" -p "$RABBIT_PORT" -V "$MAB_VHOST" "$@"
}

# recv ARGS...: mab-recv against this test's mosquitto.
recv() {
	"$MAB_RECV" -p "$MQTT_PORT" "$@"
}

# dl_topology [MORE_QUEUES]: prints the topology group: the layout above,
# plus each further "NAME" as a queue with the same dead-letter exchange
# and no binding (publish to it through the default exchange, "").
dl_topology() {
	local q queues="" bindings=""
	for q in "$@"; do
		queues+=", { name = \"$q\"; arguments = { x-dead-letter-exchange = \"commands.dead\"; }; }"
	done
	cat <<-EOF
		topology = {
		    exchanges = ( { name = "commands"; }, { name = "commands.dead"; } );
		    queues = ( { name = "commands"; arguments = { x-dead-letter-exchange = "commands.dead"; }; },
		               { name = "dead"; }$queues );
		    bindings = ( { exchange = "commands"; queue = "commands"; key = "#"; },
		                 { exchange = "commands.dead"; queue = "dead"; key = "#"; }$bindings );
		};
	EOF
}

# recv_wait_ready FILE: waits (bounded) until mab-recv created FILE.
recv_wait_ready() {
	wait_until 30 test -e "$1" || fail "the MQTT subscriber did not subscribe in time"
}

# recv_field OUT NAME: the value of NAME=V in mab-recv's summary line OUT.
recv_field() {
	sed -n "s/.*\\b$2=\\([0-9]*\\).*/\\1/p" <<<"$1" | tail -n 1
}

# queue_state QUEUE: "CONSUMERS UNACKED" of QUEUE in this test's vhost.
queue_state() {
	rmqctl -q list_queues -p "$MAB_VHOST" --no-table-headers name consumers \
		messages_unacknowledged 2>/dev/null | awk -v q="$1" '$1 == q { print $2, $3 }'
}
