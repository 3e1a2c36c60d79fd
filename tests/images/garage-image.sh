#!/usr/bin/env bash
# Builds a test image holding a `garage` binary (GARAGE, default the one on
# PATH: `cargo install --locked garage --version 2.5.0`, as .ci/run does), the
# shared libraries `ldd` lists for it (and the dynamic loader), and the
# host's static busybox as /bin/sh — no registry needed.
#   tests/images/garage-image.sh TAG [GARAGE]
# Idempotent: does nothing when TAG exists (put the Garage version in TAG).
set -euo pipefail
tag=${1:?usage: garage-image.sh TAG [GARAGE]}
if docker image inspect "$tag" >/dev/null 2>&1; then exit 0; fi
garage=${2:-$(command -v garage)} || {
  echo "garage-image.sh: no garage on PATH (cargo install --locked garage --version 2.5.0)" >&2
  exit 1
}
[[ -x "$garage" ]] || { echo "garage-image.sh: $garage is not an executable" >&2; exit 1; }
bb=/bin/busybox
if [[ ! -x "$bb" ]] || ldd "$bb" >/dev/null 2>&1; then
  echo "garage-image.sh: needs a static busybox (apt-get install busybox-static)" >&2
  exit 1
fi
root=$(mktemp -d)
trap 'rm -rf "$root"' EXIT
mkdir -p "$root/bin" "$root/tmp" "$root/etc" "$root/var/lib/garage"
chmod 1777 "$root/tmp"
cp "$bb" "$root/bin/busybox"
for a in sh cat echo sleep ls grep test true wget; do ln -s busybox "$root/bin/$a"; done
cp "$garage" "$root/bin/garage"
# Every library the binary links, and the loader, at the paths ldd names.
ldd "$garage" | grep -o '/[^ ]*' | while read -r lib; do
  mkdir -p "$root$(dirname "$lib")"
  cp -L "$lib" "$root$lib"
done
echo 'hosts: files dns' >"$root/etc/nsswitch.conf"
tar -C "$root" -c . | docker import -c 'ENV PATH=/bin' -c 'CMD ["garage", "--help"]' - "$tag" >/dev/null
