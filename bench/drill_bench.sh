#!/usr/bin/env bash
# Drill benchmark (issue 5): RTO of a drill of about 1 GiB, broken down by
# step. A mixed corpus (bench/make_corpus.py) is backed up as server
# `bench`; `pulih drc drill` then restores it, loads nothing (the image is
# the DRC's own busybox image), starts one container serving the restored
# data on an internal network, checks it over HTTP and tears down.
# Usage: bench/drill_bench.sh [BYTES] [RUNS]   (default: 1 GiB, 3 runs)
set -euo pipefail
cd "$(dirname "$0")/.."
size=${1:-1073741824}
runs=${2:-3}
cargo build --release -q -p pulih --bin pulih
pulih=$PWD/target/release/pulih
bash tests/images/busybox-app.sh pulih-test/busybox:1
work=$(mktemp -d /var/tmp/pulih-drill-bench.XXXXXX)
trap 'rm -rf "$work"' EXIT
python3 bench/make_corpus.py build "$work/data" --size "$size" --seed 7 >/dev/null
echo "<p>rows: 3</p>" > "$work/data/index.html"
(umask 077; echo "bench walidata" > "$work/pass")
"$pulih" repo init --repo "$work/drc" --passphrase-file "$work/pass" --agent-key-out "$work/agent.key" >/dev/null
"$pulih" repo backup --repo "$work/drc" --agent-key "$work/agent.key" --tag server=bench "$work/data" >/dev/null
mkdir -p "$work/manifests"
cat > "$work/manifests/bench.yaml" <<YAML
apiVersion: pulih.io/v1alpha1
kind: DrcTarget
metadata: {name: drc}
spec: {url: $work/drc}
---
apiVersion: pulih.io/v1alpha1
kind: PerangkatDaerah
metadata: {name: dkis}
spec:
  code: DKIS
  name: Dinas Komunikasi dan Informatika
  walidata: {name: Kepala Dinas, contact: walidata@dkis.example}
  drcTarget: drc
  drills: {consent: true}
---
apiVersion: pulih.io/v1alpha1
kind: Server
metadata: {name: bench}
spec:
  perangkatDaerah: dkis
  location: pusat-data
  centralization: {status: centralized}
  sources: [{path: $work/data}]
  rto: 60s
  recovery:
    containers:
      - name: app
        image: pulih-test/busybox:1
        command: [httpd, -f, -p, "8080", -h, /data]
        volumes: [{source: $work/data, target: /data}]
    healthChecks:
      - name: app-serves-the-data
        http: {container: app, port: 8080, path: /index.html, expectBodyContains: "rows: 3"}
YAML
out=bench/results/drill-$(date -u +%Y%m%dT%H%M%SZ).txt
mkdir -p bench/results
echo "# $(nproc) cores, $(uname -r), pulih $(git rev-parse --short HEAD), $(du -sb "$work/data" | cut -f1) bytes in $(find "$work/data" -type f | wc -l) files" | tee "$out"
for i in $(seq "$runs"); do
  sync; echo 3 > /proc/sys/vm/drop_caches 2>/dev/null || true
  t0=$(date +%s.%N)
  "$pulih" drc drill bench -f "$work/manifests" --repo "$work/drc" --passphrase-file "$work/pass" \
    --scratch-dir "$work/scratch" --json > "$work/report.json"
  wall=$(echo "$(date +%s.%N) - $t0" | bc)
  python3 - "$work/report.json" "$wall" <<'PY' | tee -a "$out"
import json, sys
r = json.load(open(sys.argv[1]))
steps = " ".join(f"{s['name'].replace(' ', '_')}={s['duration_s']:.2f}" for s in r["steps"])
print(f"{r['state']} command={float(sys.argv[2]):.2f}s rto={r.get('rto_seconds') or 0:.2f}s restored={r['bytes_restored']} {steps}")
PY
done
