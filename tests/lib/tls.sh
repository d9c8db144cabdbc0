# shellcheck shell=bash
# Variables set here are read by the scripts that source this file.
# shellcheck disable=SC2034
#
# tls.sh: a throwaway PKI and TLS-enabled brokers for the integration tests
# (t11_tls.sh, t12_auth.sh).  Source it after brokers.sh, whose helpers it
# uses (free_port, mosq_start, rabbit__launch, mab_on_exit, ...).
#
# Everything is made at test time with openssl, under a directory of the
# test's own, and every broker listens on 127.0.0.1 only.

TLS_OPENSSL=${TLS_OPENSSL:-openssl}

# ---------------------------------------------------------------------------
# PKI

# tls__run COMMAND...: runs an openssl command, bounded, quietly; its output
# goes to $TLS_DIR/openssl.log and is shown when it fails.
tls__run() {
	if ! timeout -k 5 30 "$@" >>"$TLS_DIR/openssl.log" 2>&1 </dev/null; then
		echo "tls: failed: $*" >&2
		tail -n 20 "$TLS_DIR/openssl.log" >&2
		return 1
	fi
}

# tls__key NAME: a fresh P-256 key in $TLS_DIR/NAME.key, mode 0600.
tls__key() {
	(umask 077 && tls__run "$TLS_OPENSSL" genpkey -algorithm EC \
		-pkeyopt ec_paramgen_curve:P-256 -out "$TLS_DIR/$1.key") &&
		chmod 600 "$TLS_DIR/$1.key"
}

# tls__serial: a random positive serial number in hex.
tls__serial() {
	echo "0x1$("$TLS_OPENSSL" rand -hex 8)"
}

# tls__ca NAME CN: a self-signed CA: NAME.key, NAME.crt.  A private,
# minimal openssl configuration keeps the result independent of the
# system's openssl.cnf.
tls__ca() {
	local name=$1 cn=$2 cnf=$TLS_DIR/$1.cnf
	cat >"$cnf" <<-EOF
		[req]
		distinguished_name = dn
		prompt = no
		[dn]
		CN = $cn
		[ext]
		basicConstraints = critical, CA:TRUE
		keyUsage = critical, keyCertSign, cRLSign
		subjectKeyIdentifier = hash
	EOF
	tls__key "$name" &&
		tls__run "$TLS_OPENSSL" req -new -x509 -config "$cnf" -extensions ext \
			-key "$TLS_DIR/$name.key" -set_serial "$(tls__serial)" -days 3 \
			-out "$TLS_DIR/$name.crt"
}

# tls__leaf NAME CA CN USAGE [SAN]: a certificate NAME.crt (key NAME.key)
# for CN signed by CA; USAGE is serverAuth or clientAuth; SAN, if given, is
# an openssl subjectAltName value (e.g. "IP:127.0.0.1, DNS:localhost").
tls__leaf() {
	local name=$1 ca=$2 cn=$3 usage=$4 san=${5:-} cnf=$TLS_DIR/$1.cnf
	{
		echo "[req]"
		echo "distinguished_name = dn"
		echo "prompt = no"
		echo "[dn]"
		echo "CN = $cn"
		echo "[ext]"
		echo "basicConstraints = critical, CA:FALSE"
		echo "keyUsage = critical, digitalSignature"
		echo "extendedKeyUsage = $usage"
		echo "authorityKeyIdentifier = keyid"
		[[ -z $san ]] || echo "subjectAltName = $san"
	} >"$cnf"
	tls__key "$name" &&
		tls__run "$TLS_OPENSSL" req -new -config "$cnf" -key "$TLS_DIR/$name.key" \
			-out "$TLS_DIR/$name.csr" &&
		tls__run "$TLS_OPENSSL" x509 -req -in "$TLS_DIR/$name.csr" \
			-CA "$TLS_DIR/$ca.crt" -CAkey "$TLS_DIR/$ca.key" \
			-set_serial "$(tls__serial)" -days 2 \
			-extfile "$cnf" -extensions ext -out "$TLS_DIR/$name.crt"
}

# tls_make_pki DIR: makes, in DIR (created, mode 0700):
#   ca.crt/.key          the test CA
#   wrongca.crt/.key     an unrelated CA that signed nothing used here
#   server.crt/.key      for IP:127.0.0.1 and DNS:localhost, signed by ca
#   wrongname.crt/.key   for DNS:wrong.example only, signed by ca
#   client.crt/.key      a client certificate (CN=mab-bridge), signed by ca
#   cadir/               ca.crt with its hash link (for mqtt.tls_ca_dir)
# Key files are mode 0600.  Sets TLS_DIR.  About 0.2 s with EC keys.
tls_make_pki() {
	export TLS_DIR=$1
	mkdir -p "$TLS_DIR/cadir" && chmod 700 "$TLS_DIR" || return 1
	: >"$TLS_DIR/openssl.log"
	tls__ca ca "mab test CA" &&
		tls__ca wrongca "mab wrong CA" &&
		tls__leaf server ca localhost serverAuth "IP:127.0.0.1, DNS:localhost" &&
		tls__leaf wrongname ca wrong.example serverAuth "DNS:wrong.example" &&
		tls__leaf wrongcaserver wrongca localhost serverAuth "IP:127.0.0.1, DNS:localhost" &&
		tls__leaf client ca mab-bridge clientAuth || return 1
	cp "$TLS_DIR/ca.crt" "$TLS_DIR/cadir/ca.crt" &&
		tls__run "$TLS_OPENSSL" rehash "$TLS_DIR/cadir" || return 1
	# The chain must verify, and the wrong CA must not vouch for it.
	tls__run "$TLS_OPENSSL" verify -CAfile "$TLS_DIR/ca.crt" \
		"$TLS_DIR/server.crt" "$TLS_DIR/wrongname.crt" "$TLS_DIR/client.crt" || return 1
	if timeout 10 "$TLS_OPENSSL" verify -CAfile "$TLS_DIR/wrongca.crt" \
		"$TLS_DIR/server.crt" >/dev/null 2>&1; then
		echo "tls: the wrong CA verifies the server certificate" >&2
		return 1
	fi
	mab_log "test PKI in $TLS_DIR"
}

# tls_use_client_ca ROLE NAME: the CA (NAME.crt) that ROLE's TLS listener
# accepts client certificates from, $TLS_DIR/live/ROLE-clientca.crt; with
# "wrongca" the bridge's client certificate is refused.
tls_use_client_ca() {
	mkdir -p "$TLS_DIR/live" && cp "$TLS_DIR/$2.crt" "$TLS_DIR/live/$1-clientca.crt"
}

# tls_use_cert ROLE NAME: copies NAME.crt/.key (from tls_make_pki) to the
# certificate a broker is configured with, $TLS_DIR/live/ROLE.crt/.key.
# Brokers read the live copies, so that a test can swap what a broker
# presents and restart it with an unchanged configuration.
tls_use_cert() {
	mkdir -p "$TLS_DIR/live" &&
		cp "$TLS_DIR/$2.crt" "$TLS_DIR/live/$1.crt" &&
		(umask 077 && cp "$TLS_DIR/$2.key" "$TLS_DIR/live/$1.key") &&
		chmod 600 "$TLS_DIR/live/$1.key"
}

# ---------------------------------------------------------------------------
# mosquitto

# tls_mosq_listener PORT CERT KEY: mosquitto configuration lines for a TLS
# listener on 127.0.0.1:PORT that presents CERT/KEY and requires a client
# certificate signed by the test CA.
tls_mosq_listener() {
	printf '%s\n' \
		"listener $1 127.0.0.1" \
		"cafile ${4:-$TLS_DIR/ca.crt}" \
		"certfile $2" \
		"keyfile $3" \
		"require_certificate true"
}

# tls_mosq_start: a mosquitto (mosq_start) with, besides its plain listener
# on MQTT_PORT (for mab-pub), two TLS listeners requiring client
# certificates:
#   MQTT_TLS_PORT        presents $TLS_DIR/live/mqtt.crt (server.crt at first)
#   MQTT_WRONGNAME_PORT  presents wrongname.crt
tls_mosq_start() {
	export MQTT_TLS_PORT MQTT_WRONGNAME_PORT
	MQTT_TLS_PORT=$(free_port) && MQTT_WRONGNAME_PORT=$(free_port) || return 1
	tls_use_cert mqtt server && tls_use_client_ca mqtt ca || return 1
	mosq_start \
		"$(tls_mosq_listener "$MQTT_TLS_PORT" "$TLS_DIR/live/mqtt.crt" "$TLS_DIR/live/mqtt.key" \
			"$TLS_DIR/live/mqtt-clientca.crt")" \
		"$(tls_mosq_listener "$MQTT_WRONGNAME_PORT" "$TLS_DIR/wrongname.crt" "$TLS_DIR/wrongname.key")" ||
		return 1
	tls_mosq_wait_listening
}

# tls_mosq_wait_listening: waits (bounded) until this mosquitto listens on
# its TLS ports too.
tls_mosq_wait_listening() {
	local p
	for p in "$MQTT_TLS_PORT" "$MQTT_WRONGNAME_PORT"; do
		wait_until 10 tls__listens "$p" "$MOSQ_PID" || {
			echo "mosquitto (pid $MOSQ_PID) does not listen on $p" >&2
			tail -n 20 "$MOSQ_DIR/stderr" "$MOSQ_LOG" >&2 2>/dev/null
			return 1
		}
	done
}

# tls__listens PORT PID: true if PID listens on PORT.
tls__listens() {
	[[ $(mab__listener_pid "$1") == "$2" ]]
}

# ---------------------------------------------------------------------------
# RabbitMQ

# tls__stop_node DIR NODE EPMD_PORT CTL_PORT: stops a node that is no longer
# the current one (RABBIT_* point elsewhere now).
tls__stop_node() {
	local RABBIT_DIR=$1 RABBIT_NODE=$2 RABBIT_EPMD_PORT=$3 RABBIT_CTL_PORT=$4
	rabbit_stop
}

# tls_rabbit_start: starts a private RabbitMQ node of this test's own, with
# a plain listener on RABBIT_PORT (for mab-sink and new_vhost) and a TLS
# listener on RABBIT_TLS_PORT presenting $TLS_DIR/live/amqp.crt
# (server.crt at first) with verify_peer and fail_if_no_peer_cert.  The
# RABBIT_* variables then describe this node: rmqctl, rabbit_restart, sink
# and new_vhost act on it.  A node this script owned before (a test run on
# its own) is still stopped at exit; the shared node of run.sh is left
# alone.  Takes about 5-10 s.
tls_rabbit_start() {
	local try
	if [[ ${RABBIT_OWNER:-} == "$BASHPID" && -n ${RABBIT_DIR:-} ]]; then
		mab_on_exit "tls__stop_node '$RABBIT_DIR' '$RABBIT_NODE' $RABBIT_EPMD_PORT $RABBIT_CTL_PORT"
	fi
	RABBIT_OWNER=
	tls_use_cert amqp server && tls_use_client_ca amqp ca || return 1
	for try in 1 2; do
		export RABBIT_DIR=$MAB_TMP/rabbit-tls
		rm -rf "$RABBIT_DIR"
		mkdir -p "$RABBIT_DIR/home" "$RABBIT_DIR/mnesia" "$RABBIT_DIR/log" || return 1
		export RABBIT_NODE="mabtls$$-$try@localhost"
		export RABBIT_PORT RABBIT_TLS_PORT RABBIT_DIST_PORT RABBIT_EPMD_PORT RABBIT_CTL_PORT
		RABBIT_PORT=$(free_port) && RABBIT_TLS_PORT=$(free_port) &&
			RABBIT_DIST_PORT=$(free_port) && RABBIT_EPMD_PORT=$(free_port) &&
			RABBIT_CTL_PORT=$(free_port) || return 1
		export RABBIT_LOG=$RABBIT_DIR/log/$RABBIT_NODE.log
		cat >"$RABBIT_DIR/rabbitmq.conf" <<-EOF
			listeners.tcp.default = 127.0.0.1:$RABBIT_PORT
			listeners.ssl.default = 127.0.0.1:$RABBIT_TLS_PORT
			ssl_options.cacertfile = $TLS_DIR/live/amqp-clientca.crt
			ssl_options.certfile = $TLS_DIR/live/amqp.crt
			ssl_options.keyfile = $TLS_DIR/live/amqp.key
			ssl_options.verify = verify_peer
			ssl_options.fail_if_no_peer_cert = true
			loopback_users = none
			log.file.level = info
			log.console = false
		EOF
		echo '[].' >"$RABBIT_DIR/enabled_plugins"
		: >"$RABBIT_DIR/rabbitmq-env.conf"
		if rabbit__launch; then
			export RABBIT_OWNER=$BASHPID
			mab_on_exit 'rabbit__cleanup'
			tls_rabbit_wait_listening && return 0
		fi
		mab_log "RabbitMQ with TLS did not start (attempt $try)"
		rabbit__tail
		rabbit__halt
	done
	return 1
}

# tls_rabbit_wait_listening: waits (bounded) until the node listens on
# RABBIT_TLS_PORT.
tls_rabbit_wait_listening() {
	RABBIT_PID=$(rabbit_pid) || return 1
	wait_until 20 tls__listens "$RABBIT_TLS_PORT" "$RABBIT_PID" || {
		echo "RabbitMQ (pid $RABBIT_PID) does not listen on $RABBIT_TLS_PORT" >&2
		rabbit__tail
		return 1
	}
}

# ---------------------------------------------------------------------------
# Bridge configuration and log checks

# conf_add FILE GROUP SETTING...: adds settings (libconfig text such as
# 'tls = true;') at the top of GROUP ("mqtt", "amqp" or "bridge") in a
# configuration written by bridge_conf.
conf_add() {
	local file=$1 group=$2 body="" s
	shift 2
	for s in "$@"; do
		body+="    $s"$'\n'
	done
	if ! awk -v g="$group = {" -v body="$body" \
		'{ print } $0 == g { printf "%s", body; found = 1 } END { exit !found }' \
		"$file" >"$file.new"; then
		echo "conf_add: no group '$group' in $file" >&2
		rm -f "$file.new"
		return 1
	fi
	# Rewritten in place: the file keeps its mode.
	cat "$file.new" >"$file" && rm -f "$file.new"
}

# conf_set FILE GROUP NAME VALUE: replaces the setting NAME of GROUP in a
# configuration written by bridge_conf; VALUE is libconfig text ("5672",
# "\"localhost\"").
conf_set() {
	if ! awk -v g="$2 = {" -v name="$3" -v value="$4" '
		$0 == g { in_g = 1 }
		in_g && $1 == name && $2 == "=" {
			sub(/=.*/, "= " value ";"); in_g = 0; done = 1
		}
		/^};/ { in_g = 0 }
		{ print }
		END { exit !done }' "$1" >"$1.new"; then
		echo "conf_set: no $3 in group '$2' of $1" >&2
		rm -f "$1.new"
		return 1
	fi
	# Rewritten in place: the file keeps its mode.
	cat "$1.new" >"$1" && rm -f "$1.new"
}

# conf_set_port FILE GROUP PORT: sets GROUP's port.
conf_set_port() {
	conf_set "$1" "$2" port "$3"
}

# FAIL_RE: what a line reporting a failed connection says (after the side's
# prefix, "mqtt: " or "amqp: ").
FAIL_RE='(cannot|refused|fail|error|lost|denied|certificate|verif|handshake|not authori|login|tls|ssl)'

# side_failures LOG SIDE [FROM_LINE]: how many lines of LOG (after
# FROM_LINE) report a failed connection on SIDE ("mqtt" or "amqp").
side_failures() {
	tail -n +"$((${3:-0} + 1))" "$1" | grep -ciE "[^a-z]$2: .*$FAIL_RE" || true
}

# side_failures_at_least LOG SIDE N [FROM_LINE]: for wait_until.
side_failures_at_least() {
	(($(side_failures "$1" "$2" "${4:-0}") >= $3))
}

# first_failure LOG SIDE [FROM_LINE]: the first such line.
first_failure() {
	tail -n +"$((${3:-0} + 1))" "$1" | grep -iE "[^a-z]$2: .*$FAIL_RE" | head -n 1
}

# reconnect_delays LOG SIDE [FROM_LINE]: the delays (ms) of SIDE's
# "reconnecting to ... in N ms" lines, one a line.
reconnect_delays() {
	tail -n +"$((${3:-0} + 1))" "$1" |
		sed -n "s/.*[^a-z]$2: reconnecting .* in \([0-9][0-9]*\) ms.*/\1/p"
}

# reconnect_gaps LOG SIDE [FROM_LINE]: the time (ms) between consecutive
# "SIDE: reconnecting" lines, from the log's time stamps, one a line.
reconnect_gaps() {
	tail -n +"$((${3:-0} + 1))" "$1" | grep -E "[^a-z]$2: reconnecting " |
		awk '{
			split(substr($1, index($1, "T") + 1), t, ":")
			ms = ((t[1] * 60 + t[2]) * 60 + t[3]) * 1000
			if (NR > 1) printf "%d\n", ms - prev
			prev = ms
		}'
}

# check_backoff LOG SIDE [FROM_LINE]: true if SIDE retried at least three
# times with growing delays, both as announced ("reconnecting ... in N ms")
# and as seen in the time stamps.  With jitter a delay is drawn from
# [d/2, d] for a nominal d that doubles, so consecutive delays may tie but
# the third is always above the first (until reconnect_max_ms).  Prints
# what it saw.
check_backoff() {
	local d g
	mapfile -t d < <(reconnect_delays "$@")
	mapfile -t g < <(reconnect_gaps "$@")
	echo "announced delays: ${d[*]} ms; gaps between attempts: ${g[*]} ms"
	((${#d[@]} >= 3 && ${#g[@]} >= 3)) && ((d[2] > d[0] && g[2] > g[0]))
}

# reconnects_at_least LOG SIDE N: true once SIDE logged N "reconnecting"
# lines (for wait_until).
reconnects_at_least() {
	(($(reconnect_delays "$1" "$2" | wc -l) >= $3))
}

# refused_and_retried LOG SIDE [FROM_LINE]: true once SIDE logged a failed
# connection and at least two reconnect attempts after FROM_LINE (for
# wait_until).
refused_and_retried() {
	side_failures_at_least "$1" "$2" 1 "${3:-0}" &&
		(($(reconnect_delays "$1" "$2" "${3:-0}" | wc -l) >= 2))
}
