#!/usr/bin/env bash
# Builds a test image holding a `pulih` binary, the shared libraries `ldd`
# lists for it (and the dynamic loader), and the host's static busybox as
# /bin/sh — no registry needed.
#   tests/images/pulih-image.sh BINARY [NAME]
# The image is tagged NAME:<first 12 hex of the sha256 of the binary and
# this script> (NAME defaults to pulih-test/pulih) and that tag is printed
# on stdout. It is built only when that tag is missing, so a rebuilt binary
# gets a new image; the older tags of NAME are removed (unless a container
# still uses them).
set -euo pipefail
bin=${1:?usage: pulih-image.sh BINARY [NAME]}
name=${2:-pulih-test/pulih}
[[ -x "$bin" ]] || { echo "pulih-image.sh: $bin is not an executable" >&2; exit 1; }
hash=$(cat "$bin" "${BASH_SOURCE[0]}" | sha256sum | cut -c1-12)
tag="$name:$hash"
if docker image inspect "$tag" >/dev/null 2>&1; then echo "$tag"; exit 0; fi
bb=/bin/busybox
if [[ ! -x "$bb" ]] || ldd "$bb" >/dev/null 2>&1; then
  echo "pulih-image.sh: needs a static busybox (apt-get install busybox-static)" >&2
  exit 1
fi
root=$(mktemp -d)
trap 'rm -rf "$root"' EXIT
mkdir -p "$root/bin" "$root/tmp" "$root/etc" "$root/var/lib/pulih"
chmod 1777 "$root/tmp"
cp "$bb" "$root/bin/busybox"
# df: the DRC executor asks it for the free space before a restore.
# nsenter: the DRC executor in a container installs its isolation rules in
# the Docker host's network namespace (PULIH_FIREWALL_PID), with nft.
for a in sh cat echo sleep ls grep test true wget head mkdir rm chmod kill df nsenter; do ln -s busybox "$root/bin/$a"; done
cp "$bin" "$root/bin/pulih"
nft=$(command -v nft || true)
[[ -n "$nft" ]] || { echo "pulih-image.sh: needs nft (apt-get install nftables)" >&2; exit 1; }
cp "$nft" "$root/bin/nft"
# Every library the binaries link, and the loader, at the paths ldd names.
{ ldd "$bin"; ldd "$nft"; } | grep -o '/[^ ]*' | sort -u | while read -r lib; do
  mkdir -p "$root$(dirname "$lib")"
  cp -L "$lib" "$root$lib"
done
echo 'hosts: files dns' >"$root/etc/nsswitch.conf"
tar -C "$root" -c . | docker import -c 'ENV PATH=/bin' -c 'CMD ["pulih", "--help"]' - "$tag" >/dev/null
# Earlier builds of NAME (other binaries) go; one in use by a container stays.
docker image ls --format '{{.Repository}}:{{.Tag}}' "$name" | grep -vxF "$tag" |
  xargs -r docker rmi >/dev/null 2>&1 || true
echo "$tag"
