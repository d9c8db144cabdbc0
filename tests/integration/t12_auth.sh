#!/usr/bin/env bash
# t12_auth.sh: passwords on both sides.
#
# mosquitto gets a second listener with allow_anonymous false and a
# password file (mosquitto_passwd -b), per listener, so that mab-pub keeps
# publishing anonymously on the first one; RabbitMQ gets a user of this
# test's own with rights on the test's vhost only.  Passwords are random.
#
#  1. The bridge forwards with its passwords read from files: mqtt from
#     password_file and amqp from password_credential (a file in
#     $CREDENTIALS_DIRECTORY), then the other way round.  `-t` does not
#     print them.
#  2. A wrong MQTT password is refused with a clear line naming the side,
#     retried with growing delays, and never forwards; a message published
#     meanwhile arrives once the bridge is restarted with the right one.
#  3. A wrong AMQP password (the user's password changed on the broker):
#     the same; once the broker's password is changed back the bridge
#     logs in by itself and forwards what was published meanwhile.
#  4. No password ever appears in the bridge's output.
# While a login is refused, /metrics counts the refusals by side and
# /readyz says which side is down.
set -uo pipefail
here=$(dirname "${BASH_SOURCE[0]}")
# shellcheck source=SCRIPTDIR/../lib/brokers.sh
. "$here/../lib/brokers.sh"
# shellcheck source=SCRIPTDIR/../lib/tls.sh
. "$here/../lib/tls.sh"

ID=bridge-t12
export BR_HTTP=1
FAILS=mqtt_amqp_bridge_connection_failures_total
MQTT_USER=bridge-t12
AMQP_USER=bridge-t12
M=100
AUTH_RE='(refused|login|not authori|access_refused|authentic)'

mab_init t12

secret() { echo "$1-$(openssl rand -hex 12)"; }
{
	MQTT_PASS=$(secret mqttpw) && MQTT_WRONG=$(secret mqttwrong) &&
		AMQP_PASS=$(secret amqppw) && AMQP_OTHER=$(secret amqpother)
} || fail "cannot make passwords"
SECRETS=("$MQTT_PASS" "$MQTT_WRONG" "$AMQP_PASS" "$AMQP_OTHER")

# The secrets, where the bridge reads them.
CREDS=$MAB_TMP/credentials
(umask 077 && mkdir -p "$CREDS" &&
	printf '%s\n' "$MQTT_PASS" >"$CREDS/mqtt-pass" &&
	printf '%s\n' "$AMQP_PASS" >"$CREDS/amqp-pass" &&
	printf '%s\n' "$MQTT_PASS" >"$MAB_TMP/mqtt.pass" &&
	printf '%s\n' "$AMQP_PASS" >"$MAB_TMP/amqp.pass") ||
	fail "cannot write the password files"

# mosquitto: anonymous on MQTT_PORT (for mab-pub), passwords on
# MQTT_AUTH_PORT.  per_listener_settings must come before any security
# setting, and mosq_start writes one first, so the first start only makes
# the directory and the configuration, which then gets the line on top.
MQTT_AUTH_PORT=$(free_port) || fail "no free port"
PASSWD=$MAB_TMP/mosquitto.passwd
(umask 077 && timeout 20 mosquitto_passwd -c -b "$PASSWD" "$MQTT_USER" "$MQTT_PASS") ||
	fail "mosquitto_passwd failed"
mosq_start "listener $MQTT_AUTH_PORT 127.0.0.1" "allow_anonymous false" \
	"password_file $PASSWD" || fail "mosquitto did not start"
sed -i '1i per_listener_settings true' "$MOSQ_DIR/mosquitto.conf" ||
	fail "cannot edit $MOSQ_DIR/mosquitto.conf"
mosq_restart || fail "mosquitto did not restart with per-listener settings"
wait_until 10 tls__listens "$MQTT_AUTH_PORT" "$MOSQ_PID" ||
	fail "mosquitto does not listen on $MQTT_AUTH_PORT"

# RabbitMQ: a user of this test's own, removed at exit (the node is shared).
rmqctl -q delete_user "$AMQP_USER" >/dev/null 2>&1
rmqctl -q add_user "$AMQP_USER" "$AMQP_PASS" >/dev/null ||
	fail "cannot create the RabbitMQ user $AMQP_USER"
mab_on_exit "rmqctl -q delete_user $AMQP_USER >/dev/null 2>&1"
rmqctl -q set_permissions -p "$MAB_VHOST" "$AMQP_USER" '.*' '.*' '.*' >/dev/null ||
	fail "cannot give $AMQP_USER rights on $MAB_VHOST"
sink_setup_main

# conf NAME MQTT_SETTING AMQP_SETTING: a configuration for the
# authenticated listeners with the given password settings.  Prints the
# file name.
conf() {
	local f=$MAB_TMP/$1.conf
	{
		bridge_conf "$f" "$ID" &&
			sed -i '/^    username = "guest";$/d; /^    password = "guest";$/d' "$f" &&
			conf_set_port "$f" mqtt "$MQTT_AUTH_PORT" &&
			conf_add "$f" mqtt "username = \"$MQTT_USER\";" "$2" &&
			conf_add "$f" amqp "username = \"$AMQP_USER\";" "$3"
	} || fail "cannot write $f"
	CREDENTIALS_DIRECTORY=$CREDS "$BRIDGE_BIN" -t -c "$f" >"$f.check" 2>&1 ||
		fail "the bridge rejects $f: $(cat "$f.check")"
	echo "$f"
}

# conf runs in a subshell: the port is chosen here, once.
MAB_HTTP_PORT=$(free_port) || fail "no free port"
conf1=$(conf files-1 "password_file = \"$MAB_TMP/mqtt.pass\";" \
	'password_credential = "amqp-pass";') || exit 1
conf2=$(conf files-2 'password_credential = "mqtt-pass";' \
	"password_file = \"$MAB_TMP/amqp.pass\";") || exit 1
wrong_mqtt=$(conf wrong-mqtt "password = \"$MQTT_WRONG\";" \
	'password_credential = "amqp-pass";') || exit 1

# The bridge's environment: the directory systemd's LoadCredential= makes.
export CREDENTIALS_DIRECTORY=$CREDS
seq=0

# ---------------------------------------------------------------------------
# 1. Passwords from files.
for c in "$conf1" "$conf2"; do
	label=$(basename "$c" .conf)
	BRIDGE_LOG=$MAB_TMP/bridge-$label.log
	bridge_start "$c"
	pub -s "$seq" -n "$M" -i pub-t12 -w 30 >"$MAB_TMP/pub.out" 2>&1 ||
		fail "$label: mab-pub failed: $(cat "$MAB_TMP/pub.out")"
	sink_expect "$label" -q sink -s "$seq" -n "$M" -i 15
	bridge_stop 20 || fail "$label: bridge exited with status $? after SIGTERM"
	seq=$((seq + M))
done
grep -q "as $ID .*u'$MQTT_USER'" "$MOSQ_LOG" ||
	fail "mosquitto did not see $MQTT_USER log in"

# ---------------------------------------------------------------------------
# 2. A wrong MQTT password.
BRIDGE_LOG=$MAB_TMP/bridge-wrong-mqtt.log
NOWAIT=1 bridge_start "$wrong_mqtt"
pub -s "$seq" -n "$M" -i pub-t12 -w 30 >"$MAB_TMP/pub.out" 2>&1 ||
	fail "wrong-mqtt: mab-pub failed: $(cat "$MAB_TMP/pub.out")"
wait_until 20 reconnects_at_least "$BRIDGE_LOG" mqtt 4 ||
	fail "wrong-mqtt: fewer than 4 MQTT reconnect attempts logged within 20 s"
mab_alive "$BRIDGE_PID" || fail "wrong-mqtt: the bridge exited instead of retrying"
line=$(grep -iE "[^a-z]mqtt: .*$AUTH_RE" "$BRIDGE_LOG" | head -n 1)
[[ -n $line ]] || fail "wrong-mqtt: no line says the MQTT login was refused"
mab_log "wrong-mqtt: ${line#* }"
bo=$(check_backoff "$BRIDGE_LOG" mqtt) || fail "wrong-mqtt: no growing backoff: $bo"
mab_log "wrong-mqtt: $bo"
(($(bridge_forwarding_count) == 0)) || fail "wrong-mqtt: the bridge forwarded"
metric_at_least "$FAILS{side=\"mqtt\",reason=\"refused\"}" 4 ||
	fail "wrong-mqtt: /metrics does not count the refusals"
ready=$(curl -s --max-time 10 "http://127.0.0.1:$MAB_HTTP_PORT/readyz")
[[ $ready == *"not ready: MQTT 127.0.0.1:$MQTT_AUTH_PORT is down"* ]] ||
	fail "wrong-mqtt: /readyz says: $ready"
bridge_stop 20 || fail "wrong-mqtt: bridge exited with status $? after SIGTERM"
# Fixed: the right password (from its file).
BRIDGE_LOG=$MAB_TMP/bridge-wrong-mqtt-fixed.log
bridge_start "$conf1"
sink_expect "wrong-mqtt: fixed" -q sink -s "$seq" -n "$M" -i 15
bridge_stop 20 || fail "wrong-mqtt: bridge exited with status $? after SIGTERM"
seq=$((seq + M))

# ---------------------------------------------------------------------------
# 3. A wrong AMQP password: the broker's password changes under the bridge.
rmqctl -q change_password "$AMQP_USER" "$AMQP_OTHER" >/dev/null ||
	fail "cannot change the password of $AMQP_USER"
BRIDGE_LOG=$MAB_TMP/bridge-wrong-amqp.log
NOWAIT=1 bridge_start "$conf1"
pub -s "$seq" -n "$M" -i pub-t12 -w 30 >"$MAB_TMP/pub.out" 2>&1 ||
	fail "wrong-amqp: mab-pub failed: $(cat "$MAB_TMP/pub.out")"
wait_until 20 reconnects_at_least "$BRIDGE_LOG" amqp 4 ||
	fail "wrong-amqp: fewer than 4 AMQP reconnect attempts logged within 20 s"
mab_alive "$BRIDGE_PID" || fail "wrong-amqp: the bridge exited instead of retrying"
line=$(grep -iE "[^a-z]amqp: .*$AUTH_RE" "$BRIDGE_LOG" | head -n 1)
[[ -n $line ]] || fail "wrong-amqp: no line says the AMQP login was refused"
mab_log "wrong-amqp: ${line#* }"
bo=$(check_backoff "$BRIDGE_LOG" amqp) || fail "wrong-amqp: no growing backoff: $bo"
mab_log "wrong-amqp: $bo"
(($(bridge_forwarding_count) == 0)) || fail "wrong-amqp: the bridge forwarded"
metric_at_least "$FAILS{side=\"amqp\",reason=\"refused\"}" 4 ||
	fail "wrong-amqp: /metrics does not count the refusals"
ready=$(curl -s --max-time 10 "http://127.0.0.1:$MAB_HTTP_PORT/readyz")
[[ $ready == *"not ready: RabbitMQ 127.0.0.1:$RABBIT_PORT is down"* ]] ||
	fail "wrong-amqp: /readyz says: $ready"
# Fixed on the broker: the bridge logs in by itself.
rmqctl -q change_password "$AMQP_USER" "$AMQP_PASS" >/dev/null ||
	fail "cannot change the password of $AMQP_USER back"
mab_log "wrong-amqp: password changed back on the broker"
bridge_wait_forwarding 0 30
sink_expect "wrong-amqp: fixed" -q sink -s "$seq" -n "$M" -i 15
bridge_stop 20 || fail "wrong-amqp: bridge exited with status $? after SIGTERM"
seq=$((seq + M))

# ---------------------------------------------------------------------------
# 4. No password in the output (logs, and what -t prints).
for s in "${SECRETS[@]}"; do
	for f in "$MAB_TMP"/bridge-*.log "$MAB_TMP"/*.conf.check; do
		! grep -qF "$s" "$f" || fail "a password appears in $(basename "$f")"
	done
done

pass "$seq messages; wrong passwords refused on both sides, with backoff"
