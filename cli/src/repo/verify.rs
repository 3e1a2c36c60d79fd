//! `pulih repo verify`.

use anyhow::Result;
use clap::Args;
use pulih_core::repo::Reader;

use super::{Passphrase, RepoUrl, spinner};
use crate::exit;

#[derive(Args)]
pub struct VerifyArgs {
    #[command(flatten)]
    repo: RepoUrl,
    #[command(flatten)]
    passphrase: Passphrase,
    /// Also read and authenticate the data of PERCENT of the packs (default all).
    #[arg(long, value_name = "PERCENT", num_args = 0..=1, default_missing_value = "100")]
    read_data: Option<f64>,
    #[arg(long)]
    json: bool,
}

pub async fn run(a: VerifyArgs) -> Result<u8> {
    if let Some(p) = a.read_data {
        anyhow::ensure!(
            (0.0..=100.0).contains(&p),
            "--read-data takes a percentage from 0 to 100, not {p}"
        );
    }
    let reader = Reader::open(a.repo.open()?, &a.passphrase.read()?).await?;
    let pb = spinner("verifying");
    let r = pulih_core::verify::verify(&reader, a.read_data).await;
    pb.finish_and_clear();
    let r = r?;
    if a.json {
        println!("{}", serde_json::to_string(&r)?);
    } else {
        for p in &r.problems {
            println!("problem: {p}");
        }
        println!(
            "{} snapshots, {} trees, {} packs; read {} packs ({} blobs); {} unindexed packs; {} problems",
            r.snapshots,
            r.trees,
            r.packs,
            r.packs_read,
            r.blobs_read,
            r.unindexed_packs,
            r.problems.len()
        );
    }
    Ok(if r.ok() { exit::OK } else { exit::DAMAGED })
}
