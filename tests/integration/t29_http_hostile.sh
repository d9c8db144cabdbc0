#!/usr/bin/env bash
# t29_http_hostile.sh: hostile HTTP clients cost the bridge neither its
# messages nor its memory nor its file descriptors.
#
# Through a 20,000-message run (rate-limited to last about 17 s),
# tests/lib/http-hostile.py attacks http_listen: 200 idle connections held
# 12 s (past the endpoint's 10 s idle timeout), a request with 1 MiB of
# headers, random bytes that are not HTTP, and a slow client that sends a
# valid GET /metrics and reads one byte a second.  Meanwhile:
#   1. forwarding goes on: the stats' forwarded count grows in every 3 s
#      while the publisher runs (/metrics itself may be out of reach then:
#      the idle connections hold the endpoint's 32);
#   2. the bridge's RSS stays under its baseline + 16 MiB, and its open fds
#      under baseline + 32 connections (+ 2, see below);
#   3. the 1 MiB request and the random bytes get an error or a close, never
#      a 200, and never hang past the idle timeout.
# Once the attack ends, the fd count comes back to its baseline (within the
# 10 s idle timeout plus a margin), /healthz answers 200, and every message
# arrives: none lost.  Last, with nothing else going on, 32 connections
# (the limit) are opened and closed, by their client and then by the idle
# timeout: each time the endpoint must accept again at once.
set -uo pipefail
here=$(dirname "${BASH_SOURCE[0]}")
# shellcheck source=SCRIPTDIR/../lib/brokers.sh
. "$here/../lib/brokers.sh"
# shellcheck source=SCRIPTDIR/../lib/http.sh
. "$here/../lib/http.sh"

N=20000
RATE=1200
ID=bridge-t29
HOSTILE=$here/../lib/http-hostile.py
# The endpoint's limits (spec): 32 connections, 32 KiB each, 10 s idle.
HTTP_CONNS=32
IDLE_TIMEOUT=10
# RSS bound: the attack can make the bridge hold at most 32 connections of
# 32 KiB each, 1 MiB, plus libmicrohttpd's own per-connection state (well
# under a KiB each).  16 MiB over the baseline leaves room for malloc's
# arenas and for what forwarding itself still allocates after the baseline
# is taken (up to inflight_max = 1000 messages of at most 1 KiB), while a
# server that buffered the 1 MiB of headers, or every one of the 200
# connections, or the slow client's whole response over and over, would
# show.
RSS_MARGIN_KB=$((16 * 1024))
# fd bound: the 32 connections, plus 2 for a connection accepted and at
# once closed again at the limit while /proc is read.
FD_MARGIN=$((HTTP_CONNS + 2))

mab_init t29
command -v curl >/dev/null || { echo "t29: curl is missing (tests/lib/deps.sh)" >&2; exit 77; }
command -v python3 >/dev/null || { echo "t29: python3 is missing (tests/lib/deps.sh)" >&2; exit 77; }
mosq_start || fail "mosquitto did not start"
sink_setup_main
http_setup
bridge_conf "$MAB_TMP/bridge.conf" "$ID"
http_require "$MAB_TMP/bridge.conf"
bridge_start "$MAB_TMP/bridge.conf"
http_wait_code 10 /healthz 200 || fail "/healthz answered $HTTP_CODE, not 200, within 10 s of start"

# A sanitizer or valgrind holds freed memory back on purpose (ASan's
# quarantine is 256 MiB): RSS then says nothing about the bridge.
rss_checked=1
if [[ -n ${BRIDGE_WRAPPER:-} ]] || ldd "$BRIDGE_BIN" 2>/dev/null | grep -q 'libasan'; then
	rss_checked=0
fi

# listen_queue: how many connections wait to be accepted on http_listen.
listen_queue() {
	ss -Hltn "( sport = :$HTTP_PORT )" 2>/dev/null | awk '{ print $2; exit }'
}
rss_kb() {
	awk '$1 == "VmRSS:" { print $2 }' "/proc/$BRIDGE_PID/status" 2>/dev/null
}
fd_count() {
	local list
	list=(/proc/"$BRIDGE_PID"/fd/*)
	echo "${#list[@]}"
}
# fd_kinds: what the open fds are, the most common first (for a failure).
fd_kinds() {
	local f
	for f in /proc/"$BRIDGE_PID"/fd/*; do
		readlink "$f" | sed 's/:\[.*//'
	done | sort | uniq -c | sort -rn | tr -s ' \n' ' '
}

pub -n "$N" -T 100 -z 16 -Z 1024 -r "$RATE" -i pub-t29 >"$MAB_TMP/pub.out" 2>&1 &
pub_pid=$!
mab_on_exit "mab_kill_pid $pub_pid 5"
# The baseline is taken while forwarding at full rate, with one request
# served (the endpoint's own allocations made once).
bridge_wait_stats 30 forwarded=2000 || fail "the bridge did not forward 2000 messages within 30 s"
http_expect GET /metrics 200
sleep 0.5
base_rss=$(rss_kb)
base_fds=$(fd_count)
[[ -n $base_rss && $base_fds -gt 0 ]] || fail "cannot read /proc/$BRIDGE_PID"
mab_log "baseline: VmRSS ${base_rss} kB, ${base_fds} fds;" \
	"bounds: VmRSS $((base_rss + RSS_MARGIN_KB)) kB$( ((rss_checked)) || echo ' (not checked: sanitizer or wrapper)'), $((base_fds + FD_MARGIN)) fds"

python3 "$HOSTILE" --port "$HTTP_PORT" --idle 200 --hold 12 --header-bytes $((1 << 20)) \
	--garbage 3 --slow-seconds 15 --deadline 40 >"$MAB_TMP/hostile.out" 2>"$MAB_TMP/hostile.err" &
hostile_pid=$!
mab_on_exit "mab_kill_pid $hostile_pid 5"
attack_t0=$SECONDS

max_rss=$base_rss
max_fds=$base_fds
last_fwd=$(stats_field forwarded)
last_sample=$(mab_now_ms)
pub_was_alive=1
while mab_alive "$hostile_pid"; do
	mab_alive "$BRIDGE_PID" || fail "the bridge exited during the attack"
	rss=$(rss_kb)
	fds=$(fd_count)
	((rss > max_rss)) && max_rss=$rss
	((fds > max_fds)) && max_fds=$fds
	if ((rss_checked && rss > base_rss + RSS_MARGIN_KB)); then
		fail "VmRSS ${rss} kB during the attack, baseline ${base_rss} kB"
	fi
	((fds <= base_fds + FD_MARGIN)) ||
		fail "$fds fds open during the attack, baseline $base_fds: $(fd_kinds)"
	if (($(mab_now_ms) - last_sample >= 3000)); then
		bridge_stats || fail "the bridge logged no stats line after SIGUSR1 during the attack"
		fwd=$(stats_field forwarded)
		pub_alive=0
		mab_alive "$pub_pid" && pub_alive=1
		mab_log "attack +$((SECONDS - attack_t0)) s: forwarded=$fwd (+$((fwd - last_fwd))), VmRSS ${rss} kB, $fds fds"
		# Judged only over 3 s in which the publisher ran throughout.
		if ((pub_was_alive && pub_alive && fwd <= last_fwd)); then
			fail "forwarding stalled during the attack: forwarded=$fwd, 3 s earlier $last_fwd"
		fi
		last_fwd=$fwd
		last_sample=$(mab_now_ms)
		pub_was_alive=$pub_alive
	fi
	sleep 0.5
done
wait "$hostile_pid"
rc=$?
((rc == 0)) || fail "http-hostile.py exited with status $rc: $(cat "$MAB_TMP/hostile.err")"
mab_log "attack over after $((SECONDS - attack_t0)) s; max VmRSS ${max_rss} kB" \
	"(+$((max_rss - base_rss)) kB), max $max_fds fds (baseline $base_fds)"
sed 's/^/  hostile: /' "$MAB_TMP/hostile.out" >&2
grep -q '^done' "$MAB_TMP/hostile.out" || fail "http-hostile.py did not finish: $(cat "$MAB_TMP/hostile.out")"
for kind in headers garbage0 garbage1 garbage2; do
	result=$(awk -v k="$kind" '$1 == k { sub(/^result=/, "", $2); print $2 }' "$MAB_TMP/hostile.out")
	case $result in
	4[0-9][0-9] | closed | reset) ;;
	*) fail "$kind: the endpoint's answer was '$result', expected a 4xx or a close" ;;
	esac
done

# Every connection the attack opened is gone within the idle timeout (a
# connection the clients closed goes at once; the margin is for a loaded
# machine).
limit=$((IDLE_TIMEOUT + 20))
t0=$(mab_now_ms)
until (($(fd_count) <= base_fds)); do
	(($(mab_now_ms) - t0 < limit * 1000)) ||
		fail "$(fd_count) fds open $limit s after the attack, baseline $base_fds: $(fd_kinds)"
	sleep 0.2
done
mab_log "fds back to $(fd_count) (baseline $base_fds) $(($(mab_now_ms) - t0)) ms after the attack"
http_wait_code 10 /healthz 200 ||
	fail "/healthz answered $HTTP_CODE, not 200, after the attack;" \
		"$(listen_queue) connection(s) wait in the endpoint's listen queue, never accepted"
[[ $HTTP_BODY == ok ]] || fail "/healthz body '$HTTP_BODY' after the attack"
http_expect GET /metrics 200

wait "$pub_pid" || fail "mab-pub failed: $(cat "$MAB_TMP/pub.out")"
sink_expect "sink" -q sink -n "$N" -T 100 -i 30
final_rss=$(rss_kb)

# The limit reached and let go, with nothing else going on: exactly 32
# connections, closed by their client after HOLD seconds; past the 10 s
# idle timeout the endpoint has closed them itself first.  Either way the
# endpoint must take new connections again at once; 10 s is the margin for
# a loaded machine.
limit_and_release() {
	local hold=$1 how=$2
	python3 - "$HTTP_PORT" "$HTTP_CONNS" "$hold" <<-'EOF' ||
		import socket, sys, time
		socks = [socket.create_connection(("127.0.0.1", int(sys.argv[1])), timeout=5)
		         for _ in range(int(sys.argv[2]))]
		time.sleep(float(sys.argv[3]))
		for s in socks:
		    s.close()
	EOF
		fail "could not open $HTTP_CONNS connections to the endpoint"
	http_wait_code 10 /healthz 200 ||
		fail "/healthz answered $HTTP_CODE, not 200, 10 s after $HTTP_CONNS connections (the limit)" \
			"were $how; $(listen_queue) connection(s) wait in the listen queue, never accepted"
	mab_log "$HTTP_CONNS connections $how: /healthz 200 after ${HTTP_WAIT_MS} ms"
}
limit_and_release 1 "opened and closed by their client"
limit_and_release $((IDLE_TIMEOUT + 2)) "held until the endpoint's idle timeout closed them"

bridge_stop 30 || fail "bridge exited with status $? after SIGTERM"
expect_nothing_set_aside
pass "$SINK_SUMMARY; VmRSS base ${base_rss} kB, max ${max_rss} kB, end ${final_rss} kB"
