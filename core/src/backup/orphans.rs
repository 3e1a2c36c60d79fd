//! Resuming: packs of an interrupted run that no index names are found
//! and reused.

use std::collections::HashSet;

use crate::Result;
use crate::id::PackId;
use crate::index::{IndexPack, SpaceIndex};
use crate::keys::SpaceKeys;
use crate::repo::Repo;

/// Find packs no index names; adopt those of our space (an interrupted run).
pub(super) async fn adopt_orphans(
    repo: &Repo,
    space: &SpaceKeys,
    indexed: &HashSet<crate::id::PackId>,
    index: &mut SpaceIndex,
) -> Result<Vec<IndexPack>> {
    use futures::StreamExt;
    let orphans: Vec<(PackId, u64)> = repo
        .list_packs()
        .await?
        .into_iter()
        .filter(|(id, _)| !indexed.contains(id) && !index.has_pack(id))
        .collect();
    let sp = space.clone();
    let results: Vec<(PackId, Result<_>)> = futures::stream::iter(orphans)
        .map(|(id, size)| {
            let sp = sp.clone();
            async move {
                (
                    id,
                    repo.read_pack_header(&id, size, |s| (s == sp.space).then(|| sp.clone()))
                        .await,
                )
            }
        })
        .buffer_unordered(crate::repo::LOAD_CONCURRENCY)
        .collect()
        .await;
    let mut adopted = Vec::new();
    for (id, r) in results {
        match r {
            Ok((_, Some(header))) => {
                index.add_pack(id, &header);
                adopted.push(IndexPack { pack: id, header });
            }
            Ok((_, None)) => {}
            Err(e) => {
                tracing::warn!(pack = %id, error = %e, "unindexed pack is unreadable; not reusing it")
            }
        }
    }
    if !adopted.is_empty() {
        tracing::info!(
            packs = adopted.len(),
            "resuming: reusing packs of an interrupted backup"
        );
    }
    Ok(adopted)
}
