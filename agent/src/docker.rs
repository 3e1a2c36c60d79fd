//! What the agent reports of the server's Docker engine (when it has one):
//! container and volume names, through the engine's API (bollard).

use std::path::PathBuf;
use std::time::Duration;

use bollard::Docker;
use bollard::query_parameters::{ListContainersOptionsBuilder, ListVolumesOptions};

/// The engine's unix socket: `DOCKER_HOST=unix://…`, else the default.
pub fn socket() -> PathBuf {
    std::env::var("DOCKER_HOST")
        .ok()
        .and_then(|h| h.strip_prefix("unix://").map(PathBuf::from))
        .unwrap_or_else(|| PathBuf::from("/var/run/docker.sock"))
}

/// A client for the local engine, or an error that says where it looked.
pub fn connect() -> anyhow::Result<Docker> {
    let sock = socket();
    if !sock.exists() {
        anyhow::bail!(
            "no Docker engine here: {} does not exist (set DOCKER_HOST=unix://PATH if it lives elsewhere)",
            sock.display()
        );
    }
    let path = sock
        .to_str()
        .ok_or_else(|| anyhow::anyhow!("Docker socket path {} is not UTF-8", sock.display()))?;
    Ok(Docker::connect_with_unix(
        path,
        120,
        bollard::API_DEFAULT_VERSION,
    )?)
}

/// Runs `cmd` in a running container and returns (exit code, stdout, stderr),
/// giving up after `timeout`. Output is for checks and hooks: keep it small.
pub async fn exec(
    docker: &Docker,
    container: &str,
    cmd: &[String],
    timeout: Duration,
) -> anyhow::Result<(i64, String, String)> {
    let mut out = Vec::new();
    let (code, err) = exec_into(docker, container, cmd, timeout, &mut out).await?;
    Ok((code, String::from_utf8_lossy(&out).into_owned(), err))
}

/// Runs `cmd` in a running container, streaming its stdout into `sink`;
/// returns the exit code and (the first 64 KiB of) stderr.
pub async fn exec_into<W: tokio::io::AsyncWrite + Unpin>(
    docker: &Docker,
    container: &str,
    cmd: &[String],
    timeout: Duration,
    sink: &mut W,
) -> anyhow::Result<(i64, String)> {
    use bollard::container::LogOutput;
    use bollard::exec::{CreateExecOptions, StartExecResults};
    use futures::StreamExt;
    use tokio::io::AsyncWriteExt;
    let run = async {
        let created = docker
            .create_exec(
                container,
                CreateExecOptions {
                    cmd: Some(cmd.to_vec()),
                    attach_stdout: Some(true),
                    attach_stderr: Some(true),
                    ..Default::default()
                },
            )
            .await?;
        let mut err = String::new();
        if let StartExecResults::Attached { mut output, .. } =
            docker.start_exec(&created.id, None).await?
        {
            while let Some(msg) = output.next().await {
                match msg? {
                    LogOutput::StdErr { message } => {
                        if err.len() < 64 * 1024 {
                            err.push_str(&String::from_utf8_lossy(&message));
                        }
                    }
                    LogOutput::StdOut { message } | LogOutput::Console { message } => {
                        sink.write_all(&message).await?
                    }
                    LogOutput::StdIn { .. } => {}
                }
            }
        }
        sink.flush().await?;
        let code = docker
            .inspect_exec(&created.id)
            .await?
            .exit_code
            .unwrap_or(-1);
        Ok::<_, anyhow::Error>((code, err))
    };
    match tokio::time::timeout(timeout, run).await {
        Ok(r) => r.map_err(|e| anyhow::anyhow!("exec {cmd:?} in container {container}: {e:#}")),
        Err(_) => anyhow::bail!(
            "exec {cmd:?} in container {container} did not finish within {}s",
            timeout.as_secs()
        ),
    }
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
