//! Docker sources at backup time (issue 5, DESIGN.md §6): before a run the
//! agent runs the pre hooks (pause a container, or a command in one), finds
//! where each protected volume and container mount keeps its data, runs
//! the dump commands into files, saves the images the DRC will need
//! (`docker save`), and writes a record of it all (`pulih-docker.json`)
//! into a staging directory. The run then backs up the staging directory
//! with the volume and mount directories; the post hooks run (and paused
//! containers are unpaused) after the backup, whatever its outcome.
//!
//! Images are saved again only when their id changed, so an unchanged image
//! is skipped by the files cache and costs nothing the next night; a
//! changed one shares its unchanged layers with the last through dedup.

use std::collections::BTreeSet;
use std::path::{Path, PathBuf};
use std::time::Duration;

use anyhow::{Context, Result, bail};
use bollard::Docker;
use futures::StreamExt;
use pulih_model::api::DockerSources;
use pulih_model::drill::{CAPTURE_FILE, CapturedContainer, CapturedImage, DockerCapture};
use pulih_model::manifest::Hook;
use tokio::io::AsyncWriteExt;

use crate::docker;

const HOOK_TIMEOUT: Duration = Duration::from_secs(300);
const DUMP_TIMEOUT: Duration = Duration::from_secs(6 * 3600);

/// A capture whose backup is under way: the paths to back up, errors that
/// do not stop the run, and what must be undone when it ends.
pub struct Capture {
    docker: Docker,
    pub paths: Vec<PathBuf>,
    pub errors: Vec<String>,
    paused: Vec<String>,
    post: Vec<Hook>,
    /// A pre hook started, so a failed capture must undo the hooks.
    hooks_ran: bool,
}

fn hook_timeout(h: &Hook) -> Duration {
    h.timeout.as_ref().map_or(HOOK_TIMEOUT, |d| d.0)
}

/// Runs one hook's command in its container (or on the host when it names
/// none); a non-zero exit is an error.
async fn run_hook(docker: &Docker, h: &Hook, when: &str) -> Result<()> {
    let (code, err, place) = match &h.container {
        Some(container) => {
            let (code, _, err) =
                docker::exec(docker, container, &h.command, hook_timeout(h)).await?;
            (code, err, format!("container {container}"))
        }
        None => {
            let (prog, args) = h.command.split_first().context("a hook needs a command")?;
            let out = tokio::time::timeout(
                hook_timeout(h),
                tokio::process::Command::new(prog)
                    .args(args)
                    .stdin(std::process::Stdio::null())
                    .kill_on_drop(true)
                    .output(),
            )
            .await
            .map_err(|_| anyhow::anyhow!("{when} hook {:?} on the host timed out", h.command))?
            .with_context(|| format!("{when} hook: cannot run {prog}"))?;
            (
                out.status.code().map_or(-1, i64::from),
                String::from_utf8_lossy(&out.stderr).into_owned(),
                "the host".to_string(),
            )
        }
    };
    if code != 0 {
        bail!(
            "{when} hook {:?} in {place} exited with {code}: {}",
            h.command,
            err.trim()
        );
    }
    Ok(())
}

/// File name for an image reference (`reg/app:1.2` → `reg_app_1.2.tar`).
fn archive_name(image: &str) -> String {
    let safe: String = image
        .chars()
        .map(|c| {
            if c.is_ascii_alphanumeric() || c == '.' || c == '-' {
                c
            } else {
                '_'
            }
        })
        .collect();
    format!("{safe}.tar")
}

/// Saves `image` under `dir` unless the archive there is of the same id.
async fn save_image(docker: &Docker, image: &str, dir: &Path) -> Result<CapturedImage> {
    let id = docker
        .inspect_image(image)
        .await
        .with_context(|| format!("image {image} is not on this server's Docker engine"))?
        .id
        .unwrap_or_default();
    let archive = dir.join(archive_name(image));
    let id_file = archive.with_extension("tar.id");
    let same = archive.exists()
        && tokio::fs::read_to_string(&id_file)
            .await
            .is_ok_and(|old| old.trim() == id);
    if !same {
        let tmp = archive.with_extension("tar.part");
        let mut f = tokio::fs::File::create(&tmp)
            .await
            .with_context(|| format!("cannot create {}", tmp.display()))?;
        let mut stream = docker.export_image(image);
        while let Some(chunk) = stream.next().await {
            let chunk = chunk.with_context(|| format!("docker save {image}"))?;
            f.write_all(&chunk).await?;
        }
        f.sync_all().await?;
        drop(f);
        tokio::fs::rename(&tmp, &archive).await?;
        tokio::fs::write(&id_file, &id).await?;
        tracing::info!(image, id, "image saved");
    }
    Ok(CapturedImage {
        id,
        archive: archive.display().to_string(),
    })
}

/// Runs the pre hooks and captures `src` into `staging` (made if absent).
/// On error every container paused so far is unpaused again.
pub async fn start(src: &DockerSources, server: &str, staging: &Path) -> Result<Capture> {
    let docker = docker::connect()?;
    let mut c = Capture {
        docker,
        paths: Vec::new(),
        errors: Vec::new(),
        paused: Vec::new(),
        post: src.hooks.post.clone(),
        hooks_ran: false,
    };
    match c.capture(src, server, staging).await {
        Ok(()) => Ok(c),
        Err(e) if c.hooks_ran => {
            // A pre hook ran (a pause, or e.g. a read lock taken by a
            // command): undo it as after a backup, post hooks included.
            for err in c.finish().await {
                tracing::error!(error = %err, "undoing the pre hooks after a failed capture");
            }
            Err(e)
        }
        Err(e) => Err(e),
    }
}

impl Capture {
    async fn capture(&mut self, src: &DockerSources, server: &str, staging: &Path) -> Result<()> {
        let docker = self.docker.clone();
        let mut cap = DockerCapture {
            version: 1,
            server: server.to_string(),
            captured_at: chrono::Utc::now().to_rfc3339_opts(chrono::SecondsFormat::Secs, true),
            ..Default::default()
        };
        for v in &src.volumes {
            let vol = docker.inspect_volume(v).await.with_context(|| {
                format!("dockerVolume `{v}` does not exist on this server's Docker engine (docker volume ls)")
            })?;
            self.paths.push(PathBuf::from(&vol.mountpoint));
            cap.volumes.insert(v.clone(), vol.mountpoint);
        }
        let mut images: BTreeSet<String> = src.images.iter().cloned().collect();
        for name in &src.containers {
            let info = docker
                .inspect_container(name, None)
                .await
                .with_context(|| {
                    format!("dockerContainer `{name}` does not exist on this server's Docker engine (docker ps -a)")
                })?;
            let config = info.config.unwrap_or_default();
            let image = config.image.unwrap_or_default();
            let mut mounts = std::collections::BTreeMap::new();
            for m in info.mounts.unwrap_or_default() {
                let (Some(dest), Some(source)) = (m.destination, m.source) else {
                    continue;
                };
                let typ = m.typ.as_deref().unwrap_or_default();
                if typ == "volume" || typ == "bind" {
                    if let Some(vol) = m.name.filter(|_| typ == "volume") {
                        cap.volumes.insert(vol, source.clone());
                    }
                    self.paths.push(PathBuf::from(&source));
                    mounts.insert(dest, source);
                }
            }
            images.insert(image.clone());
            cap.containers.insert(
                name.clone(),
                CapturedContainer {
                    image,
                    env: config.env.unwrap_or_default(),
                    cmd: config.cmd.unwrap_or_default(),
                    mounts,
                },
            );
        }
        // Sources are found first, so a missing one stops the run before
        // anything is paused.
        for h in &src.hooks.pre {
            self.hooks_ran = true;
            if let Some(p) = &h.pause {
                docker
                    .pause_container(p)
                    .await
                    .with_context(|| format!("pre hook: cannot pause container {p}"))?;
                self.paused.push(p.clone());
            }
            if !h.command.is_empty() {
                run_hook(&docker, h, "pre").await?;
            }
        }
        tokio::fs::create_dir_all(staging)
            .await
            .with_context(|| format!("cannot create {}", staging.display()))?;
        {
            use std::os::unix::fs::PermissionsExt;
            // Dumps and image archives are agency data: root only.
            tokio::fs::set_permissions(staging, std::fs::Permissions::from_mode(0o700)).await?;
        }
        let dumps = staging.join("dumps");
        let image_dir = staging.join("images");
        for d in [&dumps, &image_dir] {
            tokio::fs::create_dir_all(d)
                .await
                .with_context(|| format!("cannot create {}", d.display()))?;
        }
        for d in &src.dumps {
            let file = dumps.join(&d.file_name);
            self.dump(d, &file)
                .await
                .with_context(|| format!("dump {}", d.file_name))?;
            cap.dumps
                .insert(d.file_name.clone(), file.display().to_string());
        }
        for image in images.iter().filter(|i| !i.is_empty()) {
            match save_image(&docker, image, &image_dir).await {
                Ok(saved) => {
                    cap.images.insert(image.clone(), saved);
                }
                // The DRC may still have it; the run is partial, not failed.
                Err(e) => self.errors.push(format!("{e:#}")),
            }
        }
        let record = staging.join(CAPTURE_FILE);
        let tmp = staging.join(format!("{CAPTURE_FILE}.part"));
        tokio::fs::write(&tmp, serde_json::to_vec_pretty(&cap)?).await?;
        tokio::fs::rename(&tmp, &record).await?;
        self.paths.push(staging.to_path_buf());
        Ok(())
    }

    /// Runs a dump command (in its container, or on the host) into `file`.
    async fn dump(&self, d: &pulih_model::manifest::DumpSource, file: &Path) -> Result<()> {
        let tmp = file.with_extension("part");
        let mut f = tokio::fs::File::create(&tmp)
            .await
            .with_context(|| format!("cannot create {}", tmp.display()))?;
        let (code, err) = match &d.container {
            Some(c) => docker::exec_into(&self.docker, c, &d.command, DUMP_TIMEOUT, &mut f).await?,
            None => {
                let (prog, args) = d.command.split_first().context("a dump needs a command")?;
                let run = tokio::process::Command::new(prog)
                    .args(args)
                    .stdout(f.into_std().await)
                    .stderr(std::process::Stdio::piped())
                    .kill_on_drop(true)
                    .output();
                // A hung dump must not keep the paused containers paused.
                let out = tokio::time::timeout(DUMP_TIMEOUT, run)
                    .await
                    .map_err(|_| {
                        anyhow::anyhow!("dump {prog} did not finish within {DUMP_TIMEOUT:?}")
                    })?
                    .with_context(|| format!("cannot run {prog}"))?;
                f = tokio::fs::File::open(&tmp).await?;
                (
                    out.status.code().map_or(-1, i64::from),
                    String::from_utf8_lossy(&out.stderr).into_owned(),
                )
            }
        };
        f.sync_all().await?;
        if code != 0 {
            let _ = tokio::fs::remove_file(&tmp).await;
            bail!("command {:?} exited with {code}: {}", d.command, err.trim());
        }
        tokio::fs::rename(&tmp, file).await?;
        Ok(())
    }

    /// Unpauses what the pre hooks paused; returns the names and errors.
    async fn unpause(&mut self) -> (Vec<String>, Vec<String>) {
        let (mut done, mut errors) = (Vec::new(), Vec::new());
        for p in self.paused.drain(..).rev() {
            match self.docker.unpause_container(&p).await {
                Ok(()) => done.push(p),
                Err(e) => errors.push(format!("cannot unpause container {p}: {e}")),
            }
        }
        (done, errors)
    }

    /// After the backup: unpause, then run the post hooks. Returns the
    /// unpauses' and hooks' errors (the backup itself is already done).
    pub async fn finish(mut self) -> Vec<String> {
        let (unpaused, mut errors) = self.unpause().await;
        for h in &self.post {
            // A post `pause: X` undoing a pre `pause: X` is done already.
            if let Some(p) = h.pause.as_ref().filter(|p| !unpaused.contains(p))
                && let Err(e) = self.docker.unpause_container(p).await
            {
                errors.push(format!("post hook: cannot unpause {p}: {e}"));
            }
            if !h.command.is_empty()
                && let Err(e) = run_hook(&self.docker, h, "post").await
            {
                errors.push(format!("{e:#}"));
            }
        }
        errors
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn image_archives_get_file_names_without_separators() {
        assert_eq!(archive_name("reg.local/app:1.2"), "reg.local_app_1.2.tar");
        assert_eq!(archive_name("simpus-web:2.3"), "simpus-web_2.3.tar");
    }
}
