//! The desired state: the applied manifests, parsed, plus what each
//! server's agent needs from them.

use pulih_model::api::{Assignment, DockerSources};
use pulih_model::manifest::values::TimeZone;
use pulih_model::manifest::{Diagnostic, ManifestSet, ServerSpec};

use crate::config::ControllerConfig;
use crate::store::StoredObject;

/// Nightly at 01:00 in the schedule's time zone.
pub const DEFAULT_CRON: &str = "0 1 * * *";
/// RPO when a manifest gives none: a nightly copy plus an hour's slack.
pub const DEFAULT_RPO_SECONDS: u64 = 25 * 3600;

/// The file name stored objects are parsed under (in diagnostics).
pub fn stored_name(kind: &str, name: &str) -> String {
    format!("(applied) {kind}/{name}")
}

/// Parses stored objects back into a set (they were valid when applied).
pub fn from_stored(objects: &[StoredObject]) -> Result<ManifestSet, Vec<Diagnostic>> {
    let sources: Vec<(String, Vec<u8>)> = objects
        .iter()
        .map(|o| (stored_name(&o.kind, &o.name), o.json.clone().into_bytes()))
        .collect();
    if sources.is_empty() {
        return Ok(ManifestSet::default());
    }
    ManifestSet::from_sources(&sources)
}

/// The repository of an agency on a DRC target: `<target>/<pd>`.
pub fn repository_url(target_url: &str, pd: &str) -> String {
    if let Some((base, query)) = target_url.split_once('?') {
        format!("{}/{pd}?{query}", base.trim_end_matches('/'))
    } else {
        format!("{}/{pd}", target_url.trim_end_matches('/'))
    }
}

/// Seconds added to a server's scheduled times: a stable spread.
pub fn jitter_seconds(server: &str, max: std::time::Duration) -> u64 {
    let max = max.as_secs();
    if max == 0 {
        return 0;
    }
    let h = blake3::hash(server.as_bytes());
    let mut b = [0u8; 8];
    b.copy_from_slice(&h.as_bytes()[..8]);
    u64::from_le_bytes(b) % max
}

pub fn rpo_seconds(spec: &ServerSpec) -> u64 {
    spec.rpo.map_or(DEFAULT_RPO_SECONDS, |d| d.0.as_secs())
}

/// The URL of an agency's repository on its DRC target.
pub fn pd_repository(set: &ManifestSet, pd: &str, config: &ControllerConfig) -> Option<String> {
    let pd = set.perangkat_daerah.get(pd)?;
    let target = set.drc_targets.get(&pd.spec().drc_target)?;
    Some(match &config.dev_store_root {
        Some(root) => root
            .join(target.name())
            .join(pd.name())
            .display()
            .to_string(),
        None => repository_url(&target.spec().url, pd.name()),
    })
}

/// What the agent of `server` should do, from the manifests.
pub fn assignment(
    set: &ManifestSet,
    server: &str,
    revision: i64,
    config: &ControllerConfig,
) -> Option<Assignment> {
    let s = set.servers.get(server)?;
    let spec = s.spec();
    let repository = pd_repository(set, &spec.perangkat_daerah, config)?;
    let paths = spec
        .sources
        .iter()
        .filter_map(|src| src.path.as_deref())
        .map(|p| match &config.dev_source_root {
            Some(root) => root.join(p.trim_start_matches('/')).display().to_string(),
            None => p.to_string(),
        })
        .collect();
    let docker = DockerSources {
        volumes: spec
            .sources
            .iter()
            .filter_map(|src| src.docker_volume.clone())
            .collect(),
        containers: spec
            .sources
            .iter()
            .filter_map(|src| src.docker_container.clone())
            .collect(),
        dumps: spec
            .sources
            .iter()
            .filter_map(|src| src.dump.clone())
            .collect(),
        images: spec
            .recovery
            .iter()
            .flat_map(|r| r.containers.iter().map(|c| c.image.clone()))
            .collect(),
        hooks: spec.hooks.clone().unwrap_or_default(),
    };
    let (cron, timezone) = match &spec.schedule {
        Some(sch) => (sch.cron.to_string(), sch.timezone.unwrap_or_default()),
        None => (DEFAULT_CRON.to_string(), TimeZone::default()),
    };
    Some(Assignment {
        server: server.to_string(),
        perangkat_daerah: spec.perangkat_daerah.clone(),
        repository,
        paths,
        docker,
        cron,
        timezone: timezone.to_string(),
        jitter_seconds: jitter_seconds(server, config.schedule_jitter),
        revision,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn repository_urls() {
        assert_eq!(
            repository_url("/var/lib/pulih/drc/", "dinkes"),
            "/var/lib/pulih/drc/dinkes"
        );
        assert_eq!(
            repository_url(
                "s3://pulih/drc?endpoint=http://10.0.0.5:3900&region=garage",
                "dinkes"
            ),
            "s3://pulih/drc/dinkes?endpoint=http://10.0.0.5:3900&region=garage"
        );
    }

    #[test]
    fn jitter_is_stable_and_bounded() {
        let max = std::time::Duration::from_secs(600);
        assert_eq!(jitter_seconds("a", max), jitter_seconds("a", max));
        assert!((0..100).all(|i| jitter_seconds(&format!("srv{i}"), max) < 600));
        assert_eq!(jitter_seconds("a", std::time::Duration::ZERO), 0);
    }
}
