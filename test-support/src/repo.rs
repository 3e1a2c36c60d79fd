//! The walidata's repository commands, and a repository fixture for the
//! `pulih repo` tests.

use std::os::unix::fs::PermissionsExt;
use std::path::{Path, PathBuf};
use std::process::{Command, Output};

use crate::process::{last_json, run_ok};
use crate::pulih::Pulih;
use crate::tree::{assert_same_tree, restored};

/// `pulih repo init` of `repo` (a path or URL) with the walidata's `pass`.
pub fn init(pulih: &Pulih, repo: impl AsRef<std::ffi::OsStr>, pass: &Path) {
    run_ok(
        pulih
            .cmd()
            .args(["repo", "init", "--repo"])
            .arg(repo)
            .arg("--passphrase-file")
            .arg(pass),
    );
}

/// `pulih repo SUBCOMMAND --repo REPO --passphrase-file PASS --out OUT`:
/// a key file the walidata makes.
fn walidata_makes(
    pulih: &Pulih,
    subcommand: &str,
    repo: impl AsRef<std::ffi::OsStr>,
    pass: &Path,
    out: &Path,
) -> Command {
    let mut c = pulih.cmd();
    c.args(["repo", subcommand, "--repo"])
        .arg(repo)
        .arg("--passphrase-file")
        .arg(pass)
        .arg("--out")
        .arg(out);
    c
}

/// `pulih repo add-agent-key`: a new agent key for `repo`, written to `out`.
pub fn add_agent_key(pulih: &Pulih, repo: impl AsRef<std::ffi::OsStr>, pass: &Path, out: &Path) {
    run_ok(&mut walidata_makes(pulih, "add-agent-key", repo, pass, out));
}

/// `pulih repo add-agent-key --server SERVER`: a new agent key for `repo`
/// written to `out`, its dedup space bound to `server` (FORMAT.md §13).
pub fn add_server_key(pulih: &Pulih, repo: &Path, pass: &Path, out: &Path, server: &str) {
    run_ok(walidata_makes(pulih, "add-agent-key", repo, pass, out).args(["--server", server]));
}

/// `pulih repo add-maintenance-key`: the controller's maintenance key for
/// `repo`, written to `out`.
pub fn add_maintenance_key(pulih: &Pulih, repo: &Path, pass: &Path, out: &Path) {
    run_ok(&mut walidata_makes(
        pulih,
        "add-maintenance-key",
        repo,
        pass,
        out,
    ));
}

/// `pulih repo init` of `repo` with the walidata's `pass`, and an agent
/// key for it written to `key`.
pub fn init_with_agent_key(pulih: &Pulih, repo: &Path, pass: &Path, key: &Path) {
    init(pulih, repo, pass);
    add_agent_key(pulih, repo, pass, key);
}

/// `pulih repo grant-drill`: the walidata lets the `drc-drill` identity
/// whose public key is `recipient` read `repo`.
pub fn grant_drill(pulih: &Pulih, repo: impl AsRef<std::ffi::OsStr>, pass: &Path, recipient: &str) {
    run_ok(
        pulih
            .cmd()
            .args(["repo", "grant-drill", "--repo"])
            .arg(repo)
            .arg("--passphrase-file")
            .arg(pass)
            .arg("--recipient")
            .arg(recipient),
    );
}

/// `pulih repo backup` of `src` into `repo` with agent key `key`, tagged
/// `server=SERVER` as the server's agent tags its snapshots.
pub fn backup_tagged(pulih: &Pulih, repo: &Path, key: &Path, server: &str, src: &Path) {
    run_ok(
        pulih
            .cmd()
            .args(["repo", "backup", "--repo"])
            .arg(repo)
            .arg("--agent-key")
            .arg(key)
            .args(["--tag", &format!("server={server}")])
            .arg(src),
    );
}

/// `pulih repo snapshots --json` of `repo` by the walidata: the list.
pub fn snapshots(pulih: &Pulih, repo: &Path, pass: &Path) -> serde_json::Value {
    last_json(&run_ok(
        pulih
            .cmd()
            .args(["repo", "snapshots", "--json", "--repo"])
            .arg(repo)
            .arg("--passphrase-file")
            .arg(pass),
    ))
}

/// A test workspace: a passphrase file, a repository and an agent key.
pub struct Fixture {
    pub pulih: Pulih,
    pub dir: tempfile::TempDir,
    pub repo: String,
    pub pass: PathBuf,
    pub key: PathBuf,
}

impl Fixture {
    pub fn new(pulih: Pulih) -> Fixture {
        Self::with_repo(pulih, None)
    }

    pub fn with_repo(pulih: Pulih, url: Option<String>) -> Fixture {
        Self::with_options(pulih, url, &[])
    }

    pub fn with_options(pulih: Pulih, url: Option<String>, init_args: &[&str]) -> Fixture {
        let dir = tempfile::tempdir().unwrap();
        let pass = dir.path().join("pass");
        std::fs::write(&pass, "walidata-dinkes-2026\n").unwrap();
        std::fs::set_permissions(&pass, std::fs::Permissions::from_mode(0o600)).unwrap();
        let repo = url.unwrap_or_else(|| dir.path().join("repo").to_string_lossy().into_owned());
        let key = dir.path().join("agent.key");
        run_ok(
            pulih
                .cmd()
                .args(["repo", "init", "--repo", &repo, "--passphrase-file"])
                .arg(&pass)
                .arg("--agent-key-out")
                .arg(&key)
                .args(init_args),
        );
        Fixture {
            pulih,
            dir,
            repo,
            pass,
            key,
        }
    }

    pub fn path(&self, p: &str) -> PathBuf {
        self.dir.path().join(p)
    }

    pub fn backup_cmd(&self, key: &Path, cache: &str, src: &Path) -> Command {
        let mut c = self.pulih.cmd();
        c.args([
            "repo",
            "backup",
            "--json",
            "--repo",
            &self.repo,
            "--agent-key",
        ])
        .arg(key)
        .arg("--cache-dir")
        .arg(self.path(cache))
        .arg(src);
        c
    }

    pub fn backup(&self, src: &Path) -> serde_json::Value {
        last_json(&run_ok(&mut self.backup_cmd(&self.key, "cache", src)))
    }

    pub fn restore_cmd(&self, snapshot: &str, target: &Path) -> Command {
        let mut c = self.pulih.cmd();
        c.args(["repo", "restore", "--repo", &self.repo, "--passphrase-file"])
            .arg(&self.pass)
            .arg(snapshot)
            .arg("--target")
            .arg(target);
        c
    }

    /// Restores the latest snapshot under `DIR/r` and checks it is `src`,
    /// exactly.
    pub fn assert_latest_restores(&self, src: &Path) {
        let target = self.path("r");
        run_ok(&mut self.restore_cmd("latest", &target));
        assert_same_tree(src, &restored(&target, src));
    }

    pub fn verify(&self, read_data: bool) -> Output {
        let mut c = self.pulih.cmd();
        c.args(["repo", "verify", "--repo", &self.repo, "--passphrase-file"])
            .arg(&self.pass);
        if read_data {
            c.arg("--read-data");
        }
        c.output().unwrap()
    }
}
