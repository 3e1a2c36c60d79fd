//! `pulih`: the command-line front end. Parses flags and calls library code.

use std::process::ExitCode;

use clap::{Parser, Subcommand};

mod benchmark;
mod dev;
mod drc;
mod drill;
mod exit;
mod gateway;
mod malloc;
mod manifests;
mod ops;
mod plan;
mod repo;
mod serve;

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
    /// Validate manifests and print their JSON Schema.
    Manifests(manifests::ManifestsArgs),
    /// Everything in one process: controller, filesystem DRC, one agent, the example manifests.
    Dev(dev::DevArgs),
    /// Run the controller (Pusat Data).
    Controller(serve::ControllerArgs),
    /// Run an agent (on a PD server).
    Agent(serve::AgentArgs),
    /// Apply manifests to the controller (recorded with who, when and the diff).
    Apply(ops::ApplyArgs),
    /// List servers with their centralization status; `enroll-token NAME` for agents.
    Servers(ops::ServersArgs),
    /// The controller's and the fleet's state.
    Status(ops::JsonArgs),
    /// Pasal 9 compliance: centralization and protection, per agency and overall.
    Compliance(ops::ComplianceArgs),
    /// Replicate a server now.
    Replicate(ops::JobArgs),
    /// Have a server's agent check its own space in the repository (no data read).
    Verify(ops::JobArgs),
    /// Have a server's agent restore a snapshot to a path on the server
    /// (only with a reader key the walidata gave it).
    Restore(ops::RestoreArgs),
    /// List runs (scheduled and manual) with their results.
    Runs(ops::RunsArgs),
    /// Retention runs on the controller's maintenance schedule; `run` runs it now.
    Maintenance(ops::MaintenanceArgs),
    /// At the DRC: drills from the DRC store alone (no controller), the
    /// executor's key and enrolment token.
    Drc(drc::DrcArgs),
    /// Drills through the controller, run by the DRC executor.
    Drill(drill::DrillArgs),
    /// Real failover at the DRC (separately authorised).
    Failover(drill::FailoverArgs),
    /// End a failover: replicate the DRC's changes back and restore them at
    /// the primary (separately authorised).
    Failback(drill::FailbackArgs),
    /// Recovery plan runs: list, show, resume a stopped one, roll one back.
    Plan(plan::PlanArgs),
    /// Measure this machine's chunking, hashing, compression, encryption and
    /// decompression, and with --repo a store's PUT/GET throughput and latency
    /// (under a scratch prefix it deletes): to size a DRC and its link.
    #[command(long_about = benchmark::LONG_ABOUT)]
    Benchmark(benchmark::BenchmarkArgs),
}

impl Command {
    /// Commands that restore or verify blobs, or serve (and so run drills,
    /// failovers and restores for as long as they live): these start with
    /// two malloc arenas (`malloc`). A `repo backup`'s peak RSS did not
    /// change with them, and the new start costs ~2.6 ms, 5 % of a
    /// no-change backup of the generated bench corpus; the short ops
    /// commands only talk to the controller.
    fn reads_blobs_or_serves(&self) -> bool {
        match self {
            Command::Repo(a) => a.reads_blobs(),
            Command::Dev(_) | Command::Controller(_) | Command::Agent(_) | Command::Drc(_) => true,
            _ => false,
        }
    }
}

/// `pulih … | head` closes stdout early; Rust ignores SIGPIPE and
/// `println!` then panics. Exit quietly as a Unix tool would instead.
fn quiet_on_broken_pipe() {
    let default = std::panic::take_hook();
    std::panic::set_hook(Box::new(move |info| {
        let msg = info
            .payload()
            .downcast_ref::<String>()
            .map(String::as_str)
            .or_else(|| info.payload().downcast_ref::<&str>().copied())
            .unwrap_or_default();
        if msg.starts_with("failed printing to stdout") && msg.contains("Broken pipe") {
            std::process::exit(141);
        }
        default(info);
    }));
}

fn main() -> ExitCode {
    quiet_on_broken_pipe();
    let cli = Cli::parse();
    if cli.command.reads_blobs_or_serves() {
        malloc::limit_arenas();
    }
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
            Command::Manifests(args) => manifests::run(args).await,
            Command::Dev(args) => dev::run(args).await,
            Command::Controller(args) => serve::controller(args).await,
            Command::Agent(args) => serve::agent(args).await,
            Command::Apply(args) => ops::apply(args).await,
            Command::Servers(args) => ops::servers(args).await,
            Command::Status(args) => ops::status(args).await,
            Command::Compliance(args) => ops::compliance(args).await,
            Command::Replicate(args) => ops::replicate(args).await,
            Command::Verify(args) => ops::verify(args).await,
            Command::Restore(args) => ops::restore(args).await,
            Command::Runs(args) => ops::runs(args).await,
            Command::Maintenance(args) => ops::maintenance(args).await,
            Command::Drc(args) => drc::run(args).await,
            Command::Drill(args) => drill::run(args).await,
            Command::Failover(args) => drill::failover(args).await,
            Command::Failback(args) => drill::failback(args).await,
            Command::Plan(args) => plan::run(args).await,
            Command::Benchmark(args) => benchmark::run(args).await,
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
