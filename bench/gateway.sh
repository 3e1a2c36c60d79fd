# Sourced by the benchmark scripts, after bench/garage.sh and garage_start:
# the append-only gateway (`pulih drc serve`) in front of that Garage.
#
#   gateway_start DIR BUCKET AGENCY [EXECUTOR]
#                    starts it under DIR: HTTPS on a random loopback port
#                    with a throwaway CA (DIR/ca.pem), upstream BUCKET of
#                    the running Garage, one agency AGENCY (granting DRC
#                    target EXECUTOR, when given); sets gw_pid,
#                    gw_endpoint (https://127.0.0.1:PORT), gw_ca, gw_key
#                    (the gateway key, for `pulih drc credential`).
#   gateway_credential ROLE NAME OUT   `pulih drc credential --ROLE NAME`
#                    into directory OUT.
#   gateway_env OUT  prints the environment (NAME=VALUE words) that makes
#                    pulih use the credential in OUT.
#   gateway_stop     stops it.
# Needs $pulih (the binary) and openssl.
gw_pid=; gw_endpoint=; gw_ca=; gw_key=
gateway_start() {
  local d=$1 bucket=$2 agency=$3 executor=${4:-}
  mkdir -p "$d"
  openssl req -x509 -newkey ec -pkeyopt ec_paramgen_curve:P-256 -nodes -days 1 -subj /CN=bench-ca \
    -keyout "$d/ca.key" -out "$d/ca.pem" 2>/dev/null
  openssl req -newkey ec -pkeyopt ec_paramgen_curve:P-256 -nodes -subj /CN=127.0.0.1 \
    -keyout "$d/gw.key" -out "$d/gw.csr" 2>/dev/null
  printf 'subjectAltName=IP:127.0.0.1\n' > "$d/san.ext"
  openssl x509 -req -in "$d/gw.csr" -CA "$d/ca.pem" -CAkey "$d/ca.key" -CAcreateserial -days 1 \
    -extfile "$d/san.ext" -out "$d/gw.pem" 2>/dev/null
  chmod 600 "$d/gw.key"
  (umask 077
   printf '%s\n' "$AWS_ACCESS_KEY_ID" > "$d/up-id"
   printf '%s\n' "$AWS_SECRET_ACCESS_KEY" > "$d/up-secret")
  "$pulih" drc gateway-key --out "$d/gw-key" 2>/dev/null
  cat > "$d/gateway.toml" <<TOML
listen = "127.0.0.1:0"
tls_cert_file = "$d/gw.pem"
tls_key_file = "$d/gw.key"
state_dir = "$d/gw-state"
key_file = "$d/gw-key"
upstream = "s3://$bucket/?endpoint=http://$garage_endpoint&region=garage&unsigned_payload=true"
upstream_access_key_id_file = "$d/up-id"
upstream_secret_access_key_file = "$d/up-secret"
[[agency]]
name = "$agency"
${executor:+executors = [\"$executor\"]}
TOML
  "$pulih" drc serve --config "$d/gateway.toml" > "$d/gw.out" 2> "$d/gw.log" &
  gw_pid=$!
  for _ in $(seq 100); do grep -q '^gateway: ' "$d/gw.out" 2>/dev/null && break; sleep 0.1; done
  gw_endpoint=$(sed -n 's/^gateway: //p' "$d/gw.out")
  [ -n "$gw_endpoint" ] || { cat "$d/gw.log" >&2; exit 1; }
  gw_ca=$d/ca.pem; gw_key=$d/gw-key
}
gateway_credential() { "$pulih" drc credential --key-file "$gw_key" "--$1" "$2" --out-dir "$3" >/dev/null 2>&1; }
gateway_env() { echo "PULIH_S3_ACCESS_KEY_ID_FILE=$1/access-key-id PULIH_S3_SECRET_ACCESS_KEY_FILE=$1/secret-access-key"; }
gateway_stop() { if [ -n "$gw_pid" ]; then kill "$gw_pid" 2>/dev/null || true; wait "$gw_pid" 2>/dev/null || true; gw_pid=; fi; }
