//! Upload: finished packs go to the store with bounded concurrency; a data
//! pack's buffer token goes back to the packer.

use std::sync::Arc;
use std::sync::atomic::Ordering;

use bytes::Bytes;
use tokio::sync::mpsc;
use tokio::task::JoinSet;

use crate::index::IndexPack;
use crate::pack::{self, BlobType, FinishedPack};
use crate::storage::Store;
use crate::{Error, Result};

use super::*;

pub(super) async fn upload_packs(
    store: Store,
    mut rx: mpsc::Receiver<FinishedPack>,
    pool: crossbeam_channel::Sender<Vec<u8>>,
    concurrency: usize,
    progress: Arc<Progress>,
) -> Result<(Vec<IndexPack>, u64)> {
    let mut set: JoinSet<Result<(IndexPack, u64)>> = JoinSet::new();
    let mut done = Vec::new();
    let mut total = 0u64;
    let mut collect =
        |r: std::result::Result<Result<(IndexPack, u64)>, tokio::task::JoinError>| -> Result<()> {
            let (p, n) = r.map_err(|e| Error::Task(e.to_string()))??;
            total += n;
            progress.bytes_stored.fetch_add(n, Ordering::Relaxed);
            done.push(p);
            Ok(())
        };
    while let Some(p) = rx.recv().await {
        while set.len() >= concurrency {
            collect(set.join_next().await.expect("set is not empty"))?;
        }
        let (store, pool) = (store.clone(), pool.clone());
        set.spawn(async move {
            let n = p.bytes.len() as u64;
            let data_pack = p.kind == BlobType::Data;
            let bytes = Bytes::from(p.bytes);
            store
                .put(&pack::pack_key_name(&p.id), bytes.clone())
                .await?;
            // Give the token back, with the buffer when the store kept no
            // reference to it (a worker then reallocates).
            if data_pack {
                let buf = bytes.try_into_mut().map(Vec::from).unwrap_or_default();
                let _ = pool.try_send(buf);
            }
            Ok((
                IndexPack {
                    pack: p.id,
                    header: p.header,
                },
                n,
            ))
        });
    }
    while let Some(r) = set.join_next().await {
        collect(r)?;
    }
    Ok((done, total))
}
