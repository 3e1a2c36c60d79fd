//! A three-node Garage cluster (replication factor 3) in containers, as
//! the DRC's S3 store of the multi-host topology test.

use std::path::{Path, PathBuf};
use std::process::{Command, Output};
use std::time::Duration;

use super::{ALLOW, BUCKET, key_fields, rpc_secret};
use crate::docker::{Scope, docker};
use crate::pulih::Pulih;
use crate::secret::write_secret;
use crate::wait::wait_until;

/// The nodes' names: containers `<scope>-garage1…3`, and their host names
/// on the network they join.
pub const NODES: [&str; 3] = ["garage1", "garage2", "garage3"];

/// A running cluster: its credentials (files, 0600) and where the host
/// reaches its S3 API.
pub struct Cluster {
    pub key_id: PathBuf,
    pub secret: PathBuf,
    /// garage1's S3 endpoint as the host reaches it.
    pub host_endpoint: String,
}

impl Cluster {
    /// Starts the three nodes from `image` on network `net` of `scope`
    /// (configs and credentials in `dir`), joins them in one layout, and
    /// makes bucket [`BUCKET`] with a key that may read, write and own it.
    pub fn start(scope: &Scope, dir: &Path, image: &str, net: &str) -> Cluster {
        let rpc_secret = rpc_secret();
        for n in NODES {
            let cfg = dir.join(format!("{n}.toml"));
            std::fs::write(
                &cfg,
                format!(
                    "metadata_dir = \"/var/lib/garage/meta\"\ndata_dir = \"/var/lib/garage/data\"\ndb_engine = \"sqlite\"\n\
                     replication_factor = 3\nrpc_bind_addr = \"0.0.0.0:3901\"\nrpc_public_addr = \"{n}:3901\"\nrpc_secret = \"{rpc_secret}\"\n\
                     [s3_api]\ns3_region = \"garage\"\napi_bind_addr = \"0.0.0.0:3900\"\nroot_domain = \".s3.garage.localhost\"\n"
                ),
            )
            .unwrap();
            docker(&[
                "run",
                "-d",
                "--name",
                &scope.name(n),
                "--hostname",
                n,
                "--network",
                net,
                "--network-alias",
                n,
                "-e",
                "RUST_LOG=warn",
                "-v",
                &format!("{}:/etc/garage.toml:ro", cfg.display()),
                image,
                "garage",
                "-c",
                "/etc/garage.toml",
                "server",
            ]);
        }
        let garage = |node: &str, args: &[&str]| -> Output {
            Command::new("docker")
                .args([
                    "exec",
                    &scope.name(node),
                    "garage",
                    "-c",
                    "/etc/garage.toml",
                ])
                .args(args)
                .output()
                .expect("the docker CLI")
        };
        let ok = |o: &Output| o.status.success();
        let text = |o: &Output| String::from_utf8_lossy(&o.stdout).trim().to_string();
        // Each node's id, once its RPC port answers.
        let mut ids = Vec::new();
        for n in NODES {
            let mut id = String::new();
            wait_until(&format!("{n} to answer"), Duration::from_secs(30), || {
                let o = garage(n, &["node", "id", "-q"]);
                let listening = ok(&garage(n, &["status"]));
                id = text(&o).split('@').next().unwrap_or("").to_string();
                ok(&o) && listening
            });
            ids.push(id);
        }
        for (n, id) in NODES.iter().zip(&ids).skip(1) {
            let peer = format!("{id}@{n}:3901");
            wait_until(
                &format!("garage1 to connect to {n}"),
                Duration::from_secs(30),
                || ok(&garage("garage1", &["node", "connect", &peer])),
            );
        }
        for id in &ids {
            wait_until(
                &format!("the layout to take node {id}"),
                Duration::from_secs(30),
                || {
                    ok(&garage(
                        "garage1",
                        &["layout", "assign", "-z", "dc1", "-c", "1G", id],
                    ))
                },
            );
        }
        let apply = garage("garage1", &["layout", "apply", "--version", "1"]);
        assert!(ok(&apply), "layout apply: {apply:?}");
        // Every node has the layout before the bucket is made.
        for n in NODES {
            wait_until(
                &format!("{n} to see the three-node layout"),
                Duration::from_secs(30),
                || {
                    let s = text(&garage(n, &["layout", "show"]));
                    ids.iter().all(|id| s.contains(&id[..16]))
                        && s.contains("Current cluster layout version: 1")
                },
            );
        }
        let run = |args: &[&str]| {
            let o = garage("garage1", args);
            assert!(ok(&o), "garage {args:?}: {o:?}");
            text(&o)
        };
        run(&["bucket", "create", BUCKET]);
        let (id, secret) = key_fields(&run(&["key", "create", "pulih-test"]));
        run(&ALLOW);
        let key_id = dir.join("s3.id");
        let secret_file = dir.join("s3.secret");
        write_secret(&key_id, &id);
        write_secret(&secret_file, &secret);
        let ip = scope.ip(&scope.name("garage1"), net);
        Cluster {
            key_id,
            secret: secret_file,
            host_endpoint: format!("http://{ip}:3900"),
        }
    }

    /// An agency's repository URL as the host reaches it.
    /// (A request Garage holds — seen with the cluster busy or a node
    /// going away — is cut after 10 s and sent again, so the test's own
    /// listings do not wait the default 2 minutes.)
    /// The endpoint is a node's address on the test's own Docker network,
    /// in plain HTTP: allowed explicitly (`insecure_http=true`).
    pub fn host_repo(&self, pd: &str) -> String {
        format!(
            "s3://{BUCKET}/drc/{pd}?endpoint={}&region=garage&timeout=10s&insecure_http=true",
            self.host_endpoint
        )
    }

    /// `pulih` on the host with the store's credentials.
    pub fn pulih(&self, pulih: &Pulih) -> Command {
        let mut c = pulih.cmd();
        c.env("PULIH_S3_ACCESS_KEY_ID_FILE", &self.key_id)
            .env("PULIH_S3_SECRET_ACCESS_KEY_FILE", &self.secret);
        c
    }
}
