//! `pulih`: the command-line front end. Parses flags and calls library code.

use std::process::ExitCode;

use clap::{Parser, Subcommand};

mod exit;
mod repo;

#[derive(Parser)]
#[command(
    name = "pulih",
    version,
    about = "Pulih: encrypted replication, drills and failover for a government data center and its DRC"
)]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand)]
enum Command {
    /// Work on a repository directly, with no controller (works from the DRC alone).
    Repo(repo::RepoArgs),
}

fn main() -> ExitCode {
    let cli = Cli::parse();
    tracing_subscriber::fmt()
        .with_writer(std::io::stderr)
        .with_env_filter(
            tracing_subscriber::EnvFilter::try_from_env("PULIH_LOG")
                .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new("warn")),
        )
        .init();
    let rt = match tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
    {
        Ok(rt) => rt,
        Err(e) => {
            eprintln!("error: cannot start the async runtime: {e}");
            return ExitCode::from(exit::ERROR);
        }
    };
    let result = rt.block_on(async {
        match cli.command {
            Command::Repo(args) => repo::run(args).await,
        }
    });
    match result {
        Ok(code) => ExitCode::from(code),
        Err(e) => {
            eprintln!("error: {e:#}");
            ExitCode::from(exit::ERROR)
        }
    }
}
