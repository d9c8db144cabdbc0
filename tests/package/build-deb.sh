#!/usr/bin/env bash
# build-deb.sh OUTDIR: builds the Debian package (dpkg-buildpackage -b) from
# a clean copy of the source tree, checks it with lintian (an error or a
# warning fails the run) and leaves the .deb files, the .changes and the
# .buildinfo in OUTDIR.  Prints lintian's verdict, the .deb's size and
# number of entries, and its path last; the whole log only on failure.
#
# The copy holds what `git ls-files -co --exclude-standard` lists: tracked
# files as they are in the working tree (uncommitted changes included, so
# what is packaged is what is being tested) and new files not yet added,
# but nothing ignored: build/, build-asan/, and configure or Makefile.in
# from an in-place autoreconf neither leak into the package build nor get
# cleaned by it.  `git archive` would package the last commit only.
#
# Installs what is missing (as tests/lib/deps.sh does): the packaging
# tools, then debian/control's Build-Depends (apt-get build-dep on the
# copy).  Environment: JOBS (parallel build, default 2); DEB_BUILD_OPTIONS
# is passed on (nocheck skips the unit tests).
set -euo pipefail

(($# == 1)) || { echo "usage: $0 OUTDIR" >&2; exit 2; }
root=$(cd "$(dirname "$0")/../.." && pwd)
mkdir -p "$1"
out=$(cd "$1" && pwd)
jobs=${JOBS:-2}

work=$(mktemp -d /tmp/build-deb.XXXXXX)
trap 'rm -rf "$work"' EXIT
log=$work/log
src=$work/mqtt-amqp-bridge
# Shows the log and stops.
fail() {
	cat "$log" >&2
	echo "build-deb: $*" >&2
	exit 1
}
# Runs a step with its output in the log.
run() {
	"$@" >>"$log" 2>&1 || fail "failed: $*"
}

sudo=()
if ((EUID != 0)); then
	sudo=(sudo)
fi
tools=(dpkg-dev debhelper lintian)
missing=()
for p in "${tools[@]}"; do
	if ! dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q 'install ok installed'; then
		missing+=("$p")
	fi
done
updated=no
if ((${#missing[@]} > 0)); then
	echo "build-deb: installing ${missing[*]}" >&2
	run "${sudo[@]}" apt-get update -qq
	updated=yes
	run "${sudo[@]}" env DEBIAN_FRONTEND=noninteractive apt-get install -y -qq \
		--no-install-recommends "${missing[@]}"
fi

# The copy.  A tracked file deleted in the working tree is left out.
mkdir "$src"
(cd "$root" && git ls-files -z -co --exclude-standard) |
	(cd "$root" && while IFS= read -r -d '' f; do
		[[ -e $f || -L $f ]] && printf '%s\0' "$f"
	done) |
	tar -C "$root" --null -T - -cf - | tar -C "$src" -xf -

if ! (cd "$src" && dpkg-checkbuilddeps) >>"$log" 2>&1; then
	echo "build-deb: installing the build dependencies" >&2
	[[ $updated == yes ]] || run "${sudo[@]}" apt-get update -qq
	run "${sudo[@]}" env DEBIAN_FRONTEND=noninteractive apt-get build-dep -y -qq \
		--no-install-recommends "$src"
fi

t0=$SECONDS
(cd "$src" && run dpkg-buildpackage -us -uc -b -J"$jobs")
version=$(dpkg-parsechangelog -l "$src/debian/changelog" -S Version)
arch=$(dpkg --print-architecture)
changes=$work/mqtt-amqp-bridge_${version}_$arch.changes
deb=mqtt-amqp-bridge_${version}_$arch.deb
[[ -f $changes && -f $work/$deb ]] || fail "no ${changes##*/} or $deb"

# lintian's own output (info tags included) is shown; it is empty when clean.
lint=$(lintian --fail-on error,warning --display-info "$changes" 2>&1) || {
	printf '%s\n' "$lint" >>"$log"
	fail "lintian found errors or warnings"
}
lint=$(printf '%s\n' "$lint" | grep -v 'running with root privileges' || :)
if [[ -z $lint ]]; then
	echo "lintian: clean (no error, warning or info tag)"
else
	echo "lintian: no error or warning; it says:"
	printf '  %s\n' "$lint"
fi

# Everything dpkg-buildpackage listed in the .changes (with -dbgsym).
mapfile -t files < <(sed -n '/^Files:/,/^[^ ]/s/^ [0-9a-f]* [0-9]* [^ ]* [^ ]* //p' "$changes")
files+=("${changes##*/}")
for f in "${files[@]}"; do
	cp "$work/$f" "$out/"
done
echo "built and checked in $((SECONDS - t0)) s; in $out: ${files[*]}"
echo "size: $(stat -c %s "$out/$deb") bytes; entries: $(dpkg-deb -c "$out/$deb" | wc -l)"
echo "$out/$deb"
