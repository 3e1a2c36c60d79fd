//! Taking an existing repository in: every object already under an
//! agency's upstream prefix that the index does not list is added, as
//! written by `import` and received at the upstream store's own time of
//! it (the best there is: a writer could have set it). From then on the
//! gateway serves them like any other; new objects get its own times.

use crate::index::Row;
use crate::state::Gateway;

/// The writer recorded for imported objects.
pub const IMPORTED: &str = "import";

/// Adds `agency`'s upstream objects the index lacks; returns how many
/// were added and their bytes.
pub async fn import(gw: &Gateway, agency: &str) -> anyhow::Result<(usize, u64)> {
    if gw.config().agency(agency).is_none() {
        anyhow::bail!("agency `{agency}` is not in the gateway's config");
    }
    let store = gw
        .upstreams
        .get(agency)
        .map_err(|e| anyhow::anyhow!("{e}"))?;
    let listed = store.list("").await?;
    let now_ms = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.as_millis() as i64)
        .unwrap_or(0);
    let rows: Vec<Row> = listed
        .into_iter()
        .filter(|o| crate::keys::check_key(&o.key).is_ok())
        .map(|o| Row {
            etag: format!("import-{}-{}", o.size, o.modified),
            key: o.key,
            size: o.size,
            sha256: String::new(),
            writer: IMPORTED.into(),
            // Never ahead of now: a future time would stop every delete
            // (a clock that ran backwards, as far as the gateway can tell).
            received_ms: o.modified.saturating_mul(1000).min(now_ms),
        })
        .collect();
    let agency = agency.to_owned();
    Ok(gw.index.run(move |ix| ix.import(&agency, &rows)).await?)
}
