//! `pulih runs`: scheduled and manual runs with their results.

use super::*;

#[derive(Args)]
pub struct RunsArgs {
    /// Only this server's runs.
    #[arg(long)]
    server: Option<String>,
    #[arg(long, default_value_t = 50)]
    limit: u32,
    #[arg(long)]
    json: bool,
    #[command(flatten)]
    conn: Conn,
}

pub async fn runs(a: RunsArgs) -> Result<u8> {
    let mut path = format!("{}?limit={}", routes::path(routes::RUNS, &[]), a.limit);
    if let Some(s) = &a.server {
        path.push_str(&format!("&server={s}"));
    }
    let runs: Vec<Run> = a.conn.connect()?.get(&path).await?;
    if a.json {
        println!("{}", serde_json::to_string(&runs)?);
    } else {
        table(
            &[
                "RUN", "SERVER", "KIND", "TRIGGER", "STATE", "FINISHED", "SNAPSHOT", "NEW",
            ],
            runs.iter()
                .map(|r| {
                    vec![
                        r.run_key.clone(),
                        r.server.clone(),
                        r.kind.to_string(),
                        r.trigger.clone(),
                        r.state.to_string(),
                        wita(&r.finished_at),
                        r.snapshot_id
                            .as_deref()
                            .map_or("-".into(), |s| s[..s.len().min(12)].to_string()),
                        crate::repo::human(r.bytes_new),
                    ]
                })
                .collect(),
        );
    }
    Ok(exit::OK)
}
