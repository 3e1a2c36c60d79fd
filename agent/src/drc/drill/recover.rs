//! A drill's or failover's recovery, one method per step, each timed in
//! the report as it runs: open the repository, select the snapshot (and
//! the RPO), check the disk, restore, load the images (`images.rs`), make
//! the network, start the containers group by group with their health
//! checks (`containers.rs`, `checks.rs`), the RTO, and on a failover the
//! switch (`switch.rs`). A new step is a method here, called from
//! [`Run::recover`] in its place.

use std::collections::HashMap;
use std::path::PathBuf;
use std::sync::Arc;

use anyhow::{Context, Result, bail};
use bollard::models::NetworkCreateRequest;
use chrono::{DateTime, Utc};
use pulih_core::repo::{ListedSnapshot, Reader, ReaderKey};
use pulih_core::storage::Store;
use pulih_model::drill::RecoveryKind;

use super::{LABEL, Run, SERVICE_LABEL, free_bytes, isolation, restored};

impl Run<'_> {
    /// Recovers the plan's server, step by step; the first step that fails
    /// ends it (its error is the report's).
    pub(super) async fn recover(&mut self, store: Store, key: &ReaderKey) -> Result<()> {
        let plan = self.plan;
        // Part of the RTO: a real recovery starts by unlocking the key.
        let reader = self.open_repository(store, key).await?;
        if plan.recovery.containers.is_empty() {
            bail!(
                "server {} has no recovery containers in its manifest (spec.recovery.containers)",
                plan.server
            );
        }
        let snap = self.select_snapshot(&reader).await?;
        self.check_disk(&reader, &snap).await?;
        let target = self.restore(&reader, &snap).await?;
        let capture = restored::capture(&snap, &target)?;
        self.load_images(&target, &capture).await?;
        self.network().await?;
        self.start_containers(&snap, &target, &capture).await?;
        self.report.rto_seconds = Some(self.at());
        if plan.kind == RecoveryKind::Failover {
            self.switch_hook("failover").await?;
        }
        Ok(())
    }

    async fn open_repository(&mut self, store: Store, key: &ReaderKey) -> Result<Reader> {
        self.timed("open repository", async {
            let r = Reader::open_with(store, key).await?;
            Ok((
                r,
                format!("`{}` reader key unwrapped, indexes loaded", key.slot()),
            ))
        })
        .await
    }

    /// The plan's snapshot of the server; the report gets its id, time
    /// and the RPO.
    async fn select_snapshot(&mut self, reader: &Reader) -> Result<ListedSnapshot> {
        let plan = self.plan;
        let snap: ListedSnapshot = self
            .timed("select snapshot", async {
                let own = crate::snapshots::of_server(
                    reader,
                    &plan.server,
                    pulih_core::bindings::Role::Agent,
                )
                .await?;
                let snap = pulih_core::repo::pick_snapshot(own.snapshots, &plan.snapshot)
                    .with_context(|| format!("snapshot `{}`", plan.snapshot))?;
                let detail = format!("{} of {}", snap.id, snap.snapshot.time);
                Ok((snap, detail))
            })
            .await?;
        self.report.snapshot_id = Some(snap.id.to_hex());
        self.report.snapshot_time = Some(snap.snapshot.time.clone());
        if let Ok(t) = DateTime::parse_from_rfc3339(&snap.snapshot.time) {
            // Never earlier than the store received it: a clock that ran
            // ahead on the server must not make the RPO look better.
            let stored = DateTime::from_timestamp(snap.stored_at, 0).unwrap_or(t.into());
            let taken = t.with_timezone(&Utc).min(stored);
            self.report.rpo_seconds =
                Some(((self.started - taken).num_milliseconds() as f64 / 1000.0).max(0.0));
        }
        Ok(snap)
    }

    /// Room for the snapshot on the scratch disk: its file bytes as its
    /// trees expand (not the total its server claims in the snapshot).
    async fn check_disk(&mut self, reader: &Reader, snap: &ListedSnapshot) -> Result<()> {
        let plan = self.plan;
        let claimed = snap.snapshot.summary.total_bytes;
        self.timed("check disk", async {
            let need = pulih_core::restore::measure(reader, snap.space, snap.snapshot.tree, &[])
                .await
                .context("measuring the snapshot from its trees")?
                .bytes;
            let free = free_bytes(&plan.scratch_root).with_context(|| {
                format!(
                    "cannot tell the free disk space of {} (`df -Pk` must be on the executor's PATH and answer for it)",
                    plan.scratch_root.display()
                )
            })?;
            // Restored data plus a tenth for the filesystem's own overhead.
            let want = need.saturating_add(need / 10);
            if free < want {
                bail!(
                    "too little disk at {}: the snapshot needs about {} bytes (from its trees), {} are free",
                    plan.scratch_root.display(),
                    want,
                    free
                );
            }
            let claim = if claimed == need {
                String::new()
            } else {
                format!(" (its server claimed {claimed})")
            };
            Ok(((), format!("{free} bytes free, {need} needed{claim}")))
        })
        .await
    }

    /// Restores the snapshot into the run's own scratch directory; returns
    /// where (`<scratch>/restore`).
    async fn restore(&mut self, reader: &Reader, snap: &ListedSnapshot) -> Result<PathBuf> {
        let scratch = self.plan.scratch();
        let target = scratch.join("restore");
        // Created here, not found: a directory of this name that exists is
        // someone else's, and teardown must not remove it.
        let made = std::fs::create_dir(&scratch)
            .with_context(|| format!("cannot create scratch directory {}", scratch.display()));
        self.made_scratch = made.is_ok();
        let restored = self
            .timed("restore", async {
                made?;
                std::fs::create_dir(&target)
                    .with_context(|| format!("cannot create {}", target.display()))?;
                let s = pulih_core::restore::restore(
                    reader,
                    snap,
                    &target,
                    &pulih_core::restore::RestoreOptions::default(),
                    Arc::new(pulih_core::restore::RestoreProgress::default()),
                )
                .await?;
                let mut detail = format!(
                    "{} files, {} bytes; every blob authenticated (AES-256-GCM)",
                    s.files, s.bytes
                );
                if s.set_id_dropped > 0 {
                    detail += &format!("; set-ID bits left off {} files", s.set_id_dropped);
                }
                Ok((s, detail))
            })
            .await?;
        self.report.files_restored = restored.files;
        self.report.bytes_restored = restored.bytes;
        Ok(target)
    }

    /// The recovery's network: a drill's own internal one, a plan run's
    /// shared internal one, or the DRC's service network (a failover's);
    /// walled off from the DRC host by the executor's own rules
    /// (`isolation.rs`) before any container joins it.
    async fn network(&mut self) -> Result<()> {
        let plan = self.plan;
        let docker = self.docker.clone();
        let network = plan.network();
        let internal = plan.kind == RecoveryKind::Drill;
        let scope = if internal {
            isolation::Scope::Drill
        } else {
            isolation::Scope::Service
        };
        let walls = if internal {
            "no route out, no way to the DRC host or another drill's network"
        } else {
            "no way to the DRC host's own services"
        };
        let bridge = self
            .timed("network", async {
                let shared = !internal || plan.plan_drill().is_some();
                if shared && let Ok(net) = docker.inspect_network(&network, None).await {
                    let bridge = isolation::bridge_of(&net).with_context(|| {
                        format!(
                            "network {network} exists but is not a bridge network: the executor cannot wall it off from the DRC host; remove it or name another"
                        )
                    })?;
                    isolation::install(&bridge, scope).await?;
                    let what = if internal {
                        "the plan run's internal network, existing"
                    } else {
                        "the DRC's service network, existing"
                    };
                    let table = isolation::table_for(&bridge);
                    return Ok((bridge, format!("{network} ({what}; {walls}: nft table inet {table})")));
                }
                // A drill's network carries the drill's label (teardown removes
                // it), a plan drill's the run's (the run's teardown removes it);
                // the service network is shared and kept.
                let labels = match (internal, plan.plan_drill()) {
                    (true, Some(run)) => {
                        let mut l = plan.labels();
                        l.insert(LABEL.to_string(), run.to_string());
                        l
                    }
                    (true, None) => plan.labels(),
                    (false, _) => HashMap::from([(SERVICE_LABEL.to_string(), "true".to_string())]),
                };
                // The bridge is named here and its rules are in place
                // before the engine makes it: no moment without them. An
                // interface of that name already there would be adopted
                // by the engine (and is not ours).
                let bridge = isolation::bridge_for(&network);
                if isolation::link_exists(&bridge)? {
                    bail!("cannot create network {network}: an interface named {bridge} already exists on the host");
                }
                isolation::install(&bridge, scope).await?;
                let made = docker
                    .create_network(NetworkCreateRequest {
                        name: network.clone(),
                        driver: Some("bridge".into()),
                        internal: Some(internal),
                        labels: Some(labels),
                        options: Some(HashMap::from([(
                            isolation::BRIDGE_OPTION.to_string(),
                            bridge.clone(),
                        )])),
                        ..Default::default()
                    })
                    .await
                    .with_context(|| format!("cannot create network {network}"));
                if let Err(e) = made {
                    // Nothing joined a bridge that was never made.
                    let _ = isolation::remove(&bridge).await;
                    return Err(e);
                }
                // The engine must have used the name the rules match.
                let net = docker
                    .inspect_network(&network, None)
                    .await
                    .with_context(|| format!("cannot inspect network {network}"))?;
                if isolation::bridge_of(&net).as_deref() != Some(bridge.as_str())
                    || !isolation::link_exists(&bridge)?
                {
                    bail!(
                        "network {network} was not made on bridge {bridge} as asked: its isolation rules would not apply"
                    );
                }
                let what = if internal {
                    "internal"
                } else {
                    "the DRC's service network, created"
                };
                let table = isolation::table_for(&bridge);
                Ok((bridge, format!("{network} ({what}; {walls}: nft table inet {table})")))
            })
            .await?;
        self.bridge = Some(bridge);
        Ok(())
    }
}
