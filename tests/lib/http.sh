# shellcheck shell=bash
# Variables set here are read by the scripts that source this file.
# shellcheck disable=SC2034
#
# http.sh: the bridge's HTTP endpoint (bridge.http_listen: /metrics,
# /healthz, /readyz) in the integration tests.  Source it after brokers.sh,
# whose helpers it uses (free_port, fail, mab_log).  Every request goes to
# 127.0.0.1, bypasses any proxy from the environment and is bounded in time.

# http_setup: picks a free port for the endpoint (HTTP_PORT, HTTP_URL) and
# has bridge_conf serve it there (BR_HTTP, MAB_HTTP_PORT: brokers.sh).
http_setup() {
	MAB_HTTP_PORT=$(free_port) || fail "no free port for http_listen"
	BR_HTTP=1
	HTTP_PORT=$MAB_HTTP_PORT
	HTTP_URL=http://127.0.0.1:$HTTP_PORT
}

# http_require CONF: checks CONF with `-t`.  A build without libmicrohttpd
# refuses http_listen: the test is then skipped (77).  Any other refusal
# fails the test.
http_require() {
	local out
	out=$("$BRIDGE_BIN" -t -c "$1" 2>&1) && return 0
	if grep -qi 'microhttpd' <<<"$out"; then
		echo "$MAB_TEST_NAME: the bridge was built without libmicrohttpd: $out" >&2
		exit 77
	fi
	fail "mqtt-amqp-bridge -t refused the configuration: $out"
}

# http_request METHOD PATH [CURL ARGS]...: one request to the bridge (at most
# HTTP_TIMEOUT seconds, default 5).  Sets HTTP_CODE (000 when there was no
# answer), HTTP_BODY (empty for HEAD: curl reads no body then, see
# http_raw) and HTTP_HEADERS_FILE (the response's header lines).
http_request() {
	local method=$1 path=$2 args
	shift 2
	args=(-s --noproxy '*' --max-time "${HTTP_TIMEOUT:-5}"
		-o "$MAB_TMP/http.body" -D "$MAB_TMP/http.headers" -w '%{http_code}')
	case $method in
	GET) ;;
	HEAD) args+=(--head) ;;
	*) args+=(-X "$method") ;;
	esac
	: >"$MAB_TMP/http.body"
	: >"$MAB_TMP/http.headers"
	HTTP_CODE=$(curl "${args[@]}" "$@" "$HTTP_URL$path" 2>/dev/null) || true
	[[ $HTTP_CODE =~ ^[0-9]{3}$ ]] || HTTP_CODE=000
	HTTP_BODY=$(cat "$MAB_TMP/http.body")
	# With --head, curl writes the headers where the body would go.
	[[ $method == HEAD ]] && HTTP_BODY=
	HTTP_HEADERS_FILE=$MAB_TMP/http.headers
}

# http_raw REQUEST: sends REQUEST (with \r, \n and \xHH expanded) on a fresh
# connection and prints everything the server sends until it closes (5 s at
# most); for what curl does not show, such as bytes after a HEAD answer.
http_raw() {
	python3 -c '
import socket, sys, time
s = socket.create_connection(("127.0.0.1", int(sys.argv[1])), timeout=5)
s.sendall(sys.argv[2].encode("latin-1").decode("unicode_escape").encode("latin-1"))
end = time.monotonic() + 5
data = b""
while time.monotonic() < end:
    try:
        chunk = s.recv(65536)
    except socket.timeout:
        break
    if not chunk:
        break
    data += chunk
sys.stdout.buffer.write(data)
' "$HTTP_PORT" "$1"
}

# http_header NAME: the value of response header NAME (case-insensitive) of
# the last http_request; empty if absent.
http_header() {
	tr -d '\r' <"$HTTP_HEADERS_FILE" |
		awk -v n="$1" 'BEGIN { n = tolower(n) }
			{ i = index($0, ":") }
			i > 0 && tolower(substr($0, 1, i - 1)) == n { v = substr($0, i + 1); sub(/^[ \t]+/, "", v); print v; exit }'
}

# http_code PATH: prints the status of GET PATH (000: no answer).
http_code() {
	http_request GET "$1"
	echo "$HTTP_CODE"
}

# http_expect METHOD PATH CODE: fails the test unless METHOD PATH answers CODE.
http_expect() {
	http_request "$1" "$2"
	[[ $HTTP_CODE == "$3" ]] || fail "$1 $2 answered $HTTP_CODE, expected $3: ${HTTP_BODY:0:300}"
}

# http_wait_code SECONDS PATH CODE [ERE]: polls GET PATH every 0.1 s until it
# answers CODE (and, if given, a body matching ERE); false after SECONDS.
# HTTP_WAIT_MS says how long it took, HTTP_CODE and HTTP_BODY are the last
# answer's.
http_wait_code() {
	local limit_ms=$(($1 * 1000)) path=$2 code=$3 re=${4:-} t0
	t0=$(mab_now_ms)
	for (( ; ; )); do
		http_request GET "$path"
		HTTP_WAIT_MS=$(($(mab_now_ms) - t0))
		if [[ $HTTP_CODE == "$code" ]] && { [[ -z $re ]] || grep -Eq -- "$re" <<<"$HTTP_BODY"; }; then
			return 0
		fi
		((HTTP_WAIT_MS >= limit_ms)) && return 1
		sleep 0.1
	done
}

# http_scrape FILE: GET /metrics into FILE; fails the test unless it
# answers 200.
http_scrape() {
	http_request GET /metrics
	[[ $HTTP_CODE == 200 ]] || fail "GET /metrics answered $HTTP_CODE: ${HTTP_BODY:0:300}"
	cp "$MAB_TMP/http.body" "$1"
}
