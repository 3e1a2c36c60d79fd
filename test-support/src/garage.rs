//! Garage, the S3-compatible store of the DRC: a real server on loopback
//! for the storage suite ([`Garage`]), and a three-node cluster in
//! containers for the topology test ([`cluster`]). Needs the `garage`
//! binary (`cargo install --locked garage --version 2.5.0`; `.ci/run`
//! installs it) or `PULIH_GARAGE_BIN`.

pub mod cluster;

use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use crate::net::free_port;
use crate::process::run_ok;

/// The bucket the harnesses make and the tests keep repositories in.
pub const BUCKET: &str = "pulih";

/// The garage binary: `PULIH_GARAGE_BIN`, or `garage` on PATH.
pub fn bin() -> String {
    std::env::var("PULIH_GARAGE_BIN").unwrap_or_else(|_| "garage".into())
}

/// Fails the test, saying how to get it, unless Garage is installed;
/// returns the binary's full path and its version.
pub fn require_garage() -> (String, String) {
    let bin = bin();
    let found = Command::new("sh")
        .args(["-c", "command -v \"$0\"", &bin])
        .output()
        .unwrap();
    let path = String::from_utf8_lossy(&found.stdout).trim().to_string();
    assert!(
        found.status.success() && !path.is_empty(),
        "this test needs Garage: `{bin}` is not on PATH (cargo install --locked garage --version 2.5.0, or set PULIH_GARAGE_BIN)"
    );
    let out = run_ok(Command::new(&path).arg("--version"));
    // "garage cargo:2.5.0 [features: …]" or "garage v2.5.0 …"
    let text = String::from_utf8_lossy(&out.stdout).into_owned();
    let version = text
        .split_whitespace()
        .nth(1)
        .and_then(|v| v.rsplit(':').next())
        .map(|v| v.trim_start_matches('v').to_string())
        .unwrap_or_else(|| panic!("unexpected `garage --version`: {text}"));
    (path, version)
}

/// A random 32-byte RPC secret, hex.
fn rpc_secret() -> String {
    (0..32)
        .map(|_| format!("{:02x}", rand::random::<u8>()))
        .collect()
}

/// The `Key ID:` and `Secret key:` of `garage key create`'s output.
fn key_fields(key: &str) -> (String, String) {
    let field = |name: &str| {
        key.lines()
            .find_map(|l| l.strip_prefix(name))
            .unwrap_or_else(|| panic!("no {name} in {key}"))
            .trim()
            .to_owned()
    };
    (field("Key ID:"), field("Secret key:"))
}

/// `bucket allow --read --write --owner` of [`BUCKET`] for key `pulih-test`.
const ALLOW: [&str; 8] = [
    "bucket",
    "allow",
    "--read",
    "--write",
    "--owner",
    BUCKET,
    "--key",
    "pulih-test",
];

/// A one-node Garage on loopback with bucket [`BUCKET`] and a key that
/// may read, write and own it; killed when dropped.
pub struct Garage {
    child: Child,
    _dir: tempfile::TempDir,
    pub endpoint: String,
    pub key_id: String,
    pub secret: String,
    pub bucket: String,
}

impl Garage {
    pub fn start() -> Garage {
        let dir = tempfile::tempdir().unwrap();
        let (rpc, s3, admin) = (free_port(), free_port(), free_port());
        let secret = rpc_secret();
        let cfg = dir.path().join("garage.toml");
        std::fs::write(
            &cfg,
            format!(
                "metadata_dir = \"{d}/meta\"\ndata_dir = \"{d}/data\"\ndb_engine = \"sqlite\"\nreplication_factor = 1\n\
                 rpc_bind_addr = \"127.0.0.1:{rpc}\"\nrpc_public_addr = \"127.0.0.1:{rpc}\"\nrpc_secret = \"{secret}\"\n\
                 [s3_api]\ns3_region = \"garage\"\napi_bind_addr = \"127.0.0.1:{s3}\"\nroot_domain = \".s3.garage.localhost\"\n\
                 [admin]\napi_bind_addr = \"127.0.0.1:{admin}\"\n",
                d = dir.path().display()
            ),
        )
        .unwrap();
        let child = Command::new(bin())
            .arg("-c")
            .arg(&cfg)
            .arg("server")
            .stdout(Stdio::null())
            .stderr(std::fs::File::create(dir.path().join("server.log")).unwrap())
            .spawn()
            .unwrap_or_else(|e| panic!("cannot start `{}` ({e}): install Garage with `cargo install --locked garage --version 2.5.0`", bin()));
        // From here a failure kills the server and prints its log (Drop).
        let mut g = Garage {
            child,
            _dir: dir,
            endpoint: format!("http://127.0.0.1:{s3}"),
            key_id: String::new(),
            secret: String::new(),
            bucket: BUCKET.into(),
        };
        let cli = |args: &[&str]| -> String {
            let out = Command::new(bin())
                .arg("-c")
                .arg(&cfg)
                .args(args)
                .output()
                .unwrap();
            assert!(
                out.status.success(),
                "garage {args:?}: {}",
                String::from_utf8_lossy(&out.stderr)
            );
            String::from_utf8_lossy(&out.stdout).into_owned()
        };
        let started = Instant::now();
        // `node id` answers from the metadata dir, before the server's RPC
        // port listens: wait for the port too (the layout needs RPC).
        while std::net::TcpStream::connect(("127.0.0.1", rpc)).is_err() {
            assert!(
                started.elapsed() < Duration::from_secs(30),
                "garage's RPC port {rpc} did not open"
            );
            std::thread::sleep(Duration::from_millis(100));
        }
        let node = loop {
            let out = Command::new(bin())
                .arg("-c")
                .arg(&cfg)
                .args(["node", "id", "-q"])
                .output()
                .unwrap();
            if out.status.success() {
                break String::from_utf8_lossy(&out.stdout)
                    .trim()
                    .split('@')
                    .next()
                    .unwrap()
                    .to_owned();
            }
            assert!(
                started.elapsed() < Duration::from_secs(20),
                "garage did not come up"
            );
            std::thread::sleep(Duration::from_millis(100));
        };
        // The first RPC call may still meet a server finishing its start.
        let assign = ["layout", "assign", "-z", "dc1", "-c", "1G", &node];
        loop {
            let out = Command::new(bin())
                .arg("-c")
                .arg(&cfg)
                .args(assign)
                .output()
                .unwrap();
            if out.status.success() {
                break;
            }
            assert!(
                started.elapsed() < Duration::from_secs(30),
                "garage {assign:?}: {}",
                String::from_utf8_lossy(&out.stderr)
            );
            std::thread::sleep(Duration::from_millis(200));
        }
        cli(&["layout", "apply", "--version", "1"]);
        cli(&["bucket", "create", BUCKET]);
        (g.key_id, g.secret) = key_fields(&cli(&["key", "create", "pulih-test"]));
        cli(&ALLOW);
        g
    }

    pub fn url(&self, prefix: &str) -> String {
        format!(
            "s3://{}/{prefix}?endpoint={}&region=garage",
            self.bucket, self.endpoint
        )
    }
}

impl Drop for Garage {
    fn drop(&mut self) {
        if std::thread::panicking() {
            // Make a failure explain itself: the server's side of the story.
            let log =
                std::fs::read_to_string(self._dir.path().join("server.log")).unwrap_or_default();
            let tail: Vec<&str> = log.lines().rev().take(40).collect();
            eprintln!("--- garage server log (last 40 lines) ---");
            for l in tail.iter().rev() {
                eprintln!("{l}");
            }
        }
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}
