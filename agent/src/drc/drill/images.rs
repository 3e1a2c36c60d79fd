//! Replicated image archives are untrusted (a compromised server wrote
//! them), and `docker load` applies whatever tags an archive names: one
//! could retag an image the DRC relies on (another agency's, Pulih's own).
//! So before loading, the archive's own records must name exactly the one
//! image the recovery spec asks for, with the id the capture recorded; and
//! after loading, that tag must point at that id. This is also where a
//! recovery's `load images` step runs.

use std::collections::HashMap;
use std::io::Read;
use std::path::Path;

use anyhow::{Context, Result, bail};
use bollard::Docker;
use futures::StreamExt;
use pulih_model::drill::{DockerCapture, Teardown};
use serde::Deserialize;

use super::Run;
use super::restored::under;

/// The records of a `docker save` archive are small; more is not one.
const MAX_RECORD: u64 = 1 << 20;

#[derive(Deserialize)]
#[serde(rename_all = "PascalCase")]
struct ManifestEntry {
    config: String,
    #[serde(default)]
    repo_tags: Option<Vec<String>>,
}

fn names_image(name: &str, image: &str) -> bool {
    name == image
        || name
            .strip_suffix(image)
            .is_some_and(|prefix| prefix.ends_with('/'))
}

/// Checks that `archive` holds exactly `image` with id `id`
/// (`sha256:<hex>`) and names no other image.
pub fn check_archive(archive: &Path, image: &str, id: &str) -> Result<()> {
    let hex = id
        .strip_prefix("sha256:")
        .filter(|h| h.len() == 64 && h.bytes().all(|b| b.is_ascii_hexdigit()))
        .with_context(|| {
            format!("the capture record's id of {image} (`{id}`) is not sha256:<64 hex>")
        })?;
    let file = std::fs::File::open(archive)
        .with_context(|| format!("cannot open image archive {}", archive.display()))?;
    let mut tar = tar::Archive::new(file);
    let mut manifest: Option<Vec<u8>> = None;
    let what = || format!("image archive {} of {image}", archive.display());
    for entry in tar.entries().with_context(what)? {
        let mut entry = entry.with_context(what)?;
        let path = entry
            .path()
            .with_context(what)?
            .to_string_lossy()
            .into_owned();
        let name = path.trim_start_matches("./");
        if !matches!(name, "manifest.json" | "repositories" | "index.json") {
            continue;
        }
        if entry.size() > MAX_RECORD {
            bail!("{}: {name} is larger than {MAX_RECORD} bytes", what());
        }
        let mut bytes = Vec::new();
        entry.read_to_end(&mut bytes).with_context(what)?;
        match name {
            "manifest.json" => manifest = Some(bytes),
            "repositories" => {
                let repos: HashMap<String, HashMap<String, String>> =
                    serde_json::from_slice(&bytes)
                        .with_context(|| format!("{}: repositories", what()))?;
                for (repo, tags) in &repos {
                    for tag in tags.keys() {
                        let named = format!("{repo}:{tag}");
                        if !names_image(&named, image) {
                            bail!(
                                "{} also names image {named}: refused (it could retag an image on the DRC's engine)",
                                what()
                            );
                        }
                    }
                }
            }
            _ => {
                let index: serde_json::Value = serde_json::from_slice(&bytes)
                    .with_context(|| format!("{}: index.json", what()))?;
                for m in index["manifests"].as_array().into_iter().flatten() {
                    if let Some(named) = m["annotations"]["io.containerd.image.name"].as_str()
                        && !names_image(named, image)
                    {
                        bail!(
                            "{} also names image {named}: refused (it could retag an image on the DRC's engine)",
                            what()
                        );
                    }
                }
            }
        }
    }
    let manifest = manifest.with_context(|| format!("{} has no manifest.json", what()))?;
    let entries: Vec<ManifestEntry> =
        serde_json::from_slice(&manifest).with_context(|| format!("{}: manifest.json", what()))?;
    let [entry] = entries.as_slice() else {
        bail!("{} holds {} images; one was saved", what(), entries.len());
    };
    let tags = entry.repo_tags.clone().unwrap_or_default();
    if tags.len() != 1 || !names_image(&tags[0], image) {
        bail!("{} is tagged {tags:?}, not [{image:?}]", what());
    }
    if !entry.config.contains(hex) {
        bail!(
            "{}: its image config `{}` is not the recorded id {id}",
            what(),
            entry.config
        );
    }
    Ok(())
}

impl Run<'_> {
    /// Loads the images the recovery spec names: each from its archive in
    /// the snapshot (checked before and after), or, when the server could
    /// not save it, the DRC engine's own copy.
    pub(super) async fn load_images(
        &mut self,
        target: &Path,
        capture: &DockerCapture,
    ) -> Result<()> {
        let plan = self.plan;
        let docker = self.docker.clone();
        self.timed("load images", async {
            let mut loaded = Vec::new();
            let mut fresh = Vec::new();
            let mut local = Vec::new();
            let mut wanted: Vec<&str> = plan.recovery.containers.iter().map(|c| c.image.as_str()).collect();
            wanted.sort();
            wanted.dedup();
            for image in wanted {
                match capture.images.get(image) {
                    Some(saved) => {
                        let archive = under(target, Path::new(&saved.archive))?;
                        if !archive.is_file() {
                            bail!("the archive of {image} is not a file: {}", archive.display());
                        }
                        check_archive(&archive, image, &saved.id)?;
                        // What the tag named before: a drill's teardown
                        // removes what it loaded and gives the tag back.
                        let before = docker.inspect_image(image).await.ok().and_then(|i| i.id);
                        load_image(&docker, &archive).await?;
                        let got = docker.inspect_image(image).await.with_context(|| {
                            format!("the replicated archive of {image} did not hold that image")
                        })?;
                        if got.id.as_deref() != Some(saved.id.as_str()) {
                            bail!(
                                "after loading, {image} is {:?}, not the recorded {}",
                                got.id,
                                saved.id
                            );
                        }
                        if before.as_deref() != Some(saved.id.as_str()) {
                            fresh.push((image.to_string(), before));
                        }
                        loaded.push(image);
                    }
                    None if docker.inspect_image(image).await.is_ok() => local.push(image),
                    None => bail!(
                        "image {image} is neither in the snapshot (the agent could not save it) nor on the DRC's Docker engine"
                    ),
                }
            }
            let mut detail = format!("loaded from the snapshot: {loaded:?}");
            if !local.is_empty() {
                detail.push_str(&format!("; not replicated, the DRC's own copy used: {local:?}"));
            }
            Ok((fresh, detail))
        })
        .await
        .map(|fresh| self.loaded_images = fresh)
    }

    /// Removes the images this recovery loaded that the engine did not
    /// hold before, and gives their tags back to what they named before;
    /// an image another recovery's container uses now is left (counted).
    pub(super) async fn remove_loaded_images(&mut self, t: &mut Teardown) {
        remove_images(&self.docker, std::mem::take(&mut self.loaded_images), t).await;
    }

    /// A drill of a plan's run that passes stays up until the run ends:
    /// what it loaded is written to its scratch directory, for the run's
    /// teardown ([`remove_recorded_images`]).
    pub(super) fn record_loaded_images(&self) -> Result<()> {
        let path = self.plan.scratch().join(LOADED_IMAGES);
        std::fs::write(&path, serde_json::to_vec(&self.loaded_images)?)
            .with_context(|| format!("cannot write {}", path.display()))
    }
}

/// The file in a kept-up plan drill's scratch directory naming the images
/// it loaded (and what their tags named before).
const LOADED_IMAGES: &str = "loaded-images.json";

/// Removes the images a kept-up plan drill recorded in `scratch`
/// ([`Run::record_loaded_images`]), as its own teardown would have.
pub(super) async fn remove_recorded_images(docker: &Docker, scratch: &Path, t: &mut Teardown) {
    let path = scratch.join(LOADED_IMAGES);
    let list: Vec<(String, Option<String>)> = match std::fs::read(&path) {
        Ok(b) => match serde_json::from_slice(&b) {
            Ok(l) => l,
            Err(e) => {
                t.errors.push(format!("read {}: {e}", path.display()));
                return;
            }
        },
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return,
        Err(e) => {
            t.errors.push(format!("read {}: {e}", path.display()));
            return;
        }
    };
    remove_images(docker, list, t).await;
}

/// Removes `images` (each loaded by a recovery, with what its tag named
/// before), giving each tag back; one in use by another recovery's
/// container is left (counted).
async fn remove_images(docker: &Docker, images: Vec<(String, Option<String>)>, t: &mut Teardown) {
    {
        for (image, before) in images {
            let opts = bollard::query_parameters::RemoveImageOptionsBuilder::default()
                .force(false)
                .build();
            match docker.remove_image(&image, Some(opts), None).await {
                Ok(_) => t.images_removed += 1,
                Err(bollard::errors::Error::DockerResponseServerError {
                    status_code: 409, ..
                }) => {
                    t.images_in_use += 1;
                    continue;
                }
                Err(e) => {
                    t.errors.push(format!("remove image {image}: {e}"));
                    continue;
                }
            }
            if let Some(old) = before {
                let (repo, tag) = match image.rsplit_once(':') {
                    Some((r, t)) if !t.contains('/') => (r.to_string(), t.to_string()),
                    _ => (image.clone(), "latest".to_string()),
                };
                let opts = bollard::query_parameters::TagImageOptionsBuilder::default()
                    .repo(&repo)
                    .tag(&tag)
                    .build();
                if let Err(e) = docker.tag_image(&old, Some(opts)).await {
                    t.errors
                        .push(format!("give tag {image} back to {old}: {e}"));
                }
            }
        }
    }
}

/// `docker load` of a saved archive, streamed from disk.
async fn load_image(docker: &Docker, archive: &Path) -> Result<()> {
    let f = tokio::fs::File::open(archive)
        .await
        .with_context(|| format!("cannot open image archive {}", archive.display()))?;
    let body = tokio_util::io::ReaderStream::new(f);
    let mut s = docker.import_image_stream(
        bollard::query_parameters::ImportImageOptionsBuilder::default()
            .quiet(true)
            .build(),
        body,
        None,
    );
    while let Some(r) = s.next().await {
        r.with_context(|| format!("docker load {}", archive.display()))?;
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn archive(files: &[(&str, String)]) -> tempfile::NamedTempFile {
        let f = tempfile::NamedTempFile::new().unwrap();
        let mut b = tar::Builder::new(f.reopen().unwrap());
        for (name, body) in files {
            let mut h = tar::Header::new_gnu();
            h.set_size(body.len() as u64);
            h.set_mode(0o644);
            h.set_cksum();
            b.append_data(&mut h, name, body.as_bytes()).unwrap();
        }
        b.finish().unwrap();
        f
    }

    const HEX: &str = "0123456789abcdef0123456789abcdef0123456789abcdef0123456789abcdef";

    #[test]
    fn an_archive_must_hold_exactly_the_recorded_image_and_tag_nothing_else() {
        let id = format!("sha256:{HEX}");
        let good = archive(&[
            (
                "manifest.json",
                format!(r#"[{{"Config":"{HEX}.json","RepoTags":["app:1"],"Layers":[]}}]"#),
            ),
            ("repositories", format!(r#"{{"app":{{"1":"{HEX}"}}}}"#)),
        ]);
        check_archive(good.path(), "app:1", &id).unwrap();
        // Another tag in the records: it would retag an image on the DRC.
        let retag = archive(&[
            (
                "manifest.json",
                format!(r#"[{{"Config":"{HEX}.json","RepoTags":["app:1"],"Layers":[]}}]"#),
            ),
            (
                "repositories",
                format!(r#"{{"app":{{"1":"{HEX}"}},"postgres":{{"15":"{HEX}"}}}}"#),
            ),
        ]);
        let e = check_archive(retag.path(), "app:1", &id)
            .unwrap_err()
            .to_string();
        assert!(e.contains("postgres:15"), "{e}");
        let two = archive(&[(
            "manifest.json",
            format!(r#"[{{"Config":"{HEX}.json","RepoTags":["app:1","pulih:latest"]}}]"#),
        )]);
        assert!(check_archive(two.path(), "app:1", &id).is_err());
        // Another image than the one recorded.
        let other = archive(&[(
            "manifest.json",
            r#"[{"Config":"ffff.json","RepoTags":["app:1"]}]"#.to_string(),
        )]);
        assert!(check_archive(other.path(), "app:1", &id).is_err());
        assert!(check_archive(good.path(), "app:1", "sha256:nothex").is_err());
        let none = archive(&[("layer.tar", "x".into())]);
        assert!(check_archive(none.path(), "app:1", &id).is_err());
    }
}
