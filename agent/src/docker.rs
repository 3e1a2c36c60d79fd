//! What the agent reports of the server's Docker engine (when it has one):
//! container and volume names, through the engine's API (bollard).

use std::path::PathBuf;
use std::time::Duration;

use bollard::Docker;
use bollard::query_parameters::{ListContainersOptionsBuilder, ListVolumesOptions};

/// The engine's unix socket: `DOCKER_HOST=unix://…`, else the default.
fn socket() -> PathBuf {
    std::env::var("DOCKER_HOST")
        .ok()
        .and_then(|h| h.strip_prefix("unix://").map(PathBuf::from))
        .unwrap_or_else(|| PathBuf::from("/var/run/docker.sock"))
}

/// Container names (all states) and volume names, sorted; None when there
/// is no Docker engine here or it does not answer within a few seconds.
pub async fn facts() -> Option<(Vec<String>, Vec<String>)> {
    let sock = socket();
    if !sock.exists() {
        return None;
    }
    let docker = Docker::connect_with_unix(sock.to_str()?, 5, bollard::API_DEFAULT_VERSION).ok()?;
    let ask = async {
        let containers = docker
            .list_containers(Some(
                ListContainersOptionsBuilder::default().all(true).build(),
            ))
            .await?;
        let volumes = docker.list_volumes(None::<ListVolumesOptions>).await?;
        Ok::<_, bollard::errors::Error>((containers, volumes))
    };
    let (containers, volumes) = match tokio::time::timeout(Duration::from_secs(5), ask).await {
        Ok(Ok(x)) => x,
        Ok(Err(e)) => {
            tracing::debug!(error = %e, "Docker engine did not answer");
            return None;
        }
        Err(_) => return None,
    };
    let mut c: Vec<String> = containers
        .into_iter()
        .filter_map(|c| c.names?.into_iter().next())
        .map(|n| n.trim_start_matches('/').to_string())
        .collect();
    let mut v: Vec<String> = volumes
        .volumes
        .unwrap_or_default()
        .into_iter()
        .map(|v| v.name)
        .collect();
    c.sort();
    v.sort();
    Some((c, v))
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Against the real engine: a volume and a container made here show up.
    #[tokio::test]
    async fn facts_list_the_engines_containers_and_volumes() {
        assert!(
            socket().exists(),
            "this test needs the Docker engine at {} (or DOCKER_HOST=unix://…)",
            socket().display()
        );
        let name = format!("pulih-facts-{}", std::process::id());
        let docker =
            Docker::connect_with_unix(socket().to_str().unwrap(), 5, bollard::API_DEFAULT_VERSION)
                .unwrap();
        docker
            .create_volume(bollard::models::VolumeCreateRequest {
                name: Some(name.clone()),
                ..Default::default()
            })
            .await
            .unwrap();
        let (_, volumes) = facts().await.expect("the engine answers");
        docker
            .remove_volume(
                &name,
                None::<bollard::query_parameters::RemoveVolumeOptions>,
            )
            .await
            .unwrap();
        assert!(volumes.contains(&name), "{volumes:?}");
    }
}
