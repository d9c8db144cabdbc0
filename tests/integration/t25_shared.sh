#!/usr/bin/env bash
# t25_shared.sh: several bridges, each with its own client id and persistent
# session, share one MQTT shared subscription ($share/bridges/sensors/#) on
# one mosquitto and forward into one RabbitMQ vhost.
#
# What mosquitto 2.0.11 does with a shared subscription (src/subs.c,
# subs__shared_process): each message goes to the member at the head of the
# group's list, which then moves to its end: strict rotation, whether or not
# that member is connected.  A member whose session outlives its connection
# keeps its place: its turns are queued in its session (db__message_insert),
# and what was in flight to it stays there too; both are delivered to it
# when it comes back, never to another member.  When its session ends
# (context__cleanup via session_expiry__check), everything it held is freed:
# lost.  An UNSUBSCRIBE takes it out of the rotation (sub__remove_shared),
# and what its session already holds is still delivered to it.
#
#   a. Three bridges, a and b with MQTT 3.1.1 and c with MQTT 5, share the
#      group while 30,000 messages flow; b is killed (SIGKILL) mid-run and
#      restarted.  All arrive (duplicates are counted, not refused); every
#      bridge got a share (its stats, and the broker's log of what it sent
#      it); no message went to two members.
#   b. A member that does not come back: c is killed; of the messages
#      published next, those that were c's turn are sent to nobody while it
#      is away (a and b forward theirs, the rest wait).  Started again with
#      the same client id, c gets exactly those, and nothing is lost.
#   c. Retiring a member without stranding anything, with what the bridge
#      has today.  c is frozen (SIGSTOP) while messages flow, so that its
#      session holds its turns; its configuration then replaces the shared
#      filter with one that selects nothing and is reloaded (SIGHUP, then
#      SIGCONT), so the bridge unsubscribes.  c goes on forwarding what its
#      session holds until the sink has every message, and is stopped.
#      Messages published afterwards all arrive through a and b.  Then a
#      clean-session connect with c's client id deletes c's (now empty)
#      session.
#   d. Session expiry: d (MQTT 5, session_expiry 2 s) joins, is frozen
#      (SIGSTOP) while messages flow, so that its turns are in flight to it
#      or queued for it, and is killed.  When the broker expires its session,
#      exactly those messages are lost: the sink misses them and d, started
#      again, gets a new session and none of them.
#   e. A restart of mosquitto (SIGTERM, persistence on): a and b are stopped
#      and their sessions hold messages; mosquitto is restarted and more are
#      published before a and b are started again.  The sessions and what
#      they held come through, but mosquitto 2.0.11 does not save shared
#      subscriptions (persist_write.c, persist__subs_save writes a level's
#      subs, not its shared groups): until a member subscribes again the
#      group does not exist, and what is published meanwhile goes to nobody.
#      The bridge subscribes on every connection, which ends that window.
#
# mosquitto runs with no in-flight window (brokers.sh's max_inflight_messages
# 0), so a message given to a connected 3.1.1 member is sent, and logged as
# "Sending PUBLISH to ID (...)", before the publisher's PUBACK: once mab-pub
# has exited, the messages logged to a and b (each part has topics of its
# own, each message is counted once by its packet identifier) are all of
# their turns, and the rest are the absent member's.  Counts are compared
# only with what the broker logged, never with a time.
set -uo pipefail
# shellcheck source=SCRIPTDIR/../lib/brokers.sh
. "$(dirname "${BASH_SOURCE[0]}")/../lib/brokers.sh"

N=30000
RATE=3000
M=3000
ID=bridge-t25
export BR_INFLIGHT=500
# The bridges' subscription ("$share" is no variable).
# shellcheck disable=SC2016
GROUP='$share/bridges/sensors/#'

mab_init t25
mosq_start || fail "mosquitto did not start"
for q in a s1 s3 s4 s2 s5 s6; do
	sink_setup_main "q$q" "sensors.$q.#"
done

# member_conf NAME [EXPIRY]: bridge NAME's configuration (client id
# bridge-t25-NAME, the shared subscription unless BR_SUBSCRIBE says
# otherwise): MQTT 3.1.1, or MQTT 5 with a session expiry of EXPIRY seconds.
member_conf() {
	local name=$1 expiry=${2:-} subscribe=${BR_SUBSCRIBE:-"\"$GROUP\""}
	if [[ -n $expiry ]]; then
		BR_SUBSCRIBE=$subscribe BR_PROTOCOL=5 BR_MQTT="    session_expiry = $expiry;" \
			bridge_conf "$MAB_TMP/$name.conf" "$ID-$name"
	else
		BR_SUBSCRIBE=$subscribe bridge_conf "$MAB_TMP/$name.conf" "$ID-$name"
	fi
}

# member_start NAME: starts bridge NAME (and makes it the current one).
member_start() {
	bridge_use "$1"
	bridge_start "$MAB_TMP/$1.conf"
}

# received_of NAME: bridge NAME's "received" counter, asked for now.
received_of() {
	bridge_use "$1"
	bridge_stats || fail "bridge $1 (pid $BRIDGE_PID) logged no stats line after SIGUSR1"
	stats_field received
}

# sent FROM PART NAME...: the messages of part PART (topics sensors/PART/...)
# that the broker gave these members after line FROM of its log, added up.
sent() {
	local from=$1 part=$2 name sum=0
	shift 2
	for name in "$@"; do
		sum=$((sum + $(mosq_messages_to "$ID-$name" "$from" "sensors/$part/")))
	done
	echo "$sum"
}

# mosq_saw_gone NAME FROM: true once the broker logged, after line FROM,
# that member NAME's connection ended.
# shellcheck disable=SC2317  # called through wait_until
mosq_saw_gone() {
	tail -n +"$(($2 + 1))" "$MOSQ_LOG" |
		grep -Eq "lient $ID-$1 (closed its connection|disconnected)|on client $ID-$1: "
}

# mosq_expired NAME COUNT: true once the broker logged COUNT expiries of
# member NAME's session.
# shellcheck disable=SC2317  # called through wait_until
mosq_expired() {
	(($(grep -cF "Expiring client $ID-$1 due to timeout." "$MOSQ_LOG") >= $2))
}

# queue_holds QUEUE COUNT: true once QUEUE holds at least COUNT messages.
# shellcheck disable=SC2317  # called through wait_until
queue_holds() {
	local n
	n=$(sink count -q "$1" 2>/dev/null) || return 1
	((n >= $2))
}

# publish NAME COUNT [ARGS...]: COUNT messages on sensors/NAME/devK/temp,
# K = seq % 100, from client pub-t25-NAME; waits for them.
publish() {
	local name=$1 count=$2
	shift 2
	pub -n "$count" -t "sensors/$name/dev%d/temp" -T 100 -z 16 -Z 256 -i "pub-t25-$name" "$@" \
		>"$MAB_TMP/pub-$name.out" 2>&1 ||
		fail "mab-pub $name failed: $(cat "$MAB_TMP/pub-$name.out")"
}

# ---------------------------------------------------------------------------
# a. Three members, one killed and restarted while 30,000 messages flow.

member_conf a
member_conf b
member_conf c 3600
for name in a b c; do
	member_start "$name"
done
mark=$(mosq_log_lines)
publish a "$N" -r "$RATE" &
pub_pid=$!
mab_on_exit "mab_kill_pid $pub_pid 5"
# At most RATE msg/s: the publisher is still at work, with at least
# N - 3 s x RATE messages to go, through b's absence and after it.
sleep 3
bridge_use b
bridge_kill9
mab_log "a: bridge b killed"
sleep 2
bridge_start "$MAB_TMP/b.conf"
wait "$pub_pid" || fail "the publisher of part a failed"
sink_expect "a: $N through three members, b killed once" -q qa -n "$N" \
	-t 'sensors/a/dev%d/temp' -T 100 -i 30
dup_a=$SINK_DUPLICATES
total=0
shares=()
for name in a b c; do
	given=$(sent "$mark" a "$name")
	got=$(received_of "$name")
	# b's count is its second process's: what it was sent after the restart.
	((got > 0)) || fail "bridge $name received nothing (stats: received=$got)"
	((given > 0)) || fail "the broker sent bridge $name no message"
	total=$((total + given))
	# Sent again after a reconnect: only a member's own, as its session kept them.
	again=$(($(mosq_sends_to "$ID-$name" "$mark") - given))
	shares+=("$name: $given sent ($again again), $got received;")
done
mab_log "a: shares: ${shares[*]} $dup_a duplicates"
# Each message goes to one member, once; a publisher that reconnected may
# have sent one twice, which the broker takes as two.
conns=$(tail -n +"$((mark + 1))" "$MOSQ_LOG" | grep -cF " as pub-t25-a (")
if ((conns == 1)); then
	((total == N)) || fail "the members were sent $total distinct messages for $N published:" \
		"a message went to more than one member (${shares[*]})"
else
	mab_log "a: the publisher connected $conns times; the members' sum ($total) is not checked"
fi

# ---------------------------------------------------------------------------
# b. c does not come back (for now): its turns wait for it.

bridge_use c
from=$(mosq_log_lines)
bridge_kill9
wait_until 30 mosq_saw_gone c "$from" || fail "mosquitto did not log the end of c's connection"
mark=$(mosq_log_lines)
publish s1 "$M"
to_ab=$(sent "$mark" s1 a b)
held=$((M - to_ab))
((held > 0)) || fail "b: all $M messages went to a and b while c was away"
wait_until 60 queue_holds qs1 "$to_ab" || fail "b: a and b did not forward their $to_ab messages"
# Nothing was published since: had the broker handed c's messages to a or b,
# the messages logged to them would have grown.
now_ab=$(sent "$mark" s1 a b)
((now_ab == to_ab)) || fail "b: a and b were sent $((now_ab - to_ab)) more while c was away"
mab_log "b: c away: a and b got $to_ab of $M, $held wait for c"
member_start c
sink_expect "b: $M, c restarted with its client id" -q qs1 -n "$M" \
	-t 'sensors/s1/dev%d/temp' -T 100 -i 30
to_c=$(sent "$mark" s1 c)
got=$(received_of c)
((to_c == held)) || fail "b: c was sent $to_c when it came back, not the $held held for it"
((got >= held)) || fail "b: c received $got when it came back, fewer than the $held held for it"
mab_log "b: c came back and got its $held ($got received)"
summary_b=$SINK_SUMMARY

# ---------------------------------------------------------------------------
# c. Retiring c: unsubscribe by reload, drain, stop; nothing stays behind.

# Frozen while messages flow, c's turns pile up in its session (in flight
# up to its Receive Maximum, queued beyond), and it leaves the group
# holding them.
bridge_use c
kill -STOP "$BRIDGE_PID"
mark=$(mosq_log_lines)
publish s3 "$M"
to_ab=$(sent "$mark" s3 a b)
held=$((M - to_ab))
((held > 0)) || fail "c: all $M messages went to a and b while c was frozen"
from=$(bridge_log_lines)
BR_SUBSCRIBE='"t25/retired/c"' member_conf c 3600
kill -HUP "$BRIDGE_PID"
kill -CONT "$BRIDGE_PID"
bridge_wait_log "$from" "mqtt: unsubscribed from '.share/bridges/sensors/#'" 30
mab_log "c: c left the group holding $held messages"
# c is still connected: what its session holds reaches it, and the sink
# waits for every message before c is stopped.
sink_expect "c: $M, c left the group holding $held" -q qs3 -n "$M" \
	-t 'sensors/s3/dev%d/temp' -T 100 -i 30
unsub=$(grep -nF "Sending UNSUBACK to $ID-c" "$MOSQ_LOG" | tail -n 1 | cut -d: -f1)
[[ -n $unsub ]] || fail "mosquitto logged no UNSUBACK to c"
mab_log "c: of c's $held, $(sent "$unsub" s3 c) were sent after the UNSUBACK"
bridge_stop 30 || fail "bridge c exited with status $? after SIGTERM"
mark=$(mosq_log_lines)
publish s4 "$M"
sink_expect "c: $M after c was retired and stopped" -q qs4 -n "$M" \
	-t 'sensors/s4/dev%d/temp' -T 100 -i 30
to_ab=$(sent "$mark" s4 a b)
((to_ab == M)) || fail "c: a and b were sent $to_ab of the $M published after c left"
# The session is empty now; a clean-session connect with its client id ends it.
pub -n 1 -t 't25/retire/%d' -i "$ID-c" >"$MAB_TMP/pub-retire.out" 2>&1 ||
	fail "the clean-session connect as $ID-c failed: $(cat "$MAB_TMP/pub-retire.out")"
from=$(bridge_log_lines)
bridge_start "$MAB_TMP/c.conf"
bridge_log_has "$from" "as '$ID-c' \(session new\)" ||
	fail "c's session was still there after a clean-session connect with its client id"
bridge_stop 30 || fail "bridge c exited with status $? after SIGTERM"

# ---------------------------------------------------------------------------
# d. A member whose session expires: what it held is lost.

member_conf d 2
member_start d
kill -STOP "$BRIDGE_PID"
mark=$(mosq_log_lines)
publish s2 "$M"
to_ab=$(sent "$mark" s2 a b)
lost=$((M - to_ab))
((lost > 0)) || fail "d: all $M messages went to a and b"
from=$(mosq_log_lines)
bridge_kill9
wait_until 30 mosq_saw_gone d "$from" || fail "mosquitto did not log the end of d's connection"
wait_until 30 mosq_expired d 1 || fail "d: mosquitto did not expire d's session"
wait_until 60 queue_holds qs2 "$to_ab" || fail "d: a and b did not forward their $to_ab messages"
from=$(bridge_log_lines)
bridge_start "$MAB_TMP/d.conf"
bridge_log_has "$from" "as '$ID-d' \(session new\)" || fail "d: d's session outlived its expiry"
out=$(sink consume -q qs2 -n "$M" -t 'sensors/s2/dev%d/temp' -T 100 -i 3 2>"$MAB_TMP/sink.err")
mab_log "d: $out"
[[ $out == *" distinct=$to_ab "* && $out == *" lost=$lost "* && $out == *" bad_payload=0 bad_key=0"* ]] ||
	fail "d: expected the $lost messages of d's expired session lost and the other $to_ab there: $out"
got=$(received_of d)
((got == 0)) || fail "d: d received $got after its session expired"
mab_log "d: d's session expired holding $lost of $M, which are lost"

# ---------------------------------------------------------------------------
# e. A restart of mosquitto keeps the sessions and forgets the group.

# d leaves for good first: its session ends 2 s after it stops.
bridge_use d
bridge_stop 30 || fail "bridge d exited with status $? after SIGTERM"
wait_until 30 mosq_expired d 2 || fail "e: mosquitto did not expire d's second session"
for name in a b; do
	bridge_use "$name"
	bridge_stop 30 || fail "bridge $name exited with status $? after SIGTERM"
done
mark=$(mosq_log_lines)
publish s5 "$M"
mosq_restart || fail "mosquitto did not restart"
# No member has subscribed again yet.
publish s6 "$M"
for name in a b; do
	bridge_use "$name"
	from=$(bridge_log_lines)
	bridge_start "$MAB_TMP/$name.conf"
	bridge_log_has "$from" "as '$ID-$name' \(session resumed\)" ||
		fail "e: mosquitto lost $name's session in its restart"
done
sink_expect "e: $M held for a and b across a restart of mosquitto" -q qs5 -n "$M" \
	-t 'sensors/s5/dev%d/temp' -T 100 -i 30
given=$(tail -n +"$((mark + 1))" "$MOSQ_LOG" | grep -c "^[0-9]*: Sending PUBLISH to .* 'sensors/s6/") || true
((given == 0)) || fail "e: mosquitto sent $given of the messages published before a member subscribed again"
in_queue=$(sink count -q qs6) || fail "e: cannot count queue qs6"
((in_queue == 0)) || fail "e: $in_queue messages published before a member subscribed again arrived"
mab_log "e: the $M held for a and b came through the restart; the $M published before they subscribed again went to nobody"

for name in a b; do
	bridge_use "$name"
	bridge_stop 30 || fail "bridge $name exited with status $? after SIGTERM"
done
for name in a b c d; do
	bridge_use "$name"
	expect_nothing_set_aside
done
pass "a: $N through 3 members, one killed: ${shares[*]} $dup_a duplicates; b: $summary_b; c: retired holding $held, none stranded; d: $lost lost with an expired session; e: $M lost to a restart of mosquitto"
