//! Every network a recovery makes is walled off from the DRC host, on any
//! engine version (issue 20, finding 7; docs/design/drill-isolation.md):
//! the executor names the network's bridge itself (`pd-<12 hex>`) and,
//! before the engine creates it, installs one nftables table of its own
//! that drops what the bridge's containers start towards the host (any of
//! its addresses, IPv4 and IPv6: the INPUT hook, which Docker never
//! filters) and, for a drill, what crosses between the bridge and any other
//! interface (other drills' networks, the DRC's LAN, the internet). The
//! host's own connections to the containers (the health checks, the
//! published ports' proxy) are answered: their replies are `established`.
//!
//! A drop in a base chain is final whatever Docker's own chains accept
//! (iptables-legacy, iptables-nft or Docker's nftables backend), so the
//! rules hold on any engine. The executor needs `nft` and CAP_NET_ADMIN;
//! without them a recovery fails at its network step and says why.
//!
//! An executor in a container of its own (its own network namespace) sets
//! `PULIH_FIREWALL_PID` to a process in the Docker host's network
//! namespace (with `--pid=host`: the engine's, `/var/run/docker.pid`): the
//! rules then go there through
//! `nsenter --net` (CAP_NET_ADMIN, CAP_SYS_ADMIN, CAP_SYS_PTRACE), and the host's
//! interfaces are read from that process's `/proc/PID/net/dev`.

use std::collections::HashMap;
use std::process::Stdio;

use anyhow::{Context, Result, bail};
use tokio::io::AsyncWriteExt;

/// The Docker network option that names a bridge network's interface.
pub const BRIDGE_OPTION: &str = "com.docker.network.bridge.name";

/// What the rules allow besides the host's own connections.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Scope {
    /// A drill's (or a drill plan run's) network: its containers reach
    /// each other and nothing else.
    Drill,
    /// The DRC's service network (failovers): containers reach each other
    /// and the world outside through the engine's NAT, and their published
    /// ports are served, but the DRC host's own services are not theirs.
    Service,
}

/// The bridge interface Pulih names for network `network`: `pd-` and 12
/// hex digits of its name's BLAKE3 hash (interface names hold 15 bytes).
pub fn bridge_for(network: &str) -> String {
    let hash = blake3::hash(network.as_bytes()).to_hex();
    format!("pd-{}", &hash[..12])
}

/// The bridge interface of an existing bridge network: the name it was
/// given, else Docker's own `br-<first 12 of its id>`.
pub fn bridge_of(net: &bollard::models::NetworkInspect) -> Option<String> {
    bridge_name(
        net.driver.as_deref(),
        net.options.as_ref(),
        net.id.as_deref(),
    )
}

/// [`bridge_of`] for a network as the engine lists it.
pub fn bridge_of_listed(net: &bollard::models::Network) -> Option<String> {
    bridge_name(
        net.driver.as_deref(),
        net.options.as_ref(),
        net.id.as_deref(),
    )
}

fn bridge_name(
    driver: Option<&str>,
    options: Option<&HashMap<String, String>>,
    id: Option<&str>,
) -> Option<String> {
    if driver.is_some_and(|d| d != "bridge") {
        return None;
    }
    if let Some(name) = options.and_then(|o| o.get(BRIDGE_OPTION)) {
        return Some(name.clone());
    }
    id?.get(..12).map(|p| format!("br-{p}"))
}

/// The nftables table holding `bridge`'s rules.
pub fn table_for(bridge: &str) -> String {
    format!("pulih_{}", bridge.replace('-', "_"))
}

/// The environment variable naming a process in the Docker host's network
/// namespace, for an executor that runs in a namespace of its own.
pub const FIREWALL_PID_ENV: &str = "PULIH_FIREWALL_PID";

/// The process whose network namespace the rules go to: `PULIH_FIREWALL_PID`,
/// else this process's own.
fn firewall_pid() -> Result<Option<u32>> {
    match std::env::var(FIREWALL_PID_ENV) {
        Ok(v) if !v.trim().is_empty() => v
            .trim()
            .parse()
            .map(Some)
            .with_context(|| format!("{FIREWALL_PID_ENV}={v:?} is not a process id")),
        _ => Ok(None),
    }
}

/// Whether an interface of this name exists in the Docker host's network
/// namespace.
pub fn link_exists(bridge: &str) -> Result<bool> {
    let dev = match firewall_pid()? {
        Some(pid) => format!("/proc/{pid}/net/dev"),
        None => "/proc/self/net/dev".to_string(),
    };
    let text = std::fs::read_to_string(&dev)
        .with_context(|| format!("cannot read the host's interfaces from {dev}"))?;
    Ok(text
        .lines()
        .filter_map(|l| l.split_once(':'))
        .any(|(name, _)| name.trim() == bridge))
}

/// The ruleset for `bridge`: one table, replaced as a whole in one
/// transaction (installing twice leaves one copy).
fn ruleset(bridge: &str, scope: Scope) -> Result<String> {
    // The name goes into nft's syntax: Pulih's own names only.
    let valid = !bridge.is_empty()
        && bridge.len() <= 15
        && bridge
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'_');
    if !valid {
        bail!("bridge interface name `{bridge}` is not one Pulih can write rules for");
    }
    let table = table_for(bridge);
    let mut text = format!(
        "table inet {table}\nflush table inet {table}\ntable inet {table} {{\n  chain input {{\n    type filter hook input priority -10; policy accept;\n    iifname \"{bridge}\" ct state established,related accept\n    iifname \"{bridge}\" drop\n  }}\n"
    );
    if scope == Scope::Drill {
        text += &format!(
            "  chain forward {{\n    type filter hook forward priority -10; policy accept;\n    iifname \"{bridge}\" oifname != \"{bridge}\" drop\n    oifname \"{bridge}\" iifname != \"{bridge}\" drop\n  }}\n"
        );
    }
    text += "}\n";
    Ok(text)
}

async fn nft(args: &[&str], input: Option<&str>) -> Result<String> {
    let mut cmd = match firewall_pid()? {
        Some(pid) => {
            let mut c = tokio::process::Command::new("nsenter");
            c.arg(format!("--target={pid}"))
                .args(["--net", "--", "nft"]);
            c
        }
        None => tokio::process::Command::new("nft"),
    };
    cmd.args(args)
        .stdin(if input.is_some() {
            Stdio::piped()
        } else {
            Stdio::null()
        })
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .kill_on_drop(true);
    let mut child = cmd.spawn().context(
        "cannot run `nft` (nftables; through `nsenter` when PULIH_FIREWALL_PID is set): the DRC executor walls each recovery network off from the DRC host with it; install nftables (apt-get install nftables)",
    )?;
    if let (Some(text), Some(mut stdin)) = (input, child.stdin.take()) {
        stdin.write_all(text.as_bytes()).await?;
    }
    let out = child.wait_with_output().await?;
    if !out.status.success() {
        let needs = if firewall_pid()?.is_some() {
            "an executor in a container needs --pid=host and CAP_NET_ADMIN, CAP_SYS_ADMIN, CAP_SYS_PTRACE to install its isolation rules in the host's network namespace"
        } else {
            "the DRC executor needs root or CAP_NET_ADMIN to install its isolation rules"
        };
        bail!(
            "`nft {}` failed: {} ({needs})",
            args.join(" "),
            String::from_utf8_lossy(&out.stderr).trim()
        );
    }
    Ok(String::from_utf8_lossy(&out.stdout).into_owned())
}

/// Installs (or replaces) `bridge`'s rules. Interface names match by name,
/// so rules installed before the bridge exists hold from its first packet.
pub async fn install(bridge: &str, scope: Scope) -> Result<()> {
    let text = ruleset(bridge, scope)?;
    nft(&["-f", "-"], Some(&text))
        .await
        .with_context(|| format!("cannot install the isolation rules of bridge {bridge}"))?;
    Ok(())
}

/// Fails unless `bridge`'s rules are in place (a firewall reload may have
/// flushed them): checked before every container starts.
pub async fn check(bridge: &str) -> Result<()> {
    let table = table_for(bridge);
    let listed = nft(&["list", "table", "inet", &table], None)
        .await
        .with_context(|| {
            format!(
                "the isolation rules of bridge {bridge} (nft table inet {table}) are not in place"
            )
        })?;
    if !listed.contains(&format!("iifname \"{bridge}\" drop")) {
        bail!("nft table inet {table} no longer drops what bridge {bridge} sends to the host");
    }
    Ok(())
}

/// Removes `bridge`'s rules; rules that are already gone are fine.
pub async fn remove(bridge: &str) -> Result<()> {
    let table = table_for(bridge);
    let listed = nft(&["list", "tables"], None).await?;
    if !listed
        .lines()
        .any(|l| l.trim() == format!("table inet {table}"))
    {
        return Ok(());
    }
    nft(&["delete", "table", "inet", &table], None).await?;
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_bridge_name_fits_an_interface_name_and_differs_per_network() {
        let a = bridge_for("pulih-drill-20261207T070000-abcdef");
        let b = bridge_for("pulih-drill-20261207T070000-abcdee");
        assert_eq!(a.len(), 15);
        assert!(a.starts_with("pd-"));
        assert_ne!(a, b);
        assert_eq!(table_for(&a), format!("pulih_{}", a.replace('-', "_")));
    }

    #[test]
    fn a_drill_ruleset_drops_input_and_forwarding_a_service_one_only_input() {
        let d = ruleset("pd-0123456789ab", Scope::Drill).unwrap();
        assert!(
            d.contains("hook input") && d.contains("hook forward"),
            "{d}"
        );
        assert!(d.contains("iifname \"pd-0123456789ab\" drop"));
        let s = ruleset("pd-0123456789ab", Scope::Service).unwrap();
        assert!(
            s.contains("hook input") && !s.contains("hook forward"),
            "{s}"
        );
        for bad in ["pd-\"x", "", "a-very-long-interface-name", "pd x"] {
            assert!(ruleset(bad, Scope::Drill).is_err(), "{bad}");
        }
    }
}
