#!/usr/bin/env bash
# t30_json_log.sh: bridge.log_format = "json".
#
#  1. From the first line on, the bridge logs JSON.  2,000 messages are
#     forwarded; the stats object after SIGUSR1 counts them as JSON
#     numbers that agree with its own text; both sides' "connected"
#     events name their side and node.
#  2. A reload to log_level "debug" with rules: each rule decision on a
#     topic that needs escaping ('"', '\' and UTF-8) carries action, rule,
#     rule_line and the topic intact; a reload of a broken file ends in
#     event reload_failed with the number of errors, the error itself
#     under module "main".
#  3. Every line the bridge wrote, up to the stats object at exit, is one
#     JSON object, and the last stats object counts every message.
#  4. Under the journal (JOURNAL_STREAM naming stderr) every line is the
#     "<N>" priority of its level followed by the object.
set -uo pipefail
# shellcheck source=SCRIPTDIR/../lib/brokers.sh
. "$(dirname "${BASH_SOURCE[0]}")/../lib/brokers.sh"

N=2000
M=20
D=5
ID=bridge-t30
S_ESC=100000
S_DROP=200000
# Topics for the rule decisions: a quote, a backslash and a two-byte character.
T_ESC='fleet/q"uo\te/é%d'
T_DROP='fleet/drop/x%d'

# json_lines [FROM]: the bridge's log after line FROM, without the lines
# bridge_start adds to it.
json_lines() {
	bridge_log_since "${1:-0}" | grep -v '^===== ' || true
}

# json_py FROM SCRIPT [ARGS]...: runs SCRIPT, Python, with `objs` the
# objects the bridge logged after line FROM (one per line: it fails on a
# line that is not JSON) and `args` the ARGS.
json_py() {
	local from=$1 script=$2
	shift 2
	json_lines "$from" | python3 -c "
import json, sys
objs = [json.loads(l) for l in sys.stdin]
args = sys.argv[1:]
$script" "$@"
}

# json_check FROM WHAT SCRIPT [ARGS]...: fails the test with WHAT and the
# script's complaint unless SCRIPT (see json_py) ends without an exception.
json_check() {
	local from=$1 what=$2 out
	shift 2
	out=$(json_py "$from" "$@" 2>&1) || fail "$what: $(tail -n 3 <<<"$out")"
	[[ -z $out ]] || mab_log "$what: $out"
}

# Asserts on the last stats object: its counters are JSON integers that
# agree with the key=value text, and args name expected values (NAME=N).
STATS_PY='
import re
s = [o for o in objs if o["module"] == "stats"]
assert s, "no stats object"
o = s[-1]
names = ["received", "redelivered", "forwarded", "dead_lettered", "dropped", "nacked",
         "mqtt_reconnects", "amqp_reconnects"]
for n in names:
    assert type(o[n]) is int, "%s is %r, not a number" % (n, o[n])
    m = re.search(r"\b%s=(\d+)" % n, o["message"])
    assert m and int(m.group(1)) == o[n], "%s: text and field differ: %s" % (n, json.dumps(o))
for n in ("mqtt_node", "amqp_node"):
    assert type(o[n]) is str and o[n].startswith("127.0.0.1:"), "%s is %r" % (n, o.get(n))
for a in args:
    n, v = a.split("=")
    assert o[n] == int(v), "%s=%r, expected %s: %s" % (n, o[n], v, json.dumps(o))
print(" ".join("%s=%d" % (n, o[n]) for n in names))
'

# stats_json NAME: NAME in the last stats object.
stats_json() {
	json_py 0 'print([o for o in objs if o["module"] == "stats"][-1][args[0]])' "$1" 2>/dev/null
}

# stats_wait SECONDS NAME VALUE: SIGUSR1 until the stats object's NAME
# reaches VALUE; false if SECONDS pass first.
stats_wait() {
	local deadline=$((SECONDS + $1)) before v
	for (( ; ; )); do
		before=$(bridge_log_lines)
		kill -USR1 "$BRIDGE_PID" || fail "cannot signal the bridge"
		bridge_wait_log "$before" '"module":"stats"' 10
		v=$(stats_json "$2")
		((${v:-0} >= $3)) && return 0
		((SECONDS >= deadline)) && return 1
		sleep 0.3
	done
}

# reload FILE-CHANGE: SIGHUP; waits for the reload's end; leaves the log
# length from before it in RELOAD_FROM.
reload() {
	RELOAD_FROM=$(bridge_log_lines)
	kill -HUP "$BRIDGE_PID" || fail "cannot signal the bridge"
	bridge_wait_log "$RELOAD_FROM" '"event":"(reloaded|reload_failed)"' 30
}

# start_json: starts the bridge and waits for its JSON "forwarding" line.
start_json() {
	local from
	touch "$BRIDGE_LOG"
	from=$(bridge_log_lines)
	NOWAIT=1 bridge_start "$CONF"
	bridge_wait_log "$from" '"module":"bridge","message":"forwarding"' 60
}

mab_init t30
CONF=$MAB_TMP/bridge.conf
BRIDGE_LOG=$MAB_TMP/bridge.log
mosq_start || fail "mosquitto did not start"
sink_setup_main
BR_BRIDGE='    log_format = "json";' bridge_conf "$CONF" "$ID"
"$BRIDGE_BIN" -t -c "$CONF" | grep -qx 'bridge.log_format = "json"' ||
	fail "-t does not show bridge.log_format = \"json\""

# ---- 1: forwarding, logged as JSON.
start_json
pub -n "$N" -T 20 -z 16 -Z 512 -i pub-t30 || fail "mab-pub failed"
sink_expect "sink" -q sink -n "$N" -T 20 -i 30
stats_wait 30 forwarded "$N" || fail "the stats object never counted $N forwarded"
json_check 0 "stats after $N messages" "$STATS_PY" received=$N forwarded=$N redelivered=0 \
	dropped=0 nacked=0 dead_lettered=0
json_check 0 "connection events" '
for side in ("mqtt", "amqp"):
    c = [o for o in objs if o.get("event") == "connected" and o["module"] == side]
    assert c, "no connected event from " + side
    o = c[0]
    assert o["side"] == side and o["node"] and o["node"] in o["message"], json.dumps(o)
    assert o["level"] == "info" and o["message"].startswith("connected to "), json.dumps(o)
'

# ---- 2: reloads: debug with rules, then a broken file.
BR_LOG_LEVEL=debug BR_BRIDGE='    log_format = "json";' BR_TAIL='rules = (
    { match = "fleet/drop/#"; drop = true; },
    { match = "fleet/#"; }
);' bridge_conf "$CONF" "$ID"
drop_line=$(grep -n 'drop = true' "$CONF" | cut -d: -f1)
fwd_line=$(grep -n 'match = "fleet/#"; }' "$CONF" | cut -d: -f1)
reload
json_check "$RELOAD_FROM" "the reload" '
r = [o for o in objs if "event" in o and o["module"] == "bridge"]
assert len(r) == 1 and r[0]["event"] == "reloaded" and r[0]["errors"] == 0, r
'
from=$(bridge_log_lines)
pub -n "$M" -s "$S_ESC" -t "$T_ESC" -T 2 -i pub-t30-esc || fail "mab-pub failed"
pub -n "$D" -s "$S_DROP" -t "$T_DROP" -T 1 -i pub-t30-drop || fail "mab-pub failed"
stats_wait 30 forwarded $((N + M)) || fail "the $M messages after the reload were not forwarded"
json_check "$from" "rule decisions" '
esc, drop, fwd_line, drop_line, m, d = args[0], args[1], int(args[2]), int(args[3]), int(args[4]), int(args[5])
r = [o for o in objs if "action" in o]
f = [o for o in r if o["action"] == "forward"]
x = [o for o in r if o["action"] == "drop"]
topics = {esc % i for i in range(2)}
assert len(f) == m and len(x) == d, "%d forward, %d drop decisions" % (len(f), len(x))
for o in f:
    assert o["level"] == "debug" and o["module"] == "bridge", json.dumps(o)
    assert o["rule"] == 2 and o["rule_line"] == fwd_line, json.dumps(o)
    assert o["topic"] in topics and ("'"'"'%s'"'"'" % o["topic"]) in o["message"], json.dumps(o)
for o in x:
    assert o["rule"] == 1 and o["rule_line"] == drop_line and o["topic"] == drop, json.dumps(o)
print(json.dumps(f[0], ensure_ascii=False))
' "$T_ESC" "${T_DROP%\%d}0" "$fwd_line" "$drop_line" "$M" "$D"

echo 'this line is not = libconfig' >>"$CONF"
bad_line=$(grep -n 'this line is not' "$CONF" | cut -d: -f1)
reload
json_check "$RELOAD_FROM" "the refused reload" '
r = [o for o in objs if o.get("event") == "reload_failed"]
assert len(r) == 1 and r[0]["errors"] == 1 and r[0]["level"] == "error", r
e = [o for o in objs if o["module"] == "main" and o["level"] == "error"]
assert len(e) == 1 and e[0]["message"].startswith(args[0]), e
' "$CONF:$bad_line: "
mab_alive "$BRIDGE_PID" || fail "the bridge exited after a failed reload"

# ---- 3: every line, to the exit.
bridge_stop 30
rc=$?
((rc == 0)) || fail "bridge exited with status $rc after SIGTERM"
json_lines | python3 -c 'import json,sys; [json.loads(l) for l in sys.stdin]' ||
	fail "a line of the bridge's log is not JSON"
json_lines | grep -v '^{' && fail "a line does not start with the object"
json_lines | grep -F '"truncated":' && fail "a line was truncated"
json_check 0 "stats at exit" "$STATS_PY" received=$((N + M + D)) forwarded=$((N + M)) \
	dropped=$D redelivered=0 nacked=0 mqtt_reconnects=0 amqp_reconnects=0
lines=$(json_lines | wc -l)

# ---- 4: under the journal.
BRIDGE_LOG=$MAB_TMP/journal.log
BR_BRIDGE='    log_format = "json";' bridge_conf "$CONF" "$ID"
# As systemd sets it: the device and inode of the bridge's stderr, here
# the log file (a value naming anything else leaves the lines plain).
touch "$BRIDGE_LOG"
JOURNAL_STREAM=$(stat -L -c '%d:%i' "$BRIDGE_LOG") start_json
from=$(bridge_log_lines)
kill -USR1 "$BRIDGE_PID" || fail "cannot signal the bridge"
bridge_wait_log "$from" '"module":"stats"' 10
bridge_stop 30
rc=$?
((rc == 0)) || fail "bridge exited with status $rc after SIGTERM (journal)"
json_lines | python3 -c '
import json, re, sys
prio = {"error": 3, "warning": 4, "info": 6, "debug": 7}
n = 0
for l in sys.stdin:
    m = re.fullmatch(r"<([0-7])>(\{.*\})\n", l)
    assert m, "no <N> prefix in front of the object: %r" % l
    o = json.loads(m.group(2))
    assert prio[o["level"]] == int(m.group(1)), "level %s with <%s>" % (o["level"], m.group(1))
    n += 1
assert n >= 5, "only %d lines" % n
' || fail "under the journal: $(head -n 3 "$BRIDGE_LOG")"
mab_log "journal: $(json_lines | grep -m 1 '"event":"connected"')"
pass "$lines JSON lines, every one valid; stats, rules, reloads and the journal prefix as expected"
