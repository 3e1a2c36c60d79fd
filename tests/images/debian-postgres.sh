#!/usr/bin/env bash
# Builds a real PostgreSQL test image from Debian's packages, with no
# registry: debootstrap a bookworm root (minbase + postgresql-15 + busybox),
# add two small scripts, `docker import` it.
#   tests/images/debian-postgres.sh TAG
# Idempotent: does nothing when TAG exists. Needs root and debootstrap
# (apt-get install debootstrap); takes a few minutes the first time.
#
# In the image:
#   pg-start      initialises PGDATA (/var/lib/postgresql/data) on first
#                 start (trust auth on the container network: a test app),
#                 then runs postgres as the postgres user.
#   /www/cgi-bin/rows
#                 a CGI for `busybox httpd -h /www`: the `citizens` table's
#                 names, one per line, read with psql from host `db`.
set -euo pipefail
tag=${1:?usage: debian-postgres.sh TAG}
if docker image inspect "$tag" >/dev/null 2>&1; then exit 0; fi
command -v debootstrap >/dev/null || {
  echo "debian-postgres.sh: needs debootstrap (apt-get install debootstrap)" >&2
  exit 1
}
mirror=${DEBIAN_MIRROR:-http://deb.debian.org/debian}
root=$(mktemp -d /var/tmp/pulih-pg-root.XXXXXX)
trap 'rm -rf "$root"' EXIT
debootstrap --variant=minbase --include=postgresql-15,busybox bookworm "$root" "$mirror" >/dev/null
# The cluster Debian made at install time is not used; PGDATA is a volume.
rm -rf "$root/var/lib/postgresql/15" "$root/etc/postgresql/15"
mkdir -p "$root/var/lib/postgresql/data" "$root/www/cgi-bin" "$root/run/postgresql"
chroot "$root" chown postgres:postgres /var/lib/postgresql/data /run/postgresql
cat > "$root/usr/local/bin/pg-start" <<'SH'
#!/bin/sh
set -e
export PGDATA=/var/lib/postgresql/data
chown postgres:postgres "$PGDATA" /run/postgresql
chmod 700 "$PGDATA"
if [ ! -s "$PGDATA/PG_VERSION" ]; then
  runuser -u postgres -- /usr/lib/postgresql/15/bin/initdb -D "$PGDATA" -U postgres \
    --auth=trust --encoding=UTF8 --locale=C.UTF-8 >/dev/null
  echo "host all all 0.0.0.0/0 trust" >> "$PGDATA/pg_hba.conf"
fi
# One container per data volume: a lock file in it is from a copy taken
# while the server ran (a restored backup), not from a live server.
rm -f "$PGDATA/postmaster.pid"
exec runuser -u postgres -- /usr/lib/postgresql/15/bin/postgres -D "$PGDATA" -c listen_addresses='*'
SH
cat > "$root/www/cgi-bin/rows" <<'SH'
#!/bin/sh
echo "Content-Type: text/plain"
echo
psql -h db -U postgres -At -c 'SELECT name FROM citizens ORDER BY id' 2>&1
SH
chmod 755 "$root/usr/local/bin/pg-start" "$root/www/cgi-bin/rows"
rm -rf "$root/var/cache/apt/archives"/*.deb "$root/var/lib/apt/lists"/*
tar -C "$root" -c . | docker import \
  -c 'ENV PATH=/usr/local/bin:/usr/bin:/bin:/usr/sbin:/sbin:/usr/lib/postgresql/15/bin' \
  -c 'CMD ["pg-start"]' - "$tag" >/dev/null
