//! `pulih repo repair-index`.

use anyhow::Result;
use clap::Args;
use pulih_core::repo::Reader;

use super::{Passphrase, RepoUrl};
use crate::exit;

#[derive(Args)]
pub struct RepairIndexArgs {
    #[command(flatten)]
    repo: RepoUrl,
    #[command(flatten)]
    passphrase: Passphrase,
    #[arg(long)]
    json: bool,
}

pub async fn run(a: RepairIndexArgs) -> Result<u8> {
    let reader = Reader::open(a.repo.open()?, &a.passphrase.read()?).await?;
    let r = pulih_core::verify::repair_index(&reader).await?;
    if a.json {
        println!("{}", serde_json::to_string(&r)?);
    } else {
        for p in &r.unreadable_packs {
            println!("unreadable: {p}");
        }
        println!(
            "indexed {} blobs in {} packs: wrote {} index files, removed {}",
            r.blobs_indexed, r.packs_indexed, r.indexes_written, r.indexes_removed
        );
    }
    Ok(if r.unreadable_packs.is_empty() {
        exit::OK
    } else {
        exit::DAMAGED
    })
}
