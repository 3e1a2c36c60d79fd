//! The `pulih` binary under test.

use std::path::Path;
use std::process::Command;

/// The `pulih` binary a test runs; its path comes from the test target
/// (`Pulih::new(env!("CARGO_BIN_EXE_pulih"))`), which only the `pulih`
/// package's tests know.
#[derive(Clone, Copy, Debug)]
pub struct Pulih(&'static str);

impl Pulih {
    pub const fn new(bin: &'static str) -> Pulih {
        Pulih(bin)
    }

    pub fn bin(&self) -> &'static str {
        self.0
    }

    /// A `pulih` command with a cheap argon2id and none of the caller's
    /// repository settings.
    pub fn cmd(&self) -> Command {
        let mut c = Command::new(self.0);
        // A cheap argon2id (64 KiB) keeps the passphrase slot fast in tests.
        c.env("PULIH_TEST_ARGON2_M_KIB", "64")
            .env_remove("PULIH_REPO")
            .env_remove("PULIH_AGENT_KEY")
            .env_remove("PULIH_PASSPHRASE_FILE");
        c
    }

    /// An ops command against the controller at `url` with the token in
    /// `token`.
    pub fn ops(&self, url: &str, token: &Path) -> Command {
        let mut c = self.cmd();
        c.env("PULIH_CONTROLLER", url)
            .env("PULIH_TOKEN_FILE", token)
            .env_remove("PULIH_TOKEN")
            .env_remove("PULIH_INSECURE_HTTP");
        // A controller on a test's own Docker network, in plain HTTP:
        // allowed explicitly, as an operator would have to.
        let host = url
            .strip_prefix("http://")
            .and_then(|r| r.split([':', '/']).next());
        if host.is_some_and(|h| h != "localhost" && !h.starts_with("127.")) {
            c.env("PULIH_INSECURE_HTTP", "true");
        }
        c
    }
}
