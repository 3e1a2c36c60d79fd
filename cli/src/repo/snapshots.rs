//! `pulih repo snapshots`.

use std::path::PathBuf;

use anyhow::Result;
use clap::Args;
use pulih_core::bindings::{BindingSigner, Bindings, Role, server_snapshots};
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
    /// Only this server's snapshots: those in the spaces bound to it
    /// (FORMAT.md §13; by its `server=` tag where none is), needs the
    /// passphrase.
    #[arg(long, requires = "file")]
    server: Option<String>,
    #[arg(long)]
    json: bool,
}

pub async fn run(a: SnapshotsArgs) -> Result<u8> {
    let store = a.repo.open()?;
    // With a reader key: which server each space is bound to.
    let (snaps, bindings): (Vec<ListedSnapshot>, Option<Bindings>) = match (&a.agent_key, &a.file) {
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
            (listed, None)
        }
        (None, Some(f)) => {
            let pass = Passphrase { file: f.clone() }.read()?;
            let reader = Reader::open(store, &pass).await?;
            match &a.server {
                Some(server) => {
                    let own = server_snapshots(&reader, server, Role::Agent).await?;
                    if own.by_tag {
                        eprintln!(
                            "warning: no binding names {server}: listed by the `server=` tag, which any agent key of the agency can write (`pulih repo bind`)"
                        );
                    }
                    (own.snapshots, Some(own.bindings))
                }
                None => {
                    let verifier = BindingSigner::of(&reader.keys.master).verifier();
                    let b = Bindings::load(&reader.repo.store, &verifier).await?;
                    (reader.snapshots().await?, Some(b))
                }
            }
        }
        (None, None) => anyhow::bail!(
            "give --agent-key FILE or --passphrase-file FILE (or PULIH_AGENT_KEY / PULIH_PASSPHRASE_FILE)"
        ),
    };
    let bound = |s: &ListedSnapshot| {
        bindings
            .as_ref()
            .and_then(|b| b.server_of(&s.space))
            .map(|b| b.server.clone())
    };
    if a.json {
        let v: Vec<_> = snaps
            .iter()
            .map(|s| {
                serde_json::json!({
                    "id": s.id.to_hex(), "space": s.space.to_hex(), "time": s.snapshot.time, "stored_at": s.stored_at,
                    "received": rfc3339(s.stored_at), "bound_server": bound(s),
                    "host": s.snapshot.host, "tags": s.snapshot.tags, "paths": s.snapshot.paths, "summary": s.snapshot.summary,
                })
            })
            .collect();
        println!("{}", serde_json::to_string(&v)?);
    } else {
        println!(
            "{:<12} {:<19} {:<19} {:<8} {:<16} {:<16} {:>10}  paths",
            "id", "time (UTC)", "received (UTC)", "space", "server", "host", "size"
        );
        for s in &snaps {
            println!(
                "{:<12} {:<19} {:<19} {:<8} {:<16} {:<16} {:>10}  {}",
                &s.id.to_hex()[..12],
                s.snapshot
                    .time
                    .get(..19)
                    .unwrap_or(&s.snapshot.time)
                    .replace('T', " "),
                rfc3339(s.stored_at)
                    .get(..19)
                    .unwrap_or_default()
                    .replace('T', " "),
                &s.space.to_hex()[..8],
                bound(s).unwrap_or_else(|| "-".into()),
                s.snapshot.host,
                human(s.snapshot.summary.total_bytes),
                s.snapshot.paths.join(" ")
            );
        }
        println!("{} snapshots", snaps.len());
    }
    Ok(exit::OK)
}

/// Unix seconds as RFC 3339 (UTC).
fn rfc3339(t: i64) -> String {
    time::OffsetDateTime::from_unix_timestamp(t)
        .ok()
        .and_then(|t| {
            t.format(&time::format_description::well_known::Rfc3339)
                .ok()
        })
        .unwrap_or_else(|| t.to_string())
}
