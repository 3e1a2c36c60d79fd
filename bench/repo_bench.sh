#!/usr/bin/env bash
# Side-by-side benchmark of the replication engine against restic and borg
# (and rustic, bupstash when installed): initial backup, a 1% incremental,
# a no-change incremental, and a full restore, on one deterministic corpus.
#
#   bench/repo_bench.sh [--size BYTES] [--workdir DIR] [--tools pulih,restic,borg,rustic,bupstash] [--runs N]
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
args=("$@")
while [ $# -gt 0 ]; do
  case $1 in
    --size) size=$2; shift 2 ;; --workdir) work=$2; shift 2 ;; --tools) tools=$2; shift 2 ;;
    --runs) runs=$2; shift 2 ;;
    *) echo "unknown option $1" >&2; exit 2 ;;
  esac
done
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
# Pulih's own building blocks timed on one core (core/examples/limits.rs).
limits=${PULIH_LIMITS_BIN:-$here/../target/release/examples/limits}
[ -x "$limits" ] || (cd "$here/.." && cargo build --release -p pulih-core --example limits)
corpus=$work/corpus
mkdir -p "$work"
if [ ! -f "$work/pristine.size" ] || [ "$(cat "$work/pristine.size")" != "$size" ]; then
  rm -rf "$work/pristine"; python3 "$here/make_corpus.py" build "$work/pristine" --size "$size"; echo "$size" > "$work/pristine.size"
fi
if [ -e "$corpus" ] || [ -e "$work/out" ] || [ -e "$work/repos" ]; then
  rm -rf "$corpus" "$work/repos" "$work/out" "$work/cache"
  # This disk's ext4 has no journal: for 60 s after a delete (300 s while
  # the inode table is dirty) it will not reuse a deleted inode, and each
  # new file scans past them (perf: 70 % of a restore's time in
  # recently_deleted after an rm -rf of earlier runs' trees). Let the
  # window pass, so no tool's restore pays for the previous run's cleanup.
  sync; echo "waiting 65 s after deleting the previous run's files" >&2; sleep 65
fi
cp -a "$work/pristine" "$corpus"   # every run starts from the same bytes
rm -f "$work/pulih.key" "$work/pulih-base.key" "$work/bupstash.key"; mkdir -p "$work/repos" "$work/out" "$work/cache"
export RESTIC_PASSWORD=bench BORG_PASSPHRASE=bench RUSTIC_PASSWORD=bench BORG_UNKNOWN_UNENCRYPTED_REPO_ACCESS_IS_OK=yes
echo bench > "$work/pass"; chmod 600 "$work/pass"
bytes=$(du -sb "$corpus" | cut -f1)
have() { case ",$tools," in *,$1,*) command -v "$2" >/dev/null 2>&1 ;; *) return 1 ;; esac; }
active=()
pulih_base=${PULIH_BASE_BIN:-}
for t in pulih pulih-base restic borg rustic bupstash; do
  bin=$t; [ $t = pulih ] && bin=$pulih; [ $t = pulih-base ] && bin=${pulih_base:-/nonexistent}
  if have $t "$bin"; then active+=($t); else echo "skipped: $t (not installed or not selected)" >&2; fi
done

init() {
  local r=$work/repos/$1
  case $1 in
    pulih) "$pulih" repo init --repo "$r" --passphrase-file "$work/pass" --agent-key-out "$work/pulih.key" >/dev/null ;;
    pulih-base) "$pulih_base" repo init --repo "$r" --passphrase-file "$work/pass" --agent-key-out "$work/pulih-base.key" >/dev/null ;;
    restic) restic init --repository-version 2 -r "$r" -q ;;
    borg) borg init -e repokey-blake2 "$r" ;;
    rustic) rustic -r "$r" init >/dev/null 2>&1 ;;
    bupstash) bupstash new-key -o "$work/bupstash.key"; BUPSTASH_REPOSITORY=$r bupstash init ;;
  esac
}
backup() {
  local r=$work/repos/$1 n=$2
  case $1 in
    pulih) "$pulih" repo backup --repo "$r" --agent-key "$work/pulih.key" --cache-dir "$work/cache/pulih" --json "$corpus" >/dev/null ;;
    pulih-base) "$pulih_base" repo backup --repo "$r" --agent-key "$work/pulih-base.key" --cache-dir "$work/cache/pulih-base" --json "$corpus" >/dev/null ;;
    restic) restic -r "$r" backup -q "$corpus" ;;
    borg) borg create --compression zstd,3 "$r::s$n" "$corpus" ;;
    rustic) rustic -r "$r" backup "$corpus" >/dev/null 2>&1 ;;
    bupstash) BUPSTASH_REPOSITORY=$r BUPSTASH_KEY=$work/bupstash.key bupstash put "$corpus" >/dev/null ;;
  esac
}
restore() {
  local r=$work/repos/$1 o=$work/out/$1
  rm -rf "$o"; mkdir -p "$o"
  case $1 in
    pulih) "$pulih" repo restore --repo "$r" --passphrase-file "$work/pass" latest --target "$o" >/dev/null ;;
    pulih-base) "$pulih_base" repo restore --repo "$r" --passphrase-file "$work/pass" latest --target "$o" >/dev/null ;;
    restic) restic -r "$r" restore latest --target "$o" -q ;;
    borg) (cd "$o" && borg extract "$r::s3") ;;
    rustic) rustic -r "$r" restore latest "$o" >/dev/null 2>&1 ;;
    bupstash) id=$(BUPSTASH_REPOSITORY=$r BUPSTASH_KEY=$work/bupstash.key bupstash list --format jsonl1 | tail -1 | python3 -c 'import json,sys; print(json.loads(sys.stdin.read())["id"])')
              BUPSTASH_REPOSITORY=$r BUPSTASH_KEY=$work/bupstash.key bupstash get "id=$id" | tar -x -C "$o" ;;
  esac
}
restored_root() { # where the corpus lands under the restore dir
  case $1 in pulih|pulih-base|restic|rustic|borg) echo "$work/out/$1$corpus" ;; bupstash) echo "$work/out/$1" ;; esac
}

export -f init backup restore
export work corpus pulih pulih_base
rows=()
measure() { # phase tool fn args...
  local phase=$1 tool=$2; shift 2
  sync; cat $(find "$corpus" -type f | head -2000) >/dev/null 2>&1 || true
  local before; before=$(du -sb "$work/repos/$tool" | cut -f1)
  # Wall time from the clock in milliseconds (time's %e has 10 ms steps,
  # too coarse for a no-change run); peak RSS from time's %M.
  local t0 t1; t0=$(date +%s%N)
  /usr/bin/time -f "%e %M" -o "$work/time" bash -c '"$@"' _ "$@"
  t1=$(date +%s%N)
  read -r _ rss < "$work/time"
  wall=$(python3 -c "print(f'{($t1 - $t0) / 1e9:.3f}')")
  echo "$wall $rss" > "$work/time"
  local after; after=$(du -sb "$work/repos/$tool" | cut -f1)
  local mbs; mbs=$(python3 -c "print(f'{$bytes/1e6/max($wall,0.001):.0f}')")
  rows+=("| $phase | $tool | $wall | $mbs | $((rss / 1024)) | $((after - before)) |")
  echo "${rows[-1]}" >&2
}

load0=$(cut -d' ' -f1-3 /proc/loadavg)
for t in "${active[@]}"; do init $t; done
for t in "${active[@]}"; do measure "initial backup" $t backup $t 1; done
python3 "$here/make_corpus.py" mutate "$corpus" --percent 1 --seed 7
for t in "${active[@]}"; do measure "1% incremental" $t backup $t 2; done
# A no-change run takes tens of milliseconds, where one sample is mostly
# noise: run it five times per tool (borg needs a new archive name each
# time) and keep the median wall time (and the largest RSS).
median_of_5() { # tool
  local walls=() rss=0 k w r before after
  before=$(du -sb "$work/repos/$1" | cut -f1)
  for k in 3 3b 3c 3d 3e; do
    measure "no-change incremental" $1 backup $1 $k
    unset 'rows[-1]'
    read -r w r < "$work/time"; walls+=("$w"); [ "$r" -gt "$rss" ] && rss=$r
  done
  after=$(du -sb "$work/repos/$1" | cut -f1)
  local wall; wall=$(printf '%s\n' "${walls[@]}" | sort -g | sed -n 3p)
  local mbs; mbs=$(python3 -c "print(f'{$bytes/1e6/max($wall,0.001):.0f}')")
  rows+=("| no-change incremental (median of 5) | $1 | $wall | $mbs | $((rss / 1024)) | $(((after - before) / 5)) |")
  echo "${rows[-1]} (runs: ${walls[*]})" >&2
}
for t in "${active[@]}"; do median_of_5 $t; done
for t in "${active[@]}"; do
  measure "full restore" $t restore $t
  if diff -rq "$corpus" "$(restored_root $t)" >/dev/null; then echo "restore $t: identical" >&2; else echo "restore $t: DIFFERS" >&2; rows+=("| full restore | $t | RESTORE DIFFERS | | | |"); fi
done

{
  echo "Run $(date -u +%Y-%m-%dT%H:%MZ) on $(nproc) cores, corpus $bytes bytes ($(find "$corpus" -type f | wc -l) files), load before: $load0, after: $(cut -d' ' -f1-3 /proc/loadavg)"
  echo
  echo "Versions: pulih $("$pulih" --version | cut -d' ' -f2)$(for t in "${active[@]}"; do case $t in pulih-base) echo -n ", pulih-base $("$pulih_base" --version | cut -d' ' -f2) ($pulih_base)";; restic) echo -n ", $(restic version | cut -d' ' -f1-2)";; borg) echo -n ", $(borg --version)";; rustic) echo -n ", $(rustic --version)";; bupstash) echo -n ", $(bupstash version)";; esac; done)"
  echo
  echo "| phase | tool | wall s | MB/s | peak RSS MiB | repo bytes added |"
  echo "|---|---|---|---|---|---|"
  printf '%s\n' "${rows[@]}"
  echo
  echo "Machine limits (one core), measured after the runs:"
  echo "- AES-256-GCM: $(openssl speed -evp aes-256-gcm -seconds 1 -bytes 1048576 2>/dev/null | awk '/^AES-256-GCM|^aes-256-gcm/ {print $2}') kB/s (openssl, 1 MiB blocks)"
  echo "- zstd -3 compress: $(zstd -b3 -i2 "$corpus/teks/0000.txt" 2>&1 | tr '\r' '\n' | grep -o '[0-9.]* MB/s' | tail -2 | head -1) (zstd CLI, text)"
  echo "- disk read: $(dd if="$(find "$corpus/besar" -type f | head -1)" of=/dev/null bs=4M iflag=direct 2>&1 | tail -1)"
  echo
  echo "Pulih's stages on one core over the whole corpus in memory (core/examples/limits.rs):"
  echo
  "$limits" "$corpus" "$(nproc)" | tee "$work/limits.txt"
  bound=$(grep -o 'cores.*: [0-9]* MB/s' "$work/limits.txt" | grep -o '[0-9]* MB/s' | cut -d' ' -f1)
  got=$(printf '%s\n' "${rows[@]}" | awk -F'|' '$2 ~ /initial backup/ && $3 ~ /pulih/ {gsub(/ /,"",$5); print $5}')
  if [ -n "$got" ] && [ -n "$bound" ]; then echo "- pulih's initial backup: $got MB/s, $((100 * got / bound)) % of that bound"; fi
} > "$work/result.md"
mkdir -p "$here/results"; cp "$work/result.md" "$here/results/$(date -u +%Y-%m-%dT%H%M%S).md"
cat "$work/result.md"
