# shellcheck shell=bash
# Variables set here are read by run.sh.
# shellcheck disable=SC2034
#
# container.sh: boot the cached Debian 12 root file system (rootfs.sh) with
# systemd as PID 1 under systemd-nspawn, run commands in it, and power it
# off.  Sourced by tests/systemd/run.sh after tests/lib/brokers.sh, whose
# helpers it uses (mab_log, mab_on_exit, mab_alive, mab_wait_gone, ...).
#
# The host this is written for has no systemd of its own (PID 1 is something
# else) and hybrid cgroups (v1 controllers, plus /sys/fs/cgroup/unified and
# the named /sys/fs/cgroup/systemd hierarchy).  What it takes there:
#  - nspawn is started from a shell that moved itself into cgroups of its
#    own under both unified and systemd: nspawn (--keep-unit, no machined
#    to ask) sets the container up below the cgroup it runs in, and the
#    root of those hierarchies is not its to use;
#  - SYSTEMD_NSPAWN_UNIFIED_HIERARCHY=1: the container's systemd gets a
#    cgroup v2 tree, which it needs for IPAddressDeny= and DevicePolicy=
#    (BPF programs are attached to v2 cgroups);
#  - SYSTEMD_SECCOMP=0 and --capability=CAP_BPF: otherwise nspawn's seccomp
#    filter and capability set refuse bpf(2), and the container's systemd
#    then silently drops IPAddressDeny= and the device policy of the units
#    it runs, so the bridge's real sandbox would not be the one tested;
#  - with no machined, commands are run inside with nsenter on the
#    container's PID 1 (the child of the nspawn process), not machinectl.
#
# Every process is stopped by its PID (nspawn's, the container's PID 1),
# and the cgroups made here are removed at exit.

# The container's PID 1 as seen from the host, and nspawn's PID.
CPID=
NSPAWN_PID=

# cx COMMAND...: runs COMMAND inside the container as root with a clean
# environment, bounded by CX_TIMEOUT seconds (default 120) inside and a
# little more outside (in case nsenter itself hangs).
cx() {
	local t=${CX_TIMEOUT:-120}
	timeout -k 5 $((t + 15)) nsenter -t "$CPID" -a \
		env -i PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin \
		LANG=C.UTF-8 TERM=dumb SYSTEMD_PAGER= SYSTEMD_COLORS=0 DEBIAN_FRONTEND=noninteractive \
		timeout -k 5 "$t" "$@"
}

# container__prepare DIR: makes DIR/root, a writable copy of $ROOTFS for
# this run: an overlay on top of the cached tree when the kernel allows it
# (instant, and the cache is never written to), else a full copy (about
# 1 s for the 370 MB tree).  Sets ROOT and PREP_MS.
container__prepare() {
	local dir=$1 t0
	t0=$(mab_now_ms)
	ROOT=$dir/root
	mkdir -p "$ROOT" "$dir/upper" "$dir/work" || return 1
	if mount -t overlay overlay \
		-o "lowerdir=$ROOTFS,upperdir=$dir/upper,workdir=$dir/work" "$ROOT" 2>"$dir/overlay.err"; then
		mab_on_exit "container__unmount '$ROOT'"
		ROOT_HOW=overlay
	else
		mab_log "overlay mount refused ($(cat "$dir/overlay.err")); copying the tree"
		rmdir "$ROOT" && cp -a "$ROOTFS" "$ROOT" || return 1
		ROOT_HOW=copy
	fi
	PREP_MS=$(($(mab_now_ms) - t0))
}

container__unmount() {
	local i
	for i in 1 2 3 4 5; do
		mountpoint -q "$1" || return 0
		umount "$1" 2>/dev/null && return 0
		sleep 1
	done
	mab_log "cannot unmount $1"
	return 1
}

# container__cgroups: the cgroups nspawn is started in, one under each of
# the two systemd-related hierarchies.  Sets CG_DIRS.
container__cgroups() {
	local h d
	CG_DIRS=()
	for h in unified systemd; do
		d=/sys/fs/cgroup/$h/mab-nspawn-$$
		[[ -d /sys/fs/cgroup/$h ]] || {
			echo "no /sys/fs/cgroup/$h: this test is written for a host without systemd, with" \
				"hybrid cgroups (v1 controllers, unified and systemd hierarchies);" \
				"this one has $(stat -fc %T /sys/fs/cgroup 2>/dev/null || echo 'no cgroup file system')" >&2
			return 1
		}
		mkdir -p "$d" || return 1
		CG_DIRS+=("$d")
	done
	mab_on_exit container__cgroups_remove
}

# container__cgroups_remove: removes the cgroups, deepest first (nspawn and
# the container's systemd made payload/, supervisor/, init.scope, ...).
# Anything still in them is ours (started by nspawn here): it gets SIGKILL.
container__cgroups_remove() {
	local d pids try
	for d in "${CG_DIRS[@]}"; do
		[[ -d $d ]] || continue
		for try in 1 2 3 4 5; do
			pids=$(find "$d" -name cgroup.procs -exec cat {} + 2>/dev/null | sort -u)
			[[ -z $pids ]] && break
			# shellcheck disable=SC2086  # one PID a word
			kill -KILL $pids 2>/dev/null || true
			sleep 1
		done
		find "$d" -depth -type d -exec rmdir {} + 2>/dev/null || true
		[[ -d $d ]] && mab_log "cannot remove cgroup $d"
	done
	return 0
}

# container_boot: boots $ROOT and waits (bounded by BOOT_TIMEOUT, default
# 120 s) until `systemctl is-system-running --wait` answers.  "degraded" is
# accepted, with the failed units shown.  Sets CPID, NSPAWN_PID, BOOT_MS.
container_boot() {
	local t0 deadline p state
	container__cgroups || return 1
	t0=$(mab_now_ms)
	(
		for d in "${CG_DIRS[@]}"; do
			echo "$BASHPID" >"$d/cgroup.procs" || exit 1
		done
		export SYSTEMD_NSPAWN_UNIFIED_HIERARCHY=1 SYSTEMD_SECCOMP=0
		exec systemd-nspawn -q -D "$ROOT" --private-network --register=no --keep-unit \
			--console=pipe --capability=CAP_BPF -b
	) >"$MAB_TMP/console.log" 2>&1 </dev/null &
	NSPAWN_PID=$!
	mab_on_exit container_poweroff
	# nspawn forks an intermediate child before the container's init; the
	# one to enter is the child running systemd.
	deadline=$((SECONDS + 30))
	while :; do
		mab_alive "$NSPAWN_PID" || { echo "systemd-nspawn exited:" >&2; tail -n 20 "$MAB_TMP/console.log" >&2; return 1; }
		for p in $(pgrep -P "$NSPAWN_PID" || true); do
			[[ $(cat "/proc/$p/comm" 2>/dev/null) == systemd ]] && CPID=$p
		done
		[[ -n $CPID ]] && break
		((SECONDS >= deadline)) && { echo "no systemd under nspawn (pid $NSPAWN_PID) in 30 s" >&2; return 1; }
		sleep 0.1
	done
	# The container's systemd needs a moment before its private bus
	# answers; is-system-running --wait then blocks until start-up ends.
	deadline=$((SECONDS + ${BOOT_TIMEOUT:-120}))
	until state=$(CX_TIMEOUT=$((deadline - SECONDS > 5 ? deadline - SECONDS : 5)) \
		cx systemctl is-system-running --wait 2>/dev/null); [[ $state == running || $state == degraded ]]; do
		((SECONDS >= deadline)) && { echo "boot did not finish in ${BOOT_TIMEOUT:-120} s (state '$state')" >&2; return 1; }
		sleep 0.3
	done
	BOOT_MS=$(($(mab_now_ms) - t0))
	if [[ $state == degraded ]]; then
		mab_log "system degraded; failed units: $(cx systemctl --failed --no-legend --plain | awk '{print $1}' | paste -sd' ')"
	fi
	mab_log "container booted ($state) in $BOOT_MS ms: nspawn pid $NSPAWN_PID, container PID 1 = $CPID"
}

# container_poweroff: SIGRTMIN+4 asks the container's systemd to power off
# (what systemctl poweroff does); nspawn exits once it has.  Then SIGTERM
# to nspawn, then SIGKILL, each bounded.
container_poweroff() {
	[[ -n $NSPAWN_PID ]] && mab_alive "$NSPAWN_PID" || return 0
	if [[ -n $CPID ]] && mab_alive "$CPID"; then
		kill -s SIGRTMIN+4 "$CPID" 2>/dev/null || true
	fi
	if mab_wait_gone "$NSPAWN_PID" 60; then
		mab_log "container powered off"
	else
		mab_log "container did not power off in 60 s; stopping nspawn"
		mab_kill_pid "$NSPAWN_PID" 20
	fi
	wait "$NSPAWN_PID" 2>/dev/null || true
	NSPAWN_PID=
}

# container_wait_listening SECONDS PORT...: waits until something in the
# container listens on every PORT on 127.0.0.1.
container_wait_listening() {
	local secs=$1 p deadline
	shift
	deadline=$((SECONDS + secs))
	for p in "$@"; do
		until [[ -n $(cx ss -Hltn "( sport = :$p )" 2>/dev/null) ]]; do
			((SECONDS >= deadline)) && { echo "nothing listens on $p in the container" >&2; return 1; }
			sleep 0.3
		done
	done
}
