//! Helpers for the end-to-end tests: a deterministic source tree, an exact
//! comparison of two trees (content and metadata), and a runner for the
//! real `pulih` binary.

#![allow(dead_code)]

use std::collections::BTreeMap;
use std::io::{BufRead, BufReader};
use std::os::unix::fs::{MetadataExt, PermissionsExt};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Output, Stdio};
use std::time::{Duration, Instant};

use rand::rngs::StdRng;
use rand::{Rng, RngCore, SeedableRng};

pub fn pulih() -> Command {
    let mut c = Command::new(env!("CARGO_BIN_EXE_pulih"));
    // A cheap argon2id (64 KiB) keeps the passphrase slot fast in tests.
    c.env("PULIH_TEST_ARGON2_M_KIB", "64")
        .env_remove("PULIH_REPO")
        .env_remove("PULIH_AGENT_KEY")
        .env_remove("PULIH_PASSPHRASE_FILE");
    c
}

pub fn run_ok(cmd: &mut Command) -> Output {
    let out = cmd.output().expect("run pulih");
    assert!(
        out.status.success(),
        "{cmd:?} failed ({}):\nstdout: {}\nstderr: {}",
        out.status,
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    out
}

/// The last line of stdout, parsed as JSON.
pub fn last_json(out: &Output) -> serde_json::Value {
    let s = String::from_utf8_lossy(&out.stdout);
    let line = s.lines().last().expect("some output");
    serde_json::from_str(line).unwrap_or_else(|e| panic!("not JSON ({e}): {line}"))
}

/// A test workspace: a passphrase file, a repository and an agent key.
pub struct Fixture {
    pub dir: tempfile::TempDir,
    pub repo: String,
    pub pass: PathBuf,
    pub key: PathBuf,
}

impl Fixture {
    pub fn new() -> Fixture {
        Self::with_repo(None)
    }

    pub fn with_repo(url: Option<String>) -> Fixture {
        Self::with_options(url, &[])
    }

    pub fn with_options(url: Option<String>, init_args: &[&str]) -> Fixture {
        let dir = tempfile::tempdir().unwrap();
        let pass = dir.path().join("pass");
        std::fs::write(&pass, "walidata-dinkes-2026\n").unwrap();
        std::fs::set_permissions(&pass, std::fs::Permissions::from_mode(0o600)).unwrap();
        let repo = url.unwrap_or_else(|| dir.path().join("repo").to_string_lossy().into_owned());
        let key = dir.path().join("agent.key");
        run_ok(
            pulih()
                .args(["repo", "init", "--repo", &repo, "--passphrase-file"])
                .arg(&pass)
                .arg("--agent-key-out")
                .arg(&key)
                .args(init_args),
        );
        Fixture {
            dir,
            repo,
            pass,
            key,
        }
    }

    pub fn path(&self, p: &str) -> PathBuf {
        self.dir.path().join(p)
    }

    pub fn backup_cmd(&self, key: &Path, cache: &str, src: &Path) -> Command {
        let mut c = pulih();
        c.args([
            "repo",
            "backup",
            "--json",
            "--repo",
            &self.repo,
            "--agent-key",
        ])
        .arg(key)
        .arg("--cache-dir")
        .arg(self.path(cache))
        .arg(src);
        c
    }

    pub fn backup(&self, src: &Path) -> serde_json::Value {
        last_json(&run_ok(&mut self.backup_cmd(&self.key, "cache", src)))
    }

    pub fn restore_cmd(&self, snapshot: &str, target: &Path) -> Command {
        let mut c = pulih();
        c.args(["repo", "restore", "--repo", &self.repo, "--passphrase-file"])
            .arg(&self.pass)
            .arg(snapshot)
            .arg("--target")
            .arg(target);
        c
    }

    pub fn verify(&self, read_data: bool) -> Output {
        let mut c = pulih();
        c.args(["repo", "verify", "--repo", &self.repo, "--passphrase-file"])
            .arg(&self.pass);
        if read_data {
            c.arg("--read-data");
        }
        c.output().unwrap()
    }
}

/// Where a backed-up absolute path lands under a restore target.
pub fn restored(target: &Path, src: &Path) -> PathBuf {
    target.join(src.strip_prefix("/").unwrap())
}

/// Build a deterministic mixed tree of about `scale` bytes: text, CSV,
/// random (incompressible) data, many small files, a few larger ones, an
/// empty directory, a symlink, a hard link, odd modes and mtimes.
pub fn make_tree(root: &Path, scale: usize, seed: u64) {
    let mut rng = StdRng::seed_from_u64(seed);
    std::fs::create_dir_all(root.join("dokumen/arsip")).unwrap();
    std::fs::create_dir_all(root.join("db")).unwrap();
    std::fs::create_dir_all(root.join("kosong")).unwrap();
    std::fs::create_dir_all(root.join("kecil")).unwrap();
    // CSV and text: compressible.
    let mut csv = String::from("nik,nama,kelurahan,tanggal\n");
    let mut i = 0u64;
    while csv.len() < scale / 4 {
        csv.push_str(&format!(
            "64740{:011},Warga {i},Kelurahan {},2026-{:02}-{:02}\n",
            rng.r#gen::<u32>(),
            rng.gen_range(1..40),
            rng.gen_range(1..13),
            rng.gen_range(1..29)
        ));
        i += 1;
    }
    std::fs::write(root.join("db/penduduk.csv"), &csv).unwrap();
    let words = [
        "kota",
        "bontang",
        "pusat",
        "data",
        "layanan",
        "warga",
        "dinas",
        "arsip",
        "surat",
        "keputusan",
    ];
    let mut text = String::new();
    while text.len() < scale / 8 {
        text.push_str(words[rng.gen_range(0..words.len())]);
        text.push(if rng.gen_ratio(1, 12) { '\n' } else { ' ' });
    }
    std::fs::write(root.join("dokumen/laporan.txt"), &text).unwrap();
    // Random: incompressible, two large files.
    for n in 0..2 {
        let mut b = vec![0u8; scale / 6];
        rng.fill_bytes(&mut b);
        std::fs::write(root.join(format!("db/blob{n}.bin")), &b).unwrap();
    }
    // Many small files.
    for n in 0..(scale / 20_000).max(10) {
        let mut b = vec![0u8; rng.gen_range(0..4000)];
        rng.fill_bytes(&mut b);
        std::fs::write(root.join(format!("kecil/f{n:05}.dat")), &b).unwrap();
    }
    std::fs::write(root.join("dokumen/arsip/kosong.txt"), b"").unwrap();
    std::os::unix::fs::symlink("../db/penduduk.csv", root.join("dokumen/tautan.csv")).unwrap();
    std::fs::hard_link(
        root.join("dokumen/laporan.txt"),
        root.join("dokumen/arsip/laporan-salinan.txt"),
    )
    .unwrap();
    std::fs::set_permissions(
        root.join("db/blob0.bin"),
        std::fs::Permissions::from_mode(0o600),
    )
    .unwrap();
    std::fs::set_permissions(
        root.join("dokumen/arsip"),
        std::fs::Permissions::from_mode(0o750),
    )
    .unwrap();
    let t = filetime::FileTime::from_unix_time(1_700_000_000, 123_456_789);
    filetime::set_file_times(root.join("dokumen/laporan.txt"), t, t).unwrap();
}

/// Change about 1% of the tree's bytes, in scattered places.
pub fn change_one_percent(root: &Path, seed: u64) {
    let mut rng = StdRng::seed_from_u64(seed);
    let mut files: Vec<PathBuf> = walk(root)
        .into_iter()
        .filter(|(_, m)| m.is_file() && m.len() > 10_000)
        .map(|(p, _)| p)
        .collect();
    files.sort();
    let total: u64 = walk(root)
        .iter()
        .filter(|(_, m)| m.is_file())
        .map(|(_, m)| m.len())
        .sum();
    let mut budget = total / 100;
    while budget > 0 {
        let f = &files[rng.gen_range(0..files.len())];
        let mut b = std::fs::read(f).unwrap();
        let n = (rng.gen_range(1000..20_000) as u64).min(budget) as usize;
        let n = n.min(b.len() - 1);
        let at = rng.gen_range(0..b.len() - n);
        for x in &mut b[at..at + n] {
            *x = rng.r#gen();
        }
        std::fs::write(f, &b).unwrap();
        budget -= n as u64;
    }
    std::fs::write(
        root.join("kecil/baru.txt"),
        b"berkas baru setelah cadangan pertama",
    )
    .unwrap();
}

pub fn walk(root: &Path) -> Vec<(PathBuf, std::fs::Metadata)> {
    let mut out = Vec::new();
    let mut stack = vec![root.to_owned()];
    while let Some(d) = stack.pop() {
        for e in std::fs::read_dir(&d).unwrap() {
            let p = e.unwrap().path();
            let m = std::fs::symlink_metadata(&p).unwrap();
            if m.is_dir() {
                stack.push(p.clone());
            }
            out.push((p, m));
        }
    }
    out
}

/// Everything that must survive a round trip, keyed by relative path.
pub fn describe(root: &Path) -> BTreeMap<PathBuf, String> {
    let mut inode_names: BTreeMap<u64, PathBuf> = BTreeMap::new();
    let mut entries: Vec<_> = walk(root);
    entries.sort_by(|a, b| a.0.cmp(&b.0));
    let mut out = BTreeMap::new();
    for (p, m) in entries {
        let rel = p.strip_prefix(root).unwrap().to_owned();
        let kind = if m.is_dir() {
            "dir".to_owned()
        } else if m.file_type().is_symlink() {
            format!("symlink->{}", std::fs::read_link(&p).unwrap().display())
        } else {
            let content = blake3::hash(&std::fs::read(&p).unwrap())
                .to_hex()
                .to_string();
            let link = if m.nlink() > 1 {
                let first = inode_names.entry(m.ino()).or_insert_with(|| rel.clone());
                format!(" link-group={}", first.display())
            } else {
                String::new()
            };
            format!("file {} {content}{link}", m.len())
        };
        let mtime = if m.file_type().is_symlink() {
            String::new()
        } else {
            format!(" mtime={}.{:09}", m.mtime(), m.mtime_nsec())
        };
        out.insert(
            rel,
            format!(
                "{kind} mode={:o} uid={} gid={}{mtime}",
                m.permissions().mode() & 0o7777,
                m.uid(),
                m.gid()
            ),
        );
    }
    out
}

pub fn assert_same_tree(expected: &Path, actual: &Path) {
    let (a, b) = (describe(expected), describe(actual));
    for (k, v) in &a {
        assert_eq!(Some(v), b.get(k), "{} differs after restore", k.display());
    }
    assert_eq!(
        a.len(),
        b.len(),
        "restored tree has extra entries: {:?}",
        b.keys().filter(|k| !a.contains_key(*k)).collect::<Vec<_>>()
    );
}

/// A child process killed when dropped.
pub struct Proc {
    pub child: Child,
    pub name: String,
    pub log: PathBuf,
}

impl Proc {
    pub fn spawn(name: &str, cmd: &mut Command, log: PathBuf) -> Proc {
        let err = std::fs::File::create(&log).unwrap();
        let child = cmd
            .env("PULIH_LOG", "info")
            .stdout(Stdio::piped())
            .stderr(err)
            .spawn()
            .unwrap_or_else(|e| panic!("start {name}: {e}"));
        Proc {
            child,
            name: name.into(),
            log,
        }
    }

    /// SIGTERM and wait (graceful: an agent finishes and reports its run).
    pub fn stop(mut self) {
        let _ = Command::new("kill")
            .arg("-TERM")
            .arg(self.child.id().to_string())
            .status();
        let deadline = Instant::now() + Duration::from_secs(60);
        while Instant::now() < deadline {
            if self.child.try_wait().unwrap().is_some() {
                return;
            }
            std::thread::sleep(Duration::from_millis(100));
        }
        panic!(
            "{} did not stop on SIGTERM; log:\n{}",
            self.name,
            self.log_text()
        );
    }

    pub fn log_text(&self) -> String {
        std::fs::read_to_string(&self.log).unwrap_or_default()
    }
}

impl Drop for Proc {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// Starts `pulih controller` and reads its address from stdout.
pub fn start_controller(config: &Path, dir: &Path, listen: &str) -> (Proc, String) {
    let mut p = Proc::spawn(
        "controller",
        pulih()
            .args(["controller", "--config"])
            .arg(config)
            .args(["--listen", listen]),
        dir.join(format!("controller-{}.log", rand::random::<u32>())),
    );
    let mut line = String::new();
    BufReader::new(p.child.stdout.take().unwrap())
        .read_line(&mut line)
        .unwrap();
    let url = line
        .trim()
        .strip_prefix("controller: ")
        .unwrap_or_else(|| panic!("unexpected first line {line:?}; log:\n{}", p.log_text()))
        .to_string();
    (p, url)
}

pub fn ops(url: &str, token: &Path) -> Command {
    let mut c = pulih();
    c.env("PULIH_CONTROLLER", url)
        .env("PULIH_TOKEN_FILE", token)
        .env_remove("PULIH_TOKEN");
    c
}

pub fn write_secret(path: &Path, text: &str) {
    use std::os::unix::fs::PermissionsExt;
    std::fs::write(path, text).unwrap();
    std::fs::set_permissions(path, std::fs::Permissions::from_mode(0o600)).unwrap();
}

pub fn wait_for(what: &str, timeout: Duration, logs: &[&Proc], mut f: impl FnMut() -> bool) {
    let deadline = Instant::now() + timeout;
    while !f() {
        if Instant::now() >= deadline {
            let logs: Vec<String> = logs
                .iter()
                .map(|p| format!("--- {}:\n{}", p.name, p.log_text()))
                .collect();
            panic!("timed out waiting for {what}\n{}", logs.join("\n"));
        }
        std::thread::sleep(Duration::from_millis(500));
    }
}
