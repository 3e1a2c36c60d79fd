//! Repository size and the bytes a 1 % incremental adds under several
//! chunker parameters, each a real backup into fresh `file://`
//! repositories (the chunker is keyed per repository, so each choice is
//! measured in `REPOS` repositories and every value is printed):
//!
//!   cargo run --release -p pulih-core --example chunker_churn -- \
//!       CORPUS_DIR SCRATCH_DIR REPOS 256k:1m:4m 128k:512k:2m …
//!
//! For each repository the corpus is copied to SCRATCH_DIR/tree, backed
//! up, mutated with `bench/make_corpus.py mutate --percent 1 --seed 7`
//! (the benchmark's 1 % incremental) and backed up again.

use std::path::Path;
use std::process::Command;
use std::sync::Arc;

use pulih_core::backup::{BackupOptions, Progress, backup};
use pulih_core::config::ChunkerParams;
use pulih_core::keys::AgentKey;
use pulih_core::repo::{InitOptions, Repo};
use pulih_core::storage::Store;

fn size(s: &str) -> Result<u32, String> {
    let (n, mul) = match s.as_bytes().last() {
        Some(b'k') => (&s[..s.len() - 1], 1 << 10),
        Some(b'm') => (&s[..s.len() - 1], 1 << 20),
        _ => (s, 1),
    };
    n.parse::<u32>()
        .map(|n| n * mul)
        .map_err(|e| format!("{s}: {e}"))
}

fn du(dir: &Path) -> u64 {
    let Ok(rd) = std::fs::read_dir(dir) else {
        return 0;
    };
    rd.flatten()
        .map(|e| {
            let m = e.metadata().expect("stat");
            if m.is_dir() { du(&e.path()) } else { m.len() }
        })
        .sum()
}

fn run(cmd: &mut Command) -> Result<(), Box<dyn std::error::Error>> {
    let st = cmd.status()?;
    if !st.success() {
        return Err(format!("{cmd:?}: {st}").into());
    }
    Ok(())
}

#[tokio::main]
async fn main() -> Result<(), Box<dyn std::error::Error>> {
    let args: Vec<String> = std::env::args().skip(1).collect();
    if args.len() < 4 {
        return Err("usage: chunker_churn CORPUS_DIR SCRATCH_DIR REPOS MIN:AVG:MAX…".into());
    }
    let corpus = std::fs::canonicalize(&args[0])?;
    let scratch = std::fs::canonicalize(&args[1])?;
    let repos: usize = args[2].parse()?;
    let mutate = Path::new(env!("CARGO_MANIFEST_DIR")).join("../bench/make_corpus.py");
    println!("| chunker | repository bytes | 1 % incremental bytes |");
    println!("|---|---|---|");
    for choice in &args[3..] {
        let p: Vec<&str> = choice.split(':').collect();
        let [min, avg, max] = p[..] else {
            return Err("a choice is MIN:AVG:MAX".into());
        };
        let chunker = ChunkerParams {
            min_size: size(min)?,
            avg_size: size(avg)?,
            max_size: size(max)?,
        };
        let (mut sizes, mut adds) = (Vec::new(), Vec::new());
        for _ in 0..repos {
            let tree = scratch.join("tree");
            let _ = std::fs::remove_dir_all(&tree);
            run(Command::new("cp").arg("-a").arg(&corpus).arg(&tree))?;
            let repo_dir = scratch.join("repo");
            let _ = std::fs::remove_dir_all(&repo_dir);
            let cache = scratch.join("cache");
            let _ = std::fs::remove_dir_all(&cache);
            let store = Store::open(repo_dir.to_str().ok_or("path")?, true)?;
            let init = InitOptions {
                chunker,
                kdf: pulih_core::keys::PassphraseKdf { m_kib: 64, t: 1 },
                ..Default::default()
            };
            let (repo, keys) = Repo::init(store.clone(), "measure", &init).await?;
            let (agent, _) = AgentKey::new(&keys.master, &repo.config);
            let opts = BackupOptions::new("measure".into(), cache.clone());
            let go = || {
                backup(
                    store.clone(),
                    &agent,
                    std::slice::from_ref(&tree),
                    &opts,
                    Arc::new(Progress::default()),
                )
            };
            go().await?;
            let before = du(&repo_dir);
            run(Command::new("python3")
                .arg(&mutate)
                .args(["mutate"])
                .arg(&tree)
                .args(["--percent", "1", "--seed", "7"]))?;
            go().await?;
            let after = du(&repo_dir);
            sizes.push(before);
            adds.push(after - before);
        }
        println!("| {choice} | {sizes:?} | {adds:?} |");
    }
    let _ = std::fs::remove_dir_all(scratch.join("tree"));
    let _ = std::fs::remove_dir_all(scratch.join("repo"));
    let _ = std::fs::remove_dir_all(scratch.join("cache"));
    Ok(())
}
