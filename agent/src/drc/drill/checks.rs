//! Health checks of a recovered application (HTTP status and body, TCP
//! connect, a command in a container with its expected output), each
//! retried until it passes or its timeout runs out.

use std::net::IpAddr;
use std::time::{Duration, Instant};

use anyhow::{Result, bail};
use bollard::Docker;
use pulih_model::drill::CheckOutcome;
use pulih_model::manifest::HealthCheck;

use super::Run;
use crate::docker;

pub const DEFAULT_TIMEOUT: Duration = Duration::from_secs(60);
const RETRY: Duration = Duration::from_millis(500);

/// One attempt's verdict: passed, or why not.
type Attempt = Result<String, String>;

/// The container a check looks at (its manifest name).
pub fn target(c: &HealthCheck) -> &str {
    if let Some(h) = &c.http {
        &h.container
    } else if let Some(t) = &c.tcp {
        &t.container
    } else {
        c.exec.as_ref().map_or("", |e| e.container.as_str())
    }
}

async fn attempt(
    docker: &Docker,
    http: &reqwest::Client,
    c: &HealthCheck,
    container: &str,
    ip: Option<IpAddr>,
) -> Attempt {
    if let Some(h) = &c.http {
        let ip = ip.ok_or("the container has no address on the recovery network")?;
        if !h.path.starts_with('/') {
            return Err(format!("HTTP check path `{}` must start with `/`", h.path));
        }
        // SocketAddr brackets IPv6; the path cannot change the host.
        let url = format!("http://{}{}", std::net::SocketAddr::new(ip, h.port), h.path);
        let resp = http
            .get(&url)
            .send()
            .await
            .map_err(|e| format!("GET {url}: {e}"))?;
        let status = resp.status().as_u16();
        let body = resp.text().await.unwrap_or_default();
        if status != h.expect_status {
            return Err(format!(
                "GET {} answered {status}, expected {}",
                h.path, h.expect_status
            ));
        }
        if let Some(want) = &h.expect_body_contains
            && !body.contains(want.as_str())
        {
            return Err(format!(
                "GET {} answered {status} without `{want}` in its body",
                h.path
            ));
        }
        return Ok(format!("GET {} answered {status}", h.path));
    }
    if let Some(t) = &c.tcp {
        let ip = ip.ok_or("the container has no address on the recovery network")?;
        return match tokio::time::timeout(
            Duration::from_secs(2),
            tokio::net::TcpStream::connect((ip, t.port)),
        )
        .await
        {
            Ok(Ok(_)) => Ok(format!("port {} accepts connections", t.port)),
            Ok(Err(e)) => Err(format!("connect to port {}: {e}", t.port)),
            Err(_) => Err(format!("connect to port {} timed out", t.port)),
        };
    }
    let Some(e) = &c.exec else {
        return Err("the check sets none of http, tcp, exec".into());
    };
    match docker::exec(docker, container, &e.command, Duration::from_secs(30)).await {
        Ok((0, out, _)) => match &e.expect_output_contains {
            Some(want) if !out.contains(want.as_str()) => Err(format!(
                "{:?} printed `{}`, without `{want}`",
                e.command,
                out.trim()
            )),
            _ => Ok(format!("{:?} printed `{}`", e.command, out.trim())),
        },
        Ok((code, _, err)) => Err(format!(
            "{:?} exited with {code}: {}",
            e.command,
            err.trim()
        )),
        Err(err) => Err(format!("{err:#}")),
    }
}

/// Whether the container still runs; Err says how it ended.
async fn still_running(docker: &Docker, container: &str) -> Result<(), String> {
    let info = docker
        .inspect_container(container, None)
        .await
        .map_err(|e| format!("container is gone: {e}"))?;
    let state = info.state.unwrap_or_default();
    if state.running == Some(true) {
        Ok(())
    } else if state.oom_killed == Some(true) {
        let limit = info.host_config.and_then(|h| h.memory).unwrap_or(0);
        Err(format!(
            "the container was killed for going over its memory limit ({limit} bytes; spec.recovery.containers[].limits.memory) (exit code {})",
            state.exit_code.unwrap_or(-1)
        ))
    } else {
        Err(format!(
            "the container stopped (exit code {})",
            state.exit_code.unwrap_or(-1)
        ))
    }
}

/// Whether a running container is at its process limit (a check that
/// cannot exec or answer may be why): a note for the failed check.
async fn at_pids_limit(docker: &Docker, container: &str) -> Option<String> {
    use futures::StreamExt;
    let opts = bollard::query_parameters::StatsOptionsBuilder::default()
        .stream(false)
        .one_shot(true)
        .build();
    let stats = docker.stats(container, Some(opts)).next().await?.ok()?;
    let pids = stats.pids_stats?;
    let (current, limit) = (pids.current?, pids.limit?);
    // Near it counts: the processes that found the limit may be gone
    // by the time the engine counts.
    (limit > 0 && current.saturating_mul(10) >= limit.saturating_mul(9)).then(|| {
        format!(
            "; the container is at its process limit or close to it ({current} of {limit}; spec.recovery.containers[].limits.pids)"
        )
    })
}

/// Runs a check until it passes or its timeout ends: (ok, attempts, detail).
/// A container that stops fails its check at once.
pub async fn run(
    docker: &Docker,
    c: &HealthCheck,
    container: &str,
    ip: Option<IpAddr>,
) -> (bool, u32, String) {
    let timeout = c.timeout.as_ref().map_or(DEFAULT_TIMEOUT, |d| d.0);
    let http = reqwest::Client::builder()
        .timeout(Duration::from_secs(5))
        .no_proxy()
        // A redirect could send the executor (on the DRC host, outside
        // the isolated network) anywhere: never follow one.
        .redirect(reqwest::redirect::Policy::none())
        .build()
        .expect("a plain HTTP client builds");
    let start = Instant::now();
    let mut attempts = 0;
    loop {
        attempts += 1;
        match attempt(docker, &http, c, container, ip).await {
            Ok(detail) => return (true, attempts, detail),
            Err(why) => {
                if let Err(stopped) = still_running(docker, container).await {
                    return (false, attempts, format!("{why}; {stopped}"));
                }
                if start.elapsed() >= timeout {
                    let pids = at_pids_limit(docker, container).await.unwrap_or_default();
                    return (
                        false,
                        attempts,
                        format!("not healthy within {}s: {why}{pids}", timeout.as_secs()),
                    );
                }
            }
        }
        tokio::time::sleep(RETRY).await;
    }
}

impl Run<'_> {
    /// Runs the health checks of the containers in `group` (just
    /// started), each recorded in the report; the first that fails ends
    /// the recovery.
    pub(super) async fn health_checks(&mut self, group: &[&str]) -> Result<()> {
        let plan = self.plan;
        let docker = self.docker.clone();
        for check in plan
            .recovery
            .health_checks
            .iter()
            .filter(|h| group.contains(&target(h)))
        {
            let target_name = target(check);
            let (engine_name, ip) = self.running[target_name].clone();
            let (ok, attempts, detail) = run(&docker, check, &engine_name, ip).await;
            self.report.checks.push(CheckOutcome {
                name: check.name.clone(),
                kind: check.kind(),
                ok,
                attempts,
                at_s: self.at(),
                detail: detail.clone(),
            });
            if !ok {
                bail!("health check `{}` failed: {detail}", check.name);
            }
        }
        Ok(())
    }
}
