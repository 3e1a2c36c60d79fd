//! `pulih maintenance`: the controller's retention runs, and one now.

use pulih_model::state::MaintenanceState;

use super::*;

#[derive(Args)]
#[command(args_conflicts_with_subcommands = true)]
pub struct MaintenanceArgs {
    #[command(subcommand)]
    command: Option<MaintenanceCommand>,
    #[arg(long, default_value_t = 20)]
    limit: u32,
    #[arg(long)]
    json: bool,
    #[command(flatten)]
    conn: Conn,
}

#[derive(Subcommand)]
enum MaintenanceCommand {
    /// Run retention now (every agency, or `--pd NAME`).
    Run {
        #[arg(long)]
        pd: Option<String>,
        /// Wait until the runs finish and print them.
        #[arg(long)]
        wait: bool,
        #[arg(long, default_value_t = 3600)]
        timeout: u64,
        #[arg(long)]
        json: bool,
    },
}

fn print_maintenance(runs: &[pulih_model::api::MaintenanceRun]) {
    table(
        &[
            "ID",
            "AGENCY",
            "TRIGGER",
            "STATE",
            "FINISHED",
            "SNAPSHOTS",
            "FORGOTTEN",
            "PACKS DELETED",
            "FREED",
        ],
        runs.iter()
            .map(|r| {
                vec![
                    r.id.to_string(),
                    r.perangkat_daerah.clone(),
                    r.trigger.clone(),
                    r.state.to_string(),
                    wita(&r.finished_at),
                    r.snapshots.to_string(),
                    r.forgotten.to_string(),
                    r.deleted_packs.to_string(),
                    crate::repo::human(r.bytes_deleted),
                ]
            })
            .collect(),
    );
    for r in runs {
        if let Some(e) = &r.error {
            println!("  {} {}: {e}", r.id, r.perangkat_daerah);
        }
    }
}

/// Retention runs of the controller's maintenance schedule (and `run` now).
pub async fn maintenance(a: MaintenanceArgs) -> Result<u8> {
    let api = a.conn.connect()?;
    let Some(MaintenanceCommand::Run {
        pd,
        wait,
        timeout,
        json,
    }) = a.command
    else {
        let runs: Vec<pulih_model::api::MaintenanceRun> = api
            .get(&format!(
                "{}?limit={}",
                routes::path(routes::MAINTENANCE, &[]),
                a.limit
            ))
            .await?;
        if a.json {
            println!("{}", serde_json::to_string(&runs)?);
        } else {
            print_maintenance(&runs);
        }
        return Ok(exit::OK);
    };
    let q: pulih_model::api::MaintenanceQueued = api
        .post(
            &routes::path(routes::MAINTENANCE_RUN, &[]),
            &pulih_model::api::MaintenanceRequest {
                perangkat_daerah: pd,
            },
        )
        .await?;
    if !wait {
        if json {
            println!("{}", serde_json::to_string(&q)?);
        } else {
            println!("queued maintenance runs {:?}", q.ids);
        }
        return Ok(exit::OK);
    }
    let deadline = tokio::time::Instant::now() + Duration::from_secs(timeout);
    let mine = loop {
        let runs: Vec<pulih_model::api::MaintenanceRun> = api
            .get(&format!(
                "{}?limit=1000",
                routes::path(routes::MAINTENANCE, &[])
            ))
            .await?;
        let mine: Vec<_> = runs.into_iter().filter(|r| q.ids.contains(&r.id)).collect();
        if mine.iter().all(|r| {
            matches!(
                r.state,
                MaintenanceState::Succeeded | MaintenanceState::Skipped | MaintenanceState::Failed
            )
        }) {
            break mine;
        }
        if tokio::time::Instant::now() >= deadline {
            bail!("maintenance runs {:?} still going after {timeout}s", q.ids);
        }
        tokio::time::sleep(Duration::from_millis(500)).await;
    };
    if json {
        println!("{}", serde_json::to_string(&mine)?);
    } else {
        print_maintenance(&mine);
    }
    Ok(
        if mine.iter().any(|r| r.state == MaintenanceState::Failed) {
            exit::ERROR
        } else {
            exit::OK
        },
    )
}
