#!/usr/bin/env bash
# Builds a small test image from the host's static busybox (Debian's
# busybox-static): sh, httpd, wget, nc, cat... — no registry needed.
#   tests/images/busybox-app.sh TAG
# Idempotent: does nothing when TAG exists.
set -euo pipefail
tag=${1:?usage: busybox-app.sh TAG}
if docker image inspect "$tag" >/dev/null 2>&1; then exit 0; fi
bb=/bin/busybox
if [[ ! -x "$bb" ]] || ldd "$bb" >/dev/null 2>&1; then
  echo "busybox-app.sh: needs a static busybox (apt-get install busybox-static)" >&2
  exit 1
fi
root=$(mktemp -d)
trap 'rm -rf "$root"' EXIT
mkdir -p "$root/bin" "$root/tmp" "$root/www" "$root/data"
chmod 1777 "$root/tmp"
cp "$bb" "$root/bin/busybox"
for a in sh httpd wget nc cat echo sleep ls grep test true; do ln -s busybox "$root/bin/$a"; done
tar -C "$root" -c . | docker import -c 'ENV PATH=/bin' -c 'CMD ["sh"]' - "$tag" >/dev/null
