//! Source trees for backup tests, and an exact comparison of two trees
//! (content and metadata).

use std::collections::BTreeMap;
use std::os::unix::fs::{MetadataExt, PermissionsExt};
use std::path::{Path, PathBuf};

use rand::rngs::StdRng;
use rand::{Rng, RngCore, SeedableRng};

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
