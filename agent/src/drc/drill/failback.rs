//! The DRC side of a failback (DESIGN.md §6): stop the failed-over
//! containers, replicate their data — everything the DRC changed while it
//! served — back into the agency's repository as a new snapshot of the
//! server (tagged `failback=<failover id>`), tear the DRC copy down, and
//! run the switch hook (`PULIH_PHASE=failback`). The primary's agent then
//! restores that snapshot in place (`pd::failback`).

use std::path::PathBuf;
use std::sync::Arc;
use std::time::Instant;

use anyhow::{Context, Result, bail};
use bollard::query_parameters::ListContainersOptionsBuilder;
use chrono::Utc;
use pulih_core::backup::{BackupOptions, Progress, backup};
use pulih_core::bindings::{self, Binding, BindingSigner, Bindings, Role};
use pulih_core::keys::AgentKey;
use pulih_core::repo::{Reader, ReaderKey};
use pulih_core::storage::Store;
use pulih_model::drill::{CAPTURE_TAG, DrillReport, RecoveryKind};
use tracing::Instrument;

use super::{DrillPlan, Run, empty_report, label_filter, rfc3339};
use crate::docker;

/// Ends failover `plan.id` of `plan.server`; the report is `report_id`'s.
pub async fn run(store: Store, key: &ReaderKey, plan: &DrillPlan, report_id: &str) -> DrillReport {
    let started = Utc::now();
    let mut report = empty_report(plan, started);
    report.id = report_id.to_string();
    let docker = match docker::connect() {
        Ok(d) => d,
        Err(e) => {
            report.error = Some(format!("{e:#}"));
            report.finished_at = rfc3339(Utc::now());
            return report;
        }
    };
    let span = tracing::info_span!("failback", id = %report_id, failover = %plan.id, server = %plan.server);
    let mut run = Run {
        plan,
        docker,
        t0: Instant::now(),
        started,
        report,
        running: Default::default(),
        made_scratch: true,
        bridge: None,
        loaded_images: Vec::new(),
    };
    async {
        match run.fail_back(store, key).await {
            Ok(()) => run.report.state = pulih_model::drill::DrillState::Passed,
            Err(e) => run.report.error = Some(format!("{e:#}")),
        }
    }
    .instrument(span)
    .await;
    run.report.finished_at = rfc3339(Utc::now());
    run.report
}

impl Run<'_> {
    async fn fail_back(&mut self, store: Store, key: &ReaderKey) -> Result<()> {
        let plan = self.plan;
        let reader = self
            .timed("open repository", async {
                let r = Reader::open_with(store, key).await?;
                Ok((r, format!("`{}` reader key unwrapped", key.slot())))
            })
            .await?;
        let reader = &reader;
        let restored = plan.scratch().join("restore");
        if !restored.is_dir() {
            bail!(
                "failover {} of {} holds no data at this DRC ({} is missing): nothing to fail back",
                plan.id,
                plan.server,
                restored.display()
            );
        }

        // The failover's own report names the snapshot it brought up.
        let (paths, capture_tag) = self
            .timed("find paths", async {
                let key = pulih_model::drill::report_store_key(
                    RecoveryKind::Failover,
                    &plan.server,
                    &plan.id,
                );
                let bytes = reader
                    .repo
                    .store
                    .get(&key)
                    .await
                    .with_context(|| format!("the failover's report {key}"))?;
                let failover: DrillReport = serde_json::from_slice(&bytes)
                    .with_context(|| format!("the failover's report {key}"))?;
                let snap_id = failover
                    .snapshot_id
                    .context("the failover's report names no snapshot")?;
                // Among the server's own snapshots only: the report is an
                // object any writer of the agency could have replaced.
                let own = crate::snapshots::of_server(reader, &plan.server, Role::Agent).await?;
                let snap = pulih_core::repo::pick_snapshot(own.snapshots, &snap_id).with_context(
                    || format!("the failover's snapshot {snap_id} of {}", plan.server),
                )?;
                // Every path, the Docker capture's staging dir (record,
                // image archives) included: the failback snapshot becomes
                // the server's latest, and a drill of it needs the images.
                // Its capture tag goes along; the primary restores the
                // data paths only.
                let capture_tag = snap
                    .snapshot
                    .tags
                    .iter()
                    .find(|t| t.starts_with(&format!("{CAPTURE_TAG}=")))
                    .cloned();
                let paths: Vec<PathBuf> = snap.snapshot.paths.iter().map(PathBuf::from).collect();
                if paths.is_empty() {
                    bail!("snapshot {snap_id} has no paths to fail back");
                }
                let detail = format!("from snapshot {snap_id}: {paths:?}");
                Ok(((paths, capture_tag), detail))
            })
            .await?;

        let docker = self.docker.clone();
        let filter = label_filter(&plan.id);
        self.timed("stop services", async {
            let list = docker
                .list_containers(Some(
                    ListContainersOptionsBuilder::default()
                        .all(true)
                        .filters(&filter)
                        .build(),
                ))
                .await?;
            if list.is_empty() {
                bail!("no container of failover {} runs at this DRC", plan.id);
            }
            // All at once, each with its own stop timeout (the engine's
            // default 10 s unless the container says otherwise).
            let stops = list.iter().filter_map(|c| c.id.clone()).map(|id| {
                let docker = docker.clone();
                async move {
                    match docker
                        .stop_container(
                            &id,
                            None::<bollard::query_parameters::StopContainerOptions>,
                        )
                        .await
                    {
                        // 304: already stopped.
                        Ok(())
                        | Err(bollard::errors::Error::DockerResponseServerError {
                            status_code: 304,
                            ..
                        }) => Ok(()),
                        Err(e) => Err(anyhow::anyhow!("cannot stop container {id}: {e}")),
                    }
                }
            });
            for r in futures::future::join_all(stops).await {
                r?;
            }
            let names: Vec<String> = list
                .into_iter()
                .flat_map(|c| c.names.unwrap_or_default())
                .collect();
            Ok((
                (),
                format!("stopped {names:?}: from here on the DRC copy does not change"),
            ))
        })
        .await?;

        let replicated = self
            .timed("replicate back", async {
                // A key of its own: the DRC writes into a dedup space of
                // its own, never one a server deduplicates against.
                let (agent_key, _) = AgentKey::new(&reader.keys.master, &reader.repo.config);
                // Bound to the server for this failover under the reader's
                // binding key, so the primary restores it and nothing an
                // agent key wrote (FORMAT.md §13). A server without bindings
                // (a repository from before them) is still selected by tag:
                // a first binding would hide its agent's own snapshots.
                let signer = BindingSigner::of(&reader.keys.master);
                let bound = Bindings::load(&reader.repo.store, &signer.verifier())
                    .await?
                    .servers
                    .contains(&plan.server);
                if bound {
                    let b = Binding {
                        server: plan.server.clone(),
                        space: agent_key.space.space,
                        role: Role::Failback,
                        failover: Some(plan.id.clone()),
                        created: Utc::now().timestamp(),
                    };
                    bindings::write(&reader.repo.store, &signer, b)
                        .await
                        .context("binding the failback's space to the server")?;
                }
                let mut opts = BackupOptions::new(
                    "drc".into(),
                    plan.scratch_root.join(format!("{}-cache", plan.id)),
                );
                opts.root = Some(restored.clone());
                opts.tags = vec![
                    format!("server={}", plan.server),
                    format!("failback={}", plan.id),
                ];
                opts.tags.extend(capture_tag.clone());
                let out = backup(
                    reader.repo.store.clone(),
                    &agent_key,
                    &paths,
                    &opts,
                    Arc::new(Progress::default()),
                )
                .await?;
                let _ = std::fs::remove_dir_all(&opts.cache_dir);
                if !out.errors.is_empty() {
                    bail!("some of the DRC's data could not be read: {:?}", out.errors);
                }
                let s = &out.snapshot.summary;
                let detail = format!(
                    "snapshot {} of {}: {} files, {} bytes",
                    out.snapshot_id, plan.server, s.files, s.total_bytes
                );
                Ok((out.snapshot_id.to_hex(), detail))
            })
            .await;
        let snapshot = match replicated {
            Ok(s) => s,
            Err(e) => {
                // Nothing was replicated back: the DRC copy serves again.
                let mut restarted = Vec::new();
                if let Ok(list) = docker
                    .list_containers(Some(
                        ListContainersOptionsBuilder::default()
                            .all(true)
                            .filters(&filter)
                            .build(),
                    ))
                    .await
                {
                    for id in list.into_iter().filter_map(|c| c.id) {
                        if docker.start_container(&id, None).await.is_ok() {
                            restarted.push(id);
                        }
                    }
                }
                return Err(e.context(format!(
                    "the failover's {} container(s) were started again; the server is still failed over",
                    restarted.len()
                )));
            }
        };
        self.report.snapshot_id = Some(snapshot);

        self.teardown().await;
        if !self.report.teardown.as_ref().is_some_and(|t| t.clean()) {
            bail!("the DRC copy could not be removed completely (see the teardown)");
        }
        self.switch_hook("failback").await
    }
}
