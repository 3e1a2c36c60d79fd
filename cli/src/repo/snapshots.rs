//! `pulih repo snapshots`.

use std::path::PathBuf;

use anyhow::Result;
use clap::Args;
use pulih_core::repo::{ListedSnapshot, Reader, Repo, list_readable_snapshots};

use super::{Passphrase, RepoUrl, human, load_agent_key};
use crate::exit;

#[derive(Args)]
pub struct SnapshotsArgs {
    #[command(flatten)]
    repo: RepoUrl,
    /// List this agent's own snapshots with its agent key.
    #[arg(
        long,
        env = "PULIH_AGENT_KEY",
        value_name = "FILE",
        conflicts_with = "file"
    )]
    agent_key: Option<PathBuf>,
    /// List every snapshot with the walidata passphrase.
    #[arg(
        long = "passphrase-file",
        env = "PULIH_PASSPHRASE_FILE",
        value_name = "FILE"
    )]
    file: Option<PathBuf>,
    #[arg(long)]
    json: bool,
}

pub async fn run(a: SnapshotsArgs) -> Result<u8> {
    let store = a.repo.open()?;
    let snaps: Vec<ListedSnapshot> = match (&a.agent_key, &a.file) {
        (Some(k), _) => {
            let key = load_agent_key(k)?;
            let repo = Repo::open(store).await?;
            repo.check_agent_key(&key)?;
            let sp = key.space.clone();
            let (listed, unreadable) =
                list_readable_snapshots(&repo, |s| (s == sp.space).then(|| sp.clone())).await?;
            for u in unreadable {
                eprintln!(
                    "warning: skipped {}, which does not authenticate: {} (`pulih repo verify` names such objects)",
                    u.name, u.error
                );
            }
            listed
        }
        (None, Some(f)) => {
            let pass = Passphrase { file: f.clone() }.read()?;
            Reader::open(store, &pass).await?.snapshots().await?
        }
        (None, None) => anyhow::bail!(
            "give --agent-key FILE or --passphrase-file FILE (or PULIH_AGENT_KEY / PULIH_PASSPHRASE_FILE)"
        ),
    };
    if a.json {
        let v: Vec<_> = snaps
            .iter()
            .map(|s| {
                serde_json::json!({
                    "id": s.id.to_hex(), "space": s.space.to_hex(), "time": s.snapshot.time, "stored_at": s.stored_at,
                    "host": s.snapshot.host, "tags": s.snapshot.tags, "paths": s.snapshot.paths, "summary": s.snapshot.summary,
                })
            })
            .collect();
        println!("{}", serde_json::to_string(&v)?);
    } else {
        println!(
            "{:<12} {:<19} {:<16} {:>10}  paths",
            "id", "time (UTC)", "host", "size"
        );
        for s in &snaps {
            println!(
                "{:<12} {:<19} {:<16} {:>10}  {}",
                &s.id.to_hex()[..12],
                s.snapshot
                    .time
                    .get(..19)
                    .unwrap_or(&s.snapshot.time)
                    .replace('T', " "),
                s.snapshot.host,
                human(s.snapshot.summary.total_bytes),
                s.snapshot.paths.join(" ")
            );
        }
        println!("{} snapshots", snaps.len());
    }
    Ok(exit::OK)
}
