#!/usr/bin/env bash
# Side-by-side benchmark of the replication engine against restic and borg
# (and rustic, bupstash when installed): initial backup, a 1% incremental,
# a no-change incremental, and a full restore, on one deterministic corpus.
#
#   bench/repo_bench.sh [--size BYTES] [--workdir DIR] [--tools pulih,restic,borg,rustic,bupstash] [--runs N]
#                       [--corpus generated|debian] [--store file|s3] [--rtt 50ms] [--rate 100mbit]
#                       [--phases all|restore] [--cold]
#
# --corpus generated (the default) is make_corpus.py's mixed corpus of
# --size bytes; --corpus debian a Debian root of a real installation's
# shape (bench/corpus/debian.sh, built once into WORKDIR/debian-pristine,
# needs root and the Debian mirror). Either way the 1 % incremental is
# make_corpus.py's mutation (random ranges overwritten in files > 64 KiB,
# 20 new small files).
#
# --store s3 starts a single-node Garage on loopback under WORKDIR/garage
# (random ports, one bucket per tool) and points every tool with an S3
# backend at it: pulih, pulih-base, restic, rustic (opendal). borg and
# bupstash have none and are skipped. --rtt and --rate (s3 only) put
# pulih-netem, a user-space TCP proxy adding that round-trip time and
# bandwidth cap (this kernel has no netem qdisc), between the tools and
# Garage: for every phase with --phases all; for the restore only with
# --phases restore, whose initial backup goes to Garage directly.
#
# --phases restore runs only the initial backup and the full restore.
#
# --cold drops the page cache (sync; /proc/sys/vm/drop_caches, needs root)
# before every timed command, so each tool reads the corpus (and on
# restore its repository) from the disk; without it the corpus's first
# 2000 files are read once before each command (a warm cache).
#
# `--tools pulih,pulih-base` with PULIH_BASE_BIN=/path/to/an/older/pulih
# measures an earlier build of Pulih beside this one in the same run (a
# refactoring must not make the engine slower).
#
# Prints a Markdown table and writes it to bench/results/<date>.md. With
# --runs N (default 3) the whole sequence runs N times, each from the
# pristine corpus into fresh repositories, and a summary with each cell's
# median wall time (every run's value beside it) and largest peak RSS goes
# to bench/results/<date>-median.md: on a shared 2-core machine one run's
# wall times move by 10-30 %.
set -euo pipefail
here=$(cd "$(dirname "$0")" && pwd)
size=$((1 << 30)); work=/tmp/pulih-bench; tools=pulih,restic,borg,rustic,bupstash; runs=3
corpus_kind=generated; store=file; rtt=; rate=; phases=all; cold=
args=("$@")
while [ $# -gt 0 ]; do
  case $1 in
    --size) size=$2; shift 2 ;; --workdir) work=$2; shift 2 ;; --tools) tools=$2; shift 2 ;;
    --runs) runs=$2; shift 2 ;;
    --corpus) corpus_kind=$2; shift 2 ;; --store) store=$2; shift 2 ;;
    --rtt) rtt=$2; shift 2 ;; --rate) rate=$2; shift 2 ;; --phases) phases=$2; shift 2 ;;
    --cold) cold=yes; shift ;;
    *) echo "unknown option $1" >&2; exit 2 ;;
  esac
done
case $corpus_kind in generated|debian) ;; *) echo "--corpus is generated or debian" >&2; exit 2 ;; esac
case $store in file|s3) ;; *) echo "--store is file or s3" >&2; exit 2 ;; esac
case $phases in all|restore) ;; *) echo "--phases is all or restore" >&2; exit 2 ;; esac
if [ -n "$rtt$rate" ] && [ $store != s3 ]; then echo "--rtt and --rate need --store s3" >&2; exit 2; fi
if [ "$runs" -gt 1 ]; then
  files=()
  for i in $(seq "$runs"); do
    echo "== run $i of $runs" >&2
    "$0" "${args[@]}" --runs 1 >&2
    files+=("$(ls -t "$here"/results/*.md | grep -v -- -median | head -1)")
  done
  out="$here/results/$(date -u +%Y-%m-%dT%H%M)-median.md"
  python3 "$here/median.py" "${files[@]}" > "$out"
  cat "$out"
  exit 0
fi
pulih=${PULIH_BIN:-$here/../target/release/pulih}
[ -x "$pulih" ] || (cd "$here/.." && cargo build --release -p pulih)
# Pulih's own building blocks timed on one core (core/examples/limits.rs);
# PULIH_LIMITS_BIN=none leaves them out.
limits=${PULIH_LIMITS_BIN:-$here/../target/release/examples/limits}
[ "$limits" = none ] || [ -x "$limits" ] || (cd "$here/.." && cargo build --release -p pulih-core --example limits)
netem=${PULIH_NETEM_BIN:-$here/../target/release/pulih-netem}
if [ -n "$rtt$rate" ] && [ ! -x "$netem" ]; then
  (cd "$here/.." && cargo build --release -p pulih-test-support --bin pulih-netem)
fi
if [ $store = s3 ]; then command -v garage >/dev/null || { echo "--store s3 needs garage (docs: /work/shared/TOOLS.md)" >&2; exit 1; }; fi
mkdir -p "$work"
if [ $corpus_kind = generated ]; then
  pristine=$work/pristine
  if [ ! -f "$work/pristine.size" ] || [ "$(cat "$work/pristine.size")" != "$size" ]; then
    rm -rf "$work/pristine"; python3 "$here/make_corpus.py" build "$work/pristine" --size "$size"; echo "$size" > "$work/pristine.size"
  fi
else
  pristine=$work/debian-pristine
  "$here/corpus/debian.sh" "$pristine" >&2
fi
# Everything a run writes (the corpus's copy, repositories, Garage's data,
# restores) goes to a filesystem made new for the run: an ext4 image like
# this machine's disk (no journal) on a loop device under $work/run. This
# disk's ext4 has no journal, and for 60 s after a delete (360 s while the
# inode table is dirty) it will not reuse a deleted inode: each new file
# scans past them (perf: 70-80 % of a restore's time in recently_deleted,
# 5x its system time, after an rm -rf of an earlier run's trees), a cost
# set by when the previous run's files were deleted, not by the tool. A
# fresh filesystem has no deleted inodes. Without root or a loop device,
# a plain directory and a wait of 65 s after deleting the previous run's
# files (which leaves the 360 s case).
run=$work/run
mountpoint -q "$run" && umount "$run"
rm -f "$work/run.img"
if [ -e "$run" ] || [ -e "$work/corpus" ] || [ -e "$work/out" ] || [ -e "$work/repos" ] || [ -e "$work/garage" ]; then
  rm -rf "$run" "$work/corpus" "$work/repos" "$work/out" "$work/cache" "$work/garage"   # (the last four: older layouts)
  deleted=yes
fi
mkdir -p "$run"
scratch="a fresh ext4 filesystem (no journal, like this disk) on a loop device, made for this run"
if [ "$(id -u)" = 0 ] && truncate -s 48G "$work/run.img" \
   && mkfs.ext4 -q -F -O ^has_journal -N 2000000 -E lazy_itable_init=0 "$work/run.img" \
   && mount -o loop "$work/run.img" "$run"; then :
else
  rm -f "$work/run.img"
  scratch="a directory on this machine's disk (no root or loop device: a new filesystem could not be made)"
  if [ -n "${deleted:-}" ]; then
    sync; echo "waiting 65 s after deleting the previous run's files" >&2; sleep 65
  fi
fi
corpus=$run/corpus
cp -a "$pristine" "$corpus"   # every run starts from the same bytes
rm -f "$work/pulih.key" "$work/pulih-base.key" "$work/bupstash.key"; mkdir -p "$run/repos" "$run/out" "$run/cache"
export RESTIC_PASSWORD=bench BORG_PASSPHRASE=bench RUSTIC_PASSWORD=bench BORG_UNKNOWN_UNENCRYPTED_REPO_ACCESS_IS_OK=yes
echo bench > "$work/pass"; chmod 600 "$work/pass"
bytes=$(du -sb "$corpus" | cut -f1)
if [ $corpus_kind = debian ]; then
  corpus_stats=$(cat "$pristine.stats.md")
else
  corpus_stats="Generated corpus (bench/make_corpus.py build --size $size --seed 1):"$'\n\n'"$(python3 "$here/corpus/stats.py" summary "$corpus")"
fi
have() { case ",$tools," in *,$1,*) command -v "$2" >/dev/null 2>&1 ;; *) return 1 ;; esac; }
active=(); no_s3=()
pulih_base=${PULIH_BASE_BIN:-}
for t in pulih pulih-base restic borg rustic bupstash; do
  bin=$t; [ $t = pulih ] && bin=$pulih; [ $t = pulih-base ] && bin=${pulih_base:-/nonexistent}
  if ! have $t "$bin"; then echo "skipped: $t (not installed or not selected)" >&2
  elif [ $store = s3 ] && { [ $t = borg ] || [ $t = bupstash ]; }; then echo "skipped: $t (no S3 backend)" >&2; no_s3+=($t)
  else active+=($t); fi
done

# --store s3: a single-node Garage on loopback, one bucket per tool, and
# with --rtt/--rate pulih-netem in front of it. `endpoint` is the
# host:port the tools talk to; it changes when a phase goes through the
# proxy.
garage_pid=; netem_pid=; endpoint=; proxy=
stop_servers() { for p in $netem_pid $garage_pid; do kill "$p" 2>/dev/null || true; wait "$p" 2>/dev/null || true; done; }
trap stop_servers EXIT
. "$here/garage.sh"
if [ $store = s3 ]; then
  g=$run/garage
  buckets=(); for t in "${active[@]}"; do buckets+=("bench-$t"); done
  garage_start "$g" "${buckets[@]}"
  endpoint=$garage_endpoint
  rustic_profile() { # endpoint: rustic's opendal S3 options take a profile file (no flags)
    printf '[repository]\nrepository = "opendal:s3"\n[repository.options]\nbucket = "bench-rustic"\nroot = "/repo"\nendpoint = "http://%s"\nregion = "garage"\naccess_key_id = "%s"\nsecret_access_key = "%s"\n' \
      "$1" "$AWS_ACCESS_KEY_ID" "$AWS_SECRET_ACCESS_KEY" > "$g/rustic-${1##*:}.toml"
  }
  rustic_profile "$endpoint"
  if [ -n "$rtt$rate" ]; then
    "$netem" --listen 127.0.0.1:0 --to "$endpoint" ${rtt:+--rtt "$rtt"} ${rate:+--rate "$rate"} > "$g/netem.out" 2> "$g/netem.log" &
    netem_pid=$!
    for _ in $(seq 100); do [ -s "$g/netem.out" ] && break; kill -0 $netem_pid 2>/dev/null || break; sleep 0.1; done
    proxy=$(head -1 "$g/netem.out" | grep -o '[0-9.]*:[0-9]*' | head -1 || true)
    [ -n "$proxy" ] || { echo "pulih-netem did not start: $(cat "$g/netem.log")" >&2; exit 1; }
    rustic_profile "$proxy"
    [ $phases = all ] && endpoint=$proxy   # else only the restore goes through it
  fi
fi
export store endpoint
gcol=; [ $store = s3 ] && gcol=yes   # the table's garage cpu column

repo() { # tool: where its repository is (s3: through $endpoint)
  case $store:$1 in
    file:*) echo "$run/repos/$1" ;;
    s3:pulih|s3:pulih-base) echo "s3://bench-$1/repo?endpoint=http://$endpoint&region=garage" ;;
    s3:restic) echo "s3:http://$endpoint/bench-$1/repo" ;;
  esac
}
rustic_repo() { # rustic's repository flags (s3: a profile per endpoint, written below)
  if [ $store = s3 ]; then echo "-P $run/garage/rustic-${endpoint##*:}"; else echo "-r $run/repos/rustic"; fi
}
init() {
  local r; r=$(repo $1)
  case $1 in
    pulih) "$pulih" repo init --repo "$r" --passphrase-file "$work/pass" --agent-key-out "$work/pulih.key" >/dev/null ;;
    pulih-base) "$pulih_base" repo init --repo "$r" --passphrase-file "$work/pass" --agent-key-out "$work/pulih-base.key" >/dev/null ;;
    restic) restic init --repository-version 2 -r "$r" -q ;;
    borg) borg init -e repokey-blake2 "$r" ;;
    rustic) rustic $(rustic_repo) init >/dev/null 2>&1 ;;
    bupstash) bupstash new-key -o "$work/bupstash.key"; BUPSTASH_REPOSITORY=$r bupstash init ;;
  esac
}
backup() {
  local r n=$2; r=$(repo $1)
  case $1 in
    pulih) "$pulih" repo backup --repo "$r" --agent-key "$work/pulih.key" --cache-dir "$run/cache/pulih" --json "$corpus" >/dev/null ;;
    pulih-base) "$pulih_base" repo backup --repo "$r" --agent-key "$work/pulih-base.key" --cache-dir "$run/cache/pulih-base" --json "$corpus" >/dev/null ;;
    restic) restic -r "$r" backup -q "$corpus" ;;
    borg) borg create --compression zstd,3 "$r::s$n" "$corpus" ;;
    rustic) rustic $(rustic_repo) backup "$corpus" >/dev/null 2>&1 ;;
    bupstash) BUPSTASH_REPOSITORY=$r BUPSTASH_KEY=$work/bupstash.key bupstash put "$corpus" >/dev/null ;;
  esac
}
restore() {
  local r o=$run/out/$1; r=$(repo $1)
  rm -rf "$o"; mkdir -p "$o"
  case $1 in
    # --keep-set-id: the peers restore set-ID bits, and the check below compares modes.
    pulih) "$pulih" repo restore --repo "$r" --passphrase-file "$work/pass" latest --target "$o" --keep-set-id >/dev/null ;;
    pulih-base) "$pulih_base" repo restore --repo "$r" --passphrase-file "$work/pass" latest --target "$o" \
                  $("$pulih_base" repo restore --help | grep -q -- --keep-set-id && echo --keep-set-id) >/dev/null ;;
    restic) restic -r "$r" restore latest --target "$o" -q ;;
    borg) (cd "$o" && borg extract "$r::s$2") ;;
    rustic) rustic $(rustic_repo) restore latest "$o" >/dev/null 2>&1 ;;
    bupstash) id=$(BUPSTASH_REPOSITORY=$r BUPSTASH_KEY=$work/bupstash.key bupstash list --format jsonl1 | tail -1 | python3 -c 'import json,sys; print(json.loads(sys.stdin.read())["id"])')
              BUPSTASH_REPOSITORY=$r BUPSTASH_KEY=$work/bupstash.key bupstash get "id=$id" | tar -x -C "$o" ;;
  esac
}
restored_root() { # where the corpus lands under the restore dir
  case $1 in pulih|pulih-base|restic|rustic|borg) echo "$run/out/$1$corpus" ;; bupstash) echo "$run/out/$1" ;; esac
}
repo_bytes() { # tool: bytes in its repository (s3: Garage's count of its bucket)
  if [ $store = s3 ]; then
    curl -sf -H "Authorization: Bearer $admin_token" "http://127.0.0.1:$admin_port/v2/GetBucketInfo?globalAlias=bench-$1" \
      | python3 -c 'import json,sys; print(json.load(sys.stdin)["bytes"])'
  else
    du -sb "$run/repos/$1" | cut -f1
  fi
}
garage_ticks() { if [ -n "$garage_pid" ]; then awk '{print $14 + $15}' "/proc/$garage_pid/stat"; else echo 0; fi; }

export -f init backup restore repo rustic_repo
export work run corpus pulih pulih_base
rows=(); notes=()
# Wall time from the clock in milliseconds (time's %e has 10 ms steps, too
# coarse for a no-change run); CPU time (user + sys, the tool and its
# children) and peak RSS from time; in s3 mode Garage's CPU time over the
# phase beside it (pulih-netem's is not counted).
measure() { # phase tool fn args...
  local phase=$1 tool=$2; shift 2
  if [ -n "$cold" ]; then sync; echo 3 > /proc/sys/vm/drop_caches
  else sync; cat $(find "$corpus" -type f | head -2000) >/dev/null 2>&1 || true; fi
  local before; before=$(repo_bytes $tool)
  local g0; g0=$(garage_ticks)
  local t0 t1; t0=$(date +%s%N)
  /usr/bin/time -f "%e %M %U %S" -o "$work/time" bash -c '"$@"' _ "$@"
  t1=$(date +%s%N)
  local rss user sys; read -r _ rss user sys < "$work/time"
  local g1; g1=$(garage_ticks)
  local after; after=$(repo_bytes $tool)
  python3 -c "
wall = ($t1 - $t0) / 1e9
print(f'{wall:.3f} $rss {$user + $sys:.2f} $user $sys {$bytes / 1e6 / max(wall, 0.001):.0f} {($g1 - $g0) / $(getconf CLK_TCK):.2f}')" > "$work/time"
  local wall cpu mbs gcpu; read -r wall rss cpu user sys mbs gcpu < "$work/time"
  rows+=("| $phase | $tool | $wall | $cpu | $user | $sys | $mbs | $((rss / 1024)) | $((after - before)) |${gcol:+ $gcpu |}")
  echo "${rows[-1]}" >&2
}
# A no-change run takes tens of milliseconds, where one sample is mostly
# noise: run it five times per tool (borg needs a new archive name each
# time) and keep the run with the median wall time (and the largest RSS).
median_of_5() { # tool
  local runs=() rss=0 k before after
  before=$(repo_bytes $1)
  for k in 3 3b 3c 3d 3e; do
    measure "no-change incremental" $1 backup $1 $k
    unset 'rows[-1]'
    runs+=("$(cat "$work/time")")
    local r; r=$(cut -d' ' -f2 "$work/time"); [ "$r" -gt "$rss" ] && rss=$r
  done
  after=$(repo_bytes $1)
  local wall cpu user sys mbs gcpu
  read -r wall _ cpu user sys mbs gcpu < <(printf '%s\n' "${runs[@]}" | sort -g | sed -n 3p)
  rows+=("| no-change incremental (median of 5) | $1 | $wall | $cpu | $user | $sys | $mbs | $((rss / 1024)) | $(((after - before) / 5)) |${gcol:+ $gcpu |}")
  echo "${rows[-1]} (runs: $(printf '%s\n' "${runs[@]}" | cut -d' ' -f1 | paste -sd' '))" >&2
}

load0=$(cut -d' ' -f1-3 /proc/loadavg)
for t in "${active[@]}"; do init $t; done
for t in "${active[@]}"; do measure "initial backup" $t backup $t 1; done
last=1
if [ $phases = all ]; then
  python3 "$here/make_corpus.py" mutate "$corpus" --percent 1 --seed 7
  for t in "${active[@]}"; do measure "1% incremental" $t backup $t 2; done
  for t in "${active[@]}"; do median_of_5 $t; done
  last=3
fi
[ -n "$proxy" ] && endpoint=$proxy   # --phases restore: only the restore through pulih-netem
for t in "${active[@]}"; do
  measure "full restore" $t restore $t $last
  if diff -rq --no-dereference "$corpus" "$(restored_root $t)" >/dev/null; then echo "restore $t: identical" >&2; else echo "restore $t: DIFFERS" >&2; rows+=("| full restore | $t | RESTORE DIFFERS | | | |"); fi
  notes+=("- $t: $(python3 "$here/corpus/stats.py" compare "$corpus" "$(restored_root $t)" || true)")
done

if [ $store = s3 ]; then
  setup="s3: Garage $garage_version, one node on 127.0.0.1 (sqlite metadata, replication_factor 1, compression off, one bucket per tool)"
  if [ -z "$proxy" ]; then setup+="; every phase direct to Garage"
  elif [ $phases = all ]; then setup+="; every phase through pulih-netem (rtt ${rtt:-0}, rate ${rate:-unlimited})"
  else setup+="; initial backup direct to Garage, full restore through pulih-netem (rtt ${rtt:-0}, rate ${rate:-unlimited})"; fi
  [ ${#no_s3[@]} -gt 0 ] && setup+="; skipped (no S3 backend): ${no_s3[*]}"
else
  setup="file: a directory beside the corpus"
fi
ztext=$corpus/teks/0000.txt; zlabel=text
ddfile=$(find "$corpus/besar" -type f 2>/dev/null | head -1 || true)
if [ ! -f "$ztext" ] || [ -z "$ddfile" ]; then
  ddfile=$(find "$corpus" -type f -printf '%s %p\n' | sort -n | tail -1 | cut -d' ' -f2-)
  ztext=$ddfile; zlabel="the corpus's largest file, ${ddfile#"$corpus"/}"
fi
{
  echo "Run $(date -u +%Y-%m-%dT%H:%MZ) on $(nproc) cores, corpus $bytes bytes ($(find "$corpus" -type f | wc -l) files), load before: $load0, after: $(cut -d' ' -f1-3 /proc/loadavg)"
  echo
  echo "Corpus: $corpus_kind. Store: $setup. Written to: $scratch. Phases: $([ $phases = all ] && echo "all" || echo "initial backup and full restore only"). Page cache: $([ -n "$cold" ] && echo "dropped before every timed command (--cold)" || echo "warm (the corpus's first 2000 files read before every timed command)")."
  echo
  echo "Versions: pulih $("$pulih" --version | cut -d' ' -f2)$(for t in "${active[@]}"; do case $t in pulih-base) echo -n ", pulih-base $("$pulih_base" --version | cut -d' ' -f2) ($pulih_base)";; restic) echo -n ", $(restic version | cut -d' ' -f1-2)";; borg) echo -n ", $(borg --version)";; rustic) echo -n ", $(rustic --version)";; bupstash) echo -n ", $(bupstash version)";; esac; done)$([ $store = s3 ] && echo -n ", garage $garage_version")$([ -n "$proxy" ] && echo -n ", pulih-netem ($netem)")"
  echo
  echo "| phase | tool | wall s | cpu s | user s | sys s | MB/s | peak RSS MiB | repo bytes added |${gcol:+ garage cpu s |}"
  echo "|---|---|---|---|---|---|---|---|---|${gcol:+---|}"
  printf '%s\n' "${rows[@]}"
  echo
  echo "Restored metadata beside diff -r's contents (bench/corpus/stats.py compare: type, mode, owner, size, mtime, link target):"
  echo
  printf '%s\n' "${notes[@]}"
  echo
  echo "$corpus_stats"
  echo
  echo "Machine limits (one core), measured after the runs:"
  echo "- AES-256-GCM: $(openssl speed -evp aes-256-gcm -seconds 1 -bytes 1048576 2>/dev/null | awk '/^AES-256-GCM|^aes-256-gcm/ {print $2}') kB/s (openssl, 1 MiB blocks)"
  echo "- zstd -3 compress: $(zstd -b3 -i2 "$ztext" 2>&1 | tr '\r' '\n' | grep -o '[0-9.]* MB/s' | tail -2 | head -1) (zstd CLI, $zlabel)"
  echo "- disk read: $(dd if="$ddfile" of=/dev/null bs=4M iflag=direct 2>&1 | tail -1)"
  echo
  echo "Pulih's stages on one core over the whole corpus in memory (core/examples/limits.rs):"
  echo
  if [ "$limits" = none ]; then echo "(not measured in this run: PULIH_LIMITS_BIN=none)"; : > "$work/limits.txt"
  else "$limits" "$corpus" "$(nproc)" | tee "$work/limits.txt"; fi
  bound=$(grep -o 'cores.*: [0-9]* MB/s' "$work/limits.txt" | grep -o '[0-9]* MB/s' | cut -d' ' -f1 || true)
  got=$(printf '%s\n' "${rows[@]}" | awk -F'|' '$2 ~ /initial backup/ && $3 == " pulih " {gsub(/ /,"",$8); print $8}')
  if [ -n "$got" ] && [ -n "$bound" ]; then echo "- pulih's initial backup: $got MB/s, $((100 * got / bound)) % of that bound"; fi
} > "$work/result.md"
mkdir -p "$here/results"; cp "$work/result.md" "$here/results/$(date -u +%Y-%m-%dT%H%M%S).md"
cat "$work/result.md"
