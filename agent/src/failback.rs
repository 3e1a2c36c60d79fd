//! The primary's side of a failback: restore, in place, the snapshot the
//! DRC executor made of what changed while the server was failed over.
//!
//! The protected containers (the manifest's `dockerContainer` sources and
//! the containers its pre hooks pause) are stopped; each backed-up path is
//! restored next to itself, the old one is moved aside (kept as
//! `.<name>.pulih-before-<failback snapshot>`, nothing is deleted), the
//! restored one takes its place, and the containers start again. Like any
//! restore on a server, it needs the reader key the walidata gave this
//! agent (`reader_passphrase_file`).

use std::path::{Path, PathBuf};
use std::sync::Arc;

use anyhow::{Context, Result, bail};
use pulih_core::api::{Assignment, RestoreRequest};
use pulih_core::repo::{Reader, pick_snapshot};
use pulih_core::restore::{RestoreOptions, RestoreProgress, restore};
use pulih_core::storage::Store;

use crate::{Agent, docker};

/// What a job reports: snapshot, files, bytes, problems.
type Outcome = (Option<String>, u64, u64, Vec<String>);

impl Agent {
    pub(crate) async fn fail_back(
        &self,
        store: Store,
        a: &Assignment,
        req: &RestoreRequest,
    ) -> Result<Outcome> {
        let Some(pass_file) = &self.config.reader_passphrase_file else {
            bail!(
                "a failback restores this server's data in place, and this agent holds no reader key: the walidata must consent by setting reader_passphrase_file in the agent's config"
            );
        };
        let passphrase = pulih_core::storage::read_secret_file(pass_file)?;
        let reader = Reader::open(store, &passphrase).await?;
        let tag = format!("server={}", a.server);
        let own: Vec<_> = reader
            .snapshots()
            .await?
            .into_iter()
            .filter(|s| s.snapshot.tags.contains(&tag))
            .collect();
        let snap = pick_snapshot(own, &req.snapshot)
            .with_context(|| format!("snapshot `{}` of server {}", req.snapshot, a.server))?;
        if !snap
            .snapshot
            .tags
            .iter()
            .any(|t| t.starts_with("failback="))
        {
            bail!(
                "snapshot {} is not a failback snapshot (made by the DRC executor); refusing to restore it in place",
                snap.id
            );
        }
        let short = &snap.id.to_hex()[..12];
        // The data paths: the Docker capture's staging dir is the agent's
        // own bookkeeping (it rewrites it each night), not data to put back.
        let staging = snap
            .snapshot
            .tags
            .iter()
            .find_map(|t| t.strip_prefix(&format!("{}=", pulih_core::drill::CAPTURE_TAG)))
            .map(str::to_string);
        let paths: Vec<PathBuf> = snap
            .snapshot
            .paths
            .iter()
            .filter(|p| Some(p.as_str()) != staging.as_deref())
            .map(PathBuf::from)
            .collect();
        for p in &paths {
            let plain = p.is_absolute()
                && p.parent().is_some()
                && p.components()
                    .skip(1)
                    .all(|c| matches!(c, std::path::Component::Normal(_)));
            if !plain {
                bail!(
                    "snapshot {} holds a path that cannot be restored in place: {}",
                    snap.id,
                    p.display()
                );
            }
        }

        let docker = docker::connect()?;
        let mut names: Vec<String> = a.docker.containers.clone();
        names.extend(a.docker.hooks.pre.iter().filter_map(|h| h.pause.clone()));
        names.sort();
        names.dedup();
        let mut stopped = Vec::new();
        for n in &names {
            let running = docker
                .inspect_container(n, None)
                .await
                .ok()
                .and_then(|i| i.state)
                .and_then(|s| s.running)
                .unwrap_or(false);
            if running {
                // Its own stop timeout (the engine's default 10 s unless the
                // container says otherwise).
                docker
                    .stop_container(n, None::<bollard::query_parameters::StopContainerOptions>)
                    .await
                    .with_context(|| format!("cannot stop container {n} for the failback"))?;
                stopped.push(n.clone());
            }
        }
        tracing::info!(snapshot = %snap.id, ?stopped, "failback: containers stopped, restoring in place");

        let result = self.swap_in(&reader, &snap, &paths, short).await;
        // Start what was stopped, whatever happened: after a failed swap
        // the old data is still in place.
        let mut problems = Vec::new();
        for n in &stopped {
            if let Err(e) = docker.start_container(n, None).await {
                problems.push(format!("cannot start container {n} again: {e}"));
            }
        }
        let (files, bytes) = result?;
        Ok((Some(snap.id.to_hex()), files, bytes, problems))
    }

    /// Restores each path next to itself, then swaps it in.
    async fn swap_in(
        &self,
        reader: &Reader,
        snap: &pulih_core::repo::ListedSnapshot,
        paths: &[PathBuf],
        short: &str,
    ) -> Result<(u64, u64)> {
        let (mut files, mut bytes) = (0, 0);
        for p in paths {
            let parent = p.parent().unwrap_or(Path::new("/"));
            let name = p.file_name().unwrap_or_default().to_string_lossy();
            // Beside the path: the same filesystem, so the swap is a rename.
            let tmp = parent.join(format!(".{name}.pulih-failback-{short}"));
            let old = parent.join(format!(".{name}.pulih-before-{short}"));
            if tmp.exists() || old.exists() {
                bail!(
                    "{} or {} exists already (an earlier failback of this snapshot?); move it away first",
                    tmp.display(),
                    old.display()
                );
            }
            let opts = RestoreOptions {
                include: vec![p.display().to_string()],
                ..Default::default()
            };
            let s = restore(
                reader,
                snap,
                &tmp,
                &opts,
                Arc::new(RestoreProgress::default()),
            )
            .await
            .with_context(|| format!("restoring {} beside itself", p.display()))?;
            files += s.files;
            bytes += s.bytes;
            let restored = tmp.join(p.strip_prefix("/").unwrap_or(p));
            if p.exists() {
                std::fs::rename(p, &old)
                    .with_context(|| format!("cannot move {} aside", p.display()))?;
            }
            std::fs::rename(&restored, p)
                .with_context(|| format!("cannot move the restored {} in place", p.display()))?;
            std::fs::remove_dir_all(&tmp)
                .with_context(|| format!("cannot remove {}", tmp.display()))?;
            tracing::info!(path = %p.display(), kept = %old.display(), "failback: swapped in");
        }
        Ok((files, bytes))
    }
}
