//! `pulih repo init` and `pulih repo add-agent-key`.

use std::path::PathBuf;

use anyhow::Result;
use clap::Args;
use pulih_core::config::ChunkerParams;
use pulih_core::keys::AgentKey;
use pulih_core::repo::{InitOptions, Reader, Repo};
use pulih_core::storage::Store;

use super::{Passphrase, RepoUrl, write_secret};
use crate::exit;

#[derive(Args)]
pub struct InitArgs {
    #[command(flatten)]
    repo: RepoUrl,
    #[command(flatten)]
    passphrase: Passphrase,
    /// Also write an agent key (mode 0600) for a first server.
    #[arg(long, value_name = "FILE")]
    agent_key_out: Option<PathBuf>,
    /// The server that agent key is for: its space is bound to it
    /// (FORMAT.md §13), so no other key's snapshots pass for its own.
    #[arg(long, requires = "agent_key_out")]
    server: Option<String>,
    /// zstd level for new data (1–19).
    #[arg(long, default_value_t = pulih_core::config::DEFAULT_COMPRESSION_LEVEL, value_parser = clap::value_parser!(i32).range(1..=19))]
    compression_level: i32,
    /// Average chunk size in KiB (a power of two, 64–4096); min is a quarter, max four times it.
    #[arg(long, default_value_t = pulih_core::config::ChunkerParams::default().avg_size / 1024)]
    chunk_size_kib: u32,
}

pub async fn run(a: InitArgs) -> Result<u8> {
    let pass = a.passphrase.read()?;
    if let Some(out) = &a.agent_key_out {
        anyhow::ensure!(
            !out.exists(),
            "{} already exists; choose another --agent-key-out",
            out.display()
        );
    }
    let store = Store::open(&a.repo.url, true)?;
    let avg = a.chunk_size_kib;
    anyhow::ensure!(
        avg.is_power_of_two() && (64..=4096).contains(&avg),
        "--chunk-size-kib must be a power of two from 64 to 4096, not {avg}"
    );
    let chunker = ChunkerParams {
        min_size: avg * 256,
        avg_size: avg * 1024,
        max_size: avg * 4096,
    };
    let opts = InitOptions {
        compression_level: a.compression_level,
        chunker,
        kdf: Default::default(),
    };
    let (repo, reader) = Repo::init(store, &pass, &opts).await?;
    println!(
        "created repository {} at {}",
        repo.config.repo_id, a.repo.url
    );
    if let Some(out) = a.agent_key_out {
        let (key, text) = AgentKey::new(&reader.master, &repo.config);
        write_secret(&out, &text)?;
        println!("agent key written to {}", out.display());
        bind_new_key(&repo.store, &reader.master, &key, a.server).await?;
    }
    Ok(exit::OK)
}

/// Binds a new agent key's space to `server`, or says how to.
async fn bind_new_key(
    store: &Store,
    master: &pulih_core::keys::MasterKey,
    key: &AgentKey,
    server: Option<String>,
) -> Result<()> {
    use pulih_core::bindings::{self, Binding, BindingSigner, Role};
    let space = key.space.space.to_hex();
    let Some(server) = server else {
        eprintln!(
            "note: space {space} is bound to no server; bind it (`pulih repo bind --server NAME --space {space}`) so no other key's snapshots pass for that server's"
        );
        return Ok(());
    };
    let body = Binding {
        server: server.clone(),
        space: key.space.space,
        role: Role::Agent,
        failover: None,
        created: time::OffsetDateTime::now_utc().unix_timestamp(),
    };
    bindings::write(store, &BindingSigner::of(master), body).await?;
    println!("space {space} bound to server {server}");
    Ok(())
}

#[derive(Args)]
pub struct AddAgentKeyArgs {
    #[command(flatten)]
    repo: RepoUrl,
    #[command(flatten)]
    passphrase: Passphrase,
    /// Where to write the new key (mode 0600).
    #[arg(long, value_name = "FILE")]
    out: PathBuf,
    /// The server the key is for: its space is bound to it (FORMAT.md
    /// §13), so no other key's snapshots pass for its own.
    #[arg(long)]
    server: Option<String>,
}

pub async fn add_agent_key(a: AddAgentKeyArgs) -> Result<u8> {
    anyhow::ensure!(!a.out.exists(), "{} already exists", a.out.display());
    let reader = Reader::open(a.repo.open()?, &a.passphrase.read()?).await?;
    let (key, text) = AgentKey::new(&reader.keys.master, &reader.repo.config);
    write_secret(&a.out, &text)?;
    println!(
        "agent key for space {} written to {}",
        key.space.space,
        a.out.display()
    );
    bind_new_key(&reader.repo.store, &reader.keys.master, &key, a.server).await?;
    Ok(exit::OK)
}

#[derive(Args)]
pub struct AddMaintenanceKeyArgs {
    #[command(flatten)]
    repo: RepoUrl,
    #[command(flatten)]
    passphrase: Passphrase,
    /// Where to write the new key (mode 0600).
    #[arg(long, value_name = "FILE")]
    out: PathBuf,
}

pub async fn add_maintenance_key(a: AddMaintenanceKeyArgs) -> Result<u8> {
    anyhow::ensure!(!a.out.exists(), "{} already exists", a.out.display());
    let reader = Reader::open(a.repo.open()?, &a.passphrase.read()?).await?;
    let (_, text) =
        pulih_core::keys::MaintenanceKeyFile::new(reader.repo.config.repo_id, &reader.keys.master);
    write_secret(&a.out, &text)?;
    println!(
        "maintenance key written to {}: it can forget and prune, not read",
        a.out.display()
    );
    Ok(exit::OK)
}

#[derive(Args)]
pub struct UpgradeArgs {
    #[command(flatten)]
    repo: RepoUrl,
    #[command(flatten)]
    passphrase: Passphrase,
}

/// The walidata raises the repository's format version (FORMAT.md §3.1):
/// the next backups pad small files' frames (§4.2). It replaces `config`,
/// which the append-only gateway never does: run it against the store.
pub async fn upgrade(a: UpgradeArgs) -> Result<u8> {
    let store = a.repo.open()?;
    let url = store.url().to_owned();
    let reader = Reader::open(store, &a.passphrase.read()?).await?;
    match reader.upgrade().await {
        Ok(None) => println!(
            "{url} is already format {}: nothing to do",
            reader.repo.config.version
        ),
        Ok(Some((from, to))) => println!(
            "upgraded {url} from format {from} to {to}: backups from now on pad small files' frames (FORMAT.md §4.2); what is stored stays as it is. Pulih builds that read only formats up to {from} (agents, executors, the walidata's) no longer open it: upgrade them first"
        ),
        Err(e @ pulih_core::Error::Store { .. }) => {
            return Err(anyhow::anyhow!(
                "{e}\nthe store did not let `config` be replaced (the append-only gateway never overwrites an object): run the upgrade against the store itself, with its own credentials"
            ));
        }
        Err(e) => return Err(e.into()),
    }
    Ok(exit::OK)
}

#[derive(Args)]
pub struct GrantDrillArgs {
    #[command(flatten)]
    repo: RepoUrl,
    #[command(flatten)]
    passphrase: Passphrase,
    /// The DRC executor's public key (`age1…`, printed by `pulih drc keygen`).
    #[arg(long)]
    recipient: String,
}

/// The walidata grants the DRC executor's identity the `drc-drill` slot:
/// with it, drills at the DRC can read this repository (the controller
/// still queues drills only for agencies whose manifest consents).
pub async fn grant_drill(a: GrantDrillArgs) -> Result<u8> {
    use pulih_core::repo::DRC_DRILL_SLOT;
    let recipient = pulih_core::keys::parse_recipient(&a.recipient)
        .map_err(|e| anyhow::anyhow!("--recipient: {e}"))?;
    let reader = Reader::open(a.repo.open()?, &a.passphrase.read()?).await?;
    let key = pulih_core::layout::key_slot(DRC_DRILL_SLOT);
    anyhow::ensure!(
        !reader.repo.store.exists(&key).await?,
        "the repository already has a `{DRC_DRILL_SLOT}` slot; revoke it first (pulih repo revoke-drill)"
    );
    let slot = reader.keys.wrap_for_recipient(&recipient);
    reader.repo.store.put(&key, slot.into()).await?;
    println!(
        "granted `{DRC_DRILL_SLOT}` to {}: DRC drills can now read this repository",
        a.recipient.trim()
    );
    Ok(exit::OK)
}

#[derive(Args)]
pub struct RevokeDrillArgs {
    #[command(flatten)]
    repo: RepoUrl,
    #[command(flatten)]
    passphrase: Passphrase,
}

/// Removes the `drc-drill` slot (the walidata's passphrase proves who asks).
pub async fn revoke_drill(a: RevokeDrillArgs) -> Result<u8> {
    use pulih_core::repo::DRC_DRILL_SLOT;
    let reader = Reader::open(a.repo.open()?, &a.passphrase.read()?).await?;
    let key = pulih_core::layout::key_slot(DRC_DRILL_SLOT);
    anyhow::ensure!(
        reader.repo.store.exists(&key).await?,
        "the repository has no `{DRC_DRILL_SLOT}` slot"
    );
    reader.repo.store.delete(&key).await?;
    println!(
        "revoked `{DRC_DRILL_SLOT}`: new drills cannot open this repository. An executor that already opened it has seen the repository's reader keys; rotate them if it is not trusted any more"
    );
    Ok(exit::OK)
}
