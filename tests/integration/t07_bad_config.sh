#!/usr/bin/env bash
# t07_bad_config.sh: the configuration check (-t) of the real binary, with no
# brokers.  Every tests/unit/conf/bad-*.conf (among them the bad-rule-* and
# bad-topo-* files for the mapping rules and the topology) must be refused
# with status 1 and a "FILE:LINE: " message on stderr; the sample
# configuration and good-rules.conf must pass; a rule that an earlier one
# shadows passes with a "FILE:LINE: " warning and the compiled rules
# printed; a FIFO as the file, as a password_file or in an @include, and
# a rule header too large for a frame, must be refused at once; a missing
# file and an unknown option must be refused.
#
# Environment:
#   BUILD_DIR   where the binary was built (default: the repository root)
#   BRIDGE_BIN  the binary (default: $BUILD_DIR/mqtt-amqp-bridge)
set -euo pipefail

root=$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)
BUILD_DIR=${BUILD_DIR:-$root}
BRIDGE_BIN=${BRIDGE_BIN:-$BUILD_DIR/mqtt-amqp-bridge}
conf_dir=$root/tests/unit/conf
sample=$root/etc/mqtt-amqp-bridge.conf

passed=0
failed=0
status=0
tmp=$(mktemp -d "${TMPDIR:-/tmp}/t07.XXXXXX")
trap 'rm -rf -- "$tmp"' EXIT

pass() {
	passed=$((passed + 1))
	printf 'ok   %s\n' "$*"
}

fail() {
	failed=$((failed + 1))
	printf 'FAIL %s\n' "$*"
}

finish() {
	printf '%d passed, %d failed\n' "$passed" "$failed"
	if ((failed > 0)); then
		exit 1
	fi
	exit 0
}

# run ARG...: runs the bridge (bounded in time, so a binary that starts
# instead of checking cannot hang the test); sets $status and leaves the
# output in $tmp/out and $tmp/err.
run() {
	status=0
	timeout 30 "$BRIDGE_BIN" "$@" </dev/null >"$tmp/out" 2>"$tmp/err" || status=$?
}

# has_error_line FILE: true if stderr has a line "FILE:<digits>: ...".
has_error_line() {
	local file=$1 line rest

	while IFS= read -r line; do
		[[ $line == "$file:"* ]] || continue
		rest=${line#"$file:"}
		if [[ $rest =~ ^[0-9]+:\  ]]; then
			return 0
		fi
	done <"$tmp/err"
	return 1
}

# stderr_excerpt: the first lines of stderr, for a failure message.
stderr_excerpt() {
	head -n 3 "$tmp/err" | tr '\n' '|'
}

if [[ ! -x $BRIDGE_BIN ]]; then
	fail "binary $BRIDGE_BIN is missing or not executable"
	finish
fi

shopt -s nullglob
bad_files=("$conf_dir"/bad-*.conf)
shopt -u nullglob
if ((${#bad_files[@]} == 0)); then
	fail "no bad-*.conf files under $conf_dir"
fi

for f in "${bad_files[@]}"; do
	name=${f##*/}
	run -t -c "$f"
	if ((status != 1)); then
		fail "$name: exit status $status, wanted 1 ($(stderr_excerpt))"
	elif ! has_error_line "$f"; then
		fail "$name: no \"$f:LINE: \" line on stderr ($(stderr_excerpt))"
	else
		pass "$name: refused with status 1 and $(grep -c '' "$tmp/err") error line(s)"
	fi
done

run -t -c "$sample"
if ((status != 0)); then
	fail "sample config: exit status $status, wanted 0 ($(stderr_excerpt))"
elif has_error_line "$sample"; then
	fail "sample config: status 0 but errors on stderr ($(stderr_excerpt))"
else
	pass "sample config: passes -t"
fi

full=$conf_dir/good-full.conf
run -t -c "$full"
if ((status != 0)); then
	fail "good-full.conf: exit status $status, wanted 0 ($(stderr_excerpt))"
elif grep -q -e 'mqtt-secret' -e 'amqp-secret' "$tmp/out" "$tmp/err"; then
	fail "good-full.conf: -t shows a password in clear"
else
	pass "good-full.conf: passes -t without showing its passwords"
fi

rules=$conf_dir/good-rules.conf
run -t -c "$rules"
if ((status != 0)); then
	fail "good-rules.conf: exit status $status, wanted 0 ($(stderr_excerpt))"
elif ! grep -q -x -F '# rules: 8' "$tmp/out" || ! grep -q -F 'site5/#' "$tmp/out"; then
	fail "good-rules.conf: -t does not print the compiled rules"
elif ! grep -q -F 'key = "sensors.*.temp_c";' "$tmp/out"; then
	fail "good-rules.conf: -t does not print the topology's translated binding key"
else
	pass "good-rules.conf: passes -t and prints its topology and rules"
fi

# A rule the first one shadows: a warning at its line (6), not an error.
shadow=$tmp/shadow.conf
cat >"$shadow" <<'EOF'
mqtt = { host = "127.0.0.1"; };
amqp = { host = "127.0.0.1"; };
rules = (
	{ match = "sensors/#"; exchange = "telemetry"; },
	{ match = "other/#"; },
	{
		match = "sensors/+/temperature";
		routing_key = "temp.{1}";
	}
);
EOF
run -t -c "$shadow"
if ((status != 0)); then
	fail "shadowed rule: exit status $status, wanted 0 ($(stderr_excerpt))"
elif ! grep -q -F "warning: $shadow:6: rule 3 (match 'sensors/+/temperature')" "$tmp/err"; then
	fail "shadowed rule: no \"$shadow:6: rule 3 ...\" warning ($(stderr_excerpt))"
elif ! grep -q -x -F '# rules: 3' "$tmp/out" || ! grep -q -F 'temp.{1}' "$tmp/out"; then
	fail "shadowed rule: -t does not print the compiled rules"
elif ! grep -q -F 'mqtt.subscribe = ["sensors/#", "other/#"]' "$tmp/out"; then
	fail "shadowed rule: -t does not show the subscriptions taken from the rules"
else
	pass "shadowed rule: passes -t with a FILE:LINE warning and prints the rules"
fi

# Files that are not regular files: refused at once, not waited on (a
# FIFO without a writer would hold -t until run's timeout, status 124).
fifo=$tmp/fifo
mkfifo "$fifo"
run -t -c "$fifo"
if ((status != 1)); then
	fail "FIFO as the config file: exit status $status, wanted 1 ($(stderr_excerpt))"
elif ! grep -q -F -- "$fifo: cannot read: it is a FIFO, not a regular file" "$tmp/err"; then
	fail "FIFO as the config file: stderr does not say so ($(stderr_excerpt))"
else
	pass "FIFO as the config file: refused at once"
fi

for what in password_file include; do
	conf=$tmp/fifo-$what.conf
	if [[ $what == include ]]; then
		printf '@include "%s"\n' "$fifo" >"$conf"
		printf 'mqtt = { host = "127.0.0.1"; subscribe = [ "a/#" ]; };\n' >>"$conf"
		printf 'amqp = { host = "127.0.0.1"; };\n' >>"$conf"
	else
		printf 'mqtt = { host = "127.0.0.1"; subscribe = [ "a/#" ]; };\n' >"$conf"
		printf 'amqp = { host = "127.0.0.1"; password_file = "%s"; };\n' "$fifo" >>"$conf"
	fi
	run -t -c "$conf"
	if ((status != 1)); then
		fail "FIFO as $what: exit status $status, wanted 1 ($(stderr_excerpt))"
	elif ! has_error_line "$conf" || ! grep -q -F 'a FIFO, not a regular file' "$tmp/err"; then
		fail "FIFO as $what: no \"$conf:LINE: \" line naming the FIFO ($(stderr_excerpt))"
	else
		pass "FIFO as $what: refused at once with a FILE:LINE error"
	fi
done

# A rule header that could never fit a frame (200 KB; a frame holds 128 KiB).
big=$tmp/big-header.conf
{
	printf 'mqtt = { host = "127.0.0.1"; subscribe = [ "a/#" ]; };\n'
	printf 'amqp = { host = "127.0.0.1"; };\n'
	printf 'rules = (\n\t{ match = "a/#"; headers = { h = "'
	head -c 200000 /dev/zero | tr '\0' x
	printf '"; }; }\n);\n'
} >"$big"
run -t -c "$big"
if ((status != 1)); then
	fail "200 KB rule header: exit status $status, wanted 1 ($(stderr_excerpt))"
elif ! grep -q -F "$big:4: rule 1 (match 'a/#'): its headers take 200011 bytes encoded" "$tmp/err"; then
	fail "200 KB rule header: no \"$big:4: rule 1 ...\" error ($(stderr_excerpt))"
else
	pass "200 KB rule header: refused with a FILE:LINE error"
fi

missing=$tmp/does-not-exist.conf
run -t -c "$missing"
if ((status != 1)); then
	fail "missing config file: exit status $status, wanted 1 ($(stderr_excerpt))"
elif ! grep -q -F -- "$missing" "$tmp/err"; then
	fail "missing config file: stderr does not name $missing ($(stderr_excerpt))"
else
	pass "missing config file: refused with status 1, naming the file"
fi

# -q: what systemctl reload runs before it signals the bridge.
run -t -q -c "$sample"
if ((status != 0)) || [[ -s $tmp/out ]]; then
	fail "-t -q on the sample: status $status, $(wc -c <"$tmp/out") bytes on stdout, wanted 0 and none"
else
	pass "-t -q on the sample: status 0, nothing printed"
fi
run -t -q -c "$conf_dir/bad-port-range.conf"
if ((status != 1)) || ! has_error_line "$conf_dir/bad-port-range.conf"; then
	fail "-t -q on bad-port-range.conf: status $status, wanted 1 with the error ($(stderr_excerpt))"
else
	pass "-t -q on bad-port-range.conf: refused with status 1 and the error"
fi
run -q -c "$sample"
if ((status != 2)); then
	fail "-q without -t: exit status $status, wanted 2 (usage error)"
else
	pass "-q without -t: refused with status 2"
fi

# With stderr on the journal (JOURNAL_STREAM names its device and inode,
# as systemd sets it), each error line carries priority 3 and each warning
# 4, so that journalctl -p err shows why a start or a reload failed; with
# JOURNAL_STREAM naming another file, the lines stay plain.
journal_run() {
	local stream=$1
	shift
	: >"$tmp/err"
	status=0
	JOURNAL_STREAM=$(stat -L -c '%d:%i' "$stream") timeout 30 "$BRIDGE_BIN" "$@" \
		</dev/null >"$tmp/out" 2>>"$tmp/err" || status=$?
}
journal_run "$tmp/err" -t -c "$conf_dir/bad-port-range.conf"
if ((status != 1)) || grep -q -v '^<3>' "$tmp/err" ||
	! grep -q "^<3>$conf_dir/bad-port-range.conf:[0-9]*: " "$tmp/err"; then
	fail "errors to the journal: not every line starts <3> ($(stderr_excerpt))"
else
	pass "errors to the journal: every line at priority 3 (err)"
fi
# An error quoting a value with a newline in it: journald makes an entry
# of each line, so the line after the newline needs the prefix too.
nl=$tmp/newline.conf
printf '%s\n' 'mqtt = { host = "127.0.0.1"; };' 'amqp = { host = "127.0.0.1"; };' \
	'rules = ( { match = "fleet/#/x\nbad"; } );' >"$nl"
journal_run "$tmp/err" -t -c "$nl"
if ((status != 1)) || grep -q -v '^<3>' "$tmp/err" || (($(grep -c '' "$tmp/err") < 3)); then
	fail "an error with a newline to the journal: not every line starts <3> ($(stderr_excerpt))"
else
	pass "an error with a newline to the journal: each of its lines at priority 3"
fi
journal_run "$tmp/err" -t -q -c "$shadow"
if ((status != 0)) || ! grep -q '^<4>warning: ' "$tmp/err" || grep -q -v '^<4>' "$tmp/err"; then
	fail "warnings to the journal: not every line starts <4> ($(stderr_excerpt))"
else
	pass "warnings to the journal: every line at priority 4 (warning)"
fi
journal_run "$tmp/out" -t -c "$conf_dir/bad-port-range.conf"
if grep -q '^<' "$tmp/err"; then
	fail "JOURNAL_STREAM naming another file: prefixes written ($(stderr_excerpt))"
else
	pass "JOURNAL_STREAM naming another file: plain lines"
fi

# Credentials: a check (-t) that cannot see them, run by hand without
# $CREDENTIALS_DIRECTORY or by ExecReload= (systemd 252 hides them from
# it), warns that they were not checked; a start needs them; a check that
# sees the directory reads them, so a wrong name is still an error.
cred=$tmp/cred.conf
cat >"$cred" <<EOF
mqtt = {
	host = "127.0.0.1";
	subscribe = [ "a/#" ];
	username = "bridge";
	password_credential = "mqtt-password";
	tls = true;
	tls_cert_file = "$sample";
	tls_key_file = "/run/credentials/t07-none.service/client.key";
};
amqp = { host = "127.0.0.1"; };
EOF
run -t -q -c "$cred"
if ((status != 0)) || ! grep -q -F "warning: $cred:5: 'mqtt.password_credential' not checked: \$CREDENTIALS_DIRECTORY is not set" "$tmp/err" ||
	! grep -q -F "warning: $cred:8: 'mqtt.tls_key_file' not checked: /run/credentials/t07-none.service/client.key cannot be seen here" "$tmp/err"; then
	fail "unseen credentials in -t: status $status, wanted 0 with two warnings ($(stderr_excerpt))"
else
	pass "unseen credentials in -t: status 0, each named in a warning"
fi
status=0
timeout 30 "$BRIDGE_BIN" -c "$cred" </dev/null >"$tmp/out" 2>"$tmp/err" || status=$?
if ((status != 1)) || ! grep -q -F "$cred:5: 'mqtt.password_credential' needs \$CREDENTIALS_DIRECTORY" "$tmp/err"; then
	fail "unseen credentials at start: status $status, wanted 1 with the error ($(stderr_excerpt))"
else
	pass "unseen credentials at start: refused with status 1"
fi
mkdir -p "$tmp/creds"
status=0
CREDENTIALS_DIRECTORY=$tmp/creds timeout 30 "$BRIDGE_BIN" -t -q -c "$cred" </dev/null >"$tmp/out" 2>"$tmp/err" || status=$?
if ((status != 1)) || ! grep -q -F "$cred:5: 'mqtt.password_credential' cannot be read ($tmp/creds/mqtt-password)" "$tmp/err"; then
	fail "a credential missing from a visible directory: status $status, wanted 1 ($(stderr_excerpt))"
else
	pass "a credential missing from a visible directory: refused by -t with status 1"
fi

run --nope -t -c "$sample"
if ((status != 2)); then
	fail "unknown option --nope: exit status $status, wanted 2 (usage error)"
else
	pass "unknown option --nope: refused with status 2"
fi

finish
