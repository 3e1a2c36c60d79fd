//! The switch at the end of a failover (DNS/IP to the DRC) and of a
//! failback (back to the primary): the configured hook, run with what it
//! needs in its environment, timed as the `switch` step.

use anyhow::{Context, Result, bail};

use super::Run;

impl Run<'_> {
    /// Run the switch hook (failover: DNS/IP to the DRC; failback: back to
    /// the primary) with what it needs in its environment.
    pub(super) async fn switch_hook(&mut self, phase: &str) -> Result<()> {
        let plan = self.plan;
        let mut addresses: Vec<String> = self
            .running
            .iter()
            .map(|(k, (_, ip))| format!("{k}={}", ip.map_or(String::new(), |a| a.to_string())))
            .collect();
        addresses.sort();
        self.timed("switch", async {
            let Some((prog, args)) = plan.switch_hook.split_first() else {
                return Ok((
                    (),
                    format!("no switch hook configured: switch DNS/IP by hand ({phase})"),
                ));
            };
            let run = tokio::process::Command::new(prog)
                .args(args)
                .env("PULIH_SERVER", &plan.server)
                .env("PULIH_RECOVERY_ID", &plan.id)
                .env("PULIH_NETWORK", plan.network())
                .env("PULIH_ADDRESSES", addresses.join(","))
                .env("PULIH_PHASE", phase)
                .kill_on_drop(true)
                .output();
            let out = tokio::time::timeout(std::time::Duration::from_secs(120), run)
                .await
                .map_err(|_| anyhow::anyhow!("switch hook {prog} did not finish within 120 s"))?
                .with_context(|| format!("cannot run switch hook {prog}"))?;
            if !out.status.success() {
                bail!(
                    "switch hook {prog} failed ({}): {}",
                    out.status,
                    String::from_utf8_lossy(&out.stderr).trim()
                );
            }
            Ok(((), format!("{prog} ran ({phase})")))
        })
        .await
    }
}
