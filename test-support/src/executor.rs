//! The DRC executor (`pulih agent --role drc`) on the host.

use std::path::{Path, PathBuf};

use crate::process::{Proc, last_json, run_ok};
use crate::pulih::Pulih;
use crate::secret::write_secret;

/// A DRC executor's files under `DIR/executor`, ready to start.
pub struct Executor {
    pub dir: PathBuf,
    /// Its `drc-drill` identity, and the public key the walidata grants.
    pub identity: PathBuf,
    pub recipient: String,
    pub config: PathBuf,
    pub state: PathBuf,
    pub scratch: PathBuf,
}

impl Executor {
    /// Makes the `drc-drill` identity, enrols target `drc` of the
    /// controller at `url`, and writes `drc.toml` (heartbeat every second,
    /// `service_network` for failovers, then `extra` TOML lines).
    pub fn prepare(
        pulih: &Pulih,
        url: &str,
        token: &Path,
        dir: &Path,
        service_network: &str,
        extra: &str,
    ) -> Executor {
        let xdir = dir.join("executor");
        std::fs::create_dir_all(&xdir).unwrap();
        let identity = xdir.join("drc-drill.key");
        let out = run_ok(pulih.cmd().args(["drc", "keygen", "--out"]).arg(&identity));
        let recipient = String::from_utf8(out.stdout).unwrap().trim().to_string();
        assert!(recipient.starts_with("age1"), "{recipient}");
        let t = last_json(&run_ok(pulih.ops(url, token).args([
            "drc",
            "enroll-token",
            "drc",
            "--json",
        ])));
        assert_eq!(t["server"], "drc:drc");
        let tfile = xdir.join("enroll.token");
        write_secret(&tfile, t["token"].as_str().unwrap());
        let (state, scratch) = (xdir.join("state"), xdir.join("scratch"));
        let config = xdir.join("drc.toml");
        std::fs::write(
            &config,
            format!(
                "controller = {url:?}\ntarget = \"drc\"\nstate_dir = {:?}\nidentity_file = {:?}\nenroll_token_file = {:?}\nscratch_dir = {:?}\nheartbeat_interval = \"1s\"\nservice_network = {:?}\n{extra}",
                state.display().to_string(),
                identity.display().to_string(),
                tfile.display().to_string(),
                scratch.display().to_string(),
                service_network,
            ),
        )
        .unwrap();
        Executor {
            dir: xdir,
            identity,
            recipient,
            config,
            state,
            scratch,
        }
    }

    pub fn spawn(&self, pulih: &Pulih) -> Proc {
        Proc::spawn(
            "drc executor",
            pulih
                .cmd()
                .args(["agent", "--role", "drc", "--config"])
                .arg(&self.config),
            self.dir.join("executor.log"),
        )
    }
}
