#!/usr/bin/env bash
# A benchmark corpus of a real software installation's shape: a Debian root
# made by debootstrap (suite, variant, architecture and mirror below, the
# packages in debian-packages.txt beside this script), cleaned of what
# differs from one build to the next, every mtime set to one fixed instant.
#
#   bench/corpus/debian.sh DIR
#
# Needs root (debootstrap chroots into DIR to configure the packages) and
# the mirror. Writes DIR, and beside it DIR.packages.txt (every installed
# package, `name version architecture`, from DIR's var/lib/dpkg/status) and
# DIR.stats.md (how it was built, counts, bytes, a size histogram, the
# hashes of the listing and of the package list). An existing DIR built by
# the same recipe from the same package list is reused as it is.
#
# Not bit-for-bit reproducible over time: the mirror serves the suite's
# current point release, so package versions (and with them sizes and
# file lists) change when Debian publishes one. DIR.stats.md records the
# mirror's Release version and date and the package list's hash: two
# corpora with the same package-list hash and listing hash have the same
# files, sizes and modes. Within one mirror state two builds differed in
# the contents of four files only (measured 2026-12-06): the PostgreSQL
# cluster's pg_control, first WAL segment and pgstat.stat, and the Java key
# store etc/ssl/certs/java/cacerts; the Python bytecode was identical.
set -euo pipefail
here=$(cd "$(dirname "$0")" && pwd)
[ $# -eq 1 ] || { echo "usage: $0 DIR" >&2; exit 2; }
dir=$(realpath -m "$1")
suite=bookworm variant=minbase arch=amd64
mirror=${DEBIAN_MIRROR:-http://deb.debian.org/debian}
epoch=1686355200   # 2023-06-10T00:00:00Z, the day bookworm was released
list=$here/debian-packages.txt
include=$(grep -v -e '^#' -e '^\s*$' "$list" | paste -sd, -)
# Bump when the steps below change what they build: a cached tree is
# reused only when the recipe, the settings above and the package list match.
recipe=1
key="recipe $recipe, $suite $variant $arch $mirror @$epoch, packages $(sha256sum < "$list" | cut -d' ' -f1)"

if [ -d "$dir" ] && [ -f "$dir.key" ] && [ "$(cat "$dir.key")" = "$key" ]; then
  echo "reusing $dir (built by this recipe from this package list; $dir.stats.md)" >&2
  exit 0
fi
[ "$(id -u)" = 0 ] || { echo "$0: debootstrap needs root" >&2; exit 1; }
tmp=$dir.tmp
rm -rf "$dir" "$tmp" "$dir.key" "$dir.stats.md" "$dir.packages.txt"
mkdir -p "$(dirname "$dir")"
t0=$(date +%s)
# The downloaded .debs are kept beside the tree (DIR.debs) so a rebuild
# downloads only what the mirror changed.
mkdir -p "$dir.debs"
debootstrap --variant=$variant --arch=$arch --include="$include" --cache-dir="$dir.debs" \
  $suite "$tmp" "$mirror" > "$dir.debootstrap.log" 2>&1 \
  || { tail -20 "$dir.debootstrap.log" >&2; echo "$0: debootstrap failed, log: $dir.debootstrap.log" >&2; exit 1; }
release=$(cat "$tmp"/var/lib/apt/lists/*_dists_${suite}_Release 2>/dev/null | grep -E '^(Version|Date):' | paste -sd';' - | sed 's/;/, /' || true)

cd "$tmp"
# What differs from one build to the next, or is no part of an installed
# system: device nodes, fifos and sockets (not every tool can back them
# up); apt's downloads and package lists; logs; caches keyed to this run;
# files copied from the building host; the random snake-oil TLS key;
# dpkg's and debconf's previous copies; what the JVM left in /tmp.
find . -xdev ! -type f ! -type d ! -type l -delete
find var/cache/apt var/lib/apt/lists var/log -type f -delete
find tmp -mindepth 1 -delete
rm -f var/cache/ldconfig/aux-cache etc/machine-id var/lib/dbus/machine-id etc/resolv.conf \
  var/cache/debconf/*-old var/lib/dpkg/*-old \
  etc/ssl/private/ssl-cert-snakeoil.key etc/ssl/certs/ssl-cert-snakeoil.pem
find etc/ssl/certs -lname ssl-cert-snakeoil.pem -delete
echo debian > etc/hostname
printf '127.0.0.1\tlocalhost\n::1\t\tlocalhost ip6-localhost ip6-loopback\n' > etc/hosts
# The day each account was made (days since 1970) becomes the fixed day.
sed -i -E "s/^([^:]*:[^:]*:)[0-9]+:/\1$((epoch / 86400)):/" etc/shadow etc/shadow-
find . -exec touch -h -d @$epoch {} +
cd - >/dev/null

dpkg-query --admindir="$tmp/var/lib/dpkg" -W -f='${db:Status-Status} ${Package} ${Version} ${Architecture}\n' \
  | awk '$1 == "installed" {print $2, $3, $4}' | LC_ALL=C sort > "$dir.packages.txt"
mv "$tmp" "$dir"
{
  echo "Debian corpus built $(date -u +%Y-%m-%dT%H:%MZ) in $(( $(date +%s) - t0 )) s by bench/corpus/debian.sh:"
  echo "debootstrap $(dpkg-query -W -f='${Version}' debootstrap 2>/dev/null || echo '?') --variant=$variant --arch=$arch, suite $suite from $mirror (Release $release),"
  echo "packages from bench/corpus/debian-packages.txt ($(grep -c -v -e '^#' -e '^\s*$' "$list") named, their dependencies with them), every mtime @$epoch"
  echo
  python3 "$here/stats.py" summary "$dir" --packages "$dir.packages.txt"
} > "$dir.stats.md"
echo "$key" > "$dir.key"
cat "$dir.stats.md"
