//! `pulih servers`: the inventory (declared vs observed centralization, RPO,
//! last success, last drill) and enrolment tokens.

use super::*;

#[derive(Args)]
#[command(args_conflicts_with_subcommands = true)]
pub struct ServersArgs {
    #[command(subcommand)]
    command: Option<ServersCommand>,
    /// Only this agency's servers (PerangkatDaerah name).
    #[arg(long)]
    pd: Option<String>,
    #[arg(long)]
    json: bool,
    #[command(flatten)]
    conn: Conn,
}

#[derive(Subcommand)]
enum ServersCommand {
    /// One server: its inventory line and what its agent last reported.
    Show {
        name: String,
        #[arg(long)]
        json: bool,
    },
    /// Issue a one-time enrolment token for a server's agent.
    EnrollToken {
        name: String,
        #[arg(long)]
        json: bool,
    },
    /// After looking at a server's ransomware signal: clear it, and remove
    /// its holds from the agency's repository (retention then goes on).
    ClearAnomaly {
        name: String,
        #[arg(long)]
        json: bool,
    },
}

/// The lines under a table that name each server's open ransomware signal.
fn anomaly_lines(servers: &[ServerView]) {
    for s in servers {
        if let Some(a) = &s.anomaly {
            println!(
                "ANOMALI / ANOMALY {} ({}): {}; riwayat sebelumnya ditahan / the history before it is held; after looking: pulih servers clear-anomaly {}",
                s.name,
                wita(&Some(a.flagged_at.clone())),
                a.reason,
                s.name
            );
        }
    }
}

pub(super) fn server_rows(servers: &[ServerView]) -> Vec<Vec<String>> {
    servers
        .iter()
        .map(|s| {
            vec![
                s.perangkat_daerah.clone(),
                s.name.clone(),
                s.declared_status.clone(),
                format!(
                    "{}{}",
                    s.observed,
                    if s.mismatch { " (MISMATCH)" } else { "" }
                ),
                if s.rpo_met { "met" } else { "MISSED" }.into(),
                wita(&s.last_success),
                drill_cell(s),
                wita(&s.agent_last_seen),
                if s.anomaly.is_some() { "ANOMALY" } else { "-" }.into(),
            ]
        })
        .collect()
}

pub(super) const SERVER_HEADERS: &[&str] = &[
    "PD",
    "SERVER",
    "DECLARED",
    "OBSERVED",
    "RPO",
    "LAST SUCCESS",
    "LAST DRILL",
    "AGENT SEEN",
    "SIGNAL",
];

/// The last drill in a table cell: state and RTO, or what is missing.
fn drill_cell(s: &ServerView) -> String {
    let overdue = if s.drill_overdue { " (OVERDUE)" } else { "" };
    match &s.last_drill {
        None => format!("-{overdue}"),
        Some(d) => format!(
            "{} {}{}{overdue}",
            d.state,
            d.rto_seconds.map_or("-".into(), |v| format!("RTO {v:.0}s")),
            if d.rto_met == Some(false) {
                " (over target)"
            } else {
                ""
            }
        ),
    }
}

pub async fn servers(a: ServersArgs) -> Result<u8> {
    let api = a.conn.connect()?;
    match a.command {
        Some(ServersCommand::EnrollToken { name, json }) => {
            let t: EnrollTokenResponse = api
                .post(
                    &routes::path(routes::SERVER_ENROLL_TOKEN, &[&name]),
                    &serde_json::json!({}),
                )
                .await?;
            if json {
                println!("{}", serde_json::to_string(&t)?);
            } else {
                println!("{}", t.token);
                eprintln!(
                    "one-time enrolment token for {} (valid until {}); put it in the agent's enroll_token_file",
                    t.server,
                    wita(&Some(t.expires_at.clone()))
                );
            }
        }
        Some(ServersCommand::ClearAnomaly { name, json }) => {
            let c: pulih_model::api::AnomalyCleared = api
                .post(
                    &routes::path(routes::SERVER_CLEAR_ANOMALY, &[&name]),
                    &serde_json::json!({}),
                )
                .await?;
            if json {
                println!("{}", serde_json::to_string(&c)?);
            } else {
                println!(
                    "{name}: {} signals cleared; holds removed from the repository: {}",
                    c.flags,
                    if c.holds_removed.is_empty() {
                        "none".to_string()
                    } else {
                        c.holds_removed.join(", ")
                    }
                );
            }
        }
        Some(ServersCommand::Show { name, json }) => {
            let v: ServerView = api.get(&routes::path(routes::SERVER, &[&name])).await?;
            if json {
                println!("{}", serde_json::to_string(&v)?);
            } else {
                table(SERVER_HEADERS, server_rows(std::slice::from_ref(&v)));
                anomaly_lines(std::slice::from_ref(&v));
                println!("evidence: {}", v.evidence);
                match &v.facts {
                    None => println!("no agent has reported yet"),
                    Some(f) => {
                        println!(
                            "agent {} on {} ({}), addresses {}",
                            f.agent_version,
                            f.hostname,
                            f.os,
                            f.ips.join(", ")
                        );
                        if let Some(free) = f.free_disk_bytes {
                            println!("free disk: {}", crate::repo::human(free));
                        }
                        if !f.docker_containers.is_empty() || !f.docker_volumes.is_empty() {
                            println!("docker containers: {}", f.docker_containers.join(", "));
                            println!("docker volumes: {}", f.docker_volumes.join(", "));
                        }
                    }
                }
            }
        }
        None => {
            let path = match &a.pd {
                Some(pd) => format!("{}?pd={pd}", routes::path(routes::SERVERS, &[])),
                None => routes::path(routes::SERVERS, &[]),
            };
            let list: Vec<ServerView> = api.get(&path).await?;
            if a.json {
                println!("{}", serde_json::to_string(&list)?);
            } else {
                table(SERVER_HEADERS, server_rows(&list));
                anomaly_lines(&list);
            }
        }
    }
    Ok(exit::OK)
}
