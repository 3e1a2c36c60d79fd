//! A server's own snapshots in its agency's repository.

use anyhow::Result;
use pulih_core::bindings::{Role, ServerSnapshots, server_snapshots};
use pulih_core::repo::Reader;

/// The snapshots of `server` written for `role` (FORMAT.md §13: those in
/// the spaces bound to it for that role, or by its `server=` tag where no
/// binding names it), the one the store received last at the end; an
/// error when there is none.
pub(crate) async fn of_server(
    reader: &Reader,
    server: &str,
    role: Role,
) -> Result<ServerSnapshots> {
    let own = server_snapshots(reader, server, role).await?;
    if own.snapshots.is_empty() {
        if own.by_tag {
            anyhow::bail!("the repository holds no snapshot of server {server}");
        }
        anyhow::bail!("the repository holds no snapshot in the spaces bound to server {server}");
    }
    Ok(own)
}
