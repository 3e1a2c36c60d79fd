#!/usr/bin/env bash
# Drill benchmark (issue 5): RTO of a drill of about 1 GiB, broken down by
# step. A mixed corpus (bench/make_corpus.py) is backed up as server
# `bench`; `pulih drc drill` then restores it, loads nothing (the image is
# the DRC's own busybox image), starts one container serving the restored
# data on an internal network, checks it over HTTP and tears down.
# Usage: bench/drill_bench.sh [BYTES] [RUNS] [--store file|s3]
#   (default: 1 GiB, 3 runs, a filesystem DRC store; --store s3 puts the
#   repository in a single-node Garage on loopback, bench/garage.sh, which
#   the drill then restores from, as a DRC on an S3 store does; --store
#   gateway puts the append-only gateway, bench/gateway.sh, in front of
#   that Garage: the walidata makes the repository and the server's key
#   with a reader credential, the backup goes through with the server's
#   agent credential, the drill with the DRC executor's)
set -euo pipefail
cd "$(dirname "$0")/.."
store=file; pos=()
while [ $# -gt 0 ]; do
  case $1 in
    --store) store=$2; shift 2 ;;
    *) pos+=("$1"); shift ;;
  esac
done
case $store in file|s3|gateway) ;; *) echo "--store is file, s3 or gateway" >&2; exit 2 ;; esac
size=${pos[0]:-1073741824}
runs=${pos[1]:-3}
cargo build --release -q -p pulih --bin pulih
pulih=$PWD/target/release/pulih
bash tests/images/busybox-app.sh pulih-test/busybox:1
work=$(mktemp -d /var/tmp/pulih-drill-bench.XXXXXX)
. bench/garage.sh
. bench/gateway.sh
trap 'gateway_stop; garage_stop; rm -rf "$work"' EXIT
repo=$work/drc; target=$repo
# Who runs each step: the walidata (init, key), the agent, the executor.
as_walidata=(); as_agent=(); as_executor=()
if [ $store != file ]; then
  command -v garage >/dev/null || { echo "--store $store needs garage (../shared/TOOLS.md)" >&2; exit 1; }
  garage_start "$work/garage" drc
  repo="s3://drc/dkis?endpoint=http://$garage_endpoint&region=garage"; target=$repo
fi
if [ $store = gateway ]; then
  gateway_start "$work/gw" drc dkis drc
  for who in "reader dkis walidata" "agent dkis/bench agent" "executor drc executor"; do
    set -- $who; gateway_credential "$1" "$2" "$work/cred-$3"
  done
  read -r -a as_walidata <<< "$(gateway_env "$work/cred-walidata")"
  read -r -a as_agent <<< "$(gateway_env "$work/cred-agent")"
  read -r -a as_executor <<< "$(gateway_env "$work/cred-executor")"
  target="s3://pulih?endpoint=$gw_endpoint&ca=$gw_ca"
  repo="s3://pulih/dkis/repo?endpoint=$gw_endpoint&ca=$gw_ca"
fi
python3 bench/make_corpus.py build "$work/data" --size "$size" --seed 7 >/dev/null
echo "<p>rows: 3</p>" > "$work/data/index.html"
(umask 077; echo "bench walidata" > "$work/pass")
env "${as_walidata[@]}" "$pulih" repo init --repo "$repo" --passphrase-file "$work/pass" >/dev/null
env "${as_walidata[@]}" "$pulih" repo add-agent-key --repo "$repo" --passphrase-file "$work/pass" \
  --out "$work/agent.key" --server bench >/dev/null
env "${as_agent[@]}" "$pulih" repo backup --repo "$repo" --agent-key "$work/agent.key" --tag server=bench "$work/data" >/dev/null
mkdir -p "$work/manifests"
cat > "$work/manifests/bench.yaml" <<YAML
apiVersion: pulih.io/v1alpha1
kind: DrcTarget
metadata: {name: drc}
spec: {url: "$target"}
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
echo "# $(nproc) cores, $(uname -r), pulih $(git rev-parse --short HEAD), $(du -sb "$work/data" | cut -f1) bytes in $(find "$work/data" -type f | wc -l) files, store: $(case $store in s3) echo "Garage $garage_version on loopback ($repo)" ;; gateway) echo "the gateway (https, loopback) in front of Garage $garage_version ($repo)" ;; *) echo "filesystem ($repo)" ;; esac)" | tee "$out"
for i in $(seq "$runs"); do
  sync; echo 3 > /proc/sys/vm/drop_caches 2>/dev/null || true
  t0=$(date +%s.%N)
  env "${as_executor[@]}" "$pulih" drc drill bench -f "$work/manifests" --repo "$repo" --passphrase-file "$work/pass" \
    --scratch-dir "$work/scratch" --json > "$work/report.json"
  wall=$(echo "$(date +%s.%N) - $t0" | bc)
  python3 - "$work/report.json" "$wall" <<'PY' | tee -a "$out"
import json, sys
r = json.load(open(sys.argv[1]))
steps = " ".join(f"{s['name'].replace(' ', '_')}={s['duration_s']:.2f}" for s in r["steps"])
print(f"{r['state']} command={float(sys.argv[2]):.2f}s rto={r.get('rto_seconds') or 0:.2f}s restored={r['bytes_restored']} {steps}")
PY
done
