//! Removes what a test made on the engine, also when it panics.

use std::path::PathBuf;
use std::process::Command;

use super::docker;

enum Undo {
    /// `docker ARGS`.
    Docker(Vec<String>),
    /// `docker rm -f` of every container matching a filter.
    Containers(String),
    /// `docker network rm`, and the executor's isolation rules of its
    /// bridge (an nft table `pulih_<bridge>`) when it had some.
    Network(String),
}

/// What to undo on the engine when the test ends; the last registered is
/// undone first (a container before its volume, image and network).
/// Failures are ignored: a thing may already be gone.
#[derive(Default)]
pub struct Cleanup(Vec<Undo>);

impl Cleanup {
    pub fn new() -> Cleanup {
        Cleanup::default()
    }

    /// Runs `docker ARGS` at the end.
    pub fn later(&mut self, args: &[&str]) {
        self.0
            .push(Undo::Docker(args.iter().map(|a| a.to_string()).collect()));
    }

    /// Removes every container matching `filter` at the end.
    pub fn containers_matching(&mut self, filter: &str) {
        self.0.push(Undo::Containers(filter.to_string()));
    }

    /// Removes container `name` at the end.
    pub fn container(&mut self, name: &str) {
        self.later(&["rm", "-f", name]);
    }

    /// Removes network `name` at the end, with the isolation rules the
    /// DRC executor installed for its bridge.
    pub fn network(&mut self, name: &str) {
        self.0.push(Undo::Network(name.to_string()));
    }

    /// Tags `image` as `tag`; the tag goes at the end.
    pub fn tag(&mut self, image: &str, tag: &str) {
        docker(&["tag", image, tag]);
        self.later(&["rmi", tag]);
    }

    /// Makes volume `name` (removed at the end); its mountpoint on the host.
    pub fn volume(&mut self, name: &str) -> PathBuf {
        docker(&["volume", "create", name]);
        self.later(&["volume", "rm", "-f", name]);
        PathBuf::from(docker(&[
            "volume",
            "inspect",
            "-f",
            "{{.Mountpoint}}",
            name,
        ]))
    }

    /// `docker run -d --name NAME ARGS` (options, image, command); the
    /// container goes at the end.
    pub fn run(&mut self, name: &str, args: &[&str]) {
        let mut all = vec!["run", "-d", "--name", name];
        all.extend_from_slice(args);
        docker(&all);
        self.container(name);
    }

    /// Forgets everything registered (the test removed it itself).
    pub fn forget(&mut self) {
        self.0.clear();
    }
}

impl Drop for Cleanup {
    fn drop(&mut self) {
        for undo in self.0.iter().rev() {
            match undo {
                Undo::Docker(args) => {
                    let _ = Command::new("docker").args(args).output();
                }
                Undo::Network(name) => super::remove_network(name),
                Undo::Containers(filter) => {
                    let ids = Command::new("docker")
                        .args(["ps", "-aq", "--filter", filter])
                        .output()
                        .map(|o| String::from_utf8_lossy(&o.stdout).into_owned())
                        .unwrap_or_default();
                    for id in ids.split_whitespace() {
                        let _ = Command::new("docker").args(["rm", "-f", id]).output();
                    }
                }
            }
        }
    }
}
