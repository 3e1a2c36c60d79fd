//! Everything a run makes on the engine, named under one prefix.

use super::{docker, docker_output};

/// Everything this run made on the engine is named `<prefix>-…`; dropping
/// this removes it (containers first, with whatever else joined its
/// networks, such as a failover's recovery containers), and on a failure
/// first prints the tail of every container's log.
pub struct Scope {
    prefix: String,
    networks: Vec<String>,
}

impl Scope {
    /// A scope named `<what>-<pid>-<random>`.
    pub fn new(what: &str) -> Scope {
        Scope {
            prefix: format!(
                "{what}-{}-{:04x}",
                std::process::id(),
                rand::random::<u16>()
            ),
            networks: Vec::new(),
        }
    }

    pub fn name(&self, what: &str) -> String {
        format!("{}-{what}", self.prefix)
    }

    /// The ids of the scope's containers.
    pub fn containers(&self) -> Vec<String> {
        let filter = format!("name={}-", self.prefix);
        let out = docker_output(&["ps", "-aq", "--filter", &filter]);
        String::from_utf8_lossy(&out.stdout)
            .lines()
            .map(str::to_string)
            .collect()
    }

    /// A container's log (stdout and stderr).
    pub fn logs(&self, container: &str) -> String {
        let out = docker_output(&["logs", container]);
        format!(
            "{}{}",
            String::from_utf8_lossy(&out.stdout),
            String::from_utf8_lossy(&out.stderr)
        )
    }

    fn all_logs(&self) -> String {
        let mut s = String::new();
        for c in self.containers() {
            let name = docker_output(&["inspect", "-f", "{{.Name}}", &c]);
            let log = self.logs(&c);
            let tail: Vec<&str> = log.lines().rev().take(40).collect();
            s.push_str(&format!(
                "--- {} (last 40 lines):\n",
                String::from_utf8_lossy(&name.stdout).trim()
            ));
            for l in tail.iter().rev() {
                s.push_str(l);
                s.push('\n');
            }
        }
        s
    }

    /// Makes bridge network `<prefix>-<what>`; returns its name.
    pub fn network(&mut self, what: &str) -> String {
        let net = self.name(what);
        docker(&["network", "create", "--driver", "bridge", &net]);
        self.networks.push(net.clone());
        net
    }

    pub fn subnet(&self, net: &str) -> String {
        docker(&[
            "network",
            "inspect",
            "-f",
            "{{range .IPAM.Config}}{{.Subnet}}{{end}}",
            net,
        ])
    }

    /// A container's address on network `net`.
    pub fn ip(&self, container: &str, net: &str) -> String {
        docker(&[
            "inspect",
            "-f",
            &format!("{{{{(index .NetworkSettings.Networks \"{net}\").IPAddress}}}}"),
            container,
        ])
    }

    pub fn running(&self, container: &str) -> bool {
        docker(&["inspect", "-f", "{{.State.Running}}", container]) == "true"
    }
}

impl Drop for Scope {
    fn drop(&mut self) {
        if std::thread::panicking() {
            eprintln!("{}", self.all_logs());
        }
        let mut doomed = self.containers();
        for net in &self.networks {
            let filter = format!("network={net}");
            let out = docker_output(&["ps", "-aq", "--filter", &filter]);
            doomed.extend(
                String::from_utf8_lossy(&out.stdout)
                    .lines()
                    .map(str::to_string),
            );
        }
        doomed.sort();
        doomed.dedup();
        for c in &doomed {
            let _ = docker_output(&["rm", "-f", "-v", c]);
        }
        for net in &self.networks {
            super::remove_network(net);
        }
    }
}
