#!/usr/bin/env bash
# run.sh: the integration tests.  Starts one private RabbitMQ for the whole
# run (each test makes its own vhost and its own mosquitto), runs every
# t*.sh here (or only those named: run.sh t01 t05), stops RabbitMQ and
# prints "N passed, M failed".  Exit status 0 only if none failed.
#
# Environment:
#   BUILD_DIR       where the bridge and the tools were built (default: the
#                   repository root)
#   BRIDGE_BIN      the bridge (default: $BUILD_DIR/mqtt-amqp-bridge)
#   BRIDGE_WRAPPER  a command prefix for the bridge, e.g.
#                   "valgrind --error-exitcode=99 --leak-check=full"
#   TEST_TIMEOUT    seconds after which a test is stopped (default 300)
#   MAB_KEEP_TMP=1  keep every test's work directory
set -uo pipefail

here=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
# shellcheck source=SCRIPTDIR/../lib/brokers.sh
. "$here/../lib/brokers.sh"
MAB_TEST_NAME=run

tests=()
if (($# > 0)); then
	for name in "$@"; do
		matches=("$here/${name%.sh}"*.sh)
		[[ -e ${matches[0]} ]] || { echo "run.sh: no test named $name" >&2; exit 2; }
		tests+=("${matches[@]}")
	done
else
	tests=("$here"/t*.sh)
fi

mab_tmp || exit 1
mab_trap
t0=$SECONDS
rabbit_start || { echo "RabbitMQ did not start"; echo "0 passed, ${#tests[@]} failed"; exit 1; }
current=
# An interrupted run stops the test in progress before RabbitMQ (timeout
# passes SIGTERM on to it, and its own trap stops what it started).
stop_current() {
	[[ -z $current ]] || mab_kill_pid "$current" 30
}
mab_on_exit stop_current

passed=0
failed=0
skipped=0
failures=()
for t in "${tests[@]}"; do
	name=$(basename "$t" .sh)
	echo "===== $(date +%T) $name"
	start=$SECONDS
	out=$MAB_TMP/$name.out
	: >"$out"
	# In the background, so that an interrupt reaches the trap at once
	# (which stops the test); tail shows the output as it comes.
	timeout -k 15 "${TEST_TIMEOUT:-300}" bash "$t" >"$out" 2>&1 &
	current=$!
	tail -n +1 -s 0.2 -f --pid="$current" "$out" &
	tail_pid=$!
	wait "$current"
	rc=$?
	current=
	wait "$tail_pid"
	case $rc in
	0)
		passed=$((passed + 1))
		echo "===== $name passed ($((SECONDS - start)) s)"
		;;
	77)
		skipped=$((skipped + 1))
		echo "===== $name skipped"
		;;
	*)
		failed=$((failed + 1))
		failures+=("$name")
		[[ $rc == 124 ]] && echo "===== $name timed out after ${TEST_TIMEOUT:-300} s"
		echo "===== $name FAILED (status $rc, $((SECONDS - start)) s)"
		;;
	esac
	# A test that froze or killed RabbitMQ may have failed before undoing
	# it; the next test gets a working node either way.
	pid=$(cat "$RABBIT_DIR/rabbit.pid" 2>/dev/null) && kill -CONT "$pid" 2>/dev/null
	if ! rabbit_alive; then
		echo "===== RabbitMQ is down after $name; restarting it"
		rabbit_restart || { echo "RabbitMQ did not restart"; break; }
	fi
done
rabbit_stop
# Tests that never ran (RabbitMQ could not be restarted) count as failed.
failed=$((${#tests[@]} - passed - skipped))

echo "===== $((SECONDS - t0)) s in all${failures[*]:+; failed: ${failures[*]}}"
if ((skipped > 0)); then
	echo "$passed passed, $failed failed, $skipped skipped"
else
	echo "$passed passed, $failed failed"
fi
((failed == 0 && passed + skipped == ${#tests[@]}))
