//! `pulih repo bind`: bind a dedup space to the server whose agent writes
//! there (FORMAT.md §13), for agent keys made before bindings existed.

use std::collections::{BTreeMap, BTreeSet};

use anyhow::Result;
use clap::Args;
use pulih_core::bindings::{self, Binding, BindingSigner, Bindings, Role};
use pulih_core::id::SpaceId;
use pulih_core::repo::Reader;

use super::{Passphrase, RepoUrl};
use crate::exit;

#[derive(Args)]
pub struct BindArgs {
    #[command(flatten)]
    repo: RepoUrl,
    #[command(flatten)]
    passphrase: Passphrase,
    /// The server the space belongs to (with --space).
    #[arg(long, requires = "space")]
    server: Option<String>,
    /// The space (hex, as `repo snapshots` shows it) to bind to --server.
    #[arg(long, requires = "server", conflicts_with = "from_tags")]
    space: Option<String>,
    /// Bind every unbound space whose snapshots all carry one `server=`
    /// tag to that server, saying what it binds; check the list first
    /// (any agent key could have written those tags): `--dry-run`.
    #[arg(long)]
    from_tags: bool,
    /// With --from-tags: print what would be bound, bind nothing.
    #[arg(long, requires = "from_tags")]
    dry_run: bool,
}

pub async fn run(a: BindArgs) -> Result<u8> {
    anyhow::ensure!(
        a.space.is_some() || a.from_tags,
        "give --server NAME --space HEX, or --from-tags"
    );
    let reader = Reader::open(a.repo.open()?, &a.passphrase.read()?).await?;
    let signer = BindingSigner::of(&reader.keys.master);
    let store = &reader.repo.store;
    let known = Bindings::load(store, &signer.verifier()).await?;
    let now = time::OffsetDateTime::now_utc().unix_timestamp();
    let plan: Vec<(SpaceId, String)> = match (a.space, a.server) {
        (Some(space), Some(server)) => {
            let space: SpaceId = space.parse().map_err(|_| {
                anyhow::anyhow!("--space `{space}` is not a space id (32 hex digits)")
            })?;
            vec![(space, server)]
        }
        _ => from_tags(&reader, &known).await?,
    };
    if plan.is_empty() {
        println!(
            "nothing to bind: every space with snapshots is bound, or its tags name no single server"
        );
        return Ok(exit::OK);
    }
    for (space, server) in plan {
        if let Some(b) = known.server_of(&space) {
            anyhow::ensure!(
                b.server == server,
                "space {} is bound to {} already; a binding is never changed",
                space.to_hex(),
                b.server
            );
            println!("space {} is bound to {server} already", space.to_hex());
            continue;
        }
        if a.dry_run {
            println!("would bind space {} to {server}", space.to_hex());
            continue;
        }
        let body = Binding {
            server: server.clone(),
            space,
            role: Role::Agent,
            failover: None,
            created: now,
        };
        bindings::write(store, &signer, body).await?;
        println!("bound space {} to {server}", space.to_hex());
    }
    Ok(exit::OK)
}

/// Each unbound space whose snapshots all carry the same one `server=` tag.
async fn from_tags(reader: &Reader, known: &Bindings) -> Result<Vec<(SpaceId, String)>> {
    let mut tags: BTreeMap<SpaceId, BTreeSet<String>> = BTreeMap::new();
    for s in reader.snapshots().await? {
        if known.server_of(&s.space).is_some() || known.conflicts.contains_key(&s.space) {
            continue;
        }
        let servers: BTreeSet<String> = s
            .snapshot
            .tags
            .iter()
            .filter_map(|t| t.strip_prefix("server="))
            .map(str::to_string)
            .collect();
        let e = tags.entry(s.space).or_default();
        e.extend(servers.iter().cloned());
        if servers.is_empty() {
            e.insert(String::new());
        }
    }
    let mut out = Vec::new();
    for (space, servers) in tags {
        match servers.len() {
            1 if !servers.contains("") => {
                out.push((space, servers.into_iter().next().expect("one")));
            }
            _ => eprintln!(
                "warning: space {} not bound: its snapshots name {} (bind it with --space and --server)",
                space.to_hex(),
                if servers.contains("") {
                    "no server in some".to_string()
                } else {
                    format!("several servers: {servers:?}")
                }
            ),
        }
    }
    Ok(out)
}
