//! The primary's side of a failback: restore, in place, the snapshot the
//! DRC executor made of what changed while the server was failed over.
//!
//! The protected containers (the manifest's `dockerContainer` sources and
//! the containers its pre hooks pause) are stopped; each backed-up path is
//! restored next to itself, the old one is moved aside (kept as
//! `.<name>.pulih-before-<failback snapshot>`, nothing is deleted), the
//! restored one takes its place, and the containers start, those that were
//! down before the failback (the outage) too. Like any
//! restore on a server, it needs the reader key the walidata gave this
//! agent (`reader_passphrase_file`).

use std::path::{Path, PathBuf};
use std::sync::Arc;

use anyhow::{Context, Result, bail};
use pulih_core::bindings::Role;
use pulih_core::repo::{Reader, pick_snapshot};
use pulih_core::restore::{RestoreOptions, RestoreProgress, restore};
use pulih_core::storage::Store;
use pulih_model::api::{Assignment, RestoreRequest};

use super::PdRole;
use super::jobs::Outcome;
use crate::docker;

impl PdRole {
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
        let own = crate::snapshots::of_server(&reader, &a.server, Role::Failback).await?;
        let snap = pick_snapshot(own.snapshots.clone(), &req.snapshot)
            .with_context(|| format!("snapshot `{}` of server {}", req.snapshot, a.server))?;
        // Made by the DRC executor: in a space it bound for a failback of
        // this server (FORMAT.md §13); before bindings, by its tag.
        let failback = match own.binding_of(&snap) {
            Some(b) => b.role == Role::Failback,
            None => {
                own.by_tag
                    && snap
                        .snapshot
                        .tags
                        .iter()
                        .any(|t| t.starts_with("failback="))
            }
        };
        if !failback {
            bail!(
                "snapshot {} is not a failback snapshot (made by the DRC executor); refusing to restore it in place",
                snap.id
            );
        }
        let short = snap.id.to_hex()[..12].to_string();
        // A server without Docker sources needs no engine at all.
        let docker = if a.docker.is_empty() {
            None
        } else {
            Some(docker::connect()?)
        };
        // Only what this agent protects itself is put back: its path
        // sources and its Docker volumes' data. Anything else a snapshot
        // names (the capture's staging dir, a bind-mounted socket, a path a
        // compromised DRC added) is left alone.
        let mut allowed: Vec<PathBuf> = a.paths.iter().map(PathBuf::from).collect();
        let mut volumes = a.docker.volumes.clone();
        for c in &a.docker.containers {
            let Some(docker) = &docker else { break };
            if let Ok(info) = docker.inspect_container(c, None).await {
                volumes.extend(
                    info.mounts
                        .unwrap_or_default()
                        .into_iter()
                        .filter(|m| {
                            m.typ.as_ref().map(|t| t.to_string()).as_deref() == Some("volume")
                        })
                        .filter_map(|m| m.name),
                );
            }
        }
        for v in &volumes {
            let Some(docker) = &docker else { break };
            if let Ok(vol) = docker.inspect_volume(v).await {
                allowed.push(PathBuf::from(vol.mountpoint));
            }
        }
        let mut skipped = Vec::new();
        let mut paths = Vec::new();
        for p in snap.snapshot.paths.iter().map(PathBuf::from) {
            let plain = p.is_absolute()
                && p.parent().is_some()
                && p.components()
                    .skip(1)
                    .all(|c| matches!(c, std::path::Component::Normal(_)));
            if plain && allowed.contains(&p) {
                paths.push(p);
            } else {
                skipped.push(p);
            }
        }
        if !skipped.is_empty() {
            tracing::info!(
                ?skipped,
                "failback: not this server's data sources; left alone"
            );
        }
        if paths.is_empty() {
            bail!(
                "snapshot {} holds none of this server's sources ({:?}); nothing was changed",
                snap.id,
                allowed
            );
        }

        // Everything restored beside itself first, while the service runs;
        // nothing is moved until all of it is there.
        let staged = match self.stage(&reader, &snap, &paths, &short).await {
            Ok(s) => s,
            Err(e) => {
                for (tmp, _) in paths.iter().map(|p| tmp_and_old(p, &short)) {
                    let _ = std::fs::remove_dir_all(tmp);
                }
                return Err(e);
            }
        };

        let mut names: Vec<String> = a.docker.containers.clone();
        names.extend(a.docker.hooks.pre.iter().filter_map(|h| h.pause.clone()));
        names.sort();
        names.dedup();
        let mut stopped = Vec::new();
        // Down already (the primary's outage, or ops stopped it for the
        // failback): started with the restored data once it is in place.
        let mut down = Vec::new();
        let mut stop_error = None;
        for n in &names {
            let Some(docker) = &docker else { break };
            let running = match docker.inspect_container(n, None).await {
                Ok(info) => info.state.and_then(|s| s.running).unwrap_or(false),
                // Not on this host (removed in the outage): nothing to stop
                // or start; ops recreate it on the restored volume.
                Err(bollard::errors::Error::DockerResponseServerError {
                    status_code: 404, ..
                }) => continue,
                Err(e) => {
                    stop_error = Some(anyhow::anyhow!(
                        "cannot tell whether container {n} runs, so it is not swapped under it: {e}"
                    ));
                    break;
                }
            };
            if !running {
                down.push(n.clone());
                continue;
            }
            // Its own stop timeout (the engine's default 10 s unless the
            // container says otherwise).
            match docker
                .stop_container(n, None::<bollard::query_parameters::StopContainerOptions>)
                .await
            {
                Ok(()) => stopped.push(n.clone()),
                Err(e) => {
                    stop_error = Some(anyhow::anyhow!(
                        "cannot stop container {n} for the failback: {e}"
                    ));
                    break;
                }
            }
        }
        tracing::info!(snapshot = %snap.id, ?stopped, "failback: containers stopped, swapping in");
        let result = match stop_error {
            Some(e) => Err(e),
            None => swap_all(&paths, &staged, &short),
        };
        // Start what was stopped, whatever happened: after a failed swap
        // the old data is back in place. After a good swap, what was down
        // starts too: the failback brings the primary back into service
        // before the switch points users at it again.
        if result.is_ok() {
            stopped.append(&mut down);
        }
        let mut problems = Vec::new();
        for n in &stopped {
            let Some(docker) = &docker else { break };
            if let Err(e) = docker.start_container(n, None).await {
                problems.push(format!(
                    "cannot start container {n}{}: {e}",
                    if result.is_ok() {
                        " on the restored data (it is in place; start it by hand once fixed)"
                    } else {
                        " again"
                    }
                ));
            }
        }
        for (tmp, _) in paths.iter().map(|p| tmp_and_old(p, &short)) {
            let _ = std::fs::remove_dir_all(tmp);
        }
        let (files, bytes) = result?;
        Ok((Some(snap.id.to_hex()), files, bytes, problems))
    }

    /// Restores each path beside itself (`tmp`); returns the restored
    /// path of each (None: the snapshot holds nothing there) and the totals.
    async fn stage(
        &self,
        reader: &Reader,
        snap: &pulih_core::repo::ListedSnapshot,
        paths: &[PathBuf],
        short: &str,
    ) -> Result<Staged> {
        let mut staged = Staged::default();
        for p in paths {
            let (tmp, old) = tmp_and_old(p, short);
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
            staged.files += s.files;
            staged.bytes += s.bytes;
            if s.set_id_dropped > 0 {
                tracing::warn!(
                    path = %p.display(),
                    files = s.set_id_dropped,
                    "failback restored files without their set-user-ID/set-group-ID bits"
                );
            }
            let restored = tmp.join(p.strip_prefix("/").unwrap_or(p));
            staged.restored.push(
                std::fs::symlink_metadata(&restored)
                    .is_ok()
                    .then_some(restored),
            );
        }
        Ok(staged)
    }
}

#[derive(Default)]
struct Staged {
    /// Per path: where its restored copy is.
    restored: Vec<Option<PathBuf>>,
    files: u64,
    bytes: u64,
}

/// Beside `p`, on its filesystem: where its copy is restored, and where
/// the replaced data is kept.
fn tmp_and_old(p: &Path, short: &str) -> (PathBuf, PathBuf) {
    let parent = p.parent().unwrap_or(Path::new("/"));
    let name = p.file_name().unwrap_or_default().to_string_lossy();
    (
        parent.join(format!(".{name}.pulih-failback-{short}")),
        parent.join(format!(".{name}.pulih-before-{short}")),
    )
}

/// Moves every restored path in, the old one aside; on any failure puts
/// back what it moved, so the server has either all new or all old data.
fn swap_all(paths: &[PathBuf], staged: &Staged, short: &str) -> Result<(u64, u64)> {
    let mut done: Vec<(&Path, PathBuf, bool)> = Vec::new();
    let mut failure = None;
    for (p, restored) in paths.iter().zip(&staged.restored) {
        let Some(restored) = restored else {
            tracing::warn!(path = %p.display(), "failback: the snapshot holds nothing here; left as it is");
            continue;
        };
        let (_, old) = tmp_and_old(p, short);
        let had_old = std::fs::symlink_metadata(p).is_ok();
        if had_old && let Err(e) = std::fs::rename(p, &old) {
            failure = Some(anyhow::anyhow!("cannot move {} aside: {e}", p.display()));
            break;
        }
        if let Err(e) = std::fs::rename(restored, p) {
            if had_old {
                let _ = std::fs::rename(&old, p);
            }
            failure = Some(anyhow::anyhow!(
                "cannot move the restored {} in place: {e}",
                p.display()
            ));
            break;
        }
        tracing::info!(path = %p.display(), kept = %old.display(), "failback: swapped in");
        done.push((p, old, had_old));
    }
    if let Some(e) = failure {
        // Back to the old data everywhere.
        for (p, old, had_old) in done.into_iter().rev() {
            let _ = std::fs::remove_dir_all(p).or_else(|_| std::fs::remove_file(p));
            if had_old {
                let _ = std::fs::rename(&old, p);
            }
        }
        return Err(e.context("the failback was rolled back: the server has its old data"));
    }
    Ok((staged.files, staged.bytes))
}
