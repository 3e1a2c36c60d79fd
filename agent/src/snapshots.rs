//! A server's own snapshots in its agency's repository.

use anyhow::Result;
use pulih_core::repo::{ListedSnapshot, Reader};

/// The snapshots of `server` (tagged `server=<name>`); an error when there
/// is none.
pub(crate) async fn of_server(reader: &Reader, server: &str) -> Result<Vec<ListedSnapshot>> {
    let tag = format!("server={server}");
    let own: Vec<_> = reader
        .snapshots()
        .await?
        .into_iter()
        .filter(|s| s.snapshot.tags.contains(&tag))
        .collect();
    if own.is_empty() {
        anyhow::bail!("the repository holds no snapshot of server {server}");
    }
    Ok(own)
}
