//! A recovery's containers: started in their start order on the
//! recovery's network, each with its volumes bound from the restored
//! snapshot and (on a failover only) its published ports; a group's
//! health checks pass before the next group starts.

use std::collections::HashMap;
use std::net::IpAddr;
use std::path::Path;

use anyhow::{Context, Result, bail};
use bollard::models::{ContainerCreateBody, EndpointSettings, HostConfig, NetworkingConfig};
use bollard::query_parameters::CreateContainerOptionsBuilder;
use pulih_core::repo::ListedSnapshot;
use pulih_model::drill::{DockerCapture, RecoveryKind};
use pulih_model::manifest::port::PortMapping;
use pulih_model::manifest::{ContainerLimits, RecoveryContainer};

use super::restored::under;
use super::{Run, checks, isolation};

impl Run<'_> {
    /// Starts the recovery spec's containers group by group (start order),
    /// each group's health checks passing before the next group starts.
    pub(super) async fn start_containers(
        &mut self,
        snap: &ListedSnapshot,
        target: &Path,
        capture: &DockerCapture,
    ) -> Result<()> {
        let plan = self.plan;
        let mut order: Vec<u32> = plan
            .recovery
            .containers
            .iter()
            .map(|c| c.start_order)
            .collect();
        order.sort();
        order.dedup();
        for group in order {
            let members: Vec<_> = plan
                .recovery
                .containers
                .iter()
                .filter(|c| c.start_order == group)
                .collect();
            for c in &members {
                self.start_container(c, snap, target, capture).await?;
            }
            // This group's checks pass before the next group starts.
            let group_names: Vec<&str> = members.iter().map(|c| c.name.as_str()).collect();
            self.health_checks(&group_names).await?;
        }
        let unchecked: Vec<&str> = plan
            .recovery
            .health_checks
            .iter()
            .map(checks::target)
            .filter(|t| !self.running.contains_key(*t))
            .collect();
        if !unchecked.is_empty() {
            bail!("health checks name containers the recovery spec does not start: {unchecked:?}");
        }
        Ok(())
    }

    /// One container, a timed step (`start <name>`): its volumes bound
    /// from the restored snapshot, created, started, and its address on
    /// the network noted.
    async fn start_container(
        &mut self,
        c: &RecoveryContainer,
        snap: &ListedSnapshot,
        target: &Path,
        capture: &DockerCapture,
    ) -> Result<()> {
        let plan = self.plan;
        let docker = self.docker.clone();
        let network = plan.network();
        let internal = plan.kind == RecoveryKind::Drill;
        let name = plan.name(&c.name);
        let mut binds = Vec::new();
        for v in &c.volumes {
            // A path source as it is; a dockerVolume name through
            // the capture record, which says where its data was.
            let src = if v.source.starts_with('/') {
                Some(v.source.clone())
            } else {
                capture.volumes.get(&v.source).cloned()
            };
            let host = src
                .ok_or_else(|| anyhow::anyhow!("not captured"))
                .and_then(|src| under(target, Path::new(&src)))
                .with_context(|| {
                    format!(
                        "container {}: volume source `{}` is not in snapshot {}",
                        c.name, v.source, snap.id
                    )
                })?;
            if !v.target.starts_with('/') || v.target.contains([':', ',']) {
                bail!(
                    "container {}: mount target `{}` must be an absolute path without `:` or `,`",
                    c.name,
                    v.target
                );
            }
            binds.push(format!("{}:{}", host.display(), v.target));
        }
        // Published ports on failover only: a drill exposes nothing.
        let ports = if internal {
            None
        } else {
            Some(port_bindings(&c.ports))
        };
        let bridge = self.bridge.clone();
        let limits = c.limits.clone().unwrap_or_default();
        let (host_config, confined) = confinement(&limits, internal);
        let ip = self
            .timed(&format!("start {}", c.name), async {
                // A firewall reload may have flushed the rules since the
                // network was made: no container starts without them.
                let bridge = bridge.context("internal: no recovery network was made")?;
                isolation::check(&bridge).await?;
                let body = ContainerCreateBody {
                    image: Some(c.image.clone()),
                    hostname: Some(c.name.clone()),
                    env: Some(c.env.iter().map(|(k, v)| format!("{k}={v}")).collect()),
                    cmd: c.command.clone(),
                    labels: Some(plan.labels()),
                    exposed_ports: ports.as_ref().map(|p| p.keys().cloned().collect()),
                    host_config: Some(HostConfig {
                        binds: Some(binds),
                        network_mode: Some(network.clone()),
                        port_bindings: ports.clone(),
                        ..host_config
                    }),
                    networking_config: Some(NetworkingConfig {
                        endpoints_config: Some(HashMap::from([(
                            network.clone(),
                            EndpointSettings {
                                aliases: Some(vec![c.name.clone()]),
                                ..Default::default()
                            },
                        )])),
                    }),
                    ..Default::default()
                };
                let made = docker
                    .create_container(
                        Some(CreateContainerOptionsBuilder::default().name(&name).build()),
                        body,
                    )
                    .await
                    .with_context(|| format!("cannot create container {name}"))?;
                // The engine drops a limit the kernel cannot enforce and
                // only warns: a container without its limits does not run.
                if !made.warnings.is_empty() {
                    bail!(
                        "container {name}: the engine would not apply all of its limits: {}",
                        made.warnings.join("; ")
                    );
                }
                docker
                    .start_container(&name, None)
                    .await
                    .with_context(|| format!("cannot start container {name}"))?;
                let info = docker.inspect_container(&name, None).await?;
                let ip = info
                    .network_settings
                    .and_then(|n| n.networks)
                    .and_then(|n| n.get(&network).cloned())
                    .and_then(|e| e.ip_address)
                    .and_then(|a| a.parse::<IpAddr>().ok());
                let detail = format!(
                    "{} from {} at {}; {confined}",
                    name,
                    c.image,
                    ip.map_or("no address".to_string(), |a| a.to_string())
                );
                Ok((ip, detail))
            })
            .await?;
        self.running.insert(c.name.clone(), (name, ip));
        Ok(())
    }
}

/// Docker's default capabilities without the ones a recovered app has no
/// use for and an attacker has (raw packets, device nodes, file
/// capabilities). Not one is added beyond the engine's defaults.
const CAPABILITIES: [&str; 11] = [
    "CHOWN",
    "DAC_OVERRIDE",
    "FSETID",
    "FOWNER",
    "SETGID",
    "SETUID",
    "SETPCAP",
    "NET_BIND_SERVICE",
    "SYS_CHROOT",
    "KILL",
    "AUDIT_WRITE",
];

/// An address nothing answers on (TEST-NET-1): a drill's embedded DNS
/// forwards names it does not know there, not to the DRC's resolver.
const NO_RESOLVER: &str = "192.0.2.1";

/// How a recovered container is held (its code is the server's, treated
/// as hostile): memory with no swap beyond it, CPUs (at most the host's),
/// processes, no privileges, the capabilities above only, no privilege
/// gained through exec; and the step's detail saying so.
fn confinement(limits: &ContainerLimits, drill: bool) -> (HostConfig, String) {
    let host_cpus = std::thread::available_parallelism().map_or(1.0, |n| n.get() as f64);
    let cpus = limits.cpus().min(host_cpus);
    let memory = limits.memory();
    let pids = limits.pids();
    let config = HostConfig {
        memory: Some(memory as i64),
        memory_swap: Some(memory as i64),
        nano_cpus: Some((cpus * 1e9) as i64),
        pids_limit: Some(i64::from(pids)),
        privileged: Some(false),
        cap_drop: Some(vec!["ALL".into()]),
        cap_add: Some(CAPABILITIES.iter().map(|c| c.to_string()).collect()),
        security_opt: Some(vec!["no-new-privileges:true".into()]),
        dns: drill.then(|| vec![NO_RESOLVER.to_string()]),
        ..Default::default()
    };
    let capped = if cpus < limits.cpus() {
        format!(" (asked {}, the host has {host_cpus})", limits.cpus())
    } else {
        String::new()
    };
    let detail = format!(
        "limits: {memory} bytes of memory, {cpus} CPUs{capped}, {pids} processes; no added capabilities"
    );
    (config, detail)
}

/// Published ports (manifest `ports`, parsed by the model) as the engine
/// wants them; several host bindings of one container port are kept.
fn port_bindings(
    ports: &[PortMapping],
) -> HashMap<String, Option<Vec<bollard::models::PortBinding>>> {
    let mut out: HashMap<String, Option<Vec<bollard::models::PortBinding>>> = HashMap::new();
    for p in ports {
        out.entry(p.container_key())
            .or_insert_with(|| Some(Vec::new()))
            .get_or_insert_with(Vec::new)
            .push(bollard::models::PortBinding {
                host_ip: p.host_ip.map(|ip| ip.to_string()),
                host_port: Some(p.host_port.to_string()),
            });
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    /// What validation accepts, execution can run: every published port of
    /// every example manifest converts to the engine's bindings, with its
    /// address, host port and protocol.
    #[test]
    fn every_validated_port_converts_for_the_engine() {
        let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("../manifests/examples");
        let set = pulih_model::manifest::ManifestSet::load(&[dir]).expect("the examples validate");
        let mut n = 0;
        for s in set.servers.values() {
            for c in s.spec().recovery.iter().flat_map(|r| &r.containers) {
                let b = port_bindings(&c.ports);
                for p in &c.ports {
                    let got = b[&p.container_key()].as_ref().unwrap();
                    assert!(
                        got.iter()
                            .any(|g| g.host_port == Some(p.host_port.to_string())
                                && g.host_ip == p.host_ip.map(|i| i.to_string())),
                        "{p}"
                    );
                    n += 1;
                }
            }
        }
        assert!(n >= 3, "the examples publish {n} ports");
        let typed: Vec<PortMapping> = [
            "127.0.0.1:16379:6379",
            "[::1]:53:53/udp",
            "8080:80",
            "8081:80",
        ]
        .iter()
        .map(|t| t.parse().unwrap())
        .collect();
        let b = port_bindings(&typed);
        let redis = b["6379/tcp"].as_ref().unwrap();
        assert_eq!(redis[0].host_ip.as_deref(), Some("127.0.0.1"));
        assert_eq!(redis[0].host_port.as_deref(), Some("16379"));
        assert_eq!(
            b["53/udp"].as_ref().unwrap()[0].host_ip.as_deref(),
            Some("::1")
        );
        assert_eq!(
            b["80/tcp"].as_ref().unwrap().len(),
            2,
            "both host ports of one container port"
        );
    }
}
