//! A server's own snapshots in its agency's repository.

use anyhow::Result;
use pulih_core::bindings::{ServerSnapshots, server_snapshots};
use pulih_core::repo::Reader;

/// The snapshots of `server` (FORMAT.md §13: those in the spaces bound to
/// it, or by its `server=` tag in a repository from before bindings), the
/// one the store received last at the end; an error when there is none.
pub(crate) async fn of_server(reader: &Reader, server: &str) -> Result<ServerSnapshots> {
    let own = server_snapshots(reader, server).await?;
    if own.snapshots.is_empty() {
        if own.by_tag {
            anyhow::bail!("the repository holds no snapshot of server {server}");
        }
        anyhow::bail!("the repository holds no snapshot in the spaces bound to server {server}");
    }
    Ok(own)
}
