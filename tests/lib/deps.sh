#!/usr/bin/env bash
# deps.sh: installs the Debian 12 packages needed to build, test, demo and
# benchmark the bridge, when any is missing.  Uses sudo when not run as
# root.  (bench/run.sh counts the bridge's system calls with strace;
# BENCH_PROFILE=1 also wants perf, from linux-perf, which is left to those
# who ask for it: it must match the running kernel.  The metrics tests run
# a real Prometheus against bridge.http_listen, and read it and the
# bridge's endpoints with curl and python3.  tests/systemd/run.sh boots a
# Debian 12 root file system made with mmdebstrap under systemd-nspawn;
# tests/package/build-deb.sh installs the packaging tools itself.)
set -euo pipefail

packages=(
	gcc make autoconf automake pkg-config
	libmosquitto-dev librabbitmq-dev libconfig-dev check libssl-dev libsystemd-dev libmicrohttpd-dev
	mosquitto mosquitto-clients rabbitmq-server amqp-tools openssl
	groff-base mandoc systemd
	strace curl
	prometheus python3
	systemd-container mmdebstrap
)

missing=()
for p in "${packages[@]}"; do
	if ! dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q 'install ok installed'; then
		missing+=("$p")
	fi
done
if ((${#missing[@]} == 0)); then
	exit 0
fi

sudo=()
if ((EUID != 0)); then
	sudo=(sudo)
fi
echo "deps: installing ${missing[*]}" >&2
"${sudo[@]}" apt-get update -qq
DEBIAN_FRONTEND=noninteractive "${sudo[@]}" apt-get install -y -qq --no-install-recommends \
	"${missing[@]}" >&2
