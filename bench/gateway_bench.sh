#!/usr/bin/env bash
# The append-only gateway's cost (issue 20): the same `pulih repo backup`
# (initial, of one corpus) and `pulih repo restore` against Garage direct
# and through `pulih drc serve` (HTTPS, loopback, in front of the same
# Garage), alternating, in one run.
#
#   bench/gateway_bench.sh WORKDIR [--size BYTES] [--runs N] [--restic]
#       [--rustic] [--corpus DIR] [--rtt TIME] [--rate RATE]
#
# Needs garage (docs: ../shared/TOOLS.md), openssl (the test CA), python3.
# Prints a Markdown table: wall seconds (median), MB/s of the corpus, the
# repository's bytes (Pulih's backup report, restic's raw-data stats: what
# a restore reads over the link, less the index) and the link rate that
# makes, Garage's and the gateway's CPU seconds per run.
set -euo pipefail
here=$(cd "$(dirname "$0")" && pwd)
work=${1:?usage: gateway_bench.sh WORKDIR [--size BYTES] [--runs N] [--restic] [--rustic] [--corpus DIR] [--rtt TIME] [--rate RATE]}; shift
size=$((1 << 30)); runs=3; rtt=; rate=; legs="direct gateway"; corpus=$work/gw-corpus
while [ $# -gt 0 ]; do
  case $1 in
    --size) size=$2; shift 2 ;;
    --runs) runs=$2; shift 2 ;;
    --restic) legs="$legs restic"; shift ;;
    --rustic) legs="$legs rustic"; shift ;;
    --corpus) corpus=$2; shift 2 ;;
    --rtt) rtt=$2; shift 2 ;;
    --rate) rate=$2; shift 2 ;;
    *) echo "unknown flag $1" >&2; exit 2 ;;
  esac
done
pulih=${PULIH:-$here/../target/release/pulih}
[ -x "$pulih" ] || { echo "build it first: cargo build --release -p pulih" >&2; exit 1; }
command -v garage >/dev/null || { echo "needs garage (../shared/TOOLS.md)" >&2; exit 1; }
# Everything a run writes (repositories, Garage's data, restores) goes to a
# fresh ext4 (no journal, like this disk) on a loop device, as
# bench/repo_bench.sh does: on this disk a restore right after an earlier
# run's trees were deleted pays for the deleted inodes (BENCHMARKS.md,
# issue 19), a cost set by the previous run, not by the tool.
run=$work/gw-run
mountpoint -q "$run" && umount "$run"
rm -rf "$run" "$work/gw-run.img"; mkdir -p "$run"
scratch="a fresh ext4 (no journal) on a loop device"
if [ "$(id -u)" = 0 ] && truncate -s 48G "$work/gw-run.img" \
   && mkfs.ext4 -q -F -O ^has_journal -N 2000000 -E lazy_itable_init=0 "$work/gw-run.img" \
   && mount -o loop "$work/gw-run.img" "$run"; then :
else
  rm -f "$work/gw-run.img"; scratch="a directory on this machine's disk (no loop device)"
fi
[ -d "$corpus" ] || python3 "$here/make_corpus.py" build "$corpus" --size "$size" --seed 7 >/dev/null
bytes=$(du -sb "$corpus" | cut -f1); files=$(find "$corpus" -type f | wc -l)

. "$here/garage.sh"
. "$here/gateway.sh"
netem_pids=
cleanup() {
  for p in $gw_pid $netem_pids; do kill "$p" 2>/dev/null; done; garage_stop
  cp "$run/results.txt" "$work/gw-results.txt" 2>/dev/null || true
  wait 2>/dev/null || true   # the killed servers let go of the filesystem
  cd /; if mountpoint -q "$run"; then umount "$run" || umount -l "$run"; rm -f "$work/gw-run.img"; else rm -rf "$run"/out-*; fi
}
trap cleanup EXIT
for t in restic rustic; do
  case $legs in *$t*) command -v $t >/dev/null || { echo "needs $t (../shared/TOOLS.md)" >&2; exit 1; } ;; esac
done
garage_start "$run/garage" bench-direct bench-gw bench-restic bench-rustic
rustic_profile() { # NAME ENDPOINT RUN: rustic's opendal S3 options take a profile file (no flags)
  printf '[repository]\nrepository = "opendal:s3"\npassword = "bench gateway"\n[repository.options]\nbucket = "bench-rustic"\nroot = "/r%s"\nendpoint = "http://%s"\nregion = "garage"\naccess_key_id = "%s"\nsecret_access_key = "%s"\n' \
    "$3" "$2" "$AWS_ACCESS_KEY_ID" "$AWS_SECRET_ACCESS_KEY" > "$run/rustic-$1-$3.toml"
}

# The gateway: TLS from a throwaway CA, Garage upstream (its own bucket).
gateway_start "$run/gw" bench-gw bench
gateway_credential reader bench "$run/cred"
cd "$run"
# The restores' endpoints: the stores themselves, or a link in front of each.
far_garage=$garage_endpoint; far_gw=$gw_endpoint
if [ -n "$rtt$rate" ]; then
  netem=${PULIH_NETEM_BIN:-$here/../target/release/pulih-netem}
  [ -x "$netem" ] || (cd "$here/.." && cargo build --release -p pulih-test-support --bin pulih-netem)
  link() { # link NAME HOST:PORT: starts a link to it (in this shell, so
    # cleanup can stop it); its address is then in netem-NAME.out
    "$netem" --to "$2" ${rtt:+--rtt "$rtt"} ${rate:+--rate "$rate"} > "netem-$1.out" 2> "netem-$1.log" &
    netem_pids="$netem_pids $!"
    for _ in $(seq 100); do [ -s "netem-$1.out" ] && break; sleep 0.1; done
  }
  addr() { head -1 "netem-$1.out" | grep -o '[0-9.]*:[0-9]*' | head -1; }
  link garage "$garage_endpoint"; link gateway "${gw_endpoint#https://}"
  far_garage=$(addr garage); far_gw=https://$(addr gateway)
  [ -n "$far_garage" ] && [ "$far_gw" != https:// ] || { cat netem-*.log >&2; exit 1; }
fi
printf 'bench gateway\n' > pass; chmod 600 pass

ticks() { awk '{print $14 + $15}' "/proc/$1/stat"; }
hz=$(getconf CLK_TCK)
declare -A wall
leg() { # leg NAME RUN: init, initial backup, restore; appends "name step secs garage_ticks gw_ticks repo_bytes"
  local name=$1 n=$2 url
  case $name in
    direct) url="s3://bench-direct/r$n?endpoint=http://$garage_endpoint&region=garage"
            env_args=() ;;
    gateway) url="s3://pulih/bench/r$n?endpoint=$gw_endpoint&ca=$gw_ca"
            env_args=(PULIH_S3_ACCESS_KEY_ID_FILE="$run/cred/access-key-id" PULIH_S3_SECRET_ACCESS_KEY_FILE="$run/cred/secret-access-key") ;;
    restic) export RESTIC_REPOSITORY="s3:http://$garage_endpoint/bench-restic/r$n" RESTIC_PASSWORD="bench gateway" ;;
    rustic) rustic_profile near "$garage_endpoint" "$n"; rustic_profile far "$far_garage" "$n" ;;
  esac
  if [ "$name" = restic ]; then restic init >/dev/null
  elif [ "$name" = rustic ]; then rustic -P "$run/rustic-near-$n" init >/dev/null 2>&1
  else env "${env_args[@]}" "$pulih" repo init --repo "$url" --passphrase-file pass --agent-key-out "key-$name-$n" >/dev/null; fi
  for step in backup restore; do
    local g0 w0 t0 t1
    g0=$(ticks "$garage_pid"); w0=$(ticks "$gw_pid"); t0=$(date +%s.%N)
    if [ "$name" = restic ]; then
      if [ $step = backup ]; then restic backup -q "$corpus" >/dev/null
      else RESTIC_REPOSITORY="s3:http://$far_garage/bench-restic/r$n" restic restore -q latest --target "out-$name-$n" >/dev/null; fi
    elif [ "$name" = rustic ]; then
      if [ $step = backup ]; then rustic -P "$run/rustic-near-$n" backup "$corpus" >/dev/null 2>&1
      else rustic -P "$run/rustic-far-$n" restore latest "out-$name-$n" >/dev/null 2>&1; fi
    elif [ $step = backup ]; then
      env "${env_args[@]}" "$pulih" repo backup --repo "$url" --agent-key "key-$name-$n" --cache-dir "cache-$name-$n" --json "$corpus" > "backup-$name-$n.json"
    else
      local far=${url/$gw_endpoint/$far_gw}
      [ "$name" = direct ] && far=${url/$garage_endpoint/$far_garage}
      env "${env_args[@]}" "$pulih" repo restore --repo "$far" --passphrase-file pass latest --target "out-$name-$n" >/dev/null
    fi
    t1=$(date +%s.%N)
    # What the repository holds (so what a restore reads over the link),
    # outside the timing: Pulih's backup report, restic's raw-data stats
    # (rustic's: not read, 0).
    local stored=0
    if [ $step = backup ]; then
      if [ "$name" = rustic ]; then :
      elif [ "$name" = restic ]; then stored=$(restic stats --mode raw-data --json | python3 -c 'import json,sys; print(json.load(sys.stdin)["total_size"])')
      else stored=$(python3 -c 'import json,sys; print(json.load(open(sys.argv[1]))["bytes_stored"])' "backup-$name-$n.json"); fi
      echo "$stored" > "stored-$name-$n"
    else stored=$(cat "stored-$name-$n"); fi
    echo "$name $step $(echo "$t1 - $t0" | bc) $(( ($(ticks "$garage_pid") - g0) )) $(( ($(ticks "$gw_pid") - w0) )) $stored" >> results.txt
    if [ $step = restore ]; then # every file back (outside the timing)
      local got; got=$(find "out-$name-$n" -type f | wc -l)
      [ "$got" = "$files" ] || { echo "$name run $n restored $got files of $files" >&2; exit 1; }
    fi
  done
  # Restored trees stay until the end: deleting one right before the next
  # restore slows that one on ext4 without a journal (BENCHMARKS.md, issue 19).
  rm -rf "cache-$name-$n"
}
: > results.txt
read -r -a order <<< "$legs"
for n in $(seq "$runs"); do
  # Each run starts with the next leg: every tool goes first, last, between.
  k=${#order[@]}
  for i in $(seq 0 $((k - 1))); do leg "${order[$(( (i + n - 1) % k ))]}" "$n"; done
done

echo "corpus: $bytes bytes ($files files), $runs alternating runs, $(nproc) cores, garage $garage_version, written to $scratch${rtt:+, restores with ${rtt} RTT}${rate:+ capped at $rate}"
echo
echo "| path | step | wall s (median) | MB/s of the corpus | repository MB | Mbit/s of the repository | garage CPU s | gateway CPU s |"
echo "|---|---|---|---|---|---|---|---|"
for name in $legs; do for step in backup restore; do
  python3 - "$name" "$step" "$bytes" "$hz" "$run/results.txt" <<'PY'
import sys, statistics
name, step, size, hz = sys.argv[1], sys.argv[2], int(sys.argv[3]), int(sys.argv[4])
rows = [l.split() for l in open(sys.argv[5]) if l.split()[:2] == [name, step]]
w = statistics.median(float(r[2]) for r in rows)
g = statistics.median(int(r[3]) for r in rows) / hz
gw = statistics.median(int(r[4]) for r in rows) / hz
repo = statistics.median(int(r[5]) for r in rows)
label = {"direct": "Garage direct (http, loopback)", "gateway": "gateway (https) → Garage",
         "restic": "restic 0.14, Garage direct (http)",
         "rustic": "rustic, Garage direct (http)"}[name]
rb = f"{repo / 1e6:.1f} | {repo * 8 / w / 1e6:.1f}" if repo else "— | —"
print(f"| {label} | {step} | {w:.2f} | {size / w / 1e6:.0f} | {rb} | {g:.1f} | {gw if name == 'gateway' else 0:.1f} |")
PY
done; done
