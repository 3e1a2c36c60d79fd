//! The end of a drill: container logs for a failed one, the teardown of
//! everything labelled with its id (and its scratch data), the count of
//! what is left, and the executor's sweep of drills a crash interrupted.

use std::collections::HashMap;
use std::path::Path;

use anyhow::{Context, Result};
use bollard::Docker;
use bollard::query_parameters::{
    ListContainersOptionsBuilder, ListNetworksOptionsBuilder, ListVolumesOptionsBuilder,
    LogsOptionsBuilder, RemoveContainerOptionsBuilder, RemoveVolumeOptions,
};
use futures::StreamExt;
use pulih_model::drill::Teardown;

use super::{LABEL, OWNER_LABEL, PLAN_LABEL, Run, isolation, label_filter};
use crate::docker;

impl Run<'_> {
    /// The last lines of every container's log.
    pub(super) async fn collect_logs(&mut self) {
        let mut names: Vec<(String, String)> = self
            .running
            .iter()
            .map(|(k, (n, _))| (k.clone(), n.clone()))
            .collect();
        names.sort();
        for (short, name) in names {
            let mut text = String::new();
            let mut s = self.docker.logs(
                &name,
                Some(
                    LogsOptionsBuilder::default()
                        .stdout(true)
                        .stderr(true)
                        .tail("50")
                        .build(),
                ),
            );
            while let Some(Ok(line)) = s.next().await {
                text.push_str(&line.to_string());
            }
            self.report.logs.insert(short, text);
        }
    }

    /// Removes every container, network and volume with this recovery's
    /// label and the scratch data, then counts what is left.
    pub(super) async fn teardown(&mut self) {
        let began = self.at();
        let id = self.plan.id.clone();
        let docker = &self.docker.clone();
        let mut t = Teardown::default();
        let filter = label_filter(&id);
        match docker
            .list_containers(Some(
                ListContainersOptionsBuilder::default()
                    .all(true)
                    .filters(&filter)
                    .build(),
            ))
            .await
        {
            Ok(list) => {
                for c in list {
                    let Some(cid) = c.id else { continue };
                    match docker
                        .remove_container(
                            &cid,
                            Some(
                                RemoveContainerOptionsBuilder::default()
                                    .force(true)
                                    .v(true)
                                    .build(),
                            ),
                        )
                        .await
                    {
                        Ok(()) => t.containers_removed += 1,
                        Err(e) => t.errors.push(format!("remove container {cid}: {e}")),
                    }
                }
            }
            Err(e) => t.errors.push(format!("list containers: {e}")),
        }
        match docker
            .list_networks(Some(
                ListNetworksOptionsBuilder::default()
                    .filters(&filter)
                    .build(),
            ))
            .await
        {
            Ok(list) => {
                for n in list {
                    remove_network(docker, &n, &mut t).await;
                }
            }
            Err(e) => t.errors.push(format!("list networks: {e}")),
        }
        match docker
            .list_volumes(Some(
                ListVolumesOptionsBuilder::default()
                    .filters(&filter)
                    .build(),
            ))
            .await
        {
            Ok(list) => {
                for v in list.volumes.unwrap_or_default() {
                    match docker
                        .remove_volume(&v.name, None::<RemoveVolumeOptions>)
                        .await
                    {
                        Ok(()) => t.volumes_removed += 1,
                        Err(e) => t.errors.push(format!("remove volume {}: {e}", v.name)),
                    }
                }
            }
            Err(e) => t.errors.push(format!("list volumes: {e}")),
        }
        self.remove_loaded_images(&mut t).await;
        let scratch = self.plan.scratch();
        t.scratch_removed = match std::fs::remove_dir_all(&scratch) {
            _ if !self.made_scratch => true,
            Ok(()) => true,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => true,
            Err(e) => {
                t.errors.push(format!("remove {}: {e}", scratch.display()));
                false
            }
        };
        let left = left_behind(docker, &id).await;
        match left {
            Ok((c, n, v)) => {
                t.containers_left = c;
                t.networks_left = n;
                t.volumes_left = v;
            }
            Err(e) => t.errors.push(format!("count what is left: {e}")),
        }
        let detail = format!(
            "removed {} containers, {} networks, {} volumes, {} loaded images ({} in use by another recovery, left) and the scratch data; left: {} containers, {} networks, {} volumes",
            t.containers_removed,
            t.networks_removed,
            t.volumes_removed,
            t.images_removed,
            t.images_in_use,
            t.containers_left,
            t.networks_left,
            t.volumes_left
        );
        let clean = t.clean();
        self.report.teardown = Some(t);
        self.step("teardown", began, clean, detail);
    }
}

/// Containers, networks and volumes still carrying a recovery's label.
pub async fn left_behind(docker: &Docker, id: &str) -> Result<(u32, u32, u32)> {
    let filter = label_filter(id);
    let c = docker
        .list_containers(Some(
            ListContainersOptionsBuilder::default()
                .all(true)
                .filters(&filter)
                .build(),
        ))
        .await?
        .len();
    let n = docker
        .list_networks(Some(
            ListNetworksOptionsBuilder::default()
                .filters(&filter)
                .build(),
        ))
        .await?
        .len();
    let v = docker
        .list_volumes(Some(
            ListVolumesOptionsBuilder::default()
                .filters(&filter)
                .build(),
        ))
        .await?
        .volumes
        .map_or(0, |v| v.len());
    Ok((c as u32, n as u32, v as u32))
}

/// Removes what drills of `owner` left behind when it stopped mid-drill
/// (a crash, a reboot): containers and networks labelled with a drill id
/// and that owner — never a failover's, which is meant to keep running —
/// and drill scratch directories under `scratch_root`. For the executor to
/// run when it starts, before it runs a drill of its own. Returns the ids.
pub async fn sweep_orphaned_drills(owner: &str, scratch_root: &Path) -> Result<Vec<String>> {
    let docker = docker::connect()?;
    let filter = HashMap::from([(
        "label".to_string(),
        vec![format!("{OWNER_LABEL}={owner}"), LABEL.to_string()],
    )]);
    let mut swept = std::collections::BTreeSet::new();
    let drill_id = |labels: Option<&HashMap<String, String>>| {
        labels
            .and_then(|l| l.get(LABEL))
            .filter(|id| is_drill(id))
            .cloned()
    };
    let containers = docker
        .list_containers(Some(
            ListContainersOptionsBuilder::default()
                .all(true)
                .filters(&filter)
                .build(),
        ))
        .await?;
    for c in containers {
        if let (Some(id), Some(cid)) = (drill_id(c.labels.as_ref()), c.id) {
            docker
                .remove_container(
                    &cid,
                    Some(
                        RemoveContainerOptionsBuilder::default()
                            .force(true)
                            .v(true)
                            .build(),
                    ),
                )
                .await?;
            swept.insert(id);
        }
    }
    let networks = docker
        .list_networks(Some(
            ListNetworksOptionsBuilder::default()
                .filters(&filter)
                .build(),
        ))
        .await?;
    for n in networks {
        if let (Some(id), Some(name)) = (drill_id(n.labels.as_ref()), n.name.as_ref()) {
            docker.remove_network(name).await?;
            if let Some(bridge) = isolation::bridge_of_listed(&n) {
                isolation::remove(&bridge).await?;
            }
            swept.insert(id);
        }
    }
    if let Ok(dir) = std::fs::read_dir(scratch_root) {
        for e in dir.flatten() {
            let name = e.file_name().to_string_lossy().into_owned();
            if is_drill(&name) && e.path().is_dir() {
                // A kept-up plan drill's loaded images (its containers are
                // gone by now); what cannot be removed is logged.
                let mut t = Teardown::default();
                super::images::remove_recorded_images(&docker, &e.path(), &mut t).await;
                for err in t.errors {
                    tracing::warn!(drill = %name, error = %err, "orphaned drill's image");
                }
                std::fs::remove_dir_all(e.path())
                    .with_context(|| format!("cannot remove {}", e.path().display()))?;
                swept.insert(name);
            }
        }
    }
    Ok(swept.into_iter().collect())
}

/// Removes a recovery network, then its isolation rules (its containers
/// are gone by now); counted in `t`.
async fn remove_network(docker: &Docker, n: &bollard::models::Network, t: &mut Teardown) {
    let Some(nid) = n.id.as_deref() else { return };
    match docker.remove_network(nid).await {
        Ok(()) => t.networks_removed += 1,
        Err(e) => {
            t.errors.push(format!("remove network {nid}: {e}"));
            return;
        }
    }
    if let Some(bridge) = isolation::bridge_of_listed(n)
        && let Err(e) = isolation::remove(&bridge).await
    {
        t.errors.push(format!(
            "remove the isolation rules of bridge {bridge}: {e:#}"
        ));
    }
}

/// A drill's id (or a drill plan run's, or a drill of one): never a
/// failover's, which is meant to keep running.
fn is_drill(id: &str) -> bool {
    id.starts_with("drill-") || id.starts_with("plan-drill-")
}

/// Removes what a drill plan's run left up: its drills' containers (by
/// [`PLAN_LABEL`]), its shared network, and its drills' scratch data
/// (`<scratch_root>/<run>-…`); then counts what is left.
pub async fn teardown_plan_run(run: &str, scratch_root: &Path) -> Teardown {
    let mut t = Teardown::default();
    let docker = match docker::connect() {
        Ok(d) => d,
        Err(e) => {
            t.errors.push(format!("{e:#}"));
            return t;
        }
    };
    let by_run = HashMap::from([("label".to_string(), vec![format!("{PLAN_LABEL}={run}")])]);
    match docker
        .list_containers(Some(
            ListContainersOptionsBuilder::default()
                .all(true)
                .filters(&by_run)
                .build(),
        ))
        .await
    {
        Ok(list) => {
            for cid in list.into_iter().filter_map(|c| c.id) {
                let opts = RemoveContainerOptionsBuilder::default()
                    .force(true)
                    .v(true)
                    .build();
                match docker.remove_container(&cid, Some(opts)).await {
                    Ok(()) => t.containers_removed += 1,
                    Err(e) => t.errors.push(format!("remove container {cid}: {e}")),
                }
            }
        }
        Err(e) => t.errors.push(format!("list containers: {e}")),
    }
    let network = label_filter(run);
    match docker
        .list_networks(Some(
            ListNetworksOptionsBuilder::default()
                .filters(&network)
                .build(),
        ))
        .await
    {
        Ok(list) => {
            for n in list {
                remove_network(&docker, &n, &mut t).await;
            }
        }
        Err(e) => t.errors.push(format!("list networks: {e}")),
    }
    t.scratch_removed = true;
    let prefix = format!("{run}-");
    if let Ok(dir) = std::fs::read_dir(scratch_root) {
        for e in dir.flatten() {
            if !e.file_name().to_string_lossy().starts_with(&prefix) {
                continue;
            }
            // The images each kept-up drill loaded, now that no container
            // of the run uses them.
            super::images::remove_recorded_images(&docker, &e.path(), &mut t).await;
            if let Err(err) = std::fs::remove_dir_all(e.path()) {
                t.scratch_removed = false;
                t.errors
                    .push(format!("remove {}: {err}", e.path().display()));
            }
        }
    }
    let containers = docker
        .list_containers(Some(
            ListContainersOptionsBuilder::default()
                .all(true)
                .filters(&by_run)
                .build(),
        ))
        .await;
    let networks = docker
        .list_networks(Some(
            ListNetworksOptionsBuilder::default()
                .filters(&network)
                .build(),
        ))
        .await;
    match (containers, networks) {
        (Ok(c), Ok(n)) => {
            t.containers_left = c.len() as u32;
            t.networks_left = n.len() as u32;
        }
        (Err(e), _) | (_, Err(e)) => t.errors.push(format!("count what is left: {e}")),
    }
    t
}
