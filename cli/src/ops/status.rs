//! `pulih status`: counts of servers and runs.

use super::*;

#[derive(Args)]
pub struct JsonArgs {
    #[arg(long)]
    json: bool,
    #[command(flatten)]
    conn: Conn,
}

pub(super) fn counts_line(c: &Counts) -> String {
    format!(
        "{} servers: {} centralized ({}%), {} at the DRC, {} not centralized, {} unknown, {} exempt, {} mismatches; {} protected within RPO ({}%)",
        c.servers,
        c.centralized,
        c.centralized_percent,
        c.at_drc,
        c.not_centralized,
        c.unknown,
        c.exempt,
        c.mismatches,
        c.protected,
        c.protected_percent
    ) + &if c.drills_failed + c.drills_overdue > 0 {
        format!(
            "; drills: {} failed, {} overdue",
            c.drills_failed, c.drills_overdue
        )
    } else {
        String::new()
    }
}

pub async fn status(a: JsonArgs) -> Result<u8> {
    let s: StatusResponse = a
        .conn
        .connect()?
        .get(&routes::path(routes::STATUS, &[]))
        .await?;
    if a.json {
        println!("{}", serde_json::to_string(&s)?);
    } else {
        println!(
            "controller {} — manifest revision {}",
            s.version,
            s.revision.map_or("none".into(), |r| r.to_string())
        );
        println!(
            "{} agencies, {} servers; {} agents enrolled, {} seen recently",
            s.perangkat_daerah, s.servers, s.agents_enrolled, s.agents_seen_recently
        );
        println!(
            "runs: {} running, {} succeeded and {} failed in the last 24h",
            s.runs_running, s.runs_succeeded_24h, s.runs_failed_24h
        );
        println!("{}", counts_line(&s.overall));
    }
    Ok(exit::OK)
}
