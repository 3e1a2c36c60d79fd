//! `pulih drill run|list|report`: drills through the controller, run by
//! the DRC executor of the server's DRC target (`pulih agent --role drc`).

use pulih_model::routes;
use pulih_model::state::{DrillState, RunState};
use std::time::Duration;

use anyhow::{Result, bail};
use clap::{Args, Subcommand};
use pulih_model::api::{DrillQueued, DrillRequest, DrillView};

use crate::exit;
use crate::ops::{Api, Conn, table, wita};

#[derive(Args)]
pub struct DrillArgs {
    #[command(subcommand)]
    command: DrillCommand,
    #[command(flatten)]
    conn: Conn,
}

#[derive(Subcommand)]
enum DrillCommand {
    /// Queue a drill of a server, or of a recovery plan (its servers in
    /// group order), for the DRC executor. With --wait, exit 0 when it
    /// passed and 1 when it failed (or the plan stopped).
    Run {
        /// A Server, or a RecoveryPlan (by manifest name).
        server: String,
        /// A snapshot id (or unique prefix); default the latest.
        #[arg(long)]
        snapshot: Option<String>,
        /// Wait for the report.
        #[arg(long)]
        wait: bool,
        /// Give up waiting after this many seconds.
        #[arg(long, default_value_t = 3600)]
        timeout: u64,
        #[arg(long)]
        json: bool,
    },
    /// Drills, newest first.
    List {
        /// Only this server's drills.
        #[arg(long)]
        server: Option<String>,
        #[arg(long, default_value_t = 50)]
        limit: u32,
        #[arg(long)]
        json: bool,
    },
    /// One drill's report: steps, checks, RTO/RPO, teardown.
    Report {
        id: String,
        /// As a self-contained HTML page (for auditors).
        #[arg(long, conflicts_with = "json")]
        html: bool,
        #[arg(long)]
        json: bool,
    },
}

async fn wait_drill(api: &Api, id: &str, timeout: Duration) -> Result<DrillView> {
    let deadline = tokio::time::Instant::now() + timeout;
    loop {
        let d: DrillView = api.get(&routes::path(routes::DRILL, &[id])).await?;
        if !d.state.is_open() {
            return Ok(d);
        }
        if tokio::time::Instant::now() >= deadline {
            bail!(
                "{id} is still {} after {}s (is the DRC executor of target {} running? `pulih status` shows agents)",
                d.state,
                timeout.as_secs(),
                d.drc_target
            );
        }
        tokio::time::sleep(Duration::from_millis(500)).await;
    }
}

/// After queuing a drill or failover: say so, or (`waiting`) wait for its
/// outcome and print it; exit 0 when it passed.
async fn report_queued(
    word: &str,
    q: &DrillQueued,
    waiting: Option<(&Api, u64)>,
    json: bool,
) -> Result<u8> {
    let Some((api, timeout)) = waiting else {
        if json {
            println!("{}", serde_json::to_string(q)?);
        } else {
            println!(
                "{word} {} queued for the DRC executor of target {}",
                q.id, q.drc_target
            );
        }
        return Ok(exit::OK);
    };
    let d = wait_drill(api, &q.id, Duration::from_secs(timeout)).await?;
    if json {
        println!("{}", serde_json::to_string(&d)?);
    } else {
        print_view(&d);
    }
    Ok(if d.state == DrillState::Passed {
        exit::OK
    } else {
        exit::ERROR
    })
}

fn secs(v: Option<f64>) -> String {
    v.map_or("-".into(), |s| format!("{s:.1}s"))
}

fn print_view(d: &DrillView) {
    match &d.report {
        Some(r) => crate::drc::print_report(r),
        None => println!("drill {} of {}: {}", d.id, d.server, d.state),
    }
}

pub async fn run(a: DrillArgs) -> Result<u8> {
    let api = a.conn.connect()?;
    match a.command {
        DrillCommand::Run {
            server,
            snapshot,
            wait,
            timeout,
            json,
        } => {
            let req = DrillRequest { snapshot };
            match api
                .post(&routes::path(routes::PLAN_DRILL, &[&server]), &req)
                .await
            {
                Ok(run) => {
                    let wait = crate::plan::Wait {
                        wait,
                        timeout,
                        json,
                    };
                    return crate::plan::report(&api, run, wait).await;
                }
                Err(e) if crate::plan::is_unknown_plan(&e) => {}
                Err(e) => return Err(e),
            }
            let q: DrillQueued = api
                .post(&routes::path(routes::SERVER_DRILL, &[&server]), &req)
                .await?;
            let waiting = wait.then_some((&api, timeout));
            report_queued("drill", &q, waiting, json).await
        }
        DrillCommand::List {
            server,
            limit,
            json,
        } => {
            let mut path = format!("{}?limit={limit}", routes::path(routes::DRILLS, &[]));
            if let Some(s) = &server {
                path.push_str(&format!("&server={s}"));
            }
            let drills: Vec<DrillView> = api.get(&path).await?;
            if json {
                println!("{}", serde_json::to_string(&drills)?);
            } else {
                table(
                    &[
                        "DRILL", "SERVER", "TRIGGER", "STATE", "FINISHED", "RTO", "RPO", "REASON",
                    ],
                    drills
                        .iter()
                        .map(|d| {
                            vec![
                                d.id.clone(),
                                d.server.clone(),
                                d.trigger.clone(),
                                d.state.to_string(),
                                wita(&d.finished_at),
                                secs(d.rto_seconds),
                                secs(d.rpo_seconds),
                                d.error.clone().unwrap_or_default(),
                            ]
                        })
                        .collect(),
                );
            }
            Ok(exit::OK)
        }
        DrillCommand::Report { id, html, json } => {
            let d: DrillView = api.get(&routes::path(routes::DRILL, &[&id])).await?;
            if json {
                println!("{}", serde_json::to_string(&d)?);
            } else if html {
                let Some(r) = &d.report else {
                    bail!("drill {id} is {} and has no report yet", d.state);
                };
                print!("{}", r.to_html());
            } else {
                print_view(&d);
            }
            Ok(exit::OK)
        }
    }
}

#[derive(Args)]
pub struct FailoverArgs {
    #[command(subcommand)]
    command: FailoverCommand,
    #[command(flatten)]
    conn: Conn,
}

#[derive(Subcommand)]
enum FailoverCommand {
    /// Bring a server (or a recovery plan's servers, in group order) up at
    /// the DRC for real: restore, start on the DRC's service network with
    /// its ports, check, switch traffic (the executor's hook), and leave it
    /// running. Needs the failover authorization, not the admin token.
    Start {
        /// A Server, or a RecoveryPlan (by manifest name).
        server: String,
        /// The order or approval this runs under (recorded in the audit log).
        #[arg(long)]
        order: String,
        /// File holding the failover authorization (the controller's
        /// failover_token_file).
        #[arg(long, env = "PULIH_FAILOVER_TOKEN_FILE", value_name = "FILE")]
        authorization_file: std::path::PathBuf,
        /// A snapshot id (or unique prefix); default the latest.
        #[arg(long)]
        snapshot: Option<String>,
        /// Wait for the outcome; exit 0 when the server is up at the DRC.
        #[arg(long)]
        wait: bool,
        #[arg(long, default_value_t = 3600)]
        timeout: u64,
        #[arg(long)]
        json: bool,
    },
}

pub async fn failover(a: FailoverArgs) -> Result<u8> {
    match a.command {
        FailoverCommand::Start {
            server,
            order,
            authorization_file,
            snapshot,
            wait,
            timeout,
            json,
        } => {
            let authorized = a.conn.connect_with(&authorization_file)?;
            let req = pulih_model::api::FailoverRequest { order, snapshot };
            // Reading the outcome is ops' business: the admin token.
            let api = if wait { Some(a.conn.connect()?) } else { None };
            match authorized
                .post(&routes::path(routes::PLAN_FAILOVER, &[&server]), &req)
                .await
            {
                Ok(run) => {
                    let wait = crate::plan::Wait {
                        wait,
                        timeout,
                        json,
                    };
                    return crate::plan::report(api.as_ref().unwrap_or(&authorized), run, wait)
                        .await;
                }
                Err(e) if crate::plan::is_unknown_plan(&e) => {}
                Err(e) => return Err(e),
            }
            let q: DrillQueued = authorized
                .post(&routes::path(routes::SERVER_FAILOVER, &[&server]), &req)
                .await?;
            report_queued("failover", &q, api.as_ref().map(|api| (api, timeout)), json).await
        }
    }
}

#[derive(Args)]
pub struct FailbackArgs {
    /// The failed-over server.
    server: String,
    /// The order or approval this runs under (recorded in the audit log).
    #[arg(long)]
    order: String,
    /// File holding the failover authorization (failback needs it too).
    #[arg(long, env = "PULIH_FAILOVER_TOKEN_FILE", value_name = "FILE")]
    authorization_file: std::path::PathBuf,
    /// Wait until the primary has restored the DRC's data; exit 0 then.
    #[arg(long)]
    wait: bool,
    #[arg(long, default_value_t = 3600)]
    timeout: u64,
    #[arg(long)]
    json: bool,
    #[command(flatten)]
    conn: Conn,
}

/// Ends a failover: the DRC copy stops and its data is replicated back,
/// then the primary's agent restores it in place.
pub async fn failback(a: FailbackArgs) -> Result<u8> {
    let q: DrillQueued = a
        .conn
        .connect_with(&a.authorization_file)?
        .post(
            &routes::path(routes::SERVER_FAILBACK, &[&a.server]),
            &pulih_model::api::FailoverRequest {
                order: a.order,
                snapshot: None,
            },
        )
        .await?;
    if !a.wait {
        if a.json {
            println!("{}", serde_json::to_string(&q)?);
        } else {
            println!(
                "failback {} queued: the DRC executor of {} replicates back, then the primary restores",
                q.id, q.drc_target
            );
        }
        return Ok(exit::OK);
    }
    let api = a.conn.connect()?;
    let deadline = Duration::from_secs(a.timeout);
    let d = wait_drill(&api, &q.id, deadline).await?;
    if d.state != DrillState::Passed {
        if a.json {
            println!("{}", serde_json::to_string(&serde_json::json!({"drc": d}))?);
        } else {
            print_view(&d);
        }
        return Ok(exit::ERROR);
    }
    let run = crate::ops::wait_run(&api, &format!("{}-primary", q.id), deadline).await?;
    if a.json {
        println!(
            "{}",
            serde_json::to_string(&serde_json::json!({"drc": d, "primary": run}))?
        );
    } else {
        print_view(&d);
        println!(
            "primary: restore of snapshot {} {} ({} files){}",
            run.snapshot_id.as_deref().unwrap_or("-"),
            run.state,
            run.files,
            if run.errors.is_empty() {
                String::new()
            } else {
                format!(": {}", run.errors.join("; "))
            }
        );
    }
    Ok(if run.state == RunState::Succeeded {
        exit::OK
    } else {
        exit::ERROR
    })
}
