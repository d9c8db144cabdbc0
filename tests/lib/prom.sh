# shellcheck shell=bash
# Variables set here are read by the scripts that source this file.
# shellcheck disable=SC2034
#
# prom.sh: a private Prometheus server that scrapes the bridge's
# bridge.http_listen, and helpers to query it and to read a scrape of
# /metrics.  Source it after brokers.sh, whose helpers it uses (free_port,
# mab_on_exit, mab_kill_pid, wait_until, fail).
#
# The server listens on 127.0.0.1 only, on a free port, keeps its TSDB in
# the test's work directory and is stopped by its PID from the cleanup trap.
#
# Environment:
#   MAB_PROMETHEUS   the prometheus binary (default: from PATH, else /usr/bin)
#   MAB_PROMTOOL     promtool (default: from PATH, else /usr/bin)
#   PROM_START_TIMEOUT  seconds to wait for /-/ready (default 60)

if [[ -z ${MAB_PROMETHEUS:-} ]]; then
	MAB_PROMETHEUS=$(command -v prometheus || echo /usr/bin/prometheus)
fi
if [[ -z ${MAB_PROMTOOL:-} ]]; then
	MAB_PROMTOOL=$(command -v promtool || echo /usr/bin/promtool)
fi

# The repository's alerting rules, when there are any.
PROM_ALERTS=$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)/contrib/prometheus/alerts.yml

# prom_require: exits the test as skipped (77) unless prometheus, promtool,
# curl and python3 are installed (tests/lib/deps.sh installs them).
prom_require() {
	local f
	for f in "$MAB_PROMETHEUS" "$MAB_PROMTOOL"; do
		[[ -x $f ]] || { echo "${MAB_TEST_NAME:-prom}: $f is missing (tests/lib/deps.sh)" >&2; exit 77; }
	done
	for f in curl python3; do
		command -v "$f" >/dev/null ||
			{ echo "${MAB_TEST_NAME:-prom}: $f is missing (tests/lib/deps.sh)" >&2; exit 77; }
	done
}

# prom_start TARGET: starts Prometheus scraping TARGET (host:port, the
# bridge's http_listen) every second as job "mqtt-amqp-bridge", with the
# repository's alerting rules if contrib/prometheus/alerts.yml exists.
# Waits (PROM_START_TIMEOUT) until /-/ready answers.  Sets PROM_PORT,
# PROM_URL, PROM_PID, PROM_DIR, PROM_LOG; registers its stop with the
# cleanup trap.
prom_start() {
	local target=$1 try rules
	mab_tmp || return 1
	for try in 1 2 3; do
		PROM_DIR=$MAB_TMP/prometheus
		rm -rf "$PROM_DIR"
		mkdir -p "$PROM_DIR/data" || return 1
		PROM_LOG=$PROM_DIR/prometheus.log
		PROM_PORT=$(free_port) || return 1
		PROM_URL=http://127.0.0.1:$PROM_PORT
		{
			echo "global:"
			echo "  scrape_interval: 1s"
			echo "  scrape_timeout: 1s"
			echo "  evaluation_interval: 1s"
			if [[ -f $PROM_ALERTS ]]; then
				echo "rule_files:"
				echo "  - \"$PROM_ALERTS\""
			fi
			echo "scrape_configs:"
			echo "  - job_name: mqtt-amqp-bridge"
			echo "    scrape_interval: 1s"
			echo "    scrape_timeout: 1s"
			echo "    static_configs:"
			echo "      - targets: [\"$target\"]"
		} >"$PROM_DIR/prometheus.yml"
		(
			cd "$PROM_DIR" || exit 1
			exec "$MAB_PROMETHEUS" \
				--config.file="$PROM_DIR/prometheus.yml" \
				--storage.tsdb.path="$PROM_DIR/data" \
				--storage.tsdb.retention.time=1h \
				--web.listen-address="127.0.0.1:$PROM_PORT" \
				--log.level=info </dev/null
		) >>"$PROM_LOG" 2>&1 &
		PROM_PID=$!
		mab_on_exit "mab_kill_pid $PROM_PID 10"
		if prom__wait_ready "${PROM_START_TIMEOUT:-60}"; then
			rules=none
			[[ -f $PROM_ALERTS ]] && rules=$PROM_ALERTS
			mab_log "Prometheus up on $PROM_URL (pid $PROM_PID), scraping $target every 1 s, rules: $rules"
			MAB_FAIL_LOGS+=("$PROM_LOG")
			return 0
		fi
		mab_log "Prometheus did not start (attempt $try)"
		tail -n 20 "$PROM_LOG" >&2
		mab_kill_pid "$PROM_PID" 10
	done
	return 1
}

# prom__wait_ready SECONDS: waits until /-/ready answers 200; false if the
# server exits or SECONDS pass first.
prom__wait_ready() {
	local deadline=$((SECONDS + $1))
	until curl -sf --noproxy '*' --max-time 2 -o /dev/null "$PROM_URL/-/ready"; do
		mab_alive "$PROM_PID" || return 1
		((SECONDS >= deadline)) && return 1
		sleep 0.2
	done
}

# prom_query EXPR: evaluates EXPR now with the query API and prints its
# value: a scalar's, or the value of the one sample of an instant vector.
# False (printing nothing) when the query fails or the vector does not
# hold exactly one sample.
prom_query() {
	local json
	json=$(curl -sf --noproxy '*' --max-time 5 "$PROM_URL/api/v1/query" \
		--data-urlencode "query=$1") || return 1
	python3 -c '
import json, sys
d = json.loads(sys.argv[1])
if d.get("status") != "success":
    sys.exit(1)
r = d["data"]
if r["resultType"] in ("scalar", "string"):
    print(r["result"][1])
elif r["resultType"] == "vector" and len(r["result"]) == 1:
    print(r["result"][0]["value"][1])
else:
    sys.exit(1)
' "$json"
}

# prom_wait_value SECONDS EXPR VALUE: polls prom_query EXPR (every 0.5 s)
# until it prints VALUE (compared as numbers); false after SECONDS, with the
# last value in PROM_LAST.
prom_wait_value() {
	local deadline=$((SECONDS + $1)) expr=$2 want=$3
	PROM_LAST=
	for (( ; ; )); do
		PROM_LAST=$(prom_query "$expr") || PROM_LAST=
		if [[ -n $PROM_LAST ]] &&
			python3 -c 'import sys; sys.exit(float(sys.argv[1]) != float(sys.argv[2]))' \
				"$PROM_LAST" "$want"; then
			return 0
		fi
		((SECONDS >= deadline)) && return 1
		sleep 0.5
	done
}

# metric_value FILE NAME [LABEL=VALUE]...: the sum of the samples of NAME in
# FILE (Prometheus text format, e.g. a curl of /metrics) whose labels
# include every LABEL=VALUE given.  False, printing nothing, when no sample
# matches.  Prints integers without a decimal point.
metric_value() {
	python3 - "$@" <<-'EOF'
		import re, sys
		path, name, want = sys.argv[1], sys.argv[2], sys.argv[3:]
		want = dict(w.split("=", 1) for w in want)
		line_re = re.compile(r'^([a-zA-Z_:][a-zA-Z0-9_:]*)(\{(.*)\})?\s+(\S+)(\s+\S+)?$')
		label_re = re.compile(r'\s*([a-zA-Z_][a-zA-Z0-9_]*)="((?:[^"\\]|\\.)*)"\s*,?')
		total, found = 0.0, False
		with open(path, encoding="utf-8") as f:
		    for line in f:
		        line = line.rstrip("\n")
		        if not line or line.startswith("#"):
		            continue
		        m = line_re.match(line)
		        if not m or m.group(1) != name:
		            continue
		        labels = {}
		        body = m.group(3) or ""
		        pos = 0
		        while pos < len(body):
		            lm = label_re.match(body, pos)
		            if not lm:
		                sys.exit("metric_value: cannot parse labels in: " + line)
		            labels[lm.group(1)] = re.sub(r'\\(.)', lambda x: {"n": "\n"}.get(x.group(1), x.group(1)), lm.group(2))
		            pos = lm.end()
		        if all(labels.get(k) == v for k, v in want.items()):
		            total += float(m.group(4))
		            found = True
		if not found:
		    sys.exit(1)
		print(int(total) if total == int(total) else repr(total))
	EOF
}
