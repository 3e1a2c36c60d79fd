#!/usr/bin/env bash
# Scale benchmark of the control plane: one controller on SQLite, N simulated
# agents heartbeating every 15 s (p99 latency), then the compliance view.
# Usage: bench/control_bench.sh [N ...]   (default: 1000 5000 10000 20000)
set -euo pipefail
cd "$(dirname "$0")/.."
cargo build --release -q -p pulih --bin pulih
cargo build --release -q -p pulih-controller --example heartbeat_load
sizes=("${@:-1000 5000 10000 20000}")
out=bench/results/control-$(date -u +%Y%m%dT%H%M%SZ).txt
mkdir -p bench/results
echo "# $(nproc) cores, $(uname -r), pulih $(git rev-parse --short HEAD)" | tee "$out"
for n in ${sizes[@]}; do
  dir=$(mktemp -d)
  printf 'state_dir = "%s"\nlisten = "127.0.0.1:0"\npusat_data_subnets = ["10.0.0.0/8"]\n# every simulated agent is on loopback: one address\nrate_limit_per_second = 0\n' "$dir/state" > "$dir/c.toml"
  ./target/release/pulih controller --config "$dir/c.toml" > "$dir/out" 2> "$dir/log" &
  pid=$!
  for _ in $(seq 50); do grep -q controller: "$dir/out" 2>/dev/null && break; sleep 0.1; done
  url=$(sed -n 's/^controller: //p' "$dir/out")
  ./target/release/examples/heartbeat_load "$url" "$dir/state/admin.token" "$n" 60 15 | tee -a "$out"
  kill "$pid"; wait "$pid" 2>/dev/null || true
  rm -rf "$dir"
done
