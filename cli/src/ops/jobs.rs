//! `pulih replicate`, `verify`, `restore`: jobs for a server's agent, and
//! following a run to its end.

use pulih_model::state::{JobKind, RunState};

use super::*;

#[derive(Args)]
pub struct JobArgs {
    server: String,
    /// Wait until the run finishes and print its result.
    #[arg(long)]
    wait: bool,
    /// Give up waiting after this many seconds.
    #[arg(long, default_value_t = 3600)]
    timeout: u64,
    #[arg(long)]
    json: bool,
    #[command(flatten)]
    conn: Conn,
}

pub async fn wait_run(api: &Api, run_key: &str, timeout: Duration) -> Result<Run> {
    let deadline = tokio::time::Instant::now() + timeout;
    loop {
        let r: Run = api.get(&routes::path(routes::RUN, &[run_key])).await?;
        if r.state.is_finished() {
            return Ok(r);
        }
        if tokio::time::Instant::now() >= deadline {
            bail!(
                "run {run_key} is still {} after {}s",
                r.state,
                timeout.as_secs()
            );
        }
        tokio::time::sleep(Duration::from_millis(500)).await;
    }
}

fn print_run(r: &Run) {
    if r.kind == JobKind::Verify {
        println!(
            "{} {} verify {}: {} problem(s) in {:.1}s",
            r.run_key,
            r.server,
            r.state,
            r.errors.len(),
            r.duration_s
        );
        for e in &r.errors {
            println!("  problem: {e}");
        }
        return;
    }
    println!(
        "{} {} {} {}: snapshot {}, {} files, {} read, {} new, {} stored in {:.1}s",
        r.run_key,
        r.server,
        r.kind,
        r.state,
        r.snapshot_id.as_deref().unwrap_or("-"),
        r.files,
        crate::repo::human(r.bytes_read),
        crate::repo::human(r.bytes_new),
        crate::repo::human(r.bytes_stored),
        r.duration_s
    );
    for e in &r.errors {
        println!(
            "  {}: {e}",
            if r.kind == JobKind::Verify {
                "problem"
            } else {
                "error"
            }
        );
    }
}

pub async fn replicate(a: JobArgs) -> Result<u8> {
    run_job(a, "replicate", serde_json::json!({})).await
}

/// Check the server's own space in its repository, as its agent key can.
pub async fn verify(a: JobArgs) -> Result<u8> {
    run_job(a, "verify", serde_json::json!({})).await
}

#[derive(Args)]
pub struct RestoreArgs {
    #[command(flatten)]
    job: JobArgs,
    /// Absolute directory on the server, absent or empty; each backed-up
    /// path lands at TARGET/<its absolute path>.
    #[arg(long)]
    target: String,
    /// A snapshot id (or unique prefix) of this server, or `latest`.
    #[arg(long, default_value = "latest")]
    snapshot: String,
    /// Restore only this backed-up path and what is below it (repeatable).
    #[arg(long)]
    include: Vec<String>,
}

/// Restore on the server itself (the agent needs the walidata's reader key).
pub async fn restore(a: RestoreArgs) -> Result<u8> {
    let body = pulih_model::api::RestoreRequest {
        target: a.target,
        snapshot: a.snapshot,
        include: a.include,
    };
    run_job(a.job, "restore", serde_json::to_value(body)?).await
}

/// Queue a job for a server's agent; with `--wait`, follow it to its end.
async fn run_job(a: JobArgs, kind: &str, body: serde_json::Value) -> Result<u8> {
    let route = match kind {
        "replicate" => routes::SERVER_REPLICATE,
        "verify" => routes::SERVER_VERIFY,
        _ => routes::SERVER_RESTORE,
    };
    let api = a.conn.connect()?;
    let q: ReplicateResponse = api.post(&routes::path(route, &[&a.server]), &body).await?;
    if !a.wait {
        if a.json {
            println!("{}", serde_json::to_string(&q)?);
        } else {
            println!(
                "queued {kind} {}; the agent picks it up at its next heartbeat",
                q.run_key
            );
        }
        return Ok(exit::OK);
    }
    let r = wait_run(&api, &q.run_key, Duration::from_secs(a.timeout)).await?;
    if a.json {
        println!("{}", serde_json::to_string(&r)?);
    } else {
        print_run(&r);
    }
    Ok(match r.state {
        RunState::Succeeded => exit::OK,
        RunState::Partial => exit::PARTIAL,
        _ => exit::ERROR,
    })
}
