//! `pulih controller` on loopback, as the end-to-end tests start it.

use std::io::{BufRead, BufReader};
use std::path::{Path, PathBuf};

use crate::process::{Proc, run_ok};
use crate::pulih::Pulih;
use crate::secret::write_secret;

/// Starts `pulih controller` with `config` on `listen` and reads its
/// address from its first line of stdout: (process, URL).
pub fn start_controller(pulih: &Pulih, config: &Path, dir: &Path, listen: &str) -> (Proc, String) {
    let mut p = Proc::spawn(
        "controller",
        pulih
            .cmd()
            .args(["controller", "--config"])
            .arg(config)
            .args(["--listen", listen]),
        dir.join(format!("controller-{}.log", rand::random::<u32>())),
    );
    let mut line = String::new();
    BufReader::new(p.child.stdout.take().unwrap())
        .read_line(&mut line)
        .unwrap();
    let url = line
        .trim()
        .strip_prefix("controller: ")
        .unwrap_or_else(|| panic!("unexpected first line {line:?}; log:\n{}", p.log_text()))
        .to_string();
    (p, url)
}

/// A running controller and where it keeps its state.
pub struct Controller {
    pub proc: Proc,
    pub url: String,
    /// The admin token it wrote (`<state>/admin.token`).
    pub token: PathBuf,
    pub state: PathBuf,
    pub config: PathBuf,
}

impl Controller {
    /// Writes `DIR/controller.toml` (`state_dir = DIR/controller` and then
    /// `settings`, TOML lines) and starts the controller on 127.0.0.1, any
    /// port.
    pub fn start(pulih: &Pulih, dir: &Path, settings: &str) -> Controller {
        let state = dir.join("controller");
        let config = dir.join("controller.toml");
        std::fs::write(
            &config,
            format!("state_dir = {:?}\n{settings}", state.display().to_string()),
        )
        .unwrap();
        let (proc, url) = start_controller(pulih, &config, dir, "127.0.0.1:0");
        Controller {
            proc,
            url,
            token: state.join("admin.token"),
            state,
            config,
        }
    }

    /// (process, URL, admin token).
    pub fn into_parts(self) -> (Proc, String, PathBuf) {
        (self.proc, self.url, self.token)
    }

    /// `pulih apply -f DIR` with the admin token.
    pub fn apply(&self, pulih: &Pulih, manifests: &Path) {
        run_ok(
            pulih
                .ops(&self.url, &self.token)
                .args(["apply", "-f"])
                .arg(manifests),
        );
    }
}

/// Starts a controller (Pusat Data 127.0.0.0/8) with a failover
/// authorization (`DIR/failover.token`, returned) and an approver for
/// `dkis-head` (token in `DIR/approver-dkis-head.token`) and applies the
/// manifests in `manifests`.
pub fn start_failover_controller(
    pulih: &Pulih,
    dir: &Path,
    manifests: &Path,
) -> (Controller, PathBuf) {
    let failover_token = dir.join("failover.token");
    write_secret(&failover_token, "failover authority of the DKIS head\n");
    let approver = dir.join("approver-dkis-head.token");
    write_secret(&approver, "approval of the head of DKIS\n");
    let controller = Controller::start(
        pulih,
        dir,
        &format!(
            "pusat_data_subnets = [\"127.0.0.0/8\"]\nfailover_token_file = {:?}\n[approvers]\ndkis-head = {:?}\n",
            failover_token.display().to_string(),
            approver.display().to_string()
        ),
    );
    controller.apply(pulih, manifests);
    (controller, failover_token)
}
