//! `pulih dev`: a controller, a filesystem DRC store and one local agent in
//! one process, with the example manifests applied and one replication run.

use pulih_model::routes;
use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::time::Duration;

use anyhow::{Context, Result};
use clap::Args;
use pulih_agent::{Agent, AgentConfig};
use pulih_controller::ControllerConfig;
use pulih_model::api::{
    ApplyRequest, ApplyResponse, EnrollTokenResponse, ManifestFile, ReplicateResponse,
};
use pulih_model::manifest::ManifestSet;

use crate::exit;
use crate::ops::{Api, default_dev_state_dir, wait_run};
use crate::repo::write_secret;
use crate::serve::shutdown_on_signals;

mod embedded {
    include!(concat!(env!("OUT_DIR"), "/examples.rs"));
}

#[derive(Args)]
pub struct DevArgs {
    /// Where everything is kept (default ~/.local/state/pulih/dev).
    #[arg(long, env = "PULIH_STATE_DIR")]
    state_dir: Option<PathBuf>,
    /// The controller's address (127.0.0.1:0 picks a free port).
    #[arg(long, default_value = "127.0.0.1:7300")]
    listen: SocketAddr,
    /// Exit after the first replication instead of serving until Ctrl-C.
    #[arg(long)]
    once: bool,
}

fn examples() -> Vec<ManifestFile> {
    embedded::EXAMPLES
        .iter()
        .map(|(name, content)| ManifestFile {
            name: name.to_string(),
            content: content.to_string(),
        })
        .collect()
}

/// A few files under each example path source, so there is something to protect.
fn make_sample_data(root: &Path, set: &ManifestSet) -> Result<()> {
    for s in set.servers.values() {
        for src in &s.spec().sources {
            let Some(p) = &src.path else { continue };
            let dir = root.join(p.trim_start_matches('/'));
            if dir.exists() {
                continue;
            }
            std::fs::create_dir_all(dir.join("arsip"))?;
            std::fs::write(
                dir.join("README.txt"),
                format!(
                    "Data contoh untuk {} ({}).\n",
                    s.name(),
                    s.spec().perangkat_daerah
                ),
            )?;
            let mut csv = String::from("id,nama,tanggal\n");
            for i in 0..500 {
                csv.push_str(&format!("{i},warga-{i:04},2026-11-{:02}\n", 1 + i % 28));
            }
            std::fs::write(dir.join("arsip/data.csv"), csv)?;
        }
    }
    Ok(())
}

fn random_secret() -> String {
    use rand::RngCore;
    let mut b = [0u8; 24];
    rand::rngs::OsRng.fill_bytes(&mut b);
    hex::encode(b)
}

pub async fn run(a: DevArgs) -> Result<u8> {
    let state = a.state_dir.unwrap_or_else(default_dev_state_dir);
    std::fs::create_dir_all(&state)
        .with_context(|| format!("cannot create {}", state.display()))?;
    let state = state.canonicalize()?;
    let sample = state.join("sample");
    let drc = state.join("drc");

    // Pick the local server: the first whose sources are all paths.
    let files = examples();
    let sources: Vec<(String, Vec<u8>)> = files
        .iter()
        .map(|f| (f.name.clone(), f.content.clone().into_bytes()))
        .collect();
    let set = ManifestSet::from_sources(&sources)
        .map_err(|d| anyhow::anyhow!("the embedded example manifests are invalid: {}", d[0]))?;
    let server = set
        .servers
        .values()
        .find(|s| {
            s.spec().centralization.status
                == pulih_model::manifest::CentralizationStatus::Centralized
                && s.spec().sources.iter().all(|src| src.path.is_some())
        })
        .context("no centralized example server with only path sources")?;
    let server_name = server.name().to_string();
    let pd_name = server.spec().perangkat_daerah.clone();
    let target_name = set.perangkat_daerah[&pd_name].spec().drc_target.clone();
    make_sample_data(&sample, &set)?;

    // The controller.
    let mut config = ControllerConfig::new(state.join("controller"));
    config.listen = a.listen;
    config.admin_token_file = Some(state.join("admin.token"));
    config.pusat_data_subnets = vec!["127.0.0.0/8".parse()?];
    config.schedule_jitter = Duration::ZERO;
    config.dev_source_root = Some(sample.clone());
    config.dev_store_root = Some(drc.clone());
    // Retention nightly at 03:00 WITA with the maintenance key made below.
    let keys_dir = state.join("maintenance-keys");
    config.maintenance = Some(pulih_controller::config::MaintenanceConfig {
        schedule: "0 3 * * *".parse().map_err(anyhow::Error::msg)?,
        timezone: Default::default(),
        keys_dir: keys_dir.clone(),
        grace: Duration::from_secs(24 * 3600),
        s3_access_key_id_file: None,
        s3_secret_access_key_file: None,
    });
    let cancel = shutdown_on_signals();
    let running = pulih_controller::start(config, cancel.clone()).await?;
    let url = running.url.clone();
    std::fs::write(state.join("controller.url"), format!("{url}\n"))?;
    println!("controller: {url}");
    println!("token: {}", running.admin_token);
    println!("state: {}", state.display());

    let api = Api::new(&url, &running.admin_token)?;
    let applied: ApplyResponse = api
        .post(
            &routes::path(routes::MANIFESTS, &[]),
            &ApplyRequest {
                files,
                reported_by: Some("pulih dev".into()),
                dry_run: false,
            },
        )
        .await?;
    println!(
        "manifests: {} ({})",
        set.summary(),
        applied
            .revision
            .map_or("unchanged".into(), |r| format!("revision {r}"))
    );

    // The agency's repository on the filesystem DRC, as the walidata would make it.
    let repo_url = drc.join(&target_name).join(&pd_name);
    let pass_file = state.join(format!("walidata-{pd_name}.pass"));
    let agent_dir = state.join("agent");
    std::fs::create_dir_all(&agent_dir)?;
    let key_file = agent_dir.join(format!("{server_name}.key"));
    if !repo_url.join(pulih_core::layout::CONFIG).exists() {
        let pass = random_secret();
        if !pass_file.exists() {
            write_secret(&pass_file, &format!("{pass}\n"))?;
        }
        let pass = pulih_core::storage::read_secret_file(&pass_file)?;
        let store = pulih_core::storage::Store::open(&repo_url.display().to_string(), true)?;
        let (repo, reader) =
            pulih_core::repo::Repo::init(store, &pass, &pulih_core::repo::InitOptions::default())
                .await?;
        let _ = std::fs::remove_file(&key_file);
        let (key, text) = pulih_core::keys::AgentKey::new(&reader.master, &repo.config);
        write_secret(&key_file, &text)?;
        // Its space is the server's (FORMAT.md §13), as `add-agent-key --server` does.
        let binding = pulih_core::bindings::Binding {
            server: server_name.clone(),
            space: key.space.space,
            role: pulih_core::bindings::Role::Agent,
            failover: None,
            created: time::OffsetDateTime::now_utc().unix_timestamp(),
        };
        let signer = pulih_core::bindings::BindingSigner::of(&reader.master);
        pulih_core::bindings::write(&repo.store, &signer, binding).await?;
        std::fs::create_dir_all(&keys_dir)?;
        let maint_file = keys_dir.join(format!("{pd_name}.key"));
        let _ = std::fs::remove_file(&maint_file);
        let (_, text) =
            pulih_core::keys::MaintenanceKeyFile::new(repo.config.repo_id, &reader.master);
        write_secret(&maint_file, &text)?;
    }
    println!(
        "repository: {} (walidata passphrase in {})",
        repo_url.display(),
        pass_file.display()
    );

    // The local agent.
    let mut agent_config = AgentConfig::new(
        url.clone(),
        server_name.clone(),
        agent_dir.join("state"),
        key_file,
    );
    agent_config.heartbeat_interval = Duration::from_secs(2);
    if !agent_dir.join("state/credential").exists() {
        let t: EnrollTokenResponse = api
            .post(
                &routes::path(routes::SERVER_ENROLL_TOKEN, &[&server_name]),
                &serde_json::json!({}),
            )
            .await?;
        let token_file = agent_dir.join("enroll.token");
        let _ = std::fs::remove_file(&token_file);
        write_secret(&token_file, &t.token)?;
        agent_config.enroll_token_file = Some(token_file);
    }
    let agent = Agent::new(agent_config)?;
    let agent_task = tokio::spawn(agent.run(cancel.clone()));
    println!(
        "agent: {server_name} ({pd_name}), backing up its example paths under {}",
        sample.display()
    );

    let q: ReplicateResponse = api
        .post(
            &routes::path(routes::SERVER_REPLICATE, &[&server_name]),
            &serde_json::json!({}),
        )
        .await?;
    let r = wait_run(&api, &q.run_key, Duration::from_secs(300)).await?;
    println!(
        "replication: {} — snapshot {}, {} files, {} new, {:.1}s",
        r.state,
        r.snapshot_id.as_deref().unwrap_or("-"),
        r.files,
        crate::repo::human(r.bytes_new),
        r.duration_s
    );
    let code = if r.state == pulih_model::state::RunState::Succeeded {
        exit::OK
    } else {
        exit::ERROR
    };
    println!();
    if state != default_dev_state_dir() {
        println!(
            "export PULIH_CONTROLLER={url} PULIH_TOKEN_FILE={}",
            state.join("admin.token").display()
        );
    }
    println!("try:  pulih servers");
    println!("      pulih compliance");
    println!(
        "      pulih repo snapshots --repo {} --passphrase-file {}",
        repo_url.display(),
        pass_file.display()
    );
    if a.once {
        cancel.cancel();
    } else {
        println!("serving until Ctrl-C");
    }
    agent_task.await??;
    running.task.await??;
    Ok(code)
}
