#!/usr/bin/env bash
# t11_tls.sh: TLS on both sides, with client certificates.
#
# The test makes a throwaway PKI (tests/lib/tls.sh), a mosquitto with TLS
# listeners (one presenting a certificate for 127.0.0.1, one for
# wrong.example) and a RabbitMQ node of its own with a TLS listener (the
# shared node of run.sh has none).  Both brokers require a client
# certificate; mab-pub and mab-sink use the plain listeners.
#
#  1. 2,000 QoS 1 messages flow over TLS on both sides; none is lost.
#  2. On the first connect, each of these is refused, logged for its side,
#     and retried; the bridge never forwards, and a message published
#     meanwhile arrives once the configuration is fixed and the bridge
#     restarted:
#       mqtt: wrong CA, wrong host name, no client certificate
#       amqp: wrong CA, no client certificate
#  3. On a reconnect, for each side: the broker is restarted presenting
#     the wrong-name certificate, then one from the wrong CA, then refusing
#     the bridge's client certificate; each time the bridge's attempts are
#     refused and logged with the reason; with the right certificates back
#     it reconnects by itself and nothing is lost (the RabbitMQ cases are
#     skipped with T11_QUICK=1).
#  4. tls_insecure accepts the wrong-name broker, with a warning.
#  5. Host names the other way round: mqtt.host "localhost" (DNS SAN) and
#     amqp.host "127.0.0.1" (IP SAN) verify too.
#  6. mqtt.hosts with the wrong-name listener first: refused for its
#     name, the next address verifies and forwards.
set -uo pipefail
here=$(dirname "${BASH_SOURCE[0]}")
# shellcheck source=SCRIPTDIR/../lib/brokers.sh
. "$here/../lib/brokers.sh"
# shellcheck source=SCRIPTDIR/../lib/tls.sh
. "$here/../lib/tls.sh"

N=2000
ID=bridge-t11
# The host names the bridge connects to and verifies.  The certificates
# are for IP:127.0.0.1 and DNS:localhost; the MQTT side uses the address
# and the AMQP side the name, and step 5 swaps them.  localhost is used
# only where it means 127.0.0.1 and nothing else (no ::1).
MQTT_HOST=${T11_MQTT_HOST:-127.0.0.1}
NAME=127.0.0.1
if [[ $(getent ahosts localhost 2>/dev/null | awk '{ print $1 }' | sort -u) == 127.0.0.1 ]]; then
	NAME=localhost
fi
AMQP_HOST=${T11_AMQP_HOST:-$NAME}
export BR_INFLIGHT=500
export BRIDGE_START_TIMEOUT=${BRIDGE_START_TIMEOUT:-30}

mab_init t11
tls_make_pki "$MAB_TMP/pki" || fail "cannot make the test PKI"
tls_mosq_start || fail "mosquitto with TLS did not start"
tls_rabbit_start || fail "RabbitMQ with TLS did not start"
new_vhost "$MAB_VHOST" || fail "cannot create vhost $MAB_VHOST on the TLS node"
sink_setup_main

P=$TLS_DIR
MQTT_GOOD=("tls = true;" "tls_ca_file = \"$P/ca.crt\";"
	"tls_cert_file = \"$P/client.crt\";" "tls_key_file = \"$P/client.key\";")
AMQP_GOOD=("tls = true;" "tls_ca_file = \"$P/ca.crt\";"
	"tls_cert_file = \"$P/client.crt\";" "tls_key_file = \"$P/client.key\";")

# conf NAME MQTT_PORT MQTT_SETTINGS AMQP_SETTINGS: writes $MAB_TMP/NAME.conf
# for the TLS listeners; the settings are libconfig text, separated by
# newlines.  Prints the file name.
conf() {
	local f=$MAB_TMP/$1.conf mq am
	mapfile -t mq <<<"$3"
	mapfile -t am <<<"$4"
	{
		bridge_conf "$f" "$ID" &&
			conf_set_port "$f" mqtt "$2" &&
			conf_set_port "$f" amqp "$RABBIT_TLS_PORT" &&
			conf_set "$f" mqtt host "\"$MQTT_HOST\"" &&
			conf_set "$f" amqp host "\"$AMQP_HOST\"" &&
			conf_add "$f" mqtt "${mq[@]}" &&
			conf_add "$f" amqp "${am[@]}"
	} || fail "cannot write $f"
	chmod 600 "$f"
	"$BRIDGE_BIN" -t -c "$f" >"$f.check" 2>&1 ||
		fail "the bridge rejects $f: $(cat "$f.check")"
	echo "$f"
}

lines() { printf '%s\n' "$@"; }

good=$(conf good "$MQTT_TLS_PORT" "$(lines "${MQTT_GOOD[@]}")" "$(lines "${AMQP_GOOD[@]}")") || exit 1

# ---------------------------------------------------------------------------
# 1. Messages flow over TLS on both sides.
BRIDGE_LOG=$MAB_TMP/bridge-good.log
bridge_start "$good"
grep -qF "mqtt: connected to $MQTT_HOST:$MQTT_TLS_PORT" "$BRIDGE_LOG" ||
	fail "no MQTT connection to the TLS port $MQTT_TLS_PORT"
grep -qF "amqp: connected to $AMQP_HOST:$RABBIT_TLS_PORT" "$BRIDGE_LOG" ||
	fail "no AMQP connection to the TLS port $RABBIT_TLS_PORT"
pub -n "$N" -T 20 -z 16 -Z 2048 -i pub-t11 -w 60 >"$MAB_TMP/pub.out" 2>&1 ||
	fail "mab-pub failed: $(cat "$MAB_TMP/pub.out")"
sink_expect "tls" -q sink -n "$N" -T 20 -i 20
flow_summary=$SINK_SUMMARY
# The TLS listeners really carried the bridge: the brokers say so too.
grep -q "New connection from 127.0.0.1:[0-9]* on port $MQTT_TLS_PORT\." "$MOSQ_LOG" ||
	fail "mosquitto logged no connection on its TLS port $MQTT_TLS_PORT"
grep -q -- "-> 127.0.0.1:$RABBIT_TLS_PORT - mqtt-amqp-bridge): user 'guest' authenticated" "$RABBIT_LOG" ||
	fail "RabbitMQ logged no login of the bridge on its TLS port $RABBIT_TLS_PORT"
bridge_stop 30 || fail "bridge exited with status $? after SIGTERM"
seq=$N

# ---------------------------------------------------------------------------
# 2. Refused on the first connect.

# refused LABEL SIDE CONF WHY: starts the bridge with CONF, publishes
# message $seq meanwhile, and expects SIDE's connection to be refused
# (logged, and retried) without the bridge ever forwarding; the first line
# logged about it must match the extended regular expression WHY (case
# ignored).  Then stops the bridge.
refused() {
	local label=$1 side=$2 conf=$3 why=$4 line
	BRIDGE_LOG=$MAB_TMP/bridge-$label.log
	NOWAIT=1 bridge_start "$conf"
	pub -s "$seq" -n 1 -i pub-t11 -w 20 >"$MAB_TMP/pub.out" 2>&1 ||
		fail "$label: mab-pub failed: $(cat "$MAB_TMP/pub.out")"
	wait_until 20 refused_and_retried "$BRIDGE_LOG" "$side" ||
		fail "$label: the bridge did not log a refused $side connection and two retries within 20 s"
	mab_alive "$BRIDGE_PID" || fail "$label: the bridge exited instead of retrying"
	(($(bridge_forwarding_count) == 0)) ||
		fail "$label: the bridge forwarded although $side must be refused"
	line=$(first_failure "$BRIDGE_LOG" "$side")
	mab_log "$label: refused: ${line#* }"
	unclear "$label" "$side" "$why" "$line"
	bridge_stop 20 || fail "$label: bridge exited with status $? after SIGTERM"
	(($(bridge_forwarding_count) == 0)) ||
		fail "$label: the bridge forwarded although $side must be refused"
}

# fixed LABEL CONF: the bridge, with the fixed CONF, forwards message $seq.
fixed() {
	local label=$1 conf=$2
	BRIDGE_LOG=$MAB_TMP/bridge-$label-fixed.log
	bridge_start "$conf"
	sink_expect "$label: fixed" -q sink -s "$seq" -n 1 -i 15
	bridge_stop 20 || fail "$label: bridge exited with status $? after SIGTERM"
	seq=$((seq + 1))
}

# What the failure lines must say.  Without a client certificate, TLS 1.3
# completes the client's side of the handshake and the server's alert
# comes with the first read, so that case may only say "TLS" or "SSL".
WHY_CA='verif|unknown ca|self.signed|issuer'
WHY_NAME='host ?name|does not match|mismatch'
WHY_NO_CERT='certificate|tls|ssl|handshake'

# unclear LABEL SIDE WHY LINE: notes LINE if it does not match WHY; the
# test goes on (the remaining cases still tell something) and fails at the
# end.
UNCLEAR=()
unclear() {
	grep -qiE "$3" <<<"$4" && return 0
	mab_log "$1: the $2 failure line does not say why (/$3/)"
	UNCLEAR+=("$1: ${4#* }")
}

amqp_good=$(lines "${AMQP_GOOD[@]}")
mqtt_good=$(lines "${MQTT_GOOD[@]}")

# mqtt, wrong CA.
c=$(conf mqtt-wrong-ca "$MQTT_TLS_PORT" \
	"$(lines "tls = true;" "tls_ca_file = \"$P/wrongca.crt\";" \
		"tls_cert_file = \"$P/client.crt\";" "tls_key_file = \"$P/client.key\";")" \
	"$amqp_good") || exit 1
refused mqtt-wrong-ca mqtt "$c" "$WHY_CA"
# Fixed with the CA as a directory this time (mqtt.tls_ca_dir).
c=$(conf mqtt-ca-dir "$MQTT_TLS_PORT" \
	"$(lines "tls = true;" "tls_ca_dir = \"$P/cadir\";" \
		"tls_cert_file = \"$P/client.crt\";" "tls_key_file = \"$P/client.key\";")" \
	"$amqp_good") || exit 1
fixed mqtt-wrong-ca "$c"

# mqtt, wrong host name: the broker presents a certificate for wrong.example.
c=$(conf mqtt-wrong-name "$MQTT_WRONGNAME_PORT" "$mqtt_good" "$amqp_good") || exit 1
refused mqtt-wrong-name mqtt "$c" "$WHY_NAME"
fixed mqtt-wrong-name "$good"

# mqtt, no client certificate.
c=$(conf mqtt-no-cert "$MQTT_TLS_PORT" \
	"$(lines "tls = true;" "tls_ca_file = \"$P/ca.crt\";")" "$amqp_good") || exit 1
refused mqtt-no-cert mqtt "$c" "$WHY_NO_CERT"
fixed mqtt-no-cert "$good"

# amqp, wrong CA.
c=$(conf amqp-wrong-ca "$MQTT_TLS_PORT" "$mqtt_good" \
	"$(lines "tls = true;" "tls_ca_file = \"$P/wrongca.crt\";" \
		"tls_cert_file = \"$P/client.crt\";" "tls_key_file = \"$P/client.key\";")") || exit 1
refused amqp-wrong-ca amqp "$c" "$WHY_CA"
fixed amqp-wrong-ca "$good"

# amqp, no client certificate.
c=$(conf amqp-no-cert "$MQTT_TLS_PORT" "$mqtt_good" \
	"$(lines "tls = true;" "tls_ca_file = \"$P/ca.crt\";")") || exit 1
refused amqp-no-cert amqp "$c" "$WHY_NO_CERT"
fixed amqp-no-cert "$good"

# ---------------------------------------------------------------------------
# 3. Refused on a reconnect.

# reconnect_refused LABEL SIDE RESTART ROLE BREAK MEND WHY: with the bridge
# forwarding, runs BREAK (a certificate swap on SIDE's broker) and RESTART,
# publishes M messages meanwhile, expects refused attempts whose reason
# matches WHY, runs MEND and RESTART, and expects the bridge back by itself
# with every message.
M=200
reconnect_refused() {
	local label=$1 side=$2 restart=$3 role=$4 break=$5 mend=$6 why=$7 before from line
	BRIDGE_LOG=$MAB_TMP/bridge-$label.log
	bridge_start "$good"
	before=$(bridge_forwarding_count)
	# Nothing in flight when the broker goes: the previous messages were
	# all confirmed and acknowledged (mab-sink saw them; the PUBACK
	# follows the confirm at once, and the bridge was stopped cleanly).
	# Not so at the second restart: RabbitMQ reads a mended CA file for
	# new connections before it restarts, so the bridge may be forwarding
	# when it goes, and the messages then in flight arrive twice (at least
	# once); those copies are purged at the end.
	$break "$role" || fail "$label: cannot swap the certificate"
	"$restart" || fail "$label: the $side broker did not restart"
	mab_log "$label: $side broker restarted ($break)"
	# What failed while the broker was down does not count.
	from=$(wc -l <"$BRIDGE_LOG")
	pub -s "$seq" -n "$M" -i pub-t11 -w 30 >"$MAB_TMP/pub.out" 2>&1 ||
		fail "$label: mab-pub failed: $(cat "$MAB_TMP/pub.out")"
	wait_until 30 refused_and_retried "$BRIDGE_LOG" "$side" "$from" ||
		fail "$label: no refused $side reconnect and two retries logged within 30 s"
	line=$(first_failure "$BRIDGE_LOG" "$side" "$from")
	mab_log "$label: refused: ${line#* }"
	unclear "$label" "$side" "$why" "$line"
	(($(bridge_forwarding_count) == before)) ||
		fail "$label: the bridge forwarded through a broker it should have refused"
	mab_alive "$BRIDGE_PID" || fail "$label: the bridge exited instead of retrying"
	$mend "$role" || fail "$label: cannot restore the certificate"
	"$restart" || fail "$label: the $side broker did not restart"
	mab_log "$label: $side broker restarted with the right certificates"
	bridge_wait_forwarding "$before" 40
	sink_expect "$label" -q sink -s "$seq" -n "$M" -i 20
	bridge_stop 20 || fail "$label: bridge exited with status $? after SIGTERM"
	# Duplicates the next step would count as unexpected.
	sink setup -q sink --purge >/dev/null || fail "$label: cannot purge the sink queue"
	seq=$((seq + M))
}

# shellcheck disable=SC2317  # called through $restart, $break and $mend
{
mosq_tls_restart() { mosq_restart && tls_mosq_wait_listening; }
rabbit_tls_restart() { rabbit_restart && tls_rabbit_wait_listening; }
present_wrongname() { tls_use_cert "$1" wrongname; }
present_wrongca() { tls_use_cert "$1" wrongcaserver; }
present_right() { tls_use_cert "$1" server; }
refuse_client() { tls_use_client_ca "$1" wrongca; }
accept_client() { tls_use_client_ca "$1" ca; }
}

for side in mqtt amqp; do
	if [[ $side == amqp && ${T11_QUICK:-0} == 1 ]]; then
		break
	fi
	restart=mosq_tls_restart
	[[ $side == amqp ]] && restart=rabbit_tls_restart
	reconnect_refused "$side-reconnect-wrong-name" "$side" "$restart" "$side" \
		present_wrongname present_right "$WHY_NAME"
	reconnect_refused "$side-reconnect-wrong-ca" "$side" "$restart" "$side" \
		present_wrongca present_right "$WHY_CA"
	reconnect_refused "$side-reconnect-client-cert" "$side" "$restart" "$side" \
		refuse_client accept_client "$WHY_NO_CERT"
done

# ---------------------------------------------------------------------------
# 4. tls_insecure: the wrong-name broker is accepted, with a warning.
c=$(conf insecure "$MQTT_WRONGNAME_PORT" "$(lines "${MQTT_GOOD[@]}" "tls_insecure = true;")" \
	"$amqp_good") || exit 1
BRIDGE_LOG=$MAB_TMP/bridge-insecure.log
bridge_start "$c"
grep -iE 'warn' "$BRIDGE_LOG" | grep -qiE 'insecure|verif' ||
	fail "tls_insecure: no warning logged"
mab_log "insecure: $(grep -iE 'warn' "$BRIDGE_LOG" | grep -iE 'insecure|verif' | head -n 1 | cut -d' ' -f2-)"
pub -s "$seq" -n 1 -i pub-t11 -w 20 >"$MAB_TMP/pub.out" 2>&1 ||
	fail "insecure: mab-pub failed: $(cat "$MAB_TMP/pub.out")"
sink_expect "insecure" -q sink -s "$seq" -n 1 -i 15
bridge_stop 20 || fail "insecure: bridge exited with status $? after SIGTERM"
seq=$((seq + 1))

# ---------------------------------------------------------------------------
# 5. Host names the other way round: mqtt by name, amqp by address.
c=$(conf swapped-hosts "$MQTT_TLS_PORT" "$mqtt_good" "$amqp_good") || exit 1
{
	conf_set "$c" mqtt host "\"$NAME\"" && conf_set "$c" amqp host '"127.0.0.1"'
} || fail "cannot write $c"
# shellcheck disable=SC2317  # called through wait_until
forwarding() { (($(bridge_forwarding_count) > 0)); }
BRIDGE_LOG=$MAB_TMP/bridge-swapped-hosts.log
NOWAIT=1 bridge_start "$c"
if ! wait_until 15 forwarding; then
	for side in mqtt amqp; do
		line=$(first_failure "$BRIDGE_LOG" "$side")
		[[ -z $line ]] || fail "swapped-hosts: $side refused: ${line#* }"
	done
	fail "swapped-hosts: the bridge did not forward within 15 s"
fi
pub -s "$seq" -n 1 -i pub-t11 -w 20 >"$MAB_TMP/pub.out" 2>&1 ||
	fail "swapped-hosts: mab-pub failed: $(cat "$MAB_TMP/pub.out")"
sink_expect "swapped-hosts" -q sink -s "$seq" -n 1 -i 15
bridge_stop 20 || fail "swapped-hosts: bridge exited with status $? after SIGTERM"

seq=$((seq + 1))

# ---------------------------------------------------------------------------
# 6. A list verifies each address's own name: the wrong-name listener
#    first is refused for its certificate, and the bridge goes on to the
#    next address, whose certificate holds.
c=$(conf hosts "$MQTT_WRONGNAME_PORT" "$mqtt_good" "$amqp_good") || exit 1
sed -i -e "0,/^    host = .*;\$/s//    hosts = [ \"127.0.0.1:$MQTT_WRONGNAME_PORT\", \"$MQTT_HOST:$MQTT_TLS_PORT\" ];/" \
	-e "/^    port = $MQTT_WRONGNAME_PORT;\$/d" "$c"
"$BRIDGE_BIN" -t -c "$c" >"$c.check" 2>&1 || fail "hosts: the bridge rejects $c: $(cat "$c.check")"
BRIDGE_LOG=$MAB_TMP/bridge-hosts.log
NOWAIT=1 bridge_start "$c"
wait_until 30 forwarding || fail "hosts: the bridge did not forward within 30 s"
grep -E "mqtt: .*127\.0\.0\.1:$MQTT_WRONGNAME_PORT.*host name" "$BRIDGE_LOG" >/dev/null ||
	fail "hosts: the wrong-name address was not refused for its name: $(grep 'mqtt: ' "$BRIDGE_LOG" | head -n 5)"
grep -qE "mqtt: connected to $MQTT_HOST:$MQTT_TLS_PORT .*address 2 of 2" "$BRIDGE_LOG" ||
	fail "hosts: the bridge is not on the second address"
mab_log "hosts: $(grep -E "mqtt: .*$MQTT_WRONGNAME_PORT.*host name" "$BRIDGE_LOG" | head -n 1 | cut -d' ' -f2-)"
pub -s "$seq" -n 1 -i pub-t11 -w 20 >"$MAB_TMP/pub.out" 2>&1 ||
	fail "hosts: mab-pub failed: $(cat "$MAB_TMP/pub.out")"
sink_expect "hosts" -q sink -s "$seq" -n 1 -i 15
bridge_stop 20 || fail "hosts: bridge exited with status $? after SIGTERM"

((${#UNCLEAR[@]} == 0)) ||
	fail "failure lines that do not say why: $(printf '\n  %s' "${UNCLEAR[@]}")"
pass "$flow_summary; 5 first-connect refusals and $( [[ ${T11_QUICK:-0} == 1 ]] && echo 3 || echo 6) reconnect refusals handled"
