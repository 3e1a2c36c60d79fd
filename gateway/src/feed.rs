//! The controller's revocation feed (docs/GATEWAY.md "Revocation"): every
//! `poll_seconds` the gateway asks the controller (`GET
//! /api/v1/gateway/revocations`, authenticated with the secret of
//! [`FEED_ID`] under the gateway key both hold) for the lowest valid serial
//! of each credential it issued at enrolment. A credential below its
//! floor is refused like one in the config's `revoked`. Floors only rise:
//! a controller restored from an old backup, or one that answers wrongly,
//! cannot bring a replaced credential back. They are kept in
//! `state_dir/revocations.json` (0600), so a gateway restarted while the
//! controller is down still refuses what it revoked, and backups go on
//! with the credentials it did not.

use std::sync::Arc;
use std::time::Duration;

use pulih_core::gateway_creds::FEED_ID;
use tokio_util::sync::CancellationToken;

use crate::config::{ControllerFeed, RELOAD_EVERY};
use crate::floors::{Feed, cache_path};
use crate::state::Gateway;

async fn fetch(gw: &Gateway, c: &ControllerFeed) -> anyhow::Result<Feed> {
    let mut b = reqwest::Client::builder().timeout(Duration::from_secs(30));
    if let Some(ca) = &c.ca_file {
        let pem = std::fs::read(ca).map_err(|e| anyhow::anyhow!("{}: {e}", ca.display()))?;
        for cert in reqwest::Certificate::from_pem_bundle(&pem)? {
            b = b.add_root_certificate(cert);
        }
    }
    let url = format!("{}/api/v1/gateway/revocations", c.url.trim_end_matches('/'));
    let resp = b
        .build()?
        .get(&url)
        .bearer_auth(gw.key.secret(FEED_ID))
        .send()
        .await
        .map_err(|e| anyhow::anyhow!("{url}: {}", e.without_url()))?;
    let status = resp.status();
    let body = resp.bytes().await?;
    anyhow::ensure!(
        status.is_success(),
        "{url} answered {status}: {}",
        String::from_utf8_lossy(&body)
            .chars()
            .take(200)
            .collect::<String>()
    );
    Ok(serde_json::from_slice(&body)?)
}

/// Asks the controller every `poll_seconds` while the config names one.
pub async fn poll(gw: Arc<Gateway>, stop: CancellationToken) {
    // Floors raised but not yet kept on disk (a failed write is tried
    // again at the next ask).
    let mut unsaved = false;
    let mut failures = 0u32;
    loop {
        let config = gw.config();
        let wait = match &config.controller {
            Some(c) => {
                match fetch(&gw, c).await {
                    Ok(feed) => {
                        failures = 0;
                        unsaved |= gw.floors.raise(&feed.floors);
                        if unsaved {
                            let cache = gw.floors.snapshot(feed.generated_at);
                            let bytes = serde_json::to_vec(&cache).expect("feed serializes");
                            match pulih_core::storage::write_private_atomic(
                                &cache_path(&config.state_dir),
                                &bytes,
                                true,
                            ) {
                                Ok(()) => {
                                    unsaved = false;
                                    tracing::info!("revocation feed: floors raised")
                                }
                                Err(e) => {
                                    tracing::error!(error = %e, "cannot keep the revocation feed's floors")
                                }
                            }
                        }
                    }
                    Err(e) => {
                        failures += 1;
                        // Said louder once it lasts: revocations stop
                        // arriving while it does.
                        if failures >= 10 {
                            tracing::error!(error = %e, failures, "revocation feed: the controller has not answered for a while; the floors known stay")
                        } else {
                            tracing::warn!(error = %e, "revocation feed: the controller did not answer; the floors known stay")
                        }
                    }
                }
                Duration::from_secs(c.poll_seconds.max(1))
            }
            None => RELOAD_EVERY,
        };
        tokio::select! {
            () = stop.cancelled() => return,
            () = tokio::time::sleep(wait) => {}
        }
    }
}
