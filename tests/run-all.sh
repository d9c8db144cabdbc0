#!/usr/bin/env bash
# run-all.sh: every test, on a fresh Debian 12 machine.
#
# Installs the packages it needs, builds with warnings as errors, runs the
# unit tests, runs them again under AddressSanitizer and
# UndefinedBehaviorSanitizer, checks `make distcheck`, builds the Debian
# package and lints it, boots a real systemd in a container to run the
# package's units, then runs the integration tests against real brokers
# that the harness starts on 127.0.0.1, first with the plain build and then
# with the sanitizer build.
#
# Environment: JOBS (make -j, default 2), SKIP_DISTCHECK=1, SKIP_ASAN=1.
set -euo pipefail

root=$(cd "$(dirname "$0")/.." && pwd)
jobs=${JOBS:-2}
cd "$root"

step() { printf '\n===== %s: %s\n' "$(date +%T)" "$*"; }

step "dependencies"
tests/lib/deps.sh

step "autoreconf"
autoreconf -fi

step "build (warnings are errors)"
mkdir -p build
(cd build && ../configure --enable-werror >/dev/null && make -j"$jobs")

step "unit tests"
(cd build && make -j"$jobs" check) || { cat build/tests/unit/*.log >&2; exit 1; }

if [[ ${SKIP_ASAN:-0} != 1 ]]; then
	step "unit tests under AddressSanitizer and UndefinedBehaviorSanitizer"
	san="-fsanitize=address,undefined -fno-sanitize-recover=all -fno-omit-frame-pointer"
	mkdir -p build-asan
	(cd build-asan &&
		../configure --enable-werror CFLAGS="-O1 -g $san" LDFLAGS="$san" >/dev/null &&
		make -j"$jobs" &&
		make -j"$jobs" check) || { cat build-asan/tests/unit/*.log >&2; exit 1; }
fi

if [[ ${SKIP_DISTCHECK:-0} != 1 ]]; then
	step "make distcheck"
	(cd build && make -j"$jobs" distcheck >distcheck.log 2>&1) ||
		{ tail -n 60 build/distcheck.log >&2; exit 1; }
	echo "distcheck passed"
fi

step "man pages render without warnings"
for page in man/mqtt-amqp-bridge.8 man/mqtt-amqp-bridge.conf.5; do
	# mandoc exits non-zero on a warning: what it says is shown, not lost to set -e.
	out=$(groff -ww -z -mandoc "$page" 2>&1; mandoc -Tlint -Wwarning "$page" 2>&1) || true
	[[ -z $out ]] || { printf '%s\n' "$out" >&2; exit 1; }
	echo "$page: clean"
done

step "install into a scratch prefix (built without libmicrohttpd); systemd-analyze verify the units"
prefix=$(mktemp -d)
mkdir -p build-install
(cd build-install &&
	../configure --prefix="$prefix" --with-systemdsystemunitdir="$prefix/lib/systemd/system" \
		--without-microhttpd >/dev/null &&
	make -j"$jobs" install >/dev/null)
# A build without the HTTP endpoint refuses bridge.http_listen, saying why.
printf '%s\n' 'mqtt = { host = "127.0.0.1"; subscribe = [ "a/#" ]; };' \
	'amqp = { host = "127.0.0.1"; };' 'bridge = { http_listen = "127.0.0.1:9464"; };' \
	>"$prefix/http.conf"
if "$prefix/sbin/mqtt-amqp-bridge" -t -c "$prefix/http.conf" >"$prefix/http.out" 2>&1 ||
	! grep -q "http.conf:3: 'bridge.http_listen' is set, but this build has no HTTP support" \
		"$prefix/http.out"; then
	cat "$prefix/http.out" >&2
	echo "a build without libmicrohttpd did not refuse bridge.http_listen" >&2
	exit 1
fi
echo "a build without libmicrohttpd refuses bridge.http_listen"

(cd "$prefix/lib/systemd/system" &&
	cp mqtt-amqp-bridge@.service mqtt-amqp-bridge@example.service &&
	MANPATH="$prefix/share/man:" systemd-analyze verify ./mqtt-amqp-bridge.service ./mqtt-amqp-bridge@example.service)
systemd-analyze security --offline=yes "$prefix/lib/systemd/system/mqtt-amqp-bridge.service" 2>/dev/null |
	grep -i 'overall exposure' || true
rm -rf "$prefix"
echo "units verified"

step "Debian package (dpkg-buildpackage -b, lintian)"
tests/package/build-deb.sh "$root/build-deb" | tee "$root/build-deb.log"
deb=$(tail -n 1 "$root/build-deb.log")

step "the package under a real systemd (systemd-nspawn, Debian 12)"
BUILD_DIR="$root/build" tests/systemd/run.sh "$deb"

step "integration tests (real mosquitto and rabbitmq-server)"
BUILD_DIR="$root/build" tests/integration/run.sh

if [[ ${SKIP_ASAN:-0} != 1 ]]; then
	step "integration tests with the sanitizer build"
	ASAN_OPTIONS=detect_leaks=1:abort_on_error=0 \
		BUILD_DIR="$root/build-asan" tests/integration/run.sh
fi

step "all tests passed"
