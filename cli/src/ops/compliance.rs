//! `pulih compliance`: Pasal 9 per agency and overall (table, JSON, CSV).

use super::servers::{SERVER_HEADERS, server_rows};
use super::status::counts_line;
use pulih_model::state::DrillState;

use super::*;

#[derive(Args)]
pub struct ComplianceArgs {
    #[arg(long, conflicts_with = "csv")]
    json: bool,
    /// One CSV row per server (for auditors and spreadsheets).
    #[arg(long)]
    csv: bool,
    #[command(flatten)]
    conn: Conn,
}

fn csv_cell(s: &str) -> String {
    if s.contains([',', '"', '\n']) {
        format!("\"{}\"", s.replace('"', "\"\""))
    } else {
        s.to_string()
    }
}

pub async fn compliance(a: ComplianceArgs) -> Result<u8> {
    let r: ComplianceReport = a
        .conn
        .connect()?
        .get(&routes::path(routes::COMPLIANCE, &[]))
        .await?;
    if a.json {
        println!("{}", serde_json::to_string(&r)?);
    } else if a.csv {
        println!(
            "perangkat_daerah,server,declared_location,declared_status,deadline,observed,mismatch,evidence,last_success,rpo_met,agent_last_seen,last_drill,last_drill_state,last_drill_rto_s,last_drill_rto_met,drill_overdue"
        );
        for s in &r.servers {
            let cells = [
                s.perangkat_daerah.clone(),
                s.name.clone(),
                s.declared_location.clone(),
                s.declared_status.clone(),
                s.deadline.clone().unwrap_or_default(),
                s.observed.clone(),
                s.mismatch.to_string(),
                s.evidence.clone(),
                s.last_success.clone().unwrap_or_default(),
                s.rpo_met.to_string(),
                s.agent_last_seen.clone().unwrap_or_default(),
                s.last_drill
                    .as_ref()
                    .map(|d| d.finished_at.clone())
                    .unwrap_or_default(),
                s.last_drill
                    .as_ref()
                    .map(|d| d.state.to_string())
                    .unwrap_or_default(),
                s.last_drill
                    .as_ref()
                    .and_then(|d| d.rto_seconds)
                    .map(|v| format!("{v:.1}"))
                    .unwrap_or_default(),
                s.last_drill
                    .as_ref()
                    .and_then(|d| d.rto_met)
                    .map(|v| v.to_string())
                    .unwrap_or_default(),
                s.drill_overdue.to_string(),
            ];
            println!(
                "{}",
                cells
                    .iter()
                    .map(|c| csv_cell(c))
                    .collect::<Vec<_>>()
                    .join(",")
            );
        }
    } else {
        println!(
            "Pasal 9 compliance — {}",
            wita(&Some(r.generated_at.clone()))
        );
        println!("overall: {}", counts_line(&r.overall));
        for (pd, c) in &r.by_perangkat_daerah {
            println!("  {pd}: {}", counts_line(c));
        }
        println!();
        table(SERVER_HEADERS, server_rows(&r.servers));
        let flagged: Vec<&ServerView> = r.servers.iter().filter(|s| s.mismatch).collect();
        if !flagged.is_empty() {
            println!();
            for s in flagged {
                println!(
                    "MISMATCH {}: manifest says {} / {}, but {}",
                    s.name, s.declared_location, s.declared_status, s.evidence
                );
            }
        }
        for s in &r.servers {
            if let Some(d) = s
                .last_drill
                .as_ref()
                .filter(|d| d.state == DrillState::Failed)
            {
                println!(
                    "DRILL FAILED {}: drill {} at {} (pulih drill report {})",
                    s.name,
                    d.id,
                    wita(&Some(d.finished_at.clone())),
                    d.id
                );
            }
            if s.drill_overdue {
                println!(
                    "DRILL OVERDUE {}: no drill passed since its agency's drill schedule last-but-one fired",
                    s.name
                );
            }
        }
    }
    Ok(exit::OK)
}
