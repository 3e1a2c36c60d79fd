# Sourced by the benchmark scripts: a single-node Garage on loopback.
#
#   garage_start DIR BUCKET...   starts it under DIR (random ports, sqlite
#                                metadata, replication_factor 1, compression
#                                off), makes a key allowed to read and write
#                                every BUCKET and exports AWS_ACCESS_KEY_ID,
#                                AWS_SECRET_ACCESS_KEY, AWS_DEFAULT_REGION;
#                                sets garage_pid, garage_version and
#                                garage_endpoint (127.0.0.1:PORT), and
#                                admin_port, admin_token (its admin API).
#   garage_stop                  stops it.
garage_pid=; garage_version=; garage_endpoint=; admin_port=; admin_token=
free_ports() { # N: N distinct free loopback ports, below the kernel's
  # ephemeral range (so no client connection takes one before Garage binds it)
  python3 -c 'import random,socket,sys
lo = int(open("/proc/sys/net/ipv4/ip_local_port_range").read().split()[0])
got = []
while len(got) < int(sys.argv[1]):
    p = random.randrange(10000, lo)
    s = socket.socket()
    try: s.bind(("127.0.0.1", p))
    except OSError: continue
    finally: s.close()
    if p not in got: got.append(p)
print(*got)' "$1"
}
gcli() { garage -c "$garage_dir/garage.toml" "$@"; }
garage_start() {
  garage_dir=$1; shift
  local g=$garage_dir; mkdir -p "$g/meta" "$g/data"
  local s3_port rpc_port node keys i
  garage_version=$(garage --version | awk '{print $2}' | sed 's/^cargo://; s/^v//')
  read -r s3_port rpc_port admin_port < <(free_ports 3)
  admin_token=$(openssl rand -hex 32)
  # compression off: the tools send encrypted (incompressible) data, and
  # Garage's zstd would spend the shared cores on it for nothing.
  cat > "$g/garage.toml" <<TOML
metadata_dir = "$g/meta"
data_dir = "$g/data"
db_engine = "sqlite"
replication_factor = 1
compression_level = "none"
rpc_bind_addr = "127.0.0.1:$rpc_port"
rpc_public_addr = "127.0.0.1:$rpc_port"
rpc_secret = "$(openssl rand -hex 32)"
[s3_api]
s3_region = "garage"
api_bind_addr = "127.0.0.1:$s3_port"
root_domain = ".s3.garage.localhost"
[admin]
api_bind_addr = "127.0.0.1:$admin_port"
admin_token = "$admin_token"
TOML
  chmod 600 "$g/garage.toml"
  garage -c "$g/garage.toml" server > "$g/server.log" 2>&1 &
  garage_pid=$!
  # Up when its RPC port listens; the first layout call may still meet a
  # server finishing its start (as test-support/src/garage.rs does it).
  for _ in $(seq 150); do (exec 3<>"/dev/tcp/127.0.0.1/$rpc_port") 2>/dev/null && break; sleep 0.2; done
  node=$(gcli node id -q | cut -d@ -f1)
  for i in $(seq 50); do gcli layout assign -z dc1 -c 1G "$node" >/dev/null 2>&1 && break; [ "$i" = 50 ] && { cat "$g/server.log" >&2; exit 1; }; sleep 0.2; done
  gcli layout apply --version 1 >/dev/null
  keys=$(gcli key create bench)
  AWS_ACCESS_KEY_ID=$(awk '/Key ID:/ {print $NF}' <<< "$keys")
  AWS_SECRET_ACCESS_KEY=$(awk '/Secret key:/ {print $NF}' <<< "$keys")
  export AWS_ACCESS_KEY_ID AWS_SECRET_ACCESS_KEY AWS_DEFAULT_REGION=garage
  for b in "$@"; do
    gcli bucket create "$b" >/dev/null
    gcli bucket allow --read --write --owner "$b" --key bench >/dev/null
  done
  garage_endpoint=127.0.0.1:$s3_port
}
garage_stop() { if [ -n "$garage_pid" ]; then kill "$garage_pid" 2>/dev/null || true; wait "$garage_pid" 2>/dev/null || true; garage_pid=; fi; }
