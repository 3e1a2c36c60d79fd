//! A replication run: the assignment's paths and Docker sources (captured
//! first, `capture.rs`) backed up with the write-only agent key; its
//! result goes to the outbox.

use std::path::PathBuf;
use std::sync::Arc;

use anyhow::Result;
use chrono::{DateTime, Utc};
use pulih_model::api::Assignment;
use pulih_model::state::RunState;
use tracing::Instrument;

use super::{PdRole, Results, failed_result};
use crate::pull::Link;

impl PdRole {
    /// Runs one replication and queues its result for delivery.
    pub(super) async fn replicate(
        &self,
        link: &Link<Results>,
        a: &Assignment,
        run_key: &str,
        trigger: &str,
        scheduled_for: Option<DateTime<Utc>>,
    ) -> Result<()> {
        let started = Utc::now();
        let span = tracing::info_span!("run", run_key, server = %a.server);
        let repo = self
            .config
            .repository
            .clone()
            .unwrap_or_else(|| a.repository.clone());
        let outcome = async {
            let key = pulih_core::keys::AgentKey::load(&self.config.agent_key_file)?;
            let store = crate::pull::enrol::open_store(&self.config.state_dir, &repo)?;
            let mut opts =
                pulih_core::backup::BackupOptions::new(self.hostname.clone(), self.path("cache"));
            opts.tags = vec![format!("server={}", a.server), format!("run={run_key}")];
            let mut paths: Vec<PathBuf> = a.paths.iter().map(PathBuf::from).collect();
            let capture = if a.docker.is_empty() {
                None
            } else if a.docker.images_only() && crate::docker::connect().is_err() {
                // A server that is no Docker host (its data is all paths)
                // cannot save the recovery spec's images: the DRC starts
                // its own copy (the drill report says so). Not a failure of
                // this server's replication.
                tracing::warn!(images = ?a.docker.images, "no Docker engine here: the recovery images are not saved with this server's data");
                None
            } else {
                let staging = self.path("docker");
                let c = super::capture::start(&a.docker, &a.server, &staging).await?;
                paths.extend(c.paths.iter().cloned());
                opts.tags.push(format!(
                    "{}={}",
                    pulih_model::drill::CAPTURE_TAG,
                    staging.display()
                ));
                Some(c)
            };
            let progress = Arc::new(pulih_core::backup::Progress::default());
            let out = pulih_core::backup::backup(store, &key, &paths, &opts, progress).await;
            let mut capture_errors = Vec::new();
            if let Some(c) = capture {
                capture_errors.extend(c.errors.iter().cloned());
                capture_errors.extend(c.finish().await);
            }
            let mut out = out?;
            out.errors.extend(capture_errors);
            anyhow::Ok(out)
        }
        .instrument(span)
        .await;
        let finished = Utc::now();
        let mut result = failed_result(trigger, scheduled_for, started, finished);
        match outcome {
            Ok(out) => {
                let s = &out.snapshot.summary;
                result.state = if out.errors.is_empty() {
                    RunState::Succeeded
                } else {
                    RunState::Partial
                };
                result.snapshot_id = Some(out.snapshot_id.to_hex());
                result.files = s.files;
                result.bytes_read = s.bytes_read;
                result.bytes_new = s.bytes_new;
                result.bytes_stored = s.bytes_stored;
                result.duration_s = s.duration_s;
                result.errors = out.errors;
                tracing::info!(snapshot = %out.snapshot_id, files = s.files, bytes_new = s.bytes_new, "replication done");
            }
            Err(e) => {
                tracing::error!(error = %format!("{e:#}"), "replication failed");
                result.errors = vec![format!("{e:#}")];
            }
        }
        self.report(link, run_key, result).await
    }
}
