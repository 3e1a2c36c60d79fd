//! Jobs other than replication, run on demand: verify (the server's own
//! dedup space), restore (needs the reader key the walidata gave this
//! agent) and failback (`failback.rs`). A new job kind goes here.

use std::path::Path;
use std::sync::Arc;

use anyhow::{Context, Result};
use chrono::Utc;
use pulih_model::api::{Assignment, Job, RestoreRequest};
use pulih_model::state::{JobKind, RunState};
use tracing::Instrument;

use super::{PdRole, Results, failed_result};
use crate::pull::Link;

/// What a job reports: snapshot, files, bytes, problems.
pub(super) type Outcome = (Option<String>, u64, u64, Vec<String>);

impl PdRole {
    /// Runs a verify or restore job and reports it. Neither reads the
    /// server's sources; a restore needs the reader key the walidata gave
    /// this agent (`reader_passphrase_file`).
    pub(super) async fn run_job(
        &self,
        link: &Link<Results>,
        a: &Assignment,
        job: &Job,
    ) -> Result<()> {
        let started = Utc::now();
        let span = tracing::info_span!("job", run_key = %job.run_key, kind = %job.kind);
        let repo_url = self
            .config
            .repository
            .clone()
            .unwrap_or_else(|| a.repository.clone());
        let outcome: Result<Outcome> = async {
            let store = crate::pull::enrol::open_store(&self.config.state_dir, &repo_url)?;
            match (job.kind, &job.restore) {
                (JobKind::Verify, _) => {
                    let key = pulih_core::keys::AgentKey::load(&self.config.agent_key_file)?;
                    let repo = pulih_core::repo::Repo::open(store).await?;
                    let r = pulih_core::verify::check_space(&repo, &key).await?;
                    tracing::info!(
                        snapshots = r.snapshots,
                        packs = r.packs,
                        problems = r.problems.len(),
                        "verify done"
                    );
                    Ok((None, 0, 0, r.problems))
                }
                (JobKind::Restore, Some(req)) => self.restore(store, &a.server, req).await,
                (JobKind::Restore, None) => anyhow::bail!("a restore job without its target"),
                (JobKind::Failback, Some(req)) => self.fail_back(store, a, req).await,
                (JobKind::Failback, None) => anyhow::bail!("a failback job without its snapshot"),
                (other, _) => {
                    anyhow::bail!("this agent does not know the job kind `{other}`; upgrade it")
                }
            }
        }
        .instrument(span)
        .await;
        let finished = Utc::now();
        let mut result = failed_result("manual", None, started, finished);
        match outcome {
            Ok((snapshot, files, bytes, problems)) => {
                result.state = if problems.is_empty() {
                    RunState::Succeeded
                } else {
                    RunState::Failed
                };
                result.snapshot_id = snapshot;
                result.files = files;
                result.bytes_read = bytes;
                result.errors = problems;
            }
            Err(e) => {
                tracing::error!(run_key = %job.run_key, error = %format!("{e:#}"), "job failed");
                result.errors = vec![format!("{e:#}")];
            }
        }
        self.report(link, &job.run_key, result).await
    }

    /// Restores one of this server's snapshots under an absolute target
    /// that is absent or empty.
    async fn restore(
        &self,
        store: pulih_core::storage::Store,
        server: &str,
        req: &RestoreRequest,
    ) -> Result<Outcome> {
        let Some(pass_file) = &self.config.reader_passphrase_file else {
            anyhow::bail!(
                "this agent holds no reader key (it is write-only by design): the walidata must consent by setting reader_passphrase_file in the agent's config, or restore with `pulih repo restore` themselves"
            );
        };
        let target = Path::new(&req.target);
        if !target.is_absolute() {
            anyhow::bail!("restore target `{}` is not absolute", req.target);
        }
        if let Ok(mut entries) = std::fs::read_dir(target)
            && entries.next().is_some()
        {
            anyhow::bail!(
                "restore target {} is not empty; choose a new directory (nothing was written)",
                target.display()
            );
        }
        let passphrase = pulih_core::storage::read_secret_file(pass_file)?;
        let reader = pulih_core::repo::Reader::open(store, &passphrase).await?;
        let snap = pulih_core::repo::pick_snapshot(
            crate::snapshots::of_server(&reader, server, pulih_core::bindings::Role::Agent)
                .await?
                .snapshots,
            &req.snapshot,
        )
        .with_context(|| format!("snapshot `{}` of server {server}", req.snapshot))?;
        tracing::info!(snapshot = %snap.id, target = %target.display(), "restoring");
        let opts = pulih_core::restore::RestoreOptions {
            include: req.include.clone(),
            ..Default::default()
        };
        let s = pulih_core::restore::restore(
            &reader,
            &snap,
            target,
            &opts,
            Arc::new(pulih_core::restore::RestoreProgress::default()),
        )
        .await?;
        if s.set_id_dropped > 0 {
            tracing::warn!(
                files = s.set_id_dropped,
                "restored without their set-user-ID/set-group-ID bits"
            );
        }
        Ok((Some(snap.id.to_hex()), s.files, s.bytes, Vec::new()))
    }
}
