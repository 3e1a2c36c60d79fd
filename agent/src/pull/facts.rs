//! What an agent reports of its host with every heartbeat (and at
//! enrolment): hostname, addresses, OS, version, free disk, Docker.

use std::net::IpAddr;
use std::path::{Path, PathBuf};

use pulih_model::api::Facts;

use crate::docker;

/// The host an agent runs on, as it reports it.
pub(crate) struct Host {
    pub hostname: String,
    /// The controller's URL: the address used to reach it is reported.
    pub controller: String,
    pub bind: Option<IpAddr>,
    /// Whose free space is reported (the state dir; the DRC's scratch dir).
    pub disk_dir: PathBuf,
}

impl Host {
    /// The facts as of now.
    pub async fn facts(&self) -> Facts {
        let (docker_containers, docker_volumes) = docker::facts().await.unwrap_or_default();
        Facts {
            hostname: self.hostname.clone(),
            ips: local_ip(&self.controller, self.bind),
            os: os_name(),
            agent_version: env!("CARGO_PKG_VERSION").to_string(),
            free_disk_bytes: free_disk(&self.disk_dir),
            docker_containers,
            docker_volumes,
        }
    }
}

/// The system's host name.
pub(crate) fn hostname() -> String {
    std::fs::read_to_string("/proc/sys/kernel/hostname")
        .map(|s| s.trim().to_owned())
        .unwrap_or_else(|_| "unknown".into())
}

fn os_name() -> String {
    std::fs::read_to_string("/etc/os-release")
        .ok()
        .and_then(|t| {
            t.lines().find_map(|l| {
                l.strip_prefix("PRETTY_NAME=")
                    .map(|v| v.trim_matches('"').to_string())
            })
        })
        .unwrap_or_else(|| std::env::consts::OS.to_string())
}

/// Free bytes where `dir` lives (from `df`; None when it cannot tell).
pub(crate) fn free_disk(dir: &Path) -> Option<u64> {
    let out = std::process::Command::new("df")
        .arg("-Pk")
        .arg(dir)
        .output()
        .ok()?;
    let text = String::from_utf8(out.stdout).ok()?;
    let kib: u64 = text
        .lines()
        .nth(1)?
        .split_whitespace()
        .nth(3)?
        .parse()
        .ok()?;
    Some(kib * 1024)
}

/// The address this host uses to reach `controller` (no packet is sent).
fn local_ip(controller: &str, bind: Option<IpAddr>) -> Vec<String> {
    if let Some(ip) = bind {
        return vec![ip.to_string()];
    }
    let host = reqwest::Url::parse(controller)
        .ok()
        .and_then(|u| Some(format!("{}:{}", u.host_str()?, u.port_or_known_default()?)));
    host.and_then(|h| {
        use std::net::ToSocketAddrs;
        let addr = h.to_socket_addrs().ok()?.next()?;
        let sock = std::net::UdpSocket::bind(if addr.is_ipv4() {
            "0.0.0.0:0"
        } else {
            "[::]:0"
        })
        .ok()?;
        sock.connect(addr).ok()?;
        Some(vec![sock.local_addr().ok()?.ip().to_string()])
    })
    .unwrap_or_default()
}
