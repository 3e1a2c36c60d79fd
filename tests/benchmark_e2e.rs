//! `pulih benchmark` with the real binary: it prints every figure (in its
//! JSON, present, positive and finite; in its table, by name), and with
//! `--repo` (a local directory, and Garage over S3 with credentials from
//! files) it measures the store under a scratch prefix that is gone
//! afterwards, leaving the repository at the URL exactly as it was.

use std::collections::BTreeMap;
use std::path::Path;

use pulih_core::storage::Store;
use pulih_test_support::garage::Garage;
use pulih_test_support::repo::Fixture;
use pulih_test_support::tree::{describe, make_tree};
use pulih_test_support::{Pulih, last_json, run_ok, write_secret};
use serde_json::Value;

const PULIH: Pulih = Pulih::new(env!("CARGO_BIN_EXE_pulih"));

const CPU_FIGURES: [&str; 6] = [
    "/cpu/chunking_mbs",
    "/cpu/hashing_mbs",
    "/cpu/compression_mbs",
    "/cpu/encryption_mbs",
    "/cpu/decompression_mbs",
    "/cpu/backup_bound_mbs",
];

const STORE_FIGURES: [&str; 15] = [
    "/store/throughput/0/put_mbs",
    "/store/throughput/0/get_mbs",
    "/store/throughput/1/put_mbs",
    "/store/throughput/1/get_mbs",
    "/store/small_put/median_ms",
    "/store/small_put/p90_ms",
    "/store/small_get/median_ms",
    "/store/small_get/p90_ms",
    "/store/gib_upload_seconds",
    "/store/gib_download_seconds",
    "/store/backup_to_store_mbs",
    "/store/throughput/0/put_seconds",
    "/store/throughput/1/get_seconds",
    "/store/throughput/0/object_bytes",
    "/store/throughput/1/object_bytes",
];

/// What the table must name, one line each.
const CPU_LABELS: [&str; 6] = [
    "FastCDC chunking",
    "keyed BLAKE3 (blob ids)",
    "zstd -3 compression",
    "AES-256-GCM encryption",
    "zstd decompression",
    "a backup's CPU bound on",
];

const STORE_LABELS: [&str; 9] = [
    "PUT store 4 MiB",
    "GET store 4 MiB",
    "PUT store 16 MiB",
    "GET store 16 MiB",
    "PUT store 1 KiB",
    "GET store 1 KiB",
    "upload 1 GiB",
    "download 1 GiB",
    "a first backup of this mix to this store",
];

fn assert_figures(v: &Value, pointers: &[&str]) {
    for p in pointers {
        let f = v
            .pointer(p)
            .and_then(Value::as_f64)
            .unwrap_or_else(|| panic!("{p} is missing or not a number in {v}"));
        assert!(f.is_finite() && f > 0.0, "{p} = {f} in {v}");
    }
}

fn assert_names(table: &str, labels: &[&str]) {
    for l in labels {
        let line = table
            .lines()
            .find(|line| line.contains(l))
            .unwrap_or_else(|| panic!("the table does not name `{l}`:\n{table}"));
        assert!(
            line.chars().any(|c| c.is_ascii_digit()),
            "`{l}` has no figure: {line}"
        );
    }
}

fn benchmark(extra: &[&str]) -> std::process::Command {
    let mut c = PULIH.cmd();
    c.arg("benchmark").args(extra);
    c
}

#[test]
fn benchmark_prints_every_cpu_figure_as_json_and_as_a_table() {
    let v = last_json(&run_ok(&mut benchmark(&["--json", "--size", "16MiB"])));
    assert_figures(&v, &CPU_FIGURES);
    assert_eq!(v["sample"]["bytes"], 16 << 20);
    assert_eq!(v["sample"]["passes"], 3);
    assert!(v["store"].is_null(), "no --repo, no store: {v}");
    let stored = v["sample"]["stored_bytes"].as_u64().unwrap();
    assert!(
        stored > (16 << 20) / 4 && stored < 16 << 20,
        "the mix is part compressible: {stored} stored"
    );

    let out = run_ok(&mut benchmark(&["--size", "2MiB", "--cores", "4"]));
    let table = String::from_utf8_lossy(&out.stdout);
    assert_names(&table, &CPU_LABELS);
    assert!(
        table.contains("pemotongan FastCDC / FastCDC chunking"),
        "{table}"
    );
    assert!(table.contains("on 4 cores"), "{table}");
    assert!(table.contains("--repo URL"), "{table}");
}

#[test]
fn benchmark_refuses_a_bad_size_and_a_store_that_is_not_there() {
    let out = benchmark(&["--size", "12"]).output().unwrap();
    assert_eq!(out.status.code(), Some(2), "a usage error");
    assert!(String::from_utf8_lossy(&out.stderr).contains("less than 1 MiB"));
    let dir = tempfile::tempdir().unwrap();
    let missing = dir.path().join("nothing-here");
    let out = benchmark(&["--size", "1MiB", "--repo", &missing.to_string_lossy()])
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(1));
    assert!(!missing.exists(), "a store benchmark creates no directory");
}

#[test]
fn benchmark_of_a_local_repository_leaves_it_untouched() {
    let fx = Fixture::new(PULIH);
    let src = fx.path("src");
    make_tree(&src, 300_000, 1);
    fx.backup(&src);
    let repo = Path::new(&fx.repo);
    let before = describe(repo);
    assert!(before.keys().any(|k| k.starts_with("data")), "{before:?}");
    let url = format!("file://{}", fx.repo);

    let v = last_json(&run_ok(&mut benchmark(&[
        "--json",
        "--size",
        "16MiB",
        "--repo",
        &url,
        "--objects",
        "2",
        "--in-flight",
        "2",
    ])));
    assert_figures(&v, &CPU_FIGURES);
    assert_figures(&v, &STORE_FIGURES);
    assert_eq!(v["store"]["repository_present"], true);
    assert_eq!(v["store"]["url"], url.as_str());
    let scratch = v["store"]["scratch_prefix"].as_str().unwrap();
    assert!(scratch.starts_with("benchmark/") && scratch.len() > "benchmark/".len());
    assert!(
        !repo.join("benchmark").exists(),
        "the scratch prefix is gone"
    );
    assert_eq!(describe(repo), before, "the repository is as it was");

    let out = run_ok(&mut benchmark(&[
        "--size",
        "2MiB",
        "--repo",
        &fx.repo,
        "--objects",
        "1",
    ]));
    let table = String::from_utf8_lossy(&out.stdout);
    assert_names(&table, &CPU_LABELS);
    assert_names(&table, &STORE_LABELS);
    assert!(
        table.contains("the repository there was not touched"),
        "{table}"
    );
    assert_eq!(describe(repo), before, "the repository is as it was");
    assert!(!repo.join("benchmark").exists());
}

/// Every object in the bucket, with its bytes.
fn bucket(g: &Garage) -> BTreeMap<String, Vec<u8>> {
    let store = Store::open_with(&g.url(""), false, Some((&g.key_id, &g.secret))).unwrap();
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap();
    rt.block_on(async {
        let mut out = BTreeMap::new();
        for o in store.list("").await.unwrap() {
            let b = store.get(&o.key).await.unwrap();
            out.insert(o.key, b.to_vec());
        }
        out
    })
}

#[test]
fn benchmark_of_an_s3_repository_leaves_it_untouched() {
    let g = Garage::start();
    let dir = tempfile::tempdir().unwrap();
    let (id, secret) = (dir.path().join("s3.id"), dir.path().join("s3.secret"));
    write_secret(&id, &g.key_id);
    write_secret(&secret, &g.secret);
    let pass = dir.path().join("pass");
    write_secret(&pass, "walidata-dinkes-2026\n");
    let url = g.url("bontang/dinkes");
    let s3 = |c: &mut std::process::Command| {
        c.env("PULIH_S3_ACCESS_KEY_ID_FILE", &id)
            .env("PULIH_S3_SECRET_ACCESS_KEY_FILE", &secret)
            .env_remove("AWS_ACCESS_KEY_ID")
            .env_remove("AWS_SECRET_ACCESS_KEY");
    };
    let mut init = PULIH.cmd();
    init.args(["repo", "init", "--repo", &url, "--passphrase-file"])
        .arg(&pass);
    s3(&mut init);
    run_ok(&mut init);
    let before = bucket(&g);
    assert!(
        before.contains_key("bontang/dinkes/config"),
        "{:?}",
        before.keys()
    );

    let mut c = benchmark(&[
        "--json",
        "--size",
        "16MiB",
        "--repo",
        &url,
        "--objects",
        "2",
    ]);
    s3(&mut c);
    let v = last_json(&run_ok(&mut c));
    assert_figures(&v, &CPU_FIGURES);
    assert_figures(&v, &STORE_FIGURES);
    assert_eq!(v["store"]["repository_present"], true);
    assert_eq!(
        bucket(&g),
        before,
        "no scratch object is left, no repository object changed"
    );

    let mut c = benchmark(&["--size", "1MiB", "--repo", &url, "--objects", "1"]);
    s3(&mut c);
    let table = String::from_utf8_lossy(&run_ok(&mut c).stdout).into_owned();
    assert_names(&table, &STORE_LABELS);
    assert_eq!(bucket(&g), before);
}
