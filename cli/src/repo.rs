//! `pulih repo …`: repository commands that need no controller.

use std::path::PathBuf;

use anyhow::{Context, Result};
use clap::{Args, Subcommand};
use pulih_core::keys::AgentKey;
use pulih_core::storage::{Store, read_secret_file};

mod backup;
mod bind;
mod forget;
mod init;
mod repair_index;
mod restore;
mod snapshots;
mod verify;

#[derive(Args)]
pub struct RepoArgs {
    #[command(subcommand)]
    command: RepoCommand,
}

impl RepoArgs {
    /// A restore or a verify: many threads reading, decrypting and
    /// writing blobs at once (see `malloc`).
    pub fn reads_blobs(&self) -> bool {
        matches!(
            self.command,
            RepoCommand::Restore(_) | RepoCommand::Verify(_)
        )
    }
}

#[derive(Subcommand)]
enum RepoCommand {
    /// Create a repository and its walidata key slot.
    Init(init::InitArgs),
    /// Back up paths with an agent key (write-only).
    Backup(backup::BackupArgs),
    /// Restore a snapshot under a target directory (needs a reader key).
    Restore(restore::RestoreArgs),
    /// List snapshots.
    Snapshots(snapshots::SnapshotsArgs),
    /// Check the repository; `--read-data` also reads and authenticates data.
    Verify(verify::VerifyArgs),
    /// Rebuild the index from the packs.
    RepairIndex(repair_index::RepairIndexArgs),
    /// Remove snapshots by a retention policy (`--prune` to free space too).
    Forget(forget::ForgetArgs),
    /// Free space: condemn unused packs, delete those condemned a grace period ago.
    Prune(forget::PruneArgs),
    /// Make a new agent key (its own dedup space) for another server.
    AddAgentKey(init::AddAgentKeyArgs),
    /// Bind a dedup space to its server (for agent keys made before
    /// bindings; FORMAT.md §13).
    Bind(bind::BindArgs),
    /// Make the maintenance key the controller uses for retention (no reading).
    AddMaintenanceKey(init::AddMaintenanceKeyArgs),
    /// Grant the DRC executor's identity the `drc-drill` key slot (the
    /// walidata's consent to automated drills, in key form).
    GrantDrill(init::GrantDrillArgs),
    /// Remove the `drc-drill` key slot.
    RevokeDrill(init::RevokeDrillArgs),
    /// Retention with the maintenance key: forget by policy, prune whole unused packs.
    Maintain(forget::MaintainArgs),
    /// Raise the repository to this build's format (3: padded frames of
    /// small files from the next backup on; what is stored stays).
    Upgrade(init::UpgradeArgs),
}

/// `--repo URL` / `PULIH_REPO`.
#[derive(Args, Clone)]
pub struct RepoUrl {
    /// Repository URL: a path, file:///PATH, s3://BUCKET/PREFIX?endpoint=URL&region=R, or memory://NAME.
    #[arg(long = "repo", env = "PULIH_REPO", value_name = "URL")]
    pub url: String,
}

/// `--passphrase-file F` / `PULIH_PASSPHRASE_FILE`.
#[derive(Args, Clone)]
pub struct Passphrase {
    /// File holding the walidata passphrase (readable by its owner only).
    #[arg(
        long = "passphrase-file",
        env = "PULIH_PASSPHRASE_FILE",
        value_name = "FILE"
    )]
    pub file: PathBuf,
}

impl Passphrase {
    pub fn read(&self) -> Result<String> {
        Ok(read_secret_file(&self.file)?)
    }
}

impl RepoUrl {
    pub fn open(&self) -> Result<Store> {
        Ok(Store::open(&self.url, false)?)
    }
}

pub fn load_agent_key(path: &std::path::Path) -> Result<AgentKey> {
    // A secret: `AgentKey::load` refuses one others can read.
    Ok(AgentKey::load(path)?)
}

/// Write a secret file with mode 0600, refusing to overwrite.
pub fn write_secret(path: &std::path::Path, text: &str) -> Result<()> {
    use std::io::Write;
    use std::os::unix::fs::OpenOptionsExt;
    let mut f = std::fs::OpenOptions::new()
        .write(true)
        .create_new(true)
        .mode(0o600)
        .open(path)
        .with_context(|| format!("cannot create {} (it must not exist yet)", path.display()))?;
    f.write_all(text.as_bytes())
        .with_context(|| format!("writing {}", path.display()))?;
    Ok(())
}

/// A progress spinner on stderr, hidden when stderr is not a terminal.
pub fn spinner(msg: &'static str) -> indicatif::ProgressBar {
    use std::io::IsTerminal;
    if !std::io::stderr().is_terminal() {
        return indicatif::ProgressBar::hidden();
    }
    let pb = indicatif::ProgressBar::new_spinner();
    pb.set_style(
        indicatif::ProgressStyle::with_template("{spinner} {msg} {elapsed} {prefix}")
            .expect("valid template"),
    );
    pb.set_message(msg);
    pb.enable_steady_tick(std::time::Duration::from_millis(200));
    pb
}

pub fn human(bytes: u64) -> String {
    indicatif::HumanBytes(bytes).to_string()
}

pub async fn run(args: RepoArgs) -> Result<u8> {
    match args.command {
        RepoCommand::Init(a) => init::run(a).await,
        RepoCommand::AddAgentKey(a) => init::add_agent_key(a).await,
        RepoCommand::AddMaintenanceKey(a) => init::add_maintenance_key(a).await,
        RepoCommand::Bind(a) => bind::run(a).await,
        RepoCommand::GrantDrill(a) => init::grant_drill(a).await,
        RepoCommand::RevokeDrill(a) => init::revoke_drill(a).await,
        RepoCommand::Maintain(a) => forget::run_maintain(a).await,
        RepoCommand::Upgrade(a) => init::upgrade(a).await,
        RepoCommand::Backup(a) => backup::run(a).await,
        RepoCommand::Restore(a) => restore::run(a).await,
        RepoCommand::Snapshots(a) => snapshots::run(a).await,
        RepoCommand::Verify(a) => verify::run(a).await,
        RepoCommand::RepairIndex(a) => repair_index::run(a).await,
        RepoCommand::Forget(a) => forget::run(a).await,
        RepoCommand::Prune(a) => forget::run_prune(a).await,
    }
}
