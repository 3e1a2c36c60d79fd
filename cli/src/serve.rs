//! `pulih controller` and `pulih agent`: the long-running processes.

use std::net::SocketAddr;
use std::path::PathBuf;

use anyhow::Result;
use clap::Args;
use pulih_agent::{Agent, AgentConfig};
use pulih_controller::ControllerConfig;
use tokio_util::sync::CancellationToken;

use crate::exit;

/// One shutdown path: SIGINT or SIGTERM cancels the token.
pub fn shutdown_on_signals() -> CancellationToken {
    let cancel = CancellationToken::new();
    let c = cancel.clone();
    tokio::spawn(async move {
        use tokio::signal::unix::{SignalKind, signal};
        let (Ok(mut term), Ok(mut int)) = (
            signal(SignalKind::terminate()),
            signal(SignalKind::interrupt()),
        ) else {
            return;
        };
        tokio::select! {
            _ = term.recv() => {}
            _ = int.recv() => {}
        }
        tracing::info!("shutting down");
        c.cancel();
    });
    cancel
}

#[derive(Args)]
pub struct ControllerArgs {
    /// The controller's TOML configuration.
    #[arg(long, env = "PULIH_CONTROLLER_CONFIG", value_name = "FILE")]
    config: PathBuf,
    /// Override `listen` (e.g. 127.0.0.1:0 for any free port).
    #[arg(long, env = "PULIH_LISTEN")]
    listen: Option<SocketAddr>,
    /// Override `state_dir`.
    #[arg(long, env = "PULIH_STATE_DIR")]
    state_dir: Option<PathBuf>,
}

pub async fn controller(a: ControllerArgs) -> Result<u8> {
    let mut config = ControllerConfig::load(&a.config)?;
    if let Some(l) = a.listen {
        config.listen = l;
    }
    if let Some(d) = a.state_dir {
        config.state_dir = d;
    }
    let cancel = shutdown_on_signals();
    let running = pulih_controller::start(config, cancel).await?;
    // The address on stdout, for scripts that started it on port 0.
    println!("controller: {}", running.url);
    running.task.await??;
    Ok(exit::OK)
}

#[derive(Args)]
pub struct AgentArgs {
    /// The agent's TOML configuration.
    #[arg(long, env = "PULIH_AGENT_CONFIG", value_name = "FILE")]
    config: PathBuf,
    /// `pd`: protect a PD server (replicate it). `drc`: the DRC executor,
    /// which runs the drills queued for its DRC target.
    #[arg(long, value_enum, default_value = "pd")]
    role: Role,
}

#[derive(Clone, Copy, clap::ValueEnum)]
enum Role {
    Pd,
    Drc,
}

pub async fn agent(a: AgentArgs) -> Result<u8> {
    let cancel = shutdown_on_signals();
    match a.role {
        Role::Pd => {
            let config = AgentConfig::load(&a.config)?;
            Agent::new(config)?.run(cancel).await?;
        }
        Role::Drc => {
            let config = pulih_agent::drc::DrcConfig::load(&a.config)?;
            pulih_agent::drc::DrcExecutor::new(config)?
                .run(cancel)
                .await?;
        }
    }
    Ok(exit::OK)
}
