//! Recovery plans through the controller: `pulih drill run PLAN` and
//! `pulih failover start PLAN` start a run (see [`start`]); `pulih plan
//! list|show|approve|resume|rollback` follow and steer it.

use pulih_model::routes;
use pulih_model::state::PlanRunState;
use std::path::PathBuf;
use std::time::Duration;

use anyhow::{Result, bail};
use clap::{Args, Subcommand};
use pulih_model::api::{FailoverRequest, PlanApproveRequest, PlanRunView};
use pulih_model::manifest::types::KeyHolderRole;

use crate::exit;
use crate::ops::{Api, ApiFailure, Conn, table, wita};

#[derive(Args)]
pub struct PlanArgs {
    #[command(subcommand)]
    command: PlanCommand,
    #[command(flatten)]
    conn: Conn,
}

#[derive(Subcommand)]
enum PlanCommand {
    /// Recovery plan runs, newest first (start one with `pulih drill run
    /// PLAN` or `pulih failover start PLAN`).
    List {
        #[arg(long, default_value_t = 20)]
        limit: u32,
        #[arg(long)]
        json: bool,
    },
    /// One run: its groups in order, each server's recovery and outcome.
    Show {
        id: String,
        #[arg(long)]
        json: bool,
    },
    /// Approve a failover plan's run that awaits approval, as one of the
    /// roles its plan names; the run starts once every role approved
    /// (`--wait` follows it with the admin token).
    Approve {
        id: String,
        /// walidata, dkis-head or regional-secretary.
        #[arg(long, value_parser = parse_role)]
        role: KeyHolderRole,
        /// Who approves (recorded in the run and the audit log).
        #[arg(long)]
        name: String,
        /// The approver token file of that role (the controller's
        /// `[approvers]`).
        #[arg(long, env = "PULIH_APPROVER_TOKEN_FILE", value_name = "FILE")]
        authorization_file: PathBuf,
        #[command(flatten)]
        wait: Wait,
    },
    /// Resume a stopped run: its failed servers are tried again, then the
    /// plan goes on. A failover plan's run needs the failover authorization.
    Resume {
        id: String,
        /// For a failover plan's run: the failover authorization file.
        #[arg(long, env = "PULIH_FAILOVER_TOKEN_FILE", value_name = "FILE")]
        authorization_file: Option<PathBuf>,
        #[command(flatten)]
        wait: Wait,
    },
    /// Roll a run back: a failover plan's servers that are up at the DRC
    /// are failed back (later groups first; their DRC changes go home); a
    /// stopped drill plan's run is closed (the executor removes what it
    /// kept up).
    Rollback {
        id: String,
        /// The order or approval this runs under (recorded in the audit log).
        #[arg(long)]
        order: String,
        /// For a failover plan's run: the failover authorization file.
        #[arg(long, env = "PULIH_FAILOVER_TOKEN_FILE", value_name = "FILE")]
        authorization_file: Option<PathBuf>,
        #[command(flatten)]
        wait: Wait,
    },
}

fn parse_role(s: &str) -> Result<KeyHolderRole, String> {
    serde_json::from_value(serde_json::Value::String(s.to_string()))
        .map_err(|_| format!("`{s}` is no role (walidata, dkis-head, regional-secretary)"))
}

/// Waiting for a run to settle (not running or rolling back any more).
#[derive(Args, Clone, Copy)]
pub struct Wait {
    /// Wait until the run passes or stops; exit 0 when it passed (or
    /// rolled back).
    #[arg(long)]
    pub wait: bool,
    #[arg(long, default_value_t = 3600)]
    pub timeout: u64,
    #[arg(long)]
    pub json: bool,
}

/// Whether `e` says the name is not a recovery plan (so it may be a server).
pub fn is_unknown_plan(e: &anyhow::Error) -> bool {
    e.downcast_ref::<ApiFailure>()
        .is_some_and(|f| f.code == "unknown_plan")
}

/// After a run started or changed: print it, or wait for it to settle.
pub async fn report(api: &Api, run: PlanRunView, wait: Wait) -> Result<u8> {
    let run = if wait.wait {
        settle(api, &run.id, Duration::from_secs(wait.timeout)).await?
    } else {
        run
    };
    if wait.json {
        println!("{}", serde_json::to_string(&run)?);
    } else {
        print_run(&run);
    }
    Ok(match run.state {
        PlanRunState::Passed | PlanRunState::RolledBack => exit::OK,
        PlanRunState::AwaitingApproval | PlanRunState::Running | PlanRunState::RollingBack
            if !wait.wait =>
        {
            exit::OK
        }
        _ => exit::ERROR,
    })
}

async fn settle(api: &Api, id: &str, timeout: Duration) -> Result<PlanRunView> {
    let deadline = tokio::time::Instant::now() + timeout;
    loop {
        let r: PlanRunView = api.get(&routes::path(routes::PLAN_RUN, &[id])).await?;
        if !matches!(
            r.state,
            PlanRunState::AwaitingApproval | PlanRunState::Running | PlanRunState::RollingBack
        ) {
            return Ok(r);
        }
        if tokio::time::Instant::now() >= deadline {
            bail!(
                "plan run {id} is still {} after {}s (`pulih plan show {id}` shows where)",
                r.state,
                timeout.as_secs()
            );
        }
        tokio::time::sleep(Duration::from_millis(500)).await;
    }
}

fn print_run(r: &PlanRunView) {
    println!(
        "{} plan {} run {}: {}{}",
        r.kind.as_str(),
        r.plan,
        r.id,
        r.state,
        r.rto_seconds
            .map(|s| format!(", RTO {s:.1}s"))
            .unwrap_or_default()
    );
    if let Some(e) = &r.error {
        println!("  reason: {e}");
    }
    for g in &r.groups {
        let deps = if g.depends_on.is_empty() {
            String::new()
        } else {
            format!(" (after {})", g.depends_on.join(", "))
        };
        println!("  group {}{deps}: {}", g.name, g.state);
        for d in &g.recoveries {
            println!(
                "    {:<12} {:<44} {:<7} {}",
                d.server,
                d.id,
                d.state,
                d.error.as_deref().unwrap_or("")
            );
        }
    }
    for a in &r.approvals {
        match (&a.approved_by, &a.approved_at) {
            (Some(by), Some(at)) => println!(
                "  approval {:<18} {by} at {}",
                a.role.as_str(),
                wita(&Some(at.clone()))
            ),
            _ => println!("  approval {:<18} needed", a.role.as_str()),
        }
    }
    for s in &r.steps {
        println!(
            "  {} step {:<20} {:<6} {:.1}s {}",
            s.phase,
            s.name,
            if s.ok { "ok" } else { "FAILED" },
            s.duration_s,
            s.detail
        );
    }
    for d in &r.rollback {
        println!(
            "  rollback {:<12} {:<44} {:<7} {}",
            d.server,
            d.id,
            d.state,
            d.error.as_deref().unwrap_or("")
        );
    }
    match r.state {
        PlanRunState::Stopped => println!(
            "  next: `pulih plan resume {0}` retries the failed servers, `pulih plan rollback {0} --order …` undoes it",
            r.id
        ),
        PlanRunState::Running | PlanRunState::RollingBack => {
            println!("  follow: `pulih plan show {}`", r.id)
        }
        PlanRunState::AwaitingApproval => {
            for a in r.approvals.iter().filter(|a| a.approved_by.is_none()) {
                println!(
                    "  next: `pulih plan approve {} --role {} --name \"…\" --authorization-file FILE` (the {} approver's token)",
                    r.id,
                    a.role.as_str(),
                    a.role.as_str()
                );
            }
            println!("  or: `pulih plan rollback {} --order …` cancels it", r.id);
        }
        _ => {}
    }
}

pub async fn run(a: PlanArgs) -> Result<u8> {
    // The admin token reads runs; steering a failover plan's run needs
    // only the failover authorization (and the admin token to --wait).
    let admin = || a.conn.connect();
    // A failover plan's run is steered with the failover authorization.
    let steer = |file: &Option<PathBuf>| match file {
        Some(f) => a.conn.connect_with(f),
        None => a.conn.connect(),
    };
    match a.command {
        PlanCommand::List { limit, json } => {
            let runs: Vec<PlanRunView> = admin()?
                .get(&format!(
                    "{}?limit={limit}",
                    routes::path(routes::PLAN_RUNS, &[])
                ))
                .await?;
            if json {
                println!("{}", serde_json::to_string(&runs)?);
            } else {
                table(
                    &[
                        "RUN", "PLAN", "KIND", "STATE", "STARTED", "FINISHED", "REASON",
                    ],
                    runs.iter()
                        .map(|r| {
                            vec![
                                r.id.clone(),
                                r.plan.clone(),
                                r.kind.as_str().to_string(),
                                r.state.to_string(),
                                wita(&Some(r.created_at.clone())),
                                wita(&r.finished_at),
                                r.error.clone().unwrap_or_default(),
                            ]
                        })
                        .collect(),
                );
            }
            Ok(exit::OK)
        }
        PlanCommand::Show { id, json } => {
            let api = admin()?;
            let r: PlanRunView = api.get(&routes::path(routes::PLAN_RUN, &[&id])).await?;
            report(
                &api,
                r,
                Wait {
                    wait: false,
                    timeout: 0,
                    json,
                },
            )
            .await
        }
        PlanCommand::Approve {
            id,
            role,
            name,
            authorization_file,
            wait,
        } => {
            let approver = a.conn.connect_with(&authorization_file)?;
            let r: PlanRunView = approver
                .post(
                    &routes::path(routes::PLAN_RUN_APPROVE, &[&id]),
                    &PlanApproveRequest { role, name },
                )
                .await?;
            let api = if wait.wait { admin()? } else { approver };
            report(&api, r, wait).await
        }
        PlanCommand::Resume {
            id,
            authorization_file,
            wait,
        } => {
            let steering = steer(&authorization_file)?;
            let r: PlanRunView = steering
                .post(
                    &routes::path(routes::PLAN_RUN_RESUME, &[&id]),
                    &serde_json::json!({}),
                )
                .await?;
            let api = if wait.wait { admin()? } else { steering };
            report(&api, r, wait).await
        }
        PlanCommand::Rollback {
            id,
            order,
            authorization_file,
            wait,
        } => {
            let steering = steer(&authorization_file)?;
            let r: PlanRunView = steering
                .post(
                    &routes::path(routes::PLAN_RUN_ROLLBACK, &[&id]),
                    &FailoverRequest {
                        order,
                        snapshot: None,
                    },
                )
                .await?;
            let api = if wait.wait { admin()? } else { steering };
            report(&api, r, wait).await
        }
    }
}
