# shellcheck shell=bash
# Variables set here are read by run.sh.
# shellcheck disable=SC2034
#
# rootfs.sh: the Debian 12 root file system tests/systemd/run.sh boots, made
# once with mmdebstrap and cached.  Sourced by run.sh.
#
# The cache key is a hash of the package list, the apt sources and
# ROOTFS_VERSION, so that changing any of them makes a new tree instead of
# silently booting a stale one.  Building takes about a minute and 320 MB;
# everything the bridge's package and the test need is in it, so that the
# test itself never downloads anything (the container has no network).
#
# Environment:
#   MAB_NSPAWN_CACHE   where trees are kept
#                      (default /var/cache/mqtt-amqp-bridge-tests)
#   MAB_NSPAWN_ROOTFS  a ready tree to use as is (no build, no cache)

# Bump when the way the tree is made changes.
ROOTFS_VERSION=1

# What is installed: the init system, both brokers, the bridge's run-time
# libraries (so that `apt-get install --no-download ./x.deb` finds every
# dependency already there) and the tools the checks run inside.
ROOTFS_PACKAGES=(
	systemd systemd-sysv dbus init-system-helpers
	mosquitto mosquitto-clients rabbitmq-server amqp-tools
	libmosquitto1 librabbitmq4 libconfig9 libmicrohttpd12 libsystemd0
	libssl3 openssl ca-certificates
	curl iproute2 procps
)

MAB_NSPAWN_CACHE=${MAB_NSPAWN_CACHE:-/var/cache/mqtt-amqp-bridge-tests}

# rootfs__sources: the host's Debian apt sources, for mmdebstrap to read on
# stdin: the root fs gets the same mirrors, suites and snapshot as the
# host.  mmdebstrap reads one format from stdin, so: the deb822 stanzas of
# the *.sources files if there are any, else the one-line entries; and only
# Debian's (a third-party repository of the host's would need its key and
# be reachable, and has nothing the test wants).
rootfs__sources() {
	local f found=()
	for f in /etc/apt/sources.list.d/*.sources; do
		[[ -f $f ]] && found+=("$f")
	done
	if ((${#found[@]} > 0)); then
		# A blank line after each file keeps stanzas of two files apart.
		for f in "${found[@]}"; do
			cat "$f"
			echo
		done | awk 'BEGIN { RS = ""; ORS = "\n\n" } /(^|\n)URIs:[^\n]*debian/'
		return
	fi
	for f in /etc/apt/sources.list /etc/apt/sources.list.d/*.list; do
		[[ -f $f ]] && grep -E '^[[:space:]]*deb[[:space:]].*debian' "$f"
	done
}

# rootfs__key: the cache key (16 hex digits).
rootfs__key() {
	{
		echo "version $ROOTFS_VERSION"
		printf '%s\n' "${ROOTFS_PACKAGES[@]}" | sort
		rootfs__sources
	} | sha256sum | cut -c1-16
}

# rootfs__abandon: removes a build that did not finish (the run was
# interrupted while mmdebstrap ran).
rootfs__abandon() {
	[[ -n ${ROOTFS_TMP:-} && -d $ROOTFS_TMP ]] || return 0
	rm -rf "$ROOTFS_TMP"
}

# rootfs_get: sets ROOTFS to a ready tree, building it if the cache has
# none.  The tree is built under a temporary name and renamed into place,
# so that an interrupted build is never taken for a finished one.
rootfs_get() {
	if [[ -n ${MAB_NSPAWN_ROOTFS:-} ]]; then
		ROOTFS=$MAB_NSPAWN_ROOTFS
		[[ -x $ROOTFS/lib/systemd/systemd ]] || {
			echo "rootfs: $ROOTFS has no systemd" >&2
			return 1
		}
		return 0
	fi
	local key tmp t0=$SECONDS
	key=$(rootfs__key) || return 1
	ROOTFS=$MAB_NSPAWN_CACHE/rootfs-$key
	if [[ -f $ROOTFS/.mab-rootfs-done ]]; then
		mab_log "root fs $ROOTFS (cached)"
		ROOTFS_BUILD_S=0
		return 0
	fi
	mkdir -p "$MAB_NSPAWN_CACHE" || return 1
	tmp=$MAB_NSPAWN_CACHE/.build-$key.$$
	rm -rf "$tmp"
	mab_log "building the root fs in $tmp (mmdebstrap, about a minute)"
	ROOTFS_TMP=$tmp
	mab_on_exit rootfs__abandon
	# --variant=apt: only what apt needs, plus the list above.  The apt
	# lists are kept (mmdebstrap removes them by default): apt-get install
	# ./x.deb needs them to resolve the package's dependencies even when
	# nothing is downloaded.  The services the rootfs brings are not
	# started at build time (mmdebstrap runs no init), and the mosquitto
	# and RabbitMQ configuration is the test's, written at each boot.
	# shellcheck disable=SC2016  # $1 is expanded by mmdebstrap's hook shell
	if ! rootfs__sources | timeout -k 10 300 mmdebstrap --variant=apt \
		--include="$(IFS=,; echo "${ROOTFS_PACKAGES[*]}")" \
		--skip=cleanup/apt/lists \
		--customize-hook='echo mab-nspawn >"$1/etc/hostname"' \
		--customize-hook='rm -f "$1/etc/machine-id"; : >"$1/etc/machine-id"' \
		bookworm "$tmp" - >"$MAB_NSPAWN_CACHE/.build-$key.log" 2>&1; then
		echo "rootfs: mmdebstrap failed; the end of its log:" >&2
		tail -n 30 "$MAB_NSPAWN_CACHE/.build-$key.log" >&2
		rm -rf "$tmp"
		return 1
	fi
	touch "$tmp/.mab-rootfs-done"
	rm -rf "$ROOTFS"
	mv "$tmp" "$ROOTFS" || return 1
	ROOTFS_TMP=
	ROOTFS_BUILD_S=$((SECONDS - t0))
	mab_log "root fs $ROOTFS built in ${ROOTFS_BUILD_S} s ($(du -sh "$ROOTFS" | cut -f1))"
}
